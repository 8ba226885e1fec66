//! UPDATE messages (RFC 4271 §4.3) with RFC 7606 revised error handling.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;

use super::attrs::{Attr, Malformed, MpNlri, MpReach, MpUnreach, PathAttribute};
use super::iana::{attr, err};
use super::nlri::{Nlri, decode_prefixes, encode_prefix};
use super::{Action, AfiSafi, AttrError, Ctx, DecodeError};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Update {
    /// IPv4 unicast withdrawals in the classic field.
    pub withdrawn: Vec<Nlri>,
    /// Attributes in the order they were received.
    pub attributes: Vec<PathAttribute>,
    /// IPv4 unicast NLRI in the classic field.
    pub nlri: Vec<Nlri>,
    /// Attribute errors that RFC 7606 lets the session survive; the
    /// strongest action applies to the whole UPDATE (see [`Update::action`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<AttrError>,
}

impl Update {
    /// The End-of-RIB marker for a family (RFC 4724 §2): an empty UPDATE
    /// for IPv4 unicast, an empty MP_UNREACH_NLRI otherwise.
    pub fn end_of_rib(af: AfiSafi) -> Update {
        let mut u = Update::default();
        if af != AfiSafi::IPV4_UNICAST {
            u.attributes
                .push(PathAttribute::new(Attr::MpUnreachNlri(MpUnreach {
                    afi_safi: af,
                    nlri: MpNlri::Prefixes(vec![]),
                })));
        }
        u
    }

