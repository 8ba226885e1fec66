//! Malformed messages derived by mutating real captured ones: one per
//! RFC 4271 §6 subcode and one per RFC 7606 case. Each must give the exact
//! NOTIFICATION (code, subcode, data) and the RFC 7606 action.

mod common;

use bgpd::wire::iana::{attr, err};
use bgpd::wire::open::Capability;
use bgpd::wire::*;

/// A real message of a given shape from the captured set.
fn real(pred: impl Fn(&Message) -> bool) -> (Ctx, Vec<u8>) {
    for f in common::fixtures() {
        let ctx = f.ctx();
        let bytes = f.bytes();
        if let Ok(m) = Message::decode(&ctx, &bytes)
            && pred(&m)
        {
            return (ctx, bytes);
        }
    }
    panic!("no fixture of the wanted shape");
}

/// A reflected IPv4 UPDATE from Calico's BIRD 1.6 with classic NLRI.
fn reflected_update() -> (Ctx, Vec<u8>) {
    real(|m| match m {
        Message::Update(u) => {
            !u.nlri.is_empty()
                && u.attr(attr::ORIGINATOR_ID).is_some()
                && u.attr(attr::CLUSTER_LIST).is_some()
                && u.attr(attr::LOCAL_PREF).is_some()
        }
        _ => false,
    })
}

/// An IPv6 UPDATE with MP_REACH_NLRI.
fn mp_update() -> (Ctx, Vec<u8>) {
    real(|m| matches!(m, Message::Update(u) if u.mp_reach().is_some_and(|r| !r.nlri.is_empty())))
}

fn real_open() -> (Ctx, Vec<u8>) {
    real(|m| matches!(m, Message::Open(o) if o.capabilities().count() > 2))
}

/// An UPDATE split into its three fields, attributes one by one.
struct Parts {
    withdrawn: Vec<u8>,
    attrs: Vec<Vec<u8>>,
    nlri: Vec<u8>,
}

fn split(frame: &[u8]) -> Parts {
    let body = &frame[19..];
    let wlen = u16::from_be_bytes([body[0], body[1]]) as usize;
    let withdrawn = body[2..2 + wlen].to_vec();
    let rest = &body[2 + wlen..];
    let alen = u16::from_be_bytes([rest[0], rest[1]]) as usize;
    let mut a = &rest[2..2 + alen];
    let nlri = rest[2 + alen..].to_vec();
    let mut attrs = Vec::new();
    while !a.is_empty() {
        let ext = a[0] & 0x10 != 0;
        let (h, l) = if ext {
            (4, u16::from_be_bytes([a[2], a[3]]) as usize)
        } else {
            (3, a[2] as usize)
        };
        attrs.push(a[..h + l].to_vec());
        a = &a[h + l..];
    }
    Parts {
        withdrawn,
        attrs,
        nlri,
    }
}

impl Parts {
    fn build(&self) -> Vec<u8> {
        let attrs: Vec<u8> = self.attrs.concat();
        let mut body = Vec::new();
        body.extend_from_slice(&(self.withdrawn.len() as u16).to_be_bytes());
        body.extend_from_slice(&self.withdrawn);
        body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        body.extend_from_slice(&attrs);
        body.extend_from_slice(&self.nlri);
        frame(2, &body)
    }

    fn find(&self, code: u8) -> usize {
        self.attrs
            .iter()
            .position(|a| a[1] == code)
            .unwrap_or_else(|| panic!("base UPDATE has no {}", attr::name(code)))
    }

    /// Replaces the value of attribute `code`, keeping its flags.
    fn set_value(&mut self, code: u8, value: &[u8]) -> Vec<u8> {
        let i = self.find(code);
        let flags = self.attrs[i][0] & !0x10;
        self.attrs[i] = raw_attr(flags, code, value);
        self.attrs[i].clone()
    }
}

fn raw_attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut a = vec![flags, code];
    if value.len() > 255 || flags & 0x10 != 0 {
        a[0] |= 0x10;
        a.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        a.push(value.len() as u8);
    }
    a.extend_from_slice(value);
    a
}

