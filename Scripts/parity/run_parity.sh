#!/usr/bin/env bash
# End-to-end full-size parity check: PyTorch reference (sc2bench + CompressAI + torchvision) vs the Swift runtime.
#
#   Scripts/parity/run_parity.sh [--backbone resnet50|resnest269e] [--out DIR] [--images DIR] [--regenerate]
#                                [--resize-rule torchvision-0.13] [--compare-skip detection,...] [--no-timings]
#
# Steps: make_checkpoints.py (skipped when the three .pt files exist, unless --regenerate) -> `ladon convert`
# -> reference.py over every image -> `ladon infer --json --logits --bin --mask --mask-size padded` per image
# -> compare.py. Exit status: compare.py's (0 pass, 1 a check failed, 2 missing output), or the failing step's.
# Environment: LADON_REF_PYTHON (default /root/.cache/ladon-ref-venv/bin/python, or for resnest269e
# /root/.cache/ladon-resnest-venv/bin/python: timm <= 1.0.20, see README); LADON_BIN: use this ladon executable
# instead of building one with `swift build -c release`. Default --out: /tmp/ladon-parity (resnet50),
# /tmp/ladon-parity-resnest269e (resnest269e).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/Scripts/parity"
BACKBONE=resnet50
OUT=""
IMAGES="$HERE/images"
REGENERATE=0
RESIZE_RULE=torchvision-0.13
COMPARE_SKIP=""
TIMINGS=(--timings)

while [[ $# -gt 0 ]]; do
    case "$1" in
        --backbone) BACKBONE="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --images) IMAGES="$2"; shift 2 ;;
        --regenerate) REGENERATE=1; shift ;;
        --resize-rule) RESIZE_RULE="$2"; shift 2 ;;
        --compare-skip) COMPARE_SKIP="$2"; shift 2 ;;
        --no-timings) TIMINGS=(); shift ;;
        -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done
case "$BACKBONE" in
    resnet50) DEFAULT_PY=/root/.cache/ladon-ref-venv/bin/python; DEFAULT_OUT=/tmp/ladon-parity ;;
    resnest269e) DEFAULT_PY=/root/.cache/ladon-resnest-venv/bin/python; DEFAULT_OUT=/tmp/ladon-parity-resnest269e ;;
    *) echo "--backbone must be resnet50 or resnest269e, not '$BACKBONE'" >&2; exit 2 ;;
esac
PY="${LADON_REF_PYTHON:-$DEFAULT_PY}"
OUT="${OUT:-$DEFAULT_OUT}"

CLS="$OUT/classification.pt"
DET="$OUT/detection.pt"
SEG="$OUT/segmentation.pt"
MODEL="$OUT/model.safetensors"
REF_DIR="$OUT/reference"
SWIFT_DIR="$OUT/swift"
mkdir -p "$OUT" "$REF_DIR" "$SWIFT_DIR"
step() { printf '\n=== %s\n' "$*"; }

step "1/5 checkpoints ($OUT)"
if [[ $REGENERATE == 1 || ! -f $CLS || ! -f $DET || ! -f $SEG ]]; then
    "$PY" "$HERE/make_checkpoints.py" --output-dir "$OUT" --backbone "$BACKBONE"
else
    echo "reusing existing checkpoints (pass --regenerate to rebuild)"
fi

step "2/5 build ladon (release) and convert"
if [[ -n ${LADON_BIN:-} ]]; then
    LADON="$LADON_BIN"
else
    (cd "$ROOT" && swift build -c release --product ladon)
    LADON="$(cd "$ROOT" && swift build -c release --show-bin-path)/ladon"
fi
# The Swift model's resize rule comes from its config: for the 0.15 rule convert with a config that says so.
CONFIG_ARGS=()
if [[ $RESIZE_RULE == torchvision-0.15 ]]; then
    MODEL="$OUT/model-0.15.safetensors"
    sed 's/"torchvision-0.13-float32"/"torchvision-0.15-double"/' "$ROOT/Configs/ladon-$BACKBONE.json" > "$OUT/config-0.15.json"
    CONFIG_ARGS=(--config "$OUT/config-0.15.json")
fi
"$LADON" convert --backbone "$BACKBONE" --classification "$CLS" --detection "$DET" --segmentation "$SEG" --output "$MODEL" "${CONFIG_ARGS[@]}"

step "3/5 PyTorch reference ($RESIZE_RULE)"
rm -f "$REF_DIR"/*.json "$SWIFT_DIR"/*
"$PY" "$HERE/reference.py" --classification "$CLS" --detection "$DET" --segmentation "$SEG" \
    --output-dir "$REF_DIR" --resize-rule "$RESIZE_RULE" --backbone "$BACKBONE" "${TIMINGS[@]}" "$IMAGES"

step "4/5 Swift runtime"
shopt -s nullglob nocaseglob
images=("$IMAGES"/*.jpg "$IMAGES"/*.jpeg "$IMAGES"/*.png)
[[ -f $IMAGES ]] && images=("$IMAGES")
swift_failed=0
for image in "${images[@]}"; do
    stem="$(basename "${image%.*}")"
    if ! "$LADON" infer --json --logits --model "$MODEL" --bin "$SWIFT_DIR/$stem.bin" \
            --mask "$SWIFT_DIR/$stem.mask.png" --mask-size padded "$image" \
            > "$SWIFT_DIR/$stem.json" 2> "$SWIFT_DIR/$stem.stderr"; then
        echo "ladon infer failed on $image:"; cat "$SWIFT_DIR/$stem.stderr"; swift_failed=1
    else
        echo "$stem: $(head -c 300 "$SWIFT_DIR/$stem.json")…"
    fi
done

# Where the two encoders rounded a value at a .5 tie differently the latents differ, and so does everything after
# them; run the Swift server half on the reference's own bytes too, so compare.py can check the downstream
# stages on the same latent.
for image in "${images[@]}"; do
    stem="$(basename "${image%.*}")"
    ref_sha="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["compressedSha256"])' "$REF_DIR/$stem.json" 2>/dev/null || true)"
    if [[ -n $ref_sha && -f $SWIFT_DIR/$stem.json ]] && ! grep -q "$ref_sha" "$SWIFT_DIR/$stem.json"; then
        (cd "$HERE" && "$PY" make_packet.py "$REF_DIR/$stem.json" "$SWIFT_DIR/$stem.refbytes.ldnp")
        "$LADON" decode --json --logits --model "$MODEL" --mask "$SWIFT_DIR/$stem.refbytes.mask.png" --mask-size padded \
            "$SWIFT_DIR/$stem.refbytes.ldnp" > "$SWIFT_DIR/$stem.refbytes.json" || true
        echo "$stem: bytes differ; server half also run on the reference's bytes ($SWIFT_DIR/$stem.refbytes.json)"
    fi
done

step "5/5 compare"
set +e
"$PY" "$HERE/compare.py" --reference-dir "$REF_DIR" --swift-dir "$SWIFT_DIR" --checkpoint "$SEG" \
    --skip "$COMPARE_SKIP" --summary-json "$OUT/summary.json"
status=$?
set -e
[[ $swift_failed == 1 && $status == 0 ]] && status=2
echo "results: $OUT/summary.json (reference JSON in $REF_DIR, Swift output in $SWIFT_DIR); exit $status"
exit $status
