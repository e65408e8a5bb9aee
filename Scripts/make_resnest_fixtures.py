#!/usr/bin/env python3
"""ResNeSt-269e Ladon fixtures from the real timm / sc2bench modules (random weights).

Writes into Tests/LadonCoreTests/Fixtures/ (model/, kernels/) and Tests/LadonCheckpointTests/Fixtures/ (checkpoints/):
  kernels/resnest_ops.safetensors   grouped convolutions (groups 2, 3, 4), the two average pools of the
                                    ResNeSt block (avd 3x3/s2/p1 count_include_pad=True; shortcut 2x2/s2
                                    ceil_mode count_include_pad=False) and timm's SplitAttn (radix 2 and 3),
                                    all on odd shapes
  model/resnest_body.safetensors    the body of sc2bench's splittable_resnest('resnest269e') at reduced depth
                                    and width (layers [1, 2, 3, 2], channels (4, 6, 8, 10)): its state dict under
                                    the converted names (shared_body.layer{2,3,4}.*), an input at the decoder's
                                    width and every stage's output, plus the model config as metadata
  checkpoints/ladon_resnest_tiny_{cls,det,seg}.pt
                                    the three per-task checkpoints (torchdistill layout) of that reduced model, built
                                    as sc2bench builds them: cls saved before update() (empty entropy tables, as the
                                    released beta 0.32/1.28/5.12 files probably are), det with FrozenBatchNorm2d
                                    (no num_batches_tracked, BN equal to cls), seg with drifted BN statistics
  checkpoints/ladon_resnest_tiny_expected.safetensors
                                    the converted tensors (body from seg, an independent spelling of the mapping),
                                    a latent and the seg body's decoder/layer2-4 outputs for it
  checkpoints/ladon_resnest_tiny_config.json, ladon_resnest269e_keys.json
                                    the tiny config; key counts and a SHA-256 of the converted names and shapes of
                                    the full-size resnest269e per-task models

timm >= 1.0.21 passes device/dtype keywords to norm_layer, which torchvision's FrozenBatchNorm2d (the
detection backbone's norm layer) rejects, so these fixtures need timm <= 1.0.20. Use the ResNeSt venv
(Scripts/parity/README.md, "ResNeSt-269e"):

    /root/.cache/ladon-resnest-venv/bin/python Scripts/make_resnest_fixtures.py

Deterministic: fixed seed, CPU, one thread.
"""
import argparse
import copy
import hashlib
import json
import os

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from sc2bench.models.backbone import FeatureExtractionBackbone, splittable_resnest
from sc2bench.models.detection.rcnn import BaseRCNN, create_faster_rcnn_fpn
from sc2bench.models.segmentation.base import BaseSegmentationModel
from sc2bench.models.segmentation.deeplabv3 import create_deeplabv3
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.segmentation.deeplabv3 import ASPP
from torchvision.models.segmentation.fcn import FCNHead
from torchvision.ops import FrozenBatchNorm2d
from timm.layers.helpers import make_divisible
from timm.layers.split_attn import SplitAttn

torch.manual_seed(20261202)
torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "Tests", "LadonCoreTests", "Fixtures")
CHECKPOINTS = os.path.join(ROOT, "Tests", "LadonCheckpointTests", "Fixtures", "checkpoints")

# Reduced ResNeSt-269e: same block structure (radix 2, avd, avg_down, deep stem unused), fewer blocks and channels.
LAYERS = [1, 2, 3, 2]          # layer1 is dropped by splittable_resnest; layer2-4 = 2/3/2 blocks
CHANNELS = (4, 6, 8, 10)       # planes per stage; layer1 outputs 4 * 4 = 16 = the decoder's width
BODY_INPUT = (1, 16, 14, 10)   # decoder output; 14x10 -> 7x5 -> 4x3 -> 2x2 exercises the odd (ceil) paths


def save(path, tensors, metadata):
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    meta = {"generator": "Scripts/make_resnest_fixtures.py", "torch": torch.__version__, "timm": timm.__version__}
    meta.update(metadata)
    save_file(tensors, path, metadata=meta)
    print(f"{os.path.relpath(path, ROOT)}: {os.path.getsize(path) / 1024:.1f} KiB, {len(tensors)} tensors")


def randomize_bn(bn):
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)


