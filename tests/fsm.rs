//! Table-driven tests of the sans-IO FSM: each step is an input, the state
//! after it, and the exact outputs, in order.

use std::time::{Duration, Instant};

use bgpd::fsm::*;
use bgpd::wire::iana::err;
use bgpd::wire::open::{AddPathFamily, GracefulRestart};
use bgpd::wire::*;

const LOCAL_ID: &str = "192.168.83.1";
const PEER_ID: &str = "192.168.83.36";

fn cfg() -> Config {
    let mut c = Config::new(64512, LOCAL_ID.parse().unwrap(), Some(64512));
    c.capabilities = vec![
        Capability::Multiprotocol {
            afi_safi: AfiSafi::IPV4_UNICAST,
        },
        Capability::RouteRefresh,
        Capability::FourOctetAs { asn: 64512 },
        Capability::AddPath {
            families: vec![AddPathFamily {
                afi_safi: AfiSafi::IPV4_UNICAST,
                mode: 1,
            }],
        },
    ];
    c
}

/// An OPEN like Calico's BIRD 1.6 reflector sends.
fn bird_open(id: &str, asn: u32, hold: u16) -> Open {
    Open::new(
        asn,
        hold,
        id.parse().unwrap(),
        vec![
            Capability::Multiprotocol {
                afi_safi: AfiSafi::IPV4_UNICAST,
            },
            Capability::RouteRefresh,
            Capability::GracefulRestart(GracefulRestart {
                flags: 0,
                restart_time: 120,
                families: vec![],
            }),
            Capability::FourOctetAs { asn },
            Capability::AddPath {
                families: vec![AddPathFamily {
                    afi_safi: AfiSafi::IPV4_UNICAST,
                    mode: 3,
                }],
            },
            Capability::EnhancedRouteRefresh,
            Capability::LongLivedGracefulRestart { families: vec![] },
        ],
    )
}

fn sig(o: &Output) -> String {
    let c = |id: &ConnId| match id {
        ConnId::Outbound => "o",
        ConnId::Inbound => "i",
    };
    let t = |t: &Timer| match t {
        Timer::ConnectRetry => "connect-retry".to_string(),
        Timer::IdleHold => "idle-hold".to_string(),
        Timer::Hold(id) => format!("hold-{}", c(id)),
        Timer::Keepalive(id) => format!("keepalive-{}", c(id)),
    };
    match o {
        Output::Connect => "connect".into(),
        Output::CancelConnect => "cancel".into(),
        Output::Send(id, m) => {
            let m = match m {
                Message::Open(_) => "open".to_string(),
                Message::Update(_) => "update".into(),
                Message::Keepalive => "keepalive".into(),
                Message::RouteRefresh(_) => "route-refresh".into(),
                Message::Notification(n) => format!("notify {}/{}", n.code, n.subcode),
            };
            format!("send-{}:{m}", c(id))
        }
        Output::Close(id) => format!("close-{}", c(id)),
        Output::Arm(x, _) => format!("arm:{}", t(x)),
        Output::Disarm(x) => format!("disarm:{}", t(x)),
        Output::Up(_) => "up".into(),
        Output::Down(_) => "down".into(),
    }
}

struct Run {
    fsm: Fsm,
    now: Instant,
    last: Vec<Output>,
}

impl Run {
    fn new(cfg: Config) -> Run {
        Run {
            fsm: Fsm::new(cfg, 42),
            now: Instant::now(),
            last: vec![],
        }
    }

    #[track_caller]
    fn step(&mut self, input: Input, state: State, want: &[&str]) -> &mut Self {
        self.last = self.fsm.handle(input.clone(), self.now);
        let got: Vec<String> = self.last.iter().map(sig).collect();
        assert_eq!(got, want, "after {input:?}");
        assert_eq!(self.fsm.state(), state, "after {input:?}");
        self
    }

    fn armed(&self, timer: Timer) -> Duration {
        self.last
            .iter()
            .find_map(|o| match o {
                Output::Arm(t, d) if *t == timer => Some(*d),
                _ => None,
            })
            .expect("timer armed")
    }

