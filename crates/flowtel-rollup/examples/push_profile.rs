//! A fixed amount of enrich + rollup work for instruction-count profiling, the same record
//! mixes as `benches/push.rs`:
//!
//! ```text
//! cargo build --profile bench -p flowtel-rollup --example push_profile
//! valgrind --tool=callgrind target/release/examples/push_profile 5k_flows
//! ```
//!
//! Arguments: `5k_flows` (default), `random_sources` or a number of distinct flows (200000
//! gives a window of about 80 000 keys, beyond the core's own caches), then the number of
//! passes over the 100 000 records (default 3) and, optionally, a GeoIP country database
//! (`.mmdb`) to enrich with. Prints the keys tracked so the work is not optimised away.

use std::sync::Arc;

use flowtel_rollup::{CountryDb, EnrichConfig, Enricher, RollupConfig, RollupSet};

#[path = "../benches/support/records.rs"]
mod records;
use records::{Sets, flows};

fn main() {
    let mut args = std::env::args().skip(1);
    let distinct = match args.next().as_deref() {
        Some("random_sources") => u32::MAX,
        // `5k_flows` or a number of distinct flows.
        Some(n) => n.parse().ok().filter(|n| *n > 0).unwrap_or(5_000),
        None => 5_000,
    };
    let passes: usize = args.next().and_then(|p| p.parse().ok()).unwrap_or(3);
    let flows = flows(distinct);
    let mut set = RollupSet::new(&[RollupConfig::default()]).expect("default rollup is valid");
    // As the daemon's metrics-only pipeline: countries are looked up for the emitted series.
    let mut enricher =
        Enricher::new(&EnrichConfig::default()).with_countries(set.needs_countries());
    if let Some(path) = args.next() {
        let bytes = std::fs::read(&path).expect("country database readable");
        let db = Arc::new(CountryDb::from_bytes(bytes).expect("a MaxMind-format database"));
        enricher = enricher.with_country_db(Arc::clone(&db));
        set.set_country_db(Some(db));
    }
    // A data set's records at a time, as the push bench and the daemon.
    let mut sets = Sets::new();
    for _ in 0..passes {
        sets.each(&flows, |records| {
            enricher.enrich_each(records, None, |e| set.push(e));
        });
    }
    let keys = set.rollups().first().map_or(0, |r| r.keys_tracked());
    let points: usize = set.flush_all().iter().map(|b| b.points.len()).sum();
    println!("keys tracked {keys}, points {points}");
}
