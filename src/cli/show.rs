//! `bgpd show ...`, `bgpd health` and `bgpd track`: clients of the control socket that
//! print human tables, or JSON with --json.

use std::path::Path;

use crate::control::{self, Health, NeighborRow, Request};

/// Draws a table like calicoctl's: +---+ borders, left-aligned cells.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let sep: String = widths
        .iter()
        .map(|w| format!("+{}", "-".repeat(w + 2)))
        .collect::<String>()
        + "+\n";
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("| {c:<w$} "))
            .collect::<String>()
            + "|\n"
    };
    let mut out = sep.clone();
    out += &line(headers.iter().map(|s| s.to_string()).collect());
    out += &sep;
    for r in rows {
        out += &line(r.clone());
    }
    out += &sep;
    out
}

pub fn neighbors_table(rows: &[NeighborRow]) -> String {
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.address.clone(),
                r.kind.clone(),
                r.state.clone(),
                r.since.clone(),
                r.info.clone(),
                r.received.to_string(),
                r.accepted.to_string(),
                r.installed.to_string(),
                r.sent.to_string(),
            ]
        })
        .collect();
    table(
        &[
            "PEER ADDRESS",
            "PEER TYPE",
            "STATE",
            "SINCE",
            "INFO",
            "RECEIVED",
            "ACCEPTED",
            "INSTALLED",
            "SENT",
        ],
        &body,
    )
}

/// Runs one client request and prints its answer. Returns the exit code.
pub fn run(socket: &Path, request: Request, json: bool) -> Result<i32, String> {
    let resp = control::call(socket, &request)?;
    if !resp.ok {
        return Err(resp
            .error
            .unwrap_or_else(|| "bgpd refused the request".into()));
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&resp.data).unwrap_or_default()
        );
        return Ok(0);
    }
    match request {
        Request::Neighbors => {
            let rows: Vec<NeighborRow> =
                serde_json::from_value(resp.data).map_err(|e| format!("bad answer: {e}"))?;
            println!("bgpd is running.\n\nBGP neighbors");
            print!("{}", neighbors_table(&rows));
        }
        Request::Health => {
            let h: Health =
                serde_json::from_value(resp.data).map_err(|e| format!("bad answer: {e}"))?;
            println!(
                "bgpd is running: {} of {} sessions established, {} paths{}",
                h.established,
                h.peers,
                h.paths,
                if h.fib_synced {
                    ""
                } else {
                    ", kernel not synced yet"
                }
            );
            // Healthy once something is up, or when there are no peers yet.
            return Ok(if h.peers == 0 || h.established > 0 {
                0
            } else {
                1
            });
        }
        Request::Routes { prefix: None } => print!("{}", routes_table(&resp.data)),
        Request::Routes { prefix: Some(_) } => print!("{}", prefix_detail(&resp.data)),
        Request::Route { address } => {
            let route = &resp.data["route"];
            println!(
                "{address} is carried by {}",
                route["prefix"].as_str().unwrap_or("?")
            );
            print!("{}", prefix_detail(route));
        }
        Request::Fib => print!("{}", fib_summary(&resp.data)),
        Request::Advertised { .. } | Request::Received { .. } => {
            print!("{}", advertised_table(&resp.data))
        }
        Request::Reload => println!("{}", resp.data.as_str().unwrap_or("reloaded")),
        Request::Stop { .. } => {
            let s: control::Stopped =
                serde_json::from_value(resp.data).map_err(|e| format!("bad answer: {e}"))?;
            println!("bgpd stopped: {}", s.line());
        }
        _ => println!(
            "{}",
            serde_json::to_string_pretty(&resp.data).unwrap_or_default()
        ),
    }
    Ok(0)
}

