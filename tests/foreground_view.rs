//! The foreground view (`bgpd --asn N --peer ADDR`) end to end, with stdout
//! to a file (the buffered path): a small table is shown line by line; a
//! large one as its first lines and summaries, with the prefix count.
//!
//! The raw speaker of tests/common/raw.rs plays the peer, in network
//! namespaces. Needs root; skips otherwise outside CI.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::netns::{CORE, Lab, bgpd_addr};
use common::raw::*;

const PEER: Ipv4Addr = Ipv4Addr::new(192, 168, 83, 2);

/// A lab with bgpd in the foreground in `core`, the raw peer in `peer`,
/// and an Established session.
fn start(name: &str) -> Option<(Lab, String, Raw)> {
    let (mut lab, core, lan) = Lab::core_pair(name, "peer", &[&PEER.to_string()])?;
    let sock = lab.path("bgpd.sock").to_string_lossy().to_string();
    let argv = [
        env!("CARGO_BIN_EXE_bgpd"),
        "--control-socket",
        &sock,
        "--asn",
        "64512",
        "--router-id",
        CORE,
        "--no-install",
        "--peer",
        &format!("{PEER},passive"),
    ];
    lab.spawn(&core, "bgpd", &argv, &[("BGPD_LOG", "warn")]);
    lab.wait_listen(&core);
    let to: SocketAddr = bgpd_addr();
    let s = connect(&lan, to, ConnectOpts::default()).expect("connect");
    let mut r = Raw::new(s);
    // Hold time 0: no keepalives needed.
    r.handshake(&open(64512, 0, PEER)).expect("session");
    lab.wait_for("Established", Duration::from_secs(10), || {
        lab.log("bgpd").contains("Established:")
    });
    Some((lab, core, r))
}

