//! Property tests: mutated and truncated real datagrams never panic the decoder and keep its
//! invariants. Base datagrams come from the builders (always) and from the shared corpus
//! (when `../shared/corpus` exists).

#[path = "support/builder.rs"]
mod builder;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

use builder::{F, FLOW4, Msg, V5Rec, f, fe, flow4, rec};
use flowtel_decode::{
    DecodeOutput, Decoder, DecoderConfig, ErrorKind, FlowProtocol, FlowRecord, FlowSink,
    RecordFields,
};
use flowtel_pcap as pcap;
use proptest::prelude::*;

const EXPORTER: ([u8; 4], u16) = ([192, 0, 2, 1], 2055);

fn var_template() -> Vec<F> {
    vec![
        f(8, 4),
        fe(2636, 137, 0xFFFF),
        f(1, 2),
        f(82, 0xFFFF),
        f(2, 3),
        fe(29305, 1, 8),
    ]
}

/// Template-carrying datagrams: decoded first so that data sets have templates.
fn templates() -> Vec<Vec<u8>> {
    vec![
        Msg::ipfix(1, 1)
            .template(256, FLOW4)
            .template(257, &var_template())
            .options_template(258, &[f(302, 4)], &[f(309, 4), f(310, 4)])
            .options_template(259, &[f(10, 4)], &[f(82, 0xFFFF)])
            .build(),
        Msg::v9(1, 1000, 1)
            .template(256, FLOW4)
            .options_template(257, &[f(1, 4)], &[f(48, 1), f(50, 4)])
            .build(),
    ]
}

fn builder_datagrams() -> Vec<Vec<u8>> {
    let r = flow4([10, 0, 0, 1], [10, 0, 0, 2], 1234, 80, 6, 1500, 3);
    let v = rec(&[
        &[1, 2, 3, 4],
        &[2, b'a', b'b'],
        &9u16.to_be_bytes(),
        &[255, 0, 3, b'x', b'y', b'z'],
        &[0, 0, 1],
        &7u64.to_be_bytes(),
    ]);
    let mut all = templates();
    all.extend([
        builder::v5(
            1000,
            1,
            0x4064,
            &[V5Rec {
                packets: 2,
                bytes: 100,
                ..V5Rec::default()
            }; 4],
        ),
        Msg::ipfix(1, 1)
            .data(256, &[r.clone(), r.clone()])
            .data(257, &[v.clone(), v])
            .build(),
        Msg::ipfix(1, 1)
            .data(
                258,
                &[rec(&[
                    &1u32.to_be_bytes(),
                    &1u32.to_be_bytes(),
                    &100u32.to_be_bytes(),
                ])],
            )
            .data(259, &[rec(&[&3u32.to_be_bytes(), &[4], b"eth0"])])
            .withdraw(257, false)
            .build(),
        Msg::v9(1, 1000, 1)
            .data(257, &[rec(&[&[0; 4], &[1], &64u32.to_be_bytes()])])
            .data(256, &[r.clone(), r])
            .build(),
    ]);
    all
}

fn corpus_datagrams() -> &'static [Vec<u8>] {
    static CORPUS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let root = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/corpus/akvorado/netflow"
        ));
        let Ok(dir) = std::fs::read_dir(root) else {
            eprintln!(
                "corpus not found at {}: mutating builder datagrams only",
                root.display()
            );
            return Vec::new();
        };
        let mut files: Vec<_> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        files
            .iter()
            .filter_map(|f| pcap::read_all(f).ok())
            .flatten()
            .map(|d| d.payload)
            .collect()
    })
}

fn bases() -> Vec<Vec<u8>> {
    let mut all = builder_datagrams();
    all.extend(corpus_datagrams().iter().cloned());
    all
}

#[derive(Debug, Clone)]
enum Mutation {
    Truncate(usize),
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), 1usize..16).prop_map(|(i, n)| Mutation::Remove(i, n)),
    ]
}

