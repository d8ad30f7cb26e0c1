//! Each encoding of a record, value by value.

mod support;

use flowtel_records::json::write_json_line;
use flowtel_records::otlp::{AttributeNames, LogsBatch, log_record};
use flowtel_records::proto::flow_message::{Direction, FlowType, SamplingSource};
use flowtel_records::protobuf::{DelimitedReader, encode_delimited};
use flowtel_records::{EncodedLogsBatch, FlowMessage, RecordEncoder, to_message};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use support::{RECEIVED, ipfix_tcp, sflow_icmpv6, v9_bare};

#[test]
fn message_carries_goflow2_and_flowtel_fields() {
    let m = to_message(&ipfix_tcp());
    assert_eq!(m.r#type, FlowType::Ipfix as i32);
    assert_eq!(m.time_received_ns, RECEIVED);
    assert_eq!(m.sequence_num, 1234);
    assert_eq!(m.sampling_rate, 100);
    assert_eq!(m.sampler_address, [192, 0, 2, 1]);
    assert_eq!(m.time_flow_start_ns, 1_700_000_000_000_000_000);
    assert_eq!(m.time_flow_end_ns, 1_700_000_000_100_000_000);
    assert_eq!((m.bytes, m.packets), (1500, 3));
    assert_eq!(m.src_addr, [10, 1, 2, 3]);
    assert_eq!(m.dst_addr, [198, 51, 100, 7]);
    assert_eq!(
        (m.etype, m.proto, m.src_port, m.dst_port),
        (0x800, 6, 51000, 443)
    );
    assert_eq!((m.in_if, m.out_if), (10, 20));
    assert_eq!((m.src_mac, m.dst_mac), (0x001b_21aa_bbff, 0));
    assert_eq!(m.vlan_id, 100);
    assert_eq!((m.ip_tos, m.tcp_flags), (0xb8, 0x1b));
    assert_eq!((m.src_as, m.dst_as), (0, 64500));
    assert_eq!(m.next_hop, [192, 0, 2, 254]);
    assert_eq!((m.src_net, m.dst_net), (24, 16));
    assert!(m.bgp_next_hop.is_empty() && m.mpls_label.is_empty());
    assert_eq!(m.observation_domain_id, 7);
    assert_eq!(m.device_name, "edge-1");
    assert_eq!(m.exporter_address, [192, 0, 2, 1]);
    assert_eq!(m.exporter_port, 2055);
    assert_eq!(m.sampling_source, SamplingSource::Options as i32);
    assert_eq!(m.direction, Direction::Ingress as i32);
    assert_eq!(
        (m.in_if_name.as_str(), m.out_if_name.as_str()),
        ("xe-0/0/1", "")
    );
    assert_eq!(m.application, "https");
    assert_eq!(
        (m.src_country.as_str(), m.dst_country.as_str()),
        ("Private IP", "US")
    );
    assert_eq!((m.src_private, m.dst_private), (true, false));
    assert_eq!((m.src_as_resolved, m.dst_as_resolved), (0, 64500));

    let m = to_message(&sflow_icmpv6());
    assert_eq!(m.r#type, FlowType::Sflow5 as i32);
    assert_eq!(m.sampler_address, [203, 0, 113, 5], "the agent");
    assert_eq!(
        m.exporter_address,
        [198, 51, 100, 1],
        "IPv4-mapped source unmapped"
    );
    assert_eq!(
        (m.time_flow_start_ns, m.time_flow_end_ns),
        (RECEIVED, RECEIVED),
        "no flow times: the time received, as goflow2 does for sFlow"
    );
    assert_eq!(m.etype, 0x86dd);
    assert_eq!(m.src_addr.len(), 16);
    assert_eq!((m.icmp_type, m.icmp_code), (128, 0));
    assert_eq!(m.dst_mac, 0x0200_0000_0001);
    assert_eq!(m.mpls_label, [1000]);
    assert_eq!(m.as_path, [64500, 64501]);
    assert_eq!(m.bgp_communities, [(65000 << 16) | 100]);
    assert_eq!(m.sampling_source, SamplingSource::Sample as i32);
    assert_eq!(
        (m.src_as, m.src_as_resolved),
        (0, 64496),
        "ASN from the database"
    );
    assert!(!m.src_private && !m.dst_private);

    let m = to_message(&v9_bare());
    assert_eq!(m.sampling_rate, 10);
    assert_eq!(m.sampling_source, SamplingSource::Config as i32);
    assert_eq!((m.etype, m.src_addr.len(), m.dst_addr.len()), (0, 0, 0));
    assert_eq!(m.direction, Direction::Unknown as i32);
}

#[test]
fn filling_a_reused_message_leaves_nothing_of_the_previous_record() {
    let mut encoder = RecordEncoder::new();
    encoder.message(&sflow_icmpv6());
    let reused = encoder.message(&v9_bare()).clone();
    assert_eq!(reused, to_message(&v9_bare()));
}

#[test]
fn json_is_goflow2s_object_then_flowtels_fields() {
    let mut line = String::new();
    write_json_line(&to_message(&ipfix_tcp()), &mut line);
    let expected = concat!(
        r#"{"type":"IPFIX","time_received_ns":1700000000123456789,"sequence_num":1234,"#,
        r#""sampling_rate":100,"sampler_address":"192.0.2.1","#,
        r#""time_flow_start_ns":1700000000000000000,"time_flow_end_ns":1700000000100000000,"#,
        r#""bytes":1500,"packets":3,"src_addr":"10.1.2.3","dst_addr":"198.51.100.7","#,
        r#""etype":"IPv4","proto":"TCP","src_port":51000,"dst_port":443,"in_if":10,"#,
        r#""out_if":20,"src_mac":"00:1b:21:aa:bb:ff","dst_mac":"00:00:00:00:00:00","#,
        r#""src_vlan":0,"dst_vlan":0,"vlan_id":100,"ip_tos":184,"forwarding_status":0,"#,
        r#""ip_ttl":0,"ip_flags":0,"tcp_flags":27,"icmp_type":0,"icmp_code":0,"#,
        r#""ipv6_flow_label":0,"fragment_id":0,"fragment_offset":0,"src_as":0,"#,
        r#""dst_as":64500,"next_hop":"192.0.2.254","next_hop_as":0,"#,
        r#""src_net":"10.1.2.0/24","dst_net":"198.51.0.0/16","bgp_next_hop":"","#,
        r#""bgp_communities":[],"as_path":[],"mpls_ttl":[],"mpls_label":[],"mpls_ip":[],"#,
        r#""observation_domain_id":7,"observation_point_id":0,"layer_stack":[],"#,
        r#""layer_size":[],"ipv6_routing_header_addresses":[],"#,
        r#""ipv6_routing_header_seg_left":0,"#,
        r#""device_name":"edge-1","exporter_address":"192.0.2.1","exporter_port":2055,"#,
        r#""sampling_source":"options","direction":"ingress","in_if_name":"xe-0/0/1","#,
        r#""out_if_name":"","application":"https","src_country":"Private IP","#,
        r#""dst_country":"US","src_private":true,"dst_private":false,"#,
        r#""src_as_resolved":0,"dst_as_resolved":64500,"src_net_name":"par1-servers","#,
        r#""dst_net_name":"","src_net_role":"servers","dst_net_role":"","src_net_site":"par1","#,
        r#""dst_net_site":"","src_net_region":"eu-west","dst_net_region":"","#,
        r#""src_net_tenant":"acme","dst_net_tenant":""}"#,
        "\n"
    );
    assert_eq!(line, expected);
}

#[test]
fn json_renders_ipv6_lists_and_missing_values_like_goflow2() {
    let mut out = String::new();
    write_json_line(&to_message(&sflow_icmpv6()), &mut out);
    write_json_line(&to_message(&v9_bare()), &mut out);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("valid JSON"))
        .collect();
    let [sflow, v9] = &lines[..] else {
        panic!("two lines: {out}")
    };
    assert_eq!(sflow["type"], "SFLOW_5");
    assert_eq!(sflow["src_addr"], "2001:db8:1:2::7");
    assert_eq!(sflow["etype"], "IPv6");
    assert_eq!(sflow["proto"], "IPv6-ICMP");
    assert_eq!(sflow["src_net"], "2001:db8:1::/48");
    assert_eq!(sflow["dst_net"], "::/0");
    assert_eq!(sflow["bgp_next_hop"], "2001:db8::1");
    assert_eq!(sflow["sampler_address"], "203.0.113.5");
    assert_eq!(sflow["exporter_address"], "198.51.100.1");
    assert_eq!(sflow["dst_mac"], "02:00:00:00:00:01");
    assert_eq!(sflow["mpls_label"], serde_json::json!([1000]));
    assert_eq!(sflow["as_path"], serde_json::json!([64500, 64501]));
    assert_eq!(
        sflow["bgp_communities"],
        serde_json::json!([(65000u32 << 16) | 100])
    );
    assert_eq!(sflow["icmp_type"], 128);
    assert_eq!(sflow["direction"], "");
    assert_eq!(sflow["src_as_resolved"], 64496);

    assert_eq!(v9["type"], "NETFLOW_V9");
    assert_eq!(v9["src_addr"], "");
    assert_eq!(v9["etype"], "");
    assert_eq!(v9["proto"], "HOPOPT");
    assert_eq!(v9["src_net"], "invalid Prefix");
    assert_eq!(v9["device_name"], "core \"A\"\\rack\t1");
    assert_eq!(v9["sampling_source"], "config");
    assert_eq!(v9["sampling_rate"], 10);
    for line in &lines {
        assert_eq!(line.as_object().map(|o| o.len()), Some(74), "{line}");
    }
}

#[test]
fn protobuf_stream_reads_back_message_by_message() {
    let records = [ipfix_tcp(), sflow_icmpv6(), v9_bare()];
    let mut encoder = RecordEncoder::new();
    let mut stream = Vec::new();
    for r in &records {
        encoder.protobuf_delimited(r, &mut stream);
    }
    let read: Vec<FlowMessage> = DelimitedReader::new(&stream)
        .collect::<Result<_, _>>()
        .expect("valid stream");
    let expected: Vec<FlowMessage> = records.iter().map(to_message).collect();
    assert_eq!(read, expected);

    // The frame is a varint length, then the message.
    let mut one = Vec::new();
    encode_delimited(&expected[2], &mut one);
    let len = expected[2].encoded_len();
    assert!(len < 128);
    assert_eq!(usize::from(one[0]), len);
    assert_eq!(one.len(), len + 1);

    // A truncated stream yields its whole messages, then one error, then ends.
    let cut = &stream[..stream.len() - 3];
    let items: Vec<_> = DelimitedReader::new(cut).collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[1].is_ok() && items[2].is_err());
}

