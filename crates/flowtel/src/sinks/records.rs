//! The machinery every per-flow sink shares: a bounded queue of flow records between the
//! receive workers and the sink's task, batching by size and age, and delivery with retries.
//!
//! A per-flow sink is a [`Deliver`] (what one batch becomes and where it goes) run by a
//! [`RecordSink`] (the [`Sink`] the workers see). The workers' [`Sink::records`] only pushes an
//! `Arc` of a pass's records into the [`RecordQueue`]: O(1), under a short mutex, never
//! waiting. The queue is bounded in records; of a pass that does not fit, the records that fit
//! are queued and the rest dropped and counted (`queue_full`): the records already queued keep
//! their order and are delivered first, so a consumer sees one gap, not holes everywhere.
//!
//! The task takes batches of up to `batch_max_records` records, or fewer once the oldest has
//! waited `batch_max_age`, and delivers them in order. A retryable failure (connection
//! refused, timeout, HTTP 429/5xx, broker down) is retried with jittered exponential backoff
//! (1 s doubling to 30 s, 5 s once the queue is more than half full, so recovery is quick when
//! it matters; cut short when the [`Deliver`] signals that its destination is back), during
//! which newer records wait in the queue; a non-retryable one drops the batch (`failed`). A
//! destination that takes a batch in parts (Kafka's partitions) says in its error how many
//! records it already settled: they are counted as delivered (or `failed`), not sent again. While deliveries fail the sink says so every 30 s with its queue depth,
//! and says when it recovers. At shutdown the task delivers what is queued until the deadline;
//! what is left is counted as `shutdown`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{info, warn};

use super::{Counters, Records, ShutdownFuture, Sink, SinkStatus};

/// How records are batched for one sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Records the queue holds; beyond it new batches are dropped (counted).
    pub queue_max_records: usize,
    /// Records per delivery at most.
    pub batch_max_records: usize,
    /// How long the oldest queued record waits for a fuller batch.
    pub batch_max_age: Duration,
}

impl crate::config::FlowRecordsConfig {
    /// The batching of every per-flow sink.
    pub fn batching(&self) -> Batching {
        Batching {
            queue_max_records: self.queue_max_records,
            batch_max_records: self.batch_max_records,
            batch_max_age: Duration::from_millis(self.batch_max_age_ms),
        }
    }
}

/// Why a delivery failed.
#[derive(Debug)]
pub struct DeliveryError {
    /// Worth trying again (the destination is down or busy), else the batch is dropped.
    pub retryable: bool,
    pub message: String,
    /// Records of the batch that reached the destination anyway (a destination that takes a
    /// batch in parts, such as Kafka's partitions); a retry does not send them again. Counted
    /// as delivered, not dropped, if the batch is given up.
    pub delivered: u64,
    /// Records of the batch the destination refused for good while it took others; counted as
    /// dropped (`failed`) if the batch is given up.
    pub failed: u64,
}

impl DeliveryError {
    pub fn retryable(message: impl Into<String>) -> Self {
        DeliveryError {
            retryable: true,
            message: message.into(),
            delivered: 0,
            failed: 0,
        }
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        DeliveryError {
            retryable: false,
            ..Self::retryable(message)
        }
    }

    /// Say how much of the batch is already settled: `delivered` records arrived, `failed`
    /// were refused for good.
    pub fn with_progress(mut self, delivered: u64, failed: u64) -> Self {
        self.delivered = delivered;
        self.failed = failed;
        self
    }
}

/// A future a [`Deliver`] returns.
pub type DeliverFuture<'a> = Pin<Box<dyn Future<Output = Result<(), DeliveryError>> + Send + 'a>>;

/// What a per-flow sink does with one batch.
pub trait Deliver: Send + 'static {
    /// Encode and send `batch` (records of several passes, in order). Called again with the
    /// same batch after a retryable error.
    fn deliver<'a>(&'a mut self, batch: &'a [Records]) -> DeliverFuture<'a>;

    /// Flush what the destination buffers (files), at shutdown.
    fn finish(&mut self) -> DeliverFuture<'_> {
        Box::pin(async { Ok(()) })
    }

    /// Notified when the destination is back after an outage (a connection task that sees the
    /// brokers answer again): the wait before the next retry ends then.
    fn recovered(&self) -> Option<Arc<Notify>> {
        None
    }
}

