#!/usr/bin/env bash
# Side-by-side CPU cost and lossless rate of flow collectors on this machine: a receive-only
# loop (the kernel's floor), flowtel, pmacct's nfacctd and nfdump's nfcapd, fed the same
# NetFlow v9 capture by the same sendmmsg blaster, sender and collector pinned to different
# cores.
#
#   examples/bench-peers.sh
#
# Environment:
#   CAPTURE   NetFlow v9/IPFIX capture to replay (default tests/fixtures/softflowd-v9.pcap, made
#             by softflowd: about 25 records per datagram; tests/fixtures/regenerate.sh makes it)
#   RATE      datagrams/s of the CPU-cost run (default 50000)
#   SECONDS_PER_RUN  duration of each run (default 6)
#   RATES     rates tried for the lossless search (default "50000 100000 150000 200000 250000 300000")
#   RUNS      repetitions of the CPU-cost run (default 3)
#   COLLECTOR_CPU, SENDER_CPU  cores to pin to (default 0 and 1)
#   FLOWTEL   binary (default target/release/flowtel, built if missing)
#   FLOWTEL_PGO  a profile-guided build (deploy/build-pgo.sh) to run too, as the row
#             flowtel-pgo after flowtel, with the same settings (default: none)
#   COLLECTORS  which to run, in order (default "floor flowtel nfacctd nfcapd", with
#             flowtel-pgo after flowtel when FLOWTEL_PGO is set)
#
# What each collector does, so the comparison is fair and readable:
#   floor    blast's receive-only recvmmsg loop: receives and counts datagrams, nothing else
#   flowtel  `flowtel run` with the default rollup (9 dimensions, top-K 1000, exact bytes) and
#            the prometheus sink, one worker (flowtel-pgo: the same, profile-guided build)
#   nfacctd  pmacct 1.7 with the print plugin aggregating by protocol only (the least work it
#            can do per record), printing every 60 s
#   nfcapd   nfdump's collector writing every record to its binary files, rotated every 60 s
# Every socket asks for a 32 MiB receive buffer (flowtel's default). When net.core.rmem_max is
# lower, the script raises it for the run as root and puts it back at exit (after a SIGKILL, at
# the start of the next run); where it cannot, every buffer is capped alike (flowtel runs
# without CAP_NET_ADMIN, with which it would exceed the cap; the script says when it is
# capped). Loss is the kernel's count of datagrams dropped at the collector's socket
# (/proc/net/udp "drops"), the same for every collector. CPU time is the user + system time
# over the run of the collector's processes (nfacctd's core process and its print plugin) and
# all their threads. Peak RSS is the same processes' VmHWM, summed, in the run at the highest
# lossless rate.
# Needs root for apt when pmacct, nfdump or softflowd are missing; only loopback is used.
set -euo pipefail
cd "$(dirname "$0")/.."

CAPTURE=${CAPTURE:-tests/fixtures/softflowd-v9.pcap}
RATE=${RATE:-50000}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-6}
RATES=${RATES:-50000 100000 150000 200000 250000 300000}
RUNS=${RUNS:-3}
COLLECTOR_CPU=${COLLECTOR_CPU:-0}
SENDER_CPU=${SENDER_CPU:-1}
FLOWTEL=${FLOWTEL:-target/release/flowtel}
FLOWTEL_PGO=${FLOWTEL_PGO:-}
COLLECTORS=${COLLECTORS:-floor flowtel ${FLOWTEL_PGO:+flowtel-pgo }nfacctd nfcapd}
BUFFER=33554432

