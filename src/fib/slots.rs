//! The FIB's per-prefix state, kept small for a million routes: a `Slot`
//! of two ids and a few flags per prefix in a prefix trie (no hashing, no
//! rehash), and the next-hop sets the ids stand for, interned once each
//! (nearly every prefix shares its set with many others).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::{Prefix, PrefixMap};

/// Sets of `T` interned to `u32` ids with a reference count; id 0 means
/// none (an empty set, never counted), and an empty set can also be
/// interned (a kernel route of ours without gateways). Freed ids are reused. Each set carries an
/// `X` for its owner (a desired set caches its resolution there).
pub(super) struct Interner<T, X = ()> {
    /// Indexed by id; `None` when free.
    items: Vec<Option<Item<T, X>>>,
    index: HashMap<Arc<[T]>, u32>,
    free: Vec<u32>,
    /// The last set interned: consecutive prefixes mostly share one, and
    /// comparing with it skips the hash.
    last: u32,
    /// The largest id allowed.
    max: u32,
}

struct Item<T, X> {
    set: Arc<[T]>,
    refs: u32,
    extra: X,
}

impl<T: Hash + Eq + Clone, X: Default> Interner<T, X> {
    /// An interner whose ids fit in `bits` bits.
    pub fn new(bits: u32) -> Self {
        Interner {
            items: vec![None],
            index: HashMap::new(),
            free: Vec::new(),
            last: 0,
            max: u32::MAX >> (32 - bits),
        }
    }

    /// The id of `set`, with one more reference; `true` when the set is
    /// new (its extra is the default).
    pub fn intern(&mut self, set: &[T]) -> (u32, bool) {
        let id = match self.items.get(self.last as usize) {
            Some(Some(i)) if *i.set == *set => self.last,
            _ => self.index.get(set).copied().unwrap_or(0),
        };
        if id != 0 {
            self.item_mut(id).refs += 1;
            self.last = id;
            return (id, false);
        }
        let set: Arc<[T]> = set.into();
        let item = Item {
            set: set.clone(),
            refs: 1,
            extra: X::default(),
        };
        // The free list may name ids dropped from the end since, or taken
        // again by a push: skip those.
        let free = loop {
            match self.free.pop() {
                Some(id) if self.items.get(id as usize).is_some_and(Option::is_none) => {
                    break Some(id);
                }
                Some(_) => continue,
                None => break None,
            }
        };
        let id = match free {
            Some(id) => {
                self.items[id as usize] = Some(item);
                id
            }
            None => {
                let id = u32::try_from(self.items.len()).unwrap_or(u32::MAX);
                assert!(id <= self.max, "next-hop set ids exhausted");
                self.items.push(Some(item));
                id
            }
        };
        self.index.insert(set, id);
        self.last = id;
        (id, true)
    }

    fn item_mut(&mut self, id: u32) -> &mut Item<T, X> {
        self.items[id as usize].as_mut().expect("live set id")
    }

    /// One more reference to a live id (0 is ignored).
    pub fn retain(&mut self, id: u32) {
        if id != 0 {
            self.item_mut(id).refs += 1;
        }
    }

    /// One reference less (0 is ignored); returns the extra of a set that
    /// has just been freed.
    pub fn release(&mut self, id: u32) -> Option<X> {
        if id == 0 {
            return None;
        }
        let it = self.item_mut(id);
        it.refs -= 1;
        if it.refs > 0 {
            return None;
        }
        let it = self.items[id as usize].take().expect("live set id");
        // A set given another's content by `rekey` is not in the index.
        if self.index.get(&*it.set) == Some(&id) {
            self.index.remove(&*it.set);
        }
        self.free.push(id);
        // Free ids at the end are dropped, so the table shrinks back.
        while self.items.len() > 1 && self.items.last().is_some_and(Option::is_none) {
            self.items.pop();
        }
        if self.items.len() == 1 {
            self.free.clear();
        }
        if self.items.capacity() > 64 && self.items.len() < self.items.capacity() / 4 {
            self.items.shrink_to(self.items.len() * 2);
        }
        if self.index.capacity() > 64 && self.index.len() < self.index.capacity() / 4 {
            self.index.shrink_to(self.index.len() * 2);
        }
        if self.free.capacity() > 64 && self.free.len() < self.free.capacity() / 4 {
            self.free.shrink_to(self.free.len() * 2);
        }
        Some(it.extra)
    }

    /// The set of a live id (empty for 0).
    pub fn get(&self, id: u32) -> &[T] {
        match self.items.get(id as usize) {
            Some(Some(i)) => &i.set,
            _ => &[],
        }
    }

    pub fn extra(&self, id: u32) -> &X {
        &self.items[id as usize].as_ref().expect("live set id").extra
    }

