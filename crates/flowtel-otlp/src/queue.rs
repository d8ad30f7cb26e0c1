//! The bounded queue between a producer and the network, and the task that drains it: one
//! implementation for every signal ([`Encode`] says what a batch becomes).

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use flowtel_series::WindowBatch;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::client::{ClientConfig, ClientError, OtlpClient};
use crate::convert::{ConvertConfig, Converter};
use crate::signal::{Metrics, Signal};
use crate::stats::{DropReason, ExportStats, unix_ms_now};

/// Default queue capacity, in windows (about an hour of one rollup at the default 60 s
/// interval).
pub const DEFAULT_QUEUE_CAPACITY: usize = 64;

/// Default period of the "still failing" report.
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// What an export queue holds: a window of metric series, a batch of log records.
pub trait Batch: Send + 'static {
    /// Items (points, log records) it carries, for the drop counters.
    fn items(&self) -> u64;
    /// What it is, for the log line that reports it dropped.
    fn describe(&self) -> String;
}

impl Batch for WindowBatch {
    fn items(&self) -> u64 {
        self.points.len() as u64
    }

    fn describe(&self) -> String {
        format!(
            "window of rollup {} ending at {} (Unix ns)",
            self.rollup, self.time_unix_nano
        )
    }
}

impl Batch for ExportLogsServiceRequest {
    fn items(&self) -> u64 {
        crate::logs::record_count(self)
    }

    fn describe(&self) -> String {
        format!("batch of {} log records", self.items())
    }
}

impl Batch for ExportMetricsServiceRequest {
    fn items(&self) -> u64 {
        crate::convert::point_count(self)
    }

    fn describe(&self) -> String {
        format!("request of {} points", self.items())
    }
}

/// Turns a queued batch into the requests that carry it. Runs in the sender task, so a batch
/// dropped from a full queue is never encoded.
pub trait Encode: Send + 'static {
    type Signal: Signal;
    type Batch: Batch;
    fn encode(&mut self, batch: Self::Batch) -> Vec<<Self::Signal as Signal>::Request>;
}

impl Encode for Converter {
    type Signal = Metrics;
    type Batch = WindowBatch;

    fn encode(&mut self, batch: WindowBatch) -> Vec<ExportMetricsServiceRequest> {
        self.convert(&batch)
    }
}

/// Requests built by the producer ([`crate::logs_request`]), sent as they are.
pub struct Prebuilt<S>(PhantomData<fn() -> S>);

impl<S> Default for Prebuilt<S> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<S> std::fmt::Debug for Prebuilt<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prebuilt")
    }
}

impl<S: Signal> Encode for Prebuilt<S>
where
    S::Request: Batch,
{
    type Signal = S;
    type Batch = S::Request;

    fn encode(&mut self, batch: S::Request) -> Vec<S::Request> {
        vec![batch]
    }
}

/// What [`ExportQueue::try_push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Queued.
    Queued,
    /// Queued; the queue was full so its oldest batch was dropped (and counted).
    QueuedDroppedOldest,
    /// The exporter is shutting down; the batch was dropped (and counted).
    Closed,
}

/// Queue settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Batches held (at least 1); beyond it the oldest is dropped. Memory is bounded by
    /// `capacity` times the producer's batch size.
    pub capacity: usize,
    /// While the endpoint fails (or batches are being dropped), a warning every this often
    /// with the queue depth and how long until data is dropped. Drops are logged at most once
    /// per interval, the rest counted into the next report.
    pub report_interval: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_QUEUE_CAPACITY,
            report_interval: DEFAULT_REPORT_INTERVAL,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Dropped {
    batches: u64,
    items: u64,
}

#[derive(Debug)]
struct State<B> {
    items: VecDeque<B>,
    closed: bool,
    /// Items of a batch popped by the sender and not yet fully sent.
    in_flight: Option<u64>,
    /// Drops not yet in a log line.
    unreported: Dropped,
    /// When a drop was last logged on its own line.
    drop_logged_at: Option<Instant>,
    /// Whether the client was last told the queue is more than half full.
    filling: bool,
    last_push: Option<Instant>,
    /// Moving average of the time between pushes, for "how long until data is dropped".
    push_interval: Option<Duration>,
}

