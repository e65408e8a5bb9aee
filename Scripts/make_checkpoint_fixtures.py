#!/usr/bin/env python3
"""Builds the PyTorch checkpoint fixtures of the Swift checkpoint reader and converter tests.

Run from the repository root with the reference venv (torch, torchvision, compressai, sc2bench, safetensors):

    /root/.cache/ladon-ref-venv/bin/python Scripts/make_checkpoint_fixtures.py

Writes Tests/LadonCheckpointTests/Fixtures/checkpoints/:
* torch_various.pt (+ _p4.pt with pickle protocol 4) and torch_various_expected.safetensors: a torchdistill-layout
  checkpoint ({'model', 'optimizer', 'lr_scheduler', 'best_value', 'config', 'args'}) whose OrderedDict 'model' holds
  tensors of every dtype, a transposed view, views sharing one storage at offsets, a stride-0 expand, an empty
  tensor, a 0-dim int64 and an nn.Parameter; the expected file holds contiguous copies.
* bare_state_dict.pt: a state dict saved at the top level (no torchdistill wrapper).
* torch_legacy.pt (torch < 1.6 format), missing_storage.pt, huge_size.pt, garbage_pickle.pt: damaged inputs.
* ladon_tiny_{cls,det,seg}.pt: the three Ladon per-task checkpoints with the exact key names of the real
  sc2bench/torchvision/compressai modules, built from those modules at tiny widths (ladon_tiny_config.json).
  cls uses CompressAI < 1.2.7 entropy names (_matrix0...), det torchvision < 0.13 FPN/RPN names. det and seg carry
  different BatchNorm running statistics in the shared body, as the real checkpoints probably do.
  ladon_tiny_cls_badshape.pt has one tensor of a wrong shape.
* ladon_tiny_expected.safetensors: the converted tensors the converter must produce (shared body from seg).
* ladon_resnet50_keys.json: names, shapes and dtypes of the full-size per-task state dicts (real modules).
"""
import argparse
import collections
import copy
import io
import json
import pathlib
import pickle
import zipfile

import torch
import torch.nn as nn
from safetensors.torch import save_file
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.resnet import Bottleneck, ResNet
from torchvision.models.segmentation.deeplabv3 import ASPP
from torchvision.models.segmentation.fcn import FCNHead
from sc2bench.models.backbone import FeatureExtractionBackbone, SplittableResNet, splittable_resnet
from sc2bench.models.detection.rcnn import BaseRCNN, create_faster_rcnn_fpn
from sc2bench.models.layer import FPBasedResNetBottleneck
from sc2bench.models.segmentation.base import BaseSegmentationModel
from sc2bench.models.segmentation.deeplabv3 import create_deeplabv3

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "LadonCheckpointTests" / "Fixtures" / "checkpoints"
RETURN_LAYERS = {"bottleneck_layer": "1", "layer2": "2", "layer3": "3", "layer4": "4"}

TINY_CONFIG = {
    "architecture": "ladon-tiny-test",
    "bottleneckChannels": 2,
    "encoderChannels": [3, 8, 4, 2],
    "decoderChannels": [2, 8, 4, 4],
    "entropyBottleneck": {"filters": [3, 3, 3, 3], "tailMass": 1e-9, "likelihoodBound": 1e-9},
    "body": {"name": "resnet50", "blocks": [2, 1, 1], "planes": [2, 4, 8], "expansion": 4, "batchNormEpsilon": 1e-5},
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


def torchdistill_ckpt(model, best_value):
    """The layout torchdistill's save_ckpt writes."""
    params = [p for p in model.parameters()][:3]
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5)
    args = argparse.Namespace(config="configs/ladon.yaml", device="cuda", log=None, seed=None, test_only=False)
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "best_value": best_value,
            "lr_scheduler": scheduler.state_dict(), "config": {"models": {"student_model": {"key": "x"}}}, "args": args}


# ---------------------------------------------------------------- generic reader fixtures

