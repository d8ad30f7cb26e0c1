//! A fixed amount of receive-worker work (decode → enrich → default rollup) on the committed
//! captures, for instruction-count profiling:
//!
//! ```text
//! cargo build --profile bench -p flowtel --example pipeline_profile
//! valgrind --tool=callgrind target/release/examples/pipeline_profile netflow_v9 2000
//! ```
//!
//! Arguments: the mix (`netflow_v9`, `ipfix` or `sflow`, as in `benches/pipeline.rs`), the
//! number of passes over its datagrams (default 2000) and, optionally, a GeoIP country
//! database (`.mmdb`) to enrich with. Prints the records processed.

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
    let Some((_, captures)) = support::MIXES.iter().find(|(n, _)| *n == mix) else {
        eprintln!("unknown mix {mix}");
        std::process::exit(2);
    };
    let datagrams = support::datagrams(captures);
    let mut config = Config::default();
    config.enrichment.geoip_country_db = args.next().map(Into::into);
    let spec = PipelineSpec::from_config(&config).expect("default pipeline");
    let mut p = WorkerPipeline::new(&spec).expect("pipeline");
    let mut stats = WorkerStats::default();
    for pass in 0..passes {
        for (from, d) in &datagrams {
            p.process(
                *from,
                ExporterKey::new(from.ip()),
                true,
                d,
                pass + 1,
                &mut stats,
            );
        }
    }
    let windows = p.flush(passes + 1, true, &mut stats);
    println!(
        "records {}, windows {}",
        stats.by_protocol().total().records,
        windows.rollups.len()
    );
}
