//! TCP sockets for BGP: source address or interface binding, TCP-MD5
//! (RFC 2385) and GTSM (RFC 5082).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

use ipnet::IpNet;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::{TcpListener, TcpStream};

/// Transport options of one peer (or range).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransportOptions {
    pub source: Option<IpAddr>,
    pub interface: Option<String>,
    pub password: Option<String>,
    /// GTSM: send with TTL 255, accept only TTL 254 or more.
    pub ttl_security: bool,
}

/// Linux `struct tcp_md5sig` (include/uapi/linux/tcp.h).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; 80],
}

const TCP_MD5SIG_FLAG_PREFIX: u8 = 1;
/// RFC 2385 keys are at most 80 octets on Linux.
pub const MAX_MD5_KEY: usize = 80;

/// Installs (or with an empty key, removes) the TCP-MD5 key for a peer
/// address or prefix on a socket. On a listening socket this lets the
/// peer's SYN through.
pub fn set_md5(fd: RawFd, peer: IpNet, key: &[u8]) -> io::Result<()> {
    if key.len() > MAX_MD5_KEY {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "TCP-MD5 password is {} octets; Linux allows at most 80",
                key.len()
            ),
        ));
    }
    let mut sig: TcpMd5Sig = unsafe { std::mem::zeroed() };
    let sa = SockAddr::from(SocketAddr::new(peer.addr(), 0));
    // SAFETY: sockaddr_storage is large enough for any SockAddr.
    unsafe {
        std::ptr::copy_nonoverlapping(
            sa.as_ptr() as *const u8,
            &mut sig.addr as *mut _ as *mut u8,
            sa.len() as usize,
        );
    }
    sig.keylen = key.len() as u16;
    sig.key[..key.len()].copy_from_slice(key);
    let full = peer.prefix_len() == peer.max_prefix_len();
    let opt = if full {
        libc::TCP_MD5SIG
    } else {
        sig.flags = TCP_MD5SIG_FLAG_PREFIX;
        sig.prefixlen = peer.prefix_len();
        libc::TCP_MD5SIG_EXT
    };
    // SAFETY: a valid socket fd and a correctly sized option value.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            opt,
            &sig as *const _ as *const libc::c_void,
            std::mem::size_of::<TcpMd5Sig>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn setsockopt_int(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: an int option on a valid fd.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            &value as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// RFC 5082 §3: send with TTL (hop limit) 255 and require at least 254.
pub fn set_gtsm(fd: RawFd, v6: bool) -> io::Result<()> {
    if v6 {
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, 255)?;
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, 254)
    } else {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TTL, 255)?;
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_MINTTL, 254)
    }
}

/// Linux `TCP_SAVE_SYN` / `TCP_SAVED_SYN` (include/uapi/linux/tcp.h): the
/// listener keeps each SYN's headers, so the TTL it arrived with can be
/// checked at accept.
const TCP_SAVE_SYN: libc::c_int = 27;
const TCP_SAVED_SYN: libc::c_int = 28;

/// The TTL (hop limit) of the SYN that opened an accepted connection.
fn syn_ttl(fd: RawFd) -> Option<u8> {
    let mut buf = [0u8; 256];
    let mut len = buf.len() as libc::socklen_t;
    // SAFETY: the buffer and its length are valid for the call.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            TCP_SAVED_SYN,
            buf.as_mut_ptr() as *mut libc::c_void,
            &mut len,
        )
    };
    if rc != 0 || len < 8 {
        return None;
    }
    match buf[0] >> 4 {
        4 => Some(buf[8]),
        6 => Some(buf[7]),
        _ => None,
    }
}

/// Applies a peer's options to an accepted connection. With GTSM the SYN
/// must have arrived with TTL 254 or more (RFC 5082 §3); otherwise the
/// connection is refused before anything it sent is read.
pub fn apply_accepted(stream: &TcpStream, peer: IpAddr, opts: &TransportOptions) -> io::Result<()> {
    stream.set_nodelay(true)?;
    if opts.ttl_security {
        set_gtsm(stream.as_raw_fd(), peer.is_ipv6())?;
        if let Some(ttl) = syn_ttl(stream.as_raw_fd())
            && ttl < 254
        {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("GTSM: the connection's SYN arrived with TTL {ttl}, below 254 (RFC 5082)"),
            ));
        }
    }
    Ok(())
}

/// Sets the listener's minimum TTL: 254 when every peer uses GTSM (the
/// kernel then drops low-TTL SYNs outright), 0 otherwise (each accepted
/// connection's SYN is checked instead, see [`apply_accepted`]).
pub fn set_listener_min_ttl(fd: RawFd, v6: bool, gtsm_only: bool) -> io::Result<()> {
    let v = if gtsm_only { 254 } else { 0 };
    if v6 {
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, v)
    } else {
        setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_MINTTL, v)
    }
}

/// Opens a connection to a peer with its options.
pub async fn connect(peer: SocketAddr, opts: &TransportOptions) -> io::Result<TcpStream> {
    let domain = if peer.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    s.set_nonblocking(true)?;
    s.set_tcp_nodelay(true)?;
    if let Some(dev) = &opts.interface {
        s.bind_device(Some(dev.as_bytes()))?;
    }
    if let Some(src) = opts.source {
        s.bind(&SockAddr::from(SocketAddr::new(src, 0)))?;
    }
    if let Some(pw) = &opts.password {
        set_md5(s.as_raw_fd(), IpNet::from(peer.ip()), pw.as_bytes())?;
    }
    if opts.ttl_security {
        set_gtsm(s.as_raw_fd(), peer.is_ipv6())?;
    }
    let std: std::net::TcpStream = s.into();
    let sock = tokio::net::TcpSocket::from_std_stream(std);
    sock.connect(peer).await
}

/// Binds a listening socket. An IPv6 wildcard listener is v6-only so that
/// 0.0.0.0 can be bound beside it.
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_nonblocking(true)?;
    s.bind(&SockAddr::from(addr))?;
    setsockopt_int(s.as_raw_fd(), libc::IPPROTO_TCP, TCP_SAVE_SYN, 1)?;
    s.listen(128)?;
    TcpListener::from_std(s.into())
}
