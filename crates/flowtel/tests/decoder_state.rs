//! Decoder state limits against the real daemon over real UDP: every `decoder:` bound holds over
//! the whole daemon (two receive workers, each with its own decoder), pending data sets expire
//! on time with no traffic, and a template storm stays within the memory budget, all read from
//! the metrics the daemon exports.

mod common;
#[path = "common/storm.rs"]
mod storm;

use std::net::UdpSocket;
use std::time::Duration;

use common::{Daemon, sample};
use storm::{Kind, Rng, Storm};

fn value(body: &str, series: &str) -> f64 {
    sample(body, series).unwrap_or(0.0)
}

#[test]
fn max_exporters_holds_over_every_worker_and_each_refusal_is_counted_once() {
    let d = Daemon::start(&[
        "run",
        "--workers",
        "2",
        "--max-exporters",
        "200",
        "--sink",
        "prometheus",
    ]);
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    let mut rng = Rng::new(7);
    let mut buf = Vec::new();
    // 600 exporters, one template each: the first 200 scopes are learnt, the other 400 refused,
    // whichever worker decodes them.
    for i in 0..600 {
        storm::template_datagram(&mut buf, &mut rng, 1, 0);
        storm::send_as(&socket, storm::exporter_addr(i), d.listen, &buf);
        if i % 50 == 49 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let body = d.metrics_until("600 template datagrams decoded", |b| {
        value(b, "flowtel_decode_limit_hits_total{limit=\"exporters\"}")
            + value(b, "flowtel_templates")
            == 600.0
    });
    assert_eq!(value(&body, "flowtel_templates"), 200.0, "{body}");
    assert_eq!(
        value(
            &body,
            "flowtel_decode_limit_hits_total{limit=\"exporters\"}"
        ),
        400.0
    );
    // Counted once: as a limit hit, not also as a decode error.
    assert!(!body.contains("reason=\"exporter_limit\""), "{body}");
    assert_eq!(
        value(
            &body,
            "flowtel_decode_errors_total{reason=\"invalid_template\"}"
        ),
        0.0
    );
    // The ownership table (and the per-exporter metrics) hold the same bound.
    assert_eq!(value(&body, "flowtel_exporters_known"), 200.0);
    let active = value(&body, "flowtel_exporters_active");
    assert!(active > 0.0 && active <= 200.0, "{body}");
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    // 200 new exporters within a minute: the first 20 are logged one by one, not all.
    assert_eq!(stderr.matches("new exporter").count(), 20, "{stderr}");
}

#[test]
fn max_pending_sets_holds_over_every_worker_and_sets_expire_with_no_traffic() {
    let d = Daemon::start(&[
        "run",
        "--workers",
        "2",
        "--max-pending-sets",
        "100",
        "--pending-timeout",
        "2",
        "--sink",
        "prometheus",
    ]);
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    let mut rng = Rng::new(11);
    let mut buf = Vec::new();
    // 300 data sets of templates that never come, from 60 exporters spread over both workers.
    for i in 0..300 {
        storm::pending_datagram(&mut buf, &mut rng, 200, i);
        storm::send_as(&socket, storm::exporter_addr(i % 60), d.listen, &buf);
    }
    let body = d.metrics_until("300 data sets held or dropped", |b| {
        value(b, "flowtel_pending_sets") + value(b, "flowtel_pending_dropped_total") == 300.0
    });
    // Not 100 per worker: 100 over the daemon.
    assert_eq!(value(&body, "flowtel_pending_sets"), 100.0, "{body}");
    assert_eq!(value(&body, "flowtel_pending_dropped_total"), 200.0);
    assert_eq!(value(&body, "flowtel_pending_expired_total"), 0.0);
    assert!(value(&body, "flowtel_decode_memory_bytes") > 100.0 * 200.0);
    // No traffic from here on: the timeout alone expires them.
    let body = d.metrics_until("every held set expired", |b| {
        value(b, "flowtel_pending_sets") == 0.0
            && value(b, "flowtel_pending_expired_total") == 100.0
    });
    assert_eq!(value(&body, "flowtel_decode_memory_bytes"), 0.0, "{body}");
    assert_eq!(value(&body, "flowtel_pending_dropped_total"), 200.0);
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
}

#[test]
fn a_template_storm_stays_within_the_memory_budget_by_evicting_the_least_recently_used() {
    const BUDGET: u64 = 2 << 20;
    let d = Daemon::start(&[
        "run",
        "--workers",
        "2",
        "--memory-budget-bytes",
        &BUDGET.to_string(),
        "--sink",
        "prometheus",
    ]);
    let pid = d.child.as_ref().unwrap().id();
    let baseline = storm::rss_bytes(pid).expect("/proc/PID/status");
    let body = d.metrics();
    assert_eq!(
        value(&body, "flowtel_decode_memory_budget_bytes"),
        BUDGET as f64
    );
    // 2,000 exporters, 100 random template ids per datagram, 1,000 datagrams a second for
    // 4 s: 400,000 templates, about 100 MiB of state without a budget.
    let sent = storm::run(
        &Storm {
            target: d.listen,
            exporters: 2_000,
            kind: Kind::Templates { templates: 100 },
            rate: 1_000,
            duration: Duration::from_secs(4),
            seed: 3,
        },
        |_| false,
    );
    assert!(sent.datagrams >= 3_000, "{sent:?}");
    let mut peak_memory = 0.0f64;
    let body = d.metrics_until("the storm decoded", |b| {
        peak_memory = peak_memory.max(value(b, "flowtel_decode_memory_bytes"));
        let learnt = value(b, "flowtel_templates_learnt_total");
        // 30,000 templates take about 10 MiB: far past the budget, so some were evicted (a
        // slow machine may decode only part of the storm: the kernel drops the rest).
        learnt > 30_000.0 && value(b, "flowtel_decode_evictions_total{kind=\"template\"}") > 0.0
    });
    let rss = storm::rss_bytes(pid).unwrap();
    let memory = value(&body, "flowtel_decode_memory_bytes");
    assert!(memory > 0.0 && memory <= BUDGET as f64, "{body}");
    assert!(peak_memory <= BUDGET as f64);
    let learnt = value(&body, "flowtel_templates_learnt_total");
    let known = value(&body, "flowtel_templates");
    let evicted = value(&body, "flowtel_decode_evictions_total{kind=\"template\"}");
    // Every template learnt is still known or was evicted (none withdrawn, none refused).
    assert!(
        known + evicted >= learnt - 1.0 && known + evicted <= learnt,
        "{body}"
    );
    assert!(known < 20_000.0, "{body}");
    // Resident memory: the baseline plus the budget plus the receive and decode buffers, far
    // below the ~100 MiB the storm's templates take without a budget.
    let grown = rss.saturating_sub(baseline);
    assert!(
        grown < BUDGET + (24 << 20),
        "RSS grew by {} MiB (baseline {} MiB)",
        grown >> 20,
        baseline >> 20
    );
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
}
