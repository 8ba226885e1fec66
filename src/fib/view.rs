//! The FIB's mirror of the kernel state that next-hop resolution needs:
//! links (up or not), local addresses and the routes of *other* protocols in
//! the tables bgpd resolves through. The FIB task keeps it current from
//! rtnetlink dumps and multicast notifications (rtnetlink(7), groups
//! RTNLGRP_LINK, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV6_IFADDR,
//! RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE). The RIB never reads it: it
//! gets [`Reachability`] snapshots, the part resolution needs.
//!
//! Resolution follows what the kernel itself accepts as a gateway
//! (net/ipv4/fib_semantics.c `fib_check_nh`, net/ipv6/route.c
//! `ip6_validate_gw`): the gateway must be on-link. A BGP next hop is on-link
//! when the longest match for it is a directly connected route (no gateway);
//! otherwise, when the longest match is a unicast route of another protocol
//! with gateways (an IGP or static route), the BGP route is installed through
//! those immediate gateways ("recursive" resolution, as FRR's zebra and BIRD's
//! recursive gateways do). Routes of bgpd's own protocol are never used, so a
//! BGP route can never resolve through itself.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteFlags, RouteMessage};

use crate::hash::{FastMap, FastSet};
use crate::route::{NextHop, Resolver};

/// An immediate (on-link) next hop as it goes into the kernel: gateway and
/// output interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hop {
    pub gateway: IpAddr,
    pub ifindex: u32,
}

impl std::fmt::Display for Hop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} if{}", self.gateway, self.ifindex)
    }
}

/// A kernel route as bgpd sees it (from a dump or a notification).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelRoute {
    pub prefix: IpNet,
    pub table: u32,
    pub protocol: u8,
    pub metric: u32,
    /// RTN_* type: 1 is unicast; blackhole, unreachable, local... otherwise.
    pub kind: u8,
    /// (gateway, output interface) per next hop; a connected route has no
    /// gateway.
    pub hops: Vec<(Option<IpAddr>, u32)>,
    /// RTA_NH_ID: the kernel nexthop object (or group) the route uses.
    /// With `net.ipv4.nexthop_compat_mode` on (the default) the kernel
    /// lists the object's hops in `hops` as well.
    pub nh_id: Option<u32>,
}

impl KernelRoute {
    /// Parses a route message; `None` for routes bgpd never looks at
    /// (cloned cache entries, non-IP families).
    pub fn from_message(m: &RouteMessage) -> Option<KernelRoute> {
        if m.header.flags.contains(RouteFlags::Cloned) {
            return None;
        }
        let mut dst: Option<IpAddr> = None;
        let mut table = u32::from(m.header.table);
        let mut metric = 0;
        let mut gw = None;
        let mut oif = 0;
        let mut hops = Vec::new();
        let mut nh_id = None;
        for a in &m.attributes {
            match a {
                RouteAttribute::NhId(id) => nh_id = Some(*id),
                RouteAttribute::Destination(addr) => dst = route_addr(addr),
                RouteAttribute::Table(t) => table = *t,
                RouteAttribute::Priority(p) => metric = *p,
                RouteAttribute::Gateway(addr) => gw = route_addr(addr),
                RouteAttribute::Oif(i) => oif = *i,
                RouteAttribute::MultiPath(nhs) => {
                    for nh in nhs {
                        let g = nh.attributes.iter().find_map(|a| match a {
                            RouteAttribute::Gateway(addr) => route_addr(addr),
                            _ => None,
                        });
                        hops.push((g, nh.interface_index));
                    }
                }
                _ => {}
            }
        }
        let len = m.header.destination_prefix_length;
        let family = u8::from(m.header.address_family);
        let dst = match dst {
            Some(d) => d,
            None if family == libc::AF_INET as u8 => IpAddr::from([0u8; 4]),
            None if family == libc::AF_INET6 as u8 => IpAddr::from([0u8; 16]),
            None => return None,
        };
        let prefix = IpNet::new(dst, len).ok()?.trunc();
        if hops.is_empty() && (gw.is_some() || oif != 0) {
            hops.push((gw, oif));
        }
        hops.sort();
        Some(KernelRoute {
            prefix,
            table,
            protocol: u8::from(m.header.protocol),
            metric,
            kind: u8::from(m.header.kind),
            hops,
            nh_id,
        })
    }

