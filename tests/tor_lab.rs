//! Calico's "ToR as route reflector" design end to end: tests/lab/tor-test.sh
//! runs five calico-node (BIRD 1.6) nodes with the mesh off, each peering
//! only with the core, once with bgpd as the core and once with BIRD 2 as
//! the reference, and checks the nodes' kernels, pod-to-pod and VM pings,
//! the service ECMP and a node's withdrawal. It needs root, BIRD 1.6 and
//! BIRD 2; with CI=true a missing one fails.

mod common;

use std::process::Command;

#[test]
fn tor_route_reflector_for_five_calico_nodes() {
    use common::netns::{have, is_root, require};
    use common::peers::have_bird2;
    if !require(is_root(), "not root (the lab uses network namespaces)")
        || !require(have("bird") && have("birdc"), "BIRD 1.6 is not installed")
        || !require(have("ping"), "ping (iputils-ping) is not installed")
        || !have_bird2()
    {
        return;
    }
    let out = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/lab/tor-test.sh"
        ))
        .env("BGPD", env!("CARGO_BIN_EXE_bgpd"))
        .env("BIRD2_DIR", common::peers::bird2_dir())
        .env("LAB_ID", format!("tor{}", std::process::id() % 100000))
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("PASS: ToR lab (bgpd bird2)"),
        "ToR lab failed:\n{stdout}\n{stderr}"
    );
}
