//! The schema's compatibility contract, checked on the compiled `flow.proto`:
//!
//! - every field goflow2's `FlowMessage` has is here with goflow2's number, type and label
//!   (goflow2 `pb/flow.proto`, v2.2.x), and the two goflow2 enums keep their values;
//! - flowtel's own fields are numbered from 1000;
//! - no field of v1 ever changes: the table below pins each one, so renumbering, retyping or
//!   removing a field fails here, and a new field is added to the table on purpose.

use std::collections::BTreeMap;

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FileDescriptorSet};

use Label::{Optional as One, Repeated as Many};
use Type::{Bool, Bytes, Enum, String as Str, Uint32, Uint64};

/// goflow2's `FlowMessage` fields: (name, number, type, label).
const GOFLOW2: &[(&str, i32, Type, Label)] = &[
    ("type", 1, Enum, One),
    ("time_received_ns", 110, Uint64, One),
    ("sequence_num", 4, Uint32, One),
    ("sampling_rate", 3, Uint64, One),
    ("sampler_address", 11, Bytes, One),
    ("time_flow_start_ns", 111, Uint64, One),
    ("time_flow_end_ns", 112, Uint64, One),
    ("bytes", 9, Uint64, One),
    ("packets", 10, Uint64, One),
    ("src_addr", 6, Bytes, One),
    ("dst_addr", 7, Bytes, One),
    ("etype", 30, Uint32, One),
    ("proto", 20, Uint32, One),
    ("src_port", 21, Uint32, One),
    ("dst_port", 22, Uint32, One),
    ("in_if", 18, Uint32, One),
    ("out_if", 19, Uint32, One),
    ("src_mac", 27, Uint64, One),
    ("dst_mac", 28, Uint64, One),
    ("src_vlan", 33, Uint32, One),
    ("dst_vlan", 34, Uint32, One),
    ("vlan_id", 29, Uint32, One),
    ("ip_tos", 23, Uint32, One),
    ("forwarding_status", 24, Uint32, One),
    ("ip_ttl", 25, Uint32, One),
    ("ip_flags", 38, Uint32, One),
    ("tcp_flags", 26, Uint32, One),
    ("icmp_type", 31, Uint32, One),
    ("icmp_code", 32, Uint32, One),
    ("ipv6_flow_label", 37, Uint32, One),
    ("fragment_id", 35, Uint32, One),
    ("fragment_offset", 36, Uint32, One),
    ("src_as", 14, Uint32, One),
    ("dst_as", 15, Uint32, One),
    ("next_hop", 12, Bytes, One),
    ("next_hop_as", 13, Uint32, One),
    ("src_net", 16, Uint32, One),
    ("dst_net", 17, Uint32, One),
    ("bgp_next_hop", 100, Bytes, One),
    ("bgp_communities", 101, Uint32, Many),
    ("as_path", 102, Uint32, Many),
    ("mpls_ttl", 80, Uint32, Many),
    ("mpls_label", 81, Uint32, Many),
    ("mpls_ip", 82, Bytes, Many),
    ("observation_domain_id", 70, Uint32, One),
    ("observation_point_id", 71, Uint32, One),
    ("layer_stack", 103, Enum, Many),
    ("layer_size", 104, Uint32, Many),
    ("ipv6_routing_header_addresses", 105, Bytes, Many),
    ("ipv6_routing_header_seg_left", 106, Uint32, One),
];

/// flowtel's own fields of v1. Append new ones; never edit a line.
const FLOWTEL: &[(&str, i32, Type, Label)] = &[
    ("device_name", 1000, Str, One),
    ("exporter_address", 1001, Bytes, One),
    ("exporter_port", 1002, Uint32, One),
    ("sampling_source", 1003, Enum, One),
    ("direction", 1004, Enum, One),
    ("in_if_name", 1005, Str, One),
    ("out_if_name", 1006, Str, One),
    ("application", 1007, Str, One),
    ("src_country", 1008, Str, One),
    ("dst_country", 1009, Str, One),
    ("src_private", 1010, Bool, One),
    ("dst_private", 1011, Bool, One),
    ("src_as_resolved", 1012, Uint32, One),
    ("dst_as_resolved", 1013, Uint32, One),
    ("src_net_name", 1014, Str, One),
    ("dst_net_name", 1015, Str, One),
    ("src_net_role", 1016, Str, One),
    ("dst_net_role", 1017, Str, One),
    ("src_net_site", 1018, Str, One),
    ("dst_net_site", 1019, Str, One),
    ("src_net_region", 1020, Str, One),
    ("dst_net_region", 1021, Str, One),
    ("src_net_tenant", 1022, Str, One),
    ("dst_net_tenant", 1023, Str, One),
];

