//! Cross-check with tshark, an independent decoder: for every NetFlow/IPFIX fixture, the
//! number of flow records and the sums of bytes and packets `flowtel decode` prints must equal
//! tshark's; for the sFlow fixture, the number of flow samples. flowtel is compared with the
//! totals committed in `tests/fixtures/tshark-totals.txt` (written by regenerate.sh) always,
//! and with a live tshark run, made exactly as `../shared/tools/make-captures.sh` makes it,
//! when tshark is installed.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

/// NetFlow/IPFIX fixtures and the UDP port their exporter sent to (tshark's `-d` mapping).
const NETFLOW: &[(&str, u16)] = &[
    ("softflowd-v5", 20055),
    ("softflowd-v9", 20056),
    ("softflowd-ipfix", 20057),
    ("pmacct-nfprobe-v9", 21009),
    ("pmacct-nfprobe-v10", 21010),
];
const SFLOW: (&str, u16) = ("pmacct-sfprobe-sr10", 26343);

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Totals {
    records: u64,
    octets: u64,
    packets: u64,
}

/// `tshark-totals.txt`: `NAME.pcap RECORDS OCTETS PACKETS` lines (and
/// `NAME.pcap samples=N estimated_frame_bytes=M` for sFlow).
fn committed_totals() -> BTreeMap<String, Vec<String>> {
    let path = common::fixtures().join("tshark-totals.txt");
    let text = std::fs::read_to_string(&path).expect("tests/fixtures/tshark-totals.txt");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut words = l.split_whitespace().map(str::to_owned);
            let name = words.next().unwrap_or_default();
            (name.trim_end_matches(".pcap").to_owned(), words.collect())
        })
        .collect()
}

fn committed_netflow(name: &str) -> Totals {
    let totals = committed_totals();
    let words = totals
        .get(name)
        .unwrap_or_else(|| panic!("{name} is not in tshark-totals.txt"));
    let n = |i: usize| -> u64 { words[i].parse().expect("a number in tshark-totals.txt") };
    Totals {
        records: n(0),
        octets: n(1),
        packets: n(2),
    }
}

/// `samples=N estimated_frame_bytes=M` of the sFlow line in tshark-totals.txt.
fn committed_sflow(name: &str) -> (u64, u64) {
    let totals = committed_totals();
    let words = totals
        .get(name)
        .unwrap_or_else(|| panic!("{name} is not in tshark-totals.txt"));
    let value = |key: &str| -> u64 {
        words
            .iter()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{key}N in tshark-totals.txt"))
    };
    (value("samples="), value("estimated_frame_bytes="))
}

fn flowtel_totals(name: &str, protocol: &str) -> Totals {
    let (json, _) = common::decode_fixture(name, "json");
    let mut totals = Totals::default();
    for line in json.lines() {
        let value: Value = serde_json::from_str(line).expect("JSON line");
        if value["record"] != "flow" {
            continue;
        }
        assert_eq!(value["flow_protocol"], protocol, "{name}: {line}");
        totals.records += 1;
        totals.octets += value["bytes"].as_u64().expect("bytes");
        totals.packets += value["packets"].as_u64().expect("packets");
    }
    totals
}

