//! The BGP finite state machine of RFC 4271 §8, sans-IO.
//!
//! A [`Fsm`] drives one peer. Inputs (an event plus the current time) go in
//! through [`Fsm::handle`]; outputs come out: messages to send, timers to
//! arm or stop, a TCP connection to open or close, and the session going up
//! (with what was negotiated) or down (with why). The peer task owns the
//! sockets and timers and does what the outputs say.
//!
//! A peer may have two TCP connections at once, one we opened and one the
//! peer opened; [`ConnId`] names them. Connection collisions are resolved
//! by BGP identifier as RFC 4271 §6.8 says.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::wire::iana::err;
use crate::wire::open::{AddPathFamily, GracefulRestart, LlgrFamily};
use crate::wire::{AfiSafi, AfiSafiSet, Capability, Ctx, DecodeError, Message, Notification, Open};

/// The RFC 4271 §8.2.2 states, for the peer as a whole: the state of its
/// most advanced connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Idle => "Idle",
            State::Connect => "Connect",
            State::Active => "Active",
            State::OpenSent => "OpenSent",
            State::OpenConfirm => "OpenConfirm",
            State::Established => "Established",
        })
    }
}

/// Which of a peer's two possible connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnId {
    /// The connection we opened.
    Outbound,
    /// The connection the peer opened.
    Inbound,
}

impl ConnId {
    fn other(self) -> ConnId {
        match self {
            ConnId::Outbound => ConnId::Inbound,
            ConnId::Inbound => ConnId::Outbound,
        }
    }
    pub fn index(self) -> usize {
        match self {
            ConnId::Outbound => 0,
            ConnId::Inbound => 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Time until the next outbound connection attempt (RFC 4271 §10).
    ConnectRetry,
    /// Time a peer stays Idle after an error before restarting: the
    /// damping of RFC 4271 §8.1.1 (IdleHoldTimer).
    IdleHold,
    Hold(ConnId),
    Keepalive(ConnId),
}

/// A message received, as far as the FSM cares. UPDATE and ROUTE-REFRESH
/// contents go from the peer task to the RIB directly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    Open(Open),
    Update,
    Notification(Notification),
    Keepalive,
    RouteRefresh,
}

impl Received {
    pub fn of(m: &Message) -> Received {
        match m {
            Message::Open(o) => Received::Open(o.clone()),
            Message::Update(_) => Received::Update,
            Message::Notification(n) => Received::Notification(n.clone()),
            Message::Keepalive => Received::Keepalive,
            Message::RouteRefresh(_) => Received::RouteRefresh,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Enable the peer (ManualStart).
    Start,
    /// Disable the peer (ManualStop), sending Cease with this subcode and
    /// RFC 8203 text if a connection is open.
    Stop {
        subcode: u8,
        reason: String,
    },
    /// Disable the peer because bgpd restarts with its routes kept: an
    /// established session whose peer offered graceful restart goes down
    /// without a NOTIFICATION, so the peer, as helper, keeps what we
    /// announced (RFC 4724 §4.2: a NOTIFICATION would make it drop them).
    /// Anything else is stopped as [`Input::Stop`] with this text.
    RestartStop {
        reason: String,
    },
    /// A TCP connection is up: ours completed, or the peer's was accepted.
    Connected(ConnId),
    /// Our connection attempt failed.
    ConnectFailed,
    /// A connection closed or failed.
    Closed(ConnId),
    Received(ConnId, Received),
    /// A message could not be decoded: send its NOTIFICATION.
    DecodeError(ConnId, DecodeError),
    Timer(Timer),
    /// Another part (say the RIB, over max-prefix) ends the session with
    /// this NOTIFICATION.
    Fail(Notification),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Open an outbound TCP connection.
    Connect,
    /// Give up an outbound attempt still in progress.
    CancelConnect,
    Send(ConnId, Message),
    /// Close the connection (after sending anything queued).
    Close(ConnId),
    Arm(Timer, Duration),
    Disarm(Timer),
    Up(Box<Negotiated>),
    Down(DownReason),
}

/// Why an Established session ended, or why a handshake failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// We were told to stop.
    AdminStop(String),
    /// We sent this NOTIFICATION.
    Sent(Notification, String),
    /// The peer sent this NOTIFICATION.
    Received(Notification),
    /// The TCP connection closed or failed.
    ConnectionLost,
    /// The peer reconnected while the session was up, which with graceful
    /// restart means it restarted (RFC 4724 §4.2).
    PeerRestarted,
}

impl fmt::Display for DownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownReason::AdminStop(r) if r.is_empty() => write!(f, "administratively stopped"),
            DownReason::AdminStop(r) => write!(f, "administratively stopped: {r}"),
            DownReason::Sent(n, why) => write!(f, "sent NOTIFICATION {n}: {why}"),
            DownReason::Received(n) => write!(f, "received NOTIFICATION {n}"),
            DownReason::ConnectionLost => write!(f, "TCP connection lost"),
            DownReason::PeerRestarted => write!(f, "peer restarted (new connection)"),
        }
    }
}

