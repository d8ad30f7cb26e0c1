//! Rollup behaviour through the public API: attributes, windows, sampling, top-K, overflow,
//! late records, merging and configuration.

use std::collections::BTreeMap;
use std::sync::Arc;

use flowtel_decode::{FlowDirection, FlowProtocol, FlowRecord};
use flowtel_rollup::{
    AttrValue, Dimension, Direction, EnrichConfig, Enricher, PipelineConfig, Point, Profile,
    Rollup, RollupConfig, RollupSet, WindowBatch, parse_spec,
};

const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_040 * S; // a multiple of 60 s

fn rec(t: u64, src: &str, dst: &str, proto: u8, sport: u16, dport: u16, bytes: u64) -> FlowRecord {
    let mut r = FlowRecord::new(
        "192.0.2.1:2055".parse().unwrap(),
        FlowProtocol::NetflowV9,
        t,
    );
    r.src_addr = Some(src.parse().unwrap());
    r.dst_addr = Some(dst.parse().unwrap());
    r.ip_protocol = proto;
    r.src_port = sport;
    r.dst_port = dport;
    r.bytes = bytes;
    r.packets = 1;
    r
}

fn run(config: RollupConfig, records: &[FlowRecord]) -> (Vec<WindowBatch>, Rollup) {
    let mut enricher = Enricher::new(&EnrichConfig::default());
    let mut rollup = Rollup::new(config).unwrap();
    let mut out = Vec::new();
    for r in records {
        let e = enricher.enrich(r, None);
        rollup.push(&e);
        out.extend(rollup.flush(r.time_received_ns));
    }
    out.extend(rollup.flush_all());
    (out, rollup)
}

