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