need=()
command -v nfacctd >/dev/null || need+=(pmacct)
command -v nfcapd >/dev/null || need+=(nfdump)
command -v softflowd >/dev/null || need+=(softflowd)
if [ ${#need[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ -x "$FLOWTEL" ] || cargo build --release -p flowtel
if [ -n "$FLOWTEL_PGO" ] && [ ! -x "$FLOWTEL_PGO" ]; then
  echo "FLOWTEL_PGO=$FLOWTEL_PGO is not an executable (deploy/build-pgo.sh makes one)" >&2
  exit 1
fi
work=$(mktemp -d)
# A run killed by SIGKILL cannot put rmem_max back: the value it raised from waits in /run
# (emptied at boot, when the sysctl resets too) and the next run puts it back first.
rmem_saved=/run/flowtel-bench-peers.rmem_max
if [ -f "$rmem_saved" ] && [ "$(id -u)" = 0 ]; then
  if [ "$(cat /proc/sys/net/core/rmem_max)" = "$BUFFER" ] &&
    cat "$rmem_saved" >/proc/sys/net/core/rmem_max; then
    echo "note: net.core.rmem_max put back to $(cat "$rmem_saved"), left raised by a run that was killed"
  fi
  rm -f "$rmem_saved"
fi
rmem=$(cat /proc/sys/net/core/rmem_max)
restore_rmem=
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"
  [ -z "$restore_rmem" ] || { echo "$restore_rmem" >/proc/sys/net/core/rmem_max; rm -f "$rmem_saved"; }' EXIT
cc -O2 -o "$work/blast" examples/blast.c
# Without CAP_NET_ADMIN, so that flowtel's buffer is capped like the others' (SO_RCVBUFFORCE).
as_capped=()
if [ "$rmem" -lt "$BUFFER" ]; then
  if [ "$(id -u)" = 0 ] && echo "$rmem" 2>/dev/null >"$rmem_saved" &&
    echo "$BUFFER" 2>/dev/null >/proc/sys/net/core/rmem_max; then
    restore_rmem=$rmem
    echo "note: net.core.rmem_max raised from $rmem to $BUFFER for the run (put back at exit)"
  else
    rm -f "$rmem_saved" 2>/dev/null || true
    echo "note: net.core.rmem_max is $rmem: every buffer is capped below 32 MiB (sysctl -w net.core.rmem_max=$BUFFER)"
    [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null &&
      as_capped=(setpriv --bounding-set -net_admin --inh-caps -net_admin --)
  fi
fi
records_per_datagram=$("$FLOWTEL" decode "$CAPTURE" --format json 2>&1 >/dev/null |
  awk '/datagrams/ && /decoded/ { d = $2 } /records/ && /flows/ { r = $2 } END { printf "%.1f", r / d }')

free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Datagrams dropped by the kernel at the sockets bound to 127.0.0.1:PORT (column 13 of
# /proc/net/udp; the port is the hex after the colon of column 2).
drops() { awk -v p="$(printf ':%04X' "$1")" 'NR > 1 && substr($2, length($2) - 4) == p { d += $13 } END { print d + 0 }' /proc/net/udp; }
# Process $1 and every process under it (three levels): nfacctd runs each plugin as a child
# process of its core process.
tree_of() {
  local pids=" $1 " p
  for _ in 1 2 3; do
    for p in $(ps -e -o pid=,ppid= | awk -v s="$pids" 'index(s, " " $2 " ") { print $1 }'); do
      case $pids in *" $p "*) ;; *) pids="$pids$p " ;; esac
    done
  done
  echo $pids
}
# CPU seconds (user + system) of process $1 and every process under it.
cpu_of() {
  local p
  for p in $(tree_of "$1"); do cat "/proc/$p/stat" 2>/dev/null; done |
    awk -v t="$(getconf CLK_TCK)" '{ c += $14 + $15 } END { printf "%.2f", c / t }'
}
# Stop process $1 and every process under it: SIGINT (nfacctd blocks SIGTERM while it runs
# and shuts down on SIGINT), then SIGKILL for whatever is left after 2 s.
stop() {
  local pids p st
  pids=$(tree_of "$1")
  kill -INT $pids 2>/dev/null || true
  for _ in $(seq 20); do
    for p in $pids; do
      st=$(ps -o stat= -p "$p" 2>/dev/null) && [ "${st#Z}" = "$st" ] && break # alive, not a zombie
      p=
    done
    [ -z "$p" ] && break
    sleep 0.1
  done
  kill -KILL $pids 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# Start collector $1 on port $2; prints its pid.
start() {
  local port=$2
  case $1 in
    floor) taskset -c "$COLLECTOR_CPU" "$work/blast" sink 127.0.0.1 "$port" 3600 "$BUFFER" >"$work/floor.out" & ;;
    flowtel | flowtel-pgo)
      local bin=$FLOWTEL
      [ "$1" = flowtel-pgo ] && bin=$FLOWTEL_PGO
      taskset -c "$COLLECTOR_CPU" "${as_capped[@]}" "$bin" run --listen "127.0.0.1:$port" --workers 1 \
      --recv-buffer-bytes "$BUFFER" --sink prometheus --prometheus-listen 127.0.0.1:0 \
      --log-level error >/dev/null 2>&1 & ;;
    nfacctd)
      cat >"$work/nfacctd.conf" <<EOF
daemonize: false
nfacctd_ip: 127.0.0.1
nfacctd_port: $port
nfacctd_pipe_size: $BUFFER
plugins: print
aggregate: proto
print_refresh_time: 60
print_output: csv
print_output_file: $work/nfacctd-%s.csv
EOF
      taskset -c "$COLLECTOR_CPU" nfacctd -f "$work/nfacctd.conf" >/dev/null 2>&1 & ;;
    nfcapd)
      # A directory per run: nfcapd refuses to start where another instance left its files.
      local dir
      dir=$(mktemp -d -p "$work" nfcapd.XXXX)
      taskset -c "$COLLECTOR_CPU" nfcapd -b 127.0.0.1 -p "$port" -B "$BUFFER" -w "$dir" -t 60 >"$dir.log" 2>&1 & ;;
  esac
  echo $!
}

