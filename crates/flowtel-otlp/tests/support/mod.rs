//! What the client and queue tests share: a real in-process tonic server for both OTLP services
//! on 127.0.0.1 standing in for Alloy (scripted answers), real TLS certificates made with
//! rcgen, windows and log batches with recognisable values, bounded waits, and a log capture.
//! No assertion depends on wall-clock time: tests use tiny backoffs and wait for counters, each
//! wait bounded so a regression fails instead of hanging.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowtel_otlp::opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use flowtel_otlp::opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use flowtel_otlp::opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use flowtel_otlp::opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use flowtel_otlp::opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use flowtel_otlp::opentelemetry_proto::tonic::logs::v1::LogRecord;
use flowtel_otlp::opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use flowtel_otlp::{ChannelConfig, ClientConfig, ExportStatsSnapshot, RetryConfig};
use flowtel_series::{AttrValue, Point, WindowBatch};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

pub const BOUND: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// The receiver

/// How the receiver answers one call.
#[derive(Debug)]
pub enum Answer {
    /// OK, nothing rejected.
    Accept,
    /// OK with a partial success.
    Partial { rejected: i64, message: String },
    /// This status.
    Fail(Status),
    /// Wait this long, then accept.
    Stall(Duration),
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Received<T> {
    pub request: T,
    pub metadata: tonic::metadata::MetadataMap,
}

#[derive(Debug, Default)]
struct ReceiverState {
    /// Every call, answered OK or not.
    calls: u64,
    metrics: Vec<Received<ExportMetricsServiceRequest>>,
    logs: Vec<Received<ExportLogsServiceRequest>>,
    /// Answers to give, front first; accept when empty.
    script: VecDeque<Answer>,
}

/// `MetricsService` and `LogsService` in one, answering from one script.
#[derive(Debug, Clone, Default)]
pub struct Receiver {
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }
    pub fn calls(&self) -> u64 {
        self.state.lock().unwrap().calls
    }
    pub fn metrics(&self) -> Vec<Received<ExportMetricsServiceRequest>> {
        self.state.lock().unwrap().metrics.clone()
    }
    pub fn logs(&self) -> Vec<Received<ExportLogsServiceRequest>> {
        self.state.lock().unwrap().logs.clone()
    }

    /// Counts the call and takes its answer: `Ok(partial)` to accept (after any stall), or the
    /// status to fail with.
    async fn answer(&self) -> Result<Option<(i64, String)>, Status> {
        let answer = {
            let mut st = self.state.lock().unwrap();
            st.calls += 1;
            st.script.pop_front().unwrap_or(Answer::Accept)
        };
        match answer {
            Answer::Accept => Ok(None),
            Answer::Partial { rejected, message } => Ok(Some((rejected, message))),
            Answer::Fail(status) => Err(status),
            Answer::Stall(d) => {
                tokio::time::sleep(d).await;
                Ok(None)
            }
        }
    }
}

fn received<T>(request: Request<T>) -> Received<T> {
    Received {
        metadata: request.metadata().clone(),
        request: request.into_inner(),
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let partial = self.answer().await?;
        self.state.lock().unwrap().metrics.push(received(request));
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: partial.map(|(rejected, error_message)| ExportMetricsPartialSuccess {
                rejected_data_points: rejected,
                error_message,
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let partial = self.answer().await?;
        self.state.lock().unwrap().logs.push(received(request));
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: partial.map(|(rejected, error_message)| ExportLogsPartialSuccess {
                rejected_log_records: rejected,
                error_message,
            }),
        }))
    }
}

pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
    }
}

pub async fn serve_on(
    listener: TcpListener,
    receiver: Receiver,
    tls: Option<ServerTlsConfig>,
) -> Running {
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).unwrap();
    }
    let router = builder
        .add_service(
            MetricsServiceServer::new(receiver.clone())
                .accept_compressed(CompressionEncoding::Gzip),
        )
        .add_service(LogsServiceServer::new(receiver).accept_compressed(CompressionEncoding::Gzip));
    let task = tokio::spawn(async move {
        // A failed handshake is the client's problem, not the server's: keep serving.
        let _ = router
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = rx.await;
            })
            .await;
    });
    Running {
        addr,
        stop: Some(tx),
        task,
    }
}

pub async fn serve(receiver: Receiver) -> Running {
    serve_on(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        receiver,
        None,
    )
    .await
}

/// A port of 127.0.0.1 bound but not listened on: connections to it are refused, and no other
/// test can be given it (a port closed and reopened later could be, and then another test's
/// server would answer).
pub struct Reserved {
    socket: tokio::net::TcpSocket,
    pub addr: SocketAddr,
}

fn reuseport_socket() -> tokio::net::TcpSocket {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_reuseport(true).unwrap();
    socket
}

pub fn reserve() -> Reserved {
    let socket = reuseport_socket();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    Reserved { socket, addr }
}

impl Reserved {
    /// Start listening: the endpoint comes up.
    pub fn listen(self) -> TcpListener {
        self.socket.listen(128).unwrap()
    }