    /// The family this UPDATE marks the End-of-RIB of, if it is one.
    pub fn as_end_of_rib(&self) -> Option<AfiSafi> {
        if !self.withdrawn.is_empty() || !self.nlri.is_empty() || !self.errors.is_empty() {
            return None;
        }
        match self.attributes.as_slice() {
            [] => Some(AfiSafi::IPV4_UNICAST),
            [a] => match &a.value {
                Attr::MpUnreachNlri(m) if m.nlri.is_empty() => Some(m.afi_safi),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn attr(&self, code: u8) -> Option<&Attr> {
        self.attributes
            .iter()
            .find(|a| a.code() == code)
            .map(|a| &a.value)
    }

    pub fn mp_reach(&self) -> Option<&MpReach> {
        match self.attr(attr::MP_REACH_NLRI) {
            Some(Attr::MpReachNlri(m)) => Some(m),
            _ => None,
        }
    }

    pub fn mp_unreach(&self) -> Option<&MpUnreach> {
        match self.attr(attr::MP_UNREACH_NLRI) {
            Some(Attr::MpUnreachNlri(m)) => Some(m),
            _ => None,
        }
    }

    /// The strongest RFC 7606 action among the errors, if any.
    pub fn action(&self) -> Option<Action> {
        self.errors.iter().map(|e| e.action).max()
    }

    /// Whether every NLRI of this UPDATE must be treated as withdrawn.
    pub fn treat_as_withdraw(&self) -> bool {
        self.action() == Some(Action::TreatAsWithdraw)
    }

    /// Every prefix this UPDATE announces, classic and MP_REACH_NLRI.
    pub fn announced(&self) -> impl Iterator<Item = &Nlri> {
        self.nlri.iter().chain(
            self.mp_reach()
                .map(|m| m.nlri.prefixes())
                .unwrap_or_default(),
        )
    }

    /// How many prefixes this UPDATE announces and withdraws.
    pub fn prefix_count(&self) -> usize {
        self.nlri.len()
            + self.withdrawn.len()
            + self.mp_reach().map_or(0, |m| m.nlri.prefixes().len())
            + self.mp_unreach().map_or(0, |m| m.nlri.prefixes().len())
    }

    /// Every prefix this UPDATE withdraws, classic and MP_UNREACH_NLRI.
    pub fn withdrawn_all(&self) -> impl Iterator<Item = &Nlri> {
        self.withdrawn.iter().chain(
            self.mp_unreach()
                .map(|m| m.nlri.prefixes())
                .unwrap_or_default(),
        )
    }

    pub(crate) fn decode_body(ctx: &Ctx, body: &[u8]) -> Result<Update, DecodeError> {
        // RFC 4271 §6.3: lengths that overrun the message are a Malformed
        // Attribute List.
        let overrun = || {
            DecodeError::update(
                err::MALFORMED_ATTRIBUTE_LIST,
                &[],
                "Withdrawn Routes Length or Total Path Attribute Length overruns the message",
            )
        };
        let wlen = u16::from_be_bytes([body[0], body[1]]) as usize;
        let withdrawn_raw = body.get(2..2 + wlen).ok_or_else(overrun)?;
        let rest = &body[2 + wlen..];
        let alen = rest
            .get(..2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
            .ok_or_else(overrun)?;
        let attrs_raw = rest.get(2..2 + alen).ok_or_else(overrun)?;
        let nlri_raw = &rest[2 + alen..];

        // RFC 7606 §5.3: NLRI that cannot be parsed reset the session.
        let v4_add_path = ctx.add_path_rx.contains(AfiSafi::IPV4_UNICAST);
        let nlri_err = |field: &str, e: super::nlri::PrefixError| {
            DecodeError::update(err::INVALID_NETWORK_FIELD, &[], format!("{field}: {e}"))
        };
        let mut withdrawn = Vec::new();
        decode_prefixes(withdrawn_raw, false, v4_add_path, &mut withdrawn)
            .map_err(|e| nlri_err("withdrawn routes", e))?;
        let mut nlri = Vec::new();
        decode_prefixes(nlri_raw, false, v4_add_path, &mut nlri)
            .map_err(|e| nlri_err("NLRI", e))?;

        let mut update = Update {
            withdrawn,
            attributes: Vec::with_capacity(8),
            nlri,
            errors: Vec::new(),
        };
        update.decode_attributes(ctx, attrs_raw)?;
        Ok(update)
    }

    fn decode_attributes(&mut self, ctx: &Ctx, mut i: &[u8]) -> Result<(), DecodeError> {
        let mut seen = [0u64; 4];
        let mut truncated = false;
        while !i.is_empty() {
            // RFC 7606 §4: an attribute header or value that runs past the
            // Total Path Attribute Length is treat-as-withdraw; the rest of
            // the attributes are lost, the NLRI field is still located.
            let flags = i[0];
            let hlen = if flags & attr::FLAG_EXTENDED_LENGTH != 0 {
                4
            } else {
                3
            };
            let value_len = match i.get(..hlen) {
                Some(h) if hlen == 4 => Some(u16::from_be_bytes([h[2], h[3]]) as usize),
                Some(h) => Some(h[2] as usize),
                None => None,
            };
            let Some(raw) = value_len.and_then(|l| i.get(..hlen + l)) else {
                let code = i.get(1).copied().unwrap_or(0);
                self.errors.push(AttrError {
                    action: Action::TreatAsWithdraw,
                    type_code: code,
                    notification: super::Notification::new(
                        err::UPDATE_MESSAGE,
                        err::ATTRIBUTE_LENGTH_ERROR,
                        Bytes::copy_from_slice(i),
                    ),
                    reason: format!(
                        "attribute {} runs past the Total Path Attribute Length",
                        attr::name(code)
                    ),
                });
                truncated = true;
                break;
            };
            let code = raw[1];
            let value = &raw[hlen..];
            i = &i[raw.len()..];
            let (word, bit) = ((code / 64) as usize, 1u64 << (code % 64));
            if seen[word] & bit != 0 {
                // RFC 7606 §3(g): a repeated MP_REACH_NLRI or
                // MP_UNREACH_NLRI resets the session; any other repeat is
                // discarded.
                if matches!(code, attr::MP_REACH_NLRI | attr::MP_UNREACH_NLRI) {
                    return Err(DecodeError::update(
                        err::MALFORMED_ATTRIBUTE_LIST,
                        &[],
                        format!("{} appears more than once", attr::name(code)),
                    ));
                }
                self.errors.push(AttrError {
                    action: Action::AttributeDiscard,
                    type_code: code,
                    notification: super::Notification::new(
                        err::UPDATE_MESSAGE,
                        err::MALFORMED_ATTRIBUTE_LIST,
                        Bytes::new(),
                    ),
                    reason: format!("repeated {} discarded", attr::name(code)),
                });
                continue;
            }
            seen[word] |= bit;
            match Attr::decode(ctx, flags, code, value) {
                Ok(value) => self.attributes.push(PathAttribute { flags, value }),
                Err(Malformed {
                    action,
                    subcode,
                    reason,
                }) => {
                    // RFC 4271 §6.3: the data is the erroneous attribute.
                    let e = DecodeError::update(subcode, raw, reason);
                    if action == Action::SessionReset {
                        return Err(e);
                    }
                    self.errors.push(AttrError {
                        action,
                        type_code: code,
                        notification: e.notification,
                        reason: e.reason,
                    });
                }
            }
        }
        let has_code = |c: u8| seen[(c / 64) as usize] & (1u64 << (c % 64)) != 0;
        let has_mp = has_code(attr::MP_REACH_NLRI) || has_code(attr::MP_UNREACH_NLRI);
        if truncated && !has_mp && self.nlri.is_empty() && self.withdrawn.is_empty() {
            // RFC 7606 §5.2: treat-as-withdraw needs the NLRI; if an
            // MP_REACH_NLRI may have been lost in the overrun, only a
            // session reset is safe.
            let e = self.errors.pop().expect("pushed above");
            return Err(DecodeError {
                notification: e.notification,
                reason: e.reason,
            });
        }
        // RFC 7606 §3(d): missing well-known mandatory attributes are
        // treat-as-withdraw. They are needed only when NLRI are announced;
        // NEXT_HOP only for classic NLRI (RFC 4760 §3).
        let announces = !self.nlri.is_empty() || has_code(attr::MP_REACH_NLRI);
        if announces && !truncated {
            let mut required = vec![attr::ORIGIN, attr::AS_PATH];
            if !self.nlri.is_empty() {
                required.push(attr::NEXT_HOP);
            }
            for code in required {
                if !has_code(code) {
                    self.errors.push(AttrError {
                        action: Action::TreatAsWithdraw,
                        type_code: code,
                        // RFC 4271 §6.3: the data is the missing type code.
                        notification: super::Notification::new(
                            err::UPDATE_MESSAGE,
                            err::MISSING_WELL_KNOWN_ATTRIBUTE,
                            Bytes::copy_from_slice(&[code]),
                        ),
                        reason: format!("missing well-known attribute {}", attr::name(code)),
                    });
                }
            }
        }
        Ok(())
    }

    pub(crate) fn encode_body(&self, ctx: &Ctx, out: &mut BytesMut) {
        let add_path = ctx.add_path_tx.contains(AfiSafi::IPV4_UNICAST);
        let wpos = out.len();
        out.put_u16(0);
        for n in &self.withdrawn {
            encode_prefix(n, add_path, out);
        }
        let wlen = out.len() - wpos - 2;
        out[wpos..wpos + 2].copy_from_slice(&(wlen as u16).to_be_bytes());
        let apos = out.len();
        out.put_u16(0);
        for a in &self.attributes {
            a.encode(ctx, out);
        }
        let alen = out.len() - apos - 2;
        out[apos..apos + 2].copy_from_slice(&(alen as u16).to_be_bytes());
        for n in &self.nlri {
            encode_prefix(n, add_path, out);
        }
    }
}

impl fmt::Display for Update {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(af) = self.as_end_of_rib() {
            return write!(f, "UPDATE End-of-RIB {af}");
        }
        write!(f, "UPDATE")?;
        for a in &self.attributes {
            write!(f, "\n  {a}")?;
        }
        for n in &self.withdrawn {
            write!(f, "\n  withdrawn {n}")?;
        }
        for n in &self.nlri {
            write!(f, "\n  nlri {n}")?;
        }
        for e in &self.errors {
            write!(f, "\n  error: {e}")?;
        }
        Ok(())
    }
}
