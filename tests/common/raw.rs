//! A raw BGP speaker for hostile tests: plain blocking sockets opened
//! inside a lab's network namespace, hand-built messages, and a reader
//! that frames what bgpd sends.
//!
//! Sockets are created on a short-lived thread that first joins the
//! namespace (`setns` changes only the calling thread's namespace); a
//! socket stays in the namespace it was created in, so the test thread
//! uses it afterwards. Nothing runs in the root namespace.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

pub const MARKER: [u8; 16] = [0xff; 16];

pub const OPEN: u8 = 1;
pub const UPDATE: u8 = 2;
pub const NOTIFICATION: u8 = 3;
pub const KEEPALIVE: u8 = 4;
pub const ROUTE_REFRESH: u8 = 5;

/// Runs `f` on a thread inside network namespace `ns`.
pub fn in_ns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns on a valid namespace fd; it changes only this
        // thread, which ends when `f` returns.
        let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// How to open a connection.
#[derive(Clone, Debug)]
pub struct ConnectOpts {
    /// IP TTL of the outgoing packets (SYN included).
    pub ttl: Option<u32>,
    /// TCP-MD5 key for the remote address.
    pub md5: Option<String>,
    /// Local address to bind before connecting.
    pub source: Option<SocketAddr>,
    pub timeout: Duration,
}

impl Default for ConnectOpts {
    fn default() -> Self {
        ConnectOpts {
            ttl: None,
            md5: None,
            source: None,
            timeout: Duration::from_secs(3),
        }
    }
}

/// Connects to `to` from inside `ns`.
pub fn connect(ns: &str, to: SocketAddr, opts: ConnectOpts) -> std::io::Result<TcpStream> {
    in_ns(ns, move || {
        let s = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))?;
        if let Some(ttl) = opts.ttl {
            s.set_ttl_v4(ttl)?;
        }
        if let Some(key) = &opts.md5 {
            set_md5(&s, to, key.as_bytes())?;
        }
        if let Some(src) = opts.source {
            s.bind(&SockAddr::from(src))?;
        }
        s.connect_timeout(&SockAddr::from(to), opts.timeout)?;
        let t: TcpStream = s.into();
        t.set_nodelay(true)?;
        Ok(t)
    })
}

/// A listener inside `ns`.
pub fn listen(ns: &str, at: SocketAddr) -> std::io::Result<TcpListener> {
    in_ns(ns, move || TcpListener::bind(at))
}

/// TCP_MD5SIG for one peer address (struct tcp_md5sig of linux/tcp.h).
fn set_md5(s: &Socket, peer: SocketAddr, key: &[u8]) -> std::io::Result<()> {
    #[repr(C)]
    struct TcpMd5Sig {
        addr: libc::sockaddr_storage,
        flags: u8,
        prefixlen: u8,
        keylen: u16,
        ifindex: i32,
        key: [u8; 80],
    }
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    let sa = SockAddr::from(peer);
    // SAFETY: the storage is large enough for any socket address.
    unsafe {
        std::ptr::copy_nonoverlapping(
            sa.as_ptr() as *const u8,
            &mut sig.addr as *mut _ as *mut u8,
            sa.len() as usize,
        );
    }
    sig.keylen = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    // SAFETY: a valid fd and a correctly sized option value.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_MD5SIG,
            &sig as *const _ as *const libc::c_void,
            std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A whole message: marker, length, type, body.
pub fn msg(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = MARKER.to_vec();
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

pub fn keepalive() -> Vec<u8> {
    msg(KEEPALIVE, &[])
}

/// An OPEN: version 4, 2-octet AS field (AS_TRANS above 65535), hold time,
/// identifier, and one Capabilities optional parameter holding `caps`
/// (already encoded capability TLVs). Four-octet AS and multiprotocol
/// IPv4 unicast are added unless `bare` is set.
pub fn open_with(asn: u32, hold: u16, id: Ipv4Addr, caps: &[u8], bare: bool) -> Vec<u8> {
    let mut c = Vec::new();
    if !bare {
        c.extend_from_slice(&[1, 4, 0, 1, 0, 1]); // MP IPv4 unicast
        c.extend_from_slice(&[65, 4]);
        c.extend_from_slice(&asn.to_be_bytes());
    }
    c.extend_from_slice(caps);
    let mut b = vec![4];
    let as2 = if asn > 65535 { 23456 } else { asn as u16 };
    b.extend_from_slice(&as2.to_be_bytes());
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&id.octets());
    if c.is_empty() {
        b.push(0);
    } else {
        b.push((c.len() + 2) as u8);
        b.push(2);
        b.push(c.len() as u8);
        b.extend_from_slice(&c);
    }
    msg(OPEN, &b)
}

pub fn open(asn: u32, hold: u16, id: Ipv4Addr) -> Vec<u8> {
    open_with(asn, hold, id, &[], false)
}

/// An attribute TLV (extended length when the value needs it).
pub fn attr(flags: u8, code: u8, value: &[u8]) -> Vec<u8> {
    let mut a = Vec::new();
    if value.len() > 255 || flags & 0x10 != 0 {
        a.push(flags | 0x10);
        a.push(code);
        a.extend_from_slice(&(value.len() as u16).to_be_bytes());
    } else {
        a.push(flags);
        a.push(code);
        a.push(value.len() as u8);
    }
    a.extend_from_slice(value);
    a
}

pub fn origin_igp() -> Vec<u8> {
    attr(0x40, 1, &[0])
}

/// AS_PATH: one AS_SEQUENCE of 4-octet ASes (empty for iBGP originated).
pub fn as_path(asns: &[u32]) -> Vec<u8> {
    if asns.is_empty() {
        return attr(0x40, 2, &[]);
    }
    let mut v = vec![2, asns.len() as u8];
    for a in asns {
        v.extend_from_slice(&a.to_be_bytes());
    }
    attr(0x40, 2, &v)
}

pub fn next_hop(nh: Ipv4Addr) -> Vec<u8> {
    attr(0x40, 3, &nh.octets())
}

pub fn local_pref(v: u32) -> Vec<u8> {
    attr(0x40, 5, &v.to_be_bytes())
}

/// An IPv4 prefix in NLRI encoding.
pub fn prefix(p: &str) -> Vec<u8> {
    let (a, l) = p.split_once('/').expect("ADDR/LEN");
    let a: Ipv4Addr = a.parse().unwrap();
    let l: u8 = l.parse().unwrap();
    let mut v = vec![l];
    v.extend_from_slice(&a.octets()[..l.div_ceil(8) as usize]);
    v
}

/// An UPDATE from its three parts, with correct lengths.
pub fn update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    b.extend_from_slice(attrs);
    b.extend_from_slice(nlri);
    msg(UPDATE, &b)
}

