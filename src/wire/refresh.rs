//! ROUTE-REFRESH (RFC 2918) with the enhanced route refresh subtypes of
//! RFC 7313.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use super::iana::err;
use super::{AfiSafi, DecodeError, HEADER_LEN};

/// RFC 7313 §3 message subtypes.
pub mod subtype {
    pub const NORMAL: u8 = 0;
    pub const BEGIN: u8 = 1;
    pub const END: u8 = 2;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteRefresh {
    pub afi_safi: AfiSafi,
    /// 0 normal request, 1 Beginning of Route Refresh, 2 End of Route
    /// Refresh (RFC 7313). Other values are kept; RFC 7313 §5 says to
    /// ignore such a message.
    pub subtype: u8,
    /// Anything after the fixed part, such as ORF entries (RFC 5291),
    /// which bgpd does not support.
    #[serde(
        serialize_with = "super::ser::hex",
        skip_serializing_if = "Bytes::is_empty"
    )]
    pub trailing: Bytes,
}

impl RouteRefresh {
    pub fn new(afi_safi: AfiSafi, subtype: u8) -> Self {
        RouteRefresh {
            afi_safi,
            subtype,
            trailing: Bytes::new(),
        }
    }

    /// Decodes from the whole frame, since RFC 7313 §5 returns the whole
    /// message in the NOTIFICATION data.
    pub(crate) fn decode_body(frame: &[u8]) -> Result<RouteRefresh, DecodeError> {
        let body = &frame[HEADER_LEN..];
        let afi = u16::from_be_bytes([body[0], body[1]]);
        let subtype = body[2];
        let safi = body[3];
        let trailing = &body[4..];
        // RFC 7313 §5: a BoRR or EoRR whose length is not 4 (beyond the
        // header) gets ROUTE-REFRESH Message Error / Invalid Message Length,
        // with the complete message as data.
        if !trailing.is_empty() && matches!(subtype, subtype::BEGIN | subtype::END) {
            return Err(DecodeError::new(
                err::ROUTE_REFRESH,
                err::INVALID_MESSAGE_LENGTH,
                Bytes::copy_from_slice(frame),
                format!(
                    "ROUTE-REFRESH subtype {subtype} must be 23 octets, got {}",
                    frame.len()
                ),
            ));
        }
        Ok(RouteRefresh {
            afi_safi: AfiSafi::new(afi, safi),
            subtype,
            trailing: Bytes::copy_from_slice(trailing),
        })
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) {
        out.put_u16(self.afi_safi.afi);
        out.put_u8(self.subtype);
        out.put_u8(self.afi_safi.safi);
        out.put_slice(&self.trailing);
    }
}

impl fmt::Display for RouteRefresh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.subtype {
            subtype::NORMAL => "request",
            subtype::BEGIN => "begin (BoRR)",
            subtype::END => "end (EoRR)",
            _ => "unknown subtype",
        };
        write!(f, "ROUTE-REFRESH {} {kind}", self.afi_safi)?;
        if self.subtype > subtype::END {
            write!(f, " {}", self.subtype)?;
        }
        if !self.trailing.is_empty() {
            write!(f, " (+{} octets of ORF data)", self.trailing.len())?;
        }
        Ok(())
    }
}
