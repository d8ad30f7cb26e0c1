//! `flowtel run --pcap FILE --sink stdout`: the daemon's pipeline on a capture.
//!
//! Every UDP datagram of the capture goes through the same [`WorkerPipeline`] a receive
//! worker runs (decode → enrich → rollup) and its windows through the same merge and top-K
//! selection ([`Flushed::finish`]), with the capture timestamps as the clock: a window is
//! emitted as soon as a datagram's timestamp passes its end, and every window still open is
//! flushed at end of file. Points go to stdout as JSON lines ([`point_json`]); a
//! summary of what was read, decoded and emitted goes to stderr.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::sync::Arc;

use anyhow::{Context, bail};
use flowtel_pcap::CaptureReader;
use flowtel_rollup::RollupStats;

use flowtel::config::{self, RunArgs, SinkKind};
use flowtel::pipeline::stats::WorkerStats;
use flowtel::pipeline::{Flushed, PipelineSpec, WorkerPipeline};
use flowtel::sinks::stdout::point_json;

pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let Some(pcap) = &args.pcap else {
        bail!("flowtel run needs --pcap FILE for the offline pipeline");
    };
    let config = config::resolve(args, &config::process_env)?;
    if config.sinks.iter().any(|s| *s != SinkKind::Stdout) {
        bail!("flowtel run --pcap supports only --sink stdout");
    }
    let spec = PipelineSpec::from_config(&config)?;
    let mut pipeline = WorkerPipeline::new(&spec)?;
    let mut stats = WorkerStats::default();
    let mut finished: BTreeMap<Arc<str>, RollupStats> = BTreeMap::new();
    let mut reader = CaptureReader::open(pcap)
        .with_context(|| format!("cannot read capture {}", pcap.display()))?;
    let mut out = BufWriter::new(io::stdout().lock());
    let mut datagrams = 0u64;
    let mut clock = 0u64;
    let mut capture_error = None;
    for item in reader.by_ref() {
        let datagram = match item {
            Ok(d) => d,
            Err(e) => {
                capture_error = Some(e);
                break;
            }
        };
        datagrams += 1;
        clock = clock.max(datagram.timestamp_ns);
        pipeline.process(
            datagram.src,
            flowtel_decode::prehash::ExporterKey::new(datagram.src.ip()),
            true,
            &datagram.payload,
            datagram.timestamp_ns,
            &mut stats,
        );
        let windows = pipeline.flush(clock, false, &mut stats);
        if let Err(e) = write(&mut out, windows, &mut finished) {
            return broken_pipe_ok(e);
        }
    }
    let windows = pipeline.flush(clock, true, &mut stats);
    if let Err(e) = write(&mut out, windows, &mut finished).and_then(|()| out.flush()) {
        return broken_pipe_ok(e);
    }

    let flows = stats.by_protocol().total().records;
    let (errors, unknown_rate) = stats.snapshot.as_ref().map_or((0, 0), |s| {
        (
            s.decoder.stats.errors.values().sum::<u64>(),
            s.enrich.unknown_sampling_rate,
        )
    });
    eprintln!(
        "{}: {datagrams} datagrams, {flows} flow records ({errors} decode errors, {unknown_rate} without a sampling rate)",
        pcap.display(),
    );
    let pushed: BTreeMap<&str, RollupStats> = stats
        .snapshot
        .iter()
        .flat_map(|s| s.rollups.iter().map(|(n, r)| (&**n, *r)))
        .collect();
    for (name, s) in &finished {
        let p = pushed.get(&**name).copied().unwrap_or_default();
        eprintln!(
            "rollup {name}: value {}, {} windows, {} points ({} overflow), {} late records, {} keys evicted",
            p.value_in,
            s.windows_emitted,
            s.points_emitted,
            s.overflow_points,
            p.late_records,
            s.keys_evicted
        );
    }
    if let Some(e) = capture_error {
        eprintln!("warning: {e}; datagrams before that point were processed");
    }
    Ok(())
}

fn write(
    out: &mut impl Write,
    windows: Flushed,
    finished: &mut BTreeMap<Arc<str>, RollupStats>,
) -> io::Result<()> {
    if windows.is_empty() {
        return Ok(());
    }
    for batch in windows.finish(finished) {
        for p in &batch.points {
            writeln!(out, "{}", point_json(p))?;
        }
    }
    Ok(())
}

/// `flowtel run … | head`: the reader has seen enough.
fn broken_pipe_ok(e: io::Error) -> anyhow::Result<()> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(e).context("cannot write to stdout")
    }
}
