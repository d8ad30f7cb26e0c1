#!/usr/bin/env bash
# Load test of the kafka sink beside metrics alone, on the same run: at each rate, `flowtel
# generate` blasts flow datagrams at `flowtel run` over loopback twice, first with the metrics
# sink alone (`--sink prometheus`), then with the kafka sink added (`--sink prometheus --sink
# kafka`, to a tansu broker on loopback started afresh for the step: it keeps every record in
# memory). Prints per mode and rate the records sent, received and delivered to Kafka, kernel
# socket drops and records the kafka sink dropped, the loss, the daemon's CPU time and records
# per CPU-second (and the broker's CPU time), the mean produce latency; then the highest
# lossless rate of each mode (lossless: every record received and, with Kafka, every record
# acknowledged by the broker).
#
#   examples/loadtest-kafka.sh [RATE_RECORDS_PER_SEC ...]   (default: 50000 100000 150000 200000 300000)
#
# Environment: DURATION (seconds per step, default 10), EXPORTERS (default 12), PROTOCOLS
# (default v9,ipfix), WORKERS (default: one per core), PARTITIONS (default 3), COMPRESSION
# (none, gzip, lz4, snappy, zstd; default none), FLOWTEL (binary, default target/release/flowtel;
# built if missing). Needs `tansu` (cargo install --locked tansu@0.6.0 --features dynostore)
# and curl. Only loopback addresses are used. Generator, collector and broker share the
# machine: on a small one, the broker's CPU is part of what limits the Kafka mode.
set -euo pipefail
cd "$(dirname "$0")/.."

FLOWTEL=${FLOWTEL:-target/release/flowtel}
DURATION=${DURATION:-10}
EXPORTERS=${EXPORTERS:-12}
PROTOCOLS=${PROTOCOLS:-v9,ipfix}
WORKERS=${WORKERS:-0}
PARTITIONS=${PARTITIONS:-3}
COMPRESSION=${COMPRESSION:-none}
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(50000 100000 150000 200000 300000)
[ -x "$FLOWTEL" ] || cargo build --release -p flowtel
command -v tansu >/dev/null || { echo "tansu is not on PATH: cargo install --locked tansu@0.6.0 --features dynostore" >&2; exit 1; }

free_port() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
metric() { # sum of a metric's samples in a /metrics body
  awk -v m="$1" '$1 ~ "^"m"({|$)" { s += $2 } END { printf "%.0f", s }' <<<"$2"
}
prefixed() { # sum of the samples whose series starts with $1 (labels included, e.g. `x{sink="kafka"`)
  awk -v k="$1" 'index($1, k) == 1 { s += $2 } END { printf "%.0f", s }' <<<"$2"
}
cpu_of() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }

printf '%-8s %-8s %-10s %-10s %-10s %-7s %-9s %-7s %-7s %-10s %-8s %-9s\n' \
  mode rate/s sent recv kafka drops k_drops loss% cpu_s recs/cpu_s tansu_s produce_ms
declare -A best=([metrics]=0 [kafka]=0)
for rate in "${RATES[@]}"; do
  for mode in metrics kafka; do
    udp=$(free_port SOCK_DGRAM); http=$(free_port SOCK_STREAM)
    sinks=(--sink prometheus)
    tansu_pid=
    if [ "$mode" = kafka ]; then
      kport=$(free_port SOCK_STREAM)
      tansu broker --listener-url "tcp://127.0.0.1:$kport" --advertised-listener-url "tcp://127.0.0.1:$kport" \
        --storage-engine memory://tansu/ >/tmp/flowtel-loadtest-tansu.log 2>&1 &
      tansu_pid=$!
      for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$kport") 2>/dev/null && break; sleep 0.1; done
      tansu topic create flows --broker "tcp://127.0.0.1:$kport" --partitions "$PARTITIONS" >/dev/null
      sinks+=(--sink kafka --kafka-brokers "127.0.0.1:$kport" --kafka-compression "$COMPRESSION")
    fi
    "$FLOWTEL" run --listen "127.0.0.1:$udp" --prometheus-listen "127.0.0.1:$http" "${sinks[@]}" \
      --rollup-interval 5 --workers "$WORKERS" --recv-buffer-bytes 33554432 \
      --log-level warn 2>/tmp/flowtel-loadtest-kafka.log &
    pid=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$http/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
    gen=$("$FLOWTEL" generate --target "127.0.0.1:$udp" --rate "$rate" --duration "$DURATION" \
      --exporters "$EXPORTERS" --protocols "$PROTOCOLS" --report-interval 0 2>&1 >/dev/null | tail -n 5)
    # Let the kafka sink empty its queue (at most 30 s).
    for _ in $(seq 300); do
      body=$(curl -fs "http://127.0.0.1:$http/metrics")
      [ "$(prefixed 'flowtel_sink_queue_depth{sink="kafka"}' "$body")" = 0 ] && break
      sleep 0.1
    done
    sleep 1
    body=$(curl -fs "http://127.0.0.1:$http/metrics")
    cpu=$(cpu_of "$pid")
    kill -TERM "$pid"; wait "$pid" || true
    tansu_cpu=-
    if [ -n "$tansu_pid" ]; then tansu_cpu=$(cpu_of "$tansu_pid"); kill "$tansu_pid"; wait "$tansu_pid" 2>/dev/null || true; fi
    read -r _ sent < <(sed -nE 's/.*total ([0-9]+) datagrams, ([0-9]+) flows.*/\1 \2/p' <<<"$gen" | tail -1)
    sent=${sent:-0}
    recv=$(metric flowtel_records_total "$body")
    drops=$(metric flowtel_socket_drops_total "$body")
    kafka=$(prefixed 'flowtel_sink_delivered_total{sink="kafka"}' "$body")
    kdrops=$(prefixed 'flowtel_sink_dropped_total{sink="kafka"' "$body")
    requests=$(metric flowtel_kafka_produce_requests_total "$body")
    produce_us=$(metric flowtel_kafka_produce_time_microseconds_total "$body")
    if [ "$mode" = kafka ]; then
      arrived=$kafka
      latency=$(awk -v t="$produce_us" -v n="$requests" 'BEGIN { printf "%.2f", (n > 0 ? t / n / 1000 : 0) }')
    else
      arrived=$recv; kafka=-; kdrops=-; latency=-
    fi
    loss=$(awk -v s="$sent" -v r="$arrived" 'BEGIN { printf "%.2f", (s > 0 ? 100*(s-r)/s : 0) }')
    printf '%-8s %-8s %-10s %-10s %-10s %-7s %-9s %-7s %-7s %-10s %-8s %-9s\n' \
      "$mode" "$rate" "$sent" "$recv" "$kafka" "$drops" "$kdrops" "$loss" "$cpu" \
      "$(awk -v r="$recv" -v c="$cpu" 'BEGIN { printf "%.0f", (c > 0 ? r / c : 0) }')" "$tansu_cpu" "$latency"
    if [ "$sent" -gt 0 ] && [ "$arrived" -ge "$sent" ] && [ "$rate" -gt "${best[$mode]}" ]; then
      best[$mode]=$rate
    fi
  done
done
echo
echo "highest lossless rate (records/s): metrics only ${best[metrics]}, with the kafka sink ${best[kafka]}"
