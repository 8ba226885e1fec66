//! The optional Prometheus endpoint: a minimal HTTP server answering
//! `GET /metrics` with the text exposition format, encoded with
//! prometheus-client from a snapshot the daemon takes per scrape.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::control::{Query, Request};

/// What one scrape reports.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub peers: Vec<PeerMetrics>,
    pub rib_prefixes: u64,
    pub rib_attribute_sets: u64,
    pub fib_desired: u64,
    pub fib_installed: u64,
    pub fib_pending: u64,
    pub fib_failed: u64,
    pub fib_conflicts: u64,
    pub fib_ops: crate::fib::FibOps,
    /// On-link next hops in use, and those that do not answer ARP/ND.
    pub nexthops: u64,
    pub nexthops_down: u64,
    /// bgpd's kernel nexthop objects: hops and groups.
    pub nexthop_objects: u64,
    pub nexthop_groups: u64,
}

#[derive(Clone, Debug, Default)]
pub struct PeerMetrics {
    pub peer: String,
    /// RFC 4271 state: 1 Idle ... 6 Established.
    pub state: i64,
    pub uptime_seconds: i64,
    pub msgs_in: [u64; 6],
    pub msgs_out: [u64; 6],
    pub received: u64,
    pub accepted: u64,
    pub installed: u64,
    /// Prefixes in the peer's Adj-RIB-Out.
    pub advertised: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MsgLabel {
    peer: String,
    #[prometheus(flatten)]
    kind: KindLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    r#type: String,
}

const TYPES: [&str; 6] = [
    "",
    "open",
    "update",
    "notification",
    "keepalive",
    "route_refresh",
];

/// Encodes a snapshot in the Prometheus text format.
pub fn encode(s: &Snapshot) -> String {
    let mut reg = Registry::with_prefix("bgpd");
    let state = Family::<PeerLabel, Gauge>::default();
    let uptime = Family::<PeerLabel, Gauge>::default();
    let received = Family::<PeerLabel, Gauge>::default();
    let accepted = Family::<PeerLabel, Gauge>::default();
    let installed = Family::<PeerLabel, Gauge>::default();
    let advertised = Family::<PeerLabel, Gauge>::default();
    let msgs_in = Family::<MsgLabel, Counter<u64, AtomicU64>>::default();
    let msgs_out = Family::<MsgLabel, Counter<u64, AtomicU64>>::default();
    for p in &s.peers {
        let l = PeerLabel {
            peer: p.peer.clone(),
        };
        state.get_or_create(&l).set(p.state);
        uptime.get_or_create(&l).set(p.uptime_seconds);
        received.get_or_create(&l).set(p.received as i64);
        accepted.get_or_create(&l).set(p.accepted as i64);
        installed.get_or_create(&l).set(p.installed as i64);
        advertised.get_or_create(&l).set(p.advertised as i64);
        for (t, name) in TYPES.iter().enumerate().skip(1) {
            let ml = MsgLabel {
                peer: p.peer.clone(),
                kind: KindLabel {
                    r#type: name.to_string(),
                },
            };
            msgs_in.get_or_create(&ml).inc_by(p.msgs_in[t]);
            msgs_out.get_or_create(&ml).inc_by(p.msgs_out[t]);
        }
    }
    reg.register(
        "peer_state",
        "BGP session state (1 Idle, 2 Connect, 3 Active, 4 OpenSent, 5 OpenConfirm, 6 Established)",
        state,
    );
    reg.register(
        "peer_uptime_seconds",
        "Seconds since the last state change",
        uptime,
    );
    reg.register(
        "peer_prefixes_received",
        "Paths held from the peer",
        received,
    );
    reg.register(
        "peer_prefixes_accepted",
        "Paths from the peer accepted by import policy",
        accepted,
    );
    reg.register(
        "peer_prefixes_installed",
        "Paths from the peer in use",
        installed,
    );
    reg.register(
        "peer_prefixes_advertised",
        "Prefixes the peer has been sent and not withdrawn (Adj-RIB-Out)",
        advertised,
    );
    reg.register("peer_messages_received", "Messages received", msgs_in);
    reg.register("peer_messages_sent", "Messages sent", msgs_out);
    let g = |v: u64| {
        let g: Gauge = Gauge::default();
        g.set(v as i64);
        g
    };
    reg.register("rib_prefixes", "Prefixes in the Loc-RIB", g(s.rib_prefixes));
    reg.register(
        "rib_attribute_sets",
        "Distinct interned attribute sets",
        g(s.rib_attribute_sets),
    );
    reg.register(
        "fib_routes_desired",
        "Routes the RIB wants in the kernel",
        g(s.fib_desired),
    );
    reg.register(
        "fib_routes_installed",
        "Routes in the kernel",
        g(s.fib_installed),
    );
    reg.register(
        "fib_routes_pending",
        "Routes waiting for a reachable next hop",
        g(s.fib_pending),
    );
    reg.register(
        "fib_routes_failed",
        "Routes the kernel refused (retried)",
        g(s.fib_failed),
    );
    reg.register(
        "fib_routes_conflicting",
        "Prefixes held by another protocol's route",
        g(s.fib_conflicts),
    );
    reg.register(
        "fib_nexthops",
        "On-link next hops in use (probed with ARP/ND)",
        g(s.nexthops),
    );
    reg.register(
        "fib_nexthops_down",
        "Next hops that do not answer ARP/ND, out of every route (bgpd show fib says which)",
        g(s.nexthops_down),
    );
    reg.register(
        "fib_nexthop_objects",
        "bgpd's kernel nexthop objects (one per next hop in use)",
        g(s.nexthop_objects),
    );
    reg.register(
        "fib_nexthop_groups",
        "bgpd's kernel nexthop groups (one per set of next hops in use)",
        g(s.nexthop_groups),
    );
    let c = |v: u64| {
        let c: Counter<u64, AtomicU64> = Counter::default();
        c.inc_by(v);
        c
    };
    reg.register(
        "fib_routes_replaced",
        "Routes added or replaced in the kernel",
        c(s.fib_ops.replaced),
    );
    reg.register(
        "fib_routes_deleted",
        "Routes deleted from the kernel",
        c(s.fib_ops.deleted),
    );
    reg.register(
        "fib_errors",
        "Kernel operations refused (retried)",
        c(s.fib_ops.errors),
    );
    reg.register(
        "fib_unacknowledged",
        "Kernel operations without an ack (reconciled)",
        c(s.fib_ops.unacknowledged),
    );
    reg.register(
        "fib_groups_moved",
        "Nexthop groups replaced in place, moving all their routes in one operation",
        c(s.fib_ops.groups_moved),
    );
    reg.register(
        "fib_routes_spared",
        "Route messages not sent because their group was replaced in place",
        c(s.fib_ops.routes_spared),
    );
    let mut out = String::new();
    let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
    out
}

/// Serves `GET /metrics`, asking the daemon for a snapshot each time.
pub async fn serve(addr: SocketAddr, queries: mpsc::Sender<Query>) -> Result<(), String> {
    let l = TcpListener::bind(addr)
        .await
        .map_err(|e| crate::session::explain_listen_error(addr, &e))?;
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                continue;
            };
            let queries = queries.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 2048];
                let n =
                    match tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf))
                        .await
                    {
                        Ok(Ok(n)) => n,
                        _ => return,
                    };
                let req = String::from_utf8_lossy(&buf[..n]);
                let (status, body) = if req.starts_with("GET /metrics") {
                    let (tx, rx) = tokio::sync::oneshot::channel();
                    let _ = queries
                        .send(Query {
                            request: Request::Metrics,
                            reply: tx,
                        })
                        .await;
                    match rx.await {
                        Ok(r) if r.ok => {
                            ("200 OK", r.data.as_str().unwrap_or_default().to_string())
                        }
                        _ => ("503 Service Unavailable", "bgpd is busy\n".to_string()),
                    }
                } else {
                    ("404 Not Found", "try /metrics\n".to_string())
                };
                let head = format!(
                    "HTTP/1.0 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body.as_bytes()).await;
            });
        }
    });
    Ok(())
}
