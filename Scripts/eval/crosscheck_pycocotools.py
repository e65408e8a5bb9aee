"""Cross-check `ladon eval coco` against pycocotools on the same detections.

    ladon eval coco --images DIR --annotations GT.json --results-json RES.json --json > SUMMARY.json
    python Scripts/eval/crosscheck_pycocotools.py GT.json RES.json SUMMARY.json

Runs pycocotools' COCOeval (bbox) on RES.json over every GT image (or the ids in --image-ids, for a run with
--limit or failed images) and prints the 12 numbers side by side with the largest absolute difference. Exit status 1
if it exceeds --tolerance (default 1e-6).
"""
import argparse
import contextlib
import io
import json
import sys

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

NAMES = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("annotations")
    p.add_argument("results")
    p.add_argument("summary")
    p.add_argument("--image-ids", help="JSON list of the evaluated image ids (default: all GT images)")
    p.add_argument("--tolerance", type=float, default=1e-6)
    a = p.parse_args()
    swift = json.load(open(a.summary))["metrics"]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(a.annotations)
        dt = gt.loadRes(a.results) if json.load(open(a.results)) else COCO()
        e = COCOeval(gt, dt, "bbox")
        if a.image_ids:
            e.params.imgIds = json.load(open(a.image_ids))
        e.evaluate()
        e.accumulate()
        e.summarize()
    worst = 0.0
    for name, ref in zip(NAMES, e.stats):
        diff = abs(swift[name] - ref)
        worst = max(worst, diff)
        print(f"{name:6s} swift {swift[name]:.12f}  pycocotools {ref:.12f}  |diff| {diff:.3g}")
    print(f"max |swift - pycocotools| = {worst:.3g}")
    sys.exit(0 if worst <= a.tolerance else 1)


if __name__ == "__main__":
    main()
