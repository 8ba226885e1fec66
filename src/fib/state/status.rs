//! The FIB's answers: one prefix's state, and the summary with the
//! prefixes that are not installed as desired.

use ipnet::IpNet;

use super::FibState;
use crate::fib::slots::{CONFLICT, FAILED, STALE, Slot};
use crate::fib::view::Hop;
use crate::fib::{FibStatus, ForeignRoute, PrefixState, PrefixStatus};

/// Prefixes `bgpd show fib` lists one by one; the rest are counted.
pub const PROBLEMS_LISTED: usize = 1000;

enum StateKind {
    Pending,
    Failed,
    Conflict,
    Stale,
    Other,
}

impl FibState {
    /// The state of one prefix (`None`: bgpd has nothing for it).
    pub fn lookup(&self, p: &IpNet) -> Option<PrefixStatus> {
        let p = &p.trunc();
        let s = self.slots.get(p)?;
        let foreign: Vec<ForeignRoute> = self
            .view
            .foreign(p)
            .iter()
            .map(|r| ForeignRoute {
                prefix: *p,
                protocol: r.protocol,
                metric: r.metric,
            })
            .collect();
        let desired = self.desired.get(s.want());
        let state = if !self.cfg.install {
            PrefixState::NotInstalled
        } else if desired.is_empty() && s.has(STALE) {
            PrefixState::Stale
        } else if let Some(f) = foreign.iter().find(|f| f.metric == self.cfg.metric) {
            PrefixState::ForeignConflict {
                protocol: f.protocol,
                metric: f.metric,
            }
        } else if let Some(f) = self.fails.get(p).filter(|_| s.has(FAILED)) {
            PrefixState::Failed {
                errno: f.errno,
                error: format!("{}: {}", std::io::Error::from_raw_os_error(f.errno), f.msg),
                attempts: f.attempts,
            }
        } else if s.have != 0 {
            PrefixState::Installed {
                hops: self
                    .hops
                    .get(s.have)
                    .iter()
                    .map(|h| self.hop_name(h))
                    .collect(),
            }
        } else {
            PrefixState::Pending
        };
        Some(PrefixStatus {
            prefix: *p,
            desired: desired.iter().map(|n| n.to_string()).collect(),
            state,
            foreign,
        })
    }

    fn hop_name(&self, h: &Hop) -> String {
        match self.view.link_name(h.ifindex) {
            Some(n) => format!("{} dev {n}", h.gateway),
            None => h.to_string(),
        }
    }

    /// The state of a prefix as [`FibState::lookup`] names it, without
    /// building the status (no allocation unless a foreign route exists).
    fn state_of(&self, p: &IpNet, s: &Slot) -> StateKind {
        if !self.cfg.install {
            StateKind::Other
        } else if s.want() == 0 && s.has(STALE) {
            StateKind::Stale
        } else if self
            .view
            .foreign(p)
            .iter()
            .any(|f| f.metric == self.cfg.metric)
        {
            StateKind::Conflict
        } else if s.has(FAILED) && self.fails.contains_key(p) {
            StateKind::Failed
        } else if s.have != 0 {
            StateKind::Other
        } else {
            StateKind::Pending
        }
    }

    /// Counts, and the first [`PROBLEMS_LISTED`] prefixes (in prefix order)
    /// not installed as desired or with a foreign route: at a million
    /// pending routes the full list would be hundreds of megabytes.
    pub fn status(&self) -> FibStatus {
        let mut s = FibStatus {
            install: self.cfg.install,
            table: self.cfg.table,
            protocol: self.cfg.protocol,
            metric: self.cfg.metric,
            initial_sync_done: self.sync_done,
            ops: self.ops,
            nexthops: self.nexthops(),
            nexthop_objects: self.uses_objects(),
            ..Default::default()
        };
        (s.objects_hops, s.objects_groups) = self.object_counts();
        let interesting = |e: &Slot| {
            e.has(STALE) || e.has(FAILED) || (e.want() != 0 && e.have == 0) || e.has(CONFLICT)
        };
        let mut listed = Vec::new();
        let list = |p: IpNet, listed: &mut Vec<IpNet>, omitted: &mut usize| {
            if listed.len() < PROBLEMS_LISTED {
                listed.push(p);
            } else {
                *omitted += 1;
            }
        };
        for (p, e) in self.slots.iter() {
            if e.want() != 0 {
                s.desired += 1;
            }
            if e.have != 0 {
                s.installed += 1;
            }
            if interesting(e) {
                match self.state_of(&p, e) {
                    StateKind::Pending => s.pending += 1,
                    StateKind::Failed => s.failed += 1,
                    StateKind::Conflict => s.conflicts += 1,
                    StateKind::Stale => s.stale += 1,
                    StateKind::Other => {}
                }
                list(p, &mut listed, &mut s.problems_omitted);
            }
        }
        // And every prefix with a foreign route.
        for p in self.view.foreign_prefixes() {
            if self.slots.get(&p).is_some_and(|e| !interesting(e)) {
                list(p, &mut listed, &mut s.problems_omitted);
            }
        }
        s.problems = listed.iter().filter_map(|p| self.lookup(p)).collect();
        s.problems.sort_by_key(|p| p.prefix);
        s
    }
}
