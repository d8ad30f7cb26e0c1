//! The per-flow sinks end to end: the real binary receives a real exporter's capture over UDP
//! and every record comes out once, equal to what `flowtel decode` prints for the capture.

mod common;

use std::net::{SocketAddr, UdpSocket};

use common::{Daemon, fixtures};

/// Send a fixture capture's datagrams, in order, from one socket (one exporter).
pub fn replay(name: &str, to: SocketAddr) -> usize {
    let datagrams = flowtel_pcap::read_all(fixtures().join(name)).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in &datagrams {
        sender.send_to(&d.payload, to).unwrap();
    }
    datagrams.len()
}

/// JSON lines as values, without the fields that depend on when and from which port the
/// datagrams were sent (the capture's clock and source port versus the replay's).
pub fn normalized(lines: &str) -> Vec<serde_json::Value> {
    lines
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("time_received_ns");
            o.remove("exporter_port");
            v
        })
        .collect()
}

#[test]
fn flow_json_file_holds_every_record_once_as_decode_prints_it() {
    for capture in [
        "softflowd-v9.pcap",
        "softflowd-ipfix.pcap",
        "softflowd-v5.pcap",
    ] {
        let dir = std::env::temp_dir().join(format!("flowtel-flow-json-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{capture}.json"));
        let _ = std::fs::remove_file(&file);
        let d = Daemon::start(&[
            "--sink",
            "flow-json",
            "--flow-json-file",
            file.to_str().unwrap(),
        ]);
        replay(capture, d.listen);
        d.metrics_until("every record handed to the sink", |b| {
            common::sample(b, "flowtel_flow_records_selected_total").is_some_and(|n| n > 0.0)
                && common::sample(b, "flowtel_sink_queue_depth{sink=\"flow-json\"}") == Some(0.0)
        });
        let (status, _, stderr) = d.terminate();
        assert!(status.success(), "{stderr}");
        let written = std::fs::read_to_string(&file).unwrap();
        let (decoded, _) = common::decode_fixture(capture.trim_end_matches(".pcap"), "flow-json");
        let (got, want) = (normalized(&written), normalized(&decoded));
        assert_eq!(got.len(), want.len(), "{capture}: record count");
        assert!(!got.is_empty());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{capture}: record {i}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn flow_json_on_stdout_and_record_rules_and_sampling_apply() {
    let d = Daemon::start(&[
        "--sink",
        "flow-json",
        "--flow-rule",
        "drop:dst_port=443",
        "--flow-sample",
        "2",
    ]);
    replay("softflowd-v9.pcap", d.listen);
    let body = d.metrics_until("the capture's 227 records accounted for", |b| {
        let s = |k: &str| common::sample(b, k).unwrap_or(0.0);
        s("flowtel_flow_records_selected_total")
            + s("flowtel_flow_records_skipped_total{reason=\"rule\"}")
            + s("flowtel_flow_records_skipped_total{reason=\"sample\"}")
            == 227.0
    });
    let (status, stdout, _) = d.terminate();
    assert!(status.success());
    let lines = normalized(&stdout);
    let selected = common::sample(&body, "flowtel_flow_records_selected_total").unwrap();
    assert_eq!(lines.len() as f64, selected);
    assert!(lines.iter().all(|v| v["dst_port"] != 443));
    assert!(
        lines.iter().all(|v| v["sampling_rate"] == 2),
        "1 in 2 doubles the rate"
    );
    let (decoded, _) = common::decode_fixture("softflowd-v9", "flow-json");
    let not_443 = normalized(&decoded)
        .into_iter()
        .filter(|v| v["dst_port"] != 443)
        .count();
    assert_eq!(
        lines.len(),
        not_443.div_ceil(2),
        "every second record of {not_443}"
    );
}
