//! `bgpd decode`: print BGP messages readably or as JSON, from raw
//! concatenated messages, hex, or MRT files.

use std::fmt::Write as _;

use crate::wire::{self, AfiSafiSet, Capability, Ctx, Message, mrt};

/// What the input looked like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Raw,
    Hex,
    Mrt,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub json: bool,
    /// Decode AS_PATH with 2-octet AS numbers. Without it, 4-octet is
    /// assumed unless an OPEN in the stream lacks the capability.
    pub two_octet_as: bool,
    pub add_path: AfiSafiSet,
}

/// Guesses the input format: MRT by its record header, raw by the BGP
/// marker, hex otherwise.
pub fn detect(data: &[u8]) -> Format {
    if data.len() >= 16 && data[..16] == wire::MARKER {
        Format::Raw
    } else if mrt::looks_like_mrt(data) {
        Format::Mrt
    } else {
        Format::Hex
    }
}

/// Parses hex text: whitespace, `0x` prefixes, `:` separators and `#`
/// comments are ignored.
pub fn parse_hex(text: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(text)
        .map_err(|_| "input is neither BGP messages, MRT, nor hex text".to_string())?;
    let mut digits = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for word in line.split(|c: char| c.is_whitespace() || c == ':' || c == ',') {
            let word = word.strip_prefix("0x").unwrap_or(word);
            for c in word.chars() {
                let d = c.to_digit(16).ok_or_else(|| {
                    format!(
                        "line {}: '{c}' is not a hex digit (input is neither BGP messages, MRT, nor hex)",
                        n + 1
                    )
                })?;
                digits.push(d as u8);
            }
        }
    }
    if digits.len() % 2 != 0 {
        return Err("hex input has an odd number of digits".into());
    }
    Ok(digits.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
}

/// Decodes `data` and returns the text to print and whether every message
/// decoded cleanly.
pub fn run(data: &[u8], opts: &Options) -> Result<(String, bool), String> {
    let (bytes, format) = match detect(data) {
        Format::Hex => (parse_hex(data)?, Format::Hex),
        f => (data.to_vec(), f),
    };
    let mut out = String::new();
    let mut clean = true;
    if format == Format::Mrt {
        for rec in mrt::records(&bytes) {
            match rec {
                Ok(r) => {
                    if let mrt::Record::Message {
                        message: Err(_), ..
                    } = &r
                    {
                        clean = false;
                    }
                    if opts.json {
                        let _ = writeln!(out, "{}", serde_json::to_string(&r).unwrap());
                    } else {
                        write_record(&mut out, &r);
                    }
                }
                Err(e) => {
                    clean = false;
                    emit_error(&mut out, opts.json, &e.to_string());
                }
            }
        }
        return Ok((out, clean));
    }
    let mut ctx = Ctx {
        four_octet_as: !opts.two_octet_as,
        extended_message: true,
        add_path_rx: opts.add_path,
        add_path_tx: opts.add_path,
    };
    let mut buf = bytes.as_slice();
    let mut offset = 0usize;
    while !buf.is_empty() {
        let n = match wire::frame_len(&ctx, buf) {
            Ok(Some(n)) => n,
            Ok(None) => {
                clean = false;
                emit_error(
                    &mut out,
                    opts.json,
                    &format!(
                        "offset {offset}: input ends inside a message ({} octets left)",
                        buf.len()
                    ),
                );
                break;
            }
            Err(e) => {
                clean = false;
                emit_error(&mut out, opts.json, &format!("offset {offset}: {e}"));
                break;
            }
        };
        let frame = &buf[..n];
        match Message::decode(&ctx, frame) {
            Ok(m) => {
                if let Message::Open(o) = &m {
                    // A speaker without the capability uses 2-octet AS numbers.
                    let has4 = o
                        .capabilities()
                        .any(|c| matches!(c, Capability::FourOctetAs { .. }));
                    if !has4 && !opts.two_octet_as {
                        ctx.four_octet_as = false;
                    }
                }
                if let Message::Update(u) = &m {
                    clean &= u.errors.is_empty();
                }
                if opts.json {
                    let _ = writeln!(out, "{}", serde_json::to_string(&m).unwrap());
                } else {
                    let _ = writeln!(out, "[{offset}] {m}");
                }
            }
            Err(e) => {
                clean = false;
                let hint = if frame.get(18) == Some(&wire::iana::msg::UPDATE) {
                    " (if the session negotiated ADD-PATH or 2-octet AS numbers, try --add-path or --two-octet-as)"
                } else {
                    ""
                };
                emit_error(&mut out, opts.json, &format!("offset {offset}: {e}{hint}"));
            }
        }
        offset += n;
        buf = &buf[n..];
    }
    Ok((out, clean))
}

fn emit_error(out: &mut String, json: bool, msg: &str) {
    if json {
        let _ = writeln!(out, "{}", serde_json::json!({ "error": msg }));
    } else {
        let _ = writeln!(out, "error: {msg}");
    }
}

fn write_record(out: &mut String, r: &mrt::Record) {
    use mrt::Record::*;
    match r {
        Message {
            header,
            peer_as,
            peer,
            message,
            ..
        } => {
            let _ = write!(out, "[{}] from {peer} AS{peer_as}: ", header.timestamp);
            match message {
                Ok(m) => {
                    let _ = writeln!(out, "{m}");
                }
                Err(e) => {
                    let _ = writeln!(out, "error: {e}");
                }
            }
        }
        StateChange {
            header,
            peer,
            old_state,
            new_state,
            ..
        } => {
            let _ = writeln!(
                out,
                "[{}] {peer} state {} -> {}",
                header.timestamp,
                state_name(*old_state),
                state_name(*new_state)
            );
        }
        PeerIndexTable {
            collector_id,
            view_name,
            peers,
            ..
        } => {
            let _ = writeln!(
                out,
                "PEER_INDEX_TABLE collector {collector_id} view '{view_name}'"
            );
            for (i, p) in peers.iter().enumerate() {
                let _ = writeln!(out, "  peer {i}: {} AS{} id {}", p.address, p.asn, p.bgp_id);
            }
        }
        Rib {
            prefix, entries, ..
        } => {
            let _ = writeln!(out, "RIB {prefix}");
            for e in entries {
                let _ = write!(out, "  peer {}", e.peer_index);
                if let Some(id) = e.path_id {
                    let _ = write!(out, " path-id {id}");
                }
                let _ = writeln!(out);
                for a in &e.attributes {
                    let _ = writeln!(out, "    {a}");
                }
                for err in &e.errors {
                    let _ = writeln!(out, "    error: {err}");
                }
            }
        }
        Other { header, length } => {
            let _ = writeln!(
                out,
                "MRT type {} subtype {} ({length} octets, not decoded)",
                header.kind, header.subtype
            );
        }
    }
}

/// RFC 6396 §4.4.1 state numbers.
fn state_name(s: u16) -> &'static str {
    match s {
        1 => "Idle",
        2 => "Connect",
        3 => "Active",
        4 => "OpenSent",
        5 => "OpenConfirm",
        6 => "Established",
        _ => "unknown",
    }
}
