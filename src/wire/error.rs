//! Decoding errors. Every error carries the exact NOTIFICATION that
//! RFC 4271 §6 prescribes; UPDATE attribute errors also carry the RFC 7606
//! action.

use std::fmt;

use bytes::Bytes;
use serde::Serialize;

use super::iana::err;
use super::notification::Notification;

/// A message that cannot be processed. The session sends `notification`
/// and closes the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub notification: Notification,
    pub reason: String,
}

impl DecodeError {
    pub fn new(code: u8, subcode: u8, data: impl Into<Bytes>, reason: impl Into<String>) -> Self {
        DecodeError {
            notification: Notification::new(code, subcode, data),
            reason: reason.into(),
        }
    }

    pub(crate) fn header(subcode: u8, data: &[u8], reason: impl Into<String>) -> Self {
        Self::new(
            err::MESSAGE_HEADER,
            subcode,
            Bytes::copy_from_slice(data),
            reason,
        )
    }

    pub(crate) fn open(subcode: u8, reason: impl Into<String>) -> Self {
        Self::new(err::OPEN_MESSAGE, subcode, Bytes::new(), reason)
    }

    pub(crate) fn update(subcode: u8, data: &[u8], reason: impl Into<String>) -> Self {
        Self::new(
            err::UPDATE_MESSAGE,
            subcode,
            Bytes::copy_from_slice(data),
            reason,
        )
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.notification)
    }
}

impl std::error::Error for DecodeError {}

/// The RFC 7606 §2 approaches, weakest first, so that `max` picks the
/// strongest one, as RFC 7606 §3 requires when several errors occur.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Drop the attribute and process the UPDATE normally.
    AttributeDiscard,
    /// Treat every NLRI in the UPDATE (classic and MP_REACH) as withdrawn.
    TreatAsWithdraw,
    /// Send the NOTIFICATION and reset the session.
    SessionReset,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::AttributeDiscard => "attribute-discard",
            Action::TreatAsWithdraw => "treat-as-withdraw",
            Action::SessionReset => "session-reset",
        })
    }
}

/// An attribute error that RFC 7606 lets the session survive. The
/// NOTIFICATION is the one RFC 4271 §6.3 would have sent; it is kept for
/// logging and so tests can compare it with the RFC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttrError {
    pub action: Action,
    pub type_code: u8,
    pub notification: Notification,
    pub reason: String,
}

impl fmt::Display for AttrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {} [RFC 4271 would send {}]",
            self.action,
            super::iana::attr::name(self.type_code),
            self.reason,
            self.notification
        )
    }
}

/// A message too large to encode for the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodeError {
    pub len: usize,
    pub max: usize,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "message of {} octets exceeds the maximum of {}",
            self.len, self.max
        )
    }
}

impl std::error::Error for EncodeError {}
