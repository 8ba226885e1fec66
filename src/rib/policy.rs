//! Import policy that protects the LAN: prefix allow-lists with ge/le,
//! global or per peer, and defaults that refuse the default route,
//! martians and anything that equals or covers a connected network.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::Serialize;

use crate::hash::FastMap;

/// A prefix-list entry: `prefix [ge G] [le L]`, as in Cisco's and FRR's
/// prefix lists and BIRD's `prefix{G,L}`. Without ge/le it matches
/// `prefix` exactly; with them, any prefix inside `prefix` whose length is
/// within `ge..=le`, where `ge` defaults to the entry's length and `le` to
/// the family's maximum.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PrefixMatch {
    pub prefix: IpNet,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ge: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub le: Option<u8>,
}

impl PrefixMatch {
    /// Matches `prefix` (its network) exactly.
    pub fn exact(prefix: IpNet) -> Self {
        PrefixMatch {
            prefix: prefix.trunc(),
            ge: None,
            le: None,
        }
    }

    pub fn ge(mut self, ge: u8) -> Self {
        self.ge = Some(ge);
        self
    }

    pub fn le(mut self, le: u8) -> Self {
        self.le = Some(le);
        self
    }

    /// Whether the entry names prefixes exactly (no ge/le): such an allow
    /// entry overrides the protective defaults.
    pub fn is_exact(&self) -> bool {
        self.ge.is_none() && self.le.is_none()
    }

    #[inline]
    pub fn matches(&self, p: &IpNet) -> bool {
        if !covers(&self.prefix, p) {
            return false;
        }
        let len = p.prefix_len();
        let base = self.prefix.prefix_len();
        let (lo, hi) = match (self.ge, self.le) {
            (None, None) => (base, base),
            (Some(g), None) => (g, p.max_prefix_len()),
            (None, Some(l)) => (base, l),
            (Some(g), Some(l)) => (g, l),
        };
        (lo..=hi).contains(&len)
    }
}

impl fmt::Display for PrefixMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.prefix)?;
        if let Some(g) = self.ge {
            write!(f, " ge {g}")?;
        }
        if let Some(l) = self.le {
            write!(f, " le {l}")?;
        }
        Ok(())
    }
}

/// An import policy (the config's `[import]`, global or per peer): the
/// deny-list, the allow-list, and the switches that lift the protective
/// defaults (which reject the default route, martians, and prefixes equal
/// to or covering a connected network). Evaluation, for a prefix:
/// 1. a `deny` entry matches: rejected;
/// 2. `allow` is not empty: the first matching entry decides; an exact
///    one accepts outright (overriding the defaults), a ranged one goes on
///    to the defaults; no match rejects (it is an allow-list);
/// 3. the defaults: the default route unless `allow_default_route` (when
///    allowed, it is not held against the connected networks it covers),
///    martians always, prefixes equal to or covering a connected network
///    unless `allow_connected`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportPolicy {
    /// Empty: everything the defaults let through is accepted.
    pub allow: Vec<PrefixMatch>,
    /// Checked before `allow`.
    pub deny: Vec<PrefixMatch>,
    pub allow_default_route: bool,
    pub allow_connected: bool,
}

/// A per-peer max-prefix limit, counted over accepted paths of all
/// families (Cisco `neighbor X maximum-prefix L W restart R`, BIRD
/// `import limit L action restart`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MaxPrefix {
    pub limit: u32,
    /// Warn when the count reaches this percentage of the limit.
    pub warning_percent: u8,
    /// When the session that went over the limit may come back; `None`:
    /// it stays down until a reload or a reset. The RIB does not use it:
    /// the controller does, when it closes the session.
    #[serde(
        serialize_with = "crate::units::ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub restart_after: Option<Duration>,
}

/// What one peer (configured, or dynamic through its range) has of its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerPolicy {
    /// Replaces the global import policy for this peer when set (nothing
    /// is merged).
    pub import: Option<ImportPolicy>,
    pub max_prefix: Option<MaxPrefix>,
}

/// The RIB's import policy: the global one, per-peer overrides, and the
/// martian check (always on outside tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub import: ImportPolicy,
    pub peers: FastMap<IpAddr, PeerPolicy>,
    pub reject_martians: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            import: ImportPolicy::default(),
            peers: FastMap::default(),
            reject_martians: true,
        }
    }
}

