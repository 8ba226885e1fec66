//! Network-namespace labs for integration tests.
//!
//! A [`Lab`] creates namespaces with unique names, links them with veth
//! pairs created directly inside them (nothing is created in the root
//! namespace), runs daemons inside, and on drop kills everything and
//! deletes the namespaces, even when the test failed. On failure it prints
//! the daemons' logs.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

// The skip helper and the prerequisite checks live in tests/common/mod.rs;
// these names stay for the callers that use them from here.
#[allow(unused_imports)]
pub use super::{have, is_root, require};

/// bgpd's address on the tests' LAN (the seed's core switch).
pub const CORE: &str = "192.168.83.1";
/// bgpd's IPv6 address on the LAN, when a lab is dual-stack.
pub const CORE6: &str = "fd00:83::1";

/// Where a peer on the LAN reaches bgpd: [`CORE`], port 179.
pub fn bgpd_addr() -> SocketAddr {
    format!("{CORE}:179").parse().unwrap()
}

/// The kernel's bgpd routes (`ip route show proto bgp` output) parsed:
/// prefix -> next hops (empty for a route without `via`).
pub fn parse_kernel(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        if !line.starts_with(char::is_whitespace) {
            current = words[0].to_string();
            out.entry(current.clone()).or_default();
        }
        if let Some(i) = words.iter().position(|w| *w == "via") {
            // `via inet6 ADDR` in a v4 route with a v6 next hop.
            let hop = match words.get(i + 1) {
                Some(&"inet6") | Some(&"inet") => words.get(i + 2),
                h => h,
            };
            if let Some(h) = hop {
                out.entry(current.clone())
                    .or_default()
                    .insert(h.to_string());
            }
        }
    }
    out
}

pub struct Lab {
    pub tag: String,
    pub dir: PathBuf,
    namespaces: Vec<String>,
    children: Vec<(String, Child)>,
}

