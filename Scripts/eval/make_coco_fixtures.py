#!/usr/bin/env python3
"""Builds the small COCO-style dataset and the pycocotools reference numbers for the Swift COCO evaluator.

Run from the repository root with the reference venv (Pillow, numpy, torch, pycocotools):

    python Scripts/eval/make_coco_fixtures.py

Writes into Tests/LadonEvalTests/Fixtures/coco/:
  images/*.jpg        downscaled copies of the repository's own photos (Scripts/data, Scripts/parity/images)
  instances.json      made-up ground truth in the instances_val2017 layout: crowd regions, categories without GT,
                      an image without GT, GT areas exactly on the 32²/96² boundaries, a zero-area GT box
  instances_id0.json  the same with annotation ids counted from 0: pycocotools stores the matched GT id in
                      `dtMatches`, so a match to the annotation with id 0 counts as a false positive
  reference.json      detection sets (random, tied scores, adversarial, a restricted image subset, perfect, and
                      one converted from float32 xyxy model output as torchvision's references/detection does),
                      each with the 12 COCOeval stats of the real pycocotools, the mean precision per IoU
                      threshold the AP/AR per category (so that a mismatch can be located) and the text `summarize()` prints

Every float is written with Python's repr, so the Swift side reads back the identical doubles.
"""
import contextlib
import copy
import io
import json
import os

import numpy as np
from importlib import metadata
import torch
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

OUT = "Tests/LadonEvalTests/Fixtures/coco"

# (image id, file written, source, size after downscaling); ids are real val2017 ids, listed out of order.
IMAGES = [
    (632, "astronaut.jpg", "Scripts/parity/images/astronaut.jpg", (200, 200)),
    (139, "chelsea_small.jpg", "Scripts/data/chelsea_small.png", (160, 106)),
    (285, "coffee_small.jpg", "Scripts/data/coffee_small.png", (160, 107)),
    (724, "grace_hopper.jpg", "Scripts/parity/images/grace_hopper.jpg", (171, 200)),
    (776, "hot_dog.jpg", "Scripts/parity/images/hot_dog.jpg", (200, 150)),
    (785, "rocket.jpg", "Scripts/parity/images/rocket.jpg", (200, 133)),
    (802, "chelsea.jpg", "Scripts/parity/images/chelsea.png", (225, 150)),
]

# COCO ids and names (91-id layout). bicycle, dog, kite and toaster have no GT.
CATEGORIES = [(1, "person"), (2, "bicycle"), (17, "cat"), (18, "dog"), (32, "tie"), (38, "kite"), (47, "cup"),
              (50, "spoon"), (58, "hot dog"), (67, "dining table"), (80, "toaster"), (84, "book")]
NA_IDS = [12, 26, 29, 30, 45, 66, 68, 69, 71, 83]

# (image, category, [x, y, w, h], area field, iscrowd). Areas are made up (segmentation areas are below w·h).
GROUND_TRUTH = [
    (139, 17, [20.0, 5.0, 125.0, 100.0], 10311.5, 0),
    (285, 47, [40.0, 10.0, 85.0, 80.0], 5210.25, 0),
    (285, 50, [100.0, 60.0, 40.0, 12.0], 312.5, 0),
    (285, 67, [0.0, 0.0, 160.0, 107.0], 15120.0, 0),
    (632, 1, [30.0, 10.0, 160.0, 190.0], 21402.7, 0),
    (632, 1, [0.0, 150.0, 200.0, 50.0], 7000.0, 1),
    (632, 1, [5.0, 5.0, 20.0, 30.0], 410.0, 0),
    (632, 84, [100.0, 100.0, 32.0, 32.0], 1024.0, 0),       # area exactly 32²: small and medium
    (724, 1, [10.0, 20.0, 150.0, 180.0], 20000.5, 0),
    (724, 32, [75.0, 120.0, 20.0, 50.0], 731.25, 0),
    (724, 47, [40.0, 40.0, 96.0, 96.0], 9216.0, 0),         # area exactly 96²: medium and large
    (776, 58, [20.0, 30.0, 160.0, 90.0], 10900.0, 0),
    (776, 58, [60.0, 50.0, 50.0, 30.0], 1200.0, 0),
    (776, 67, [0.0, 0.0, 200.0, 150.0], 25000.0, 1),
    (776, 47, [170.0, 10.0, 20.0, 25.0], 380.4, 0),
    (802, 17, [40.0, 10.0, 160.0, 135.0], 16000.0, 0),
    (802, 84, [0.0, 0.0, 60.0, 60.0], 2500.0, 1),
    (802, 84, [150.0, 100.0, 0.0, 12.0], 0.0, 0),           # zero-area box
]


