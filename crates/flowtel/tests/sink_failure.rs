//! A sink whose delivery panics stops the daemon with an error (so that its service manager
//! starts a fresh one): the daemon embedded as `flowtel run` runs it, on a real UDP listener on
//! loopback, with a per-flow sink of the test's own whose delivery panics in the sink's own
//! delivery task. (`worker_failure.rs` has a receive worker's panic.)

mod common;

use std::sync::Arc;

use common::{PATIENCE, embedded_daemon, send_v5};
use flowtel::daemon::Failure;
use flowtel::sinks::Records;
use flowtel::sinks::records::{Batching, Deliver, DeliverFuture, RecordSink};

/// A per-flow destination whose delivery panics on its first batch.
struct PanickingDelivery;

impl Deliver for PanickingDelivery {
    fn deliver<'a>(&'a mut self, batch: &'a [Records]) -> DeliverFuture<'a> {
        let records: usize = batch.iter().map(|r| r.len()).sum();
        Box::pin(async move { panic!("a delivery's bug with {records} records") })
    }
}

#[test]
fn a_sink_whose_delivery_panics_stops_the_daemon() {
    // The sink's delivery task runs on a runtime of the test's (the daemon makes its own).
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _entered = runtime.enter();
    let sink = RecordSink::start(
        "panicking",
        Batching {
            queue_max_records: 1000,
            batch_max_records: 2,
            batch_max_age: std::time::Duration::from_millis(10),
        },
        PanickingDelivery,
    );
    let sink = Arc::new(sink);
    let (to, done) = embedded_daemon(1, sink.clone());
    send_v5([127, 0, 0, 1].into(), to, 0);
    let result = done
        .recv_timeout(PATIENCE)
        .expect("the daemon stops by itself");
    let error = result.expect_err("the daemon stops with an error");
    assert_eq!(
        error.downcast_ref::<Failure>(),
        Some(&Failure::Sink {
            sink: "panicking".to_owned(),
            message: "a delivery's bug with 2 records".to_owned(),
        }),
        "{error:#}"
    );
    assert_eq!(
        error.to_string(),
        "sink panicking panicked: a delivery's bug with 2 records"
    );
    // The batch the delivery held when it panicked is counted, not lost silently.
    let status = flowtel::sinks::Sink::status(&*sink);
    assert_eq!(
        status.dropped.iter().find(|(r, _)| *r == "failed"),
        Some(&("failed", 2))
    );
    assert_eq!(status.delivered, 0);
}
