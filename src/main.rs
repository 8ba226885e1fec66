use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;

use bgpd::cli::{decode, show, view};
use bgpd::config::{Config, Flags, PeerArg, RangeArg};
use bgpd::control::Request;
use bgpd::wire::{AfiSafi, AfiSafiSet};

/// bgpd: a BGP speaker that takes over a LAN core switch's job of learning
/// Calico's pod and service routes and installing them into Linux.
///
/// Foreground view, no config file:
///   bgpd --asn 64512 --peer 192.168.83.36 --peer 192.168.83.49
#[derive(Parser, Debug)]
#[command(version, about, long_about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Run the daemon from this configuration file (TOML; see
    /// docs/configuration.md). Logs go to stderr (journald under systemd).
    #[arg(long, short = 'c', value_name = "FILE", conflicts_with_all = ["peer", "asn", "listen_range"])]
    config: Option<PathBuf>,
    /// A peer to connect to and accept:
    /// ADDR[,as=N][,passive][,password=SECRET][,ttl-security][,port=N][,source=ADDR][,interface=IF][,rr-client][,next-hop-self][,default-originate].
    /// Without as=N the peer is in our AS (iBGP). rr-client: reflect iBGP
    /// routes to it (RFC 4456). May be repeated.
    #[arg(long, value_name = "PEER")]
    peer: Vec<PeerArg>,
    /// Our AS number.
    #[arg(long, value_name = "N")]
    asn: Option<u32>,
    /// Our BGP identifier. Default: our IPv4 source address towards the
    /// first peer. It must differ from every reflector's.
    #[arg(long, value_name = "A.B.C.D")]
    router_id: Option<Ipv4Addr>,
    /// Accept dynamic iBGP peers from any address in this prefix (like
    /// Cisco's `bgp listen range`): PREFIX[,rr-client]. May be repeated.
    #[arg(long, value_name = "PREFIX")]
    listen_range: Vec<RangeArg>,
    /// Announce this prefix to the peers (like Cisco's `network`). May be
    /// repeated.
    #[arg(long, value_name = "PREFIX")]
    network: Vec<IpNet>,
    /// The route reflector's CLUSTER_ID (RFC 4456). Default: the router id.
    #[arg(long, value_name = "A.B.C.D")]
    cluster_id: Option<Ipv4Addr>,
    /// Addresses to listen on. Default: [::]:179 and 0.0.0.0:179.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Vec<SocketAddr>,
    /// The port to listen on with the default addresses.
    #[arg(long, default_value_t = 179)]
    port: u16,
    /// Hold time to offer, in seconds: 0, or at least 3.
    #[arg(long, default_value_t = 90, value_name = "SECONDS")]
    hold_time: u16,
    /// Keep routes out of the kernel (debugging).
    #[arg(long)]
    no_install: bool,
    /// On SIGTERM, leave bgpd's routes in the kernel, and at the next start
    /// wait up to this long for the peers to send them again (routes that
    /// end unchanged are never touched). 0 removes them at every stop.
    /// Default: 120. Ctrl-C (SIGINT) always removes them. With --config,
    /// set [kernel] graceful_restart_keep there instead.
    #[arg(long, value_name = "SECONDS", conflicts_with = "config")]
    graceful_restart_keep: Option<u32>,
    /// Serve `bgpd show` and `bgpd health` on this unix socket.
    #[arg(long, value_name = "PATH")]
    control_socket: Option<PathBuf>,
    /// Print these flags as a configuration file (for --config) and exit.
    #[arg(long, conflicts_with = "config")]
    print_config: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a configuration file without starting: each problem is one
    /// line, FILE:LINE:COL: what is wrong; how to fix it.
    Check {
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
    /// Compare the kernel with the routing table now and repair drift.
    Reconcile {
        #[arg(long, value_name = "PATH", default_value = "/run/bgpd/bgpd.sock")]
        socket: PathBuf,
    },
    /// Stop the running daemon and wait until it has. As SIGTERM
    /// (systemctl stop/restart, podman stop), bgpd's routes stay in the
    /// kernel for the next start, which adopts them ([kernel]
    /// graceful_restart_keep); --flush removes them first, as Ctrl-C
    /// (SIGINT) does: stopping for good.
    Stop {
        #[arg(long, value_name = "PATH", default_value = "/run/bgpd/bgpd.sock")]
        socket: PathBuf,
        /// Remove bgpd's routes from the kernel.
        #[arg(long)]
        flush: bool,
    },
    /// Ask the running daemon to re-read its configuration (like SIGHUP).
    Reload {
        #[arg(long, value_name = "PATH", default_value = "/run/bgpd/bgpd.sock")]
        socket: PathBuf,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the man page bgpd(8), generated from these definitions; with
    /// --dir, write bgpd.8 and one bgpd-COMMAND.8 per subcommand there
    /// (for packaging).
    #[command(hide = true)]
    Man {
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Show the running daemon's state (over its control socket).
    Show {
        #[command(subcommand)]
        what: ShowWhat,
        /// JSON instead of a table.
        #[arg(long, global = true)]
        json: bool,
        /// The control socket.
        #[arg(
            long,
            global = true,
            value_name = "PATH",
            default_value = "/run/bgpd/bgpd.sock"
        )]
        socket: PathBuf,
    },
    /// Exit 0 when bgpd runs and (with peers) a session is up; for
    /// container healthchecks.
    Health {
        #[arg(long, value_name = "PATH", default_value = "/run/bgpd/bgpd.sock")]
        socket: PathBuf,
    },
    /// Exit 0 when this core is fit to forward (enough sessions up, the
    /// kernel in sync) and 1, with the reason, when it is not or bgpd does
    /// not answer: keepalived's track_script (docs/redundancy.md).
    Track {
        #[arg(long, value_name = "PATH", default_value = "/run/bgpd/bgpd.sock")]
        socket: PathBuf,
        /// Sessions that must be Established.
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(u32).range(1..))]
        min_established: u32,
        /// Give up when bgpd has not answered within this many
        /// milliseconds (keep it below keepalived's script timeout).
        #[arg(long, value_name = "MS", default_value_t = 500,
              value_parser = clap::value_parser!(u64).range(1..))]
        timeout_ms: u64,
    },
    /// Print BGP messages readably: raw concatenated messages (a TCP
    /// stream's payload), hex text, or an MRT file (BGP4MP, TABLE_DUMP_V2).
    Decode {
        /// One JSON object per message (or MRT record) instead of text.
        #[arg(long)]
        json: bool,
        /// The session used 2-octet AS numbers (no 4-octet AS capability).
        /// Detected automatically when the stream holds the sender's OPEN.
        #[arg(long)]
        two_octet_as: bool,
        /// The sender used ADD-PATH path identifiers for this family
        /// (ipv4-unicast, ipv6-unicast). May be repeated.
        #[arg(long, value_name = "FAMILY")]
        add_path: Vec<AfiSafi>,
        /// The files to read (any number, each decoded on its own), or -
        /// for standard input.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ShowWhat {
    /// Peers: address, type, state, since, info, and prefix counts.
    Neighbors,
    /// The routing table, or one prefix with every path and why it won or
    /// lost; with --advertised or --received, what one peer was sent or
    /// sent us (Cisco's "advertised-routes" and "received-routes").
    Routes {
        prefix: Option<String>,
        /// What this established peer has been sent (its Adj-RIB-Out).
        #[arg(long, value_name = "PEER", conflicts_with_all = ["prefix", "received"])]
        advertised: Option<String>,
        /// What this peer sent us, accepted or not (its Adj-RIB-In).
        #[arg(long, value_name = "PEER", conflicts_with = "prefix")]
        received: Option<String>,
    },
    /// Which route carries an address, like `ip route get`: "why can't my
    /// VM reach this pod?"
    Route { address: String },
    /// The kernel side: what is installed, pending (next hop unreachable),
    /// failed, or in conflict with another protocol's route.
    Fib,
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("BGPD_LOG") {
        Err(_) => EnvFilter::new("info"),
        Ok(v) => bgpd::config::log_filter(&v).unwrap_or_else(|| {
            eprintln!(
                "bgpd: BGPD_LOG=\"{v}\" is not a log filter; logging at info. Use error, warn, info, debug or trace, or a filter such as \"info,bgpd::fib=debug\""
            );
            EnvFilter::new("info")
        }),
    };
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // journald stamps each line itself.
    if bgpd::notify::logging_to_journal() {
        fmt.without_time().init();
    } else {
        fmt.init();
    }
}

