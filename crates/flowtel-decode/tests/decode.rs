//! Behaviour of the NetFlow v5 / v9 / IPFIX decoder on datagrams built to the RFC layouts.

#[path = "support/builder.rs"]
mod builder;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use builder::{F, FLOW4, Msg, V5Rec, f, fe, flow4, rec};
use flowtel_decode::{
    DatagramReport, DecodeOutput, Decoder, DecoderConfig, ErrorKind, FlowDirection, FlowProtocol,
    FlowRecord, Limit, SamplingSource,
};

const T0: u64 = 1_700_000_000_000_000_000;

fn exporter() -> SocketAddr {
    "192.0.2.1:2055".parse().unwrap()
}

fn decode(dec: &mut Decoder, d: &[u8]) -> (DatagramReport, Vec<FlowRecord>) {
    decode_from(dec, exporter(), d, T0)
}

fn decode_from(
    dec: &mut Decoder,
    from: SocketAddr,
    d: &[u8],
    at: u64,
) -> (DatagramReport, Vec<FlowRecord>) {
    let mut out = DecodeOutput::default();
    let report = dec.decode(from, d, at, &mut out);
    assert_eq!(report.records, out.flows.len());
    (report, out.flows)
}

fn ip4(a: [u8; 4]) -> Option<IpAddr> {
    Some(IpAddr::V4(Ipv4Addr::from(a)))
}

fn kinds(r: &DatagramReport) -> Vec<ErrorKind> {
    r.errors.iter().map(|e| e.kind).collect()
}

#[test]
fn v5_records_carry_every_field_and_absolute_times() {
    let r = V5Rec {
        src: [10, 0, 0, 1],
        dst: [10, 0, 0, 2],
        next_hop: [10, 0, 0, 254],
        input: 3,
        output: 4,
        packets: 10,
        bytes: 1500,
        first: 90_000,
        last: 99_000,
        sport: 1234,
        dport: 443,
        tcp_flags: 0x1b,
        proto: 6,
        tos: 0x20,
        src_as: 64500,
        dst_as: 64501,
        src_mask: 24,
        dst_mask: 16,
    };
    // Mode 01 (deterministic), interval 100.
    let d = builder::v5(100_000, 1_700_000_000, 0x4000 | 100, &[r, r]);
    let mut dec = Decoder::new(DecoderConfig::default());
    let (report, flows) = decode(&mut dec, &d);
    assert_eq!(report.protocol, Some(FlowProtocol::NetflowV5));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(flows.len(), 2);
    let x = &flows[0];
    assert_eq!(x.flow_protocol, FlowProtocol::NetflowV5);
    assert_eq!(x.src_addr, ip4([10, 0, 0, 1]));
    assert_eq!(x.dst_addr, ip4([10, 0, 0, 2]));
    assert_eq!(x.next_hop, ip4([10, 0, 0, 254]));
    assert_eq!((x.in_if, x.out_if), (Some(3), Some(4)));
    assert_eq!((x.bytes, x.packets), (1500, 10));
    assert_eq!((x.src_port, x.dst_port, x.ip_protocol), (1234, 443, 6));
    assert_eq!((x.tcp_flags, x.tos), (0x1b, 0x20));
    assert_eq!((x.src_as, x.dst_as), (Some(64500), Some(64501)));
    assert_eq!((x.src_prefix_len, x.dst_prefix_len), (Some(24), Some(16)));
    assert_eq!(x.observation_domain, 0x0102);
    assert_eq!(x.sampling_rate, Some(100));
    assert_eq!(x.sampling_source, SamplingSource::Header);
    // Export time 1_700_000_000 s at uptime 100 s: first (90 s) is 10 s earlier.
    assert_eq!(x.flow_start_ns, Some(1_699_999_990_000_000_000));
    assert_eq!(x.flow_end_ns, Some(1_699_999_999_000_000_000));
    assert_eq!(x.time_received_ns, T0);
    assert_eq!(dec.stats().datagrams, 1);
}

