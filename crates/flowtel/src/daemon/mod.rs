//! The daemon behind `flowtel run`: UDP listeners, receive workers, the flush loop, sinks and
//! shutdown.
//!
//! # The path of one datagram
//!
//! 1. The kernel hashes the datagram's 4-tuple onto one socket of the listen address's
//!    SO_REUSEPORT group ([`listener`]); each receive worker owns one socket per listen address.
//! 2. The worker, blocked in one `epoll_wait` over all its sockets, wakes and takes a batch
//!    with `recvmmsg` ([`worker`]).
//! 3. It looks the exporter up in its routing cache: another worker owns it → the datagram goes
//!    into a hand-over batch for that worker; else it is decoded here.
//! 4. [`WorkerPipeline::process`]: decode (templates per exporter), enrich, push into every
//!    rollup's open window; with a per-flow sink, the enriched record is kept for the pass.
//! 5. After the pass, the worker hands its records to the record sinks ([`SinkSet::records`],
//!    each a non-blocking push into the sink's own bounded queue) and publishes its counters.
//! 6. Shortly after each window boundary the flush loop asks every worker for its closed
//!    windows, merges the same window of all workers ([`Flushed::finish`]), chooses the top-K
//!    once, and hands the result to the window sinks ([`SinkSet::windows`]).
//! 7. Each sink delivers from its own task or thread (OTLP with retries, stdout, the Prometheus
//!    slot served on `/metrics`).
//!
//! # Threading model
//!
//! - **Receive workers** are plain OS threads (one per core by default). Nothing on the
//!   per-datagram path takes a lock, allocates or waits on another thread: counters are merged
//!   into the worker's shared copy once per pass, hand-overs and records are sent once per pass.
//! - **The flush loop** (a tokio task) wakes shortly after each window boundary and talks to the
//!   workers over control channels plus a [`mio::Waker`], so it is answered at once whether the
//!   sockets are idle or saturated.
//! - **Sinks**, the **HTTP endpoint** (`/metrics`, `/healthz`, `/readyz`) and the self-telemetry
//!   exporter run on a small tokio runtime; the receive path never waits on any of them.
//!
//! # Shutdown
//!
//! On SIGINT or SIGTERM: `/readyz` turns 503; every worker stops reading its sockets and says so
//! (after which it hands nothing more over); then every worker decodes what was handed over and
//! emits every open window including the partial one; the sinks get them and have until
//! `shutdown_grace_secs` to deliver; the process then exits 0.
//!
//! # A component that panics
//!
//! A panic is a bug (bad input is counted, never fatal), and the state it leaves behind (a
//! half-read template, a rollup batch half added, a delivery half done) cannot be trusted, so
//! nothing is restarted in place. A receive worker's thread catches its panic and reports it to
//! the flush loop at once; a sink's delivery task or thread keeps its panic for
//! [`Sink::panicked`], which the flush loop reads every second. Either way the flush loop logs
//! it and shuts the daemon down as for SIGTERM: the other workers' windows are emitted and the
//! other sinks deliver. A failed worker's open windows, its undelivered per-flow records and the
//! datagrams it had not decoded are lost, and its sockets close as it unwinds (the kernel then
//! hashes their exporters onto the others' sockets, whose hand-overs to the dead owner are
//! counted as `handover_queue_full` drops); a failed sink's queue is lost. [`run`] then returns
//! the [`Failure`], so the process exits 1 and its service manager (systemd's
//! `Restart=on-failure`, Kubernetes, compose's `restart: unless-stopped`) starts a fresh one.
//! Carrying on would lose the worker's traffic, or fill the sink's queue, while `/healthz` still
//! answered 200; restarting only the component would start its counters again beside the
//! others'. Vector's topology stops the same way when a component panics.

pub mod access;
pub mod coalesce;
pub mod listener;
pub mod worker;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use flowtel_rollup::RollupStats;
use tracing::{error, info, warn};

use crate::clock::now_ns;
use crate::config::{Config, SinkKind};
use crate::pipeline::stats::WorkerStats;
use crate::pipeline::{Flushed, PipelineSpec, WorkerPipeline};
use crate::sinks::{Sink, SinkSet, Windows};
use crate::telemetry::Family;
use worker::{Control, FlushReply, Routing, Worker, WorkerLink};

