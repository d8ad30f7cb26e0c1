//! What a rollup emits: one point per series per window.
//!
//! These types are the contract between the rollup (`flowtel-rollup`, which produces them) and
//! the metric sinks (`flowtel-otlp`, stdout, Prometheus, which consume them). They carry no
//! NetFlow knowledge, so an exporter depends on this crate and nothing of the decoder.

use std::sync::Arc;

use serde::Serialize;

/// An attribute value. Flow dimensions are strings or integers; the overflow marker is a bool.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum AttrValue {
    Str(Arc<str>),
    Int(i64),
    Bool(bool),
}

/// What a point's value is, and so how a sink writes it (the OpenTelemetry instrument it
/// stands for).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PointKind {
    /// A flow rollup's total for the window: written as the configured temporality (a gauge
    /// by default: ktranslate's points, what the Netflow integration expects).
    #[default]
    Total,
    /// How much a monotonic counter (an interface's octets, packets, errors) grew during the
    /// window: always a monotonic sum (delta points with the delta temporality, else running
    /// totals: a cumulative sum) and a Prometheus counter; never a gauge of the increase.
    Increase,
    /// A level seen during the window, the last one (link speed, link status): an
    /// UpDownCounter, i.e. a non-monotonic cumulative sum in OTLP, a gauge in Prometheus.
    Level,
}

impl PointKind {
    /// Whether this is [`PointKind::Total`] (left out of serialized points).
    pub fn is_total(&self) -> bool {
        *self == PointKind::Total
    }
}

/// One emitted data point of one series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Point {
    /// Metric name, e.g. `network.io.by_flow`.
    pub metric: Arc<str>,
    /// UCUM unit, e.g. `By`.
    pub unit: Arc<str>,
    /// What the value is; every point of one metric has the same kind.
    #[serde(skip_serializing_if = "PointKind::is_total")]
    pub kind: PointKind,
    /// Attributes in a stable order (the rollup's dimension order, overflow marker last).
    pub attributes: Vec<(Arc<str>, AttrValue)>,
    /// The value for the window: a flow total (sampling-corrected), a counter's increase or a
    /// level, as [`Point::kind`] says.
    pub value: u64,
    /// Window start, Unix nanoseconds.
    pub start_time_unix_nano: u64,
    /// Window end, Unix nanoseconds.
    pub time_unix_nano: u64,
}

/// Everything one rollup emitted for one window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowBatch {
    /// The rollup's name.
    pub rollup: Arc<str>,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    pub points: Vec<Point>,
}
