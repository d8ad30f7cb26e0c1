//! The bounded queue between the rollup and the network, and the task that drains it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use flowtel_series::WindowBatch;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::client::{ClientConfig, ClientError, OtlpClient};
use crate::convert::{ConvertConfig, Converter, point_count};
use crate::stats::ExportStats;

/// Default queue capacity, in windows (about an hour of one rollup at the default 60 s
/// interval).
pub const DEFAULT_QUEUE_CAPACITY: usize = 64;

/// What [`ExportQueue::try_push`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Queued.
    Queued,
    /// Queued; the queue was full so its oldest window was dropped (and counted).
    QueuedDroppedOldest,
    /// The exporter is shutting down; the window was dropped (and counted).
    Closed,
}

#[derive(Debug)]
struct State {
    items: VecDeque<WindowBatch>,
    closed: bool,
    /// A window popped by the sender and not yet fully sent.
    in_flight: bool,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    notify: Notify,
    capacity: usize,
    stats: Arc<ExportStats>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The lock is never held across code that can panic; recover the data if it was.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The producer side: a cheap-to-clone handle whose [`try_push`](Self::try_push) never blocks
/// and never waits on the network.
#[derive(Debug, Clone)]
pub struct ExportQueue {
    shared: Arc<Shared>,
}

impl ExportQueue {
    /// Enqueues one window. O(1) under a short mutex; when the queue already holds `capacity`
    /// windows the oldest is dropped and counted in `batches_dropped_queue_full`.
    pub fn try_push(&self, batch: WindowBatch) -> PushOutcome {
        let shared = &*self.shared;
        let mut dropped = None;
        {
            let mut st = shared.lock();
            if st.closed {
                drop(st);
                shared.stats.batches_dropped_shutdown(1);
                warn!(rollup = %batch.rollup, "window pushed after export shutdown, dropped");
                return PushOutcome::Closed;
            }
            if st.items.len() >= shared.capacity {
                dropped = st.items.pop_front();
            }
            st.items.push_back(batch);
            shared.stats.set_queue_depth(st.items.len());
        }
        shared.stats.batch_queued();
        shared.notify.notify_one();
        match dropped {
            Some(old) => {
                shared.stats.batch_dropped_queue_full();
                warn!(
                    rollup = %old.rollup,
                    window_end_unix_nano = old.time_unix_nano,
                    points = old.points.len(),
                    capacity = shared.capacity,
                    "export queue full, oldest window dropped"
                );
                PushOutcome::QueuedDroppedOldest
            }
            None => PushOutcome::Queued,
        }
    }

    /// Windows waiting (not counting one being sent).
    pub fn len(&self) -> usize {
        self.shared.lock().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    pub fn stats(&self) -> &Arc<ExportStats> {
        &self.shared.stats
    }
}

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Every queued window was sent (or given up on by the retry policy) before the deadline.
    pub flushed: bool,
    /// Windows still queued or in flight at the deadline, dropped and counted.
    pub batches_dropped: u64,
}

/// The queue plus its sender task.
///
/// The task pops windows oldest first, converts each with its [`Converter`] and sends the
/// resulting requests one after the other with the [`OtlpClient`], which retries retryable
/// failures (by default until they succeed). While it retries, new windows wait in the queue,
/// so windows go out in order once the endpoint is back.
///
/// Dropping it without [`shutdown`](Self::shutdown) stops the task at once; queued windows are
/// lost (and not counted).
#[derive(Debug)]
pub struct Exporter {
    queue: ExportQueue,
    client: OtlpClient,
    task: Option<JoinHandle<()>>,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Everything an [`Exporter`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExporterConfig {
    pub client: ClientConfig,
    pub convert: ConvertConfig,
    /// Queue capacity in windows; default [`DEFAULT_QUEUE_CAPACITY`].
    pub queue_capacity: usize,
}

impl Default for ExporterConfig {
    fn default() -> Self {
        Self {
            client: ClientConfig::default(),
            convert: ConvertConfig::default(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
        }
    }
}

impl Exporter {
    /// Builds the client and converter from `config` and starts the sender task on the current
    /// tokio runtime, with fresh counters (see [`stats`](Self::stats)).
    pub fn start(config: &ExporterConfig) -> Result<Self, ClientError> {
        let client = OtlpClient::new(&config.client, Arc::default())?;
        Ok(Self::spawn(
            client,
            Converter::new(config.convert.clone()),
            config.queue_capacity,
        ))
    }

    /// Starts the sender task on the current tokio runtime. `capacity` (in windows) is at least 1.
    pub fn spawn(client: OtlpClient, converter: Converter, capacity: usize) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
                in_flight: false,
            }),
            notify: Notify::new(),
            capacity: capacity.max(1),
            stats: client.stats().clone(),
        });
        let task = tokio::spawn(run(shared.clone(), client.clone(), converter));
        Self {
            queue: ExportQueue { shared },
            client,
            task: Some(task),
        }
    }

    /// A producer handle.
    pub fn queue(&self) -> ExportQueue {
        self.queue.clone()
    }

    pub fn stats(&self) -> &Arc<ExportStats> {
        self.queue.stats()
    }

    /// Stops accepting windows, sends what is queued, and waits at most `grace` for it. A retry
    /// sleeping in its backoff goes at once and later waits are capped at 1 s
    /// ([`OtlpClient::expedite_retries`]). Windows still queued or in flight at the deadline
    /// are dropped and counted in `batches_dropped_shutdown`.
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
            return ShutdownReport {
                flushed: true,
                batches_dropped: 0,
            };
        }
        task.abort();
        let _ = task.await;
        let dropped = {
            let mut st = shared.lock();
            let n = st.items.len() as u64 + u64::from(st.in_flight);
            st.items.clear();
            st.in_flight = false;
            shared.stats.set_queue_depth(0);
            n
        };
        shared.stats.batches_dropped_shutdown(dropped);
        if dropped > 0 {
            warn!(
                windows = dropped,
                grace_ms = grace.as_millis() as u64,
                "export shutdown deadline passed, windows dropped"
            );
        }
        ShutdownReport {
            flushed: false,
            batches_dropped: dropped,
        }
    }
}

async fn run(shared: Arc<Shared>, client: OtlpClient, mut converter: Converter) {
    loop {
        let next = {
            let mut st = shared.lock();
            match st.items.pop_front() {
                Some(batch) => {
                    st.in_flight = true;
                    shared.stats.set_queue_depth(st.items.len());
                    Some(batch)
                }
                None if st.closed => return,
                None => None,
            }
        };
        let Some(batch) = next else {
            // notify_one stores a permit when nobody waits, so a push between the pop above
            // and this await is not lost.
            shared.notify.notified().await;
            continue;
        };
        for request in converter.convert(&batch) {
            let points = point_count(&request);
            // A failure is logged and counted by the client; go on with the rest of the window.
            if let Ok(ok) = client.export(request).await {
                debug!(
                    rollup = %batch.rollup,
                    points,
                    attempts = ok.attempts,
                    "window exported"
                );
            }
        }
        shared.lock().in_flight = false;
    }
}
