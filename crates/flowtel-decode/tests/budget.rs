//! The bounds on decoder state: one memory budget evicting the least recently used state, and
//! limits that hold over every decoder sharing a [`Budget`] (one per receive worker).

#[path = "support/builder.rs"]
mod builder;

use std::net::SocketAddr;
use std::sync::Arc;

use builder::{FLOW4, Msg, f, flow4};
use flowtel_decode::{
    Budget, DatagramReport, DecodeOutput, Decoder, DecoderConfig, ErrorKind, Limit, StateKind,
};

const T0: u64 = 1_700_000_000_000_000_000;
const SEC: u64 = 1_000_000_000;

fn exporter(i: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, i], 2055))
}

fn decode(dec: &mut Decoder, from: SocketAddr, d: &[u8], at: u64) -> (DatagramReport, usize) {
    let mut out = DecodeOutput::default();
    let report = dec.decode(from, d, at, &mut out);
    assert_eq!(report.records, out.flows.len());
    assert!(dec.budget().memory_bytes() <= dec.budget().memory_limit());
    (report, out.flows.len())
}

fn kinds(r: &DatagramReport) -> Vec<ErrorKind> {
    r.errors.iter().map(|e| e.kind).collect()
}

fn template(id: u16) -> Vec<u8> {
    Msg::ipfix(1, 1).template(id, FLOW4).build()
}

fn data(id: u16) -> Vec<u8> {
    let r = flow4([10, 0, 0, 1], [10, 0, 0, 2], 1, 2, 6, 100, 1);
    Msg::ipfix(1, 1).data(id, &[r]).build()
}

/// Bytes a decoder charges for its first FLOW4 template (the scope included) and for each
/// further one.
fn template_costs() -> (usize, usize) {
    let mut dec = Decoder::new(DecoderConfig::default());
    decode(&mut dec, exporter(1), &template(256), T0);
    let first = dec.memory_bytes();
    decode(&mut dec, exporter(1), &template(257), T0);
    (first, dec.memory_bytes() - first)
}

#[test]
fn the_least_recently_used_templates_make_room_and_come_back_at_their_refresh() {
    let (first, _) = template_costs();
    // Room for eight exporters' templates (and their scopes), not nine.
    let budget = 8 * first + first / 2;
    let mut dec = Decoder::new(DecoderConfig {
        memory_budget_bytes: budget,
        ..DecoderConfig::default()
    });
    for i in 1..=8u8 {
        let (r, _) = decode(
            &mut dec,
            exporter(i),
            &template(256),
            T0 + u64::from(i) * SEC,
        );
        assert!(r.errors.is_empty());
    }
    assert_eq!(dec.template_count(), 8);
    // Exporter 1's template is used again: exporter 2 is now the least recently used.
    let (_, n) = decode(&mut dec, exporter(1), &data(256), T0 + 10 * SEC);
    assert_eq!(n, 1);
    let (r, _) = decode(&mut dec, exporter(9), &template(256), T0 + 11 * SEC);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    // The oldest go, as many as make room (a template frees its scope with it when it was
    // the scope's last, which the choice does not count on: two may go).
    let evicted = dec.stats().evictions_for(StateKind::Template);
    assert!((1..=2).contains(&evicted), "{evicted}");
    assert_eq!(dec.template_count() as u64, 9 - evicted);
    assert_eq!(dec.scope_count() as u64, 9 - evicted);
    assert!(dec.memory_bytes() <= budget);
    for (i, kept) in [(1, true), (8, true), (9, true)] {
        let (_, n) = decode(&mut dec, exporter(i), &data(256), T0 + 12 * SEC);
        assert_eq!(n == 1, kept, "exporter {i}");
    }
    // Exporter 2's data waits for its template, which its next refresh brings back.
    let (r, n) = decode(&mut dec, exporter(2), &data(256), T0 + 12 * SEC);
    assert_eq!((r.held.sets, n), (1, 0));
    let mut out = DecodeOutput::default();
    let r = dec.decode(exporter(2), &template(256), T0 + 13 * SEC, &mut out);
    assert_eq!((r.records, dec.stats().pending_released), (1, 1));
    assert!(dec.memory_bytes() <= budget);
    assert_eq!(dec.memory_bytes(), dec.budget().memory_bytes());
    // Nothing evicted is counted as an error or a limit.
    assert_eq!(dec.stats().total_errors(), 0);
    assert!(dec.stats().limit_hits.is_empty());
}

