#!/usr/bin/env python3
"""Stage timings of two (or more) `ladon` executables on the same model and photo, interleaved in rounds.

    python Scripts/bench/compare_binaries.py OLD_LADON NEW_LADON --model /tmp/ladon-parity/model.safetensors \\
        [--image Scripts/parity/images/astronaut.jpg] [--rounds 4] [--runs 5] [--threads 2]

Each round runs every binary once on `--runs + 1` copies of the image (`ladon infer --json`; the first, warm-up,
is dropped). The machine is shared and noisy, so the binaries alternate (in reversed order every other round) and
the script prints per-stage medians and the last binary's time as a multiple of the first's. Used for the A/B figures in docs/performance.md.
"""
import argparse
import collections
import json
import os
import statistics
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STAGES = ["preprocessMs", "encoderMs", "compressMs", "decompressMs", "decoder+bodyMs", "classificationMs",
          "segmentationMs", "detectionMs"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("binaries", nargs="+")
    p.add_argument("--model", required=True)
    p.add_argument("--image", default=os.path.join(ROOT, "Scripts", "parity", "images", "astronaut.jpg"))
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    times = {b: collections.defaultdict(list) for b in a.binaries}
    for r in range(a.rounds):
        # The order alternates round by round: on this machine whichever binary ran second in a round measured up to
        # 10 % slower in every stage (two runs with the order swapped), which a fixed order charges to one binary.
        for b in (a.binaries if r % 2 == 0 else a.binaries[::-1]):
            out = subprocess.run([b, "infer", "--model", a.model, "--threads", str(a.threads), "--json"]
                                 + [a.image] * (a.runs + 1), capture_output=True, text=True, check=True).stdout
            for line in out.splitlines()[1:]:
                for k, v in json.loads(line)["timings"].items():
                    times[b][k].append(v)
    print("stage".ljust(18) + "".join(f"{i:>12}" for i in range(len(a.binaries))) + "   last/first")
    for k in STAGES:
        meds = [statistics.median(times[b][k]) for b in a.binaries]
        print(k.ljust(18) + "".join(f"{m:12.1f}" for m in meds) + f"   {meds[-1] / meds[0]:.2f}")
    for i, b in enumerate(a.binaries):
        print(f"{i}: {b}")


if __name__ == "__main__":
    main()
