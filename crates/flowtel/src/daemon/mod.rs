//! The daemon behind `flowtel run`: UDP listeners, receive workers, the flush loop, sinks and
//! shutdown.
//!
//! # Threading model
//!
//! - **Receive workers** are plain OS threads (one per core by default), each owning one
//!   SO_REUSEPORT socket per listen address, its own decoder and its own rollup state. A worker
//!   blocks in `recvmmsg` for at most [`listener::RECV_TIMEOUT`], decodes and rolls up each
//!   datagram synchronously, and between batches answers its control channel. Nothing on the
//!   per-datagram path takes a lock or waits on another thread; counters are merged into the
//!   worker's shared copy once per batch. Template state stays correct across workers by routing
//!   datagrams by exporter (see [`worker`]).
//! - **The flush loop** (a tokio task) wakes shortly after each window boundary, asks every
//!   worker for the windows that closed, merges them and hands the result to the sinks.
//! - **Sinks** never block the flush loop: stdout writes a few lines per window, the Prometheus
//!   sink swaps the last window under a lock held only to replace or render it, and the OTLP sink
//!   pushes into a bounded queue drained by its own task (full queue: the oldest window is
//!   dropped and counted). The receive path never waits on any of them.
//! - **The HTTP endpoint** (`/metrics`, `/healthz`, `/readyz`) and the self-telemetry exporter
//!   run as tokio tasks on a small runtime.
//!
//! # Shutdown
//!
//! On SIGINT or SIGTERM: `/readyz` turns 503, workers stop receiving, drain what was handed
//! over, flush every open window including the partial one, the sinks get it, and the export
//! queue is drained within `shutdown_grace_secs`; the process then exits 0.

pub mod listener;
pub mod pipeline;
pub mod stats;
pub mod worker;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::Context;
use flowtel_decode::{ErrorKind, Limit};
use flowtel_otlp::{ExportStatsSnapshot, FailureReason};
use flowtel_rollup::{RollupStats, WindowAggregate, WindowBatch};
use tracing::{error, info, warn};

use crate::config::{Config, SinkKind};
use crate::telemetry::{Family, Kind};
use stats::{DropReason, ProtocolLabel, WorkerStats};
use worker::{Control, FlushReply, Routing, Worker, now_ns};

/// State shared by the flush loop, the HTTP endpoint and the telemetry exporter.
#[derive(Debug)]
pub struct Shared {
    workers: Vec<Arc<Mutex<WorkerStats>>>,
    routing: Arc<Routing>,
    /// Last complete window of every rollup (for the Prometheus sink).
    last_windows: RwLock<BTreeMap<Arc<str>, WindowBatch>>,
    /// Counters of the flush loop's finishing of merged windows, per rollup.
    finished: Mutex<BTreeMap<Arc<str>, RollupStats>>,
    /// The OTLP exporter's counters, when the otlp sink runs.
    export: Option<Arc<flowtel_otlp::ExportStats>>,
    serve_flow_series: bool,
    silent_after_ns: u64,
}

impl Shared {
    /// Sum of every worker's counters.
    pub fn totals(&self) -> WorkerStats {
        let mut total = WorkerStats::default();
        for w in &self.workers {
            let w = w.lock().unwrap_or_else(|p| p.into_inner());
            total.merge(&w);
        }
        total
    }

