//! Property: for random sequences of announce, withdraw, session-down
//! (graceful or not) and End-of-RIB over several peers, with and without
//! ADD-PATH, the Loc-RIB equals a simple reference model, and so does the
//! FIB built from the emitted change stream, whatever the interleaving of
//! the peers' messages.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bgpd::rib::{Down, GrInfo, PeerInfo, Rib, RibConfig};
use bgpd::route::{ChangeSet, NextHop};
use bgpd::wire::{AfiSafi, AsPath, Attr, Nlri, Origin, PathAttribute, Update};
use ipnet::IpNet;
use proptest::prelude::*;

const PEERS: usize = 4;
const PREFIXES: [&str; 4] = [
    "172.15.0.0/26",
    "172.15.0.64/26",
    "172.15.0.0/24",
    "172.16.0.0/16",
];

#[derive(Clone, Debug)]
enum Op {
    Announce {
        prefix: usize,
        path_id: u32,
        next_hop: u8,
        local_pref: u32,
    },
    Withdraw {
        prefix: usize,
        path_id: u32,
    },
    Down {
        graceful: bool,
    },
    EndOfRib,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..PREFIXES.len(), 0..6u32, 1..5u8, prop_oneof![Just(100u32), Just(200)]).prop_map(
            |(prefix, path_id, next_hop, local_pref)| Op::Announce {
                prefix,
                path_id,
                next_hop,
                local_pref
            }
        ),
        3 => (0..PREFIXES.len(), 0..6u32).prop_map(|(prefix, path_id)| Op::Withdraw { prefix, path_id }),
        1 => any::<bool>().prop_map(|graceful| Op::Down { graceful }),
        1 => Just(Op::EndOfRib),
    ]
}

fn peer_addr(p: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 168, 83, 11 + p as u8))
}

/// Peers 0 and 1 use ADD-PATH; 0, 1 and 2 offer graceful restart.
fn add_path(p: usize) -> bool {
    p < 2
}
fn graceful(p: usize) -> bool {
    p < 3
}

fn info(p: usize) -> PeerInfo {
    PeerInfo {
        graceful_restart: graceful(p).then(|| GrInfo {
            restart_time: Duration::from_secs(120),
            families: vec![(AfiSafi::IPV4_UNICAST, true)],
        }),
        ..PeerInfo::ibgp(64512, Ipv4Addr::new(10, 9, 0, p as u8 + 1))
    }
}

#[derive(Default, Clone)]
struct ModelPeer {
    up: bool,
    /// (prefix, path id) -> (next hop, local pref, stale)
    paths: BTreeMap<(usize, u32), (u8, u32, bool)>,
}

fn hop(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 83, 20 + n)
}

fn model_step(m: &mut ModelPeer, p: usize, op: &Op) {
    if !matches!(op, Op::Down { .. }) {
        m.up = true;
    }
    match *op {
        Op::Announce {
            prefix,
            path_id,
            next_hop,
            local_pref,
        } => {
            let id = if add_path(p) { path_id } else { 0 };
            m.paths.insert((prefix, id), (next_hop, local_pref, false));
        }
        Op::Withdraw { prefix, path_id } => {
            let id = if add_path(p) { path_id } else { 0 };
            m.paths.remove(&(prefix, id));
        }
        Op::Down { graceful: g } => {
            if m.up {
                m.up = false;
                if g && graceful(p) {
                    m.paths.values_mut().for_each(|v| v.2 = true);
                } else {
                    m.paths.clear();
                }
            }
        }
        Op::EndOfRib => m.paths.retain(|_, v| !v.2),
    }
}

/// The expected FIB: per prefix, the distinct next hops of the paths with
/// the highest LOCAL_PREF (everything else is equal up to the router id).
fn model_fib(peers: &[ModelPeer]) -> BTreeMap<IpNet, Vec<NextHop>> {
    let mut best: BTreeMap<usize, (u32, BTreeSet<u8>)> = BTreeMap::new();
    for m in peers {
        for (&(prefix, _), &(nh, lp, _)) in &m.paths {
            let e = best.entry(prefix).or_insert((0, BTreeSet::new()));
            if lp > e.0 {
                *e = (lp, BTreeSet::new());
            }
            if lp == e.0 {
                e.1.insert(nh);
            }
        }
    }
    best.into_iter()
        .map(|(p, (_, hops))| {
            (
                PREFIXES[p].parse().unwrap(),
                hops.into_iter()
                    .map(|n| NextHop::new(IpAddr::V4(hop(n))))
                    .collect(),
            )
        })
        .collect()
}

