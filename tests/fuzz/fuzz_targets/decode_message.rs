//! One BGP message. The first input byte selects the session context
//! (bit 0 four_octet_as, bit 1 extended_message, bit 2 ADD-PATH IPv4
//! unicast, bit 3 ADD-PATH IPv6 unicast); the rest is framed with
//! `frame_len` and decoded. Oracle: whatever decodes must re-encode with
//! the same context and decode again to an equal value
//! (decode ∘ encode ∘ decode == decode).
#![no_main]

use bgpd::wire::{self, AfiSafi, AfiSafiSet, Ctx, Message};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

fn ctx(flags: u8) -> Ctx {
    let mut ap = AfiSafiSet::EMPTY;
    if flags & 4 != 0 {
        ap.insert(AfiSafi::IPV4_UNICAST);
    }
    if flags & 8 != 0 {
        ap.insert(AfiSafi::IPV6_UNICAST);
    }
    Ctx {
        four_octet_as: flags & 1 != 0,
        extended_message: flags & 2 != 0,
        add_path_rx: ap,
        add_path_tx: ap,
    }
}

/// RFC 7606 errors are not re-encoded (the offending attributes are
/// dropped), so they are left out of the comparison.
fn without_errors(mut m: Message) -> Message {
    if let Message::Update(u) = &mut m {
        u.errors.clear();
    }
    m
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, buf)) = data.split_first() else {
        return;
    };
    let ctx = ctx(flags);
    let Ok(Some(len)) = wire::frame_len(&ctx, buf) else {
        return;
    };
    let Ok(first) = Message::decode(&ctx, &buf[..len]) else {
        return;
    };
    let mut out = BytesMut::new();
    first
        .encode(&ctx, &mut out)
        .expect("a decoded message re-encodes within the length limit");
    let second = Message::decode(&ctx, &out).expect("a re-encoded message decodes");
    assert_eq!(without_errors(first), without_errors(second));
});
