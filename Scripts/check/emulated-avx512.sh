#!/usr/bin/env bash
# Runs the AVX-512 code paths on a machine without AVX-512: a check build of correctness, not of speed.
#
#   Scripts/check/emulated-avx512.sh tests            # swift test --skip Perf (debug) with the AVX-512 paths selected
#   Scripts/check/emulated-avx512.sh parity [ARGS]    # Scripts/parity/run_parity.sh --no-timings [ARGS], release
#   Scripts/check/emulated-avx512.sh build            # only build (release) .build-emu512/release/ladon
#
# The build defines CLADON_EMULATE_AVX512 and compiles CLadonKernels for AVX2 + FMA (`-mavx2 -mfma`): the AVX-512
# micro-kernels' intrinsics come from SIMDe (Debian `libsimde-dev`, installed here when missing), whose 512-bit
# FMA is two native 256-bit FMAs, so results are bit-identical to a real AVX-512 machine; the feature-specific
# builds of the portable routines are compiled for AVX2; `cladon_cpu_has_avx512f()` reports true. LadonCore then
# picks everything it picks on AVX-512 hardware: the `avx512-12x32` GEMM kernel, its 12x32 panel layouts and the tiles
# that pack a plain B as they go, the C AVX-512 direct-convolution kernels (6x32 and 12x32 tiles, encoder.2 included)
# with the encoder's conv -> GDN fusion, and the level-3 builds of the C routines (LADON_DIRECT_KERNEL=swift selects
# the older Swift direct kernel instead). Builds go to .build-emu512 (never .build). Needs an x86-64 CPU with AVX2 + FMA.
# With LADON_PORTABLE=1 it checks a dependent's build instead (no LADON_FMA, no -target-cpu; .build-emu512-portable).
set -euo pipefail
cd "$(dirname "$0")/../.."

B=.build-emu512${LADON_PORTABLE:+-portable}
FLAGS=(-Xcc -DCLADON_EMULATE_AVX512 -Xcc -mavx2 -Xcc -mfma -Xcc -Wno-psabi)

grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo || { echo "needs a CPU with AVX2 + FMA" >&2; exit 2; }
if [[ ! -f /usr/include/simde/x86/avx512.h ]]; then
    echo "installing libsimde-dev (SIMDe headers)" >&2
    apt-get install -y -qq libsimde-dev >/dev/null
fi

case "${1:-}" in
    tests)
        swift build --build-tests --build-path "$B" "${FLAGS[@]}"
        swift test --skip-build --build-path "$B" --skip Perf
        ;;
    build)
        swift build -c release --product ladon --build-path "$B" "${FLAGS[@]}"
        ;;
    parity)
        shift
        swift build -c release --product ladon --build-path "$B" "${FLAGS[@]}"
        echo "AVX-512 emulated with SIMDe (GEMM kernel avx512-12x32); this checks results, not speed" >&2
        LADON_BIN="$B/release/ladon" Scripts/parity/run_parity.sh --no-timings "$@"
        ;;
    *)
        sed -n '2,7p' "$0" >&2
        exit 2
        ;;
esac
