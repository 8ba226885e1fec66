//! Path attributes (RFC 4271 §4.3, §5) and their RFC 7606 error handling.
//!
//! Each attribute keeps the flags it arrived with, so it re-encodes to the
//! same octets. Decoding returns, per attribute, either the typed value or
//! the RFC 7606 action with the RFC 4271 §6.3 NOTIFICATION.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};
use nom::number::complete::{be_u8, be_u16};
use serde::Serialize;

use super::iana::{AS_TRANS, afi, attr, err};
use super::nlri::{Nlri, decode_prefixes, encode_prefix};
use super::{Action, AfiSafi, Ctx};

type IResult<'a, T> = nom::IResult<&'a [u8], T, ()>;

/// A path attribute with the flags it was received (or is sent) with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PathAttribute {
    pub flags: u8,
    #[serde(flatten)]
    pub value: Attr,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Igp,
    Egp,
    Incomplete,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Igp => "IGP",
            Origin::Egp => "EGP",
            Origin::Incomplete => "incomplete",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SegmentType {
    Set = 1,
    Sequence = 2,
    ConfedSequence = 3,
    ConfedSet = 4,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AsSegment {
    #[serde(rename = "type")]
    pub kind: SegmentType,
    pub asns: Vec<u32>,
}

/// An AS_PATH or AS4_PATH: a list of segments (RFC 4271 §4.3, RFC 5065).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    pub fn sequence(asns: Vec<u32>) -> Self {
        if asns.is_empty() {
            return AsPath::default();
        }
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns,
            }],
        }
    }

    /// The path length for the decision process (RFC 4271 §9.1.2.2): an
    /// AS_SET counts as one, confederation segments count as zero
    /// (RFC 5065 §5.3).
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::Sequence => s.asns.len(),
                SegmentType::Set => 1,
                SegmentType::ConfedSequence | SegmentType::ConfedSet => 0,
            })
            .sum()
    }

    /// The neighbouring AS: the first AS of a leading AS_SEQUENCE.
    pub fn first_as(&self) -> Option<u32> {
        self.segments
            .iter()
            .find(|s| matches!(s.kind, SegmentType::Sequence | SegmentType::Set))
            .filter(|s| s.kind == SegmentType::Sequence)
            .and_then(|s| s.asns.first().copied())
    }

    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    fn decode(mut i: &[u8], four_octet: bool) -> Result<AsPath, &'static str> {
        let mut segments = Vec::new();
        while !i.is_empty() {
            let hdr = |i| -> IResult<'_, (u8, u8)> {
                let (i, t) = be_u8(i)?;
                let (i, n) = be_u8(i)?;
                Ok((i, (t, n)))
            };
            // RFC 7606 §7.2: a single octet left is an underrun.
            let (r, (t, n)) = hdr(i).map_err(|_| "AS_PATH segment header truncated")?;
            let kind = match t {
                1 => SegmentType::Set,
                2 => SegmentType::Sequence,
                3 => SegmentType::ConfedSequence,
                4 => SegmentType::ConfedSet,
                _ => return Err("unknown AS_PATH segment type"),
            };
            if n == 0 {
                return Err("AS_PATH segment of length zero");
            }
            let size = if four_octet { 4 } else { 2 };
            let bytes = r
                .get(..n as usize * size)
                .ok_or("AS_PATH segment overruns the attribute")?;
            let asns = if four_octet {
                bytes
                    .chunks_exact(4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .collect()
            } else {
                bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
                    .collect()
            };
            segments.push(AsSegment { kind, asns });
            i = &r[n as usize * size..];
        }
        Ok(AsPath { segments })
    }

    fn encode(&self, four_octet: bool, out: &mut BytesMut) {
        for s in &self.segments {
            // Segments hold at most 255 ASes; longer ones are split.
            for chunk in s.asns.chunks(255) {
                out.put_u8(s.kind as u8);
                out.put_u8(chunk.len() as u8);
                for &asn in chunk {
                    if four_octet {
                        out.put_u32(asn);
                    } else {
                        out.put_u16(u16::try_from(asn).unwrap_or(AS_TRANS));
                    }
                }
            }
        }
    }

    /// Whether any AS needs four octets.
    pub fn has_four_octet_asn(&self) -> bool {
        self.segments
            .iter()
            .any(|s| s.asns.iter().any(|&a| a > u16::MAX as u32))
    }
}

