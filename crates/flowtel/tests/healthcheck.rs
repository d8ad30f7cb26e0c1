//! `flowtel healthcheck` against a real HTTP listener on 127.0.0.1: exit 0 on 2xx, failure on
//! anything else or when nothing listens.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::thread;

/// Serve one request with `status`, return the request line seen.
fn serve_once(status: &'static str) -> (String, thread::JoinHandle<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/healthz", l.local_addr().unwrap());
    let h = thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.ends_with(b"\r\n\r\n") {
            let n = s.read(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        write!(s, "HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nok").unwrap();
        String::from_utf8_lossy(&buf)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    });
    (url, h)
}

fn healthcheck(url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flowtel"))
        .args(["healthcheck", "--url", url, "--timeout", "2"])
        .output()
        .unwrap()
}

#[test]
fn healthy_endpoint_exits_zero() {
    let (url, h) = serve_once("200 OK");
    let out = healthcheck(&url);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(h.join().unwrap(), "GET /healthz HTTP/1.0");
}

#[test]
fn unhealthy_or_absent_endpoint_fails() {
    let (url, h) = serve_once("503 Service Unavailable");
    let out = healthcheck(&url);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("503"), "{stderr}");
    h.join().unwrap();

    // Nothing listens on a port we just released.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = healthcheck(&format!("http://127.0.0.1:{port}/healthz"));
    assert!(!out.status.success());
}
