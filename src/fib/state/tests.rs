//! The reconciliation against a pretend kernel: a map of bgpd's routes
//! that the state's operations change, refusing or losing acks on demand.

use std::collections::BTreeMap;

use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};

use super::ops::retry_backoff;
use super::*;
use crate::fib::{PrefixState, ReconcileReport, ShutdownReport};
use crate::route::{Resolver, RouteChange};

/// Prefixes per [`FibState::next_ops`]: small, so that batches are many.
const CHUNK: usize = 4;
const V0: u32 = 2;
const V1: u32 = 3;

/// bgpd's routes in the kernel, by prefix and metric, with the hops they
/// forward to; and its nexthop objects, as the kernel keeps them.
#[derive(Default)]
struct Kernel {
    ours: BTreeMap<(IpNet, u32), Vec<Hop>>,
    /// The object a route points at (RTA_NH_ID).
    route_nh: HashMap<(IpNet, u32), u32>,
    nh_hops: HashMap<u32, Hop>,
    nh_groups: HashMap<u32, Vec<u32>>,
    /// Replaces of these prefixes are refused with this errno.
    refuse: HashMap<IpNet, i32>,
    /// Groups are refused (as the kernel refuses some) with this text.
    refuse_groups: Option<&'static str>,
    /// Every object is refused with this errno.
    refuse_objects: Option<i32>,
    /// Every operation, in the order it came.
    log: Vec<Op>,
}

impl Kernel {
    fn run(&mut self, st: &FibState, ops: &[Op]) -> Vec<Outcome> {
        ops.iter()
            .map(|op| {
                self.log.push(*op);
                match *op {
                    Op::Replace { prefix, hops } => {
                        if let Some(&e) = self.refuse.get(&prefix) {
                            return Outcome::Err(e, "refused".into());
                        }
                        let m = st.config().metric;
                        match st.group_id(hops) {
                            Some(id) => {
                                let Some(fwd) = self.forwarding(id) else {
                                    return Outcome::Err(
                                        libc::EINVAL,
                                        "Nexthop id does not exist".into(),
                                    );
                                };
                                self.ours.insert((prefix, m), fwd);
                                self.route_nh.insert((prefix, m), id);
                            }
                            None => {
                                self.ours.insert((prefix, m), st.hops(hops).to_vec());
                                self.route_nh.remove(&(prefix, m));
                            }
                        }
                        Outcome::Ok
                    }
                    Op::Delete { prefix, metric } => match self.ours.remove(&(prefix, metric)) {
                        Some(_) => {
                            self.route_nh.remove(&(prefix, metric));
                            Outcome::Ok
                        }
                        None => Outcome::Err(libc::ESRCH, String::new()),
                    },
                    Op::NewHop { .. } | Op::NewGroup { .. } if self.refuse_objects.is_some() => {
                        Outcome::Err(self.refuse_objects.unwrap_or_default(), String::new())
                    }
                    Op::NewHop { id, hop } => {
                        if self.nh_hops.contains_key(&id) || self.nh_groups.contains_key(&id) {
                            return Outcome::Err(libc::EEXIST, String::new());
                        }
                        self.nh_hops.insert(id, hop);
                        Outcome::Ok
                    }
                    Op::NewGroup { .. } if self.refuse_groups.is_some() => {
                        Outcome::Err(libc::EINVAL, self.refuse_groups.unwrap_or_default().into())
                    }
                    Op::NewGroup { id, hops, replace } => {
                        if !replace
                            && (self.nh_hops.contains_key(&id) || self.nh_groups.contains_key(&id))
                        {
                            return Outcome::Err(libc::EEXIST, String::new());
                        }
                        let mut members = Vec::new();
                        for h in st.hops(hops) {
                            match st.hop_id(h).filter(|m| self.nh_hops.get(m) == Some(h)) {
                                Some(m) => members.push(m),
                                None => {
                                    return Outcome::Err(libc::EINVAL, "Invalid nexthop id".into());
                                }
                            }
                        }
                        self.nh_groups.insert(id, members);
                        self.refresh();
                        Outcome::Ok
                    }
                    Op::DelObject { id } => {
                        if self.nh_groups.remove(&id).is_some() {
                            self.refresh();
                            Outcome::Ok
                        } else if self.nh_hops.remove(&id).is_some() {
                            for g in self.nh_groups.values_mut() {
                                g.retain(|m| *m != id);
                            }
                            self.nh_groups.retain(|_, g| !g.is_empty());
                            self.refresh();
                            Outcome::Ok
                        } else {
                            Outcome::Err(libc::ENOENT, String::new())
                        }
                    }
                }
            })
            .collect()
    }

    /// The hops a group forwards to.
    fn forwarding(&self, id: u32) -> Option<Vec<Hop>> {
        let g = self.nh_groups.get(&id)?;
        let mut v: Vec<Hop> = g
            .iter()
            .filter_map(|m| self.nh_hops.get(m).copied())
            .collect();
        v.sort();
        Some(v)
    }

    /// Routes follow their groups; those of a deleted group go.
    fn refresh(&mut self) {
        let routes: Vec<((IpNet, u32), u32)> =
            self.route_nh.iter().map(|(k, v)| (*k, *v)).collect();
        for (k, id) in routes {
            match self.forwarding(id) {
                Some(f) => {
                    self.ours.insert(k, f);
                }
                None => {
                    self.ours.remove(&k);
                    self.route_nh.remove(&k);
                }
            }
        }
    }

    /// The link went down: its objects go, groups shrink, the routes of
    /// empty ones go (as net/ipv4/nexthop.c does).
    fn link_down(&mut self, ifindex: u32) {
        let gone: Vec<u32> = self
            .nh_hops
            .iter()
            .filter(|(_, h)| h.ifindex == ifindex)
            .map(|(i, _)| *i)
            .collect();
        for id in gone {
            self.nh_hops.remove(&id);
            for g in self.nh_groups.values_mut() {
                g.retain(|m| *m != id);
            }
        }
        self.nh_groups.retain(|_, g| !g.is_empty());
        self.refresh();
    }

    /// A dump of bgpd's nexthop objects.
    fn dump_objects(&self) -> Vec<KernelNexthop> {
        let hops = self.nh_hops.iter().map(|(id, h)| KernelNexthop {
            id: *id,
            protocol: 186,
            hop: Some(*h),
            group: Vec::new(),
        });
        let groups = self.nh_groups.iter().map(|(id, g)| KernelNexthop {
            id: *id,
            protocol: 186,
            hop: None,
            group: g.clone(),
        });
        hops.chain(groups).collect()
    }

