#!/usr/bin/env bash
# Opt-in API fuzzing of `ladon serve` against docs/openapi.yaml with schemathesis, on 127.0.0.1 only.
#
#   Scripts/deploy/schemathesis.sh --model M [--ladon BIN] [--max-examples 50] [--checks not_a_server_error]
#                                  [--seed N] [--port 18090] [--venv DIR] [--time-limit 1200] [--keep]
#
# Starts `ladon serve` on 127.0.0.1:PORT with --workers 1 --queue 1000 --deadline 3600, and runs schemathesis
# with one worker (one request at a time), so the server's 503s (busy, deadline_exceeded, shutting_down) cannot
# happen: any 5xx, 503 included, is a failure. --checks all also runs the conformance checks (documented status
# codes, content types, response schemas); the default is not_a_server_error. Afterwards the server's own
# /metrics must show no 5xx and the server must still be alive. schemathesis 4.x is installed into --venv
# (default /tmp/st-venv) from PyPI if it is not there yet. The whole run is cut at --time-limit seconds.
# Exit 0 when schemathesis passed, the server answered no 5xx and did not die; 1 otherwise.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MODEL=""
LADON="$ROOT/.build/release/ladon"
MAX_EXAMPLES=50
CHECKS=not_a_server_error
SEED=20251202
PORT=18090
VENV=${SCHEMATHESIS_VENV:-/tmp/st-venv}
TIME_LIMIT=1200
KEEP=0

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --model) MODEL=$2; shift 2 ;;
        --ladon) LADON=$2; shift 2 ;;
        --max-examples) MAX_EXAMPLES=$2; shift 2 ;;
        --checks) CHECKS=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --venv) VENV=$2; shift 2 ;;
        --time-limit) TIME_LIMIT=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage ;;
        *) echo "schemathesis.sh: unknown argument $1" >&2; usage ;;
    esac
done
[[ -n "$MODEL" ]] || { echo "schemathesis.sh: --model is required" >&2; usage; }
[[ -f "$MODEL" ]] || { echo "schemathesis.sh: no model file $MODEL" >&2; exit 2; }
[[ -x "$LADON" ]] || { echo "schemathesis.sh: no ladon binary at $LADON (swift build -c release, or --ladon BIN)" >&2; exit 2; }
for n in "$MAX_EXAMPLES" "$PORT" "$TIME_LIMIT" "$SEED"; do
    [[ "$n" =~ ^[0-9]+$ ]] || { echo "schemathesis.sh: $n is not a number" >&2; exit 2; }
done
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "schemathesis.sh: 127.0.0.1:$PORT is already in use (--port)" >&2; exit 2
fi

if [[ ! -x "$VENV/bin/schemathesis" ]]; then
    echo "== installing schemathesis 4.x into $VENV"
    python3 -m venv "$VENV"
    timeout 600 "$VENV/bin/pip" install -q 'schemathesis>=4,<5'
fi
echo "== $("$VENV/bin/schemathesis" --version)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ladon-st.XXXXXX")
SERVER_PID=""
STATUS=1
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ $KEEP == 1 || $STATUS != 0 ]]; then echo "schemathesis.sh: server log and reports kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

URL="http://127.0.0.1:$PORT"
# A queue schemathesis can never fill and a deadline it never reaches: no legitimate 503.
"$LADON" serve --model "$MODEL" --host 127.0.0.1 --port "$PORT" --workers 1 --queue 1000 --deadline 3600 \
    --log-level info > "$TMP/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 360); do
    curl -sf --max-time 2 "$URL/readyz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "schemathesis.sh: ladon serve exited:" >&2; tail -n 5 "$TMP/server.log" >&2; exit 1; }
    sleep 0.5
done
curl -sf --max-time 2 "$URL/readyz" >/dev/null || { echo "schemathesis.sh: $URL not ready after 180 s" >&2; exit 1; }
echo "== ladon serve ready on $URL (model $MODEL)"

echo "== schemathesis run docs/openapi.yaml --url $URL --checks $CHECKS --max-examples $MAX_EXAMPLES --seed $SEED"
set +e
(cd "$TMP" && timeout "$TIME_LIMIT" "$VENV/bin/schemathesis" run "$ROOT/docs/openapi.yaml" \
    --url "$URL" --checks "$CHECKS" --max-examples "$MAX_EXAMPLES" --seed "$SEED" --workers 1 \
    --request-timeout 120 --generation-database none --report junit --report-dir "$TMP/report" --no-color)
ST=$?
set -e
[[ $ST == 124 ]] && echo "schemathesis.sh: schemathesis cut off after $TIME_LIMIT s"

# The server's side: still alive, and no 5xx in its own counters.
failed=()
[[ $ST == 0 ]] || failed+=("schemathesis exited $ST")
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    failed+=("ladon serve died during the run")
    tail -n 20 "$TMP/server.log"
else
    curl -sf --max-time 10 "$URL/metrics" > "$TMP/metrics.txt" || failed+=("GET /metrics failed after the run")
    echo "== ladon_http_requests_total after the run (route, status: count)"
    grep '^ladon_http_requests_total{' "$TMP/metrics.txt" | sed -E 's/^ladon_http_requests_total\{(.*)\} (.*)$/   \1: \2/' | sort
    fives=$(grep -E '^ladon_http_requests_total\{.*status="5[0-9][0-9]"' "$TMP/metrics.txt" || true)
    if [[ -n "$fives" ]]; then
        failed+=("the server answered 5xx")
        echo "== 5xx in the server log:"
        grep -E 'status=5[0-9][0-9]' "$TMP/server.log" | head -n 20
    fi
fi
if [[ ${#failed[@]} == 0 ]]; then
    STATUS=0
    echo "RESULT: PASS (no 5xx, server alive)"
else
    echo "RESULT: FAIL: $(IFS=';'; echo "${failed[*]}")"
fi
exit "$STATUS"
