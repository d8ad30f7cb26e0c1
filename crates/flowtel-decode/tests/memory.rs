//! The memory budget charges what decoder state really takes: the bytes a decoder accounts
//! for templates, options data and pending data sets, against the growth of the resident
//! memory of a process that keeps them (Linux `/proc/self/statm`).
//!
//! Each kind is measured in a process of its own (this binary runs itself with the kind's name),
//! so that no memory freed by an earlier measurement is reused by a later one and hides its
//! growth. The binary has no test harness (`harness = false`): `main` is the test.

#[path = "support/builder.rs"]
mod builder;

use std::net::SocketAddr;
use std::process::Command;

use builder::{Msg, f, rec};
use flowtel_decode::{DecodeOutput, Decoder, DecoderConfig};

const T0: u64 = 1_700_000_000_000_000_000;

fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux /proc");
    let pages: usize = statm.split(' ').nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Feed `datagrams` to a decoder with an unlimited budget; (bytes accounted, resident growth).
fn measure(datagrams: impl Iterator<Item = (SocketAddr, Vec<u8>)>) -> (usize, usize) {
    let mut dec = Decoder::new(DecoderConfig {
        memory_budget_bytes: usize::MAX / 2,
        max_pending_sets: usize::MAX / 2,
        max_exporters: usize::MAX / 2,
        ..DecoderConfig::default()
    });
    let mut out = DecodeOutput::default();
    // The datagrams are made first, so only what the decoder keeps grows after `before`.
    let datagrams: Vec<_> = datagrams.collect();
    let before = rss();
    for (from, d) in &datagrams {
        out.clear();
        dec.decode(*from, d, T0, &mut out);
    }
    let grown = rss().saturating_sub(before);
    let accounted = dec.memory_bytes();
    drop(datagrams);
    drop(dec);
    (accounted, grown)
}

fn exporter(i: u32) -> SocketAddr {
    let ip = std::net::Ipv4Addr::from(0x0A00_0000 + i);
    SocketAddr::from((ip, 2055))
}

/// 2,000 exporters of 100 templates of 4 to 12 fields: 200,000 templates.
fn templates() -> (usize, usize) {
    // 2,000 exporters of 100 templates of 4 to 12 fields: 200,000 templates.
    let datagrams = (0..2_000u32).map(|e| {
        let mut m = Msg::ipfix(1, 1);
        for t in 0..100u16 {
            let n = 4 + usize::from(t % 9);
            let fields: Vec<_> = (0..n).map(|i| f(1 + i as u16, 4)).collect();
            m.template(256 + t, &fields);
        }
        (exporter(e), m.build())
    });
    measure(datagrams)
}

/// 20,000 data sets of 200 to 1,400 bytes waiting for templates that never come.
fn pending_sets() -> (usize, usize) {
    let datagrams = (0..20_000u32).map(|i| {
        let len = 200 + (i as usize % 7) * 200;
        let d = Msg::ipfix(1, 1)
            .raw_set(300 + (i % 10_000) as u16, &vec![1; len])
            .build();
        (exporter(i % 500), d)
    });
    measure(datagrams)
}

/// 1,000 exporters naming 100 interfaces each, and a sampling rate per sampler id.
fn options_data() -> (usize, usize) {
    let datagrams = (0..1_000u32).map(|e| {
        let names: Vec<Vec<u8>> = (0..100u32)
            .map(|i| {
                let name = format!("GigabitEthernet0/{i:<14}");
                rec(&[&i.to_be_bytes(), name.as_bytes()])
            })
            .collect();
        let rates: Vec<Vec<u8>> = (0..100u32)
            .map(|i| rec(&[&i.to_be_bytes(), &100u32.to_be_bytes()]))
            .collect();
        let d = Msg::ipfix(1, 1)
            .options_template(300, &[f(10, 4)], &[f(82, 32)])
            .options_template(301, &[f(302, 4)], &[f(34, 4)])
            .data(300, &names)
            .data(301, &rates)
            .build();
        (exporter(e), d)
    });
    measure(datagrams)
}

/// A measurement: (bytes accounted, resident growth).
type Measure = fn() -> (usize, usize);

const KINDS: [(&str, Measure); 3] = [
    ("templates", templates),
    ("pending-sets", pending_sets),
    ("options-data", options_data),
];

fn main() {
    // A measurement: print "accounted grown".
    if let Some(kind) = std::env::args().nth(1).filter(|a| !a.starts_with('-')) {
        let Some((_, run)) = KINDS.iter().find(|(k, _)| *k == kind) else {
            return;
        };
        let (accounted, grown) = run();
        println!("{accounted} {grown}");
        return;
    }
    // The test: each kind in a process of its own, accounted within a quarter of the growth.
    let me = std::env::current_exe().expect("the test binary");
    let mut failed = Vec::new();
    for (kind, _) in KINDS {
        let out = Command::new(&me)
            .arg(kind)
            .output()
            .expect("run a measurement");
        assert!(out.status.success(), "{kind}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let nums: Vec<f64> = text
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        let [accounted, grown] = nums[..] else {
            panic!("{kind}: {text}");
        };
        let ratio = accounted / grown;
        println!("{kind}: accounted {accounted} bytes, resident memory grew {grown} ({ratio:.2}x)");
        if !(0.75..=1.25).contains(&ratio) {
            failed.push(kind);
        }
    }
    assert!(
        failed.is_empty(),
        "accounting off by more than 25%: {failed:?}"
    );
    println!("test result: ok. decoder state costs what it is charged");
}
