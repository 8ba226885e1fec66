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
        ],
        &body,
    )
}

/// Runs one client request and prints its answer. Returns the exit code.
pub fn run(socket: &Path, request: Request, json: bool) -> Result<i32, String> {
    let resp = control::call(socket, &request)?;
    if !resp.ok {
        return Err(resp.error.unwrap_or_else(|| "bgpd refused the request".into()));
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
                "bgpd is running: {} of {} sessions established{}",
                h.established,
                h.peers,
                if h.fib_synced { "" } else { ", kernel not synced yet" }
            );
            // Healthy once something is up, or when there are no peers yet.
            return Ok(if h.peers == 0 || h.established > 0 { 0 } else { 1 });
        }
        _ => println!(
            "{}",
            serde_json::to_string_pretty(&resp.data).unwrap_or_default()
        ),
    }
    Ok(0)
}
