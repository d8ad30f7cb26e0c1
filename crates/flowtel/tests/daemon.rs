//! The daemon end to end: the real binary receiving real UDP datagrams on loopback.

mod common;

use std::net::UdpSocket;

use common::{Daemon, V5_FLOWS, V5Flow, http_get, netflow_v5, sample};

#[test]
fn receives_decodes_counts_and_exits_cleanly_on_sigterm() {
    let d = Daemon::start(&[
        "--rollup-interval",
        "1",
        "--workers",
        "2",
        "--sink",
        "prometheus",
    ]);
    let (status, body) = http_get(d.http, "/healthz").unwrap();
    assert_eq!((status, body.as_str()), (200, "ok\n"));

    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for seq in 0..3 {
        sender
            .send_to(&netflow_v5(&V5_FLOWS, seq * 2, 1_700_000_000, 0), d.listen)
            .unwrap();
    }
    // Not a flow datagram: counted as a decode error, never fatal.
    sender.send_to(&[0xde, 0xad, 0xbe, 0xef], d.listen).unwrap();

    let body = d.metrics_until("3 v5 datagrams and 1 unknown", |b| {
        sample(
            b,
            "flowtel_datagrams_total{exporter=\"127.0.0.1\",protocol=\"netflow_v5\"}",
        ) == Some(3.0)
            && sample(
                b,
                "flowtel_datagrams_total{exporter=\"127.0.0.1\",protocol=\"unknown\"}",
            ) == Some(1.0)
    });
    assert_eq!(
        sample(
            &body,
            "flowtel_received_bytes_total{exporter=\"127.0.0.1\",protocol=\"netflow_v5\"}"
        ),
        Some(3.0 * (24.0 + 2.0 * 48.0))
    );
    assert_eq!(
        sample(&body, "flowtel_records_total{protocol=\"netflow_v5\"}"),
        Some(6.0)
    );
    let body = d.metrics_until("decode error snapshot", |b| {
        sample(
            b,
            "flowtel_decode_errors_total{reason=\"unsupported_version\"}",
        ) == Some(1.0)
    });
    assert_eq!(sample(&body, "flowtel_exporters_known"), Some(1.0));
    assert_eq!(
        sample(
            &body,
            "flowtel_datagrams_dropped_total{reason=\"handover_queue_full\"}"
        ),
        Some(0.0)
    );
    assert!(
        body.contains("# TYPE flowtel_socket_drops_total counter"),
        "{body}"
    );

    let (status, _stdout, stderr) = d.terminate();
    assert!(status.success(), "exit {status}: {stderr}");
    assert!(stderr.contains("new exporter"), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}

#[test]
fn one_exporter_sending_from_many_ports_is_decoded_by_one_worker() {
    let d = Daemon::start(&[
        "--rollup-interval",
        "1",
        "--workers",
        "4",
        "--sink",
        "stdout",
    ]);
    let flows = [V5Flow {
        src: [10, 1, 0, 1],
        dst: [10, 2, 0, 1],
        src_port: 1,
        dst_port: 2,
        proto: 17,
        packets: 1,
        bytes: 100,
    }];
    // Sixteen source ports: SO_REUSEPORT spreads them over the four sockets; the datagrams of
    // the workers that do not own the exporter are handed over to the one that does.
    let senders: Vec<UdpSocket> = (0..16)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for (i, s) in senders.iter().enumerate() {
        s.send_to(&netflow_v5(&flows, i as u32, 1_700_000_000, 0), d.listen)
            .unwrap();
    }
    let body = d.metrics_until("16 datagrams", |b| {
        sample(
            b,
            "flowtel_datagrams_total{exporter=\"127.0.0.1\",protocol=\"netflow_v5\"}",
        ) == Some(16.0)
    });
    let handed = sample(&body, "flowtel_datagrams_handed_over_total").unwrap();
    assert!(handed > 0.0 && handed < 16.0, "handed over {handed}");
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    assert_eq!(stderr.matches("new exporter").count(), 1, "{stderr}");
}
