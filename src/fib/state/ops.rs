//! The operations the state asks for, and what the kernel answered:
//! acks, refusals (retried with backoff) and lost acks.

use std::time::{Duration, Instant};

use ipnet::IpNet;
use tracing::warn;

use super::{FibState, clear_fail};
use crate::fib::ShutdownReport;
use crate::fib::slots::{FAILED, STALE};

/// An interned set of hops: the writer looks its hops up
/// ([`FibState::hops`]) when it encodes, so an operation does not carry
/// (or allocate) them.
pub type HopsId = u32;

/// One kernel operation on one of bgpd's routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Add or replace (NLM_F_CREATE | NLM_F_REPLACE) with the configured
    /// metric.
    Replace { prefix: IpNet, hops: HopsId },
    /// Delete bgpd's route (matched by protocol, table and metric, so the
    /// kernel itself refuses to touch anyone else's). A metric other than
    /// the configured one is a route of a previous configuration.
    Delete { prefix: IpNet, metric: u32 },
}

impl Op {
    pub fn prefix(&self) -> IpNet {
        match self {
            Op::Replace { prefix, .. } | Op::Delete { prefix, .. } => *prefix,
        }
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
    /// The kernel's answers to the operations of the last
    /// [`FibState::next_ops`], in order (a missing one counts as no ack).
    pub fn outcomes(&mut self, ops: Vec<Op>, outcomes: Vec<Outcome>, now: Instant) {
        let mut outcomes = outcomes.into_iter();
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
        clear_fail(s, &mut self.fails, p);
        let idle = s.idle();
        self.hops.release(old);
        if idle {
            self.forget(p);
        }
    }

    fn outcome(&mut self, op: Op, out: Outcome, now: Instant) {
        let p = op.prefix();
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
                    Op::Delete { .. } => "remove",
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
                if errno == libc::ENOBUFS || errno == libc::ENOMEM {
                    self.check_soon(now);
                }
            }
            (op, Outcome::Unknown) => {
                warn!(prefix = %op.prefix(), "no kernel ack; checking the kernel soon");
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
    match out {
        Outcome::Ok => r.removed += 1,
        Outcome::Err(errno, _) if gone(errno) => {}
        Outcome::Err(errno, msg) => {
            warn!(prefix = %op.prefix(), errno, %msg, "shutdown: cannot remove route")
        }
        Outcome::Unknown => warn!(prefix = %op.prefix(), "shutdown: no ack"),
    }
}
