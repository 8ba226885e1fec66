//! bgpd-loadgen: a BGP load generator for side-by-side convergence runs
//! (benches/harness.sh). Built on bgpd's own codec (`bgpd::wire`) and plain
//! tokio TCP.
//!
//! 1. Opens M sessions to `--target`, one per `--source` address (each
//!    bound to its source; `--sources-from A --sessions M` numbers them).
//! 2. Waits until all of them are Established (OPEN / KEEPALIVE exchange).
//! 3. Streams P unique prefixes per session, one attribute set per group
//!    of `--group` (100) prefixes, each group packed into as few UPDATEs
//!    (up to 4096 octets) as it fits in.
//!
//! Then it keeps every session up (answering with KEEPALIVEs) until killed.
//! Timestamps go to stdout as JSON lines (`event`: `established`, `sent`),
//! Unix seconds; problems go to stderr.
//!
//! Modes:
//! - `plain`: session i announces prefixes `--base + (i*P + n) * 2^(W-len)`
//!   of length `--len`; NEXT_HOP is the session's own address, MED the
//!   group number (so every group has its own attribute set). IPv6 goes in
//!   MP_REACH_NLRI. `--add-path` adds a path id to every prefix.
//! - `calico-rr`: each session plays a Calico route reflector. It reflects
//!   `--nodes` nodes, each node k announcing its /26 block (from `--base`)
//!   and one path of the service CIDR `--service` (172.16.0.0/16), with
//!   NEXT_HOP and ORIGINATOR_ID the node's address (from `--node-base`),
//!   CLUSTER_LIST the reflector's address, and ADD-PATH path id k+1.
//! - `node`: each session is a Calico node: its own /26 block plus the
//!   service CIDR, next hop itself (for dynamic listen ranges).
//! - `monitor`: the sessions announce nothing; they count the distinct
//!   IPv4 prefixes the target sends them (withdrawals remove) and print a
//!   `full` event when one session holds `--expect` (the receiving end of
//!   the harness's propagation scenarios).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bgpd::wire::open::{AddPathFamily, add_path_mode};
use bgpd::wire::{
    self, AfiSafi, AfiSafiSet, AsPath, Attr, Capability, Ctx, Message, MpNlri, MpReach, NextHop,
    Nlri, Open, Origin, PathAttribute, Update,
};
use bytes::BytesMut;
use clap::{Parser, ValueEnum};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Barrier;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Plain,
    CalicoRr,
    Node,
    Monitor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Family {
    Ipv4,
    Ipv6,
}

