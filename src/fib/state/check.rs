//! The desired-vs-kernel check: a dump of bgpd's routes compared with the
//! slots, one route at a time, and the repairs it queues.

use std::time::{Duration, Instant};

use ipnet::IpNet;
use tracing::{debug, warn};

use super::Objects;
use super::{FibState, mark};
use crate::fib::ReconcileReport;
use crate::fib::slots::Interner;
use crate::fib::slots::{DIRTY, REPOINT, SEEN, STALE, Slot};
use crate::fib::view::Hop;
use crate::fib::view::KernelRoute;

/// Prefixes whose repair is logged one by one; beyond, a summary.
const LOG_EACH: usize = 50;
/// How soon a check whose dump failed is tried again.
const RETRY: Duration = Duration::from_secs(5);

/// What a check found, before repairing.
#[derive(Default)]
pub struct Check {
    kernel_routes: usize,
    missing: Vec<IpNet>,
    unexpected: Vec<IpNet>,
    differ: Vec<IpNet>,
    other_metric: usize,
}

impl FibState {
    /// A check starts; nothing should be queued (send everything first),
    /// so that the kernel is compared with settled beliefs. Then every
    /// route of the dump goes to [`FibState::check_route`], the end of the
    /// dump to [`FibState::check_dumped`], the repairs it queued to the
    /// kernel, and [`FibState::check_report`] tells what was fixed.
    pub fn check(&mut self) -> Check {
        Check::default()
    }

    /// One of our routes in the check's dump against its slot.
    pub fn check_route(&mut self, d: &mut Check, r: KernelRoute) {
        d.kernel_routes += 1;
        if r.metric != self.cfg.metric {
            d.other_metric += 1;
            if d.other_metric <= LOG_EACH {
                warn!(prefix = %r.prefix, metric = r.metric, "removing our route with another metric");
            }
            self.other_metric.push((r.prefix, r.metric));
            return;
        }
        let p = r.prefix;
        // The common case, a route as believed, in one lookup.
        let FibState {
            slots,
            hops,
            objects,
            ..
        } = self;
        if let Some(s) = slots.get_mut(&p) {
            if s.has(SEEN) {
                // Listed twice: the first one counts.
                return;
            }
            if s.have != 0 && !s.has(REPOINT) && route_matches(objects, hops, &r, s.have) {
                s.set(SEEN, true);
                return;
            }
        }
        if self.slots.get(&p).is_none() {
            let (h, exact) = self.kernel_have(&r);
            let stale = if self.sync_done { 0 } else { STALE };
            let repoint = if exact { 0 } else { REPOINT };
            self.slots
                .insert(p, Slot::new(0, h, SEEN | DIRTY | stale | repoint));
            self.dirty.push(p);
            d.unexpected.push(p);
            return;
        }
        let (h, exact) = self.kernel_have(&r);
        let FibState {
            slots,
            hops: sets,
            dirty,
            ..
        } = self;
        let Some(s) = slots.get_mut(&p) else {
            return;
        };
        s.set(SEEN, true);
        s.set(REPOINT, !exact);
        let old = std::mem::replace(&mut s.have, h);
        if old == 0 {
            d.unexpected.push(p);
        } else {
            d.differ.push(p);
        }
        mark(s, dirty, p);
        sets.release(old);
    }

    /// The dump is over; `complete` is false when it failed part way.
    /// Prefixes believed installed and not listed are queued again (only
    /// after a complete dump). Returns whether the check goes on: after a
    /// failed dump it is tried again in a few seconds, and what the
    /// partial dump showed stays queued.
    pub fn check_dumped(&mut self, d: &mut Check, complete: bool, now: Instant) -> bool {
        if d.other_metric > LOG_EACH {
            warn!(
                count = d.other_metric,
                "removing our routes with another metric (only the first {LOG_EACH} logged)"
            );
        }
        let FibState {
            slots, hops, dirty, ..
        } = self;
        for (p, s) in slots.iter_mut() {
            if s.has(SEEN) {
                s.set(SEEN, false);
            } else if s.have != 0 && complete {
                // Believed installed, not in the kernel.
                hops.release(std::mem::take(&mut s.have));
                d.missing.push(p);
                mark(s, dirty, p);
            }
        }
        if !complete {
            self.check_at = Some(now + RETRY);
            return false;
        }
        if self.sync_done && !self.other_metric.is_empty() {
            self.remove_stale("reconcile");
        }
        true
    }

    /// What the check repaired, once its repairs went to the kernel (and
    /// what the kernel refuses).
    pub fn check_report(&self, d: Check) -> ReconcileReport {
        let mut report = ReconcileReport {
            kernel_routes: d.kernel_routes,
            ..Default::default()
        };
        let installed_now = |p: &IpNet| self.slots.get(p).is_some_and(|s| s.have != 0);
        for p in d.missing {
            if installed_now(&p) {
                report.reinstalled.push(p);
            }
        }
        for p in d.unexpected {
            if !installed_now(&p) {
                report.removed.push(p);
            }
        }
        for p in d.differ {
            if installed_now(&p) {
                report.replaced.push(p);
            } else {
                report.removed.push(p);
            }
        }
        for (p, f) in &self.fails {
            report.failed.push((
                *p,
                format!("{} {}", std::io::Error::from_raw_os_error(f.errno), f.msg),
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
}

/// Whether a route of ours in the kernel is what bgpd believes it installed
/// for hop set `have`: its group, or (plain) its hops.
fn route_matches(objects: &Objects, hops: &Interner<Hop>, r: &KernelRoute, have: u32) -> bool {
    match (r.nh_id, objects.group_for(have)) {
        (Some(id), Some(g)) => id == g,
        (None, None) => hops.get(have) == r.gateway_hops().as_slice(),
        _ => false,
    }
}
