//! Next-hop liveness, sans-IO: is each on-link next hop in use still
//! answering ARP (IPv4) or neighbour discovery (IPv6)?
//!
//! A worker that loses power sends no BGP goodbye: the reflectors keep its
//! routes until their hold timer (240 s with Calico's BIRD), and so would
//! bgpd. The kernel's own neighbour machinery knows sooner, if asked: this
//! module asks it. Every `interval` each next hop in use whose neighbour
//! entry is valid is set to PROBE (`RTM_NEWNEIGH`, `NUD_PROBE`), so the
//! kernel sends a unicast ARP request or neighbour solicitation now and
//! retransmits it every second; an entry that is not valid (none yet,
//! FAILED) gets `NTF_USE`, which starts a (multicast) resolution. An answer
//! moves the entry to REACHABLE, which the FIB task hears as a
//! notification. A next hop with no answer for `dead_after` (two probes
//! unanswered), or whose entry the kernel marks FAILED, is **dead**: the
//! FIB resolves nothing through it (it leaves every ECMP set, and a route
//! with no other hop leaves the kernel) and the RIB's reachability says
//! so. It is alive again with its next answer.
//!
//! Traffic is not proof of life here: a confirmed-by-traffic REACHABLE
//! entry can last 45 s after the host died, so every hop is probed, at the
//! cost of one ARP request and reply per next hop per `interval`. A silent
//! host that answers ARP is alive. Static (PERMANENT) and NOARP entries
//! cannot be probed and count as alive.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::view::Hop;

/// A neighbour entry's state, as the kernel reports it (`NUD_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Nud {
    /// Not heard of yet: probed (an entry that is valid answers), and
    /// resolved if the kernel refuses that.
    Unknown,
    /// No valid entry (none, or deleted).
    None,
    Incomplete,
    Reachable,
    Stale,
    Delay,
    Probe,
    Failed,
    /// PERMANENT or NOARP: nothing to probe.
    Static,
}

/// What to ask of the kernel for one hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    /// Set its valid entry to PROBE: a unicast probe now.
    Probe(Hop),
    /// `NTF_USE`: start resolving an entry that is not valid.
    Resolve(Hop),
}

/// A next hop that became dead (`false`) or alive again (`true`).
pub type Change = (Hop, bool);

#[derive(Clone, Debug)]
struct Entry {
    nud: Nud,
    /// The last answer (REACHABLE), or when tracking began.
    alive_at: Instant,
    /// When it was last asked about.
    asked_at: Option<Instant>,
    /// Dead since, and why.
    dead: Option<(Instant, &'static str)>,
}

/// One tracked next hop, for `bgpd show fib` and the metrics.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HopLiveness {
    pub gateway: String,
    pub ifindex: u32,
    /// The interface's name (filled in by the FIB state).
    pub dev: String,
    pub up: bool,
    pub neighbour: Nud,
    /// Seconds since its last answer.
    pub silent_secs: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The liveness of the next hops in use.
#[derive(Debug)]
pub struct Liveness {
    interval: Duration,
    dead_after: Duration,
    hops: BTreeMap<Hop, Entry>,
}

/// Why a hop is dead.
const SILENT: &str = "no answer to ARP/ND probes";
const FAILED: &str = "the kernel's neighbour entry is FAILED";

impl Liveness {
    /// `interval` zero turns liveness off: nothing is tracked or dead.
    pub fn new(interval: Duration) -> Self {
        Liveness {
            interval,
            // Two probes unanswered: ours and the kernel's retransmission
            // one second later, with time for its answer.
            dead_after: interval + Duration::from_millis(1400),
            hops: BTreeMap::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.interval.is_zero()
    }

    /// The next hops in use now (sorted or not, repeats allowed). A new one
    /// starts alive; one no longer in use is forgotten, and if it was dead
    /// that is returned as a change (it no longer needs to be excluded).
    pub fn track(&mut self, in_use: impl IntoIterator<Item = Hop>, now: Instant) -> Vec<Change> {
        if !self.enabled() {
            return Vec::new();
        }
        let mut keep: BTreeMap<Hop, Entry> = BTreeMap::new();
        for h in in_use {
            if keep.contains_key(&h) {
                continue;
            }
            let e = self.hops.remove(&h).unwrap_or(Entry {
                nud: Nud::Unknown,
                alive_at: now,
                asked_at: None,
                dead: None,
            });
            keep.insert(h, e);
        }
        let gone = std::mem::replace(&mut self.hops, keep);
        gone.into_iter()
            .filter(|(_, e)| e.dead.is_some())
            .map(|(h, _)| (h, true))
            .collect()
    }

    /// A neighbour notification or dump entry for `hop`.
    pub fn neighbour(&mut self, hop: Hop, nud: Nud, now: Instant) -> Option<Change> {
        let e = self.hops.get_mut(&hop)?;
        e.nud = nud;
        match nud {
            Nud::Reachable | Nud::Static => {
                e.alive_at = now;
                e.dead.take().map(|_| (hop, true))
            }
            Nud::Failed if e.dead.is_none() => {
                e.dead = Some((now, FAILED));
                Some((hop, false))
            }
            _ => None,
        }
    }

    /// Every tick (well under `interval`): what to ask the kernel, and the
    /// hops that went silent for too long.
    pub fn tick(&mut self, now: Instant) -> (Vec<Ask>, Vec<Change>) {
        let (mut asks, mut changes) = (Vec::new(), Vec::new());
        if !self.enabled() {
            return (asks, changes);
        }
        for (h, e) in self.hops.iter_mut() {
            if e.nud == Nud::Static {
                continue;
            }
            if e.dead.is_none() && now.saturating_duration_since(e.alive_at) >= self.dead_after {
                e.dead = Some((now, SILENT));
                changes.push((*h, false));
            }
            let due = e
                .asked_at
                .is_none_or(|t| now.saturating_duration_since(t) >= self.interval);
            if !due {
                continue;
            }
            // Asked every interval whatever we last heard: a notification
            // that never came (a lost REACHABLE, a refused probe) must not
            // leave a hop unasked. PROBE on an entry already probing is a
            // no-op for the kernel; a resolution is followed by a probe
            // next time, which is what tells a valid entry (it answers)
            // from one that is not (the kernel refuses it).
            let ask = match e.nud {
                Nud::Unknown | Nud::Reachable | Nud::Stale | Nud::Delay | Nud::Probe => {
                    Ask::Probe(*h)
                }
                Nud::None | Nud::Failed | Nud::Incomplete => {
                    e.nud = Nud::Unknown;
                    Ask::Resolve(*h)
                }
                Nud::Static => continue,
            };
            e.asked_at = Some(now);
            asks.push(ask);
        }
        (asks, changes)
    }

    /// The kernel refused to set PROBE (the entry lost its address
    /// meanwhile): resolve it instead next time.
    pub fn probe_refused(&mut self, hop: Hop) {
        if let Some(e) = self.hops.get_mut(&hop) {
            e.nud = Nud::None;
            e.asked_at = None;
        }
    }

    /// The dead hops.
    pub fn dead(&self) -> impl Iterator<Item = Hop> + '_ {
        self.hops
            .iter()
            .filter(|(_, e)| e.dead.is_some())
            .map(|(h, _)| *h)
    }

