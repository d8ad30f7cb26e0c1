//! `flowtel demo`: the daemon and the generator in one process, with a top-conversations table.
//!
//! Nothing here re-implements either side: the daemon is [`daemon::run_with`] with the
//! Prometheus sink, and the simulated exporters are [`generate_cmd::run_until`] on a thread,
//! aimed at the port the daemon actually bound (the default listen address is
//! `127.0.0.1:0`, so the demo never collides with a collector already on 9995). The
//! generator's exporters get device names (`paris-edge-v9`, …) through the same enrichment
//! settings a configuration file would give.
//!
//! Besides the integration's `bytes_by_flow`, the demo runs two small rollups: bytes per
//! device (a handful of series, so each router's rate is exact whatever the overflow) and
//! per AS pair. Countries and AS numbers come from the demo's own GeoIP databases
//! ([`traffic_model::DEMO_COUNTRY_DB`], for the generator's address plan), written to a
//! directory of the run and removed at exit, unless `--geoip-country-db` / `--geoip-asn-db`
//! name others.
//!
//! After every window the table of its top `--top` series is printed on stdout: window time
//! (marked partial when the demo started inside it or stopped before its end), total bytes
//! (overflow included, so the total is exact), then one line per conversation — device,
//! source → destination, transport, application, countries, bytes, rate — and the per-device
//! and per-AS-pair tables. On a terminal each window's tables replace the previous ones (ANSI
//! clear screen); otherwise they are appended, one block per table, so the output can be
//! piped or captured. The default window is 10 s rather than the daemon's 60 s so something
//! shows quickly; `/metrics` (default `0.0.0.0:9464`) serves the same windows as
//! `flowtel run --sink prometheus` does. Logs go to stderr at `warn` unless `--log-level`
//! says otherwise.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use flowtel_rollup::{AttrValue, Dimension, OVERFLOW_ATTRIBUTE, Point, RollupConfig, WindowBatch};

use crate::generate_cmd::{self, GenProtocol, GenerateArgs};
use crate::timefmt::{utc_micros, utc_seconds};
use crate::traffic_model;
use flowtel::config::{Config, SinkKind};
use flowtel::daemon;
use flowtel::sinks::Windows;
use flowtel::sinks::stdout::StdoutSink;

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Flow records per second over all simulated exporters (sFlow: samples); the sampling
    /// rates and active timeouts of the simulated devices are fitted to it.
    #[arg(long, default_value_t = 600.0, value_name = "FLOWS_PER_SEC")]
    pub rate: f64,
    /// Simulated exporters, spread over the protocols in turn.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=240))]
    pub exporters: u16,
    /// Protocols of the simulated exporters, comma separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "v9,ipfix,sflow"
    )]
    pub protocols: Vec<GenProtocol>,
    /// Window length in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub rollup_interval: u64,
    /// Conversations shown per window.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub top: u64,
    /// Series kept per window before the overflow series (the daemon's --top-k).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub top_k: u64,
    /// Exit after this many seconds [default: run until interrupted].
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// UDP address the collector listens on (port 0: any free port); real exporters may send
    /// here too.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Address of the /metrics, /healthz and /readyz endpoint.
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:9464")]
    pub prometheus_listen: SocketAddr,
    /// Seed of the traffic model.
    #[arg(long, default_value_t = 8)]
    pub seed: u64,
    /// MaxMind-format country database [default: the demo's own, for its address plan].
    #[arg(long, value_name = "FILE")]
    pub geoip_country_db: Option<PathBuf>,
    /// MaxMind-format ASN database [default: the demo's own, for its address plan].
    #[arg(long, value_name = "FILE")]
    pub geoip_asn_db: Option<PathBuf>,
    /// Log level or filter for stderr (RUST_LOG overrides it).
    #[arg(long, value_name = "LEVEL", default_value = "warn")]
    pub log_level: String,
}

