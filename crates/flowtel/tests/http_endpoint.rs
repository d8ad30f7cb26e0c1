//! The HTTP endpoint under hostile and broken clients: the real binary, real TCP connections.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Daemon, http_get};

/// flowtel run with its open-file limit set to `nofile` (soft and hard, so it cannot raise it).
fn start_with_fd_limit(nofile: u32) -> Daemon {
    let listen = common::free_udp_addr();
    let http = common::free_tcp_addr();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "ulimit -n {nofile} && exec \"$0\" run --listen {listen} --prometheus-listen {http} --sink prometheus"
        ))
        .arg(env!("CARGO_BIN_EXE_flowtel"))
        .env("RUST_LOG", "info");
    Daemon::spawn(cmd, listen, http)
}

#[test]
fn a_flood_of_idle_connections_cannot_lock_out_the_health_probe() {
    // 256 descriptors: at most 64 HTTP connections; the flood opens 300.
    let d = start_with_fd_limit(256);
    let flood: Vec<TcpStream> = (0..300)
        .filter_map(|_| TcpStream::connect(d.http).ok())
        .collect();
    assert!(flood.len() >= 200, "the flood could open {}", flood.len());
    for _ in 0..3 {
        let (status, body) = http_get(d.http, "/healthz").expect("the probe is answered");
        assert_eq!((status, body.as_str()), (200, "ok\n"));
    }
    let metrics = d.metrics();
    assert!(metrics.contains("flowtel_datagrams_total") || metrics.contains("# TYPE"));
    drop(flood);
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    assert!(!stderr.contains("Too many open files"), "{stderr}");
}

#[test]
fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let d = Daemon::start(&["--sink", "prometheus"]);
    let mut slow = TcpStream::connect(d.http).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: flowtel\r\n")
        .unwrap();
    // One header line every second, never the blank line that ends them.
    slow.set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let start = Instant::now();
    let mut closed = false;
    let mut buf = [0u8; 1024];
    while start.elapsed() < common::PATIENCE {
        match slow.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
        if slow.write_all(b"X-Slow: 1\r\n").is_err() {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a slowloris connection was kept for {:?}",
        start.elapsed()
    );
    // Others are still served.
    assert_eq!(http_get(d.http, "/healthz").unwrap().0, 200);
    let (status, _, _) = d.terminate();
    assert!(status.success());
}

#[test]
fn status_reports_every_sink() {
    let d = Daemon::start(&["--sink", "prometheus", "--sink", "stdout"]);
    let (status, body) = http_get(d.http, "/status").unwrap();
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = v["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["prometheus", "stdout"]);
    for s in v["sinks"].as_array().unwrap() {
        assert_eq!(s["failing"], false);
        assert_eq!(s["queue_depth"], 0);
        assert!(s["dropped"].is_object(), "{s}");
    }
    let (status, _, _) = d.terminate();
    assert!(status.success());
}
