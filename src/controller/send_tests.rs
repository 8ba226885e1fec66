//! Replays of the send side through the controller: what each peer is
//! sent, decoded as the peer would decode it. Calico's "ToR as route
//! reflector" design (the nodes are clients), origination, eBGP export,
//! the burst-and-Ready pacing, withdrawals and reloads.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use super::tests::{World, announce, down, eor, ip};
use super::*;
use crate::fsm::{ConnId, Negotiated};
use crate::route::AlwaysResolves;
use crate::wire::open::Open;
use crate::wire::{Attr, Ctx, Message, Nlri, Update, iana};

const N1: &str = "192.168.83.21";
const N2: &str = "192.168.83.22";
const RR1: &str = "192.168.83.36";
const UPSTREAM: &str = "10.0.0.2";
const CORE: &str = "192.168.83.1";

/// The core with the nodes as clients (cluster id 224.0.0.1, as Calico's
/// reflectors use), and whatever `extra` adds.
fn tor(extra: &str) -> Config {
    let text = format!(
        "local_as = 64512\nrouter_id = \"{CORE}\"\ncluster_id = \"224.0.0.1\"\n{extra}\n\
         [[peer]]\naddress = \"{N1}\"\nrr_client = true\n\
         [[peer]]\naddress = \"{N2}\"\nrr_client = true\n"
    );
    crate::config::parse(&text, "test").unwrap()
}

fn controller(cfg: Config) -> Controller {
    Controller::new(cfg, Box::new(AlwaysResolves), Vec::new(), false).0
}

fn up_as(peer: &str, remote_as: u32, local: &str) -> Event {
    let id: Ipv4Addr = peer.parse().unwrap();
    Event::Peer(PeerEvent::Up {
        peer: ip(peer),
        negotiated: Box::new(Negotiated {
            remote_as,
            remote_id: id,
            ibgp: remote_as == 64512,
            hold_time: 90,
            keepalive: 30,
            ctx: Ctx {
                four_octet_as: true,
                ..Ctx::default()
            },
            families: [AfiSafi::IPV4_UNICAST].into_iter().collect(),
            route_refresh: true,
            enhanced_route_refresh: false,
            peer_graceful_restart: None,
            peer_llgr: None,
            peer_open: Open::new(remote_as, 90, id, vec![]),
            conn: ConnId::Outbound,
        }),
        local: ip(local),
    })
}

fn up(peer: &str) -> Event {
    up_as(peer, 64512, CORE)
}

fn ready(peer: &str) -> Event {
    Event::Peer(PeerEvent::Ready { peer: ip(peer) })
}

fn withdraw(peer: &str, prefixes: &[&str]) -> Event {
    Event::Peer(PeerEvent::Update {
        peer: ip(peer),
        update: Box::new(Update {
            withdrawn: prefixes
                .iter()
                .map(|p| Nlri::new(p.parse().unwrap()))
                .collect(),
            ..Update::default()
        }),
    })
}

/// What one peer's table holds after the UPDATEs it was sent, decoded as
/// it would decode them: prefix → attributes; and how many End-of-RIBs.
#[derive(Default, Debug)]
struct PeerView {
    table: BTreeMap<IpNet, Vec<Attr>>,
    eor: usize,
    /// Changes received after End-of-RIB.
    after_eor: usize,
}

/// Every peer's view, from the bursts sent so far (which are taken).
fn views(w: &mut World) -> BTreeMap<IpAddr, PeerView> {
    let mut v: BTreeMap<IpAddr, PeerView> = BTreeMap::new();
    for b in w.sent.drain(..) {
        let pv = v.entry(b.peer).or_default();
        apply(pv, &b);
    }
    v
}