/// goflow2's field numbers on the wire: the tags of the first fields of a message, read with
/// nothing but the protobuf wire format (tag = number << 3 | wire type).
#[test]
fn wire_uses_goflow2_field_numbers() {
    let m = to_message(&ipfix_tcp());
    let bytes = m.encode_to_vec();
    let mut tags = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let key = prost::encoding::decode_varint(&mut rest).unwrap();
        let (number, wire) = (key >> 3, key & 7);
        tags.push(number);
        match wire {
            0 => {
                prost::encoding::decode_varint(&mut rest).unwrap();
            }
            2 => {
                let len = prost::encoding::decode_varint(&mut rest).unwrap() as usize;
                rest = &rest[len..];
            }
            other => panic!("unexpected wire type {other}"),
        }
    }
    // prost writes fields in number order; every set field of the record is there.
    assert_eq!(
        tags,
        [
            1, 3, 4, 6, 7, 9, 10, 11, 12, 15, 16, 17, 18, 19, 20, 21, 22, 23, 26, 27, 29, 30, 70,
            110, 111, 112, 1000, 1001, 1002, 1003, 1004, 1005, 1007, 1008, 1009, 1010, 1013, 1014,
            1016, 1018, 1020, 1022
        ]
    );
}

fn attrs(record: &LogRecord) -> Vec<(&str, Value)> {
    record
        .attributes
        .iter()
        .map(|kv| {
            let v = kv.value.as_ref().and_then(|v| v.value.clone()).unwrap();
            (kv.key.as_str(), v)
        })
        .collect()
}

