//! A fixed amount of receive-worker work (decode → enrich → default rollup) on the committed
//! captures, for instruction-count profiling:
//!
//! ```text
//! cargo build --profile bench -p flowtel --example pipeline_profile
//! valgrind --tool=callgrind target/release/examples/pipeline_profile netflow_v9 2000
//! ```
//!
//! Arguments: the mix (`netflow_v9`, `ipfix` or `sflow`, as in `benches/pipeline.rs`, or the
//! path of a capture, e.g. of `flowtel generate`'s traffic), the number of passes over its
//! datagrams (default 2000) and, optionally, a GeoIP country database (`.mmdb`) to enrich
//! with. Prints the records processed.
//!
//! A mix's datagrams all fall in one window. A capture is replayed at its own timestamps (each
//! pass after the one before) as the daemon takes it in `examples/loadtest.sh`: windows of
//! 5 s, the closed ones flushed and finished every second. To capture the load test's traffic,
//! run `dumpcap -i lo -f 'udp dst port 2055' -w mix.pcapng` while `flowtel generate --target
//! 127.0.0.1:2055 --rate 150000 --duration 10 --exporters 12` sends to a `flowtel run`.
//!
//! To see what the daemon's receive pauses cost the work between them, `PAUSE_EVERY=N
//! PAUSE_US=U` pauses U µs after every N datagrams: a sleep, as the daemon's worker sleeps, or
//! with `PAUSE_SPIN=1` a busy wait that keeps the core awake. The wall time spent processing
//! (pauses excluded) is printed on stderr; pinned to one core (`taskset -c 0`), it is the
//! processing's CPU time. For the load test's traffic at 150 000 records/s and the default
//! pause of 50 ms: `PAUSE_EVERY=660 PAUSE_US=50000`.

use flowtel::config::Config;
use flowtel::pipeline::stats::WorkerStats;
use flowtel::pipeline::{PipelineSpec, WorkerPipeline};
use flowtel_decode::prehash::ExporterKey;

#[path = "../benches/support.rs"]
mod support;

fn main() {
    let mut args = std::env::args().skip(1);
    let mix = args.next().unwrap_or_else(|| "netflow_v9".to_owned());
    let passes: u64 = args.next().and_then(|p| p.parse().ok()).unwrap_or(2000);
    let capture = !support::MIXES.iter().any(|(n, _)| *n == mix);
    let datagrams: Vec<(std::net::SocketAddr, Vec<u8>, u64)> =
        if let Some((_, captures)) = support::MIXES.iter().find(|(n, _)| *n == mix) {
            support::datagrams(captures)
                .into_iter()
                .map(|(from, d)| (from, d, 0))
                .collect()
        } else {
            match flowtel_pcap::read_all(&mix) {
                Ok(c) => {
                    let first = c.first().map_or(0, |d| d.timestamp_ns);
                    c.into_iter()
                        .map(|d| (d.src, d.payload, d.timestamp_ns.saturating_sub(first)))
                        .collect()
                }
                Err(e) => {
                    eprintln!("{mix}: neither a mix nor a capture: {e}");
                    std::process::exit(2);
                }
            }
        };
    let span = datagrams.last().map_or(0, |d| d.2) + 1;
    let mut config = Config::default();
    config.enrichment.geoip_country_db = args.next().map(Into::into);
    if capture {
        config.rollup_interval_secs = Some(5);
    }
    let spec = PipelineSpec::from_config(&config).expect("default pipeline");
    let mut p = WorkerPipeline::new(&spec).expect("pipeline");
    let mut stats = WorkerStats::default();
    let mut finished = std::collections::BTreeMap::new();
    let mut last_flush = 0;
    let pause = Pause::from_env();
    let mut work = std::time::Duration::ZERO;
    let mut since = std::time::Instant::now();
    let mut n = 0usize;
    for pass in 0..passes {
        for (from, d, at) in &datagrams {
            n += 1;
            if pause.every > 0 && n.is_multiple_of(pause.every) {
                work += since.elapsed();
                pause.take();
                since = std::time::Instant::now();
            }
            let now = pass * span + at + 1;
            p.process(*from, ExporterKey::new(from.ip()), true, d, now, &mut stats);
            if capture && now - last_flush >= 1_000_000_000 {
                last_flush = now;
                p.flush(now, false, &mut stats).finish(&mut finished);
            }
        }
    }
    work += since.elapsed();
    eprintln!("processing {:.1} ms", work.as_secs_f64() * 1e3);
    let windows = p.flush(passes * span + 1, true, &mut stats);
    println!(
        "records {}, windows {}",
        stats.by_protocol().total().records,
        windows.rollups.len()
    );
}

/// A pause every `every` datagrams (0: none), from the environment (see the top of the file).
struct Pause {
    every: usize,
    length: std::time::Duration,
    spin: bool,
}

impl Pause {
    fn from_env() -> Pause {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        Pause {
            every: var("PAUSE_EVERY").unwrap_or(0) as usize,
            length: std::time::Duration::from_micros(var("PAUSE_US").unwrap_or(0)),
            spin: var("PAUSE_SPIN").is_some_and(|s| s != 0),
        }
    }

    fn take(&self) {
        if !self.spin {
            std::thread::sleep(self.length);
            return;
        }
        let start = std::time::Instant::now();
        while start.elapsed() < self.length {
            std::hint::spin_loop();
        }
    }
}
