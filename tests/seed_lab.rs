//! The seed end to end: tests/lab/seed-test.sh builds the blog's network in
//! namespaces (Calico's BIRD 1.6 reflectors started with -R, workers with
//! pods, a VM), runs bgpd as the core, checks the blog's ping, and injects
//! faults. It needs root and BIRD; with CI=true a missing one fails.

mod common;

use std::process::Command;

#[test]
fn seed_lab_end_to_end_with_faults() {
    use common::netns::{have, is_root, require};
    if !require(is_root(), "not root (the lab uses network namespaces)")
        || !require(have("bird") && have("birdc"), "BIRD 1.6 is not installed")
        || !require(have("ping"), "ping (iputils-ping) is not installed")
    {
        return;
    }
    let out = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/lab/seed-test.sh"
        ))
        .env("BGPD", env!("CARGO_BIN_EXE_bgpd"))
        .env("LAB_ID", format!("sl{}", std::process::id() % 100000))
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("PASS: seed lab"),
        "seed lab failed:\n{stdout}\n{stderr}"
    );
}
