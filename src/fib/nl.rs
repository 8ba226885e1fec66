//! The batched route writer: hand-encoded RTM_NEWROUTE / RTM_DELROUTE
//! messages (rtnetlink(7), kernel Documentation/userspace-api/netlink/
//! intro.rst), many per `sendmsg`, each with its own sequence number.
//!
//! Only the last message of a batch asks for an ack (NLM_F_ACK): the kernel
//! answers a failed request with an error message whatever its flags
//! (netlink_rcv_skb), so a refusal still maps back to its prefix by its
//! sequence number, and it handles a batch's messages in order, so the last
//! one's ack means every message before it without an error succeeded.
//! A success ack per route cost the kernel a quarter of the install time
//! (benches/floor.rs, docs/performance.md "The kernel's floor").
//!
//! rtnetlink processes a request synchronously inside `sendmsg`, so when the
//! send returns, all answers of the batch are queued on the socket. The
//! receive buffer is raised (SO_RCVBUFFORCE) so a batch's answers always
//! fit, and NETLINK_CAP_ACK keeps error acks short; NETLINK_EXT_ACK adds
//! the kernel's error text.
//!
//! Because the kernel does that work in the sender's thread, the socket
//! belongs to a thread of the [`Writer`]'s own: the FIB task encodes a
//! list of operations and queues its batches ([`Writer::submit`]), then
//! plans the next list while the kernel installs, and collects the
//! outcomes later ([`Writer::collect`]). At 1M routes that took bgpd's own
//! work (about 0.45 s of CPU) off the install's critical path.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;

use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use super::state::{KernelNexthop, Lookup, Op, Outcome};
use super::view::{Hop, KernelRoute};

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_MULTIPATH: u16 = 9;
const RTA_TABLE: u16 = 15;
const RTA_NH_ID: u16 = 30;
// include/uapi/linux/rtnetlink.h and nexthop.h
const RTM_NEWNEXTHOP: u16 = 104;
const RTM_DELNEXTHOP: u16 = 105;
const RTM_GETNEXTHOP: u16 = 106;
const NHA_ID: u16 = 1;
const NHA_GROUP: u16 = 2;
const NHA_OIF: u16 = 5;
const NHA_GATEWAY: u16 = 6;
const RTN_UNICAST: u8 = 1;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RT_SCOPE_NOWHERE: u8 = 255;
const NLMSGERR_ATTR_MSG: u16 = 1;

/// Bytes per `sendmsg`: well under the default socket send buffer.
pub const BATCH_BYTES: usize = 60 * 1024;

/// Batches a thread's queue may hold: about four chunks of the FIB task's
/// (src/fib/task.rs CHUNK), so handing one over never waits in practice.
const QUEUED_BATCHES: usize = 160;

