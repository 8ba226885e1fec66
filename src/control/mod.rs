//! The control socket: a unix stream socket carrying one JSON request per
//! line and one JSON response per line. The daemon answers; `bgpd show`,
//! `bgpd reload` and `bgpd health` are the clients.
//!
//! The socket is created mode 0660 in a directory of mode 0750, so only
//! root and the configured group can talk to it. What the answers say is
//! [`answer`]'s business.

pub mod answer;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot};

/// What a client asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case")]
pub enum Request {
    /// The neighbour table.
    Neighbors,
    /// The Loc-RIB, or one prefix of it.
    Routes { prefix: Option<String> },
    /// Longest-prefix match for an address: which route carries it.
    Route { address: String },
    /// What an established peer has been sent (its Adj-RIB-Out).
    Advertised { peer: String },
    /// What a peer has sent us, per path (its Adj-RIB-In).
    Received { peer: String },
    /// What is installed in the kernel, pending or failed.
    Fib,
    /// Compare the kernel with the RIB now and repair drift.
    Reconcile,
    /// Re-read the configuration.
    Reload,
    /// Liveness: are we up, and are the peers?
    Health,
    /// A Prometheus text snapshot (for the metrics endpoint).
    Metrics,
    /// Stop the daemon: as on SIGTERM (routes kept for the next start,
    /// with `graceful_restart_keep`), or with `flush` as on SIGINT (routes
    /// removed). Answered once the kernel side is done.
    Stop { flush: bool },
}

/// What `Request::Stop` did to the kernel.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stopped {
    /// Routes left in the kernel for the next start.
    pub kept: usize,
    /// Routes removed.
    pub removed: usize,
    /// How long the next start waits for the peers to learn the kept
    /// routes again, in seconds (`graceful_restart_keep`).
    pub keep_secs: u64,
    /// The kernel protocol and table of bgpd's routes.
    pub protocol: u8,
    pub table: u32,
}

impl Stopped {
    /// What the stop did to the kernel, in words (`bgpd stop`, the
    /// foreground view, the log).
    pub fn line(&self) -> String {
        if self.kept > 0 {
            format!(
                "{} routes left in the kernel for the next start, which keeps them up to {} s \
                 while the peers send them again; if bgpd is not coming back, remove them with \
                 `ip nexthop flush protocol {}; ip route flush proto {} table {}` (or stop with \
                 Ctrl-C or `bgpd stop --flush`)",
                self.kept, self.keep_secs, self.protocol, self.protocol, self.table
            )
        } else {
            format!("{} routes removed from the kernel", self.removed)
        }
    }
}

/// The daemon's answer: `ok` with a JSON value, or an error line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
}

impl Response {
    pub fn ok(data: impl Serialize) -> Response {
        Response {
            ok: true,
            error: None,
            data: serde_json::to_value(data).unwrap_or(serde_json::Value::Null),
        }
    }
    pub fn err(e: impl Into<String>) -> Response {
        Response {
            ok: false,
            error: Some(e.into()),
            data: serde_json::Value::Null,
        }
    }
}

/// A request with the way back to its client.
pub struct Query {
    pub request: Request,
    pub reply: oneshot::Sender<Response>,
}

/// Largest request line accepted.
const MAX_REQUEST: usize = 64 * 1024;

/// Binds the control socket: creates its directory (0750), removes a stale
/// socket, binds, and sets mode 0660 and the group.
pub fn bind(path: &Path, group: Option<&str>) -> Result<UnixListener, String> {
    let fix = "choose another path with [control] socket, or run as root";
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}; {fix}", dir.display()))?;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750));
        if let Some(g) = group {
            chown_group(dir, g)?;
        }
    }
    if path.exists() {
        // A live daemon answers; a stale socket does not.
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "{} is in use: another bgpd is running; stop it or choose another [control] socket",
                path.display()
            ));
        }
        let _ = std::fs::remove_file(path);
    }
    let l = UnixListener::bind(path).map_err(|e| {
        format!(
            "cannot create the control socket {}: {e}; {fix}",
            path.display()
        )
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("cannot set permissions on {}: {e}", path.display()))?;
    if let Some(g) = group {
        chown_group(path, g)?;
    }
    Ok(l)
}

fn chown_group(path: &Path, group: &str) -> Result<(), String> {
    let gid = group_id(group).ok_or_else(|| {
        format!("control socket group '{group}' does not exist; create it (groupadd {group}) or change [control] group")
    })?;
    std::os::unix::fs::chown(path, None, Some(gid))
        .map_err(|e| format!("cannot give {} to group {group}: {e}", path.display()))
}