/// How long the flush loop waits for every worker's answer.
const FLUSH_REPLY_TIMEOUT: Duration = Duration::from_secs(2);

/// A component that panicked, which stopped the daemon (see "A component that panics" above).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A receive worker's thread.
    Worker { worker: usize, message: String },
    /// A sink's delivery task or thread.
    Sink { sink: String, message: String },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Worker { worker, message } => {
                write!(f, "receive worker {worker} panicked: {message}")
            }
            Failure::Sink { sink, message } => write!(f, "sink {sink} panicked: {message}"),
        }
    }
}

impl std::error::Error for Failure {}

/// State shared by the flush loop, the HTTP endpoint and the telemetry exporter.
#[derive(Debug)]
pub struct Shared {
    workers: Vec<Arc<Mutex<WorkerStats>>>,
    routing: Arc<Routing>,
    /// The decoder state limits every worker shares (live usage, daemon-wide).
    budget: Arc<flowtel_decode::Budget>,
    /// Counters of the flush loop's finishing of merged windows, per rollup.
    finished: Mutex<BTreeMap<Arc<str>, RollupStats>>,
    sinks: SinkSet,
    silent_after_ns: u64,
    /// The kernel's drop counts of every listening socket.
    socket_drops: listener::KernelDrops,
}

impl Shared {
    /// Sum of every worker's counters, with the kernel's drops on the sockets read now.
    pub fn totals(&self) -> WorkerStats {
        let mut total = self.worker_totals();
        total.socket_drops = self.socket_drops.read();
        total
    }

    /// Sum of every worker's counters, without the kernel's drops (`socket_drops` 0): what
    /// the reporter looks at every second, which reads the drops only for its periodic line
    /// (the kernel's UDP tables are read whole, a line per socket on the host).
    fn worker_totals(&self) -> WorkerStats {
        let mut total = WorkerStats::default();
        for w in &self.workers {
            let w = w.lock().unwrap_or_else(|p| p.into_inner());
            total.merge(&w);
        }
        total
    }

    /// Every `flowtel.*` metric, read now.
    pub fn self_metrics(&self) -> Vec<Family> {
        let totals = self.totals();
        let finished = self
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = crate::metrics::families(&crate::metrics::Inputs {
            totals: &totals,
            finished: &finished,
            exporters_known: self.routing.exporters() as u64,
            active_since_ns: now_ns().saturating_sub(self.silent_after_ns),
            budget: &self.budget,
        });
        out.extend(self.sinks.families());
        out
    }

    /// The `/metrics` body.
    pub fn metrics_body(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        if let Some(p) = self.sinks.prometheus() {
            p.render(&mut out);
        }
        crate::exposition::render_families(&self.self_metrics(), &mut out);
        out
    }

    /// Merge and finish one flush's worker windows, then hand them to the window sinks.
    fn emit(&self, windows: Flushed, final_flush: bool) {
        if windows.is_empty() {
            return;
        }
        let batches = {
            let mut finished = self.finished.lock().unwrap_or_else(|p| p.into_inner());
            windows.finish(&mut finished)
        };
        self.sinks.windows(Windows {
            batches,
            final_flush,
        });
    }
}

/// Bound sockets, grouped by worker; the local address of each listen address; the sockets'
/// inodes, for their drop counts.
type BoundSockets = (Vec<Vec<std::net::UdpSocket>>, Vec<SocketAddr>, Vec<u64>);