fn to_update(p: usize, op: &Op) -> Option<Update> {
    let nlri = |prefix: usize, id: u32| Nlri {
        path_id: add_path(p).then_some(id),
        prefix: PREFIXES[prefix].parse().unwrap(),
    };
    match *op {
        Op::Announce {
            prefix,
            path_id,
            next_hop,
            local_pref,
        } => Some(Update {
            attributes: vec![
                Attr::Origin(Origin::Igp),
                Attr::AsPath(AsPath::default()),
                Attr::NextHop(hop(next_hop)),
                Attr::LocalPref(local_pref),
                Attr::OriginatorId(hop(next_hop)),
                Attr::ClusterList(vec![Ipv4Addr::new(224, 0, 0, 1)]),
            ]
            .into_iter()
            .map(PathAttribute::new)
            .collect(),
            nlri: vec![nlri(prefix, path_id)],
            ..Update::default()
        }),
        Op::Withdraw { prefix, path_id } => Some(Update {
            withdrawn: vec![nlri(prefix, path_id)],
            ..Update::default()
        }),
        Op::EndOfRib => Some(Update::end_of_rib(AfiSafi::IPV4_UNICAST)),
        Op::Down { .. } => None,
    }
}

/// Runs the ops in the given global order; returns the RIB's installed
/// set and the FIB built from its change stream. Without `commits`, each
/// UPDATE is decided at once; with a non-empty
/// `commits`, the decision runs only after op i when `commits[i % len]` (and at the end), as the daemon
/// batches them.
/// With `emit` off the RIB builds no change sets from UPDATEs (install off
/// and no view): its table must come out the same.
fn run(
    order: &[(usize, Op)],
    commits: &[bool],
    emit: bool,
) -> (BTreeMap<IpNet, Vec<NextHop>>, BTreeMap<IpNet, Vec<NextHop>>) {
    let now = Instant::now();
    let mut cfg = RibConfig::new(64512, Ipv4Addr::new(192, 168, 83, 1));
    cfg.emit_changes = emit;
    let mut rib = Rib::new(cfg);
    let mut up = [false; PEERS];
    let mut fib: BTreeMap<IpNet, Vec<NextHop>> = BTreeMap::new();
    let apply = |fib: &mut BTreeMap<IpNet, Vec<NextHop>>, cs: ChangeSet| {
        for c in cs {
            if c.next_hops.is_empty() {
                fib.remove(&c.prefix);
            } else {
                fib.insert(c.prefix, c.next_hops.to_vec());
            }
        }
    };
    for (i, (p, op)) in order.iter().enumerate() {
        let addr = peer_addr(*p);
        if let Op::Down { graceful } = op {
            if up[*p] {
                up[*p] = false;
                let how = if *graceful {
                    Down::Graceful
                } else {
                    Down::Hard
                };
                apply(&mut fib, rib.peer_down(addr, now, how).0);
            }
            continue;
        }
        if !up[*p] {
            up[*p] = true;
            apply(&mut fib, rib.peer_up(addr, info(*p)));
        }
        let u = to_update(*p, op).unwrap();
        let mut changes = ChangeSet::new();
        rib.update(addr, &u, now, &mut changes);
        apply(&mut fib, changes);
        if commits.is_empty() || commits[i % commits.len()] {
            apply(&mut fib, rib.commit());
        }
    }
    apply(&mut fib, rib.commit());
    let installed = rib
        .installed()
        .into_iter()
        .map(|c| (c.prefix, c.next_hops.to_vec()))
        .collect();
    (installed, fib)
}

/// Interleaves per-peer sequences: `picks` chooses which peer's next op
/// comes next.
fn interleave(per_peer: &[Vec<Op>], picks: &[usize]) -> Vec<(usize, Op)> {
    let mut pos = vec![0; per_peer.len()];
    let mut out = Vec::new();
    let total: usize = per_peer.iter().map(Vec::len).sum();
    let mut k = 0;
    while out.len() < total {
        let mut p = picks.get(k).copied().unwrap_or(0) % per_peer.len();
        k += 1;
        while pos[p] == per_peer[p].len() {
            p = (p + 1) % per_peer.len();
        }
        out.push((p, per_peer[p][pos[p]].clone()));
        pos[p] += 1;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn loc_rib_matches_model(
        per_peer in proptest::collection::vec(proptest::collection::vec(op(), 0..25), PEERS),
        picks_a in proptest::collection::vec(0..PEERS, 0..100),
        picks_b in proptest::collection::vec(0..PEERS, 0..100),
        commits in proptest::collection::vec(any::<bool>(), 1..8),
    ) {
        let mut model = vec![ModelPeer::default(); PEERS];
        for (p, ops) in per_peer.iter().enumerate() {
            for op in ops {
                model_step(&mut model[p], p, op);
            }
        }
        let want = model_fib(&model);
        for picks in [&picks_a, &picks_b] {
            let order = interleave(&per_peer, picks);
            for batching in [&[][..], &commits[..]] {
                let (installed, fib) = run(&order, batching, true);
                prop_assert_eq!(&installed, &want);
                prop_assert_eq!(&fib, &want);
            }
            let (installed, _) = run(&order, &commits, false);
            prop_assert_eq!(&installed, &want);
        }
    }
}