    /// From Idle to Established over the outbound connection.
    fn establish(&mut self, open: Open) -> &mut Self {
        use Input::*;
        self.step(Start, State::Connect, &["connect", "arm:connect-retry"])
            .step(
                Connected(ConnId::Outbound),
                State::OpenSent,
                &["disarm:connect-retry", "send-o:open", "arm:hold-o"],
            )
            .step(
                Received(ConnId::Outbound, bgpd::fsm::Received::Open(open)),
                State::OpenConfirm,
                &["send-o:keepalive", "arm:hold-o", "arm:keepalive-o"],
            )
            .step(
                Received(ConnId::Outbound, bgpd::fsm::Received::Keepalive),
                State::Established,
                &["arm:hold-o", "disarm:connect-retry", "up"],
            )
    }
}

fn rx(m: bgpd::fsm::Received) -> Input {
    Input::Received(ConnId::Outbound, m)
}

/// The outputs of dropping the outbound connection with damping.
const FAIL_O: [&str; 5] = [
    "disarm:hold-o",
    "disarm:keepalive-o",
    "close-o",
    "disarm:connect-retry",
    "arm:idle-hold",
];

#[test]
fn active_open_to_established_and_hold_expiry() {
    let mut r = Run::new(cfg());
    r.establish(bird_open(PEER_ID, 64512, 240));
    let n = r.fsm.negotiated().unwrap().clone();
    assert_eq!(n.hold_time, 90);
    assert_eq!(n.keepalive, 30);
    assert!(n.ibgp);
    assert!(n.ctx.four_octet_as);
    assert!(n.ctx.add_path_rx.contains(AfiSafi::IPV4_UNICAST));
    assert!(!n.ctx.add_path_tx.contains(AfiSafi::IPV4_UNICAST));
    assert!(n.peer_graceful_restart.is_some());
    assert!(n.route_refresh);
    assert!(!n.enhanced_route_refresh);
    r.step(
        Input::Timer(Timer::Keepalive(ConnId::Outbound)),
        State::Established,
        &["send-o:keepalive", "arm:keepalive-o"],
    )
    .step(rx(Received::Update), State::Established, &["arm:hold-o"])
    .step(
        rx(Received::RouteRefresh),
        State::Established,
        &["arm:hold-o"],
    );
    let mut want = vec!["send-o:notify 4/0"];
    want.extend_from_slice(&FAIL_O[..3]);
    want.push("down");
    want.extend_from_slice(&FAIL_O[3..]);
    r.step(
        Input::Timer(Timer::Hold(ConnId::Outbound)),
        State::Idle,
        &want,
    );
    // After the idle hold, it reconnects by itself.
    r.step(
        Input::Timer(Timer::IdleHold),
        State::Connect,
        &["connect", "arm:connect-retry"],
    );
}

#[test]
fn passive_peer_waits_for_the_connection() {
    let mut c = cfg();
    c.passive = true;
    let mut r = Run::new(c);
    r.step(Input::Start, State::Active, &[])
        .step(Input::Timer(Timer::ConnectRetry), State::Active, &[])
        .step(
            Input::Connected(ConnId::Inbound),
            State::OpenSent,
            &["disarm:connect-retry", "send-i:open", "arm:hold-i"],
        );
}

