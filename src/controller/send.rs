//! The send side's orchestration: which peer is sent what, when.
//!
//! Each established peer has an Adj-RIB-Out ([`AdjOut`]). When a session
//! comes up its initial table is queued there (every best path the export
//! rules let through, the `[[network]]`s, a default route with
//! `default_originate`), and End-of-RIB follows it (RFC 4724 §2). After
//! each batch the prefixes whose best path may have changed are exported
//! again to every peer; only what differs from what the peer has is
//! queued. A peer gets one burst of UPDATEs at a time (about
//! [`BURST`] prefixes) and the next only when its task says the burst
//! is written ([`crate::session::PeerEvent::Ready`]): a peer that reads
//! slowly holds at most its latest state per prefix here, never a backlog
//! of changes, and never stalls the others.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use bytes::Bytes;
use ipnet::IpNet;
use tracing::warn;

use crate::config::Config;
use crate::fsm::Negotiated;
use crate::hash::{FastMap, FastSet};
use crate::rib::Rib;
use crate::rib::adj_out::{AdjOut, OutBatch};
use crate::rib::attrs::PathAttrs;
use crate::rib::export::{self, Local, OutPeer, Source};
use crate::wire::{AfiSafi, AfiSafiSet, Ctx, Nlri, pack};

/// Prefixes taken from a peer's Adj-RIB-Out per burst.
pub const BURST: usize = 16_384;

/// What one burst to a peer holds.
#[derive(Debug, PartialEq, Eq)]
pub struct Burst {
    pub peer: IpAddr,
    pub msgs: Vec<Bytes>,
    pub announced: usize,
    pub withdrawn: usize,
}

struct Out {
    peer: OutPeer,
    default_originate: bool,
    ctx: Ctx,
    families: AfiSafiSet,
    adj: AdjOut,
    /// No burst is in flight.
    ready: bool,
    /// The initial table is not all sent yet: End-of-RIB follows it.
    eor_due: bool,
}

/// Every established peer's send state.
pub struct Sender {
    local: Local,
    networks: Vec<IpNet>,
    /// Whether any peer can be sent a route ([`Config::speaks`]); when
    /// not, sessions get just End-of-RIB and the table is not walked.
    speaks: bool,
    /// Attribute sets as sent, interned across peers, so that a pointer is
    /// a set (the Adj-RIB-Out groups by it).
    interner: FastSet<Arc<PathAttrs>>,
    /// The interner is swept of unused sets when it grows past this
    /// (twice its size after the last sweep), so sweeps cost O(1) per set.
    sweep_at: usize,
    outs: FastMap<IpAddr, Out>,
}

fn has_family(families: AfiSafiSet, p: &IpNet) -> bool {
    families.contains(match p {
        IpNet::V4(_) => AfiSafi::IPV4_UNICAST,
        IpNet::V6(_) => AfiSafi::IPV6_UNICAST,
    })
}

impl Sender {
    pub fn new(cfg: &Config) -> Sender {
        Sender {
            local: local(cfg),
            networks: cfg.networks.iter().map(|n| n.prefix).collect(),
            speaks: cfg.speaks(),
            interner: FastSet::default(),
            sweep_at: 1024,
            outs: FastMap::default(),
        }
    }

    /// The routes `peer` has been sent, in prefix order.
    pub fn advertised(&self, peer: IpAddr) -> Option<Vec<(IpNet, Arc<PathAttrs>)>> {
        let o = self.outs.get(&peer)?;
        let mut v: Vec<(IpNet, Arc<PathAttrs>)> =
            o.adj.sent().map(|(p, a)| (*p, a.clone())).collect();
        v.sort_by_key(|(p, _)| *p);
        Some(v)
    }

    /// How many routes `peer` has been sent, and how many changes wait.
    pub fn counts(&self, peer: IpAddr) -> Option<(usize, usize)> {
        self.outs
            .get(&peer)
            .map(|o| (o.adj.sent_len(), o.adj.pending()))
    }

    /// A session came up: its initial table is queued.
    pub fn up(&mut self, cfg: &Config, rib: &Rib, peer: IpAddr, n: &Negotiated, local: IpAddr) {
        let Some(s) = session(cfg, peer) else {
            return;
        };
        let (local_v4, local_v6) = match local {
            IpAddr::V4(a) => (Some(a), None::<Ipv6Addr>),
            IpAddr::V6(a) => (a.to_ipv4_mapped(), Some(a)),
        };
        let out = Out {
            peer: OutPeer {
                addr: peer,
                ibgp: n.ibgp,
                rr_client: s.rr_client,
                next_hop_self: s.next_hop_self,
                local_v4,
                local_v6,
                policy: cfg.export_of(s).cloned().map(Arc::new),
                llgr: n.peer_graceful_restart.is_some() && n.peer_llgr.is_some(),
            },
            default_originate: s.default_originate,
            ctx: n.ctx,
            families: n.families,
            adj: AdjOut::default(),
            ready: true,
            eor_due: true,
        };
        self.outs.insert(peer, out);
        if self.speaks {
            self.refill(cfg, rib, Some(peer));
        }
    }

