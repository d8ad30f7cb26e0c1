//! A fixed amount of enrich + rollup work for instruction-count profiling, the same record
//! mixes as `benches/push.rs`:
//!
//! ```text
//! cargo build --profile bench -p flowtel-rollup --example push_profile
//! valgrind --tool=callgrind target/release/examples/push_profile 5k_flows
//! ```
//!
//! Arguments: `5k_flows` (default) or `random_sources`, then the number of passes over the
//! 100 000 records (default 3). Prints the keys tracked so the work is not optimised away.

use std::net::{IpAddr, Ipv4Addr};

use flowtel_decode::{FlowProtocol, FlowRecord};
use flowtel_rollup::{EnrichConfig, Enricher, RollupConfig, RollupSet};

const N: usize = 100_000;
const T0: u64 = 1_700_000_040_000_000_000;

fn records(distinct: u32) -> Vec<FlowRecord> {
    let mut x: u32 = 0x9e37_79b9;
    (0..N)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let flow = x % distinct;
            let mut r = FlowRecord::new(
                "192.0.2.1:2055".parse().expect("address literal"),
                FlowProtocol::Ipfix,
                T0 + i as u64 * 10_000,
            );
            r.src_addr = Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (flow & 0xffff))));
            r.dst_addr = Some(IpAddr::V4(Ipv4Addr::from(0x0808_0000 | (flow >> 4))));
            r.ip_protocol = if flow.is_multiple_of(5) { 17 } else { 6 };
            r.src_port = 32768 + (flow % 20000) as u16;
            r.dst_port = [443, 80, 53, 22, 8080][(flow % 5) as usize];
            r.bytes = 64 + u64::from(x % 1400);
            r.packets = 1;
            r.sampling_rate = Some(100);
            r
        })
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let distinct = match args.next().as_deref() {
        Some("random_sources") => u32::MAX,
        _ => 5_000,
    };
    let passes: usize = args.next().and_then(|p| p.parse().ok()).unwrap_or(3);
    let recs = records(distinct);
    let mut enricher = Enricher::new(&EnrichConfig::default());
    let mut set = RollupSet::new(&[RollupConfig::default()]).expect("default rollup is valid");
    for _ in 0..passes {
        for r in &recs {
            let e = enricher.enrich(r, None);
            set.push(&e);
        }
    }
    let keys = set.rollups().first().map_or(0, |r| r.keys_tracked());
    let points: usize = set.flush_all().iter().map(|b| b.points.len()).sum();
    println!("keys tracked {keys}, points {points}");
}
