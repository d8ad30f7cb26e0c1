//! flowtel's own telemetry: logs, and the `flowtel.*` metrics.
//!
//! Every metric is described once here as a [`Family`] built from the daemon's counters at read
//! time; the Prometheus endpoint renders the families, and the OTLP self-metrics read the same
//! families, so the two never disagree. Label values come from closed enums (`protocol`,
//! `reason`) or from the bounded exporter table (`exporter`, at most
//! [`crate::daemon::stats::MAX_EXPORTERS`] addresses plus `other`).
//!
//! Names follow OpenTelemetry (`flowtel.datagrams`, unit `{datagram}`); the Prometheus names are
//! what the OTLP-to-Prometheus translation of Alloy and Mimir produce (`flowtel_datagrams_total`,
//! `flowtel_received_bytes_total`), see [`prometheus_name`].

use tracing_subscriber::EnvFilter;

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
/// (`By` -> `_bytes`, `s` -> `_seconds`; annotations such as `{datagram}` add nothing), and
/// counters end in `_total`.
pub fn prometheus_name(name: &str, unit: &str, kind: Kind) -> String {
    let mut out = sanitize(name);
    let suffix = match unit {
        "By" => Some("bytes"),
        "s" => Some("seconds"),
        "ms" => Some("milliseconds"),
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

/// Install the log subscriber: `RUST_LOG` when set, else the configured `log_level`.
pub fn init_logging(config: &Config) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::try_new(v)?,
        _ => EnvFilter::try_new(&config.log_level)?,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the log subscriber: {e}"))?;
    Ok(())
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
