//! The FIB against real kernel routing tables, inside network namespaces.
//!
//! Each test runs twice: the outer run (in the root namespace) creates a
//! lab (namespaces `fib` and `peer` joined by two veth pairs) and re-runs
//! this same test binary inside `fib` with `ip netns exec`; the inner run
//! (told by BGPD_FIB_NS) refuses to run unless `ip netns identify` confirms
//! it is in that namespace, then starts the FIB and checks the kernel with
//! `ip route`. Nothing touches the root namespace's routes or links.

mod common;

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use bgpd::fib::{self, FibConfig, FibEvent, FibHandle, PrefixState};
use bgpd::route::{NextHop, Resolver, RouteChange};
use common::netns::Lab;
use ipnet::IpNet;
use tokio::sync::mpsc;

const INNER: &str = "BGPD_FIB_NS";

/// In the outer run, builds the lab and runs `name` inside it; returns
/// false. In the inner run, returns true (the caller does the work).
fn inner_or_run(name: &str) -> bool {
    if let Ok(ns) = std::env::var(INNER) {
        let me = std::process::id().to_string();
        let id = Command::new("ip")
            .args(["netns", "identify", &me])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&id.stdout).trim(),
            ns,
            "not inside the test namespace: refusing to touch routes"
        );
        return true;
    }
    let Some(mut lab) = Lab::new(name) else {
        return false;
    };
    let ns = lab.ns("fib");
    let peer = lab.ns("peer");
    lab.link(
        &ns,
        "v0",
        "10.0.0.1/24,2001:db8:0::1/64",
        &peer,
        "p0",
        "10.0.0.2/24,2001:db8:0::2/64",
    );
    lab.link(
        &ns,
        "v1",
        "10.0.1.1/24,2001:db8:1::1/64",
        &peer,
        "p1",
        "10.0.1.2/24,2001:db8:1::2/64",
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &ns])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(INNER, &ns)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("--- inner run in {ns}:\n{text}");
    assert!(out.status.success(), "the inner run failed");
    assert!(text.contains("1 passed"), "the inner test did not run");
    false
}

