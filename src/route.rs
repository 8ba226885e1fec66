//! What the RIB hands to the FIB: per prefix, its new set of next hops.

use std::net::IpAddr;

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

/// One prefix's new forwarding state: its ECMP set, sorted; empty means
/// the prefix is withdrawn from the kernel.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteChange {
    pub prefix: IpNet,
    pub next_hops: Vec<NextHop>,
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
