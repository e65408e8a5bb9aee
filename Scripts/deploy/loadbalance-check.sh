#!/usr/bin/env bash
# Opt-in check of `ladon serve` behind nginx (docs/deployment.md, "More than one server"), all on 127.0.0.1:
# two replicas (ports 18081, 18082) behind Configs/deploy/nginx-ladon.conf (rewritten to 18080 → 18081/18082),
# N packets through nginx, each 200 answer compared with `ladon decode --json` on the same packet, both replicas
# must have served, then the throughput of one replica alone against two behind nginx.
#
#   Scripts/deploy/loadbalance-check.sh --model M [--ladon BIN] [--requests N] [--concurrency C] [--images DIR]
#                                       [--bench-requests N] [--threads T] [--serve-args "ARGS"] [--base-port P] [--keep]
#
# --serve-args adds flags to both replicas' `ladon serve` (e.g. "--queue 0" to see busy 503s retried by nginx);
# --bench-requests sets the throughput runs' size (default --requests, 0 skips); --base-port P puts nginx on P
# and the replicas on P+1, P+2 (default 18080); --keep keeps the temp folder (logs, packets, nginx config).
#
# Needs nginx and python3. Exit 0 when every answer matched, no status other than 200/503 (and no transport
# error) was seen and both replicas served; 1 otherwise. Every process it starts is stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MODEL=""
LADON="$ROOT/.build/release/ladon"
REQUESTS=40
CONCURRENCY=4
BENCH_REQUESTS=""
IMAGES="$ROOT/Scripts/parity/images"
THREADS=""
SERVE_ARGS=""
KEEP=0
BASE_PORT=18080
READY_WAIT=180   # seconds to wait for the replicas and nginx

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --model) MODEL=$2; shift 2 ;;
        --ladon) LADON=$2; shift 2 ;;
        --requests) REQUESTS=$2; shift 2 ;;
        --concurrency) CONCURRENCY=$2; shift 2 ;;
        --bench-requests) BENCH_REQUESTS=$2; shift 2 ;;
        --images) IMAGES=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --serve-args) SERVE_ARGS=$2; shift 2 ;;
        --base-port) BASE_PORT=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage ;;
        *) echo "loadbalance-check: unknown argument $1" >&2; usage ;;
    esac