    /// The next hops as installed hops (gatewayless ones dropped).
    pub fn gateway_hops(&self) -> Vec<Hop> {
        let mut v: Vec<Hop> = self
            .hops
            .iter()
            .filter_map(|(g, i)| {
                g.map(|gateway| Hop {
                    gateway,
                    ifindex: *i,
                })
            })
            .collect();
        v.sort();
        v
    }

    /// Parses the payload of an RTM_NEWROUTE message (struct rtmsg and its
    /// attributes, rtnetlink(7)) straight from the bytes of a dump, exactly
    /// as [`KernelRoute::from_message`] reads the parsed message.
    pub fn parse(m: &[u8]) -> Option<KernelRoute> {
        const RTM_F_CLONED: u32 = 0x200;
        if m.len() < 12 {
            return None;
        }
        let flags = u32::from_ne_bytes(m[8..12].try_into().ok()?);
        if flags & RTM_F_CLONED != 0 {
            return None;
        }
        let family = m[0];
        let mut dst: Option<IpAddr> = None;
        let mut table = u32::from(m[4]);
        let mut metric = 0;
        let mut gw = None;
        let mut oif = 0;
        let mut hops = Vec::new();
        let mut nh_id = None;
        for (kind, data) in Attrs(&m[12..]) {
            match kind {
                RTA_NH_ID => nh_id = Some(raw_u32(data)?),
                RTA_DST => dst = raw_addr(data),
                RTA_TABLE => table = raw_u32(data)?,
                RTA_PRIORITY => metric = raw_u32(data)?,
                RTA_GATEWAY => gw = raw_addr(data),
                RTA_OIF => oif = raw_u32(data)?,
                RTA_MULTIPATH => {
                    // struct rtnexthop { len: u16, flags: u8, hops: u8,
                    // ifindex: i32 } and its attributes, one per hop.
                    let mut rest = data;
                    while rest.len() >= 8 {
                        let len = usize::from(u16::from_ne_bytes([rest[0], rest[1]]));
                        if len < 8 || len > rest.len() {
                            break;
                        }
                        let ifindex = raw_u32(&rest[4..8])?;
                        let g = Attrs(&rest[8..len])
                            .find(|(k, _)| *k == RTA_GATEWAY)
                            .and_then(|(_, d)| raw_addr(d));
                        hops.push((g, ifindex));
                        rest = &rest[align4(len).min(rest.len())..];
                    }
                }
                _ => {}
            }
        }
        let dst = match dst {
            Some(d) => d,
            None if family == libc::AF_INET as u8 => IpAddr::from([0u8; 4]),
            None if family == libc::AF_INET6 as u8 => IpAddr::from([0u8; 16]),
            None => return None,
        };
        let prefix = IpNet::new(dst, m[1]).ok()?.trunc();
        if hops.is_empty() && (gw.is_some() || oif != 0) {
            hops.push((gw, oif));
        }
        hops.sort();
        Some(KernelRoute {
            prefix,
            table,
            protocol: m[5],
            metric,
            kind: m[7],
            hops,
            nh_id,
        })
    }
}

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_NH_ID: u16 = 30;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The route attributes (struct rtattr) in a buffer: (type, payload).
struct Attrs<'a>(&'a [u8]);

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let b = self.0;
        if b.len() < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([b[0], b[1]]));
        if len < 4 || len > b.len() {
            self.0 = &[];
            return None;
        }
        // NLA_F_NESTED and NLA_F_NET_BYTEORDER are not part of the type.
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        self.0 = &b[align4(len).min(b.len())..];
        Some((kind, &b[4..len]))
    }
}

fn raw_u32(d: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(d.get(..4)?.try_into().ok()?))
}

fn raw_addr(d: &[u8]) -> Option<IpAddr> {
    match d.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(d).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(d).ok()?)),
        _ => None,
    }
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

