#!/usr/bin/env bash
# Opt-in load and soak benchmark of `ladon serve` with wrk, on 127.0.0.1 only.
#
#   Scripts/bench/load/load.sh --model M [--ladon BIN] [--workers W] [--duration 60] [--soak 600]
#                              [--image IMG] [--port 18100] [--threads T] [--timeout 60] [--backoff] [--keep]
#
# Makes one packet from IMG (default Scripts/parity/images/grace_hopper.jpg), starts one
# `ladon serve --workers W --queue 2W`, then runs wrk (Scripts/bench/load/post_packet.lua) at 1, 2×W and 8×W
# connections for --duration seconds each (wrk threads = min(connections, 2)), and, unless --soak 0, a soak at
# 2×W connections for --soak seconds sampling the server's RSS every 10 s. Per run it prints answers/s, p50/p99
# latency (over every answer, quick 503s included), the count of 200 / 503 / other statuses, wrk's socket
# errors, the server's CPU seconds and its RSS now and at peak (VmRSS / VmHWM from /proc/PID/status).
# --timeout is wrk's per-request timeout. wrk re-sends at once after a 503 (the worst case: the refusals cost
# CPU too); --backoff makes each 503 delay a later request by its Retry-After (a well-behaved client).
# Exit 0 when every answer was 200 or 503, wrk saw no socket error and the server stayed up; 1 otherwise.
# The server is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
MODEL=""
LADON="$ROOT/.build/release/ladon"
WORKERS=1
DURATION=60
SOAK=600
IMAGE="$ROOT/Scripts/parity/images/grace_hopper.jpg"
PORT=18100
THREADS=""
TIMEOUT=60
KEEP=0
BACKOFF=0
LUA="$ROOT/Scripts/bench/load/post_packet.lua"

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --model) MODEL=$2; shift 2 ;;
        --ladon) LADON=$2; shift 2 ;;
        --workers) WORKERS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --soak) SOAK=$2; shift 2 ;;
        --image) IMAGE=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --backoff) BACKOFF=1; shift ;;
        -h|--help) usage ;;
        *) echo "load.sh: unknown argument $1" >&2; usage ;;
    esac