fn frame(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0xff; 16];
    f.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    f.push(ty);
    f.extend_from_slice(body);
    f
}

/// Decodes as a session would: framing first, then the message.
fn decode(ctx: &Ctx, bytes: &[u8]) -> Result<Message, DecodeError> {
    match frame_len(ctx, bytes)? {
        Some(n) => Message::decode(ctx, &bytes[..n]),
        None => panic!("incomplete frame"),
    }
}

#[track_caller]
fn expect_reset(ctx: &Ctx, bytes: &[u8], code: u8, subcode: u8, data: Option<&[u8]>) {
    match decode(ctx, bytes) {
        Err(e) => {
            assert_eq!(
                (e.notification.code, e.notification.subcode),
                (code, subcode),
                "{e}"
            );
            if let Some(d) = data {
                assert_eq!(&e.notification.data[..], d, "{e}");
            }
        }
        Ok(m) => panic!("expected NOTIFICATION {code}/{subcode}, decoded {m:?}"),
    }
}

/// RFC 7606: the session stays; `action` applies, and the error records
/// the NOTIFICATION RFC 4271 would have sent.
#[track_caller]
fn expect_action(
    ctx: &Ctx,
    bytes: &[u8],
    action: Action,
    code: u8,
    subcode: u8,
    data: Option<&[u8]>,
) -> Update {
    let u = match decode(ctx, bytes) {
        Ok(Message::Update(u)) => u,
        other => panic!("expected an UPDATE with {action}, got {other:?}"),
    };
    assert_eq!(u.action(), Some(action), "{:?}", u.errors);
    let e = u
        .errors
        .iter()
        .find(|e| e.action == action)
        .expect("an error with the action");
    assert_eq!(
        (e.notification.code, e.notification.subcode),
        (code, subcode),
        "{e}"
    );
    if let Some(d) = data {
        assert_eq!(&e.notification.data[..], d, "{e}");
    }
    u
}

// ---- RFC 4271 §6.1 message header errors ----

#[test]
fn header_1_1_connection_not_synchronized() {
    let (ctx, mut b) = reflected_update();
    b[3] = 0xfe;
    expect_reset(&ctx, &b, 1, 1, Some(&[]));
}

#[test]
fn header_1_2_bad_length() {
    let (ctx, b) = reflected_update();
    // Below the minimum.
    let mut short = b.clone();
    short[16..18].copy_from_slice(&18u16.to_be_bytes());
    expect_reset(&ctx, &short, 1, 2, Some(&[0, 18]));
    // Above 4096 without Extended Message.
    let mut long = b.clone();
    long[16..18].copy_from_slice(&5000u16.to_be_bytes());
    expect_reset(&ctx, &long, 1, 2, Some(&5000u16.to_be_bytes()));
    // A KEEPALIVE with a body.
    expect_reset(&ctx, &frame(4, &[0]), 1, 2, Some(&[0, 20]));
    // An OPEN shorter than 29 octets.
    let (octx, open) = real_open();
    let cut = frame(1, &open[19..25]);
    expect_reset(&octx, &cut, 1, 2, Some(&[0, 25]));
    // A NOTIFICATION without its subcode.
    expect_reset(&ctx, &frame(3, &[6]), 1, 2, Some(&[0, 20]));
}

#[test]
fn header_1_2_extended_message_allows_more() {
    let (mut ctx, b) = reflected_update();
    let mut long = b.clone();
    long[16..18].copy_from_slice(&5000u16.to_be_bytes());
    ctx.extended_message = true;
    // Now only incomplete, not an error.
    assert_eq!(frame_len(&ctx, &long), Ok(None));
}

#[test]
fn header_1_3_bad_type() {
    let (ctx, mut b) = reflected_update();
    b[18] = 9;
    expect_reset(&ctx, &b, 1, 3, Some(&[9]));
}

// ---- RFC 4271 §6.2 OPEN message errors ----

