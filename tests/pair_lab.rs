//! Two cores, no single point of failure: tests/lab/pair-test.sh runs the
//! seed lab with a redundant pair of bgpd cores and keepalived (VRRPv3,
//! docs/examples/pair/) holding the gateway addresses, and measures with
//! 50 ms pings from the VM what each fault costs: the master box dying,
//! its LAN link going down, its sessions dropping (closed by the
//! reflectors, and bgpd stopped), and each time the old master's return.
//! It needs root, BIRD 1.6 and keepalived; with CI=true a missing one fails.

mod common;

#[test]
fn two_cores_with_keepalived_survive_each_fault() {
    use common::netns::{have, is_root, require};
    if !require(is_root(), "not root (the lab uses network namespaces)")
        || !require(have("bird") && have("birdc"), "BIRD 1.6 is not installed")
        || !require(have("keepalived"), "keepalived is not installed")
        || !require(have("ping"), "ping (iputils-ping) is not installed")
    {
        return;
    }
    let stdout = common::run_lab_script("pair-test.sh", "pair", &[], "PASS: two-core lab");
    // Every fault and every return was measured and printed.
    for fault in ["1 ", "1' ", "2 ", "2' ", "3a ", "3a' ", "3b ", "3b' "] {
        assert!(
            stdout.contains(&format!("measured: {fault}")),
            "no figure for fault {fault}:\n{stdout}"
        );
    }
}