#[test]
fn v5_without_sampling_is_counted_unknown_and_truncation_keeps_whole_records() {
    let d = builder::v5(1, 1, 0, &[V5Rec::default(); 3]);
    let mut dec = Decoder::new(DecoderConfig::default());
    let (report, flows) = decode(&mut dec, &d[..d.len() - 10]);
    assert_eq!(flows.len(), 2);
    assert_eq!(kinds(&report), [ErrorKind::Truncated]);
    assert_eq!(flows[0].sampling_rate, None);
    assert_eq!(dec.stats().sampling_rate_unknown, 2);
    assert_eq!(dec.stats().errors_for(ErrorKind::Truncated), 1);
}

#[test]
fn dispatch_reports_sflow_and_unknown_versions_without_records() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let (r, flows) = decode(&mut dec, &[0, 0, 0, 5, 0, 0, 0, 1, 1, 2, 3, 4]);
    assert!(flows.is_empty());
    assert_eq!(r.protocol, Some(FlowProtocol::SflowV5));
    // Version 5, IPv4 agent 1.2.3.4, then the header ends: decoded as sFlow, truncated.
    assert_eq!(kinds(&r), [ErrorKind::Truncated]);
    let (r, _) = decode(&mut dec, &[0, 7, 0, 0]);
    assert_eq!(
        (r.protocol, kinds(&r)),
        (None, vec![ErrorKind::UnsupportedVersion])
    );
    let (r, _) = decode(&mut dec, &[]);
    assert_eq!(kinds(&r), [ErrorKind::Truncated]);
    let (r, _) = decode(&mut dec, &[0, 9, 0]);
    assert_eq!(kinds(&r), [ErrorKind::Truncated]);
    assert_eq!(dec.stats().datagrams, 4);
}

#[test]
fn v9_template_then_data_with_uptime_times() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let tmpl = [
        f(8, 4),
        f(12, 4),
        f(7, 2),
        f(11, 2),
        f(4, 1),
        f(1, 4),
        f(2, 4),
        f(22, 4),
        f(21, 4),
        f(6, 1),
        f(61, 1),
    ];
    let (r, flows) = decode(
        &mut dec,
        &Msg::v9(42, 100_000, 1_700_000_000)
            .template(300, &tmpl)
            .build(),
    );
    assert!(r.errors.is_empty() && flows.is_empty());
    let data = rec(&[
        &[10, 1, 1, 1],
        &[10, 2, 2, 2],
        &80u16.to_be_bytes(),
        &5555u16.to_be_bytes(),
        &[17],
        &900u32.to_be_bytes(),
        &3u32.to_be_bytes(),
        &95_000u32.to_be_bytes(),
        &99_500u32.to_be_bytes(),
        &[0x12],
        &[1],
    ]);
    let (r, flows) = decode(
        &mut dec,
        &Msg::v9(42, 100_000, 1_700_000_000)
            .data(300, &[data.clone(), data])
            .build(),
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(flows.len(), 2);
    let x = &flows[0];
    assert_eq!(x.flow_protocol, FlowProtocol::NetflowV9);
    assert_eq!(x.observation_domain, 42);
    assert_eq!(
        (x.src_addr, x.dst_addr),
        (ip4([10, 1, 1, 1]), ip4([10, 2, 2, 2]))
    );
    assert_eq!(
        (x.src_port, x.dst_port, x.ip_protocol, x.tcp_flags),
        (80, 5555, 17, 0x12)
    );
    assert_eq!((x.bytes, x.packets), (900, 3));
    assert_eq!(x.direction, Some(FlowDirection::Egress));
    assert_eq!(x.flow_start_ns, Some(1_699_999_995_000_000_000));
    assert_eq!(x.flow_end_ns, Some(1_699_999_999_500_000_000));
    assert_eq!(x.sampling_rate, None);
    assert_eq!(dec.stats().templates_learnt, 1);
}

