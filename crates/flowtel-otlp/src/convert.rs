//! `WindowBatch`es -> `ExportMetricsServiceRequest`s.
//!
//! A pure conversion apart from the running totals that [`Temporality::CumulativeSum`] needs;
//! no I/O, no clock. The output layout follows the OTLP metrics data model
//! (opentelemetry-proto `metrics.proto`): one `ResourceMetrics` (the configured resource), one
//! `ScopeMetrics` (scope `flowtel` + crate version), and one `Metric` per metric name holding all of
//! that name's points, in the order the names first appear.

use std::collections::HashMap;
use std::sync::Arc;

use flowtel_series::{AttrValue, Point, PointKind, WindowBatch};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// Instrumentation scope name of every metric we emit.
pub const SCOPE_NAME: &str = "flowtel";
/// Instrumentation scope version (this crate's version).
pub const SCOPE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Default `service.name` resource attribute.
pub const DEFAULT_SERVICE_NAME: &str = "flowtel";

/// The OTLP resource every request carries (OTel resource semantic conventions:
/// `service.name`, `service.version`, `service.instance.id`, `host.name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceConfig {
    /// `service.name`; default `flowtel`.
    pub service_name: String,
    /// `service.version`; omitted when `None`.
    pub service_version: Option<String>,
    /// `service.instance.id`; omitted when `None`.
    pub service_instance_id: Option<String>,
    /// `host.name`; omitted when `None`.
    pub host_name: Option<String>,
    /// Further attributes (e.g. from `OTEL_RESOURCE_ATTRIBUTES`), appended in this order. A key
    /// equal to one of the named fields above replaces that field's value.
    pub extra: Vec<(String, String)>,
}

impl Default for ResourceConfig {
    fn default() -> Self {
        Self {
            service_name: DEFAULT_SERVICE_NAME.to_owned(),
            service_version: None,
            service_instance_id: None,
            host_name: None,
            extra: Vec::new(),
        }
    }
}

impl ResourceConfig {
    /// The OTLP `Resource`: the named attributes first (in the order of the fields), then
    /// `extra`; a repeated key keeps its first position and takes the last value.
    pub fn to_proto(&self) -> Resource {
        let mut attrs: Vec<(String, String)> = Vec::new();
        let mut put = |key: &str, value: &str| {
            if let Some(slot) = attrs.iter_mut().find(|(k, _)| k == key) {
                slot.1 = value.to_owned();
            } else {
                attrs.push((key.to_owned(), value.to_owned()));
            }
        };
        put("service.name", &self.service_name);
        if let Some(v) = &self.service_version {
            put("service.version", v);
        }
        if let Some(v) = &self.service_instance_id {
            put("service.instance.id", v);
        }
        if let Some(v) = &self.host_name {
            put("host.name", v);
        }
        for (k, v) in &self.extra {
            put(k, v);
        }
        Resource {
            attributes: attrs
                .into_iter()
                .map(|(k, v)| key_value(k, any_value::Value::StringValue(v)))
                .collect(),
            ..Default::default()
        }
    }
}

/// How flow totals ([`PointKind::Total`]) are written to OTLP.
///
/// The other kinds follow the OTLP instrument they stand for, as an OpenTelemetry SDK writes
/// them: a counter's increases ([`PointKind::Increase`]) are a monotonic `Sum`, delta with
/// [`Temporality::DeltaSum`] and cumulative (running totals, as below) otherwise, never a
/// gauge of the increase; levels ([`PointKind::Level`], UpDownCounters) are always a
/// non-monotonic cumulative `Sum` whose value is the level and whose start time is the
/// series' first window (an SDK's delta preference leaves UpDownCounters cumulative too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Temporality {
    /// A `Gauge` whose points carry the window's start and end (`start_time_unix_nano`,
    /// `time_unix_nano`) and the window's total as an int. What ktranslate emits and what
    /// Grafana's Netflow integration expects. The default.
    #[default]
    Gauge,
    /// A monotonic `Sum` with `AGGREGATION_TEMPORALITY_DELTA`: each point is the window's total,
    /// its start the window start.
    DeltaSum,
    /// A monotonic `Sum` with `AGGREGATION_TEMPORALITY_CUMULATIVE`: each point is the series'
    /// running total since its start time, which is the start of the first window in which the
    /// series was seen. A series not seen for [`ConvertConfig::cumulative_idle_nanos`] is
    /// forgotten; if it comes back it restarts from zero with a new start time (a reset, as the
    /// OTLP data model defines one). Totals saturate at `i64::MAX`.
    CumulativeSum,
}

