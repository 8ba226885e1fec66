//! A byte stream of concatenated messages through `wire::decode_stream`.
//! The first input byte selects the context as in `decode_message`.
#![no_main]

use std::hint::black_box;

use bgpd::wire::{self, AfiSafi, AfiSafiSet, Ctx};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, buf)) = data.split_first() else {
        return;
    };
    let mut ap = AfiSafiSet::EMPTY;
    if flags & 4 != 0 {
        ap.insert(AfiSafi::IPV4_UNICAST);
    }
    if flags & 8 != 0 {
        ap.insert(AfiSafi::IPV6_UNICAST);
    }
    let ctx = Ctx {
        four_octet_as: flags & 1 != 0,
        extended_message: flags & 2 != 0,
        add_path_rx: ap,
        add_path_tx: ap,
    };
    let mut consumed = 0;
    for item in wire::decode_stream(&ctx, buf) {
        match item {
            Ok((m, frame)) => {
                consumed += frame.len();
                black_box(m.to_string());
            }
            Err(e) => {
                black_box(e);
            }
        }
    }
    assert!(consumed <= buf.len());
});