#[test]
fn ipfix_data_before_its_template_in_the_same_message_decodes() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let d = Msg::ipfix(7, 1_700_000_000)
        .data(256, &[flow4([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 6, 100, 1)])
        .template(256, FLOW4)
        .build();
    let (r, flows) = decode(&mut dec, &d);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(flows.len(), 1);
    assert_eq!(flows[0].flow_start_ns, Some(1_700_000_000_000_000_000));
    assert_eq!(flows[0].flow_end_ns, Some(1_700_000_001_000_000_000));
    assert_eq!((flows[0].in_if, flows[0].out_if), (Some(3), Some(4)));
    assert_eq!(dec.stats().pending_held, 0);
}

#[test]
fn pending_data_is_released_when_its_template_arrives() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let rec1 = flow4([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 6, 100, 1);
    let d = Msg::ipfix(7, 1).data(256, &[rec1.clone(), rec1]).build();
    let (r, flows) = decode(&mut dec, &d);
    assert!(r.errors.is_empty() && flows.is_empty());
    assert_eq!((dec.stats().pending_held, dec.pending_sets()), (1, 1));
    let (r, flows) = decode(&mut dec, &Msg::ipfix(7, 2).template(256, FLOW4).build());
    assert!(r.errors.is_empty());
    assert_eq!(flows.len(), 2);
    assert_eq!(r.records, 2);
    assert_eq!((dec.stats().pending_released, dec.pending_sets()), (1, 0));
    assert!(flows.iter().all(|f| f.flow_protocol == FlowProtocol::Ipfix));
}

#[test]
fn pending_data_expires_or_is_dropped_when_full() {
    let cfg = DecoderConfig {
        max_pending_sets: 2,
        pending_timeout_ns: 1_000,
        ..DecoderConfig::default()
    };
    let mut dec = Decoder::new(cfg);
    let set = |id| Msg::ipfix(7, 1).data(id, &[vec![0u8; 8]]).build();
    decode_from(&mut dec, exporter(), &set(300), T0);
    decode_from(&mut dec, exporter(), &set(301), T0);
    decode_from(&mut dec, exporter(), &set(302), T0);
    // Counted once, as a pending set dropped (not also as a limit hit).
    assert_eq!(dec.stats().pending_dropped, 1);
    assert!(dec.stats().limit_hits.is_empty());
    assert_eq!(dec.pending_sets(), 2);
    // A later datagram past the timeout expires both.
    decode_from(&mut dec, exporter(), &Msg::ipfix(7, 1).build(), T0 + 2_000);
    assert_eq!(dec.stats().pending_expired, 2);
    assert_eq!(dec.pending_sets(), 0);
    // With the buffer disabled the set is reported missing.
    let mut dec = Decoder::new(DecoderConfig {
        max_pending_sets: 0,
        ..DecoderConfig::default()
    });
    let (r, _) = decode(&mut dec, &set(300));
    assert_eq!(kinds(&r), [ErrorKind::MissingTemplate]);
}

#[test]
fn a_missing_template_loses_only_its_own_set() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let r1 = flow4([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 6, 100, 1);
    let d = Msg::ipfix(7, 1)
        .template(256, FLOW4)
        .data(999, &[vec![1, 2, 3, 4]])
        .data(256, &[r1])
        .build();
    let (r, flows) = decode(&mut dec, &d);
    assert!(r.errors.is_empty());
    assert_eq!(flows.len(), 1);
    assert_eq!(dec.stats().pending_held, 1);
}

