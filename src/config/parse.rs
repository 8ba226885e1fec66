//! Reading and validating the TOML file.
//!
//! The file is parsed into a spanned tree first (all syntax errors are
//! reported at once). The top level, each section, each `[[peer]]` and
//! each `[[range]]` are then deserialized separately into raw structs whose
//! values keep their spans; when one fails (unknown key, wrong type) the
//! offending key is reported and dropped, and the rest is tried again, so
//! one mistake does not hide the next. The raw values are then checked and
//! converted, every error pointing at its value.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::de::{self, DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::*;
use crate::units::parse_duration;

type S<T> = Spanned<T>;
type Span = Range<usize>;

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = display_path(path);
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, &file),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file,
            line: 0,
            col: 0,
            message: format!(
                "cannot read the configuration file: {e}; check the path and its permissions"
            ),
        }])),
    }
}

/// Validates configuration text; `file` names it in messages.
pub fn parse(text: &str, file: &str) -> Result<Config, ConfigErrors> {
    parse_in(Cx::new(text, file))
}

/// Validates a document rendered from command-line flags: `origins`
/// gives, per line, the flag it came from, and errors name that flag.
pub(super) fn parse_rendered(text: &str, origins: &[String]) -> Result<Config, ConfigErrors> {
    let mut cx = Cx::new(text, "the command line");
    cx.origins = Some(origins);
    parse_in(cx)
}

fn parse_in(mut cx: Cx) -> Result<Config, ConfigErrors> {
    let cfg = build(&mut cx);
    match cfg {
        Some(c) if cx.errors.is_empty() => Ok(c),
        _ => Err(cx.finish()),
    }
}

// ---------------------------------------------------------------------
// Errors and positions

struct Cx<'a> {
    file: &'a str,
    /// For a document rendered from command-line flags: per line, the
    /// flag it came from, which errors name instead of a file position.
    origins: Option<&'a [String]>,
    text: &'a str,
    line_starts: Vec<usize>,
    errors: Vec<(usize, ConfigError)>,
}

impl<'a> Cx<'a> {
    fn new(text: &'a str, file: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Cx {
            file,
            origins: None,
            text,
            line_starts,
            errors: Vec::new(),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn line_col(&self, pos: usize) -> (usize, usize) {
        let pos = pos.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= pos);
        let start = self.line_starts[line - 1];
        let col = self
            .text
            .get(start..pos)
            .map_or(pos - start, |s| s.chars().count())
            + 1;
        (line, col)
    }

    fn line(&self, span: &Span) -> usize {
        self.line_col(span.start).0
    }

    fn err(&mut self, span: &Span, message: impl Into<String>) {
        let (line, col) = self.line_col(span.start);
        let message = message.into().replace('\n', " ");
        let e = match self.origins {
            Some(o) => ConfigError {
                file: o.get(line - 1).cloned().unwrap_or_else(|| self.file.into()),
                line: 0,
                col: 0,
                message,
            },
            None => ConfigError {
                file: self.file.to_string(),
                line,
                col,
                message,
            },
        };
        self.errors.push((span.start, e));
    }

    fn finish(mut self) -> ConfigErrors {
        self.errors.sort_by_key(|(pos, _)| *pos);
        self.errors.dedup_by(|a, b| a.1 == b.1);
        ConfigErrors(self.errors.into_iter().map(|(_, e)| e).collect())
    }
}

// ---------------------------------------------------------------------
// The spanned tree and per-table deserialization

const TOP: &str = "the top level";

/// Deserializes `table` into `T`. On an error, reports it, drops the key
/// it is about and tries again. Returns the value and the dropped keys.
fn de_table<T: DeserializeOwned>(
    cx: &mut Cx,
    table: &DeTable<'_>,
    span: &Span,
    section: &str,
) -> Option<(T, Vec<String>)> {
    let mut t = table.clone();
    let mut dropped = Vec::new();
    for _ in 0..=table.len() {
        let de = ValueDeserializer::from(Spanned::new(span.clone(), DeValue::Table(t.clone())));
        match T::deserialize(de) {
            Ok(v) => return Some((v, dropped)),
            Err(e) => {
                let pos = e.span().map(|s| s.start);
                let located = pos.and_then(|p| locate_in_table(&t, p));
                let at = e.span().unwrap_or_else(|| span.clone());
                cx.err(
                    &at,
                    describe_de_error(e.message(), section, located.as_ref()),
                );
                let loc = located?;
                let key = loc.path[0].clone();
                t.remove(key.as_str());
                dropped.push(key);
            }
        }
    }
    None
}

/// The path (keys and `[i]` indexes) from a table down to the value at a
/// byte offset.
struct Located {
    path: Vec<String>,
}

fn locate_in_table(t: &DeTable<'_>, pos: usize) -> Option<Located> {
    let (k, v) = pick(
        t.iter()
            .map(|(k, v)| (k.span(), v.span(), (k.get_ref().to_string(), v))),
        pos,
    )?;
    let mut path = vec![k];
    descend(v.get_ref(), pos, &mut path);
    Some(Located { path })
}

/// The entry whose key or value holds `pos`; else (a table written as a
/// `[header]`, whose span is the header alone) the last one before it.
fn pick<T>(items: impl Iterator<Item = (Span, Span, T)>, pos: usize) -> Option<T> {
    let mut best: Option<(usize, T)> = None;
    for (ks, vs, item) in items {
        if ks.contains(&pos) || vs.contains(&pos) || (ks.start == pos && ks.is_empty()) {
            return Some(item);
        }
        let start = ks.start.min(vs.start);
        if start <= pos && best.as_ref().is_none_or(|(b, _)| start > *b) {
            best = Some((start, item));
        }
    }
    best.map(|(_, i)| i)
}

fn descend(v: &DeValue<'_>, pos: usize, path: &mut Vec<String>) {
    match v {
        DeValue::Table(t) => {
            if let Some(l) = locate_in_table(t, pos) {
                path.extend(l.path);
            }
        }
        DeValue::Array(a) => {
            let found = pick(
                a.iter()
                    .enumerate()
                    .map(|(i, v)| (v.span(), v.span(), (i, v))),
                pos,
            );
            if let Some((i, v)) = found {
                path.push(format!("[{i}]"));
                descend(v.get_ref(), pos, path);
            }
        }
        _ => {}
    }
}

fn join_path(section: &str, path: &[String]) -> String {
    let mut s = String::new();
    for p in path {
        if !s.is_empty() && !p.starts_with('[') {
            s.push('.');
        }
        s.push_str(p);
    }
    match section {
        TOP => s,
        _ if s.is_empty() => section.to_string(),
        _ => format!("{section} {s}"),
    }
}

