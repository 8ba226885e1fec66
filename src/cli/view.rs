//! The foreground view of `bgpd --peer ADDR ...` (no config file):
//! sessions, received routes and the Loc-RIB, shown as they change. The
//! flags themselves become a configuration in `config::Flags`.

use std::fmt;
use std::io::{self, BufWriter, IsTerminal, Stdout, Write};
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use ipnet::IpNet;

use crate::daemon;
use crate::hash::FastSet;
use crate::route::RouteChange;
use crate::session::{self, PeerEvent};
use crate::wire::{Attr, Update, iana::attr};

/// The foreground view, for [`daemon::run`].
pub fn foreground() -> Box<dyn daemon::View> {
    Box::new(Foreground::new())
}

/// Route lines each stream (the table, each peer's received prefixes, the
/// per-route notes) prints in a window before it collapses the rest into a
/// summary. Generous enough that a table of hundreds of routes from a few
/// reflectors is shown line by line, as before.
const LINES_PER_WINDOW: u64 = 1000;
/// The window, and the most often a stream prints a summary.
const WINDOW: Duration = Duration::from_secs(1);

/// The foreground view: sessions, received routes and the Loc-RIB as it
/// changes, on stdout. What to print is [`ViewLog`]'s business; this
/// supplies the clock and the output: line-buffered on a terminal, a
/// `BufWriter` otherwise, flushed at the end of every call.
struct Foreground {
    log: ViewLog,
    /// `None` on a terminal: stdout's own line buffering.
    buffered: Option<BufWriter<Stdout>>,
}

impl Foreground {
    fn new() -> Self {
        let stdout = io::stdout();
        let buffered = (!stdout.is_terminal()).then(|| BufWriter::with_capacity(1 << 16, stdout));
        Foreground {
            log: ViewLog::new(LINES_PER_WINDOW, WINDOW),
            buffered,
        }
    }

    /// Runs one call of the view against stdout. Write errors (a closed
    /// pipe) are dropped, as they were; the view's counts stay right.
    fn with(&mut self, f: impl FnOnce(&mut ViewLog, Now, &mut dyn Write) -> io::Result<()>) {
        let now = Now::current();
        match &mut self.buffered {
            Some(b) => {
                let _ = f(&mut self.log, now, b);
                let _ = b.flush();
            }
            None => {
                let mut out = io::stdout().lock();
                let _ = f(&mut self.log, now, &mut out);
                let _ = out.flush();
            }
        }
    }
}

impl daemon::View for Foreground {
    fn event(&mut self, ev: &PeerEvent) {
        if let PeerEvent::Update { peer, update: u } = ev
            && u.as_end_of_rib().is_none()
        {
            tracing::debug!(
                peer = %peer,
                announced = u.announced().count(),
                withdrawn = u.withdrawn_all().count(),
                errors = u.errors.len(),
                "UPDATE"
            );
        }
        self.with(|log, now, out| log.event(now, ev, out));
    }

    /// Also a tick: with no changes it prints the summaries that are due.
    fn routes(&mut self, changes: &[RouteChange]) {
        self.with(|log, now, out| log.routes(now, changes, out));
    }

    fn note(&mut self, line: &str) {
        self.with(|log, now, out| log.note(now, line, out));
    }
}

impl Drop for Foreground {
    /// The summaries still held, when bgpd stops.
    fn drop(&mut self) {
        self.with(|log, now, out| log.finish(now, out));
    }
}

/// A moment on both clocks: the monotonic one for the windows, the wall
/// clock for the times printed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Now {
    pub mono: Instant,
    pub wall: SystemTime,
}

impl Now {
    fn current() -> Self {
        Now {
            mono: Instant::now(),
            wall: SystemTime::now(),
        }
    }
}

/// What the foreground view prints, without I/O or clocks: each call
/// takes the time and writes into any `Write`.
///
/// Session events (state changes, Established, down with the NOTIFICATION,
/// End-of-RIB, UPDATE errors) and notes other than per-route ones are
/// always printed. Route lines come in three streams: the Loc-RIB's changes
/// (`route P via ...`), each peer's received prefixes (`+ P via ...`,
/// `- P`), and the per-route notes (stale routes, rejected prefixes). Each
/// stream prints up to `budget` lines per `window`, and none in a window
/// that follows one over the budget (so a long burst is shown as its first
/// lines, then summaries only). Lines not printed are counted into a
/// summary, printed at most once per window: at the first call that finds
/// it due, at once for a single change set over the budget (a session's
/// routes withdrawn together), before a busy peer's next session event or
/// End-of-RIB (the end of its burst), and at [`ViewLog::finish`].
pub(crate) struct ViewLog {
    limits: Limits,
    table: Stream,
    received: Vec<(IpAddr, Stream)>,
    notes: Stream,
    prefixes: Prefixes,
    /// A busy peer's burst has ended (End-of-RIB, session event): the
    /// table's changes from its last UPDATEs may still be on their way
    /// (the daemon hands them over after the events of a batch), so the
    /// next change set, if it comes within a window, ends with a summary.
    table_flush_by: Option<Instant>,
    /// The last time printed, per second of the wall clock.
    stamp: Option<(u64, Stamp)>,
}

