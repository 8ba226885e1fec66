//! The decision process: RFC 4271 §9.1.2.2 with the route-reflection
//! rules of RFC 4456 §9, and iBGP multipath.
//!
//! It works by elimination, as §9.1.2.2 is written: each step keeps the
//! candidates that are best by that step's criterion. This is what makes
//! the MED step correct (MEDs compare only between paths from the same
//! neighbour AS, which is not a total order and so cannot be a sort key).
//! The step at which each path dropped out is recorded, and the winner's
//! reason is the last step that removed a rival.

use std::cmp::Reverse;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::wire::Origin;

/// A step of the decision process, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// No other eligible path.
    OnlyPath,
    /// Not long-lived stale: a route with LLGR_STALE is the least
    /// preferred (RFC 9494 §4.3).
    LlgrStale,
    /// Highest LOCAL_PREF (RFC 4271 §9.1.1).
    LocalPref,
    /// Shortest AS path; an AS_SET counts 1, confederation segments 0
    /// (RFC 4271 §9.1.2.2 a, RFC 5065 §5.3).
    AsPathLen,
    /// Lowest ORIGIN (§9.1.2.2 b).
    Origin,
    /// Lowest MED among paths from the same neighbour AS; a missing MED
    /// is 0 (§9.1.2.2 c).
    Med,
    /// eBGP over iBGP (§9.1.2.2 d). (The IGP cost step e is skipped: every
    /// next hop is on the LAN, so all costs are equal.)
    EbgpOverIbgp,
    /// Lowest BGP identifier, the ORIGINATOR_ID standing in for it on
    /// reflected routes (§9.1.2.2 f, RFC 4456 §9). Multipath ends before
    /// this step.
    RouterId,
    /// Shortest CLUSTER_LIST (RFC 4456 §9).
    ClusterListLen,
    /// Lowest peer address (§9.1.2.2 g).
    PeerAddress,
    /// Lowest ADD-PATH path identifier (RFC 7911 leaves this local; it
    /// keeps the choice deterministic).
    PathId,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::OnlyPath => "only eligible path",
            Step::LlgrStale => "llgr-stale",
            Step::LocalPref => "local-pref",
            Step::AsPathLen => "as-path length",
            Step::Origin => "origin",
            Step::Med => "med",
            Step::EbgpOverIbgp => "ebgp over ibgp",
            Step::RouterId => "router id",
            Step::ClusterListLen => "cluster-list length",
            Step::PeerAddress => "peer address",
            Step::PathId => "path id",
        })
    }
}

/// What the decision needs of one eligible path.
#[derive(Clone, Debug)]
pub struct Cand {
    /// Carries LLGR_STALE (RFC 9494): least preferred.
    pub llgr_stale: bool,
    /// The caller's index of this path.
    pub idx: usize,
    pub local_pref: u32,
    pub as_path_len: usize,
    pub origin: Origin,
    /// The neighbour AS (RFC 4271 §9.1.2.2 c): the first AS of the path,
    /// or the local AS when the path is empty.
    pub neighbor_as: u32,
    pub med: u32,
    pub ebgp: bool,
    /// ORIGINATOR_ID if present, else the peer's BGP identifier.
    pub router_id: Ipv4Addr,
    pub cluster_list_len: usize,
    pub peer: IpAddr,
    pub path_id: u32,
    pub next_hop: IpAddr,
}

/// The outcome for a set of candidates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Caller indices of the multipath set, best first, in decision order.
    /// Paths whose next hop is already in the set are included (they add
    /// no next hop); the set holds at most `width` distinct next hops.
    pub multipath: Vec<usize>,
    /// Why the best path won.
    pub reason: Step,
    /// For every candidate (by position in the input), the step at which
    /// it lost the best-path selection; `None` for the best.
    pub lost: Vec<Option<Step>>,
}

