//! `flowtel run --pcap FILE --sink stdout`, end to end on the real binary: the emitted values
//! must add up to the sampling-corrected byte totals tshark (an independent decoder) computed
//! for the committed fixtures, whatever the top-K.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Run the offline pipeline on a fixture with extra flags; returns the points and stderr.
fn run(fixture: &str, extra: &[&str]) -> (Vec<Value>, String) {
    let path = common::fixtures().join(format!("{fixture}.pcap"));
    let path = path.to_str().expect("utf-8 path");
    let mut args = vec!["run", "--pcap", path, "--sink", "stdout"];
    args.extend_from_slice(extra);
    let out = common::flowtel(&args);
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    assert!(
        out.status.success(),
        "flowtel run {fixture} failed:\n{stderr}"
    );
    let points = String::from_utf8(out.stdout)
        .expect("utf-8 stdout")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON object per line"))
        .collect();
    (points, stderr)
}

fn total(points: &[Value]) -> u64 {
    points
        .iter()
        .map(|p| p["value"].as_u64().expect("integer value"))
        .sum()
}

/// tshark's totals committed beside the fixtures: `NAME.pcap RECORDS OCTETS PACKETS`, or
/// `NAME.pcap samples=N estimated_frame_bytes=M` (frame length × sampling rate) for sFlow.
fn tshark_bytes(fixture: &str) -> u64 {
    let text = std::fs::read_to_string(common::fixtures().join("tshark-totals.txt"))
        .expect("tests/fixtures/tshark-totals.txt");
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{fixture}.pcap ")))
        .unwrap_or_else(|| panic!("{fixture} not in tshark-totals.txt"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let field = match words
        .iter()
        .find_map(|w| w.strip_prefix("estimated_frame_bytes="))
    {
        Some(v) => v,
        None => words[2],
    };
    field.parse().expect("a number")
}

/// Every window is aligned, one point per series, at most `limit` points.
fn check_windows(points: &[Value], limit: usize) {
    let mut windows: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    for p in points {
        let start = p["start_time_unix_nano"].as_u64().unwrap();
        let end = p["time_unix_nano"].as_u64().unwrap();
        assert_eq!(start % 60_000_000_000, 0, "{p}");
        assert_eq!(end - start, 60_000_000_000, "{p}");
        assert!(
            windows
                .entry(start)
                .or_default()
                .insert(p["attributes"].to_string()),
            "two points for one series in one window: {p}"
        );
    }
    for (start, series) in windows {
        assert!(
            series.len() <= limit,
            "window {start}: {} points",
            series.len()
        );
    }
}

#[test]
fn totals_equal_tshark_for_every_fixture() {
    for fixture in [
        "softflowd-v5",
        "softflowd-v9",
        "softflowd-ipfix",
        "pmacct-nfprobe-v9",
        "pmacct-nfprobe-v10",
        "pmacct-sfprobe-sr10",
    ] {
        let (points, _) = run(fixture, &[]);
        assert!(!points.is_empty(), "{fixture}");
        assert_eq!(total(&points), tshark_bytes(fixture), "{fixture}");
        check_windows(&points, 1001);
        for p in &points {
            assert_eq!(p["metric"], "network.io.by_flow");
            assert_eq!(p["unit"], "By");
            assert_eq!(p["attributes"].as_object().unwrap().len(), 9, "{p}");
        }
    }
}

#[test]
fn top_k_keeps_the_total_with_an_overflow_series() {
    let (all, _) = run("softflowd-ipfix", &[]);
    let (top, stderr) = run("softflowd-ipfix", &["--top-k", "50"]);
    assert!(all.len() > 51, "the fixture has more than 50 series");
    assert_eq!(total(&top), total(&all));
    check_windows(&top, 51);
    let overflow: Vec<_> = top
        .iter()
        .filter(|p| p["attributes"]["otel.metric.overflow"] == true)
        .collect();
    assert_eq!(overflow.len(), 1, "{stderr}");
    assert_eq!(overflow[0]["attributes"].as_object().unwrap().len(), 1);
    // The kept series are the heaviest ones.
    let mut values: Vec<u64> = all.iter().map(|p| p["value"].as_u64().unwrap()).collect();
    values.sort_unstable_by(|a, b| b.cmp(a));
    let kept: u64 = total(&top) - overflow[0]["value"].as_u64().unwrap();
    assert_eq!(kept, values[..50].iter().sum::<u64>());
}

#[test]
fn icmp_and_ktranslate_profile() {
    let (points, _) = run("softflowd-v9", &["--profile", "ktranslate"]);
    assert_eq!(total(&points), tshark_bytes("softflowd-v9"));
    for p in &points {
        assert_eq!(p["metric"], "kentik.rollup.bytes_by_flow");
        let a = p["attributes"].as_object().unwrap();
        assert!(
            a["src_port"].is_string() && a["dst_port"].is_string(),
            "{p}"
        );
        assert!(a.contains_key("src_country") && a.contains_key("application"));
    }
    let protocols: BTreeSet<&str> = points
        .iter()
        .filter_map(|p| p["attributes"]["protocol"].as_str())
        .collect();
    for proto in ["tcp", "udp", "icmp", "ipv6-icmp"] {
        assert!(protocols.contains(proto), "{proto} missing: {protocols:?}");
    }
}

/// Sum of `bytes × sampling_rate` (1 when unknown) over `flowtel decode`'s JSON records.
fn decoded_corrected_bytes(json: &str) -> u64 {
    json.lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"))
        .filter(|r| r["record"] == "flow")
        .map(|r| r["bytes"].as_u64().unwrap() * r["sampling_rate"].as_u64().unwrap_or(1).max(1))
        .sum()
}

#[test]
fn totals_equal_the_decoded_records_corrected_sum() {
    for fixture in ["pmacct-sfprobe-sr10", "softflowd-v5", "pmacct-nfprobe-v10"] {
        let (json, _) = common::decode_fixture(fixture, "json");
        let (points, _) = run(fixture, &["--top-k", "5"]);
        assert_eq!(total(&points), decoded_corrected_bytes(&json), "{fixture}");
    }
}

/// The shared corpus of real exporters' captures: over every window, the emitted total is the
/// sampling-corrected sum of the decoded records.
#[test]
fn shared_corpus_totals() {
    let corpus = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ));
    if !corpus.is_dir() {
        common::skip(&format!("{} is absent", corpus.display()));
        return;
    }
    let mut stack = vec![corpus.to_path_buf()];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.to_string_lossy().to_string();
            if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
                continue;
            }
            let decoded = common::flowtel(&["decode", &name]);
            if !decoded.status.success() {
                continue; // not a capture flowtel reads; the decode tests cover that
            }
            let want = decoded_corrected_bytes(&String::from_utf8(decoded.stdout).unwrap());
            let out =
                common::flowtel(&["run", "--pcap", &name, "--sink", "stdout", "--top-k", "20"]);
            assert!(
                out.status.success(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let points: Vec<Value> = String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            check_windows(&points, 21);
            assert_eq!(total(&points), want, "{name}");
            checked += 1;
        }
    }
    assert!(checked > 10, "only {checked} corpus captures checked");
}