impl ViewLog {
    pub(crate) fn new(budget: u64, window: Duration) -> Self {
        ViewLog {
            limits: Limits { budget, window },
            table: Stream::default(),
            received: Vec::new(),
            notes: Stream::default(),
            prefixes: Prefixes::default(),
            table_flush_by: None,
            stamp: None,
        }
    }

    /// Prefixes in the table: those the changes seen so far added and did
    /// not withdraw.
    #[cfg(test)]
    pub(crate) fn prefixes(&self) -> usize {
        self.prefixes.len()
    }

    /// A change set from the RIB. With none, only the summaries due.
    pub(crate) fn routes<W: Write + ?Sized>(
        &mut self,
        now: Now,
        changes: &[RouteChange],
        out: &mut W,
    ) -> io::Result<()> {
        let mut out = Sticky::new(out);
        let r = self.routes_to(now, changes, &mut out);
        out.result(r)
    }

    /// A peer event.
    pub(crate) fn event<W: Write + ?Sized>(
        &mut self,
        now: Now,
        ev: &PeerEvent,
        out: &mut W,
    ) -> io::Result<()> {
        let mut out = Sticky::new(out);
        let r = self.event_to(now, ev, &mut out);
        out.result(r)
    }

    /// A line from the daemon.
    pub(crate) fn note<W: Write + ?Sized>(
        &mut self,
        now: Now,
        line: &str,
        out: &mut W,
    ) -> io::Result<()> {
        let mut out = Sticky::new(out);
        let r = self.note_to(now, line, &mut out);
        out.result(r)
    }

    /// Every summary still held.
    pub(crate) fn finish<W: Write + ?Sized>(&mut self, now: Now, out: &mut W) -> io::Result<()> {
        let mut out = Sticky::new(out);
        let r = self.finish_to(now, &mut out);
        out.result(r)
    }

    fn routes_to(
        &mut self,
        now: Now,
        changes: &[RouteChange],
        out: &mut impl Write,
    ) -> io::Result<()> {
        self.poll(now, out)?;
        let t = self.stamp(now.wall);
        let l = self.limits;
        for c in changes {
            let kind = self.prefixes.apply(c);
            if self.table.admit(now, l) {
                write_route(out, t, c)?;
            } else {
                self.table.held.count(kind);
            }
        }
        let settled =
            !changes.is_empty() && self.table_flush_by.take().is_some_and(|by| now.mono <= by);
        if settled || self.table.eager(now.mono, l) {
            self.summarize_table(now, out)?;
        }
        Ok(())
    }

    fn event_to(&mut self, now: Now, ev: &PeerEvent, out: &mut impl Write) -> io::Result<()> {
        self.poll(now, out)?;
        let t = self.stamp(now.wall);
        match ev {
            PeerEvent::State { peer, from, to } => {
                self.settle(now, *peer, out)?;
                writeln!(out, "{t} {peer:<15} {from} -> {to}")
            }
            PeerEvent::Up {
                peer,
                negotiated: n,
                ..
            } => {
                self.settle(now, *peer, out)?;
                write!(
                    out,
                    "{t} {peer:<15} Established: AS {} id {} hold {}s",
                    n.remote_as, n.remote_id, n.hold_time
                )?;
                if !n.ctx.add_path_rx.is_empty() {
                    out.write_all(b", add-path receive")?;
                    for f in n.ctx.add_path_rx.iter() {
                        write!(out, " {f}")?;
                    }
                }
                if n.peer_graceful_restart.is_some() {
                    out.write_all(b", graceful restart")?;
                }
                out.write_all(b"\n")
            }
            PeerEvent::Down { peer, reason } => {
                self.settle(now, *peer, out)?;
                writeln!(out, "{t} {peer:<15} down: {reason}")
            }
            PeerEvent::Update { peer, update } => self.update(now, *peer, update, out),
            PeerEvent::RouteRefresh { peer, refresh } => {
                writeln!(out, "{t} {peer:<15} {refresh}")
            }
            PeerEvent::Ready { .. } => Ok(()),
        }
    }

    fn update(
        &mut self,
        now: Now,
        peer: IpAddr,
        u: &Update,
        out: &mut impl Write,
    ) -> io::Result<()> {
        let t = self.stamp(now.wall);
        if let Some(af) = u.as_end_of_rib() {
            self.settle(now, peer, out)?;
            return writeln!(out, "{t} {peer:<15} End-of-RIB {af}");
        }
        for e in &u.errors {
            writeln!(out, "{t} {peer:<15} ! {e}")?;
        }
        let l = self.limits;
        let s = self.received_stream(peer);
        let taw = u.treat_as_withdraw();
        // The next hop and attributes, made for the first line printed.
        let mut shown: Option<(String, String)> = None;
        for n in u.announced() {
            if !s.admit(now, l) {
                if taw {
                    s.held.minus += 1;
                } else {
                    s.held.plus += 1;
                }
            } else if taw {
                writeln!(out, "{t} {peer:<15} - {n} (treat-as-withdraw)")?;
            } else {
                let (nh, attrs) = shown.get_or_insert_with(|| describe(u));
                writeln!(out, "{t} {peer:<15} + {n} via {nh} [{attrs}]")?;
            }
        }
        for n in u.withdrawn_all() {
            if s.admit(now, l) {
                writeln!(out, "{t} {peer:<15} - {n}")?;
            } else {
                s.held.minus += 1;
            }
        }
        Ok(())
    }