fn bind_sockets(config: &Config, workers: usize) -> anyhow::Result<BoundSockets> {
    let mut per_worker: Vec<Vec<std::net::UdpSocket>> = (0..workers).map(|_| Vec::new()).collect();
    let mut locals = Vec::with_capacity(config.listen.len());
    let mut inodes = Vec::new();
    let mut capped = None;
    for &addr in &config.listen {
        let group = listener::bind_group(addr, workers, config.recv_buffer_bytes)
            .with_context(|| format!("cannot listen on udp {addr}"))?;
        let Some(first) = group.first() else {
            anyhow::bail!("cannot listen on udp {addr}: no socket bound");
        };
        let local = first.local;
        locals.push(local);
        if listener::buffer_capped(config.recv_buffer_bytes, first.recv_buffer_bytes) {
            capped = Some(capped.map_or(first.recv_buffer_bytes, |c: usize| {
                c.min(first.recv_buffer_bytes)
            }));
        }
        info!(listen = %local, workers, recv_buffer_bytes = first.recv_buffer_bytes, "listening for NetFlow v5/v9, IPFIX and sFlow");
        for (w, s) in group.into_iter().enumerate() {
            inodes.extend(listener::socket_inode(&s.socket));
            if let Some(v) = per_worker.get_mut(w) {
                v.push(s.socket);
            }
        }
    }
    let requested = config.recv_buffer_bytes;
    let rmem_max = listener::rmem_max();
    if let Some(granted) = capped {
        warn!(
            "receive buffers are {granted} bytes, not the {requested} requested: the kernel caps \
             them at net.core.rmem_max ({}); bursts beyond that are dropped (counted in \
             flowtel_socket_drops_total). Raise the cap (as root on the host: sysctl -w \
             net.core.rmem_max={requested}) or give flowtel CAP_NET_ADMIN, with which it \
             exceeds the cap",
            rmem_max.map_or_else(|| "unknown".to_owned(), |m| m.to_string())
        );
    } else if let Some(max) = rmem_max.filter(|m| *m < requested) {
        info!(
            "receive buffers of {requested} bytes granted beyond net.core.rmem_max ({max}) with \
             CAP_NET_ADMIN (SO_RCVBUFFORCE)"
        );
    }
    Ok((per_worker, locals, inodes))
}

