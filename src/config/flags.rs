//! The command line as a configuration: `bgpd --asn N --peer ADDR ...`
//! (the foreground view, a container started with flags) gives the same
//! [`Config`] a file does. The flags are rendered as a TOML document and
//! read by the file's own parser, so every default and every check lives
//! once; an error names the flag it came from instead of a line.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use ipnet::IpNet;

use super::{Config, ConfigError, ConfigErrors, parse};

/// One `--peer` argument:
/// `ADDR[,as=N][,passive][,password=SECRET][,ttl-security][,port=N][,source=ADDR][,interface=IF]`.
/// Only its syntax is checked here; the values are checked as a
/// `[[peer]]`'s are.
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
    pub rr_client: bool,
    pub next_hop_self: bool,
    pub default_originate: bool,
    /// The argument as given, for messages.
    pub text: String,
}

pub const PEER_SYNTAX: &str = "ADDR[,as=N][,passive][,password=SECRET][,ttl-security][,port=N][,source=ADDR][,interface=IF][,rr-client][,next-hop-self][,default-originate]";

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
            rr_client: false,
            next_hop_self: false,
            default_originate: false,
            text: s.to_string(),
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
                None if opt == "rr-client" => p.rr_client = true,
                None if opt == "next-hop-self" => p.next_hop_self = true,
                None if opt == "default-originate" => p.default_originate = true,
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

/// One `--listen-range` argument: `PREFIX[,rr-client]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeArg {
    pub prefix: IpNet,
    /// Every neighbour of the range is a route-reflector client.
    pub rr_client: bool,
    pub text: String,
}

impl std::str::FromStr for RangeArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.split(',');
        let p = parts.next().unwrap_or_default();
        let prefix: IpNet = p.parse().map_err(|_| {
            format!("'{p}' is not a prefix (expected PREFIX[,rr-client], e.g. 192.168.83.0/24)")
        })?;
        let mut r = RangeArg {
            prefix,
            rr_client: false,
            text: s.to_string(),
        };
        for opt in parts {
            match opt {
                "rr-client" => r.rr_client = true,
                _ => {
                    return Err(format!(
                        "unknown range option '{opt}' (expected PREFIX[,rr-client])"
                    ));
                }
            }
        }
        Ok(r)
    }
}

/// The daemon's flags, as clap parsed them.
#[derive(Clone, Debug)]
pub struct Flags {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub peers: Vec<PeerArg>,
    /// Dynamic iBGP neighbours (`--listen-range`).
    pub listen_ranges: Vec<RangeArg>,
    /// `--network`: prefixes to announce.
    pub networks: Vec<IpNet>,
    pub cluster_id: Option<Ipv4Addr>,
    /// Explicit listeners; empty: `[::]` and `0.0.0.0` on `port`.
    pub listen: Vec<SocketAddr>,
    pub port: u16,
    pub hold_time: u16,
    pub no_install: bool,
    /// `--graceful-restart-keep SECONDS`; `None`: the default.
    pub keep_secs: Option<u32>,
    /// `None`: no control socket.
    pub control_socket: Option<PathBuf>,
}

/// A TOML document being written, with the flag each line came from.
#[derive(Default)]
struct Doc {
    text: String,
    origins: Vec<String>,
}

impl Doc {
    fn line(&mut self, origin: &str, line: impl AsRef<str>) {
        self.text.push_str(line.as_ref());
        self.text.push('\n');
        self.origins.push(origin.to_string());
    }

    fn key(&mut self, origin: &str, key: &str, value: impl Into<toml::Value>) {
        let v: toml::Value = value.into();
        self.line(origin, format!("{key} = {v}"));
    }
}

fn text(v: impl ToString) -> toml::Value {
    toml::Value::String(v.to_string())
}

impl Flags {
    /// The configuration the flags describe, checked as a file is.
    pub fn to_config(&self) -> Result<Config, ConfigErrors> {
        if self.peers.is_empty() && self.listen_ranges.is_empty() {
            return Err(ConfigErrors(vec![ConfigError {
                file: "the command line".into(),
                line: 0,
                col: 0,
                message: "nothing to do: give at least one --peer ADDR or --listen-range PREFIX"
                    .into(),
            }]));
        }
        let (text, origins) = self.render();
        parse::parse_rendered(&text, &origins)
    }

    /// The flags as a configuration file (`bgpd ... --print-config`).
    pub fn to_toml(&self) -> String {
        self.render().0
    }

