//! The logs client and queue against a real in-process tonic `LogsServiceServer`: the same
//! channel, gzip, headers, retries, RetryInfo and partial-success handling as metrics, and a
//! bounded queue a plain (non-async) thread pushes into.

mod support;

use std::sync::Arc;
use std::time::Duration;

use flowtel_otlp::{
    DropReason, ExportStats, FailureReason, LogsClient, LogsExporter, Prebuilt, PushOutcome,
    QueueConfig, ResourceConfig, logs_request,
};
use support::*;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

fn make_client(config: &flowtel_otlp::ClientConfig) -> (LogsClient, Arc<ExportStats>) {
    let stats = Arc::new(ExportStats::default());
    (LogsClient::new(config, stats.clone()).unwrap(), stats)
}

fn batch(
    n: u64,
    count: u64,
) -> flowtel_otlp::opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
    let resource = ResourceConfig {
        service_name: "flowtel-test".into(),
        ..Default::default()
    };
    logs_request(&resource, records(n, count))
}

fn exporter(client: LogsClient, capacity: usize) -> LogsExporter {
    LogsExporter::spawn(
        client,
        Prebuilt::default(),
        &QueueConfig {
            capacity,
            ..Default::default()
        },
    )
}

#[tokio::test]
async fn delivers_the_records_as_built_with_gzip_and_headers() {
    let receiver = Receiver::default();
    let server = serve(receiver.clone()).await;
    let mut cfg = config(server.addr);
    cfg.headers = vec![("Authorization".into(), "Bearer s3cret".into())];
    let (client, stats) = make_client(&cfg);
    let sent = batch(0, 3);
    let ok = client.export(sent.clone()).await.unwrap();
    assert_eq!((ok.attempts, ok.items, ok.rejected_items), (1, 3, 0));
    let got = receiver.logs();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].request, sent);
    let rl = &got[0].request.resource_logs[0];
    let service = &rl.resource.as_ref().unwrap().attributes[0];
    assert_eq!(service.key, "service.name");
    assert_eq!(rl.scope_logs[0].scope.as_ref().unwrap().name, "flowtel");
    assert_eq!(got[0].metadata.get("grpc-encoding").unwrap(), "gzip");
    assert_eq!(
        got[0].metadata.get("authorization").unwrap(),
        "Bearer s3cret"
    );
    assert!(receiver.metrics().is_empty(), "logs go to LogsService");
    let s = snap(&stats);
    assert_eq!((s.requests_ok, s.items_sent), (1, 3));
    server.stop().await;
}

#[tokio::test]
async fn refused_first_attempts_are_retried_and_delivered_once() {
    let receiver = Receiver::default();
    receiver.script((0..3).map(|_| Answer::Fail(Status::unavailable("starting up"))));
    let server = serve(receiver.clone()).await;
    let (client, stats) = make_client(&config(server.addr));
    let ok = client.export(batch(1, 4)).await.unwrap();
    assert_eq!(ok.attempts, 4);
    assert_eq!(bodies(&receiver.logs()), expected_bodies([1], 4));
    let s = snap(&stats);
    assert_eq!(
        (
            s.failed(FailureReason::Unavailable),
            s.retries,
            s.items_sent
        ),
        (3, 3, 4)
    );
    server.stop().await;
}

#[tokio::test]
async fn retry_info_delay_replaces_the_backoff() {
    let receiver = Receiver::default();
    receiver.script([Answer::Fail(Status::with_error_details(
        Code::ResourceExhausted,
        "slow down",
        ErrorDetails::with_retry_info(Some(Duration::from_millis(1))),
    ))]);
    let server = serve(receiver.clone()).await;
    let mut cfg = config(server.addr);
    cfg.retry.initial_backoff = Duration::from_secs(3600);
    cfg.retry.max_backoff = Duration::from_secs(3600);
    let (client, stats) = make_client(&cfg);
    let ok = tokio::time::timeout(BOUND, client.export(batch(2, 1)))
        .await
        .expect("the RetryInfo delay must replace the backoff")
        .unwrap();
    assert_eq!(ok.attempts, 2);
    let s = snap(&stats);
    assert_eq!(
        (
            s.failed(FailureReason::ResourceExhausted),
            s.retries_server_delay
        ),
        (1, 1)
    );
    server.stop().await;
}