/// Check everything `run` checks at start before binding sockets, without starting anything:
/// the GeoIP databases load, the rollups and record rules compile, and the OTLP TLS material
/// reads. `flowtel check-config` runs it, so a configuration it passes starts.
pub fn preflight(config: &Config) -> anyhow::Result<()> {
    let spec = PipelineSpec::from_config(config)?;
    WorkerPipeline::new(&spec)?;
    if config.has_sink(SinkKind::Otlp) {
        crate::sinks::otlp::exporter_config(config, &resource(config))?;
    }
    if config.has_sink(SinkKind::FlowHttp) {
        config.flow_http.check()?;
    }
    if config.has_sink(SinkKind::FlowLogs) {
        config
            .flow_logs
            .otlp
            .as_ref()
            .unwrap_or(&config.otlp)
            .client_config("flow-logs")?;
    }
    if config.has_sink(SinkKind::Kafka) {
        crate::sinks::kafka::Settings::from_config(config)?;
    }
    Ok(())
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
/// [`Hooks::stop`].
pub type StopFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
/// [`Hooks::reload`].
pub type ReloadConfig = Box<dyn Fn() -> anyhow::Result<Config> + Send>;

/// What a command embedding the daemon (`flowtel demo`) adds to it; the default adds nothing.
#[derive(Default)]
pub struct Hooks {
    /// Called once every socket is bound, with their addresses, before any datagram is read.
    pub on_listening: Option<OnListening>,
    /// Sinks of the embedding command, after the configured ones.
    pub sinks: Vec<Arc<dyn Sink>>,
    /// Stops the daemon, as SIGINT/SIGTERM do, when it completes.
    pub stop: Option<StopFuture>,
    /// Reads the configuration again, for SIGHUP (without it SIGHUP is logged and ignored).
    pub reload: Option<ReloadConfig>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("on_listening", &self.on_listening.is_some())
            .field("sinks", &self.sinks.len())
            .field("stop", &self.stop.is_some())
            .field("reload", &self.reload.is_some())
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

/// The workers' handles kept by the flush loop.
struct Workers {
    controls: Vec<std::sync::mpsc::Sender<Control>>,
    routing: Arc<Routing>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    /// Send `make(reply)` to every worker and wake it; returns how many were reached.
    fn send<T>(
        &self,
        make: impl Fn(tokio::sync::mpsc::UnboundedSender<T>) -> Control,
    ) -> (usize, tokio::sync::mpsc::UnboundedReceiver<T>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut reached = 0;
        for (id, c) in self.controls.iter().enumerate() {
            if c.send(make(tx.clone())).is_ok() {
                self.routing.wake(id);
                reached += 1;
            }
        }
        (reached, rx)
    }

    /// Ask every worker for its closed windows (with `finish`, all of them, then the workers
    /// exit); the answers, in worker order.
    async fn flush(&self, now: u64, finish: bool) -> Flushed {
        let (expected, mut rx) = if finish {
            self.send(|reply| Control::Finish { now_ns: now, reply })
        } else {
            self.send(|reply| Control::Flush { now_ns: now, reply })
        };
        let mut replies: Vec<FlushReply> = collect(expected, &mut rx).await;
        // Deterministic merge order whatever the answer order.
        replies.sort_by_key(|r| r.worker);
        let mut all = Flushed::default();
        for r in replies {
            all.extend(r.windows);
        }
        all
    }

    /// Replace every worker's enrichment and record selection; waits for every answer.
    async fn reload(&self, live: &Arc<crate::pipeline::Reloadable>) {
        let (expected, mut rx) = self.send(|reply| Control::Reload {
            live: Arc::clone(live),
            reply,
        });
        let _: Vec<usize> = collect(expected, &mut rx).await;
    }

    /// Stop every worker reading its sockets, and wait until each has (shutdown phase one).
    async fn stop_receiving(&self) {
        let (expected, mut rx) = self.send(|reply| Control::Stop { reply });
        let _: Vec<usize> = collect(expected, &mut rx).await;
    }
}

/// Up to `expected` answers, waiting at most [`FLUSH_REPLY_TIMEOUT`] for each.
async fn collect<T>(expected: usize, rx: &mut tokio::sync::mpsc::UnboundedReceiver<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(expected);
    while out.len() < expected {
        match tokio::time::timeout(FLUSH_REPLY_TIMEOUT, rx.recv()).await {
            Ok(Some(r)) => out.push(r),
            Ok(None) => break,
            Err(_) => {
                warn!(
                    answered = out.len(),
                    expected, "a receive worker did not answer in time"
                );
                break;
            }
        }
    }
    out
}

/// Start one thread per worker, each with its sockets and pipeline. A worker that panics is
/// reported on `failures`.
fn start_workers(
    config: &Config,
    sockets: Vec<Vec<std::net::UdpSocket>>,
    spec: &PipelineSpec,
    sinks: &SinkSet,
    stats: &[Arc<Mutex<WorkerStats>>],
    failures: &tokio::sync::mpsc::UnboundedSender<Failure>,
) -> anyhow::Result<Workers> {
    let n = sockets.len();
    let mut links = Vec::with_capacity(n);
    let mut inboxes = Vec::with_capacity(n);
    for _ in 0..n {
        let (poll, waker) = Worker::poller().context("cannot create a receive worker's poller")?;
        let (handover, handover_rx) = std::sync::mpsc::sync_channel(worker::HANDOVER_CAPACITY);
        let (recycle, recycle_rx) = std::sync::mpsc::sync_channel(worker::HANDOVER_CAPACITY);
        links.push(WorkerLink {
            handover,
            recycle,
            waker,
            thread: std::sync::OnceLock::new(),
        });
        inboxes.push((poll, handover_rx, recycle_rx));
    }
    let routing = Arc::new(Routing::new(links, config.decoder.max_exporters));
    let mut controls = Vec::with_capacity(n);
    let mut threads = Vec::with_capacity(n);
    for (id, (socks, (poll, handover_rx, recycle_rx))) in
        sockets.into_iter().zip(inboxes).enumerate()
    {
        let (ctl_tx, control_rx) = std::sync::mpsc::channel();
        controls.push(ctl_tx);
        // The smallest buffer bounds the pause (coalesce.rs); the kernel's read-back, in the
        // bytes it charges.
        let buffer = socks
            .iter()
            .filter_map(|s| socket2::SockRef::from(s).recv_buffer_size().ok())
            .min()
            .unwrap_or(0);
        let coalesce = coalesce::Coalesce::new(
            std::time::Duration::from_micros(config.receive_coalesce_us),
            buffer,
            crate::clock::now_ns(),
        );
        let w = Worker {
            id,
            sockets: socks,
            access: config
                .listen
                .iter()
                .map(|l| access::Access::for_listen(&config.access, *l))
                .collect(),
            pipeline: WorkerPipeline::new(spec)?,
            sinks: sinks.clone(),
            routing: Arc::clone(&routing),
            handover_rx,
            recycle_rx,
            control_rx,
            shared: Arc::clone(&stats[id]),
            poll,
            coalesce,
        };
        let failures = failures.clone();
        let t = std::thread::Builder::new()
            .name(format!("flowtel-rx-{id}"))
            .spawn(move || {
                // The worker is dropped as the panic unwinds (its sockets close); nothing of it
                // is used again, so its state's consistency does not matter here.
                if let Err(payload) =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.run()))
                {
                    let _ = failures.send(Failure::Worker {
                        worker: id,
                        message: flowtel_otlp::panic_message(payload.as_ref()),
                    });
                }
            })
            .context("cannot start a receive worker")?;
        threads.push(t);
    }
    Ok(Workers {
        controls,
        routing,
        threads,
    })
}

