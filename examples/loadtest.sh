#!/usr/bin/env bash
# Load test: `flowtel generate` blasts flow datagrams at `flowtel run` over loopback; prints what
# was sent and what the daemon received and decoded, kernel socket drops, the daemon's RSS and
# CPU time (user + system) and its records per CPU-second.
#
#   examples/loadtest.sh [RATE_RECORDS_PER_SEC ...]      (default: 50000 100000 200000 400000)
#
# Environment: DURATION (seconds per step, default 10), EXPORTERS (default 12), WORKERS
# (default: one per core), PROTOCOLS (default v9,ipfix,sflow), GEOIP (1: enrich with the demo's
# country and ASN databases, deploy/geoip/, which know every public address the generator
# draws), DAEMON_CPU and GENERATOR_CPU (pin each to a core, e.g. 0 and 1 with WORKERS=1, so
# that the two do not share one), FLOWTEL (binary, default target/release/flowtel; built if
# missing), FLOOR (1: before each rate, the same traffic to a receive-only loop,
# examples/blast.c's `sink`, pinned like the daemon: the kernel's share, printed as a `floor`
# row with its CPU time and records per CPU-second). Only loopback addresses are used.
set -euo pipefail
cd "$(dirname "$0")/.."

FLOWTEL=${FLOWTEL:-target/release/flowtel}
DURATION=${DURATION:-10}
EXPORTERS=${EXPORTERS:-12}
PROTOCOLS=${PROTOCOLS:-v9,ipfix,sflow}
WORKERS=${WORKERS:-0}
pin() { if [ -n "$1" ]; then echo taskset -c "$1"; fi; }
DAEMON_PIN=$(pin "${DAEMON_CPU:-}")
GENERATOR_PIN=$(pin "${GENERATOR_CPU:-}")
GEO_ARGS=()
if [ "${GEOIP:-0}" = 1 ]; then
  GEO_ARGS=(--geoip-country-db deploy/geoip/flowtel-demo-country.mmdb
    --geoip-asn-db deploy/geoip/flowtel-demo-asn.mmdb)
fi
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(50000 100000 200000 400000)
[ -x "$FLOWTEL" ] || cargo build --release -p flowtel
if [ "${FLOOR:-0}" = 1 ]; then
  floor_dir=$(mktemp -d)
  trap 'rm -rf "$floor_dir"' EXIT
  cc -O2 -o "$floor_dir/blast" examples/blast.c
fi

free_port() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
metric() { # sum of a metric's samples in a /metrics body
  awk -v m="$1" '$1 ~ "^"m"({|$)" { s += $2 } END { printf "%.0f", s }' <<<"$2"
}

tck=$(getconf CLK_TCK)
printf '%-10s %-12s %-12s %-12s %-12s %-12s %-10s %-8s %-9s %-7s %-10s\n' \
  rate/s sent_recs recv_recs sent_dgrams recv_dgrams recs/s drops loss% rss_MiB cpu_s recs/cpu_s
for rate in "${RATES[@]}"; do
  if [ "${FLOOR:-0}" = 1 ]; then
    udp=$(free_port SOCK_DGRAM)
    # Ends 2 s after the last datagram; its CPU is read as the generator ends.
    $DAEMON_PIN "$floor_dir/blast" sink 127.0.0.1 "$udp" 2 33554432 >"$floor_dir/sink.out" &
    sink=$!
    sleep 0.3
    gen=$($GENERATOR_PIN "$FLOWTEL" generate --target "127.0.0.1:$udp" --rate "$rate" --duration "$DURATION" \
      --exporters "$EXPORTERS" --protocols "$PROTOCOLS" --report-interval 0 2>&1 >/dev/null | tail -n 5)
    cpu=$(awk -v t="$tck" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$sink/stat")
    wait "$sink" || true
    read -r sent_dgrams sent_recs < <(sed -nE 's/.*total ([0-9]+) datagrams, ([0-9]+) flows.*/\1 \2/p' <<<"$gen" | tail -1)
    recv_dgrams=$(awk '{ print $2 }' "$floor_dir/sink.out")
    printf '%-10s %-12s %-12s %-12s %-12s %-12s %-10s %-8s %-9s %-7s %-10s\n' \
      floor "$sent_recs" - "$sent_dgrams" "$recv_dgrams" - - - - "$cpu" \
      "$(awk -v r="$sent_recs" -v c="$cpu" 'BEGIN { printf "%.0f", (c > 0 ? r / c : 0) }')"
  fi
  udp=$(free_port SOCK_DGRAM); http=$(free_port SOCK_STREAM)
  $DAEMON_PIN "$FLOWTEL" run --listen "127.0.0.1:$udp" --prometheus-listen "127.0.0.1:$http" \
    --sink prometheus --rollup-interval 5 --workers "$WORKERS" --recv-buffer-bytes 33554432 \
    --log-level warn "${GEO_ARGS[@]}" 2>/tmp/flowtel-loadtest.log &
  pid=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$http/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  gen=$($GENERATOR_PIN "$FLOWTEL" generate --target "127.0.0.1:$udp" --rate "$rate" --duration "$DURATION" \
    --exporters "$EXPORTERS" --protocols "$PROTOCOLS" --report-interval 0 2>&1 >/dev/null | tail -n 5)
  sleep 1
  body=$(curl -fs "http://127.0.0.1:$http/metrics")
  rss=$(awk '/VmHWM/ { printf "%.0f", $2/1024 }' "/proc/$pid/status")
  # utime + stime (fields 14 and 15; the command name in field 2 has no spaces here).
  cpu=$(awk -v t="$tck" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$pid/stat")
  kill -TERM "$pid"; wait "$pid" || true
  read -r sent_dgrams sent_recs < <(sed -nE 's/.*total ([0-9]+) datagrams, ([0-9]+) flows.*/\1 \2/p' <<<"$gen" | tail -1)
  sent_dgrams=${sent_dgrams:-?}; sent_recs=${sent_recs:-?}
  recv_recs=$(metric flowtel_records_total "$body")
  recv_dgrams=$(metric flowtel_datagrams_total "$body")
  drops=$(metric flowtel_socket_drops_total "$body")
  loss="?"
  if [[ "$sent_recs" =~ ^[0-9]+$ ]] && [ "$sent_recs" -gt 0 ]; then
    loss=$(awk -v s="$sent_recs" -v r="$recv_recs" 'BEGIN { printf "%.2f", 100*(s-r)/s }')
  fi
  printf '%-10s %-12s %-12s %-12s %-12s %-12s %-10s %-8s %-9s %-7s %-10s\n' \
    "$rate" "$sent_recs" "$recv_recs" "$sent_dgrams" "$recv_dgrams" \
    "$(awk -v r="$recv_recs" -v d="$DURATION" 'BEGIN { printf "%.0f", r/d }')" "$drops" "$loss" "$rss" \
    "$cpu" "$(awk -v r="$recv_recs" -v c="$cpu" 'BEGIN { printf "%.0f", (c > 0 ? r / c : 0) }')"
  echo "    generator: $(tail -n 1 <<<"$gen")"
done
