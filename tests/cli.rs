//! Errors for people: each mistake gets one line on stderr saying what is
//! wrong and how to fix it, and a non-zero exit.

mod common;

use std::process::{Command, Output};

fn bgpd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bgpd"))
        .args(args)
        .env("BGPD_LOG", "error")
        .output()
        .unwrap()
}

#[track_caller]
fn fails_with(args: &[&str], code: i32, needle: &str) {
    let o = bgpd(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(code), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: {err}");
    let lines: Vec<&str> = err
        .lines()
        // clap's own trailer: a usage block and a pointer to --help.
        .filter(|l| {
            !l.trim().is_empty()
                && !l.starts_with(' ')
                && !l.starts_with("For more information")
                && !l.starts_with("Usage:")
        })
        .collect();
    assert_eq!(lines.len(), 1, "{args:?}: expected one line, got:\n{err}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

#[test]
fn missing_asn() {
    fails_with(
        &["--peer", "192.168.83.36"],
        2,
        "give --config FILE, or --asn N",
    );
}

#[test]
fn nothing_to_do() {
    fails_with(&["--asn", "64512"], 1, "give at least one --peer");
}

#[test]
fn bad_flag_values() {
    fails_with(&["--asn", "sixty"], 2, "invalid value 'sixty'");
    fails_with(
        &["--asn", "64512", "--peer", "192.168.83.999"],
        2,
        "is not an IP address",
    );
    fails_with(
        &["--asn", "64512", "--peer", "192.168.83.36,colour=blue"],
        2,
        "unknown peer option 'colour=blue'",
    );
    fails_with(
        &["--asn", "64512", "--listen-range", "192.168.83.0/33"],
        2,
        "invalid value",
    );
    fails_with(&["--bogus"], 2, "unexpected argument '--bogus'");
    // A flag that the file would silently override is refused.
    fails_with(
        &[
            "--config",
            "/etc/bgpd/bgpd.toml",
            "--graceful-restart-keep",
            "5",
        ],
        2,
        "cannot be used with",
    );
}

#[test]
fn bad_hold_time() {
    fails_with(
        &[
            "--asn",
            "64512",
            "--peer",
            "192.168.83.36",
            "--hold-time",
            "2",
            "--router-id",
            "192.168.83.1",
        ],
        1,
        "0 or at least 3 seconds",
    );
}

#[test]
fn password_too_long() {
    let pw = format!("192.168.83.36,password={}", "x".repeat(81));
    fails_with(
        &[
            "--asn",
            "64512",
            "--peer",
            &pw,
            "--router-id",
            "192.168.83.1",
        ],
        1,
        "at most 80",
    );
}

#[test]
fn listen_address_in_use() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    fails_with(
        &[
            "--asn",
            "64512",
            "--peer",
            "127.0.0.2",
            "--router-id",
            "10.9.9.9",
            "--listen",
            &addr,
        ],
        1,
        "the address is in use",
    );
}

/// Port 179 without CAP_NET_BIND_SERVICE: run as `nobody` (needs root to
/// switch; skipped otherwise, and CI runs as root).
#[test]
fn port_179_without_privilege() {
    if !common::netns::require(
        common::netns::is_root(),
        "not root (needed to run as nobody)",
    ) {
        return;
    }
    let exe = env!("CARGO_BIN_EXE_bgpd");
    // The binary must be reachable by nobody: copy it somewhere readable.
    let dir = std::env::temp_dir().join(format!("bgpd-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("bgpd");
    std::fs::copy(exe, &copy).unwrap();
    Command::new("chmod")
        .args(["-R", "a+rx"])
        .arg(&dir)
        .status()
        .unwrap();
    let o = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&copy)
        .args([
            "--asn",
            "64512",
            "--peer",
            "127.0.0.2",
            "--router-id",
            "10.9.9.9",
            "--listen",
            "127.0.0.1:179",
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("permission denied") && err.contains("CAP_NET_BIND_SERVICE"),
        "{err}"
    );
    assert_eq!(
        err.lines().filter(|l| l.starts_with("bgpd:")).count(),
        1,
        "{err}"
    );
}

#[test]
fn decode_errors() {
    fails_with(
        &["decode", "/nonexistent/file"],
        2,
        "cannot read /nonexistent/file",
    );
    let dir = std::env::temp_dir().join(format!("bgpd-cli-dec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("junk.txt");
    std::fs::write(&f, "this is not hex\n").unwrap();
    fails_with(&["decode", f.to_str().unwrap()], 2, "is not a hex digit");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn decode_reports_a_malformed_message_and_exits_1() {
    // A KEEPALIVE, then an UPDATE whose NLRI has prefix length 33.
    let hex = "ffffffffffffffffffffffffffffffff001304 \
               ffffffffffffffffffffffffffffffff001c02 0000 0000 21 0a000000 00";
    let o = Command::new(env!("CARGO_BIN_EXE_bgpd"))
        .args(["decode", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(hex.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("KEEPALIVE"), "{out}");
    assert!(
        out.contains("3/10") && out.contains("Invalid Network Field"),
        "{out}"
    );
}

#[test]
fn help_is_complete() {
    let o = bgpd(&["--help"]);
    let h = String::from_utf8_lossy(&o.stdout);
    for want in [
        "--peer",
        "--asn",
        "--router-id",
        "--listen-range",
        "--no-install",
        "--graceful-restart-keep",
        "--hold-time",
        "decode",
        "stop",
    ] {
        assert!(h.contains(want), "--help lacks {want}");
    }
}

#[test]
fn show_without_a_daemon() {
    fails_with(
        &["show", "neighbors", "--socket", "/nonexistent/bgpd.sock"],
        1,
        "bgpd is not running",
    );
    fails_with(
        &["health", "--socket", "/nonexistent/bgpd.sock"],
        1,
        "bgpd is not running",
    );
    fails_with(
        &["stop", "--flush", "--socket", "/nonexistent/bgpd.sock"],
        1,
        "bgpd is not running",
    );
}

/// keepalived's track script: one verdict line on stdout, exit 1 when no
/// bgpd answers (the core gives its addresses up), and bad options refused
/// by name.
#[test]
fn track_without_a_daemon() {
    let o = bgpd(&["track", "--socket", "/nonexistent/bgpd.sock"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert_eq!(
        out.trim(),
        "bgpd track: not fit to forward: bgpd is not running (no control socket at /nonexistent/bgpd.sock); start it, or give --socket PATH"
    );
    // A socket that takes the connection and never answers: the verdict
    // comes when --timeout-ms has passed, and says so.
    let dir = std::env::temp_dir().join(format!("bgpd-track-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("stuck.sock");
    let _ = std::fs::remove_file(&sock);
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let o = bgpd(&[
        "track",
        "--socket",
        sock.to_str().unwrap(),
        "--timeout-ms",
        "200",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert_eq!(
        out.trim(),
        format!(
            "bgpd track: not fit to forward: bgpd did not answer on {} within 200 ms: it is stuck or overloaded (see its log)",
            sock.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
    fails_with(&["track", "--min-established", "0"], 2, "--min-established");
    fails_with(&["track", "--timeout-ms", "x"], 2, "--timeout-ms");
}

/// The skip helper fails under CI: a missing prerequisite there is an
/// error, never a silent pass.
#[test]
fn a_skip_fails_under_ci() {
    if !common::in_ci() {
        common::skip("the skip helper's own check needs CI=true");
        return;
    }
    let r = std::panic::catch_unwind(|| common::skip("a prerequisite is missing"));
    assert!(r.is_err(), "skip() returned under CI=true");
}

/// `bgpd decode` on raw message files (several at once), as text and as
/// JSON: each decodes to what the fixture is (tshark checks the meaning
/// of the same files in codec_fixtures).
#[test]
fn decode_raw_files() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/proto-fixtures");
    let upd = format!("{dir}/exabgp/007-update-ipv4-1nlri-as4path.bin");
    let open = format!("{dir}/bird2/001-open.bin");
    // ExaBGP's session had no 4-octet AS capability (the manifest says so).
    let o = bgpd(&["decode", "--two-octet-as", &open, &upd]);
    assert!(o.status.success(), "{o:?}");
    let text = String::from_utf8_lossy(&o.stdout);
    for want in [
        "OPEN as 64512 hold 240 id 192.168.83.1",
        "AS_PATH 23456 65043 23456",
        "AS4_PATH 4200000041 65043 4200000043",
        "COMMUNITIES 65043:1",
        "nlri 172.15.43.0/24",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }
    let o = bgpd(&["decode", "--json", "--two-octet-as", &upd]);
    assert!(o.status.success(), "{o:?}");
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    let want: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{dir}/exabgp/007-update-ipv4-1nlri-as4path.json"))
            .unwrap(),
    )
    .unwrap();
    let msg = j.get("message").unwrap_or(&j);
    assert_eq!(
        msg, &want,
        "bgpd decode --json differs from the library's decode"
    );
}

/// `bgpd decode` on MRT: BGP4MP messages and a TABLE_DUMP_V2 RIB, checked
/// route by route against bgpdump.
#[test]
fn decode_mrt_matches_bgpdump() {
    if !common::require(
        common::have("bgpdump"),
        "bgpdump is not installed (run .ci/setup)",
    ) {
        return;
    }
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fuzz/seeds/mrt/bgp4mp-and-rib.mrt"
    );
    let n = common::mrt::matches_bgpdump(env!("CARGO_BIN_EXE_bgpd"), file);
    assert!(n >= 14, "only {n} routes compared");
    let o = bgpd(&["decode", file]);
    assert!(o.status.success(), "{o:?}");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("10.0.0.16/28") && text.contains("withdrawn 10.1.2.0/24"),
        "{text}"
    );
}

/// Shell completions: the bash script loads and completes subcommands
/// (`bgpd sh` -> show, `bgpd show ro` -> route, routes); zsh and fish
/// scripts name every subcommand.
#[test]
fn shell_completions_complete() {
    let o = bgpd(&["completions", "bash"]);
    assert!(o.status.success(), "{o:?}");
    let dir = std::env::temp_dir().join(format!("bgpd-compl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("bgpd.bash");
    std::fs::write(&script, &o.stdout).unwrap();
    let run = |words: &str, cword: usize| -> String {
        let cmd = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={cword}; \
             COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; \
             _bgpd bgpd \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; \
             echo \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let o = Command::new("bash").args(["-c", &cmd]).output().unwrap();
        assert!(o.status.success(), "{o:?}");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(run("bgpd sh", 1), "show");
    let mut got: Vec<String> = run("bgpd show ro", 2)
        .split_whitespace()
        .map(String::from)
        .collect();
    got.sort();
    assert_eq!(got, ["route", "routes"]);
    assert!(run("bgpd dec", 1) == "decode");
    let _ = std::fs::remove_dir_all(&dir);
    for shell in ["zsh", "fish"] {
        let o = bgpd(&["completions", shell]);
        assert!(o.status.success(), "{o:?}");
        let text = String::from_utf8_lossy(&o.stdout);
        for sub in [
            "decode",
            "show",
            "check",
            "reload",
            "health",
            "track",
            "completions",
        ] {
            assert!(text.contains(sub), "{shell} completions lack {sub}");
        }
    }
    fails_with(&["completions", "tcsh"], 2, "invalid value");
}
