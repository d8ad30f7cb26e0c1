//! Decoder tests: encode -> decode round trips, malformed input, and property tests over
//! encoder-written and real (corpus) datagrams.

use std::net::{IpAddr, SocketAddr};

use proptest::prelude::*;

use flowtel_decode::{
    DecodeOutput, Decoder, DecoderConfig, ErrorKind, EthernetCounters, FlowRecord,
    InterfaceCounters, SamplingSource, SflowInterface,
};
use flowtel_encode::sflow::*;

fn exporter() -> SocketAddr {
    "192.0.2.10:50000".parse().expect("address")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn decode_with(
    config: DecoderConfig,
    bytes: &[u8],
) -> (DecodeOutput, flowtel_decode::DatagramReport) {
    let mut d = Decoder::new(config);
    let mut out = DecodeOutput::default();
    let report = d.decode(exporter(), bytes, 1_000, &mut out);
    (out, report)
}

fn decode(bytes: &[u8]) -> (DecodeOutput, flowtel_decode::DatagramReport) {
    decode_with(DecoderConfig::default(), bytes)
}

fn packet() -> PacketHeader {
    PacketHeader {
        src_mac: [0, 0x53, 0, 0, 0, 1],
        dst_mac: [0, 0x53, 0, 0, 0, 2],
        vlan: Some(42),
        src_addr: ip("198.51.100.7"),
        dst_addr: ip("203.0.113.9"),
        ip_protocol: 6,
        tos: 0x28,
        src_port: 443,
        dst_port: 51000,
        tcp_flags: 0x18,
        ip_length: 1400,
    }
}

fn flow_sample(records: Vec<FlowData>) -> FlowSample {
    FlowSample {
        expanded: false,
        sequence: 77,
        source_id_type: 0,
        source_id_index: 3,
        sampling_rate: 2048,
        sample_pool: 123_456,
        drops: 2,
        input: SflowInterface::Index(3),
        output: SflowInterface::Index(9),
        records,
    }
}

fn header_record(p: &PacketHeader) -> FlowData {
    FlowData::SampledHeader {
        protocol: 1,
        frame_length: p.frame_length(),
        stripped: 4,
        header: p.to_bytes(128),
    }
}

fn datagram(samples: Vec<Sample>) -> Datagram {
    Datagram {
        agent: Some(ip("10.0.0.1")),
        sub_agent_id: 7,
        sequence: 1234,
        uptime_ms: 99_000,
        samples,
    }
}

#[test]
fn flow_sample_round_trip_with_extended_records() {
    let p = packet();
    let d = datagram(vec![Sample::Flow(flow_sample(vec![
        FlowData::Switch {
            src_vlan: 100,
            src_priority: 0,
            dst_vlan: 200,
            dst_priority: 0,
        },
        header_record(&p),
        FlowData::Router {
            next_hop: Some(ip("192.0.2.254")),
            src_mask_len: 24,
            dst_mask_len: 16,
        },
        FlowData::Gateway {
            next_hop: Some(ip("2001:db8::1")),
            router_as: 65000,
            src_as: 64500,
            src_peer_as: 64501,
            as_path: vec![
                AsPathSegment {
                    segment_type: 2,
                    asns: vec![64501, 64502],
                },
                AsPathSegment {
                    segment_type: 1,
                    asns: vec![64510],
                },
            ],
            communities: vec![0xfde8_0001, 0xfde8_0002],
            local_pref: 100,
        },
    ]))]);
    let config = DecoderConfig {
        keep_unknown_fields: true,
        ..DecoderConfig::default()
    };
    let (out, report) = decode_with(config, &d.to_bytes());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.protocol, Some(flowtel_decode::FlowProtocol::SflowV5));
    assert_eq!((report.records, out.flows.len()), (1, 1));
    let r = &out.flows[0];
    assert_eq!(r.exporter, exporter());
    assert_eq!(r.agent, Some(ip("10.0.0.1")));
    assert_eq!(r.observation_domain, 7);
    assert_eq!(r.time_received_ns, 1_000);
    assert_eq!(r.bytes, u64::from(p.frame_length()));
    assert_eq!(r.packets, 1);
    assert_eq!(r.sampling_rate, Some(2048));
    assert_eq!(r.sampling_source, SamplingSource::Sample);
    assert_eq!(
        (r.src_addr, r.dst_addr),
        (Some(p.src_addr), Some(p.dst_addr))
    );
    assert_eq!((r.src_port, r.dst_port, r.ip_protocol), (443, 51000, 6));
    assert_eq!((r.tcp_flags, r.tos), (0x18, 0x28));
    assert_eq!((r.src_mac, r.dst_mac), (Some(p.src_mac), Some(p.dst_mac)));
    // The switch record's incoming VLAN wins over the header tag.
    assert_eq!(r.vlan, Some(100));
    assert_eq!((r.in_if, r.out_if), (Some(3), Some(9)));
    assert_eq!(r.next_hop, Some(ip("192.0.2.254")));
    assert_eq!((r.src_prefix_len, r.dst_prefix_len), (Some(24), Some(16)));
    assert_eq!(r.bgp_next_hop, Some(ip("2001:db8::1")));
    assert_eq!((r.src_as, r.dst_as), (Some(64500), Some(64510)));
    assert_eq!(r.as_path, vec![64501, 64502, 64510]);
    assert_eq!(r.bgp_communities, vec![0xfde8_0001, 0xfde8_0002]);
    let s = r.sflow.expect("sflow details");
    assert_eq!(
        (s.datagram_sequence, s.uptime_ms, s.sequence),
        (1234, 99_000, 77)
    );
    assert_eq!((s.source_id_type, s.source_id_index), (0, 3));
    assert_eq!((s.sample_pool, s.drops), (123_456, 2));

    // Without keep_unknown_fields the path is not kept, the AS numbers are.
    let (out, _) = decode(&d.to_bytes());
    assert!(out.flows[0].as_path.is_empty());
    assert_eq!(out.flows[0].dst_as, Some(64510));
}

