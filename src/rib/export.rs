//! Export, sans-IO: what one peer is sent for a prefix, given the Loc-RIB's
//! best path, where it came from, and the peer's export policy.
//!
//! The rules (RFC 4271 §9.2, RFC 4456 §8):
//! - a route is never sent back to the peer it came from;
//! - a route learned over iBGP goes to iBGP peers only through route
//!   reflection: from a client to every other iBGP peer, from a non-client
//!   to the clients; the reflector sets ORIGINATOR_ID (the originator's BGP
//!   identifier, if not set yet) and prepends its CLUSTER_ID to
//!   CLUSTER_LIST;
//! - towards eBGP: our AS is prepended, the next hop is ourselves,
//!   LOCAL_PREF, MED (RFC 4271 §5.1.4), ORIGINATOR_ID and CLUSTER_LIST are
//!   not sent, and nothing goes without an export policy (RFC 8212);
//! - towards iBGP: LOCAL_PREF is sent, the next hop is kept unless the
//!   peer has `next_hop_self` (routes this router originates carry its own
//!   address).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipnet::IpNet;
use serde::Serialize;

use super::attrs::{DEFAULT_LOCAL_PREF, PathAttrs};
use super::policy::PrefixMatch;
use crate::wire::{AsPath, AsSegment, Community, LargeCommunity, Origin, SegmentType};

/// What to change in a route that passes an export (or import) policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Actions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_pref: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub med: Option<u32>,
    /// Our AS this many more times at the front of the AS path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prepend: Option<u8>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "crate::wire::ser::display_vec"
    )]
    pub add_communities: Vec<Community>,
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "crate::wire::ser::display_vec"
    )]
    pub add_large_communities: Vec<LargeCommunity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_hop: Option<NextHopAction>,
}

/// `next_hop = "self"` or an address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum NextHopAction {
    #[serde(serialize_with = "ser_self")]
    Myself,
    Address(IpAddr),
}

fn ser_self<S: serde::Serializer>(s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("self")
}

/// An export policy: which routes a peer is sent, and how they change.
/// Evaluation, for a prefix: a `deny` entry matches: not sent; `allow` is
/// not empty and no entry matches: not sent; `communities` is not empty
/// and the route carries none of them: not sent; else sent, with
/// `set` applied.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExportPolicy {
    pub allow: Vec<PrefixMatch>,
    pub deny: Vec<PrefixMatch>,
    /// The route must carry one of these (RFC 1997) to be sent.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "crate::wire::ser::display_vec"
    )]
    pub communities: Vec<Community>,
    /// Large communities (RFC 8092), likewise.
    #[serde(
        skip_serializing_if = "Vec::is_empty",
        serialize_with = "crate::wire::ser::display_vec"
    )]
    pub large_communities: Vec<LargeCommunity>,
    #[serde(skip_serializing_if = "is_default")]
    pub set: Actions,
}

fn is_default(a: &Actions) -> bool {
    *a == Actions::default()
}

impl ExportPolicy {
    /// Whether the route passes.
    pub fn permits(&self, prefix: &IpNet, a: &PathAttrs) -> bool {
        if self.deny.iter().any(|m| m.matches(prefix)) {
            return false;
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|m| m.matches(prefix)) {
            return false;
        }
        let c = self.communities.is_empty()
            || self.communities.iter().any(|c| a.communities.contains(c));
        let l = self.large_communities.is_empty()
            || self
                .large_communities
                .iter()
                .any(|c| a.large_communities.contains(c));
        c && l
    }
}

/// This router, as export needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Local {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    /// RFC 4456 §7: the router id unless configured.
    pub cluster_id: Ipv4Addr,
}

/// Where the best path came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A peer, with its BGP identifier, and whether it is iBGP and a
    /// route-reflector client of ours.
    Peer {
        addr: IpAddr,
        ibgp: bool,
        rr_client: bool,
        router_id: Ipv4Addr,
    },
    /// This router (`[[network]]`, a default route originated).
    Local,
}