/// A template repeated byte for byte (the periodic refresh every exporter sends) is
/// recognised without parsing it: it is marked used as any refresh is, so it outlives an older
/// one under the budget, and learning it again counts nothing. A template of the same id with
/// other fields replaces it.
#[test]
fn a_template_repeated_byte_for_byte_is_refreshed() {
    let (first, _) = template_costs();
    // Room for eight exporters' templates (and their scopes), not nine.
    let mut dec = Decoder::new(DecoderConfig {
        memory_budget_bytes: 8 * first + first / 2,
        ..DecoderConfig::default()
    });
    for i in 1..=8u8 {
        decode(
            &mut dec,
            exporter(i),
            &template(256),
            T0 + u64::from(i) * SEC,
        );
    }
    let learnt = dec.stats().templates_learnt;
    // Exporter 1 repeats its template: exporter 2's is now the least recently used.
    let (r, _) = decode(&mut dec, exporter(1), &template(256), T0 + 10 * SEC);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(dec.stats().templates_learnt, learnt);
    decode(&mut dec, exporter(9), &template(256), T0 + 11 * SEC);
    for (i, kept) in [(1, true), (2, false), (8, true), (9, true)] {
        let (_, n) = decode(&mut dec, exporter(i), &data(256), T0 + 12 * SEC);
        assert_eq!(n == 1, kept, "exporter {i}");
    }
    // The same id with another field list: learnt again, and its data read with it.
    let short = [f(8, 4), f(12, 4), f(1, 4)];
    let other = Msg::ipfix(1, 1).template(256, &short).build();
    let (r, _) = decode(&mut dec, exporter(1), &other, T0 + 13 * SEC);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(dec.stats().templates_learnt, learnt + 2);
    let (_, n) = decode(&mut dec, exporter(1), &data(256), T0 + 14 * SEC);
    assert_eq!(n, 4, "the 53-byte record reads as four 12-byte ones");
    assert_eq!(dec.memory_bytes(), dec.budget().memory_bytes());
}

#[test]
fn state_used_by_the_datagram_being_decoded_is_refused_not_evicted() {
    let (first, more) = template_costs();
    let mut dec = Decoder::new(DecoderConfig {
        memory_budget_bytes: first + more,
        ..DecoderConfig::default()
    });
    // Three templates in one datagram: room for two, all used now, so the third is refused.
    let d = Msg::ipfix(1, 1)
        .template(256, FLOW4)
        .template(257, FLOW4)
        .template(258, FLOW4)
        .build();
    let (r, _) = decode(&mut dec, exporter(1), &d, T0);
    assert_eq!(kinds(&r), [ErrorKind::MemoryBudget]);
    assert_eq!(dec.template_count(), 2);
    let s = dec.stats();
    assert_eq!(s.limit_hits_for(Limit::MemoryBudget), 1);
    // One count per refusal: a limit hit, not also a decode error.
    assert_eq!(s.total_errors(), 0);
    assert_eq!(s.evictions_for(StateKind::Template), 0);
    // A later datagram may evict them (both, learnt at the same time).
    let (r, _) = decode(&mut dec, exporter(1), &template(258), T0 + SEC);
    assert!(r.errors.is_empty());
    assert_eq!(dec.stats().evictions_for(StateKind::Template), 2);
    assert_eq!(dec.template_count(), 1);
}