fn attrs(p: &Point) -> BTreeMap<String, AttrValue> {
    p.attributes
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn s(v: &str) -> AttrValue {
    AttrValue::Str(Arc::from(v))
}

fn total(batches: &[WindowBatch]) -> u64 {
    batches
        .iter()
        .flat_map(|b| &b.points)
        .map(|p| p.value)
        .sum()
}

#[test]
fn default_rollup_names_types_and_icmp() {
    let mut https = rec(T0 + S, "10.0.0.5", "8.8.8.8", 6, 51514, 443, 1500);
    https.sampling_rate = Some(100);
    let icmp = rec(T0 + 2 * S, "10.0.0.5", "1.1.1.1", 1, 0, 0, 84);
    let (batches, rollup) = run(RollupConfig::default(), &[https, icmp]);
    assert_eq!(batches.len(), 1);
    let b = &batches[0];
    assert_eq!(&*b.rollup, "bytes_by_flow");
    assert_eq!(
        (b.start_time_unix_nano, b.time_unix_nano),
        (T0, T0 + 60 * S)
    );
    assert_eq!(b.points.len(), 2, "ICMP is kept, no overflow");
    let p = &b.points[0];
    assert_eq!(
        (&*p.metric, &*p.unit, p.value),
        ("network.io.by_flow", "By", 150_000)
    );
    assert_eq!(
        (p.start_time_unix_nano, p.time_unix_nano),
        (T0, T0 + 60 * S)
    );
    let names: Vec<&str> = p.attributes.iter().map(|(k, _)| &**k).collect();
    assert_eq!(
        names,
        [
            "device_name",
            "network.local.address",
            "network.peer.address",
            "network.local.port",
            "network.peer.port",
            "network.transport",
            "network.protocol.name",
            "network.local.country",
            "network.peer.country"
        ]
    );
    let a = attrs(p);
    assert_eq!(a["device_name"], s("192.0.2.1"));
    assert_eq!(a["network.local.address"], s("10.0.0.5"));
    assert_eq!(a["network.peer.port"], AttrValue::Int(443));
    assert_eq!(a["network.transport"], s("tcp"));
    assert_eq!(a["network.protocol.name"], s("https"));
    assert_eq!(a["network.local.country"], s("Private IP"));
    assert_eq!(a["network.peer.country"], s(""));
    let a = attrs(&b.points[1]);
    assert_eq!(a["network.transport"], s("icmp"));
    assert_eq!(a["network.peer.port"], AttrValue::Int(0));
    assert_eq!(a["network.protocol.name"], s(""));
    assert_eq!(b.points[1].value, 84, "no rate known: 1");
    let st = rollup.stats();
    assert_eq!(
        (st.records_in, st.windows_emitted, st.points_emitted),
        (2, 1, 2)
    );
    assert_eq!(st.value_in, 150_084);
}

#[test]
fn ktranslate_profile_from_the_integration_spec() {
    let config = parse_spec("s_sum,bytes_by_flow,in_bytes+out_bytes,src_addr,dst_addr,l4_src_port,l4_dst_port,protocol,custom_str.application,device_name,custom_str.src_host,custom_str.dst_host,src_geo,dst_geo").unwrap();
    let mut r = rec(T0, "8.8.8.8", "192.168.1.1", 17, 53, 40000, 100);
    r.sampling_rate = Some(10);
    let (batches, _) = run(config, &[r]);
    let p = &batches[0].points[0];
    assert_eq!(&*p.metric, "kentik.rollup.bytes_by_flow");
    assert_eq!(p.value, 1000);
    let a = attrs(p);
    assert_eq!(a["src_port"], s("53"), "ktranslate sends strings");
    assert_eq!(a["dst_port"], s("40000"));
    assert_eq!(a["protocol"], s("udp"));
    assert_eq!(a["application"], s("domain"));
    assert_eq!(a["src_host"], s(""));
    assert_eq!(a["dst_country"], s("Private IP"));
    assert_eq!(a.len(), 11);
}

#[test]
fn windows_are_aligned_and_emitted_once() {
    let records = [
        rec(T0 + 59 * S, "10.0.0.1", "10.0.0.2", 6, 1, 2, 10),
        rec(T0 + 60 * S, "10.0.0.1", "10.0.0.2", 6, 1, 2, 20),
        rec(T0 + 185 * S, "10.0.0.1", "10.0.0.2", 6, 1, 2, 40),
    ];
    let (batches, _) = run(RollupConfig::default(), &records);
    let windows: Vec<_> = batches
        .iter()
        .map(|b| (b.start_time_unix_nano - T0, b.points[0].value))
        .collect();
    assert_eq!(windows, [(0, 10), (60 * S, 20), (180 * S, 40)]);
}

/// Pushes are added to the window in batches (`flowtel_rollup::rollup::BATCH`): a record of
/// the next window sends the batched records to their own window first, and `settle` adds
/// them for `keys_tracked`.
#[test]
fn batched_records_land_in_their_own_window() {
    let mut rollup = Rollup::new(RollupConfig::default()).unwrap();
    let mut enricher = Enricher::new(&EnrichConfig::default());
    for i in 0..3 {
        let r = rec(
            T0 + i * S,
            "10.0.0.1",
            "10.0.0.2",
            6,
            1000 + i as u16,
            443,
            100,
        );
        rollup.push(&enricher.enrich(&r, None));
    }
    let next = rec(T0 + 61 * S, "10.0.0.1", "10.0.0.2", 6, 1, 443, 7);
    rollup.push(&enricher.enrich(&next, None));
    let windows: Vec<_> = rollup
        .flush_all()
        .iter()
        .map(|b| {
            (
                b.start_time_unix_nano - T0,
                b.points.len(),
                total(std::slice::from_ref(b)),
            )
        })
        .collect();
    assert_eq!(windows, [(0, 3, 300), (60 * S, 1, 7)]);

    let later = rec(T0 + 125 * S, "10.0.0.9", "10.0.0.2", 17, 53, 5353, 1);
    rollup.push(&enricher.enrich(&later, None));
    rollup.settle();
    assert_eq!(rollup.keys_tracked(), 1);
}

#[test]
fn late_records_fold_into_the_open_window() {
    let mut rollup = Rollup::new(RollupConfig::default()).unwrap();
    let mut enricher = Enricher::new(&EnrichConfig::default());
    let mut push = |r: FlowRecord, rollup: &mut Rollup| rollup.push(&enricher.enrich(&r, None));
    push(
        rec(T0 + 10 * S, "10.0.0.1", "10.0.0.2", 6, 1, 2, 10),
        &mut rollup,
    );
    let first = rollup.flush(T0 + 61 * S);
    assert_eq!(first.len(), 1);
    // Belongs to the emitted window: goes to the next one instead, counted.
    push(
        rec(T0 + 30 * S, "10.0.0.1", "10.0.0.2", 6, 1, 2, 5),
        &mut rollup,
    );
    push(
        rec(T0 + 70 * S, "10.0.0.1", "10.0.0.2", 6, 1, 2, 7),
        &mut rollup,
    );
    let second = rollup.flush_all();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].start_time_unix_nano, T0 + 60 * S);
    assert_eq!(second[0].points[0].value, 12);
    assert_eq!(rollup.stats().late_records, 1);
}

