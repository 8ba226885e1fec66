//! The FIB task: the single owner of bgpd's netlink sockets.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::channel::mpsc::UnboundedReceiver;
use futures::{StreamExt, TryStreamExt};
use ipnet::IpNet;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{AsyncSocket, SocketAddr};
use rtnetlink::MulticastGroup;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use super::nl::{self, Dump, Op, Outcome, Protocols, Writer};
use super::view::{Hop, KernelResolver, KernelRoute, KernelView};
use super::*;
use crate::route::NextHop;

/// Prefixes pushed to the kernel per turn of the task loop.
const CHUNK: usize = 32 * 1024;
/// Prefixes whose repair is logged one by one; beyond, a summary.
const LOG_EACH: usize = 50;

type Monitor = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Installed {
    metric: u32,
    hops: Vec<Hop>,
}

#[derive(Clone, Debug)]
struct Fail {
    errno: i32,
    msg: String,
    attempts: u32,
    retry_at: Instant,
}

#[derive(Clone, Debug, Default)]
struct Entry {
    desired: Vec<NextHop>,
    installed: Option<Installed>,
    /// Found in the kernel at startup, not yet re-learned.
    stale: bool,
    fail: Option<Fail>,
}

enum Target {
    Install(Vec<Hop>),
    Absent,
    Keep,
}

