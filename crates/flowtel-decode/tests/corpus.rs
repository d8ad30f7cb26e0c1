//! Conformance over the shared capture corpus (`../shared/corpus`, see its README): real
//! exporters' captures decoded end to end and compared with what they are known to hold, and
//! with pmacct's independent decoding. Skipped, with a printed reason, when the corpus is
//! absent.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use flowtel_decode::{
    DecodeError, DecodeOutput, Decoder, DecoderConfig, FlowProtocol, FlowRecord, SamplingSource,
    SflowBytes,
};
use flowtel_pcap as pcap;

fn corpus() -> Option<PathBuf> {
    let p = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ));
    if p.is_dir() {
        Some(p.to_path_buf())
    } else {
        eprintln!("skipping: corpus not found at {}", p.display());
        None
    }
}

/// Everything one decoder produced from a sequence of capture files.
struct Run {
    decoder: Decoder,
    flows: Vec<FlowRecord>,
    errors: Vec<(String, DecodeError)>,
    datagrams: usize,
}

/// Decode `files` in order with one decoder, every UDP payload with its source as exporter.
fn run(files: &[PathBuf]) -> Run {
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut out = DecodeOutput::default();
    let mut errors = Vec::new();
    let mut datagrams = 0;
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        for d in pcap::read_all(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())) {
            let report = decoder.decode(d.src, &d.payload, d.timestamp_ns, &mut out);
            datagrams += 1;
            errors.extend(report.errors.into_iter().map(|e| (name.clone(), e)));
        }
    }
    Run {
        decoder,
        flows: out.flows,
        errors,
        datagrams,
    }
}

fn akvorado(root: &Path, files: &[&str]) -> Run {
    let paths: Vec<_> = files
        .iter()
        .map(|f| root.join("akvorado/netflow").join(f))
        .collect();
    let r = run(&paths);
    assert!(r.errors.is_empty(), "{files:?}: {:?}", r.errors);
    assert!(!r.flows.is_empty(), "{files:?}: no flows");
    r
}

#[test]
fn akvorado_netflow_v5() {
    let Some(root) = corpus() else { return };
    let r = akvorado(&root, &["nfv5.pcap"]);
    assert_eq!(r.flows.len(), 29);
    assert!(
        r.flows
            .iter()
            .all(|f| f.flow_protocol == FlowProtocol::NetflowV5)
    );
    assert!(r.flows.iter().all(|f| f.flow_start_ns <= f.flow_end_ns));
}

#[test]
fn akvorado_template_and_options_pairs_decode_without_errors() {
    let Some(root) = corpus() else { return };
    for files in [
        &["template.pcap", "data.pcap"][..],
        &[
            "options-template.pcap",
            "options-data.pcap",
            "template.pcap",
            "data.pcap",
        ],
        &["icmp-template.pcap", "icmp-data.pcap"],
        &["nat.pcap"],
        &["datalink-template.pcap", "datalink-data.pcap"],
        &["ipfix-srv6-template.pcap", "ipfix-srv6-data.pcap"],
        &[
            "ethernet-over-mpls-with-control-word-template.pcap",
            "ethernet-over-mpls-with-control-word-data.pcap",
        ],
        &["juniper-cpid-template.pcap", "juniper-cpid-data.pcap"],
        &["mpls.pcap"],
        &["physicalinterfaces.pcap"],
    ] {
        let r = akvorado(&root, files);
        assert_eq!(r.decoder.stats().pending_held, 0, "{files:?}");
    }
}

#[test]
fn akvorado_options_sampling_interval_applies_to_data() {
    let Some(root) = corpus() else { return };
    let r = akvorado(
        &root,
        &[
            "options-template.pcap",
            "options-data.pcap",
            "template.pcap",
            "data.pcap",
        ],
    );
    assert!(
        r.flows
            .iter()
            .all(|f| f.sampling_source == SamplingSource::Options)
    );
    assert!(r.flows.iter().all(|f| f.sampling_rate.is_some()));
}