# Peak resident memory in MiB of process $1 and the processes under it (VmHWM, summed).
rss_of() {
  local p
  for p in $(tree_of "$1"); do cat "/proc/$p/status" 2>/dev/null; done |
    awk '/^VmHWM:/ { k += $2 } END { printf "%.0f", k / 1024 }'
}

# Run collector $1 at rate $2: prints "cpu_seconds sent dropped peak_rss_mib".
run() {
  local port pid before after sent
  port=$(free_port)
  pid=$(start "$1" "$port")
  sleep 1.5
  before=$(cpu_of "$pid")
  sent=$(taskset -c "$SENDER_CPU" "$work/blast" send "$CAPTURE" 127.0.0.1 "$port" "$2" "$SECONDS_PER_RUN" | awk '{ print $2 }')
  sleep 1
  after=$(cpu_of "$pid")
  local dropped rss
  dropped=$(drops "$port")
  rss=$(rss_of "$pid")
  stop "$pid"
  awk -v a="$after" -v b="$before" -v s="$sent" -v d="$dropped" -v m="$rss" \
    'BEGIN { printf "%.2f %d %d %d\n", a - b, s, d, m }'
}

echo "capture $CAPTURE: $records_per_datagram records per datagram; collector on CPU $COLLECTOR_CPU, sender on CPU $SENDER_CPU"
printf '%-11s %-34s %-12s %-22s %s\n' collector "CPU s for the same records (runs)" "CPU s/Mrec" \
  "highest lossless rate" "peak RSS there (MiB)"
for c in $COLLECTORS; do
  cpus=()
  sent=0
  for _ in $(seq "$RUNS"); do
    read -r cpu s _ _ < <(run "$c" "$RATE")
    cpus+=("$cpu")
    sent=$s
  done
  best=none
  best_rss=-
  for r in $RATES; do
    read -r _ s d m < <(run "$c" "$r")
    if [ "$d" -eq 0 ] && [ "$s" -gt 0 ]; then best="$r dgrams/s" best_rss=$m; else break; fi
  done
  per=$(printf '%s\n' "${cpus[@]}" | sort -n | awk -v s="$sent" -v k="$records_per_datagram" \
    '{ a[NR] = $1 } END { m = a[int((NR + 1) / 2)]; printf "%.3f", (s > 0 ? m / (s * k / 1e6) : 0) }')
  printf '%-11s %-34s %-12s %-22s %s\n' "$c" "$(IFS=/; echo "${cpus[*]}") at $RATE/s x ${SECONDS_PER_RUN}s" \
    "$per" "$best" "$best_rss"
done