    /// Every `flowtel.*` metric, read now.
    pub fn self_metrics(&self) -> Vec<Family> {
        let t = self.totals();
        let now = now_ns();
        let exporter_label =
            |ip: &Option<IpAddr>| ip.map_or_else(|| "other".to_owned(), |ip| ip.to_string());

        let mut datagrams = Family::new(
            "flowtel.datagrams",
            "{datagram}",
            Kind::Counter,
            "UDP datagrams received, by exporter address and detected protocol.",
        );
        let mut received = Family::new(
            "flowtel.received",
            "By",
            Kind::Counter,
            "UDP payload bytes received, by exporter address and detected protocol.",
        );
        let mut exporters: Vec<_> = t.exporters.iter().collect();
        exporters.sort_by_key(|(ip, _)| **ip);
        let mut active = 0u64;
        for (ip, e) in exporters {
            for p in ProtocolLabel::ALL {
                let c = e.by_protocol[p as usize];
                if c.datagrams == 0 {
                    continue;
                }
                let labels = vec![
                    ("exporter", exporter_label(ip)),
                    ("protocol", p.as_str().to_owned()),
                ];
                datagrams.push(labels.clone(), c.datagrams);
                received.push(labels, c.bytes);
            }
            if now.saturating_sub(e.last_seen_ns) < self.silent_after_ns {
                active += 1;
            }
        }
        let mut records = Family::new(
            "flowtel.records",
            "{record}",
            Kind::Counter,
            "Flow records decoded, by protocol.",
        );
        for p in ProtocolLabel::ALL {
            if p != ProtocolLabel::Unknown {
                records.push(
                    vec![("protocol", p.as_str().to_owned())],
                    t.records[p as usize],
                );
            }
        }
        let snap = t.snapshot.clone().unwrap_or_default();
        let d = &snap.decoder;
        let mut errors = Family::new(
            "flowtel.decode.errors",
            "{error}",
            Kind::Counter,
            "Decode problems by reason; the rest of the datagram is still decoded where possible.",
        );
        for k in ErrorKind::ALL {
            errors.push(
                vec![("reason", k.as_str().to_owned())],
                d.stats.errors.get(k).copied().unwrap_or(0),
            );
        }
        let mut limits = Family::new(
            "flowtel.decode.limit_hits",
            "{event}",
            Kind::Counter,
            "Times a bound on exporter-controlled state refused something, by limit.",
        );
        for l in Limit::ALL {
            limits.push(
                vec![("limit", l.as_str().to_owned())],
                d.stats.limit_hits.get(l).copied().unwrap_or(0),
            );
        }
        let mut dropped = Family::new(
            "flowtel.datagrams.dropped",
            "{datagram}",
            Kind::Counter,
            "Datagrams received but not decoded, by reason.",
        );
        for r in DropReason::ALL {
            dropped.push(
                vec![("reason", r.as_str().to_owned())],
                t.dropped.get(&r).copied().unwrap_or(0),
            );
        }
        let finished = self
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let rollups = rollup_families(&snap.rollups, &finished);
        let export = self.export.as_ref().map(|e| export_families(&e.snapshot()));
        let gauge =
            |name, unit, help, v: u64| Family::new(name, unit, Kind::Gauge, help).with(vec![], v);
        let counter =
            |name, unit, help, v: u64| Family::new(name, unit, Kind::Counter, help).with(vec![], v);
        vec![
            datagrams,
            received,
            records,
            counter(
                "flowtel.counter_records",
                "{record}",
                "sFlow counter samples decoded.",
                t.counter_records,
            ),
            errors,
            limits,
            counter(
                "flowtel.sampling.unknown",
                "{record}",
                "Flow records whose sampling rate could not be resolved (a default was applied).",
                snap.enrich.unknown_sampling_rate,
            ),
            gauge(
                "flowtel.templates",
                "{template}",
                "Templates currently known, over all exporters.",
                d.templates as u64,
            ),
            counter(
                "flowtel.templates.learnt",
                "{template}",
                "Templates and options templates learnt.",
                d.stats.templates_learnt,
            ),
            gauge(
                "flowtel.pending.sets",
                "{set}",
                "Data sets waiting for their template.",
                d.pending_sets as u64,
            ),
            counter(
                "flowtel.pending.expired",
                "{set}",
                "Data sets discarded because their template never came.",
                d.stats.pending_expired,
            ),
            counter(
                "flowtel.pending.dropped",
                "{set}",
                "Data sets discarded because the pending buffer was full.",
                d.stats.pending_dropped,
            ),
            gauge(
                "flowtel.exporters.active",
                "{exporter}",
                "Exporters that sent a datagram recently.",
                active,
            ),
            gauge(
                "flowtel.exporters.known",
                "{exporter}",
                "Exporters in the ownership table.",
                self.routing.exporters() as u64,
            ),
            counter(
                "flowtel.datagrams.handed_over",
                "{datagram}",
                "Datagrams passed to the worker that owns their exporter's templates.",
                t.handed_over,
            ),
            dropped,
            counter(
                "flowtel.socket.drops",
                "{datagram}",
                "Datagrams the kernel dropped because a socket's receive buffer was full (SO_RXQ_OVFL).",
                t.socket_drops,
            ),
            counter(
                "flowtel.receive.errors",
                "{error}",
                "Failed receive system calls.",
                t.recv_errors,
            ),
            gauge(
                "flowtel.rollup.keys",
                "{key}",
                "Keys held by the rollups' open windows, over all workers.",
                snap.keys_tracked,
            ),
            counter(
                "flowtel.enrich.geo_errors",
                "{lookup}",
                "GeoIP country or ASN lookups that failed (corrupt database).",
                snap.enrich.geo_lookup_errors + snap.enrich.asn_lookup_errors,
            ),
        ]
        .into_iter()
        .chain(rollups)
        .chain(export.into_iter().flatten())
        .collect()
    }

