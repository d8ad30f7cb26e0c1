//! The bytes of `flowtel decode --format protobuf` read by readers that are not flowtel's:
//!
//! - Python `protobuf` classes generated from `proto/flowtel/flow/v1/flow.proto` by
//!   grpc_tools' protoc, and a message built from goflow2's field numbers alone (a goflow2
//!   consumer): both read every record of every committed fixture, equal to the records
//!   `flowtel decode --format json` prints, with tshark's totals;
//! - chDB (ClickHouse in process) running `deploy/clickhouse`'s DDL (the Kafka engine table
//!   swapped for the Null engine, same columns and views) on the same stream with the `.proto`
//!   as its format schema: its example queries return the totals computed here from
//!   `flowtel decode --format json`.
//!
//! The Python scripts are in `tests/readers/`; `.ci/run` installs their packages.

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Every committed fixture, and its line in tshark-totals.txt.
const FIXTURES: &[&str] = &[
    "softflowd-v5",
    "softflowd-v9",
    "softflowd-ipfix",
    "pmacct-nfprobe-v9",
    "pmacct-nfprobe-v10",
    "pmacct-sfprobe-sr10",
];

fn readers() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/readers"))
}

/// `flowtel decode FIXTURE --format protobuf` into a file in `dir`.
fn protobuf_stream(dir: &Path, name: &str) -> PathBuf {
    let path = common::fixtures().join(format!("{name}.pcap"));
    let out = common::flowtel(&["decode", path.to_str().unwrap(), "--format", "protobuf"]);
    assert!(out.status.success(), "{name}: {:?}", out.status);
    assert!(!out.stdout.is_empty(), "{name}: no records");
    let file = dir.join(format!("{name}.bin"));
    std::fs::write(&file, &out.stdout).unwrap();
    file
}

/// The flow records of `flowtel decode FIXTURE --format json`: the decoder's own view.
fn decoded(name: &str) -> Vec<Value> {
    let (json, _) = common::decode_fixture(name, "json");
    json.lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"))
        .filter(|v| v["record"] == "flow")
        .collect()
}

fn python(script: &str, args: &[&Path]) -> String {
    let out = Command::new("python3")
        .arg(readers().join(script))
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("an unsigned integer: {v}"))
}

fn opt_u64(v: &Value) -> u64 {
    if v.is_null() { 0 } else { u64_of(v) }
}

fn ip_of(v: &Value) -> IpAddr {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("an address: {v}"))
}

/// A decoded record's rate as the default enrichment resolves it: the record's, else 1.
fn rate(record: &Value) -> u64 {
    match opt_u64(&record["sampling_rate"]) {
        0 => 1,
        r => r,
    }
}

fn exporter(record: &Value) -> SocketAddr {
    record["exporter"].as_str().unwrap().parse().unwrap()
}

/// The device's address: the sFlow agent, else the exporter's.
fn device(record: &Value) -> IpAddr {
    if record["agent"].is_null() {
        exporter(record).ip()
    } else {
        ip_of(&record["agent"])
    }
}

fn goflow2_type(flow_protocol: &Value) -> &'static str {
    match flow_protocol.as_str() {
        Some("netflow_v5") => "NETFLOW_V5",
        Some("netflow_v9") => "NETFLOW_V9",
        Some("ipfix") => "IPFIX",
        Some("sflow_v5") => "SFLOW_5",
        other => panic!("flow protocol {other:?}"),
    }
}

fn mac_u64(v: &Value) -> u64 {
    match v.as_str() {
        None => 0,
        Some(s) => u64::from_str_radix(&s.replace(':', ""), 16).unwrap(),
    }
}

