#!/usr/bin/env python3
"""ResNeSt-269e Ladon fixtures from the real timm / sc2bench modules (random weights).

Writes into Tests/LadonCoreTests/Fixtures/:
  kernels/resnest_ops.safetensors   grouped convolutions (groups 2, 3, 4), the two average pools of the
                                    ResNeSt block (avd 3x3/s2/p1 count_include_pad=True; shortcut 2x2/s2
                                    ceil_mode count_include_pad=False) and timm's SplitAttn (radix 2 and 3),
                                    all on odd shapes
  model/resnest_body.safetensors    the body of sc2bench's splittable_resnest('resnest269e') at reduced depth
                                    and width (layers [1, 2, 3, 2], channels (4, 6, 8, 10)): its state dict under
                                    the converted names (shared_body.layer{2,3,4}.*), an input at the decoder's
                                    width and every stage's output, plus the model config as metadata

timm >= 1.0.21 passes device/dtype keywords to norm_layer, which torchvision's FrozenBatchNorm2d (the
detection backbone's norm layer) rejects, so these fixtures need timm <= 1.0.20. Use the ResNeSt venv
(Scripts/parity/README.md, "ResNeSt-269e"):

    /root/.cache/ladon-resnest-venv/bin/python Scripts/make_resnest_fixtures.py

Deterministic: fixed seed, CPU, one thread.
"""
import json
import os

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file
from sc2bench.models.backbone import splittable_resnest
from timm.layers.helpers import make_divisible
from timm.layers.split_attn import SplitAttn

torch.manual_seed(20261202)
torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "Tests", "LadonCoreTests", "Fixtures")

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


if __name__ == "__main__":
    ops()
    body()
