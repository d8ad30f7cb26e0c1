//! What real devices send: behaviours of real exporters that the RFC layouts allow and that a
//! collector must read right. Each test builds its datagram byte by byte from the RFC (or the
//! vendor's documented layout) and asserts the decoded values.

#[path = "support/builder.rs"]
mod builder;

use std::net::{IpAddr, SocketAddr};

use builder::{Msg, f, rec};
use flowtel_decode::{DecodeOutput, Decoder, DecoderConfig, FlowRecord};

const EXPORT_SECS: u32 = 1_700_000_000;
const EXPORT_NS: u64 = EXPORT_SECS as u64 * 1_000_000_000;

fn exporter() -> SocketAddr {
    "192.0.2.1:2055".parse().unwrap()
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

fn decode_with(config: DecoderConfig, datagrams: &[Vec<u8>]) -> Vec<FlowRecord> {
    let mut dec = Decoder::new(config);
    let mut out = DecodeOutput::default();
    for d in datagrams {
        let report = dec.decode(exporter(), d, EXPORT_NS, &mut out);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
    }
    out.flows
}

fn decode(datagrams: &[Vec<u8>]) -> Vec<FlowRecord> {
    decode_with(DecoderConfig::default(), datagrams)
}

/// A NetFlow v5 header (Cisco "NetFlow Export Datagram Format", v5 header table).
fn v5_header(count: u16, sys_uptime_ms: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&5u16.to_be_bytes());
    h.extend_from_slice(&count.to_be_bytes());
    h.extend_from_slice(&sys_uptime_ms.to_be_bytes());
    h.extend_from_slice(&EXPORT_SECS.to_be_bytes());
    h.extend_from_slice(&0u32.to_be_bytes()); // unix_nsecs
    h.extend_from_slice(&0u32.to_be_bytes()); // flow_sequence
    h.extend_from_slice(&[0, 0]); // engine type, engine id
    h.extend_from_slice(&0u16.to_be_bytes()); // sampling_interval
    h
}

/// A NetFlow v5 flow record (48 bytes).
fn v5_record(proto: u8, sport: u16, dport: u16, first: u32, last: u32) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(&[10, 0, 0, 1]); // srcaddr
    r.extend_from_slice(&[10, 0, 0, 2]); // dstaddr
    r.extend_from_slice(&[0, 0, 0, 0]); // nexthop
    r.extend_from_slice(&1u16.to_be_bytes()); // input
    r.extend_from_slice(&2u16.to_be_bytes()); // output
    r.extend_from_slice(&1u32.to_be_bytes()); // dPkts
    r.extend_from_slice(&84u32.to_be_bytes()); // dOctets
    r.extend_from_slice(&first.to_be_bytes());
    r.extend_from_slice(&last.to_be_bytes());
    r.extend_from_slice(&sport.to_be_bytes());
    r.extend_from_slice(&dport.to_be_bytes());
    r.push(0); // pad1
    r.push(0); // tcp_flags
    r.push(proto);
    r.push(0); // tos
    r.extend_from_slice(&[0; 4]); // src_as, dst_as
    r.extend_from_slice(&[0; 2]); // masks
    r.extend_from_slice(&[0; 2]); // pad2
    assert_eq!(r.len(), 48);
    r
}

#[test]
fn v5_uptimes_after_the_header_and_across_the_wrap_are_signed_differences() {
    // Header uptime 1000 ms. Record 1 ends 5 ms *after* it; record 2 starts 1000 ms before a
    // header sent 100 ms after the 32-bit uptime counter wrapped.
    let mut d = v5_header(1, 1000);
    d.extend(v5_record(6, 1, 2, 900, 1005));
    let mut wrapped = v5_header(1, 100);
    wrapped.extend(v5_record(6, 1, 2, u32::MAX - 899, 50));
    let flows = decode(&[d, wrapped]);
    assert_eq!(flows[0].flow_start_ns, Some(EXPORT_NS - 100_000_000));
    assert_eq!(flows[0].flow_end_ns, Some(EXPORT_NS + 5_000_000));
    assert_eq!(flows[1].flow_start_ns, Some(EXPORT_NS - 1_000_000_000));
    assert_eq!(flows[1].flow_end_ns, Some(EXPORT_NS - 50_000_000));
}

#[test]
fn v9_uptimes_after_the_header_and_across_the_wrap_are_signed_differences() {
    // RFC 3954 §8: LAST_SWITCHED (21) and FIRST_SWITCHED (22) are sysUpTime milliseconds.
    let fields = [f(8, 4), f(12, 4), f(22, 4), f(21, 4)];
    let after = Msg::v9(1, 1000, EXPORT_SECS)
        .template(256, &fields)
        .data(
            256,
            &[rec(&[
                &[10, 0, 0, 1],
                &[10, 0, 0, 2],
                &990u32.to_be_bytes(),
                &1003u32.to_be_bytes(),
            ])],
        )
        .build();
    let wrapped = Msg::v9(1, 20, EXPORT_SECS)
        .data(
            256,
            &[rec(&[
                &[10, 0, 0, 1],
                &[10, 0, 0, 2],
                &(u32::MAX - 979).to_be_bytes(),
                &10u32.to_be_bytes(),
            ])],
        )
        .build();
    let flows = decode(&[after, wrapped]);
    assert_eq!(flows[0].flow_start_ns, Some(EXPORT_NS - 10_000_000));
    assert_eq!(flows[0].flow_end_ns, Some(EXPORT_NS + 3_000_000));
    assert_eq!(flows[1].flow_start_ns, Some(EXPORT_NS - 1_000_000_000));
    assert_eq!(flows[1].flow_end_ns, Some(EXPORT_NS - 10_000_000));
    assert_eq!(flows[1].src_addr, ip("10.0.0.1"));
}
