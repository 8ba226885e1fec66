//! Replays of event sequences through the controller: graceful restart,
//! the End-of-RIB initial sync, max-prefix, range policy, reloads and
//! batching. Each checks the actions, and the forwarding state they add
//! up to.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::*;
use crate::fsm::{ConnId, Negotiated};
use crate::route::{AlwaysResolves, NextHop};
use crate::wire::open::{GrFamily, GracefulRestart, Open};
use crate::wire::{AsPath, Attr, Ctx, Nlri, Origin, PathAttribute, Update};

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const RR1: &str = "192.168.83.36";
const RR2: &str = "192.168.83.49";

/// The seed's core: three reflectors, or what `extra` makes of it.
fn config(extra: &str) -> Config {
    let text = format!(
        "local_as = 64512\nrouter_id = \"192.168.83.1\"\n{extra}\n\
         [[peer]]\naddress = \"{RR1}\"\n[[peer]]\naddress = \"{RR2}\"\n"
    );
    crate::config::parse(&text, "test").unwrap()
}

fn controller(cfg: Config) -> (Controller, Vec<Action>) {
    Controller::new(cfg, Box::new(AlwaysResolves), Vec::new(), false)
}

/// An iBGP session of the seed's reflectors, with graceful restart (120 s,
/// IPv4) as Calico's BIRD offers it.
fn up(peer: &str, gr: bool) -> Event {
    let id: Ipv4Addr = match ip(peer) {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => Ipv4Addr::new(10, 0, 0, 1),
    };
    let families = [AfiSafi::IPV4_UNICAST].into_iter().collect();
    Event::Peer(PeerEvent::Up {
        peer: ip(peer),
        negotiated: Box::new(Negotiated {
            remote_as: 64512,
            remote_id: id,
            ibgp: true,
            hold_time: 240,
            keepalive: 80,
            ctx: Ctx {
                four_octet_as: true,
                ..Ctx::default()
            },
            families,
            route_refresh: true,
            enhanced_route_refresh: false,
            peer_graceful_restart: gr.then(|| GracefulRestart {
                flags: 0,
                restart_time: 120,
                families: vec![GrFamily {
                    afi_safi: AfiSafi::IPV4_UNICAST,
                    flags: 0,
                }],
            }),
            peer_llgr: None,
            peer_open: Open::new(64512, 240, id, vec![]),
            conn: ConnId::Outbound,
        }),
        local: ip("192.168.83.1"),
    })
}

pub(super) fn down(peer: &str, reason: DownReason) -> Event {
    Event::Peer(PeerEvent::Down {
        peer: ip(peer),
        reason,
    })
}

pub(super) fn announce(peer: &str, next_hop: &str, prefixes: &[&str]) -> Event {
    let nh: Ipv4Addr = next_hop.parse().unwrap();
    Event::Peer(PeerEvent::Update {
        peer: ip(peer),
        update: Box::new(Update {
            attributes: [
                Attr::Origin(Origin::Igp),
                Attr::AsPath(AsPath::default()),
                Attr::NextHop(nh),
                Attr::LocalPref(100),
            ]
            .into_iter()
            .map(PathAttribute::new)
            .collect(),
            nlri: prefixes
                .iter()
                .map(|p| Nlri {
                    path_id: None,
                    prefix: p.parse().unwrap(),
                })
                .collect(),
            ..Update::default()
        }),
    })
}

pub(super) fn eor(peer: &str) -> Event {
    Event::Peer(PeerEvent::Update {
        peer: ip(peer),
        update: Box::new(Update::end_of_rib(AfiSafi::IPV4_UNICAST)),
    })
}

/// The forwarding state the actions add up to, and what else they asked.
#[derive(Default)]
pub(super) struct World {
    fib: BTreeMap<IpNet, Vec<NextHop>>,
    synced: bool,
    /// (peer, NOTIFICATION code, subcode, restart after).
    failed: Vec<(IpAddr, u8, u8, Option<Duration>)>,
    speaker: Vec<String>,
    notes: Vec<String>,
    reloaded: Vec<String>,
    pub(super) sent: Vec<Burst>,
}