def write_images():
    os.makedirs(f"{OUT}/images", exist_ok=True)
    for _, name, source, size in IMAGES:
        image = Image.open(source).convert("RGB").resize(size, Image.BICUBIC)
        image.save(f"{OUT}/images/{name}", quality=80)


def make_ground_truth(rng):
    rows = list(GROUND_TRUTH)
    # a few random small and medium objects so that every area range has several GT
    for image_id, _, _, (w, h) in IMAGES:
        if image_id == 785:
            continue
        for _ in range(int(rng.integers(2, 6))):
            category = int(rng.choice([1, 47, 50, 84]))
            bw, bh = float(rng.integers(4, 60)), float(rng.integers(4, 60))
            x, y = float(rng.integers(0, w - bw)), float(rng.integers(0, h - bh))
            area = round(bw * bh * float(rng.uniform(0.55, 1.0)), 4)
            rows.append((image_id, category, [x, y, bw, bh], area, int(rng.random() < 0.1)))
    annotations = [{"id": n + 1, "image_id": image_id, "category_id": category, "bbox": bbox, "area": area,
                    "iscrowd": crowd, "segmentation": [[bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1],
                                                        bbox[0] + bbox[2], bbox[1] + bbox[3]]]}
                   for n, (image_id, category, bbox, area, crowd) in enumerate(rows)]
    annotations[3]["ignore"] = 1    # pycocotools overwrites `ignore` with iscrowd
    return {
        "info": {"description": "Ladon for Swift COCO evaluator fixture (made-up ground truth)"},
        "licenses": [],
        "images": [{"id": image_id, "file_name": name, "width": size[0], "height": size[1]}
                   for image_id, name, _, size in IMAGES],
        "annotations": annotations,
        "categories": [{"supercategory": "none", "id": cid, "name": name} for cid, name in CATEGORIES],
    }


def grid(value, step=1 / 16):
    return float(np.round(value / step) * step)


def jittered(gt, rng, score_values=None):
    """Detections near the GT (IoUs across all thresholds), duplicates and false positives."""
    sizes = {image_id: size for image_id, _, _, size in IMAGES}
    detections = []

    def score():
        if score_values is not None:
            return float(rng.choice(score_values))
        return float(rng.integers(1, 65536)) / 65536

    for ann in gt["annotations"]:
        x, y, w, h = ann["bbox"]
        for copy_index in range(2):
            if rng.random() > (0.85 if copy_index == 0 else 0.3):
                continue
            s = float(rng.uniform(0.0, 0.25))
            dx, dy = rng.normal(0, s * max(w, 1)), rng.normal(0, s * max(h, 1))
            dw, dh = rng.normal(0, s * max(w, 1)), rng.normal(0, s * max(h, 1))
            box = [grid(x + dx), grid(y + dy), grid(max(w + dw, 0.5)), grid(max(h + dh, 0.5))]
            detections.append([ann["image_id"], ann["category_id"], *box, score()])
    for image_id, (w, h) in sizes.items():
        for _ in range(int(rng.integers(0, 9))):
            category = int(rng.choice([cid for cid, _ in CATEGORIES]))
            bw, bh = grid(rng.uniform(2, w / 2)), grid(rng.uniform(2, h / 2))
            box = [grid(rng.uniform(0, w - bw)), grid(rng.uniform(0, h - bh)), bw, bh]
            detections.append([image_id, category, *box, score()])
    order = rng.permutation(len(detections))    # results lists are not grouped by image
    return [detections[i] for i in order]