fn s(v: &str) -> Value {
    Value::StringValue(v.to_owned())
}

fn i(v: i64) -> Value {
    Value::IntValue(v)
}

#[test]
fn log_record_has_the_receivers_names_then_flowtels() {
    let record = log_record(&to_message(&ipfix_tcp()), AttributeNames::NetworkFlow);
    assert_eq!(record.time_unix_nano, 1_700_000_000_100_000_000, "flow end");
    assert_eq!(record.observed_time_unix_nano, RECEIVED, "received");
    assert_eq!(record.severity_number, 0);
    assert!(record.body.is_none());
    assert_eq!(
        attrs(&record),
        vec![
            ("source.address", s("10.1.2.3")),
            ("source.port", i(51000)),
            ("destination.address", s("198.51.100.7")),
            ("destination.port", i(443)),
            ("network.transport", s("tcp")),
            ("network.type", s("ipv4")),
            ("network.io.bytes", i(1500)),
            ("network.io.packets", i(3)),
            ("network.flow.type", s("ipfix")),
            ("network.flow.sequence_num", i(1234)),
            ("network.flow.time_received", i(RECEIVED as i64)),
            ("network.flow.start", i(1_700_000_000_000_000_000)),
            ("network.flow.end", i(1_700_000_000_100_000_000)),
            ("network.flow.sampling_rate", i(100)),
            ("network.flow.sampler_address", s("192.0.2.1")),
            ("flowtel.observation_domain.id", i(7)),
            ("flowtel.in_interface.index", i(10)),
            ("flowtel.out_interface.index", i(20)),
            ("flowtel.tcp.flags", i(0x1b)),
            ("flowtel.ip.tos", i(0xb8)),
            ("flowtel.ip.dscp", i(46)),
            ("flowtel.vlan.id", i(100)),
            ("flowtel.source.mac", s("00:1b:21:aa:bb:ff")),
            ("flowtel.next_hop.address", s("192.0.2.254")),
            ("flowtel.source.prefix_length", i(24)),
            ("flowtel.destination.prefix_length", i(16)),
            ("flowtel.exporter.name", s("edge-1")),
            ("flowtel.sampling.source", s("options")),
            ("network.protocol.name", s("https")),
            ("flowtel.flow.direction", s("ingress")),
            ("flowtel.in_interface.name", s("xe-0/0/1")),
            ("flowtel.source.country", s("Private IP")),
            ("flowtel.destination.country", s("US")),
            ("flowtel.source.private", Value::BoolValue(true)),
            ("flowtel.destination.private", Value::BoolValue(false)),
            ("flowtel.destination.asn", i(64500)),
            ("flowtel.source.network.name", s("par1-servers")),
            ("flowtel.source.network.role", s("servers")),
            ("flowtel.source.network.site", s("par1")),
            ("flowtel.source.network.region", s("eu-west")),
            ("flowtel.source.network.tenant", s("acme")),
        ]
    );
}

