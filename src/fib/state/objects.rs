//! Kernel nexthop objects (RTM_NEWNEXTHOP, Linux >= 5.3): one object per
//! on-link hop, one group per installed hop set, and routes that point at
//! their group (RTA_NH_ID) instead of carrying their hops.
//!
//! A group stands for an installed hop set, whose interned id is what a
//! slot's `have` holds, so the rest of the state is the same with objects
//! or without. What objects add is prefix-independent convergence: when
//! every route of a group moves to the same new hops (a next hop dead, a
//! peer gone, a resolution changed), the group is replaced in place, one
//! kernel operation for any number of prefixes, and the set's id is given
//! the new hops ([`super::Interner::rekey`]) so that the slots are right
//! without being touched.
//!
//! Ownership: object ids are taken from bgpd's own range (the protocol
//! number in the top byte) and never from an id someone else holds; only
//! objects with bgpd's protocol are ever replaced or deleted. Objects
//! nothing uses go once the queues are empty, never before the initial
//! sync (a previous run's routes may still point at them); a restart
//! adopts the previous run's objects with its routes.
//!
//! The kernel deletes the objects of a link that goes down (carrier loss
//! too), and with them the groups left empty and their routes, and says
//! nothing. [`FibState::link`] forgets those objects; what the kernel
//! dropped silently is found by the check ([`FibState::check_object`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use tracing::{debug, info, warn};

use super::ops::{HopsId, Lookup, Op, Outcome, gone};
use super::{FibState, Target, mark};
use crate::fib::slots::REPOINT;
use crate::fib::view::{Hop, KernelRoute};

/// Ids per protocol: the protocol number is the top byte of bgpd's ids.
const RANGE: u32 = 1 << 24;

/// A nexthop object as a dump shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelNexthop {
    pub id: u32,
    pub protocol: u8,
    /// The hop of a single nexthop (gateway and interface).
    pub hop: Option<Hop>,
    /// The member ids of a group.
    pub group: Vec<u32>,
}

/// bgpd's beliefs about its kernel objects.
#[derive(Default)]
pub(super) struct Objects {
    /// Whether routes use objects (config, and the kernel has them).
    pub on: bool,
    base: u32,
    /// The next id to try, from 1 in the range.
    next: u32,
    /// Ids in the range that are not bgpd's.
    foreign: HashSet<u32>,
    /// Hop objects the kernel holds, both ways.
    hop_id: HashMap<Hop, u32>,
    id_hop: HashMap<u32, Hop>,
    /// Groups the kernel holds, with their members.
    groups: HashMap<u32, Arc<[Hop]>>,
    /// The group of each installed hop set that has one, both ways.
    group_of: HashMap<HopsId, u32>,
    set_of: HashMap<u32, HopsId>,
    /// Hop sets whose group must be sent again (the check found it
    /// changed).
    regroup: Vec<HopsId>,
    /// Hop sets whose group the kernel refused as invalid (EINVAL): their
    /// routes carry their hops.
    plain: HashSet<HopsId>,
    /// Something may have become unused.
    pub gc_due: bool,
}

impl Objects {
    pub fn new(on: bool, protocol: u8) -> Objects {
        Objects {
            on,
            base: u32::from(protocol) << 24,
            next: 1,
            ..Objects::default()
        }
    }

    /// Whether an id is in bgpd's range.
    fn ours(&self, id: u32) -> bool {
        id > self.base && id - self.base < RANGE
    }

    /// A free id of bgpd's range.
    fn alloc(&mut self) -> u32 {
        for _ in 0..RANGE {
            let id = self.base + self.next;
            self.next = if self.next + 1 >= RANGE {
                1
            } else {
                self.next + 1
            };
            let taken = self.foreign.contains(&id)
                || self.id_hop.contains_key(&id)
                || self.groups.contains_key(&id)
                || self.set_of.contains_key(&id);
            if !taken {
                return id;
            }
        }
        panic!("nexthop object ids exhausted");
    }

    fn set_group(&mut self, h: HopsId, id: u32) {
        if let Some(old) = self.group_of.insert(h, id) {
            self.set_of.remove(&old);
        }
        if let Some(old) = self.set_of.insert(id, h)
            && old != h
        {
            self.group_of.remove(&old);
        }
    }

