//! The routing table (src/rib): the Calico-shaped case, graceful restart,
//! treat-as-withdraw, policy, max-prefix, multipath and IPv6.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use bgpd::rib::{
    Down, GrInfo, ImportPolicy, MaxPrefix, MaxPrefixEvent, PathState, PeerInfo, PeerPolicy, Policy,
    PrefixMatch, Reject, Rib, RibConfig, Step,
};
use bgpd::route::{ChangeSet, NextHop, Resolver, RouteChange};
use bgpd::wire::{
    Action, AfiSafi, AsPath, Attr, AttrError, Community, MpNlri, MpReach, MpUnreach,
    NextHop as WireNh, Nlri, Notification, Origin, PathAttribute, SegmentType, Update,
};
use ipnet::IpNet;

const AS: u32 = 64512;
const CLUSTER: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}
fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}
fn nh(s: &str) -> NextHop {
    NextHop::new(ip(s))
}

fn rib() -> Rib {
    Rib::new(RibConfig::new(AS, v4("192.168.83.1")))
}

/// A Calico reflector: iBGP, GR restart time 120, IPv4 unicast.
fn reflector(id: &str) -> PeerInfo {
    PeerInfo {
        graceful_restart: Some(GrInfo {
            restart_time: Duration::from_secs(120),
            families: vec![(AfiSafi::IPV4_UNICAST, false)],
        }),
        ..PeerInfo::ibgp(AS, v4(id))
    }
}

/// An UPDATE as BIRD sends a reflected route: ORIGIN IGP, empty AS_PATH,
/// NEXT_HOP, LOCAL_PREF 100, ORIGINATOR_ID, CLUSTER_LIST.
struct U {
    attrs: Vec<Attr>,
    nlri: Vec<Nlri>,
    withdrawn: Vec<Nlri>,
}

impl U {
    fn new(next_hop: &str) -> U {
        U {
            attrs: vec![
                Attr::Origin(Origin::Igp),
                Attr::AsPath(AsPath::default()),
                Attr::NextHop(v4(next_hop)),
                Attr::LocalPref(100),
            ],
            nlri: vec![],
            withdrawn: vec![],
        }
    }
    fn reflected(next_hop: &str) -> U {
        U::new(next_hop)
            .attr(Attr::OriginatorId(v4(next_hop)))
            .attr(Attr::ClusterList(vec![CLUSTER]))
    }
    fn attr(mut self, a: Attr) -> U {
        self.attrs.retain(|x| x.code() != a.code());
        self.attrs.push(a);
        self
    }
    fn nlri(mut self, p: &str, id: Option<u32>) -> U {
        self.nlri.push(Nlri {
            path_id: id,
            prefix: net(p),
        });
        self
    }
    fn withdraw(mut self, p: &str, id: Option<u32>) -> U {
        self.withdrawn.push(Nlri {
            path_id: id,
            prefix: net(p),
        });
        self
    }
    fn build(self) -> Update {
        Update {
            withdrawn: self.withdrawn,
            attributes: if self.nlri.is_empty() {
                vec![]
            } else {
                self.attrs.into_iter().map(PathAttribute::new).collect()
            },
            nlri: self.nlri,
            errors: vec![],
        }
    }
}

/// Applies changes in order to a FIB model.
fn apply(fib: &mut BTreeMap<IpNet, Vec<NextHop>>, changes: &[RouteChange]) {
    for c in changes {
        if c.next_hops.is_empty() {
            fib.remove(&c.prefix);
        } else {
            fib.insert(c.prefix, c.next_hops.to_vec());
        }
    }
}

/// One UPDATE decided at once, as a lone UPDATE in a daemon batch:
/// [`Rib::update`], then [`Rib::commit`], one change per prefix.
struct Decided {
    changes: ChangeSet,
    max_prefix: Option<MaxPrefixEvent>,
}

fn update(rib: &mut Rib, peer: IpAddr, u: &Update, now: Instant) -> Decided {
    let mut changes = ChangeSet::new();
    let max_prefix = rib.update(peer, u, now, &mut changes);
    changes.append(rib.commit());
    changes.dedup();
    Decided {
        changes,
        max_prefix,
    }
}

/// [`Rib::update`] alone: the changes known before the batch's commit.
fn deferred(rib: &mut Rib, peer: IpAddr, u: &Update, now: Instant) -> ChangeSet {
    let mut changes = ChangeSet::new();
    rib.update(peer, u, now, &mut changes);
    changes
}

fn installed(rib: &Rib) -> BTreeMap<IpNet, Vec<NextHop>> {
    rib.installed()
        .into_iter()
        .map(|c| (c.prefix, c.next_hops.to_vec()))
        .collect()
}

