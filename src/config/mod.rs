//! The configuration file (TOML): typed settings, validation with one
//! `FILE:LINE:COL: what is wrong; how to fix it` line per error, the
//! conversion into the runtime pieces ([`PeerSpec`], [`RangeSpec`], and
//! plain settings for the RIB and the FIB), and the difference between two
//! configurations for a reload.
//!
//! Every key is documented in docs/configuration.md.

mod flags;
mod parse;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Serialize;

use crate::fib::FibConfig;
use crate::rib::{PeerPolicy, Policy};
use crate::session::{self, PeerSpec, RangeSpec, TransportOptions};
use crate::units::ser_duration;
use crate::wire::open::AddPathFamily;
use crate::wire::{AfiSafi, Capability};

pub use crate::fib::{DEFAULT_METRIC, RT_TABLE_MAIN as TABLE_MAIN, RTPROT_BGP as DEFAULT_PROTOCOL};
pub use crate::fsm::DEFAULT_HOLD_TIME;
pub use crate::rib::DEFAULT_MULTIPATH;
pub use crate::rib::export::{Actions, ExportPolicy, NextHopAction};
pub use crate::rib::policy::{ImportPolicy, MaxPrefix, PrefixMatch};
pub use crate::session::{BGP_PORT, DEFAULT_RESTART_TIME};
pub use crate::units::format_duration;
/// Default peer limit of a dynamic range.
pub const DEFAULT_RANGE_LIMIT: u32 = 1000;
/// Default max-prefix warning threshold, percent.
pub const DEFAULT_WARNING_PERCENT: u8 = 75;
/// Default control socket.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/bgpd/bgpd.sock";
/// Linux accepts TCP-MD5 keys of at most this many bytes.
pub const MAX_PASSWORD: usize = session::socket::MAX_MD5_KEY;

pub use flags::{Flags, PeerArg, RangeArg};
pub use parse::{load, parse};

/// One configuration error. `Display` gives the one-line form
/// `FILE:LINE:COL: what is wrong; how to fix it`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when the error is about no place in the file (it could
    /// not be read).
    pub line: usize,
    /// 1-based, in characters.
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.col, self.message
            )
        }
    }
}