#[test]
fn interface_encodings_compact_and_expanded() {
    let cases = [
        SflowInterface::Index(5),
        SflowInterface::Index(0),
        SflowInterface::Internal,
        SflowInterface::Discarded(258),
        SflowInterface::Multiple(7),
        SflowInterface::Multiple(0),
    ];
    for expanded in [false, true] {
        for out_if in cases {
            let mut f = flow_sample(vec![]);
            f.expanded = expanded;
            f.output = out_if;
            if expanded {
                f.source_id_index = 0x0100_0000;
                f.input = SflowInterface::Index(0x4000_0001);
            }
            let (out, report) = decode(&datagram(vec![Sample::Flow(f)]).to_bytes());
            assert!(report.errors.is_empty());
            let r = &out.flows[0];
            let s = r.sflow.expect("details");
            assert_eq!(s.output, out_if, "expanded={expanded}");
            assert_eq!(r.out_if, out_if.if_index());
            if expanded {
                assert_eq!(r.in_if, Some(0x4000_0001));
                assert_eq!(s.source_id_index, 0x0100_0000);
            }
        }
    }
}

#[test]
fn ip_data_records_fill_in_without_a_header() {
    for (src, dst, len) in [
        ("192.0.2.1", "192.0.2.2", 576),
        ("2001:db8::1", "2001:db8::2", 1280),
    ] {
        let f = flow_sample(vec![
            FlowData::Ethernet {
                length: len + 18,
                src_mac: [2, 0, 0, 0, 0, 1],
                dst_mac: [2, 0, 0, 0, 0, 2],
                ethertype: 0x0800,
            },
            FlowData::Ip {
                length: len,
                protocol: 17,
                src: ip(src),
                dst: ip(dst),
                src_port: 5353,
                dst_port: 53,
                tcp_flags: 0,
                tos: 4,
            },
        ]);
        let (out, report) = decode(&datagram(vec![Sample::Flow(f)]).to_bytes());
        assert!(report.errors.is_empty());
        let r = &out.flows[0];
        assert_eq!((r.src_addr, r.dst_addr), (Some(ip(src)), Some(ip(dst))));
        assert_eq!(
            (r.ip_protocol, r.src_port, r.dst_port, r.tos),
            (17, 5353, 53, 4)
        );
        assert_eq!(r.src_mac, Some([2, 0, 0, 0, 0, 1]));
        // Ethernet frame data length beats the IP length (same layer as frame_length).
        assert_eq!(r.bytes, u64::from(len + 18));
    }
}

