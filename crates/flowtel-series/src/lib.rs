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

/// One emitted data point of one series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Point {
    /// Metric name, e.g. `network.io.by_flow`.
    pub metric: Arc<str>,
    /// UCUM unit, e.g. `By`.
    pub unit: Arc<str>,
    /// Attributes in a stable order (the rollup's dimension order, overflow marker last).
    pub attributes: Vec<(Arc<str>, AttrValue)>,
    /// Sampling-corrected value for the window.
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