impl Lab {
    /// A new lab, or `None` (outside CI) when not root.
    pub fn new(name: &str) -> Option<Lab> {
        if !require(is_root(), "not root (network namespaces need root)") {
            return None;
        }
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let tag = format!("bt{}{}", std::process::id() % 100000, n);
        let dir = std::env::temp_dir().join(format!("bgpd-lab-{name}-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Daemons that drop privileges (FRR) need to reach their files.
        let _ = Command::new("chmod").arg("755").arg(&dir).status();
        Some(Lab {
            tag,
            dir,
            namespaces: Vec::new(),
            children: Vec::new(),
        })
    }

    /// Creates a namespace with loopback up; returns its full name.
    pub fn ns(&mut self, short: &str) -> String {
        let name = format!("{}-{short}", self.tag);
        run("ip", &["netns", "add", &name]);
        self.namespaces.push(name.clone());
        run("ip", &["-n", &name, "link", "set", "lo", "up"]);
        name
    }

    /// A veth pair between two namespaces, created inside them, with
    /// addresses (CIDR form) and up.
    pub fn link(&mut self, a: &str, a_if: &str, a_addr: &str, b: &str, b_if: &str, b_addr: &str) {
        run(
            "ip",
            &[
                "-n", a, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b,
            ],
        );
        for (ns, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
            for addr in addr.split(',').filter(|s| !s.is_empty()) {
                let mut args = vec!["-n", ns, "addr", "add", addr, "dev", ifname];
                if addr.contains(':') {
                    args.push("nodad");
                }
                run("ip", &args);
            }
            run("ip", &["-n", ns, "link", "set", ifname, "up"]);
        }
    }

    /// A lab of two namespaces on one veth: `core` (bgpd's, eth0 holding
    /// `core_addrs`) and `peer_ns` (eth0 holding `peer_addrs`); addresses
    /// are comma-separated CIDRs. Returns the lab and both namespaces.
    pub fn pair(
        name: &str,
        core_addrs: &str,
        peer_ns: &str,
        peer_addrs: &str,
    ) -> Option<(Lab, String, String)> {
        let mut lab = Lab::new(name)?;
        let core = lab.ns("core");
        let peer = lab.ns(peer_ns);
        lab.link(&core, "eth0", core_addrs, &peer, "eth0", peer_addrs);
        Some((lab, core, peer))
    }

    /// The tests' usual lab: bgpd's namespace `core` with [`CORE`]/24 on
    /// eth0 (and [`CORE6`]/64 when a peer address is IPv6), and `peer_ns`
    /// holding `peer_addrs` (the first is the primary; a bare IPv4 address
    /// is a /24, a bare IPv6 one a /64). Returns the lab and both
    /// namespaces.
    pub fn core_pair(
        name: &str,
        peer_ns: &str,
        peer_addrs: &[&str],
    ) -> Option<(Lab, String, String)> {
        let cidr = |a: &str| match (a.contains('/'), a.contains(':')) {
            (true, _) => a.to_string(),
            (false, false) => format!("{a}/24"),
            (false, true) => format!("{a}/64"),
        };
        let peer: Vec<String> = peer_addrs.iter().map(|a| cidr(a)).collect();
        let core = if peer_addrs.iter().any(|a| a.contains(':')) {
            format!("{CORE}/24,{CORE6}/64")
        } else {
            format!("{CORE}/24")
        };
        Lab::pair(name, &core, peer_ns, &peer.join(","))
    }

    /// bgpd's routes in a namespace's kernel, as `ip route show proto
    /// bgp` prints them (IPv4), without the `nhid N` of routes through
    /// nexthop objects (the hops follow it).
    pub fn kernel_routes(&self, ns: &str) -> String {
        self.sh_text(ns, "ip route show proto bgp | sed 's/ nhid [0-9]*//'")
    }

    /// bgpd's IPv4 routes in a namespace's kernel: prefix -> next hops.
    pub fn kernel_table(&self, ns: &str) -> BTreeMap<String, BTreeSet<String>> {
        parse_kernel(&self.kernel_routes(ns))
    }

    /// The prefixes of bgpd's IPv4 routes in a namespace's kernel.
    pub fn kernel_prefixes(&self, ns: &str) -> Vec<String> {
        self.kernel_table(ns).into_keys().collect()
    }

    /// Waits until something listens on TCP port 179 in `ns`.
    pub fn wait_listen(&self, ns: &str) {
        self.wait_for("bgpd to listen", Duration::from_secs(15), || {
            self.sh_text(ns, "ss -Htln 'sport = :179'").contains(":179")
        });
    }

    /// A LAN: a bridge `br0` in a namespace of its own. [`Lab::attach`]
    /// plugs hosts into it.
    pub fn lan(&mut self) -> String {
        let hub = self.ns("hub");
        run("ip", &["-n", &hub, "link", "add", "br0", "type", "bridge"]);
        run("ip", &["-n", &hub, "link", "set", "br0", "up"]);
        hub
    }

    /// A new namespace `short` on the LAN, with `eth0` at `addr` (CIDR).
    pub fn attach(&mut self, hub: &str, short: &str, addr: &str) -> String {
        let ns = self.ns(short);
        let port = format!("p-{short}");
        self.link(&ns, "eth0", addr, hub, &port, "");
        run("ip", &["-n", hub, "link", "set", &port, "master", "br0"]);
        ns
    }

    /// Runs a shell command in a namespace and returns its output.
    pub fn sh(&self, ns: &str, cmd: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c", cmd])
            .output()
            .expect("ip netns exec")
    }

    /// Like [`Lab::sh`], returning stdout and stderr as one string.
    pub fn sh_text(&self, ns: &str, cmd: &str) -> String {
        let o = self.sh(ns, cmd);
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    pub fn write(&self, file: &str, text: &str) -> PathBuf {
        let p = self.path(file);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Starts a long-running program in a namespace, logging to
    /// `<name>.log` in the lab folder.
    pub fn spawn(&mut self, ns: &str, name: &str, argv: &[&str], env: &[(&str, &str)]) {
        let log = std::fs::File::create(self.path(&format!("{name}.log"))).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", argv[0]));
        self.children.push((name.to_string(), child));
    }

    /// Starts bgpd in a namespace.
    pub fn bgpd(&mut self, ns: &str, name: &str, args: &[&str]) {
        let mut argv = vec![env!("CARGO_BIN_EXE_bgpd")];
        argv.extend_from_slice(args);
        self.spawn(ns, name, &argv, &[("BGPD_LOG", "debug")]);
    }

    /// bgpd as the tests' core router: AS 64512, router id 192.168.83.1,
    /// then `args`.
    pub fn core_bgpd(&mut self, ns: &str, name: &str, args: &[&str]) {
        let mut argv = vec!["--asn", "64512", "--router-id", "192.168.83.1"];
        argv.extend_from_slice(args);
        self.bgpd(ns, name, &argv);
    }

    /// Sends SIGTERM to a started program and waits for it; returns its
    /// exit status.
    pub fn stop(&mut self, name: &str) -> Option<std::process::ExitStatus> {
        self.stop_with(name, "TERM")
    }

    /// [`Lab::stop`] with another signal (`INT`: Ctrl-C).
    pub fn stop_with(&mut self, name: &str, sig: &str) -> Option<std::process::ExitStatus> {
        let i = self.children.iter().position(|(n, _)| n == name)?;
        let (_, mut child) = self.children.remove(i);
        // `ip netns exec` execs the program, so the pid is the program's.
        let _ = Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                return Some(st);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The pid of a started program (`ip netns exec` execs it, so it is
    /// the program's own), to signal it.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.children
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.id())
    }

    /// Sends a signal (`HUP`, `TERM`, ...) to a program this lab started,
    /// by its pid: never to anything else on the machine.
    pub fn signal(&self, name: &str, sig: &str) {
        let pid = self
            .pid(name)
            .unwrap_or_else(|| panic!("no program {name} was started in this lab"))
            .to_string();
        let st = Command::new("kill")
            .args([&format!("-{sig}"), &pid])
            .status()
            .expect("kill");
        assert!(st.success(), "kill -{sig} {pid} ({name}) failed");
    }

    /// Whether a started program is still running.
    pub fn running(&mut self, name: &str) -> bool {
        self.children
            .iter_mut()
            .find(|(n, _)| n == name)
            .is_some_and(|(_, c)| matches!(c.try_wait(), Ok(None)))
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(&format!("{name}.log"))).unwrap_or_default()
    }

    /// Polls `f` until it holds or `timeout` passes; panics with `what`.
    #[track_caller]
    pub fn wait_for(&self, what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !f() {
            if Instant::now() > deadline {
                panic!("timed out after {timeout:?} waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Starts a tshark capture of BGP on an interface in a namespace.
    pub fn capture(&mut self, ns: &str, ifname: &str, name: &str) -> PathBuf {
        let pcap = self.path(&format!("{name}.pcap"));
        let p = pcap.to_string_lossy().to_string();
        self.spawn(
            ns,
            name,
            &["tshark", "-q", "-i", ifname, "-f", "tcp port 179", "-w", &p],
            &[],
        );
        // tshark needs a moment before it captures: "Capturing on" comes
        // when it has asked dumpcap, "Capture started" when dumpcap has
        // the interface (a packet between the two is lost).
        let log = self.path(&format!("{name}.log"));
        self.wait_for("tshark to start capturing", Duration::from_secs(15), || {
            std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Capture started"))
        });
        pcap
    }

    /// How many BGP messages from `src` a stopped capture holds (that it
    /// saw the session at all).
    #[allow(dead_code)]
    pub fn bgp_messages_from(&self, capture: &str, src: &str) -> usize {
        let out = Command::new("tshark")
            .args(["-n", "-r"])
            .arg(self.path(&format!("{capture}.pcap")))
            .args([
                "-Y",
                &format!("bgp && ip.src == {src}"),
                "-T",
                "fields",
                "-e",
                "bgp.type",
            ])
            .output()
            .expect("tshark");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split(',').count())
            .sum()
    }

    /// NOTIFICATIONs in a capture: (source address, code, subcode).
    pub fn notifications(&mut self, capture: &str) -> Vec<(String, u8, u8)> {
        let pcap = self.path(&format!("{capture}.pcap"));
        // dumpcap writes in batches: give it time before stopping it.
        std::thread::sleep(Duration::from_millis(1500));
        self.stop(capture);
        let out = Command::new("tshark")
            .args(["-n", "-r"])
            .arg(&pcap)
            .args([
                "-Y",
                "bgp.type == 3",
                "-T",
                "fields",
                "-e",
                "ip.src",
                "-e",
                "bgp.notify.major_error",
                "-e",
                "bgp.notify.minor_error_open",
                "-e",
                "bgp.notify.minor_error_cease",
                "-e",
                "bgp.notify.minor_error_update",
                "-e",
                "bgp.notify.minor_error",
            ])
            .output()
            .expect("tshark");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                let code: u8 = f.get(1)?.split(',').next()?.parse().ok()?;
                let sub = f[2..]
                    .iter()
                    .find_map(|s| s.split(',').next().and_then(|s| s.parse::<u8>().ok()))
                    .unwrap_or(0);
                Some((f[0].to_string(), code, sub))
            })
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let failed = std::thread::panicking();
        for (_, c) in &mut self.children {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        std::thread::sleep(Duration::from_millis(200));
        for (_, c) in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.namespaces {
            // Anything still running inside (daemons that forked).
            if let Ok(o) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if failed {
            eprintln!("--- lab {} logs ({}):", self.tag, self.dir.display());
            if let Ok(rd) = std::fs::read_dir(&self.dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.extension().is_some_and(|x| x == "log") {
                        let text = std::fs::read_to_string(&p).unwrap_or_default();
                        let tail: Vec<&str> = text.lines().rev().take(40).collect();
                        eprintln!("=== {}", p.display());
                        for l in tail.into_iter().rev() {
                            eprintln!("{l}");
                        }
                    }
                }
            }
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn run(cmd: &str, args: &[&str]) {
    let o = Command::new(cmd).args(args).output().expect(cmd);
    assert!(
        o.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}
