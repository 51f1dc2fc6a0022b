#!/usr/bin/env bash
# Builds the libFuzzer targets with AddressSanitizer and runs each for a bounded time.
# usage: Tests/Fuzz/run-fuzz.sh [SECONDS]   (default 30 per target)
# Prints "fuzz: N passed, M failed" style lines; exits non-zero if a target crashed.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SECS="${1:-30}"
OUT="$ROOT/.build/fuzz"
mkdir -p "$OUT/corpus-ttlv"
# Seed corpus: the specification's encoding examples.
printf '\x42\x00\x20\x02\x00\x00\x00\x04\x00\x00\x00\x08\x00\x00\x00\x00' > "$OUT/corpus-ttlv/integer"
printf '\x42\x00\x20\x07\x00\x00\x00\x0b\x48\x65\x6c\x6c\x6f\x20\x57\x6f\x72\x6c\x64\x00\x00\x00\x00\x00' > "$OUT/corpus-ttlv/text"
printf '\x42\x00\x20\x01\x00\x00\x00\x20\x42\x00\x04\x05\x00\x00\x00\x04\x00\x00\x00\xfe\x00\x00\x00\x00\x42\x00\x05\x02\x00\x00\x00\x04\x00\x00\x00\xff\x00\x00\x00\x00' > "$OUT/corpus-ttlv/structure"
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name TTLVFuzz \
  "$ROOT/Sources/TTLV/TTLVItem.swift" "$ROOT/Sources/TTLV/TTLVError.swift" \
  "$ROOT/Sources/TTLV/TTLVDecoder.swift" "$ROOT/Sources/TTLV/TTLVEncoder.swift" \
  "$ROOT/Tests/Fuzz/TTLVFuzz.swift" -o "$OUT/ttlv-fuzz" > "$OUT/build.log" 2>&1 ||
  { grep -v 'Cannot export local symbol' "$OUT/build.log" | tail -20; echo "fuzz: build failed"; exit 1; }
if "$OUT/ttlv-fuzz" -max_total_time="$SECS" -max_len=4096 -timeout=5 "$OUT/corpus-ttlv" > "$OUT/ttlv.log" 2>&1; then
  echo "fuzz ttlv: $(grep -Eo 'Done [0-9]+ runs' "$OUT/ttlv.log" | tail -1) in ${SECS}s, no crash"
else
  tail -30 "$OUT/ttlv.log"; echo "fuzz ttlv: CRASH"; exit 1
fi