/// Runs the decision over eligible candidates (at least one). `width` is
/// the multipath width for iBGP, `ebgp_width` for eBGP winners.
pub fn decide(c: &[Cand], width: usize, ebgp_width: usize) -> Decision {
    let mut lost: Vec<Option<Step>> = vec![None; c.len()];
    let mut multipath = Vec::new();
    let scratch = &mut Scratch::default();
    let reason = run(
        c,
        width,
        ebgp_width,
        Some(&mut lost),
        &mut multipath,
        scratch,
    );
    Decision {
        multipath,
        reason,
        lost,
    }
}

/// [`decide`] without the per-candidate steps, with buffers kept from
/// earlier decisions: fills `multipath` and returns the reason. This is
/// what the RIB runs on every change; a Calico service CIDR has a path per
/// node and reflector.
pub(crate) fn select(
    c: &[Cand],
    (width, ebgp_width): (usize, usize),
    multipath: &mut Vec<usize>,
    scratch: &mut Scratch,
) -> Step {
    run(c, width, ebgp_width, None, multipath, scratch)
}

/// The buffers a decision needs, kept between decisions by the RIB so
/// that a large entry does not allocate (and map) them each time.
#[derive(Default)]
pub(crate) struct Scratch {
    alive: Vec<u32>,
    order: Vec<(Tie, u32)>,
}

impl Scratch {
    /// Lets go of buffers an unusually large entry grew.
    pub(crate) fn trim(&mut self, keep: usize) {
        if self.order.capacity() > keep {
            self.alive = Vec::new();
            self.order = Vec::new();
        }
    }
}

/// The tie-breakers after the multipath steps, as one integer key per
/// candidate: a total order (peer address and path id are unique) that
/// sorts with plain integer comparisons.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Tie {
    /// Router id (high 32 bits), CLUSTER_LIST length (low 32).
    id_cl: u64,
    /// The peer address: IPv4 before IPv6, as `IpAddr` orders them.
    peer: (bool, u128),
    path_id: u32,
}

impl Tie {
    fn of(c: &Cand) -> Tie {
        Tie {
            id_cl: (u64::from(u32::from(c.router_id)) << 32)
                | c.cluster_list_len.min(u32::MAX as usize) as u64,
            peer: match c.peer {
                IpAddr::V4(a) => (false, u128::from(u32::from(a))),
                IpAddr::V6(a) => (true, u128::from(a)),
            },
            path_id: c.path_id,
        }
    }

    /// The step at which `self` loses to a better `best`.
    fn step_against(&self, best: &Tie) -> Step {
        if self.id_cl >> 32 != best.id_cl >> 32 {
            Step::RouterId
        } else if self.id_cl != best.id_cl {
            Step::ClusterListLen
        } else if self.peer != best.peer {
            Step::PeerAddress
        } else {
            Step::PathId
        }
    }
}

/// Keeps the alive candidates for which `keep` holds, recording the step
/// of the others; returns whether any went.
fn keep_if(
    alive: &mut Vec<u32>,
    lost: &mut Option<&mut [Option<Step>]>,
    step: Step,
    keep: impl Fn(usize) -> bool,
) -> bool {
    let before = alive.len();
    alive.retain(|&i| {
        let k = keep(i as usize);
        if !k && let Some(l) = lost.as_deref_mut() {
            l[i as usize] = Some(step);
        }
        k
    });
    alive.len() != before
}

