//! Shared helpers for the binary's integration tests: the real binary (one-shot runs and a
//! long-running daemon), the fixtures and the workspace root, free loopback ports, plain HTTP,
//! NetFlow datagrams built byte by byte and an in-process OTLP receiver standing in for Alloy.
//! Each test binary uses a part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (where `deploy/`, `examples/` and `README.md` are).
pub fn repo() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .canonicalize()
        .expect("workspace root")
}

/// The repository's fixture directory (`tests/fixtures` at the workspace root).
pub fn fixtures() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures"))
}

/// Run the real `flowtel` binary with `args`.
pub fn flowtel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_flowtel"))
        .args(args)
        .output()
        .expect("run the flowtel binary")
}

/// `flowtel decode FIXTURE --format FORMAT`, asserting it succeeds; returns stdout and stderr.
pub fn decode_fixture(name: &str, format: &str) -> (String, String) {
    let path = fixtures().join(format!("{name}.pcap"));
    let path = path.to_str().expect("utf-8 path");
    let out = flowtel(&["decode", path, "--format", format]);
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    assert!(
        out.status.success(),
        "flowtel decode {name} failed: {:?}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// Upper bound for any wait in a test; generous so slow CI machines pass.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A loopback UDP address free when asked (see [`free_port`]).
pub fn free_udp_addr() -> SocketAddr {
    free_port(|a| UdpSocket::bind(a).is_ok())
}

/// A loopback TCP address free when asked (see [`free_port`]).
pub fn free_tcp_addr() -> SocketAddr {
    free_port(|a| TcpListener::bind(a).is_ok())
}

/// A loopback port that `binds` could bind, picked at random below the kernel's ephemeral
/// range (`net.ipv4.ip_local_port_range`). A port the kernel hands out for port 0 is in that
/// range and, once released, may go to the next socket that connects out before the daemon
/// binds it: a daemon retrying a broker that is down took the `/metrics` port so. Ports below
/// the range are never handed out for port 0.
fn free_port(binds: impl Fn(SocketAddr) -> bool) -> SocketAddr {
    use std::hash::{BuildHasher, RandomState};
    let ephemeral_from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_from);
    if high > low + 1_000 {
        let (random, span) = (RandomState::new(), u64::from(high - low));
        for attempt in 0..1_000u32 {
            let port = low + (random.hash_one(attempt) % span) as u16;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            if binds(addr) {
                return addr;
            }
        }
    }
    // No room below the range: a port the kernel picks.
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    UdpSocket::bind(addr)
        .and_then(|s| s.local_addr())
        .expect("a free loopback port")
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

/// Say that a test is skipped, visibly: written straight to stderr, which the test harness
/// does not capture, so the reason shows in a plain `cargo test` run.
pub fn skip(reason: &str) {
    use std::io::Write as _;
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// Whether an external tool a test needs is here: a command (probed with `--version`, or with
/// the arguments given after it, e.g. `socat -V`), or `python3:MODULE` (a Python module
/// `python3` can import). If not, the test is skipped with
/// the reason and `install` hint, or fails when `FLOWTEL_REQUIRE_TOOLS=1` (as `.ci/run` sets),
/// so a broken install step cannot pass CI silently.
pub fn require_tool(name: &str, install: &str) -> bool {
    let probe = match name.strip_prefix("python3:") {
        Some(module) => Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .output(),
        None => {
            let mut words = name.split_whitespace();
            let command = words.next().unwrap_or(name);
            let args: Vec<&str> = words.collect();
            let args = if args.is_empty() {
                vec!["--version"]
            } else {
                args
            };
            Command::new(command).args(args).output()
        }
    };
    let problem = match probe {
        Ok(out) if out.status.success() => return true,
        Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        Err(e) => e.to_string(),
    };
    let reason = format!("`{name}` is not usable ({problem}); {install}");
    assert!(
        std::env::var("FLOWTEL_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "FLOWTEL_REQUIRE_TOOLS=1 and {reason}"
    );
    skip(&reason);
    false
}

/// A running `flowtel` process, killed on drop. Its stdout and stderr go to files (a pipe
/// nobody reads could fill up and stall it).
pub struct Daemon {
    pub child: Option<Child>,
    pub listen: SocketAddr,
    pub http: SocketAddr,
    stdout: std::path::PathBuf,
    stderr: std::path::PathBuf,
}

/// A directory for one test's files, `flowtel-NAME-PID-N` under the system's temporary
/// directory; removed when dropped unless the test is failing (then it stays for reading).
pub struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    pub fn new(name: &str) -> ScratchDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "flowtel-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A file for one of a daemon's outputs, removed when the daemon is dropped unless the test
/// is failing (then it stays for reading).
fn output_file(kind: &str) -> (std::path::PathBuf, std::fs::File) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let path = std::env::temp_dir().join(format!(
        "flowtel-e2e-{}-{}-{kind}.log",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let file = std::fs::File::create(&path).unwrap();
    (path, file)
}

pub fn flowtel_command() -> Command {
    test_env(Command::new(env!("CARGO_BIN_EXE_flowtel")))
}

/// `cmd` (which runs `flowtel`, directly or through a wrapper) without the caller's `OTEL_*`
/// variables and with info logs.
pub fn test_env(mut cmd: Command) -> Command {
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
            .args(["--prometheus-listen", &http.to_string()]);
        Self::spawn(cmd, listen, http)
    }

    /// Start `cmd` as is (its arguments must make it listen on `listen` and serve HTTP on
    /// `http`); wait until ready.
    pub fn spawn(mut cmd: Command, listen: SocketAddr, http: SocketAddr) -> Daemon {
        let (stdout, out_file) = output_file("stdout");
        let (stderr, err_file) = output_file("stderr");
        cmd.stdout(Stdio::from(out_file))
            .stderr(Stdio::from(err_file));
        let child = cmd.spawn().expect("start flowtel");
        let mut d = Daemon {
            child: Some(child),
            listen,
            http,
            stdout,
            stderr,
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
                panic!("flowtel exited early with {status}: {}", self.stderr_text());
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
    pub fn metrics_until(&self, what: &str, mut pred: impl FnMut(&str) -> bool) -> String {
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

    pub fn stderr_text(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn stdout_text(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Send SIGHUP (reload the configuration).
    pub fn hangup(&self) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        );
    }

    /// Send SIGTERM and wait: (exit status, stdout, stderr).
    pub fn terminate(mut self) -> (ExitStatus, String, String) {
        let mut child = self.child.take().unwrap();
        let pid = child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
        let status = child.wait().unwrap();
        (status, self.stdout_text(), self.stderr_text())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.stdout);
            let _ = std::fs::remove_file(&self.stderr);
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

/// A TCP flow and a port-less ICMP flow, the v5 traffic of the daemon tests.
pub const V5_FLOWS: [V5Flow; 2] = [
    V5Flow {
        src: [10, 0, 0, 1],
        dst: [192, 0, 2, 7],
        src_port: 51000,
        dst_port: 443,
        proto: 6,
        packets: 10,
        bytes: 1500,
    },
    V5Flow {
        src: [10, 0, 0, 2],
        dst: [192, 0, 2, 8],
        src_port: 0,
        dst_port: 0,
        proto: 1,
        packets: 1,
        bytes: 84,
    },
];

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

// ---------------------------------------------------------------------------------------------
// The daemon embedded, as `flowtel run` and `flowtel demo` run it.

/// The daemon with `workers` workers, the prometheus sink and `sink`, on a thread of its own:
/// its UDP address and where its result arrives. Once per test process: the daemon installs
/// the process's log subscriber.
pub fn embedded_daemon(
    workers: usize,
    sink: Arc<dyn flowtel::sinks::Sink>,
) -> (SocketAddr, std::sync::mpsc::Receiver<anyhow::Result<()>>) {
    let mut config = flowtel::config::Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        prometheus_listen: "127.0.0.1:0".parse().unwrap(),
        workers,
        recv_buffer_bytes: 0,
        // Longer than the test: the only windows are those of the shutdown's flush.
        rollup_interval_secs: Some(3600),
        sinks: vec![flowtel::config::SinkKind::Prometheus],
        shutdown_grace_secs: 1,
        exporter_report_interval_secs: 0,
        log_level: "warn".to_owned(),
        ..flowtel::config::Config::default()
    };
    flowtel::config::finish_and_validate(&mut config).unwrap();
    let (listening_tx, listening) = std::sync::mpsc::channel::<flowtel::daemon::Listening>();
    let hooks = flowtel::daemon::Hooks {
        on_listening: Some(Box::new(move |l| {
            listening_tx.send(l.clone())?;
            Ok(())
        })),
        sinks: vec![sink],
        ..flowtel::daemon::Hooks::default()
    };
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(flowtel::daemon::run_with(config, &[], hooks));
    });
    let Ok(listening) = listening.recv_timeout(PATIENCE) else {
        panic!(
            "the daemon did not start: {:?}",
            done.recv_timeout(PATIENCE)
        );
    };
    (listening.udp[0], done)
}

/// One datagram of [`V5_FLOWS`] from `from` (any loopback address) to `to`.
pub fn send_v5(from: std::net::IpAddr, to: SocketAddr, sequence: u32) {
    let socket = UdpSocket::bind(SocketAddr::new(from, 0)).unwrap();
    socket
        .send_to(&netflow_v5(&V5_FLOWS, sequence, 1_700_000_000, 0), to)
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// An in-process OTLP/gRPC receiver standing in for Alloy.

use std::sync::{Arc, Mutex};

use flowtel_otlp::opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use flowtel_otlp::opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use flowtel_otlp::opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use flowtel_otlp::opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use flowtel_otlp::opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use flowtel_otlp::opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};

/// What the receiver got.
#[derive(Debug, Default)]
pub struct Received {
    pub requests: Vec<ExportMetricsServiceRequest>,
    /// Bodies of the OTLP log records received, with their resource's `service.name`.
    pub logs: Vec<(String, String)>,
    /// Every log record received (flow records from the `flow-logs` sink).
    pub log_records: Vec<flowtel_otlp::opentelemetry_proto::tonic::logs::v1::LogRecord>,
    /// Calls refused with UNAVAILABLE (see [`Alloy::refuse_first`]).
    pub refused: u64,
    /// Logs calls refused with UNAVAILABLE (see [`Alloy::refuse_first_logs`]).
    pub refused_logs: u64,
}

#[derive(Debug, Clone, Default)]
struct Service {
    state: Arc<Mutex<Received>>,
    refuse: Arc<Mutex<u64>>,
    refuse_logs: Arc<Mutex<u64>>,
}

#[tonic::async_trait]
impl MetricsService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        {
            let mut refuse = self.refuse.lock().unwrap();
            if *refuse > 0 {
                *refuse -= 1;
                self.state.lock().unwrap().refused += 1;
                return Err(tonic::Status::unavailable("starting up"));
            }
        }
        self.state
            .lock()
            .unwrap()
            .requests
            .push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        {
            let mut refuse = self.refuse_logs.lock().unwrap();
            if *refuse > 0 {
                *refuse -= 1;
                self.state.lock().unwrap().refused_logs += 1;
                return Err(tonic::Status::unavailable("starting up"));
            }
        }
        let mut st = self.state.lock().unwrap();
        for rl in request.into_inner().resource_logs {
            let service = rl
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .map(|kv| any_to_string(&kv.value))
                .unwrap_or_default();
            for sl in rl.scope_logs {
                for r in sl.log_records {
                    st.logs.push((service.clone(), any_to_string(&r.body)));
                    st.log_records.push(r);
                }
            }
        }
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

/// A tonic `MetricsServiceServer` (and `LogsServiceServer`) on 127.0.0.1, on its own runtime.
pub struct Alloy {
    pub addr: SocketAddr,
    service: Service,
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Alloy {
    pub fn start() -> Alloy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        Self::start_on(listener)
    }

    /// Serve on an address chosen earlier (for "Alloy comes up later").
    pub fn start_at(addr: SocketAddr) -> Alloy {
        Self::start_on(std::net::TcpListener::bind(addr).unwrap())
    }

    fn start_on(listener: std::net::TcpListener) -> Alloy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let service = Service::default();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let svc = MetricsServiceServer::new(service.clone())
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        let logs = LogsServiceServer::new(service.clone())
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            tonic::transport::Server::builder()
                .add_service(svc)
                .add_service(logs)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    async {
                        let _ = rx.await;
                    },
                )
                .await
                .unwrap();
        });
        Alloy {
            addr,
            service,
            runtime,
            stop: Some(tx),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer the next `n` calls with UNAVAILABLE.
    pub fn refuse_first(&self, n: u64) {
        *self.service.refuse.lock().unwrap() = n;
    }

    /// Answer the next `n` logs calls with UNAVAILABLE.
    pub fn refuse_first_logs(&self, n: u64) {
        *self.service.refuse_logs.lock().unwrap() = n;
    }

    pub fn with<R>(&self, f: impl FnOnce(&Received) -> R) -> R {
        f(&self.service.state.lock().unwrap())
    }

    /// Every data point received so far.
    pub fn points(&self) -> Vec<FlatPoint> {
        self.with(|r| flatten(&r.requests))
    }

    /// Wait until `pred` holds on the received points.
    pub fn points_until(&self, what: &str, pred: impl Fn(&[FlatPoint]) -> bool) -> Vec<FlatPoint> {
        let start = Instant::now();
        loop {
            let p = self.points();
            if pred(&p) {
                return p;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "timed out waiting for {what}; got {} points",
                p.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Alloy {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = &self.runtime;
    }
}

/// One received data point with its context, attributes as strings.
#[derive(Debug, Clone, PartialEq)]
pub struct FlatPoint {
    pub resource: Vec<(String, String)>,
    pub scope: String,
    pub metric: String,
    pub unit: String,
    pub gauge: bool,
    pub attributes: Vec<(String, String)>,
    pub value: i64,
    pub start: u64,
    pub time: u64,
}

impl FlatPoint {
    pub fn attr(&self, k: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    }
    pub fn resource_attr(&self, k: &str) -> Option<&str> {
        self.resource
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.as_str())
    }
}

fn any_to_string(v: &Option<AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

pub fn flatten(requests: &[ExportMetricsServiceRequest]) -> Vec<FlatPoint> {
    let mut out = Vec::new();
    for req in requests {
        for rm in &req.resource_metrics {
            let resource: Vec<(String, String)> = rm
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .map(|kv| (kv.key.clone(), any_to_string(&kv.value)))
                .collect();
            for sm in &rm.scope_metrics {
                let scope = sm
                    .scope
                    .as_ref()
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                for m in &sm.metrics {
                    let (gauge, points) = match &m.data {
                        Some(metric::Data::Gauge(g)) => (true, &g.data_points),
                        Some(metric::Data::Sum(s)) => (false, &s.data_points),
                        _ => continue,
                    };
                    for p in points {
                        let value = match p.value {
                            Some(number_data_point::Value::AsInt(i)) => i,
                            Some(number_data_point::Value::AsDouble(d)) => d as i64,
                            None => 0,
                        };
                        out.push(FlatPoint {
                            resource: resource.clone(),
                            scope: scope.clone(),
                            metric: m.name.clone(),
                            unit: m.unit.clone(),
                            gauge,
                            attributes: p
                                .attributes
                                .iter()
                                .map(|kv| (kv.key.clone(), any_to_string(&kv.value)))
                                .collect(),
                            value,
                            start: p.start_time_unix_nano,
                            time: p.time_unix_nano,
                        });
                    }
                }
            }
        }
    }
    out
}

/// Sum of the values of `metric`.
pub fn total(points: &[FlatPoint], metric: &str) -> i64 {
    points
        .iter()
        .filter(|p| p.metric == metric)
        .map(|p| p.value)
        .sum()
}

/// Panics when a series has two points in the same window.
pub fn assert_one_point_per_series_per_window(points: &[FlatPoint]) {
    let mut seen = std::collections::HashSet::new();
    for p in points {
        let mut attrs = p.attributes.clone();
        attrs.sort();
        assert!(
            seen.insert((p.metric.clone(), p.start, p.time, attrs)),
            "two points for one series in one window: {p:?}"
        );
    }
}
