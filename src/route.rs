//! What the RIB hands to the FIB: per prefix, its new set of next hops,
//! gathered in [`ChangeSet`]s.

use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;

use ipnet::IpNet;

use crate::hash::FastMap;

/// A next hop to install. A link-local IPv6 next hop needs its interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NextHop {
    pub addr: IpAddr,
    pub ifindex: Option<u32>,
}

impl NextHop {
    pub fn new(addr: IpAddr) -> Self {
        NextHop {
            addr,
            ifindex: None,
        }
    }
}

impl std::fmt::Display for NextHop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.addr)?;
        if let Some(i) = self.ifindex {
            write!(f, "%{i}")?;
        }
        Ok(())
    }
}

/// An ECMP set of next hops: a slice, stored inline when it holds one
/// next hop (nearly every prefix), so a change set of a million prefixes
/// does not make a million allocations; larger sets are shared.
#[derive(Clone, Default)]
pub struct NextHops(Repr);

#[derive(Clone, Default)]
enum Repr {
    #[default]
    Empty,
    One(NextHop),
    Many(Arc<[NextHop]>),
}

impl NextHops {
    pub const fn new() -> Self {
        NextHops(Repr::Empty)
    }

    pub fn one(nh: NextHop) -> Self {
        NextHops(Repr::One(nh))
    }
}

impl Deref for NextHops {
    type Target = [NextHop];
    fn deref(&self) -> &[NextHop] {
        match &self.0 {
            Repr::Empty => &[],
            Repr::One(n) => std::slice::from_ref(n),
            Repr::Many(v) => v,
        }
    }
}

impl From<Vec<NextHop>> for NextHops {
    fn from(mut v: Vec<NextHop>) -> Self {
        match v.len() {
            0 => NextHops(Repr::Empty),
            1 => NextHops(Repr::One(v.pop().expect("one"))),
            _ => NextHops(Repr::Many(v.into())),
        }
    }
}

impl FromIterator<NextHop> for NextHops {
    fn from_iter<I: IntoIterator<Item = NextHop>>(it: I) -> Self {
        let mut it = it.into_iter();
        let Some(first) = it.next() else {
            return NextHops(Repr::Empty);
        };
        let Some(second) = it.next() else {
            return NextHops(Repr::One(first));
        };
        let mut v = vec![first, second];
        v.extend(it);
        NextHops(Repr::Many(v.into()))
    }
}

impl PartialEq for NextHops {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for NextHops {}

impl PartialEq<Vec<NextHop>> for NextHops {
    fn eq(&self, other: &Vec<NextHop>) -> bool {
        **self == **other
    }
}

impl std::hash::Hash for NextHops {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

impl std::fmt::Debug for NextHops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One prefix's new forwarding state: its ECMP set, sorted; empty means
/// the prefix is withdrawn from the kernel.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteChange {
    pub prefix: IpNet,
    pub next_hops: NextHops,
}

impl RouteChange {
    pub fn is_withdraw(&self) -> bool {
        self.next_hops.is_empty()
    }
}

/// Route changes in the order they were made. A prefix may appear more
/// than once (a batch adds a prefix, then decides it again at its end);
/// **the later change of a prefix wins**. This type is the one owner of
/// that rule: whoever joins change sets ([`ChangeSet::append`]) or needs
/// one change per prefix ([`ChangeSet::dedup`]) goes through it, and a
/// consumer that applies the changes in order (the FIB's desired state,
/// the foreground view) gets the same result either way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet(Vec<RouteChange>);

impl ChangeSet {
    pub const fn new() -> Self {
        ChangeSet(Vec::new())
    }

    pub fn push(&mut self, c: RouteChange) {
        self.0.push(c);
    }

    /// Adds `later` after this set's changes: for a prefix in both, its
    /// change in `later` wins.
    pub fn append(&mut self, mut later: ChangeSet) {
        if self.0.is_empty() {
            *self = later;
        } else {
            self.0.append(&mut later.0);
        }
    }

    /// Takes the changes out, leaving an empty set.
    pub fn take(&mut self) -> ChangeSet {
        std::mem::take(self)
    }