/// Writes routes: the caller encodes, a thread of its own owns the socket
/// and does the `sendmsg`/ack exchange, so the caller plans and encodes
/// the next operations while the kernel works on the last ones (the
/// kernel does a route request inside the sender's `sendmsg`: on one
/// thread, bgpd's own work and the kernel's would add up).
///
/// [`Writer::submit`] hands over a list of operations and returns at once;
/// [`Writer::collect`] waits for the outcomes of the oldest list not yet
/// collected. Lists reach the kernel in the order submitted, each batch
/// after the previous one's answers are in.
pub struct Writer {
    seq: u32,
    protocol: u8,
    table: u32,
    metric: u32,
    tx: Option<std::sync::mpsc::SyncSender<Batch>>,
    rx: std::sync::mpsc::Receiver<Vec<Outcome>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// A submitted list: how many batches and operations it became.
#[derive(Debug)]
#[must_use = "collect the outcomes"]
pub struct Ticket {
    batches: usize,
    ops: usize,
}

struct Batch {
    buf: Vec<u8>,
    base: u32,
    n: usize,
}

/// The thread's half: the socket and its receive buffer.
struct Exchanger {
    sock: Socket,
    rbuf: Vec<u8>,
}

impl Writer {
    pub fn new(protocol: u8, table: u32, metric: u32) -> io::Result<Writer> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        set_rcvbuf_force(sock.as_raw_fd(), 32 << 20);
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_ext_ack(true);
        let mut ex = Exchanger {
            sock,
            rbuf: vec![0; 256 * 1024],
        };
        let (tx, batches) = std::sync::mpsc::sync_channel::<Batch>(QUEUED_BATCHES);
        let (done, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("bgpd-fib-writer".into())
            .spawn(move || {
                for b in batches {
                    if done.send(ex.exchange(&b.buf, b.base, b.n)).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Writer {
            seq: 1,
            protocol,
            table,
            metric,
            tx: Some(tx),
            rx,
            thread: Some(thread),
        })
    }

    /// Encodes the operations into batches and queues them for the
    /// kernel; returns at once (unless the thread's queue is full). `cx`
    /// gives the hops and objects the operations name.
    pub fn submit(&mut self, ops: &[Op], cx: &impl Lookup) -> Ticket {
        let mut t = Ticket {
            batches: 0,
            ops: ops.len(),
        };
        let mut start = 0;
        while start < ops.len() {
            let mut buf = Vec::with_capacity(BATCH_BYTES + 4096);
            let base = self.seq;
            let mut end = start;
            let mut prev = None;
            while end < ops.len() && buf.len() < BATCH_BYTES {
                let seq = base.wrapping_add((end - start) as u32);
                // The ack is asked of the batch's last message only.
                if let Some(at) = prev.replace(buf.len()) {
                    clear_ack(&mut buf[at..]);
                }
                encode(
                    &mut buf,
                    &ops[end],
                    cx,
                    seq,
                    self.protocol,
                    self.table,
                    self.metric,
                );
                end += 1;
            }
            self.seq = base.wrapping_add((end - start) as u32);
            let b = Batch {
                buf,
                base,
                n: end - start,
            };
            if let Some(Ok(())) = self.tx.as_ref().map(|tx| tx.send(b)) {
                t.batches += 1;
            } else {
                // The thread is gone (it cannot be, short of a panic):
                // the rest stays unknown (collect) until the next check.
                tracing::error!(
                    routes = ops.len() - start,
                    "the FIB writer thread is gone; routes not sent"
                );
                break;
            }
            start = end;
        }
        t
    }

    /// The outcomes of the oldest submitted list not yet collected, one
    /// per operation in order; waits for the kernel to finish it.
    pub fn collect(&mut self, t: Ticket) -> Vec<Outcome> {
        let mut out = Vec::with_capacity(t.ops);
        for _ in 0..t.batches {
            match self.rx.recv() {
                Ok(outcomes) => out.extend(outcomes),
                Err(_) => break,
            }
        }
        out.resize(t.ops, Outcome::Unknown);
        out
    }

    /// Runs the operations and returns one outcome per operation in
    /// order (nothing else may be in flight).
    pub fn run(&mut self, ops: &[Op], cx: &impl Lookup) -> Vec<Outcome> {
        let t = self.submit(ops, cx);
        self.collect(t)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has sent what it
        // holds.
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Exchanger {
    /// Sends the batch and reads its answers: an error for any message
    /// that failed, then the last message's ack (or error). Once that is
    /// in, every message not answered succeeded; if it never comes (acks
    /// lost, ENOBUFS), they stay unknown until the next check.
    fn exchange(&mut self, buf: &[u8], base: u32, n: usize) -> Vec<Outcome> {
        let mut res = vec![Outcome::Unknown; n];
        if let Err(e) = self.sock.send(buf, 0) {
            let code = e.raw_os_error().unwrap_or(libc::EIO);
            tracing::warn!(error = %e, "netlink send failed for a batch of {n} routes");
            return vec![Outcome::Err(code, format!("send: {e}")); n];
        }
        while res[n - 1] == Outcome::Unknown {
            let len = match self.sock.recv(&mut &mut self.rbuf[..], libc::MSG_DONTWAIT) {
                Ok(l) => l,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => {
                    // EAGAIN with acks missing, or ENOBUFS: acks were lost.
                    let missing = res.iter().filter(|r| **r == Outcome::Unknown).count();
                    tracing::warn!(error = %e, missing, "netlink acks lost");
                    break;
                }
            };
            let mut off = 0;
            while off + 16 <= len {
                let b = &self.rbuf[off..len];
                let mlen = u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize;
                if mlen < 16 || mlen > b.len() {
                    break;
                }
                let mtype = u16::from_ne_bytes(b[4..6].try_into().unwrap());
                let flags = u16::from_ne_bytes(b[6..8].try_into().unwrap());
                let seq = u32::from_ne_bytes(b[8..12].try_into().unwrap());
                let i = seq.wrapping_sub(base) as usize;
                if mtype == NLMSG_ERROR && mlen >= 20 && i < n && res[i] == Outcome::Unknown {
                    let err = -i32::from_ne_bytes(b[16..20].try_into().unwrap());
                    res[i] = if err == 0 {
                        Outcome::Ok
                    } else {
                        Outcome::Err(err, ext_ack_msg(&b[..mlen], flags))
                    };
                }
                off += align4(mlen);
            }
        }
        if res[n - 1] != Outcome::Unknown {
            for r in &mut res {
                if *r == Outcome::Unknown {
                    *r = Outcome::Ok;
                }
            }
        }
        res
    }
}

/// Which protocols' routes a [`Dump`] reports.
#[derive(Clone, Copy, Debug)]
pub enum Protocols {
    /// Only this one (filtered by the kernel).
    Only(u8),
    /// All but this one (skipped before parsing).
    Except(u8),
}

/// A route dump (RTM_GETROUTE with NLM_F_DUMP) of one family in one table,
/// read synchronously one buffer at a time, so the caller processes it as a
/// stream: no more than one buffer of routes is ever held. With
/// NETLINK_GET_STRICT_CHK the kernel filters by table and protocol
/// (net/ipv4/fib_frontend.c `ip_valid_fib_dump_req`). The kernel fills the
/// buffer inside `recvmsg` (netlink_dump), so a read does not wait.
pub struct Dump {
    sock: Socket,
    buf: Vec<u8>,
    table: u32,
    protocols: Protocols,
    done: bool,
}

const DUMP_SEQ: u32 = 1;

impl Dump {
    pub fn routes(family: u8, table: u32, protocols: Protocols) -> io::Result<Dump> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        sock.set_netlink_get_strict_chk(true)?;
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_ext_ack(true);
        set_rcv_timeout(sock.as_raw_fd(), 10);
        let mut req = Vec::with_capacity(64);
        req.extend_from_slice(&0u32.to_ne_bytes());
        req.extend_from_slice(&RTM_GETROUTE.to_ne_bytes());
        req.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req.extend_from_slice(&DUMP_SEQ.to_ne_bytes());
        req.extend_from_slice(&0u32.to_ne_bytes());
        let proto = match protocols {
            Protocols::Only(p) => p,
            Protocols::Except(_) => 0,
        };
        let table8 = if table < 256 { table as u8 } else { 0 };
        // struct rtmsg: family, dst_len, src_len, tos, table, protocol,
        // scope, type, flags.
        req.extend_from_slice(&[family, 0, 0, 0, table8, proto, 0, 0]);
        req.extend_from_slice(&0u32.to_ne_bytes());
        put_attr(&mut req, RTA_TABLE, &table.to_ne_bytes());
        let len = req.len() as u32;
        req[0..4].copy_from_slice(&len.to_ne_bytes());
        sock.send(&req, 0)?;
        Ok(Dump {
            sock,
            buf: vec![0; 64 * 1024],
            table,
            protocols,
            done: false,
        })
    }

    /// Reads the next buffer of the dump and calls `f` for each route in it;
    /// `Ok(false)` once the dump is complete.
    pub fn next(&mut self, mut f: impl FnMut(KernelRoute)) -> io::Result<bool> {
        if self.done {
            return Ok(false);
        }
        let len = loop {
            match self.sock.recv(&mut &mut self.buf[..], 0) {
                Ok(l) => break l,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(e),
            }
        };
        let mut off = 0;
        while off + 16 <= len {
            let b = &self.buf[off..len];
            let mlen = u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize;
            if mlen < 16 || mlen > b.len() {
                break;
            }
            let mtype = u16::from_ne_bytes(b[4..6].try_into().unwrap());
            let seq = u32::from_ne_bytes(b[8..12].try_into().unwrap());
            off += align4(mlen);
            if seq != DUMP_SEQ {
                continue;
            }
            let body = &b[16..mlen];
            match mtype {
                NLMSG_DONE | NLMSG_ERROR => {
                    self.done = true;
                    let err = body
                        .get(..4)
                        .map_or(0, |e| i32::from_ne_bytes(e.try_into().unwrap()));
                    if err < 0 {
                        if mtype == NLMSG_ERROR {
                            let flags = u16::from_ne_bytes(b[6..8].try_into().unwrap());
                            let msg = ext_ack_msg(&b[..mlen], flags);
                            tracing::debug!(errno = -err, kernel = %msg, "route dump refused");
                        }
                        return Err(io::Error::from_raw_os_error(-err));
                    }
                    return Ok(false);
                }
                RTM_NEWROUTE => {
                    if let Protocols::Except(p) = self.protocols
                        && body.get(5) == Some(&p)
                    {
                        continue;
                    }
                    if let Some(r) = KernelRoute::parse(body)
                        && r.table == self.table
                        && match self.protocols {
                            Protocols::Only(p) => r.protocol == p,
                            Protocols::Except(p) => r.protocol != p,
                        }
                    {
                        f(r);
                    }
                }
                _ => {}
            }
        }
        Ok(true)
    }
}

/// SO_RCVTIMEO: a dump that stops answering fails instead of hanging.
fn set_rcv_timeout(fd: i32, secs: i64) {
    let tv = libc::timeval {
        tv_sec: secs,
        tv_usec: 0,
    };
    // SAFETY: setsockopt with a valid fd and a timeval option value.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const libc::timeval as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
}

/// The NLMSGERR_ATTR_MSG string of an error ack, if present.
fn ext_ack_msg(m: &[u8], flags: u16) -> String {
    if flags & NLM_F_ACK_TLVS == 0 || m.len() < 36 {
        return String::new();
    }
    // nlmsghdr + error + the request's nlmsghdr (payload capped).
    let mut off = 36;
    while off + 4 <= m.len() {
        let alen = u16::from_ne_bytes([m[off], m[off + 1]]) as usize;
        let atype = u16::from_ne_bytes([m[off + 2], m[off + 3]]) & 0x3fff;
        if alen < 4 || off + alen > m.len() {
            break;
        }
        if atype == NLMSGERR_ATTR_MSG {
            let s = &m[off + 4..off + alen];
            let s = s.split(|c| *c == 0).next().unwrap_or_default();
            return String::from_utf8_lossy(s).into_owned();
        }
        off += align4(alen);
    }
    String::new()
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn put_attr(buf: &mut Vec<u8>, kind: u16, data: &[u8]) {
    buf.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(align4(buf.len()), 0);
}

/// An address's bytes, without allocating.
struct AddrBytes([u8; 16], usize);

impl std::ops::Deref for AddrBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0[..self.1]
    }
}

fn addr_bytes(a: &IpAddr) -> AddrBytes {
    let mut b = [0; 16];
    match a {
        IpAddr::V4(v) => {
            b[..4].copy_from_slice(&v.octets());
            AddrBytes(b, 4)
        }
        IpAddr::V6(v) => AddrBytes(v.octets(), 16),
    }
}

/// Appends one message to `buf`: a route (through its hop set's group
/// when `cx` gives one, else with its hops) or a nexthop object.
pub fn encode(
    buf: &mut Vec<u8>,
    op: &Op,
    cx: &impl Lookup,
    seq: u32,
    protocol: u8,
    table: u32,
    metric: u32,
) {
    let start = buf.len();
    let Some(prefix) = op.prefix() else {
        encode_object(buf, op, cx, seq, protocol);
        let len = (buf.len() - start) as u32;
        buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
        return;
    };
    let (mtype, flags, scope, metric) = match op {
        Op::Delete { metric, .. } => (
            RTM_DELROUTE,
            NLM_F_REQUEST | NLM_F_ACK,
            RT_SCOPE_NOWHERE,
            *metric,
        ),
        _ => (
            RTM_NEWROUTE,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
            RT_SCOPE_UNIVERSE,
            metric,
        ),
    };
    header(buf, mtype, flags, seq);
    // struct rtmsg
    let family = if prefix.addr().is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    } as u8;
    let table8 = if table < 256 { table as u8 } else { 0 };
    buf.extend_from_slice(&[
        family,
        prefix.prefix_len(),
        0,
        0,
        table8,
        protocol,
        scope,
        RTN_UNICAST,
    ]);
    buf.extend_from_slice(&0u32.to_ne_bytes());
    put_attr(buf, RTA_DST, &addr_bytes(&prefix.network()));
    put_attr(buf, RTA_TABLE, &table.to_ne_bytes());
    put_attr(buf, RTA_PRIORITY, &metric.to_ne_bytes());
    if let Op::Replace { hops: id, .. } = op {
        if let Some(nh) = cx.group_id(*id) {
            put_attr(buf, RTA_NH_ID, &nh.to_ne_bytes());
        } else if let [h] = cx.hops(*id) {
            put_attr(buf, RTA_GATEWAY, &addr_bytes(&h.gateway));
            put_attr(buf, RTA_OIF, &h.ifindex.to_ne_bytes());
        } else {
            // RTA_MULTIPATH: a list of struct rtnexthop, each followed by
            // its RTA_GATEWAY, written in place.
            let at = buf.len();
            buf.extend_from_slice(&[0, 0]);
            buf.extend_from_slice(&RTA_MULTIPATH.to_ne_bytes());
            for h in cx.hops(*id) {
                let g = addr_bytes(&h.gateway);
                let len = 8 + 4 + g.len();
                buf.extend_from_slice(&(len as u16).to_ne_bytes());
                buf.push(0); // rtnh_flags
                buf.push(0); // rtnh_hops: weight 1
                buf.extend_from_slice(&(h.ifindex as i32).to_ne_bytes());
                put_attr(buf, RTA_GATEWAY, &g);
            }
            let alen = (buf.len() - at) as u16;
            buf[at..at + 2].copy_from_slice(&alen.to_ne_bytes());
        }
    }
    let len = (buf.len() - start) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

/// Clears NLM_F_ACK in the header of the message `msg` starts with.
fn clear_ack(msg: &mut [u8]) {
    let f = u16::from_ne_bytes([msg[6], msg[7]]) & !NLM_F_ACK;
    msg[6..8].copy_from_slice(&f.to_ne_bytes());
}

/// struct nlmsghdr; the length is patched by the caller.
fn header(buf: &mut Vec<u8>, mtype: u16, flags: u16, seq: u32) {
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&mtype.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
}

/// A nexthop object message (include/uapi/linux/nexthop.h): struct nhmsg
/// { family, scope, protocol, resvd, flags: u32 } and NHA_* attributes.
fn encode_object(buf: &mut Vec<u8>, op: &Op, cx: &impl Lookup, seq: u32, protocol: u8) {
    let new = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE;
    match op {
        Op::NewHop { id, hop } => {
            header(buf, RTM_NEWNEXTHOP, new | NLM_F_EXCL, seq);
            let family = if hop.gateway.is_ipv4() {
                libc::AF_INET
            } else {
                libc::AF_INET6
            } as u8;
            buf.extend_from_slice(&[family, 0, protocol, 0, 0, 0, 0, 0]);
            put_attr(buf, NHA_ID, &id.to_ne_bytes());
            put_attr(buf, NHA_OIF, &hop.ifindex.to_ne_bytes());
            put_attr(buf, NHA_GATEWAY, &addr_bytes(&hop.gateway));
        }
        Op::NewGroup { id, hops, replace } => {
            let f = if *replace { NLM_F_REPLACE } else { NLM_F_EXCL };
            header(buf, RTM_NEWNEXTHOP, new | f, seq);
            buf.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, protocol, 0, 0, 0, 0, 0]);
            put_attr(buf, NHA_ID, &id.to_ne_bytes());
            // struct nexthop_grp { id: u32, weight: u8 (weight - 1),
            // weight_high: u8, resvd2: u16 } per member.
            let mut g = Vec::with_capacity(8 * cx.hops(*hops).len());
            for h in cx.hops(*hops) {
                g.extend_from_slice(&cx.hop_id(h).unwrap_or(0).to_ne_bytes());
                g.extend_from_slice(&[0, 0, 0, 0]);
            }
            put_attr(buf, NHA_GROUP, &g);
        }
        Op::DelObject { id } => {
            header(buf, RTM_DELNEXTHOP, NLM_F_REQUEST | NLM_F_ACK, seq);
            buf.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0, 0, 0, 0, 0]);
            put_attr(buf, NHA_ID, &id.to_ne_bytes());
        }
        Op::Replace { .. } | Op::Delete { .. } => unreachable!("a route operation"),
    }
}