/// Cities of the simulated devices' names, in exporter order (cycled).
const CITIES: &[&str] = &[
    "paris", "lyon", "nice", "lille", "nantes", "rennes", "dijon", "metz",
];

/// The demo's rollups besides the integration's `bytes_by_flow`: bytes per device (exact, a
/// handful of series) and per AS pair.
fn extra_rollups() -> Vec<RollupConfig> {
    let rollup = |name: &str, dimensions: Vec<Dimension>| RollupConfig {
        name: name.to_owned(),
        dimensions,
        ..RollupConfig::default()
    };
    vec![
        rollup("bytes_by_device", vec![Dimension::DeviceName]),
        rollup("bytes_by_as", vec![Dimension::SrcAs, Dimension::DstAs]),
    ]
}

/// The daemon's configuration for the demo: defaults, the Prometheus sink, the demo's window
/// and rollups, the GeoIP databases (`geoip`: country, ASN) and names for the generator's
/// exporters.
pub fn config(args: &DemoArgs, geoip: (PathBuf, PathBuf)) -> anyhow::Result<Config> {
    let mut config = Config {
        listen: vec![args.listen],
        // Kernel default: the demo's rate needs no large buffer, and asking for one would
        // warn on machines with a small net.core.rmem_max.
        recv_buffer_bytes: 0,
        workers: 1,
        rollup_interval_secs: Some(args.rollup_interval),
        top_k: Some(usize::try_from(args.top_k).unwrap_or(usize::MAX)),
        sinks: vec![SinkKind::Prometheus],
        prometheus_listen: args.prometheus_listen,
        log_level: args.log_level.clone(),
        exporter_report_interval_secs: 0,
        shutdown_grace_secs: 1,
        ..Config::default()
    };
    config.rollups.extend(extra_rollups());
    config.geoip.country_db = Some(geoip.0);
    config.geoip.asn_db = Some(geoip.1);
    if args.protocols.is_empty() {
        anyhow::bail!("--protocols: at least one of v5, v9, ipfix, sflow");
    }
    for i in 0..args.exporters {
        let protocol = args.protocols[usize::from(i) % args.protocols.len()];
        let (addr, kind) = generate_cmd::device_address(protocol, u32::from(i));
        let city = CITIES[usize::from(i) % CITIES.len()];
        let name = format!("{city}-{kind}-{}", protocol_name(protocol));
        config.enrichment.devices.insert(addr, name);
    }
    flowtel::config::finish_and_validate(&mut config)?;
    Ok(config)
}

fn protocol_name(p: GenProtocol) -> &'static str {
    match p {
        GenProtocol::V5 => "v5",
        GenProtocol::V9 => "v9",
        GenProtocol::Ipfix => "ipfix",
        GenProtocol::Sflow => "sflow",
    }
}

/// Where to reach a bound address from this host: a wildcard replaced by loopback.
fn target_of(local: SocketAddr) -> SocketAddr {
    let ip = match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, local.port())
}

pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        anyhow::bail!("--rate: expected a positive number of flows per second");
    }
    if let Some(d) = args.duration
        && !(d.is_finite() && d > 0.0)
    {
        anyhow::bail!("--duration: expected a positive number of seconds");
    }
    // The demo's own GeoIP databases, unless others are given: written next to each other in
    // a directory of this run, removed at exit.
    let dir = std::env::temp_dir().join(format!("flowtel-demo-{}", std::process::id()));
    let embedded = args.geoip_country_db.is_none() || args.geoip_asn_db.is_none();
    if embedded {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = |given: &Option<PathBuf>, name: &str, bytes: &[u8]| -> anyhow::Result<PathBuf> {
        match given {
            Some(p) => Ok(p.clone()),
            None => {
                let p = dir.join(name);
                std::fs::write(&p, bytes)
                    .with_context(|| format!("cannot write {}", p.display()))?;
                Ok(p)
            }
        }
    };
    let geoip = (
        file(
            &args.geoip_country_db,
            "flowtel-demo-country.mmdb",
            traffic_model::DEMO_COUNTRY_DB,
        )?,
        file(
            &args.geoip_asn_db,
            "flowtel-demo-asn.mmdb",
            traffic_model::DEMO_ASN_DB,
        )?,
    );
    let result = run_with_config(args, config(args, geoip));
    if embedded {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_with_config(args: &DemoArgs, config: anyhow::Result<Config>) -> anyhow::Result<()> {
    let config = config?;
    let stop = Arc::new(AtomicBool::new(false));
    let generator: Arc<Mutex<Option<std::thread::JoinHandle<anyhow::Result<()>>>>> = Arc::default();

    let gen_args = GenerateArgs {
        target: String::new(),
        exporters: args.exporters,
        rate: args.rate,
        duration: None,
        count: None,
        protocols: args.protocols.clone(),
        seed: args.seed,
        template_interval: 20.0,
        max_datagram: 1400,
        report_interval: 0.0,
    };
    let (gen_stop, gen_slot) = (Arc::clone(&stop), Arc::clone(&generator));
    let interval = args.rollup_interval;
    let on_listening = move |bound: &daemon::Listening| -> anyhow::Result<()> {
        let local = *bound.udp.first().context("no listen address")?;
        let http = target_of(bound.http);
        let target = target_of(local);
        let mut g = gen_args;
        g.target = target.to_string();
        eprintln!(
            "flowtel demo: {} simulated exporter{} -> udp {local} at {} flows/s; a table every {interval} s; /metrics on http://{http}/metrics",
            g.exporters,
            if g.exporters == 1 { "" } else { "s" },
            g.rate,
        );
        let handle = std::thread::Builder::new()
            .name("flowtel-generate".to_owned())
            .spawn(move || generate_cmd::run_until(&g, &gen_stop))
            .context("cannot start the generator")?;
        *gen_slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(())
    };

    let top = usize::try_from(args.top).unwrap_or(usize::MAX);
    let clear = std::io::stdout().is_terminal();
    let started_ns = unix_ns_now();
    let table = StdoutSink::with_format(
        "demo-table",
        Box::new(move |w: &Windows, out: &mut String| {
            if clear && !w.final_flush && !w.batches.is_empty() {
                // Clear the screen and home the cursor (ECMA-48 ED 2, CUP).
                out.push_str("\x1b[2J\x1b[H");
            }
            let now = unix_ns_now();
            // Conversations first, then devices, then the rest.
            // Interface counters are not a table of flows (Grafana and /metrics show them).
            let mut batches: Vec<&WindowBatch> = w
                .batches
                .iter()
                .filter(|b| &*b.rollup != flowtel_rollup::interfaces::BATCH_NAME)
                .collect();
            batches.sort_by_key(|b| match &*b.rollup {
                "bytes_by_flow" => 0,
                "bytes_by_device" => 1,
                _ => 2,
            });
            for b in batches {
                // The part of the window the demo ran through.
                let covered = Covered {
                    from_ns: b.start_time_unix_nano.max(started_ns),
                    to_ns: b.time_unix_nano.min(now.max(started_ns)),
                    at_exit: w.final_flush,
                };
                render_table(b, top, covered, out);
            }
        }),
    )?;

    let hooks = daemon::Hooks {
        on_listening: Some(Box::new(on_listening)),
        sinks: vec![Arc::new(table)],
        stop: args.duration.map(|d| {
            let stop = Arc::clone(&stop);
            // Created lazily: the timer needs the daemon's runtime. The generator stops first
            // (it checks every 100 ms), so nothing is sent to sockets already closed.
            Box::pin(async move {
                tokio::time::sleep(Duration::from_secs_f64(d)).await;
                stop.store(true, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }) as daemon::StopFuture
        }),
        reload: None,
    };
    let result = daemon::run_with(config, &[], hooks);
    stop.store(true, Ordering::Relaxed);
    let handle = generator.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(h) = handle {
        match h.join() {
            Ok(r) => r.context("generator")?,
            Err(_) => anyhow::bail!("the generator thread panicked"),
        }
    }
    result
}

/// The part of a window the demo ran through: the first window starts before the demo did,
/// the last one is cut at exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Covered {
    pub from_ns: u64,
    pub to_ns: u64,
    pub at_exit: bool,
}

impl Covered {
    /// The whole of `b`'s window.
    #[cfg(test)]
    pub fn whole(b: &WindowBatch) -> Covered {
        Covered {
            from_ns: b.start_time_unix_nano,
            to_ns: b.time_unix_nano,
            at_exit: false,
        }
    }

    fn secs(&self) -> f64 {
        self.to_ns.saturating_sub(self.from_ns) as f64 / 1e9
    }
}

fn unix_ns_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Bits per second, three significant digits: `812 kbit/s`, `3.95 Gbit/s`.
pub fn format_rate(bits_per_sec: f64) -> String {
    let units = [
        (1e12, "Tbit/s"),
        (1e9, "Gbit/s"),
        (1e6, "Mbit/s"),
        (1e3, "kbit/s"),
    ];
    let (scale, unit) = units
        .iter()
        .copied()
        .find(|(scale, _)| bits_per_sec >= *scale)
        .unwrap_or((1.0, "bit/s"));
    let v = bits_per_sec / scale;
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.decimals$} {unit}")
}

/// One window's table: header, top `top` series by value, overflow and totals. The
/// integration's rollup is shown as conversations, any other rollup by its attributes.
pub fn render_table(b: &WindowBatch, top: usize, covered: Covered, out: &mut String) {
    let total: u64 = b.points.iter().map(|p| p.value).sum();
    let overflow: u64 = b
        .points
        .iter()
        .filter(|p| is_overflow(p))
        .map(|p| p.value)
        .sum();
    let mut series: Vec<&Point> = b.points.iter().filter(|p| !is_overflow(p)).collect();
    series.sort_by_key(|p| std::cmp::Reverse(p.value));
    let metric = b.points.first().map_or("", |p| &*p.metric);
    let partial = if covered.at_exit {
        " (partial, at exit)".to_owned()
    } else if covered.from_ns > b.start_time_unix_nano {
        // To the millisecond: the demo may start within the window's first second.
        format!(
            " (partial, from {})",
            utc_micros(covered.from_ns).get(11..23).unwrap_or_default()
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{} {} {} - {} UTC{partial}: {} series, {} bytes total ({} in overflow)",
        b.rollup,
        metric,
        utc_seconds(b.start_time_unix_nano),
        utc_seconds(b.time_unix_nano).get(11..).unwrap_or_default(),
        series.len(),
        total,
        overflow,
    );
    let secs = covered.secs();
    let rate = |bytes: u64| {
        if secs > 0.0 {
            format_rate(bytes as f64 * 8.0 / secs)
        } else {
            "-".to_owned()
        }
    };
    let conversations = series
        .iter()
        .any(|p| !attr(p, &["network.local.address", "src_addr"]).is_empty());
    let mut rows: Vec<Vec<String>> = Vec::new();
    if conversations {
        rows.push(
            [
                "DEVICE",
                "SOURCE -> DESTINATION",
                "TRANSPORT",
                "APPLICATION",
                "COUNTRIES",
                "BYTES",
                "RATE",
            ]
            .map(str::to_owned)
            .to_vec(),
        );
        for p in series.iter().take(top) {
            let a = |names: &[&str]| attr(p, names);
            let endpoint = |addr: String, port: String| {
                if port.is_empty() || port == "0" {
                    addr
                } else if addr.contains(':') {
                    format!("[{addr}]:{port}")
                } else {
                    format!("{addr}:{port}")
                }
            };
            let src = endpoint(
                a(&["network.local.address", "src_addr"]),
                a(&["network.local.port", "src_port"]),
            );
            let dst = endpoint(
                a(&["network.peer.address", "dst_addr"]),
                a(&["network.peer.port", "dst_port"]),
            );
            let country = |names: &[&str]| {
                let c = a(names);
                if c.is_empty() { "-".to_owned() } else { c }
            };
            rows.push(vec![
                a(&["device_name"]),
                format!("{src} -> {dst}"),
                a(&["network.transport", "protocol"]),
                a(&["network.protocol.name", "application"]),
                format!(
                    "{} -> {}",
                    country(&["network.local.country", "src_country"]),
                    country(&["network.peer.country", "dst_country"])
                ),
                p.value.to_string(),
                rate(p.value),
            ]);
        }
    } else {
        // Columns: the attributes of the series, in their order, then bytes and rate.
        let keys: Vec<&str> = series
            .first()
            .map(|p| p.attributes.iter().map(|(k, _)| &**k).collect())
            .unwrap_or_default();
        let mut header: Vec<String> = keys.iter().map(|k| k.to_uppercase()).collect();
        header.extend(["BYTES".to_owned(), "RATE".to_owned()]);
        rows.push(header);
        for p in series.iter().take(top) {
            let mut row: Vec<String> = keys
                .iter()
                .map(|k| {
                    let v = attr(p, &[k]);
                    // AS 0: none known (a private address).
                    let unknown_as = (k.ends_with("_as") || k.ends_with(".as")) && v == "0";
                    if v.is_empty() || unknown_as {
                        "-".to_owned()
                    } else {
                        v
                    }
                })
                .collect();
            row.extend([p.value.to_string(), rate(p.value)]);
            rows.push(row);
        }
    }
    let columns = rows.first().map_or(0, Vec::len);
    let mut widths = vec![0usize; columns];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for r in &rows {
        let mut line = String::from(" ");
        for (i, (cell, w)) in r.iter().zip(&widths).enumerate() {
            // Bytes and rate right-aligned, the rest left-aligned.
            if i + 2 >= columns {
                let _ = write!(line, " {cell:>w$}");
            } else {
                let _ = write!(line, " {cell:<w$}");
            }
            line.push(' ');
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if series.len() > top {
        let rest: u64 = series.iter().skip(top).map(|p| p.value).sum();
        let _ = writeln!(
            out,
            "  ... {} more series: {rest} bytes",
            series.len() - top
        );
    }
    if overflow > 0 {
        let _ = writeln!(out, "  overflow series (beyond top-K): {overflow} bytes");
    }
    out.push('\n');
}

fn is_overflow(p: &Point) -> bool {
    p.attributes
        .iter()
        .any(|(k, v)| &**k == OVERFLOW_ATTRIBUTE && *v == AttrValue::Bool(true))
}

/// The first of `names` the point has, as text ("" when none).
fn attr(p: &Point, names: &[&str]) -> String {
    names
        .iter()
        .find_map(|n| p.attributes.iter().find(|(k, _)| &**k == *n))
        .map_or_else(String::new, |(_, v)| match v {
            AttrValue::Str(s) => s.to_string(),
            AttrValue::Int(i) => i.to_string(),
            AttrValue::Bool(b) => b.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(attrs: Vec<(&str, AttrValue)>, value: u64) -> Point {
        Point {
            metric: Arc::from("network.io.by_flow"),
            unit: Arc::from("By"),
            kind: flowtel_rollup::PointKind::Total,
            attributes: attrs.into_iter().map(|(k, v)| (Arc::from(k), v)).collect(),
            value,
            start_time_unix_nano: 0,
            time_unix_nano: 10_000_000_000,
        }
    }

    #[test]
    fn table_lists_top_series_and_exact_totals() {
        let s = |v: &str| AttrValue::Str(Arc::from(v));
        let conv = |src: &str, value| {
            point(
                vec![
                    ("device_name", s("paris-edge-v9")),
                    ("network.local.address", s(src)),
                    ("network.peer.address", s("142.250.74.1")),
                    ("network.local.port", AttrValue::Int(50000)),
                    ("network.peer.port", AttrValue::Int(443)),
                    ("network.transport", s("tcp")),
                    ("network.protocol.name", s("https")),
                    ("network.local.country", s("")),
                    ("network.peer.country", s("US")),
                ],
                value,
            )
        };
        let batch = WindowBatch {
            rollup: Arc::from("bytes_by_flow"),
            start_time_unix_nano: 0,
            time_unix_nano: 10_000_000_000,
            points: vec![
                conv("10.0.0.1", 100),
                conv("10.0.0.2", 300),
                conv("10.0.0.3", 200),
                point(vec![(OVERFLOW_ATTRIBUTE, AttrValue::Bool(true))], 50),
            ],
        };
        let mut out = String::new();
        render_table(&batch, 2, Covered::whole(&batch), &mut out);
        assert!(
            out.starts_with(
                "bytes_by_flow network.io.by_flow 1970-01-01 00:00:00 - 00:00:10 UTC: 3 series, 650 bytes total (50 in overflow)"
            ),
            "{out}"
        );
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines[2].contains("10.0.0.2:50000 -> 142.250.74.1:443"),
            "{out}"
        );
        assert!(lines[2].contains("paris-edge-v9"), "{out}");
        assert!(lines[2].contains("  - -> US  "), "{out}");
        assert!(lines[2].trim_end().ends_with(" 300  240 bit/s"), "{out}");
        assert!(lines[3].contains("10.0.0.3"), "{out}");
        assert!(!out.contains("10.0.0.1:"), "{out}");
        assert!(out.contains("1 more series: 100 bytes"), "{out}");
        assert!(
            out.contains("overflow series (beyond top-K): 50 bytes"),
            "{out}"
        );

        // The first window covers only the part after the demo started; the rate is over
        // that part.
        let mut out = String::new();
        let covered = Covered {
            from_ns: 6_000_000_000,
            to_ns: 10_000_000_000,
            at_exit: false,
        };
        render_table(&batch, 1, covered, &mut out);
        assert!(
            out.starts_with(
                "bytes_by_flow network.io.by_flow 1970-01-01 00:00:00 - 00:00:10 UTC (partial, from 00:00:06.000): 3 series"
            ),
            "{out}"
        );
        assert!(out.contains(" 300  600 bit/s\n"), "{out}");
    }

    #[test]
    fn other_rollups_show_their_attributes_and_unknown_as_as_a_dash() {
        let s = |v: &str| AttrValue::Str(Arc::from(v));
        let batch = WindowBatch {
            rollup: Arc::from("bytes_by_as"),
            start_time_unix_nano: 0,
            time_unix_nano: 10_000_000_000,
            points: vec![
                point(
                    vec![
                        ("src_as", AttrValue::Int(0)),
                        ("dst_as", AttrValue::Int(15169)),
                    ],
                    2_500_000_000,
                ),
                point(
                    vec![("src_as", AttrValue::Int(13335)), ("dst_as", s("64512"))],
                    1_000,
                ),
            ],
        };
        let mut out = String::new();
        render_table(&batch, 10, Covered::whole(&batch), &mut out);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], "  SRC_AS  DST_AS       BYTES         RATE");
        assert_eq!(lines[2], "  -       15169   2500000000  2.00 Gbit/s");
        assert_eq!(lines[3], "  13335   64512         1000    800 bit/s");
    }

    #[test]
    fn rates_read_in_bits_per_second() {
        assert_eq!(format_rate(0.0), "0.00 bit/s");
        assert_eq!(format_rate(812_400.0), "812 kbit/s");
        assert_eq!(format_rate(3.954e9), "3.95 Gbit/s");
        assert_eq!(format_rate(41.26e6), "41.3 Mbit/s");
    }
}