fn apply(d: &mut Vec<u8>, m: &Mutation) {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
    match m {
        Mutation::Truncate(i) => d.truncate(at(*i, d.len())),
        Mutation::Set(i, b) => {
            if !d.is_empty() {
                let n = d.len();
                d[i % n] = *b;
            }
        }
        Mutation::Insert(i, b) => {
            let p = at(*i, d.len());
            d.splice(p..p, b.iter().copied());
        }
        Mutation::Remove(i, n) => {
            let p = at(*i, d.len());
            let end = (p + n).min(d.len());
            d.drain(p..end);
        }
    }
}

fn check(dec: &mut Decoder, d: &[u8], t: u64) {
    let mut out = DecodeOutput::default();
    let from: SocketAddr = EXPORTER.into();
    let before = dec.stats().clone();
    let report = dec.decode(from, d, t, &mut out);
    assert_eq!(report.records, out.flows.len());
    for e in &report.errors {
        assert!(ErrorKind::ALL.contains(&e.kind));
    }
    for flow in &out.flows {
        assert_eq!(Some(flow.flow_protocol), report.protocol);
        assert_eq!(flow.exporter, from);
        assert!(flow.sampling_rate != Some(0));
    }
    if report.protocol == Some(FlowProtocol::NetflowV5) {
        assert!(out.flows.len() <= d.len().saturating_sub(24) / 48);
    }
    let s = dec.stats();
    assert_eq!(s.datagrams, before.datagrams + 1);
    let mut counts = flowtel_decode::ProtocolCounts::default();
    counts.add(&report, d.len());
    assert_eq!(counts.total().records, out.flows.len() as u64);
    // Every error is counted once: as a decode error, or (a refusal) as a limit hit.
    let refusals = report.errors.iter().filter(|e| e.kind.limit().is_some());
    assert_eq!(
        s.total_errors(),
        before.total_errors() + report.errors.len() as u64 - refusals.clone().count() as u64
    );
    for e in refusals {
        let limit = e.kind.limit().unwrap();
        assert!(
            s.limit_hits_for(limit) > before.limit_hits_for(limit),
            "{e}"
        );
    }
    let cfg = dec.config();
    assert!(dec.pending_sets() <= cfg.max_pending_sets);
    assert!(dec.memory_bytes() <= cfg.memory_budget_bytes);
    assert_eq!(dec.memory_bytes(), dec.budget().memory_bytes());
    assert!(dec.template_count() <= cfg.max_exporters * cfg.max_templates_per_exporter);
}

fn primed(cfg: DecoderConfig) -> Decoder {
    let mut dec = Decoder::new(cfg);
    let mut out = DecodeOutput::default();
    for t in templates() {
        dec.decode(EXPORTER.into(), &t, 0, &mut out);
    }
    dec
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_datagrams_never_panic(
        pick in any::<usize>(),
        muts in prop::collection::vec(mutation(), 1..6),
        keep in any::<bool>(),
        // The default, and budgets small enough that priming and decoding evict and refuse.
        memory_budget_bytes in prop::sample::select(vec![128usize << 20, 4_096, 1_024, 300]),
    ) {
        let bases = bases();
        let mut d = bases[pick % bases.len()].clone();
        for m in &muts {
            apply(&mut d, m);
        }
        let cfg = DecoderConfig {
            keep_unknown_fields: keep,
            max_pending_sets: 4,
            max_templates_per_exporter: 8,
            max_fields_per_template: 16,
            max_exporters: 4,
            memory_budget_bytes,
            ..DecoderConfig::default()
        };
        let mut dec = primed(cfg);
        check(&mut dec, &d, 1);
        // Decode it again: state changed by the first pass must stay consistent.
        check(&mut dec, &d, 2);
        // Every charge has its credit: a decoder that goes leaves the shared budget empty.
        let budget = std::sync::Arc::clone(dec.budget());
        drop(dec);
        prop_assert_eq!(
            (budget.memory_bytes(), budget.pending_sets(), budget.pending_bytes(), budget.scopes()),
            (0, 0, 0, 0)
        );
    }

    #[test]
    fn every_prefix_of_a_datagram_is_safe(pick in any::<usize>(), cut in any::<usize>()) {
        let bases = bases();
        let d = &bases[pick % bases.len()];
        let cut = cut % (d.len() + 1);
        let mut dec = primed(DecoderConfig::default());
        check(&mut dec, &d[..cut], 1);
    }

    #[test]
    fn arbitrary_bytes_after_a_version_are_safe(
        version in prop::sample::select(vec![5u16, 9, 10]),
        body in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut d = version.to_be_bytes().to_vec();
        d.extend_from_slice(&body);
        let mut dec = primed(DecoderConfig::default());
        check(&mut dec, &d, 1);
    }
}

