#!/usr/bin/env bash
# Load test of the per-flow sinks beside metrics alone, on the same run: at each rate, `flowtel
# generate` blasts flow datagrams at `flowtel run` over loopback once per mode:
#   metrics    --sink prometheus alone (the metrics path);
#   flow-logs  plus --sink flow-logs, to an OTLP/gRPC receiver on loopback
#              (crates/flowtel/examples/otlp_receiver.rs, which decodes every request);
#   kafka      plus --sink kafka, to a tansu broker on loopback started afresh for the step
#              (it keeps every record in memory).
# Prints per mode and rate the records sent, received, and delivered by the per-flow sink (as
# the receiver or the daemon's own flowtel_sink_delivered_total counts them), kernel socket
# drops and records the sink dropped, the loss, the daemon's CPU time and records per
# CPU-second, the destination's CPU time; then the highest lossless rate of each mode
# (lossless: every record received and, with a per-flow sink, every record delivered).
#
#   examples/loadtest-records.sh [RATE_RECORDS_PER_SEC ...]   (default: 50000 100000 150000 200000 300000)
#
# Environment: MODES (default "metrics flow-logs kafka"), DURATION (seconds per step, default
# 10), EXPORTERS (default 12), PROTOCOLS (default v9,ipfix), WORKERS (default: one per core),
# PARTITIONS (kafka, default 3), COMPRESSION (kafka: none, gzip, lz4, snappy, zstd; default
# none), OTLP_COMPRESSION (flow-logs: gzip or none; default gzip), FLOWTEL (binary, default target/release/flowtel; built if missing). The kafka mode
# needs `tansu` (cargo install --locked tansu@0.6.0 --features dynostore). Only loopback
# addresses are used. Generator, collector and destination share the machine: on a small one,
# the destination's CPU is part of what limits a per-flow mode.
set -euo pipefail
cd "$(dirname "$0")/.."

FLOWTEL=${FLOWTEL:-target/release/flowtel}
MODES=${MODES:-metrics flow-logs kafka}
DURATION=${DURATION:-10}
EXPORTERS=${EXPORTERS:-12}
PROTOCOLS=${PROTOCOLS:-v9,ipfix}
WORKERS=${WORKERS:-0}
PARTITIONS=${PARTITIONS:-3}
COMPRESSION=${COMPRESSION:-none}
OTLP_COMPRESSION=${OTLP_COMPRESSION:-gzip}
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(50000 100000 150000 200000 300000)
[ -x "$FLOWTEL" ] || cargo build --release -p flowtel
RECEIVER=target/release/examples/otlp_receiver
if [[ " $MODES " == *" flow-logs "* ]] && [ ! -x "$RECEIVER" ]; then
  cargo build --release -p flowtel --example otlp_receiver
fi
if [[ " $MODES " == *" kafka "* ]] && ! command -v tansu >/dev/null; then
  echo "tansu is not on PATH: cargo install --locked tansu@0.6.0 --features dynostore" >&2
  exit 1
fi

free_port() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
metric() { # sum of a metric's samples in a /metrics body
  awk -v m="$1" '$1 ~ "^"m"({|$)" { s += $2 } END { printf "%.0f", s }' <<<"$2"
}
prefixed() { # sum of the samples whose series starts with $1 (labels included, e.g. `x{sink="kafka"`)
  awk -v k="$1" 'index($1, k) == 1 { s += $2 } END { printf "%.0f", s }' <<<"$2"
}
cpu_of() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
log=$(mktemp -d)

printf '%-9s %-8s %-10s %-10s %-10s %-7s %-8s %-7s %-7s %-10s %-7s\n' \
  mode rate/s sent recv delivered drops s_drops loss% cpu_s recs/cpu_s dest_s
