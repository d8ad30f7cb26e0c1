#!/usr/bin/env bash
# Load test of a jump in traffic while a receive worker pauses: steady mixed traffic from
# `flowtel generate` long enough for the worker's pause to grow to its longest, then a NetFlow
# v9 blast on top of it at a far higher rate, starting within one pause (ARCHITECTURE.md, "How
# long a pause"). Prints the datagrams sent and received, the kernel's drops at flowtel's
# socket (`flowtel_socket_drops_total`) and the pauses taken. The default blast is a rate one
# worker keeps up with beside the steady traffic on a 2-core machine; at the sender's ceiling
# (about 300 000 datagrams/s there) the worker itself falls behind, whatever its pause.
#
#   examples/loadtest-jump.sh [STEADY_RECORDS_PER_SEC [BLAST_DATAGRAMS_PER_SEC]]
#                                                        (default: 20000 250000)
#
# One worker pinned to CPU 0, the generator and the blaster to CPU 1; the generator runs 12 s,
# the blast 3 s from its fifth second. Environment: FLOWTEL (binary, default
# target/release/flowtel; built if missing), COALESCE_US (the daemon's
# --receive-coalesce-us; default: flowtel's default), CAPTURE (default
# tests/fixtures/softflowd-v9.pcap). Needs a C compiler for examples/blast.c. Only loopback
# addresses are used. The daemon asks for its default 32 MiB receive buffer, which the kernel
# caps at net.core.rmem_max unless flowtel has CAP_NET_ADMIN (the script says when).
set -euo pipefail
cd "$(dirname "$0")/.."

FLOWTEL=${FLOWTEL:-target/release/flowtel}
CAPTURE=${CAPTURE:-tests/fixtures/softflowd-v9.pcap}
STEADY=${1:-20000}
BLAST_RATE=${2:-250000}
[ -x "$FLOWTEL" ] || cargo build --release -p flowtel
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cc -O2 -o "$dir/blast" examples/blast.c

rmem=$(cat /proc/sys/net/core/rmem_max 2>/dev/null || echo 0)
if [ "$rmem" -lt 33554432 ] && [ "$(id -u)" != 0 ]; then
  echo "note: net.core.rmem_max is $rmem: the receive buffer is capped at that (sysctl -w net.core.rmem_max=33554432)"
fi

free_port() { python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, getattr(socket, sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "$1"; }
metric() { # sum of a metric's samples in a /metrics body
  awk -v m="$1" '$1 ~ "^"m"({|$)" { s += $2 } END { printf "%.0f", s }' <<<"$2"
}

udp=$(free_port SOCK_DGRAM); http=$(free_port SOCK_STREAM)
coalesce=()
[ -z "${COALESCE_US:-}" ] || coalesce=(--receive-coalesce-us "$COALESCE_US")
taskset -c 0 "$FLOWTEL" run --listen "127.0.0.1:$udp" --prometheus-listen "127.0.0.1:$http" \
  --sink prometheus --rollup-interval 5 --workers 1 --log-level warn "${coalesce[@]}" \
  2>"$dir/daemon.log" &
pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$http/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
taskset -c 1 "$FLOWTEL" generate --target "127.0.0.1:$udp" --rate "$STEADY" --duration 12 \
  --exporters 12 --protocols v9,ipfix,sflow --report-interval 0 >/dev/null 2>"$dir/generate.out" &
gen=$!
sleep 5
taskset -c 1 "$dir/blast" send "$CAPTURE" 127.0.0.1 "$udp" "$BLAST_RATE" 3 >"$dir/blast.out"
wait "$gen"
sleep 1
body=$(curl -fs "http://127.0.0.1:$http/metrics")
kill -TERM "$pid"; wait "$pid" || true

generated=$(sed -nE 's/.*total ([0-9]+) datagrams.*/\1/p' "$dir/generate.out" | tail -1)
blasted=$(sed -nE 's/sent ([0-9]+) datagrams.*/\1/p' "$dir/blast.out")
blast_rate=$(sed -nE 's/.*\(([0-9]+)\/s\).*/\1/p' "$dir/blast.out")
printf '%-12s %-12s %-14s %-10s %-10s %-8s %-7s\n' \
  steady_recs/s blast_dgrams/s sent_dgrams recv_dgrams drops loss% pauses
sent=$((generated + blasted))
recv=$(metric flowtel_datagrams_total "$body")
drops=$(metric flowtel_socket_drops_total "$body")
printf '%-12s %-12s %-14s %-10s %-10s %-8s %-7s\n' "$STEADY" "$blast_rate" "$sent" "$recv" "$drops" \
  "$(awk -v s="$sent" -v r="$recv" 'BEGIN { printf "%.2f", (s > 0 ? 100 * (s - r) / s : 0) }')" \
  "$(metric flowtel_receive_pauses_total "$body")"
