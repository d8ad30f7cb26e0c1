//! Decode throughput per protocol, in flow records per second on one core.
//!
//! `cargo bench -p flowtel-decode --bench decode -- --measurement-time 3 --warm-up-time 1`
//!
//! Criterion measures wall time; each benchmark then also prints records per second of the
//! thread's own CPU time (Linux `/proc/thread-self/schedstat`), the per-core figure on a busy
//! shared machine.

#[path = "../tests/support/builder.rs"]
mod builder;

use std::hint::black_box;

use builder::{F, Msg, V5Rec, f, rec};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowtel_decode::{DecodeOutput, Decoder, DecoderConfig, FlowRecord, FlowSink, RecordFields};

const EXPORTER: ([u8; 4], u16) = ([192, 0, 2, 1], 2055);

/// CPU time this thread has run, in nanoseconds (first field of schedstat).
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Decode `data` for about two CPU-seconds and print records per CPU-second.
fn print_cpu_rate(name: &str, dec: &mut Decoder, data: &[u8], records: u64) {
    let Some(start) = thread_cpu_ns() else {
        return;
    };
    let mut out = DecodeOutput::default();
    let mut datagrams = 0u64;
    let mut cpu_ns = 0;
    while cpu_ns < 2_000_000_000 {
        for _ in 0..10_000 {
            out.clear();
            black_box(dec.decode(EXPORTER.into(), black_box(data), 1, &mut out));
        }
        datagrams += 10_000;
        cpu_ns = thread_cpu_ns().unwrap_or(u64::MAX).saturating_sub(start);
    }
    let per_sec = (datagrams * records) as f64 / (cpu_ns as f64 / 1e9);
    println!("{name} cpu time: {:.2} M records/s per core", per_sec / 1e6);
}

/// A typical router template: addresses, ports, protocol, counters, interfaces, times, AS,
/// masks, next hop, TCP flags, ToS, direction.
const TEMPLATE: &[F] = &[
    f(8, 4),
    f(12, 4),
    f(7, 2),
    f(11, 2),
    f(4, 1),
    f(6, 1),
    f(5, 1),
    f(1, 8),
    f(2, 8),
    f(10, 4),
    f(14, 4),
    f(16, 4),
    f(17, 4),
    f(9, 1),
    f(13, 1),
    f(15, 4),
    f(61, 1),
    f(22, 4),
    f(21, 4),
];

fn record(i: u32) -> Vec<u8> {
    rec(&[
        &(0x0a00_0000 | i).to_be_bytes(),
        &(0xc0a8_0000 | i).to_be_bytes(),
        &((i % 60000) as u16).to_be_bytes(),
        &443u16.to_be_bytes(),
        &[6, 0x1b, 0],
        &(1500 * u64::from(i)).to_be_bytes(),
        &u64::from(i).to_be_bytes(),
        &3u32.to_be_bytes(),
        &4u32.to_be_bytes(),
        &64500u32.to_be_bytes(),
        &64501u32.to_be_bytes(),
        &[24, 16],
        &[10, 0, 0, 254],
        &[0],
        &1000u32.to_be_bytes(),
        &2000u32.to_be_bytes(),
    ])
}

/// A sink that only counts the records lent to it.
struct Count(u64);

impl FlowSink for Count {
    fn flows(&mut self, records: &[FlowRecord]) {
        self.0 += records.len() as u64;
    }
}

/// Records per datagram that fit a 1500-byte MTU.
const PER_DATAGRAM: u32 = 24;

/// `fields`: every field (what `flowtel decode` and the per-flow sinks read), or the core a
/// metrics-only pipeline with the default rollup reads.
fn bench_template(c: &mut Criterion, name: &str, ipfix: bool, fields: RecordFields) {
    let new_msg = || {
        if ipfix {
            Msg::ipfix(1, 1_700_000_000)
        } else {
            Msg::v9(1, 5000, 1_700_000_000)
        }
    };
    let records: Vec<Vec<u8>> = (0..PER_DATAGRAM).map(record).collect();
    let data = new_msg().data(256, &records).build();
    let mut dec = Decoder::new(DecoderConfig {
        record_fields: fields,
        ..DecoderConfig::default()
    });
    let mut out = DecodeOutput::default();
    dec.decode(
        EXPORTER.into(),
        &new_msg().template(256, TEMPLATE).build(),
        0,
        &mut out,
    );
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(u64::from(PER_DATAGRAM)));
    g.bench_function("datagram_24_records", |b| {
        b.iter(|| {
            out.clear();
            let r = dec.decode(EXPORTER.into(), black_box(&data), 1, &mut out);
            black_box(r.records)
        })
    });
    // As the daemon decodes: records lent to a sink, read into the decoder's own records
    // where the template has a core or a wide layout.
    let from: std::net::SocketAddr = EXPORTER.into();
    let hash = flowtel_decode::prehash::exporter_hash(from.ip());
    let mut sink = Count(0);
    g.bench_function("datagram_24_records_streamed", |b| {
        b.iter(|| {
            out.clear();
            dec.decode_streaming(from, hash, black_box(&data), 1, &mut out, &mut sink);
            black_box(sink.0)
        })
    });
    g.finish();
    print_cpu_rate(name, &mut dec, &data, u64::from(PER_DATAGRAM));
}

fn v5(c: &mut Criterion) {
    let recs: Vec<V5Rec> = (0..30u32)
        .map(|i| V5Rec {
            src: (0x0a00_0000 | i).to_be_bytes(),
            dst: [192, 168, 0, 1],
            packets: i,
            bytes: 1500 * i,
            proto: 6,
            sport: 1000,
            dport: 443,
            ..V5Rec::default()
        })
        .collect();
    let data = builder::v5(5000, 1_700_000_000, 0x4000 | 100, &recs);
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut out = DecodeOutput::default();
    let mut g = c.benchmark_group("netflow_v5");
    g.throughput(Throughput::Elements(30));
    g.bench_function("datagram_30_records", |b| {
        b.iter(|| {
            out.clear();
            let r = dec.decode(EXPORTER.into(), black_box(&data), 1, &mut out);
            black_box(r.records)
        })
    });
    g.finish();
    print_cpu_rate("netflow_v5", &mut dec, &data, 30);
}

fn v9(c: &mut Criterion) {
    bench_template(c, "netflow_v9", false, RecordFields::ALL);
    bench_template(c, "netflow_v9_core_fields", false, RecordFields::CORE);
}

fn ipfix(c: &mut Criterion) {
    bench_template(c, "ipfix", true, RecordFields::ALL);
    bench_template(c, "ipfix_core_fields", true, RecordFields::CORE);
}

criterion_group!(benches, v5, v9, ipfix);
criterion_main!(benches);