/// Every error transition, with its exact NOTIFICATION.
#[test]
fn error_transitions() {
    use Received::*;
    let open = || Open(bird_open(PEER_ID, 64512, 240));
    struct Case {
        name: &'static str,
        /// 0: OpenSent, 1: OpenConfirm, 2: Established.
        from: u8,
        input: Input,
        notify: Option<(u8, u8)>,
    }
    let cases = vec![
        Case {
            name: "KEEPALIVE in OpenSent",
            from: 0,
            input: rx(Keepalive),
            notify: Some((5, 1)),
        },
        Case {
            name: "UPDATE in OpenSent",
            from: 0,
            input: rx(Update),
            notify: Some((5, 1)),
        },
        Case {
            name: "ROUTE-REFRESH in OpenSent",
            from: 0,
            input: rx(RouteRefresh),
            notify: Some((5, 1)),
        },
        Case {
            name: "UPDATE in OpenConfirm",
            from: 1,
            input: rx(Update),
            notify: Some((5, 2)),
        },
        Case {
            name: "OPEN in OpenConfirm",
            from: 1,
            input: rx(open()),
            notify: Some((5, 2)),
        },
        Case {
            name: "OPEN in Established",
            from: 2,
            input: rx(open()),
            notify: Some((5, 3)),
        },
        Case {
            name: "wrong AS",
            from: 0,
            input: rx(Open(bird_open(PEER_ID, 64513, 240))),
            notify: Some((2, 2)),
        },
        Case {
            name: "our own router id",
            from: 0,
            input: rx(Open(bird_open(LOCAL_ID, 64512, 240))),
            notify: Some((2, 3)),
        },
        Case {
            name: "decode error",
            from: 2,
            input: Input::DecodeError(
                ConnId::Outbound,
                DecodeError::new(3, 11, vec![], "bad path"),
            ),
            notify: Some((3, 11)),
        },
        Case {
            name: "hold expiry in OpenSent",
            from: 0,
            input: Input::Timer(Timer::Hold(ConnId::Outbound)),
            notify: Some((4, 0)),
        },
        Case {
            name: "hold expiry in OpenConfirm",
            from: 1,
            input: Input::Timer(Timer::Hold(ConnId::Outbound)),
            notify: Some((4, 0)),
        },
        Case {
            name: "max-prefix",
            from: 2,
            input: Input::Fail(bgpd::wire::Notification::new(6, 1, vec![])),
            notify: Some((6, 1)),
        },
        Case {
            name: "NOTIFICATION in OpenSent",
            from: 0,
            input: rx(Notification(bgpd::wire::Notification::new(6, 5, vec![]))),
            notify: None,
        },
        Case {
            name: "NOTIFICATION in OpenConfirm",
            from: 1,
            input: rx(Notification(bgpd::wire::Notification::new(2, 2, vec![]))),
            notify: None,
        },
        Case {
            name: "NOTIFICATION in Established",
            from: 2,
            input: rx(Notification(bgpd::wire::Notification::new(6, 2, vec![]))),
            notify: None,
        },
        Case {
            name: "TCP closed in OpenSent",
            from: 0,
            input: Input::Closed(ConnId::Outbound),
            notify: None,
        },
        Case {
            name: "TCP closed in Established",
            from: 2,
            input: Input::Closed(ConnId::Outbound),
            notify: None,
        },
    ];
    for case in cases {
        let mut fsm = Fsm::new(cfg(), 7);
        let now = Instant::now();
        fsm.handle(Input::Start, now);
        fsm.handle(Input::Connected(ConnId::Outbound), now);
        if case.from >= 1 {
            fsm.handle(rx(open()), now);
        }
        if case.from >= 2 {
            fsm.handle(rx(Keepalive), now);
        }
        let before = fsm.state();
        let out = fsm.handle(case.input, now);
        let got: Vec<String> = out.iter().map(sig).collect();
        let mut want: Vec<String> = vec![];
        if let Some((c, s)) = case.notify {
            want.push(format!("send-o:notify {c}/{s}"));
        }
        want.extend(FAIL_O[..3].iter().map(|s| s.to_string()));
        if before == State::Established {
            want.push("down".into());
        }
        want.extend(FAIL_O[3..].iter().map(|s| s.to_string()));
        assert_eq!(got, want, "{}", case.name);
        assert_eq!(fsm.state(), State::Idle, "{}", case.name);
    }
}

