//! Sinks: where closed windows and decoded flow records go.
//!
//! # The seam
//!
//! A sink implements [`Sink`]: it takes closed, merged windows of series ([`Sink::windows`],
//! from the flush loop), decoded flow records ([`Sink::records`], from the receive workers, once
//! per receive pass), or both, and reports its state ([`Sink::status`]). Both calls must return
//! at once: a sink puts what it is given into its own bounded queue and delivers it from its own
//! task or thread, so the receive path never waits on a sink and one slow sink never holds back
//! another. When a queue is full the sink drops and counts (by reason) under its own name;
//! [`SinkSet::families`] turns every sink's [`SinkStatus`] into the `flowtel.sink.*` metrics.
//!
//! [`SinkSet`] is the fan-out: built once from the configuration ([`SinkSet::build`], one match
//! arm per [`SinkKind`]), it hands every window set to each window sink and every record batch
//! to each record sink, sharing one `Arc` between them (nothing is copied per sink). Adding a
//! sink is one file here and one [`SinkKind`] entry.
//!
//! Shutdown: after the last (partial) windows are handed over, [`SinkSet::shutdown`] gives every
//! sink until the deadline to deliver what it holds; what is left is counted as dropped with
//! reason `shutdown`.

pub mod flow_http;
pub mod flow_json;
pub mod flow_logs;
pub mod kafka;
pub mod otlp;
pub mod prometheus;
pub mod records;
pub mod rotate;
pub mod stdout;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use flowtel_rollup::{EnrichedRecord, WindowBatch};

use crate::config::{Config, SinkKind};
use crate::telemetry::Family;

/// The windows of one flush, every rollup, merged over the workers and finished (top-K).
#[derive(Debug, Clone, PartialEq)]
pub struct Windows {
    pub batches: Vec<WindowBatch>,
    /// The shutdown flush: the windows are partial.
    pub final_flush: bool,
}

/// Flow records of one receive pass of one worker, enriched.
pub type Records = Arc<Vec<EnrichedRecord>>;

/// A future a sink's shutdown returns.
pub type ShutdownFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A destination for windows or flow records. See the module documentation.
pub trait Sink: Send + Sync + 'static {
    /// The sink's name: its configuration name, and the `sink` label of its metrics.
    fn name(&self) -> &str;

    /// Whether it takes windows ([`Sink::windows`]).
    fn takes_windows(&self) -> bool {
        false
    }

    /// Whether it takes flow records ([`Sink::records`]); the workers only build records when
    /// some sink takes them.
    fn takes_records(&self) -> bool {
        false
    }

    /// Closed windows. Must not block.
    fn windows(&self, _windows: &Arc<Windows>) {}

    /// One batch of flow records. Must not block.
    fn records(&self, _records: &Records) {}

    /// Queue and delivery state.
    fn status(&self) -> SinkStatus;

    /// The message of a panic that stopped the sink's delivery (its task or thread), if one
    /// did: it delivers nothing more, and the daemon stops with the message.
    fn panicked(&self) -> Option<String> {
        None
    }

    /// Metrics of the sink's own beyond [`SinkStatus`] (e.g. the OTLP exporter's).
    fn families(&self) -> Vec<Family> {
        Vec::new()
    }

    /// Deliver what is queued until `deadline`, then stop.
    fn shutdown(&self, deadline: tokio::time::Instant) -> ShutdownFuture<'_>;
}

/// A sink's queue and delivery state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SinkStatus {
    /// What one queued item is: `window` (one rollup's window) or `record`.
    pub item: &'static str,
    /// Items waiting in the sink's queue.
    pub queue_depth: u64,
    /// The queue's bound.
    pub queue_capacity: u64,
    /// Items delivered (written, accepted by the receiver).
    pub delivered: u64,
    /// Items dropped, by reason (`queue_full`, `shutdown`, `rejected`, ...).
    pub dropped: Vec<(&'static str, u64)>,
    /// Unix nanoseconds since which deliveries fail, while they do.
    pub failing_since_ns: Option<u64>,
}

