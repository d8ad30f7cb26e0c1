//! Cost per record of each per-flow encoding: OTLP logs request (both attribute spellings;
//! built as opentelemetry-proto values, and written straight to wire bytes), length-delimited
//! protobuf, goflow2-style JSON lines. Records are enriched IPFIX flows
//! (IPv4 and IPv6, TCP/UDP/ICMP, interfaces, masks, next hops, a direction), 10 000 per
//! iteration (OTLP: ten requests of 1 000), encoded into buffers reused across iterations as a
//! sink would.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowtel_records::{AttributeNames, EncodedLogsBatch, LogsBatch, RecordEncoder};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;

#[path = "support/records.rs"]
mod records;
use records::{N, records};

/// Records per OTLP request (about 1 MiB of request, under collectors' default 4 MiB limit).
const BATCH: usize = 1000;

fn bench(c: &mut Criterion) {
    let records = records();
    let mut group = c.benchmark_group("records_10k");
    group.throughput(Throughput::Elements(N as u64));

    for names in [AttributeNames::NetworkFlow, AttributeNames::Flow] {
        let mut batch = LogsBatch::new(Resource::default(), InstrumentationScope::default(), names);
        group.bench_function(format!("otlp_logs_request_prost_{names}"), |b| {
            b.iter(|| {
                for chunk in records.chunks(BATCH) {
                    for r in chunk {
                        batch.push(r);
                    }
                    black_box(batch.take());
                }
            })
        });
        let mut encoded = EncodedLogsBatch::new(
            &Resource::default(),
            &InstrumentationScope::default(),
            names,
        );
        group.bench_function(format!("otlp_logs_request_encoded_{names}"), |b| {
            b.iter(|| {
                for chunk in records.chunks(BATCH) {
                    for r in chunk {
                        encoded.push(r);
                    }
                    black_box(encoded.take());
                }
            })
        });
    }

    let mut encoder = RecordEncoder::new();
    let mut bytes = Vec::new();
    group.bench_function("protobuf_delimited", |b| {
        b.iter(|| {
            bytes.clear();
            for r in &records {
                encoder.protobuf_delimited(r, &mut bytes);
            }
            black_box(bytes.len())
        })
    });

    let mut text = String::new();
    group.bench_function("json_lines", |b| {
        b.iter(|| {
            text.clear();
            for r in &records {
                encoder.json_line(r, &mut text);
            }
            black_box(text.len())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