    fn note_to(&mut self, now: Now, line: &str, out: &mut impl Write) -> io::Result<()> {
        self.poll(now, out)?;
        let t = self.stamp(now.wall);
        // The daemon's notes about one route each: a route kept as stale
        // (one per route of a peer gone down gracefully) and a prefix
        // rejected by policy (one per prefix of an UPDATE).
        let stale = line.starts_with("route ") && line.ends_with(" (stale)");
        if !stale && !line.contains(" rejected: ") {
            return writeln!(out, "{t} {line}");
        }
        if self.notes.admit(now, self.limits) {
            writeln!(out, "{t} {line}")
        } else {
            if stale {
                self.notes.held.plus += 1;
            } else {
                self.notes.held.minus += 1;
            }
            Ok(())
        }
    }

    fn finish_to(&mut self, now: Now, out: &mut impl Write) -> io::Result<()> {
        for i in 0..self.received.len() {
            self.summarize_received(i, now, out)?;
        }
        self.summarize_table(now, out)?;
        self.summarize_notes(now, out)
    }

    /// The summaries due.
    fn poll(&mut self, now: Now, out: &mut impl Write) -> io::Result<()> {
        let l = self.limits;
        for i in 0..self.received.len() {
            if self.received[i].1.due(now.mono, l) {
                self.summarize_received(i, now, out)?;
            }
        }
        if self.table.due(now.mono, l) {
            self.summarize_table(now, out)?;
        }
        if self.notes.due(now.mono, l) {
            self.summarize_notes(now, out)?;
        }
        Ok(())
    }

    /// Before a session event or End-of-RIB of `peer`: if it was sending
    /// more than the budget, its burst is over; print its summary and the
    /// table's, so that they come before the event, and the table's again
    /// after the next change set (the changes of the peer's last UPDATEs).
    fn settle(&mut self, now: Now, peer: IpAddr, out: &mut impl Write) -> io::Result<()> {
        let Some(i) = self.received.iter().position(|(p, _)| *p == peer) else {
            return Ok(());
        };
        if self.received[i].1.busy(self.limits) {
            self.summarize_received(i, now, out)?;
            self.summarize_table(now, out)?;
            self.table_flush_by = Some(now.mono + self.limits.window);
        }
        Ok(())
    }

    fn received_stream(&mut self, peer: IpAddr) -> &mut Stream {
        let i = match self.received.iter().position(|(p, _)| *p == peer) {
            Some(i) => i,
            None => {
                self.received.push((peer, Stream::default()));
                self.received.len() - 1
            }
        };
        &mut self.received[i].1
    }

    fn summarize_table(&mut self, now: Now, out: &mut impl Write) -> io::Result<()> {
        let Some(s) = self.table.take(now.mono) else {
            return Ok(());
        };
        let t = self.stamp(s.wall);
        let n = s.tally.lines;
        write!(
            out,
            "{t} ... {} more route change{} (+{} / -{}",
            Count(n),
            if n == 1 { "" } else { "s" },
            Count(s.tally.plus),
            Count(s.tally.minus)
        )?;
        if s.tally.changed > 0 {
            write!(out, " / {} changed", Count(s.tally.changed))?;
        }
        let p = self.prefixes.len() as u64;
        writeln!(
            out,
            ") {}; {} prefix{} in the table",
            Span(s.span),
            Count(p),
            if p == 1 { "" } else { "es" }
        )
    }

    fn summarize_received(&mut self, i: usize, now: Now, out: &mut impl Write) -> io::Result<()> {
        let (peer, stream) = &mut self.received[i];
        let peer = *peer;
        let Some(s) = stream.take(now.mono) else {
            return Ok(());
        };
        let t = self.stamp(s.wall);
        let n = s.tally.lines;
        writeln!(
            out,
            "{t} {peer:<15} ... {} more prefix{} (+{} / -{}) {}",
            Count(n),
            if n == 1 { "" } else { "es" },
            Count(s.tally.plus),
            Count(s.tally.minus),
            Span(s.span)
        )
    }

    fn summarize_notes(&mut self, now: Now, out: &mut impl Write) -> io::Result<()> {
        let Some(s) = self.notes.take(now.mono) else {
            return Ok(());
        };
        let t = self.stamp(s.wall);
        let n = s.tally.lines;
        write!(
            out,
            "{t} ... {} more note{} (",
            Count(n),
            if n == 1 { "" } else { "s" }
        )?;
        let stale = s.tally.plus;
        if stale > 0 {
            write!(
                out,
                "{} route{} kept as stale",
                Count(stale),
                if stale == 1 { "" } else { "s" }
            )?;
        }
        if s.tally.minus > 0 {
            let sep = if stale > 0 { ", " } else { "" };
            write!(out, "{sep}{} rejected", Count(s.tally.minus))?;
        }
        writeln!(out, ") {}", Span(s.span))
    }

