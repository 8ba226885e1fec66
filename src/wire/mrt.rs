//! Reading MRT files (RFC 6396): BGP4MP / BGP4MP_ET messages and state
//! changes, and TABLE_DUMP_V2 RIB dumps, with the RFC 8050 ADD-PATH
//! subtypes. This is what `bgpdump` and route collectors use.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use ipnet::IpNet;
use serde::Serialize;

use super::nlri::decode_prefixes;
use super::update::Update;
use super::{AfiSafi, AfiSafiSet, Ctx, Message, PathAttribute, iana};

const TABLE_DUMP_V2: u16 = 13;
const BGP4MP: u16 = 16;
const BGP4MP_ET: u16 = 17;

/// Largest MRT record accepted; a BGP message is at most 65535 octets, a
/// RIB record may be larger but not without bound.
pub const MAX_RECORD_LEN: usize = 16 << 20;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MrtHeader {
    pub timestamp: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub microseconds: Option<u32>,
    #[serde(rename = "mrt_type")]
    pub kind: u16,
    pub subtype: u16,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeerEntry {
    pub bgp_id: Ipv4Addr,
    pub address: IpAddr,
    pub asn: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RibEntry {
    pub peer_index: u16,
    pub originated: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_id: Option<u32>,
    pub attributes: Vec<PathAttribute>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<super::AttrError>,
}

/// One MRT record.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "record", rename_all = "kebab-case")]
pub enum Record {
    Message {
        #[serde(flatten)]
        header: MrtHeader,
        peer_as: u32,
        local_as: u32,
        peer: IpAddr,
        local: IpAddr,
        /// The message, or why it could not be decoded.
        #[serde(serialize_with = "ser_message")]
        message: Result<Message, super::DecodeError>,
        #[serde(serialize_with = "super::ser::hex")]
        raw: Bytes,
        #[serde(skip)]
        ctx: Ctx,
    },
    StateChange {
        #[serde(flatten)]
        header: MrtHeader,
        peer_as: u32,
        local_as: u32,
        peer: IpAddr,
        local: IpAddr,
        old_state: u16,
        new_state: u16,
    },
    PeerIndexTable {
        #[serde(flatten)]
        header: MrtHeader,
        collector_id: Ipv4Addr,
        view_name: String,
        peers: Vec<PeerEntry>,
    },
    Rib {
        #[serde(flatten)]
        header: MrtHeader,
        sequence: u32,
        prefix: IpNet,
        entries: Vec<RibEntry>,
    },
    Other {
        #[serde(flatten)]
        header: MrtHeader,
        length: usize,
    },
}

fn ser_message<S: serde::Serializer>(
    m: &Result<Message, super::DecodeError>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    match m {
        Ok(m) => m.serialize(s),
        Err(e) => {
            let mut map = s.serialize_map(Some(2))?;
            map.serialize_entry("error", &e.reason)?;
            map.serialize_entry("notification", &e.notification)?;
            map.end()
        }
    }
}

/// An MRT file that cannot be read further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MrtError {
    pub offset: usize,
    pub reason: String,
}

impl std::fmt::Display for MrtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MRT record at offset {}: {}", self.offset, self.reason)
    }
}

impl std::error::Error for MrtError {}

/// Whether `data` plausibly starts with an MRT record of a type we read.
pub fn looks_like_mrt(data: &[u8]) -> bool {
    data.len() >= 12
        && matches!(
            u16::from_be_bytes([data[4], data[5]]),
            TABLE_DUMP_V2 | BGP4MP | BGP4MP_ET
        )
        && (u32::from_be_bytes([data[8], data[9], data[10], data[11]]) as usize) <= MAX_RECORD_LEN
        && data[..16.min(data.len())] != super::MARKER[..16.min(data.len())]
}

