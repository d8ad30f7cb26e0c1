//! sFlow counter samples and drop notifications end to end: the real daemon receives sFlow v5
//! datagrams (written by `flowtel-encode`) over UDP on loopback and exports the interface
//! metrics in its Prometheus exposition and to an in-process OTLP receiver; the values are
//! the exact increases of the counters sent.

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};

use common::{Alloy, Daemon, FlatPoint, sample};
use flowtel_decode::{EthernetCounters, InterfaceCounters};
use flowtel_encode::sflow::{CounterData, CounterSample, Datagram, DiscardSample, Sample};

const AGENT: &str = "192.0.2.10";

/// The first sample of ifIndex 3 (the baseline): packets close below 2^32 so the next
/// sample's wrap is exercised.
fn first() -> (InterfaceCounters, EthernetCounters) {
    let ifc = InterfaceCounters {
        if_index: 3,
        if_type: 6,
        if_speed: 1_000_000_000,
        if_direction: 1,
        if_status: 3,
        in_octets: 5_000_000,
        in_ucast_pkts: u32::MAX - 49,
        in_multicast_pkts: 10,
        in_broadcast_pkts: 20,
        in_discards: 1,
        in_errors: 2,
        in_unknown_protos: 0,
        out_octets: 9_000_000,
        out_ucast_pkts: 1_000,
        out_multicast_pkts: 0,
        out_broadcast_pkts: 0,
        out_discards: 0,
        out_errors: 0,
        promiscuous_mode: 0,
    };
    let eth = EthernetCounters {
        fcs_errors: 2,
        ..EthernetCounters::default()
    };
    (ifc, eth)
}

/// The second sample: +123456 octets in, +654321 out, +100 unicast packets in across the
/// 32-bit wrap, +5 multicast, +1 broadcast (106 in), +200 out, +7 discards in, +3 errors in of
/// which 3 FCS errors, and the interface gone down.
fn second() -> (InterfaceCounters, EthernetCounters) {
    let (mut ifc, mut eth) = first();
    ifc.in_octets += 123_456;
    ifc.out_octets += 654_321;
    ifc.in_ucast_pkts = ifc.in_ucast_pkts.wrapping_add(100);
    ifc.in_multicast_pkts += 5;
    ifc.in_broadcast_pkts += 1;
    ifc.out_ucast_pkts += 200;
    ifc.in_discards += 7;
    ifc.in_errors += 3;
    ifc.if_status = 1;
    eth.fcs_errors += 3;
    (ifc, eth)
}

fn counters(
    sequence: u32,
    uptime_ms: u32,
    (ifc, eth): (InterfaceCounters, EthernetCounters),
) -> Vec<u8> {
    Datagram {
        agent: Some(AGENT.parse::<IpAddr>().unwrap()),
        sub_agent_id: 0,
        sequence,
        uptime_ms,
        samples: vec![Sample::Counters(CounterSample {
            expanded: false,
            sequence,
            source_id_type: 0,
            source_id_index: 3,
            records: vec![
                CounterData::Interface(ifc),
                CounterData::Ethernet(eth),
                CounterData::PortName("swp3".to_owned()),
            ],
        })],
    }
    .to_bytes()
}

/// Three drop notifications of ifIndex 3: two ACL drops, one TTL exceeded; the agent's count
/// of notifications it did not send goes from 40 to 45.
fn drops(uptime_ms: u32) -> Vec<u8> {
    let discard = |sequence, drops, reason| {
        Sample::Discard(DiscardSample {
            sequence,
            source_id_type: 0,
            source_id_index: 3,
            drops,
            input: 3,
            output: 0,
            reason,
            records: Vec::new(),
        })
    };
    Datagram {
        agent: Some(AGENT.parse::<IpAddr>().unwrap()),
        sub_agent_id: 0,
        sequence: 3,
        uptime_ms,
        samples: vec![
            discard(1, 40, 258),
            discard(2, 45, 258),
            discard(3, 45, 257),
        ],
    }
    .to_bytes()
}

fn send_all(to: SocketAddr) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    // The uptime moves on by 30 s between the two samples: the same agent life.
    sock.send_to(&counters(1, 100_000, first()), to).unwrap();
    sock.send_to(&counters(2, 130_000, second()), to).unwrap();
    sock.send_to(&drops(130_500), to).unwrap();
}

