//! Malformed input over a real session. A raw speaker (tests/common/raw.rs)
//! in a namespace opens an iBGP session with bgpd and delivers each case
//! of RFC 4271 §6 and RFC 7606 (the table in docs/wire.md#errors), then
//! checks what bgpd did:
//!
//! - session reset: the exact NOTIFICATION code, subcode and (where the
//!   RFC specifies it) data, read on the raw socket;
//! - treat-as-withdraw: a prefix announced first leaves the kernel and the
//!   session stays up (a later announcement on it is installed);
//! - attribute discard: the route is installed and the session stays up.
//!
//! Throughout, `ip monitor route` runs in bgpd's namespace: no prefix of a
//! session-reset case may ever appear in the kernel, not even briefly.
//!
//! One bgpd serves every case; each case gets its own TCP session and its
//! own prefixes (10.<case>.0.0/24), so cases cannot hide each other.
//! Needs root (network namespaces); skips otherwise outside CI.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::netns::{CORE, Lab, bgpd_addr};
use common::raw::*;

const PEER: Ipv4Addr = Ipv4Addr::new(192, 168, 83, 2);
const ASN: u32 = 64512;

pub struct Wire {
    pub lab: Lab,
    pub core: String,
    pub peer: String,
}

/// A lab with bgpd (passive towards 192.168.83.2) and the raw peer's
/// namespace, plus a route monitor in bgpd's namespace.
fn setup(name: &str) -> Option<Wire> {
    let (mut lab, core, peer) = Lab::core_pair(name, "peer", &[&PEER.to_string()])?;
    lab.spawn(&core, "monitor", &["ip", "monitor", "route"], &[]);
    lab.core_bgpd(
        &core,
        "bgpd",
        &["--hold-time", "30", "--peer", &format!("{PEER},passive")],
    );
    let w = Wire { lab, core, peer };
    w.lab.wait_listen(&w.core);
    Some(w)
}

impl Wire {
    fn connect(&self) -> Raw {
        let s = connect(&self.peer, bgpd_addr(), ConnectOpts::default()).expect("connect to bgpd");
        Raw::new(s)
    }

