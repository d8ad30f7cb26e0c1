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
//!
//! Interface metrics (sFlow counter samples) are counters and levels, not window totals: the
//! sink adds each window's increases to a running total per series and keeps each level's
//! latest value ([`crate::exposition::Running`]), rendered as Prometheus counters and gauges without timestamps
//! (`rate()` reads them as it reads any counter; flowtel's restart is a counter reset). A
//! series not updated for [`IDLE_NS`] is forgotten, as the OTLP converter forgets its
//! cumulative series.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use flowtel_rollup::{AttrValue, PointKind, WindowBatch};

use super::{ShutdownFuture, Sink, SinkStatus, Windows};
use crate::exposition::Running;

/// A counter or level series not updated for this long is forgotten (one hour).
pub const IDLE_NS: u64 = 3_600 * 1_000_000_000;

/// Identity of a counter or level series: metric name and attributes.
type SeriesKey = (Arc<str>, Vec<(Arc<str>, AttrValue)>);

#[derive(Debug, Default)]
struct Held {
    /// The last window of each rollup (its flow totals).
    last: BTreeMap<Arc<str>, WindowBatch>,
    /// Counters and levels.
    running: HashMap<SeriesKey, Running>,
}

#[derive(Debug, Default)]
pub struct PrometheusSink {
    held: RwLock<Held>,
    delivered: AtomicU64,
}

impl PrometheusSink {
    /// Append the held windows, counters and levels to a `/metrics` body.
    pub fn render(&self, out: &mut String) {
        let held = self.held.read().unwrap_or_else(|p| p.into_inner());
        crate::exposition::render_windows(held.last.values(), out);
        crate::exposition::render_running(
            held.running.iter().map(|((m, a), r)| (m, a.as_slice(), r)),
            out,
        );
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
        let mut held = self.held.write().unwrap_or_else(|p| p.into_inner());
        let Held { last, running } = &mut *held;
        let mut newest = 0;
        for b in &windows.batches {
            newest = newest.max(b.time_unix_nano);
            if b.points.iter().all(|p| p.kind == PointKind::Total) {
                let newer = last
                    .get(&b.rollup)
                    .is_none_or(|old| old.time_unix_nano <= b.time_unix_nano);
                if newer {
                    last.insert(Arc::clone(&b.rollup), b.clone());
                }
                continue;
            }
            for p in &b.points {
                let key = (Arc::clone(&p.metric), p.attributes.clone());
                let r = running.entry(key).or_insert_with(|| Running {
                    kind: p.kind,
                    unit: Arc::clone(&p.unit),
                    value: 0,
                    last_ns: p.time_unix_nano,
                });
                r.value = match p.kind {
                    PointKind::Increase => r.value.saturating_add(p.value),
                    PointKind::Level | PointKind::Total => p.value,
                };
                r.last_ns = r.last_ns.max(p.time_unix_nano);
            }
        }
        running.retain(|_, r| newest.saturating_sub(r.last_ns) <= IDLE_NS);
        self.delivered
            .fetch_add(windows.batches.len() as u64, Ordering::Relaxed);
    }

    fn status(&self) -> SinkStatus {
        let held = self.held.read().map(|h| h.last.len()).unwrap_or(0) as u64;
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

#[cfg(test)]
mod tests {
    use super::*;
    use flowtel_rollup::Point;

    const MIN: u64 = 60_000_000_000;

    fn batch(rollup: &str, end: u64, points: Vec<(&str, &str, PointKind, u64)>) -> WindowBatch {
        WindowBatch {
            rollup: rollup.into(),
            start_time_unix_nano: end - MIN,
            time_unix_nano: end,
            points: points
                .into_iter()
                .map(|(metric, unit, kind, value)| Point {
                    metric: metric.into(),
                    unit: unit.into(),
                    kind,
                    attributes: vec![
                        ("hw.id".into(), AttrValue::Str("3".into())),
                        ("hw.direction".into(), AttrValue::Str("receive".into())),
                    ],
                    value,
                    start_time_unix_nano: end - MIN,
                    time_unix_nano: end,
                })
                .collect(),
        }
    }

    fn deliver(sink: &PrometheusSink, batches: Vec<WindowBatch>) {
        sink.windows(&Arc::new(Windows {
            batches,
            final_flush: false,
        }));
    }

    #[test]
    fn increases_add_up_into_counters_and_levels_keep_the_latest() {
        let sink = PrometheusSink::default();
        let t = 1_800_000_000 * 1_000_000_000;
        for (end, io, up) in [(t, 100, 1), (t + MIN, 50, 0)] {
            deliver(
                &sink,
                vec![batch(
                    "interfaces",
                    end,
                    vec![
                        ("hw.network.io", "By", PointKind::Increase, io),
                        ("hw.network.up", "1", PointKind::Level, up),
                        ("hw.network.bandwidth.limit", "By/s", PointKind::Level, 125),
                    ],
                )],
            );
        }
        let mut out = String::new();
        sink.render(&mut out);
        let labels = "hw_id=\"3\",hw_direction=\"receive\"";
        assert_eq!(
            out,
            format!(
                "# HELP hw_network_bandwidth_limit_bytes_per_second Latest value seen in an sFlow counter sample.\n\
                 # TYPE hw_network_bandwidth_limit_bytes_per_second gauge\n\
                 hw_network_bandwidth_limit_bytes_per_second{{{labels}}} 125\n\
                 # HELP hw_network_io_bytes_total Sum of the increases of an sFlow interface counter since flowtel first saw it (wraps and resets handled).\n\
                 # TYPE hw_network_io_bytes_total counter\n\
                 hw_network_io_bytes_total{{{labels}}} 150\n\
                 # HELP hw_network_up Latest value seen in an sFlow counter sample.\n\
                 # TYPE hw_network_up gauge\n\
                 hw_network_up{{{labels}}} 0\n"
            )
        );
        // The counters do not hold a rollup slot; a series idle for an hour is forgotten.
        assert_eq!(sink.status().queue_depth, 0);
        deliver(
            &sink,
            vec![batch(
                "interfaces",
                t + MIN + IDLE_NS + 1,
                vec![("hw.errors", "{error}", PointKind::Increase, 2)],
            )],
        );
        let mut out = String::new();
        sink.render(&mut out);
        assert!(!out.contains("hw_network_io"), "{out}");
        assert!(out.contains("hw_errors_total{"), "{out}");
    }
}
