//! The configuration file (TOML): typed settings, validation with one
//! `FILE:LINE:COL: what is wrong; how to fix it` line per error, the
//! conversion into the runtime pieces ([`PeerSpec`], [`RangeSpec`], and
//! plain settings for the RIB and the FIB), and the difference between two
//! configurations for a reload.
//!
//! Every key is documented in docs/configuration.md.

mod parse;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Serialize, Serializer};

use crate::session::{self, PeerSpec, RangeSpec, TransportOptions};
use crate::wire::open::AddPathFamily;
use crate::wire::{AfiSafi, Capability};

/// Default TCP port of BGP.
pub const BGP_PORT: u16 = 179;
/// Default hold time offered, seconds (as `fsm::Config::new`).
pub const DEFAULT_HOLD_TIME: u16 = 90;
/// Default graceful-restart time offered, seconds.
pub const DEFAULT_RESTART_TIME: u16 = 120;
/// Default ECMP width.
pub const DEFAULT_MULTIPATH: u16 = 32;
/// Default peer limit of a dynamic range.
pub const DEFAULT_RANGE_LIMIT: u32 = 1000;
/// Default max-prefix warning threshold, percent.
pub const DEFAULT_WARNING_PERCENT: u8 = 75;
/// Default control socket.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/bgpd/bgpd.sock";
/// The main routing table (RT_TABLE_MAIN).
pub const TABLE_MAIN: u32 = 254;
/// rtm_protocol of bgpd's routes (186 "bgp" in /etc/iproute2/rt_protos).
pub const DEFAULT_PROTOCOL: u8 = 186;
/// Default route metric (as FRR installs BGP routes).
pub const DEFAULT_METRIC: u32 = 20;
/// Linux accepts TCP-MD5 keys of at most this many bytes.
pub const MAX_PASSWORD: usize = session::socket::MAX_MD5_KEY;

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

/// A prefix-list entry: `prefix [ge G] [le L]` (Cisco `ip prefix-list`,
/// BIRD `prefix{G,L}`). Without ge/le it matches `prefix` exactly.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct PrefixMatch {
    pub prefix: IpNet,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ge: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub le: Option<u8>,
}

impl PrefixMatch {
    /// Whether `p` matches, with the RIB's semantics: `ge` defaults to the
    /// entry's length; `le` to the family's maximum when only `ge` is
    /// given, else to `ge`.
    pub fn matches(&self, p: &IpNet) -> bool {
        if !self.prefix.contains(p) {
            return false;
        }
        let base = self.prefix.prefix_len();
        let (lo, hi) = match (self.ge, self.le) {
            (None, None) => (base, base),
            (Some(g), None) => (g, p.max_prefix_len()),
            (None, Some(l)) => (base, l),
            (Some(g), Some(l)) => (g, l),
        };
        (lo..=hi).contains(&p.prefix_len())
    }
}

impl fmt::Display for PrefixMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.prefix)?;
        if let Some(g) = self.ge {
            write!(f, " ge {g}")?;
        }
        if let Some(l) = self.le {
            write!(f, " le {l}")?;
        }
        Ok(())
    }
}

/// Import policy: the allow-list, the deny-list, and the switches that
/// lift the LAN-protecting defaults (which reject the default route,
/// martians, and prefixes equal to or covering a connected network).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportPolicy {
    /// Empty: everything the defaults let through is accepted.
    pub allow: Vec<PrefixMatch>,
    /// Checked before `allow`.
    pub deny: Vec<PrefixMatch>,
    pub allow_default_route: bool,
    pub allow_connected: bool,
}

/// Per-peer max-prefix (Cisco `neighbor X maximum-prefix L W restart R`,
/// BIRD `import limit L action restart`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MaxPrefix {
    pub limit: u32,
    pub warning_percent: u8,
    /// `None`: the session stays down until a reload or a manual reset.
    #[serde(
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub restart_after: Option<Duration>,
}