#[derive(Debug, Default)]
struct State {
    batches: VecDeque<(Instant, Records)>,
    records: usize,
    closed: bool,
}

/// The bounded queue of one per-flow sink.
#[derive(Debug)]
pub struct RecordQueue {
    state: Mutex<State>,
    notify: Notify,
    capacity: usize,
}

impl RecordQueue {
    pub fn new(capacity: usize) -> Self {
        RecordQueue {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue one pass's records, as many as fit; returns how many were queued (0 when the
    /// queue is full or closed).
    pub fn push(&self, records: &Records) -> usize {
        let mut s = self.lock();
        let room = self.capacity.saturating_sub(s.records);
        if s.closed || room == 0 || records.is_empty() {
            return 0;
        }
        // A pass larger than the room left: its first records fill the queue, the rest are
        // dropped (copied, but only when the queue overflows), so the gap is one, at the end.
        let taken = if records.len() <= room {
            Arc::clone(records)
        } else {
            Arc::new(records.get(..room).unwrap_or_default().to_vec())
        };
        let n = taken.len();
        s.records += n;
        s.batches.push_back((Instant::now(), taken));
        let wake = s.records >= 1;
        drop(s);
        if wake {
            self.notify.notify_one();
        }
        n
    }

    /// Records waiting.
    pub fn depth(&self) -> usize {
        self.lock().records
    }

    /// No more pushes; [`RecordQueue::next`] returns what is left, then `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    /// The next batch: up to `max_records` records, as soon as there are that many, the oldest
    /// has waited `max_age`, or the queue is closed. `None` once closed and empty.
    pub async fn next(&self, max_records: usize, max_age: Duration) -> Option<Vec<Records>> {
        loop {
            let wait = {
                let mut s = self.lock();
                let oldest = s.batches.front().map(|(t, _)| *t);
                match oldest {
                    None if s.closed => return None,
                    None => None,
                    Some(t) if s.records >= max_records || s.closed || t.elapsed() >= max_age => {
                        // A pass larger than a batch is cut into batch-sized pieces once
                        // (records are copied: such passes are rare, and this is the sink's
                        // task, not the receive path).
                        if s.batches
                            .front()
                            .is_some_and(|(_, r)| r.len() > max_records.max(1))
                            && let Some((t, big)) = s.batches.pop_front()
                        {
                            let pieces: Vec<Records> = big
                                .chunks(max_records.max(1))
                                .map(|c| Arc::new(c.to_vec()))
                                .collect();
                            for piece in pieces.into_iter().rev() {
                                s.batches.push_front((t, piece));
                            }
                        }
                        let mut out = Vec::new();
                        let mut n = 0;
                        while let Some((_, r)) = s.batches.front() {
                            if !out.is_empty() && n + r.len() > max_records {
                                break;
                            }
                            n += r.len();
                            if let Some((_, r)) = s.batches.pop_front() {
                                out.push(r);
                            }
                        }
                        s.records -= n;
                        return Some(out);
                    }
                    Some(t) => Some(t + max_age),
                }
            };
            match wait {
                Some(deadline) => {
                    let _ = tokio::time::timeout_at(deadline, self.notify.notified()).await;
                }
                None => self.notify.notified().await,
            }
        }
    }
}

/// Shared between the sink's front and its task.
#[derive(Debug)]
struct Shared {
    name: &'static str,
    queue: RecordQueue,
    counters: Counters,
    failing_since_ns: AtomicU64,
    /// Records of the batch being delivered (out of the queue, not yet counted either way).
    in_flight: AtomicU64,
}

/// A per-flow sink: the queue in front, the delivery task behind.
#[derive(Debug)]
pub struct RecordSink {
    shared: Arc<Shared>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The delivery task's panic, if it panicked.
    panicked: flowtel_otlp::Panicked,
    deadline: Arc<Mutex<Option<Instant>>>,
}

fn records_in(batch: &[Records]) -> u64 {
    batch.iter().map(|r| r.len() as u64).sum()
}

impl RecordSink {
    /// Start the delivery task of `deliver` (on the current tokio runtime).
    pub fn start(name: &'static str, batching: Batching, deliver: impl Deliver) -> Self {
        let shared = Arc::new(Shared {
            name,
            queue: RecordQueue::new(batching.queue_max_records),
            counters: Counters::default(),
            failing_since_ns: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
        });
        let deadline = Arc::new(Mutex::new(None));
        let panicked = flowtel_otlp::Panicked::default();
        let task = flowtel_otlp::spawn_supervised(
            &panicked,
            run(
                Arc::clone(&shared),
                batching,
                deliver,
                Arc::clone(&deadline),
            ),
        );
        RecordSink {
            shared,
            task: Mutex::new(Some(task)),
            panicked,
            deadline,
        }
    }
}

/// The delivery loop.
async fn run(
    shared: Arc<Shared>,
    batching: Batching,
    mut deliver: impl Deliver,
    deadline: Arc<Mutex<Option<Instant>>>,
) {
    let deadline_now = || *deadline.lock().unwrap_or_else(|p| p.into_inner());
    let mut last_report = None::<Instant>;
    let recovered = deliver.recovered();
    while let Some(batch) = shared
        .queue
        .next(batching.batch_max_records, batching.batch_max_age)
        .await
    {
        let n = records_in(&batch);
        shared.in_flight.store(n, Ordering::Relaxed);
        let mut backoff = Duration::from_secs(1);
        loop {
            match deliver.deliver(&batch).await {
                Ok(()) => {
                    Counters::add(&shared.counters.delivered, n);
                    let since = shared.failing_since_ns.swap(0, Ordering::Relaxed);
                    if since != 0 {
                        info!(sink = shared.name, "deliveries succeed again");
                    }
                    break;
                }
                Err(e) => {
                    if shared.failing_since_ns.load(Ordering::Relaxed) == 0 {
                        shared
                            .failing_since_ns
                            .store(crate::clock::now_ns().max(1), Ordering::Relaxed);
                        warn!(sink = shared.name, error = %e.message, "delivery failed");
                        last_report = Some(Instant::now());
                    } else if last_report.is_none_or(|t| t.elapsed() >= Duration::from_secs(30)) {
                        let depth = shared.queue.depth();
                        warn!(
                            sink = shared.name,
                            error = %e.message,
                            queued_records = depth,
                            queue_max_records = batching.queue_max_records,
                            "deliveries still failing; new records are dropped once the queue is full"
                        );
                        last_report = Some(Instant::now());
                    }
                    // What the destination settled of the batch is counted as such; the rest
                    // is dropped for the reason the batch is given up.
                    let settled = (e.delivered + e.failed).min(n);
                    let give_up = |rest: &AtomicU64| {
                        Counters::add(&shared.counters.delivered, e.delivered.min(n));
                        Counters::add(
                            &shared.counters.dropped_failed,
                            settled - e.delivered.min(n),
                        );
                        Counters::add(rest, n - settled);
                    };
                    if !e.retryable {
                        give_up(&shared.counters.dropped_failed);
                        break;
                    }
                    let wait = jitter(backoff);
                    match deadline_now() {
                        Some(d) if Instant::now() + wait >= d => {
                            give_up(&shared.counters.dropped_shutdown);
                            break;
                        }
                        _ => {}
                    }
                    match &recovered {
                        Some(back) => {
                            tokio::select! {
                                () = tokio::time::sleep(wait) => {}
                                () = back.notified() => {}
                            }
                        }
                        None => tokio::time::sleep(wait).await,
                    }
                    let cap = if shared.queue.depth() * 2 > batching.queue_max_records {
                        Duration::from_secs(5)
                    } else {
                        Duration::from_secs(30)
                    };
                    backoff = (backoff * 2).min(cap);
                }
            }
        }
        shared.in_flight.store(0, Ordering::Relaxed);
    }
    if let Err(e) = deliver.finish().await {
        warn!(sink = shared.name, error = %e.message, "cannot flush at shutdown");
    }
}

/// `d` times a factor in [0.5, 1.5), from the process's random hash keys.
fn jitter(d: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(crate::clock::now_ns());
    let f = 0.5 + (h.finish() % 1000) as f64 / 1000.0;
    d.mul_f64(f)
}

impl Sink for RecordSink {
    fn name(&self) -> &str {
        self.shared.name
    }

    fn takes_records(&self) -> bool {
        true
    }

    fn records(&self, records: &Records) {
        let taken = self.shared.queue.push(records);
        if taken < records.len() {
            Counters::add(
                &self.shared.counters.dropped_queue_full,
                (records.len() - taken) as u64,
            );
        }
    }

    fn status(&self) -> SinkStatus {
        let since = self.shared.failing_since_ns.load(Ordering::Relaxed);
        SinkStatus {
            item: "record",
            queue_depth: self.shared.queue.depth() as u64,
            queue_capacity: self.shared.queue.capacity as u64,
            delivered: self.shared.counters.delivered.load(Ordering::Relaxed),
            dropped: self.shared.counters.dropped(),
            failing_since_ns: (since != 0).then_some(since),
        }
    }

    fn panicked(&self) -> Option<String> {
        self.panicked.get()
    }

    fn shutdown(&self, deadline: Instant) -> ShutdownFuture<'_> {
        Box::pin(async move {
            *self.deadline.lock().unwrap_or_else(|p| p.into_inner()) = Some(deadline);
            self.shared.queue.close();
            let task = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
            let Some(mut t) = task else {
                return;
            };
            let ended = tokio::time::timeout_at(deadline, &mut t).await.is_ok();
            if !ended {
                t.abort();
            }
            // A task that panicked ended too, leaving its queue.
            let panicked = self.panicked.get();
            if ended && panicked.is_none() {
                return;
            }
            // The queue's records and the batch that was being delivered.
            let left =
                self.shared.queue.depth() as u64 + self.shared.in_flight.swap(0, Ordering::Relaxed);
            match panicked {
                Some(panic) => {
                    Counters::add(&self.shared.counters.dropped_failed, left);
                    warn!(
                        sink = self.shared.name,
                        records = left,
                        panic = %panic,
                        "not delivered: the delivery task panicked"
                    );
                }
                None => {
                    Counters::add(&self.shared.counters.dropped_shutdown, left);
                    warn!(
                        sink = self.shared.name,
                        records = left,
                        "not delivered before the shutdown deadline"
                    );
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowtel_decode::{FlowProtocol, FlowRecord};
    use flowtel_rollup::{EnrichConfig, Enricher};

    fn records(n: usize) -> Records {
        let r = FlowRecord::new("192.0.2.1:2055".parse().unwrap(), FlowProtocol::Ipfix, 0);
        let mut e = Enricher::new(&EnrichConfig::default());
        Arc::new((0..n).map(|_| e.enrich(&r, None).to_record()).collect())
    }

    #[tokio::test(start_paused = true)]
    async fn batches_by_size_then_by_age_and_drops_what_does_not_fit() {
        let q = RecordQueue::new(10);
        assert_eq!(q.push(&records(4)), 4);
        assert_eq!(q.push(&records(4)), 4);
        assert_eq!(
            q.push(&records(4)),
            2,
            "12 records do not fit in 10: the first 2 do"
        );
        assert_eq!(q.push(&records(2)), 0, "full");
        assert_eq!(q.depth(), 10);
        // Size: 4 + 4 reach 8 without waiting.
        let b = q.next(8, Duration::from_secs(1)).await.unwrap();
        assert_eq!(records_in(&b), 8);
        // Age: the 2 left come out once they waited a second.
        let t = Instant::now();
        let b = q.next(8, Duration::from_secs(1)).await.unwrap();
        assert_eq!(records_in(&b), 2);
        assert!(t.elapsed() >= Duration::from_millis(999));
        // A pass larger than a batch comes out in batch-sized pieces, in order.
        assert_eq!(q.push(&records(7)), 7);
        let sizes: Vec<u64> = [
            q.next(3, Duration::from_secs(1)).await.unwrap(),
            q.next(3, Duration::from_secs(1)).await.unwrap(),
        ]
        .iter()
        .map(|b| records_in(b))
        .collect();
        assert_eq!(sizes, [3, 3]);
        q.close();
        assert_eq!(
            records_in(&q.next(3, Duration::from_secs(1)).await.unwrap()),
            1
        );
        assert!(q.next(8, Duration::from_secs(1)).await.is_none());
        assert_eq!(q.push(&records(1)), 0, "closed");
    }
}
