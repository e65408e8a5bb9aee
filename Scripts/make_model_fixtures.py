#!/usr/bin/env python3
"""Tiny Ladon model fixtures from the real sc2bench / torchvision / CompressAI modules (random weights).

Writes into Tests/LadonCoreTests/Fixtures/model/:
  tiny_model.safetensors   weights under the converted-model names (docs/weights-format.md) + config metadata
  tiny_case{i}.safetensors the input image tensor and every stage's reference output for one image

The architecture is Ladon's (FPBasedResNetBottleneck, torchvision Bottleneck layer2-4, avgpool+fc,
DeepLabHead = ASPP(12,24,36) + 3x3 conv + classifier) at tiny widths, and preprocessing is torchvision's
GeneralizedRCNNTransform with min_size = max_size = 64. Case 0 uses the torchvision-0.13 float32 resize rule
(size computed here and passed to F.interpolate, the kernel torchvision itself calls); case 1 uses this
venv's torchvision GeneralizedRCNNTransform as is (>= 0.15: the double-precision rule); each case records its rule.

Run:  $(../shared/tools/setup-python-env.sh) Scripts/make_model_fixtures.py
"""
import json, os, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from PIL import Image
from sc2bench.models.layer import FPBasedResNetBottleneck
from torchvision.models.resnet import Bottleneck
from torchvision.models.segmentation.deeplabv3 import ASPP
from torchvision.models.detection.transform import GeneralizedRCNNTransform
import torchvision
from collections import OrderedDict
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import MultiScaleRoIAlign, FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

torch.manual_seed(20261124)
torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests", "LadonCoreTests", "Fixtures", "model")
os.makedirs(OUT, exist_ok=True)

ENC = [3, 8, 6, 4]
DEC = [4, 12, 10, 16]
PLANES = [4, 8, 8]
BLOCKS = [2, 2, 1]
CLS = 10
SEG = 5
ASPP_CH = 8
RATES = [12, 24, 36]
SIZE = 64
FPN_CH = 8
REPR = 16
DET_CLASSES = 91
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]

config = {
    "architecture": "ladon-tiny-test",
    "bottleneckChannels": ENC[3],
    "encoderChannels": ENC,
    "decoderChannels": DEC,
    "entropyBottleneck": {"filters": [3, 3, 3, 3], "tailMass": 1e-9, "likelihoodBound": 1e-9},
    "body": {"name": "resnet50", "blocks": BLOCKS, "planes": PLANES, "expansion": 4, "batchNormEpsilon": 1e-5},
    "classification": {"numClasses": CLS, "classList": "imagenet"},
    "segmentation": {"numClasses": SEG, "classList": "voc", "asppChannels": ASPP_CH, "asppRates": RATES},
    "detection": {"numClasses": DET_CLASSES, "classList": "coco", "fpnChannels": FPN_CH,
                  "anchorSizes": [32, 64, 128, 256, 512], "aspectRatios": [0.5, 1.0, 2.0],
                  "roiLevels": ["0", "1", "2"], "roiOutputSize": 7, "roiSamplingRatio": 2,
                  "representationSize": REPR, "rpnPreNmsTopN": 1000, "rpnPostNmsTopN": 1000,
                  "rpnNmsThreshold": 0.7, "rpnScoreThreshold": 0.0, "rpnMinSize": 1e-3,
                  "boxScoreThreshold": 0.05, "boxNmsThreshold": 0.5, "boxMinSize": 1e-2,
                  "detectionsPerImage": 100, "boxCoderWeights": [10, 10, 5, 5]},
    "preprocessing": {"minSize": SIZE, "maxSize": SIZE, "sizeDivisible": 32, "mean": MEAN, "std": STD,
                      "resizeRule": "torchvision-0.13-float32"},
}


def randomize_bn(bn):
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.2, 0.2)
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)