#[test]
fn open_2_1_unsupported_version() {
    let (ctx, mut b) = real_open();
    b[19] = 3;
    expect_reset(&ctx, &b, 2, 1, Some(&[0, 4]));
}

#[test]
fn open_2_2_bad_peer_as() {
    let (ctx, b) = real_open();
    let Message::Open(o) = decode(&ctx, &b).unwrap() else {
        unreachable!()
    };
    let e = o
        .check_peer(
            Some(o.four_octet_asn() + 1),
            64512,
            "192.168.83.1".parse().unwrap(),
        )
        .unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (2, 2));
    o.check_peer(
        Some(o.four_octet_asn()),
        64512,
        "192.168.83.1".parse().unwrap(),
    )
    .unwrap();
}

#[test]
fn open_2_3_bad_bgp_identifier() {
    let (ctx, mut b) = real_open();
    // Zero identifier (RFC 6286).
    b[24..28].copy_from_slice(&[0, 0, 0, 0]);
    expect_reset(&ctx, &b, 2, 3, Some(&[]));
    // Our own identifier on iBGP.
    let (ctx, b) = real_open();
    let Message::Open(o) = decode(&ctx, &b).unwrap() else {
        unreachable!()
    };
    let e = o
        .check_peer(None, o.four_octet_asn(), o.bgp_id)
        .unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (2, 3));
}

#[test]
fn open_2_4_unsupported_optional_parameter() {
    let (ctx, mut b) = real_open();
    // The first optional parameter becomes type 1 (deprecated
    // authentication).
    assert_eq!(b[29], 2);
    b[29] = 1;
    expect_reset(&ctx, &b, 2, 4, Some(&[]));
}

#[test]
fn open_2_6_unacceptable_hold_time() {
    for hold in [1u16, 2] {
        let (ctx, mut b) = real_open();
        b[22..24].copy_from_slice(&hold.to_be_bytes());
        expect_reset(&ctx, &b, 2, 6, Some(&[]));
    }
}

#[test]
fn open_2_7_unsupported_capability() {
    let (ctx, b) = real_open();
    let Message::Open(o) = decode(&ctx, &b).unwrap() else {
        unreachable!()
    };
    let want = Capability::Multiprotocol {
        afi_safi: AfiSafi::new(25, 70),
    };
    let e = o.check_required(std::slice::from_ref(&want)).unwrap_err();
    assert_eq!((e.notification.code, e.notification.subcode), (2, 7));
    // The data is the missing capability as a TLV (RFC 5492 §3).
    assert_eq!(&e.notification.data[..], &[1, 4, 0, 25, 0, 70]);
}

#[test]
fn open_2_0_malformed_capability() {
    let (ctx, b) = real_open();
    // Rebuild the OPEN with a 4-octet AS capability of length 2.
    let mut body = b[19..28].to_vec();
    let caps = [65u8, 2, 0xfc, 0x00];
    body.push((caps.len() + 2) as u8);
    body.extend_from_slice(&[2, caps.len() as u8]);
    body.extend_from_slice(&caps);
    expect_reset(&ctx, &frame(1, &body), 2, 0, Some(&[]));
    // An optional parameter that overruns the OPEN.
    let mut over = b.clone();
    let n = over.len();
    over[28] = over[28].wrapping_add(1);
    let _ = n;
    expect_reset(&ctx, &over, 2, 0, Some(&[]));
}

#[test]
fn open_extended_optional_parameters_rfc9072() {
    let (ctx, b) = real_open();
    let Message::Open(mut o) = decode(&ctx, &b).unwrap() else {
        unreachable!()
    };
    o.extended_params = true;
    let bytes = Message::Open(o.clone()).to_bytes(&ctx).unwrap();
    assert_eq!(bytes[28], 255);
    assert_eq!(bytes[29], 255);
    assert_eq!(decode(&ctx, &bytes).unwrap(), Message::Open(o));
}

// ---- RFC 4271 §6.3 UPDATE errors, with RFC 7606 actions ----