/// What a session agreed on, for the peer task and the RIB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub remote_as: u32,
    pub remote_id: Ipv4Addr,
    pub ibgp: bool,
    /// 0 means no hold timer and no keepalives.
    pub hold_time: u16,
    pub keepalive: u16,
    /// The codec context for this session.
    pub ctx: Ctx,
    /// Families both sides offered (IPv4 unicast when the peer sent no
    /// multiprotocol capability, RFC 4760 §1).
    pub families: AfiSafiSet,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    /// The peer's graceful-restart capability, for helper mode.
    pub peer_graceful_restart: Option<GracefulRestart>,
    /// The peer's long-lived graceful-restart families.
    pub peer_llgr: Option<Vec<LlgrFamily>>,
    /// The peer's OPEN, for the status command.
    pub peer_open: Open,
    pub conn: ConnId,
}

/// What the FSM needs of the peer's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub local_as: u32,
    pub local_id: Ipv4Addr,
    /// The peer's AS; `None` accepts any (dynamic neighbours of a range
    /// that does not fix one).
    pub remote_as: Option<u32>,
    /// Hold time we offer: 0, or at least 3.
    pub hold_time: u16,
    /// Keepalive interval; `None` means a third of the negotiated hold time.
    pub keepalive: Option<u16>,
    /// Never connect; wait for the peer.
    pub passive: bool,
    /// First connect-retry delay; it doubles up to `connect_retry_max`.
    pub connect_retry: Duration,
    pub connect_retry_max: Duration,
    /// First idle hold after an error; it doubles up to `idle_hold_max`
    /// while the peer keeps flapping.
    pub idle_hold: Duration,
    pub idle_hold_max: Duration,
    /// A session up this long counts as stable: the damping resets.
    pub stable_after: Duration,
    /// Capabilities we offer.
    pub capabilities: Vec<Capability>,
    /// Capabilities the peer must offer (else 2/7).
    pub required: Vec<Capability>,
}

/// The hold time offered unless configured otherwise, seconds (RFC 4271
/// §10 suggests 90).
pub const DEFAULT_HOLD_TIME: u16 = 90;

impl Config {
    /// Defaults for a peer; capabilities are the caller's.
    pub fn new(local_as: u32, local_id: Ipv4Addr, remote_as: Option<u32>) -> Config {
        Config {
            local_as,
            local_id,
            remote_as,
            hold_time: DEFAULT_HOLD_TIME,
            keepalive: None,
            passive: false,
            connect_retry: Duration::from_secs(5),
            connect_retry_max: Duration::from_secs(120),
            idle_hold: Duration::from_secs(1),
            idle_hold_max: Duration::from_secs(120),
            stable_after: Duration::from_secs(60),
            capabilities: Vec::new(),
            required: Vec::new(),
        }
    }

    fn open(&self) -> Open {
        Open::new(
            self.local_as,
            self.hold_time,
            self.local_id,
            self.capabilities.clone(),
        )
    }
}

/// A connection from the peer this soon after its session came up is the
/// peer's side of a collision, not a restart.
pub const COLLISION_WINDOW: Duration = Duration::from_secs(5);