def various():
    torch.manual_seed(1)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) * 0.5 - 3
    sd = collections.OrderedDict()
    sd["f32"] = torch.randn(2, 3, 4)
    sd["transposed"] = base.t()
    sd["view_row"] = base[2]
    sd["view_block"] = base[1:, 2:5]
    sd["strided"] = base[:, ::2]
    sd["expanded"] = torch.tensor([1.0, 2.0, 3.0]).expand(2, 3)
    sd["f16"] = torch.randn(5).half()
    sd["bf16"] = torch.randn(5).bfloat16()
    sd["f64"] = torch.randn(3, dtype=torch.float64)
    sd["f16_transposed"] = torch.randn(3, 2).half().t()
    sd["i32"] = torch.tensor([-3, 0, 7, 2**31 - 1], dtype=torch.int32)
    sd["i64"] = torch.tensor([-(2**40), 5, -1], dtype=torch.int64)
    sd["i16"] = torch.tensor([-300, 300], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 255, 7], dtype=torch.uint8)
    sd["flags"] = torch.tensor([True, False, True])
    sd["num_batches_tracked"] = torch.tensor(12345)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = nn.Parameter(torch.randn(2, 2))
    sd._metadata = collections.OrderedDict({"": {"version": 1}, "layer": {"version": 2}})
    ckpt = {"model": sd, "optimizer": {"state": {0: {"momentum_buffer": torch.ones(2)}},
                                       "param_groups": [{"lr": 0.1, "params": [0, 1], "nesterov": False}]},
            "lr_scheduler": {"step_size": 5, "gamma": 0.1, "last_epoch": -1}, "best_value": 76.5,
            "config": {"name": "ünïcödé", "big": 2**70, "neg": -(2**33), "raw": b"\x00\x01\xff", "nums": (1, 2.5, None),
                       "set": {3, 4}, "flags": [True, False]},
            "args": argparse.Namespace(config="x.yaml", world_size=1, lr=0.5)}
    expected = {}
    for k, v in sd.items():
        expected[k] = v.detach().contiguous().clone()
    return ckpt, expected


def write_zip(path, records):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in records:
            z.writestr(name, data)


class FakeStorage:
    pass


class FakeTensor:
    def __init__(self, size, stride):
        self.size, self.stride = size, stride

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2,
                (FakeStorage(), 0, self.size, self.stride, False, collections.OrderedDict()))


def crafted_pickle(obj, key, numel):
    buf = io.BytesIO()

    class P(pickle.Pickler):
        def persistent_id(self, o):
            return ("storage", torch.FloatStorage, key, "cpu", numel) if isinstance(o, FakeStorage) else None

    P(buf, protocol=2).dump(obj)
    return buf.getvalue()


def damaged_files():
    # A tensor whose view needs 10^12 elements of a 4-element storage.
    data = crafted_pickle({"model": collections.OrderedDict(w=FakeTensor((10**12,), (1,)))}, "0", 4)
    write_zip(OUT / "huge_size.pt", [("huge/data.pkl", data), ("huge/byteorder", b"little"),
                                     ("huge/data/0", bytes(16)), ("huge/version", b"3\n")])
    # A pickle that references storage '1', which has no record.
    data = crafted_pickle({"model": collections.OrderedDict(w=FakeTensor((2,), (1,)))}, "1", 2)
    write_zip(OUT / "missing_storage.pt", [("miss/data.pkl", data), ("miss/data/0", bytes(8)), ("miss/version", b"3\n")])
    # A pickle stream with an invalid opcode after a valid start.
    write_zip(OUT / "garbage_pickle.pt", [("junk/data.pkl", b"\x80\x02}q\x00(X\x01\x00\x00\x00a\xff\xfe"),
                                          ("junk/version", b"3\n")])


# ---------------------------------------------------------------- Ladon fixtures

def tiny_resnet(num_classes):
    r = ResNet(Bottleneck, [1, 1, 1, 1], num_classes=num_classes)
    r.inplanes = TINY_CONFIG["decoderChannels"][3]
    blocks, planes = TINY_CONFIG["body"]["blocks"], TINY_CONFIG["body"]["planes"]
    r.layer2 = r._make_layer(Bottleneck, planes[0], blocks[0], stride=2)
    r.layer3 = r._make_layer(Bottleneck, planes[1], blocks[1], stride=2)
    r.layer4 = r._make_layer(Bottleneck, planes[2], blocks[2], stride=2)
    r.fc = nn.Linear(planes[2] * 4, num_classes)
    return r


def tiny_backbone(with_fc):
    bottleneck = FPBasedResNetBottleneck(num_bottleneck_channels=TINY_CONFIG["bottleneckChannels"],
                                         num_target_channels=TINY_CONFIG["decoderChannels"][3])
    return SplittableResNet(bottleneck, tiny_resnet(TINY_CONFIG["classification"]["numClasses"]),
                            skips_avgpool=not with_fc, skips_fc=not with_fc)