#[test]
fn top_k_and_overflow_keep_the_total() {
    let config = RollupConfig {
        top_k: 2,
        ..RollupConfig::default()
    };
    let records: Vec<_> = (1..=5u16)
        .map(|i| {
            rec(
                T0,
                "10.0.0.1",
                "10.0.0.2",
                6,
                1000 + i,
                443,
                u64::from(i) * 100,
            )
        })
        .collect();
    let (batches, rollup) = run(config, &records);
    let pts = &batches[0].points;
    assert_eq!(pts.len(), 3);
    assert_eq!(pts[0].value, 500);
    assert_eq!(pts[1].value, 400);
    assert_eq!(pts[2].value, 600);
    assert_eq!(
        pts[2].attributes,
        vec![(Arc::from("otel.metric.overflow"), AttrValue::Bool(true))]
    );
    assert_eq!(total(&batches), 1500);
    let st = rollup.stats();
    assert_eq!((st.overflow_points, st.keys_overflowed), (1, 3));
    assert_eq!(st.windows_approximated, 0);
}

/// Series tied on their values are ranked by their keys' bytes, so the same input emits the
/// same series in the same order whatever order its keys came in: here the lower source
/// addresses, after the one larger series.
#[test]
fn tied_series_are_ranked_by_their_keys() {
    let config = RollupConfig {
        top_k: 3,
        dimensions: vec![Dimension::SrcAddr],
        ..RollupConfig::default()
    };
    for order in [
        [5u8, 9, 2, 7, 0, 3, 8, 1, 6, 4],
        [4, 6, 1, 8, 3, 0, 7, 2, 9, 5],
    ] {
        let records: Vec<_> = order
            .iter()
            .map(|k| {
                let bytes = if *k == 7 { 200 } else { 100 };
                rec(T0, &format!("10.0.0.{k}"), "10.0.0.99", 6, 1, 2, bytes)
            })
            .collect();
        let (batches, _) = run(config.clone(), &records);
        let got: Vec<(String, u64)> = batches[0]
            .points
            .iter()
            .map(|p| match attrs(p).get("network.local.address") {
                Some(AttrValue::Str(a)) => (a.to_string(), p.value),
                _ => ("overflow".to_owned(), p.value),
            })
            .collect();
        let want = [
            ("10.0.0.7", 200),
            ("10.0.0.0", 100),
            ("10.0.0.1", 100),
            ("overflow", 700),
        ];
        let want: Vec<(String, u64)> = want.iter().map(|(a, v)| (a.to_string(), *v)).collect();
        assert_eq!(got, want, "keys in the order {order:?}");
    }
}

#[test]
fn heavy_hitter_survives_eviction() {
    let config = RollupConfig {
        top_k: 3,
        max_keys: 16,
        dimensions: vec![Dimension::SrcAddr],
        ..RollupConfig::default()
    };
    let mut records = Vec::new();
    for i in 0..2000u32 {
        let noise = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
        records.push(rec(T0, &noise, "10.0.0.2", 6, 1, 2, 10));
        if i % 10 == 0 {
            records.push(rec(T0, "192.0.2.77", "10.0.0.2", 6, 1, 2, 50));
        }
    }
    let (batches, rollup) = run(config, &records);
    let pts = &batches[0].points;
    assert!(pts.len() <= 4);
    assert_eq!(attrs(&pts[0])["network.local.address"], s("192.0.2.77"));
    assert_eq!(total(&batches), 2000 * 10 + 200 * 50);
    let st = rollup.stats();
    assert!(st.keys_evicted > 1900, "{st:?}");
    assert_eq!(st.windows_approximated, 1);
    assert!(pts.last().unwrap().attributes[0].0.as_ref() == "otel.metric.overflow");
}

