//! The daemon's orchestration, sans-IO: what happens between the peers,
//! the RIB and the FIB, given events and the time, as a list of actions.
//! No tokio, no sockets, no clock, so it is tested by replaying event
//! sequences (`tests`), as holo replays its conformance topologies.
//!
//! It owns the RIB and the running configuration, and with them:
//! - batching: peer events are taken in batches; the RIB decides each
//!   touched prefix once per batch ([`Event::EndOfBatch`]) and the FIB
//!   gets one change set;
//! - graceful restart (RFC 4724 §4.2, helper): a peer whose session is
//!   lost keeps its routes as stale until its restart time
//!   ([`Controller::next_timer`], [`Event::Timer`]);
//! - the initial sync: once every configured peer has sent End-of-RIB for
//!   each family it negotiated, the FIB may drop what a previous run left;
//! - max-prefix (RFC 4486 §4): the peer's routes go in the same change set
//!   that would have installed them, and its session is closed;
//! - dynamic neighbours take their range's policy;
//! - reloads: the difference between two configurations, applied without
//!   touching what did not change.
//!
//! src/daemon.rs performs the actions: it owns the tasks, the channels,
//! the signals and the control socket.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use tracing::{info, warn};

use crate::config::{self, Config};
use crate::fsm::DownReason;
use crate::rib::{Down, MaxPrefixEvent, PathState, PeerInfo, Rib, RibConfig};
use crate::route::{ChangeSet, Resolver};
use crate::session::{PeerEvent, PeerSpec, RangeSpec};
use crate::wire::{AfiSafi, Notification, iana::err};

mod send;
#[cfg(test)]
mod send_tests;
#[cfg(test)]
mod tests;

use send::Sender;
pub use send::{BURST, Burst};

/// Peer events taken as one batch (one decision per touched prefix, one
/// change set to the FIB): up to this many events...
pub const EVENT_BATCH: usize = 1024;
/// ...or until they carry this many prefixes. An UPDATE carries up to
/// about 900 IPv4 prefixes, so a batch's change set stays within a few
/// tens of thousands of changes. A Calico reflector's UPDATEs carry one
/// or two prefixes: a batch takes 1,024 of them and decides the service
/// CIDR (a path per node and reflector) once for them, not once each.
pub const BATCH_PREFIXES: usize = 25_600;

/// What the controller is told.
pub enum Event {
    /// From a peer task; part of the current batch.
    Peer(PeerEvent),
    /// The batch is over: decide it and hand its changes on.
    EndOfBatch,
    /// The kernel's links, addresses or other routes changed: next hops
    /// resolve anew through `resolver`, and these are the connected
    /// networks.
    Reachability {
        resolver: Box<dyn Resolver + Send>,
        connected: Vec<IpNet>,
    },
    /// A timer ([`Controller::next_timer`]) may be due.
    Timer,
    /// A new, validated configuration (SIGHUP or `bgpd reload`).
    Reload(Box<Config>),
}

/// What the controller asks for, in order.
#[derive(Debug)]
pub enum Action {
    /// New forwarding state: to the FIB (with `[kernel] install`) and to
    /// the foreground view.
    Fib(ChangeSet),
    /// Every configured peer's End-of-RIB arrived: routes a previous run
    /// left and the RIB did not learn again may go.
    FibInitialSyncDone,
    /// End a session with this NOTIFICATION, and keep it down for
    /// `restart_after` (or until a reset).
    Fail {
        peer: IpAddr,
        notification: Notification,
        restart_after: Option<Duration>,
    },
    /// Stop a configured peer's session and forget the peer.
    RemovePeer(IpAddr),
    /// Start a configured peer.
    AddPeer(Box<PeerSpec>),
    /// The dynamic ranges are now these.
    SetRanges(Vec<RangeSpec>),
    /// UPDATEs for a peer's task to write (it answers `Ready`).
    Send(Burst),
    /// A line for the foreground view (logged already).
    Note(String),
    /// A reload is done: what it did.
    Reloaded(String),
}