/// RFC 4271 §8.2.2 suggests a large hold time (4 minutes) in OpenSent.
pub const OPEN_SENT_HOLD: Duration = Duration::from_secs(240);

#[derive(Clone, Debug, PartialEq, Eq)]
enum ConnState {
    OpenSent,
    OpenConfirm(Box<Negotiated>),
    Established(Box<Negotiated>),
}

/// The state machine of one peer.
#[derive(Debug)]
pub struct Fsm {
    cfg: Config,
    enabled: bool,
    /// Damped after an error, until IdleHold fires.
    damped: bool,
    connecting: bool,
    conns: [Option<ConnState>; 2],
    connect_attempts: u32,
    flaps: u32,
    up_since: Option<Instant>,
    rng: u64,
}

/// KEEPALIVE, UPDATE and ROUTE-REFRESH on an established session restart
/// the hold timer (RFC 4271 §8.2.2, Established state).
fn restart_hold(id: ConnId, n: &Negotiated, out: &mut Vec<Output>) {
    if n.hold_time > 0 {
        out.push(Output::Arm(
            Timer::Hold(id),
            Duration::from_secs(n.hold_time as u64),
        ));
    }
}

impl Fsm {
    /// `seed` makes the jitter reproducible; use something that differs
    /// per peer, such as a hash of its address.
    pub fn new(cfg: Config, seed: u64) -> Fsm {
        Fsm {
            cfg,
            enabled: false,
            damped: false,
            connecting: false,
            conns: [None, None],
            connect_attempts: 0,
            flaps: 0,
            up_since: None,
            rng: seed | 1,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Applies a changed configuration; it takes effect on the next
    /// connection.
    pub fn set_config(&mut self, cfg: Config) {
        self.cfg = cfg;
    }

    pub fn state(&self) -> State {
        let best = self
            .conns
            .iter()
            .flatten()
            .map(|c| match c {
                ConnState::OpenSent => State::OpenSent,
                ConnState::OpenConfirm(_) => State::OpenConfirm,
                ConnState::Established(_) => State::Established,
            })
            .max();
        match best {
            Some(s) => s,
            None if !self.enabled || self.damped => State::Idle,
            None if self.connecting => State::Connect,
            None => State::Active,
        }
    }

    /// The established session, if any.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.conns.iter().flatten().find_map(|c| match c {
            ConnState::Established(n) => Some(&**n),
            _ => None,
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Feeds one input; returns what to do.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Start => {
                if !self.enabled {
                    self.enabled = true;
                    self.damped = false;
                    self.start_connecting(&mut out);
                }
            }
            Input::RestartStop { reason }
                if self
                    .negotiated()
                    .is_some_and(|n| n.peer_graceful_restart.is_some()) =>
            {
                self.enabled = false;
                self.damped = false;
                self.reset_all(&mut out, DownReason::AdminStop(reason), now);
                out.push(Output::Disarm(Timer::IdleHold));
            }
            Input::RestartStop { reason } => {
                return self.handle(
                    Input::Stop {
                        subcode: crate::wire::iana::err::CEASE_ADMIN_SHUTDOWN,
                        reason,
                    },
                    now,
                );
            }
            Input::Stop { subcode, reason } => {
                self.enabled = false;
                self.damped = false;
                let n = Notification::cease_with_message(subcode, &reason);
                for id in [ConnId::Outbound, ConnId::Inbound] {
                    if self.conns[id.index()].is_some() {
                        out.push(Output::Send(id, Message::Notification(n.clone())));
                    }
                }
                self.reset_all(&mut out, DownReason::AdminStop(reason), now);
                out.push(Output::Disarm(Timer::IdleHold));
            }
            Input::Connected(id) => self.connected(id, &mut out, now),
            Input::ConnectFailed => {
                // ConnectRetry is still running; the next attempt waits for it.
                self.connecting = false;
            }
            Input::Closed(id) => {
                if self.conns[id.index()].is_some() {
                    self.drop_conn(id, &mut out, DownReason::ConnectionLost, now, true);
                }
            }
            Input::Received(id, msg) => self.received(id, msg, &mut out, now),
            Input::DecodeError(id, e) => {
                if self.conns[id.index()].is_some() {
                    self.fail_conn(id, e.notification, e.reason, &mut out, now);
                }
            }
            Input::Fail(n) => {
                let established = [ConnId::Outbound, ConnId::Inbound]
                    .into_iter()
                    .find(|id| matches!(self.conns[id.index()], Some(ConnState::Established(_))));
                if let Some(id) = established {
                    let why = format!("{}", n);
                    self.fail_conn(id, n, why, &mut out, now);
                }
            }
            Input::Timer(t) => self.timer(t, &mut out, now),
        }
        out
    }

