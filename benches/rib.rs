//! Routing-table speed and memory. Run with `cargo bench --bench rib`.
//!
//! - `rib/insert 1M x 1 peer`: 1,000,000 IPv4 /28 prefixes from one iBGP
//!   peer, in 10,000 UPDATEs of 100 prefixes, one attribute set per UPDATE
//!   as a Calico reflector sends it (the codec bench's workload), into an
//!   empty RIB, including the change set for the FIB.
//! - `rib/insert 100k x 10 peers`: 100,000 prefixes from each of 10 peers
//!   (the same prefixes, different next hops per peer: 10 candidate paths
//!   per prefix, multipath over all 10).
//! - `rib/calico 1,000 nodes x 3 reflectors`: the harness's Calico
//!   scenario (see [`calico`]), decisions committed every 1,024 UPDATEs as
//!   the daemon batches them.
//! - `trie/...`: the prefix trie alone, 1M /28 inserts with 16- and
//!   32-byte values and with slab indices (what the entry's size costs),
//!   and 1M exact lookups.
//! - Memory: before the timed runs, the 1M-route table is built once with
//!   a counting allocator; the live heap bytes per route and the process's
//!   peak RSS are printed.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bgpd::rib::{PeerInfo, Rib, RibConfig};
use bgpd::route::ChangeSet;
use bgpd::wire::{AsPath, Attr, Nlri, Origin, PathAttribute, Update};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ipnet::{IpNet, Ipv4Net};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const PER_UPDATE: u32 = 100;

/// The attributes of a route a Calico reflector passes on from `node`.
fn reflected(node: Ipv4Addr) -> Vec<PathAttribute> {
    [
        Attr::Origin(Origin::Igp),
        Attr::AsPath(AsPath::default()),
        Attr::NextHop(node),
        Attr::LocalPref(100),
        Attr::OriginatorId(node),
        Attr::ClusterList(vec![Ipv4Addr::new(224, 0, 0, 1)]),
    ]
    .into_iter()
    .map(PathAttribute::new)
    .collect()
}

/// UPDATE number `u` of a peer: 100 consecutive /28s from `first`.
fn update(u: u32, first: u32, peer: u8) -> Update {
    let base = u32::from(Ipv4Addr::new(10, 0, 0, 0));
    let next_hop = Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 168, 0, 0)) + u * 16 + peer as u32);
    Update {
        attributes: reflected(next_hop),
        nlri: (0..PER_UPDATE)
            .map(|i| {
                let a = Ipv4Addr::from(base + (first + u * PER_UPDATE + i) * 16);
                Nlri::new(IpNet::V4(Ipv4Net::new_assert(a, 28)))
            })
            .collect(),
        ..Update::default()
    }
}

fn peer(i: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 168, 83, 11 + i))
}

fn new_rib(peers: u8) -> Rib {
    let mut rib = Rib::new(RibConfig::new(64512, Ipv4Addr::new(192, 168, 83, 1)));
    for i in 0..peers {
        rib.peer_up(
            peer(i),
            PeerInfo::ibgp(64512, Ipv4Addr::new(10, 9, 0, i + 1)),
        );
    }
    rib
}

fn load(rib: &mut Rib, updates: &[(u8, Update)]) -> usize {
    let now = Instant::now();
    let mut n = 0;
    for (p, u) in updates {
        let mut changes = ChangeSet::new();
        rib.update(peer(*p), u, now, &mut changes);
        changes.append(rib.commit());
        n += changes.len();
    }
    n
}

fn workload(peers: u8, per_peer: u32) -> Vec<(u8, Update)> {
    let mut v = Vec::new();
    for u in 0..per_peer / PER_UPDATE {
        for p in 0..peers {
            v.push((p, update(u, 0, p)));
        }
    }
    v
}

/// A Calico cluster through 3 route reflectors with ADD-PATH, as the
/// harness's `calico` scenario sends it: per node and reflector one
/// UPDATE (next hop and ORIGINATOR_ID the node, CLUSTER_LIST the
/// reflectors') with the node's /26 and a path of the service CIDR, the
/// reflectors taking turns. 172.16.0.0/16 ends with 3,000 paths.
fn calico(nodes: u32) -> Vec<(u8, Update)> {
    let mut v = Vec::new();
    for k in 0..nodes {
        let node = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 200, 0, 0)) + k + 1);
        let block = Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 15, 0, 0)) + k * 64);
        for rr in 0..3u8 {
            let nlri = |net: Ipv4Net| Nlri {
                path_id: Some(k + 1),
                prefix: IpNet::V4(net),
            };
            v.push((
                rr,
                Update {
                    attributes: reflected(node),
                    nlri: vec![
                        nlri(Ipv4Net::new_assert(block, 26)),
                        nlri(Ipv4Net::new_assert(Ipv4Addr::new(172, 16, 0, 0), 16)),
                    ],
                    ..Update::default()
                },
            ));
        }
    }
    v
}

