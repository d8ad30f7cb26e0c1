//! A receive worker that panics stops the daemon with an error (so that its service manager
//! starts a fresh one) after the other workers' windows are emitted: the daemon embedded as
//! `flowtel run` runs it, two workers on a real UDP listener on loopback, and a sink of the
//! test's own that panics in the receive path (sinks take their records on the worker's
//! thread). One embedded daemon per process (its log subscriber is global), so the sink's case
//! is `sink_failure.rs`.

mod common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::{PATIENCE, V5_FLOWS, embedded_daemon, send_v5};
use flowtel::daemon::Failure;
use flowtel::sinks::{Records, ShutdownFuture, Sink, SinkStatus, Windows};
use flowtel_rollup::AttrValue;

const BUG: &str = "a sink's bug in the receive path";

/// Takes records and windows. Records of any exporter but `good` panic on any worker thread
/// but the one that took `good`'s records, so that exactly one worker fails and `good`'s
/// survives.
struct Probe {
    good: IpAddr,
    good_thread: Mutex<Option<String>>,
    /// Exporters whose records reached `good`'s worker (and so did not panic).
    spared: Mutex<BTreeSet<IpAddr>>,
    /// Bytes of `good`'s series in the windows emitted, and whether the final flush came.
    good_bytes: Mutex<(u64, bool)>,
}

impl Sink for Probe {
    fn name(&self) -> &str {
        "probe"
    }

    fn takes_windows(&self) -> bool {
        true
    }

    fn takes_records(&self) -> bool {
        true
    }

    fn windows(&self, windows: &Arc<Windows>) {
        let good = self.good.to_string();
        let mut seen = self.good_bytes.lock().unwrap();
        for b in windows
            .batches
            .iter()
            .filter(|b| &*b.rollup == "bytes_by_flow")
        {
            for p in &b.points {
                if p.attributes.iter().any(|(k, v)| {
                    &**k == "device_name" && matches!(v, AttrValue::Str(s) if **s == *good)
                }) {
                    seen.0 += p.value;
                }
            }
        }
        seen.1 |= windows.final_flush;
    }

    fn records(&self, records: &Records) {
        let thread = std::thread::current().name().unwrap_or_default().to_owned();
        let mut good_thread = self.good_thread.lock().unwrap();
        for r in records.iter() {
            if r.device_addr == self.good {
                good_thread.get_or_insert_with(|| thread.clone());
            } else if good_thread.as_deref() == Some(thread.as_str()) {
                self.spared.lock().unwrap().insert(r.device_addr);
            } else {
                drop(good_thread);
                panic!("{BUG}");
            }
        }
    }

    fn status(&self) -> SinkStatus {
        SinkStatus::default()
    }

    fn shutdown(&self, _deadline: tokio::time::Instant) -> ShutdownFuture<'_> {
        Box::pin(async {})
    }
}

#[test]
fn a_panicking_worker_stops_the_daemon_after_the_others_windows_are_emitted() {
    let good: IpAddr = [127, 0, 0, 1].into();
    let probe = Arc::new(Probe {
        good,
        good_thread: Mutex::new(None),
        spared: Mutex::new(BTreeSet::new()),
        good_bytes: Mutex::new((0, false)),
    });
    let (to, done) = embedded_daemon(2, probe.clone());

    // Three datagrams of the exporter whose worker survives, taken before anything fails.
    for seq in 0..3 {
        send_v5(good, to, seq * 2);
    }
    let start = Instant::now();
    while probe.good_thread.lock().unwrap().is_none() {
        assert!(
            start.elapsed() < PATIENCE,
            "the good exporter's records never came"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    // One exporter after another until one lands on the other worker (the kernel's hash of
    // the 4-tuple chooses; each lands there with a chance of one half) and its worker panics.
    let mut result = None;
    for last in 2..=40u8 {
        let exporter: IpAddr = [127, 0, 0, last].into();
        send_v5(exporter, to, 0);
        let start = Instant::now();
        loop {
            if let Ok(r) = done.try_recv() {
                result = Some(r);
                break;
            }
            if probe.spared.lock().unwrap().contains(&exporter) {
                break;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "{exporter}'s records never came"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if result.is_some() {
            break;
        }
    }
    let result = result.expect("no exporter reached the second worker in 39 tries");

    let error = result.expect_err("the daemon stops with an error");
    let Some(Failure::Worker { worker, message }) = error.downcast_ref::<Failure>() else {
        panic!("not a worker's failure: {error:#}");
    };
    assert_eq!(message, BUG);
    let good_thread = probe.good_thread.lock().unwrap().clone().unwrap();
    assert_ne!(format!("flowtel-rx-{worker}"), good_thread);
    assert_eq!(
        error.to_string(),
        format!("receive worker {worker} panicked: {BUG}")
    );

    // The surviving worker's window went out in the shutdown's flush, every byte of it.
    let per_datagram: u64 = V5_FLOWS.iter().map(|f| u64::from(f.bytes)).sum();
    assert_eq!(*probe.good_bytes.lock().unwrap(), (3 * per_datagram, true));
}