fn flow_message() -> DescriptorProto {
    let set = FileDescriptorSet::decode(flowtel_records::FILE_DESCRIPTOR_SET).unwrap();
    let [file] = &set.file[..] else {
        panic!(
            "one file: {:?}",
            set.file.iter().map(|f| f.name()).collect::<Vec<_>>()
        )
    };
    assert_eq!(file.name(), "flowtel/flow/v1/flow.proto");
    assert_eq!(file.package(), "flowtel.flow.v1");
    assert_eq!(file.syntax(), "proto3");
    let [message] = &file.message_type[..] else {
        panic!("one message")
    };
    assert_eq!(message.name(), "FlowMessage");
    message.clone()
}

#[test]
fn every_field_is_pinned_and_goflow2s_keep_their_numbers() {
    let message = flow_message();
    let actual: BTreeMap<&str, (i32, Type, Label)> = message
        .field
        .iter()
        .map(|f| (f.name(), (f.number(), f.r#type(), f.label())))
        .collect();
    let expected: BTreeMap<&str, (i32, Type, Label)> = GOFLOW2
        .iter()
        .chain(FLOWTEL)
        .map(|(name, number, ty, label)| (*name, (*number, *ty, *label)))
        .collect();
    assert_eq!(actual, expected);
    for (name, number, ..) in FLOWTEL {
        assert!(*number >= 1000, "{name}: flowtel's fields start at 1000");
    }
    // No field of the message is optional-with-presence or in a oneof: proto3 scalars, as
    // goflow2's, so both read the same bytes the same way.
    assert!(message.field.iter().all(|f| f.oneof_index.is_none()));
}

#[test]
fn enums_keep_goflow2s_values() {
    let message = flow_message();
    let values = |name: &str| -> Vec<(String, i32)> {
        let e = message
            .enum_type
            .iter()
            .find(|e| e.name() == name)
            .unwrap_or_else(|| panic!("enum {name}"));
        e.value
            .iter()
            .map(|v| (v.name().to_owned(), v.number()))
            .collect()
    };
    let owned = |list: &[(&str, i32)]| -> Vec<(String, i32)> {
        list.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect()
    };
    assert_eq!(
        values("FlowType"),
        owned(&[
            ("FLOWUNKNOWN", 0),
            ("SFLOW_5", 1),
            ("NETFLOW_V5", 2),
            ("NETFLOW_V9", 3),
            ("IPFIX", 4)
        ])
    );
    assert_eq!(
        values("LayerStack"),
        owned(&[
            ("Ethernet", 0),
            ("IPv4", 1),
            ("IPv6", 2),
            ("TCP", 3),
            ("UDP", 4),
            ("MPLS", 5),
            ("Dot1Q", 6),
            ("ICMP", 7),
            ("ICMPv6", 8),
            ("GRE", 9),
            ("IPv6HeaderRouting", 10),
            ("IPv6HeaderFragment", 11),
            ("Geneve", 12),
            ("Teredo", 13),
            ("Custom", 99)
        ])
    );
    assert_eq!(
        values("SamplingSource"),
        owned(&[
            ("SAMPLING_SOURCE_CONFIG", 0),
            ("SAMPLING_SOURCE_RECORD", 1),
            ("SAMPLING_SOURCE_OPTIONS", 2),
            ("SAMPLING_SOURCE_HEADER", 3),
            ("SAMPLING_SOURCE_SAMPLE", 4)
        ])
    );
    assert_eq!(
        values("Direction"),
        owned(&[
            ("DIRECTION_UNKNOWN", 0),
            ("DIRECTION_INGRESS", 1),
            ("DIRECTION_EGRESS", 2)
        ])
    );
    let field_enum = |field: &str| {
        message
            .field
            .iter()
            .find(|f| f.name() == field)
            .map(|f| f.type_name().to_owned())
    };
    assert_eq!(
        field_enum("type").as_deref(),
        Some(".flowtel.flow.v1.FlowMessage.FlowType")
    );
    assert_eq!(
        field_enum("layer_stack").as_deref(),
        Some(".flowtel.flow.v1.FlowMessage.LayerStack")
    );
}
