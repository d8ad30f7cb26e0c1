//! The per-flow sinks end to end: the real binary receives a real exporter's capture over UDP
//! and every record comes out once, equal to what `flowtel decode` prints for the capture.

mod common;

use std::net::{SocketAddr, UdpSocket};

use common::{Daemon, fixtures};

/// Send a fixture capture's datagrams, in order, from one socket (one exporter).
pub fn replay(name: &str, to: SocketAddr) -> usize {
    let datagrams = flowtel_pcap::read_all(fixtures().join(name)).unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in &datagrams {
        sender.send_to(&d.payload, to).unwrap();
    }
    datagrams.len()
}

/// JSON lines as values, without the fields that depend on when and from which port the
/// datagrams were sent (the capture's clock and source port versus the replay's).
pub fn normalized(lines: &str) -> Vec<serde_json::Value> {
    lines
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("time_received_ns");
            o.remove("exporter_port");
            v
        })
        .collect()
}

#[test]
fn flow_json_file_holds_every_record_once_as_decode_prints_it() {
    for capture in [
        "softflowd-v9.pcap",
        "softflowd-ipfix.pcap",
        "softflowd-v5.pcap",
    ] {
        let dir = common::ScratchDir::new("flow-json");
        let file = dir.join(format!("{capture}.json"));
        let _ = std::fs::remove_file(&file);
        let d = Daemon::start(&[
            "--sink",
            "flow-json",
            "--flow-json-file",
            file.to_str().unwrap(),
        ]);
        replay(capture, d.listen);
        d.metrics_until("every record handed to the sink", |b| {
            common::sample(b, "flowtel_flow_records_selected_total").is_some_and(|n| n > 0.0)
                && common::sample(b, "flowtel_sink_queue_depth{sink=\"flow-json\"}") == Some(0.0)
        });
        let (status, _, stderr) = d.terminate();
        assert!(status.success(), "{stderr}");
        let written = std::fs::read_to_string(&file).unwrap();
        let (decoded, _) = common::decode_fixture(capture.trim_end_matches(".pcap"), "flow-json");
        let (got, want) = (normalized(&written), normalized(&decoded));
        assert_eq!(got.len(), want.len(), "{capture}: record count");
        assert!(!got.is_empty());
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{capture}: record {i}");
        }
    }
}

#[test]
fn flow_json_on_stdout_and_record_rules_and_sampling_apply() {
    let d = Daemon::start(&[
        "--sink",
        "flow-json",
        "--flow-rule",
        "drop:dst_port=443",
        "--flow-sample",
        "2",
    ]);
    replay("softflowd-v9.pcap", d.listen);
    let body = d.metrics_until("the capture's 227 records accounted for", |b| {
        let s = |k: &str| common::sample(b, k).unwrap_or(0.0);
        s("flowtel_flow_records_selected_total")
            + s("flowtel_flow_records_skipped_total{reason=\"rule\"}")
            + s("flowtel_flow_records_skipped_total{reason=\"sample\"}")
            == 227.0
    });
    let (status, stdout, _) = d.terminate();
    assert!(status.success());
    let lines = normalized(&stdout);
    let selected = common::sample(&body, "flowtel_flow_records_selected_total").unwrap();
    assert_eq!(lines.len() as f64, selected);
    assert!(lines.iter().all(|v| v["dst_port"] != 443));
    assert!(
        lines.iter().all(|v| v["sampling_rate"] == 2),
        "1 in 2 doubles the rate"
    );
    let (decoded, _) = common::decode_fixture("softflowd-v9", "flow-json");
    let not_443 = normalized(&decoded)
        .into_iter()
        .filter(|v| v["dst_port"] != 443)
        .count();
    assert_eq!(
        lines.len(),
        not_443.div_ceil(2),
        "every second record of {not_443}"
    );
}

/// A log record's attribute as JSON (strings, ints, bools).
fn attr(
    r: &flowtel_otlp::opentelemetry_proto::tonic::logs::v1::LogRecord,
    key: &str,
) -> serde_json::Value {
    use flowtel_otlp::opentelemetry_proto::tonic::common::v1::any_value::Value;
    match r
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
    {
        Some(Value::StringValue(s)) => serde_json::Value::from(s.clone()),
        Some(Value::IntValue(i)) => serde_json::Value::from(*i),
        Some(Value::BoolValue(b)) => serde_json::Value::from(*b),
        _ => serde_json::Value::Null,
    }
}

