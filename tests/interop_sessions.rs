//! Sessions with real peers in network namespaces: BIRD 1.6 configured as
//! a Calico v3.8 reflector, BIRD 2, FRR, GoBGP and ExaBGP. Each reaches
//! Established, sends its routes, stays up through several keepalive
//! intervals with a short hold time, and logs bgpd's Cease when bgpd stops.
//! Also: TCP-MD5, a connection collision, and the negative cases, each
//! checked on the wire with tshark.
//!
//! These need root and the daemons (.ci/setup installs them). Outside CI
//! they skip when those are missing; with CI=true they fail.

mod common;

use std::time::Duration;

use common::netns::{CORE, Lab};
use common::peers::*;
use common::require_programs;

/// A lab with the core (bgpd's namespace) and one peer on the LAN.
/// The LAN is dual-stack: the peer 192.168.83.N also has fd00:83::N.
fn dual_pair(name: &str, peer_addr: &str) -> Option<(Lab, String, String)> {
    let host = peer_addr.rsplit('.').next().unwrap();
    Lab::core_pair(name, "peer", &[peer_addr, &format!("fd00:83::{host}")])
}

fn established(lab: &Lab, peer: &str) -> bool {
    lab.log("bgpd")
        .lines()
        .any(|l| l.contains(peer) && l.contains("Established:"))
}

/// Starts bgpd on the core with a short hold time (9 s, keepalive 3 s).
fn start_bgpd(lab: &mut Lab, core: &str, extra: &[&str]) {
    let mut args = vec!["--asn", "64512", "--hold-time", "9"];
    args.extend_from_slice(extra);
    lab.bgpd(core, "bgpd", &args);
}

