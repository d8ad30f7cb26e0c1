//! The metrics client and the export queue against a real in-process tonic
//! `MetricsServiceServer` on 127.0.0.1 standing in for Alloy.

mod support;

use std::time::Duration;

use flowtel_otlp::{
    ConvertConfig, Converter, DropReason, Exporter, ExporterConfig, FailureReason, MetricsClient,
    PushOutcome, QueueConfig, point_count,
};
use support::*;
use tokio::net::TcpListener;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

fn make_client(
    config: &flowtel_otlp::ClientConfig,
) -> (MetricsClient, std::sync::Arc<flowtel_otlp::ExportStats>) {
    let stats = std::sync::Arc::new(flowtel_otlp::ExportStats::default());
    (MetricsClient::new(config, stats.clone()).unwrap(), stats)
}

fn request(
    points: u64,
) -> flowtel_otlp::opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest {
    Converter::new(ConvertConfig::default())
        .convert(&window(0, points))
        .pop()
        .unwrap()
}

fn queue(capacity: usize) -> QueueConfig {
    QueueConfig {
        capacity,
        ..Default::default()
    }
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
    assert_eq!((ok.attempts, ok.items, ok.rejected_items), (1, 5, 0));

    let got = receiver.metrics();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].request, sent,
        "the server must receive exactly what was built"
    );
    let md = &got[0].metadata;
    assert_eq!(md.get("grpc-encoding").unwrap(), "gzip");
    assert_eq!(md.get("authorization").unwrap(), "Bearer s3cret");
    assert_eq!(md.get("x-scope-orgid").unwrap(), "tenant-7");
    assert_eq!(
        md.get("grpc-timeout").unwrap(),
        "10000000u",
        "the per-attempt timeout goes to the server"
    );

    let s = snap(&stats);
    assert_eq!(
        (s.requests_ok, s.items_sent, s.failed_total(), s.retries),
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
    let got = receiver.metrics();
    assert!(got[0].metadata.get("grpc-encoding").is_none());
    server.stop().await;
}