/// A peer routes are sent to.
#[derive(Clone, Debug)]
pub struct OutPeer {
    pub addr: IpAddr,
    pub ibgp: bool,
    pub rr_client: bool,
    pub next_hop_self: bool,
    /// The session's own addresses, the next hop when it is ourselves.
    pub local_v4: Option<Ipv4Addr>,
    pub local_v6: Option<Ipv6Addr>,
    /// `None`: everything the rules allow to iBGP peers; nothing to eBGP
    /// peers (RFC 8212).
    pub policy: Option<Arc<ExportPolicy>>,
    /// The peer advertised long-lived graceful restart: it may be sent
    /// routes with LLGR_STALE (RFC 9494 §4.5).
    pub llgr: bool,
}

impl OutPeer {
    /// Our address for a next hop of the IPv4 (`v4`) or IPv6 family, if
    /// the session has one.
    fn own_hop(&self, v4: bool) -> Option<IpAddr> {
        if v4 {
            self.local_v4.map(IpAddr::V4)
        } else {
            self.local_v6.map(IpAddr::V6)
        }
    }
}

/// The attributes a route this router originates starts with.
pub fn originated(next_hop: IpAddr) -> PathAttrs {
    PathAttrs::bare(Origin::Igp, next_hop, None)
}

/// What `to` is sent for `prefix` whose best path has `attrs` and came
/// from `src`: the attributes on the wire, or `None` when it is not sent
/// (then a route sent before is withdrawn).
pub fn route(
    local: &Local,
    to: &OutPeer,
    prefix: &IpNet,
    attrs: &PathAttrs,
    src: &Source,
) -> Option<PathAttrs> {
    if !permitted(to, prefix, attrs, src) {
        return None;
    }
    rewrite(local, to, prefix.addr().is_ipv4(), attrs, src)
}

/// Whether the iBGP rules (RFC 4456 §8) reflect a route from `src` to
/// `to`; `None`: it is not sent at all.
fn reflects(to: &OutPeer, src: &Source) -> Option<bool> {
    match src {
        Source::Peer {
            addr,
            ibgp,
            rr_client,
            ..
        } => {
            if *addr == to.addr {
                return None;
            }
            if *ibgp && to.ibgp {
                // RFC 4456 §8: client routes go to every iBGP peer,
                // non-client routes to clients only.
                if !rr_client && !to.rr_client {
                    return None;
                }
                return Some(true);
            }
            Some(false)
        }
        Source::Local => Some(false),
    }
}

/// Whether `to` may be sent `prefix` with `attrs` from `src` at all: the
/// propagation rules, the well-known communities and the export policy's
/// match. The only part of export that depends on the prefix itself
/// (beyond its family), so that [`rewrite`]'s result can be shared by
/// every prefix with the same attributes.
pub fn permitted(to: &OutPeer, prefix: &IpNet, attrs: &PathAttrs, src: &Source) -> bool {
    if reflects(to, src).is_none() {
        return false;
    }
    if !to.ibgp && to.policy.is_none() {
        return false; // RFC 8212: no export policy, no routes to eBGP.
    }
    // RFC 1997: the well-known communities that limit propagation.
    if attrs.communities.contains(&Community::NO_ADVERTISE)
        || (!to.ibgp && attrs.communities.contains(&Community::NO_EXPORT))
    {
        return false;
    }
    // RFC 9494 §4.5: a long-lived stale route goes only to a peer that
    // advertised LLGR (for the others it is withdrawn), and with its
    // LLGR_STALE community.
    if !to.llgr && attrs.communities.contains(&Community::LLGR_STALE) {
        return false;
    }
    to.policy.as_ref().is_none_or(|p| p.permits(prefix, attrs))
}