impl Temporality {
    /// Stable lowercase name, for config and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Gauge => "gauge",
            Self::DeltaSum => "delta",
            Self::CumulativeSum => "cumulative",
        }
    }
}

/// Conversion settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertConfig {
    pub resource: ResourceConfig,
    pub temporality: Temporality,
    /// Upper bound of data points in one request; a window with more is split into several
    /// requests. `0` is treated as `1`. Default 10 000.
    pub max_points_per_request: usize,
    /// Cumulative only: forget a series whose last point is older than this (relative to the end
    /// of the newest window converted). Default one hour.
    pub cumulative_idle_nanos: u64,
}

impl Default for ConvertConfig {
    fn default() -> Self {
        Self {
            resource: ResourceConfig::default(),
            temporality: Temporality::Gauge,
            max_points_per_request: 10_000,
            cumulative_idle_nanos: 3_600 * 1_000_000_000,
        }
    }
}

/// How one point is written (see [`Temporality`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The point's own value and start time.
    AsIs,
    /// The series' running total since its first window.
    Running,
    /// The point's value, with the series' first window as start time.
    Level,
}

/// Running total (or, for a level, the last value) of one series.
#[derive(Debug, Clone, Copy)]
struct Running {
    start_time_unix_nano: u64,
    last_time_unix_nano: u64,
    total: u64,
}

type SeriesKey = (Arc<str>, Arc<str>, Vec<(Arc<str>, AttrValue)>);

/// Converts windows into requests. Keeps one running total per series for `CumulativeSum`
/// totals, for counter increases outside `DeltaSum` and for the start time of levels (stateless
/// otherwise), so feed it every window, in window order.
#[derive(Debug)]
pub struct Converter {
    config: ConvertConfig,
    resource: Resource,
    running: HashMap<SeriesKey, Running>,
}

impl Converter {
    pub fn new(config: ConvertConfig) -> Self {
        let resource = config.resource.to_proto();
        Self {
            config,
            resource,
            running: HashMap::new(),
        }
    }

    pub fn config(&self) -> &ConvertConfig {
        &self.config
    }

    /// Series whose running totals are kept (cumulative temporality only; `0` otherwise).
    pub fn tracked_series(&self) -> usize {
        self.running.len()
    }

    /// Converts one window into one or more requests of at most `max_points_per_request` points
    /// each. An empty window gives no request.
    pub fn convert(&mut self, batch: &WindowBatch) -> Vec<ExportMetricsServiceRequest> {
        self.convert_all(std::slice::from_ref(batch))
    }

    /// Converts several windows (in order) into requests of at most `max_points_per_request`
    /// points each; points keep their order, and each request groups its points by metric name.
    pub fn convert_all(&mut self, batches: &[WindowBatch]) -> Vec<ExportMetricsServiceRequest> {
        let max = self.config.max_points_per_request.max(1);
        let mut requests = Vec::new();
        let mut chunk: Vec<(&Point, NumberDataPoint)> = Vec::new();
        for batch in batches {
            for point in &batch.points {
                let dp = self.data_point(batch, point);
                chunk.push((point, dp));
                if chunk.len() == max {
                    requests.push(self.request(std::mem::take(&mut chunk)));
                }
            }
            if !self.running.is_empty() {
                self.evict_idle(batch.time_unix_nano);
            }
        }
        if !chunk.is_empty() {
            requests.push(self.request(chunk));
        }
        requests
    }

    /// How `point` is written: running total, level, or as it is.
    fn mode(&self, point: &Point) -> Mode {
        match (point.kind, self.config.temporality) {
            (PointKind::Total, Temporality::CumulativeSum) => Mode::Running,
            (PointKind::Total, _) => Mode::AsIs,
            (PointKind::Increase, Temporality::DeltaSum) => Mode::AsIs,
            (PointKind::Increase, _) => Mode::Running,
            (PointKind::Level, _) => Mode::Level,
        }
    }

