//! Series -> OTLP `ExportMetricsServiceRequest`, and the tonic client that sends it.
//!
//! Knows nothing of NetFlow: its input is the rollup's contract,
//! [`flowtel_series::WindowBatch`] (one point per series per window).
//!
//! # Pieces
//!
//! - [`Converter`] (`convert`): windows -> requests. Pure apart from the running totals of
//!   cumulative sums; snapshot-tested. One `ResourceMetrics` carrying the configured
//!   [`ResourceConfig`] (`service.name` default `flowtel`), one `ScopeMetrics` (scope `flowtel`,
//!   this crate's version), one `Metric` per metric name with all of its points. Requests are
//!   split at [`ConvertConfig::max_points_per_request`] points.
//! - [`OtlpClient`] (`client`): tonic `MetricsService/Export` over one lazily connected channel;
//!   gzip, per-attempt timeout, TLS/mTLS (rustls with ring; the system roots unless a CA is
//!   given), extra headers, retries.
//! - [`Exporter`] / [`ExportQueue`] (`queue`): a bounded in-memory queue of windows and the
//!   task that drains it.
//! - [`ExportStats`] (`stats`): atomic counters, failures by a closed [`FailureReason`].
//!
//! # Temporality
//!
//! [`Temporality::Gauge`] (default) writes each window's total as a gauge point carrying both the
//! window start (`start_time_unix_nano`) and end (`time_unix_nano`): what ktranslate emits and
//! what Grafana's Netflow integration queries. [`Temporality::DeltaSum`] writes the same values
//! as a monotonic delta `Sum`. [`Temporality::CumulativeSum`] keeps a running total per series
//! (rollup, metric, attributes) in the converter; the start time is the start of the first window
//! in which the series was seen, and a series idle for longer than
//! [`ConvertConfig::cumulative_idle_nanos`] is forgotten and restarts (an OTLP reset, new start
//! time) if it returns. The converter runs in the sender task, so a window dropped from a full
//! queue never reaches the totals: cumulative series undercount by exactly the dropped windows,
//! which `batches_dropped_queue_full` reports.
//!
//! # Queue
//!
//! The receive path must never wait on the network: [`ExportQueue::try_push`] is O(1) under a
//! short mutex and never awaits. The queue holds at most `capacity` windows; when full, the
//! oldest queued window is dropped and counted (newer data is worth more to a dashboard). One
//! sender task pops windows oldest first and sends their requests in order; while the endpoint
//! is down it keeps retrying the window in flight and the others wait, so they are delivered in
//! order once it returns. [`Exporter::shutdown`] closes the queue and drains it within a
//! deadline, cutting a pending backoff short and capping later waits at 1 s so the grace period
//! is spent trying; what is left at the deadline is dropped and counted.
//!
//! # Retry policy
//!
//! As the OTLP specification says ("OTLP/gRPC" > "Failures", "OTLP/gRPC Throttling"):
//! CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS and our own
//! per-attempt timeout are retried; RESOURCE_EXHAUSTED only when the status carries a
//! `google.rpc.RetryInfo`, whose delay is then honoured; every other code fails at once and the
//! request's points are counted as failed. Other waits follow exponential backoff
//! ([`RetryConfig`]: 1 s doubling to 30 s, jitter ×[0.5, 1.5)). Connection errors surface from
//! tonic as UNAVAILABLE. An outage is logged once when it starts and once when it ends.
//! Partial successes (`rejected_data_points`, `error_message`) are not retried; they are logged
//! and counted.

pub mod client;
pub mod convert;
pub mod queue;
pub mod stats;

pub use client::{
    ClientConfig, ClientError, DEFAULT_ENDPOINT, ExportError, ExportSuccess, OtlpClient,
    RetryConfig, TlsConfig,
};
pub use convert::{
    ConvertConfig, Converter, DEFAULT_SERVICE_NAME, ResourceConfig, SCOPE_NAME, SCOPE_VERSION,
    Temporality, point_count,
};
pub use queue::{
    DEFAULT_QUEUE_CAPACITY, ExportQueue, Exporter, ExporterConfig, PushOutcome, ShutdownReport,
};
pub use stats::{ExportStats, ExportStatsSnapshot, FailureReason};

/// The generated OTLP types this crate speaks, re-exported so users need not pin the crate.
pub use opentelemetry_proto;
