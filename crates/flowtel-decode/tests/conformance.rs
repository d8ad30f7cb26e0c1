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
fn a_field_repeated_in_a_template_is_read_from_its_last_occurrence() {
    // RFC 7011 §8: repeated elements follow the Metering Process's order; SRv6 exporters put
    // the inner packet's fields after the outer header's, and pmacct reads the last. The first
    // sourceIPv4Address and octetDeltaCount are kept raw only.
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
    assert_eq!((flows[0].src_addr, flows[0].bytes), (ip("192.0.2.9"), 7));
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
    assert_eq!(raw, [(8, vec![10, 0, 0, 1]), (1, vec![0, 0, 0, 100])]);
}

/// XDR (RFC 4506) writer for sFlow v5 datagrams ("sFlow Version 5", sflow.org, 2004).
fn w32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// An opaque structure: its format word, its length, its body (padded to 4 bytes).
fn tlv(format: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    w32(&mut out, format);
    w32(&mut out, body.len() as u32);
    out.extend_from_slice(body);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out
}

/// An sFlow v5 datagram from agent 192.0.2.10 holding `samples` (each already a TLV).
fn sflow_datagram(samples: &[Vec<u8>]) -> Vec<u8> {
    let mut d = Vec::new();
    w32(&mut d, 5); // version
    w32(&mut d, 1); // address type IPv4
    d.extend_from_slice(&[192, 0, 2, 10]);
    w32(&mut d, 0); // sub-agent id
    w32(&mut d, 1); // sequence
    w32(&mut d, 1000); // uptime
    w32(&mut d, samples.len() as u32);
    for s in samples {
        d.extend_from_slice(s);
    }
    d
}

/// A compact flow sample (format 1) at 1-in-`rate` holding `records` (each a TLV).
fn flow_sample(rate: u32, records: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Vec::new();
    w32(&mut b, 7); // sequence
    w32(&mut b, 3); // source id: ifIndex 3
    w32(&mut b, rate);
    w32(&mut b, 1000); // sample pool
    w32(&mut b, 0); // drops
    w32(&mut b, 3); // input
    w32(&mut b, 4); // output
    w32(&mut b, records.len() as u32);
    for r in records {
        b.extend_from_slice(r);
    }
    tlv(1, &b)
}

/// Flow record 1, `sampled_header` of an Ethernet frame.
fn raw_header(frame_length: u32, header: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    w32(&mut b, 1); // header_protocol: ethernet
    w32(&mut b, frame_length);
    w32(&mut b, 4); // stripped (FCS)
    w32(&mut b, header.len() as u32);
    b.extend_from_slice(header);
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
    tlv(1, &b)
}

/// Flow record 1003, `extended_gateway`.
fn gateway(router_as: u32, src_as: u32, path: &[u32]) -> Vec<u8> {
    let mut b = Vec::new();
    w32(&mut b, 1);
    b.extend_from_slice(&[192, 0, 2, 254]); // nexthop
    w32(&mut b, router_as);
    w32(&mut b, src_as);
    w32(&mut b, 64999); // src_peer_as
    if path.is_empty() {
        w32(&mut b, 0);
    } else {
        w32(&mut b, 1); // one segment
        w32(&mut b, 2); // AS_SEQUENCE
        w32(&mut b, path.len() as u32);
        for a in path {
            w32(&mut b, *a);
        }
    }
    w32(&mut b, 0); // communities
    w32(&mut b, 100); // localpref
    tlv(1003, &b)
}

/// Flow record 1001, `extended_switch`.
fn switch(src_vlan: u32, dst_vlan: u32) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [src_vlan, 0, dst_vlan, 0] {
        w32(&mut b, v);
    }
    tlv(1001, &b)
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const MACS: &str = "0000 5e00 5301 0000 5e00 5302";

/// QinQ (802.1ad 100, 802.1Q 200), IPv4 UDP 53 -> 54321, total length 0x30 (48), TTL 64.
fn qinq_udp() -> Vec<u8> {
    hex(&format!(
        "{MACS} 88a8 0064 8100 00c8 0800 \
         4500 0030 1234 4000 4011 0000 c000 0201 c000 0202 \
         0035 d431 001c 0000"
    ))
}

