//! OPEN messages (RFC 4271 §4.2) with capabilities (RFC 5492) and extended
//! optional parameters length (RFC 9072).

use std::fmt;
use std::net::Ipv4Addr;

use bytes::{BufMut, Bytes, BytesMut};
use nom::bytes::complete::take;
use nom::number::complete::{be_u8, be_u16, be_u24, be_u32};
use serde::Serialize;

use super::iana::{AS_TRANS, cap, err};
use super::{AfiSafi, DecodeError};

type IResult<'a, T> = nom::IResult<&'a [u8], T, ()>;

/// The only optional parameter type in use (RFC 5492).
const PARAM_CAPABILITIES: u8 = 2;
/// RFC 9072 §2: this value in the Non-Ext OP Type position marks the
/// extended format.
const PARAM_EXTENDED: u8 = 255;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Open {
    /// The 2-octet "My Autonomous System" field; AS_TRANS when the
    /// speaker's AS needs 4 octets (RFC 6793).
    pub asn: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    /// Capabilities, grouped as they were in optional parameters: some
    /// speakers put all in one parameter, others one per parameter.
    pub params: Vec<Vec<Capability>>,
    /// The optional parameters used the RFC 9072 extended length format.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub extended_params: bool,
}

/// ADD-PATH directions (RFC 7911 §4).
pub mod add_path_mode {
    pub const RECEIVE: u8 = 1;
    pub const SEND: u8 = 2;
    pub const BOTH: u8 = 3;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AddPathFamily {
    pub afi_safi: AfiSafi,
    /// 1 receive, 2 send, 3 both.
    pub mode: u8,
}

impl AddPathFamily {
    pub fn receive(&self) -> bool {
        self.mode & add_path_mode::RECEIVE != 0
    }
    pub fn send(&self) -> bool {
        self.mode & add_path_mode::SEND != 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExtendedNextHop {
    pub afi: u16,
    pub safi: u16,
    pub next_hop_afi: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GracefulRestart {
    /// The four high bits of the first octet: 0x8 Restart State (R),
    /// 0x4 Graceful Notification (N, RFC 8538).
    pub flags: u8,
    /// Restart time in seconds (12 bits).
    pub restart_time: u16,
    pub families: Vec<GrFamily>,
}

impl GracefulRestart {
    pub const RESTART_STATE: u8 = 0x8;
    pub const NOTIFICATION: u8 = 0x4;

    pub fn restarting(&self) -> bool {
        self.flags & Self::RESTART_STATE != 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GrFamily {
    pub afi_safi: AfiSafi,
    /// Per-family flags; 0x80 is "forwarding state preserved".
    pub flags: u8,
}

impl GrFamily {
    pub const FORWARDING: u8 = 0x80;

    pub fn forwarding_preserved(&self) -> bool {
        self.flags & Self::FORWARDING != 0
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LlgrFamily {
    pub afi_safi: AfiSafi,
    pub flags: u8,
    /// Long-lived stale time in seconds (24 bits).
    pub stale_time: u32,
}

/// A capability (RFC 5492) as a typed value. Unknown capabilities keep
/// their raw bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "capability", rename_all = "kebab-case")]
pub enum Capability {
    /// RFC 4760.
    Multiprotocol { afi_safi: AfiSafi },
    /// RFC 2918.
    RouteRefresh,
    /// RFC 8950.
    ExtendedNextHop { families: Vec<ExtendedNextHop> },
    /// RFC 8654.
    ExtendedMessage,
    /// RFC 4724.
    GracefulRestart(GracefulRestart),
    /// RFC 6793.
    FourOctetAs { asn: u32 },
    /// RFC 7911.
    AddPath { families: Vec<AddPathFamily> },
    /// RFC 7313.
    EnhancedRouteRefresh,
    /// RFC 9494.
    LongLivedGracefulRestart { families: Vec<LlgrFamily> },
    /// draft-walton-bgp-hostname-capability, sent by FRR.
    Fqdn { hostname: String, domain: String },
    Unknown {
        code: u8,
        #[serde(serialize_with = "super::ser::hex")]
        data: Bytes,
    },
}

impl Capability {
    pub fn code(&self) -> u8 {
        match self {
            Capability::Multiprotocol { .. } => cap::MULTIPROTOCOL,
            Capability::RouteRefresh => cap::ROUTE_REFRESH,
            Capability::ExtendedNextHop { .. } => cap::EXTENDED_NEXT_HOP,
            Capability::ExtendedMessage => cap::EXTENDED_MESSAGE,
            Capability::GracefulRestart(_) => cap::GRACEFUL_RESTART,
            Capability::FourOctetAs { .. } => cap::FOUR_OCTET_AS,
            Capability::AddPath { .. } => cap::ADD_PATH,
            Capability::EnhancedRouteRefresh => cap::ENHANCED_ROUTE_REFRESH,
            Capability::LongLivedGracefulRestart { .. } => cap::LONG_LIVED_GR,
            Capability::Fqdn { .. } => cap::FQDN,
            Capability::Unknown { code, .. } => *code,
        }
    }

    /// Decodes one capability value. `None` means the value is malformed.
    fn decode_value(code: u8, v: &[u8]) -> Option<Capability> {
        fn all<'a, T>(v: &'a [u8], mut f: impl FnMut(&'a [u8]) -> IResult<'a, T>) -> Option<T> {
            match f(v) {
                Ok(([], t)) => Some(t),
                _ => None,
            }
        }
        fn list<'a, T>(
            v: &'a [u8],
            size: usize,
            mut f: impl FnMut(&'a [u8]) -> IResult<'a, T>,
        ) -> Option<Vec<T>> {
            if !v.len().is_multiple_of(size) {
                return None;
            }
            v.chunks_exact(size).map(|c| all(c, &mut f)).collect()
        }
        fn afi_safi_u8(i: &[u8]) -> IResult<'_, AfiSafi> {
            let (i, afi) = be_u16(i)?;
            let (i, safi) = be_u8(i)?;
            Ok((i, AfiSafi::new(afi, safi)))
        }
        Some(match code {
            cap::MULTIPROTOCOL => all(v, |i| {
                let (i, afi) = be_u16(i)?;
                let (i, _reserved) = be_u8(i)?;
                let (i, safi) = be_u8(i)?;
                Ok((
                    i,
                    Capability::Multiprotocol {
                        afi_safi: AfiSafi::new(afi, safi),
                    },
                ))
            })?,
            cap::ROUTE_REFRESH if v.is_empty() => Capability::RouteRefresh,
            cap::EXTENDED_MESSAGE if v.is_empty() => Capability::ExtendedMessage,
            cap::ENHANCED_ROUTE_REFRESH if v.is_empty() => Capability::EnhancedRouteRefresh,
            cap::EXTENDED_NEXT_HOP => Capability::ExtendedNextHop {
                families: list(v, 6, |i| {
                    let (i, afi) = be_u16(i)?;
                    let (i, safi) = be_u16(i)?;
                    let (i, next_hop_afi) = be_u16(i)?;
                    Ok((
                        i,
                        ExtendedNextHop {
                            afi,
                            safi,
                            next_hop_afi,
                        },
                    ))
                })?,
            },
            cap::GRACEFUL_RESTART => {
                let (head, rest) = v.split_at_checked(2)?;
                let word = u16::from_be_bytes([head[0], head[1]]);
                Capability::GracefulRestart(GracefulRestart {
                    flags: (word >> 12) as u8,
                    restart_time: word & 0x0fff,
                    families: list(rest, 4, |i| {
                        let (i, afi_safi) = afi_safi_u8(i)?;
                        let (i, flags) = be_u8(i)?;
                        Ok((i, GrFamily { afi_safi, flags }))
                    })?,
                })
            }
            cap::FOUR_OCTET_AS => all(v, |i| {
                let (i, asn) = be_u32(i)?;
                Ok((i, Capability::FourOctetAs { asn }))
            })?,
            cap::ADD_PATH => Capability::AddPath {
                families: list(v, 4, |i| {
                    let (i, afi_safi) = afi_safi_u8(i)?;
                    let (i, mode) = be_u8(i)?;
                    Ok((i, AddPathFamily { afi_safi, mode }))
                })?,
            },
            cap::LONG_LIVED_GR => Capability::LongLivedGracefulRestart {
                families: list(v, 7, |i| {
                    let (i, afi_safi) = afi_safi_u8(i)?;
                    let (i, flags) = be_u8(i)?;
                    let (i, stale_time) = be_u24(i)?;
                    Ok((
                        i,
                        LlgrFamily {
                            afi_safi,
                            flags,
                            stale_time,
                        },
                    ))
                })?,
            },
            cap::FQDN => {
                let text = |i| -> IResult<'_, String> {
                    let (i, len) = be_u8(i)?;
                    let (i, s) = take(len as usize)(i)?;
                    let s = std::str::from_utf8(s).map_err(|_| nom::Err::Error(()))?;
                    Ok((i, s.to_owned()))
                };
                match all(v, |i| {
                    let (i, hostname) = text(i)?;
                    let (i, domain) = text(i)?;
                    Ok((i, (hostname, domain)))
                }) {
                    Some((hostname, domain)) => Capability::Fqdn { hostname, domain },
                    // Not UTF-8 or odd lengths: keep the bytes, since this
                    // capability is informational only.
                    None => Capability::Unknown {
                        code,
                        data: Bytes::copy_from_slice(v),
                    },
                }
            }
            cap::ROUTE_REFRESH | cap::EXTENDED_MESSAGE | cap::ENHANCED_ROUTE_REFRESH => {
                return None;
            }
            _ => Capability::Unknown {
                code,
                data: Bytes::copy_from_slice(v),
            },
        })
    }

    fn encode(&self, out: &mut BytesMut) {
        out.put_u8(self.code());
        let len_at = out.len();
        out.put_u8(0);
        match self {
            Capability::Multiprotocol { afi_safi } => {
                out.put_u16(afi_safi.afi);
                out.put_u8(0);
                out.put_u8(afi_safi.safi);
            }
            Capability::RouteRefresh
            | Capability::ExtendedMessage
            | Capability::EnhancedRouteRefresh => {}
            Capability::ExtendedNextHop { families } => {
                for f in families {
                    out.put_u16(f.afi);
                    out.put_u16(f.safi);
                    out.put_u16(f.next_hop_afi);
                }
            }
            Capability::GracefulRestart(gr) => {
                out.put_u16(((gr.flags as u16 & 0xf) << 12) | (gr.restart_time & 0x0fff));
                for f in &gr.families {
                    out.put_u16(f.afi_safi.afi);
                    out.put_u8(f.afi_safi.safi);
                    out.put_u8(f.flags);
                }
            }
            Capability::FourOctetAs { asn } => out.put_u32(*asn),
            Capability::AddPath { families } => {
                for f in families {
                    out.put_u16(f.afi_safi.afi);
                    out.put_u8(f.afi_safi.safi);
                    out.put_u8(f.mode);
                }
            }
            Capability::LongLivedGracefulRestart { families } => {
                for f in families {
                    out.put_u16(f.afi_safi.afi);
                    out.put_u8(f.afi_safi.safi);
                    out.put_u8(f.flags);
                    let t = f.stale_time.to_be_bytes();
                    out.put_slice(&t[1..]);
                }
            }
            Capability::Fqdn { hostname, domain } => {
                for s in [hostname, domain] {
                    let b = &s.as_bytes()[..s.len().min(255)];
                    out.put_u8(b.len() as u8);
                    out.put_slice(b);
                }
            }
            Capability::Unknown { data, .. } => out.put_slice(data),
        }
        let len = out.len() - len_at - 1;
        // A capability value is at most 255 octets (RFC 5492 §4); callers
        // build capabilities within that limit.
        out[len_at] = len.min(255) as u8;
    }
}

impl Open {
    /// An OPEN with all capabilities in one optional parameter, the way
    /// BIRD and FRR send it. A 4-octet `asn` goes in as AS_TRANS.
    pub fn new(asn: u32, hold_time: u16, bgp_id: Ipv4Addr, caps: Vec<Capability>) -> Self {
        Open {
            asn: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            params: if caps.is_empty() { vec![] } else { vec![caps] },
            extended_params: false,
        }
    }

    /// All capabilities, whatever parameter they came in.
    pub fn capabilities(&self) -> impl Iterator<Item = &Capability> {
        self.params.iter().flatten()
    }

    /// The speaker's AS: from the 4-octet AS capability if present,
    /// otherwise the 2-octet field (RFC 6793 §4.1).
    pub fn four_octet_asn(&self) -> u32 {
        self.capabilities()
            .find_map(|c| match c {
                Capability::FourOctetAs { asn } => Some(*asn),
                _ => None,
            })
            .unwrap_or(self.asn as u32)
    }

    /// The RFC 4271 §6.2 checks that need the session's configuration:
    /// the peer's AS (Bad Peer AS) and, on iBGP, an identifier equal to
    /// ours (Bad BGP Identifier, RFC 6286 §2.2). `expected_as` is `None`
    /// for a peer whose AS is not configured (a dynamic range accepting
    /// any AS).
    pub fn check_peer(
        &self,
        expected_as: Option<u32>,
        local_as: u32,
        local_id: Ipv4Addr,
    ) -> Result<(), DecodeError> {
        let asn = self.four_octet_asn();
        if let Some(want) = expected_as
            && asn != want
        {
            return Err(DecodeError::open(
                err::BAD_PEER_AS,
                format!("peer says AS {asn}, configured as AS {want}"),
            ));
        }
        if asn == local_as && self.bgp_id == local_id {
            return Err(DecodeError::open(
                err::BAD_BGP_IDENTIFIER,
                format!(
                    "iBGP peer uses our own BGP identifier {local_id}; give one side another router id"
                ),
            ));
        }
        Ok(())
    }

    /// RFC 5492 §3: capabilities we require that the peer did not offer
    /// get Unsupported Capability, with the missing capabilities as data.
    /// A required capability matches an offered one of the same code and,
    /// for multiprotocol, the same family.
    pub fn check_required(&self, required: &[Capability]) -> Result<(), DecodeError> {
        let offered = |r: &Capability| {
            self.capabilities().any(|c| match (r, c) {
                (
                    Capability::Multiprotocol { afi_safi: a },
                    Capability::Multiprotocol { afi_safi: b },
                ) => a == b,
                _ => r.code() == c.code(),
            })
        };
        let missing: Vec<&Capability> = required.iter().filter(|r| !offered(r)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let mut data = BytesMut::new();
        for c in &missing {
            c.encode(&mut data);
        }
        let names: Vec<String> = missing.iter().map(|c| c.to_string()).collect();
        Err(DecodeError::new(
            err::OPEN_MESSAGE,
            err::UNSUPPORTED_CAPABILITY,
            data.freeze(),
            format!("peer lacks required capability: {}", names.join(", ")),
        ))
    }

    /// RFC 4271 §6.2 checks that need nothing but the message itself:
    /// version, hold time, BGP identifier and the optional parameters.
    /// Peer AS and identifier collisions belong to the session.
    pub(crate) fn decode_body(body: &[u8]) -> Result<Open, DecodeError> {
        let fixed = |i| -> IResult<'_, (u8, u16, u16, u32, u8)> {
            let (i, version) = be_u8(i)?;
            let (i, asn) = be_u16(i)?;
            let (i, hold) = be_u16(i)?;
            let (i, id) = be_u32(i)?;
            let (i, opt_len) = be_u8(i)?;
            Ok((i, (version, asn, hold, id, opt_len)))
        };
        let (rest, (version, asn, hold_time, id, opt_len)) =
            fixed(body).map_err(|_| DecodeError::open(err::UNSPECIFIC, "OPEN too short"))?;
        if version != 4 {
            // RFC 4271 §6.2: data is the largest locally supported version.
            return Err(DecodeError::new(
                err::OPEN_MESSAGE,
                err::UNSUPPORTED_VERSION,
                Bytes::from_static(&[0, 4]),
                format!("BGP version {version} is not supported, only 4"),
            ));
        }
        // RFC 4271 §6.2: "MUST reject Hold Time values of one or two seconds".
        if hold_time == 1 || hold_time == 2 {
            return Err(DecodeError::open(
                err::UNACCEPTABLE_HOLD_TIME,
                format!("hold time {hold_time} s: must be 0 or at least 3"),
            ));
        }
        // RFC 6286 §2.2: the BGP Identifier is a non-zero 4-octet number.
        if id == 0 {
            return Err(DecodeError::open(
                err::BAD_BGP_IDENTIFIER,
                "BGP identifier 0.0.0.0",
            ));
        }
        let malformed = |why: &str| DecodeError::open(err::UNSPECIFIC, why.to_string());
        // RFC 9072 §2: Non-Ext OP Len may be 255 with Non-Ext OP Type 255,
        // followed by a 2-octet length; parameters then have 2-octet lengths.
        let extended_params = opt_len == 255 && rest.first() == Some(&PARAM_EXTENDED);
        let (params_raw, param_len_size) = if extended_params {
            let len = rest
                .get(1..3)
                .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
                .ok_or_else(|| malformed("truncated extended optional parameters length"))?;
            (&rest[3..], len)
        } else {
            (rest, opt_len as usize)
        };
        let want = param_len_size;
        if params_raw.len() != want {
            return Err(malformed(&format!(
                "optional parameters length {want} but {} octets follow",
                params_raw.len()
            )));
        }
        let mut params = Vec::new();
        let mut i = params_raw;
        while !i.is_empty() {
            let hdr = |i| -> IResult<'_, (u8, &[u8])> {
                let (i, ty) = be_u8(i)?;
                let (i, len) = if extended_params {
                    be_u16(i)?
                } else {
                    let (i, l) = be_u8(i)?;
                    (i, l as u16)
                };
                let (i, v) = take(len as usize)(i)?;
                Ok((i, (ty, v)))
            };
            let (next, (ty, value)) =
                hdr(i).map_err(|_| malformed("optional parameter overruns the OPEN"))?;
            i = next;
            if ty != PARAM_CAPABILITIES {
                // RFC 4271 §6.2 (type 1, authentication, is deprecated too).
                return Err(DecodeError::open(
                    err::UNSUPPORTED_OPTIONAL_PARAMETER,
                    format!("optional parameter type {ty} is not supported"),
                ));
            }
            params.push(decode_caps(value)?);
        }
        Ok(Open {
            asn,
            hold_time,
            bgp_id: Ipv4Addr::from(id),
            params,
            extended_params,
        })
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) {
        out.put_u8(4);
        out.put_u16(self.asn);
        out.put_u16(self.hold_time);
        out.put_u32(self.bgp_id.into());
        let groups: Vec<BytesMut> = self
            .params
            .iter()
            .map(|group| {
                let mut caps = BytesMut::new();
                for c in group {
                    c.encode(&mut caps);
                }
                caps
            })
            .collect();
        // RFC 9072 §2: the extended format is needed once the parameters
        // (or one of them) outgrow a one-octet length.
        let plain_len: usize = groups.iter().map(|g| g.len() + 2).sum();
        let extended =
            self.extended_params || plain_len > 255 || groups.iter().any(|g| g.len() > 255);
        let mut params = BytesMut::new();
        for caps in &groups {
            params.put_u8(PARAM_CAPABILITIES);
            if extended {
                params.put_u16(caps.len() as u16);
            } else {
                params.put_u8(caps.len() as u8);
            }
            params.put_slice(caps);
        }
        if extended {
            out.put_u8(255);
            out.put_u8(PARAM_EXTENDED);
            out.put_u16(params.len() as u16);
        } else {
            out.put_u8(params.len() as u8);
        }
        out.put_slice(&params);
    }
}

/// Decodes the capabilities of one optional parameter. A recognised
/// capability that is malformed gets OPEN Message Error / Unspecific
/// (RFC 4271 §6.2: "recognized, but is malformed").
fn decode_caps(mut i: &[u8]) -> Result<Vec<Capability>, DecodeError> {
    let mut caps = Vec::new();
    while !i.is_empty() {
        let tlv = |i| -> IResult<'_, (u8, &[u8])> {
            let (i, code) = be_u8(i)?;
            let (i, len) = be_u8(i)?;
            let (i, v) = take(len as usize)(i)?;
            Ok((i, (code, v)))
        };
        let (next, (code, value)) = tlv(i).map_err(|_| {
            DecodeError::open(
                err::UNSPECIFIC,
                "capability overruns its optional parameter",
            )
        })?;
        i = next;
        let c = Capability::decode_value(code, value).ok_or_else(|| {
            DecodeError::open(
                err::UNSPECIFIC,
                format!(
                    "malformed capability {code} ({} octets: {})",
                    value.len(),
                    super::ser::to_hex(value)
                ),
            )
        })?;
        caps.push(c);
    }
    Ok(caps)
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Capability::Multiprotocol { afi_safi } => write!(f, "multiprotocol {afi_safi}"),
            Capability::RouteRefresh => write!(f, "route-refresh"),
            Capability::ExtendedNextHop { families } => {
                write!(f, "extended-next-hop")?;
                for x in families {
                    write!(f, " afi{}/safi{}->afi{}", x.afi, x.safi, x.next_hop_afi)?;
                }
                Ok(())
            }
            Capability::ExtendedMessage => write!(f, "extended-message"),
            Capability::GracefulRestart(gr) => {
                write!(f, "graceful-restart time {}", gr.restart_time)?;
                if gr.restarting() {
                    write!(f, " restarting")?;
                }
                if gr.flags & GracefulRestart::NOTIFICATION != 0 {
                    write!(f, " notification")?;
                }
                for x in &gr.families {
                    write!(f, " {}", x.afi_safi)?;
                    if x.forwarding_preserved() {
                        write!(f, "(forwarding)")?;
                    }
                }
                Ok(())
            }
            Capability::FourOctetAs { asn } => write!(f, "4-octet-as {asn}"),
            Capability::AddPath { families } => {
                write!(f, "add-path")?;
                for x in families {
                    let dir = match x.mode {
                        1 => "receive",
                        2 => "send",
                        3 => "send/receive",
                        _ => "invalid",
                    };
                    write!(f, " {} {dir}", x.afi_safi)?;
                }
                Ok(())
            }
            Capability::EnhancedRouteRefresh => write!(f, "enhanced-route-refresh"),
            Capability::LongLivedGracefulRestart { families } => {
                write!(f, "long-lived-graceful-restart")?;
                for x in families {
                    write!(f, " {} stale {}s", x.afi_safi, x.stale_time)?;
                }
                Ok(())
            }
            Capability::Fqdn { hostname, domain } => {
                write!(f, "fqdn {}", hostname.escape_debug())?;
                if !domain.is_empty() {
                    write!(f, ".{}", domain.escape_debug())?;
                }
                Ok(())
            }
            Capability::Unknown { code, data } => {
                write!(f, "unknown capability {code}")?;
                if !data.is_empty() {
                    write!(f, " {}", super::ser::to_hex(data))?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Open {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OPEN as {} hold {} id {}",
            self.four_octet_asn(),
            self.hold_time,
            self.bgp_id
        )?;
        for c in self.capabilities() {
            write!(f, "\n  {c}")?;
        }
        Ok(())
    }
}