/// Why a route is not used. Stored per path in one octet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Reject {
    /// 0.0.0.0/0 or ::/0.
    DefaultRoute = 1,
    /// A martian prefix (see [`martian`]).
    Martian,
    /// The prefix equals or covers a network connected to this box.
    Connected,
    /// A Deny rule matched.
    DeniedByRule,
    /// The allow-list has no rule for it.
    NotAllowed,
    /// Our AS is in the AS path (RFC 4271 §9.1.2).
    AsLoop,
    /// ORIGINATOR_ID is our router id (RFC 4456 §8).
    OriginatorIsUs,
    /// CLUSTER_LIST holds our cluster id (RFC 4456 §8).
    ClusterLoop,
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reject::DefaultRoute => "default route",
            Reject::Martian => "martian prefix",
            Reject::Connected => "equals or covers a connected network",
            Reject::DeniedByRule => "denied by a rule",
            Reject::NotAllowed => "not in the allow-list",
            Reject::AsLoop => "own AS in AS_PATH",
            Reject::OriginatorIsUs => "ORIGINATOR_ID is our router id",
            Reject::ClusterLoop => "CLUSTER_LIST holds our cluster id",
        })
    }
}

/// Martian prefixes: never routable on the LAN. A prefix is martian if
/// it lies inside one of these RFC 6890 special-purpose blocks that can
/// never be forwarded: 0/8 ("this network", RFC 1122 §3.2.1.3), 127/8
/// (loopback), 169.254/16 (link local, RFC 3927), 224/4 (multicast, RFC
/// 5771), 240/4 (reserved, RFC 1112 §4), 255.255.255.255/32; ::/128, ::1/128,
/// ::ffff:0:0/96 (RFC 4291 §2.5.5.2), fe80::/10, ff00::/8.
#[inline]
pub fn martian(p: &IpNet) -> bool {
    const V6: [([u16; 8], u8); 5] = [
        ([0, 0, 0, 0, 0, 0, 0, 0], 128),     // unspecified
        ([0, 0, 0, 0, 0, 0, 0, 1], 128),     // loopback
        ([0, 0, 0, 0, 0, 0xffff, 0, 0], 96), // IPv4-mapped, RFC 4291 §2.5.5.2
        ([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), // link local
        ([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),  // multicast
    ];
    match p {
        IpNet::V4(p) => {
            // By first octet (this runs per prefix): 224/4 and 240/4 hold
            // 255.255.255.255/32. A test checks it against the list.
            let a = u32::from(p.network());
            let len = p.prefix_len();
            match a >> 24 {
                0 | 127 => len >= 8,
                169 => len >= 16 && (a >> 16) & 0xff == 254,
                224..=255 => len >= 4,
                _ => false,
            }
        }
        IpNet::V6(p) => V6.iter().any(|&(a, l)| {
            let a: u128 = a.iter().fold(0, |acc, w| acc << 16 | *w as u128);
            covers6(a, l, p)
        }),
    }
}

/// Whether `net/len` holds `p` (integer arithmetic; this runs per prefix).
#[inline]
fn covers4(net: u32, len: u8, p: &Ipv4Net) -> bool {
    p.prefix_len() >= len
        && (u32::from(p.network()) ^ net)
            .checked_shr(32 - len as u32)
            .unwrap_or(0)
            == 0
}

fn covers6(net: u128, len: u8, p: &Ipv6Net) -> bool {
    p.prefix_len() >= len
        && (u128::from(p.network()) ^ net)
            .checked_shr(128 - len as u32)
            .unwrap_or(0)
            == 0
}

/// Whether `outer` equals or covers `inner`.
#[inline]
fn covers(outer: &IpNet, inner: &IpNet) -> bool {
    match (outer, inner) {
        (IpNet::V4(o), IpNet::V4(i)) => covers4(u32::from(o.network()), o.prefix_len(), i),
        (IpNet::V6(o), IpNet::V6(i)) => covers6(u128::from(o.network()), o.prefix_len(), i),
        _ => false,
    }
}

/// The policy as it applies to one peer: looked up once per UPDATE, then
/// evaluated per prefix.
pub struct ForPeer<'a> {
    import: &'a ImportPolicy,
    reject_martians: bool,
}

impl ForPeer<'_> {
    /// The verdict for `prefix`, given the box's connected networks.
    /// `None` accepts. See [`ImportPolicy`] for the order.
    #[inline]
    pub fn evaluate(&self, prefix: &IpNet, connected: &[IpNet]) -> Option<Reject> {
        let i = self.import;
        if i.deny.iter().any(|m| m.matches(prefix)) {
            return Some(Reject::DeniedByRule);
        }
        if !i.allow.is_empty() {
            match i.allow.iter().find(|m| m.matches(prefix)) {
                Some(m) if m.is_exact() => return None,
                Some(_) => {}
                None => return Some(Reject::NotAllowed),
            }
        }
        if prefix.prefix_len() == 0 {
            // The default route covers every connected network; allowing
            // it is allowing that (the kernel prefers the connected routes).
            return (!i.allow_default_route).then_some(Reject::DefaultRoute);
        }
        if self.reject_martians && martian(prefix) {
            return Some(Reject::Martian);
        }
        // A prefix equal to or shorter than (covering) a connected network
        // would steal the box's own LAN traffic.
        if !i.allow_connected && connected.iter().any(|c| covers(prefix, c)) {
            return Some(Reject::Connected);
        }
        None
    }
}

