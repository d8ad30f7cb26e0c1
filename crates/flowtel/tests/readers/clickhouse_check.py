"""Run deploy/clickhouse's DDL and example queries in chDB (ClickHouse in process) over a
file of flowtel's length-delimited protobuf messages.

Usage: clickhouse_check.py FLOW_PROTO DEPLOY_DIR STREAM

The Kafka engine needs a broker, so flows_queue is created with the Null engine instead
(same columns, same materialized view); the stream is inserted into it with the Protobuf
format and flow.proto as the format schema, which feeds flows and, through it, the hourly
rollup. Prints {"query name": [rows as JSON objects], ...} for every `-- name:` query of
queries.sql, DateTimes as Unix seconds.
"""

import json
import os
import re
import sys
import tempfile

from chdb import session


def statements(sql):
    """The statements of a SQL file (comments dropped, split at `;` ending a line)."""
    text = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*\n", text + "\n") if s.strip()]


def main():
    proto, deploy, stream = sys.argv[1:4]
    with tempfile.TemporaryDirectory(prefix="flowtel-chdb-") as work:
        sess = session.Session(os.path.join(work, "db"))
        try:
            print(json.dumps(run(sess, proto, deploy, stream)))
        finally:
            sess.close()


def load_ddl(sess, deploy):
    """deploy/clickhouse's tables and views, with flows_queue on the Null engine."""
    sess.query("SET session_timezone = 'UTC'")
    with open(os.path.join(deploy, "01-flows.sql")) as f:
        for s in statements(f.read()):
            sess.query(s)
    with open(os.path.join(deploy, "02-kafka.sql")) as f:
        kafka = f.read()
    null_engine, n = re.subn(r"ENGINE\s*=\s*Kafka\s+SETTINGS[^;]*;", "ENGINE = Null;", kafka)
    if n != 1:
        sys.exit("02-kafka.sql: expected one Kafka engine table")
    for s in statements(null_engine):
        sess.query(s)


def run(sess, proto, deploy, stream):
    load_ddl(sess, deploy)
    sess.query(
        f"INSERT INTO flows_queue SELECT * FROM file('{os.path.abspath(stream)}', 'Protobuf') "
        f"SETTINGS format_schema = '{os.path.abspath(proto)}:FlowMessage'")
    return run_queries(sess, deploy)


def run_queries(sess, deploy):
    """{"query name": [rows]} for every `-- name:` query of deploy/queries.sql."""
    results = {}
    with open(os.path.join(deploy, "queries.sql")) as f:
        queries = f.read()
    for block in re.split(r"^-- name: ", queries, flags=re.M)[1:]:
        name, _, body = block.partition("\n")
        [query] = statements(body)
        out = sess.query(query + " SETTINGS date_time_output_format = 'unix_timestamp', "
                         "output_format_json_quote_64bit_integers = 0", "JSONEachRow")
        results[name.strip()] = [json.loads(line) for line in str(out).splitlines() if line]
    return results


if __name__ == "__main__":
    main()
