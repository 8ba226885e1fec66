//! The daemon from a config file: routes into the kernel through the import
//! policy, reload that adds and removes peers without touching the others,
//! re-evaluates policy without resetting sessions, and refuses a broken
//! file while the running config stays.

mod common;

use std::time::Duration;

use common::netns::Lab;
use common::peers::*;

fn bird2_peer(addr: &str) -> String {
    format!(
        r#"log stderr all;
router id {addr};
protocol device {{ }}
protocol static {{ ipv4; route 172.15.200.0/26 blackhole; route 10.99.0.0/16 blackhole; }}
protocol bgp core {{
  local {addr} as 64512;
  neighbor 192.168.83.1 as 64512;
  hold time 9;
  connect retry time 2;
  error wait time 1, 2;
  ipv4 {{ import all; export all; }};
}}
"#
    )
}

fn config(dir: &str, peers: &[&str], allow_10_99: bool) -> String {
    let mut s = format!(
        r#"local_as = 64512
router_id = "192.168.83.1"
hold_time = 9

[import]
allow = [
  {{ prefix = "172.15.0.0/16", le = 26 }},
{}]

[control]
socket = "{dir}/bgpd.sock"

[metrics]
listen = "127.0.0.1:9179"

[mrt]
file = "{dir}/updates.mrt"
"#,
        if allow_10_99 {
            "  { prefix = \"10.99.0.0/16\" },\n"
        } else {
            ""
        }
    );
    for p in peers {
        s += &format!("\n[[peer]]\naddress = \"{p}\"\ndescription = \"bird {p}\"\n");
    }
    s
}

