//! A receive worker: one thread, one socket per listen address it serves, its own decoder.
//!
//! # The loop
//!
//! A worker waits for readiness on all of its sockets and on a [`mio::Waker`] at once (one
//! `epoll_wait`), so a socket is read as soon as it is readable whatever its neighbours do, and a
//! flush or stop request is answered at once whether the sockets are idle or saturated. Each
//! pass takes one batch (up to [`BATCH`] datagrams) from every readable socket in turn, so a
//! saturated socket cannot starve the others, then answers control requests, decodes what other
//! workers handed over, runs its decoder's housekeeping and publishes its counters. Once a pass
//! has emptied every socket, the worker pauses for at most `receive_coalesce_us` (50 ms by
//! default, reached by doubling from 1 ms while traffic keeps coming, shorter when a socket's
//! buffer is small: [`super::coalesce`]), so that what arrives meanwhile is taken in a few
//! batches instead of one wake-up per datagram; a control request or a hand-over ends the pause
//! at once ([`WorkerLink::wake`]). Then, with nothing readable, it blocks in `epoll_wait` until a
//! datagram, a hand-over or a control request wakes it, or [`HOUSEKEEPING`] has passed. A
//! saturated worker never pauses.
//!
//! # Decoder housekeeping
//!
//! Every decoder shares one `flowtel_decode::Budget` (memory, template scopes, pending sets), so
//! the decoder limits hold over the whole daemon. Once per pass, and at least every
//! [`HOUSEKEEPING`] when idle, the worker runs `Decoder::maintain`: pending data sets expire on
//! time with no traffic, and a decoder holding more than its share gives memory back when
//! another asked for room. A worker whose decoder asked for room wakes the others (at most every
//! `RECLAIM_WAKE_EVERY_NS`), so an idle worker answers at once.
//!
//! Readiness is edge-triggered (mio), so a socket stays in the worker's ready set until a batch
//! comes back short (the kernel queue is empty; a datagram arriving after that raises a new
//! edge).
//!
//! # Template state across workers
//!
//! NetFlow v9 and IPFIX data sets are only decodable with templates the same exporter sent
//! earlier, and the decoder keeps templates per worker. SO_REUSEPORT hashes the 4-tuple, so one
//! exporter socket always reaches the same worker; but an exporter may send from several source
//! ports (line cards, restarts) while templates are scoped by its address. flowtel therefore
//! routes by exporter: the first worker that sees an exporter address claims it in a shared
//! table (a mutex taken only on an exporter's first datagram per worker; each worker caches the
//! answer), and a worker that receives datagrams of an exporter owned by another worker hands
//! them over. Hand-overs are batched: the datagrams of one pass for one owner are copied into one
//! [`Handover`] buffer, sent through the owner's bounded queue with one channel operation and
//! one wake-up, and the owner returns the emptied buffer for reuse, so steady hand-over traffic
//! allocates nothing. In the common case (one source port) nothing is ever handed over; when a
//! hand-over queue is full the batch's datagrams are dropped and counted
//! (`flowtel.datagrams.dropped{reason="handover_queue_full"}`).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::{Receiver as StdReceiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::Thread;

use mio::{Events, Interest, Poll, Token, Waker};
use tracing::{info, warn};

use super::coalesce::Coalesce;
use super::listener::{BATCH, Receiver};
use crate::clock::now_ns;
use crate::pipeline::stats::{DropReason, WorkerStats};
use crate::pipeline::{Flushed, WorkerPipeline};
use crate::sinks::SinkSet;
use flowtel_decode::prehash::{ExporterKey, PrehashedMap};

/// Hand-over batches a worker's queue holds (each up to one receive pass of datagrams).
pub const HANDOVER_CAPACITY: usize = 256;

/// The token of a worker's [`Waker`]; sockets use their index.
const WAKER: Token = Token(usize::MAX);

/// The longest an idle worker waits before its decoder's housekeeping (pending expiry).
pub const HOUSEKEEPING: std::time::Duration = std::time::Duration::from_secs(1);

/// The least time between two wake-ups of the other workers asking for decoder memory.
const RECLAIM_WAKE_EVERY_NS: u64 = 10_000_000;