def randomize_gdn(gdn):
    with torch.no_grad():
        c = gdn.beta.shape[0]
        gdn.beta.copy_(gdn.beta_reparam.init(torch.rand(c) * 1.0 + 0.5))
        g = torch.rand(c, c) * 0.2 + 0.05 * torch.eye(c)
        raw = gdn.gamma_reparam.init(g)
        raw[0, -1] = -0.3  # a negative raw value is clamped to the lower bound
        gdn.gamma.copy_(raw)


bottleneck = FPBasedResNetBottleneck(num_bottleneck_channels=ENC[3], encoder_channel_sizes=ENC,
                                     decoder_channel_sizes=DEC)
for m in list(bottleneck.encoder) + list(bottleneck.decoder):
    if isinstance(m, nn.Conv2d):
        with torch.no_grad():
            m.weight.mul_(2.0)
    elif m.__class__.__name__ == "GDN1" or m.__class__.__name__ == "GDN":
        randomize_gdn(m)
eb = bottleneck.entropy_bottleneck
with torch.no_grad():
    eb.quantiles[:, 0, 0] = -6.0 + torch.rand(ENC[3])
    eb.quantiles[:, 0, 1] = torch.rand(ENC[3]) * 0.6 - 0.3
    eb.quantiles[:, 0, 2] = 6.0 + torch.rand(ENC[3])
with torch.no_grad():
    bottleneck.encoder[4].weight.mul_(4.0)  # latent spread of several symbols, some escapes
bottleneck.update(force=True)

layers = []
inplanes = DEC[3]
for planes, blocks in zip(PLANES, BLOCKS):
    mods = []
    for b in range(blocks):
        stride = 2 if b == 0 else 1
        down = None
        if b == 0:
            down = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False), nn.BatchNorm2d(planes * 4))
        mods.append(Bottleneck(inplanes, planes, stride, down))
        inplanes = planes * 4
    layers.append(nn.Sequential(*mods))
fc = nn.Linear(inplanes, CLS)
seg_head = nn.Sequential(ASPP(inplanes, RATES, ASPP_CH), nn.Conv2d(ASPP_CH, ASPP_CH, 3, padding=1, bias=False),
                         nn.BatchNorm2d(ASPP_CH), nn.ReLU(), nn.Conv2d(ASPP_CH, SEG, 1))
for mod in layers + [seg_head]:
    for m in mod.modules():
        if isinstance(m, nn.BatchNorm2d):
            randomize_bn(m)
# Faster R-CNN head (torchvision modules, test-time settings of Ladon's per-task detector: P2-P4 pooled).
fpn_in = [DEC[3]] + [p * 4 for p in PLANES]
fpn = FeaturePyramidNetwork(fpn_in, FPN_CH, extra_blocks=LastLevelMaxPool())
rpn = RegionProposalNetwork(AnchorGenerator(((32,), (64,), (128,), (256,), (512,)), ((0.5, 1.0, 2.0),) * 5),
                            RPNHead(FPN_CH, 3), 0.7, 0.3, 256, 0.5, dict(training=2000, testing=1000),
                            dict(training=2000, testing=1000), 0.7, score_thresh=0.0)
roi_heads = RoIHeads(MultiScaleRoIAlign(["0", "1", "2"], 7, 2), TwoMLPHead(FPN_CH * 49, REPR),
                     FastRCNNPredictor(REPR, DET_CLASSES), 0.5, 0.5, 512, 0.25, None, 0.05, 0.5, 100)