/// A window of 20 000 keys, past the size from which a batch's reads are made ahead of its
/// adds, pushed without a flush between records so that the batches fill: every key's sum is
/// exact, with hits and new keys mixed in each batch, and with eviction when the keys do not
/// all fit.
#[test]
fn a_window_larger_than_the_caches_sums_every_key_exactly() {
    let keys = 20_000u32;
    // A third of the keys IPv6 both ways, too long with the device's name to be kept in the
    // aggregate's entries: read ahead and compared in its arena; the others are kept in the
    // entries.
    let addr = |k: u32| match k % 3 {
        0 => std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(k)).to_string(),
        _ => format!("10.{}.{}.{}", k >> 16, (k >> 8) & 255, k & 255),
    };
    let peer = |k: u32| {
        if k.is_multiple_of(3) {
            "2001:db8::2"
        } else {
            "10.0.0.2"
        }
    };
    // Three rounds over the keys in a scrambled order (a multiplier prime to the key count is
    // a bijection, without wrapping: wrapped at 2^32 first, a third of the keys repeated).
    let mut records = Vec::new();
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for round in 0..3u64 {
        for i in 0..keys {
            let k = (u64::from(i) * 2_654_435_761 % u64::from(keys)) as u32;
            let bytes = u64::from(k % 7) + round + 1;
            records.push(rec(T0 + S, &addr(k), peer(k), 6, 1, 2, bytes));
            *want.entry(addr(k)).or_default() += bytes;
        }
    }
    let all = RollupConfig {
        top_k: keys as usize,
        max_keys: keys as usize,
        dimensions: vec![
            Dimension::DeviceName,
            Dimension::SrcAddr,
            Dimension::DstAddr,
        ],
        ..RollupConfig::default()
    };
    let mut enricher = Enricher::new(&EnrichConfig::default());
    let mut rollup = Rollup::new(all.clone()).unwrap();
    for r in &records {
        rollup.push(&enricher.enrich(r, None));
    }
    let batches = rollup.flush_all();
    let got: BTreeMap<String, u64> = batches[0]
        .points
        .iter()
        .map(|p| match &attrs(p)["network.local.address"] {
            AttrValue::Str(a) => (a.to_string(), p.value),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(rollup.stats().keys_evicted, 0);

    // Half the keys fit, then nine tenths (a compaction keeps 9 000 keys, enough for their
    // index to be rebuilt with its reads ahead): the evicted values go to the overflow
    // series, the total is exact.
    for max_keys in [keys as usize / 2, keys as usize * 9 / 10] {
        let some = RollupConfig {
            top_k: 100,
            max_keys,
            ..all.clone()
        };
        let mut rollup = Rollup::new(some).unwrap();
        for r in &records {
            rollup.push(&enricher.enrich(r, None));
        }
        let batches = rollup.flush_all();
        assert_eq!(total(&batches), want.values().sum::<u64>());
        assert!(rollup.stats().keys_evicted > 0, "{max_keys}");
        let mut kept = std::collections::BTreeSet::new();
        for p in &batches[0].points {
            if let Some(AttrValue::Str(a)) = attrs(p).get("network.local.address") {
                // A kept key's value counts only what came after its last insertion.
                assert!(p.value <= want[&a.to_string()], "{a}");
                // Each key once: a key the index lost after a compaction would come back as
                // a second entry.
                assert!(kept.insert(a.to_string()), "{a} twice");
            }
        }
        assert_eq!(kept.len(), 100);
    }
}

/// Each window takes the memory of the last one finished (its entries, index and arena): three
/// windows of the same records, with keys evicted and keys in the arena, give the same series,
/// and the same as a rollup that never reused anything.
#[test]
fn a_window_reusing_a_finished_windows_memory_sums_the_same() {
    let keys = 6_000u32;
    let config = RollupConfig {
        top_k: 50,
        max_keys: 1_000,
        dimensions: vec![
            Dimension::DeviceName,
            Dimension::SrcAddr,
            Dimension::DstAddr,
        ],
        ..RollupConfig::default()
    };
    let interval = config.interval_secs * S;
    let window = |w: u64| -> Vec<FlowRecord> {
        (0..keys)
            .map(|i| {
                let k = i.wrapping_mul(2_654_435_761) % keys;
                let (src, dst) = if k.is_multiple_of(2) {
                    let v6 = std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(k));
                    (v6.to_string(), "2001:db8::2")
                } else {
                    (format!("10.0.{}.{}", k >> 8, k & 255), "10.0.0.2")
                };
                rec(
                    T0 + w * interval + S,
                    &src,
                    dst,
                    6,
                    1,
                    2,
                    u64::from(k % 50) + 1,
                )
            })
            .collect()
    };
    let series = |b: &WindowBatch| -> Vec<(BTreeMap<String, AttrValue>, u64)> {
        b.points.iter().map(|p| (attrs(p), p.value)).collect()
    };
    let mut enricher = Enricher::new(&EnrichConfig::default());
    let mut rollup = Rollup::new(config.clone()).unwrap();
    let mut got = Vec::new();
    for w in 0..3 {
        for r in &window(w) {
            rollup.push(&enricher.enrich(r, None));
        }
        // Finished and dropped before the next window opens: the next one reuses its memory.
        let batches = rollup.flush(T0 + (w + 1) * interval);
        assert_eq!(batches.len(), 1);
        got.push(series(&batches[0]));
    }
    assert!(rollup.stats().keys_evicted > 0);
    let mut fresh = Rollup::new(config).unwrap();
    for r in &window(0) {
        fresh.push(&enricher.enrich(r, None));
    }
    let want = series(&fresh.flush_all()[0]);
    assert_eq!(want.len(), 51, "50 series and the overflow");
    for g in &got {
        assert_eq!(g, &want);
    }
}