const RTN_UNICAST: u8 = 1;

#[derive(Clone, Debug)]
struct Link {
    name: String,
    up: bool,
}

/// What next-hop resolution needs, and nothing else: links (up or not),
/// local addresses and the routes of other protocols in the watched
/// tables. The FIB task keeps the current one inside its [`KernelView`]
/// and hands the RIB immutable snapshots of it
/// ([`crate::fib::FibEvent::Reachability`],
/// [`crate::fib::FibHandle::initial_reachability`]), so nothing is shared
/// between the tasks.
#[derive(Clone, Debug)]
pub struct Reachability {
    table: u32,
    resolve_via_default: bool,
    links: FastMap<u32, Link>,
    /// Local addresses, with the interface they are on.
    addrs: FastSet<(IpAddr, u32)>,
    /// Routes of other protocols in the watched tables, by prefix.
    routes: FastMap<IpNet, Vec<KernelRoute>>,
    /// How many prefixes `routes` holds, by family and length: resolution
    /// looks up only the lengths that have some (a LAN box has a handful).
    lens_v4: [u32; 33],
    lens_v6: [u32; 129],
    /// On-link next hops that stopped answering ARP/ND
    /// ([`crate::fib::liveness`]): nothing resolves through them.
    dead: FastSet<Hop>,
}

impl Reachability {
    /// Nothing known yet: no link, no address, no route; nothing resolves.
    /// `table` is bgpd's (preferred to main when both have a match).
    pub fn new(table: u32, resolve_via_default: bool) -> Self {
        Reachability {
            table,
            resolve_via_default,
            links: FastMap::default(),
            addrs: FastSet::default(),
            routes: FastMap::default(),
            lens_v4: [0; 33],
            lens_v6: [0; 129],
            dead: FastSet::default(),
        }
    }

    /// The networks directly connected to this box: unicast routes without
    /// a gateway that the kernel made for its addresses (proto kernel).
    /// IPv6 link-local and host routes are left out.
    pub fn connected(&self) -> Vec<IpNet> {
        const RTPROT_KERNEL: u8 = 2;
        let mut out: Vec<IpNet> = self
            .routes
            .values()
            .flatten()
            .filter(|r| {
                r.protocol == RTPROT_KERNEL
                    && r.kind == 1
                    && r.hops.iter().all(|(gw, _)| gw.is_none())
                    && r.prefix.prefix_len() < r.prefix.max_prefix_len()
                    && !matches!(r.prefix, IpNet::V6(p) if p.addr().segments()[0] & 0xffc0 == 0xfe80)
            })
            .map(|r| r.prefix)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    fn link_up(&self, idx: u32) -> bool {
        self.links.get(&idx).is_some_and(|l| l.up)
    }

    /// Resolves a BGP next hop to the on-link hops the kernel accepts, or
    /// `None` when it is unreachable. Dead hops (no ARP/ND answer) are left
    /// out.
    pub fn resolve(&self, nh: &NextHop) -> Option<Vec<Hop>> {
        let mut hops = self.resolve_any(nh)?;
        if !self.dead.is_empty() {
            hops.retain(|h| !self.dead.contains(h));
        }
        (!hops.is_empty()).then_some(hops)
    }

    /// The hops a next hop resolves to, dead or alive.
    pub fn resolve_any(&self, nh: &NextHop) -> Option<Vec<Hop>> {
        let addr = nh.addr;
        if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
            return None;
        }
        // One of our own addresses is no gateway.
        if self.addrs.iter().any(|(a, _)| *a == addr) {
            return None;
        }
        if let IpAddr::V6(v6) = addr
            && v6.is_unicast_link_local()
        {
            // A link-local next hop (RFC 2545 section 3) only means
            // something with its interface.
            let idx = nh.ifindex?;
            return self.link_up(idx).then(|| {
                vec![Hop {
                    gateway: addr,
                    ifindex: idx,
                }]
            });
        }
        let lens: &[u32] = if addr.is_ipv4() {
            &self.lens_v4
        } else {
            &self.lens_v6
        };
        for len in (0..lens.len()).rev() {
            if lens[len] == 0 {
                continue;
            }
            let len = len as u8;
            let net = IpNet::new(addr, len).expect("length in range").trunc();
            let Some(list) = self.routes.get(&net) else {
                continue;
            };
            // The kernel's choice: our table before main, lowest metric.
            let Some(best) = list
                .iter()
                .filter(|r| r.table == self.table)
                .min_by_key(|r| r.metric)
                .or_else(|| list.iter().min_by_key(|r| r.metric))
            else {
                continue;
            };
            if len == 0 && !self.resolve_via_default {
                return None;
            }
            if best.kind != RTN_UNICAST {
                return None;
            }
            let mut hops: Vec<Hop> = best
                .hops
                .iter()
                .filter(|(_, i)| self.link_up(*i))
                .map(|(g, i)| Hop {
                    gateway: g.unwrap_or(addr),
                    ifindex: *i,
                })
                .collect();
            hops.sort();
            hops.dedup();
            return (!hops.is_empty()).then_some(hops);
        }
        None
    }
}