    fn unset_group(&mut self, h: HopsId) {
        if let Some(id) = self.group_of.remove(&h) {
            self.set_of.remove(&id);
        }
    }

    fn forget_hop(&mut self, id: u32) {
        if let Some(h) = self.id_hop.remove(&id)
            && self.hop_id.get(&h) == Some(&id)
        {
            self.hop_id.remove(&h);
        }
    }

    /// The ids of every object believed in: groups, hops.
    pub fn all_ids(&self) -> (Vec<u32>, Vec<u32>) {
        (
            self.groups.keys().copied().collect(),
            self.id_hop.keys().copied().collect(),
        )
    }

    /// The group a route of hop set `h` points at; `None`: a plain route.
    pub fn group_for(&self, h: HopsId) -> Option<u32> {
        if !self.on || self.plain.contains(&h) {
            return None;
        }
        self.group_of.get(&h).copied()
    }

    /// How many objects of bgpd's the kernel holds (hops, groups).
    pub fn counts(&self) -> (usize, usize) {
        (self.id_hop.len(), self.groups.len())
    }

    /// The objects of a link that went down: the kernel has deleted them,
    /// removed them from their groups, and deleted the groups left empty
    /// with the routes through them.
    pub fn link_down(&mut self, ifindex: u32) {
        let ids: Vec<u32> = self
            .id_hop
            .iter()
            .filter(|(_, h)| h.ifindex == ifindex)
            .map(|(id, _)| *id)
            .collect();
        if ids.is_empty() {
            return;
        }
        for id in &ids {
            self.forget_hop(*id);
        }
        self.groups.retain(|_, members| {
            if members.iter().any(|h| h.ifindex == ifindex) {
                let left: Vec<Hop> = members
                    .iter()
                    .filter(|h| h.ifindex != ifindex)
                    .copied()
                    .collect();
                *members = left.into();
            }
            !members.is_empty()
        });
        debug!(
            ifindex,
            objects = ids.len(),
            "link down: the kernel dropped our nexthop objects on it"
        );
    }
}

impl Lookup for FibState {
    fn hops(&self, id: HopsId) -> &[Hop] {
        self.hops.get(id)
    }

    fn group_id(&self, id: HopsId) -> Option<u32> {
        self.objects.group_for(id)
    }

    fn hop_id(&self, hop: &Hop) -> Option<u32> {
        self.objects.hop_id.get(hop).copied()
    }
}

impl FibState {
    /// Whether routes use kernel nexthop objects.
    pub fn uses_objects(&self) -> bool {
        self.objects.on
    }

    /// The kernel has no nexthop objects: plain routes.
    pub fn objects_unsupported(&mut self) {
        self.objects.on = false;
    }

    /// Objects of bgpd's the kernel holds: (hops, groups).
    pub fn object_counts(&self) -> (usize, usize) {
        self.objects.counts()
    }

    /// Makes sure the kernel holds a group of the hop set `h` with its
    /// hops, as bgpd believes, queuing what it lacks; `false` without
    /// objects.
    pub(super) fn ensure_group(&mut self, h: HopsId, ops: &mut Vec<Op>) -> bool {
        if !self.objects.on || h == 0 || self.objects.plain.contains(&h) {
            return false;
        }
        let (id, fresh) = match self.objects.group_of.get(&h) {
            Some(id) => (*id, false),
            None => {
                let id = self.objects.alloc();
                self.objects.set_group(h, id);
                (id, true)
            }
        };
        let members = self.hops.get(h);
        if self
            .objects
            .groups
            .get(&id)
            .is_some_and(|m| **m == *members)
        {
            return true;
        }
        for hop in members {
            if !self.objects.hop_id.contains_key(hop) {
                let hid = self.objects.alloc();
                self.objects.hop_id.insert(*hop, hid);
                self.objects.id_hop.insert(hid, *hop);
                ops.push(Op::NewHop { id: hid, hop: *hop });
            }
        }
        self.objects.groups.insert(id, members.into());
        ops.push(Op::NewGroup {
            id,
            hops: h,
            replace: !fresh,
        });
        true
    }

