//! sFlow v5 decoder fuzz target: the input is everything after the version word, so every
//! input reaches the sFlow decoder.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run sflow [SEED_DIR] -- -max_total_time=600`

#![no_main]

use std::net::SocketAddr;

use flowtel_decode::{DecodeOutput, Decoder, DecoderConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut datagram = Vec::with_capacity(data.len() + 4);
    datagram.extend_from_slice(&[0, 0, 0, 5]);
    datagram.extend_from_slice(data);
    let exporter = SocketAddr::from(([192, 0, 2, 1], 6343));
    let mut out = DecodeOutput::default();
    for keep_unknown_fields in [false, true] {
        let config = DecoderConfig {
            keep_unknown_fields,
            ..DecoderConfig::default()
        };
        out.clear();
        let report = Decoder::new(config).decode(exporter, &datagram, 0, &mut out);
        assert_eq!(report.records, out.flows.len());
        assert_eq!(report.counters, out.counters.len());
        // Every sample takes at least 8 bytes (format and length words).
        assert!(out.flows.len() + out.counters.len() <= datagram.len() / 8);
    }
});
