#!/usr/bin/env python3
"""Golden fixtures for the non-GEMM kernels, computed with the real PyTorch / CompressAI ops.

Writes small .safetensors files into Tests/LadonCoreTests/Fixtures/kernels/ (the Swift tests read them;
they never run Python). Deterministic: fixed seeds, CPU only.

Run from the repository root with a Python that has torch, compressai and safetensors, e.g.:

    python3 Scripts/make_kernel_fixtures.py

Ops covered: F.relu, residual add (+ReLU), F.max_pool2d, F.adaptive_avg_pool2d, F.interpolate (bilinear
with explicit sizes and with scale factors, legacy nearest), torch.softmax, torch.argmax, torch.topk,
torch.cat, nn.Linear and compressai.layers.GDN1 (the simplified GDN sc2bench uses) forward and inverse,
with non-trivial beta/gamma passed through the real module and its real state_dict key names.
"""
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "LadonCoreTests", "Fixtures", "kernels")

torch.set_num_threads(2)  # ATen picks some kernels by thread count (bilinear); 2 = the target machine
torch.manual_seed(20240611)


def randn(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).contiguous()


def save(name, tensors):
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    path = os.path.join(OUT, name)
    save_file(tensors, path, metadata={"generator": f"Scripts/make_kernel_fixtures.py, torch {torch.__version__}"})
    print(f"{name}: {os.path.getsize(path) / 1024:.1f} KiB, {len(tensors)} tensors")


def elementwise():
    x = randn(2, 3, 7, 5)
    x[0, 0, 0, :3] = 0.0
    y = randn(2, 3, 7, 5)
    save("elementwise.safetensors", {
        "x": x, "y": y,
        "relu": F.relu(x),
        "add": x + y,
        "add_relu": F.relu(x + y),
    })


def pooling():
    t = {}
    # (name, input shape, kernel, stride, padding)
    for name, shape, k, s, p in [
        ("stem", (2, 5, 13, 11), 3, 2, 1),         # ResNet stem max pool
        ("lastlevel", (1, 4, 7, 9), 1, 2, 0),      # FPN LastLevelMaxPool
        ("k2s2", (1, 3, 9, 7), 2, 2, 0),
        ("k3s1p1", (1, 2, 6, 37), 3, 1, 1),        # a row wider than one SIMD block
        ("k5s3p2", (1, 2, 11, 20), 5, 3, 2),
    ]:
        x = randn(*shape)
        t[f"max_{name}_x"] = x
        t[f"max_{name}_y"] = F.max_pool2d(x, k, s, p)
    for name, shape, out in [
        ("13to1", (2, 3, 13, 13), (1, 1)),
        ("13to5", (1, 3, 13, 13), (5, 5)),
        ("7to3", (1, 4, 7, 7), (3, 3)),
        ("13x11to5x3", (1, 2, 13, 11), (5, 3)),
        ("4x6to7x9", (1, 2, 4, 6), (7, 9)),        # upsampling bins repeat inputs
        ("global", (1, 64, 13, 13), (1, 1)),
    ]:
        x = randn(*shape) + 0.5
        t[f"avg_{name}_x"] = x
        t[f"avg_{name}_y"] = F.adaptive_avg_pool2d(x, out)
    save("pooling.safetensors", t)


def softmax_argmax_topk():
    v = randn(1000, scale=4.0)
    rows = randn(7, 91, scale=3.0)
    # Argmax input with exact ties: values on a coarse grid.
    a = torch.round(randn(2, 21, 13, 17) * 2.0) / 2.0
    s = torch.randperm(5000).float() / 7.0 - 300.0  # distinct values: torch.topk order is then unique
    top_v, top_i = torch.topk(s, 37)
    save("softmax.safetensors", {
        "softmax_x": v, "softmax_y": torch.softmax(v, dim=0),
        "rows_x": rows, "rows_y": torch.softmax(rows, dim=1),
        "argmax_x": a, "argmax_y": torch.argmax(a, dim=1).to(torch.int32),
        "topk_x": s, "topk_values": top_v, "topk_indices": top_i.to(torch.int32),
    })


