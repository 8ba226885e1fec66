//! bgpd-floor: the kernel's own floor for installing routes. No BGP, no RIB,
//! no FIB task: N IPv4 routes written straight into the main table with raw
//! rtnetlink, batched, as fast as the kernel takes them. bgpd's FIB time
//! divided by this one (same routes, same next hops, same run) says how
//! close bgpd is to the limit (benches/harness.sh daemon `floor`).
//!
//!     bgpd-floor                         # 1,000,000 /28 in a namespace of its own
//!     bgpd-floor --sweep                 # what moves the floor: one run per knob
//!     ip netns exec NS bgpd-floor --here --gateway 100.64.1.1   # the harness's way
//!
//! The routes are bgpd's: 10.0.0.0/28 upwards, protocol 186 ("bgp"),
//! metric 20, RTA_TABLE 254, gateway and output interface given, NLM_F_CREATE
//! | NLM_F_REPLACE; with several `--gateway`s the prefixes are split into as
//! many consecutive blocks (the harness's 10x100k). The knobs:
//! - `--batch-bytes`: messages per `sendmsg` (bgpd: 60 KiB, about 1,100);
//! - `--ack every|batch|end`: NLM_F_ACK on every message (bgpd), on the
//!   last of each batch, or only on the very last (errors are reported
//!   whatever the flag, so a refusal still maps to its sequence number);
//! - `--flags replace|excl`;
//! - `--order seq|reverse|shuffle|bitrev|stride` (`--block K`: shuffle or
//!   bit-reverse within blocks of K; stride: K routes at a time, every
//!   (N/K)th, so each block spans the whole range: bgpd's Queue::spread);
//! - `--delete-order ORDER`: then withdraw everything in that order, timed
//!   on its own (a session lost with no other path);
//! - `--nhid`: one nexthop object per gateway, routes with RTA_NH_ID;
//! - `--listener`: a second socket subscribed to RTNLGRP_IPV4_ROUTE with
//!   bgpd's filter (its own protocol dropped in the kernel), as bgpd's
//!   kernel view has: the kernel then builds a notification per route.
//!
//! Output: one JSON line per run (time from the first send to the last
//! ack, user and system CPU, errors, routes counted in the table
//! afterwards). `--here` runs only inside a namespace `ip netns` made.

use std::io;
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Instant;

use clap::{Parser, ValueEnum};

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_NEWNEXTHOP: u16 = 104;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
const RTA_NH_ID: u16 = 30;
const NHA_ID: u16 = 1;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;
const RTNLGRP_IPV4_ROUTE: u32 = 7;
const PROTO: u8 = 186;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Ack {
    Every,
    Batch,
    End,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Flags {
    Replace,
    Excl,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Order {
    Seq,
    Shuffle,
    Reverse,
    /// Bit-reversed index within each block (a power of two).
    Bitrev,
    /// Every S-th route in turn, S = routes / block: each block of
    /// `--block` routes ascending, spread over the whole range.
    Stride,
}

#[derive(Parser, Debug, Clone)]
#[command(
    name = "bgpd-floor",
    about = "The kernel's floor for route installs: raw batched rtnetlink, no BGP (see benches/floor.rs)"
)]
struct Args {
    /// Routes to install.
    #[arg(long, default_value_t = 1_000_000)]
    routes: u32,
    /// Prefix length.
    #[arg(long, default_value_t = 28)]
    len: u8,
    /// First prefix.
    #[arg(long, default_value = "10.0.0.0")]
    base: Ipv4Addr,
    /// Next hops (comma separated): the routes are split into one block each.
    #[arg(long, value_delimiter = ',', default_value = "100.64.1.1")]
    gateway: Vec<Ipv4Addr>,
    /// Output interface of the next hops (default: the one the kernel's
    /// route to the first gateway uses).
    #[arg(long)]
    dev: Option<String>,
    /// Bytes of messages per sendmsg.
    #[arg(long, default_value_t = 60 * 1024)]
    batch_bytes: usize,
    #[arg(long, value_enum, default_value_t = Ack::Every)]
    ack: Ack,
    #[arg(long, value_enum, default_value_t = Flags::Replace)]
    flags: Flags,
    #[arg(long, value_enum, default_value_t = Order::Seq)]
    order: Order,
    /// Shuffle or bit-reverse within consecutive blocks of this many
    /// routes (0: the whole set; bitrev rounds it down to a power of two).
    #[arg(long, default_value_t = 0)]
    block: usize,
    /// After the install, delete every route in this order and time it.
    #[arg(long, value_enum)]
    delete_order: Option<Order>,
    /// Routes through nexthop objects (one per gateway).
    #[arg(long)]
    nhid: bool,
    /// A subscribed route listener with bgpd's own-protocol filter.
    #[arg(long)]
    listener: bool,
    /// Run in the current network namespace (never the root one).
    #[arg(long)]
    here: bool,
    /// One run per knob, each in a fresh namespace; a markdown table.
    #[arg(long)]
    sweep: bool,
}

