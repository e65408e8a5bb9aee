#!/usr/bin/env bash
# Builds one libFuzzer target (ASan + coverage, outside SwiftPM) and runs it.
#
#   Scripts/fuzz/run.sh TARGET SECONDS [libFuzzer options...]
#   Scripts/fuzz/run.sh list                 # the targets
#   Scripts/fuzz/run.sh build TARGET         # build only
#
# Targets (Fuzz/Targets/<target>.swift): latent_packet rans safetensors zip pickle torch_checkpoint model_config jpeg png.
# The module sources are compiled with swiftc directly (-sanitize=fuzzer,address -parse-as-library) into .build-fuzz/,
# so `swift build` / `swift test` never see sanitizers. Seeds come from Fuzz/corpus/<target>/ (read-only); new inputs
# go to .build-fuzz/corpus/<target>/, crashes to .build-fuzz/artifacts/. Every run uses -timeout=1 and
# -rss_limit_mb=2048: a slow input or an allocation over 2 GB counts as a failure. A crash exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/../.."

SWIFTC=${SWIFTC:-swiftc}
B=${LADON_FUZZ_BUILD:-.build-fuzz}
TARGETS=(latent_packet rans safetensors zip pickle torch_checkpoint model_config jpeg png)

usage() { echo "usage: $0 TARGET SECONDS [libFuzzer options] | $0 build TARGET | $0 list" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
if [[ $1 == list ]]; then printf '%s\n' "${TARGETS[@]}"; exit 0; fi
BUILD_ONLY=0
if [[ $1 == build ]]; then BUILD_ONLY=1; shift; [[ $# -ge 1 ]] || usage; fi
TARGET=$1; shift
[[ " ${TARGETS[*]} " == *" $TARGET "* ]] || { echo "unknown target '$TARGET' (try: $0 list)" >&2; exit 2; }
SECONDS_TO_RUN=60
if [[ $BUILD_ONLY == 0 ]]; then [[ $# -ge 1 ]] || usage; SECONDS_TO_RUN=$1; shift; fi

FLAGS=(-sanitize=fuzzer,address -parse-as-library -O -g -package-name ladon_swift -I "$B/modules")
mkdir -p "$B/modules" "$B/objects" "$B/corpus/$TARGET" "$B/artifacts"

# build_module NAME SWIFT_VERSION EXTRA_FLAGS... -- SOURCES...: one whole-module object + .swiftmodule, rebuilt when a
# source, or what the module imports (LadonCore's object for the others, the C kernels' headers for LadonCore), is newer
# than the object.
build_module() {
    local name=$1 version=$2; shift 2
    local extra=() sources=()
    while [[ $1 != -- ]]; do extra+=("$1"); shift; done; shift
    sources=("$@")
    local object="$B/objects/$name.o" deps=()
    if [[ $name == LadonCore ]]; then deps=(Sources/CLadonKernels/include/*.h); else deps=("$B/objects/LadonCore.o"); fi
    if [[ -f $object ]] && [[ -z $(find "${sources[@]}" "${deps[@]}" -newer "$object" -print -quit) ]]; then return; fi
    echo "fuzz: compiling $name (${#sources[@]} files)" >&2
    "$SWIFTC" "${FLAGS[@]}" "${extra[@]}" -swift-version "$version" -module-name "$name" -wmo -c "${sources[@]}" \
        -emit-module -emit-module-path "$B/modules/$name.swiftmodule" -o "$object"
}

sources_of() { find "Sources/$1" -name '*.swift' | sort; }

# C targets (CLadonKernels, imported by LadonCore; CLadonJPEG, by LadonImage): each file compiled with clang under the
# same sanitizers, and a module map for swiftc, which SwiftPM would otherwise generate.
CC=${CC:-clang}
# c_target NAME: compiles Sources/NAME/*.c into objects (appended to the named array) and writes NAME's module map.
c_target() {
    local name=$1 into=$2
    mkdir -p "$B/modules/$name"
    printf 'module %s {\n    header "%s"\n    export *\n}\n' "$name" "$PWD/Sources/$name/include/$name.h" \
        > "$B/modules/$name/module.modulemap"
    for c_source in Sources/"$name"/*.c; do
        local c_object="$B/objects/$name-$(basename "$c_source" .c).o"
        if [[ ! -f $c_object ]] || [[ -n $(find Sources/"$name" \( -name '*.c' -o -name '*.h' \) -newer "$c_object" -print -quit) ]]; then
            echo "fuzz: compiling $c_source" >&2
            "$CC" -fsanitize=fuzzer-no-link,address -O2 -g -I Sources/"$name"/include -c "$c_source" -o "$c_object"
        fi
        eval "$into+=(\"\$c_object\")"
    done
    FLAGS+=(-I "$B/modules/$name")
}
C_OBJECTS=()
c_target CLadonKernels C_OBJECTS

build_module LadonCore 6 -- $(sources_of LadonCore)
OBJECTS=("$B/objects/LadonCore.o" "${C_OBJECTS[@]}")
LIBS=()
case $TARGET in
    zip|pickle|torch_checkpoint)
        build_module LadonCheckpoint 6 -- $(sources_of LadonCheckpoint)
        OBJECTS+=("$B/objects/LadonCheckpoint.o") ;;
    jpeg|png)
        IMAGE_C=()
        c_target CLadonJPEG IMAGE_C
        build_module LadonImage 6 -I Sources/CTurboJPEG -I Sources/CPNG -- $(sources_of LadonImage)
        OBJECTS+=("$B/objects/LadonImage.o" "${IMAGE_C[@]}"); LIBS+=(-lturbojpeg -ljpeg -lpng16 -lz) ;;
    latent_packet)
        # Only the packet parser (and what it needs), not the URLSession client.
        build_module EdgeSplit 6 -- Sources/EdgeSplit/LatentPacket.swift
        OBJECTS+=("$B/objects/EdgeSplit.o") ;;
esac
BINARY="$B/fuzz-$TARGET"
SOURCE="Fuzz/Targets/$TARGET.swift"
if [[ ! -x $BINARY ]] || [[ -n $(find "$SOURCE" "${OBJECTS[@]}" -newer "$BINARY" -print -quit) ]]; then
    echo "fuzz: linking $BINARY" >&2
    [[ $TARGET == jpeg || $TARGET == png ]] && FLAGS+=(-I Sources/CTurboJPEG -I Sources/CPNG)
    # (ld.gold warns about every ASan helper symbol it cannot export; those lines are noise.)
    "$SWIFTC" "${FLAGS[@]}" -swift-version 5 -module-name "Fuzz_$TARGET" "$SOURCE" "${OBJECTS[@]}" "${LIBS[@]}" -o "$BINARY" 2>&1 \
        | { grep -v "Cannot export local symbol" || true; } >&2
fi
[[ $BUILD_ONLY == 1 ]] && { echo "$BINARY"; exit 0; }

export LADON_FUZZ_ROOT=$PWD
# Swift's runtime keeps one-time allocations (metadata caches) for the process lifetime: not leaks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
exec "$BINARY" -max_total_time="$SECONDS_TO_RUN" -timeout=1 -rss_limit_mb=2048 -detect_leaks=0 -print_final_stats=1 \
    -artifact_prefix="$B/artifacts/$TARGET-" "$@" "$B/corpus/$TARGET" "Fuzz/corpus/$TARGET"
