//! Kernel install throughput: N IPv4 /28 routes (default 1,000,000) through
//! the FIB task into a real kernel table, inside a network namespace; then
//! a check (dump + compare), a graceful restart (the next FIB adopts the
//! routes and the RIB re-learns them) and the withdrawal of every route.
//! Needs root; prints a skip note otherwise.
//!
//!     cargo bench --bench fib_install            # 1,000,000 routes
//!     FIB_BENCH_ROUTES=100000 cargo bench --bench fib_install
//!
//! It prints the time of each phase, the live heap (a counting allocator)
//! at its end and its peak, the process's peak RSS (VmHWM, reset before
//! each phase through /proc/self/clear_refs) and its user and system CPU
//! time (the kernel's share of an install is system time).
//!
//! benches/fib-vs-bird.sh runs this beside BIRD 2 doing the same.
//! The outer run creates namespaces `fibbench<pid>` and `fibbench<pid>p`
//! joined by a veth pair, re-runs itself inside with `ip netns exec`, and
//! deletes them again (also when the inner run fails).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::IpAddr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bgpd::fib::{self, FibConfig};
use bgpd::route::NextHop;
use ipnet::IpNet;

const INNER: &str = "BGPD_FIB_BENCH_NS";

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        grew(l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        grew(new);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// User and system CPU time of the process so far, in seconds.
fn cpu() -> (f64, f64) {
    // SAFETY: getrusage fills the struct it is given.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (s(u.ru_utime), s(u.ru_stime))
}

/// Memory at the end of a phase, and its peaks; CPU time in it.
struct Mem {
    live: f64,
    peak: f64,
    hwm: f64,
    user: f64,
    sys: f64,
}

static CPU0: std::sync::Mutex<(f64, f64)> = std::sync::Mutex::new((0.0, 0.0));

impl Mem {
    /// Starts a phase: the heap peak and VmHWM restart from now.
    fn start() {
        PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
        // "5" resets the peak RSS (proc(5), /proc/pid/clear_refs).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        *CPU0.lock().unwrap() = cpu();
    }

    fn now() -> Mem {
        let mib = |b: usize| b as f64 / 1048576.0;
        let (u0, s0) = *CPU0.lock().unwrap();
        let (u, s) = cpu();
        Mem {
            live: mib(LIVE.load(Ordering::Relaxed)),
            peak: mib(PEAK.load(Ordering::Relaxed)),
            hwm: status_kib("VmHWM:") as f64 / 1024.0,
            user: u - u0,
            sys: s - s0,
        }
    }
}

impl std::fmt::Display for Mem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "heap {:>6.1} MiB, heap peak {:>6.1} MiB, peak RSS {:>6.1} MiB; cpu user {:.2} s, sys {:.2} s",
            self.live, self.peak, self.hwm, self.user, self.sys
        )
    }
}

/// The i-th /28 of 11.0.0.0/8 upwards (above the lab's 10.0.0.0/24).
fn prefix(i: u32) -> IpNet {
    IpNet::new(IpAddr::from((0x0b00_0000u32 + (i << 4)).to_be_bytes()), 28).unwrap()
}

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
            keep_on_shutdown: Some(Duration::from_secs(60)),
            ..FibConfig::default()
        };
        let (h, _ev, task) = fib::spawn(cfg.clone()).await.unwrap();
        h.initial_sync_done().await.unwrap();
        let gw = NextHop::new("10.0.0.2".parse().unwrap());
        // Generated on the fly, so the bench's own input does not count,
        // and sent 100 at a time, as the daemon sends one change set per
        // UPDATE (the load generator packs 100 prefixes into one).
        const PER_APPLY: u32 = 100;
        let chunks = || {
            (0..n)
                .step_by(PER_APPLY as usize)
                .map(move |s| s..(s + PER_APPLY).min(n))
        };
        let base = Mem::now();
        Mem::start();
        let t = Instant::now();
        for c in chunks() {
            h.apply(
                c.map(|i| fib::change(prefix(i), vec![gw]))
                    .collect::<Vec<_>>(),
            )
            .await
            .unwrap();
        }
        h.flush().await.unwrap();
        let install = t.elapsed();
        let st = h.status().await.unwrap();
        let install_mem = Mem::now();
        assert_eq!(
            st.installed,
            n as usize,
            "not all installed: {:?}",
            &st.problems[..st.problems.len().min(5)]
        );
        drop(st);
        Mem::start();
        let t = Instant::now();
        let r = h.reconcile().await.unwrap();
        let check = t.elapsed();
        let check_mem = Mem::now();
        assert_eq!((r.kernel_routes, r.repaired()), (n as usize, 0));
        drop(r);
        // A graceful restart: the routes stay, the next FIB adopts them
        // (stale), the RIB re-learns them all, nothing goes to the kernel.
        assert_eq!(h.shutdown().await.unwrap().kept, n as usize);
        task.await.unwrap();
        Mem::start();
        let t = Instant::now();
        let (h, _ev, task) = fib::spawn(cfg).await.unwrap();
        for c in chunks() {
            h.apply(
                c.map(|i| fib::change(prefix(i), vec![gw]))
                    .collect::<Vec<_>>(),
            )
            .await
            .unwrap();
        }
        h.initial_sync_done().await.unwrap();
        h.flush().await.unwrap();
        let restart = t.elapsed();
        let restart_mem = Mem::now();
        let st = h.status().await.unwrap();
        assert_eq!(
            (st.installed, st.stale, st.ops.replaced),
            (n as usize, 0, 0)
        );
        drop(st);
        Mem::start();
        let t = Instant::now();
        for c in chunks() {
            h.apply(
                c.map(|i| fib::change(prefix(i), vec![]))
                    .collect::<Vec<_>>(),
            )
            .await
            .unwrap();
        }
        h.flush().await.unwrap();
        let withdraw = t.elapsed();
        let withdraw_mem = Mem::now();
        assert_eq!(h.status().await.unwrap().installed, 0);
        assert_eq!(h.shutdown().await.unwrap().kept, 0);
        task.await.unwrap();
        let us = |d: Duration| d.as_secs_f64() * 1e6 / f64::from(n);
        println!("bgpd FIB: {n} /28 routes");
        println!("  before    {base}");
        println!(
            "  install   {:>8.3} s  ({:.2} us/route)  {install_mem}",
            install.as_secs_f64(),
            us(install)
        );
        println!(
            "  check     {:>8.3} s  (dump + compare)   {check_mem}",
            check.as_secs_f64()
        );
        println!(
            "  restart   {:>8.3} s  (adopt + re-learn) {restart_mem}",
            restart.as_secs_f64()
        );
        println!(
            "  withdraw  {:>8.3} s  ({:.2} us/route)  {withdraw_mem}",
            withdraw.as_secs_f64(),
            us(withdraw)
        );
    });
}