fn main() -> ExitCode {
    // Before anything that could run an instruction the CPU lacks.
    if let Err(e) = bgpd::cpu::check() {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Decode {
            json,
            two_octet_as,
            add_path,
            files,
        }) => {
            // The worst outcome wins: 2 (unreadable) over 1 (malformed
            // content reported) over 0.
            let mut worst = 0u8;
            for file in &files {
                let code = run_decode(json, two_octet_as, add_path.clone(), file);
                worst = worst.max(code);
            }
            ExitCode::from(worst)
        }
        Some(Command::Show { what, json, socket }) => {
            let req = match what {
                ShowWhat::Neighbors => Request::Neighbors,
                ShowWhat::Routes {
                    advertised: Some(peer),
                    ..
                } => Request::Advertised { peer },
                ShowWhat::Routes {
                    received: Some(peer),
                    ..
                } => Request::Received { peer },
                ShowWhat::Routes { prefix, .. } => Request::Routes { prefix },
                ShowWhat::Route { address } => Request::Route { address },
                ShowWhat::Fib => Request::Fib,
            };
            client(&socket, req, json)
        }
        Some(Command::Health { socket }) => client(&socket, Request::Health, false),
        Some(Command::Track {
            socket,
            min_established,
            timeout_ms,
        }) => ExitCode::from(show::track(
            &socket,
            show::TrackNeeds {
                min_established: min_established as usize,
            },
            std::time::Duration::from_millis(timeout_ms),
        ) as u8),
        Some(Command::Stop { socket, flush }) => client(&socket, Request::Stop { flush }, false),
        Some(Command::Reload { socket }) => client(&socket, Request::Reload, false),
        Some(Command::Reconcile { socket }) => client(&socket, Request::Reconcile, false),
        Some(Command::Check { config }) => match bgpd::config::load(&config) {
            Ok(c) => {
                println!(
                    "{}: OK: AS {}, router id {}, {} peers, {} ranges",
                    config.display(),
                    c.local_as,
                    c.router_id,
                    c.peers.len(),
                    c.ranges.len()
                );
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in errors.iter() {
                    eprintln!("{e}");
                }
                ExitCode::from(1)
            }
        },
        Some(Command::Completions { shell }) => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "bgpd", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Some(Command::Man { dir }) => man(dir),
        None => run_daemon(cli.run),
    }
}