/// Every error found in a file, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn iter(&self) -> impl Iterator<Item = &ConfigError> {
        self.0.iter()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// An address family bgpd carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Family {
    #[serde(rename = "ipv4-unicast")]
    Ipv4Unicast,
    #[serde(rename = "ipv6-unicast")]
    Ipv6Unicast,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::Ipv4Unicast, Family::Ipv6Unicast];

    pub fn name(self) -> &'static str {
        match self {
            Family::Ipv4Unicast => "ipv4-unicast",
            Family::Ipv6Unicast => "ipv6-unicast",
        }
    }

    pub fn from_name(s: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == s)
    }

    pub fn afi_safi(self) -> AfiSafi {
        match self {
            Family::Ipv4Unicast => AfiSafi::IPV4_UNICAST,
            Family::Ipv6Unicast => AfiSafi::IPV6_UNICAST,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A capability a peer must offer (else the session fails with 2/7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequiredCapability {
    Ipv4Unicast,
    Ipv6Unicast,
    RouteRefresh,
    EnhancedRouteRefresh,
    GracefulRestart,
    FourOctetAs,
    AddPath,
}

impl RequiredCapability {
    pub const ALL: [RequiredCapability; 7] = [
        RequiredCapability::Ipv4Unicast,
        RequiredCapability::Ipv6Unicast,
        RequiredCapability::RouteRefresh,
        RequiredCapability::EnhancedRouteRefresh,
        RequiredCapability::GracefulRestart,
        RequiredCapability::FourOctetAs,
        RequiredCapability::AddPath,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RequiredCapability::Ipv4Unicast => "ipv4-unicast",
            RequiredCapability::Ipv6Unicast => "ipv6-unicast",
            RequiredCapability::RouteRefresh => "route-refresh",
            RequiredCapability::EnhancedRouteRefresh => "enhanced-route-refresh",
            RequiredCapability::GracefulRestart => "graceful-restart",
            RequiredCapability::FourOctetAs => "four-octet-as",
            RequiredCapability::AddPath => "add-path",
        }
    }

    pub fn from_name(s: &str) -> Option<RequiredCapability> {
        RequiredCapability::ALL.into_iter().find(|c| c.name() == s)
    }

    /// The capability the FSM checks for (it compares codes, and the
    /// family of multiprotocol capabilities).
    pub fn capability(self) -> Capability {
        match self {
            RequiredCapability::Ipv4Unicast => Capability::Multiprotocol {
                afi_safi: AfiSafi::IPV4_UNICAST,
            },
            RequiredCapability::Ipv6Unicast => Capability::Multiprotocol {
                afi_safi: AfiSafi::IPV6_UNICAST,
            },
            RequiredCapability::RouteRefresh => Capability::RouteRefresh,
            RequiredCapability::EnhancedRouteRefresh => Capability::EnhancedRouteRefresh,
            RequiredCapability::GracefulRestart => {
                Capability::GracefulRestart(crate::wire::open::GracefulRestart {
                    flags: 0,
                    restart_time: 0,
                    families: vec![],
                })
            }
            RequiredCapability::FourOctetAs => Capability::FourOctetAs { asn: 0 },
            RequiredCapability::AddPath => Capability::AddPath { families: vec![] },
        }
    }
}

/// What configured peers and dynamic ranges have in common: the session
/// template. A `[[peer]]` adds its address, port and connection settings;
/// a `[[range]]` its prefix and neighbour limit. The runtime uses the same
/// shape ([`Config::session_spec`], and a range's `PeerSpec` template).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionConfig {
    pub remote_as: u32,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    pub ttl_security: bool,
    pub hold_time: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<u16>,
    pub families: Vec<Family>,
    /// Families in which the peer may send several paths per prefix.
    pub add_path: Vec<Family>,
    pub required: Vec<RequiredCapability>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_prefix: Option<MaxPrefix>,
    /// `None`: the global `[import]` applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportPolicy>,
    /// A route-reflector client of ours (RFC 4456): iBGP routes are
    /// reflected to it, and its routes to every iBGP peer.
    pub rr_client: bool,
    /// Routes sent to it carry our address as next hop.
    pub next_hop_self: bool,
    /// It is sent a default route (0.0.0.0/0, and ::/0 on IPv6 sessions).
    pub default_originate: bool,
    /// `None`: the global `[export]`, if any; without one, everything the
    /// rules allow to iBGP peers and nothing to eBGP peers (RFC 8212).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportPolicy>,
}

impl SessionConfig {
    /// The template a peer or range starts from: iBGP, both families with
    /// ADD-PATH receive, the global timers.
    pub fn new(remote_as: u32, hold_time: u16, keepalive: Option<u16>) -> Self {
        SessionConfig {
            remote_as,
            description: String::new(),
            password: None,
            ttl_security: false,
            hold_time,
            keepalive,
            families: Family::ALL.to_vec(),
            add_path: Family::ALL.to_vec(),
            required: Vec::new(),
            max_prefix: None,
            import: None,
            rr_client: false,
            next_hop_self: false,
            default_originate: false,
            export: None,
        }
    }

    /// What the RIB keeps of it.
    pub fn policy(&self) -> PeerPolicy {
        PeerPolicy {
            import: self.import.clone(),
            max_prefix: self.max_prefix,
        }
    }

    /// The template without its policy and description: what a session
    /// depends on.
    fn session_part(&self) -> SessionConfig {
        SessionConfig {
            max_prefix: None,
            import: None,
            export: None,
            next_hop_self: false,
            default_originate: false,
            description: String::new(),
            ..self.clone()
        }
    }
}

/// One `[[peer]]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerConfig {
    pub address: IpAddr,
    pub port: u16,
    pub passive: bool,
    #[serde(serialize_with = "ser_duration")]
    pub connect_retry: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub idle_hold: Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    #[serde(flatten)]
    pub session: SessionConfig,
}

/// One `[[range]]`: dynamic neighbours (Cisco `bgp listen range`, BIRD 2
/// `neighbor range`). They are passive: a neighbour connects to us.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RangeConfig {
    pub prefix: IpNet,
    pub limit: u32,
    #[serde(flatten)]
    pub session: SessionConfig,
}