#[test]
fn direction_filter_and_values() {
    let mut egress = rec(T0, "10.0.0.1", "10.0.0.2", 6, 1, 2, 10);
    egress.direction = Some(FlowDirection::Egress);
    egress.packets = 3;
    let ingress = rec(T0, "10.0.0.1", "10.0.0.2", 6, 1, 2, 20);
    let in_bytes = RollupConfig {
        name: "in".into(),
        direction: Direction::In,
        dimensions: vec![],
        ..RollupConfig::default()
    };
    let (b, r) = run(in_bytes, &[egress.clone(), ingress.clone()]);
    assert_eq!(total(&b), 20);
    assert_eq!(r.stats().records_filtered, 1);
    let out_pkts = parse_spec("s_sum,p,out_pkts").unwrap();
    assert_eq!(
        total(&run(out_pkts, &[egress.clone(), ingress.clone()]).0),
        3
    );
    let flows = RollupConfig {
        value: flowtel_rollup::ValueKind::Flows,
        ..RollupConfig::default()
    };
    let (b, _) = run(flows, &[egress, ingress]);
    assert_eq!(&*b[0].points[0].unit, "{flow}");
    assert_eq!(&*b[0].points[0].metric, "flowtel.rollup.bytes_by_flow");
    assert_eq!(total(&b), 2);
}

#[test]
fn high_ports_collapse() {
    let config = RollupConfig {
        collapse_ports_from: Some(32768),
        ..RollupConfig::default()
    };
    let records = [
        rec(T0, "10.0.0.1", "8.8.8.8", 6, 40001, 443, 1),
        rec(T0, "10.0.0.1", "8.8.8.8", 6, 55555, 443, 2),
    ];
    let (b, _) = run(config, &records);
    assert_eq!(b[0].points.len(), 1);
    assert_eq!(
        attrs(&b[0].points[0])["network.local.port"],
        AttrValue::Int(32768)
    );
    assert_eq!(b[0].points[0].value, 3);
}

#[test]
fn merged_workers_equal_one_instance() {
    let config = RollupConfig {
        top_k: 4,
        ..RollupConfig::default()
    };
    let records: Vec<_> = (0..40u16)
        .map(|i| {
            rec(
                T0 + u64::from(i) * S,
                "10.0.0.1",
                "8.8.8.8",
                6,
                1000 + i % 7,
                443,
                u64::from(i) + 1,
            )
        })
        .collect();
    let (single, _) = run(config.clone(), &records);

    let mut a = RollupSet::new(std::slice::from_ref(&config)).unwrap();
    let mut b = RollupSet::new(std::slice::from_ref(&config)).unwrap();
    let mut enricher = Enricher::new(&EnrichConfig::default());
    for (i, r) in records.iter().enumerate() {
        let e = enricher.enrich(r, None);
        if i % 2 == 0 { a.push(&e) } else { b.push(&e) }
    }
    let now = T0 + 60 * S;
    let mut wa = a.take_closed(now);
    let wb = b.take_closed(now);
    assert_eq!((wa.len(), wb.len()), (1, 1));
    let mut merged = wa.pop().unwrap();
    merged.merge(wb.into_iter().next().unwrap()).unwrap();
    let batch = merged.finish(&mut Default::default());
    assert_eq!(vec![batch], single);
}

#[test]
fn several_rollups_side_by_side() {
    let configs = [
        RollupConfig::default(),
        parse_spec("s_sum,pkts_by_device,in_pkts+out_pkts,device_name").unwrap(),
    ];
    let mut set = RollupSet::new(&configs).unwrap();
    let mut enricher = Enricher::new(&EnrichConfig::default());
    let r = rec(T0, "10.0.0.1", "8.8.8.8", 6, 1, 443, 100);
    set.push(&enricher.enrich(&r, None));
    let out = set.flush_all();
    assert_eq!(out.len(), 2);
    assert_eq!(&*out[1].points[0].metric, "kentik.rollup.pkts_by_device");
    assert_eq!(&*out[1].points[0].unit, "{packet}");
    assert!(!set.needs_interface_names());
}

