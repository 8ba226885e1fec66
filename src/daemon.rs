//! The daemon's main loop, shared by `bgpd --config FILE` and the
//! `bgpd --peer ...` foreground view: listeners, peers, the control socket,
//! signals (SIGTERM/SIGINT stop, SIGHUP reloads) and systemd notification.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use crate::config::{self, Config};
use crate::control::{self, Query, Request, Response};
use crate::notify;
use crate::session::{self, Accepted, PeerEvent, PeerSpec, RangeSpec, Speaker};

/// Everything the daemon starts with.
pub struct Setup {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    pub peers: Vec<PeerSpec>,
    pub ranges: Vec<RangeSpec>,
    pub listen: Vec<SocketAddr>,
    /// The control socket and the group that may use it.
    pub control: Option<(PathBuf, Option<String>)>,
    /// The configuration file, for SIGHUP and `bgpd reload`.
    pub config: Option<(PathBuf, Config)>,
    pub install: bool,
}

impl Setup {
    /// The daemon's setup from a validated configuration file.
    pub fn from_config(path: PathBuf, cfg: Config) -> Setup {
        Setup {
            local_as: cfg.local_as,
            router_id: cfg.router_id,
            peers: cfg.peer_specs(),
            ranges: cfg.range_specs(),
            listen: cfg.listen.clone(),
            control: Some((cfg.control.socket.clone(), cfg.control.group.clone())),
            install: cfg.kernel.install,
            config: Some((path, cfg)),
        }
    }
}

/// Called with every peer event, for the foreground view.
pub type View = fn(&PeerEvent);

pub async fn run(setup: Setup, view: Option<View>) -> Result<(), String> {
    let (ev_tx, mut ev_rx) = mpsc::channel(session::EVENT_QUEUE);
    let (acc_tx, mut acc_rx) = mpsc::channel::<Accepted>(64);
    let mut speaker = Speaker::new(ev_tx);
    for spec in setup.peers.iter().cloned() {
        speaker.add_peer(spec);
    }
    for r in setup.ranges.iter().cloned() {
        speaker.add_range(r);
    }
    let bound = speaker.listen(&setup.listen, acc_tx)?;
    let (q_tx, mut q_rx) = mpsc::channel::<Query>(16);
    if let Some((path, group)) = &setup.control {
        let l = control::bind(path, group.as_deref())?;
        tokio::spawn(control::serve(l, q_tx));
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
        install = setup.install,
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
            if setup.install {
                " (kernel install is not implemented yet: routes are only shown)"
            } else {
                " (routes are not installed: --no-install)"
            }
        );
    }
    // Listeners are up; the FIB has nothing to sync yet.
    notify::notify("READY=1\nSTATUS=listening");
    let mut watchdog = notify::watchdog_interval().map(tokio::time::interval);
    let mut state = State {
        speaker,
        local_as: setup.local_as,
        config: setup.config,
    };
    loop {
        tokio::select! {
            Some(a) = acc_rx.recv() => state.speaker.accept(a).await,
            Some(ev) = ev_rx.recv() => {
                if let Some(v) = view {
                    v(&ev);
                }
            }
            Some(q) = q_rx.recv() => {
                let resp = state.answer(&q.request).await;
                let _ = q.reply.send(resp);
            }
            _ = tick(&mut watchdog) => notify::notify("WATCHDOG=1"),
            _ = hup.recv() => {
                if let Err(e) = state.reload().await {
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
    while let Ok(ev) = ev_rx.try_recv() {
        if let Some(v) = view {
            v(&ev);
        }
    }
    if let Some((path, _)) = &setup.control {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
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
    config: Option<(PathBuf, Config)>,
}

impl State {
    async fn answer(&mut self, req: &Request) -> Response {
        match req {
            Request::Neighbors => Response::ok(self.speaker.neighbor_rows(self.local_as)),
            Request::Health => {
                let rows = self.speaker.neighbor_rows(self.local_as);
                Response::ok(control::Health {
                    peers: rows.len(),
                    established: rows.iter().filter(|r| r.state == "up").count(),
                    fib_synced: true,
                })
            }
            Request::Reload => match self.reload().await {
                Ok(summary) => Response::ok(summary),
                Err(e) => Response::err(e),
            },
            other => Response::err(format!("{other:?} is not available in this version yet")),
        }
    }

    /// Re-reads the configuration and applies what changed: peers added,
    /// removed or changed are started, stopped or restarted; the others
    /// are not touched. A configuration that fails validation is refused
    /// and the running one stays.
    async fn reload(&mut self) -> Result<String, String> {
        let Some((path, old)) = &self.config else {
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
        if !d.ranges_added.is_empty() || !d.ranges_removed.is_empty() || !d.ranges_changed.is_empty()
        {
            self.speaker.set_ranges(new.range_specs());
            done.push("ranges updated".into());
        }
        for what in &d.restart_required {
            warn!("reload: {what} changes only take effect after a restart");
        }
        self.local_as = new.local_as;
        self.config = Some((path, new));
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