#[test]
fn options_state_and_names_are_charged_and_evicted_like_templates() {
    let mut dec = Decoder::new(DecoderConfig::default());
    let ip = exporter(1).ip();
    // An options template scoped by interface announcing interfaceName, and a sampling rate.
    let d = Msg::ipfix(1, 1)
        .options_template(300, &[f(10, 4)], &[f(82, 8)])
        .options_template(301, &[f(48, 1)], &[f(34, 4)])
        .data(
            300,
            &[builder::rec(&[&7u32.to_be_bytes(), b"eth7\0\0\0\0"])],
        )
        .data(301, &[builder::rec(&[&[1], &100u32.to_be_bytes()])])
        .build();
    decode(&mut dec, exporter(1), &d, T0);
    assert_eq!(dec.interface_name(ip, 1, 7), Some("eth7"));
    let with_options = dec.memory_bytes();
    let mut templates_only = Decoder::new(DecoderConfig::default());
    let t = Msg::ipfix(1, 1)
        .options_template(300, &[f(10, 4)], &[f(82, 8)])
        .options_template(301, &[f(48, 1)], &[f(34, 4)])
        .build();
    decode(&mut templates_only, exporter(1), &t, T0);
    assert!(
        with_options > templates_only.memory_bytes(),
        "options data is charged too"
    );
    let mut small = Decoder::new(DecoderConfig {
        memory_budget_bytes: with_options,
        ..DecoderConfig::default()
    });
    decode(&mut small, exporter(1), &d, T0);
    assert_eq!(small.memory_bytes(), with_options);
    // A new exporter's template needs room: the old state goes, options and names included.
    let (r, _) = decode(&mut small, exporter(2), &template(256), T0 + SEC);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(small.interface_name(ip, 1, 7), None);
    let s = small.stats();
    assert_eq!(s.evictions_for(StateKind::Template), 2);
    assert_eq!(
        s.evictions_for(StateKind::Options),
        2,
        "sampling state and names"
    );
    assert!(small.memory_bytes() < with_options);
}

#[test]
fn limits_hold_over_every_decoder_sharing_a_budget() {
    let config = DecoderConfig {
        max_exporters: 4,
        max_pending_sets: 3,
        ..DecoderConfig::default()
    };
    let budget = Arc::new(Budget::new(&config));
    let mut a = Decoder::with_budget(config.clone(), Arc::clone(&budget));
    let mut b = Decoder::with_budget(config.clone(), Arc::clone(&budget));
    let mut c = Decoder::with_budget(config, Arc::clone(&budget));
    decode(&mut a, exporter(1), &template(256), T0);
    decode(&mut a, exporter(2), &template(256), T0);
    decode(&mut b, exporter(3), &template(256), T0);
    decode(&mut c, exporter(4), &template(256), T0);
    let (r, _) = decode(&mut b, exporter(5), &template(256), T0);
    assert_eq!(kinds(&r), [ErrorKind::ExporterLimit]);
    assert_eq!(budget.scopes(), 4);
    assert_eq!(b.stats().limit_hits_for(Limit::Exporters), 1);
    assert_eq!(b.stats().total_errors(), 0, "counted once, as a limit hit");
    // Pending sets: three over both decoders; the decoder that needs room drops its oldest.
    decode(&mut a, exporter(1), &data(400), T0);
    decode(&mut a, exporter(1), &data(401), T0);
    decode(&mut b, exporter(3), &data(402), T0);
    assert_eq!(budget.pending_sets(), 3);
    let (r, _) = decode(&mut b, exporter(3), &data(403), T0);
    assert_eq!(r.held.template_ids(), [403]);
    assert_eq!((a.pending_sets(), b.pending_sets()), (2, 1));
    assert_eq!(b.stats().pending_dropped, 1);
    // A decoder holding none drops the new set.
    let (r, _) = decode(&mut c, exporter(4), &data(405), T0);
    assert_eq!((r.held.sets, c.pending_sets()), (0, 0));
    assert_eq!(c.stats().pending_dropped, 1);
    assert_eq!(budget.pending_sets(), 3);
    // A decoder that goes gives everything back.
    drop(a);
    drop(c);
    assert_eq!((budget.scopes(), budget.pending_sets()), (1, 1));
    assert_eq!(budget.memory_bytes(), b.memory_bytes());
    drop(b);
    assert_eq!(
        (
            budget.memory_bytes(),
            budget.pending_bytes(),
            budget.scopes()
        ),
        (0, 0, 0)
    );
}