/// How an interop test ends bgpd, and what the peer must see on the wire.
#[derive(Clone, Copy, PartialEq)]
enum Stop {
    /// SIGTERM to a peer that negotiated graceful restart: bgpd restarts
    /// with its routes kept, so it closes the session without a
    /// NOTIFICATION and the peer keeps our routes (RFC 4724 §4).
    Restart,
    /// SIGTERM to a peer without graceful restart, or SIGINT (stopping for
    /// good): Cease / Administrative Shutdown (6/2).
    Cease(&'static str),
}

/// The common tail of each interop test: still up after more than three
/// keepalive intervals, then bgpd stops cleanly, as `stop` says.
fn hold_then_stop(lab: &mut Lab, peer: &str, stop: Stop) {
    std::thread::sleep(Duration::from_secs(11));
    let log = lab.log("bgpd");
    assert!(
        !log.contains("session down"),
        "session flapped during the hold test:\n{log}"
    );
    assert!(lab.running("bgpd"), "bgpd exited:\n{log}");
    let sig = match stop {
        Stop::Restart => "TERM",
        Stop::Cease(sig) => sig,
    };
    let st = lab.stop_with("bgpd", sig).expect("bgpd ran");
    assert!(st.success(), "bgpd exit status {st}");
    let notes = lab.notifications("cap");
    let from_us: Vec<_> = notes.iter().filter(|n| n.0 == CORE).collect();
    match stop {
        Stop::Restart => assert!(
            from_us.is_empty() && lab.bgp_messages_from("cap", CORE) > 2,
            "bgpd sent {peer} a NOTIFICATION on SIGTERM; a graceful-restart peer should see the session just close: {notes:?}"
        ),
        Stop::Cease(_) => assert!(
            notes.contains(&(CORE.to_string(), 6, 2)),
            "no Cease/Administrative Shutdown from bgpd to {peer} on the wire (SIG{sig}): {notes:?}"
        ),
    }
}

/// A route from a peer arrived and is real: bgpd shows it (`+ PREFIX` in
/// its log), it is in the kernel of bgpd's namespace (proto bgp, via the
/// peer's address `via`), and the peer's own table (`peer_table`, its
/// show command) holds it. `what` may carry a suffix bgpd prints after the
/// prefix (" path-id").
fn assert_route(lab: &Lab, core: &str, what: &str, via: &str, peer_table: &dyn Fn() -> String) {
    let prefix = what.split_whitespace().next().unwrap();
    lab.wait_for(
        &format!("bgpd to show {what}"),
        Duration::from_secs(20),
        || {
            lab.log("bgpd")
                .lines()
                .any(|l| l.contains(&format!("+ {what}")))
        },
    );
    let family = if prefix.contains(':') { "-6" } else { "-4" };
    let cmd = format!("ip {family} route show proto bgp {prefix}");
    lab.wait_for(
        &format!("{prefix} via {via} in the kernel"),
        Duration::from_secs(20),
        || {
            let k = lab.sh_text(core, &cmd);
            k.starts_with(prefix) && k.contains(&format!("via {via} "))
        },
    );
    let table = peer_table();
    assert!(
        table.contains(prefix),
        "the peer's own table lacks {prefix}:\n{table}"
    );
}

#[test]
fn bird16_as_calico_reflector() {
    if !have_all(&["bird", "birdc", "tshark"]) {
        return;
    }
    let Some((mut lab, core, rr)) = dual_pair("bird16", "192.168.83.36") else {
        return;
    };
    let cfg = calico_bird(
        "192.168.83.36",
        &["172.15.190.0/26"],
        Some("224.0.0.1"),
        &[CalicoPeer {
            name: "Node_192_168_83_1",
            addr: CORE,
            rr_client: true,
            extra: "",
        }],
    );
    let sock = start_bird1(&mut lab, &rr, "bird", &cfg);
    lab.capture(&core, "eth0", "cap");
    let ctl = lab.path("bgpd.sock").to_string_lossy().to_string();
    start_bgpd(
        &mut lab,
        &core,
        &["--peer", "192.168.83.36", "--control-socket", &ctl],
    );
    lab.wait_for("Established with BIRD 1.6", Duration::from_secs(30), || {
        established(&lab, "192.168.83.36")
    });
    lab.wait_for(
        "BIRD to report Established",
        Duration::from_secs(10),
        || birdc(&lab, &rr, &sock, "show protocols", false).contains("Established"),
    );
    // ADD-PATH receive was negotiated, and the reflector's routes arrive
    // with path ids; the session also got End-of-RIB.
    let log = lab.log("bgpd");
    assert!(log.contains("add-path receive ipv4-unicast"), "{log}");
    let rr_table = || birdc(&lab, &rr, &sock, "show route", false);
    assert_route(
        &lab,
        &core,
        "172.15.190.0/26 path-id",
        "192.168.83.36",
        &rr_table,
    );
    assert_route(
        &lab,
        &core,
        "172.16.0.0/16 path-id",
        "192.168.83.36",
        &rr_table,
    );
    lab.wait_for("End-of-RIB", Duration::from_secs(10), || {
        lab.log("bgpd").contains("End-of-RIB ipv4-unicast")
    });
    // BIRD started with -R settles once it has our End-of-RIB.
    lab.wait_for(
        "BIRD to finish graceful restart",
        Duration::from_secs(10),
        || lab.log("bird").contains("Graceful restart done"),
    );
    // The neighbour table, as calicoctl node status prints it.
    let bgpd = env!("CARGO_BIN_EXE_bgpd");
    let table = lab.sh_text(&core, &format!("{bgpd} show neighbors --socket {ctl}"));
    assert!(
        table.contains("| 192.168.83.36 | ibgp      | up    |") && table.contains("Established"),
        "{table}"
    );
    let json = lab.sh_text(
        &core,
        &format!("{bgpd} show neighbors --json --socket {ctl}"),
    );
    assert!(json.contains("\"router_id\": \"192.168.83.36\""), "{json}");
    let health = lab.sh(&core, &format!("{bgpd} health --socket {ctl}"));
    assert!(health.status.success(), "{health:?}");
    // The socket is for root and its group only.
    let mode =
        std::fs::metadata(&ctl).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()));
    assert_eq!(mode.unwrap() & 0o777, 0o660);
    hold_then_stop(&mut lab, "BIRD 1.6", Stop::Restart);
    assert!(!std::path::Path::new(&ctl).exists(), "socket left behind");
    // The session closed without a NOTIFICATION: BIRD, as helper, keeps
    // our routes for our restart time.
    lab.wait_for(
        "BIRD to detect the graceful restart",
        Duration::from_secs(10),
        || {
            let l = lab.log("bird").to_lowercase();
            l.contains("graceful restart") && !l.contains("administrative shutdown")
        },
    );
}