    fn start_connecting(&mut self, out: &mut Vec<Output>) {
        if self.cfg.passive {
            return;
        }
        if !self.connecting && self.conns[ConnId::Outbound.index()].is_none() {
            self.connecting = true;
            out.push(Output::Connect);
        }
        self.arm_connect_retry(out);
    }

    /// ConnectRetry with exponential backoff and RFC 4271 §10 jitter
    /// (a factor between 0.75 and 1).
    fn arm_connect_retry(&mut self, out: &mut Vec<Output>) {
        if self.cfg.passive {
            return;
        }
        let d = backoff(
            self.cfg.connect_retry,
            self.cfg.connect_retry_max,
            self.connect_attempts,
        );
        self.connect_attempts = self.connect_attempts.saturating_add(1);
        let d = self.jitter(d);
        out.push(Output::Arm(Timer::ConnectRetry, d));
    }

    fn jitter(&mut self, d: Duration) -> Duration {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40; // 24 bits
        let factor = 0.75 + 0.25 * (r as f64 / (1u64 << 24) as f64);
        d.mul_f64(factor)
    }

    fn connected(&mut self, id: ConnId, out: &mut Vec<Output>, now: Instant) {
        if id == ConnId::Outbound {
            self.connecting = false;
        }
        if !self.enabled {
            // RFC 4271 §8.2.2: Idle refuses connections.
            out.push(Output::Close(id));
            return;
        }
        if self.damped {
            // The peer came back before our idle hold ran out: take it.
            self.damped = false;
            out.push(Output::Disarm(Timer::IdleHold));
        }
        if self.conns[id.index()].is_some() {
            // A second connection in the same direction replaces nothing:
            // refuse it.
            out.push(Output::Send(
                id,
                Message::Notification(Notification::new(
                    err::CEASE,
                    err::CEASE_CONNECTION_REJECTED,
                    vec![],
                )),
            ));
            out.push(Output::Close(id));
            return;
        }
        if let Some(ConnState::Established(n)) = &self.conns[id.other().index()] {
            // RFC 4271 §6.8: an Established session wins a collision. But a
            // GR-capable peer that connects again long after the session
            // came up has restarted (RFC 4724 §4.2): let the new connection
            // run; its OPEN replaces the old session. A connection right
            // after the session came up is the peer's side of a collision.
            let young = self
                .up_since
                .is_none_or(|t| now.duration_since(t) < COLLISION_WINDOW);
            if n.peer_graceful_restart.is_none() || young {
                out.push(Output::Send(
                    id,
                    Message::Notification(Notification::new(
                        err::CEASE,
                        err::CEASE_COLLISION_RESOLUTION,
                        vec![],
                    )),
                ));
                out.push(Output::Close(id));
                return;
            }
        }
        if id == ConnId::Inbound && self.connecting {
            self.connecting = false;
            out.push(Output::CancelConnect);
        }
        out.push(Output::Disarm(Timer::ConnectRetry));
        self.conns[id.index()] = Some(ConnState::OpenSent);
        out.push(Output::Send(id, Message::Open(self.cfg.open())));
        out.push(Output::Arm(Timer::Hold(id), OPEN_SENT_HOLD));
    }