/// tshark's totals for a fixture: (records, octets, packets) for NetFlow/IPFIX, (samples,
/// None, None) for sFlow.
fn tshark_totals(name: &str) -> (u64, Option<u64>, Option<u64>) {
    let text = std::fs::read_to_string(common::fixtures().join("tshark-totals.txt")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name}.pcap ")))
        .unwrap_or_else(|| panic!("{name} in tshark-totals.txt"));
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    if let Some(samples) = words[0].strip_prefix("samples=") {
        (samples.parse().unwrap(), None, None)
    } else {
        let n = |i: usize| words[i].parse::<u64>().unwrap();
        (n(0), Some(n(1)), Some(n(2)))
    }
}

#[test]
fn python_reads_every_record_with_flowtels_proto_and_with_goflow2s_field_numbers() {
    if !common::require_tool(
        "python3:grpc_tools.protoc",
        "pip install protobuf grpcio-tools (.ci/run does it)",
    ) {
        return;
    }
    let proto_root = common::repo().join("proto");
    let dir = common::ScratchDir::new("readers");
    let streams: Vec<PathBuf> = FIXTURES.iter().map(|n| protobuf_stream(&dir, n)).collect();
    let mut args: Vec<&Path> = vec![&proto_root];
    args.extend(streams.iter().map(PathBuf::as_path));
    let output = python("read_flows.py", &args);
    let mut read: Vec<Vec<Value>> = vec![Vec::new(); FIXTURES.len()];
    for line in output.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        read[u64_of(&v["stream"]) as usize].push(v);
    }

    for (name, read) in FIXTURES.iter().zip(&read) {
        let records = decoded(name);
        assert_eq!(read.len(), records.len(), "{name}: one message per record");
        let (count, octets, packets) = tshark_totals(name);
        assert_eq!(read.len() as u64, count, "{name}: tshark's record count");
        let sum = |key: &str| -> u64 { read.iter().map(|m| u64_of(&m["flowtel"][key])).sum() };
        if let (Some(octets), Some(packets)) = (octets, packets) {
            assert_eq!(sum("bytes"), octets, "{name}: tshark's octets");
            assert_eq!(sum("packets"), packets, "{name}: tshark's packets");
        }
        for (i, (m, r)) in read.iter().zip(&records).enumerate() {
            let f = &m["flowtel"];
            let g = m["goflow2"].as_object().unwrap();
            // The goflow2 reader sees goflow2's fields with the same values.
            for (key, value) in g {
                assert_eq!(&f[key], value, "{name} #{i}: {key} read by number differs");
            }
            assert_eq!(g.len(), 50, "{name} #{i}: goflow2's 50 fields");
            // And they are the decoder's record.
            let ctx = format!("{name} #{i}: {r}");
            assert_eq!(f["type"], goflow2_type(&r["flow_protocol"]), "{ctx}");
            assert_eq!(ip_of(&f["src_addr"]), ip_of(&r["src_addr"]), "{ctx}");
            assert_eq!(ip_of(&f["dst_addr"]), ip_of(&r["dst_addr"]), "{ctx}");
            for (schema, record) in [
                ("src_port", "src_port"),
                ("dst_port", "dst_port"),
                ("proto", "ip_protocol"),
                ("bytes", "bytes"),
                ("packets", "packets"),
                ("sequence_num", "sequence_num"),
                ("time_received_ns", "time_received_ns"),
                ("tcp_flags", "tcp_flags"),
                ("ip_tos", "tos"),
                ("observation_domain_id", "observation_domain"),
            ] {
                assert_eq!(u64_of(&f[schema]), u64_of(&r[record]), "{schema}: {ctx}");
            }
            for (schema, record) in [
                ("in_if", "in_if"),
                ("out_if", "out_if"),
                ("vlan_id", "vlan"),
                ("src_net", "src_prefix_len"),
                ("dst_net", "dst_prefix_len"),
            ] {
                assert_eq!(u64_of(&f[schema]), opt_u64(&r[record]), "{schema}: {ctx}");
            }
            let received = u64_of(&r["time_received_ns"]);
            for (schema, record) in [
                ("time_flow_start_ns", "flow_start_ns"),
                ("time_flow_end_ns", "flow_end_ns"),
            ] {
                let expected = r[record].as_u64().unwrap_or(received);
                assert_eq!(u64_of(&f[schema]), expected, "{schema}: {ctx}");
            }
            assert_eq!(u64_of(&f["src_mac"]), mac_u64(&r["src_mac"]), "{ctx}");
            assert_eq!(u64_of(&f["dst_mac"]), mac_u64(&r["dst_mac"]), "{ctx}");
            assert_eq!(u64_of(&f["sampling_rate"]), rate(r), "{ctx}");
            assert_eq!(ip_of(&f["sampler_address"]), device(r), "{ctx}");
            let etype = match ip_of(&r["src_addr"]) {
                IpAddr::V4(_) => 0x0800,
                IpAddr::V6(_) => 0x86dd,
            };
            assert_eq!(u64_of(&f["etype"]), etype, "{ctx}");
            // flowtel's fields, read by the generated code.
            assert_eq!(ip_of(&f["exporter_address"]), exporter(r).ip(), "{ctx}");
            assert_eq!(
                u64_of(&f["exporter_port"]),
                u64::from(exporter(r).port()),
                "{ctx}"
            );
            assert_eq!(f["device_name"], device(r).to_string(), "{ctx}");
            let direction = match r["direction"].as_str() {
                Some("ingress") => "DIRECTION_INGRESS",
                Some("egress") => "DIRECTION_EGRESS",
                _ => "DIRECTION_UNKNOWN",
            };
            assert_eq!(f["direction"], direction, "{ctx}");
            // The fixtures' addresses are documentation and private ranges.
            assert_eq!(f["src_private"], true, "{ctx}");
            assert_eq!(f["src_country"], "Private IP", "{ctx}");
        }
    }
}