/// Every nexthop object of the namespace (RTM_GETNEXTHOP dump), of every
/// protocol. `Err` with EOPNOTSUPP (or EINVAL) when the kernel has none
/// (before Linux 5.3).
pub fn dump_nexthops() -> io::Result<Vec<KernelNexthop>> {
    let mut sock = Socket::new(NETLINK_ROUTE)?;
    sock.bind_auto()?;
    sock.connect(&SocketAddr::new(0, 0))?;
    let _ = sock.set_netlink_get_strict_chk(true);
    let _ = sock.set_cap_ack(true);
    let _ = sock.set_ext_ack(true);
    set_rcv_timeout(sock.as_raw_fd(), 10);
    let mut req = Vec::with_capacity(32);
    header(
        &mut req,
        RTM_GETNEXTHOP,
        NLM_F_REQUEST | NLM_F_DUMP,
        DUMP_SEQ,
    );
    req.extend_from_slice(&[libc::AF_UNSPEC as u8, 0, 0, 0, 0, 0, 0, 0]);
    let len = req.len() as u32;
    req[0..4].copy_from_slice(&len.to_ne_bytes());
    sock.send(&req, 0)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let len = loop {
            match sock.recv(&mut &mut buf[..], 0) {
                Ok(l) => break l,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(e),
            }
        };
        let mut off = 0;
        while off + 16 <= len {
            let b = &buf[off..len];
            let mlen = u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize;
            if mlen < 16 || mlen > b.len() {
                break;
            }
            let mtype = u16::from_ne_bytes(b[4..6].try_into().unwrap());
            off += align4(mlen);
            let body = &b[16..mlen];
            match mtype {
                NLMSG_DONE => return Ok(out),
                NLMSG_ERROR => {
                    let err = body
                        .get(..4)
                        .map_or(0, |e| i32::from_ne_bytes(e.try_into().unwrap()));
                    if err < 0 {
                        return Err(io::Error::from_raw_os_error(-err));
                    }
                    return Ok(out);
                }
                RTM_NEWNEXTHOP => {
                    if let Some(n) = parse_nexthop(body) {
                        out.push(n);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The payload of an RTM_NEWNEXTHOP message: a gateway hop or a group;
/// `None` for other kinds (blackhole, device-only, FDB) and bad input.
pub fn parse_nexthop(m: &[u8]) -> Option<KernelNexthop> {
    if m.len() < 8 {
        return None;
    }
    let protocol = m[2];
    let (mut id, mut oif, mut gw, mut group) = (None, None, None, Vec::new());
    let mut off = 8;
    while off + 4 <= m.len() {
        let alen = usize::from(u16::from_ne_bytes([m[off], m[off + 1]]));
        let atype = u16::from_ne_bytes([m[off + 2], m[off + 3]]) & 0x3fff;
        if alen < 4 || off + alen > m.len() {
            break;
        }
        let data = &m[off + 4..off + alen];
        match atype {
            NHA_ID if data.len() == 4 => id = Some(u32::from_ne_bytes(data.try_into().ok()?)),
            NHA_OIF if data.len() == 4 => oif = Some(u32::from_ne_bytes(data.try_into().ok()?)),
            NHA_GATEWAY => {
                gw = match data.len() {
                    4 => Some(IpAddr::from(<[u8; 4]>::try_from(data).ok()?)),
                    16 => Some(IpAddr::from(<[u8; 16]>::try_from(data).ok()?)),
                    _ => None,
                }
            }
            NHA_GROUP => {
                for e in data.chunks_exact(8) {
                    group.push(u32::from_ne_bytes(e[0..4].try_into().ok()?));
                }
            }
            _ => {}
        }
        off += align4(alen);
    }
    let id = id?;
    let hop = match (gw, oif) {
        (Some(gateway), Some(ifindex)) => Some(Hop { gateway, ifindex }),
        _ => None,
    };
    if hop.is_none() && group.is_empty() {
        return None;
    }
    Some(KernelNexthop {
        id,
        protocol,
        hop,
        group,
    })
}

/// Raises a socket's receive buffer past `net.core.rmem_max` when root
/// (SO_RCVBUFFORCE), else as far as allowed (SO_RCVBUF).
pub fn set_rcvbuf_force(fd: i32, bytes: i32) {
    let v = bytes;
    // SAFETY: setsockopt with a valid fd and an int-sized option value.
    unsafe {
        let p = &v as *const i32 as *const libc::c_void;
        let l = std::mem::size_of::<i32>() as libc::socklen_t;
        if libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, p, l) != 0 {
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, p, l);
        }
    }
}

/// Attaches a classic BPF filter (Documentation/networking/filter.rst) to
/// the event socket that drops RTM_NEWROUTE/RTM_DELROUTE notifications of
/// bgpd's own protocol in the kernel, before they are queued: installing a
/// million routes must not flood (and overflow) the monitor with echoes of
/// our own writes. Drift on our routes is found by the periodic check.
pub fn attach_own_route_filter(fd: i32, protocol: u8) -> io::Result<()> {
    // BPF loads are big-endian; netlink headers are host-endian.
    let t = |x: u16| u32::from(u16::from_be_bytes(x.to_ne_bytes()));
    let ins = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    const LD_H_ABS: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
    const LD_B_ABS: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
    const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let prog = [
        ins(LD_H_ABS, 0, 0, 4),              // nlmsg_type
        ins(JEQ, 1, 0, t(RTM_NEWROUTE)),     // -> 3
        ins(JEQ, 0, 3, t(RTM_DELROUTE)),     // -> 3, else accept
        ins(LD_B_ABS, 0, 0, 16 + 5),         // rtmsg.rtm_protocol
        ins(JEQ, 0, 1, u32::from(protocol)), // ours -> drop
        ins(RET, 0, 0, 0),                   // drop
        ins(RET, 0, 0, 0xffff_ffff),         // accept
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `prog`, alive for the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            &fprog as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::Parseable;
    use netlink_packet_route::route::RouteMessage;

    /// The hops of every set, and the group of every set.
    struct Cx(Vec<Hop>, Option<u32>);

    impl Lookup for Cx {
        fn hops(&self, _: u32) -> &[Hop] {
            &self.0
        }
        fn group_id(&self, _: u32) -> Option<u32> {
            self.1
        }
        fn hop_id(&self, h: &Hop) -> Option<u32> {
            self.0.iter().position(|x| x == h).map(|i| 100 + i as u32)
        }
    }

    fn hop(g: &str, ifindex: u32) -> Hop {
        Hop {
            gateway: g.parse().unwrap(),
            ifindex,
        }
    }

    /// Both parsers of a route message (the body after its nlmsghdr).
    fn parse_both(msg: &[u8]) -> (Option<KernelRoute>, Option<KernelRoute>) {
        let body = &msg[16..];
        let m = RouteMessage::parse(body).expect("netlink-packet-route parses it");
        (KernelRoute::parse(body), KernelRoute::from_message(&m))
    }

    /// 10.1.0.0/28 via 10.0.0.2 on ifindex 2, table 254, metric 20.
    fn one_hop_route() -> Vec<u8> {
        let mut b = Vec::new();
        let op = Op::Replace {
            prefix: "10.1.0.0/28".parse().unwrap(),
            hops: 1,
        };
        let cx = Cx(vec![hop("10.0.0.2", 2)], None);
        encode(&mut b, &op, &cx, 7, 186, 254, 20);
        b
    }

    #[test]
    fn encodes_single_and_multipath() {
        let b = one_hop_route();
        // nlmsghdr 16 + rtmsg 12 + DST 8 + TABLE 8 + PRIORITY 8 + GW 8 + OIF 8
        assert_eq!(b.len(), 68);
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), 68);
        assert_eq!(b[16..24], [2, 28, 0, 0, 254, 186, 0, 1]);
        let (raw, parsed) = parse_both(&b);
        let r = raw.expect("a route");
        assert_eq!(Some(&r), parsed.as_ref());
        assert_eq!((r.table, r.protocol, r.metric), (254, 186, 20));
        assert_eq!(r.gateway_hops(), vec![hop("10.0.0.2", 2)]);

        let mut b = Vec::new();
        let op = Op::Replace {
            prefix: "2001:db8::/64".parse().unwrap(),
            hops: 2,
        };
        let hops = [hop("fe80::1", 2), hop("fe80::2", 3)];
        encode(&mut b, &op, &Cx(hops.to_vec(), None), 8, 186, 1000, 20);
        // dst 20, table 8, prio 8, multipath 4 + 2 * (8 + 20)
        assert_eq!(b.len(), 16 + 12 + 20 + 8 + 8 + 60);
        assert_eq!(b[20], 0, "table > 255 goes in RTA_TABLE only");
        let (raw, parsed) = parse_both(&b);
        let r = raw.expect("a route");
        assert_eq!(Some(&r), parsed.as_ref());
        assert_eq!(
            (r.prefix, r.table),
            ("2001:db8::/64".parse().unwrap(), 1000)
        );
        assert_eq!(r.gateway_hops(), hops.to_vec());

        let mut b = Vec::new();
        let op = Op::Delete {
            prefix: "0.0.0.0/0".parse().unwrap(),
            metric: 7,
        };
        encode(&mut b, &op, &super::super::state::NoLookup, 9, 186, 254, 20);
        let (raw, parsed) = parse_both(&b);
        assert_eq!(raw, parsed);
        assert_eq!(raw.map(|r| (r.metric, r.hops.len())), Some((7, 0)));
    }

    #[test]
    fn raw_parser_skips_cloned_and_odd_routes() {
        let b = one_hop_route();
        let mut cloned = b.clone();
        cloned[24..28].copy_from_slice(&0x200u32.to_ne_bytes());
        let (raw, parsed) = parse_both(&cloned);
        assert_eq!((raw, parsed), (None, None));
        // Truncated input is no route, and no panic.
        for n in 0..b.len() - 16 {
            let _ = KernelRoute::parse(&b[16..16 + n]);
        }
        assert_eq!(KernelRoute::parse(&b[16..20]), None);
    }

    #[test]
    fn encodes_routes_through_groups_and_the_objects() {
        let hops = vec![hop("10.0.0.2", 2), hop("10.0.0.3", 2)];
        let cx = Cx(hops.clone(), Some(0xBA00_0007));
        let mut b = Vec::new();
        let op = Op::Replace {
            prefix: "10.1.0.0/28".parse().unwrap(),
            hops: 1,
        };
        encode(&mut b, &op, &cx, 7, 186, 254, 20);
        let (raw, parsed) = parse_both(&b);
        let r = raw.expect("a route");
        assert_eq!(Some(&r), parsed.as_ref());
        assert_eq!(r.nh_id, Some(0xBA00_0007));
        assert!(r.hops.is_empty(), "no hops of its own");

        let mut b = Vec::new();
        let op = Op::NewHop {
            id: 0xBA00_0001,
            hop: hops[1],
        };
        encode(&mut b, &op, &cx, 8, 186, 254, 20);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), RTM_NEWNEXTHOP);
        let flags = u16::from_ne_bytes([b[6], b[7]]);
        assert_eq!(flags & NLM_F_EXCL, NLM_F_EXCL, "a new hop never replaces");
        let n = parse_nexthop(&b[16..]).expect("a hop object");
        assert_eq!((n.id, n.protocol, n.hop), (0xBA00_0001, 186, Some(hops[1])));

        let mut b = Vec::new();
        let op = Op::NewGroup {
            id: 0xBA00_0007,
            hops: 1,
            replace: true,
        };
        encode(&mut b, &op, &cx, 9, 186, 254, 20);
        let flags = u16::from_ne_bytes([b[6], b[7]]);
        assert_eq!(flags & (NLM_F_REPLACE | NLM_F_EXCL), NLM_F_REPLACE);
        let n = parse_nexthop(&b[16..]).expect("a group");
        assert_eq!((n.id, n.hop, n.group), (0xBA00_0007, None, vec![100, 101]));

        let mut b = Vec::new();
        encode(&mut b, &Op::DelObject { id: 5 }, &cx, 10, 186, 254, 20);
        assert_eq!(u16::from_ne_bytes([b[4], b[5]]), RTM_DELNEXTHOP);
        assert_eq!(
            u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize,
            b.len()
        );
        // Truncated input is no object, and no panic.
        for n in 0..b.len() - 16 {
            let _ = parse_nexthop(&b[16..16 + n]);
        }
    }
}
