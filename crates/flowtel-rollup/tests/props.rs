//! Property tests of the rollup's invariants.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use flowtel_decode::{FlowProtocol, FlowRecord};
use flowtel_rollup::{
    Dimension, EnrichConfig, Enricher, Rollup, RollupConfig, RollupSet, WindowBatch,
};
use proptest::prelude::*;

const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_040 * S;

#[derive(Debug, Clone)]
struct In {
    dt_ms: u64,
    src: u32,
    port: u16,
    proto: u8,
    bytes: u64,
    rate: Option<u32>,
}

fn input(card: u32) -> impl Strategy<Value = In> {
    (
        0u64..5_000,
        0..card,
        any::<u16>(),
        prop_oneof![Just(1u8), Just(6u8), Just(17u8)],
        0u64..1_000_000,
        proptest::option::of(1u32..2_000),
    )
        .prop_map(|(dt_ms, src, port, proto, bytes, rate)| In {
            dt_ms,
            src,
            port,
            proto,
            bytes,
            rate,
        })
}

fn record(t: u64, i: &In) -> FlowRecord {
    let mut r = FlowRecord::new("192.0.2.1:2055".parse().unwrap(), FlowProtocol::Ipfix, t);
    // Odd sources are IPv6: their keys are too long to be kept in the aggregate's entries
    // and go to its arena, beside the IPv4 ones kept inline.
    r.src_addr = Some(if i.src % 2 == 1 {
        IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i.src)))
    } else {
        IpAddr::V4(Ipv4Addr::from(i.src))
    });
    r.dst_addr = Some("8.8.8.8".parse().unwrap());
    r.ip_protocol = i.proto;
    r.src_port = i.port;
    r.dst_port = 443;
    r.bytes = i.bytes;
    r.sampling_rate = i.rate;
    r
}

fn corrected(i: &In) -> u64 {
    i.bytes * u64::from(i.rate.unwrap_or(1))
}

/// Feed records with non-decreasing timestamps (steps of up to 5 s, 10 s windows), flushing
/// on the records' clock; returns the batches and the expected total per window start.
fn feed(
    config: RollupConfig,
    inputs: &[In],
    max_keys_seen: &mut usize,
) -> (Vec<WindowBatch>, BTreeMap<u64, u64>) {
    let interval = config.interval_secs * S;
    let mut rollup = Rollup::new(config).unwrap();
    let mut enricher = Enricher::new(&EnrichConfig::default());
    let mut expected = BTreeMap::new();
    let mut out = Vec::new();
    let mut t = T0;
    for i in inputs {
        t += i.dt_ms * 1_000_000;
        let r = record(t, i);
        rollup.push(&enricher.enrich(&r, None));
        *max_keys_seen = (*max_keys_seen).max(rollup.keys_tracked());
        *expected.entry(t - t % interval).or_insert(0) += corrected(i);
        out.extend(rollup.flush(t));
    }
    out.extend(rollup.flush_all());
    (out, expected)
}