#[test]
fn a_template_set_within_a_message_applies_to_its_later_data_sets() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let r1 = flow4([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 6, 100, 1);
    let r2 = flow4([3, 3, 3, 3], [4, 4, 4, 4], 5, 6, 17, 200, 2);
    let short = [f(8, 4), f(12, 4), f(1, 4)];
    let s1 = rec(&[&[5, 5, 5, 5], &[6, 6, 6, 6], &300u32.to_be_bytes()]);
    let (r, flows) = decode(
        &mut dec,
        &Msg::ipfix(7, 1)
            .template(256, FLOW4)
            .template(257, FLOW4)
            .data(256, std::slice::from_ref(&r1))
            .data(257, std::slice::from_ref(&r2))
            .data(256, std::slice::from_ref(&r2))
            // 256 redefined: the next set of 256 is read with the short template.
            .template(256, &short)
            .data(256, std::slice::from_ref(&s1))
            .data(257, std::slice::from_ref(&r1))
            // 257 withdrawn (RFC 7011 §8.1): its next set waits for a template.
            .withdraw(257, false)
            .data(257, std::slice::from_ref(&r2))
            .data(256, std::slice::from_ref(&s1))
            .build(),
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let got: Vec<(IpAddr, u64)> = flows
        .iter()
        .map(|f| (f.src_addr.unwrap(), f.bytes))
        .collect();
    let v4 = |a: u8| IpAddr::V4(Ipv4Addr::new(a, a, a, a));
    assert_eq!(
        got,
        [
            (v4(1), 100),
            (v4(3), 200),
            (v4(3), 200),
            (v4(5), 300),
            (v4(1), 100),
            (v4(5), 300),
        ]
    );
    assert_eq!(dec.stats().pending_held, 1);
    assert_eq!(dec.stats().templates_withdrawn, 1);
}

#[test]
fn withdrawal_and_reuse_of_template_ids() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let r1 = flow4([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 6, 100, 1);
    decode(
        &mut dec,
        &Msg::ipfix(7, 1)
            .template(256, FLOW4)
            .template(257, FLOW4)
            .build(),
    );
    assert_eq!(dec.template_count(), 2);
    // Single withdrawal (RFC 7011 §8.1): data for 256 now waits in the pending buffer.
    let (r, flows) = decode(
        &mut dec,
        &Msg::ipfix(7, 1)
            .withdraw(256, false)
            .data(256, std::slice::from_ref(&r1))
            .build(),
    );
    assert!(r.errors.is_empty() && flows.is_empty());
    assert_eq!(dec.stats().templates_withdrawn, 1);
    // Withdraw all data templates (id 2).
    decode(&mut dec, &Msg::ipfix(7, 1).withdraw(2, false).build());
    assert_eq!(dec.template_count(), 0);
    assert_eq!(dec.stats().templates_withdrawn, 2);
    // Reuse with another definition replaces; the pending set is released with it.
    let short = [f(8, 4), f(12, 4), f(1, 4)];
    let (_, flows) = decode(&mut dec, &Msg::ipfix(7, 1).template(256, &short).build());
    assert_eq!(
        flows.len(),
        4,
        "the 53-byte pending record reads as four 12-byte ones"
    );
    let (_, flows) = decode(
        &mut dec,
        &Msg::ipfix(7, 1)
            .data(
                256,
                &[rec(&[&[9, 9, 9, 9], &[8, 8, 8, 8], &77u32.to_be_bytes()])],
            )
            .build(),
    );
    assert_eq!((flows.len(), flows[0].bytes), (1, 77));
    // Re-sending an identical template is not counted as learnt.
    let learnt = dec.stats().templates_learnt;
    decode(&mut dec, &Msg::ipfix(7, 1).template(256, &short).build());
    assert_eq!(dec.stats().templates_learnt, learnt);
}

#[test]
fn templates_are_scoped_by_domain_version_and_optionally_port() {
    let mut dec = Decoder::new(DecoderConfig::default());
    decode(
        &mut dec,
        &Msg::ipfix(1, 1).template(256, &[f(1, 4)]).build(),
    );
    decode(
        &mut dec,
        &Msg::ipfix(2, 1).template(256, &[f(2, 4)]).build(),
    );
    let (_, a) = decode(
        &mut dec,
        &Msg::ipfix(1, 1)
            .data(256, &[5u32.to_be_bytes().to_vec()])
            .build(),
    );
    let (_, b) = decode(
        &mut dec,
        &Msg::ipfix(2, 1)
            .data(256, &[5u32.to_be_bytes().to_vec()])
            .build(),
    );
    assert_eq!(
        (a[0].bytes, a[0].packets, a[0].observation_domain),
        (5, 0, 1)
    );
    assert_eq!(
        (b[0].bytes, b[0].packets, b[0].observation_domain),
        (0, 5, 2)
    );
    // Same domain, NetFlow v9: a different scope, so the set is pending.
    let (_, c) = decode(
        &mut dec,
        &Msg::v9(1, 1, 1)
            .data(256, &[5u32.to_be_bytes().to_vec()])
            .build(),
    );
    assert!(c.is_empty());
    // Another source port shares the scope by default...
    let other_port: SocketAddr = "192.0.2.1:9999".parse().unwrap();
    let (_, d) = decode_from(
        &mut dec,
        other_port,
        &Msg::ipfix(1, 1)
            .data(256, &[5u32.to_be_bytes().to_vec()])
            .build(),
        T0,
    );
    assert_eq!(d.len(), 1);
    // ...but not with scope_includes_port.
    let mut dec = Decoder::new(DecoderConfig {
        scope_includes_port: true,
        ..DecoderConfig::default()
    });
    decode(
        &mut dec,
        &Msg::ipfix(1, 1).template(256, &[f(1, 4)]).build(),
    );
    let (_, d) = decode_from(
        &mut dec,
        other_port,
        &Msg::ipfix(1, 1)
            .data(256, &[5u32.to_be_bytes().to_vec()])
            .build(),
        T0,
    );
    assert!(d.is_empty());
}

#[test]
fn variable_length_enterprise_and_reduced_size_fields() {
    let cfg = DecoderConfig {
        keep_unknown_fields: true,
        ..DecoderConfig::default()
    };
    let mut dec = Decoder::new(cfg);
    let tmpl = [
        f(8, 4),
        fe(2636, 137, 0xFFFF),
        f(1, 2),
        f(84, 0xFFFF),
        f(2, 3),
        fe(9, 1, 4),
    ];
    let long = vec![0xAB; 300];
    let r1 = rec(&[
        &[1, 2, 3, 4],
        &[3, b'a', b'b', b'c'],
        &1000u16.to_be_bytes(),
        &[255],
        &300u16.to_be_bytes(),
        &long,
        &[0, 1, 0],
        &[0, 0, 0, 9],
    ]);
    let r2 = rec(&[
        &[1, 2, 3, 5],
        &[0],
        &7u16.to_be_bytes(),
        &[1, 0xCD],
        &[0, 0, 2],
        &[0, 0, 0, 1],
    ]);
    let d = Msg::ipfix(1, 1)
        .template(400, &tmpl)
        .data(400, &[r1, r2, vec![0, 0, 0]])
        .build();
    let (r, flows) = decode(&mut dec, &d);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(flows.len(), 2, "the 3 trailing zero bytes are padding");
    assert_eq!((flows[0].bytes, flows[0].packets), (1000, 256));
    assert_eq!((flows[1].bytes, flows[1].packets), (7, 2));
    let u = &flows[0].unknown_fields;
    assert_eq!(u.len(), 3);
    assert_eq!(
        (u[0].enterprise, u[0].id, u[0].value.as_slice()),
        (2636, 137, &b"abc"[..])
    );
    assert_eq!((u[1].enterprise, u[1].id, u[1].value.len()), (0, 84, 300));
    assert_eq!((u[2].enterprise, u[2].id), (9, 1));
    // Without keep_unknown_fields nothing is kept.
    let mut dec = Decoder::new(DecoderConfig::default());
    let (_, flows) = decode(&mut dec, &d);
    assert!(flows[0].unknown_fields.is_empty());
}

#[test]
fn a_record_overrunning_its_set_is_reported_and_earlier_records_kept() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let tmpl = [f(1, 4), f(82, 0xFFFF)];
    let d = Msg::ipfix(1, 1)
        .template(400, &tmpl)
        .data(
            400,
            &[
                rec(&[&5u32.to_be_bytes(), &[1, b'x']]),
                rec(&[&6u32.to_be_bytes(), &[200, b'y']]),
            ],
        )
        .build();
    let (r, flows) = decode(&mut dec, &d);
    assert_eq!(flows.len(), 1);
    assert_eq!(kinds(&r), [ErrorKind::Truncated]);
}

