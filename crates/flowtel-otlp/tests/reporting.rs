//! What a failing exporter says in its logs: the outage once when it starts, then periodically
//! with the queue depth and how long until data is dropped, every dropped batch exactly once,
//! and the recovery. Captured from the real exporter's tracing output.

mod support;

use std::sync::Arc;
use std::time::Duration;

use flowtel_otlp::{
    ConvertConfig, Converter, DropReason, ExportStats, Exporter, MetricsClient, QueueConfig,
};
use support::*;

/// The integer value of `field=` in a log line.
fn field(line: &str, name: &str) -> Option<u64> {
    let rest = line.split(&format!(" {name}=")).nth(1)?;
    rest.trim_start_matches('"')
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[tokio::test]
async fn a_failing_sink_reports_depth_and_time_to_drop_logs_each_drop_once_and_its_recovery() {
    let (logs, _guard) = Captured::start();
    let port = reserve();
    let addr = port.addr;
    let mut cfg = config(addr);
    cfg.name = "flow-metrics".into();
    cfg.headers = vec![("authorization".into(), "Bearer hunter2".into())];
    let stats = Arc::new(ExportStats::default());
    let client = MetricsClient::new(&cfg, stats.clone()).unwrap();
    let exporter = Exporter::spawn(
        client,
        Converter::new(ConvertConfig::default()),
        &QueueConfig {
            capacity: 4,
            report_interval: Duration::from_millis(50),
        },
    );
    let queue = exporter.queue();
    queue.try_push(window(0, 1));
    wait_for("window 0 in flight", || stats.failing() && queue.is_empty()).await;
    queue.try_push(window(1, 1));
    tokio::time::sleep(Duration::from_millis(20)).await;
    queue.try_push(window(2, 1));
    wait_for("a report with both windows queued", || {
        !logs
            .matching(&["OTLP export still failing", "queue_depth=2"])
            .is_empty()
    })
    .await;
    let report = logs
        .matching(&["OTLP export still failing", "queue_depth=2"])
        .remove(0);
    for needle in [
        "sink=flow-metrics",
        &format!("endpoint=http://{addr}"),
        "connect",
        "queue_depth=2",
        "queue_capacity=4",
        "data_dropped_in=~",
        "failing_for_secs=",
    ] {
        assert!(report.contains(needle), "{needle:?} missing: {report}");
    }

    // Windows 3..=8: the queue (4) fills and 1, 2, 3, 4 are pushed out.
    for n in 3..=8 {
        queue.try_push(window(n, 1));
    }
    wait_for("a report of the full queue", || {
        !logs
            .matching(&["OTLP export still failing", "now: the queue is full"])
            .is_empty()
    })
    .await;
    assert_eq!(snap(&stats).batches_dropped(DropReason::QueueFull), 4);
    // Each dropped window in exactly one line: on its own, or counted in a report.
    let alone = logs
        .matching(&["export queue dropped a window of rollup bytes_by_flow"])
        .len() as u64;
    let in_reports: u64 = logs
        .matching(&["OTLP export still failing"])
        .iter()
        .filter_map(|l| field(l, "dropped_since_last_report"))
        .sum();
    assert!(alone >= 1, "the first drop is logged at once");
    assert_eq!(alone + in_reports, 4, "{:#?}", logs.lines());

    let receiver = Receiver::default();
    let server = serve_on(port.listen(), receiver.clone(), None).await;
    wait_for("the queue drained", || snap(&stats).items_sent == 5).await;
    assert_eq!(
        values(&receiver.metrics()),
        expected_values([0, 5, 6, 7, 8], 1)
    );
    let recovered = logs.matching(&["OTLP endpoint accepts metrics again"]);
    assert_eq!(recovered.len(), 1, "{recovered:#?}");
    assert!(
        field(&recovered[0], "failed_attempts").unwrap() >= 2,
        "{}",
        recovered[0]
    );
    assert!(
        recovered[0].contains("failed_for_secs="),
        "{}",
        recovered[0]
    );

    // The outage was announced once, however many attempts failed; reports stop with it.
    assert_eq!(
        logs.matching(&["OTLP metrics export failing, retrying"])
            .len(),
        1
    );
    let reports = logs.matching(&["OTLP export still failing"]).len();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(logs.matching(&["OTLP export still failing"]).len(), reports);
    assert!(
        logs.lines().iter().all(|l| !l.contains("hunter2")),
        "header values never reach the logs"
    );
    assert!(exporter.shutdown(BOUND).await.flushed);
    server.stop().await;
}

#[tokio::test]
async fn credentials_in_an_endpoint_never_reach_a_log_line() {
    let (logs, _guard) = Captured::start();
    let port = reserve();
    let addr = port.addr;
    // Built on its own channel, the client refuses such an endpoint; given a channel, it still
    // shows the endpoint redacted.
    let mut cfg = config(addr);
    cfg.channel.endpoint = format!("http://flowtel:hunter2@{addr}");
    let err = MetricsClient::new(&cfg, Arc::default()).unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let channel = flowtel_otlp::channel::connect_lazy(&config(addr).channel).unwrap();
    cfg.retry.max_attempts = Some(1);
    let client = MetricsClient::with_channel(channel, &cfg, Arc::default()).unwrap();
    assert_eq!(
        client.endpoint(),
        format!("http://flowtel:<redacted>@{addr}")
    );
    let request = Converter::new(ConvertConfig::default())
        .convert(&window(0, 1))
        .pop()
        .unwrap();
    client.export(request).await.unwrap_err();
    let failed = logs.matching(&["OTLP metrics export failed"]);
    assert_eq!(failed.len(), 1, "{:#?}", logs.lines());
    assert!(failed[0].contains("flowtel:<redacted>@"), "{}", failed[0]);
    assert!(logs.lines().iter().all(|l| !l.contains("hunter2")));
}