    pub fn extra_mut(&mut self, id: u32) -> &mut X {
        &mut self.item_mut(id).extra
    }

    /// Every live id.
    pub fn ids(&self) -> Vec<u32> {
        (1..self.items.len() as u32)
            .filter(|i| self.items[*i as usize].is_some())
            .collect()
    }

    /// Live sets.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// References held on a live id (0 when free).
    pub fn refs(&self, id: u32) -> u32 {
        self.items
            .get(id as usize)
            .and_then(Option::as_ref)
            .map_or(0, |i| i.refs)
    }

    /// Gives a live id another set, keeping its references: what it stood
    /// for has changed for everyone who holds it (a kernel nexthop group
    /// replaced in place). The index then finds the id for its new set
    /// only if no other id has that set.
    pub fn rekey(&mut self, id: u32, set: &[T]) {
        let set: Arc<[T]> = set.into();
        let old = std::mem::replace(&mut self.item_mut(id).set, set.clone());
        if self.index.get(&*old) == Some(&id) {
            self.index.remove(&*old);
        }
        self.index.entry(set).or_insert(id);
    }
}

/// Bits of a desired-set id in [`Slot::want`]; the rest are flags.
pub(super) const WANT_BITS: u32 = 26;
const WANT_MASK: u32 = (1 << WANT_BITS) - 1;

/// The kernel's route does not use the kernel object bgpd would give its
/// installed hop set (another group, a plain route, an object where there
/// should be none): the next install of the prefix must be sent even if
/// the hops are the same.
pub(super) const REPOINT: u32 = 1 << 26;
/// Found in the kernel at startup (or by a check before the initial
/// sync), not yet re-learned.
pub(super) const STALE: u32 = 1 << 27;
/// Queued for the kernel (in exactly one dirty or todo queue).
pub(super) const DIRTY: u32 = 1 << 28;
/// Seen in the kernel by the check running now.
pub(super) const SEEN: u32 = 1 << 29;
/// The kernel refused the last change; details in the FIB's side map.
pub(super) const FAILED: u32 = 1 << 30;
/// Held back by a route of another protocol with the same metric.
pub(super) const CONFLICT: u32 = 1 << 31;

/// One prefix: the desired set's id and flags in `want`, the installed
/// hop set's id in `have` (0: none). The installed metric is always the
/// configured one (a route found with another goes to a separate list).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Slot {
    want: u32,
    pub have: u32,
}

impl Slot {
    pub fn new(want: u32, have: u32, flags: u32) -> Slot {
        debug_assert!(want <= WANT_MASK && flags & WANT_MASK == 0);
        Slot {
            want: want | flags,
            have,
        }
    }

    pub fn want(&self) -> u32 {
        self.want & WANT_MASK
    }

    pub fn set_want(&mut self, id: u32) {
        debug_assert!(id <= WANT_MASK);
        self.want = (self.want & !WANT_MASK) | id;
    }

    pub fn has(&self, flag: u32) -> bool {
        self.want & flag != 0
    }

    pub fn set(&mut self, flag: u32, on: bool) {
        if on {
            self.want |= flag;
        } else {
            self.want &= !flag;
        }
    }

    /// Nothing desired, nothing installed, nothing kept: can go.
    pub fn idle(&self) -> bool {
        self.want() == 0 && self.have == 0 && !self.has(STALE)
    }
}

/// The slots of both families, each in a prefix trie.
#[derive(Default)]
pub(super) struct Slots {
    pub v4: PrefixMap<Ipv4Net, Slot>,
    pub v6: PrefixMap<Ipv6Net, Slot>,
}

impl Slots {
    pub fn get(&self, p: &IpNet) -> Option<&Slot> {
        match p {
            IpNet::V4(p) => self.v4.get(p),
            IpNet::V6(p) => self.v6.get(p),
        }
    }

    pub fn get_mut(&mut self, p: &IpNet) -> Option<&mut Slot> {
        match p {
            IpNet::V4(p) => self.v4.get_mut(p),
            IpNet::V6(p) => self.v6.get_mut(p),
        }
    }

    pub fn insert(&mut self, p: IpNet, s: Slot) {
        match p {
            IpNet::V4(p) => self.v4.insert(p, s),
            IpNet::V6(p) => self.v6.insert(p, s),
        };
    }

    pub fn remove(&mut self, p: &IpNet) -> Option<Slot> {
        match p {
            IpNet::V4(p) => self.v4.remove(p),
            IpNet::V6(p) => self.v6.remove(p),
        }
    }

    /// Gives memory back once many prefixes are gone: a trie's node and
    /// value arrays keep their high-water mark (freed cells go to free
    /// lists), so a trie using a small part of them is rebuilt.
    pub fn compact(&mut self) {
        fn one<P: Prefix>(m: &mut PrefixMap<P, Slot>) {
            let need = m.len() * 2 * std::mem::size_of::<Slot>() + (1 << 20);
            if m.mem_size() > 4 * need {
                *m = m.iter().map(|(p, s)| (p, *s)).collect();
            }
        }
        one(&mut self.v4);
        one(&mut self.v6);
    }