/// User and system CPU seconds, and the peak RSS in MiB.
fn cpu() -> (f64, f64, f64) {
    // SAFETY: getrusage fills the struct it is given.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u
    };
    let s = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (s(u.ru_utime), s(u.ru_stime), u.ru_maxrss as f64 / 1024.0)
}

/// A raw NETLINK_ROUTE socket.
struct Nl(i32);

impl Nl {
    fn open(groups: u32) -> io::Result<Nl> {
        // SAFETY: plain socket calls on an fd we own; the address is a
        // zeroed sockaddr_nl with the family and groups set.
        unsafe {
            let fd = libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut sa: libc::sockaddr_nl = std::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as u16;
            sa.nl_groups = groups;
            let l = std::mem::size_of::<libc::sockaddr_nl>() as u32;
            if libc::bind(fd, &sa as *const _ as *const libc::sockaddr, l) != 0 {
                return Err(io::Error::last_os_error());
            }
            let v: i32 = 32 << 20;
            let p = &v as *const i32 as *const libc::c_void;
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, p, 4);
            let one: i32 = 1;
            let p = &one as *const i32 as *const libc::c_void;
            libc::setsockopt(fd, libc::SOL_NETLINK, libc::NETLINK_CAP_ACK, p, 4);
            Ok(Nl(fd))
        }
    }

    fn send(&self, buf: &[u8]) -> io::Result<()> {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::send(self.0, buf.as_ptr() as *const libc::c_void, buf.len(), 0) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    /// Reads replies until `want` (a sequence number) is acked; counts
    /// the errors on the way. `block = false` only drains what is queued.
    fn replies(&self, rbuf: &mut [u8], want: Option<u32>, errors: &mut u64) -> io::Result<()> {
        loop {
            let flags = if want.is_some() {
                0
            } else {
                libc::MSG_DONTWAIT
            };
            // SAFETY: rbuf is valid for its length.
            let n = unsafe {
                libc::recv(
                    self.0,
                    rbuf.as_mut_ptr() as *mut libc::c_void,
                    rbuf.len(),
                    flags,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if want.is_none() && e.kind() == io::ErrorKind::WouldBlock {
                    return Ok(());
                }
                return Err(e);
            }
            let mut off = 0;
            let n = n as usize;
            while off + 20 <= n {
                let b = &rbuf[off..n];
                let mlen = u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize;
                if mlen < 16 || mlen > b.len() {
                    break;
                }
                let mtype = u16::from_ne_bytes(b[4..6].try_into().unwrap());
                let seq = u32::from_ne_bytes(b[8..12].try_into().unwrap());
                if mtype == NLMSG_ERROR {
                    let err = i32::from_ne_bytes(b[16..20].try_into().unwrap());
                    if err != 0 {
                        *errors += 1;
                        if *errors <= 3 {
                            eprintln!("floor: seq {seq}: {}", io::Error::from_raw_os_error(-err));
                        }
                    }
                    if Some(seq) == want {
                        return Ok(());
                    }
                }
                off += (mlen + 3) & !3;
            }
        }
    }
}

impl Drop for Nl {
    fn drop(&mut self) {
        // SAFETY: we own the fd.
        unsafe { libc::close(self.0) };
    }
}

fn put_attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len() + ((4 - len % 4) % 4), 0);
}