/// The usual iBGP attributes: ORIGIN IGP, empty AS_PATH, NEXT_HOP,
/// LOCAL_PREF 100.
pub fn ibgp_attrs(nh: Ipv4Addr) -> Vec<u8> {
    [origin_igp(), as_path(&[]), next_hop(nh), local_pref(100)].concat()
}

/// Announces IPv4 prefixes with the usual iBGP attributes.
pub fn announce(nh: Ipv4Addr, prefixes: &[&str]) -> Vec<u8> {
    let nlri: Vec<u8> = prefixes.iter().flat_map(|p| prefix(p)).collect();
    update(&[], &ibgp_attrs(nh), &nlri)
}

pub fn withdraw(prefixes: &[&str]) -> Vec<u8> {
    let w: Vec<u8> = prefixes.iter().flat_map(|p| prefix(p)).collect();
    update(&w, &[], &[])
}

/// A NOTIFICATION bgpd sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notif {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

/// What reading from bgpd produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Got {
    Msg(u8, Vec<u8>),
    /// The connection closed (EOF or reset).
    Eof,
    Timeout,
}

/// One side of a raw session.
pub struct Raw {
    pub s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn new(s: TcpStream) -> Raw {
        Raw { s, buf: Vec::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.s.write_all(bytes)
    }

    /// The next whole message (type, body), EOF, or a timeout.
    pub fn recv(&mut self, timeout: Duration) -> Got {
        let deadline = Instant::now() + timeout;
        loop {
            if self.buf.len() >= 19 {
                let len = u16::from_be_bytes([self.buf[16], self.buf[17]]) as usize;
                let len = len.max(19);
                if self.buf.len() >= len {
                    let m: Vec<u8> = self.buf.drain(..len).collect();
                    return Got::Msg(m[18], m[19..].to_vec());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Got::Timeout;
            }
            self.s.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) => return Got::Eof,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Got::Timeout;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Got::Eof,
            }
        }
    }

    /// Reads until a NOTIFICATION (skipping KEEPALIVEs and UPDATEs);
    /// `None` on EOF or timeout without one.
    pub fn notification(&mut self, timeout: Duration) -> Option<Notif> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.recv(deadline.saturating_duration_since(Instant::now())) {
                Got::Msg(NOTIFICATION, b) if b.len() >= 2 => {
                    return Some(Notif {
                        code: b[0],
                        subcode: b[1],
                        data: b[2..].to_vec(),
                    });
                }
                Got::Msg(..) => {}
                Got::Eof | Got::Timeout => return None,
            }
        }
    }

    /// Whether the connection is still open and quiet for `d`: no
    /// NOTIFICATION and no EOF (KEEPALIVEs and UPDATEs are fine).
    pub fn stays_up(&mut self, d: Duration) -> Result<(), String> {
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            match self.recv(left) {
                Got::Timeout => return Ok(()),
                Got::Eof => return Err("connection closed".into()),
                Got::Msg(NOTIFICATION, b) => return Err(format!("NOTIFICATION {b:02x?}")),
                Got::Msg(..) => {}
            }
        }
    }

    /// The OPEN exchange as the connecting side: sends `open`, waits for
    /// bgpd's OPEN and KEEPALIVE, and answers with a KEEPALIVE. Returns
    /// bgpd's OPEN body.
    pub fn handshake(&mut self, open: &[u8]) -> Result<Vec<u8>, String> {
        self.send(open).map_err(|e| e.to_string())?;
        let mut their_open = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.recv(deadline.saturating_duration_since(Instant::now())) {
                Got::Msg(OPEN, b) => {
                    their_open = Some(b);
                    self.send(&keepalive()).map_err(|e| e.to_string())?;
                }
                Got::Msg(KEEPALIVE, _) if their_open.is_some() => {
                    return Ok(their_open.unwrap());
                }
                Got::Msg(NOTIFICATION, b) => return Err(format!("NOTIFICATION {b:02x?}")),
                Got::Msg(..) => {}
                Got::Eof => return Err("EOF during the OPEN exchange".into()),
                Got::Timeout => return Err("timeout during the OPEN exchange".into()),
            }
        }
    }
}
