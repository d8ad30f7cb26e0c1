#!/usr/bin/env bash
# A profile-guided build of flowtel (PGO): the release build, laid out by how the daemon's
# receive path actually runs.
#
#   deploy/build-pgo.sh          # prints the binary's path: target/pgo/release/flowtel
#
# 1. builds flowtel with instrumentation (-Cprofile-generate);
# 2. runs it as the daemon on loopback (`flowtel run`, the prometheus sink, a worker per core)
#    and feeds it what collectors receive: `flowtel generate`'s NetFlow v9, IPFIX and sFlow from
#    many exporters and keys, then NetFlow v5, then, with a C compiler, the committed captures of
#    real exporters (tests/fixtures: softflowd and pmacct; NetFlow v5/v9, IPFIX, sFlow) replayed
#    by examples/blast.c; stops it with SIGTERM, which writes the profile;
# 3. merges the profile with llvm-profdata and builds again with -Cprofile-use.
#
# The decoder's and the rollup's hot loops are branchy, and the profile tells the compiler which
# way they go: see README, "Throughput", for the figures. Only the optimisation changes; what
# the binary does is the same, and every test runs on the ordinary build.
#
# Environment:
#   LLVM_PROFDATA  llvm-profdata to merge with. Default: rustup's (`rustup component add
#                  llvm-tools`), else the newest llvm-profdata-N on PATH that reads the profile
#                  (Debian's llvm-19 reads the raw profiles of Rust 1.95's LLVM 22).
#   TRAIN_SECONDS  seconds of generated traffic (default 20), at TRAIN_RATE records/s
#                  (default 200000)
#   PGO_DIR        where the profiles are written (default target/pgo-profiles, emptied first)
# Needs: cargo, python3 (a free port), a C compiler for the captures (skipped without one).
set -euo pipefail
cd "$(dirname "$0")/.."

TRAIN_SECONDS=${TRAIN_SECONDS:-20}
TRAIN_RATE=${TRAIN_RATE:-200000}
PGO_DIR=${PGO_DIR:-$PWD/target/pgo-profiles}
rustflags=${RUSTFLAGS:-}

# Every llvm-profdata that may read the profile, the preferred first.
profdata_candidates() {
  local host sysroot major n
  [ -n "${LLVM_PROFDATA:-}" ] && echo "$LLVM_PROFDATA"
  host=$(rustc -vV | sed -n 's/^host: //p')
  sysroot=$(rustc --print sysroot)
  echo "$sysroot/lib/rustlib/$host/bin/llvm-profdata"
  major=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
  for n in $(seq "$major" -1 15); do
    command -v "llvm-profdata-$n" || true
  done
  command -v llvm-profdata || true
}

rm -rf "$PGO_DIR"
mkdir -p "$PGO_DIR"
echo "building the instrumented flowtel (target/pgo-instrumented)" >&2
RUSTFLAGS="$rustflags -Cprofile-generate=$PGO_DIR" \
  cargo build --release --locked -p flowtel --target-dir target/pgo-instrumented
trained=target/pgo-instrumented/release/flowtel

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$trained" run --listen "127.0.0.1:$port" --sink prometheus --prometheus-listen 127.0.0.1:0 \
  --log-level warn >"$work/daemon.log" 2>&1 &
daemon=$!
sleep 1
echo "training: generated v9, IPFIX and sFlow for ${TRAIN_SECONDS} s at ${TRAIN_RATE} records/s" >&2
"$trained" generate --target "127.0.0.1:$port" --rate "$TRAIN_RATE" --duration "$TRAIN_SECONDS" \
  --exporters 12 >/dev/null 2>>"$work/generate.log"
"$trained" generate --target "127.0.0.1:$port" --rate 20000 --duration 2 --protocols v5 \
  >/dev/null 2>>"$work/generate.log"
if command -v cc >/dev/null; then
  cc -O2 -o "$work/blast" examples/blast.c
  for capture in tests/fixtures/*.pcap; do
    echo "training: $capture" >&2
    "$work/blast" send "$capture" 127.0.0.1 "$port" 20000 2 >/dev/null
  done
else
  echo "note: no C compiler; the captures of real exporters are not replayed" >&2
fi
kill -TERM "$daemon"
wait "$daemon" || { cat "$work/daemon.log" >&2; echo "the instrumented daemon failed" >&2; exit 1; }

merged=""
while read -r tool; do
  [ -x "$tool" ] || continue
  if "$tool" merge -o "$PGO_DIR/flowtel.profdata" "$PGO_DIR"/*.profraw 2>"$work/merge.err"; then
    merged=$tool
    break
  fi
  echo "note: $tool cannot read this profile: $(head -1 "$work/merge.err")" >&2
done < <(profdata_candidates)
if [ -z "$merged" ]; then
  echo "no llvm-profdata reads this profile: run 'rustup component add llvm-tools', or set LLVM_PROFDATA" >&2
  exit 1
fi
echo "merged with $merged" >&2

echo "building the optimised flowtel (target/pgo)" >&2
RUSTFLAGS="$rustflags -Cprofile-use=$PGO_DIR/flowtel.profdata" \
  cargo build --release --locked -p flowtel --target-dir target/pgo
echo target/pgo/release/flowtel