/// Iterates over the records of an MRT file.
pub fn records(data: &[u8]) -> impl Iterator<Item = Result<Record, MrtError>> + '_ {
    let mut offset = 0usize;
    let mut peers: Vec<PeerEntry> = Vec::new();
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || offset >= data.len() {
            return None;
        }
        let here = offset;
        let fail = |reason: String| MrtError {
            offset: here,
            reason,
        };
        let rest = &data[offset..];
        let Some(h) = rest.get(..12) else {
            failed = true;
            return Some(Err(fail("truncated record header".into())));
        };
        let timestamp = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let kind = u16::from_be_bytes([h[4], h[5]]);
        let subtype = u16::from_be_bytes([h[6], h[7]]);
        let len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
        if len > MAX_RECORD_LEN {
            failed = true;
            return Some(Err(fail(format!("record length {len} is too large"))));
        }
        let Some(mut body) = rest.get(12..12 + len) else {
            failed = true;
            return Some(Err(fail(format!(
                "record of {len} octets is truncated ({} left)",
                rest.len() - 12
            ))));
        };
        offset += 12 + len;
        let mut microseconds = None;
        if kind == BGP4MP_ET {
            let Some(us) = body.get(..4) else {
                return Some(Err(fail("BGP4MP_ET record without microseconds".into())));
            };
            microseconds = Some(u32::from_be_bytes([us[0], us[1], us[2], us[3]]));
            body = &body[4..];
        }
        let header = MrtHeader {
            timestamp,
            microseconds,
            kind,
            subtype,
        };
        let rec = match kind {
            BGP4MP | BGP4MP_ET => bgp4mp(header, body),
            TABLE_DUMP_V2 => table_dump_v2(header, body, &mut peers),
            _ => Ok(Record::Other {
                header,
                length: len,
            }),
        };
        Some(rec.map_err(fail))
    })
}

struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let (a, b) = self
            .0
            .split_at_checked(n)
            .ok_or_else(|| "record truncated".to_string())?;
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn ip(&mut self, v6: bool) -> Result<IpAddr, String> {
        Ok(if v6 {
            IpAddr::V6(Ipv6Addr::from(
                <[u8; 16]>::try_from(self.take(16)?).unwrap(),
            ))
        } else {
            IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(self.take(4)?).unwrap()))
        })
    }
}

/// RFC 6396 §4.4 and RFC 8050 §3.
fn bgp4mp(header: MrtHeader, body: &[u8]) -> Result<Record, String> {
    let st = header.subtype;
    // 0 STATE_CHANGE, 1 MESSAGE, 4 MESSAGE_AS4, 5 STATE_CHANGE_AS4,
    // 6 MESSAGE_LOCAL, 7 MESSAGE_AS4_LOCAL, 8-11 the ADD-PATH variants.
    if !matches!(st, 0 | 1 | 4..=11) {
        return Ok(Record::Other {
            header,
            length: body.len(),
        });
    }
    let as4 = matches!(st, 4 | 5 | 7 | 9 | 11);
    let add_path = matches!(st, 8..=11);
    let mut c = Cur(body);
    let (peer_as, local_as) = if as4 {
        (c.u32()?, c.u32()?)
    } else {
        (c.u16()? as u32, c.u16()? as u32)
    };
    let _ifindex = c.u16()?;
    let afi = c.u16()?;
    let v6 = match afi {
        iana::afi::IPV4 => false,
        iana::afi::IPV6 => true,
        _ => return Err(format!("unknown address family {afi}")),
    };
    let peer = c.ip(v6)?;
    let local = c.ip(v6)?;
    if matches!(st, 0 | 5) {
        return Ok(Record::StateChange {
            header,
            peer_as,
            local_as,
            peer,
            local,
            old_state: c.u16()?,
            new_state: c.u16()?,
        });
    }
    let raw = c.0;
    let all: AfiSafiSet = [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST]
        .into_iter()
        .collect();
    let ctx = Ctx {
        four_octet_as: as4,
        extended_message: true,
        add_path_rx: if add_path { all } else { AfiSafiSet::EMPTY },
        add_path_tx: if add_path { all } else { AfiSafiSet::EMPTY },
    };
    Ok(Record::Message {
        header,
        peer_as,
        local_as,
        peer,
        local,
        message: Message::decode(&ctx, raw),
        raw: Bytes::copy_from_slice(raw),
        ctx,
    })
}

