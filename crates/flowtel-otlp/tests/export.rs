//! The client and the export queue against a real in-process tonic `MetricsServiceServer` on
//! 127.0.0.1 standing in for Alloy. No assertion depends on wall-clock time: tests use tiny
//! backoffs and wait for counters, each wait bounded so a regression fails instead of hanging.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowtel_otlp::opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use flowtel_otlp::opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use flowtel_otlp::opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use flowtel_otlp::{
    ClientConfig, ConvertConfig, Converter, ExportStats, ExportStatsSnapshot, Exporter,
    ExporterConfig, FailureReason, OtlpClient, PushOutcome, RetryConfig, TlsConfig, point_count,
};
use flowtel_series::{AttrValue, Point, WindowBatch};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::codec::CompressionEncoding;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

const BOUND: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// The receiver

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Received {
    request: ExportMetricsServiceRequest,
    metadata: tonic::metadata::MetadataMap,
}

#[derive(Debug, Default)]
struct ReceiverState {
    /// Every call, answered OK or not.
    calls: u64,
    /// Requests answered OK, in arrival order.
    accepted: Vec<Received>,
    /// Answers to give, front first; OK when empty.
    script: VecDeque<Result<ExportMetricsServiceResponse, Status>>,
}

#[derive(Debug, Clone, Default)]
struct Receiver {
    state: Arc<Mutex<ReceiverState>>,
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let mut st = self.state.lock().unwrap();
        st.calls += 1;
        match st.script.pop_front() {
            Some(Err(status)) => Err(status),
            answer => {
                st.accepted.push(Received {
                    metadata: request.metadata().clone(),
                    request: request.into_inner(),
                });
                Ok(Response::new(
                    answer.and_then(Result::ok).unwrap_or_default(),
                ))
            }
        }
    }
}

impl Receiver {
    fn script(
        &self,
        answers: impl IntoIterator<Item = Result<ExportMetricsServiceResponse, Status>>,
    ) {
        self.state.lock().unwrap().script.extend(answers);
    }
    fn calls(&self) -> u64 {
        self.state.lock().unwrap().calls
    }
    fn accepted(&self) -> Vec<Received> {
        self.state.lock().unwrap().accepted.clone()
    }
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = self.task.await;
    }
}

async fn serve_on(
    listener: TcpListener,
    receiver: Receiver,
    tls: Option<ServerTlsConfig>,
) -> Running {
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let service = MetricsServiceServer::new(receiver).accept_compressed(CompressionEncoding::Gzip);
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).unwrap();
    }
    let router = builder.add_service(service);
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Running {
        addr,
        stop: Some(tx),
        task,
    }
}

