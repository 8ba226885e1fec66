//! Who gets in: only configured peers and dynamic ranges; TCP-MD5 and GTSM
//! enforced in the kernel; the control socket's permissions; bgpd running
//! as a non-root user with only CAP_NET_ADMIN and CAP_NET_BIND_SERVICE.
//!
//! The raw speaker of tests/common/raw.rs plays peers and strangers;
//! BIRD 2 (`ttl security on`) checks that bgpd itself sends with TTL 255.
//! Needs root (network namespaces); skips otherwise outside CI.

mod common;

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::netns::{CORE, Lab, bgpd_addr, have};
use common::peers::{birdc, have_bird2, start_bird2};
use common::raw::*;

const ASN: u32 = 64512;

fn from(addr: &str) -> ConnectOpts {
    ConnectOpts {
        source: Some(format!("{addr}:0").parse().unwrap()),
        ..ConnectOpts::default()
    }
}

/// Connects from `addr`, sends an OPEN, and reads until EOF: returns the
/// types of the messages bgpd sent before closing, or `Err` if the
/// connection stayed open.
fn refused(lan: &str, addr: &str) -> Result<Vec<u8>, String> {
    let s = connect(lan, bgpd_addr(), from(addr)).map_err(|e| format!("connect: {e}"))?;
    let mut r = Raw::new(s);
    let _ = r.send(&open(ASN, 30, addr.parse().unwrap()));
    let mut types = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match r.recv(deadline.saturating_duration_since(Instant::now())) {
            Got::Msg(t, _) => types.push(t),
            Got::Eof => return Ok(types),
            Got::Timeout => return Err(format!("still open after 5 s; got {types:?}")),
        }
    }
}

fn session_from(lan: &str, addr: &str, opts: ConnectOpts) -> Result<Raw, String> {
    let s = connect(lan, bgpd_addr(), opts).map_err(|e| format!("connect: {e}"))?;
    let mut r = Raw::new(s);
    r.handshake(&open(ASN, 30, addr.parse().unwrap()))?;
    Ok(r)
}

#[test]
fn only_configured_peers_and_ranges_get_in() {
    // .2 is a configured peer, .9 is inside the range 192.168.83.8/29,
    // .20 and .100 are strangers on the same LAN.
    let Some((mut lab, core, lan)) = Lab::core_pair(
        "access",
        "lan",
        &[
            "192.168.83.2",
            "192.168.83.9",
            "192.168.83.20",
            "192.168.83.100",
        ],
    ) else {
        return;
    };
    lab.core_bgpd(
        &core,
        "bgpd",
        &[
            "--hold-time",
            "30",
            "--peer",
            "192.168.83.2,passive",
            "--listen-range",
            "192.168.83.8/29",
        ],
    );
    lab.wait_listen(&core);
    for stranger in ["192.168.83.20", "192.168.83.100"] {
        let types = refused(&lan, stranger).unwrap_or_else(|e| panic!("{stranger}: {e}"));
        assert!(
            !types.contains(&OPEN),
            "bgpd sent an OPEN to the stranger {stranger}: {types:?}"
        );
        assert!(
            types.is_empty(),
            "bgpd said something to {stranger}: {types:?}"
        );
    }
    // The configured peer and the range member get sessions, and their
    // routes arrive; a stranger never reached the RIB.
    let mut a = session_from(&lan, "192.168.83.2", from("192.168.83.2")).expect("configured peer");
    let mut b = session_from(&lan, "192.168.83.9", from("192.168.83.9")).expect("range member");
    a.send(&announce("192.168.83.2".parse().unwrap(), &["10.2.0.0/24"]))
        .unwrap();
    b.send(&announce("192.168.83.9".parse().unwrap(), &["10.9.0.0/24"]))
        .unwrap();
    lab.wait_for("both routes installed", Duration::from_secs(10), || {
        let k = lab.kernel_routes(&core);
        k.contains("10.2.0.0/24") && k.contains("10.9.0.0/24")
    });
    // A stranger while sessions are up is still refused.
    assert_eq!(refused(&lan, "192.168.83.20"), Ok(vec![]));
    assert!(a.stays_up(Duration::from_millis(200)).is_ok());
    assert!(b.stays_up(Duration::from_millis(200)).is_ok());
    assert!(lab.running("bgpd"));
}

