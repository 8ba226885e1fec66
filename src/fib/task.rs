//! The FIB task: the single owner of bgpd's netlink sockets. It keeps the
//! kernel view current from the event socket and from dumps, sends the
//! operations the [`FibState`] asks for and feeds their outcomes back, and
//! answers [`FibCommand`]s by asking the state. What to install, when to
//! retry and what a check found are the state's (`state/`); this file
//! does the netlink.

use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use futures::channel::mpsc::UnboundedReceiver;
use futures::{StreamExt, TryStreamExt};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_sys::{AsyncSocket, SocketAddr};
use rtnetlink::MulticastGroup;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use super::liveness::{Ask, Nud};
use super::nl::{self, Dump, Protocols, Writer};
use super::state::{self, FibState, Op};
use super::view::{Hop, KernelRoute};
use super::*;

/// Prefixes pushed to the kernel per turn of the task loop.
const CHUNK: usize = 32 * 1024;
/// Events the RIB's queue holds; more are coalesced in the task.
const EVENTS: usize = 16;

type Monitor = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// Starts the FIB: opens the sockets, mirrors the kernel, finds the routes
/// a previous run left, and spawns the task. Returns the handle (with the
/// reachability of the kernel as dumped), the event receiver for the RIB
/// and the task's join handle.
pub async fn spawn(
    cfg: FibConfig,
) -> io::Result<(FibHandle, mpsc::Receiver<FibEvent>, JoinHandle<()>)> {
    let monitor = open_monitor(cfg.protocol)?;
    let (conn, dump, _) = rtnetlink::new_connection_with_strict_check()?;
    tokio::spawn(conn);
    let writer = if cfg.install {
        Some(Writer::new(cfg.protocol, cfg.table, cfg.metric)?)
    } else {
        None
    };
    let (ev_tx, ev_rx) = mpsc::channel(EVENTS);
    let (tx, rx) = mpsc::channel(QUEUE);
    let mut fib = Fib {
        state: FibState::new(cfg, Instant::now()),
        writer,
        dump,
        events: ev_tx,
        reach_unsent: false,
        sync_unsent: false,
        sync_told: false,
        failed_told: 0,
        failed_unsent: false,
        dead_told: Vec::new(),
        dead_unsent: false,
        monitor: Some(monitor),
        resync_needed: false,
        more_coming: false,
        in_flight: None,
    };
    fib.resync_view().await?;
    let adopted = if fib.writer.is_some() {
        fib.adopt_previous().await?
    } else {
        0
    };
    // The handle carries what the dumps showed (the resync has queued it
    // as an event too); the RIB hears of every change from here on.
    let initial = fib.state.reachability();
    fib.note_sync();
    fib.send_events();
    let task = tokio::spawn(fib.run(rx));
    Ok((
        FibHandle {
            tx,
            initial,
            adopted,
        },
        ev_rx,
        task,
    ))
}

fn open_monitor(protocol: u8) -> io::Result<Monitor> {
    let (mut conn, _, messages) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
        MulticastGroup::Ipv4Route,
        MulticastGroup::Ipv6Route,
        // Neighbour entries: next-hop liveness (super::liveness).
        MulticastGroup::Neigh,
    ])?;
    let fd = conn.socket_mut().socket_mut().as_raw_fd();
    nl::set_rcvbuf_force(fd, 8 << 20);
    if let Err(e) = nl::attach_own_route_filter(fd, protocol) {
        warn!(error = %e, "cannot filter our own route notifications");
    }
    tokio::spawn(conn);
    Ok(messages)
}

struct Fib {
    state: FibState,
    writer: Option<Writer>,
    /// For dumps of links and addresses (routes are dumped with nl::Dump).
    dump: rtnetlink::Handle,
    events: mpsc::Sender<FibEvent>,
    /// Reachability changed since the RIB was last sent a snapshot.
    reach_unsent: bool,
    /// The initial sync is over and the RIB has not been told.
    sync_unsent: bool,
    sync_told: bool,
    /// The failure count the RIB was last told, and whether it changed
    /// since.
    failed_told: usize,
    failed_unsent: bool,
    /// The dead gateways the RIB was last told, and whether they changed.
    dead_told: Vec<IpAddr>,
    dead_unsent: bool,
    monitor: Option<Monitor>,
    resync_needed: bool,
    /// The last command was an [`FibCommand::ApplyMore`].
    more_coming: bool,
    /// Operations the writer's thread has and whose outcomes the state
    /// has not heard (see [`Fib::push`]).
    in_flight: Option<(Vec<Op>, nl::Ticket)>,
}