impl fmt::Display for AsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.segments {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let (open, sep, close) = match s.kind {
                SegmentType::Sequence => ("", " ", ""),
                SegmentType::Set => ("{", ",", "}"),
                SegmentType::ConfedSequence => ("(", " ", ")"),
                SegmentType::ConfedSet => ("[", ",", "]"),
            };
            f.write_str(open)?;
            for (n, a) in s.asns.iter().enumerate() {
                if n > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{a}")?;
            }
            f.write_str(close)?;
        }
        if first {
            f.write_str("(empty)")?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// A standard community (RFC 1997), shown as `high:low`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);
    pub const LLGR_STALE: Community = Community(0xFFFF_0006);
    pub const NO_LLGR: Community = Community(0xFFFF_0007);
}

impl std::str::FromStr for Community {
    type Err = String;
    /// `ASN:VALUE` (each 0-65535), or a well-known name of RFC 1997 /
    /// RFC 9494: `no-export`, `no-advertise`, `no-export-subconfed`,
    /// `llgr-stale`, `no-llgr`.
    fn from_str(s: &str) -> Result<Self, String> {
        let named = [
            ("no-export", Community::NO_EXPORT),
            ("no-advertise", Community::NO_ADVERTISE),
            ("no-export-subconfed", Community::NO_EXPORT_SUBCONFED),
            ("llgr-stale", Community::LLGR_STALE),
            ("no-llgr", Community::NO_LLGR),
        ];
        if let Some((_, c)) = named.iter().find(|(n, _)| *n == s) {
            return Ok(*c);
        }
        let bad = || {
            format!(
                "\"{s}\" is not a community; write ASN:VALUE (each 0-65535, e.g. \"64512:100\") or no-export / no-advertise"
            )
        };
        let (a, v) = s.split_once(':').ok_or_else(bad)?;
        let a: u16 = a.parse().map_err(|_| bad())?;
        let v: u16 = v.parse().map_err(|_| bad())?;
        Ok(Community((a as u32) << 16 | v as u32))
    }
}

impl fmt::Display for Community {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.0 >> 16, self.0 & 0xffff)
    }
}

/// An extended community (RFC 4360): eight octets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtCommunity(pub [u8; 8]);

impl fmt::Display for ExtCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        let sub = match b[1] {
            0x02 => "rt",
            0x03 => "soo",
            _ => "",
        };
        match b[0] {
            // Transitive two-octet AS specific (RFC 4360 §3.1).
            0x00 if !sub.is_empty() => write!(
                f,
                "{sub}:{}:{}",
                u16::from_be_bytes([b[2], b[3]]),
                u32::from_be_bytes([b[4], b[5], b[6], b[7]])
            ),
            // Transitive IPv4 address specific (RFC 4360 §3.2).
            0x01 if !sub.is_empty() => write!(
                f,
                "{sub}:{}:{}",
                Ipv4Addr::new(b[2], b[3], b[4], b[5]),
                u16::from_be_bytes([b[6], b[7]])
            ),
            // Transitive four-octet AS specific (RFC 5668).
            0x02 if !sub.is_empty() => write!(
                f,
                "{sub}:{}:{}",
                u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
                u16::from_be_bytes([b[6], b[7]])
            ),
            _ => write!(f, "0x{}", super::ser::to_hex(b)),
        }
    }
}

/// A large community (RFC 8092), shown as `global:local1:local2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