#[test]
fn bird2_peer() {
    if !have_all(&["tshark"]) || !have_bird2() {
        return;
    }
    let Some((mut lab, core, peer)) = dual_pair("bird2", "192.168.83.2") else {
        return;
    };
    let cfg = format!(
        r#"log stderr all;
router id 192.168.83.2;
protocol device {{ }}
protocol direct {{ ipv4; ipv6; }}
protocol static {{ ipv4; route 172.15.200.0/26 blackhole; }}
protocol static {{ ipv6; route fd00:15:200::/64 blackhole; }}
protocol bgp core {{
  local 192.168.83.2 as 64512;
  neighbor {CORE} as 64512;
  hold time 9;
  ipv4 {{ import all; export all; add paths tx; }};
  ipv6 {{ import all; export all; next hop address fd00:83::2; }};
}}
"#
    );
    let sock = start_bird2(&mut lab, &peer, "bird", &cfg);
    lab.capture(&core, "eth0", "cap");
    start_bgpd(&mut lab, &core, &["--peer", "192.168.83.2"]);
    lab.wait_for("Established with BIRD 2", Duration::from_secs(30), || {
        established(&lab, "192.168.83.2")
    });
    let bird_table = || birdc(&lab, &peer, &sock, "show route", true);
    assert_route(&lab, &core, "172.15.200.0/26", "192.168.83.2", &bird_table);
    assert_route(&lab, &core, "fd00:15:200::/64", "fd00:83::2", &bird_table);
    assert!(birdc(&lab, &peer, &sock, "show protocols", true).contains("Established"));
    // Ctrl-C stops for good: Cease with the RFC 8203 text, so BIRD drops
    // our routes at once.
    hold_then_stop(&mut lab, "BIRD 2", Stop::Cease("INT"));
    lab.wait_for("BIRD 2 to log the Cease", Duration::from_secs(10), || {
        let l = lab.log("bird");
        l.contains("Received: Administrative shutdown") && l.contains("bgpd shutting down")
    });
}

#[test]
fn frr_peer() {
    if !have_all(&["tshark", "vtysh", "/usr/lib/frr/bgpd"]) {
        return;
    }
    let Some((mut lab, core, peer)) = dual_pair("frr", "192.168.83.3") else {
        return;
    };
    let conf = format!(
        r#"hostname frr1
log stdout informational
router bgp 64512
 bgp router-id 192.168.83.3
 bgp log-neighbor-changes
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor {CORE} remote-as 64512
 neighbor {CORE} timers 3 9
 address-family ipv4 unicast
  network 172.15.201.0/26
  neighbor {CORE} addpath-tx-all-paths
 exit-address-family
"#
    );
    let dir = start_frr(&mut lab, &peer, "frr", &conf);
    lab.capture(&core, "eth0", "cap");
    start_bgpd(&mut lab, &core, &["--peer", "192.168.83.3"]);
    lab.wait_for("Established with FRR", Duration::from_secs(40), || {
        established(&lab, "192.168.83.3")
    });
    assert_route(&lab, &core, "172.15.201.0/26", "192.168.83.3", &|| {
        vtysh(&lab, &peer, &dir, "show bgp ipv4 unicast")
    });
    assert!(vtysh(&lab, &peer, &dir, "show bgp summary").contains("64512"));
    // A TABLE_DUMP_V2 RIB written by FRR (an independent writer): bgpd
    // decode reads it as bgpdump does.
    if require_programs(&["bgpdump"]) {
        let rib = format!("{dir}/rib.mrt");
        lab.sh(
            &peer,
            &format!(
                "vtysh --vty_socket {dir} -d bgpd -c 'configure terminal' -c 'dump bgp routes-mrt {rib}'"
            ),
        );
        lab.wait_for("FRR's RIB dump", Duration::from_secs(10), || {
            std::fs::metadata(&rib).is_ok_and(|m| m.len() > 0)
        });
        std::thread::sleep(Duration::from_millis(500));
        let n = common::mrt::matches_bgpdump(env!("CARGO_BIN_EXE_bgpd"), &rib);
        assert!(n >= 1, "FRR's RIB dump held no routes");
    }
    hold_then_stop(&mut lab, "FRR", Stop::Restart);
    // FRR, as helper, keeps our routes: "Down NSF peer closed the session".
    lab.wait_for(
        "FRR to take it as a graceful restart",
        Duration::from_secs(10),
        || {
            let l = lab.log("frr");
            l.contains("NSF peer closed the session") && !l.contains("6/2")
        },
    );
}

