//! Operations: the systemd unit.

mod common;

use std::process::Command;

fn verify(unit_text: &str, name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("bgpd-unit-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unit = dir.join(name);
    // Point the unit at the binary under test; verify checks it exists.
    let text = unit_text.replace("/usr/local/bin/bgpd", env!("CARGO_BIN_EXE_bgpd"));
    std::fs::write(&unit, text).unwrap();
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    ) + if o.status.success() { "" } else { "(failed)" }
}

#[test]
fn systemd_unit_verifies_cleanly() {
    if !common::netns::require(
        common::netns::have("systemd-analyze"),
        "systemd-analyze is missing",
    ) {
        return;
    }
    let unit = include_str!("../docs/systemd/bgpd.service");
    for want in [
        "Type=notify",
        "WatchdogSec=",
        "User=bgpd",
        "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_BIND_SERVICE",
        "ProtectSystem=strict",
        "ExecReload=",
    ] {
        assert!(unit.contains(want), "the unit lacks {want}");
    }
    let out = verify(unit, "bgpd.service");
    assert!(out.trim().is_empty(), "systemd-analyze verify:\n{out}");
    // The check can fail: a unit with a mistake is reported.
    let bad = unit.replace("Type=notify", "Type=notify\nWatchdogSecs=30");
    assert!(!verify(&bad, "bgpd.service").trim().is_empty());
}

/// What a container relies on, without Docker: bgpd in the foreground,
/// `bgpd health` exit codes, and a clean exit on SIGTERM.
#[test]
fn container_behaviour_health_and_sigterm() {
    use std::time::Duration;
    let Some(mut lab) = common::netns::Lab::new("container") else {
        return;
    };
    let ns = lab.ns("c");
    let peer = lab.ns("p");
    lab.link(
        &ns,
        "eth0",
        "192.168.83.1/24",
        &peer,
        "eth0",
        "192.168.83.36/24",
    );
    let sock = lab.path("bgpd.sock").to_string_lossy().to_string();
    // A peer that does not answer: bgpd runs, but no session is up.
    lab.bgpd(
        &ns,
        "bgpd",
        &[
            "--asn",
            "64512",
            "--peer",
            "192.168.83.36",
            "--control-socket",
            &sock,
        ],
    );
    let bgpd = env!("CARGO_BIN_EXE_bgpd");
    lab.wait_for("the control socket", Duration::from_secs(10), || {
        std::path::Path::new(&sock).exists()
    });
    let h = lab.sh(&ns, &format!("{bgpd} health --socket {sock}"));
    assert_eq!(h.status.code(), Some(1), "{h:?}");
    let out = String::from_utf8_lossy(&h.stdout);
    assert!(
        out.contains("0 of 1 sessions established, 0 paths"),
        "{out}"
    );
    // The configured peer has sent no End-of-RIB: the kernel's routes of a
    // previous run may still be stale.
    assert!(out.contains("kernel not synced yet"), "{out}");
    // A second bgpd for the peer: now a session comes up and health is 0.
    lab.bgpd(
        &peer,
        "bgpd-peer",
        &["--asn", "64512", "--peer", "192.168.83.1"],
    );
    lab.wait_for("health to turn 0", Duration::from_secs(30), || {
        lab.sh(&ns, &format!("{bgpd} health --socket {sock}"))
            .status
            .success()
    });
    // Its End-of-RIB ends the initial sync.
    lab.wait_for("the kernel synced", Duration::from_secs(30), || {
        let h = lab.sh(&ns, &format!("{bgpd} health --socket {sock}"));
        !String::from_utf8_lossy(&h.stdout).contains("not synced")
    });
    let st = lab.stop("bgpd").expect("ran");
    assert!(st.success(), "SIGTERM exit: {st}");
    assert!(!std::path::Path::new(&sock).exists(), "socket left behind");
}
