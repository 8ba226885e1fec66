//! `bgpd --peer ADDR ...`: the foreground debugging view. No config file;
//! sessions and received routes are shown as they change.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use ipnet::IpNet;

use crate::daemon;
use crate::route::RouteChange;
use crate::session::{self, PeerEvent, RangeSpec};
use crate::wire::{Attr, Update, iana::attr};

/// One `--peer` argument:
/// `ADDR[,as=N][,passive][,password=SECRET][,ttl-security][,port=N][,source=ADDR][,interface=IF]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerArg {
    pub addr: IpAddr,
    pub remote_as: Option<u32>,
    pub passive: bool,
    pub password: Option<String>,
    pub ttl_security: bool,
    pub port: Option<u16>,
    pub source: Option<IpAddr>,
    pub interface: Option<String>,
}

const PEER_SYNTAX: &str =
    "ADDR[,as=N][,passive][,password=SECRET][,ttl-security][,port=N][,source=ADDR][,interface=IF]";

impl std::str::FromStr for PeerArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.split(',');
        let addr_s = parts.next().unwrap_or_default();
        let addr: IpAddr = addr_s
            .parse()
            .map_err(|_| format!("'{addr_s}' is not an IP address (expected {PEER_SYNTAX})"))?;
        let mut p = PeerArg {
            addr,
            remote_as: None,
            passive: false,
            password: None,
            ttl_security: false,
            port: None,
            source: None,
            interface: None,
        };
        for opt in parts {
            match opt.split_once('=') {
                Some(("as", v)) => {
                    p.remote_as = Some(v.parse().map_err(|_| format!("as={v}: not an AS number"))?)
                }
                Some(("password", v)) => p.password = Some(v.to_string()),
                Some(("port", v)) => {
                    p.port = Some(v.parse().map_err(|_| format!("port={v}: not a port"))?)
                }
                Some(("source", v)) => {
                    p.source = Some(
                        v.parse()
                            .map_err(|_| format!("source={v}: not an IP address"))?,
                    )
                }
                Some(("interface", v)) => p.interface = Some(v.to_string()),
                None if opt == "passive" => p.passive = true,
                None if opt == "ttl-security" => p.ttl_security = true,
                _ => {
                    return Err(format!(
                        "unknown peer option '{opt}' (expected {PEER_SYNTAX})"
                    ));
                }
            }
        }
        Ok(p)
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub peers: Vec<PeerArg>,
    pub asn: u32,
    pub router_id: Option<Ipv4Addr>,
    pub listen_ranges: Vec<IpNet>,
    pub listen: Vec<SocketAddr>,
    pub hold_time: u16,
    pub no_install: bool,
    /// Serve `bgpd show` on this unix socket.
    pub control_socket: Option<std::path::PathBuf>,
}

pub async fn run(opts: Options) -> Result<(), String> {
    if opts.peers.is_empty() && opts.listen_ranges.is_empty() {
        return Err("nothing to do: give at least one --peer ADDR or --listen-range PREFIX".into());
    }
    if opts.hold_time == 1 || opts.hold_time == 2 {
        return Err(format!(
            "--hold-time {}: must be 0 or at least 3 seconds (RFC 4271 §4.2)",
            opts.hold_time
        ));
    }
    let addrs: Vec<IpAddr> = opts.peers.iter().map(|p| p.addr).collect();
    let Some(router_id) = opts.router_id.or_else(|| daemon::infer_router_id(&addrs)) else {
        return Err(
            "cannot pick a router id: no IPv4 route towards any peer; give --router-id A.B.C.D"
                .into(),
        );
    };
    let mk = |addr: IpAddr, remote_as: Option<u32>| {
        let mut spec = session::peer_spec(addr, opts.asn, router_id, remote_as);
        spec.fsm.hold_time = opts.hold_time;
        spec
    };
    let mut peers = Vec::new();
    for p in &opts.peers {
        let mut spec = mk(p.addr, Some(p.remote_as.unwrap_or(opts.asn)));
        spec.fsm.passive = p.passive;
        spec.transport.password = p.password.clone();
        spec.transport.ttl_security = p.ttl_security;
        spec.transport.source = p.source;
        spec.transport.interface = p.interface.clone();
        if let Some(pw) = &p.password
            && pw.len() > session::socket::MAX_MD5_KEY
        {
            return Err(format!(
                "--peer {}: the password is {} characters; TCP-MD5 allows at most 80",
                p.addr,
                pw.len()
            ));
        }
        if let Some(port) = p.port {
            spec.port = port;
        }
        peers.push(spec);
    }
    let ranges = opts
        .listen_ranges
        .iter()
        .map(|r| RangeSpec {
            prefix: *r,
            // Dynamic neighbours are in our AS (iBGP), as with Calico nodes.
            template: mk(r.addr(), Some(opts.asn)),
            limit: 1000,
        })
        .collect();
    let setup = daemon::Setup {
        local_as: opts.asn,
        router_id,
        peers,
        ranges,
        listen: opts.listen.clone(),
        control: opts.control_socket.clone().map(|p| (p, None)),
        config: None,
        rib: crate::rib::RibConfig::new(opts.asn, router_id),
        // The protective defaults: no default route, martians or
        // connected networks; everything else is accepted.
        policy: crate::rib::Policy::default(),
        restart_after: Default::default(),
        // Into the main table (issue 5), unless --no-install.
        fib: crate::fib::FibConfig {
            install: !opts.no_install,
            ..Default::default()
        },
    };
    daemon::run(setup, Some(Box::new(Foreground))).await
}