done
[[ -n "$MODEL" ]] || { echo "load.sh: --model is required" >&2; usage; }
[[ -f "$MODEL" ]] || { echo "load.sh: no model file $MODEL" >&2; exit 2; }
[[ -x "$LADON" ]] || { echo "load.sh: no ladon binary at $LADON (swift build -c release, or --ladon BIN)" >&2; exit 2; }
[[ -f "$IMAGE" ]] || { echo "load.sh: no image $IMAGE" >&2; exit 2; }
command -v wrk >/dev/null || { echo "load.sh: wrk not found (apt-get install wrk)" >&2; exit 2; }
[[ "$WORKERS" =~ ^[1-9][0-9]*$ && "$DURATION" =~ ^[1-9][0-9]*$ && "$SOAK" =~ ^[0-9]+$ && "$PORT" =~ ^[0-9]+$ \
   && "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || { echo "load.sh: --workers/--duration/--timeout must be ≥ 1, --soak/--port integers" >&2; exit 2; }
[[ -z "$THREADS" || "$THREADS" =~ ^[1-9][0-9]*$ ]] || { echo "load.sh: --threads must be ≥ 1" >&2; exit 2; }
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "load.sh: 127.0.0.1:$PORT is already in use (--port)" >&2; exit 2
fi
THREAD_ARGS=()
[[ -n "$THREADS" ]] && THREAD_ARGS=(--threads "$THREADS")
QUEUE=$((2 * WORKERS))
URL="http://127.0.0.1:$PORT"
CLK_TCK=$(getconf CLK_TCK)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ladon-load.XXXXXX")
SERVER_PID=""
WRK_PID=""
STATUS=1
cleanup() {
    [[ -n "$WRK_PID" ]] && kill -TERM "$WRK_PID" 2>/dev/null || true
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 200); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done   # ≤ 40 s drain
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    wait 2>/dev/null || true
    if [[ $KEEP == 1 || $STATUS != 0 ]]; then echo "load.sh: server log and wrk output kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kib() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0; }
mib() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
cpu_seconds() { awk -v t="$CLK_TCK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$SERVER_PID/stat"; }
alive() { kill -0 "$SERVER_PID" 2>/dev/null; }
# "queue_sum queue_count compute_sum compute_count" of the server's stage histograms (successful requests only).
stage_sums() {
    curl -sf --max-time 10 "$URL/metrics" 2>/dev/null | awk '
        /^ladon_stage_duration_seconds_sum\{stage="queue"\}/     { qs = $2 }
        /^ladon_stage_duration_seconds_count\{stage="queue"\}/   { qc = $2 }
        /^ladon_stage_duration_seconds_sum\{stage="compute"\}/   { cs = $2 }
        /^ladon_stage_duration_seconds_count\{stage="compute"\}/ { cc = $2 }
        END { printf "%s %s %s %s\n", qs + 0, qc + 0, cs + 0, cc + 0 }'
}
# Wait (≤ 60 s) until nothing is queued or running: requests a finished wrk run left behind still run once.
settle() {
    local _
    for _ in $(seq 1 120); do
        curl -sf --max-time 5 "$URL/metrics" 2>/dev/null \
            | awk '/^ladon_(queue_depth|inflight_requests) / { busy += $2 } END { exit busy > 0 }' && return 0
        sleep 0.5
    done
    echo "load.sh: the server still had requests queued or running after 60 s" >&2
}

# The packet.
"$LADON" encode "$IMAGE" -o "$TMP/packet.ldnp" --model "$MODEL" "${THREAD_ARGS[@]}" >/dev/null
PACKET_BYTES=$(stat -c %s "$TMP/packet.ldnp")

# The server.
"$LADON" serve --model "$MODEL" --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" --queue "$QUEUE" \
    --log-level warning "${THREAD_ARGS[@]}" > "$TMP/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 360); do
    curl -sf --max-time 2 "$URL/readyz" >/dev/null 2>&1 && break
    alive || { echo "load.sh: ladon serve exited:" >&2; tail -n 5 "$TMP/server.log" >&2; exit 1; }
    sleep 0.5
done
curl -sf --max-time 2 "$URL/readyz" >/dev/null || { echo "load.sh: $URL not ready after 180 s" >&2; exit 1; }
RSS_IDLE=$(kib VmRSS)
# One request first: the packet must be answered 200 (and the first request's allocations are made).
code=$(curl -s -o "$TMP/first.json" -w '%{http_code}' --max-time "$TIMEOUT" -H 'Content-Type: application/vnd.ladon.packet' \
    --data-binary @"$TMP/packet.ldnp" "$URL/v1/infer")
[[ "$code" == 200 ]] || { echo "load.sh: the first request got HTTP $code: $(head -c 300 "$TMP/first.json")" >&2; exit 1; }
RSS_WARM=$(kib VmRSS)

echo "== ladon serve --workers $WORKERS --queue $QUEUE on $URL, $(nproc) CPUs, model $MODEL$( ((BACKOFF)) && echo ' (wrk backs off on 503)')"
echo "   packet: $(basename "$IMAGE") → $PACKET_BYTES bytes; RSS idle $(mib "$RSS_IDLE") MiB, after one request $(mib "$RSS_WARM") MiB"
echo "   req/s counts every answer, 200/s only the 200s; p50/p99 are wrk's, over every answer (503s too);"
echo "   queue_ms/comp_ms are the server's mean wait and compute per 200 answer (ladon_stage_duration_seconds)."
printf '%-6s %5s %3s %6s %8s %8s %7s %7s %8s %7s %6s %6s %6s %7s %6s %7s %8s\n' \
    run conns thr secs 'req/s' '200/s' p50_ms p99_ms queue_ms comp_ms 200 503 other sockerr cpu_s RSS_MiB peak_MiB
failed=()

# result NAME CONNS THREADS CPU0 STAGES0 FILE: prints one row from wrk's LADON_RESULT line, records failures.
result() {
    local name=$1 conns=$2 threads=$3 cpu0=$4 stages0=$5 file=$6 line
    line=$(grep '^LADON_RESULT ' "$file" | tail -n 1 || true)
    if [[ -z "$line" ]]; then
        failed+=("$name: wrk printed no result (see $file)"); tail -n 5 "$file"; return
    fi
    local -A r=()
    local kv
    for kv in ${line#LADON_RESULT }; do r[${kv%%=*}]=${kv#*=}; done
    local sockerr=$(( r[err_connect] + r[err_read] + r[err_write] + r[err_timeout] ))
    local cpu stages qms="-" cms="-"
    cpu=$(awk -v a="$cpu0" -v b="$(cpu_seconds 2>/dev/null || echo "$cpu0")" 'BEGIN { printf "%.1f", b - a }')
    read -r -a stages <<< "$stages0 $(stage_sums)"
    if (( ${#stages[@]} == 8 )); then
        read -r qms cms < <(awk -v a="${stages[*]}" 'BEGIN { split(a, s, " ");
            dq = s[6] - s[2]; dc = s[8] - s[4];
            printf "%s %s\n", (dq > 0 ? sprintf("%.0f", 1000 * (s[5] - s[1]) / dq) : "-"),
                             (dc > 0 ? sprintf("%.0f", 1000 * (s[7] - s[3]) / dc) : "-") }')
    fi
    printf '%-6s %5d %3d %6.1f %8.2f %8.2f %7.0f %7.0f %8s %7s %6d %6d %6d %7d %6s %7s %8s\n' \
        "$name" "$conns" "$threads" "${r[seconds]}" "${r[rps]}" "${r[ok_rps]}" "${r[p50_ms]}" "${r[p99_ms]}" "$qms" "$cms" \
        "${r[s200]}" "${r[s503]}" "${r[other]}" "$sockerr" "$cpu" "$(mib "$(kib VmRSS)")" "$(mib "$(kib VmHWM)")"
    (( r[other] == 0 )) || failed+=("$name: ${r[other]} answers neither 200 nor 503 (${r[other_codes]})")
    (( sockerr == 0 )) || failed+=("$name: wrk socket errors connect ${r[err_connect]} read ${r[err_read]} write ${r[err_write]} timeout ${r[err_timeout]}")
    (( r[s200] > 0 )) || failed+=("$name: no 200 answer")
}

# wrk_args CONNS SECONDS: the command line of one wrk run, cut off (timeout) if wrk itself overruns.
wrk_args() {
    local conns=$1 seconds=$2
    WRK=(env "LADON_BACKOFF=$BACKOFF" timeout --kill-after=10 $((seconds + TIMEOUT + 30))
         wrk -t $(( conns < 2 ? conns : 2 )) -c "$conns" -d "${seconds}s" --timeout "${TIMEOUT}s" -s "$LUA"
         "$URL/v1/infer" -- "$TMP/packet.ldnp")
}

for conns in 1 $((2 * WORKERS)) $((8 * WORKERS)); do
    name="c$conns"
    settle
    cpu0=$(cpu_seconds); stages0=$(stage_sums)
    wrk_args "$conns" "$DURATION"
    "${WRK[@]}" > "$TMP/wrk-$name.txt" 2>&1 || true
    result "$name" "$conns" $(( conns < 2 ? conns : 2 )) "$cpu0" "$stages0" "$TMP/wrk-$name.txt"
    alive || { failed+=("ladon serve died during $name"); break; }
done

if (( SOAK > 0 )) && alive; then
    conns=$((2 * WORKERS))
    settle
    cpu0=$(cpu_seconds); stages0=$(stage_sums)
    echo "== soak: $conns connections for $SOAK s, RSS every 10 s"
    wrk_args "$conns" "$SOAK"
    "${WRK[@]}" > "$TMP/wrk-soak.txt" 2>&1 &
    WRK_PID=$!
    : > "$TMP/rss.txt"
    started=$SECONDS
    for _ in $(seq 0 $(( SOAK / 10 + 3 ))); do           # bounded: wrk ends after SOAK s
        alive || break
        echo "$((SECONDS - started)) $(kib VmRSS) $(kib VmHWM)" >> "$TMP/rss.txt"
        kill -0 "$WRK_PID" 2>/dev/null || break
        sleep 10
    done
    wait "$WRK_PID" || true
    WRK_PID=""
    alive || failed+=("ladon serve died during the soak")
    result soak "$conns" $(( conns < 2 ? conns : 2 )) "$cpu0" "$stages0" "$TMP/wrk-soak.txt"
    awk '{ printf "%s%ss %.0f", (NR > 1 ? ", " : "   RSS MiB by time: "), $1, $2 / 1024 } END { print "" }' "$TMP/rss.txt"
    awk 'NR == 1 { first = $2 } { last = $2; if ($2 > max) max = $2 }
         END { if (NR) printf "   RSS first %.0f MiB, last %.0f MiB, max %.0f MiB, growth %+.1f MiB over %d samples\n",
               first / 1024, last / 1024, max / 1024, (last - first) / 1024, NR }' "$TMP/rss.txt"
fi

if alive; then
    curl -sf --max-time 10 "$URL/metrics" > "$TMP/metrics.txt" || true
    echo "== server counters: $(grep -E '^ladon_(http_requests_total\{route="/v1/infer"|refused_total)' "$TMP/metrics.txt" \
        | sed -E 's/^ladon_//; s/route="[^"]*",//' | tr '\n' ' ')"
    echo "== peak RSS (VmHWM) $(mib "$(kib VmHWM)") MiB, RSS now $(mib "$(kib VmRSS)") MiB"
else
    failed+=("ladon serve is not running at the end"); tail -n 20 "$TMP/server.log"
fi
if grep -qiE 'error|crit' "$TMP/server.log"; then
    echo "== server log lines at error or above:"; grep -iE 'error|crit' "$TMP/server.log" | head -n 10
fi
if [[ ${#failed[@]} == 0 ]]; then
    STATUS=0; echo "RESULT: PASS (only 200/503, no socket errors, server up)"
else
    echo "RESULT: FAIL: $(IFS=';'; echo "${failed[*]}")"
fi
exit "$STATUS"