/// Delivered and dropped counts shared between a sink's front (which queues) and its back
/// (which delivers).
#[derive(Debug, Default)]
pub struct Counters {
    pub delivered: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_shutdown: AtomicU64,
    pub dropped_failed: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The drop counts, by reason, for [`SinkStatus::dropped`].
    pub fn dropped(&self) -> Vec<(&'static str, u64)> {
        vec![
            (
                "queue_full",
                self.dropped_queue_full.load(Ordering::Relaxed),
            ),
            ("shutdown", self.dropped_shutdown.load(Ordering::Relaxed)),
            ("failed", self.dropped_failed.load(Ordering::Relaxed)),
        ]
    }
}

/// The configured sinks, and the fan-out to them.
#[derive(Clone, Default)]
pub struct SinkSet {
    sinks: Vec<Arc<dyn Sink>>,
    /// The window sinks, in configuration order.
    window_sinks: Vec<Arc<dyn Sink>>,
    /// The record sinks, in configuration order.
    record_sinks: Vec<Arc<dyn Sink>>,
    /// The `prometheus` sink, which `/metrics` renders.
    prometheus: Option<Arc<prometheus::PrometheusSink>>,
}

impl std::fmt::Debug for SinkSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.sinks.iter().map(|s| s.name().to_owned()))
            .finish()
    }
}

impl SinkSet {
    /// Start every sink the configuration names, then `extra` (sinks of an embedding command).
    /// Needs a tokio runtime (sinks spawn their tasks).
    pub fn build(
        config: &Config,
        resource: &flowtel_otlp::ResourceConfig,
        extra: Vec<Arc<dyn Sink>>,
    ) -> anyhow::Result<Self> {
        let mut set = SinkSet::default();
        for kind in &config.sinks {
            match kind {
                SinkKind::Otlp => set.add(Arc::new(otlp::OtlpSink::start(config, resource)?)),
                SinkKind::Stdout => set.add(Arc::new(stdout::StdoutSink::start()?)),
                SinkKind::FlowJson => set.add(Arc::new(records::RecordSink::start(
                    "flow-json",
                    config.flow_records.batching(),
                    flow_json::FlowJson::open(&config.flow_json)?,
                ))),
                SinkKind::FlowLogs => set.add(Arc::new(records::RecordSink::start(
                    "flow-logs",
                    config.flow_records.batching(),
                    flow_logs::FlowLogs::start(config, resource)?,
                ))),
                SinkKind::FlowHttp => set.add(Arc::new(records::RecordSink::start(
                    "flow-http",
                    config.flow_records.batching(),
                    flow_http::FlowHttp::open(&config.flow_http)?,
                ))),
                SinkKind::Kafka => set.add(Arc::new(kafka::KafkaSink::start(config)?)),
                SinkKind::Prometheus => {
                    let p = Arc::new(prometheus::PrometheusSink::default());
                    set.prometheus = Some(Arc::clone(&p));
                    set.add(p);
                }
            }
        }
        for s in extra {
            set.add(s);
        }
        Ok(set)
    }

    /// Add a started sink.
    pub fn add(&mut self, sink: Arc<dyn Sink>) {
        if sink.takes_windows() {
            self.window_sinks.push(Arc::clone(&sink));
        }
        if sink.takes_records() {
            self.record_sinks.push(Arc::clone(&sink));
        }
        self.sinks.push(sink);
    }

    /// Whether any sink takes flow records (the workers then collect them).
    pub fn takes_records(&self) -> bool {
        !self.record_sinks.is_empty()
    }

    /// Hand one flush's windows to every window sink.
    pub fn windows(&self, windows: Windows) {
        if windows.batches.is_empty() {
            return;
        }
        let shared = Arc::new(windows);
        for s in &self.window_sinks {
            s.windows(&shared);
        }
    }