#[test]
fn calico_three_reflectors_add_path() {
    let now = Instant::now();
    let mut rib = rib();
    let mut fib = BTreeMap::new();
    let rrs = ["192.168.83.11", "192.168.83.12", "192.168.83.13"];
    for rr in rrs {
        assert!(rib.peer_up(ip(rr), reflector(rr)).is_empty());
    }
    // 5 nodes, each with a /26 block and the service CIDR; every
    // reflector reflects every node's routes, each node's path with its
    // own path id (ADD-PATH), in a different order per reflector.
    for (r, rr) in rrs.iter().enumerate() {
        for k in 0..5 {
            let n = (k + r * 2) % 5;
            let node = format!("192.168.83.{}", 21 + n);
            let u = U::reflected(&node)
                .nlri(&format!("172.15.{n}.0/26"), Some(n as u32 + 1))
                .nlri("172.16.0.0/16", Some(n as u32 + 1))
                .build();
            let out = update(&mut rib, ip(rr), &u, now);
            assert_eq!(out.max_prefix, None);
            apply(&mut fib, &out.changes);
        }
    }
    let want_nodes: Vec<NextHop> = (21..26).map(|i| nh(&format!("192.168.83.{i}"))).collect();
    assert_eq!(fib.len(), 6);
    for n in 0..5 {
        assert_eq!(
            fib[&net(&format!("172.15.{n}.0/26"))],
            vec![want_nodes[n]],
            "block {n}"
        );
    }
    assert_eq!(fib[&net("172.16.0.0/16")], want_nodes);
    assert_eq!(fib, installed(&rib));
    // The service CIDR has 15 candidate paths (3 reflectors x 5 nodes),
    // all in the multipath set; the best is decided at the router id
    // (ORIGINATOR_ID) step.
    let v = rib.prefix(net("172.16.0.0/16")).unwrap();
    assert_eq!(v.paths.len(), 15);
    assert_eq!(v.paths[0].state, PathState::Best(Step::PeerAddress));
    assert_eq!(v.paths[0].attrs.originator_id, Some(v4("192.168.83.21")));
    assert!(
        v.paths[1..]
            .iter()
            .all(|p| matches!(p.state, PathState::Multipath(_)))
    );
    // Longest-prefix match.
    assert_eq!(
        rib.lookup(ip("172.15.3.9")).unwrap().prefix,
        net("172.15.3.0/26")
    );
    assert_eq!(
        rib.lookup(ip("172.16.200.1")).unwrap().next_hops,
        want_nodes
    );
    assert!(rib.lookup(ip("10.0.0.1")).is_none());
    // Counters.
    let c = rib.peer(ip(rrs[0])).unwrap().counters;
    assert_eq!(
        (c.ipv4.received, c.ipv4.accepted, c.ipv4.rejected),
        (10, 10, 0)
    );
    // One interned attribute set per node.
    assert_eq!(rib.attr_sets(), 5);

    // A node goes away: every reflector withdraws its paths.
    for rr in rrs {
        let u = U::new("0.0.0.0")
            .withdraw("172.15.4.0/26", Some(5))
            .withdraw("172.16.0.0/16", Some(5))
            .build();
        apply(&mut fib, &update(&mut rib, ip(rr), &u, now).changes);
    }
    assert!(!fib.contains_key(&net("172.15.4.0/26")));
    assert_eq!(fib[&net("172.16.0.0/16")], want_nodes[..4].to_vec());
    assert_eq!(fib, installed(&rib));
}

#[test]
fn without_add_path_one_path_per_reflector() {
    let now = Instant::now();
    let mut rib = rib();
    for (i, rr) in ["192.168.83.11", "192.168.83.12"].iter().enumerate() {
        rib.peer_up(ip(rr), reflector(rr));
        let u = U::reflected(&format!("192.168.83.{}", 21 + i))
            .nlri("172.16.0.0/16", None)
            .build();
        update(&mut rib, ip(rr), &u, now);
    }
    assert_eq!(
        installed(&rib)[&net("172.16.0.0/16")],
        vec![nh("192.168.83.21"), nh("192.168.83.22")]
    );
    // Re-announcing replaces the peer's path (no path id = id 0).
    let u = U::reflected("192.168.83.23")
        .nlri("172.16.0.0/16", None)
        .build();
    let out = update(&mut rib, ip("192.168.83.11"), &u, now);
    assert_eq!(
        out.changes,
        vec![RouteChange {
            prefix: net("172.16.0.0/16"),
            next_hops: vec![nh("192.168.83.22"), nh("192.168.83.23")].into()
        }]
    );
}

#[test]
fn graceful_restart_stale_refresh_end_of_rib() {
    let t0 = Instant::now();
    let mut rib = rib();
    let rr = ip("192.168.83.11");
    rib.peer_up(rr, reflector("192.168.83.11"));
    let u = U::reflected("192.168.83.21")
        .nlri("172.15.0.0/26", None)
        .nlri("172.15.0.64/26", None)
        .build();
    update(&mut rib, rr, &u, t0);
    let before = installed(&rib);

    // The TCP session drops: routes stay, stale, for the restart time.
    let (changes, timer) = rib.peer_down(rr, t0, Down::Graceful);
    assert!(changes.is_empty());
    assert_eq!(timer, Some(Duration::from_secs(120)));
    assert_eq!(installed(&rib), before);
    let st = rib.peer(rr).unwrap();
    assert_eq!(st.counters.ipv4.stale, 2);
    assert_eq!(st.stale_until, Some(t0 + Duration::from_secs(120)));
    assert!(rib.routes().all(|r| r.stale));

    // It comes back (the restarted BIRD sets the F bit), refreshes one
    // route, then End-of-RIB removes the leftover.
    let mut info = reflector("192.168.83.11");
    info.graceful_restart.as_mut().unwrap().families = vec![(AfiSafi::IPV4_UNICAST, true)];
    assert!(rib.peer_up(rr, info).is_empty());
    let u = U::reflected("192.168.83.21")
        .nlri("172.15.0.0/26", None)
        .build();
    assert!(update(&mut rib, rr, &u, t0).changes.is_empty());
    assert_eq!(rib.peer(rr).unwrap().counters.ipv4.stale, 1);
    let eor = Update::end_of_rib(AfiSafi::IPV4_UNICAST);
    let out = update(&mut rib, rr, &eor, t0);
    assert_eq!(
        out.changes,
        vec![RouteChange {
            prefix: net("172.15.0.64/26"),
            next_hops: Default::default()
        }]
    );
    assert_eq!(rib.peer(rr).unwrap().counters.ipv4.stale, 0);
    assert_eq!(rib.peer(rr).unwrap().stale_until, None);
    // The timer firing later finds nothing.
    assert_eq!(rib.stale_timer_expired(rr, t0), (ChangeSet::new(), None));
}