    /// At the start of a round: every hop set whose routes all move to the
    /// same new hops (and that no desired set resolves to any more) has
    /// its group replaced in place and takes those hops. The round's slots
    /// then find nothing to do: one kernel operation moves them all.
    pub(super) fn move_groups(&mut self, ops: &mut Vec<Op>) {
        if !self.objects.on || self.objects.group_of.is_empty() {
            return;
        }
        #[derive(Clone, Copy, Default)]
        struct Move {
            to: HopsId,
            moving: u32,
            absent: u32,
            mixed: bool,
        }
        let mut moves: HashMap<HopsId, Move> = HashMap::new();
        for i in 0..self.todo.len() {
            let p = self.todo.at(i);
            let Some(mut s) = self.slots.get(&p).copied() else {
                continue;
            };
            let have = s.have;
            if have == 0 {
                continue;
            }
            if s.has(REPOINT) || !self.objects.group_of.contains_key(&have) {
                moves.entry(have).or_default().mixed = true;
                continue;
            }
            let t = self.target(&p, &mut s);
            if let Some(slot) = self.slots.get_mut(&p) {
                *slot = s;
            }
            let m = moves.entry(have).or_default();
            match t {
                Target::Absent => m.absent += 1,
                Target::Install(t) if self.hops.get(t) == self.hops.get(have) => m.mixed = true,
                Target::Install(t) => {
                    if m.moving == 0 {
                        m.to = t;
                    } else if self.hops.get(m.to) != self.hops.get(t) {
                        m.mixed = true;
                    }
                    m.moving += 1;
                }
                Target::Keep => m.mixed = true,
            }
        }
        moves.retain(|_, m| !m.mixed && m.moving > 0);
        if moves.is_empty() {
            return;
        }
        // References that are not slots': the desired sets' resolutions.
        let mut resolving: HashSet<HopsId> = HashSet::new();
        for id in self.desired.ids() {
            resolving.insert(*self.desired.extra(id));
        }
        for (h, m) in moves {
            if resolving.contains(&h) || m.moving + m.absent != self.hops.refs(h) {
                continue;
            }
            let Some(&id) = self.objects.group_of.get(&h) else {
                continue;
            };
            if self
                .objects
                .groups
                .get(&id)
                .is_none_or(|g| **g != *self.hops.get(h))
            {
                continue;
            }
            let to = self.hops.get(m.to).to_vec();
            self.hops.rekey(h, &to);
            self.ensure_group(h, ops);
            self.ops.groups_moved += 1;
            self.ops.routes_spared += u64::from(m.moving);
            debug!(
                group = id,
                routes = m.moving,
                hops = to.len(),
                "nexthop group replaced in place"
            );
        }
    }

    /// Groups the check found changed, sent again.
    pub(super) fn regroup(&mut self, ops: &mut Vec<Op>) {
        for h in std::mem::take(&mut self.objects.regroup) {
            if self.hops.refs(h) > 0 {
                self.ensure_group(h, ops);
            }
        }
    }

    /// Whether unused objects may be collected now: the queues are empty
    /// and the initial sync is over.
    pub(super) fn gc_due(&self) -> bool {
        (self.objects.gc_due || !self.objects.regroup.is_empty())
            && self.sync_done
            && self.todo.is_empty()
            && self.dirty.is_empty()
    }