/// One `[[network]]`: a prefix this router announces (Cisco `network`,
/// BIRD a static route exported).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NetworkConfig {
    pub prefix: IpNet,
}

/// `[kernel]`: what the FIB does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KernelSettings {
    pub install: bool,
    /// Table number; 254 is `main`.
    pub table: u32,
    pub protocol: u8,
    pub metric: u32,
    /// Zero: routes are removed at every shutdown. Else (120 s by default)
    /// they stay in the kernel when bgpd stops on SIGTERM, and the next
    /// start waits up to this long for the RIB to learn them again,
    /// deferring every change to them until then (RFC 4724 §4.1). SIGINT
    /// and `bgpd stop --flush` remove them whatever this says.
    #[serde(serialize_with = "ser_duration")]
    pub graceful_restart_keep: Duration,
    /// Zero disables the periodic check of the kernel against the RIB.
    #[serde(serialize_with = "ser_duration")]
    pub reconcile_interval: Duration,
    pub resolve_via_default: bool,
    /// How often each on-link next hop in use is probed through the
    /// kernel's neighbour table (ARP/ND), in milliseconds; one that misses
    /// two probes leaves every route until it answers again. 0: off.
    pub nexthop_probe_ms: u32,
    /// Routes point at kernel nexthop objects and groups shared by every
    /// route with the same hops (Linux >= 5.3), so losing a next hop is
    /// one kernel operation; plain routes when off or unsupported.
    pub nexthop_objects: bool,
}

/// A log filter (`[log] level`, `BGPD_LOG`): levels and `target=level`
/// directives only, targets being Rust paths. `None` for anything else,
/// which is checked here before tracing-subscriber sees it: its parser
/// panics on some non-ASCII targets (a byte index inside a character).
pub fn log_filter(s: &str) -> Option<tracing_subscriber::EnvFilter> {
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let level_ok = |l: &str| LEVELS.contains(&l.trim().to_ascii_lowercase().as_str());
    let target_ok = |t: &str| {
        let t = t.trim();
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let ok = !s.trim().is_empty()
        && s.split(',').all(|d| match d.split_once('=') {
            Some((target, l)) => target_ok(target) && level_ok(l),
            None => level_ok(d),
        });
    if !ok {
        return None;
    }
    tracing_subscriber::EnvFilter::builder().parse(s).ok()
}

/// `[kernel] graceful_restart_keep` by default: as long as the
/// graceful-restart time bgpd offers its peers.
pub const DEFAULT_KEEP: Duration = Duration::from_secs(DEFAULT_RESTART_TIME as u64);

impl Default for KernelSettings {
    fn default() -> Self {
        KernelSettings {
            install: true,
            table: TABLE_MAIN,
            protocol: DEFAULT_PROTOCOL,
            metric: DEFAULT_METRIC,
            graceful_restart_keep: DEFAULT_KEEP,
            reconcile_interval: Duration::from_secs(60),
            resolve_via_default: false,
            nexthop_probe_ms: 500,
            nexthop_objects: true,
        }
    }
}

/// `[control]`: the unix socket of `bgpd show` / `bgpctl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ControlSettings {
    /// `false`: no control socket (`bgpd show`, `health` and `reload` have
    /// nothing to ask). The foreground mode without `--control-socket`.
    pub enabled: bool,
    pub socket: PathBuf,
    /// Group allowed to use the socket (mode 0660); `None`: root only (0600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Default for ControlSettings {
    fn default() -> Self {
        ControlSettings {
            enabled: true,
            socket: PathBuf::from(DEFAULT_CONTROL_SOCKET),
            group: None,
        }
    }
}

/// `[metrics]`: the Prometheus endpoint, off unless `listen` is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MetricsSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

/// `[mrt]`: the MRT dump of received messages, off unless `file` is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MrtSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

/// `[log]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogSettings {
    /// A level (`error` ... `trace`) or a tracing filter (`info,bgpd::fib=debug`).
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: "info".into(),
        }
    }
}

