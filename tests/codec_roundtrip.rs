//! Property tests: decode(encode(m)) == m for generated messages, under
//! every combination of negotiated session parameters.

use std::net::{Ipv4Addr, Ipv6Addr};

use bgpd::wire::attrs::{Aggregator, AsPath, AsSegment, SegmentType};
use bgpd::wire::iana::attr as code;
use bgpd::wire::open::{AddPathFamily, ExtendedNextHop, GrFamily, GracefulRestart, LlgrFamily};
use bgpd::wire::*;
use bytes::{Bytes, BytesMut};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;
use proptest::sample::subsequence;

fn ctx_strategy() -> impl Strategy<Value = Ctx> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(as4, ext, v4, v6)| {
        let mut ap = AfiSafiSet::EMPTY;
        if v4 {
            ap.insert(AfiSafi::IPV4_UNICAST);
        }
        if v6 {
            ap.insert(AfiSafi::IPV6_UNICAST);
        }
        Ctx {
            four_octet_as: as4,
            extended_message: ext,
            add_path_rx: ap,
            add_path_tx: ap,
        }
    })
}

fn v4_prefix() -> impl Strategy<Value = IpNet> {
    (any::<u32>(), 0u8..=32)
        .prop_map(|(a, l)| IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), l).unwrap().trunc()))
}

fn v6_prefix() -> impl Strategy<Value = IpNet> {
    (any::<u128>(), 0u8..=128)
        .prop_map(|(a, l)| IpNet::V6(Ipv6Net::new(Ipv6Addr::from(a), l).unwrap().trunc()))
}

fn nlris(
    prefix: impl Strategy<Value = IpNet>,
    add_path: bool,
    max: usize,
) -> impl Strategy<Value = Vec<Nlri>> {
    prop::collection::vec((prefix, any::<u32>()), 0..max).prop_map(move |v| {
        v.into_iter()
            .map(|(p, id)| Nlri {
                path_id: add_path.then_some(id),
                prefix: p,
            })
            .collect()
    })
}

fn asn(four: bool) -> BoxedStrategy<u32> {
    if four {
        any::<u32>().boxed()
    } else {
        (0u32..=65535).boxed()
    }
}

fn as_path(four: bool, allow_empty: bool) -> impl Strategy<Value = AsPath> {
    let seg = (
        prop_oneof![
            Just(SegmentType::Sequence),
            Just(SegmentType::Set),
            Just(SegmentType::ConfedSequence),
            Just(SegmentType::ConfedSet)
        ],
        prop::collection::vec(asn(four), 1..8),
    )
        .prop_map(|(kind, asns)| AsSegment { kind, asns });
    prop::collection::vec(seg, if allow_empty { 0 } else { 1 }..4)
        .prop_map(|segments| AsPath { segments })
}

fn host_v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>()
        .prop_map(Ipv4Addr::from)
        .prop_filter("host address", |a| {
            !a.is_unspecified() && !a.is_multicast() && !a.is_broadcast()
        })
}

fn v6_next_hop() -> impl Strategy<Value = NextHop> {
    (any::<u128>(), prop::option::of(any::<u128>())).prop_map(|(g, ll)| NextHop::V6 {
        global: Ipv6Addr::from(g),
        link_local: ll.map(Ipv6Addr::from),
    })
}