#[test]
fn a_decoder_without_room_asks_and_the_others_give_back_their_excess() {
    let (first, more) = template_costs();
    let config = DecoderConfig {
        memory_budget_bytes: first + 15 * more,
        ..DecoderConfig::default()
    };
    let budget = Arc::new(Budget::new(&config));
    let mut a = Decoder::with_budget(config.clone(), Arc::clone(&budget));
    let mut b = Decoder::with_budget(config, Arc::clone(&budget));
    // Decoder a fills the whole budget.
    for id in 256..272 {
        decode(&mut a, exporter(1), &template(id), T0 + u64::from(id));
    }
    assert_eq!(a.template_count(), 16);
    assert!(!a.take_reclaim_request());
    let (r, _) = decode(&mut b, exporter(2), &template(256), T0 + SEC);
    assert_eq!(kinds(&r), [ErrorKind::MemoryBudget]);
    assert!(b.take_reclaim_request());
    assert!(!b.take_reclaim_request());
    // Decoder a, idle, is asked to run its housekeeping: it keeps its fair share.
    a.maintain(T0 + 2 * SEC);
    assert!(a.memory_bytes() <= budget.memory_limit() / 2);
    assert!(a.template_count() <= 8);
    let (r, _) = decode(&mut b, exporter(2), &template(256), T0 + 3 * SEC);
    assert!(r.errors.is_empty());
    // The oldest of a's templates went, the newest stayed.
    let (_, n) = decode(&mut a, exporter(1), &data(271), T0 + 4 * SEC);
    assert_eq!(n, 1);
    let (r, _) = decode(&mut a, exporter(1), &data(256), T0 + 4 * SEC);
    assert_eq!(r.held.sets, 1);
}

#[test]
fn pending_sets_take_a_quarter_of_the_budget_at_most_and_expire_without_traffic() {
    let config = DecoderConfig {
        memory_budget_bytes: 1 << 20,
        pending_timeout_ns: 5 * SEC,
        ..DecoderConfig::default()
    };
    let mut dec = Decoder::new(config);
    let big = Msg::ipfix(1, 1).raw_set(400, &[7; 60_000]).build();
    for i in 0..10 {
        decode(&mut dec, exporter(1), &big, T0 + i);
    }
    let budget = Arc::clone(dec.budget());
    // 256 KiB for pending data: four sets of 60 kB.
    assert_eq!(dec.pending_sets(), 4);
    assert!(budget.pending_bytes() <= (1 << 20) / 4);
    assert_eq!(dec.stats().pending_dropped, 6);
    assert_eq!(budget.memory_bytes(), budget.pending_bytes());
    // No datagram arrives: housekeeping alone expires them.
    dec.maintain(T0 + 4 * SEC);
    assert_eq!(dec.pending_sets(), 4);
    dec.maintain(T0 + 6 * SEC);
    assert_eq!(dec.pending_sets(), 0);
    assert_eq!(dec.stats().pending_expired, 4);
    assert_eq!(
        (
            budget.memory_bytes(),
            budget.pending_bytes(),
            budget.pending_sets()
        ),
        (0, 0, 0)
    );
}

#[test]
fn a_netflow_v9_field_of_length_65535_is_refused_not_read_as_variable_length() {
    // RFC 3954 §5.2 has no variable length: (8, 65535) is a 65535-byte field no set can hold.
    let mut dec = Decoder::new(DecoderConfig::default());
    let t = Msg::v9(1, 1000, 1)
        .template(256, &[f(8, 65535), f(1, 4)])
        .build();
    let (r, _) = decode(&mut dec, exporter(1), &t, T0);
    assert_eq!(kinds(&r), [ErrorKind::InvalidTemplate]);
    assert!(r.errors[0].context.contains("65535"), "{}", r.errors[0]);
    assert_eq!(dec.template_count(), 0);
    assert_eq!(dec.stats().errors_for(ErrorKind::InvalidTemplate), 1);
    // Its 64-byte data set yields no records: it waits for a template that never comes.
    let d = Msg::v9(1, 1000, 1).raw_set(256, &[0; 64]).build();
    let (r, n) = decode(&mut dec, exporter(1), &d, T0);
    assert_eq!((n, r.held.sets), (0, 1));
    // The same template in IPFIX is variable length (RFC 7011 §7), and learnt.
    let t = Msg::ipfix(1, 1)
        .template(256, &[f(8, 65535), f(1, 4)])
        .build();
    let (r, _) = decode(&mut dec, exporter(1), &t, T0);
    assert!(r.errors.is_empty());
    assert_eq!(dec.template_count(), 1);
}
