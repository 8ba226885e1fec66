//! Every captured fixture means what an independent decoder says it means
//! (tshark's fields: `fixtures_mean_what_tshark_decodes`), decodes to the
//! value stored beside it (`<name>.json`, a regression check of the rest),
//! re-encodes to the same octets, and everything the encoder produces for
//! the corpus passes tshark without malformed-packet expert info.
//!
//! The stored JSON was written by bgpd, so it only catches changes: the
//! meaning is checked against tshark. Rewriting it is an explicit command,
//! `BLESS=1 cargo test --test codec_fixtures` (exactly `1`; any other value
//! is an error, and CI=true refuses to bless); review the diff.

mod common;

use std::path::PathBuf;
use std::process::Command;

use bgpd::wire::{Message, Update};

fn json_path(f: &common::Fixture) -> PathBuf {
    f.path().with_extension("json")
}

/// Whether to rewrite the stored JSON: only `BLESS=1`, never under CI.
fn bless() -> bool {
    match std::env::var("BLESS").as_deref() {
        Err(_) => false,
        Ok("1") => {
            assert!(
                !common::in_ci(),
                "BLESS=1 under CI=true: blessing is a command for a person, never part of a run"
            );
            true
        }
        Ok(other) => panic!("BLESS={other:?}: only BLESS=1 rewrites the stored JSON"),
    }
}