/// The whole configuration, validated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Config {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    pub listen: Vec<SocketAddr>,
    pub hold_time: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<u16>,
    pub graceful_restart_time: u16,
    pub multipath: usize,
    /// RFC 4456 CLUSTER_ID; `None`: the router id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<Ipv4Addr>,
    pub import: ImportPolicy,
    /// The global export policy, for peers without their own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportPolicy>,
    #[serde(rename = "network")]
    pub networks: Vec<NetworkConfig>,
    #[serde(rename = "peer")]
    pub peers: Vec<PeerConfig>,
    #[serde(rename = "range")]
    pub ranges: Vec<RangeConfig>,
    pub kernel: KernelSettings,
    pub control: ControlSettings,
    pub metrics: MetricsSettings,
    pub mrt: MrtSettings,
    pub log: LogSettings,
}

/// The listeners when `listen` is not given.
pub fn default_listen() -> Vec<SocketAddr> {
    vec![
        SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), BGP_PORT),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), BGP_PORT),
    ]
}

impl Config {
    /// A configuration with every default and no peers: what an empty
    /// file with just `local_as` and `router_id` gives.
    pub fn new(local_as: u32, router_id: Ipv4Addr) -> Config {
        Config {
            local_as,
            router_id,
            listen: default_listen(),
            hold_time: DEFAULT_HOLD_TIME,
            keepalive: None,
            graceful_restart_time: DEFAULT_RESTART_TIME,
            multipath: DEFAULT_MULTIPATH,
            cluster_id: None,
            import: ImportPolicy::default(),
            export: None,
            networks: Vec::new(),
            peers: Vec::new(),
            ranges: Vec::new(),
            kernel: KernelSettings::default(),
            control: ControlSettings::default(),
            metrics: MetricsSettings::default(),
            mrt: MrtSettings::default(),
            log: LogSettings::default(),
        }
    }

