#!/usr/bin/env bash
# Builds the libFuzzer target for the exposition encoders (text format and OpenMetrics) and prints
# the binary's path as its last line.
#
#   Fuzz/ExpositionFuzz/build.sh               # -> .build-fuzz/exposition/exposition-fuzzer
#   "$(Fuzz/ExpositionFuzz/build.sh | tail -n1)" -max_total_time=120 Fuzz/ExpositionFuzz/corpus
#
# The metric model and the encoders are pure Swift: every file of Sources/Exposition except
# Gzip.swift (zlib) is compiled straight into the fuzzer with the entry point, instrumented for
# coverage and AddressSanitizer. Environment: FUZZ_SCRATCH (default .build-fuzz) for the outputs.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SCRATCH="${FUZZ_SCRATCH:-$ROOT/.build-fuzz}"
OUT="$SCRATCH/exposition"
mkdir -p "$OUT"

SOURCES=()
for source in "$ROOT"/Sources/Exposition/*.swift; do
    [ "$(basename "$source")" = "Gzip.swift" ] || SOURCES+=("$source")
done
LINKER=()
[ -x "$(dirname "$(command -v swiftc)")/ld.lld" ] && LINKER=(-use-ld=lld)
# The same language mode and upcoming features as Package.swift's strictSwift settings.
swiftc -parse-as-library -module-name ExpositionFuzz -swift-version 6 \
    -enable-upcoming-feature ExistentialAny -enable-upcoming-feature InternalImportsByDefault -O -g -sanitize=fuzzer,address "${LINKER[@]}" \
    "$HERE/main.swift" "$HERE/../Support/Require.swift" "${SOURCES[@]}" -o "$OUT/exposition-fuzzer" >&2

echo "$OUT/exposition-fuzzer"