#[test]
fn graceful_restart_timer_expiry_and_hard_down() {
    let t0 = Instant::now();
    let mut rib = rib();
    let rr = ip("192.168.83.11");
    rib.peer_up(rr, reflector("192.168.83.11"));
    let u = U::reflected("192.168.83.21")
        .nlri("172.15.0.0/26", None)
        .build();
    update(&mut rib, rr, &u, t0);
    rib.peer_down(rr, t0, Down::Graceful);
    let gone = vec![RouteChange {
        prefix: net("172.15.0.0/26"),
        next_hops: Default::default(),
    }];
    assert_eq!(rib.stale_timer_expired(rr, t0), (gone.clone().into(), None));
    assert!(rib.is_empty());

    // A NOTIFICATION (hard down) removes at once, GR or not.
    rib.peer_up(rr, reflector("192.168.83.11"));
    update(&mut rib, rr, &u, t0);
    let (changes, timer) = rib.peer_down(rr, t0, Down::Hard);
    assert_eq!((changes, timer), (gone.clone().into(), None));

    // A peer without GR: removed at once.
    rib.peer_up(rr, PeerInfo::ibgp(AS, v4("192.168.83.11")));
    update(&mut rib, rr, &u, t0);
    assert_eq!(
        rib.peer_down(rr, t0, Down::Graceful),
        (gone.clone().into(), None)
    );

    // Re-established without the Forwarding bit: stale routes go at once
    // (RFC 4724 §4.2).
    rib.peer_up(rr, reflector("192.168.83.11"));
    update(&mut rib, rr, &u, t0);
    rib.peer_down(rr, t0, Down::Graceful);
    assert_eq!(rib.peer_up(rr, reflector("192.168.83.11")), gone);
}

/// RFC 9494: when the restart time is over, a peer with long-lived
/// graceful restart keeps its stale routes for the long-lived stale time,
/// marked LLGR_STALE and least preferred; NO_LLGR routes go.
#[test]
fn long_lived_graceful_restart() {
    let t0 = Instant::now();
    let llst = Duration::from_secs(3600);
    let restart = Duration::from_secs(120);
    for restart_time in [restart, Duration::ZERO] {
        let mut rib = rib();
        let (r1, r2) = (ip("192.168.83.11"), ip("192.168.83.12"));
        let mut info = reflector("192.168.83.11");
        info.graceful_restart.as_mut().unwrap().restart_time = restart_time;
        info.llgr = vec![(AfiSafi::IPV4_UNICAST, llst)];
        rib.peer_up(r1, info.clone());
        rib.peer_up(r2, PeerInfo::ibgp(AS, v4("192.168.83.12")));
        let u = U::reflected("192.168.83.21")
            .attr(Attr::LocalPref(200))
            .nlri("172.15.0.0/26", None)
            .build();
        update(&mut rib, r1, &u, t0);
        let u = U::reflected("192.168.83.21")
            .attr(Attr::Communities(vec![Community::NO_LLGR]))
            .nlri("172.15.0.64/26", None)
            .build();
        update(&mut rib, r1, &u, t0);
        // The other peer's path is worse (LOCAL_PREF 100).
        let u = U::reflected("192.168.83.22")
            .nlri("172.15.0.0/26", None)
            .build();
        update(&mut rib, r2, &u, t0);
        let via = |rib: &Rib, p: &str| installed(rib).get(&net(p)).cloned();
        assert_eq!(via(&rib, "172.15.0.0/26"), Some(vec![nh("192.168.83.21")]));

        let (changes, timer) = rib.peer_down(r1, t0, Down::Graceful);
        let t1 = if restart_time.is_zero() {
            // Straight to the long-lived phase.
            assert_eq!(timer, Some(llst));
            assert!(rib.in_long_lived_stale(r1));
            apply_check(&changes);
            t0
        } else {
            // Graceful restart first: stale, still preferred.
            assert!(changes.is_empty());
            assert_eq!(timer, Some(restart));
            assert!(!rib.in_long_lived_stale(r1));
            assert_eq!(via(&rib, "172.15.0.0/26"), Some(vec![nh("192.168.83.21")]));
            let t1 = t0 + restart;
            let (changes, timer) = rib.stale_timer_expired(r1, t1);
            assert_eq!(timer, Some(llst));
            apply_check(&changes);
            t1
        };
        fn apply_check(changes: &ChangeSet) {
            let mut got: Vec<(String, Vec<NextHop>)> = changes
                .iter()
                .map(|c| (c.prefix.to_string(), c.next_hops.to_vec()))
                .collect();
            got.sort();
            assert_eq!(
                got,
                vec![
                    ("172.15.0.0/26".to_string(), vec![nh("192.168.83.22")]),
                    ("172.15.0.64/26".to_string(), vec![]),
                ],
                "the long-lived stale path is least preferred; NO_LLGR goes"
            );
        }
        let r = rib.prefix(net("172.15.0.0/26")).expect("the prefix");
        let stale = r
            .paths
            .iter()
            .find(|p| p.peer == r1)
            .expect("r1's path kept");
        assert!(stale.stale);
        assert!(stale.attrs.communities.contains(&Community::LLGR_STALE));
        assert_eq!(rib.peer(r1).unwrap().stale_until, Some(t1 + llst));
        // The other peer goes too: the long-lived stale path is used.
        let (changes, _) = rib.peer_down(r2, t1, Down::Hard);
        assert_eq!(
            changes,
            vec![RouteChange {
                prefix: net("172.15.0.0/26"),
                next_hops: vec![nh("192.168.83.21")].into()
            }]
        );
        // The long-lived stale time ends: gone.
        let (changes, timer) = rib.stale_timer_expired(r1, t1 + llst);
        assert_eq!(timer, None);
        assert_eq!(
            changes,
            vec![RouteChange {
                prefix: net("172.15.0.0/26"),
                next_hops: Default::default()
            }]
        );
        assert!(rib.is_empty());
        assert!(!rib.in_long_lived_stale(r1));
    }

    // Back before the end: the End-of-RIB clears what was not sent again.
    let mut rib = rib();
    let r1 = ip("192.168.83.11");
    let mut info = reflector("192.168.83.11");
    info.graceful_restart.as_mut().unwrap().families = vec![(AfiSafi::IPV4_UNICAST, true)];
    info.llgr = vec![(AfiSafi::IPV4_UNICAST, llst)];
    rib.peer_up(r1, info.clone());
    let u = U::reflected("192.168.83.21")
        .nlri("172.15.0.0/26", None)
        .nlri("172.15.0.64/26", None)
        .build();
    update(&mut rib, r1, &u, t0);
    rib.peer_down(r1, t0, Down::Graceful);
    rib.stale_timer_expired(r1, t0 + restart);
    assert!(rib.in_long_lived_stale(r1));
    rib.peer_up(r1, info);
    assert!(!rib.in_long_lived_stale(r1));
    let u = U::reflected("192.168.83.21")
        .nlri("172.15.0.0/26", None)
        .build();
    update(&mut rib, r1, &u, t0);
    let r = rib.prefix(net("172.15.0.0/26")).unwrap();
    assert!(
        !r.paths[0].stale
            && !r.paths[0]
                .attrs
                .communities
                .contains(&Community::LLGR_STALE)
    );
    let out = update(&mut rib, r1, &Update::end_of_rib(AfiSafi::IPV4_UNICAST), t0);
    assert_eq!(
        out.changes,
        vec![RouteChange {
            prefix: net("172.15.0.64/26"),
            next_hops: Default::default()
        }]
    );
    assert_eq!(rib.peer(r1).unwrap().counters.ipv4.stale, 0);
}