#[test]
fn sflow_gateway_as_numbers_follow_the_router_own_as() {
    // sFlow v5 extended gateway: src_as 0 means the router's own AS; an empty destination
    // path means the destination is in the router's own AS.
    let local = flow_sample(100, &[raw_header(66, &qinq_udp()), gateway(65000, 0, &[])]);
    let transit = flow_sample(
        100,
        &[
            raw_header(66, &qinq_udp()),
            gateway(65000, 64512, &[3356, 15169]),
        ],
    );
    let flows = decode(&[sflow_datagram(&[local, transit])]);
    let ases: Vec<_> = flows
        .iter()
        .map(|r| (r.src_as, r.dst_as, r.next_hop_as))
        .collect();
    assert_eq!(
        ases,
        [
            (Some(65000), Some(65000), None),
            (Some(64512), Some(15169), Some(3356))
        ]
    );
}

#[test]
fn sflow_switch_vlans_qinq_and_header_fields() {
    // QinQ: `vlan` is the outer (service) tag, where the packet was sampled; the customer tag
    // is `inner_vlan`. The extended switch record's VLANs are src_vlan / dst_vlan, and its
    // incoming VLAN, when valid, is `vlan` (the agent's own view wins over the header's).
    let sample = flow_sample(512, &[raw_header(70, &qinq_udp())]);
    let switched = flow_sample(512, &[raw_header(70, &qinq_udp()), switch(10, 20)]);
    let flows = decode(&[sflow_datagram(&[sample, switched])]);
    let r = &flows[0];
    assert_eq!((r.vlan, r.inner_vlan), (Some(100), Some(200)));
    assert_eq!((r.src_vlan, r.dst_vlan), (None, None));
    assert_eq!((r.src_addr, r.dst_addr), (ip("192.0.2.1"), ip("192.0.2.2")));
    assert_eq!((r.ip_protocol, r.src_port, r.dst_port), (17, 53, 54321));
    assert_eq!(
        (r.etype, r.ip_ttl, r.fragment_id),
        (Some(0x0800), Some(64), Some(0x1234))
    );
    assert_eq!(
        (r.ip_flags, r.fragment_offset),
        (Some(2), Some(0)),
        "DF set"
    );
    assert_eq!((r.bytes, r.packets, r.sampling_rate), (70, 1, Some(512)));
    let r = &flows[1];
    assert_eq!((r.vlan, r.inner_vlan), (Some(10), Some(200)));
    assert_eq!((r.src_vlan, r.dst_vlan), (Some(10), Some(20)));
}

#[test]
fn sflow_bytes_count_the_frame_or_the_ip_packet() {
    // The agent reports the frame at layer 2 (70: 14 MAC header + 8 tags + 48 IP);
    // `sflow_bytes: ip` counts the IPv4 total length (48), as a NetFlow exporter would.
    let d = sflow_datagram(&[flow_sample(512, &[raw_header(70, &qinq_udp())])]);
    let frame = decode(std::slice::from_ref(&d));
    let ip_len = decode_with(
        DecoderConfig {
            sflow_bytes: flowtel_decode::SflowBytes::Ip,
            ..DecoderConfig::default()
        },
        &[d],
    );
    assert_eq!((frame[0].bytes, ip_len[0].bytes), (70, 48));
}

#[test]
fn ipfix_parity_fields_are_read_from_their_elements() {
    // The IEs goflow2's FlowMessage maps, mapped the same way.
    let fields = [
        f(27, 16), // sourceIPv6Address
        f(28, 16), // destinationIPv6Address
        f(192, 1), // ipTTL
        f(89, 1),  // forwardingStatus
        f(31, 4),  // flowLabelIPv6
        f(54, 4),  // fragmentIdentification
        f(88, 2),  // fragmentOffset
        f(197, 1), // fragmentFlags
        f(58, 2),  // vlanId
        f(59, 2),  // postVlanId
        f(245, 2), // dot1qCustomerVlanId
        f(70, 3),  // mplsTopLabelStackSection
        f(71, 3),  // mplsLabelStackSection2
        f(128, 4), // bgpNextAdjacentAsNumber
        f(138, 4), // observationPointId
        f(256, 2), // ethernetType
    ];
    let d = Msg::ipfix(1, EXPORT_SECS)
        .template(256, &fields)
        .data(
            256,
            &[rec(&[
                &"2001:db8::1"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets(),
                &"2001:db8::2"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets(),
                &[57],
                &[0x40 | 1],
                &0x000a_bcdeu32.to_be_bytes(),
                &77u32.to_be_bytes(),
                &185u16.to_be_bytes(),
                &[0x20], // MF
                &100u16.to_be_bytes(),
                &200u16.to_be_bytes(),
                &300u16.to_be_bytes(),
                &[0x01, 0xf4, 0x00], // label 8000, S = 0
                &[0x00, 0x01, 0x11], // label 17, S = 1
                &3356u32.to_be_bytes(),
                &9u32.to_be_bytes(),
                &0x86ddu16.to_be_bytes(),
            ])],
        )
        .build();
    let r = &decode(&[d])[0];
    assert_eq!((r.ip_ttl, r.forwarding_status), (Some(57), Some(0x41)));
    assert_eq!(r.ipv6_flow_label, Some(0xabcde));
    assert_eq!(
        (r.fragment_id, r.fragment_offset, r.ip_flags),
        (Some(77), Some(185), Some(1))
    );
    assert_eq!(
        (r.vlan, r.src_vlan, r.dst_vlan, r.inner_vlan),
        (Some(100), Some(100), Some(200), Some(300))
    );
    assert_eq!(
        (r.mpls_labels.as_slice(), r.mpls_top_label),
        (&[8000, 17][..], Some(8000))
    );
    assert_eq!(
        (r.next_hop_as, r.observation_point_id, r.etype),
        (Some(3356), Some(9), Some(0x86dd))
    );
}

