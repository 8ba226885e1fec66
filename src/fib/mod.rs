//! The FIB: installs what the RIB chose into the Linux kernel through
//! rtnetlink, watches the kernel for next-hop reachability, and keeps the
//! kernel's copy of bgpd's routes exact. See docs/fib.md.
//!
//! What to install is decided without I/O in `state/` (desired against
//! installed: slots, retries, stale routes, conflicts, checks, answers);
//! one task ([`spawn`], `task.rs`) owns every netlink socket and carries
//! out what the state asks. The RIB talks to it through a [`FibHandle`]
//! (bounded channel of [`FibCommand`]s) and hears from it through
//! [`FibEvent`]s: next-hop reachability comes as immutable
//! [`Reachability`] snapshots (an implementation of
//! [`crate::route::Resolver`]), so the two tasks share no state.

pub mod liveness;
mod nl;
mod slots;
mod state;
mod task;
pub mod view;

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::route::{ChangeSet, NextHop, RouteChange};
/// For benches/floor.rs, whose route listener filters as bgpd's kernel view does.
pub use nl::attach_own_route_filter;
pub use task::spawn;
pub use view::{Hop, KernelRoute, KernelView, Reachability};

/// The kernel protocol number of BGP routes (`/etc/iproute2/rt_protos`:
/// 186 "bgp", as FRR uses).
pub const RTPROT_BGP: u8 = 186;
/// The main routing table (RT_TABLE_MAIN).
pub const RT_TABLE_MAIN: u32 = 254;
/// The route metric (RTA_PRIORITY) of bgpd's routes unless configured
/// otherwise: 20, as FRR installs eBGP routes, so a `proto static` route
/// with the kernel's default metric 0 keeps precedence.
pub const DEFAULT_METRIC: u32 = 20;

/// How the FIB installs routes.
#[derive(Clone, Debug)]
pub struct FibConfig {
    /// Routing table to install into (main, 254, by default).
    pub table: u32,
    /// rtm_protocol that marks bgpd's routes (186 "bgp" by default). Only
    /// routes with this protocol in `table` are ever modified.
    pub protocol: u8,
    /// Route metric (RTA_PRIORITY); 20 by default, as FRR installs eBGP
    /// routes, so a `proto static` route with the kernel default metric 0
    /// keeps precedence.
    pub metric: u32,
    /// `false` (`--no-install`) keeps every route out of the kernel; the
    /// FIB still tracks state and answers reachability.
    pub install: bool,
    /// Period of the desired-vs-kernel check (zero disables it).
    pub reconcile_interval: Duration,
    /// Graceful restart: leave the routes in the kernel at shutdown (for
    /// this long, a restart time); the next start reconciles them.
    /// `None` removes them at shutdown.
    pub keep_on_shutdown: Option<Duration>,
    /// At startup, how long routes found from a previous run wait for the
    /// RIB to re-learn them when the initial-sync signal never comes.
    pub stale_timeout: Duration,
    /// Whether a next hop may resolve through a default route (off, as in
    /// FRR's `ip nht resolve-via-default`).
    pub resolve_via_default: bool,
    /// How often each on-link next hop in use is probed (ARP/ND through the
    /// kernel's neighbour table); one that does not answer two probes is
    /// taken out of every route ([`liveness`]). Zero (the default here; the
    /// daemon's is 500 ms) turns it off.
    pub nexthop_probe_interval: Duration,
    /// Routes point at kernel nexthop objects and groups (RTA_NH_ID,
    /// Linux >= 5.3) shared by every route with the same hops, so a next
    /// hop lost or changed is one kernel operation whatever the number of
    /// prefixes. Off (the default here; the daemon's is on) or on a kernel
    /// without them: plain routes with their hops.
    pub nexthop_objects: bool,
}

impl Default for FibConfig {
    fn default() -> Self {
        FibConfig {
            table: RT_TABLE_MAIN,
            protocol: RTPROT_BGP,
            metric: DEFAULT_METRIC,
            install: true,
            reconcile_interval: Duration::from_secs(60),
            keep_on_shutdown: None,
            stale_timeout: Duration::from_secs(120),
            resolve_via_default: false,
            nexthop_probe_interval: Duration::ZERO,
            nexthop_objects: false,
        }
    }
}

/// What the FIB task is asked to do.
#[derive(Debug)]
pub enum FibCommand {
    /// New forwarding state per prefix; the latest per prefix wins.
    Apply(ChangeSet),
    /// A chunk of a larger change set whose other chunks follow at once:
    /// the task takes them all before it writes to the kernel, so that
    /// routes that all move the same way move as one (a nexthop group
    /// replaced in place, not a prefix at a time).
    ApplyMore(ChangeSet),
    /// The peers' End-of-RIBs arrived (or their timeout passed): routes
    /// left from a previous run that the RIB did not re-learn go now.
    InitialSyncDone,
    /// Push every queued change to the kernel, then reply.
    Flush(oneshot::Sender<()>),
    /// Compare desired with the kernel now, repair drift, reply what was
    /// fixed.
    Reconcile(oneshot::Sender<ReconcileReport>),
    /// Summary and every prefix not installed as desired.
    Status(oneshot::Sender<FibStatus>),
    /// The state of one prefix.
    Lookup(IpNet, oneshot::Sender<Option<PrefixStatus>>),
    /// Remove bgpd's routes (or keep them, with `keep_on_shutdown`, unless
    /// `remove`) and stop the task.
    Shutdown {
        remove: bool,
        reply: oneshot::Sender<ShutdownReport>,
    },
}