/// The man pages from the clap definitions (clap_mangen), in section 8
/// (a daemon, installed in /usr/sbin); the hidden `man` subcommand itself
/// is left out, as it is from --help.
fn man(dir: Option<PathBuf>) -> ExitCode {
    use clap::CommandFactory;
    fn pages(cmd: clap::Command, dir: &std::path::Path) -> std::io::Result<()> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            pages(sub.clone(), dir)?;
        }
        clap_mangen::Man::new(cmd).section("8").generate_to(dir)?;
        Ok(())
    }
    let mut cmd = Cli::command().name("bgpd").disable_help_subcommand(true);
    cmd.build();
    let result = match &dir {
        None => clap_mangen::Man::new(cmd)
            .section("8")
            .render(&mut std::io::stdout()),
        Some(d) => std::fs::create_dir_all(d).and_then(|()| pages(cmd, d)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match dir {
                Some(d) => eprintln!("bgpd man: cannot write to {}: {e}", d.display()),
                None => eprintln!("bgpd man: {e}"),
            }
            ExitCode::from(1)
        }
    }
}

fn client(socket: &std::path::Path, req: Request, json: bool) -> ExitCode {
    match show::run(socket, req, json) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("bgpd: {e}");
            ExitCode::from(1)
        }
    }
}

