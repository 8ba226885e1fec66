//! The configuration parser fed arbitrary text.
//!
//! The first input byte picks the mode: with bit 7 set the rest is the
//! whole file; otherwise the rest is spliced into one of the shipped
//! examples (docs/examples/*.toml, compiled in, so every run starts from
//! real files): two bytes give the position, one the number of bytes
//! replaced, and the remainder is inserted there. That keeps most inputs
//! structurally close to a real configuration, where the validation code
//! lives.
//!
//! Checks:
//! - `config::parse` never panics;
//! - every error has a place: line ≥ 1 and column ≥ 1, the line exists in
//!   the text (or is the one after its end, for a missing key), the column
//!   is within the line (+1), and its `Display` starts with
//!   `FILE:LINE:COL: `;
//! - errors come in file order;
//! - an accepted configuration survives `to_toml` and parses again to the
//!   same value.
#![no_main]

use bgpd::config;
use libfuzzer_sys::fuzz_target;

const FILE: &str = "fuzz.toml";

const EXAMPLES: &[&str] = &[
    include_str!("../../../docs/examples/seed.toml"),
    include_str!("../../../docs/examples/listen-range.toml"),
    "local_as = 64512\nrouter_id = \"192.168.83.1\"\n",
    r#"local_as = 64512
router_id = "192.168.83.1"
hold_time = "1m30s"
keepalive = 30
listen = ["0.0.0.0:179", "[::]:1179"]
[import]
allow = ["172.16.0.0/16 le 32", { prefix = "10.0.0.0/8", ge = 16, le = 24 }]
deny = ["172.16.99.0/24"]
allow_default_route = false
[[peer]]
address = "192.168.83.36"
remote_as = 64512
password = "s3cret"
ttl_security = true
families = ["ipv4-unicast"]
add_path = []
required = ["route-refresh", "four-octet-as"]
max_prefix = { limit = 10, warning_percent = 50, restart_after = "30s" }
import = { allow = ["172.15.0.0/16 le 26"] }
[[peer]]
address = "fd00:83::2"
source = "fd00:83::1"
passive = true
connect_retry = "10s"
idle_hold = 2
[kernel]
table = 100
protocol = 200
graceful_restart_keep = "2m"
[metrics]
listen = "127.0.0.1:9179"
[mrt]
file = "/tmp/x.mrt"
[log]
level = "info,bgpd::fib=debug"
"#,
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text: String = if mode & 0x80 != 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let base = EXAMPLES[mode as usize % EXAMPLES.len()];
        if rest.len() < 3 {
            base.to_string()
        } else {
            let pos = u16::from_be_bytes([rest[0], rest[1]]) as usize % (base.len() + 1);
            let cut = (rest[2] as usize % 16).min(base.len() - pos);
            let mut b = base.as_bytes().to_vec();
            b.splice(pos..pos + cut, rest[3..].iter().copied());
            String::from_utf8_lossy(&b).into_owned()
        }
    };
    check(&text);
});

fn check(text: &str) {
    match config::parse(text, FILE) {
        Ok(cfg) => {
            let again = cfg.to_toml();
            match config::parse(&again, FILE) {
                Ok(c2) => assert_eq!(cfg, c2, "to_toml does not round-trip:\n{again}"),
                Err(e) => panic!("to_toml wrote a file parse refuses:\n{e}\n---\n{again}"),
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "Err with no error");
            let lines: Vec<&str> = text.split('\n').collect();
            let mut last = (0, 0);
            for e in errors.iter() {
                assert!(e.line >= 1 && e.col >= 1, "no place: {e:?}");
                assert!(
                    e.line <= lines.len() + 1,
                    "line {} beyond the text ({} lines): {e}",
                    e.line,
                    lines.len()
                );
                if let Some(l) = lines.get(e.line - 1) {
                    let width = l.chars().count();
                    assert!(
                        e.col <= width + 2,
                        "column {} beyond line {} ({width} chars): {e}",
                        e.col,
                        e.line
                    );
                }
                let shown = e.to_string();
                let prefix = format!("{FILE}:{}:{}: ", e.line, e.col);
                assert!(shown.starts_with(&prefix), "{shown:?} lacks {prefix:?}");
                assert!(!shown[prefix.len()..].trim().is_empty(), "empty message");
                assert!(
                    !shown.contains('\n'),
                    "error on more than one line: {shown:?}"
                );
                assert!(
                    (e.line, e.col) >= last || e.line == 1,
                    "errors out of file order: {last:?} then {e}"
                );
                last = (e.line, e.col);
            }
        }
    }
}
