//! Configurations and launchers for the real peers bgpd is tested against:
//! BIRD 1.6 configured as calico-node v3.8 renders it, BIRD 2, FRR, GoBGP
//! and ExaBGP.
#![allow(dead_code)]

use std::time::Duration;

use super::netns::{Lab, require};

/// BIRD 2 is unpacked beside BIRD 1.6 (the packages conflict); .ci/setup
/// puts it in /opt/bird2, or BIRD2_DIR says where.
pub fn bird2_dir() -> String {
    std::env::var("BIRD2_DIR").unwrap_or_else(|_| "/opt/bird2".into())
}

pub fn have_bird2() -> bool {
    require(
        std::path::Path::new(&format!("{}/usr/sbin/bird", bird2_dir())).exists(),
        "BIRD 2 is not unpacked in /opt/bird2 (run .ci/setup or set BIRD2_DIR)",
    )
}

pub fn have_all(programs: &[&str]) -> bool {
    super::require_programs(programs)
}

/// A BGP neighbour line for the Calico config.
pub struct CalicoPeer<'a> {
    pub name: &'a str,
    pub addr: &'a str,
    /// The core and the workers are rr clients of a reflector.
    pub rr_client: bool,
    pub extra: &'a str,
}

/// BIRD 1.6 config as calico-node v3.8's confd renders it (see
/// ../shared/guide/calico.md): blackhole statics for the node's blocks and
/// the service range, the export filter, and the bgp template with add
/// paths and graceful restart. `cluster_id` makes the node a reflector.
pub fn calico_bird(
    router_id: &str,
    blocks: &[&str],
    cluster_id: Option<&str>,
    peers: &[CalicoPeer],
) -> String {
    let mut s = String::new();
    s += "log stderr all;\n";
    s += &format!("router id {router_id};\n");
    s += "protocol static {\n";
    for b in blocks {
        s += &format!("  route {b} blackhole;\n");
    }
    s += "  route 172.16.0.0/16 blackhole;\n}\n";
    s += "function calico_aggr ()\n{\n";
    for b in blocks {
        s += &format!(
            "  if ( net = {b} ) then {{ accept; }}\n  if ( net ~ {b} ) then {{ reject; }}\n"
        );
    }
    s += "}\n";
    s += r#"filter calico_export_to_bgp_peers {
  calico_aggr();
  if ( net ~ 172.15.0.0/16 ) then { accept; }
  if ( net ~ 172.16.0.0/16 ) then { accept; }
  reject;
}
protocol kernel {
  learn; persist; scan time 2; import all; export none; graceful restart;
}
protocol device { scan time 2; }
protocol direct { interface -"cali*", "*"; }
"#;
    s += &format!(
        r#"template bgp bgp_template {{
  description "Connection to BGP peer";
  local as 64512;
  multihop;
  gateway recursive;
  import all;
  export filter calico_export_to_bgp_peers;
  source address {router_id};
  add paths on;
  graceful restart;
  connect delay time 2;
  connect retry time 5;
  error wait time 5,30;
}}
"#
    );
    for p in peers {
        s += &format!(
            "protocol bgp {} from bgp_template {{\n  neighbor {} as 64512;\n",
            p.name, p.addr
        );
        if p.rr_client
            && let Some(c) = cluster_id
        {
            s += &format!("  rr client;\n  rr cluster id {c};\n");
        }
        s += p.extra;
        s += "}\n";
    }
    s
}

/// Starts BIRD 1.6 (`-R`, as calico-node does) with a config.
pub fn start_bird1(lab: &mut Lab, ns: &str, name: &str, config: &str) -> String {
    let cfg = lab.write(&format!("{name}.conf"), config);
    let sock = lab
        .path(&format!("{name}.ctl"))
        .to_string_lossy()
        .to_string();
    lab.spawn(
        ns,
        name,
        &[
            "bird",
            "-f",
            "-R",
            "-c",
            &cfg.to_string_lossy(),
            "-s",
            &sock,
        ],
        &[],
    );
    sock
}