#[test]
fn ipfix_ip_header_and_payload_sections_are_parsed() {
    // RFC 5477 IE 313 ipHeaderPacketSection (from the IP header on) and IE 314
    // ipPayloadPacketSection (from the transport header on, with protocolIdentifier given).
    let ipv6 = hex(
        "6123 4567 0014 0640 2001 0db8 0000 0000 0000 0000 0000 0001 \
         2001 0db8 0000 0000 0000 0000 0000 0002 \
         c000 0050 0000 0000 0000 0000 5002 0000",
    );
    let tcp = hex("c001 01bb 0000 0000 0000 0000 5012 0000");
    let d = Msg::ipfix(1, EXPORT_SECS)
        .template(256, &[f(313, 0xFFFF)])
        .template(257, &[f(8, 4), f(12, 4), f(4, 1), f(314, 0xFFFF)])
        .data(256, &[rec(&[&[ipv6.len() as u8], &ipv6])])
        .data(
            257,
            &[rec(&[
                &[10, 0, 0, 1],
                &[10, 0, 0, 2],
                &[6],
                &[tcp.len() as u8],
                &tcp,
            ])],
        )
        .build();
    let flows = decode(&[d]);
    let r = &flows[0];
    assert_eq!(
        (r.src_addr, r.dst_addr),
        (ip("2001:db8::1"), ip("2001:db8::2"))
    );
    assert_eq!(
        (r.ip_protocol, r.src_port, r.dst_port, r.tcp_flags),
        (6, 49152, 80, 0x02)
    );
    assert_eq!(
        (r.tos, r.ipv6_flow_label, r.ip_ttl),
        (0x12, Some(0x34567), Some(64))
    );
    assert_eq!((r.bytes, r.packets), (60, 1), "IPv6 payload length 20 + 40");
    let r = &flows[1];
    assert_eq!((r.src_port, r.dst_port, r.tcp_flags), (49153, 443, 0x12));
    assert_eq!(
        (r.bytes, r.packets),
        (16, 1),
        "only the captured section is known"
    );
}

const REV: u32 = 29305;