#[test]
fn yaml_config() {
    let yaml = r#"
enrichment:
  devices:
    192.0.2.1: edge-1
  sampling:
    default_rate: 10
    exporters:
      192.0.2.9: 1000
  geoip_country_db: /var/lib/GeoIP/GeoLite2-Country.mmdb
rollups:
  - name: bytes_by_flow
    value: bytes
    direction: both
    dimensions: [device_name, src_addr, dst_addr, src_port, dst_port, transport, application, src_country, dst_country]
    top_k: 500
    max_keys: 50000
    interval_secs: 60
  - name: bytes_by_flow
    profile: ktranslate
    dimensions: [src_as, dst_as, in_if_name]
    collapse_ports_from: 32768
"#;
    let c: PipelineConfig = serde_yaml::from_str(yaml).unwrap();
    assert_eq!(c.rollups[0].top_k, 500);
    assert_eq!(c.rollups[0].dimensions, RollupConfig::default().dimensions);
    assert_eq!(c.rollups[1].profile, Profile::Ktranslate);
    assert_eq!(c.rollups[1].interval_secs, 60);
    assert_eq!(c.enrichment.sampling.default_rate, Some(10));
    assert!(matches!(
        c.validate(),
        Err(flowtel_rollup::ConfigError::DuplicateName(_))
    ));
    let set = RollupSet::new(&c.rollups[1..]).unwrap();
    assert!(set.needs_interface_names());

    let empty: PipelineConfig = serde_yaml::from_str("{}").unwrap();
    assert_eq!(empty, PipelineConfig::default());
    assert_eq!(empty.rollups, vec![RollupConfig::default()]);

    let err = serde_yaml::from_str::<PipelineConfig>("rollups: [{name: x, topk: 3}]").unwrap_err();
    assert!(err.to_string().contains("unknown field"), "{err}");
    let err =
        serde_yaml::from_str::<PipelineConfig>("rollups: [{dimensions: [bogus]}]").unwrap_err();
    assert!(
        err.to_string().contains("unknown dimension \"bogus\""),
        "{err}"
    );
    let custom: PipelineConfig = serde_yaml::from_str(
        "rollups: [{dimensions: [firewall_event, custom_str.app_id, custom_int.cpid]}]",
    )
    .unwrap();
    assert_eq!(
        custom.rollups[0].dimensions,
        [
            Dimension::FirewallEvent,
            Dimension::CustomStr("app_id".into()),
            Dimension::CustomInt("cpid".into())
        ]
    );
    assert_eq!(
        serde_yaml::to_string(&custom.rollups[0].dimensions).unwrap(),
        "- firewall_event\n- custom_str.app_id\n- custom_int.cpid\n"
    );
    let err =
        serde_yaml::from_str::<PipelineConfig>("rollups: [{dimensions: [\"custom_str.a b\"]}]")
            .unwrap_err();
    assert!(
        err.to_string().contains("invalid custom field name"),
        "{err}"
    );
    let bad = RollupConfig {
        top_k: 0,
        ..RollupConfig::default()
    };
    assert!(Rollup::new(bad).is_err());
    let bad = RollupConfig {
        interval_secs: 0,
        ..RollupConfig::default()
    };
    assert!(Rollup::new(bad).is_err());
    // A window numbers its keys in 32 bits.
    let most = RollupConfig {
        max_keys: flowtel_rollup::config::MAX_MAX_KEYS,
        ..RollupConfig::default()
    };
    assert!(Rollup::new(most).is_ok());
    let bad = RollupConfig {
        max_keys: flowtel_rollup::config::MAX_MAX_KEYS + 1,
        ..RollupConfig::default()
    };
    assert!(matches!(
        Rollup::new(bad),
        Err(flowtel_rollup::ConfigError::MaxKeys(_))
    ));
}