#[tokio::test]
async fn retries_unavailable_then_succeeds() {
    let receiver = Receiver::default();
    receiver.script((0..3).map(|_| Answer::Fail(Status::unavailable("starting up"))));
    let server = serve(receiver.clone()).await;
    let (client, stats) = make_client(&config(server.addr));
    let ok = client.export(request(2)).await.unwrap();
    assert_eq!(ok.attempts, 4);
    assert_eq!(receiver.calls(), 4);
    assert_eq!(receiver.metrics().len(), 1);
    let s = snap(&stats);
    assert_eq!(s.failed(FailureReason::Unavailable), 3);
    assert_eq!(
        (
            s.retries,
            s.retries_server_delay,
            s.requests_ok,
            s.items_sent
        ),
        (3, 0, 1, 2)
    );
    assert_eq!(s.failing_since_unix_ms, None, "the success ends the outage");
    assert_eq!(s.last_failure, Some(FailureReason::Unavailable));
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
    receiver.script(
        codes
            .iter()
            .map(|c| Answer::Fail(Status::new(*c, "transient"))),
    );
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
        Answer::Fail(Status::with_error_details(
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
    receiver.script([Answer::Fail(Status::resource_exhausted("quota"))]);
    let server = serve(receiver.clone()).await;
    let (client, stats) = make_client(&config(server.addr));
    let err = client.export(request(4)).await.unwrap_err();
    assert_eq!(
        (err.reason, err.attempts, err.retryable),
        (FailureReason::ResourceExhausted, 1, false)
    );
    assert_eq!(err.message, "quota");
    assert_eq!(receiver.calls(), 1);
    let s = snap(&stats);
    assert_eq!((s.retries, s.items_failed, s.requests_ok), (0, 4, 0));
    assert_eq!(s.failing_since_unix_ms, None, "a refusal is not an outage");
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
        Code::Unknown,
    ] {
        let receiver = Receiver::default();
        receiver.script([Answer::Fail(Status::new(code, "no"))]);
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
    receiver.script((0..10).map(|_| Answer::Fail(Status::unavailable("down"))));
    let server = serve(receiver.clone()).await;
    let mut cfg = config(server.addr);
    cfg.retry.max_attempts = Some(3);
    let (client, stats) = make_client(&cfg);
    let err = client.export(request(2)).await.unwrap_err();
    assert_eq!((err.attempts, err.retryable), (3, true));
    assert_eq!(receiver.calls(), 3);
    let s = snap(&stats);
    assert_eq!((s.retries, s.items_failed), (2, 2));
    assert!(s.failing_since_unix_ms.is_some(), "still failing");
    server.stop().await;
}

#[tokio::test]
async fn partial_success_is_counted_not_retried() {
    let receiver = Receiver::default();
    receiver.script([Answer::Partial {
        rejected: 2,
        message: "2 points out of order".into(),
    }]);
    let server = serve(receiver.clone()).await;
    let (client, stats) = make_client(&config(server.addr));
    let ok = client.export(request(5)).await.unwrap();
    assert_eq!((ok.attempts, ok.rejected_items), (1, 2));
    assert_eq!(ok.error_message, "2 points out of order");
    let s = snap(&stats);
    assert_eq!(
        (
            s.requests_ok,
            s.items_sent,
            s.items_rejected,
            s.partial_success_responses,
            s.retries
        ),
        (1, 5, 2, 1, 0)
    );
    server.stop().await;
}

// ---------------------------------------------------------------------------------------------
// One reason per cause

#[tokio::test]
async fn connection_refused_is_connect_and_retried() {
    let port = reserve();
    let addr = port.addr;
    let mut cfg = config(addr);
    cfg.retry.max_attempts = Some(2);
    let (client, stats) = make_client(&cfg);
    let err = client.export(request(1)).await.unwrap_err();
    assert_eq!(
        (err.reason, err.attempts, err.retryable),
        (FailureReason::Connect, 2, true)
    );
    assert!(
        err.message.starts_with("connection failed:") && err.message.contains("refused"),
        "{}",
        err.message
    );
    let s = snap(&stats);
    assert_eq!(s.failed(FailureReason::Connect), 2);
    assert_eq!(s.failed(FailureReason::Unavailable), 0);
}

#[tokio::test]
async fn our_timeout_the_servers_deadline_and_a_cancel_are_three_reasons() {
    let receiver = Receiver::default();
    receiver.script([
        // Longer than our 200 ms timeout: our timer fires (tonic would call it CANCELLED).
        Answer::Stall(Duration::from_secs(3)),
        Answer::Fail(Status::deadline_exceeded("server gave up")),
        Answer::Fail(Status::cancelled("server cancelled")),
    ]);
    let server = serve(receiver.clone()).await;
    let mut cfg = config(server.addr);
    cfg.timeout = Duration::from_millis(200);
    cfg.retry.max_attempts = Some(1);
    let (client, stats) = make_client(&cfg);
    let mut reasons = Vec::new();
    for _ in 0..3 {
        let err = client.export(request(1)).await.unwrap_err();
        reasons.push((err.reason, err.message, err.retryable));
    }
    assert_eq!(
        reasons,
        vec![
            (
                FailureReason::Timeout,
                "no answer within 200ms".to_owned(),
                true
            ),
            (
                FailureReason::DeadlineExceeded,
                "server gave up".to_owned(),
                true
            ),
            (
                FailureReason::Cancelled,
                "server cancelled".to_owned(),
                true
            ),
        ]
    );
    let s = snap(&stats);
    assert_eq!(
        (
            s.failed(FailureReason::Timeout),
            s.failed(FailureReason::DeadlineExceeded),
            s.failed(FailureReason::Cancelled)
        ),
        (1, 1, 1)
    );
    server.stop().await;
}

#[tokio::test]
async fn a_server_that_is_not_grpc_is_a_transport_failure() {
    // Accepts TCP, reads the HTTP/2 preface, answers garbage and closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 64];
            let _ = sock.read(&mut buf).await;
            let _ = sock.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let mut cfg = config(addr);
    cfg.retry.max_attempts = Some(2);
    let (client, stats) = make_client(&cfg);
    let err = client.export(request(1)).await.unwrap_err();
    assert_eq!(
        (err.reason, err.retryable),
        (FailureReason::Transport, true)
    );
    assert!(
        err.message.starts_with("connection lost:"),
        "{}",
        err.message
    );
    assert_eq!(snap(&stats).failed(FailureReason::Transport), 2);
    task.abort();
}

/// An HTTP/2 server (h2, no gRPC) that resets every stream with the next reason of `resets`.
async fn resetting_server(
    resets: Vec<h2::Reason>,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut resets = resets.into_iter();
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let Ok(mut conn) = h2::server::handshake(sock).await else {
                continue;
            };
            while let Some(Ok((_request, mut respond))) = conn.accept().await {
                respond.send_reset(resets.next().unwrap_or(h2::Reason::CANCEL));
            }
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_call_the_server_resets_takes_the_grpc_code_of_the_reset() {
    let (addr, task) = resetting_server(vec![
        h2::Reason::REFUSED_STREAM,
        h2::Reason::CANCEL,
        h2::Reason::ENHANCE_YOUR_CALM,
    ])
    .await;
    let mut cfg = config(addr);
    cfg.retry.max_attempts = Some(3);
    let (client, stats) = make_client(&cfg);
    let err = client.export(request(1)).await.unwrap_err();
    // REFUSED_STREAM and CANCEL are retried; ENHANCE_YOUR_CALM (RESOURCE_EXHAUSTED without
    // RetryInfo) is not.
    assert_eq!(
        (err.reason, err.retryable, err.attempts),
        (FailureReason::ResourceExhausted, false, 3)
    );
    assert!(
        err.message.starts_with("the server reset the call"),
        "{}",
        err.message
    );
    let s = snap(&stats);
    assert_eq!(
        (
            s.failed(FailureReason::Unavailable),
            s.failed(FailureReason::Cancelled),
            s.failed(FailureReason::ResourceExhausted),
            s.failed(FailureReason::Transport)
        ),
        (1, 1, 1, 0)
    );
    task.abort();
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
        queue: queue(8),
    })
    .unwrap();
    let stats = exporter.stats().clone();
    let queue = exporter.queue();
    assert_eq!(queue.try_push(window(0, 10)), PushOutcome::Queued);
    assert_eq!(queue.try_push(window(1, 3)), PushOutcome::Queued);
    let report = exporter.shutdown(BOUND).await;
    assert!(report.flushed);
    let got = receiver.metrics();
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
        (s.requests_ok, s.items_sent, s.batches_queued, s.queue_depth),
        (4, 13, 2, 0)
    );
    server.stop().await;
}