/// Run tshark with `-d udp.port==PORT,DISSECTOR -T fields -E occurrence=a -E separator=;`
/// and the given fields; `None` (with the reason printed) when tshark is not installed.
fn tshark_fields(name: &str, port: u16, dissector: &str, fields: &[&str]) -> Option<Vec<String>> {
    if !common::require_tool("tshark", "apt-get install tshark") {
        return None;
    }
    let path = common::fixtures().join(format!("{name}.pcap"));
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(&path)
        .args(["-d", &format!("udp.port=={port},{dissector}")])
        .args(["-T", "fields", "-E", "occurrence=a", "-E", "separator=;"]);
    for field in fields {
        cmd.args(["-e", field]);
    }
    let out = cmd.output().expect("run tshark");
    assert!(
        out.status.success(),
        "tshark failed on {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

/// make-captures.sh's awk: per line, the comma-separated octets and packets of each record.
fn tshark_netflow(name: &str, port: u16) -> Option<Totals> {
    let lines = tshark_fields(name, port, "cflow", &["cflow.octets", "cflow.packets"])?;
    let mut totals = Totals::default();
    for line in lines {
        let (octets, packets) = line.split_once(';').unwrap_or((&line, ""));
        let octets: Vec<&str> = octets.split(',').filter(|s| !s.is_empty()).collect();
        let packets: Vec<&str> = packets.split(',').collect();
        for (i, o) in octets.iter().enumerate() {
            totals.records += 1;
            totals.octets += o.parse::<u64>().unwrap_or(0);
            totals.packets += packets.get(i).and_then(|p| p.parse().ok()).unwrap_or(0);
        }
    }
    Some(totals)
}

#[test]
fn netflow_and_ipfix_totals_equal_tsharks() {
    for (name, port) in NETFLOW {
        let protocol = match *name {
            "softflowd-v5" => "netflow_v5",
            n if n.ends_with("v9") => "netflow_v9",
            _ => "ipfix",
        };
        let flowtel = flowtel_totals(name, protocol);
        let committed = committed_netflow(name);
        assert!(
            committed.records > 0,
            "{name}: no records in tshark-totals.txt"
        );
        assert_eq!(
            flowtel, committed,
            "{name}: flowtel (left) differs from tshark-totals.txt (right)"
        );
        if let Some(live) = tshark_netflow(name, *port) {
            assert_eq!(
                flowtel, live,
                "{name}: flowtel (left) differs from tshark (right)"
            );
        }
    }
}

/// Flow samples, and the sum of sampled frame length times sampling rate.
fn flowtel_sflow(name: &str) -> (u64, u64) {
    let (json, _) = common::decode_fixture(name, "json");
    let (mut samples, mut estimated) = (0, 0);
    for line in json.lines() {
        let value: Value = serde_json::from_str(line).expect("JSON line");
        if value["record"] != "flow" {
            continue;
        }
        assert_eq!(value["flow_protocol"], "sflow_v5", "{name}: {line}");
        samples += 1;
        let rate = value["sampling_rate"]
            .as_u64()
            .expect("sFlow samples carry a rate");
        estimated += value["bytes"].as_u64().expect("bytes") * rate;
    }
    (samples, estimated)
}

#[test]
fn sflow_samples_and_estimated_bytes_equal_tsharks() {
    let (name, port) = SFLOW;
    let flowtel = flowtel_sflow(name);
    let committed = committed_sflow(name);
    assert!(committed.0 > 0);
    assert_eq!(
        flowtel, committed,
        "{name}: flowtel (left) vs tshark-totals.txt (samples, estimated frame bytes)"
    );
    // make-captures.sh: one sampled header (frame_length) per flow sample, each times the
    // sample's sampling_rate.
    let fields = [
        "sflow_245.header.frame_length",
        "sflow.flow_sample.sampling_rate",
    ];
    if let Some(lines) = tshark_fields(name, port, "sflow", &fields) {
        let (mut samples, mut estimated) = (0u64, 0u64);
        for line in lines {
            let (frames, rates) = line.split_once(';').unwrap_or((&line, ""));
            let rates: Vec<&str> = rates.split(',').collect();
            for (i, frame) in frames.split(',').filter(|s| !s.is_empty()).enumerate() {
                samples += 1;
                let rate: u64 = rates.get(i).and_then(|r| r.parse().ok()).unwrap_or(0);
                estimated += frame.parse::<u64>().unwrap_or(0) * rate;
            }
        }
        assert_eq!(
            flowtel,
            (samples, estimated),
            "{name}: flowtel (left) vs tshark (right)"
        );
    }
}