impl World {
    pub(super) fn run(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Fib(cs) => {
                    for c in cs {
                        if c.next_hops.is_empty() {
                            self.fib.remove(&c.prefix);
                        } else {
                            self.fib.insert(c.prefix, c.next_hops.to_vec());
                        }
                    }
                }
                Action::FibInitialSyncDone => self.synced = true,
                Action::Fail {
                    peer,
                    notification,
                    restart_after,
                } => {
                    self.failed
                        .push((peer, notification.code, notification.subcode, restart_after))
                }
                Action::RemovePeer(a) => self.speaker.push(format!("remove {a}")),
                Action::AddPeer(s) => self.speaker.push(format!("add {}", s.addr)),
                Action::SetRanges(r) => self.speaker.push(format!("ranges {}", r.len())),
                Action::Note(n) => self.notes.push(n),
                Action::Send(b) => self.sent.push(b),
                Action::Reloaded(s) => self.reloaded.push(s),
            }
        }
    }

    /// Feeds events as one batch.
    pub(super) fn batch(&mut self, c: &mut Controller, now: Instant, evs: Vec<Event>) {
        for ev in evs {
            let a = c.handle(ev, now);
            self.run(a);
        }
        let a = c.handle(Event::EndOfBatch, now);
        self.run(a);
    }

    fn hops(&self, p: &str) -> Vec<String> {
        self.fib
            .get(&p.parse::<IpNet>().unwrap())
            .map(|v| v.iter().map(|n| n.to_string()).collect())
            .unwrap_or_default()
    }
}

/// The FIB hears of the initial sync once every configured peer sent
/// End-of-RIB, and the routes of the batch so far come before it.
#[test]
fn initial_sync_waits_for_every_configured_peer() {
    let t0 = Instant::now();
    let (mut c, first) = controller(config(""));
    assert!(first.is_empty(), "two peers to wait for");
    let mut w = World::default();
    w.batch(&mut c, t0, vec![up(RR1, true), up(RR2, true)]);
    w.batch(
        &mut c,
        t0,
        vec![
            announce(RR1, "192.168.83.21", &["172.15.190.0/26"]),
            eor(RR1),
        ],
    );
    assert!(!w.synced && !c.synced(), "RR2 has not sent End-of-RIB");
    for ev in [
        announce(RR2, "192.168.83.22", &["172.15.191.0/26"]),
        eor(RR2),
    ] {
        let a = c.handle(ev, t0);
        w.run(a);
    }
    // Within the batch, before its end: the FIB has the routes already.
    assert!(w.synced && c.synced());
    assert_eq!(w.hops("172.15.191.0/26"), ["192.168.83.22"]);
    assert_eq!(w.hops("172.15.190.0/26"), ["192.168.83.21"]);
    // A later End-of-RIB (a session coming back) changes nothing.
    let a = c.handle(eor(RR1), t0);
    assert!(a.iter().all(|a| !matches!(a, Action::FibInitialSyncDone)));
    // Without configured peers the sync is over at once.
    let (_, first) = controller(
        crate::config::parse("local_as = 64512\nrouter_id = \"192.168.83.1\"\n", "t").unwrap(),
    );
    assert!(matches!(first[..], [Action::FibInitialSyncDone]));
}