#[test]
fn rfc5103_reverse_elements_all_reach_the_reverse_record() {
    // RFC 5103 §6.1: the reverse IEs are the forward numbers under PEN 29305. Every one with
    // a forward meaning (here counters, TCP flags, ToS, TTL, end time) lands on the reverse
    // record; addresses, ports and interfaces are swapped.
    let fields = [
        f(8, 4),
        f(12, 4),
        f(7, 2),
        f(11, 2),
        f(4, 1),
        f(10, 4),
        f(14, 4),
        f(1, 8),
        f(2, 8),
        f(6, 1),
        f(5, 1),
        f(152, 8),
        f(153, 8),
        builder::fe(REV, 1, 8),
        builder::fe(REV, 2, 8),
        builder::fe(REV, 6, 1),
        builder::fe(REV, 5, 1),
        builder::fe(REV, 192, 1),
        builder::fe(REV, 153, 8),
    ];
    let d = Msg::ipfix(1, EXPORT_SECS)
        .template(256, &fields)
        .data(
            256,
            &[rec(&[
                &[10, 0, 0, 1],
                &[10, 0, 0, 2],
                &51000u16.to_be_bytes(),
                &443u16.to_be_bytes(),
                &[6],
                &3u32.to_be_bytes(),
                &4u32.to_be_bytes(),
                &500u64.to_be_bytes(),
                &5u64.to_be_bytes(),
                &[0x02],
                &[0x10],
                &1_700_000_000_000u64.to_be_bytes(),
                &1_700_000_001_000u64.to_be_bytes(),
                &9000u64.to_be_bytes(),
                &7u64.to_be_bytes(),
                &[0x12],
                &[0x28],
                &[57],
                &1_700_000_002_000u64.to_be_bytes(),
            ])],
        )
        .build();
    let flows = decode(&[d]);
    assert_eq!(flows.len(), 2);
    let (f, r) = (&flows[0], &flows[1]);
    assert_eq!(
        (f.bytes, f.packets, f.tcp_flags, f.tos),
        (500, 5, 0x02, 0x10)
    );
    assert_eq!(
        (r.bytes, r.packets, r.tcp_flags, r.tos),
        (9000, 7, 0x12, 0x28)
    );
    assert_eq!((r.src_addr, r.dst_addr), (ip("10.0.0.2"), ip("10.0.0.1")));
    assert_eq!(
        (r.src_port, r.dst_port, r.in_if, r.out_if),
        (443, 51000, Some(4), Some(3))
    );
    assert_eq!(r.ip_ttl, Some(57));
    assert_eq!(
        r.flow_start_ns, f.flow_start_ns,
        "no reverse start: the forward one"
    );
    assert_eq!(r.flow_end_ns, Some(1_700_000_002_000_000_000));
}

/// A Cisco ASA/FTD NSEL template (Cisco "ASA NetFlow Implementation Guide", NetFlow v9):
/// NF_F_CONN_ID (148), addresses and ports, protocol, ICMP type/code (176/177),
/// NF_F_FW_EVENT (233), NF_F_FW_EXT_EVENT (33002), NF_F_EVENT_TIME_MSEC (323),
/// NF_F_FWD/REV_FLOW_DELTA_BYTES (231/232), translated addresses and ports (225-228),
/// NF_F_INGRESS_ACL_ID (33000, kept unmapped).
const NSEL: &[builder::F] = &[
    f(148, 4),
    f(8, 4),
    f(7, 2),
    f(12, 4),
    f(11, 2),
    f(4, 1),
    f(176, 1),
    f(177, 1),
    f(233, 1),
    f(33002, 2),
    f(323, 8),
    f(231, 4),
    f(232, 4),
    f(225, 4),
    f(226, 4),
    f(227, 2),
    f(228, 2),
    f(33000, 12),
];

#[allow(clippy::too_many_arguments)]
fn nsel(id: u32, proto: u8, event: u8, ext: u16, fwd: u32, rev: u32) -> Vec<u8> {
    rec(&[
        &id.to_be_bytes(),
        &[10, 1, 1, 1],
        &51000u16.to_be_bytes(),
        &[8, 8, 8, 8],
        &443u16.to_be_bytes(),
        &[proto],
        &[0],
        &[0],
        &[event],
        &ext.to_be_bytes(),
        &1_700_000_000_123u64.to_be_bytes(),
        &fwd.to_be_bytes(),
        &rev.to_be_bytes(),
        &[203, 0, 113, 7],
        &[8, 8, 8, 8],
        &40000u16.to_be_bytes(),
        &443u16.to_be_bytes(),
        &[0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3],
    ])
}

#[test]
fn nsel_counts_both_directions_and_keeps_the_firewall_event() {
    // A flow update (5) with 1000 bytes from the initiator and 5000 from the responder, and a
    // denied connection (3, ext 1001 "ingress ACL") with no bytes.
    let d = Msg::v9(1, 1000, EXPORT_SECS)
        .template(263, NSEL)
        .data(
            263,
            &[nsel(77, 6, 5, 0, 1000, 5000), nsel(78, 6, 3, 1001, 0, 0)],
        )
        .build();
    let flows = decode(&[d]);
    assert_eq!(flows.len(), 3, "update: two directions; denied: one record");
    let (fwd, rev, denied) = (&flows[0], &flows[1], &flows[2]);
    assert_eq!(
        (fwd.src_addr, fwd.dst_addr, fwd.bytes),
        (ip("10.1.1.1"), ip("8.8.8.8"), 1000)
    );
    assert_eq!(
        (rev.src_addr, rev.dst_addr, rev.bytes),
        (ip("8.8.8.8"), ip("10.1.1.1"), 5000)
    );
    assert_eq!((rev.src_port, rev.dst_port), (443, 51000));
    let fw = fwd.firewall.unwrap();
    assert_eq!(
        (fw.event, fw.ext_event, fw.flow_id),
        (Some(5), Some(0), Some(77))
    );
    assert_eq!(fw.event_time_ms, Some(1_700_000_000_123));
    assert_eq!(rev.firewall.unwrap().event, Some(5));
    let nat = fwd.nat.unwrap();
    assert_eq!(
        (nat.src_addr, nat.src_port),
        (ip("203.0.113.7"), Some(40000))
    );
    let nat = rev.nat.unwrap();
    assert_eq!(
        (nat.dst_addr, nat.dst_port),
        (ip("203.0.113.7"), Some(40000)),
        "swapped"
    );
    assert_eq!((denied.bytes, denied.packets), (0, 0));
    let fw = denied.firewall.unwrap();
    assert_eq!((fw.event, fw.ext_event), (Some(3), Some(1001)));
    assert_eq!(flowtel_decode::Firewall::event_name(3), Some("denied"));
}