    pub fn down(&mut self, peer: IpAddr) {
        self.outs.remove(&peer);
    }

    /// The peer's last burst is written.
    pub fn ready(&mut self, peer: IpAddr) {
        if let Some(o) = self.outs.get_mut(&peer) {
            o.ready = true;
        }
    }

    /// A route refresh (RFC 2918 §4): the peer is sent its table again.
    pub fn refresh(&mut self, peer: IpAddr) {
        if let Some(o) = self.outs.get_mut(&peer) {
            o.adj.resend();
        }
    }

    /// A new configuration: the peers' export settings and the networks
    /// change, and every peer gets what differs.
    pub fn reconfigure(&mut self, cfg: &Config, rib: &Rib) {
        self.local = local(cfg);
        self.networks = cfg.networks.iter().map(|n| n.prefix).collect();
        let spoke = std::mem::replace(&mut self.speaks, cfg.speaks());
        for (addr, o) in self.outs.iter_mut() {
            if let Some(s) = session(cfg, *addr) {
                o.peer.rr_client = s.rr_client;
                o.peer.next_hop_self = s.next_hop_self;
                o.peer.policy = cfg.export_of(s).cloned().map(Arc::new);
                o.default_originate = s.default_originate;
            }
        }
        if spoke || self.speaks {
            self.refill(cfg, rib, None);
        }
    }

    /// Exports every prefix again, to `only` or to every peer: what they
    /// should have replaces what they had (only differences are sent).
    fn refill(&mut self, cfg: &Config, rib: &Rib, only: Option<IpAddr>) {
        let mut prefixes: FastSet<IpNet> = rib.bests().map(|(p, _)| p).collect();
        for (addr, o) in &self.outs {
            if only.is_none_or(|a| a == *addr) {
                prefixes.extend(o.adj.sent().map(|(p, _)| *p));
            }
        }
        prefixes.extend(self.networks.iter().copied());
        prefixes.insert(default_v4());
        prefixes.insert(default_v6());
        let prefixes: Vec<IpNet> = prefixes.into_iter().collect();
        self.export(cfg, rib, &prefixes, only);
    }

    /// The prefixes whose best path may have changed: exported again.
    pub fn changed(&mut self, cfg: &Config, rib: &Rib, prefixes: &[IpNet]) {
        if !self.outs.is_empty() && !prefixes.is_empty() {
            self.export(cfg, rib, prefixes, None);
        }
    }

    fn export(&mut self, cfg: &Config, rib: &Rib, prefixes: &[IpNet], only: Option<IpAddr>) {
        let local = self.local;
        let mut seen: FastSet<IpNet> = FastSet::default();
        // What a peer is sent depends on the prefix only through the
        // policy's match and the family ([`export::permitted`]); the
        // rewritten set is computed once per peer, source attribute set,
        // source and family, and shared by every prefix that has them.
        // The source set is kept in the entry so its address stays its own.
        let mut rewritten: FastMap<Rewrite, (Arc<PathAttrs>, Option<Arc<PathAttrs>>)> =
            FastMap::default();
        // Whether each source peer is a client (the config is searched
        // once per peer, not once per prefix).
        let mut clients: FastMap<IpAddr, bool> = FastMap::default();
        for p in prefixes {
            if !seen.insert(*p) {
                continue;
            }
            // The route this router would send, before the per-peer rules:
            // its own (a network) before a learned one.
            let own = self.networks.contains(p);
            let learned = if own { None } else { rib.best(p) };
            let src = match &learned {
                Some(b) => Source::Peer {
                    addr: b.peer,
                    ibgp: b.ibgp,
                    rr_client: *clients
                        .entry(b.peer)
                        .or_insert_with(|| session(cfg, b.peer).is_some_and(|s| s.rr_client)),
                    router_id: b.router_id,
                },
                None => Source::Local,
            };
            let is_default = p.prefix_len() == 0;
            for (addr, o) in self.outs.iter_mut() {
                if only.is_some_and(|a| a != *addr) || !has_family(o.families, p) {
                    continue;
                }
                let base = match &learned {
                    Some(b) => Some(b.attrs.clone()),
                    None if own || (is_default && o.default_originate) => {
                        Some(Arc::new(export::originated(p.addr())))
                    }
                    None => None,
                };
                let want = base.and_then(|a| {
                    if !export::permitted(&o.peer, p, &a, &src) {
                        return None;
                    }
                    let v4 = p.addr().is_ipv4();
                    let key = Rewrite {
                        to: *addr,
                        set: Arc::as_ptr(&a) as usize,
                        from: match src {
                            Source::Peer { addr, .. } => Some(addr),
                            Source::Local => None,
                        },
                        v4,
                    };
                    let interner = &mut self.interner;
                    rewritten
                        .entry(key)
                        .or_insert_with(|| {
                            let out = export::rewrite(&local, &o.peer, v4, &a, &src)
                                .map(|x| intern(interner, x));
                            (a.clone(), out)
                        })
                        .1
                        .clone()
                });
                o.adj.set(*p, want);
            }
        }
        // Sets no peer uses any more.
        if self.interner.len() > self.sweep_at {
            self.interner.retain(|a| Arc::strong_count(a) > 1);
            self.sweep_at = (2 * self.interner.len()).max(1024);
        }
    }