/// A reflector whose connection is lost keeps its routes (stale) for its
/// restart time, then they go; one that sends a NOTIFICATION loses them
/// at once.
#[test]
fn graceful_restart_keeps_then_expires_stale_routes() {
    let t0 = Instant::now();
    let (mut c, _) = controller(config(""));
    let mut w = World::default();
    w.batch(
        &mut c,
        t0,
        vec![
            up(RR1, true),
            up(RR2, true),
            announce(RR1, "192.168.83.21", &["172.16.0.0/16", "172.15.190.0/26"]),
            announce(RR2, "192.168.83.22", &["172.16.0.0/16"]),
        ],
    );
    assert_eq!(w.hops("172.16.0.0/16"), ["192.168.83.21", "192.168.83.22"]);
    w.batch(&mut c, t0, vec![down(RR1, DownReason::ConnectionLost)]);
    assert_eq!(w.hops("172.15.190.0/26"), ["192.168.83.21"], "kept");
    assert_eq!(c.next_timer(), Some(t0 + Duration::from_secs(120)));
    // Not yet due: nothing.
    let a = c.handle(Event::Timer, t0 + Duration::from_secs(119));
    assert!(a.is_empty());
    let a = c.handle(Event::Timer, t0 + Duration::from_secs(120));
    w.run(a);
    assert!(w.hops("172.15.190.0/26").is_empty(), "gone after 120 s");
    assert_eq!(w.hops("172.16.0.0/16"), ["192.168.83.22"]);
    assert_eq!(c.next_timer(), None);
    // A hard down: at once, no timer.
    let notification = Notification::new(err::CEASE, 2, vec![]);
    w.batch(
        &mut c,
        t0,
        vec![down(RR2, DownReason::Received(notification))],
    );
    assert!(w.fib.is_empty());
    assert_eq!(c.next_timer(), None);
}

/// A session back before the restart time cancels the timer; its routes
/// are replaced by what it sends again.
#[test]
fn a_restarted_peer_cancels_its_stale_timer() {
    let t0 = Instant::now();
    let (mut c, _) = controller(config(""));
    let mut w = World::default();
    w.batch(
        &mut c,
        t0,
        vec![
            up(RR1, true),
            announce(RR1, "192.168.83.21", &["172.15.190.0/26"]),
        ],
    );
    w.batch(&mut c, t0, vec![down(RR1, DownReason::PeerRestarted)]);
    assert!(c.next_timer().is_some());
    w.batch(
        &mut c,
        t0 + Duration::from_secs(5),
        vec![
            up(RR1, true),
            announce(RR1, "192.168.83.23", &["172.15.190.0/26"]),
            eor(RR1),
        ],
    );
    assert_eq!(c.next_timer(), None);
    assert_eq!(w.hops("172.15.190.0/26"), ["192.168.83.23"]);
}

/// Over the limit: the peer's routes never reach the FIB (they go in the
/// batch that would have installed them), and its session is closed with
/// Cease 6/1 and the configured restart delay.
#[test]
fn max_prefix_closes_the_session_and_installs_nothing() {
    let t0 = Instant::now();
    let text = format!(
        "local_as = 64512\nrouter_id = \"192.168.83.1\"\n\
         [[peer]]\naddress = \"{RR1}\"\nmax_prefix = {{ limit = 2, restart_after = \"30s\" }}\n\
         [[peer]]\naddress = \"{RR2}\"\n"
    );
    let cfg = crate::config::parse(&text, "t").unwrap();
    let (mut c, _) = controller(cfg);
    let mut w = World::default();
    w.batch(
        &mut c,
        t0,
        vec![
            up(RR1, false),
            up(RR2, false),
            announce(RR2, "192.168.83.22", &["172.15.1.0/26"]),
            announce(RR1, "192.168.83.21", &["172.15.2.0/26", "172.15.3.0/26"]),
            announce(RR1, "192.168.83.21", &["172.15.4.0/26"]),
        ],
    );
    assert_eq!(
        w.failed,
        [(ip(RR1), 6, 1, Some(Duration::from_secs(30)))],
        "Cease / Maximum Number of Prefixes Reached"
    );
    assert_eq!(
        w.fib.keys().map(|p| p.to_string()).collect::<Vec<_>>(),
        ["172.15.1.0/26"],
        "nothing of RR1 reached the FIB"
    );
    // Its UPDATEs still in flight are ignored.
    w.batch(
        &mut c,
        t0,
        vec![announce(RR1, "192.168.83.21", &["172.15.5.0/26"])],
    );
    assert_eq!(w.fib.len(), 1);
}

