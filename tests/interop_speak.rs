//! bgpd speaking to real peers: as the route reflector of Calico-style
//! nodes (BIRD 2, FRR and GoBGP as its clients, each announcing a pod
//! block), and towards an eBGP upstream (FRR) with an export policy. Each
//! peer's own table is read (birdc, vtysh, gobgp), FRR's zebra installs
//! what it learned into its namespace's kernel, the reflected UPDATEs are
//! decoded by tshark, and bgpd's Adj-RIB-Out is read back with
//! `bgpd show advertised`.
//!
//! These need root and the daemons (.ci/setup installs them). Outside CI
//! they skip when those are missing; with CI=true they fail.

mod common;

use std::time::Duration;

use common::netns::Lab;
use common::peers::*;

const CORE: &str = "192.168.83.1";
const BIRD: &str = "192.168.83.2";
const FRR: &str = "192.168.83.3";
const GOBGP: &str = "192.168.83.4";

fn bgpd_show(lab: &Lab, ns: &str, sock: &str, what: &str) -> String {
    lab.sh_text(
        ns,
        &format!("{} show {what} --socket {sock}", env!("CARGO_BIN_EXE_bgpd")),
    )
}

/// Whether `ip route` output routes `prefix` via `via`. FRR's zebra
/// installs through nexthop objects, so its lines read
/// "PREFIX nhid N via ADDR ...".
fn routed(k: &str, prefix: &str, via: &str) -> bool {
    k.lines()
        .any(|l| l.split_whitespace().next() == Some(prefix) && l.contains(&format!(" via {via} ")))
}

fn frr_conf(me: &str, extra_af: &str, extra: &str) -> String {
    format!(
        r#"hostname frr
log stdout informational
router bgp 64512
 bgp router-id {me}
 bgp log-neighbor-changes
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor {CORE} remote-as 64512
 neighbor {CORE} timers 3 9
{extra}
 address-family ipv4 unicast
{extra_af}
 exit-address-family
"#
    )
}