    /// The configuration as TOML; [`parse`] reads it back to an equal
    /// `Config`.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a Config always serializes")
    }

    pub fn peer(&self, addr: IpAddr) -> Option<&PeerConfig> {
        self.peers.iter().find(|p| p.address == addr)
    }

    /// The range a dynamic neighbour at `addr` belongs to (ranges are
    /// disjoint, so there is at most one).
    pub fn range_of(&self, addr: IpAddr) -> Option<&RangeConfig> {
        self.ranges.iter().find(|r| r.prefix.contains(&addr))
    }

    /// A peer's or range's effective export policy: its own, else the
    /// global one, else none.
    pub fn export_of<'a>(&'a self, s: &'a SessionConfig) -> Option<&'a ExportPolicy> {
        s.export.as_ref().or(self.export.as_ref())
    }

    /// The CLUSTER_ID (RFC 4456 §7).
    pub fn cluster_id(&self) -> Ipv4Addr {
        self.cluster_id.unwrap_or(self.router_id)
    }

    /// Whether routes are sent to anyone: some peer may be sent routes
    /// whenever there is an iBGP peer (reflection, origination) or an
    /// export policy.
    pub fn speaks(&self) -> bool {
        let sessions = self
            .peers
            .iter()
            .map(|p| &p.session)
            .chain(self.ranges.iter().map(|r| &r.session));
        !self.networks.is_empty()
            || sessions.clone().any(|s| s.rr_client || s.default_originate)
            || self.export.is_some()
            || sessions.clone().any(|s| s.export.is_some())
            // Routes learned over eBGP go to every iBGP peer.
            || (sessions.clone().any(|s| s.remote_as != self.local_as)
                && sessions.clone().any(|s| s.remote_as == self.local_as))
    }

    /// A peer's or range's effective import policy: its own, else the
    /// global one.
    pub fn import_of<'a>(&'a self, s: &'a SessionConfig) -> &'a ImportPolicy {
        s.import.as_ref().unwrap_or(&self.import)
    }

    /// One spec per `[[peer]]`, in file order.
    pub fn peer_specs(&self) -> Vec<PeerSpec> {
        self.peers.iter().map(|p| self.peer_spec(p)).collect()
    }

    /// The session of one peer or range member at `addr`, from the
    /// template they share.
    pub fn session_spec(&self, addr: IpAddr, s: &SessionConfig) -> PeerSpec {
        let mut spec = session::peer_spec(addr, self.local_as, self.router_id, Some(s.remote_as));
        spec.description = s.description.clone();
        spec.fsm.hold_time = s.hold_time;
        spec.fsm.keepalive = s.keepalive;
        spec.fsm.capabilities = self.capabilities(&s.families, &s.add_path);
        spec.fsm.required = s.required.iter().map(|r| r.capability()).collect();
        spec.transport.password = s.password.clone();
        spec.transport.ttl_security = s.ttl_security;
        spec
    }

    pub fn peer_spec(&self, p: &PeerConfig) -> PeerSpec {
        let mut spec = self.session_spec(p.address, &p.session);
        spec.port = p.port;
        spec.fsm.passive = p.passive;
        spec.fsm.connect_retry = p.connect_retry;
        spec.fsm.connect_retry_max = spec.fsm.connect_retry_max.max(p.connect_retry);
        spec.fsm.idle_hold = p.idle_hold;
        spec.fsm.idle_hold_max = spec.fsm.idle_hold_max.max(p.idle_hold);
        spec.transport = TransportOptions {
            source: p.source,
            interface: p.interface.clone(),
            ..spec.transport
        };
        spec
    }

    /// One spec per `[[range]]`, in file order. The template's address is
    /// the range's network address; the speaker fills in each neighbour's.
    pub fn range_specs(&self) -> Vec<RangeSpec> {
        self.ranges
            .iter()
            .map(|r| {
                let mut t = self.session_spec(r.prefix.network(), &r.session);
                t.fsm.passive = true;
                t.dynamic = true;
                RangeSpec {
                    prefix: r.prefix,
                    template: t,
                    limit: r.limit as usize,
                }
            })
            .collect()
    }

    /// [`session::default_capabilities`] with the multiprotocol
    /// capabilities limited to `families` and ADD-PATH receive for
    /// `add_path` (left out when empty).
    pub fn capabilities(&self, families: &[Family], add_path: &[Family]) -> Vec<Capability> {
        let fams: Vec<AfiSafi> = families.iter().map(|f| f.afi_safi()).collect();
        session::default_capabilities(self.local_as, self.graceful_restart_time)
            .into_iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol { afi_safi } => fams.contains(&afi_safi).then_some(c),
                Capability::AddPath { .. } if add_path.is_empty() => None,
                Capability::AddPath { .. } => Some(Capability::AddPath {
                    families: add_path
                        .iter()
                        .map(|f| AddPathFamily {
                            afi_safi: f.afi_safi(),
                            mode: 1,
                        })
                        .collect(),
                }),
                Capability::GracefulRestart(mut g) => {
                    g.families.retain(|f| fams.contains(&f.afi_safi));
                    Some(Capability::GracefulRestart(g))
                }
                c => Some(c),
            })
            .collect()
    }

    /// The RIB's import policy: the global `[import]`, and each configured
    /// peer's own policy and max-prefix. Dynamic neighbours take theirs
    /// from [`Config::range_policy`] when they come up.
    pub fn policy(&self) -> Policy {
        Policy {
            import: self.import.clone(),
            peers: self
                .peers
                .iter()
                .map(|p| (p.address, p.session.policy()))
                .collect(),
            ..Policy::default()
        }
    }

    /// The policy of a dynamic neighbour at `addr`: its range's.
    pub fn range_policy(&self, addr: IpAddr) -> Option<PeerPolicy> {
        self.range_of(addr).map(|r| r.session.policy())
    }
}

impl KernelSettings {
    /// Whether a stop as configured (SIGTERM, `bgpd stop`) leaves bgpd's
    /// routes in the kernel: a restart, for the peers too.
    pub fn keeps_routes_at_stop(&self) -> bool {
        self.install && !self.graceful_restart_keep.is_zero()
    }

    /// The FIB's settings.
    pub fn fib_config(&self) -> FibConfig {
        let keep = (!self.graceful_restart_keep.is_zero()).then_some(self.graceful_restart_keep);
        FibConfig {
            table: self.table,
            protocol: self.protocol,
            metric: self.metric,
            install: self.install,
            reconcile_interval: self.reconcile_interval,
            keep_on_shutdown: keep,
            stale_timeout: keep.unwrap_or(FibConfig::default().stale_timeout),
            resolve_via_default: self.resolve_via_default,
            nexthop_probe_interval: Duration::from_millis(self.nexthop_probe_ms.into()),
            nexthop_objects: self.nexthop_objects,
        }
    }
}