    /// A burst for each ready peer with something to send.
    pub fn drain(&mut self) -> Vec<Burst> {
        let mut bursts = Vec::new();
        for (addr, o) in self.outs.iter_mut() {
            if !o.ready || (o.adj.pending() == 0 && !o.eor_due) {
                continue;
            }
            let batch = o.adj.take(BURST);
            let mut b = Burst {
                peer: *addr,
                msgs: Vec::new(),
                announced: 0,
                withdrawn: 0,
            };
            encode(o, batch, &mut b);
            if o.adj.pending() == 0 && o.eor_due {
                o.eor_due = false;
                for af in o.families.iter() {
                    b.msgs.push(pack::end_of_rib(&o.ctx, af));
                }
            }
            if !b.msgs.is_empty() {
                o.ready = false;
                bursts.push(b);
            }
        }
        bursts.sort_by_key(|b| b.peer);
        bursts
    }
}

/// The UPDATEs of one batch for one peer. An attribute set too large for
/// a message is reported and its prefixes withdrawn, never sent cut.
fn encode(o: &mut Out, batch: OutBatch, b: &mut Burst) {
    let mut withdraw: Vec<Nlri> = batch.withdraw.iter().map(|p| Nlri::new(*p)).collect();
    for (attrs, prefixes) in &batch.announce {
        let (wire, hop) = attrs.to_wire(o.peer.ibgp, o.ctx.four_octet_as);
        let nlri: Vec<Nlri> = prefixes.iter().map(|p| Nlri::new(*p)).collect();
        let (v4, v6): (Vec<Nlri>, Vec<Nlri>) =
            nlri.into_iter().partition(|n| n.prefix.addr().is_ipv4());
        for part in [v4, v6] {
            if part.is_empty() {
                continue;
            }
            match pack::announce(&o.ctx, &wire, &hop, &part, &mut b.msgs) {
                Ok(()) => b.announced += part.len(),
                Err(e) => {
                    warn!(
                        peer = %o.peer.addr,
                        prefixes = part.len(),
                        "the route's attributes do not fit one UPDATE ({e}); withdrawn instead"
                    );
                    for n in &part {
                        o.adj.forget(&n.prefix);
                    }
                    withdraw.extend(part);
                }
            }
        }
    }
    b.withdrawn = withdraw.len();
    pack::withdraw(&o.ctx, &withdraw, &mut b.msgs);
}

/// The key of one rewrite in [`Sender::export`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Rewrite {
    to: IpAddr,
    set: usize,
    from: Option<IpAddr>,
    v4: bool,
}

fn intern(set: &mut FastSet<Arc<PathAttrs>>, a: PathAttrs) -> Arc<PathAttrs> {
    if let Some(x) = set.get(&a) {
        return x.clone();
    }
    let x = Arc::new(a);
    set.insert(x.clone());
    x
}

fn local(cfg: &Config) -> Local {
    Local {
        asn: cfg.local_as,
        router_id: cfg.router_id,
        cluster_id: cfg.cluster_id(),
    }
}

/// The session template a peer (configured, or dynamic through its range)
/// was set up with.
fn session(cfg: &Config, peer: IpAddr) -> Option<&crate::config::SessionConfig> {
    cfg.peer(peer)
        .map(|p| &p.session)
        .or_else(|| cfg.range_of(peer).map(|r| &r.session))
}

fn default_v4() -> IpNet {
    IpNet::new(Ipv4Addr::UNSPECIFIED.into(), 0).expect("/0")
}

fn default_v6() -> IpNet {
    IpNet::new(Ipv6Addr::UNSPECIFIED.into(), 0).expect("/0")
}
