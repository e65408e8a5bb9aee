#!/usr/bin/env python3
"""Load-balancer check driver for Scripts/deploy/loadbalance-check.sh (stdlib only).

1. Sends --requests packets through the balancer (--lb) at --concurrency, and checks that every 200 answer equals
   the in-process answer of `ladon decode --json` (all fields but `file` and `timings`, floats exactly), that
   X-Request-Id comes back (the client's when it sent one), and counts the other statuses. 503 (busy, deadline,
   draining) is allowed; any other non-200, a transport error or a differing answer is a failure.
2. Reads each replica's /metrics (--replica, given twice) before and after, and shows how many /v1/infer 200s
   each served; each must have served at least one.
3. Throughput: --bench-requests packets at the same concurrency straight to the first replica, then through
   the balancer: answers/s, p50 and p99 latency.

Cases: --cases DIR holds NAME.ldnp (a packet) and NAME.expected.json (its in-process answer) pairs.
Every request is bounded by --timeout seconds; the run sends a fixed number of requests and stops.
Exit status: 0 if everything passed, 1 otherwise, 2 for bad arguments.
"""
import argparse
import http.client
import json
import os
import queue
import re
import sys
import threading
import time
import urllib.parse

PACKET_TYPE = "application/vnd.ladon.packet"
IGNORED = ("file", "timings")


def load_cases(directory):
    cases = []
    for name in sorted(os.listdir(directory)):
        if not name.endswith(".ldnp"):
            continue
        stem = name[: -len(".ldnp")]
        with open(os.path.join(directory, name), "rb") as f:
            body = f.read()
        with open(os.path.join(directory, stem + ".expected.json"), "rb") as f:
            expected = json.loads(f.read())
        cases.append((stem, body, expected))
    if not cases:
        sys.exit(f"lb_driver: no *.ldnp in {directory}")
    return cases