    /// Hand one batch of records to every record sink.
    pub fn records(&self, records: Vec<EnrichedRecord>) {
        if records.is_empty() {
            return;
        }
        let shared: Records = Arc::new(records);
        for s in &self.record_sinks {
            s.records(&shared);
        }
    }

    /// The `prometheus` sink, when configured.
    pub fn prometheus(&self) -> Option<&Arc<prometheus::PrometheusSink>> {
        self.prometheus.as_ref()
    }

    /// The first sink whose delivery stopped on a panic: its name and the panic's message.
    pub fn panicked(&self) -> Option<(String, String)> {
        self.sinks
            .iter()
            .find_map(|s| s.panicked().map(|m| (s.name().to_owned(), m)))
    }

    /// Every sink's state, by name.
    pub fn statuses(&self) -> Vec<(String, SinkStatus)> {
        self.sinks
            .iter()
            .map(|s| (s.name().to_owned(), s.status()))
            .collect()
    }

    /// Every sink's state as the `/status` JSON document.
    pub fn status_json(&self) -> String {
        let sinks: Vec<serde_json::Value> = self
            .sinks
            .iter()
            .map(|s| {
                let st = s.status();
                let dropped: serde_json::Map<String, serde_json::Value> = st
                    .dropped
                    .iter()
                    .map(|(r, n)| ((*r).to_owned(), (*n).into()))
                    .collect();
                serde_json::json!({
                    "name": s.name(),
                    "item": st.item,
                    "queue_depth": st.queue_depth,
                    "queue_capacity": st.queue_capacity,
                    "delivered": st.delivered,
                    "dropped": dropped,
                    "failing": st.failing_since_ns.is_some(),
                    "failing_since_unix_nano": st.failing_since_ns,
                })
            })
            .collect();
        let mut out = serde_json::json!({ "sinks": sinks }).to_string();
        out.push('\n');
        out
    }

    /// `flowtel.sink.*` for every sink, then each sink's own families.
    pub fn families(&self) -> Vec<Family> {
        use crate::metrics::{
            SINK_DELIVERED, SINK_DROPPED, SINK_FAILING, SINK_QUEUE_CAPACITY, SINK_QUEUE_DEPTH,
        };
        let mut delivered = SINK_DELIVERED.family();
        let mut dropped = SINK_DROPPED.family();
        let mut depth = SINK_QUEUE_DEPTH.family();
        let mut capacity = SINK_QUEUE_CAPACITY.family();
        let mut failing = SINK_FAILING.family();
        let mut own = Vec::new();
        for s in &self.sinks {
            let st = s.status();
            let name = s.name().to_owned();
            let l = || vec![("sink", name.clone())];
            delivered.push(l(), st.delivered);
            for (reason, n) in &st.dropped {
                dropped.push(
                    vec![("sink", name.clone()), ("reason", (*reason).to_owned())],
                    *n,
                );
            }
            depth.push(l(), st.queue_depth);
            capacity.push(l(), st.queue_capacity);
            failing.push(l(), u64::from(st.failing_since_ns.is_some()));
            own.extend(s.families());
        }
        let mut out = vec![delivered, dropped, depth, capacity, failing];
        out.extend(own);
        out
    }

    /// Give every sink until `deadline` to deliver what it holds, all at once.
    pub async fn shutdown(&self, deadline: tokio::time::Instant) {
        let all = self.sinks.iter().map(|s| s.shutdown(deadline));
        futures_join_all(all).await;
    }
}

/// Await every future (a sink's shutdown) concurrently.
async fn futures_join_all<'a>(futures: impl Iterator<Item = ShutdownFuture<'a>>) {
    let mut set = Vec::new();
    for f in futures {
        set.push(f);
    }
    // Shutdowns are few (one per sink) and each is bounded by the same deadline: polling them in
    // turn from one task keeps them concurrent without spawning.
    std::future::poll_fn(move |cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}