def adversarial(gt, rng):
    d = []
    # exact area boundaries: 32x32 = 1024 and 96x96 = 9216, next to GT on those boundaries
    d += [[632, 84, 100.0, 100.0, 32.0, 32.0, 0.5], [632, 84, 101.0, 100.0, 32.0, 32.0, 0.5],
          [724, 47, 40.0, 40.0, 96.0, 96.0, 0.75], [724, 47, 41.0, 40.0, 96.0, 96.0, 0.75],
          [776, 1, 10.0, 10.0, 32.0, 32.0, 0.5], [776, 1, 10.0, 10.0, 96.0, 96.0, 0.5]]
    # zero-area detections (never match; area 0 is inside the small range)
    d += [[139, 17, 20.0, 5.0, 0.0, 100.0, 0.9], [139, 17, 20.0, 5.0, 125.0, 0.0, 0.95],
          [802, 84, 150.0, 100.0, 0.0, 12.0, 0.3]]
    # many detections inside crowd regions (a crowd GT can absorb several), with tied scores
    for n in range(6):
        d.append([632, 1, 10.0 + 20.0 * n, 160.0, 18.0, 30.0, 0.6 if n % 2 else 0.8])
        d.append([802, 84, 5.0 + 8.0 * n, 5.0 + 7.0 * n, 12.0, 14.0, 0.6])
        d.append([776, 67, 10.0 * n, 5.0 * n, 150.0, 120.0, 0.4])
    # > 100 detections on one image and category: per-image truncation at 100 and maxDets 1/10/100
    for n in range(130):
        score = [0.9, 0.7, 0.7, 0.55][n % 4] if n < 60 else float(rng.integers(1, 256)) / 256
        d.append([632, 1, grid(25.0 + rng.normal(0, 8)), grid(5.0 + rng.normal(0, 8)),
                  grid(165.0 + rng.normal(0, 10)), grid(195.0 + rng.normal(0, 10)), score])
    # N/A ids, categories not in GT, categories without GT, an image without GT, boxes leaving the image
    for n, cid in enumerate(NA_IDS + [5, 90]):
        d.append([139, cid, 20.0, 5.0, 125.0, 100.0, 0.99 - 0.01 * n])
    d += [[285, 18, 40.0, 10.0, 85.0, 80.0, 0.8], [724, 2, 10.0, 20.0, 150.0, 180.0, 0.45],
          [785, 1, 50.0, 20.0, 60.0, 100.0, 0.9], [785, 38, 20.0, 10.0, 20.0, 20.0, 0.2],
          [785, 5, 80.0, 0.0, 40.0, 133.0, 0.99],
          [285, 47, -10.0, -5.0, 100.0, 95.0, 0.7], [776, 58, 150.0, 100.0, 80.0, 80.0, 0.65]]
    d += jittered(gt, rng, score_values=[0.25, 0.5, 0.75])
    return d


def perfect(gt):
    return [[a["image_id"], a["category_id"], *a["bbox"], 1.0] for a in gt["annotations"] if not a["iscrowd"]]


def convert_to_xywh(boxes):
    # torchvision references/detection/coco_eval.py
    xmin, ymin, xmax, ymax = boxes.unbind(1)
    return torch.stack((xmin, ymin, xmax - xmin, ymax - ymin), dim=1)


def model_outputs(gt, rng):
    """float32 xyxy boxes, 91-id labels (N/A ids and 0 included) and float32 scores, per image: boxes near the GT
    with its label, plus random ones."""
    outputs = []
    for image_id, _, _, (w, h) in IMAGES:
        rows = [[x + rng.normal(0, 0.1 * bw), y + rng.normal(0, 0.1 * bh),
                 x + bw + rng.normal(0, 0.1 * bw), y + bh + rng.normal(0, 0.1 * bh), a["category_id"]]
                for a in gt["annotations"] if a["image_id"] == image_id
                for x, y, bw, bh in [a["bbox"]]]
        for _ in range(int(rng.integers(3, 10))):
            x1, y1 = rng.uniform(0, w * 0.7), rng.uniform(0, h * 0.7)
            rows.append([x1, y1, min(x1 + rng.uniform(1, w * 0.6), w), min(y1 + rng.uniform(1, h * 0.6), h),
                         int(rng.choice([0, 1, 17, 47, 58, 84, 18] + NA_IDS))])
        boxes = torch.tensor([r[:4] for r in rows], dtype=torch.float32)
        labels = torch.tensor([r[4] for r in rows], dtype=torch.int64)
        scores = torch.tensor(rng.uniform(0.05, 1.0, len(rows)), dtype=torch.float32)
        outputs.append((image_id, boxes, labels, scores))
    return outputs