/// One `[[peer]]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerConfig {
    pub address: IpAddr,
    pub port: u16,
    pub remote_as: u32,
    pub description: String,
    pub passive: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    pub ttl_security: bool,
    pub hold_time: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<u16>,
    #[serde(serialize_with = "ser_duration")]
    pub connect_retry: Duration,
    #[serde(serialize_with = "ser_duration")]
    pub idle_hold: Duration,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    pub families: Vec<Family>,
    /// Families in which the peer may send several paths per prefix.
    pub add_path: Vec<Family>,
    pub required: Vec<RequiredCapability>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_prefix: Option<MaxPrefix>,
    /// `None`: the global `[import]` applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportPolicy>,
}

/// One `[[range]]`: dynamic neighbours (Cisco `bgp listen range`, BIRD 2
/// `neighbor range`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RangeConfig {
    pub prefix: IpNet,
    pub remote_as: u32,
    pub limit: u32,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    pub ttl_security: bool,
    pub hold_time: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive: Option<u16>,
    pub families: Vec<Family>,
    pub add_path: Vec<Family>,
    pub required: Vec<RequiredCapability>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_prefix: Option<MaxPrefix>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<ImportPolicy>,
}

/// `[kernel]`: what the FIB does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KernelSettings {
    pub install: bool,
    /// Table number; 254 is `main`.
    pub table: u32,
    pub protocol: u8,
    pub metric: u32,
    /// Zero: routes are removed at shutdown. Else they stay in the kernel
    /// this long across a restart, and the next start waits this long for
    /// the RIB to learn them again.
    #[serde(serialize_with = "ser_duration")]
    pub graceful_restart_keep: Duration,
    /// Zero disables the periodic check of the kernel against the RIB.
    #[serde(serialize_with = "ser_duration")]
    pub reconcile_interval: Duration,
    pub resolve_via_default: bool,
}

impl Default for KernelSettings {
    fn default() -> Self {
        KernelSettings {
            install: true,
            table: TABLE_MAIN,
            protocol: DEFAULT_PROTOCOL,
            metric: DEFAULT_METRIC,
            graceful_restart_keep: Duration::ZERO,
            reconcile_interval: Duration::from_secs(60),
            resolve_via_default: false,
        }
    }
}

/// `[control]`: the unix socket of `bgpd show` / `bgpctl`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ControlSettings {
    pub socket: PathBuf,
    /// Group allowed to use the socket (mode 0660); `None`: root only (0600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl Default for ControlSettings {
    fn default() -> Self {
        ControlSettings {
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
    pub multipath: u16,
    pub import: ImportPolicy,
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

/// What the RIB needs of one peer (or of the dynamic peers of a range).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerPolicy {
    /// The effective policy: the peer's own `import`, else the global one.
    pub import: ImportPolicy,
    pub max_prefix: Option<MaxPrefix>,
    pub families: Vec<Family>,
}

/// What the daemon hands the RIB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RibSettings {
    pub multipath: u16,
    /// The global import policy.
    pub import: ImportPolicy,
    pub peers: BTreeMap<IpAddr, PeerPolicy>,
    /// For dynamic neighbours: the first range containing the address.
    pub ranges: Vec<(IpNet, PeerPolicy)>,
}

impl RibSettings {
    /// The policy of a configured or dynamic peer.
    pub fn policy_for(&self, addr: IpAddr) -> Option<&PeerPolicy> {
        self.peers.get(&addr).or_else(|| {
            self.ranges
                .iter()
                .find(|(p, _)| p.contains(&addr))
                .map(|(_, pp)| pp)
        })
    }
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
            import: ImportPolicy::default(),
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

    /// The peer's effective import policy.
    pub fn import_for_peer<'a>(&'a self, p: &'a PeerConfig) -> &'a ImportPolicy {
        p.import.as_ref().unwrap_or(&self.import)
    }

    /// The range's effective import policy.
    pub fn import_for_range<'a>(&'a self, r: &'a RangeConfig) -> &'a ImportPolicy {
        r.import.as_ref().unwrap_or(&self.import)
    }

    /// One spec per `[[peer]]`, in file order.
    pub fn peer_specs(&self) -> Vec<PeerSpec> {
        self.peers.iter().map(|p| self.peer_spec(p)).collect()
    }

