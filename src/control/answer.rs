//! The answers to control requests, without I/O: from the controller's
//! state (the RIB, the configuration), the sessions' status and, for the
//! requests that need it, what the FIB task said. The daemon fetches
//! those ([`fib_query`]) and hands them in; the JSON shapes live here.

use std::net::IpAddr;
use std::time::SystemTime;

use ipnet::IpNet;

use super::{Health, NeighborRow, Request, Response};
use crate::controller::Controller;
use crate::fib::{FibStatus, PrefixState, PrefixStatus, ReconcileReport};
use crate::fsm::State;
use crate::metrics::{PeerMetrics, Snapshot};
use crate::rib::{PathAttrs, PathState, PrefixView};
use crate::session::{Session, hms};
use crate::wire::AfiSafi;

/// What a request needs from the FIB task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibQuery {
    Status,
    Lookup(IpNet),
    Reconcile,
}

/// The FIB task's answer to a [`FibQuery`].
#[derive(Clone, Debug)]
pub enum FibAnswer {
    Status(FibStatus),
    Lookup(Option<PrefixStatus>),
    Reconcile(ReconcileReport),
    /// The task has stopped.
    Stopped,
}

/// What the daemon hands in for one answer.
pub struct Sources<'a> {
    pub controller: &'a Controller,
    pub sessions: &'a [Session],
    pub fib: Option<FibAnswer>,
    /// Whether the FIB's initial sync is over.
    pub fib_synced: bool,
    /// Routes the kernel refuses, as the FIB last reported.
    pub fib_failed: usize,
    /// Whether the FIB task still runs.
    pub fib_running: bool,
    /// Next hops that do not answer ARP/ND, as the FIB last reported.
    pub nexthops_down: &'a [IpAddr],
    pub now: SystemTime,
}

/// The FIB query `req` needs, if any. With `[kernel] install` off the FIB
/// is not asked about a route: it holds none.
pub fn fib_query(req: &Request, c: &Controller) -> Option<FibQuery> {
    match req {
        Request::Fib | Request::Metrics => Some(FibQuery::Status),
        Request::Reconcile => Some(FibQuery::Reconcile),
        Request::Route { address } if c.install() => {
            let a: IpAddr = address.parse().ok()?;
            c.rib().lookup(a).map(|v| FibQuery::Lookup(v.prefix))
        }
        _ => None,
    }
}

const STOPPED: &str = "the kernel task has stopped";

/// The answer to `req` (a reload is the daemon's: it reads the file).
pub fn answer(req: &Request, src: Sources) -> Response {
    let rib = src.controller.rib();
    match req {
        Request::Neighbors => Response::ok(neighbor_rows(&src)),
        Request::Routes { prefix: Some(p) } => match p.parse::<IpNet>() {
            Ok(net) => match rib.prefix(net.trunc()) {
                Some(v) => Response::ok(prefix_json(&v)),
                None => Response::err(format!("no route for {net}")),
            },
            Err(_) => Response::err(format!("'{p}' is not a prefix (e.g. 172.15.190.0/26)")),
        },
        Request::Routes { prefix: None } => {
            let rows: Vec<serde_json::Value> = rib
                .routes()
                .map(|r| {
                    serde_json::json!({
                        "prefix": r.prefix.to_string(),
                        "next_hops": r.next_hops.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                        "down": r.next_hops.iter().filter(|n| src.nexthops_down.contains(&n.addr)).map(|n| n.to_string()).collect::<Vec<_>>(),
                        "reason": r.reason.map(|s| s.to_string()),
                        "paths": r.paths,
                        "stale": r.stale,
                        "rejected": r.rejected,
                        "reject_reason": r.reject_reason.map(|s| s.to_string()),
                    })
                })
                .collect();
            Response::ok(rows)
        }
        Request::Advertised { peer } => advertised(src.controller, peer),
        Request::Received { peer } => received(src.controller, peer),
        Request::Metrics => Response::ok(crate::metrics::encode(&snapshot(&src))),
        Request::Fib => match fib_status(&src) {
            Some(st) => Response::ok(st),
            None => Response::err(STOPPED),
        },
        Request::Reconcile => match &src.fib {
            Some(FibAnswer::Reconcile(r)) => Response::ok(r),
            _ => Response::err(STOPPED),
        },
        Request::Route { address } => match address.parse::<IpAddr>() {
            Ok(a) => match rib.lookup(a) {
                Some(v) => {
                    let kernel = if src.controller.install() {
                        match &src.fib {
                            Some(FibAnswer::Lookup(k)) => k.clone(),
                            _ => None,
                        }
                    } else {
                        (!v.next_hops.is_empty()).then(|| PrefixStatus {
                            prefix: v.prefix,
                            desired: v.next_hops.iter().map(|n| n.to_string()).collect(),
                            state: PrefixState::NotInstalled,
                            foreign: Vec::new(),
                        })
                    };
                    Response::ok(serde_json::json!({
                        "address": a.to_string(),
                        "route": prefix_json(&v),
                        "kernel": kernel,
                    }))
                }
                None => Response::err(format!(
                    "no BGP route carries {a}: no reflector announced a covering prefix, or it was rejected (see bgpd show routes)"
                )),
            },
            Err(_) => Response::err(format!("'{address}' is not an IP address")),
        },
        Request::Health => Response::ok(Health {
            // What the daemon holds: a health check every second must
            // not walk the FIB's million routes.
            fib_failed: src.fib_failed as u64,
            fib_running: src.fib_running,
            peers: src.sessions.len(),
            established: src
                .sessions
                .iter()
                .filter(|s| s.status.state == State::Established)
                .count(),
            fib_synced: src.fib_synced,
            paths: rib
                .peers()
                .iter()
                .map(|p| p.counters.accepted() as u64)
                .sum(),
        }),
        Request::Reload => Response::err("reload is answered by the daemon"),
        Request::Stop { .. } => Response::err("stop is answered by the daemon"),
    }
}