/// The peer's accepted prefixes, from `bgpd show neighbors --json`.
fn accepted(lab: &Lab, core: &str) -> Option<u64> {
    let sock = lab.path("bgpd.sock");
    let o = lab.sh(
        core,
        &format!(
            "timeout 5 {} show neighbors --json --socket {}",
            env!("CARGO_BIN_EXE_bgpd"),
            sock.display()
        ),
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
    let row = match &v {
        serde_json::Value::Array(a) => a.first()?.clone(),
        serde_json::Value::Object(o) => o.get("neighbors")?.as_array()?.first()?.clone(),
        _ => return None,
    };
    row.get("accepted")?.as_u64()
}

/// /24 number `i` from 10.0.0.0, in NLRI encoding.
fn nth24(i: u32) -> [u8; 4] {
    let a = (0x0a00_0000u32 + (i << 8)).to_be_bytes();
    [24, a[0], a[1], a[2]]
}

fn announce_range(r: &mut Raw, from: u32, to: u32) {
    let mut i = from;
    while i < to {
        let k = (to - i).min(1000);
        let nlri: Vec<u8> = (i..i + k).flat_map(nth24).collect();
        r.send(&update(&[], &ibgp_attrs(PEER), &nlri)).unwrap();
        i += k;
    }
}

fn count(log: &str, f: impl Fn(&str) -> bool) -> usize {
    log.lines().filter(|l| f(l)).count()
}

#[test]
fn a_small_table_is_shown_line_by_line() {
    let Some((mut lab, _core, mut r)) = start("fgsmall") else {
        return;
    };
    announce_range(&mut r, 0, 20);
    r.send(&withdraw(&["10.0.0.0/24", "10.0.1.0/24"])).unwrap();
    r.send(&update(&[], &[], &[])).unwrap(); // End-of-RIB
    lab.wait_for("End-of-RIB", Duration::from_secs(10), || {
        lab.log("bgpd").contains("End-of-RIB ipv4-unicast")
    });
    // The table's lines follow the UPDATE's; give the last ones a moment.
    lab.wait_for("the withdrawals", Duration::from_secs(10), || {
        count(&lab.log("bgpd"), |l| l.ends_with(" withdrawn")) == 2
    });
    assert_eq!(lab.stop("bgpd").and_then(|s| s.code()), Some(0));
    let log = lab.log("bgpd");
    let peer = format!("{PEER:<15}");
    assert_eq!(
        count(&log, |l| l.contains(&format!("{peer} + 10."))),
        20,
        "{log}"
    );
    assert!(
        log.contains(&format!("{peer} + 10.0.19.0/24 via {PEER} [")),
        "{log}"
    );
    assert_eq!(
        count(&log, |l| l.contains(&format!("{peer} - 10."))),
        2,
        "{log}"
    );
    assert_eq!(
        count(&log, |l| l.contains(" route 10.")
            && l.ends_with(&format!(" via {PEER}"))),
        20,
        "{log}"
    );
    assert!(log.contains(" route 10.0.0.0/24 withdrawn"), "{log}");
    assert!(
        !log.contains(" ... "),
        "no summaries for a small table:\n{log}"
    );
    assert!(log.contains("bgpd: shutting down"), "{log}");
}

#[test]
fn a_large_table_is_summarized_with_its_prefix_count() {
    let Some((mut lab, core, mut r)) = start("fglarge") else {
        return;
    };
    let n = 30_000;
    announce_range(&mut r, 0, n);
    r.send(&update(&[], &[], &[])).unwrap(); // End-of-RIB
    // The peer's End-of-RIB ends its burst: the summaries come before it.
    lab.wait_for("End-of-RIB", Duration::from_secs(60), || {
        lab.log("bgpd").contains("End-of-RIB ipv4-unicast")
    });
    let log = lab.log("bgpd");
    let table: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" more route changes "))
        .collect();
    assert!(
        table
            .last()
            .is_some_and(|l| l.ends_with("; 30,000 prefixes in the table")),
        "{table:#?}"
    );
    let received = log
        .lines()
        .filter(|l| l.contains(&format!("{PEER:<15} ... ")))
        .count();
    assert!(received >= 1, "no summary of the received prefixes");
    // Everything is accounted for: lines shown plus the summaries' counts.
    let peer = format!("{PEER:<15}");
    let shown_rx = count(&log, |l| l.contains(&format!("{peer} + 10.")));
    let shown_table = count(&log, |l| l.contains(" route 10."));
    assert!(
        shown_rx <= 1000 && shown_table <= 1000,
        "{shown_rx} {shown_table}"
    );
    let held = |pat: &str| -> usize {
        log.lines()
            .filter(|l| l.contains(pat))
            .map(|l| {
                let n = l.split(" ... ").nth(1).unwrap().split(' ').next().unwrap();
                n.replace(',', "").parse::<usize>().unwrap()
            })
            .sum()
    };
    assert_eq!(shown_rx + held(&format!("{peer} ... ")), n as usize);
    assert_eq!(shown_table + held(" more route change"), n as usize);
    // Withdrawing everything: the count goes back to 0.
    let mut i = 0;
    while i < n {
        let k = (n - i).min(1000);
        let w: Vec<u8> = (i..i + k).flat_map(nth24).collect();
        r.send(&update(&w, &[], &[])).unwrap();
        i += k;
    }
    lab.wait_for("every prefix withdrawn", Duration::from_secs(60), || {
        accepted(&lab, &core) == Some(0)
    });
    // The withdrawals came in many UPDATEs: their last summary waits for
    // the next call into the view, or for bgpd to stop.
    assert_eq!(lab.stop("bgpd").and_then(|s| s.code()), Some(0));
    let log = lab.log("bgpd");
    let last = log
        .lines()
        .rfind(|l| l.contains(" more route change"))
        .unwrap_or_default();
    assert!(last.ends_with("; 0 prefixes in the table"), "{last}");
    assert!(
        log.lines().count() < 5000,
        "{} lines for {n} routes",
        log.lines().count()
    );
}