#[test]
fn config_file_rollups_and_device_names() {
    let dir = common::ScratchDir::new("run");
    let file = dir.join("flowtel.yaml");
    std::fs::write(
        &file,
        "sinks: [stdout]\n\
         enrichment: { devices: { 127.0.0.1: edge-1 } }\n\
         rollups:\n  - name: by_device\n    value: packets\n    dimensions: [device_name, transport]\n    interval_secs: 10\n  - name: bytes_by_flow\n    dimensions: [src_addr, dst_addr]\n",
    )
    .unwrap();
    let (points, _) = run("softflowd-v9", &["--config", file.to_str().unwrap()]);
    let by_device: Vec<_> = points
        .iter()
        .filter(|p| p["metric"] == "flowtel.rollup.by_device")
        .collect();
    assert!(!by_device.is_empty());
    for p in &by_device {
        assert_eq!(p["attributes"]["device_name"], "edge-1");
        assert_eq!(p["unit"], "{packet}");
        let start = p["start_time_unix_nano"].as_u64().unwrap();
        assert_eq!(
            p["time_unix_nano"].as_u64().unwrap() - start,
            10_000_000_000
        );
    }
    let bytes: Vec<Value> = points
        .iter()
        .filter(|p| p["metric"] == "network.io.by_flow")
        .cloned()
        .collect();
    assert_eq!(total(&bytes), tshark_bytes("softflowd-v9"));
}

#[test]
fn refuses_other_sinks_and_bad_specs() {
    let path = common::fixtures().join("softflowd-v9.pcap");
    let path = path.to_str().unwrap();
    let out = common::flowtel(&["run", "--pcap", path]);
    assert!(!out.status.success(), "default sink is otlp: not offline");
    let out = common::flowtel(&[
        "run",
        "--pcap",
        path,
        "--sink",
        "stdout",
        "--rollup-spec",
        "unique,x,in_bytes",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("unsupported rollup method"), "{stderr}");
}

/// The `decoder:` limits reach the offline pipeline, from the file and from flags: templates
/// longer than `max_fields_per_template` are refused, so no record of the capture decodes.
#[test]
fn decoder_limits_apply_from_file_and_flags() {
    let (points, stderr) = run("softflowd-v9", &[]);
    assert!(!points.is_empty(), "{stderr}");
    assert!(
        stderr.contains(" 227 flow records (0 decode errors"),
        "{stderr}"
    );

    let (points, stderr) = run("softflowd-v9", &["--max-fields-per-template", "3"]);
    assert!(points.is_empty(), "{stderr}");
    assert!(stderr.contains(" 0 flow records"), "{stderr}");

    let dir = common::ScratchDir::new("run-pcap");
    let config = dir.join("decoder.yaml");
    std::fs::write(&config, "decoder:\n  max_fields_per_template: 3\n").unwrap();
    let config = config.to_str().expect("utf-8 path");
    let (points, stderr) = run("softflowd-v9", &["--config", config]);
    assert!(points.is_empty(), "{stderr}");
    // A flag beats the file.
    let (points, stderr) = run(
        "softflowd-v9",
        &["--config", config, "--max-fields-per-template", "256"],
    );
    assert!(stderr.contains(" 227 flow records"), "{stderr}");
    assert!(!points.is_empty());
}
