//! The `stdout` sink: every point of every window as one JSON line on standard output.
//!
//! A writer thread owns stdout; windows reach it through a bounded channel, so a slow reader of
//! the pipe (or a terminal scrolled back) never holds the flush loop. When the channel is full
//! the window set is dropped and counted (`queue_full`). [`StdoutSink::with_format`] gives the
//! same sink another text format (`flowtel demo`'s table).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::Context;
use tracing::warn;

use super::{Counters, ShutdownFuture, Sink, SinkStatus, Windows};

/// Window sets the writer's channel holds.
pub const QUEUE_CAPACITY: usize = 64;

/// Renders one flush's windows as the text to write.
pub type Format = Box<dyn Fn(&Windows, &mut String) + Send>;

pub struct StdoutSink {
    name: &'static str,
    tx: Mutex<Option<SyncSender<Arc<Windows>>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
    /// Windows in the channel (sent, not yet written).
    queued: Arc<AtomicU64>,
    /// The writer thread's panic, if it panicked.
    panicked: flowtel_otlp::Panicked,
}

impl std::fmt::Debug for StdoutSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdoutSink")
            .field("name", &self.name)
            .finish()
    }
}

impl StdoutSink {
    /// Start the writer thread, writing JSON lines ([`point_json`]).
    pub fn start() -> anyhow::Result<Self> {
        Self::with_format(
            "stdout",
            Box::new(|w, out| {
                use std::fmt::Write as _;
                for b in &w.batches {
                    for p in &b.points {
                        let _ = writeln!(out, "{}", point_json(p));
                    }
                }
            }),
        )
    }

    /// Start a writer thread named `name` that writes what `format` renders.
    pub fn with_format(name: &'static str, format: Format) -> anyhow::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_CAPACITY);
        let counters = Arc::new(Counters::default());
        let queued = Arc::new(AtomicU64::new(0));
        let panicked = flowtel_otlp::Panicked::default();
        let writer = {
            let counters = Arc::clone(&counters);
            let queued = Arc::clone(&queued);
            let panicked = panicked.clone();
            std::thread::Builder::new()
                .name("flowtel-stdout".into())
                .spawn(move || {
                    let write = || write_loop(&rx, &format, &counters, &queued);
                    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(write)) {
                        panicked.set(flowtel_otlp::panic_message(p.as_ref()));
                    }
                })
                .context("cannot start the stdout writer")?
        };
        Ok(StdoutSink {
            name,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
            counters,
            queued,
            panicked,
        })
    }
}

fn write_loop(
    rx: &Receiver<Arc<Windows>>,
    format: &Format,
    counters: &Counters,
    queued: &AtomicU64,
) {
    let stdout = std::io::stdout();
    let mut text = String::new();
    while let Ok(w) = rx.recv() {
        text.clear();
        format(&w, &mut text);
        let mut out = stdout.lock();
        let ok = out.write_all(text.as_bytes()).is_ok() && out.flush().is_ok();
        let n = w.batches.len() as u64;
        queued.fetch_sub(n, Ordering::Relaxed);
        if ok {
            Counters::add(&counters.delivered, n);
        } else {
            Counters::add(&counters.dropped_failed, n);
        }
    }
}

impl Sink for StdoutSink {
    fn name(&self) -> &str {
        self.name
    }

    fn takes_windows(&self) -> bool {
        true
    }