/// Applies UPDATEs as the daemon does: decisions deferred, committed
/// every 1,024 (its batch bound for UPDATEs of a few prefixes).
fn load_batched(rib: &mut Rib, updates: &[(u8, Update)]) -> usize {
    let now = Instant::now();
    let mut changes = ChangeSet::new();
    for (i, (p, u)) in updates.iter().enumerate() {
        rib.update(peer(*p), u, now, &mut changes);
        if i % 1024 == 1023 {
            changes.append(rib.commit());
        }
    }
    changes.append(rib.commit());
    changes.len()
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Builds the 1M-route table from UPDATEs generated one at a time (so
/// the input does not count) and prints the heap and RSS it takes.
fn memory(_: &mut Criterion) {
    const N: u32 = 1_000_000;
    let rss0 = rss_kib("VmRSS:");
    let live0 = LIVE.load(Ordering::Relaxed);
    let mut rib = new_rib(1);
    let now = Instant::now();
    let t = Instant::now();
    for u in 0..N / PER_UPDATE {
        let up = update(u, 0, 0);
        let mut changes = ChangeSet::new();
        black_box(rib.update(peer(0), &up, now, &mut changes));
        changes.append(rib.commit());
        black_box(changes);
    }
    let took = t.elapsed();
    let live = LIVE.load(Ordering::Relaxed) - live0;
    let rss = rss_kib("VmRSS:") - rss0;
    println!(
        "memory: {} routes, {} attribute sets: heap {:.1} MiB = {:.1} bytes/route; \
         RSS growth {:.1} MiB = {:.1} bytes/route; peak RSS (VmHWM) {:.1} MiB; \
         cold build {:.3} s",
        rib.len(),
        rib.attr_sets(),
        live as f64 / 1048576.0,
        live as f64 / N as f64,
        rss as f64 / 1024.0,
        rss as f64 * 1024.0 / N as f64,
        rss_kib("VmHWM:") as f64 / 1024.0,
        took.as_secs_f64(),
    );
    drop(rib);
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("rib");
    g.sample_size(10);

    let one = workload(1, 1_000_000);
    g.throughput(Throughput::Elements(1_000_000));
    g.bench_function("insert 1M x 1 peer", |b| {
        b.iter_with_large_drop(|| {
            let mut rib = new_rib(1);
            black_box(load(&mut rib, &one));
            rib
        })
    });
    drop(one);

    let ten = workload(10, 100_000);
    g.bench_function("insert 100k x 10 peers", |b| {
        b.iter_with_large_drop(|| {
            let mut rib = new_rib(10);
            black_box(load(&mut rib, &ten));
            rib
        })
    });

    let cal = calico(1000);
    g.throughput(Throughput::Elements(cal.len() as u64 * 2));
    g.bench_function("calico 1,000 nodes x 3 reflectors", |b| {
        b.iter_with_large_drop(|| {
            let mut rib = new_rib(3);
            black_box(load_batched(&mut rib, &cal));
            rib
        })
    });
    g.finish();
}

/// What the size of the trie's values costs: 1M ascending /28s inserted
/// into a `PrefixMap` of 16-byte values (the Loc-RIB entry), of 32-byte
/// values (its size before), and of u32 indices into a vector of 32-byte
/// values (a slab). The figures in docs/rib.md and docs/performance.md.
fn trie(c: &mut Criterion) {
    use prefix_trie::PrefixMap;
    use prefix_trie::map::Entry;
    fn fill<T>(m: &mut PrefixMap<Ipv4Net, T>, mut v: impl FnMut(u32) -> T) {
        for i in 0..1_000_000u32 {
            let a = Ipv4Addr::from(0x0a00_0000u32 + (i << 4));
            if let Entry::Vacant(e) = m.entry(Ipv4Net::new_assert(a, 28)) {
                e.insert(v(i));
            }
        }
    }
    let mut g = c.benchmark_group("trie");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1_000_000));
    g.bench_function("insert 1M /28, 16-byte values", |b| {
        b.iter_with_large_drop(|| {
            let mut m = PrefixMap::new();
            fill(&mut m, |i| [u64::from(i); 2]);
            m
        })
    });
    g.bench_function("insert 1M /28, 32-byte values", |b| {
        b.iter_with_large_drop(|| {
            let mut m = PrefixMap::new();
            fill(&mut m, |i| [u64::from(i); 4]);
            m
        })
    });
    g.bench_function("insert 1M /28, u32 index into a slab", |b| {
        b.iter_with_large_drop(|| {
            let mut m = PrefixMap::new();
            let mut slab: Vec<[u64; 4]> = Vec::new();
            fill(&mut m, |i| {
                slab.push([u64::from(i); 4]);
                slab.len() as u32 - 1
            });
            (m, slab)
        })
    });
    // Exact lookups of every prefix (the FIB's slot lookups, the RIB's
    // withdrawals): what POPCNT speeds up most (.cargo/config.toml).
    let mut m = PrefixMap::new();
    fill(&mut m, |i| [u64::from(i); 2]);
    g.bench_function("get_mut 1M /28, 16-byte values", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for i in 0..1_000_000u32 {
                let a = Ipv4Addr::from(0x0a00_0000u32 + (i << 4));
                if let Some(v) = m.get_mut(&Ipv4Net::new_assert(a, 28)) {
                    sum += v[0];
                }
            }
            black_box(sum)
        })
    });
    g.finish();
}

criterion_group!(memory_group, memory);
criterion_group!(trie_group, trie);
criterion_group!(benches, bench);
criterion_main!(memory_group, benches, trie_group);