async fn serve(receiver: Receiver) -> Running {
    serve_on(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        receiver,
        None,
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn s(v: &str) -> Arc<str> {
    Arc::from(v)
}

/// Window `n` with `points` points whose values encode (window, index).
fn window(n: u64, points: u64) -> WindowBatch {
    let start = 1_767_225_600_000_000_000 + n * 60_000_000_000;
    WindowBatch {
        rollup: s("bytes_by_flow"),
        start_time_unix_nano: start,
        time_unix_nano: start + 60_000_000_000,
        points: (0..points)
            .map(|i| Point {
                metric: s("network.io.by_flow"),
                unit: s("By"),
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

fn fast_retry() -> RetryConfig {
    RetryConfig {
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        multiplier: 2,
        jitter: true,
        max_attempts: None,
    }
}

fn config(addr: SocketAddr) -> ClientConfig {
    ClientConfig {
        endpoint: format!("http://{addr}"),
        retry: fast_retry(),
        ..Default::default()
    }
}

fn make_client(config: &ClientConfig) -> (OtlpClient, Arc<ExportStats>) {
    let stats = Arc::new(ExportStats::default());
    (OtlpClient::new(config, stats.clone()).unwrap(), stats)
}

fn request(points: u64) -> ExportMetricsServiceRequest {
    Converter::new(ConvertConfig::default())
        .convert(&window(0, points))
        .pop()
        .unwrap()
}

/// Values of every data point in the accepted requests, in order.
fn values(received: &[Received]) -> Vec<i64> {
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

fn expected_values(windows: impl IntoIterator<Item = u64>, points: u64) -> Vec<i64> {
    windows
        .into_iter()
        .flat_map(|n| (0..points).map(move |i| (n * 1000 + i) as i64))
        .collect()
}

/// Polls until `done` holds; panics after a generous bound rather than hanging.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let polled = tokio::time::timeout(BOUND, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(polled.is_ok(), "timed out waiting for {what}");
}

fn snap(stats: &ExportStats) -> ExportStatsSnapshot {
    stats.snapshot()
}

// ---------------------------------------------------------------------------------------------
// Client

#[tokio::test]
async fn delivers_exact_points_gzip_and_headers() {
    let receiver = Receiver::default();
    let server = serve(receiver.clone()).await;
    let mut cfg = config(server.addr);
    cfg.headers = vec![
        ("Authorization".into(), "Bearer s3cret".into()),
        ("x-scope-orgid".into(), "tenant-7".into()),
    ];
    let (client, stats) = make_client(&cfg);
    let sent = request(5);
    let ok = client.export(sent.clone()).await.unwrap();
    assert_eq!((ok.attempts, ok.points, ok.rejected_points), (1, 5, 0));

    let got = receiver.accepted();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].request, sent,
        "the server must receive exactly what was built"
    );
    let md = &got[0].metadata;
    assert_eq!(md.get("grpc-encoding").unwrap(), "gzip");
    assert_eq!(md.get("authorization").unwrap(), "Bearer s3cret");
    assert_eq!(md.get("x-scope-orgid").unwrap(), "tenant-7");
    assert!(md.get("grpc-timeout").is_some());

    let s = snap(&stats);
    assert_eq!(
        (s.requests_ok, s.points_sent, s.failed_total(), s.retries),
        (1, 5, 0, 0)
    );
    server.stop().await;
}

#[tokio::test]
async fn gzip_off_sends_identity() {
    let receiver = Receiver::default();
    let server = serve(receiver.clone()).await;
    let mut cfg = config(server.addr);
    cfg.gzip = false;
    let (client, _) = make_client(&cfg);
    client.export(request(1)).await.unwrap();
    let got = receiver.accepted();
    assert!(got[0].metadata.get("grpc-encoding").is_none());
    server.stop().await;
}

#[tokio::test]
async fn retries_unavailable_then_succeeds() {
    let receiver = Receiver::default();
    receiver.script((0..3).map(|_| Err(Status::unavailable("starting up"))));
    let server = serve(receiver.clone()).await;
    let (client, stats) = make_client(&config(server.addr));
    let ok = client.export(request(2)).await.unwrap();
    assert_eq!(ok.attempts, 4);
    assert_eq!(receiver.calls(), 4);
    assert_eq!(receiver.accepted().len(), 1);
    let s = snap(&stats);
    assert_eq!(s.failed(FailureReason::Unavailable), 3);
    assert_eq!(
        (
            s.retries,
            s.retries_server_delay,
            s.requests_ok,
            s.points_sent
        ),
        (3, 0, 1, 2)
    );
    server.stop().await;
}

#[tokio::test]
async fn every_spec_retryable_code_is_retried() {
    let receiver = Receiver::default();
    let codes = [
        Code::Cancelled,
        Code::DeadlineExceeded,
        Code::Aborted,
        Code::OutOfRange,
        Code::DataLoss,
    ];
    receiver.script(codes.iter().map(|c| Err(Status::new(*c, "transient"))));
    let server = serve(receiver.clone()).await;
    let (client, stats) = make_client(&config(server.addr));
    let ok = client.export(request(1)).await.unwrap();
    assert_eq!(ok.attempts, 6);
    let s = snap(&stats);
    for reason in [
        FailureReason::Cancelled,
        FailureReason::DeadlineExceeded,
        FailureReason::Aborted,
        FailureReason::OutOfRange,
        FailureReason::DataLoss,
    ] {
        assert_eq!(s.failed(reason), 1, "{reason:?}");
    }
    assert_eq!(s.retries, 5);
    server.stop().await;
}

#[tokio::test]
async fn resource_exhausted_with_retry_info_honours_the_delay() {
    let receiver = Receiver::default();
    let throttled = || {
        Err(Status::with_error_details(
            Code::ResourceExhausted,
            "slow down",
            ErrorDetails::with_retry_info(Some(Duration::from_millis(1))),
        ))
    };
    receiver.script([throttled(), throttled()]);
    let server = serve(receiver.clone()).await;
    let mut cfg = config(server.addr);
    // A backoff far longer than the test bound: only the server's delay lets this finish.
    cfg.retry.initial_backoff = Duration::from_secs(3600);
    cfg.retry.max_backoff = Duration::from_secs(3600);
    let (client, stats) = make_client(&cfg);
    let ok = tokio::time::timeout(BOUND, client.export(request(1)))
        .await
        .expect("the RetryInfo delay must replace the backoff")
        .unwrap();
    assert_eq!(ok.attempts, 3);
    let s = snap(&stats);
    assert_eq!(s.failed(FailureReason::ResourceExhausted), 2);
    assert_eq!((s.retries, s.retries_server_delay), (2, 2));
    server.stop().await;
}

#[tokio::test]
async fn resource_exhausted_without_retry_info_fails_fast() {
    let receiver = Receiver::default();
    receiver.script([Err(Status::resource_exhausted("quota"))]);
    let server = serve(receiver.clone()).await;
    let (client, stats) = make_client(&config(server.addr));
    let err = client.export(request(4)).await.unwrap_err();
    assert_eq!(
        (err.reason, err.attempts, err.retryable),
        (FailureReason::ResourceExhausted, 1, false)
    );
    assert_eq!(receiver.calls(), 1);
    let s = snap(&stats);
    assert_eq!((s.retries, s.points_failed, s.requests_ok), (0, 4, 0));
    server.stop().await;
}

#[tokio::test]
async fn non_retryable_codes_fail_fast() {
    for code in [
        Code::InvalidArgument,
        Code::Unauthenticated,
        Code::PermissionDenied,
        Code::Unimplemented,
        Code::Internal,
    ] {
        let receiver = Receiver::default();
        receiver.script([Err(Status::new(code, "no"))]);
        let server = serve(receiver.clone()).await;
        let (client, stats) = make_client(&config(server.addr));
        let err = client.export(request(1)).await.unwrap_err();
        assert_eq!(err.attempts, 1, "{code:?}");
        assert_eq!(err.reason, FailureReason::from_code(code));
        assert_eq!(receiver.calls(), 1, "{code:?}");
        assert_eq!(snap(&stats).failed(FailureReason::from_code(code)), 1);
        server.stop().await;
    }
}

#[tokio::test]
async fn max_attempts_bounds_retries() {
    let receiver = Receiver::default();
    receiver.script((0..10).map(|_| Err(Status::unavailable("down"))));
    let server = serve(receiver.clone()).await;
    let mut cfg = config(server.addr);
    cfg.retry.max_attempts = Some(3);
    let (client, stats) = make_client(&cfg);
    let err = client.export(request(2)).await.unwrap_err();
    assert_eq!((err.attempts, err.retryable), (3, true));
    assert_eq!(receiver.calls(), 3);
    let s = snap(&stats);
    assert_eq!((s.retries, s.points_failed), (2, 2));
    server.stop().await;
}

#[tokio::test]
async fn partial_success_is_counted_not_retried() {
    let receiver = Receiver::default();
    receiver.script([Ok(ExportMetricsServiceResponse {
        partial_success: Some(ExportMetricsPartialSuccess {
            rejected_data_points: 2,
            error_message: "2 points out of order".into(),
        }),
    })]);
    let server = serve(receiver.clone()).await;
    let (client, stats) = make_client(&config(server.addr));
    let ok = client.export(request(5)).await.unwrap();
    assert_eq!((ok.attempts, ok.rejected_points), (1, 2));
    assert_eq!(ok.error_message, "2 points out of order");
    let s = snap(&stats);
    assert_eq!(
        (
            s.requests_ok,
            s.points_sent,
            s.points_rejected,
            s.partial_success_responses,
            s.retries
        ),
        (1, 5, 2, 1, 0)
    );
    server.stop().await;
}

#[tokio::test]
async fn connection_refused_is_unavailable_and_retried() {
    // A port with nothing listening.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let mut cfg = config(addr);
    cfg.retry.max_attempts = Some(2);
    let (client, stats) = make_client(&cfg);
    let err = client.export(request(1)).await.unwrap_err();
    assert_eq!((err.reason, err.attempts), (FailureReason::Unavailable, 2));
    assert_eq!(snap(&stats).failed(FailureReason::Unavailable), 2);
}

// ---------------------------------------------------------------------------------------------
// Queue

#[tokio::test]
async fn queue_splits_windows_at_max_points_per_request() {
    let receiver = Receiver::default();
    let server = serve(receiver.clone()).await;
    let exporter = Exporter::start(&ExporterConfig {
        client: config(server.addr),
        convert: ConvertConfig {
            max_points_per_request: 4,
            ..Default::default()
        },
        queue_capacity: 8,
    })
    .unwrap();
    let stats = exporter.stats().clone();
    let queue = exporter.queue();
    assert_eq!(queue.try_push(window(0, 10)), PushOutcome::Queued);
    assert_eq!(queue.try_push(window(1, 3)), PushOutcome::Queued);
    let report = exporter.shutdown(BOUND).await;
    assert!(report.flushed);
    let got = receiver.accepted();
    let sizes: Vec<u64> = got.iter().map(|r| point_count(&r.request)).collect();
    assert_eq!(sizes, vec![4, 4, 2, 3]);
    assert_eq!(
        values(&got),
        expected_values([0], 10)
            .into_iter()
            .chain(expected_values([1], 3))
            .collect::<Vec<_>>()
    );
    let s = snap(&stats);
    assert_eq!(
        (
            s.requests_ok,
            s.points_sent,
            s.batches_queued,
            s.queue_depth
        ),
        (4, 13, 2, 0)
    );
    server.stop().await;
}

#[tokio::test]
async fn endpoint_down_at_start_then_up_delivers_queued_windows_in_order() {
    // Reserve a port, then close it so the first attempts are refused.
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);

    let (client, stats) = make_client(&config(addr));
    let exporter = Exporter::spawn(client, Converter::new(ConvertConfig::default()), 16);
    let queue = exporter.queue();
    for n in 0..5 {
        assert_eq!(queue.try_push(window(n, 3)), PushOutcome::Queued);
    }
    wait_for("retries against the closed port", || {
        snap(&stats).retries >= 3
    })
    .await;
    assert_eq!(snap(&stats).requests_ok, 0);

    let receiver = Receiver::default();
    let server = serve_on(
        TcpListener::bind(addr).await.unwrap(),
        receiver.clone(),
        None,
    )
    .await;
    wait_for("all windows delivered", || snap(&stats).points_sent == 15).await;
    let got = receiver.accepted();
    assert_eq!(
        values(&got),
        expected_values(0..5, 3),
        "windows must arrive once, in order"
    );
    let s = snap(&stats);
    assert!(s.failed(FailureReason::Unavailable) >= 3);
    assert_eq!(
        (s.batches_dropped_queue_full, s.points_failed, s.queue_depth),
        (0, 0, 0)
    );
    assert!(exporter.shutdown(BOUND).await.flushed);
    server.stop().await;
}

#[tokio::test]
async fn full_queue_drops_the_oldest_and_counts_it() {
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);

    let (client, stats) = make_client(&config(addr));
    let exporter = Exporter::spawn(client, Converter::new(ConvertConfig::default()), 3);
    let queue = exporter.queue();
    // Window 0 goes in flight (the sender retries it while the endpoint is down).
    assert_eq!(queue.try_push(window(0, 1)), PushOutcome::Queued);
    wait_for("window 0 in flight", || {
        snap(&stats).retries >= 1 && queue.is_empty()
    })
    .await;
    // Windows 1..=3 fill the queue; 4 and 5 push out the oldest queued ones (1 and 2).
    for n in 1..=3 {
        assert_eq!(queue.try_push(window(n, 1)), PushOutcome::Queued);
    }
    assert_eq!(
        queue.try_push(window(4, 1)),
        PushOutcome::QueuedDroppedOldest
    );
    assert_eq!(
        queue.try_push(window(5, 1)),
        PushOutcome::QueuedDroppedOldest
    );
    let s = snap(&stats);
    assert_eq!(
        (
            s.batches_dropped_queue_full,
            s.queue_depth,
            s.batches_queued
        ),
        (2, 3, 6)
    );

    let receiver = Receiver::default();
    let server = serve_on(
        TcpListener::bind(addr).await.unwrap(),
        receiver.clone(),
        None,
    )
    .await;
    let report = exporter.shutdown(BOUND).await;
    assert_eq!(report.batches_dropped, 0);
    assert!(report.flushed);
    assert_eq!(
        values(&receiver.accepted()),
        expected_values([0, 3, 4, 5], 1)
    );
    server.stop().await;
}

#[tokio::test]
async fn shutdown_deadline_drops_and_counts_what_is_left() {
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);

    let (client, stats) = make_client(&config(addr));
    let exporter = Exporter::spawn(client, Converter::new(ConvertConfig::default()), 8);
    let queue = exporter.queue();
    for n in 0..3 {
        queue.try_push(window(n, 1));
    }
    wait_for("window 0 in flight", || snap(&stats).retries >= 1).await;
    let report = exporter.shutdown(Duration::from_millis(20)).await;
    assert_eq!((report.flushed, report.batches_dropped), (false, 3));
    assert_eq!(queue.try_push(window(9, 1)), PushOutcome::Closed);
    let s = snap(&stats);
    assert_eq!(
        (s.batches_dropped_shutdown, s.queue_depth, s.requests_ok),
        (4, 0, 0)
    );
}

#[tokio::test]
async fn shutdown_cuts_a_long_backoff_short_to_flush() {
    let probe = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);

    let mut cfg = config(addr);
    // Far longer than the test bound: only the shutdown's wake-up lets the window go.
    cfg.retry.initial_backoff = Duration::from_secs(3600);
    cfg.retry.max_backoff = Duration::from_secs(3600);
    let (client, stats) = make_client(&cfg);
    let exporter = Exporter::spawn(client, Converter::new(ConvertConfig::default()), 8);
    exporter.queue().try_push(window(0, 2));
    wait_for("a first failed attempt", || {
        snap(&stats).failed_total() >= 1
    })
    .await;

    let receiver = Receiver::default();
    let server = serve_on(
        TcpListener::bind(addr).await.unwrap(),
        receiver.clone(),
        None,
    )
    .await;
    let report = exporter.shutdown(BOUND).await;
    assert_eq!((report.flushed, report.batches_dropped), (true, 0));
    assert_eq!(values(&receiver.accepted()), expected_values([0], 2));
    assert_eq!(snap(&stats).retries, 1);
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// TLS

struct Pki {
    ca_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
        KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
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

async fn serve_tls(receiver: Receiver, pki: &Pki, require_client_cert: bool) -> Running {
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(
        &pki.server_cert_pem,
        &pki.server_key_pem,
    ));
    if require_client_cert {
        tls = tls.client_ca_root(Certificate::from_pem(&pki.ca_pem));
    }
    serve_on(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        receiver,
        Some(tls),
    )
    .await
}

fn tls_config(server: &Running, tls: TlsConfig) -> ClientConfig {
    ClientConfig {
        endpoint: format!("https://localhost:{}", server.addr.port()),
        tls,
        retry: RetryConfig {
            max_attempts: Some(2),
            ..fast_retry()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn tls_with_custom_ca() {
    let pki = pki();
    let receiver = Receiver::default();
    let server = serve_tls(receiver.clone(), &pki, false).await;

    let trusted = TlsConfig {
        ca_pem: Some(pki.ca_pem.clone().into_bytes()),
        ..Default::default()
    };
    let (client, _) = make_client(&tls_config(&server, trusted));
    client.export(request(3)).await.unwrap();
    assert_eq!(values(&receiver.accepted()), expected_values([0], 3));

    // A CA the server's certificate does not chain to: the handshake fails, nothing arrives.
    let other = pki_ca_only();
    let untrusted = TlsConfig {
        ca_pem: Some(other.into_bytes()),
        ..Default::default()
    };
    let (client, stats) = make_client(&tls_config(&server, untrusted));
    let err = client.export(request(1)).await.unwrap_err();
    assert_eq!(err.reason, FailureReason::Unavailable);
    assert_eq!(snap(&stats).requests_ok, 0);
    assert_eq!(receiver.accepted().len(), 1);
    server.stop().await;
}

fn pki_ca_only() -> String {
    pki().ca_pem
}

#[tokio::test]
async fn mtls_requires_and_accepts_the_client_certificate() {
    let pki = pki();
    let receiver = Receiver::default();
    let server = serve_tls(receiver.clone(), &pki, true).await;

    let with_identity = TlsConfig {
        ca_pem: Some(pki.ca_pem.clone().into_bytes()),
        client_cert_pem: Some(pki.client_cert_pem.clone().into_bytes()),
        client_key_pem: Some(pki.client_key_pem.clone().into_bytes()),
        domain_name: Some("localhost".into()),
    };
    let (client, _) = make_client(&tls_config(&server, with_identity));
    client.export(request(2)).await.unwrap();
    assert_eq!(values(&receiver.accepted()), expected_values([0], 2));

    let without_identity = TlsConfig {
        ca_pem: Some(pki.ca_pem.clone().into_bytes()),
        ..Default::default()
    };
    let (client, stats) = make_client(&tls_config(&server, without_identity));
    assert!(client.export(request(1)).await.is_err());
    assert_eq!(snap(&stats).requests_ok, 0);
    assert_eq!(
        receiver.accepted().len(),
        1,
        "no request may pass without a client certificate"
    );
    server.stop().await;
}