#[test]
fn update_3_1_lengths_overrun_message() {
    let (ctx, b) = reflected_update();
    let mut p = b.clone();
    // Withdrawn Routes Length past the end.
    p[19..21].copy_from_slice(&4000u16.to_be_bytes());
    expect_reset(&ctx, &p, 3, 1, Some(&[]));
    // Total Path Attribute Length past the end.
    let wlen = u16::from_be_bytes([b[19], b[20]]) as usize;
    let mut q = b.clone();
    q[21 + wlen..23 + wlen].copy_from_slice(&4000u16.to_be_bytes());
    expect_reset(&ctx, &q, 3, 1, Some(&[]));
}

#[test]
fn update_3_1_repeated_mp_reach_resets() {
    // RFC 7606 §3(g).
    let (ctx, b) = mp_update();
    let mut p = split(&b);
    let i = p.find(attr::MP_REACH_NLRI);
    let dup = p.attrs[i].clone();
    p.attrs.push(dup);
    expect_reset(&ctx, &p.build(), 3, 1, Some(&[]));
}

#[test]
fn update_repeated_attribute_is_discarded() {
    // RFC 7606 §3(g): all but the first occurrence are discarded.
    let (ctx, b) = reflected_update();
    let mut p = split(&b);
    p.attrs
        .push(raw_attr(0x40, attr::LOCAL_PREF, &[0, 0, 0, 7]));
    let u = expect_action(&ctx, &p.build(), Action::AttributeDiscard, 3, 1, None);
    let Message::Update(orig) = decode(&ctx, &b).unwrap() else {
        unreachable!()
    };
    assert_eq!(u.attr(attr::LOCAL_PREF), orig.attr(attr::LOCAL_PREF));
    assert_eq!(u.nlri, orig.nlri);
}

#[test]
fn update_3_2_unrecognized_well_known() {
    let (ctx, b) = reflected_update();
    let mut p = split(&b);
    let a = raw_attr(0x40, 99, &[1, 2, 3]);
    p.attrs.push(a.clone());
    expect_reset(&ctx, &p.build(), 3, 2, Some(&a));
}

#[test]
fn update_3_3_missing_well_known() {
    let (ctx, b) = reflected_update();
    for code in [attr::ORIGIN, attr::AS_PATH, attr::NEXT_HOP] {
        let mut p = split(&b);
        let i = p.find(code);
        p.attrs.remove(i);
        expect_action(
            &ctx,
            &p.build(),
            Action::TreatAsWithdraw,
            3,
            3,
            Some(&[code]),
        );
    }
    // NEXT_HOP is not needed for MP_REACH_NLRI-only UPDATEs (RFC 4760 §3).
    let (ctx, b) = mp_update();
    let m = decode(&ctx, &b).unwrap();
    assert!(matches!(m, Message::Update(ref u) if u.errors.is_empty()));
}

#[test]
fn update_3_4_attribute_flags() {
    let (ctx, b) = reflected_update();
    let mut p = split(&b);
    let i = p.find(attr::ORIGIN);
    p.attrs[i][0] |= 0x80; // Optional bit on a well-known attribute.
    let a = p.attrs[i].clone();
    expect_action(&ctx, &p.build(), Action::TreatAsWithdraw, 3, 4, Some(&a));
}

#[test]
fn update_3_5_attribute_length() {
    let (ctx, b) = reflected_update();
    for (code, value) in [
        (attr::ORIGIN, &[0u8, 0][..]),
        (attr::NEXT_HOP, &[10, 0, 0][..]),
        (attr::LOCAL_PREF, &[0, 0, 0, 100, 0][..]),
        (attr::ORIGINATOR_ID, &[1, 2, 3, 4, 5][..]),
        (attr::CLUSTER_LIST, &[224, 0, 0, 1, 0, 0][..]),
    ] {
        let mut p = split(&b);
        let a = p.set_value(code, value);
        expect_action(&ctx, &p.build(), Action::TreatAsWithdraw, 3, 5, Some(&a));
    }
}

