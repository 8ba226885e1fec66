//! Resource bounds against a hostile peer: an UPDATE flood stays under a
//! memory bound with bgpd responsive; max-prefix closes the session with
//! Cease 6/1 and no route beyond the limit reaches the kernel; oversized
//! messages get 1/2; an UPDATE packed with attributes is survived.
//!
//! The raw speaker of tests/common/raw.rs plays the peer. Needs root
//! (network namespaces); skips otherwise outside CI.
//!
//! `BGPD_FLOOD_PREFIXES` changes the flood size (default 200000).

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::netns::{CORE, Lab, bgpd_addr};
use common::raw::*;

const PEER: Ipv4Addr = Ipv4Addr::new(192, 168, 83, 2);
const ASN: u32 = 64512;

/// Peak resident memory allowed for bgpd after the flood. The RIB costs
/// under 100 bytes per route (docs/performance.md); this leaves room for
/// the runtime, buffers and allocator slack while still catching anything
/// that keeps per-message copies or lets a queue grow without bound.
const MAX_VMHWM_KIB: u64 = 256 * 1024;

fn bgpd_pid(lab: &Lab, core: &str) -> String {
    lab.sh_text(core, "ss -Htlnp 'sport = :179'")
        .split("pid=")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .map(String::from)
        .expect("bgpd's pid from ss")
}

fn status_kib(pid: &str, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn session(lan: &str, hold: u16) -> Raw {
    let s = connect(lan, bgpd_addr(), ConnectOpts::default()).expect("connect");
    let mut r = Raw::new(s);
    r.handshake(&open(ASN, hold, PEER)).expect("session");
    r
}

/// /24 number `i` counted up from 10.0.0.0 (10.0.0.0/24, 10.0.1.0/24, ...).
fn nth24(i: u32) -> [u8; 4] {
    let a = (0x0a00_0000u32 + (i << 8)).to_be_bytes();
    [24, a[0], a[1], a[2]]
}

fn neighbors_json(lab: &Lab, core: &str, sock: &str) -> (bool, String) {
    let o = lab.sh(
        core,
        &format!(
            "timeout 5 {} show neighbors --json --socket {sock}",
            env!("CARGO_BIN_EXE_bgpd")
        ),
    );
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).to_string(),
    )
}

fn json_u64(json: &str, key: &str) -> Option<u64> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let row = match &v {
        serde_json::Value::Array(a) => a.first()?.clone(),
        serde_json::Value::Object(o) => o
            .get("neighbors")
            .and_then(|n| n.as_array())
            .and_then(|a| a.first().cloned())
            .unwrap_or(v.clone()),
        _ => return None,
    };
    row.get(key)?.as_u64()
}