#[test]
fn ipv6_mac_vlan_mpls_icmp_and_bgp_fields() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let tmpl = [
        f(27, 16),
        f(28, 16),
        f(62, 16),
        f(63, 16),
        f(56, 6),
        f(80, 6),
        f(243, 2),
        f(70, 3),
        f(139, 2),
        f(16, 4),
        f(17, 4),
        f(29, 1),
        f(30, 1),
        f(2, 1),
        f(85, 8),
        f(5, 1),
        f(48, 1),
        f(150, 4),
        f(151, 4),
    ];
    let a = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let b = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    let r1 = rec(&[
        &a.octets(),
        &b.octets(),
        &a.octets(),
        &b.octets(),
        &[1, 2, 3, 4, 5, 6],
        &[6, 5, 4, 3, 2, 1],
        &100u16.to_be_bytes(),
        &[0x01, 0x23, 0x41],
        &[128, 0],
        &65001u32.to_be_bytes(),
        &65002u32.to_be_bytes(),
        &[48],
        &[64],
        &[9],
        &12345u64.to_be_bytes(),
        &[0xb8],
        &[3],
        &1_700_000_000u32.to_be_bytes(),
        &1_700_000_005u32.to_be_bytes(),
    ]);
    let (r, flows) = decode(
        &mut dec,
        &Msg::ipfix(1, 1)
            .template(500, &tmpl)
            .data(500, &[r1])
            .build(),
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let x = &flows[0];
    assert_eq!(
        (x.src_addr, x.dst_addr),
        (Some(IpAddr::V6(a)), Some(IpAddr::V6(b)))
    );
    assert_eq!(
        (x.next_hop, x.bgp_next_hop),
        (Some(IpAddr::V6(a)), Some(IpAddr::V6(b)))
    );
    assert_eq!(
        (x.src_mac, x.dst_mac),
        (Some([1, 2, 3, 4, 5, 6]), Some([6, 5, 4, 3, 2, 1]))
    );
    assert_eq!(x.vlan, Some(100));
    assert_eq!(x.mpls_top_label, Some(0x1234));
    assert_eq!((x.icmp_type, x.icmp_code), (Some(128), Some(0)));
    assert_eq!(
        (x.src_as, x.dst_as, x.src_prefix_len, x.dst_prefix_len),
        (Some(65001), Some(65002), Some(48), Some(64))
    );
    assert_eq!(
        (x.packets, x.bytes, x.tos, x.sampler_id),
        (9, 12345, 0xb8, Some(3))
    );
    assert_eq!(
        (x.flow_start_ns, x.flow_end_ns),
        (
            Some(1_700_000_000_000_000_000),
            Some(1_700_000_005_000_000_000)
        )
    );
}

