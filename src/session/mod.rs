//! Transport (tokio): listeners, one task per peer, dynamic neighbours.
//!
//! The [`Speaker`] owns the peer table. Listener tasks hand it accepted
//! connections; it routes each to its peer's task, creates a peer for an
//! address inside a dynamic range, or closes it before any OPEN.

pub mod peer;
pub mod socket;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant, SystemTime};

use ipnet::IpNet;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::fsm::{self, DownReason, Negotiated, State};
use crate::wire::open::{AddPathFamily, GrFamily, GracefulRestart};
use crate::wire::{AfiSafi, Capability, Message, Notification, RouteRefresh, Update};
pub use peer::PeerSpec;
pub use socket::TransportOptions;

/// Commands to a peer task.
#[derive(Debug)]
pub enum PeerCommand {
    Start,
    Stop {
        subcode: u8,
        reason: String,
    },
    Accepted(TcpStream),
    /// Send on the established session.
    Send(Message),
    /// UPDATEs encoded for the established session; the task answers with
    /// [`PeerEvent::Ready`] once they are queued to the socket.
    Updates(Vec<bytes::Bytes>),
    /// End the session with this NOTIFICATION (max-prefix, say), and stay
    /// down for `restart_after` if given.
    Fail {
        notification: Notification,
        restart_after: Option<std::time::Duration>,
    },
    /// Stop with this Cease subcode and RFC 8203 text, and end the task.
    Exit {
        subcode: u8,
        reason: String,
    },
    /// bgpd restarts with its routes kept: end the task, closing a session
    /// with a graceful-restart peer without a NOTIFICATION (the peer keeps
    /// our routes), others with Cease / Administrative Shutdown.
    ExitForRestart {
        reason: String,
    },
}

/// What peer tasks report to the RIB and the views.
#[derive(Debug)]
pub enum PeerEvent {
    State {
        peer: IpAddr,
        from: State,
        to: State,
    },
    Up {
        peer: IpAddr,
        negotiated: Box<Negotiated>,
        /// Our address on the session.
        local: IpAddr,
    },
    Down {
        peer: IpAddr,
        reason: DownReason,
    },
    Update {
        peer: IpAddr,
        update: Box<Update>,
    },
    RouteRefresh {
        peer: IpAddr,
        refresh: RouteRefresh,
    },
    /// The UPDATEs of the last [`PeerCommand::Updates`] are queued: the
    /// peer can take more.
    Ready {
        peer: IpAddr,
    },
}

/// A peer's state for status views.
#[derive(Clone, Debug)]
pub struct PeerStatus {
    pub state: State,
    pub since: SystemTime,
    pub remote_id: Option<Ipv4Addr>,
    pub remote_as: Option<u32>,
    pub hold_time: u16,
    pub last_error: Option<String>,
    pub established_once: bool,
    /// Messages received and sent, by type code (index 1..=5).
    pub msgs_in: [u64; 6],
    pub msgs_out: [u64; 6],
}

impl Default for PeerStatus {
    fn default() -> Self {
        PeerStatus {
            state: State::Idle,
            since: SystemTime::now(),
            remote_id: None,
            remote_as: None,
            hold_time: 0,
            last_error: None,
            established_once: false,
            msgs_in: [0; 6],
            msgs_out: [0; 6],
        }
    }
}

pub struct PeerHandle {
    pub spec: PeerSpec,
    pub cmd: mpsc::Sender<PeerCommand>,
    pub status: watch::Receiver<PeerStatus>,
    task: JoinHandle<()>,
}

/// A dynamic neighbour range (Cisco's `bgp listen range`, BIRD 2's
/// `neighbor range`): any address inside gets a passive peer from the
/// template, up to `limit` at once.
#[derive(Clone, Debug)]
pub struct RangeSpec {
    pub prefix: IpNet,
    pub template: PeerSpec,
    pub limit: usize,
}

/// The TCP port of BGP.
pub const BGP_PORT: u16 = 179;
/// The graceful-restart time offered unless configured otherwise, seconds.
pub const DEFAULT_RESTART_TIME: u16 = 120;