#[test]
fn counter_samples_round_trip() {
    let ifc = InterfaceCounters {
        if_index: 12,
        if_type: 6,
        if_speed: 10_000_000_000,
        if_direction: 1,
        if_status: 3,
        in_octets: 0x1_0000_0001,
        in_ucast_pkts: 1,
        in_multicast_pkts: 2,
        in_broadcast_pkts: 3,
        in_discards: 4,
        in_errors: 5,
        in_unknown_protos: 6,
        out_octets: 0x2_0000_0002,
        out_ucast_pkts: 7,
        out_multicast_pkts: 8,
        out_broadcast_pkts: 9,
        out_discards: 10,
        out_errors: 11,
        promiscuous_mode: 0,
    };
    let eth = EthernetCounters {
        alignment_errors: 1,
        fcs_errors: 2,
        single_collision_frames: 3,
        multiple_collision_frames: 4,
        sqe_test_errors: 5,
        deferred_transmissions: 6,
        late_collisions: 7,
        excessive_collisions: 8,
        internal_mac_transmit_errors: 9,
        carrier_sense_errors: 10,
        frame_too_longs: 11,
        internal_mac_receive_errors: 12,
        symbol_errors: 13,
    };
    let d = datagram(vec![
        Sample::Counters(CounterSample {
            expanded: false,
            sequence: 5,
            source_id_type: 0,
            source_id_index: 12,
            records: vec![
                CounterData::Other {
                    data_format: 2001,
                    data: vec![1, 2, 3, 4, 5],
                },
                CounterData::Interface(ifc),
                CounterData::Ethernet(eth),
                CounterData::PortName("swp12".to_owned()),
            ],
        }),
        Sample::Counters(CounterSample {
            expanded: true,
            sequence: 6,
            source_id_type: 0,
            source_id_index: 13,
            records: vec![CounterData::Interface(InterfaceCounters {
                if_index: 13,
                ..ifc
            })],
        }),
        // Host counters only: no interface record, no CounterRecord.
        Sample::Counters(CounterSample {
            expanded: false,
            sequence: 7,
            source_id_type: 2,
            source_id_index: 1,
            records: vec![CounterData::Other {
                data_format: 2003,
                data: vec![0; 68],
            }],
        }),
    ]);
    let (out, report) = decode(&d.to_bytes());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!((report.records, report.counters), (0, 2));
    let c = &out.counters[0];
    assert_eq!(c.agent, ip("10.0.0.1"));
    assert_eq!((c.sub_agent_id, c.sequence, c.source_id), (7, 5, 12));
    assert_eq!(
        (
            c.interface.if_index,
            c.interface.if_type,
            c.interface.if_speed
        ),
        (12, 6, 10_000_000_000)
    );
    assert_eq!((c.interface.if_direction, c.interface.if_status), (1, 3));
    assert_eq!(
        (c.interface.in_octets, c.interface.out_octets),
        (0x1_0000_0001, 0x2_0000_0002)
    );
    assert_eq!(
        (
            c.interface.in_ucast_pkts,
            c.interface.in_multicast_pkts,
            c.interface.in_broadcast_pkts,
            c.interface.in_discards,
            c.interface.in_errors,
            c.interface.in_unknown_protos
        ),
        (1, 2, 3, 4, 5, 6)
    );
    assert_eq!(
        (
            c.interface.out_ucast_pkts,
            c.interface.out_multicast_pkts,
            c.interface.out_broadcast_pkts,
            c.interface.out_discards,
            c.interface.out_errors,
            c.interface.promiscuous_mode
        ),
        (7, 8, 9, 10, 11, 0)
    );
    assert_eq!(c.ethernet, Some(eth));
    assert_eq!((c.name.as_deref(), c.uptime_ms), (Some("swp12"), 99_000));
    let c = &out.counters[1];
    assert_eq!(
        (
            c.interface.if_index,
            c.sequence,
            c.ethernet,
            c.name.as_deref()
        ),
        (13, 6, None, None)
    );
}