#[test]
fn biflow_records_become_two_directions() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut tmpl: Vec<F> = FLOW4.to_vec();
    tmpl.push(fe(29305, 1, 8));
    tmpl.push(fe(29305, 2, 8));
    let mut r1 = flow4([1, 1, 1, 1], [2, 2, 2, 2], 1000, 80, 6, 100, 2);
    r1.extend_from_slice(&5000u64.to_be_bytes());
    r1.extend_from_slice(&4u64.to_be_bytes());
    let mut r2 = flow4([3, 3, 3, 3], [4, 4, 4, 4], 1000, 80, 6, 100, 2);
    r2.extend_from_slice(&[0; 16]);
    let (_, flows) = decode(
        &mut dec,
        &Msg::ipfix(1, 1)
            .template(256, &tmpl)
            .data(256, &[r1, r2])
            .build(),
    );
    assert_eq!(flows.len(), 3, "a zero reverse direction adds no record");
    let (fwd, rev) = (&flows[0], &flows[1]);
    assert_eq!((fwd.bytes, fwd.packets, fwd.src_port), (100, 2, 1000));
    assert_eq!((rev.bytes, rev.packets), (5000, 4));
    assert_eq!(
        (rev.src_addr, rev.dst_addr),
        (ip4([2, 2, 2, 2]), ip4([1, 1, 1, 1]))
    );
    assert_eq!(
        (rev.src_port, rev.dst_port, rev.in_if, rev.out_if),
        (80, 1000, Some(4), Some(3))
    );
}

