//! One peer's Adj-RIB-Out (RFC 4271 §3.2), sans-IO: what the peer was
//! sent, and what is waiting to be sent.
//!
//! A prefix is waiting at most once, with its latest state (as BIRD's
//! buckets do): a route that changes ten times before the peer is ready
//! is sent once, a route announced and withdrawn again is not sent at
//! all. So memory is bounded by prefixes, never by the number of changes,
//! however slowly the peer reads. What is taken to be sent comes grouped
//! by attribute set (the sets are interned, so one pointer is one set), so
//! that [`crate::wire::pack`] puts each group in as few UPDATEs as fit.

use std::collections::VecDeque;
use std::sync::Arc;

use ipnet::IpNet;

use super::attrs::PathAttrs;
use crate::hash::FastMap;

/// What is taken to be sent in one go.
#[derive(Debug, Default)]
pub struct OutBatch {
    pub withdraw: Vec<IpNet>,
    /// Per attribute set, its prefixes.
    pub announce: Vec<(Arc<PathAttrs>, Vec<IpNet>)>,
}

impl OutBatch {
    pub fn is_empty(&self) -> bool {
        self.withdraw.is_empty() && self.announce.is_empty()
    }

    pub fn prefixes(&self) -> usize {
        self.withdraw.len() + self.announce.iter().map(|(_, p)| p.len()).sum::<usize>()
    }
}

#[derive(Debug, Default)]
pub struct AdjOut {
    sent: FastMap<IpNet, Arc<PathAttrs>>,
    /// The latest state of each prefix waiting to be sent; `None`:
    /// withdraw.
    pending: FastMap<IpNet, Option<Arc<PathAttrs>>>,
    /// The waiting announcements by attribute set, oldest set first (the
    /// set is held, so its address names it while it is queued), and the
    /// waiting withdrawals. An entry whose prefix changed again since is
    /// passed over when taken: `pending` has the truth.
    groups: VecDeque<(Arc<PathAttrs>, Vec<IpNet>)>,
    /// The queue position (counted from the first ever queued) of the
    /// newest group of each set (by its address), for appending to it.
    open: FastMap<usize, u64>,
    /// Groups taken off the front so far.
    popped: u64,
    withdrawals: Vec<IpNet>,
    /// Entries in `groups` and `withdrawals`, stale ones included.
    queued: usize,
}

impl AdjOut {
    /// The peer should have `want` for `prefix` (`None`: no route).
    pub fn set(&mut self, prefix: IpNet, want: Option<Arc<PathAttrs>>) {
        let same = match (self.sent.get(&prefix), &want) {
            (Some(s), Some(w)) => Arc::ptr_eq(s, w) || **s == **w,
            (None, None) => true,
            _ => false,
        };
        if same {
            self.pending.remove(&prefix);
            return;
        }
        let queued_already = match (self.pending.get(&prefix), &want) {
            (Some(Some(p)), Some(w)) => Arc::ptr_eq(p, w),
            (Some(None), None) => true,
            _ => false,
        };
        if queued_already {
            return;
        }
        self.enqueue(prefix, want.as_ref());
        self.pending.insert(prefix, want);
        // Entries left behind by changes are bounded by the prefixes
        // waiting: past twice that, the queue is built again.
        if self.queued > 2 * self.pending.len() + 1024 {
            self.rebuild();
        }
    }

    fn enqueue(&mut self, prefix: IpNet, want: Option<&Arc<PathAttrs>>) {
        self.queued += 1;
        let Some(a) = want else {
            self.withdrawals.push(prefix);
            return;
        };
        let key = Arc::as_ptr(a) as usize;
        if let Some(&pos) = self.open.get(&key)
            && pos >= self.popped
            && let Some(g) = self.groups.get_mut((pos - self.popped) as usize)
        {
            g.1.push(prefix);
            return;
        }
        self.open
            .insert(key, self.popped + self.groups.len() as u64);
        self.groups.push_back((a.clone(), vec![prefix]));
    }