#[test]
fn required_capability_missing_gets_2_7() {
    let mut c = cfg();
    c.required = vec![Capability::Multiprotocol {
        afi_safi: AfiSafi::IPV6_UNICAST,
    }];
    let mut fsm = Fsm::new(c, 1);
    let now = Instant::now();
    fsm.handle(Input::Start, now);
    fsm.handle(Input::Connected(ConnId::Outbound), now);
    let out = fsm.handle(rx(Received::Open(bird_open(PEER_ID, 64512, 240))), now);
    match &out[0] {
        Output::Send(_, Message::Notification(n)) => {
            assert_eq!((n.code, n.subcode), (2, 7));
            assert_eq!(&n.data[..], &[1, 4, 0, 2, 0, 1]);
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn admin_stop_sends_cease_with_shutdown_communication() {
    let mut r = Run::new(cfg());
    r.establish(bird_open(PEER_ID, 64512, 240));
    let out = r.fsm.handle(
        Input::Stop {
            subcode: err::CEASE_ADMIN_SHUTDOWN,
            reason: "maintenance: replacing the core switch".into(),
        },
        r.now,
    );
    let got: Vec<String> = out.iter().map(sig).collect();
    assert_eq!(
        got,
        [
            "send-o:notify 6/2",
            "disarm:hold-o",
            "disarm:keepalive-o",
            "close-o",
            "down",
            "disarm:connect-retry",
            "disarm:idle-hold"
        ]
    );
    let Output::Send(_, Message::Notification(n)) = &out[0] else {
        unreachable!()
    };
    assert_eq!(
        n.shutdown_message().as_deref(),
        Some("maintenance: replacing the core switch")
    );
    assert_eq!(r.fsm.state(), State::Idle);
    // Stopped stays stopped: no timers fire it up, connections are refused.
    assert!(
        r.fsm
            .handle(Input::Timer(Timer::IdleHold), r.now)
            .is_empty()
    );
    assert!(
        r.fsm
            .handle(Input::Timer(Timer::ConnectRetry), r.now)
            .is_empty()
    );
    let out = r.fsm.handle(Input::Connected(ConnId::Inbound), r.now);
    assert_eq!(out.iter().map(sig).collect::<Vec<_>>(), ["close-i"]);
}

/// RFC 4724 §4: bgpd restarting with its routes kept closes a session with
/// a graceful-restart peer without a NOTIFICATION (the peer, as helper,
/// keeps our routes); a peer without graceful restart gets Cease 6/2.
#[test]
fn restart_stop_sends_nothing_to_a_graceful_restart_peer() {
    let stop = || Input::RestartStop {
        reason: "bgpd shutting down".into(),
    };
    let mut r = Run::new(cfg());
    r.establish(bird_open(PEER_ID, 64512, 240));
    let got: Vec<String> = r.fsm.handle(stop(), r.now).iter().map(sig).collect();
    assert!(!got.iter().any(|o| o.starts_with("send")), "{got:?}");
    assert!(got.contains(&"close-o".to_string()), "{got:?}");
    assert_eq!(r.fsm.state(), State::Idle);
    // Without graceful restart in the peer's OPEN: Cease as a plain stop.
    let open = bird_open(PEER_ID, 64512, 240);
    let open = Open::new(
        64512,
        240,
        PEER_ID.parse().unwrap(),
        open.capabilities()
            .filter(|c| !matches!(c, Capability::GracefulRestart(_)))
            .cloned()
            .collect(),
    );
    let mut r = Run::new(cfg());
    r.establish(open);
    let got: Vec<String> = r.fsm.handle(stop(), r.now).iter().map(sig).collect();
    assert_eq!(
        got.first().map(String::as_str),
        Some("send-o:notify 6/2"),
        "{got:?}"
    );
}

#[test]
fn connect_retry_backs_off_with_jitter() {
    let mut r = Run::new(cfg());
    r.step(
        Input::Start,
        State::Connect,
        &["connect", "arm:connect-retry"],
    );
    let mut prev = Duration::ZERO;
    for n in 0..8u32 {
        let d = r.armed(Timer::ConnectRetry);
        let nominal = Duration::from_secs(5)
            .saturating_mul(1 << n)
            .min(Duration::from_secs(120));
        assert!(
            d <= nominal && d >= nominal.mul_f64(0.75),
            "attempt {n}: {d:?}"
        );
        if nominal < Duration::from_secs(120) {
            assert!(d > prev, "backoff grows");
        }
        prev = d;
        r.step(Input::ConnectFailed, State::Active, &[]).step(
            Input::Timer(Timer::ConnectRetry),
            State::Connect,
            &["connect", "arm:connect-retry"],
        );
    }
}

#[test]
fn flapping_peer_is_damped_then_forgiven() {
    let mut fsm = Fsm::new(cfg(), 3);
    let mut now = Instant::now();
    let mut idle = vec![];
    fsm.handle(Input::Start, now);
    for round in 0..6 {
        fsm.handle(Input::Connected(ConnId::Outbound), now);
        fsm.handle(rx(Received::Open(bird_open(PEER_ID, 64512, 240))), now);
        fsm.handle(rx(Received::Keepalive), now);
        assert_eq!(fsm.state(), State::Established);
        // Stable for a long time before the last flap.
        now += if round == 5 {
            Duration::from_secs(3600)
        } else {
            Duration::from_secs(5)
        };
        let out = fsm.handle(Input::Closed(ConnId::Outbound), now);
        let d = out
            .iter()
            .find_map(|o| match o {
                Output::Arm(Timer::IdleHold, d) => Some(*d),
                _ => None,
            })
            .unwrap();
        idle.push(d);
        fsm.handle(Input::Timer(Timer::IdleHold), now);
    }
    for w in idle[..5].windows(2) {
        assert!(w[1] > w[0], "damping grows while flapping: {idle:?}");
    }
    assert!(
        idle[5] <= Duration::from_secs(1),
        "forgiven after a stable session: {idle:?}"
    );
}

#[test]
fn hold_time_negotiation() {
    for (ours, theirs, keepalive, want_hold, want_ka) in [
        (90u16, 240u16, None, 90u16, 30u16),
        (240, 9, None, 9, 3),
        (90, 0, None, 0, 0),
        (0, 240, None, 0, 0),
        (90, 240, Some(10u16), 90, 10),
        (9, 240, Some(60), 9, 3),
    ] {
        let mut c = cfg();
        c.hold_time = ours;
        c.keepalive = keepalive;
        let n = negotiate(&c, &bird_open(PEER_ID, 64512, theirs), ConnId::Outbound);
        assert_eq!(
            (n.hold_time, n.keepalive),
            (want_hold, want_ka),
            "{ours}/{theirs}"
        );
    }
    // Hold 0: no keepalive timer, hold timer stopped.
    let mut fsm = Fsm::new(cfg(), 1);
    let now = Instant::now();
    fsm.handle(Input::Start, now);
    fsm.handle(Input::Connected(ConnId::Outbound), now);
    let out = fsm.handle(rx(Received::Open(bird_open(PEER_ID, 64512, 0))), now);
    assert_eq!(
        out.iter().map(sig).collect::<Vec<_>>(),
        ["send-o:keepalive", "disarm:hold-o"]
    );
}

#[test]
fn negotiation_takes_what_both_offered() {
    // A peer without any multiprotocol capability: IPv4 unicast only, and
    // 2-octet AS numbers.
    let plain = Open::new(64512, 180, PEER_ID.parse().unwrap(), vec![]);
    let n = negotiate(&cfg(), &plain, ConnId::Inbound);
    assert_eq!(
        n.families.iter().collect::<Vec<_>>(),
        [AfiSafi::IPV4_UNICAST]
    );
    assert!(!n.ctx.four_octet_as);
    assert!(n.ctx.add_path_rx.is_empty());
    assert!(!n.route_refresh);
    // IPv6 only on their side: nothing in common but what we both have.
    let v6 = Open::new(
        64512,
        180,
        PEER_ID.parse().unwrap(),
        vec![Capability::Multiprotocol {
            afi_safi: AfiSafi::IPV6_UNICAST,
        }],
    );
    assert!(negotiate(&cfg(), &v6, ConnId::Inbound).families.is_empty());
    // ADD-PATH: they only receive, we only receive: nothing either way.
    let mut o = bird_open(PEER_ID, 64512, 240);
    o.params[0].retain(|c| !matches!(c, Capability::AddPath { .. }));
    o.params[0].push(Capability::AddPath {
        families: vec![AddPathFamily {
            afi_safi: AfiSafi::IPV4_UNICAST,
            mode: 1,
        }],
    });
    let n = negotiate(&cfg(), &o, ConnId::Outbound);
    assert!(n.ctx.add_path_rx.is_empty() && n.ctx.add_path_tx.is_empty());
}

/// RFC 4271 §6.8: both sides connect at once; the connection opened by
/// the side with the higher BGP identifier survives.
#[test]
fn collision_keeps_the_higher_identifiers_connection() {
    for (peer_id, loser, winner) in [
        // Peer id higher than ours: its (inbound) connection wins.
        ("192.168.83.200", "o", "i"),
        // Peer id lower: ours wins.
        ("192.168.83.0", "i", "o"),
    ] {
        let mut fsm = Fsm::new(cfg(), 5);
        let now = Instant::now();
        fsm.handle(Input::Start, now);
        fsm.handle(Input::Connected(ConnId::Outbound), now);
        fsm.handle(Input::Connected(ConnId::Inbound), now);
        let open = bird_open(peer_id, 64512, 240);
        let out = fsm.handle(
            Input::Received(ConnId::Inbound, Received::Open(open.clone())),
            now,
        );
        let got: Vec<String> = out.iter().map(sig).collect();
        assert_eq!(
            got[0],
            format!("send-{loser}:notify 6/7"),
            "{peer_id}: {got:?}"
        );
        assert!(got.contains(&format!("close-{loser}")));
        if winner == "i" {
            assert!(got.contains(&"send-i:keepalive".to_string()));
            assert_eq!(fsm.state(), State::OpenConfirm);
        } else {
            // The inbound OPEN was on the losing connection; the outbound
            // one goes on when its own OPEN arrives.
            assert_eq!(fsm.state(), State::OpenSent);
            let out = fsm.handle(Input::Received(ConnId::Outbound, Received::Open(open)), now);
            assert!(out.iter().map(sig).any(|s| s == "send-o:keepalive"));
        }
        // Exactly one connection is left, and it comes up.
        let id = if winner == "i" {
            ConnId::Inbound
        } else {
            ConnId::Outbound
        };
        let out = fsm.handle(Input::Received(id, Received::Keepalive), now);
        assert!(out.iter().any(|o| matches!(o, Output::Up(_))));
        assert_eq!(fsm.state(), State::Established);
    }
}

#[test]
fn established_session_refuses_a_second_connection_unless_peer_restarted() {
    // Without graceful restart: the new connection is refused with 6/7.
    let mut open = bird_open(PEER_ID, 64512, 240);
    open.params[0].retain(|c| !matches!(c, Capability::GracefulRestart(_)));
    let mut r = Run::new(cfg());
    r.establish(open);
    r.step(
        Input::Connected(ConnId::Inbound),
        State::Established,
        &["send-i:notify 6/7", "close-i"],
    );
    // With graceful restart, right after the session came up: it is the
    // peer's side of a collision; refused.
    let mut r = Run::new(cfg());
    r.establish(bird_open(PEER_ID, 64512, 240));
    r.step(
        Input::Connected(ConnId::Inbound),
        State::Established,
        &["send-i:notify 6/7", "close-i"],
    );
    // Later, a new connection from a GR peer is a restart: the session
    // stays until the new OPEN arrives, which replaces it.
    r.now += COLLISION_WINDOW;
    r.step(
        Input::Connected(ConnId::Inbound),
        State::Established,
        &["disarm:connect-retry", "send-i:open", "arm:hold-i"],
    );
    r.step(
        Input::Received(
            ConnId::Inbound,
            Received::Open(bird_open(PEER_ID, 64512, 240)),
        ),
        State::OpenConfirm,
        &[
            "disarm:hold-o",
            "disarm:keepalive-o",
            "close-o",
            "down",
            "send-i:keepalive",
            "arm:hold-i",
            "arm:keepalive-i",
        ],
    );
    assert!(r.last.contains(&Output::Down(DownReason::PeerRestarted)));
}

#[test]
fn inbound_connection_cancels_a_pending_connect() {
    let mut r = Run::new(cfg());
    r.step(
        Input::Start,
        State::Connect,
        &["connect", "arm:connect-retry"],
    )
    .step(
        Input::Connected(ConnId::Inbound),
        State::OpenSent,
        &[
            "cancel",
            "disarm:connect-retry",
            "send-i:open",
            "arm:hold-i",
        ],
    );
}

#[test]
fn four_octet_local_as_goes_out_as_as_trans() {
    let mut c = cfg();
    c.local_as = 4_200_000_000;
    c.capabilities
        .retain(|c| !matches!(c, Capability::FourOctetAs { .. }));
    c.capabilities
        .push(Capability::FourOctetAs { asn: 4_200_000_000 });
    let mut fsm = Fsm::new(c, 1);
    let now = Instant::now();
    fsm.handle(Input::Start, now);
    let out = fsm.handle(Input::Connected(ConnId::Outbound), now);
    let open = out
        .iter()
        .find_map(|o| match o {
            Output::Send(_, Message::Open(o)) => Some(o.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(open.asn, bgpd::wire::iana::AS_TRANS);
    assert_eq!(open.four_octet_asn(), 4_200_000_000);
}

/// The peer's long-lived graceful-restart capability is remembered with
/// the session: its families, flags and stale times as sent; none when the
/// peer sent none; and BIRD 1.6's real OPEN (an empty LLGR capability).
#[test]
fn llgr_capability_is_remembered() {
    use bgpd::wire::open::LlgrFamily;
    let fams = vec![
        LlgrFamily {
            afi_safi: AfiSafi::IPV4_UNICAST,
            flags: 0x80,
            stale_time: 3600,
        },
        LlgrFamily {
            afi_safi: AfiSafi::IPV6_UNICAST,
            flags: 0,
            stale_time: 0x00ff_ffff,
        },
    ];
    let open = Open::new(
        64512,
        240,
        PEER_ID.parse().unwrap(),
        bird_open(PEER_ID, 64512, 240)
            .capabilities()
            .filter(|c| !matches!(c, Capability::LongLivedGracefulRestart { .. }))
            .cloned()
            .chain([Capability::LongLivedGracefulRestart {
                families: fams.clone(),
            }])
            .collect(),
    );
    let mut r = Run::new(cfg());
    r.establish(open);
    assert_eq!(r.fsm.negotiated().unwrap().peer_llgr, Some(fams));

    let without = Open::new(
        64512,
        240,
        PEER_ID.parse().unwrap(),
        bird_open(PEER_ID, 64512, 240)
            .capabilities()
            .filter(|c| !matches!(c, Capability::LongLivedGracefulRestart { .. }))
            .cloned()
            .collect(),
    );
    let mut r = Run::new(cfg());
    r.establish(without);
    assert_eq!(r.fsm.negotiated().unwrap().peer_llgr, None);

    // BIRD 1.6's OPEN as captured (proto-fixtures/bird1/001-open.bin).
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/proto-fixtures/bird1/001-open.bin"
    ))
    .unwrap();
    let Ok(Message::Open(bird)) = Message::decode(&Ctx::INITIAL, &bytes) else {
        panic!("the BIRD OPEN fixture does not decode");
    };
    let mut cfg_bird = cfg();
    cfg_bird.local_id = "192.168.83.1".parse().unwrap();
    let mut r = Run::new(cfg_bird);
    r.establish(bird);
    assert_eq!(r.fsm.negotiated().unwrap().peer_llgr, Some(vec![]));
}
