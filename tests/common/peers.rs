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
/// The rendering itself is tests/lab/calico-bird.sh, the one the seed lab
/// and the fixture captures use too.
pub fn calico_bird(
    router_id: &str,
    blocks: &[&str],
    cluster_id: Option<&str>,
    peers: &[CalicoPeer],
) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lab/calico-bird.sh");
    let render = |body: &str, args: &[&str]| -> String {
        let o = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("set -e; source {script}; {body}"))
            .arg("calico-bird")
            .args(args)
            .output()
            .expect("bash");
        assert!(
            o.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).expect("utf-8")
    };
    let mut args = vec![router_id];
    args.extend_from_slice(blocks);
    let mut s = render("calico_bird \"$@\"", &args);
    for p in peers {
        let (rr, cluster) = match (p.rr_client, cluster_id) {
            (true, Some(c)) => ("rr-client", c),
            _ => ("", ""),
        };
        let extra = p.extra.trim_end_matches('\n');
        s += &render("bird_peer \"$@\"", &[p.name, p.addr, rr, cluster, extra]);
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