fn run(
    c: &[Cand],
    width: usize,
    ebgp_width: usize,
    mut lost: Option<&mut [Option<Step>]>,
    multipath: &mut Vec<usize>,
    scratch: &mut Scratch,
) -> Step {
    assert!(!c.is_empty());
    multipath.clear();
    let Scratch { alive, order } = scratch;
    alive.clear();
    alive.extend(0..c.len() as u32);
    let mut last = Step::OnlyPath;
    let mut step = |alive: &mut Vec<u32>, s: Step, keep: &dyn Fn(usize) -> bool| {
        if keep_if(alive, &mut lost, s, keep) {
            last = s;
        }
    };

    // Keeps the candidates with the lowest `key` (a step that compares
    // one value across all of them).
    fn lowest<K: Ord>(c: &[Cand], alive: &[u32], key: impl Fn(&Cand) -> K) -> Option<K> {
        let k = alive.iter().map(|&i| key(&c[i as usize])).min()?;
        alive.iter().any(|&i| key(&c[i as usize]) != k).then_some(k)
    }
    // RFC 9494 §4.3: long-lived stale routes only when nothing else.
    if let Some(k) = lowest(c, alive, |x| x.llgr_stale) {
        step(alive, Step::LlgrStale, &|i| c[i].llgr_stale == k);
    }
    // §9.1.1: degree of preference = LOCAL_PREF, highest first.
    if let Some(lp) = lowest(c, alive, |x| Reverse(x.local_pref)) {
        step(alive, Step::LocalPref, &|i| c[i].local_pref == lp.0);
    }
    // §9.1.2.2 a.
    if let Some(l) = lowest(c, alive, |x| x.as_path_len) {
        step(alive, Step::AsPathLen, &|i| c[i].as_path_len == l);
    }
    // §9.1.2.2 b.
    if let Some(o) = lowest(c, alive, |x| x.origin) {
        step(alive, Step::Origin, &|i| c[i].origin == o);
    }
    // §9.1.2.2 c: remove a path if another path from the same neighbour
    // AS has a lower MED. One pass finds each neighbour AS's lowest MED
    // (there are few neighbour ASes: one, for Calico's reflectors).
    let mut lowest: Vec<(u32, u32)> = Vec::with_capacity(2);
    let mut meds_differ = false;
    for &i in alive.iter() {
        let ci = &c[i as usize];
        match lowest.iter_mut().find(|(asn, _)| *asn == ci.neighbor_as) {
            Some(e) => {
                meds_differ |= e.1 != ci.med;
                e.1 = e.1.min(ci.med);
            }
            None => lowest.push((ci.neighbor_as, ci.med)),
        }
    }
    if meds_differ {
        step(alive, Step::Med, &|i| {
            lowest
                .iter()
                .find(|(asn, _)| *asn == c[i].neighbor_as)
                .is_none_or(|&(_, m)| c[i].med <= m)
        });
    }
    // §9.1.2.2 d.
    if alive.iter().any(|&i| c[i as usize].ebgp) {
        step(alive, Step::EbgpOverIbgp, &|i| c[i].ebgp);
    }

    // The remaining paths are equal up to the router-id step: the
    // multipath candidates, in the order of the remaining tie-breakers.
    // Only the head of that order is sorted: a Calico service CIDR has a
    // path per node and reflector, and the multipath set is its first few.
    order.clear();
    order.extend(alive.iter().map(|&i| (Tie::of(&c[i as usize]), i)));
    let head = order.len().min(4 * width.max(ebgp_width) + 16);
    if head < order.len() {
        order.select_nth_unstable(head - 1);
    }
    order[..head].sort_unstable();
    let (best_tie, best) = (order[0].0, order[0].1 as usize);
    for (t, i) in &order[1..] {
        let s = t.step_against(&best_tie);
        if let Some(l) = lost.as_deref_mut() {
            l[*i as usize] = Some(s);
        }
        last = last.max(s);
    }
    if let Some(l) = lost {
        l[best] = None;
    }

    // Multipath: walk in decision order, keeping paths while the set of
    // distinct next hops stays within the width. Paths whose next hop is
    // already in the set are included (they add no next hop).
    let width = if c[best].ebgp { ebgp_width } else { width }.max(1);
    let same_as = |ci: &Cand| !ci.ebgp || ci.neighbor_as == c[best].neighbor_as;
    let mut hops: Vec<IpAddr> = Vec::with_capacity(order.len().min(width));
    let walk = |part: &[(Tie, u32)], hops: &mut Vec<IpAddr>, multipath: &mut Vec<usize>| {
        for &(_, i) in part {
            let ci = &c[i as usize];
            // eBGP multipath only across the same neighbour AS, as Cisco's
            // `maximum-paths` requires.
            if !same_as(ci) {
                continue;
            }
            if !hops.contains(&ci.next_hop) {
                if hops.len() == width {
                    continue;
                }
                hops.push(ci.next_hop);
            }
            multipath.push(ci.idx);
        }
    };
    walk(&order[..head], &mut hops, multipath);
    let rest = &mut order[head..];
    if hops.len() < width {
        // The head did not fill the set: the rest, sorted, follows it.
        rest.sort_unstable();
        walk(rest, &mut hops, multipath);
    } else if !rest.is_empty() {
        // Full: the rest only adds paths to next hops already in the set.
        hops.sort_unstable();
        let mut more: Vec<(Tie, u32)> = rest
            .iter()
            .filter(|(_, i)| {
                let ci = &c[*i as usize];
                same_as(ci) && hops.binary_search(&ci.next_hop).is_ok()
            })
            .copied()
            .collect();
        more.sort_unstable();
        multipath.extend(more.iter().map(|&(_, i)| c[i as usize].idx));
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    /// The decision as RFC 4271 §9.1.2.2 reads, written plainly (this was
    /// the implementation before the integer keys): the reference for
    /// `decide`.
    fn reference(c: &[Cand], width: usize, ebgp_width: usize) -> Decision {
        let mut lost: Vec<Option<Step>> = vec![None; c.len()];
        let mut alive: Vec<usize> = (0..c.len()).collect();
        let mut last = Step::OnlyPath;
        let mut keep = |alive: &mut Vec<usize>, step: Step, keep: &dyn Fn(usize) -> bool| {
            let before = alive.len();
            alive.retain(|&i| {
                let k = keep(i);
                if !k {
                    lost[i] = Some(step);
                }
                k
            });
            if alive.len() != before {
                last = step;
            }
        };
        let ls = alive.iter().map(|&i| c[i].llgr_stale).min().unwrap();
        keep(&mut alive, Step::LlgrStale, &|i| c[i].llgr_stale == ls);
        let lp = alive.iter().map(|&i| c[i].local_pref).max().unwrap();
        keep(&mut alive, Step::LocalPref, &|i| c[i].local_pref == lp);
        let l = alive.iter().map(|&i| c[i].as_path_len).min().unwrap();
        keep(&mut alive, Step::AsPathLen, &|i| c[i].as_path_len == l);
        let o = alive.iter().map(|&i| c[i].origin).min().unwrap();
        keep(&mut alive, Step::Origin, &|i| c[i].origin == o);
        let snapshot = alive.clone();
        keep(&mut alive, Step::Med, &|i| {
            !snapshot
                .iter()
                .any(|&j| c[j].neighbor_as == c[i].neighbor_as && c[j].med < c[i].med)
        });
        if alive.iter().any(|&i| c[i].ebgp) {
            keep(&mut alive, Step::EbgpOverIbgp, &|i| c[i].ebgp);
        }
        let tie = |a: &Cand, b: &Cand| -> (Ordering, Step) {
            [
                (a.router_id.cmp(&b.router_id), Step::RouterId),
                (
                    a.cluster_list_len.cmp(&b.cluster_list_len),
                    Step::ClusterListLen,
                ),
                (a.peer.cmp(&b.peer), Step::PeerAddress),
                (a.path_id.cmp(&b.path_id), Step::PathId),
            ]
            .into_iter()
            .find(|(o, _)| o.is_ne())
            .unwrap_or((Ordering::Equal, Step::PathId))
        };
        alive.sort_by(|&a, &b| tie(&c[a], &c[b]).0.then(a.cmp(&b)));
        let best = alive[0];
        for &i in &alive[1..] {
            let step = tie(&c[i], &c[best]).1;
            lost[i] = Some(step);
            last = last.max(step);
        }
        lost[best] = None;
        let width = if c[best].ebgp { ebgp_width } else { width }.max(1);
        let mut hops: Vec<IpAddr> = Vec::new();
        let mut multipath = Vec::new();
        for &i in &alive {
            if c[i].ebgp && c[i].neighbor_as != c[best].neighbor_as {
                continue;
            }
            let nh = c[i].next_hop;
            if !hops.contains(&nh) {
                if hops.len() == width {
                    continue;
                }
                hops.push(nh);
            }
            multipath.push(c[i].idx);
        }
        Decision {
            multipath,
            reason: last,
            lost,
        }
    }

    fn arb_cand() -> impl proptest::strategy::Strategy<Value = Cand> {
        use proptest::prelude::*;
        (
            (0u32..3, 0usize..3, 0u8..3, 0u32..3, 0u32..3, any::<bool>()),
            (0u8..4, 0usize..3, 0u8..8, any::<bool>(), 0u32..3, 0u8..6),
            0u8..5,
        )
            .prop_map(
                |((lp, asl, org, nas, med, ebgp), (rid, cl, peer, v6, pid, nh), ls)| Cand {
                    idx: 0,
                    llgr_stale: ls == 0,
                    local_pref: 100 + lp,
                    as_path_len: asl,
                    origin: [Origin::Igp, Origin::Egp, Origin::Incomplete][org as usize],
                    neighbor_as: 64512 + nas,
                    med,
                    ebgp,
                    router_id: Ipv4Addr::new(10, 0, 0, rid),
                    cluster_list_len: cl,
                    peer: if v6 {
                        IpAddr::V6(std::net::Ipv6Addr::new(
                            0xfd00,
                            0,
                            0,
                            0,
                            0,
                            0,
                            0,
                            peer as u16,
                        ))
                    } else {
                        IpAddr::V4(Ipv4Addr::new(192, 168, 0, peer))
                    },
                    path_id: pid,
                    next_hop: IpAddr::V4(Ipv4Addr::new(172, 15, 0, nh)),
                },
            )
    }

    proptest::proptest! {
        /// The integer-key decision agrees with the plain one on every
        /// field, ties and MED cycles included.
        #[test]
        fn agrees_with_the_reference(
            mut cs in proptest::collection::vec(arb_cand(), 1..64),
            width in 1usize..5,
            ebgp_width in 1usize..3,
            uniform: bool,
        ) {
            for (i, c) in cs.iter_mut().enumerate() {
                c.idx = 100 + i;
                if uniform {
                    // All equal up to the router id, as a Calico service
                    // CIDR's paths: the multipath walk sees every path.
                    (c.local_pref, c.as_path_len, c.origin, c.med, c.ebgp) = (100, 0, Origin::Igp, 0, false);
                }
            }
            let got = decide(&cs, width, ebgp_width);
            proptest::prop_assert_eq!(&got, &reference(&cs, width, ebgp_width));
            let mut mp = vec![7];
            let reason = select(&cs, (width, ebgp_width), &mut mp, &mut Scratch::default());
            proptest::prop_assert_eq!(reason, got.reason);
            proptest::prop_assert_eq!(mp, got.multipath);
        }
    }

    fn cand(idx: usize) -> Cand {
        Cand {
            idx,
            llgr_stale: false,
            local_pref: 100,
            as_path_len: 0,
            origin: Origin::Igp,
            neighbor_as: 64512,
            med: 0,
            ebgp: false,
            router_id: Ipv4Addr::new(10, 0, 0, idx as u8 + 1),
            cluster_list_len: 1,
            peer: IpAddr::V4(Ipv4Addr::new(192, 168, 0, idx as u8 + 1)),
            path_id: 0,
            next_hop: IpAddr::V4(Ipv4Addr::new(172, 15, 0, idx as u8 + 1)),
        }
    }

    fn winner(c: &[Cand]) -> (usize, Step) {
        let d = decide(c, 1, 1);
        (d.multipath[0], d.reason)
    }

    #[test]
    fn only_path() {
        assert_eq!(winner(&[cand(0)]), (0, Step::OnlyPath));
    }

    #[test]
    fn local_pref() {
        let (a, mut b) = (cand(0), cand(1));
        b.local_pref = 200;
        assert_eq!(winner(&[a, b]), (1, Step::LocalPref));
    }

    #[test]
    fn as_path_len() {
        let (mut a, b) = (cand(0), cand(1));
        a.as_path_len = 2;
        assert_eq!(winner(&[a, b]), (1, Step::AsPathLen));
    }

    #[test]
    fn origin() {
        let (mut a, b) = (cand(0), cand(1));
        a.origin = Origin::Incomplete;
        assert_eq!(winner(&[a, b]), (1, Step::Origin));
    }

    #[test]
    fn med_same_neighbour_only() {
        let (mut a, b) = (cand(0), cand(1));
        a.med = 10;
        assert_eq!(winner(&[a.clone(), b.clone()]), (1, Step::Med));
        // Different neighbour ASes: MED not compared, router id decides.
        let mut b2 = b;
        b2.neighbor_as = 65000;
        assert_eq!(winner(&[a, b2]), (0, Step::RouterId));
    }

    #[test]
    fn med_not_transitive_is_deterministic() {
        // The classic MED cycle: A(AS1, med 10), B(AS2, med 5), C(AS1, med 0).
        let mut a = cand(0);
        a.neighbor_as = 1;
        a.med = 10;
        let mut b = cand(1);
        b.neighbor_as = 2;
        b.med = 5;
        let mut c = cand(2);
        c.neighbor_as = 1;
        c.med = 0;
        let all = [a.clone(), b.clone(), c.clone()];
        // A loses to C on MED; B and C tie to the router id: B (10.0.0.2) < C (10.0.0.3).
        assert_eq!(winner(&all), (1, Step::RouterId));
        assert_eq!(winner(&[c, b, a]).0, 1);
    }

    #[test]
    fn ebgp_over_ibgp() {
        let (a, mut b) = (cand(0), cand(1));
        b.ebgp = true;
        assert_eq!(winner(&[a, b]), (1, Step::EbgpOverIbgp));
    }

    #[test]
    fn router_id_uses_originator() {
        let (mut a, b) = (cand(0), cand(1));
        a.router_id = Ipv4Addr::new(10, 0, 0, 9);
        assert_eq!(winner(&[a, b]), (1, Step::RouterId));
    }

    #[test]
    fn cluster_list_then_peer_then_path_id() {
        let (mut a, mut b) = (cand(0), cand(1));
        b.router_id = a.router_id;
        a.cluster_list_len = 2;
        assert_eq!(winner(&[a.clone(), b.clone()]), (1, Step::ClusterListLen));
        a.cluster_list_len = 1;
        assert_eq!(winner(&[a.clone(), b.clone()]), (0, Step::PeerAddress));
        b.peer = a.peer;
        a.path_id = 7;
        b.path_id = 3;
        assert_eq!(winner(&[a, b]), (1, Step::PathId));
    }

    #[test]
    fn multipath_width_dedup_and_order() {
        // Six paths, next hops 1..=3 each twice (two reflectors).
        let mut cs: Vec<Cand> = (0..6).map(cand).collect();
        for (i, c) in cs.iter_mut().enumerate() {
            c.next_hop = IpAddr::V4(Ipv4Addr::new(172, 15, 0, (i % 3) as u8 + 1));
        }
        let d = decide(&cs, 32, 1);
        assert_eq!(d.multipath, vec![0, 1, 2, 3, 4, 5]);
        let d = decide(&cs, 2, 1);
        // Router ids order 0..5; next hops .1 .2 taken, .3 excluded.
        assert_eq!(d.multipath, vec![0, 1, 3, 4]);
        // Any input order gives the same set.
        let mut rev = cs.clone();
        rev.reverse();
        let mut d2 = decide(&rev, 2, 1).multipath;
        d2.sort();
        assert_eq!(d2, vec![0, 1, 3, 4]);
    }

    #[test]
    fn multipath_stops_at_earlier_steps() {
        let (a, mut b) = (cand(0), cand(1));
        b.local_pref = 50;
        let d = decide(&[a, b], 32, 1);
        assert_eq!(d.multipath, vec![0]);
        assert_eq!(d.lost[1], Some(Step::LocalPref));
    }
}
