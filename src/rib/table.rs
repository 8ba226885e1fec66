//! One prefix's entry in the Loc-RIB: every path received for it (the
//! Adj-RIB-In rows of all peers, keyed by peer and ADD-PATH path id), kept
//! in decision order with the multipath set first.

use std::net::IpAddr;
use std::sync::Arc;

use super::attrs::PathAttrs;
use super::decision::{self, Cand, Step, select};
use super::policy::Reject;
use super::{PeerSlot, RibConfig};
use crate::route::{NextHop, NextHops};
use crate::wire::Community;

/// Path flag: retained from a peer in graceful restart (RFC 4724 §4.2).
pub(crate) const STALE: u8 = 1;
/// Path flag: the next hop does not resolve.
pub(crate) const UNRESOLVED: u8 = 2;

/// One received path: 16 bytes.
#[derive(Clone, Debug)]
pub(crate) struct Path {
    pub attrs: Arc<PathAttrs>,
    pub path_id: u32,
    /// Index into the RIB's peer table.
    pub peer: u16,
    pub reject: Option<Reject>,
    pub flags: u8,
}

impl Path {
    pub fn eligible(&self) -> bool {
        self.reject.is_none() && self.flags & UNRESOLVED == 0
    }

    pub fn stale(&self) -> bool {
        self.flags & STALE != 0
    }
}

/// A Loc-RIB entry: 16 bytes plus shared attributes. Most prefixes have
/// one path, held inline; the trie moves its values as it grows, so a
/// small entry makes every insert cheaper.
#[derive(Clone, Debug)]
pub struct Entry(Repr);

#[derive(Clone, Debug)]
enum Repr {
    /// One path, decided: it is the best if eligible. Never dirty.
    One(Path),
    /// Several paths, or any number while the entry is marked.
    Many(Box<Many>),
    /// No path left: the caller removes the entry.
    Empty,
}

#[derive(Clone, Debug)]
struct Many {
    paths: Vec<Path>,
    /// How many leading paths form the multipath set; 0 when no path is
    /// eligible. `paths[0]` is the best path when this is non-zero.
    ecmp: u32,
    /// Paths `ecmp..sorted_end` are in (peer, path id) order: the decision
    /// leaves the paths outside the multipath set sorted. Paths added since
    /// go after them, in the same order among themselves. [`Entry::find`]
    /// searches both runs in O(log n), so a batch adding n ADD-PATH paths
    /// to one prefix costs O(n log n) to find them, plus the moves of
    /// inserting into the second run.
    sorted_end: u32,
    /// Why the best path won.
    reason: Step,
    /// Paths changed since the last decision; the RIB's pending list holds
    /// the prefix and its next hops before the change.
    dirty: bool,
}

/// What the decision needs of the RIB.
pub(crate) struct Ctx<'a> {
    pub peers: &'a [PeerSlot],
    pub cfg: &'a RibConfig,
}

impl Ctx<'_> {
    /// The next hop to install for a path.
    pub fn install_hop(&self, p: &Path) -> NextHop {
        let a = &p.attrs;
        let ifindex = self.peers[p.peer as usize].info.ifindex;
        match a.next_hop {
            // RFC 2545 §3: a link-local next hop needs its interface; use
            // the link-local address when there is no usable global one.
            IpAddr::V6(g) if g.is_unspecified() || g.is_unicast_link_local() => NextHop {
                addr: a.link_local.map(IpAddr::V6).unwrap_or(a.next_hop),
                ifindex,
            },
            addr => NextHop {
                addr,
                ifindex: None,
            },
        }
    }

    pub fn cand(&self, idx: usize, p: &Path) -> Cand {
        let peer = &self.peers[p.peer as usize];
        let a = &p.attrs;
        Cand {
            idx,
            llgr_stale: a.communities.contains(&Community::LLGR_STALE),
            local_pref: a.local_pref,
            as_path_len: a.as_path_len(),
            origin: a.origin,
            neighbor_as: a.as_path.first_as().unwrap_or(if peer.info.ibgp {
                self.cfg.local_as
            } else {
                peer.info.remote_as
            }),
            med: a.med.unwrap_or(0),
            ebgp: !peer.info.ibgp,
            router_id: a.originator_id.unwrap_or(peer.info.router_id),
            cluster_list_len: a.cluster_list.len(),
            peer: peer.addr,
            path_id: p.path_id,
            next_hop: self.install_hop(p).addr,
        }
    }
}