    /// The `/metrics` body.
    pub fn metrics_body(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        if self.serve_flow_series {
            let windows = self.last_windows.read().unwrap_or_else(|p| p.into_inner());
            crate::prometheus::render_windows(windows.values(), &mut out);
        }
        crate::prometheus::render_families(&self.self_metrics(), &mut out);
        out
    }
}

/// `flowtel.rollup.*`: per rollup, from the workers (records in) and the flush loop (windows).
fn rollup_families(
    workers: &[(Arc<str>, RollupStats)],
    finished: &BTreeMap<Arc<str>, RollupStats>,
) -> Vec<Family> {
    let mut records = Family::new(
        "flowtel.rollup.records",
        "{record}",
        Kind::Counter,
        "Records pushed into each rollup.",
    );
    let mut filtered = Family::new(
        "flowtel.rollup.filtered",
        "{record}",
        Kind::Counter,
        "Records a rollup did not count because of its direction filter.",
    );
    let mut late = Family::new(
        "flowtel.rollup.late",
        "{record}",
        Kind::Counter,
        "Records older than the oldest open window, added to it (never dropped).",
    );
    for (name, s) in workers {
        let l = || vec![("rollup", name.to_string())];
        records.push(l(), s.records_in);
        filtered.push(l(), s.records_filtered);
        late.push(l(), s.late_records);
    }
    let mut windows = Family::new(
        "flowtel.windows.emitted",
        "{window}",
        Kind::Counter,
        "Windows handed to the sinks, by rollup.",
    );
    let mut series = Family::new(
        "flowtel.series.emitted",
        "{series}",
        Kind::Counter,
        "Points emitted (one per series per window, overflow included), by rollup.",
    );
    let mut overflow = Family::new(
        "flowtel.rollup.overflow",
        "{series}",
        Kind::Counter,
        "Series beyond top-K summed into the overflow series (otel.metric.overflow=true), by rollup.",
    );
    let mut evicted = Family::new(
        "flowtel.rollup.evicted",
        "{key}",
        Kind::Counter,
        "Keys evicted by the bounded key table (their value went to the overflow series), by rollup.",
    );
    for (name, s) in finished {
        let l = || vec![("rollup", name.to_string())];
        windows.push(l(), s.windows_emitted);
        series.push(l(), s.points_emitted);
        overflow.push(l(), s.keys_overflowed);
        evicted.push(l(), s.keys_evicted);
    }
    vec![records, filtered, late, windows, series, overflow, evicted]
}

/// `flowtel.export.*` and `flowtel.queue.depth` from the OTLP exporter.
fn export_families(e: &ExportStatsSnapshot) -> Vec<Family> {
    let mut failed = Family::new(
        "flowtel.export.failed",
        "{request}",
        Kind::Counter,
        "Failed export attempts, by reason: the gRPC status the server answered, or timeout, connect, tls_handshake, transport.",
    );
    for r in FailureReason::ALL {
        failed.push(vec![("reason", r.as_str().to_owned())], e.failed(r));
    }
    let mut dropped = Family::new(
        "flowtel.export.windows.dropped",
        "{window}",
        Kind::Counter,
        "Windows dropped before export, by reason.",
    );
    let mut dropped_points = Family::new(
        "flowtel.export.points.dropped",
        "{point}",
        Kind::Counter,
        "Data points in the windows dropped before export, by reason.",
    );
    for r in flowtel_otlp::DropReason::ALL {
        let l = || vec![("reason", r.as_str().to_owned())];
        dropped.push(l(), e.batches_dropped(r));
        dropped_points.push(l(), e.items_dropped(r));
    }
    let c = |name, unit, help, v: u64| Family::new(name, unit, Kind::Counter, help).with(vec![], v);
    let g = |name, unit, help, v: u64| Family::new(name, unit, Kind::Gauge, help).with(vec![], v);
    vec![
        c(
            "flowtel.export.requests",
            "{request}",
            "Export requests answered OK.",
            e.requests_ok,
        ),
        failed,
        c(
            "flowtel.export.retries",
            "{request}",
            "Export attempts made after a retryable failure.",
            e.retries,
        ),
        c(
            "flowtel.export.points.sent",
            "{point}",
            "Data points in requests answered OK.",
            e.items_sent,
        ),
        c(
            "flowtel.export.points.rejected",
            "{point}",
            "Data points the receiver rejected in a partial success.",
            e.items_rejected,
        ),
        c(
            "flowtel.export.points.failed",
            "{point}",
            "Data points given up on (non-retryable error).",
            e.items_failed,
        ),
        c(
            "flowtel.export.windows.queued",
            "{window}",
            "Windows accepted by the export queue.",
            e.batches_queued,
        ),
        dropped,
        dropped_points,
        g(
            "flowtel.queue.depth",
            "{window}",
            "Windows waiting in the export queue.",
            e.queue_depth,
        ),
        g(
            "flowtel.export.failing",
            "1",
            "1 while the OTLP endpoint fails (from the first failed attempt to the next success), else 0.",
            u64::from(e.failing_since_unix_ms.is_some()),
        ),
    ]
}