#[test]
fn tcp_md5_is_enforced_in_the_kernel() {
    let Some((mut lab, core, lan)) = Lab::core_pair("md5", "lan", &["192.168.83.2"]) else {
        return;
    };
    lab.core_bgpd(
        &core,
        "bgpd",
        &["--peer", "192.168.83.2,passive,password=s3cret-md5"],
    );
    lab.wait_listen(&core);
    // With the key: Established, and a route is installed.
    let opts = ConnectOpts {
        md5: Some("s3cret-md5".into()),
        ..ConnectOpts::default()
    };
    let mut r = session_from(&lan, "192.168.83.2", opts).expect("session with the right key");
    r.send(&announce("192.168.83.2".parse().unwrap(), &["10.5.0.0/24"]))
        .unwrap();
    lab.wait_for("the keyed peer's route", Duration::from_secs(10), || {
        lab.kernel_routes(&core).contains("10.5.0.0/24")
    });
    // Without a key, or with the wrong one, the SYN is dropped: the TCP
    // handshake never completes, so bgpd never even sees the connection.
    for key in [None, Some("wrong")] {
        let opts = ConnectOpts {
            md5: key.map(String::from),
            timeout: Duration::from_secs(3),
            ..ConnectOpts::default()
        };
        let r = connect(&lan, bgpd_addr(), opts);
        assert!(r.is_err(), "TCP handshake completed with key {key:?}");
    }
    let log = lab.log("bgpd");
    assert_eq!(
        log.matches("TCP connection up").count(),
        1,
        "unkeyed connections reached bgpd:\n{log}"
    );
}

fn gtsm_lab(name: &str) -> Option<(Lab, String, String)> {
    let (mut lab, core, lan) = Lab::core_pair(name, "lan", &["192.168.83.2"])?;
    lab.core_bgpd(
        &core,
        "bgpd",
        &["--peer", "192.168.83.2,passive,ttl-security"],
    );
    lab.wait_listen(&core);
    Some((lab, core, lan))
}

fn with_ttl(ttl: u32) -> ConnectOpts {
    ConnectOpts {
        ttl: Some(ttl),
        timeout: Duration::from_secs(3),
        ..ConnectOpts::default()
    }
}

/// Sends an OPEN with TTL `ttl`; `Err` if bgpd answered it with a
/// KEEPALIVE (it accepted the OPEN).
fn low_ttl_gets_no_session(lan: &str, ttl: u32) -> Result<(), String> {
    let Ok(s) = connect(lan, bgpd_addr(), with_ttl(ttl)) else {
        return Ok(()); // dropped at the SYN: the strictest outcome
    };
    let mut r = Raw::new(s);
    // After the accept, bgpd sets IP_MINTTL on the connection; what
    // arrives later with a low TTL is dropped. (What arrives before is
    // not: see gtsm_first_flight_is_not_accepted.)
    std::thread::sleep(Duration::from_millis(500));
    let _ = r.send(&open(ASN, 30, "192.168.83.2".parse().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match r.recv(deadline.saturating_duration_since(Instant::now())) {
            Got::Msg(KEEPALIVE, _) => {
                return Err(format!("bgpd accepted an OPEN sent with TTL {ttl}"));
            }
            Got::Msg(..) => {}
            Got::Eof | Got::Timeout => return Ok(()),
        }
    }
}

/// With TTL 255 the peer gets a session; sending with TTL 1, 64 or 253 it
/// never does (bgpd never sees its OPEN, so never answers a KEEPALIVE).
#[test]
fn gtsm_refuses_low_ttl_and_accepts_255() {
    let Some((lab, _core, lan)) = gtsm_lab("gtsm") else {
        return;
    };
    let opts = ConnectOpts {
        ttl: Some(255),
        ..ConnectOpts::default()
    };
    let mut r = session_from(&lan, "192.168.83.2", opts).expect("session with TTL 255");
    assert!(r.stays_up(Duration::from_millis(300)).is_ok());
    drop(r);
    lab.wait_for("the session to go down", Duration::from_secs(10), || {
        lab.log("bgpd").contains("Established -> Idle") || lab.log("bgpd").contains("session down")
    });
    let before = lab.log("bgpd").matches("Established").count();
    for ttl in [1, 64, 253] {
        low_ttl_gets_no_session(&lan, ttl).unwrap();
    }
    assert_eq!(
        lab.log("bgpd").matches("Established").count(),
        before,
        "{}",
        lab.log("bgpd")
    );
}

/// A connection from the peer's address with a low TTL must not keep the
/// real peer out.
#[test]
fn gtsm_low_ttl_connection_does_not_lock_out_the_peer() {
    let Some((_lab, _core, lan)) = gtsm_lab("gtsmlock") else {
        return;
    };
    low_ttl_gets_no_session(&lan, 64).unwrap();
    let opts = ConnectOpts {
        ttl: Some(255),
        ..ConnectOpts::default()
    };
    session_from(&lan, "192.168.83.2", opts).expect("session with TTL 255 after a TTL-64 attempt");
}

/// An OPEN, KEEPALIVE and UPDATE sent with TTL 64 right after the TCP
/// handshake, before bgpd had time to set IP_MINTTL on the accepted
/// socket, must not give a session, let alone a route.
#[test]
fn gtsm_first_flight_is_not_accepted() {
    let Some((lab, core, lan)) = gtsm_lab("gtsmrace") else {
        return;
    };
    let mut accepted = Vec::new();
    for attempt in 0..5 {
        let Ok(s) = connect(&lan, bgpd_addr(), with_ttl(64)) else {
            continue;
        };
        let mut r = Raw::new(s);
        let burst = [
            open(ASN, 30, "192.168.83.2".parse().unwrap()),
            keepalive(),
            announce("192.168.83.2".parse().unwrap(), &["10.66.0.0/24"]),
        ]
        .concat();
        let _ = r.send(&burst);
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            match r.recv(deadline.saturating_duration_since(Instant::now())) {
                Got::Msg(KEEPALIVE, _) => {
                    accepted.push(attempt);
                    break;
                }
                Got::Msg(..) => {}
                Got::Eof | Got::Timeout => break,
            }
        }
        drop(r);
        std::thread::sleep(Duration::from_millis(300));
    }
    let k = lab.kernel_routes(&core);
    assert!(
        accepted.is_empty() && !k.contains("10.66.0.0/24"),
        "TTL-64 first flights accepted in attempts {accepted:?}; kernel:\n{k}\n{}",
        lab.log("bgpd")
    );
}

