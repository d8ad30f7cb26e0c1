//! The daemon end to end: the real binary receiving real UDP datagrams on loopback.

mod common;

use std::net::UdpSocket;
use std::process::Command;

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
    // Not a flow datagram: counted as a decode error, never fatal, logged once.
    sender.send_to(&[0xde, 0xad, 0xbe, 0xef], d.listen).unwrap();
    sender.send_to(&[0xde, 0xad, 0xbe, 0xef], d.listen).unwrap();

    let body = d.metrics_until("3 v5 datagrams and 2 unknown", |b| {
        sample(
            b,
            "flowtel_datagrams_total{exporter=\"127.0.0.1\",protocol=\"netflow_v5\"}",
        ) == Some(3.0)
            && sample(
                b,
                "flowtel_datagrams_total{exporter=\"127.0.0.1\",protocol=\"unknown\"}",
            ) == Some(2.0)
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
        ) == Some(2.0)
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
    let stranger = "not a NetFlow v5/v9, IPFIX or sFlow v5 datagram";
    assert_eq!(stderr.matches(stranger).count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "reason=\"unsupported_version\" bytes=4 first_bytes=de ad be ef looks_like=\"binary\""
        ),
        "{stderr}"
    );
}

/// A worker that emptied its socket pauses before waiting again (`receive_coalesce_us`), so
/// that one wake-up takes what arrived meanwhile; `--receive-coalesce-us 0` never pauses.
/// Every datagram is received either way.
#[test]
fn a_worker_pauses_after_emptying_its_socket_unless_told_not_to() {
    for (coalesce_us, pauses) in [("1000", true), ("0", false)] {
        let d = Daemon::start(&[
            "--workers",
            "1",
            "--sink",
            "prometheus",
            "--receive-coalesce-us",
            coalesce_us,
        ]);
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for seq in 0..50 {
            sender
                .send_to(&netflow_v5(&V5_FLOWS, seq * 2, 1_700_000_000, 0), d.listen)
                .unwrap();
            // Spaced out: each datagram finds the socket emptied by the pass before.
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let body = d.metrics_until("50 v5 datagrams", |b| {
            sample(
                b,
                "flowtel_datagrams_total{exporter=\"127.0.0.1\",protocol=\"netflow_v5\"}",
            ) == Some(50.0)
        });
        let batches = sample(&body, "flowtel_receive_batches_total").unwrap();
        assert!(
            (1.0..=50.0).contains(&batches),
            "{coalesce_us}: {batches} batches"
        );
        let taken = sample(&body, "flowtel_receive_pauses_total").unwrap();
        if pauses {
            assert!(taken >= 1.0, "{coalesce_us}: no pause\n{body}");
        } else {
            assert_eq!(taken, 0.0, "{coalesce_us}: paused");
        }
        assert_eq!(
            sample(&body, "flowtel_records_total{protocol=\"netflow_v5\"}"),
            Some(100.0)
        );
        let (status, _, stderr) = d.terminate();
        assert!(status.success(), "exit {status}: {stderr}");
    }
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

/// Start flowtel on the given listen addresses (free ports where the port is 0).
fn start_on(listen: &[std::net::SocketAddr], args: &[&str]) -> (Daemon, Vec<std::net::SocketAddr>) {
    start_cmd_on(common::flowtel_command(), listen, args)
}

/// [`start_on`] with the command that runs `flowtel` (e.g. through a wrapper).
fn start_cmd_on(
    mut cmd: Command,
    listen: &[std::net::SocketAddr],
    args: &[&str],
) -> (Daemon, Vec<std::net::SocketAddr>) {
    let listen: Vec<std::net::SocketAddr> = listen
        .iter()
        .map(|a| {
            if a.port() != 0 {
                return *a;
            }
            // A free port of the same family.
            UdpSocket::bind(std::net::SocketAddr::new(a.ip(), 0))
                .and_then(|s| s.local_addr())
                .expect("a free port")
        })
        .collect();
    let http = common::free_tcp_addr();
    cmd.args(args);
    for l in &listen {
        cmd.args(["--listen", &l.to_string()]);
    }
    cmd.args(["--prometheus-listen", &http.to_string()]);
    let first = listen[0];
    (Daemon::spawn(cmd, first, http), listen)
}

/// Sum of the `value` of every `network.io.by_flow` line the stdout sink wrote.
fn stdout_bytes(stdout: &str) -> u64 {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["metric"] == "network.io.by_flow")
        .map(|v| v["value"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn a_busy_address_is_read_at_full_rate_while_the_others_are_idle() {
    if UdpSocket::bind("[::1]:0").is_err() {
        common::skip("no IPv6 loopback on this host");
        return;
    }
    // Three listen addresses, IPv4 and IPv6; traffic only to the IPv6 one. A worker that
    // waited on its idle sockets in turn would read a batch per wait and lose most of this.
    let (d, listen) = start_on(
        &[
            "127.0.0.1:0".parse().unwrap(),
            "[::1]:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        ],
        &[
            "--rollup-interval",
            "1",
            "--workers",
            "2",
            "--sink",
            "stdout",
        ],
    );
    let busy = listen[1];
    let sender = UdpSocket::bind("[::1]:0").unwrap();
    let datagrams: u32 = 4_000;
    let per_datagram: u64 = V5_FLOWS.iter().map(|f| u64::from(f.bytes)).sum();
    for seq in 0..datagrams {
        sender
            .send_to(&netflow_v5(&V5_FLOWS, seq * 2, 1_700_000_000, 0), busy)
            .unwrap();
        // About 20 000 datagrams/s: far beyond what a worker waiting on idle sockets reads.
        if seq % 100 == 99 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    let body = d.metrics_until("every datagram", |b| {
        sample(
            b,
            "flowtel_datagrams_total{exporter=\"::1\",protocol=\"netflow_v5\"}",
        ) == Some(f64::from(datagrams))
    });
    assert_eq!(sample(&body, "flowtel_socket_drops_total"), Some(0.0));
    assert_eq!(
        sample(&body, "flowtel_records_total{protocol=\"netflow_v5\"}"),
        Some(f64::from(datagrams) * V5_FLOWS.len() as f64)
    );
    let (status, stdout, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout_bytes(&stdout), u64::from(datagrams) * per_datagram);
    for l in &listen {
        assert!(stderr.contains(&format!("listen={l}")), "{l}: {stderr}");
    }
}

/// A burst into the smallest receive buffer the kernel allows: every datagram is either
/// decoded or counted in `flowtel_socket_drops_total`, with several sockets per worker and
/// per listen address.
#[test]
fn every_datagram_is_decoded_or_counted_as_a_socket_drop() {
    let (d, listen) = start_on(
        &[
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        ],
        &[
            "--workers",
            "2",
            "--recv-buffer-bytes",
            "1",
            "--sink",
            "prometheus",
        ],
    );
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sent: u32 = 3_000;
    for seq in 0..sent {
        sender
            .send_to(&netflow_v5(&V5_FLOWS, seq * 2, 1_700_000_000, 0), listen[0])
            .unwrap();
    }
    let decoded = |b: &str| {
        sample(
            b,
            "flowtel_datagrams_total{exporter=\"127.0.0.1\",protocol=\"netflow_v5\"}",
        )
        .unwrap_or(0.0)
    };
    let drops = |b: &str| sample(b, "flowtel_socket_drops_total").unwrap_or(0.0);
    let body = d.metrics_until("every datagram decoded or dropped", |b| {
        decoded(b) + drops(b) == f64::from(sent)
    });
    assert!(drops(&body) > 0.0, "the burst fitted the buffer\n{body}");
    assert!(decoded(&body) > 0.0, "{body}");
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
}

#[test]
fn a_window_closes_at_its_boundary_with_no_traffic_after_it() {
    let (d, listen) = start_on(
        &["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()],
        &["--rollup-interval", "1", "--sink", "stdout"],
    );
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .send_to(&netflow_v5(&V5_FLOWS, 0, 1_700_000_000, 0), listen[0])
        .unwrap();
    // Nothing else arrives: the window must still close at its boundary, not at shutdown.
    d.metrics_until("the window emitted while every socket is idle", |b| {
        sample(b, "flowtel_windows_emitted_total{rollup=\"bytes_by_flow\"}") == Some(1.0)
    });
    let per_datagram: u64 = V5_FLOWS.iter().map(|f| u64::from(f.bytes)).sum();
    assert_eq!(stdout_bytes(&d.stdout_text()), per_datagram);
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
}

#[test]
fn windows_close_and_shutdown_completes_while_a_socket_is_saturated() {
    let (d, listen) = start_on(
        &[
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        ],
        &["--rollup-interval", "1", "--sink", "prometheus"],
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = std::sync::Arc::clone(&stop);
        let target = listen[0];
        std::thread::spawn(move || {
            let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
            let d = netflow_v5(&V5_FLOWS, 0, 1_700_000_000, 0);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = sender.send_to(&d, target);
            }
        })
    };
    let windows = |b: &str| {
        sample(b, "flowtel_windows_emitted_total{rollup=\"bytes_by_flow\"}").unwrap_or(0.0)
    };
    let first = windows(&d.metrics_until("a first window under load", |b| windows(b) >= 1.0));
    d.metrics_until("two more windows under load", |b| windows(b) >= first + 2.0);
    // Stop is answered under load too.
    let (status, _, stderr) = d.terminate();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flood.join().unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}

#[test]
fn a_port_held_by_another_process_is_refused_naming_it() {
    let holder = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let out = common::flowtel_command()
        .args(["run", "--listen", &addr, "--sink", "stdout"])
        .args(["--prometheus-listen", &common::free_tcp_addr().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on udp {addr}: address in use by ")),
        "{stderr}"
    );
    // The holder is this test process.
    assert!(
        stderr.contains(&format!("(pid {})", std::process::id())),
        "{stderr}"
    );
}

#[test]
fn a_second_flowtel_on_the_same_port_is_refused() {
    let d = Daemon::start(&["--sink", "stdout"]);
    let out = common::flowtel_command()
        .args(["run", "--listen", &d.listen.to_string(), "--sink", "stdout"])
        .args(["--prometheus-listen", &common::free_tcp_addr().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let pid = d.child.as_ref().unwrap().id();
    assert!(
        stderr.contains("address in use by flowtel") && stderr.contains(&format!("(pid {pid})")),
        "{stderr}"
    );
    let (status, _, _) = d.terminate();
    assert!(status.success());
}

#[test]
fn exporters_outside_the_access_lists_are_refused_counted_and_never_decoded() {
    let busy: std::net::SocketAddr = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap();
    let other: std::net::SocketAddr = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap();
    let dir = common::ScratchDir::new("access");
    let file = dir.join("flowtel.yaml");
    // Daemon-wide: 127.0.0.0/29 allowed, 127.0.0.3 denied; the second address allows only .4.
    std::fs::write(
        &file,
        format!(
            "listen: [\"{busy}\", \"{other}\"]\naccess:\n  allow: [127.0.0.0/29]\n  deny: [127.0.0.3]\n  \
             listen:\n    - {{address: \"{other}\", allow: [127.0.0.4]}}\n"
        ),
    )
    .unwrap();
    let http = common::free_tcp_addr();
    let mut cmd = common::flowtel_command();
    cmd.args([
        "run",
        "--config",
        file.to_str().unwrap(),
        "--sink",
        "prometheus",
    ])
    .args(["--prometheus-listen", &http.to_string()]);
    let d = Daemon::spawn(cmd, busy, http);
    let send = |from: &str, to: std::net::SocketAddr| {
        let s = UdpSocket::bind((from, 0)).unwrap();
        s.send_to(&netflow_v5(&V5_FLOWS, 0, 1_700_000_000, 0), to)
            .unwrap();
    };
    send("127.0.0.2", busy); // allowed
    send("127.0.0.3", busy); // denied
    send("127.0.0.9", busy); // not allowed
    send("127.0.0.4", other); // allowed by the address's own list
    send("127.0.0.2", other); // not allowed there
    let body = d.metrics_until("five datagrams accounted for", |b| {
        let dropped = |r: &str| {
            sample(
                b,
                &format!("flowtel_datagrams_dropped_total{{reason=\"{r}\"}}"),
            )
            .unwrap_or(0.0)
        };
        dropped("exporter_denied") == 1.0
            && dropped("exporter_not_allowed") == 2.0
            && sample(b, "flowtel_records_total{protocol=\"netflow_v5\"}") == Some(4.0)
    });
    assert!(
        !body.contains("exporter=\"127.0.0.3\""),
        "refused datagrams are not decoded"
    );
    assert!(!body.contains("exporter=\"127.0.0.9\""));
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
}

#[test]
fn a_capped_receive_buffer_is_reported_once_with_the_command_that_lifts_the_cap() {
    let Some(max) = flowtel::daemon::listener::rmem_max() else {
        common::skip("/proc/sys/net/core/rmem_max is not readable");
        return;
    };
    // The cap holds for a daemon without CAP_NET_ADMIN: a privileged test run starts it
    // through setpriv with the capability dropped.
    let cmd = if flowtel::daemon::listener::cap_net_admin() {
        if !common::require_tool("setpriv", "apt install util-linux") {
            return;
        }
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--bounding-set",
            "-net_admin",
            "--inh-caps",
            "-net_admin",
            "--",
        ])
        .arg(env!("CARGO_BIN_EXE_flowtel"));
        common::test_env(cmd)
    } else {
        common::flowtel_command()
    };
    let requested = (2 * max).to_string();
    let (d, _) = start_cmd_on(
        cmd,
        &[
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        ],
        &["--sink", "stdout", "--recv-buffer-bytes", &requested],
    );
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    let line = format!("sysctl -w net.core.rmem_max={requested}) or give flowtel CAP_NET_ADMIN");
    assert_eq!(stderr.matches(&line).count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "receive buffers are {max} bytes, not the {requested} requested"
        )),
        "{stderr}"
    );
}

#[test]
fn a_receive_buffer_beyond_rmem_max_is_granted_with_cap_net_admin() {
    let Some(max) = flowtel::daemon::listener::rmem_max() else {
        common::skip("/proc/sys/net/core/rmem_max is not readable");
        return;
    };
    if !flowtel::daemon::listener::cap_net_admin() {
        common::skip("needs CAP_NET_ADMIN (root), with which SO_RCVBUFFORCE exceeds the cap");
        return;
    }
    let requested = (2 * max).to_string();
    let (d, _) = start_on(
        &["127.0.0.1:0".parse().unwrap()],
        &["--sink", "stdout", "--recv-buffer-bytes", &requested],
    );
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "receive buffers of {requested} bytes granted beyond net.core.rmem_max ({max})"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("receive buffers are"), "{stderr}");
}

#[test]
fn a_periodic_line_states_rates_drops_and_every_sink() {
    let d = Daemon::start(&[
        "--sink",
        "stdout",
        "--sink",
        "prometheus",
        "--exporter-report-interval",
        "1",
    ]);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .send_to(&netflow_v5(&V5_FLOWS, 0, 1_700_000_000, 0), d.listen)
        .unwrap();
    let start = std::time::Instant::now();
    while !d.stderr_text().contains("flowtel state") {
        assert!(start.elapsed() < common::PATIENCE, "{}", d.stderr_text());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (status, _, stderr) = d.terminate();
    assert!(status.success());
    let line = stderr
        .lines()
        .find(|l| l.contains("flowtel state"))
        .unwrap();
    for part in [
        "datagrams_per_sec=",
        "records_per_sec=",
        "socket_drops=0",
        "decode_errors=0",
        "stdout: 0 queued of 64, 0 dropped",
        "prometheus: ",
    ] {
        assert!(line.contains(part), "{part} in {line}");
    }
}