#[test]
fn vendor_dimensions_application_names_firewall_nat_and_custom_fields() {
    use flowtel_decode::{CustomField, CustomValue, Firewall, Nat};
    let mut nbar = rec(T0 + S, "10.0.0.5", "8.8.8.8", 6, 51514, 443, 1000);
    nbar.application_name = Some(Arc::from("ms-teams"));
    nbar.firewall = Some(Firewall {
        event: Some(5),
        ..Firewall::default()
    });
    nbar.nat = Some(Nat {
        src_addr: Some("203.0.113.7".parse().unwrap()),
        src_port: Some(40000),
        event: Some(4),
        ..Nat::default()
    });
    nbar.custom_fields = vec![
        CustomField {
            name: Arc::from("app_id"),
            value: CustomValue::Str("ms-teams-audio".into()),
        },
        CustomField {
            name: Arc::from("cpid"),
            value: CustomValue::Unsigned(2049),
        },
    ];
    let plain = rec(T0 + 2 * S, "10.0.0.5", "8.8.8.8", 6, 51515, 443, 500);
    let dims = [
        "application",
        "firewall_event",
        "nat_event",
        "post_nat_src_addr",
        "post_nat_src_port",
        "custom_str.app_id",
        "custom_int.cpid",
    ];
    let dimensions: Vec<Dimension> = dims.iter().map(|d| d.parse().unwrap()).collect();
    let config = RollupConfig {
        dimensions,
        ..RollupConfig::default()
    };
    let (batches, _) = run(config, &[nbar, plain]);
    let points = &batches[0].points;
    let named = attrs(&points[0]);
    assert_eq!(named["network.protocol.name"], s("ms-teams"));
    assert_eq!(named["firewall_event"], s("update"));
    assert_eq!(named["nat_event"], s("nat44_session_create"));
    assert_eq!(named["post_nat_src_addr"], s("203.0.113.7"));
    assert_eq!(named["post_nat_src_port"], AttrValue::Int(40000));
    assert_eq!(named["app_id"], s("ms-teams-audio"));
    assert_eq!(named["cpid"], AttrValue::Int(2049));
    let plain = attrs(&points[1]);
    assert_eq!(
        plain["network.protocol.name"],
        s("https"),
        "IANA service otherwise"
    );
    assert_eq!(
        (&plain["firewall_event"], &plain["app_id"]),
        (&s(""), &s(""))
    );
    assert_eq!(plain["cpid"], AttrValue::Int(0));

    // ktranslate specs name them the same way.
    let r = parse_spec("s_sum,fw,in_bytes,custom_str.app_id,custom_int.cpid,fw_event").unwrap();
    assert_eq!(
        r.dimensions,
        [
            Dimension::CustomStr("app_id".into()),
            Dimension::CustomInt("cpid".into()),
            Dimension::FirewallEvent
        ]
    );
    assert_eq!(
        r.dimensions[0].attribute_name(Profile::Ktranslate),
        "app_id"
    );
}

#[test]
fn network_dimensions_from_the_networks_file() {
    let networks = flowtel_rollup::Networks::from_csv(
        "prefix,name,role,site,region,tenant,asn\n\
         10.0.0.0/8,corp,internal,,eu,acme,\n\
         10.1.0.0/16,par1-servers,servers,par1,eu-west,acme,64500\n",
    )
    .unwrap();
    let mut enricher = Enricher::new(&EnrichConfig::default()).with_networks(Arc::new(networks));
    let dims = [
        "src_net_name",
        "dst_net_name",
        "src_net_role",
        "dst_net_role",
        "src_net_site",
        "dst_net_site",
        "src_net_region",
        "dst_net_region",
        "src_net_tenant",
        "dst_net_tenant",
        "src_as",
        "dst_as",
    ];
    let config = RollupConfig {
        dimensions: dims.iter().map(|d| d.parse().unwrap()).collect(),
        ..RollupConfig::default()
    };
    for profile in [Profile::Default, Profile::Ktranslate] {
        let mut rollup = Rollup::new(RollupConfig {
            profile,
            ..config.clone()
        })
        .unwrap();
        for r in [
            rec(T0 + S, "10.1.2.3", "10.9.0.1", 6, 51514, 443, 1000),
            rec(T0 + 2 * S, "10.1.2.4", "10.9.0.2", 6, 51515, 443, 500),
            rec(T0 + 3 * S, "8.8.8.8", "10.9.0.1", 17, 53, 40000, 100),
        ] {
            rollup.push(&enricher.enrich(&r, None));
        }
        let batches: Vec<WindowBatch> = rollup.flush_all();
        let points = &batches[0].points;
        assert_eq!(points.len(), 2, "the two 10.1/16 → 10/8 flows share a key");
        let a = attrs(&points[0]);
        assert_eq!(points[0].value, 1500);
        let want = [
            ("src_net_name", "par1-servers"),
            ("dst_net_name", "corp"),
            ("src_net_role", "servers"),
            ("dst_net_role", "internal"),
            ("src_net_site", "par1"),
            ("dst_net_site", ""),
            ("src_net_region", "eu-west"),
            ("dst_net_region", "eu"),
            ("src_net_tenant", "acme"),
            ("dst_net_tenant", "acme"),
        ];
        for (k, v) in want {
            assert_eq!(a[k], s(v), "{k} ({profile:?})");
        }
        let asn = |n: i64| match profile {
            Profile::Default => AttrValue::Int(n),
            Profile::Ktranslate => s(&n.to_string()),
        };
        assert_eq!((&a["src_as"], &a["dst_as"]), (&asn(64500), &asn(0)));
        let b = attrs(&points[1]);
        assert_eq!(
            (&b["src_net_name"], &b["dst_net_name"]),
            (&s(""), &s("corp"))
        );
    }
    // ktranslate specs take the same names.
    let r = parse_spec("s_sum,by_net,in_bytes,custom_str.src_net_site,dst_net_tenant").unwrap();
    assert_eq!(
        r.dimensions,
        [Dimension::SrcNetSite, Dimension::DstNetTenant]
    );
}

