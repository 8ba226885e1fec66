//! UPDATE packing, the send side's codec: the prefixes that share one set
//! of attributes go into as few UPDATE messages as fit the session's
//! limit (4,096 octets, or 65,535 with RFC 8654 extended messages), and so
//! do withdrawals. IPv4 unicast travels in the classic fields; IPv6 in
//! MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760 §3, §4). The attributes are
//! encoded once per set, the prefixes straight into the message buffer.

use bytes::{BufMut, Bytes, BytesMut};

use super::attrs::{NextHop, PathAttribute};
use super::iana::{attr, msg};
use super::nlri::{encode_prefix, encoded_len};
use super::{AfiSafi, Ctx, EncodeError, HEADER_LEN, MARKER, Nlri, Update};

/// Withdrawn-routes length and total-path-attribute length fields.
const FIELDS: usize = 4;
/// An MP_REACH/MP_UNREACH attribute's header, always with the Extended
/// Length bit: flags, type, 2-octet length.
const MP_HEADER: usize = 4;

fn start(out: &mut BytesMut) -> usize {
    let at = out.len();
    out.put_slice(&MARKER);
    out.put_u16(0);
    out.put_u8(msg::UPDATE);
    at
}

/// The message that starts at `at`, in an allocation of its own size:
/// `out` is reused for the next one. (Split off `out`, a 60-octet UPDATE
/// would keep the whole 4,096-octet buffer alive while it waits to be
/// written: with a thousand peers, gigabytes.)
fn finish(out: &mut BytesMut, at: usize) -> Bytes {
    let len = (out.len() - at) as u16;
    out[at + 16..at + 18].copy_from_slice(&len.to_be_bytes());
    let msg = Bytes::copy_from_slice(&out[at..]);
    out.truncate(at);
    msg
}

fn set_u16(out: &mut BytesMut, pos: usize, v: usize) {
    out[pos..pos + 2].copy_from_slice(&(v as u16).to_be_bytes());
}

/// Takes prefixes from `nlri` while they fit in `room` octets; at least one
/// must fit.
fn take(nlri: &[Nlri], add_path: bool, room: usize) -> usize {
    let mut used = 0;
    let mut n = 0;
    for p in nlri {
        let l = encoded_len(p, add_path);
        if used + l > room {
            break;
        }
        used += l;
        n += 1;
    }
    n
}

