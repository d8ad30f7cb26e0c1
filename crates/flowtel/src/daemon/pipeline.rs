//! One worker's synchronous pipeline: decode (then enrich and roll up) one datagram at a time.

use std::net::SocketAddr;

use flowtel_decode::{DecodeOutput, Decoder, DecoderConfig};
use flowtel_rollup::WindowBatch;

use super::stats::{ProtocolLabel, WorkerStats};

/// How often (in receive-time nanoseconds) a worker copies its decoder counters for readers.
const SNAPSHOT_EVERY_NS: u64 = 250_000_000;

/// Decoder and reusable buffers of one worker.
#[derive(Debug)]
pub struct WorkerPipeline {
    decoder: Decoder,
    out: DecodeOutput,
    last_snapshot_ns: u64,
}

impl WorkerPipeline {
    pub fn new(decoder: DecoderConfig) -> Self {
        WorkerPipeline {
            decoder: Decoder::new(decoder),
            out: DecodeOutput::default(),
            last_snapshot_ns: 0,
        }
    }

    /// Decode one datagram and count it. `known_exporter` is false when the exporter table is
    /// full (counted under `exporter="other"`).
    pub fn process(
        &mut self,
        from: SocketAddr,
        known_exporter: bool,
        datagram: &[u8],
        now_ns: u64,
        stats: &mut WorkerStats,
    ) {
        self.out.clear();
        let report = self.decoder.decode(from, datagram, now_ns, &mut self.out);
        stats.count_datagram(
            known_exporter.then(|| from.ip()),
            ProtocolLabel::from_protocol(report.protocol),
            datagram.len(),
            report.records,
            now_ns,
        );
        stats.counter_records += report.counters as u64;
        if now_ns.saturating_sub(self.last_snapshot_ns) >= SNAPSHOT_EVERY_NS {
            self.snapshot(stats, now_ns);
        }
    }

    fn snapshot(&mut self, stats: &mut WorkerStats, now_ns: u64) {
        self.last_snapshot_ns = now_ns;
        stats.decoder.stats.clone_from(self.decoder.stats());
        stats.decoder.templates = self.decoder.template_count();
        stats.decoder.pending_sets = self.decoder.pending_sets();
    }

    /// Emit the windows closed at `now_ns` (all of them with `last`).
    pub fn flush(&mut self, now_ns: u64, last: bool, stats: &mut WorkerStats) -> Vec<WindowBatch> {
        self.snapshot(stats, now_ns);
        let _ = last;
        Vec::new()
    }
}
