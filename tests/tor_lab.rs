//! Calico's "ToR as route reflector" design end to end: tests/lab/tor-test.sh
//! runs five calico-node (BIRD 1.6) nodes with the mesh off, each peering
//! only with the core, once with bgpd as the core and once with BIRD 2 as
//! the reference, and checks the nodes' kernels, pod-to-pod and VM pings,
//! the service ECMP and a node's withdrawal. It needs root, BIRD 1.6 and
//! BIRD 2; with CI=true a missing one fails.

mod common;

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
    common::run_lab_script(
        "tor-test.sh",
        "tor",
        &[("BIRD2_DIR", common::peers::bird2_dir())],
        "PASS: ToR lab (bgpd bird2)",
    );
}
