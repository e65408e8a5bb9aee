"""Fixtures for LadonEvalTests: metric references from the real Python stack, and two tiny datasets.

* metrics.json: top-k accuracy (torchvision references/classification `utils.accuracy`), the VOC confusion matrix
  (torchvision references/segmentation `utils.ConfusionMatrix`, copied below verbatim in its computing parts),
  numpy data-size statistics and sc2bench's pickled size (`sys.getsizeof(pickle.dumps(...))`).
* imagefolder/: an ImageFolder validation layout (3 WordNet-id classes, RGB/grey/CMYK JPEGs, a PNG, a nested
  folder, a non-image file that must be ignored).
* vocdevkit/VOC2012/: ImageSets/Segmentation/val.txt, JPEGImages, palette-mode SegmentationClass masks with 255
  borders (class ids 0–4, the tiny test model's segmentation classes).

Images are made from the repository's own photos (Scripts/data, Scripts/parity/images). Run from the repository
root with the reference venv: python Scripts/eval/make_eval_fixtures.py
"""
import json
import os
import pickle
import sys

import numpy as np
import torch
from PIL import Image

OUT = "Tests/LadonEvalTests/Fixtures"
rng = np.random.default_rng(20261202)


def accuracy(output, target, topk=(1,)):
    """torchvision references/classification/utils.py `accuracy`."""
    with torch.inference_mode():
        maxk = max(topk)
        batch_size = target.size(0)
        if target.ndim == 2:
            target = target.max(dim=1)[1]
        _, pred = output.topk(maxk, 1, True, True)
        pred = pred.t()
        correct = pred.eq(target[None])
        res = []
        for k in topk:
            correct_k = correct[:k].flatten().sum(dtype=torch.float32)
            res.append(correct_k * (100.0 / batch_size))
        return res


class ConfusionMatrix:
    """torchvision references/segmentation/utils.py `ConfusionMatrix` (update/compute)."""

    def __init__(self, num_classes):
        self.num_classes = num_classes
        self.mat = None

    def update(self, a, b):
        n = self.num_classes
        if self.mat is None:
            self.mat = torch.zeros((n, n), dtype=torch.int64, device=a.device)
        with torch.inference_mode():
            k = (a >= 0) & (a < n)
            inds = n * a[k].to(torch.int64) + b[k]
            self.mat += torch.bincount(inds, minlength=n**2).reshape(n, n)

    def compute(self):
        h = self.mat.float()
        acc_global = torch.diag(h).sum() / h.sum()
        acc = torch.diag(h) / h.sum(1)
        iu = torch.diag(h) / (h.sum(1) + h.sum(0) - torch.diag(h))
        return acc_global, acc, iu


