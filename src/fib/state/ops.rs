//! The operations the state asks for, and what the kernel answered:
//! acks, refusals (retried with backoff) and lost acks.

use std::time::{Duration, Instant};

use ipnet::IpNet;
use tracing::warn;

use super::{FibState, clear_fail};
use crate::fib::ShutdownReport;
use crate::fib::slots::{FAILED, REPOINT, STALE};
use crate::fib::view::Hop;

/// An interned set of hops: the writer looks its hops up
/// ([`FibState::hops`]) when it encodes, so an operation does not carry
/// (or allocate) them.
pub type HopsId = u32;

/// One kernel operation on one of bgpd's routes or nexthop objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Add or replace (NLM_F_CREATE | NLM_F_REPLACE) with the configured
    /// metric: through the hop set's nexthop group when nexthop objects
    /// are on ([`Lookup::group_id`]), else with the hops themselves.
    Replace { prefix: IpNet, hops: HopsId },
    /// Delete bgpd's route (matched by protocol, table and metric, so the
    /// kernel itself refuses to touch anyone else's). A metric other than
    /// the configured one is a route of a previous configuration.
    Delete { prefix: IpNet, metric: u32 },
    /// Create the nexthop object of one hop (RTM_NEWNEXTHOP, NLM_F_EXCL:
    /// never over someone else's).
    NewHop { id: u32, hop: Hop },
    /// Add or replace a nexthop group of the hop set's members, whose
    /// objects exist (sent earlier in the same batch at the latest).
    /// Replacing a group moves every route that uses it at once.
    /// `replace`: the group exists (NLM_F_REPLACE), else it is created
    /// only if the id is free (NLM_F_EXCL).
    NewGroup {
        id: u32,
        hops: HopsId,
        replace: bool,
    },
    /// Delete one of bgpd's nexthop objects (RTM_DELNEXTHOP), unused by
    /// then: the kernel would delete the routes through it.
    DelObject { id: u32 },
}

impl Op {
    /// The prefix of a route operation.
    pub fn prefix(&self) -> Option<IpNet> {
        match self {
            Op::Replace { prefix, .. } | Op::Delete { prefix, .. } => Some(*prefix),
            _ => None,
        }
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Replace { prefix, .. } | Op::Delete { prefix, .. } => write!(f, "{prefix}"),
            Op::NewHop { id, hop } => write!(
                f,
                "nexthop {id} via {} ifindex {}",
                hop.gateway, hop.ifindex
            ),
            Op::NewGroup { id, .. } => write!(f, "nexthop group {id}"),
            Op::DelObject { id } => write!(f, "nexthop object {id}"),
        }
    }
}

/// What the writer needs to encode operations: the hops of a hop set and,
/// with nexthop objects, the kernel ids of groups and hops.
pub trait Lookup {
    fn hops(&self, id: HopsId) -> &[Hop];
    /// The nexthop group a route of this hop set points at (RTA_NH_ID);
    /// `None`: a plain route.
    fn group_id(&self, id: HopsId) -> Option<u32>;
    /// The nexthop object of a hop.
    fn hop_id(&self, hop: &Hop) -> Option<u32>;
}

/// Plain routes only, nothing looked up (shutdown deletes).
pub struct NoLookup;

impl Lookup for NoLookup {
    fn hops(&self, _: HopsId) -> &[Hop] {
        &[]
    }
    fn group_id(&self, _: HopsId) -> Option<u32> {
        None
    }
    fn hop_id(&self, _: &Hop) -> Option<u32> {
        None
    }
}

/// The kernel's answer to one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// errno and the kernel's extended-ack text, if any.
    Err(i32, String),
    /// No ack came back (lost): state unknown until the next check.
    Unknown,
}

pub(super) fn gone(errno: i32) -> bool {
    errno == libc::ESRCH || errno == libc::ENOENT
}

#[derive(Clone, Debug)]
pub(super) struct Fail {
    pub errno: i32,
    pub msg: String,
    pub attempts: u32,
    pub retry_at: Instant,
}

impl FibState {
    /// The kernel's answers to the operations of a list from
    /// [`FibState::next_ops`], in order (a missing one counts as no ack);
    /// lists are answered in the order they were handed out.
    pub fn outcomes(&mut self, ops: Vec<Op>, outcomes: Vec<Outcome>, now: Instant) {
        let mut outcomes = outcomes.into_iter();
        self.in_flight = self.in_flight.saturating_sub(ops.len());
        // Something may have become unused: collected once all is sent.
        self.objects.gc_due |= !ops.is_empty();
        for op in ops {
            let out = outcomes.next().unwrap_or(Outcome::Unknown);
            self.outcome(op, out, now);
        }
        self.maybe_idle();
    }