/// The attributes `to` is sent for a permitted route of the IPv4 (`v4`)
/// or IPv6 family; `None` when the session has no address of that family
/// for a next hop of ourselves.
pub fn rewrite(
    local: &Local,
    to: &OutPeer,
    v4: bool,
    attrs: &PathAttrs,
    src: &Source,
) -> Option<PathAttrs> {
    let reflect = reflects(to, src)?;
    let mut a = attrs.clone();
    let local_route = matches!(src, Source::Local);
    if to.ibgp {
        if reflect {
            // RFC 4456 §8.
            if a.originator_id.is_none()
                && let Source::Peer { router_id, .. } = src
            {
                a.originator_id = Some(*router_id);
            }
            a.cluster_list.insert(0, local.cluster_id);
        }
        if to.next_hop_self || local_route {
            a.next_hop = to.own_hop(v4)?;
            a.link_local = None;
        }
    } else {
        // RFC 4271 §5.1.2, §5.1.3, §5.1.4, §5.1.5.
        prepend(&mut a.as_path, local.asn, 1);
        a.next_hop = to.own_hop(v4)?;
        a.link_local = None;
        a.med = None;
        a.originator_id = None;
        a.cluster_list.clear();
        a.local_pref = DEFAULT_LOCAL_PREF;
    }
    if let Some(p) = &to.policy {
        let s = &p.set;
        if let Some(lp) = s.local_pref {
            a.local_pref = lp;
        }
        if let Some(m) = s.med {
            a.med = Some(m);
        }
        if let Some(n) = s.prepend {
            prepend(&mut a.as_path, local.asn, n as usize);
        }
        for c in &s.add_communities {
            if !a.communities.contains(c) {
                a.communities.push(*c);
            }
        }
        for c in &s.add_large_communities {
            if !a.large_communities.contains(c) {
                a.large_communities.push(*c);
            }
        }
        match s.next_hop {
            Some(NextHopAction::Myself) => {
                a.next_hop = to.own_hop(v4)?;
                a.link_local = None;
            }
            Some(NextHopAction::Address(h)) if h.is_ipv4() == v4 => {
                a.next_hop = h;
                a.link_local = None;
            }
            _ => {}
        }
    }
    Some(a)
}

