//! flowtel's own telemetry: logs, and the `flowtel.*` metrics.
//!
//! Every metric is described once here as a [`Family`] built from the daemon's counters at read
//! time; the Prometheus endpoint renders the families, and the OTLP self-metrics read the same
//! families, so the two never disagree. Label values come from closed enums (`protocol`,
//! `reason`) or from the bounded exporter table (`exporter`, at most `decoder.max_exporters`
//! addresses plus `other`).
//!
//! Names follow OpenTelemetry (`flowtel.datagrams`, unit `{datagram}`); the Prometheus names are
//! what the OTLP-to-Prometheus translation of Alloy and Mimir produce (`flowtel_datagrams_total`,
//! `flowtel_received_bytes_total`), see [`prometheus_name`].
//!
//! Over OTLP, the families are observable instruments of an `opentelemetry_sdk` meter provider
//! whose periodic reader exports them with the resource of the flow series (the SDK is not used
//! for the flow series themselves: its cardinality cap and timestamps do not fit windows). With
//! `tee_logs`, our own log events (targets `flowtel*`) also go out as OTLP logs through the
//! `opentelemetry-appender-tracing` bridge, for the Netflow dashboard's "Collector logs" panel.
//!
//! Both SDK pipelines end in [`SelfMetricsExporter`] and [`SelfLogExporter`], which send through
//! `flowtel_otlp`'s client built from the same [`crate::config::OtlpConfig::client_config`] as
//! the flow series: one channel builder and one set of rules (endpoint, TLS, CA replacing the
//! roots, mTLS pairing), and the same headers, compression, timeout, retry policy and failure
//! reasons, whatever the environment says (the SDK's own OTLP exporter would re-read
//! `OTEL_EXPORTER_OTLP_*` with other precedence). They give up a request after
//! [`SELF_EXPORT_ATTEMPTS`] attempts, or one during a known outage: the next export carries the
//! same cumulative counters, and the SDK's thread must not wait out an outage. Events about OTLP export itself (targets
//! `flowtel_otlp*`) are not teed: sent to the endpoint they are about, they would feed
//! themselves while it fails.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use flowtel_otlp::opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use flowtel_otlp::opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use flowtel_otlp::opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use flowtel_otlp::opentelemetry_proto::transform::logs::tonic::group_logs_by_resource_and_scope;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{AsyncInstrumentBuilder, MeterProvider as _};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{LogBatch, LogExporter, SdkLoggerProvider};
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::Config;

/// Counter or gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Monotonic, cumulative since start.
    Counter,
    /// Current value.
    Gauge,
}

/// One labelled value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// One metric with all its label sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// OpenTelemetry name, e.g. `flowtel.datagrams`.
    pub name: &'static str,
    /// UCUM unit, e.g. `By`, `{datagram}`, `s`.
    pub unit: &'static str,
    pub kind: Kind,
    pub help: &'static str,
    pub samples: Vec<Sample>,
}

impl Family {
    pub fn new(name: &'static str, unit: &'static str, kind: Kind, help: &'static str) -> Self {
        Family {
            name,
            unit,
            kind,
            help,
            samples: Vec::new(),
        }
    }

    pub fn with(mut self, labels: Vec<(&'static str, String)>, value: u64) -> Self {
        self.samples.push(Sample {
            labels,
            value: value as f64,
        });
        self
    }

    pub fn push(&mut self, labels: Vec<(&'static str, String)>, value: u64) {
        self.samples.push(Sample {
            labels,
            value: value as f64,
        });
    }
}

/// The Prometheus name the OTLP-to-Prometheus translation (Alloy's `otelcol.exporter.prometheus`,
/// Mimir's OTLP endpoint) gives a metric: dots become underscores, the unit becomes a suffix
/// (`By` -> `_bytes`, `s` -> `_seconds`, `us` -> `_microseconds`; annotations such as `{datagram}` add nothing), and
/// counters end in `_total`.
pub fn prometheus_name(name: &str, unit: &str, kind: Kind) -> String {
    let mut out = sanitize(name);
    let suffix = match unit {
        "By" => Some("bytes"),
        "By/s" => Some("bytes_per_second"),
        "s" => Some("seconds"),
        "ms" => Some("milliseconds"),
        "us" => Some("microseconds"),
        "bit" => Some("bits"),
        _ => None,
    };
    if let Some(s) = suffix
        && !out.ends_with(s)
    {
        out.push('_');
        out.push_str(s);
    }
    if kind == Kind::Counter && !out.ends_with("_total") {
        out.push_str("_total");
    }
    out
}

/// A valid Prometheus metric or label name: `[a-zA-Z_:][a-zA-Z0-9_:]*`, anything else as `_`.
pub fn sanitize(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 1);
    for (i, c) in name.chars().enumerate() {
        if i == 0 && c.is_ascii_digit() {
            out.push('_');
        }
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    out
}

/// Install the log subscriber: `RUST_LOG` when set, else the configured `log_level`; with
/// `tee`, our own events (targets `flowtel*`) also go to that OTLP logger provider.
///
/// At the levels `error`, `warn` and `info`, the Kafka client's own events are left out: it
/// logs every connection attempt, retry and failed request, which the kafka sink reports in
/// its own words (once when an outage starts, then every 30 s). `debug`, `trace` or a
/// `RUST_LOG` filter naming `rskafka` shows them.
pub fn init_logging(config: &Config, tee: Option<&SdkLoggerProvider>) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::try_new(v)?,
        _ => EnvFilter::try_new(log_filter(&config.log_level))?,
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false);
    // Only our own events, and not those about OTLP export itself: the exporter (its transport,
    // tonic, h2, hyper, and `flowtel_otlp`'s failure reports) must not feed itself.
    let bridge = tee.map(|p| {
        opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(p).with_filter(
            tracing_subscriber::filter::filter_fn(|m| {
                m.target().starts_with("flowtel") && !m.target().starts_with("flowtel_otlp")
            }),
        )
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(bridge)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))?;
    Ok(())
}