def randomise(model, generator):
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if "entropy_bottleneck" in name or name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var") or name.endswith(".beta") or name.endswith(".gamma"):
                t.copy_(torch.rand(t.shape, generator=generator) + 0.5)
            elif t.is_floating_point() and "reparam" not in name:
                t.copy_(torch.randn(t.shape, generator=generator) * 0.5)
            elif name.endswith("num_batches_tracked"):
                t.fill_(7)


def body_copy(cls):
    """The classification model without avgpool/fc: the same shared-body weights."""
    body = copy.deepcopy(cls)
    body.avgpool, body.fc = None, None
    return body


def perturb_running_stats(model, prefix, scale, generator):
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.startswith(prefix) and (name.endswith("running_mean") or name.endswith("running_var")):
                t.add_(torch.rand(t.shape, generator=generator) * scale)


def tiny_models():
    g = torch.Generator().manual_seed(7)
    cls = tiny_backbone(with_fc=True)
    randomise(cls, g)
    cls.bottleneck_layer.update(force=True)

    det_backbone = body_copy(cls)
    d = TINY_CONFIG["detection"]
    f, r = d["fpnChannels"], d["representationSize"]
    stages = [p * 4 for p in TINY_CONFIG["body"]["planes"]]
    det = BaseRCNN(create_faster_rcnn_fpn(
        det_backbone, return_layer_dict=dict(RETURN_LAYERS), in_channels_list=[TINY_CONFIG["decoderChannels"][3]] + stages,
        out_channels=f, num_classes=None, box_head=TwoMLPHead(f * 7 * 7, r), box_predictor=FastRCNNPredictor(r, d["numClasses"])))
    randomise(det.rpn, g)
    randomise(det.roi_heads, g)
    randomise(det.backbone.fpn, g)
    perturb_running_stats(det, "backbone.body.layer", 0.01, g)

    seg_backbone = body_copy(cls)
    s = TINY_CONFIG["segmentation"]
    a = s["asppChannels"]
    classifier = nn.Sequential(ASPP(stages[2], s["asppRates"], out_channels=a), nn.Conv2d(a, a, 3, padding=1, bias=False),
                               nn.BatchNorm2d(a), nn.ReLU(), nn.Conv2d(a, s["numClasses"], 1))
    seg = BaseSegmentationModel(FeatureExtractionBackbone(seg_backbone, {"layer4": "out", "layer3": "aux"}, []),
                                classifier, FCNHead(stages[1], s["numClasses"]))
    randomise(seg.classifier, g)
    randomise(seg.aux_classifier, g)
    perturb_running_stats(seg, "backbone.layer", 0.05, g)
    return cls, det, seg


def full_size_keys():
    bc = lambda: {"key": "FPBasedResNetBottleneck", "kwargs": {"num_bottleneck_channels": 24, "num_target_channels": 256}}
    cls = splittable_resnet(bc(), resnet_name="resnet50", skips_avgpool=False, skips_fc=False)
    det = BaseRCNN(create_faster_rcnn_fpn(splittable_resnet(bc(), resnet_name="resnet50"), return_layer_dict=dict(RETURN_LAYERS),
                                          in_channels_list=[256, 512, 1024, 2048], num_classes=91))
    seg = create_deeplabv3(FeatureExtractionBackbone(splittable_resnet(bc(), resnet_name="resnet50"),
                                                     {"layer4": "out", "layer3": "aux"}, []), uses_aux=True)
    for bottleneck in (cls.bottleneck_layer, det.backbone.body.bottleneck_layer, seg.backbone.bottleneck_layer):
        bottleneck.update(force=True)  # fills the CDF tables, as in the released checkpoints
    out = {}
    for slot, model in [("classification", cls), ("detection", det), ("segmentation", seg)]:
        out[slot] = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in model.state_dict().items()]
    assert [len(out[s]) for s in out] == [304, 332, 354], [len(out[s]) for s in out]
    return out


def rename(sd, rules):
    out = collections.OrderedDict()
    for k, v in sd.items():
        for old, new in rules:
            k = k.replace(old, new)
        out[k] = v
    out._metadata = getattr(sd, "_metadata", None)
    return out