/// Puts `asn` `n` times at the front of the path (RFC 4271 §5.1.2).
fn prepend(p: &mut AsPath, asn: u32, n: usize) {
    match p.segments.first_mut() {
        Some(s) if s.kind == SegmentType::Sequence && s.asns.len() + n <= 255 => {
            s.asns.splice(0..0, std::iter::repeat_n(asn, n));
        }
        _ => p.segments.insert(
            0,
            AsSegment {
                kind: SegmentType::Sequence,
                asns: vec![asn; n],
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCAL: Local = Local {
        asn: 64512,
        router_id: Ipv4Addr::new(192, 168, 83, 1),
        cluster_id: Ipv4Addr::new(224, 0, 0, 1),
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn peer(addr: &str, ibgp: bool, rr_client: bool) -> OutPeer {
        OutPeer {
            addr: ip(addr),
            ibgp,
            rr_client,
            next_hop_self: false,
            local_v4: Some(Ipv4Addr::new(192, 168, 83, 1)),
            local_v6: None,
            policy: None,
            llgr: false,
        }
    }

    fn from(addr: &str, ibgp: bool, rr_client: bool) -> Source {
        Source::Peer {
            addr: ip(addr),
            ibgp,
            rr_client,
            router_id: match ip(addr) {
                IpAddr::V4(a) => a,
                IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            },
        }
    }

    fn learned() -> PathAttrs {
        let mut a = originated(ip("192.168.83.21"));
        a.local_pref = 200;
        a.med = Some(5);
        a
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    /// RFC 4456 §8's table, and split horizon.
    #[test]
    fn reflection_rules() {
        let p = net("172.15.190.0/26");
        let a = learned();
        let client = peer("192.168.83.21", true, true);
        let other_client = peer("192.168.83.22", true, true);
        let non_client = peer("192.168.83.36", true, false);
        let ebgp = OutPeer {
            policy: Some(Arc::new(ExportPolicy::default())),
            ..peer("10.0.0.2", false, false)
        };
        let sent = |to: &OutPeer, src: &Source| route(&LOCAL, to, &p, &a, src);
        // From a client: to the other clients and the non-clients.
        let c = from("192.168.83.21", true, true);
        assert!(sent(&client, &c).is_none(), "not back to its sender");
        let r = sent(&other_client, &c).unwrap();
        assert_eq!(r.originator_id, Some(Ipv4Addr::new(192, 168, 83, 21)));
        assert_eq!(r.cluster_list, [LOCAL.cluster_id]);
        assert_eq!(r.local_pref, 200);
        assert_eq!(r.next_hop, ip("192.168.83.21"), "iBGP keeps the next hop");
        assert!(sent(&non_client, &c).is_some());
        // From a non-client: to clients only.
        let n = from("192.168.83.36", true, false);
        assert!(sent(&client, &n).is_some());
        assert!(sent(&peer("192.168.83.49", true, false), &n).is_none());
        // An existing ORIGINATOR_ID stays; the cluster goes in front.
        let mut reflected = a.clone();
        reflected.originator_id = Some(Ipv4Addr::new(10, 9, 9, 9));
        reflected.cluster_list = vec![Ipv4Addr::new(1, 1, 1, 1)];
        let r = route(&LOCAL, &client, &p, &reflected, &n).unwrap();
        assert_eq!(r.originator_id, Some(Ipv4Addr::new(10, 9, 9, 9)));
        assert_eq!(
            r.cluster_list,
            [LOCAL.cluster_id, Ipv4Addr::new(1, 1, 1, 1)]
        );
        // iBGP-learned to eBGP: yes, as an eBGP route.
        let r = sent(&ebgp, &n).unwrap();
        assert_eq!(r.as_path.to_string(), "64512");
        assert_eq!(r.next_hop, ip("192.168.83.1"));
        assert_eq!((r.med, r.originator_id), (None, None));
        assert!(r.cluster_list.is_empty());
        assert_eq!(r.local_pref, DEFAULT_LOCAL_PREF);
    }

    /// RFC 8212: an eBGP peer without an export policy gets nothing.
    #[test]
    fn ebgp_without_policy_gets_nothing() {
        let to = peer("10.0.0.2", false, false);
        let p = net("192.168.82.0/24");
        let a = originated(ip("192.168.83.1"));
        assert!(route(&LOCAL, &to, &p, &a, &Source::Local).is_none());
        assert!(
            route(
                &LOCAL,
                &to,
                &p,
                &learned(),
                &from("192.168.83.36", true, false)
            )
            .is_none()
        );
    }

    /// RFC 1997: NO_ADVERTISE goes nowhere, NO_EXPORT not to eBGP.
    #[test]
    fn well_known_communities_limit_propagation() {
        let p = net("172.15.190.0/26");
        let ibgp = peer("192.168.83.36", true, true);
        let ebgp = OutPeer {
            policy: Some(Arc::new(ExportPolicy::default())),
            ..peer("10.0.0.2", false, false)
        };
        let src = from("192.168.83.21", true, true);
        let mut a = learned();
        a.communities = vec![Community::NO_EXPORT];
        assert!(route(&LOCAL, &ibgp, &p, &a, &src).is_some());
        assert!(route(&LOCAL, &ebgp, &p, &a, &src).is_none());
        a.communities = vec![Community::NO_ADVERTISE];
        assert!(route(&LOCAL, &ibgp, &p, &a, &src).is_none());
        // RFC 9494 §4.5: LLGR_STALE only to a peer that advertised LLGR,
        // and with the community.
        a.communities = vec![Community::LLGR_STALE];
        assert!(route(&LOCAL, &ibgp, &p, &a, &src).is_none());
        let llgr = OutPeer {
            llgr: true,
            ..ibgp.clone()
        };
        let sent = route(&LOCAL, &llgr, &p, &a, &src).expect("sent to an LLGR peer");
        assert_eq!(sent.communities, vec![Community::LLGR_STALE]);
    }

    #[test]
    fn next_hop_self_and_local_routes() {
        let p = net("172.15.190.0/26");
        let mut to = peer("192.168.83.36", true, false);
        let eb = from("10.0.0.2", false, false);
        let r = route(&LOCAL, &to, &p, &learned(), &eb).unwrap();
        assert_eq!(
            r.next_hop,
            ip("192.168.83.21"),
            "eBGP-learned to iBGP: kept"
        );
        to.next_hop_self = true;
        let r = route(&LOCAL, &to, &p, &learned(), &eb).unwrap();
        assert_eq!(r.next_hop, ip("192.168.83.1"));
        // A local route carries our own address; an IPv6 prefix over a
        // session without an IPv6 address is not sent.
        to.next_hop_self = false;
        let r = route(&LOCAL, &to, &p, &originated(ip("0.0.0.0")), &Source::Local).unwrap();
        assert_eq!(r.next_hop, ip("192.168.83.1"));
        let v6 = net("2001:db8:82::/64");
        assert!(route(&LOCAL, &to, &v6, &originated(ip("::")), &Source::Local).is_none());
    }

    /// A policy is shown to filter and to set.
    #[test]
    fn export_policy_filters_and_sets() {
        let policy = ExportPolicy {
            allow: vec![PrefixMatch::exact(net("192.168.80.0/21")).le(24)],
            deny: vec![PrefixMatch::exact(net("192.168.83.0/24"))],
            communities: vec![],
            large_communities: vec![],
            set: Actions {
                local_pref: Some(300),
                med: Some(50),
                prepend: Some(2),
                add_communities: vec![Community(64512 << 16 | 100)],
                add_large_communities: vec![],
                next_hop: Some(NextHopAction::Address(ip("192.168.83.254"))),
            },
        };
        let to = OutPeer {
            policy: Some(Arc::new(policy.clone())),
            ..peer("10.0.0.2", false, false)
        };
        let src = Source::Local;
        let a = originated(ip("0.0.0.0"));
        assert!(
            route(&LOCAL, &to, &net("192.168.83.0/24"), &a, &src).is_none(),
            "denied"
        );
        assert!(
            route(&LOCAL, &to, &net("172.16.0.0/16"), &a, &src).is_none(),
            "not allowed"
        );
        let r = route(&LOCAL, &to, &net("192.168.82.0/24"), &a, &src).unwrap();
        assert_eq!(r.as_path.to_string(), "64512 64512 64512");
        assert_eq!(r.med, Some(50));
        assert_eq!(r.communities, [Community(64512 << 16 | 100)]);
        assert_eq!(r.next_hop, ip("192.168.83.254"));
        // Community match: the route must carry one.
        let to = OutPeer {
            policy: Some(Arc::new(ExportPolicy {
                communities: vec![Community(64512 << 16 | 7)],
                ..policy
            })),
            ..to
        };
        assert!(route(&LOCAL, &to, &net("192.168.82.0/24"), &a, &src).is_none());
        let mut tagged = a.clone();
        tagged.communities.push(Community(64512 << 16 | 7));
        assert!(route(&LOCAL, &to, &net("192.168.82.0/24"), &tagged, &src).is_some());
    }

    /// What is sent decodes, on the peer's side, to the attributes meant:
    /// on a 4-octet session and on a 2-octet one (AS4_PATH), with
    /// communities, an unknown transitive attribute (Partial) and IPv6.
    #[test]
    fn what_is_sent_decodes_to_what_was_meant() {
        use crate::wire::iana::attr;
        use crate::wire::{Attr, Ctx, Message, Nlri, pack};
        let mut a = learned();
        a.local_pref_received = true;
        a.as_path = AsPath::sequence(vec![64512, 4_200_000_000, 65001]);
        a.communities = vec![Community(64512 << 16 | 7)];
        a.large_communities = vec![LargeCommunity {
            global: 4_200_000_000,
            local1: 1,
            local2: 2,
        }];
        a.originator_id = Some(Ipv4Addr::new(10, 0, 0, 9));
        a.cluster_list = vec![Ipv4Addr::new(224, 0, 0, 1)];
        a.unknown_transitive = vec![(
            attr::FLAG_OPTIONAL | attr::FLAG_TRANSITIVE | attr::FLAG_PARTIAL,
            99,
            bytes::Bytes::from_static(b"xyz"),
        )];
        for four in [true, false] {
            for (prefix, nh) in [
                ("172.15.190.0/26", ip("192.168.83.21")),
                ("2001:db8:82::/64", ip("2001:db8::21")),
            ] {
                let mut a = a.clone();
                a.next_hop = nh;
                let ctx = Ctx {
                    four_octet_as: four,
                    ..Ctx::default()
                };
                let (wire, hop) = a.to_wire(true, four);
                let mut msgs = vec![];
                let nlri = [Nlri::new(net(prefix))];
                pack::announce(&ctx, &wire, &hop, &nlri, &mut msgs).unwrap();
                let Message::Update(u): Message = Message::decode(&ctx, &msgs[0]).unwrap() else {
                    panic!()
                };
                assert!(u.errors.is_empty(), "{:?}", u.errors);
                assert_eq!(u.announced().copied().collect::<Vec<_>>(), nlri);
                let nh = match u.mp_reach() {
                    Some(m) => PathAttrs::mp_next_hop(&m.next_hop).unwrap().0,
                    None => PathAttrs::classic_next_hop(&u).unwrap(),
                };
                let back = PathAttrs::from_update(&u, nh, None, true, four);
                assert_eq!(back, a, "four-octet {four}, {prefix}");
                let has_as4 = u
                    .attributes
                    .iter()
                    .any(|x| matches!(x.value, Attr::As4Path(_)));
                assert_eq!(has_as4, !four);
            }
        }
    }
}
