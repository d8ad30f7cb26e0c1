//! The `otlp` sink: windows as OTLP metrics to an OpenTelemetry endpoint (Alloy on :4317).
//!
//! A thin front for [`flowtel_otlp::Exporter`], which owns the bounded window queue (full: the
//! oldest window is dropped and counted) and the sender task (gzip, TLS, headers, retries with
//! backoff). [`Sink::windows`] only pushes into that queue.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use flowtel_otlp::{ExportStatsSnapshot, FailureReason};
use tracing::{info, warn};

use super::{ShutdownFuture, Sink, SinkStatus, Windows};
use crate::config::Config;
use crate::telemetry::{Family, Kind};

#[derive(Debug)]
pub struct OtlpSink {
    queue: flowtel_otlp::ExportQueue,
    stats: Arc<flowtel_otlp::ExportStats>,
    exporter: Mutex<Option<flowtel_otlp::Exporter>>,
}

impl OtlpSink {
    /// Start the exporter's sender task (on the current tokio runtime).
    pub fn start(config: &Config, resource: &flowtel_otlp::ResourceConfig) -> anyhow::Result<Self> {
        let e = flowtel_otlp::Exporter::start(&exporter_config(config, resource)?)
            .context("cannot set up the OTLP exporter")?;
        info!(endpoint = %config.otlp.endpoint, "exporting over OTLP/gRPC");
        Ok(OtlpSink {
            queue: e.queue(),
            stats: Arc::clone(e.stats()),
            exporter: Mutex::new(Some(e)),
        })
    }
}

impl Sink for OtlpSink {
    fn name(&self) -> &str {
        "otlp"
    }

    fn takes_windows(&self) -> bool {
        true
    }

    fn windows(&self, windows: &Arc<Windows>) {
        for b in &windows.batches {
            // A full queue drops its oldest window; the exporter counts and logs it.
            self.queue.try_push(b.clone());
        }
    }

    fn status(&self) -> SinkStatus {
        let s = self.stats.snapshot();
        SinkStatus {
            item: "window",
            queue_depth: s.queue_depth,
            queue_capacity: self.queue.capacity() as u64,
            delivered: s.batches_queued.saturating_sub(
                s.batches_dropped_queue_full + s.batches_dropped_shutdown + s.queue_depth,
            ),
            dropped: vec![
                ("queue_full", s.batches_dropped_queue_full),
                ("shutdown", s.batches_dropped_shutdown),
            ],
            failing_since_ns: None,
        }
    }

    fn families(&self) -> Vec<Family> {
        export_families(&self.stats.snapshot())
    }

    fn shutdown(&self, deadline: tokio::time::Instant) -> ShutdownFuture<'_> {
        Box::pin(async move {
            let exporter = self
                .exporter
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            if let Some(e) = exporter {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let report = e.shutdown(left).await;
                if report.flushed {
                    info!("export queue drained");
                } else {
                    warn!(
                        windows_dropped = report.batches_dropped,
                        "export queue not drained within the grace period"
                    );
                }
            }
        })
    }
}

pub fn exporter_config(
    config: &Config,
    resource: &flowtel_otlp::ResourceConfig,
) -> anyhow::Result<flowtel_otlp::queue::ExporterConfig> {
    let read = |p: &Option<std::path::PathBuf>, what: &str| -> anyhow::Result<Option<Vec<u8>>> {
        match p {
            Some(p) => Ok(Some(std::fs::read(p).with_context(|| {
                format!("cannot read the OTLP {what} {}", p.display())
            })?)),
            None => Ok(None),
        }
    };
    let o = &config.otlp;
    Ok(flowtel_otlp::queue::ExporterConfig {
        client: flowtel_otlp::ClientConfig {
            endpoint: o.endpoint.clone(),
            gzip: o.compression == crate::config::Compression::Gzip,
            timeout: Duration::from_secs(o.timeout_secs.max(1)),
            headers: o
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            tls: flowtel_otlp::TlsConfig {
                ca_pem: read(&o.ca_file, "CA file")?,
                client_cert_pem: read(&o.client_cert_file, "client certificate")?,
                client_key_pem: read(&o.client_key_file, "client key")?,
                domain_name: None,
            },
            ..flowtel_otlp::ClientConfig::default()
        },
        convert: flowtel_otlp::ConvertConfig {
            resource: resource.clone(),
            temporality: match o.temporality {
                crate::config::Temporality::Gauge => flowtel_otlp::Temporality::Gauge,
                crate::config::Temporality::Delta => flowtel_otlp::Temporality::DeltaSum,
                crate::config::Temporality::Cumulative => flowtel_otlp::Temporality::CumulativeSum,
            },
            max_points_per_request: o.max_points_per_request,
            ..flowtel_otlp::ConvertConfig::default()
        },
        queue_capacity: o.queue_max_windows,
    })
}

/// `flowtel.export.*` and `flowtel.queue.depth` from the OTLP exporter.
fn export_families(e: &ExportStatsSnapshot) -> Vec<Family> {
    let mut failed = Family::new(
        "flowtel.export.failed",
        "{request}",
        Kind::Counter,
        "Failed export attempts, by gRPC status (or timeout).",
    );
    for r in FailureReason::ALL {
        failed.push(vec![("reason", r.as_str().to_owned())], e.failed(r));
    }
    let mut dropped = Family::new(
        "flowtel.export.windows.dropped",
        "{window}",
        Kind::Counter,
        "Windows dropped before export, by reason.",
    );
    dropped.push(
        vec![("reason", "queue_full".to_owned())],
        e.batches_dropped_queue_full,
    );
    dropped.push(
        vec![("reason", "shutdown".to_owned())],
        e.batches_dropped_shutdown,
    );
    let c = |name, unit, help, v: u64| Family::new(name, unit, Kind::Counter, help).with(vec![], v);
    vec![
        c(
            "flowtel.export.requests",
            "{request}",
            "Export requests answered OK.",
            e.requests_ok,
        ),
        failed,
        c(
            "flowtel.export.retries",
            "{request}",
            "Export attempts made after a retryable failure.",
            e.retries,
        ),
        c(
            "flowtel.export.points.sent",
            "{point}",
            "Data points in requests answered OK.",
            e.points_sent,
        ),
        c(
            "flowtel.export.points.rejected",
            "{point}",
            "Data points the receiver rejected in a partial success.",
            e.points_rejected,
        ),
        c(
            "flowtel.export.points.failed",
            "{point}",
            "Data points given up on (non-retryable error or shutdown).",
            e.points_failed,
        ),
        c(
            "flowtel.export.windows.queued",
            "{window}",
            "Windows accepted by the export queue.",
            e.batches_queued,
        ),
        dropped,
        Family::new(
            "flowtel.queue.depth",
            "{window}",
            Kind::Gauge,
            "Windows waiting in the export queue.",
        )
        .with(vec![], e.queue_depth),
    ]
}