enum Flow {
    Continue,
    Stop,
}

impl Fib {
    async fn run(mut self, mut rx: mpsc::Receiver<FibCommand>) {
        let cfg = self.state.config();
        let period = if cfg.reconcile_interval.is_zero() {
            Duration::from_secs(365 * 86400)
        } else {
            cfg.reconcile_interval
        };
        let mut reconcile_tick =
            tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let mut housekeeping = tokio::time::interval(Duration::from_millis(250));
        info!(
            table = cfg.table,
            protocol = cfg.protocol,
            metric = cfg.metric,
            install = cfg.install,
            "FIB task running"
        );
        loop {
            let work = self.state.has_work() || self.in_flight.is_some();
            let unsent =
                self.reach_unsent || self.sync_unsent || self.failed_unsent || self.dead_unsent;
            tokio::select! {
                biased;
                ev = next_event(&mut self.monitor) => match ev {
                    Some((msg, _)) => self.kernel_event(msg),
                    None => {
                        error!("netlink event socket closed; reopening");
                        self.monitor = None;
                        self.resync_needed = true;
                    }
                },
                cmd = rx.recv() => {
                    let cmd = match cmd {
                        Some(c) => c,
                        None => {
                            // The RIB is gone: shut down as configured.
                            let (tx, _) = tokio::sync::oneshot::channel();
                            FibCommand::Shutdown { remove: false, reply: tx }
                        }
                    };
                    if let Flow::Stop = self.command(cmd).await {
                        break;
                    }
                }
                _ = reconcile_tick.tick() => {
                    self.reconcile().await;
                }
                _ = housekeeping.tick() => self.housekeeping().await,
                // The RIB's queue had no room: wait for some.
                _ = room(&self.events), if unsent => {}
                // Not while the rest of a change set is on its way.
                _ = std::future::ready(()), if work && !self.more_coming => {
                    self.push(CHUNK);
                    tokio::task::yield_now().await;
                }
            }
            self.settle();
        }
        info!("FIB task stopped");
    }

    /// After anything that may have changed the view or the sync: the
    /// state re-resolves, and the RIB hears what changed.
    fn settle(&mut self) {
        if self.state.settle() {
            self.reach_unsent = true;
        }
        self.note_sync();
        if self.state.failed() != self.failed_told {
            self.failed_told = self.state.failed();
            self.failed_unsent = true;
        }
        let dead = self.state.dead_gateways();
        if dead != self.dead_told {
            self.dead_told = dead;
            self.dead_unsent = true;
        }
        self.send_events();
    }

    fn note_sync(&mut self) {
        if self.state.sync_done() && !self.sync_told {
            self.sync_told = true;
            self.sync_unsent = true;
        }
    }

    /// Sends what the RIB has not heard yet while its queue has room; a
    /// snapshot is taken when it is sent, so changes that wait coalesce
    /// into one.
    fn send_events(&mut self) {
        while self.reach_unsent || self.sync_unsent || self.failed_unsent || self.dead_unsent {
            let Ok(permit) = self.events.try_reserve() else {
                // Full (the loop waits for room) or closed: the RIB is
                // gone, nobody to tell.
                if self.events.is_closed() {
                    self.reach_unsent = false;
                    self.sync_unsent = false;
                    self.failed_unsent = false;
                    self.dead_unsent = false;
                }
                return;
            };
            if std::mem::take(&mut self.dead_unsent) {
                permit.send(FibEvent::NextHopsDown(self.dead_told.clone()));
                continue;
            }
            permit.send(next_report(
                &self.state,
                &mut self.reach_unsent,
                &mut self.sync_unsent,
                &mut self.failed_unsent,
            ));
        }
    }