#[test]
fn log_record_with_the_flow_names_writes_the_receivers_extended_set() {
    let record = log_record(&to_message(&sflow_icmpv6()), AttributeNames::Flow);
    assert_eq!(record.time_unix_nano, RECEIVED, "no flow end: received");
    let a = attrs(&record);
    let keys: Vec<&str> = a.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys,
        [
            "source.address",
            "source.port",
            "destination.address",
            "destination.port",
            "network.transport",
            "network.type",
            "flow.io.bytes",
            "flow.io.packets",
            "flow.type",
            "flow.sequence_num",
            "flow.time_received",
            "flow.start",
            "flow.end",
            "flow.sampling_rate",
            "flow.sampler_address",
            "flow.tcp_flags",
            "flow.in_if",
            "flow.out_if",
            "flow.ip_tos",
            "flow.ip_ttl",
            "flow.ip_flags",
            "flow.fragment_id",
            "flow.fragment_offset",
            "flow.ipv6_flow_label",
            "flow.icmp_type",
            "flow.icmp_code",
            "flow.src_mac",
            "flow.dst_mac",
            "flow.src_vlan",
            "flow.dst_vlan",
            "flow.vlan_id",
            // flow.next_hop: none, left out as the receiver does
            "flow.next_hop_as",
            "flow.src_as",
            "flow.dst_as",
            "flow.bgp_next_hop",
            "flow.src_net",
            "flow.dst_net",
            "flow.forwarding_status",
            "flow.observation_domain_id",
            "flow.observation_point_id",
            "flowtel.exporter.name",
            "flowtel.exporter.address",
            "flowtel.sampling.source",
            "flowtel.destination.country",
            "flowtel.source.private",
            "flowtel.destination.private",
            "flowtel.source.asn",
        ]
    );
    let get = |key: &str| a.iter().find(|(k, _)| *k == key).unwrap().1.clone();
    assert_eq!(get("source.address"), s("2001:db8:1:2::7"));
    assert_eq!(get("network.transport"), s("ipv6-icmp"));
    assert_eq!(get("network.type"), s("ipv6"));
    assert_eq!(get("flow.type"), s("sflow_5"));
    assert_eq!(get("flow.sampler_address"), s("203.0.113.5"));
    assert_eq!(get("flowtel.exporter.address"), s("198.51.100.1"));
    assert_eq!(get("flow.src_mac"), s("00:00:00:00:00:00"));
    assert_eq!(get("flow.dst_mac"), s("02:00:00:00:00:01"));
    assert_eq!(get("flow.icmp_type"), i(128));
    assert_eq!(get("flow.src_net"), i(48));
    assert_eq!(get("flow.bgp_next_hop"), s("2001:db8::1"));
    assert_eq!(get("flow.sampling_rate"), i(512));
    assert_eq!(get("flowtel.source.asn"), i(64496));
}