#[tokio::test]
async fn partial_success_counts_rejected_log_records() {
    let receiver = Receiver::default();
    receiver.script([Answer::Partial {
        rejected: 3,
        message: "3 records too large".into(),
    }]);
    let server = serve(receiver.clone()).await;
    let (client, stats) = make_client(&config(server.addr));
    let ok = client.export(batch(3, 10)).await.unwrap();
    assert_eq!(
        (ok.attempts, ok.rejected_items, ok.error_message.as_str()),
        (1, 3, "3 records too large")
    );
    let s = snap(&stats);
    assert_eq!(
        (
            s.items_sent,
            s.items_rejected,
            s.partial_success_responses,
            s.retries
        ),
        (10, 3, 1, 0)
    );
    server.stop().await;
}

#[tokio::test]
async fn non_retryable_failure_counts_the_records_as_failed() {
    let receiver = Receiver::default();
    receiver.script([Answer::Fail(Status::invalid_argument("bad record"))]);
    let server = serve(receiver.clone()).await;
    let (client, stats) = make_client(&config(server.addr));
    let err = client.export(batch(4, 6)).await.unwrap_err();
    assert_eq!(
        (err.reason, err.attempts),
        (FailureReason::InvalidArgument, 1)
    );
    assert_eq!(snap(&stats).items_failed, 6);
    server.stop().await;
}

#[tokio::test]
async fn a_plain_thread_pushes_while_the_endpoint_is_down_longer_than_the_queue_holds() {
    let port = reserve();
    let addr = port.addr;
    let (client, stats) = make_client(&config(addr));
    let exporter = exporter(client, 3);
    let queue = exporter.queue();
    // Batch 0 goes in flight and is retried while the endpoint is down.
    assert_eq!(queue.try_push(batch(0, 2)), PushOutcome::Queued);
    wait_for("batch 0 in flight", || {
        snap(&stats).retries >= 1 && queue.is_empty()
    })
    .await;
    // A per-flow sink's thread: no runtime, never blocks. Batches 1..=6 into a queue of 3:
    // 1, 2 and 3 are pushed out by 4, 5 and 6.
    let producer = queue.clone();
    let outcomes = std::thread::spawn(move || {
        (1..=6)
            .map(|n| producer.try_push(batch(n, n)))
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    assert_eq!(
        outcomes,
        [
            PushOutcome::Queued,
            PushOutcome::Queued,
            PushOutcome::Queued,
            PushOutcome::QueuedDroppedOldest,
            PushOutcome::QueuedDroppedOldest,
            PushOutcome::QueuedDroppedOldest
        ]
    );
    let s = snap(&stats);
    assert_eq!(
        (
            s.batches_dropped(DropReason::QueueFull),
            s.items_dropped(DropReason::QueueFull),
            s.queue_depth
        ),
        (3, 1 + 2 + 3, 3)
    );
    assert!(s.failed(FailureReason::Connect) >= 1);

    let receiver = Receiver::default();
    let server = serve_on(port.listen(), receiver.clone(), None).await;
    let report = exporter.shutdown(BOUND).await;
    assert_eq!((report.flushed, report.batches_dropped), (true, 0));
    let mut expected = expected_bodies([0], 2);
    for n in 4..=6 {
        expected.extend(expected_bodies([n], n));
    }
    assert_eq!(
        bodies(&receiver.logs()),
        expected,
        "what was not dropped arrives once, in order"
    );
    let s = snap(&stats);
    assert_eq!(
        (s.items_sent, s.batches_queued, s.queue_depth),
        (2 + 15, 7, 0)
    );
    server.stop().await;
}