/// The foreground view: sessions, received routes and the Loc-RIB as it
/// changes, on stdout.
struct Foreground;

impl daemon::View for Foreground {
    fn event(&mut self, ev: &PeerEvent) {
        show(ev);
    }

    fn routes(&mut self, changes: &[RouteChange]) {
        let t = now();
        let mut out = std::io::stdout().lock();
        for c in changes {
            let _ = if c.is_withdraw() {
                writeln!(out, "{t} route {} withdrawn", c.prefix)
            } else {
                let nhs: Vec<String> = c.next_hops.iter().map(|n| n.to_string()).collect();
                let ecmp = if nhs.len() > 1 {
                    format!(" (ECMP {})", nhs.len())
                } else {
                    String::new()
                };
                writeln!(out, "{t} route {} via {}{ecmp}", c.prefix, nhs.join(" "))
            };
        }
    }

    fn note(&mut self, line: &str) {
        println!("{} {line}", now());
    }
}

fn now() -> String {
    session::hms(std::time::SystemTime::now())
}

/// Prints one event of the foreground view.
fn show(ev: &PeerEvent) {
    let mut out = std::io::stdout().lock();
    let _ = match ev {
        PeerEvent::State { peer, from, to } => {
            writeln!(out, "{} {peer:<15} {from} -> {to}", now())
        }
        PeerEvent::Up {
            peer,
            negotiated: n,
        } => writeln!(
            out,
            "{} {peer:<15} Established: AS {} id {} hold {}s{}{}",
            now(),
            n.remote_as,
            n.remote_id,
            n.hold_time,
            if n.ctx.add_path_rx.is_empty() {
                String::new()
            } else {
                format!(
                    ", add-path receive {}",
                    n.ctx
                        .add_path_rx
                        .iter()
                        .map(|f| f.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            },
            if n.peer_graceful_restart.is_some() {
                ", graceful restart"
            } else {
                ""
            }
        ),
        PeerEvent::Down { peer, reason } => {
            writeln!(out, "{} {peer:<15} down: {reason}", now())
        }
        PeerEvent::Update { peer, update } => show_update(&mut out, *peer, update),
        PeerEvent::RouteRefresh { peer, refresh } => {
            writeln!(out, "{} {peer:<15} {refresh}", now())
        }
    };
}

fn show_update(out: &mut impl Write, peer: IpAddr, u: &Update) -> std::io::Result<()> {
    let t = now();
    if let Some(af) = u.as_end_of_rib() {
        return writeln!(out, "{t} {peer:<15} End-of-RIB {af}");
    }
    tracing::info!(
        peer = %peer,
        announced = u.announced().count(),
        withdrawn = u.withdrawn_all().count(),
        errors = u.errors.len(),
        "UPDATE"
    );
    let nh = u
        .mp_reach()
        .map(|m| m.next_hop.to_string())
        .or_else(|| match u.attr(attr::NEXT_HOP) {
            Some(Attr::NextHop(a)) => Some(a.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "-".into());
    let mut attrs = Vec::new();
    if let Some(Attr::AsPath(p)) = u.attr(attr::AS_PATH) {
        attrs.push(format!("path {p}"));
    }
    if let Some(Attr::LocalPref(l)) = u.attr(attr::LOCAL_PREF) {
        attrs.push(format!("local-pref {l}"));
    }
    if let Some(Attr::OriginatorId(o)) = u.attr(attr::ORIGINATOR_ID) {
        attrs.push(format!("originator {o}"));
    }
    if let Some(Attr::ClusterList(c)) = u.attr(attr::CLUSTER_LIST) {
        let c: Vec<String> = c.iter().map(|a| a.to_string()).collect();
        attrs.push(format!("cluster-list {}", c.join(" ")));
    }
    let taw = u.treat_as_withdraw();
    for e in &u.errors {
        writeln!(out, "{t} {peer:<15} ! {e}")?;
    }
    for n in u.announced() {
        if taw {
            writeln!(out, "{t} {peer:<15} - {n} (treat-as-withdraw)")?;
        } else {
            writeln!(out, "{t} {peer:<15} + {n} via {nh} [{}]", attrs.join(", "))?;
        }
    }
    for n in u.withdrawn_all() {
        writeln!(out, "{t} {peer:<15} - {n}")?;
    }
    Ok(())
}
