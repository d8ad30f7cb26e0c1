//! Enrich + rollup throughput with the default (Grafana integration) rollup.
//!
//! `cargo bench -p flowtel-rollup --bench push` reports records/s ("elements") for a
//! realistic mix (a few thousand live flows) and for random source addresses (every record a
//! new key, eviction running). Time is the benchmark thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`), so the figure is records per CPU-second of one core even when
//! other processes share the machine.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowtel_decode::{FlowProtocol, FlowRecord};
use flowtel_rollup::{EnrichConfig, Enricher, RollupConfig, RollupSet};

const N: usize = 100_000;
const T0: u64 = 1_700_000_040_000_000_000;

fn records(distinct: u32) -> Vec<FlowRecord> {
    let mut x: u32 = 0x9e37_79b9;
    (0..N)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let flow = x % distinct;
            let mut r = FlowRecord::new(
                "192.0.2.1:2055".parse().unwrap(),
                FlowProtocol::Ipfix,
                T0 + i as u64 * 10_000,
            );
            r.src_addr = Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (flow & 0xffff))));
            r.dst_addr = Some(IpAddr::V4(Ipv4Addr::from(0x0808_0000 | (flow >> 4))));
            r.ip_protocol = if flow.is_multiple_of(5) { 17 } else { 6 };
            r.src_port = 32768 + (flow % 20000) as u16;
            r.dst_port = [443, 80, 53, 22, 8080][(flow % 5) as usize];
            r.bytes = 64 + u64::from(x % 1400);
            r.packets = 1;
            r.sampling_rate = Some(100);
            r
        })
        .collect()
}

/// CPU time consumed by this thread.
fn cpu_time() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(Duration::ZERO, Duration::from)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("enrich+rollup");
    g.throughput(Throughput::Elements(N as u64));
    for (name, distinct) in [("5k_flows", 5_000u32), ("random_sources", u32::MAX)] {
        let recs = records(distinct);
        g.bench_function(name, |b| {
            let mut enricher = Enricher::new(&EnrichConfig::default());
            let mut set = RollupSet::new(&[RollupConfig::default()]).unwrap();
            b.iter_custom(|iters| {
                let start = cpu_time();
                for _ in 0..iters {
                    for r in &recs {
                        let e = enricher.enrich(r, None);
                        set.push(&e);
                    }
                    black_box(set.rollups()[0].keys_tracked());
                }
                cpu_time().saturating_sub(start)
            });
            black_box(set.flush_all());
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