/// The committed captures of real exporters (softflowd, pmacct), each datagram in order.
fn fixture_datagrams() -> Vec<Vec<u8>> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures"));
    [
        "softflowd-v9.pcap",
        "softflowd-ipfix.pcap",
        "softflowd-v5.pcap",
        "pmacct-nfprobe-v9.pcap",
        "pmacct-nfprobe-v10.pcap",
        "pmacct-sfprobe-sr10.pcap",
    ]
    .iter()
    .flat_map(|f| pcap::read_all(dir.join(f)).expect("committed capture"))
    .map(|d| d.payload)
    .collect()
}

/// Keeps what a [`Decoder::decode_streaming`] hands over, and where each record was lent.
#[derive(Default)]
struct Collect {
    records: Vec<FlowRecord>,
    places: std::collections::HashSet<usize>,
    /// The most records lent at once.
    longest: usize,
    /// Runs lent.
    runs: usize,
}

impl FlowSink for Collect {
    fn flows(&mut self, records: &[FlowRecord]) {
        assert!(!records.is_empty());
        assert!(
            records.len() <= 32,
            "{} records lent at once",
            records.len()
        );
        self.longest = self.longest.max(records.len());
        self.runs += 1;
        for r in records {
            self.places.insert(std::ptr::from_ref(r) as usize);
            self.records.push(r.clone());
        }
    }
}

/// Decode `datagrams` in order with two decoders of `cfg`, one appending to its output and one
/// streaming to a sink, and require the same records, reports, counter and drop records and
/// counters. Returns the records and the sink, which counted how they were lent.
fn decode_both_ways(cfg: &DecoderConfig, datagrams: &[Vec<u8>]) -> (Vec<FlowRecord>, Collect) {
    let mut appending = Decoder::new(cfg.clone());
    let mut streaming = Decoder::new(cfg.clone());
    let from: SocketAddr = EXPORTER.into();
    let hash = flowtel_decode::prehash::exporter_hash(from.ip());
    let mut sink = Collect::default();
    let mut all = Vec::new();
    for (i, d) in datagrams.iter().enumerate() {
        let t = 1_700_000_000_000_000_000 + i as u64 * 1_000_000;
        let (mut a, mut b) = (DecodeOutput::default(), DecodeOutput::default());
        let ra = appending.decode_prehashed(from, hash, d, t, &mut a);
        sink.records.clear();
        let rb = streaming.decode_streaming(from, hash, d, t, &mut b, &mut sink);
        assert_eq!(ra, rb, "report of datagram {i}");
        assert_eq!(a.flows, sink.records, "records of datagram {i}");
        assert!(
            b.flows.is_empty(),
            "datagram {i}: streamed records left in the output"
        );
        assert_eq!(
            (&a.counters, &a.drops),
            (&b.counters, &b.drops),
            "datagram {i}"
        );
        all.append(&mut a.flows);
    }
    assert_eq!(appending.stats(), streaming.stats());
    (all, sink)
}

/// What a metrics-only pipeline has its decoder read (the default rollup's fields).
const METRICS_ONLY: RecordFields = RecordFields::CORE;