fn header(buf: &mut Vec<u8>, mtype: u16, flags: u16, seq: u32) {
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&mtype.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
}

fn patch_len(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

enum Via {
    Gateway(Ipv4Addr),
    Object(u32),
}

/// An RTM_NEWROUTE, or with `via` None the RTM_DELROUTE bgpd sends
/// (prefix, table, protocol, metric).
fn route(
    buf: &mut Vec<u8>,
    a: &Args,
    seq: u32,
    ack: bool,
    dst: Ipv4Addr,
    via: Option<&Via>,
    oif: u32,
) {
    let start = buf.len();
    let mut f = NLM_F_REQUEST;
    if via.is_some() {
        f |= NLM_F_CREATE;
        f |= match a.flags {
            Flags::Replace => NLM_F_REPLACE,
            Flags::Excl => NLM_F_EXCL,
        };
    }
    if ack {
        f |= NLM_F_ACK;
    }
    header(
        buf,
        if via.is_some() {
            RTM_NEWROUTE
        } else {
            RTM_DELROUTE
        },
        f,
        seq,
    );
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
    buf.extend_from_slice(&[libc::AF_INET as u8, a.len, 0, 0, 254, PROTO, 0, 1]);
    buf.extend_from_slice(&0u32.to_ne_bytes());
    put_attr(buf, RTA_DST, &dst.octets());
    put_attr(buf, RTA_TABLE, &254u32.to_ne_bytes());
    put_attr(buf, RTA_PRIORITY, &20u32.to_ne_bytes());
    match via {
        Some(Via::Object(id)) => put_attr(buf, RTA_NH_ID, &id.to_ne_bytes()),
        Some(Via::Gateway(g)) => {
            put_attr(buf, RTA_GATEWAY, &g.octets());
            put_attr(buf, RTA_OIF, &oif.to_ne_bytes());
        }
        None => {}
    }
    patch_len(buf, start);
}

fn nexthop(buf: &mut Vec<u8>, seq: u32, id: u32, g: Ipv4Addr, oif: u32) {
    let start = buf.len();
    header(
        buf,
        RTM_NEWNEXTHOP,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        seq,
    );
    // struct nhmsg: family, scope, protocol, resvd, flags
    buf.extend_from_slice(&[libc::AF_INET as u8, 0, PROTO, 0]);
    buf.extend_from_slice(&0u32.to_ne_bytes());
    put_attr(buf, NHA_ID, &id.to_ne_bytes());
    put_attr(buf, NHA_GATEWAY, &g.octets());
    put_attr(buf, NHA_OIF, &oif.to_ne_bytes());
    patch_len(buf, start);
}

/// The interface the kernel would use towards `g`.
fn dev_towards(g: Ipv4Addr) -> io::Result<String> {
    let out = Command::new("ip")
        .args(["-o", "route", "get", &g.to_string()])
        .output()?;
    let s = String::from_utf8_lossy(&out.stdout);
    let mut w = s.split_whitespace();
    while let Some(x) = w.next() {
        if x == "dev"
            && let Some(d) = w.next()
        {
            return Ok(d.to_string());
        }
    }
    Err(io::Error::other(format!(
        "no route to {g} in this namespace"
    )))
}

fn ifindex(dev: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(dev).map_err(io::Error::other)?;
    // SAFETY: c is a valid C string.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(io::Error::other(format!("no interface {dev}"))),
        i => Ok(i),
    }
}

/// Whether we run in a namespace `ip netns` made (its inode is one of
/// /run/netns/*'s). Fails closed: anything unreadable counts as no.
fn in_named_netns() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(me) = std::fs::metadata("/proc/self/ns/net") else {
        return false;
    };
    let Ok(dir) = std::fs::read_dir("/run/netns") else {
        return false;
    };
    dir.flatten().any(|e| {
        std::fs::metadata(e.path()).is_ok_and(|m| m.ino() == me.ino() && m.dev() == me.dev())
    })
}

