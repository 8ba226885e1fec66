//! `bgpd decode` on MRT files checked against bgpdump, an independent
//! reader: the same routes (announced, withdrawn, RIB entries) with the
//! same peer, AS path, origin, next hop, LOCAL_PREF and MED.
#![allow(dead_code)]

use std::process::Command;

use serde_json::Value;

/// One route line as bgpdump -m prints it, reduced to what both tools
/// report: `A|peer|as|prefix|path|origin|next hop|local pref|med`
/// (`B` for a TABLE_DUMP_V2 entry, `W|peer|as|prefix` for a withdrawal).
fn bgpdump_lines(file: &str) -> Vec<String> {
    let o = Command::new("bgpdump")
        .args(["-m", file])
        .output()
        .expect("bgpdump");
    assert!(o.status.success(), "bgpdump -m {file} failed: {o:?}");
    let mut out: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            match f.get(2).copied()? {
                "A" | "B" if f.len() > 10 => Some(format!(
                    "{}|{}|{}|{}|{}|{}|{}|{}|{}",
                    f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10]
                )),
                "W" => Some(format!("W|{}|{}|{}", f[3], f[4], f[5])),
                _ => None,
            }
        })
        .collect();
    out.sort();
    out
}

/// bgpdump prints the AS path; a broken AS_PATH (bgpd records an error
/// for attribute type 2) is "! Error !" there.
fn as_path(attrs: &[Value], errors: &[Value]) -> String {
    if errors.iter().any(|e| e["type_code"] == 2) {
        return "! Error !".into();
    }
    let Some(a) = attrs.iter().find(|a| a["attribute"] == "AS_PATH") else {
        return String::new();
    };
    let segs: Vec<String> = a["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let asns: Vec<String> = s["asns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.to_string())
                .collect();
            if s["type"] == "set" {
                format!("{{{}}}", asns.join(","))
            } else {
                asns.join(" ")
            }
        })
        .collect();
    segs.join(" ")
}

/// A NEXT_HOP bgpd refused (0.0.0.0 on a locally originated RIB entry,
/// say) is in the error's data: flags, type, length, the address.
fn refused_next_hop(errors: &[Value]) -> Option<String> {
    let e = errors.iter().find(|e| e["type_code"] == 3)?;
    let hex = e["notification"]["data"].as_str()?;
    let b: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let a: [u8; 4] = b.get(b.len().checked_sub(4)?..)?.try_into().ok()?;
    Some(std::net::Ipv4Addr::from(a).to_string())
}

fn attr<'a>(attrs: &'a [Value], name: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|a| a["attribute"] == name)
        .map(|a| &a["value"])
}

/// The route lines of one set of attributes and its prefixes.
fn routes(
    kind: &str,
    peer: &str,
    asn: &Value,
    attrs: &[Value],
    errors: &[Value],
    prefixes: &[String],
) -> Vec<String> {
    let origin = match attr(attrs, "ORIGIN").and_then(Value::as_str) {
        Some("igp") => "IGP",
        Some("egp") => "EGP",
        Some(_) => "INCOMPLETE",
        None => "",
    };
    let num = |n: &str| attr(attrs, n).map(|v| v.to_string()).unwrap_or("0".into());
    let path = as_path(attrs, errors);
    prefixes
        .iter()
        .map(|p| {
            let nh = match attr(attrs, "MP_REACH_NLRI") {
                Some(mp) if p.contains(':') || attr(attrs, "NEXT_HOP").is_none() => {
                    let nh = &mp["next_hop"];
                    nh.get("global")
                        .unwrap_or(nh)
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                }
                _ => attr(attrs, "NEXT_HOP")
                    .and_then(Value::as_str)
                    .map(String::from)
                    .or_else(|| refused_next_hop(errors))
                    .unwrap_or_default(),
            };
            format!(
                "{kind}|{peer}|{asn}|{p}|{path}|{origin}|{nh}|{}|{}",
                num("LOCAL_PREF"),
                num("MULTI_EXIT_DISC")
            )
        })
        .collect()
}

fn prefixes(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|p| p["prefix"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The same lines from `bgpd decode --json`.
fn bgpd_lines(bgpd: &str, file: &str) -> Vec<String> {
    let o = Command::new(bgpd)
        .args(["decode", "--json", file])
        .output()
        .expect("bgpd decode");
    assert!(
        o.status.success(),
        "bgpd decode --json {file}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut peers: Vec<Value> = Vec::new();
    let mut out = Vec::new();
    for line in String::from_utf8_lossy(&o.stdout).lines() {
        let j: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        match j["record"].as_str().unwrap_or("") {
            "message" if j["message"]["type"] == "update" => {
                let m = &j["message"];
                let peer = j["peer"].as_str().unwrap();
                let attrs = m["attributes"].as_array().unwrap();
                let mut gone = prefixes(&m["withdrawn"]);
                if let Some(un) = attr(attrs, "MP_UNREACH_NLRI") {
                    gone.extend(prefixes(&un["nlri"]));
                }
                for p in gone {
                    out.push(format!("W|{peer}|{}|{p}", j["peer_as"]));
                }
                let mut new = Vec::new();
                if let Some(mp) = attr(attrs, "MP_REACH_NLRI") {
                    new.extend(prefixes(&mp["nlri"]));
                }
                new.extend(prefixes(&m["nlri"]));
                let errors = m["errors"].as_array().cloned().unwrap_or_default();
                out.extend(routes("A", peer, &j["peer_as"], attrs, &errors, &new));
            }
            "peer-index-table" => peers = j["peers"].as_array().unwrap().clone(),
            "rib" => {
                let p = j["prefix"].as_str().unwrap().to_string();
                for e in j["entries"].as_array().unwrap() {
                    let peer = &peers[e["peer_index"].as_u64().unwrap() as usize];
                    out.extend(routes(
                        "B",
                        peer["address"].as_str().unwrap(),
                        &peer["asn"],
                        e["attributes"].as_array().unwrap(),
                        &e["errors"].as_array().cloned().unwrap_or_default(),
                        std::slice::from_ref(&p),
                    ));
                }
            }
            _ => {}
        }
    }
    out.sort();
    out
}

/// `bgpd decode --json FILE` and `bgpdump -m FILE` report the same routes;
/// returns how many (announced, withdrawn and RIB entries).
pub fn matches_bgpdump(bgpd: &str, file: &str) -> usize {
    let ours = bgpd_lines(bgpd, file);
    let theirs = bgpdump_lines(file);
    assert_eq!(
        ours,
        theirs,
        "bgpd decode and bgpdump disagree on {file}\nbgpd:\n{}\nbgpdump:\n{}",
        ours.join("\n"),
        theirs.join("\n")
    );
    ours.len()
}