    async fn command(&mut self, cmd: FibCommand) -> Flow {
        match cmd {
            FibCommand::Apply(changes) => {
                self.more_coming = false;
                self.state.apply(changes)
            }
            FibCommand::ApplyMore(changes) => {
                self.more_coming = true;
                self.state.apply(changes)
            }
            FibCommand::InitialSyncDone => self.state.initial_sync_done("the RIB's initial sync"),
            FibCommand::Flush(reply) => {
                self.flush_all();
                let _ = reply.send(());
            }
            FibCommand::Reconcile(reply) => {
                let r = self.reconcile().await;
                let _ = reply.send(r);
            }
            FibCommand::Status(reply) => {
                let _ = reply.send(self.state.status());
            }
            FibCommand::Lookup(p, reply) => {
                let _ = reply.send(self.state.lookup(&p));
            }
            FibCommand::Shutdown { remove, reply } => {
                let r = self.shutdown(remove);
                let _ = reply.send(r);
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    async fn housekeeping(&mut self) {
        let now = Instant::now();
        self.state.tick(now);
        for ask in self.state.liveness_tick(now) {
            self.ask_neighbour(ask).await;
        }
        if self.resync_needed {
            if self.monitor.is_none() {
                match open_monitor(self.state.config().protocol) {
                    Ok(m) => self.monitor = Some(m),
                    Err(e) => {
                        error!(error = %e, "cannot reopen the netlink event socket");
                        return;
                    }
                }
            }
            match self.resync_view().await {
                Ok(()) => self.resync_needed = false,
                Err(e) => error!(error = %e, "kernel resync failed; will retry"),
            }
        }
        if self.state.check_due(now) {
            self.reconcile().await;
        }
    }

    /// Asks the kernel's neighbour table to probe a next hop (a valid
    /// entry goes to PROBE: a unicast ARP/ND probe now) or to resolve it
    /// (`NTF_USE`), as `ip neigh change ADDR dev DEV nud probe` and
    /// `ip neigh replace ADDR dev DEV use` do.
    async fn ask_neighbour(&mut self, ask: Ask) {
        let (Ask::Probe(hop) | Ask::Resolve(hop)) = ask;
        let req = self
            .dump
            .neighbours()
            .add(hop.ifindex, hop.gateway)
            .replace();
        let req = match ask {
            Ask::Probe(_) => req.state(NeighbourState::Probe),
            Ask::Resolve(_) => req.flags(NeighbourFlags::Use),
        };
        if let Err(e) = req.execute().await {
            match ask {
                // No valid entry to probe: resolve it next time.
                Ask::Probe(_) => {
                    debug!(gateway = %hop.gateway, ifindex = hop.ifindex, error = %e, "the kernel refused to probe a next hop; resolving it instead");
                    self.state.probe_refused(hop)
                }
                Ask::Resolve(_) => {
                    debug!(gateway = %hop.gateway, ifindex = hop.ifindex, error = %e, "cannot ask the kernel to resolve a next hop")
                }
            }
        }
    }

    /// A multicast notification (links, addresses, other protocols' routes).
    fn kernel_event(&mut self, msg: NetlinkMessage<RouteNetlinkMessage>) {
        let st = &mut self.state;
        match msg.payload {
            NetlinkPayload::InnerMessage(m) => match m {
                RouteNetlinkMessage::NewLink(l) => st.link(&l, false, Instant::now()),
                RouteNetlinkMessage::DelLink(l) => st.link(&l, true, Instant::now()),
                RouteNetlinkMessage::NewAddress(a) => st.address(&a, false),
                RouteNetlinkMessage::DelAddress(a) => st.address(&a, true),
                RouteNetlinkMessage::NewRoute(r) => {
                    if let Some(k) = KernelRoute::from_message(&r) {
                        st.route(k, false);
                    }
                }
                RouteNetlinkMessage::DelRoute(r) => {
                    if let Some(k) = KernelRoute::from_message(&r) {
                        st.route(k, true);
                    }
                }
                RouteNetlinkMessage::NewNeighbour(n) => {
                    if let Some((hop, nud)) = neighbour(&n, false) {
                        st.neighbour(hop, nud, Instant::now());
                    }
                }
                RouteNetlinkMessage::DelNeighbour(n) => {
                    if let Some((hop, nud)) = neighbour(&n, true) {
                        st.neighbour(hop, nud, Instant::now());
                    }
                }
                _ => {}
            },
            NetlinkPayload::Overrun(_) => {
                warn!("netlink event socket overrun (ENOBUFS): resynchronising with the kernel");
                self.resync_needed = true;
            }
            _ => {}
        }
    }

    /// Sends everything queued and waits for the kernel's answers:
    /// nothing is in flight afterwards.
    fn flush_all(&mut self) {
        while self.state.has_work() || self.in_flight.is_some() {
            self.push(CHUNK);
        }
        debug_assert_eq!(self.state.in_flight(), 0);
    }

    /// Hands the state's next operations (up to `limit` prefixes) to the
    /// writer's thread, then the state the kernel's answers to the list
    /// sent before. So the kernel always has the next list queued while
    /// this task waits for its answers, and this task plans and encodes
    /// a list and digests the outcomes of another while the kernel
    /// installs (one list in flight; see [`FibState::next_ops`]). With
    /// nothing more to send, it only collects.
    fn push(&mut self, limit: usize) {
        let ops = self.state.next_ops(limit);
        let sent = match self.writer.as_mut() {
            Some(w) if !ops.is_empty() => {
                let t = w.submit(&ops, &self.state);
                Some((ops, t))
            }
            _ => {
                debug_assert!(ops.is_empty(), "operations only with install");
                None
            }
        };
        self.drain();
        self.in_flight = sent;
    }

    /// Streams a dump of our routes (protocol and table, both families)
    /// through `f`, one kernel buffer at a time; returns how many.
    async fn scan_ours(
        &mut self,
        mut f: impl FnMut(&mut FibState, KernelRoute),
    ) -> io::Result<usize> {
        let mut n = 0;
        let mut batch = Vec::new();
        let (protocol, table) = (self.state.config().protocol, self.state.config().table);
        for family in [libc::AF_INET, libc::AF_INET6] {
            let mut dump = Dump::routes(family as u8, table, Protocols::Only(protocol))?;
            loop {
                let more = match dump.next(|r| batch.push(r)) {
                    Ok(more) => more,
                    // The table does not exist (yet): nothing of ours in it.
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => false,
                    Err(e) => return Err(e),
                };
                n += batch.len();
                for r in batch.drain(..) {
                    f(&mut self.state, r);
                }
                if !more {
                    break;
                }
                // Other tasks get a turn during a long dump.
                tokio::task::yield_now().await;
            }
        }
        Ok(n)
    }

    /// Rebuilds the kernel mirror from dumps.
    async fn resync_view(&mut self) -> io::Result<()> {
        // What is in flight lands first: the dumps then show it.
        self.drain();
        let mut links = Vec::new();
        let mut s = self.dump.link().get().execute();
        while let Some(l) = s.try_next().await.map_err(io_err)? {
            links.push(l);
        }
        let mut addrs = Vec::new();
        let mut s = self.dump.address().get().execute();
        while let Some(a) = s.try_next().await.map_err(io_err)? {
            addrs.push(a);
        }
        // Other protocols' routes; ours are skipped unparsed.
        let mut routes = Vec::new();
        let cfg = self.state.config();
        let mut tables = vec![cfg.table];
        if cfg.table != RT_TABLE_MAIN {
            tables.push(RT_TABLE_MAIN);
        }
        let others = Protocols::Except(cfg.protocol);
        for t in tables {
            for family in [libc::AF_INET, libc::AF_INET6] {
                let mut dump = Dump::routes(family as u8, t, others)?;
                loop {
                    match dump.next(|r| routes.push(r)) {
                        Ok(true) => tokio::task::yield_now().await,
                        Ok(false) => break,
                        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        self.state.resync(&links, &addrs, routes);
        self.settle();
        Ok(())
    }

    /// At startup: routes of our protocol from a previous run stay (stale)
    /// until the RIB re-learns them or the initial sync ends.
    async fn adopt_previous(&mut self) -> io::Result<usize> {
        // The objects first: the routes of a previous run point at them.
        match nl::dump_nexthops() {
            Ok(list) => {
                self.state.check_objects(&list, true);
                self.state.objects_adopted();
            }
            Err(e) if self.state.uses_objects() => {
                info!(
                    error = %e,
                    "the kernel has no nexthop objects (Linux >= 5.3); installing plain routes"
                );
                self.state.objects_unsupported();
            }
            Err(_) => {}
        }
        let n = self.scan_ours(|st, r| st.adopt(r)).await?;
        if n > 0 {
            info!(
                routes = n,
                "found routes of a previous run; keeping them until the initial sync"
            );
        }
        Ok(n)
    }

    /// Waits for the answers to what is in flight; sends nothing new.
    fn drain(&mut self) {
        if let (Some((ops, t)), Some(w)) = (self.in_flight.take(), self.writer.as_mut()) {
            let outcomes = w.collect(t);
            self.state.outcomes(ops, outcomes, Instant::now());
        }
    }

    /// Compares desired with the kernel and repairs the difference.
    async fn reconcile(&mut self) -> ReconcileReport {
        if self.writer.is_none() {
            return ReconcileReport::default();
        }
        self.flush_all();
        match nl::dump_nexthops() {
            Ok(list) => self.state.check_objects(&list, true),
            Err(e) if self.state.uses_objects() => {
                error!(error = %e, "cannot dump nexthop objects; their check skipped")
            }
            Err(_) => {}
        }
        let mut check = self.state.check();
        let scanned = self.scan_ours(|st, r| st.check_route(&mut check, r)).await;
        if let Err(e) = &scanned {
            error!(error = %e, "cannot dump our routes; check skipped");
        }
        if !self
            .state
            .check_dumped(&mut check, scanned.is_ok(), Instant::now())
        {
            return ReconcileReport::default();
        }
        self.flush_all();
        self.state.check_report(check)
    }

    fn shutdown(&mut self, remove: bool) -> ShutdownReport {
        let mut r = ShutdownReport::default();
        if self.writer.is_none() {
            return r;
        }
        if !remove && self.state.keeps_at_shutdown() {
            self.flush_all();
            r.kept = self.state.installed();
            let keep = self.state.config().keep_on_shutdown.unwrap_or_default();
            info!(
                routes = r.kept,
                "shutdown: leaving our routes in the kernel for {keep:?} (graceful restart)"
            );
            return r;
        }
        // What is in flight lands and is accounted for first.
        self.drain();
        // In chunks: a million routes need no million-entry list.
        let Fib { writer, state, .. } = self;
        let w = writer.as_mut().expect("install mode");
        let mut ops: Vec<Op> = Vec::with_capacity(CHUNK);
        let mut run = |ops: &mut Vec<Op>| {
            for (op, out) in ops.iter().zip(w.run(ops, &state::NoLookup)) {
                state::shutdown_outcome(&mut r, op, out);
            }
            ops.clear();
        };
        for op in state.shutdown_ops(remove) {
            ops.push(op);
            if ops.len() == CHUNK {
                run(&mut ops);
            }
        }
        run(&mut ops);
        info!(
            routes = r.removed,
            "shutdown: removed our routes from the kernel"
        );
        r
    }
}

/// The next event for the RIB: the sync first, then the failure count
/// and a snapshot of the reachability, each as it is now.
fn next_report(state: &FibState, reach: &mut bool, sync: &mut bool, failed: &mut bool) -> FibEvent {
    if std::mem::take(sync) {
        FibEvent::InitialSyncOver
    } else if std::mem::take(failed) {
        FibEvent::Failed(state.failed())
    } else {
        *reach = false;
        FibEvent::Reachability(state.reachability())
    }
}

/// Once the RIB's queue has room (or is closed); only this task sends.
async fn room(tx: &mpsc::Sender<FibEvent>) {
    let _ = tx.reserve().await;
}

async fn next_event(
    m: &mut Option<Monitor>,
) -> Option<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)> {
    match m {
        Some(m) => m.next().await,
        None => std::future::pending().await,
    }
}

/// A neighbour notification as (hop, state); `None` for other families or
/// without an address.
fn neighbour(n: &NeighbourMessage, deleted: bool) -> Option<(Hop, Nud)> {
    let gateway = n.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
        NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
        _ => None,
    })?;
    let hop = Hop {
        gateway,
        ifindex: n.header.ifindex,
    };
    let nud = if deleted {
        Nud::None
    } else {
        match n.header.state {
            NeighbourState::Incomplete => Nud::Incomplete,
            NeighbourState::Reachable => Nud::Reachable,
            NeighbourState::Stale => Nud::Stale,
            NeighbourState::Delay => Nud::Delay,
            NeighbourState::Probe => Nud::Probe,
            NeighbourState::Failed => Nud::Failed,
            NeighbourState::Noarp | NeighbourState::Permanent => Nud::Static,
            _ => Nud::None,
        }
    };
    Some((hop, nud))
}
