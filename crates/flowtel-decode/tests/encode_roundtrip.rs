//! Round trips through the public encoder: what `flowtel_encode` writes, the decoder
//! reads back identically — templates, sampling options, sequence numbers and every field of
//! the standard layout, for NetFlow v9 and IPFIX, IPv4 and IPv6.

use std::net::{IpAddr, SocketAddr};

use flowtel_decode::{
    DecodeOutput, Decoder, DecoderConfig, FlowDirection, FlowProtocol, FlowRecord, SamplingSource,
};
use flowtel_encode::{
    ExportVersion, FieldSpec, FlowExporter, MessageHeader, MessageWriter, SamplerSpec,
};

const NOW_MS: u64 = 1_763_800_000_250;
const BOOT_MS: u64 = 1_763_000_000_000;

fn exporter() -> SocketAddr {
    "198.51.100.7:50001".parse().unwrap()
}

fn flow(src: &str, dst: &str, proto: u8, sport: u16, dport: u16, bytes: u64) -> FlowRecord {
    let mut r = FlowRecord::new(exporter(), FlowProtocol::NetflowV9, 0);
    r.src_addr = Some(src.parse().unwrap());
    r.dst_addr = Some(dst.parse().unwrap());
    // The decoder names the network layer from the address family.
    r.etype = Some(if r.src_addr.unwrap().is_ipv4() {
        0x0800
    } else {
        0x86dd
    });
    r.ip_protocol = proto;
    r.src_port = sport;
    r.dst_port = dport;
    r.bytes = bytes;
    r.packets = bytes / 700 + 1;
    r.tos = 0x28;
    r.tcp_flags = if proto == 6 { 0x1b } else { 0 };
    r.src_prefix_len = Some(24);
    r.dst_prefix_len = Some(16);
    r.in_if = Some(3);
    r.out_if = Some(7);
    r.src_as = Some(64_512);
    r.dst_as = Some(15_169);
    r.next_hop = Some(if r.src_addr.unwrap().is_ipv4() {
        "192.0.2.254".parse().unwrap()
    } else {
        "2001:db8::fe".parse().unwrap()
    });
    r.direction = Some(FlowDirection::Egress);
    r.flow_start_ns = Some((NOW_MS - 30_000) * 1_000_000);
    r.flow_end_ns = Some((NOW_MS - 1_250) * 1_000_000);
    r
}

fn sample_flows() -> Vec<FlowRecord> {
    // ICMP has no ports: the decoder reports type and code, the encoders write NetFlow's
    // type << 8 | code destination port from them.
    let mut icmp = flow("10.1.2.3", "8.8.8.8", 1, 0, 0, 84);
    icmp.icmp_type = Some(8);
    icmp.icmp_code = Some(0);
    icmp.direction = Some(FlowDirection::Ingress);
    vec![
        flow("10.1.2.3", "93.184.216.34", 6, 51_512, 443, 150_000),
        flow(
            "2001:db8:1::10",
            "2a00:1450:4007::200e",
            17,
            40_000,
            53,
            1_200,
        ),
        icmp,
        flow("172.16.0.9", "192.168.1.20", 17, 123, 123, 76),
    ]
}

/// What the decoder reports for a record the exporter wrote.
fn expected(
    mut r: FlowRecord,
    version: ExportVersion,
    domain: u32,
    rate: u32,
    at: u64,
) -> FlowRecord {
    r.exporter = exporter();
    r.time_received_ns = at;
    r.observation_domain = domain;
    r.flow_protocol = match version {
        ExportVersion::NetflowV9 => FlowProtocol::NetflowV9,
        ExportVersion::Ipfix => FlowProtocol::Ipfix,
    };
    r.sampling_rate = Some(rate);
    r.sampling_source = SamplingSource::Options;
    r.sampler_id = (version == ExportVersion::NetflowV9).then_some(4);
    r
}

fn decode(dec: &mut Decoder, d: &[u8], at: u64) -> (Vec<FlowRecord>, usize) {
    let mut out = DecodeOutput::default();
    let report = dec.decode(exporter(), d, at, &mut out);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    (out.flows, report.records)
}

fn order(v: &mut [FlowRecord]) {
    v.sort_by_key(|r| (r.src_addr.map(|a| a.is_ipv6()), r.bytes));
}

#[test]
fn v9_and_ipfix_flows_round_trip_with_sampling_from_options() {
    for version in [ExportVersion::NetflowV9, ExportVersion::Ipfix] {
        let domain = 17;
        let mut exp = FlowExporter::new(version, domain, BOOT_MS).with_sampler(SamplerSpec {
            sampler_id: 4,
            interval: 512,
        });
        let mut dec = Decoder::new(DecoderConfig::default());
        let at = NOW_MS * 1_000_000 + 5;
        let d = exp.datagram(NOW_MS, true, &sample_flows());
        let (mut got, n) = decode(&mut dec, &d, at);
        assert_eq!(n, 4, "{version:?}");
        let mut want: Vec<_> = sample_flows()
            .into_iter()
            .map(|r| expected(r, version, domain, 512, at))
            .collect();
        order(&mut got);
        order(&mut want);
        assert_eq!(got, want, "{version:?}");

        // Later datagrams without templates decode with the learnt templates and rate.
        let d2 = exp.datagram(NOW_MS + 1_000, false, &sample_flows()[..1]);
        let (got2, _) = decode(&mut dec, &d2, at);
        assert_eq!(got2.len(), 1);
        assert_eq!(got2[0].bytes, 150_000);
        assert_eq!(got2[0].sampling_rate, Some(512));
        assert_eq!(dec.stats().sampling_rate_unknown, 0);
    }
}