    fn stamp(&mut self, wall: SystemTime) -> Stamp {
        let secs = wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        match self.stamp {
            Some((s, t)) if s == secs => t,
            _ => {
                let t = Stamp::new(&session::hms(wall));
                self.stamp = Some((secs, t));
                t
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Limits {
    budget: u64,
    window: Duration,
}

/// Lines not printed, by kind: the table's added, withdrawn and changed
/// prefixes; a peer's announced (`plus`) and withdrawn (`minus`) ones;
/// the notes' stale routes (`plus`) and rejected prefixes (`minus`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Tally {
    lines: u64,
    plus: u64,
    minus: u64,
    changed: u64,
}

impl Tally {
    fn count(&mut self, kind: Kind) {
        match kind {
            Kind::Add => self.plus += 1,
            Kind::Withdraw => self.minus += 1,
            Kind::Change => self.changed += 1,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Window {
    start: Instant,
    /// Lines offered in it.
    seen: u64,
    /// Lines printed in it.
    shown: u64,
}

/// One stream of route lines: its window, and what it holds for the
/// next summary.
#[derive(Debug, Default)]
struct Stream {
    window: Option<Window>,
    /// The previous window went over the budget: this one prints no lines.
    quiet: bool,
    /// Lines not printed since the last summary.
    held: Tally,
    /// Where the next summary's span starts.
    since: Option<Instant>,
    /// The last line offered: the next summary's time.
    last: Option<Now>,
    last_summary: Option<Instant>,
}

/// A summary taken from a stream.
struct Summary {
    tally: Tally,
    span: Duration,
    wall: SystemTime,
}

impl Stream {
    /// One more line at `now`: whether to print it. When not, it is held
    /// (`held.lines`); the caller counts its kind.
    fn admit(&mut self, now: Now, l: Limits) -> bool {
        let elapsed = |w: &Window| now.mono.saturating_duration_since(w.start);
        if self.window.as_ref().is_none_or(|w| elapsed(w) >= l.window) {
            self.quiet = self
                .window
                .as_ref()
                .is_some_and(|w| w.seen > l.budget && elapsed(w) < 2 * l.window);
            self.window = Some(Window {
                start: now.mono,
                seen: 0,
                shown: 0,
            });
        }
        let w = self.window.as_mut().expect("set above");
        w.seen += 1;
        self.last = Some(now);
        if !self.quiet && w.shown < l.budget {
            w.shown += 1;
            return true;
        }
        if self.held.lines == 0 {
            // The first line held since the last summary: the next one
            // covers this window, or the time since the last summary.
            self.since = Some(match self.last_summary {
                Some(s) if s > w.start => s,
                _ => w.start,
            });
        }
        self.held.lines += 1;
        false
    }

    /// A summary is due: lines are held and a window has passed.
    fn due(&self, now: Instant, l: Limits) -> bool {
        self.held.lines > 0
            && self
                .since
                .is_some_and(|s| now.saturating_duration_since(s) >= l.window)
    }

    /// The lines held all came in the call at `now`, which opened the
    /// window, and no summary was printed in the last window: one change
    /// set over the budget by itself, whose summary should not wait.
    fn eager(&self, now: Instant, l: Limits) -> bool {
        self.held.lines > 0
            && self.since == Some(now)
            && self
                .last_summary
                .is_none_or(|s| now.saturating_duration_since(s) >= l.window)
    }

    /// Collapsing lines now, or in the window just gone.
    fn busy(&self, l: Limits) -> bool {
        self.held.lines > 0 || self.quiet || self.window.is_some_and(|w| w.seen > l.budget)
    }

    /// The summary of the lines held, if any; starts the next one.
    fn take(&mut self, now: Instant) -> Option<Summary> {
        if self.held.lines == 0 {
            return None;
        }
        let last = self.last.expect("a line was offered");
        let since = self.since.take().unwrap_or(last.mono);
        self.last_summary = Some(now);
        Some(Summary {
            tally: std::mem::take(&mut self.held),
            span: last.mono.saturating_duration_since(since),
            wall: last.wall,
        })
    }
}

/// What a route change did to the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Add,
    Withdraw,
    Change,
}

/// The prefixes in the table, to count them: a change for a prefix
/// already there (another ECMP next hop) is not an add. IPv4 prefixes are
/// kept as their address in one set per length: about 5 bytes a slot, 10
/// to 16 MB at a million prefixes.
struct Prefixes {
    v4: Vec<FastSet<u32>>,
    v6: FastSet<([u8; 16], u8)>,
}

impl Default for Prefixes {
    fn default() -> Self {
        Prefixes {
            v4: (0..=32).map(|_| FastSet::default()).collect(),
            v6: FastSet::default(),
        }
    }
}

impl Prefixes {
    fn apply(&mut self, c: &RouteChange) -> Kind {
        let present = match c.prefix {
            IpNet::V4(n) => {
                let set = &mut self.v4[usize::from(n.prefix_len())];
                let k = u32::from(n.addr());
                if c.is_withdraw() {
                    set.remove(&k);
                    return Kind::Withdraw;
                }
                !set.insert(k)
            }
            IpNet::V6(n) => {
                let k = (n.addr().octets(), n.prefix_len());
                if c.is_withdraw() {
                    self.v6.remove(&k);
                    return Kind::Withdraw;
                }
                !self.v6.insert(k)
            }
        };
        if present { Kind::Change } else { Kind::Add }
    }

    fn len(&self) -> usize {
        self.v4.iter().map(FastSet::len).sum::<usize>() + self.v6.len()
    }
}

/// `HH:MM:SS`, copied so that it can be held while the view changes.
#[derive(Clone, Copy)]
struct Stamp {
    b: [u8; 16],
    n: u8,
}

impl Stamp {
    fn new(s: &str) -> Self {
        let mut b = [0u8; 16];
        let n = s.len().min(16);
        b[..n].copy_from_slice(&s.as_bytes()[..n]);
        Stamp { b, n: n as u8 }
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.b[..usize::from(self.n)]).unwrap_or("??:??:??"))
    }
}

/// A count with thousands separators: `1,000,000`.
struct Count(u64);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 32];
        let mut i = buf.len();
        let mut n = self.0;
        let mut digits = 0;
        loop {
            if digits > 0 && digits % 3 == 0 {
                i -= 1;
                buf[i] = b',';
            }
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            digits += 1;
            if n == 0 {
                break;
            }
        }
        f.write_str(std::str::from_utf8(&buf[i..]).unwrap_or("?"))
    }
}

