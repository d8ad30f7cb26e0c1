"""Run deploy/clickhouse's DDL in chDB (ClickHouse in process) unchanged but for the broker,
topic and schema path, so that its Kafka engine table consumes a real topic, and answer the
example queries once the flows table holds the expected number of rows.

Usage: clickhouse_kafka.py FLOW_PROTO DEPLOY_DIR BROKER TOPIC ROWS

Prints {"query name": [rows], ..., "exporters": [...]} as clickhouse_check.py does, plus the
exporter addresses the materialized view wrote. Fails if ROWS rows do not arrive within 60 s.
"""

import json
import os
import re
import sys
import tempfile
import time

from chdb import session

from clickhouse_check import run_queries, statements


def main():
    proto, deploy, broker, topic, rows = sys.argv[1:6]
    rows = int(rows)
    with open(os.path.join(deploy, "02-kafka.sql")) as f:
        kafka = f.read()
    # Only the deployment-specific settings change: where the broker is, which topic, and the
    # schema's absolute path (chDB resolves a relative one against its working directory).
    for setting, value in [("kafka_broker_list", broker), ("kafka_topic_list", topic),
                           ("kafka_schema", os.path.abspath(proto) + ":FlowMessage")]:
        kafka, n = re.subn(rf"{setting}\s*=\s*'[^']*'", f"{setting} = '{value}'", kafka)
        if n != 1:
            sys.exit(f"02-kafka.sql: expected one {setting}")
    with tempfile.TemporaryDirectory(prefix="flowtel-chdb-kafka-") as work:
        sess = session.Session(os.path.join(work, "db"))
        try:
            sess.query("SET session_timezone = 'UTC'")
            with open(os.path.join(deploy, "01-flows.sql")) as f:
                for s in statements(f.read()):
                    sess.query(s)
            for s in statements(kafka):
                try:
                    sess.query(s)
                except Exception as e:  # chDB reports a spurious error creating a Kafka table
                    if "Shutdown was called" not in str(e):
                        raise
            tables = str(sess.query("SELECT name FROM system.tables WHERE database = currentDatabase()", "CSV"))
            for t in ("flows_queue", "flows_queue_mv"):
                if f'"{t}"' not in tables:
                    sys.exit(f"{t} was not created: {tables}")
            deadline = time.monotonic() + 60
            count = 0
            while time.monotonic() < deadline:
                count = int(str(sess.query("SELECT count() FROM flows", "CSV")).strip())
                if count >= rows:
                    break
                time.sleep(0.5)
            if count != rows:
                sys.exit(f"flows holds {count} rows, expected {rows}")
            time.sleep(2)  # a duplicate would arrive now
            results = run_queries(sess, deploy)
            out = sess.query("SELECT DISTINCT replaceRegexpOne(toString(exporter_address), '^::ffff:', '') "
                             "AS exporter FROM flows ORDER BY exporter", "JSONEachRow")
            results["exporters"] = [json.loads(line)["exporter"] for line in str(out).splitlines() if line]
            print(json.dumps(results))
        finally:
            sess.close()


if __name__ == "__main__":
    main()