fn apply(pv: &mut PeerView, b: &Burst) {
    let ctx = Ctx {
        four_octet_as: true,
        ..Ctx::default()
    };
    for m in &b.msgs {
        let Message::Update(u) = Message::decode(&ctx, m).expect("a valid UPDATE") else {
            panic!("not an UPDATE");
        };
        assert!(u.errors.is_empty(), "{:?}", u.errors);
        if u.as_end_of_rib().is_some() {
            pv.eor += 1;
            continue;
        }
        if pv.eor > 0 {
            pv.after_eor += 1;
        }
        for n in u.withdrawn_all() {
            pv.table.remove(&n.prefix);
        }
        let attrs: Vec<Attr> = u.attributes.iter().map(|a| a.value.clone()).collect();
        for n in u.announced() {
            pv.table.insert(n.prefix, attrs.clone());
        }
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn attr(attrs: &[Attr], code: u8) -> Option<&Attr> {
    attrs.iter().find(|a| a.code() == code)
}

/// Calico's nodes peer with the core, which reflects every pod block to
/// every other node (RFC 4456 §8): ORIGINATOR_ID is the node that sent
/// it, CLUSTER_LIST starts with our cluster id, the next hop is kept, and
/// the originator is not sent its own route back. Each session's initial
/// table ends with End-of-RIB.
#[test]
fn the_core_reflects_pod_blocks_between_nodes() {
    let t0 = Instant::now();
    let mut c = controller(tor(""));
    let mut w = World::default();
    w.batch(&mut c, t0, vec![up(N1), up(N2)]);
    let mut all = views(&mut w);
    assert_eq!(all.len(), 2);
    for pv in all.values() {
        assert_eq!((pv.eor, pv.table.len()), (1, 0), "empty table, then EoR");
    }
    // Each must say it wrote its burst before it gets the next.
    w.batch(&mut c, t0, vec![ready(N1), ready(N2)]);
    w.batch(
        &mut c,
        t0,
        vec![
            announce(N1, N1, &["172.15.190.0/26"]),
            announce(N2, N2, &["172.15.191.0/26"]),
            eor(N1),
            eor(N2),
        ],
    );
    for b in w.sent.drain(..) {
        apply(all.get_mut(&b.peer).unwrap(), &b);
    }
    let v = &all;
    let to_n2 = &v[&ip(N2)].table;
    assert_eq!(to_n2.keys().collect::<Vec<_>>(), [&net("172.15.190.0/26")]);
    let a = &to_n2[&net("172.15.190.0/26")];
    assert_eq!(
        attr(a, iana::attr::ORIGINATOR_ID),
        Some(&Attr::OriginatorId(N1.parse().unwrap()))
    );
    assert_eq!(
        attr(a, iana::attr::CLUSTER_LIST),
        Some(&Attr::ClusterList(vec![Ipv4Addr::new(224, 0, 0, 1)]))
    );
    assert_eq!(
        attr(a, iana::attr::NEXT_HOP),
        Some(&Attr::NextHop(N1.parse().unwrap())),
        "iBGP keeps the next hop"
    );
    assert_eq!(
        v[&ip(N1)].table.keys().collect::<Vec<_>>(),
        [&net("172.15.191.0/26")],
        "N1 gets N2's block only"
    );

    // N1 withdraws: N2 is told. N2 goes away: its block is withdrawn
    // from N1.
    let mut more = |w: &mut World| {
        for b in w.sent.drain(..) {
            apply(all.entry(b.peer).or_default(), &b);
        }
    };
    w.batch(&mut c, t0, vec![ready(N1), ready(N2)]);
    w.batch(&mut c, t0, vec![withdraw(N1, &["172.15.190.0/26"])]);
    more(&mut w);
    w.batch(&mut c, t0, vec![ready(N2)]);
    w.batch(
        &mut c,
        t0,
        vec![down(N2, crate::fsm::DownReason::ConnectionLost)],
    );
    more(&mut w);
    assert!(all[&ip(N2)].table.is_empty(), "{all:?}");
    assert!(all[&ip(N1)].table.is_empty(), "{all:?}");
    assert_eq!(all[&ip(N1)].after_eor, 2, "N2's block, then its withdrawal");
}

/// A reflector's routes (a non-client iBGP peer: the seed's setup) are
/// reflected to clients but not to other non-clients, and a client's
/// routes go to everyone (RFC 4456 §8).
#[test]
fn non_clients_get_client_routes_only() {
    let t0 = Instant::now();
    let mut c = controller(tor(&format!(
        "[[peer]]\naddress = \"{RR1}\"\n[[peer]]\naddress = \"192.168.83.49\"\n"
    )));
    let mut w = World::default();
    w.batch(&mut c, t0, vec![up(N1), up(RR1), up("192.168.83.49")]);
    views(&mut w);
    w.batch(
        &mut c,
        t0,
        vec![ready(N1), ready(RR1), ready("192.168.83.49")],
    );
    w.batch(
        &mut c,
        t0,
        vec![
            announce(RR1, "192.168.83.30", &["172.16.0.0/16"]),
            announce(N1, N1, &["172.15.190.0/26"]),
        ],
    );
    let v = views(&mut w);
    let keys = |p: &str| {
        v[&ip(p)]
            .table
            .keys()
            .map(|k| k.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(N1), ["172.16.0.0/16"]);
    assert_eq!(keys(RR1), ["172.15.190.0/26"]);
    assert_eq!(keys("192.168.83.49"), ["172.15.190.0/26"]);
}

/// `[[network]]`s and `default_originate`: our own routes, with our
/// session address as next hop, ORIGIN IGP and LOCAL_PREF 100 over iBGP.
/// A reload that removes the network withdraws it and sends nothing else.
#[test]
fn networks_and_a_default_route_are_announced() {
    let t0 = Instant::now();
    let extra = "[[network]]\nprefix = \"192.168.82.0/24\"\n";
    let cfg = |extra: &str| {
        let text = format!(
            "local_as = 64512\nrouter_id = \"{CORE}\"\n{extra}\n\
             [[peer]]\naddress = \"{RR1}\"\ndefault_originate = true\n"
        );
        crate::config::parse(&text, "test").unwrap()
    };
    let mut c = controller(cfg(extra));
    let mut w = World::default();
    w.batch(&mut c, t0, vec![up_as(RR1, 64512, "192.168.83.2")]);
    let v = views(&mut w);
    let pv = &v[&ip(RR1)];
    assert_eq!(pv.eor, 1);
    assert_eq!(
        pv.table.keys().map(|k| k.to_string()).collect::<Vec<_>>(),
        ["0.0.0.0/0", "192.168.82.0/24"]
    );
    for a in pv.table.values() {
        assert_eq!(
            attr(a, iana::attr::NEXT_HOP),
            Some(&Attr::NextHop(Ipv4Addr::new(192, 168, 83, 2))),
            "the session's own address"
        );
        assert_eq!(attr(a, iana::attr::LOCAL_PREF), Some(&Attr::LocalPref(100)));
        assert!(attr(a, iana::attr::ORIGINATOR_ID).is_none());
    }
    w.batch(&mut c, t0, vec![ready(RR1)]);
    assert!(w.sent.is_empty(), "nothing changed, nothing sent");
    let a = c.handle(Event::Reload(Box::new(cfg(""))), t0);
    w.run(a);
    assert_eq!(w.sent.len(), 1);
    let b = &w.sent[0];
    assert_eq!((b.announced, b.withdrawn), (0, 1), "only the difference");
}

/// eBGP: nothing without an export policy (RFC 8212); with one, our AS
/// prepended, the next hop ourselves, no LOCAL_PREF (RFC 4271 §5.1.5),
/// and the policy's prefix list applied.
#[test]
fn ebgp_export_needs_a_policy_and_rewrites_the_path() {
    let t0 = Instant::now();
    let text = |export: &str| {
        format!(
            "local_as = 64512\nrouter_id = \"{CORE}\"\n\
             [[peer]]\naddress = \"{RR1}\"\n\
             [[peer]]\naddress = \"{UPSTREAM}\"\nremote_as = 65001\n{export}\n"
        )
    };
    for (export, want) in [
        ("", vec![]),
        (
            "export = { allow = [\"172.16.0.0/16\"] }",
            vec!["172.16.0.0/16"],
        ),
    ] {
        let mut c = controller(crate::config::parse(&text(export), "t").unwrap());
        let mut w = World::default();
        w.batch(
            &mut c,
            t0,
            vec![up(RR1), up_as(UPSTREAM, 65001, "10.0.0.1")],
        );
        views(&mut w);
        w.batch(&mut c, t0, vec![ready(RR1), ready(UPSTREAM)]);
        w.batch(
            &mut c,
            t0,
            vec![announce(
                RR1,
                "192.168.83.30",
                &["172.16.0.0/16", "172.15.190.0/26"],
            )],
        );
        let v = views(&mut w);
        let got: Vec<String> = v
            .get(&ip(UPSTREAM))
            .map(|pv| pv.table.keys().map(|k| k.to_string()).collect())
            .unwrap_or_default();
        assert_eq!(got, want, "export {export:?}");
        if let Some(a) = v.get(&ip(UPSTREAM)).and_then(|pv| pv.table.values().next()) {
            assert_eq!(
                attr(a, iana::attr::AS_PATH),
                Some(&Attr::AsPath(crate::wire::AsPath::sequence(vec![64512])))
            );
            assert_eq!(
                attr(a, iana::attr::NEXT_HOP),
                Some(&Attr::NextHop(Ipv4Addr::new(10, 0, 0, 1)))
            );
            assert!(attr(a, iana::attr::LOCAL_PREF).is_none());
        }
        assert!(
            !v.contains_key(&ip(RR1)),
            "iBGP routes are not sent back over iBGP"
        );
    }
}

/// A table larger than one burst goes out a burst per Ready, End-of-RIB
/// after the last; a peer that has not said Ready gets nothing more, and
/// what changes meanwhile collapses to the latest state per prefix.
#[test]
fn bursts_wait_for_ready_and_collapse_to_the_latest_state() {
    let t0 = Instant::now();
    let mut c = controller(tor(""));
    let mut w = World::default();
    let many: Vec<String> = (0..BURST + 100)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .collect();
    let refs: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
    w.batch(&mut c, t0, vec![up(N1)]);
    w.batch(&mut c, t0, vec![ready(N1)]);
    for chunk in refs.chunks(1000) {
        w.batch(&mut c, t0, vec![announce(N1, N1, chunk)]);
    }
    w.batch(&mut c, t0, vec![up(N2)]);
    assert_eq!(w.sent.len(), 2, "N1's EoR, then N2's first burst");
    let first = w.sent.pop().unwrap();
    assert_eq!(first.peer, ip(N2));
    assert_eq!(first.announced, BURST);
    w.sent.clear();
    // Not ready: N1 flaps a prefix N2 has been sent and one it has not;
    // nothing goes out until N2 says Ready.
    let mut pv = PeerView::default();
    apply(&mut pv, &first);
    let sent_one = pv.table.keys().next().unwrap().to_string();
    let sent_one = sent_one.as_str();
    let unsent = refs
        .iter()
        .find(|p| !pv.table.contains_key(&net(p)))
        .unwrap();
    for _ in 0..5 {
        w.batch(&mut c, t0, vec![withdraw(N1, &[sent_one, unsent])]);
        w.batch(&mut c, t0, vec![announce(N1, N1, &[sent_one, unsent])]);
    }
    w.batch(&mut c, t0, vec![withdraw(N1, &[sent_one])]);
    assert!(w.sent.is_empty(), "{:?}", w.sent.len());
    assert_eq!(c.sent_counts(ip(N2)), Some((BURST, 101)));
    w.batch(&mut c, t0, vec![ready(N2)]);
    let rest = w.sent.pop().unwrap();
    assert_eq!((rest.announced, rest.withdrawn), (100, 1));
    apply(&mut pv, &rest);
    assert_eq!(pv.eor, 1, "End-of-RIB after the whole table");
    assert_eq!(pv.after_eor, 0);
    assert_eq!(pv.table.len(), BURST + 99);
    assert!(!pv.table.contains_key(&net(sent_one)));
    assert!(pv.table.contains_key(&net(unsent)));
}

/// A route refresh (RFC 2918) is answered with the whole table again.
#[test]
fn a_route_refresh_resends_the_table() {
    let t0 = Instant::now();
    let mut c = controller(tor(""));
    let mut w = World::default();
    w.batch(&mut c, t0, vec![up(N1), up(N2)]);
    w.batch(&mut c, t0, vec![ready(N1), ready(N2)]);
    w.batch(&mut c, t0, vec![announce(N1, N1, &["172.15.190.0/26"])]);
    views(&mut w);
    w.batch(&mut c, t0, vec![ready(N2)]);
    w.batch(
        &mut c,
        t0,
        vec![Event::Peer(PeerEvent::RouteRefresh {
            peer: ip(N2),
            refresh: crate::wire::RouteRefresh {
                afi_safi: AfiSafi::IPV4_UNICAST,
                subtype: 0,
                trailing: bytes::Bytes::new(),
            },
        })],
    );
    let v = views(&mut w);
    assert_eq!(v[&ip(N2)].table.len(), 1);
    assert!(!v.contains_key(&ip(N1)));
}

/// The seed's core (its peers are non-client reflectors, nothing of its
/// own): each session gets End-of-RIB and nothing else, and the table is
/// not tracked for export.
#[test]
fn the_seed_core_sends_end_of_rib_only() {
    let t0 = Instant::now();
    let text = format!(
        "local_as = 64512\nrouter_id = \"{CORE}\"\n\
         [[peer]]\naddress = \"{RR1}\"\n[[peer]]\naddress = \"192.168.83.49\"\n"
    );
    let cfg = crate::config::parse(&text, "t").unwrap();
    assert!(!cfg.speaks());
    let mut c = controller(cfg);
    let mut w = World::default();
    w.batch(&mut c, t0, vec![up(RR1)]);
    w.batch(
        &mut c,
        t0,
        vec![announce(RR1, "192.168.83.30", &["172.16.0.0/16"]), eor(RR1)],
    );
    w.batch(&mut c, t0, vec![ready(RR1), up("192.168.83.49")]);
    let v = views(&mut w);
    for p in [RR1, "192.168.83.49"] {
        assert_eq!((v[&ip(p)].eor, v[&ip(p)].table.len()), (1, 0), "{p}");
    }
    assert!(c.rib.take_export().1.is_empty());
}