#[test]
fn gobgp_peer() {
    if !have_all(&["tshark", "gobgpd", "gobgp"]) {
        return;
    }
    let Some((mut lab, core, peer)) = dual_pair("gobgp", "192.168.83.4") else {
        return;
    };
    let toml = format!(
        r#"[global.config]
  as = 64512
  router-id = "192.168.83.4"
[[neighbors]]
  [neighbors.config]
    neighbor-address = "{CORE}"
    peer-as = 64512
  [neighbors.timers.config]
    hold-time = 9
    keepalive-interval = 3
    connect-retry = 3
"#
    );
    start_gobgp(&mut lab, &peer, "gobgp", &toml);
    lab.capture(&core, "eth0", "cap");
    start_bgpd(&mut lab, &core, &["--peer", "192.168.83.4"]);
    lab.wait_for("Established with GoBGP", Duration::from_secs(40), || {
        established(&lab, "192.168.83.4")
    });
    let out = gobgp(
        &lab,
        &peer,
        "global rib add 172.15.202.0/26 nexthop 192.168.83.4 community 64512:100",
    );
    assert!(!out.contains("rror"), "{out}");
    assert_route(&lab, &core, "172.15.202.0/26", "192.168.83.4", &|| {
        gobgp(&lab, &peer, "global rib")
    });
    hold_then_stop(&mut lab, "GoBGP", Stop::Cease("TERM"));
    lab.wait_for("GoBGP to log the Cease", Duration::from_secs(10), || {
        let l = lab.log("gobgp").to_lowercase();
        l.contains("administrative shutdown") || l.contains("code 6")
    });
}

#[test]
fn exabgp_peer() {
    if !have_all(&["tshark", "exabgp"]) {
        return;
    }
    let Some((mut lab, core, peer)) = dual_pair("exabgp", "192.168.83.5") else {
        return;
    };
    let conf = format!(
        r#"neighbor {CORE} {{
  router-id 192.168.83.5;
  local-address 192.168.83.5;
  local-as 64512;
  peer-as 64512;
  hold-time 9;
  static {{
    route 172.15.203.0/26 next-hop 192.168.83.5 community [64512:100] large-community [64512:1:2];
  }}
}}
"#
    );
    start_exabgp(&mut lab, &peer, "exabgp", &conf);
    lab.capture(&core, "eth0", "cap");
    start_bgpd(&mut lab, &core, &["--peer", "192.168.83.5"]);
    lab.wait_for("Established with ExaBGP", Duration::from_secs(40), || {
        established(&lab, "192.168.83.5")
    });
    // ExaBGP keeps no table to ask: its log of what it sent stands in.
    assert_route(&lab, &core, "172.15.203.0/26", "192.168.83.5", &|| {
        lab.log("exabgp")
    });
    hold_then_stop(&mut lab, "ExaBGP", Stop::Cease("TERM"));
    lab.wait_for("ExaBGP to log the Cease", Duration::from_secs(10), || {
        let l = lab.log("exabgp").to_lowercase();
        l.contains("notification") && l.contains("shutdown")
    });
}

/// A BIRD 2 peer at 192.168.83.2 with extra protocol options.
fn bird2_conf(extra: &str) -> String {
    format!(
        r#"log stderr all;
router id 192.168.83.2;
protocol device {{ }}
protocol static {{ ipv4; route 172.15.200.0/26 blackhole; }}
protocol bgp core {{
  local 192.168.83.2 as 64512;
  neighbor {CORE} as 64512;
  hold time 9;
  connect retry time 3;
  error wait time 1, 5;
  ipv4 {{ import all; export all; }};
{extra}
}}
"#
    )
}

#[test]
fn md5_bird16_and_frr() {
    if !have_all(&["bird", "tshark", "vtysh"]) {
        return;
    }
    for wrong in [false, true] {
        let Some((mut lab, core, rr)) = dual_pair("md5bird", "192.168.83.36") else {
            return;
        };
        let cfg = calico_bird(
            "192.168.83.36",
            &["172.15.190.0/26"],
            Some("224.0.0.1"),
            &[CalicoPeer {
                name: "Node_192_168_83_1",
                addr: CORE,
                rr_client: true,
                extra: "  password \"calico-s3cret\";\n",
            }],
        );
        start_bird1(&mut lab, &rr, "bird", &cfg);
        let pw = if wrong { "wrong" } else { "calico-s3cret" };
        let peer = format!("192.168.83.36,password={pw}");
        start_bgpd(&mut lab, &core, &["--peer", &peer]);
        if wrong {
            std::thread::sleep(Duration::from_secs(12));
            assert!(!established(&lab, "192.168.83.36"), "{}", lab.log("bgpd"));
        } else {
            lab.wait_for("Established with TCP-MD5", Duration::from_secs(30), || {
                established(&lab, "192.168.83.36")
            });
        }
    }
    for wrong in [false, true] {
        let Some((mut lab, core, peer)) = dual_pair("md5frr", "192.168.83.3") else {
            return;
        };
        let conf = format!(
            "hostname frr1\nlog stdout informational\nrouter bgp 64512\n bgp router-id 192.168.83.3\n \
             neighbor {CORE} remote-as 64512\n neighbor {CORE} password frr-s3cret\n neighbor {CORE} timers 3 9\n \
             neighbor {CORE} timers connect 3\n"
        );
        start_frr(&mut lab, &peer, "frr", &conf);
        let pw = if wrong { "wrong" } else { "frr-s3cret" };
        let arg = format!("192.168.83.3,password={pw}");
        start_bgpd(&mut lab, &core, &["--peer", &arg]);
        if wrong {
            std::thread::sleep(Duration::from_secs(12));
            assert!(!established(&lab, "192.168.83.3"), "{}", lab.log("bgpd"));
        } else {
            lab.wait_for(
                "Established with FRR over TCP-MD5",
                Duration::from_secs(40),
                || established(&lab, "192.168.83.3"),
            );
        }
    }
}

