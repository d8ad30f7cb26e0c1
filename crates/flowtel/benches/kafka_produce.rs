//! Producer throughput of the kafka sink, end to end: records handed to the sink as the receive
//! workers hand them (passes of 1 000), encoded, partitioned by exporter, produced with rskafka
//! to a tansu broker on loopback (in memory) and acknowledged. One iteration is 10 000 records
//! of eight exporters; the time ends when the sink counts them delivered.
//!
//! Besides criterion's records/s (wall clock, broker included), each variant prints the records
//! per CPU-second of this process alone (the sink: encoding, partitioning, rskafka, its
//! compression), from getrusage: the cost a collector pays per record, whatever the broker.
//! The encodings alone are in `flowtel-records`' `encode` bench.
//!
//! Needs `tansu` (built with `--features dynostore`) on PATH; without it the bench says so and
//! measures nothing. The broker is started afresh for each variant (it keeps every record in
//! memory).

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowtel::config::Config;
use flowtel::config::kafka::{KafkaCompression, KafkaFormat};
use flowtel::sinks::Sink;
use flowtel::sinks::kafka::KafkaSink;
use flowtel_rollup::EnrichedRecord;

#[path = "../../flowtel-records/benches/support/records.rs"]
mod records;

/// Records per pass (what one receive pass hands over at most, and one batch).
const PASS: usize = 1_000;

struct Tansu(Child, SocketAddr);

impl Tansu {
    fn start() -> Option<Tansu> {
        let addr = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?;
        let url = format!("tcp://{addr}");
        let child = Command::new("tansu")
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let t = Tansu(child, addr);
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(t)
    }

    fn create_topic(&self, name: &str, partitions: u32) {
        let ok = Command::new("tansu")
            .args([
                "topic",
                "create",
                name,
                "--broker",
                &format!("tcp://{}", self.1),
            ])
            .args(["--partitions", &partitions.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "tansu topic create {name}");
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The shared record stream, spread over eight exporters.
fn passes() -> Vec<Arc<Vec<EnrichedRecord>>> {
    let mut all = records::records();
    for (i, r) in all.iter_mut().enumerate() {
        r.record.exporter = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1 + (i % 8) as u8), 2055));
    }
    all.chunks(PASS).map(|c| Arc::new(c.to_vec())).collect()
}

fn cpu_seconds() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    let u = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
    t(u.user_time()) + t(u.system_time())
}

fn bench(c: &mut Criterion) {
    if Command::new("tansu").arg("--version").output().is_err() {
        eprintln!(
            "kafka_produce: `tansu` is not on PATH: nothing measured (cargo install --locked tansu@0.6.0 --features dynostore)"
        );
        return;
    }
    let passes = passes();
    let per_iter: usize = passes.iter().map(|p| p.len()).sum();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("kafka_produce_10k");
    group.throughput(Throughput::Elements(per_iter as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.warm_up_time(Duration::from_secs(1));
    let variants = [
        (
            "protobuf_none_3p",
            KafkaFormat::Protobuf,
            KafkaCompression::None,
            3,
        ),
        (
            "protobuf_none_1p",
            KafkaFormat::Protobuf,
            KafkaCompression::None,
            1,
        ),
        (
            "protobuf_zstd_3p",
            KafkaFormat::Protobuf,
            KafkaCompression::Zstd,
            3,
        ),
        (
            "protobuf_lz4_3p",
            KafkaFormat::Protobuf,
            KafkaCompression::Lz4,
            3,
        ),
        (
            "protobuf_snappy_3p",
            KafkaFormat::Protobuf,
            KafkaCompression::Snappy,
            3,
        ),
        (
            "protobuf_gzip_3p",
            KafkaFormat::Protobuf,
            KafkaCompression::Gzip,
            3,
        ),
        ("json_none_3p", KafkaFormat::Json, KafkaCompression::None, 3),
    ];
    for (name, format, compression, partitions) in variants {
        let Some(broker) = Tansu::start() else {
            eprintln!("kafka_produce: tansu did not start");
            return;
        };
        broker.create_topic("flows", partitions);
        let mut config = Config::default();
        config.kafka.brokers = vec![broker.1.to_string()];
        config.kafka.format = format;
        config.kafka.compression = compression;
        config.flow_records.batch_max_records = PASS;
        config.kafka.linger_ms = Some(5);
        let sink = runtime
            .block_on(async { KafkaSink::start(&config) })
            .unwrap();
        // Connected, and the partitions known.
        let start = Instant::now();
        while sink.families().iter().all(|f| {
            f.name != "flowtel.kafka.partitions" || f.samples.iter().all(|s| s.value == 0.0)
        }) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no connection to tansu"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let (mut records, mut cpu) = (0usize, 0.0f64);
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let cpu0 = cpu_seconds();
                let start = Instant::now();
                let first = sink.status().delivered;
                let target = first + iters * per_iter as u64;
                let mut pushed = first;
                for _ in 0..iters {
                    // Keep the queue well within its bound (200 000 records).
                    while pushed - sink.status().delivered > 100_000 {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    for p in &passes {
                        sink.records(p);
                    }
                    pushed += per_iter as u64;
                }
                while sink.status().delivered < target {
                    std::thread::sleep(Duration::from_micros(200));
                }
                let took = start.elapsed();
                records += iters as usize * per_iter;
                cpu += cpu_seconds() - cpu0;
                took
            })
        });
        let st = sink.status();
        assert_eq!(
            st.dropped.iter().map(|(_, n)| n).sum::<u64>(),
            0,
            "{name}: {st:?}"
        );
        eprintln!(
            "kafka_produce/{name}: {:.0} records per CPU-second of the sink's process ({records} records, {cpu:.2} s CPU)",
            records as f64 / cpu
        );
        runtime.block_on(sink.shutdown(tokio::time::Instant::now() + Duration::from_secs(5)));
        drop(broker);
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