#[test]
fn nat_event_and_ipv6_post_nat_addresses() {
    let fields = [f(27, 16), f(28, 16), f(281, 16), f(282, 16), f(230, 1)];
    let a = |s: &str| s.parse::<std::net::Ipv6Addr>().unwrap().octets();
    let d = Msg::ipfix(1, EXPORT_SECS)
        .template(256, &fields)
        .data(
            256,
            &[rec(&[
                &a("fd00::1"),
                &a("2001:db8::2"),
                &a("2001:db8:f::1"),
                &a("2001:db8::2"),
                &[4],
            ])],
        )
        .build();
    let nat = decode(&[d])[0].nat.unwrap();
    assert_eq!(
        (nat.src_addr, nat.dst_addr),
        (ip("2001:db8:f::1"), ip("2001:db8::2"))
    );
    assert_eq!(nat.event, Some(4));
    assert_eq!(
        flowtel_decode::Nat::event_name(4),
        Some("nat44_session_create")
    );
}

#[test]
fn application_names_come_from_options_data() {
    // RFC 6759 / Cisco NBAR: an options template scoped by applicationId (95) announcing
    // applicationName (96); data records carry applicationId. 0x0d0001bb: engine 13 (NBAR),
    // selector 443.
    let app = 0x0d00_01bbu32;
    let d = Msg::ipfix(5, EXPORT_SECS)
        .options_template(300, &[f(95, 4)], &[f(96, 0xFFFF)])
        .data(300, &[rec(&[&app.to_be_bytes(), &[3], b"ssl"])])
        .template(256, &[f(8, 4), f(12, 4), f(95, 4)])
        .data(
            256,
            &[
                rec(&[&[10, 0, 0, 1], &[10, 0, 0, 2], &app.to_be_bytes()]),
                rec(&[
                    &[10, 0, 0, 1],
                    &[10, 0, 0, 2],
                    &0x0d00_0001u32.to_be_bytes(),
                ]),
            ],
        )
        .build();
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut out = DecodeOutput::default();
    dec.decode(exporter(), &d, EXPORT_NS, &mut out);
    let r = &out.flows[0];
    assert_eq!(r.application_id, Some(u64::from(app)));
    assert_eq!(r.application_name.as_deref(), Some("ssl"));
    assert_eq!(out.flows[1].application_name, None, "no name announced");
    assert_eq!(
        dec.application_name(exporter().ip(), 5, u64::from(app)),
        Some("ssl")
    );
    assert_eq!(
        dec.application_name(exporter().ip(), 6, u64::from(app)),
        None
    );
}