impl Resolver for Reachability {
    /// An IPv6 link-local next hop has no interface here; it counts as
    /// reachable when any link is up (the FIB checks the interface the RIB
    /// passes in its [`NextHop`]).
    fn resolves(&self, next_hop: IpAddr) -> bool {
        if let IpAddr::V6(v6) = next_hop
            && v6.is_unicast_link_local()
        {
            return self.links.values().any(|l| l.up);
        }
        self.resolve(&NextHop::new(next_hop)).is_some()
    }
}

/// The FIB task's mirror of the kernel: the [`Reachability`] it keeps
/// current, plus what only the FIB needs (which routes are bgpd's, the
/// other protocols' routes in bgpd's table by length, a change counter).
#[derive(Debug)]
pub struct KernelView {
    protocol: u8,
    reach: Reachability,
    /// How many of the other protocols' routes are in bgpd's table, by
    /// family and prefix length: most lengths have none, so most foreign
    /// checks need no lookup.
    foreign_v4: [u32; 33],
    foreign_v6: [u32; 129],
    /// Bumped on every change that may change a resolution.
    pub generation: u64,
    /// Bumped by the changes the RIB's snapshot shows (not by dead hops,
    /// which are the FIB's alone).
    pub rib_generation: u64,
}

impl KernelView {
    /// A view for bgpd's `protocol` installing into `table`. Resolution
    /// looks at that table and the main table.
    pub fn new(protocol: u8, table: u32, resolve_via_default: bool) -> Self {
        KernelView {
            protocol,
            reach: Reachability::new(table, resolve_via_default),
            foreign_v4: [0; 33],
            foreign_v6: [0; 129],
            generation: 0,
            rib_generation: 0,
        }
    }

    /// A snapshot of what resolution needs, for the RIB. Dead hops are
    /// the FIB's alone: the RIB keeps choosing as if they answered, so the
    /// next hops in use stay the ones to probe (a dead hop the RIB dropped
    /// would no longer be probed and would never come back), and only the
    /// kernel routes leave them.
    pub fn reachability(&self) -> Arc<Reachability> {
        let mut r = self.reach.clone();
        r.dead = FastSet::default();
        Arc::new(r)
    }

    /// See [`Reachability::connected`].
    pub fn connected(&self) -> Vec<IpNet> {
        self.reach.connected()
    }

    /// Forgets everything (before a full resync).
    pub fn clear(&mut self) {
        self.reach.links.clear();
        self.reach.addrs.clear();
        self.reach.routes.clear();
        self.foreign_v4 = [0; 33];
        self.foreign_v6 = [0; 129];
        self.reach.lens_v4 = [0; 33];
        self.reach.lens_v6 = [0; 129];
        self.generation += 1;
        self.rib_generation += 1;
    }

    fn watched(&self, table: u32) -> bool {
        table == self.reach.table || table == 254
    }

    /// Whether a route belongs to bgpd (its protocol in its table).
    pub fn is_ours(&self, r: &KernelRoute) -> bool {
        r.protocol == self.protocol && r.table == self.reach.table
    }

