//! The BGP-4 wire codec, sans-IO: no tokio, no sockets.
//!
//! Decoding goes from a byte slice holding one whole message (see
//! [`frame_len`]) to a typed [`Message`]; encoding writes into a `BytesMut`.
//! Both take a [`Ctx`] holding what the session negotiated.

pub mod attrs;
pub mod error;
pub mod iana;
pub mod mrt;
pub mod nlri;
pub mod notification;
pub mod open;
pub mod pack;
pub mod refresh;
pub mod ser;
pub mod update;

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

pub use attrs::{
    Aggregator, AsPath, AsSegment, Attr, Community, ExtCommunity, LargeCommunity, MpNlri, MpReach,
    MpUnreach, NextHop, Origin, PathAttribute, SegmentType,
};
pub use error::{Action, AttrError, DecodeError, EncodeError};
pub use nlri::Nlri;
pub use notification::Notification;
pub use open::{Capability, Open};
pub use refresh::RouteRefresh;
pub use update::Update;

use iana::{err, msg};

/// The 16-octet all-ones marker (RFC 4271 §4.1).
pub const MARKER: [u8; 16] = [0xff; 16];
/// Length of the fixed header.
pub const HEADER_LEN: usize = 19;
/// Largest message without Extended Message (RFC 4271 §4.1).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Largest message with Extended Message (RFC 8654 §4).
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;

/// An address family and subsequent address family pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AfiSafi {
    pub afi: u16,
    pub safi: u8,
}

impl AfiSafi {
    pub const IPV4_UNICAST: AfiSafi = AfiSafi::new(iana::afi::IPV4, iana::safi::UNICAST);
    pub const IPV6_UNICAST: AfiSafi = AfiSafi::new(iana::afi::IPV6, iana::safi::UNICAST);
    pub const IPV4_MULTICAST: AfiSafi = AfiSafi::new(iana::afi::IPV4, iana::safi::MULTICAST);
    pub const IPV6_MULTICAST: AfiSafi = AfiSafi::new(iana::afi::IPV6, iana::safi::MULTICAST);

    pub const fn new(afi: u16, safi: u8) -> Self {
        AfiSafi { afi, safi }
    }

    /// Whether this codec decodes its NLRI into prefixes (unicast and
    /// multicast IPv4/IPv6). Other families are carried as raw bytes.
    pub fn is_ip(self) -> bool {
        matches!(self.afi, iana::afi::IPV4 | iana::afi::IPV6)
            && matches!(self.safi, iana::safi::UNICAST | iana::safi::MULTICAST)
    }

    fn bit(self) -> Option<u8> {
        match (self.afi, self.safi) {
            (iana::afi::IPV4, iana::safi::UNICAST) => Some(1),
            (iana::afi::IPV6, iana::safi::UNICAST) => Some(2),
            (iana::afi::IPV4, iana::safi::MULTICAST) => Some(4),
            (iana::afi::IPV6, iana::safi::MULTICAST) => Some(8),
            _ => None,
        }
    }
}

impl fmt::Display for AfiSafi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let afi = match self.afi {
            iana::afi::IPV4 => "ipv4",
            iana::afi::IPV6 => "ipv6",
            25 => "l2vpn",
            _ => return write!(f, "afi{}-safi{}", self.afi, self.safi),
        };
        match self.safi {
            iana::safi::UNICAST => write!(f, "{afi}-unicast"),
            iana::safi::MULTICAST => write!(f, "{afi}-multicast"),
            4 => write!(f, "{afi}-labeled-unicast"),
            70 => write!(f, "{afi}-evpn"),
            128 => write!(f, "{afi}-vpn"),
            133 => write!(f, "{afi}-flowspec"),
            s => write!(f, "{afi}-safi{s}"),
        }
    }
}

impl std::str::FromStr for AfiSafi {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ipv4-unicast" | "ipv4" => Ok(AfiSafi::IPV4_UNICAST),
            "ipv6-unicast" | "ipv6" => Ok(AfiSafi::IPV6_UNICAST),
            "ipv4-multicast" => Ok(AfiSafi::IPV4_MULTICAST),
            "ipv6-multicast" => Ok(AfiSafi::IPV6_MULTICAST),
            _ => Err(format!(
                "unknown address family '{s}': expected ipv4-unicast, ipv6-unicast, \
                 ipv4-multicast or ipv6-multicast"
            )),
        }
    }
}

