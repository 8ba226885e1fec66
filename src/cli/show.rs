//! `bgpd show ...` and `bgpd health`: clients of the control socket that
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
            let nh = strs(&r["next_hops"]);
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
        out += &format!(
            "  {:<10} from {} path-id {}{}: {} [{}]\n",
            p["state"].as_str().unwrap_or("?"),
            p["peer"].as_str().unwrap_or("?"),
            p["path_id"],
            if p["stale"].as_bool() == Some(true) {
                " (stale)"
            } else {
                ""
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