impl std::str::FromStr for LargeCommunity {
    type Err = String;
    /// `GLOBAL:LOCAL1:LOCAL2`, each 0-4294967295 (RFC 8092).
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "\"{s}\" is not a large community; write GLOBAL:LOCAL1:LOCAL2 (e.g. \"64512:1:2\")"
            )
        };
        let mut it = s.split(':').map(|x| x.parse::<u32>());
        match (it.next(), it.next(), it.next(), it.next()) {
            (Some(Ok(global)), Some(Ok(local1)), Some(Ok(local2)), None) => Ok(LargeCommunity {
                global,
                local1,
                local2,
            }),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

/// The next hop of MP_REACH_NLRI (RFC 4760 §3, RFC 2545 §3, RFC 8950).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum NextHop {
    V4(Ipv4Addr),
    V6 {
        global: Ipv6Addr,
        #[serde(skip_serializing_if = "Option::is_none")]
        link_local: Option<Ipv6Addr>,
    },
    /// A next hop of a family this codec does not interpret.
    Raw(#[serde(serialize_with = "super::ser::hex")] Bytes),
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NextHop::V4(a) => write!(f, "{a}"),
            NextHop::V6 {
                global,
                link_local: None,
            } => write!(f, "{global}"),
            NextHop::V6 {
                global,
                link_local: Some(ll),
            } => write!(f, "{global} {ll}"),
            NextHop::Raw(b) => write!(f, "0x{}", super::ser::to_hex(b)),
        }
    }
}

/// NLRI carried in MP_REACH_NLRI or MP_UNREACH_NLRI.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum MpNlri {
    Prefixes(Vec<Nlri>),
    /// NLRI of a family this codec does not interpret.
    Raw(#[serde(serialize_with = "super::ser::hex")] Bytes),
}

