//! Cost of turning one window into OTLP requests (done once per window in the sender task).

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowtel_otlp::{ConvertConfig, Converter, Temporality};
use flowtel_series::{AttrValue, Point, WindowBatch};

fn window(points: u64) -> WindowBatch {
    let s = |v: &str| -> Arc<str> { Arc::from(v) };
    let metric = s("network.io.by_flow");
    let unit = s("By");
    let keys: Vec<Arc<str>> = [
        "network.local.address",
        "network.peer.address",
        "network.local.port",
        "network.peer.port",
        "network.transport",
        "device.name",
    ]
    .iter()
    .map(|k| s(k))
    .collect();
    WindowBatch {
        rollup: s("bytes_by_flow"),
        start_time_unix_nano: 0,
        time_unix_nano: 60_000_000_000,
        points: (0..points)
            .map(|i| Point {
                metric: metric.clone(),
                unit: unit.clone(),
                kind: flowtel_series::PointKind::Total,
                attributes: vec![
                    (
                        keys[0].clone(),
                        AttrValue::Str(s(&format!("10.0.{}.{}", i / 256, i % 256))),
                    ),
                    (keys[1].clone(), AttrValue::Str(s("192.0.2.10"))),
                    (keys[2].clone(), AttrValue::Int(443)),
                    (keys[3].clone(), AttrValue::Int((i % 60_000) as i64)),
                    (keys[4].clone(), AttrValue::Str(s("tcp"))),
                    (keys[5].clone(), AttrValue::Str(s("edge-router-1"))),
                ],
                value: i * 1500,
                start_time_unix_nano: 0,
                time_unix_nano: 60_000_000_000,
            })
            .collect(),
    }
}

fn bench(c: &mut Criterion) {
    let batch = window(10_000);
    let mut group = c.benchmark_group("convert_10k_points");
    group.throughput(Throughput::Elements(10_000));
    for temporality in [Temporality::Gauge, Temporality::CumulativeSum] {
        let mut converter = Converter::new(ConvertConfig {
            temporality,
            ..Default::default()
        });
        group.bench_function(temporality.as_str(), |b| {
            b.iter(|| converter.convert(std::hint::black_box(&batch)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
