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

#[test]
fn integers_of_any_size_are_read_when_the_value_fits() {
    // PROTOCOL (4) and the ports in 4 bytes, octetDeltaCount in 16 bytes (RFC 7011 §6.2 allows
    // shorter; exporters also send longer). Record 2's protocol (300) and counter (2^64) do not
    // fit: those fields stay unset and are counted, the rest of the record is kept.
    let fields = [f(8, 4), f(4, 4), f(7, 4), f(11, 4), f(1, 16), f(2, 3)];
    let big = {
        let mut c = [0u8; 16];
        c[7] = 1; // 2^64
        c
    };
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut out = DecodeOutput::default();
    let d = Msg::ipfix(1, EXPORT_SECS)
        .template(300, &fields)
        .data(
            300,
            &[
                rec(&[
                    &[10, 0, 0, 1],
                    &6u32.to_be_bytes(),
                    &443u32.to_be_bytes(),
                    &51000u32.to_be_bytes(),
                    &1500u128.to_be_bytes(),
                    &[0, 0, 3],
                ]),
                rec(&[
                    &[10, 0, 0, 1],
                    &300u32.to_be_bytes(),
                    &53u32.to_be_bytes(),
                    &53u32.to_be_bytes(),
                    &big,
                    &[0, 1, 0],
                ]),
            ],
        )
        .build();
    let report = dec.decode(exporter(), &d, EXPORT_NS, &mut out);
    assert!(report.errors.is_empty());
    let r = &out.flows[0];
    assert_eq!((r.ip_protocol, r.src_port, r.dst_port), (6, 443, 51000));
    assert_eq!((r.bytes, r.packets), (1500, 3));
    let r = &out.flows[1];
    assert_eq!((r.ip_protocol, r.src_port, r.dst_port), (0, 53, 53));
    assert_eq!((r.bytes, r.packets), (0, 256));
    assert_eq!(dec.stats().fields_out_of_range, 2);
}

#[test]
fn icmp_type_and_code_are_the_same_from_every_protocol() {
    // An echo request (type 8, code 0) and a port unreachable (3/3): NetFlow v5 and v9 carry
    // them as destination port type*256+code, IPFIX as icmpTypeCodeIPv4 (IE 32) or
    // icmpTypeIPv4/icmpCodeIPv4 (IE 176/177). All give the same fields and ports 0.
    let mut v5 = v5_header(2, 1000);
    v5.extend(v5_record(1, 0, 8 << 8, 900, 950));
    v5.extend(v5_record(1, 0, (3 << 8) | 3, 900, 950));
    let v9 = Msg::v9(1, 1000, EXPORT_SECS)
        .template(256, &[f(8, 4), f(4, 1), f(7, 2), f(11, 2)])
        .data(
            256,
            &[
                rec(&[
                    &[10, 0, 0, 1],
                    &[1],
                    &0u16.to_be_bytes(),
                    &0x0800u16.to_be_bytes(),
                ]),
                rec(&[
                    &[10, 0, 0, 1],
                    &[1],
                    &0u16.to_be_bytes(),
                    &0x0303u16.to_be_bytes(),
                ]),
            ],
        )
        .build();
    let ipfix = Msg::ipfix(1, EXPORT_SECS)
        .template(256, &[f(8, 4), f(4, 1), f(32, 2)])
        .template(
            257,
            &[f(8, 4), f(4, 1), f(7, 2), f(11, 2), f(176, 1), f(177, 1)],
        )
        .data(
            256,
            &[rec(&[&[10, 0, 0, 1], &[1], &0x0800u16.to_be_bytes()])],
        )
        .data(
            257,
            &[rec(&[
                &[10, 0, 0, 1],
                &[1],
                &0u16.to_be_bytes(),
                &0x0303u16.to_be_bytes(),
                &[3],
                &[3],
            ])],
        )
        .build();
    let flows = decode(&[v5, v9, ipfix]);
    let seen: Vec<_> = flows
        .iter()
        .map(|r| (r.icmp_type, r.icmp_code, r.src_port, r.dst_port))
        .collect();
    let echo = (Some(8), Some(0), 0, 0);
    let unreachable = (Some(3), Some(3), 0, 0);
    assert_eq!(
        seen,
        [echo, unreachable, echo, unreachable, echo, unreachable]
    );
}

#[test]
fn a_field_repeated_in_a_template_is_read_from_its_first_occurrence() {
    // RFC 7011 §8: repeated elements follow the Metering Process's order; the first one is
    // what was observed. The second sourceIPv4Address and octetDeltaCount are kept raw only.
    let fields = [f(8, 4), f(8, 4), f(1, 4), f(1, 4)];
    let d = Msg::ipfix(1, EXPORT_SECS)
        .template(256, &fields)
        .data(
            256,
            &[rec(&[
                &[10, 0, 0, 1],
                &[192, 0, 2, 9],
                &100u32.to_be_bytes(),
                &7u32.to_be_bytes(),
            ])],
        )
        .build();
    let flows = decode(std::slice::from_ref(&d));
    assert_eq!((flows[0].src_addr, flows[0].bytes), (ip("10.0.0.1"), 100));
    assert!(flows[0].unknown_fields.is_empty());
    let kept = decode_with(
        DecoderConfig {
            keep_unknown_fields: true,
            ..DecoderConfig::default()
        },
        &[d],
    );
    let raw: Vec<_> = kept[0]
        .unknown_fields
        .iter()
        .map(|f| (f.id, f.value.clone()))
        .collect();
    assert_eq!(raw, [(8, vec![192, 0, 2, 9]), (1, vec![0, 0, 0, 7])]);
}