#[test]
fn akvorado_data_before_template_decodes_every_set() {
    let Some(root) = corpus() else { return };
    // One datagram: data 257, options template 256, options data 256, template 257, data 257.
    let r = akvorado(&root, &["data+templates.pcap"]);
    assert_eq!(r.datagrams, 1);
    let s = r.decoder.stats();
    assert_eq!(
        (s.pending_held, s.options_records, s.templates_learnt),
        (0, 1, 2)
    );
    // Both data sets of template 257 (tshark, decoding in order, only sees the second's 10).
    assert_eq!(r.flows.len(), 21);
    // The options data (sampling interval 100) sits before the second data set but after the
    // first: order independence gives both the rate.
    assert!(r.flows.iter().all(|f| f.sampling_rate == Some(100)));
}

#[test]
fn akvorado_sampling_rate_in_the_record_and_per_sampler() {
    let Some(root) = corpus() else { return };
    let r = akvorado(
        &root,
        &["samplingrate-template.pcap", "samplingrate-data.pcap"],
    );
    assert!(
        r.flows
            .iter()
            .all(|f| f.sampling_source == SamplingSource::Record)
    );
    let r = akvorado(
        &root,
        &[
            "multiplesamplingrates-template.pcap",
            "multiplesamplingrates-options-template.pcap",
            "multiplesamplingrates-options-data.pcap",
            "multiplesamplingrates-data.pcap",
        ],
    );
    let mut by_sampler = BTreeMap::new();
    for f in &r.flows {
        assert_eq!(f.sampling_source, SamplingSource::Options);
        by_sampler.insert(f.sampler_id, f.sampling_rate);
    }
    assert_eq!(
        by_sampler,
        BTreeMap::from([(Some(1), Some(2000)), (Some(2), Some(4000))])
    );
}

#[test]
fn akvorado_ipfixprobe_biflows_become_two_records() {
    let Some(root) = corpus() else { return };
    let r = akvorado(
        &root,
        &["ipfixprobe-templates.pcap", "ipfixprobe-data.pcap"],
    );
    // Each reverse record mirrors the forward record just before it.
    let pairs = r
        .flows
        .windows(2)
        .filter(|w| w[0].src_addr == w[1].dst_addr && w[0].src_port == w[1].dst_port)
        .count();
    assert!(pairs >= 2, "{:?}", r.flows);
}

#[test]
fn akvorado_icmp_type_and_physical_interfaces() {
    let Some(root) = corpus() else { return };
    let r = akvorado(&root, &["icmp-template.pcap", "icmp-data.pcap"]);
    let types: Vec<_> = r
        .flows
        .iter()
        .map(|f| (f.ip_protocol, f.icmp_type, f.icmp_code))
        .collect();
    assert!(types.contains(&(58, Some(128), Some(0))), "{types:?}");
    assert!(types.contains(&(1, Some(8), Some(0))), "{types:?}");
    let r = akvorado(&root, &["physicalinterfaces.pcap"]);
    assert!(
        r.flows
            .iter()
            .all(|f| f.in_if.is_some() && f.out_if.is_some())
    );
    assert!(r.flows.iter().all(|f| f.sampling_rate == Some(1000)));
}

#[test]
fn netgauze_srv6_decodes_without_errors() {
    let Some(root) = corpus() else { return };
    let r = run(&[root.join("netgauze/srv6.pcap")]);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.datagrams, 170);
    assert!(!r.flows.is_empty());
}

/// (src, dst, sport, dport, proto). pmacct's test harness replays the captures from other
/// source addresses (`peer_ip_src` is the replayer's address, not the capture's), so the
/// exporter cannot be part of the key; totals are compared over all exporters of a test.
type Key = (IpAddr, IpAddr, u16, u16, u8);

fn proto_number(name: &str) -> u8 {
    match name {
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "ipv6-icmp" => 58,
        "vrrp" => 112,
        other => other.parse().unwrap_or_else(|_| panic!("protocol {other}")),
    }
}