/// `addr` as ClickHouse's IPv6 column holds it (IPv4 mapped), for ordering.
fn as_v6(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

#[test]
fn clickhouse_ddl_ingests_the_stream_and_answers_the_example_queries() {
    if !common::require_tool("python3:chdb", "pip install chdb (.ci/run does it)") {
        return;
    }
    let proto = common::repo().join("proto/flowtel/flow/v1/flow.proto");
    let deploy = common::repo().join("deploy/clickhouse");
    let dir = common::ScratchDir::new("readers");
    for name in FIXTURES {
        let stream = protobuf_stream(&dir, name);
        let output = python("clickhouse_check.py", &[&proto, &deploy, &stream]);
        let results: Value = serde_json::from_str(&output).expect("the script's JSON");
        let records = decoded(name);

        // totals
        let [totals] = results["totals"].as_array().unwrap().as_slice() else {
            panic!("{name}: one totals row: {results}")
        };
        let sum = |f: &dyn Fn(&Value) -> u64| -> u64 { records.iter().map(f).sum() };
        assert_eq!(u64_of(&totals["flows"]), records.len() as u64, "{name}");
        assert_eq!(
            u64_of(&totals["exported_bytes"]),
            sum(&|r| u64_of(&r["bytes"])),
            "{name}"
        );
        assert_eq!(
            u64_of(&totals["exported_packets"]),
            sum(&|r| u64_of(&r["packets"])),
            "{name}"
        );
        assert_eq!(
            u64_of(&totals["sampled_bytes"]),
            sum(&|r| u64_of(&r["bytes"]) * rate(r)),
            "{name}"
        );
        assert_eq!(
            u64_of(&totals["sampled_packets"]),
            sum(&|r| u64_of(&r["packets"]) * rate(r)),
            "{name}"
        );
        let (count, octets, _) = tshark_totals(name);
        assert_eq!(u64_of(&totals["flows"]), count, "{name}: tshark's count");
        if let Some(octets) = octets {
            assert_eq!(u64_of(&totals["exported_bytes"]), octets, "{name}: tshark");
        }

        // top talkers per hour: sampling-corrected bytes per (hour, source), ten per hour,
        // by bytes, then address.
        let mut per_source: BTreeMap<(u64, u128), (IpAddr, u64, u64)> = BTreeMap::new();
        for r in &records {
            let hour = u64_of(&r["time_received_ns"]) / 1_000_000_000 / 3600 * 3600;
            let src = if r["src_addr"].is_null() {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            } else {
                ip_of(&r["src_addr"])
            };
            let e = per_source.entry((hour, as_v6(src))).or_insert((src, 0, 0));
            e.1 += u64_of(&r["bytes"]) * rate(r);
            e.2 += u64_of(&r["packets"]) * rate(r);
        }
        let mut expected: Vec<(u64, u128, IpAddr, u64, u64)> = per_source
            .into_iter()
            .map(|((h, key), (a, b, p))| (h, key, a, b, p))
            .collect();
        expected.sort_by(|x, y| x.0.cmp(&y.0).then(y.3.cmp(&x.3)).then(x.1.cmp(&y.1)));
        let mut shown: BTreeMap<u64, usize> = BTreeMap::new();
        expected.retain(|(hour, ..)| {
            let n = shown.entry(*hour).or_default();
            *n += 1;
            *n <= 10
        });
        let got: Vec<(u64, IpAddr, u64, u64)> = results["top_talkers_per_hour"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                let hour = row["hour"]
                    .as_str()
                    .map(|s| s.parse().unwrap())
                    .unwrap_or_else(|| u64_of(&row["hour"]));
                (
                    hour,
                    ip_of(&row["source"]),
                    u64_of(&row["bytes"]),
                    u64_of(&row["packets"]),
                )
            })
            .collect();
        let expected: Vec<(u64, IpAddr, u64, u64)> = expected
            .into_iter()
            .map(|(h, _, a, b, p)| (h, a, b, p))
            .collect();
        assert_eq!(got, expected, "{name}: top talkers per hour");

        // traffic per exporter and interface (from the hourly rollup), names aside.
        let mut per_interface: BTreeMap<(String, u64, u64), (u64, u64, u64)> = BTreeMap::new();
        for r in &records {
            let key = (
                device(r).to_string(),
                opt_u64(&r["in_if"]),
                opt_u64(&r["out_if"]),
            );
            let e = per_interface.entry(key).or_default();
            e.0 += u64_of(&r["bytes"]) * rate(r);
            e.1 += u64_of(&r["packets"]) * rate(r);
            e.2 += 1;
        }
        let mut got: BTreeMap<(String, u64, u64), (u64, u64, u64)> = BTreeMap::new();
        for row in results["traffic_per_exporter_and_interface"]
            .as_array()
            .unwrap()
        {
            let key = (
                row["device_name"].as_str().unwrap().to_owned(),
                u64_of(&row["in_if"]),
                u64_of(&row["out_if"]),
            );
            let e = got.entry(key).or_default();
            e.0 += u64_of(&row["bytes"]);
            e.1 += u64_of(&row["packets"]);
            e.2 += u64_of(&row["flows"]);
        }
        assert_eq!(
            got, per_interface,
            "{name}: traffic per exporter and interface"
        );
    }
}

/// `--format flow-json` is the protobuf stream's messages as goflow2-style JSON lines, one per
/// flow record of the capture.
#[test]
fn flow_json_lines_are_the_protobuf_messages() {
    let dir = common::ScratchDir::new("readers");
    for name in FIXTURES {
        let stream = std::fs::read(protobuf_stream(&dir, name)).unwrap();
        let (lines, _) = common::decode_fixture(name, "flow-json");
        let mut expected = String::new();
        let mut count = 0;
        for message in flowtel_records::protobuf::DelimitedReader::new(&stream) {
            flowtel_records::json::write_json_line(
                &message.expect("a whole message"),
                &mut expected,
            );
            count += 1;
        }
        assert_eq!(count, decoded(name).len(), "{name}");
        assert_eq!(lines, expected, "{name}");
        for line in lines.lines() {
            let v: Value = serde_json::from_str(line).expect("valid JSON");
            assert_eq!(v.as_object().map(|o| o.len()), Some(74), "{name}: {line}");
        }
    }
}
