//! Every captured fixture decodes to the value stored beside it
//! (`<name>.json`), re-encodes to the same octets, and everything the
//! encoder produces for the corpus passes tshark without malformed-packet
//! expert info.
//!
//! `BLESS=1 cargo test --test codec_fixtures` rewrites the JSON files after
//! a deliberate change; review the diff.

mod common;

use std::path::PathBuf;
use std::process::Command;

use bgpd::wire::{Message, Update};

fn json_path(f: &common::Fixture) -> PathBuf {
    f.path().with_extension("json")
}

#[test]
fn fixtures_decode_to_expected_value_and_reencode_exactly() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    let fixtures = common::fixtures();
    for f in &fixtures {
        let bytes = f.bytes();
        let ctx = f.ctx();
        if let Some(want) = &f.expect_error {
            match Message::decode(&ctx, &bytes) {
                Err(e)
                    if format!("{}/{}", e.notification.code, e.notification.subcode) == *want => {}
                other => failures.push(format!("{}: expected {want}, got {other:?}", f.file)),
            }
            continue;
        }
        let m = match Message::decode(&ctx, &bytes) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{}: does not decode: {e}", f.file));
                continue;
            }
        };
        if let Message::Update(Update { errors, .. }) = &m
            && !errors.is_empty()
        {
            failures.push(format!("{}: attribute errors {errors:?}", f.file));
        }
        let kind = match &m {
            Message::Open(_) => "open",
            Message::Update(_) => "update",
            Message::Notification(_) => "notification",
            Message::Keepalive => "keepalive",
            Message::RouteRefresh(_) => "route-refresh",
        };
        if kind != f.kind {
            failures.push(format!(
                "{}: manifest says {}, decodes as {kind}",
                f.file, f.kind
            ));
        }
        let json = serde_json::to_string_pretty(&m).unwrap() + "\n";
        let jp = json_path(f);
        if bless {
            std::fs::write(&jp, &json).unwrap();
        } else {
            match std::fs::read_to_string(&jp) {
                Ok(want) if want == json => {}
                Ok(_) => failures.push(format!(
                    "{}: decoded value differs from {} (BLESS=1 to update)",
                    f.file,
                    jp.display()
                )),
                Err(e) => failures.push(format!("{}: {e}", jp.display())),
            }
        }
        match m.to_bytes(&ctx) {
            Ok(b) if b[..] == bytes[..] => {}
            Ok(b) => failures.push(format!(
                "{}: re-encodes differently\n  want {}\n  got  {}",
                f.file,
                bgpd::wire::ser::to_hex(&bytes),
                bgpd::wire::ser::to_hex(&b)
            )),
            Err(e) => failures.push(format!("{}: does not re-encode: {e}", f.file)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n")
    );
}

#[test]
fn fixture_set_covers_the_required_messages() {
    use bgpd::wire::iana::attr;
    let mut have = std::collections::BTreeSet::new();
    let senders: std::collections::BTreeSet<String> = common::fixtures()
        .iter()
        .filter(|f| f.kind == "open")
        .map(|f| f.sender.clone())
        .collect();
    for f in common::fixtures() {
        let Ok(m) = Message::decode(&f.ctx(), &f.bytes()) else {
            continue;
        };
        match &m {
            Message::Update(u) => {
                if !u.nlri.is_empty() {
                    have.insert("ipv4 nlri");
                }
                if u.mp_reach().is_some_and(|r| r.afi_safi.afi == 2) {
                    have.insert("ipv6 mp_reach");
                }
                if u.announced().any(|n| n.path_id.is_some()) {
                    have.insert("add-path ids");
                }
                if u.attr(attr::ORIGINATOR_ID).is_some() && u.attr(attr::CLUSTER_LIST).is_some() {
                    have.insert("reflected");
                }
                if u.attr(attr::COMMUNITIES).is_some() {
                    have.insert("communities");
                }
                if u.withdrawn_all().next().is_some() {
                    have.insert("withdrawals");
                }
                if u.as_end_of_rib().is_some() {
                    have.insert("end-of-rib");
                }
            }
            Message::Notification(_) => {
                have.insert("notification");
            }
            _ => {}
        }
    }
    for want in [
        "ipv4 nlri",
        "ipv6 mp_reach",
        "add-path ids",
        "reflected",
        "communities",
        "withdrawals",
        "end-of-rib",
        "notification",
    ] {
        assert!(have.contains(want), "no fixture with {want}");
    }
    for who in ["bird1", "bird2", "frr", "gobgp", "exabgp"] {
        assert!(senders.contains(who), "no OPEN from {who}: {senders:?}");
    }
}