/// The capabilities bgpd offers by default: IPv4 and IPv6 unicast, route
/// refresh and enhanced route refresh, 4-octet AS, ADD-PATH receive for
/// both families, and graceful restart (helper, no forwarding state).
pub fn default_capabilities(local_as: u32, restart_time: u16) -> Vec<Capability> {
    let fams = [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST];
    let mut caps: Vec<Capability> = fams
        .iter()
        .map(|&afi_safi| Capability::Multiprotocol { afi_safi })
        .collect();
    caps.push(Capability::RouteRefresh);
    caps.push(Capability::EnhancedRouteRefresh);
    // RFC 4724 §3: the families listed are those whose routes a helper
    // keeps while bgpd restarts; their forwarding bit is set only after a
    // restart that kept the kernel's routes ([`mark_restarted`]).
    caps.push(Capability::GracefulRestart(GracefulRestart {
        flags: 0,
        restart_time,
        families: fams
            .iter()
            .map(|&afi_safi| GrFamily { afi_safi, flags: 0 })
            .collect(),
    }));
    caps.push(Capability::FourOctetAs { asn: local_as });
    caps.push(Capability::AddPath {
        families: fams
            .iter()
            .map(|&afi_safi| AddPathFamily { afi_safi, mode: 1 })
            .collect(),
    });
    caps
}

/// After a restart that kept bgpd's routes in the kernel: the
/// graceful-restart capability says so (RFC 4724 §3), with the Restart
/// State bit (the peer need not wait for our End-of-RIB) and, per family,
/// "forwarding state preserved" (a helper keeps what bgpd announced before
/// until our End-of-RIB, instead of dropping it when the session returns).
pub fn mark_restarted(caps: &mut [Capability]) {
    for c in caps {
        if let Capability::GracefulRestart(g) = c {
            g.flags |= GracefulRestart::RESTART_STATE;
            for f in &mut g.families {
                f.flags |= GrFamily::FORWARDING;
            }
        }
    }
}

/// An accepted connection, from a listener task.
pub struct Accepted {
    pub stream: TcpStream,
    pub remote: SocketAddr,
}

/// Why listening failed, in words a person can act on.
pub fn explain_listen_error(addr: SocketAddr, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            "cannot listen on {addr}: permission denied; port {} needs root or CAP_NET_BIND_SERVICE \
             (setcap cap_net_bind_service,cap_net_admin+ep $(which bgpd)), or choose another port with --port",
            addr.port()
        ),
        std::io::ErrorKind::AddrInUse => format!(
            "cannot listen on {addr}: the address is in use; another BGP daemon (bird, frr, gobgpd?) \
             may be running: stop it, or choose another address or port"
        ),
        std::io::ErrorKind::AddrNotAvailable => format!(
            "cannot listen on {addr}: no interface has this address; check the listen address"
        ),
        _ => format!("cannot listen on {addr}: {e}"),
    }
}

/// Where peers send the MRT records of what they receive.
pub type MrtSink = mpsc::Sender<Vec<u8>>;

pub struct Speaker {
    mrt: Option<MrtSink>,
    peers: HashMap<IpAddr, PeerHandle>,
    ranges: Vec<RangeSpec>,
    events: mpsc::Sender<PeerEvent>,
    /// Each listener's fd, and whether it is IPv6.
    listener_fds: Vec<(RawFd, bool)>,
    unknown_logged: HashMap<IpAddr, Instant>,
}

/// Channel depth from peers to the RIB: bounded, so a busy RIB slows the
/// peers down instead of growing memory.
pub const EVENT_QUEUE: usize = 1024;

impl Speaker {
    pub fn new(events: mpsc::Sender<PeerEvent>) -> Speaker {
        Speaker {
            mrt: None,
            peers: HashMap::new(),
            ranges: Vec::new(),
            events,
            listener_fds: Vec::new(),
            unknown_logged: HashMap::new(),
        }
    }

    /// Binds the listeners and starts their accept loops, which send to
    /// `accepted`. Each error is explained for people.
    pub fn listen(
        &mut self,
        addrs: &[SocketAddr],
        accepted: mpsc::Sender<Accepted>,
    ) -> Result<Vec<SocketAddr>, String> {
        let mut bound = Vec::new();
        for &addr in addrs {
            let l = socket::listen(addr).map_err(|e| explain_listen_error(addr, &e))?;
            self.listener_fds.push((l.as_raw_fd(), addr.is_ipv6()));
            bound.push(l.local_addr().unwrap_or(addr));
            tokio::spawn(accept_loop(l, accepted.clone()));
        }
        let specs: Vec<PeerSpec> = self.peers.values().map(|h| h.spec.clone()).collect();
        for spec in &specs {
            self.set_listener_md5(IpNet::from(spec.addr), spec.transport.password.as_deref());
        }
        for r in self.ranges.clone() {
            self.set_listener_md5(r.prefix, r.template.transport.password.as_deref());
        }
        self.set_listener_gtsm();
        Ok(bound)
    }