pub fn start_bird2(lab: &mut Lab, ns: &str, name: &str, config: &str) -> String {
    let cfg = lab.write(&format!("{name}.conf"), config);
    let sock = lab
        .path(&format!("{name}.ctl"))
        .to_string_lossy()
        .to_string();
    let bin = format!("{}/usr/sbin/bird", bird2_dir());
    lab.spawn(
        ns,
        name,
        &[&bin, "-f", "-c", &cfg.to_string_lossy(), "-s", &sock],
        &[],
    );
    sock
}

/// `birdc show protocols` for BIRD 1.6 or 2.
pub fn birdc(lab: &Lab, ns: &str, sock: &str, cmd: &str, bird2: bool) -> String {
    let bin = if bird2 {
        format!("{}/usr/sbin/birdc", bird2_dir())
    } else {
        "birdc".into()
    };
    lab.sh_text(ns, &format!("{bin} -s {sock} {cmd}"))
}

/// Starts FRR's zebra and bgpd directly, as lab-notes.md describes.
pub fn start_frr(lab: &mut Lab, ns: &str, name: &str, bgpd_conf: &str) -> String {
    let dir = lab.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_string_lossy().to_string();
    std::fs::write(
        dir.join("zebra.conf"),
        "hostname zebra\nlog stdout informational\n",
    )
    .unwrap();
    std::fs::write(dir.join("bgpd.conf"), bgpd_conf).unwrap();
    lab.sh(ns, &format!("chown -R frr:frr {d} && chmod 755 {d}"));
    let inst = format!("{}{name}", lab.tag);
    let z = format!("{d}/zserv.api");
    lab.spawn(
        ns,
        &format!("{name}-zebra"),
        &[
            "/usr/lib/frr/zebra",
            "-N",
            &inst,
            "-f",
            &format!("{d}/zebra.conf"),
            "-z",
            &z,
            "-i",
            &format!("{d}/zebra.pid"),
            "--vty_socket",
            &d,
            "-u",
            "frr",
            "-g",
            "frr",
        ],
        &[],
    );
    lab.wait_for("zebra's socket", Duration::from_secs(15), || {
        std::path::Path::new(&z).exists()
    });
    lab.spawn(
        ns,
        name,
        &[
            "/usr/lib/frr/bgpd",
            "-N",
            &inst,
            "-f",
            &format!("{d}/bgpd.conf"),
            "-z",
            &z,
            "-i",
            &format!("{d}/bgpd.pid"),
            "--vty_socket",
            &d,
            "-u",
            "frr",
            "-g",
            "frr",
        ],
        &[],
    );
    d
}

pub fn vtysh(lab: &Lab, ns: &str, dir: &str, cmd: &str) -> String {
    lab.sh_text(ns, &format!("vtysh --vty_socket {dir} -d bgpd -c '{cmd}'"))
}

pub fn start_gobgp(lab: &mut Lab, ns: &str, name: &str, toml: &str) {
    let cfg = lab.write(&format!("{name}.toml"), toml);
    lab.spawn(
        ns,
        name,
        &[
            "gobgpd",
            "-f",
            &cfg.to_string_lossy(),
            "-t",
            "toml",
            "--api-hosts",
            "127.0.0.1:50051",
        ],
        &[],
    );
}

pub fn gobgp(lab: &Lab, ns: &str, cmd: &str) -> String {
    lab.sh_text(ns, &format!("gobgp -p 50051 {cmd}"))
}

pub fn start_exabgp(lab: &mut Lab, ns: &str, name: &str, conf: &str) {
    let cfg = lab.write(&format!("{name}.conf"), conf);
    lab.spawn(
        ns,
        name,
        &["exabgp", &cfg.to_string_lossy()],
        &[
            ("exabgp.daemon.user", "root"),
            ("exabgp.log.destination", "stdout"),
            ("exabgp.log.level", "DEBUG"),
            ("exabgp.log.all", "true"),
            ("exabgp.daemon.daemonize", "false"),
        ],
    );
}
