//! The synthetic record stream shared by the push bench and the `push_profile` example.
//!
//! The flows are kept compact ([`Flow`], 32 bytes) and written into a few reused records a
//! data set at a time ([`Sets`]), as the daemon's decoder writes each datagram's records
//! into records it keeps in the core's first-level cache. A hundred thousand whole records
//! (640 bytes each, 64 MB) read from memory would measure the memory's bandwidth, several
//! cache misses a record, rather than the enricher and the rollup.

use std::net::{IpAddr, Ipv4Addr};

use flowtel_decode::{FlowProtocol, FlowRecord};

pub const N: usize = 100_000;
pub const T0: u64 = 1_700_000_040_000_000_000;

/// Records handed to the enricher at a time, as the daemon's decoder hands over a data set's
/// records: softflowd's NetFlow v9 data sets hold about four.
pub const RECORDS_PER_SET: usize = 4;

/// What varies from one record of the stream to the next.
#[derive(Debug, Clone, Copy)]
pub struct Flow {
    src: u32,
    dst: u32,
    bytes: u64,
    time_ns: u64,
    src_port: u16,
    dst_port: u16,
    proto: u8,
}

/// `N` flows over `distinct` keys (`u32::MAX`: nearly every flow a key of its own).
pub fn flows(distinct: u32) -> Vec<Flow> {
    let mut x: u32 = 0x9e37_79b9;
    (0..N)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let flow = x % distinct;
            Flow {
                src: 0x0a00_0000 | (flow & 0xffff),
                dst: 0x0808_0000 | (flow >> 4),
                proto: if flow.is_multiple_of(5) { 17 } else { 6 },
                src_port: 32768 + (flow % 20000) as u16,
                dst_port: [443, 80, 53, 22, 8080][(flow % 5) as usize],
                bytes: 64 + u64::from(x % 1400),
                time_ns: T0 + i as u64 * 10_000,
            }
        })
        .collect()
}

/// The reused records a data set's flows are written into.
pub struct Sets {
    records: Vec<FlowRecord>,
}

impl Sets {
    pub fn new() -> Self {
        let mut r = FlowRecord::new(
            "192.0.2.1:2055".parse().expect("address literal"),
            FlowProtocol::Ipfix,
            T0,
        );
        r.packets = 1;
        r.sampling_rate = Some(100);
        Sets {
            records: vec![r; RECORDS_PER_SET],
        }
    }

    /// Call `each` with every data set of `flows`, written into the reused records.
    pub fn each(&mut self, flows: &[Flow], mut each: impl FnMut(&[FlowRecord])) {
        for set in flows.chunks(RECORDS_PER_SET) {
            for (r, f) in self.records.iter_mut().zip(set) {
                r.src_addr = Some(IpAddr::V4(Ipv4Addr::from(f.src)));
                r.dst_addr = Some(IpAddr::V4(Ipv4Addr::from(f.dst)));
                r.ip_protocol = f.proto;
                r.src_port = f.src_port;
                r.dst_port = f.dst_port;
                r.bytes = f.bytes;
                r.time_received_ns = f.time_ns;
            }
            each(self.records.get(..set.len()).unwrap_or_default());
        }
    }
}
