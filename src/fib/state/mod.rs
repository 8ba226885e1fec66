//! Desired against installed: the FIB's reconciliation, without I/O.
//!
//! [`FibState`] holds what the RIB wants per prefix, what bgpd believes
//! the kernel holds, and the kernel view next hops resolve through. It is
//! told the RIB's route changes, kernel notifications and dump entries,
//! the outcome of every operation and the time; it answers with the
//! netlink operations to send ([`FibState::next_ops`], in the order to
//! send them) and with reports. It opens no socket, spawns nothing and
//! reads no clock: the FIB task (`task.rs`) does the netlink and feeds it.
//!
//! Per prefix it keeps a [`Slot`] (8 bytes in a prefix trie): the id of
//! the desired next-hop set, the id of the installed hop set and a few
//! flags. The sets themselves are interned once each; a desired set caches
//! its resolution through the kernel view until the view changes. Failures
//! and foreign conflicts are rare and live in side maps.

mod check;
mod objects;
mod ops;
mod status;
#[cfg(test)]
mod tests;

pub use objects::KernelNexthop;
use objects::Objects;
use ops::Fail;
pub use ops::{HopsId, Lookup, NoLookup, Op, Outcome, shutdown_outcome};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use tracing::{debug, info};

use super::liveness::{Ask, Change, HopLiveness, Liveness, Nud};
use super::slots::{
    CONFLICT, DIRTY, FAILED, Interner, Queue, REPOINT, STALE, Slot, Slots, WANT_BITS,
};
use super::view::{Hop, KernelRoute, KernelView, Reachability};
use super::{FibConfig, FibOps};
use crate::route::{ChangeSet, NextHop};

/// How soon a check follows a sign that the kernel may hold something
/// else than bgpd believes: a link event (on link down the kernel drops
/// IPv4 routes through it without a notification), a lost ack, ENOBUFS.
const CHECK_SOON: Duration = Duration::from_secs(1);

enum Target {
    Install(HopsId),
    Absent,
    Keep,
}

/// The FIB's state. See the module documentation.
pub struct FibState {
    cfg: FibConfig,
    view: KernelView,
    slots: Slots,
    /// Desired next-hop sets; the extra is the set's resolution through
    /// the view (a hop-set id holding a reference, 0: unreachable), kept
    /// current by [`FibState::settle`].
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
    /// Our routes found with another metric: removed once the initial
    /// sync is over.
    other_metric: Vec<(IpNet, u32)>,
    sync_done: bool,
    started: Instant,
    seen_gen: u64,
    /// The view's `rib_generation` the RIB was last told of.
    seen_rib_gen: u64,
    /// When a desired-vs-kernel check is due (besides the periodic one).
    check_at: Option<Instant>,
    ops: FibOps,
    /// Whether the on-link next hops in use still answer ARP/ND.
    liveness: Liveness,
    /// The time of the last liveness tick (for the status).
    last_tick: Instant,
    /// Kernel nexthop objects and groups ([`objects`]).
    objects: Objects,
    /// Operations handed out by [`FibState::next_ops`] whose outcomes
    /// have not come back.
    in_flight: usize,
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

impl FibState {
    /// Nothing desired, nothing known of the kernel; `now` starts the
    /// stale timeout. Without `install` the initial sync is over at once
    /// (nothing of a previous run is adopted).
    pub fn new(cfg: FibConfig, now: Instant) -> Self {
        let objects = Objects::new(cfg.install && cfg.nexthop_objects, cfg.protocol);
        let cfg_probe = if cfg.install {
            cfg.nexthop_probe_interval
        } else {
            Duration::ZERO
        };
        FibState {
            view: KernelView::new(cfg.protocol, cfg.table, cfg.resolve_via_default),
            sync_done: !cfg.install,
            cfg,
            slots: Slots::default(),
            desired: Interner::new(WANT_BITS),
            nh_cache: HashMap::new(),
            hops: Interner::new(32),
            dirty: Queue::default(),
            todo: Queue::default(),
            fails: HashMap::new(),
            conflicts: HashSet::new(),
            other_metric: Vec::new(),
            started: now,
            seen_gen: 0,
            seen_rib_gen: 0,
            check_at: None,
            ops: FibOps::default(),
            liveness: Liveness::new(cfg_probe),
            last_tick: now,
            in_flight: 0,
            objects,
        }
    }