/// What the FIB tells the RIB.
#[derive(Clone, Debug)]
pub enum FibEvent {
    /// Links, addresses or routes of other protocols changed: next hops
    /// may have become reachable or unreachable, and the connected
    /// networks may be others. This is the kernel as it is now; resolve
    /// through it from here on. Changes that come while the RIB's queue
    /// is full are reported once, by the latest snapshot.
    Reachability(Arc<Reachability>),
    /// The initial sync is over: the routes a previous run left that the
    /// RIB did not re-learn are being removed. Sent once (at once without
    /// `install`).
    InitialSyncOver,
    /// How many routes the kernel refuses now (`bgpd show fib` lists
    /// them), sent when the count changes: `bgpd track` reads it without
    /// asking this task. Changes that wait for room coalesce.
    Failed(usize),
    /// The next hops that do not answer ARP/ND now (out of every kernel
    /// route), sent when the set changes: `bgpd show routes` marks them.
    NextHopsDown(Vec<IpAddr>),
}

/// The state of one prefix in the FIB.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum PrefixState {
    /// In the kernel through these hops.
    Installed { hops: Vec<String> },
    /// Waiting: no next hop resolves.
    Pending,
    /// The kernel refused it; retried with backoff.
    Failed {
        errno: i32,
        error: String,
        attempts: u32,
    },
    /// A route of another protocol holds the same prefix, table and
    /// metric; bgpd leaves it alone and does not install.
    ForeignConflict { protocol: u8, metric: u32 },
    /// Left by a previous run, kept until the RIB's initial sync.
    Stale,
    /// Installing is disabled (`--no-install`).
    NotInstalled,
}

/// A route of another protocol for one of bgpd's prefixes, in bgpd's table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ForeignRoute {
    pub prefix: IpNet,
    pub protocol: u8,
    pub metric: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PrefixStatus {
    pub prefix: IpNet,
    pub desired: Vec<String>,
    #[serde(flatten)]
    pub state: PrefixState,
    /// Other protocols' routes for the same prefix (left untouched).
    pub foreign: Vec<ForeignRoute>,
}

/// Kernel operations since the start, for metrics.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct FibOps {
    /// Routes added or replaced (NLM_F_REPLACE).
    pub replaced: u64,
    pub deleted: u64,
    /// Operations the kernel refused (retried with backoff).
    pub errors: u64,
    /// Operations without an ack (checked by a reconcile).
    pub unacknowledged: u64,
    /// Nexthop objects (hops and groups) added or replaced.
    pub objects_replaced: u64,
    /// Nexthop objects deleted.
    pub objects_deleted: u64,
    /// Nexthop groups replaced in place to move every route that used
    /// them at once (prefix-independent convergence), and the route
    /// messages that spared.
    pub groups_moved: u64,
    pub routes_spared: u64,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct FibStatus {
    pub install: bool,
    pub table: u32,
    pub protocol: u8,
    pub metric: u32,
    pub initial_sync_done: bool,
    pub ops: FibOps,
    pub desired: usize,
    pub installed: usize,
    pub pending: usize,
    pub failed: usize,
    pub conflicts: usize,
    pub stale: usize,
    /// The prefixes that are not installed as desired (pending, failed,
    /// foreign conflict, stale), and those with a foreign route: the first
    /// thousand.
    pub problems: Vec<PrefixStatus>,
    /// Such prefixes beyond the ones listed.
    pub problems_omitted: usize,
    /// The on-link next hops in use and whether they answer ARP/ND.
    pub nexthops: Vec<liveness::HopLiveness>,
    /// Whether routes point at kernel nexthop objects, and how many of
    /// bgpd's the kernel holds (hops, groups).
    pub nexthop_objects: bool,
    pub objects_hops: usize,
    pub objects_groups: usize,
}

/// What a desired-vs-kernel check found and fixed.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReconcileReport {
    /// bgpd's routes found in the kernel.
    pub kernel_routes: usize,
    /// Desired and missing from the kernel: installed again.
    pub reinstalled: Vec<IpNet>,
    /// In the kernel with bgpd's protocol but not desired: removed.
    pub removed: Vec<IpNet>,
    /// In the kernel with other next hops than desired: replaced.
    pub replaced: Vec<IpNet>,
    /// Repairs the kernel refused.
    pub failed: Vec<(IpNet, String)>,
}

