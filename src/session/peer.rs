//! One task per peer: it owns the peer's connections and timers and drives
//! the sans-IO [`Fsm`] with what happens on them.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::socket::{self, TransportOptions};
use super::{PeerCommand, PeerEvent, PeerStatus};
use crate::fsm::{self, ConnId, Fsm, Input, Output, Received, State, Timer};
use crate::wire::{self, Ctx, Message};

/// Everything a peer task needs.
#[derive(Clone, Debug)]
pub struct PeerSpec {
    pub addr: IpAddr,
    pub port: u16,
    pub description: String,
    pub fsm: fsm::Config,
    pub transport: TransportOptions,
    /// Created by a dynamic range: removed when its session ends.
    pub dynamic: bool,
}

/// Messages queued per connection before the peer task waits.
const WRITE_QUEUE: usize = 256;
/// Largest read buffer kept between reads.
const READ_CHUNK: usize = 64 * 1024;

/// How long "held down until a reset" lasts: a century.
const HELD_DOWN_FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

struct Conn {
    read: OwnedReadHalf,
    buf: BytesMut,
    tx: mpsc::Sender<Bytes>,
    ctx: Ctx,
    remote: SocketAddr,
    local: SocketAddr,
}

type ConnectFuture = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

pub(crate) struct PeerTask {
    spec: PeerSpec,
    fsm: Fsm,
    cmds: mpsc::Receiver<PeerCommand>,
    events: mpsc::Sender<PeerEvent>,
    conns: [Option<Conn>; 2],
    connecting: Option<ConnectFuture>,
    timers: HashMap<Timer, Instant>,
    state: State,
    had_conn: bool,
    mrt: Option<super::MrtSink>,
    /// After max-prefix: refuse the peer until then.
    held_down_until: Option<Instant>,
    status: tokio::sync::watch::Sender<PeerStatus>,
}

impl PeerTask {
    pub(crate) fn new(
        spec: PeerSpec,
        cmds: mpsc::Receiver<PeerCommand>,
        events: mpsc::Sender<PeerEvent>,
        status: tokio::sync::watch::Sender<PeerStatus>,
        mrt: Option<super::MrtSink>,
    ) -> PeerTask {
        let seed = {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write(spec.addr.to_string().as_bytes());
            h.finish()
        };
        PeerTask {
            fsm: Fsm::new(spec.fsm.clone(), seed),
            spec,
            cmds,
            events,
            conns: [None, None],
            connecting: None,
            timers: HashMap::new(),
            state: State::Idle,
            had_conn: false,
            mrt,
            held_down_until: None,
            status,
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            let deadline = self.timers.values().min().copied();
            let [c0, c1] = &mut self.conns;
            tokio::select! {
                cmd = self.cmds.recv() => match cmd {
                    None => {
                        self.input(Input::Stop { subcode: wire::iana::err::CEASE_PEER_DECONFIGURED, reason: String::new() }).await;
                        return;
                    }
                    Some(PeerCommand::Exit { subcode, reason }) => {
                        self.input(Input::Stop { subcode, reason }).await;
                        return;
                    }
                    Some(PeerCommand::ExitForRestart { reason }) => {
                        self.input(Input::RestartStop { reason }).await;
                        return;
                    }
                    Some(cmd) => self.command(cmd).await,
                },
                res = async { self.connecting.as_mut().expect("guarded").await }, if self.connecting.is_some() => {
                    self.connecting = None;
                    match res {
                        Ok(stream) => self.attach(ConnId::Outbound, stream).await,
                        Err(e) => {
                            debug!(peer = %self.spec.addr, "connect failed: {e}");
                            self.publish_error(format!("connect: {e}"));
                            self.input(Input::ConnectFailed).await;
                        }
                    }
                }
                r = read_conn(c0) => self.on_read(ConnId::Outbound, r).await,
                r = read_conn(c1) => self.on_read(ConnId::Inbound, r).await,
                _ = sleep_until(deadline), if deadline.is_some() => {
                    let now = Instant::now();
                    let due: Vec<Timer> = self.timers.iter().filter(|(_, d)| **d <= now).map(|(t, _)| *t).collect();
                    for t in due {
                        self.timers.remove(&t);
                        self.input(Input::Timer(t)).await;
                    }
                }
            }
            // A dynamic peer lives as long as its connection.
            if self.spec.dynamic && self.had_conn && self.conns.iter().all(Option::is_none) {
                self.input(Input::Stop {
                    subcode: wire::iana::err::CEASE_PEER_DECONFIGURED,
                    reason: String::new(),
                })
                .await;
                return;
            }
        }
    }