    /// A dump of bgpd's routes.
    fn dump(&self) -> Vec<KernelRoute> {
        self.ours
            .iter()
            .map(|((prefix, metric), hops)| KernelRoute {
                prefix: *prefix,
                table: 254,
                protocol: 186,
                metric: *metric,
                kind: 1,
                hops: hops.iter().map(|h| (Some(h.gateway), h.ifindex)).collect(),
                nh_id: self.route_nh.get(&(*prefix, *metric)).copied(),
            })
            .collect()
    }

    fn has(&self, p: &str) -> Option<&Vec<Hop>> {
        self.ours.get(&(net(p), 20))
    }

    /// The prefixes of the operations logged since the last call.
    fn took(&mut self) -> Vec<(bool, IpNet)> {
        self.log
            .drain(..)
            .filter_map(|op| Some((matches!(op, Op::Replace { .. }), op.prefix()?)))
            .collect()
    }
}

/// Sends what the state asks until it has nothing left.
fn drive(st: &mut FibState, k: &mut Kernel, now: Instant) {
    for _ in 0..10_000 {
        if !st.has_work() {
            return;
        }
        let ops = st.next_ops(CHUNK);
        let out = k.run(st, &ops);
        st.outcomes(ops, out, now);
    }
    panic!("the state never settles");
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn nh(s: &str) -> NextHop {
    NextHop::new(s.parse().unwrap())
}

fn hop(gw: &str, ifindex: u32) -> Hop {
    Hop {
        gateway: gw.parse().unwrap(),
        ifindex,
    }
}

fn ch(p: &str, hops: &[&str]) -> ChangeSet {
    vec![RouteChange {
        prefix: net(p),
        next_hops: hops.iter().map(|h| nh(h)).collect(),
    }]
    .into()
}

fn link(index: u32, name: &str, up: bool) -> LinkMessage {
    let mut m = LinkMessage::default();
    m.header.index = index;
    if up {
        m.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
    }
    m.attributes.push(LinkAttribute::IfName(name.into()));
    m
}

fn address(index: u32, ip: &str) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.index = index;
    m.attributes
        .push(AddressAttribute::Address(ip.parse().unwrap()));
    m
}

fn kernel_route(p: &str, protocol: u8, metric: u32, hops: &[(Option<&str>, u32)]) -> KernelRoute {
    KernelRoute {
        prefix: net(p),
        table: 254,
        protocol,
        metric,
        kind: 1,
        hops: hops
            .iter()
            .map(|(g, i)| (g.map(|g| g.parse().unwrap()), *i))
            .collect(),
        nh_id: None,
    }
}

/// A connected route (proto kernel, no gateway).
fn connected(p: &str, ifindex: u32) -> KernelRoute {
    kernel_route(p, 2, 0, &[(None, ifindex)])
}

fn cfg() -> FibConfig {
    FibConfig::default()
}

/// A state whose view has two links up, v0 on 10.0.0.0/24 and v1 on
/// 10.0.1.0/24, as the dumps at startup show them.
fn lab(cfg: FibConfig, now: Instant) -> FibState {
    let mut st = FibState::new(cfg, now);
    st.resync(
        &[link(V0, "v0", true), link(V1, "v1", true)],
        &[address(V0, "10.0.0.1"), address(V1, "10.0.1.1")],
        vec![connected("10.0.0.0/24", V0), connected("10.0.1.0/24", V1)],
    );
    assert!(st.settle());
    st
}

fn state(st: &FibState, p: &str) -> Option<PrefixState> {
    st.lookup(&net(p)).map(|s| s.state)
}

fn installed(hops: &[&str]) -> Option<PrefixState> {
    Some(PrefixState::Installed {
        hops: hops.iter().map(|h| h.to_string()).collect(),
    })
}

#[test]
fn changes_go_in_spread_descending_order_in_chunks_and_the_last_one_wins() {
    let now = Instant::now();
    let mut st = lab(cfg(), now);
    st.initial_sync_done("test");
    let mut k = Kernel::default();
    let mut cs = ChangeSet::new();
    for i in [3, 9, 0, 7, 1, 8, 2, 6, 5, 4] {
        cs.append(ch(&format!("10.9.{i}.0/24"), &["10.0.0.2"]));
    }
    // A prefix changed twice in one set ends as its last change says.
    cs.append(ch("10.9.4.0/24", &["10.0.1.2"]));
    st.apply(cs);
    let first = st.next_ops(CHUNK);
    assert_eq!(first.len(), CHUNK);
    let out = k.run(&st, &first);
    st.outcomes(first, out, now);
    drive(&mut st, &mut k, now);
    // Ten prefixes in chunks of four: every third one per chunk
    // (Queue::spread), each chunk descending.
    let want: Vec<(bool, IpNet)> = [9, 6, 3, 0, 7, 4, 1, 8, 5, 2]
        .iter()
        .map(|i| (true, net(&format!("10.9.{i}.0/24"))))
        .collect();
    assert_eq!(CHUNK, 4);
    assert_eq!(k.took(), want);
    assert_eq!(k.has("10.9.4.0/24"), Some(&vec![hop("10.0.1.2", V1)]));
    assert_eq!(state(&st, "10.9.4.0/24"), installed(&["10.0.1.2 dev v1"]));
    assert_eq!(st.status().installed, 10);
    // Withdrawn: deleted, in the same order, and forgotten.
    let mut cs = ChangeSet::new();
    for i in 0..10 {
        cs.append(ch(&format!("10.9.{i}.0/24"), &[]));
    }
    st.apply(cs);
    drive(&mut st, &mut k, now);
    let want: Vec<(bool, IpNet)> = want.into_iter().map(|(_, p)| (false, p)).collect();
    assert_eq!(k.took(), want);
    assert!(k.ours.is_empty());
    assert_eq!(st.lookup(&net("10.9.4.0/24")), None);
    assert_eq!(
        (st.slots.v4.len(), st.desired.len(), st.hops.len()),
        (0, 0, 0)
    );
    assert_eq!((st.ops.replaced, st.ops.deleted), (10, 10));
}