#[derive(Parser, Debug)]
#[command(
    name = "bgpd-loadgen",
    about = "BGP load generator (see benches/harness.sh)"
)]
struct Args {
    /// The speaker under test, ADDR or ADDR:PORT (port 179 by default).
    #[arg(long)]
    target: String,
    /// Source addresses, one session each (comma separated or repeated).
    #[arg(long, value_delimiter = ',')]
    source: Vec<IpAddr>,
    /// With --sessions: number M sources upwards from this address.
    #[arg(long)]
    sources_from: Option<IpAddr>,
    /// Number of sessions when --sources-from is given.
    #[arg(long, default_value_t = 1)]
    sessions: u32,
    /// Our AS.
    #[arg(long, default_value_t = 64512)]
    asn: u32,
    #[arg(long, value_enum, default_value_t = Mode::Plain)]
    mode: Mode,
    #[arg(long, value_enum, default_value_t = Family::Ipv4)]
    family: Family,
    /// Unique prefixes per session (plain mode).
    #[arg(long, default_value_t = 1000)]
    prefixes: u32,
    /// Prefix length (plain mode; default 28 for IPv4, 64 for IPv6).
    #[arg(long)]
    len: Option<u8>,
    /// First prefix (plain mode) or first /26 block (calico modes).
    #[arg(long)]
    base: Option<IpAddr>,
    /// Prefixes per attribute set.
    #[arg(long, default_value_t = 100)]
    group: u32,
    /// Send path identifiers (RFC 7911); needs the target's ADD-PATH receive.
    #[arg(long)]
    add_path: bool,
    /// calico-rr: nodes reflected by each reflector.
    #[arg(long, default_value_t = 1000)]
    nodes: u32,
    /// calico-rr: first node address (next hops, ORIGINATOR_ID).
    #[arg(long, default_value = "100.65.0.1")]
    node_base: Ipv4Addr,
    /// Calico modes: the service CIDR every node announces.
    #[arg(long, default_value = "172.16.0.0/16")]
    service: Ipv4Net,
    /// Hold time we offer.
    #[arg(long, default_value_t = 90)]
    hold_time: u16,
    /// monitor: the prefix count at which to print the `full` event.
    #[arg(long, default_value_t = 0)]
    expect: usize,
    /// plain: every session announces the same prefixes (each with its own
    /// next hop: an ECMP set as wide as the sessions), not its own range.
    #[arg(long)]
    same_prefixes: bool,
    /// On SIGUSR1 the first session closes with a NOTIFICATION (Cease,
    /// administrative shutdown): the failover scenario's lost peer. A
    /// `dropped` event gives the time.
    #[arg(long)]
    drop_on_usr1: bool,
    /// Give up if not all sessions are Established after this many seconds.
    #[arg(long, default_value_t = 120)]
    connect_timeout: u64,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn add_ip(a: IpAddr, n: u128) -> IpAddr {
    match a {
        IpAddr::V4(v) => IpAddr::V4(Ipv4Addr::from(u32::from(v).wrapping_add(n as u32))),
        IpAddr::V6(v) => IpAddr::V6(Ipv6Addr::from(u128::from(v).wrapping_add(n))),
    }
}

/// The session's IP address used as its BGP identifier (IPv4 sources) or
/// a number derived from the session index.
fn bgp_id(src: IpAddr, idx: u32) -> Ipv4Addr {
    match src {
        IpAddr::V4(v) => v,
        IpAddr::V6(_) => Ipv4Addr::from(0x0a00_0000u32 + idx + 1),
    }
}

fn afi(family: Family) -> AfiSafi {
    match family {
        Family::Ipv4 => AfiSafi::IPV4_UNICAST,
        Family::Ipv6 => AfiSafi::IPV6_UNICAST,
    }
}

/// One attribute set and the prefixes that share it.
struct Group {
    attrs: Vec<PathAttribute>,
    next_hop: IpAddr,
    nlri: Vec<Nlri>,
}

fn common_attrs() -> Vec<PathAttribute> {
    vec![
        PathAttribute::new(Attr::Origin(Origin::Igp)),
        PathAttribute::new(Attr::AsPath(AsPath::default())),
    ]
}

/// Encodes the groups into UPDATEs of at most 4096 octets, concatenated.
fn encode_groups(ctx: &Ctx, groups: Vec<Group>, family: Family) -> (Vec<u8>, u64, u64) {
    let af = afi(family);
    let add_path = ctx.add_path_tx.contains(af);
    let mut out = BytesMut::new();
    let (mut updates, mut prefixes) = (0u64, 0u64);
    for g in groups {
        let build = |nlri: Vec<Nlri>| -> Message {
            let mut attributes = g.attrs.clone();
            match (family, g.next_hop) {
                (Family::Ipv4, IpAddr::V4(nh)) => {
                    attributes.insert(2, PathAttribute::new(Attr::NextHop(nh)));
                    Message::Update(Update {
                        attributes,
                        nlri,
                        ..Update::default()
                    })
                }
                (_, nh) => {
                    let global = match nh {
                        IpAddr::V6(v) => v,
                        IpAddr::V4(v) => v.to_ipv6_mapped(),
                    };
                    attributes.push(PathAttribute::new(Attr::MpReachNlri(MpReach {
                        afi_safi: af,
                        next_hop: NextHop::V6 {
                            global,
                            link_local: None,
                        },
                        nlri: MpNlri::Prefixes(nlri),
                    })));
                    Message::Update(Update {
                        attributes,
                        ..Update::default()
                    })
                }
            }
        };
        let empty_len = build(vec![]).to_bytes(ctx).expect("attributes fit").len();
        let mut chunk = Vec::new();
        let mut len = empty_len;
        for n in g.nlri {
            let l = wire::nlri::encoded_len(&n, add_path);
            if len + l > wire::MAX_MESSAGE_LEN && !chunk.is_empty() {
                prefixes += chunk.len() as u64;
                build(std::mem::take(&mut chunk))
                    .encode(ctx, &mut out)
                    .expect("fits");
                updates += 1;
                len = empty_len;
            }
            chunk.push(n);
            len += l;
        }
        if !chunk.is_empty() {
            prefixes += chunk.len() as u64;
            build(chunk).encode(ctx, &mut out).expect("fits");
            updates += 1;
        }
    }
    (out.to_vec(), updates, prefixes)
}

fn prefix_at(base: IpAddr, len: u8, n: u64) -> IpNet {
    match base {
        IpAddr::V4(b) => {
            let a = u32::from(b).wrapping_add((n as u32) << (32 - len as u32));
            IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(a), len))
        }
        IpAddr::V6(b) => {
            let a = u128::from(b).wrapping_add((n as u128) << (128 - len as u32));
            IpNet::V6(Ipv6Net::new_assert(Ipv6Addr::from(a), len))
        }
    }
}

