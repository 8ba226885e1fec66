//! The seed end to end: tests/lab/seed-test.sh builds the blog's network in
//! namespaces (Calico's BIRD 1.6 reflectors started with -R, workers with
//! pods, a VM), runs bgpd as the core, checks the blog's ping, and injects
//! faults. It needs root and BIRD; with CI=true a missing one fails.

mod common;

#[test]
fn seed_lab_end_to_end_with_faults() {
    use common::netns::{have, is_root, require};
    if !require(is_root(), "not root (the lab uses network namespaces)")
        || !require(have("bird") && have("birdc"), "BIRD 1.6 is not installed")
        || !require(have("ping"), "ping (iputils-ping) is not installed")
    {
        return;
    }
    common::run_lab_script("seed-test.sh", "sl", &[], "PASS: seed lab");
}