fn fib_summary(d: &serde_json::Value) -> String {
    let n = |k: &str| d[k].as_u64().unwrap_or(0);
    let mut out = format!(
        "kernel table {} protocol {} metric {}{}\n\
         desired {}, installed {}, pending {}, failed {}, conflicts {}, stale {}\n",
        d["table"],
        d["protocol"],
        d["metric"],
        if d["install"].as_bool() == Some(false) {
            " (install off)"
        } else {
            ""
        },
        n("desired"),
        n("installed"),
        n("pending"),
        n("failed"),
        n("conflicts"),
        n("stale")
    );
    if d["nexthop_objects"].as_bool() == Some(true) {
        out += &format!(
            "nexthop objects: {} next hops in {} groups; {} group replaces moved {} routes\n",
            n("objects_hops"),
            n("objects_groups"),
            d["ops"]["groups_moved"].as_u64().unwrap_or(0),
            d["ops"]["routes_spared"].as_u64().unwrap_or(0)
        );
    } else if d["install"].as_bool() != Some(false) {
        out += "nexthop objects: off (plain routes)\n";
    }
    let rows: Vec<Vec<String>> = items(&d["problems"])
        .iter()
        .map(|p| {
            let state = p["state"].as_str().unwrap_or("?").to_string();
            let detail = match state.as_str() {
                "failed" => p["error"].as_str().unwrap_or("").to_string(),
                "foreign-conflict" => format!("protocol {} holds it", p["protocol"]),
                _ => String::new(),
            };
            vec![
                p["prefix"].as_str().unwrap_or("?").to_string(),
                strs(&p["desired"]).join(" "),
                state,
                detail,
            ]
        })
        .collect();
    if !rows.is_empty() {
        out += &table(&["PREFIX", "WANTED", "STATE", "DETAIL"], &rows);
    }
    if let Some(k) = d["problems_omitted"].as_u64().filter(|k| *k > 0) {
        out += &format!("... and {k} more not listed\n");
    }
    let hops = items(&d["nexthops"]);
    if !hops.is_empty() {
        let down = hops.iter().filter(|h| h["up"] == false).count();
        out += &format!(
            "next hops: {} in use, {down} down (probed with ARP/ND)\n",
            hops.len()
        );
        let rows: Vec<Vec<String>> = hops
            .iter()
            .map(|h| {
                vec![
                    h["gateway"].as_str().unwrap_or("?").to_string(),
                    h["dev"].as_str().unwrap_or("?").to_string(),
                    if h["up"] == false { "down" } else { "up" }.to_string(),
                    h["neighbour"].as_str().unwrap_or("?").to_string(),
                    h["reason"].as_str().unwrap_or("").to_string(),
                ]
            })
            .collect();
        out += &table(&["NEXT HOP", "DEV", "STATE", "NEIGHBOUR", "WHY"], &rows);
    }
    out
}

/// A JSON array's elements; none for anything else.
fn items(v: &serde_json::Value) -> &[serde_json::Value] {
    v.as_array().map(|a| a.as_slice()).unwrap_or_default()
}

