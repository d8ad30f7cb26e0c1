//! OTLP/gRPC export of metrics and logs: series -> `ExportMetricsServiceRequest`, and one
//! client, queue and channel builder for every signal.
//!
//! Knows nothing of NetFlow: its inputs are the rollup's contract,
//! [`flowtel_series::WindowBatch`] (one point per series per window), and OTLP log requests
//! built by the caller ([`logs_request`]).
//!
//! # Pieces
//!
//! - [`channel`]: the one gRPC channel builder ([`channel::connect_lazy`]) and its rules
//!   (scheme, TLS settings only with `https://`, a CA replaces the system roots, client
//!   certificate and key together, PEM checked up front). Every OTLP exporter of the daemon
//!   goes through it. Its connector (`connector`) does the rustls handshake itself and, when the
//!   server asks for a client certificate, waits for the server's verdict, so that a refusal is
//!   reported as such rather than as a closed connection.
//! - [`Signal`] (`signal`): what differs between `MetricsService/Export` ([`Metrics`]) and
//!   `LogsService/Export` ([`Logs`]): the generated client, the item count, the partial-success
//!   field. Nothing else is written per signal.
//! - [`OtlpClient`] (`client`): one `Export` call with gzip, a per-attempt timeout, extra
//!   headers and retries, for any signal ([`MetricsClient`], [`LogsClient`]).
//! - [`Exporter`] / [`ExportQueue`] (`queue`): a bounded in-memory queue of batches and the task
//!   that drains it, for any [`Encode`]: windows converted by the [`Converter`]
//!   ([`MetricsExporter`]), or requests built by the producer ([`Prebuilt`],
//!   [`LogsExporter`]).
//! - [`Converter`] (`convert`): windows -> requests. Pure apart from the running totals of
//!   cumulative sums; snapshot-tested. One `ResourceMetrics` carrying the configured
//!   [`ResourceConfig`] (`service.name` default `flowtel`), one `ScopeMetrics` (scope `flowtel`,
//!   this crate's version), one `Metric` per metric name with all of its points. Requests are
//!   split at [`ConvertConfig::max_points_per_request`] points.
//! - [`ExportStats`] (`stats`): atomic counters; failures by a closed [`FailureReason`], drops
//!   by a closed [`DropReason`].
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
//! which the `queue_full` drop counter reports.
//!
//! # Queue
//!
//! The producer must never wait on the network: [`ExportQueue::try_push`] is O(1) under a short
//! mutex, never awaits and needs no runtime (a per-flow sink's plain thread may call it). The
//! queue holds at most `capacity` batches; when full, the oldest queued batch is dropped and
//! counted (newer data is worth more). One sender task pops batches oldest first and sends
//! their requests in order; while the endpoint is down it keeps retrying the batch in flight
//! and the others wait, so they are delivered in order once it returns. [`Exporter::shutdown`]
//! closes the queue and drains it within a deadline, cutting a pending backoff short and capping
//! later waits at 1 s so the grace period is spent trying; what is left at the deadline is
//! dropped and counted. Every drop is counted by [`DropReason`] (batches and items).
//!
//! # Retry policy
//!
//! As the OTLP specification says ("OTLP/gRPC" > "Failures", "OTLP/gRPC Throttling"):
//! CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and DATA_LOSS are retried;
//! RESOURCE_EXHAUSTED only when the status carries a `google.rpc.RetryInfo`, whose delay is then
//! honoured; every other code fails at once and the request's items are counted as failed.
//! Failures of our side of the call ([`FailureReason::Timeout`], [`FailureReason::Connect`],
//! [`FailureReason::TlsHandshake`], [`FailureReason::Transport`]) are retried like connection
//! failures. Other waits follow exponential backoff ([`RetryConfig`]: 1 s doubling to 30 s,
//! jitter ×[0.5, 1.5)); while the queue is more than half full they are capped at 5 s
//! (`max_backoff_when_filling`), so an endpoint that comes back is found before data is
//! dropped. Partial successes (rejected points or log records, `error_message`) are not
//! retried; they are logged and counted.
//!
//! # Failure reasons
//!
//! One reason per cause ([`client::classify`]): the code a server answered, or, for failures
//! tonic reports under a borrowed code, our own: `timeout` (our per-attempt timer; tonic says
//! CANCELLED), `connect` (TCP connect failed; tonic says UNAVAILABLE), `tls_handshake`
//! (certificate or protocol problem, with what happened in words, e.g. "handshake failed:
//! client certificate required"; tonic says UNAVAILABLE or UNKNOWN) and `transport` (the
//! connection broke before a gRPC status; tonic says UNKNOWN). `deadline_exceeded` and
//! `cancelled` are only ever what the server said.
//!
//! # Logs
//!
//! Endpoints are logged with credentials and query redacted ([`redact_endpoint`]); header
//! values never. An outage is logged when it starts (warning, with the reason in words) and
//! when it ends (info, with its duration); while it lasts, the exporter says every
//! [`QueueConfig::report_interval`] (60 s) how full its queue is and how long until data is
//! dropped. A dropped batch is logged once: on its own line, or, if one was logged less than an
//! interval ago, counted into the next report.

pub mod channel;
pub mod client;
mod connector;
pub mod convert;
pub mod logs;
pub mod queue;
pub mod signal;
pub mod stats;
pub mod supervise;

pub use channel::{
    ChannelConfig, ChannelError, PemProblem, TlsConfig, TlsSetting, Transport, redact_endpoint,
    tls_client_config,
};
pub use client::{
    ClientConfig, ClientError, DEFAULT_ENDPOINT, ExportError, ExportSuccess, LogsClient,
    MetricsClient, OtlpClient, RetryConfig,
};
pub use convert::{
    ConvertConfig, Converter, DEFAULT_SERVICE_NAME, ResourceConfig, SCOPE_NAME, SCOPE_VERSION,
    Temporality, point_count,
};
pub use logs::{logs_request, record_count};
pub use queue::{
    Batch, DEFAULT_QUEUE_CAPACITY, DEFAULT_REPORT_INTERVAL, Encode, ExportQueue, Exporter,
    ExporterConfig, LogsExporter, MetricsExporter, Prebuilt, PushOutcome, QueueConfig,
    ShutdownReport,
};
pub use signal::{EncodedLogs, EncodedLogsRequest, Logs, Metrics, Signal};
pub use stats::{DropReason, ExportStats, ExportStatsSnapshot, FailureReason};
pub use supervise::{Panicked, panic_message, spawn_supervised};

/// The generated OTLP types this crate speaks, re-exported so users need not pin the crate.
pub use opentelemetry_proto;
