//! The routing table, sans-IO: it takes session events and UPDATEs and
//! returns change sets ([`RouteChange`]: a prefix and its new ECMP next-hop
//! set, empty for a withdraw). No tokio, no sockets; time is an argument
//! and timers are outputs (see docs/rib.md).
//!
//! Tables (RFC 4271 §3.2):
//! - The Adj-RIB-In of each peer and family, keyed by (prefix, ADD-PATH
//!   path id), is stored inside the Loc-RIB entries: each prefix's entry
//!   holds every path received for it, tagged with its peer and path id.
//!   Per-peer views are filters over it. One table instead of two keeps a
//!   route at one 16-byte path plus its share of the trie.
//! - The Loc-RIB is two [`PrefixMap`]s (IPv4 and IPv6); per prefix, the
//!   candidate paths in decision order, the multipath set and the reason
//!   the best path won.
//! - Attributes are interned ([`attrs::Interner`]): a set is stored once.

pub mod adj_out;
pub mod attrs;
pub mod decision;
pub mod export;
pub mod policy;
mod table;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;

use crate::fsm::Negotiated;
use crate::hash::FastMap;
use crate::route::{AlwaysResolves, ChangeSet, NextHop, NextHops, Resolver, RouteChange};
use crate::wire::{AfiSafi, Community, Nlri, Update};

pub use attrs::{DEFAULT_LOCAL_PREF, PathAttrs};
pub use decision::Step;
pub use policy::{ImportPolicy, MaxPrefix, PeerPolicy, Policy, PrefixMatch, Reject};
pub use table::Entry;
use table::{Ctx, Path, STALE, UNRESOLVED};

/// Default iBGP multipath width: the number of distinct next hops one
/// prefix may get. 32 covers a Calico cluster's service CIDR across
/// every node of a mid-sized cluster and stays well under the kernel's
/// limit on nexthops per route.
pub const DEFAULT_MULTIPATH: usize = 32;

/// Next hops whose reachability the RIB remembers between re-checks.
const RESOLVED_CACHE: usize = 65536;

/// RIB-wide settings.
#[derive(Clone, Debug)]
pub struct RibConfig {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// iBGP multipath width (Cisco `maximum-paths ibgp N`); 1 disables
    /// multipath.
    pub ibgp_multipath: usize,
    /// eBGP multipath width, across paths from the same neighbour AS.
    pub ebgp_multipath: usize,
    /// Whether UPDATEs and [`Rib::commit`] return change sets. The daemon
    /// turns this off when nothing consumes them (kernel install off and
    /// no foreground view): the decisions are the same, the changes are
    /// not built. Other mutators (peer down, policy, stale sweeps) return
    /// theirs either way.
    pub emit_changes: bool,
    /// Whether the RIB records the prefixes whose best path may have
    /// changed ([`Rib::take_export`]), for the peers routes are sent to.
    pub track_export: bool,
    /// The CLUSTER_ID of RFC 4456 (the router id unless configured): a
    /// route whose CLUSTER_LIST holds it has been here before.
    pub cluster_id: Ipv4Addr,
}

impl RibConfig {
    pub fn new(local_as: u32, router_id: Ipv4Addr) -> Self {
        RibConfig {
            local_as,
            router_id,
            ibgp_multipath: DEFAULT_MULTIPATH,
            ebgp_multipath: 1,
            emit_changes: true,
            track_export: false,
            cluster_id: router_id,
        }
    }
}

/// The peer's graceful-restart capability, as the helper needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrInfo {
    pub restart_time: Duration,
    /// Families listed in the capability, with their Forwarding State bit.
    pub families: Vec<(AfiSafi, bool)>,
}

/// What the RIB needs to know of an established session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub ibgp: bool,
    pub remote_as: u32,
    pub router_id: Ipv4Addr,
    /// Both sides sent the 4-octet AS capability; if not, AS4_PATH is
    /// merged into AS_PATH (RFC 6793 §4.2.3).
    pub four_octet_as: bool,
    /// The peer's graceful-restart capability: helper mode keeps its
    /// routes when the session drops (RFC 4724).
    pub graceful_restart: Option<GrInfo>,
    /// The peer's long-lived graceful-restart families and their
    /// long-lived stale times (RFC 9494; ignored without the GR
    /// capability, §3). Empty: none.
    pub llgr: Vec<(AfiSafi, Duration)>,
    /// The interface of the session, for link-local IPv6 next hops.
    pub ifindex: Option<u32>,
}

impl PeerInfo {
    /// A plain iBGP peer without graceful restart (for tests and tools).
    pub fn ibgp(asn: u32, router_id: Ipv4Addr) -> Self {
        PeerInfo {
            ibgp: true,
            remote_as: asn,
            router_id,
            four_octet_as: true,
            graceful_restart: None,
            llgr: Vec::new(),
            ifindex: None,
        }
    }

    /// From what the FSM negotiated.
    pub fn from_negotiated(n: &Negotiated) -> Self {
        PeerInfo {
            ibgp: n.ibgp,
            remote_as: n.remote_as,
            router_id: n.remote_id,
            four_octet_as: n.ctx.four_octet_as,
            graceful_restart: n.peer_graceful_restart.as_ref().map(|g| GrInfo {
                restart_time: Duration::from_secs(g.restart_time as u64),
                families: g
                    .families
                    .iter()
                    .map(|f| (f.afi_safi, f.forwarding_preserved()))
                    .collect(),
            }),
            // RFC 9494 §3: without the GR capability, LLGR is ignored.
            llgr: match (&n.peer_graceful_restart, &n.peer_llgr) {
                (Some(_), Some(l)) => l
                    .iter()
                    .map(|f| (f.afi_safi, Duration::from_secs(u64::from(f.stale_time))))
                    .collect(),
                _ => Vec::new(),
            },
            ifindex: None,
        }
    }
}

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Down {
    /// The TCP session failed or timed out: graceful-restart helper mode
    /// applies if the peer offered it (RFC 4724 §4.2).
    Graceful,
    /// A NOTIFICATION was sent or received (or an administrative reset):
    /// the peer's routes go now.
    Hard,
}

/// Max-prefix events (per peer, counted over accepted paths).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MaxPrefixEvent {
    /// The count reached the warning threshold. Sent once per session.
    Warning {
        peer: IpAddr,
        count: u32,
        limit: u32,
    },
    /// The count went over the limit: the caller sends NOTIFICATION Cease,
    /// subcode 1 "Maximum Number of Prefixes Reached" (RFC 4486 §4), closes
    /// the session, calls [`Rib::peer_down`] with [`Down::Hard`] and
    /// reconnects after its configured time.
    Exceeded {
        peer: IpAddr,
        count: u32,
        limit: u32,
    },
}

