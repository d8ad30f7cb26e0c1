//! sFlow v5 over real captures: golden JSONL for Akvorado's sFlow test captures and tshark
//! cross-checks for a pmacct sfprobe capture.
//!
//! Golden files are rewritten with `UPDATE_GOLDEN=1 cargo test -p flowtel-decode --test sflow`,
//! never by hand.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use flowtel_decode::{DecodeOutput, Decoder, DecoderConfig, FlowProtocol};

const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");

fn decode_capture(path: &Path, config: DecoderConfig) -> (Decoder, DecodeOutput, Vec<String>) {
    let mut decoder = Decoder::new(config);
    let mut out = DecodeOutput::default();
    let mut errors = Vec::new();
    let datagrams =
        flowtel_pcap::read_all(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    for udp in datagrams {
        let report = decoder.decode(udp.src, &udp.payload, udp.timestamp_ns, &mut out);
        assert_eq!(
            report.protocol,
            Some(FlowProtocol::SflowV5),
            "{}",
            path.display()
        );
        errors.extend(report.errors.iter().map(|e| e.to_string()));
    }
    (decoder, out, errors)
}

fn check_golden(name: &str, actual: &str) {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/sflow")).join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert!(
        expected == actual,
        "{} differs from the decoder output (rerun with UPDATE_GOLDEN=1 if intended)",
        path.display()
    );
}

#[test]
fn akvorado_sflow_captures_match_golden() {
    let dir = Path::new(SHARED).join("corpus/akvorado/sflow");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("skipping: {} is absent", dir.display());
        return;
    };
    let mut names: Vec<_> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 11);
    for name in names {
        let config = DecoderConfig {
            keep_unknown_fields: true,
            ..DecoderConfig::default()
        };
        let (_, out, errors) = decode_capture(&dir.join(&name), config);
        assert!(errors.is_empty(), "{name}: {errors:?}");
        assert!(!out.flows.is_empty(), "{name}");
        let mut jsonl = String::new();
        for r in &out.flows {
            let _ = writeln!(jsonl, "{}", serde_json::to_string(r).expect("json"));
        }
        for c in &out.counters {
            let _ = writeln!(jsonl, "{}", serde_json::to_string(c).expect("json"));
        }
        check_golden(&name.replace(".pcap", ".jsonl"), &jsonl);
    }
}

/// Values read by hand from `tshark -r data-1140.pcap -V` (first datagram, first sample) and
/// from the other captures' tshark views.
#[test]
fn akvorado_sflow_fields_match_tshark() {
    let dir = Path::new(SHARED).join("corpus/akvorado/sflow");
    if !dir.is_dir() {
        eprintln!("skipping: {} is absent", dir.display());
        return;
    }
    let (_, out, _) = decode_capture(&dir.join("data-1140.pcap"), DecoderConfig::default());
    assert_eq!(out.flows.len(), 5);
    let r = &out.flows[0];
    let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
    assert_eq!(r.exporter, "192.0.2.100:47873".parse().expect("addr"));
    assert_eq!(r.agent, Some(ip("172.16.0.3")));
    assert_eq!(r.observation_domain, 0);
    let s = r.sflow.expect("details");
    assert_eq!(
        (s.datagram_sequence, s.uptime_ms),
        (812_646_826, 930_960_704)
    );
    assert_eq!((s.sequence, s.source_id_index), (588_827_825, 28));
    assert_eq!((s.sample_pool, s.drops), (1_664_271_360, 0));
    assert_eq!(r.sampling_rate, Some(1024));
    assert_eq!((r.in_if, r.out_if), (Some(27), Some(28)));
    assert_eq!(r.vlan, Some(100));
    assert_eq!(r.bytes, 1518);
    assert_eq!(r.src_addr, Some(ip("2a0c:8880:2:0:185:21:130:38")));
    assert_eq!(r.dst_addr, Some(ip("2a0c:8880:2:0:185:21:130:39")));
    assert_eq!((r.ip_protocol, r.src_port, r.dst_port), (6, 46026, 22));
    assert_eq!((r.tcp_flags, r.tos), (0x10, 0x08));
    assert_eq!(r.src_mac, Some([0x24, 0x6e, 0x96, 0x90, 0x7a, 0x50]));
    assert_eq!(r.dst_mac, Some([0x24, 0x6e, 0x96, 0x04, 0x3c, 0x08]));
    // Second sample: incoming VLAN unknown (0xFFFFFFFF) -> outgoing VLAN 100; IPv4 443 -> 56876.
    let r = &out.flows[1];
    assert_eq!(
        (r.in_if, r.out_if, r.vlan),
        (Some(49001), Some(25), Some(100))
    );
    assert_eq!(r.bytes, 439);
    assert_eq!(r.src_addr, Some(ip("104.26.8.24")));
    assert_eq!((r.src_port, r.dst_port, r.tcp_flags), (443, 56876, 0x18));

    let (_, out, _) = decode_capture(
        &dir.join("data-multiple-interfaces.pcap"),
        DecoderConfig::default(),
    );
    let s = out.flows[0].sflow.expect("details");
    assert_eq!(s.output, flowtel_decode::SflowInterface::Multiple(7));
    assert_eq!(out.flows[0].out_if, None);
}

/// A pmacct sfprobe capture (1 in 10): sample count equals tshark's, every record has rate 10,
/// and sum(bytes x rate) matches tshark's sum(frame_length x sampling_rate) within 3 % (it is
/// exact: bytes is frame_length, see the sflow module doc).
#[test]
fn pmacct_sfprobe_matches_tshark_totals() {
    // Committed by tests/fixtures/regenerate.sh with the tshark totals beside it.
    let dir = Path::new(FIXTURES);
    let pcap = dir.join("pmacct-sfprobe-sr10.pcap");
    let totals = std::fs::read_to_string(dir.join("tshark-totals.txt")).expect("totals file");
    let line = totals
        .lines()
        .find(|l| l.starts_with("pmacct-sfprobe-sr10.pcap "))
        .expect("sfprobe totals line");
    let field = |key: &str| -> u64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {line:?}"))
    };
    let (samples, estimated) = (field("samples="), field("estimated_frame_bytes="));

    let (_, out, errors) = decode_capture(&pcap, DecoderConfig::default());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(out.flows.len() as u64, samples);
    assert!(
        out.flows
            .iter()
            .all(|r| r.flow_protocol == FlowProtocol::SflowV5)
    );
    assert!(out.flows.iter().all(|r| r.sampling_rate == Some(10)));
    assert!(out.flows.iter().all(|r| r.packets == 1));
    let ours: u64 = out
        .flows
        .iter()
        .map(|r| r.bytes * u64::from(r.sampling_rate.unwrap_or(0)))
        .sum();
    let diff = ours.abs_diff(estimated) as f64 / estimated as f64;
    assert!(diff <= 0.03, "flowtel {ours} vs tshark {estimated}");
    assert_eq!(ours, estimated);
    // Every sample's header was parsed down to the transport layer.
    assert!(
        out.flows
            .iter()
            .all(|r| r.src_addr.is_some() && r.ip_protocol != 0)
    );
}
