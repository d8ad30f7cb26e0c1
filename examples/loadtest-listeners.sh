#!/usr/bin/env bash
# Load test of the receive path with several listen addresses: a capture is blasted at one
# address while the others stay idle, for 1, 2 and 3 listen addresses (IPv4 and IPv6 mixed)
# and 1 and 2 workers, at increasing rates. Prints, per set-up and rate, the datagrams sent,
# received and dropped by the kernel, and the highest rate received without loss.
#
#   examples/loadtest-listeners.sh [RATE_DATAGRAMS_PER_SEC ...]   (default: 10000 ... 100000)
#
# Environment: DURATION (seconds per step, default 5), CAPTURE (default
# tests/fixtures/softflowd-v9.pcap: NetFlow v9 from softflowd, about 25 records per datagram),
# LISTENERS (default "1 2 3"), WORKERS (default "1 2"), FLOWTEL (binary, default
# target/release/flowtel; built if missing). Needs a C compiler for examples/blast.c. Only
# loopback addresses are used. The kernel caps receive buffers at net.core.rmem_max: the
# script requests 32 MiB and says when the cap is lower (`sysctl -w
# net.core.rmem_max=33554432` as root lifts it).
set -euo pipefail
cd "$(dirname "$0")/.."

FLOWTEL=${FLOWTEL:-target/release/flowtel}
DURATION=${DURATION:-5}
CAPTURE=${CAPTURE:-tests/fixtures/softflowd-v9.pcap}
LISTENERS=${LISTENERS:-1 2 3}
WORKERS=${WORKERS:-1 2}
RATES=("$@")
[ ${#RATES[@]} -gt 0 ] || RATES=(10000 20000 40000 60000 80000 100000)
[ -x "$FLOWTEL" ] || cargo build --release -p flowtel
BLAST=${BLAST:-$(mktemp -d)/blast}
[ -x "$BLAST" ] || cc -O2 -o "$BLAST" examples/blast.c

rmem=$(cat /proc/sys/net/core/rmem_max 2>/dev/null || echo 0)
if [ "$rmem" -lt 33554432 ]; then
  echo "note: net.core.rmem_max is $rmem: receive buffers are capped at that (sysctl -w net.core.rmem_max=33554432)"
fi

free_port() { python3 -c 'import socket,sys; s=socket.socket(getattr(socket, sys.argv[2]), getattr(socket, sys.argv[1])); s.bind((sys.argv[3],0)); print(s.getsockname()[1])' "$1" "$2" "$3"; }
metric() { # sum of a metric's samples in a /metrics body
  awk -v m="$1" '$1 ~ "^"m"({|$)" { s += $2 } END { printf "%.0f", s }' <<<"$2"
}

printf '%-9s %-7s %-9s %-10s %-10s %-9s %-7s\n' listeners workers rate/s sent received drops loss%
summary=()
for workers in $WORKERS; do
  for listeners in $LISTENERS; do
    best=0
    for rate in "${RATES[@]}"; do
      busy=$(free_port SOCK_DGRAM AF_INET 127.0.0.1)
      args=(--listen "127.0.0.1:$busy")
      # The idle addresses: IPv6 loopback first, then another IPv4 port.
      [ "$listeners" -ge 2 ] && args+=(--listen "[::1]:$(free_port SOCK_DGRAM AF_INET6 ::1)")
      [ "$listeners" -ge 3 ] && args+=(--listen "127.0.0.1:$(free_port SOCK_DGRAM AF_INET 127.0.0.1)")
      http=$(free_port SOCK_STREAM AF_INET 127.0.0.1)
      "$FLOWTEL" run "${args[@]}" --prometheus-listen "127.0.0.1:$http" --sink prometheus \
        --rollup-interval 5 --workers "$workers" --recv-buffer-bytes 33554432 --log-level error \
        2>/dev/null &
      pid=$!
      for _ in $(seq 100); do curl -fs "http://127.0.0.1:$http/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
      sent=$("$BLAST" send "$CAPTURE" 127.0.0.1 "$busy" "$rate" "$DURATION" | awk '{ print $2 }')
      sleep 1
      body=$(curl -fs "http://127.0.0.1:$http/metrics")
      kill -TERM "$pid"; wait "$pid" || true
      received=$(metric flowtel_datagrams_total "$body")
      drops=$(metric flowtel_socket_drops_total "$body")
      loss=$(awk -v s="$sent" -v r="$received" 'BEGIN { printf "%.2f", (s > 0 ? 100*(s-r)/s : 0) }')
      printf '%-9s %-7s %-9s %-10s %-10s %-9s %-7s\n' "$listeners" "$workers" "$rate" "$sent" "$received" "$drops" "$loss"
      [ "$received" -ge "$sent" ] && [ "$rate" -gt "$best" ] && best=$rate
    done
    summary+=("$(printf '%-9s %-7s %s' "$listeners" "$workers" "$best")")
  done
done
echo
echo "highest lossless rate (datagrams/s) on the busy address:"
printf '%-9s %-7s %s\n' listeners workers rate/s
printf '%s\n' "${summary[@]}"