/// Counts of one family of one peer's Adj-RIB-In, as it is now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FamilyCounters {
    /// Paths held (accepted + rejected).
    pub received: u32,
    pub accepted: u32,
    pub rejected: u32,
    pub stale: u32,
}

/// A peer's counters for the status command.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCounters {
    pub ipv4: FamilyCounters,
    pub ipv6: FamilyCounters,
    /// UPDATE messages processed, since the RIB started.
    pub updates: u64,
    /// UPDATEs handled as treat-as-withdraw (RFC 7606).
    pub treat_as_withdraw: u64,
    /// Announced prefixes / withdrawn prefixes processed.
    pub announced: u64,
    pub withdrawn: u64,
}

impl PeerCounters {
    fn family(&mut self, v6: bool) -> &mut FamilyCounters {
        if v6 { &mut self.ipv6 } else { &mut self.ipv4 }
    }

    pub fn accepted(&self) -> u32 {
        self.ipv4.accepted + self.ipv6.accepted
    }

    fn account(&mut self, v6: bool, p: &Path, add: bool) {
        let f = self.family(v6);
        let d = |x: &mut u32| {
            if add { *x += 1 } else { *x -= 1 }
        };
        d(&mut f.received);
        if p.reject.is_some() {
            d(&mut f.rejected);
        } else {
            d(&mut f.accepted);
        }
        if p.stale() {
            d(&mut f.stale);
        }
    }
}

/// A peer as the status command sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    pub addr: IpAddr,
    pub info: PeerInfo,
    pub up: bool,
    /// When its stale routes go, if it is in graceful restart.
    pub stale_until: Option<Instant>,
    pub counters: PeerCounters,
}

#[derive(Clone, Debug)]
pub(crate) struct PeerSlot {
    pub addr: IpAddr,
    pub info: PeerInfo,
    pub up: bool,
    stale_until: Option<Instant>,
    /// In the long-lived stale phase (RFC 9494 §4.2): when each family's
    /// long-lived stale routes go. Empty otherwise.
    llgr_until: Vec<(AfiSafi, Instant)>,
    warned: bool,
    exceeded: bool,
}

/// Where one path stands in its prefix's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathState {
    /// The best path, and the step that decided it.
    Best(Step),
    /// In the multipath set; lost the best-path choice at this step.
    Multipath(Step),
    /// Eligible but not used; lost at this step (a step from
    /// [`Step::RouterId`] on means it fell outside the multipath width).
    Lost(Step),
    /// Refused by import policy; kept for display, never installed.
    Rejected(Reject),
    /// Its next hop does not resolve.
    Unresolved,
}

/// One path of a prefix, for display.
#[derive(Clone, Debug)]
pub struct PathView {
    pub peer: IpAddr,
    pub path_id: u32,
    pub attrs: Arc<PathAttrs>,
    pub stale: bool,
    pub state: PathState,
}

/// One prefix with its candidates, for display.
#[derive(Clone, Debug)]
pub struct PrefixView {
    pub prefix: IpNet,
    /// The installed ECMP set (empty: nothing installed).
    pub next_hops: Vec<NextHop>,
    /// Paths, in decision order (the multipath set first).
    pub paths: Vec<PathView>,
}

/// A prefix's best path, for export.
#[derive(Clone, Debug)]
pub struct Best {
    pub attrs: Arc<PathAttrs>,
    /// The peer it came from, and what it is.
    pub peer: IpAddr,
    pub ibgp: bool,
    pub router_id: Ipv4Addr,
}

/// One Loc-RIB row, for listings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSummary {
    pub prefix: IpNet,
    pub next_hops: Vec<NextHop>,
    /// Why the best path won, when there is one.
    pub reason: Option<Step>,
    pub paths: usize,
    /// Whether a path of the multipath set is stale.
    pub stale: bool,
    /// Rejected paths, and the first reason.
    pub rejected: usize,
    pub reject_reason: Option<Reject>,
}

trait Pfx: prefix_trie::Prefix + Copy + Into<IpNet> {}
impl Pfx for Ipv4Net {}
impl Pfx for Ipv6Net {}

/// The routing table.
pub struct Rib {
    cfg: RibConfig,
    policy: Policy,
    connected: Vec<IpNet>,
    resolver: Box<dyn Resolver + Send>,
    /// The resolver's answers since the last [`Rib::reresolve`] (which the
    /// daemon calls whenever the kernel's reachability changes).
    resolved: FastMap<IpAddr, bool>,
    interner: attrs::Interner,
    peers: Vec<PeerSlot>,
    counters: Vec<PeerCounters>,
    peer_index: FastMap<IpAddr, u16>,
    v4: PrefixMap<Ipv4Net, Entry>,
    v6: PrefixMap<Ipv6Net, Entry>,
    /// Prefixes whose paths changed since the last decision (see
    /// [`Rib::update`]), each with its next hops before.
    pending: Vec<(IpNet, NextHops)>,
    /// With [`RibConfig::track_export`]: prefixes whose best path may have
    /// changed since [`Rib::take_export`] (repeats allowed).
    export: Vec<IpNet>,
}

/// The queues a change to an entry feeds.
pub(crate) struct Queues<'a> {
    pending: &'a mut Vec<(IpNet, NextHops)>,
    export: &'a mut Vec<IpNet>,
}

impl Queues<'_> {
    fn touched(&mut self, ctx: &Ctx, prefix: IpNet) {
        if ctx.cfg.track_export {
            self.export.push(prefix);
        }
    }
}

impl Rib {
    /// A RIB whose next hops always resolve, with the default policy.
    pub fn new(cfg: RibConfig) -> Self {
        Rib::with_resolver(cfg, Box::new(AlwaysResolves))
    }

    /// A RIB that asks `resolver` (the FIB) whether next hops resolve.
    pub fn with_resolver(cfg: RibConfig, resolver: Box<dyn Resolver + Send>) -> Self {
        Rib {
            cfg,
            policy: Policy::default(),
            connected: Vec::new(),
            resolver,
            resolved: FastMap::default(),
            interner: attrs::Interner::default(),
            peers: Vec::new(),
            counters: Vec::new(),
            peer_index: FastMap::default(),
            v4: PrefixMap::new(),
            v6: PrefixMap::new(),
            pending: Vec::new(),
            export: Vec::new(),
        }
    }