    fn set_listener_md5(&self, net: IpNet, password: Option<&str>) {
        let Some(pw) = password else { return };
        for &(fd, _) in &self.listener_fds {
            // A v4 key on a v6-only socket (or the reverse) fails: ignore.
            if let Err(e) = socket::set_md5(fd, net, pw.as_bytes()) {
                tracing::debug!("TCP-MD5 key for {net} on listener: {e}");
            }
        }
    }

    /// Dump every message received from now on into this sink.
    pub fn set_mrt(&mut self, sink: MrtSink) {
        self.mrt = Some(sink);
    }

    pub fn add_peer(&mut self, spec: PeerSpec) {
        self.set_listener_md5(IpNet::from(spec.addr), spec.transport.password.as_deref());
        let h = self.spawn(spec);
        let _ = h.cmd.try_send(PeerCommand::Start);
        self.peers.insert(h.spec.addr, h);
        self.set_listener_gtsm();
    }

    /// RFC 5082 on the listeners: when every peer and range uses GTSM, the
    /// kernel drops low-TTL SYNs before any handshake.
    fn set_listener_gtsm(&self) {
        let configured = self.peers.values().filter(|h| !h.spec.dynamic);
        let all = configured.clone().all(|h| h.spec.transport.ttl_security)
            && self
                .ranges
                .iter()
                .all(|r| r.template.transport.ttl_security)
            && (configured.count() > 0 || !self.ranges.is_empty());
        for &(fd, v6) in &self.listener_fds {
            if let Err(e) = socket::set_listener_min_ttl(fd, v6, all) {
                warn!("cannot set the listener's minimum TTL: {e}");
            }
        }
    }

    fn spawn(&self, spec: PeerSpec) -> PeerHandle {
        let (tx, rx) = mpsc::channel(64);
        let (status_tx, status_rx) = watch::channel(PeerStatus::default());
        let task = peer::PeerTask::new(
            spec.clone(),
            rx,
            self.events.clone(),
            status_tx,
            self.mrt.clone(),
        );
        let task = tokio::spawn(task.run());
        PeerHandle {
            spec,
            cmd: tx,
            status: status_rx,
            task,
        }
    }

    /// Replaces the dynamic ranges. Dynamic peers outside every new range
    /// keep their session until it ends.
    pub fn set_ranges(&mut self, ranges: Vec<RangeSpec>) {
        self.ranges.clear();
        for r in ranges {
            self.add_range(r);
        }
    }

    pub fn add_range(&mut self, range: RangeSpec) {
        self.set_listener_md5(range.prefix, range.template.transport.password.as_deref());
        self.ranges.push(range);
        self.set_listener_gtsm();
    }

    /// Stops a peer with Cease / Peer De-configured and removes it.
    pub async fn remove_peer(&mut self, addr: IpAddr) {
        if let Some(h) = self.peers.remove(&addr) {
            let _ = h
                .cmd
                .send(PeerCommand::Exit {
                    subcode: crate::wire::iana::err::CEASE_PEER_DECONFIGURED,
                    reason: "peer removed from the configuration".into(),
                })
                .await;
            let _ = tokio::time::timeout(Duration::from_secs(2), h.task).await;
            if h.spec.transport.password.is_some() {
                for &(fd, _) in &self.listener_fds {
                    let _ = socket::set_md5(fd, IpNet::from(addr), b"");
                }
            }
            self.set_listener_gtsm();
        }
    }

    pub fn peers(&self) -> impl Iterator<Item = &PeerHandle> {
        self.peers.values()
    }

    pub fn peer(&self, addr: &IpAddr) -> Option<&PeerHandle> {
        self.peers.get(addr)
    }