#[test]
fn counter_samples_and_drop_notifications_reach_prometheus_as_exact_increases() {
    let d = Daemon::start(&["--rollup-interval", "1", "--sink", "prometheus"]);
    send_all(d.listen);
    let common = format!(
        "device_name=\"{AGENT}\",exporter_address=\"{AGENT}\",hw_type=\"network\",hw_id=\"3\",hw_name=\"swp3\""
    );
    let body = d.metrics_until("the interface metrics", |b| {
        sample(
            b,
            &format!("hw_network_io_bytes_total{{{common},hw_direction=\"transmit\"}}"),
        )
        .is_some()
            && b.contains("flowtel_device_discards")
    });
    let get = |series: String| {
        sample(&body, &series).unwrap_or_else(|| panic!("no {series} in:\n{body}"))
    };
    let io = |dir: &str| {
        get(format!(
            "hw_network_io_bytes_total{{{common},hw_direction=\"{dir}\"}}"
        ))
    };
    assert_eq!((io("receive"), io("transmit")), (123_456.0, 654_321.0));
    let packets = |dir: &str| {
        get(format!(
            "hw_network_packets_total{{{common},hw_direction=\"{dir}\"}}"
        ))
    };
    assert_eq!((packets("receive"), packets("transmit")), (106.0, 200.0));
    let errors = |dir: &str, t: &str| {
        get(format!(
            "hw_errors_total{{{common},hw_direction=\"{dir}\",error_type=\"{t}\"}}"
        ))
    };
    assert_eq!(errors("receive", "discards"), 7.0);
    assert_eq!(errors("receive", "errors"), 3.0);
    assert_eq!(errors("receive", "fcs_errors"), 3.0);
    assert_eq!(errors("transmit", "discards"), 0.0);
    assert_eq!(errors("receive", "alignment_errors"), 0.0);
    assert_eq!(
        get(format!(
            "hw_network_bandwidth_limit_bytes_per_second{{{common}}}"
        )),
        125_000_000.0
    );
    assert_eq!(get(format!("hw_network_up{{{common}}}")), 0.0);
    let discards = |reason: &str| {
        get(format!(
            "flowtel_device_discards_total{{{common},reason=\"{reason}\"}}"
        ))
    };
    assert_eq!((discards("acl"), discards("ttl_exceeded")), (2.0, 1.0));
    // 40 -> 45 -> 45 notifications not sent.
    assert_eq!(discards("unreported"), 5.0);
    // The daemon's own counts of what it took.
    let body = d.metrics();
    assert_eq!(sample(&body, "flowtel_counter_records_total"), Some(2.0));
    assert_eq!(sample(&body, "flowtel_drop_records_total"), Some(3.0));
    assert_eq!(
        sample(&body, "flowtel_interfaces_baselines_total{reason=\"new\"}"),
        Some(1.0)
    );
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
}

#[test]
fn counter_samples_reach_an_otlp_receiver_as_exact_increases() {
    let alloy = Alloy::start();
    let d = Daemon::start(&[
        "--rollup-interval",
        "1",
        "--otlp-temporality",
        "delta",
        "--otlp-endpoint",
        &alloy.endpoint(),
    ]);
    send_all(d.listen);
    alloy.points_until("the interface metrics", |p| {
        p.iter().any(|p| p.metric == "flowtel.device.discards")
            && p.iter().any(|p| p.metric == "hw.network.io" && p.value > 0)
    });
    // SIGTERM flushes what is still open; then every point the receiver got.
    let (status, _, stderr) = d.terminate();
    assert!(status.success(), "{stderr}");
    let points = alloy.points();
    common::assert_one_point_per_series_per_window(&points);
    // Delta points: the increases of each window add up to the increase sent.
    let sum = |metric: &str, pred: &dyn Fn(&FlatPoint) -> bool| -> i64 {
        points
            .iter()
            .filter(|p| p.metric == metric && pred(p))
            .map(|p| p.value)
            .sum()
    };
    let dir = |d: &'static str| move |p: &FlatPoint| p.attr("hw.direction") == Some(d);
    assert_eq!(sum("hw.network.io", &dir("receive")), 123_456);
    assert_eq!(sum("hw.network.io", &dir("transmit")), 654_321);
    assert_eq!(sum("hw.network.packets", &dir("receive")), 106);
    assert_eq!(
        sum("hw.errors", &|p| p.attr("error.type") == Some("fcs_errors")),
        3
    );
    assert_eq!(
        sum("flowtel.device.discards", &|p| p.attr("reason")
            == Some("acl")),
        2
    );
    let io = points
        .iter()
        .find(|p| p.metric == "hw.network.io" && p.value > 0)
        .unwrap();
    assert_eq!((io.unit.as_str(), io.gauge), ("By", false));
    for (k, v) in [
        ("device_name", AGENT),
        ("exporter_address", AGENT),
        ("hw.type", "network"),
        ("hw.id", "3"),
        ("hw.name", "swp3"),
    ] {
        assert_eq!(io.attr(k), Some(v), "{k}: {:?}", io.attributes);
    }
    let limit = points
        .iter()
        .find(|p| p.metric == "hw.network.bandwidth.limit")
        .unwrap();
    assert_eq!((limit.value, limit.unit.as_str()), (125_000_000, "By/s"));
}
