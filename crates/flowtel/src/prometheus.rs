//! The `prometheus` sink and the health endpoints, on `prometheus_listen` (default
//! `0.0.0.0:9464`).
//!
//! - `GET /metrics`: the last complete window of every rollup, with the names Alloy and Mimir
//!   give the same series after OTLP ingestion (`network_io_by_flow_bytes{device_name=…,
//!   network_local_address=…}`), plus flowtel's own metrics. Each flow sample carries the
//!   window's end as its timestamp, so a Prometheus that scrapes several times per window still
//!   stores one sample per series per window (repeated identical samples are deduplicated) —
//!   what the Netflow dashboard's `sum_over_time(...[$__range])` expects.
//! - `GET /healthz`: 200 while the process runs (container HEALTHCHECK, liveness probe).
//! - `GET /readyz`: 200 once every socket is bound and the workers run, 503 before and while
//!   shutting down (readiness probe).
//!
//! The listener always runs (the health endpoints are needed whatever the sinks); flow series
//! appear on `/metrics` only when the `prometheus` sink is configured.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use flowtel_rollup::{AttrValue, WindowBatch};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::telemetry::{Family, Kind, prometheus_name, sanitize};

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

/// Render flow windows as gauges, one family per metric name, each sample stamped with its
/// window's end (milliseconds).
pub fn render_windows<'a>(batches: impl IntoIterator<Item = &'a WindowBatch>, out: &mut String) {
    let mut families: BTreeMap<String, Vec<&flowtel_rollup::Point>> = BTreeMap::new();
    for b in batches {
        for p in &b.points {
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
            for (i, (k, v)) in p.attributes.iter().enumerate() {
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
            let _ = writeln!(out, "}} {} {}", p.value, p.time_unix_nano / 1_000_000);
        }
    }
}

/// What the HTTP endpoint serves.
pub struct Endpoint {
    /// Produces the `/metrics` body.
    pub metrics: Box<dyn Fn() -> String + Send + Sync>,
    /// `/readyz` answers 200 while this is true.
    pub ready: Arc<AtomicBool>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("ready", &self.ready.load(Ordering::Relaxed))
            .finish()
    }
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn route(endpoint: &Endpoint, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match req.uri().path() {
        "/metrics" => respond(StatusCode::OK, CONTENT_TYPE, (endpoint.metrics)()),
        "/healthz" => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        "/readyz" if endpoint.ready.load(Ordering::Relaxed) => {
            respond(StatusCode::OK, "text/plain", "ready\n".into())
        }
        "/readyz" => respond(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready\n".into(),
        ),
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "see /metrics, /healthz, /readyz\n".into(),
        ),
    }
}

/// Bind the endpoint; the returned future serves until dropped.
pub async fn bind(
    addr: SocketAddr,
    endpoint: Endpoint,
) -> anyhow::Result<(SocketAddr, impl Future<Output = ()>)> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} for /metrics: {e}"))?;
    let local = listener.local_addr()?;
    let endpoint = Arc::new(endpoint);
    let serve = async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "metrics endpoint accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let endpoint = Arc::clone(&endpoint);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let resp = route(&endpoint, &req);
                    async move { Ok::<_, Infallible>(resp) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await
                {
                    debug!(peer = %peer, error = %e, "metrics connection ended");
                }
            });
        }
    };
    Ok((local, serve))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowtel_rollup::Point;

    fn point(attrs: Vec<(&str, AttrValue)>, value: u64) -> Point {
        Point {
            metric: "network.io.by_flow".into(),
            unit: "By".into(),
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