    /// Applies a link notification or dump entry; `deleted` for RTM_DELLINK.
    pub fn link(&mut self, m: &LinkMessage, deleted: bool) -> bool {
        let idx = m.header.index;
        if deleted {
            return self.reach.links.remove(&idx).is_some() && self.bump();
        }
        let name = m
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            })
            .unwrap_or_default();
        // Usable when administratively up and with carrier (IFF_LOWER_UP);
        // a route through a link without carrier is "linkdown" in the
        // kernel and forwards nothing.
        let f = m.header.flags;
        let up = f.contains(LinkFlags::Up) && f.contains(LinkFlags::LowerUp);
        let changed = self.reach.links.get(&idx).is_none_or(|l| l.up != up);
        self.reach.links.insert(idx, Link { name, up });
        if changed {
            self.generation += 1;
            self.rib_generation += 1;
        }
        changed
    }

    /// Applies an address notification or dump entry.
    pub fn address(&mut self, m: &AddressMessage, deleted: bool) -> bool {
        let idx = m.header.index;
        let mut changed = false;
        for a in &m.attributes {
            if let AddressAttribute::Address(ip) | AddressAttribute::Local(ip) = a {
                changed |= if deleted {
                    self.reach.addrs.remove(&(*ip, idx))
                } else {
                    self.reach.addrs.insert((*ip, idx))
                };
            }
        }
        if changed {
            self.generation += 1;
            self.rib_generation += 1;
        }
        changed
    }

    /// Applies a route of another protocol; routes of bgpd's own protocol
    /// and of unwatched tables are ignored. Returns whether it changed.
    pub fn route(&mut self, r: KernelRoute, deleted: bool) -> bool {
        if r.protocol == self.protocol || !self.watched(r.table) {
            return false;
        }
        let held = self.reach.routes.len();
        let list = self.reach.routes.entry(r.prefix).or_default();
        let pos = list
            .iter()
            .position(|x| x.table == r.table && x.metric == r.metric);
        let counted = r.table == self.reach.table;
        let (changed, delta) = match (deleted, pos) {
            (true, Some(i)) => {
                list.remove(i);
                (true, -1)
            }
            (true, None) => (false, 0),
            (false, Some(i)) if list[i] == r => (false, 0),
            (false, Some(i)) => {
                list[i] = r.clone();
                (true, 0)
            }
            (false, None) => {
                list.push(r.clone());
                (true, 1)
            }
        };
        if list.is_empty() {
            self.reach.routes.remove(&r.prefix);
        }
        let len = usize::from(r.prefix.prefix_len());
        let n = match r.prefix {
            IpNet::V4(_) => &mut self.reach.lens_v4[len],
            IpNet::V6(_) => &mut self.reach.lens_v6[len],
        };
        match self.reach.routes.len().cmp(&held) {
            std::cmp::Ordering::Greater => *n += 1,
            std::cmp::Ordering::Less => *n -= 1,
            std::cmp::Ordering::Equal => {}
        }
        if counted && delta != 0 {
            let n = self.foreign_count(&r.prefix);
            *n = n.wrapping_add_signed(delta);
        }
        if changed {
            self.generation += 1;
            self.rib_generation += 1;
        }
        changed
    }

    fn bump(&mut self) -> bool {
        self.generation += 1;
        self.rib_generation += 1;
        true
    }

    /// Interface name, for logs and status.
    /// Whether a link is up (administratively and with carrier).
    pub fn link_is_up(&self, idx: u32) -> bool {
        self.reach.link_up(idx)
    }

    pub fn link_name(&self, idx: u32) -> Option<&str> {
        self.reach.links.get(&idx).map(|l| l.name.as_str())
    }

    fn foreign_count(&mut self, p: &IpNet) -> &mut u32 {
        let len = usize::from(p.prefix_len());
        match p {
            IpNet::V4(_) => &mut self.foreign_v4[len],
            IpNet::V6(_) => &mut self.foreign_v6[len],
        }
    }

    /// Whether bgpd's table may hold a route of another protocol for this
    /// prefix (false means surely not, without a lookup).
    fn may_have_foreign(&self, p: &IpNet) -> bool {
        let len = usize::from(p.prefix_len());
        match p {
            IpNet::V4(_) => self.foreign_v4[len] != 0,
            IpNet::V6(_) => self.foreign_v6[len] != 0,
        }
    }

    /// A route of another protocol with this prefix and metric in bgpd's
    /// table: a replace would overwrite it.
    pub fn foreign_conflict(&self, prefix: &IpNet, metric: u32) -> bool {
        self.may_have_foreign(prefix)
            && self.reach.routes.get(prefix).is_some_and(|v| {
                v.iter()
                    .any(|r| r.table == self.reach.table && r.metric == metric)
            })
    }

    /// Every prefix with a route of another protocol in bgpd's table.
    pub fn foreign_prefixes(&self) -> impl Iterator<Item = IpNet> + '_ {
        self.reach
            .routes
            .iter()
            .filter(|(_, v)| v.iter().any(|r| r.table == self.reach.table))
            .map(|(p, _)| *p)
    }

    /// Routes of other protocols for exactly this prefix in bgpd's table.
    pub fn foreign(&self, prefix: &IpNet) -> Vec<&KernelRoute> {
        if !self.may_have_foreign(prefix) {
            return Vec::new();
        }
        self.reach
            .routes
            .get(prefix)
            .map(|v| v.iter().filter(|r| r.table == self.reach.table).collect())
            .unwrap_or_default()
    }

    /// See [`Reachability::resolve`].
    pub fn resolve(&self, nh: &NextHop) -> Option<Vec<Hop>> {
        self.reach.resolve(nh)
    }

    /// See [`Reachability::resolve_any`].
    pub fn resolve_any(&self, nh: &NextHop) -> Option<Vec<Hop>> {
        self.reach.resolve_any(nh)
    }

    /// Marks an on-link hop dead (or alive again); returns whether that
    /// changed anything.
    pub fn set_dead(&mut self, hop: Hop, dead: bool) -> bool {
        let changed = if dead {
            self.reach.dead.insert(hop)
        } else {
            self.reach.dead.remove(&hop)
        };
        if changed {
            self.generation += 1;
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(p: &str, proto: u8, metric: u32, hops: &[(Option<&str>, u32)]) -> KernelRoute {
        KernelRoute {
            prefix: p.parse().unwrap(),
            table: 254,
            protocol: proto,
            metric,
            kind: RTN_UNICAST,
            hops: hops
                .iter()
                .map(|(g, i)| (g.map(|g| g.parse().unwrap()), *i))
                .collect(),
            nh_id: None,
        }
    }

    fn view() -> KernelView {
        let mut v = KernelView::new(186, 254, false);
        v.reach.links.insert(
            2,
            Link {
                name: "a".into(),
                up: true,
            },
        );
        v.reach.links.insert(
            3,
            Link {
                name: "b".into(),
                up: false,
            },
        );
        v
    }

    fn nh(s: &str) -> NextHop {
        NextHop::new(s.parse().unwrap())
    }

    #[test]
    fn connected_recursive_and_own_routes() {
        let mut v = view();
        assert!(v.route(route("10.0.0.0/24", 2, 0, &[(None, 2)]), false));
        assert!(v.route(route("10.9.0.0/16", 4, 0, &[(Some("10.0.0.2"), 2)]), false));
        // Our own routes never count.
        assert!(!v.route(
            route("10.8.0.0/16", 186, 20, &[(Some("10.0.0.3"), 2)]),
            false
        ));
        let h = |g: &str, i| Hop {
            gateway: g.parse().unwrap(),
            ifindex: i,
        };
        assert_eq!(v.resolve(&nh("10.0.0.7")), Some(vec![h("10.0.0.7", 2)]));
        assert_eq!(v.resolve(&nh("10.9.1.1")), Some(vec![h("10.0.0.2", 2)]));
        assert_eq!(v.resolve(&nh("10.8.1.1")), None);
        // A connected route on a link that is down resolves nothing.
        v.route(route("10.1.0.0/24", 2, 0, &[(None, 3)]), false);
        assert_eq!(v.resolve(&nh("10.1.0.5")), None);
        // No resolution via the default route unless asked for.
        v.route(route("0.0.0.0/0", 4, 0, &[(Some("10.0.0.1"), 2)]), false);
        assert_eq!(v.resolve(&nh("172.16.0.1")), None);
        v.reach.resolve_via_default = true;
        assert_eq!(v.resolve(&nh("172.16.0.1")), Some(vec![h("10.0.0.1", 2)]));
        // Deleting the connected route makes its next hops unreachable.
        assert!(v.route(route("10.0.0.0/24", 2, 0, &[(None, 2)]), true));
        v.reach.resolve_via_default = false;
        assert_eq!(v.resolve(&nh("10.0.0.7")), None);
    }

    #[test]
    fn per_length_counts_follow_the_table() {
        let mut v = view();
        let r0 = route("10.0.0.0/24", 2, 0, &[(None, 2)]);
        let r1 = route("10.0.0.0/24", 4, 100, &[(None, 2)]);
        v.route(r0.clone(), false);
        v.route(r1.clone(), false);
        // A delete of a route that is not there changes nothing.
        v.route(route("10.1.0.0/16", 4, 0, &[(None, 2)]), true);
        assert_eq!((v.reach.lens_v4[24], v.reach.lens_v4[16]), (1, 0));
        v.route(r0, true);
        assert_eq!(v.reach.lens_v4[24], 1);
        assert!(v.resolve(&nh("10.0.0.7")).is_some());
        v.route(r1, true);
        assert_eq!(v.reach.lens_v4[24], 0);
        assert_eq!(v.resolve(&nh("10.0.0.7")), None);
        v.route(route("2001:db8::/64", 2, 0, &[(None, 2)]), false);
        assert_eq!(v.reach.lens_v6[64], 1);
        assert!(v.resolve(&nh("2001:db8::5")).is_some());
        v.clear();
        assert_eq!(v.reach.lens_v6[64], 0);
    }

    #[test]
    fn link_local_needs_interface_and_link_up() {
        let v = view();
        let mut n = nh("fe80::1");
        assert_eq!(v.resolve(&n), None);
        n.ifindex = Some(2);
        assert!(v.resolve(&n).is_some());
        n.ifindex = Some(3);
        assert_eq!(v.resolve(&n), None);
    }

    #[test]
    fn blackhole_hides_and_resolver_trait() {
        let mut v = view();
        v.route(route("10.0.0.0/24", 2, 0, &[(None, 2)]), false);
        let mut bh = route("10.0.0.0/25", 4, 0, &[]);
        bh.kind = 6;
        v.route(bh, false);
        assert_eq!(v.resolve(&nh("10.0.0.5")), None);
        assert!(v.resolve(&nh("10.0.0.200")).is_some());
        let r = v.reachability();
        assert!(r.resolves("10.0.0.200".parse().unwrap()));
        assert!(!r.resolves("10.0.0.5".parse().unwrap()));
    }

    #[test]
    fn a_snapshot_keeps_its_answers_and_the_link_local_rule() {
        let mut v = view();
        v.route(route("10.0.0.0/24", 2, 0, &[(None, 2)]), false);
        let before = v.reachability();
        assert_eq!(
            before.connected(),
            vec!["10.0.0.0/24".parse::<IpNet>().unwrap()]
        );
        // Without an interface, a link-local next hop counts as reachable
        // while some link is up.
        assert!(before.resolves("fe80::1".parse().unwrap()));
        v.route(route("10.0.0.0/24", 2, 0, &[(None, 2)]), true);
        v.reach.links.get_mut(&2).unwrap().up = false;
        let after = v.reachability();
        assert!(!after.resolves("10.0.0.7".parse().unwrap()));
        assert!(!after.resolves("fe80::1".parse().unwrap()));
        assert!(after.connected().is_empty());
        // The earlier snapshot is not shared with the view.
        assert!(before.resolves("10.0.0.7".parse().unwrap()));
        assert_eq!(before.resolve(&nh("10.0.0.7")).map(|h| h.len()), Some(1));
    }
}
