"""Size the ClickHouse tier for flowtel's records, with chDB (ClickHouse in process): ingest a
stream of flowtel's length-delimited messages through deploy/clickhouse's DDL (the Kafka engine
table swapped for the Null engine: same columns, same materialized views), and report the rows
per second of the ingestion (Protobuf parsing, the view's conversions, the MergeTree insert and
the hourly rollup), and the bytes per row on disk of `flows` and of the rollup.

    flowtel decode CAPTURE.pcap --format protobuf > flows.bin
    python3 examples/clickhouse-sizing.py flows.bin [THREADS]

THREADS (default 1) is ClickHouse's max_insert_threads / max_threads for the insert: the rows per
second per core is the figure with 1. Needs `pip install chdb`.
"""

import json
import os
import sys
import tempfile
import time

from chdb import session

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
# The DDL loader the tests use (deploy/clickhouse with the Kafka table on the Null engine).
sys.path.insert(0, os.path.join(ROOT, "crates/flowtel/tests/readers"))
from clickhouse_check import load_ddl  # noqa: E402


def main():
    stream = os.path.abspath(sys.argv[1])
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    proto = os.path.join(ROOT, "proto/flowtel/flow/v1/flow.proto")
    deploy = os.path.join(ROOT, "deploy/clickhouse")
    with tempfile.TemporaryDirectory(prefix="flowtel-ch-sizing-") as work:
        sess = session.Session(os.path.join(work, "db"))
        try:
            load_ddl(sess, deploy)
            start = time.monotonic()
            sess.query(
                f"INSERT INTO flows_queue SELECT * FROM file('{stream}', 'Protobuf') "
                f"SETTINGS format_schema = '{proto}:FlowMessage', max_insert_threads = {threads}, "
                f"max_threads = {threads}")
            took = time.monotonic() - start
            sess.query("OPTIMIZE TABLE flows FINAL")
            sess.query("OPTIMIZE TABLE flows_hourly FINAL")
            parts = sess.query(
                "SELECT table, sum(rows) AS rows, sum(data_compressed_bytes) AS compressed, "
                "sum(data_uncompressed_bytes) AS uncompressed FROM system.parts "
                "WHERE active AND database = currentDatabase() GROUP BY table ORDER BY table",
                "JSONEachRow")
            tables = {}
            for line in str(parts).splitlines():
                if line:
                    row = json.loads(line)
                    tables[row["table"]] = row
            flows = tables["flows"]
            rows = int(flows["rows"])
            print(f"ingested {rows} rows in {took:.2f} s with {threads} thread(s): "
                  f"{rows / took:.0f} rows/s")
            for name, t in sorted(tables.items()):
                r = int(t["rows"])
                print(f"{name}: {r} rows, {int(t['compressed']) / r:.1f} bytes/row compressed, "
                      f"{int(t['uncompressed']) / r:.1f} uncompressed; "
                      f"{int(t['compressed']) / rows:.2f} bytes per flow")
        finally:
            sess.close()


if __name__ == "__main__":
    main()