#[test]
fn configured_fields_are_read_under_their_names() {
    use flowtel_decode::{CustomValue, FieldKind, FieldMapping};
    let map = |enterprise, id, name: &str, kind| FieldMapping {
        enterprise,
        id,
        name: name.into(),
        kind,
    };
    let config = DecoderConfig {
        fields: vec![
            map(0, 56701, "app_id", FieldKind::String),
            map(2636, 137, "juniper_cpid", FieldKind::Unsigned),
            map(9, 1, "peer", FieldKind::Address),
            map(9, 2, "gw_mac", FieldKind::Mac),
        ],
        ..DecoderConfig::default()
    };
    let v9 = Msg::v9(1, 1000, EXPORT_SECS)
        .template(257, &[f(8, 4), f(56701, 8)])
        .data(257, &[rec(&[&[10, 0, 0, 1], b"ssl\0\0\0\0\0"])])
        .build();
    let ipfix = Msg::ipfix(1, EXPORT_SECS)
        .template(
            256,
            &[
                f(8, 4),
                builder::fe(2636, 137, 4),
                builder::fe(2636, 137, 2),
                builder::fe(9, 1, 16),
                builder::fe(9, 2, 6),
            ],
        )
        .data(
            256,
            &[rec(&[
                &[10, 0, 0, 1],
                &7u32.to_be_bytes(),
                &0x0801u16.to_be_bytes(),
                &"2001:db8::9"
                    .parse::<std::net::Ipv6Addr>()
                    .unwrap()
                    .octets(),
                &[0, 0x1b, 0x21, 1, 2, 3],
            ])],
        )
        .build();
    let unmapped = decode(&[v9.clone(), ipfix.clone()]);
    let flows = decode_with(config, &[v9, ipfix]);
    let fields = |r: &FlowRecord| -> Vec<(String, CustomValue)> {
        r.custom_fields
            .iter()
            .map(|c| (c.name.to_string(), c.value.clone()))
            .collect()
    };
    assert_eq!(
        fields(&flows[0]),
        [("app_id".into(), CustomValue::Str("ssl".into()))]
    );
    assert_eq!(
        fields(&flows[1]),
        [
            ("juniper_cpid".into(), CustomValue::Unsigned(7)),
            ("juniper_cpid".into(), CustomValue::Unsigned(0x0801)),
            (
                "peer".into(),
                CustomValue::Addr("2001:db8::9".parse().unwrap())
            ),
            ("gw_mac".into(), CustomValue::Mac([0, 0x1b, 0x21, 1, 2, 3])),
        ]
    );
    // Without a mapping the same datagrams allocate nothing for them.
    assert!(unmapped.iter().all(|r| r.custom_fields.capacity() == 0));
}

/// An XDR `string<>`: length, bytes, padding.
fn xdr_string(out: &mut Vec<u8>, s: &str) {
    w32(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

#[test]
fn sflow_drop_notifications_become_drop_records() {
    // sFlow "Dropped Packet Notification Structures" (2020): a discarded packet sample
    // (enterprise 0, format 5): sequence, expanded source id, drops, input, output, reason,
    // then flow records: the sampled header, a hardware trap (1041) and an egress queue (1036).
    let mut trap = Vec::new();
    xdr_string(&mut trap, "acl_drops");
    xdr_string(&mut trap, "ingress_flow_action_drop");
    let mut body = Vec::new();
    for v in [9, 0, 3, 2, 3, 0, 258] {
        // sequence 9, source 0:3, 2 unreported drops, in 3, out unknown, reason acl
        w32(&mut body, v);
    }
    w32(&mut body, 3);
    body.extend(raw_header(70, &qinq_udp()));
    body.extend(tlv(1041, &trap));
    body.extend(tlv(1036, &5u32.to_be_bytes()));
    let d = sflow_datagram(&[
        tlv(5, &body),
        flow_sample(512, &[raw_header(70, &qinq_udp())]),
    ]);
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut out = DecodeOutput::default();
    let report = dec.decode(exporter(), &d, EXPORT_NS, &mut out);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!((report.records, report.drops), (1, 1));
    assert_eq!(
        (out.flows.len(), out.drops.len()),
        (1, 1),
        "a drop is not a flow"
    );
    assert_eq!(dec.stats().drop_notifications, 1);
    let r = &out.drops[0];
    assert_eq!(
        (r.sequence, r.source_id_type, r.source_id_index, r.drops),
        (9, 0, 3, 2)
    );
    assert_eq!((r.in_if, r.out_if), (Some(3), None));
    assert_eq!((r.reason.0, r.reason.name()), (258, Some("acl")));
    assert_eq!(r.reason.to_string(), "acl");
    assert_eq!(flowtel_decode::DropReason(4000).to_string(), "4000");
    assert_eq!(r.agent, ip("192.0.2.10"));
    assert_eq!(
        (r.hw_trap_group.as_deref(), r.hw_trap.as_deref()),
        (Some("acl_drops"), Some("ingress_flow_action_drop"))
    );
    assert_eq!((r.egress_queue, r.function.as_deref()), (Some(5), None));
    let p = &r.packet;
    assert_eq!((p.src_addr, p.dst_addr), (ip("192.0.2.1"), ip("192.0.2.2")));
    assert_eq!(
        (p.ip_protocol, p.src_port, p.dst_port, p.vlan),
        (17, 53, 54321, Some(100))
    );
    assert_eq!((p.bytes, p.packets, p.sampling_rate), (70, 1, None));
}
