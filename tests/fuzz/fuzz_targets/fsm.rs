//! The sans-IO FSM fed arbitrary input sequences.
//!
//! The first bytes choose the peer's configuration (passive, hold time,
//! keepalive, remote AS, required capabilities); the rest is a sequence of
//! inputs, one opcode byte each followed by its operands: Start, Stop,
//! Connected, ConnectFailed, Closed, Received(OPEN with random
//! capabilities, hold time, AS and identifier / KEEPALIVE / UPDATE /
//! NOTIFICATION / ROUTE-REFRESH), DecodeError, Fail, and the expiry of a
//! timer the FSM armed. Time only moves forward: a timer fires at its
//! deadline, other inputs advance the clock by a few milliseconds to
//! minutes.
//!
//! An OPEN goes through the codec first (encoded with the initial context,
//! decoded again), as in the peer task: what the codec refuses arrives as
//! `Input::DecodeError`, so the FSM only sees OPENs a peer can deliver.
//!
//! Invariants checked after every input:
//! - no panic;
//! - `Up` and `Down` alternate, `Down` never comes first, and at most one
//!   connection is Established (the session's connection closing brings a
//!   `Down` in the same batch);
//! - `negotiated()` is `Some` exactly when the state is Established and a
//!   session is up;
//! - after `Stop` the state is Idle and nothing connects until `Start`;
//! - timers are armed with sane durations: Hold and Keepalive in 1 s ..
//!   65535 s (never 0, which would spin), ConnectRetry and IdleHold never
//!   above their configured maximum, nothing above 65535 s;
//! - a KEEPALIVE interval never exceeds the hold time it goes with.
#![no_main]

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgpd::fsm::{Config, ConnId, DownReason, Fsm, Input, Output, Received, State, Timer};
use bgpd::wire::open::{AddPathFamily, GrFamily, GracefulRestart, LlgrFamily};
use bgpd::wire::{AfiSafi, Capability, Ctx, DecodeError, Message, Notification, Open};
use libfuzzer_sys::fuzz_target;

const LOCAL_AS: u32 = 64512;
const LOCAL_ID: Ipv4Addr = Ipv4Addr::new(192, 168, 83, 1);

struct Bytes<'a> {
    data: &'a [u8],
}

impl Bytes<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes([
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ]))
    }
}

fn family(b: u8) -> AfiSafi {
    match b % 5 {
        0 => AfiSafi::IPV4_UNICAST,
        1 => AfiSafi::IPV6_UNICAST,
        2 => AfiSafi::IPV4_MULTICAST,
        3 => AfiSafi::IPV6_MULTICAST,
        _ => AfiSafi::new(25, 70), // EVPN: a family bgpd does not carry
    }
}

fn capability(b: &mut Bytes, peer_as: u32) -> Option<Capability> {
    Some(match b.u8()? % 12 {
        0 => Capability::Multiprotocol {
            afi_safi: family(b.u8()?),
        },
        1 => Capability::RouteRefresh,
        2 => Capability::ExtendedMessage,
        3 => Capability::GracefulRestart(GracefulRestart {
            flags: b.u8()? & 0xc,
            restart_time: b.u16()? & 0xfff,
            families: (0..b.u8()? % 3)
                .map(|_| {
                    Some(GrFamily {
                        afi_safi: family(b.u8()?),
                        flags: b.u8()? & 0x80,
                    })
                })
                .collect::<Option<_>>()?,
        }),
        4 => Capability::FourOctetAs {
            // Mostly the AS of the OPEN, sometimes another one.
            asn: if b.u8()? < 200 { peer_as } else { b.u32()? },
        },
        5 => Capability::AddPath {
            families: (0..b.u8()? % 3)
                .map(|_| {
                    Some(AddPathFamily {
                        afi_safi: family(b.u8()?),
                        mode: b.u8()? % 4,
                    })
                })
                .collect::<Option<_>>()?,
        },
        6 => Capability::EnhancedRouteRefresh,
        7 => Capability::LongLivedGracefulRestart {
            families: (0..b.u8()? % 3)
                .map(|_| {
                    Some(LlgrFamily {
                        afi_safi: family(b.u8()?),
                        flags: b.u8()? & 0x80,
                        stale_time: b.u32()? & 0xff_ffff,
                    })
                })
                .collect::<Option<_>>()?,
        },
        8 => Capability::Fqdn {
            hostname: "node".into(),
            domain: String::new(),
        },
        9 => Capability::Unknown {
            code: b.u8()?,
            data: vec![b.u8()?; (b.u8()? % 4) as usize].into(),
        },
        _ => Capability::Multiprotocol {
            afi_safi: AfiSafi::IPV4_UNICAST,
        },
    })
}