/// The UPDATE stream for session `idx` with local address `src`.
fn workload(a: &Args, ctx: &Ctx, idx: u32, src: IpAddr) -> (Vec<u8>, u64, u64) {
    let af = afi(a.family);
    let add_path = ctx.add_path_tx.contains(af);
    let path_id = |k: u32| if add_path { Some(k + 1) } else { None };
    let mut groups = Vec::new();
    match a.mode {
        Mode::Plain => {
            let (len, base) = match a.family {
                Family::Ipv4 => (
                    a.len.unwrap_or(28),
                    a.base.unwrap_or(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0))),
                ),
                Family::Ipv6 => (
                    a.len.unwrap_or(64),
                    a.base.unwrap_or("2001:db8::".parse().unwrap()),
                ),
            };
            let p = a.prefixes as u64;
            let mut n = 0u64;
            let mut g = 0u32;
            while n < p {
                let end = (n + a.group as u64).min(p);
                let mut attrs = common_attrs();
                attrs.push(PathAttribute::new(Attr::MultiExitDisc(g)));
                attrs.push(PathAttribute::new(Attr::LocalPref(100)));
                let nlri = (n..end)
                    .map(|k| Nlri {
                        path_id: path_id(k as u32),
                        prefix: prefix_at(
                            base,
                            len,
                            if a.same_prefixes {
                                k
                            } else {
                                idx as u64 * p + k
                            },
                        ),
                    })
                    .collect();
                groups.push(Group {
                    attrs,
                    next_hop: src,
                    nlri,
                });
                n = end;
                g += 1;
            }
        }
        Mode::Monitor => {}
        Mode::CalicoRr | Mode::Node => {
            let base = a.base.unwrap_or(IpAddr::V4(Ipv4Addr::new(10, 200, 0, 0)));
            let cluster = bgp_id(src, idx);
            let nodes: Vec<(u32, IpAddr)> = if a.mode == Mode::CalicoRr {
                (0..a.nodes)
                    .map(|k| (k, add_ip(IpAddr::V4(a.node_base), k as u128)))
                    .collect()
            } else {
                vec![(idx, src)]
            };
            for (k, nh) in nodes {
                let mut attrs = common_attrs();
                attrs.push(PathAttribute::new(Attr::LocalPref(100)));
                if a.mode == Mode::CalicoRr {
                    let IpAddr::V4(nh4) = nh else { unreachable!() };
                    attrs.push(PathAttribute::new(Attr::OriginatorId(nh4)));
                    attrs.push(PathAttribute::new(Attr::ClusterList(vec![cluster])));
                }
                let block = prefix_at(base, 26, k as u64);
                groups.push(Group {
                    attrs,
                    next_hop: nh,
                    nlri: vec![
                        Nlri {
                            path_id: path_id(2 * k),
                            prefix: block,
                        },
                        Nlri {
                            path_id: path_id(2 * k + 1),
                            prefix: IpNet::V4(a.service),
                        },
                    ],
                });
            }
        }
    }
    encode_groups(ctx, groups, a.family)
}

