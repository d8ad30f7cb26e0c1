"""Read flowtel's length-delimited protobuf streams with code other than flowtel's.

Usage: read_flows.py PROTO_ROOT STREAM...

Each message is decoded twice:
- with Python classes that grpc_tools' protoc generates from PROTO_ROOT's
  flowtel/flow/v1/flow.proto (another .proto compiler than flowtel's protox);
- with a message built here from goflow2's FlowMessage field numbers and types alone, as a
  consumer written for goflow2 reads it (flowtel's own fields are unknown fields to it).

Prints one JSON object per message: {"stream": i, "flowtel": {...}, "goflow2": {...}},
addresses as text (Python's ipaddress), enums by name.
"""

import ipaddress
import json
import os
import sys
import tempfile

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.json_format import MessageToDict
from grpc_tools import protoc

# goflow2's pb/flow.proto FlowMessage: (name, number, type, repeated).
GOFLOW2_FIELDS = [
    ("type", 1, "enum:FlowType", False),
    ("time_received_ns", 110, "uint64", False),
    ("sequence_num", 4, "uint32", False),
    ("sampling_rate", 3, "uint64", False),
    ("sampler_address", 11, "bytes", False),
    ("time_flow_start_ns", 111, "uint64", False),
    ("time_flow_end_ns", 112, "uint64", False),
    ("bytes", 9, "uint64", False),
    ("packets", 10, "uint64", False),
    ("src_addr", 6, "bytes", False),
    ("dst_addr", 7, "bytes", False),
    ("etype", 30, "uint32", False),
    ("proto", 20, "uint32", False),
    ("src_port", 21, "uint32", False),
    ("dst_port", 22, "uint32", False),
    ("in_if", 18, "uint32", False),
    ("out_if", 19, "uint32", False),
    ("src_mac", 27, "uint64", False),
    ("dst_mac", 28, "uint64", False),
    ("src_vlan", 33, "uint32", False),
    ("dst_vlan", 34, "uint32", False),
    ("vlan_id", 29, "uint32", False),
    ("ip_tos", 23, "uint32", False),
    ("forwarding_status", 24, "uint32", False),
    ("ip_ttl", 25, "uint32", False),
    ("ip_flags", 38, "uint32", False),
    ("tcp_flags", 26, "uint32", False),
    ("icmp_type", 31, "uint32", False),
    ("icmp_code", 32, "uint32", False),
    ("ipv6_flow_label", 37, "uint32", False),
    ("fragment_id", 35, "uint32", False),
    ("fragment_offset", 36, "uint32", False),
    ("src_as", 14, "uint32", False),
    ("dst_as", 15, "uint32", False),
    ("next_hop", 12, "bytes", False),
    ("next_hop_as", 13, "uint32", False),
    ("src_net", 16, "uint32", False),
    ("dst_net", 17, "uint32", False),
    ("bgp_next_hop", 100, "bytes", False),
    ("bgp_communities", 101, "uint32", True),
    ("as_path", 102, "uint32", True),
    ("mpls_ttl", 80, "uint32", True),
    ("mpls_label", 81, "uint32", True),
    ("mpls_ip", 82, "bytes", True),
    ("observation_domain_id", 70, "uint32", False),
    ("observation_point_id", 71, "uint32", False),
    ("layer_stack", 103, "enum:LayerStack", True),
    ("layer_size", 104, "uint32", True),
    ("ipv6_routing_header_addresses", 105, "bytes", True),
    ("ipv6_routing_header_seg_left", 106, "uint32", False),
]
GOFLOW2_ENUMS = {
    "FlowType": [("FLOWUNKNOWN", 0), ("SFLOW_5", 1), ("NETFLOW_V5", 2),
                 ("NETFLOW_V9", 3), ("IPFIX", 4)],
    "LayerStack": [("Ethernet", 0), ("IPv4", 1), ("IPv6", 2), ("TCP", 3), ("UDP", 4),
                   ("MPLS", 5), ("Dot1Q", 6), ("ICMP", 7), ("ICMPv6", 8), ("GRE", 9),
                   ("IPv6HeaderRouting", 10), ("IPv6HeaderFragment", 11), ("Geneve", 12),
                   ("Teredo", 13), ("Custom", 99)],
}
ADDRESS_FIELDS = {"sampler_address", "src_addr", "dst_addr", "next_hop", "bgp_next_hop",
                  "exporter_address"}


def goflow2_class():
    """A FlowMessage class built from goflow2's field table."""
    F = descriptor_pb2.FieldDescriptorProto
    types = {"uint64": F.TYPE_UINT64, "uint32": F.TYPE_UINT32, "bytes": F.TYPE_BYTES}
    file = descriptor_pb2.FileDescriptorProto(name="goflow2_view.proto", package="flowpb",
                                              syntax="proto3")
    msg = file.message_type.add(name="FlowMessage")
    for name, values in GOFLOW2_ENUMS.items():
        enum = msg.enum_type.add(name=name)
        for value_name, number in values:
            enum.value.add(name=value_name, number=number)
    for name, number, kind, repeated in GOFLOW2_FIELDS:
        field = msg.field.add(name=name, number=number,
                              label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
        if kind.startswith("enum:"):
            field.type = F.TYPE_ENUM
            field.type_name = ".flowpb.FlowMessage." + kind[5:]
        else:
            field.type = types[kind]
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("flowpb.FlowMessage"))


def flowtel_class(proto_root, out):
    """The FlowMessage class protoc generates from flowtel's .proto into the directory out."""
    code = protoc.main(["protoc", f"-I{proto_root}", f"--python_out={out}",
                        os.path.join(proto_root, "flowtel/flow/v1/flow.proto")])
    if code != 0:
        sys.exit(f"protoc failed with {code}")
    sys.path.insert(0, out)
    from flowtel.flow.v1 import flow_pb2  # noqa: E402  (generated above)
    return flow_pb2.FlowMessage


def delimited(data):
    """The messages of a varint length-delimited stream."""
    pos = 0
    while pos < len(data):
        length, shift = 0, 0
        while True:
            byte = data[pos]
            pos += 1
            length |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        yield data[pos:pos + length]
        pos += length


def as_dict(message):
    d = MessageToDict(message, preserving_proto_field_name=True,
                      always_print_fields_with_no_presence=True, use_integers_for_enums=False)
    for name in list(d):
        field = message.DESCRIPTOR.fields_by_name[name]
        value = getattr(message, name)
        if name in ADDRESS_FIELDS:
            d[name] = str(ipaddress.ip_address(value)) if value else ""
        elif field.type in (field.TYPE_UINT64, field.TYPE_UINT32):
            # JSON mapping writes 64-bit integers as strings: keep numbers.
            d[name] = [int(v) for v in value] if field.is_repeated else int(value)
    return d


def main():
    proto_root, streams = sys.argv[1], sys.argv[2:]
    with tempfile.TemporaryDirectory(prefix="flowtel-pb2-") as generated:
        flowtel, goflow2 = flowtel_class(proto_root, generated), goflow2_class()
        read(streams, flowtel, goflow2)


def read(streams, flowtel, goflow2):
    for i, path in enumerate(streams):
        with open(path, "rb") as f:
            data = f.read()
        for frame in delimited(data):
            a, b = flowtel(), goflow2()
            a.ParseFromString(frame)
            b.ParseFromString(frame)
            print(json.dumps({"stream": i, "flowtel": as_dict(a), "goflow2": as_dict(b)}))


if __name__ == "__main__":
    main()
