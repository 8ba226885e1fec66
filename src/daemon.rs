//! The daemon's wiring, shared by `bgpd --config FILE` and the
//! `bgpd --peer ...` foreground view: the listeners and peer tasks, the
//! FIB task, the control socket and metrics, signals (SIGTERM/SIGINT
//! stop, SIGHUP reloads) and systemd notification, around one select
//! loop. What to do with each event is the [`Controller`]'s decision; this
//! performs its actions.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::config::{self, Config};
use crate::control::answer::{self, FibAnswer, FibQuery, Sources};
use crate::control::{self, Query, Request, Response};
use crate::controller::{Action, Controller, Event};
use crate::fib::{self, FibEvent, FibHandle};
use crate::notify;
use crate::route::RouteChange;
use crate::session::{self, Accepted, PeerCommand, PeerEvent, Speaker};

/// Everything the daemon starts with.
pub struct Setup {
    /// The configuration, from a file or from flags.
    pub config: Config,
    /// The configuration file, for SIGHUP and `bgpd reload`; `None` when
    /// the configuration came from flags.
    pub path: Option<PathBuf>,
}

impl Setup {
    /// The daemon's setup from a validated configuration, read from the
    /// file at `path` or rendered from flags (`None`).
    pub fn from_config(path: Option<PathBuf>, config: Config) -> Setup {
        Setup { config, path }
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

pub async fn run(setup: Setup, view: Option<Box<dyn View>>) -> Result<(), String> {
    let cfg = setup.config;
    let (ev_tx, mut ev_rx) = mpsc::channel(session::EVENT_QUEUE);
    let (acc_tx, mut acc_rx) = mpsc::channel::<Accepted>(64);
    let mut speaker = Speaker::new(ev_tx);
    if let Some(file) = &cfg.mrt.file {
        speaker.set_mrt(start_mrt(file)?);
        info!(file = %file.display(), "dumping received messages (MRT BGP4MP)");
    }
    let bound = speaker.listen(&cfg.listen, acc_tx)?;
    let (q_tx, mut q_rx) = mpsc::channel::<Query>(16);
    let control = cfg
        .control
        .enabled
        .then(|| (cfg.control.socket.clone(), cfg.control.group.clone()));
    if let Some(addr) = cfg.metrics.listen {
        crate::metrics::serve(addr, q_tx.clone()).await?;
        info!(%addr, "Prometheus metrics on /metrics");
    }
    if let Some((path, group)) = &control {
        let l = control::bind(path, group.as_deref())?;
        tokio::spawn(control::serve(l, q_tx));
    }
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("signals: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("signals: {e}"))?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| format!("signals: {e}"))?;
    let install = cfg.kernel.install;
    info!(
        router_id = %cfg.router_id,
        asn = cfg.local_as,
        listen = ?bound,
        peers = cfg.peers.len(),
        ranges = cfg.ranges.len(),
        install,
        "bgpd started"
    );
    if view.is_some() {
        println!(
            "bgpd: AS {} router id {}, listening on {}{}",
            cfg.local_as,
            cfg.router_id,
            bound
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            if install {
                " (routes go into the kernel)"
            } else {
                " (routes are not installed: --no-install)"
            }
        );
    }
    // The kernel side: its view of links, addresses and routes is loaded
    // before spawn returns, so next hops resolve from the first UPDATE.
    let (fib, mut fib_events, fib_task) = fib::spawn(cfg.kernel.fib_config())
        .await
        .map_err(explain_fib)?;
    // The peers start once the FIB knows whether this is a restart: the
    // kernel held routes of ours, kept by a previous run. Then the OPENs
    // say so (RFC 4724 §3: Restart State, forwarding preserved), and the
    // peers that kept our routes keep them until our End-of-RIB.
    let restarted = fib.adopted() > 0;
    if restarted {
        info!(
            routes = fib.adopted(),
            "restarted with our routes in the kernel: graceful restart (R and F bits) offered to every peer"
        );
    }
    for mut spec in cfg.peer_specs() {
        if restarted {
            session::mark_restarted(&mut spec.fsm.capabilities);
        }
        speaker.add_peer(spec);
    }
    for mut r in cfg.range_specs() {
        if restarted {
            session::mark_restarted(&mut r.template.fsm.capabilities);
        }
        speaker.add_range(r);
    }
    // Listeners are up and the FIB has loaded the kernel's view. systemd
    // hears READY=1 once the initial sync is over (every configured peer's
    // End-of-RIB, or the stale timeout): then the kernel holds the routes.
    notify::notify("STATUS=initial sync: waiting for the peers' End-of-RIB");
    let mut watchdog = notify::watchdog_interval().map(tokio::time::interval);
    // The foreground view prints its rate-limited summaries when called;
    // this tick lets a burst's last summary out without waiting for the
    // next event.
    let mut view_tick = view
        .is_some()
        .then(|| tokio::time::interval(Duration::from_secs(1)));
    let reachability = fib.initial_reachability();
    let connected = reachability.connected();
    let (ctl, first) = Controller::new(cfg, Box::new(reachability), connected, view.is_some());
    let mut d = Daemon {
        ctl,
        speaker,
        fib,
        fib_synced: false,
        fib_failed: 0,
        fib_running: true,
        nexthops_down: Vec::new(),
        view,
        path: setup.path,
    };
    d.perform(first).await;
    // How the loop ends: SIGTERM (systemd, containers) keeps the routes for
    // the next start when `graceful_restart_keep` is set (the default);
    // SIGINT (Ctrl-C) and `bgpd stop --flush` remove them.
    let (remove, stop_reply) = loop {
        let timer = d.ctl.next_timer();
        tokio::select! {
            Some(a) = acc_rx.recv() => d.speaker.accept(a).await,
            Some(ev) = ev_rx.recv() => {
                // Take what the peers have queued (up to the controller's
                // bound) as one batch: the RIB decides each touched prefix
                // once and the FIB gets one change set.
                let mut next = Some(ev);
                while let Some(ev) = next {
                    if let Some(v) = d.view.as_mut() {
                        v.event(&ev);
                    }
                    let actions = d.ctl.handle(Event::Peer(ev), Instant::now());
                    d.perform(actions).await;
                    next = if d.ctl.batch_full() { None } else { ev_rx.try_recv().ok() };
                }
                let actions = d.ctl.handle(Event::EndOfBatch, Instant::now());
                d.perform(actions).await;
            }
            ev = fib_events.recv(), if d.fib_running => match ev {
                None => d.fib_running = false,
                Some(FibEvent::Failed(n)) => d.fib_failed = n,
                Some(FibEvent::NextHopsDown(v)) => d.nexthops_down = v,
                Some(FibEvent::Reachability(r)) => {
                    // Links, addresses or routes changed: connected networks
                    // and next-hop reachability may have too.
                    let connected = r.connected();
                    let ev = Event::Reachability { resolver: Box::new(r), connected };
                    let actions = d.ctl.handle(ev, Instant::now());
                    d.perform(actions).await;
                }
                Some(FibEvent::InitialSyncOver) => {
                    d.fib_synced = true;
                    notify::notify("READY=1\nSTATUS=running: initial sync done");
                }
            },
            _ = sleep_until(timer) => {
                let actions = d.ctl.handle(Event::Timer, Instant::now());
                d.perform(actions).await;
            }
            Some(q) = q_rx.recv() => {
                if let Request::Stop { flush } = q.request {
                    break (flush, Some(q.reply));
                }
                let resp = d.query(&q.request).await;
                let _ = q.reply.send(resp);
            }
            _ = tick(&mut watchdog) => notify::notify("WATCHDOG=1"),
            _ = tick(&mut view_tick) => {
                if let Some(v) = d.view.as_mut() {
                    v.routes(&[]);
                }
            }
            _ = hup.recv() => {
                if let Err(e) = d.reload().await {
                    error!("{e}");
                }
            }
            _ = term.recv() => break (false, None),
            _ = int.recv() => break (true, None),
        }
    };
    notify::notify("STOPPING=1");
    if d.view.is_some() {
        println!("bgpd: shutting down");
    }
    info!(remove_routes = remove, "shutting down");
    // Keeping the routes is a restart: graceful-restart peers keep ours too.
    let keeping = !remove && d.ctl.config().kernel.keeps_routes_at_stop();
    d.speaker.shutdown("bgpd shutting down", keeping).await;
    let keep_secs = d.ctl.config().kernel.graceful_restart_keep.as_secs();
    let report = if remove {
        d.fib.shutdown_removing().await
    } else {
        d.fib.shutdown().await
    };
    let stopped = match report {
        Ok(r) => {
            let k = &d.ctl.config().kernel;
            let s = control::Stopped {
                kept: r.kept,
                removed: r.removed,
                keep_secs,
                protocol: k.protocol,
                table: k.table,
            };
            let line = s.line();
            info!("shutdown: {line}");
            if d.view.is_some() {
                println!("bgpd: {line}");
            }
            Response::ok(s)
        }
        Err(_) => {
            warn!("the kernel task ended early");
            Response::err("bgpd stopped, but its kernel task had ended early (see its log)")
        }
    };
    let Daemon {
        speaker,
        fib,
        mut view,
        ..
    } = d;
    drop((speaker, fib));
    let _ = tokio::time::timeout(Duration::from_secs(10), fib_task).await;
    while let Ok(ev) = ev_rx.try_recv() {
        if let Some(v) = view.as_mut() {
            v.event(&ev);
        }
    }
    if let Some((path, _)) = &control {
        let _ = std::fs::remove_file(path);
    }
    if let Some(reply) = stop_reply {
        // `bgpd stop` hears how it ended; its connection's task writes the
        // answer while the runtime still runs.
        let _ = reply.send(stopped);
        tokio::time::sleep(Duration::from_millis(100)).await;
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

/// What the loop owns: the controller and the parts its actions reach.
struct Daemon {
    ctl: Controller,
    speaker: Speaker,
    fib: FibHandle,
    /// The FIB's initial sync is over (`FibEvent::InitialSyncOver`).
    fib_synced: bool,
    /// Routes the kernel refuses (`FibEvent::Failed`).
    fib_failed: usize,
    /// The FIB task still runs (its event queue is open).
    fib_running: bool,
    /// Next hops that do not answer ARP/ND (`FibEvent::NextHopsDown`).
    nexthops_down: Vec<IpAddr>,
    view: Option<Box<dyn View>>,
    path: Option<PathBuf>,
}

impl Daemon {
    /// Carries out the controller's actions, in order. Returns a reload's
    /// summary.
    async fn perform(&mut self, actions: Vec<Action>) -> Option<String> {
        let mut reloaded = None;
        for a in actions {
            match a {
                Action::Fib(changes) => {
                    if let Some(v) = self.view.as_mut() {
                        v.routes(&changes);
                    }
                    // Waiting while the FIB's queue is full is the
                    // backpressure.
                    if self.ctl.install() && self.fib.apply(changes).await.is_err() {
                        error!("the kernel task has stopped; routes are no longer installed");
                    }
                }
                Action::FibInitialSyncDone => {
                    let _ = self.fib.initial_sync_done().await;
                }
                Action::Fail {
                    peer,
                    notification,
                    restart_after,
                } => {
                    if let Some(h) = self.speaker.peer(&peer) {
                        let _ = h
                            .cmd
                            .send(PeerCommand::Fail {
                                notification,
                                restart_after,
                            })
                            .await;
                    }
                }
                Action::Send(b) => {
                    if let Some(v) = self.view.as_mut() {
                        v.note(&format!(
                            "{} <- sent {} UPDATE{}: +{} / -{} prefixes",
                            b.peer,
                            b.msgs.len(),
                            if b.msgs.len() == 1 { "" } else { "s" },
                            b.announced,
                            b.withdrawn
                        ));
                    }
                    // One burst is in flight per peer (the next waits for
                    // its Ready), so its command queue has room; a peer
                    // task that is gone has nothing to send to.
                    if let Some(h) = self.speaker.peer(&b.peer)
                        && let Err(e) = h.cmd.try_send(PeerCommand::Updates(b.msgs))
                    {
                        warn!(peer = %b.peer, "UPDATEs not handed to the peer task: {e}");
                    }
                }
                Action::RemovePeer(addr) => self.speaker.remove_peer(addr).await,
                Action::AddPeer(spec) => self.speaker.add_peer(*spec),
                Action::SetRanges(r) => self.speaker.set_ranges(r),
                Action::Note(line) => {
                    if let Some(v) = self.view.as_mut() {
                        v.note(&line);
                    }
                }
                Action::Reloaded(summary) => reloaded = Some(summary),
            }
        }
        reloaded
    }

    /// Answers a control request, asking the FIB task first when the
    /// answer needs it.
    async fn query(&mut self, req: &Request) -> Response {
        if *req == Request::Reload {
            return match self.reload().await {
                Ok(summary) => Response::ok(summary),
                Err(e) => Response::err(e),
            };
        }
        let fib = match answer::fib_query(req, &self.ctl) {
            None => None,
            Some(q) => Some(
                match q {
                    FibQuery::Status => self.fib.status().await.map(FibAnswer::Status),
                    FibQuery::Lookup(p) => self.fib.lookup(p).await.map(FibAnswer::Lookup),
                    FibQuery::Reconcile => self.fib.reconcile().await.map(FibAnswer::Reconcile),
                }
                .unwrap_or(FibAnswer::Stopped),
            ),
        };
        let sessions = self.speaker.sessions();
        answer::answer(
            req,
            Sources {
                controller: &self.ctl,
                sessions: &sessions,
                fib,
                fib_synced: self.fib_synced,
                fib_failed: self.fib_failed,
                fib_running: self.fib_running,
                nexthops_down: &self.nexthops_down,
                now: SystemTime::now(),
            },
        )
    }

    /// Re-reads the configuration file and applies what changed. A
    /// configuration that fails validation is refused and the running one
    /// stays.
    async fn reload(&mut self) -> Result<String, String> {
        let Some(path) = self.path.clone() else {
            return Err("reload: bgpd was started without --config; nothing to reload".into());
        };
        notify::reloading();
        // Back to READY=1 after the reload, unless the initial sync is
        // still going (then READY=1 comes when it ends).
        let ready = if self.fib_synced {
            "READY=1\nSTATUS=running: reloaded"
        } else {
            "STATUS=initial sync: waiting for the peers' End-of-RIB (reloaded)"
        };
        let new = match config::load(&path) {
            Ok(c) => c,
            Err(errors) => {
                notify::notify(ready);
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
        let actions = self
            .ctl
            .handle(Event::Reload(Box::new(new)), Instant::now());
        let summary = self.perform(actions).await;
        notify::notify(ready);
        Ok(summary.unwrap_or_else(|| "reloaded".into()))
    }
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
