//! The Prometheus text exposition format (0.0.4): flowtel's own metric families and the flow
//! windows of the `prometheus` sink, with the names Alloy and Mimir give the same series after
//! OTLP ingestion ([`crate::telemetry::prometheus_name`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use flowtel_rollup::{AttrValue, WindowBatch};

use crate::telemetry::{Family, Kind, prometheus_name, sanitize};

/// A counter's running total (sum of its increases) or a level's latest value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub kind: flowtel_rollup::PointKind,
    pub unit: std::sync::Arc<str>,
    pub value: u64,
    /// End of the last window that updated it, Unix nanoseconds.
    pub last_ns: u64,
}

/// Content type of the Prometheus text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escape a label value (exposition format: backslash, double quote, line feed).
fn escape_label(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn write_value(v: f64, out: &mut String) {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// Render our own metric families.
pub fn render_families(families: &[Family], out: &mut String) {
    for f in families {
        let name = prometheus_name(f.name, f.unit, f.kind);
        out.push_str("# HELP ");
        out.push_str(&name);
        out.push(' ');
        escape_help(f.help, out);
        out.push('\n');
        let _ = writeln!(
            out,
            "# TYPE {name} {}",
            match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            }
        );
        for s in &f.samples {
            out.push_str(&name);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(k);
                    out.push_str("=\"");
                    escape_label(v, out);
                    out.push('"');
                }
                out.push('}');
            }
            out.push(' ');
            write_value(s.value, out);
            out.push('\n');
        }
    }
}

/// Label pairs of a point's attributes (`{k="v",...}`, without the braces).
fn write_labels(attributes: &[(std::sync::Arc<str>, AttrValue)], out: &mut String) {
    for (i, (k, v)) in attributes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&sanitize(k));
        out.push_str("=\"");
        match v {
            AttrValue::Str(s) => escape_label(s, out),
            AttrValue::Int(n) => {
                let _ = write!(out, "{n}");
            }
            AttrValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        }
        out.push('"');
    }
}

/// Render counters (running totals of increases) and levels, one family per metric name, in
/// name then label order, without timestamps: Prometheus stamps them at the scrape.
pub fn render_running<'a>(
    series: impl IntoIterator<
        Item = (
            &'a std::sync::Arc<str>,
            &'a [(std::sync::Arc<str>, AttrValue)],
            &'a Running,
        ),
    >,
    out: &mut String,
) {
    type Samples<'a> = Vec<(String, u64)>;
    let mut families: BTreeMap<String, (Kind, Samples<'_>)> = BTreeMap::new();
    for (metric, attributes, r) in series {
        let kind = match r.kind {
            flowtel_rollup::PointKind::Increase => Kind::Counter,
            _ => Kind::Gauge,
        };
        let mut labels = String::new();
        write_labels(attributes, &mut labels);
        families
            .entry(prometheus_name(metric, &r.unit, kind))
            .or_insert_with(|| (kind, Vec::new()))
            .1
            .push((labels, r.value));
    }
    for (name, (kind, mut samples)) in families {
        samples.sort();
        let (help, type_name) = match kind {
            Kind::Counter => (
                "Sum of the increases of an sFlow interface counter since flowtel first saw it (wraps and resets handled).",
                "counter",
            ),
            Kind::Gauge => ("Latest value seen in an sFlow counter sample.", "gauge"),
        };
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {type_name}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// Render flow windows as gauges, one family per metric name, each sample stamped with its
/// window's end (milliseconds).
pub fn render_windows<'a>(batches: impl IntoIterator<Item = &'a WindowBatch>, out: &mut String) {
    let mut families: BTreeMap<String, Vec<&flowtel_rollup::Point>> = BTreeMap::new();
    for b in batches {
        for p in b
            .points
            .iter()
            .filter(|p| p.kind == flowtel_rollup::PointKind::Total)
        {
            families
                .entry(prometheus_name(&p.metric, &p.unit, Kind::Gauge))
                .or_default()
                .push(p);
        }
    }
    for (name, points) in families {
        let _ = writeln!(
            out,
            "# HELP {name} Sampling-corrected flow total per window (last complete window)."
        );
        let _ = writeln!(out, "# TYPE {name} gauge");
        for p in points {
            out.push_str(&name);
            out.push('{');
            write_labels(&p.attributes, out);
            let _ = writeln!(out, "}} {} {}", p.value, p.time_unix_nano / 1_000_000);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowtel_rollup::Point;

    fn point(attrs: Vec<(&str, AttrValue)>, value: u64) -> Point {
        Point {
            metric: "network.io.by_flow".into(),
            unit: "By".into(),
            kind: flowtel_rollup::PointKind::Total,
            attributes: attrs.into_iter().map(|(k, v)| (k.into(), v)).collect(),
            value,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            time_unix_nano: 1_700_000_060_000_000_000,
        }
    }

    #[test]
    fn windows_render_with_the_alloy_names_and_the_window_end_timestamp() {
        let batch = WindowBatch {
            rollup: "bytes_by_flow".into(),
            start_time_unix_nano: 1_700_000_000_000_000_000,
            time_unix_nano: 1_700_000_060_000_000_000,
            points: vec![
                point(
                    vec![
                        ("device_name", AttrValue::Str("192.0.2.1".into())),
                        ("network.local.address", AttrValue::Str("10.0.0.1".into())),
                        ("network.peer.port", AttrValue::Int(443)),
                        (
                            "network.protocol.name",
                            AttrValue::Str("say \"hi\"\\".into()),
                        ),
                    ],
                    1500,
                ),
                point(vec![("otel.metric.overflow", AttrValue::Bool(true))], 42),
            ],
        };
        let mut out = String::new();
        render_windows([&batch], &mut out);
        assert_eq!(
            out,
            "# HELP network_io_by_flow_bytes Sampling-corrected flow total per window (last complete window).\n\
             # TYPE network_io_by_flow_bytes gauge\n\
             network_io_by_flow_bytes{device_name=\"192.0.2.1\",network_local_address=\"10.0.0.1\",network_peer_port=\"443\",network_protocol_name=\"say \\\"hi\\\"\\\\\"} 1500 1700000060000\n\
             network_io_by_flow_bytes{otel_metric_overflow=\"true\"} 42 1700000060000\n"
        );
    }

    #[test]
    fn families_render_help_type_and_labels() {
        let f = Family::new(
            "flowtel.datagrams",
            "{datagram}",
            Kind::Counter,
            "Datagrams received.",
        )
        .with(
            vec![
                ("exporter", "192.0.2.1".into()),
                ("protocol", "ipfix".into()),
            ],
            7,
        );
        let g = Family::new(
            "flowtel.queue.depth",
            "{window}",
            Kind::Gauge,
            "Queued windows.",
        )
        .with(vec![], 0);
        let mut out = String::new();
        render_families(&[f, g], &mut out);
        assert_eq!(
            out,
            "# HELP flowtel_datagrams_total Datagrams received.\n\
             # TYPE flowtel_datagrams_total counter\n\
             flowtel_datagrams_total{exporter=\"192.0.2.1\",protocol=\"ipfix\"} 7\n\
             # HELP flowtel_queue_depth Queued windows.\n\
             # TYPE flowtel_queue_depth gauge\n\
             flowtel_queue_depth 0\n"
        );
    }
}