def ops():
    t = {}
    # Grouped convolutions: (name, N, inC, outC, H, W, k, stride, padding, groups)
    for name, n, cin, cout, h, w, k, s, p, g in [
        ("g2_3x3", 2, 6, 12, 9, 7, 3, 1, 1, 2),       # the SplitAttn conv: w -> 2w, groups = radix
        ("g2_3x3_s2", 1, 8, 6, 11, 10, 3, 2, 1, 2),
        ("g3_3x3", 1, 9, 6, 7, 13, 3, 1, 1, 3),
        ("g4_1x1", 1, 8, 12, 5, 9, 1, 1, 0, 4),       # a grouped 1x1 (the fc1/fc2 form with cardinality > 1)
        ("g4_5x5", 1, 8, 8, 12, 11, 5, 1, 2, 4),
    ]:
        x = torch.randn(n, cin, h, w)
        weight = torch.randn(cout, cin // g, k, k) / (cin // g * k * k) ** 0.5
        t[f"conv_{name}_x"] = x
        t[f"conv_{name}_w"] = weight
        t[f"conv_{name}_y"] = F.conv2d(x, weight, None, stride=s, padding=p, groups=g)
        t[f"conv_{name}_params"] = torch.tensor([cin, cout, k, s, p, g], dtype=torch.int32)
    # The two pools of the ResNeSt block, through the modules timm builds.
    avd = nn.AvgPool2d(3, 2, padding=1)                                   # avd_last (count_include_pad=True)
    down = nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)  # downsample_avg
    for name, shape in [("13x13", (1, 3, 13, 13)), ("8x10", (2, 2, 8, 10)), ("7x4", (1, 5, 7, 4)),
                        ("1x3", (1, 2, 1, 3)), ("2x2", (1, 1, 2, 2)), ("40x37", (1, 2, 40, 37))]:
        x = torch.randn(*shape)
        t[f"pool_{name}_x"] = x
        t[f"pool_{name}_avd"] = avd(x)
        t[f"pool_{name}_down"] = down(x)
    # SplitAttn (timm layers/split_attn.py): radix 2 as in ResNeSt-269e, and radix 3 for generality.
    for name, radix, w, h, wd in [("r2", 2, 8, 9, 7), ("r2_wide", 2, 40, 3, 4), ("r3", 3, 6, 4, 11)]:
        attn = SplitAttn(w, w, kernel_size=3, stride=1, padding=1, groups=1, radix=radix, rd_ratio=0.25,
                         act_layer=nn.ReLU, norm_layer=nn.BatchNorm2d)
        for m in attn.modules():
            if isinstance(m, nn.BatchNorm2d):
                randomize_bn(m)
        with torch.no_grad():
            attn.fc2.weight.mul_(3.0)  # attention weights well away from 1/radix
        attn.eval()
        x = torch.randn(2 if w < 16 else 1, w, h, wd)
        with torch.no_grad():
            y = F.relu(attn.bn0(attn.conv(x)))  # the radix splits the attention op receives
            out = attn(x)
        t[f"attn_{name}_splits"] = y
        t[f"attn_{name}_y"] = out
        for key, value in attn.state_dict().items():
            if key.startswith(("fc1.", "bn1.", "fc2.")) and not key.endswith("num_batches_tracked"):
                t[f"attn_{name}.{key}"] = value
        t[f"attn_{name}_params"] = torch.tensor([radix, w, attn.fc1.out_channels], dtype=torch.int32)
    save(os.path.join(FIX, "kernels", "resnest_ops.safetensors"), t,
         {"ops": "F.conv2d groups; nn.AvgPool2d(3,2,1) and AvgPool2d(2,2,ceil_mode=True,count_include_pad=False); "
                 "timm SplitAttn(radix, rd_ratio=0.25) eval",
          "makeDivisible": json.dumps({str(v): make_divisible(v * 2 * 0.25, min_value=32, divisor=8)
                                       for v in [8, 48, 64, 100, 128, 256, 512]})})


