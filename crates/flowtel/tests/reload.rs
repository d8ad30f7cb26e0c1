//! SIGHUP: the configuration file is read again and what can change while running is applied,
//! without losing data; a bad file is logged and the running configuration kept.

mod common;

use std::net::UdpSocket;

use common::{Daemon, V5_FLOWS, netflow_v5};

#[test]
fn sighup_applies_new_device_names_keeps_running_on_a_bad_file_and_loses_nothing() {
    let dir = common::ScratchDir::new("reload");
    let file = dir.join("flowtel.yaml");
    std::fs::write(&file, "enrichment:\n  devices: {127.0.0.1: edge-a}\n").unwrap();
    let d = Daemon::start(&[
        "--config",
        file.to_str().unwrap(),
        "--sink",
        "prometheus",
        "--rollup-interval",
        "1",
    ]);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |seq| {
        sender
            .send_to(&netflow_v5(&V5_FLOWS, seq, 1_700_000_000, 0), d.listen)
            .unwrap()
    };
    send(0);
    d.metrics_until("a window of edge-a", |b| {
        b.contains("device_name=\"edge-a\"")
    });

    // A reloadable change and one that needs a restart.
    std::fs::write(
        &file,
        "workers: 3\nenrichment:\n  devices: {127.0.0.1: edge-b}\n",
    )
    .unwrap();
    d.hangup();
    let start = std::time::Instant::now();
    while !d.stderr_text().contains("SIGHUP: configuration reloaded") {
        assert!(start.elapsed() < common::PATIENCE, "{}", d.stderr_text());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = d.stderr_text();
    assert!(log.contains("settings=workers"), "{log}");
    assert!(log.contains("applied=enrichment"), "{log}");
    send(2);
    d.metrics_until("a window of edge-b", |b| {
        b.contains("device_name=\"edge-b\"")
    });

    // A file that does not load: logged, the running configuration kept.
    std::fs::write(&file, "enrichment: [not, a, map]\n").unwrap();
    d.hangup();
    while !d.stderr_text().contains("does not load") {
        assert!(start.elapsed() < common::PATIENCE, "{}", d.stderr_text());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    send(4);
    let body = d.metrics_until("every datagram counted", |b| {
        common::sample(
            b,
            "flowtel_datagrams_total{exporter=\"127.0.0.1\",protocol=\"netflow_v5\"}",
        ) == Some(3.0)
    });
    assert_eq!(
        common::sample(&body, "flowtel_records_total{protocol=\"netflow_v5\"}"),
        Some(6.0)
    );
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
}
