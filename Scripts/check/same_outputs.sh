#!/usr/bin/env bash
# Whether two `ladon` builds give the same answers: `ladon infer --json --logits` on three photos with 1 and 2
# threads, timing fields removed, compared byte for byte. For changes meant to keep every bit (kernels, loading).
#   Scripts/check/same_outputs.sh OLD_LADON NEW_LADON [MODEL]     (default model: /tmp/ladon-parity/model.safetensors)
set -euo pipefail
old=${1:?usage: $0 OLD_LADON NEW_LADON [MODEL]}
new=${2:?usage: $0 OLD_LADON NEW_LADON [MODEL]}
model=${3:-/tmp/ladon-parity/model.safetensors}
images=$(cd "$(dirname "$0")/../parity/images" && pwd)
out=$(mktemp -d /tmp/ladon-same-XXXXXX)
trap 'rm -rf "$out"' EXIT
status=0
for threads in 1 2; do
    for which in old new; do
        binary=$old; [[ $which == new ]] && binary=$new
        "$binary" infer --model "$model" --json --logits --threads "$threads" \
            "$images/astronaut.jpg" "$images/grace_hopper.jpg" "$images/hot_dog.jpg" | python3 -c '
import json, sys
def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if "ms" not in k.lower() and "timing" not in k.lower()}
    return [strip(v) for v in x] if isinstance(x, list) else x
for line in sys.stdin:
    print(json.dumps(strip(json.loads(line)), sort_keys=True))' > "$out/$which.$threads.json"
    done
    if cmp -s "$out/old.$threads.json" "$out/new.$threads.json"; then
        echo "threads $threads: identical ($(wc -c < "$out/old.$threads.json") bytes)"
    else
        echo "threads $threads: DIFFERENT"
        status=1
    fi
done
exit $status