/// Calico's "ToR as route reflector" design with three different BGP
/// implementations as the nodes: each one's pod block reaches the other
/// two with ORIGINATOR_ID and CLUSTER_LIST (RFC 4456), never itself; the
/// core's own network reaches all three; a withdrawal reaches them too.
#[test]
fn route_reflector_for_bird2_frr_and_gobgp_nodes() {
    if !have_all(&["tshark", "vtysh", "/usr/lib/frr/bgpd", "gobgpd", "gobgp"]) || !have_bird2() {
        return;
    }
    let Some(mut lab) = Lab::new("rr") else {
        return;
    };
    let hub = lab.lan();
    let core = lab.attach(&hub, "core", &format!("{CORE}/24"));
    let bird = lab.attach(&hub, "bird", &format!("{BIRD}/24"));
    let frr = lab.attach(&hub, "frr", &format!("{FRR}/24"));
    let gobgp_ns = lab.attach(&hub, "gobgp", &format!("{GOBGP}/24"));

    let sock = start_bird2(
        &mut lab,
        &bird,
        "bird",
        &format!(
            r#"log stderr all;
router id {BIRD};
protocol device {{ }}
protocol direct {{ ipv4; }}
protocol static {{ ipv4; route 172.15.200.0/26 blackhole; }}
protocol bgp core {{
  local {BIRD} as 64512;
  neighbor {CORE} as 64512;
  hold time 9;
  ipv4 {{ import all; export where source = RTS_STATIC; }};
}}
"#
        ),
    );
    let dir = start_frr(
        &mut lab,
        &frr,
        "frr",
        &frr_conf(FRR, "  network 172.15.201.0/26", ""),
    );
    start_gobgp(
        &mut lab,
        &gobgp_ns,
        "gobgp",
        &format!(
            r#"[global.config]
  as = 64512
  router-id = "{GOBGP}"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{CORE}"
    peer-as = 64512
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 3
"#
        ),
    );
    let cap = lab.capture(&core, "eth0", "cap");
    let ctl = lab.path("bgpd.sock").to_string_lossy().to_string();
    lab.core_bgpd(
        &core,
        "bgpd",
        &[
            "--hold-time",
            "9",
            "--cluster-id",
            "224.0.0.1",
            "--network",
            "192.168.82.0/24",
            "--peer",
            &format!("{BIRD},rr-client"),
            "--peer",
            &format!("{FRR},rr-client"),
            "--peer",
            &format!("{GOBGP},rr-client"),
            "--control-socket",
            &ctl,
        ],
    );
    lab.wait_for("three sessions", Duration::from_secs(60), || {
        bgpd_show(&lab, &core, &ctl, "neighbors --json")
            .matches("\"up\"")
            .count()
            == 3
    });
    let out = gobgp(
        &lab,
        &gobgp_ns,
        "global rib add 172.15.202.0/26 nexthop 192.168.83.4",
    );
    assert!(!out.contains("rror"), "{out}");

    // BIRD 2 sees FRR's and GoBGP's blocks reflected, and the network.
    let bird_route = |prefix: &str| {
        birdc(
            &lab,
            &bird,
            &sock,
            &format!("show route {prefix} all"),
            true,
        )
    };
    lab.wait_for(
        "BIRD 2 to learn the reflected blocks",
        Duration::from_secs(30),
        || {
            bird_route("172.15.201.0/26").contains("BGP.originator_id: 192.168.83.3")
                && bird_route("172.15.202.0/26").contains("BGP.originator_id: 192.168.83.4")
                && bird_route("192.168.82.0/24").contains("via 192.168.83.1")
        },
    );
    let r = bird_route("172.15.201.0/26");
    assert!(r.contains("BGP.cluster_list: 224.0.0.1"), "{r}");
    assert!(
        r.contains("via 192.168.83.3"),
        "the node's own next hop: {r}"
    );

    // FRR learns BIRD's and GoBGP's, and its zebra puts them in the kernel.
    lab.wait_for(
        "FRR's kernel to hold the reflected blocks",
        Duration::from_secs(30),
        || {
            let k = lab.sh_text(&frr, "ip -4 route show proto bgp");
            routed(&k, "172.15.200.0/26", "192.168.83.2")
                && routed(&k, "172.15.202.0/26", "192.168.83.4")
                && routed(&k, "192.168.82.0/24", "192.168.83.1")
        },
    );
    let f = vtysh(&lab, &frr, &dir, "show bgp ipv4 unicast 172.15.200.0/26");
    assert!(f.contains("Originator: 192.168.83.2"), "{f}");
    assert!(f.contains("Cluster list: 224.0.0.1"), "{f}");

    // GoBGP, likewise.
    lab.wait_for(
        "GoBGP to learn the reflected blocks",
        Duration::from_secs(30),
        || {
            let g = gobgp(&lab, &gobgp_ns, "global rib -a ipv4");
            g.contains("172.15.200.0/26")
                && g.contains("172.15.201.0/26")
                && g.contains("192.168.82.0/24")
        },
    );

    // No node is sent its own block back.
    for (peer, own) in [
        (BIRD, "172.15.200.0/26"),
        (FRR, "172.15.201.0/26"),
        (GOBGP, "172.15.202.0/26"),
    ] {
        let adv = bgpd_show(&lab, &core, &ctl, &format!("routes --advertised {peer}"));
        assert!(!adv.contains(own), "{peer} was sent its own {own}:\n{adv}");
        assert!(adv.contains("3 prefixes"), "{peer}:\n{adv}");
    }
    // And bgpd installed all three blocks in its own kernel.
    let k = lab.sh_text(&core, "ip -4 route show proto 186");
    for (p, via) in [
        ("172.15.200.0/26", BIRD),
        ("172.15.201.0/26", FRR),
        ("172.15.202.0/26", GOBGP),
    ] {
        assert!(routed(&k, p, via), "{k}");
    }

    // A withdrawal is reflected.
    let out = gobgp(&lab, &gobgp_ns, "global rib del 172.15.202.0/26");
    assert!(!out.contains("rror"), "{out}");
    lab.wait_for(
        "the withdrawal to reach FRR's kernel and BIRD 2",
        Duration::from_secs(30),
        || {
            !lab.sh_text(&frr, "ip -4 route show proto bgp")
                .contains("172.15.202.0/26")
                && !bird_route("172.15.202.0/26").contains("BGP")
        },
    );

    // On the wire, as tshark decodes it: bgpd sent FRR's block with its
    // originator and our cluster id.
    assert!(lab.stop("bgpd").expect("bgpd ran").success());
    lab.stop("cap");
    let t = lab.sh_text(
        &core,
        &format!(
            "tshark -r {} -Y 'ip.src == {CORE} && bgp.type == 2 && bgp.update.path_attribute.originator_id' \
             -T fields -e ip.dst -e bgp.update.path_attribute.originator_id -e bgp.path_attribute.cluster_id -e bgp.nlri_prefix",
            cap.display()
        ),
    );
    assert!(
        t.lines()
            .any(|l| l.starts_with(&format!("{BIRD}\t192.168.83.3\t224.0.0.1\t172.15.201.0"))),
        "tshark:\n{t}"
    );
    assert!(
        !t.lines()
            .any(|l| l.starts_with(&format!("{FRR}\t192.168.83.3"))),
        "FRR's own block went back to it:\n{t}"
    );
}

