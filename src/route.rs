//! What the RIB hands to the FIB: per prefix, its new set of next hops.

use std::net::IpAddr;
use std::ops::Deref;
use std::sync::Arc;

use ipnet::IpNet;

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

/// Next-hop reachability, which belongs to the FIB (it watches the
/// kernel's links, addresses and routes); the RIB asks it.
pub trait Resolver {
    /// Whether a BGP next hop can be reached, directly or recursively
    /// through routes of other protocols.
    fn resolves(&self, next_hop: IpAddr) -> bool;
}

/// A resolver that accepts every next hop (for tests and --no-install).
pub struct AlwaysResolves;

impl Resolver for AlwaysResolves {
    fn resolves(&self, _: IpAddr) -> bool {
        true
    }
}