def concat():
    xs = [randn(2, c, 5, 7) for c in (3, 1, 4)]
    save("concat.safetensors", {"x0": xs[0], "x1": xs[1], "x2": xs[2], "y": torch.cat(xs, dim=1)})


def resize():
    t = {}
    bil = lambda x, size: F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    for name, shape, size in [
        ("down_96x128_to_62x83", (1, 1, 96, 128), (62, 83)),   # 640x480 -> 415x311 style, generic kernel
        ("up_9x7_to_101x89", (1, 2, 9, 7), (101, 89)),
        ("odd_37x53_to_41x23", (1, 1, 37, 53), (41, 23)),       # oh+ow <= 128 too
        ("keep_w_13x20_to_130x20", (1, 2, 13, 20), (130, 20)),  # W unchanged: identity taps
        ("small_48x64_to_31x41", (1, 3, 48, 64), (31, 41)),   # oh+ow <= 128: ATen's channels-last kernel
        ("small_13x13_to_52x52", (1, 3, 13, 13), (52, 52)),
    ]:
        x = randn(*shape)
        t[f"bilinear_{name}_x"] = x
        t[f"bilinear_{name}_y"] = bil(x, size)
    # Scale factors, as torchvision's GeneralizedRCNNTransform calls it (recompute) and without recompute,
    # on the 96x128 input above.
    x = t["bilinear_down_96x128_to_62x83_x"]
    for recompute in (True, False):
        y = F.interpolate(x, scale_factor=416.0 / 640.0, mode="bilinear", recompute_scale_factor=recompute,
                          align_corners=False)
        t[f"scale_recompute{int(recompute)}_y"] = y
    for name, shape, size in [
        ("2x_13_to_26", (1, 4, 13, 13), (26, 26)),           # FPN top-down path
        ("7x5_to_13x11", (1, 3, 7, 5), (13, 11)),
        ("26_to_13", (1, 2, 26, 26), (13, 13)),
        ("big_10x12_to_70x81", (1, 1, 10, 12), (70, 81)),
    ]:
        x = randn(*shape)
        t[f"nearest_{name}_x"] = x
        t[f"nearest_{name}_y"] = F.interpolate(x, size=size, mode="nearest")
    save("resize.safetensors", t)
    # 1/32 upsampling (a 13x13 logit map to 416x416), one channel and a narrow W to keep the file small.
    x = randn(1, 1, 13, 5)
    save("resize_up32.safetensors", {"x": x, "y": bil(x, (416, 160))})


def linear():
    m = torch.nn.Linear(37, 19)
    with torch.no_grad():
        m.bias.uniform_(-1, 1)
    x = randn(5, 37)
    with torch.no_grad():
        y = m(x)
        y_relu = F.relu(y)
    save("linear.safetensors", {"fc.weight": m.weight.detach(), "fc.bias": m.bias.detach(), "x": x, "y": y,
                                "y_relu": y_relu})


def gdn():
    from compressai.layers import GDN1
    t = {}
    for prefix, c, inverse, shape in [("gdn", 13, False, (2, 13, 9, 11)), ("igdn", 48, True, (1, 48, 17, 19))]:
        m = GDN1(c, inverse=inverse)
        with torch.no_grad():
            beta = torch.rand(c) + 0.5
            beta[0] = -0.3      # below the bound: clamped to beta_min
            beta[1] = 0.0005
            gamma = torch.rand(c, c) * 0.4
            gamma[torch.rand(c, c) < 0.2] = -0.1   # negative stored values: clamped to ~0
            m.beta.copy_(beta)
            m.gamma.copy_(gamma)
            x = randn(*shape, scale=2.0)
            y = m(x)
            for k, v in m.state_dict().items():
                t[f"{prefix}.{k}"] = v
            t[f"{prefix}_effective_beta"] = m.beta_reparam(m.beta)
            t[f"{prefix}_effective_gamma"] = m.gamma_reparam(m.gamma)
        t[f"{prefix}_x"] = x
        t[f"{prefix}_y"] = y
    save("gdn.safetensors", t)


def main():
    os.makedirs(OUT, exist_ok=True)
    elementwise()
    pooling()
    softmax_argmax_topk()
    concat()
    resize()
    linear()
    gdn()


if __name__ == "__main__":
    sys.exit(main())
