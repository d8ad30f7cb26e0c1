//! How long an exporter takes to find its endpoint back after an outage, with the default retry
//! policy, and how many windows it drops meanwhile. Real time, real gRPC on 127.0.0.1.
//!
//! Each trial: a metrics exporter (default `RetryConfig`, queue of `--capacity` windows) gets a
//! window every `--every-ms` while its endpoint is down for `--outage-secs`, long enough for the
//! backoff to reach its 30 s cap; then a `MetricsServiceServer` starts on the port and the
//! trial measures the time to the first accepted export, and the windows dropped between the
//! server's start and that export. Trials run side by side, in two modes:
//!
//! - `30s-cap`: `max_backoff_when_filling` = `max_backoff` = 30 s, i.e. no faster probing when
//!   the queue fills: the retry timing flowtel had before;
//! - `default`: the defaults (5 s cap while the queue is more than half full).
//!
//! `cargo run --release -p flowtel-otlp --example recovery -- [--trials N] [--outage-secs S]
//! [--capacity N] [--every-ms MS]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use flowtel_otlp::opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use flowtel_otlp::opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use flowtel_otlp::{
    ChannelConfig, ClientConfig, ConvertConfig, Converter, DropReason, ExportStats, Exporter,
    MetricsClient, QueueConfig, RetryConfig,
};
use flowtel_series::{AttrValue, Point, WindowBatch};

#[derive(Debug, Clone, Copy)]
struct Args {
    trials: usize,
    outage: Duration,
    capacity: usize,
    every: Duration,
}

fn args() -> Args {
    let mut a = Args {
        trials: 8,
        outage: Duration::from_secs(90),
        capacity: 8,
        every: Duration::from_millis(1000),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = |i: usize| {
            pair.get(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(i as u64)
        };
        match pair.first().map(String::as_str) {
            Some("--trials") => a.trials = value(a.trials) as usize,
            Some("--outage-secs") => a.outage = Duration::from_secs(value(90)),
            Some("--capacity") => a.capacity = value(a.capacity) as usize,
            Some("--every-ms") => a.every = Duration::from_millis(value(1000)),
            other => panic!("unknown argument {other:?}"),
        }
    }
    a
}

#[derive(Debug, Default, Clone)]
struct Sink;

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        _request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

fn window(n: u64) -> WindowBatch {
    let s = |v: &str| -> Arc<str> { Arc::from(v) };
    WindowBatch {
        rollup: s("bytes_by_flow"),
        start_time_unix_nano: n * 1_000_000_000,
        time_unix_nano: (n + 1) * 1_000_000_000,
        points: vec![Point {
            metric: s("network.io.by_flow"),
            unit: s("By"),
            kind: flowtel_series::PointKind::Total,
            attributes: vec![(s("network.transport"), AttrValue::Str(s("tcp")))],
            value: n,
            start_time_unix_nano: n * 1_000_000_000,
            time_unix_nano: (n + 1) * 1_000_000_000,
        }],
    }
}

/// (recovery time, windows dropped while the endpoint was up but not yet found).
async fn trial(a: Args, max_backoff_when_filling: Duration) -> (Duration, u64) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let stats = Arc::new(ExportStats::default());
    let config = ClientConfig {
        channel: ChannelConfig {
            endpoint: format!("http://{addr}"),
            ..Default::default()
        },
        retry: RetryConfig {
            max_backoff_when_filling,
            ..Default::default()
        },
        ..Default::default()
    };
    let client = MetricsClient::new(&config, stats.clone()).unwrap();
    let exporter = Exporter::spawn(
        client,
        Converter::new(ConvertConfig::default()),
        &QueueConfig {
            capacity: a.capacity,
            report_interval: Duration::from_secs(3600),
        },
    );
    let queue = exporter.queue();
    let pusher = tokio::spawn(async move {
        let mut tick = tokio::time::interval(a.every);
        for n in 0.. {
            tick.tick().await;
            queue.try_push(window(n));
        }
    });
    tokio::time::sleep(a.outage).await;
    // The endpoint comes back: listen on the port the exporter has been dialling.
    let listener = socket.listen(128).unwrap();
    let up = Instant::now();
    let dropped_before = stats.snapshot().batches_dropped(DropReason::QueueFull);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(
                MetricsServiceServer::new(Sink)
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            )
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    while stats.snapshot().requests_ok == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let recovery = up.elapsed();
    let dropped = stats.snapshot().batches_dropped(DropReason::QueueFull) - dropped_before;
    pusher.abort();
    drop(exporter);
    (recovery, dropped)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    println!(
        "{} trials per mode, outage {} s, a window every {} ms, queue {} windows\n",
        a.trials,
        a.outage.as_secs(),
        a.every.as_millis(),
        a.capacity
    );
    let modes = [
        ("30s-cap", Duration::from_secs(30)),
        ("default", RetryConfig::default().max_backoff_when_filling),
    ];
    let mut runs = Vec::new();
    for (name, cap) in modes {
        for _ in 0..a.trials {
            runs.push((name, tokio::spawn(trial(a, cap))));
        }
    }
    let mut results: Vec<(&str, Vec<(Duration, u64)>)> =
        modes.iter().map(|(n, _)| (*n, Vec::new())).collect();
    for (name, run) in runs {
        let r = run.await.unwrap();
        if let Some((_, v)) = results.iter_mut().find(|(n, _)| *n == name) {
            v.push(r);
        }
    }
    println!(
        "| mode | recovery min | median | mean | max | windows dropped after the endpoint was back (mean) |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, mut v) in results {
        v.sort();
        let secs: Vec<f64> = v.iter().map(|(d, _)| d.as_secs_f64()).collect();
        let mean = secs.iter().sum::<f64>() / secs.len() as f64;
        let dropped = v.iter().map(|(_, d)| *d as f64).sum::<f64>() / v.len() as f64;
        println!(
            "| {name} | {:.1} s | {:.1} s | {:.1} s | {:.1} s | {dropped:.1} |",
            secs.first().copied().unwrap_or(0.0),
            secs.get(secs.len() / 2).copied().unwrap_or(0.0),
            mean,
            secs.last().copied().unwrap_or(0.0),
        );
    }
}