#[test]
fn treat_as_withdraw() {
    let now = Instant::now();
    let mut rib = rib();
    let rr = ip("192.168.83.11");
    rib.peer_up(rr, reflector("192.168.83.11"));
    let u = U::reflected("192.168.83.21")
        .nlri("172.15.0.0/26", None)
        .nlri("172.15.0.64/26", None)
        .build();
    update(&mut rib, rr, &u, now);
    // The same NLRI again, but with an attribute error whose RFC 7606
    // action is treat-as-withdraw: both prefixes are withdrawn.
    let mut bad = U::reflected("192.168.83.22")
        .nlri("172.15.0.0/26", None)
        .nlri("172.15.0.64/26", None)
        .build();
    bad.errors.push(AttrError {
        action: Action::TreatAsWithdraw,
        type_code: 4,
        notification: Notification::new(3, 5, bytes::Bytes::new()),
        reason: "MED of bad length".into(),
    });
    assert!(bad.treat_as_withdraw());
    let out = update(&mut rib, rr, &bad, now);
    assert_eq!(out.changes.len(), 2);
    assert!(out.changes.iter().all(|c| c.is_withdraw()));
    assert!(rib.is_empty());
    assert_eq!(rib.peer(rr).unwrap().counters.treat_as_withdraw, 1);
}