/// Appends the UPDATEs announcing `nlri` with `attrs` to `msgs`. `attrs`
/// holds everything but NEXT_HOP and MP_REACH_NLRI: the IPv4 prefixes get
/// NEXT_HOP `next_hop` (an IPv4 address), the IPv6 ones an MP_REACH_NLRI
/// with it. Every prefix must be of the family of `next_hop`. Fails, with
/// nothing appended, when the attributes alone do not fit a message.
pub fn announce(
    ctx: &Ctx,
    attrs: &[PathAttribute],
    next_hop: &NextHop,
    nlri: &[Nlri],
    msgs: &mut Vec<Bytes>,
) -> Result<(), EncodeError> {
    let max = ctx.max_len();
    let mut abuf = BytesMut::new();
    for a in attrs {
        a.encode(ctx, &mut abuf);
    }
    let mut out = BytesMut::with_capacity(max.min(4096));
    match next_hop {
        NextHop::V4(nh) => {
            PathAttribute::new(super::Attr::NextHop(*nh)).encode(ctx, &mut abuf);
            let fixed = HEADER_LEN + FIELDS + abuf.len();
            let add_path = ctx.add_path_tx.contains(AfiSafi::IPV4_UNICAST);
            if fixed + nlri.first().map_or(0, |n| encoded_len(n, add_path)) > max {
                return Err(EncodeError {
                    len: fixed + 1,
                    max,
                });
            }
            let mut rest = nlri;
            while !rest.is_empty() {
                let n = take(rest, add_path, max - fixed);
                let at = start(&mut out);
                out.put_u16(0);
                out.put_u16(abuf.len() as u16);
                out.put_slice(&abuf);
                for p in &rest[..n] {
                    encode_prefix(p, add_path, &mut out);
                }
                msgs.push(finish(&mut out, at));
                rest = &rest[n..];
            }
        }
        nh => {
            let nh_len = match nh {
                NextHop::V6 { link_local, .. } => 16 + if link_local.is_some() { 16 } else { 0 },
                NextHop::Raw(b) => b.len(),
                NextHop::V4(_) => 4,
            };
            // AFI, SAFI, next-hop length, next hop, reserved.
            let mp_fixed = MP_HEADER + 3 + 1 + nh_len + 1;
            let fixed = HEADER_LEN + FIELDS + abuf.len() + mp_fixed;
            let add_path = ctx.add_path_tx.contains(AfiSafi::IPV6_UNICAST);
            // The attribute's value is at most 65,535 octets.
            let room = (max.saturating_sub(fixed)).min(0xffff - (mp_fixed - MP_HEADER));
            if nlri.first().map_or(0, |n| encoded_len(n, add_path)) > room {
                return Err(EncodeError {
                    len: fixed + 1,
                    max,
                });
            }
            let mut rest = nlri;
            while !rest.is_empty() {
                let n = take(rest, add_path, room);
                let at = start(&mut out);
                out.put_u16(0);
                let apos = out.len();
                out.put_u16(0);
                out.put_slice(&abuf);
                out.put_u8(attr::FLAG_OPTIONAL | attr::FLAG_EXTENDED_LENGTH);
                out.put_u8(attr::MP_REACH_NLRI);
                let mpos = out.len();
                out.put_u16(0);
                let af = AfiSafi::IPV6_UNICAST;
                out.put_u16(af.afi);
                out.put_u8(af.safi);
                out.put_u8(nh_len as u8);
                match nh {
                    NextHop::V6 { global, link_local } => {
                        out.put_slice(&global.octets());
                        if let Some(ll) = link_local {
                            out.put_slice(&ll.octets());
                        }
                    }
                    NextHop::Raw(b) => out.put_slice(b),
                    NextHop::V4(a) => out.put_slice(&a.octets()),
                }
                out.put_u8(0); // Reserved (RFC 4760 §3).
                for p in &rest[..n] {
                    encode_prefix(p, add_path, &mut out);
                }
                let mlen = out.len() - mpos - 2;
                set_u16(&mut out, mpos, mlen);
                let alen = out.len() - apos - 2;
                set_u16(&mut out, apos, alen);
                msgs.push(finish(&mut out, at));
                rest = &rest[n..];
            }
        }
    }
    Ok(())
}