#[test]
fn port_names_are_cut_at_255_bytes_and_empty_ones_are_none() {
    let ifc = InterfaceCounters {
        if_index: 1,
        ..InterfaceCounters::default()
    };
    for (name, expected) in [
        ("x".repeat(300), Some("x".repeat(255))),
        (String::new(), None),
    ] {
        let d = datagram(vec![Sample::Counters(CounterSample {
            expanded: false,
            sequence: 1,
            source_id_type: 0,
            source_id_index: 1,
            records: vec![CounterData::PortName(name), CounterData::Interface(ifc)],
        })]);
        let (out, report) = decode(&d.to_bytes());
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(out.counters[0].name.as_deref(), expected.as_deref());
    }
}

#[test]
fn discard_samples_round_trip() {
    let p = packet();
    let d = datagram(vec![Sample::Discard(DiscardSample {
        sequence: 41,
        source_id_type: 0,
        source_id_index: 3,
        drops: 17,
        input: 3,
        output: 0,
        reason: 259,
        records: vec![header_record(&p)],
    })]);
    let (out, report) = decode(&d.to_bytes());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!((report.records, report.drops), (0, 1));
    let r = &out.drops[0];
    assert_eq!(
        (r.sequence, r.source_id_type, r.source_id_index, r.drops),
        (41, 0, 3, 17)
    );
    assert_eq!((r.in_if, r.out_if), (Some(3), None));
    assert_eq!(r.reason.name(), Some("no_buffer_space"));
    assert_eq!(
        (r.packet.src_addr, r.packet.dst_port),
        (Some(p.src_addr), 51000)
    );
}

#[test]
fn unknown_samples_and_records_are_skipped_by_length() {
    let p = packet();
    let d = datagram(vec![
        Sample::Other {
            data_format: (4300 << 12) | 1,
            data: vec![0xff; 37],
        },
        Sample::Flow(flow_sample(vec![
            FlowData::Other {
                data_format: 1031,
                data: vec![0, 0, 0, 1, 0xaa, 0xbb],
            },
            header_record(&p),
        ])),
    ]);
    let keep = DecoderConfig {
        keep_unknown_fields: true,
        ..DecoderConfig::default()
    };
    let (out, report) = decode_with(keep, &d.to_bytes());
    assert!(report.errors.is_empty());
    assert_eq!(out.flows.len(), 1);
    let r = &out.flows[0];
    assert_eq!(r.src_port, 443);
    assert_eq!(r.unknown_fields.len(), 1);
    assert_eq!(r.unknown_fields[0].id, 1031);
    assert_eq!(r.unknown_fields[0].value, vec![0, 0, 0, 1, 0xaa, 0xbb]);
}