#[test]
fn policy_defaults_allow_list_and_explicit_allow() {
    let now = Instant::now();
    let mut rib = rib();
    let rr = ip("192.168.83.11");
    rib.peer_up(rr, reflector("192.168.83.11"));
    rib.set_connected(vec![net("192.168.83.0/24"), net("10.1.0.0/16")]);
    let u = U::reflected("192.168.83.21")
        .nlri("0.0.0.0/0", None)
        .nlri("127.0.0.0/8", None)
        .nlri("224.1.0.0/16", None)
        .nlri("192.168.83.0/24", None) // the LAN itself
        .nlri("10.0.0.0/8", None) // covers a connected network
        .nlri("10.1.2.0/24", None) // inside one: fine
        .nlri("172.15.0.0/26", None)
        .build();
    let out = update(&mut rib, rr, &u, now);
    let got: Vec<IpNet> = out.changes.iter().map(|c| c.prefix).collect();
    assert_eq!(got, vec![net("10.1.2.0/24"), net("172.15.0.0/26")]);
    fn reason(rib: &Rib, p: &str) -> Reject {
        let v = rib.prefix(net(p)).unwrap();
        assert!(v.next_hops.is_empty());
        match v.paths[0].state {
            PathState::Rejected(r) => r,
            s => panic!("{p}: {s:?}"),
        }
    }
    assert_eq!(reason(&rib, "0.0.0.0/0"), Reject::DefaultRoute);
    assert_eq!(reason(&rib, "127.0.0.0/8"), Reject::Martian);
    assert_eq!(reason(&rib, "224.1.0.0/16"), Reject::Martian);
    assert_eq!(reason(&rib, "192.168.83.0/24"), Reject::Connected);
    assert_eq!(reason(&rib, "10.0.0.0/8"), Reject::Connected);
    let c = rib.peer(rr).unwrap().counters.ipv4;
    assert_eq!((c.received, c.accepted, c.rejected), (7, 2, 5));
    assert_eq!(rib.routes().filter(|r| r.rejected > 0).count(), 5);

    // An allow-list, with an exact rule that explicitly allows the
    // default route: applied from the Adj-RIB-In, no session reset.
    let policy = Policy {
        import: ImportPolicy {
            allow: vec![
                PrefixMatch::exact(net("172.15.0.0/16")).le(26),
                PrefixMatch::exact(net("172.16.0.0/16")).le(32),
                PrefixMatch::exact(net("0.0.0.0/0")),
            ],
            ..ImportPolicy::default()
        },
        ..Policy::default()
    };
    let changes = rib.set_policy(policy.clone());
    let mut fib = BTreeMap::new();
    apply(&mut fib, &changes);
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.prefix, c.is_withdraw()))
            .collect::<Vec<_>>(),
        vec![(net("0.0.0.0/0"), false), (net("10.1.2.0/24"), true)]
    );
    assert_eq!(reason(&rib, "10.1.2.0/24"), Reject::NotAllowed);
    assert_eq!(
        installed(&rib).keys().copied().collect::<Vec<_>>(),
        vec![net("0.0.0.0/0"), net("172.15.0.0/26")]
    );

    // A peer's own policy replaces the global one whole; a deny-list
    // alone rejects only what it names, and the defaults hold.
    let mut p2 = policy;
    p2.peers.insert(
        rr,
        PeerPolicy {
            import: Some(ImportPolicy {
                deny: vec![PrefixMatch::exact(net("172.15.0.0/16")).le(32)],
                ..ImportPolicy::default()
            }),
            max_prefix: None,
        },
    );
    rib.set_policy(p2);
    assert_eq!(reason(&rib, "172.15.0.0/26"), Reject::DeniedByRule);
    assert_eq!(reason(&rib, "0.0.0.0/0"), Reject::DefaultRoute);
    assert_eq!(
        installed(&rib).keys().copied().collect::<Vec<_>>(),
        vec![net("10.1.2.0/24")]
    );
}

#[test]
fn max_prefix_warning_then_exceeded() {
    let now = Instant::now();
    let mut rib = rib();
    let rr = ip("192.168.83.11");
    let mut policy = Policy::default();
    policy.peers.insert(
        rr,
        PeerPolicy {
            import: None,
            max_prefix: Some(MaxPrefix {
                limit: 10,
                warning_percent: 80,
                restart_after: None,
            }),
        },
    );
    rib.set_policy(policy);
    rib.peer_up(rr, reflector("192.168.83.11"));
    let batch = |from: u32, to: u32| {
        let mut u = U::reflected("192.168.83.21");
        for i in from..to {
            u = u.nlri(&format!("172.15.{i}.0/26"), None);
        }
        u.build()
    };
    assert_eq!(update(&mut rib, rr, &batch(0, 7), now).max_prefix, None);
    assert_eq!(
        update(&mut rib, rr, &batch(7, 8), now).max_prefix,
        Some(MaxPrefixEvent::Warning {
            peer: rr,
            count: 8,
            limit: 10
        })
    );
    assert_eq!(update(&mut rib, rr, &batch(8, 10), now).max_prefix, None);
    assert_eq!(
        update(&mut rib, rr, &batch(10, 11), now).max_prefix,
        Some(MaxPrefixEvent::Exceeded {
            peer: rr,
            count: 11,
            limit: 10
        })
    );
    // The caller sends Cease 6/1 and drops the session.
    let (changes, _) = rib.peer_down(rr, now, Down::Hard);
    assert_eq!(changes.len(), 11);
    assert!(rib.is_empty());
}

#[test]
fn multipath_width_is_deterministic() {
    let now = Instant::now();
    let mk = |order: &[usize], width: usize| {
        let mut cfg = RibConfig::new(AS, v4("192.168.83.1"));
        cfg.ibgp_multipath = width;
        let mut rib = Rib::new(cfg);
        let rr = ip("192.168.83.11");
        rib.peer_up(rr, reflector("192.168.83.11"));
        for &n in order {
            let node = format!("192.168.83.{}", 21 + n);
            let u = U::reflected(&node)
                .nlri("172.16.0.0/16", Some(n as u32 + 1))
                .build();
            update(&mut rib, rr, &u, now);
        }
        installed(&rib)[&net("172.16.0.0/16")].clone()
    };
    let a = mk(&[0, 1, 2, 3, 4, 5], 3);
    assert_eq!(
        a,
        vec![
            nh("192.168.83.21"),
            nh("192.168.83.22"),
            nh("192.168.83.23")
        ]
    );
    assert_eq!(mk(&[5, 3, 1, 4, 0, 2], 3), a);
    assert_eq!(mk(&[2, 4, 0, 5, 1, 3], 3), a);
    assert_eq!(mk(&[3, 1, 2], 1), vec![nh("192.168.83.22")]);
    assert_eq!(mk(&[0, 1, 2, 3, 4, 5], 32).len(), 6);
}