/// The routes of protocol 186 in the main table, from the kernel's count
/// of its prefixes after the run (`ip -4 route show proto 186 | wc -l`
/// would fork and parse a million lines).
fn count_routes() -> u64 {
    let out = Command::new("ip")
        .args(["-4", "route", "show", "table", "254", "proto", "186"])
        .output();
    out.map(|o| o.stdout.iter().filter(|&&b| b == b'\n').count() as u64)
        .unwrap_or(0)
}

/// The order the routes are written in (indices 0..n).
fn arrange(kind: Order, block: usize, n: u32) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n).collect();
    match kind {
        Order::Seq => {}
        Order::Reverse => order.reverse(),
        Order::Shuffle => {
            // xorshift: a fixed, reproducible permutation.
            let mut x = 0x9e37_79b9_7f4a_7c15u64;
            let block = if block == 0 { order.len() } else { block };
            for chunk in order.chunks_mut(block.max(1)) {
                for i in (1..chunk.len()).rev() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    chunk.swap(i, (x % (i as u64 + 1)) as usize);
                }
            }
        }
        Order::Stride => {
            let n = order.len();
            let step = n.div_ceil(block.max(1)).max(1);
            order = (0..step)
                .flat_map(|k| (k..n).step_by(step))
                .map(|i| order[i])
                .collect();
        }
        Order::Bitrev => {
            let len = if block == 0 { order.len() } else { block };
            let bits = usize::BITS - 1 - len.max(2).leading_zeros();
            let block = 1usize << bits;
            let mut out = Vec::with_capacity(order.len());
            for chunk in order.chunks(block) {
                if chunk.len() < block {
                    out.extend_from_slice(chunk);
                    continue;
                }
                out.extend((0..block).map(|i| chunk[i.reverse_bits() >> (usize::BITS - bits)]));
            }
            order = out;
        }
    }
    order
}

/// One install, in the current namespace. Returns the JSON line.
fn install(a: &Args) -> io::Result<String> {
    let dev = match &a.dev {
        Some(d) => d.clone(),
        None => dev_towards(a.gateway[0])?,
    };
    let oif = ifindex(&dev)?;
    let nl = Nl::open(0)?;
    let listener = if a.listener {
        let l = Nl::open(1 << (RTNLGRP_IPV4_ROUTE - 1))?;
        bgpd::fib::attach_own_route_filter(l.0, PROTO)?;
        Some(l)
    } else {
        None
    };
    let mut rbuf = vec![0u8; 256 * 1024];
    let mut errors = 0u64;
    let step = 1u32 << (32 - a.len as u32);
    let base = u32::from(a.base);
    let order = arrange(a.order, a.block, a.routes);
    let per_gw = a.routes.div_ceil(a.gateway.len() as u32).max(1);
    let mut seq = 1u32;
    let mut buf = Vec::with_capacity(a.batch_bytes + 256);
    let (u0, s0, _) = cpu();
    let t0 = Instant::now();
    let vias: Vec<Via> = if a.nhid {
        for (i, g) in a.gateway.iter().enumerate() {
            nexthop(&mut buf, seq, 0x0100_0000 + i as u32, *g, oif);
            seq += 1;
        }
        nl.send(&buf)?;
        nl.replies(&mut rbuf, Some(seq - 1), &mut errors)?;
        buf.clear();
        (0..a.gateway.len())
            .map(|i| Via::Object(0x0100_0000 + i as u32))
            .collect()
    } else {
        a.gateway.iter().map(|g| Via::Gateway(*g)).collect()
    };
    let mut write = |order: &[u32], delete: bool, errors: &mut u64| -> io::Result<()> {
        let n = order.len();
        for (k, &i) in order.iter().enumerate() {
            let dst = Ipv4Addr::from(base.wrapping_add(i.wrapping_mul(step)));
            let last = k + 1 == n;
            let full_after = buf.len() + 96 > a.batch_bytes;
            let ack = match a.ack {
                Ack::Every => true,
                Ack::Batch => full_after || last,
                Ack::End => last,
            };
            let via = (!delete).then(|| &vias[(i / per_gw) as usize]);
            route(&mut buf, a, seq, ack, dst, via, oif);
            if full_after || last {
                nl.send(&buf)?;
                buf.clear();
                match (a.ack, last) {
                    (Ack::End, false) => nl.replies(&mut rbuf, None, errors)?,
                    _ => nl.replies(&mut rbuf, Some(seq), errors)?,
                }
                if let Some(l) = &listener {
                    l.replies(&mut rbuf, None, &mut 0)?;
                }
            }
            seq = seq.wrapping_add(1);
        }
        Ok(())
    };
    write(&order, false, &mut errors)?;
    let dt = t0.elapsed().as_secs_f64();
    let (u1, s1, rss) = cpu();
    let counted = count_routes();
    // Then, if asked, every route withdrawn (a session lost with no
    // other path), in its own order.
    let mut delete = String::new();
    if let Some(kind) = a.delete_order {
        let order = arrange(kind, a.block, a.routes);
        let (_, s2, _) = cpu();
        let t = Instant::now();
        let mut derr = 0;
        write(&order, true, &mut derr)?;
        let (_, s3, _) = cpu();
        delete = format!(
            ",\"delete_order\":\"{kind:?}\",\"delete_s\":{:.3},\"delete_sys_s\":{:.2},\"delete_errors\":{derr},\"left\":{}",
            t.elapsed().as_secs_f64(),
            s3 - s2,
            count_routes()
        );
    }
    Ok(format!(
        "{{\"routes\":{},\"gateways\":{},\"batch_bytes\":{},\"ack\":\"{:?}\",\"flags\":\"{:?}\",\"order\":\"{:?}\",\"block\":{},\"nhid\":{},\"listener\":{},\"time_s\":{:.3},\"user_s\":{:.2},\"sys_s\":{:.2},\"rss_mib\":{:.1},\"errors\":{},\"in_table\":{}{}}}",
        a.routes,
        a.gateway.len(),
        a.batch_bytes,
        a.ack,
        a.flags,
        a.order,
        a.block,
        a.nhid,
        a.listener,
        dt,
        u1 - u0,
        s1 - s0,
        rss,
        errors,
        counted,
        delete
    )
    .to_lowercase())
}

