//! One prefix's entry in the Loc-RIB: every path received for it (the
//! Adj-RIB-In rows of all peers, keyed by peer and ADD-PATH path id), kept
//! in decision order with the multipath set first.

use std::net::IpAddr;
use std::sync::Arc;

use super::attrs::PathAttrs;
use super::decision::{Cand, Step, decide};
use super::policy::Reject;
use super::{PeerSlot, RibConfig};
use crate::route::{NextHop, NextHops};

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

/// The paths of a prefix, inline when there is one (the common case).
#[derive(Clone, Debug)]
pub(crate) enum Paths {
    One(Path),
    Many(Vec<Path>),
}

/// A Loc-RIB entry: 32 bytes plus shared attributes.
#[derive(Clone, Debug)]
pub struct Entry {
    pub(crate) paths: Paths,
    /// How many leading paths form the multipath set; 0 when no path is
    /// eligible. `paths[0]` is the best path when this is non-zero.
    pub(crate) ecmp: u16,
    /// Paths `ecmp..sorted_end` are in (peer, path id) order: the decision
    /// leaves the paths outside the multipath set sorted, and paths added
    /// since go after them. [`Entry::find`] searches that part in
    /// O(log n), so n ADD-PATH paths of one prefix cost O(n log n).
    pub(crate) sorted_end: u16,
    /// Why the best path won.
    pub(crate) reason: Step,
    /// Paths changed since the last decision; the RIB's pending list holds
    /// the prefix and its next hops before the change.
    pub(crate) dirty: bool,
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
        let ecmp = p.eligible() as u16;
        Entry {
            paths: Paths::One(p),
            ecmp,
            sorted_end: 1,
            reason: Step::OnlyPath,
            dirty: false,
        }
    }

    pub(crate) fn paths(&self) -> &[Path] {
        match &self.paths {
            Paths::One(p) => std::slice::from_ref(p),
            Paths::Many(v) => v,
        }
    }

    pub(crate) fn paths_mut(&mut self) -> &mut [Path] {
        match &mut self.paths {
            Paths::One(p) => std::slice::from_mut(p),
            Paths::Many(v) => v,
        }
    }

    /// The single path, when there is exactly one.
    pub(crate) fn only(&self) -> Option<&Path> {
        match &self.paths {
            Paths::One(p) => Some(p),
            Paths::Many(_) => None,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(&self.paths, Paths::Many(v) if v.is_empty())
    }

    pub(crate) fn find(&self, peer: u16, path_id: u32) -> Option<usize> {
        let ps = self.paths();
        let key = (peer, path_id);
        let ecmp = (self.ecmp as usize).min(ps.len());
        let end = (self.sorted_end as usize).clamp(ecmp, ps.len());
        let is = |p: &Path| p.peer == peer && p.path_id == path_id;
        if let Some(i) = ps[..ecmp].iter().position(is) {
            return Some(i);
        }
        if let Ok(i) = ps[ecmp..end].binary_search_by_key(&key, |p| (p.peer, p.path_id)) {
            return Some(ecmp + i);
        }
        ps[end..].iter().position(is).map(|i| end + i)
    }

    pub(crate) fn push(&mut self, p: Path) {
        match &mut self.paths {
            Paths::Many(v) => v.push(p),
            Paths::One(_) => {
                let Paths::One(old) = std::mem::replace(&mut self.paths, Paths::Many(Vec::new()))
                else {
                    unreachable!()
                };
                self.paths = Paths::Many(vec![old, p]);
            }
        }
    }

    pub(crate) fn remove_at(&mut self, i: usize) -> Path {
        // The regions before and after `i` keep their order.
        if i < self.sorted_end as usize {
            self.sorted_end -= 1;
        }
        if i < self.ecmp as usize {
            self.ecmp -= 1;
        }
        match &mut self.paths {
            Paths::Many(v) => {
                let p = v.remove(i);
                if v.len() == 1 {
                    let last = v.pop().expect("one left");
                    self.paths = Paths::One(last);
                }
                p
            }
            Paths::One(_) => {
                let Paths::One(p) = std::mem::replace(&mut self.paths, Paths::Many(Vec::new()))
                else {
                    unreachable!()
                };
                p
            }
        }
    }

    /// The multipath set's next hops, deduplicated and sorted.
    pub(crate) fn next_hops(&self, ctx: &Ctx) -> NextHops {
        match &self.paths()[..self.ecmp as usize] {
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

    /// Runs the decision process and reorders the paths: the multipath set
    /// in decision order (best first), then the others by peer and path id.
    pub(crate) fn decide(&mut self, ctx: &Ctx) {
        let v = match &mut self.paths {
            Paths::One(p) => {
                self.ecmp = p.eligible() as u16;
                self.sorted_end = 1;
                self.reason = Step::OnlyPath;
                return;
            }
            Paths::Many(v) => v,
        };
        let cands: Vec<Cand> = v
            .iter()
            .enumerate()
            .filter(|(_, p)| p.eligible())
            .map(|(i, p)| ctx.cand(i, p))
            .collect();
        let mut order: Vec<usize> = Vec::with_capacity(v.len());
        if cands.is_empty() {
            self.ecmp = 0;
            self.reason = Step::OnlyPath;
        } else {
            let d = decide(&cands, ctx.cfg.ibgp_multipath, ctx.cfg.ebgp_multipath);
            self.ecmp = d.multipath.len() as u16;
            self.reason = d.reason;
            order.extend(d.multipath);
        }
        let mut used = vec![false; v.len()];
        for &i in &order {
            used[i] = true;
        }
        let mut rest: Vec<usize> = (0..v.len()).filter(|&i| !used[i]).collect();
        rest.sort_unstable_by_key(|&i| (v[i].peer, v[i].path_id));
        self.sorted_end = u16::try_from(v.len()).unwrap_or(u16::MAX);
        order.extend(rest);
        let mut slots: Vec<Option<Path>> = std::mem::take(v).into_iter().map(Some).collect();
        *v = order
            .into_iter()
            .map(|i| slots[i].take().expect("a permutation"))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(std::mem::size_of::<Path>(), 16);
        assert!(std::mem::size_of::<Entry>() <= 32);
    }
}