    fn rebuild(&mut self) {
        self.groups.clear();
        self.open.clear();
        self.withdrawals.clear();
        self.popped = 0;
        self.queued = 0;
        let pending: Vec<(IpNet, Option<Arc<PathAttrs>>)> =
            self.pending.iter().map(|(p, a)| (*p, a.clone())).collect();
        for (p, a) in pending {
            self.enqueue(p, a.as_ref());
        }
    }

    /// Changes waiting.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Routes the peer has been sent.
    pub fn sent(&self) -> impl Iterator<Item = (&IpNet, &Arc<PathAttrs>)> {
        self.sent.iter()
    }

    pub fn sent_len(&self) -> usize {
        self.sent.len()
    }

    /// Takes up to `max` waiting changes, withdrawals first, then the
    /// announcements in the order their sets were queued, grouped by set
    /// (so that each set goes in as few UPDATEs as fit), and records them
    /// as sent.
    pub fn take(&mut self, max: usize) -> OutBatch {
        let mut b = OutBatch::default();
        let mut n = 0;
        while n < max
            && let Some(p) = self.withdrawals.pop()
        {
            self.queued -= 1;
            if let Some(None) = self.pending.get(&p) {
                self.pending.remove(&p);
                self.sent.remove(&p);
                b.withdraw.push(p);
                n += 1;
            }
        }
        while n < max
            && let Some((a, mut list)) = self.groups.pop_front()
        {
            self.popped += 1;
            let mut taken = Vec::new();
            let mut used = 0;
            for p in &list {
                used += 1;
                let Some(w) = self.pending.remove(p) else {
                    continue;
                };
                if !w.as_ref().is_some_and(|w| Arc::ptr_eq(w, &a)) {
                    // Changed again since: it waits in a later entry.
                    self.pending.insert(*p, w);
                    continue;
                }
                self.sent.insert(*p, a.clone());
                taken.push(*p);
                n += 1;
                if n >= max {
                    break;
                }
            }
            self.queued -= used;
            if used < list.len() {
                // The rest of the group waits at the front.
                list.drain(..used);
                self.popped -= 1;
                self.groups.push_front((a.clone(), list));
            } else if self.open.get(&(Arc::as_ptr(&a) as usize)) == Some(&(self.popped - 1)) {
                self.open.remove(&(Arc::as_ptr(&a) as usize));
            }
            if !taken.is_empty() {
                b.announce.push((a, taken));
            }
        }
        if self.pending.is_empty() {
            // Nothing valid is left behind.
            self.groups.clear();
            self.open.clear();
            self.withdrawals.clear();
            self.popped = 0;
            self.queued = 0;
        }
        b
    }

    /// The session went down: the peer has nothing of ours.
    pub fn reset(&mut self) {
        *self = AdjOut::default();
    }

    /// Everything sent goes again (a route refresh, RFC 2918 §4).
    pub fn resend(&mut self) {
        let sent: Vec<(IpNet, Arc<PathAttrs>)> = self.sent.drain().collect();
        for (p, a) in sent {
            if !self.pending.contains_key(&p) {
                self.enqueue(p, Some(&a));
                self.pending.insert(p, Some(a));
            }
        }
    }