done
[[ -n "$MODEL" ]] || { echo "loadbalance-check: --model is required" >&2; usage; }
[[ -f "$MODEL" ]] || { echo "loadbalance-check: no model file $MODEL" >&2; exit 2; }
[[ -x "$LADON" ]] || { echo "loadbalance-check: no ladon binary at $LADON (swift build -c release, or --ladon BIN)" >&2; exit 2; }
[[ "$REQUESTS" =~ ^[1-9][0-9]*$ && "$CONCURRENCY" =~ ^[1-9][0-9]*$ ]] || { echo "loadbalance-check: --requests/--concurrency must be positive integers" >&2; exit 2; }
[[ "$BASE_PORT" =~ ^[1-9][0-9]*$ ]] && (( BASE_PORT < 65534 )) || { echo "loadbalance-check: bad --base-port" >&2; exit 2; }
LB_PORT=$BASE_PORT
PORTS=($((BASE_PORT + 1)) $((BASE_PORT + 2)))
[[ -z "$BENCH_REQUESTS" || "$BENCH_REQUESTS" =~ ^[0-9]+$ ]] || { echo "loadbalance-check: --bench-requests must be an integer" >&2; exit 2; }
NGINX=$(command -v nginx || true)
[[ -z "$NGINX" && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
[[ -n "$NGINX" ]] || { echo "loadbalance-check: nginx not found (apt-get install nginx)" >&2; exit 2; }
MODEL=$(cd "$(dirname "$MODEL")" && pwd)/$(basename "$MODEL")
THREAD_ARGS=()
[[ -n "$THREADS" ]] && THREAD_ARGS=(--threads "$THREADS")
read -r -a EXTRA_SERVE_ARGS <<< "$SERVE_ARGS"

# Refuse to start on ports something else holds (never touch other processes).
for port in "$LB_PORT" "${PORTS[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "loadbalance-check: 127.0.0.1:$port is already in use; stop whatever listens there first" >&2
        exit 2
    fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/ladon-lb.XXXXXX")
PIDS=()
STATUS=1
cleanup() {
    local pid
    if [[ -f "$TMP/nginx.pid" ]]; then kill -TERM "$(cat "$TMP/nginx.pid")" 2>/dev/null || true; fi
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    # Bounded wait (the replicas drain in ≤ --drain-timeout; they are idle here), then SIGKILL stragglers.
    for _ in $(seq 1 50); do
        local alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [[ $alive == 0 ]] && break
        sleep 0.2
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ $KEEP == 1 || $STATUS != 0 ]]; then
        echo "loadbalance-check: logs and packets kept in $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. Packets and their in-process answers.
mkdir -p "$TMP/cases"
shopt -s nullglob
images=("$IMAGES"/*.jpg "$IMAGES"/*.jpeg "$IMAGES"/*.png)
shopt -u nullglob
[[ ${#images[@]} -gt 0 ]] || { echo "loadbalance-check: no JPEG/PNG images in $IMAGES" >&2; exit 2; }
echo "== packets: ${#images[@]} images from $IMAGES, model $MODEL"
packets=()
for image in "${images[@]}"; do
    name=$(basename "${image%.*}")
    "$LADON" encode "$image" -o "$TMP/cases/$name.ldnp" --model "$MODEL" "${THREAD_ARGS[@]}" >/dev/null
    packets+=("$TMP/cases/$name.ldnp")
    echo "   $name: $(stat -c %s "$TMP/cases/$name.ldnp") bytes"
done
# One `ladon decode --json` for all packets (one model load): one JSON line per packet, in order.
"$LADON" decode "${packets[@]}" --json --model "$MODEL" "${THREAD_ARGS[@]}" > "$TMP/expected.jsonl"
[[ $(wc -l < "$TMP/expected.jsonl") == "${#packets[@]}" ]] \
    || { echo "loadbalance-check: ladon decode printed $(wc -l < "$TMP/expected.jsonl") lines for ${#packets[@]} packets" >&2; exit 1; }
i=0
while IFS= read -r line; do
    printf '%s\n' "$line" > "${packets[$i]%.ldnp}.expected.json"
    i=$((i + 1))
done < "$TMP/expected.jsonl"

# 2. Two replicas.
for port in "${PORTS[@]}"; do
    "$LADON" serve --model "$MODEL" --host 127.0.0.1 --port "$port" --log-level warning "${THREAD_ARGS[@]}" "${EXTRA_SERVE_ARGS[@]}" \
        > "$TMP/replica-$port.log" 2>&1 &
    PIDS+=($!)
done

# 3. nginx with the shipped snippet, ports rewritten to the test ports; every path inside $TMP.
sed -e "s/127\.0\.0\.1:8081/127.0.0.1:${PORTS[0]}/" \
    -e "s/127\.0\.0\.1:8082/127.0.0.1:${PORTS[1]}/" \
    -e "s/^\([[:space:]]*\)listen 8080;/\1listen 127.0.0.1:$LB_PORT;/" \
    "$ROOT/Configs/deploy/nginx-ladon.conf" > "$TMP/ladon.conf"
for want in "127.0.0.1:${PORTS[0]}" "127.0.0.1:${PORTS[1]}" "listen 127.0.0.1:$LB_PORT;"; do
    grep -qF "$want" "$TMP/ladon.conf" || { echo "loadbalance-check: could not rewrite Configs/deploy/nginx-ladon.conf ($want)" >&2; exit 1; }
done
if grep -Eq '^[[:space:]]*listen[[:space:]]+[0-9]*:?(8080|443)' "$TMP/ladon.conf"; then
    echo "loadbalance-check: Configs/deploy/nginx-ladon.conf has a listen line this script cannot move to loopback" >&2; exit 1
fi
mkdir -p "$TMP/nginx-temp"
USER_LINE=""
# As root, nginx's workers would run as nobody and could not use $TMP; keep them as this user.
[[ $EUID == 0 ]] && USER_LINE="user $(id -un) $(id -gn);"
cat > "$TMP/nginx.conf" <<EOF
$USER_LINE
worker_processes 1;
events { worker_connections 512; }
http {
    client_body_temp_path $TMP/nginx-temp/body;
    proxy_temp_path $TMP/nginx-temp/proxy;
    fastcgi_temp_path $TMP/nginx-temp/fastcgi;
    uwsgi_temp_path $TMP/nginx-temp/uwsgi;
    scgi_temp_path $TMP/nginx-temp/scgi;
    include $TMP/ladon.conf;
    log_format lb '\$status|\$upstream_addr|\$upstream_status|\$request_time|\$ladon_request_id';
    access_log $TMP/access.log lb;
}
EOF
NGINX_GLOBALS="daemon off; pid $TMP/nginx.pid; error_log $TMP/error.log;"
"$NGINX" -t -q -p "$TMP" -c "$TMP/nginx.conf" -g "$NGINX_GLOBALS" 2> "$TMP/nginx-t.log" \
    || { cat "$TMP/nginx-t.log" >&2; echo "loadbalance-check: nginx -t failed" >&2; exit 1; }
"$NGINX" -p "$TMP" -c "$TMP/nginx.conf" -g "$NGINX_GLOBALS" 2> "$TMP/nginx-stderr.log" &
PIDS+=($!)

# 4. Wait (bounded) until both replicas and nginx answer /readyz.
ready() { curl -sf --max-time 2 "http://127.0.0.1:$1/readyz" >/dev/null 2>&1; }
deadline=$((SECONDS + READY_WAIT))
for port in "${PORTS[@]}" "$LB_PORT"; do
    until ready "$port"; do
        for pid in "${PIDS[@]}"; do
            kill -0 "$pid" 2>/dev/null || { echo "loadbalance-check: a server exited early; logs:" >&2; tail -n 5 "$TMP"/*.log >&2; exit 1; }
        done
        (( SECONDS < deadline )) || { echo "loadbalance-check: 127.0.0.1:$port not ready after ${READY_WAIT}s" >&2; tail -n 5 "$TMP"/*.log >&2; exit 1; }
        sleep 0.5
    done
done
echo "== replicas on ${PORTS[*]} and nginx on $LB_PORT ready ($(nproc) CPUs)"

# 5. The driver: correctness, per-replica counts, throughput.
driver_args=(--lb "http://127.0.0.1:$LB_PORT" --cases "$TMP/cases" --requests "$REQUESTS" --concurrency "$CONCURRENCY")
for port in "${PORTS[@]}"; do driver_args+=(--replica "http://127.0.0.1:$port"); done
[[ -n "$BENCH_REQUESTS" ]] && driver_args+=(--bench-requests "$BENCH_REQUESTS")
set +e
python3 "$ROOT/Scripts/deploy/lb_driver.py" "${driver_args[@]}"
STATUS=$?
set -e

# Anything odd the servers logged at warning or above.
if grep -qiE 'warn|error|crit' "$TMP"/replica-*.log 2>/dev/null; then
    echo "== replica log lines at warning or above:"
    grep -hiE 'warn|error|crit' "$TMP"/replica-*.log | head -n 20
fi
if grep -qE '\[(error|crit|alert|emerg)\]' "$TMP/error.log" 2>/dev/null; then
    echo "== nginx error.log:"
    grep -E '\[(error|crit|alert|emerg)\]' "$TMP/error.log" | head -n 20
fi
# nginx's view: status to the client, and which replica(s) answered (two = retried on the other one).
if [[ -s "$TMP/access.log" ]]; then
    echo "== nginx access log: $(wc -l < "$TMP/access.log") requests"
    awk -F'|' '{ n[$1]++ } END { for (s in n) printf "   status %s: %d\n", s, n[s] }' "$TMP/access.log"
    awk -F'|' '{ n[$2]++ } END { for (a in n) printf "   answered by %s: %d\n", a, n[a] }' "$TMP/access.log" | sort
    echo "   retried on the other replica: $(grep -c ', ' "$TMP/access.log" || true)"
fi
exit "$STATUS"
