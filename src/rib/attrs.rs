//! Parsed path attributes as the RIB keeps them, interned so that each
//! distinct set is stored once and shared by every route that carries it.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use bytes::Bytes;

use crate::hash::FastSet;
use crate::wire::attrs::reconcile_as4;
use crate::wire::iana::attr;
use crate::wire::{
    Aggregator, AsPath, Attr, Community, ExtCommunity, LargeCommunity, NextHop as WireNextHop,
    Origin, PathAttribute, Update,
};

/// LOCAL_PREF assumed when an iBGP route has none, and the value given to
/// every eBGP route (RFC 4271 §5.1.5: LOCAL_PREF from an external peer is
/// ignored). The common default of Cisco, BIRD and FRR.
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// The attributes the RIB needs of a route. Everything here is taken from
/// one UPDATE, so every NLRI of that UPDATE shares one interned copy.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PathAttrs {
    pub origin: Origin,
    /// AS_PATH, merged with AS4_PATH on 2-octet sessions (RFC 6793 §4.2.3).
    pub as_path: AsPath,
    /// NEXT_HOP, or the global address of MP_REACH_NLRI's next hop.
    pub next_hop: IpAddr,
    /// The link-local address of an IPv6 MP_REACH_NLRI next hop (RFC 2545 §3).
    pub link_local: Option<Ipv6Addr>,
    pub med: Option<u32>,
    /// The effective LOCAL_PREF: as received on iBGP, else
    /// [`DEFAULT_LOCAL_PREF`].
    pub local_pref: u32,
    /// Whether LOCAL_PREF was on the wire (for display).
    pub local_pref_received: bool,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    pub communities: Vec<Community>,
    pub large_communities: Vec<LargeCommunity>,
    pub ext_communities: Vec<ExtCommunity>,
    pub atomic_aggregate: bool,
    /// AGGREGATOR, with a 4-octet AS (merged with AS4_AGGREGATOR on
    /// 2-octet sessions).
    pub aggregator: Option<Aggregator>,
    /// Optional transitive attributes this codec does not interpret, as
    /// (flags, type code, value), passed on to other peers with the
    /// Partial bit (RFC 4271 §5).
    pub unknown_transitive: Vec<(u8, u8, Bytes)>,
}

impl PathAttrs {
    /// A path with nothing but its origin and next hop: every other
    /// attribute absent, LOCAL_PREF the default.
    pub fn bare(origin: Origin, next_hop: IpAddr, link_local: Option<Ipv6Addr>) -> PathAttrs {
        PathAttrs {
            origin,
            as_path: AsPath::default(),
            next_hop,
            link_local,
            med: None,
            local_pref: DEFAULT_LOCAL_PREF,
            local_pref_received: false,
            originator_id: None,
            cluster_list: Vec::new(),
            communities: Vec::new(),
            large_communities: Vec::new(),
            ext_communities: Vec::new(),
            atomic_aggregate: false,
            aggregator: None,
            unknown_transitive: Vec::new(),
        }
    }

    /// Parses the attributes of `update`. `next_hop` is the next hop of
    /// the NLRI at hand (classic NEXT_HOP or MP_REACH_NLRI's); `ibgp` and
    /// `four_octet_as` describe the session.
    pub fn from_update(
        update: &Update,
        next_hop: IpAddr,
        link_local: Option<Ipv6Addr>,
        ibgp: bool,
        four_octet_as: bool,
    ) -> PathAttrs {
        let mut a = PathAttrs::bare(Origin::Incomplete, next_hop, link_local);
        let mut as4_path = None;
        let mut aggregator = None;
        let mut as4_aggregator = None;
        for pa in &update.attributes {
            match &pa.value {
                Attr::Origin(o) => a.origin = *o,
                Attr::AsPath(p) => a.as_path = p.clone(),
                Attr::MultiExitDisc(m) => a.med = Some(*m),
                Attr::LocalPref(l) => {
                    a.local_pref_received = true;
                    // RFC 4271 §5.1.5: ignored when received from an
                    // external peer.
                    if ibgp {
                        a.local_pref = *l;
                    }
                }
                Attr::AtomicAggregate => a.atomic_aggregate = true,
                Attr::OriginatorId(id) => a.originator_id = Some(*id),
                Attr::ClusterList(c) => a.cluster_list = c.clone(),
                Attr::Communities(c) => a.communities = c.clone(),
                Attr::LargeCommunity(c) => a.large_communities = c.clone(),
                Attr::ExtendedCommunities(c) => a.ext_communities = c.clone(),
                Attr::Unknown { code, data } if pa.flags & attr::FLAG_TRANSITIVE != 0 => {
                    let flags = pa.for_propagation().flags;
                    a.unknown_transitive.push((flags, *code, data.clone()))
                }
                Attr::As4Path(p) => as4_path = Some(p),
                Attr::Aggregator(g) => aggregator = Some(g),
                Attr::As4Aggregator(g) => as4_aggregator = Some(g),
                _ => {}
            }
        }
        // RFC 6793 §4.2.3: on a session without the 4-octet AS capability
        // the real path is AS_PATH merged with AS4_PATH; on a 4-octet
        // session AS4_PATH is ignored.
        a.aggregator = aggregator.copied();
        if !four_octet_as && (as4_path.is_some() || as4_aggregator.is_some()) {
            (a.as_path, a.aggregator) =
                reconcile_as4(&a.as_path, as4_path, aggregator, as4_aggregator);
        }
        a
    }

    /// The next hop of a classic (IPv4) NLRI.
    pub fn classic_next_hop(update: &Update) -> Option<IpAddr> {
        update.attributes.iter().find_map(|a| match a.value {
            Attr::NextHop(n) => Some(IpAddr::V4(n)),
            _ => None,
        })
    }

