//! Import policy that protects the LAN: prefix allow-lists with ge/le,
//! global or per peer, and defaults that refuse the default route,
//! martians and anything that equals or covers a connected network.

use std::fmt;
use std::net::IpAddr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::hash::FastMap;

/// What a rule does with a prefix it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleAction {
    Allow,
    Deny,
}

/// A prefix-list entry: `prefix [ge G] [le L]`, as in Cisco's and FRR's
/// prefix lists. Without ge/le it matches `prefix` exactly; with them, any
/// prefix inside `prefix` whose length is within `ge..=le` (`ge` defaults
/// to the rule's length, `le` to the family's maximum when `ge` is given,
/// else to `ge`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixRule {
    pub action: RuleAction,
    pub prefix: IpNet,
    pub ge: Option<u8>,
    pub le: Option<u8>,
}

impl PrefixRule {
    pub fn allow(prefix: IpNet) -> Self {
        PrefixRule {
            action: RuleAction::Allow,
            prefix: prefix.trunc(),
            ge: None,
            le: None,
        }
    }

    pub fn deny(prefix: IpNet) -> Self {
        PrefixRule {
            action: RuleAction::Deny,
            ..PrefixRule::allow(prefix)
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

    /// Whether the rule names prefixes exactly (no ge/le): such an Allow
    /// rule overrides the protective defaults.
    pub fn is_exact(&self) -> bool {
        self.ge.is_none() && self.le.is_none()
    }

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

impl fmt::Display for PrefixRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = match self.action {
            RuleAction::Allow => "allow",
            RuleAction::Deny => "deny",
        };
        write!(f, "{a} {}", self.prefix)?;
        if let Some(g) = self.ge {
            write!(f, " ge {g}")?;
        }
        if let Some(l) = self.le {
            write!(f, " le {l}")?;
        }
        Ok(())
    }
}

/// A per-peer max-prefix limit (counted over accepted paths, all families).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPrefix {
    pub limit: u32,
    /// Warn when the count reaches this percentage of the limit.
    pub warn_percent: u8,
}

/// Per-peer overrides.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerPolicy {
    /// Replaces the global rules for this peer when set.
    pub rules: Option<Vec<PrefixRule>>,
    pub max_prefix: Option<MaxPrefix>,
}

/// The import policy. Evaluation, first match wins:
/// 1. the peer's rules if it has any, else the global rules: a Deny match
///    rejects; an exact Allow match accepts outright (overriding the
///    defaults); a ranged Allow match goes on to the defaults; no match in
///    a non-empty list rejects (the list is an allow-list);
/// 2. the defaults: the default route, martians, and prefixes that equal
///    or cover a connected network are rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub rules: Vec<PrefixRule>,
    pub peers: FastMap<IpAddr, PeerPolicy>,
    pub reject_default_route: bool,
    pub reject_martians: bool,
    pub reject_connected: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            rules: Vec::new(),
            peers: FastMap::default(),
            reject_default_route: true,
            reject_martians: true,
            reject_connected: true,
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
    policy: &'a Policy,
    rules: &'a [PrefixRule],
}

impl ForPeer<'_> {
    /// The verdict for `prefix`, given the box's connected networks.
    /// `None` accepts.
    #[inline]
    pub fn evaluate(&self, prefix: &IpNet, connected: &[IpNet]) -> Option<Reject> {
        if !self.rules.is_empty() {
            match self.rules.iter().find(|r| r.matches(prefix)) {
                Some(r) if r.action == RuleAction::Deny => return Some(Reject::DeniedByRule),
                Some(r) if r.is_exact() => return None,
                Some(_) => {}
                None => return Some(Reject::NotAllowed),
            }
        }
        let policy = self.policy;
        if policy.reject_default_route && prefix.prefix_len() == 0 {
            return Some(Reject::DefaultRoute);
        }
        if policy.reject_martians && martian(prefix) {
            return Some(Reject::Martian);
        }
        // A prefix equal to or shorter than (covering) a connected network
        // would steal the box's own LAN traffic.
        if policy.reject_connected && connected.iter().any(|c| covers(prefix, c)) {
            return Some(Reject::Connected);
        }
        None
    }
}

impl Policy {
    /// The policy for one peer: its own rules if it has any, else the
    /// global ones.
    pub fn for_peer(&self, peer: IpAddr) -> ForPeer<'_> {
        let rules = self
            .peers
            .get(&peer)
            .and_then(|p| p.rules.as_deref())
            .unwrap_or(&self.rules);
        ForPeer {
            policy: self,
            rules,
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
    fn rule_ranges() {
        let r = PrefixRule::allow(n("172.16.0.0/16")).le(32);
        assert!(r.matches(&n("172.16.0.0/16")));
        assert!(r.matches(&n("172.16.3.4/32")));
        assert!(!r.matches(&n("172.0.0.0/8")));
        let r = PrefixRule::allow(n("172.15.0.0/16")).le(26);
        assert!(r.matches(&n("172.15.1.64/26")));
        assert!(!r.matches(&n("172.15.1.64/27")));
        let r = PrefixRule::allow(n("10.0.0.0/8")).ge(24);
        assert!(r.matches(&n("10.1.2.0/24")));
        assert!(r.matches(&n("10.1.2.3/32")));
        assert!(!r.matches(&n("10.1.0.0/16")));
        let r = PrefixRule::allow(n("10.0.0.0/8"));
        assert!(r.matches(&n("10.0.0.0/8")));
        assert!(!r.matches(&n("10.0.0.0/9")));
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
