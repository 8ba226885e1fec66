//! The FIB task: the single owner of bgpd's netlink sockets.
//!
//! Per prefix it keeps a [`Slot`] (8 bytes in a prefix trie): the id of
//! the desired next-hop set, the id of the installed hop set and a few
//! flags. The sets themselves are interned once each; a desired set caches
//! its resolution through the kernel view until the view changes. Failures
//! and foreign conflicts are rare and live in side maps.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::channel::mpsc::UnboundedReceiver;
use futures::{StreamExt, TryStreamExt};
use ipnet::IpNet;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{AsyncSocket, SocketAddr};
use rtnetlink::MulticastGroup;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use super::nl::{self, Dump, HopsId, Op, Outcome, Protocols, Writer};
use super::slots::{CONFLICT, DIRTY, FAILED, Interner, Queue, SEEN, STALE, Slot, Slots, WANT_BITS};
use super::view::{Hop, KernelResolver, KernelRoute, KernelView};
use super::*;
use crate::route::NextHop;

/// Prefixes pushed to the kernel per turn of the task loop.
const CHUNK: usize = 32 * 1024;
/// Prefixes whose repair is logged one by one; beyond, a summary.
const LOG_EACH: usize = 50;

type Monitor = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

#[derive(Clone, Debug)]
struct Fail {
    errno: i32,
    msg: String,
    attempts: u32,
    retry_at: Instant,
}

enum Target {
    Install(HopsId),
    Absent,
    Keep,
}