def calibrate_detection(batches):
    """Scales the random RPN and box predictor so proposals spread, several classes pass score > 0.05 without
    saturating at 1.0 (which would tie), and NMS has work to do, on every fixture image."""
    def heads(batch):
        y_hat = eb.decompress(bottleneck.encode(batch)["strings"][0], bottleneck.encoder(batch).shape[-2:])
        dec = bottleneck.decoder(y_hat)
        f2 = layers[0](dec); f3 = layers[1](f2); f4 = layers[2](f3)
        fmaps = fpn(OrderedDict((str(k), t) for k, t in enumerate([dec, f2, f3, f4])))
        images_ = ImageList(batch, [tuple(batch.shape[-2:])])
        return fmaps, images_
    with torch.no_grad():
        obj = [o.flatten() for b in batches for o in rpn.head(list(heads(b)[0].values()))[0]]
        rpn.head.cls_logits.weight.mul_(2.0 / torch.cat(obj).std())
        logits, deltas = [], []
        for b in batches:
            fmaps, images_ = heads(b)
            proposals, _ = rpn(images_, fmaps)
            feats = roi_heads.box_head(roi_heads.box_roi_pool(fmaps, proposals, images_.image_sizes))
            l, d = roi_heads.box_predictor(feats)
            logits.append(l - l.mean(1, keepdim=True)); deltas.append(d)
        spread = max(l.std() for l in logits)
        roi_heads.box_predictor.cls_score.weight.mul_(1.5 / spread)
        roi_heads.box_predictor.cls_score.bias.normal_(0, 1.0)
        roi_heads.box_predictor.bbox_pred.weight.mul_(0.5 / torch.cat(deltas).std())


modules = [bottleneck] + layers + [fc, seg_head, fpn, rpn, roi_heads]
for m in modules:
    m.eval()



def legacy_size(h, w):
    """torchvision 0.13: float32 reciprocal * size, then floor(in * scale) in double."""
    mn = torch.tensor(float(min(h, w)), dtype=torch.float32)
    mx = torch.tensor(float(max(h, w)), dtype=torch.float32)
    scale = torch.min(SIZE / mn, SIZE / mx).item()
    return int(np.floor(h * scale)), int(np.floor(w * scale))


def image_tensor(path, w, h):
    img = Image.open(path).convert("RGB").resize((w, h), Image.BILINEAR)
    return torchvision.transforms.functional.to_tensor(img)


here = os.path.join(ROOT, "Tests", "LadonCoreTests", "Fixtures", "model")
images = [("chelsea", 75, 50, "torchvision-0.13-float32"), ("coffee", 50, 61, "torchvision-0.15-double")]
src_dir = os.path.join(ROOT, "Scripts", "data")
def padded_batch(img):
    transform = GeneralizedRCNNTransform(SIZE, SIZE, MEAN, STD)
    transform.eval()
    return transform([img])[0].tensors