    async fn command(&mut self, cmd: PeerCommand) {
        match cmd {
            PeerCommand::Start => {
                self.held_down_until = None;
                self.input(Input::Start).await
            }
            PeerCommand::Stop { subcode, reason } => {
                self.input(Input::Stop { subcode, reason }).await
            }
            PeerCommand::Accepted(stream) => {
                if self.held_down_until.is_some_and(|t| Instant::now() < t) {
                    info!(peer = %self.spec.addr, "connection refused: held down after max-prefix");
                    return;
                }
                if let Err(e) =
                    socket::apply_accepted(&stream, self.spec.addr, &self.spec.transport)
                {
                    warn!(peer = %self.spec.addr, "cannot set socket options on accepted connection: {e}");
                    return;
                }
                self.attach(ConnId::Inbound, stream).await;
            }
            PeerCommand::Send(m) => {
                if let Some(n) = self.fsm.negotiated() {
                    let id = n.conn;
                    self.send(id, m).await;
                }
            }
            PeerCommand::Updates(msgs) => {
                let Some(id) = self.fsm.negotiated().map(|n| n.conn) else {
                    return;
                };
                for m in msgs {
                    if !self.write(id, wire::iana::msg::UPDATE, m).await {
                        return;
                    }
                }
                // Written (or queued to the writer): ready for the next
                // burst.
                let _ = self
                    .events
                    .send(PeerEvent::Ready {
                        peer: self.spec.addr,
                    })
                    .await;
            }
            PeerCommand::Fail {
                notification,
                restart_after,
            } => {
                self.input(Input::Fail(notification)).await;
                if self.timers.contains_key(&Timer::IdleHold) {
                    match restart_after {
                        Some(d) => {
                            if let Some(t) = self.timers.get_mut(&Timer::IdleHold) {
                                *t = Instant::now() + d;
                            }
                            self.held_down_until = Some(Instant::now() + d);
                        }
                        None => {
                            // Without restart_after the peer stays down
                            // until a reload or a reset (configuration.md):
                            // no IdleHold to reconnect, inbound refused.
                            self.timers.remove(&Timer::IdleHold);
                            self.held_down_until = Some(Instant::now() + HELD_DOWN_FOREVER);
                            info!(peer = %self.spec.addr, "held down after max-prefix until a reload or a reset");
                        }
                    }
                }
            }
            PeerCommand::Exit { .. } | PeerCommand::ExitForRestart { .. } => {
                unreachable!("handled by run")
            }
        }
    }

    async fn attach(&mut self, id: ConnId, stream: TcpStream) {
        let (Ok(remote), Ok(local)) = (stream.peer_addr(), stream.local_addr()) else {
            return;
        };
        let (read, write) = stream.into_split();
        let (tx, rx) = mpsc::channel(WRITE_QUEUE);
        tokio::spawn(writer(write, rx));
        let old = self.conns[id.index()].replace(Conn {
            read,
            buf: BytesMut::with_capacity(8192),
            tx,
            ctx: Ctx::INITIAL,
            remote,
            local,
        });
        if old.is_some() {
            // The FSM refuses a second connection in the same direction;
            // keep the one it knows and drop this one.
            self.conns[id.index()] = old;
            return;
        }
        self.had_conn = true;
        info!(peer = %self.spec.addr, conn = ?id, %remote, "TCP connection up");
        self.input(Input::Connected(id)).await;
    }