    /// The deletes of objects nothing uses: groups of hop sets that are
    /// gone (or no longer theirs), then hops in no group. Nothing while a
    /// route may point at an object bgpd does not give its hop set.
    pub(super) fn collect_objects(&mut self) -> Vec<Op> {
        self.objects.gc_due = false;
        let mut ops = Vec::new();
        self.regroup(&mut ops);
        if !ops.is_empty() {
            return ops;
        }
        let dead_sets: Vec<HopsId> = self
            .objects
            .group_of
            .keys()
            .filter(|h| self.hops.refs(**h) == 0)
            .copied()
            .collect();
        for h in dead_sets {
            self.objects.unset_group(h);
        }
        let hops = &self.hops;
        self.objects.plain.retain(|h| hops.refs(*h) > 0);
        let o = &self.objects;
        let dead: Vec<u32> = o
            .groups
            .keys()
            .filter(|id| !o.set_of.contains_key(id))
            .copied()
            .collect();
        let used: HashSet<Hop> = o
            .groups
            .iter()
            .filter(|(id, _)| o.set_of.contains_key(id))
            .flat_map(|(_, m)| m.iter().copied())
            .collect();
        let unused: Vec<u32> = o
            .id_hop
            .iter()
            .filter(|(id, h)| !used.contains(h) || o.hop_id.get(h) != Some(id))
            .map(|(id, _)| *id)
            .collect();
        if dead.is_empty() && unused.is_empty() {
            return ops;
        }
        if self
            .slots
            .iter()
            .any(|(_, s)| s.has(REPOINT) && s.have != 0)
        {
            // Collected once those routes are re-pointed.
            return ops;
        }
        for id in dead {
            self.objects.groups.remove(&id);
            ops.push(Op::DelObject { id });
        }
        for id in unused {
            self.objects.forget_hop(id);
            ops.push(Op::DelObject { id });
        }
        debug!(objects = ops.len(), "deleting unused nexthop objects");
        ops
    }

    /// The kernel's answer to an object operation.
    pub(super) fn object_outcome(&mut self, op: Op, out: Outcome, now: Instant) {
        match (op, out) {
            (Op::DelObject { .. }, Outcome::Ok) => self.ops.objects_deleted += 1,
            (Op::DelObject { .. }, Outcome::Err(e, _)) if gone(e) => self.ops.objects_deleted += 1,
            (_, Outcome::Ok) => self.ops.objects_replaced += 1,
            (op, Outcome::Err(errno, msg)) => {
                self.ops.errors += 1;
                if errno == libc::EEXIST
                    && let Op::NewHop { id, .. } | Op::NewGroup { id, .. } = op
                {
                    // Someone else's id: never used again.
                    self.objects.foreign.insert(id);
                }
                let refused = [
                    libc::EOPNOTSUPP,
                    libc::EPERM,
                    libc::EAFNOSUPPORT,
                    libc::EPROTONOSUPPORT,
                ];
                if self.objects.on
                    && refused.contains(&errno)
                    && !matches!(op, Op::DelObject { .. })
                {
                    // The dump worked but creating is refused (a restricted
                    // container, a kernel built without them): plain routes,
                    // as on a kernel without objects. Routes that failed with
                    // their group are retried without one.
                    warn!(
                        errno,
                        error = %std::io::Error::from_raw_os_error(errno),
                        "the kernel refuses nexthop objects; installing plain routes from now on"
                    );
                    self.objects.on = false;
                }
                warn!(
                    what = %op,
                    errno,
                    error = %std::io::Error::from_raw_os_error(errno),
                    kernel = %msg,
                    "cannot write a nexthop object; checking the kernel soon"
                );
                if errno == libc::EINVAL
                    && !msg.contains("nexthop id")
                    && let Op::NewGroup { hops, .. } = op
                {
                    // A group the kernel will not take (mixed families,
                    // say): its routes carry their hops instead.
                    warn!(what = %op, "routes of this set of next hops are installed without a group");
                    self.objects.plain.insert(hops);
                }
                self.object_unknown(op);
                self.check_soon(now);
            }
            (op, Outcome::Unknown) => {
                self.ops.unacknowledged += 1;
                warn!(what = %op, "no kernel ack for a nexthop object; checking the kernel soon");
                self.object_unknown(op);
                self.check_soon(now);
            }
        }
    }

    /// An object operation whose effect is unknown: the belief goes, and
    /// the routes of a group are sent again (to whatever group their hops
    /// get then).
    fn object_unknown(&mut self, op: Op) {
        match op {
            Op::NewHop { id, .. } => self.objects.forget_hop(id),
            Op::NewGroup { id, hops, .. } => {
                self.objects.groups.remove(&id);
                self.objects.unset_group(hops);
                let FibState { slots, dirty, .. } = self;
                for (p, s) in slots.iter_mut() {
                    if s.have == hops {
                        s.set(REPOINT, true);
                        mark(s, dirty, p);
                    }
                }
            }
            // Perhaps still there: collected again later.
            _ => self.objects.gc_due = true,
        }
    }