    fn received(&mut self, id: ConnId, msg: Received, out: &mut Vec<Output>, now: Instant) {
        // The common case, every UPDATE and KEEPALIVE of an established
        // session, without cloning the negotiated parameters.
        if let Some(ConnState::Established(n)) = &self.conns[id.index()]
            && !matches!(msg, Received::Open(_) | Received::Notification(_))
        {
            restart_hold(id, n, out);
            return;
        }
        let Some(state) = self.conns[id.index()].clone() else {
            return;
        };
        match (state, msg) {
            (_, Received::Notification(n)) => {
                self.drop_conn(id, out, DownReason::Received(n), now, true);
            }
            (ConnState::OpenSent, Received::Open(open)) => self.open_received(id, open, out, now),
            (ConnState::OpenSent, _) => {
                // RFC 6608: unexpected message in OpenSent.
                self.fsm_error(id, err::FSM_UNEXPECTED_IN_OPENSENT, out, now);
            }
            (ConnState::OpenConfirm(n), Received::Keepalive) => {
                self.established(id, n, out, now);
            }
            (ConnState::OpenConfirm(_), _) => {
                self.fsm_error(id, err::FSM_UNEXPECTED_IN_OPENCONFIRM, out, now);
            }
            (ConnState::Established(_), Received::Open(_)) => {
                self.fsm_error(id, err::FSM_UNEXPECTED_IN_ESTABLISHED, out, now);
            }
            (ConnState::Established(n), _) => restart_hold(id, &n, out),
        }
    }

    fn open_received(&mut self, id: ConnId, open: Open, out: &mut Vec<Output>, now: Instant) {
        if let Err(e) = open
            .check_peer(self.cfg.remote_as, self.cfg.local_as, self.cfg.local_id)
            .and_then(|_| open.check_required(&self.cfg.required))
        {
            self.fail_conn(id, e.notification, e.reason, out, now);
            return;
        }
        // RFC 4271 §6.8: collision with the other connection, if it got as
        // far as OpenSent or OpenConfirm. The connection opened by the
        // side with the higher BGP identifier survives.
        if let Some(other) = &self.conns[id.other().index()] {
            if matches!(other, ConnState::Established(_)) {
                // Only a restarted GR peer gets this far (see `connected`):
                // the old session is gone.
                self.close_quietly(id.other(), out);
                self.up_since = None;
                out.push(Output::Down(DownReason::PeerRestarted));
                let negotiated = negotiate(&self.cfg, &open, id);
                self.open_confirm(id, negotiated, out);
                return;
            }
            let keep_inbound = u32::from(self.cfg.local_id) < u32::from(open.bgp_id);
            let loser = if keep_inbound {
                ConnId::Outbound
            } else {
                ConnId::Inbound
            };
            let n = Notification::new(err::CEASE, err::CEASE_COLLISION_RESOLUTION, vec![]);
            out.push(Output::Send(loser, Message::Notification(n)));
            self.close_quietly(loser, out);
            if loser == id {
                return;
            }
        }
        let negotiated = negotiate(&self.cfg, &open, id);
        self.open_confirm(id, negotiated, out);
    }

    fn open_confirm(&mut self, id: ConnId, negotiated: Negotiated, out: &mut Vec<Output>) {
        out.push(Output::Send(id, Message::Keepalive));
        if negotiated.hold_time > 0 {
            out.push(Output::Arm(
                Timer::Hold(id),
                Duration::from_secs(negotiated.hold_time as u64),
            ));
            out.push(Output::Arm(
                Timer::Keepalive(id),
                Duration::from_secs(negotiated.keepalive as u64),
            ));
        } else {
            out.push(Output::Disarm(Timer::Hold(id)));
        }
        self.conns[id.index()] = Some(ConnState::OpenConfirm(Box::new(negotiated)));
    }

    fn established(&mut self, id: ConnId, n: Box<Negotiated>, out: &mut Vec<Output>, now: Instant) {
        if n.hold_time > 0 {
            out.push(Output::Arm(
                Timer::Hold(id),
                Duration::from_secs(n.hold_time as u64),
            ));
        }
        // The other connection, if still in OpenSent, loses (§6.8).
        if self.conns[id.other().index()].is_some() {
            let cease = Notification::new(err::CEASE, err::CEASE_COLLISION_RESOLUTION, vec![]);
            out.push(Output::Send(id.other(), Message::Notification(cease)));
            self.close_quietly(id.other(), out);
        }
        self.connect_attempts = 0;
        self.up_since = Some(now);
        out.push(Output::Disarm(Timer::ConnectRetry));
        out.push(Output::Up(n.clone()));
        self.conns[id.index()] = Some(ConnState::Established(n));
    }

