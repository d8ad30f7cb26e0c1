//! The `otlp` sink: windows as OTLP metrics to an OpenTelemetry endpoint (Alloy on :4317).
//!
//! A thin front for [`flowtel_otlp::Exporter`], which owns the bounded window queue (full: the
//! oldest window is dropped and counted) and the sender task (gzip, TLS, headers, retries with
//! backoff). [`Sink::windows`] only pushes into that queue.

use std::sync::{Arc, Mutex};

use anyhow::Context;
use flowtel_otlp::{ExportStatsSnapshot, FailureReason};
use tracing::{info, warn};

use crate::metrics::{
    EXPORT_FAILED, EXPORT_FAILING, EXPORT_POINTS_DROPPED, EXPORT_POINTS_FAILED,
    EXPORT_POINTS_REJECTED, EXPORT_POINTS_SENT, EXPORT_QUEUE_DEPTH, EXPORT_REQUESTS,
    EXPORT_RETRIES, EXPORT_WINDOWS_DROPPED, EXPORT_WINDOWS_QUEUED,
};

use super::{ShutdownFuture, Sink, SinkStatus, Windows};
use crate::config::Config;
use crate::telemetry::Family;

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
        info!(
            endpoint = %flowtel_otlp::channel::redact_endpoint(&config.otlp.endpoint),
            "exporting over OTLP/gRPC"
        );
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
            let _ = self.queue.try_push(b.clone());
        }
    }

    fn status(&self) -> SinkStatus {
        let s = self.stats.snapshot();
        let dropped: Vec<(&'static str, u64)> = flowtel_otlp::DropReason::ALL
            .iter()
            .map(|r| (r.as_str(), s.batches_dropped(*r)))
            .collect();
        let all_dropped: u64 = dropped.iter().map(|(_, n)| n).sum();
        SinkStatus {
            item: "window",
            queue_depth: s.queue_depth,
            queue_capacity: self.queue.capacity() as u64,
            delivered: s.batches_queued.saturating_sub(all_dropped + s.queue_depth),
            dropped,
            failing_since_ns: s
                .failing_since_unix_ms
                .map(|ms| ms.saturating_mul(1_000_000)),
        }
    }

    fn families(&self) -> Vec<Family> {
        export_families(&self.stats.snapshot())
    }

    fn panicked(&self) -> Option<String> {
        self.queue.panicked()
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
    let o = &config.otlp;
    Ok(flowtel_otlp::queue::ExporterConfig {
        client: o.client_config("otlp")?,
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
        queue: flowtel_otlp::QueueConfig {
            capacity: o.queue_max_windows,
            ..flowtel_otlp::QueueConfig::default()
        },
    })
}

/// `flowtel.export.*` and `flowtel.queue.depth` from the OTLP exporter.
fn export_families(e: &ExportStatsSnapshot) -> Vec<Family> {
    let mut failed = EXPORT_FAILED.family();
    for r in FailureReason::ALL {
        failed.push(vec![("reason", r.as_str().to_owned())], e.failed(r));
    }
    let (mut dropped, mut dropped_points) = (
        EXPORT_WINDOWS_DROPPED.family(),
        EXPORT_POINTS_DROPPED.family(),
    );
    for r in flowtel_otlp::DropReason::ALL {
        let l = || vec![("reason", r.as_str().to_owned())];
        dropped.push(l(), e.batches_dropped(r));
        dropped_points.push(l(), e.items_dropped(r));
    }
    vec![
        EXPORT_REQUESTS.value(e.requests_ok),
        failed,
        EXPORT_RETRIES.value(e.retries),
        EXPORT_POINTS_SENT.value(e.items_sent),
        EXPORT_POINTS_REJECTED.value(e.items_rejected),
        EXPORT_POINTS_FAILED.value(e.items_failed),
        EXPORT_WINDOWS_QUEUED.value(e.batches_queued),
        dropped,
        dropped_points,
        EXPORT_QUEUE_DEPTH.value(e.queue_depth),
        EXPORT_FAILING.value(u64::from(e.failing_since_unix_ms.is_some())),
    ]
}