/// An OPEN as a peer would send it: mostly plausible (our AS, a
/// different identifier), with random capabilities and hold time.
fn open(b: &mut Bytes) -> Option<Open> {
    let sel = b.u8()?;
    let asn = match sel % 4 {
        0 | 1 => LOCAL_AS,
        2 => 65000,
        _ => b.u32()?,
    };
    let hold = match (sel >> 2) % 4 {
        0 => 90,
        1 => 3,
        2 => 0,
        _ => b.u16()?,
    };
    let id = match (sel >> 4) % 4 {
        0 | 1 => Ipv4Addr::new(192, 168, 83, 36),
        2 => LOCAL_ID,
        _ => Ipv4Addr::from(b.u32()?),
    };
    let n = b.u8()? % 8;
    let mut caps = Vec::new();
    for _ in 0..n {
        caps.push(capability(b, asn)?);
    }
    let mut o = Open::new(asn, hold, id, caps);
    if sel & 0x40 != 0 {
        // One capability per optional parameter, as some speakers group them.
        o.params = o.params.concat().into_iter().map(|c| vec![c]).collect();
    }
    Some(o)
}

fn conn(b: u8) -> ConnId {
    if b & 1 == 0 {
        ConnId::Outbound
    } else {
        ConnId::Inbound
    }
}

fn config(b: &mut Bytes) -> Option<Config> {
    let mut c = Config::new(LOCAL_AS, LOCAL_ID, Some(LOCAL_AS));
    let sel = b.u8()?;
    c.passive = sel & 1 != 0;
    c.remote_as = match (sel >> 1) % 4 {
        0 | 1 => Some(LOCAL_AS),
        2 => None,
        _ => Some(65000),
    };
    // What config validation lets through: 0 or 3..=65535.
    c.hold_time = match (sel >> 3) % 4 {
        0 => 90,
        1 => 0,
        2 => 3,
        _ => b.u16()?.max(3),
    };
    c.keepalive = if sel & 0x20 != 0 && c.hold_time > 1 {
        Some(1 + b.u16()? % (c.hold_time - 1))
    } else {
        None
    };
    c.capabilities = vec![
        Capability::Multiprotocol {
            afi_safi: AfiSafi::IPV4_UNICAST,
        },
        Capability::Multiprotocol {
            afi_safi: AfiSafi::IPV6_UNICAST,
        },
        Capability::RouteRefresh,
        Capability::EnhancedRouteRefresh,
        Capability::GracefulRestart(GracefulRestart {
            flags: 0,
            restart_time: 120,
            families: vec![],
        }),
        Capability::FourOctetAs { asn: LOCAL_AS },
        Capability::AddPath {
            families: vec![AddPathFamily {
                afi_safi: AfiSafi::IPV4_UNICAST,
                mode: 1,
            }],
        },
    ];
    if sel & 0x40 != 0 {
        c.required = vec![Capability::RouteRefresh];
    }
    if sel & 0x80 != 0 {
        c.required.push(Capability::Multiprotocol {
            afi_safi: AfiSafi::IPV6_UNICAST,
        });
    }
    Some(c)
}