#[test]
fn streaming_reads_real_exporters_records_in_place() {
    let cfg = DecoderConfig {
        record_fields: METRICS_ONLY,
        ..DecoderConfig::default()
    };
    let datagrams = fixture_datagrams();
    let (records, sink) = decode_both_ways(&cfg, &datagrams);
    let places = sink.places.len();
    // softflowd's and pmacct's NetFlow v9 and IPFIX templates read with a core layout: their
    // records are lent from the same few places, not one per record.
    assert!(records.len() > 1000, "{} records", records.len());
    assert!(
        places * 10 < records.len(),
        "{places} places for {} records",
        records.len()
    );
    // softflowd's messages are up to 11 data sets, none over 30 records: each message's
    // records are lent at once.
    assert!(
        sink.runs <= datagrams.len(),
        "{} runs for {} datagrams",
        sink.runs,
        datagrams.len()
    );
    let icmp = records.iter().filter(|r| r.icmp_type.is_some()).count();
    let tcp = records.iter().filter(|r| r.ip_protocol == 6).count();
    assert!(icmp > 0 && tcp > 0, "icmp {icmp}, tcp {tcp}");
}

/// A message's streamed records are lent across its data sets, a chunk of at most 32 at a
/// time, from the same 32 places message after message.
#[test]
fn streaming_lends_a_message_in_chunks_across_its_sets() {
    let set = |first: u8| -> Vec<Vec<u8>> {
        (0..20u8)
            .map(|i| flow4([10, 0, first, i], [10, 1, 0, 1], 1000, 443, 6, 100, 1))
            .collect()
    };
    let message = || {
        Msg::ipfix(1, 1_700_000_000)
            .template(256, FLOW4)
            .data(256, &set(1))
            .data(256, &set(2))
            .data(256, &set(3))
            .build()
    };
    let cfg = DecoderConfig {
        record_fields: METRICS_ONLY,
        ..DecoderConfig::default()
    };
    let (flows, sink) = decode_both_ways(&cfg, &[message(), message()]);
    assert_eq!(flows.len(), 120);
    assert_eq!(sink.longest, 32);
    assert_eq!(sink.runs, 4, "32 + 28 records per message");
    assert_eq!(sink.places.len(), 32);
}

/// Options data between a message's data sets applies to the sets after it and not to those
/// before: the sampling rate and application names a run of data sets looks up once are
/// looked up again after it, whether the records are streamed or appended.
#[test]
fn options_data_within_a_message_applies_to_its_later_data_sets() {
    let app = 0x0d00_01bbu32;
    let flow = |src: u8| {
        rec(&[
            &[10, 0, 0, src],
            &[10, 1, 0, 1],
            &1000u32.to_be_bytes(),
            &9u32.to_be_bytes(),
            &app.to_be_bytes(),
        ])
    };
    let rate = |interval: u32, space: u32| {
        rec(&[
            &9u32.to_be_bytes(),
            &interval.to_be_bytes(),
            &space.to_be_bytes(),
        ])
    };
    let message = Msg::ipfix(1, 1_700_000_000)
        .template(257, &[f(8, 4), f(12, 4), f(1, 4), f(302, 4), f(95, 4)])
        .options_template(256, &[f(302, 4)], &[f(305, 4), f(306, 4)])
        .options_template(300, &[f(95, 4)], &[f(96, 0xFFFF)])
        .data(257, &[flow(1)])
        .data(256, &[rate(1, 1999)])
        .data(257, &[flow(2)])
        .data(300, &[rec(&[&app.to_be_bytes(), &[3], b"ssl"])])
        .data(257, &[flow(3)])
        .data(256, &[rate(1, 99)])
        .data(257, &[flow(4), flow(5)])
        .build();
    for record_fields in [METRICS_ONLY, RecordFields::ALL] {
        let cfg = DecoderConfig {
            record_fields,
            ..DecoderConfig::default()
        };
        let (flows, _) = decode_both_ways(&cfg, std::slice::from_ref(&message));
        let got: Vec<_> = flows
            .iter()
            .map(|r| {
                let name = r.application_name.as_deref().map(str::to_owned);
                (r.bytes, r.sampling_rate, name)
            })
            .collect();
        let ssl = || Some("ssl".to_owned());
        assert_eq!(
            got,
            [
                (1000, None, None),
                (1000, Some(2000), None),
                (1000, Some(2000), ssl()),
                (1000, Some(100), ssl()),
                (1000, Some(100), ssl()),
            ],
            "{record_fields:?}"
        );
    }
}