#[test]
fn bad_lengths_and_addresses_are_counted() {
    let p = packet();
    let good = datagram(vec![
        Sample::Flow(flow_sample(vec![header_record(&p)])),
        Sample::Flow(flow_sample(vec![header_record(&p)])),
    ])
    .to_bytes();

    // Second sample's length made huge: first sample decodes, the second is a counted error.
    let mut bad = good.clone();
    let first_len = u32::from_be_bytes(bad[32..36].try_into().expect("4 bytes")) as usize;
    let second = 36 + first_len;
    bad[second + 4..second + 8].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
    let mut d = Decoder::new(DecoderConfig::default());
    let mut out = DecodeOutput::default();
    let report = d.decode(exporter(), &bad, 0, &mut out);
    assert_eq!(out.flows.len(), 1);
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].kind, ErrorKind::SflowBadLength);
    assert_eq!(report.errors[0].offset, second);
    assert_eq!(d.stats().errors.get(&ErrorKind::SflowBadLength), Some(&1));
    assert_eq!(report.records, 1);
    assert_eq!(report.protocol, Some(flowtel_decode::FlowProtocol::SflowV5));

    // A raw header record whose header length runs past the record: the record is an error,
    // the sample is still one record (its length was sound).
    let mut bad = good.clone();
    let hdr_len_at = 36 + 32 + 8 + 12; // sample fields, record header, 3 words
    bad[hdr_len_at..hdr_len_at + 4].copy_from_slice(&4096u32.to_be_bytes());
    let (out, report) = decode(&bad);
    assert_eq!(out.flows.len(), 2);
    assert_eq!(out.flows[0].bytes, 0);
    assert_eq!(report.errors[0].kind, ErrorKind::SflowBadLength);

    let mut bad = good.clone();
    bad[7] = 9; // agent address type 9
    let (out, report) = decode(&bad);
    assert!(out.flows.is_empty());
    assert_eq!(report.errors[0].kind, ErrorKind::SflowAgentAddress);

    let (_, report) = decode(&good[..20]);
    assert_eq!(report.errors[0].kind, ErrorKind::Truncated);

    // Claimed sample count larger than what is present.
    let mut bad = good.clone();
    bad[24..28].copy_from_slice(&3u32.to_be_bytes());
    let (out, report) = decode(&bad);
    assert_eq!(out.flows.len(), 2);
    assert_eq!(report.errors[0].kind, ErrorKind::Truncated);
}

#[test]
fn zero_rate_is_unknown_and_unknown_agent_is_none() {
    let mut f = flow_sample(vec![]);
    f.sampling_rate = 0;
    let mut d = datagram(vec![Sample::Flow(f)]);
    d.agent = None;
    let (out, report) = decode(&d.to_bytes());
    assert!(report.errors.is_empty());
    assert_eq!(out.flows[0].sampling_rate, None);
    assert_eq!(out.flows[0].sampling_source, SamplingSource::Unknown);
    assert_eq!(out.flows[0].agent, None);
}

fn corpus_datagrams() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus/akvorado/sflow"
    ));
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!(
            "corpus absent at {}: property tests use encoder datagrams only",
            dir.display()
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let Ok(datagrams) = flowtel_pcap::read_all(e.path()) else {
            continue;
        };
        out.extend(datagrams.into_iter().map(|d| d.payload));
    }
    out
}

fn seeds() -> Vec<Vec<u8>> {
    let p = packet();
    let mut v = corpus_datagrams();
    v.push(
        datagram(vec![
            Sample::Flow(flow_sample(vec![
                header_record(&p),
                FlowData::Gateway {
                    next_hop: None,
                    router_as: 1,
                    src_as: 2,
                    src_peer_as: 3,
                    as_path: vec![AsPathSegment {
                        segment_type: 2,
                        asns: vec![4, 5],
                    }],
                    communities: vec![6],
                    local_pref: 7,
                },
            ])),
            Sample::Counters(CounterSample {
                expanded: true,
                sequence: 1,
                source_id_type: 0,
                source_id_index: 1,
                records: vec![
                    CounterData::Interface(InterfaceCounters::default()),
                    CounterData::Ethernet(EthernetCounters::default()),
                ],
            }),
        ])
        .to_bytes(),
    );
    v
}