/// A rollup keying each country with its address (the default dimensions) leaves the
/// countries out of the key and looks them up for the emitted series; the labels are those
/// of records enriched one by one with the same database. A rollup keying a country
/// without its address needs them per record.
#[test]
fn countries_looked_up_at_finish_are_the_records_countries() {
    use flowtel_rollup::CountryDb;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/country-test.mmdb");
    let db = Arc::new(CountryDb::from_bytes(std::fs::read(path).unwrap()).unwrap());
    // In the database (IPv4 and IPv6), global but not in it, and not global.
    let addrs = [
        "8.8.8.8",
        "1.1.1.1",
        "81.2.69.7",
        "2001:4860::8888",
        "2a02:ec0::1",
        "9.9.9.9",
        "2606:4700::1111",
        "10.1.2.3",
        "192.168.7.7",
        "fd00::1",
        "::ffff:8.8.8.8",
    ];
    let records: Vec<FlowRecord> = addrs
        .iter()
        .enumerate()
        .flat_map(|(i, src)| {
            let dst = addrs[(i + 3) % addrs.len()];
            let same_family = src.contains(':') == dst.contains(':');
            let dst = if same_family { dst } else { src };
            (0..3).map(move |k| rec(T0 + k * S, src, dst, 6, 40000, 443, 100 + i as u64))
        })
        .collect();

    let mut set = RollupSet::new(&[RollupConfig::default()]).unwrap();
    assert!(
        !set.needs_countries(),
        "each country comes with its address"
    );
    set.set_country_db(Some(Arc::clone(&db)));
    let mut without = Enricher::new(&EnrichConfig::default())
        .with_country_db(Arc::clone(&db))
        .with_countries(false);
    for r in &records {
        set.push(&without.enrich(r, None));
    }
    let batches = set.flush_all();
    let points: Vec<&Point> = batches.iter().flat_map(|b| &b.points).collect();
    assert_eq!(points.len(), addrs.len(), "one series per address pair");

    let mut with = Enricher::new(&EnrichConfig::default()).with_country_db(Arc::clone(&db));
    let mut seen = std::collections::BTreeSet::new();
    for p in points {
        let a = attrs(p);
        let addr = |k: &str| match &a[k] {
            AttrValue::Str(v) => v.to_string(),
            v => panic!("{k}: {v:?}"),
        };
        let r = rec(
            T0,
            &addr("network.local.address"),
            &addr("network.peer.address"),
            6,
            1,
            2,
            1,
        );
        let e = with.enrich(&r, None);
        assert_eq!(
            a["network.local.country"],
            s(e.src_country.as_str()),
            "{a:?}"
        );
        assert_eq!(
            a["network.peer.country"],
            s(e.dst_country.as_str()),
            "{a:?}"
        );
        seen.insert(e.src_country.as_str().to_owned());
    }
    let seen: Vec<&str> = seen.iter().map(String::as_str).collect();
    assert_eq!(seen, ["", "AU", "GB", "Private IP", "SE", "US"]);

    // Without the database: `Private IP` or empty, as a record without one gets.
    let mut set = RollupSet::new(&[RollupConfig::default()]).unwrap();
    let mut plain = Enricher::new(&EnrichConfig::default()).with_countries(false);
    for r in &records {
        set.push(&plain.enrich(r, None));
    }
    for b in set.flush_all() {
        for p in &b.points {
            let a = attrs(p);
            let private = a["network.local.address"] == s("10.1.2.3");
            if private {
                assert_eq!(a["network.local.country"], s("Private IP"));
            } else if a["network.local.address"] == s("8.8.8.8") {
                assert_eq!(a["network.local.country"], s(""));
            }
        }
    }

    // A country without its address is part of the key: the records need it.
    let by_country = RollupConfig {
        name: "by_country".into(),
        dimensions: vec![Dimension::SrcCountry, Dimension::DstAddr],
        ..RollupConfig::default()
    };
    let mut set = RollupSet::new(std::slice::from_ref(&by_country)).unwrap();
    assert!(set.needs_countries());
    let mut with = Enricher::new(&EnrichConfig::default()).with_country_db(Arc::clone(&db));
    for r in &records {
        set.push(&with.enrich(r, None));
    }
    let mut countries: Vec<String> = set
        .flush_all()
        .iter()
        .flat_map(|b| &b.points)
        .map(|p| match &attrs(p)["network.local.country"] {
            AttrValue::Str(v) => v.to_string(),
            v => panic!("{v:?}"),
        })
        .collect();
    countries.sort();
    countries.dedup();
    assert_eq!(countries, ["", "AU", "GB", "Private IP", "SE", "US"]);
}