/// Accepts one connection on a listener within `timeout`.
fn accept_within(l: &std::net::TcpListener, timeout: Duration) -> std::net::TcpStream {
    l.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return s;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "bgpd did not connect within {timeout:?}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// A connection collision made to happen (RFC 4271 §6.8): bgpd connects
/// to the peer and sends its OPEN; before answering, the peer connects to
/// bgpd and sends its own OPEN. bgpd must close the connection opened by
/// the side with the lower BGP identifier with Cease 6/7 (Connection
/// Collision Resolution) and bring the session up on the other one. Both
/// outcomes are forced: a peer id above bgpd's (the inbound survives) and
/// below it (bgpd's outbound survives).
#[test]
fn collision_between_two_active_speakers() {
    use common::raw::*;
    use std::net::{Ipv4Addr, SocketAddr};
    for (peer_id, inbound_wins) in [
        (Ipv4Addr::new(192, 168, 83, 200), true),
        (Ipv4Addr::new(10, 0, 0, 1), false),
    ] {
        let Some((mut lab, core, peer)) = dual_pair("collision", "192.168.83.2") else {
            return;
        };
        let at: SocketAddr = "192.168.83.2:179".parse().unwrap();
        let listener = listen(&peer, at).expect("listen in the peer's namespace");
        start_bgpd(
            &mut lab,
            &core,
            &["--peer", "192.168.83.2", "--router-id", CORE],
        );
        // bgpd's outbound connection, and its OPEN (bgpd is in OpenSent).
        let mut out = Raw::new(accept_within(&listener, Duration::from_secs(30)));
        match out.recv(Duration::from_secs(10)) {
            Got::Msg(OPEN, _) => {}
            other => panic!("expected bgpd's OPEN on its connection, got {other:?}"),
        }
        // The peer's own connection and OPEN: a collision.
        let mut inb = Raw::new(
            connect(&peer, common::netns::bgpd_addr(), ConnectOpts::default())
                .expect("connect to bgpd"),
        );
        inb.send(&open(64512, 30, peer_id)).unwrap();
        let (loser, winner, side) = if inbound_wins {
            (&mut out, &mut inb, "bgpd's outbound")
        } else {
            (&mut inb, &mut out, "the peer's inbound")
        };
        let n = loser.notification(Duration::from_secs(10));
        assert_eq!(
            n.as_ref().map(|n| (n.code, n.subcode)),
            Some((6, 7)),
            "peer id {peer_id}: no Cease/Connection Collision Resolution on {side} connection"
        );
        assert_eq!(
            loser.recv(Duration::from_secs(5)),
            Got::Eof,
            "{side} stayed open"
        );
        // The survivor completes the OPEN exchange (the inbound already
        // sent its OPEN; on bgpd's outbound the peer answers now) and stays
        // up.
        if !inbound_wins {
            winner.send(&open(64512, 30, peer_id)).unwrap();
        }
        loop {
            match winner.recv(Duration::from_secs(10)) {
                Got::Msg(KEEPALIVE, _) => break,
                Got::Msg(OPEN, _) => {}
                other => panic!("{side} lost, but the survivor got {other:?}"),
            }
        }
        winner.send(&keepalive()).unwrap();
        lab.wait_for("the session Established", Duration::from_secs(15), || {
            established(&lab, "192.168.83.2")
        });
        assert!(winner.stays_up(Duration::from_secs(2)).is_ok());
        let log = lab.log("bgpd");
        assert!(
            log.contains("Connection Collision Resolution") || log.contains("6/7"),
            "bgpd did not log the collision:\n{log}"
        );
    }
}

#[test]
fn wrong_peer_as_gets_2_2() {
    if !have_all(&["tshark"]) || !have_bird2() {
        return;
    }
    let Some((mut lab, core, peer)) = dual_pair("badas", "192.168.83.2") else {
        return;
    };
    start_bird2(&mut lab, &peer, "bird", &bird2_conf(""));
    lab.capture(&core, "eth0", "cap");
    start_bgpd(&mut lab, &core, &["--peer", "192.168.83.2,as=64513"]);
    lab.wait_for("BIRD to log Bad peer AS", Duration::from_secs(30), || {
        lab.log("bird").contains("Bad peer AS")
    });
    let notes = lab.notifications("cap");
    assert!(notes.contains(&(CORE.into(), 2, 2)), "{notes:?}");
    assert!(!established(&lab, "192.168.83.2"));
}

#[test]
fn same_router_id_gets_2_3() {
    if !have_all(&["tshark"]) || !have_bird2() {
        return;
    }
    let Some((mut lab, core, peer)) = dual_pair("sameid", "192.168.83.2") else {
        return;
    };
    // Two routers with one BGP identifier (not the address of either:
    // bgpd refuses a peer whose address is its own router id at start).
    let conf = bird2_conf("").replace("router id 192.168.83.2;", "router id 192.168.83.99;");
    start_bird2(&mut lab, &peer, "bird", &conf);
    lab.capture(&core, "eth0", "cap");
    start_bgpd(
        &mut lab,
        &core,
        &["--peer", "192.168.83.2", "--router-id", "192.168.83.99"],
    );
    lab.wait_for(
        "a Bad BGP Identifier on the wire",
        Duration::from_secs(30),
        || lab.log("bgpd").contains("own BGP identifier") || lab.log("bgpd").contains("2/3"),
    );
    // bgpd itself must refuse the OPEN: BIRD refusing bgpd's would also
    // put a 2/3 on the wire, and is not what this checks.
    let notes = lab.notifications("cap");
    assert!(
        notes.contains(&(CORE.into(), 2, 3)),
        "no 2/3 from bgpd ({CORE}) on the wire: {notes:?}"
    );
    assert!(!established(&lab, "192.168.83.2"));
}

#[test]
fn unsupported_required_capability_gets_2_7() {
    if !have_all(&["tshark", "vtysh"]) {
        return;
    }
    let Some((mut lab, core, peer)) = dual_pair("reqcap", "192.168.83.3") else {
        return;
    };
    // FRR with strict capability matching and IPv4 multicast enabled:
    // bgpd does not offer multicast, so FRR refuses it with 2/7.
    let conf = format!(
        "hostname frr1\nlog stdout informational\nrouter bgp 64512\n bgp router-id 192.168.83.3\n \
         bgp log-neighbor-changes\n neighbor {CORE} remote-as 64512\n neighbor {CORE} strict-capability-match\n \
         neighbor {CORE} timers connect 3\n address-family ipv4 multicast\n  neighbor {CORE} activate\n \
         exit-address-family\n"
    );
    start_frr(&mut lab, &peer, "frr", &conf);
    lab.capture(&core, "eth0", "cap");
    start_bgpd(&mut lab, &core, &["--peer", "192.168.83.3"]);
    lab.wait_for("bgpd to receive 2/7", Duration::from_secs(40), || {
        lab.log("bgpd").contains("2/7")
    });
    let notes = lab.notifications("cap");
    assert!(notes.contains(&("192.168.83.3".into(), 2, 7)), "{notes:?}");
    assert!(!established(&lab, "192.168.83.3"));
}

/// Dynamic neighbours: Calico nodes without reflectors peer straight with
/// the core through a listen range; a stranger is closed before any OPEN.
#[test]
fn dynamic_neighbours_and_strangers() {
    if !have_all(&["bird"]) {
        return;
    }
    let Some(mut lab) = Lab::new("dynamic") else {
        return;
    };
    let hub = lab.lan();
    let core = lab.attach(&hub, "core", "192.168.83.1/24");
    let mut nodes = vec![];
    for (i, ip) in ["192.168.83.22", "192.168.83.37"].iter().enumerate() {
        let ns = lab.attach(&hub, &format!("n{i}"), &format!("{ip}/24"));
        let cfg = calico_bird(
            ip,
            &[&format!("172.15.{}.0/26", 190 + i)],
            None,
            &[CalicoPeer {
                name: "Global_192_168_83_1",
                addr: CORE,
                rr_client: false,
                extra: "",
            }],
        );
        let sock = start_bird1(&mut lab, &ns, &format!("node{i}"), &cfg);
        nodes.push((ns, sock));
    }
    // A stranger outside the range.
    let s = lab.attach(&hub, "stranger", "192.168.84.9/16");
    lab.sh(&core, "ip addr add 192.168.84.1/16 dev eth0");
    let cfg = calico_bird(
        "192.168.84.9",
        &["172.15.250.0/26"],
        None,
        &[CalicoPeer {
            name: "Global_core",
            addr: "192.168.84.1",
            rr_client: false,
            extra: "",
        }],
    );
    start_bird1(&mut lab, &s, "stranger", &cfg);
    start_bgpd(
        &mut lab,
        &core,
        &["--listen-range", "192.168.83.0/24", "--router-id", CORE],
    );
    for ip in ["192.168.83.22", "192.168.83.37"] {
        lab.wait_for(
            &format!("dynamic peer {ip}"),
            Duration::from_secs(40),
            || established(&lab, ip),
        );
    }
    for (i, (ns, sock)) in nodes.iter().enumerate() {
        assert_route(
            &lab,
            &core,
            &format!("172.15.{}.0/26", 190 + i),
            ["192.168.83.22", "192.168.83.37"][i],
            &|| birdc(&lab, ns, sock, "show route", false),
        );
    }
    lab.wait_for(
        "the stranger to be refused",
        Duration::from_secs(30),
        || lab.log("bgpd").contains("no configured peer or range"),
    );
    let log = lab.log("bgpd");
    assert!(
        !log.contains("192.168.84.9   "),
        "stranger got a session:\n{log}"
    );
    assert!(
        !log.contains("172.15.250.0/26"),
        "stranger's route shown:\n{log}"
    );
}

/// IPv6 transport with a source address: BIRD 2 over fd00:83::/64, and
/// `source=` changes the source: bgpd connects from fd00:99::1, an address
/// on its loopback that the kernel would never pick for fd00:83::2 (it
/// would take fd00:83::1, on the outgoing link). BIRD only accepts that
/// neighbour address and is passive (so the session can only be bgpd's
/// connection), and `ss` shows that connection's local address.
#[test]
fn ipv6_transport_with_source_address() {
    if !have_bird2() {
        return;
    }
    let Some((mut lab, core, peer)) = dual_pair("v6", "192.168.83.2") else {
        return;
    };
    lab.sh(&core, "ip -6 addr add fd00:99::1/128 dev lo");
    lab.sh(&peer, "ip -6 route add fd00:99::1/128 via fd00:83::1");
    // Without source=, the kernel's choice would be the link's address.
    let default_src = lab.sh_text(&core, "ip -6 route get fd00:83::2");
    assert!(
        default_src.contains("src fd00:83::1"),
        "the kernel would not pick fd00:83::1 by default: {default_src}"
    );
    let cfg = r#"log stderr all;
router id 192.168.83.2;
protocol device { }
protocol static { ipv6; route fd00:15:200::/64 blackhole; }
protocol bgp core {
  local fd00:83::2 as 64512;
  neighbor fd00:99::1 as 64512;
  multihop;
  passive on;
  hold time 9;
  ipv6 { import all; export all; next hop self; };
}
"#;
    let sock = start_bird2(&mut lab, &peer, "bird", cfg);
    start_bgpd(
        &mut lab,
        &core,
        &[
            "--peer",
            "fd00:83::2,source=fd00:99::1",
            "--router-id",
            CORE,
        ],
    );
    lab.wait_for("Established over IPv6", Duration::from_secs(30), || {
        established(&lab, "fd00:83::2")
    });
    let conns = lab.sh_text(
        &core,
        "ss -Htn state established '( sport = :179 or dport = :179 )'",
    );
    // BIRD is passive: the one connection is bgpd's, to port 179, from
    // the source= address.
    let pairs: Vec<(&str, &str)> = conns
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Some((*w.get(2)?, *w.get(3)?))
        })
        .collect();
    assert!(
        pairs.len() == 1
            && pairs[0].0.starts_with("[fd00:99::1]:")
            && pairs[0].1 == "[fd00:83::2]:179",
        "bgpd's connection is not from the source= address:\n{conns}"
    );
    let bird = birdc(&lab, &peer, &sock, "show protocols all core", true);
    assert!(
        bird.contains("Established") && bird.contains("fd00:99::1"),
        "{bird}"
    );
    assert_route(&lab, &core, "fd00:15:200::/64", "fd00:83::2", &|| {
        birdc(&lab, &peer, &sock, "show route", true)
    });
}