    /// Routes an accepted connection.
    pub async fn accept(&mut self, a: Accepted) {
        let ip = canonical(a.remote.ip());
        // Drop handles of dynamic peers whose task ended.
        self.peers
            .retain(|_, h| !(h.spec.dynamic && h.task.is_finished()));
        if let Some(h) = self.peers.get(&ip) {
            let _ = h.cmd.send(PeerCommand::Accepted(a.stream)).await;
            return;
        }
        let Some(range) = self.ranges.iter().find(|r| r.prefix.contains(&ip)).cloned() else {
            self.log_unknown(ip);
            return; // Dropping the stream closes it before any OPEN.
        };
        let in_range = self
            .peers
            .values()
            .filter(|h| h.spec.dynamic && range.prefix.contains(&h.spec.addr))
            .count();
        if in_range >= range.limit {
            warn!(peer = %ip, range = %range.prefix, "dynamic range is full ({} peers); refusing", range.limit);
            return;
        }
        let mut spec = range.template.clone();
        spec.addr = ip;
        spec.dynamic = true;
        spec.fsm.passive = true;
        info!(peer = %ip, range = %range.prefix, "dynamic neighbour");
        let h = self.spawn(spec);
        let _ = h.cmd.send(PeerCommand::Start).await;
        let _ = h.cmd.send(PeerCommand::Accepted(a.stream)).await;
        self.peers.insert(ip, h);
    }

    /// Logs a connection from an unknown address at most once a minute per
    /// address.
    fn log_unknown(&mut self, ip: IpAddr) {
        let now = Instant::now();
        if self.unknown_logged.len() > 10_000 {
            self.unknown_logged
                .retain(|_, t| now.duration_since(*t) < Duration::from_secs(60));
        }
        let due = self
            .unknown_logged
            .get(&ip)
            .is_none_or(|t| now.duration_since(*t) >= Duration::from_secs(60));
        if due {
            self.unknown_logged.insert(ip, now);
            warn!(remote = %ip, "connection from an address that is no configured peer or range; closed");
        }
    }

    /// Stops every peer with Cease / Administrative Shutdown and waits
    /// (briefly) for the NOTIFICATIONs to go out.
    /// Stops every peer. `restart`: bgpd is restarting with its routes
    /// kept, so graceful-restart peers see the session drop without a
    /// NOTIFICATION and keep our routes ([`PeerCommand::ExitForRestart`]).
    pub async fn shutdown(&mut self, reason: &str, restart: bool) {
        let handles: Vec<PeerHandle> = self.peers.drain().map(|(_, h)| h).collect();
        for h in &handles {
            let reason = reason.to_string();
            let cmd = if restart {
                PeerCommand::ExitForRestart { reason }
            } else {
                PeerCommand::Exit {
                    subcode: crate::wire::iana::err::CEASE_ADMIN_SHUTDOWN,
                    reason,
                }
            };
            let _ = h.cmd.send(cmd).await;
        }
        for h in handles {
            let _ = tokio::time::timeout(Duration::from_secs(2), h.task).await;
        }
        // Let the writer tasks flush.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Local wall-clock time as HH:MM:SS.
pub fn hms(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as libc::time_t;
    // SAFETY: localtime_r writes into the tm we own.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&secs, &mut tm);
        tm
    };
    format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// One peer's session as the status views need it.
#[derive(Clone, Debug)]
pub struct Session {
    pub addr: IpAddr,
    /// A neighbour of a dynamic range.
    pub dynamic: bool,
    pub description: String,
    /// The AS configured for it, if any.
    pub remote_as: Option<u32>,
    pub status: PeerStatus,
}

impl Speaker {
    /// Every peer's session, in address order.
    pub fn sessions(&self) -> Vec<Session> {
        let mut v: Vec<Session> = self
            .peers
            .values()
            .map(|h| Session {
                addr: h.spec.addr,
                dynamic: h.spec.dynamic,
                description: h.spec.description.clone(),
                remote_as: h.spec.fsm.remote_as,
                status: h.status.borrow().clone(),
            })
            .collect();
        v.sort_by_key(|s| s.addr);
        v
    }
}

/// IPv4-mapped IPv6 addresses (from a dual-stack socket) as IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

async fn accept_loop(l: TcpListener, tx: mpsc::Sender<Accepted>) {
    loop {
        match l.accept().await {
            Ok((stream, remote)) => {
                if tx.send(Accepted { stream, remote }).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Builds a peer spec from the common settings.
pub fn peer_spec(
    addr: IpAddr,
    local_as: u32,
    local_id: Ipv4Addr,
    remote_as: Option<u32>,
) -> PeerSpec {
    let mut cfg = fsm::Config::new(local_as, local_id, remote_as);
    cfg.capabilities = default_capabilities(local_as, DEFAULT_RESTART_TIME);
    PeerSpec {
        addr,
        port: BGP_PORT,
        description: String::new(),
        fsm: cfg,
        transport: TransportOptions::default(),
        dynamic: false,
    }
}
