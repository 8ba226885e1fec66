//! Seeded chaos: several peers announce, withdraw, disconnect and come
//! back, and bgpd restarts along the way: on SIGTERM it leaves the kernel
//! exactly as it was (the next start adopts the routes, and removes what
//! the peers do not send again within `--graceful-restart-keep 2`), on
//! SIGINT it empties it. At the end the kernel holds exactly the expected
//! routes: nothing stale, nothing missing.
//!
//! Reproducible: `CHAOS_SEED=N` picks the run, `CHAOS_STEPS=N` its length
//! (CI runs a short one; a long campaign is
//! `CHAOS_STEPS=2000 CHAOS_SEED=7 cargo test --test chaos -- --nocapture`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use common::netns::{CORE, Lab, bgpd_addr};
use common::raw::*;

const PEERS: [&str; 3] = ["192.168.83.2", "192.168.83.3", "192.168.83.4"];

/// xorshift64*: small and reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Peer {
    addr: &'static str,
    conn: Option<Raw>,
    /// What this peer has announced on its current session.
    table: BTreeSet<String>,
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pool(i: usize) -> String {
    format!("10.77.{i}.0/24")
}

fn expected(peers: &[Peer]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in peers.iter().filter(|p| p.conn.is_some()) {
        for pfx in &p.table {
            out.entry(pfx.clone())
                .or_default()
                .insert(p.addr.to_string());
        }
    }
    out
}

fn start_bgpd(lab: &mut Lab, core: &str, run: usize) {
    let mut args = vec![
        "--asn",
        "64512",
        "--router-id",
        CORE,
        "--hold-time",
        "30",
        "--graceful-restart-keep",
        "2",
    ];
    let peers: Vec<String> = PEERS.iter().map(|p| format!("{p},passive")).collect();
    for p in &peers {
        args.push("--peer");
        args.push(p);
    }
    lab.bgpd(core, &format!("bgpd{run}"), &args);
    lab.wait_listen(core);
}

fn connect_peer(lan: &str, p: &mut Peer) -> bool {
    let to: SocketAddr = bgpd_addr();
    for _ in 0..10 {
        let opts = ConnectOpts {
            source: Some(format!("{}:0", p.addr).parse().unwrap()),
            ..ConnectOpts::default()
        };
        if let Ok(s) = connect(lan, to, opts) {
            let mut r = Raw::new(s);
            let id: Ipv4Addr = p.addr.parse().unwrap();
            if r.handshake(&open(64512, 30, id)).is_ok() {
                p.conn = Some(r);
                p.table.clear();
                return true;
            }
        }
        // bgpd may not have seen the previous connection close yet.
        std::thread::sleep(Duration::from_millis(300));
    }
    false
}

/// Several seeds (`CHAOS_SEED=N` runs only N), and each run ends with an
/// ECMP merge: every peer (re)connects and announces one common prefix
/// besides what the chaos left, so the final comparison always covers a
/// route with several next hops.
#[test]
fn seeded_chaos_ends_with_the_exact_kernel_table() {
    let seeds: Vec<u64> = match std::env::var("CHAOS_SEED") {
        Ok(s) => vec![s.parse().expect("CHAOS_SEED")],
        Err(_) => vec![1, 2, 3],
    };
    let steps = env("CHAOS_STEPS", 60) as usize;
    let mut merged = 0;
    for seed in seeds {
        let Some(want) = chaos(seed, steps) else {
            return;
        };
        merged += want.values().filter(|hops| hops.len() > 1).count();
    }
    assert!(merged > 0, "no run ended with an ECMP merge to compare");
}