#[test]
fn fixtures_decode_to_expected_value_and_reencode_exactly() {
    let bless = bless();
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

/// The tshark fields compared with bgpd's decoding of every fixture.
const TSHARK_FIELDS: &[&str] = &[
    "bgp.type",
    "bgp.open.myas",
    "bgp.open.holdtime",
    "bgp.open.identifier",
    "bgp.cap.type",
    "bgp.notify.major_error",
    "minor",
    "bgp.route_refresh.afi",
    "bgp.route_refresh.safi",
    "bgp.route_refresh.subtype",
    "bgp.update.path_attribute.origin",
    "bgp.update.path_attribute.next_hop",
    "bgp.update.path_attribute.local_pref",
    "bgp.update.path_attribute.multi_exit_disc",
    "bgp.update.path_attribute.as_path_segment.as2",
    "bgp.update.path_attribute.as_path_segment.as4",
    "bgp.update.path_attribute.community_as",
    "bgp.update.path_attribute.community_value",
    "bgp.update.path_attribute.community_wellknown",
    "bgp.large_communities.ga",
    "bgp.large_communities.ldp1",
    "bgp.large_communities.ldp2",
    "bgp.update.path_attribute.originator_id",
    "bgp.path_attribute.cluster_id",
    "bgp.update.path_attribute.aggregator_as",
    "bgp.update.path_attribute.aggregator_origin",
    "bgp.update.path_attribute.mp_reach_nlri.afi",
    "bgp.update.path_attribute.mp_reach_nlri.safi",
    "bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv4",
    "bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv6",
    "bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv6.link_local",
    "bgp.update.path_attribute.mp_unreach_nlri.afi",
    "bgp.update.path_attribute.mp_unreach_nlri.safi",
    "bgp.withdrawn_prefix",
    "bgp.nlri_prefix",
    "bgp.mp_reach_nlri_ipv4_prefix",
    "bgp.mp_reach_nlri_ipv6_prefix",
    "bgp.mp_unreach_nlri_ipv4_prefix",
    "bgp.mp_unreach_nlri_ipv6_prefix",
    "bgp.nlri_path_id",
    "bgp.prefix_length",
];

/// tshark's minor-error field depends on the major code.
const TSHARK_MINOR: &[&str] = &[
    "bgp.notify.minor_error",
    "bgp.notify.minor_error_open",
    "bgp.notify.minor_error_update",
    "bgp.notify.minor_error_expired",
    "bgp.notify.minor_error_state",
    "bgp.notify.minor_error_cease",
    "bgp.notify.minor_error_capability",
    "bgp.notify.minor_error_unknown",
];

type Meaning = std::collections::BTreeMap<&'static str, Vec<String>>;

/// What bgpd decoded, in tshark's terms: every field of [`TSHARK_FIELDS`]
/// with its values in wire order (absent fields are empty).
fn meaning_of(m: &Message, four_octet_as: bool) -> Meaning {
    use serde_json::Value;
    let v = serde_json::to_value(m).unwrap();
    let mut out: Meaning = TSHARK_FIELDS.iter().map(|f| (*f, Vec::new())).collect();
    let mut put = |k: &'static str, x: String| out.get_mut(k).expect(k).push(x);
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let afi_safi = |x: &Value| -> (String, String) {
        match x.as_str().unwrap() {
            "ipv4-unicast" => ("1".into(), "1".into()),
            "ipv6-unicast" => ("2".into(), "1".into()),
            "ipv4-multicast" => ("1".into(), "2".into()),
            "ipv6-multicast" => ("2".into(), "2".into()),
            other => panic!("afi/safi {other} not mapped"),
        }
    };
    let kind = match m {
        Message::Open(_) => 1,
        Message::Update(_) => 2,
        Message::Notification(_) => 3,
        Message::Keepalive => 4,
        Message::RouteRefresh(_) => 5,
    };
    put("bgp.type", kind.to_string());
    match kind {
        1 => {
            put("bgp.open.myas", s(&v["asn"]));
            put("bgp.open.holdtime", s(&v["hold_time"]));
            put("bgp.open.identifier", s(&v["bgp_id"]));
            let mut caps = Vec::new();
            fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
                match v {
                    Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
                    Value::Object(_) => out.push(v),
                    _ => {}
                }
            }
            flatten(&v["params"], &mut caps);
            for c in caps {
                let code = match c["capability"].as_str().unwrap() {
                    "multiprotocol" => 1,
                    "route-refresh" => 2,
                    "extended-next-hop" => 5,
                    "extended-message" => 6,
                    "graceful-restart" => 64,
                    "four-octet-as" => 65,
                    "add-path" => 69,
                    "enhanced-route-refresh" => 70,
                    "long-lived-graceful-restart" => 71,
                    "fqdn" => 73,
                    "unknown" => c["code"].as_u64().unwrap(),
                    other => panic!("capability {other} not mapped"),
                };
                put("bgp.cap.type", code.to_string());
            }
        }
        3 => {
            put("bgp.notify.major_error", s(&v["code"]));
            put("minor", s(&v["subcode"]));
            // 2/7 (Unsupported Capability) carries the capabilities.
            if (v["code"].as_u64(), v["subcode"].as_u64()) == (Some(2), Some(7)) {
                let hex = v["data"].as_str().unwrap();
                let data: Vec<u8> = (0..hex.len() / 2)
                    .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                    .collect();
                let mut i = 0;
                while i + 1 < data.len() {
                    put("bgp.cap.type", data[i].to_string());
                    i += 2 + data[i + 1] as usize;
                }
            }
        }
        5 => {
            let (afi, safi) = afi_safi(&v["afi_safi"]);
            put("bgp.route_refresh.afi", afi);
            put("bgp.route_refresh.safi", safi);
            put("bgp.route_refresh.subtype", s(&v["subtype"]));
        }
        2 => {
            // Wire order: withdrawn routes, the attributes (MP_REACH and
            // MP_UNREACH carry prefixes), then the NLRI.
            let prefix =
                |put: &mut dyn FnMut(&'static str, String), field: &'static str, p: &Value| {
                    let text = p["prefix"].as_str().unwrap();
                    let (addr, len) = text.split_once('/').unwrap();
                    let addr: std::net::IpAddr = addr.parse().unwrap();
                    put(field, addr.to_string());
                    put("bgp.prefix_length", len.to_string());
                    if let Some(id) = p.get("path_id") {
                        put("bgp.nlri_path_id", s(id));
                    }
                };
            let v4 = |p: &Value| !p["prefix"].as_str().unwrap().contains(':');
            for p in v["withdrawn"].as_array().unwrap() {
                prefix(&mut put, "bgp.withdrawn_prefix", p);
            }
            for a in v["attributes"].as_array().unwrap() {
                let val = &a["value"];
                match a["attribute"].as_str().unwrap_or("") {
                    "ORIGIN" => put(
                        "bgp.update.path_attribute.origin",
                        match val.as_str().unwrap() {
                            "igp" => "0",
                            "egp" => "1",
                            _ => "2",
                        }
                        .into(),
                    ),
                    "NEXT_HOP" => put("bgp.update.path_attribute.next_hop", s(val)),
                    "LOCAL_PREF" => put("bgp.update.path_attribute.local_pref", s(val)),
                    "MULTI_EXIT_DISC" => put("bgp.update.path_attribute.multi_exit_disc", s(val)),
                    name @ ("AS_PATH" | "AS4_PATH") => {
                        let field = if name == "AS4_PATH" || four_octet_as {
                            "bgp.update.path_attribute.as_path_segment.as4"
                        } else {
                            "bgp.update.path_attribute.as_path_segment.as2"
                        };
                        for seg in val.as_array().unwrap() {
                            for asn in seg["asns"].as_array().unwrap() {
                                put(field, s(asn));
                            }
                        }
                    }
                    "AGGREGATOR" | "AS4_AGGREGATOR" => {
                        put("bgp.update.path_attribute.aggregator_as", s(&val["asn"]));
                        put(
                            "bgp.update.path_attribute.aggregator_origin",
                            s(&val["address"]),
                        );
                    }
                    "COMMUNITIES" => {
                        for c in val.as_array().unwrap() {
                            let (hi, lo) = s(c)
                                .split_once(':')
                                .map(|(a, b)| {
                                    (a.parse::<u32>().unwrap(), b.parse::<u32>().unwrap())
                                })
                                .unwrap();
                            if hi == 0xffff {
                                put(
                                    "bgp.update.path_attribute.community_wellknown",
                                    format!("0x{:08x}", (hi << 16) | lo),
                                );
                            } else {
                                put("bgp.update.path_attribute.community_as", hi.to_string());
                                put("bgp.update.path_attribute.community_value", lo.to_string());
                            }
                        }
                    }
                    "LARGE_COMMUNITY" => {
                        for c in val.as_array().unwrap() {
                            let t = s(c);
                            let p: Vec<&str> = t.split(':').collect();
                            put("bgp.large_communities.ga", p[0].into());
                            put("bgp.large_communities.ldp1", p[1].into());
                            put("bgp.large_communities.ldp2", p[2].into());
                        }
                    }
                    "ORIGINATOR_ID" => put("bgp.update.path_attribute.originator_id", s(val)),
                    "CLUSTER_LIST" => {
                        for c in val.as_array().unwrap() {
                            put("bgp.path_attribute.cluster_id", s(c));
                        }
                    }
                    "MP_REACH_NLRI" => {
                        let (afi, safi) = afi_safi(&val["afi_safi"]);
                        put("bgp.update.path_attribute.mp_reach_nlri.afi", afi);
                        put("bgp.update.path_attribute.mp_reach_nlri.safi", safi);
                        let nh = &val["next_hop"];
                        if let Some(g) = nh.get("global") {
                            put(
                                "bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv6",
                                s(g),
                            );
                            if let Some(ll) = nh.get("link_local") {
                                put(
                                    "bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv6.link_local",
                                    s(ll),
                                );
                            }
                        } else {
                            put(
                                "bgp.update.path_attribute.mp_reach_nlri.next_hop.ipv4",
                                s(nh),
                            );
                        }
                        for p in val["nlri"].as_array().unwrap() {
                            let f = if v4(p) {
                                "bgp.mp_reach_nlri_ipv4_prefix"
                            } else {
                                "bgp.mp_reach_nlri_ipv6_prefix"
                            };
                            prefix(&mut put, f, p);
                        }
                    }
                    "MP_UNREACH_NLRI" => {
                        let (afi, safi) = afi_safi(&val["afi_safi"]);
                        put("bgp.update.path_attribute.mp_unreach_nlri.afi", afi);
                        put("bgp.update.path_attribute.mp_unreach_nlri.safi", safi);
                        for p in val["nlri"].as_array().unwrap() {
                            let f = if v4(p) {
                                "bgp.mp_unreach_nlri_ipv4_prefix"
                            } else {
                                "bgp.mp_unreach_nlri_ipv6_prefix"
                            };
                            prefix(&mut put, f, p);
                        }
                    }
                    // Compared by tshark_accepts_everything_the_encoder_produces
                    // (no malformed packet) only.
                    _ => {}
                }
            }
            for p in v["nlri"].as_array().unwrap() {
                prefix(&mut put, "bgp.nlri_prefix", p);
            }
        }
        _ => {}
    }
    out
}

/// tshark's reading of one pcap: per frame, the fields of
/// [`TSHARK_FIELDS`].
fn tshark_meanings(pcap: &std::path::Path, four_octet_as: bool) -> Vec<Meaning> {
    let mut args: Vec<String> = vec![
        "-n".into(),
        "-r".into(),
        pcap.to_string_lossy().into(),
        "-o".into(),
        format!(
            "bgp.asn_len:{}",
            if four_octet_as { "4 octet" } else { "2 octet" }
        ),
        "-Y".into(),
        "bgp".into(),
        "-T".into(),
        "fields".into(),
        "-E".into(),
        "occurrence=a".into(),
        "-E".into(),
        "aggregator=,".into(),
    ];
    let real: Vec<&str> = TSHARK_FIELDS
        .iter()
        .filter(|f| **f != "minor")
        .chain(TSHARK_MINOR)
        .copied()
        .collect();
    for f in &real {
        args.push("-e".into());
        args.push(f.to_string());
    }
    let out = Command::new("tshark").args(&args).output().expect("tshark");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let mut m: Meaning = TSHARK_FIELDS.iter().map(|f| (*f, Vec::new())).collect();
            for (f, c) in real.iter().zip(cols.iter().chain(std::iter::repeat(&""))) {
                let vals: Vec<String> = c
                    .split(',')
                    .filter(|x| !x.is_empty())
                    .map(String::from)
                    .collect();
                if TSHARK_MINOR.contains(f) {
                    let minor = m.get_mut("minor").unwrap();
                    if minor.is_empty() {
                        *minor = vals;
                    }
                } else {
                    *m.get_mut(f).unwrap() = vals;
                }
            }
            m
        })
        .collect()
}

