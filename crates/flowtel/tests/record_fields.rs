//! A metrics-only pipeline has its decoder read only the record fields its rollups use
//! (`flowtel_decode::RecordFields`). Its series must be exactly those of a pipeline that reads
//! every field (one with per-flow sinks): checked for each group of dimensions on every
//! committed capture and every capture of the shared corpus of real exporters.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use flowtel::config::parse_yaml;
use flowtel::pipeline::stats::WorkerStats;
use flowtel::pipeline::{PipelineSpec, WorkerPipeline};
use flowtel_decode::RecordFields;
use flowtel_decode::prehash::ExporterKey;
use flowtel_rollup::WindowBatch;

/// One datagram: its source and payload.
type Datagram = (SocketAddr, Vec<u8>);

/// Every capture under `dir`, recursively.
fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            captures(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e == "pcap" || e == "pcapng")
        {
            out.push(path);
        }
    }
}

/// The series of `spec`'s pipeline over `datagrams` (one window), and the fields it read.
fn series(spec: &PipelineSpec, datagrams: &[Datagram]) -> (Vec<WindowBatch>, RecordFields) {
    let mut p = WorkerPipeline::new(spec).unwrap();
    let mut stats = WorkerStats::default();
    for (src, payload) in datagrams {
        p.process(
            *src,
            ExporterKey::new(src.ip()),
            true,
            payload,
            1,
            &mut stats,
        );
    }
    let fields = p.record_fields();
    let batches = p.flush(2, true, &mut stats).finish(&mut BTreeMap::new());
    (batches, fields)
}

/// IPFIX messages whose records carry every group's elements with varied values, including
/// those no capture has: postVlanId without vlanId (the VLAN falls back to it), firewallEvent,
/// dot1qVlanId and the physical interfaces (fallbacks for the VLAN and interfaces).
fn every_group() -> Vec<Datagram> {
    use flowtel_encode::{ExportVersion, FieldSpec as F, MessageHeader, MessageWriter};
    // RFC 7012 elements: addresses, ports, protocol, octets, packets, ToS, interfaces, AS,
    // postVlanId, firewallEvent, natEvent, post-NAT addresses and ports, flowDirection, TCP
    // flags, flowStart/EndMilliseconds.
    let first = [
        F::new(8, 4),
        F::new(12, 4),
        F::new(7, 2),
        F::new(11, 2),
        F::new(4, 1),
        F::new(1, 8),
        F::new(2, 8),
        F::new(5, 1),
        F::new(10, 4),
        F::new(14, 4),
        F::new(16, 4),
        F::new(17, 4),
        F::new(59, 2),
        F::new(233, 1),
        F::new(230, 1),
        F::new(225, 4),
        F::new(226, 4),
        F::new(227, 2),
        F::new(228, 2),
        F::new(61, 1),
        F::new(6, 1),
        F::new(152, 8),
        F::new(153, 8),
    ];
    // Addresses, ports, protocol, octets, dot1qVlanId, ingress/egressPhysicalInterface.
    let second = [
        F::new(8, 4),
        F::new(12, 4),
        F::new(7, 2),
        F::new(11, 2),
        F::new(4, 1),
        F::new(1, 4),
        F::new(243, 2),
        F::new(252, 4),
        F::new(253, 4),
    ];
    // ICMP with a source port and icmpTypeCodeIPv4, samplingInterval, postOctetDeltaCount as the only octet
    // counter, and a configured enterprise element (`decoder.fields`).
    let third = [
        F::new(8, 4),
        F::new(12, 4),
        F::new(4, 1),
        F::new(7, 2),
        F::new(32, 2),
        F::new(34, 4),
        F::new(23, 8),
        F::enterprise(1, 4, 32473),
    ];
    let src = "192.0.2.7:4739".parse().unwrap();
    (0u32..8)
        .map(|m| {
            let header = MessageHeader {
                export_time_secs: 1_700_000_000,
                sequence: m * 32,
                domain: 1,
                ..Default::default()
            };
            let mut w = MessageWriter::new(ExportVersion::Ipfix, header);
            w.template(256, &first);
            w.template(257, &second);
            w.template(258, &third);
            for i in 0..16u32 {
                let n = m * 16 + i;
                let mut r = Vec::new();
                r.extend([10, 0, (n % 5) as u8, 1, 198, 51, 100, (n % 7) as u8]);
                r.extend((1024 + (n % 3) as u16).to_be_bytes());
                r.extend((443u16 + (n % 2) as u16).to_be_bytes());
                r.push(if n % 4 == 0 { 17 } else { 6 });
                r.extend(u64::from(1000 + n).to_be_bytes());
                r.extend(u64::from(1 + n % 9).to_be_bytes());
                r.push((n % 4) as u8 * 32);
                r.extend((n % 3).to_be_bytes());
                r.extend((n % 5).to_be_bytes());
                r.extend((64_500 + n % 2).to_be_bytes());
                r.extend((64_510 + n % 3).to_be_bytes());
                r.extend((100 + (n % 4) as u16).to_be_bytes());
                r.push((n % 5) as u8);
                r.push((n % 3) as u8);
                r.extend([203, 0, 113, (n % 6) as u8, 203, 0, 113, 200]);
                r.extend((40_000 + (n % 4) as u16).to_be_bytes());
                r.extend((8443u16 + (n % 2) as u16).to_be_bytes());
                r.push((n % 2) as u8);
                r.push(0x18);
                r.extend(1_700_000_000_000u64.to_be_bytes());
                r.extend(1_700_000_001_000u64.to_be_bytes());
                w.data_record(256, &r);
                let mut r = Vec::new();
                r.extend([10, 1, 0, (n % 3) as u8, 198, 51, 100, 9]);
                r.extend(53u16.to_be_bytes());
                r.extend((5353u16 + (n % 2) as u16).to_be_bytes());
                r.push(17);
                r.extend((500 + n).to_be_bytes());
                r.extend((200 + (n % 3) as u16).to_be_bytes());
                r.extend((7 + n % 2).to_be_bytes());
                r.extend((9 + n % 3).to_be_bytes());
                w.data_record(257, &r);
                let mut r = Vec::new();
                r.extend([10, 2, 0, (n % 2) as u8, 198, 51, 100, 10, 1]);
                // A source port the explicit ICMP type makes the decoder clear.
                r.extend((n as u16 % 2 * 1000).to_be_bytes());
                r.extend([[8, 0], [0, 0], [3, 1]][(n % 3) as usize]);
                r.extend((1 + n % 4 * 100).to_be_bytes());
                r.extend(u64::from(84 * (n % 5 + 1)).to_be_bytes());
                r.extend((n % 3).to_be_bytes());
                w.data_record(258, &r);
            }
            (src, w.finish())
        })
        .collect()
}