fn strs(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn routes_table(data: &serde_json::Value) -> String {
    let rows: Vec<Vec<String>> = items(data)
        .iter()
        .map(|r| {
            let down = strs(&r["down"]);
            let nh: Vec<String> = strs(&r["next_hops"])
                .into_iter()
                .map(|n| {
                    if down.contains(&n) {
                        format!("{n} (down: no ARP/ND answer)")
                    } else {
                        n
                    }
                })
                .collect();
            let mut status = Vec::new();
            if r["stale"].as_bool() == Some(true) {
                status.push("stale".to_string());
            }
            if let Some(n) = r["rejected"].as_u64().filter(|n| *n > 0) {
                status.push(format!(
                    "{n} rejected ({})",
                    r["reject_reason"].as_str().unwrap_or("?")
                ));
            }
            vec![
                r["prefix"].as_str().unwrap_or("?").to_string(),
                if nh.is_empty() {
                    "-".into()
                } else {
                    nh.join(" ")
                },
                r["paths"].to_string(),
                r["reason"].as_str().unwrap_or("-").to_string(),
                status.join(", "),
            ]
        })
        .collect();
    table(
        &["PREFIX", "NEXT HOPS", "PATHS", "BEST BY", "STATUS"],
        &rows,
    )
}

fn prefix_detail(v: &serde_json::Value) -> String {
    let nh = strs(&v["next_hops"]);
    let mut out = if nh.is_empty() {
        format!("{}: not installed\n", v["prefix"].as_str().unwrap_or("?"))
    } else {
        format!(
            "{}: installed via {}{}\n",
            v["prefix"].as_str().unwrap_or("?"),
            nh.join(", "),
            if nh.len() > 1 {
                format!(" (ECMP {})", nh.len())
            } else {
                String::new()
            }
        )
    };
    for p in items(&v["paths"]) {
        let mut attrs = vec![
            format!("via {}", p["next_hop"].as_str().unwrap_or("?")),
            format!("local-pref {}", p["local_pref"]),
            format!("as-path {}", p["as_path"].as_str().unwrap_or("?")),
        ];
        if let Some(o) = p["originator_id"].as_str() {
            attrs.push(format!("originator {o}"));
        }
        let cl = strs(&p["cluster_list"]);
        if !cl.is_empty() {
            attrs.push(format!("cluster-list {}", cl.join(" ")));
        }
        // The well-known names of RFC 9494's two (the JSON keeps numbers).
        let comms: Vec<String> = strs(&p["communities"])
            .into_iter()
            .map(|c| match c.as_str() {
                "65535:6" => "llgr-stale".to_string(),
                "65535:7" => "no-llgr".to_string(),
                _ => c,
            })
            .collect();
        if !comms.is_empty() {
            attrs.push(format!("communities {}", comms.join(" ")));
        }
        let llgr = comms.iter().any(|c| c == "llgr-stale");
        out += &format!(
            "  {:<10} from {} path-id {}{}: {} [{}]\n",
            p["state"].as_str().unwrap_or("?"),
            p["peer"].as_str().unwrap_or("?"),
            p["path_id"],
            match (p["stale"].as_bool() == Some(true), llgr) {
                (_, true) => " (long-lived stale)",
                (true, false) => " (stale)",
                _ => "",
            },
            p["why"].as_str().unwrap_or(""),
            attrs.join(", ")
        );
    }
    out
}

fn advertised_table(data: &serde_json::Value) -> String {
    let rows: Vec<Vec<String>> = items(data)
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            let mut extra = Vec::new();
            if let Some(why) = r["rejected"].as_str() {
                extra.push(format!("rejected: {why}"));
            }
            if let Some(o) = r["originator_id"].as_str() {
                extra.push(format!("originator {o}"));
            }
            let cl = strs(&r["cluster_list"]);
            if !cl.is_empty() {
                extra.push(format!("cluster list {}", cl.join(" ")));
            }
            let c = strs(&r["communities"]);
            if !c.is_empty() {
                extra.push(format!("communities {}", c.join(" ")));
            }
            vec![
                s("prefix"),
                s("next_hop"),
                s("as_path"),
                r["local_pref"].to_string(),
                r["med"].as_u64().map(|m| m.to_string()).unwrap_or_default(),
                extra.join(", "),
            ]
        })
        .collect();
    let mut out = table(
        &["PREFIX", "NEXT HOP", "AS PATH", "LOCAL PREF", "MED", "ALSO"],
        &rows,
    );
    out += &format!("{} prefixes\n", rows.len());
    out
}

/// What `bgpd track` needs of a core before it may hold the gateway
/// addresses (keepalived's `track_script`, docs/redundancy.md).
#[derive(Clone, Copy, Debug)]
pub struct TrackNeeds {
    /// Sessions that must be Established (at least 1).
    pub min_established: usize,
}