/// RFC 5082 §3 / docs/configuration.md ("accept only 254 or more"): a SYN
/// with a lower TTL should not even complete the TCP handshake.
#[test]
fn gtsm_drops_low_ttl_syn() {
    let Some((lab, _core, lan)) = gtsm_lab("gtsmsyn") else {
        return;
    };
    for ttl in [1, 64, 253] {
        assert!(
            connect(&lan, bgpd_addr(), with_ttl(ttl)).is_err(),
            "TCP handshake completed with TTL {ttl}"
        );
    }
    assert!(
        !lab.log("bgpd").contains("TCP connection up"),
        "a low-TTL connection reached bgpd:\n{}",
        lab.log("bgpd")
    );
}

/// bgpd active towards BIRD 2 with `ttl security on`: BIRD only accepts
/// packets with TTL 255, so the session proves bgpd sends with 255.
#[test]
fn gtsm_with_bird2() {
    if !have_bird2() {
        return;
    }
    let Some((mut lab, core, lan)) = Lab::core_pair("gtsmbird", "lan", &["192.168.83.2"]) else {
        return;
    };
    let cfg = format!(
        r#"log stderr all;
router id 192.168.83.2;
protocol device {{ }}
protocol static {{ ipv4; route 172.15.200.0/26 blackhole; }}
protocol bgp core {{
  local 192.168.83.2 as 64512;
  neighbor {CORE} as 64512;
  hold time 9;
  connect retry time 2;
  error wait time 1, 3;
  ttl security on;
  ipv4 {{ import all; export all; next hop self; }};
}}
"#
    );
    let sock = start_bird2(&mut lab, &lan, "bird", &cfg);
    lab.core_bgpd(
        &core,
        "bgpd",
        &["--hold-time", "9", "--peer", "192.168.83.2,ttl-security"],
    );
    lab.wait_for("Established with GTSM", Duration::from_secs(30), || {
        birdc(&lab, &lan, &sock, "show protocols", true).contains("Established")
    });
    lab.wait_for("BIRD's route installed", Duration::from_secs(15), || {
        lab.kernel_routes(&core).contains("172.15.200.0/26")
    });
}