    /// A second socket on the same port (SO_REUSEPORT), to replace a server without the port
    /// ever being free.
    pub fn another(&self) -> Reserved {
        let socket = reuseport_socket();
        socket.bind(self.addr).unwrap();
        Reserved {
            socket,
            addr: self.addr,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Clients

pub fn fast_retry() -> RetryConfig {
    RetryConfig {
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        max_backoff_when_filling: Duration::from_millis(5),
        multiplier: 2,
        jitter: true,
        max_attempts: None,
    }
}

pub fn endpoint(url: String) -> ChannelConfig {
    ChannelConfig {
        endpoint: url,
        ..Default::default()
    }
}

pub fn config(addr: SocketAddr) -> ClientConfig {
    ClientConfig {
        channel: endpoint(format!("http://{addr}")),
        retry: fast_retry(),
        ..Default::default()
    }
}

/// Polls until `done` holds; panics after a generous bound rather than hanging.
pub async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let polled = tokio::time::timeout(BOUND, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(polled.is_ok(), "timed out waiting for {what}");
}

pub fn snap(stats: &flowtel_otlp::ExportStats) -> ExportStatsSnapshot {
    stats.snapshot()
}

// ---------------------------------------------------------------------------------------------
// Metrics

fn s(v: &str) -> Arc<str> {
    Arc::from(v)
}

/// Window `n` with `points` points whose values encode (window, index).
pub fn window(n: u64, points: u64) -> WindowBatch {
    let start = 1_767_225_600_000_000_000 + n * 60_000_000_000;
    WindowBatch {
        rollup: s("bytes_by_flow"),
        start_time_unix_nano: start,
        time_unix_nano: start + 60_000_000_000,
        points: (0..points)
            .map(|i| Point {
                metric: s("network.io.by_flow"),
                unit: s("By"),
                kind: flowtel_series::PointKind::Total,
                attributes: vec![
                    (
                        s("network.local.address"),
                        AttrValue::Str(s(&format!("192.0.2.{i}"))),
                    ),
                    (s("network.transport"), AttrValue::Str(s("tcp"))),
                ],
                value: n * 1000 + i,
                start_time_unix_nano: start,
                time_unix_nano: start + 60_000_000_000,
            })
            .collect(),
    }
}

pub fn expected_values(windows: impl IntoIterator<Item = u64>, points: u64) -> Vec<i64> {
    windows
        .into_iter()
        .flat_map(|n| (0..points).map(move |i| (n * 1000 + i) as i64))
        .collect()
}

/// Values of every data point in the accepted requests, in order.
pub fn values(received: &[Received<ExportMetricsServiceRequest>]) -> Vec<i64> {
    let mut out = Vec::new();
    for r in received {
        for rm in &r.request.resource_metrics {
            for sm in &rm.scope_metrics {
                for m in &sm.metrics {
                    let Some(metric::Data::Gauge(g)) = &m.data else {
                        panic!("not a gauge: {m:?}")
                    };
                    for dp in &g.data_points {
                        let Some(number_data_point::Value::AsInt(v)) = dp.value else {
                            panic!("not an int: {dp:?}")
                        };
                        out.push(v);
                    }
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Logs

/// Batch `n` of `records` log records whose bodies are `"n/i"`.
pub fn records(n: u64, records: u64) -> Vec<LogRecord> {
    (0..records)
        .map(|i| LogRecord {
            time_unix_nano: 1_767_225_600_000_000_000 + n,
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!("{n}/{i}"))),
            }),
            ..Default::default()
        })
        .collect()
}

pub fn expected_bodies(batches: impl IntoIterator<Item = u64>, records: u64) -> Vec<String> {
    batches
        .into_iter()
        .flat_map(|n| (0..records).map(move |i| format!("{n}/{i}")))
        .collect()
}

/// Bodies of every log record in the accepted requests, in order.
pub fn bodies(received: &[Received<ExportLogsServiceRequest>]) -> Vec<String> {
    received
        .iter()
        .flat_map(|r| &r.request.resource_logs)
        .flat_map(|rl| &rl.scope_logs)
        .flat_map(|sl| &sl.log_records)
        .map(|r| match r.body.as_ref().and_then(|b| b.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.clone(),
            other => panic!("not a string body: {other:?}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// TLS

pub struct Pki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

/// A CA (its subject named `name`, so two PKIs never share an issuer name), a server
/// certificate for `localhost` and a client certificate, all signed by it.
pub fn pki(name: &str) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.distinguished_name.push(DnType::CommonName, name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(vec!["flowtel-client".to_owned()]).unwrap();
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();

    Pki {
        ca_pem: ca_cert.pem(),
        server_cert_pem: server_cert.pem(),
        server_key_pem: server_key.serialize_pem(),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

pub fn server_tls(pki: &Pki, require_client_cert: bool) -> ServerTlsConfig {
    let tls = ServerTlsConfig::new().identity(Identity::from_pem(
        &pki.server_cert_pem,
        &pki.server_key_pem,
    ));
    if require_client_cert {
        tls.client_ca_root(Certificate::from_pem(&pki.ca_pem))
    } else {
        tls
    }
}

pub async fn serve_tls(receiver: Receiver, pki: &Pki, require_client_cert: bool) -> Running {
    serve_on(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        receiver,
        Some(server_tls(pki, require_client_cert)),
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Log capture

/// Every log line of the current thread while the guard lives (tests run on tokio's
/// current-thread runtime, so the exporter's tasks log on that thread too).
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Lines containing every needle.
    pub fn matching(&self, needles: &[&str]) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .collect()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