struct Model {
    fsm: Fsm,
    now: Instant,
    /// Armed timers and when they fire.
    timers: HashMap<Timer, Instant>,
    /// The connection carrying the session, between Up and Down.
    up: Option<ConnId>,
    stopped: bool,
    /// Connections the peer task holds, as it would track them: a second
    /// connection in the same direction never reaches the FSM (peer.rs
    /// keeps the one it has).
    open: [bool; 2],
    connect_retry_max: Duration,
    idle_hold_max: Duration,
}

impl Model {
    fn feed(&mut self, input: Input) {
        match &input {
            Input::Connected(id) => {
                if self.open[id.index()] {
                    return;
                }
                self.open[id.index()] = true;
            }
            Input::Closed(id) => self.open[id.index()] = false,
            _ => {}
        }
        let stop = matches!(input, Input::Stop { .. });
        let start = matches!(input, Input::Start);
        let desc = format!("{input:?}");
        let out = self.fsm.handle(input, self.now);
        if stop {
            self.stopped = true;
        }
        if start {
            self.stopped = false;
        }
        let mut closed_up = false;
        let mut downs = 0;
        for o in &out {
            match o {
                Output::Arm(t, d) => {
                    assert!(
                        *d <= Duration::from_secs(65535),
                        "{t:?} armed for {d:?} after {desc}"
                    );
                    match t {
                        Timer::Hold(_) | Timer::Keepalive(_) => {
                            assert!(*d >= Duration::from_secs(1), "{t:?} armed for {d:?}")
                        }
                        Timer::ConnectRetry => assert!(
                            *d <= self.connect_retry_max && !d.is_zero(),
                            "ConnectRetry armed for {d:?}"
                        ),
                        Timer::IdleHold => assert!(
                            *d <= self.idle_hold_max && !d.is_zero(),
                            "IdleHold armed for {d:?}"
                        ),
                    }
                    self.timers.insert(*t, self.now + *d);
                }
                Output::Disarm(t) => {
                    self.timers.remove(t);
                }
                Output::Up(n) => {
                    assert!(
                        self.up.is_none(),
                        "Up twice without a Down (after {desc}): {out:?}"
                    );
                    assert!(n.hold_time == 0 || n.hold_time >= 3, "hold {}", n.hold_time);
                    assert!(
                        n.hold_time == 0 || (n.keepalive >= 1 && n.keepalive <= n.hold_time),
                        "keepalive {} with hold {}",
                        n.keepalive,
                        n.hold_time
                    );
                    if n.ibgp {
                        assert_ne!(n.remote_id, LOCAL_ID, "iBGP session with our own id");
                    }
                    self.up = Some(n.conn);
                }
                Output::Down(r) => {
                    assert!(self.up.is_some(), "Down without Up (after {desc}): {r:?}");
                    if !matches!(r, DownReason::PeerRestarted) {
                        downs += 1;
                    }
                    self.up = None;
                    let _ = format!("{r}");
                }
                Output::Close(id) => {
                    self.open[id.index()] = false;
                    if self.up == Some(*id) {
                        closed_up = true;
                    }
                    self.timers.remove(&Timer::Hold(*id));
                    self.timers.remove(&Timer::Keepalive(*id));
                }
                Output::Connect => {
                    assert!(!self.stopped, "Connect while stopped (after {desc})");
                }
                Output::Send(_, m) => {
                    // Everything the FSM sends must encode.
                    let ctx = Ctx {
                        four_octet_as: true,
                        ..Ctx::INITIAL
                    };
                    m.to_bytes(&ctx)
                        .expect("the FSM sent an unencodable message");
                }
                Output::CancelConnect => {}
            }
        }
        if closed_up {
            assert!(
                self.up.is_none() || downs > 0,
                "the session's connection closed without Down (after {desc}): {out:?}"
            );
        }
        let state = self.fsm.state();
        assert_eq!(
            self.fsm.negotiated().is_some(),
            state == State::Established,
            "negotiated() and state() disagree: {state}"
        );
        assert_eq!(
            self.up.is_some(),
            state == State::Established,
            "Up/Down outputs and state() disagree: {state}, after {desc}: {out:?}"
        );
        if self.stopped {
            assert_eq!(state, State::Idle, "not Idle after Stop");
            assert!(!self.fsm.is_enabled());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes { data };
    let Some(cfg) = config(&mut b) else {
        return;
    };
    let seed = b.u32().map(u64::from).unwrap_or(1);
    let mut m = Model {
        connect_retry_max: cfg.connect_retry_max,
        idle_hold_max: cfg.idle_hold_max,
        fsm: Fsm::new(cfg, seed),
        now: Instant::now(),
        timers: HashMap::new(),
        up: None,
        stopped: false,
        open: [false; 2],
    };
    let mut steps = 0;
    while let Some(op) = b.u8() {
        steps += 1;
        if steps > 512 {
            break;
        }
        // Time moves forward between inputs.
        let advance = match op >> 5 {
            0 => Duration::from_millis(1),
            1 => Duration::from_millis(100),
            2 => Duration::from_secs(1),
            3 => Duration::from_secs(30),
            4 => Duration::from_secs(61),
            _ => Duration::ZERO,
        };
        m.now += advance;
        let input = match op & 0x1f {
            0 | 1 => Input::Start,
            2 => Input::Stop {
                subcode: b.u8().unwrap_or(2) % 12,
                reason: "fuzz".into(),
            },
            3 | 4 => Input::Connected(conn(b.u8().unwrap_or(0))),
            5 => Input::ConnectFailed,
            6 => Input::Closed(conn(b.u8().unwrap_or(0))),
            7..=10 => {
                let id = conn(b.u8().unwrap_or(0));
                let Some(o) = open(&mut b) else { break };
                // Through the codec, as the peer task does.
                match Message::Open(o).to_bytes(&Ctx::INITIAL) {
                    Ok(bytes) => match Message::decode(&Ctx::INITIAL, &bytes) {
                        Ok(Message::Open(o)) => Input::Received(id, Received::Open(o)),
                        Ok(other) => panic!("an OPEN decoded as {other:?}"),
                        Err(e) => Input::DecodeError(id, e),
                    },
                    Err(_) => continue,
                }
            }
            11..=14 => Input::Received(conn(b.u8().unwrap_or(0)), Received::Keepalive),
            15 => Input::Received(conn(b.u8().unwrap_or(0)), Received::Update),
            16 => Input::Received(conn(b.u8().unwrap_or(0)), Received::RouteRefresh),
            17 => {
                let id = conn(b.u8().unwrap_or(0));
                let code = b.u8().unwrap_or(6) % 8;
                let sub = b.u8().unwrap_or(0) % 12;
                Input::Received(
                    id,
                    Received::Notification(Notification::new(code, sub, vec![])),
                )
            }
            18 => {
                let id = conn(b.u8().unwrap_or(0));
                let code = 1 + b.u8().unwrap_or(0) % 3;
                let sub = b.u8().unwrap_or(0) % 12;
                Input::DecodeError(id, DecodeError::new(code, sub, vec![], "fuzz"))
            }
            19 => Input::Fail(Notification::new(6, 1, vec![])),
            _ => {
                // The earliest armed timer fires (or the one the operand
                // picks among those armed); the clock moves to its deadline.
                if m.timers.is_empty() {
                    continue;
                }
                let mut armed: Vec<(Timer, Instant)> =
                    m.timers.iter().map(|(t, d)| (*t, *d)).collect();
                armed.sort_by_key(|(t, d)| (*d, format!("{t:?}")));
                let pick = if op & 1 == 0 {
                    0
                } else {
                    b.u8().unwrap_or(0) as usize % armed.len()
                };
                let (t, deadline) = armed[pick];
                m.timers.remove(&t);
                if deadline > m.now {
                    m.now = deadline;
                }
                Input::Timer(t)
            }
        };
        m.feed(input);
    }
    // Stopping always ends in Idle.
    m.feed(Input::Stop {
        subcode: 2,
        reason: String::new(),
    });
});