/// The daemon from a file (`--config`) or from flags (the foreground
/// view): both are one [`Config`], checked by the same code.
fn run_daemon(a: RunArgs) -> ExitCode {
    let (setup, view) = match a.config.clone() {
        Some(path) => match bgpd::config::load(&path) {
            Ok(cfg) => (bgpd::daemon::Setup::from_config(Some(path), cfg), None),
            Err(errors) => {
                for e in errors.iter() {
                    eprintln!("{e}");
                }
                return ExitCode::from(1);
            }
        },
        None => match flags_config(a) {
            Ok(Some(cfg)) => (
                bgpd::daemon::Setup::from_config(None, cfg),
                Some(view::foreground()),
            ),
            Ok(None) => return ExitCode::SUCCESS,
            Err(code) => return code,
        },
    };
    init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bgpd: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(bgpd::daemon::run(setup, view)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bgpd: {e}");
            ExitCode::from(1)
        }
    }
}

/// The configuration the flags describe; `None` when it was printed
/// (`--print-config`) instead.
fn flags_config(a: RunArgs) -> Result<Option<Config>, ExitCode> {
    let Some(asn) = a.asn else {
        eprintln!(
            "bgpd: give --config FILE, or --asn N with --peer ADDR (e.g. --asn 64512 --peer 192.168.83.36); see bgpd --help"
        );
        return Err(ExitCode::from(2));
    };
    let addrs: Vec<IpAddr> = a.peer.iter().map(|p| p.addr).collect();
    let router_id = match a
        .router_id
        .or_else(|| bgpd::daemon::infer_router_id(&addrs))
    {
        Some(id) => id,
        None if addrs.is_empty() && a.listen_range.is_empty() => Ipv4Addr::UNSPECIFIED,
        None => {
            eprintln!(
                "bgpd: cannot pick a router id: no IPv4 route towards any peer; give --router-id A.B.C.D"
            );
            return Err(ExitCode::from(1));
        }
    };
    let flags = Flags {
        asn,
        router_id,
        peers: a.peer,
        listen_ranges: a.listen_range,
        networks: a.network,
        cluster_id: a.cluster_id,
        listen: a.listen,
        port: a.port,
        hold_time: a.hold_time,
        no_install: a.no_install,
        keep_secs: a.graceful_restart_keep,
        control_socket: a.control_socket,
    };
    let cfg = flags.to_config().map_err(|errors| {
        for e in errors.iter() {
            eprintln!("bgpd: {e}");
        }
        ExitCode::from(1)
    })?;
    if a.print_config {
        print!("{}", flags.to_toml());
        return Ok(None);
    }
    Ok(Some(cfg))
}

fn run_decode(json: bool, two_octet_as: bool, add_path: Vec<AfiSafi>, file: &str) -> u8 {
    let data = if file == "-" {
        let mut v = Vec::new();
        if let Err(e) = std::io::stdin().read_to_end(&mut v) {
            eprintln!("bgpd decode: cannot read standard input: {e}");
            return 2;
        }
        v
    } else {
        match std::fs::read(file) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("bgpd decode: cannot read {file}: {e}");
                return 2;
            }
        }
    };
    let opts = decode::Options {
        json,
        two_octet_as,
        add_path: add_path.into_iter().collect::<AfiSafiSet>(),
    };
    match decode::run(&data, &opts) {
        Ok((text, clean)) => {
            print!("{text}");
            if clean { 0 } else { 1 }
        }
        Err(e) => {
            eprintln!("bgpd decode: {file}: {e}");
            2
        }
    }
}