    /// A delete is done: nothing of ours is in the kernel for `p`.
    fn removed(&mut self, p: &IpNet) {
        let Some(s) = self.slots.get_mut(p) else {
            return;
        };
        let old = std::mem::take(&mut s.have);
        s.set(STALE, false);
        s.set(REPOINT, false);
        clear_fail(s, &mut self.fails, p);
        let idle = s.idle();
        self.hops.release(old);
        if idle {
            self.forget(p);
        }
    }

    fn outcome(&mut self, op: Op, out: Outcome, now: Instant) {
        let Some(p) = op.prefix() else {
            self.object_outcome(op, out, now);
            return;
        };
        if let Op::Delete { metric, .. } = op
            && metric != self.cfg.metric
        {
            // A route of ours with another metric: no slot, no retry.
            if let Outcome::Err(errno, msg) = out
                && !gone(errno)
            {
                warn!(prefix = %p, errno, %msg, "cannot remove an old route");
            }
            return;
        }
        match (&op, &out) {
            (Op::Replace { .. }, Outcome::Ok) => self.ops.replaced += 1,
            (Op::Delete { .. }, Outcome::Ok) => self.ops.deleted += 1,
            (Op::Delete { .. }, Outcome::Err(e, _)) if gone(*e) => self.ops.deleted += 1,
            (_, Outcome::Err(..)) => self.ops.errors += 1,
            (_, Outcome::Unknown) => self.ops.unacknowledged += 1,
            (_, Outcome::Ok) => unreachable!("object operations have no prefix"),
        }
        match (op, out) {
            (Op::Replace { hops, .. }, Outcome::Ok) => {
                // The operation's reference goes to the slot.
                let old = match self.slots.get_mut(&p) {
                    Some(s) => {
                        clear_fail(s, &mut self.fails, &p);
                        s.set(REPOINT, false);
                        std::mem::replace(&mut s.have, hops)
                    }
                    None => hops,
                };
                self.hops.release(old);
            }
            (Op::Delete { .. }, Outcome::Ok) => self.removed(&p),
            (Op::Delete { .. }, Outcome::Err(errno, _)) if gone(errno) => {
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
                    _ => "remove",
                };
                let Some(s) = self.slots.get_mut(&p) else {
                    return;
                };
                s.set(FAILED, true);
                let attempts = self.fails.get(&p).map_or(0, |f| f.attempts) + 1;
                let backoff = retry_backoff(attempts);
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
                        retry_at: now + backoff,
                    },
                );
                // With nexthop objects a refusal may mean that an object
                // bgpd believes in is gone (flushed with its link): the
                // check compares them with the kernel.
                if errno == libc::ENOBUFS || errno == libc::ENOMEM || self.objects.on {
                    self.check_soon(now);
                }
            }
            (_, Outcome::Ok) => unreachable!("object operations have no prefix"),
            (op, Outcome::Unknown) => {
                warn!(prefix = %p, "no kernel ack; checking the kernel soon");
                if let Op::Replace { hops, .. } = op {
                    self.hops.release(hops);
                }
                self.mark_dirty(p);
                self.check_soon(now);
            }
        }
    }
}

/// How long a refused prefix waits before it is tried again: 1 s after the
/// first refusal, doubling up to 30 s.
pub(super) fn retry_backoff(attempts: u32) -> Duration {
    Duration::from_millis(500u64 << attempts.min(6)).min(Duration::from_secs(30))
}

/// One shutdown delete's outcome, counted into `r`.
pub fn shutdown_outcome(r: &mut ShutdownReport, op: &Op, out: Outcome) {
    let route = op.prefix().is_some();
    match out {
        Outcome::Ok if route => r.removed += 1,
        Outcome::Ok => r.objects_removed += 1,
        Outcome::Err(errno, _) if gone(errno) => {}
        Outcome::Err(errno, msg) => {
            warn!(what = %op, errno, %msg, "shutdown: cannot remove")
        }
        Outcome::Unknown => warn!(what = %op, "shutdown: no ack"),
    }
}
