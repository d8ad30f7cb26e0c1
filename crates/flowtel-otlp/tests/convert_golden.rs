//! Snapshot tests of the conversion: the request's `{:#?}` text, compared with
//! `tests/golden/*.txt` and regenerated with `UPDATE_GOLDEN=1`.

use std::sync::Arc;

use flowtel_otlp::opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use flowtel_otlp::{ConvertConfig, Converter, ResourceConfig, Temporality, point_count};
use flowtel_series::{AttrValue, Point, WindowBatch};

const MINUTE: u64 = 60_000_000_000;
const T0: u64 = 1_767_225_600_000_000_000; // 2026-01-01T00:00:00Z

fn s(v: &str) -> Arc<str> {
    Arc::from(v)
}

fn point(metric: &str, unit: &str, src: &str, port: i64, value: u64, window: u64) -> Point {
    Point {
        metric: s(metric),
        unit: s(unit),
        kind: flowtel_series::PointKind::Total,
        attributes: vec![
            (s("network.local.address"), AttrValue::Str(s(src))),
            (s("network.local.port"), AttrValue::Int(port)),
        ],
        value,
        start_time_unix_nano: T0 + window * MINUTE,
        time_unix_nano: T0 + (window + 1) * MINUTE,
    }
}

fn window(n: u64, points: Vec<Point>) -> WindowBatch {
    WindowBatch {
        rollup: s("bytes_by_flow"),
        start_time_unix_nano: T0 + n * MINUTE,
        time_unix_nano: T0 + (n + 1) * MINUTE,
        points,
    }
}

fn first_window() -> WindowBatch {
    let mut overflow = point("network.io.by_flow", "By", "", 0, 7, 0);
    overflow.attributes = vec![(s("otel.metric.overflow"), AttrValue::Bool(true))];
    window(
        0,
        vec![
            point("network.io.by_flow", "By", "192.0.2.1", 443, 1500, 0),
            point(
                "network.packets.by_flow",
                "{packet}",
                "192.0.2.1",
                443,
                3,
                0,
            ),
            point("network.io.by_flow", "By", "2001:db8::1", 53, u64::MAX, 0),
            overflow,
        ],
    )
}

fn second_window() -> WindowBatch {
    window(
        1,
        vec![
            point("network.io.by_flow", "By", "192.0.2.1", 443, 500, 1),
            point("network.io.by_flow", "By", "198.51.100.7", 22, 40, 1),
        ],
    )
}

fn resource() -> ResourceConfig {
    ResourceConfig {
        service_version: Some("0.1.0".into()),
        service_instance_id: Some("instance-1".into()),
        host_name: Some("collector-a".into()),
        extra: vec![
            ("deployment.environment.name".into(), "test".into()),
            ("service.name".into(), "flow".into()),
        ],
        ..Default::default()
    }
}

fn render(requests: &[ExportMetricsServiceRequest]) -> String {
    let mut out = String::new();
    for (i, r) in requests.iter().enumerate() {
        out.push_str(&format!(
            "# request {i}: {} points\n{r:#?}\n",
            point_count(r)
        ));
    }
    out
}

fn check_golden(name: &str, actual: &str) {
    let path = format!("{}/tests/golden/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (run with UPDATE_GOLDEN=1 to create it)"));
    assert!(
        expected == actual,
        "{path} differs from the output (UPDATE_GOLDEN=1 regenerates it):\n{actual}"
    );
}

fn convert(temporality: Temporality, max_points: usize) -> String {
    let mut c = Converter::new(ConvertConfig {
        resource: resource(),
        temporality,
        max_points_per_request: max_points,
        ..Default::default()
    });
    let mut requests = c.convert(&first_window());
    requests.extend(c.convert(&second_window()));
    render(&requests)
}

#[test]
fn gauge_golden() {
    check_golden("gauge", &convert(Temporality::Gauge, 10_000));
}

#[test]
fn delta_sum_golden() {
    check_golden("delta_sum", &convert(Temporality::DeltaSum, 10_000));
}

#[test]
fn cumulative_sum_golden() {
    check_golden(
        "cumulative_sum",
        &convert(Temporality::CumulativeSum, 10_000),
    );
}

#[test]
fn split_golden() {
    check_golden("split_max_3", &convert(Temporality::Gauge, 3));
}

#[test]
fn default_resource_is_service_name_flowtel() {
    let r = ResourceConfig::default().to_proto();
    assert_eq!(r.attributes.len(), 1);
    assert_eq!(r.attributes[0].key, "service.name");
    assert_eq!(
        format!("{:?}", r.attributes[0].value),
        format!(
            "{:?}",
            Some(flowtel_otlp::opentelemetry_proto::tonic::common::v1::AnyValue {
                value: Some(
                    flowtel_otlp::opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                        "flowtel".into()
                    )
                )
            })
        )
    );
}