/// Looks a group up in /etc/group.
fn group_id(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then(|| f.nth(1)?.parse().ok())?
    })
}

/// Serves clients: each request line becomes a [`Query`] for the daemon.
pub async fn serve(listener: UnixListener, queries: mpsc::Sender<Query>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let queries = queries.clone();
        tokio::spawn(async move {
            let (r, mut w) = stream.into_split();
            let mut lines = tokio::io::BufReader::new(r).lines();
            // A bounded read: a client cannot make us buffer without end.
            while let Ok(Ok(Some(line))) =
                tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await
            {
                let resp = if line.len() > MAX_REQUEST {
                    Response::err("request too long")
                } else {
                    match serde_json::from_str::<Request>(&line) {
                        Ok(request) => {
                            let (tx, rx) = oneshot::channel();
                            if queries.send(Query { request, reply: tx }).await.is_err() {
                                return;
                            }
                            rx.await
                                .unwrap_or_else(|_| Response::err("bgpd is stopping"))
                        }
                        Err(e) => Response::err(format!("bad request: {e}")),
                    }
                };
                let mut text = serde_json::to_string(&resp).unwrap_or_default();
                text.push('\n');
                if w.write_all(text.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// The default socket of the daemon.
pub fn default_socket() -> PathBuf {
    PathBuf::from("/run/bgpd/bgpd.sock")
}

/// Sends one request and waits for the answer (the client side).
pub fn call(path: &Path, request: &Request) -> Result<Response, String> {
    call_within(path, request, Duration::from_secs(30))
}

/// [`call`] that gives up after `timeout` without an answer (`bgpd track`:
/// a daemon that does not answer is not healthy).
pub fn call_within(path: &Path, request: &Request, timeout: Duration) -> Result<Response, String> {
    let mut s = std::os::unix::net::UnixStream::connect(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => format!(
            "bgpd is not running (no control socket at {}); start it, or give --socket PATH",
            path.display()
        ),
        std::io::ErrorKind::PermissionDenied => format!(
            "permission denied on {}: run as root or as a member of the bgpd group",
            path.display()
        ),
        _ => format!("cannot connect to {}: {e}", path.display()),
    })?;
    s.set_read_timeout(Some(timeout)).ok();
    s.set_write_timeout(Some(timeout)).ok();
    let mut line = serde_json::to_string(request).map_err(|e| e.to_string())?;
    line.push('\n');
    s.write_all(line.as_bytes())
        .map_err(|e| format!("cannot send to bgpd: {e}"))?;
    let mut answer = String::new();
    BufReader::new(&s)
        .read_line(&mut answer)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => format!(
                "bgpd did not answer on {} within {} ms: it is stuck or overloaded (see its log)",
                path.display(),
                timeout.as_millis()
            ),
            _ => format!("no answer from bgpd: {e}"),
        })?;
    serde_json::from_str(&answer).map_err(|e| format!("bad answer from bgpd: {e}"))
}

/// One row of `bgpd show neighbors`: what `calicoctl node status` prints,
/// plus prefix counts.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NeighborRow {
    pub address: String,
    /// "ibgp", "ebgp", or "dynamic ibgp" and so on.
    #[serde(rename = "type")]
    pub kind: String,
    /// "up" when Established, "start" otherwise, "down" when disabled.
    pub state: String,
    /// Local time of the last state change, HH:MM:SS.
    pub since: String,
    pub since_unix: u64,
    /// The FSM state, and the last error when not Established.
    pub info: String,
    pub description: String,
    pub remote_as: Option<u32>,
    pub router_id: Option<String>,
    pub received: u64,
    pub accepted: u64,
    pub installed: u64,
    /// Prefixes the peer has been sent (and not withdrawn).
    #[serde(default)]
    pub sent: u64,
    /// Changes waiting for the peer to take them.
    #[serde(default)]
    pub out_pending: u64,
}

/// Health: whether the daemon runs, how many sessions are up and how many
/// paths the RIB holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Health {
    pub peers: usize,
    pub established: usize,
    pub fib_synced: bool,
    /// Paths accepted from every peer.
    #[serde(default)]
    pub paths: u64,
    /// Routes the kernel refused (`bgpd show fib` lists them).
    #[serde(default)]
    pub fib_failed: u64,
    /// Whether the kernel task runs (false once it has stopped).
    #[serde(default = "yes")]
    pub fib_running: bool,
}

fn yes() -> bool {
    true
}