impl MpNlri {
    pub fn prefixes(&self) -> &[Nlri] {
        match self {
            MpNlri::Prefixes(p) => p,
            MpNlri::Raw(_) => &[],
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            MpNlri::Prefixes(p) => p.is_empty(),
            MpNlri::Raw(b) => b.is_empty(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MpReach {
    pub afi_safi: AfiSafi,
    pub next_hop: NextHop,
    pub nlri: MpNlri,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MpUnreach {
    pub afi_safi: AfiSafi,
    pub nlri: MpNlri,
}

/// A typed path attribute value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(
    tag = "attribute",
    content = "value",
    rename_all = "SCREAMING_SNAKE_CASE"
)]
pub enum Attr {
    Origin(Origin),
    AsPath(AsPath),
    NextHop(Ipv4Addr),
    MultiExitDisc(u32),
    LocalPref(u32),
    AtomicAggregate,
    Aggregator(Aggregator),
    Communities(#[serde(serialize_with = "super::ser::display_vec")] Vec<Community>),
    OriginatorId(Ipv4Addr),
    ClusterList(Vec<Ipv4Addr>),
    MpReachNlri(MpReach),
    MpUnreachNlri(MpUnreach),
    ExtendedCommunities(#[serde(serialize_with = "super::ser::display_vec")] Vec<ExtCommunity>),
    As4Path(AsPath),
    As4Aggregator(Aggregator),
    LargeCommunity(#[serde(serialize_with = "super::ser::display_vec")] Vec<LargeCommunity>),
    /// An attribute this codec does not interpret; kept with its flags.
    Unknown {
        code: u8,
        #[serde(serialize_with = "super::ser::hex")]
        data: Bytes,
    },
}

/// The Optional and Transitive bits a known attribute must carry.
fn expected_flags(code: u8) -> Option<u8> {
    use attr::*;
    Some(match code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => FLAG_TRANSITIVE,
        MULTI_EXIT_DISC | ORIGINATOR_ID | CLUSTER_LIST | MP_REACH_NLRI | MP_UNREACH_NLRI => {
            FLAG_OPTIONAL
        }
        AGGREGATOR | COMMUNITIES | EXTENDED_COMMUNITIES | AS4_PATH | AS4_AGGREGATOR
        | LARGE_COMMUNITY => FLAG_OPTIONAL | FLAG_TRANSITIVE,
        _ => return None,
    })
}

/// The RFC 7606 action for a malformed attribute of this type.
fn malformed_action(code: u8) -> Action {
    use attr::*;
    match code {
        // RFC 7606 §7.6, §7.7; RFC 6793 §6.
        ATOMIC_AGGREGATE | AGGREGATOR | AS4_PATH | AS4_AGGREGATOR => Action::AttributeDiscard,
        // RFC 7606 §7.11 and RFC 4760 §7: the NLRI cannot be trusted, so
        // neither withdrawing nor keeping them is safe.
        MP_REACH_NLRI | MP_UNREACH_NLRI => Action::SessionReset,
        // RFC 7606 §7.1-§7.5, §7.8-§7.10, §7.14; RFC 8092 §6.
        _ => Action::TreatAsWithdraw,
    }
}

/// A malformed attribute: the RFC 7606 action and the RFC 4271 §6.3
/// subcode. The NOTIFICATION data is the whole attribute.
#[derive(Debug)]
pub(crate) struct Malformed {
    pub action: Action,
    pub subcode: u8,
    pub reason: String,
}

impl Attr {
    pub fn code(&self) -> u8 {
        use attr::*;
        match self {
            Attr::Origin(_) => ORIGIN,
            Attr::AsPath(_) => AS_PATH,
            Attr::NextHop(_) => NEXT_HOP,
            Attr::MultiExitDisc(_) => MULTI_EXIT_DISC,
            Attr::LocalPref(_) => LOCAL_PREF,
            Attr::AtomicAggregate => ATOMIC_AGGREGATE,
            Attr::Aggregator(_) => AGGREGATOR,
            Attr::Communities(_) => COMMUNITIES,
            Attr::OriginatorId(_) => ORIGINATOR_ID,
            Attr::ClusterList(_) => CLUSTER_LIST,
            Attr::MpReachNlri(_) => MP_REACH_NLRI,
            Attr::MpUnreachNlri(_) => MP_UNREACH_NLRI,
            Attr::ExtendedCommunities(_) => EXTENDED_COMMUNITIES,
            Attr::As4Path(_) => AS4_PATH,
            Attr::As4Aggregator(_) => AS4_AGGREGATOR,
            Attr::LargeCommunity(_) => LARGE_COMMUNITY,
            Attr::Unknown { code, .. } => *code,
        }
    }

    /// Decodes an attribute value, checking its flags and length as
    /// RFC 4271 §6.3 and RFC 7606 §7 say.
    pub(crate) fn decode(ctx: &Ctx, flags: u8, code: u8, v: &[u8]) -> Result<Attr, Malformed> {
        use attr::*;
        let action = malformed_action(code);
        let bad = |subcode: u8, reason: String| Malformed {
            action,
            subcode,
            reason,
        };
        let bad_len = |want: &str| {
            bad(
                err::ATTRIBUTE_LENGTH_ERROR,
                format!("{} length {} (expected {want})", name(code), v.len()),
            )
        };
        match expected_flags(code) {
            // RFC 7606 §3(c): Optional or Transitive bits in conflict make
            // the attribute malformed.
            Some(want) if flags & (FLAG_OPTIONAL | FLAG_TRANSITIVE) != want => {
                return Err(bad(
                    err::ATTRIBUTE_FLAGS_ERROR,
                    format!("{} with flags 0x{flags:02x}", name(code)),
                ));
            }
            Some(_) => {}
            None if flags & FLAG_OPTIONAL == 0 => {
                // RFC 4271 §6.3: an unrecognized well-known attribute.
                return Err(Malformed {
                    action: Action::SessionReset,
                    subcode: err::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                    reason: format!("unrecognized well-known attribute {code}"),
                });
            }
            None => {
                return Ok(Attr::Unknown {
                    code,
                    data: Bytes::copy_from_slice(v),
                });
            }
        }
        let u32_at = |v: &[u8], n: usize| u32::from_be_bytes([v[n], v[n + 1], v[n + 2], v[n + 3]]);
        let ipv4_at = |v: &[u8], n: usize| Ipv4Addr::new(v[n], v[n + 1], v[n + 2], v[n + 3]);
        Ok(match code {
            ORIGIN => {
                if v.len() != 1 {
                    return Err(bad_len("1"));
                }
                match v[0] {
                    0 => Attr::Origin(Origin::Igp),
                    1 => Attr::Origin(Origin::Egp),
                    2 => Attr::Origin(Origin::Incomplete),
                    o => {
                        return Err(bad(
                            err::INVALID_ORIGIN_ATTRIBUTE,
                            format!("undefined ORIGIN value {o}"),
                        ));
                    }
                }
            }
            AS_PATH => Attr::AsPath(
                AsPath::decode(v, ctx.four_octet_as)
                    .map_err(|e| bad(err::MALFORMED_AS_PATH, e.to_string()))?,
            ),
            NEXT_HOP => {
                if v.len() != 4 {
                    return Err(bad_len("4"));
                }
                let nh = ipv4_at(v, 0);
                // RFC 4271 §6.3: a syntactically incorrect NEXT_HOP; RFC 7606
                // §7.3 makes it treat-as-withdraw.
                if nh.is_unspecified() || nh.is_multicast() || nh.is_broadcast() {
                    return Err(bad(
                        err::INVALID_NEXT_HOP_ATTRIBUTE,
                        format!("NEXT_HOP {nh} is not a host address"),
                    ));
                }
                Attr::NextHop(nh)
            }
            MULTI_EXIT_DISC | LOCAL_PREF | ORIGINATOR_ID => {
                if v.len() != 4 {
                    return Err(bad_len("4"));
                }
                match code {
                    MULTI_EXIT_DISC => Attr::MultiExitDisc(u32_at(v, 0)),
                    LOCAL_PREF => Attr::LocalPref(u32_at(v, 0)),
                    _ => Attr::OriginatorId(ipv4_at(v, 0)),
                }
            }
            ATOMIC_AGGREGATE => {
                if !v.is_empty() {
                    return Err(bad_len("0"));
                }
                Attr::AtomicAggregate
            }
            AGGREGATOR | AS4_AGGREGATOR => {
                let four = code == AS4_AGGREGATOR || ctx.four_octet_as;
                let agg = match (four, v.len()) {
                    (true, 8) => Aggregator {
                        asn: u32_at(v, 0),
                        address: ipv4_at(v, 4),
                    },
                    (false, 6) => Aggregator {
                        asn: u16::from_be_bytes([v[0], v[1]]) as u32,
                        address: ipv4_at(v, 2),
                    },
                    _ => return Err(bad_len(if four { "8" } else { "6" })),
                };
                if code == AGGREGATOR {
                    Attr::Aggregator(agg)
                } else {
                    Attr::As4Aggregator(agg)
                }
            }
            COMMUNITIES | CLUSTER_LIST => {
                // RFC 7606 §7.8, §7.10: a non-zero multiple of 4.
                if v.is_empty() || !v.len().is_multiple_of(4) {
                    return Err(bad_len("a non-zero multiple of 4"));
                }
                let words = v.chunks_exact(4);
                if code == COMMUNITIES {
                    Attr::Communities(words.map(|c| Community(u32_at(c, 0))).collect())
                } else {
                    Attr::ClusterList(words.map(|c| ipv4_at(c, 0)).collect())
                }
            }
            EXTENDED_COMMUNITIES => {
                // RFC 7606 §7.14.
                if v.is_empty() || !v.len().is_multiple_of(8) {
                    return Err(bad_len("a non-zero multiple of 8"));
                }
                Attr::ExtendedCommunities(
                    v.chunks_exact(8)
                        .map(|c| ExtCommunity(c.try_into().expect("chunk of 8")))
                        .collect(),
                )
            }
            LARGE_COMMUNITY => {
                // RFC 8092 §5.
                if v.is_empty() || !v.len().is_multiple_of(12) {
                    return Err(bad_len("a non-zero multiple of 12"));
                }
                Attr::LargeCommunity(
                    v.chunks_exact(12)
                        .map(|c| LargeCommunity {
                            global: u32_at(c, 0),
                            local1: u32_at(c, 4),
                            local2: u32_at(c, 8),
                        })
                        .collect(),
                )
            }
            AS4_PATH => {
                // RFC 7606 §5.1: only AS_PATH and ATOMIC_AGGREGATE may be
                // empty; RFC 6793 §6: a malformed AS4_PATH is discarded.
                if v.is_empty() {
                    return Err(bad_len("non-zero"));
                }
                Attr::As4Path(
                    AsPath::decode(v, true).map_err(|e| {
                        bad(err::OPTIONAL_ATTRIBUTE_ERROR, format!("AS4_PATH: {e}"))
                    })?,
                )
            }
            MP_REACH_NLRI => Attr::MpReachNlri(
                decode_mp_reach(ctx, v).map_err(|e| bad(err::OPTIONAL_ATTRIBUTE_ERROR, e))?,
            ),
            MP_UNREACH_NLRI => Attr::MpUnreachNlri(
                decode_mp_unreach(ctx, v).map_err(|e| bad(err::OPTIONAL_ATTRIBUTE_ERROR, e))?,
            ),
            _ => unreachable!("expected_flags covers every known code"),
        })
    }

    fn encode_value(&self, ctx: &Ctx, out: &mut BytesMut) {
        match self {
            Attr::Origin(o) => out.put_u8(*o as u8),
            Attr::AsPath(p) => p.encode(ctx.four_octet_as, out),
            Attr::As4Path(p) => p.encode(true, out),
            Attr::NextHop(a) | Attr::OriginatorId(a) => out.put_slice(&a.octets()),
            Attr::MultiExitDisc(v) | Attr::LocalPref(v) => out.put_u32(*v),
            Attr::AtomicAggregate => {}
            Attr::Aggregator(a) => {
                if ctx.four_octet_as {
                    out.put_u32(a.asn);
                } else {
                    out.put_u16(u16::try_from(a.asn).unwrap_or(AS_TRANS));
                }
                out.put_slice(&a.address.octets());
            }
            Attr::As4Aggregator(a) => {
                out.put_u32(a.asn);
                out.put_slice(&a.address.octets());
            }
            Attr::Communities(c) => c.iter().for_each(|c| out.put_u32(c.0)),
            Attr::ClusterList(c) => c.iter().for_each(|a| out.put_slice(&a.octets())),
            Attr::ExtendedCommunities(c) => c.iter().for_each(|c| out.put_slice(&c.0)),
            Attr::LargeCommunity(c) => c.iter().for_each(|c| {
                out.put_u32(c.global);
                out.put_u32(c.local1);
                out.put_u32(c.local2);
            }),
            Attr::MpReachNlri(m) => {
                out.put_u16(m.afi_safi.afi);
                out.put_u8(m.afi_safi.safi);
                match &m.next_hop {
                    NextHop::V4(a) => {
                        out.put_u8(4);
                        out.put_slice(&a.octets());
                    }
                    NextHop::V6 { global, link_local } => {
                        out.put_u8(if link_local.is_some() { 32 } else { 16 });
                        out.put_slice(&global.octets());
                        if let Some(ll) = link_local {
                            out.put_slice(&ll.octets());
                        }
                    }
                    NextHop::Raw(b) => {
                        out.put_u8(b.len() as u8);
                        out.put_slice(b);
                    }
                }
                out.put_u8(0); // Reserved (RFC 4760 §3).
                encode_mp_nlri(ctx, m.afi_safi, &m.nlri, out);
            }
            Attr::MpUnreachNlri(m) => {
                out.put_u16(m.afi_safi.afi);
                out.put_u8(m.afi_safi.safi);
                encode_mp_nlri(ctx, m.afi_safi, &m.nlri, out);
            }
            Attr::Unknown { data, .. } => out.put_slice(data),
        }
    }
}

fn encode_mp_nlri(ctx: &Ctx, af: AfiSafi, nlri: &MpNlri, out: &mut BytesMut) {
    match nlri {
        MpNlri::Prefixes(p) => {
            let add_path = ctx.add_path_tx.contains(af);
            for n in p {
                encode_prefix(n, add_path, out);
            }
        }
        MpNlri::Raw(b) => out.put_slice(b),
    }
}

fn decode_mp_nlri(ctx: &Ctx, af: AfiSafi, i: &[u8]) -> Result<MpNlri, String> {
    if !af.is_ip() {
        return Ok(MpNlri::Raw(Bytes::copy_from_slice(i)));
    }
    let mut out = Vec::new();
    decode_prefixes(
        i,
        af.afi == afi::IPV6,
        ctx.add_path_rx.contains(af),
        &mut out,
    )
    .map_err(|e| format!("{af} NLRI: {e}"))?;
    Ok(MpNlri::Prefixes(out))
}

/// RFC 4760 §3.
fn decode_mp_reach(ctx: &Ctx, v: &[u8]) -> Result<MpReach, String> {
    let hdr = |i| -> IResult<'_, (u16, u8, u8)> {
        let (i, afi) = be_u16(i)?;
        let (i, safi) = be_u8(i)?;
        let (i, nh_len) = be_u8(i)?;
        Ok((i, (afi, safi, nh_len)))
    };
    let (rest, (afi_code, safi, nh_len)) =
        hdr(v).map_err(|_| "MP_REACH_NLRI too short".to_string())?;
    let af = AfiSafi::new(afi_code, safi);
    let nh = rest
        .get(..nh_len as usize)
        .ok_or("MP_REACH_NLRI next hop overruns the attribute")?;
    // One reserved octet follows the next hop (RFC 4760 §3).
    let nlri = rest
        .get(nh_len as usize + 1..)
        .ok_or("MP_REACH_NLRI truncated before its NLRI")?;
    let v6 = |b: &[u8]| Ipv6Addr::from(<[u8; 16]>::try_from(b).expect("16 octets"));
    let next_hop = if af.is_ip() {
        // RFC 2545 §3 (IPv6: global, or global plus link-local) and
        // RFC 8950 §3 (IPv4 NLRI over an IPv6 next hop).
        match nh.len() {
            4 if af.afi == afi::IPV4 => NextHop::V4(Ipv4Addr::new(nh[0], nh[1], nh[2], nh[3])),
            16 => NextHop::V6 {
                global: v6(nh),
                link_local: None,
            },
            32 => NextHop::V6 {
                global: v6(&nh[..16]),
                link_local: Some(v6(&nh[16..])),
            },
            n => return Err(format!("{af} next hop length {n} is invalid")),
        }
    } else {
        NextHop::Raw(Bytes::copy_from_slice(nh))
    };
    Ok(MpReach {
        afi_safi: af,
        next_hop,
        nlri: decode_mp_nlri(ctx, af, nlri)?,
    })
}

/// RFC 4760 §4.
fn decode_mp_unreach(ctx: &Ctx, v: &[u8]) -> Result<MpUnreach, String> {
    let hdr = |i| -> IResult<'_, (u16, u8)> {
        let (i, afi) = be_u16(i)?;
        let (i, safi) = be_u8(i)?;
        Ok((i, (afi, safi)))
    };
    let (rest, (afi_code, safi)) = hdr(v).map_err(|_| "MP_UNREACH_NLRI too short".to_string())?;
    let af = AfiSafi::new(afi_code, safi);
    Ok(MpUnreach {
        afi_safi: af,
        nlri: decode_mp_nlri(ctx, af, rest)?,
    })
}

impl PathAttribute {
    /// An attribute with the standard flags for its type.
    pub fn new(value: Attr) -> Self {
        let flags = expected_flags(value.code()).unwrap_or(attr::FLAG_OPTIONAL);
        PathAttribute { flags, value }
    }

    pub fn code(&self) -> u8 {
        self.value.code()
    }

    /// The attribute as it is passed on to another peer: an unrecognized
    /// optional transitive attribute gets the Partial bit (RFC 4271 §5).
    pub fn for_propagation(&self) -> PathAttribute {
        let mut a = self.clone();
        if matches!(a.value, Attr::Unknown { .. }) && a.flags & attr::FLAG_TRANSITIVE != 0 {
            a.flags |= attr::FLAG_PARTIAL;
        }
        a
    }

    /// Appends flags, type, length and value. The Extended Length bit is
    /// kept as set, and added when the value needs it.
    pub fn encode(&self, ctx: &Ctx, out: &mut BytesMut) {
        let start = out.len();
        out.put_u8(self.flags);
        out.put_u8(self.code());
        out.put_u16(0);
        self.value.encode_value(ctx, out);
        let len = out.len() - start - 4;
        if self.flags & attr::FLAG_EXTENDED_LENGTH != 0 || len > 255 {
            out[start] |= attr::FLAG_EXTENDED_LENGTH;
            out[start + 2..start + 4].copy_from_slice(&(len as u16).to_be_bytes());
        } else {
            out[start + 2] = len as u8;
            out.copy_within(start + 4.., start + 3);
            out.truncate(out.len() - 1);
        }
    }
}

impl fmt::Display for PathAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = attr::name(self.code());
        let list = |f: &mut fmt::Formatter<'_>, items: &mut dyn Iterator<Item = String>| {
            write!(f, "{name}")?;
            for s in items {
                write!(f, " {s}")?;
            }
            Ok(())
        };
        match &self.value {
            Attr::Origin(o) => write!(f, "{name} {o}"),
            Attr::AsPath(p) | Attr::As4Path(p) => write!(f, "{name} {p}"),
            Attr::NextHop(a) | Attr::OriginatorId(a) => write!(f, "{name} {a}"),
            Attr::MultiExitDisc(v) | Attr::LocalPref(v) => write!(f, "{name} {v}"),
            Attr::AtomicAggregate => write!(f, "{name}"),
            Attr::Aggregator(a) | Attr::As4Aggregator(a) => {
                write!(f, "{name} {} {}", a.asn, a.address)
            }
            Attr::Communities(c) => list(f, &mut c.iter().map(|x| x.to_string())),
            Attr::ClusterList(c) => list(f, &mut c.iter().map(|x| x.to_string())),
            Attr::ExtendedCommunities(c) => list(f, &mut c.iter().map(|x| x.to_string())),
            Attr::LargeCommunity(c) => list(f, &mut c.iter().map(|x| x.to_string())),
            Attr::MpReachNlri(m) => {
                write!(f, "{name} {} next-hop {}", m.afi_safi, m.next_hop)?;
                write_mp_nlri(f, &m.nlri)
            }
            Attr::MpUnreachNlri(m) => {
                write!(f, "{name} {}", m.afi_safi)?;
                write_mp_nlri(f, &m.nlri)
            }
            Attr::Unknown { code, data } => write!(
                f,
                "attribute {code} flags 0x{:02x} {}",
                self.flags,
                super::ser::to_hex(data)
            ),
        }
    }
}