/// Merge the same window of every worker, then finish each (top-K over the merged window).
/// Output order: window start, then rollup name.
pub fn merge_windows(
    aggregates: Vec<WindowAggregate>,
    finished: &mut BTreeMap<Arc<str>, RollupStats>,
) -> Vec<WindowBatch> {
    let mut groups: BTreeMap<(u64, String), WindowAggregate> = BTreeMap::new();
    for a in aggregates {
        let key = (a.start_time_unix_nano(), a.rollup().to_owned());
        match groups.remove(&key) {
            None => {
                groups.insert(key, a);
            }
            Some(mut merged) => {
                if let Err(e) = merged.merge(a) {
                    // Same key means same rollup and window: a bug, never input.
                    error!(error = %e, "cannot merge worker windows");
                }
                groups.insert(key, merged);
            }
        }
    }
    groups
        .into_iter()
        .map(|((_, name), a)| {
            let stats = finished.entry(Arc::from(name.as_str())).or_default();
            a.finish(stats)
        })
        .collect()
}

/// Bound sockets, grouped by worker, and the local address of each listen address.
type BoundSockets = (Vec<Vec<socket2::Socket>>, Vec<SocketAddr>);

fn bind_sockets(config: &Config, workers: usize) -> anyhow::Result<BoundSockets> {
    let mut per_worker: Vec<Vec<socket2::Socket>> = (0..workers).map(|_| Vec::new()).collect();
    let mut locals = Vec::with_capacity(config.listen.len());
    for &addr in &config.listen {
        let first = listener::bind(addr, config.recv_buffer_bytes)
            .with_context(|| format!("cannot listen on udp {addr}"))?;
        let local = first.local;
        locals.push(local);
        if listener::buffer_capped(config.recv_buffer_bytes, first.recv_buffer_bytes) {
            warn!(
                listen = %local,
                requested_bytes = config.recv_buffer_bytes,
                granted_bytes = first.recv_buffer_bytes,
                kernel_reported_bytes = first.kernel_recv_buffer_bytes,
                rmem_max = %listener::rmem_max().map_or_else(|| "unknown".to_owned(), |m| m.to_string()),
                "receive buffer capped by the kernel; raise net.core.rmem_max to at least requested_bytes to avoid drops"
            );
        }
        info!(listen = %local, workers, recv_buffer_bytes = first.recv_buffer_bytes, "listening for NetFlow v5/v9, IPFIX and sFlow");
        let mut sockets = vec![first.socket];
        for _ in 1..workers {
            let s = listener::bind(local, config.recv_buffer_bytes)
                .with_context(|| format!("cannot listen on udp {local}"))?;
            sockets.push(s.socket);
        }
        for (w, s) in sockets.into_iter().enumerate() {
            if let Some(v) = per_worker.get_mut(w) {
                v.push(s);
            }
        }
    }
    Ok((per_worker, locals))
}

/// Run the daemon until SIGINT/SIGTERM. Installs the log subscriber (with the OTLP log bridge
/// when `tee_logs`), then logs `startup_warnings` (e.g. unimplemented ktranslate flags).
pub fn run(config: Config, startup_warnings: &[String]) -> anyhow::Result<()> {
    run_with(config, startup_warnings, Hooks::default())
}