fn config(top_k: usize, max_keys: usize) -> RollupConfig {
    RollupConfig {
        top_k,
        max_keys: max_keys.max(top_k),
        interval_secs: 10,
        ..RollupConfig::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Per window: emitted values (overflow included) sum to the corrected input, at most
    /// top_k + 1 points, one point per series; keys held never exceed the cap.
    #[test]
    fn windows_sum_exactly_and_stay_bounded(
        inputs in proptest::collection::vec(input(5_000), 1..600),
        top_k in 1usize..20,
        max_keys in 2usize..64,
    ) {
        let cfg = config(top_k, max_keys);
        let cap = cfg.max_keys;
        let mut seen = 0;
        let (batches, expected) = feed(cfg, &inputs, &mut seen);
        prop_assert!(seen <= cap, "{seen} keys held, cap {cap}");
        let got: BTreeMap<u64, u64> = batches
            .iter()
            .map(|b| (b.start_time_unix_nano, b.points.iter().map(|p| p.value).sum()))
            .collect();
        prop_assert_eq!(got.len(), batches.len(), "one batch per window");
        prop_assert_eq!(got, expected);
        for b in &batches {
            prop_assert!(b.points.len() <= top_k + 1);
            prop_assert_eq!(b.time_unix_nano - b.start_time_unix_nano, 10 * S);
            prop_assert_eq!(b.start_time_unix_nano % (10 * S), 0);
            let series: BTreeSet<_> = b.points.iter().map(|p| &p.attributes).collect();
            prop_assert_eq!(series.len(), b.points.len(), "one point per series");
        }
    }

    /// Same input, same output, whatever happened inside.
    #[test]
    fn deterministic(inputs in proptest::collection::vec(input(300), 1..400), top_k in 1usize..10) {
        let mut seen = 0;
        let a = feed(config(top_k, 32), &inputs, &mut seen).0;
        let b = feed(config(top_k, 32), &inputs, &mut seen).0;
        prop_assert_eq!(a, b);
    }

    /// Records in any time order: nothing is lost (late records are folded, not dropped),
    /// and every window is emitted once.
    #[test]
    fn out_of_order_keeps_the_total(
        inputs in proptest::collection::vec((input(1_000), 0u64..60_000), 1..300),
    ) {
        let mut rollup = Rollup::new(config(5, 16)).unwrap();
        let mut enricher = Enricher::new(&EnrichConfig::default());
        let mut out = Vec::new();
        let mut want = 0u64;
        for (i, offset_ms) in &inputs {
            let r = record(T0 + offset_ms * 1_000_000, i);
            rollup.push(&enricher.enrich(&r, None));
            want += corrected(i);
            out.extend(rollup.flush(r.time_received_ns));
        }
        out.extend(rollup.flush_all());
        let got: u64 = out.iter().flat_map(|b| &b.points).map(|p| p.value).sum();
        prop_assert_eq!(got, want);
        let starts: BTreeSet<_> = out.iter().map(|b| b.start_time_unix_nano).collect();
        prop_assert_eq!(starts.len(), out.len());
    }

    /// Workers merged at flush: totals exact, bounded output, keys bounded after merging.
    #[test]
    fn merged_workers_sum_exactly(
        inputs in proptest::collection::vec((input(2_000), 0usize..3), 1..500),
        top_k in 1usize..10,
    ) {
        let cfg = RollupConfig { dimensions: vec![Dimension::SrcAddr, Dimension::SrcPort], ..config(top_k, 24) };
        let mut workers: Vec<RollupSet> =
            (0..3).map(|_| RollupSet::new(std::slice::from_ref(&cfg)).unwrap()).collect();
        let mut enricher = Enricher::new(&EnrichConfig::default());
        let mut want = 0u64;
        for (i, w) in &inputs {
            let r = record(T0 + 1, i);
            workers[*w].push(&enricher.enrich(&r, None));
            want += corrected(i);
        }
        let mut merged: Option<flowtel_rollup::WindowAggregate> = None;
        for w in &mut workers {
            for agg in w.take_closed(T0 + 10 * S) {
                match &mut merged {
                    None => merged = Some(agg),
                    Some(m) => m.merge(agg).unwrap(),
                }
            }
        }
        let merged = merged.unwrap();
        prop_assert!(merged.keys() <= 24);
        let batch = merged.finish(&mut Default::default());
        prop_assert!(batch.points.len() <= top_k + 1);
        prop_assert_eq!(batch.points.iter().map(|p| p.value).sum::<u64>(), want);
    }
}

/// Random source addresses at full rate: the key table stays at the cap.
#[test]
fn memory_is_bounded_under_random_sources() {
    let cfg = RollupConfig {
        max_keys: 1_000,
        top_k: 10,
        ..RollupConfig::default()
    };
    let mut rollup = Rollup::new(cfg).unwrap();
    let mut enricher = Enricher::new(&EnrichConfig::default());
    let mut x: u32 = 0x1234_5678;
    let mut max = 0;
    for _ in 0..200_000 {
        // xorshift32: a different source address almost every record.
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let i = In {
            dt_ms: 0,
            src: x,
            port: (x >> 7) as u16,
            proto: 6,
            bytes: 100,
            rate: None,
        };
        let r = record(T0, &i);
        rollup.push(&enricher.enrich(&r, None));
        max = max.max(rollup.keys_tracked());
    }
    assert!(max <= 1_000, "{max}");
    let out = rollup.flush_all();
    assert_eq!(
        out[0].points.iter().map(|p| p.value).sum::<u64>(),
        200_000 * 100
    );
    assert_eq!(out[0].points.len(), 11);
    assert!(rollup.stats().keys_evicted > 190_000);
}