/// RFC 6396 §4.3 and RFC 8050 §4.
fn table_dump_v2(
    header: MrtHeader,
    body: &[u8],
    peers: &mut Vec<PeerEntry>,
) -> Result<Record, String> {
    let mut c = Cur(body);
    match header.subtype {
        1 => {
            let collector_id = Ipv4Addr::from(c.u32()?);
            let name_len = c.u16()? as usize;
            let view_name = String::from_utf8_lossy(c.take(name_len)?).into_owned();
            let count = c.u16()? as usize;
            let mut list = Vec::with_capacity(count.min(c.0.len() / 7));
            for _ in 0..count {
                let ty = c.u8()?;
                let bgp_id = Ipv4Addr::from(c.u32()?);
                let address = c.ip(ty & 1 != 0)?;
                let asn = if ty & 2 != 0 {
                    c.u32()?
                } else {
                    c.u16()? as u32
                };
                list.push(PeerEntry {
                    bgp_id,
                    address,
                    asn,
                });
            }
            peers.clone_from(&list);
            Ok(Record::PeerIndexTable {
                header,
                collector_id,
                view_name,
                peers: list,
            })
        }
        // 2-5 RIB_{IPV4,IPV6}_{UNICAST,MULTICAST}; 8-11 their ADD-PATH forms.
        st @ (2..=5 | 8..=11) => {
            let add_path = st >= 8;
            let v6 = matches!(st, 4 | 5 | 10 | 11);
            let af = AfiSafi::new(
                if v6 { iana::afi::IPV6 } else { iana::afi::IPV4 },
                if matches!(st, 3 | 5 | 9 | 11) { 2 } else { 1 },
            );
            let sequence = c.u32()?;
            let plen = c.u8()?;
            let pbytes = c.take((plen as usize).div_ceil(8))?;
            let mut field = Vec::with_capacity(1 + pbytes.len());
            field.push(plen);
            field.extend_from_slice(pbytes);
            let mut prefixes = Vec::with_capacity(1);
            decode_prefixes(&field, v6, false, &mut prefixes).map_err(|e| e.to_string())?;
            let prefix = prefixes[0].prefix;
            let count = c.u16()? as usize;
            let mut entries = Vec::with_capacity(count.min(c.0.len() / 8));
            for _ in 0..count {
                let peer_index = c.u16()?;
                let originated = c.u32()?;
                let path_id = if add_path { Some(c.u32()?) } else { None };
                let alen = c.u16()? as usize;
                let attrs = expand_abbreviated_mp_reach(c.take(alen)?, af);
                let (attributes, errors) = decode_attributes(&attrs)?;
                entries.push(RibEntry {
                    peer_index,
                    originated,
                    path_id,
                    attributes,
                    errors,
                });
            }
            let _ = peers;
            Ok(Record::Rib {
                header,
                sequence,
                prefix,
                entries,
            })
        }
        _ => Ok(Record::Other {
            header,
            length: body.len(),
        }),
    }
}

/// TABLE_DUMP_V2 attributes always use 4-octet AS numbers (RFC 6396 §4.3.4).
fn decode_attributes(raw: &[u8]) -> Result<(Vec<PathAttribute>, Vec<super::AttrError>), String> {
    let ctx = Ctx {
        four_octet_as: true,
        ..Ctx::INITIAL
    };
    // Reuse the UPDATE decoder with an empty withdrawn field and no NLRI.
    let mut body = Vec::with_capacity(raw.len() + 4);
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&(raw.len().min(u16::MAX as usize) as u16).to_be_bytes());
    body.extend_from_slice(raw);
    let u = Update::decode_body(&ctx, &body).map_err(|e| e.to_string())?;
    Ok((u.attributes, u.errors))
}