async fn read_msg(s: &mut TcpStream, buf: &mut Vec<u8>, ctx: &Ctx) -> std::io::Result<Message> {
    loop {
        match wire::frame_len(ctx, buf) {
            Ok(Some(n)) => {
                let m = Message::decode(ctx, &buf[..n]);
                buf.drain(..n);
                return m.map_err(|e| std::io::Error::other(format!("{e:?}")));
            }
            Ok(None) => {}
            Err(e) => return Err(std::io::Error::other(format!("{e:?}"))),
        }
        let mut tmp = [0u8; 65536];
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// Connects and exchanges OPEN/KEEPALIVE; returns the stream, the
/// negotiated context and any bytes already read past the KEEPALIVE.
async fn establish(
    a: &Args,
    idx: u32,
    src: IpAddr,
    dst: SocketAddr,
) -> std::io::Result<(TcpStream, Ctx, Vec<u8>)> {
    let sock = if src.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.bind(SocketAddr::new(src, 0))?;
    let mut s = sock.connect(dst).await?;
    s.set_nodelay(true)?;
    let af = afi(a.family);
    let mut caps = vec![Capability::Multiprotocol { afi_safi: af }];
    caps.push(Capability::RouteRefresh);
    caps.push(Capability::FourOctetAs { asn: a.asn });
    if a.add_path || a.mode == Mode::CalicoRr {
        caps.push(Capability::AddPath {
            families: vec![AddPathFamily {
                afi_safi: af,
                mode: add_path_mode::SEND,
            }],
        });
    }
    let open = Message::Open(Open::new(a.asn, a.hold_time, bgp_id(src, idx), caps));
    s.write_all(&open.to_bytes(&Ctx::INITIAL).unwrap()).await?;
    let mut buf = Vec::new();
    let theirs = match read_msg(&mut s, &mut buf, &Ctx::INITIAL).await? {
        Message::Open(o) => o,
        m => return Err(std::io::Error::other(format!("expected OPEN, got {m}"))),
    };
    let mut ctx = Ctx::INITIAL;
    ctx.four_octet_as = theirs
        .capabilities()
        .any(|c| matches!(c, Capability::FourOctetAs { .. }));
    if a.add_path || a.mode == Mode::CalicoRr {
        let rx = theirs.capabilities().any(|c| match c {
            Capability::AddPath { families } => {
                families.iter().any(|f| f.afi_safi == af && f.receive())
            }
            _ => false,
        });
        if !rx {
            return Err(std::io::Error::other(
                "the target does not receive ADD-PATH for this family",
            ));
        }
        ctx.add_path_tx = AfiSafiSet::EMPTY.with(af);
    }
    s.write_all(&Message::Keepalive.to_bytes(&ctx).unwrap())
        .await?;
    loop {
        match read_msg(&mut s, &mut buf, &ctx).await? {
            Message::Keepalive => return Ok((s, ctx, buf)),
            Message::Notification(n) => {
                return Err(std::io::Error::other(format!("NOTIFICATION {n}")));
            }
            _ => {}
        }
    }
}

struct Shared {
    args: Args,
    dst: SocketAddr,
    up: Barrier,
    sent: Barrier,
}

async fn session(sh: Arc<Shared>, idx: u32, src: IpAddr) -> (u64, u64) {
    let a = &sh.args;
    let deadline = Instant::now() + Duration::from_secs(a.connect_timeout);
    let (s, ctx, rest) = loop {
        match establish(a, idx, src, sh.dst).await {
            Ok(x) => break x,
            Err(e) => {
                if Instant::now() > deadline {
                    eprintln!("loadgen: session {src}: giving up: {e}");
                    std::process::exit(2);
                }
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::UnexpectedEof
                ) {
                    eprintln!("loadgen: session {src}: {e}; retrying");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    // Build the stream before waiting on the others, so the timed part
    // only writes.
    let (stream, updates, prefixes) = workload(a, &ctx, idx, src);
    let (mut rd, wr) = s.into_split();
    // Drain whatever the target sends; report NOTIFICATIONs. A monitor
    // counts the prefixes it holds.
    let (monitor, expect) = (a.mode == Mode::Monitor, a.expect);
    tokio::spawn(async move {
        let mut held = std::collections::HashSet::<IpNet>::new();
        let mut full = false;
        let mut buf = rest;
        let mut tmp = vec![0u8; 65536];
        loop {
            match rd.read(&mut tmp).await {
                Ok(0) | Err(_) => {
                    eprintln!("loadgen: session {src}: closed by the target");
                    return;
                }
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
            loop {
                let n = match wire::frame_len(&ctx, &buf) {
                    Ok(Some(n)) => n,
                    Ok(None) => break,
                    Err(_) => {
                        // Out of step: drop what we have rather than grow.
                        buf.clear();
                        break;
                    }
                };
                match Message::decode(&ctx, &buf[..n]) {
                    Ok(Message::Notification(no)) => {
                        eprintln!("loadgen: session {src}: NOTIFICATION {no}");
                    }
                    Ok(Message::Update(u)) if monitor => {
                        for w in &u.withdrawn {
                            held.remove(&w.prefix);
                        }
                        let before = held.len();
                        held.extend(u.nlri.iter().map(|n| n.prefix));
                        if std::env::var_os("LOADGEN_DEBUG").is_some()
                            && held.len() / 100_000 != before / 100_000
                        {
                            eprintln!("monitor {:.3} {}", now(), held.len());
                        }
                        if !full && held.len() >= expect {
                            full = true;
                            println!(
                                "{{\"event\":\"full\",\"t\":{:.6},\"prefixes\":{}}}",
                                now(),
                                held.len()
                            );
                        }
                    }
                    Err(e) if monitor => {
                        eprintln!("loadgen: session {src}: undecodable message: {e:?}");
                    }
                    _ => {}
                }
                buf.drain(..n);
            }
        }
    });
    // KEEPALIVEs from now on, also while waiting for the other sessions
    // (a slow target may take minutes to bring them all up).
    let wr = Arc::new(tokio::sync::Mutex::new(wr));
    let keepalive = Message::Keepalive.to_bytes(&ctx).unwrap();
    let every = Duration::from_secs((a.hold_time as u64 / 3).max(1));
    let kw = wr.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if kw.lock().await.write_all(&keepalive).await.is_err() {
                return;
            }
        }
    });
    sh.up.wait().await;
    {
        let mut w = wr.lock().await;
        for chunk in stream.chunks(256 * 1024) {
            if let Err(e) = w.write_all(chunk).await {
                eprintln!("loadgen: session {src}: write: {e}");
                std::process::exit(3);
            }
        }
        // End-of-RIB for the family.
        let eor = Message::Update(Update::end_of_rib(afi(a.family)));
        let _ = w.write_all(&eor.to_bytes(&ctx).unwrap()).await;
    }
    sh.sent.wait().await;
    if idx == 0 && a.drop_on_usr1 {
        let ctx2 = ctx;
        tokio::spawn(async move {
            let mut sig =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
                    .expect("SIGUSR1 handler");
            sig.recv().await;
            let cease = Message::Notification(wire::Notification {
                code: 6,
                subcode: 2,
                data: Default::default(),
            });
            let mut w = wr.lock().await;
            let t = now();
            let _ = w.write_all(&cease.to_bytes(&ctx2).unwrap()).await;
            let _ = w.shutdown().await;
            println!("{{\"event\":\"dropped\",\"t\":{t:.6},\"session\":\"{src}\"}}");
        });
    }
    (updates, prefixes)
}

fn main() {
    let args = Args::parse();
    let dst: SocketAddr = args
        .target
        .parse()
        .or_else(|_| {
            args.target
                .parse::<IpAddr>()
                .map(|ip| SocketAddr::new(ip, 179))
        })
        .unwrap_or_else(|_| {
            eprintln!("loadgen: bad --target {}", args.target);
            std::process::exit(1)
        });
    let mut sources = args.source.clone();
    if let Some(first) = args.sources_from {
        sources.extend((0..args.sessions).map(|i| add_ip(first, i as u128)));
    }
    if sources.is_empty() {
        eprintln!("loadgen: no --source or --sources-from");
        std::process::exit(1);
    }
    let m = sources.len();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let sh = Arc::new(Shared {
            args,
            dst,
            up: Barrier::new(m + 1),
            sent: Barrier::new(m + 1),
        });
        let t_start = now();
        let tasks: Vec<_> = sources
            .iter()
            .enumerate()
            .map(|(i, &src)| tokio::spawn(session(sh.clone(), i as u32, src)))
            .collect();
        sh.up.wait().await;
        let t_up = now();
        println!(
            "{{\"event\":\"established\",\"t\":{t_up:.6},\"sessions\":{m},\"connect_s\":{:.3}}}",
            t_up - t_start
        );
        sh.sent.wait().await;
        let t_sent = now();
        let (mut updates, mut prefixes) = (0u64, 0u64);
        for t in tasks {
            let (u, p) = t.await.unwrap();
            updates += u;
            prefixes += p;
        }
        println!(
            "{{\"event\":\"sent\",\"t\":{t_sent:.6},\"updates\":{updates},\"prefixes\":{prefixes},\"send_s\":{:.3}}}",
            t_sent - t_up
        );
        // Keep the sessions up until killed.
        std::future::pending::<()>().await;
    });
}