/// Starts the FIB: opens the sockets, mirrors the kernel, finds the routes
/// a previous run left, and spawns the task. Returns the handle, the event
/// receiver for the RIB and the task's join handle.
pub async fn spawn(
    cfg: FibConfig,
) -> io::Result<(FibHandle, mpsc::Receiver<FibEvent>, JoinHandle<()>)> {
    let view = Arc::new(RwLock::new(KernelView::new(
        cfg.protocol,
        cfg.table,
        cfg.resolve_via_default,
    )));
    let monitor = open_monitor(cfg.protocol)?;
    let (conn, dump, _) = rtnetlink::new_connection_with_strict_check()?;
    tokio::spawn(conn);
    let writer = if cfg.install {
        Some(Writer::new(cfg.protocol, cfg.table, cfg.metric)?)
    } else {
        None
    };
    let (ev_tx, ev_rx) = mpsc::channel(16);
    let (tx, rx) = mpsc::channel(1024);
    let mut fib = Fib {
        cfg,
        view: view.clone(),
        writer,
        dump,
        events: ev_tx,
        entries: HashMap::new(),
        nh_cache: HashMap::new(),
        dirty: HashSet::new(),
        todo: Vec::new(),
        failed: HashSet::new(),
        conflicts: HashSet::new(),
        stale_other_metric: Vec::new(),
        sync_done: false,
        started: Instant::now(),
        seen_gen: 0,
        reconcile_at: None,
        monitor: Some(monitor),
        resync_needed: false,
        ops: Default::default(),
    };
    fib.resync_view().await?;
    if fib.cfg.install {
        fib.adopt_previous().await?;
    } else {
        fib.sync_done = true;
    }
    let task = tokio::spawn(fib.run(rx));
    Ok((
        FibHandle {
            tx,
            resolver: KernelResolver(view),
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
    cfg: FibConfig,
    view: Arc<RwLock<KernelView>>,
    writer: Option<Writer>,
    dump: rtnetlink::Handle,
    events: mpsc::Sender<FibEvent>,
    entries: HashMap<IpNet, Entry>,
    nh_cache: HashMap<NextHop, Option<Vec<Hop>>>,
    dirty: HashSet<IpNet>,
    todo: Vec<IpNet>,
    failed: HashSet<IpNet>,
    conflicts: HashSet<IpNet>,
    stale_other_metric: Vec<(IpNet, u32)>,
    sync_done: bool,
    started: Instant,
    seen_gen: u64,
    reconcile_at: Option<Instant>,
    monitor: Option<Monitor>,
    resync_needed: bool,
    ops: crate::fib::FibOps,
}

enum Flow {
    Continue,
    Stop,
}

impl Fib {
    async fn run(mut self, mut rx: mpsc::Receiver<FibCommand>) {
        let period = if self.cfg.reconcile_interval.is_zero() {
            Duration::from_secs(365 * 86400)
        } else {
            self.cfg.reconcile_interval
        };
        let mut reconcile_tick =
            tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let mut housekeeping = tokio::time::interval(Duration::from_millis(250));
        info!(
            table = self.cfg.table,
            protocol = self.cfg.protocol,
            metric = self.cfg.metric,
            install = self.cfg.install,
            "FIB task running"
        );
        loop {
            let work = !self.todo.is_empty() || !self.dirty.is_empty();
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
                            FibCommand::Shutdown(tx)
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
                _ = std::future::ready(()), if work => {
                    self.flush_chunk(CHUNK);
                    tokio::task::yield_now().await;
                }
            }
            self.check_view();
        }
        info!("FIB task stopped");
    }

    async fn command(&mut self, cmd: FibCommand) -> Flow {
        match cmd {
            FibCommand::Apply(changes) => {
                for c in changes {
                    self.set_desired(c.prefix.trunc(), c.next_hops.to_vec());
                }
            }
            FibCommand::InitialSyncDone => self.initial_sync_done("the RIB's initial sync"),
            FibCommand::Flush(reply) => {
                self.flush_all();
                let _ = reply.send(());
            }
            FibCommand::Reconcile(reply) => {
                let r = self.reconcile().await;
                let _ = reply.send(r);
            }
            FibCommand::Status(reply) => {
                let _ = reply.send(self.status());
            }
            FibCommand::Lookup(p, reply) => {
                let _ = reply.send(self.prefix_status(&p.trunc()));
            }
            FibCommand::Shutdown(reply) => {
                let r = self.shutdown();
                let _ = reply.send(r);
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    fn set_desired(&mut self, prefix: IpNet, mut next_hops: Vec<NextHop>) {
        next_hops.sort();
        next_hops.dedup();
        if next_hops.is_empty() && !self.entries.contains_key(&prefix) {
            return;
        }
        let e = self.entries.entry(prefix).or_default();
        e.stale = false;
        e.desired = next_hops;
        self.dirty.insert(prefix);
    }

    fn initial_sync_done(&mut self, why: &str) {
        if self.sync_done {
            return;
        }
        self.sync_done = true;
        let mut n = 0;
        for (p, e) in &self.entries {
            if e.stale {
                self.dirty.insert(*p);
                n += 1;
            }
        }
        info!(
            stale = n,
            "initial sync done ({why}): removing routes of a previous run that were not re-learned"
        );
        let ops: Vec<Op> = std::mem::take(&mut self.stale_other_metric)
            .into_iter()
            .map(|(prefix, metric)| Op::Delete { prefix, metric })
            .collect();
        if let Some(w) = self.writer.as_mut() {
            for (op, out) in ops.iter().zip(w.run(&ops)) {
                if let Outcome::Err(errno, msg) = out
                    && errno != libc::ESRCH
                    && errno != libc::ENOENT
                {
                    warn!(prefix = %op.prefix(), errno, %msg, "cannot remove an old route");
                }
            }
        }
    }

    async fn housekeeping(&mut self) {
        let now = Instant::now();
        if !self.sync_done && now >= self.started + self.cfg.stale_timeout {
            self.initial_sync_done("timeout");
        }
        let due: Vec<IpNet> = self
            .failed
            .iter()
            .filter(|p| {
                self.entries
                    .get(p)
                    .and_then(|e| e.fail.as_ref())
                    .is_none_or(|f| f.retry_at <= now)
            })
            .copied()
            .collect();
        for p in due {
            self.dirty.insert(p);
        }
        if self.resync_needed {
            if self.monitor.is_none() {
                match open_monitor(self.cfg.protocol) {
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
        if self.reconcile_at.is_some_and(|t| t <= now) {
            self.reconcile_at = None;
            self.reconcile().await;
        }
    }

    /// A multicast notification (links, addresses, other protocols' routes).
    fn kernel_event(&mut self, msg: NetlinkMessage<RouteNetlinkMessage>) {
        let mut view = self.view.write().unwrap_or_else(|e| e.into_inner());
        match msg.payload {
            NetlinkPayload::InnerMessage(m) => match m {
                RouteNetlinkMessage::NewLink(l) | RouteNetlinkMessage::DelLink(l) => {
                    let deleted = matches!(m_kind(&msg.header), Kind::Del);
                    if view.link(&l, deleted) {
                        debug!(ifindex = l.header.index, "link changed");
                        // A link going down makes the kernel drop routes
                        // through it without telling (IPv4): check soon.
                        self.reconcile_at
                            .get_or_insert(Instant::now() + Duration::from_secs(1));
                    }
                }
                RouteNetlinkMessage::NewAddress(a) => {
                    view.address(&a, false);
                }
                RouteNetlinkMessage::DelAddress(a) => {
                    view.address(&a, true);
                }
                RouteNetlinkMessage::NewRoute(r) => {
                    if let Some(k) = KernelRoute::from_message(&r) {
                        view.route(k, false);
                    }
                }
                RouteNetlinkMessage::DelRoute(r) => {
                    if let Some(k) = KernelRoute::from_message(&r) {
                        view.route(k, true);
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

    /// After view changes: re-resolve next hops, mark the prefixes whose
    /// resolution or foreign-conflict state changed, tell the RIB.
    fn check_view(&mut self) {
        let view = self.view.read().unwrap_or_else(|e| e.into_inner());
        if view.generation == self.seen_gen {
            return;
        }
        self.seen_gen = view.generation;
        let mut changed = HashSet::new();
        for (nh, cached) in self.nh_cache.iter_mut() {
            let now = view.resolve(nh);
            if now != *cached {
                changed.insert(*nh);
                *cached = now;
            }
        }
        if !changed.is_empty() {
            debug!(next_hops = changed.len(), "next-hop resolution changed");
            for (p, e) in &self.entries {
                if e.desired.iter().any(|n| changed.contains(n)) {
                    self.dirty.insert(*p);
                }
            }
        }
        // Prefixes whose foreign-conflict state may have changed.
        for p in self.conflicts.iter() {
            self.dirty.insert(*p);
        }
        for p in self.entries.keys() {
            if !view.foreign(p).is_empty() {
                self.dirty.insert(*p);
            }
        }
        drop(view);
        let _ = self.events.try_send(FibEvent::ReachabilityChanged);
    }

    fn target(&mut self, view: &KernelView, prefix: &IpNet) -> Target {
        let Some(e) = self.entries.get(prefix) else {
            return Target::Absent;
        };
        if e.desired.is_empty() {
            return if e.stale && !self.sync_done {
                Target::Keep
            } else {
                Target::Absent
            };
        }
        if view
            .foreign(prefix)
            .iter()
            .any(|r| r.metric == self.cfg.metric)
        {
            self.conflicts.insert(*prefix);
            return Target::Absent;
        }
        self.conflicts.remove(prefix);
        let mut hops = Vec::new();
        for nh in &e.desired {
            let r = self.nh_cache.entry(*nh).or_insert_with(|| view.resolve(nh));
            if let Some(h) = r {
                hops.extend_from_slice(h);
            }
        }
        hops.sort();
        hops.dedup();
        if hops.is_empty() {
            Target::Absent
        } else {
            Target::Install(hops)
        }
    }

    fn flush_all(&mut self) {
        while !self.todo.is_empty() || !self.dirty.is_empty() {
            self.flush_chunk(CHUNK);
        }
    }

    /// Pushes up to `limit` dirty prefixes to the kernel.
    fn flush_chunk(&mut self, limit: usize) {
        if self.todo.is_empty() {
            self.todo = self.dirty.drain().collect();
            // In address order (taken from the end): neighbouring prefixes
            // share the kernel's LC-trie nodes (net/ipv4/fib_trie.c), so
            // ordered inserts stay in cache; random order is ~1.5x slower.
            self.todo.sort_unstable_by(|a, b| b.cmp(a));
        }
        let n = self.todo.len().min(limit);
        let batch: Vec<IpNet> = self.todo.drain(self.todo.len() - n..).collect();
        if self.writer.is_none() {
            // --no-install: nothing goes to the kernel.
            for p in batch {
                if self.entries.get(&p).is_some_and(|e| e.desired.is_empty()) {
                    self.entries.remove(&p);
                }
            }
            return;
        }
        let view_lock = self.view.clone();
        let view = view_lock.read().unwrap_or_else(|e| e.into_inner());
        let mut ops = Vec::with_capacity(batch.len());
        for p in batch {
            let t = self.target(&view, &p);
            let installed = self.entries.get(&p).and_then(|e| e.installed.clone());
            match (t, installed) {
                (Target::Keep, _) => {}
                (Target::Install(hops), Some(i))
                    if i.metric == self.cfg.metric && i.hops == hops =>
                {
                    self.clear_fail(&p);
                }
                (Target::Install(hops), i) => {
                    if let Some(i) = i.filter(|i| i.metric != self.cfg.metric) {
                        ops.push(Op::Delete {
                            prefix: p,
                            metric: i.metric,
                        });
                    }
                    ops.push(Op::Replace { prefix: p, hops });
                }
                (Target::Absent, Some(i)) => ops.push(Op::Delete {
                    prefix: p,
                    metric: i.metric,
                }),
                (Target::Absent, None) => {
                    self.clear_fail(&p);
                    self.forget_if_idle(&p);
                }
            }
        }
        drop(view);
        if ops.is_empty() {
            return;
        }
        let outcomes = self.writer.as_mut().expect("install mode").run(&ops);
        for (op, out) in ops.into_iter().zip(outcomes) {
            self.outcome(op, out);
        }
    }

    fn clear_fail(&mut self, p: &IpNet) {
        if self.failed.remove(p)
            && let Some(e) = self.entries.get_mut(p)
        {
            e.fail = None;
        }
    }

    fn forget_if_idle(&mut self, p: &IpNet) {
        if self
            .entries
            .get(p)
            .is_some_and(|e| e.desired.is_empty() && e.installed.is_none() && !e.stale)
        {
            self.entries.remove(p);
            self.failed.remove(p);
        }
    }

    fn outcome(&mut self, op: Op, out: Outcome) {
        let p = op.prefix();
        match (&op, &out) {
            (Op::Replace { .. }, Outcome::Ok) => self.ops.replaced += 1,
            (Op::Delete { .. }, Outcome::Ok) => self.ops.deleted += 1,
            (Op::Delete { .. }, Outcome::Err(e, _)) if *e == libc::ESRCH || *e == libc::ENOENT => {
                self.ops.deleted += 1
            }
            (_, Outcome::Err(..)) => self.ops.errors += 1,
            (_, Outcome::Unknown) => self.ops.unacknowledged += 1,
        }
        match (op, out) {
            (Op::Replace { hops, .. }, Outcome::Ok) => {
                let metric = self.cfg.metric;
                let e = self.entries.entry(p).or_default();
                e.installed = Some(Installed { metric, hops });
                self.clear_fail(&p);
            }
            (Op::Delete { .. }, Outcome::Ok) => {
                if let Some(e) = self.entries.get_mut(&p) {
                    e.installed = None;
                    e.stale = false;
                }
                self.clear_fail(&p);
                self.forget_if_idle(&p);
            }
            (Op::Delete { .. }, Outcome::Err(errno, _))
                if errno == libc::ESRCH || errno == libc::ENOENT =>
            {
                // Already gone (the kernel flushed it with its link, or
                // someone deleted it): done.
                if let Some(e) = self.entries.get_mut(&p) {
                    e.installed = None;
                    e.stale = false;
                }
                self.clear_fail(&p);
                self.forget_if_idle(&p);
            }
            (op, Outcome::Err(errno, msg)) => {
                let what = if matches!(op, Op::Replace { .. }) {
                    "install"
                } else {
                    "remove"
                };
                let e = self.entries.entry(p).or_default();
                let attempts = e.fail.as_ref().map_or(0, |f| f.attempts) + 1;
                let backoff =
                    Duration::from_millis(500u64 << attempts.min(6)).min(Duration::from_secs(30));
                warn!(
                    prefix = %p,
                    errno,
                    error = %std::io::Error::from_raw_os_error(errno),
                    kernel = %msg,
                    attempts,
                    "cannot {what} route; retrying in {backoff:?}"
                );
                e.fail = Some(Fail {
                    errno,
                    msg,
                    attempts,
                    retry_at: Instant::now() + backoff,
                });
                self.failed.insert(p);
                if errno == libc::ENOBUFS || errno == libc::ENOMEM {
                    self.reconcile_at
                        .get_or_insert(Instant::now() + Duration::from_secs(1));
                }
            }
            (op, Outcome::Unknown) => {
                warn!(prefix = %op.prefix(), "no kernel ack; checking the kernel soon");
                self.dirty.insert(p);
                self.reconcile_at
                    .get_or_insert(Instant::now() + Duration::from_secs(1));
            }
        }
    }

    /// Dumps routes of one family in one table.
    async fn dump_routes(
        &self,
        family: AddressFamily,
        table: u32,
        which: Protocols,
    ) -> io::Result<Vec<KernelRoute>> {
        let mut dump = Dump::routes(u8::from(family), table, which)?;
        let mut out = Vec::new();
        loop {
            match dump.next(|r| out.push(r)) {
                Ok(true) => tokio::task::yield_now().await,
                Ok(false) => break,
                // The table does not exist (yet): no routes in it.
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Rebuilds the kernel mirror from dumps.
    async fn resync_view(&mut self) -> io::Result<()> {
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
        let mut routes = Vec::new();
        let mut tables = vec![self.cfg.table];
        if self.cfg.table != RT_TABLE_MAIN {
            tables.push(RT_TABLE_MAIN);
        }
        for t in tables {
            for f in [AddressFamily::Inet, AddressFamily::Inet6] {
                routes.extend(
                    self.dump_routes(f, t, Protocols::Except(self.cfg.protocol))
                        .await?
                        .into_iter()
                        .filter(|r| r.protocol != self.cfg.protocol),
                );
            }
        }
        {
            let mut v = self.view.write().unwrap_or_else(|e| e.into_inner());
            v.clear();
            for l in &links {
                v.link(l, false);
            }
            for a in &addrs {
                v.address(a, false);
            }
            for r in routes {
                v.route(r, false);
            }
            debug!(
                links = links.len(),
                addresses = addrs.len(),
                "kernel view synchronised"
            );
        }
        self.check_view();
        Ok(())
    }

    async fn dump_ours(&self) -> io::Result<Vec<KernelRoute>> {
        let mut out = self
            .dump_routes(
                AddressFamily::Inet,
                self.cfg.table,
                Protocols::Only(self.cfg.protocol),
            )
            .await?;
        out.extend(
            self.dump_routes(
                AddressFamily::Inet6,
                self.cfg.table,
                Protocols::Only(self.cfg.protocol),
            )
            .await?,
        );
        Ok(out)
    }

    /// At startup: routes of our protocol from a previous run stay (stale)
    /// until the RIB re-learns them or the initial sync ends.
    async fn adopt_previous(&mut self) -> io::Result<()> {
        let ours = self.dump_ours().await?;
        let n = ours.len();
        for r in ours {
            if r.metric != self.cfg.metric {
                self.stale_other_metric.push((r.prefix, r.metric));
                continue;
            }
            let e = self.entries.entry(r.prefix).or_default();
            e.installed = Some(Installed {
                metric: r.metric,
                hops: r.gateway_hops(),
            });
            e.stale = true;
        }
        if n > 0 {
            info!(
                routes = n,
                "found routes of a previous run; keeping them until the initial sync"
            );
        }
        Ok(())
    }

    /// Compares desired with the kernel and repairs the difference.
    async fn reconcile(&mut self) -> ReconcileReport {
        let mut report = ReconcileReport::default();
        if self.writer.is_none() {
            return report;
        }
        self.flush_all();
        let ours = match self.dump_ours().await {
            Ok(o) => o,
            Err(e) => {
                error!(error = %e, "cannot dump our routes; check skipped");
                self.reconcile_at = Some(Instant::now() + Duration::from_secs(5));
                return report;
            }
        };
        report.kernel_routes = ours.len();
        let mut kernel: HashMap<IpNet, Installed> = HashMap::with_capacity(ours.len());
        for r in ours {
            if r.metric != self.cfg.metric {
                warn!(prefix = %r.prefix, metric = r.metric, "removing our route with another metric");
                self.stale_other_metric.push((r.prefix, r.metric));
                continue;
            }
            kernel.insert(
                r.prefix,
                Installed {
                    metric: r.metric,
                    hops: r.gateway_hops(),
                },
            );
        }
        let (mut missing, mut unexpected, mut differ) = (Vec::new(), Vec::new(), Vec::new());
        for (p, e) in self.entries.iter_mut() {
            match (&e.installed, kernel.remove(p)) {
                (Some(_), None) => {
                    e.installed = None;
                    missing.push(*p);
                }
                (Some(i), Some(k)) if *i != k => {
                    e.installed = Some(k);
                    differ.push(*p);
                }
                (None, Some(k)) => {
                    e.installed = Some(k);
                    unexpected.push(*p);
                }
                _ => {}
            }
        }
        for (p, k) in kernel {
            let e = self.entries.entry(p).or_default();
            e.installed = Some(k);
            e.stale = !self.sync_done;
            unexpected.push(p);
        }
        for p in missing.iter().chain(&unexpected).chain(&differ) {
            self.dirty.insert(*p);
        }
        if self.sync_done && !self.stale_other_metric.is_empty() {
            self.sync_done = false;
            self.initial_sync_done("reconcile");
        }
        self.flush_all();
        let installed_now = |s: &Self, p: &IpNet| {
            s.entries
                .get(p)
                .and_then(|e| e.installed.as_ref())
                .is_some()
        };
        for p in missing {
            if installed_now(self, &p) {
                report.reinstalled.push(p);
            }
        }
        for p in unexpected {
            if !installed_now(self, &p) {
                report.removed.push(p);
            }
        }
        for p in differ {
            if installed_now(self, &p) {
                report.replaced.push(p);
            } else {
                report.removed.push(p);
            }
        }
        for p in &self.failed {
            if let Some(f) = self.entries.get(p).and_then(|e| e.fail.as_ref()) {
                report.failed.push((
                    *p,
                    format!("{} {}", io::Error::from_raw_os_error(f.errno), f.msg),
                ));
            }
        }
        for (what, list) in [
            ("missing route reinstalled", &report.reinstalled),
            ("unwanted route removed", &report.removed),
            ("route with wrong next hops replaced", &report.replaced),
        ] {
            for p in list.iter().take(LOG_EACH) {
                warn!(prefix = %p, "kernel drift repaired: {what}");
            }
            if list.len() > LOG_EACH {
                warn!(
                    count = list.len(),
                    "kernel drift repaired: {what} (only the first {LOG_EACH} logged)"
                );
            }
        }
        if report.repaired() == 0 {
            debug!(routes = report.kernel_routes, "kernel check: no drift");
        }
        report
    }

    fn shutdown(&mut self) -> ShutdownReport {
        let mut r = ShutdownReport::default();
        if self.writer.is_none() {
            return r;
        }
        if let Some(keep) = self.cfg.keep_on_shutdown {
            self.flush_all();
            r.kept = self
                .entries
                .values()
                .filter(|e| e.installed.is_some())
                .count();
            info!(
                routes = r.kept,
                "shutdown: leaving our routes in the kernel for {keep:?} (graceful restart)"
            );
            return r;
        }
        let mut ops: Vec<Op> = self
            .entries
            .iter()
            .filter_map(|(p, e)| {
                e.installed.as_ref().map(|i| Op::Delete {
                    prefix: *p,
                    metric: i.metric,
                })
            })
            .collect();
        ops.extend(
            self.stale_other_metric
                .drain(..)
                .map(|(prefix, metric)| Op::Delete { prefix, metric }),
        );
        let outs = self.writer.as_mut().expect("install mode").run(&ops);
        for (op, out) in ops.iter().zip(outs) {
            match out {
                Outcome::Ok => r.removed += 1,
                Outcome::Err(errno, _) if errno == libc::ESRCH || errno == libc::ENOENT => {}
                Outcome::Err(errno, msg) => {
                    warn!(prefix = %op.prefix(), errno, %msg, "shutdown: cannot remove route")
                }
                Outcome::Unknown => warn!(prefix = %op.prefix(), "shutdown: no ack"),
            }
        }
        info!(
            routes = r.removed,
            "shutdown: removed our routes from the kernel"
        );
        r
    }

    fn prefix_status(&self, p: &IpNet) -> Option<PrefixStatus> {
        let e = self.entries.get(p)?;
        let view = self.view.read().unwrap_or_else(|e| e.into_inner());
        let foreign: Vec<ForeignRoute> = view
            .foreign(p)
            .iter()
            .map(|r| ForeignRoute {
                prefix: *p,
                protocol: r.protocol,
                metric: r.metric,
            })
            .collect();
        let state = if self.writer.is_none() {
            PrefixState::NotInstalled
        } else if e.desired.is_empty() && e.stale {
            PrefixState::Stale
        } else if let Some(f) = foreign.iter().find(|f| f.metric == self.cfg.metric) {
            PrefixState::ForeignConflict {
                protocol: f.protocol,
                metric: f.metric,
            }
        } else if let Some(f) = &e.fail {
            PrefixState::Failed {
                errno: f.errno,
                error: format!("{}: {}", io::Error::from_raw_os_error(f.errno), f.msg),
                attempts: f.attempts,
            }
        } else if let Some(i) = &e.installed {
            PrefixState::Installed {
                hops: i.hops.iter().map(|h| hop_name(&view, h)).collect(),
            }
        } else {
            PrefixState::Pending
        };
        Some(PrefixStatus {
            prefix: *p,
            desired: e.desired.iter().map(|n| n.to_string()).collect(),
            state,
            foreign,
        })
    }

    fn status(&self) -> FibStatus {
        let mut s = FibStatus {
            install: self.cfg.install,
            table: self.cfg.table,
            protocol: self.cfg.protocol,
            metric: self.cfg.metric,
            initial_sync_done: self.sync_done,
            ops: self.ops,
            ..Default::default()
        };
        for (p, e) in &self.entries {
            if !e.desired.is_empty() {
                s.desired += 1;
            }
            if e.installed.is_some() {
                s.installed += 1;
            }
            let interesting = e.stale
                || e.fail.is_some()
                || (!e.desired.is_empty() && e.installed.is_none())
                || self.conflicts.contains(p);
            let st = if interesting
                || !self
                    .view
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .foreign(p)
                    .is_empty()
            {
                self.prefix_status(p)
            } else {
                None
            };
            if let Some(st) = st {
                match st.state {
                    PrefixState::Pending => s.pending += 1,
                    PrefixState::Failed { .. } => s.failed += 1,
                    PrefixState::ForeignConflict { .. } => s.conflicts += 1,
                    PrefixState::Stale => s.stale += 1,
                    _ => {}
                }
                s.problems.push(st);
            }
        }
        s.problems.sort_by_key(|p| p.prefix);
        s
    }
}

fn hop_name(view: &KernelView, h: &Hop) -> String {
    match view.link_name(h.ifindex) {
        Some(n) => format!("{} dev {n}", h.gateway),
        None => h.to_string(),
    }
}

enum Kind {
    New,
    Del,
}

fn m_kind(h: &netlink_packet_core::NetlinkHeader) -> Kind {
    // RTM_DELLINK is 17.
    if h.message_type == 17 {
        Kind::Del
    } else {
        Kind::New
    }
}

async fn next_event(
    m: &mut Option<Monitor>,
) -> Option<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)> {
    match m {
        Some(m) => m.next().await,
        None => std::future::pending().await,
    }
}