fn write_mp_nlri(f: &mut fmt::Formatter<'_>, nlri: &MpNlri) -> fmt::Result {
    match nlri {
        MpNlri::Prefixes(p) => {
            for n in p {
                write!(f, "\n    {n}")?;
            }
            Ok(())
        }
        MpNlri::Raw(b) if b.is_empty() => Ok(()),
        MpNlri::Raw(b) => write!(f, "\n    raw {}", super::ser::to_hex(b)),
    }
}

/// RFC 6793 §4.2.3: the AS path and aggregator of a route received from a
/// 2-octet-AS speaker, merging AS4_PATH and AS4_AGGREGATOR. Call it only
/// for sessions without the 4-octet AS capability; on others, AS4_PATH and
/// AS4_AGGREGATOR are ignored.
pub fn reconcile_as4(
    as_path: &AsPath,
    as4_path: Option<&AsPath>,
    aggregator: Option<&Aggregator>,
    as4_aggregator: Option<&Aggregator>,
) -> (AsPath, Option<Aggregator>) {
    // An AGGREGATOR that does not carry AS_TRANS means the AS4 attributes
    // were added by someone else: ignore both.
    if let Some(agg) = aggregator
        && agg.asn != AS_TRANS as u32
    {
        return (as_path.clone(), Some(*agg));
    }
    let aggregator = as4_aggregator.or(aggregator).copied();
    let Some(as4) = as4_path else {
        return (as_path.clone(), aggregator);
    };
    // Confederation segments are not valid in AS4_PATH (RFC 6793 §3).
    let as4_segments: Vec<AsSegment> = as4
        .segments
        .iter()
        .filter(|s| matches!(s.kind, SegmentType::Sequence | SegmentType::Set))
        .cloned()
        .collect();
    let as4 = AsPath {
        segments: as4_segments,
    };
    let n2 = as_path.path_len();
    let n4 = as4.path_len();
    if n2 < n4 {
        return (as_path.clone(), aggregator);
    }
    // Keep the leading n2 - n4 ASes of AS_PATH, then append AS4_PATH.
    let mut keep = n2 - n4;
    let mut segments = Vec::new();
    for s in &as_path.segments {
        if keep == 0 {
            break;
        }
        match s.kind {
            SegmentType::Sequence => {
                let take = keep.min(s.asns.len());
                segments.push(AsSegment {
                    kind: s.kind,
                    asns: s.asns[..take].to_vec(),
                });
                keep -= take;
            }
            SegmentType::Set => {
                segments.push(s.clone());
                keep -= 1;
            }
            // Confederation segments count zero and stay in place.
            SegmentType::ConfedSequence | SegmentType::ConfedSet => segments.push(s.clone()),
        }
    }
    segments.extend(as4.segments);
    (AsPath { segments }, aggregator)
}