/// Optional attributes that the base UPDATE lacks, added malformed.
#[test]
fn update_rfc7606_optional_attribute_lengths() {
    let (ctx, b) = reflected_update();
    for (flags, code, value, action, subcode) in [
        // RFC 7606 §7.4.
        (
            0x80,
            attr::MULTI_EXIT_DISC,
            &[0u8, 0, 1][..],
            Action::TreatAsWithdraw,
            5,
        ),
        // RFC 7606 §7.6.
        (
            0x40,
            attr::ATOMIC_AGGREGATE,
            &[1][..],
            Action::AttributeDiscard,
            5,
        ),
        // RFC 7606 §7.7 (7 octets fits neither form).
        (
            0xc0,
            attr::AGGREGATOR,
            &[0, 0, 0xfc, 0, 10, 0, 0][..],
            Action::AttributeDiscard,
            5,
        ),
        // RFC 7606 §7.8.
        (
            0xc0,
            attr::COMMUNITIES,
            &[0, 0, 1, 0, 1][..],
            Action::TreatAsWithdraw,
            5,
        ),
        (0xc0, attr::COMMUNITIES, &[][..], Action::TreatAsWithdraw, 5),
        // RFC 7606 §7.14.
        (
            0xc0,
            attr::EXTENDED_COMMUNITIES,
            &[0; 9][..],
            Action::TreatAsWithdraw,
            5,
        ),
        // RFC 8092 §5.
        (
            0xc0,
            attr::LARGE_COMMUNITY,
            &[0; 13][..],
            Action::TreatAsWithdraw,
            5,
        ),
        // RFC 6793 §6.
        (
            0xc0,
            attr::AS4_AGGREGATOR,
            &[0; 6][..],
            Action::AttributeDiscard,
            5,
        ),
        (
            0xc0,
            attr::AS4_PATH,
            &[2, 2, 0, 0, 0, 1][..],
            Action::AttributeDiscard,
            9,
        ),
    ] {
        let mut p = split(&b);
        let a = raw_attr(flags, code, value);
        p.attrs.push(a.clone());
        let u = expect_action(&ctx, &p.build(), action, 3, subcode, Some(&a));
        if action == Action::AttributeDiscard {
            assert!(u.attr(code).is_none(), "{} kept", attr::name(code));
            assert!(!u.nlri.is_empty());
        }
    }
}

#[test]
fn update_3_6_invalid_origin() {
    let (ctx, b) = reflected_update();
    let mut p = split(&b);
    let a = p.set_value(attr::ORIGIN, &[3]);
    expect_action(&ctx, &p.build(), Action::TreatAsWithdraw, 3, 6, Some(&a));
}

#[test]
fn update_3_8_invalid_next_hop() {
    let (ctx, b) = reflected_update();
    for nh in [[0u8, 0, 0, 0], [224, 0, 0, 5], [255, 255, 255, 255]] {
        let mut p = split(&b);
        let a = p.set_value(attr::NEXT_HOP, &nh);
        expect_action(&ctx, &p.build(), Action::TreatAsWithdraw, 3, 8, Some(&a));
    }
}

#[test]
fn update_3_9_malformed_mp_reach_resets() {
    // RFC 7606 §7.11 / RFC 4760 §7: a next hop length that fits no form.
    let (ctx, b) = mp_update();
    let mut p = split(&b);
    let i = p.find(attr::MP_REACH_NLRI);
    let a = &mut p.attrs[i];
    let h = if a[0] & 0x10 != 0 { 4 } else { 3 };
    let nh_len = a[h + 3];
    assert!(nh_len == 16 || nh_len == 32, "base has an IPv6 next hop");
    a[h + 3] = nh_len - 1;
    let a = a.clone();
    expect_reset(&ctx, &p.build(), 3, 9, Some(&a));
}