#[test]
fn data_without_templates_waits_for_them() {
    let mut exp = FlowExporter::new(ExportVersion::Ipfix, 1, BOOT_MS);
    let mut dec = Decoder::new(DecoderConfig::default());
    let data_only = exp.datagram(NOW_MS, false, &sample_flows()[..1]);
    let mut out = DecodeOutput::default();
    dec.decode(exporter(), &data_only, 1, &mut out);
    assert!(out.flows.is_empty());
    assert_eq!(dec.pending_sets(), 1);
    let with_templates = exp.datagram(NOW_MS, true, &[]);
    dec.decode(exporter(), &with_templates, 2, &mut out);
    assert_eq!(out.flows.len(), 1, "pending set released by the template");
    // No sampler announced: the rate is unknown and counted.
    assert_eq!(out.flows[0].sampling_rate, None);
}

fn be16(d: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([d[at], d[at + 1]])
}

fn be32(d: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

#[test]
fn headers_carry_rfc_counts_lengths_and_sequence_numbers() {
    // NetFlow v9 (RFC 3954 §5.1): count = every record; sequence = packets sent before.
    let mut v9 =
        FlowExporter::new(ExportVersion::NetflowV9, 99, BOOT_MS).with_sampler(SamplerSpec {
            sampler_id: 1,
            interval: 100,
        });
    let a = v9.datagram(NOW_MS, true, &sample_flows());
    assert_eq!(be16(&a, 0), 9);
    // 2 templates + 1 options template + 1 options record + 4 flows.
    assert_eq!(be16(&a, 2), 8);
    assert_eq!(be32(&a, 4), ((NOW_MS / 1000) * 1000 - BOOT_MS) as u32);
    assert_eq!(be32(&a, 8), (NOW_MS / 1000) as u32);
    assert_eq!(be32(&a, 12), 0);
    assert_eq!(be32(&a, 16), 99);
    assert_eq!(a.len() % 4, 0, "v9 sets are padded to 32 bits");
    let b = v9.datagram(NOW_MS, false, &sample_flows()[..2]);
    assert_eq!(be16(&b, 2), 2);
    assert_eq!(be32(&b, 12), 1);

    // IPFIX (RFC 7011 §3.1): length = message length; sequence = data records sent before,
    // options data included, templates excluded.
    let mut ipfix = FlowExporter::new(ExportVersion::Ipfix, 5, BOOT_MS).with_sampler(SamplerSpec {
        sampler_id: 1,
        interval: 100,
    });
    let a = ipfix.datagram(NOW_MS, true, &sample_flows());
    assert_eq!(be16(&a, 0), 10);
    assert_eq!(usize::from(be16(&a, 2)), a.len());
    assert_eq!(be32(&a, 8), 0);
    assert_eq!(be32(&a, 12), 5);
    let b = ipfix.datagram(NOW_MS, false, &sample_flows());
    assert_eq!(be32(&b, 8), 5);
    let c = ipfix.datagram(NOW_MS, false, &[]);
    assert_eq!(be32(&c, 8), 9);
    assert_eq!(c.len(), 16, "an empty message is its header");
}

#[test]
fn records_per_datagram_keeps_datagrams_under_the_limit() {
    for version in [ExportVersion::NetflowV9, ExportVersion::Ipfix] {
        let mut exp = FlowExporter::new(version, 1, BOOT_MS).with_sampler(SamplerSpec {
            sampler_id: 2,
            interval: 1000,
        });
        for with_templates in [true, false] {
            let n = exp.records_per_datagram(1400, with_templates);
            assert!(n >= 10, "{version:?}: {n}");
            let flows: Vec<_> = sample_flows().into_iter().cycle().take(n).collect();
            let d = exp.datagram(NOW_MS, with_templates, &flows);
            assert!(d.len() <= 1400, "{version:?} {with_templates}: {}", d.len());
            let mut dec = Decoder::new(DecoderConfig::default());
            if !with_templates {
                dec.decode(
                    exporter(),
                    &exp.datagram(NOW_MS, true, &[]),
                    0,
                    &mut DecodeOutput::default(),
                );
            }
            let (got, _) = decode(&mut dec, &d, 1);
            assert_eq!(got.len(), n);
        }
    }
}

#[test]
fn message_writer_writes_enterprise_fields_and_withdrawals() {
    let header = MessageHeader {
        export_time_secs: 1_763_800_000,
        sys_uptime_ms: 0,
        sequence: 0,
        domain: 3,
    };
    let mut w = MessageWriter::new(ExportVersion::Ipfix, header);
    w.template(
        300,
        &[
            FieldSpec::new(8, 4),
            FieldSpec::new(12, 4),
            FieldSpec::new(1, 4),
            FieldSpec::enterprise(1, 4, 29_305),
        ],
    );
    let mut rec = Vec::new();
    rec.extend_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
    rec.extend_from_slice(&1000u32.to_be_bytes());
    rec.extend_from_slice(&250u32.to_be_bytes());
    w.data_record(300, &rec);
    let d = w.finish();
    let mut dec = Decoder::new(DecoderConfig::default());
    let (got, _) = decode(&mut dec, &d, 1);
    // RFC 5103 reverse octets (PEN 29305) make a second, reversed record.
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].bytes, 1000);
    assert_eq!(got[1].bytes, 250);
    assert_eq!(got[1].src_addr, Some(IpAddr::from([10, 0, 0, 2])));
    assert_eq!(dec.template_count(), 1);

    let mut w = MessageWriter::new(ExportVersion::Ipfix, header);
    w.withdraw_template(300);
    decode(&mut dec, &w.finish(), 2);
    assert_eq!(dec.template_count(), 0, "withdrawn");
}