/// pmacct's output: (src, dst, sport, dport, proto) -> (bytes, packets).
fn pmacct_expected(file: &Path) -> BTreeMap<Key, (u64, u64)> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out: BTreeMap<Key, (u64, u64)> = BTreeMap::new();
    for v in serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>() {
        let v = v.unwrap();
        let ip = |k: &str| v[k].as_str().unwrap().parse::<IpAddr>().unwrap();
        let num = |k: &str| v[k].as_u64().unwrap();
        let proto = proto_number(v["ip_proto"].as_str().unwrap());
        let (sport, dport) = (num("port_src") as u16, num("port_dst") as u16);
        // An ICMP destination port is `type << 8 | code`, or the type alone below 256 (the
        // decoder's reading too): compare as `type << 8 | code`, ports 0.
        let (sport, dport) = match (proto, dport) {
            (1 | 58, p) if p > 0 && p < 256 => (0, p << 8),
            (1 | 58, p) => (0, p),
            _ => (sport, dport),
        };
        let key = (ip("ip_src"), ip("ip_dst"), sport, dport, proto);
        let e = out.entry(key).or_default();
        e.0 += num("bytes");
        e.1 += num("packets");
    }
    out
}

fn ours(flows: &[FlowRecord], renormalize: bool) -> BTreeMap<Key, (u64, u64)> {
    let mut out: BTreeMap<Key, (u64, u64)> = BTreeMap::new();
    for f in flows {
        let (Some(src), Some(dst)) = (f.src_addr, f.dst_addr) else {
            continue;
        };
        let rate = if renormalize {
            u64::from(f.sampling_rate.unwrap_or(1))
        } else {
            1
        };
        // ICMP flows carry their type and code in icmp_type/icmp_code with ports 0; pmacct
        // reports the exporter's destination port, normalised the same way in
        // pmacct_expected.
        let (sport, dport) = match (f.icmp_type, f.icmp_code) {
            (Some(t), c) if matches!(f.ip_protocol, 1 | 58) => {
                (0, u16::from(t) << 8 | u16::from(c.unwrap_or(0)))
            }
            _ => (f.src_port, f.dst_port),
        };
        let key = (src, dst, sport, dport, f.ip_protocol);
        let e = out.entry(key).or_default();
        e.0 += f.bytes * rate;
        e.1 += f.packets * rate;
    }
    out
}