#[test]
fn decision_steps_through_the_rib() {
    let now = Instant::now();
    let mut rib = rib();
    let (a, b) = (ip("192.168.83.11"), ip("192.168.83.12"));
    rib.peer_up(a, reflector("192.168.83.11"));
    rib.peer_up(b, reflector("192.168.83.12"));
    let best = |rib: &Rib| {
        let v = rib.prefix(net("172.15.0.0/26")).unwrap();
        match v.paths[0].state {
            PathState::Best(s) => (v.paths[0].peer, s, v.next_hops),
            s => panic!("{s:?}"),
        }
    };
    let send = |rib: &mut Rib, peer, u: U| {
        update(rib, peer, &u.nlri("172.15.0.0/26", None).build(), now);
    };
    send(
        &mut rib,
        a,
        U::reflected("192.168.83.21").attr(Attr::LocalPref(50)),
    );
    send(&mut rib, b, U::reflected("192.168.83.22"));
    assert_eq!(best(&rib).1, Step::LocalPref);
    assert_eq!(best(&rib).0, b);
    send(&mut rib, a, U::reflected("192.168.83.21"));
    send(
        &mut rib,
        b,
        U::reflected("192.168.83.22").attr(Attr::AsPath(AsPath::sequence(vec![65001]))),
    );
    assert_eq!(best(&rib), (a, Step::AsPathLen, vec![nh("192.168.83.21")]));
    send(
        &mut rib,
        b,
        U::reflected("192.168.83.22").attr(Attr::Origin(Origin::Egp)),
    );
    assert_eq!(best(&rib), (a, Step::Origin, vec![nh("192.168.83.21")]));
    send(
        &mut rib,
        b,
        U::reflected("192.168.83.22").attr(Attr::MultiExitDisc(0)),
    );
    send(
        &mut rib,
        a,
        U::reflected("192.168.83.21").attr(Attr::MultiExitDisc(5)),
    );
    assert_eq!(best(&rib), (b, Step::Med, vec![nh("192.168.83.22")]));
    // Equal up to the router id: multipath over both.
    send(&mut rib, a, U::reflected("192.168.83.21"));
    send(&mut rib, b, U::reflected("192.168.83.22"));
    assert_eq!(
        best(&rib),
        (
            a,
            Step::RouterId,
            vec![nh("192.168.83.21"), nh("192.168.83.22")]
        )
    );
    // Same originator, longer CLUSTER_LIST loses; multipath still dedups
    // nothing here (different next hops) but ranks by it.
    send(
        &mut rib,
        a,
        U::reflected("192.168.83.21")
            .attr(Attr::OriginatorId(v4("192.168.83.9")))
            .attr(Attr::ClusterList(vec![CLUSTER, v4("10.9.9.9")])),
    );
    send(
        &mut rib,
        b,
        U::reflected("192.168.83.22").attr(Attr::OriginatorId(v4("192.168.83.9"))),
    );
    assert_eq!(best(&rib).0, b);
    assert_eq!(best(&rib).1, Step::ClusterListLen);
    // Everything equal: the lower peer address wins; same next hop from
    // both reflectors counts once.
    send(&mut rib, a, U::reflected("192.168.83.21"));
    send(&mut rib, b, U::reflected("192.168.83.21"));
    assert_eq!(
        best(&rib),
        (a, Step::PeerAddress, vec![nh("192.168.83.21")])
    );
}

#[test]
fn ebgp_over_ibgp_and_as_loop() {
    let now = Instant::now();
    let mut rib = rib();
    let (i, e) = (ip("192.168.83.11"), ip("192.168.83.50"));
    rib.peer_up(i, reflector("192.168.83.11"));
    let ebgp = PeerInfo {
        ibgp: false,
        remote_as: 65001,
        ..PeerInfo::ibgp(65001, v4("192.168.83.50"))
    };
    rib.peer_up(e, ebgp);
    let ib = U::reflected("192.168.83.21")
        .nlri("172.15.0.0/26", None)
        .build();
    update(&mut rib, i, &ib, now);
    // eBGP: its LOCAL_PREF is ignored (RFC 4271 §5.1.5) so both are 100.
    let eb = U::new("192.168.83.50")
        .attr(Attr::AsPath(AsPath::default()))
        .attr(Attr::LocalPref(10))
        .nlri("172.15.0.0/26", None)
        .build();
    update(&mut rib, e, &eb, now);
    let v = rib.prefix(net("172.15.0.0/26")).unwrap();
    assert_eq!(v.paths[0].peer, e);
    assert_eq!(v.paths[0].state, PathState::Best(Step::EbgpOverIbgp));
    assert_eq!(v.next_hops, vec![nh("192.168.83.50")]);
    // Our own AS in an eBGP path: a loop.
    let lp = U::new("192.168.83.50")
        .attr(Attr::AsPath(AsPath::sequence(vec![65001, AS])))
        .nlri("172.15.1.0/26", None)
        .build();
    update(&mut rib, e, &lp, now);
    assert_eq!(
        rib.prefix(net("172.15.1.0/26")).unwrap().paths[0].state,
        PathState::Rejected(Reject::AsLoop)
    );
}

