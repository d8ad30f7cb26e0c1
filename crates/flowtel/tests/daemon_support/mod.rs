//! Helpers for end-to-end tests: the real binary, free loopback ports, plain HTTP, and NetFlow
//! datagrams built byte by byte.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Upper bound for any wait in a test; generous so slow CI machines pass.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn free_udp_addr() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub fn free_tcp_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `GET path` over HTTP/1.1 with `Connection: close`: (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: flowtel\r\nConnection: close\r\n\r\n"
    )?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)?;
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_owned()))
}

/// A running `flowtel` process, killed on drop.
pub struct Daemon {
    pub child: Option<Child>,
    pub listen: SocketAddr,
    pub http: SocketAddr,
}

pub fn flowtel_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flowtel"));
    for (k, _) in std::env::vars() {
        if k.starts_with("OTEL_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "info");
    cmd
}

impl Daemon {
    /// Start `flowtel` with `args` plus free `--listen` and `--prometheus-listen` ports; wait
    /// until `/readyz` answers 200.
    pub fn start(args: &[&str]) -> Daemon {
        Self::start_with(flowtel_command(), args)
    }

    pub fn start_with(mut cmd: Command, args: &[&str]) -> Daemon {
        let listen = free_udp_addr();
        let http = free_tcp_addr();
        cmd.args(args)
            .args(["--listen", &listen.to_string()])
            .args(["--prometheus-listen", &http.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("start flowtel");
        let mut d = Daemon {
            child: Some(child),
            listen,
            http,
        };
        d.wait_ready();
        d
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while start.elapsed() < PATIENCE {
            if let Ok((200, _)) = http_get(self.http, "/readyz") {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                let out = self.child.take().unwrap().wait_with_output().unwrap();
                panic!(
                    "flowtel exited early with {status}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("flowtel did not become ready");
    }

    pub fn metrics(&self) -> String {
        let (status, body) = http_get(self.http, "/metrics").expect("scrape /metrics");
        assert_eq!(status, 200);
        body
    }

    /// Poll `/metrics` until `pred` holds; returns the last body.
    pub fn metrics_until(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let body = self.metrics();
            if pred(&body) {
                return body;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "timed out waiting for {what}; last /metrics:\n{body}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Send SIGTERM and wait: (exit status, stdout, stderr).
    pub fn terminate(mut self) -> (ExitStatus, String, String) {
        let child = self.child.take().unwrap();
        let pid = child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let out = child.wait_with_output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Value of the sample `name{labels}` (labels exactly as rendered) in a /metrics body.
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?;
        let rest = rest.strip_prefix(' ')?;
        rest.split(' ').next()?.parse().ok()
    })
}

/// One NetFlow v5 flow record (Cisco NetFlow v5 export format).
#[derive(Debug, Clone, Copy)]
pub struct V5Flow {
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub src_port: u16,
    pub dst_port: u16,
    pub proto: u8,
    pub packets: u32,
    pub bytes: u32,
}

/// A NetFlow v5 datagram: 24-byte header, 48-byte records. `sampling_interval` is the raw
/// header field (top 2 bits mode, low 14 bits interval).
pub fn netflow_v5(
    flows: &[V5Flow],
    sequence: u32,
    unix_secs: u32,
    sampling_interval: u16,
) -> Vec<u8> {
    let mut d = Vec::with_capacity(24 + 48 * flows.len());
    d.extend_from_slice(&5u16.to_be_bytes());
    d.extend_from_slice(&(flows.len() as u16).to_be_bytes());
    d.extend_from_slice(&1_000u32.to_be_bytes()); // sys_uptime ms
    d.extend_from_slice(&unix_secs.to_be_bytes());
    d.extend_from_slice(&0u32.to_be_bytes()); // unix_nsecs
    d.extend_from_slice(&sequence.to_be_bytes());
    d.push(0); // engine_type
    d.push(0); // engine_id
    d.extend_from_slice(&sampling_interval.to_be_bytes());
    for f in flows {
        d.extend_from_slice(&f.src);
        d.extend_from_slice(&f.dst);
        d.extend_from_slice(&[0, 0, 0, 0]); // nexthop
        d.extend_from_slice(&1u16.to_be_bytes()); // input
        d.extend_from_slice(&2u16.to_be_bytes()); // output
        d.extend_from_slice(&f.packets.to_be_bytes());
        d.extend_from_slice(&f.bytes.to_be_bytes());
        d.extend_from_slice(&500u32.to_be_bytes()); // first
        d.extend_from_slice(&900u32.to_be_bytes()); // last
        d.extend_from_slice(&f.src_port.to_be_bytes());
        d.extend_from_slice(&f.dst_port.to_be_bytes());
        d.push(0); // pad1
        d.push(0x18); // tcp_flags
        d.push(f.proto);
        d.push(0); // tos
        d.extend_from_slice(&0u16.to_be_bytes()); // src_as
        d.extend_from_slice(&0u16.to_be_bytes()); // dst_as
        d.push(24);
        d.push(24);
        d.extend_from_slice(&[0, 0]); // pad2
    }
    d
}