/// Appends the UPDATEs withdrawing `nlri` (IPv4 in the Withdrawn Routes
/// field, IPv6 in MP_UNREACH_NLRI) to `msgs`.
pub fn withdraw(ctx: &Ctx, nlri: &[Nlri], msgs: &mut Vec<Bytes>) {
    let max = ctx.max_len();
    let (v4, v6): (Vec<&Nlri>, Vec<&Nlri>) = nlri.iter().partition(|n| n.prefix.addr().is_ipv4());
    let mut out = BytesMut::with_capacity(max.min(4096));
    let add_path = ctx.add_path_tx.contains(AfiSafi::IPV4_UNICAST);
    let v4: Vec<Nlri> = v4.into_iter().copied().collect();
    let mut rest = &v4[..];
    while !rest.is_empty() {
        let n = take(rest, add_path, max - HEADER_LEN - FIELDS);
        let at = start(&mut out);
        let wpos = out.len();
        out.put_u16(0);
        for p in &rest[..n] {
            encode_prefix(p, add_path, &mut out);
        }
        let wlen = out.len() - wpos - 2;
        set_u16(&mut out, wpos, wlen);
        out.put_u16(0);
        msgs.push(finish(&mut out, at));
        rest = &rest[n..];
    }
    let add_path = ctx.add_path_tx.contains(AfiSafi::IPV6_UNICAST);
    let v6: Vec<Nlri> = v6.into_iter().copied().collect();
    let mut rest = &v6[..];
    // Flags, type, length; AFI and SAFI.
    let fixed = HEADER_LEN + FIELDS + MP_HEADER + 3;
    while !rest.is_empty() {
        let n = take(rest, add_path, (max - fixed).min(0xffff - 3));
        let at = start(&mut out);
        out.put_u16(0);
        let apos = out.len();
        out.put_u16(0);
        out.put_u8(attr::FLAG_OPTIONAL | attr::FLAG_EXTENDED_LENGTH);
        out.put_u8(attr::MP_UNREACH_NLRI);
        let mpos = out.len();
        out.put_u16(0);
        let af = AfiSafi::IPV6_UNICAST;
        out.put_u16(af.afi);
        out.put_u8(af.safi);
        for p in &rest[..n] {
            encode_prefix(p, add_path, &mut out);
        }
        let mlen = out.len() - mpos - 2;
        set_u16(&mut out, mpos, mlen);
        let alen = out.len() - apos - 2;
        set_u16(&mut out, apos, alen);
        msgs.push(finish(&mut out, at));
        rest = &rest[n..];
    }
}