/// The FIB's status; with install off the FIB is not fed, so what it
/// would be asked to install is the RIB's count.
fn fib_status(src: &Sources) -> Option<FibStatus> {
    let Some(FibAnswer::Status(st)) = &src.fib else {
        return None;
    };
    let mut st = st.clone();
    if !src.controller.install() {
        st.desired = src.controller.rib().selected();
    }
    Some(st)
}

/// The neighbour table for `bgpd show neighbors`: what `calicoctl node
/// status` prints, plus the RIB's prefix counts; a row per session, in
/// the sessions' order.
fn neighbor_rows(src: &Sources) -> Vec<NeighborRow> {
    let local_as = src.controller.config().local_as;
    let rib = src.controller.rib();
    src.sessions
        .iter()
        .map(|s| {
            let st = &s.status;
            let remote_as = st.remote_as.or(s.remote_as);
            let kind = match remote_as {
                Some(a) if a == local_as => "ibgp",
                Some(_) => "ebgp",
                None => "bgp",
            };
            let info = match (&st.state, &st.last_error) {
                (State::Established, _) | (_, None) => st.state.to_string(),
                (state, Some(e)) => format!("{state}: {e}"),
            };
            let (sent, out_pending) = src.controller.sent_counts(s.addr).unwrap_or_default();
            let (received, accepted) = rib
                .peer(s.addr)
                .map(|p| {
                    let c = &p.counters;
                    (
                        (c.ipv4.received + c.ipv6.received) as u64,
                        c.accepted() as u64,
                    )
                })
                .unwrap_or_default();
            NeighborRow {
                address: s.addr.to_string(),
                kind: if s.dynamic {
                    format!("dynamic {kind}")
                } else {
                    kind.to_string()
                },
                state: match st.state {
                    State::Established => "up",
                    State::Idle if !st.established_once && st.last_error.is_none() => "down",
                    _ => "start",
                }
                .to_string(),
                since: hms(st.since),
                since_unix: st
                    .since
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs(),
                info,
                description: s.description.clone(),
                remote_as,
                router_id: st.remote_id.map(|i| i.to_string()),
                received,
                accepted,
                // What the RIB chose to install from this peer.
                installed: accepted,
                sent: sent as u64,
                out_pending: out_pending as u64,
            }
        })
        .collect()
}