#[test]
fn update_flood_stays_under_a_memory_bound() {
    let n: u32 = std::env::var("BGPD_FLOOD_PREFIXES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let Some((mut lab, core, lan)) = Lab::core_pair("flood", "peer", &[&PEER.to_string()]) else {
        return;
    };
    let sock = lab.path("bgpd.sock").to_string_lossy().to_string();
    lab.core_bgpd(
        &core,
        "bgpd",
        &[
            "--no-install",
            "--peer",
            &format!("{PEER},passive"),
            "--control-socket",
            &sock,
        ],
    );
    lab.wait_listen(&core);
    let pid = bgpd_pid(&lab, &core);
    let before = status_kib(&pid, "VmHWM:");
    // Hold time 0: no keepalives needed while we flood.
    let mut r = session(&lan, 0);
    let t = Instant::now();
    // Up to 1000 /24s per UPDATE (4 octets each), each UPDATE with its own
    // attributes (MED = the batch number), so attribute sets cannot all be
    // shared either.
    let mut i = 0;
    let mut batch = 0u32;
    while i < n {
        let k = (n - i).min(1000);
        let nlri: Vec<u8> = (i..i + k).flat_map(nth24).collect();
        let attrs = [
            ibgp_attrs(PEER),
            attr(0x80, 4, &batch.to_be_bytes()),
            attr(0xc0, 8, &[0xfc, 0, (batch >> 8) as u8, batch as u8]),
        ]
        .concat();
        r.send(&update(&[], &attrs, &nlri)).expect("flood write");
        i += k;
        batch += 1;
    }
    let sent = t.elapsed();
    // bgpd takes them all and stays responsive.
    lab.wait_for(
        "bgpd to account for every prefix",
        Duration::from_secs(120),
        || {
            let (ok, j) = neighbors_json(&lab, &core, &sock);
            ok && json_u64(&j, "accepted") == Some(n as u64)
        },
    );
    let took = t.elapsed();
    let hwm = status_kib(&pid, "VmHWM:");
    eprintln!(
        "flood: {n} prefixes in {batch} UPDATEs, sent in {sent:?}, accounted in {took:?}; \
         VmHWM {before} KiB before, {hwm} KiB after (bound {MAX_VMHWM_KIB} KiB)"
    );
    assert!(
        hwm <= MAX_VMHWM_KIB,
        "bgpd peaked at {hwm} KiB > {MAX_VMHWM_KIB} KiB"
    );
    assert!(lab.running("bgpd"), "bgpd exited");
    assert!(
        r.stays_up(Duration::from_millis(500)).is_ok(),
        "session dropped"
    );
    // The control socket still answers (within neighbors_json's functional
    // 5 s timeout). How fast is a figure, not a test: benches/harness.sh
    // records it as show_neighbors_s after convergence.
    let t = Instant::now();
    let (ok, j) = neighbors_json(&lab, &core, &sock);
    eprintln!("flood: show neighbors answered in {:?}", t.elapsed());
    assert!(
        ok && json_u64(&j, "accepted") == Some(n as u64),
        "the control socket did not answer after the flood: {j}"
    );
    // Withdrawing everything brings the count back to 0.
    let mut i = 0;
    while i < n {
        let k = (n - i).min(1000);
        let w: Vec<u8> = (i..i + k).flat_map(nth24).collect();
        r.send(&update(&w, &[], &[])).unwrap();
        i += k;
    }
    lab.wait_for("the withdrawals", Duration::from_secs(120), || {
        let (ok, j) = neighbors_json(&lab, &core, &sock);
        ok && json_u64(&j, "accepted") == Some(0)
    });
}

#[test]
fn max_prefix_gets_6_1() {
    max_prefix(false);
}

#[test]
fn max_prefix_nothing_beyond_the_limit_reaches_the_kernel() {
    max_prefix(true);
}