    /// The global and link-local next hop of MP_REACH_NLRI.
    pub fn mp_next_hop(nh: &WireNextHop) -> Option<(IpAddr, Option<Ipv6Addr>)> {
        match nh {
            WireNextHop::V4(a) => Some((IpAddr::V4(*a), None)),
            WireNextHop::V6 { global, link_local } => Some((IpAddr::V6(*global), *link_local)),
            WireNextHop::Raw(_) => None,
        }
    }

    /// The attributes as sent to a peer, sorted by type code, without
    /// NEXT_HOP and MP_REACH_NLRI (the packer adds them), and the next hop
    /// on the wire. LOCAL_PREF goes to iBGP peers only. On a session
    /// without the 4-octet AS capability, AS_PATH carries AS_TRANS for
    /// the large numbers and AS4_PATH (and AS4_AGGREGATOR) the real ones
    /// (RFC 6793 §4.2.2).
    pub fn to_wire(&self, ibgp: bool, four_octet_as: bool) -> (Vec<PathAttribute>, WireNextHop) {
        let mut v = vec![
            PathAttribute::new(Attr::Origin(self.origin)),
            PathAttribute::new(Attr::AsPath(self.as_path.clone())),
        ];
        if let Some(m) = self.med {
            v.push(PathAttribute::new(Attr::MultiExitDisc(m)));
        }
        if ibgp {
            v.push(PathAttribute::new(Attr::LocalPref(self.local_pref)));
        }
        if self.atomic_aggregate {
            v.push(PathAttribute::new(Attr::AtomicAggregate));
        }
        if let Some(g) = self.aggregator {
            v.push(PathAttribute::new(Attr::Aggregator(g)));
        }
        if !self.communities.is_empty() {
            v.push(PathAttribute::new(Attr::Communities(
                self.communities.clone(),
            )));
        }
        if let Some(o) = self.originator_id {
            v.push(PathAttribute::new(Attr::OriginatorId(o)));
        }
        if !self.cluster_list.is_empty() {
            v.push(PathAttribute::new(Attr::ClusterList(
                self.cluster_list.clone(),
            )));
        }
        if !self.ext_communities.is_empty() {
            v.push(PathAttribute::new(Attr::ExtendedCommunities(
                self.ext_communities.clone(),
            )));
        }
        let wide = |a: u32| a > u16::MAX as u32;
        if !four_octet_as {
            if self
                .as_path
                .segments
                .iter()
                .flat_map(|s| &s.asns)
                .any(|a| wide(*a))
            {
                v.push(PathAttribute::new(Attr::As4Path(self.as_path.clone())));
            }
            if let Some(g) = self.aggregator.filter(|g| wide(g.asn)) {
                v.push(PathAttribute::new(Attr::As4Aggregator(g)));
            }
        }
        if !self.large_communities.is_empty() {
            v.push(PathAttribute::new(Attr::LargeCommunity(
                self.large_communities.clone(),
            )));
        }
        for (flags, code, data) in &self.unknown_transitive {
            v.push(PathAttribute {
                flags: *flags,
                value: Attr::Unknown {
                    code: *code,
                    data: data.clone(),
                },
            });
        }
        let nh = match self.next_hop {
            IpAddr::V4(a) => WireNextHop::V4(a),
            IpAddr::V6(g) => WireNextHop::V6 {
                global: g,
                link_local: None,
            },
        };
        (v, nh)
    }

    /// The AS path length for the decision (RFC 4271 §9.1.2.2 a).
    pub fn as_path_len(&self) -> usize {
        self.as_path.path_len()
    }
}

impl fmt::Display for PathAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "next-hop {}", self.next_hop)?;
        if let Some(ll) = self.link_local {
            write!(f, " ({ll})")?;
        }
        write!(
            f,
            " as-path {} origin {} local-pref {}",
            self.as_path, self.origin, self.local_pref
        )?;
        if let Some(m) = self.med {
            write!(f, " med {m}")?;
        }
        if let Some(o) = self.originator_id {
            write!(f, " originator {o}")?;
        }
        if !self.cluster_list.is_empty() {
            f.write_str(" cluster-list")?;
            for c in &self.cluster_list {
                write!(f, " {c}")?;
            }
        }
        if !self.communities.is_empty() {
            f.write_str(" communities")?;
            for c in &self.communities {
                write!(f, " {c}")?;
            }
        }
        if !self.large_communities.is_empty() {
            f.write_str(" large-communities")?;
            for c in &self.large_communities {
                write!(f, " {c}")?;
            }
        }
        Ok(())
    }
}

/// The set of distinct attribute sets in use. An entry whose only owner
/// is the interner is dropped by [`Interner::collect`].
#[derive(Default)]
pub struct Interner {
    set: FastSet<Arc<PathAttrs>>,
    /// Set size after the last collection, to collect only when the set
    /// has doubled.
    live_after_gc: usize,
}

impl Interner {
    pub fn intern(&mut self, attrs: PathAttrs) -> Arc<PathAttrs> {
        if let Some(a) = self.set.get(&attrs) {
            return a.clone();
        }
        if self.set.len() >= 2 * self.live_after_gc.max(1024) {
            self.collect();
        }
        let a = Arc::new(attrs);
        self.set.insert(a.clone());
        a
    }

    /// Drops attribute sets that no route uses any more.
    pub fn collect(&mut self) {
        self.set.retain(|a| Arc::strong_count(a) > 1);
        self.live_after_gc = self.set.len();
    }

    /// Distinct attribute sets held (including unused ones not yet collected).
    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}
