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
        "RATE",
    ] {
        assert!(columns.contains(c), "{columns}");
    }
    let rows: Vec<&str> = lines.take_while(|l| !l.starts_with("  ...")).collect();
    assert!(!rows.is_empty() && rows.len() <= 5, "{full}");
    let mut previous = u64::MAX;
    for r in &rows {
        assert!(r.contains(" -> "), "{r}");
        assert!(r.contains("-edge-") || r.contains("-switch-"), "{r}");
        // "... BYTES  1.23 Gbit/s"
        let cells: Vec<&str> = r.split_whitespace().collect();
        let bytes: u64 = cells[cells.len() - 3].parse().expect(r);
        assert!(
            bytes > 0 && bytes <= previous,
            "rows not in decreasing order:\n{full}"
        );
        previous = bytes;
    }
}

/// Waits for a demo started with `--duration` to exit by itself; its stdout and stderr.
fn wait_for_exit(mut demo: Daemon) -> (String, String) {
    let mut child = demo.child.take().expect("running");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < PATIENCE, "flowtel demo did not exit");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (stdout, stderr) = (demo.stdout_text(), demo.stderr_text());
    assert!(status.success(), "{status}: {stderr}");
    (stdout, stderr)
}

/// The demo models sites of 2 to 5 Gbit/s; what the collector measures per router (bytes x
/// sampling rate) is in 1-10 Gbit/s, every simulated exporter (the sFlow switch too) is in the
/// top rows of the first full window, the first window says it is partial, and the public
/// side of the conversations has countries and AS numbers from the demo's GeoIP databases.
#[test]
fn demo_shows_every_exporter_at_believable_rates_with_countries() {
    let listen = free_udp_addr();
    let http = free_tcp_addr();
    let interval = 5u64;
    let mut cmd = flowtel_command();
    cmd.args([
        "demo",
        "--duration",
        "12",
        "--rollup-interval",
        &interval.to_string(),
        "--listen",
        &listen.to_string(),
        "--prometheus-listen",
        &http.to_string(),
    ]);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let demo = Daemon::spawn(cmd, listen, http);
    let body = demo.metrics_until("the AS series", |b| {
        b.lines()
            .any(|l| l.starts_with("flowtel_rollup_bytes_by_as") && l.contains("src_as=\""))
    });
    let (stdout, stderr) = wait_for_exit(demo);

    // The model's figures, as the generator states them.
    let line = stderr
        .lines()
        .find(|l| l.starts_with("flowtel generate: 3 exporters ("))
        .unwrap_or_else(|| panic!("{stderr}"));
    let models: Vec<&str> = line
        .split_once('(')
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(m, _)| m.split(", ").collect())
        .unwrap();
    assert_eq!(models.len(), 3, "{line}");
    for m in &models {
        // "v9 1:400 2.2 Gbit/s"
        let f: Vec<&str> = m.split(' ').collect();
        let gbps: f64 = f[2].parse().expect(m);
        assert!((2.0..=5.0).contains(&gbps), "{line}");
        assert_eq!(f[3], "Gbit/s", "{line}");
        let n: u32 = f[1].strip_prefix("1:").expect(m).parse().expect(m);
        let expected = if f[0] == "sflow" {
            512..=8192
        } else {
            1..=4096
        };
        assert!(expected.contains(&n), "{line}");
    }

    let blocks: Vec<&str> = stdout.split("\n\n").collect();
    let flows: Vec<&str> = blocks
        .iter()
        .copied()
        .filter(|t| t.starts_with("bytes_by_flow network.io.by_flow "))
        .collect();
    assert!(flows.len() >= 3, "{stdout}\n{stderr}");
    // The window the demo started in is partial. When the demo starts just before a window's
    // end, its first records may land in the next window, which it saw whole (or in part, if
    // the demo's own start passed the boundary after `started` was read).
    let first = flows[0].lines().next().unwrap();
    let started_in = started / interval * interval % 86_400;
    let started_in = format!(
        "{:02}:{:02}:{:02} - ",
        started_in / 3600,
        started_in % 3600 / 60,
        started_in % 60
    );
    if first.contains(&started_in) {
        assert!(first.contains(" (partial, from "), "{stdout}");
    }
    let full = flows
        .iter()
        .find(|t| !t.lines().next().unwrap().contains("(partial"))
        .unwrap_or_else(|| panic!("no complete window:\n{stdout}"));
    let window = full.lines().next().unwrap().split(" UTC").next().unwrap();
    let window = window
        .strip_prefix("bytes_by_flow network.io.by_flow ")
        .unwrap();
    let rows: Vec<&str> = full
        .lines()
        .skip(2)
        .take_while(|l| !l.starts_with("  ..."))
        .collect();
    assert_eq!(rows.len(), 10, "{full}");
    for device in ["paris-edge-v9", "lyon-edge-ipfix", "nice-switch-sflow"] {
        assert!(
            rows.iter().any(|r| r.trim_start().starts_with(device)),
            "{device} is not in the top rows of the first full window:\n{full}"
        );
    }
    // Public ends have their country.
    assert!(
        rows.iter()
            .any(|r| r.contains(" -> US ") || r.contains("US -> ")),
        "{full}"
    );

    // Per router, over the same window: bytes x 8 / interval.
    let devices = blocks
        .iter()
        .find(|t| {
            t.starts_with(&format!(
                "bytes_by_device flowtel.rollup.bytes_by_device {window} "
            ))
        })
        .unwrap_or_else(|| panic!("no per-device table for {window}:\n{stdout}"));
    let mut seen = 0;
    for row in devices.lines().skip(2) {
        let f: Vec<&str> = row.split_whitespace().collect();
        let bytes: f64 = f[1].parse().expect(row);
        let bps = bytes * 8.0 / interval as f64;
        assert!((1e9..=10e9).contains(&bps), "{row}: {bps} bit/s\n{devices}");
        seen += 1;
    }
    assert_eq!(seen, 3, "{devices}");

    // The geo and AS labels have data on /metrics too.
    assert!(
        body.lines()
            .any(|l| l.starts_with("network_io_by_flow_bytes{")
                && (l.contains("network_peer_country=\"US\"")
                    || l.contains("network_local_country=\"US\""))),
        "{body}"
    );
    assert!(
        ["13335", "15169", "16509", "54113"].iter().any(|asn| body
            .lines()
            .any(|l| l.starts_with("flowtel_rollup_bytes_by_as")
                && (l.contains(&format!("src_as=\"{asn}\""))
                    || l.contains(&format!("dst_as=\"{asn}\""))))),
        "{body}"
    );
}

#[test]
fn one_exporter_is_one_simulated_exporter() {
    let listen = free_udp_addr();
    let http = free_tcp_addr();
    let mut cmd = flowtel_command();
    cmd.args([
        "demo",
        "--exporters",
        "1",
        "--duration",
        "1",
        "--listen",
        &listen.to_string(),
        "--prometheus-listen",
        &http.to_string(),
    ]);
    let (_, stderr) = wait_for_exit(Daemon::spawn(cmd, listen, http));
    assert!(
        stderr.contains(&format!(
            "flowtel demo: 1 simulated exporter -> udp {listen} at 600 flows/s; a table every 10 s;"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("flowtel generate: 1 exporter (v9 1:"),
        "{stderr}"
    );
}