/// Datagrams of one receive pass, received by one worker for the worker that owns their
/// exporter: payloads back to back in `data`, described by `datagrams`.
#[derive(Debug, Default)]
pub struct Handover {
    /// The worker that filled it (where the emptied buffer goes back).
    pub sender: usize,
    pub datagrams: Vec<HandedDatagram>,
    pub data: Vec<u8>,
}

/// One datagram of a [`Handover`].
#[derive(Debug, Clone, Copy)]
pub struct HandedDatagram {
    pub from: SocketAddr,
    /// The sender's hash of `from`'s address ([`ExporterKey`]), reused by the decoder.
    pub exporter_hash: u64,
    pub received_ns: u64,
    pub len: usize,
}

impl Handover {
    fn push(&mut self, from: SocketAddr, exporter: ExporterKey, received_ns: u64, payload: &[u8]) {
        self.datagrams.push(HandedDatagram {
            from,
            exporter_hash: exporter.hash(),
            received_ns,
            len: payload.len(),
        });
        self.data.extend_from_slice(payload);
    }

    fn clear(&mut self) {
        self.datagrams.clear();
        self.data.clear();
    }

    fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }
}

/// Requests from the flush loop. Each is answered on the worker's next pass.
#[derive(Debug)]
pub enum Control {
    /// Emit every window that ended at or before `now_ns`.
    Flush {
        now_ns: u64,
        reply: tokio::sync::mpsc::UnboundedSender<FlushReply>,
    },
    /// Stop reading sockets (shutdown, phase one). The answer means this worker will hand
    /// nothing more over to the others.
    Stop {
        reply: tokio::sync::mpsc::UnboundedSender<usize>,
    },
    /// Decode what was handed over, emit every window (the open one included), then exit
    /// (shutdown, phase two: sent once every worker has stopped).
    Finish {
        now_ns: u64,
        reply: tokio::sync::mpsc::UnboundedSender<FlushReply>,
    },
    /// Replace enrichment and record selection (configuration reload).
    Reload {
        live: Arc<crate::pipeline::Reloadable>,
        reply: tokio::sync::mpsc::UnboundedSender<usize>,
    },
}

/// A worker's answer to [`Control::Flush`] / [`Control::Finish`]: its closed windows,
/// unfinished.
#[derive(Debug)]
pub struct FlushReply {
    pub worker: usize,
    pub windows: Flushed,
}

/// How to reach one worker from outside its thread.
#[derive(Debug)]
pub struct WorkerLink {
    pub handover: SyncSender<Handover>,
    /// Emptied hand-over buffers going back to this worker.
    pub recycle: SyncSender<Handover>,
    pub waker: Arc<Waker>,
    /// The worker's thread once it runs: its receive pause is a `park_timeout` (see
    /// [`super::coalesce`]), which [`WorkerLink::wake`] ends.
    pub thread: OnceLock<Thread>,
}

impl WorkerLink {
    /// Wake the worker out of `epoll_wait` or out of a receive pause, after sending it a
    /// control request or a hand-over.
    pub fn wake(&self) -> io::Result<()> {
        // The waker first: the worker's next wait then returns at once.
        let woken = self.waker.wake();
        if let Some(t) = self.thread.get() {
            t.unpark();
        }
        woken
    }
}

/// New exporters logged one by one per minute; beyond, they are counted and summed up in one
/// line (an address sweep or a spoofing flood must not flood the log).
const NEW_EXPORTER_LINES_PER_MINUTE: u32 = 20;

/// The ownership table, and the rate limit of its "new exporter" lines.
#[derive(Debug, Default)]
struct Owners {
    table: PrehashedMap<ExporterKey, usize>,
    minute_start: Option<std::time::Instant>,
    logged: u32,
    not_logged: u64,
}

impl Owners {
    fn log_new(&mut self, exporter: ExporterKey, worker: usize) {
        let now = std::time::Instant::now();
        let start = *self.minute_start.get_or_insert(now);
        if now.duration_since(start) >= std::time::Duration::from_secs(60) {
            if self.not_logged > 0 {
                info!(
                    more = self.not_logged,
                    known = self.table.len(),
                    "more new exporters in the last minute than are logged one by one"
                );
            }
            self.minute_start = Some(now);
            self.logged = 0;
            self.not_logged = 0;
        }
        if self.logged < NEW_EXPORTER_LINES_PER_MINUTE {
            self.logged += 1;
            info!(exporter = %exporter.ip(), worker, "new exporter");
        } else {
            self.not_logged += 1;
        }
    }
}