#[test]
fn as4_path_is_merged_on_two_octet_sessions() {
    let now = Instant::now();
    let mut rib = rib();
    let e = ip("192.168.83.50");
    rib.peer_up(
        e,
        PeerInfo {
            ibgp: false,
            remote_as: 65001,
            four_octet_as: false,
            ..PeerInfo::ibgp(65001, v4("192.168.83.50"))
        },
    );
    let u = U::new("192.168.83.50")
        .attr(Attr::AsPath(AsPath::sequence(vec![65001, 23456])))
        .attr(Attr::As4Path(AsPath::sequence(vec![4_200_000_000])))
        .nlri("172.15.0.0/26", None)
        .build();
    update(&mut rib, e, &u, now);
    let a = &rib.prefix(net("172.15.0.0/26")).unwrap().paths[0].attrs;
    // reconcile_as4 keeps the AS_PATH head and the AS4_PATH tail as two
    // sequences: the same path.
    let asns: Vec<u32> = a
        .as_path
        .segments
        .iter()
        .flat_map(|s| s.asns.clone())
        .collect();
    assert!(
        a.as_path
            .segments
            .iter()
            .all(|s| s.kind == SegmentType::Sequence)
    );
    assert_eq!(asns, vec![65001, 4_200_000_000]);
    assert_eq!(a.as_path.path_len(), 2);
}

#[test]
fn ipv6_mp_reach_and_unreach() {
    let now = Instant::now();
    let mut rib = rib();
    let rr = ip("fd00::11");
    let mut info = reflector("192.168.83.11");
    info.ifindex = Some(7);
    rib.peer_up(rr, info);
    let mp = |next_hop: WireNh, p: &str, id| Update {
        attributes: vec![
            PathAttribute::new(Attr::Origin(Origin::Igp)),
            PathAttribute::new(Attr::AsPath(AsPath::default())),
            PathAttribute::new(Attr::LocalPref(100)),
            PathAttribute::new(Attr::MpReachNlri(MpReach {
                afi_safi: AfiSafi::IPV6_UNICAST,
                next_hop,
                nlri: MpNlri::Prefixes(vec![Nlri {
                    path_id: id,
                    prefix: net(p),
                }]),
            })),
        ],
        ..Update::default()
    };
    let g: Ipv6Addr = "fd00::21".parse().unwrap();
    let ll: Ipv6Addr = "fe80::21".parse().unwrap();
    let out = update(
        &mut rib,
        rr,
        &mp(
            WireNh::V6 {
                global: g,
                link_local: Some(ll),
            },
            "fd10::/122",
            None,
        ),
        now,
    );
    assert_eq!(out.changes[0].next_hops, vec![NextHop::new(IpAddr::V6(g))]);
    // Only a link-local next hop: installed through the session's interface.
    let out = update(
        &mut rib,
        rr,
        &mp(
            WireNh::V6 {
                global: "fe80::22".parse().unwrap(),
                link_local: None,
            },
            "fd10::40/122",
            None,
        ),
        now,
    );
    assert_eq!(
        out.changes[0].next_hops,
        vec![NextHop {
            addr: ip("fe80::22"),
            ifindex: Some(7)
        }]
    );
    assert_eq!(rib.peer(rr).unwrap().counters.ipv6.accepted, 2);
    // Martian v6.
    update(
        &mut rib,
        rr,
        &mp(
            WireNh::V6 {
                global: g,
                link_local: None,
            },
            "fe80::/64",
            None,
        ),
        now,
    );
    assert_eq!(rib.installed().len(), 2);
    // MP_UNREACH.
    let w = Update {
        attributes: vec![PathAttribute::new(Attr::MpUnreachNlri(MpUnreach {
            afi_safi: AfiSafi::IPV6_UNICAST,
            nlri: MpNlri::Prefixes(vec![Nlri::new(net("fd10::/122"))]),
        }))],
        ..Update::default()
    };
    let out = update(&mut rib, rr, &w, now);
    assert!(out.changes[0].is_withdraw());
    assert_eq!(rib.installed().len(), 1);
    // IPv6 End-of-RIB after a graceful down only touches IPv6... the
    // reflector's GR lists IPv4 only, so IPv6 routes go at once.
    let (changes, _) = rib.peer_down(rr, now, Down::Graceful);
    assert_eq!(changes.len(), 1);
}

struct Only(IpAddr);
impl Resolver for Only {
    fn resolves(&self, a: IpAddr) -> bool {
        a == self.0
    }
}

#[test]
fn unresolved_next_hops_are_not_eligible() {
    let now = Instant::now();
    let mut rib = Rib::with_resolver(
        RibConfig::new(AS, v4("192.168.83.1")),
        Box::new(Only(ip("192.168.83.21"))),
    );
    let rr = ip("192.168.83.11");
    rib.peer_up(rr, reflector("192.168.83.11"));
    for (n, id) in [("192.168.83.21", 1), ("192.168.83.22", 2)] {
        let u = U::reflected(n).nlri("172.16.0.0/16", Some(id)).build();
        update(&mut rib, rr, &u, now);
    }
    let v = rib.prefix(net("172.16.0.0/16")).unwrap();
    assert_eq!(v.next_hops, vec![nh("192.168.83.21")]);
    assert_eq!(v.paths[1].state, PathState::Unresolved);
    // The FIB learns a route to .22: re-resolve.
    let changes = rib.set_resolver(Box::new(bgpd::route::AlwaysResolves));
    assert_eq!(
        changes,
        vec![RouteChange {
            prefix: net("172.16.0.0/16"),
            next_hops: vec![nh("192.168.83.21"), nh("192.168.83.22")].into()
        }]
    );
}

