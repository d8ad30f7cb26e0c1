//! Bytes after valid templates: a decoder learns NetFlow v9 and IPFIX templates and options
//! templates (fixed, variable-length, enterprise, biflow, options), then the input is read as
//! data sets of those templates and as a whole datagram from the same exporter. The selector
//! byte's bit 6 chooses the metrics-only field set (`RecordFields::CORE`), whose templates are
//! read through the straight-line `CoreLayout` where they allow it.
#![no_main]

#[path = "../../crates/flowtel-decode/tests/support/builder.rs"]
mod builder;

use builder::{FLOW4, Msg, f, fe};
use flowtel_decode::{DecodeOutput, Decoder, DecoderConfig, RecordFields};
use libfuzzer_sys::fuzz_target;

fn primed(record_fields: RecordFields) -> Decoder {
    let mut dec = Decoder::new(DecoderConfig {
        keep_unknown_fields: record_fields == RecordFields::ALL,
        record_fields,
        ..DecoderConfig::default()
    });
    let mut out = DecodeOutput::default();
    let var = [f(8, 4), fe(2636, 137, 0xFFFF), f(1, 2), f(315, 0xFFFF), f(2, 3), fe(29305, 1, 8), f(82, 0xFFFF)];
    let v6 = [f(27, 16), f(28, 16), f(56, 6), f(70, 3), f(139, 2), f(154, 8), f(155, 8), f(22, 4), f(21, 4), f(48, 1), f(34, 4)];
    for d in [
        Msg::ipfix(1, 1)
            .template(256, FLOW4)
            .template(257, &var)
            .template(258, &v6)
            .options_template(259, &[f(10, 4)], &[f(82, 0xFFFF), f(236, 0xFFFF), f(234, 4), f(160, 8)])
            .options_template(260, &[f(302, 4)], &[f(305, 4), f(306, 4), f(309, 4), f(310, 4)])
            .build(),
        Msg::v9(1, 1000, 1)
            .template(256, FLOW4)
            .template(258, &v6)
            .options_template(259, &[f(2, 4)], &[f(48, 1), f(50, 4), f(82, 16)])
            .build(),
    ] {
        dec.decode(([192, 0, 2, 1], 2055).into(), &d, 1, &mut out);
    }
    dec
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let fields = if sel & 0x40 != 0 {
        RecordFields::CORE
    } else {
        RecordFields::ALL
    };
    let mut dec = primed(fields);
    let mut out = DecodeOutput::default();
    let id = 256 + u16::from(sel % 5);
    let msg = if sel & 0x80 != 0 {
        Msg::v9(1, 1000, 1).raw_set(id, body).build()
    } else {
        Msg::ipfix(1, 1).raw_set(id, body).build()
    };
    let report = dec.decode(([192, 0, 2, 1], 2055).into(), &msg, 2, &mut out);
    assert_eq!(report.records, out.flows.len());
    out.clear();
    let report = dec.decode(([192, 0, 2, 1], 2055).into(), body, 3, &mut out);
    assert_eq!(report.records, out.flows.len());
});