enum Kind {
    Peer,
    Other,
}

/// The orchestration state. See the module documentation.
pub struct Controller {
    rib: Rib,
    config: Config,
    install: bool,
    /// A foreground view is attached: per-route notes are wanted.
    view: bool,
    /// When each gracefully restarting peer's stale routes expire.
    stale: HashMap<IpAddr, Instant>,
    /// Configured peers whose End-of-RIBs the initial sync waits for;
    /// `None` once it is over.
    sync_pending: Option<HashSet<IpAddr>>,
    /// Per peer, the families whose End-of-RIB has not come yet.
    eor_wanted: HashMap<IpAddr, Vec<AfiSafi>>,
    /// The current batch's changes, and its size so far.
    batch: ChangeSet,
    batch_events: usize,
    batch_prefixes: usize,
    /// The Adj-RIB-Outs of the established peers.
    send: Sender,
}

impl Controller {
    /// A controller for `config`. Next hops resolve through `resolver`;
    /// `connected` are the box's networks. With `view`, change sets are
    /// built even when nothing is installed, and per-route notes are
    /// made. Returns the actions due at once (the initial sync is over
    /// at once when there are no configured peers).
    pub fn new(
        config: Config,
        resolver: Box<dyn Resolver + Send>,
        connected: Vec<IpNet>,
        view: bool,
    ) -> (Controller, Vec<Action>) {
        let install = config.kernel.install;
        let mut rib_cfg = RibConfig::new(config.local_as, config.router_id);
        rib_cfg.ibgp_multipath = config.multipath.max(1);
        // Change sets feed the kernel and the foreground view; with
        // neither, the RIB need not build them.
        rib_cfg.emit_changes = install || view;
        rib_cfg.track_export = config.speaks();
        rib_cfg.cluster_id = config.cluster_id();
        let mut rib = Rib::with_resolver(rib_cfg, resolver);
        rib.set_policy(config.policy());
        rib.set_connected(connected);
        let pending: HashSet<IpAddr> = config.peers.iter().map(|p| p.address).collect();
        let send = Sender::new(&config);
        let mut c = Controller {
            rib,
            config,
            install,
            view,
            stale: HashMap::new(),
            sync_pending: Some(pending),
            eor_wanted: HashMap::new(),
            batch: ChangeSet::new(),
            batch_events: 0,
            batch_prefixes: 0,
            send,
        };
        let mut out = Vec::new();
        if c.sync_pending.as_ref().is_some_and(|p| p.is_empty()) {
            c.sync_done(&mut out);
        }
        (c, out)
    }

