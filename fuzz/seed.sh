#!/usr/bin/env bash
# Seed corpora for the fuzz targets from the committed captures (tests/fixtures) and the
# shared corpus when present: every UDP payload becomes a seed of decode_raw (as one
# length-prefixed datagram), sFlow payloads seed sflow (after the version word). Needs tshark.
#
#   fuzz/seed.sh && RUSTC_BOOTSTRAP=1 cargo fuzz run decode_raw fuzz/corpus/decode_raw
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/decode_raw corpus/sflow corpus/datalink corpus/decode_after_template corpus/config
captures=(../tests/fixtures/*.pcap)
[ -d ../../shared/corpus ] && while IFS= read -r f; do captures+=("$f"); done \
  < <(find ../../shared/corpus -name '*.pcap*' | head -200)
n=0
for cap in "${captures[@]}"; do
  tshark -r "$cap" -T fields -e udp.payload 2>/dev/null | while IFS= read -r hex; do
    [ -n "$hex" ] || continue
    hex=${hex%%,*}
    len=$(( ${#hex} / 2 ))
    [ "$len" -le 65535 ] || continue
    name=$(printf '%s' "$hex" | sha1sum | cut -c1-16)
    { printf '%04x' "$len"; printf '%s' "$hex"; } | xxd -r -p > "corpus/decode_raw/$name"
    if [ "${hex:0:8}" = 00000005 ]; then
      printf '%s' "${hex:8}" | xxd -r -p > "corpus/sflow/$name"
    fi
  done || true # a capture tshark cannot read whole still seeds what it read
  n=$((n + 1))
done
cp ../examples/*.yaml corpus/config/ 2>/dev/null || true
echo "seeded from $n captures: $(ls corpus/decode_raw | wc -l) datagrams, $(ls corpus/sflow | wc -l) sFlow"