/// The daemon's bound addresses (port 0 resolved to the port the kernel chose).
#[derive(Debug, Clone)]
pub struct Listening {
    /// One per listen address, in configuration order.
    pub udp: Vec<SocketAddr>,
    /// The `/metrics`, `/healthz` and `/readyz` endpoint.
    pub http: SocketAddr,
}

/// [`Hooks::on_listening`].
pub type OnListening = Box<dyn FnOnce(&Listening) -> anyhow::Result<()> + Send>;
/// [`Hooks::on_windows`].
pub type OnWindows = Box<dyn FnMut(&[WindowBatch], bool) + Send>;
/// [`Hooks::stop`].
pub type StopFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a command embedding the daemon (`flowtel demo`) adds to it; the default adds nothing.
#[derive(Default)]
pub struct Hooks {
    /// Called once every socket is bound, with their addresses, before any datagram is read.
    pub on_listening: Option<OnListening>,
    /// Called with the merged windows of every flush, before the sinks get them; `final_flush`
    /// is true for the shutdown flush, whose windows are partial.
    pub on_windows: Option<OnWindows>,
    /// Stops the daemon, as SIGINT/SIGTERM do, when it completes.
    pub stop: Option<StopFuture>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("on_listening", &self.on_listening.is_some())
            .field("on_windows", &self.on_windows.is_some())
            .field("stop", &self.stop.is_some())
            .finish()
    }
}

/// [`run`] with [`Hooks`].
pub fn run_with(config: Config, startup_warnings: &[String], hooks: Hooks) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("flowtel-io")
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let resource = resource(&config);
        let logs = if config.tee_logs && config.has_sink(SinkKind::Otlp) {
            Some(crate::telemetry::logger_provider(&config, &resource)?)
        } else {
            None
        };
        crate::telemetry::init_logging(&config, logs.as_ref())?;
        if config.tee_logs && logs.is_none() {
            warn!("tee_logs needs the otlp sink; logs go to stderr only");
        }
        for w in startup_warnings {
            warn!("{w}");
        }
        let result = serve(config, resource, hooks).await;
        if let Some(p) = logs {
            let _ = tokio::task::spawn_blocking(move || p.shutdown()).await;
        }
        result
    })
}

/// Read the GeoIP databases once; every worker shares them.
pub fn pipeline_spec(config: &Config) -> anyhow::Result<pipeline::PipelineSpec> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).with_context(|| format!("cannot read GeoIP database {}", p.display()))
    };
    let country_db = match &config.enrichment.geoip_country_db {
        Some(p) => Some(Arc::new(
            flowtel_rollup::CountryDb::from_bytes(read(p)?)
                .with_context(|| format!("invalid GeoIP database {}", p.display()))?,
        )),
        None => None,
    };
    let asn_db = match &config.enrichment.geoip_asn_db {
        Some(p) => Some(Arc::new(
            flowtel_rollup::AsnDb::from_bytes(read(p)?)
                .with_context(|| format!("invalid ASN database {}", p.display()))?,
        )),
        None => None,
    };
    Ok(pipeline::PipelineSpec {
        decoder: config.decoder.to_decoder_config(),
        enrichment: config.enrichment.clone(),
        rollups: config.rollups.clone(),
        country_db,
        asn_db,
    })
}