    async fn on_read(&mut self, id: ConnId, r: io::Result<usize>) {
        match r {
            Ok(0) | Err(_) => {
                if let Err(e) = &r {
                    debug!(peer = %self.spec.addr, "read error: {e}");
                }
                self.conns[id.index()] = None;
                self.input(Input::Closed(id)).await;
            }
            Ok(_) => loop {
                let Some(conn) = self.conns[id.index()].as_mut() else {
                    return;
                };
                let ctx = conn.ctx;
                let frame = match wire::frame_len(&ctx, &conn.buf) {
                    Ok(Some(n)) => conn.buf.split_to(n).freeze(),
                    Ok(None) => return,
                    Err(e) => {
                        warn!(peer = %self.spec.addr, "bad message header: {e}");
                        self.input(Input::DecodeError(id, e)).await;
                        return;
                    }
                };
                if let Some(sink) = &self.mrt {
                    self.dump(sink.clone(), id, &frame);
                }
                match Message::decode(&ctx, &frame) {
                    Ok(m) => {
                        let ty = frame[18] as usize;
                        self.status.send_modify(|s| {
                            if let Some(c) = s.msgs_in.get_mut(ty) {
                                *c += 1;
                            }
                        });
                        self.on_message(id, m).await
                    }
                    Err(e) => {
                        warn!(peer = %self.spec.addr, "malformed message: {e}");
                        self.input(Input::DecodeError(id, e)).await;
                        return;
                    }
                }
            },
        }
    }

    /// Appends the message to the MRT dump (RFC 6396 BGP4MP_ET). A full
    /// dump queue drops the record rather than slowing the session.
    fn dump(&self, sink: super::MrtSink, id: ConnId, frame: &[u8]) {
        let Some(conn) = self.conns[id.index()].as_ref() else {
            return;
        };
        let n = self.fsm.negotiated();
        let session = crate::wire::mrt::DumpSession {
            peer_as: n
                .map(|n| n.remote_as)
                .or(self.spec.fsm.remote_as)
                .unwrap_or(0),
            local_as: self.spec.fsm.local_as,
            peer: conn.remote.ip(),
            local: conn.local.ip(),
            add_path: !conn.ctx.add_path_rx.is_empty(),
        };
        let mut rec = Vec::with_capacity(frame.len() + 48);
        crate::wire::mrt::write_bgp4mp_message(
            &mut rec,
            std::time::SystemTime::now(),
            &session,
            frame,
        );
        let _ = sink.try_send(rec);
    }

    async fn on_message(&mut self, id: ConnId, m: Message) {
        let established = self.fsm.state() == State::Established
            && self.fsm.negotiated().is_some_and(|n| n.conn == id);
        self.input(Input::Received(id, Received::of(&m))).await;
        match m {
            Message::Update(u) if established => {
                for e in &u.errors {
                    warn!(peer = %self.spec.addr, "UPDATE error handled per RFC 7606: {e}");
                }
                let _ = self
                    .events
                    .send(PeerEvent::Update {
                        peer: self.spec.addr,
                        update: Box::new(u),
                    })
                    .await;
            }
            Message::RouteRefresh(rr) if established => {
                let _ = self
                    .events
                    .send(PeerEvent::RouteRefresh {
                        peer: self.spec.addr,
                        refresh: rr,
                    })
                    .await;
            }
            Message::Notification(n) => {
                info!(peer = %self.spec.addr, "received NOTIFICATION {n}");
            }
            _ => {}
        }
    }

    /// Feeds the FSM and carries out its outputs.
    async fn input(&mut self, input: Input) {
        let outputs = self.fsm.handle(input, Instant::now().into_std());
        for o in outputs {
            self.output(o).await;
        }
        let state = self.fsm.state();
        if state != self.state {
            info!(peer = %self.spec.addr, from = %self.state, to = %state, "state change");
            let _ = self
                .events
                .send(PeerEvent::State {
                    peer: self.spec.addr,
                    from: self.state,
                    to: state,
                })
                .await;
            self.state = state;
            self.status.send_modify(|s| {
                s.state = state;
                s.since = std::time::SystemTime::now();
                if state == State::Established {
                    s.established_once = true;
                    s.last_error = None;
                }
            });
        }
    }