    /// Keeps only the last change of each prefix, in the order of those
    /// last changes. Cheap when no prefix repeats.
    pub fn dedup(&mut self) {
        if self.0.len() < 2 {
            return;
        }
        let mut last: FastMap<IpNet, usize> =
            FastMap::with_capacity_and_hasher(self.0.len(), Default::default());
        for (i, c) in self.0.iter().enumerate() {
            last.insert(c.prefix, i);
        }
        if last.len() == self.0.len() {
            return;
        }
        let mut i = 0;
        self.0.retain(|c| {
            let keep = last[&c.prefix] == i;
            i += 1;
            keep
        });
    }

    /// [`ChangeSet::dedup`] of the changes from `start` on (one UPDATE's,
    /// in a batch), leaving those before alone.
    pub fn dedup_since(&mut self, start: usize) {
        let mut own = ChangeSet(self.0.split_off(start));
        own.dedup();
        self.0.append(&mut own.0);
    }

    /// The changes in order (repeats included; see [`ChangeSet::dedup`]).
    pub fn into_vec(self) -> Vec<RouteChange> {
        self.0
    }
}

impl Deref for ChangeSet {
    type Target = [RouteChange];
    fn deref(&self) -> &[RouteChange] {
        &self.0
    }
}

impl PartialEq<Vec<RouteChange>> for ChangeSet {
    fn eq(&self, other: &Vec<RouteChange>) -> bool {
        self.0 == *other
    }
}

impl From<Vec<RouteChange>> for ChangeSet {
    fn from(v: Vec<RouteChange>) -> Self {
        ChangeSet(v)
    }
}

impl FromIterator<RouteChange> for ChangeSet {
    fn from_iter<I: IntoIterator<Item = RouteChange>>(it: I) -> Self {
        ChangeSet(it.into_iter().collect())
    }
}

impl Extend<RouteChange> for ChangeSet {
    fn extend<I: IntoIterator<Item = RouteChange>>(&mut self, it: I) {
        self.0.extend(it)
    }
}

impl IntoIterator for ChangeSet {
    type Item = RouteChange;
    type IntoIter = std::vec::IntoIter<RouteChange>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ChangeSet {
    type Item = &'a RouteChange;
    type IntoIter = std::slice::Iter<'a, RouteChange>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Next-hop reachability, which belongs to the FIB (it watches the
/// kernel's links, addresses and routes); the RIB asks it.
pub trait Resolver {
    /// Whether a BGP next hop can be reached, directly or recursively
    /// through routes of other protocols.
    fn resolves(&self, next_hop: IpAddr) -> bool;
}

/// A shared resolver resolves as what it points to (the FIB's
/// `Arc<fib::Reachability>` snapshots go into the RIB as they are).
impl<R: Resolver + ?Sized> Resolver for Arc<R> {
    fn resolves(&self, next_hop: IpAddr) -> bool {
        (**self).resolves(next_hop)
    }
}

/// A resolver that accepts every next hop (for tests and --no-install).
pub struct AlwaysResolves;

impl Resolver for AlwaysResolves {
    fn resolves(&self, _: IpAddr) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(p: &str, hops: &[&str]) -> RouteChange {
        RouteChange {
            prefix: p.parse().unwrap(),
            next_hops: hops
                .iter()
                .map(|h| NextHop::new(h.parse().unwrap()))
                .collect(),
        }
    }

    #[test]
    fn the_later_change_of_a_prefix_wins() {
        let mut a: ChangeSet = vec![c("10.0.0.0/24", &["10.1.0.1"]), c("10.0.1.0/24", &[])].into();
        a.append(vec![c("10.0.0.0/24", &[]), c("10.0.2.0/24", &["10.1.0.2"])].into());
        assert_eq!(a.len(), 4);
        a.dedup();
        assert_eq!(
            a.into_vec(),
            vec![
                c("10.0.1.0/24", &[]),
                c("10.0.0.0/24", &[]),
                c("10.0.2.0/24", &["10.1.0.2"]),
            ]
        );
    }

    #[test]
    fn dedup_keeps_a_set_without_repeats_as_it_is() {
        let v = vec![c("10.0.1.0/24", &["10.1.0.1"]), c("10.0.0.0/24", &[])];
        let mut a = ChangeSet::from(v.clone());
        a.dedup();
        assert_eq!(a.into_vec(), v);
        let mut e = ChangeSet::new();
        e.append(ChangeSet::from(v.clone()));
        assert_eq!(e.into_vec(), v);
    }
}
