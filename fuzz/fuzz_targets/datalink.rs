//! The sampled-frame path: IPFIX records whose only content is a `dataLinkFrameSection` (IE 315,
//! variable length) holding the input, read by the link-layer parser (Ethernet, VLAN, MPLS,
//! pseudowires, IPv4, IPv6 with extension headers, tunnels, L4), with `dataLinkFrameSize`
//! (IE 312) beside it.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run datalink -- -max_total_time=600`
#![no_main]

#[path = "../../crates/flowtel-decode/tests/support/builder.rs"]
mod builder;

use builder::{Msg, f};
use flowtel_decode::{DecodeOutput, Decoder, DecoderConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&size, frame)) = data.split_first() else {
        return;
    };
    // IPFIX variable length (RFC 7011 §7): one byte below 255, else 255 and two bytes.
    let mut record = Vec::with_capacity(frame.len() + 5);
    record.extend_from_slice(&u16::from(size).to_be_bytes());
    if frame.len() < 255 {
        record.push(frame.len() as u8);
    } else {
        let Ok(len) = u16::try_from(frame.len()) else {
            return;
        };
        record.push(255);
        record.extend_from_slice(&len.to_be_bytes());
    }
    record.extend_from_slice(frame);
    let msg = Msg::ipfix(1, 1)
        .template(256, &[f(312, 2), f(315, 0xFFFF)])
        .data(256, &[record])
        .build();
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut out = DecodeOutput::default();
    let report = dec.decode(([192, 0, 2, 1], 4739).into(), &msg, 1, &mut out);
    assert_eq!(report.records, out.flows.len());
    assert!(out.flows.len() <= 1);
});
