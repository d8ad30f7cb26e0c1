-- flowtel's per-flow records in ClickHouse: the table the Kafka ingestion (02-kafka.sql)
-- fills, and an hourly rollup kept by a materialized view. Run this file first.
--
-- Addresses are IPv6 columns (IPv4 as ::ffff:a.b.c.d); times are DateTime64(9) in UTC;
-- bytes and packets are as the exporter counted them: multiply by sampling_rate for the
-- traffic they stand for (the rollup does).

CREATE TABLE IF NOT EXISTS flows
(
    time_received         DateTime64(9, 'UTC'),
    time_flow_start       DateTime64(9, 'UTC'),
    time_flow_end         DateTime64(9, 'UTC'),
    type                  LowCardinality(String),
    sequence_num          UInt32,
    sampling_rate         UInt64,
    sampling_source       LowCardinality(String),
    sampler_address       IPv6,
    device_name           LowCardinality(String),
    exporter_address      IPv6,
    observation_domain_id UInt32,
    in_if                 UInt32,
    out_if                UInt32,
    in_if_name            LowCardinality(String),
    out_if_name           LowCardinality(String),
    direction             LowCardinality(String),
    bytes                 UInt64,
    packets               UInt64,
    etype                 UInt16,
    proto                 UInt8,
    src_addr              IPv6,
    dst_addr              IPv6,
    src_port              UInt16,
    dst_port              UInt16,
    src_net               UInt8,
    dst_net               UInt8,
    tcp_flags             UInt16,
    ip_tos                UInt8,
    ip_ttl                UInt8,
    forwarding_status     UInt8,
    icmp_type             UInt8,
    icmp_code             UInt8,
    vlan_id               UInt16,
    src_mac               UInt64,
    dst_mac               UInt64,
    next_hop              IPv6,
    -- The exporter's AS numbers, else the ASN database's (src_as_resolved in the schema).
    src_as                UInt32,
    dst_as                UInt32,
    as_path               Array(UInt32),
    bgp_communities       Array(UInt32),
    mpls_label            Array(UInt32),
    application           LowCardinality(String),
    src_country           LowCardinality(String),
    dst_country           LowCardinality(String),
    src_private           Bool,
    dst_private           Bool
)
ENGINE = MergeTree
PARTITION BY toDate(time_received)
ORDER BY (device_name, time_received)
TTL toDateTime(time_received) + INTERVAL 30 DAY;

-- Traffic per hour, device, interface pair, protocol and application, sampling-corrected.
-- A SummingMergeTree adds rows with the same key when parts merge: always query it with
-- sum() and GROUP BY.
CREATE TABLE IF NOT EXISTS flows_hourly
(
    hour        DateTime('UTC'),
    device_name LowCardinality(String),
    in_if       UInt32,
    in_if_name  LowCardinality(String),
    out_if      UInt32,
    out_if_name LowCardinality(String),
    proto       UInt8,
    application LowCardinality(String),
    bytes       UInt64,
    packets     UInt64,
    flows       UInt64
)
ENGINE = SummingMergeTree((bytes, packets, flows))
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, device_name, in_if, out_if, proto, application, in_if_name, out_if_name)
TTL hour + INTERVAL 400 DAY;

CREATE MATERIALIZED VIEW IF NOT EXISTS flows_hourly_mv TO flows_hourly AS
SELECT
    toStartOfHour(time_received) AS hour,
    device_name,
    in_if,
    in_if_name,
    out_if,
    out_if_name,
    proto,
    application,
    sum(bytes * sampling_rate) AS bytes,
    sum(packets * sampling_rate) AS packets,
    count() AS flows
FROM flows
GROUP BY hour, device_name, in_if, in_if_name, out_if, out_if_name, proto, application;