/// Whether a program runs; a missing one is a skip (a failure under CI).
fn have_tool(name: &str) -> bool {
    let ok = Command::new(name).arg("--version").output().is_ok();
    common::require(ok, &format!("{name} is not installed (run .ci/setup)"))
}

#[test]
fn tshark_accepts_everything_the_encoder_produces() {
    if !have_tool("tshark") || !have_tool("text2pcap") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("bgpd-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // One TCP stream per fixture session (lab + sender + receiver), with
    // the OPENs first so tshark knows what was negotiated, then the
    // re-encoded messages in order.
    let mut streams: std::collections::BTreeMap<String, Vec<(usize, Vec<u8>)>> = Default::default();
    let mut count = 0;
    for f in common::fixtures() {
        if f.expect_error.is_some() {
            continue;
        }
        let ctx = f.ctx();
        let m = Message::decode(&ctx, &f.bytes()).unwrap();
        let bytes = m.to_bytes(&ctx).unwrap().to_vec();
        let order = if f.kind == "open" { 0 } else { 1 };
        streams
            .entry(format!("{}/{}/{}", f.lab, f.sender, f.receiver))
            .or_default()
            .push((order, bytes));
        count += 1;
    }
    let mut text = String::new();
    let mut pcaps = Vec::new();
    for (n, (_, mut msgs)) in streams.into_iter().enumerate() {
        msgs.sort_by_key(|(o, _)| *o);
        text.clear();
        for (_, b) in &msgs {
            text.push_str("0000 ");
            for x in b {
                text.push_str(&format!(" {x:02x}"));
            }
            text.push('\n');
        }
        let txt = dir.join(format!("s{n}.txt"));
        let pcap = dir.join(format!("s{n}.pcap"));
        std::fs::write(&txt, &text).unwrap();
        let st = Command::new("text2pcap")
            .args(["-q", "-4", "127.0.0.1,127.0.0.2", "-T"])
            .arg(format!("{},179", 40000 + n))
            .arg(&txt)
            .arg(&pcap)
            .status()
            .unwrap();
        assert!(st.success(), "text2pcap failed");
        pcaps.push(pcap);
    }
    let mut decoded = 0;
    for pcap in &pcaps {
        let out = Command::new("tshark")
            .args(["-n", "-r"])
            .arg(pcap)
            .args(["-q", "-z", "expert,warn"])
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(
            !report.contains("Malformed") && !report.contains("Errors ("),
            "tshark flags {}:\n{report}",
            pcap.display()
        );
        let out = Command::new("tshark")
            .args(["-n", "-r"])
            .arg(pcap)
            .args(["-Y", "bgp", "-T", "fields", "-e", "bgp.type"])
            .output()
            .unwrap();
        decoded += String::from_utf8_lossy(&out.stdout)
            .split([',', '\n'])
            .filter(|s| !s.trim().is_empty())
            .count();
    }
    assert_eq!(
        decoded, count,
        "tshark saw a different number of BGP messages"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// An MRT dump of the fixtures, written by bgpd, reads back in bgpd and in
/// bgpdump (RFC 6396 BGP4MP_ET / MESSAGE_AS4).
#[test]
fn mrt_dump_reads_back_in_bgpdump() {
    use bgpd::wire::mrt;
    let mut file = Vec::new();
    let mut written = 0;
    for f in common::fixtures() {
        // bgpdump reads MESSAGE_AS4 with 4-octet paths and no ADD-PATH.
        if !f.four_octet_as || !f.add_path.is_empty() || f.expect_error.is_some() {
            continue;
        }
        let session = mrt::DumpSession {
            peer_as: 64512,
            local_as: 64512,
            peer: "192.168.83.36".parse().unwrap(),
            local: "192.168.83.1".parse().unwrap(),
            add_path: false,
        };
        mrt::write_bgp4mp_message(
            &mut file,
            std::time::SystemTime::now(),
            &session,
            &f.bytes(),
        );
        written += 1;
    }
    assert!(written > 50);
    // bgpd reads it back: every message decodes.
    let recs: Vec<_> = mrt::records(&file).collect();
    assert_eq!(recs.len(), written);
    for r in &recs {
        match r {
            Ok(mrt::Record::Message { message: Ok(_), .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    if !have_tool("bgpdump") {
        return;
    }
    let path = std::env::temp_dir().join(format!("bgpd-mrt-{}.mrt", std::process::id()));
    std::fs::write(&path, &file).unwrap();
    let out = Command::new("bgpdump")
        .arg("-m")
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // One line per UPDATE prefix or state; at least the OPEN-less updates.
    assert!(
        text.lines().any(|l| l.starts_with("BGP4MP_ET|")),
        "{text}\n{err}"
    );
    assert!(!err.to_lowercase().contains("error"), "{err}");
}