def metrics():
    out = {}
    # Top-k: 40 samples x 12 classes, distinct logits.
    logits = torch.from_numpy(rng.standard_normal((40, 12)).astype(np.float32))
    labels = torch.from_numpy(rng.integers(0, 12, 40))
    top1, top5 = accuracy(logits, labels, topk=(1, 5))
    out["topk"] = {"logits": logits.tolist(), "labels": labels.tolist(), "top1": top1.item(), "top5": top5.item()}

    # Confusion matrix: 3 "images" of 21 classes with 255 borders; class 20 never occurs in targets.
    n = 21
    cm = ConfusionMatrix(n)
    images = []
    for shape in [(37, 23), (16, 41), (9, 9)]:
        t = rng.integers(0, 20, shape).astype(np.uint8)
        t[0, :] = 255
        t[:, -1] = 255
        p = np.where(rng.random(shape) < 0.6, t, rng.integers(0, 21, shape)).astype(np.uint8)
        p[p == 255] = 0
        cm.update(torch.from_numpy(t).flatten().long(), torch.from_numpy(p).flatten().long())
        images.append({"target": t.flatten().tolist(), "prediction": p.flatten().tolist()})
    acc_global, _, iu = cm.compute()
    out["confusion"] = {
        "classes": n, "images": images, "matrix": cm.mat.flatten().tolist(),
        "iou": iu.tolist(), "mIoU": iu.mean().item() * 100, "pixelAccuracy": acc_global.item() * 100,
    }

    # Data size: numpy statistics and sc2bench's pickled size.
    sizes = [int(x) for x in rng.integers(20, 9000, 25)] + [0, 255, 256, 65483, 65484, 70000]
    sides = [(26, 26), (103, 103), (255, 256), (300, 70000)]
    latent = [sides[i % len(sides)] for i in range(len(sizes))]
    pickled = [sys.getsizeof(pickle.dumps({"strings": [[b"x" * s]], "shape": torch.Size([h, w])}))
               for s, (h, w) in zip(sizes, latent)]
    kb = np.array(sizes) / 1024
    pk = np.array(pickled) / 1024
    out["dataSize"] = {
        "bytes": sizes, "latent": [list(x) for x in latent], "pickled": pickled,
        "meanKB": kb.mean(), "stdKB": kb.std(), "medianKB": float(np.median(kb)),
        "p90KB": float(np.percentile(kb, 90)), "sc2benchMeanKB": pk.mean(), "sc2benchStdKB": pk.std(),
        "python": sys.version.split()[0], "pickleProtocol": pickle.DEFAULT_PROTOCOL,
    }
    with open(os.path.join(OUT, "metrics.json"), "w") as f:
        json.dump(out, f)


def photo(name, size):
    path = {"chelsea": "Scripts/data/chelsea_small.png", "coffee": "Scripts/data/coffee_small.png"}.get(
        name, f"Scripts/parity/images/{name}")
    im = Image.open(path).convert("RGB")
    return im.resize(size, Image.BILINEAR)


def imagefolder():
    root = os.path.join(OUT, "imagefolder")
    classes = {
        "n01440764": [("a.JPEG", "chelsea", (61, 47), "RGB"), ("b.jpg", "coffee", (50, 70), "L")],
        "n02102040": [("c.png", "astronaut.jpg", (40, 40), "RGB"), ("sub/d.jpeg", "rocket.jpg", (33, 58), "CMYK")],
        "n02979186": [("e.JPEG", "hot_dog.jpg", (72, 48), "RGB")],
    }
    for cls, files in classes.items():
        for fname, src, size, mode in files:
            path = os.path.join(root, cls, fname)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            im = photo(src, size).convert(mode)
            im.save(path, quality=85) if not fname.endswith(".png") else im.save(path)
    with open(os.path.join(root, "n02979186", "notes.txt"), "w") as f:
        f.write("not an image; ImageFolder skips it\n")


def voc():
    root = os.path.join(OUT, "vocdevkit", "VOC2012")
    for d in ["ImageSets/Segmentation", "JPEGImages", "SegmentationClass"]:
        os.makedirs(os.path.join(root, d), exist_ok=True)
    palette = []
    for i in range(256):  # the VOC colour map
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    ids = []
    for k, (src, size) in enumerate([("chelsea", (75, 50)), ("grace_hopper.jpg", (40, 53)), ("coffee", (64, 64))]):
        name = f"2007_{k:06d}"
        ids.append(name)
        photo(src, size).save(os.path.join(root, "JPEGImages", name + ".jpg"), quality=90)
        w, h = size
        mask = np.zeros((h, w), np.uint8)
        mask[h // 4: 3 * h // 4, w // 5: 4 * w // 5] = 1 + k
        mask[h // 3: h // 2, w // 3: w // 2] = 4
        mask[h // 4, :] = 255  # "difficult" borders
        mask[:, w // 5] = 255
        m = Image.fromarray(mask, mode="P")
        m.putpalette(palette)
        m.save(os.path.join(root, "SegmentationClass", name + ".png"))
    with open(os.path.join(root, "ImageSets/Segmentation/val.txt"), "w") as f:
        f.write("\n".join(ids) + "\n")


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    metrics()
    imagefolder()
    voc()
    print("wrote", OUT)