def body():
    bottleneck = {"key": "FPBasedResNetBottleneck",
                  "kwargs": {"num_bottleneck_channels": 4, "num_target_channels": CHANNELS[0] * 4}}
    model = splittable_resnest(bottleneck, resnest_name="resnest269e", inplanes=CHANNELS[3] * 4, pretrained=False,
                               layers=LAYERS, channels=CHANNELS)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            randomize_bn(m)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("fc2.weight"):
                p.mul_(3.0)
    model.eval()
    x = torch.randn(*BODY_INPUT)
    t = {"input": x}
    with torch.no_grad():
        h = x
        for name in ["layer2", "layer3", "layer4"]:
            h = getattr(model, name)(h)
            t[name] = h
    for key, value in model.state_dict().items():
        if key.startswith("layer") and not key.endswith("num_batches_tracked"):
            t["shared_body." + key] = value
    body_config = {"name": "resnest269e", "blocks": LAYERS[1:], "planes": list(CHANNELS[1:]), "expansion": 4,
                   "batchNormEpsilon": 1e-5}
    save(os.path.join(FIX, "model", "resnest_body.safetensors"), t,
         {"body": json.dumps(body_config), "inChannels": str(CHANNELS[0] * 4),
          "model": f"sc2bench splittable_resnest('resnest269e', layers={LAYERS}, channels={CHANNELS}), eval"})


# ---------------------------------------------------------------- per-task checkpoints

TINY = {
    "architecture": "ladon-resnest-tiny-test",
    "bottleneckChannels": 2,
    "encoderChannels": [3, 8, 4, 2],
    "decoderChannels": [2, 8, 4, CHANNELS[0] * 4],
    "entropyBottleneck": {"filters": [3, 3, 3, 3], "tailMass": 1e-9, "likelihoodBound": 1e-9},
    "body": {"name": "resnest269e", "blocks": LAYERS[1:], "planes": list(CHANNELS[1:]), "expansion": 4,
             "batchNormEpsilon": 1e-5},
    "classification": {"numClasses": 5, "classList": "imagenet"},
    "detection": {
        "numClasses": 5, "classList": "coco", "fpnChannels": 4, "anchorSizes": [32, 64, 128, 256, 512],
        "aspectRatios": [0.5, 1.0, 2.0], "roiLevels": ["0", "1", "2"], "roiOutputSize": 7, "roiSamplingRatio": 2,
        "representationSize": 6, "rpnPreNmsTopN": 1000, "rpnPostNmsTopN": 1000, "rpnNmsThreshold": 0.7,
        "rpnScoreThreshold": 0.0, "rpnMinSize": 1e-3, "boxScoreThreshold": 0.05, "boxNmsThreshold": 0.5,
        "boxMinSize": 1e-2, "detectionsPerImage": 100, "boxCoderWeights": [10, 10, 5, 5]},
    "segmentation": {"numClasses": 3, "classList": "voc", "asppChannels": 4, "asppRates": [12, 24, 36]},
    "preprocessing": {"minSize": 416, "maxSize": 416, "sizeDivisible": 32, "mean": [0.485, 0.456, 0.406],
                      "std": [0.229, 0.224, 0.225], "resizeRule": "torchvision-0.13-float32"},
}
RETURN_LAYERS = {"bottleneck_layer": "1", "layer2": "2", "layer3": "3", "layer4": "4"}


def torchdistill_ckpt(model, best_value):
    """The layout torchdistill's save_ckpt writes."""
    params = [p for p in model.parameters()][:3]
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    args = argparse.Namespace(config="configs/ladon.yaml", device="cuda", log=None, seed=None, test_only=False)
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "best_value": best_value,
            "lr_scheduler": None, "config": {"models": {"student_model": {"key": "x"}}}, "args": args}


def tiny_backbone(with_fc, **kwargs):
    bottleneck = {"key": "FPBasedResNetBottleneck",
                  "kwargs": {"num_bottleneck_channels": TINY["bottleneckChannels"],
                             "num_target_channels": TINY["decoderChannels"][3],
                             "encoder_channel_sizes": TINY["encoderChannels"],
                             "decoder_channel_sizes": TINY["decoderChannels"]}}
    return splittable_resnest(bottleneck, resnest_name="resnest269e", inplanes=CHANNELS[3] * 4, pretrained=False,
                              layers=LAYERS, channels=CHANNELS, num_classes=TINY["classification"]["numClasses"],
                              skips_avgpool=not with_fc, skips_fc=not with_fc, **kwargs)


def randomise(model, generator):
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if "entropy_bottleneck" in name or name.endswith("num_batches_tracked") or not t.is_floating_point():
                continue
            if name.endswith("running_var") or name.endswith(".beta") or name.endswith(".gamma"):
                t.copy_(torch.rand(t.shape, generator=generator) + 0.5)
            elif "reparam" not in name:
                t.copy_(torch.randn(t.shape, generator=generator) * 0.5)


