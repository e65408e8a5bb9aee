#!/usr/bin/env python3
"""Summarises several saved runs of compare_ort.py into the README's "Speed" table: per stage and thread count, the
median Swift / ORT ratio over the runs, its range, the range of Swift's and ORT's milliseconds, and whether the median
meets issue 11's target. The host probe's range (one-thread matmul GFLOP/s and copy GB/s, before / after each run) is
printed first, so a reader can tell a quiet set of runs from a contended one.

    python Scripts/bench/compare_ort.py ... --pipeline > /tmp/run1.txt      # as many runs as wanted (5 is usual)
    python3 Scripts/bench/summarize_compare_ort.py /tmp/run1.txt /tmp/run2.txt ...

Only the standard library; reads the table rows compare_ort.py prints (`| stage | threads | Swift ms | ORT ms | ... |
Swift / ORT |`). Exit status 2 when a file holds no table (a run that failed).
"""
import argparse
import re
import statistics
import sys

# Issue 11's targets for Swift / ORT; stages without one (the entropy coders) are listed without a verdict.
TARGETS = {
    "encoder": 1.0, "encoder, device loop": 1.0, "server body": 1.0, "classification": 1.0, "segmentation": 1.0,
    "detection": 0.8, "device half": 0.7, "device half, device loop": 0.7, "server half": 0.7,
}
# The same targets for the rows of compare_ort.py --isolated (Swift's stages timed as ORT's are).
TARGETS.update({f"{stage}, isolated": TARGETS[stage] for stage in
                ("encoder", "server body", "classification", "segmentation", "detection", "device half", "server half")})
PROBE = re.compile(r"host probe.*?matmul (\d+) / (\d+) GFLOP/s, 64 MB copy ([\d.]+) / ([\d.]+) GB/s")


def parse(path):
    """(rows, probes) of one compare_ort.py output: rows maps (stage, threads) to (ratio, swift ms, other ms)."""
    rows, probes = {}, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = PROBE.search(line)
            if m:
                probes.append(tuple(float(v) for v in m.groups()))
                continue
            if not line.startswith("| ") or line.count("|") < 7:
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            stage = cells[0].strip("*").strip()
            try:
                threads, swift = int(cells[1]), float(cells[2])
                other, ratio = float(cells[3].split()[0]), float(cells[-1])
            except (ValueError, IndexError):
                continue  # the header, its rule, or a stage without a comparison ("–")
            rows[(stage, threads)] = (ratio, swift, other)
    return rows, probes


def span(values, fmt):
    lo, hi = min(values), max(values)
    return fmt.format(lo) if lo == hi else (fmt + "–" + fmt).format(lo, hi)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", help="saved outputs of compare_ort.py")
    args = p.parse_args()
    runs = []
    for path in args.runs:
        rows, probes = parse(path)
        if not rows:
            print(f"{path}: no compare_ort.py table in it", file=sys.stderr)
            sys.exit(2)
        runs.append((rows, probes))
    probes = [v for _, ps in runs for v in ps]
    if probes:
        print(f"{len(runs)} runs; host probe before / after, one thread: matmul "
              f"{span([v[0] for v in probes] + [v[1] for v in probes], '{:.0f}')} GFLOP/s, 64 MB copy "
              f"{span([v[2] for v in probes] + [v[3] for v in probes], '{:.1f}')} GB/s (quiet: about 100 GFLOP/s on the "
              f"Zen 3 machine)\n")
    print("| stage | threads | Swift / ORT, median (range; Swift / ORT ms) | each run | target | median meets it |")
    print("|---|---|---|---|---|---|")
    keys = []
    for rows, _ in runs:
        keys += [k for k in rows if k not in keys]
    for stage, threads in keys:
        values = [rows[(stage, threads)] for rows, _ in runs if (stage, threads) in rows]
        ratios = [v[0] for v in values]
        median = statistics.median(ratios)
        target = TARGETS.get(stage)
        verdict = "–" if target is None else ("yes" if median <= target else "**no**")
        print(f"| {stage} | {threads} | {median:.2f} ({span(ratios, '{:.2f}')}; {span([v[1] for v in values], '{:.1f}')}"
              f" / {span([v[2] for v in values], '{:.1f}')}) | {', '.join(f'{r:.2f}' for r in ratios)} | "
              f"{'–' if target is None else f'≤ {target}'} | {verdict} |")


if __name__ == "__main__":
    main()