impl ReconcileReport {
    pub fn repaired(&self) -> usize {
        self.reinstalled.len() + self.removed.len() + self.replaced.len()
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ShutdownReport {
    pub removed: usize,
    pub kept: usize,
    /// Nexthop objects deleted after the routes.
    pub objects_removed: usize,
}

/// Changes per [`FibCommand::Apply`] from [`FibHandle::apply`].
pub const APPLY_CHUNK: usize = 1024;
/// Commands the FIB task's queue holds (with [`APPLY_CHUNK`], at most about
/// 64k changes wait in it).
pub const QUEUE: usize = 64;

/// The FIB task is gone.
#[derive(Debug, thiserror::Error)]
#[error("the FIB task has stopped")]
pub struct FibClosed;

/// The RIB's (and the control socket's) handle on the FIB task. Cheap to
/// clone.
#[derive(Clone, Debug)]
pub struct FibHandle {
    tx: mpsc::Sender<FibCommand>,
    initial: Arc<Reachability>,
    adopted: usize,
}

impl FibHandle {
    /// Routes of ours a previous run left in the kernel, found by
    /// [`spawn`] (0 without `install`).
    pub fn adopted(&self) -> usize {
        self.adopted
    }

    /// The kernel's reachability when [`spawn`] had dumped it: next hops
    /// resolve through it from the first UPDATE, until the first
    /// [`FibEvent::Reachability`].
    pub fn initial_reachability(&self) -> Arc<Reachability> {
        self.initial.clone()
    }

    /// The raw command channel (bounded: a full channel makes the RIB wait,
    /// which is the backpressure).
    pub fn sender(&self) -> mpsc::Sender<FibCommand> {
        self.tx.clone()
    }

    /// Hands changes to the FIB task in commands of at most
    /// [`APPLY_CHUNK`], in order, waiting while its queue is full. The queue
    /// is bounded in commands, so this bounds what waits in it: a change
    /// is 56 bytes there and 13 once the task has taken it. A set that
    /// takes several commands is first reduced to one change per prefix:
    /// the task may push a command's changes before it takes the next, and
    /// the kernel must only ever see a prefix's final state (a max-prefix
    /// violation's routes, withdrawn in the same set, never reach it).
    pub async fn apply(&self, changes: impl Into<ChangeSet>) -> Result<(), FibClosed> {
        let mut changes = changes.into();
        if changes.len() <= APPLY_CHUNK {
            return self
                .tx
                .send(FibCommand::Apply(changes))
                .await
                .map_err(|_| FibClosed);
        }
        changes.dedup();
        let mut it = changes.into_iter().peekable();
        loop {
            let chunk: ChangeSet = it.by_ref().take(APPLY_CHUNK).collect();
            if chunk.is_empty() {
                return Ok(());
            }
            let cmd = if it.peek().is_some() {
                FibCommand::ApplyMore(chunk)
            } else {
                FibCommand::Apply(chunk)
            };
            self.tx.send(cmd).await.map_err(|_| FibClosed)?;
        }
    }

    pub async fn initial_sync_done(&self) -> Result<(), FibClosed> {
        self.tx
            .send(FibCommand::InitialSyncDone)
            .await
            .map_err(|_| FibClosed)
    }

    async fn ask<T>(
        &self,
        f: impl FnOnce(oneshot::Sender<T>) -> FibCommand,
    ) -> Result<T, FibClosed> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(f(tx)).await.map_err(|_| FibClosed)?;
        rx.await.map_err(|_| FibClosed)
    }

    pub async fn flush(&self) -> Result<(), FibClosed> {
        self.ask(FibCommand::Flush).await
    }

    pub async fn reconcile(&self) -> Result<ReconcileReport, FibClosed> {
        self.ask(FibCommand::Reconcile).await
    }

    pub async fn status(&self) -> Result<FibStatus, FibClosed> {
        self.ask(FibCommand::Status).await
    }

    pub async fn lookup(&self, prefix: IpNet) -> Result<Option<PrefixStatus>, FibClosed> {
        self.ask(|tx| FibCommand::Lookup(prefix, tx)).await
    }

    /// Stops the task as configured: the routes stay with
    /// `keep_on_shutdown` (a restart), else they are removed.
    pub async fn shutdown(&self) -> Result<ShutdownReport, FibClosed> {
        self.ask(|reply| FibCommand::Shutdown {
            remove: false,
            reply,
        })
        .await
    }

    /// Stops the task and removes bgpd's routes whatever the configuration
    /// (stopping for good: SIGINT, `bgpd stop --flush`).
    pub async fn shutdown_removing(&self) -> Result<ShutdownReport, FibClosed> {
        self.ask(|reply| FibCommand::Shutdown {
            remove: true,
            reply,
        })
        .await
    }
}

/// Convenience for tests and callers: one prefix's change.
pub fn change(prefix: IpNet, next_hops: Vec<NextHop>) -> RouteChange {
    RouteChange {
        prefix,
        next_hops: next_hops.into(),
    }
}

pub(crate) fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}
