#!/usr/bin/env bash
# Builds the libFuzzer target for the Prefect JSON decoding and prints the binary's path as its
# last line.
#
#   Fuzz/JSONDecodingFuzz/build.sh             # -> .build-fuzz/jsondecoding/jsondecoding-fuzzer
#   "$(Fuzz/JSONDecodingFuzz/build.sh | tail -n1)" -max_total_time=120 -dict=Fuzz/JSONDecodingFuzz/json.dict \
#       Fuzz/JSONDecodingFuzz/corpus
#
# The decoding is pure Swift with Foundation (the models, their tolerant Decodable conformances,
# the timestamp parser and the text repair; no libcurl), so those files are compiled straight
# into the fuzzer with the entry point, instrumented for coverage and AddressSanitizer.
# Environment: FUZZ_SCRATCH (default .build-fuzz) for the outputs.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SCRATCH="${FUZZ_SCRATCH:-$ROOT/.build-fuzz}"
OUT="$SCRATCH/jsondecoding"
mkdir -p "$OUT"

LINKER=()
[ -x "$(dirname "$(command -v swiftc)")/ld.lld" ] && LINKER=(-use-ld=lld)
API="$ROOT/Sources/PrefectAPI"
# The same language mode and upcoming features as Package.swift's strictSwift settings.
swiftc -parse-as-library -module-name JSONDecodingFuzz -swift-version 6 \
    -enable-upcoming-feature ExistentialAny -enable-upcoming-feature InternalImportsByDefault -O -g -sanitize=fuzzer,address "${LINKER[@]}" \
    "$HERE/main.swift" "$HERE/../Support/Require.swift" "$API/Models.swift" "$API/Decoding.swift" "$API/Timestamp.swift" "$API/JSONTextRepair.swift" \
    -o "$OUT/jsondecoding-fuzzer" >&2

echo "$OUT/jsondecoding-fuzzer"
