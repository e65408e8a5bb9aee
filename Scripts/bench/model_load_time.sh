#!/usr/bin/env bash
# Seconds a fresh `ladon infer` process spends loading the model: from the first perf sample inside
# LadonModel.init(path:) to the first inside LadonModel.infer, on one photo (Linux perf, 4 kHz samples with call graphs,
# so the figure is within about 0.25 ms). Run it alternated with another binary to compare two builds on a noisy host:
#   for i in $(seq 8); do echo "$(Scripts/bench/model_load_time.sh OLD) $(Scripts/bench/model_load_time.sh NEW)"; done
# Usage: Scripts/bench/model_load_time.sh LADON [MODEL] [IMAGE] [THREADS]
set -euo pipefail
ladon=${1:?usage: $0 LADON [MODEL] [IMAGE] [THREADS]}
model=${2:-/tmp/ladon-parity/model.safetensors}
image=${3:-$(dirname "$0")/../parity/images/astronaut.jpg}
threads=${4:-2}
data=$(mktemp /tmp/ladon-load-XXXXXX.data)
trap 'rm -f "$data"' EXIT
perf record -q -e cpu-clock -F 4000 -g -o "$data" -- "$ladon" infer --model "$model" --threads "$threads" "$image" \
    > /dev/null 2>&1
perf script -i "$data" -F time,ip,sym 2>/dev/null | awk '
    /^ *[0-9]+\.[0-9]+:/ { t = $1; sub(":", "", t); now = t; next }
    /ModelV4path/ && !started { started = 1; begin = now }
    /infer3rgb/ && !found { found = 1; printf "%.3f\n", now - begin }
    END { if (!found) { print "no LadonModel.infer sample found (is perf allowed here?)" > "/dev/stderr"; exit 1 } }'
