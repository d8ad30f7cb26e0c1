//! Hostile exporters against a running `flowtel run`: a template storm (every datagram a set of
//! random template ids) or a pending storm (every datagram one large data set of a template
//! that never comes), from thousands of loopback addresses, while the daemon's resident memory
//! is printed every few seconds.
//!
//! ```text
//! flowtel run --listen 127.0.0.1:9995 --sink prometheus &
//! cargo run --release --example decoder_storm -- --pid $! --target 127.0.0.1:9995 \
//!     --exporters 20000 --templates 100 --rate 2000 --secs 60
//! cargo run --release --example decoder_storm -- --pid $! --pending-bytes 65000 --rate 2000
//! ```
//!
//! With `--metrics HOST:PORT` the daemon's `flowtel_templates`, `flowtel_pending_sets`,
//! `flowtel_decode_memory_bytes` and eviction counters are printed beside the memory.

#[path = "../tests/common/storm.rs"]
mod storm;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// The daemon's UDP listen address.
    #[arg(long, default_value = "127.0.0.1:9995")]
    target: SocketAddr,
    /// The daemon's process id, whose resident memory is printed.
    #[arg(long)]
    pid: u32,
    /// The daemon's /metrics address, to print its decoder gauges too.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    #[arg(long, default_value_t = 20_000)]
    exporters: u32,
    /// Template ids per datagram (a template storm).
    #[arg(long, default_value_t = 100)]
    templates: u16,
    /// Send data sets of this many bytes for unknown templates instead (a pending storm).
    #[arg(long)]
    pending_bytes: Option<u16>,
    /// Datagrams per second.
    #[arg(long, default_value_t = 2_000)]
    rate: u32,
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// Seconds between two memory readings.
    #[arg(long, default_value_t = 5)]
    every: u64,
    /// Keep reading memory this many seconds after the storm (expiry, eviction).
    #[arg(long, default_value_t = 0)]
    after: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn metrics(addr: SocketAddr) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(2)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: flowtel\r\nConnection: close\r\n\r\n"
    );
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    let wanted = [
        "flowtel_templates ",
        "flowtel_pending_sets ",
        "flowtel_decode_memory_bytes ",
        "flowtel_decode_evictions_total",
        "flowtel_exporters_known ",
        "flowtel_socket_drops_total ",
    ];
    body.lines()
        .filter(|l| wanted.iter().any(|w| l.starts_with(w)))
        .collect::<Vec<_>>()
        .join("  ")
}

fn report(args: &Args, start: Instant, label: &str) {
    let rss = storm::rss_bytes(args.pid).unwrap_or(0);
    let extra = args.metrics.map(metrics).unwrap_or_default();
    println!(
        "{label} t={:>4}s rss={:>7.1} MiB  {extra}",
        start.elapsed().as_secs(),
        rss as f64 / (1 << 20) as f64
    );
}

fn main() {
    let args = Args::parse();
    let kind = match args.pending_bytes {
        Some(set_bytes) => storm::Kind::Pending { set_bytes },
        None => storm::Kind::Templates {
            templates: args.templates,
        },
    };
    let storm = storm::Storm {
        target: args.target,
        exporters: args.exporters,
        kind,
        rate: args.rate,
        duration: Duration::from_secs(args.secs),
        seed: args.seed,
    };
    let start = Instant::now();
    report(&args, start, "before");
    let mut next = Duration::from_secs(args.every);
    let sent = storm::run(&storm, |_| {
        if start.elapsed() >= next {
            report(&args, start, "storm ");
            next += Duration::from_secs(args.every);
        }
        false
    });
    report(&args, start, "end   ");
    println!(
        "sent {} datagrams ({:.1} MB), {} refused by the kernel",
        sent.datagrams,
        sent.bytes as f64 / 1e6,
        sent.errors
    );
    let quiet = Instant::now();
    while quiet.elapsed() < Duration::from_secs(args.after) {
        std::thread::sleep(Duration::from_secs(args.every.max(1)));
        report(&args, start, "after ");
    }
}