#[tokio::test]
async fn endpoint_down_at_start_then_up_delivers_queued_windows_in_order() {
    let port = reserve();
    let addr = port.addr;
    let (client, stats) = make_client(&config(addr));
    let exporter = Exporter::spawn(client, Converter::new(ConvertConfig::default()), &queue(16));
    let queue = exporter.queue();
    for n in 0..5 {
        assert_eq!(queue.try_push(window(n, 3)), PushOutcome::Queued);
    }
    wait_for("retries against the closed port", || {
        snap(&stats).retries >= 3
    })
    .await;
    assert_eq!(snap(&stats).requests_ok, 0);
    assert!(stats.failing());

    let receiver = Receiver::default();
    let server = serve_on(port.listen(), receiver.clone(), None).await;
    wait_for("all windows delivered", || snap(&stats).items_sent == 15).await;
    assert_eq!(
        values(&receiver.metrics()),
        expected_values(0..5, 3),
        "windows must arrive once, in order"
    );
    let s = snap(&stats);
    assert!(s.failed(FailureReason::Connect) >= 3);
    assert_eq!(
        (
            s.batches_dropped(DropReason::QueueFull),
            s.items_failed,
            s.queue_depth,
            s.failing_since_unix_ms
        ),
        (0, 0, 0, None)
    );
    assert!(exporter.shutdown(BOUND).await.flushed);
    server.stop().await;
}

#[tokio::test]
async fn full_queue_drops_the_oldest_and_counts_it() {
    let port = reserve();
    let addr = port.addr;
    let (client, stats) = make_client(&config(addr));
    let exporter = Exporter::spawn(client, Converter::new(ConvertConfig::default()), &queue(3));
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
        queue.try_push(window(4, 2)),
        PushOutcome::QueuedDroppedOldest
    );
    assert_eq!(
        queue.try_push(window(5, 1)),
        PushOutcome::QueuedDroppedOldest
    );
    let s = snap(&stats);
    assert_eq!(
        (
            s.batches_dropped(DropReason::QueueFull),
            s.items_dropped(DropReason::QueueFull),
            s.queue_depth,
            s.batches_queued
        ),
        (2, 2, 3, 6)
    );

    let receiver = Receiver::default();
    let server = serve_on(port.listen(), receiver.clone(), None).await;
    let report = exporter.shutdown(BOUND).await;
    assert_eq!(report.batches_dropped, 0);
    assert!(report.flushed);
    let mut expected = expected_values([0, 3], 1);
    expected.extend(expected_values([4], 2));
    expected.extend(expected_values([5], 1));
    assert_eq!(values(&receiver.metrics()), expected);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_deadline_drops_and_counts_what_is_left() {
    let port = reserve();
    let addr = port.addr;
    let (client, stats) = make_client(&config(addr));
    let exporter = Exporter::spawn(client, Converter::new(ConvertConfig::default()), &queue(8));
    let queue = exporter.queue();
    for n in 0..3 {
        queue.try_push(window(n, n + 1));
    }
    wait_for("window 0 in flight", || snap(&stats).retries >= 1).await;
    let report = exporter.shutdown(Duration::from_millis(20)).await;
    assert_eq!((report.flushed, report.batches_dropped), (false, 3));
    assert_eq!(queue.try_push(window(9, 4)), PushOutcome::Closed);
    let s = snap(&stats);
    assert_eq!(
        (
            s.batches_dropped(DropReason::Shutdown),
            s.items_dropped(DropReason::Shutdown),
            s.queue_depth,
            s.requests_ok
        ),
        (4, 1 + 2 + 3 + 4, 0, 0)
    );
}

