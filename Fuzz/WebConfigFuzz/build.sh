#!/usr/bin/env bash
# Builds the libFuzzer target for the web configuration parser and prints the binary's path
# as its last line.
#
#   Fuzz/WebConfigFuzz/build.sh                 # -> .build-fuzz/webconfig/webconfig-fuzzer
#   "$(Fuzz/WebConfigFuzz/build.sh | tail -n1)" -max_total_time=120 Fuzz/WebConfigFuzz/corpus
#
# The parser is pure (the WebConfig module, Sources/WebConfig: bytes in, config or error out, no
# libmicrohttpd or GnuTLS), so it is compiled straight into the fuzzer together with Yams' Swift
# sources and libyaml's C sources from SwiftPM's checkout, all instrumented for coverage and
# AddressSanitizer. Needs the Swift toolchain's swiftc and clang (with libFuzzer).
# Environment: FUZZ_SCRATCH (default .build-fuzz) for SwiftPM's checkouts and the outputs.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SCRATCH="${FUZZ_SCRATCH:-$ROOT/.build-fuzz}"
OUT="$SCRATCH/webconfig"
mkdir -p "$OUT/obj"

CLANG="${CLANG:-$(dirname "$(command -v swiftc)")/clang}"
[ -x "$CLANG" ] || CLANG="$(command -v clang)"

# Yams at the version Package.resolved pins (resolving only clones; nothing is built).
swift package --package-path "$ROOT" --scratch-path "$SCRATCH" resolve >&2
YAMS="$SCRATCH/checkouts/Yams/Sources"
[ -d "$YAMS/Yams" ] && [ -d "$YAMS/CYaml" ] || { echo "build.sh: Yams sources not found under $YAMS" >&2; exit 1; }

SANITIZE_C=(-fsanitize=fuzzer-no-link,address)
SANITIZE_SWIFT=(-sanitize=fuzzer,address)

# 1. libyaml (C), instrumented so that the fuzzer sees YAML syntax coverage.
for source in "$YAMS"/CYaml/src/*.c; do
    "$CLANG" -c -O1 -g "${SANITIZE_C[@]}" -DYAML_DECLARE_STATIC -I "$YAMS/CYaml/include" \
        "$source" -o "$OUT/obj/cyaml-$(basename "$source" .c).o"
done

# 2. Yams as a Swift module.
swiftc -parse-as-library -module-name Yams -O -g "${SANITIZE_SWIFT[@]}" -DSWIFT_PACKAGE \
    -I "$YAMS/CYaml/include" -Xcc -DYAML_DECLARE_STATIC \
    -emit-module -emit-module-path "$OUT/Yams.swiftmodule" \
    -c "$YAMS"/Yams/*.swift -wmo -o "$OUT/obj/yams.o" >&2

# 3. The WebConfig module, as SwiftPM builds it (every file of Sources/WebConfig).
SWIFT_FLAGS=(-swift-version 6 -enable-upcoming-feature ExistentialAny -enable-upcoming-feature InternalImportsByDefault)
swiftc -parse-as-library -module-name WebConfig -package-name prefect_exporter "${SWIFT_FLAGS[@]}" -O -g "${SANITIZE_SWIFT[@]}" \
    -I "$OUT" -I "$YAMS/CYaml/include" -Xcc -DYAML_DECLARE_STATIC \
    -emit-module -emit-module-path "$OUT/WebConfig.swiftmodule" \
    -c "$ROOT"/Sources/WebConfig/*.swift -wmo -o "$OUT/obj/webconfig.o" >&2

# 4. The fuzzer: entry point, libyaml oracle and shared checks, linked with the above. The
#    toolchain's lld links quietly (gold warns about every ASan symbol); fall back to the default
#    linker when it is missing.
LINKER=()
[ -x "$(dirname "$CLANG")/ld.lld" ] && LINKER=(-use-ld=lld)
swiftc -parse-as-library -module-name WebConfigFuzz "${SWIFT_FLAGS[@]}" -O -g "${SANITIZE_SWIFT[@]}" "${LINKER[@]}" \
    -I "$OUT" -I "$YAMS/CYaml/include" -Xcc -DYAML_DECLARE_STATIC \
    "$HERE/main.swift" "$HERE/LibyamlOracle.swift" "$HERE/../Support/Require.swift" "$OUT"/obj/*.o \
    -o "$OUT/webconfig-fuzzer" >&2

echo "$OUT/webconfig-fuzzer"