/// How long a summary's lines took to come.
struct Span(Duration);

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < Duration::from_millis(100) {
            f.write_str("at once")
        } else {
            write!(f, "in the last {:.1} s", self.0.as_secs_f64())
        }
    }
}

/// A writer that keeps its first error and drops what follows, so that a
/// closed stdout cannot stop a call half way and leave the counts wrong.
struct Sticky<'a, W: Write + ?Sized> {
    inner: &'a mut W,
    err: Option<io::Error>,
}

impl<'a, W: Write + ?Sized> Sticky<'a, W> {
    fn new(inner: &'a mut W) -> Self {
        Sticky { inner, err: None }
    }

    fn result(self, r: io::Result<()>) -> io::Result<()> {
        match self.err {
            Some(e) => Err(e),
            None => r,
        }
    }
}

impl<W: Write + ?Sized> Write for Sticky<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.err.is_none()
            && let Err(e) = self.inner.write_all(buf)
        {
            self.err = Some(e);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.err.is_none()
            && let Err(e) = self.inner.flush()
        {
            self.err = Some(e);
        }
        Ok(())
    }
}

/// `HH:MM:SS route P via NH NH (ECMP 2)`, or `... withdrawn`, without
/// allocating.
fn write_route(out: &mut impl Write, t: Stamp, c: &RouteChange) -> io::Result<()> {
    if c.is_withdraw() {
        return writeln!(out, "{t} route {} withdrawn", c.prefix);
    }
    write!(out, "{t} route {} via", c.prefix)?;
    for nh in c.next_hops.iter() {
        write!(out, " {nh}")?;
    }
    if c.next_hops.len() > 1 {
        write!(out, " (ECMP {})", c.next_hops.len())?;
    }
    out.write_all(b"\n")
}