fn sh(args: &[&str]) -> io::Result<()> {
    let st = Command::new(args[0]).args(&args[1..]).status()?;
    if st.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("{} failed", args.join(" "))))
    }
}

/// Runs `argv` (this binary with --here) in a fresh namespace holding a
/// veth pair with the first gateway's /24 on it; removes it afterwards.
fn in_own_netns(argv: &[String], gw: Ipv4Addr) -> io::Result<String> {
    let ns = format!("floor{}", std::process::id());
    sh(&["ip", "netns", "add", &ns])?;
    let o = gw.octets();
    let addr = format!(
        "{}.{}.{}.{}/24",
        o[0],
        o[1],
        o[2],
        if o[3] == 254 { 1 } else { 254 }
    );
    let setup = sh(&[
        "ip", "-n", &ns, "link", "add", "fa", "type", "veth", "peer", "name", "fb",
    ])
    .and_then(|_| sh(&["ip", "-n", &ns, "addr", "add", &addr, "dev", "fa"]))
    .and_then(|_| sh(&["ip", "-n", &ns, "link", "set", "fb", "up"]))
    .and_then(|_| sh(&["ip", "-n", &ns, "link", "set", "fa", "up"]));
    let res = setup.and_then(|_| {
        let exe = std::env::current_exe()?;
        let out = Command::new("ip")
            .args(["netns", "exec", &ns])
            .arg(exe)
            .args(argv)
            .args(["--here", "--dev", "fa"])
            .stderr(std::process::Stdio::inherit())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other("the run in the namespace failed"));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    // Deleting the veth flushes its routes synchronously; then the namespace.
    let _ = sh(&["ip", "-n", &ns, "link", "del", "fa"]);
    let _ = sh(&["ip", "netns", "del", &ns]);
    res
}

/// Strips --sweep from our own arguments, for the runs it makes.
fn passthrough() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| a != "--sweep")
        .collect()
}

extern "C" fn on_signal(_: libc::c_int) {}