    /// A sent route could not be encoded: it counts as withdrawn.
    pub fn forget(&mut self, prefix: &IpNet) {
        self.sent.remove(prefix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rib::export::originated;
    use std::collections::BTreeMap;

    fn net(i: u32) -> IpNet {
        IpNet::new(std::net::Ipv4Addr::from(0x0a00_0000 + (i << 8)).into(), 24).unwrap()
    }

    fn attrs(i: u8) -> Arc<PathAttrs> {
        Arc::new(originated(std::net::Ipv4Addr::new(10, 255, 0, i).into()))
    }

    proptest::proptest! {
        /// Whatever the changes and however they are taken, the peer ends
        /// with the latest state of every prefix, each change waits at most
        /// once, and a prefix changed back before it was sent is not sent.
        #[test]
        fn the_peer_ends_with_the_latest_state(
            ops in proptest::collection::vec((0u32..20, proptest::option::of(0u8..3), 0usize..4), 1..200)
        ) {
            let sets: Vec<Arc<PathAttrs>> = (0..3).map(attrs).collect();
            let mut out = AdjOut::default();
            let mut peer: BTreeMap<IpNet, Arc<PathAttrs>> = BTreeMap::new();
            let mut want: BTreeMap<IpNet, Arc<PathAttrs>> = BTreeMap::new();
            let apply = |b: OutBatch, peer: &mut BTreeMap<IpNet, Arc<PathAttrs>>| {
                for p in b.withdraw {
                    proptest::prop_assert!(peer.remove(&p).is_some(), "withdrawn but never sent");
                }
                for (a, ps) in b.announce {
                    for p in ps {
                        let old = peer.insert(p, a.clone());
                        proptest::prop_assert!(old.as_ref() != Some(&a), "sent twice");
                    }
                }
                Ok(())
            };
            for (p, a, take) in ops {
                let w = a.map(|i| sets[i as usize].clone());
                match &w {
                    Some(a) => { want.insert(net(p), a.clone()); }
                    None => { want.remove(&net(p)); }
                }
                out.set(net(p), w);
                proptest::prop_assert!(out.pending() <= 20);
                if take > 0 {
                    apply(out.take(take), &mut peer)?;
                }
            }
            while out.pending() > 0 {
                apply(out.take(3), &mut peer)?;
            }
            proptest::prop_assert_eq!(&peer, &want);
            proptest::prop_assert_eq!(out.sent_len(), want.len());
        }
    }

    /// Prefixes queued interleaved across sets (as a hash walk of the
    /// Loc-RIB queues them) are taken one group per set: each set goes in
    /// as few UPDATEs as fit, not one UPDATE per prefix or two.
    #[test]
    fn interleaved_sets_are_taken_one_group_per_set() {
        let sets: Vec<Arc<PathAttrs>> = (0..100).map(attrs).collect();
        let mut out = AdjOut::default();
        for i in 0..10_000u32 {
            out.set(net(i), Some(sets[(i % 100) as usize].clone()));
        }
        let b = out.take(6_000);
        assert_eq!(b.prefixes(), 6_000);
        assert_eq!(b.announce.len(), 60, "whole groups, oldest first");
        assert!(b.announce.iter().all(|(_, p)| p.len() == 100));
        let b = out.take(6_000);
        assert_eq!(b.prefixes(), 4_000);
        assert_eq!(b.announce.len(), 40);
        // A prefix changed again while queued goes once, in its new set.
        for i in 0..100u32 {
            out.set(net(i), Some(sets[0].clone()));
            out.set(net(i), Some(sets[1].clone()));
        }
        let b = out.take(1_000);
        assert_eq!(b.prefixes(), 99, "net(1) already has set 1");
        assert_eq!(b.announce.len(), 1);
        assert_eq!(out.pending(), 0);
    }

    #[test]
    fn grouped_by_attribute_set_and_resent_on_refresh() {
        let (a, b) = (attrs(1), attrs(2));
        let mut out = AdjOut::default();
        for i in 0..10 {
            out.set(net(i), Some(if i % 2 == 0 { a.clone() } else { b.clone() }));
        }
        let batch = out.take(100);
        assert_eq!(batch.announce.len(), 2);
        assert_eq!(batch.prefixes(), 10);
        assert_eq!(out.pending(), 0);
        // Setting what was sent is no change.
        out.set(net(0), Some(a.clone()));
        assert_eq!(out.pending(), 0);
        out.resend();
        assert_eq!(out.pending(), 10);
        out.reset();
        assert_eq!((out.pending(), out.sent_len()), (0, 0));
        // A withdrawal of what the peer never had is nothing to send.
        out.set(net(3), None);
        assert_eq!(out.pending(), 0);
    }
}