def prepare_for_coco_detection(outputs):
    # torchvision references/detection/coco_eval.py, then the N/A ids and the background dropped
    names = dict(CATEGORIES)
    results = []
    for image_id, boxes, labels, scores in outputs:
        boxes = convert_to_xywh(boxes).tolist()
        for box, label, score in zip(boxes, labels.tolist(), scores.tolist()):
            if label == 0 or label in NA_IDS:
                continue
            assert label in names or label == 18
            results.append([image_id, label, *box, score])
    return results


def evaluate(gt_path, detections, image_ids):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(gt_path)
        results = [{"image_id": d[0], "category_id": d[1], "bbox": list(d[2:6]), "score": d[6]} for d in detections]
        dt = gt.loadRes(copy.deepcopy(results))
        e = COCOeval(gt, dt, "bbox")
        if image_ids is not None:
            e.params.imgIds = image_ids
        e.evaluate()
        e.accumulate()
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        e.summarize()
    precision, recall = e.eval["precision"], e.eval["recall"]

    def mean(s):
        return float(np.mean(s[s > -1])) if (s > -1).any() else -1.0

    return {
        "stats": [float(v) for v in e.stats],
        "summary": summary.getvalue().rstrip("\n"),
        "precisionPerIoU": [mean(precision[t, :, :, 0, 2]) for t in range(precision.shape[0])],
        "apPerCategory": [mean(precision[:, :, k, 0, 2]) for k in range(precision.shape[2])],
        "arPerCategory": [mean(recall[:, k, 0, 2]) for k in range(recall.shape[1])],
    }


def main():
    rng = np.random.default_rng(20240610)
    write_images()
    gt = make_ground_truth(rng)
    gt_path = f"{OUT}/instances.json"
    with open(gt_path, "w") as f:
        json.dump(gt, f, separators=(",", ":"))

    id0 = copy.deepcopy(gt)
    for annotation in id0["annotations"]:
        annotation["id"] -= 1
    id0_path = f"{OUT}/instances_id0.json"
    with open(id0_path, "w") as f:
        json.dump(id0, f, separators=(",", ":"))

    outputs = model_outputs(gt, rng)
    model_results = prepare_for_coco_detection(outputs)
    sets = [
        ("random", jittered(gt, rng), None),
        ("tiedScores", jittered(gt, rng, score_values=[0.25, 0.5, 0.75, 1.0]), None),
        ("adversarial", adversarial(gt, rng), None),
        ("imageSubset", jittered(gt, rng), [802, 139, 785, 632, 139]),
        ("perfect", perfect(gt), None),
        ("model", model_results, None),
        ("annotationIdZero", perfect(gt) + jittered(gt, rng), None),
    ]
    reference = {
        "generator": "Scripts/eval/make_coco_fixtures.py",
        "versions": {"pycocotools": metadata.version("pycocotools"), "numpy": np.__version__,
                     "torch": torch.__version__},
        "statNames": ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"],
        "sets": [],
        "modelOutputs": [{"imageId": image_id, "boxes": boxes.tolist(), "labels": labels.tolist(),
                          "scores": scores.tolist()} for image_id, boxes, labels, scores in outputs],
    }
    for name, detections, image_ids in sets:
        path = id0_path if name == "annotationIdZero" else gt_path
        entry = {"name": name, "groundTruth": os.path.basename(path), "imageIds": image_ids, "detections": detections}
        entry.update(evaluate(path, detections, image_ids))
        reference["sets"].append(entry)
        print(f"{name:12s} {len(detections):4d} detections  AP {entry['stats'][0]:.4f}  AR100 {entry['stats'][8]:.4f}")
    with open(f"{OUT}/reference.json", "w") as f:
        json.dump(reference, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