/// An UPDATE's next hop and the attributes worth showing.
fn describe(u: &Update) -> (String, String) {
    let nh = u
        .mp_reach()
        .map(|m| m.next_hop.to_string())
        .or_else(|| match u.attr(attr::NEXT_HOP) {
            Some(Attr::NextHop(a)) => Some(a.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| "-".into());
    let mut attrs = Vec::new();
    if let Some(Attr::AsPath(p)) = u.attr(attr::AS_PATH) {
        attrs.push(format!("path {p}"));
    }
    if let Some(Attr::LocalPref(l)) = u.attr(attr::LOCAL_PREF) {
        attrs.push(format!("local-pref {l}"));
    }
    if let Some(Attr::OriginatorId(o)) = u.attr(attr::ORIGINATOR_ID) {
        attrs.push(format!("originator {o}"));
    }
    if let Some(Attr::ClusterList(c)) = u.attr(attr::CLUSTER_LIST) {
        let c: Vec<String> = c.iter().map(|a| a.to_string()).collect();
        attrs.push(format!("cluster-list {}", c.join(" ")));
    }
    (nh, attrs.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    use crate::fsm::{DownReason, State};
    use crate::route::{NextHop, NextHops};
    use crate::wire::{Nlri, Notification, PathAttribute};

    const PEER: &str = "192.168.83.36";

    /// A clock that starts at a fixed wall time.
    #[derive(Clone, Copy)]
    struct Clock(Now);

    impl Clock {
        fn new() -> Self {
            Clock(Now {
                mono: Instant::now(),
                wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            })
        }

        fn at(&self, ms: u64) -> Now {
            let d = Duration::from_millis(ms);
            Now {
                mono: self.0.mono + d,
                wall: self.0.wall + d,
            }
        }

        fn hms(&self, ms: u64) -> String {
            session::hms(self.at(ms).wall)
        }
    }

    fn add(p: &str, nhs: &[&str]) -> RouteChange {
        RouteChange {
            prefix: p.parse().unwrap(),
            next_hops: nhs
                .iter()
                .map(|a| NextHop::new(a.parse().unwrap()))
                .collect(),
        }
    }

    fn withdraw(p: &str) -> RouteChange {
        RouteChange {
            prefix: p.parse().unwrap(),
            next_hops: NextHops::new(),
        }
    }

    /// /24 number `i` from 10.0.0.0.
    fn nth(i: u32) -> String {
        let a = Ipv4Addr::from(0x0a00_0000 + (i << 8));
        format!("{a}/24")
    }

    fn adds(from: u32, n: u32) -> Vec<RouteChange> {
        (from..from + n)
            .map(|i| add(&nth(i), &["192.168.83.2"]))
            .collect()
    }

    fn lines(out: Vec<u8>) -> Vec<String> {
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn routes(log: &mut ViewLog, now: Now, changes: &[RouteChange]) -> Vec<String> {
        let mut out = Vec::new();
        log.routes(now, changes, &mut out).unwrap();
        lines(out)
    }

    fn event(log: &mut ViewLog, now: Now, ev: &PeerEvent) -> Vec<String> {
        let mut out = Vec::new();
        log.event(now, ev, &mut out).unwrap();
        lines(out)
    }

    fn note(log: &mut ViewLog, now: Now, line: &str) -> Vec<String> {
        let mut out = Vec::new();
        log.note(now, line, &mut out).unwrap();
        lines(out)
    }

    fn finish(log: &mut ViewLog, now: Now) -> Vec<String> {
        let mut out = Vec::new();
        log.finish(now, &mut out).unwrap();
        lines(out)
    }

    fn announce(prefixes: &[String]) -> PeerEvent {
        PeerEvent::Update {
            peer: PEER.parse().unwrap(),
            update: Box::new(Update {
                attributes: vec![
                    PathAttribute::new(Attr::NextHop("192.168.83.2".parse().unwrap())),
                    PathAttribute::new(Attr::LocalPref(100)),
                ],
                nlri: prefixes
                    .iter()
                    .map(|p| Nlri::new(p.parse().unwrap()))
                    .collect(),
                ..Default::default()
            }),
        }
    }

    fn end_of_rib() -> PeerEvent {
        PeerEvent::Update {
            peer: PEER.parse().unwrap(),
            update: Box::new(Update::end_of_rib(crate::wire::AfiSafi::IPV4_UNICAST)),
        }
    }

    fn summaries(lines: &[String]) -> Vec<&String> {
        lines.iter().filter(|l| l.contains(" ... ")).collect()
    }

    /// The number in a summary: "... 1,234 more ...".
    fn held(line: &str) -> u64 {
        let n = line
            .split(" ... ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        n.replace(',', "").parse().unwrap()
    }

    #[test]
    fn under_budget_every_line_is_printed_as_before() {
        let c = Clock::new();
        let mut log = ViewLog::new(LINES_PER_WINDOW, WINDOW);
        let t = c.hms(0);
        let out = routes(
            &mut log,
            c.at(0),
            &[
                add("172.15.190.0/26", &["192.168.82.11"]),
                add(
                    "172.16.0.0/16",
                    &["192.168.82.11", "192.168.82.12", "192.168.82.13"],
                ),
                withdraw("172.15.7.64/26"),
            ],
        );
        assert_eq!(
            out,
            [
                format!("{t} route 172.15.190.0/26 via 192.168.82.11"),
                format!(
                    "{t} route 172.16.0.0/16 via 192.168.82.11 192.168.82.12 192.168.82.13 (ECMP 3)"
                ),
                format!("{t} route 172.15.7.64/26 withdrawn"),
            ]
        );
        // Hundreds of routes from a few reflectors, at once: every line.
        let mut printed = 0;
        for r in 0..3 {
            let prefixes: Vec<String> = (0..300).map(nth).collect();
            let ev = announce(&prefixes);
            let out = event(&mut log, c.at(10 + r), &ev);
            assert_eq!(out.len(), 300);
            assert_eq!(
                out[0],
                format!("{t} {PEER:<15} + 10.0.0.0/24 via 192.168.83.2 [local-pref 100]")
            );
            printed += out.len();
        }
        let out = routes(&mut log, c.at(20), &adds(0, 300));
        printed += out.len();
        assert_eq!(printed, 1200);
        assert!(summaries(&out).is_empty(), "{out:?}");
        assert!(finish(&mut log, c.at(5000)).is_empty());
        assert_eq!(log.prefixes(), 302);
    }

    #[test]
    fn over_budget_prints_the_budget_then_one_summary_per_window() {
        let c = Clock::new();
        let mut log = ViewLog::new(3, WINDOW);
        let mut all = Vec::new();
        // Two, under the budget; then 10 changes every 100 ms for 2.9 s.
        all.extend(
            routes(&mut log, c.at(0), &adds(0, 2))
                .into_iter()
                .map(|l| (0, l)),
        );
        let mut n = 2;
        for k in 1..30 {
            let ms = k * 100;
            let out = routes(&mut log, c.at(ms), &adds(n, 10));
            n += 10;
            all.extend(out.into_iter().map(|l| (ms, l)));
        }
        let route_lines: Vec<_> = all
            .iter()
            .filter(|(_, l)| l.contains(" route 10."))
            .collect();
        assert_eq!(route_lines.len(), 3, "{all:#?}");
        let sums: Vec<_> = all.iter().filter(|(_, l)| l.contains(" ... ")).collect();
        // Due one window after the first line held, then once per window.
        let at: Vec<u64> = sums.iter().map(|(ms, _)| *ms).collect();
        assert_eq!(at, [1000, 2000], "{sums:#?}");
        assert_eq!(
            sums[0].1,
            format!(
                "{} ... 89 more route changes (+89 / -0) in the last 0.9 s; 92 prefixes in the table",
                c.hms(900)
            )
        );
        // The burst ends: the next call a window later prints the rest.
        let out = routes(&mut log, c.at(4000), &[]);
        assert_eq!(out.len(), 1, "{out:?}");
        let total: u64 = sums.iter().map(|(_, l)| held(l)).sum::<u64>() + held(&out[0]);
        assert_eq!(total + 3, u64::from(n));
        assert!(
            out[0].ends_with(&format!("; {n} prefixes in the table")),
            "{out:?}"
        );
        assert!(finish(&mut log, c.at(5000)).is_empty());
    }

    #[test]
    fn a_change_set_over_the_budget_gets_its_summary_at_once() {
        let c = Clock::new();
        let mut log = ViewLog::new(2, WINDOW);
        let out = routes(&mut log, c.at(0), &adds(0, 1_000_000));
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(
            out[2],
            format!(
                "{} ... 999,998 more route changes (+999,998 / -0) at once; 1,000,000 prefixes in the table",
                c.hms(0)
            )
        );
        // A session goes down: everything withdrawn at once, a while later.
        let w: Vec<RouteChange> = (0..1_000_000).map(|i| withdraw(&nth(i))).collect();
        let out = routes(&mut log, c.at(10_000), &w);
        assert_eq!(
            out[2],
            format!(
                "{} ... 999,998 more route changes (+0 / -999,998) at once; 0 prefixes in the table",
                c.hms(10_000)
            )
        );
    }

    #[test]
    fn counts_are_right_with_withdraws_and_changes() {
        let c = Clock::new();
        let mut log = ViewLog::new(2, WINDOW);
        let out = routes(&mut log, c.at(0), &adds(0, 10));
        assert!(out[2].contains("8 more route changes (+8 / -0) at once; 10 prefixes"));
        // Long after: 4 withdrawn, 2 get a second next hop, 1 new.
        let mut set: Vec<RouteChange> = (0..4).map(|i| withdraw(&nth(i))).collect();
        set.push(add(&nth(4), &["192.168.83.2", "192.168.83.3"]));
        set.push(add(&nth(5), &["192.168.83.2", "192.168.83.3"]));
        set.push(add(&nth(10), &["192.168.83.2"]));
        // A withdraw of a prefix never seen does not count below zero.
        set.push(withdraw("10.99.0.0/16"));
        let out = routes(&mut log, c.at(5000), &set);
        let t = c.hms(5000);
        assert_eq!(
            out,
            [
                format!("{t} route 10.0.0.0/24 withdrawn"),
                format!("{t} route 10.0.1.0/24 withdrawn"),
                format!(
                    "{t} ... 6 more route changes (+1 / -3 / 2 changed) at once; 7 prefixes in the table"
                ),
            ]
        );
        assert_eq!(log.prefixes(), 7);
        // IPv6 is counted too.
        routes(
            &mut log,
            c.at(9000),
            &[add("2001:db8:1::/48", &["fe80::1"]), withdraw(&nth(6))],
        );
        assert_eq!(log.prefixes(), 7);
    }

    #[test]
    fn a_long_burst_is_shown_as_summaries_until_the_rate_drops() {
        let c = Clock::new();
        let mut log = ViewLog::new(3, WINDOW);
        let mut out = routes(&mut log, c.at(0), &adds(0, 1));
        out.extend(routes(&mut log, c.at(500), &adds(1, 10)));
        assert_eq!(out.len(), 3);
        // The next window follows one over the budget: no lines, a summary
        // (the previous window's) when due.
        let out = routes(&mut log, c.at(1200), &adds(11, 2));
        assert_eq!(summaries(&out).len(), 1);
        assert!(out[0].contains(" 8 more "), "{out:?}");
        assert_eq!(out.len(), 1, "{out:?}");
        // That window had 2 changes, under the budget: lines again.
        let out = routes(&mut log, c.at(2300), &adds(13, 1));
        assert!(out[0].contains(" 2 more "), "{out:?}");
        assert!(out[1].contains(" route 10.0.13.0/24 via"), "{out:?}");
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn received_prefixes_collapse_per_peer_and_end_of_rib_ends_the_burst() {
        let c = Clock::new();
        let mut log = ViewLog::new(2, WINDOW);
        let prefixes: Vec<String> = (0..5).map(nth).collect();
        let out = event(&mut log, c.at(0), &announce(&prefixes));
        assert_eq!(out.len(), 2, "{out:?}");
        let mut out = routes(&mut log, c.at(1), &adds(0, 1));
        out.extend(routes(&mut log, c.at(2), &adds(1, 4)));
        assert_eq!(out.len(), 2, "{out:?}");
        // Not due yet: a window has not passed. The peer's End-of-RIB
        // ends its burst.
        let out = event(&mut log, c.at(300), &end_of_rib());
        let t = c.hms(300);
        assert_eq!(
            out,
            [
                format!(
                    "{} {PEER:<15} ... 3 more prefixes (+3 / -0) at once",
                    c.hms(0)
                ),
                format!(
                    "{} ... 3 more route changes (+3 / -0) at once; 5 prefixes in the table",
                    c.hms(2)
                ),
                format!("{t} {PEER:<15} End-of-RIB ipv4-unicast"),
            ]
        );
        assert!(finish(&mut log, c.at(400)).is_empty());
    }

    #[test]
    fn the_table_summary_follows_a_batch_that_ends_with_end_of_rib() {
        // The daemon hands a batch's events to the view first, then its
        // change set: End-of-RIB comes before the last UPDATEs' changes.
        let c = Clock::new();
        let mut log = ViewLog::new(2, WINDOW);
        let prefixes: Vec<String> = (0..5).map(nth).collect();
        event(&mut log, c.at(0), &announce(&prefixes));
        routes(&mut log, c.at(0), &adds(0, 1));
        let prefixes: Vec<String> = (5..10).map(nth).collect();
        event(&mut log, c.at(100), &announce(&prefixes));
        let out = event(&mut log, c.at(100), &end_of_rib());
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[0].contains(" ... 8 more prefixes (+8 / -0)"), "{out:?}");
        assert!(out[1].ends_with(" End-of-RIB ipv4-unicast"), "{out:?}");
        let out = routes(&mut log, c.at(100), &adds(1, 9));
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(out[0].contains(" route 10.0.1.0/24 via"), "{out:?}");
        assert_eq!(
            out[1],
            format!(
                "{} ... 8 more route changes (+8 / -0) in the last 0.1 s; 10 prefixes in the table",
                c.hms(100)
            )
        );
        // Only the next change set: later ones wait for their window.
        routes(&mut log, c.at(300), &[]);
        let out = routes(&mut log, c.at(400), &adds(10, 3));
        assert!(summaries(&out).is_empty(), "{out:?}");
    }

    #[test]
    fn session_events_are_never_suppressed() {
        let c = Clock::new();
        let mut log = ViewLog::new(1, WINDOW);
        let peer: IpAddr = PEER.parse().unwrap();
        let prefixes: Vec<String> = (0..100).map(nth).collect();
        event(&mut log, c.at(0), &announce(&prefixes));
        routes(&mut log, c.at(0), &adds(0, 1));
        routes(&mut log, c.at(1), &adds(1, 99));
        let mut out = Vec::new();
        for k in 1..=50 {
            out.extend(event(
                &mut log,
                c.at(k),
                &PeerEvent::State {
                    peer: "192.168.83.49".parse().unwrap(),
                    from: State::Connect,
                    to: State::Active,
                },
            ));
        }
        assert_eq!(out.len(), 50);
        assert!(out.iter().all(|l| l.ends_with("Connect -> Active")));
        let out = event(
            &mut log,
            c.at(60),
            &PeerEvent::Down {
                peer,
                reason: DownReason::Received(Notification::new(6, 2, Vec::new())),
            },
        );
        // The busy peer's summaries first, then the event.
        assert_eq!(out.len(), 3, "{out:?}");
        assert!(
            out[0].contains(" ... 99 more prefixes (+99 / -0)"),
            "{out:?}"
        );
        assert!(out[1].contains(" ... 99 more route changes"), "{out:?}");
        assert!(
            out[2].starts_with(&format!(
                "{} {PEER:<15} down: received NOTIFICATION 6/2",
                c.hms(60)
            )),
            "{out:?}"
        );
        let out = note(
            &mut log,
            c.at(61),
            "192.168.83.36: routes kept as stale for 120s (graceful restart)",
        );
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn per_route_notes_collapse_and_others_do_not() {
        let c = Clock::new();
        let mut log = ViewLog::new(2, WINDOW);
        let mut out = note(
            &mut log,
            c.at(0),
            "192.168.83.36: routes kept as stale for 120s (graceful restart)",
        );
        for i in 0..10 {
            out.extend(note(
                &mut log,
                c.at(1),
                &format!("route {} via 192.168.83.2 (stale)", nth(i)),
            ));
        }
        out.extend(note(
            &mut log,
            c.at(2),
            "192.168.83.36: 0.0.0.0/0 rejected: default route",
        ));
        out.extend(note(&mut log, c.at(3), "bgpd: something else"));
        assert_eq!(out.len(), 4, "{out:?}");
        assert!(out[3].ends_with(" bgpd: something else"));
        let out = finish(&mut log, c.at(4));
        assert_eq!(
            out,
            [format!(
                "{} ... 9 more notes (8 routes kept as stale, 1 rejected) at once",
                c.hms(2)
            )]
        );
    }

    #[test]
    fn a_closed_stdout_leaves_the_counts_right() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let c = Clock::new();
        let mut log = ViewLog::new(2, WINDOW);
        assert!(log.routes(c.at(0), &adds(0, 10), &mut Closed).is_err());
        assert_eq!(log.prefixes(), 10);
    }

    #[test]
    fn counts_have_thousands_separators() {
        for (n, s) in [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (99_950, "99,950"),
            (1_000_000, "1,000,000"),
            (u64::MAX, "18,446,744,073,709,551,615"),
        ] {
            assert_eq!(Count(n).to_string(), s);
        }
        assert_eq!(Span(Duration::from_millis(20)).to_string(), "at once");
        assert_eq!(
            Span(Duration::from_millis(1040)).to_string(),
            "in the last 1.0 s"
        );
    }
}