/// The decoded meaning of every captured fixture, checked against an
/// independent decoder: tshark reads the captured octets (one message a
/// frame) and each field it reports must match what bgpd decoded: types,
/// OPEN fields and capability codes, NOTIFICATION codes, ROUTE-REFRESH
/// families, every attribute value (AS paths, communities, next hops,
/// reflection, aggregator), each prefix with its length and ADD-PATH id.
/// Unlike the stored JSON, nothing here was written by bgpd.
#[test]
fn fixtures_mean_what_tshark_decodes() {
    if !have_tool("tshark") || !have_tool("text2pcap") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("bgpd-tsmeaning-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for four in [false, true] {
        let fixtures: Vec<common::Fixture> = common::fixtures()
            .into_iter()
            .filter(|f| f.expect_error.is_none() && f.four_octet_as == four)
            .collect();
        let mut text = String::new();
        for f in &fixtures {
            text.push_str("0000 ");
            for x in f.bytes() {
                text.push_str(&format!(" {x:02x}"));
            }
            text.push('\n');
        }
        let txt = dir.join(format!("m{four}.txt"));
        let pcap = dir.join(format!("m{four}.pcap"));
        std::fs::write(&txt, &text).unwrap();
        let st = Command::new("text2pcap")
            .args(["-q", "-4", "127.0.0.1,127.0.0.2", "-T", "40000,179"])
            .arg(&txt)
            .arg(&pcap)
            .status()
            .unwrap();
        assert!(st.success(), "text2pcap failed");
        let theirs = tshark_meanings(&pcap, four);
        assert_eq!(
            theirs.len(),
            fixtures.len(),
            "tshark saw {} BGP frames for {} fixtures",
            theirs.len(),
            fixtures.len()
        );
        for (f, t) in fixtures.iter().zip(&theirs) {
            let m = Message::decode(&f.ctx(), &f.bytes()).unwrap();
            let ours = meaning_of(&m, four);
            for (field, want) in t {
                let got = &ours[field];
                if got != want {
                    failures.push(format!(
                        "{}: {field}: tshark {want:?}, bgpd {got:?}",
                        f.file
                    ));
                }
            }
            checked += 1;
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(checked > 150, "only {checked} fixtures checked");
    assert!(
        failures.is_empty(),
        "{} differences between bgpd and tshark:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