    fn windows(&self, windows: &Arc<Windows>) {
        let n = windows.batches.len() as u64;
        let tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = tx.as_ref() else {
            Counters::add(&self.counters.dropped_shutdown, n);
            return;
        };
        self.queued.fetch_add(n, Ordering::Relaxed);
        match tx.try_send(Arc::clone(windows)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.queued.fetch_sub(n, Ordering::Relaxed);
                Counters::add(&self.counters.dropped_queue_full, n);
                warn!(
                    sink = self.name,
                    windows = n,
                    "stdout is not keeping up: windows dropped"
                );
            }
        }
    }

    fn status(&self) -> SinkStatus {
        SinkStatus {
            item: "window",
            queue_depth: self.queued.load(Ordering::Relaxed),
            queue_capacity: QUEUE_CAPACITY as u64,
            delivered: self.counters.delivered.load(Ordering::Relaxed),
            dropped: self.counters.dropped(),
            failing_since_ns: None,
        }
    }

    fn panicked(&self) -> Option<String> {
        self.panicked.get()
    }

    fn shutdown(&self, deadline: tokio::time::Instant) -> ShutdownFuture<'_> {
        Box::pin(async move {
            // Closing the channel ends the writer once it has written what is queued.
            self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
            let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(w) = writer {
                let join = tokio::task::spawn_blocking(move || w.join());
                if tokio::time::timeout_at(deadline, join).await.is_err() {
                    let left = self.queued.load(Ordering::Relaxed);
                    Counters::add(&self.counters.dropped_shutdown, left);
                    warn!(
                        sink = self.name,
                        windows = left,
                        "stdout not drained before the deadline"
                    );
                } else if let Some(panic) = self.panicked.get() {
                    // A writer that panicked ended too, leaving the windows it had not written.
                    let left = self.queued.swap(0, Ordering::Relaxed);
                    Counters::add(&self.counters.dropped_failed, left);
                    warn!(
                        sink = self.name,
                        windows = left,
                        panic = %panic,
                        "not written: the stdout writer panicked"
                    );
                }
            }
        })
    }
}

/// One stdout line: `{"metric", "unit", "attributes": {…}, "value", "start_time_unix_nano",
/// "time_unix_nano"}`, also the format of `flowtel run --pcap`.
pub fn point_json(p: &flowtel_rollup::Point) -> serde_json::Value {
    let attributes: serde_json::Map<String, serde_json::Value> = p
        .attributes
        .iter()
        .map(|(k, v)| {
            let v = match v {
                flowtel_rollup::AttrValue::Str(s) => serde_json::Value::from(&**s),
                flowtel_rollup::AttrValue::Int(i) => serde_json::Value::from(*i),
                flowtel_rollup::AttrValue::Bool(b) => serde_json::Value::from(*b),
            };
            (k.to_string(), v)
        })
        .collect();
    let mut v = serde_json::json!({
        "metric": &*p.metric,
        "unit": &*p.unit,
        "attributes": attributes,
        "value": p.value,
        "start_time_unix_nano": p.start_time_unix_nano,
        "time_unix_nano": p.time_unix_nano,
    });
    // Counters' increases and levels say so; flow totals, the common case, stay as they were.
    if !p.kind.is_total() {
        v["kind"] = serde_json::to_value(p.kind).unwrap_or_default();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows() -> Arc<Windows> {
        Arc::new(Windows {
            batches: vec![flowtel_rollup::WindowBatch {
                rollup: Arc::from("r"),
                start_time_unix_nano: 0,
                time_unix_nano: 1,
                points: Vec::new(),
            }],
            final_flush: false,
        })
    }

    #[tokio::test]
    async fn a_writer_that_panics_is_reported_and_what_it_held_counted() {
        let sink =
            StdoutSink::with_format("stdout", Box::new(|_, _| panic!("a format's bug"))).unwrap();
        sink.windows(&windows());
        let start = std::time::Instant::now();
        while sink.panicked().is_none() {
            assert!(start.elapsed() < std::time::Duration::from_secs(30));
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(sink.panicked().as_deref(), Some("a format's bug"));
        sink.shutdown(tokio::time::Instant::now() + std::time::Duration::from_secs(5))
            .await;
        let status = sink.status();
        assert_eq!(status.delivered, 0);
        assert_eq!(status.queue_depth, 0);
        assert!(
            status.dropped.contains(&("failed", 1)),
            "{:?}",
            status.dropped
        );
    }
}