/// One optional attribute of each kind, with the flags its type needs
/// (and sometimes a needless Extended Length bit, which must survive).
fn optional_attrs(ctx: Ctx) -> impl Strategy<Value = Vec<PathAttribute>> {
    let four = ctx.four_octet_as;
    let ap6 = ctx.add_path_tx.contains(AfiSafi::IPV6_UNICAST);
    let ap4 = ctx.add_path_tx.contains(AfiSafi::IPV4_UNICAST);
    let all: Vec<BoxedStrategy<Attr>> = vec![
        any::<u32>().prop_map(Attr::MultiExitDisc).boxed(),
        any::<u32>().prop_map(Attr::LocalPref).boxed(),
        Just(Attr::AtomicAggregate).boxed(),
        (asn(four), any::<u32>())
            .prop_map(|(asn, a)| {
                Attr::Aggregator(Aggregator {
                    asn,
                    address: a.into(),
                })
            })
            .boxed(),
        prop::collection::vec(any::<u32>().prop_map(Community), 1..10)
            .prop_map(Attr::Communities)
            .boxed(),
        any::<u32>()
            .prop_map(|a| Attr::OriginatorId(a.into()))
            .boxed(),
        prop::collection::vec(any::<u32>().prop_map(Ipv4Addr::from), 1..5)
            .prop_map(Attr::ClusterList)
            .boxed(),
        prop::collection::vec(any::<[u8; 8]>().prop_map(ExtCommunity), 1..5)
            .prop_map(Attr::ExtendedCommunities)
            .boxed(),
        prop::collection::vec(
            (any::<u32>(), any::<u32>(), any::<u32>()).prop_map(|(global, local1, local2)| {
                LargeCommunity {
                    global,
                    local1,
                    local2,
                }
            }),
            1..5,
        )
        .prop_map(Attr::LargeCommunity)
        .boxed(),
        as_path(true, false).prop_map(Attr::As4Path).boxed(),
        (any::<u32>(), any::<u32>())
            .prop_map(|(asn, a)| {
                Attr::As4Aggregator(Aggregator {
                    asn,
                    address: a.into(),
                })
            })
            .boxed(),
        prop_oneof![
            (v6_next_hop(), nlris(v6_prefix(), ap6, 20)).prop_map(|(nh, p)| MpReach {
                afi_safi: AfiSafi::IPV6_UNICAST,
                next_hop: nh,
                nlri: MpNlri::Prefixes(p),
            }),
            (host_v4(), nlris(v4_prefix(), ap4, 20)).prop_map(|(nh, p)| MpReach {
                afi_safi: AfiSafi::IPV4_UNICAST,
                next_hop: NextHop::V4(nh),
                nlri: MpNlri::Prefixes(p),
            }),
            (
                prop::collection::vec(any::<u8>(), 0..20),
                prop::collection::vec(any::<u8>(), 0..40)
            )
                .prop_map(|(nh, raw)| MpReach {
                    afi_safi: AfiSafi::new(25, 70),
                    next_hop: NextHop::Raw(Bytes::from(nh)),
                    nlri: MpNlri::Raw(Bytes::from(raw)),
                }),
        ]
        .prop_map(Attr::MpReachNlri)
        .boxed(),
        nlris(v6_prefix(), ap6, 20)
            .prop_map(|p| {
                Attr::MpUnreachNlri(MpUnreach {
                    afi_safi: AfiSafi::IPV6_UNICAST,
                    nlri: MpNlri::Prefixes(p),
                })
            })
            .boxed(),
        (
            prop_oneof![Just(0u8), Just(0xe0u8), (19u8..=31), (33u8..=254)],
            prop::collection::vec(any::<u8>(), 0..30),
        )
            .prop_map(|(c, d)| Attr::Unknown {
                code: if c == 0 { 99 } else { c },
                data: Bytes::from(d),
            })
            .boxed(),
    ];
    let n = all.len();
    (
        subsequence((0..n).collect::<Vec<_>>(), 0..n),
        all,
        prop::collection::vec(any::<(bool, u8)>(), n),
    )
        .prop_map(|(pick, mut values, bits)| {
            let mut out = Vec::new();
            for i in pick.into_iter().rev() {
                let value = values.swap_remove(i);
                let mut a = PathAttribute::new(value);
                let (ext, extra) = bits[i];
                // MP attributes can outgrow one length octet; speakers set
                // Extended Length on them as a rule.
                if ext || matches!(a.code(), code::MP_REACH_NLRI | code::MP_UNREACH_NLRI) {
                    a.flags |= code::FLAG_EXTENDED_LENGTH;
                }
                if matches!(a.value, Attr::Unknown { .. }) {
                    a.flags = code::FLAG_OPTIONAL | (extra & 0x60) | (a.flags & 0x10);
                }
                out.push(a);
            }
            out
        })
}