    pub fn config(&self) -> &RibConfig {
        &self.cfg
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// A session came up. Returns changes if stale routes of a previous
    /// session must go now: RFC 4724 §4.2 removes them for each family the
    /// new session's GR capability does not list with the Forwarding State
    /// bit (or all of them if it has no GR capability).
    pub fn peer_up(&mut self, peer: IpAddr, info: PeerInfo) -> ChangeSet {
        let idx = match self.peer_index.get(&peer) {
            Some(&i) => i,
            None => {
                let slot = PeerSlot {
                    addr: peer,
                    info: info.clone(),
                    up: false,
                    stale_until: None,
                    llgr_until: Vec::new(),
                    warned: false,
                    exceeded: false,
                };
                // Reuse the slot of a peer that is gone and holds nothing
                // (dynamic neighbours come and go); paths refer to slots by
                // a 16-bit index.
                let free = self.peers.iter().zip(&self.counters).position(|(p, c)| {
                    !p.up && p.stale_until.is_none() && c.ipv4.received == 0 && c.ipv6.received == 0
                });
                let i = match free {
                    Some(i) => {
                        let old = self.peers[i].addr;
                        self.peer_index.remove(&old);
                        self.peers[i] = slot;
                        self.counters[i] = PeerCounters::default();
                        i as u16
                    }
                    None => match u16::try_from(self.peers.len()) {
                        Ok(i) => {
                            self.peers.push(slot);
                            self.counters.push(PeerCounters::default());
                            i
                        }
                        Err(_) => {
                            tracing::error!(%peer, "65536 peers hold routes; ignoring this one");
                            return ChangeSet::new();
                        }
                    },
                };
                self.peer_index.insert(peer, i);
                i
            }
        };
        let slot = &mut self.peers[idx as usize];
        slot.info = info;
        slot.up = true;
        // Long-lived stale routes stay stale until the End-of-RIB, as
        // graceful restart's do (RFC 9494 §4.2); their timer is over.
        slot.llgr_until.clear();
        slot.warned = false;
        slot.exceeded = false;
        let mut changes = ChangeSet::new();
        let c = self.counters[idx as usize];
        for (af, stale) in [
            (AfiSafi::IPV4_UNICAST, c.ipv4.stale),
            (AfiSafi::IPV6_UNICAST, c.ipv6.stale),
        ] {
            let preserved = self.peers[idx as usize]
                .info
                .graceful_restart
                .as_ref()
                .is_some_and(|g| g.families.iter().any(|&(f, fwd)| f == af && fwd));
            if stale > 0 && !preserved {
                changes.append(self.flush_stale(idx, Some(af)));
            }
        }
        changes
    }

    /// A session went down. With [`Down::Graceful`] and a peer that offered
    /// graceful restart with a non-zero restart time, its routes of the
    /// families in its capability stay, marked stale, and the restart time
    /// is returned: the caller arms a timer and calls
    /// [`Rib::stale_timer_expired`] (RFC 4724 §4.2). Otherwise they go.
    pub fn peer_down(
        &mut self,
        peer: IpAddr,
        now: Instant,
        how: Down,
    ) -> (ChangeSet, Option<Duration>) {
        let Some(&idx) = self.peer_index.get(&peer) else {
            return (ChangeSet::new(), None);
        };
        let slot = &mut self.peers[idx as usize];
        slot.up = false;
        slot.llgr_until.clear();
        let gr = match (&slot.info.graceful_restart, how) {
            (Some(g), Down::Graceful) if !g.restart_time.is_zero() => Some(g.clone()),
            // RFC 9494 §4.2: a restart time of zero goes straight to the
            // long-lived stale phase.
            (Some(_), Down::Graceful) if !slot.info.llgr.is_empty() => {
                return self.long_lived(idx, now, true);
            }
            _ => None,
        };
        let mut changes = ChangeSet::new();
        let Some(gr) = gr else {
            self.sweep(&mut changes, |_, p| (p.peer == idx).then_some(None));
            self.interner.collect();
            return (changes, None);
        };
        slot.stale_until = Some(now + gr.restart_time);
        let keep4 = gr.families.iter().any(|f| f.0 == AfiSafi::IPV4_UNICAST);
        let keep6 = gr.families.iter().any(|f| f.0 == AfiSafi::IPV6_UNICAST);
        self.sweep(&mut changes, |prefix, p| {
            if p.peer != idx {
                return None;
            }
            let keep = if matches!(prefix, IpNet::V4(_)) {
                keep4
            } else {
                keep6
            };
            if keep {
                let mut q = p.clone();
                q.flags |= STALE;
                Some(Some(q))
            } else {
                Some(None)
            }
        });
        self.interner.collect();
        (changes, Some(gr.restart_time))
    }

    /// The long-lived stale phase begins (RFC 9494 §4.2): of the peer's
    /// stale routes (all its routes when `all`: the session just dropped
    /// with a restart time of zero), those of a family with a long-lived
    /// stale time stay, with the LLGR_STALE community attached, which
    /// makes them the least preferred (§4.3) and keeps them from peers
    /// that did not advertise LLGR (§4.5); those with NO_LLGR, or of
    /// another family, go. Returns the time to the first family's end.
    fn long_lived(&mut self, idx: u16, now: Instant, all: bool) -> (ChangeSet, Option<Duration>) {
        let llgr: Vec<(AfiSafi, Duration)> = self.peers[idx as usize]
            .info
            .llgr
            .iter()
            .filter(|(_, t)| !t.is_zero())
            .copied()
            .collect();
        let time = |v6: bool| {
            let af = if v6 {
                AfiSafi::IPV6_UNICAST
            } else {
                AfiSafi::IPV4_UNICAST
            };
            llgr.iter().find(|(f, _)| *f == af).map(|(_, t)| *t)
        };
        let mut marked: HashMap<*const PathAttrs, Arc<PathAttrs>> = HashMap::new();
        let mut changes = ChangeSet::new();
        self.sweep(&mut changes, |prefix, p| {
            if p.peer != idx || !(all || p.stale()) {
                return None;
            }
            if time(matches!(prefix, IpNet::V6(_))).is_none()
                || p.attrs.communities.contains(&Community::NO_LLGR)
            {
                return Some(None);
            }
            if p.attrs.communities.contains(&Community::LLGR_STALE) && p.stale() {
                return None;
            }
            let attrs = marked
                .entry(Arc::as_ptr(&p.attrs))
                .or_insert_with(|| {
                    let mut a = (*p.attrs).clone();
                    if !a.communities.contains(&Community::LLGR_STALE) {
                        a.communities.push(Community::LLGR_STALE);
                    }
                    Arc::new(a)
                })
                .clone();
            let mut q = p.clone();
            q.attrs = attrs;
            q.flags |= STALE;
            Some(Some(q))
        });
        drop(marked);
        self.interner.collect();
        let slot = &mut self.peers[idx as usize];
        slot.llgr_until = llgr.iter().map(|(f, t)| (*f, now + *t)).collect();
        let first = llgr.iter().map(|(_, t)| *t).min();
        slot.stale_until = first.map(|t| now + t);
        (changes, first)
    }

    /// Whether the peer's routes are in the long-lived stale phase.
    pub fn in_long_lived_stale(&self, peer: IpAddr) -> bool {
        self.peer_index
            .get(&peer)
            .is_some_and(|&i| !self.peers[i as usize].llgr_until.is_empty())
    }

    /// The restart (or stale-path) timer fired. A peer with long-lived
    /// graceful restart enters the long-lived stale phase (RFC 9494 §4.2)
    /// and the time to its next end is returned, for the caller to call
    /// again; otherwise, or once that phase is over for a family, the
    /// peer's stale routes (of that family) go.
    pub fn stale_timer_expired(
        &mut self,
        peer: IpAddr,
        now: Instant,
    ) -> (ChangeSet, Option<Duration>) {
        let Some(&idx) = self.peer_index.get(&peer) else {
            return (ChangeSet::new(), None);
        };
        let slot = &self.peers[idx as usize];
        let c = self.counters[idx as usize];
        if slot.llgr_until.is_empty()
            && !slot.info.llgr.is_empty()
            && c.ipv4.stale + c.ipv6.stale > 0
        {
            return self.long_lived(idx, now, false);
        }
        let mut c = ChangeSet::new();
        if slot.llgr_until.is_empty() {
            self.peers[idx as usize].stale_until = None;
            c = self.flush_stale(idx, None);
        } else {
            let (due, left): (Vec<_>, Vec<_>) =
                slot.llgr_until.iter().partition(|(_, t)| *t <= now);
            for (af, _) in due {
                c.append(self.flush_stale(idx, Some(af)));
            }
            let slot = &mut self.peers[idx as usize];
            slot.stale_until = left.iter().map(|(_, t)| *t).min();
            slot.llgr_until = left;
        }
        self.interner.collect();
        let next = self.peers[idx as usize]
            .stale_until
            .map(|t| t.saturating_duration_since(now));
        (c, next)
    }

    fn flush_stale(&mut self, idx: u16, af: Option<AfiSafi>) -> ChangeSet {
        let mut changes = ChangeSet::new();
        let c = self.counters[idx as usize];
        let (s4, s6) = (c.ipv4.stale > 0, c.ipv6.stale > 0);
        let (do4, do6) = match af {
            None => (s4, s6),
            Some(a) if a == AfiSafi::IPV4_UNICAST => (s4, false),
            Some(a) if a == AfiSafi::IPV6_UNICAST => (false, s6),
            Some(_) => (false, false),
        };
        let mut f = |_: IpNet, p: &Path| (p.peer == idx && p.stale()).then_some(None);
        if do4 {
            self.sweep_family::<Ipv4Net>(false, &mut changes, &mut f);
        }
        if do6 {
            self.sweep_family::<Ipv6Net>(true, &mut changes, &mut f);
        }
        if self.counters[idx as usize].ipv4.stale + self.counters[idx as usize].ipv6.stale == 0 {
            self.peers[idx as usize].stale_until = None;
        }
        changes
    }

    /// Applies one UPDATE from `peer`: withdrawals, announcements (classic
    /// and MP_REACH_NLRI, IPv4 and IPv6 unicast), RFC 7606 treat-as-withdraw
    /// and End-of-RIB (RFC 4724 §4.2: the peer's stale leftovers of that
    /// family go). The one way UPDATEs enter the table.
    ///
    /// Prefixes that already had paths are only marked: [`Rib::commit`]
    /// decides each once, so a batch of UPDATEs adding n paths to one
    /// prefix (a Calico service CIDR through ADD-PATH) costs one decision
    /// over n paths, not n. The changes known now (new prefixes, single
    /// paths replaced or withdrawn) are appended to `batch`; `commit`
    /// appends the rest, and a later change of a prefix supersedes an
    /// earlier one ([`ChangeSet`]). Call `commit` before reading the
    /// table; every other mutator commits first.
    pub fn update(
        &mut self,
        peer: IpAddr,
        u: &Update,
        _now: Instant,
        batch: &mut ChangeSet,
    ) -> Option<MaxPrefixEvent> {
        let &idx = self.peer_index.get(&peer)?;
        if !self.peers[idx as usize].up {
            return None;
        }
        self.counters[idx as usize].updates += 1;
        if let Some(af) = u.as_end_of_rib() {
            // Pending decisions stay pending unless stale paths go (the
            // sweep commits first).
            let stale = self.counters[idx as usize];
            batch.append(self.flush_stale(idx, Some(af)));
            // Attribute sets only lose users if stale paths went.
            if stale.ipv4.stale + stale.ipv6.stale > 0 {
                self.interner.collect();
            }
            return None;
        }
        let start = batch.len();
        let changes = batch;
        // RFC 7606 §2: treat-as-withdraw withdraws every NLRI of the UPDATE.
        let taw = u.treat_as_withdraw();
        if taw {
            self.counters[idx as usize].treat_as_withdraw += 1;
        }
        let mp_unreach = u
            .mp_unreach()
            .filter(|m| is_unicast(m.afi_safi))
            .map(|m| m.nlri.prefixes())
            .unwrap_or_default();
        let mp_reach = u.mp_reach().filter(|m| is_unicast(m.afi_safi));
        let mp_nlri = mp_reach.map(|m| m.nlri.prefixes()).unwrap_or_default();
        let mut mixed = !u.withdrawn.is_empty() || !mp_unreach.is_empty();
        for n in u.withdrawn.iter().chain(mp_unreach) {
            self.withdraw(idx, n, changes);
        }
        let info = &self.peers[idx as usize].info;
        let (ibgp, four) = (info.ibgp, info.four_octet_as);
        let classic = (!u.nlri.is_empty())
            .then(|| PathAttrs::classic_next_hop(u).map(|nh| (nh, None)))
            .flatten();
        let mp = mp_reach.and_then(|m| PathAttrs::mp_next_hop(&m.next_hop));
        for (nlri, nh) in [(u.nlri.as_slice(), classic), (mp_nlri, mp)] {
            if nlri.is_empty() {
                continue;
            }
            mixed |= nlri.iter().any(|n| n.path_id.is_some());
            let attrs = match nh {
                Some((nh, ll)) if !taw => Some(PathAttrs::from_update(u, nh, ll, ibgp, four)),
                _ => None,
            };
            let Some(attrs) = attrs else {
                for n in nlri {
                    self.withdraw(idx, n, changes);
                }
                continue;
            };
            self.counters[idx as usize].announced += nlri.len() as u64;
            self.announce(idx, nlri, attrs, changes);
        }
        if mixed && changes.len() - start > 1 {
            // At most one change per prefix from this UPDATE, the last.
            changes.dedup_since(start);
        }
        self.check_max_prefix(idx)
    }

    fn check_max_prefix(&mut self, idx: u16) -> Option<MaxPrefixEvent> {
        let slot = &mut self.peers[idx as usize];
        let mp = self.policy.max_prefix(slot.addr)?;
        let count = self.counters[idx as usize].accepted();
        let (peer, limit) = (slot.addr, mp.limit);
        if count > limit && !slot.exceeded {
            slot.exceeded = true;
            return Some(MaxPrefixEvent::Exceeded { peer, count, limit });
        }
        let warn_at = (limit as u64 * mp.warning_percent as u64).div_ceil(100);
        if count as u64 >= warn_at && !slot.warned && !slot.exceeded {
            slot.warned = true;
            return Some(MaxPrefixEvent::Warning { peer, count, limit });
        }
        None
    }

    /// Rejections that depend on the attributes only.
    fn attr_reject(&self, idx: u16, attrs: &PathAttrs) -> Option<Reject> {
        // RFC 4271 §9.1.2: a path holding our AS is a loop.
        if attrs.as_path.contains(self.cfg.local_as) && !self.peers[idx as usize].info.ibgp {
            return Some(Reject::AsLoop);
        }
        // RFC 4456 §8: a reflected route carrying our own router id, or
        // one that passed through our cluster.
        if attrs.originator_id == Some(self.cfg.router_id) {
            return Some(Reject::OriginatorIsUs);
        }
        if attrs.cluster_list.contains(&self.cfg.cluster_id) {
            return Some(Reject::ClusterLoop);
        }
        None
    }

    fn announce(&mut self, idx: u16, nlri: &[Nlri], attrs: PathAttrs, out: &mut ChangeSet) {
        let attrs = self.interner.intern(attrs);
        let hop_ok = {
            let ctx = Ctx {
                peers: &self.peers,
                cfg: &self.cfg,
            };
            let probe = Path {
                attrs: attrs.clone(),
                path_id: 0,
                peer: idx,
                reject: None,
                flags: 0,
            };
            let addr = ctx.install_hop(&probe).addr;
            match self.resolved.get(&addr) {
                Some(&ok) => ok,
                None => {
                    let ok = self.resolver.resolves(addr);
                    if self.resolved.len() >= RESOLVED_CACHE {
                        self.resolved.clear();
                    }
                    self.resolved.insert(addr, ok);
                    ok
                }
            }
        };
        let flags = if hop_ok { 0 } else { UNRESOLVED };
        // The policy is looked up once per UPDATE; the attribute checks
        // come after the prefix checks, as in `reevaluate`.
        let attr_reject = self.attr_reject(idx, &attrs);
        let policy = self.policy.for_peer(self.peers[idx as usize].addr);
        for n in nlri {
            let prefix = trunc(n.prefix);
            let path = Path {
                attrs: attrs.clone(),
                path_id: n.path_id.unwrap_or(0),
                peer: idx,
                reject: policy.evaluate(&prefix, &self.connected).or(attr_reject),
                flags,
            };
            let v6 = matches!(prefix, IpNet::V6(_));
            self.counters[idx as usize].account(v6, &path, true);
            let ctx = Ctx {
                peers: &self.peers,
                cfg: &self.cfg,
            };
            let mut q = Queues {
                pending: &mut self.pending,
                export: &mut self.export,
            };
            let old = match prefix {
                IpNet::V4(p) => upsert(&mut self.v4, &ctx, p, path, out, &mut q),
                IpNet::V6(p) => upsert(&mut self.v6, &ctx, p, path, out, &mut q),
            };
            if let Some(old) = old {
                self.counters[idx as usize].account(v6, &old, false);
            }
        }
    }

    fn withdraw(&mut self, idx: u16, n: &Nlri, out: &mut ChangeSet) {
        let prefix = trunc(n.prefix);
        let pid = n.path_id.unwrap_or(0);
        self.counters[idx as usize].withdrawn += 1;
        let ctx = Ctx {
            peers: &self.peers,
            cfg: &self.cfg,
        };
        let mut q = Queues {
            pending: &mut self.pending,
            export: &mut self.export,
        };
        let old = match prefix {
            IpNet::V4(p) => remove(&mut self.v4, &ctx, p, idx, pid, out, &mut q),
            IpNet::V6(p) => remove(&mut self.v6, &ctx, p, idx, pid, out, &mut q),
        };
        if let Some(old) = old {
            self.counters[idx as usize].account(matches!(prefix, IpNet::V6(_)), &old, false);
        }
    }

    /// Walks every path of both tables. `f` returns `None` to leave a path
    /// alone, `Some(None)` to remove it, `Some(Some(p))` to replace it.
    fn sweep(
        &mut self,
        changes: &mut ChangeSet,
        mut f: impl FnMut(IpNet, &Path) -> Option<Option<Path>>,
    ) {
        self.sweep_family::<Ipv4Net>(false, changes, &mut f);
        self.sweep_family::<Ipv6Net>(true, changes, &mut f);
    }

    fn sweep_family<P: Pfx>(
        &mut self,
        v6: bool,
        changes: &mut ChangeSet,
        f: &mut dyn FnMut(IpNet, &Path) -> Option<Option<Path>>,
    ) where
        Self: TableOf<P>,
    {
        changes.append(self.commit());
        let ctx = Ctx {
            peers: &self.peers,
            cfg: &self.cfg,
        };
        let (table, counters) =
            <Self as TableOf<P>>::parts(&mut self.v4, &mut self.v6, &mut self.counters);
        let self_export = &mut self.export;
        let mut empty = Vec::new();
        for (prefix, e) in table.iter_mut() {
            let net: IpNet = prefix.into();
            let mut touched = false;
            let mut old_hops = None;
            let mut i = 0;
            while i < e.paths().len() {
                match f(net, &e.paths()[i]) {
                    None => i += 1,
                    Some(new) => {
                        if !touched {
                            old_hops = Some(e.next_hops(&ctx));
                            touched = true;
                        }
                        let old = &e.paths()[i];
                        counters[old.peer as usize].account(v6, old, false);
                        match new {
                            Some(p) => {
                                counters[p.peer as usize].account(v6, &p, true);
                                e.paths_mut()[i] = p;
                                i += 1;
                            }
                            None => {
                                e.remove_at(i);
                            }
                        }
                    }
                }
            }
            if touched {
                if ctx.cfg.track_export {
                    self_export.push(net);
                }
                e.decide(&ctx);
                let new = e.next_hops(&ctx);
                if old_hops.as_ref() != Some(&new) {
                    changes.push(RouteChange {
                        prefix: net,
                        next_hops: new,
                    });
                }
                if e.is_empty() {
                    empty.push(prefix);
                }
            }
        }
        for p in empty {
            table.remove(&p);
        }
    }

    /// Decides every prefix whose paths changed since the last decision
    /// and returns the ones whose next hops changed.
    pub fn commit(&mut self) -> ChangeSet {
        let mut out = ChangeSet::new();
        if self.pending.is_empty() {
            return out;
        }
        let ctx = Ctx {
            peers: &self.peers,
            cfg: &self.cfg,
        };
        for (prefix, before) in std::mem::take(&mut self.pending) {
            if self.cfg.track_export {
                self.export.push(prefix);
            }
            match prefix {
                IpNet::V4(p) => settle(&mut self.v4, &ctx, p, before, &mut out),
                IpNet::V6(p) => settle(&mut self.v6, &ctx, p, before, &mut out),
            }
        }
        out
    }

    /// Replaces the import policy and re-evaluates every path from the
    /// Adj-RIB-In, without touching the sessions.
    pub fn set_policy(&mut self, policy: Policy) -> ChangeSet {
        self.policy = policy;
        self.reevaluate()
    }

    /// Sets one peer's policy (a dynamic neighbour taking its range's).
    /// Re-evaluates only if the peer holds paths; the changes include any
    /// the batch so far left to [`Rib::commit`].
    pub fn set_peer_policy(&mut self, peer: IpAddr, p: PeerPolicy) -> ChangeSet {
        self.policy.peers.insert(peer, p);
        let holds = self.peer_index.get(&peer).is_some_and(|&i| {
            let c = &self.counters[i as usize];
            c.ipv4.received + c.ipv6.received > 0
        });
        if holds {
            self.reevaluate()
        } else {
            ChangeSet::new()
        }
    }

    /// Changes the iBGP multipath width and decides every prefix again.
    pub fn set_multipath(&mut self, ibgp: usize) -> ChangeSet {
        self.cfg.ibgp_multipath = ibgp.max(1);
        // Every entry is decided again: no path changes, the width does.
        let mut changes = ChangeSet::new();
        self.sweep(&mut changes, |_, p| Some(Some(p.clone())));
        changes
    }

    /// Sets the box's connected networks (the policy refuses prefixes that
    /// equal or cover them) and re-evaluates.
    pub fn set_connected(&mut self, mut connected: Vec<IpNet>) -> ChangeSet {
        for c in &mut connected {
            *c = c.trunc();
        }
        connected.sort();
        connected.dedup();
        self.connected = connected;
        self.reevaluate()
    }

    fn reevaluate(&mut self) -> ChangeSet {
        let mut changes = ChangeSet::new();
        // Policy verdicts depend on (peer, prefix, attributes): recompute
        // them all; the closure cannot borrow self, so take what it needs.
        let policy = std::mem::take(&mut self.policy);
        let connected = std::mem::take(&mut self.connected);
        let peers: Vec<(IpAddr, bool)> = self.peers.iter().map(|p| (p.addr, p.info.ibgp)).collect();
        let (local_as, router_id, cluster_id) =
            (self.cfg.local_as, self.cfg.router_id, self.cfg.cluster_id);
        self.sweep(&mut changes, |prefix, p| {
            let (addr, ibgp) = peers[p.peer as usize];
            let r = policy.evaluate(addr, &prefix, &connected).or_else(|| {
                if p.attrs.as_path.contains(local_as) && !ibgp {
                    Some(Reject::AsLoop)
                } else if p.attrs.originator_id == Some(router_id) {
                    Some(Reject::OriginatorIsUs)
                } else if p.attrs.cluster_list.contains(&cluster_id) {
                    Some(Reject::ClusterLoop)
                } else {
                    None
                }
            });
            (r != p.reject).then(|| {
                let mut q = p.clone();
                q.reject = r;
                Some(q)
            })
        });
        self.policy = policy;
        self.connected = connected;
        changes
    }

    /// Asks the resolver again about every next hop (the FIB calls this
    /// when links, addresses or other routes changed) and re-decides the
    /// prefixes whose paths changed eligibility.
    pub fn reresolve(&mut self) -> ChangeSet {
        let mut changes = ChangeSet::new();
        let mut cache: HashMap<IpAddr, bool> = HashMap::new();
        self.resolved.clear();
        let resolver = std::mem::replace(&mut self.resolver, Box::new(AlwaysResolves));
        let ctx_peers = self.peers.clone();
        let cfg = self.cfg.clone();
        self.sweep(&mut changes, |_, p| {
            let ctx = Ctx {
                peers: &ctx_peers,
                cfg: &cfg,
            };
            let addr = ctx.install_hop(p).addr;
            let ok = *cache.entry(addr).or_insert_with(|| resolver.resolves(addr));
            let flags = if ok {
                p.flags & !UNRESOLVED
            } else {
                p.flags | UNRESOLVED
            };
            (flags != p.flags).then(|| {
                let mut q = p.clone();
                q.flags = flags;
                Some(q)
            })
        });
        self.resolver = resolver;
        changes
    }

    /// Replaces the resolver and re-resolves every next hop.
    pub fn set_resolver(&mut self, resolver: Box<dyn Resolver + Send>) -> ChangeSet {
        self.resolver = resolver;
        self.reresolve()
    }

    // ---- queries for the status command and tests ----

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            peers: &self.peers,
            cfg: &self.cfg,
        }
    }

    /// Every Loc-RIB prefix (IPv4 then IPv6, in prefix order).
    pub fn routes(&self) -> impl Iterator<Item = RouteSummary> + '_ {
        let ctx = self.ctx();
        let v4 = self.v4.iter().map(|(p, e)| (IpNet::V4(p), e));
        let v6 = self.v6.iter().map(|(p, e)| (IpNet::V6(p), e));
        v4.chain(v6).map(move |(prefix, e)| {
            let ps = e.paths();
            let rejected = ps.iter().filter(|p| p.reject.is_some()).count();
            RouteSummary {
                prefix,
                next_hops: e.next_hops(&ctx).to_vec(),
                reason: (e.ecmp() > 0).then_some(e.reason()),
                paths: ps.len(),
                stale: ps[..e.ecmp()].iter().any(|p| p.stale()),
                rejected,
                reject_reason: ps.iter().find_map(|p| p.reject),
            }
        })
    }

    /// What is installed: one change per prefix with next hops, in prefix
    /// order (the FIB's view of the Loc-RIB).
    pub fn installed(&self) -> Vec<RouteChange> {
        let ctx = self.ctx();
        let v4 = self.v4.iter().map(|(p, e)| (IpNet::V4(p), e));
        let v6 = self.v6.iter().map(|(p, e)| (IpNet::V6(p), e));
        v4.chain(v6)
            .filter(|(_, e)| e.ecmp() > 0)
            .map(|(prefix, e)| RouteChange {
                prefix,
                next_hops: e.next_hops(&ctx),
            })
            .collect()
    }

    /// Number of prefixes in the Loc-RIB (with or without a usable path).
    /// How many prefixes have a next-hop set (what the FIB is asked to
    /// install).
    pub fn selected(&self) -> usize {
        let v4 = self.v4.iter().filter(|(_, e)| e.ecmp() > 0).count();
        v4 + self.v6.iter().filter(|(_, e)| e.ecmp() > 0).count()
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Distinct attribute sets held.
    pub fn attr_sets(&self) -> usize {
        self.interner.len()
    }

    /// One prefix, with every candidate and why it won or lost.
    pub fn prefix(&self, prefix: IpNet) -> Option<PrefixView> {
        let prefix = prefix.trunc();
        let e = match prefix {
            IpNet::V4(p) => self.v4.get(&p)?,
            IpNet::V6(p) => self.v6.get(&p)?,
        };
        Some(self.view(prefix, e))
    }

    /// The longest installed prefix covering `addr`.
    pub fn lookup(&self, addr: IpAddr) -> Option<PrefixView> {
        match addr {
            IpAddr::V4(a) => {
                let host = Ipv4Net::new_assert(a, 32);
                self.v4
                    .cover(&host)
                    .filter(|(_, e)| e.ecmp() > 0)
                    .last()
                    .map(|(p, e)| self.view(IpNet::V4(p), e))
            }
            IpAddr::V6(a) => {
                let host = Ipv6Net::new_assert(a, 128);
                self.v6
                    .cover(&host)
                    .filter(|(_, e)| e.ecmp() > 0)
                    .last()
                    .map(|(p, e)| self.view(IpNet::V6(p), e))
            }
        }
    }

    fn view(&self, prefix: IpNet, e: &Entry) -> PrefixView {
        let ctx = self.ctx();
        let ps = e.paths();
        let eligible: Vec<usize> = (0..ps.len()).filter(|&i| ps[i].eligible()).collect();
        let mut lost = vec![None; ps.len()];
        if eligible.len() > 1 {
            let cands: Vec<_> = eligible.iter().map(|&i| ctx.cand(i, &ps[i])).collect();
            let d = decision::decide(&cands, self.cfg.ibgp_multipath, self.cfg.ebgp_multipath);
            for (k, &i) in eligible.iter().enumerate() {
                lost[i] = d.lost[k];
            }
        }
        let paths = ps
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let state = if let Some(r) = p.reject {
                    PathState::Rejected(r)
                } else if p.flags & UNRESOLVED != 0 {
                    PathState::Unresolved
                } else if i == 0 && e.ecmp() > 0 {
                    PathState::Best(e.reason())
                } else if i < e.ecmp() {
                    PathState::Multipath(lost[i].unwrap_or(Step::PathId))
                } else {
                    PathState::Lost(lost[i].unwrap_or(Step::PathId))
                };
                PathView {
                    peer: self.peers[p.peer as usize].addr,
                    path_id: p.path_id,
                    attrs: p.attrs.clone(),
                    stale: p.stale(),
                    state,
                }
            })
            .collect();
        PrefixView {
            prefix,
            next_hops: e.next_hops(&ctx).to_vec(),
            paths,
        }
    }

    /// One peer's state and counters.
    pub fn peer(&self, peer: IpAddr) -> Option<PeerStatus> {
        let &i = self.peer_index.get(&peer)?;
        Some(self.peer_status(i as usize))
    }

    /// Every peer known to the RIB.
    pub fn peers(&self) -> Vec<PeerStatus> {
        (0..self.peers.len()).map(|i| self.peer_status(i)).collect()
    }

    fn peer_status(&self, i: usize) -> PeerStatus {
        let s = &self.peers[i];
        PeerStatus {
            addr: s.addr,
            info: s.info.clone(),
            up: s.up,
            stale_until: s.stale_until,
            counters: self.counters[i],
        }
    }

    /// Turns export tracking on or off (a reload that adds or removes
    /// the peers routes are sent to).
    pub fn set_track_export(&mut self, on: bool) {
        self.cfg.track_export = on;
        if !on {
            self.export.clear();
        }
    }

    /// The prefixes whose best path may have changed since the last call
    /// (with [`RibConfig::track_export`]; repeats possible). Commits first.
    pub fn take_export(&mut self) -> (ChangeSet, Vec<IpNet>) {
        let cs = self.commit();
        (cs, std::mem::take(&mut self.export))
    }

    /// A prefix's best path, with where it came from.
    pub fn best(&self, prefix: &IpNet) -> Option<Best> {
        let e = match prefix {
            IpNet::V4(p) => self.v4.get(p)?,
            IpNet::V6(p) => self.v6.get(p)?,
        };
        self.best_of(e)
    }

    /// Every prefix with a best path, and that path (for a new session's
    /// initial table).
    pub fn bests(&self) -> impl Iterator<Item = (IpNet, Best)> + '_ {
        let v4 = self.v4.iter().map(|(p, e)| (IpNet::V4(p), e));
        let v6 = self.v6.iter().map(|(p, e)| (IpNet::V6(p), e));
        v4.chain(v6)
            .filter_map(|(p, e)| self.best_of(e).map(|b| (p, b)))
    }

    fn best_of(&self, e: &Entry) -> Option<Best> {
        if e.ecmp() == 0 {
            return None;
        }
        let p = &e.paths()[0];
        let slot = &self.peers[p.peer as usize];
        Some(Best {
            attrs: p.attrs.clone(),
            peer: slot.addr,
            ibgp: slot.info.ibgp,
            router_id: slot.info.router_id,
        })
    }

    /// The paths one peer sent for a family (its Adj-RIB-In), as
    /// (prefix, path id, attributes, rejection).
    pub fn adj_rib_in(
        &self,
        peer: IpAddr,
        af: AfiSafi,
    ) -> Vec<(IpNet, u32, Arc<PathAttrs>, Option<Reject>)> {
        let Some(&idx) = self.peer_index.get(&peer) else {
            return Vec::new();
        };
        let rows = |prefix: IpNet, e: &Entry| {
            e.paths()
                .iter()
                .filter(|p| p.peer == idx)
                .map(|p| (prefix, p.path_id, p.attrs.clone(), p.reject))
                .collect::<Vec<_>>()
        };
        if af == AfiSafi::IPV4_UNICAST {
            self.v4
                .iter()
                .flat_map(|(p, e)| rows(IpNet::V4(p), e))
                .collect()
        } else if af == AfiSafi::IPV6_UNICAST {
            self.v6
                .iter()
                .flat_map(|(p, e)| rows(IpNet::V6(p), e))
                .collect()
        } else {
            Vec::new()
        }
    }
}