    pub fn peer_spec(&self, p: &PeerConfig) -> PeerSpec {
        let mut spec =
            session::peer_spec(p.address, self.local_as, self.router_id, Some(p.remote_as));
        spec.port = p.port;
        spec.description = p.description.clone();
        spec.fsm.hold_time = p.hold_time;
        spec.fsm.keepalive = p.keepalive;
        spec.fsm.passive = p.passive;
        spec.fsm.connect_retry = p.connect_retry;
        spec.fsm.connect_retry_max = spec.fsm.connect_retry_max.max(p.connect_retry);
        spec.fsm.idle_hold = p.idle_hold;
        spec.fsm.idle_hold_max = spec.fsm.idle_hold_max.max(p.idle_hold);
        spec.fsm.capabilities = self.capabilities(&p.families, &p.add_path);
        spec.fsm.required = p.required.iter().map(|r| r.capability()).collect();
        spec.transport = TransportOptions {
            source: p.source,
            interface: p.interface.clone(),
            password: p.password.clone(),
            ttl_security: p.ttl_security,
        };
        spec
    }

    /// One spec per `[[range]]`, in file order. The template's address is
    /// the range's network address; the speaker fills in each neighbour's.
    pub fn range_specs(&self) -> Vec<RangeSpec> {
        self.ranges
            .iter()
            .map(|r| {
                let mut t = session::peer_spec(
                    r.prefix.network(),
                    self.local_as,
                    self.router_id,
                    Some(r.remote_as),
                );
                t.description = r.description.clone();
                t.fsm.hold_time = r.hold_time;
                t.fsm.keepalive = r.keepalive;
                t.fsm.passive = true;
                t.fsm.capabilities = self.capabilities(&r.families, &r.add_path);
                t.fsm.required = r.required.iter().map(|c| c.capability()).collect();
                t.transport.password = r.password.clone();
                t.transport.ttl_security = r.ttl_security;
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
                c => Some(c),
            })
            .collect()
    }

    /// What the RIB needs: multipath width, import policies, max-prefix.
    pub fn rib_settings(&self) -> RibSettings {
        RibSettings {
            multipath: self.multipath,
            import: self.import.clone(),
            peers: self
                .peers
                .iter()
                .map(|p| (p.address, self.peer_policy(p)))
                .collect(),
            ranges: self
                .ranges
                .iter()
                .map(|r| {
                    (
                        r.prefix,
                        PeerPolicy {
                            import: self.import_for_range(r).clone(),
                            max_prefix: r.max_prefix,
                            families: r.families.clone(),
                        },
                    )
                })
                .collect(),
        }
    }

    pub fn peer_policy(&self, p: &PeerConfig) -> PeerPolicy {
        PeerPolicy {
            import: self.import_for_peer(p).clone(),
            max_prefix: p.max_prefix,
            families: p.families.clone(),
        }
    }

    /// What the FIB needs.
    pub fn kernel_settings(&self) -> KernelSettings {
        self.kernel.clone()
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

/// The peer's session-relevant settings, without its policy.
fn session_part(p: &PeerConfig) -> PeerConfig {
    PeerConfig {
        max_prefix: None,
        import: None,
        description: String::new(),
        ..p.clone()
    }
}

fn range_session_part(r: &RangeConfig) -> RangeConfig {
    RangeConfig {
        max_prefix: None,
        import: None,
        description: String::new(),
        ..r.clone()
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
                let session = global_session || session_part(o) != session_part(p);
                let policy = old.peer_policy(o) != new.peer_policy(p);
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
                if global_session || range_session_part(o) != range_session_part(r) {
                    d.ranges_changed.push(r.prefix);
                } else if old.import_for_range(o) != new.import_for_range(r)
                    || o.max_prefix != r.max_prefix
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

/// Durations are written as a string with units, "90s", "2m", "1m30s".
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return "0s".into();
    }
    let (h, m, sec) = (s / 3600, (s / 60) % 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 {
        out.push_str(&format!("{sec}s"));
    }
    out
}

fn ser_duration<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_duration(*d))
}

fn ser_opt_duration<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format_duration(*d)),
        None => s.serialize_none(),
    }
}

/// Where a config file came from, for messages: the path as given.
pub fn display_path(path: &Path) -> String {
    path.display().to_string()
}