#[tokio::test]
async fn shutdown_cuts_a_long_backoff_short_to_flush() {
    let port = reserve();
    let addr = port.addr;
    let mut cfg = config(addr);
    // Far longer than the test bound: only the shutdown's wake-up lets the window go.
    cfg.retry.initial_backoff = Duration::from_secs(3600);
    cfg.retry.max_backoff = Duration::from_secs(3600);
    let (client, stats) = make_client(&cfg);
    let exporter = Exporter::spawn(client, Converter::new(ConvertConfig::default()), &queue(8));
    exporter.queue().try_push(window(0, 2));
    wait_for("a first failed attempt", || {
        snap(&stats).failed_total() >= 1
    })
    .await;

    let receiver = Receiver::default();
    let server = serve_on(port.listen(), receiver.clone(), None).await;
    let report = exporter.shutdown(BOUND).await;
    assert_eq!((report.flushed, report.batches_dropped), (true, 0));
    assert_eq!(values(&receiver.metrics()), expected_values([0], 2));
    assert_eq!(snap(&stats).retries, 1);
    server.stop().await;
}

#[tokio::test]
async fn a_queue_more_than_half_full_probes_the_endpoint_more_often() {
    let port = reserve();
    let addr = port.addr;
    let mut cfg = config(addr);
    // Our backoff alone would wait an hour before the second attempt; the cap that applies
    // while the queue is more than half full is 10 ms.
    cfg.retry.initial_backoff = Duration::from_secs(3600);
    cfg.retry.max_backoff = Duration::from_secs(3600);
    cfg.retry.max_backoff_when_filling = Duration::from_millis(10);
    let (client, stats) = make_client(&cfg);
    let exporter = Exporter::spawn(client, Converter::new(ConvertConfig::default()), &queue(4));
    let queue = exporter.queue();
    queue.try_push(window(0, 1));
    wait_for("window 0 failing in flight", || {
        snap(&stats).failed_total() == 1 && queue.is_empty()
    })
    .await;
    // Half full (2 of 4) is not more than half: still waiting out the hour.
    queue.try_push(window(1, 1));
    queue.try_push(window(2, 1));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(snap(&stats).failed_total(), 1, "no probe at half full");
    // Three of four: the running wait is cut short, and probes go every ≤ 10 ms.
    queue.try_push(window(3, 1));
    wait_for("probes while the queue fills", || {
        snap(&stats).failed_total() >= 5
    })
    .await;

    let receiver = Receiver::default();
    let server = serve_on(port.listen(), receiver.clone(), None).await;
    wait_for("the endpoint found back", || snap(&stats).items_sent == 4).await;
    assert_eq!(values(&receiver.metrics()), expected_values(0..4, 1));
    assert!(exporter.shutdown(BOUND).await.flushed);
    server.stop().await;
}

/// Converts the first window, then panics: a bug in the sender task.
struct PanicsOnSecond(Converter, u32);

impl flowtel_otlp::Encode for PanicsOnSecond {
    type Signal = flowtel_otlp::Metrics;
    type Batch = flowtel_series::WindowBatch;

    fn encode(
        &mut self,
        batch: flowtel_series::WindowBatch,
    ) -> Vec<<flowtel_otlp::Metrics as flowtel_otlp::Signal>::Request> {
        self.1 += 1;
        assert!(self.1 < 2, "the encoder's bug");
        self.0.convert(&batch)
    }
}

#[tokio::test]
async fn a_sender_task_that_panics_is_reported_and_its_queue_counted_at_shutdown() {
    let receiver = Receiver::default();
    let port = reserve();
    let addr = port.addr;
    let server = serve_on(port.listen(), receiver.clone(), None).await;
    let (client, stats) = make_client(&config(addr));
    let encoder = PanicsOnSecond(Converter::new(ConvertConfig::default()), 0);
    let exporter = Exporter::spawn(client, encoder, &queue(8));
    let queue = exporter.queue();
    queue.try_push(window(0, 1));
    wait_for("window 0 delivered", || snap(&stats).requests_ok >= 1).await;
    assert_eq!(queue.panicked(), None);
    for n in 1..4 {
        queue.try_push(window(n, n + 1));
    }
    wait_for("the sender's panic", || queue.panicked().is_some()).await;
    assert_eq!(queue.panicked().as_deref(), Some("the encoder's bug"));
    // Window 1 was taken and lost in the panic, windows 2 and 3 wait: all three counted.
    let report = exporter.shutdown(BOUND).await;
    assert_eq!((report.flushed, report.batches_dropped), (false, 3));
    let s = snap(&stats);
    assert_eq!(
        (s.batches_dropped(DropReason::Shutdown), s.queue_depth),
        (3, 0)
    );
    assert_eq!(values(&receiver.metrics()), expected_values([0], 1));
    server.stop().await;
}