/// How one peer present in both configurations changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerChange {
    pub address: IpAddr,
    /// Something the session depends on changed (AS, timers, families,
    /// password, transport ...): the peer must be restarted.
    pub session: bool,
    /// Its effective import policy or max-prefix changed: re-evaluate its
    /// routes, without resetting the session.
    pub policy: bool,
}

impl PeerChange {
    /// Only the policy changed: apply by re-evaluation.
    pub fn policy_only(&self) -> bool {
        self.policy && !self.session
    }
}

/// What a reload has to do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigDiff {
    pub peers_added: Vec<IpAddr>,
    pub peers_removed: Vec<IpAddr>,
    /// Peers present in both whose settings differ.
    pub peers_changed: Vec<PeerChange>,
    pub ranges_added: Vec<IpNet>,
    pub ranges_removed: Vec<IpNet>,
    /// Ranges whose session settings changed: their dynamic peers restart.
    pub ranges_changed: Vec<IpNet>,
    /// Ranges whose only change is policy or max-prefix.
    pub ranges_policy_changed: Vec<IpNet>,
    /// The global `[import]` changed.
    pub import_changed: bool,
    pub multipath_changed: bool,
    pub kernel_changed: bool,
    /// Keys that a reload cannot apply without a restart of the daemon
    /// (`listen`, `[control]`, `[metrics]`, `[mrt]`). `local_as` and
    /// `router_id` are applied by restarting every peer.
    pub restart_required: Vec<&'static str>,
    pub log_changed: bool,
}

impl ConfigDiff {
    pub fn is_empty(&self) -> bool {
        *self == ConfigDiff::default()
    }
}

/// Which peers, ranges and settings differ between `old` and `new`.
/// A change of `local_as`, `router_id` or `graceful_restart_time`
/// changes every peer's session. A description change alone is no change
/// to the session (and shows in neither flag).
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    let mut d = ConfigDiff::default();
    let global_session = old.local_as != new.local_as
        || old.router_id != new.router_id
        || old.graceful_restart_time != new.graceful_restart_time;
    for p in &new.peers {
        match old.peer(p.address) {
            None => d.peers_added.push(p.address),
            Some(o) => {
                let session = global_session
                    || PeerConfig {
                        session: o.session.session_part(),
                        ..o.clone()
                    } != PeerConfig {
                        session: p.session.session_part(),
                        ..p.clone()
                    };
                let policy = old.import_of(&o.session) != new.import_of(&p.session)
                    || o.session.max_prefix != p.session.max_prefix;
                if session || policy {
                    d.peers_changed.push(PeerChange {
                        address: p.address,
                        session,
                        policy,
                    });
                }
            }
        }
    }
    for p in &old.peers {
        if new.peer(p.address).is_none() {
            d.peers_removed.push(p.address);
        }
    }
    for r in &new.ranges {
        match old.ranges.iter().find(|o| o.prefix == r.prefix) {
            None => d.ranges_added.push(r.prefix),
            Some(o) => {
                if global_session
                    || (o.limit, o.session.session_part()) != (r.limit, r.session.session_part())
                {
                    d.ranges_changed.push(r.prefix);
                } else if old.import_of(&o.session) != new.import_of(&r.session)
                    || o.session.max_prefix != r.session.max_prefix
                {
                    d.ranges_policy_changed.push(r.prefix);
                }
            }
        }
    }
    for r in &old.ranges {
        if !new.ranges.iter().any(|n| n.prefix == r.prefix) {
            d.ranges_removed.push(r.prefix);
        }
    }
    d.import_changed = old.import != new.import;
    d.multipath_changed = old.multipath != new.multipath;
    d.kernel_changed = old.kernel != new.kernel;
    d.log_changed = old.log != new.log;
    if old.listen != new.listen {
        d.restart_required.push("listen");
    }
    if old.control != new.control {
        d.restart_required.push("control");
    }
    if old.metrics != new.metrics {
        d.restart_required.push("metrics");
    }
    if old.mrt != new.mrt {
        d.restart_required.push("mrt");
    }
    d
}

/// Where a config file came from, for messages: the path as given.
pub fn display_path(path: &Path) -> String {
    path.display().to_string()
}