/// The OTLP resource: `service.name`, `service.version`, `service.instance.id`, `host.name`,
/// then the configured attributes (`OTEL_RESOURCE_ATTRIBUTES`, `resource.attributes`).
pub fn resource(config: &Config) -> flowtel_otlp::ResourceConfig {
    flowtel_otlp::ResourceConfig {
        service_name: config
            .resource
            .service_name
            .clone()
            .unwrap_or_else(|| "flowtel".to_owned()),
        service_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
        service_instance_id: Some(instance_id()),
        host_name: nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok()),
        extra: config
            .resource
            .attributes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// A random UUID (version 4) for `service.instance.id`, from the standard library's
/// per-process random hash keys.
fn instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let word = |salt: u64| {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(salt ^ now_ns());
        h.write_u32(std::process::id());
        h.finish()
    };
    let (a, b) = (word(1), word(2));
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&a.to_be_bytes());
    bytes[8..].copy_from_slice(&b.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4 (RFC 9562 §5.4)
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // variant 10
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn exporter_config(
    config: &Config,
    resource: &flowtel_otlp::ResourceConfig,
) -> anyhow::Result<flowtel_otlp::queue::ExporterConfig> {
    let o = &config.otlp;
    Ok(flowtel_otlp::queue::ExporterConfig {
        client: o.client_config("otlp")?,
        convert: flowtel_otlp::ConvertConfig {
            resource: resource.clone(),
            temporality: match o.temporality {
                crate::config::Temporality::Gauge => flowtel_otlp::Temporality::Gauge,
                crate::config::Temporality::Delta => flowtel_otlp::Temporality::DeltaSum,
                crate::config::Temporality::Cumulative => flowtel_otlp::Temporality::CumulativeSum,
            },
            max_points_per_request: o.max_points_per_request,
            ..flowtel_otlp::ConvertConfig::default()
        },
        queue: flowtel_otlp::QueueConfig {
            capacity: o.queue_max_windows,
            ..flowtel_otlp::QueueConfig::default()
        },
    })
}

async fn serve(
    config: Config,
    resource: flowtel_otlp::ResourceConfig,
    mut hooks: Hooks,
) -> anyhow::Result<()> {
    let n = config.effective_workers();
    let spec = pipeline_spec(&config)?;
    let exporter = if config.has_sink(SinkKind::Otlp) {
        let e = flowtel_otlp::Exporter::start(&exporter_config(&config, &resource)?)
            .context("cannot set up the OTLP exporter")?;
        info!(endpoint = %config.otlp.endpoint, "exporting over OTLP/gRPC");
        Some(e)
    } else {
        None
    };
    let (sockets, local_addrs) = bind_sockets(&config, n)?;

    let ready = Arc::new(AtomicBool::new(false));
    let mut handover_tx = Vec::with_capacity(n);
    let mut handover_rx = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = std::sync::mpsc::sync_channel(worker::HANDOVER_CAPACITY);
        handover_tx.push(tx);
        handover_rx.push(rx);
    }
    let routing = Arc::new(Routing::new(handover_tx));
    let stop_receiving = Arc::new(AtomicBool::new(false));
    let worker_stats: Vec<_> = (0..n)
        .map(|_| Arc::new(Mutex::new(WorkerStats::default())))
        .collect();
    let shared = Arc::new(Shared {
        workers: worker_stats.clone(),
        routing: Arc::clone(&routing),
        last_windows: RwLock::new(BTreeMap::new()),
        finished: Mutex::new(BTreeMap::new()),
        export: exporter.as_ref().map(|e| Arc::clone(e.stats())),
        serve_flow_series: config.has_sink(SinkKind::Prometheus),
        silent_after_ns: config
            .exporter_silent_after_secs
            .saturating_mul(1_000_000_000),
    });

    // HTTP endpoint first, so probes answer while the workers start.
    let metrics_shared = Arc::clone(&shared);
    let (http_addr, http) = crate::prometheus::bind(
        config.prometheus_listen,
        crate::prometheus::Endpoint {
            metrics: Box::new(move || metrics_shared.metrics_body()),
            ready: Arc::clone(&ready),
        },
    )
    .await?;
    info!(listen = %http_addr, "serving /metrics, /healthz and /readyz");
    let http_task = tokio::spawn(http);

    // Our own metrics over OTLP, to the same endpoint as the flow series.
    let self_metrics = if config.has_sink(SinkKind::Otlp) {
        let s = Arc::clone(&shared);
        Some(crate::telemetry::start_self_metrics(
            &config,
            &resource,
            Box::new(move || s.self_metrics()),
        )?)
    } else {
        None
    };

    if let Some(f) = hooks.on_listening.take() {
        f(&Listening {
            udp: local_addrs,
            http: http_addr,
        })?;
    }
    let mut controls = Vec::with_capacity(n);
    let mut threads = Vec::with_capacity(n);
    for (id, (socks, hrx)) in sockets.into_iter().zip(handover_rx).enumerate() {
        let (ctl_tx, ctl_rx) = std::sync::mpsc::channel();
        controls.push(ctl_tx);
        let w = Worker {
            id,
            sockets: socks,
            pipeline: pipeline::WorkerPipeline::new(&spec)?,
            routing: Arc::clone(&routing),
            handover_rx: hrx,
            control_rx: ctl_rx,
            stop_receiving: Arc::clone(&stop_receiving),
            shared: Arc::clone(&worker_stats[id]),
        };
        let t = std::thread::Builder::new()
            .name(format!("flowtel-rx-{id}"))
            .spawn(move || w.run())
            .context("cannot start a receive worker")?;
        threads.push(t);
    }
    ready.store(true, Ordering::Relaxed);

    let mut sinks = Sinks {
        stdout: config.has_sink(SinkKind::Stdout),
        prometheus: config.has_sink(SinkKind::Prometheus),
        otlp: exporter.as_ref().map(flowtel_otlp::Exporter::queue),
        shared: Arc::clone(&shared),
        hook: hooks.on_windows.take(),
    };
    let interval_ns = config.flush_interval_secs().saturating_mul(1_000_000_000);
    // Flush shortly after each boundary so datagrams received just before it are counted.
    let flush_delay_ns = (interval_ns / 10).min(1_000_000_000);
    let mut reporter = ExporterReporter::new(&config);
    let extra_stop = hooks.stop.take();
    let shutdown = async move {
        match extra_stop {
            Some(stop) => {
                tokio::select! {
                    _ = shutdown_signal() => {}
                    _ = stop => {}
                }
            }
            None => shutdown_signal().await,
        }
    };
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_flush = (now_ns() / interval_ns + 1) * interval_ns + flush_delay_ns;
    loop {
        let until_flush = Duration::from_nanos(next_flush.saturating_sub(now_ns()));
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => reporter.report(&shared.totals(), now_ns()),
            _ = tokio::time::sleep(until_flush) => {
                let now = now_ns();
                let windows = flush_workers(&controls, n, now, false).await;
                sinks.emit(windows, false);
                next_flush = (now / interval_ns + 1) * interval_ns + flush_delay_ns;
            }
        }
    }

    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let deadline = tokio::time::Instant::now() + grace;
    info!(
        grace_secs = config.shutdown_grace_secs,
        "shutting down: flushing the open window"
    );
    ready.store(false, Ordering::Relaxed);
    stop_receiving.store(true, Ordering::Relaxed);
    let windows = flush_workers(&controls, n, now_ns(), true).await;
    sinks.emit(windows, true);
    for t in threads {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    if let Some(e) = exporter {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let report = e.shutdown(left).await;
        if report.flushed {
            info!("export queue drained");
        } else {
            warn!(
                windows_dropped = report.batches_dropped,
                "export queue not drained within the grace period"
            );
        }
    }
    if let Some(p) = self_metrics {
        // One last export of our counters (blocking: the SDK's reader thread does the I/O).
        let _ = tokio::task::spawn_blocking(move || p.shutdown()).await;
    }
    http_task.abort();
    info!("stopped");
    Ok(())
}