#[test]
fn config_file_reload_and_policy() {
    if !have_bird2() {
        return;
    }
    let Some(mut lab) = Lab::new("reload") else {
        return;
    };
    let hub = lab.lan();
    let core = lab.attach(&hub, "core", "192.168.83.1/24");
    let mut socks = vec![];
    for (i, addr) in ["192.168.83.2", "192.168.83.3"].iter().enumerate() {
        let ns = lab.attach(&hub, &format!("b{i}"), &format!("{addr}/24"));
        socks.push((
            ns.clone(),
            start_bird2(&mut lab, &ns, &format!("bird{i}"), &bird2_peer(addr)),
        ));
    }
    let dir = lab.dir.to_string_lossy().to_string();
    let cfg = lab.write("bgpd.toml", &config(&dir, &["192.168.83.2"], false));
    let cfg = cfg.to_string_lossy().to_string();
    let bgpd = env!("CARGO_BIN_EXE_bgpd");
    let check = lab.sh(&core, &format!("{bgpd} check --config {cfg}"));
    assert!(check.status.success(), "{check:?}");
    lab.bgpd(&core, "bgpd", &["--config", &cfg]);
    let sock = format!("{dir}/bgpd.sock");
    let show =
        |lab: &Lab, what: &str| lab.sh_text(&core, &format!("{bgpd} show {what} --socket {sock}"));
    let kernel = |lab: &Lab| lab.kernel_routes(&core);
    lab.wait_for(
        "the allowed block in the kernel",
        Duration::from_secs(30),
        || kernel(&lab).contains("172.15.200.0/26 via 192.168.83.2"),
    );
    // The import policy refused the rest: visible, never installed.
    assert!(!kernel(&lab).contains("10.99.0.0"), "{}", kernel(&lab));
    let routes = show(&lab, "routes");
    assert!(
        routes.contains("10.99.0.0/16") && routes.contains("rejected"),
        "{routes}"
    );

    // Prometheus metrics.
    let metrics = lab.sh_text(
        &core,
        "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9179/metrics').read().decode())\"",
    );
    for want in [
        "bgpd_peer_state{peer=\"192.168.83.2\"} 6",
        "bgpd_peer_messages_received_total{peer=\"192.168.83.2\",type=\"update\"}",
        "bgpd_peer_prefixes_accepted{peer=\"192.168.83.2\"} 1",
        "bgpd_rib_prefixes 2",
        "bgpd_fib_routes_installed 1",
        "bgpd_fib_routes_replaced_total 1",
        "bgpd_fib_errors_total 0",
    ] {
        assert!(metrics.contains(want), "metrics lack {want}:\n{metrics}");
    }
    // Uptime: the seconds since the session came up (show neighbors'
    // since_unix), growing.
    let scrape = |lab: &Lab| {
        lab.sh_text(
            &core,
            "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9179/metrics').read().decode())\"",
        )
    };
    let uptime = |m: &str| -> i64 {
        m.lines()
            .find(|l| l.starts_with("bgpd_peer_uptime_seconds{peer=\"192.168.83.2\"}"))
            .and_then(|l| l.split_whitespace().last()?.parse().ok())
            .unwrap_or_else(|| panic!("no uptime for 192.168.83.2:\n{m}"))
    };
    let first = uptime(&metrics);
    let since = {
        let j: serde_json::Value = serde_json::from_str(&show(&lab, "neighbors --json")).unwrap();
        j.as_array()
            .unwrap()
            .iter()
            .find(|r| r["address"] == "192.168.83.2")
            .unwrap()["since_unix"]
            .as_i64()
            .expect("since_unix")
    };
    std::thread::sleep(Duration::from_millis(2100));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let second = uptime(&scrape(&lab));
    assert!(
        second >= first + 2 && (second - (now - since)).abs() <= 1,
        "uptime {first} then {second}; the session came up at {since}, now {now}"
    );

    // bgpd show route ADDRESS: the route that carries an address, with its
    // path, as text and JSON; an address no route carries is an error.
    let r = show(&lab, "route 172.15.200.5");
    assert!(
        r.contains("172.15.200.5 is carried by 172.15.200.0/26") && r.contains("192.168.83.2"),
        "{r}"
    );
    let j: serde_json::Value = serde_json::from_str(&show(&lab, "route 172.15.200.5 --json"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(j["route"]["prefix"], "172.15.200.0/26", "{j}");
    let none = lab.sh(
        &core,
        &format!("{bgpd} show route 10.200.0.1 --socket {sock}"),
    );
    assert!(!none.status.success(), "a route for 10.200.0.1? {none:?}");

    // The MRT dump of what the peer sent, read by bgpdump.
    if common::netns::require(common::netns::have("bgpdump"), "bgpdump is not installed") {
        let mrt = format!("{dir}/updates.mrt");
        lab.wait_for(
            "the MRT dump to hold the UPDATE",
            Duration::from_secs(10),
            || {
                lab.sh_text(&core, &format!("bgpdump -m {mrt}"))
                    .contains("172.15.200.0/26")
            },
        );
        // bgpd decode reads the same dump (BGP4MP_ET, BIRD's real UPDATEs)
        // as bgpdump does, route by route.
        let n = common::mrt::matches_bgpdump(bgpd, &mrt);
        assert!(n >= 2, "only {n} routes in the dump");
    }

    // The kernel side, and an on-demand drift check after someone deletes
    // our route by hand.
    let fib = show(&lab, "fib");
    assert!(
        fib.contains("installed 1") && fib.contains("failed 0"),
        "{fib}"
    );
    lab.sh(&core, "ip route del 172.15.200.0/26");
    let r = lab.sh_text(&core, &format!("{bgpd} reconcile --socket {sock}"));
    // The report names the route it put back.
    let report: serde_json::Value = serde_json::from_str(&r).unwrap_or_else(|e| panic!("{e}: {r}"));
    assert_eq!(
        report["reinstalled"],
        serde_json::json!(["172.15.200.0/26"]),
        "{r}"
    );
    assert!(
        kernel(&lab).contains("172.15.200.0/26 via 192.168.83.2"),
        "drift not repaired"
    );

    // Reload: add a peer and allow 10.99.0.0/16. The session to .2 stays.
    let before = show(&lab, "neighbors --json");
    lab.write(
        "bgpd.toml",
        &config(&dir, &["192.168.83.2", "192.168.83.3"], true),
    );
    let r = lab.sh(&core, &format!("{bgpd} reload --socket {sock}"));
    assert!(r.status.success(), "{r:?}");
    lab.wait_for(
        "10.99.0.0/16 installed after the reload",
        Duration::from_secs(20),
        || kernel(&lab).contains("10.99.0.0/16"),
    );
    lab.wait_for(
        "the added peer Established",
        Duration::from_secs(30),
        || show(&lab, "neighbors").contains("| 192.168.83.3 | ibgp      | up "),
    );
    let after = show(&lab, "neighbors --json");
    let since = |j: &str| {
        let v: serde_json::Value = serde_json::from_str(j).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .find(|r| r["address"] == "192.168.83.2")
            .unwrap()["since_unix"]
            .clone()
    };
    assert_eq!(
        since(&before),
        since(&after),
        "the session to .2 was reset by the reload"
    );

    // A broken file is refused; the running configuration stays.
    lab.write(
        "bgpd.toml",
        "local_as = 64512\nrouter_id = \"192.168.83.1\"\nhold_time = 2\n",
    );
    let r = lab.sh(&core, &format!("{bgpd} reload --socket {sock}"));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && err.contains("bgpd.toml:3:"), "{err}");
    assert!(show(&lab, "neighbors").contains("| 192.168.83.3 | ibgp      | up "));

    // Removing a peer stops it with Cease / Peer De-configured (SIGHUP).
    lab.write("bgpd.toml", &config(&dir, &["192.168.83.2"], true));
    // SIGHUP to the bgpd this test started, by its pid.
    lab.signal("bgpd", "HUP");
    lab.wait_for(
        "BIRD .3 told it was de-configured",
        Duration::from_secs(20),
        || lab.log("bird1").contains("Peer de-configured"),
    );
    assert!(!show(&lab, "neighbors").contains("192.168.83.3"));
    assert!(kernel(&lab).contains("172.15.200.0/26 via 192.168.83.2"));
    let _ = socks;
}