/// The filter of a configured `log_level` (see [`init_logging`]).
pub fn log_filter(level: &str) -> String {
    let level = level.trim();
    if matches!(level, "error" | "warn" | "info") {
        format!("{level},rskafka=off")
    } else {
        level.to_owned()
    }
}

/// The resource as OpenTelemetry key-values (same attributes as the flow series').
pub fn sdk_resource(r: &flowtel_otlp::ResourceConfig) -> opentelemetry_sdk::Resource {
    let mut attrs = vec![KeyValue::new("service.name", r.service_name.clone())];
    for (k, v) in [
        ("service.version", &r.service_version),
        ("service.instance.id", &r.service_instance_id),
        ("host.name", &r.host_name),
    ] {
        if let Some(v) = v {
            attrs.push(KeyValue::new(k, v.clone()));
        }
    }
    for (k, v) in &r.extra {
        attrs.push(KeyValue::new(k.clone(), v.clone()));
    }
    opentelemetry_sdk::Resource::builder_empty()
        .with_attributes(attrs)
        .build()
}

/// Attempts per export of our own metrics or logs (the flow series retry until the queue
/// drops them).
pub const SELF_EXPORT_ATTEMPTS: u32 = 3;

/// A client for our own telemetry: the flow series' settings, bounded retries.
fn self_client<S: flowtel_otlp::Signal>(
    config: &Config,
    name: &str,
) -> anyhow::Result<flowtel_otlp::OtlpClient<S>> {
    let mut c = config.otlp.client_config(name)?;
    c.retry.max_attempts = Some(SELF_EXPORT_ATTEMPTS);
    flowtel_otlp::OtlpClient::new(&c, Arc::default())
        .with_context(|| format!("cannot set up the OTLP {name} exporter"))
}

/// Runs one export on the daemon's runtime and waits for it from any thread (the SDK calls
/// exporters from its own threads, through `futures_executor::block_on`). While the endpoint is
/// known to be failing, one attempt only: the SDK's thread must not wait out an outage (at
/// shutdown it gives the last export 5 s).
async fn export_on<S: flowtel_otlp::Signal>(
    runtime: &tokio::runtime::Handle,
    client: &flowtel_otlp::OtlpClient<S>,
    request: S::Request,
) -> OTelSdkResult {
    let client = client.clone();
    let export = async move {
        if client.stats().failing() {
            client.export_once(request).await
        } else {
            client.export(request).await
        }
    };
    match runtime.spawn(export).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(OTelSdkError::InternalFailure(e.to_string())),
        Err(e) => Err(OTelSdkError::InternalFailure(e.to_string())),
    }
}

/// The SDK's metric exporter for our own metrics: `flowtel_otlp`'s metrics client.
#[derive(Debug)]
pub struct SelfMetricsExporter {
    client: flowtel_otlp::MetricsClient,
    runtime: tokio::runtime::Handle,
}

impl PushMetricExporter for SelfMetricsExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let request = ExportMetricsServiceRequest::from(metrics);
        export_on(&self.runtime, &self.client, request).await
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.client.expedite_retries();
        Ok(())
    }

    fn temporality(&self) -> Temporality {
        Temporality::Cumulative
    }
}

/// The SDK's log exporter for `tee_logs`: `flowtel_otlp`'s logs client.
#[derive(Debug)]
pub struct SelfLogExporter {
    client: flowtel_otlp::LogsClient,
    runtime: tokio::runtime::Handle,
    resource: ResourceAttributesWithSchema,
}