/// One seeded run; returns the final table it compared (None: skipped).
fn chaos(seed: u64, steps: usize) -> Option<BTreeMap<String, BTreeSet<String>>> {
    let mut lab = Lab::new("chaos")?;
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let core = lab.ns("core");
    let lan = lab.ns("lan");
    let addrs: Vec<String> = PEERS.iter().map(|a| format!("{a}/24")).collect();
    lab.link(
        &core,
        "eth0",
        &format!("{CORE}/24"),
        &lan,
        "eth0",
        &addrs.join(","),
    );
    let mut run = 0;
    start_bgpd(&mut lab, &core, run);
    let mut peers: Vec<Peer> = PEERS
        .iter()
        .map(|a| Peer {
            addr: a,
            conn: None,
            table: BTreeSet::new(),
        })
        .collect();
    let mut log = Vec::new();
    for step in 0..steps {
        let i = rng.below(peers.len());
        let action = rng.below(100);
        let p = &mut peers[i];
        let what = match (p.conn.is_some(), action) {
            (false, _) => {
                assert!(
                    connect_peer(&lan, p),
                    "step {step}: {} cannot connect",
                    p.addr
                );
                format!("{} connects", p.addr)
            }
            (true, 0..=49) => {
                let n = 1 + rng.below(5);
                let pfx: Vec<String> = (0..n).map(|_| pool(rng.below(20))).collect();
                let refs: Vec<&str> = pfx.iter().map(String::as_str).collect();
                let nh: Ipv4Addr = p.addr.parse().unwrap();
                let _ = p.conn.as_mut().unwrap().send(&announce(nh, &refs));
                p.table.extend(pfx.iter().cloned());
                format!("{} announces {pfx:?}", p.addr)
            }
            (true, 50..=79) if !p.table.is_empty() => {
                let all: Vec<String> = p.table.iter().cloned().collect();
                let gone = all[rng.below(all.len())].clone();
                let _ = p.conn.as_mut().unwrap().send(&withdraw(&[&gone]));
                p.table.remove(&gone);
                format!("{} withdraws {gone}", p.addr)
            }
            (true, 80..=93) => {
                p.conn = None;
                p.table.clear();
                format!("{} disconnects", p.addr)
            }
            (true, 94..=99) => {
                let name = format!("bgpd{run}");
                let term = rng.below(2) == 0;
                let before = if term {
                    // Settled first (a restart's deferral may still hold
                    // routes of the run before), so "unchanged" means
                    // what the peers announced.
                    let want = expected(&peers);
                    let mut settled = false;
                    for _ in 0..100 {
                        settled = lab.kernel_table(&core) == want;
                        if settled {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    assert!(settled, "step {step}: kernel not settled before the stop");
                    want
                } else {
                    BTreeMap::new()
                };
                let st = lab
                    .stop_with(&name, if term { "TERM" } else { "INT" })
                    .expect("bgpd ran");
                assert!(st.success(), "step {step}: bgpd exit {st}");
                assert_eq!(
                    lab.kernel_table(&core),
                    before,
                    "step {step}: after SIG{}, the kernel should hold {}",
                    if term { "TERM" } else { "INT" },
                    if term {
                        "what it held"
                    } else {
                        "nothing of bgpd's"
                    }
                );
                for p in &mut peers {
                    p.conn = None;
                    p.table.clear();
                }
                run += 1;
                start_bgpd(&mut lab, &core, run);
                format!("bgpd restarts (SIG{})", if term { "TERM" } else { "INT" })
            }
            _ => "nothing".to_string(),
        };
        log.push(format!("{step}: {what}"));
        // Keep the sessions alive.
        for p in peers.iter_mut() {
            if let Some(c) = p.conn.as_mut() {
                let _ = c.send(&keepalive());
            }
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    // The finale: an ECMP merge. Every peer is connected and announces
    // 10.77.99.0/24 with its own next hop: bgpd must install all three.
    for p in peers.iter_mut() {
        if p.conn.is_none() {
            assert!(connect_peer(&lan, p), "finale: {} cannot connect", p.addr);
        }
        let nh: Ipv4Addr = p.addr.parse().unwrap();
        let common = "10.77.99.0/24";
        p.conn
            .as_mut()
            .unwrap()
            .send(&announce(nh, &[common]))
            .unwrap();
        p.table.insert(common.to_string());
    }
    log.push("finale: every peer announces 10.77.99.0/24".into());
    let want = expected(&peers);
    assert_eq!(want["10.77.99.0/24"].len(), PEERS.len());
    let mut got = BTreeMap::new();
    let ok = (0..100).any(|_| {
        got = lab.kernel_table(&core);
        if got == want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
        false
    });
    assert!(
        ok,
        "seed {seed}, {steps} steps: kernel differs\nwant {want:?}\ngot  {got:?}\nlast steps:\n{}",
        log[log.len().saturating_sub(15)..].join("\n")
    );
    println!(
        "seed {seed}: {steps} steps, {} bgpd restarts, {} routes at the end ({} ECMP)",
        run,
        want.len(),
        want.values().filter(|h| h.len() > 1).count()
    );
    Some(want)
}