#[test]
fn split_keeps_every_point_once_and_respects_the_limit() {
    for max in 1..=7 {
        let mut c = Converter::new(ConvertConfig {
            max_points_per_request: max,
            ..Default::default()
        });
        let requests = c.convert_all(&[first_window(), second_window()]);
        let counts: Vec<u64> = requests.iter().map(point_count).collect();
        assert!(
            counts.iter().all(|&n| n >= 1 && n <= max as u64),
            "{max}: {counts:?}"
        );
        assert_eq!(counts.iter().sum::<u64>(), 6, "{max}: {counts:?}");
    }
}

#[test]
fn empty_window_gives_no_request() {
    let mut c = Converter::new(ConvertConfig::default());
    assert!(c.convert(&window(0, Vec::new())).is_empty());
}

#[test]
fn cumulative_forgets_idle_series_and_restarts_them() {
    let mut c = Converter::new(ConvertConfig {
        temporality: Temporality::CumulativeSum,
        cumulative_idle_nanos: 2 * MINUTE,
        ..Default::default()
    });
    let p = |w: u64, v: u64| window(w, vec![point("m", "By", "192.0.2.1", 1, v, w)]);
    let value = |r: &[ExportMetricsServiceRequest]| {
        use flowtel_otlp::opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
        let m = &r[0].resource_metrics[0].scope_metrics[0].metrics[0];
        let Some(metric::Data::Sum(sum)) = &m.data else {
            panic!("not a sum: {m:?}")
        };
        let dp = &sum.data_points[0];
        let Some(number_data_point::Value::AsInt(v)) = dp.value else {
            panic!("not an int: {dp:?}")
        };
        (dp.start_time_unix_nano, v)
    };
    assert_eq!(value(&c.convert(&p(0, 10))), (T0, 10));
    assert_eq!(value(&c.convert(&p(1, 5))), (T0, 15));
    // Another series keeps the clock moving; after 2 idle minutes the first is forgotten.
    c.convert(&window(4, vec![point("m", "By", "192.0.2.2", 1, 1, 4)]));
    assert_eq!(c.tracked_series(), 1);
    assert_eq!(value(&c.convert(&p(5, 7))), (T0 + 5 * MINUTE, 7));
}

/// A sum metric seen over windows: (name, monotonic, temporality, [(start, value)]).
type SeenSum = (String, bool, i32, Vec<(u64, i64)>);

#[test]
fn increases_are_monotonic_sums_and_levels_non_monotonic_whatever_the_temporality() {
    use flowtel_otlp::opentelemetry_proto::tonic::metrics::v1::{
        AggregationTemporality, metric, number_data_point,
    };
    use flowtel_series::PointKind;
    let at = |kind, metric: &str, unit: &str, value, w| Point {
        kind,
        ..point(metric, unit, "192.0.2.1", 1, value, w)
    };
    let windows = [
        window(
            0,
            vec![
                at(PointKind::Increase, "hw.network.io", "By", 100, 0),
                at(PointKind::Level, "hw.network.up", "1", 1, 0),
            ],
        ),
        window(
            1,
            vec![
                at(PointKind::Increase, "hw.network.io", "By", 50, 1),
                at(PointKind::Level, "hw.network.up", "1", 0, 1),
            ],
        ),
    ];
    for temporality in [
        Temporality::Gauge,
        Temporality::DeltaSum,
        Temporality::CumulativeSum,
    ] {
        let mut c = Converter::new(ConvertConfig {
            temporality,
            ..Default::default()
        });
        // (name, monotonic, temporality, [(start, value)]) over both windows.
        let mut seen: Vec<SeenSum> = Vec::new();
        for w in &windows {
            for r in c.convert(w) {
                for m in &r.resource_metrics[0].scope_metrics[0].metrics {
                    let Some(metric::Data::Sum(sum)) = &m.data else {
                        panic!("{temporality:?}: not a sum: {m:?}")
                    };
                    let points = sum.data_points.iter().map(|dp| {
                        let Some(number_data_point::Value::AsInt(v)) = dp.value else {
                            panic!("not an int: {dp:?}")
                        };
                        (dp.start_time_unix_nano, v)
                    });
                    match seen.iter_mut().find(|s| s.0 == m.name) {
                        Some(s) => s.3.extend(points),
                        None => seen.push((
                            m.name.clone(),
                            sum.is_monotonic,
                            sum.aggregation_temporality,
                            points.collect(),
                        )),
                    }
                }
            }
        }
        let cumulative = AggregationTemporality::Cumulative as i32;
        let io = if temporality == Temporality::DeltaSum {
            (
                AggregationTemporality::Delta as i32,
                vec![(T0, 100), (T0 + MINUTE, 50)],
            )
        } else {
            (cumulative, vec![(T0, 100), (T0, 150)])
        };
        assert_eq!(
            seen,
            vec![
                ("hw.network.io".to_owned(), true, io.0, io.1),
                (
                    "hw.network.up".to_owned(),
                    false,
                    cumulative,
                    vec![(T0, 1), (T0, 0)]
                ),
            ],
            "{temporality:?}"
        );
    }
}
