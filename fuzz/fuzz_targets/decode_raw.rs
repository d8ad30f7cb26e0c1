//! Arbitrary bytes into the decoder: the input is split into datagrams (2-byte length
//! prefixes) decoded in order by one decoder, so template state carries across them.
#![no_main]

use flowtel_decode::{DecodeOutput, Decoder, DecoderConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut dec = Decoder::new(DecoderConfig {
        keep_unknown_fields: true,
        max_pending_sets: 8,
        max_templates_per_exporter: 16,
        ..DecoderConfig::default()
    });
    let mut out = DecodeOutput::default();
    let mut rest = data;
    let mut t = 1_700_000_000_000_000_000u64;
    while let [a, b, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        let (dgram, next) = tail.split_at(len);
        out.clear();
        let port = 2055 + u16::from(len % 2 == 0);
        let report = dec.decode(([192, 0, 2, 1], port).into(), dgram, t, &mut out);
        assert_eq!(report.records, out.flows.len());
        t += 1_000_000_000;
        rest = next;
    }
    out.clear();
    let report = dec.decode(([192, 0, 2, 1], 2055).into(), data, t, &mut out);
    assert_eq!(report.records, out.flows.len());
});