impl Serialize for AfiSafi {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A set of the IP address families (see [`AfiSafi::is_ip`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AfiSafiSet(u8);

impl AfiSafiSet {
    pub const EMPTY: AfiSafiSet = AfiSafiSet(0);

    pub fn contains(self, af: AfiSafi) -> bool {
        af.bit().is_some_and(|b| self.0 & b != 0)
    }

    /// Adds `af`; families outside the IP set are ignored.
    pub fn insert(&mut self, af: AfiSafi) {
        if let Some(b) = af.bit() {
            self.0 |= b;
        }
    }

    pub fn with(mut self, af: AfiSafi) -> Self {
        self.insert(af);
        self
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = AfiSafi> {
        [
            AfiSafi::IPV4_UNICAST,
            AfiSafi::IPV6_UNICAST,
            AfiSafi::IPV4_MULTICAST,
            AfiSafi::IPV6_MULTICAST,
        ]
        .into_iter()
        .filter(move |af| self.contains(*af))
    }
}

impl FromIterator<AfiSafi> for AfiSafiSet {
    fn from_iter<I: IntoIterator<Item = AfiSafi>>(iter: I) -> Self {
        let mut set = AfiSafiSet::EMPTY;
        for af in iter {
            set.insert(af);
        }
        set
    }
}

/// What a session negotiated, which changes how messages are encoded and
/// decoded. One context serves both directions of a session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ctx {
    /// Both sides sent the 4-octet AS capability (RFC 6793): AS_PATH and
    /// AGGREGATOR carry 4-octet AS numbers.
    pub four_octet_as: bool,
    /// Both sides sent the Extended Message capability (RFC 8654).
    pub extended_message: bool,
    /// Families whose NLRI we receive with path identifiers (RFC 7911).
    pub add_path_rx: AfiSafiSet,
    /// Families whose NLRI we send with path identifiers (RFC 7911).
    pub add_path_tx: AfiSafiSet,
}

impl Ctx {
    /// The context before an OPEN exchange: 2-octet AS, nothing else.
    pub const INITIAL: Ctx = Ctx {
        four_octet_as: false,
        extended_message: false,
        add_path_rx: AfiSafiSet::EMPTY,
        add_path_tx: AfiSafiSet::EMPTY,
    };

    /// The largest message this session may carry.
    pub fn max_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }
}

/// A BGP message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl Message {
    /// The message type code (RFC 4271 §4.1).
    pub fn type_code(&self) -> u8 {
        match self {
            Message::Open(_) => msg::OPEN,
            Message::Update(_) => msg::UPDATE,
            Message::Notification(_) => msg::NOTIFICATION,
            Message::Keepalive => msg::KEEPALIVE,
            Message::RouteRefresh(_) => msg::ROUTE_REFRESH,
        }
    }

    /// Decodes one whole message (header included), as delimited by
    /// [`frame_len`]. Errors carry the NOTIFICATION to send.
    pub fn decode(ctx: &Ctx, frame: &[u8]) -> Result<Message, DecodeError> {
        let (ty, len) = check_header(ctx, frame)?;
        if len != frame.len() {
            return Err(DecodeError::header(
                err::BAD_MESSAGE_LENGTH,
                &(len as u16).to_be_bytes(),
                format!(
                    "length field says {len} octets but the frame holds {}",
                    frame.len()
                ),
            ));
        }
        let body = &frame[HEADER_LEN..];
        Ok(match ty {
            msg::OPEN => Message::Open(Open::decode_body(body)?),
            msg::UPDATE => Message::Update(Update::decode_body(ctx, body)?),
            msg::NOTIFICATION => Message::Notification(Notification::decode_body(body)),
            msg::KEEPALIVE => Message::Keepalive,
            msg::ROUTE_REFRESH => Message::RouteRefresh(RouteRefresh::decode_body(frame)?),
            _ => unreachable!("check_header rejects unknown types"),
        })
    }

    /// Appends the encoded message to `out`.
    pub fn encode(&self, ctx: &Ctx, out: &mut BytesMut) -> Result<(), EncodeError> {
        let start = out.len();
        out.put_slice(&MARKER);
        out.put_u16(0);
        out.put_u8(self.type_code());
        match self {
            Message::Open(m) => m.encode_body(out),
            Message::Update(m) => m.encode_body(ctx, out),
            Message::Notification(m) => m.encode_body(out),
            Message::Keepalive => {}
            Message::RouteRefresh(m) => m.encode_body(out),
        }
        let len = out.len() - start;
        // OPEN and KEEPALIVE never exceed 4096 octets (RFC 8654 §4).
        let max = match self {
            Message::Open(_) | Message::Keepalive => MAX_MESSAGE_LEN,
            _ => ctx.max_len(),
        };
        if len > max {
            out.truncate(start);
            return Err(EncodeError { len, max });
        }
        out[start + 16..start + 18].copy_from_slice(&(len as u16).to_be_bytes());
        Ok(())
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self, ctx: &Ctx) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::with_capacity(64);
        self.encode(ctx, &mut out)?;
        Ok(out.freeze())
    }
}