/// Which worker owns which exporter, and how to reach each worker.
#[derive(Debug)]
pub struct Routing {
    owners: Mutex<Owners>,
    /// Exporters tracked (`decoder.max_exporters`); beyond it datagrams are decoded by the
    /// worker that received them and counted under `exporter="other"`.
    capacity: usize,
    workers: Vec<WorkerLink>,
}

impl Routing {
    pub fn new(workers: Vec<WorkerLink>, capacity: usize) -> Self {
        Routing {
            owners: Mutex::new(Owners::default()),
            capacity,
            workers,
        }
    }

    /// The owner of `ip`, claiming it for `me` if nobody has. `None` when the table is full
    /// (the datagram is then decoded where it arrived).
    fn claim(&self, exporter: ExporterKey, me: usize) -> Option<usize> {
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = owners.table.get(&exporter) {
            return Some(*o);
        }
        if owners.table.len() >= self.capacity {
            return None;
        }
        owners.table.insert(exporter, me);
        owners.log_new(exporter, me);
        Some(me)
    }

    pub fn exporters(&self) -> usize {
        self.owners.lock().map(|o| o.table.len()).unwrap_or(0)
    }

    /// Wake worker `id` (after sending it a control request).
    pub fn wake(&self, id: usize) {
        if let Some(w) = self.workers.get(id)
            && let Err(e) = w.wake()
        {
            warn!(worker = id, error = %e, "cannot wake a receive worker");
        }
    }
}

/// Everything one worker thread owns.
#[derive(Debug)]
pub struct Worker {
    pub id: usize,
    pub sockets: Vec<UdpSocket>,
    /// The access lists of each socket's listen address (same order as `sockets`).
    pub access: Vec<super::access::Access>,
    pub pipeline: WorkerPipeline,
    /// Where the pipeline's flow records go, once per pass.
    pub sinks: SinkSet,
    pub routing: Arc<Routing>,
    pub handover_rx: StdReceiver<Handover>,
    pub recycle_rx: StdReceiver<Handover>,
    pub control_rx: StdReceiver<Control>,
    pub shared: Arc<Mutex<WorkerStats>>,
    pub poll: Poll,
    /// The pause after a pass that emptied every socket (see [`super::coalesce`]).
    pub coalesce: Coalesce,
}

/// What the worker loop does after answering a control request.
enum Next {
    Continue,
    Exit,
}

/// Per-thread receive state: buffers, readiness and the hand-over batches being filled.
struct Pass {
    receivers: Vec<Receiver>,
    /// Sockets that may still have queued datagrams (edge-triggered readiness).
    ready: Vec<bool>,
    /// Cached answers of [`Routing::claim`].
    owners: PrehashedMap<ExporterKey, Option<usize>>,
    /// Per destination worker, the batch being filled this pass.
    outgoing: Vec<Handover>,
    receiving: bool,
}

impl Worker {
    /// Create a worker's poller and the waker others use to reach it.
    pub fn poller() -> io::Result<(Poll, Arc<Waker>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok((poll, waker))
    }