#[test]
fn a_refused_route_is_retried_with_backoff() {
    let t0 = Instant::now();
    let mut st = lab(cfg(), t0);
    let mut k = Kernel::default();
    k.refuse.insert(net("10.1.0.0/24"), libc::EINVAL);
    st.apply(ch("10.1.0.0/24", &["10.0.0.2"]));
    drive(&mut st, &mut k, t0);
    let failed = |attempts| {
        Some(PrefixState::Failed {
            errno: libc::EINVAL,
            error: format!(
                "{}: refused",
                std::io::Error::from_raw_os_error(libc::EINVAL)
            ),
            attempts,
        })
    };
    assert_eq!(state(&st, "10.1.0.0/24"), failed(1));
    assert_eq!((st.status().failed, st.ops.errors), (1, 1));
    // The count `bgpd track` gets by event is the status's, without a walk.
    assert_eq!(st.failed(), 1);
    // Not before a second has passed, then once.
    st.tick(t0 + Duration::from_millis(999));
    assert!(!st.has_work());
    let t1 = t0 + Duration::from_secs(1);
    st.tick(t1);
    assert!(st.has_work());
    drive(&mut st, &mut k, t1);
    assert_eq!(state(&st, "10.1.0.0/24"), failed(2));
    // Then two seconds later; this time the kernel takes it.
    st.tick(t1 + Duration::from_millis(1999));
    assert!(!st.has_work());
    k.refuse.clear();
    let t2 = t1 + Duration::from_secs(2);
    st.tick(t2);
    drive(&mut st, &mut k, t2);
    assert_eq!(state(&st, "10.1.0.0/24"), installed(&["10.0.0.2 dev v0"]));
    assert_eq!((st.status().failed, st.failed()), (0, 0));
    assert!(st.fails.is_empty());
    assert_eq!(k.log.len(), 3);
    // The backoff doubles up to 30 s.
    let secs: Vec<u64> = (1..=7).map(|a| retry_backoff(a).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
}

#[test]
fn a_lost_ack_is_sent_again_and_asks_for_a_check() {
    let now = Instant::now();
    let mut st = lab(cfg(), now);
    let mut k = Kernel::default();
    st.apply(ch("10.1.0.0/24", &["10.0.0.2"]));
    let ops = st.next_ops(CHUNK);
    assert_eq!(ops.len(), 1);
    st.outcomes(ops, Vec::new(), now);
    assert_eq!(st.ops.unacknowledged, 1);
    assert!(st.has_work(), "queued again");
    assert!(!st.check_due(now));
    assert!(st.check_due(now + CHECK_SOON));
    assert!(!st.check_due(now + CHECK_SOON), "taken");
    drive(&mut st, &mut k, now);
    assert!(k.has("10.1.0.0/24").is_some());
}

#[test]
fn a_foreign_route_of_the_same_metric_blocks_and_its_removal_unblocks() {
    let now = Instant::now();
    let mut st = lab(cfg(), now);
    let mut k = Kernel::default();
    let same = kernel_route("10.2.0.0/24", 4, 20, &[(Some("10.0.1.2"), V1)]);
    let other = kernel_route("10.3.0.0/24", 4, 0, &[(Some("10.0.1.2"), V1)]);
    st.route(same.clone(), false);
    st.route(other, false);
    assert!(st.settle());
    let mut cs = ch("10.2.0.0/24", &["10.0.0.2"]);
    cs.append(ch("10.3.0.0/24", &["10.0.0.2"]));
    st.apply(cs);
    drive(&mut st, &mut k, now);
    assert_eq!(k.took(), vec![(true, net("10.3.0.0/24"))]);
    assert_eq!(
        state(&st, "10.2.0.0/24"),
        Some(PrefixState::ForeignConflict {
            protocol: 4,
            metric: 20
        })
    );
    // Another metric coexists, and is listed.
    let s = st.lookup(&net("10.3.0.0/24")).unwrap();
    assert_eq!(s.state, installed(&["10.0.0.2 dev v0"]).unwrap());
    assert_eq!((s.foreign.len(), s.foreign[0].metric), (1, 0));
    let status = st.status();
    assert_eq!((status.conflicts, status.installed), (1, 1));
    let listed: Vec<IpNet> = status.problems.iter().map(|p| p.prefix).collect();
    assert_eq!(listed, vec![net("10.2.0.0/24"), net("10.3.0.0/24")]);
    // The foreign route goes: ours goes in.
    st.route(same, true);
    assert!(st.settle());
    drive(&mut st, &mut k, now);
    assert_eq!(k.took(), vec![(true, net("10.2.0.0/24"))]);
    assert_eq!(state(&st, "10.2.0.0/24"), installed(&["10.0.0.2 dev v0"]));
    assert_eq!(st.status().conflicts, 0);
    assert!(st.conflicts.is_empty());
}

#[test]
fn a_previous_runs_routes_are_kept_until_the_sync_then_removed_unless_relearned() {
    let t0 = Instant::now();
    let mut k = Kernel::default();
    let gw = vec![hop("10.0.0.2", V0)];
    for p in ["10.5.0.0/24", "10.5.1.0/24", "10.5.2.0/24"] {
        k.ours.insert((net(p), 20), gw.clone());
    }
    // A metric changed in the configuration since.
    k.ours.insert((net("10.5.9.0/24"), 50), gw.clone());
    for run in ["sync", "timeout"] {
        let mut k = Kernel {
            ours: k.ours.clone(),
            ..Default::default()
        };
        let mut st = lab(cfg(), t0);
        for r in k.dump() {
            st.adopt(r);
        }
        assert_eq!(state(&st, "10.5.1.0/24"), Some(PrefixState::Stale));
        assert_eq!(st.lookup(&net("10.5.9.0/24")), None);
        assert_eq!(st.status().stale, 3);
        // Re-learned with the same next hops: not touched. A new one goes
        // in; nothing is removed yet.
        let mut cs = ch("10.5.0.0/24", &["10.0.0.2"]);
        cs.append(ch("10.5.3.0/24", &["10.0.0.2"]));
        st.apply(cs);
        drive(&mut st, &mut k, t0);
        assert_eq!(k.took(), vec![(true, net("10.5.3.0/24"))]);
        assert_eq!(k.ours.len(), 5);
        assert_eq!(state(&st, "10.5.0.0/24"), installed(&["10.0.0.2 dev v0"]));
        let t1 = if run == "sync" {
            st.tick(t0 + Duration::from_secs(119));
            assert!(!st.sync_done());
            st.initial_sync_done("test");
            t0
        } else {
            st.tick(t0 + Duration::from_secs(119));
            assert!(!st.sync_done() && !st.has_work());
            st.tick(t0 + Duration::from_secs(120));
            t0 + Duration::from_secs(120)
        };
        assert!(st.sync_done(), "{run}");
        drive(&mut st, &mut k, t1);
        // The old metric's route first, then the stale ones, descending.
        assert_eq!(
            k.took(),
            vec![
                (false, net("10.5.9.0/24")),
                (false, net("10.5.2.0/24")),
                (false, net("10.5.1.0/24")),
            ],
            "{run}"
        );
        let left: Vec<IpNet> = k.ours.keys().map(|(p, _)| *p).collect();
        assert_eq!(left, vec![net("10.5.0.0/24"), net("10.5.3.0/24")]);
        let status = st.status();
        assert_eq!(
            (status.stale, status.installed, status.ops.replaced),
            (0, 2, 1)
        );
    }
}

/// RFC 4724 §4.1 deferral: a route of a previous run re-learned with other
/// next hops (half an ECMP set, say) stays as it is until the initial sync,
/// then is replaced once; a prefix the kernel lacks goes in at once.
#[test]
fn a_relearned_route_with_other_next_hops_waits_for_the_sync() {
    let now = Instant::now();
    let mut k = Kernel::default();
    k.ours.insert(
        (net("10.5.0.0/24"), 20),
        vec![hop("10.0.0.2", V0), hop("10.0.1.2", V1)],
    );
    k.ours
        .insert((net("10.5.1.0/24"), 20), vec![hop("10.0.0.2", V0)]);
    let mut st = lab(cfg(), now);
    for r in k.dump() {
        st.adopt(r);
    }
    let mut cs = ch("10.5.0.0/24", &["10.0.1.2"]);
    cs.append(ch("10.5.1.0/24", &["10.0.0.2"]));
    cs.append(ch("10.5.2.0/24", &["10.0.0.2"]));
    st.apply(cs);
    drive(&mut st, &mut k, now);
    assert_eq!(k.took(), vec![(true, net("10.5.2.0/24"))]);
    assert_eq!(k.has("10.5.0.0/24").map(Vec::len), Some(2), "deferred");
    // The RIB changes its mind again before the sync: still nothing.
    st.apply(ch("10.5.0.0/24", &["10.0.0.2", "10.0.1.2"]));
    drive(&mut st, &mut k, now);
    assert!(k.took().is_empty());
    st.apply(ch("10.5.0.0/24", &["10.0.1.2"]));
    st.initial_sync_done("test");
    drive(&mut st, &mut k, now);
    // One replace for the prefix that changed; the unchanged one is not
    // touched.
    assert_eq!(k.took(), vec![(true, net("10.5.0.0/24"))]);
    assert_eq!(k.has("10.5.0.0/24"), Some(&vec![hop("10.0.1.2", V1)]));
    assert_eq!(st.status().stale, 0);
}

/// A whole check: the dump, the repairs, the report.
fn check(st: &mut FibState, k: &mut Kernel, now: Instant) -> ReconcileReport {
    drive(st, k, now);
    let mut c = st.check();
    for r in k.dump() {
        st.check_route(&mut c, r);
    }
    assert!(st.check_dumped(&mut c, true, now));
    drive(st, k, now);
    st.check_report(c)
}

#[test]
fn drift_is_repaired_in_each_direction() {
    let now = Instant::now();
    let mut st = lab(cfg(), now);
    st.initial_sync_done("test");
    let mut k = Kernel::default();
    let mut cs = ch("10.30.0.0/24", &["10.0.0.2"]);
    cs.append(ch("10.30.1.0/24", &["10.0.0.2"]));
    cs.append(ch("10.30.2.0/24", &["10.0.0.2"]));
    st.apply(cs);
    drive(&mut st, &mut k, now);
    // Someone deletes one, points one elsewhere, adds one with our
    // protocol, and one with our protocol and another metric.
    k.ours.remove(&(net("10.30.0.0/24"), 20));
    k.ours
        .insert((net("10.30.1.0/24"), 20), vec![hop("10.0.1.2", V1)]);
    k.ours
        .insert((net("10.31.0.0/24"), 20), vec![hop("10.0.0.2", V0)]);
    k.ours
        .insert((net("10.32.0.0/24"), 30), vec![hop("10.0.0.2", V0)]);
    k.took();
    let r = check(&mut st, &mut k, now);
    assert_eq!(r.kernel_routes, 4);
    assert_eq!(r.reinstalled, vec![net("10.30.0.0/24")]);
    assert_eq!(r.replaced, vec![net("10.30.1.0/24")]);
    assert_eq!(r.removed, vec![net("10.31.0.0/24")]);
    assert!(r.failed.is_empty());
    let gw = vec![hop("10.0.0.2", V0)];
    let want: BTreeMap<(IpNet, u32), Vec<Hop>> = ["10.30.0.0/24", "10.30.1.0/24", "10.30.2.0/24"]
        .iter()
        .map(|p| ((net(p), 20), gw.clone()))
        .collect();
    assert_eq!(k.ours, want, "the kernel holds what was desired");
    assert_eq!(check(&mut st, &mut k, now).repaired(), 0);
    assert_eq!(st.lookup(&net("10.31.0.0/24")), None);
}

#[test]
fn before_the_sync_a_check_keeps_unknown_routes_and_a_failed_dump_is_retried() {
    let now = Instant::now();
    let mut st = lab(cfg(), now);
    let mut k = Kernel::default();
    st.apply(ch("10.30.0.0/24", &["10.0.0.2"]));
    drive(&mut st, &mut k, now);
    k.ours
        .insert((net("10.31.0.0/24"), 20), vec![hop("10.0.0.2", V0)]);
    let r = check(&mut st, &mut k, now);
    assert_eq!(r.repaired(), 0, "{r:?}");
    assert_eq!(state(&st, "10.31.0.0/24"), Some(PrefixState::Stale));
    assert!(k.has("10.31.0.0/24").is_some());
    // A dump that fails part way: nothing counts as missing, and the
    // check comes again five seconds later.
    k.ours.clear();
    let mut c = st.check();
    assert!(!st.check_dumped(&mut c, false, now));
    assert!(!st.has_work());
    assert!(!st.check_due(now + Duration::from_millis(4999)));
    assert!(st.check_due(now + Duration::from_secs(5)));
    // The sync removes the one kept; a full check puts the other back.
    st.initial_sync_done("test");
    let r = check(&mut st, &mut k, now);
    assert_eq!(r.reinstalled, vec![net("10.30.0.0/24")]);
    assert_eq!(k.ours.len(), 1);
}

#[test]
fn ecmp_sets_are_interned_and_released() {
    let now = Instant::now();
    let mut st = lab(cfg(), now);
    let mut k = Kernel::default();
    let mut cs = ch("10.7.0.0/24", &["10.0.0.2", "10.0.1.2"]);
    // Unsorted, with a repeat: the same set.
    cs.append(ch("10.7.1.0/24", &["10.0.1.2", "10.0.0.2", "10.0.1.2"]));
    cs.append(ch("10.7.2.0/24", &["10.0.0.2"]));
    st.apply(cs);
    drive(&mut st, &mut k, now);
    let both = vec![hop("10.0.0.2", V0), hop("10.0.1.2", V1)];
    assert_eq!(k.has("10.7.0.0/24"), Some(&both));
    assert_eq!(k.has("10.7.1.0/24"), Some(&both));
    assert_eq!(st.desired.len(), 2);
    assert_eq!(st.hops.len(), 2);
    let (set, _) = st.hops.intern(&both);
    st.hops.release(set);
    // Two installed slots and the desired set's resolution.
    assert_eq!(st.hops.refs(set), 3);
    st.apply(ch("10.7.0.0/24", &[]));
    drive(&mut st, &mut k, now);
    assert_eq!((st.desired.len(), st.hops.refs(set)), (2, 2));
    st.apply(ch("10.7.1.0/24", &["10.0.0.2"]));
    drive(&mut st, &mut k, now);
    assert_eq!((st.desired.len(), st.hops.len()), (1, 1));
    assert_eq!(st.hops.refs(set), 0, "the ECMP set is gone");
    assert_eq!(k.has("10.7.1.0/24"), Some(&vec![hop("10.0.0.2", V0)]));
    let mut cs = ch("10.7.1.0/24", &[]);
    cs.append(ch("10.7.2.0/24", &[]));
    st.apply(cs);
    drive(&mut st, &mut k, now);
    assert_eq!(
        (st.desired.len(), st.hops.len(), st.slots.v4.len()),
        (0, 0, 0)
    );
    assert!(k.ours.is_empty());
}

#[test]
fn an_unreachable_next_hop_makes_a_prefix_pending_and_back() {
    let now = Instant::now();
    let mut st = lab(cfg(), now);
    let mut k = Kernel::default();
    let mut cs = ch("10.6.0.0/24", &["10.0.9.2"]);
    cs.append(ch("10.6.1.0/24", &["10.0.0.2", "10.0.9.2"]));
    st.apply(cs);
    drive(&mut st, &mut k, now);
    assert_eq!(state(&st, "10.6.0.0/24"), Some(PrefixState::Pending));
    assert_eq!(st.status().pending, 1);
    // Only the reachable member of an ECMP set goes in.
    assert_eq!(k.took(), vec![(true, net("10.6.1.0/24"))]);
    assert!(!st.reachability().resolves("10.0.9.2".parse().unwrap()));
    // An address on v1 brings its connected route.
    st.address(&address(V1, "10.0.9.1"), false);
    st.route(connected("10.0.9.0/24", V1), false);
    assert!(st.settle());
    assert!(!st.settle(), "reported once");
    assert!(st.reachability().resolves("10.0.9.2".parse().unwrap()));
    drive(&mut st, &mut k, now);
    assert_eq!(state(&st, "10.6.0.0/24"), installed(&["10.0.9.2 dev v1"]));
    assert_eq!(k.has("10.6.1.0/24").map(Vec::len), Some(2));
    // v1 goes down: pending again, and a check comes soon (the kernel
    // drops IPv4 routes through a link that goes down without a word).
    k.took();
    st.link(&link(V1, "v1", false), false, now);
    assert!(st.settle());
    assert!(!st.reachability().resolves("10.0.9.2".parse().unwrap()));
    drive(&mut st, &mut k, now);
    assert_eq!(state(&st, "10.6.0.0/24"), Some(PrefixState::Pending));
    assert_eq!(k.has("10.6.0.0/24"), None);
    assert_eq!(k.has("10.6.1.0/24"), Some(&vec![hop("10.0.0.2", V0)]));
    assert!(st.check_due(now + CHECK_SOON));
    // And up.
    st.link(&link(V1, "v1", true), false, now);
    assert!(st.settle());
    drive(&mut st, &mut k, now);
    assert_eq!(state(&st, "10.6.0.0/24"), installed(&["10.0.9.2 dev v1"]));
    // A route change elsewhere still tells the RIB, without touching ours.
    k.took();
    st.route(
        kernel_route("10.99.0.0/16", 4, 0, &[(Some("10.0.0.9"), V0)]),
        false,
    );
    assert!(st.settle());
    drive(&mut st, &mut k, now);
    assert!(k.took().is_empty());
}

#[test]
fn routes_stay_at_a_graceful_shutdown_and_go_otherwise() {
    let now = Instant::now();
    // (keep configured, removal asked: SIGINT or `bgpd stop --flush`)
    for (keep, remove) in [(true, false), (true, true), (false, false)] {
        let mut st = lab(
            FibConfig {
                keep_on_shutdown: keep.then(|| Duration::from_secs(120)),
                ..cfg()
            },
            now,
        );
        let mut k = Kernel::default();
        k.ours
            .insert((net("10.8.9.0/24"), 50), vec![hop("10.0.0.2", V0)]);
        for r in k.dump() {
            st.adopt(r);
        }
        let mut cs = ch("10.8.0.0/24", &["10.0.0.2"]);
        cs.append(ch("10.8.1.0/24", &["10.0.0.2"]));
        st.apply(cs);
        drive(&mut st, &mut k, now);
        // Queued and not sent yet.
        st.apply(ch("10.8.2.0/24", &["10.0.0.2"]));
        assert_eq!(st.keeps_at_shutdown(), keep);
        if keep && !remove {
            assert_eq!(st.shutdown_ops(false).count(), 0);
            drive(&mut st, &mut k, now);
            assert_eq!((st.installed(), k.ours.len()), (3, 4));
            continue;
        }
        let ops: Vec<Op> = st.shutdown_ops(remove).collect();
        let out = k.run(&st, &ops);
        let mut r = ShutdownReport::default();
        for (op, out) in ops.iter().zip(out) {
            shutdown_outcome(&mut r, op, out);
        }
        // The previous run's route goes too: nothing of ours stays.
        assert_eq!(r.removed, 3, "keep {keep} remove {remove}");
        assert!(k.ours.is_empty(), "{:?}", k.ours);
    }
}

#[test]
fn without_install_nothing_reaches_the_kernel() {
    let now = Instant::now();
    let mut st = lab(
        FibConfig {
            install: false,
            ..cfg()
        },
        now,
    );
    assert!(st.sync_done());
    let mut k = Kernel::default();
    st.apply(ch("10.4.0.0/24", &["10.0.0.2"]));
    drive(&mut st, &mut k, now);
    assert!(k.log.is_empty());
    assert_eq!(state(&st, "10.4.0.0/24"), Some(PrefixState::NotInstalled));
    st.apply(ch("10.4.0.0/24", &[]));
    drive(&mut st, &mut k, now);
    assert_eq!(st.lookup(&net("10.4.0.0/24")), None);
    assert!(!st.keeps_at_shutdown());
    assert_eq!(st.shutdown_ops(false).count(), 0);
}

/// Next-hop liveness through the state: a hop that stops answering leaves
/// the ECMP set (one replace), a route with no other hop leaves the
/// kernel, and both come back with its answer. The RIB is not told
/// (its snapshot has no dead hops): `settle` says nothing changed for it.
#[test]
fn a_dead_next_hop_leaves_every_route_and_comes_back() {
    use crate::fib::liveness::{Ask, Nud};
    let t0 = Instant::now();
    let mut st = lab(
        FibConfig {
            nexthop_probe_interval: Duration::from_millis(500),
            ..cfg()
        },
        t0,
    );
    st.initial_sync_done("test");
    let mut k = Kernel::default();
    let mut cs = ch("10.9.0.0/24", &["10.0.0.2", "10.0.1.2"]);
    cs.append(ch("10.9.1.0/24", &["10.0.0.2"]));
    st.apply(cs);
    drive(&mut st, &mut k, t0);
    k.took();
    let (a, b) = (hop("10.0.0.2", V0), hop("10.0.1.2", V1));
    let mut t = t0;
    let mut dead_at = None;
    while t < t0 + Duration::from_secs(4) {
        for ask in st.liveness_tick(t) {
            let (Ask::Probe(h) | Ask::Resolve(h)) = ask;
            // b answers every probe; a never does.
            st.neighbour(h, if h == b { Nud::Reachable } else { Nud::Probe }, t);
        }
        if !st.settle() && k.has("10.9.1.0/24").is_some() {
            drive(&mut st, &mut k, t);
            if k.has("10.9.1.0/24").is_none() {
                dead_at = Some(t - t0);
            }
        } else {
            drive(&mut st, &mut k, t);
        }
        t += Duration::from_millis(250);
    }
    let dead_at = dead_at.expect("10.0.0.2 declared dead");
    assert!(dead_at <= Duration::from_millis(2250), "{dead_at:?}");
    assert_eq!(k.has("10.9.0.0/24"), Some(&vec![b]));
    assert!(
        st.status()
            .nexthops
            .iter()
            .any(|h| h.gateway == "10.0.0.2" && !h.up)
    );
    assert_eq!(
        st.dead_gateways(),
        vec!["10.0.0.2".parse::<std::net::IpAddr>().unwrap()]
    );
    // It answers again: both routes are whole.
    st.neighbour(a, Nud::Reachable, t);
    assert!(!st.settle(), "the RIB's view did not change");
    drive(&mut st, &mut k, t);
    assert_eq!(k.has("10.9.0.0/24"), Some(&vec![a, b]));
    assert_eq!(k.has("10.9.1.0/24"), Some(&vec![a]));
    assert!(st.dead_gateways().is_empty());
}

// ---- kernel nexthop objects ----

fn objects_cfg() -> FibConfig {
    FibConfig {
        nexthop_objects: true,
        ..cfg()
    }
}

/// Routes and object operations in the log since the last call.
fn counts(k: &mut Kernel) -> (usize, usize) {
    let routes = k.log.iter().filter(|o| o.prefix().is_some()).count();
    let objects = k.log.len() - routes;
    k.log.clear();
    (routes, objects)
}

/// A check with the objects dumped first, as the task runs it.
fn check_all(st: &mut FibState, k: &mut Kernel, now: Instant) -> ReconcileReport {
    drive(st, k, now);
    st.check_objects(&k.dump_objects(), true);
    check(st, k, now)
}

fn many(n: u32, hops: &[&str]) -> ChangeSet {
    let mut cs = ChangeSet::new();
    for i in 0..n {
        cs.append(ch(&format!("10.{}.{}.0/24", 100 + i / 256, i % 256), hops));
    }
    cs
}

#[test]
fn routes_share_one_group_and_a_lost_next_hop_moves_them_in_one_operation() {
    let now = Instant::now();
    let mut st = lab(objects_cfg(), now);
    st.initial_sync_done("test");
    let mut k = Kernel::default();
    let abc = ["10.0.0.2", "10.0.0.3", "10.0.1.2"];
    st.apply(many(300, &abc));
    drive(&mut st, &mut k, now);
    assert_eq!(counts(&mut k), (300, 4), "3 hops, 1 group, 300 routes");
    assert_eq!(k.route_nh.len(), 300);
    let (a, b, c) = (
        hop("10.0.0.2", V0),
        hop("10.0.0.3", V0),
        hop("10.0.1.2", V1),
    );
    assert!(k.ours.values().all(|f| *f == vec![a, b, c]));
    assert_eq!(st.status().objects_groups, 1);

    // A peer goes: every route leaves 10.0.1.2, in chunks as the RIB sends
    // them (all before the FIB's next round).
    for i in 0..3 {
        let mut cs = ChangeSet::new();
        for j in 0..100 {
            let n = i * 100 + j;
            cs.append(ch(
                &format!("10.{}.{}.0/24", 100 + n / 256, n % 256),
                &abc[..2],
            ));
        }
        st.apply(cs);
    }
    drive(&mut st, &mut k, now);
    assert_eq!(
        counts(&mut k),
        (0, 2),
        "one group replace and the unused hop's delete, no route message"
    );
    assert!(k.ours.values().all(|f| *f == vec![a, b]));
    assert_eq!(st.status().ops.routes_spared, 300);
    // It comes back: the same again.
    st.apply(many(300, &abc));
    drive(&mut st, &mut k, now);
    assert_eq!(counts(&mut k), (0, 2), "the hop again, the group replaced");
    assert!(k.ours.values().all(|f| *f == vec![a, b, c]));
    // A check finds nothing to repair, and unused objects are gone.
    assert_eq!(check_all(&mut st, &mut k, now).repaired(), 0);
    assert_eq!(counts(&mut k).0, 0);
    assert_eq!((k.nh_hops.len(), k.nh_groups.len()), (3, 1));
}

#[test]
fn part_of_a_group_moving_gets_its_own_group_and_withdrawn_objects_go() {
    let now = Instant::now();
    let mut st = lab(objects_cfg(), now);
    st.initial_sync_done("test");
    let mut k = Kernel::default();
    st.apply(many(10, &["10.0.0.2", "10.0.1.2"]));
    drive(&mut st, &mut k, now);
    counts(&mut k);
    // Four of the ten move: they are re-pointed; the group stays.
    let mut cs = ChangeSet::new();
    for i in 0..4 {
        cs.append(ch(&format!("10.100.{i}.0/24"), &["10.0.0.2"]));
    }
    st.apply(cs);
    drive(&mut st, &mut k, now);
    assert_eq!(counts(&mut k), (4, 1), "4 routes to a new one-hop group");
    let (a, c) = (hop("10.0.0.2", V0), hop("10.0.1.2", V1));
    assert_eq!(k.has("10.100.0.0/24"), Some(&vec![a]));
    assert_eq!(k.has("10.100.9.0/24"), Some(&vec![a, c]));
    // Everything withdrawn: routes, then every object, go.
    st.apply(many(10, &[]));
    drive(&mut st, &mut k, now);
    assert!(k.ours.is_empty());
    assert!(
        k.nh_hops.is_empty() && k.nh_groups.is_empty(),
        "{:?} {:?}",
        k.nh_hops,
        k.nh_groups
    );
    assert_eq!(st.status().objects_hops + st.status().objects_groups, 0);
}

#[test]
fn a_restart_adopts_objects_and_routes_without_a_message() {
    let t0 = Instant::now();
    let mut st = lab(objects_cfg(), t0);
    st.initial_sync_done("test");
    let mut k = Kernel::default();
    st.apply(many(20, &["10.0.0.2", "10.0.1.2"]));
    st.apply(ch("10.50.0.0/24", &["10.0.1.2"]));
    drive(&mut st, &mut k, t0);
    // A group replaced in place leaves two groups with the same hops.
    st.apply(ch("10.60.0.0/24", &["10.0.0.2"]));
    drive(&mut st, &mut k, t0);
    st.apply(many(20, &["10.0.0.2"]));
    drive(&mut st, &mut k, t0);
    counts(&mut k);
    let before = k.ours.clone();

    let mut st = lab(objects_cfg(), t0);
    st.check_objects(&k.dump_objects(), true);
    for r in k.dump() {
        st.adopt(r);
    }
    let mut cs = many(20, &["10.0.0.2"]);
    cs.append(ch("10.50.0.0/24", &["10.0.1.2"]));
    cs.append(ch("10.60.0.0/24", &["10.0.0.2"]));
    st.apply(cs);
    drive(&mut st, &mut k, t0);
    st.initial_sync_done("test");
    drive(&mut st, &mut k, t0);
    let (routes, _) = counts(&mut k);
    // The 20 routes on the in-place group and 10.60's own group have the
    // same hops: the one adopted first is their set's, the other's routes
    // are re-pointed once. Nothing else changes.
    assert!(routes <= 20, "{routes} route messages");
    assert_eq!(k.ours, before);
    assert_eq!(check_all(&mut st, &mut k, t0).repaired(), 0);
    assert_eq!(counts(&mut k).0, 0);
    // No object is left unused.
    let used: HashSet<u32> = k.route_nh.values().copied().collect();
    assert_eq!(k.nh_groups.len(), used.len(), "{:?}", k.nh_groups);
}

#[test]
fn plain_routes_of_a_previous_run_are_moved_to_groups_after_the_sync() {
    let t0 = Instant::now();
    let mut st = lab(cfg(), t0);
    st.initial_sync_done("test");
    let mut k = Kernel::default();
    st.apply(many(5, &["10.0.0.2", "10.0.1.2"]));
    drive(&mut st, &mut k, t0);
    counts(&mut k);
    let mut st = lab(objects_cfg(), t0);
    st.check_objects(&k.dump_objects(), true);
    for r in k.dump() {
        st.adopt(r);
    }
    st.apply(many(5, &["10.0.0.2", "10.0.1.2"]));
    drive(&mut st, &mut k, t0);
    assert_eq!(counts(&mut k), (0, 0), "deferred until the sync");
    st.initial_sync_done("test");
    drive(&mut st, &mut k, t0);
    assert_eq!(counts(&mut k), (5, 3));
    assert_eq!(k.route_nh.len(), 5);
    // And back to plain routes: the objects go once nothing uses them.
    let mut st2 = lab(cfg(), t0);
    st2.check_objects(&k.dump_objects(), true);
    for r in k.dump() {
        st2.adopt(r);
    }
    st2.apply(many(5, &["10.0.0.2", "10.0.1.2"]));
    st2.initial_sync_done("test");
    drive(&mut st2, &mut k, t0);
    assert!(k.route_nh.is_empty());
    assert_eq!(k.ours.len(), 5);
    assert!(k.nh_hops.is_empty() && k.nh_groups.is_empty());
}

#[test]
fn a_link_going_down_flushes_its_objects_and_the_routes_come_back_whole() {
    let now = Instant::now();
    let mut st = lab(objects_cfg(), now);
    st.initial_sync_done("test");
    let mut k = Kernel::default();
    st.apply(many(10, &["10.0.0.2", "10.0.1.2"]));
    st.apply(ch("10.50.0.0/24", &["10.0.1.2"]));
    drive(&mut st, &mut k, now);
    // v1 loses its carrier: the kernel drops its objects (and 10.50's
    // group and route) without a word.
    k.link_down(V1);
    st.link(&link(V1, "v1", false), false, now);
    st.settle();
    drive(&mut st, &mut k, now);
    let (a, c) = (hop("10.0.0.2", V0), hop("10.0.1.2", V1));
    assert_eq!(k.has("10.100.0.0/24"), Some(&vec![a]));
    assert_eq!(k.has("10.50.0.0/24"), None);
    assert_eq!(check_all(&mut st, &mut k, now).repaired(), 0);
    // It comes back.
    st.link(&link(V1, "v1", true), false, now);
    st.settle();
    drive(&mut st, &mut k, now);
    assert_eq!(k.has("10.100.0.0/24"), Some(&vec![a, c]));
    assert_eq!(k.has("10.50.0.0/24"), Some(&vec![c]));
    assert_eq!(check_all(&mut st, &mut k, now).repaired(), 0);
    // A quick flap the state never saw: the check repairs it.
    k.link_down(V1);
    let r = check_all(&mut st, &mut k, now);
    assert_eq!(r.reinstalled.len(), 1, "{r:?}");
    assert_eq!(k.has("10.100.0.0/24"), Some(&vec![a, c]));
    assert_eq!(k.has("10.50.0.0/24"), Some(&vec![c]));
}

#[test]
fn an_id_someone_else_holds_is_never_taken() {
    let now = Instant::now();
    let mut st = lab(objects_cfg(), now);
    st.initial_sync_done("test");
    let mut k = Kernel::default();
    let first = (186u32 << 24) + 1;
    st.check_objects(
        &[KernelNexthop {
            id: first,
            protocol: 11,
            hop: Some(hop("10.0.0.9", V0)),
            group: Vec::new(),
        }],
        true,
    );
    k.nh_hops.insert(first, hop("10.0.0.9", V0));
    st.apply(many(3, &["10.0.0.2"]));
    drive(&mut st, &mut k, now);
    assert_eq!(k.ours.len(), 3);
    assert_eq!(k.nh_hops.get(&first), Some(&hop("10.0.0.9", V0)));
    st.apply(many(3, &[]));
    drive(&mut st, &mut k, now);
    assert_eq!(k.nh_hops.len(), 1, "only the other's object is left");
    // Shutdown deletes bgpd's objects only.
    st.apply(many(3, &["10.0.0.2"]));
    drive(&mut st, &mut k, now);
    let ops: Vec<Op> = st.shutdown_ops(true).collect();
    k.run(&st, &ops);
    assert!(k.ours.is_empty());
    assert_eq!(k.nh_hops.keys().collect::<Vec<_>>(), vec![&first]);
    assert!(k.nh_groups.is_empty());
}

#[test]
fn a_group_the_kernel_refuses_leaves_its_routes_plain() {
    let now = Instant::now();
    let mut st = lab(objects_cfg(), now);
    st.initial_sync_done("test");
    let mut k = Kernel {
        refuse_groups: Some("Nexthop group can not have mixed v4 and v6 members"),
        ..Default::default()
    };
    st.apply(many(3, &["10.0.0.2", "10.0.1.2"]));
    drive(&mut st, &mut k, now);
    // The routes failed with the group; their retry goes without one.
    let later = now + Duration::from_secs(2);
    st.tick(later);
    drive(&mut st, &mut k, later);
    assert_eq!(k.ours.len(), 3, "{:?}", k.ours);
    assert!(k.route_nh.is_empty(), "plain routes");
    assert_eq!(
        k.has("10.100.0.0/24"),
        Some(&vec![hop("10.0.0.2", V0), hop("10.0.1.2", V1)])
    );
    assert_eq!(check_all(&mut st, &mut k, later).repaired(), 0);
}

#[test]
fn a_kernel_that_refuses_objects_gets_plain_routes() {
    let now = Instant::now();
    let mut st = lab(objects_cfg(), now);
    st.initial_sync_done("test");
    let mut k = Kernel {
        refuse_objects: Some(libc::EOPNOTSUPP),
        ..Default::default()
    };
    st.apply(many(3, &["10.0.0.2", "10.0.1.2"]));
    drive(&mut st, &mut k, now);
    assert!(!st.uses_objects());
    let later = now + Duration::from_secs(2);
    st.tick(later);
    drive(&mut st, &mut k, later);
    assert_eq!(k.ours.len(), 3, "{:?}", k.ours);
    assert!(k.route_nh.is_empty() && k.nh_hops.is_empty());
    assert!(!st.status().nexthop_objects);
}

/// As the FIB task drives the state: one list in flight (sent, its
/// outcomes not yet handed back) while the next is planned; `between`
/// changes the state while a list is in flight. The kernel runs a list
/// when it is sent (the writer encodes at submission and the kernel keeps
/// the order). Checks that no prefix ever has two operations in flight.
fn drive_pipelined(
    st: &mut FibState,
    k: &mut Kernel,
    now: Instant,
    mut between: impl FnMut(&mut FibState, usize),
) {
    let mut in_flight: Option<(Vec<Op>, Vec<Outcome>)> = None;
    for round in 0..10_000 {
        if !st.has_work() && in_flight.is_none() {
            assert_eq!(st.in_flight(), 0);
            return;
        }
        let ops = st.next_ops(CHUNK);
        if let Some((old, _)) = &in_flight {
            for op in ops.iter().filter_map(|o| o.prefix()) {
                assert!(
                    !old.iter().any(|o| o.prefix() == Some(op)),
                    "{op} has two operations in flight"
                );
            }
        }
        let sent = (!ops.is_empty()).then(|| {
            let out = k.run(st, &ops);
            (ops, out)
        });
        between(st, round);
        if let Some((ops, out)) = in_flight.take() {
            st.outcomes(ops, out, now);
        }
        in_flight = sent;
    }
    panic!("the state never settles");
}

#[test]
fn with_a_list_in_flight_the_kernel_ends_with_exactly_what_was_last_asked() {
    // Changes to prefixes whose operations are in flight (new routes
    // withdrawn, withdrawn ones re-announced, next hops moved), with and
    // without nexthop objects: the kernel ends holding exactly the last
    // wish for every prefix, with nothing leaked, and a check finds
    // nothing to repair.
    for objects in [false, true] {
        let now = Instant::now();
        let mut st = lab(if objects { objects_cfg() } else { cfg() }, now);
        st.initial_sync_done("test");
        let mut k = Kernel::default();
        let sets: [&[&str]; 4] = [&[], &["10.0.0.2"], &["10.0.1.2"], &["10.0.0.2", "10.0.1.2"]];
        let mut last: BTreeMap<IpNet, usize> = BTreeMap::new();
        let mut seed = 0x2545_f491_u32;
        let mut rnd = move |n: u32| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed % n
        };
        let wish = |st: &mut FibState,
                    last: &mut BTreeMap<IpNet, usize>,
                    r: &mut dyn FnMut(u32) -> u32| {
            let p = format!("10.9.{}.0/24", r(24));
            let s = r(4) as usize;
            st.apply(ch(&p, sets[s]));
            last.insert(net(&p), s);
        };
        for round in 0..40 {
            for _ in 0..6 {
                wish(&mut st, &mut last, &mut rnd);
            }
            drive_pipelined(&mut st, &mut k, now, |st, i| {
                if i % 2 == round % 2 {
                    wish(st, &mut last, &mut rnd);
                    wish(st, &mut last, &mut rnd);
                }
            });
            let want: BTreeMap<IpNet, Vec<Hop>> = last
                .iter()
                .filter(|(_, s)| **s != 0)
                .map(|(p, s)| {
                    let hops = sets[*s]
                        .iter()
                        .map(|g| hop(g, if g.starts_with("10.0.0.") { V0 } else { V1 }))
                        .collect();
                    (*p, hops)
                })
                .collect();
            let have: BTreeMap<IpNet, Vec<Hop>> = k
                .ours
                .iter()
                .map(|((p, _), h)| {
                    let mut h = h.clone();
                    h.sort();
                    (*p, h)
                })
                .collect();
            assert_eq!(have, want, "objects {objects}, round {round}");
            assert_eq!(st.status().installed, want.len());
        }
        assert_eq!(check_all(&mut st, &mut k, now).repaired(), 0);
    }
}
