//! Dashboard contracts: every PromQL query of a provisioned Grafana dashboard returns data,
//! with the labels its panel groups by, from a real Prometheus scraping a real flowtel.
//!
//! `flowtel generate` (NetFlow v9, IPFIX and sFlow exporters) feeds `flowtel run --sink
//! prometheus --rollup-interval 1` on loopback, with the GeoIP test database so public
//! addresses get countries; Prometheus (the Debian `prometheus` package, which `.ci/run`
//! installs) scrapes `/metrics` every second. Template variables take the dashboards' "All"
//! value (`.+`), `$__range` is `5m`, `$__interval` and `$__rate_interval` `1m`. Loki queries are
//! skipped: they read logs, not metrics. The tests skip, saying why, when `prometheus` is not
//! installed.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_tcp_addr, free_udp_addr, repo};
use serde_json::Value;

/// Children killed when the test ends, however it ends.
struct Procs(Vec<(&'static str, Child)>, PathBuf);

/// A child's stderr goes to a file (a pipe nobody reads could fill up and block it).
fn log(dir: &Path, name: &str) -> Stdio {
    Stdio::from(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
}

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Procs {
    /// Fail with the child's output if one of them has exited.
    fn check_alive(&mut self) {
        for (name, c) in &mut self.0 {
            if let Ok(Some(status)) = c.try_wait() {
                let log = self.1.join(format!("{}.log", name.replace(' ', "-")));
                let err = std::fs::read_to_string(log).unwrap_or_default();
                panic!("{name} exited early ({status}): {err}");
            }
        }
    }
}

/// A plain HTTP/1.0 GET: (status, body).
fn http_get(addr: SocketAddr, path_and_query: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let req = format!("GET {path_and_query} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    s.write_all(req.as_bytes())?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let resp = String::from_utf8_lossy(&resp);
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// Poll `f` until it returns Some, failing with `what` after a generous deadline (a failure
/// bound, not a performance assertion).
fn wait_for<T>(procs: &mut Procs, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(v) = f() {
            return v;
        }
        procs.check_alive();
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// One query of the dashboard and what its panel needs from the result.
#[derive(Debug)]
struct PanelQuery {
    panel: String,
    expr: String,
    /// Labels the panel groups or names series by: the outermost `by (...)`, `{{label}}`
    /// legends, groupBy transformations and geomap lookups.
    labels: BTreeSet<String>,
}

/// `by (...)` clauses at parenthesis depth 0: the outermost aggregation's grouping.
fn outer_by_labels(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut depth = 0i32;
    let b = expr.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => depth -= 1,
            b'{' => {
                // Skip label matchers: their values may contain anything.
                while i < b.len() && b[i] != b'}' {
                    i += 1;
                }
            }
            _ if depth == 0 && expr[i..].starts_with("by") => {
                let rest = expr[i + 2..].trim_start();
                if let Some(inner) = rest.strip_prefix('(')
                    && let Some(end) = inner.find(')')
                {
                    out.extend(
                        inner[..end]
                            .split(',')
                            .map(|l| l.trim().to_owned())
                            .filter(|l| !l.is_empty()),
                    );
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn panel_queries(dash: &Value) -> (Vec<PanelQuery>, Vec<String>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut panels: Vec<&Value> = Vec::new();
    fn walk<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
        for p in v.as_array().into_iter().flatten() {
            out.push(p);
            walk(&p["panels"], out);
        }
    }
    walk(&dash["panels"], &mut panels);
    for p in panels {
        let title = p["title"].as_str().unwrap_or("").to_owned();
        let mut panel_labels = BTreeSet::new();
        for t in p["transformations"].as_array().into_iter().flatten() {
            if t["id"] == "groupBy" {
                for (k, _) in t["options"]["fields"].as_object().into_iter().flatten() {
                    if k != "Value" {
                        panel_labels.insert(k.clone());
                    }
                }
            }
        }
        for l in p["options"]["layers"].as_array().into_iter().flatten() {
            if let Some(k) = l["location"]["lookup"].as_str() {
                panel_labels.insert(k.to_owned());
            }
        }
        for t in p["targets"].as_array().into_iter().flatten() {
            let Some(expr) = t["expr"].as_str() else {
                continue;
            };
            if t["datasource"]["type"] == "loki" {
                skipped.push(format!("{title:?}: Loki query {}", expr.trim()));
                continue;
            }
            let mut labels = panel_labels.clone();
            labels.extend(outer_by_labels(expr));
            let legend = t["legendFormat"].as_str().unwrap_or("");
            for part in legend.split("{{").skip(1) {
                if let Some((l, _)) = part.split_once("}}") {
                    labels.insert(l.trim().to_owned());
                }
            }
            out.push(PanelQuery {
                panel: title.clone(),
                expr: expr.to_owned(),
                labels,
            });
        }
    }
    (out, skipped)
}

/// Grafana's substitutions: multi-value variables at their "All" value, range variables fixed.
fn substitute(expr: &str) -> String {
    expr.replace("$device_name", ".+")
        .replace("$network_local_address", ".+")
        .replace("$network_peer_address", ".+")
        .replace("$job", ".+")
        .replace("$__range", "5m")
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "1m")
}

#[test]
fn query_parsing_finds_the_outer_grouping() {
    assert_eq!(
        outer_by_labels("sum(x{a=~\"by (z)\"}) by (device_name)\n"),
        BTreeSet::from(["device_name".to_owned()])
    );
    assert!(outer_by_labels("count(count(x) by (device_name))").is_empty());
    assert_eq!(
        outer_by_labels("sum(\n sum_over_time(x[5m])\n) by (a,b)"),
        BTreeSet::from(["a".to_owned(), "b".to_owned()])
    );
}

/// flowtel run + flowtel generate + Prometheus scraping flowtel every second.
struct Stack {
    procs: Procs,
    prom: SocketAddr,
    tmp: PathBuf,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for (_, c) in &mut self.procs.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

impl Stack {
    /// `None` (with the reason printed) when Prometheus is not installed.
    fn start(name: &str) -> Option<Stack> {
        if !common::require_tool("prometheus", "apt-get install prometheus (.ci/run does it)") {
            return None;
        }
        let tmp = std::env::temp_dir().join(format!("flowtel-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        let listen = free_udp_addr();
        let metrics = free_tcp_addr();
        let prom = free_tcp_addr();
        let country_db = repo().join("crates/flowtel-rollup/testdata/country-test.mmdb");
        let mut stack = Stack {
            procs: Procs(Vec::new(), tmp.clone()),
            prom,
            tmp: tmp.clone(),
        };

        let flowtel = Command::new(env!("CARGO_BIN_EXE_flowtel"))
            .args(["run", "--sink", "prometheus", "--rollup-interval", "1"])
            // An OTLP sink whose endpoint refuses connections: the export metrics exist and
            // count failures, as when Alloy is down.
            .args(["--sink", "otlp", "--otlp-endpoint"])
            .arg(format!("http://{}", free_tcp_addr()))
            .arg("--listen")
            .arg(listen.to_string())
            .arg("--prometheus-listen")
            .arg(metrics.to_string())
            .arg("--geoip-country-db")
            .arg(&country_db)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log(&tmp, "flowtel-run"))
            .spawn()
            .unwrap();
        stack.procs.0.push(("flowtel run", flowtel));
        wait_for(&mut stack.procs, "flowtel /readyz", || {
            matches!(http_get(metrics, "/readyz"), Ok((200, _))).then_some(())
        });

        let generate = Command::new(env!("CARGO_BIN_EXE_flowtel"))
            .args([
                "generate",
                "--exporters",
                "6",
                "--rate",
                "400",
                "--seed",
                "3",
            ])
            .args(["--report-interval", "0", "--duration", "600"])
            .arg("--target")
            .arg(listen.to_string())
            .stdout(Stdio::null())
            .stderr(log(&tmp, "flowtel-generate"))
            .spawn()
            .unwrap();
        stack.procs.0.push(("flowtel generate", generate));

        let config = tmp.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
                 - job_name: flowtel\n    static_configs:\n      - targets: [\"{metrics}\"]\n"
            ),
        )
        .unwrap();
        let prometheus = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                tmp.join("data").display()
            ))
            .arg(format!("--web.listen-address={prom}"))
            .stdout(Stdio::null())
            .stderr(log(&tmp, "prometheus"))
            .spawn()
            .unwrap();
        stack.procs.0.push(("prometheus", prometheus));
        wait_for(&mut stack.procs, "Prometheus /-/ready", || {
            matches!(http_get(prom, "/-/ready"), Ok((200, _))).then_some(())
        });
        Some(stack)
    }

    /// The result of an instant query, `None` when empty.
    fn query(&self, expr: &str) -> Option<Vec<Value>> {
        let q = percent_encoding::utf8_percent_encode(expr, percent_encoding::NON_ALPHANUMERIC);
        let (status, body) = http_get(self.prom, &format!("/api/v1/query?query={q}")).ok()?;
        assert_ne!(status, 400, "Prometheus rejected {expr}: {body}");
        let v: Value = serde_json::from_str(&body).ok()?;
        let result = v["data"]["result"].as_array()?.clone();
        (!result.is_empty()).then_some(result)
    }

    /// Wait until `q` returns data where at least one series carries every label the panel
    /// groups by, non-empty: what the panel needs to draw, name or locate something.
    fn expect_data(&mut self, q: &PanelQuery) {
        let expr = substitute(&q.expr);
        let what = format!("{:?}: {expr}", q.panel);
        let deadline = Instant::now() + Duration::from_secs(120);
        let result = loop {
            if let Some(r) = self.query(&expr)
                && r.iter().any(|s| {
                    q.labels.iter().all(|l| {
                        s["metric"][l.as_str()]
                            .as_str()
                            .is_some_and(|v| !v.is_empty())
                    })
                })
            {
                break r;
            }
            self.procs.check_alive();
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(250));
        };
        eprintln!(
            "ok {:?}: {} series, labels {:?}",
            q.panel,
            result.len(),
            q.labels
        );
    }
}

fn read_dashboard(rel_or_shared: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(rel_or_shared).unwrap()).unwrap()
}

#[test]
fn every_health_dashboard_query_returns_data_with_its_labels() {
    let dash = read_dashboard(&repo().join("deploy/grafana/dashboards/flowtel-health.json"));
    let (queries, skipped) = panel_queries(&dash);
    assert!(skipped.is_empty());
    assert!(queries.len() >= 14, "{} queries", queries.len());
    for q in &queries {
        assert!(q.expr.contains("flowtel_"), "{}", q.expr);
    }
    let Some(mut stack) = Stack::start("health") else {
        return;
    };
    for q in &queries {
        stack.expect_data(q);
    }
    // The per-exporter panel sees the six generated exporters.
    let q = queries
        .iter()
        .find(|q| q.panel == "Datagrams/s per exporter")
        .unwrap();
    let per_exporter = stack.query(&substitute(&q.expr)).unwrap_or_default();
    let exporters: BTreeSet<&str> = per_exporter
        .iter()
        .filter_map(|s| s["metric"]["exporter"].as_str())
        .collect();
    assert_eq!(exporters.len(), 6, "{exporters:?}");
    // The export panels count the refused connections to the OTLP endpoint.
    stack.expect_data(&PanelQuery {
        panel: "export failures counted".to_owned(),
        expr: "sum(flowtel_export_failed_total{job=~\"$job\"}) > 0".to_owned(),
        labels: BTreeSet::new(),
    });
}

#[test]
fn every_netflow_dashboard_query_returns_data_with_its_labels() {
    let shared = repo().join("../shared/reference/grafana-netflow-overview.dashboard.json");
    let path = if shared.is_file() {
        shared
    } else {
        repo().join("deploy/grafana/dashboards/netflow-overview.json")
    };
    let (queries, skipped) = panel_queries(&read_dashboard(&path));
    for s in &skipped {
        common::skip(&format!("{s}: logs are not Prometheus data"));
    }
    assert!(queries.len() >= 15, "{} queries", queries.len());
    let Some(mut stack) = Stack::start("netflow") else {
        return;
    };
    for q in &queries {
        stack.expect_data(q);
    }
    // The country panels see ISO codes from the GeoIP database, not only "Private IP".
    let countries = stack
        .query(&substitute(
            "sum(sum_over_time(network_io_by_flow_bytes{job=~\"$job\",network_peer_country!=\"Private IP\"}[$__range])) by (network_peer_country)",
        ))
        .unwrap_or_default();
    let codes: BTreeSet<&str> = countries
        .iter()
        .filter_map(|s| s["metric"]["network_peer_country"].as_str())
        .collect();
    assert!(codes.contains("US") && codes.contains("AU"), "{codes:?}");
}

#[test]
fn every_interfaces_dashboard_query_returns_data_with_its_labels() {
    let dash = read_dashboard(&repo().join("deploy/grafana/dashboards/flowtel-interfaces.json"));
    let (queries, skipped) = panel_queries(&dash);
    assert!(skipped.is_empty());
    assert_eq!(queries.len(), 6);
    let Some(mut stack) = Stack::start("interfaces") else {
        return;
    };
    for q in &queries {
        stack.expect_data(q);
    }
    // The generated sFlow agents' uplink (swp1) is up at 10 Gbit/s.
    let q = queries
        .iter()
        .find(|q| q.expr.contains("hw_network_bandwidth_limit"))
        .unwrap();
    let speeds = stack.query(&substitute(&q.expr)).unwrap_or_default();
    assert!(!speeds.is_empty());
    for s in &speeds {
        assert_eq!(s["metric"]["hw_name"], "swp1", "{s}");
        assert_eq!(s["value"][1], "10000000000", "{s}");
    }
    let q = queries
        .iter()
        .find(|q| q.expr.contains("hw_network_up"))
        .unwrap();
    for s in stack.query(&substitute(&q.expr)).unwrap_or_default() {
        assert_eq!(s["value"][1], "1", "{s}");
    }
}