#[test]
fn control_socket_permissions() {
    let Some((mut lab, core, _lan)) = Lab::core_pair("ctlperm", "lan", &["192.168.83.2"]) else {
        return;
    };
    let dir = lab.path("run/bgpd");
    let sock = dir.join("bgpd.sock");
    let sock_s = sock.to_string_lossy().to_string();
    lab.core_bgpd(
        &core,
        "bgpd",
        &[
            "--peer",
            "192.168.83.2,passive",
            "--control-socket",
            &sock_s,
        ],
    );
    lab.wait_for("the control socket", Duration::from_secs(15), || {
        sock.exists()
    });
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&sock), 0o660, "socket mode");
    assert_eq!(mode(&dir), 0o750, "socket directory mode");
    let bgpd = env!("CARGO_BIN_EXE_bgpd");
    // root may use it.
    let ok = lab.sh(&core, &format!("{bgpd} show neighbors --socket {sock_s}"));
    assert!(ok.status.success(), "{ok:?}");
    // nobody may not (neither the directory nor the socket let it in).
    if common::require(have("setpriv"), "setpriv (util-linux) is not installed") {
        let o = lab.sh(
            &core,
            &format!(
                "setpriv --reuid=nobody --regid=nogroup --clear-groups \
                 {bgpd} show neighbors --socket {sock_s}"
            ),
        );
        assert!(!o.status.success(), "nobody used the control socket: {o:?}");
    }
}

/// bgpd as `nobody` with only CAP_NET_ADMIN and CAP_NET_BIND_SERVICE
/// (ambient): it binds port 179, gets a session and installs a route.
#[test]
fn runs_as_non_root_with_capabilities_only() {
    if !common::require(have("setpriv"), "setpriv (util-linux) is not installed") {
        return;
    }
    let Some((mut lab, core, lan)) = Lab::core_pair("nonroot", "lan", &["192.168.83.2"]) else {
        return;
    };
    // A control socket directory nobody can write.
    let run = lab.path("run");
    std::fs::create_dir_all(&run).unwrap();
    lab.sh(&core, &format!("chown nobody {}", run.display()));
    let sock = run.join("bgpd.sock").to_string_lossy().to_string();
    let bgpd = env!("CARGO_BIN_EXE_bgpd");
    lab.spawn(
        &core,
        "bgpd",
        &[
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all,+net_admin,+net_bind_service",
            "--ambient-caps=+net_admin,+net_bind_service",
            "--bounding-set=-all,+net_admin,+net_bind_service",
            "--no-new-privs",
            bgpd,
            "--asn",
            "64512",
            "--router-id",
            CORE,
            "--peer",
            "192.168.83.2,passive",
            "--control-socket",
            &sock,
        ],
        &[("BGPD_LOG", "debug")],
    );
    lab.wait_listen(&core);
    // Who it runs as, and with what.
    let pid = lab
        .sh_text(&core, "ss -Htlnp 'sport = :179'")
        .split("pid=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .map(String::from)
        .expect("bgpd's pid from ss");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .map(|l| l[k.len()..].trim().to_string())
            .unwrap_or_default()
    };
    assert!(field("Uid:").starts_with("65534"), "{status}");
    // CAP_NET_BIND_SERVICE (10) and CAP_NET_ADMIN (12), nothing else.
    let caps = 1u64 << 10 | 1u64 << 12;
    for k in ["CapEff:", "CapPrm:", "CapBnd:"] {
        let v = u64::from_str_radix(&field(k), 16).unwrap();
        assert_eq!(v, caps, "{k} {v:x}\n{status}");
    }
    let s = connect(&lan, bgpd_addr(), ConnectOpts::default()).expect("connect");
    let mut r = Raw::new(s);
    r.handshake(&open(ASN, 30, Ipv4Addr::new(192, 168, 83, 2)))
        .expect("session with unprivileged bgpd");
    r.send(&announce(Ipv4Addr::new(192, 168, 83, 2), &["10.7.0.0/24"]))
        .unwrap();
    lab.wait_for(
        "the route installed by nobody",
        Duration::from_secs(10),
        || {
            lab.kernel_routes(&core)
                .contains("10.7.0.0/24 via 192.168.83.2")
        },
    );
    let o = lab.sh(&core, &format!("{bgpd} show routes --socket {sock}"));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("10.7.0.0/24"),
        "{o:?}"
    );
}