/// Picks the table of a prefix type while splitting the borrows.
trait TableOf<P> {
    fn parts<'a>(
        v4: &'a mut PrefixMap<Ipv4Net, Entry>,
        v6: &'a mut PrefixMap<Ipv6Net, Entry>,
        counters: &'a mut [PeerCounters],
    ) -> (&'a mut PrefixMap<P, Entry>, &'a mut [PeerCounters]);
}

impl TableOf<Ipv4Net> for Rib {
    fn parts<'a>(
        v4: &'a mut PrefixMap<Ipv4Net, Entry>,
        _: &'a mut PrefixMap<Ipv6Net, Entry>,
        counters: &'a mut [PeerCounters],
    ) -> (&'a mut PrefixMap<Ipv4Net, Entry>, &'a mut [PeerCounters]) {
        (v4, counters)
    }
}

impl TableOf<Ipv6Net> for Rib {
    fn parts<'a>(
        _: &'a mut PrefixMap<Ipv4Net, Entry>,
        v6: &'a mut PrefixMap<Ipv6Net, Entry>,
        counters: &'a mut [PeerCounters],
    ) -> (&'a mut PrefixMap<Ipv6Net, Entry>, &'a mut [PeerCounters]) {
        (v6, counters)
    }
}

/// `IpNet::trunc` in integer arithmetic (this runs per prefix).
fn trunc(p: IpNet) -> IpNet {
    match p {
        IpNet::V4(n) => {
            let len = n.prefix_len();
            let mask = u32::MAX.checked_shl(32 - len as u32).unwrap_or(0);
            let a = u32::from(n.addr()) & mask;
            IpNet::V4(Ipv4Net::new_assert(a.into(), len))
        }
        IpNet::V6(n) => IpNet::V6(n.trunc()),
    }
}