fn update_strategy(ctx: Ctx) -> impl Strategy<Value = Update> {
    let ap4 = ctx.add_path_tx.contains(AfiSafi::IPV4_UNICAST);
    (
        nlris(v4_prefix(), ap4, 30),
        nlris(v4_prefix(), ap4, 30),
        prop_oneof![
            Just(Origin::Igp),
            Just(Origin::Egp),
            Just(Origin::Incomplete)
        ],
        as_path(ctx.four_octet_as, true),
        host_v4(),
        optional_attrs(ctx),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(withdrawn, nlri, origin, path, nh, mut attrs, bare, seed)| {
                let announces =
                    !nlri.is_empty() || attrs.iter().any(|a| a.code() == code::MP_REACH_NLRI);
                if announces || !bare {
                    attrs.push(PathAttribute::new(Attr::Origin(origin)));
                    attrs.push(PathAttribute::new(Attr::AsPath(path)));
                    attrs.push(PathAttribute::new(Attr::NextHop(nh)));
                }
                // A deterministic shuffle: receivers must accept any order.
                let mut s = seed;
                for i in (1..attrs.len()).rev() {
                    s = s
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    attrs.swap(i, (s >> 33) as usize % (i + 1));
                }
                Update {
                    withdrawn,
                    attributes: attrs,
                    nlri,
                    errors: vec![],
                }
            },
        )
}

fn af() -> impl Strategy<Value = AfiSafi> {
    prop_oneof![
        Just(AfiSafi::IPV4_UNICAST),
        Just(AfiSafi::IPV6_UNICAST),
        (any::<u16>(), any::<u8>()).prop_map(|(a, s)| AfiSafi::new(a, s)),
    ]
}

fn capability() -> impl Strategy<Value = Capability> {
    prop_oneof![
        af().prop_map(|afi_safi| Capability::Multiprotocol { afi_safi }),
        Just(Capability::RouteRefresh),
        Just(Capability::ExtendedMessage),
        Just(Capability::EnhancedRouteRefresh),
        prop::collection::vec(any::<(u16, u16, u16)>(), 0..4).prop_map(|v| {
            Capability::ExtendedNextHop {
                families: v
                    .into_iter()
                    .map(|(afi, safi, next_hop_afi)| ExtendedNextHop {
                        afi,
                        safi,
                        next_hop_afi,
                    })
                    .collect(),
            }
        }),
        (
            0u8..16,
            0u16..4096,
            prop::collection::vec((af(), any::<u8>()), 0..4)
        )
            .prop_map(|(flags, restart_time, fam)| {
                Capability::GracefulRestart(GracefulRestart {
                    flags,
                    restart_time,
                    families: fam
                        .into_iter()
                        .map(|(afi_safi, flags)| GrFamily { afi_safi, flags })
                        .collect(),
                })
            }),
        any::<u32>().prop_map(|asn| Capability::FourOctetAs { asn }),
        prop::collection::vec((af(), 1u8..=3), 0..4).prop_map(|v| Capability::AddPath {
            families: v
                .into_iter()
                .map(|(afi_safi, mode)| AddPathFamily { afi_safi, mode })
                .collect(),
        }),
        prop::collection::vec((af(), any::<u8>(), 0u32..(1 << 24)), 0..4).prop_map(|v| {
            Capability::LongLivedGracefulRestart {
                families: v
                    .into_iter()
                    .map(|(afi_safi, flags, stale_time)| LlgrFamily {
                        afi_safi,
                        flags,
                        stale_time,
                    })
                    .collect(),
            }
        }),
        ("[a-z0-9-]{0,20}", "[a-z0-9.]{0,20}")
            .prop_map(|(hostname, domain)| Capability::Fqdn { hostname, domain }),
        (
            prop_oneof![(3u8..=4), (7u8..=63), (74u8..=255)],
            prop::collection::vec(any::<u8>(), 0..16)
        )
            .prop_map(|(code, d)| Capability::Unknown {
                code,
                data: Bytes::from(d),
            }),
    ]
}