impl Policy {
    /// The policy for one peer: its own import policy if it has one, else
    /// the global one.
    pub fn for_peer(&self, peer: IpAddr) -> ForPeer<'_> {
        let import = self
            .peers
            .get(&peer)
            .and_then(|p| p.import.as_ref())
            .unwrap_or(&self.import);
        ForPeer {
            import,
            reject_martians: self.reject_martians,
        }
    }

    /// The verdict for `prefix` from `peer`, given the box's connected
    /// networks. `None` accepts.
    pub fn evaluate(&self, peer: IpAddr, prefix: &IpNet, connected: &[IpNet]) -> Option<Reject> {
        self.for_peer(peer).evaluate(prefix, connected)
    }

    pub fn max_prefix(&self, peer: IpAddr) -> Option<MaxPrefix> {
        self.peers.get(&peer).and_then(|p| p.max_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The integer containment test agrees with ipnet's.
        #[test]
        fn covers_agrees_with_ipnet(a: u32, la in 0u8..=32, b: u32, lb in 0u8..=32,
                                    c: u128, lc in 0u8..=128, d: u128, ld in 0u8..=128) {
            let (x, y) = (IpNet::V4(Ipv4Net::new_assert(a.into(), la)), IpNet::V4(Ipv4Net::new_assert(b.into(), lb)));
            proptest::prop_assert_eq!(covers(&x, &y), x.contains(&y));
            // Also with y inside x, which random pairs rarely hit.
            let y2 = IpNet::V4(Ipv4Net::new_assert((a ^ (b >> la.min(31))).into(), lb.max(la)));
            proptest::prop_assert_eq!(covers(&x, &y2), x.contains(&y2));
            let (x, y) = (IpNet::V6(Ipv6Net::new_assert(c.into(), lc)), IpNet::V6(Ipv6Net::new_assert(d.into(), ld)));
            proptest::prop_assert_eq!(covers(&x, &y), x.contains(&y));
            let y2 = IpNet::V6(Ipv6Net::new_assert((c ^ (d >> lc.min(127))).into(), ld.max(lc)));
            proptest::prop_assert_eq!(covers(&x, &y2), x.contains(&y2));
        }
    }

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn prefix_ranges() {
        let r = PrefixMatch::exact(n("172.16.0.0/16")).le(32);
        assert!(r.matches(&n("172.16.0.0/16")));
        assert!(r.matches(&n("172.16.3.4/32")));
        assert!(!r.matches(&n("172.0.0.0/8")));
        let r = PrefixMatch::exact(n("172.15.0.0/16")).le(26);
        assert!(r.matches(&n("172.15.1.64/26")));
        assert!(!r.matches(&n("172.15.1.64/27")));
        let r = PrefixMatch::exact(n("10.0.0.0/8")).ge(24);
        assert!(r.matches(&n("10.1.2.0/24")));
        assert!(r.matches(&n("10.1.2.3/32")));
        assert!(!r.matches(&n("10.1.0.0/16")));
        let r = PrefixMatch::exact(n("10.0.0.0/8"));
        assert!(r.matches(&n("10.0.0.0/8")));
        assert!(!r.matches(&n("10.0.0.0/9")));
    }

    fn peer_with(import: ImportPolicy) -> (Policy, IpAddr) {
        let peer: IpAddr = "192.168.83.36".parse().unwrap();
        let mut p = Policy::default();
        p.peers.insert(
            peer,
            PeerPolicy {
                import: Some(import),
                max_prefix: None,
            },
        );
        (p, peer)
    }

    /// The documented order (docs/configuration.md): a deny-list alone
    /// rejects only what it names; the allow-list is what makes unmatched
    /// prefixes go.
    #[test]
    fn deny_list_alone_rejects_only_what_it_names() {
        let (p, peer) = peer_with(ImportPolicy {
            deny: vec![PrefixMatch::exact(n("172.15.0.0/16")).le(32)],
            ..ImportPolicy::default()
        });
        let e = |s: &str| p.evaluate(peer, &n(s), &[]);
        assert_eq!(e("172.15.1.0/26"), Some(Reject::DeniedByRule));
        assert_eq!(e("172.16.0.0/16"), None);
        let (p, peer) = peer_with(ImportPolicy {
            allow: vec![PrefixMatch::exact(n("172.16.0.0/16"))],
            deny: vec![PrefixMatch::exact(n("172.16.0.0/16"))],
            ..ImportPolicy::default()
        });
        assert_eq!(
            p.evaluate(peer, &n("172.16.0.0/16"), &[]),
            Some(Reject::DeniedByRule),
            "deny before allow"
        );
        assert_eq!(
            p.evaluate(peer, &n("172.17.0.0/16"), &[]),
            Some(Reject::NotAllowed)
        );
    }

    /// A peer's own import policy replaces the global one whole: its
    /// switches apply to it, and lifting one does not make an allow-list.
    #[test]
    fn a_peer_policy_replaces_the_global_one_whole() {
        let conn = [n("192.168.83.0/24")];
        let (mut p, peer) = peer_with(ImportPolicy {
            allow_default_route: true,
            ..ImportPolicy::default()
        });
        p.import.allow_connected = true;
        let e = |p: &Policy, who: IpAddr, s: &str| p.evaluate(who, &n(s), &conn);
        assert_eq!(e(&p, peer, "0.0.0.0/0"), None);
        assert_eq!(e(&p, peer, "172.15.1.0/26"), None, "no allow-list");
        assert_eq!(
            e(&p, peer, "192.168.0.0/16"),
            Some(Reject::Connected),
            "the global allow_connected does not apply to it"
        );
        let other: IpAddr = "192.168.83.49".parse().unwrap();
        assert_eq!(e(&p, other, "0.0.0.0/0"), Some(Reject::DefaultRoute));
        assert_eq!(e(&p, other, "192.168.0.0/16"), None);
        p.peers.get_mut(&peer).unwrap().import = Some(ImportPolicy {
            allow_connected: true,
            ..ImportPolicy::default()
        });
        assert_eq!(e(&p, peer, "192.168.0.0/16"), None);
        assert_eq!(e(&p, peer, "0.0.0.0/0"), Some(Reject::DefaultRoute));
        // The global switch works as well, whatever the connected
        // networks the default route covers.
        p.import.allow_default_route = true;
        assert_eq!(e(&p, other, "0.0.0.0/0"), None);
        assert_eq!(e(&p, other, "::/0"), None);
    }

    /// An exact allow entry accepts outright; a ranged one leaves the
    /// defaults to decide.
    #[test]
    fn exact_allow_overrides_the_defaults_ranged_does_not() {
        let (p, peer) = peer_with(ImportPolicy {
            allow: vec![
                PrefixMatch::exact(n("0.0.0.0/0")).le(8),
                PrefixMatch::exact(n("0.0.0.0/0")),
            ],
            ..ImportPolicy::default()
        });
        assert_eq!(
            p.evaluate(peer, &n("0.0.0.0/0"), &[]),
            Some(Reject::DefaultRoute),
            "the first match (ranged) decides"
        );
        let (p, peer) = peer_with(ImportPolicy {
            allow: vec![PrefixMatch::exact(n("0.0.0.0/0"))],
            ..ImportPolicy::default()
        });
        assert_eq!(p.evaluate(peer, &n("0.0.0.0/0"), &[]), None);
        assert_eq!(
            p.evaluate(peer, &n("10.0.0.0/8"), &[]),
            Some(Reject::NotAllowed)
        );
    }

    /// The IPv4 martian blocks as listed in [`martian`]'s documentation.
    const MARTIANS_V4: [([u8; 4], u8); 6] = [
        ([0, 0, 0, 0], 8),
        ([127, 0, 0, 0], 8),
        ([169, 254, 0, 0], 16),
        ([224, 0, 0, 0], 4),
        ([240, 0, 0, 0], 4),
        ([255, 255, 255, 255], 32),
    ];

    /// The first-octet martian test agrees with the list for every first
    /// octet and length.
    #[test]
    fn martian_by_octet_agrees_with_the_list() {
        for first in 0u32..=255 {
            for second in [0u32, 1, 253, 254, 255] {
                for low in [0u32, 0xffff] {
                    for len in 0u8..=32 {
                        let a = first << 24 | second << 16 | low;
                        let p = Ipv4Net::new_assert(a.into(), len).trunc();
                        let listed = MARTIANS_V4
                            .iter()
                            .any(|&(m, l)| covers4(u32::from_be_bytes(m), l, &p));
                        assert_eq!(martian(&IpNet::V4(p)), listed, "{p}");
                    }
                }
            }
        }
    }

    #[test]
    fn martians() {
        for m in [
            "0.1.2.0/24",
            "127.0.0.1/32",
            "169.254.1.0/24",
            "224.0.0.0/4",
            "239.1.1.1/32",
            "240.0.0.0/8",
            "255.255.255.255/32",
            "::/128",
            "::1/128",
            "::ffff:10.0.0.0/104",
            "fe80::/64",
            "ff02::1/128",
        ] {
            assert!(martian(&n(m)), "{m}");
        }
        for ok in [
            "10.0.0.0/8",
            "172.16.0.0/16",
            "2001:db8::/32",
            "::/0",
            "0.0.0.0/0",
        ] {
            assert!(!martian(&n(ok)), "{ok}");
        }
    }
}
