//! The daemon's main loop, shared by `bgpd --config FILE` and the
//! `bgpd --peer ...` foreground view: listeners, peers, the control socket,
//! signals (SIGTERM/SIGINT stop, SIGHUP reloads) and systemd notification.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::config::{self, Config};
use crate::control::{self, Query, Request, Response};
use crate::fib::{self, FibConfig, FibEvent, FibHandle};
use crate::fsm::DownReason;
use crate::notify;
use crate::rib::{Down, MaxPrefixEvent, PathState, PeerInfo, Policy, Rib, RibConfig};
use crate::route::{ChangeSet, RouteChange};
use crate::session::{self, Accepted, PeerEvent, PeerSpec, RangeSpec, Speaker};
use crate::wire::{Notification, iana::err};

/// Peer events taken from the queue as one batch (one decision per
/// touched prefix, one change set to the FIB): up to this many events...
const EVENT_BATCH: usize = 1024;
/// ...or until they carry this many prefixes. An UPDATE carries up to
/// about 900 IPv4 prefixes, so a batch's change set stays within a few
/// tens of thousands of changes. A Calico reflector's UPDATEs carry one
/// or two prefixes: a batch takes 1,024 of them and decides the service
/// CIDR (a path per node and reflector) once for them, not four times.
const BATCH_PREFIXES: usize = 25_600;

/// Everything the daemon starts with.
pub struct Setup {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    pub peers: Vec<PeerSpec>,
    pub ranges: Vec<RangeSpec>,
    pub listen: Vec<SocketAddr>,
    /// The control socket and the group that may use it.
    pub control: Option<(PathBuf, Option<String>)>,
    /// The configuration, from a file or from flags.
    pub config: Config,
    /// The configuration file, for SIGHUP and `bgpd reload`; `None` when
    /// the configuration came from flags.
    pub path: Option<PathBuf>,
    /// The routing table's settings and import policy.
    pub rib: RibConfig,
    pub policy: Policy,
    /// How routes reach the kernel.
    pub fib: FibConfig,
}

impl Setup {
    /// The daemon's setup from a validated configuration, read from the
    /// file at `path` or rendered from flags (`None`).
    pub fn from_config(path: Option<PathBuf>, cfg: Config) -> Setup {
        let mut rib = RibConfig::new(cfg.local_as, cfg.router_id);
        rib.ibgp_multipath = cfg.multipath.max(1);
        Setup {
            local_as: cfg.local_as,
            router_id: cfg.router_id,
            peers: cfg.peer_specs(),
            ranges: cfg.range_specs(),
            listen: cfg.listen.clone(),
            control: cfg
                .control
                .enabled
                .then(|| (cfg.control.socket.clone(), cfg.control.group.clone())),
            rib,
            policy: cfg.policy(),
            fib: cfg.kernel.fib_config(),
            config: cfg,
            path,
        }
    }
}

/// Starts the MRT writer: records from the peers are appended to `file`
/// (RFC 6396 BGP4MP_ET), flushed at least every second.
fn start_mrt(file: &std::path::Path) -> Result<session::MrtSink, String> {
    use std::io::Write;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .map_err(|e| {
            format!(
                "cannot open the MRT dump {}: {e}; check [mrt] file and its directory's permissions",
                file.display()
            )
        })?;
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4096);
    tokio::task::spawn_blocking(move || {
        let mut w = std::io::BufWriter::new(f);
        while let Some(rec) = rx.blocking_recv() {
            if w.write_all(&rec).is_err() {
                break;
            }
            while let Ok(rec) = rx.try_recv() {
                if w.write_all(&rec).is_err() {
                    return;
                }
            }
            let _ = w.flush();
        }
        let _ = w.flush();
    });
    Ok(tx)
}

/// Why the kernel side could not start, for people.
fn explain_fib(e: std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => format!(
            "cannot manage kernel routes: {e}; run as root or with CAP_NET_ADMIN \
             (systemd: AmbientCapabilities=CAP_NET_ADMIN), or use --no-install / [kernel] install = false"
        ),
        _ => format!("cannot open the kernel's routing netlink socket: {e}"),
    }
}