fn rt() -> tokio::runtime::Runtime {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("bgpd=debug")
        .with_test_writer()
        .try_init();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn sh(cmd: &str) -> String {
    let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn ok(cmd: &str) {
    let o = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `ip route show` of our protocol, one family, as a trimmed string.
fn ours(family: &str, prefix: &str) -> String {
    sh(&format!("ip {family} route show proto 186 {prefix}"))
        .trim()
        .to_string()
}

fn ifindex(name: &str) -> u32 {
    std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn p(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn nh(s: &str) -> NextHop {
    NextHop::new(s.parse::<IpAddr>().unwrap())
}

fn ch(prefix: &str, nhs: &[NextHop]) -> RouteChange {
    let mut v = nhs.to_vec();
    v.sort();
    fib::change(p(prefix), v)
}

fn cfg() -> FibConfig {
    FibConfig {
        reconcile_interval: Duration::from_secs(3600),
        stale_timeout: Duration::from_secs(3600),
        ..FibConfig::default()
    }
}

async fn state(h: &FibHandle, prefix: &str) -> Option<PrefixState> {
    h.lookup(p(prefix)).await.unwrap().map(|s| s.state)
}

/// Waits for a reachability snapshot in which `addr` resolves (or not).
async fn reachable(ev: &mut mpsc::Receiver<FibEvent>, addr: &str, want: bool) {
    let addr: IpAddr = addr.parse().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ev.recv()).await {
            Ok(Some(FibEvent::Reachability(r))) if r.resolves(addr) == want => return,
            Ok(Some(_)) => {}
            other => panic!("no snapshot where {addr} resolves: {want}; {other:?}"),
        }
    }
}

async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn fib_install_ecmp_ipv6_replace_withdraw() {
    if !inner_or_run("fib_install_ecmp_ipv6_replace_withdraw") {
        return;
    }
    rt().block_on(async {
        let (h, _ev, task) = fib::spawn(cfg()).await.unwrap();
        let mut ll = nh("fe80::2");
        ll.ifindex = Some(ifindex("v0"));
        h.apply(vec![
            ch("10.10.0.0/28", &[nh("10.0.0.2")]),
            ch("10.10.0.16/28", &[nh("10.0.0.2"), nh("10.0.1.2")]),
            ch("2001:db8:10::/48", &[nh("2001:db8::2")]),
            ch("2001:db8:11::/48", &[ll]),
            ch("2001:db8:12::/48", &[nh("2001:db8::2"), nh("2001:db8:1::2")]),
        ])
        .await
        .unwrap();
        h.flush().await.unwrap();
        assert_eq!(ours("-4", "10.10.0.0/28"), "10.10.0.0/28 via 10.0.0.2 dev v0 metric 20");
        let ecmp = ours("-4", "10.10.0.16/28");
        assert!(ecmp.contains("nexthop via 10.0.0.2 dev v0") && ecmp.contains("nexthop via 10.0.1.2 dev v1"), "{ecmp}");
        assert_eq!(ours("-6", "2001:db8:10::/48"), "2001:db8:10::/48 via 2001:db8::2 dev v0 metric 20 pref medium");
        assert_eq!(ours("-6", "2001:db8:11::/48"), "2001:db8:11::/48 via fe80::2 dev v0 metric 20 pref medium");
        let ecmp6 = ours("-6", "2001:db8:12::/48");
        assert!(ecmp6.contains("nexthop via 2001:db8::2 dev v0") && ecmp6.contains("nexthop via 2001:db8:1::2 dev v1"), "{ecmp6}");
        assert!(matches!(state(&h, "10.10.0.16/28").await, Some(PrefixState::Installed { hops }) if hops.len() == 2));

        // Coalescing: several changes for one prefix, the last wins.
        h.apply(vec![ch("10.10.0.0/28", &[nh("10.0.0.2"), nh("10.0.1.2")])]).await.unwrap();
        h.apply(vec![ch("10.10.0.0/28", &[nh("10.0.1.2")])]).await.unwrap();
        // Replace, ECMP to single and single to ECMP.
        h.apply(vec![
            ch("10.10.0.16/28", &[nh("10.0.0.2")]),
            ch("2001:db8:10::/48", &[nh("2001:db8::2"), nh("2001:db8:1::2")]),
        ])
        .await
        .unwrap();
        h.flush().await.unwrap();
        assert_eq!(ours("-4", "10.10.0.0/28"), "10.10.0.0/28 via 10.0.1.2 dev v1 metric 20");
        assert_eq!(ours("-4", "10.10.0.16/28"), "10.10.0.16/28 via 10.0.0.2 dev v0 metric 20");
        assert!(ours("-6", "2001:db8:10::/48").contains("nexthop via 2001:db8:1::2 dev v1"));
        // Exactly one route per prefix (replace, not append).
        assert_eq!(sh("ip -4 route show proto 186 | wc -l").trim(), "2");

        // Withdraw.
        h.apply(vec![ch("10.10.0.0/28", &[]), ch("2001:db8:11::/48", &[])]).await.unwrap();
        h.flush().await.unwrap();
        assert_eq!(ours("-4", "10.10.0.0/28"), "");
        assert_eq!(ours("-6", "2001:db8:11::/48"), "");
        assert_eq!(state(&h, "10.10.0.0/28").await, None);

        // Shutdown without graceful restart removes everything of ours.
        let r = h.shutdown().await.unwrap();
        assert_eq!(r.removed, 3);
        task.await.unwrap();
        assert_eq!(sh("ip -4 route show proto 186; ip -6 route show proto 186").trim(), "");
    });
}

#[test]
fn fib_next_hop_reachability() {
    if !inner_or_run("fib_next_hop_reachability") {
        return;
    }
    rt().block_on(async {
        let (h, mut ev, task) = fib::spawn(cfg()).await.unwrap();
        assert!(
            !h.initial_reachability()
                .resolves("10.0.5.2".parse().unwrap())
        );
        h.apply(vec![
            ch("10.20.0.0/24", &[nh("10.0.5.2")]),
            ch("2001:db8:20::/48", &[nh("2001:db8:5::2")]),
        ])
        .await
        .unwrap();
        h.flush().await.unwrap();
        assert_eq!(state(&h, "10.20.0.0/24").await, Some(PrefixState::Pending));
        assert_eq!(
            ours("-4", ""),
            "",
            "an unreachable next hop must not be installed"
        );
        // Status counts every pending prefix but lists only the first
        // thousand (a million would be hundreds of megabytes).
        let many: Vec<RouteChange> = (0..1500u32)
            .map(|i| {
                let net = std::net::Ipv4Addr::from(0x0a30_0000 + (i << 8));
                ch(&format!("{net}/24"), &[nh("10.0.5.2")])
            })
            .collect();
        h.apply(many.clone()).await.unwrap();
        h.flush().await.unwrap();
        let st = h.status().await.unwrap();
        assert_eq!(st.pending, 1502, "{}", st.pending);
        assert_eq!((st.problems.len(), st.problems_omitted), (1000, 502));
        let gone: Vec<RouteChange> = many
            .iter()
            .map(|c| RouteChange {
                prefix: c.prefix,
                next_hops: Default::default(),
            })
            .collect();
        h.apply(gone).await.unwrap();
        h.flush().await.unwrap();
        assert_eq!(h.status().await.unwrap().pending, 2);
        while ev.try_recv().is_ok() {}

        // An address on v1 makes the next hops directly connected.
        ok("ip addr add 10.0.5.1/24 dev v1 && ip addr add 2001:db8:5::1/64 dev v1 nodad");
        eventually("10.20.0.0/24 installed", async || {
            ours("-4", "10.20.0.0/24") == "10.20.0.0/24 via 10.0.5.2 dev v1 metric 20"
        })
        .await;
        eventually("2001:db8:20::/48 installed", async || {
            ours("-6", "2001:db8:20::/48").contains("via 2001:db8:5::2 dev v1")
        })
        .await;
        reachable(&mut ev, "10.0.5.2", true).await;

        // Link down: the next hop is unreachable, the route goes.
        ok("ip link set v1 down");
        eventually("route removed on link down", async || {
            ours("-4", "10.20.0.0/24").is_empty() && ours("-6", "2001:db8:20::/48").is_empty()
        })
        .await;
        eventually("pending on link down", async || {
            state(&h, "10.20.0.0/24").await == Some(PrefixState::Pending)
        })
        .await;
        reachable(&mut ev, "10.0.5.2", false).await;
        // And back.
        ok("ip link set v1 up");
        eventually("route back on link up", async || {
            ours("-4", "10.20.0.0/24") == "10.20.0.0/24 via 10.0.5.2 dev v1 metric 20"
        })
        .await;

        // Recursive: a next hop reached through a static route is installed
        // through that route's gateway.
        h.apply(vec![ch("10.21.0.0/24", &[nh("10.9.1.1")])])
            .await
            .unwrap();
        h.flush().await.unwrap();
        assert_eq!(state(&h, "10.21.0.0/24").await, Some(PrefixState::Pending));
        ok("ip route add 10.9.0.0/16 via 10.0.0.2 proto static");
        eventually("recursive route installed", async || {
            ours("-4", "10.21.0.0/24") == "10.21.0.0/24 via 10.0.0.2 dev v0 metric 20"
        })
        .await;
        ok("ip route del 10.9.0.0/16 via 10.0.0.2 proto static");
        eventually("recursive route removed", async || {
            ours("-4", "10.21.0.0/24").is_empty()
        })
        .await;

        h.shutdown().await.unwrap();
        task.await.unwrap();
    });
}

#[test]
fn fib_reachability_coalesces_while_the_rib_is_busy() {
    if !inner_or_run("fib_reachability_coalesces_while_the_rib_is_busy") {
        return;
    }
    rt().block_on(async {
        let (h, mut ev, task) = fib::spawn(cfg()).await.unwrap();
        // Nobody reads the events while the kernel changes 21 times: the
        // queue (16) fills, and what comes after must not be lost.
        for i in 0..20 {
            ok(&format!(
                "ip route add 10.9.{i}.0/24 via 10.0.0.2 proto static"
            ));
        }
        ok("ip addr add 10.0.7.1/24 dev v1");
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut n = 0;
        let mut last = None;
        while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(1), ev.recv()).await {
            n += 1;
            if let FibEvent::Reachability(r) = e {
                last = Some(r);
            }
        }
        let last = last.expect("snapshots");
        assert!(n < 21, "{n} events for 21 changes: none coalesced");
        // The last snapshot is the kernel as it is now.
        assert!(last.resolves("10.0.7.2".parse().unwrap()));
        assert!(last.resolves("10.9.19.1".parse().unwrap()));
        h.shutdown().await.unwrap();
        task.await.unwrap();
    });
}

#[test]
fn fib_drift_repair() {
    if !inner_or_run("fib_drift_repair") {
        return;
    }
    rt().block_on(async {
        let (h, _ev, task) = fib::spawn(cfg()).await.unwrap();
        // Before the initial sync, unknown routes of ours are kept (they
        // may be a previous run's); after it, they are drift.
        h.initial_sync_done().await.unwrap();
        h.apply(vec![
            ch("10.30.0.0/24", &[nh("10.0.0.2")]),
            ch("10.30.1.0/24", &[nh("10.0.0.2")]),
            ch("2001:db8:30::/48", &[nh("2001:db8::2")]),
        ])
        .await
        .unwrap();
        h.flush().await.unwrap();
        ok("ip route del 10.30.0.0/24 proto 186");
        ok("ip -6 route del 2001:db8:30::/48 proto 186");
        ok("ip route replace 10.30.1.0/24 via 10.0.1.2 proto 186 metric 20");
        ok("ip route add 10.31.0.0/24 via 10.0.0.2 proto 186 metric 20");
        let r = h.reconcile().await.unwrap();
        println!("{r:?}");
        let mut re = r.reinstalled.clone();
        re.sort();
        assert_eq!(re, vec![p("10.30.0.0/24"), p("2001:db8:30::/48")]);
        assert_eq!(r.replaced, vec![p("10.30.1.0/24")]);
        assert_eq!(r.removed, vec![p("10.31.0.0/24")]);
        assert_eq!(
            ours("-4", "10.30.0.0/24"),
            "10.30.0.0/24 via 10.0.0.2 dev v0 metric 20"
        );
        assert_eq!(
            ours("-4", "10.30.1.0/24"),
            "10.30.1.0/24 via 10.0.0.2 dev v0 metric 20"
        );
        assert_eq!(ours("-4", "10.31.0.0/24"), "");
        assert!(!ours("-6", "2001:db8:30::/48").is_empty());
        assert_eq!(h.reconcile().await.unwrap().repaired(), 0);
        h.shutdown().await.unwrap();
        task.await.unwrap();

        // The periodic check repairs without being asked.
        let (h, _ev, task) = fib::spawn(FibConfig {
            reconcile_interval: Duration::from_millis(500),
            ..cfg()
        })
        .await
        .unwrap();
        h.initial_sync_done().await.unwrap();
        h.apply(vec![ch("10.32.0.0/24", &[nh("10.0.0.2")])])
            .await
            .unwrap();
        h.flush().await.unwrap();
        ok("ip route del 10.32.0.0/24 proto 186");
        eventually("periodic repair", async || {
            !ours("-4", "10.32.0.0/24").is_empty()
        })
        .await;
        h.shutdown().await.unwrap();
        task.await.unwrap();
    });
}

#[test]
fn fib_foreign_route_left_alone() {
    if !inner_or_run("fib_foreign_route_left_alone") {
        return;
    }
    rt().block_on(async {
        // Same prefix and metric: bgpd must not replace it.
        ok("ip route add 10.40.0.0/24 via 10.0.1.2 proto static metric 20");
        // Same prefix, kernel default metric 0: both coexist.
        ok("ip route add 10.41.0.0/24 via 10.0.1.2 proto static");
        let (h, _ev, task) = fib::spawn(cfg()).await.unwrap();
        h.apply(vec![
            ch("10.40.0.0/24", &[nh("10.0.0.2")]),
            ch("10.41.0.0/24", &[nh("10.0.0.2")]),
        ])
        .await
        .unwrap();
        h.flush().await.unwrap();
        assert_eq!(
            sh("ip route show 10.40.0.0/24").trim(),
            "10.40.0.0/24 via 10.0.1.2 dev v1 proto static metric 20"
        );
        assert_eq!(
            state(&h, "10.40.0.0/24").await,
            Some(PrefixState::ForeignConflict {
                protocol: 4,
                metric: 20
            })
        );
        assert_eq!(
            ours("-4", "10.41.0.0/24"),
            "10.41.0.0/24 via 10.0.0.2 dev v0 metric 20"
        );
        let st = h.lookup(p("10.41.0.0/24")).await.unwrap().unwrap();
        assert_eq!(st.foreign.len(), 1);
        assert_eq!(st.foreign[0].protocol, 4);
        let status = h.status().await.unwrap();
        assert_eq!(status.conflicts, 1);
        assert!(
            status
                .problems
                .iter()
                .any(|s| s.prefix == p("10.41.0.0/24"))
        );
        // The foreign route goes: ours takes its place.
        ok("ip route del 10.40.0.0/24 proto static");
        eventually("installed once the foreign route left", async || {
            ours("-4", "10.40.0.0/24") == "10.40.0.0/24 via 10.0.0.2 dev v0 metric 20"
        })
        .await;
        h.shutdown().await.unwrap();
        task.await.unwrap();
        assert_eq!(
            sh("ip route show 10.41.0.0/24").trim(),
            "10.41.0.0/24 via 10.0.1.2 dev v1 proto static"
        );
        assert_eq!(ours("-4", ""), "");
    });
}

#[test]
fn fib_restart_graceful_and_not() {
    if !inner_or_run("fib_restart_graceful_and_not") {
        return;
    }
    rt().block_on(async {
        let keep = FibConfig {
            keep_on_shutdown: Some(Duration::from_secs(120)),
            ..cfg()
        };
        let (h, _ev, task) = fib::spawn(keep.clone()).await.unwrap();
        h.apply(vec![
            ch("10.50.0.0/24", &[nh("10.0.0.2")]),
            ch("10.50.1.0/24", &[nh("10.0.0.2")]),
            ch("10.50.2.0/24", &[nh("10.0.0.2")]),
            ch("2001:db8:50::/48", &[nh("2001:db8::2")]),
        ])
        .await
        .unwrap();
        h.flush().await.unwrap();
        let r = h.shutdown().await.unwrap();
        task.await.unwrap();
        assert_eq!(r.kept, 4);
        assert_eq!(
            sh("ip route show proto 186 | wc -l").trim(),
            "3",
            "kept at shutdown"
        );

        // Watch what the restarted FIB does to the kernel.
        let log = std::env::temp_dir().join(format!("fib-monitor-{}", std::process::id()));
        let mut mon = Command::new("ip")
            .args(["-o", "monitor", "route"])
            .stdout(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;

        let (h, mut ev, task) = fib::spawn(keep.clone()).await.unwrap();
        assert_eq!(state(&h, "10.50.2.0/24").await, Some(PrefixState::Stale));
        // The RIB re-learns two of them (same next hops) and a new one.
        h.apply(vec![
            ch("10.50.0.0/24", &[nh("10.0.0.2")]),
            ch("2001:db8:50::/48", &[nh("2001:db8::2")]),
            ch("10.50.3.0/24", &[nh("10.0.0.2")]),
        ])
        .await
        .unwrap();
        h.flush().await.unwrap();
        assert!(
            !ours("-4", "10.50.1.0/24").is_empty(),
            "stale routes stay until the initial sync"
        );
        while let Ok(e) = ev.try_recv() {
            assert!(
                !matches!(e, FibEvent::InitialSyncOver),
                "told before the sync"
            );
        }
        h.initial_sync_done().await.unwrap();
        h.flush().await.unwrap();
        // The RIB hears that the sync is over (`bgpd health`, fib_synced).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(deadline, ev.recv()).await {
                Ok(Some(FibEvent::InitialSyncOver)) => break,
                Ok(Some(_)) => {}
                other => panic!("no InitialSyncOver: {other:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = mon.kill();
        let _ = mon.wait();
        let events = std::fs::read_to_string(&log).unwrap();
        let _ = std::fs::remove_file(&log);
        println!("monitor:\n{events}");
        assert!(
            !events.contains("10.50.0.0/24"),
            "re-learned route was touched: {events}"
        );
        assert!(
            !events.contains("2001:db8:50::/48"),
            "re-learned route was touched: {events}"
        );
        assert!(
            events.contains("Deleted 10.50.1.0/24") && events.contains("Deleted 10.50.2.0/24"),
            "{events}"
        );
        assert!(events.contains("10.50.3.0/24"));
        assert_eq!(ours("-4", "10.50.1.0/24"), "");
        assert_eq!(sh("ip route show proto 186 | wc -l").trim(), "2");

        h.shutdown().await.unwrap();
        task.await.unwrap();
        // Without graceful restart: all removed at shutdown (stale ones too,
        // and one of ours with another metric, before any sync).
        ok("ip route add 10.52.0.0/24 via 10.0.0.2 proto 186 metric 50");
        let (h, _ev, task) = fib::spawn(cfg()).await.unwrap();
        h.apply(vec![ch("10.50.0.0/24", &[nh("10.0.0.2")])])
            .await
            .unwrap();
        assert_eq!(h.shutdown().await.unwrap().removed, 4);
        task.await.unwrap();
        assert_eq!(
            sh("ip -4 route show proto 186; ip -6 route show proto 186").trim(),
            ""
        );

        // A stale route with no initial-sync signal goes after the timeout.
        ok("ip route add 10.51.0.0/24 via 10.0.0.2 proto 186 metric 20");
        let (h, _ev, task) = fib::spawn(FibConfig {
            stale_timeout: Duration::from_millis(500),
            ..cfg()
        })
        .await
        .unwrap();
        eventually("stale route removed after the timeout", async || {
            ours("-4", "10.51.0.0/24").is_empty()
        })
        .await;
        h.shutdown().await.unwrap();
        task.await.unwrap();
    });
}

#[test]
fn fib_100k_install_withdraw() {
    if !inner_or_run("fib_100k_install_withdraw") {
        return;
    }
    rt().block_on(async {
        let (h, _ev, task) = fib::spawn(cfg()).await.unwrap();
        let n: u32 = 100_000;
        let prefixes: Vec<IpNet> = (0..n)
            .map(|i| {
                IpNet::new(IpAddr::from((0x0a80_0000u32 + (i << 4)).to_be_bytes()), 28).unwrap()
            })
            .collect();
        let t = Instant::now();
        for chunk in prefixes.chunks(1000) {
            let hops = [nh("10.0.0.2"), nh("10.0.1.2")];
            h.apply(
                chunk
                    .iter()
                    .enumerate()
                    .map(|(i, p)| fib::change(*p, vec![hops[i % 2]]))
                    .collect::<Vec<_>>(),
            )
            .await
            .unwrap();
        }
        h.flush().await.unwrap();
        let install = t.elapsed();
        assert_eq!(
            sh("ip -4 route show proto 186 | wc -l").trim(),
            n.to_string()
        );
        assert_eq!(h.status().await.unwrap().installed, n as usize);
        let t = Instant::now();
        for chunk in prefixes.chunks(1000) {
            h.apply(
                chunk
                    .iter()
                    .map(|p| fib::change(*p, vec![]))
                    .collect::<Vec<_>>(),
            )
            .await
            .unwrap();
        }
        h.flush().await.unwrap();
        let withdraw = t.elapsed();
        println!("100k routes: install {install:?}, withdraw {withdraw:?}");
        assert_eq!(sh("ip -4 route show proto 186 | wc -l").trim(), "0");
        let st = h.status().await.unwrap();
        assert_eq!((st.installed, st.desired), (0, 0));
        assert_eq!(h.reconcile().await.unwrap().kernel_routes, 0);
        h.shutdown().await.unwrap();
        task.await.unwrap();
    });
}

/// Routes are written about 1,100 per `sendmsg` and only each batch's last
/// message asks for an ack: the kernel's errors for the others must still
/// land on their own prefixes (none of them on a neighbour, none lost),
/// also when the refused one is a batch's last.
#[test]
fn fib_refusals_in_a_batch_map_to_their_prefixes() {
    if !inner_or_run("fib_refusals_in_a_batch_map_to_their_prefixes") {
        return;
    }
    rt().block_on(async {
        let (h, _ev, task) = fib::spawn(cfg()).await.unwrap();
        let n: u32 = 3_000;
        let prefix = |i: u32| {
            IpNet::new(IpAddr::from((0x0a80_0000u32 + (i << 4)).to_be_bytes()), 28).unwrap()
        };
        // The subnet's broadcast address: "Nexthop has invalid gateway".
        let refused = |i: u32| i % 500 == 7 || i == n - 1;
        let changes: Vec<RouteChange> = (0..n)
            .map(|i| {
                let via = if refused(i) { "10.0.0.255" } else { "10.0.0.2" };
                fib::change(prefix(i), vec![nh(via)])
            })
            .collect();
        h.apply(changes).await.unwrap();
        h.flush().await.unwrap();
        let bad: Vec<u32> = (0..n).filter(|&i| refused(i)).collect();
        assert_eq!(
            sh("ip -4 route show proto 186 | wc -l").trim(),
            (n as usize - bad.len()).to_string()
        );
        for i in 0..n {
            let st = h.lookup(prefix(i)).await.unwrap().unwrap().state;
            match st {
                PrefixState::Failed { errno, .. } if refused(i) => {
                    assert_eq!(errno, libc::EINVAL, "{}", prefix(i))
                }
                PrefixState::Installed { .. } if !refused(i) => {}
                other => panic!("{}: {other:?}", prefix(i)),
            }
        }
        let st = h.status().await.unwrap();
        assert_eq!(st.installed, n as usize - bad.len());
        // Every refused prefix is absent, every other one there.
        for &i in &bad {
            assert_eq!(ours("-4", &prefix(i).to_string()), "", "{}", prefix(i));
        }
        assert_eq!(
            ours("-4", &prefix(8).to_string()),
            format!("{} via 10.0.0.2 dev v0 metric 20", prefix(8))
        );
        h.shutdown().await.unwrap();
        task.await.unwrap();
        assert_eq!(ours("-4", ""), "");
    });
}

#[test]
fn fib_odd_routes_of_ours() {
    if !inner_or_run("fib_odd_routes_of_ours") {
        return;
    }
    rt().block_on(async {
        // Left by a previous run: a route without a gateway, and one with
        // another metric (a metric changed in the configuration).
        ok("ip route add 10.60.0.0/24 dev v0 proto 186 metric 20");
        ok("ip route add 10.61.0.0/24 via 10.0.0.2 proto 186 metric 50");
        let (h, _ev, task) = fib::spawn(cfg()).await.unwrap();
        assert_eq!(state(&h, "10.60.0.0/24").await, Some(PrefixState::Stale));
        assert_eq!(state(&h, "10.61.0.0/24").await, None);
        h.apply(vec![ch("10.60.0.0/24", &[nh("10.0.0.2")])])
            .await
            .unwrap();
        h.flush().await.unwrap();
        assert_eq!(
            ours("-4", "10.60.0.0/24"),
            "10.60.0.0/24 dev v0 scope link metric 20",
            "re-learned with other next hops: deferred until the sync (RFC 4724 4.1)"
        );
        assert!(
            !ours("-4", "10.61.0.0/24").is_empty(),
            "kept until the sync"
        );
        h.initial_sync_done().await.unwrap();
        h.flush().await.unwrap();
        assert_eq!(
            ours("-4", "10.60.0.0/24"),
            "10.60.0.0/24 via 10.0.0.2 dev v0 metric 20",
            "re-learned with other next hops: replaced at the sync"
        );
        assert_eq!(ours("-4", "10.61.0.0/24"), "");

        // Found by a check after the sync: both go.
        ok("ip route add 10.62.0.0/24 dev v1 proto 186 metric 20");
        ok("ip route add 10.63.0.0/24 via 10.0.0.2 proto 186 metric 30");
        let r = h.reconcile().await.unwrap();
        assert_eq!(r.kernel_routes, 3, "{r:?}");
        assert_eq!(r.removed, vec![p("10.62.0.0/24")]);
        assert_eq!(r.repaired(), 1);
        assert_eq!(
            sh("ip route show proto 186").trim(),
            "10.60.0.0/24 via 10.0.0.2 dev v0 metric 20"
        );
        assert_eq!(h.lookup(p("10.62.0.0/24")).await.unwrap(), None);
        let st = h.status().await.unwrap();
        assert_eq!((st.desired, st.installed, st.problems.len()), (1, 1, 0));
        assert_eq!(h.shutdown().await.unwrap().removed, 1);
        task.await.unwrap();
    });
}

#[test]
fn fib_custom_table() {
    if !inner_or_run("fib_custom_table") {
        return;
    }
    rt().block_on(async {
        // Table 100 has no route yet: the kernel refuses to dump it
        // (ENOENT), which means nothing of ours is there.
        let t100 = FibConfig {
            table: 100,
            keep_on_shutdown: Some(Duration::from_secs(60)),
            ..cfg()
        };
        let (h, _ev, task) = fib::spawn(t100.clone()).await.unwrap();
        h.apply(vec![
            ch("10.70.0.0/24", &[nh("10.0.0.2")]),
            ch("2001:db8:70::/48", &[nh("2001:db8::2")]),
        ])
        .await
        .unwrap();
        h.flush().await.unwrap();
        assert_eq!(
            sh("ip route show table 100 proto 186").trim(),
            "10.70.0.0/24 via 10.0.0.2 dev v0 metric 20"
        );
        assert!(sh("ip -6 route show table 100 proto 186").contains("2001:db8:70::/48"));
        assert_eq!(ours("-4", ""), "", "nothing in main");
        let r = h.reconcile().await.unwrap();
        assert_eq!((r.kernel_routes, r.repaired()), (2, 0));
        assert_eq!(h.shutdown().await.unwrap().kept, 2);
        task.await.unwrap();
        // The next run adopts them from table 100, then removes them.
        let (h, _ev, task) = fib::spawn(FibConfig {
            keep_on_shutdown: None,
            ..t100
        })
        .await
        .unwrap();
        assert_eq!(state(&h, "10.70.0.0/24").await, Some(PrefixState::Stale));
        assert_eq!(h.shutdown().await.unwrap().removed, 2);
        task.await.unwrap();
        assert_eq!(
            sh("ip route show table 100; ip -6 route show table 100 proto 186").trim(),
            ""
        );
    });
}

/// The prefixes of the objects test: `n` /24s from 10.100.0.0.
fn block(n: u32, nhs: &[NextHop]) -> Vec<RouteChange> {
    (0..n)
        .map(|i| ch(&format!("10.{}.{}.0/24", 100 + i / 256, i % 256), nhs))
        .collect()
}

/// `ip nexthop show protocol 186`, one object per line.
fn objects() -> Vec<String> {
    sh("ip nexthop show protocol 186")
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn fib_nexthop_groups() {
    if !inner_or_run("fib_nexthop_groups") {
        return;
    }
    rt().block_on(async {
        let on = FibConfig {
            nexthop_objects: true,
            keep_on_shutdown: Some(Duration::from_secs(120)),
            ..cfg()
        };
        // Someone else's object with an id in bgpd's range, and one of
        // theirs elsewhere: never touched.
        let first = (186u32 << 24) + 1;
        ok(&format!(
            "ip nexthop add id {first} via 10.0.0.9 dev v0 proto static"
        ));
        // (On v0: v1 goes down below, and the kernel flushes its objects.)
        ok("ip nexthop add id 7 via 10.0.0.8 dev v0 proto static");
        let (h, _ev, task) = fib::spawn(on.clone()).await.unwrap();
        h.initial_sync_done().await.unwrap();
        // IPv6 too, then withdrawn: its objects go with it.
        let mut ll = nh("fe80::2");
        ll.ifindex = Some(ifindex("v0"));
        h.apply(vec![
            ch(
                "2001:db8:60::/48",
                &[nh("2001:db8::2"), nh("2001:db8:1::2")],
            ),
            ch("2001:db8:61::/48", &[ll]),
        ])
        .await
        .unwrap();
        h.flush().await.unwrap();
        let r = ours("-6", "2001:db8:60::/48");
        assert!(
            r.contains("nhid")
                && r.contains("nexthop via 2001:db8::2 dev v0")
                && r.contains("nexthop via 2001:db8:1::2 dev v1"),
            "{r}"
        );
        let r = ours("-6", "2001:db8:61::/48");
        assert!(
            r.contains("nhid") && r.contains("via fe80::2 dev v0"),
            "{r}"
        );
        assert_eq!(objects().len(), 3 + 2, "{:?}", objects());
        h.apply(vec![
            ch("2001:db8:60::/48", &[]),
            ch("2001:db8:61::/48", &[]),
        ])
        .await
        .unwrap();
        h.flush().await.unwrap();
        assert_eq!(ours("-6", "2001:db8:60::/48"), "");
        assert_eq!(objects(), Vec::<String>::new());

        let (a, b) = (nh("10.0.0.2"), nh("10.0.1.2"));
        h.apply(block(1000, &[a, b])).await.unwrap();
        h.apply(vec![ch("10.99.0.0/24", &[b])]).await.unwrap();
        h.flush().await.unwrap();
        let s = h.status().await.unwrap();
        assert!(s.nexthop_objects);
        assert_eq!((s.objects_hops, s.objects_groups), (2, 2));
        assert_eq!(sh("ip route show proto 186 | grep -c nhid").trim(), "1001");
        let r = ours("-4", "10.100.0.0/24");
        assert!(
            r.contains("nexthop via 10.0.0.2 dev v0") && r.contains("nexthop via 10.0.1.2 dev v1"),
            "{r}"
        );
        let objs = objects();
        assert_eq!(objs.len(), 4, "{objs:?}");
        assert_eq!(
            objs.iter().filter(|o| o.contains(" group ")).count(),
            2,
            "{objs:?}"
        );

        // Every route leaves 10.0.1.2 (its peer went): one group replace
        // moves them all, and bgpd sends no route message at all. (The
        // kernel itself tells listeners of each route, with
        // net.ipv4.nexthop_compat_mode on.)
        let sent = h.status().await.unwrap().ops;
        h.apply(block(1000, &[a])).await.unwrap();
        h.flush().await.unwrap();
        let s = h.status().await.unwrap();
        assert_eq!(s.ops.replaced, sent.replaced, "route messages were sent");
        assert_eq!(s.ops.objects_replaced, sent.objects_replaced + 1);
        for r in [ours("-4", "10.100.0.0/24"), ours("-4", "10.103.231.0/24")] {
            assert!(r.contains("10.0.0.2") && !r.contains("10.0.1.2"), "{r}");
        }
        let fwd = sh("ip route get 10.103.231.7");
        assert!(fwd.contains("via 10.0.0.2 dev v0"), "{fwd}");
        assert_eq!(s.ops.groups_moved, 1);
        assert_eq!(s.ops.routes_spared, 1000);
        // And back.
        h.apply(block(1000, &[a, b])).await.unwrap();
        h.flush().await.unwrap();
        assert_eq!(h.status().await.unwrap().ops.groups_moved, 2);
        let r = ours("-4", "10.103.231.0/24");
        assert!(r.contains("nexthop via 10.0.1.2 dev v1"), "{r}");

        // v1 goes down: the kernel drops its objects (and 10.99.0.0/24,
        // whose group had only 10.0.1.2) by itself; bgpd follows, and has
        // everything back when it returns.
        ok("ip link set v1 down");
        eventually("the ECMP routes down to 10.0.0.2", async || {
            !ours("-4", "10.100.0.0/24").contains("10.0.1.2")
        })
        .await;
        h.flush().await.unwrap();
        assert_eq!(h.reconcile().await.unwrap().repaired(), 0);
        ok("ip link set v1 up");
        eventually("the ECMP routes whole again", async || {
            h.flush().await.unwrap();
            ours("-4", "10.100.0.0/24").contains("10.0.1.2")
                && !ours("-4", "10.99.0.0/24").is_empty()
        })
        .await;
        let r = h.reconcile().await.unwrap();
        assert_eq!(r.repaired(), 0, "{r:?}");
        assert_eq!(sh("ip route show proto 186 | grep -c nhid").trim(), "1001");

        // A restart keeps routes and objects and touches neither.
        let r = h.shutdown().await.unwrap();
        task.await.unwrap();
        assert_eq!(r.kept, 1001);
        let before = (sh("ip route show proto 186"), objects());
        let log = std::env::temp_dir().join(format!("fib-nh-monitor-{}", std::process::id()));
        let mut mon = Command::new("ip")
            .args(["-o", "monitor", "route", "nexthop"])
            .stdout(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (h, _ev, task) = fib::spawn(on.clone()).await.unwrap();
        h.apply(block(1000, &[a, b])).await.unwrap();
        h.apply(vec![ch("10.99.0.0/24", &[b])]).await.unwrap();
        h.initial_sync_done().await.unwrap();
        h.flush().await.unwrap();
        assert_eq!(h.reconcile().await.unwrap().repaired(), 0);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = mon.kill();
        let _ = mon.wait();
        let events = std::fs::read_to_string(&log).unwrap();
        let _ = std::fs::remove_file(&log);
        assert_eq!(events.trim(), "", "the restart wrote to the kernel");
        assert_eq!((sh("ip route show proto 186"), objects()), before);

        // Stopping for good removes routes and objects, only bgpd's.
        let r = h.shutdown_removing().await.unwrap();
        task.await.unwrap();
        assert_eq!((r.removed, r.objects_removed), (1001, 4));
        assert_eq!(sh("ip route show proto 186").trim(), "");
        assert_eq!(objects(), Vec::<String>::new());
        let left = sh("ip nexthop show");
        assert!(
            left.contains(&format!("id {first} via 10.0.0.9"))
                && left.contains("id 7 via 10.0.0.8"),
            "{left}"
        );
    });
}
