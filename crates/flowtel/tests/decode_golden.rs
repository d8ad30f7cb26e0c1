//! Golden tests: `flowtel decode` over each fixture capture, compared byte for byte with
//! `tests/fixtures/golden/<capture>.jsonl` (JSON) and `<capture>.txt` (text).
//! Regenerate with `UPDATE_GOLDEN=1 cargo test -p flowtel --test decode_golden`; never edit
//! the golden files by hand.

mod common;

use std::path::Path;

use serde_json::Value;

fn check_golden(file: &str, actual: &str) {
    let path = common::fixtures().join("golden").join(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).unwrap();
        std::fs::write(&path, actual).unwrap();
        eprintln!("updated {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with UPDATE_GOLDEN=1 cargo test -p flowtel --test decode_golden",
            path.display()
        )
    });
    if expected == actual {
        return;
    }
    let (line, (want, got)) = expected
        .lines()
        .chain(std::iter::repeat("<end of output>"))
        .zip(actual.lines().chain(std::iter::repeat("<end of output>")))
        .enumerate()
        .find(|(_, (a, b))| a != b)
        .unwrap_or((0, ("<same lines>", "<different line endings>")));
    panic!(
        "{file} differs from the golden output at line {}:\n  golden: {want}\n  actual: {got}\n\
         (if the change is intended, rerun with UPDATE_GOLDEN=1)",
        line + 1
    );
}

/// Keys every flow line carries, whatever the wire format.
const FLOW_KEYS: &[&str] = &[
    "exporter",
    "flow_protocol",
    "src_addr",
    "dst_addr",
    "src_port",
    "dst_port",
    "ip_protocol",
    "bytes",
    "packets",
    "sampling_rate",
    "observation_domain",
    "time_received_ns",
    "flow_start_ns",
    "flow_end_ns",
    "tcp_flags",
    "tos",
    "in_if",
    "out_if",
    "src_mac",
    "dst_mac",
];

fn golden(capture: &str, protocol: &str) {
    let (json, _) = common::decode_fixture(capture, "json");
    let mut flows = 0;
    for (n, line) in json.lines().enumerate() {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{capture} line {}: not JSON ({e}): {line}", n + 1));
        match value["record"].as_str() {
            Some("flow") => {
                flows += 1;
                for key in FLOW_KEYS {
                    assert!(
                        value.get(key).is_some(),
                        "{capture} line {}: no `{key}`: {line}",
                        n + 1
                    );
                }
                assert_eq!(value["flow_protocol"], protocol, "{capture} line {}", n + 1);
                assert!(value["ip_protocol"].is_u64() && value["bytes"].is_u64());
            }
            Some("counters") => assert_eq!(protocol, "sflow_v5"),
            Some("template") => {
                assert_ne!(protocol, "sflow_v5");
                assert!(value["fields"].is_array(), "{capture} line {}", n + 1);
            }
            other => panic!("{capture} line {}: record kind {other:?}", n + 1),
        }
    }
    assert!(flows > 0, "{capture}: no flow records decoded");
    check_golden(&format!("{capture}.jsonl"), &json);

    let (text, _) = common::decode_fixture(capture, "text");
    check_golden(&format!("{capture}.txt"), &text);
}

#[test]
fn golden_softflowd_v5() {
    golden("softflowd-v5", "netflow_v5");
}

#[test]
fn golden_softflowd_v9() {
    golden("softflowd-v9", "netflow_v9");
}

#[test]
fn golden_softflowd_ipfix() {
    golden("softflowd-ipfix", "ipfix");
}

#[test]
fn golden_pmacct_nfprobe_v9() {
    golden("pmacct-nfprobe-v9", "netflow_v9");
}

#[test]
fn golden_pmacct_nfprobe_v10() {
    golden("pmacct-nfprobe-v10", "ipfix");
}

#[test]
fn golden_pmacct_sfprobe_sr10() {
    golden("pmacct-sfprobe-sr10", "sflow_v5");
}