    /// A new Established session.
    fn session(&self) -> Result<Raw, String> {
        // bgpd may still be tearing down the previous session of this peer.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut r = self.connect();
            match r.handshake(&open(ASN, 30, PEER)) {
                Ok(_) => return Ok(r),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    fn kernel(&self) -> String {
        self.lab.kernel_routes(&self.core)
    }

    fn installed(&self, p: &str) -> bool {
        self.kernel()
            .lines()
            .any(|l| l.split_whitespace().next() == Some(p))
    }

    fn wait_route(&self, p: &str, present: bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.installed(p) == present {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[derive(Clone, Debug)]
enum Expect {
    /// Session reset with this NOTIFICATION; `None` data: not checked.
    Reset(u8, u8, Option<Vec<u8>>),
    /// RFC 7606 treat-as-withdraw.
    Withdraw,
    /// RFC 7606 attribute discard: the route is installed.
    Discard,
}

/// Where the malformed message goes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Instead of our OPEN.
    Open,
    /// In Established.
    Established,
}

struct Case {
    name: &'static str,
    phase: Phase,
    msg: Vec<u8>,
    expect: Expect,
}

fn nh() -> Vec<u8> {
    next_hop(PEER)
}

/// The cases; `p` is the case's prefix (10.N.0.0/24).
fn cases(p: &dyn Fn(usize) -> String) -> Vec<Case> {
    use Expect::*;
    use Phase::*;
    let mut v: Vec<Case> = Vec::new();
    let mut add = |name, phase, f: &dyn Fn(&[u8]) -> Vec<u8>, expect| {
        let i = v.len() + 1;
        let nlri = prefix(&p(i));
        v.push(Case {
            name,
            phase,
            msg: f(&nlri),
            expect,
        });
    };
    let good = |nlri: &[u8]| update(&[], &ibgp_attrs(PEER), nlri);
    let with = |extra: Vec<u8>| {
        move |nlri: &[u8]| update(&[], &[ibgp_attrs(PEER), extra.clone()].concat(), nlri)
    };
    let attrs_then = |attrs: Vec<u8>| move |nlri: &[u8]| update(&[], &attrs, nlri);

    // --- RFC 4271 §6.1 message header
    add(
        "marker not all ones: 1/1",
        Established,
        &|n| {
            let mut m = good(n);
            m[3] = 0;
            m
        },
        Reset(1, 1, Some(vec![])),
    );
    add(
        "length 18: 1/2",
        Established,
        &|_| {
            let mut m = MARKER.to_vec();
            m.extend_from_slice(&[0, 18, 4]);
            m
        },
        Reset(1, 2, Some(vec![0, 18])),
    );
    add(
        "length 4097 without Extended Message: 1/2",
        Established,
        &|n| {
            let mut m = good(n);
            m.resize(4097, 0);
            m[16..18].copy_from_slice(&4097u16.to_be_bytes());
            m
        },
        Reset(1, 2, Some(vec![0x10, 0x01])),
    );
    add(
        "KEEPALIVE of 20 octets: 1/2",
        Established,
        &|_| msg(KEEPALIVE, &[0]),
        Reset(1, 2, Some(vec![0, 20])),
    );
    add(
        "UPDATE of 22 octets: 1/2",
        Established,
        &|_| msg(UPDATE, &[0, 0, 0]),
        Reset(1, 2, Some(vec![0, 22])),
    );
    add(
        "OPEN of 21 octets: 1/2",
        Open,
        &|_| msg(OPEN, &[4, 0]),
        Reset(1, 2, Some(vec![0, 21])),
    );
    add(
        "unknown message type 9: 1/3",
        Established,
        &|_| msg(9, &[]),
        Reset(1, 3, Some(vec![9])),
    );
    // --- RFC 4271 §6.2 OPEN
    add(
        "version 3: 2/1 with data 00 04",
        Open,
        &|_| {
            let mut m = open(ASN, 30, PEER);
            m[19] = 3;
            m
        },
        Reset(2, 1, Some(vec![0, 4])),
    );
    add(
        "wrong peer AS: 2/2",
        Open,
        &|_| open(65001, 30, PEER),
        Reset(2, 2, None),
    );
    add(
        "BGP identifier 0.0.0.0: 2/3",
        Open,
        &|_| open(ASN, 30, Ipv4Addr::UNSPECIFIED),
        Reset(2, 3, None),
    );
    add(
        "our own BGP identifier on iBGP: 2/3",
        Open,
        &|_| open(ASN, 30, CORE.parse().unwrap()),
        Reset(2, 3, None),
    );
    add(
        "optional parameter 1 (authentication): 2/4",
        Open,
        &|_| {
            let mut b = vec![4];
            b.extend_from_slice(&(ASN as u16).to_be_bytes());
            b.extend_from_slice(&30u16.to_be_bytes());
            b.extend_from_slice(&PEER.octets());
            b.extend_from_slice(&[4, 1, 2, 0, 0]);
            msg(OPEN, &b)
        },
        Reset(2, 4, None),
    );
    add(
        "hold time 1: 2/6",
        Open,
        &|_| open(ASN, 1, PEER),
        Reset(2, 6, None),
    );
    add(
        "hold time 2: 2/6",
        Open,
        &|_| open(ASN, 2, PEER),
        Reset(2, 6, None),
    );
    add(
        "capability overrunning its parameter: 2/0",
        Open,
        &|_| open_with(ASN, 30, PEER, &[70, 9], false),
        Reset(2, 0, None),
    );
    // --- RFC 6608 FSM errors
    add(
        "UPDATE in OpenSent: 5/1",
        Open,
        &|n| good(n),
        Reset(5, 1, None),
    );
    add(
        "OPEN in Established: 5/3",
        Established,
        &|_| open(ASN, 30, PEER),
        Reset(5, 3, None),
    );
    // --- RFC 4271 §6.3 / RFC 7606: UPDATE, session reset
    add(
        "withdrawn length overruns the message: 3/1",
        Established,
        &|_| msg(UPDATE, &[0, 50, 24, 10, 0]),
        Reset(3, 1, Some(vec![])),
    );
    add(
        "total attribute length overruns the message: 3/1",
        Established,
        &|n| {
            let a = ibgp_attrs(PEER);
            let mut b = vec![0, 0];
            b.extend_from_slice(&((a.len() + 40) as u16).to_be_bytes());
            b.extend_from_slice(&a);
            b.extend_from_slice(n);
            msg(UPDATE, &b)
        },
        Reset(3, 1, Some(vec![])),
    );
    let mp4 = |nh_len: u8, nlri: &[u8]| {
        let mut v = vec![0, 1, 1, nh_len];
        v.extend(std::iter::repeat_n(0, nh_len as usize));
        if nh_len >= 4 {
            v[4..8].copy_from_slice(&PEER.octets());
        }
        v.push(0);
        v.extend_from_slice(nlri);
        attr(0x80, 14, &v)
    };
    add(
        "MP_REACH_NLRI twice: 3/1",
        Established,
        &|n| {
            let a = [
                origin_igp(),
                as_path(&[]),
                local_pref(100),
                mp4(4, n),
                mp4(4, n),
            ]
            .concat();
            update(&[], &a, &[])
        },
        Reset(3, 1, Some(vec![])),
    );
    let unknown_wk = attr(0x40, 100, &[1, 2]);
    add(
        "unrecognized well-known attribute: 3/2 with the attribute",
        Established,
        &with(unknown_wk.clone()),
        Reset(3, 2, Some(unknown_wk)),
    );
    {
        let n_dummy = prefix("10.0.0.0/24");
        let bad = mp4(5, &n_dummy);
        add(
            "MP_REACH_NLRI next hop length 5: 3/9 with the attribute",
            Established,
            &|_| {
                update(
                    &[],
                    &[origin_igp(), as_path(&[]), local_pref(100), bad.clone()].concat(),
                    &[],
                )
            },
            Reset(3, 9, Some(bad.clone())),
        );
    }
    add(
        "NLRI prefix length 33: 3/10",
        Established,
        &|_| update(&[], &ibgp_attrs(PEER), &[33, 10, 0, 0, 0, 0]),
        Reset(3, 10, Some(vec![])),
    );
    add(
        "NLRI prefix truncated: 3/10",
        Established,
        &|n| update(&[], &ibgp_attrs(PEER), &n[..n.len() - 1]),
        Reset(3, 10, Some(vec![])),
    );
    add(
        "withdrawn prefix length 33: 3/10",
        Established,
        &|_| update(&[33, 10, 0, 0, 0, 0], &[], &[]),
        Reset(3, 10, Some(vec![])),
    );
    add(
        "ROUTE-REFRESH BoRR of 24 octets: 7/1 with the message",
        Established,
        &|_| msg(ROUTE_REFRESH, &[0, 1, 1, 1, 0]),
        Reset(
            7,
            1,
            Some([MARKER.to_vec(), vec![0, 24, 5, 0, 1, 1, 1, 0]].concat()[..].to_vec()),
        ),
    );
    // --- RFC 7606: treat-as-withdraw
    let rest = |skip: u8| {
        let mut a = Vec::new();
        if skip != 1 {
            a.extend(origin_igp());
        }
        if skip != 2 {
            a.extend(as_path(&[]));
        }
        if skip != 3 {
            a.extend(nh());
        }
        a.extend(local_pref(100));
        a
    };
    add(
        "ORIGIN missing (3/3)",
        Established,
        &attrs_then(rest(1)),
        Withdraw,
    );
    add(
        "AS_PATH missing (3/3)",
        Established,
        &attrs_then(rest(2)),
        Withdraw,
    );
    add(
        "NEXT_HOP missing (3/3)",
        Established,
        &attrs_then(rest(3)),
        Withdraw,
    );
    let replace = |code: u8, bad: Vec<u8>| {
        let mut a = Vec::new();
        for (c, x) in [
            (1, origin_igp()),
            (2, as_path(&[])),
            (3, nh()),
            (5, local_pref(100)),
        ] {
            a.extend(if c == code { bad.clone() } else { x });
        }
        if ![1, 2, 3, 5].contains(&code) {
            a.extend(bad.clone());
        }
        a
    };
    add(
        "ORIGIN flags optional (3/4)",
        Established,
        &attrs_then(replace(1, attr(0xc0, 1, &[0]))),
        Withdraw,
    );
    add(
        "ORIGIN length 2 (3/5)",
        Established,
        &attrs_then(replace(1, attr(0x40, 1, &[0, 0]))),
        Withdraw,
    );
    add(
        "ORIGIN 3 (3/6)",
        Established,
        &attrs_then(replace(1, attr(0x40, 1, &[3]))),
        Withdraw,
    );
    for (name, v) in [
        ("NEXT_HOP 0.0.0.0 (3/8)", [0u8, 0, 0, 0]),
        ("NEXT_HOP multicast (3/8)", [224, 0, 0, 5]),
        ("NEXT_HOP broadcast (3/8)", [255, 255, 255, 255]),
    ] {
        add(
            name,
            Established,
            &attrs_then(replace(3, attr(0x40, 3, &v))),
            Withdraw,
        );
    }
    add(
        "NEXT_HOP length 5 (3/5)",
        Established,
        &attrs_then(replace(3, attr(0x40, 3, &[192, 168, 83, 2, 0]))),
        Withdraw,
    );
    for (name, v) in [
        (
            "AS_PATH unknown segment type (3/11)",
            vec![5u8, 1, 0, 0, 0xfd, 0xe9],
        ),
        ("AS_PATH zero-length segment (3/11)", vec![2, 0]),
        (
            "AS_PATH segment overrun (3/11)",
            vec![2, 2, 0, 0, 0xfd, 0xe9],
        ),
        ("AS_PATH underrun (3/11)", vec![2]),
    ] {
        add(
            name,
            Established,
            &attrs_then(replace(2, attr(0x40, 2, &v))),
            Withdraw,
        );
    }
    add(
        "MULTI_EXIT_DISC length 3 (3/5)",
        Established,
        &attrs_then(replace(4, attr(0x80, 4, &[0, 0, 1]))),
        Withdraw,
    );
    add(
        "LOCAL_PREF length 2 (3/5)",
        Established,
        &attrs_then(replace(5, attr(0x40, 5, &[0, 100]))),
        Withdraw,
    );
    add(
        "COMMUNITIES length 5 (3/5)",
        Established,
        &with(attr(0xc0, 8, &[0xfc, 0, 0, 100, 1])),
        Withdraw,
    );
    add(
        "ORIGINATOR_ID length 3 (3/5)",
        Established,
        &with(attr(0x80, 9, &[1, 2, 3])),
        Withdraw,
    );
    add(
        "CLUSTER_LIST length 5 (3/5)",
        Established,
        &with(attr(0x80, 10, &[1, 2, 3, 4, 5])),
        Withdraw,
    );
    add(
        "EXTENDED_COMMUNITIES length 7 (3/5)",
        Established,
        &with(attr(0xc0, 16, &[0, 2, 0xfc, 0, 0, 0, 1])),
        Withdraw,
    );
    add(
        "LARGE_COMMUNITY length 11 (3/5)",
        Established,
        &with(attr(0xc0, 32, &[0; 11])),
        Withdraw,
    );
    add(
        "attribute overruns the total attribute length (RFC 7606 §4)",
        Established,
        &|n| {
            let mut a = ibgp_attrs(PEER);
            a.extend_from_slice(&[0xc0, 8, 12, 0xfc, 0, 0, 1]);
            update(&[], &a, n)
        },
        Withdraw,
    );
    // --- RFC 7606: attribute discard
    add(
        "ATOMIC_AGGREGATE length 1 (discard)",
        Established,
        &with(attr(0x40, 6, &[0])),
        Discard,
    );
    add(
        "AGGREGATOR length 5 (discard)",
        Established,
        &with(attr(0xc0, 7, &[0, 0, 0xfd, 0xe9, 1])),
        Discard,
    );
    add(
        "AS4_PATH malformed (discard)",
        Established,
        &with(attr(0xc0, 17, &[2, 1, 0, 0])),
        Discard,
    );
    add(
        "ORIGIN twice (later copy discarded)",
        Established,
        &with(attr(0x40, 1, &[2])),
        Discard,
    );
    add(
        "unknown optional transitive attribute (kept)",
        Established,
        &with(attr(0xc0, 200, &[1, 2, 3])),
        Discard,
    );
    v
}

fn prefix_of(i: usize) -> String {
    format!("10.{i}.0.0/24")
}

fn second_prefix_of(i: usize) -> String {
    format!("10.{i}.1.0/24")
}

/// Runs one case; `Err` says what went wrong.
fn run_case(w: &Wire, i: usize, c: &Case) -> Result<(), String> {
    let p = prefix_of(i);
    match &c.expect {
        Expect::Reset(code, sub, data) => {
            let mut r = if c.phase == Phase::Open {
                w.connect()
            } else {
                w.session()?
            };
            r.send(&c.msg).map_err(|e| format!("send: {e}"))?;
            let n = r
                .notification(Duration::from_secs(5))
                .ok_or("no NOTIFICATION from bgpd")?;
            if (n.code, n.subcode) != (*code, *sub) {
                return Err(format!(
                    "NOTIFICATION {}/{} (data {:02x?}), expected {code}/{sub}",
                    n.code, n.subcode, n.data
                ));
            }
            if let Some(d) = data
                && &n.data != d
            {
                return Err(format!(
                    "NOTIFICATION {code}/{sub} data {:02x?}, expected {d:02x?}",
                    n.data
                ));
            }
            // bgpd closes the connection after its NOTIFICATION.
            match r.recv(Duration::from_secs(5)) {
                Got::Eof => {}
                other => {
                    return Err(format!(
                        "connection not closed after NOTIFICATION: {other:?}"
                    ));
                }
            }
            if w.installed(&p) {
                return Err(format!("{p} reached the kernel"));
            }
            Ok(())
        }
        Expect::Withdraw => {
            let mut r = w.session()?;
            r.send(&announce(PEER, &[&p])).map_err(|e| e.to_string())?;
            if !w.wait_route(&p, true, Duration::from_secs(10)) {
                return Err(format!("the valid announcement of {p} was not installed"));
            }
            r.send(&c.msg).map_err(|e| e.to_string())?;
            if !w.wait_route(&p, false, Duration::from_secs(10)) {
                return Err(format!("{p} still in the kernel after treat-as-withdraw"));
            }
            alive(w, &mut r, i)
        }
        Expect::Discard => {
            let mut r = w.session()?;
            r.send(&c.msg).map_err(|e| e.to_string())?;
            if !w.wait_route(&p, true, Duration::from_secs(10)) {
                let log = r.stays_up(Duration::from_millis(100));
                return Err(format!("{p} not installed (session: {log:?})"));
            }
            alive(w, &mut r, i)
        }
    }
}

/// The session survived: no NOTIFICATION, and a new announcement on it is
/// installed.
fn alive(w: &Wire, r: &mut Raw, i: usize) -> Result<(), String> {
    r.stays_up(Duration::from_millis(300))
        .map_err(|e| format!("session not kept: {e}"))?;
    let q = second_prefix_of(i);
    r.send(&announce(PEER, &[&q])).map_err(|e| e.to_string())?;
    if !w.wait_route(&q, true, Duration::from_secs(10)) {
        return Err(format!("session not usable afterwards: {q} not installed"));
    }
    Ok(())
}

#[test]
fn rfc4271_and_rfc7606_cases_live() {
    let Some(mut w) = setup("wire") else {
        return;
    };
    let cases = cases(&prefix_of);
    let mut failures = Vec::new();
    let mut reset_prefixes = Vec::new();
    for (k, c) in cases.iter().enumerate() {
        let i = k + 1;
        let t = Instant::now();
        let r = run_case(&w, i, c);
        eprintln!(
            "case {i:2} {:<60} {:>5} ms {}",
            c.name,
            t.elapsed().as_millis(),
            match &r {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("FAILED: {e}"),
            }
        );
        if let Err(e) = r {
            failures.push(format!("{}: {e}", c.name));
        }
        if matches!(c.expect, Expect::Reset(..)) {
            reset_prefixes.push(prefix_of(i));
        }
        // The raw session is gone: its routes must follow.
        let gone = w.wait_route(&prefix_of(i), false, Duration::from_secs(10))
            && w.wait_route(&second_prefix_of(i), false, Duration::from_secs(10));
        if !gone {
            failures.push(format!("{}: routes left after the session closed", c.name));
        }
    }
    assert!(w.lab.running("bgpd"), "bgpd exited");
    // Never installed, not even for a moment.
    std::thread::sleep(Duration::from_millis(300));
    // Without the `nhid N` of routes through nexthop objects.
    let seen = w
        .lab
        .log("monitor")
        .split(" nhid ")
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part
            } else {
                part.split_once(' ').map_or("", |(_, r)| r)
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    // The monitor did see the routes of the other cases.
    assert!(
        seen.contains(&format!("{} via", second_prefix_of(cases.len()))),
        "ip monitor saw nothing:\n{seen}"
    );
    for p in &reset_prefixes {
        if seen.lines().any(|l| {
            l.split_whitespace().next() == Some(p.as_str())
                || l.split_whitespace().nth(1) == Some(p.as_str())
        }) {
            failures.push(format!("{p} (a session-reset case) appeared in the kernel"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