fn open_strategy() -> impl Strategy<Value = Open> {
    (
        any::<u16>(),
        prop_oneof![Just(0u16), 3u16..=65535],
        1u32..,
        prop::collection::vec(prop::collection::vec(capability(), 0..6), 0..4),
        any::<bool>(),
    )
        .prop_map(|(asn, hold_time, id, params, extended_params)| Open {
            asn,
            hold_time,
            bgp_id: Ipv4Addr::from(id),
            params,
            extended_params,
        })
}

fn message_strategy() -> impl Strategy<Value = (Ctx, Message)> {
    ctx_strategy().prop_flat_map(|ctx| {
        let msg = prop_oneof![
            open_strategy().prop_map(Message::Open),
            update_strategy(ctx).prop_map(Message::Update),
            (
                any::<u8>(),
                any::<u8>(),
                prop::collection::vec(any::<u8>(), 0..64)
            )
                .prop_map(|(c, s, d)| Message::Notification(Notification::new(c, s, d))),
            Just(Message::Keepalive),
            (af(), any::<u8>(), prop::collection::vec(any::<u8>(), 0..8)).prop_map(
                |(afi_safi, subtype, t)| {
                    let trailing = if matches!(subtype, 1 | 2) {
                        Bytes::new()
                    } else {
                        Bytes::from(t)
                    };
                    Message::RouteRefresh(RouteRefresh {
                        afi_safi,
                        subtype,
                        trailing,
                    })
                }
            ),
        ];
        (Just(ctx), msg)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decode_encode_roundtrip((ctx, m) in message_strategy()) {
        let mut buf = BytesMut::new();
        match m.encode(&ctx, &mut buf) {
            Ok(()) => {}
            // A generated message may outgrow the session's limit; the
            // encoder must refuse it and leave the buffer untouched.
            Err(e) => {
                prop_assert!(e.len > e.max);
                prop_assert!(buf.is_empty());
                return Ok(());
            }
        }
        let n = frame_len(&ctx, &buf).unwrap().expect("a whole frame");
        prop_assert_eq!(n, buf.len());
        let back = Message::decode(&ctx, &buf);
        prop_assert_eq!(back.as_ref(), Ok(&m), "bytes {:02x?}", &buf[..]);
        // And encoding again gives the same octets.
        let again = back.unwrap().to_bytes(&ctx).unwrap();
        prop_assert_eq!(&again[..], &buf[..]);
    }

    /// Arbitrary bytes never panic the decoder, and whatever decodes
    /// re-encodes to something that decodes to the same value.
    #[test]
    fn arbitrary_bytes_never_panic(ctx in ctx_strategy(), ty in 1u8..=5, body in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut frame = vec![0xff; 16];
        frame.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        frame.push(ty);
        frame.extend_from_slice(&body);
        if let Ok(m) = Message::decode(&ctx, &frame) {
            let clean = match &m { Message::Update(u) => u.errors.is_empty(), _ => true };
            if clean && let Ok(bytes) = m.to_bytes(&ctx) {
                prop_assert_eq!(Message::decode(&ctx, &bytes), Ok(m));
            }
        }
    }
}

#[test]
fn end_of_rib_markers() {
    for af in [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST] {
        let m = Message::Update(Update::end_of_rib(af));
        let b = m.to_bytes(&Ctx::INITIAL).unwrap();
        match Message::decode(&Ctx::INITIAL, &b).unwrap() {
            Message::Update(u) => assert_eq!(u.as_end_of_rib(), Some(af)),
            other => panic!("{other:?}"),
        }
    }
    // The IPv4 marker is the 23-octet empty UPDATE.
    assert_eq!(
        Message::Update(Update::end_of_rib(AfiSafi::IPV4_UNICAST))
            .to_bytes(&Ctx::INITIAL)
            .unwrap()
            .len(),
        23
    );
}
