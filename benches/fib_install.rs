//! Kernel install throughput: N IPv4 /28 routes (default 1,000,000) through
//! the FIB task into a real kernel table, inside a network namespace, then
//! withdrawn. Needs root; prints a skip note otherwise.
//!
//!     cargo bench --bench fib_install            # 1,000,000 routes
//!     FIB_BENCH_ROUTES=100000 cargo bench --bench fib_install
//!
//! benches/fib-vs-bird.sh runs this beside BIRD 2 doing the same.
//! The outer run creates namespaces `fibbench<pid>` and `fibbench<pid>p`
//! joined by a veth pair, re-runs itself inside with `ip netns exec`, and
//! deletes them again (also when the inner run fails).

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use bgpd::fib::{self, FibConfig};
use bgpd::route::NextHop;
use ipnet::IpNet;

const INNER: &str = "BGPD_FIB_BENCH_NS";

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().expect("ip");
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

fn main() {
    let n: u32 = std::env::var("FIB_BENCH_ROUTES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    if let Ok(ns) = std::env::var(INNER) {
        let id = Command::new("ip")
            .args(["netns", "identify", &std::process::id().to_string()])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&id.stdout).trim(),
            ns,
            "not in the bench namespace"
        );
        return inner(n);
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("fib_install: skipped (needs root for network namespaces)");
        return;
    }
    let ns = format!("fibbench{}", std::process::id());
    let peer = format!("{ns}p");
    let _guard = Namespaces(vec![ns.clone(), peer.clone()]);
    ip(&["netns", "add", &ns]);
    ip(&["netns", "add", &peer]);
    ip(&[
        "-n", &ns, "link", "add", "v0", "type", "veth", "peer", "name", "p0", "netns", &peer,
    ]);
    ip(&["-n", &ns, "addr", "add", "10.0.0.1/24", "dev", "v0"]);
    ip(&["-n", &peer, "addr", "add", "10.0.0.2/24", "dev", "p0"]);
    for (n, i) in [(&ns, "lo"), (&ns, "v0"), (&peer, "lo"), (&peer, "p0")] {
        ip(&["-n", n, "link", "set", i, "up"]);
    }
    let st = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(std::env::current_exe().unwrap())
        .env(INNER, &ns)
        .status()
        .unwrap();
    assert!(st.success(), "the inner run failed");
}

fn inner(n: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cfg = FibConfig {
            reconcile_interval: Duration::ZERO,
            ..FibConfig::default()
        };
        let (h, _ev, task) = fib::spawn(cfg).await.unwrap();
        h.initial_sync_done().await.unwrap();
        let gw = NextHop::new("10.0.0.2".parse().unwrap());
        // 10.0.0.0/8 has 1,048,576 /28s; start above the lab's 10.0.0.0/24.
        let prefixes: Vec<IpNet> = (0..n)
            .map(|i| {
                IpNet::new(IpAddr::from((0x0b00_0000u32 + (i << 4)).to_be_bytes()), 28).unwrap()
            })
            .collect();
        let t = Instant::now();
        for c in prefixes.chunks(10_000) {
            h.apply(c.iter().map(|p| fib::change(*p, vec![gw])).collect())
                .await
                .unwrap();
        }
        h.flush().await.unwrap();
        let install = t.elapsed();
        let st = h.status().await.unwrap();
        assert_eq!(
            st.installed,
            n as usize,
            "not all installed: {:?}",
            &st.problems[..st.problems.len().min(5)]
        );
        let t = Instant::now();
        let r = h.reconcile().await.unwrap();
        let check = t.elapsed();
        assert_eq!((r.kernel_routes, r.repaired()), (n as usize, 0));
        let t = Instant::now();
        for c in prefixes.chunks(10_000) {
            h.apply(c.iter().map(|p| fib::change(*p, vec![])).collect())
                .await
                .unwrap();
        }
        h.flush().await.unwrap();
        let withdraw = t.elapsed();
        assert_eq!(h.status().await.unwrap().installed, 0);
        h.shutdown().await.unwrap();
        task.await.unwrap();
        let us = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(n);
        println!("bgpd FIB: {n} /28 routes");
        println!(
            "  install   {:>8.3} s  ({:.2} us/route)",
            install.as_secs_f64(),
            us(install)
        );
        println!(
            "  check     {:>8.3} s  (dump + compare)",
            check.as_secs_f64()
        );
        println!(
            "  withdraw  {:>8.3} s  ({:.2} us/route)",
            withdraw.as_secs_f64(),
            us(withdraw)
        );
    });
}