proptest! {
    /// Any mutation or truncation of a real datagram decodes without panicking, and never
    /// yields more records than the datagram could hold.
    #[test]
    fn mutated_datagrams_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let seeds = seeds();
        let mut bytes = pick.get(&seeds).clone();
        for (at, v) in &edits {
            let i = at.index(bytes.len());
            bytes[i] = *v;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep);
        let config = DecoderConfig { keep_unknown_fields: true, ..DecoderConfig::default() };
        let (out, report) = decode_with(config, &bytes);
        prop_assert!(out.flows.len() + out.counters.len() <= bytes.len() / 8);
        prop_assert_eq!(report.records, out.flows.len());
    }

    /// Whatever the packet and sample fields, decode(encode(x)) gives x back.
    #[test]
    fn encoded_flow_samples_round_trip(
        v6 in any::<bool>(),
        src4 in any::<[u8; 4]>(), dst4 in any::<[u8; 4]>(),
        src6 in any::<[u8; 16]>(), dst6 in any::<[u8; 16]>(),
        proto in prop::sample::select(vec![6u8, 17, 1, 58, 47]),
        sport in any::<u16>(), dport in any::<u16>(), flags in any::<u8>(), tos in any::<u8>(),
        vlan in prop::option::of(1u16..4095), ip_length in 64u16..9000,
        rate in 1u32.., pool in any::<u32>(), seq in any::<u32>(),
        expanded in any::<bool>(), in_if in 1u32..0x3fff_fffe, cut in 14usize..200,
    ) {
        let (src_addr, dst_addr) = if v6 {
            (IpAddr::from(src6), IpAddr::from(dst6))
        } else {
            (IpAddr::from(src4), IpAddr::from(dst4))
        };
        let proto = if v6 && proto == 1 { 58 } else if !v6 && proto == 58 { 1 } else { proto };
        let p = PacketHeader { vlan, src_addr, dst_addr, ip_protocol: proto, tos,
            src_port: sport, dst_port: dport, tcp_flags: flags, ip_length, ..packet() };
        let mut f = flow_sample(vec![FlowData::SampledHeader {
            protocol: 1, frame_length: p.frame_length(), stripped: 4, header: p.to_bytes(cut),
        }]);
        f.expanded = expanded;
        f.sampling_rate = rate;
        f.sample_pool = pool;
        f.sequence = seq;
        f.input = SflowInterface::Index(in_if);
        let (out, report) = decode(&datagram(vec![Sample::Flow(f)]).to_bytes());
        prop_assert!(report.errors.is_empty());
        prop_assert_eq!(out.flows.len(), 1);
        let r: &FlowRecord = &out.flows[0];
        prop_assert_eq!(r.bytes, u64::from(p.frame_length()));
        prop_assert_eq!(r.sampling_rate, Some(rate));
        prop_assert_eq!(r.in_if, Some(in_if));
        let s = r.sflow.expect("details");
        prop_assert_eq!((s.sequence, s.sample_pool), (seq, pool));
        prop_assert_eq!(r.vlan, if cut >= 16 { vlan } else { None });
        let l3 = 14 + if vlan.is_some() { 4 } else { 0 };
        let ip_hdr = if v6 { 40 } else { 20 };
        if cut >= l3 + ip_hdr {
            prop_assert_eq!((r.src_addr, r.dst_addr), (Some(src_addr), Some(dst_addr)));
            prop_assert_eq!(r.ip_protocol, proto);
            prop_assert_eq!(r.tos, tos);
        } else {
            prop_assert_eq!(r.src_addr, None);
        }
        let l4 = l3 + ip_hdr;
        match proto {
            6 if cut >= l4 + 14 => {
                prop_assert_eq!((r.src_port, r.dst_port, r.tcp_flags), (sport, dport, u16::from(flags)));
            }
            17 if cut >= l4 + 4 => prop_assert_eq!((r.src_port, r.dst_port), (sport, dport)),
            1 | 58 if cut >= l4 + 2 => {
                prop_assert_eq!(r.icmp_type, Some((dport >> 8) as u8));
                prop_assert_eq!(r.icmp_code, Some(dport as u8));
            }
            _ => {}
        }
    }
}