#[test]
fn attribute_names_parse_from_their_spelling() {
    for names in [AttributeNames::NetworkFlow, AttributeNames::Flow] {
        assert_eq!(names.as_str().parse::<AttributeNames>(), Ok(names));
    }
    assert!("flows".parse::<AttributeNames>().is_err());
}

#[test]
fn batch_packs_records_under_one_resource_and_scope() {
    let resource = Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                value: Some(s("flowtel")),
            }),
            key_strindex: 0,
        }],
        ..Resource::default()
    };
    let scope = InstrumentationScope {
        name: "flowtel".into(),
        version: "0.1.0".into(),
        ..InstrumentationScope::default()
    };
    let mut batch = LogsBatch::new(resource.clone(), scope.clone(), AttributeNames::NetworkFlow);
    assert!(batch.is_empty());
    let records = [ipfix_tcp(), sflow_icmpv6(), v9_bare()];
    for r in &records {
        batch.push(r);
    }
    assert_eq!(batch.len(), 3);
    let request = batch.take();
    assert!(batch.is_empty());

    // Through the wire and back, as a collector would see it.
    let request = ExportLogsServiceRequest::decode(&request.encode_to_vec()[..]).unwrap();
    let [resource_logs] = &request.resource_logs[..] else {
        panic!("one ResourceLogs")
    };
    assert_eq!(resource_logs.resource.as_ref(), Some(&resource));
    let [scope_logs] = &resource_logs.scope_logs[..] else {
        panic!("one ScopeLogs")
    };
    assert_eq!(scope_logs.scope.as_ref(), Some(&scope));
    let expected: Vec<LogRecord> = records
        .iter()
        .map(|r| log_record(&to_message(r), AttributeNames::NetworkFlow))
        .collect();
    assert_eq!(scope_logs.log_records, expected);

    let empty = batch.take();
    assert!(empty.resource_logs[0].scope_logs[0].log_records.is_empty());
}

#[test]
fn encoded_batch_writes_the_bytes_prost_writes_for_the_same_batch() {
    let resource = Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                value: Some(s("flowtel")),
            }),
            key_strindex: 0,
        }],
        ..Resource::default()
    };
    let scope = InstrumentationScope {
        name: "flowtel".into(),
        ..InstrumentationScope::default()
    };
    // The last record is larger than 16 KiB: its length takes three varint bytes.
    let mut long_name = v9_bare();
    long_name.device_name = "x".repeat(20_000).into();
    let records = [ipfix_tcp(), sflow_icmpv6(), v9_bare(), long_name];
    for names in [AttributeNames::NetworkFlow, AttributeNames::Flow] {
        let mut prost_batch = LogsBatch::new(resource.clone(), scope.clone(), names);
        let mut encoded = EncodedLogsBatch::new(&resource, &scope, names);
        assert_eq!(
            encoded.take(),
            prost_batch.take().encode_to_vec(),
            "empty, {names}"
        );
        for _ in 0..50 {
            for r in &records {
                prost_batch.push(r);
                encoded.push(r);
            }
        }
        assert_eq!(encoded.len(), 200);
        let expected = prost_batch.take().encode_to_vec();
        assert_eq!(encoded.encoded_len(), expected.len());
        let bytes = encoded.take();
        assert_eq!(bytes, expected, "{names}");
        assert!(encoded.is_empty());
        // And a collector decodes it into the records.
        let request = ExportLogsServiceRequest::decode(&bytes[..]).unwrap();
        assert_eq!(
            request.resource_logs[0].scope_logs[0].log_records.len(),
            200
        );
    }
}