fn is_unicast(af: AfiSafi) -> bool {
    af == AfiSafi::IPV4_UNICAST || af == AfiSafi::IPV6_UNICAST
}

/// Adds or replaces a path (RFC 4271 §9: a new advertisement of the same
/// prefix and path id from a peer replaces the old one; RFC 7911 §3).
/// Returns the replaced path. A prefix's first path, or the replacement
/// of its only path, is decided here (there is nothing to compare);
/// otherwise the entry is marked and left to [`Rib::commit`].
fn upsert<P: Pfx>(
    table: &mut PrefixMap<P, Entry>,
    ctx: &Ctx,
    prefix: P,
    path: Path,
    out: &mut ChangeSet,
    q: &mut Queues,
) -> Option<Path> {
    use prefix_trie::map::Entry as E;
    match table.entry(prefix) {
        E::Vacant(v) => {
            q.touched(ctx, prefix.into());
            let e = v.insert(Entry::new(path));
            if ctx.cfg.emit_changes && e.ecmp() > 0 {
                out.push(RouteChange {
                    prefix: prefix.into(),
                    next_hops: e.next_hops(ctx),
                });
            }
            None
        }
        E::Occupied(mut o) => {
            let e = o.get_mut();
            if let Some(only) = e.only()
                && only.peer == path.peer
                && only.path_id == path.path_id
            {
                q.touched(ctx, prefix.into());
                let before = ctx.cfg.emit_changes.then(|| e.next_hops(ctx));
                let old = std::mem::replace(e, Entry::new(path));
                if let Some(before) = before
                    && let after = e.next_hops(ctx)
                    && before != after
                {
                    out.push(RouteChange {
                        prefix: prefix.into(),
                        next_hops: after,
                    });
                }
                return old.into_only();
            }
            mark(e, prefix, ctx, q.pending);
            match e.find(path.peer, path.path_id) {
                Some(i) => Some(std::mem::replace(&mut e.paths_mut()[i], path)),
                None => {
                    e.push(path);
                    None
                }
            }
        }
    }
}