impl Entry {
    pub(crate) fn new(p: Path) -> Entry {
        Entry(Repr::One(p))
    }

    pub(crate) fn paths(&self) -> &[Path] {
        match &self.0 {
            Repr::One(p) => std::slice::from_ref(p),
            Repr::Many(m) => &m.paths,
            Repr::Empty => &[],
        }
    }

    pub(crate) fn paths_mut(&mut self) -> &mut [Path] {
        match &mut self.0 {
            Repr::One(p) => std::slice::from_mut(p),
            Repr::Many(m) => &mut m.paths,
            Repr::Empty => &mut [],
        }
    }

    /// The single path of an entry that is not marked.
    pub(crate) fn only(&self) -> Option<&Path> {
        match &self.0 {
            Repr::One(p) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn into_only(self) -> Option<Path> {
        match self.0 {
            Repr::One(p) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.paths().is_empty()
    }

    /// How many leading paths form the multipath set; 0 when no path is
    /// eligible.
    pub(crate) fn ecmp(&self) -> usize {
        match &self.0 {
            Repr::One(p) => p.eligible() as usize,
            Repr::Many(m) => m.ecmp as usize,
            Repr::Empty => 0,
        }
    }

    /// Why the best path won.
    pub(crate) fn reason(&self) -> Step {
        match &self.0 {
            Repr::Many(m) => m.reason,
            _ => Step::OnlyPath,
        }
    }

    /// Whether the paths changed since the last decision.
    pub(crate) fn dirty(&self) -> bool {
        matches!(&self.0, Repr::Many(m) if m.dirty)
    }

    /// Marks the entry for the next decision.
    pub(crate) fn mark(&mut self) {
        self.many().dirty = true;
    }

    /// The entry as `Many`, converting a single path (decided: it is the
    /// multipath set if eligible) or an empty entry.
    fn many(&mut self) -> &mut Many {
        if !matches!(self.0, Repr::Many(_)) {
            let paths: Vec<Path> = match std::mem::replace(&mut self.0, Repr::Empty) {
                Repr::One(p) => vec![p],
                _ => Vec::new(),
            };
            let ecmp = paths.first().is_some_and(Path::eligible) as u32;
            self.0 = Repr::Many(Box::new(Many {
                sorted_end: paths.len() as u32,
                paths,
                ecmp,
                reason: Step::OnlyPath,
                dirty: false,
            }));
        }
        match &mut self.0 {
            Repr::Many(m) => m,
            _ => unreachable!("converted above"),
        }
    }

    pub(crate) fn find(&self, peer: u16, path_id: u32) -> Option<usize> {
        let (ps, ecmp, end) = match &self.0 {
            Repr::One(p) => return (p.peer == peer && p.path_id == path_id).then_some(0),
            Repr::Many(m) => (&m.paths[..], m.ecmp as usize, m.sorted_end as usize),
            Repr::Empty => return None,
        };
        let key = (peer, path_id);
        let ecmp = ecmp.min(ps.len());
        let end = end.clamp(ecmp, ps.len());
        let is = |p: &Path| p.peer == peer && p.path_id == path_id;
        if let Some(i) = ps[..ecmp].iter().position(is) {
            return Some(i);
        }
        let by_key = |p: &Path| (p.peer, p.path_id);
        if let Ok(i) = ps[ecmp..end].binary_search_by_key(&key, by_key) {
            return Some(ecmp + i);
        }
        ps[end..]
            .binary_search_by_key(&key, by_key)
            .ok()
            .map(|i| end + i)
    }

    /// Adds a path that [`Entry::find`] did not find.
    pub(crate) fn push(&mut self, p: Path) {
        let m = self.many();
        let added = &m.paths[m.sorted_end as usize..];
        let at = added.partition_point(|q| (q.peer, q.path_id) < (p.peer, p.path_id));
        m.paths.insert(m.sorted_end as usize + at, p);
    }

    pub(crate) fn remove_at(&mut self, i: usize) -> Path {
        if let Repr::One(_) = self.0 {
            let Repr::One(p) = std::mem::replace(&mut self.0, Repr::Empty) else {
                unreachable!()
            };
            return p;
        }
        let m = self.many();
        // The regions before and after `i` keep their order.
        if i < m.sorted_end as usize {
            m.sorted_end -= 1;
        }
        if i < m.ecmp as usize {
            m.ecmp -= 1;
        }
        m.paths.remove(i)
    }

    /// The multipath set's next hops, deduplicated and sorted.
    pub(crate) fn next_hops(&self, ctx: &Ctx) -> NextHops {
        match &self.paths()[..self.ecmp()] {
            [] => NextHops::new(),
            [p] => NextHops::one(ctx.install_hop(p)),
            ps => {
                let mut v: Vec<NextHop> = ps.iter().map(|p| ctx.install_hop(p)).collect();
                v.sort_unstable();
                v.dedup();
                v.into()
            }
        }
    }

    /// Runs the decision process, reorders the paths (the multipath set
    /// in decision order, best first, then the others by peer and path
    /// id) and clears the mark. A single path goes back inline.
    pub(crate) fn decide(&mut self, ctx: &Ctx) {
        let Repr::Many(m) = &mut self.0 else {
            return;
        };
        m.dirty = false;
        match m.paths.len() {
            0 => {
                self.0 = Repr::Empty;
                return;
            }
            1 => {
                let p = m.paths.pop().expect("one path");
                self.0 = Repr::One(p);
                return;
            }
            _ => {}
        }
        let v = &mut m.paths;
        SCRATCH.with_borrow_mut(|s| {
            let Scratch {
                cands,
                order,
                used,
                rest,
                run,
            } = s;
            cands.clear();
            cands.extend(
                v.iter()
                    .enumerate()
                    .filter(|(_, p)| p.eligible())
                    .map(|(i, p)| ctx.cand(i, p)),
            );
            order.clear();
            if cands.is_empty() {
                m.ecmp = 0;
                m.reason = Step::OnlyPath;
            } else {
                let widths = (ctx.cfg.ibgp_multipath, ctx.cfg.ebgp_multipath);
                m.reason = select(cands, widths, order, run);
                m.ecmp = len32(order.len());
            }
            used.clear();
            used.resize(v.len(), false);
            for &i in order.iter() {
                used[i] = true;
            }
            rest.clear();
            rest.extend((0..v.len()).filter(|&i| !used[i]));
            // Mostly sorted already (the part after the multipath set, with
            // new paths at the end): the stable sort merges runs in O(n).
            rest.sort_by_key(|&i| (v[i].peer, v[i].path_id));
            m.sorted_end = len32(v.len());
            order.extend(rest.iter());
            permute(v, order);
            s.trim();
        });
    }
}

/// Buffers the decision reuses, per thread (the RIB runs on one): once
/// grown, deciding an entry allocates nothing. A Calico service CIDR's
/// 3,000 candidates would otherwise allocate, and map, a quarter of a
/// megabyte per decision.
#[derive(Default)]
struct Scratch {
    cands: Vec<Cand>,
    order: Vec<usize>,
    used: Vec<bool>,
    rest: Vec<usize>,
    run: decision::Scratch,
}

/// Candidates whose buffers are kept after a decision; an entry larger
/// than this gives them back.
const SCRATCH_KEEP: usize = 8192;

impl Scratch {
    fn trim(&mut self) {
        if self.cands.capacity() > SCRATCH_KEEP {
            *self = Scratch::default();
        }
        self.run.trim(SCRATCH_KEEP);
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// A path count as stored: a prefix's paths are held in memory, 16 bytes
/// each, so there are never 2^32 of them.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Reorders `v` so that `v[k]` becomes the old `v[order[k]]`, in place
/// (following each cycle of the permutation; `order` is used up).
fn permute<T>(v: &mut [T], order: &mut [usize]) {
    for start in 0..v.len() {
        let mut k = start;
        while order[k] != usize::MAX {
            let src = order[k];
            order[k] = usize::MAX;
            if src == start {
                break;
            }
            v.swap(k, src);
            k = src;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(std::mem::size_of::<Path>(), 16);
        assert_eq!(std::mem::size_of::<Entry>(), 16);
    }

    #[test]
    fn permute_follows_cycles() {
        let mut v: Vec<u32> = (0..7).collect();
        let order = [3usize, 0, 6, 1, 2, 5, 4];
        permute(&mut v, &mut order.to_vec());
        assert_eq!(v, order.iter().map(|&i| i as u32).collect::<Vec<_>>());
    }
}