/// Whether a core is fit to forward: `Ok(line)` when it is, `Err(line)`
/// with the reason when it is not. It is fit when enough sessions are
/// up, the initial sync into the kernel is over (a core that has just
/// started holds no routes yet), the kernel task runs and the kernel
/// refused none of the routes.
pub fn track_verdict(h: &Health, needs: TrackNeeds) -> Result<String, String> {
    let need = needs.min_established.max(1);
    let sessions = format!("{} of {} sessions established", h.established, h.peers);
    if h.established < need {
        return Err(format!(
            "{sessions} (need {need}): this core has no routes to forward with"
        ));
    }
    if !h.fib_running {
        return Err(format!(
            "{sessions}, but the kernel task has stopped (see the log)"
        ));
    }
    if !h.fib_synced {
        return Err(format!(
            "{sessions}, but the initial sync into the kernel is not over yet"
        ));
    }
    if h.fib_failed > 0 {
        return Err(format!(
            "{sessions}, but the kernel refused {} routes (bgpd show fib)",
            h.fib_failed
        ));
    }
    Ok(format!("{sessions}, {} paths, the kernel in sync", h.paths))
}

/// `bgpd track`: one line, exit 0 when the core is fit to forward and 1
/// when it is not or bgpd does not answer within `timeout`.
pub fn track(socket: &Path, needs: TrackNeeds, timeout: std::time::Duration) -> i32 {
    let verdict = control::call_within(socket, &Request::Health, timeout).and_then(|resp| {
        if !resp.ok {
            return Err(resp
                .error
                .unwrap_or_else(|| "bgpd refused the request".into()));
        }
        let h: Health =
            serde_json::from_value(resp.data).map_err(|e| format!("bad answer: {e}"))?;
        track_verdict(&h, needs)
    });
    match verdict {
        Ok(line) => {
            println!("bgpd track: ok: {line}");
            0
        }
        Err(line) => {
            println!("bgpd track: not fit to forward: {line}");
            1
        }
    }
}

#[cfg(test)]
mod track_tests {
    use super::*;

    fn fit() -> Health {
        Health {
            peers: 3,
            established: 3,
            fib_synced: true,
            paths: 10,
            fib_failed: 0,
            fib_running: true,
        }
    }
    const ONE: TrackNeeds = TrackNeeds { min_established: 1 };

    #[test]
    fn a_synced_core_with_sessions_is_fit() {
        let line = track_verdict(&fit(), ONE).unwrap();
        assert_eq!(
            line,
            "3 of 3 sessions established, 10 paths, the kernel in sync"
        );
        let mut one_up = fit();
        one_up.established = 1;
        assert!(track_verdict(&one_up, ONE).is_ok());
        assert!(track_verdict(&one_up, TrackNeeds { min_established: 2 }).is_err());
    }

    #[test]
    fn each_reason_makes_a_core_unfit() {
        type Change = fn(&mut Health);
        let cases: [(Change, &str); 5] = [
            (
                |h| h.established = 0,
                "0 of 3 sessions established (need 1)",
            ),
            // No peers at all is not healthy here, unlike `bgpd health`.
            (
                |h| (h.peers, h.established) = (0, 0),
                "0 of 0 sessions established (need 1)",
            ),
            (
                |h| h.fib_synced = false,
                "initial sync into the kernel is not over",
            ),
            (|h| h.fib_failed = 2, "the kernel refused 2 routes"),
            (|h| h.fib_running = false, "the kernel task has stopped"),
        ];
        for (change, why) in cases {
            let mut h = fit();
            change(&mut h);
            let err = track_verdict(&h, ONE).unwrap_err();
            assert!(err.contains(why), "{err} does not say {why}");
        }
        // min_established 0 still needs one session.
        let mut h = fit();
        h.established = 0;
        assert!(track_verdict(&h, TrackNeeds { min_established: 0 }).is_err());
    }
}
