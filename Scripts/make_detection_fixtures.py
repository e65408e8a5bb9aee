#!/usr/bin/env python3
"""Generates the detection-head fixtures from torchvision's own modules (random weights, small widths).

Run from the repository root with the reference venv (torch + torchvision):

    python Scripts/make_detection_fixtures.py

Writes into Tests/LadonCoreTests/Fixtures/:
  detection_head.safetensors      FPN + RPN + MultiScaleRoIAlign + TwoMLPHead + FastRCNNPredictor + RoIHeads
                                  + GeneralizedRCNNTransform.postprocess, every stage dumped; two configurations
                                  ("default": P2-P4 pooled, canonical 224; "levels": P2-P5, canonical 40, smaller
                                  top-n) on the same inputs and weights.
  detection_nms.safetensors       torchvision.ops.nms / batched_nms on random, tied, identical and zero-area boxes.
  detection_roialign.safetensors  torchvision.ops.roi_align incl. boxes partly outside the map and tiny boxes.

The weights are stored under the names the checkpoint converter writes (`detection_head.fpn...`, `.rpn.head...`,
`.roi_heads...`). Scores are checked for exact ties (torch's topk/sort order on ties is unspecified), and the
generator re-seeds until none exist, so the Swift comparison is order-exact.
Versions used are recorded in each file's metadata.
"""
from collections import OrderedDict
import os

import torch
import torchvision
from safetensors.torch import save_file
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead, concat_box_prediction_layers
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import MultiScaleRoIAlign, FeaturePyramidNetwork, nms, batched_nms, roi_align
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LadonCoreTests", "Fixtures")
META = {"torch": torch.__version__, "torchvision": torchvision.__version__,
        "script": "Scripts/make_detection_fixtures.py"}

IN_CHANNELS = [8, 16, 32, 64]
FPN_CHANNELS = 16
REPRESENTATION = 32
NUM_CLASSES = 91
PADDED = (128, 96)      # (H, W) of the padded image tensor
IMAGE = (117, 90)       # unpadded resized size
ORIGINAL = (470, 361)   # original image size
ROWS_PER_LEVEL = 4      # RoI features / logits are dumped for this many proposals per pooled level (file size)