/// A dynamic neighbour takes its range's import policy when it comes up.
#[test]
fn a_dynamic_neighbour_takes_its_range_policy() {
    let t0 = Instant::now();
    let cfg = config(
        "[[range]]\nprefix = \"192.168.84.0/24\"\nimport = { deny = [\"172.16.0.0/16\"] }\n",
    );
    let (mut c, _) = controller(cfg);
    let mut w = World::default();
    let node = "192.168.84.10";
    w.batch(
        &mut c,
        t0,
        vec![
            up(node, false),
            announce(node, node, &["172.16.0.0/16", "172.15.7.0/26"]),
        ],
    );
    assert!(w.hops("172.16.0.0/16").is_empty(), "denied by its range");
    assert_eq!(w.hops("172.15.7.0/26"), [node]);
    // A configured peer is not in the range: the global policy.
    w.batch(
        &mut c,
        t0,
        vec![
            up(RR1, false),
            announce(RR1, "192.168.83.21", &["172.16.0.0/16"]),
        ],
    );
    assert_eq!(w.hops("172.16.0.0/16"), ["192.168.83.21"]);
}

/// A reload adds, removes and restarts what changed, re-evaluates a new
/// policy from the Adj-RIB-In without touching the sessions, and reports.
#[test]
fn reload_applies_the_difference() {
    let t0 = Instant::now();
    let (mut c, _) = controller(config(""));
    let mut w = World::default();
    w.batch(
        &mut c,
        t0,
        vec![
            up(RR1, false),
            announce(RR1, "192.168.83.21", &["172.16.0.0/16", "172.15.9.0/26"]),
        ],
    );
    // Policy only: the service CIDR denied, no session touched.
    let new = config("[import]\ndeny = [\"172.16.0.0/16\"]\n");
    let a = c.handle(Event::Reload(Box::new(new)), t0);
    w.run(a);
    assert!(w.speaker.is_empty(), "{:?}", w.speaker);
    assert!(w.hops("172.16.0.0/16").is_empty());
    assert_eq!(w.hops("172.15.9.0/26"), ["192.168.83.21"]);
    assert_eq!(
        w.reloaded.last().unwrap(),
        "reloaded: re-evaluated 192.168.83.36, re-evaluated 192.168.83.49, policy re-evaluated: 1 prefixes changed"
    );
    // Peers: RR2 goes, a new one comes, RR1's hold time changes.
    let text = "local_as = 64512\nrouter_id = \"192.168.83.1\"\n\
                [import]\ndeny = [\"172.16.0.0/16\"]\n\
                [[peer]]\naddress = \"192.168.83.36\"\nhold_time = 30\n\
                [[peer]]\naddress = \"192.168.83.54\"\n";
    let a = c.handle(
        Event::Reload(Box::new(crate::config::parse(text, "t").unwrap())),
        t0,
    );
    w.run(a);
    assert_eq!(
        w.speaker,
        [
            "remove 192.168.83.49",
            "remove 192.168.83.36",
            "add 192.168.83.36",
            "add 192.168.83.54"
        ]
    );
    // The same again: nothing to do.
    let a = c.handle(
        Event::Reload(Box::new(crate::config::parse(text, "t").unwrap())),
        t0,
    );
    w.run(a);
    assert_eq!(w.reloaded.last().unwrap(), "reloaded: no changes");
    assert_eq!(w.speaker.len(), 4);
    // Multipath: from 32 to 1, the ECMP set narrows.
    w.batch(
        &mut c,
        t0,
        vec![
            up("192.168.83.54", false),
            announce("192.168.83.54", "192.168.83.22", &["172.15.9.0/26"]),
        ],
    );
    assert_eq!(w.hops("172.15.9.0/26").len(), 2);
    let one = text.replace("[import]", "multipath = 1\n[import]");
    let a = c.handle(
        Event::Reload(Box::new(crate::config::parse(&one, "t").unwrap())),
        t0,
    );
    w.run(a);
    assert_eq!(w.hops("172.15.9.0/26").len(), 1);
}