    /// In address order, IPv4 first.
    pub fn iter(&self) -> impl Iterator<Item = (IpNet, &Slot)> {
        let v4 = self.v4.iter().map(|(p, s)| (IpNet::V4(p), s));
        v4.chain(self.v6.iter().map(|(p, s)| (IpNet::V6(p), s)))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (IpNet, &mut Slot)> {
        let v4 = self.v4.iter_mut().map(|(p, s)| (IpNet::V4(p), s));
        v4.chain(self.v6.iter_mut().map(|(p, s)| (IpNet::V6(p), s)))
    }
}

/// Prefixes queued for the kernel, by family (5 and 17 bytes each).
#[derive(Default)]
pub(super) struct Queue {
    pub v4: Vec<Ipv4Net>,
    pub v6: Vec<Ipv6Net>,
}

impl Queue {
    pub fn push(&mut self, p: IpNet) {
        match p {
            IpNet::V4(p) => self.v4.push(p),
            IpNet::V6(p) => self.v6.push(p),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    /// The `i`th prefix (IPv4 first), for a pass over the queue while the
    /// state is changed.
    pub fn at(&self, i: usize) -> IpNet {
        match self.v4.get(i) {
            Some(p) => IpNet::V4(*p),
            None => IpNet::V6(self.v6[i - self.v4.len()]),
        }
    }

    /// Sorted so that [`Queue::pop`] gives descending addresses, IPv4 first.
    pub fn sort(&mut self) {
        self.v4.sort_unstable();
        self.v6.sort_unstable();
    }

    /// After [`Queue::sort`], for a queue longer than `chunk`: reorders it
    /// so that each `chunk` popped is every S-th prefix (S = len / chunk),
    /// still descending, the next chunk the ones beside those, and so on.
    /// Each batch then spreads over the whole range instead of filling one
    /// corner of the kernel's LC-trie: inserting in address order makes
    /// the trie resize the same nodes again and again (put_child, resize
    /// in net/ipv4/fib_trie.c); spread, 1M routes took 0.2-0.3 x less
    /// kernel time (benches/floor.rs --order stride, docs/performance.md).
    pub fn spread(&mut self, chunk: usize) {
        fn one<T: Copy>(v: &mut Vec<T>, chunk: usize) {
            if v.len() <= chunk.max(1) {
                return;
            }
            let step = v.len().div_ceil(chunk);
            let mut out = Vec::with_capacity(v.len());
            for k in (0..step).rev() {
                out.extend(v.iter().skip(k).step_by(step).copied());
            }
            *v = out;
        }
        one(&mut self.v4, chunk);
        one(&mut self.v6, chunk);
    }

    pub fn pop(&mut self) -> Option<IpNet> {
        let p = match self.v4.pop() {
            Some(p) => IpNet::V4(p),
            None => IpNet::V6(self.v6.pop()?),
        };
        Some(p)
    }

    /// Gives back the memory of a long queue once it is empty.
    pub fn shrink(&mut self) {
        const KEEP: usize = 4096;
        if self.v4.is_empty() && self.v4.capacity() > KEEP {
            self.v4 = Vec::new();
        }
        if self.v6.is_empty() && self.v6.capacity() > KEEP {
            self.v6 = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_counts_references_and_reuses_ids() {
        let mut i: Interner<u8, u32> = Interner::new(27);
        let (a, new) = i.intern(&[1, 2]);
        assert!(new && a != 0);
        let (b, new) = i.intern(&[3]);
        assert!(new && b != a);
        // The same set again: same id, through the last-set shortcut and
        // through the index.
        assert_eq!(i.intern(&[3]), (b, false));
        assert_eq!(i.intern(&[1, 2]), (a, false));
        assert_eq!((i.refs(a), i.refs(b), i.len()), (2, 2, 2));
        assert_eq!(i.get(a), &[1, 2]);
        assert_eq!(i.get(0), &[] as &[u8]);
        *i.extra_mut(a) = 7;
        i.retain(a);
        assert_eq!(i.release(a), None);
        assert_eq!(i.release(a), None);
        assert_eq!(i.release(a), Some(7), "the last reference frees the set");
        assert_eq!((i.len(), i.get(a)), (1, &[] as &[u8]));
        // A freed id is reused, with a fresh extra; the shortcut does not
        // match a freed set.
        let (c, new) = i.intern(&[4]);
        assert!(new);
        assert_eq!((c, *i.extra(c)), (a, 0));
        assert_eq!(i.ids(), vec![a, b]);
        i.release(b);
        i.release(b);
        i.release(c);
        assert_eq!(
            (i.len(), i.ids().len(), i.items.len(), i.free.len()),
            (0, 0, 1, 0)
        );
        assert_eq!(i.release(0), None);
    }

    #[test]
    fn freed_ids_are_reused_once_and_the_table_shrinks() {
        let mut i: Interner<u32> = Interner::new(27);
        let ids: Vec<u32> = (0..1000).map(|n| i.intern(&[n]).0).collect();
        // Free the low half, then the top (the table shrinks past the
        // freed ids of the top half, which stay named in the free list).
        for n in (0..500).chain((500..1000).rev()) {
            assert_eq!(i.release(ids[n as usize]), Some(()));
        }
        assert_eq!((i.len(), i.items.len(), i.free.len()), (0, 1, 0));
        let again: Vec<u32> = (0..10).map(|n| i.intern(&[n + 5000]).0).collect();
        assert_eq!(again, (1..=10).collect::<Vec<u32>>());
        // Churn at the top: a freed id is handed out once.
        let a = i.intern(&[7000]).0;
        i.release(a);
        i.release(again[9]);
        let b = i.intern(&[7001]).0;
        let c = i.intern(&[7002]).0;
        assert_ne!(b, c);
        assert_eq!((i.get(b), i.get(c)), (&[7001][..], &[7002][..]));
        assert!(i.items.capacity() < 1000, "the table gave memory back");
    }

    #[test]
    fn interned_ids_stay_within_their_bits() {
        let mut i: Interner<u32> = Interner::new(2);
        for n in 1..=3 {
            assert_eq!(i.intern(&[n]).0, n);
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| i.intern(&[9])));
        assert!(r.is_err());
    }

    #[test]
    fn slot_packs_id_and_flags() {
        let mut s = Slot::new(WANT_MASK, 5, STALE | CONFLICT);
        assert_eq!((s.want(), s.have), (WANT_MASK, 5));
        assert!(s.has(STALE) && s.has(CONFLICT) && !s.has(DIRTY));
        s.set_want(3);
        s.set(DIRTY, true);
        s.set(STALE, false);
        assert_eq!(s.want(), 3);
        assert!(s.has(DIRTY) && s.has(CONFLICT) && !s.has(STALE));
        assert_eq!(std::mem::size_of::<Slot>(), 8);
        assert!(!s.idle());
        assert!(Slot::new(0, 0, DIRTY).idle());
    }

    #[test]
    fn queue_pops_in_descending_address_order() {
        let mut q = Queue::default();
        for p in [
            "2001:db8::/32",
            "10.0.0.16/28",
            "10.0.0.0/28",
            "::/0",
            "10.0.0.0/24",
        ] {
            q.push(p.parse().unwrap());
        }
        q.sort();
        let got: Vec<String> = std::iter::from_fn(|| q.pop())
            .map(|p| p.to_string())
            .collect();
        let want = [
            "10.0.0.16/28",
            "10.0.0.0/28",
            "10.0.0.0/24",
            "2001:db8::/32",
            "::/0",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_spread_queue_gives_every_prefix_once_each_batch_across_the_range() {
        let mut q = Queue::default();
        for i in 0..1000u32 {
            q.push(IpNet::V4(
                Ipv4Net::new((0x0a00_0000 + i * 16).into(), 28).unwrap(),
            ));
        }
        q.push("2001:db8::/32".parse().unwrap());
        q.sort();
        q.spread(100);
        let got: Vec<IpNet> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(got.len(), 1001);
        let idx = |p: &IpNet| match p {
            IpNet::V4(p) => ((u32::from(p.addr()) - 0x0a00_0000) / 16) as usize,
            IpNet::V6(_) => usize::MAX,
        };
        // The first batch: every 10th prefix, descending, from the top of
        // the range to the bottom; the second the ones beside those.
        let first: Vec<usize> = got[..100].iter().map(idx).collect();
        assert_eq!(first, (0..100).rev().map(|i| i * 10).collect::<Vec<_>>());
        assert_eq!(idx(&got[100]), 991);
        let mut all: Vec<usize> = got[..1000].iter().map(idx).collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert_eq!(got[1000].to_string(), "2001:db8::/32");
        // A queue no longer than a batch stays in plain descending order.
        let mut q = Queue::default();
        for p in ["10.0.0.0/28", "10.0.0.16/28", "10.0.0.32/28"] {
            q.push(p.parse().unwrap());
        }
        q.sort();
        q.spread(3);
        let got: Vec<String> = std::iter::from_fn(|| q.pop())
            .map(|p| p.to_string())
            .collect();
        assert_eq!(got, ["10.0.0.32/28", "10.0.0.16/28", "10.0.0.0/28"]);
    }
}
