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
    /// `None`: withdraw.
    pending: FastMap<IpNet, Option<Arc<PathAttrs>>>,
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
        } else {
            self.pending.insert(prefix, want);
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

    /// Takes up to about `max` waiting changes (whole attribute groups
    /// may go a little over), grouped, and records them as sent.
    pub fn take(&mut self, max: usize) -> OutBatch {
        let mut groups: FastMap<*const PathAttrs, usize> = FastMap::default();
        let mut b = OutBatch::default();
        let keys: Vec<IpNet> = self.pending.keys().take(max).copied().collect();
        for p in keys {
            let Some(want) = self.pending.remove(&p) else {
                continue;
            };
            match want {
                None => {
                    self.sent.remove(&p);
                    b.withdraw.push(p);
                }
                Some(a) => {
                    let i = *groups.entry(Arc::as_ptr(&a)).or_insert_with(|| {
                        b.announce.push((a.clone(), Vec::new()));
                        b.announce.len() - 1
                    });
                    b.announce[i].1.push(p);
                    self.sent.insert(p, a);
                }
            }
        }
        b
    }

    /// The session went down: the peer has nothing of ours.
    pub fn reset(&mut self) {
        self.sent.clear();
        self.pending.clear();
    }

    /// Everything sent goes again (a route refresh, RFC 2918 §4).
    pub fn resend(&mut self) {
        for (p, a) in self.sent.drain() {
            self.pending.entry(p).or_insert(Some(a));
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