#[test]
fn metrics_only_series_equal_those_read_from_whole_records() {
    let mut files = Vec::new();
    captures(&common::fixtures(), &mut files);
    let corpus = common::repo().join("../shared/corpus");
    if corpus.is_dir() {
        captures(&corpus, &mut files);
    } else {
        common::skip(&format!(
            "{} is absent: committed captures only",
            corpus.display()
        ));
    }
    let mut inputs: Vec<(String, Vec<Datagram>)> = files
        .into_iter()
        .filter_map(|f| {
            let datagrams = flowtel_pcap::read_all(&f).ok()?;
            let datagrams = datagrams.into_iter().map(|d| (d.src, d.payload)).collect();
            Some((f.display().to_string(), datagrams))
        })
        .collect();
    assert!(inputs.len() >= 6, "{} captures", inputs.len());
    inputs.push(("every group of fields (IPFIX)".to_owned(), every_group()));

    // One rollup per group of dimensions, so each pipeline reads only that group beyond the
    // core: a dimension placed in the wrong group shows as a different series.
    let groups: [(&str, RecordFields); 8] = [
        (
            "[device_name, exporter_address, src_addr, dst_addr, src_port, dst_port, transport, \
             application, src_country, dst_country, src_net_name, dst_net_name, \
             custom_int.tenant]",
            RecordFields::CORE,
        ),
        ("[src_addr, src_as, dst_as]", RecordFields::AS_NUMBERS),
        ("[src_addr, in_if, out_if]", RecordFields::INTERFACES),
        (
            "[src_addr, in_if_name, out_if_name]",
            RecordFields::INTERFACES,
        ),
        ("[src_addr, vlan]", RecordFields::VLAN),
        ("[src_addr, tos]", RecordFields::TOS),
        ("[src_addr, firewall_event]", RecordFields::FIREWALL_EVENT),
        (
            "[src_addr, nat_event, post_nat_src_addr, post_nat_dst_addr, post_nat_src_port, \
             post_nat_dst_port]",
            RecordFields::NAT,
        ),
    ];
    let mut points = 0usize;
    for (dimensions, group) in groups {
        // Bytes both ways, packets egress only, flows ingress only: the counters, sampling and
        // direction are read in every set.
        let yaml = format!(
            "decoder: {{ fields: [{{ enterprise: 32473, id: 1, name: tenant, type: unsigned }}] }}\n\
             rollups:\n\
             - {{ name: bytes, dimensions: {dimensions}, top_k: 100000, max_keys: 1000000 }}\n\
             - {{ name: packets_out, value: packets, direction: out, dimensions: {dimensions}, \
             top_k: 100000, max_keys: 1000000 }}\n\
             - {{ name: flows_in, value: flows, direction: in, sample_adjust: false, \
             dimensions: {dimensions}, top_k: 100000, max_keys: 1000000 }}\n"
        );
        let config = parse_yaml(&yaml).unwrap();
        let narrow = PipelineSpec::from_config(&config).unwrap();
        let whole = PipelineSpec {
            records: true,
            ..narrow.clone()
        };
        for (file, datagrams) in &inputs {
            let (want, all) = series(&whole, datagrams);
            let (got, read) = series(&narrow, datagrams);
            assert_eq!(all, RecordFields::ALL);
            assert_eq!(read, RecordFields::CORE | group, "{dimensions}");
            assert!(!read.contains(RecordFields::OTHER));
            assert_eq!(got, want, "{file} with {dimensions}");
            points += want.iter().map(|b| b.points.len()).sum::<usize>();
        }
    }
    assert!(points > 10_000, "{points} points compared");
}