struct Shared<B> {
    state: Mutex<State<B>>,
    notify: Notify,
    capacity: usize,
    report_interval: Duration,
    stats: Arc<ExportStats>,
    /// [`OtlpClient::set_filling`] of the client draining the queue.
    set_filling: Box<dyn Fn(bool) + Send + Sync>,
    /// For log lines.
    name: String,
    endpoint: String,
    /// The sender task's panic, if it panicked (nothing is sent any more).
    panicked: crate::Panicked,
}

impl<B> Shared<B> {
    fn lock(&self) -> MutexGuard<'_, State<B>> {
        // The lock is never held across code that can panic; recover the data if it was.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Depth gauge and the "more than half full" signal, after a push or a pop.
    fn depth_changed(&self, st: &mut State<B>) {
        self.stats.set_queue_depth(st.items.len());
        let filling = st.items.len().saturating_mul(2) > self.capacity;
        if filling != st.filling {
            st.filling = filling;
            (self.set_filling)(filling);
        }
    }
}

impl<B: Batch> Shared<B> {
    /// Counts a drop; logs it on its own line unless one was logged less than a report interval
    /// ago, in which case the next report carries it.
    fn dropped(&self, st: &mut State<B>, reason: DropReason, batch: &B) {
        let items = batch.items();
        self.stats.dropped(reason, 1, items);
        let now = Instant::now();
        if st
            .drop_logged_at
            .is_some_and(|at| now.duration_since(at) < self.report_interval)
        {
            st.unreported.batches += 1;
            st.unreported.items += items;
            return;
        }
        st.drop_logged_at = Some(now);
        warn!(
            sink = %self.name,
            endpoint = %self.endpoint,
            reason = reason.as_str(),
            items,
            capacity = self.capacity,
            "export queue dropped a {}", batch.describe()
        );
    }
}

/// The producer side: a cheap-to-clone handle whose [`try_push`](Self::try_push) never blocks
/// and never waits on the network. It needs no runtime: a plain thread may push.
pub struct ExportQueue<B = WindowBatch> {
    shared: Arc<Shared<B>>,
}

impl<B> Clone for ExportQueue<B> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<B> std::fmt::Debug for ExportQueue<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportQueue")
            .field("name", &self.shared.name)
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl<B: Batch> ExportQueue<B> {
    /// Enqueues one batch. O(1) under a short mutex; when the queue already holds `capacity`
    /// batches the oldest is dropped and counted (`queue_full`), after shutdown the batch itself
    /// (`shutdown`).
    pub fn try_push(&self, batch: B) -> PushOutcome {
        let shared = &*self.shared;
        let mut st = shared.lock();
        if st.closed {
            shared.dropped(&mut st, DropReason::Shutdown, &batch);
            return PushOutcome::Closed;
        }
        let now = Instant::now();
        if let Some(last) = st.last_push {
            // Exponential moving average, weight 1/8 for the newest interval.
            let gap = now.duration_since(last);
            st.push_interval = Some(match st.push_interval {
                Some(mean) => (mean * 7 + gap) / 8,
                None => gap,
            });
        }
        st.last_push = Some(now);
        let outcome = if st.items.len() >= shared.capacity {
            if let Some(old) = st.items.pop_front() {
                shared.dropped(&mut st, DropReason::QueueFull, &old);
            }
            PushOutcome::QueuedDroppedOldest
        } else {
            PushOutcome::Queued
        };
        st.items.push_back(batch);
        shared.depth_changed(&mut st);
        drop(st);
        shared.stats.batch_queued();
        shared.notify.notify_one();
        outcome
    }

    /// Batches waiting (not counting one being sent).
    pub fn len(&self) -> usize {
        self.shared.lock().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// The sender task's panic message, if it panicked: nothing queued is sent any more.
    pub fn panicked(&self) -> Option<String> {
        self.shared.panicked.get()
    }

    pub fn stats(&self) -> &Arc<ExportStats> {
        &self.shared.stats
    }
}

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Every queued batch was sent (or given up on by the retry policy) before the deadline.
    pub flushed: bool,
    /// Batches still queued or in flight at the deadline, dropped and counted.
    pub batches_dropped: u64,
}