#[test]
fn sampling_from_record_options_by_sampler_and_default() {
    let mut dec = Decoder::new(DecoderConfig::default());
    // Cisco style v9 options: System scope, FLOW_SAMPLER_ID, FLOW_SAMPLER_RANDOM_INTERVAL.
    let opts = Msg::v9(1, 1000, 1_700_000_000)
        .options_template(257, &[f(1, 4)], &[f(48, 1), f(49, 1), f(50, 4)])
        .data(
            257,
            &[
                rec(&[&[0, 0, 0, 0], &[1], &[2], &1000u32.to_be_bytes()]),
                rec(&[&[0, 0, 0, 0], &[2], &[2], &100u32.to_be_bytes()]),
            ],
        )
        .build();
    let (r, _) = decode(&mut dec, &opts);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(dec.stats().options_records, 2);
    let tmpl = [f(1, 4), f(48, 1)];
    let data = |sid: u8| rec(&[&10u32.to_be_bytes(), &[sid]]);
    let (_, flows) = decode(
        &mut dec,
        &Msg::v9(1, 1000, 1_700_000_000)
            .template(260, &tmpl)
            .data(260, &[data(1), data(2), data(3)])
            .build(),
    );
    let rates: Vec<_> = flows
        .iter()
        .map(|x| (x.sampler_id, x.sampling_rate, x.sampling_source))
        .collect();
    assert_eq!(
        rates,
        [
            (Some(1), Some(1000), SamplingSource::Options),
            (Some(2), Some(100), SamplingSource::Options),
            (Some(3), None, SamplingSource::Unknown)
        ]
    );
    assert_eq!(dec.stats().sampling_rate_unknown, 1);
    // Options without a sampler id set the scope default, used for unknown sampler ids.
    decode(
        &mut dec,
        &Msg::v9(1, 1000, 1)
            .options_template(258, &[f(1, 4)], &[f(34, 4)])
            .data(258, &[rec(&[&[0; 4], &512u32.to_be_bytes()])])
            .build(),
    );
    let (_, flows) = decode(&mut dec, &Msg::v9(1, 1000, 1).data(260, &[data(3)]).build());
    assert_eq!(flows[0].sampling_rate, Some(512));
    // A rate in the record wins (Huawei), and packet interval/space gives (i + s) / i.
    let tmpl = [f(1, 4), f(34, 4)];
    let (_, flows) = decode(
        &mut dec,
        &Msg::v9(1, 1000, 1)
            .template(261, &tmpl)
            .data(261, &[rec(&[&1u32.to_be_bytes(), &64u32.to_be_bytes()])])
            .build(),
    );
    assert_eq!(
        (flows[0].sampling_rate, flows[0].sampling_source),
        (Some(64), SamplingSource::Record)
    );
    let mut dec = Decoder::new(DecoderConfig::default());
    let d = Msg::ipfix(1, 1)
        .options_template(256, &[f(302, 4)], &[f(305, 4), f(306, 4)])
        .data(
            256,
            &[rec(&[
                &9u32.to_be_bytes(),
                &1u32.to_be_bytes(),
                &1999u32.to_be_bytes(),
            ])],
        )
        .template(257, &[f(1, 4), f(302, 4)])
        .data(257, &[rec(&[&1u32.to_be_bytes(), &9u32.to_be_bytes()])])
        .build();
    let (_, flows) = decode(&mut dec, &d);
    assert_eq!(flows[0].sampling_rate, Some(2000));
}