fn max_prefix(check_monitor: bool) {
    let Some((mut lab, core, lan)) = Lab::core_pair("maxpfx", "peer", &[&PEER.to_string()]) else {
        return;
    };
    lab.spawn(&core, "monitor", &["ip", "monitor", "route"], &[]);
    let sock = lab.path("bgpd.sock").to_string_lossy().to_string();
    let cfg = lab.write(
        "bgpd.toml",
        &format!(
            r#"local_as = 64512
router_id = "{CORE}"
hold_time = 30
[[peer]]
address = "{PEER}"
passive = true
max_prefix = {{ limit = 100, warning_percent = 50 }}
[control]
socket = "{sock}"
"#
        ),
    );
    lab.bgpd(&core, "bgpd", &["--config", &cfg.to_string_lossy()]);
    lab.wait_listen(&core);
    let mut r = session(&lan, 30);
    // 100 prefixes: at the limit, accepted.
    let first: Vec<u8> = (0..100).flat_map(nth24).collect();
    r.send(&update(&[], &ibgp_attrs(PEER), &first)).unwrap();
    lab.wait_for("100 routes in the kernel", Duration::from_secs(20), || {
        lab.kernel_routes(&core).lines().count() == 100
    });
    assert!(r.stays_up(Duration::from_millis(300)).is_ok());
    // Ten more in one UPDATE: over the limit.
    let more: Vec<u8> = (100..110).flat_map(nth24).collect();
    r.send(&update(&[], &ibgp_attrs(PEER), &more)).unwrap();
    let n = r
        .notification(Duration::from_secs(10))
        .expect("a NOTIFICATION for max-prefix");
    assert_eq!((n.code, n.subcode), (6, 1), "{n:?}");
    // The session's routes go; none beyond the first 100 ever appeared.
    lab.wait_for("the routes withdrawn", Duration::from_secs(20), || {
        lab.kernel_routes(&core).trim().is_empty()
    });
    std::thread::sleep(Duration::from_millis(300));
    let seen = lab.log("monitor");
    for i in (100..110).filter(|_| check_monitor) {
        let a = nth24(i);
        let p = format!("{}.{}.{}.0/24", a[1], a[2], a[3]);
        assert!(
            !seen.lines().any(|l| l.split_whitespace().any(|w| w == p)),
            "{p}, beyond the limit, reached the kernel"
        );
    }
    // Without restart_after the peer stays down: new connections from it
    // never get a session (refused, or closed before Established).
    for attempt in 0..3 {
        if let Ok(s) = connect(&lan, bgpd_addr(), ConnectOpts::default()) {
            let mut again = Raw::new(s);
            let got = again.handshake(&open(ASN, 30, PEER));
            assert!(
                got.is_err(),
                "attempt {attempt}: the peer got a session again after max-prefix \
                 without restart_after"
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let log = lab.log("bgpd");
    assert_eq!(
        log.matches("session established").count(),
        1,
        "more than one session came up:\n{log}"
    );
    assert!(lab.running("bgpd"));
}

#[test]
fn oversized_message_gets_1_2() {
    let Some((mut lab, core, lan)) = Lab::core_pair("oversize", "peer", &[&PEER.to_string()])
    else {
        return;
    };
    lab.core_bgpd(&core, "bgpd", &["--peer", &format!("{PEER},passive")]);
    lab.wait_listen(&core);
    for len in [4097usize, 65535] {
        let mut r = session(&lan, 30);
        let nlri: Vec<u8> = (0..2000).flat_map(nth24).collect();
        let mut m = update(&[], &ibgp_attrs(PEER), &nlri);
        m.resize(len, 0);
        m[16..18].copy_from_slice(&(len as u16).to_be_bytes());
        r.send(&m).unwrap();
        let n = r
            .notification(Duration::from_secs(5))
            .expect("NOTIFICATION");
        assert_eq!(
            (n.code, n.subcode, n.data.clone()),
            (1, 2, (len as u16).to_be_bytes().to_vec()),
            "length {len}"
        );
        assert!(
            lab.kernel_routes(&core).trim().is_empty(),
            "a route of the oversized UPDATE was installed"
        );
    }
    assert!(lab.running("bgpd"));
}

/// An UPDATE packed with 1300 empty unknown optional attributes (most
/// repeating the same codes, which RFC 7606 §3g discards) is handled
/// without the session or bgpd falling over.
#[test]
fn update_packed_with_attributes() {
    let Some((mut lab, core, lan)) = Lab::core_pair("manyattrs", "peer", &[&PEER.to_string()])
    else {
        return;
    };
    lab.core_bgpd(&core, "bgpd", &["--peer", &format!("{PEER},passive")]);
    lab.wait_listen(&core);
    let mut r = session(&lan, 30);
    let mut attrs = ibgp_attrs(PEER);
    for k in 0..1300u32 {
        attrs.extend_from_slice(&[0xc0, 100 + (k % 150) as u8, 0]);
    }
    let m = update(&[], &attrs, &prefix("10.77.0.0/24"));
    assert!(m.len() <= 4096, "{}", m.len());
    r.send(&m).unwrap();
    lab.wait_for("the route installed", Duration::from_secs(10), || {
        lab.kernel_routes(&core).contains("10.77.0.0/24")
    });
    assert!(r.stays_up(Duration::from_millis(300)).is_ok());
}