/// Called with every peer event and route change, for the foreground view.
pub trait View: Send {
    fn event(&mut self, ev: &PeerEvent);
    fn routes(&mut self, changes: &[RouteChange]);
    fn note(&mut self, line: &str);
}

pub async fn run(setup: Setup, mut view: Option<Box<dyn View>>) -> Result<(), String> {
    let (ev_tx, mut ev_rx) = mpsc::channel(session::EVENT_QUEUE);
    let (acc_tx, mut acc_rx) = mpsc::channel::<Accepted>(64);
    let mut speaker = Speaker::new(ev_tx);
    if let Some(file) = &setup.config.mrt.file {
        speaker.set_mrt(start_mrt(file)?);
        info!(file = %file.display(), "dumping received messages (MRT BGP4MP)");
    }
    for spec in setup.peers.iter().cloned() {
        speaker.add_peer(spec);
    }
    for r in setup.ranges.iter().cloned() {
        speaker.add_range(r);
    }
    let bound = speaker.listen(&setup.listen, acc_tx)?;
    let (q_tx, mut q_rx) = mpsc::channel::<Query>(16);
    let q_tx_metrics = q_tx.clone();
    if let Some((path, group)) = &setup.control {
        let l = control::bind(path, group.as_deref())?;
        tokio::spawn(control::serve(l, q_tx));
    }
    if let Some(addr) = setup.config.metrics.listen {
        crate::metrics::serve(addr, q_tx_metrics.clone()).await?;
        info!(%addr, "Prometheus metrics on /metrics");
    }
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("signals: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("signals: {e}"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| format!("signals: {e}"))?;
    info!(
        router_id = %setup.router_id,
        asn = setup.local_as,
        listen = ?bound,
        peers = setup.peers.len(),
        ranges = setup.ranges.len(),
        install = setup.fib.install,
        "bgpd started"
    );
    if view.is_some() {
        println!(
            "bgpd: AS {} router id {}, listening on {}{}",
            setup.local_as,
            setup.router_id,
            bound
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            if setup.fib.install {
                " (routes go into the kernel)"
            } else {
                " (routes are not installed: --no-install)"
            }
        );
    }
    // The kernel side: its view of links, addresses and routes is loaded
    // before spawn returns, so next hops resolve from the first UPDATE.
    let (fib, mut fib_events, fib_task) =
        fib::spawn(setup.fib.clone()).await.map_err(explain_fib)?;
    // Listeners are up and the FIB is synced with the kernel.
    notify::notify("READY=1\nSTATUS=running");
    let mut watchdog = notify::watchdog_interval().map(tokio::time::interval);
    // The foreground view prints its rate-limited summaries when called;
    // this tick lets a burst's last summary out without waiting for the
    // next event.
    let mut view_tick = view
        .is_some()
        .then(|| tokio::time::interval(Duration::from_secs(1)));
    let reachability = fib.initial_reachability();
    let connected = reachability.connected();
    let mut rib_cfg = setup.rib.clone();
    // Change sets feed the kernel and the foreground view; with neither,
    // the RIB need not build them.
    rib_cfg.emit_changes = setup.fib.install || view.is_some();
    let mut rib = Rib::with_resolver(rib_cfg, Box::new(reachability));
    rib.set_policy(setup.policy.clone());
    rib.set_connected(connected);
    let sync_pending: std::collections::HashSet<IpAddr> =
        setup.peers.iter().map(|p| p.addr).collect();
    let mut state = State {
        speaker,
        local_as: setup.local_as,
        config: setup.config,
        path: setup.path,
        rib,
        stale: HashMap::new(),
        fib: fib.clone(),
        install: setup.fib.install,
        fib_synced: false,
        sync_pending: Some(sync_pending),
        eor_wanted: HashMap::new(),
    };
    if state.sync_pending.as_ref().is_some_and(|p| p.is_empty()) {
        state.sync_done().await;
    }
    loop {
        let stale_due = state.stale.values().min().copied();
        tokio::select! {
            Some(a) = acc_rx.recv() => state.speaker.accept(a).await,
            Some(ev) = ev_rx.recv() => {
                // Take what the peers have queued (up to a bound) as one
                // batch: the RIB decides each touched prefix once and the
                // FIB gets one change set.
                let mut changes = ChangeSet::new();
                let mut next = Some(ev);
                let (mut n, mut prefixes) = (0, 0);
                while let Some(ev) = next {
                    if let Some(v) = view.as_mut() {
                        v.event(&ev);
                    }
                    if let PeerEvent::Update { update, .. } = &ev {
                        prefixes += update.prefix_count();
                    }
                    state.peer_event(ev, &mut view, &mut changes).await;
                    n += 1;
                    next = if n < EVENT_BATCH && prefixes < BATCH_PREFIXES {
                        ev_rx.try_recv().ok()
                    } else {
                        None
                    };
                }
                changes.append(state.rib.commit());
                state.apply(changes, &mut view).await;
            }
            Some(ev) = fib_events.recv() => match ev {
                FibEvent::Reachability(r) => {
                    // Links, addresses or routes changed: connected networks
                    // and next-hop reachability may have too.
                    let mut changes = state.rib.set_connected(r.connected());
                    changes.append(state.rib.set_resolver(Box::new(r)));
                    state.apply(changes, &mut view).await;
                }
                FibEvent::InitialSyncOver => state.fib_synced = true,
            },
            _ = sleep_until(stale_due) => {
                let now = Instant::now();
                let due: Vec<IpAddr> = state.stale.iter().filter(|(_, t)| **t <= now).map(|(p, _)| *p).collect();
                for peer in due {
                    state.stale.remove(&peer);
                    info!(%peer, "graceful-restart time over: the peer's stale routes go");
                    let changes = state.rib.stale_timer_expired(peer);
                    state.apply(changes, &mut view).await;
                }
            }
            Some(q) = q_rx.recv() => {
                let resp = state.answer(&q.request, &mut view).await;
                let _ = q.reply.send(resp);
            }
            _ = tick(&mut watchdog) => notify::notify("WATCHDOG=1"),
            _ = tick(&mut view_tick) => {
                if let Some(v) = view.as_mut() {
                    v.routes(&[]);
                }
            }
            _ = hup.recv() => {
                if let Err(e) = state.reload(&mut view).await {
                    error!("{e}");
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    notify::notify("STOPPING=1");
    if view.is_some() {
        println!("bgpd: shutting down");
    }
    info!("shutting down");
    state.speaker.shutdown("bgpd shutting down").await;
    match state.fib.shutdown().await {
        Ok(r) => info!("kernel routes at shutdown: {r:?}"),
        Err(_) => warn!("the kernel task ended early"),
    }
    drop(state);
    let _ = tokio::time::timeout(Duration::from_secs(10), fib_task).await;
    while let Ok(ev) = ev_rx.try_recv() {
        if let Some(v) = view.as_mut() {
            v.event(&ev);
        }
    }
    if let Some((path, _)) = &setup.control {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

async fn tick(w: &mut Option<tokio::time::Interval>) {
    match w {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

struct State {
    speaker: Speaker,
    local_as: u32,
    config: Config,
    path: Option<PathBuf>,
    rib: Rib,
    /// When each gracefully restarting peer's stale routes expire.
    stale: HashMap<IpAddr, Instant>,
    fib: FibHandle,
    /// `[kernel] install`: when off, change sets do not go to the FIB
    /// (`show fib` and `show route` report the RIB's choice as not
    /// installed).
    install: bool,
    /// The FIB's initial sync is over (`FibEvent::InitialSyncOver`).
    fib_synced: bool,
    /// Configured peers whose End-of-RIB the FIB's initial sync waits for.
    sync_pending: Option<std::collections::HashSet<IpAddr>>,
    /// Per peer, the families whose End-of-RIB has not come yet.
    eor_wanted: HashMap<IpAddr, Vec<crate::wire::AfiSafi>>,
}

impl State {
    /// Feeds a peer event to the RIB and adds the route changes to
    /// `changes` (the batch so far; UPDATEs are decided at its end, see
    /// [`Rib::update`]).
    async fn peer_event(
        &mut self,
        ev: PeerEvent,
        view: &mut Option<Box<dyn View>>,
        changes: &mut ChangeSet,
    ) {
        let now = Instant::now();
        match ev {
            PeerEvent::Up { peer, negotiated } => {
                self.stale.remove(&peer);
                self.eor_wanted
                    .insert(peer, negotiated.families.iter().collect());
                changes.append(self.adopt_range_policy(peer));
                changes.append(
                    self.rib
                        .peer_up(peer, PeerInfo::from_negotiated(&negotiated)),
                );
            }
            PeerEvent::Down { peer, reason } => {
                // RFC 4724 §4.2: a lost connection keeps the peer's routes
                // as stale; a NOTIFICATION (or our own stop) removes them.
                let how = match reason {
                    DownReason::ConnectionLost | DownReason::PeerRestarted => Down::Graceful,
                    _ => Down::Hard,
                };
                let (down, keep) = self.rib.peer_down(peer, now, how);
                changes.append(down);
                if let Some(d) = keep {
                    self.stale.insert(peer, now + d);
                    let line = format!(
                        "{peer}: routes kept as stale for {}s (graceful restart)",
                        d.as_secs()
                    );
                    info!("{line}");
                    if let Some(v) = view.as_mut() {
                        v.note(&line);
                        for r in self.rib.routes().filter(|r| r.stale) {
                            let nh: Vec<String> =
                                r.next_hops.iter().map(|n| n.to_string()).collect();
                            v.note(&format!("route {} via {} (stale)", r.prefix, nh.join(" ")));
                        }
                    }
                }
            }
            PeerEvent::Update { peer, update } => {
                let rejected_before = view
                    .as_ref()
                    .and_then(|_| self.rib.peer(peer))
                    .map(|p| p.counters.ipv4.rejected + p.counters.ipv6.rejected);
                let max_prefix = self.rib.update(peer, &update, now, changes);
                if let Some(af) = update.as_end_of_rib() {
                    // If this End-of-RIB may end the initial sync, the batch
                    // so far reaches the FIB before it hears so.
                    if self
                        .sync_pending
                        .as_ref()
                        .is_some_and(|p| p.contains(&peer))
                    {
                        changes.append(self.rib.commit());
                        self.apply(changes.take(), view).await;
                    }
                    self.end_of_rib(peer, af).await;
                }
                if let Some(v) = view.as_mut()
                    && let Some(before) = rejected_before
                    && self.rib.peer(peer).is_some_and(|p| {
                        p.counters.ipv4.rejected + p.counters.ipv6.rejected > before
                    })
                {
                    for n in update.announced() {
                        if let Some(pv) = self.rib.prefix(n.prefix.trunc())
                            && let Some(r) = pv.paths.iter().find_map(|p| match p.state {
                                PathState::Rejected(r)
                                    if p.peer == peer && p.path_id == n.path_id.unwrap_or(0) =>
                                {
                                    Some(r)
                                }
                                _ => None,
                            })
                        {
                            v.note(&format!("{peer}: {} rejected: {r}", n.prefix));
                        }
                    }
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
                        // the FIB only sees the result.
                        let (down, _) = self.rib.peer_down(peer, now, Down::Hard);
                        // The RIB now ignores this peer's UPDATEs still in
                        // flight, until its next session comes up.
                        changes.append(down);
                        // RFC 4486 §4: Cease / Maximum Number of Prefixes Reached.
                        let n = Notification::new(err::CEASE, err::CEASE_MAX_PREFIXES, vec![]);
                        if let Some(h) = self.speaker.peer(&peer) {
                            let _ = h
                                .cmd
                                .send(session::PeerCommand::Fail {
                                    notification: n,
                                    restart_after: self
                                        .rib
                                        .policy()
                                        .max_prefix(peer)
                                        .and_then(|m| m.restart_after),
                                })
                                .await;
                        }
                    }
                    None => {}
                }
            }
            PeerEvent::State { .. } | PeerEvent::RouteRefresh { .. } => {}
        }
    }

    /// What the metrics endpoint reports.
    async fn snapshot(&self) -> crate::metrics::Snapshot {
        let now = std::time::SystemTime::now();
        let mut snap = crate::metrics::Snapshot {
            rib_prefixes: self.rib.len() as u64,
            rib_attribute_sets: self.rib.attr_sets() as u64,
            ..Default::default()
        };
        for h in self.speaker.peers() {
            let st = h.status.borrow().clone();
            let (received, accepted) = self
                .rib
                .peer(h.spec.addr)
                .map(|p| {
                    let c = &p.counters;
                    (
                        (c.ipv4.received + c.ipv6.received) as u64,
                        (c.ipv4.accepted + c.ipv6.accepted) as u64,
                    )
                })
                .unwrap_or_default();
            snap.peers.push(crate::metrics::PeerMetrics {
                peer: h.spec.addr.to_string(),
                state: st.state as i64 + 1,
                uptime_seconds: now.duration_since(st.since).unwrap_or_default().as_secs() as i64,
                msgs_in: st.msgs_in,
                msgs_out: st.msgs_out,
                received,
                accepted,
                installed: accepted,
            });
        }
        if let Ok(f) = self.fib_status().await {
            snap.fib_desired = f.desired as u64;
            snap.fib_installed = f.installed as u64;
            snap.fib_pending = f.pending as u64;
            snap.fib_failed = f.failed as u64;
            snap.fib_conflicts = f.conflicts as u64;
            snap.fib_ops = f.ops;
        }
        snap
    }

    /// A dynamic peer takes its range's import policy.
    fn adopt_range_policy(&mut self, peer: IpAddr) -> ChangeSet {
        let cfg = &self.config;
        if self.rib.policy().peers.contains_key(&peer) {
            return ChangeSet::new();
        }
        match cfg.range_policy(peer) {
            Some(p) => self.rib.set_peer_policy(peer, p),
            None => ChangeSet::new(),
        }
    }

    /// Hands route changes on: to the FIB (waiting when its queue is full:
    /// that is the backpressure) and the view.
    async fn apply(&mut self, changes: ChangeSet, view: &mut Option<Box<dyn View>>) {
        if changes.is_empty() {
            return;
        }
        if let Some(v) = view.as_mut() {
            v.routes(&changes);
        }
        if !self.install {
            return;
        }
        if self.fib.apply(changes).await.is_err() {
            error!("the kernel task has stopped; routes are no longer installed");
        }
    }

    /// The FIB's status; with install off the FIB is not fed, so what it
    /// would be asked to install is the RIB's count.
    async fn fib_status(&self) -> Result<fib::FibStatus, fib::FibClosed> {
        let mut st = self.fib.status().await?;
        if !self.install {
            st.desired = self.rib.selected();
        }
        Ok(st)
    }

    /// Records an End-of-RIB; once every configured peer has sent its
    /// End-of-RIBs, the FIB may drop routes a previous run left behind.
    async fn end_of_rib(&mut self, peer: IpAddr, af: crate::wire::AfiSafi) {
        if let Some(w) = self.eor_wanted.get_mut(&peer) {
            w.retain(|f| *f != af);
            if w.is_empty()
                && let Some(p) = self.sync_pending.as_mut()
            {
                p.remove(&peer);
                if p.is_empty() {
                    self.sync_done().await;
                }
            }
        }
    }

    async fn sync_done(&mut self) {
        self.sync_pending = None;
        info!("initial sync done: every peer sent End-of-RIB");
        let _ = self.fib.initial_sync_done().await;
    }

    async fn answer(&mut self, req: &Request, view: &mut Option<Box<dyn View>>) -> Response {
        match req {
            Request::Neighbors => {
                let mut rows = self.speaker.neighbor_rows(self.local_as);
                for r in &mut rows {
                    if let Ok(addr) = r.address.parse::<IpAddr>()
                        && let Some(p) = self.rib.peer(addr)
                    {
                        let c = &p.counters;
                        r.received = (c.ipv4.received + c.ipv6.received) as u64;
                        r.accepted = (c.ipv4.accepted + c.ipv6.accepted) as u64;
                        // What the RIB chose to install from this peer.
                        r.installed = r.accepted;
                    }
                }
                Response::ok(rows)
            }
            Request::Routes { prefix: Some(p) } => match p.parse::<ipnet::IpNet>() {
                Ok(net) => match self.rib.prefix(net.trunc()) {
                    Some(v) => Response::ok(prefix_json(&v)),
                    None => Response::err(format!("no route for {net}")),
                },
                Err(_) => Response::err(format!("'{p}' is not a prefix (e.g. 172.15.190.0/26)")),
            },
            Request::Routes { prefix: None } => {
                let rows: Vec<serde_json::Value> = self
                    .rib
                    .routes()
                    .map(|r| {
                        serde_json::json!({
                            "prefix": r.prefix.to_string(),
                            "next_hops": r.next_hops.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                            "reason": r.reason.map(|s| s.to_string()),
                            "paths": r.paths,
                            "stale": r.stale,
                            "rejected": r.rejected,
                            "reject_reason": r.reject_reason.map(|s| s.to_string()),
                        })
                    })
                    .collect();
                Response::ok(rows)
            }
            Request::Metrics => Response::ok(crate::metrics::encode(&self.snapshot().await)),
            Request::Fib => match self.fib_status().await {
                Ok(st) => Response::ok(st),
                Err(_) => Response::err("the kernel task has stopped"),
            },
            Request::Reconcile => match self.fib.reconcile().await {
                Ok(r) => Response::ok(r),
                Err(_) => Response::err("the kernel task has stopped"),
            },
            Request::Route { address } => match address.parse::<IpAddr>() {
                Ok(a) => match self.rib.lookup(a) {
                    Some(v) => {
                        let kernel = if self.install {
                            self.fib.lookup(v.prefix).await.ok().flatten()
                        } else {
                            (!v.next_hops.is_empty()).then(|| fib::PrefixStatus {
                                prefix: v.prefix,
                                desired: v.next_hops.iter().map(|n| n.to_string()).collect(),
                                state: fib::PrefixState::NotInstalled,
                                foreign: Vec::new(),
                            })
                        };
                        Response::ok(serde_json::json!({
                            "address": a.to_string(),
                            "route": prefix_json(&v),
                            "kernel": kernel,
                        }))
                    }
                    None => Response::err(format!(
                        "no BGP route carries {a}: no reflector announced a covering prefix, or it was rejected (see bgpd show routes)"
                    )),
                },
                Err(_) => Response::err(format!("'{address}' is not an IP address")),
            },
            Request::Health => {
                let rows = self.speaker.neighbor_rows(self.local_as);
                Response::ok(control::Health {
                    peers: rows.len(),
                    established: rows.iter().filter(|r| r.state == "up").count(),
                    fib_synced: self.fib_synced,
                    paths: self
                        .rib
                        .peers()
                        .iter()
                        .map(|p| (p.counters.ipv4.accepted + p.counters.ipv6.accepted) as u64)
                        .sum(),
                })
            }
            Request::Reload => match self.reload(view).await {
                Ok(summary) => Response::ok(summary),
                Err(e) => Response::err(e),
            },
        }
    }

    /// Re-reads the configuration and applies what changed: peers added,
    /// removed or changed are started, stopped or restarted; the others
    /// are not touched. A configuration that fails validation is refused
    /// and the running one stays.
    async fn reload(&mut self, view: &mut Option<Box<dyn View>>) -> Result<String, String> {
        let (Some(path), old) = (&self.path, &self.config) else {
            return Err("reload: bgpd was started without --config; nothing to reload".into());
        };
        let path = path.clone();
        notify::notify("RELOADING=1");
        let new = match config::load(&path) {
            Ok(c) => c,
            Err(errors) => {
                notify::notify("READY=1");
                for e in errors.iter() {
                    warn!("{e}");
                }
                return Err(format!(
                    "reload refused, the running configuration stays: {}",
                    errors
                        .iter()
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                ));
            }
        };
        let d = config::diff(old, &new);
        let mut done = Vec::new();
        for addr in &d.peers_removed {
            self.speaker.remove_peer(*addr).await;
            done.push(format!("removed {addr}"));
        }
        for change in &d.peers_changed {
            let addr = &change.address;
            if change.session {
                self.speaker.remove_peer(*addr).await;
                if let Some(p) = new.peer(*addr) {
                    self.speaker.add_peer(new.peer_spec(p));
                }
                done.push(format!("restarted {addr}"));
            } else if change.policy {
                done.push(format!("re-evaluated {addr}"));
            }
        }
        for addr in &d.peers_added {
            if let Some(p) = new.peer(*addr) {
                self.speaker.add_peer(new.peer_spec(p));
                done.push(format!("added {addr}"));
            }
        }
        if !d.ranges_added.is_empty()
            || !d.ranges_removed.is_empty()
            || !d.ranges_changed.is_empty()
        {
            self.speaker.set_ranges(new.range_specs());
            done.push("ranges updated".into());
        }
        for what in &d.restart_required {
            warn!("reload: {what} changes only take effect after a restart");
        }
        // Policy and multipath: re-evaluated from the Adj-RIB-In, sessions
        // untouched.
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
            let changes = self.rib.set_policy(policy);
            if !changes.is_empty() {
                done.push(format!(
                    "policy re-evaluated: {} prefixes changed",
                    changes.len()
                ));
            }
            self.apply(changes, view).await;
        }
        if d.multipath_changed {
            let changes = self.rib.set_multipath(new.multipath.max(1));
            done.push(format!("multipath {}", new.multipath));
            self.apply(changes, view).await;
        }
        if d.kernel_changed {
            warn!("reload: [kernel] changes take effect after a restart");
        }
        self.local_as = new.local_as;
        self.config = new;
        notify::notify("READY=1");
        let summary = if done.is_empty() {
            "reloaded: no changes".to_string()
        } else {
            format!("reloaded: {}", done.join(", "))
        };
        info!("{summary}");
        Ok(summary)
    }
}

/// One prefix with its candidates, for `bgpd show routes PREFIX` and
/// `bgpd show route ADDRESS`.
fn prefix_json(v: &crate::rib::PrefixView) -> serde_json::Value {
    let paths: Vec<serde_json::Value> = v
        .paths
        .iter()
        .map(|p| {
            let (state, why) = match p.state {
                PathState::Best(s) => ("best", s.to_string()),
                PathState::Multipath(s) => ("multipath", format!("equal up to {s}")),
                PathState::Lost(s) => ("lost", s.to_string()),
                PathState::Rejected(r) => ("rejected", r.to_string()),
                PathState::Unresolved => ("unresolved", "next hop unreachable".to_string()),
            };
            let a = &p.attrs;
            serde_json::json!({
                "peer": p.peer.to_string(),
                "path_id": p.path_id,
                "state": state,
                "why": why,
                "stale": p.stale,
                "next_hop": a.next_hop.to_string(),
                "as_path": a.as_path.to_string(),
                "origin": a.origin.to_string(),
                "local_pref": a.local_pref,
                "med": a.med,
                "originator_id": a.originator_id.map(|o| o.to_string()),
                "cluster_list": a.cluster_list.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                "communities": a.communities.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "prefix": v.prefix.to_string(),
        "next_hops": v.next_hops.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "paths": paths,
    })
}

/// The router id when none is given: the IPv4 source address the kernel
/// would use towards the first IPv4 peer. A UDP connect sends nothing.
pub fn infer_router_id(peers: &[IpAddr]) -> Option<Ipv4Addr> {
    let peer = peers.iter().find(|p| p.is_ipv4())?;
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect(SocketAddr::new(*peer, 179)).ok()?;
    match s.local_addr().ok()?.ip() {
        IpAddr::V4(a) if !a.is_unspecified() => Some(a),
        _ => None,
    }
}
