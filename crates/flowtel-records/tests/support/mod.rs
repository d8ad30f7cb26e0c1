//! Records with every kind of value, shared by the encoding tests.
#![allow(dead_code)]

use std::sync::Arc;

use flowtel_decode::{FlowDirection, FlowProtocol, FlowRecord, SamplingSource};
use flowtel_rollup::{Country, EnrichedRecord, Network};

pub const RECEIVED: u64 = 1_700_000_000_123_456_789;

/// IPFIX, IPv4 TCP, sampled 1:100 per options data, with interfaces, a MAC, a VLAN, a next
/// hop, masks, a direction and full enrichment.
pub fn ipfix_tcp() -> EnrichedRecord {
    let mut r = FlowRecord::new(
        "192.0.2.1:2055".parse().unwrap(),
        FlowProtocol::Ipfix,
        RECEIVED,
    );
    r.observation_domain = 7;
    r.sequence_num = 1234;
    r.flow_start_ns = Some(1_700_000_000_000_000_000);
    r.flow_end_ns = Some(1_700_000_000_100_000_000);
    r.src_addr = Some("10.1.2.3".parse().unwrap());
    r.dst_addr = Some("198.51.100.7".parse().unwrap());
    r.src_port = 51000;
    r.dst_port = 443;
    r.ip_protocol = 6;
    r.tcp_flags = 0x1b;
    r.tos = 0xb8;
    r.bytes = 1500;
    r.packets = 3;
    r.in_if = Some(10);
    r.out_if = Some(20);
    r.direction = Some(FlowDirection::Ingress);
    r.dst_as = Some(64500);
    r.next_hop = Some("192.0.2.254".parse().unwrap());
    r.src_prefix_len = Some(24);
    r.dst_prefix_len = Some(16);
    r.vlan = Some(100);
    r.src_mac = Some([0x00, 0x1b, 0x21, 0xaa, 0xbb, 0xff]);
    r.sampling_rate = Some(100);
    r.sampling_source = SamplingSource::Options;
    EnrichedRecord {
        device_addr: r.exporter.ip(),
        record: r,
        device_name: Arc::from("edge-1"),
        sampling_rate: 100,
        rate_known: true,
        application: Some("https"),
        src_country: Country::Private,
        dst_country: Country::Iso(*b"US"),
        src_as: None,
        dst_as: Some(64500),
        in_if_name: Some(Arc::from("xe-0/0/1")),
        out_if_name: None,
        src_net: Some(Arc::new(Network {
            prefix: "10.1.0.0/16".parse().unwrap(),
            name: "par1-servers".to_owned(),
            role: "servers".to_owned(),
            site: "par1".to_owned(),
            region: "eu-west".to_owned(),
            tenant: "acme".to_owned(),
            asn: None,
        })),
        dst_net: None,
    }
}

/// sFlow, IPv6 ICMPv6 echo request, from an agent behind an IPv4-mapped exporter address,
/// with no flow times, an MPLS label, BGP data and an ASN from the database.
pub fn sflow_icmpv6() -> EnrichedRecord {
    let mut r = FlowRecord::new(
        "[::ffff:198.51.100.1]:6343".parse().unwrap(),
        FlowProtocol::SflowV5,
        RECEIVED,
    );
    r.agent = Some("203.0.113.5".parse().unwrap());
    r.observation_domain = 3;
    r.sequence_num = 99;
    r.src_addr = Some("2001:db8:1:2::7".parse().unwrap());
    r.dst_addr = Some("2001:db8:ffff::1".parse().unwrap());
    r.ip_protocol = 58;
    r.icmp_type = Some(128);
    r.icmp_code = Some(0);
    r.bytes = 1280;
    r.packets = 1;
    r.in_if = Some(3);
    r.src_prefix_len = Some(48);
    r.bgp_next_hop = Some("2001:db8::1".parse().unwrap());
    r.mpls_top_label = Some(1000);
    r.as_path = vec![64500, 64501];
    r.bgp_communities = vec![(65000 << 16) | 100];
    r.dst_mac = Some([0x02, 0, 0, 0, 0, 0x01]);
    r.sampling_rate = Some(512);
    r.sampling_source = SamplingSource::Sample;
    EnrichedRecord {
        device_addr: "203.0.113.5".parse().unwrap(),
        record: r,
        device_name: Arc::from("203.0.113.5"),
        sampling_rate: 512,
        rate_known: true,
        application: None,
        src_country: Country::Unknown,
        dst_country: Country::Iso(*b"DE"),
        src_as: Some(64496),
        dst_as: None,
        in_if_name: None,
        out_if_name: None,
        src_net: None,
        dst_net: None,
    }
}

/// NetFlow v9 without addresses or a sampling rate (flowtel's configured rate applies), and a
/// device name that needs JSON escaping.
pub fn v9_bare() -> EnrichedRecord {
    let mut r = FlowRecord::new(
        "192.0.2.9:9995".parse().unwrap(),
        FlowProtocol::NetflowV9,
        RECEIVED,
    );
    r.bytes = 60;
    r.packets = 1;
    EnrichedRecord {
        device_addr: r.exporter.ip(),
        record: r,
        device_name: Arc::from("core \"A\"\\rack\t1"),
        sampling_rate: 10,
        rate_known: false,
        application: None,
        src_country: Country::Unknown,
        dst_country: Country::Unknown,
        src_as: None,
        dst_as: None,
        in_if_name: None,
        out_if_name: None,
        src_net: None,
        dst_net: None,
    }
}