/// `end_set` splits records of one kind into sets, `raw_set` writes a set verbatim (here one
/// with a reserved id, which the decoder reports and skips), and options templates can be
/// withdrawn.
#[test]
fn message_writer_splits_sets_writes_raw_sets_and_withdraws_options_templates() {
    let header = MessageHeader {
        export_time_secs: 1_763_800_000,
        sys_uptime_ms: 0,
        sequence: 0,
        domain: 4,
    };
    let mut w = MessageWriter::new(ExportVersion::Ipfix, header);
    w.template(300, &[FieldSpec::new(8, 4)]);
    w.end_set();
    w.template(301, &[FieldSpec::new(12, 4)]);
    w.raw_set(100, &[1, 2, 3, 4]);
    w.options_template(302, &[FieldSpec::new(10, 4)], &[FieldSpec::new(82, 8)]);
    let d = w.finish();
    // Header, then two template sets of 8 + 4 bytes each, the raw set, the options set.
    assert_eq!(be16(&d, 2) as usize, d.len());
    assert_eq!((be16(&d, 16), be16(&d, 18)), (2, 12));
    assert_eq!((be16(&d, 28), be16(&d, 30)), (2, 12));
    assert_eq!((be16(&d, 40), be16(&d, 42)), (100, 8));
    assert_eq!(d.get(44..48), Some(&[1, 2, 3, 4][..]));
    assert_eq!(be16(&d, 48), 3);
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut out = DecodeOutput::default();
    let report = dec.decode(exporter(), &d, 1, &mut out);
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    assert_eq!(dec.template_count(), 3);

    let mut w = MessageWriter::new(ExportVersion::Ipfix, header);
    w.withdraw_options_template(302);
    let d = w.finish();
    assert_eq!((be16(&d, 16), be16(&d, 18), be16(&d, 20)), (3, 8, 302));
    dec.decode(exporter(), &d, 2, &mut out);
    assert_eq!(dec.template_count(), 2, "options template withdrawn");
}

#[test]
fn netflow_v5_round_trips_ipv4_records_with_the_header_rate() {
    use flowtel_encode::{V5_MAX_RECORDS, V5Exporter};
    let mut exp = V5Exporter::new(1, 7, 100, BOOT_MS);
    let mut dec = Decoder::new(DecoderConfig::default());
    let flows = sample_flows();
    let d = exp.datagram(NOW_MS, &flows);
    assert_eq!(d.len(), 24 + 3 * 48, "the IPv6 record is skipped");
    let at = NOW_MS * 1_000_000;
    let (got, n) = decode(&mut dec, &d, at);
    assert_eq!(n, 3);
    let want: Vec<FlowRecord> = flows
        .into_iter()
        .filter(|r| r.src_addr.unwrap().is_ipv4())
        .map(|mut r| {
            r.exporter = exporter();
            r.time_received_ns = at;
            r.flow_protocol = FlowProtocol::NetflowV5;
            r.observation_domain = 1 << 8 | 7;
            r.sampling_rate = Some(100);
            r.sampling_source = SamplingSource::Header;
            // v5 has no direction field.
            r.direction = None;
            r
        })
        .collect();
    assert_eq!(got, want);
    // flow_sequence counts the flows sent before the packet; at most 30 records per packet.
    let many: Vec<_> = sample_flows().into_iter().cycle().take(80).collect();
    let d2 = exp.datagram(NOW_MS, &many);
    assert_eq!(be32(&d2, 16), 3);
    assert_eq!(usize::from(be16(&d2, 2)), V5_MAX_RECORDS);
}