# MultiScaleRoIAlign infers its scales on first use and caches them; the calibration pass (padded 64x64 images)
# fixes them at 1/4, 1/8, 1/16, the values any photo of ordinary aspect ratio gives (the Swift model uses them).
calibrate_detection([padded_batch(image_tensor(os.path.join(src_dir, n + "_small.png"), w, h)) for n, w, h, _ in images])
assert roi_heads.box_roi_pool.scales == [0.25, 0.125, 0.0625], roi_heads.box_roi_pool.scales
for i, (name, w, h, rule) in enumerate(images):
    img = image_tensor(os.path.join(src_dir, name + "_small.png"), w, h)
    transform = GeneralizedRCNNTransform(SIZE, SIZE, MEAN, STD)
    transform.eval()
    with torch.no_grad():
        if rule == "torchvision-0.13-float32":
            norm = transform.normalize(img)
            rh, rw = legacy_size(h, w)
            resized = F.interpolate(norm[None], size=(rh, rw), mode="bilinear", align_corners=False)[0]
            batch = transform.batch_images([resized], size_divisible=32)
        else:
            il, _ = transform([img])
            batch = il.tensors
            rh, rw = il.image_sizes[0]
        y = bottleneck.encoder(batch)
        enc = bottleneck.encode(batch)
        strings = enc["strings"][0]
        y_hat = eb.decompress(strings, enc["shape"])
        symbols = torch.round(y - eb._get_medians().reshape(1, -1, 1, 1)).int()
        dec = bottleneck.decoder(y_hat)
        f2 = layers[0](dec)
        f3 = layers[1](f2)
        f4 = layers[2](f3)
        logits = fc(torch.flatten(F.adaptive_avg_pool2d(f4, 1), 1))
        seg_small = seg_head(f4)
        seg = F.interpolate(seg_small, size=batch.shape[-2:], mode="bilinear", align_corners=False)
        mask = seg.argmax(1).to(torch.int32)
        feats = OrderedDict((str(k), t) for k, t in enumerate([dec, f2, f3, f4]))
        fmaps = fpn(feats)
        images_ = ImageList(batch, [(rh, rw)])
        proposals, _ = rpn(images_, fmaps)
        dets, _ = roi_heads(fmaps, proposals, images_.image_sizes)
        dets = transform.postprocess(dets, images_.image_sizes, [(h, w)])[0]
        if dets["scores"].numel() != torch.unique(dets["scores"]).numel():
            print("TIES", dets["scores"][:20], dets["labels"][:20], dets["boxes"][:6])
    tensors = {
        "image": img[None].contiguous(), "preprocessed": batch.contiguous(), "latent": y.contiguous(),
        "symbols": symbols.contiguous(), "compressed": torch.frombuffer(bytearray(strings[0]), dtype=torch.uint8).clone(),
        "latent_hat": y_hat.contiguous(), "decoder": dec.contiguous(), "layer2": f2.contiguous(),
        "layer3": f3.contiguous(), "layer4": f4.contiguous(), "logits": logits.contiguous(),
        "seg_logits_small": seg_small.contiguous(), "seg_logits": seg.contiguous(), "mask": mask.contiguous(),
        "resized_size": torch.tensor([rh, rw], dtype=torch.int32),
        "det_boxes": dets["boxes"].contiguous(), "det_scores": dets["scores"].contiguous(),
        "det_labels": dets["labels"].to(torch.int32).contiguous(),
    }
    save_file(tensors, os.path.join(OUT, f"tiny_case{i}.safetensors"),
              metadata={"image": name, "resizeRule": rule, "torchvision": torchvision.__version__})
    print(f"case {i}: {name} {w}x{h} -> {rw}x{rh} padded {tuple(batch.shape[-2:])}, latent {tuple(y.shape)}, "
          f"{len(strings[0])} bytes, logits max {logits.abs().max():.3f}, {dets['scores'].numel()} detections "
          f"({(dets['scores'] > 0.5).sum().item()} above 0.5)")

# Weights are written after the first case calibrated the detection head.
weights = {}
for k, v in bottleneck.state_dict().items():
    if k.startswith("encoder."):
        weights["encoder." + k] = v
    elif k.startswith("entropy_bottleneck."):
        weights["encoder." + k] = v
    elif k.startswith("decoder."):
        weights["shared_body." + k] = v
for i, layer in enumerate(layers):
    for k, v in layer.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            weights[f"shared_body.layer{i + 2}.{k}"] = v
for k, v in fc.state_dict().items():
    weights["classification_head.fc." + k] = v
for k, v in seg_head.state_dict().items():
    if not k.endswith("num_batches_tracked"):
        weights["segmentation_head.classifier." + k] = v
for k, v in fpn.state_dict().items():
    weights["detection_head.fpn." + k] = v
for k, v in rpn.state_dict().items():
    weights["detection_head.rpn." + k] = v
for k, v in roi_heads.state_dict().items():
    weights["detection_head.roi_heads." + k] = v
weights = {k: v.contiguous() for k, v in weights.items()}
save_file(weights, os.path.join(OUT, "tiny_model.safetensors"), metadata={
    "format": "ladon-swift-weights", "format_version": "1", "architecture": config["architecture"],
    "config": json.dumps(config),
    "classes.imagenet": json.dumps([f"class{i}" for i in range(CLS)]),
    "classes.voc": json.dumps([f"seg{i}" for i in range(SEG)]),
    "classes.coco": json.dumps([f"det{i}" for i in range(DET_CLASSES)]),
    "generator": "Scripts/make_model_fixtures.py", "torch": torch.__version__,
    "torchvision": torchvision.__version__})
