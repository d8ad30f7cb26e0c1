//! `flowtel demo` end to end: the real binary runs the collector and the simulated exporters
//! in one process; its table shows conversations and its /metrics serves the flow series.

mod common;

use std::time::{Duration, Instant};

use common::{Daemon, PATIENCE, flowtel_command, free_tcp_addr, free_udp_addr};

#[test]
fn demo_prints_top_conversations_and_serves_metrics() {
    let listen = free_udp_addr();
    let http = free_tcp_addr();
    let mut cmd = flowtel_command();
    cmd.args([
        "demo",
        "--duration",
        "6",
        "--rollup-interval",
        "1",
        "--top",
        "5",
        "--rate",
        "300",
        "--listen",
        &listen.to_string(),
        "--prometheus-listen",
        &http.to_string(),
    ]);
    let mut demo = Daemon::spawn(cmd, listen, http);

    let body = demo.metrics_until("the flow series", |b| {
        b.contains("network_io_by_flow_bytes{")
    });
    // The generator's exporters carry the demo's device names; our own metrics are there too.
    assert!(
        body.contains("device_name=\"paris-edge-v9\"")
            || body.contains("device_name=\"lyon-edge-ipfix\"")
            || body.contains("device_name=\"nice-switch-sflow\""),
        "{body}"
    );
    assert!(body.contains("flowtel_records_total{"), "{body}");

    // --duration ends it by itself, with status 0.
    let mut child = demo.child.take().expect("running");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < PATIENCE, "flowtel demo did not exit");
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = demo.stdout_text();
    let stderr = demo.stderr_text();
    assert!(status.success(), "{status}: {stderr}");

    // Not a terminal: plain appended blocks, no ANSI escapes.
    assert!(!stdout.contains('\x1b'), "{stdout}");
    let tables: Vec<&str> = stdout
        .split("\n\n")
        .filter(|t| t.starts_with("bytes_by_flow network.io.by_flow "))
        .collect();
    assert!(!tables.is_empty(), "no table:\n{stdout}\n{stderr}");
    let full = tables
        .iter()
        .find(|t| !t.lines().next().unwrap_or("").contains("(partial"))
        .expect("a complete window's table");
    let mut lines = full.lines();
    let header = lines.next().unwrap();
    // "… UTC: N series, T bytes total (O in overflow)"
    let (_, counts) = header.split_once(" UTC: ").expect(header);
    let series: u64 = counts.split(' ').next().unwrap().parse().expect(header);
    assert!(series > 0, "{header}");
    let columns = lines.next().unwrap();
    for c in [
        "DEVICE",
        "SOURCE -> DESTINATION",
        "TRANSPORT",
        "APPLICATION",
        "COUNTRIES",
        "BYTES",
    ] {
        assert!(columns.contains(c), "{columns}");
    }
    let rows: Vec<&str> = lines.take_while(|l| !l.starts_with("  ...")).collect();
    assert!(!rows.is_empty() && rows.len() <= 5, "{full}");
    let mut previous = u64::MAX;
    for r in &rows {
        assert!(r.contains(" -> "), "{r}");
        assert!(r.contains("-edge-") || r.contains("-switch-"), "{r}");
        let bytes: u64 = r.split_whitespace().last().unwrap().parse().expect(r);
        assert!(
            bytes > 0 && bytes <= previous,
            "rows not in decreasing order:\n{full}"
        );
        previous = bytes;
    }
}