declare -A best=()
for mode in $MODES; do best[$mode]=0; done
for rate in "${RATES[@]}"; do
  for mode in $MODES; do
    udp=$(free_port SOCK_DGRAM); http=$(free_port SOCK_STREAM)
    sinks=(--sink prometheus)
    dest_pid=
    case "$mode" in
      flow-logs)
        port=$(free_port SOCK_STREAM)
        "$RECEIVER" "127.0.0.1:$port" >"$log/receiver.out" 2>&1 &
        dest_pid=$!
        for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
        sinks+=(--sink flow-logs --flow-logs-endpoint "http://127.0.0.1:$port" --otlp-compression "$OTLP_COMPRESSION")
        ;;
      kafka)
        port=$(free_port SOCK_STREAM)
        tansu broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
          --storage-engine memory://tansu/ >"$log/tansu.log" 2>&1 &
        dest_pid=$!
        for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
        tansu topic create flows --broker "tcp://127.0.0.1:$port" --partitions "$PARTITIONS" >/dev/null
        sinks+=(--sink kafka --kafka-brokers "127.0.0.1:$port" --kafka-compression "$COMPRESSION")
        ;;
    esac
    "$FLOWTEL" run --listen "127.0.0.1:$udp" --prometheus-listen "127.0.0.1:$http" "${sinks[@]}" \
      --rollup-interval 5 --workers "$WORKERS" --recv-buffer-bytes 33554432 \
      --log-level warn 2>"$log/flowtel.log" &
    pid=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$http/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
    gen=$("$FLOWTEL" generate --target "127.0.0.1:$udp" --rate "$rate" --duration "$DURATION" \
      --exporters "$EXPORTERS" --protocols "$PROTOCOLS" --report-interval 0 2>&1 >/dev/null | tail -n 5)
    # Let the per-flow sink empty its queue (at most 30 s).
    for _ in $(seq 300); do
      body=$(curl -fs "http://127.0.0.1:$http/metrics")
      [ "$(prefixed "flowtel_sink_queue_depth{sink=\"$mode\"}" "$body")" = 0 ] && break
      sleep 0.1
    done
    sleep 1
    body=$(curl -fs "http://127.0.0.1:$http/metrics")
    cpu=$(cpu_of "$pid")
    kill -TERM "$pid"; wait "$pid" || true
    dest_cpu=-
    if [ -n "$dest_pid" ]; then dest_cpu=$(cpu_of "$dest_pid"); kill "$dest_pid"; wait "$dest_pid" 2>/dev/null || true; fi
    read -r _ sent < <(sed -nE 's/.*total ([0-9]+) datagrams, ([0-9]+) flows.*/\1 \2/p' <<<"$gen" | tail -1)
    sent=${sent:-0}
    recv=$(metric flowtel_records_total "$body")
    drops=$(metric flowtel_socket_drops_total "$body")
    case "$mode" in
      metrics) delivered=-; sdrops=-; arrived=$recv ;;
      flow-logs) # what the receiver counted, not what the daemon believes it sent
        delivered=$(sed -nE 's/.*log_records=([0-9]+).*/\1/p' "$log/receiver.out" | tail -1)
        delivered=${delivered:-0}
        sdrops=$(prefixed 'flowtel_sink_dropped_total{sink="flow-logs"' "$body"); arrived=$delivered ;;
      *) delivered=$(prefixed "flowtel_sink_delivered_total{sink=\"$mode\"}" "$body")
        sdrops=$(prefixed "flowtel_sink_dropped_total{sink=\"$mode\"" "$body"); arrived=$delivered ;;
    esac
    loss=$(awk -v s="$sent" -v r="$arrived" 'BEGIN { printf "%.2f", (s > 0 ? 100*(s-r)/s : 0) }')
    printf '%-9s %-8s %-10s %-10s %-10s %-7s %-8s %-7s %-7s %-10s %-7s\n' \
      "$mode" "$rate" "$sent" "$recv" "$delivered" "$drops" "$sdrops" "$loss" "$cpu" \
      "$(awk -v r="$recv" -v c="$cpu" 'BEGIN { printf "%.0f", (c > 0 ? r / c : 0) }')" "$dest_cpu"
    if [ "$sent" -gt 0 ] && [ "$arrived" -ge "$sent" ] && [ "$rate" -gt "${best[$mode]}" ]; then
      best[$mode]=$rate
    fi
  done
done
echo
for mode in $MODES; do echo "highest lossless rate, $mode: ${best[$mode]} records/s"; done
rm -rf "$log"