/// What the metrics endpoint reports.
fn snapshot(src: &Sources) -> Snapshot {
    let rib = src.controller.rib();
    let mut snap = Snapshot {
        rib_prefixes: rib.len() as u64,
        rib_attribute_sets: rib.attr_sets() as u64,
        ..Default::default()
    };
    // The rows are in the sessions' order.
    for (row, s) in neighbor_rows(src).into_iter().zip(src.sessions) {
        let st = &s.status;
        snap.peers.push(PeerMetrics {
            peer: row.address,
            state: st.state as i64 + 1,
            uptime_seconds: src
                .now
                .duration_since(st.since)
                .unwrap_or_default()
                .as_secs() as i64,
            msgs_in: st.msgs_in,
            msgs_out: st.msgs_out,
            received: row.received,
            accepted: row.accepted,
            installed: row.installed,
            advertised: row.sent,
        });
    }
    if let Some(f) = fib_status(src) {
        snap.fib_desired = f.desired as u64;
        snap.fib_installed = f.installed as u64;
        snap.fib_pending = f.pending as u64;
        snap.fib_failed = f.failed as u64;
        snap.fib_conflicts = f.conflicts as u64;
        snap.nexthops = f.nexthops.len() as u64;
        snap.nexthops_down = f.nexthops.iter().filter(|h| !h.up).count() as u64;
        snap.nexthop_objects = f.objects_hops as u64;
        snap.nexthop_groups = f.objects_groups as u64;
        snap.fib_ops = f.ops;
    }
    snap
}

/// One prefix with its candidates, for `bgpd show routes PREFIX` and
/// `bgpd show route ADDRESS`.
fn prefix_json(v: &PrefixView) -> serde_json::Value {
    let paths: Vec<serde_json::Value> = v
        .paths
        .iter()
        .map(|p| {
            let (state, why) = match p.state {
                PathState::Best(s) => ("best", s.to_string()),
                PathState::Multipath(s) => ("multipath", format!("equal up to {s}")),
                PathState::Lost(s) => ("lost", s.to_string()),
                PathState::Rejected(r) => ("rejected", r.to_string()),
                PathState::Unresolved => ("unresolved", "next hop unreachable".to_string()),
            };
            let mut j = serde_json::json!({
                "peer": p.peer.to_string(),
                "path_id": p.path_id,
                "state": state,
                "why": why,
                "stale": p.stale,
            });
            attrs_json(&p.attrs, &mut j);
            j
        })
        .collect();
    serde_json::json!({
        "prefix": v.prefix.to_string(),
        "next_hops": v.next_hops.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "paths": paths,
    })
}

/// A route's attributes as the JSON fields every route view shares.
fn attrs_json(a: &PathAttrs, into: &mut serde_json::Value) {
    let fields = serde_json::json!({
        "next_hop": a.next_hop.to_string(),
        "as_path": a.as_path.to_string(),
        "origin": a.origin.to_string(),
        "local_pref": a.local_pref,
        "med": a.med,
        "originator_id": a.originator_id.map(|o| o.to_string()),
        "cluster_list": a.cluster_list.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "communities": a.communities.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "large_communities": a.large_communities.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
    });
    if let (Some(m), serde_json::Value::Object(f)) = (into.as_object_mut(), fields) {
        m.extend(f);
    }
}

fn peer_addr(peer: &str) -> Result<IpAddr, Response> {
    peer.parse::<IpAddr>()
        .map(crate::session::canonical)
        .map_err(|_| Response::err(format!("'{peer}' is not an IP address")))
}

/// `bgpd show routes --received PEER`: every path the peer sent us, with
/// the reason a rejected one was not used.
fn received(c: &Controller, peer: &str) -> Response {
    let addr = match peer_addr(peer) {
        Ok(a) => a,
        Err(r) => return r,
    };
    if c.rib().peer(addr).is_none() {
        return Response::err(format!("{addr} has no session (see bgpd show neighbors)"));
    }
    let rows: Vec<serde_json::Value> = [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST]
        .into_iter()
        .flat_map(|af| c.rib().adj_rib_in(addr, af))
        .map(|(p, id, a, reject)| {
            let mut j = serde_json::json!({
                "prefix": p.to_string(),
                "path_id": id,
                "rejected": reject.map(|r| r.to_string()),
            });
            attrs_json(&a, &mut j);
            j
        })
        .collect();
    Response::ok(rows)
}

/// `bgpd show routes --advertised PEER`: the peer's Adj-RIB-Out, in
/// prefix order.
fn advertised(c: &Controller, peer: &str) -> Response {
    let addr = match peer_addr(peer) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let Some(routes) = c.advertised(addr) else {
        return Response::err(format!(
            "{addr} has no established session (see bgpd show neighbors)"
        ));
    };
    let rows: Vec<serde_json::Value> = routes
        .iter()
        .map(|(p, a)| {
            let mut j = serde_json::json!({ "prefix": p.to_string() });
            attrs_json(a, &mut j);
            j
        })
        .collect();
    Response::ok(rows)
}