    /// The worker loop; returns after [`Control::Finish`] or when the flush loop is gone.
    pub fn run(mut self) {
        use std::os::fd::AsRawFd;
        if let Some(link) = self.routing.workers.get(self.id) {
            // Set once: this is the worker's only thread.
            let _ = link.thread.set(std::thread::current());
        }
        for (i, s) in self.sockets.iter().enumerate() {
            let fd = s.as_raw_fd();
            if let Err(e) = self.poll.registry().register(
                &mut mio::unix::SourceFd(&fd),
                Token(i),
                Interest::READABLE,
            ) {
                warn!(worker = self.id, error = %e, "cannot watch a socket; it will not be read");
            }
        }
        let n = self.sockets.len();
        let workers = self.routing.workers.len();
        let mut pass = Pass {
            receivers: (0..n).map(|_| Receiver::new()).collect(),
            // Read every socket once at start: datagrams may have queued before registration.
            ready: vec![true; n],
            owners: PrehashedMap::default(),
            outgoing: (0..workers).map(|_| Handover::default()).collect(),
            receiving: true,
        };
        let mut events = Events::with_capacity(n + 1);
        let mut delta = WorkerStats::default();
        let mut last_reclaim_wake = 0u64;
        loop {
            loop {
                match self.control_rx.try_recv() {
                    Ok(c) => {
                        if let Next::Exit = self.control(c, &mut pass, &mut delta) {
                            return;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            let busy = pass.receiving && pass.ready.iter().any(|r| *r);
            if pass.receiving && !busy {
                // Every socket is empty: what arrives during the pause is taken in one batch.
                let pause = self.coalesce.pause(now_ns());
                if !pause.is_zero() {
                    delta.recv_pauses += 1;
                    // Ended early by a control request or a hand-over (`WorkerLink::wake`).
                    std::thread::park_timeout(pause);
                }
            }
            let timeout = Some(if busy {
                std::time::Duration::ZERO
            } else {
                HOUSEKEEPING
            });
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    delta.recv_errors += 1;
                    warn!(worker = self.id, error = %e, "waiting for sockets failed");
                }
            }
            for ev in &events {
                if let Some(r) = pass.ready.get_mut(ev.token().0) {
                    *r = true;
                }
            }
            if pass.receiving {
                self.receive_pass(&mut pass, &mut delta);
            }
            self.drain_handover(&mut delta);
            let now = now_ns();
            self.pipeline.maintain(now, &mut delta);
            if self.pipeline.take_reclaim_request()
                && now.saturating_sub(last_reclaim_wake) >= RECLAIM_WAKE_EVERY_NS
            {
                last_reclaim_wake = now;
                for other in (0..self.routing.workers.len()).filter(|w| *w != self.id) {
                    self.routing.wake(other);
                }
            }
            self.publish(&mut delta);
        }
    }

    /// End of a pass: records to the record sinks, counters to readers.
    fn publish(&mut self, delta: &mut WorkerStats) {
        if self.sinks.takes_records() {
            self.sinks.records(self.pipeline.take_records());
        }
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        delta.drain_into(&mut shared);
    }

    /// Answer one control request.
    fn control(&mut self, c: Control, pass: &mut Pass, delta: &mut WorkerStats) -> Next {
        match c {
            Control::Flush { now_ns, reply } => {
                let windows = self.pipeline.flush(now_ns, false, delta);
                // Counters first: whoever shows the window also finds the counts behind it.
                self.publish(delta);
                let _ = reply.send(FlushReply {
                    worker: self.id,
                    windows,
                });
                Next::Continue
            }
            Control::Reload { live, reply } => {
                self.pipeline.reload(&live);
                let _ = reply.send(self.id);
                Next::Continue
            }
            Control::Stop { reply } => {
                pass.receiving = false;
                let _ = reply.send(self.id);
                Next::Continue
            }
            Control::Finish { now_ns, reply } => {
                self.drain_handover(delta);
                let windows = self.pipeline.flush(now_ns, true, delta);
                self.publish(delta);
                let _ = reply.send(FlushReply {
                    worker: self.id,
                    windows,
                });
                Next::Exit
            }
        }
    }

    /// One batch from every readable socket, decoded here or handed to the exporter's owner.
    fn receive_pass(&mut self, pass: &mut Pass, delta: &mut WorkerStats) {
        for i in 0..self.sockets.len() {
            if !pass.ready.get(i).copied().unwrap_or(false) {
                continue;
            }
            let (Some(socket), Some(r)) = (self.sockets.get(i), pass.receivers.get_mut(i)) else {
                continue;
            };
            let got = match r.recv_batch(socket) {
                Ok(got) => got,
                Err(e) => {
                    delta.recv_errors += 1;
                    warn!(worker = self.id, error = %e, "receive failed");
                    0
                }
            };
            delta.recv_batches += u64::from(got > 0);
            if got < BATCH
                && let Some(ready) = pass.ready.get_mut(i)
            {
                *ready = false;
            }
            let now = now_ns();
            let access = self.access.get(i).filter(|a| !a.is_open());
            for k in 0..got {
                let Some(meta) = r.received().get(k).copied() else {
                    continue;
                };
                let payload = r.payload(k);
                self.coalesce.received(payload.len());
                let ip = meta.from.ip();
                if let Some(reason) = access.and_then(|a| a.refuse(ip)) {
                    delta.count_drop(reason);
                    continue;
                }
                // The one hash of the exporter's address for this datagram.
                let exporter = ExporterKey::new(ip);
                let owner = *pass
                    .owners
                    .entry(exporter)
                    .or_insert_with(|| self.routing.claim(exporter, self.id));
                match owner {
                    Some(o) if o != self.id => match pass.outgoing.get_mut(o) {
                        Some(batch) => batch.push(meta.from, exporter, now, payload),
                        None => delta.count_drop(DropReason::HandoverQueueFull),
                    },
                    _ => {
                        let tracked = owner.is_some();
                        self.pipeline
                            .process(meta.from, exporter, tracked, payload, now, delta);
                    }
                }
            }
            if pass.owners.len() > 2 * self.routing.capacity {
                pass.owners.clear();
            }
        }
        self.send_handovers(pass, delta);
    }

    /// Send this pass's hand-over batches, one per owner, each with a fresh (recycled) buffer
    /// left in its place.
    fn send_handovers(&self, pass: &mut Pass, delta: &mut WorkerStats) {
        for (owner, batch) in pass.outgoing.iter_mut().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let Some(link) = self.routing.workers.get(owner) else {
                continue;
            };
            let fresh = match self.recycle_rx.try_recv() {
                Ok(mut b) => {
                    b.clear();
                    b
                }
                Err(_) => Handover::default(),
            };
            let mut full = std::mem::replace(batch, fresh);
            full.sender = self.id;
            let count = full.datagrams.len() as u64;
            match link.handover.try_send(full) {
                Ok(()) => {
                    delta.handed_over += count;
                    if let Err(e) = link.wake() {
                        warn!(worker = owner, error = %e, "cannot wake a receive worker");
                    }
                }
                Err(TrySendError::Full(mut b) | TrySendError::Disconnected(mut b)) => {
                    for _ in 0..count {
                        delta.count_drop(DropReason::HandoverQueueFull);
                    }
                    b.clear();
                    *batch = b;
                }
            }
        }
    }

    /// Decode the batches other workers handed over, returning each buffer to its sender.
    fn drain_handover(&mut self, delta: &mut WorkerStats) {
        for _ in 0..HANDOVER_CAPACITY {
            let Ok(h) = self.handover_rx.try_recv() else {
                break;
            };
            let mut at = 0usize;
            for d in &h.datagrams {
                let end = at.saturating_add(d.len);
                let payload = h.data.get(at..end).unwrap_or_default();
                at = end;
                let exporter = ExporterKey::with_hash(d.from.ip(), d.exporter_hash);
                self.pipeline
                    .process(d.from, exporter, true, payload, d.received_ns, delta);
            }
            if let Some(link) = self.routing.workers.get(h.sender) {
                // A full recycle queue just frees the buffer.
                let _ = link.recycle.try_send(h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_wake_ends_a_receive_pause() {
        let (_poll, waker) = Worker::poller().expect("poller");
        let (handover, _handover_rx) = std::sync::mpsc::sync_channel(1);
        let (recycle, _recycle_rx) = std::sync::mpsc::sync_channel(1);
        let link = Arc::new(WorkerLink {
            handover,
            recycle,
            waker,
            thread: OnceLock::new(),
        });
        let (parked_tx, parked_rx) = std::sync::mpsc::channel();
        let worker = {
            let link = Arc::clone(&link);
            std::thread::spawn(move || {
                let _ = link.thread.set(std::thread::current());
                let start = Instant::now();
                parked_tx.send(()).expect("signal");
                // A pause far longer than any the daemon takes.
                std::thread::park_timeout(Duration::from_secs(60));
                start.elapsed()
            })
        };
        parked_rx.recv().expect("started");
        // Whether the wake comes before or after the worker parks, the pause ends: an unpark
        // before it is kept for it.
        link.wake().expect("wake");
        let paused = worker.join().expect("worker");
        assert!(paused < Duration::from_secs(30), "paused {paused:?}");
    }

    #[test]
    fn a_wake_before_the_thread_is_known_only_rings_the_waker() {
        let (mut poll, waker) = Worker::poller().expect("poller");
        let (handover, _handover_rx) = std::sync::mpsc::sync_channel(1);
        let (recycle, _recycle_rx) = std::sync::mpsc::sync_channel(1);
        let link = WorkerLink {
            handover,
            recycle,
            waker,
            thread: OnceLock::new(),
        };
        link.wake().expect("wake");
        let mut events = Events::with_capacity(2);
        poll.poll(&mut events, Some(Duration::from_secs(30)))
            .expect("poll");
        assert!(events.iter().any(|e| e.token() == WAKER));
    }
}