    fn data_point(&mut self, batch: &WindowBatch, point: &Point) -> NumberDataPoint {
        let mode = self.mode(point);
        let (start, value) = match mode {
            Mode::AsIs => (point.start_time_unix_nano, point.value),
            Mode::Running | Mode::Level => {
                let key = (
                    batch.rollup.clone(),
                    point.metric.clone(),
                    point.attributes.clone(),
                );
                let entry = self.running.entry(key).or_insert(Running {
                    start_time_unix_nano: point.start_time_unix_nano,
                    last_time_unix_nano: point.time_unix_nano,
                    total: 0,
                });
                entry.total = match mode {
                    Mode::Level => point.value,
                    _ => entry.total.saturating_add(point.value),
                };
                entry.last_time_unix_nano = point.time_unix_nano;
                (entry.start_time_unix_nano, entry.total)
            }
        };
        NumberDataPoint {
            attributes: point
                .attributes
                .iter()
                .map(|(k, v)| key_value(k.to_string(), attr_value(v)))
                .collect(),
            start_time_unix_nano: start,
            time_unix_nano: point.time_unix_nano,
            // OTLP ints are signed; a window total above i64::MAX (9.2 EB) saturates.
            value: Some(number_data_point::Value::AsInt(
                i64::try_from(value).unwrap_or(i64::MAX),
            )),
            ..Default::default()
        }
    }

    fn evict_idle(&mut self, now_unix_nano: u64) {
        let idle = self.config.cumulative_idle_nanos;
        self.running
            .retain(|_, r| now_unix_nano.saturating_sub(r.last_time_unix_nano) <= idle);
    }

    fn request(&self, points: Vec<(&Point, NumberDataPoint)>) -> ExportMetricsServiceRequest {
        let mut metrics: Vec<Metric> = Vec::new();
        let mut index: HashMap<(&str, &str), usize> = HashMap::new();
        for (point, dp) in points {
            let slot = *index
                .entry((&point.metric, &point.unit))
                .or_insert_with(|| {
                    metrics.push(self.empty_metric(point));
                    metrics.len() - 1
                });
            if let Some(metric) = metrics.get_mut(slot) {
                match &mut metric.data {
                    Some(metric::Data::Gauge(g)) => g.data_points.push(dp),
                    Some(metric::Data::Sum(s)) => s.data_points.push(dp),
                    _ => {}
                }
            }
        }
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(self.resource.clone()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(scope()),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    fn empty_metric(&self, point: &Point) -> Metric {
        let sum = |temporality: AggregationTemporality, is_monotonic: bool| {
            metric::Data::Sum(Sum {
                data_points: Vec::new(),
                aggregation_temporality: temporality as i32,
                is_monotonic,
            })
        };
        use AggregationTemporality::{Cumulative, Delta};
        let data = match (point.kind, self.config.temporality) {
            (PointKind::Total, Temporality::Gauge) => metric::Data::Gauge(Gauge {
                data_points: Vec::new(),
            }),
            (PointKind::Total | PointKind::Increase, Temporality::DeltaSum) => sum(Delta, true),
            (PointKind::Total, Temporality::CumulativeSum) => sum(Cumulative, true),
            (PointKind::Increase, _) => sum(Cumulative, true),
            (PointKind::Level, _) => sum(Cumulative, false),
        };
        Metric {
            name: point.metric.to_string(),
            unit: point.unit.to_string(),
            data: Some(data),
            ..Default::default()
        }
    }
}

/// Number of data points in a request.
pub fn point_count(request: &ExportMetricsServiceRequest) -> u64 {
    let mut n: u64 = 0;
    for rm in &request.resource_metrics {
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let len = match &m.data {
                    Some(metric::Data::Gauge(g)) => g.data_points.len(),
                    Some(metric::Data::Sum(s)) => s.data_points.len(),
                    Some(metric::Data::Histogram(h)) => h.data_points.len(),
                    Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
                    Some(metric::Data::Summary(s)) => s.data_points.len(),
                    None => 0,
                };
                n = n.saturating_add(len as u64);
            }
        }
    }
    n
}

/// The instrumentation scope of everything we send: `flowtel`, this crate's version.
pub(crate) fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: SCOPE_NAME.to_owned(),
        version: SCOPE_VERSION.to_owned(),
        ..Default::default()
    }
}

fn key_value(key: String, value: any_value::Value) -> KeyValue {
    KeyValue {
        key,
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn attr_value(v: &AttrValue) -> any_value::Value {
    match v {
        AttrValue::Str(s) => any_value::Value::StringValue(s.to_string()),
        AttrValue::Int(i) => any_value::Value::IntValue(*i),
        AttrValue::Bool(b) => any_value::Value::BoolValue(*b),
    }
}