#[test]
fn update_3_10_invalid_network_field() {
    // RFC 7606 §5.3: NLRI that cannot be parsed reset the session.
    let (ctx, b) = reflected_update();
    let mut p = split(&b);
    let skip = if ctx.add_path_rx.contains(AfiSafi::IPV4_UNICAST) {
        4
    } else {
        0
    };
    p.nlri[skip] = 33;
    expect_reset(&ctx, &p.build(), 3, 10, Some(&[]));
    let mut p = split(&b);
    p.nlri.truncate(p.nlri.len() - 1);
    expect_reset(&ctx, &p.build(), 3, 10, Some(&[]));
}

#[test]
fn update_3_11_malformed_as_path() {
    let (ctx, b) = reflected_update();
    let asn = if ctx.four_octet_as { 4 } else { 2 };
    for value in [
        vec![5, 1, 0, 0, 0, 1][..2 + asn].to_vec(), // unknown segment type
        vec![2, 0],                                 // zero-length segment
        vec![2, 2, 0, 1],                           // overrun
        vec![2],                                    // underrun: a lone octet
    ] {
        let mut p = split(&b);
        let a = p.set_value(attr::AS_PATH, &value);
        expect_action(&ctx, &p.build(), Action::TreatAsWithdraw, 3, 11, Some(&a));
    }
}

#[test]
fn update_rfc7606_4_attribute_overruns_total_length() {
    // The last attribute claims more octets than remain: treat-as-withdraw,
    // and the NLRI are still found through the Total Path Attribute Length.
    let (ctx, b) = reflected_update();
    let mut p = split(&b);
    let last = p.attrs.len() - 1;
    let a = &mut p.attrs[last];
    if a[0] & 0x10 != 0 {
        a[3] = a[3].wrapping_add(5);
    } else {
        a[2] = a[2].wrapping_add(5);
    }
    let u = expect_action(&ctx, &p.build(), Action::TreatAsWithdraw, 3, 5, None);
    assert!(!u.nlri.is_empty(), "NLRI located despite the overrun");
}

#[test]
fn update_rfc7606_5_2_overrun_without_visible_nlri_resets() {
    // With no NLRI anywhere to withdraw, an overrun could hide an
    // MP_REACH_NLRI: only a session reset is safe.
    let (ctx, b) = reflected_update();
    let mut p = split(&b);
    p.nlri.clear();
    let last = p.attrs.len() - 1;
    let n = p.attrs[last].len();
    p.attrs[last].truncate(n - 1);
    expect_reset(&ctx, &p.build(), 3, 5, None);
}

#[test]
fn update_rfc7606_strongest_action_wins() {
    let (ctx, b) = reflected_update();
    let mut p = split(&b);
    p.attrs.push(raw_attr(0x40, attr::ATOMIC_AGGREGATE, &[1])); // discard
    p.set_value(attr::ORIGIN, &[7]); // treat-as-withdraw
    let u = expect_action(&ctx, &p.build(), Action::TreatAsWithdraw, 3, 6, None);
    assert_eq!(u.errors.len(), 2);
    assert!(u.treat_as_withdraw());
}

// ---- RFC 7313 §5 ROUTE-REFRESH errors ----

#[test]
fn route_refresh_7_1_invalid_length() {
    let (ctx, _) = reflected_update();
    // A BoRR for IPv4 unicast with one octet too many.
    let b = frame(5, &[0, 1, 1, 1, 0]);
    expect_reset(&ctx, &b, err::ROUTE_REFRESH, 1, Some(&b));
    // A normal request may carry ORF data; it is kept, not an error.
    let ok = frame(5, &[0, 1, 0, 1, 9, 9]);
    assert!(decode(&ctx, &ok).is_ok());
}

// ---- A truncated stream ----

#[test]
fn truncated_stream_reports() {
    let (ctx, b) = reflected_update();
    let mut two = b.clone();
    two.extend_from_slice(&b[..b.len() - 3]);
    let results: Vec<_> = decode_stream(&ctx, &two).collect();
    assert_eq!(results.len(), 2);
    assert!(results[0].is_ok());
    assert!(results[1].is_err());
}