/// The queue plus its sender task.
///
/// The task pops batches oldest first, encodes each and sends the resulting requests one after
/// the other with the [`OtlpClient`], which retries retryable failures (by default until they
/// succeed). While it retries, new batches wait in the queue, so they go out in order once the
/// endpoint is back.
///
/// Dropping it without [`shutdown`](Self::shutdown) stops the task at once; queued batches are
/// lost (and not counted).
pub struct Exporter<E: Encode = Converter> {
    queue: ExportQueue<E::Batch>,
    client: OtlpClient<E::Signal>,
    task: Option<JoinHandle<()>>,
}

/// The metrics exporter: windows in, `MetricsService/Export` out.
pub type MetricsExporter = Exporter<Converter>;
/// The logs exporter: built requests in, `LogsService/Export` out.
pub type LogsExporter = Exporter<Prebuilt<crate::signal::Logs>>;

impl<E: Encode> std::fmt::Debug for Exporter<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("queue", &self.queue)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl<E: Encode> Drop for Exporter<E> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Everything a metrics [`Exporter`] needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExporterConfig {
    pub client: ClientConfig,
    pub convert: ConvertConfig,
    pub queue: QueueConfig,
}

impl Exporter<Converter> {
    /// Builds the client and converter from `config` and starts the sender task on the current
    /// tokio runtime, with fresh counters (see [`stats`](Self::stats)).
    pub fn start(config: &ExporterConfig) -> Result<Self, ClientError> {
        let client = OtlpClient::new(&config.client, Arc::default())?;
        Ok(Self::spawn(
            client,
            Converter::new(config.convert.clone()),
            &config.queue,
        ))
    }
}

impl<E: Encode> Exporter<E> {
    /// Starts the sender task on the current tokio runtime.
    pub fn spawn(client: OtlpClient<E::Signal>, encoder: E, queue: &QueueConfig) -> Self {
        let capacity = queue.capacity.max(1);
        let filling_client = client.clone();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity.min(4096)),
                closed: false,
                in_flight: None,
                unreported: Dropped::default(),
                drop_logged_at: None,
                filling: false,
                last_push: None,
                push_interval: None,
            }),
            notify: Notify::new(),
            capacity,
            report_interval: queue.report_interval.max(Duration::from_millis(1)),
            stats: client.stats().clone(),
            set_filling: Box::new(move |filling| filling_client.set_filling(filling)),
            name: client.name().to_owned(),
            endpoint: client.endpoint().to_owned(),
            panicked: crate::Panicked::default(),
        });
        let task = crate::spawn_supervised(
            &shared.panicked,
            run(shared.clone(), client.clone(), encoder),
        );
        Self {
            queue: ExportQueue { shared },
            client,
            task: Some(task),
        }
    }

    /// A producer handle.
    pub fn queue(&self) -> ExportQueue<E::Batch> {
        self.queue.clone()
    }

    pub fn stats(&self) -> &Arc<ExportStats> {
        self.queue.stats()
    }

    /// Stops accepting batches, sends what is queued, and waits at most `grace` for it. A retry
    /// sleeping in its backoff goes at once and later waits are capped at 1 s
    /// ([`OtlpClient::expedite_retries`]). Batches still queued or in flight at the deadline
    /// are dropped and counted (`shutdown`).
    pub async fn shutdown(mut self, grace: Duration) -> ShutdownReport {
        let shared = self.queue.shared.clone();
        shared.lock().closed = true;
        shared.notify.notify_one();
        self.client.expedite_retries();
        let Some(mut task) = self.task.take() else {
            return ShutdownReport {
                flushed: true,
                batches_dropped: 0,
            };
        };
        if let Ok(Ok(())) = tokio::time::timeout(grace, &mut task).await {
            // A task that panicked ended too, leaving its queue (counted below).
            if shared.panicked.get().is_none() {
                return ShutdownReport {
                    flushed: true,
                    batches_dropped: 0,
                };
            }
        } else {
            task.abort();
            let _ = task.await;
        }
        let (batches, items) = {
            let mut st = shared.lock();
            let in_flight = st.in_flight.take();
            let batches = st.items.len() as u64 + u64::from(in_flight.is_some());
            let items = st.items.iter().map(Batch::items).sum::<u64>() + in_flight.unwrap_or(0);
            st.items.clear();
            shared.depth_changed(&mut st);
            (batches, items)
        };
        shared.stats.dropped(DropReason::Shutdown, batches, items);
        if batches > 0 {
            warn!(
                sink = %shared.name,
                batches,
                items,
                grace_ms = grace.as_millis() as u64,
                "export shutdown deadline passed, queued data dropped"
            );
        }
        ShutdownReport {
            flushed: false,
            batches_dropped: batches,
        }
    }
}

