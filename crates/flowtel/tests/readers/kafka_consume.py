"""Read every record of Kafka topics from their first offset with kafka-python, a Kafka client
that is not flowtel's, and print one JSON object per record.

Usage: kafka_consume.py [--tls CA_FILE CERT_FILE KEY_FILE] BROKER TOPIC=COUNT [TOPIC=COUNT ...]

Every partition of each topic is read from offset 0 until COUNT records of that topic have
arrived, then for two more seconds so that a record sent twice would show, at most 60 s in all
(the broker's end offsets are not trusted: records are counted as they arrive). Each line:
{"topic", "partition", "offset", "key" (text), "value" (hex), "key_partition"}, where
key_partition is kafka-python's own murmur2 partition of the key (the Java client's default
partitioner), for the test to compare with the partition the record is in.
"""

import json
import sys
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2


def main():
    args = sys.argv[1:]
    tls = {}
    if args[0] == "--tls":
        tls = {"security_protocol": "SSL", "ssl_cafile": args[1], "ssl_certfile": args[2],
               "ssl_keyfile": args[3]}
        args = args[4:]
    broker = args[0]
    wanted = {}
    for arg in args[1:]:
        topic, _, count = arg.partition("=")
        wanted[topic] = int(count)
    consumer = KafkaConsumer(
        bootstrap_servers=broker,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=20000,
        **tls,
    )
    partitions = {}
    deadline = time.monotonic() + 60
    for topic in wanted:
        while True:
            found = consumer.partitions_for_topic(topic)
            if found:
                partitions[topic] = sorted(found)
                break
            if time.monotonic() > deadline:
                sys.exit(f"topic {topic} has no partitions")
            consumer.topics()  # refresh metadata
            time.sleep(0.2)
    assignment = [TopicPartition(t, p) for t, ps in partitions.items() for p in ps]
    consumer.assign(assignment)
    consumer.seek_to_beginning(*assignment)
    got = {t: 0 for t in wanted}
    reached_at = None
    while time.monotonic() < deadline:
        if all(got[t] >= n for t, n in wanted.items()):
            reached_at = reached_at or time.monotonic()
            if time.monotonic() - reached_at >= 2:
                break
        batches = consumer.poll(timeout_ms=200)
        for tp, messages in batches.items():
            for m in messages:
                got[tp.topic] += 1
                key = m.key or b""
                print(json.dumps({
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "offset": m.offset,
                    "key": key.decode(),
                    "value": (m.value or b"").hex(),
                    "key_partition": (murmur2(key) & 0x7FFFFFFF) % len(partitions[tp.topic]),
                }))
    consumer.close()
    print(json.dumps({"counts": got}), file=sys.stderr)


if __name__ == "__main__":
    main()