/// Turns a serde/toml message into "what is wrong; how to fix it".
fn describe_de_error(msg: &str, section: &str, loc: Option<&Located>) -> String {
    let path: Vec<String> = loc.map(|l| l.path.clone()).unwrap_or_default();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (field, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let allowed: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
        // The path ends at the unknown key itself.
        let parent = match path.last() {
            Some(l) if l == field => &path[..path.len() - 1],
            _ => &path[..],
        };
        let place = join_path(section, parent);
        let place = if place.is_empty() || place == TOP {
            format!("at {TOP}")
        } else {
            format!("in {place}")
        };
        let hint = closest(field, &allowed)
            .map(|c| format!("did you mean `{c}`? "))
            .unwrap_or_default();
        return format!(
            "unknown key `{field}` {place}; {hint}allowed keys: {}",
            allowed.join(", ")
        );
    }
    let place = join_path(section, &path);
    let place = if place.is_empty() {
        section.to_string()
    } else {
        format!("`{place}`")
    };
    if let Some(rest) = msg.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        let expected = match expected {
            "i64" | "u64" | "u32" | "u16" | "u8" | "i32" => "an integer",
            "a sequence" => "an array",
            "a map" => "a table",
            e if e.starts_with("struct ") => "a table",
            e => e,
        };
        let fix = if found.starts_with("string") && expected == "an integer" {
            "write the number without quotes"
        } else if expected == "a string"
            && !found.starts_with("map")
            && !found.starts_with("sequence")
        {
            "put the value in double quotes"
        } else if expected == "a boolean" {
            "write true or false"
        } else {
            "see docs/configuration.md for the expected form"
        };
        let found = found
            .replace("map", "table")
            .replace("sequence", "array")
            .replace("i64", "integer");
        return format!("{place} must be {expected}, not {found}; {fix}");
    }
    format!("{place}: {msg}")
}

/// The allowed name nearest to `s` when it is close enough to be a typo.
fn closest<'a>(s: &str, options: &[&'a str]) -> Option<&'a str> {
    options
        .iter()
        .map(|o| (edit_distance(s, o), *o))
        .filter(|(d, o)| *d <= 2.max(o.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, o)| o)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

// ---------------------------------------------------------------------
// Raw structs: what the file says, with spans

/// An integer or a string, as TOML gives durations (90 or "90s") and
/// tables (254 or "main"); `expecting` names what the key takes, for the
/// error when it is neither.
#[derive(Clone, Debug)]
enum IntOrText {
    Int(i64),
    Text(String),
}