def converted_names(slot, sd):
    """Runtime name of each per-task key (None: dropped), an independent spelling of LadonKeyMapping."""
    out = {}
    for k, v in sd.items():
        if k.endswith("num_batches_tracked") or k.startswith("aux_classifier."):
            continue
        body = {"classification": "", "detection": "backbone.body.", "segmentation": "backbone."}[slot]
        if k.startswith(body + "bottleneck_layer.encoder."):
            name = "encoder.encoder." + k[len(body + "bottleneck_layer.encoder."):]
        elif k.startswith(body + "bottleneck_layer.entropy_bottleneck."):
            name = "encoder.entropy_bottleneck." + k[len(body + "bottleneck_layer.entropy_bottleneck."):]
        elif k.startswith(body + "bottleneck_layer.decoder."):
            name = "shared_body.decoder." + k[len(body + "bottleneck_layer.decoder."):]
        elif k.startswith(body + "layer"):
            name = "shared_body." + k[len(body):]
        elif slot == "classification" and k.startswith("fc."):
            name = "classification_head." + k
        elif slot == "detection" and k.startswith("backbone.fpn."):
            name = "detection_head.fpn." + k[len("backbone.fpn."):]
        elif slot == "detection" and (k.startswith("rpn.") or k.startswith("roi_heads.")):
            name = "detection_head." + k
        elif slot == "segmentation" and k.startswith("classifier."):
            name = "segmentation_head." + k
        else:
            raise KeyError(k)
        out[name] = v
    return out


def checkpoints():
    out_dir = CHECKPOINTS
    g = torch.Generator().manual_seed(269)
    cls = tiny_backbone(with_fc=True)
    randomise(cls, g)
    # Saved before update(): _offset, _quantized_cdf and _cdf_length stay empty int32 tensors.
    assert cls.bottleneck_layer.entropy_bottleneck._quantized_cdf.numel() == 0
    cls_sd = cls.state_dict()

    def body_with_tables(**kwargs):
        body = tiny_backbone(with_fc=False, **kwargs)
        # sc2bench's load_state_dict pops the entropy bottleneck's keys from the dict it is given: pass a copy.
        body.load_state_dict(copy.copy(cls_sd), strict=False)  # FrozenBatchNorm2d has no num_batches_tracked
        for k, v in body.state_dict().items():
            assert k.endswith(("_offset", "_quantized_cdf", "_cdf_length")) or torch.equal(v, cls_sd[k]), k
        body.bottleneck_layer.update(force=True)
        return body

    # Detection: sc2bench's faster_rcnn_model passes norm_layer=FrozenBatchNorm2d to timm.
    det_body = body_with_tables(norm_layer=FrozenBatchNorm2d)
    d = TINY["detection"]
    f, r = d["fpnChannels"], d["representationSize"]
    stages = [p * 4 for p in CHANNELS[1:]]
    det = BaseRCNN(create_faster_rcnn_fpn(
        det_body, return_layer_dict=dict(RETURN_LAYERS), in_channels_list=[TINY["decoderChannels"][3]] + stages,
        out_channels=f, num_classes=None, box_head=TwoMLPHead(f * 7 * 7, r), box_predictor=FastRCNNPredictor(r, d["numClasses"])))
    for m in (det.rpn, det.roi_heads, det.backbone.fpn):
        randomise(m, g)
    det_sd = det.state_dict()
    assert not any(k.endswith("num_batches_tracked") for k in det_sd if k.startswith("backbone.body."))

    seg_body = body_with_tables()
    sc = TINY["segmentation"]
    a = sc["asppChannels"]
    classifier = nn.Sequential(ASPP(stages[2], sc["asppRates"], out_channels=a), nn.Conv2d(a, a, 3, padding=1, bias=False),
                               nn.BatchNorm2d(a), nn.ReLU(), nn.Conv2d(a, sc["numClasses"], 1))
    seg = BaseSegmentationModel(FeatureExtractionBackbone(seg_body, {"layer4": "out", "layer3": "aux"}, []),
                                classifier, FCNHead(stages[1], sc["numClasses"]))
    randomise(seg.classifier, g)
    randomise(seg.aux_classifier, g)
    with torch.no_grad():  # regular BN in the seg body: its running statistics drift during training
        for name, t in seg.state_dict().items():
            if name.startswith("backbone.layer") and (name.endswith("running_mean") or name.endswith("running_var")):
                t.add_(torch.rand(t.shape, generator=g) * 0.05)
    seg_sd = seg.state_dict()

    torch.save(torchdistill_ckpt(cls, 71.0), os.path.join(out_dir, "ladon_resnest_tiny_cls.pt"))
    torch.save(torchdistill_ckpt(det, 0.2), os.path.join(out_dir, "ladon_resnest_tiny_det.pt"))
    torch.save(torchdistill_ckpt(seg, 0.6), os.path.join(out_dir, "ladon_resnest_tiny_seg.pt"))

    expected = {}
    for slot, sd in [("classification", cls_sd), ("detection", det_sd), ("segmentation", seg_sd)]:
        for name, v in converted_names(slot, sd).items():
            body_part = name.startswith("encoder.") or name.startswith("shared_body.")
            if body_part and slot != "segmentation":
                continue
            expected[name] = v.to(torch.int32) if not v.is_floating_point() else v.float()
    # The seg body's own forward on a latent (decoder, then layer2-4).
    seg.eval()
    latent = torch.round(torch.randn(1, TINY["bottleneckChannels"], 7, 6, generator=g) * 3)
    with torch.no_grad():
        h = seg_body.bottleneck_layer.decoder(latent)
        check = {"check.latent_hat": latent, "check.decoder": h}
        for name in ["layer2", "layer3", "layer4"]:
            h = getattr(seg_body, name)(h)
            check["check." + name] = h
    expected.update(check)
    save(os.path.join(out_dir, "ladon_resnest_tiny_expected.safetensors"), expected,
         {"model": "body from seg; check.* = seg body forward of check.latent_hat"})
    with open(os.path.join(out_dir, "ladon_resnest_tiny_config.json"), "w") as fh:
        fh.write(json.dumps(TINY, indent=1) + "\n")
    for name in ["cls", "det", "seg"]:
        path = os.path.join(out_dir, f"ladon_resnest_tiny_{name}.pt")
        print(f"{os.path.relpath(path, ROOT)}: {os.path.getsize(path) / 1024:.1f} KiB")