    pub fn rib(&self) -> &Rib {
        &self.rib
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `[kernel] install`: whether change sets go to the kernel.
    pub fn install(&self) -> bool {
        self.install
    }

    /// Whether the initial sync is over.
    pub fn synced(&self) -> bool {
        self.sync_pending.is_none()
    }

    /// The batch holds as much as one should: end it.
    pub fn batch_full(&self) -> bool {
        self.batch_events >= EVENT_BATCH || self.batch_prefixes >= BATCH_PREFIXES
    }

    /// When [`Event::Timer`] is next due.
    pub fn next_timer(&self) -> Option<Instant> {
        self.stale.values().min().copied()
    }

    pub fn handle(&mut self, ev: Event, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        // Peer events are part of a batch: the send side runs at its end.
        let out_kind = if matches!(ev, Event::Peer(_)) {
            Kind::Peer
        } else {
            Kind::Other
        };
        match ev {
            Event::Peer(ev) => {
                self.batch_events += 1;
                self.peer_event(ev, now, &mut out);
            }
            Event::EndOfBatch => {
                self.batch_events = 0;
                self.batch_prefixes = 0;
            }
            Event::Reachability {
                resolver,
                connected,
            } => {
                let mut cs = self.rib.set_connected(connected);
                cs.append(self.rib.set_resolver(resolver));
                self.emit(cs, &mut out);
            }
            Event::Timer => {
                let due: Vec<IpAddr> = self
                    .stale
                    .iter()
                    .filter(|(_, t)| **t <= now)
                    .map(|(p, _)| *p)
                    .collect();
                let mut cs = ChangeSet::new();
                for peer in due {
                    self.stale.remove(&peer);
                    let llgr = self.rib.in_long_lived_stale(peer);
                    let (gone, next) = self.rib.stale_timer_expired(peer, now);
                    cs.append(gone);
                    match next {
                        Some(d) if !llgr => {
                            let line = format!(
                                "{peer}: graceful-restart time over; routes kept as long-lived stale for {}s, least preferred (RFC 9494)",
                                d.as_secs()
                            );
                            info!("{line}");
                            self.note(line, &mut out);
                        }
                        Some(_) => {
                            info!(%peer, "long-lived stale time over for a family: its routes go")
                        }
                        None if llgr => {
                            info!(%peer, "long-lived stale time over: the peer's stale routes go")
                        }
                        None => {
                            info!(%peer, "graceful-restart time over: the peer's stale routes go")
                        }
                    }
                    if let Some(d) = next {
                        self.stale.insert(peer, now + d);
                    }
                }
                self.emit(cs, &mut out);
            }
            Event::Reload(new) => self.reload(*new, &mut out),
        }
        if !matches!(out_kind, Kind::Peer) {
            self.send_changes(&mut out);
        }
        out
    }

    /// The routes `peer` has been sent (`bgpd show routes --advertised`).
    pub fn advertised(
        &self,
        peer: IpAddr,
    ) -> Option<Vec<(IpNet, std::sync::Arc<crate::rib::PathAttrs>)>> {
        self.send.advertised(peer)
    }

    /// Routes `peer` has been sent, and changes waiting for it.
    pub fn sent_counts(&self, peer: IpAddr) -> Option<(usize, usize)> {
        self.send.counts(peer)
    }

    /// Ends what the batch started: decides what is pending and hands the
    /// batch's change set on, exports the changed prefixes, and gives each
    /// ready peer a burst.
    fn send_changes(&mut self, out: &mut Vec<Action>) {
        let mut cs = self.batch.take();
        let (decided, touched) = self.rib.take_export();
        cs.append(decided);
        self.emit(cs, out);
        self.send.changed(&self.config, &self.rib, &touched);
        out.extend(self.send.drain().into_iter().map(Action::Send));
    }

    /// Hands a change set on, if anything reads it.
    fn emit(&self, cs: ChangeSet, out: &mut Vec<Action>) {
        if !cs.is_empty() && (self.install || self.view) {
            out.push(Action::Fib(cs));
        }
    }

    fn note(&self, line: String, out: &mut Vec<Action>) {
        if self.view {
            out.push(Action::Note(line));
        }
    }

    fn peer_event(&mut self, ev: PeerEvent, now: Instant, out: &mut Vec<Action>) {
        match ev {
            PeerEvent::Up {
                peer,
                negotiated,
                local,
            } => {
                self.stale.remove(&peer);
                self.eor_wanted
                    .insert(peer, negotiated.families.iter().collect());
                self.adopt_range_policy(peer);
                let cs = self
                    .rib
                    .peer_up(peer, PeerInfo::from_negotiated(&negotiated));
                self.batch.append(cs);
                self.send
                    .up(&self.config, &self.rib, peer, &negotiated, local);
            }
            PeerEvent::Down { peer, reason } => {
                // RFC 4724 §4.2: a lost connection keeps the peer's routes
                // as stale; a NOTIFICATION (or our own stop) removes them.
                let how = match reason {
                    DownReason::ConnectionLost | DownReason::PeerRestarted => Down::Graceful,
                    _ => Down::Hard,
                };
                let (down, keep) = self.rib.peer_down(peer, now, how);
                self.batch.append(down);
                self.send.down(peer);
                if let Some(d) = keep {
                    self.stale.insert(peer, now + d);
                    let line = if self.rib.in_long_lived_stale(peer) {
                        format!(
                            "{peer}: routes kept as long-lived stale for {}s, least preferred (RFC 9494, restart time 0)",
                            d.as_secs()
                        )
                    } else {
                        format!(
                            "{peer}: routes kept as stale for {}s (graceful restart)",
                            d.as_secs()
                        )
                    };
                    info!("{line}");
                    self.note(line, out);
                    if self.view {
                        for r in self.rib.routes().filter(|r| r.stale) {
                            let nh: Vec<String> =
                                r.next_hops.iter().map(|n| n.to_string()).collect();
                            out.push(Action::Note(format!(
                                "route {} via {} (stale)",
                                r.prefix,
                                nh.join(" ")
                            )));
                        }
                    }
                }
            }
            PeerEvent::Update { peer, update } => {
                self.batch_prefixes += update.prefix_count();
                let rejected = |rib: &Rib| {
                    rib.peer(peer)
                        .map(|p| p.counters.ipv4.rejected + p.counters.ipv6.rejected)
                };
                let rejected_before = self.view.then(|| rejected(&self.rib)).flatten();
                let max_prefix = self.rib.update(peer, &update, now, &mut self.batch);
                if let Some(af) = update.as_end_of_rib() {
                    self.end_of_rib(peer, af, out);
                }
                if let Some(before) = rejected_before
                    && rejected(&self.rib).is_some_and(|n| n > before)
                {
                    self.rejected_notes(peer, &update, out);
                }
                match max_prefix {
                    Some(MaxPrefixEvent::Warning { peer, count, limit }) => {
                        warn!(%peer, count, limit, "max-prefix warning threshold reached");
                    }
                    Some(MaxPrefixEvent::Exceeded { peer, count, limit }) => {
                        warn!(%peer, count, limit, "max-prefix exceeded: closing the session (Cease 6/1)");
                        // Nothing beyond the limit may reach the kernel: the
                        // peer's routes go now, in the batch's change set,
                        // which supersedes the batch's earlier changes, so
                        // the FIB only sees the result. The RIB ignores
                        // this peer's UPDATEs still in flight, until its
                        // next session comes up.
                        let (down, _) = self.rib.peer_down(peer, now, Down::Hard);
                        self.batch.append(down);
                        out.push(Action::Fail {
                            peer,
                            // RFC 4486 §4: Cease / Maximum Number of
                            // Prefixes Reached.
                            notification: Notification::new(
                                err::CEASE,
                                err::CEASE_MAX_PREFIXES,
                                vec![],
                            ),
                            restart_after: self
                                .rib
                                .policy()
                                .max_prefix(peer)
                                .and_then(|m| m.restart_after),
                        });
                    }
                    None => {}
                }
            }
            PeerEvent::RouteRefresh { peer, .. } => self.send.refresh(peer),
            PeerEvent::Ready { peer } => self.send.ready(peer),
            PeerEvent::State { .. } => {}
        }
    }

    /// The prefixes of `update` that the policy rejected, as notes.
    fn rejected_notes(&self, peer: IpAddr, update: &crate::wire::Update, out: &mut Vec<Action>) {
        for n in update.announced() {
            let path_id = n.path_id.unwrap_or(0);
            let reason = self.rib.prefix(n.prefix.trunc()).and_then(|pv| {
                pv.paths.iter().find_map(|p| match p.state {
                    PathState::Rejected(r) if p.peer == peer && p.path_id == path_id => Some(r),
                    _ => None,
                })
            });
            if let Some(r) = reason {
                out.push(Action::Note(format!("{peer}: {} rejected: {r}", n.prefix)));
            }
        }
    }

    /// A dynamic peer takes its range's import policy.
    fn adopt_range_policy(&mut self, peer: IpAddr) {
        if self.rib.policy().peers.contains_key(&peer) {
            return;
        }
        if let Some(p) = self.config.range_policy(peer) {
            let cs = self.rib.set_peer_policy(peer, p);
            self.batch.append(cs);
        }
    }

    /// Records an End-of-RIB; once every configured peer has sent its
    /// End-of-RIBs, the FIB may drop routes a previous run left behind.
    fn end_of_rib(&mut self, peer: IpAddr, af: AfiSafi, out: &mut Vec<Action>) {
        let Some(w) = self.eor_wanted.get_mut(&peer) else {
            return;
        };
        w.retain(|f| *f != af);
        if !w.is_empty() {
            return;
        }
        let Some(p) = self.sync_pending.as_mut() else {
            return;
        };
        if p.remove(&peer) && p.is_empty() {
            // The batch so far reaches the FIB before it hears the sync
            // is over: what it holds then is what the peers sent.
            let mut cs = self.batch.take();
            cs.append(self.rib.commit());
            self.emit(cs, out);
            self.sync_done(out);
        }
    }

    fn sync_done(&mut self, out: &mut Vec<Action>) {
        self.sync_pending = None;
        info!("initial sync done: every peer sent End-of-RIB");
        out.push(Action::FibInitialSyncDone);
    }

    /// Applies what changed from the running configuration to `new`: peers
    /// added, removed or changed are started, stopped or restarted; the
    /// others are not touched. Policy and multipath are re-evaluated from
    /// the Adj-RIB-In, sessions untouched.
    fn reload(&mut self, new: Config, out: &mut Vec<Action>) {
        let d = config::diff(&self.config, &new);
        let mut done = Vec::new();
        for addr in &d.peers_removed {
            out.push(Action::RemovePeer(*addr));
            done.push(format!("removed {addr}"));
        }
        for change in &d.peers_changed {
            let addr = &change.address;
            if change.session {
                out.push(Action::RemovePeer(*addr));
                if let Some(p) = new.peer(*addr) {
                    out.push(Action::AddPeer(Box::new(new.peer_spec(p))));
                }
                done.push(format!("restarted {addr}"));
            } else if change.policy {
                done.push(format!("re-evaluated {addr}"));
            }
        }
        for addr in &d.peers_added {
            if let Some(p) = new.peer(*addr) {
                out.push(Action::AddPeer(Box::new(new.peer_spec(p))));
                done.push(format!("added {addr}"));
            }
        }
        if !d.ranges_added.is_empty()
            || !d.ranges_removed.is_empty()
            || !d.ranges_changed.is_empty()
        {
            out.push(Action::SetRanges(new.range_specs()));
            done.push("ranges updated".into());
        }
        for what in &d.restart_required {
            warn!("reload: {what} changes only take effect after a restart");
        }
        let policy_changed = d.import_changed
            || !d.ranges_policy_changed.is_empty()
            || d.peers_changed.iter().any(|c| c.policy)
            || !d.peers_added.is_empty()
            || !d.peers_removed.is_empty();
        if policy_changed {
            let mut policy = new.policy();
            // Dynamic peers keep the policy of their range.
            for p in self.rib.peers() {
                if !policy.peers.contains_key(&p.addr)
                    && let Some(rp) = new.range_policy(p.addr)
                {
                    policy.peers.insert(p.addr, rp);
                }
            }
            let cs = self.rib.set_policy(policy);
            if !cs.is_empty() {
                done.push(format!(
                    "policy re-evaluated: {} prefixes changed",
                    cs.len()
                ));
            }
            self.emit(cs, out);
        }
        if d.multipath_changed {
            let cs = self.rib.set_multipath(new.multipath.max(1));
            done.push(format!("multipath {}", new.multipath));
            self.emit(cs, out);
        }
        if d.kernel_changed {
            warn!("reload: [kernel] changes take effect after a restart");
        }
        // The sessions, not the RIB, carry a new AS or router id: every
        // peer was restarted above.
        self.config = Config {
            kernel: self.config.kernel.clone(),
            ..new
        };
        // Export policy, reflection and networks: each peer is sent what
        // differs, without a session reset.
        self.rib.set_track_export(self.config.speaks());
        self.send.reconfigure(&self.config, &self.rib);
        let summary = if done.is_empty() {
            "reloaded: no changes".to_string()
        } else {
            format!("reloaded: {}", done.join(", "))
        };
        info!("{summary}");
        out.push(Action::Reloaded(summary));
    }
}
