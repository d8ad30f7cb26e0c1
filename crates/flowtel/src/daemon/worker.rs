//! A receive worker: one thread, one socket per listen address it serves, its own decoder.
//!
//! # Template state across workers
//!
//! NetFlow v9 and IPFIX data sets are only decodable with templates the same exporter sent
//! earlier, and the decoder keeps templates per worker. SO_REUSEPORT hashes the 4-tuple, so one
//! exporter socket always reaches the same worker; but an exporter may send from several source
//! ports (line cards, restarts) while templates are scoped by its address. flowtel therefore
//! routes by exporter: the first worker that sees an exporter address claims it in a shared
//! table (a mutex taken only on an exporter's first datagram per worker; each worker caches the
//! answer), and a worker that receives a datagram of an exporter owned by another worker hands
//! it over through that worker's bounded queue. In the common case (one source port) nothing is
//! ever handed over; when a hand-over queue is full the datagram is dropped and counted
//! (`flowtel.datagrams.dropped{reason="handover_queue_full"}`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver as StdReceiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use flowtel_rollup::WindowAggregate;
use socket2::Socket;
use tracing::{info, warn};

use super::listener::Receiver;
use super::pipeline::WorkerPipeline;
use super::stats::{DropReason, MAX_EXPORTERS, WorkerStats};

/// Datagrams a worker's hand-over queue holds.
pub const HANDOVER_CAPACITY: usize = 4_096;

/// A datagram received by one worker for the worker that owns its exporter.
#[derive(Debug)]
pub struct Handover {
    pub from: SocketAddr,
    pub received_ns: u64,
    pub data: Vec<u8>,
}

/// Requests from the flush loop.
#[derive(Debug)]
pub enum Control {
    /// Emit every window that ended at or before `now_ns`; with `last`, also the open window,
    /// then exit.
    Flush {
        now_ns: u64,
        last: bool,
        reply: tokio::sync::mpsc::UnboundedSender<FlushReply>,
    },
}

/// A worker's answer to [`Control::Flush`]: its closed windows, unfinished.
#[derive(Debug)]
pub struct FlushReply {
    pub worker: usize,
    pub windows: Vec<WindowAggregate>,
}

/// Which worker owns which exporter, and how to reach each worker.
#[derive(Debug)]
pub struct Routing {
    owners: Mutex<HashMap<IpAddr, usize>>,
    handover: Vec<SyncSender<Handover>>,
}

impl Routing {
    pub fn new(handover: Vec<SyncSender<Handover>>) -> Self {
        Routing {
            owners: Mutex::new(HashMap::new()),
            handover,
        }
    }

    /// The owner of `ip`, claiming it for `me` if nobody has. `None` when the table is full
    /// (the datagram is then decoded where it arrived).
    fn claim(&self, ip: IpAddr, me: usize) -> Option<usize> {
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(o) = owners.get(&ip) {
            return Some(*o);
        }
        if owners.len() >= MAX_EXPORTERS {
            return None;
        }
        owners.insert(ip, me);
        info!(exporter = %ip, worker = me, "new exporter");
        Some(me)
    }

    pub fn exporters(&self) -> usize {
        self.owners.lock().map(|o| o.len()).unwrap_or(0)
    }
}

/// Everything one worker thread owns.
#[derive(Debug)]
pub struct Worker {
    pub id: usize,
    pub sockets: Vec<Socket>,
    pub pipeline: WorkerPipeline,
    pub routing: Arc<Routing>,
    pub handover_rx: StdReceiver<Handover>,
    pub control_rx: StdReceiver<Control>,
    pub stop_receiving: Arc<AtomicBool>,
    pub shared: Arc<Mutex<WorkerStats>>,
}

pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Worker {
    /// The worker loop; returns after the last flush or when the flush loop is gone.
    pub fn run(mut self) {
        let mut receivers: Vec<Receiver> = self.sockets.iter().map(|_| Receiver::new()).collect();
        let mut owners: HashMap<IpAddr, Option<usize>> = HashMap::new();
        let mut delta = WorkerStats::default();
        let mut socket_drops: Vec<u64> = vec![0; self.sockets.len()];
        loop {
            match self.control_rx.try_recv() {
                Ok(Control::Flush {
                    now_ns,
                    last,
                    reply,
                }) => {
                    if last {
                        // Decode what was already handed over before closing the window.
                        self.drain_handover(&mut delta);
                    }
                    let windows = self.pipeline.flush(now_ns, last, &mut delta);
                    let _ = reply.send(FlushReply {
                        worker: self.id,
                        windows,
                    });
                    if last {
                        self.publish(&mut delta);
                        return;
                    }
                }
                Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => {}
            }
            if self.stop_receiving.load(Ordering::Relaxed) {
                // Wait for the last flush without spinning.
                std::thread::sleep(super::listener::RECV_TIMEOUT);
                continue;
            }
            for (i, socket) in self.sockets.iter().enumerate() {
                let r = &mut receivers[i];
                let n = match r.recv_batch(socket) {
                    Ok(n) => n,
                    Err(e) => {
                        delta.recv_errors += 1;
                        warn!(worker = self.id, error = %e, "receive failed");
                        0
                    }
                };
                let now = now_ns();
                for k in 0..n {
                    let Some(meta) = r.received().get(k).copied() else {
                        continue;
                    };
                    let payload = r.payload(k);
                    let ip = meta.from.ip();
                    let owner = *owners
                        .entry(ip)
                        .or_insert_with(|| self.routing.claim(ip, self.id));
                    match owner {
                        Some(o) if o != self.id => {
                            let Some(tx) = self.routing.handover.get(o) else {
                                continue;
                            };
                            let h = Handover {
                                from: meta.from,
                                received_ns: now,
                                data: payload.to_vec(),
                            };
                            match tx.try_send(h) {
                                Ok(()) => delta.handed_over += 1,
                                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                                    delta.count_drop(DropReason::HandoverQueueFull)
                                }
                            }
                        }
                        _ => {
                            let label = owner.map(|_| ip);
                            self.pipeline
                                .process(meta.from, label, payload, now, &mut delta);
                        }
                    }
                }
                if owners.len() > 2 * MAX_EXPORTERS {
                    owners.clear();
                }
                if r.kernel_drops > 0 {
                    socket_drops[i] = r.kernel_drops;
                }
            }
            delta.socket_drops = socket_drops.iter().sum();
            self.drain_handover(&mut delta);
            self.publish(&mut delta);
        }
    }

    fn drain_handover(&mut self, delta: &mut WorkerStats) {
        for _ in 0..HANDOVER_CAPACITY {
            match self.handover_rx.try_recv() {
                Ok(h) => {
                    let label = Some(h.from.ip());
                    self.pipeline
                        .process(h.from, label, &h.data, h.received_ns, delta)
                }
                Err(_) => break,
            }
        }
    }

    fn publish(&self, delta: &mut WorkerStats) {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        delta.drain_into(&mut shared);
    }
}
