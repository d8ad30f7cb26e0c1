//! sFlow v5 decode throughput, in flow samples per second (one core), header parsing included.
//!
//! `cargo bench -p flowtel-decode --bench sflow`
//!
//! Criterion measures the wall clock; after it, the same loop runs for 2 M datagrams and prints
//! samples per second of the thread's own CPU time (Linux `/proc/thread-self/schedstat`), the
//! per-core figure when the machine is shared with other work.

use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowtel_decode::{DecodeOutput, Decoder, DecoderConfig, SflowInterface};
use flowtel_encode::sflow::{Datagram, FlowData, FlowSample, PacketHeader, Sample};

/// A switch datagram as agents send them: `n` flow samples, each with an extended switch
/// record and a 128-byte sampled Ethernet header (802.1Q, IPv4 or IPv6, TCP or UDP).
fn datagram(n: u32) -> Vec<u8> {
    let samples = (0..n)
        .map(|i| {
            let v6 = i % 3 == 0;
            let (src_addr, dst_addr): (IpAddr, IpAddr) = if v6 {
                (
                    "2001:db8::1".parse().expect("ip"),
                    "2001:db8::2".parse().expect("ip"),
                )
            } else {
                (
                    "198.51.100.1".parse().expect("ip"),
                    "203.0.113.2".parse().expect("ip"),
                )
            };
            let p = PacketHeader {
                src_mac: [0, 0x53, 0, 0, 0, 1],
                dst_mac: [0, 0x53, 0, 0, 0, 2],
                vlan: Some(100),
                src_addr,
                dst_addr,
                ip_protocol: if i % 2 == 0 { 6 } else { 17 },
                tos: 0,
                src_port: 40_000 + i as u16,
                dst_port: 443,
                tcp_flags: 0x10,
                ip_length: 1400,
            };
            let mut header = p.to_bytes(128);
            header.resize(128, 0xab); // payload bytes up to the usual 128-byte cut
            Sample::Flow(FlowSample {
                expanded: false,
                sequence: i,
                source_id_type: 0,
                source_id_index: 7,
                sampling_rate: 4096,
                sample_pool: i * 4096,
                drops: 0,
                input: SflowInterface::Index(7),
                output: SflowInterface::Index(9),
                records: vec![
                    FlowData::Switch {
                        src_vlan: 100,
                        src_priority: 0,
                        dst_vlan: 100,
                        dst_priority: 0,
                    },
                    FlowData::SampledHeader {
                        protocol: 1,
                        frame_length: p.frame_length(),
                        stripped: 4,
                        header,
                    },
                ],
            })
        })
        .collect();
    Datagram {
        agent: Some("192.0.2.1".parse().expect("ip")),
        sub_agent_id: 0,
        sequence: 1,
        uptime_ms: 1000,
        samples,
    }
    .to_bytes()
}

fn bench(c: &mut Criterion) {
    let exporter: SocketAddr = "192.0.2.1:6343".parse().expect("addr");
    let samples = 6;
    let bytes = datagram(samples);
    assert!(
        bytes.len() <= 1500,
        "one MTU-sized datagram: {}",
        bytes.len()
    );
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut out = DecodeOutput::default();

    let mut group = c.benchmark_group("sflow");
    group.throughput(Throughput::Elements(u64::from(samples)));
    group.bench_function("flow_samples_switch_header128", |b| {
        b.iter(|| {
            out.clear();
            let report = decoder.decode(exporter, black_box(&bytes), 0, &mut out);
            black_box(report.records)
        })
    });
    group.finish();

    // Per-core figure on a shared machine: samples per second of this thread's CPU time.
    if let Some(start) = thread_cpu_ns() {
        let datagrams = 2_000_000u64;
        for _ in 0..datagrams {
            out.clear();
            let report = decoder.decode(exporter, black_box(&bytes), 0, &mut out);
            black_box(report.records);
        }
        let cpu_ns = thread_cpu_ns()
            .unwrap_or(start)
            .saturating_sub(start)
            .max(1);
        let per_sec = (datagrams * u64::from(samples)) as f64 / (cpu_ns as f64 / 1e9);
        println!(
            "sflow cpu time: {:.2} M flow samples/s per core ({} datagrams of {samples} samples in {:.2} s CPU)",
            per_sec / 1e6,
            datagrams,
            cpu_ns as f64 / 1e9
        );
    }
}

/// CPU time this thread has run, in nanoseconds (first field of schedstat).
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

criterion_group!(benches, bench);
criterion_main!(benches);