#[test]
fn interface_and_vrf_names_from_options_data() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut name = b"GigabitEthernet0/0/0".to_vec();
    name.resize(32, 0);
    let d = Msg::ipfix(5, 1)
        .options_template(256, &[f(10, 4)], &[f(82, 32), f(83, 0xFFFF)])
        .data(256, &[rec(&[&7u32.to_be_bytes(), &name, &[6], b"uplink"])])
        .options_template(257, &[f(234, 4)], &[f(236, 0xFFFF)])
        .data(257, &[rec(&[&3u32.to_be_bytes(), &[4], b"blue"])])
        .build();
    let (r, flows) = decode(&mut dec, &d);
    assert!(r.errors.is_empty() && flows.is_empty(), "{:?}", r.errors);
    let ip = exporter().ip();
    assert_eq!(dec.interface_name(ip, 5, 7), Some("GigabitEthernet0/0/0"));
    assert_eq!(dec.interface_description(ip, 5, 7), Some("uplink"));
    assert_eq!(dec.vrf_name(ip, 5, 3), Some("blue"));
    assert_eq!(dec.interface_name(ip, 6, 7), None);
    // v9 Interface scope (type 2) keys interface names too.
    let d = Msg::v9(9, 1, 1)
        .options_template(256, &[f(2, 4)], &[f(82, 4)])
        .data(256, &[rec(&[&11u32.to_be_bytes(), b"eth1"])])
        .build();
    decode(&mut dec, &d);
    assert_eq!(dec.interface_name(ip, 9, 11), Some("eth1"));
}

#[test]
fn limits_refuse_and_count() {
    let cfg = DecoderConfig {
        max_exporters: 1,
        max_templates_per_exporter: 1,
        max_fields_per_template: 3,
        ..DecoderConfig::default()
    };
    let mut dec = Decoder::new(cfg);
    let (r, _) = decode(
        &mut dec,
        &Msg::ipfix(1, 1)
            .template(256, &[f(1, 4)])
            .template(257, &[f(1, 4)])
            .build(),
    );
    assert_eq!(kinds(&r), [ErrorKind::TemplateLimit]);
    let (r, _) = decode(
        &mut dec,
        &Msg::ipfix(2, 1).template(256, &[f(1, 4)]).build(),
    );
    assert_eq!(kinds(&r), [ErrorKind::ExporterLimit]);
    let (r, _) = decode(&mut dec, &Msg::ipfix(2, 1).data(256, &[vec![0; 4]]).build());
    assert_eq!(kinds(&r), [ErrorKind::ExporterLimit]);
    let (r, _) = decode(
        &mut dec,
        &Msg::ipfix(1, 1)
            .template(256, &[f(1, 4), f(2, 4), f(4, 1), f(5, 1)])
            .build(),
    );
    assert_eq!(kinds(&r), [ErrorKind::FieldLimit]);
    let s = dec.stats();
    assert_eq!(s.limit_hits_for(Limit::TemplatesPerExporter), 1);
    assert_eq!(s.limit_hits_for(Limit::Exporters), 2);
    assert_eq!(s.limit_hits_for(Limit::FieldsPerTemplate), 1);
    assert_eq!(dec.template_count(), 1);
}

#[test]
fn malformed_sets_are_reported_and_the_rest_decoded() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let ok = flow4([1, 1, 1, 1], [2, 2, 2, 2], 1, 2, 6, 100, 1);
    // Reserved set id, invalid template id, empty options scope.
    let d = Msg::ipfix(1, 1)
        .template(256, FLOW4)
        .raw_set(100, &[1, 2, 3, 4])
        .template(5, &[f(1, 4)])
        .raw_set(3, &[1, 1, 0, 1, 0, 0, 0, 1, 0, 4])
        .data(256, &[ok])
        .build();
    let (r, flows) = decode(&mut dec, &d);
    assert_eq!(flows.len(), 1);
    assert_eq!(
        kinds(&r),
        [
            ErrorKind::ReservedSetId,
            ErrorKind::InvalidTemplate,
            ErrorKind::InvalidTemplate
        ]
    );
    // A set length running past the message.
    let mut d = Msg::ipfix(1, 1).template(256, FLOW4).build();
    d.extend_from_slice(&[1, 0, 0, 200, 0, 0]);
    let len = d.len() as u16;
    d[2..4].copy_from_slice(&len.to_be_bytes());
    let (r, _) = decode(&mut dec, &d);
    assert_eq!(kinds(&r), [ErrorKind::BadSetLength]);
    // An IPFIX length larger than the datagram.
    let mut d = Msg::ipfix(1, 1).build();
    d[3] = 200;
    let (r, _) = decode(&mut dec, &d);
    assert_eq!(kinds(&r), [ErrorKind::BadLength]);
}