def build(seed, featmap_names, canonical_scale, pre_nms, post_nms, detections_per_img):
    g = torch.Generator().manual_seed(seed)

    def normal(shape, std):
        return torch.randn(shape, generator=g) * std

    fpn = FeaturePyramidNetwork(IN_CHANNELS, FPN_CHANNELS, extra_blocks=LastLevelMaxPool())
    anchors = AnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5)
    rpn_head = RPNHead(FPN_CHANNELS, 3)
    rpn = RegionProposalNetwork(anchors, rpn_head, 0.7, 0.3, 256, 0.5,
                                dict(training=2000, testing=pre_nms), dict(training=2000, testing=post_nms),
                                0.7, score_thresh=0.0)
    pool = MultiScaleRoIAlign(featmap_names, 7, 2, canonical_scale=canonical_scale)
    box_head = TwoMLPHead(FPN_CHANNELS * 49, REPRESENTATION)
    predictor = FastRCNNPredictor(REPRESENTATION, NUM_CLASSES)
    roi_heads = RoIHeads(pool, box_head, predictor, 0.5, 0.5, 512, 0.25, None, 0.05, 0.5, detections_per_img)
    transform = GeneralizedRCNNTransform(416, 416, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    for m in (fpn, rpn, roi_heads, transform):
        m.eval()

    # Random weights scaled so every stage carries signal: objectness logits spread (no sigmoid saturation
    # ties), deltas that move boxes, and class logits peaky enough that several classes pass score > 0.05.
    with torch.no_grad():
        for i, c in enumerate(IN_CHANNELS):
            fpn.inner_blocks[i][0].weight.copy_(normal((FPN_CHANNELS, c, 1, 1), c ** -0.5))
            fpn.inner_blocks[i][0].bias.copy_(normal((FPN_CHANNELS,), 0.1))
            fpn.layer_blocks[i][0].weight.copy_(normal((FPN_CHANNELS, FPN_CHANNELS, 3, 3), (9 * FPN_CHANNELS) ** -0.5))
            fpn.layer_blocks[i][0].bias.copy_(normal((FPN_CHANNELS,), 0.1))
        conv = rpn_head.conv[0][0]
        conv.weight.copy_(normal(conv.weight.shape, (2 / (9 * FPN_CHANNELS)) ** 0.5))
        conv.bias.copy_(normal(conv.bias.shape, 0.1))
        rpn_head.cls_logits.weight.copy_(normal(rpn_head.cls_logits.weight.shape, 1.0 * FPN_CHANNELS ** -0.5))
        rpn_head.cls_logits.bias.copy_(normal((3,), 0.3))
        rpn_head.bbox_pred.weight.copy_(normal(rpn_head.bbox_pred.weight.shape, 0.25 * FPN_CHANNELS ** -0.5))
        rpn_head.bbox_pred.bias.copy_(normal((12,), 0.05))
        box_head.fc6.weight.copy_(normal(box_head.fc6.weight.shape, (2 / (49 * FPN_CHANNELS)) ** 0.5))
        box_head.fc6.bias.copy_(normal(box_head.fc6.bias.shape, 0.1))
        box_head.fc7.weight.copy_(normal(box_head.fc7.weight.shape, (2 / REPRESENTATION) ** 0.5))
        box_head.fc7.bias.copy_(normal(box_head.fc7.bias.shape, 0.1))
        predictor.cls_score.weight.copy_(normal(predictor.cls_score.weight.shape, 1.2 * REPRESENTATION ** -0.5))
        predictor.cls_score.bias.copy_(normal((NUM_CLASSES,), 1.0))
        predictor.bbox_pred.weight.copy_(normal(predictor.bbox_pred.weight.shape, 2.0 * REPRESENTATION ** -0.5))
        predictor.bbox_pred.bias.copy_(normal((NUM_CLASSES * 4,), 0.2))

    h, w = PADDED
    feats = OrderedDict()
    for i, (c, stride) in enumerate(zip(IN_CHANNELS, (4, 8, 16, 32))):
        feats[str(i)] = torch.randn((1, c, h // stride, w // stride), generator=g)
    return fpn, rpn, roi_heads, transform, feats


def run(fpn, rpn, roi_heads, transform, feats):
    images = ImageList(torch.zeros((1, 3) + PADDED), [IMAGE])
    out = {}
    with torch.no_grad():
        fmaps = fpn(feats)  # keys '0','1','2','3','pool' = P2..P5, pool
        levels = list(fmaps.values())
        objectness, deltas = rpn.head(levels)
        anchors = rpn.anchor_generator(images, levels)[0]
        obj_flat, delta_flat = concat_box_prediction_layers(objectness, deltas)
        proposals, _ = rpn(images, fmaps)
        # Proposal scores: rerun filter_proposals exactly as forward does.
        num_per_level = [o[0].numel() for o in objectness]
        decoded = rpn.box_coder.decode(delta_flat, [anchors]).view(1, -1, 4)
        boxes, scores = rpn.filter_proposals(decoded, obj_flat.view(1, -1), images.image_sizes, num_per_level)
        assert torch.equal(boxes[0], proposals[0])
        roi_feats = roi_heads.box_roi_pool(fmaps, proposals, images.image_sizes)
        box_feats = roi_heads.box_head(roi_feats)
        class_logits, box_regression = roi_heads.box_predictor(box_feats)
        detections, _ = roi_heads(fmaps, proposals, images.image_sizes)
        resized = [{k: v.clone() for k, v in d.items()} for d in detections]
        final = transform.postprocess(detections, images.image_sizes, [ORIGINAL])
    # Shared stages (identical for every configuration: same weights, same inputs).
    for i, key in enumerate(fmaps):
        out[f"common.fpn.{i}"] = fmaps[key]
    assert torch.equal(anchors, anchors.round()) and anchors.abs().max() < 32767
    out["common.anchors"] = anchors.to(torch.int16)  # integral values (rounded cell anchors + integer shifts)
    out["common.objectness"] = obj_flat.reshape(-1)
    out["common.deltas"] = delta_flat.reshape(-1, 4)
    out["proposals"] = proposals[0]
    out["proposal_scores"] = scores[0]
    # Per-RoI stages for a few proposals of every pooled level (keeps the file small).
    lvl = roi_heads.box_roi_pool.map_levels(proposals)
    rows = torch.cat([torch.where(lvl == k)[0][:ROWS_PER_LEVEL] for k in range(int(lvl.max()) + 1)])
    out["roi_rows"] = rows.to(torch.int32)
    out["roi_levels"] = lvl.to(torch.int32)
    out["roi_features"] = roi_feats[rows]
    out["box_features"] = box_feats[rows]
    out["class_logits"] = class_logits[rows]
    out["box_regression"] = box_regression[rows]
    out["det_boxes_resized"] = resized[0]["boxes"]
    out["det_boxes"] = final[0]["boxes"]
    out["det_scores"] = final[0]["scores"]
    out["det_labels"] = final[0]["labels"].to(torch.int32)
    return out


def has_ties(out):
    def dup(t):  # exact duplicates make torch's (unstable) topk/sort order unspecified
        return t.numel() != torch.unique(t).numel()
    return dup(out["proposal_scores"]) or dup(out["det_scores"]) or dup(out["common.objectness"])


def state_dict(fpn, rpn, roi_heads):
    sd = {}
    for k, v in fpn.state_dict().items():
        sd[f"detection_head.fpn.{k}"] = v
    for k, v in rpn.head.state_dict().items():
        sd[f"detection_head.rpn.head.{k}"] = v
    for k, v in roi_heads.state_dict().items():
        sd[f"detection_head.roi_heads.{k}"] = v
    return sd


def pooler_scales():
    """torchvision's own `_setup_scales` (MultiScaleRoIAlign) for P2-P5 of padded images of several heights,
    including very flat images where the inferred scales stop being 1/4, 1/8, ..."""
    from torchvision.ops.poolers import _setup_scales
    heights = [117, 416, 415, 277, 100, 45, 40, 33, 20, 5]
    scales, levels = [], []
    for h in heights:
        padded = (h + 31) // 32 * 32
        feats = [torch.zeros((1, 1, padded // s, 8)) for s in (4, 8, 16, 32)]
        sc, mapper = _setup_scales(feats, [(h, 416)], 224, 4)
        scales.append(sc)
        levels.append([mapper.k_min, mapper.k_max])
    return {"scales.image_heights": torch.tensor(heights, dtype=torch.int32),
            "scales.values": torch.tensor(scales, dtype=torch.float32),
            "scales.levels": torch.tensor(levels, dtype=torch.int32)}


def detection_head():
    configs = {  # name: (featmap_names, canonical_scale, pre_nms_top_n, post_nms_top_n, detections_per_img)
        "default": (["0", "1", "2"], 224, 1000, 1000, 100),
        "levels": (["0", "1", "2", "3"], 40, 500, 300, 40),
    }
    for seed in range(100):
        tensors, stats = {}, {}
        ok = True
        for name, (names, canonical, pre, post, per_img) in configs.items():
            fpn, rpn, roi_heads, transform, feats = build(seed, names, canonical, pre, post, per_img)
            out = run(fpn, rpn, roi_heads, transform, feats)
            if has_ties(out):
                ok = False
                break
            if name == "default":
                tensors.update({f"input.{k}": v for k, v in feats.items()})
                tensors.update(state_dict(fpn, rpn, roi_heads))
            tensors.update({k if k.startswith("common.") else f"{name}.{k}": v for k, v in out.items()})
            stats[name] = (out["proposals"].shape[0], out["det_scores"].shape[0],
                           torch.unique(out["det_labels"]).numel(), torch.bincount(out["roi_levels"]).tolist())
        if ok:
            break
    else:
        raise SystemExit("no tie-free seed found")
    meta = dict(META, seed=str(seed), padded=f"{PADDED[0]},{PADDED[1]}", image=f"{IMAGE[0]},{IMAGE[1]}",
                original=f"{ORIGINAL[0]},{ORIGINAL[1]}",
                in_channels=",".join(map(str, IN_CHANNELS)), fpn_channels=str(FPN_CHANNELS),
                representation=str(REPRESENTATION))
    tensors.update(pooler_scales())
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, os.path.join(OUT, "detection_head.safetensors"), metadata=meta)
    print("detection_head: seed", seed, "(proposals, detections, distinct labels):", stats)


def nms_cases():
    g = torch.Generator().manual_seed(7)
    t = {}

    def random_boxes(n, span, size):
        xy = torch.rand((n, 2), generator=g) * span
        wh = torch.rand((n, 2), generator=g) * size + 0.5
        return torch.cat([xy, xy + wh], 1)

    # Thousands of clustered boxes, continuous scores.
    b = random_boxes(3000, 120, 60)
    s = torch.rand(3000, generator=g)
    t["large.boxes"], t["large.scores"] = b, s
    for thr in (0.5, 0.7):
        t[f"large.keep_{int(thr * 10)}"] = nms(b, s, thr).to(torch.int32)
    # Tied scores (10 distinct values): torchvision's CPU kernel sorts stably (lower index first).
    b = random_boxes(600, 100, 40)
    s = torch.randint(0, 10, (600,), generator=g).float() / 10
    t["ties.boxes"], t["ties.scores"] = b, s
    t["ties.keep_5"] = nms(b, s, 0.5).to(torch.int32)
    # Identical boxes, zero-area boxes, nested boxes, a box touching another edge to edge.
    b = torch.tensor([[10, 10, 20, 20], [10, 10, 20, 20], [10, 10, 20, 20], [5, 5, 5, 9], [5, 5, 5, 9],
                      [3, 3, 3, 3], [0, 0, 30, 30], [12, 12, 18, 18], [20, 10, 30, 20], [40, 40, 41, 41],
                      [40, 40, 41, 41.5]], dtype=torch.float32)
    s = torch.tensor([0.9, 0.9, 0.8, 0.7, 0.7, 0.6, 0.5, 0.95, 0.85, 0.3, 0.31])
    t["special.boxes"], t["special.scores"] = b, s
    for thr in (0.0, 0.3, 0.5):
        t[f"special.keep_{int(thr * 10)}"] = nms(b, s, thr).to(torch.int32)
    # batched_nms: > 4000 numbers (torchvision's per-class path) and <= 4000 (coordinate-offset path).
    for name, n in (("batched_large", 2000), ("batched_small", 700)):
        b = random_boxes(n, 150, 50)
        s = torch.rand(n, generator=g)
        idx = torch.randint(0, 5, (n,), generator=g)
        t[f"{name}.boxes"], t[f"{name}.scores"], t[f"{name}.groups"] = b, s, idx.to(torch.int32)
        t[f"{name}.keep_5"] = batched_nms(b, s, idx, 0.5).to(torch.int32)
    save_file({k: v.contiguous() for k, v in t.items()}, os.path.join(OUT, "detection_nms.safetensors"), metadata=META)
    print("nms: large keeps", t["large.keep_5"].numel(), t["large.keep_7"].numel(), "ties", t["ties.keep_5"].numel())


def roi_align_cases():
    g = torch.Generator().manual_seed(11)
    t = {}
    feature = torch.randn((1, 5, 13, 11), generator=g)
    t["feature"] = feature
    boxes = torch.tensor([
        [0, 0, 43, 51],            # whole map at scale 0.25
        [-20, -8, 16, 20],         # partly outside (negative)
        [30, 40, 70, 90],          # partly outside (beyond W,H)
        [10.3, 12.7, 10.9, 13.1],  # tiny (< 1 px after scaling: roi size clamped to 1)
        [21.5, 3.25, 22.0, 30.0],  # thin
        [-50, -50, -10, -10],      # fully outside
        [0, 0, 0, 0],              # degenerate
        [5.5, 6.5, 38.25, 47.75],
    ], dtype=torch.float32)
    boxes = torch.cat([boxes, torch.rand((24, 2), generator=g).mul(50).repeat(1, 2)
                       + torch.cat([torch.zeros(24, 2), torch.rand((24, 2), generator=g).mul(30)], 1)])
    t["boxes"] = boxes
    rois = torch.cat([torch.zeros((boxes.shape[0], 1)), boxes], 1)
    cases = {"s025_p7_r2": (0.25, 7, 2, False), "s1_p7_r2": (1.0, 7, 2, False),
             "s05_p3_r0": (0.5, 3, 0, False), "s025_p5_r3_aligned": (0.25, 5, 3, True)}
    for name, (scale, p, r, aligned) in cases.items():
        t[f"out.{name}"] = roi_align(feature, rois, (p, p), scale, r, aligned)
    save_file({k: v.contiguous() for k, v in t.items()}, os.path.join(OUT, "detection_roialign.safetensors"),
              metadata=META)
    print("roi_align: boxes", boxes.shape[0])


if __name__ == "__main__":
    torch.set_num_threads(1)
    detection_head()
    nms_cases()
    roi_align_cases()