/// What a check found, before repairing.
#[derive(Default)]
struct Drift {
    missing: Vec<IpNet>,
    unexpected: Vec<IpNet>,
    differ: Vec<IpNet>,
    other_metric: usize,
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
    let (tx, rx) = mpsc::channel(QUEUE);
    let mut fib = Fib {
        cfg,
        view: view.clone(),
        writer,
        dump,
        events: ev_tx,
        slots: Slots::default(),
        desired: Interner::new(WANT_BITS),
        nh_cache: HashMap::new(),
        hops: Interner::new(32),
        dirty: Queue::default(),
        todo: Queue::default(),
        fails: HashMap::new(),
        conflicts: HashSet::new(),
        stale_other_metric: Vec::new(),
        sync_done: false,
        synced: Arc::new(AtomicBool::new(false)),
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
        fib.synced.store(true, Ordering::Relaxed);
    }
    let synced = fib.synced.clone();
    let task = tokio::spawn(fib.run(rx));
    Ok((
        FibHandle {
            tx,
            resolver: KernelResolver(view),
            synced,
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
    /// For dumps of links and addresses (routes are dumped with nl::Dump).
    dump: rtnetlink::Handle,
    events: mpsc::Sender<FibEvent>,
    slots: Slots,
    /// Desired next-hop sets; the extra is the set's resolution through
    /// the view (a hop-set id holding a reference, 0: unreachable), kept
    /// current by `check_view`.
    desired: Interner<NextHop, HopsId>,
    /// Next hops resolved at `seen_gen` (those of live sets, and of sets
    /// interned since): a new ECMP set resolves its members once each.
    nh_cache: HashMap<NextHop, Option<Vec<Hop>>>,
    /// Hop sets: installed ones (one reference per slot), resolutions (one
    /// per desired set) and those of replaces in flight.
    hops: Interner<Hop>,
    /// Prefixes changed since `todo` was filled (DIRTY in their slot).
    dirty: Queue,
    /// Prefixes being pushed to the kernel, in descending address order.
    todo: Queue,
    /// Prefixes the kernel refused (FAILED in their slot).
    fails: HashMap<IpNet, Fail>,
    /// Prefixes held back by a foreign route (CONFLICT in their slot).
    conflicts: HashSet<IpNet>,
    /// Our routes found with another metric: removed at the initial sync.
    stale_other_metric: Vec<(IpNet, u32)>,
    sync_done: bool,
    /// `sync_done`, for [`FibHandle::initial_sync_over`].
    synced: Arc<AtomicBool>,
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

/// Queues a prefix for the kernel unless it is queued already.
fn mark(s: &mut Slot, dirty: &mut Queue, p: IpNet) {
    if !s.has(DIRTY) {
        s.set(DIRTY, true);
        dirty.push(p);
    }
}

/// Forgets a prefix's failure.
fn clear_fail(s: &mut Slot, fails: &mut HashMap<IpNet, Fail>, p: &IpNet) {
    if s.has(FAILED) {
        s.set(FAILED, false);
        fails.remove(p);
    }
}

/// The on-link hops of an ECMP set: the union of its members' resolutions
/// (`memo` saves resolving a next hop twice), sorted.
fn resolve_set(
    view: &KernelView,
    set: &[NextHop],
    memo: &mut HashMap<NextHop, Option<Vec<Hop>>>,
) -> Vec<Hop> {
    let mut hops = Vec::new();
    for nh in set {
        if let Some(h) = memo.entry(*nh).or_insert_with(|| view.resolve(nh)) {
            hops.extend_from_slice(h);
        }
    }
    hops.sort();
    hops.dedup();
    hops
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
                    self.set_desired(c.prefix.trunc(), &c.next_hops);
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

    fn set_desired(&mut self, prefix: IpNet, next_hops: &[NextHop]) {
        let sorted;
        let next_hops = if next_hops.windows(2).all(|w| w[0] < w[1]) {
            next_hops
        } else {
            let mut v = next_hops.to_vec();
            v.sort();
            v.dedup();
            sorted = v;
            &sorted[..]
        };
        let id = if next_hops.is_empty() {
            0
        } else {
            self.intern_desired(next_hops)
        };
        match self.slots.get_mut(&prefix) {
            Some(s) => {
                let old = s.want();
                s.set_want(id);
                s.set(STALE, false);
                mark(s, &mut self.dirty, prefix);
                self.release_desired(old);
            }
            None if id == 0 => {}
            None => {
                self.slots.insert(prefix, Slot::new(id, 0, DIRTY));
                self.dirty.push(prefix);
            }
        }
    }

    /// A reference to a desired set; a new one is resolved right away.
    fn intern_desired(&mut self, set: &[NextHop]) -> u32 {
        let (id, new) = self.desired.intern(set);
        if new {
            let view = self.view.read().unwrap_or_else(|e| e.into_inner());
            if self.nh_cache.len() > 4 * self.desired.len() + 1024 {
                // Mostly next hops of sets gone since: start over.
                self.nh_cache.clear();
            }
            let hops = if view.generation == self.seen_gen {
                resolve_set(&view, set, &mut self.nh_cache)
            } else {
                resolve_set(&view, set, &mut HashMap::new())
            };
            drop(view);
            let h = if hops.is_empty() {
                0
            } else {
                self.hops.intern(&hops).0
            };
            *self.desired.extra_mut(id) = h;
        }
        id
    }

    fn release_desired(&mut self, id: u32) {
        if let Some(h) = self.desired.release(id) {
            self.hops.release(h);
        }
    }

    fn mark_dirty(&mut self, p: IpNet) {
        if let Some(s) = self.slots.get_mut(&p) {
            mark(s, &mut self.dirty, p);
        }
    }

    fn initial_sync_done(&mut self, why: &str) {
        if self.sync_done {
            return;
        }
        self.sync_done = true;
        self.synced.store(true, Ordering::Relaxed);
        let mut n = 0;
        for (p, s) in self.slots.iter_mut() {
            if s.has(STALE) {
                mark(s, &mut self.dirty, p);
                n += 1;
            }
        }
        info!(
            stale = n,
            "initial sync done ({why}): removing routes of a previous run that were not re-learned"
        );
        let old = std::mem::take(&mut self.stale_other_metric);
        if let Some(w) = self.writer.as_mut() {
            for chunk in old.chunks(CHUNK) {
                let ops: Vec<Op> = chunk
                    .iter()
                    .map(|&(prefix, metric)| Op::Delete { prefix, metric })
                    .collect();
                for (op, out) in ops.iter().zip(w.run(&ops, |_| &[])) {
                    if let Outcome::Err(errno, msg) = out
                        && errno != libc::ESRCH
                        && errno != libc::ENOENT
                    {
                        warn!(prefix = %op.prefix(), errno, %msg, "cannot remove an old route");
                    }
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
            .fails
            .iter()
            .filter(|(_, f)| f.retry_at <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in due {
            self.mark_dirty(p);
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

    /// After view changes: re-resolve the desired sets, mark the prefixes
    /// whose resolution or foreign-conflict state may have changed, tell
    /// the RIB.
    fn check_view(&mut self) {
        let view_lock = self.view.clone();
        let view = view_lock.read().unwrap_or_else(|e| e.into_inner());
        if view.generation == self.seen_gen {
            return;
        }
        self.seen_gen = view.generation;
        // The next hops of the live sets, resolved afresh.
        let mut memo = HashMap::with_capacity(self.nh_cache.len());
        let mut changed = HashSet::new();
        for id in self.desired.ids() {
            let hops = resolve_set(&view, self.desired.get(id), &mut memo);
            let new = if hops.is_empty() {
                0
            } else {
                self.hops.intern(&hops).0
            };
            let old = std::mem::replace(self.desired.extra_mut(id), new);
            if new != old {
                changed.insert(id);
            }
            self.hops.release(old);
        }
        self.nh_cache = memo;
        if !changed.is_empty() {
            debug!(
                sets = changed.len(),
                of = self.desired.len(),
                "next-hop resolution changed"
            );
            for (p, s) in self.slots.iter_mut() {
                if changed.contains(&s.want()) {
                    mark(s, &mut self.dirty, p);
                }
            }
        }
        // Prefixes whose foreign-conflict state may have changed.
        for p in self.conflicts.iter() {
            if let Some(s) = self.slots.get_mut(p) {
                mark(s, &mut self.dirty, *p);
            }
        }
        for p in view.foreign_prefixes() {
            if let Some(s) = self.slots.get_mut(&p) {
                mark(s, &mut self.dirty, p);
            }
        }
        drop(view);
        let _ = self.events.try_send(FibEvent::ReachabilityChanged);
    }

    /// What the kernel should hold for a prefix. Updates its conflict
    /// state, which only matters with something desired.
    fn target(&mut self, view: &KernelView, p: &IpNet, s: &mut Slot) -> Target {
        let want = s.want();
        if want == 0 {
            return if s.has(STALE) && !self.sync_done {
                Target::Keep
            } else {
                Target::Absent
            };
        }
        let conflict = view.foreign_conflict(p, self.cfg.metric);
        if conflict != s.has(CONFLICT) {
            s.set(CONFLICT, conflict);
            if conflict {
                self.conflicts.insert(*p);
            } else {
                self.conflicts.remove(p);
            }
        }
        match *self.desired.extra(want) {
            0 => Target::Absent,
            _ if conflict => Target::Absent,
            h => Target::Install(h),
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
            std::mem::swap(&mut self.todo, &mut self.dirty);
            self.dirty.shrink();
            // In address order: neighbouring prefixes share the kernel's
            // LC-trie nodes (net/ipv4/fib_trie.c), so ordered changes stay
            // in cache; random order is ~1.5x slower. Descending: a delete
            // recomputes its node's suffix length scanning the children
            // from the lowest index (update_suffix), which stops early
            // while those are still there. Measured at 1M routes:
            // withdrawing in ascending order took ~1.5x as long.
            self.todo.sort();
        }
        let mut batch = Vec::with_capacity(limit.min(self.todo.len()));
        while batch.len() < limit
            && let Some(p) = self.todo.pop()
        {
            batch.push(p);
        }
        self.todo.shrink();
        self.push(batch);
        if self.todo.is_empty() && self.dirty.is_empty() {
            // All done: memory freed by withdrawals can go back.
            self.slots.compact();
            #[cfg(debug_assertions)]
            self.check_refs();
        }
    }

    /// Debug builds: every set's reference count is what the slots and
    /// the resolutions hold (no operation is in flight here).
    #[cfg(debug_assertions)]
    fn check_refs(&self) {
        if self.slots.v4.len() + self.slots.v6.len() > 10_000 {
            return;
        }
        let mut want: HashMap<u32, u32> = HashMap::new();
        let mut have: HashMap<u32, u32> = HashMap::new();
        for (_, s) in self.slots.iter() {
            *want.entry(s.want()).or_default() += 1;
            *have.entry(s.have).or_default() += 1;
        }
        for id in self.desired.ids() {
            assert_eq!(
                self.desired.refs(id),
                want.remove(&id).unwrap_or(0),
                "desired set {id}"
            );
            *have.entry(*self.desired.extra(id)).or_default() += 1;
        }
        want.remove(&0);
        assert!(want.is_empty(), "slots name freed desired sets: {want:?}");
        for id in self.hops.ids() {
            assert_eq!(
                self.hops.refs(id),
                have.remove(&id).unwrap_or(0),
                "hop set {id}"
            );
        }
        have.remove(&0);
        assert!(have.is_empty(), "slots name freed hop sets: {have:?}");
    }

    /// Brings the kernel in line for these prefixes.
    fn push(&mut self, batch: Vec<IpNet>) {
        if self.writer.is_none() {
            // --no-install: nothing goes to the kernel.
            for p in batch {
                if let Some(s) = self.slots.get_mut(&p) {
                    s.set(DIRTY, false);
                    if s.want() == 0 {
                        self.forget(&p);
                    }
                }
            }
            return;
        }
        let view_lock = self.view.clone();
        let view = view_lock.read().unwrap_or_else(|e| e.into_inner());
        let mut ops = Vec::with_capacity(batch.len());
        for p in batch {
            let Some(mut s) = self.slots.get(&p).copied() else {
                continue;
            };
            s.set(DIRTY, false);
            let t = self.target(&view, &p, &mut s);
            let mut idle = false;
            match (t, s.have) {
                (Target::Keep, _) => {}
                (Target::Install(h), have) if have == h => {
                    clear_fail(&mut s, &mut self.fails, &p);
                }
                (Target::Install(h), _) => {
                    // The operation holds a reference until its outcome.
                    self.hops.retain(h);
                    ops.push(Op::Replace { prefix: p, hops: h });
                }
                (Target::Absent, 0) => {
                    clear_fail(&mut s, &mut self.fails, &p);
                    idle = s.idle();
                }
                (Target::Absent, _) => ops.push(Op::Delete {
                    prefix: p,
                    metric: self.cfg.metric,
                }),
            }
            if idle {
                self.forget(&p);
            } else if let Some(slot) = self.slots.get_mut(&p) {
                *slot = s;
            }
        }
        drop(view);
        if ops.is_empty() {
            return;
        }
        let Fib { writer, hops, .. } = self;
        let outcomes = writer
            .as_mut()
            .expect("install mode")
            .run(&ops, |id| hops.get(id));
        for (op, out) in ops.into_iter().zip(outcomes) {
            self.outcome(op, out);
        }
    }

    /// Drops a prefix's slot, with the references and side entries it held.
    fn forget(&mut self, p: &IpNet) {
        if let Some(s) = self.slots.remove(p) {
            self.release_desired(s.want());
            self.hops.release(s.have);
            if s.has(FAILED) {
                self.fails.remove(p);
            }
            if s.has(CONFLICT) {
                self.conflicts.remove(p);
            }
        }
    }

    /// A delete is done: nothing of ours is in the kernel for `p`.
    fn removed(&mut self, p: &IpNet) {
        let Some(s) = self.slots.get_mut(p) else {
            return;
        };
        let old = std::mem::take(&mut s.have);
        s.set(STALE, false);
        clear_fail(s, &mut self.fails, p);
        let idle = s.idle();
        self.hops.release(old);
        if idle {
            self.forget(p);
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
                // The operation's reference goes to the slot.
                let old = match self.slots.get_mut(&p) {
                    Some(s) => {
                        clear_fail(s, &mut self.fails, &p);
                        std::mem::replace(&mut s.have, hops)
                    }
                    None => hops,
                };
                self.hops.release(old);
            }
            (Op::Delete { .. }, Outcome::Ok) => self.removed(&p),
            (Op::Delete { .. }, Outcome::Err(errno, _))
                if errno == libc::ESRCH || errno == libc::ENOENT =>
            {
                // Already gone (the kernel flushed it with its link, or
                // someone deleted it): done.
                self.removed(&p);
            }
            (op, Outcome::Err(errno, msg)) => {
                let what = match op {
                    Op::Replace { hops, .. } => {
                        self.hops.release(hops);
                        "install"
                    }
                    Op::Delete { .. } => "remove",
                };
                let Some(s) = self.slots.get_mut(&p) else {
                    return;
                };
                s.set(FAILED, true);
                let attempts = self.fails.get(&p).map_or(0, |f| f.attempts) + 1;
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
                self.fails.insert(
                    p,
                    Fail {
                        errno,
                        msg,
                        attempts,
                        retry_at: Instant::now() + backoff,
                    },
                );
                if errno == libc::ENOBUFS || errno == libc::ENOMEM {
                    self.reconcile_at
                        .get_or_insert(Instant::now() + Duration::from_secs(1));
                }
            }
            (op, Outcome::Unknown) => {
                warn!(prefix = %op.prefix(), "no kernel ack; checking the kernel soon");
                if let Op::Replace { hops, .. } = op {
                    self.hops.release(hops);
                }
                self.mark_dirty(p);
                self.reconcile_at
                    .get_or_insert(Instant::now() + Duration::from_secs(1));
            }
        }
    }

    /// Streams a dump of our routes (protocol and table, both families)
    /// through `f`, one kernel buffer at a time; returns how many.
    async fn scan_ours(&mut self, mut f: impl FnMut(&mut Self, KernelRoute)) -> io::Result<usize> {
        let mut n = 0;
        let mut batch = Vec::new();
        for family in [libc::AF_INET, libc::AF_INET6] {
            let only = Protocols::Only(self.cfg.protocol);
            let mut dump = Dump::routes(family as u8, self.cfg.table, only)?;
            loop {
                let more = match dump.next(|r| batch.push(r)) {
                    Ok(more) => more,
                    // The table does not exist (yet): nothing of ours in it.
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => false,
                    Err(e) => return Err(e),
                };
                n += batch.len();
                for r in batch.drain(..) {
                    f(self, r);
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
        let mut tables = vec![self.cfg.table];
        if self.cfg.table != RT_TABLE_MAIN {
            tables.push(RT_TABLE_MAIN);
        }
        for t in tables {
            for family in [libc::AF_INET, libc::AF_INET6] {
                let others = Protocols::Except(self.cfg.protocol);
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

    /// At startup: routes of our protocol from a previous run stay (stale)
    /// until the RIB re-learns them or the initial sync ends.
    async fn adopt_previous(&mut self) -> io::Result<()> {
        let n = self
            .scan_ours(|fib, r| {
                if r.metric != fib.cfg.metric {
                    fib.stale_other_metric.push((r.prefix, r.metric));
                    return;
                }
                let (h, _) = fib.hops.intern(&r.gateway_hops());
                let old = match fib.slots.get_mut(&r.prefix) {
                    Some(s) => {
                        s.set(STALE, true);
                        std::mem::replace(&mut s.have, h)
                    }
                    None => {
                        fib.slots.insert(r.prefix, Slot::new(0, h, STALE));
                        0
                    }
                };
                fib.hops.release(old);
            })
            .await?;
        if n > 0 {
            info!(
                routes = n,
                "found routes of a previous run; keeping them until the initial sync"
            );
        }
        Ok(())
    }

    /// One of our routes in a check's dump against its slot.
    fn compare(&mut self, r: KernelRoute, d: &mut Drift) {
        if r.metric != self.cfg.metric {
            d.other_metric += 1;
            if d.other_metric <= LOG_EACH {
                warn!(prefix = %r.prefix, metric = r.metric, "removing our route with another metric");
            }
            self.stale_other_metric.push((r.prefix, r.metric));
            return;
        }
        let hops = r.gateway_hops();
        let p = r.prefix;
        let Fib {
            slots,
            hops: sets,
            dirty,
            sync_done,
            ..
        } = self;
        let Some(s) = slots.get_mut(&p) else {
            let (h, _) = sets.intern(&hops);
            let stale = if *sync_done { 0 } else { STALE };
            slots.insert(p, Slot::new(0, h, SEEN | DIRTY | stale));
            dirty.push(p);
            d.unexpected.push(p);
            return;
        };
        if s.has(SEEN) {
            // Listed twice: the first one counts.
            return;
        }
        s.set(SEEN, true);
        if s.have != 0 && sets.get(s.have) == hops.as_slice() {
            return;
        }
        let (h, _) = sets.intern(&hops);
        let old = std::mem::replace(&mut s.have, h);
        if old == 0 {
            d.unexpected.push(p);
        } else {
            d.differ.push(p);
        }
        mark(s, dirty, p);
        sets.release(old);
    }

    /// Compares desired with the kernel and repairs the difference.
    async fn reconcile(&mut self) -> ReconcileReport {
        let mut report = ReconcileReport::default();
        if self.writer.is_none() {
            return report;
        }
        self.flush_all();
        let mut d = Drift::default();
        let scanned = self.scan_ours(|fib, r| fib.compare(r, &mut d)).await;
        if d.other_metric > LOG_EACH {
            warn!(
                count = d.other_metric,
                "removing our routes with another metric (only the first {LOG_EACH} logged)"
            );
        }
        let Fib {
            slots, hops, dirty, ..
        } = self;
        for (p, s) in slots.iter_mut() {
            if s.has(SEEN) {
                s.set(SEEN, false);
            } else if s.have != 0 && scanned.is_ok() {
                // Believed installed, not in the kernel.
                hops.release(std::mem::take(&mut s.have));
                d.missing.push(p);
                mark(s, dirty, p);
            }
        }
        match scanned {
            Ok(n) => report.kernel_routes = n,
            Err(e) => {
                // What the partial dump showed is queued; the rest waits.
                error!(error = %e, "cannot dump our routes; check skipped");
                self.reconcile_at = Some(Instant::now() + Duration::from_secs(5));
                return report;
            }
        }
        if self.sync_done && !self.stale_other_metric.is_empty() {
            self.sync_done = false;
            self.initial_sync_done("reconcile");
        }
        self.flush_all();
        let installed_now = |s: &Self, p: &IpNet| s.slots.get(p).is_some_and(|s| s.have != 0);
        for p in d.missing {
            if installed_now(self, &p) {
                report.reinstalled.push(p);
            }
        }
        for p in d.unexpected {
            if !installed_now(self, &p) {
                report.removed.push(p);
            }
        }
        for p in d.differ {
            if installed_now(self, &p) {
                report.replaced.push(p);
            } else {
                report.removed.push(p);
            }
        }
        for (p, f) in &self.fails {
            report.failed.push((
                *p,
                format!("{} {}", io::Error::from_raw_os_error(f.errno), f.msg),
            ));
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
            r.kept = self.slots.iter().filter(|(_, s)| s.have != 0).count();
            info!(
                routes = r.kept,
                "shutdown: leaving our routes in the kernel for {keep:?} (graceful restart)"
            );
            return r;
        }
        // In chunks: a million routes need no million-entry list.
        let metric = self.cfg.metric;
        let w = self.writer.as_mut().expect("install mode");
        let mut ops = Vec::with_capacity(CHUNK);
        let mut run = |ops: &mut Vec<Op>| {
            for (op, out) in ops.iter().zip(w.run(ops, |_| &[])) {
                match out {
                    Outcome::Ok => r.removed += 1,
                    Outcome::Err(errno, _) if errno == libc::ESRCH || errno == libc::ENOENT => {}
                    Outcome::Err(errno, msg) => {
                        warn!(prefix = %op.prefix(), errno, %msg, "shutdown: cannot remove route")
                    }
                    Outcome::Unknown => warn!(prefix = %op.prefix(), "shutdown: no ack"),
                }
            }
            ops.clear();
        };
        let installed = self.slots.iter().filter(|(_, s)| s.have != 0);
        let ours = installed.map(|(prefix, _)| Op::Delete { prefix, metric });
        let others = self.stale_other_metric.drain(..);
        let others = others.map(|(prefix, metric)| Op::Delete { prefix, metric });
        for op in ours.chain(others) {
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

    fn prefix_status(&self, p: &IpNet) -> Option<PrefixStatus> {
        let view = self.view.read().unwrap_or_else(|e| e.into_inner());
        self.prefix_status_in(&view, p)
    }

    fn prefix_status_in(&self, view: &KernelView, p: &IpNet) -> Option<PrefixStatus> {
        let s = self.slots.get(p)?;
        let foreign: Vec<ForeignRoute> = view
            .foreign(p)
            .iter()
            .map(|r| ForeignRoute {
                prefix: *p,
                protocol: r.protocol,
                metric: r.metric,
            })
            .collect();
        let desired = self.desired.get(s.want());
        let state = if self.writer.is_none() {
            PrefixState::NotInstalled
        } else if desired.is_empty() && s.has(STALE) {
            PrefixState::Stale
        } else if let Some(f) = foreign.iter().find(|f| f.metric == self.cfg.metric) {
            PrefixState::ForeignConflict {
                protocol: f.protocol,
                metric: f.metric,
            }
        } else if let Some(f) = self.fails.get(p).filter(|_| s.has(FAILED)) {
            PrefixState::Failed {
                errno: f.errno,
                error: format!("{}: {}", io::Error::from_raw_os_error(f.errno), f.msg),
                attempts: f.attempts,
            }
        } else if s.have != 0 {
            PrefixState::Installed {
                hops: self
                    .hops
                    .get(s.have)
                    .iter()
                    .map(|h| hop_name(view, h))
                    .collect(),
            }
        } else {
            PrefixState::Pending
        };
        Some(PrefixStatus {
            prefix: *p,
            desired: desired.iter().map(|n| n.to_string()).collect(),
            state,
            foreign,
        })
    }

    /// The state of a prefix as [`Fib::prefix_status_in`] names it, without
    /// building the status (no allocation unless a foreign route exists).
    fn state_of(&self, view: &KernelView, p: &IpNet, s: &Slot) -> StateKind {
        if self.writer.is_none() {
            StateKind::Other
        } else if s.want() == 0 && s.has(STALE) {
            StateKind::Stale
        } else if view.foreign(p).iter().any(|f| f.metric == self.cfg.metric) {
            StateKind::Conflict
        } else if s.has(FAILED) && self.fails.contains_key(p) {
            StateKind::Failed
        } else if s.have != 0 {
            StateKind::Other
        } else {
            StateKind::Pending
        }
    }

    /// Counts, and the first [`PROBLEMS_LISTED`] prefixes (in prefix order)
    /// not installed as desired or with a foreign route: at a million
    /// pending routes the full list would be hundreds of megabytes.
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
        let view = self.view.read().unwrap_or_else(|e| e.into_inner());
        let interesting = |e: &Slot| {
            e.has(STALE) || e.has(FAILED) || (e.want() != 0 && e.have == 0) || e.has(CONFLICT)
        };
        let mut listed = Vec::new();
        let list = |p: IpNet, listed: &mut Vec<IpNet>, omitted: &mut usize| {
            if listed.len() < PROBLEMS_LISTED {
                listed.push(p);
            } else {
                *omitted += 1;
            }
        };
        for (p, e) in self.slots.iter() {
            if e.want() != 0 {
                s.desired += 1;
            }
            if e.have != 0 {
                s.installed += 1;
            }
            if interesting(e) {
                match self.state_of(&view, &p, e) {
                    StateKind::Pending => s.pending += 1,
                    StateKind::Failed => s.failed += 1,
                    StateKind::Conflict => s.conflicts += 1,
                    StateKind::Stale => s.stale += 1,
                    StateKind::Other => {}
                }
                list(p, &mut listed, &mut s.problems_omitted);
            }
        }
        // And every prefix with a foreign route.
        for p in view.foreign_prefixes() {
            if self.slots.get(&p).is_some_and(|e| !interesting(e)) {
                list(p, &mut listed, &mut s.problems_omitted);
            }
        }
        s.problems = listed
            .iter()
            .filter_map(|p| self.prefix_status_in(&view, p))
            .collect();
        s.problems.sort_by_key(|p| p.prefix);
        s
    }
}

/// Prefixes `bgpd show fib` lists one by one; the rest are counted.
const PROBLEMS_LISTED: usize = 1000;

enum StateKind {
    Pending,
    Failed,
    Conflict,
    Stale,
    Other,
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
