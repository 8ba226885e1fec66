//! systemd's side of bgpd, without systemd: the test is the service
//! manager. It binds a unix datagram socket, starts bgpd with
//! NOTIFY_SOCKET pointing at it (and WATCHDOG_USEC), and reads what bgpd
//! says: READY=1 only once the initial sync is over (the peer's
//! End-of-RIB), WATCHDOG=1 at half the watchdog interval, RELOADING=1
//! (with MONOTONIC_USEC) then READY=1 on SIGHUP, STOPPING=1 on SIGTERM.

mod common;

use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::netns::Lab;

/// What bgpd sent, with when it arrived.
#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<(Instant, String)>>>);

impl Heard {
    /// Reads datagrams from `sock` until it is closed or the test ends.
    fn listen(sock: UnixDatagram) -> Heard {
        let h = Heard::default();
        let h2 = h.clone();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match sock.recv(&mut buf) {
                    Ok(n) => h2.0.lock().unwrap().push((
                        Instant::now(),
                        String::from_utf8_lossy(&buf[..n]).into_owned(),
                    )),
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => return,
                }
            }
        });
        h
    }

    fn all(&self) -> Vec<(Instant, String)> {
        self.0.lock().unwrap().clone()
    }

    /// The messages that hold `field` as one of their lines.
    fn with(&self, field: &str) -> Vec<(Instant, String)> {
        self.all()
            .into_iter()
            .filter(|(_, m)| m.lines().any(|l| l == field))
            .collect()
    }

    fn count(&self, field: &str) -> usize {
        self.with(field).len()
    }

    fn dump(&self) -> String {
        let all = self.all();
        let t0 = all.first().map(|(t, _)| *t);
        all.iter()
            .map(|(t, m)| {
                format!(
                    "{:>7.3}s {}",
                    t0.map_or(0.0, |t0| t.duration_since(t0).as_secs_f64()),
                    m.replace('\n', " | ")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[track_caller]
fn wait(what: &str, heard: &Heard, secs: u64, f: impl Fn(&Heard) -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !f(heard) {
        assert!(
            Instant::now() < end,
            "timed out after {secs}s waiting for {what}; heard:\n{}",
            heard.dump()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kill(sig: &str, pid: u32) {
    let st = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig} {pid}");
}

#[test]
fn ready_watchdog_reload_stopping() {
    let Some(mut lab) = Lab::new("notify") else {
        return;
    };
    let core = lab.ns("c");
    let peer = lab.ns("p");
    lab.link(
        &core,
        "eth0",
        "192.168.83.1/24",
        &peer,
        "eth0",
        "192.168.83.36/24",
    );
    let dir = lab.dir.to_string_lossy().to_string();
    let config = lab.write(
        "bgpd.toml",
        &format!(
            r#"local_as = 64512
router_id = "192.168.83.1"
hold_time = 9

[[peer]]
address = "192.168.83.36"
description = "the peer"

[control]
socket = "{dir}/bgpd.sock"
"#
        ),
    );
    // The service manager's socket: a path, which works across network
    // namespaces (an abstract one would not).
    let notify_path = lab.path("notify.sock");
    let heard = Heard::listen(UnixDatagram::bind(&notify_path).unwrap());
    let bgpd = env!("CARGO_BIN_EXE_bgpd");
    let config = config.to_string_lossy().to_string();
    let notify_env = notify_path.to_string_lossy().to_string();
    // A 1 s watchdog: bgpd pings every 0.5 s.
    lab.spawn(
        &core,
        "bgpd",
        &[bgpd, "--config", &config],
        &[
            ("BGPD_LOG", "debug"),
            ("NOTIFY_SOCKET", &notify_env),
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    let pid = lab.pid("bgpd").unwrap();

    // --- Up, but the configured peer has not sent End-of-RIB: no READY
    // yet, the STATUS says why, and the watchdog is pinged meanwhile.
    wait("the first STATUS", &heard, 15, |h| {
        h.all()
            .iter()
            .any(|(_, m)| m.contains("STATUS=initial sync"))
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        heard.count("READY=1"),
        0,
        "READY=1 before the initial sync:\n{}",
        heard.dump()
    );
    let sock = format!("{dir}/bgpd.sock");
    let health = lab.sh(&core, &format!("{bgpd} health --socket {sock}"));
    assert!(
        String::from_utf8_lossy(&health.stdout).contains("kernel not synced yet"),
        "{health:?}"
    );

    // --- The watchdog: WATCHDOG=1 every WATCHDOG_USEC / 2.
    let pings = heard.with("WATCHDOG=1");
    assert!(
        pings.len() >= 5,
        "{} watchdog pings in 3 s:\n{}",
        pings.len(),
        heard.dump()
    );
    let gaps: Vec<f64> = pings
        .windows(2)
        .map(|w| w[1].0.duration_since(w[0].0).as_secs_f64())
        .collect();
    for g in &gaps[1..] {
        assert!(
            (0.3..0.75).contains(g),
            "watchdog gap {g:.3}s, expected 0.5s: {gaps:?}"
        );
    }
    let mean = gaps[1..].iter().sum::<f64>() / (gaps.len() - 1) as f64;
    assert!(
        (0.45..0.55).contains(&mean),
        "mean gap {mean:.3}s: {gaps:?}"
    );

    // --- The peer comes up and sends End-of-RIB: now READY=1, and at that
    // moment bgpd's own health says the kernel is synced.
    lab.bgpd(
        &peer,
        "bgpd-peer",
        &["--asn", "64512", "--peer", "192.168.83.1"],
    );
    wait("READY=1 after the peer's End-of-RIB", &heard, 40, |h| {
        h.count("READY=1") == 1
    });
    let ready = heard.with("READY=1");
    assert!(ready[0].1.contains("STATUS=running"), "{}", heard.dump());
    let health = lab.sh(&core, &format!("{bgpd} health --socket {sock}"));
    let out = String::from_utf8_lossy(&health.stdout);
    assert!(health.status.success(), "{out}");
    assert!(!out.contains("not synced"), "READY=1 but {out}");
    assert!(
        lab.log("bgpd").contains("initial sync done"),
        "{}",
        lab.log("bgpd")
    );

    // --- SIGHUP: RELOADING=1 (with MONOTONIC_USEC), then READY=1.
    let before = heard.all().len();
    kill("-HUP", pid);
    wait("READY=1 after the reload", &heard, 10, |h| {
        h.count("READY=1") == 2
    });
    let after: Vec<String> = heard.all()[before..]
        .iter()
        .map(|(_, m)| m.clone())
        .filter(|m| !m.contains("WATCHDOG=1"))
        .collect();
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after[0].lines().next() == Some("RELOADING=1"), "{after:?}");
    let mono = after[0]
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC: {after:?}"));
    assert!(mono > 0);
    assert!(after[1].lines().any(|l| l == "READY=1"), "{after:?}");
    // The peer's session stayed (nothing in the file changed).
    let health = lab.sh(&core, &format!("{bgpd} health --socket {sock}"));
    assert!(health.status.success(), "{health:?}");

    // --- SIGTERM: STOPPING=1, nothing after it, and a clean exit.
    let st = lab.stop("bgpd").expect("ran");
    assert!(st.success(), "SIGTERM exit: {st}");
    let all = heard.all();
    let stop = all
        .iter()
        .position(|(_, m)| m.lines().any(|l| l == "STOPPING=1"))
        .unwrap_or_else(|| panic!("no STOPPING=1:\n{}", heard.dump()));
    assert_eq!(
        stop,
        all.len() - 1,
        "messages after STOPPING=1:\n{}",
        heard.dump()
    );
    assert_eq!(heard.count("READY=1"), 2, "{}", heard.dump());
}

/// No configured peers (only a listen range), no namespace: the initial sync is over at once, so READY=1
/// comes right after start; an abstract NOTIFY_SOCKET ("@name") works; no
/// WATCHDOG_USEC means no pings; SIGINT stops like SIGTERM. bgpd listens
/// on loopback only and keeps routes out of the kernel.
#[test]
fn abstract_socket_no_peers_ready_at_once() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("bgpd-notify-test-{}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let heard = Heard::listen(UnixDatagram::bind_addr(&addr).unwrap());
    // A free loopback port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bgpd"))
        .args([
            "--asn",
            "64512",
            "--router-id",
            "10.255.0.1",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--listen-range",
            "127.0.0.0/8",
            "--no-install",
        ])
        .env("NOTIFY_SOCKET", format!("@{name}"))
        .env_remove("WATCHDOG_USEC")
        .env("BGPD_LOG", "debug")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait("READY=1", &heard, 15, |h| h.count("READY=1") == 1);
        // READY means the listener is up.
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        std::thread::sleep(Duration::from_millis(1500));
        assert_eq!(heard.count("WATCHDOG=1"), 0, "{}", heard.dump());
        kill("-INT", child.id());
        wait("STOPPING=1", &heard, 10, |h| h.count("STOPPING=1") == 1);
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                assert!(st.success(), "SIGINT exit: {st}");
                break;
            }
            assert!(Instant::now() < end, "bgpd still runs 10 s after SIGINT");
            std::thread::sleep(Duration::from_millis(50));
        }
    }));
    if let Err(e) = res {
        // Only our own child, by pid.
        let _ = child.kill();
        let _ = child.wait();
        std::panic::resume_unwind(e);
    }
}