/// Marks an entry for [`Rib::commit`], remembering its next hops.
fn mark<P: Pfx>(e: &mut Entry, prefix: P, ctx: &Ctx, pending: &mut Vec<(IpNet, NextHops)>) {
    if !e.dirty() {
        let before = if ctx.cfg.emit_changes {
            e.next_hops(ctx)
        } else {
            NextHops::new()
        };
        pending.push((prefix.into(), before));
        e.mark();
    }
}

/// Removes a path; returns it if it was there. The withdrawal of a
/// prefix's only path takes effect here; otherwise the entry is marked
/// and left to [`Rib::commit`].
fn remove<P: Pfx>(
    table: &mut PrefixMap<P, Entry>,
    ctx: &Ctx,
    prefix: P,
    peer: u16,
    path_id: u32,
    out: &mut ChangeSet,
    q: &mut Queues,
) -> Option<Path> {
    let e = table.get_mut(&prefix)?;
    let i = e.find(peer, path_id)?;
    if e.only().is_some() {
        q.touched(ctx, prefix.into());
        if ctx.cfg.emit_changes && e.ecmp() > 0 {
            out.push(RouteChange {
                prefix: prefix.into(),
                next_hops: NextHops::new(),
            });
        }
        let old = e.remove_at(i);
        table.remove(&prefix);
        return Some(old);
    }
    mark(e, prefix, ctx, q.pending);
    Some(e.remove_at(i))
}

/// Decides a marked entry; records a change if its next hops moved, and
/// drops it if no path is left.
fn settle<P: Pfx>(
    table: &mut PrefixMap<P, Entry>,
    ctx: &Ctx,
    prefix: P,
    before: NextHops,
    out: &mut ChangeSet,
) {
    let Some(e) = table.get_mut(&prefix) else {
        return;
    };
    e.decide(ctx);
    if ctx.cfg.emit_changes
        && let after = e.next_hops(ctx)
        && before != after
    {
        out.push(RouteChange {
            prefix: prefix.into(),
            next_hops: after,
        });
    }
    if e.is_empty() {
        table.remove(&prefix);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn trunc_agrees_with_ipnet(a: u32, l in 0u8..=32, b: u128, m in 0u8..=128) {
            let p = IpNet::V4(Ipv4Net::new_assert(a.into(), l));
            proptest::prop_assert_eq!(trunc(p), p.trunc());
            let p = IpNet::V6(Ipv6Net::new_assert(b.into(), m));
            proptest::prop_assert_eq!(trunc(p), p.trunc());
        }
    }
}
