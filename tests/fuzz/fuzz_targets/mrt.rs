//! MRT files through `wire::mrt::records`, and the whole `bgpd decode`
//! tool (format detection, hex parsing, text and JSON output) over the
//! same bytes.
#![no_main]

use std::hint::black_box;

use bgpd::cli::decode::{self, Options};
use bgpd::wire::{AfiSafiSet, mrt};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for rec in mrt::records(data) {
        let _ = black_box(rec);
    }
    for json in [false, true] {
        let opts = Options {
            json,
            two_octet_as: false,
            add_path: AfiSafiSet::EMPTY,
        };
        let _ = black_box(decode::run(data, &opts));
    }
});