/// Given the start of a receive buffer, returns the length of the first
/// message once the whole of it is present, `Ok(None)` while more octets
/// are needed, or the header error to send (RFC 4271 §6.1).
pub fn frame_len(ctx: &Ctx, buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    if buf.len() < HEADER_LEN {
        // Reject a bad marker as soon as it can be seen.
        if buf.iter().any(|&b| b != 0xff) && buf.len() >= 16 {
            return Err(bad_marker());
        }
        return Ok(None);
    }
    let (_, len) = check_header(ctx, buf)?;
    Ok((buf.len() >= len).then_some(len))
}

fn bad_marker() -> DecodeError {
    DecodeError::header(
        err::CONNECTION_NOT_SYNCHRONIZED,
        &[],
        "marker is not all ones",
    )
}

/// RFC 4271 §6.1: checks the marker, the length and the type, including
/// each type's minimum (and for some, exact) length.
fn check_header(ctx: &Ctx, buf: &[u8]) -> Result<(u8, usize), DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::header(
            err::BAD_MESSAGE_LENGTH,
            &[],
            "message shorter than the 19-octet header",
        ));
    }
    if buf[..16] != MARKER {
        return Err(bad_marker());
    }
    let len_field = [buf[16], buf[17]];
    let len = u16::from_be_bytes(len_field) as usize;
    let ty = buf[18];
    let bad_len = |why: &str| {
        DecodeError::header(
            err::BAD_MESSAGE_LENGTH,
            &len_field,
            format!("bad length {len}: {why}"),
        )
    };
    if len < HEADER_LEN {
        return Err(bad_len("below the 19-octet minimum"));
    }
    let max = match ty {
        // RFC 8654 §4: OPEN and KEEPALIVE stay within 4096 octets.
        msg::OPEN | msg::KEEPALIVE => MAX_MESSAGE_LEN,
        _ => ctx.max_len(),
    };
    if len > max {
        return Err(bad_len(if max == MAX_MESSAGE_LEN {
            "above 4096 octets without the Extended Message capability"
        } else {
            "above the maximum"
        }));
    }
    match ty {
        msg::OPEN if len < 29 => Err(bad_len("an OPEN is at least 29 octets")),
        msg::UPDATE if len < 23 => Err(bad_len("an UPDATE is at least 23 octets")),
        msg::NOTIFICATION if len < 21 => Err(bad_len("a NOTIFICATION is at least 21 octets")),
        msg::KEEPALIVE if len != 19 => Err(bad_len("a KEEPALIVE is exactly 19 octets")),
        msg::ROUTE_REFRESH if len < 23 => Err(bad_len("a ROUTE-REFRESH is at least 23 octets")),
        msg::OPEN | msg::UPDATE | msg::NOTIFICATION | msg::KEEPALIVE | msg::ROUTE_REFRESH => {
            Ok((ty, len))
        }
        _ => Err(DecodeError::header(
            err::BAD_MESSAGE_TYPE,
            &[ty],
            format!("unknown message type {ty}"),
        )),
    }
}

/// Splits a byte stream of concatenated messages and decodes each one.
/// Stops at the first framing error; a truncated tail is reported too.
pub fn decode_stream<'a>(
    ctx: &'a Ctx,
    mut buf: &'a [u8],
) -> impl Iterator<Item = Result<(Message, &'a [u8]), DecodeError>> + 'a {
    let mut done = false;
    std::iter::from_fn(move || {
        if done || buf.is_empty() {
            return None;
        }
        match frame_len(ctx, buf) {
            Ok(Some(n)) => {
                let (frame, rest) = buf.split_at(n);
                buf = rest;
                Some(Message::decode(ctx, frame).map(|m| (m, frame)))
            }
            Ok(None) => {
                done = true;
                Some(Err(DecodeError::header(
                    err::BAD_MESSAGE_LENGTH,
                    &[],
                    format!("stream ends inside a message ({} octets left)", buf.len()),
                )))
            }
            Err(e) => {
                done = true;
                Some(Err(e))
            }
        }
    })
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Open(m) => write!(f, "{m}"),
            Message::Update(m) => write!(f, "{m}"),
            Message::Notification(m) => write!(f, "NOTIFICATION {m}"),
            Message::Keepalive => write!(f, "KEEPALIVE"),
            Message::RouteRefresh(m) => write!(f, "{m}"),
        }
    }
}