    fn timer(&mut self, t: Timer, out: &mut Vec<Output>, now: Instant) {
        match t {
            Timer::ConnectRetry => {
                if !self.enabled || self.damped || self.cfg.passive {
                    return;
                }
                if self.conns[ConnId::Outbound.index()].is_none() && self.negotiated().is_none() {
                    if self.connecting {
                        out.push(Output::CancelConnect);
                        self.connecting = false;
                    }
                    self.start_connecting(out);
                }
            }
            Timer::IdleHold => {
                if self.enabled && self.damped {
                    self.damped = false;
                    self.start_connecting(out);
                }
            }
            Timer::Hold(id) => {
                if self.conns[id.index()].is_some() {
                    let n = Notification::new(err::HOLD_TIMER_EXPIRED, 0, vec![]);
                    self.fail_conn(id, n, "hold timer expired".into(), out, now);
                }
            }
            Timer::Keepalive(id) => {
                if let Some(ConnState::OpenConfirm(n) | ConnState::Established(n)) =
                    &self.conns[id.index()]
                    && n.keepalive > 0
                {
                    let k = Duration::from_secs(n.keepalive as u64);
                    out.push(Output::Send(id, Message::Keepalive));
                    out.push(Output::Arm(Timer::Keepalive(id), k));
                }
            }
        }
    }

    fn fsm_error(&mut self, id: ConnId, subcode: u8, out: &mut Vec<Output>, now: Instant) {
        let n = Notification::new(err::FSM, subcode, vec![]);
        let why = err::subcode_name(err::FSM, subcode).to_string();
        self.fail_conn(id, n, why, out, now);
    }

    /// Sends `n` on the connection and drops it, damping the peer.
    fn fail_conn(
        &mut self,
        id: ConnId,
        n: Notification,
        why: String,
        out: &mut Vec<Output>,
        now: Instant,
    ) {
        out.push(Output::Send(id, Message::Notification(n.clone())));
        self.drop_conn(id, out, DownReason::Sent(n, why), now, true);
    }

    /// Closes a connection without any state change beyond its removal.
    fn close_quietly(&mut self, id: ConnId, out: &mut Vec<Output>) {
        self.conns[id.index()] = None;
        out.push(Output::Disarm(Timer::Hold(id)));
        out.push(Output::Disarm(Timer::Keepalive(id)));
        out.push(Output::Close(id));
    }

    /// Drops a connection. If it carried the session, the session goes
    /// down. If no connection is left, the peer is damped (Idle, with the
    /// IdleHold timer) when `damp` is set, or goes back to connecting.
    fn drop_conn(
        &mut self,
        id: ConnId,
        out: &mut Vec<Output>,
        reason: DownReason,
        now: Instant,
        damp: bool,
    ) {
        let was_up = matches!(self.conns[id.index()], Some(ConnState::Established(_)));
        self.close_quietly(id, out);
        if was_up {
            if let Some(since) = self.up_since.take()
                && now.duration_since(since) >= self.cfg.stable_after
            {
                self.flaps = 0;
            }
            out.push(Output::Down(reason));
        }
        if self.conns.iter().any(Option::is_some) || !self.enabled {
            return;
        }
        if damp {
            self.damp(out);
        } else {
            self.start_connecting(out);
        }
    }

    /// RFC 4271 §8.1.1 DampPeerOscillations: stay Idle for IdleHoldTime,
    /// doubling while the peer keeps failing.
    fn damp(&mut self, out: &mut Vec<Output>) {
        let d = backoff(self.cfg.idle_hold, self.cfg.idle_hold_max, self.flaps);
        self.flaps = self.flaps.saturating_add(1);
        let d = self.jitter(d);
        self.damped = true;
        if self.connecting {
            self.connecting = false;
            out.push(Output::CancelConnect);
        }
        out.push(Output::Disarm(Timer::ConnectRetry));
        out.push(Output::Arm(Timer::IdleHold, d));
    }