/// eBGP towards an upstream (FRR, AS 65001) with an export policy: only
/// the service range and the LAN go, with our AS prepended and our
/// address as next hop; without a policy, nothing (RFC 8212). The
/// upstream's own route reaches the iBGP node with next-hop-self.
#[test]
fn ebgp_upstream_gets_what_the_export_policy_allows() {
    if !have_all(&["vtysh", "/usr/lib/frr/bgpd"]) || !have_bird2() {
        return;
    }
    let Some(mut lab) = Lab::new("ebgp") else {
        return;
    };
    let hub = lab.lan();
    let core = lab.attach(&hub, "core", &format!("{CORE}/24"));
    let bird = lab.attach(&hub, "bird", &format!("{BIRD}/24"));
    let up = lab.ns("up");
    lab.link(&core, "up0", "10.0.0.1/30", &up, "eth0", "10.0.0.2/30");

    let sock = start_bird2(
        &mut lab,
        &bird,
        "bird",
        &format!(
            r#"log stderr all;
router id {BIRD};
protocol device {{ }}
protocol direct {{ ipv4; }}
protocol static {{ ipv4; route 172.15.200.0/26 blackhole; route 172.16.0.0/16 blackhole; }}
protocol bgp core {{
  local {BIRD} as 64512;
  neighbor {CORE} as 64512;
  hold time 9;
  ipv4 {{ import all; export where source = RTS_STATIC; }};
}}
"#
        ),
    );
    let dir = start_frr(
        &mut lab,
        &up,
        "frr",
        r#"hostname up
log stdout informational
router bgp 65001
 bgp router-id 10.0.0.2
 bgp log-neighbor-changes
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 10.0.0.1 remote-as 64512
 neighbor 10.0.0.1 timers 3 9
 address-family ipv4 unicast
  network 10.99.0.0/16
 exit-address-family
"#,
    );
    let conf = lab.write(
        "bgpd.toml",
        &format!(
            r#"local_as = 64512
router_id = "{CORE}"
hold_time = 9

[[network]]
prefix = "192.168.82.0/24"

[[peer]]
address = "{BIRD}"
next_hop_self = true

[[peer]]
address = "10.0.0.2"
remote_as = 65001
export = {{ allow = ["172.16.0.0/16", "192.168.82.0/24"], set = {{ med = 10 }} }}

[control]
socket = "{}"

[metrics]
listen = "127.0.0.1:9179"
"#,
            lab.path("bgpd.sock").display()
        ),
    );
    let ctl = lab.path("bgpd.sock").to_string_lossy().to_string();
    lab.bgpd(&core, "bgpd", &["--config", &conf.to_string_lossy()]);

    lab.wait_for(
        "FRR to learn what the policy allows",
        Duration::from_secs(60),
        || {
            let k = lab.sh_text(&up, "ip -4 route show proto bgp");
            routed(&k, "172.16.0.0/16", "10.0.0.1") && routed(&k, "192.168.82.0/24", "10.0.0.1")
        },
    );
    let f = vtysh(&lab, &up, &dir, "show bgp ipv4 unicast 172.16.0.0/16 json");
    let v: serde_json::Value = serde_json::from_str(&f).unwrap_or_else(|e| panic!("{e}: {f}"));
    let p = &v["paths"][0];
    assert_eq!(p["aspath"]["string"], "64512", "{f}");
    assert_eq!(p["metric"], 10, "the policy's MED: {f}");
    assert!(p["locPrf"].is_null(), "no LOCAL_PREF over eBGP: {f}");
    let all = lab.sh_text(&up, "ip -4 route show proto bgp");
    assert!(
        !all.contains("172.15.200.0"),
        "a pod block leaked upstream:\n{all}"
    );
    // bgpd's own account agrees: two prefixes out, the pod block held
    // back, and what BIRD 2 sent us is all received.
    let adv = bgpd_show(&lab, &core, &ctl, "routes --advertised 10.0.0.2");
    assert!(adv.contains("2 prefixes"), "{adv}");
    assert!(!adv.contains("172.15.200.0/26"), "{adv}");
    let rcv = bgpd_show(&lab, &core, &ctl, &format!("routes --received {BIRD}"));
    assert!(
        rcv.contains("172.15.200.0/26") && rcv.contains("172.16.0.0/16"),
        "{rcv}"
    );
    let metrics = lab.sh_text(
        &core,
        "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9179/metrics').read().decode())\"",
    );
    assert!(
        metrics.contains("bgpd_peer_prefixes_advertised{peer=\"10.0.0.2\"} 2"),
        "{metrics}"
    );
    let updates_sent = metrics
        .lines()
        .find(|l| l.starts_with("bgpd_peer_messages_sent_total{peer=\"10.0.0.2\",type=\"update\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no UPDATE counter for 10.0.0.2:\n{metrics}"));
    assert!(updates_sent >= 2, "{metrics}");

    // The upstream's route reaches BIRD 2 through us, next hop ourselves.
    lab.wait_for(
        "BIRD 2 to learn the upstream's route",
        Duration::from_secs(30),
        || {
            let r = birdc(&lab, &bird, &sock, "show route 10.99.0.0/16 all", true);
            r.contains("via 192.168.83.1") && r.contains("BGP.as_path: 65001")
        },
    );
}
