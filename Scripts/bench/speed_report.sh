#!/usr/bin/env bash
# Every speed figure of the README's "Speed" section (and issue 11's targets) measured in one run on this machine:
# machine and kernel path, full-size parity, the stage table against ONNX Runtime, peak RSS against ORT, the GEMM table,
# the encoder's and the body's layer timings. Opt-in (about 40-50 minutes on 2 cores); never part of CI.
#
#   Scripts/bench/speed_report.sh [--dir /tmp/ladon-parity] [--rounds 4] [--runs 3] [--ort-runs 5]
#                                 [--out /tmp/ladon-speed-report] [--skip-parity]
#
# The stage table is compare_ort.py run --ort-runs times (each run saved as OUT/compare_ort_K.txt), then summarised
# by summarize_compare_ort.py: median Swift / ORT per stage, range, and whether the median meets issue 11's target,
# in the form of the README's "Speed" table (about 2.5 minutes per run on 2 cores).
# --dir holds the full-size checkpoints and model.safetensors (Scripts/parity/run_parity.sh creates them there when
# missing). Python: LADON_REF_PYTHON (default /root/.cache/ladon-ref-venv/bin/python; set it up with the shared
# tools/setup-python-env.sh or `pip install torch torchvision compressai sc2bench safetensors onnxruntime`).
# Everything printed also goes to OUT/report.txt. On an AVX-512 CPU the encoder's layers are timed a second time with
# LADON_DIRECT_KERNEL=swift (the Swift direct-convolution kernel) for the side-by-side comparison.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
DIR=/tmp/ladon-parity
ROUNDS=4
RUNS=3
ORT_RUNS=5
OUT=/tmp/ladon-speed-report
PARITY=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dir) DIR="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --ort-runs) ORT_RUNS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --skip-parity) PARITY=0; shift ;;
        -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
PY=${LADON_REF_PYTHON:-/root/.cache/ladon-ref-venv/bin/python}
[[ -x $PY ]] || { echo "no Python environment at $PY (set LADON_REF_PYTHON)" >&2; exit 2; }
mkdir -p "$OUT"
exec > >(tee "$OUT/report.txt") 2>&1

section() { printf '\n== %s (%s, load average %s)\n' "$1" "$(date -u +%H:%M:%S)" "$(cut -d' ' -f1-3 /proc/loadavg)"; }

section machine
lscpu | grep -E '^(Model name|CPU family|Model|CPU\(s\)|L2 cache):' || true
grep -qw avx512f /proc/cpuinfo && AVX512=1 || AVX512=0
echo "AVX-512F: $([[ $AVX512 == 1 ]] && echo yes || echo no); commit $(git rev-parse --short HEAD)$(git diff --quiet || echo ' (modified)')"

section "release build"
swift build -c release --product ladon 2>&1 | tail -1
LADON=.build/release/ladon

if [[ $PARITY == 1 || ! -f $DIR/model.safetensors ]]; then
    section "full-size parity"
    LADON_BIN=$LADON LADON_REF_PYTHON=$PY Scripts/parity/run_parity.sh --no-timings --out "$DIR" | tail -9
fi
CHECKPOINTS=(--model "$DIR/model.safetensors" --classification "$DIR/classification.pt"
             --detection "$DIR/detection.pt" --segmentation "$DIR/segmentation.pt")

section "stages against ONNX Runtime (compare_ort.py --pipeline --isolated, $ORT_RUNS runs)"
rm -f "$OUT"/compare_ort_*.txt
for ((k = 1; k <= ORT_RUNS; k++)); do
    "$PY" Scripts/bench/compare_ort.py "${CHECKPOINTS[@]}" --rounds "$ROUNDS" --runs "$RUNS" --threads 2 \
        --ladon "$LADON" --pipeline --isolated > "$OUT/compare_ort_$k.txt" 2>&1
    echo "run $k: $(grep -m1 'host probe' "$OUT/compare_ort_$k.txt" || echo 'no probe line; see the file')"
done
python3 Scripts/bench/summarize_compare_ort.py "$OUT"/compare_ort_*.txt

section "peak RSS against ONNX Runtime (ort_peak_rss.py)"
"$PY" Scripts/bench/ort_peak_rss.py "${CHECKPOINTS[@]}" --ladon "$LADON" | tail -6

bench() {  # bench FILTER [ENV...]: one benchmark of the release test build, its table only
    local filter=$1; shift
    env "$@" swift test -c release --build-path .build-perf --no-parallel --filter "$filter" 2>&1 \
        | grep -E '^\||kernel|peak|load avg' || true
}
section "GEMM throughput (GEMMPerfTests/gemmThroughput, packed weights)"
bench GEMMPerfTests/gemmThroughput LADON_PERF_PACKED_ONLY=1
section "encoder layers (GEMMPerfTests/encoderLayerTimings)"
bench GEMMPerfTests/encoderLayerTimings
if [[ $AVX512 == 1 ]]; then
    section "encoder layers with the Swift direct kernel (LADON_DIRECT_KERNEL=swift)"
    bench GEMMPerfTests/encoderLayerTimings LADON_DIRECT_KERNEL=swift
fi
section "body layers (BodyBatchPerfTests/bodyLayerTimings)"
bench BodyBatchPerfTests/bodyLayerTimings LADON_PERF_MODEL="$DIR/model.safetensors"
echo
echo "report: $OUT/report.txt"