/// Ask every worker for its closed windows (all windows with `last`), merge and finish them.
async fn flush_workers(
    controls: &[std::sync::mpsc::Sender<Control>],
    n: usize,
    now: u64,
    last: bool,
) -> Vec<WindowAggregate> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<FlushReply>();
    let mut expected = 0;
    for c in controls {
        if c.send(Control::Flush {
            now_ns: now,
            last,
            reply: tx.clone(),
        })
        .is_ok()
        {
            expected += 1;
        }
    }
    drop(tx);
    let mut replies = Vec::with_capacity(n);
    let wait = listener::RECV_TIMEOUT * 40;
    while replies.len() < expected {
        match tokio::time::timeout(wait, rx.recv()).await {
            Ok(Some(r)) => replies.push(r),
            Ok(None) => break,
            Err(_) => {
                warn!(
                    answered = replies.len(),
                    expected, "a receive worker did not answer the flush in time"
                );
                break;
            }
        }
    }
    // Deterministic merge order whatever the answer order.
    replies.sort_by_key(|r| r.worker);
    replies.into_iter().flat_map(|r| r.windows).collect()
}

/// The configured sinks. None of them blocks: stdout writes a few lines, the Prometheus sink
/// swaps a map entry, the OTLP sink pushes into a bounded queue.
struct Sinks {
    stdout: bool,
    prometheus: bool,
    otlp: Option<flowtel_otlp::ExportQueue>,
    shared: Arc<Shared>,
    /// [`Hooks::on_windows`].
    hook: Option<OnWindows>,
}