/// Records of one set that differ in what finishing them derives (ICMP type from the port,
/// EtherType from ipVersion or the addresses, the record's own sampling rate, the start time)
/// come out of the stream as they come out of the output: nothing of one record stays in the
/// next.
#[test]
fn streaming_empties_what_one_record_set_before_the_next() {
    // IANA IEs: addresses, ports, protocol, octets, 60 ipVersion, 34 samplingInterval,
    // 22 flowStartSysUpTime (RFC 7012).
    let template = [
        f(8, 4),
        f(12, 4),
        f(7, 2),
        f(11, 2),
        f(4, 1),
        f(1, 4),
        f(60, 1),
        f(34, 4),
        f(22, 4),
    ];
    let record = |proto: u8, dport: u16, version: u8, interval: u32, start: u32| {
        rec(&[
            &[10, 0, 0, 1],
            &[10, 0, 0, 2],
            &0u16.to_be_bytes(),
            &dport.to_be_bytes(),
            &[proto],
            &1500u32.to_be_bytes(),
            &[version],
            &interval.to_be_bytes(),
            &start.to_be_bytes(),
        ])
    };
    let records = [
        record(1, 0x0800, 6, 100, 5_000),
        record(6, 443, 0, 0, 0),
        record(17, 53, 4, 10, 7_000),
        record(6, 80, 0, 0, 0),
    ];
    let data = Msg::v9(1, 10_000, 1_700_000_000)
        .data(300, &records)
        .build();
    let datagrams = [
        Msg::v9(1, 10_000, 1_700_000_000)
            .template(300, &template)
            .build(),
        data.clone(),
        data,
    ];
    let cfg = DecoderConfig::default();
    let (flows, sink) = decode_both_ways(&cfg, &datagrams);
    assert_eq!(flows.len(), 8);
    assert_eq!(
        sink.places.len(),
        4,
        "the second set is read into the first one's records"
    );
    let seen: Vec<_> = flows
        .iter()
        .map(|r| {
            (
                r.icmp_type,
                r.etype,
                r.sampling_rate,
                r.flow_start_ns.is_some(),
            )
        })
        .collect();
    let one_set = [
        (Some(8), Some(0x86dd), Some(100), true),
        (None, Some(0x0800), None, true),
        (None, Some(0x0800), Some(10), true),
        (None, Some(0x0800), None, true),
    ];
    assert_eq!(seen, [one_set, one_set].concat());
}