/// RFC 9494 with FRR as the restarting peer: FRR advertises graceful
/// restart (restart time 1 s) and long-lived graceful restart (stale time
/// 8 s) and announces 172.15.77.0/26 with LOCAL_PREF 200; BIRD 2 announces
/// it too, with 100. FRR's bgpd dies (SIGKILL: no NOTIFICATION). bgpd keeps
/// FRR's route through the restart time, then as long-lived stale, least
/// preferred: the kernel moves to BIRD's. With BIRD gone too, the
/// long-lived stale route is used again, and it goes after the stale time.
#[test]
fn frr_long_lived_graceful_restart() {
    if !have_all(&["vtysh", "/usr/lib/frr/bgpd"]) || !have_bird2() {
        return;
    }
    let Some(mut lab) = Lab::new("llgr") else {
        return;
    };
    let hub = lab.lan();
    let core = lab.attach(&hub, "core", "192.168.83.1/24");
    let frr = lab.attach(&hub, "frr", "192.168.83.3/24");
    let bird = lab.attach(&hub, "bird", "192.168.83.2/24");
    let conf = format!(
        r#"hostname frr1
log stdout informational
router bgp 64512
 bgp router-id 192.168.83.3
 bgp log-neighbor-changes
 bgp graceful-restart
 bgp graceful-restart restart-time 1
 bgp long-lived-graceful-restart stale-time 8
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor {CORE} remote-as 64512
 neighbor {CORE} timers 3 9
 address-family ipv4 unicast
  network 172.15.77.0/26
  neighbor {CORE} route-map LP200 out
 exit-address-family
route-map LP200 permit 10
 set local-preference 200
"#
    );
    let dir = start_frr(&mut lab, &frr, "frr", &conf);
    let bird_conf = format!(
        r#"log stderr all;
router id 192.168.83.2;
protocol device {{ }}
protocol static {{ ipv4; route 172.15.77.0/26 blackhole; }}
protocol bgp core {{
  local 192.168.83.2 as 64512;
  neighbor {CORE} as 64512;
  hold time 9;
  connect retry time 2;
  ipv4 {{ import all; export all; }};
}}
"#
    );
    start_bird2(&mut lab, &bird, "bird", &bird_conf);
    let ctl = lab.path("bgpd.sock").to_string_lossy().to_string();
    start_bgpd(
        &mut lab,
        &core,
        &[
            "--peer",
            "192.168.83.3",
            "--peer",
            "192.168.83.2",
            "--control-socket",
            &ctl,
        ],
    );
    let via = |lab: &Lab| {
        lab.kernel_table(&core)
            .get("172.15.77.0/26")
            .cloned()
            .unwrap_or_default()
    };
    let one = |h: &str| std::collections::BTreeSet::from([h.to_string()]);
    lab.wait_for(
        "FRR's route (LOCAL_PREF 200) installed",
        Duration::from_secs(40),
        || established(&lab, "192.168.83.2") && via(&lab) == one("192.168.83.3"),
    );
    let caps = vtysh(&lab, &frr, &dir, "show bgp neighbors 192.168.83.1");
    assert!(
        caps.contains("Long-lived Graceful Restart"),
        "FRR does not advertise LLGR:\n{caps}"
    );

    // FRR's bgpd dies without a word.
    let t0 = std::time::Instant::now();
    lab.stop_with("frr", "KILL");
    lab.wait_for(
        "the long-lived stale route least preferred: BIRD's installed",
        Duration::from_secs(15),
        || via(&lab) == one("192.168.83.2"),
    );
    let moved = t0.elapsed();
    assert!(
        moved >= Duration::from_millis(900),
        "moved before the restart time: {moved:?}"
    );
    let log = lab.log("bgpd");
    assert!(
        log.contains("routes kept as long-lived stale for 8s"),
        "no long-lived stale phase in the log:\n{log}"
    );
    let bgpd = env!("CARGO_BIN_EXE_bgpd");
    let routes = lab.sh_text(
        &core,
        &format!("{bgpd} show route 172.15.77.1 --socket {ctl}"),
    );
    assert!(
        routes.contains("from 192.168.83.3 path-id 0 (long-lived stale): llgr-stale")
            && routes.contains("communities llgr-stale"),
        "FRR's path is not marked LLGR_STALE and least preferred:\n{routes}"
    );

    // BIRD goes too: the long-lived stale route is all there is, and used.
    lab.stop_with("bird", "KILL");
    lab.wait_for(
        "the long-lived stale route used again",
        Duration::from_secs(15),
        || via(&lab) == one("192.168.83.3"),
    );
    // And it goes once the stale time is over (8 s after the restart
    // time).
    lab.wait_for(
        "the long-lived stale route removed",
        Duration::from_secs(20),
        || via(&lab).is_empty(),
    );
    let gone = t0.elapsed();
    assert!(
        gone >= Duration::from_secs(8),
        "removed before the stale time: {gone:?}"
    );
}