impl Sinks {
    fn emit(&mut self, windows: Vec<WindowAggregate>, final_flush: bool) {
        if windows.is_empty() {
            return;
        }
        let batches = {
            let mut finished = self
                .shared
                .finished
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            merge_windows(windows, &mut finished)
        };
        if let Some(hook) = &mut self.hook {
            hook(&batches, final_flush);
        }
        if self.stdout {
            use std::io::Write;
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            for b in &batches {
                for p in &b.points {
                    let _ = writeln!(out, "{}", point_json(p));
                }
            }
            let _ = out.flush();
        }
        if self.prometheus {
            let mut last = self
                .shared
                .last_windows
                .write()
                .unwrap_or_else(|p| p.into_inner());
            for b in &batches {
                let newer = last
                    .get(&b.rollup)
                    .is_none_or(|old| old.time_unix_nano <= b.time_unix_nano);
                if newer {
                    last.insert(Arc::clone(&b.rollup), b.clone());
                }
            }
        }
        if let Some(q) = &self.otlp {
            // A full queue drops its oldest window; the queue counts and logs it.
            for b in batches {
                q.try_push(b);
            }
        }
    }
}

/// One stdout line: `{"metric", "unit", "attributes": {…}, "value", "start_time_unix_nano",
/// "time_unix_nano"}`, the offline pipeline's format.
pub fn point_json(p: &flowtel_rollup::Point) -> serde_json::Value {
    let attributes: serde_json::Map<String, serde_json::Value> = p
        .attributes
        .iter()
        .map(|(k, v)| {
            let v = match v {
                flowtel_rollup::AttrValue::Str(s) => serde_json::Value::from(&**s),
                flowtel_rollup::AttrValue::Int(i) => serde_json::Value::from(*i),
                flowtel_rollup::AttrValue::Bool(b) => serde_json::Value::from(*b),
            };
            (k.to_string(), v)
        })
        .collect();
    serde_json::json!({
        "metric": &*p.metric,
        "unit": &*p.unit,
        "attributes": attributes,
        "value": p.value,
        "start_time_unix_nano": p.start_time_unix_nano,
        "time_unix_nano": p.time_unix_nano,
    })
}

/// Per-exporter log lines: first seen (logged by the owning worker), silent, back, and a
/// periodic rate report.
#[derive(Debug)]
struct ExporterReporter {
    silent_after_ns: u64,
    report_every_ns: u64,
    silent: std::collections::HashSet<Option<IpAddr>>,
    last_report_ns: u64,
    last_counts: std::collections::HashMap<Option<IpAddr>, (u64, u64)>,
}

impl ExporterReporter {
    fn new(config: &Config) -> Self {
        ExporterReporter {
            silent_after_ns: config
                .exporter_silent_after_secs
                .saturating_mul(1_000_000_000),
            report_every_ns: config
                .exporter_report_interval_secs
                .saturating_mul(1_000_000_000),
            silent: Default::default(),
            last_report_ns: now_ns(),
            last_counts: Default::default(),
        }
    }

    fn report(&mut self, totals: &WorkerStats, now: u64) {
        for (ip, e) in &totals.exporters {
            let label = ip.map_or_else(|| "other".to_owned(), |ip| ip.to_string());
            let quiet = now.saturating_sub(e.last_seen_ns) >= self.silent_after_ns;
            if quiet && self.silent.insert(*ip) {
                warn!(exporter = %label, silent_secs = self.silent_after_ns / 1_000_000_000, "exporter went silent");
            } else if !quiet && self.silent.remove(ip) {
                info!(exporter = %label, "exporter is sending again");
            }
        }
        if self.report_every_ns == 0
            || now.saturating_sub(self.last_report_ns) < self.report_every_ns
        {
            return;
        }
        let secs = (now.saturating_sub(self.last_report_ns) as f64 / 1e9).max(1e-9);
        for (ip, e) in &totals.exporters {
            let label = ip.map_or_else(|| "other".to_owned(), |ip| ip.to_string());
            let (d0, r0) = self.last_counts.get(ip).copied().unwrap_or((0, 0));
            let (d, r) = (e.datagrams(), e.records);
            info!(
                exporter = %label,
                datagrams_per_sec = format!("{:.1}", d.saturating_sub(d0) as f64 / secs),
                records_per_sec = format!("{:.1}", r.saturating_sub(r0) as f64 / secs),
                "exporter rates"
            );
            self.last_counts.insert(*ip, (d, r));
        }
        self.last_report_ns = now;
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