    fn reset_all(&mut self, out: &mut Vec<Output>, reason: DownReason, now: Instant) {
        for id in [ConnId::Outbound, ConnId::Inbound] {
            if self.conns[id.index()].is_some() {
                self.drop_conn(id, out, reason.clone(), now, false);
            }
        }
        if self.connecting {
            self.connecting = false;
            out.push(Output::CancelConnect);
        }
        out.push(Output::Disarm(Timer::ConnectRetry));
    }
}

fn backoff(base: Duration, max: Duration, n: u32) -> Duration {
    base.saturating_mul(1u32.checked_shl(n.min(16)).unwrap_or(u32::MAX))
        .min(max)
}

/// Negotiates a session from our configuration and the peer's OPEN:
/// each capability applies when both sides offered it (RFC 5492).
pub fn negotiate(cfg: &Config, peer: &Open, conn: ConnId) -> Negotiated {
    let ours = &cfg.capabilities;
    use crate::wire::iana::cap;
    let both = |code: u8| {
        ours.iter().any(|c| c.code() == code) && peer.capabilities().any(|c| c.code() == code)
    };

    let mp = |caps: &mut dyn Iterator<Item = &Capability>| -> AfiSafiSet {
        let mut set = AfiSafiSet::EMPTY;
        let mut any = false;
        for c in caps {
            if let Capability::Multiprotocol { afi_safi } = c {
                set.insert(*afi_safi);
                any = true;
            }
        }
        // RFC 4760 §1 / RFC 5492: no multiprotocol capability means IPv4
        // unicast only.
        if !any {
            set.insert(AfiSafi::IPV4_UNICAST);
        }
        set
    };
    let our_fams = mp(&mut ours.iter());
    let peer_fams = mp(&mut peer.capabilities());
    let families: AfiSafiSet = our_fams.iter().filter(|f| peer_fams.contains(*f)).collect();

    // RFC 7911 §4: we receive path ids for a family when we offered
    // receive and the peer offered send; and the other way round.
    let add_path = |caps: &mut dyn Iterator<Item = &Capability>| -> Vec<AddPathFamily> {
        caps.filter_map(|c| match c {
            Capability::AddPath { families } => Some(families.clone()),
            _ => None,
        })
        .flatten()
        .collect()
    };
    let our_ap = add_path(&mut ours.iter());
    let peer_ap = add_path(&mut peer.capabilities());
    let mut add_path_rx = AfiSafiSet::EMPTY;
    let mut add_path_tx = AfiSafiSet::EMPTY;
    for o in &our_ap {
        if !families.contains(o.afi_safi) {
            continue;
        }
        for p in peer_ap.iter().filter(|p| p.afi_safi == o.afi_safi) {
            if o.receive() && p.send() {
                add_path_rx.insert(o.afi_safi);
            }
            if o.send() && p.receive() {
                add_path_tx.insert(o.afi_safi);
            }
        }
    }

    let remote_as = peer.four_octet_asn();
    let hold_time = cfg.hold_time.min(peer.hold_time);
    let keepalive = match (hold_time, cfg.keepalive) {
        (0, _) => 0,
        (h, Some(k)) => k.clamp(1, (h / 3).max(1)),
        (h, None) => (h / 3).max(1),
    };
    let peer_gr = peer.capabilities().find_map(|c| match c {
        Capability::GracefulRestart(g) => Some(g.clone()),
        _ => None,
    });
    let peer_llgr = peer.capabilities().find_map(|c| match c {
        Capability::LongLivedGracefulRestart { families } => Some(families.clone()),
        _ => None,
    });
    Negotiated {
        remote_as,
        remote_id: peer.bgp_id,
        ibgp: remote_as == cfg.local_as,
        hold_time,
        keepalive,
        ctx: Ctx {
            four_octet_as: both(cap::FOUR_OCTET_AS),
            extended_message: both(cap::EXTENDED_MESSAGE),
            add_path_rx,
            add_path_tx,
        },
        families,
        route_refresh: both(cap::ROUTE_REFRESH),
        enhanced_route_refresh: both(cap::ENHANCED_ROUTE_REFRESH),
        peer_graceful_restart: peer_gr,
        peer_llgr,
        peer_open: peer.clone(),
        conn,
    }
}