/// Every field read: a router template with TCP flags, prefix lengths, next hops and VLANs
/// (a wide layout) streams into the decoder's records like a core template does, and a core
/// template's records read into the same places afterwards keep none of the wide fields.
#[test]
fn streaming_empties_what_a_wide_layout_set_before_a_core_one() {
    // Addresses, ports, protocol, octets, packets; 6 tcpFlags, 9/13 prefix lengths,
    // 15 ipNextHopIPv4Address, 18 bgpNextHopIPv4Address, 58/59 VLAN ids, 89 forwardingStatus.
    let core = [
        f(8, 4),
        f(12, 4),
        f(7, 2),
        f(11, 2),
        f(4, 1),
        f(1, 4),
        f(2, 4),
    ];
    let extra = [
        f(6, 1),
        f(9, 1),
        f(13, 1),
        f(15, 4),
        f(18, 4),
        f(58, 2),
        f(59, 2),
        f(89, 1),
    ];
    let wide_template = [&core[..], &extra].concat();
    let base = |i: u8| {
        vec![
            vec![10, 0, 0, i],
            vec![10, 0, 1, i],
            1024u16.to_be_bytes().to_vec(),
            443u16.to_be_bytes().to_vec(),
            vec![6],
            (1500 * u32::from(i)).to_be_bytes().to_vec(),
            u32::from(i).to_be_bytes().to_vec(),
        ]
    };
    let wide_record = |i: u8| {
        let mut parts = base(i);
        parts.extend([
            vec![0x1b],
            vec![24],
            vec![16],
            vec![192, 0, 2, i],
            vec![198, 51, 100, i],
            100u16.to_be_bytes().to_vec(),
            200u16.to_be_bytes().to_vec(),
            vec![64],
        ]);
        rec(&parts.iter().map(Vec::as_slice).collect::<Vec<_>>())
    };
    let core_record = |i: u8| rec(&base(i).iter().map(Vec::as_slice).collect::<Vec<_>>());
    let msg = || Msg::v9(1, 10_000, 1_700_000_000);
    let datagrams = [
        msg()
            .template(300, &wide_template)
            .template(301, &core)
            .build(),
        // More records than a chunk: the wide set is lent in two.
        msg()
            .data(300, &(1..=40).map(wide_record).collect::<Vec<_>>())
            .build(),
        msg()
            .data(301, &(41..=80).map(core_record).collect::<Vec<_>>())
            .build(),
    ];
    let (flows, sink) = decode_both_ways(&DecoderConfig::default(), &datagrams);
    assert_eq!(flows.len(), 80);
    assert_eq!(
        sink.places.len(),
        32,
        "the core set is read into the wide set's records"
    );
    let wide = flows.first().expect("a wide record");
    assert_eq!(
        (
            wide.tcp_flags,
            wide.src_prefix_len,
            wide.dst_prefix_len,
            wide.next_hop,
            wide.bgp_next_hop,
            wide.vlan,
            wide.dst_vlan,
            wide.forwarding_status,
        ),
        (
            0x1b,
            Some(24),
            Some(16),
            Some("192.0.2.1".parse().unwrap()),
            Some("198.51.100.1".parse().unwrap()),
            Some(100),
            Some(200),
            Some(64),
        )
    );
    for r in &flows[40..] {
        let empty = FlowRecord::new(r.exporter, r.flow_protocol, r.time_received_ns);
        assert_eq!(
            (
                r.tcp_flags,
                r.src_prefix_len,
                r.dst_prefix_len,
                r.next_hop,
                r.bgp_next_hop,
                r.vlan,
                r.src_vlan,
                r.dst_vlan,
                r.forwarding_status,
            ),
            (
                empty.tcp_flags,
                empty.src_prefix_len,
                empty.dst_prefix_len,
                empty.next_hop,
                empty.bgp_next_hop,
                empty.vlan,
                empty.src_vlan,
                empty.dst_vlan,
                empty.forwarding_status,
            ),
            "{r:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Streaming gives exactly what appending gives, for every datagram of the builders, the
    /// corpus and the committed captures in order, some of them mutated, with the record
    /// fields narrowed or not.
    #[test]
    fn streaming_hands_over_the_records_decoding_appends(
        muts in prop::collection::vec((any::<usize>(), mutation()), 0..12),
        fields in prop::sample::select(vec![
            METRICS_ONLY,
            METRICS_ONLY | RecordFields::INTERFACES | RecordFields::AS_NUMBERS,
            RecordFields::ALL,
        ]),
        keep in any::<bool>(),
    ) {
        let mut datagrams = bases();
        datagrams.extend(fixture_datagrams());
        let n = datagrams.len();
        for (at, m) in &muts {
            apply(&mut datagrams[at % n], m);
        }
        let cfg = DecoderConfig {
            record_fields: fields,
            keep_unknown_fields: keep,
            ..DecoderConfig::default()
        };
        decode_both_ways(&cfg, &datagrams);
    }
}