    /// Every tracked hop, for the status.
    pub fn status(&self, now: Instant) -> Vec<HopLiveness> {
        self.hops
            .iter()
            .map(|(h, e)| HopLiveness {
                gateway: h.gateway.to_string(),
                ifindex: h.ifindex,
                dev: String::new(),
                up: e.dead.is_none(),
                neighbour: e.nud,
                silent_secs: (now.saturating_duration_since(e.alive_at).as_millis() as f64)
                    / 1000.0,
                reason: e.dead.map(|(since, why)| {
                    format!(
                        "{why} (down for {:.1} s)",
                        now.saturating_duration_since(since).as_secs_f64()
                    )
                }),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(s: &str) -> Hop {
        Hop {
            gateway: s.parse().unwrap(),
            ifindex: 2,
        }
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    /// Runs ticks every 250 ms from `from` for `span`, answering each probe
    /// when `answers`; returns the changes with their times.
    fn run(
        l: &mut Liveness,
        from: Instant,
        span: Duration,
        answers: bool,
    ) -> Vec<(Duration, Change)> {
        let mut out = Vec::new();
        let mut t = from;
        while t < from + span {
            let (asks, changes) = l.tick(t);
            out.extend(changes.into_iter().map(|c| (t - from, c)));
            for a in asks {
                let (Ask::Probe(h) | Ask::Resolve(h)) = a;
                let nud = if answers { Nud::Reachable } else { Nud::Probe };
                out.extend(l.neighbour(h, nud, t).map(|c| (t - from, c)));
            }
            t += MS(250);
        }
        out
    }

    #[test]
    fn a_hop_that_answers_stays_alive_however_silent_otherwise() {
        let t0 = Instant::now();
        let mut l = Liveness::new(MS(500));
        l.track([hop("10.0.0.2")], t0);
        assert!(run(&mut l, t0, Duration::from_secs(60), true).is_empty());
        assert_eq!(l.dead().count(), 0);
    }

    #[test]
    fn a_silent_hop_is_dead_after_two_probes_and_back_with_its_answer() {
        let t0 = Instant::now();
        let mut l = Liveness::new(MS(500));
        l.track([hop("10.0.0.2"), hop("10.0.0.3")], t0);
        l.neighbour(hop("10.0.0.2"), Nud::Reachable, t0);
        l.neighbour(hop("10.0.0.3"), Nud::Reachable, t0);
        // 10.0.0.2 stops answering; 10.0.0.3 goes on.
        let mut t = t0;
        let mut died = None;
        let mut probes = 0;
        while t < t0 + Duration::from_secs(5) {
            let (asks, changes) = l.tick(t);
            for a in asks {
                match a {
                    Ask::Probe(h) if h == hop("10.0.0.3") => {
                        l.neighbour(h, Nud::Reachable, t);
                    }
                    Ask::Probe(h) | Ask::Resolve(h) => {
                        probes += 1;
                        l.neighbour(h, Nud::Probe, t);
                    }
                }
            }
            for c in changes {
                assert_eq!(c, (hop("10.0.0.2"), false));
                died.get_or_insert(t - t0);
            }
            t += MS(250);
        }
        let died = died.expect("declared dead");
        assert!(died >= MS(1900) && died <= MS(2250), "{died:?}");
        assert!(probes >= 3, "asked every interval: {probes}");
        assert_eq!(l.dead().collect::<Vec<_>>(), vec![hop("10.0.0.2")]);
        // The kernel gives up: FAILED, and it is asked to resolve anew,
        // then probed again (a lost notification cannot leave it unasked).
        assert_eq!(l.neighbour(hop("10.0.0.2"), Nud::Failed, t), None);
        let t = t + MS(500);
        let (asks, _) = l.tick(t);
        assert!(asks.contains(&Ask::Resolve(hop("10.0.0.2"))), "{asks:?}");
        let (asks, _) = l.tick(t + MS(500));
        assert!(asks.contains(&Ask::Probe(hop("10.0.0.2"))), "{asks:?}");
        // It answers again.
        assert_eq!(
            l.neighbour(hop("10.0.0.2"), Nud::Reachable, t),
            Some((hop("10.0.0.2"), true))
        );
        assert_eq!(l.dead().count(), 0);
        let st = l.status(t);
        assert!(st.iter().all(|s| s.up && s.reason.is_none()), "{st:?}");
    }

    /// The CI case: a probe the kernel refused (or a REACHABLE that never
    /// arrived) must not leave a live hop unasked, hence dead for good.
    #[test]
    fn a_lost_answer_or_a_refused_probe_does_not_strand_a_hop() {
        let t0 = Instant::now();
        let mut l = Liveness::new(MS(500));
        l.track([hop("10.0.0.2")], t0);
        let (asks, _) = l.tick(t0);
        assert_eq!(asks, vec![Ask::Probe(hop("10.0.0.2"))]);
        l.probe_refused(hop("10.0.0.2"));
        let (asks, _) = l.tick(t0 + MS(250));
        assert_eq!(asks, vec![Ask::Resolve(hop("10.0.0.2"))]);
        // NTF_USE on a valid entry says nothing; the next ask is a probe.
        let (asks, _) = l.tick(t0 + MS(750));
        assert_eq!(asks, vec![Ask::Probe(hop("10.0.0.2"))]);
        // PROBE heard, its REACHABLE lost: asked again all the same.
        l.neighbour(hop("10.0.0.2"), Nud::Probe, t0 + MS(750));
        let (asks, _) = l.tick(t0 + MS(1250));
        assert_eq!(asks, vec![Ask::Probe(hop("10.0.0.2"))]);
        assert_eq!(
            l.neighbour(hop("10.0.0.2"), Nud::Reachable, t0 + MS(1260)),
            None
        );
        assert_eq!(l.dead().count(), 0);
    }

    #[test]
    fn failed_is_dead_at_once_static_is_never_probed() {
        let t0 = Instant::now();
        let mut l = Liveness::new(MS(500));
        l.track([hop("10.0.0.2"), hop("10.0.0.9")], t0);
        assert_eq!(
            l.neighbour(hop("10.0.0.2"), Nud::Failed, t0),
            Some((hop("10.0.0.2"), false))
        );
        l.neighbour(hop("10.0.0.9"), Nud::Static, t0);
        let out = run(&mut l, t0, Duration::from_secs(10), false);
        assert!(out.is_empty(), "{out:?}");
        let st = l.status(t0 + Duration::from_secs(10));
        let s2 = st.iter().find(|s| s.gateway == "10.0.0.2").unwrap();
        assert!(!s2.up && s2.reason.as_deref().unwrap().contains("FAILED"));
        assert!(st.iter().find(|s| s.gateway == "10.0.0.9").unwrap().up);
    }

    #[test]
    fn a_dead_hop_no_longer_in_use_is_forgotten_and_reported() {
        let t0 = Instant::now();
        let mut l = Liveness::new(MS(500));
        l.track([hop("10.0.0.2")], t0);
        l.neighbour(hop("10.0.0.2"), Nud::Failed, t0);
        assert_eq!(l.track([], t0), vec![(hop("10.0.0.2"), true)]);
        assert_eq!(l.dead().count(), 0);
        // Off: nothing is tracked.
        let mut off = Liveness::new(Duration::ZERO);
        assert!(off.track([hop("10.0.0.2")], t0).is_empty());
        assert_eq!(off.tick(t0 + Duration::from_secs(9)), (vec![], vec![]));
    }
}