/// A batch is full at EVENT_BATCH events or BATCH_PREFIXES prefixes, and
/// its changes leave only at its end (one change set).
#[test]
fn batches_are_bounded_and_decided_at_their_end() {
    let t0 = Instant::now();
    let (mut c, _) = controller(config(""));
    let mut w = World::default();
    w.batch(&mut c, t0, vec![up(RR1, false), up(RR2, false)]);
    let mut fib_actions = 0;
    for i in 0..EVENT_BATCH - 1 {
        assert!(!c.batch_full());
        let p = format!("172.15.{}.{}/26", i / 4, (i % 4) * 64);
        let peer = if i % 2 == 0 { RR1 } else { RR2 };
        for a in c.handle(announce(peer, "192.168.83.21", &[&p]), t0) {
            fib_actions += matches!(a, Action::Fib(_)) as usize;
        }
    }
    assert!(!c.batch_full());
    let _ = c.handle(announce(RR1, "192.168.83.21", &["172.16.0.0/16"]), t0);
    assert!(c.batch_full());
    assert_eq!(fib_actions, 0, "nothing leaves before the batch's end");
    let a = c.handle(Event::EndOfBatch, t0);
    assert!(matches!(&a[..], [Action::Fib(cs)] if cs.len() == EVENT_BATCH));
    assert!(!c.batch_full());
    // By prefixes: one UPDATE of BATCH_PREFIXES prefixes fills it.
    let many: Vec<String> = (0..BATCH_PREFIXES)
        .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
        .collect();
    let refs: Vec<&str> = many.iter().map(|s| s.as_str()).collect();
    let _ = c.handle(announce(RR1, "192.168.83.21", &refs), t0);
    assert!(c.batch_full());
}

/// With neither install nor a view, no change set is handed on; with a
/// view, notes tell of stale routes and rejected prefixes.
#[test]
fn change_sets_and_notes_go_only_where_they_are_read() {
    let t0 = Instant::now();
    let cfg = config("[kernel]\ninstall = false\n");
    let (mut c, _) = Controller::new(cfg.clone(), Box::new(AlwaysResolves), vec![], false);
    let mut acts = Vec::new();
    for ev in [
        up(RR1, true),
        announce(RR1, "192.168.83.21", &["172.15.1.0/26", "0.0.0.0/0"]),
        down(RR1, DownReason::ConnectionLost),
        Event::EndOfBatch,
    ] {
        acts.extend(c.handle(ev, t0));
    }
    assert!(acts.is_empty(), "{acts:?}");
    let (mut c, _) = Controller::new(cfg, Box::new(AlwaysResolves), vec![], true);
    let mut w = World::default();
    w.batch(
        &mut c,
        t0,
        vec![
            up(RR1, true),
            announce(RR1, "192.168.83.21", &["172.15.1.0/26", "0.0.0.0/0"]),
        ],
    );
    assert_eq!(
        w.hops("172.15.1.0/26"),
        ["192.168.83.21"],
        "the view's table"
    );
    assert_eq!(
        w.notes,
        ["192.168.83.36: 0.0.0.0/0 rejected: default route"]
    );
    w.batch(&mut c, t0, vec![down(RR1, DownReason::ConnectionLost)]);
    assert_eq!(
        w.notes[1..],
        [
            "192.168.83.36: routes kept as stale for 120s (graceful restart)",
            "route 172.15.1.0/26 via 192.168.83.21 (stale)"
        ]
    );
}
