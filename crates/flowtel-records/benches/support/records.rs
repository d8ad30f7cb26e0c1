//! The enriched record stream shared by the encode bench and the `encode_profile` example.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use flowtel_decode::{FlowDirection, FlowProtocol, FlowRecord, SamplingSource};
use flowtel_rollup::config::EnrichConfig;
use flowtel_rollup::{EnrichedRecord, Enricher};

pub const N: usize = 10_000;
const T0: u64 = 1_700_000_040_000_000_000;

pub fn records() -> Vec<EnrichedRecord> {
    let mut enricher = Enricher::new(&EnrichConfig::default());
    let mut x: u32 = 0x9e37_79b9;
    (0..N)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let mut r = FlowRecord::new(
                "192.0.2.1:2055".parse().expect("address literal"),
                FlowProtocol::Ipfix,
                T0 + i as u64 * 10_000,
            );
            if i % 10 == 0 {
                r.src_addr = Some(IpAddr::V6(Ipv6Addr::from(
                    0x2001_0db8_u128 << 96 | u128::from(x),
                )));
                r.dst_addr = Some(IpAddr::V6(Ipv6Addr::from(0x2a00_1450_u128 << 96 | 0x200e)));
            } else {
                r.src_addr = Some(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (x & 0xffff))));
                r.dst_addr = Some(IpAddr::V4(Ipv4Addr::from(0x0808_0000 | (x >> 20))));
            }
            r.sequence_num = i as u32;
            r.flow_start_ns = Some(T0 - 30_000_000_000);
            r.flow_end_ns = Some(T0 + i as u64 * 10_000 - 1_000_000);
            r.ip_protocol = [6, 6, 6, 17, 17, 1][(x % 6) as usize];
            r.src_port = 32768 + (x % 20000) as u16;
            r.dst_port = [443, 80, 53, 22, 8080][(x % 5) as usize];
            r.tcp_flags = if r.ip_protocol == 6 { 0x1b } else { 0 };
            r.bytes = 64 + u64::from(x % 1400);
            r.packets = 1 + u64::from(x % 10);
            r.in_if = Some(1 + x % 48);
            r.out_if = Some(100);
            r.direction = Some(FlowDirection::Ingress);
            r.src_prefix_len = Some(24);
            r.dst_prefix_len = Some(16);
            r.next_hop = Some("192.0.2.254".parse().expect("address literal"));
            r.sampling_rate = Some(100);
            r.sampling_source = SamplingSource::Options;
            enricher.enrich(&r, None).to_record()
        })
        .collect()
}