#[test]
fn flow_logs_deliver_every_record_once_as_decode_prints_it_through_refusals() {
    let alloy = common::Alloy::start();
    // The first exports are refused: retried, nothing lost, nothing twice.
    alloy.refuse_first_logs(2);
    let d = Daemon::start(&["--sink", "flow-logs", "--otlp-endpoint", &alloy.endpoint()]);
    replay("softflowd-v9.pcap", d.listen);
    let (decoded, _) = common::decode_fixture("softflowd-v9", "flow-json");
    let want = normalized(&decoded);
    let start = std::time::Instant::now();
    while alloy.with(|r| r.log_records.len()) < want.len() {
        assert!(
            start.elapsed() < common::PATIENCE,
            "{} of {}",
            alloy.with(|r| r.log_records.len()),
            want.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    assert!(alloy.with(|r| r.refused_logs) == 2);
    let got = alloy.with(|r| r.log_records.clone());
    assert_eq!(got.len(), want.len(), "each record exactly once");
    for (g, w) in got.iter().zip(&want) {
        let pairs = [
            ("source.address", w["src_addr"].clone()),
            ("destination.address", w["dst_addr"].clone()),
            ("source.port", w["src_port"].clone()),
            ("destination.port", w["dst_port"].clone()),
            ("network.io.bytes", w["bytes"].clone()),
            ("network.io.packets", w["packets"].clone()),
            ("network.flow.sequence_num", w["sequence_num"].clone()),
            ("network.flow.start", w["time_flow_start_ns"].clone()),
            ("network.flow.end", w["time_flow_end_ns"].clone()),
            ("network.flow.sampling_rate", w["sampling_rate"].clone()),
            ("network.flow.sampler_address", w["sampler_address"].clone()),
            ("network.flow.type", serde_json::Value::from("netflow_v9")),
            (
                "network.transport",
                serde_json::Value::from(w["proto"].as_str().unwrap().to_ascii_lowercase()),
            ),
            (
                "network.type",
                serde_json::Value::from(w["etype"].as_str().unwrap().to_ascii_lowercase()),
            ),
        ];
        for (key, value) in pairs {
            assert_eq!(attr(g, key), value, "{key} of {w}");
        }
        assert_eq!(
            serde_json::Value::from(g.time_unix_nano),
            w["time_flow_end_ns"],
            "timestamp = flow end"
        );
        assert!(g.observed_time_unix_nano > 0);
    }
}

#[test]
fn flow_logs_down_longer_than_the_queue_holds_drop_and_count_while_metrics_flow() {
    let alloy = common::Alloy::start();
    let dead = common::free_tcp_addr();
    let dir = common::ScratchDir::new("flow-logs-down");
    let file = dir.join("flowtel.yaml");
    std::fs::write(
        &file,
        "flow_records:\n  queue_max_records: 300\n  batch_max_records: 20\n",
    )
    .unwrap();
    let d = Daemon::start(&[
        "--config",
        file.to_str().unwrap(),
        "--sink",
        "otlp",
        "--sink",
        "flow-logs",
        "--sink",
        "prometheus",
        "--otlp-endpoint",
        &alloy.endpoint(),
        "--flow-logs-endpoint",
        &format!("http://{dead}"),
        "--rollup-interval",
        "1",
    ]);
    // Three times the capture's 227 records: more than the queue's 300.
    for _ in 0..3 {
        replay("softflowd-v9.pcap", d.listen);
    }
    let body = d.metrics_until("records dropped by the full flow-logs queue", |b| {
        common::sample(
            b,
            "flowtel_sink_dropped_total{sink=\"flow-logs\",reason=\"queue_full\"}",
        )
        .is_some_and(|n| n > 0.0)
            && common::sample(b, "flowtel_sink_failing{sink=\"flow-logs\"}") == Some(1.0)
    });
    let queued = common::sample(&body, "flowtel_sink_queue_depth{sink=\"flow-logs\"}").unwrap();
    assert!(queued <= 300.0, "bounded: {queued}");
    // The metrics path is unaffected: the windows reach the metrics endpoint.
    let points = alloy.points_until("a window of flow series", |p| {
        common::total(p, "network.io.by_flow") == 3 * 2_918_698
    });
    assert!(!points.is_empty());
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("sink=\"flow-logs\"") || stderr.contains("sink=flow-logs"),
        "{stderr}"
    );
}

/// What an HTTP collector received: path, headers and the (gunzipped) body of each POST.
#[derive(Debug, Clone, Default)]
struct Posted {
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// An HTTP server on 127.0.0.1 (its own runtime) that records every request and answers the
/// first `refuse` with 503.
struct Collector {
    addr: SocketAddr,
    posted: std::sync::Arc<std::sync::Mutex<Vec<Posted>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Collector {
    fn start(refuse: u64) -> Collector {
        use http_body_util::BodyExt as _;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let posted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let refuse = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(refuse));
        let store = std::sync::Arc::clone(&posted);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (store, refuse) = (
                    std::sync::Arc::clone(&store),
                    std::sync::Arc::clone(&refuse),
                );
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (store, refuse) = (
                                std::sync::Arc::clone(&store),
                                std::sync::Arc::clone(&refuse),
                            );
                            async move {
                                let path = req.uri().path().to_owned();
                                let headers: Vec<(String, String)> = req
                                    .headers()
                                    .iter()
                                    .map(|(k, v)| {
                                        (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned())
                                    })
                                    .collect();
                                let gzip = headers
                                    .iter()
                                    .any(|(k, v)| k == "content-encoding" && v == "gzip");
                                let raw = req.into_body().collect().await.unwrap().to_bytes();
                                let body = if gzip {
                                    let mut s = String::new();
                                    std::io::Read::read_to_string(
                                        &mut flate2::read::GzDecoder::new(&raw[..]),
                                        &mut s,
                                    )
                                    .unwrap();
                                    s
                                } else {
                                    String::from_utf8(raw.to_vec()).unwrap()
                                };
                                let status = if refuse
                                    .fetch_update(
                                        std::sync::atomic::Ordering::SeqCst,
                                        std::sync::atomic::Ordering::SeqCst,
                                        |n| n.checked_sub(1),
                                    )
                                    .is_ok()
                                {
                                    503
                                } else {
                                    store.lock().unwrap().push(Posted {
                                        path,
                                        headers,
                                        body,
                                    });
                                    200
                                };
                                let mut resp = hyper::Response::new(http_body_util::Full::new(
                                    hyper::body::Bytes::from("{}"),
                                ));
                                *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                                Ok::<_, std::convert::Infallible>(resp)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Collector {
            addr,
            posted,
            _runtime: runtime,
        }
    }

    fn posted(&self) -> Vec<Posted> {
        self.posted.lock().unwrap().clone()
    }
}

/// The JSON objects of one body, whatever its form.
fn objects(format: &str, body: &str) -> Vec<serde_json::Value> {
    match format {
        "json-array" => serde_json::from_str::<Vec<serde_json::Value>>(body).unwrap(),
        "ndjson" => body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        _ => body
            .lines()
            .collect::<Vec<_>>()
            .chunks(2)
            .map(|pair| {
                let action: serde_json::Value = serde_json::from_str(pair[0]).unwrap();
                assert_eq!(action, serde_json::json!({"create": {"_index": "flows"}}));
                serde_json::from_str(pair[1]).unwrap()
            })
            .collect(),
    }
}

#[test]
fn flow_http_posts_batches_with_auth_and_gzip_in_every_body_form() {
    let (decoded, _) = common::decode_fixture("softflowd-ipfix", "flow-json");
    let want = normalized(&decoded);
    for format in ["json-array", "ndjson", "es-bulk"] {
        let collector = Collector::start(1);
        let dir = common::ScratchDir::new(&format!("flow-http-{format}"));
        let file = dir.join("flowtel.yaml");
        std::fs::write(
            &file,
            "flow_records:\n  batch_max_records: 100\n  batch_max_age_ms: 200\n",
        )
        .unwrap();
        let d = Daemon::start(&[
            "--config",
            file.to_str().unwrap(),
            "--sink",
            "flow-http",
            "--flow-http-url",
            &format!("http://{}/api/default/flows/_json", collector.addr),
            "--flow-http-format",
            format,
            "--flow-http-header",
            "authorization=Basic Zmxvd3RlbDpzZWNyZXQ=",
        ]);
        replay("softflowd-ipfix.pcap", d.listen);
        let start = std::time::Instant::now();
        let count = |c: &Collector| {
            c.posted()
                .iter()
                .map(|p| objects(format, &p.body).len())
                .sum::<usize>()
        };
        while count(&collector) < want.len() {
            assert!(
                start.elapsed() < common::PATIENCE,
                "{format}: {} of {}",
                count(&collector),
                want.len()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let (status, _, stderr) = d.terminate();
        assert!(status.success(), "{stderr}");
        let posted = collector.posted();
        assert!(
            posted.len() >= 3,
            "{format}: batches of at most 100 records, got {} requests",
            posted.len()
        );
        let mut got = Vec::new();
        for p in &posted {
            assert_eq!(p.path, "/api/default/flows/_json");
            let header = |k: &str| {
                p.headers
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.as_str())
            };
            assert_eq!(header("authorization"), Some("Basic Zmxvd3RlbDpzZWNyZXQ="));
            assert_eq!(header("content-encoding"), Some("gzip"));
            let objs = objects(format, &p.body);
            assert!(
                objs.len() <= 100 || posted.len() == 1,
                "{format}: {}",
                objs.len()
            );
            got.extend(objs);
        }
        let got = normalized(
            &got.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        );
        assert_eq!(
            got, want,
            "{format}: every record once, in order, after one refused request"
        );
    }
}
