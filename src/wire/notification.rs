//! NOTIFICATION messages (RFC 4271 §4.5) with RFC 8203 / RFC 9003 shutdown
//! communication.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use super::iana::err;

/// A NOTIFICATION message: what we send on an error, or what a peer told us.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    #[serde(serialize_with = "super::ser::hex")]
    pub data: Bytes,
}

/// RFC 9003 §2 raises the shutdown communication limit to 255 octets.
pub const MAX_SHUTDOWN_COMMUNICATION: usize = 255;

impl Notification {
    pub fn new(code: u8, subcode: u8, data: impl Into<Bytes>) -> Self {
        Notification {
            code,
            subcode,
            data: data.into(),
        }
    }

    /// A Cease NOTIFICATION carrying an RFC 8203 shutdown communication
    /// (subcode 2, Administrative Shutdown, or 4, Administrative Reset).
    /// The text is cut at a character boundary to fit 255 octets (RFC 9003).
    pub fn cease_with_message(subcode: u8, text: &str) -> Self {
        let mut end = text.len().min(MAX_SHUTDOWN_COMMUNICATION);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut data = BytesMut::with_capacity(end + 1);
        if end > 0 {
            data.put_u8(end as u8);
            data.put_slice(&text.as_bytes()[..end]);
        }
        Notification::new(err::CEASE, subcode, data.freeze())
    }

    /// The RFC 8203 shutdown communication, if this is a Cease
    /// Administrative Shutdown or Reset that carries one. Invalid UTF-8 is
    /// shown lossily; a malformed length yields `None`.
    pub fn shutdown_message(&self) -> Option<String> {
        if self.code != err::CEASE
            || !matches!(
                self.subcode,
                err::CEASE_ADMIN_SHUTDOWN | err::CEASE_ADMIN_RESET
            )
        {
            return None;
        }
        let (&len, rest) = self.data.split_first()?;
        let text = rest.get(..len as usize)?;
        Some(String::from_utf8_lossy(text).into_owned())
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) {
        out.put_u8(self.code);
        out.put_u8(self.subcode);
        out.put_slice(&self.data);
    }

    pub(crate) fn decode_body(body: &[u8]) -> Notification {
        // The header check guarantees at least two octets (RFC 4271 §4.5).
        Notification::new(body[0], body[1], Bytes::copy_from_slice(&body[2..]))
    }
}

impl fmt::Display for Notification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} ({} / {})",
            self.code,
            self.subcode,
            err::code_name(self.code),
            err::subcode_name(self.code, self.subcode)
        )?;
        if let Some(msg) = self.shutdown_message() {
            write!(f, ": \"{}\"", msg.escape_debug())?;
        } else if !self.data.is_empty() {
            write!(f, " data ")?;
            for b in self.data.iter() {
                write!(f, "{b:02x}")?;
            }
        }
        Ok(())
    }
}
