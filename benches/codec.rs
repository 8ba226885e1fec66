//! Codec throughput: 1,000,000 IPv4 /28 prefixes in 10,000 UPDATEs of 100
//! prefixes each, one attribute set per UPDATE (ORIGIN IGP, empty AS_PATH,
//! NEXT_HOP, LOCAL_PREF 100, ORIGINATOR_ID, CLUSTER_LIST), as a Calico
//! route reflector sends them. Run with `cargo bench --bench codec`;
//! throughput is reported in prefixes per second.

use std::hint::black_box;
use std::net::Ipv4Addr;

use bgpd::wire::{
    self, AfiSafi, AfiSafiSet, AsPath, Attr, Ctx, Message, Nlri, Origin, PathAttribute, Update,
};
use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};

const PREFIXES: u32 = 1_000_000;
const PER_UPDATE: u32 = 100;

fn ctx(add_path: bool) -> Ctx {
    let ap = if add_path {
        AfiSafiSet::EMPTY.with(AfiSafi::IPV4_UNICAST)
    } else {
        AfiSafiSet::EMPTY
    };
    Ctx {
        four_octet_as: true,
        extended_message: false,
        add_path_rx: ap,
        add_path_tx: ap,
    }
}

/// The UPDATEs and their encoding as one contiguous stream.
fn workload(add_path: bool) -> (Vec<Message>, Vec<u8>) {
    let ctx = ctx(add_path);
    let base = u32::from(Ipv4Addr::new(10, 0, 0, 0));
    let mut msgs = Vec::with_capacity((PREFIXES / PER_UPDATE) as usize);
    for u in 0..PREFIXES / PER_UPDATE {
        let next_hop = Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 168, 0, 0)) + u);
        let attributes = vec![
            PathAttribute::new(Attr::Origin(Origin::Igp)),
            PathAttribute::new(Attr::AsPath(AsPath::default())),
            PathAttribute::new(Attr::NextHop(next_hop)),
            PathAttribute::new(Attr::LocalPref(100)),
            PathAttribute::new(Attr::OriginatorId(next_hop)),
            PathAttribute::new(Attr::ClusterList(vec![Ipv4Addr::new(172, 16, 0, 1)])),
        ];
        let nlri = (0..PER_UPDATE)
            .map(|k| {
                let n = u * PER_UPDATE + k;
                let net = IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::from(base + (n << 4)), 28));
                if add_path {
                    Nlri::with_path_id(net, n % 4 + 1)
                } else {
                    Nlri::new(net)
                }
            })
            .collect();
        msgs.push(Message::Update(Update {
            attributes,
            nlri,
            ..Update::default()
        }));
    }
    let mut stream = BytesMut::new();
    for m in &msgs {
        m.encode(&ctx, &mut stream).expect("fits in 4096 octets");
    }
    // Sanity: the stream decodes back to the same messages.
    let back: Vec<Message> = wire::decode_stream(&ctx, &stream)
        .map(|r| r.expect("decodes").0)
        .collect();
    assert_eq!(back, msgs);
    (msgs, stream.to_vec())
}

fn decode_all(ctx: &Ctx, mut buf: &[u8]) -> usize {
    let mut n = 0;
    while let Some(len) = wire::frame_len(ctx, buf).expect("valid header") {
        let (frame, rest) = buf.split_at(len);
        let m = Message::decode(ctx, frame).expect("valid message");
        black_box(&m);
        n += 1;
        buf = rest;
    }
    n
}

fn bench_codec(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(PREFIXES as u64));
    for (name, add_path) in [("plain", false), ("add-path", true)] {
        let ctx = ctx(add_path);
        let (msgs, stream) = workload(add_path);
        g.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| decode_all(&ctx, black_box(&stream)))
        });
        let mut out = BytesMut::with_capacity(stream.len());
        g.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| {
                out.clear();
                for m in black_box(&msgs) {
                    m.encode(&ctx, &mut out).expect("fits");
                }
                black_box(out.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_codec);
criterion_main!(benches);