def full_size_keys():
    """Key counts of the real full-size per-task models and a digest of their converted names and shapes."""
    bc = lambda: {"key": "FPBasedResNetBottleneck", "kwargs": {"num_bottleneck_channels": 32, "num_target_channels": 256}}
    cls = splittable_resnest(bc(), resnest_name="resnest269e", inplanes=2048, pretrained=False,
                             skips_avgpool=False, skips_fc=False)
    det = BaseRCNN(create_faster_rcnn_fpn(
        splittable_resnest(bc(), resnest_name="resnest269e", inplanes=2048, pretrained=False, norm_layer=FrozenBatchNorm2d),
        return_layer_dict=dict(RETURN_LAYERS), in_channels_list=[256, 512, 1024, 2048], num_classes=91))
    seg = create_deeplabv3(FeatureExtractionBackbone(
        splittable_resnest(bc(), resnest_name="resnest269e", inplanes=2048, pretrained=False),
        {"layer4": "out", "layer3": "aux"}, []), uses_aux=True)
    for bottleneck in (cls.bottleneck_layer, det.backbone.body.bottleneck_layer, seg.backbone.bottleneck_layer):
        bottleneck.update(force=True)  # fills the CDF tables, as in the detection and segmentation checkpoints
    counts, names = {}, {}
    for slot, model in [("classification", cls), ("detection", det), ("segmentation", seg)]:
        sd = model.state_dict()
        counts[slot] = len(sd)
        names.update({k: list(v.shape) for k, v in converted_names(slot, sd).items()})
    assert [counts[s] for s in counts] == [2392, 2073, 2442], counts
    body_params = sum(v.numel() for k, v in cls.state_dict().items() if k.startswith("layer") and
                      not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert body_params == 108_511_872, body_params
    lines = []
    for name in sorted(names):
        shape = names[name] if not name.endswith("_quantized_cdf") else names[name][:1] + [-1]  # data-dependent width
        lines.append(name + " " + ",".join(map(str, shape)))
    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    with open(os.path.join(CHECKPOINTS, "ladon_resnest269e_keys.json"), "w") as fh:
        fh.write(json.dumps({"stateDictEntries": counts, "convertedTensors": len(lines), "bodyParameters": body_params,
                             "sha256": digest, "rule": "sorted 'name shape' lines joined by newline; "
                             "_quantized_cdf width written as -1"}, indent=1) + "\n")
    print(f"full size: {counts}, {len(lines)} converted tensors, sha256 {digest[:16]}...")


if __name__ == "__main__":
    ops()
    body()
    checkpoints()
    full_size_keys()