/// Within a batch (UPDATEs left to `commit`), setting a peer's policy and
/// bringing a peer up or down must hand on the pending decisions too: the
/// FIB built from every change in order equals the RIB.
#[test]
fn batched_updates_lose_no_change() {
    let now = Instant::now();
    let mut rib = rib();
    let mut fib = BTreeMap::new();
    let (a, b, c) = (
        ip("192.168.83.36"),
        ip("192.168.83.49"),
        ip("192.168.83.54"),
    );
    apply(&mut fib, &rib.peer_up(a, reflector("192.168.83.36")));
    apply(&mut fib, &rib.peer_up(b, reflector("192.168.83.49")));
    let u = U::reflected("192.168.83.21")
        .nlri("172.16.0.0/16", None)
        .build();
    apply(&mut fib, &update(&mut rib, a, &u, now).changes);
    // b's path joins the ECMP set, left to commit.
    let u = U::reflected("192.168.83.22")
        .nlri("172.16.0.0/16", None)
        .build();
    apply(&mut fib, &deferred(&mut rib, b, &u, now));
    // A dynamic neighbour takes its range's policy: nothing to re-evaluate,
    // so nothing is committed yet.
    assert!(rib.set_peer_policy(c, PeerPolicy::default()).is_empty());
    // b's own policy now denies it: re-evaluation commits the pending
    // decision first and returns it with its own changes.
    let deny = PeerPolicy {
        import: Some(ImportPolicy {
            deny: vec![PrefixMatch::exact(net("172.16.0.0/16"))],
            ..ImportPolicy::default()
        }),
        ..PeerPolicy::default()
    };
    let out = rib.set_peer_policy(b, deny);
    assert!(!out.is_empty());
    apply(&mut fib, &out);
    assert_eq!(fib, installed(&rib));
    assert_eq!(fib[&net("172.16.0.0/16")], vec![nh("192.168.83.21")]);
    // And a session coming up or going down mid-batch commits first.
    let u = U::reflected("192.168.83.23")
        .nlri("172.16.0.0/16", None)
        .build();
    apply(&mut fib, &rib.peer_up(c, reflector("192.168.83.54")));
    apply(&mut fib, &deferred(&mut rib, c, &u, now));
    apply(&mut fib, &rib.peer_down(a, now, Down::Hard).0);
    apply(&mut fib, &rib.commit());
    assert_eq!(fib, installed(&rib));
    assert_eq!(fib[&net("172.16.0.0/16")], vec![nh("192.168.83.23")]);
}

/// With export tracking, the RIB names every prefix whose best path may
/// have changed, and gives that path with its source.
#[test]
fn export_tracking_names_changed_best_paths() {
    let now = Instant::now();
    let mut cfg = RibConfig::new(AS, v4("192.168.83.1"));
    cfg.track_export = true;
    let mut rib = Rib::new(cfg);
    let (a, b) = (ip("192.168.83.11"), ip("192.168.83.12"));
    rib.peer_up(a, reflector("192.168.83.11"));
    rib.peer_up(b, reflector("192.168.83.12"));
    let u = U::reflected("192.168.83.21")
        .nlri("172.15.1.0/26", None)
        .nlri("172.16.0.0/16", None)
        .build();
    deferred(&mut rib, a, &u, now);
    let (_, touched) = rib.take_export();
    let mut t: Vec<String> = touched.iter().map(|p| p.to_string()).collect();
    t.sort();
    t.dedup();
    assert_eq!(t, ["172.15.1.0/26", "172.16.0.0/16"]);
    let best = rib.best(&net("172.16.0.0/16")).unwrap();
    assert_eq!((best.peer, best.ibgp), (a, true));
    // A second path, decided at commit: named again.
    let u = U::reflected("192.168.83.22")
        .attr(Attr::LocalPref(200))
        .nlri("172.16.0.0/16", None)
        .build();
    deferred(&mut rib, b, &u, now);
    let (_, touched) = rib.take_export();
    assert_eq!(touched, [net("172.16.0.0/16")]);
    assert_eq!(rib.best(&net("172.16.0.0/16")).unwrap().peer, b);
    assert_eq!(rib.bests().count(), 2);
    // A session going down names what it held.
    let (_, _) = rib.peer_down(b, now, Down::Hard);
    let (_, touched) = rib.take_export();
    assert!(touched.contains(&net("172.16.0.0/16")));
    assert_eq!(rib.best(&net("172.16.0.0/16")).unwrap().peer, a);
    // Without tracking, nothing is recorded.
    let mut rib = self::rib();
    rib.peer_up(a, reflector("192.168.83.11"));
    deferred(&mut rib, a, &u, now);
    assert!(rib.take_export().1.is_empty());
}

/// RFC 4456 §8: a route whose CLUSTER_LIST holds our cluster id looped.
#[test]
fn cluster_list_with_our_cluster_id_is_a_loop() {
    let now = Instant::now();
    let mut cfg = RibConfig::new(AS, v4("192.168.83.1"));
    cfg.cluster_id = v4("10.0.0.1");
    let mut rib = Rib::new(cfg);
    let rr = ip("192.168.83.11");
    rib.peer_up(rr, reflector("192.168.83.11"));
    let u = U::reflected("192.168.83.21")
        .attr(Attr::ClusterList(vec![v4("10.9.9.9"), v4("10.0.0.1")]))
        .nlri("172.15.1.0/26", None)
        .build();
    assert!(update(&mut rib, rr, &u, now).changes.is_empty());
    let v = rib.prefix(net("172.15.1.0/26")).unwrap();
    assert!(matches!(
        v.paths[0].state,
        PathState::Rejected(Reject::ClusterLoop)
    ));
}