impl LogExporter for SelfLogExporter {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        let request = ExportLogsServiceRequest {
            resource_logs: group_logs_by_resource_and_scope(&batch, &self.resource),
        };
        export_on(&self.runtime, &self.client, request).await
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.client.expedite_retries();
        Ok(())
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.resource = resource.into();
    }
}

/// The OTLP logger provider for `tee_logs`. Must be called inside the daemon's runtime.
pub fn logger_provider(
    config: &Config,
    resource: &flowtel_otlp::ResourceConfig,
) -> anyhow::Result<SdkLoggerProvider> {
    let exporter = SelfLogExporter {
        client: self_client(config, "self-logs")?,
        runtime: tokio::runtime::Handle::current(),
        resource: ResourceAttributesWithSchema::default(),
    };
    Ok(SdkLoggerProvider::builder()
        .with_resource(sdk_resource(resource))
        .with_batch_exporter(exporter)
        .build())
}

/// Collects the families at most once per second, however many instruments ask.
struct Cache {
    collect: Box<dyn Fn() -> Vec<Family> + Send + Sync>,
    last: Mutex<Option<(Instant, Arc<Vec<Family>>)>>,
}

impl Cache {
    fn get(&self) -> Arc<Vec<Family>> {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, f)) = last.as_ref()
            && at.elapsed() < Duration::from_secs(1)
        {
            return Arc::clone(f);
        }
        let f = Arc::new((self.collect)());
        *last = Some((Instant::now(), Arc::clone(&f)));
        f
    }

    fn observe(&self, name: &str) -> Vec<(u64, Vec<KeyValue>)> {
        self.get()
            .iter()
            .filter(|f| f.name == name)
            .flat_map(|f| f.samples.iter())
            .map(|s| {
                let attrs = s
                    .labels
                    .iter()
                    .map(|(k, v)| KeyValue::new(*k, v.clone()))
                    .collect();
                (s.value as u64, attrs)
            })
            .collect()
    }
}

/// An observable instrument reporting family `f` from the cache.
fn observed<'a, I>(
    builder: AsyncInstrumentBuilder<'a, I, u64>,
    f: &Family,
    cache: Arc<Cache>,
) -> AsyncInstrumentBuilder<'a, I, u64> {
    let name = f.name;
    builder
        .with_unit(f.unit)
        .with_description(f.help)
        .with_callback(move |obs| {
            for (v, attrs) in cache.observe(name) {
                obs.observe(v, &attrs);
            }
        })
}

/// Export the families returned by `collect` every `interval` over OTLP, as observable
/// counters and gauges of the meter `flowtel`. Must be called inside the daemon's runtime.
pub fn start_self_metrics(
    config: &Config,
    resource: &flowtel_otlp::ResourceConfig,
    collect: Box<dyn Fn() -> Vec<Family> + Send + Sync>,
) -> anyhow::Result<SdkMeterProvider> {
    let exporter = SelfMetricsExporter {
        client: self_client(config, "self-metrics")?,
        runtime: tokio::runtime::Handle::current(),
    };
    let reader = PeriodicReader::builder(exporter)
        .with_interval(Duration::from_secs(
            config.self_metrics_interval_secs.max(1),
        ))
        .build();
    let provider = SdkMeterProvider::builder()
        .with_resource(sdk_resource(resource))
        .with_reader(reader)
        .build();
    let meter = provider.meter("flowtel");
    let cache = Arc::new(Cache {
        collect,
        last: Mutex::new(None),
    });
    for f in cache.get().iter() {
        let c = Arc::clone(&cache);
        match f.kind {
            Kind::Counter => {
                observed(meter.u64_observable_counter(f.name), f, c).build();
            }
            Kind::Gauge => {
                observed(meter.u64_observable_gauge(f.name), f, c).build();
            }
        }
    }
    Ok(provider)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_names_match_the_otlp_translation() {
        assert_eq!(
            prometheus_name("network.io.by_flow", "By", Kind::Gauge),
            "network_io_by_flow_bytes"
        );
        assert_eq!(
            prometheus_name("kentik.rollup.bytes_by_flow", "By", Kind::Gauge),
            "kentik_rollup_bytes_by_flow_bytes"
        );
        assert_eq!(
            prometheus_name("flowtel.datagrams", "{datagram}", Kind::Counter),
            "flowtel_datagrams_total"
        );
        assert_eq!(
            prometheus_name("flowtel.received", "By", Kind::Counter),
            "flowtel_received_bytes_total"
        );
        assert_eq!(
            prometheus_name("flowtel.queue.depth", "{window}", Kind::Gauge),
            "flowtel_queue_depth"
        );
        assert_eq!(sanitize("network.local.address"), "network_local_address");
        assert_eq!(sanitize("otel.metric.overflow"), "otel_metric_overflow");
        assert_eq!(sanitize("1x-y"), "_1x_y");
    }
}
