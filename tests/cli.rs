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
        "--hold-time",
        "decode",
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
