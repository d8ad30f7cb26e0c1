//! The `prometheus` sink: the last complete window of every rollup, served on `/metrics`.
//!
//! Series carry the names Alloy and Mimir give the same series after OTLP ingestion
//! (`network_io_by_flow_bytes{device_name=…, network_local_address=…}`). Each sample carries
//! the window's end as its timestamp, so a Prometheus that scrapes several times per window still
//! stores one sample per series per window (repeated identical samples are deduplicated) — what
//! the Netflow dashboard's `sum_over_time(...[$__range])` expects.
//!
//! Its "queue" is one slot per rollup: a newer window replaces the one held (a replaced window
//! was already served or never scraped; that is the pull model, not a drop), under a lock held
//! only to swap or render.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use flowtel_rollup::WindowBatch;

use super::{ShutdownFuture, Sink, SinkStatus, Windows};

#[derive(Debug, Default)]
pub struct PrometheusSink {
    last: RwLock<BTreeMap<Arc<str>, WindowBatch>>,
    delivered: AtomicU64,
}

impl PrometheusSink {
    /// Append the held windows to a `/metrics` body.
    pub fn render(&self, out: &mut String) {
        let last = self.last.read().unwrap_or_else(|p| p.into_inner());
        crate::exposition::render_windows(last.values(), out);
    }
}

impl Sink for PrometheusSink {
    fn name(&self) -> &str {
        "prometheus"
    }

    fn takes_windows(&self) -> bool {
        true
    }

    fn windows(&self, windows: &Arc<Windows>) {
        let mut last = self.last.write().unwrap_or_else(|p| p.into_inner());
        for b in &windows.batches {
            let newer = last
                .get(&b.rollup)
                .is_none_or(|old| old.time_unix_nano <= b.time_unix_nano);
            if newer {
                last.insert(Arc::clone(&b.rollup), b.clone());
            }
        }
        self.delivered
            .fetch_add(windows.batches.len() as u64, Ordering::Relaxed);
    }

    fn status(&self) -> SinkStatus {
        let held = self.last.read().map(|l| l.len()).unwrap_or(0) as u64;
        SinkStatus {
            item: "window",
            queue_depth: held,
            queue_capacity: held,
            delivered: self.delivered.load(Ordering::Relaxed),
            dropped: Vec::new(),
            failing_since_ns: None,
        }
    }

    fn shutdown(&self, _deadline: tokio::time::Instant) -> ShutdownFuture<'_> {
        Box::pin(async {})
    }
}