/// The End-of-RIB marker of a family (RFC 4724 §2).
pub fn end_of_rib(ctx: &Ctx, af: AfiSafi) -> Bytes {
    super::Message::Update(Update::end_of_rib(af))
        .to_bytes(ctx)
        .expect("an End-of-RIB fits any message")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{AsPath, Attr, Community, Message, Origin};
    use ipnet::IpNet;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn attrs(communities: usize) -> Vec<PathAttribute> {
        let mut v = vec![
            PathAttribute::new(Attr::Origin(Origin::Igp)),
            PathAttribute::new(Attr::AsPath(AsPath::default())),
            PathAttribute::new(Attr::LocalPref(100)),
        ];
        if communities > 0 {
            v.push(PathAttribute::new(Attr::Communities(
                (0..communities as u32).map(Community).collect(),
            )));
        }
        v
    }

    fn v4(n: u32, add_path: bool) -> Vec<Nlri> {
        (0..n)
            .map(|i| Nlri {
                path_id: add_path.then_some(i + 1),
                prefix: IpNet::new(Ipv4Addr::from(0x0a00_0000 + (i << 4)).into(), 28).unwrap(),
            })
            .collect()
    }

    fn v6(n: u32) -> Vec<Nlri> {
        (0..n)
            .map(|i| Nlri {
                path_id: None,
                prefix: IpNet::new(
                    Ipv6Addr::from(
                        0x2001_0db8_0000_0000_0000_0000_0000_0000u128 + ((i as u128) << 64),
                    )
                    .into(),
                    64,
                )
                .unwrap(),
            })
            .collect()
    }

    /// Decodes the messages back: each within the limit, the prefixes all
    /// there in order, the attributes as given.
    fn decode_all(ctx: &Ctx, msgs: &[Bytes]) -> (Vec<Nlri>, Vec<Nlri>, Vec<Vec<PathAttribute>>) {
        let (mut ann, mut wd, mut sets) = (vec![], vec![], vec![]);
        // The receiver's side of the session.
        let rx = Ctx {
            add_path_rx: ctx.add_path_tx,
            ..*ctx
        };
        for m in msgs {
            assert!(m.len() <= ctx.max_len(), "{} > {}", m.len(), ctx.max_len());
            let Message::Update(u) = Message::decode(&rx, m).unwrap() else {
                panic!("not an UPDATE")
            };
            assert!(u.errors.is_empty(), "{:?}", u.errors);
            ann.extend(u.announced().copied());
            wd.extend(u.withdrawn_all().copied());
            sets.push(
                u.attributes
                    .iter()
                    .filter(|a| {
                        !matches!(
                            a.value,
                            Attr::NextHop(_) | Attr::MpReachNlri(_) | Attr::MpUnreachNlri(_)
                        )
                    })
                    .cloned()
                    .collect(),
            );
        }
        (ann, wd, sets)
    }

    #[test]
    fn ipv4_announcements_fill_messages_to_the_limit() {
        for (ctx, n) in [
            (Ctx::default(), 2000),
            (
                Ctx {
                    extended_message: true,
                    ..Ctx::default()
                },
                30_000,
            ),
            (
                Ctx {
                    add_path_tx: [AfiSafi::IPV4_UNICAST].into_iter().collect(),
                    ..Ctx::default()
                },
                1000,
            ),
        ] {
            let add_path = !ctx.add_path_tx.is_empty();
            let nlri = v4(n, add_path);
            let mut msgs = vec![];
            announce(
                &ctx,
                &attrs(3),
                &NextHop::V4(Ipv4Addr::new(192, 168, 83, 1)),
                &nlri,
                &mut msgs,
            )
            .unwrap();
            let (ann, wd, sets) = decode_all(&ctx, &msgs);
            assert_eq!(ann, nlri);
            assert!(wd.is_empty());
            assert!(sets.iter().all(|s| *s == attrs(3)));
            // Packed: every message but the last is within one prefix of
            // the limit.
            let per = encoded_len(&nlri[0], add_path);
            for m in &msgs[..msgs.len() - 1] {
                assert!(m.len() + per > ctx.max_len(), "{} octets", m.len());
            }
        }
    }

    #[test]
    fn ipv6_goes_in_mp_reach_and_mp_unreach() {
        let ctx = Ctx::default();
        let nlri = v6(1500);
        let nh = NextHop::V6 {
            global: "2001:db8::1".parse().unwrap(),
            link_local: Some("fe80::1".parse().unwrap()),
        };
        let mut msgs = vec![];
        announce(&ctx, &attrs(0), &nh, &nlri, &mut msgs).unwrap();
        assert!(msgs.len() > 1);
        for m in &msgs {
            let Message::Update(u) = Message::decode(&ctx, m).unwrap() else {
                panic!()
            };
            assert_eq!(u.mp_reach().unwrap().next_hop, nh);
            assert!(u.nlri.is_empty());
        }
        let (ann, _, _) = decode_all(&ctx, &msgs);
        assert_eq!(ann, nlri);
        let mut w = vec![];
        let mut mixed = v4(900, false);
        mixed.extend(v6(1200));
        withdraw(&ctx, &mixed, &mut w);
        let (ann, wd, _) = decode_all(&ctx, &w);
        assert!(ann.is_empty());
        assert_eq!(wd, mixed);
    }

    /// Attributes that cannot fit one message are refused whole, not sent
    /// truncated.
    #[test]
    fn attributes_too_large_are_refused() {
        let ctx = Ctx::default();
        let mut msgs = vec![];
        let e = announce(
            &ctx,
            &attrs(1100),
            &NextHop::V4(Ipv4Addr::new(10, 0, 0, 1)),
            &v4(3, false),
            &mut msgs,
        );
        assert!(e.is_err());
        assert!(msgs.is_empty());
        // The same set fits an extended message.
        let ext = Ctx {
            extended_message: true,
            ..Ctx::default()
        };
        announce(
            &ext,
            &attrs(1100),
            &NextHop::V4(Ipv4Addr::new(10, 0, 0, 1)),
            &v4(3, false),
            &mut msgs,
        )
        .unwrap();
        assert_eq!(msgs.len(), 1);
    }

    #[test]
    fn end_of_rib_decodes_as_one() {
        for af in [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST] {
            let m = end_of_rib(&Ctx::default(), af);
            let Message::Update(u) = Message::decode(&Ctx::default(), &m).unwrap() else {
                panic!()
            };
            assert_eq!(u.as_end_of_rib(), Some(af));
        }
    }
}