    pub fn config(&self) -> &FibConfig {
        &self.cfg
    }

    /// Whether the initial sync is over: routes of a previous run that the
    /// RIB did not re-learn are (being) removed.
    pub fn sync_done(&self) -> bool {
        self.sync_done
    }

    /// Routes the kernel refused and that wait for a retry (kept in step
    /// with the FAILED flag: set by ops, cleared by clear_fail and forget).
    pub fn failed(&self) -> usize {
        self.fails.len()
    }

    // ---- the RIB ----

    /// New desired state per prefix, in order (the later change of a
    /// prefix wins).
    pub fn apply(&mut self, changes: ChangeSet) {
        for c in changes {
            self.set_desired(c.prefix.trunc(), &c.next_hops);
        }
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
                // A route of a previous run stays as it is until the
                // initial sync (see `target`): STALE goes then.
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
            if self.nh_cache.len() > 4 * self.desired.len() + 1024 {
                // Mostly next hops of sets gone since: start over.
                self.nh_cache.clear();
            }
            let hops = if self.view.generation == self.seen_gen {
                resolve_set(&self.view, set, &mut self.nh_cache)
            } else {
                resolve_set(&self.view, set, &mut HashMap::new())
            };
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

    /// The RIB's initial sync is over (or its timeout passed): routes of a
    /// previous run it did not re-learn go.
    pub fn initial_sync_done(&mut self, why: &str) {
        if self.sync_done {
            return;
        }
        self.sync_done = true;
        self.objects.gc_due = true;
        self.remove_stale(why);
    }

    /// Queues the slots of a previous run's routes: those not re-learned
    /// go, those re-learned get what the RIB chose now (nothing happens
    /// where that is what the kernel holds). The routes found with another
    /// metric go with the next operations.
    fn remove_stale(&mut self, why: &str) {
        let (mut gone, mut relearned) = (0, 0);
        for (p, s) in self.slots.iter_mut() {
            if s.has(STALE) {
                if s.want() == 0 {
                    gone += 1;
                } else {
                    s.set(STALE, false);
                    relearned += 1;
                }
                mark(s, &mut self.dirty, p);
            }
        }
        info!(
            stale = gone,
            relearned,
            "initial sync done ({why}): removing routes of a previous run that were not re-learned"
        );
    }

    // ---- time ----

    /// Timers: the stale timeout, and failed prefixes whose retry is due
    /// are queued again.
    pub fn tick(&mut self, now: Instant) {
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
    }

    /// Whether a check was asked for by `now` (a link event, a lost ack,
    /// a failed dump); it is taken.
    pub fn check_due(&mut self, now: Instant) -> bool {
        if self.check_at.is_some_and(|t| t <= now) {
            self.check_at = None;
            return true;
        }
        false
    }

    fn check_soon(&mut self, now: Instant) {
        self.check_at.get_or_insert(now + CHECK_SOON);
    }

    // ---- the kernel's view ----

    /// A link notification (`deleted`: RTM_DELLINK).
    pub fn link(&mut self, m: &LinkMessage, deleted: bool, now: Instant) {
        if self.view.link(m, deleted) {
            debug!(ifindex = m.header.index, "link changed");
            if deleted || !self.view.link_is_up(m.header.index) {
                self.objects.link_down(m.header.index);
            }
            // A link going down makes the kernel drop routes through it
            // without telling (IPv4): check soon.
            self.check_soon(now);
        }
    }

    /// An address notification.
    pub fn address(&mut self, m: &AddressMessage, deleted: bool) {
        self.view.address(m, deleted);
    }

    /// A route notification (bgpd's own are ignored by the view).
    pub fn route(&mut self, r: KernelRoute, deleted: bool) {
        self.view.route(r, deleted);
    }

    // ---- next-hop liveness ----

    /// Every housekeeping tick: which next hops are in use (the desired
    /// sets' resolution, dead hops included), which went silent, and what
    /// to ask the kernel's neighbour tables ([`super::liveness`]).
    pub fn liveness_tick(&mut self, now: Instant) -> Vec<Ask> {
        self.last_tick = now;
        if !self.liveness.enabled() {
            return Vec::new();
        }
        let mut in_use = Vec::new();
        let mut seen: HashSet<NextHop> = HashSet::new();
        for id in self.desired.ids() {
            for nh in self.desired.get(id) {
                if seen.insert(*nh)
                    && let Some(h) = self.view.resolve_any(nh)
                {
                    in_use.extend(h);
                }
            }
        }
        let gone = self.liveness.track(in_use, now);
        self.note_liveness(gone);
        let (asks, changes) = self.liveness.tick(now);
        self.note_liveness(changes);
        asks
    }

    /// A neighbour notification: `hop`'s entry is now in state `nud`.
    pub fn neighbour(&mut self, hop: Hop, nud: Nud, now: Instant) {
        if let Some(c) = self.liveness.neighbour(hop, nud, now) {
            self.note_liveness(vec![c]);
        }
    }

    /// The kernel refused to probe `hop` (its entry is not valid).
    pub fn probe_refused(&mut self, hop: Hop) {
        self.liveness.probe_refused(hop);
    }

    fn note_liveness(&mut self, changes: Vec<Change>) {
        for (hop, alive) in changes {
            if self.view.set_dead(hop, !alive) {
                let dev = self.view.link_name(hop.ifindex).unwrap_or("?").to_string();
                if alive {
                    info!(gateway = %hop.gateway, %dev, "next hop answers again: back in use");
                } else {
                    tracing::warn!(
                        gateway = %hop.gateway,
                        %dev,
                        "next hop does not answer ARP/ND: taken out of every route"
                    );
                }
            }
        }
    }

    /// The gateways of the dead hops, sorted.
    pub fn dead_gateways(&self) -> Vec<std::net::IpAddr> {
        let mut v: Vec<_> = self.liveness.dead().map(|h| h.gateway).collect();
        v.sort();
        v.dedup();
        v
    }

    /// The liveness of every next hop in use.
    pub fn nexthops(&self) -> Vec<HopLiveness> {
        let mut v = self.liveness.status(self.last_tick);
        for h in &mut v {
            h.dev = self.view.link_name(h.ifindex).unwrap_or("?").to_string();
        }
        v
    }

    /// The view anew from full dumps of links, addresses and the other
    /// protocols' routes.
    pub fn resync(
        &mut self,
        links: &[LinkMessage],
        addrs: &[AddressMessage],
        routes: Vec<KernelRoute>,
    ) {
        let v = &mut self.view;
        v.clear();
        for l in links {
            v.link(l, false);
        }
        for a in addrs {
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

    /// After view changes: re-resolves the desired sets and queues the
    /// prefixes whose resolution or foreign-conflict state may have
    /// changed. Returns whether anything the RIB's snapshot shows changed
    /// since the last call (dead next hops are the FIB's alone): then the
    /// RIB should hear of it ([`FibState::reachability`]).
    pub fn settle(&mut self) -> bool {
        if self.view.generation == self.seen_gen {
            return false;
        }
        self.seen_gen = self.view.generation;
        let rib_changed = self.view.rib_generation != self.seen_rib_gen;
        self.seen_rib_gen = self.view.rib_generation;
        // The next hops of the live sets, resolved afresh.
        let mut memo = HashMap::with_capacity(self.nh_cache.len());
        let mut changed = HashSet::new();
        for id in self.desired.ids() {
            let hops = resolve_set(&self.view, self.desired.get(id), &mut memo);
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
        for p in self.view.foreign_prefixes() {
            if let Some(s) = self.slots.get_mut(&p) {
                mark(s, &mut self.dirty, p);
            }
        }
        rib_changed
    }

    /// What next-hop resolution needs, as the RIB's snapshot.
    pub fn reachability(&self) -> Arc<Reachability> {
        self.view.reachability()
    }

    // ---- a previous run ----

    /// At startup, a route of ours from a previous run: it stays (stale)
    /// until the RIB re-learns its prefix or the initial sync ends.
    pub fn adopt(&mut self, r: KernelRoute) {
        if r.metric != self.cfg.metric {
            self.other_metric.push((r.prefix, r.metric));
            return;
        }
        let (h, exact) = self.kernel_have(&r);
        let flags = if exact { STALE } else { STALE | REPOINT };
        let old = match self.slots.get_mut(&r.prefix) {
            Some(s) => {
                s.set(STALE, true);
                s.set(REPOINT, !exact);
                std::mem::replace(&mut s.have, h)
            }
            None => {
                self.slots.insert(r.prefix, Slot::new(0, h, flags));
                0
            }
        };
        self.hops.release(old);
    }

    // ---- operations ----

    /// Whether [`FibState::next_ops`] has something to do.
    pub fn has_work(&self) -> bool {
        !self.todo.is_empty()
            || !self.dirty.is_empty()
            || (self.sync_done && !self.other_metric.is_empty())
            || self.gc_due()
    }

    /// The next operations for the kernel, for up to `limit` queued
    /// prefixes, to be sent in this order and answered with
    /// [`FibState::outcomes`]. Queued prefixes go in descending address
    /// order; routes of ours with another metric go first once the
    /// initial sync is over. May be empty while [`FibState::has_work`]
    /// (prefixes that need no operation).
    ///
    /// One list may still be in flight (sent, its outcomes not yet
    /// handed back: the writer pipelines) when this is called: then only
    /// more prefixes of the round under way come out. They are distinct
    /// from those in flight (a prefix changed again after it was planned
    /// waits in the next round's queue), so no prefix has two operations
    /// in flight. A new round, the group moves at its start, the other
    /// metric's deletes and the collection of unused objects wait until
    /// nothing is in flight, as they read what the kernel holds.
    pub fn next_ops(&mut self, limit: usize) -> Vec<Op> {
        let ops = self.next_ops_inner(limit);
        self.in_flight += ops.len();
        ops
    }

    /// Operations handed out and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn next_ops_inner(&mut self, limit: usize) -> Vec<Op> {
        if self.in_flight > 0 {
            if self.todo.is_empty() {
                return Vec::new();
            }
            let mut ops = Vec::new();
            self.pop_and_plan(limit, &mut ops);
            return ops;
        }
        if self.sync_done && !self.other_metric.is_empty() {
            let n = limit.min(self.other_metric.len());
            return self
                .other_metric
                .drain(..n)
                .map(|(prefix, metric)| Op::Delete { prefix, metric })
                .collect();
        }
        let mut ops = Vec::new();
        if self.todo.is_empty() {
            if self.dirty.is_empty() {
                return if self.gc_due() {
                    self.collect_objects()
                } else {
                    Vec::new()
                };
            }
            std::mem::swap(&mut self.todo, &mut self.dirty);
            self.dirty.shrink();
            debug!(prefixes = self.todo.len(), "FIB round");
            // Descending address order, and a long queue spread so each
            // batch covers the whole range (Queue::spread): a batch that
            // fills or empties one corner of the kernel's LC-trie
            // (net/ipv4/fib_trie.c) makes it resize the same nodes again
            // and again. Measured at 1M routes (benches/floor.rs, Linux
            // 6.18): installing spread took ~0.8x the kernel time of
            // address order, withdrawing ~0.37x (random order does as well
            // for the kernel but costs the slot lookups their cache).
            self.todo.sort();
            self.todo.spread(limit);
            // Groups whose routes all move the same way move at once, and
            // first: the kernel forwards right before the round's slots
            // are even looked at.
            self.move_groups(&mut ops);
            if !ops.is_empty() {
                return ops;
            }
        }
        self.pop_and_plan(limit, &mut ops);
        ops
    }

    /// Plans up to `limit` prefixes of the round's queue.
    fn pop_and_plan(&mut self, limit: usize, ops: &mut Vec<Op>) {
        let mut batch = Vec::with_capacity(limit.min(self.todo.len()));
        while batch.len() < limit
            && let Some(p) = self.todo.pop()
        {
            batch.push(p);
        }
        self.todo.shrink();
        self.plan(batch, ops);
        if ops.is_empty() {
            self.maybe_idle();
        }
    }

    /// The operations these prefixes need to bring the kernel in line.
    fn plan(&mut self, batch: Vec<IpNet>, ops: &mut Vec<Op>) {
        if !self.cfg.install {
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
        ops.reserve(batch.len());
        for p in batch {
            let Some(mut s) = self.slots.get(&p).copied() else {
                continue;
            };
            s.set(DIRTY, false);
            let t = self.target(&p, &mut s);
            let mut idle = false;
            match (t, s.have) {
                (Target::Keep, _) => {}
                (Target::Install(h), have)
                    if !s.has(REPOINT)
                        && (have == h
                            || (have != 0 && self.hops.get(have) == self.hops.get(h))) =>
                {
                    // The same hops (a group replaced in place gave the
                    // installed set the target's hops).
                    clear_fail(&mut s, &mut self.fails, &p);
                }
                (Target::Install(h), _) => {
                    // The operation holds a reference until its outcome.
                    self.hops.retain(h);
                    self.ensure_group(h, ops);
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
    }

    /// What the kernel should hold for a prefix. Updates its conflict
    /// state, which only matters with something desired.
    fn target(&mut self, p: &IpNet, s: &mut Slot) -> Target {
        // RFC 4724 §4.1, the restarting speaker defers: a route a previous
        // run left stays exactly as it is until the initial sync is over
        // (every peer's End-of-RIB, or the stale timeout), whatever the RIB
        // wants meanwhile. A restart then costs no kernel message for a
        // route that ends unchanged, and no half-learned ECMP set replaces
        // a whole one. Only a prefix the kernel lacks is installed at once.
        if s.has(STALE) && !self.sync_done && s.have != 0 {
            return Target::Keep;
        }
        let want = s.want();
        if want == 0 {
            return if s.has(STALE) && !self.sync_done {
                Target::Keep
            } else {
                Target::Absent
            };
        }
        let conflict = self.view.foreign_conflict(p, self.cfg.metric);
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

    /// Once nothing is queued: memory freed by withdrawals goes back, and
    /// debug builds check the reference counts.
    fn maybe_idle(&mut self) {
        if self.todo.is_empty() && self.dirty.is_empty() && self.in_flight == 0 {
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

    // ---- shutdown ----

    /// Routes of ours believed in the kernel.
    pub fn installed(&self) -> usize {
        self.slots.iter().filter(|(_, s)| s.have != 0).count()
    }

    /// Whether bgpd's routes stay in the kernel when it stops
    /// (`keep_on_shutdown`): then what is queued should still go, and
    /// [`FibState::installed`] routes are kept.
    pub fn keeps_at_shutdown(&self) -> bool {
        self.cfg.install && self.cfg.keep_on_shutdown.is_some()
    }

    /// Stopping without keeping: the deletes of every route of ours in the
    /// kernel (none when they are kept, unless `remove` asks for them:
    /// SIGINT, `bgpd stop --flush`), produced as they are taken (a million
    /// routes need no list); tally their outcomes with [`shutdown_outcome`].
    pub fn shutdown_ops(&mut self, remove: bool) -> impl Iterator<Item = Op> + '_ {
        let on = self.cfg.install && (remove || !self.keeps_at_shutdown());
        let metric = self.cfg.metric;
        let installed = self.slots.iter().filter(move |(_, s)| on && s.have != 0);
        let ours = installed.map(move |(prefix, _)| Op::Delete { prefix, metric });
        let others = self.other_metric.drain(..).filter(move |_| on);
        let others = others.map(|(prefix, metric)| Op::Delete { prefix, metric });
        // Then the objects, groups first (none left in use).
        let mut objects: Vec<Op> = Vec::new();
        if on {
            let (groups, hops) = self.objects.all_ids();
            objects.extend(
                groups
                    .into_iter()
                    .chain(hops)
                    .map(|id| Op::DelObject { id }),
            );
        }
        ours.chain(others).chain(objects)
    }
}