async fn serve(
    config: Config,
    resource: flowtel_otlp::ResourceConfig,
    mut hooks: Hooks,
) -> anyhow::Result<()> {
    let n = config.effective_workers();
    let sinks = SinkSet::build(&config, &resource, std::mem::take(&mut hooks.sinks))?;
    let mut spec = PipelineSpec::from_config(&config)?;
    spec.records = sinks.takes_records();
    let (sockets, local_addrs, inodes) = bind_sockets(&config, n)?;

    let ready = Arc::new(AtomicBool::new(false));
    let worker_stats: Vec<_> = (0..n)
        .map(|_| Arc::new(Mutex::new(WorkerStats::default())))
        .collect();
    let (failures_tx, mut failures) = tokio::sync::mpsc::unbounded_channel();
    let workers = start_workers(&config, sockets, &spec, &sinks, &worker_stats, &failures_tx)?;
    drop(failures_tx);
    let shared = Arc::new(Shared {
        workers: worker_stats,
        routing: Arc::clone(&workers.routing),
        budget: Arc::clone(&spec.budget),
        finished: Mutex::new(BTreeMap::new()),
        sinks,
        silent_after_ns: config
            .exporter_silent_after_secs
            .saturating_mul(1_000_000_000),
        socket_drops: listener::KernelDrops::new(inodes),
    });

    let (metrics_shared, status_shared) = (Arc::clone(&shared), Arc::clone(&shared));
    let (http_addr, http) = crate::http::bind(
        config.prometheus_listen,
        crate::http::Endpoint {
            metrics: Box::new(move || metrics_shared.metrics_body()),
            status: Box::new(move || status_shared.sinks.status_json()),
            ready: Arc::clone(&ready),
        },
        crate::http::Limits::for_fd_limit(crate::http::raise_fd_limit()),
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
    ready.store(true, Ordering::Relaxed);

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
    let reload_config = hooks.reload.take();
    let mut running = config.clone();
    // What the workers run with, so a changed networks file replaces only its table.
    let mut live = Arc::new(spec.live.clone());
    let mut next_networks_check = tokio::time::Instant::now() + NETWORKS_POLL;
    let mut hangup = hangup_signal();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut next_flush = (now_ns() / interval_ns + 1) * interval_ns + flush_delay_ns;
    let mut failure = None;
    loop {
        let until_flush = Duration::from_nanos(next_flush.saturating_sub(now_ns()));
        tokio::select! {
            _ = &mut shutdown => break,
            Some(f) = failures.recv() => {
                failure = Some(f);
                break;
            }
            _ = tick.tick() => {
                if let Some((sink, message)) = shared.sinks.panicked() {
                    failure = Some(Failure::Sink { sink, message });
                    break;
                }
                let drops = || shared.socket_drops.read();
                reporter.report(&shared.worker_totals(), drops, &shared.sinks, now_ns());
                if tokio::time::Instant::now() >= next_networks_check {
                    next_networks_check = tokio::time::Instant::now() + NETWORKS_POLL;
                    reload_networks(&mut live, &workers).await;
                }
            }
            _ = next_hangup(&mut hangup) => {
                match &reload_config {
                    Some(read) => reload(read, &mut running, &mut live, &workers).await,
                    None => warn!("SIGHUP: nothing to reload (no configuration source); ignored"),
                }
            }
            _ = tokio::time::sleep(until_flush) => {
                let now = now_ns();
                shared.emit(workers.flush(now, false).await, false);
                next_flush = (now / interval_ns + 1) * interval_ns + flush_delay_ns;
            }
        }
    }

    if let Some(f) = &failure {
        error!(
            "{f}; shutting down so that the service manager starts flowtel again (what that \
             component held is lost)"
        );
    }
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let deadline = tokio::time::Instant::now() + grace;
    info!(
        grace_secs = config.shutdown_grace_secs,
        "shutting down: flushing the open window"
    );
    ready.store(false, Ordering::Relaxed);
    workers.stop_receiving().await;
    shared.emit(workers.flush(now_ns(), true).await, true);
    for t in workers.threads {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    // A worker that panicked while the others stopped.
    if failure.is_none()
        && let Ok(f) = failures.try_recv()
    {
        error!("{f} while stopping");
        failure = Some(f);
    }
    shared.sinks.shutdown(deadline).await;
    if failure.is_none()
        && let Some((sink, message)) = shared.sinks.panicked()
    {
        let f = Failure::Sink { sink, message };
        error!("{f} while stopping");
        failure = Some(f);
    }
    if let Some(p) = self_metrics {
        // One last export of our counters (blocking: the SDK's reader thread does the I/O).
        let _ = tokio::task::spawn_blocking(move || p.shutdown()).await;
    }
    http_task.abort();
    match failure {
        Some(f) => Err(f.into()),
        None => {
            info!("stopped");
            Ok(())
        }
    }
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
    /// Daemon-wide datagrams, records, socket drops and decode errors at the last report.
    last_totals: [u64; 4],
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
            last_totals: [0; 4],
        }
    }

    /// `drops` reads the sockets' kernel drops, for the periodic line only.
    fn report(
        &mut self,
        totals: &WorkerStats,
        drops: impl FnOnce() -> u64,
        sinks: &SinkSet,
        now: u64,
    ) {
        for (key, e) in &totals.exporters {
            let ip = &key.map(|k| k.ip());
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
        for (key, e) in &totals.exporters {
            let ip = &key.map(|k| k.ip());
            let label = ip.map_or_else(|| "other".to_owned(), |ip| ip.to_string());
            let (d0, r0) = self.last_counts.get(ip).copied().unwrap_or((0, 0));
            let (d, r) = (e.datagrams(), e.records());
            info!(
                exporter = %label,
                datagrams_per_sec = format!("{:.1}", d.saturating_sub(d0) as f64 / secs),
                records_per_sec = format!("{:.1}", r.saturating_sub(r0) as f64 / secs),
                "exporter rates"
            );
            self.last_counts.insert(*ip, (d, r));
        }
        self.report_state(totals, drops(), sinks, secs);
        self.last_report_ns = now;
    }

    /// One line for the whole daemon: rates, drops and every sink's health.
    fn report_state(
        &mut self,
        totals: &WorkerStats,
        socket_drops: u64,
        sinks: &SinkSet,
        secs: f64,
    ) {
        let all = totals.by_protocol().total();
        let errors = totals
            .snapshot
            .as_ref()
            .map_or(0, |s| s.decoder.stats.total_errors());
        let now = [all.datagrams, all.records, socket_drops, errors];
        let d: Vec<u64> = now
            .iter()
            .zip(self.last_totals)
            .map(|(n, l)| n.saturating_sub(l))
            .collect();
        self.last_totals = now;
        let sink_health: Vec<String> = sinks
            .statuses()
            .iter()
            .map(|(name, s)| {
                let dropped: u64 = s.dropped.iter().map(|(_, n)| n).sum();
                format!(
                    "{name}: {} queued of {}, {dropped} dropped{}",
                    s.queue_depth,
                    s.queue_capacity,
                    if s.failing_since_ns.is_some() {
                        ", failing"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        info!(
            datagrams_per_sec = format!("{:.1}", d[0] as f64 / secs),
            records_per_sec = format!("{:.1}", d[1] as f64 / secs),
            socket_drops = d[2],
            decode_errors = d[3],
            sinks = %sink_health.join("; "),
            "flowtel state"
        );
    }
}

/// SIGHUP, where the platform has it.
#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

fn hangup_signal() -> Hangup {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                warn!(error = %e, "cannot handle SIGHUP; configuration reload unavailable");
                None
            }
        }
    }
}

async fn next_hangup(h: &mut Hangup) {
    #[cfg(unix)]
    match h {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await
}

/// The top-level configuration keys a reload applies; the others need a restart.
const RELOADABLE: &[&str] = &["enrichment", "geoip", "flow_records"];

/// How often the networks file's modification time is checked.
const NETWORKS_POLL: Duration = Duration::from_secs(10);

/// Read the networks file again when its modification time has changed, and give the workers
/// the new table (the rest of their enrichment unchanged). A file that does not load is logged
/// and the running table kept (until the file changes again).
async fn reload_networks(live: &mut Arc<crate::pipeline::Reloadable>, workers: &Workers) {
    let Some(current) = live.networks.as_ref().filter(|n| n.changed()) else {
        return;
    };
    let path = current.path.clone();
    let loaded = tokio::task::spawn_blocking({
        let path = path.clone();
        move || crate::pipeline::LoadedNetworks::load(&path)
    })
    .await;
    let mut next = (**live).clone();
    let networks = match loaded {
        Ok(Ok(n)) => {
            let count = n.table.len();
            next.networks = Some(n);
            count
        }
        Ok(Err(e)) => {
            warn!(error = %format!("{e:#}"), "networks file changed but does not load; keeping the running networks");
            // Keep the running table, but remember this version of the file so the failure is
            // logged once.
            if let Some(n) = next.networks.as_mut() {
                n.modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
            }
            *live = Arc::new(next);
            return;
        }
        Err(e) => {
            warn!(error = %e, "networks file reload failed");
            return;
        }
    };
    let next = Arc::new(next);
    workers.reload(&next).await;
    *live = next;
    // Logged once every worker has the new table: a record received after this line is
    // enriched with it.
    info!(file = %path.display(), networks, "networks file changed: reloaded");
}

/// Read the configuration again and apply what can change while running: enrichment (device
/// names, sampling rates, GeoIP databases, networks file) and the per-flow record selection. A
/// configuration that does not validate (or a database or networks file that does not load) is
/// logged and the running one kept; changed settings that need a restart are named.
async fn reload(
    read: &ReloadConfig,
    running: &mut Config,
    live: &mut Arc<crate::pipeline::Reloadable>,
    workers: &Workers,
) {
    let new = match read()
        .and_then(|c| crate::pipeline::Reloadable::from_config(&c).map(|l| (c, l)))
    {
        Ok(n) => n,
        Err(e) => {
            warn!(error = %format!("{e:#}"), "SIGHUP: the configuration does not load; keeping the running one");
            return;
        }
    };
    let (config, next_live) = new;
    let changed = changed_keys(running, &config);
    let (applied, restart): (Vec<&str>, Vec<&str>) =
        changed.iter().partition(|k| RELOADABLE.contains(k));
    if !restart.is_empty() {
        warn!(
            settings = %restart.join(", "),
            "SIGHUP: these settings changed but need a restart; the running values stay"
        );
    }
    let next = Arc::new(next_live);
    workers.reload(&next).await;
    *live = next;
    for key in &applied {
        match *key {
            "enrichment" => running.enrichment = config.enrichment.clone(),
            "geoip" => running.geoip = config.geoip.clone(),
            "flow_records" => running.flow_records = config.flow_records.clone(),
            _ => {}
        }
    }
    info!(
        applied = %if applied.is_empty() { "nothing changed".to_owned() } else { applied.join(", ") },
        // The networks file is read again whether or not its name changed.
        networks = live.networks.as_ref().map_or(0, |n| n.table.len()),
        "SIGHUP: configuration reloaded"
    );
}

/// Top-level keys whose values differ between two configurations.
fn changed_keys(a: &Config, b: &Config) -> Vec<&'static str> {
    let (Ok(serde_yaml::Value::Mapping(a)), Ok(serde_yaml::Value::Mapping(b))) =
        (serde_yaml::to_value(a), serde_yaml::to_value(b))
    else {
        return Vec::new();
    };
    CONFIG_KEYS
        .iter()
        .copied()
        .filter(|k| a.get(*k) != b.get(*k))
        .collect()
}

/// Every top-level key of [`Config`].
const CONFIG_KEYS: &[&str] = &[
    "listen",
    "workers",
    "recv_buffer_bytes",
    "rollup_interval_secs",
    "top_k",
    "profile",
    "rollup_specs",
    "rollups",
    "enrichment",
    "decoder",
    "interfaces",
    "sinks",
    "flow_records",
    "kafka",
    "prometheus_listen",
    "otlp",
    "resource",
    "geoip",
    "log_level",
    "tee_logs",
    "shutdown_grace_secs",
    "exporter_report_interval_secs",
    "exporter_silent_after_secs",
    "self_metrics_interval_secs",
];

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