/// RFC 6396 §4.3.4: in RIB entries, MP_REACH_NLRI holds only the next hop
/// length and address. Rewrite it into the RFC 4760 form so the UPDATE
/// attribute decoder reads it.
fn expand_abbreviated_mp_reach(raw: &[u8], af: AfiSafi) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 8);
    let mut i = raw;
    while i.len() >= 3 {
        let flags = i[0];
        let ext = flags & iana::attr::FLAG_EXTENDED_LENGTH != 0;
        let hlen = if ext { 4 } else { 3 };
        let Some(h) = i.get(..hlen) else { break };
        let len = if ext {
            u16::from_be_bytes([h[2], h[3]]) as usize
        } else {
            h[2] as usize
        };
        let Some(attr) = i.get(..hlen + len) else {
            break;
        };
        let value = &attr[hlen..];
        if h[1] == iana::attr::MP_REACH_NLRI && value.first().map(|&n| n as usize + 1) == Some(len)
        {
            let mut v = Vec::with_capacity(len + 4);
            v.extend_from_slice(&af.afi.to_be_bytes());
            v.push(af.safi);
            v.extend_from_slice(value);
            v.push(0);
            out.push(flags | iana::attr::FLAG_EXTENDED_LENGTH);
            out.push(h[1]);
            out.extend_from_slice(&(v.len() as u16).to_be_bytes());
            out.extend_from_slice(&v);
        } else {
            out.extend_from_slice(attr);
        }
        i = &i[hlen + len..];
    }
    out.extend_from_slice(i);
    out
}

/// The session a dumped message belongs to.
#[derive(Clone, Copy, Debug)]
pub struct DumpSession {
    pub peer_as: u32,
    pub local_as: u32,
    pub peer: IpAddr,
    pub local: IpAddr,
    /// The session negotiated ADD-PATH (RFC 8050 subtypes).
    pub add_path: bool,
}

/// Appends one BGP4MP_ET MESSAGE_AS4 record (RFC 6396 §4.4.3), or the
/// RFC 8050 MESSAGE_AS4_ADDPATH form, holding a received message as it came
/// off the wire.
pub fn write_bgp4mp_message(
    out: &mut Vec<u8>,
    time: std::time::SystemTime,
    s: &DumpSession,
    message: &[u8],
) {
    let DumpSession {
        peer_as,
        local_as,
        peer,
        local,
        add_path,
    } = *s;
    let since = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    // Both addresses in one family: an IPv4 peer seen on a v6 socket is
    // written as IPv4.
    let (peer, local) = match (peer, local) {
        (IpAddr::V4(p), IpAddr::V6(l)) => (
            IpAddr::V4(p),
            l.to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        ),
        (IpAddr::V6(p), IpAddr::V4(_)) => (IpAddr::V6(p), IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        pair => pair,
    };
    let v6 = peer.is_ipv6();
    let mut body = Vec::with_capacity(44 + message.len());
    body.extend_from_slice(&peer_as.to_be_bytes());
    body.extend_from_slice(&local_as.to_be_bytes());
    body.extend_from_slice(&0u16.to_be_bytes()); // interface index
    body.extend_from_slice(&(if v6 { iana::afi::IPV6 } else { iana::afi::IPV4 }).to_be_bytes());
    for a in [peer, local] {
        match a {
            IpAddr::V4(a) => body.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => body.extend_from_slice(&a.octets()),
        }
    }
    body.extend_from_slice(message);
    out.extend_from_slice(&(since.as_secs() as u32).to_be_bytes());
    out.extend_from_slice(&BGP4MP_ET.to_be_bytes());
    out.extend_from_slice(&(if add_path { 9u16 } else { 4u16 }).to_be_bytes());
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(&since.subsec_micros().to_be_bytes());
    out.extend_from_slice(&body);
}