async fn run<E: Encode>(
    shared: Arc<Shared<E::Batch>>,
    client: OtlpClient<E::Signal>,
    mut encoder: E,
) {
    let every = shared.report_interval;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = {
            let mut st = shared.lock();
            match st.items.pop_front() {
                Some(batch) => {
                    st.in_flight = Some(batch.items());
                    shared.depth_changed(&mut st);
                    Some(batch)
                }
                None if st.closed => return,
                None => None,
            }
        };
        let Some(batch) = next else {
            // notify_one stores a permit when nobody waits, so a push between the pop above
            // and this await is not lost (and after a tick the queue is looked at again).
            tokio::select! {
                () = shared.notify.notified() => {}
                _ = ticker.tick() => report(&shared),
            }
            continue;
        };
        for request in encoder.encode(batch) {
            let send = client.export(request);
            let mut send = std::pin::pin!(send);
            // A failure is logged and counted by the client; go on with the rest of the batch.
            let sent = loop {
                tokio::select! {
                    sent = &mut send => break sent,
                    _ = ticker.tick() => report(&shared),
                }
            };
            if let Ok(ok) = sent {
                debug!(sink = %shared.name, items = ok.items, attempts = ok.attempts, "exported");
            }
        }
        shared.lock().in_flight = None;
    }
}

/// The periodic report: while the endpoint fails, how full the queue is and how long until
/// data is dropped; drops not yet logged in any case.
fn report<B>(shared: &Shared<B>) {
    let (depth, dropped, push_interval) = {
        let mut st = shared.lock();
        let dropped = std::mem::take(&mut st.unreported);
        if dropped.batches > 0 {
            st.drop_logged_at = Some(Instant::now());
        }
        (st.items.len(), dropped, st.push_interval)
    };
    let stats = &shared.stats;
    let Some(since) = stats.failing_since() else {
        if dropped.batches > 0 {
            warn!(
                sink = %shared.name,
                endpoint = %shared.endpoint,
                batches = dropped.batches,
                items = dropped.items,
                capacity = shared.capacity,
                "export queue full: more batches dropped since the last report"
            );
        }
        return;
    };
    let failing_for_secs = unix_ms_now().saturating_sub(since) / 1000;
    let reason = stats.last_failure().map_or("unknown", |r| r.as_str());
    let free = shared.capacity.saturating_sub(depth);
    let data_dropped_in = if free == 0 {
        "now: the queue is full, its oldest batches are being dropped".to_owned()
    } else {
        // One batch in every `push_interval`, on average, takes one of the free slots.
        let eta = push_interval
            .filter(|gap| !gap.is_zero())
            .and_then(|gap| gap.checked_mul(u32::try_from(free).ok()?));
        match eta {
            Some(eta) => format!("~{} s", eta.as_secs()),
            None => "unknown (too few batches queued to estimate)".to_owned(),
        }
    };
    warn!(
        sink = %shared.name,
        endpoint = %shared.endpoint,
        reason,
        failing_for_secs,
        queue_depth = depth,
        queue_capacity = shared.capacity,
        data_dropped_in = %data_dropped_in,
        dropped_since_last_report = dropped.batches,
        dropped_items_since_last_report = dropped.items,
        "OTLP export still failing"
    );
}