def expected_conversion(cls_sd, det_sd, seg_sd):
    """The runtime names (reference §8.5), body from seg; an independent spelling of the Swift mapping."""
    out = {}
    for k, v in seg_sd.items():
        if k.endswith("num_batches_tracked") or k.startswith("aux_classifier."):
            continue
        if k.startswith("backbone.bottleneck_layer.encoder."):
            out["encoder.encoder." + k[len("backbone.bottleneck_layer.encoder."):]] = v
        elif k.startswith("backbone.bottleneck_layer.entropy_bottleneck."):
            out["encoder.entropy_bottleneck." + k[len("backbone.bottleneck_layer.entropy_bottleneck."):]] = v
        elif k.startswith("backbone.bottleneck_layer.decoder."):
            out["shared_body.decoder." + k[len("backbone.bottleneck_layer.decoder."):]] = v
        elif k.startswith("backbone.layer"):
            out["shared_body." + k[len("backbone."):]] = v
        elif k.startswith("classifier."):
            out["segmentation_head." + k] = v
        else:
            raise KeyError(k)
    out["classification_head.fc.weight"] = cls_sd["fc.weight"]
    out["classification_head.fc.bias"] = cls_sd["fc.bias"]
    for k, v in det_sd.items():
        if k.startswith("backbone.fpn."):
            out["detection_head.fpn." + k[len("backbone.fpn."):]] = v
        elif k.startswith("rpn.") or k.startswith("roi_heads."):
            out["detection_head." + k] = v
    return {k: (v.to(torch.int32) if v.dtype in (torch.int32, torch.int64) else v.float()).contiguous().clone()
            for k, v in out.items()}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    ckpt, expected = various()
    torch.save(ckpt, OUT / "torch_various.pt")
    torch.save(ckpt, OUT / "torch_various_p4.pt", pickle_protocol=4)
    save_file(expected, str(OUT / "torch_various_expected.safetensors"))
    torch.save({"model": collections.OrderedDict(w=torch.ones(2))}, OUT / "torch_legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(collections.OrderedDict(w=torch.arange(3.0), b=torch.tensor([7])), OUT / "bare_state_dict.pt")
    damaged_files()

    cls, det, seg = tiny_models()
    cls_sd, det_sd, seg_sd = cls.state_dict(), det.state_dict(), seg.state_dict()
    full = full_size_keys()
    for slot, sd in [("classification", cls_sd), ("detection", det_sd), ("segmentation", seg_sd)]:
        full_names = {k for k, _, _ in full[slot]}
        assert set(sd) <= full_names, (slot, sorted(set(sd) - full_names)[:5])  # tiny keys are real keys
    old_eb = [(f"entropy_bottleneck.matrices.{i}", f"entropy_bottleneck._matrix{i}") for i in range(5)] \
        + [(f"entropy_bottleneck.biases.{i}", f"entropy_bottleneck._bias{i}") for i in range(5)] \
        + [(f"entropy_bottleneck.factors.{i}", f"entropy_bottleneck._factor{i}") for i in range(4)]
    old_fpn = [(f"fpn.{b}.{i}.0.", f"fpn.{b}.{i}.") for b in ("inner_blocks", "layer_blocks") for i in range(4)] \
        + [("rpn.head.conv.0.0.", "rpn.head.conv.")]

    cls_ckpt = torchdistill_ckpt(cls, 71.0)
    cls_ckpt["model"] = rename(cls_sd, old_eb)
    torch.save(cls_ckpt, OUT / "ladon_tiny_cls.pt")
    det_ckpt = torchdistill_ckpt(det, 0.2)
    det_ckpt["model"] = rename(det_sd, old_fpn)
    torch.save(det_ckpt, OUT / "ladon_tiny_det.pt")
    torch.save(torchdistill_ckpt(seg, 0.6), OUT / "ladon_tiny_seg.pt")
    bad = torchdistill_ckpt(cls, 71.0)
    bad["model"]["layer3.0.conv2.weight"] = torch.zeros(4, 4, 1, 3)
    torch.save(bad, OUT / "ladon_tiny_cls_badshape.pt")

    save_file(expected_conversion(cls_sd, det_sd, seg_sd), str(OUT / "ladon_tiny_expected.safetensors"))
    (OUT / "ladon_tiny_config.json").write_text(json.dumps(TINY_CONFIG, indent=1) + "\n")
    (OUT / "ladon_resnet50_keys.json").write_text(json.dumps(full, separators=(",", ":")) + "\n")
    for p in sorted(OUT.iterdir()):
        print(f"{p.stat().st_size:8d}  {p.name}")


if __name__ == "__main__":
    main()