    fn render(&self) -> (String, Vec<String>) {
        let mut d = Doc::default();
        d.key(&format!("--asn {}", self.asn), "local_as", self.asn as i64);
        d.key(
            &format!("--router-id {}", self.router_id),
            "router_id",
            text(self.router_id),
        );
        let listen: Vec<toml::Value> = if self.listen.is_empty() {
            [
                IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED),
                Ipv4Addr::UNSPECIFIED.into(),
            ]
            .iter()
            .map(|a| text(SocketAddr::new(*a, self.port)))
            .collect()
        } else {
            self.listen.iter().map(text).collect()
        };
        let origin = if self.listen.is_empty() {
            format!("--port {}", self.port)
        } else {
            let mut o = String::new();
            for l in &self.listen {
                let _ = write!(o, "{}--listen {l}", if o.is_empty() { "" } else { " " });
            }
            o
        };
        d.key(&origin, "listen", listen);
        d.key(
            &format!("--hold-time {}", self.hold_time),
            "hold_time",
            self.hold_time as i64,
        );
        if let Some(c) = self.cluster_id {
            d.key(&format!("--cluster-id {c}"), "cluster_id", text(c));
        }
        let install = if self.no_install { "--no-install" } else { "" };
        d.line(install, "[kernel]");
        d.key(install, "install", !self.no_install);
        if let Some(k) = self.keep_secs {
            d.key(
                &format!("--graceful-restart-keep {k}"),
                "graceful_restart_keep",
                k as i64,
            );
        }
        match &self.control_socket {
            Some(p) => {
                let o = format!("--control-socket {}", p.display());
                d.line(&o, "[control]");
                d.key(&o, "socket", text(p.display()));
            }
            None => {
                d.line("", "[control]");
                d.key("", "enabled", false);
            }
        }
        for p in &self.peers {
            let o = format!("--peer {}", p.text);
            d.line(&o, "[[peer]]");
            d.key(&o, "address", text(p.addr));
            if let Some(asn) = p.remote_as {
                d.key(&o, "remote_as", asn as i64);
            }
            if p.passive {
                d.key(&o, "passive", true);
            }
            if let Some(pw) = &p.password {
                d.key(&o, "password", text(pw));
            }
            if p.ttl_security {
                d.key(&o, "ttl_security", true);
            }
            if let Some(port) = p.port {
                d.key(&o, "port", port as i64);
            }
            if let Some(s) = p.source {
                d.key(&o, "source", text(s));
            }
            if let Some(i) = &p.interface {
                d.key(&o, "interface", text(i));
            }
            for (on, key) in [
                (p.rr_client, "rr_client"),
                (p.next_hop_self, "next_hop_self"),
                (p.default_originate, "default_originate"),
            ] {
                if on {
                    d.key(&o, key, true);
                }
            }
        }
        for r in &self.listen_ranges {
            // Dynamic neighbours are in our AS (iBGP), as Calico nodes are.
            let o = format!("--listen-range {}", r.text);
            d.line(&o, "[[range]]");
            d.key(&o, "prefix", text(r.prefix));
            if r.rr_client {
                d.key(&o, "rr_client", true);
            }
        }
        for n in &self.networks {
            let o = format!("--network {n}");
            d.line(&o, "[[network]]");
            d.key(&o, "prefix", text(n));
        }
        (d.text, d.origins)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(peers: &[&str]) -> Flags {
        Flags {
            asn: 64512,
            router_id: "192.168.83.1".parse().unwrap(),
            peers: peers.iter().map(|p| p.parse().unwrap()).collect(),
            listen_ranges: vec![],
            networks: vec![],
            cluster_id: None,
            listen: vec![],
            port: 179,
            hold_time: 90,
            no_install: false,
            keep_secs: None,
            control_socket: None,
        }
    }

    /// The flags give what the same file gives.
    #[test]
    fn flags_and_file_agree() {
        let mut f = flags(&["192.168.83.36", "10.0.0.2,as=65001,passive,port=1179"]);
        f.listen_ranges = vec!["192.168.84.0/24,rr-client".parse().unwrap()];
        f.networks = vec!["192.168.82.0/24".parse().unwrap()];
        f.cluster_id = Some("224.0.0.2".parse().unwrap());
        f.hold_time = 30;
        f.no_install = true;
        f.keep_secs = Some(0);
        let from_flags = f.to_config().unwrap();
        let file = r#"
local_as = 64512
router_id = "192.168.83.1"
hold_time = 30
cluster_id = "224.0.0.2"
[kernel]
install = false
graceful_restart_keep = 0
[control]
enabled = false
[[peer]]
address = "192.168.83.36"
[[peer]]
address = "10.0.0.2"
remote_as = 65001
passive = true
port = 1179
[[range]]
prefix = "192.168.84.0/24"
rr_client = true
[[network]]
prefix = "192.168.82.0/24"
"#;
        assert_eq!(from_flags, parse(file, "test").unwrap());
        assert_eq!(
            from_flags.ranges[0].limit,
            super::super::DEFAULT_RANGE_LIMIT
        );
        assert_eq!(parse(&f.to_toml(), "test").unwrap(), from_flags);
    }

    /// A bad value is refused by the file's check, naming the flag.
    #[test]
    fn errors_name_the_flag() {
        let mut f = flags(&["192.168.83.36,port=0"]);
        f.hold_time = 2;
        let e = f.to_config().unwrap_err();
        let lines: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with("--hold-time 2: "), "{lines:?}");
        assert!(lines[0].contains("0 or at least 3"), "{lines:?}");
        assert!(
            lines[1].starts_with("--peer 192.168.83.36,port=0: `port` 0"),
            "{lines:?}"
        );
        let pw = format!("192.168.83.36,password={}", "x".repeat(81));
        let e = flags(&[&pw]).to_config().unwrap_err().to_string();
        assert!(e.contains("at most 80 bytes"), "{e}");
        let e = flags(&["192.168.83.1"])
            .to_config()
            .unwrap_err()
            .to_string();
        assert!(e.contains("router_id as its address"), "{e}");
        let e = flags(&[]).to_config().unwrap_err().to_string();
        assert!(e.contains("nothing to do"), "{e}");
    }

    /// A password with quotes and backslashes survives the rendering.
    #[test]
    fn values_are_quoted() {
        let c = flags(&[r#"192.168.83.36,password=a"b\c'd"#])
            .to_config()
            .unwrap();
        assert_eq!(c.peers[0].session.password.as_deref(), Some(r#"a"b\c'd"#));
    }
}
