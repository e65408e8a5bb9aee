#!/usr/bin/env python3
"""Golden convolution fixtures from PyTorch for Tests/LadonCoreTests/Conv2dGoldenTests.swift.

Run (from the repository root) with a Python that has torch and safetensors:
    /root/.cache/ladon-ref-venv/bin/python Scripts/make_conv_fixtures.py
Writes Tests/LadonCoreTests/Fixtures/conv/conv_cases.safetensors (torch.nn.functional.conv2d on the
Ladon layer shapes at tiny channel counts) and conv_bn.safetensors (nn.Conv2d + nn.BatchNorm2d in eval
mode, to test BatchNorm folding in the Conv2d layer). Deterministic (fixed seed).
"""
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "LadonCoreTests", "Fixtures", "conv")

# (name, batch, inC, outC, H, W, kernel, stride, padding, dilation, groups, bias, relu)
CASES = [
    ("encoder_stem_5x5_s2", 1, 3, 8, 19, 21, 5, 2, 2, 1, 1, True, False),
    ("encoder_5x5_s2", 1, 8, 6, 10, 11, 5, 2, 2, 1, 1, True, False),
    ("encoder_2x2_p0", 1, 6, 5, 9, 8, 2, 1, 0, 1, 1, True, False),
    ("decoder_2x2_p1", 1, 5, 12, 7, 7, 2, 1, 1, 1, 1, True, True),
    ("decoder_2x2_p0", 1, 12, 8, 8, 8, 2, 1, 0, 1, 1, True, False),
    ("decoder_2x2_p1b", 1, 8, 8, 7, 6, 2, 1, 1, 1, 1, True, False),
    ("resnet_stem_7x7_s2", 1, 3, 8, 23, 22, 7, 2, 3, 1, 1, False, True),
    ("resnet_3x3_s1", 2, 8, 12, 13, 13, 3, 1, 1, 1, 1, False, True),
    ("resnet_3x3_s2", 1, 8, 12, 13, 14, 3, 2, 1, 1, 1, False, False),
    ("resnet_1x1_s2_downsample", 1, 8, 16, 13, 13, 1, 2, 0, 1, 1, False, False),
    ("fpn_1x1", 1, 16, 8, 9, 11, 1, 1, 0, 1, 1, True, False),
    ("aspp_3x3_d12", 1, 8, 6, 13, 13, 3, 1, 12, 12, 1, False, True),
    ("aspp_3x3_d24", 1, 8, 6, 13, 13, 3, 1, 24, 24, 1, False, True),
    ("aspp_3x3_d36", 1, 8, 6, 13, 13, 3, 1, 36, 36, 1, False, True),
    ("grouped_3x3_g2", 1, 8, 6, 9, 10, 3, 1, 1, 1, 2, True, False),
]


def main():
    torch.manual_seed(20261124)
    os.makedirs(OUT, exist_ok=True)
    tensors = {}
    for (name, n, cin, cout, h, w, k, s, p, d, g, bias, relu) in CASES:
        x = torch.randn(n, cin, h, w)
        weight = torch.randn(cout, cin // g, k, k) / (cin // g * k * k) ** 0.5
        b = torch.randn(cout) if bias else None
        y = F.conv2d(x, weight, b, stride=s, padding=p, dilation=d, groups=g)
        if relu:
            y = torch.relu(y)
        tensors[f"{name}.input"] = x
        tensors[f"{name}.weight"] = weight
        if b is not None:
            tensors[f"{name}.bias"] = b
        tensors[f"{name}.output"] = y
        tensors[f"{name}.params"] = torch.tensor([cin, cout, k, s, p, d, g, int(bias), int(relu)], dtype=torch.int32)
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(OUT, "conv_cases.safetensors"),
              metadata={"generator": "Scripts/make_conv_fixtures.py", "torch": torch.__version__,
                        "params": "inC, outC, kernel, stride, padding, dilation, groups, hasBias, relu"})

    # Conv2d + BatchNorm2d (eval): one without conv bias (ResNet style), one with.
    bn_tensors = {}
    for name, has_bias, stride in (("nobias", False, 1), ("bias", True, 2)):
        conv = torch.nn.Conv2d(6, 10, 3, stride=stride, padding=1, bias=has_bias)
        bn = torch.nn.BatchNorm2d(10)
        with torch.no_grad():
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_()
            bn.running_mean.normal_()
            bn.running_var.uniform_(0.2, 2.0)
        conv.eval()
        bn.eval()
        x = torch.randn(1, 6, 11, 12)
        with torch.no_grad():
            y = torch.relu(bn(conv(x)))
        for key, value in conv.state_dict().items():
            bn_tensors[f"{name}.conv.{key}"] = value
        for key, value in bn.state_dict().items():
            if key != "num_batches_tracked":
                bn_tensors[f"{name}.bn.{key}"] = value
        bn_tensors[f"{name}.input"] = x
        bn_tensors[f"{name}.output"] = y
    save_file({k: v.contiguous() for k, v in bn_tensors.items()}, os.path.join(OUT, "conv_bn.safetensors"),
              metadata={"generator": "Scripts/make_conv_fixtures.py", "torch": torch.__version__,
                        "model": "relu(BatchNorm2d(10).eval()(Conv2d(6, 10, 3, padding=1)(x))), stride 1 (nobias) / 2 (bias)"})


if __name__ == "__main__":
    main()