def first_difference(a, b, path="$"):
    """The path of the first place two JSON values differ, or None. Numbers compare exactly; 1 == 1.0."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key} (only in {'server' if key in a else 'in-process'} answer)"
            d = first_difference(a[key], b[key], f"{path}.{key}")
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path} (length {len(a)} vs {len(b)})"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if isinstance(a, bool) or isinstance(b, bool) or type(a) in (str, type(None)) or type(b) in (str, type(None)):
        return None if a == b and type(a) is type(b) else f"{path} ({a!r} vs {b!r})"
    return None if a == b else f"{path} ({a!r} vs {b!r})"


def strip(answer):
    return {k: v for k, v in answer.items() if k not in IGNORED}


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.statuses = {}
        self.latencies_ok = []
        self.failures = []  # (request index, case, text)
        self.ok = 0

    def count(self, status):
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def fail(self, index, case, text):
        with self.lock:
            self.failures.append((index, case, text))


def run_requests(url, cases, total, concurrency, timeout, check, tag):
    """Sends `total` packets (round robin over cases) with `concurrency` keep-alive connections."""
    parsed = urllib.parse.urlsplit(url)
    host, port = parsed.hostname, parsed.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"lb_driver: refusing non-loopback URL {url}")
    work = queue.Queue()
    for i in range(total):
        work.put(i)
    stats = Stats()

    def worker():
        conn = None
        while True:
            try:
                i = work.get_nowait()
            except queue.Empty:
                break
            name, body, expected = cases[i % len(cases)]
            headers = {"Content-Type": PACKET_TYPE, "Content-Length": str(len(body))}
            sent_id = f"lbcheck-{tag}-{i}" if i % 2 == 0 else None
            if sent_id:
                headers["X-Request-Id"] = sent_id
            start = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(host, port, timeout=timeout)
                conn.request("POST", "/v1/infer", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                elapsed = time.perf_counter() - start
                status = response.status
                rid = response.getheader("X-Request-Id")
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as error:
                stats.count("transport")
                stats.fail(i, name, f"transport error: {type(error).__name__}: {error}")
                if conn is not None:
                    conn.close()
                conn = None
                continue
            stats.count(status)
            if status == 200:
                with stats.lock:
                    stats.latencies_ok.append(elapsed)
            if not check:
                if status not in (200, 503):
                    stats.fail(i, name, f"HTTP {status}: {data[:300]!r}")
                continue
            if not rid:
                stats.fail(i, name, f"HTTP {status} without X-Request-Id")
            elif sent_id and rid != sent_id:
                stats.fail(i, name, f"X-Request-Id {rid!r}, sent {sent_id!r}")
            if status == 200:
                try:
                    answer = json.loads(data)
                except ValueError as error:
                    stats.fail(i, name, f"200 with a body that is not JSON ({error}): {data[:200]!r}")
                    continue
                diff = first_difference(strip(answer), strip(expected))
                if diff:
                    stats.fail(i, name, f"answer differs from the in-process answer at {diff} (request id {rid})")
                else:
                    with stats.lock:
                        stats.ok += 1
            elif status != 503:
                stats.fail(i, name, f"HTTP {status} (request id {rid}): {data[:300]!r}")
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    wall = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall
    return stats, wall


def percentile(values, p):
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def ms(seconds):
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


def read_metrics(url, timeout):
    """{(route, status): count} of ladon_http_requests_total and {reason: count} of ladon_refused_total."""
    parsed = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port or 80, timeout=timeout)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        if response.status != 200:
            raise RuntimeError(f"GET {url}/metrics: HTTP {response.status}")
    finally:
        conn.close()
    requests, refused = {}, {}
    sample = re.compile(r"^(\w+)\{([^}]*)\}\s+(\S+)")
    label = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        m = sample.match(line)
        if not m:
            continue
        labels = dict(label.findall(m.group(2)))
        value = float(m.group(3))
        if m.group(1) == "ladon_http_requests_total":
            key = (labels.get("route"), labels.get("status"))
            requests[key] = requests.get(key, 0) + value
        elif m.group(1) == "ladon_refused_total":
            refused[labels.get("reason")] = refused.get(labels.get("reason"), 0) + value
    return requests, refused


def status_line(stats):
    parts = [f"{k}: {v}" for k, v in sorted(stats.statuses.items(), key=lambda kv: str(kv[0]))]
    return ", ".join(parts) or "none"


def bench_line(label, stats, wall):
    ok = stats.statuses.get(200, 0)
    return (f"  {label:<28} {ok / wall:6.2f} answers/s  p50 {ms(percentile(stats.latencies_ok, 50)):>8}  "
            f"p99 {ms(percentile(stats.latencies_ok, 99)):>8}  ({status_line(stats)}; {wall:.1f} s)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lb", required=True, help="balancer URL, e.g. http://127.0.0.1:18080")
    parser.add_argument("--replica", action="append", required=True, help="a replica's URL (give each)")
    parser.add_argument("--cases", required=True, help="folder of NAME.ldnp + NAME.expected.json")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--bench-requests", type=int, default=None, help="requests per throughput run (default --requests; 0 skips)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds one request may take")
    args = parser.parse_args()
    if args.requests < 1 or args.concurrency < 1 or len(args.replica) < 2:
        parser.error("--requests and --concurrency must be ≥ 1, and give --replica twice")
    bench = args.requests if args.bench_requests is None else args.bench_requests
    cases = load_cases(args.cases)
    failed = []

    before = {url: read_metrics(url, args.timeout) for url in args.replica}
    print(f"correctness: {args.requests} requests through {args.lb} at concurrency {args.concurrency}, "
          f"{len(cases)} packets ({', '.join(c[0] for c in cases)})")
    stats, wall = run_requests(args.lb, cases, args.requests, args.concurrency, args.timeout, check=True, tag="check")
    print(f"  statuses: {status_line(stats)}; {stats.ok} answers equal the in-process answer; {wall:.1f} s")
    for index, case, text in sorted(stats.failures)[:20]:
        print(f"  FAIL request {index} ({case}): {text}")
    if len(stats.failures) > 20:
        print(f"  ... and {len(stats.failures) - 20} more failures")
    if stats.failures:
        failed.append(f"{len(stats.failures)} failed requests through the balancer")
    if stats.ok == 0:
        failed.append("no answer through the balancer was 200")

    print("per replica (this run's /v1/infer answers, from each replica's /metrics):")
    for url in args.replica:
        after = read_metrics(url, args.timeout)
        delta = {k: v - before[url][0].get(k, 0) for k, v in after[0].items() if k[0] == "/v1/infer"}
        delta = {k: v for k, v in delta.items() if v}
        refused = {k: v - before[url][1].get(k, 0) for k, v in after[1].items() if v - before[url][1].get(k, 0)}
        served = int(delta.get(("/v1/infer", "200"), 0))
        others = ", ".join(f"{s}: {int(v)}" for (_, s), v in sorted(delta.items()) if s != "200") or "none"
        print(f"  {url}: {served} answered 200; other statuses: {others}; refused: "
              f"{', '.join(f'{k}: {int(v)}' for k, v in refused.items()) or 'none'}")
        if served == 0:
            failed.append(f"replica {url} served no /v1/infer 200")

    if bench > 0:
        print(f"throughput: {bench} requests at concurrency {args.concurrency} (answers/s counts 200s only)")
        one, wall_one = run_requests(args.replica[0], cases, bench, args.concurrency, args.timeout, check=False, tag="one")
        print(bench_line(f"one replica ({args.replica[0]})", one, wall_one))
        two, wall_two = run_requests(args.lb, cases, bench, args.concurrency, args.timeout, check=False, tag="two")
        print(bench_line(f"{len(args.replica)} replicas via nginx", two, wall_two))
        if wall_one > 0 and wall_two > 0 and one.statuses.get(200) and two.statuses.get(200):
            ratio = (two.statuses[200] / wall_two) / (one.statuses[200] / wall_one)
            print(f"  speed-up of {len(args.replica)} replicas over one: {ratio:.2f}x "
                  f"(on {os.cpu_count()} CPUs; each replica's kernels use all of them)")
        for label, s in (("one replica", one), ("via nginx", two)):
            for index, case, text in sorted(s.failures)[:10]:
                print(f"  FAIL {label} request {index} ({case}): {text}")
            if s.failures:
                failed.append(f"{len(s.failures)} failed requests in the {label} throughput run")

    print("RESULT: " + ("PASS" if not failed else "FAIL: " + "; ".join(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
