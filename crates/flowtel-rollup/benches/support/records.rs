//! The synthetic record stream shared by the push bench and the `push_profile` example.

use std::net::{IpAddr, Ipv4Addr};

use flowtel_decode::{FlowProtocol, FlowRecord};

pub const N: usize = 100_000;
pub const T0: u64 = 1_700_000_040_000_000_000;

pub fn records(distinct: u32) -> Vec<FlowRecord> {
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