fn int_or_text<'de, D: Deserializer<'de>>(
    d: D,
    expecting: &'static str,
) -> Result<IntOrText, D::Error> {
    struct V(&'static str);
    impl Visitor<'_> for V {
        type Value = IntOrText;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrText, E> {
            Ok(IntOrText::Int(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrText, E> {
            Ok(IntOrText::Int(i64::try_from(v).unwrap_or(i64::MAX)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrText, E> {
            Ok(IntOrText::Text(v.to_string()))
        }
    }
    d.deserialize_any(V(expecting))
}

/// A duration: whole seconds, or a string with units.
#[derive(Clone, Debug)]
struct RawDuration(IntOrText);

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        int_or_text(
            d,
            "a duration: whole seconds (90) or a string with units (\"90s\", \"2m\", \"1m30s\")",
        )
        .map(RawDuration)
    }
}

/// A table number or name.
#[derive(Clone, Debug)]
struct RawTable(IntOrText);

impl<'de> Deserialize<'de> for RawTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        int_or_text(d, "a table number or \"main\"").map(RawTable)
    }
}

/// An allow/deny entry: `"P [ge G] [le L]"` or `{ prefix = "P", ge = G, le = L }`.
#[derive(Clone, Debug)]
enum RawPrefixMatch {
    Text(String),
    Table(RawPrefixTable),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrefixTable {
    prefix: Option<S<String>>,
    ge: Option<S<i64>>,
    le: Option<S<i64>>,
}

impl<'de> Deserialize<'de> for RawPrefixMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPrefixMatch;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a prefix entry: \"172.16.0.0/16 le 32\" or { prefix = \"172.16.0.0/16\", le = 32 }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawPrefixMatch, E> {
                Ok(RawPrefixMatch::Text(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawPrefixMatch, A::Error> {
                RawPrefixTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawPrefixMatch::Table)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTop {
    local_as: Option<S<i64>>,
    router_id: Option<S<String>>,
    listen: Option<S<Vec<S<String>>>>,
    hold_time: Option<S<RawDuration>>,
    keepalive: Option<S<RawDuration>>,
    graceful_restart_time: Option<S<RawDuration>>,
    multipath: Option<S<i64>>,
    cluster_id: Option<S<String>>,
    // Tables, deserialized on their own; listed for the allowed-keys hint.
    #[serde(rename = "import")]
    _import: Option<IgnoredAny>,
    #[serde(rename = "export")]
    _export: Option<IgnoredAny>,
    #[serde(rename = "network")]
    _network: Option<IgnoredAny>,
    #[serde(rename = "peer")]
    _peer: Option<IgnoredAny>,
    #[serde(rename = "range")]
    _range: Option<IgnoredAny>,
    #[serde(rename = "kernel")]
    _kernel: Option<IgnoredAny>,
    #[serde(rename = "control")]
    _control: Option<IgnoredAny>,
    #[serde(rename = "metrics")]
    _metrics: Option<IgnoredAny>,
    #[serde(rename = "mrt")]
    _mrt: Option<IgnoredAny>,
    #[serde(rename = "log")]
    _log: Option<IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImport {
    allow: Option<Vec<S<RawPrefixMatch>>>,
    deny: Option<Vec<S<RawPrefixMatch>>>,
    allow_default_route: Option<bool>,
    allow_connected: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExport {
    allow: Option<Vec<S<RawPrefixMatch>>>,
    deny: Option<Vec<S<RawPrefixMatch>>>,
    communities: Option<Vec<S<String>>>,
    large_communities: Option<Vec<S<String>>>,
    set: Option<S<RawActions>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActions {
    local_pref: Option<S<i64>>,
    med: Option<S<i64>>,
    prepend: Option<S<i64>>,
    add_communities: Option<Vec<S<String>>>,
    add_large_communities: Option<Vec<S<String>>>,
    next_hop: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    prefix: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaxPrefix {
    limit: Option<S<i64>>,
    warning_percent: Option<S<i64>>,
    restart_after: Option<S<RawDuration>>,
}

/// A table of the session template's keys (`[[peer]]`, `[[range]]`):
/// its own keys, then the shared ones ([`RawSession`]).
macro_rules! raw_session_table {
    ($name:ident { $($field:ident : $ty:ty,)* }) => {
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct $name {
            $($field: $ty,)*
            remote_as: Option<S<i64>>,
            description: Option<S<String>>,
            password: Option<S<String>>,
            ttl_security: Option<bool>,
            hold_time: Option<S<RawDuration>>,
            keepalive: Option<S<RawDuration>>,
            families: Option<S<Vec<S<String>>>>,
            add_path: Option<S<Vec<S<String>>>>,
            required: Option<S<Vec<S<String>>>>,
            max_prefix: Option<S<RawMaxPrefix>>,
            import: Option<S<RawImport>>,
            rr_client: Option<bool>,
            next_hop_self: Option<bool>,
            default_originate: Option<bool>,
            export: Option<S<RawExport>>,
        }
    };
}

raw_session_table!(RawPeer {
    address: Option<S<String>>,
    port: Option<S<i64>>,
    passive: Option<bool>,
    connect_retry: Option<S<RawDuration>>,
    idle_hold: Option<S<RawDuration>>,
    source: Option<S<String>>,
    interface: Option<S<String>>,
});

raw_session_table!(RawRange {
    prefix: Option<S<String>>,
    limit: Option<S<i64>>,
});

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKernel {
    install: Option<bool>,
    table: Option<S<RawTable>>,
    protocol: Option<S<i64>>,
    metric: Option<S<i64>>,
    graceful_restart_keep: Option<S<RawDuration>>,
    reconcile_interval: Option<S<RawDuration>>,
    resolve_via_default: Option<bool>,
    nexthop_probe_ms: Option<S<i64>>,
    nexthop_objects: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawControl {
    enabled: Option<bool>,
    socket: Option<S<String>>,
    group: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMrt {
    file: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    level: Option<S<String>>,
}

// ---------------------------------------------------------------------
// Building the Config

fn build(cx: &mut Cx) -> Option<Config> {
    let (root, syntax) = DeTable::parse_recoverable(cx.text);
    if !syntax.is_empty() {
        for e in &syntax {
            let span = e.span().unwrap_or(0..0);
            cx.err(&span, syntax_message(e.message()));
        }
        return None;
    }
    let root_span = root.span();
    let mut table = root.into_inner();

    // Tables handled on their own.
    let mut take = |name: &str| table.remove(name);
    let peer_v = take("peer");
    let range_v = take("range");
    let import_v = take("import");
    let export_v = take("export");
    let network_v = take("network");
    let kernel_v = take("kernel");
    let control_v = take("control");
    let metrics_v = take("metrics");
    let mrt_v = take("mrt");
    let log_v = take("log");

    let (top, dropped) = de_table::<RawTop>(cx, &table, &root_span, TOP)
        .unwrap_or_else(|| (RawTop::default(), vec![]));
    let start = 0..0;

    // local AS and router id
    let local_as = match &top.local_as {
        Some(v) => asn(cx, v, "local_as"),
        None if dropped.iter().any(|k| k == "local_as") => None,
        None => {
            cx.err(
                &start,
                "`local_as` is missing; add `local_as = 64512` (this router's AS number) at the top of the file",
            );
            None
        }
    };
    let router_id = match &top.router_id {
        Some(v) => router_id(cx, v),
        None if dropped.iter().any(|k| k == "router_id") => None,
        None => {
            cx.err(
                &start,
                "`router_id` is missing; add `router_id = \"A.B.C.D\"`, an IPv4 address of this router that no peer uses",
            );
            None
        }
    };

    let listen = match &top.listen {
        None => default_listen(),
        Some(l) => {
            let mut out: Vec<(SocketAddr, usize)> = Vec::new();
            for s in l.get_ref() {
                if let Some(a) = socket_addr(cx, s, "listen", Some(BGP_PORT)) {
                    if let Some((_, line)) = out.iter().find(|(o, _)| *o == a) {
                        let line = *line;
                        cx.err(
                            &s.span(),
                            format!("`listen` has {a} twice (also on line {line}); remove one"),
                        );
                    } else {
                        out.push((a, cx.line(&s.span())));
                    }
                }
            }
            out.into_iter().map(|(a, _)| a).collect()
        }
    };

    let hold_time = top
        .hold_time
        .as_ref()
        .and_then(|h| hold(cx, h, "hold_time"))
        .unwrap_or(DEFAULT_HOLD_TIME);
    let keepalive = top
        .keepalive
        .as_ref()
        .and_then(|k| secs_u16(cx, k, "keepalive"));
    if let (Some(k), Some(ks)) = (keepalive, &top.keepalive) {
        check_keepalive(cx, k, hold_time, &ks.span());
    }
    let graceful_restart_time = match &top.graceful_restart_time {
        None => DEFAULT_RESTART_TIME,
        Some(g) => match secs(cx, g, "graceful_restart_time") {
            Some(s) if s <= 4095 => s as u16,
            Some(s) => {
                cx.err(
                    &g.span(),
                    format!("`graceful_restart_time` {s}s is too long; the capability carries at most 4095 seconds (RFC 4724)"),
                );
                DEFAULT_RESTART_TIME
            }
            None => DEFAULT_RESTART_TIME,
        },
    };
    let multipath = match &top.multipath {
        None => DEFAULT_MULTIPATH,
        Some(m) => match *m.get_ref() {
            n @ 1..=256 => n as usize,
            n => {
                cx.err(
                    &m.span(),
                    format!("`multipath` {n} is out of range; use 1 (no ECMP) to 256 (default {DEFAULT_MULTIPATH})"),
                );
                DEFAULT_MULTIPATH
            }
        },
    };

    let import = match import_v {
        None => ImportPolicy::default(),
        Some(v) => section::<RawImport>(cx, v, "[import]")
            .map(|r| import_policy(cx, &r, "[import]"))
            .unwrap_or_default(),
    };

    let export = export_v.and_then(|v| {
        let span = v.span();
        section::<RawExport>(cx, v, "[export]").and_then(|r| export_policy(cx, &r, &span))
    });
    let cluster_id = top.cluster_id.as_ref().and_then(|v| {
        let id = ip(cx, v, "cluster_id")?;
        match id {
            IpAddr::V4(a) if Some(a) == router_id => {
                cx.err(&v.span(), format!("`cluster_id` {a} is the router id, which is the cluster id anyway; remove `cluster_id`, or give the id the cluster's reflectors share"));
                None
            }
            IpAddr::V4(a) if !a.is_unspecified() => Some(a),
            _ => {
                cx.err(&v.span(), format!("`cluster_id` {id} is not a cluster id; write four octets such as \"224.0.0.1\" (RFC 4456)"));
                None
            }
        }
    });
    let mut networks: Vec<NetworkConfig> = Vec::new();
    for (raw, span) in array_of_tables::<RawNetwork>(cx, network_v, "network") {
        let Some(p) = &raw.prefix else {
            cx.err(&span, "[[network]] has no `prefix`; add `prefix = \"192.168.82.0/24\"`, the network to announce");
            continue;
        };
        let Some(prefix) = prefix(cx, p, "prefix") else {
            continue;
        };
        if networks.iter().any(|n| n.prefix == prefix) {
            cx.err(
                &p.span(),
                format!("network {prefix} is listed twice; remove one"),
            );
            continue;
        }
        networks.push(NetworkConfig { prefix });
    }

    let g = Globals {
        local_as: local_as.unwrap_or(0),
        router_id,
        hold_time,
        keepalive,
    };

    // [[peer]]
    let mut peers: Vec<PeerConfig> = Vec::new();
    let mut peer_lines: HashMap<IpAddr, usize> = HashMap::new();
    for (raw, span) in array_of_tables::<RawPeer>(cx, peer_v, "peer") {
        let (address, p) = peer(cx, &g, &raw, &span);
        let Some(address) = address else { continue };
        let addr_span = raw.address.as_ref().map_or(span.clone(), |a| a.span());
        if let Some(first) = peer_lines.get(&address) {
            cx.err(
                &addr_span,
                format!(
                    "duplicate peer {address}: already defined at line {first}; remove one of the two [[peer]] entries"
                ),
            );
            continue;
        }
        peer_lines.insert(address, cx.line(&span));
        peers.extend(p);
    }

    // [[range]]
    let mut ranges: Vec<RangeConfig> = Vec::new();
    let mut range_lines: Vec<(IpNet, usize)> = Vec::new();
    for (raw, span) in array_of_tables::<RawRange>(cx, range_v, "range") {
        let (prefix, r) = range(cx, &g, &raw, &span);
        let Some(prefix) = prefix else { continue };
        let at = raw.prefix.as_ref().map_or(span.clone(), |a| a.span());
        if let Some((other, line)) = range_lines
            .iter()
            .find(|(o, _)| o.contains(&prefix) || prefix.contains(o))
        {
            let what = if *other == prefix {
                format!("duplicate range {prefix}: already defined at line {line}")
            } else {
                format!("range {prefix} overlaps range {other} (line {line})")
            };
            cx.err(
                &at,
                format!("{what}; a connection must match one range: make the ranges disjoint"),
            );
            continue;
        }
        range_lines.push((prefix, cx.line(&span)));
        ranges.extend(r);
    }

    let kernel = kernel_v
        .and_then(|v| section::<RawKernel>(cx, v, "[kernel]"))
        .map(|r| kernel(cx, &r))
        .unwrap_or_default();
    let control = control_v
        .and_then(|v| section::<RawControl>(cx, v, "[control]"))
        .map(|r| control(cx, &r))
        .unwrap_or_default();
    let metrics = metrics_v
        .and_then(|v| section::<RawMetrics>(cx, v, "[metrics]"))
        .map(|r| MetricsSettings {
            listen: r
                .listen
                .as_ref()
                .and_then(|l| socket_addr(cx, l, "[metrics] listen", None)),
        })
        .unwrap_or_default();
    let mrt = mrt_v
        .and_then(|v| section::<RawMrt>(cx, v, "[mrt]"))
        .map(|r| MrtSettings {
            file: r
                .file
                .as_ref()
                .and_then(|f| path(cx, f, "[mrt] file", false)),
        })
        .unwrap_or_default();
    let log = log_v
        .and_then(|v| section::<RawLog>(cx, v, "[log]"))
        .map(|r| log(cx, &r))
        .unwrap_or_default();

    Some(Config {
        local_as: local_as?,
        router_id: router_id?,
        listen,
        hold_time,
        keepalive,
        graceful_restart_time,
        multipath,
        cluster_id,
        import,
        export,
        networks,
        peers,
        ranges,
        kernel,
        control,
        metrics,
        mrt,
        log,
    })
}

fn syntax_message(msg: &str) -> String {
    let msg = msg.trim();
    if msg.starts_with("duplicate key") {
        format!("TOML syntax: {msg}; a key may appear once per table: remove or rename one")
    } else {
        format!(
            "TOML syntax: {msg}; fix the syntax (strings need double quotes, tables [name], peers [[peer]])"
        )
    }
}

/// A top-level `[section]`.
fn section<T: DeserializeOwned>(cx: &mut Cx, v: S<DeValue<'_>>, name: &str) -> Option<T> {
    let span = v.span();
    match v.into_inner() {
        DeValue::Table(t) => de_table::<T>(cx, &t, &span, name).map(|(r, _)| r),
        other => {
            cx.err(
                &span,
                format!(
                    "`{}` must be a table, not {}; write it as a {name} section",
                    name.trim_matches(['[', ']']),
                    a_type(&other)
                ),
            );
            None
        }
    }
}

fn a_type(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// `[[name]]` entries, each deserialized on its own.
fn array_of_tables<T: DeserializeOwned>(
    cx: &mut Cx,
    v: Option<S<DeValue<'_>>>,
    name: &str,
) -> Vec<(T, Span)> {
    let Some(v) = v else { return vec![] };
    let span = v.span();
    let items = match v.into_inner() {
        DeValue::Array(a) => a,
        DeValue::Table(_) => {
            cx.err(
                &span,
                format!(
                    "`{name}` is a single table; write each entry as [[{name}]] (two brackets)"
                ),
            );
            return vec![];
        }
        other => {
            cx.err(
                &span,
                format!(
                    "`{name}` must be an array of tables, not {}; write each entry as a [[{name}]] section",
                    a_type(&other)
                ),
            );
            return vec![];
        }
    };
    let section = format!("[[{name}]]");
    let mut out = Vec::new();
    for item in items {
        let ispan = item.span();
        match item.into_inner() {
            DeValue::Table(t) => {
                if let Some((r, _)) = de_table::<T>(cx, &t, &ispan, &section) {
                    out.push((r, ispan));
                }
            }
            other => cx.err(
                &ispan,
                format!(
                    "each `{name}` entry must be a table, not {}; write it as a [[{name}]] section",
                    a_type(&other)
                ),
            ),
        }
    }
    out
}

struct Globals {
    local_as: u32,
    router_id: Option<Ipv4Addr>,
    hold_time: u16,
    keepalive: Option<u16>,
}

/// What `[[peer]]` and `[[range]]` tables share: the session template's
/// keys, borrowed from either.
struct RawSession<'a> {
    remote_as: &'a Option<S<i64>>,
    description: &'a Option<S<String>>,
    password: &'a Option<S<String>>,
    ttl_security: Option<bool>,
    hold_time: &'a Option<S<RawDuration>>,
    keepalive: &'a Option<S<RawDuration>>,
    families: &'a Option<S<Vec<S<String>>>>,
    add_path: &'a Option<S<Vec<S<String>>>>,
    required: &'a Option<S<Vec<S<String>>>>,
    max_prefix: &'a Option<S<RawMaxPrefix>>,
    import: &'a Option<S<RawImport>>,
    rr_client: Option<bool>,
    next_hop_self: Option<bool>,
    default_originate: Option<bool>,
    export: &'a Option<S<RawExport>>,
}

/// The shared keys of a raw `[[peer]]` or `[[range]]`.
macro_rules! raw_session {
    ($r:expr) => {
        RawSession {
            remote_as: &$r.remote_as,
            description: &$r.description,
            password: &$r.password,
            ttl_security: $r.ttl_security,
            hold_time: &$r.hold_time,
            keepalive: &$r.keepalive,
            families: &$r.families,
            add_path: &$r.add_path,
            required: &$r.required,
            max_prefix: &$r.max_prefix,
            import: &$r.import,
            rr_client: $r.rr_client,
            next_hop_self: $r.next_hop_self,
            default_originate: $r.default_originate,
            export: &$r.export,
        }
    };
}

/// The session template of a peer or range (`what` names the table in
/// messages).
fn session(cx: &mut Cx, g: &Globals, r: RawSession, span: &Span, what: &str) -> SessionConfig {
    let remote_as = r
        .remote_as
        .as_ref()
        .and_then(|v| asn(cx, v, "remote_as"))
        .unwrap_or(g.local_as);
    let password = r.password.as_ref().and_then(|p| password(cx, p));
    let (hold_time, keepalive) = timers(cx, g, r.hold_time, r.keepalive, span);
    let (families, add_path, required) = families(cx, r.families, r.add_path, r.required);
    let max_prefix = r.max_prefix.as_ref().and_then(|m| max_prefix(cx, m));
    let import = r
        .import
        .as_ref()
        .map(|i| import_policy(cx, i.get_ref(), &format!("{what} import")));
    let export = r
        .export
        .as_ref()
        .and_then(|e| export_policy(cx, e.get_ref(), &e.span()));
    let rr_client = r.rr_client.unwrap_or(false);
    if rr_client && remote_as != g.local_as {
        let at = r.remote_as.as_ref().map_or(span.clone(), |a| a.span());
        cx.err(&at, format!("`rr_client` with remote_as {remote_as}: route reflection is for iBGP peers (RFC 4456); remove `rr_client`, or make the peer iBGP (remote_as = {})", g.local_as));
    }
    SessionConfig {
        remote_as,
        description: r
            .description
            .as_ref()
            .map(|d| d.get_ref().clone())
            .unwrap_or_default(),
        password,
        ttl_security: r.ttl_security.unwrap_or(false),
        hold_time,
        keepalive,
        families,
        add_path,
        required,
        max_prefix,
        import,
        rr_client,
        next_hop_self: r.next_hop_self.unwrap_or(false),
        default_originate: r.default_originate.unwrap_or(false),
        export,
    }
}

/// The peer's address (when valid) and, when it has no error, the peer.
fn peer(
    cx: &mut Cx,
    g: &Globals,
    r: &RawPeer,
    span: &Span,
) -> (Option<IpAddr>, Option<PeerConfig>) {
    let n0 = cx.errors.len();
    let address = match &r.address {
        None => {
            cx.err(
                span,
                "[[peer]] has no `address`; add `address = \"A.B.C.D\"`, the peer's IP address",
            );
            None
        }
        Some(a) => peer_address(cx, a, "address"),
    };
    if let (Some(a), Some(id), Some(s)) = (address, g.router_id, &r.address)
        && a == IpAddr::V4(id)
    {
        cx.err(
            &s.span(),
            format!("peer {a} has this router's router_id as its address; a peer cannot be this router (and BIRD refuses a peer that shares its id): fix the address or choose another router_id"),
        );
    }
    let port = match &r.port {
        None => BGP_PORT,
        Some(p) => match *p.get_ref() {
            n @ 1..=65535 => n as u16,
            n => {
                cx.err(
                    &p.span(),
                    format!("`port` {n} is not a TCP port; use 1-65535 (default {BGP_PORT})"),
                );
                BGP_PORT
            }
        },
    };
    let connect_retry = opt_duration(
        cx,
        &r.connect_retry,
        "connect_retry",
        Duration::from_secs(5),
        1,
    );
    let idle_hold = opt_duration(cx, &r.idle_hold, "idle_hold", Duration::from_secs(1), 0);
    let source = r.source.as_ref().and_then(|s| ip(cx, s, "source"));
    if let (Some(a), Some(s), Some(raw)) = (address, source, &r.source)
        && a.is_ipv4() != s.is_ipv4()
    {
        cx.err(
            &raw.span(),
            format!("`source` {s} and the peer address {a} are of different families; use an {} source address", if a.is_ipv4() { "IPv4" } else { "IPv6" }),
        );
    }
    let interface = r.interface.as_ref().and_then(|i| interface(cx, i));
    let session = session(cx, g, raw_session!(r), span, "[[peer]]");
    if cx.errors.len() > n0 {
        return (address, None);
    }
    let Some(address) = address else {
        return (None, None);
    };
    let p = PeerConfig {
        address,
        port,
        passive: r.passive.unwrap_or(false),
        connect_retry,
        idle_hold,
        source,
        interface,
        session,
    };
    (Some(address), Some(p))
}

fn range(
    cx: &mut Cx,
    g: &Globals,
    r: &RawRange,
    span: &Span,
) -> (Option<IpNet>, Option<RangeConfig>) {
    let n0 = cx.errors.len();
    let prefix = match &r.prefix {
        None => {
            cx.err(span, "[[range]] has no `prefix`; add `prefix = \"A.B.C.0/24\"`, the network the neighbours connect from");
            None
        }
        Some(p) => prefix(cx, p, "prefix"),
    };
    let limit = match &r.limit {
        None => DEFAULT_RANGE_LIMIT,
        Some(l) => match *l.get_ref() {
            n @ 1..=0xffff_ffff => n as u32,
            n => {
                cx.err(
                    &l.span(),
                    format!("range `limit` {n} admits no neighbour; set 1 or more (default {DEFAULT_RANGE_LIMIT})"),
                );
                DEFAULT_RANGE_LIMIT
            }
        },
    };
    let session = session(cx, g, raw_session!(r), span, "[[range]]");
    if cx.errors.len() > n0 {
        return (prefix, None);
    }
    let Some(prefix) = prefix else {
        return (None, None);
    };
    (
        Some(prefix),
        Some(RangeConfig {
            prefix,
            limit,
            session,
        }),
    )
}

/// A peer's hold time and keepalive, inheriting the global ones.
fn timers(
    cx: &mut Cx,
    g: &Globals,
    hold_raw: &Option<S<RawDuration>>,
    ka_raw: &Option<S<RawDuration>>,
    span: &Span,
) -> (u16, Option<u16>) {
    let hold_time = hold_raw
        .as_ref()
        .and_then(|h| hold(cx, h, "hold_time"))
        .unwrap_or(g.hold_time);
    let own_ka = ka_raw.as_ref().and_then(|k| secs_u16(cx, k, "keepalive"));
    let keepalive = own_ka.or(g.keepalive);
    if let Some(k) = keepalive {
        let at = ka_raw
            .as_ref()
            .map(|k| k.span())
            .or_else(|| hold_raw.as_ref().map(|h| h.span()))
            .unwrap_or_else(|| span.clone());
        // The global pair was checked already; check what the peer changed.
        if own_ka.is_some() || hold_raw.is_some() {
            check_keepalive(cx, k, hold_time, &at);
        }
    }
    (hold_time, keepalive)
}

fn check_keepalive(cx: &mut Cx, k: u16, hold: u16, at: &Span) {
    if hold == 0 {
        return; // no keepalives are sent with hold time 0
    }
    if k == 0 || k >= hold {
        cx.err(
            at,
            format!("keepalive {k}s must be at least 1s and less than the hold time {hold}s; use a third of the hold time ({}s) or leave keepalive out", hold / 3),
        );
    }
}

fn families(
    cx: &mut Cx,
    fams: &Option<S<Vec<S<String>>>>,
    add_path: &Option<S<Vec<S<String>>>>,
    required: &Option<S<Vec<S<String>>>>,
) -> (Vec<Family>, Vec<Family>, Vec<RequiredCapability>) {
    let list = |cx: &mut Cx, v: &S<Vec<S<String>>>, key: &str| -> Vec<Family> {
        let mut out = Vec::new();
        for s in v.get_ref() {
            match Family::from_name(s.get_ref()) {
                Some(f) if out.contains(&f) => {
                    cx.err(&s.span(), format!("`{key}` names {f} twice; remove one"))
                }
                Some(f) => out.push(f),
                None => {
                    let hint = closest(s.get_ref(), &["ipv4-unicast", "ipv6-unicast"])
                        .or(match s.get_ref().as_str() {
                            "ipv4" | "inet" | "ip" => Some("ipv4-unicast"),
                            "ipv6" | "inet6" => Some("ipv6-unicast"),
                            _ => None,
                        })
                        .map(|c| format!(" (did you mean `{c}`?)"))
                        .unwrap_or_default();
                    cx.err(
                        &s.span(),
                        format!("unknown family `{}` in `{key}`{hint}; bgpd carries \"ipv4-unicast\" and \"ipv6-unicast\"", s.get_ref()),
                    )
                }
            }
        }
        out
    };
    let families = match fams {
        None => Family::ALL.to_vec(),
        Some(v) => {
            let f = list(cx, v, "families");
            if v.get_ref().is_empty() {
                cx.err(&v.span(), "`families` is empty; name at least one of \"ipv4-unicast\", \"ipv6-unicast\" (or leave it out for both)");
            }
            f
        }
    };
    let add_path = match add_path {
        None => families.clone(),
        Some(v) => {
            let ap = list(cx, v, "add_path");
            for (f, s) in ap.iter().zip(v.get_ref()) {
                if !families.contains(f) {
                    cx.err(&s.span(), format!("`add_path` names {f}, which is not in `families`; add it to `families` or remove it here"));
                }
            }
            ap
        }
    };
    let mut req = Vec::new();
    if let Some(v) = required {
        for s in v.get_ref() {
            match RequiredCapability::from_name(s.get_ref()) {
                Some(c) if !req.contains(&c) => req.push(c),
                Some(c) => cx.err(
                    &s.span(),
                    format!("`required` names {} twice; remove one", c.name()),
                ),
                None => {
                    let names: Vec<&str> =
                        RequiredCapability::ALL.iter().map(|c| c.name()).collect();
                    let hint = closest(s.get_ref(), &names)
                        .map(|c| format!(" (did you mean `{c}`?)"))
                        .unwrap_or_default();
                    cx.err(
                        &s.span(),
                        format!(
                            "unknown capability `{}` in `required`{hint}; use one of: {}",
                            s.get_ref(),
                            names.join(", ")
                        ),
                    )
                }
            }
        }
    }
    (families, add_path, req)
}

fn max_prefix(cx: &mut Cx, m: &S<RawMaxPrefix>) -> Option<MaxPrefix> {
    let r = m.get_ref();
    let limit = match &r.limit {
        None => {
            cx.err(
                &m.span(),
                "`max_prefix` has no `limit`; add `limit = N`, the most prefixes the peer may send",
            );
            return None;
        }
        Some(l) => match *l.get_ref() {
            n @ 1..=0xffff_ffff => n as u32,
            0 => {
                cx.err(&l.span(), "max_prefix `limit` 0 would refuse every route; set the largest number of prefixes to accept, or remove max_prefix for no limit");
                return None;
            }
            n => {
                cx.err(
                    &l.span(),
                    format!("max_prefix `limit` {n} is out of range; use 1 to 4294967295"),
                );
                return None;
            }
        },
    };
    let warning_percent = match &r.warning_percent {
        None => DEFAULT_WARNING_PERCENT,
        Some(w) => match *w.get_ref() {
            n @ 1..=100 => n as u8,
            n => {
                cx.err(&w.span(), format!("`warning_percent` {n} is not a percentage of the limit; use 1 to 100 (default {DEFAULT_WARNING_PERCENT})"));
                return None;
            }
        },
    };
    let restart_after = match &r.restart_after {
        None => None,
        Some(d) => {
            let s = secs(cx, d, "restart_after")?;
            if s == 0 {
                cx.err(&d.span(), "`restart_after` 0 would reconnect at once and flap; give a time such as \"5m\", or leave it out to stay down until a reset");
                return None;
            }
            Some(Duration::from_secs(s))
        }
    };
    Some(MaxPrefix {
        limit,
        warning_percent,
        restart_after,
    })
}

fn import_policy(cx: &mut Cx, r: &RawImport, _where: &str) -> ImportPolicy {
    let list = |cx: &mut Cx, v: &Option<Vec<S<RawPrefixMatch>>>, key: &str| -> Vec<PrefixMatch> {
        v.iter()
            .flatten()
            .filter_map(|m| prefix_match(cx, m, key))
            .collect()
    };
    ImportPolicy {
        allow: list(cx, &r.allow, "allow"),
        deny: list(cx, &r.deny, "deny"),
        allow_default_route: r.allow_default_route.unwrap_or(false),
        allow_connected: r.allow_connected.unwrap_or(false),
    }
}

fn export_policy(cx: &mut Cx, r: &RawExport, span: &Span) -> Option<ExportPolicy> {
    let n0 = cx.errors.len();
    let list = |cx: &mut Cx, v: &Option<Vec<S<RawPrefixMatch>>>, key: &str| -> Vec<PrefixMatch> {
        v.iter()
            .flatten()
            .filter_map(|m| prefix_match(cx, m, key))
            .collect()
    };
    fn parsed<T: std::str::FromStr<Err = String>>(
        cx: &mut Cx,
        v: &Option<Vec<S<String>>>,
    ) -> Vec<T> {
        let mut out = Vec::new();
        for s in v.iter().flatten() {
            match s.get_ref().trim().parse() {
                Ok(c) => out.push(c),
                Err(e) => cx.err(&s.span(), e),
            }
        }
        out
    }
    let allow = list(cx, &r.allow, "allow");
    let deny = list(cx, &r.deny, "deny");
    // A policy that can send nothing is a mistake: each allow entry
    // inside a deny entry.
    if !allow.is_empty() && allow.iter().all(|a| deny.iter().any(|d| d.covers(a))) {
        cx.err(span, "this export policy sends nothing: every `allow` entry is inside a `deny` entry; remove the deny entry, or the policy");
    }
    let mut set = Actions::default();
    if let Some(a) = &r.set {
        let a = a.get_ref();
        let num = |cx: &mut Cx, v: &Option<S<i64>>, key: &str, max: i64| -> Option<i64> {
            let v = v.as_ref()?;
            match *v.get_ref() {
                n if (0..=max).contains(&n) => Some(n),
                n => {
                    cx.err(
                        &v.span(),
                        format!("`{key}` {n} is out of range; use 0 to {max}"),
                    );
                    None
                }
            }
        };
        set.local_pref = num(cx, &a.local_pref, "local_pref", u32::MAX as i64).map(|n| n as u32);
        set.med = num(cx, &a.med, "med", u32::MAX as i64).map(|n| n as u32);
        set.prepend = num(cx, &a.prepend, "prepend", 32).map(|n| n as u8);
        set.add_communities = parsed(cx, &a.add_communities);
        set.add_large_communities = parsed(cx, &a.add_large_communities);
        set.next_hop = a.next_hop.as_ref().and_then(|v| {
            if v.get_ref() == "self" {
                Some(NextHopAction::Myself)
            } else {
                ip(cx, v, "next_hop").map(NextHopAction::Address)
            }
        });
    }
    let p = ExportPolicy {
        allow,
        deny,
        communities: parsed(cx, &r.communities),
        large_communities: parsed(cx, &r.large_communities),
        set,
    };
    (cx.errors.len() == n0).then_some(p)
}

fn prefix_match(cx: &mut Cx, m: &S<RawPrefixMatch>, key: &str) -> Option<PrefixMatch> {
    let span = m.span();
    let (p, ge, le) = match m.get_ref() {
        RawPrefixMatch::Table(t) => {
            let Some(p) = &t.prefix else {
                cx.err(&span, format!("an `{key}` entry has no `prefix`; write {{ prefix = \"172.16.0.0/16\", le = 32 }}"));
                return None;
            };
            let prefix = prefix(cx, p, key)?;
            let len = |cx: &mut Cx, v: &Option<S<i64>>, what: &str| -> Result<Option<u8>, ()> {
                match v {
                    None => Ok(None),
                    Some(n) => check_len(cx, *n.get_ref(), prefix, what, &n.span()).map(Some),
                }
            };
            let ge = len(cx, &t.ge, "ge").ok()?;
            let le = len(cx, &t.le, "le").ok()?;
            (prefix, ge, le)
        }
        RawPrefixMatch::Text(s) => {
            let mut words = s.split_whitespace();
            let p = words.next().unwrap_or("");
            let prefix = parse_prefix(cx, p, key, &span)?;
            let (mut ge, mut le) = (None, None);
            let form = format!(
                "write \"{} le 32\" or {{ prefix = \"{}\", le = 32 }}",
                prefix, prefix
            );
            while let Some(w) = words.next() {
                let n = words.next().and_then(|n| n.parse::<i64>().ok());
                match (w, n) {
                    ("ge", Some(n)) if ge.is_none() => {
                        ge = Some(check_len(cx, n, prefix, "ge", &span).ok()?)
                    }
                    ("le", Some(n)) if le.is_none() => {
                        le = Some(check_len(cx, n, prefix, "le", &span).ok()?)
                    }
                    _ => {
                        cx.err(&span, format!("cannot read `{key}` entry \"{s}\"; {form}"));
                        return None;
                    }
                }
            }
            (prefix, ge, le)
        }
    };
    if let (Some(g), Some(l)) = (ge, le)
        && g > l
    {
        cx.err(
            &span,
            format!("`{key}` entry {p} has ge {g} greater than le {l}; ge must not exceed le"),
        );
        return None;
    }
    Some(PrefixMatch { prefix: p, ge, le })
}

fn check_len(cx: &mut Cx, n: i64, p: IpNet, what: &str, span: &Span) -> Result<u8, ()> {
    let max = i64::from(p.max_prefix_len());
    let min = i64::from(p.prefix_len());
    if (min..=max).contains(&n) {
        Ok(n as u8)
    } else {
        cx.err(
            span,
            format!("`{what} {n}` does not fit prefix {p}; it must be between {min} (the prefix's length) and {max}"),
        );
        Err(())
    }
}

fn kernel(cx: &mut Cx, r: &RawKernel) -> KernelSettings {
    let d = KernelSettings::default();
    let table = match &r.table {
        None => d.table,
        Some(t) => match t.get_ref() {
            RawTable(IntOrText::Text(n)) if n == "main" => TABLE_MAIN,
            RawTable(IntOrText::Text(n)) => match n.parse::<i64>() {
                Ok(v) => table_num(cx, v, &t.span()).unwrap_or(d.table),
                Err(_) => {
                    cx.err(&t.span(), format!("unknown table \"{n}\"; write \"main\" or a table number (1-4294967295, not 255 `local`)"));
                    d.table
                }
            },
            RawTable(IntOrText::Int(v)) => table_num(cx, *v, &t.span()).unwrap_or(d.table),
        },
    };
    let protocol = match &r.protocol {
        None => d.protocol,
        Some(p) => match *p.get_ref() {
            n @ 5..=255 => n as u8,
            n @ 0..=4 => {
                cx.err(&p.span(), format!("`protocol` {n} is reserved by the kernel (0 unspec, 1 redirect, 2 kernel, 3 boot, 4 static) and bgpd would replace such routes; use 186 (\"bgp\", the default)"));
                d.protocol
            }
            n => {
                cx.err(&p.span(), format!("`protocol` {n} is out of range; use 5-255 (default 186, \"bgp\" in /etc/iproute2/rt_protos)"));
                d.protocol
            }
        },
    };
    let metric = match &r.metric {
        None => d.metric,
        Some(m) => match u32::try_from(*m.get_ref()) {
            Ok(v) => v,
            Err(_) => {
                cx.err(
                    &m.span(),
                    format!(
                        "`metric` {} is out of range; use 0-4294967295 (default 20)",
                        m.get_ref()
                    ),
                );
                d.metric
            }
        },
    };
    let nexthop_probe_ms = match &r.nexthop_probe_ms {
        None => d.nexthop_probe_ms,
        Some(m) => match *m.get_ref() {
            n @ (0 | 100..=60_000) => n as u32,
            n => {
                cx.err(
                    &m.span(),
                    format!("`nexthop_probe_ms` {n} is out of range; use 100-60000 milliseconds (default 500), or 0 to stop probing next hops"),
                );
                d.nexthop_probe_ms
            }
        },
    };
    KernelSettings {
        install: r.install.unwrap_or(d.install),
        table,
        protocol,
        metric,
        nexthop_probe_ms,
        nexthop_objects: r.nexthop_objects.unwrap_or(d.nexthop_objects),
        graceful_restart_keep: opt_duration(
            cx,
            &r.graceful_restart_keep,
            "graceful_restart_keep",
            d.graceful_restart_keep,
            0,
        ),
        reconcile_interval: opt_duration(
            cx,
            &r.reconcile_interval,
            "reconcile_interval",
            d.reconcile_interval,
            0,
        ),
        resolve_via_default: r.resolve_via_default.unwrap_or(d.resolve_via_default),
    }
}

fn table_num(cx: &mut Cx, v: i64, span: &Span) -> Option<u32> {
    match v {
        255 => {
            cx.err(span, "table 255 is the kernel's `local` table; use \"main\" (254) or a table of your own");
            None
        }
        1..=0xffff_ffff => Some(v as u32),
        _ => {
            cx.err(
                span,
                format!("table {v} is out of range; use \"main\" or 1-4294967295"),
            );
            None
        }
    }
}

fn control(cx: &mut Cx, r: &RawControl) -> ControlSettings {
    let d = ControlSettings::default();
    ControlSettings {
        enabled: r.enabled.unwrap_or(d.enabled),
        socket: r
            .socket
            .as_ref()
            .and_then(|s| path(cx, s, "[control] socket", true))
            .unwrap_or(d.socket),
        group: r.group.as_ref().and_then(|g| {
            let s = g.get_ref();
            if s.is_empty() || s.contains(char::is_whitespace) || s.contains(':') {
                cx.err(&g.span(), format!("`group` \"{s}\" is not a group name; write a group from /etc/group, such as \"bgpd\""));
                None
            } else {
                Some(s.clone())
            }
        }),
    }
}

fn log(cx: &mut Cx, r: &RawLog) -> LogSettings {
    let Some(l) = &r.level else {
        return LogSettings::default();
    };
    let s = l.get_ref().trim();
    match super::log_filter(s) {
        Some(_) => LogSettings {
            level: s.to_string(),
        },
        None => {
            cx.err(&l.span(), format!("`level` \"{s}\" is not a log level; use error, warn, info, debug or trace, or a filter such as \"info,bgpd::fib=debug\""));
            LogSettings::default()
        }
    }
}

// ---------------------------------------------------------------------
// Values

fn asn(cx: &mut Cx, v: &S<i64>, key: &str) -> Option<u32> {
    match *v.get_ref() {
        0 => cx.err(&v.span(), format!("`{key}` 0 is reserved (RFC 7607) and cannot be used; write the AS number, e.g. 64512 (Calico's default)")),
        23456 => cx.err(&v.span(), format!("`{key}` 23456 is AS_TRANS (RFC 6793), not a real AS; write the actual 4-octet AS number")),
        n @ 1..=0xffff_ffff => return Some(n as u32),
        n => cx.err(&v.span(), format!("`{key}` {n} is out of range; an AS number is 1 to 4294967295")),
    }
    None
}

fn router_id(cx: &mut Cx, v: &S<String>) -> Option<Ipv4Addr> {
    let s = v.get_ref().trim();
    match s.parse::<Ipv4Addr>() {
        Ok(a) if a.is_unspecified() => {
            cx.err(&v.span(), "`router_id` 0.0.0.0 is not a valid BGP identifier; use an IPv4 address of this router that no peer uses");
            None
        }
        Ok(a) => Some(a),
        Err(_) => {
            let why = if s.parse::<std::net::Ipv6Addr>().is_ok() {
                "a router id is 4 octets, even on an IPv6-only router"
            } else {
                "it is not an IPv4 address"
            };
            cx.err(&v.span(), format!("`router_id` \"{s}\": {why}; write an IPv4 address of this router, such as \"192.168.83.1\""));
            None
        }
    }
}

fn ip(cx: &mut Cx, v: &S<String>, key: &str) -> Option<IpAddr> {
    let s = v.get_ref().trim();
    match s.parse::<IpAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            let fix = if s.contains('/') {
                "drop the /length: an address is expected here, not a prefix".to_string()
            } else {
                "write an IPv4 address such as 192.168.83.36 or an IPv6 address such as 2001:db8::1"
                    .to_string()
            };
            cx.err(
                &v.span(),
                format!("`{key}` \"{s}\" is not an IP address; {fix}"),
            );
            None
        }
    }
}

fn peer_address(cx: &mut Cx, v: &S<String>, key: &str) -> Option<IpAddr> {
    let a = ip(cx, v, key)?;
    let bad = match a {
        IpAddr::V4(v4) if v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast() => {
            Some("is not a unicast address; write the peer's own address".to_string())
        }
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => Some(format!(
            "is an IPv4-mapped address; write the IPv4 address {}",
            v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED)
        )),
        IpAddr::V6(v6) if v6.is_unspecified() || v6.is_multicast() => {
            Some("is not a unicast address; write the peer's own address".to_string())
        }
        _ => None,
    };
    if let Some(b) = bad {
        cx.err(&v.span(), format!("`{key}` {a} {b}"));
        return None;
    }
    Some(a)
}

fn prefix(cx: &mut Cx, v: &S<String>, key: &str) -> Option<IpNet> {
    parse_prefix(cx, v.get_ref(), key, &v.span())
}

fn parse_prefix(cx: &mut Cx, s: &str, key: &str, span: &Span) -> Option<IpNet> {
    let s = s.trim();
    match s.parse::<IpNet>() {
        Ok(p) if p.trunc() != p => {
            cx.err(
                span,
                format!("`{key}` {p} has host bits set; write the network {} (or {}/{} for one address)", p.trunc(), p.addr(), p.max_prefix_len()),
            );
            None
        }
        Ok(p) => Some(p),
        Err(_) => {
            let fix = match s.parse::<IpAddr>() {
                Ok(a) => format!(
                    "it has no length: write {a}/{} for one address, or the network with its length",
                    if a.is_ipv4() { 32 } else { 128 }
                ),
                Err(_) => "write a network and its length, such as 172.16.0.0/16".to_string(),
            };
            cx.err(span, format!("`{key}` \"{s}\" is not a prefix; {fix}"));
            None
        }
    }
}

/// `ADDR:PORT`, `[V6]:PORT`, or with `default_port` a bare address.
fn socket_addr(
    cx: &mut Cx,
    v: &S<String>,
    key: &str,
    default_port: Option<u16>,
) -> Option<SocketAddr> {
    let s = v.get_ref().trim();
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    if let (Some(port), Ok(ip)) = (default_port, s.trim_matches(['[', ']']).parse::<IpAddr>()) {
        return Some(SocketAddr::new(ip, port));
    }
    let example = if default_port.is_some() {
        "\"0.0.0.0:179\", \"[::]:179\" or an address alone (port 179)"
    } else {
        "\"127.0.0.1:9179\" or \"[::1]:9179\""
    };
    cx.err(
        &v.span(),
        format!("`{key}` \"{s}\" is not an address and port; write it as {example}"),
    );
    None
}

fn password(cx: &mut Cx, v: &S<String>) -> Option<String> {
    let p = v.get_ref();
    if p.is_empty() {
        cx.err(
            &v.span(),
            "`password` is empty; remove the key to run without TCP-MD5, or give the shared secret",
        );
        None
    } else if p.len() > MAX_PASSWORD {
        cx.err(
            &v.span(),
            format!("`password` is {} bytes; Linux TCP-MD5 keys are at most {MAX_PASSWORD} bytes: shorten it (on both sides)", p.len()),
        );
        None
    } else {
        Some(p.clone())
    }
}

fn interface(cx: &mut Cx, v: &S<String>) -> Option<String> {
    let s = v.get_ref();
    if s.is_empty() || s.len() > 15 || s.contains(['/', ' ', '\t']) || s == "." || s == ".." {
        cx.err(&v.span(), format!("`interface` \"{s}\" is not an interface name; Linux names have 1-15 characters without '/' or spaces, such as \"eth0\""));
        None
    } else {
        Some(s.clone())
    }
}

fn path(cx: &mut Cx, v: &S<String>, key: &str, absolute: bool) -> Option<PathBuf> {
    let s = v.get_ref();
    if s.is_empty() {
        cx.err(
            &v.span(),
            format!("`{key}` is empty; give a file path, or remove the key"),
        );
        None
    } else if absolute && !s.starts_with('/') {
        cx.err(&v.span(), format!("`{key}` \"{s}\" is relative; write an absolute path such as {DEFAULT_CONTROL_SOCKET}"));
        None
    } else {
        Some(PathBuf::from(s))
    }
}

/// A duration in whole seconds.
fn secs(cx: &mut Cx, v: &S<RawDuration>, key: &str) -> Option<u64> {
    let fix =
        "write whole seconds (90) or a number with a unit s, m or h (\"90s\", \"2m\", \"1m30s\")";
    match v.get_ref() {
        RawDuration(IntOrText::Int(n)) if *n >= 0 => Some(*n as u64),
        RawDuration(IntOrText::Int(n)) => {
            cx.err(&v.span(), format!("`{key}` {n} is negative; {fix}"));
            None
        }
        RawDuration(IntOrText::Text(t)) => match parse_duration(t) {
            Some(s) => Some(s),
            None => {
                cx.err(
                    &v.span(),
                    format!("`{key}` \"{t}\" is not a duration; {fix}"),
                );
                None
            }
        },
    }
}

fn secs_u16(cx: &mut Cx, v: &S<RawDuration>, key: &str) -> Option<u16> {
    let s = secs(cx, v, key)?;
    match u16::try_from(s) {
        Ok(n) => Some(n),
        Err(_) => {
            cx.err(
                &v.span(),
                format!("`{key}` {s}s is too long; BGP carries at most 65535 seconds"),
            );
            None
        }
    }
}

fn hold(cx: &mut Cx, v: &S<RawDuration>, key: &str) -> Option<u16> {
    let s = secs_u16(cx, v, key)?;
    if s == 1 || s == 2 {
        cx.err(
            &v.span(),
            format!("`{key}` {s}s is not allowed (RFC 4271 §4.2: 0 or at least 3 seconds) and peers refuse it; use 3 or more (default 90; BIRD uses 240), or 0 to disable keepalives"),
        );
        return None;
    }
    Some(s)
}

fn opt_duration(
    cx: &mut Cx,
    v: &Option<S<RawDuration>>,
    key: &str,
    default: Duration,
    min: u64,
) -> Duration {
    match v {
        None => default,
        Some(d) => match secs(cx, d, key) {
            Some(s) if s >= min => Duration::from_secs(s),
            Some(s) => {
                cx.err(
                    &d.span(),
                    format!("`{key}` {s}s is too short; use at least {min}s"),
                );
                default
            }
            None => default,
        },
    }
}