    async fn output(&mut self, o: Output) {
        match o {
            Output::Connect => {
                let addr = SocketAddr::new(self.spec.addr, self.spec.port);
                let opts = self.spec.transport.clone();
                self.connecting = Some(Box::pin(async move { socket::connect(addr, &opts).await }));
            }
            Output::CancelConnect => self.connecting = None,
            Output::Send(id, m) => self.send(id, m).await,
            Output::Close(id) => {
                // Dropping the sender lets the writer flush and shut down.
                self.conns[id.index()] = None;
            }
            Output::Arm(t, d) => {
                self.timers.insert(t, Instant::now() + d);
            }
            Output::Disarm(t) => {
                self.timers.remove(&t);
            }
            Output::Up(n) => {
                if let Some(c) = self.conns[n.conn.index()].as_mut() {
                    c.ctx = n.ctx;
                }
                info!(
                    peer = %self.spec.addr,
                    remote_as = n.remote_as,
                    remote_id = %n.remote_id,
                    hold = n.hold_time,
                    families = ?n.families.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
                    add_path_rx = ?n.ctx.add_path_rx.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
                    "session established"
                );
                self.status.send_modify(|s| {
                    s.remote_id = Some(n.remote_id);
                    s.remote_as = Some(n.remote_as);
                    s.hold_time = n.hold_time;
                });
                // The address the session runs from: the next hop of the
                // routes we originate or send with next-hop-self.
                let local = self.conns[n.conn.index()]
                    .as_ref()
                    .map(|c| super::canonical(c.local.ip()))
                    .unwrap_or(self.spec.addr);
                // The controller sends the initial table, then End-of-RIB
                // (RFC 4724 §2); a restarting Calico BIRD waits for it.
                let _ = self
                    .events
                    .send(PeerEvent::Up {
                        peer: self.spec.addr,
                        negotiated: n,
                        local,
                    })
                    .await;
            }
            Output::Down(reason) => {
                info!(peer = %self.spec.addr, "session down: {reason}");
                self.publish_error(reason.to_string());
                let _ = self
                    .events
                    .send(PeerEvent::Down {
                        peer: self.spec.addr,
                        reason,
                    })
                    .await;
            }
        }
    }

    fn publish_error(&self, e: String) {
        self.status.send_modify(|s| s.last_error = Some(e));
    }

    async fn send(&mut self, id: ConnId, m: Message) {
        let Some(conn) = self.conns[id.index()].as_ref() else {
            return;
        };
        if let Message::Notification(n) = &m {
            if n.code == wire::iana::err::CEASE {
                info!(peer = %self.spec.addr, remote = %conn.remote, "sending NOTIFICATION {n}");
            } else {
                warn!(peer = %self.spec.addr, remote = %conn.remote, "sending NOTIFICATION {n}");
            }
            self.publish_error(format!("sent NOTIFICATION {n}"));
        }
        let mut buf = BytesMut::with_capacity(64);
        if let Err(e) = m.encode(&conn.ctx, &mut buf) {
            warn!(peer = %self.spec.addr, "cannot encode {}: {e}", m.type_code());
            return;
        }
        self.write(id, m.type_code(), buf.freeze()).await;
    }

    /// Queues an encoded message on connection `id`, counting it. A peer
    /// that stops reading fills the queue: it gets as long as a hold time
    /// before it is treated as dead. Returns whether it was queued.
    async fn write(&mut self, id: ConnId, ty: u8, bytes: Bytes) -> bool {
        let Some(conn) = self.conns[id.index()].as_ref() else {
            return false;
        };
        self.status.send_modify(|s| {
            if let Some(c) = s.msgs_out.get_mut(ty as usize) {
                *c += 1;
            }
        });
        let tx = conn.tx.clone();
        let hold = self
            .fsm
            .negotiated()
            .map(|n| n.hold_time)
            .filter(|h| *h > 0)
            .unwrap_or(240);
        if tokio::time::timeout(Duration::from_secs(hold as u64), tx.send(bytes))
            .await
            .is_err()
        {
            warn!(peer = %self.spec.addr, "peer stopped reading for {hold} s; closing");
            self.conns[id.index()] = None;
            Box::pin(self.input(Input::Closed(id))).await;
            return false;
        }
        true
    }
}

async fn read_conn(conn: &mut Option<Conn>) -> io::Result<usize> {
    match conn {
        Some(c) => {
            if c.buf.capacity() - c.buf.len() < 4096 {
                c.buf.reserve(READ_CHUNK);
            }
            c.read.read_buf(&mut c.buf).await
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn writer(mut w: OwnedWriteHalf, mut rx: mpsc::Receiver<Bytes>) {
    while let Some(first) = rx.recv().await {
        // Coalesce what is queued into one write.
        let mut batch = Vec::with_capacity(8);
        batch.push(first);
        while batch.len() < 64 {
            match rx.try_recv() {
                Ok(b) => batch.push(b),
                Err(_) => break,
            }
        }
        let mut ok = true;
        for b in &batch {
            if w.write_all(b).await.is_err() {
                ok = false;
                break;
            }
        }
        if !ok {
            return;
        }
    }
    let _ = w.shutdown().await;
}
