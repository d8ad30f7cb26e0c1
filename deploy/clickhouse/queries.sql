-- Example queries over the tables of 01-flows.sql. Each starts with a `-- name:` line;
-- tests/records_readers.rs runs every one against chDB and checks its numbers. Add a time
-- filter on large tables, e.g. `WHERE time_received >= now() - INTERVAL 1 DAY`.

-- name: totals
-- Flows, and bytes and packets as exported and sampling-corrected.
SELECT
    count() AS flows,
    sum(bytes) AS exported_bytes,
    sum(packets) AS exported_packets,
    sum(bytes * sampling_rate) AS sampled_bytes,
    sum(packets * sampling_rate) AS sampled_packets
FROM flows;

-- name: top_talkers_per_hour
-- The ten source addresses sending the most (sampling-corrected) bytes in each hour.
SELECT
    toStartOfHour(time_received) AS hour,
    replaceRegexpOne(toString(src_addr), '^::ffff:', '') AS source,
    sum(bytes * sampling_rate) AS bytes,
    sum(packets * sampling_rate) AS packets
FROM flows
GROUP BY hour, src_addr
ORDER BY hour, bytes DESC, src_addr
LIMIT 10 BY hour;

-- name: traffic_per_exporter_and_interface
-- Sampling-corrected traffic per device and interface pair, from the hourly rollup.
SELECT
    device_name,
    in_if,
    in_if_name,
    out_if,
    out_if_name,
    sum(bytes) AS bytes,
    sum(packets) AS packets,
    sum(flows) AS flows
FROM flows_hourly
GROUP BY device_name, in_if, in_if_name, out_if, out_if_name
ORDER BY bytes DESC, device_name, in_if, out_if;