fn main() {
    let a = Args::parse();
    if a.gateway.is_empty() || !(8..=32).contains(&a.len) || a.batch_bytes < 128 {
        eprintln!(
            "bgpd-floor: need a --gateway, a --len of 8-32 and --batch-bytes of at least 128"
        );
        std::process::exit(2);
    }
    if a.here {
        if !in_named_netns() {
            eprintln!(
                "bgpd-floor: --here writes routes, so it runs only inside a namespace made by ip netns (this is not one); run it with ip netns exec NS, or without --here"
            );
            std::process::exit(2);
        }
        match install(&a) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("bgpd-floor: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    // SAFETY: installing a handler that does nothing: the child in the
    // namespace gets the signal too, and we still delete the namespace.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
    let base = passthrough();
    let runs: Vec<(String, Vec<&str>)> = if a.sweep {
        // Each row changes one thing from bgpd's way (ack per batch,
        // nexthop objects, 60 KiB batches, spread order).
        let bgpd = [
            "--ack", "batch", "--nhid", "--order", "stride", "--block", "32768",
        ];
        let with = |pairs: &[(&'static str, &'static str)]| -> Vec<&'static str> {
            let mut v: Vec<&str> = bgpd.to_vec();
            for (k, val) in pairs {
                match v.iter().position(|x| x == k) {
                    Some(i) if val.is_empty() => {
                        // The option, and its value if it takes one.
                        v.remove(i);
                        if v.get(i).is_some_and(|x| !x.starts_with("--")) {
                            v.remove(i);
                        }
                    }
                    Some(i) => v[i + 1] = val,
                    None if val.is_empty() => {}
                    None => v.extend([*k, *val]),
                }
            }
            v
        };
        vec![
            (
                "bgpd: ack per batch, nexthop objects, 60 KiB, spread".into(),
                with(&[]),
            ),
            (
                "ack every message (bgpd before)".into(),
                with(&[("--ack", "every")]),
            ),
            ("ack only the very last".into(), with(&[("--ack", "end")])),
            ("4 KiB batches".into(), with(&[("--batch-bytes", "4096")])),
            ("16 KiB batches".into(), with(&[("--batch-bytes", "16384")])),
            (
                "200 KiB batches".into(),
                with(&[("--batch-bytes", "204800")]),
            ),
            ("NLM_F_EXCL".into(), with(&[("--flags", "excl")])),
            (
                "gateway per route, no nexthop object".into(),
                with(&[("--nhid", "")]),
            ),
            (
                "with a route listener".into(),
                [with(&[]), vec!["--listener"]].concat(),
            ),
            (
                "address order".into(),
                with(&[("--order", "seq"), ("--block", "")]),
            ),
            (
                "descending order (bgpd before)".into(),
                with(&[("--order", "reverse"), ("--block", "")]),
            ),
            (
                "shuffled".into(),
                with(&[("--order", "shuffle"), ("--block", "")]),
            ),
            (
                "withdraw all, descending".into(),
                with(&[("--delete-order", "reverse")]),
            ),
            (
                "withdraw all, spread (bgpd)".into(),
                with(&[("--delete-order", "stride")]),
            ),
            ("bgpd again".into(), with(&[])),
        ]
    } else {
        vec![("run".into(), vec![])]
    };
    if a.sweep {
        println!("| run | time s | user s | sys s | errors | in table | withdraw s | left |");
        println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    }
    let mut failed = false;
    for (name, extra) in runs {
        let mut argv = base.clone();
        argv.extend(extra.iter().map(|s| s.to_string()));
        match in_own_netns(&argv, a.gateway[0]) {
            Ok(line) if a.sweep => {
                let f = |k: &str| {
                    line.split(&format!("\"{k}\":"))
                        .nth(1)
                        .and_then(|r| r.split([',', '}']).next())
                        .unwrap_or("?")
                        .to_string()
                };
                let d = |k: &str| {
                    if line.contains("delete_s") {
                        f(k)
                    } else {
                        "-".into()
                    }
                };
                println!(
                    "| {name} | {} | {} | {} | {} | {} | {} | {} |",
                    f("time_s"),
                    f("user_s"),
                    f("sys_s"),
                    f("errors"),
                    f("in_table"),
                    d("delete_s"),
                    d("left")
                );
                eprintln!("{line}");
            }
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("bgpd-floor: {name}: {e}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