    /// A dump of the kernel's nexthop objects (at startup, or in a
    /// check): those with bgpd's protocol become the belief, those of
    /// others are never touched. With `complete`, objects believed in that
    /// the dump lacks are gone (flushed with their link).
    pub fn check_objects(&mut self, list: &[KernelNexthop], complete: bool) {
        let me = self.cfg.protocol;
        let o = &mut self.objects;
        o.gc_due = true;
        for n in list {
            if n.protocol != me {
                if o.ours(n.id) {
                    o.foreign.insert(n.id);
                }
                o.forget_hop(n.id);
                o.groups.remove(&n.id);
                continue;
            }
            o.foreign.remove(&n.id);
            if let Some(hop) = n.hop {
                o.groups.remove(&n.id);
                if o.id_hop.get(&n.id) != Some(&hop) {
                    o.forget_hop(n.id);
                    o.id_hop.insert(n.id, hop);
                    o.hop_id.entry(hop).or_insert(n.id);
                }
            }
        }
        for n in list.iter().filter(|n| n.protocol == me && n.hop.is_none()) {
            let mut members: Vec<Hop> = n
                .group
                .iter()
                .filter_map(|m| o.id_hop.get(m).copied())
                .collect();
            members.sort();
            members.dedup();
            let complete_members = members.len() == n.group.len() && !members.is_empty();
            let same = complete_members && o.groups.get(&n.id).is_some_and(|g| **g == *members);
            if same {
                continue;
            }
            if complete_members {
                o.groups.insert(n.id, members.into());
            } else {
                o.groups.remove(&n.id);
            }
            if let Some(h) = o.set_of.get(&n.id) {
                o.regroup.push(*h);
            }
        }
        if complete {
            let listed: HashSet<u32> = list
                .iter()
                .filter(|n| n.protocol == me)
                .map(|n| n.id)
                .collect();
            let gone_hops: Vec<u32> = o
                .id_hop
                .keys()
                .filter(|id| !listed.contains(id))
                .copied()
                .collect();
            for id in gone_hops {
                o.forget_hop(id);
            }
            o.groups.retain(|id, _| listed.contains(id));
        }
    }

    /// The installed hop set of a route of ours in the kernel (interned:
    /// one more reference), and whether it points at the object bgpd gives
    /// that set; if not, the next install must be sent whatever the hops.
    pub(super) fn kernel_have(&mut self, r: &KernelRoute) -> (HopsId, bool) {
        if let Some(id) = r.nh_id
            && let Some(&h) = self.objects.set_of.get(&id)
            && self.objects.on
            && self.hops.refs(h) > 0
            && self
                .objects
                .groups
                .get(&id)
                .is_some_and(|g| **g == *self.hops.get(h))
        {
            // A group bgpd gave a hop set (perhaps replaced in place since,
            // so that another set has the same hops): that set.
            self.hops.retain(h);
            return (h, true);
        }
        let group = r.nh_id.and_then(|id| self.objects.groups.get(&id).cloned());
        let hops = match &group {
            Some(g) => g.to_vec(),
            None => match r.nh_id.and_then(|id| self.objects.id_hop.get(&id)) {
                Some(h) => vec![*h],
                None => r.gateway_hops(),
            },
        };
        let (h, _) = self.hops.intern(&hops);
        let exact = match (self.objects.on, r.nh_id, group.is_some()) {
            (false, None, _) => true,
            (true, Some(id), true) => match self.objects.group_of.get(&h) {
                Some(g) => *g == id,
                None if !self.objects.set_of.contains_key(&id) => {
                    self.objects.set_group(h, id);
                    true
                }
                None => false,
            },
            _ => false,
        };
        (h, exact)
    }

    /// Logs what a start found of a previous run's objects.
    pub fn objects_adopted(&self) {
        let (hops, groups) = self.objects.counts();
        if hops + groups > 0 {
            info!(
                hops,
                groups, "found nexthop objects of a previous run; keeping those still in use"
            );
        }
    }
}