#[test]
fn pmacct_totals_match_per_five_tuple() {
    let Some(root) = corpus() else { return };
    let mut dirs: Vec<_> = std::fs::read_dir(root.join("pmacct"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let mut failures = Vec::new();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut pcaps: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
            .collect();
        pcaps.sort();
        let r = run(&pcaps);
        assert!(r.errors.is_empty(), "{name}: {:?}", r.errors);
        // 112's capture starts mid-stream: its datagrams 11 and 21 carry data sets 313, 341,
        // 348 and 342 whose templates were sent before the capture began (pmacct cannot
        // decode them either). They wait in the pending buffer; every other set decodes.
        let held = if name.starts_with("112-") { 4 } else { 0 };
        assert_eq!(r.decoder.stats().pending_held, held, "{name}");
        let renormalize = ["102-", "104-", "106-"].iter().any(|p| name.starts_with(p));
        let got = ours(&r.flows, renormalize);
        let want = pmacct_expected(&dir.join("output-flow-00.json"));
        if got != want {
            let mut diff = Vec::new();
            for k in want.keys().chain(got.keys()) {
                if want.get(k) != got.get(k) {
                    diff.push(format!(
                        "{k:?}: pmacct {:?} flowtel {:?}",
                        want.get(k),
                        got.get(k)
                    ));
                }
            }
            diff.dedup();
            failures.push(format!(
                "{name}: {} keys differ, e.g.\n  {}",
                diff.len(),
                diff.iter()
                    .take(4)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn pmacct_dir(root: &Path, prefix: &str) -> PathBuf {
    std::fs::read_dir(root.join("pmacct"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .unwrap()
}

#[test]
fn pmacct_vrf_and_interface_names_from_options_data() {
    let Some(root) = corpus() else { return };
    // 106: Huawei options template 1514, scope ingressVRFID/egressVRFID, VRFname "A4".
    let dir = pmacct_dir(&root, "106-");
    let datagrams = pcap::read_all(dir.join("traffic-00.pcap")).unwrap();
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut out = DecodeOutput::default();
    for d in &datagrams {
        dec.decode(d.src, &d.payload, d.timestamp_ns, &mut out);
    }
    let f = &out.flows[0];
    assert_eq!(
        dec.vrf_name(f.exporter.ip(), f.observation_domain, 1),
        Some("A4")
    );

    // 112: interface names re-assigned mid-stream; the name current when each flow is
    // decoded must be the one pmacct reported for it.
    let dir = pmacct_dir(&root, "112-");
    let mut dec = Decoder::new(DecoderConfig::default());
    let mut names = Vec::new();
    for d in pcap::read_all(dir.join("traffic-00.pcap")).unwrap() {
        let mut out = DecodeOutput::default();
        dec.decode(d.src, &d.payload, d.timestamp_ns, &mut out);
        for f in &out.flows {
            let name = f
                .in_if
                .and_then(|i| dec.interface_name(f.exporter.ip(), f.observation_domain, i));
            names.push(name.unwrap_or_default().to_owned());
        }
    }
    let text = std::fs::read_to_string(dir.join("output-flow-00.json")).unwrap();
    let mut want: Vec<String> = serde_json::Deserializer::from_str(&text)
        .into_iter::<serde_json::Value>()
        .map(|v| v.unwrap()["iface_name_in"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    want.sort();
    assert_eq!(names, want);
}

/// One record of a data-link capture as tshark dissects it.
#[derive(Debug, PartialEq)]
struct Sampled {
    in_if: u32,
    src: &'static str,
    dst: &'static str,
    proto: u8,
    ports: (u16, u16),
    vlan: Option<u16>,
    frame: u64,
    ip: u64,
}

/// What a data-link record is compared on: in_if, addresses, protocol, ports, VLAN.
type Seen = (
    Option<u32>,
    Option<IpAddr>,
    Option<IpAddr>,
    u8,
    (u16, u16),
    Option<u16>,
);

fn sampled(r: &FlowRecord) -> Seen {
    (
        r.in_if,
        r.src_addr,
        r.dst_addr,
        r.ip_protocol,
        (r.src_port, r.dst_port),
        r.vlan,
    )
}

/// Decode `files` with `sflow_bytes`, every UDP payload with its source as exporter.
fn run_with(root: &Path, files: &[&str], bytes: SflowBytes) -> Vec<FlowRecord> {
    let mut decoder = Decoder::new(DecoderConfig {
        sflow_bytes: bytes,
        ..DecoderConfig::default()
    });
    let mut out = DecodeOutput::default();
    for f in files {
        let path = root.join("akvorado/netflow").join(f);
        for d in pcap::read_all(&path).unwrap() {
            let report = decoder.decode(d.src, &d.payload, d.timestamp_ns, &mut out);
            assert!(report.errors.is_empty(), "{f}: {:?}", report.errors);
        }
    }
    out.flows
}

fn check_sampled(root: &Path, files: &[&str], want: &[Sampled]) {
    let frame = run_with(root, files, SflowBytes::Frame);
    let ip = run_with(root, files, SflowBytes::Ip);
    assert_eq!(frame.len(), want.len(), "{files:?}");
    for ((f, i), w) in frame.iter().zip(&ip).zip(want) {
        let expect = (
            Some(w.in_if),
            Some(w.src.parse().unwrap()),
            Some(w.dst.parse().unwrap()),
            w.proto,
            w.ports,
            w.vlan,
        );
        assert_eq!(sampled(f), expect, "{files:?} {w:?}");
        assert_eq!((f.bytes, f.packets), (w.frame, 1), "{files:?} {w:?}");
        assert_eq!((i.bytes, i.packets), (w.ip, 1), "{files:?} {w:?}");
        assert_eq!(f.flow_protocol, FlowProtocol::Ipfix);
    }
}

/// IPFIX `dataLinkFrameSection` (IE 315) records: the sampled frame is parsed like an sFlow
/// header; bytes are `dataLinkFrameSize` (IE 312) or, with `sflow_bytes: ip`, the IP length
/// from the frame; one packet per record. Expected values read with
/// `mergecap -a T.pcap D.pcap` then `tshark -r - -Y cflow.flowset_id==384 -T fields
/// -e cflow.inputint -e ip.src -e ip.dst -e ipv6.src -e ipv6.dst -e ip.proto -e ipv6.nxt
/// -e udp.srcport -e tcp.srcport -e vlan.id -e cflow.data_link_frame_size -e ip.len
/// -e ipv6.plen` (the first ip.* values are the export datagram's own header).
#[test]
fn akvorado_data_link_frame_sections() {
    let Some(root) = corpus() else { return };
    let s = |in_if, src, dst, proto, ports, vlan, frame, ip| Sampled {
        in_if,
        src,
        dst,
        proto,
        ports,
        vlan,
        frame,
        ip,
    };
    // Juniper inline monitoring: 802.1Q VLAN 231, IPv4 UDP.
    check_sampled(
        &root,
        &["datalink-template.pcap", "datalink-data.pcap"],
        &[s(
            582,
            "51.51.51.51",
            "52.52.52.52",
            17,
            (55501, 11777),
            Some(231),
            114,
            96,
        )],
    );
    // SRv6 carrying IPv4 (next header 4): reported by the outer IPv6 header, as forwarded.
    check_sampled(
        &root,
        &["ipfix-srv6-template.pcap", "ipfix-srv6-data.pcap"],
        &[s(
            0,
            "fc30:2200:1b::f",
            "fc30:2200:23:e009::",
            4,
            (0, 0),
            None,
            118,
            104,
        )],
    );
    check_sampled(
        &root,
        &["juniper-cpid-template.pcap", "juniper-cpid-data.pcap"],
        &[s(
            737,
            "fc30:2200:1b::f",
            "fc30:2200:23:e009::",
            4,
            (0, 0),
            None,
            118,
            104,
        )],
    );
    // Ethernet over MPLS (labels 300012/17, RFC 4385 control word) among plain and 802.1Q
    // frames. tshark's heuristic misses the control word of record 4 (it shows no IP); its
    // values are read from the bytes: after the zero control word, MACs 02:..:05 / 02:..:06,
    // ethertype 0x0800, IPv4 total length 0x05d4, 198.51.100.1 -> .2, TCP 443 -> 55427.
    check_sampled(
        &root,
        &[
            "ethernet-over-mpls-with-control-word-template.pcap",
            "ethernet-over-mpls-with-control-word-data.pcap",
        ],
        &[
            s(
                1091,
                "198.51.100.19",
                "198.51.100.20",
                6,
                (80, 43908),
                Some(1000),
                1458,
                1440,
            ),
            s(
                1064,
                "198.51.100.7",
                "198.51.100.8",
                6,
                (443, 59706),
                Some(1610),
                1518,
                1500,
            ),
            s(
                1022,
                "198.51.100.3",
                "198.51.100.4",
                6,
                (443, 28911),
                None,
                1540,
                1500,
            ),
            s(
                1022,
                "198.51.100.1",
                "198.51.100.2",
                6,
                (443, 55427),
                None,
                1532,
                1492,
            ),
            s(
                1091,
                "198.51.100.5",
                "198.51.100.6",
                17,
                (443, 10000),
                Some(1000),
                983,
                965,
            ),
            s(
                1051,
                "198.51.100.9",
                "198.51.100.10",
                6,
                (443, 1470),
                Some(27),
                1458,
                1440,
            ),
            s(
                1096,
                "198.51.100.11",
                "198.51.100.12",
                6,
                (443, 59522),
                Some(1122),
                1518,
                1500,
            ),
            s(
                1051,
                "198.51.100.13",
                "198.51.100.14",
                6,
                (8887, 57478),
                Some(27),
                1518,
                1500,
            ),
            s(
                1051,
                "198.51.100.15",
                "198.51.100.16",
                6,
                (443, 6921),
                Some(27),
                1518,
                1500,
            ),
            s(
                1087,
                "198.51.100.17",
                "198.51.100.18",
                6,
                (443, 64028),
                None,
                1514,
                1500,
            ),
        ],
    );
    let eompls = run_with(
        &root,
        &[
            "ethernet-over-mpls-with-control-word-template.pcap",
            "ethernet-over-mpls-with-control-word-data.pcap",
        ],
        SflowBytes::Frame,
    );
    let r = &eompls[2];
    assert_eq!(r.mpls_labels.as_slice(), [300012, 17]);
    assert_eq!(r.mpls_top_label, Some(300012));
    assert_eq!(
        r.src_mac,
        Some([2, 0, 0, 0, 0, 4]),
        "the outer frame's MACs"
    );
    assert_eq!((r.etype, r.ip_ttl, r.tos), (Some(0x0800), Some(62), 0x20));
    assert_eq!(r.sampling_rate, None);
}
