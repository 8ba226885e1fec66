//! IP prefixes in NLRI and withdrawn-routes fields (RFC 4271 §4.3,
//! RFC 4760 §5), with RFC 7911 path identifiers.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use nom::bytes::complete::take;
use nom::number::complete::{be_u8, be_u32};
use serde::Serialize;

/// One prefix, with its ADD-PATH path identifier when the session
/// negotiated ADD-PATH for its family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Nlri {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_id: Option<u32>,
    pub prefix: IpNet,
}

impl Nlri {
    pub fn new(prefix: IpNet) -> Self {
        Nlri {
            path_id: None,
            prefix,
        }
    }

    pub fn with_path_id(prefix: IpNet, path_id: u32) -> Self {
        Nlri {
            path_id: Some(path_id),
            prefix,
        }
    }
}

impl fmt::Display for Nlri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.prefix)?;
        if let Some(id) = self.path_id {
            write!(f, " path-id {id}")?;
        }
        Ok(())
    }
}

/// Why a prefix field could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PrefixError {
    /// The prefix or path id runs past the end of the field.
    Truncated,
    /// A prefix length above 32 (IPv4) or 128 (IPv6).
    BadLength(u8),
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrefixError::Truncated => write!(f, "prefix runs past the end of its field"),
            PrefixError::BadLength(l) => write!(f, "prefix length {l} is too long"),
        }
    }
}

/// Decodes a run of prefixes, appending to `out`. `v6` picks the address
/// family and `add_path` whether each prefix has a 4-octet path id.
/// Host bits past the prefix length are kept as sent, so the prefix
/// re-encodes to the same octets; [`IpNet::trunc`] clears them.
pub(crate) fn decode_prefixes(
    mut i: &[u8],
    v6: bool,
    add_path: bool,
    out: &mut Vec<Nlri>,
) -> Result<(), PrefixError> {
    let trunc = |_: nom::Err<()>| PrefixError::Truncated;
    let max = if v6 { 128 } else { 32 };
    // Each prefix takes at least one octet, so this bounds the allocation
    // by the input size.
    out.reserve(i.len() / if add_path { 6 } else { 2 });
    while !i.is_empty() {
        let path_id = if add_path {
            let (r, id) = be_u32::<_, ()>(i).map_err(trunc)?;
            i = r;
            Some(id)
        } else {
            None
        };
        let (r, len) = be_u8::<_, ()>(i).map_err(trunc)?;
        if len > max {
            return Err(PrefixError::BadLength(len));
        }
        let (r, octets) = take::<_, _, ()>(len.div_ceil(8) as usize)(r).map_err(trunc)?;
        i = r;
        let prefix = if v6 {
            let mut a = [0u8; 16];
            a[..octets.len()].copy_from_slice(octets);
            IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from(a), len))
        } else {
            let mut a = [0u8; 4];
            a[..octets.len()].copy_from_slice(octets);
            IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(a), len))
        };
        out.push(Nlri { path_id, prefix });
    }
    Ok(())
}

/// Encodes one prefix; the path id is written when `add_path` is set
/// (0 when the NLRI has none).
#[inline]
pub(crate) fn encode_prefix(n: &Nlri, add_path: bool, out: &mut BytesMut) {
    if add_path {
        out.put_u32(n.path_id.unwrap_or(0));
    }
    let len = n.prefix.prefix_len();
    out.put_u8(len);
    let octets = len.div_ceil(8) as usize;
    match n.prefix {
        IpNet::V4(p) => out.put_slice(&p.addr().octets()[..octets]),
        IpNet::V6(p) => out.put_slice(&p.addr().octets()[..octets]),
    }
}

/// The encoded size of one prefix.
pub fn encoded_len(n: &Nlri, add_path: bool) -> usize {
    1 + n.prefix.prefix_len().div_ceil(8) as usize + if add_path { 4 } else { 0 }
}
