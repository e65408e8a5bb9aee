#!/usr/bin/env python3
"""Side-by-side speed of the Swift runtime and ONNX Runtime (and PyTorch) on the same full-size Ladon model.

    python Scripts/bench/compare_ort.py --model /tmp/ladon-parity/model.safetensors \\
        --classification /tmp/ladon-parity/classification.pt --detection /tmp/ladon-parity/detection.pt \\
        --segmentation /tmp/ladon-parity/segmentation.pt [--image Scripts/parity/images/astronaut.jpg] \\
        [--rounds 4] [--runs 5] [--threads 1 2] [--ladon .build/release/ladon] [--backbone resnest269e] \\
        [--pipeline] [--isolated]

The checkpoints are the ones `Scripts/parity/make_checkpoints.py` writes (and `ladon convert` turned into
--model). The reference runtime (Scripts/parity/reference.py) is exported stage by stage to ONNX (opset 17,
TorchScript exporter): encoder, server body (decoder + layer2-4), classification head, segmentation head
(with the upsampling), detection head (FPN + RPN + RoI heads, for the padded size of --image). The machine is
shared and noisy, so Swift and ORT blocks are interleaved in rounds and the script prints medians and the
ORT/Swift ratio per stage and thread count. Swift's times come from `ladon infer --json` (stage timings of each
image; the same image is passed --runs + 1 times and the first, warm-up, is dropped). The rows "device loop" time the
device half the way a device runs it and the way ORT's encoder is timed here, one encoder run after another
(`ladon encode --json` on the same copies); in `ladon infer` each encoder run follows the server's stages, which could
leave its caches cold (on the Zen 3 machine the two read the same). With --isolated, rows "<stage>, isolated" time
Swift's stages exactly as ORT's are timed here, each rerun on its own with warm caches (`ladon bench --timing isolated`):
a like-for-like figure for stages whose weights fit the last-level cache (the classification head's 8 MB), which
`ladon infer` reads from memory after the body while ORT's isolated reruns find them in cache.

The last column, Swift / ORT, is issue 11's measure (a target of 1.0 means "no slower than ORT"); the device half is
compared with ORT's encoder + CompressAI's entropy encoder, the server half with CompressAI's entropy decoder + ORT's
body and three heads. A host probe runs before the first and after the last round (one thread: a 512-square float32
matrix product and a 64 MB copy, medians of 15): on a shared machine a neighbour's load shows there as fewer GFLOP/s
or GB/s than the machine gives when quiet, and `load average` (this VM only) does not show it.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "Scripts", "parity"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import onnxruntime as ort  # noqa: E402

import parity_common as pc  # noqa: E402
from reference import LadonRuntime  # noqa: E402


def add_checkpoint_arguments(p):
    """The three PyTorch checkpoints and the photo, as every bench script takes them."""
    p.add_argument("--classification", required=True)
    p.add_argument("--detection", required=True)
    p.add_argument("--segmentation", required=True)
    p.add_argument("--image", default=os.path.join(ROOT, "Scripts", "parity", "images", "astronaut.jpg"))


def load_reference(args):
    """The PyTorch reference runtime of the checkpoints and the photo preprocessed as torchvision does: (rt, images, x)."""
    torch.set_num_threads(1)
    rt = LadonRuntime(args.classification, args.detection, args.segmentation)
    _, image = pc.load_image(args.image)
    images, _ = pc.preprocess([image], rt.transform, "torchvision-0.13")
    return rt, images, images.tensors


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    add_checkpoint_arguments(p)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--ladon", default=os.path.join(ROOT, ".build", "release", "ladon"))
    p.add_argument("--skip-detection", action="store_true", help="do not export/time the detection head in ORT")
    p.add_argument("--pipeline", action="store_true",
                   help="also time ORT's stages one after another per run (encoder, body, heads), as `ladon infer` "
                        "runs and times Swift's, so each stage starts with the caches the previous one left "
                        "(separate sessions without thread spinning); prints a second ORT column")
    p.add_argument("--isolated", action="store_true",
                   help="also time Swift's stages the way ORT's are timed here, each rerun on its own with warm caches "
                        "(`ladon bench --timing isolated`), and print them as '<stage>, isolated' rows against ORT's")
    p.add_argument("--backbone", choices=pc.BACKBONES, default="resnet50",
                   help="the checkpoints' variant (resnest269e needs the timm <= 1.0.20 venv, Scripts/parity/README.md)")
    return p.parse_args()


class Encoder(nn.Module):
    def __init__(self, rt):
        super().__init__()
        self.encoder = rt.bottleneck.encoder

    def forward(self, x):
        return self.encoder(x)


class ServerBody(nn.Module):
    def __init__(self, rt):
        super().__init__()
        self.decoder, self.cls = rt.bottleneck.decoder, rt.cls

    def forward(self, y_hat):
        z0 = self.decoder(y_hat)
        z1 = self.cls.layer2(z0)
        z2 = self.cls.layer3(z1)
        return z0, z1, z2, self.cls.layer4(z2)


class ClassificationHead(nn.Module):
    def __init__(self, rt):
        super().__init__()
        self.cls = rt.cls

    def forward(self, z3):
        return self.cls.fc(torch.flatten(self.cls.avgpool(z3), 1))


class SegmentationHead(nn.Module):
    def __init__(self, rt, size):
        super().__init__()
        self.classifier, self.size = rt.seg.classifier, size

    def forward(self, z3):
        return F.interpolate(self.classifier(z3), size=self.size, mode="bilinear", align_corners=False)


class DetectionHead(nn.Module):
    def __init__(self, rt, images):
        super().__init__()
        self.det, self.images = rt.det, images

    def forward(self, z0, z1, z2, z3):
        feats = self.det.backbone.fpn(OrderedDict(zip(("1", "2", "3", "4"), (z0, z1, z2, z3))))
        proposals, _ = self.det.rpn(self.images, feats)
        detections, _ = self.det.roi_heads(feats, proposals, self.images.image_sizes)
        d = detections[0]
        return d["boxes"], d["scores"], d["labels"]


def export(module, inputs, path, names):
    torch.onnx.export(module, inputs, path, opset_version=17, dynamo=False, input_names=names)


def session(path, threads, spinning=True):
    o = ort.SessionOptions()
    if not spinning:  # a session's idle threads would otherwise spin on the cores the next stage's session needs
        o.add_session_config_entry("session.intra_op.allow_spinning", "0")
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def time_ms(fn, runs):
    fn()  # warm-up
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def ort_pipeline(sessions, feeds, runs):
    """Each run calls every stage once, in the order `ladon infer` runs them; one warm-up run is dropped."""
    out = {}
    for r in range(runs + 1):
        for name, s in sessions.items():
            t = time.perf_counter()
            s.run(None, feeds[name])
            if r > 0:
                out.setdefault(name, []).append((time.perf_counter() - t) * 1000)
    return out


DEVICE_HALF = ("preprocessMs", "encoderMs", "compressMs")


def swift_timings(args, threads, command, *extra, warmup=1):
    """`ladon COMMAND --json` on --runs + warmup copies of the image: a function summing the given timing keys per
    image, the first `warmup` images dropped."""
    cmd = [args.ladon, command, "--json", "--model", args.model, "--threads", str(threads), *extra] \
        + [args.image] * (args.runs + warmup)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()
    rows = [json.loads(line)["timings"] for line in out][warmup:]
    return lambda *keys: [sum(r[k] for k in keys) for r in rows]


def swift_block(args, threads):
    stage = swift_timings(args, threads, "infer")
    return {"encoder": stage("encoderMs"), "entropy encode": stage("compressMs"),
            "entropy decode": stage("decompressMs"), "server body": stage("decoder+bodyMs"),
            "classification": stage("classificationMs"), "segmentation": stage("segmentationMs"),
            "detection": stage("detectionMs"), "device half": stage(*DEVICE_HALF),
            "server half": stage("decompressMs", "decoder+bodyMs", "classificationMs", "segmentationMs", "detectionMs")}


def swift_device_block(args, threads):
    """The device half as a device runs it: `ladon encode --json`, so, like ORT's encoder here, every run follows
    another encoder run, not the server's stages as in `ladon infer`. Four images are dropped, not one: the process
    is short (the device half loads in milliseconds), and on the Zen 4 host its second to fifth images took 23-36 ms
    against a steady 20.7 (twenty-sixth session), while a device encoding a stream runs in the steady state."""
    with tempfile.TemporaryDirectory(prefix="ladon-encode-") as out_dir:
        stage = swift_timings(args, threads, "encode", "--output-dir", out_dir, warmup=4)
    return {"encoder, device loop": stage("encoderMs"), "device half, device loop": stage(*DEVICE_HALF)}


# `ladon bench --json` stage names → this script's stage names.
BENCH_STAGES = {"preprocess": "preprocess", "encoder": "encoder", "entropyEncode": "entropy encode",
                "entropyDecode": "entropy decode", "decoderBody": "server body", "classificationHead": "classification",
                "segmentationHead": "segmentation", "detectionHead": "detection"}


KERNELS = set()  # the GEMM kernel paths `ladon bench` named (only --isolated runs it)


def swift_isolated_block(args, threads):
    """Swift's stages timed as ORT's are here: `ladon bench --timing isolated` reruns each stage on its own (one
    warm-up, then --runs timed runs) before the next, so its caches are warm. One median per stage and round."""
    cmd = [args.ladon, "bench", "--json", "--timing", "isolated", "--warmup", "1", "--runs", str(args.runs),
           "--model", args.model, "--threads", str(threads), args.image]
    report = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    KERNELS.add(report["settings"].get("gemmKernel") or "unnamed")
    ms = {BENCH_STAGES[s["name"]]: s["medianMs"] for s in report["stages"] if s["name"] in BENCH_STAGES}
    out = {f"{stage}, isolated": [value] for stage, value in ms.items() if stage != "preprocess"}
    out["device half, isolated"] = [ms["preprocess"] + ms["encoder"] + ms["entropy encode"]]
    out["server half, isolated"] = [sum(ms.get(s, 0) for s in ("entropy decode", "server body", "classification",
                                                               "segmentation", "detection"))]
    return out


def host_probe():
    """(GFLOP/s of a one-thread 512-square float32 matmul, GB/s of a 64 MB copy), medians of 15: how much of the machine
    a neighbour leaves us right now."""
    torch.set_num_threads(1)
    a = torch.rand(512, 512)
    b = torch.rand(512, 512)
    src = torch.rand(16 << 20)
    dst = torch.empty_like(src)
    flops = [2 * 512 ** 3 / (t / 1000) / 1e9 for t in time_ms(lambda: torch.mm(a, b), 15)]
    copy = [2 * src.numel() * 4 / (t / 1000) / 1e9 for t in time_ms(lambda: dst.copy_(src), 15)]
    return statistics.median(flops), statistics.median(copy)


def main():
    args = parse_args()
    pc.set_backbone(args.backbone)
    rt, images, x = load_reference(args)
    with torch.no_grad():
        y = rt.bottleneck.encoder(x)
        strings = rt.eb.compress(y)
        y_hat = rt.eb.decompress(strings, y.shape[-2:])
        z = ServerBody(rt)(y_hat)
    tmp = tempfile.mkdtemp(prefix="ladon-ort-")
    paths = {name: os.path.join(tmp, name + ".onnx") for name in
             ("encoder", "server body", "classification", "segmentation", "detection")}
    with torch.no_grad():
        export(Encoder(rt), (x,), paths["encoder"], ["x"])
        export(ServerBody(rt), (y_hat,), paths["server body"], ["y_hat"])
        export(ClassificationHead(rt), (z[3],), paths["classification"], ["z3"])
        export(SegmentationHead(rt, tuple(x.shape[-2:])), (z[3],), paths["segmentation"], ["z3"])
        if not args.skip_detection:
            try:
                export(DetectionHead(rt, images), tuple(z), paths["detection"], ["z0", "z1", "z2", "z3"])
            except Exception as e:  # the detection graph is the fragile one
                print(f"detection head export failed ({type(e).__name__}: {e}); timing ORT without it")
                del paths["detection"]
        if args.skip_detection:
            del paths["detection"]
    feeds = {"encoder": {"x": x.numpy()}, "server body": {"y_hat": y_hat.numpy()},
             "classification": {"z3": z[3].numpy()}, "segmentation": {"z3": z[3].numpy()},
             "detection": {f"z{i}": z[i].numpy() for i in range(4)}}
    results = {}
    probe_before = host_probe()
    for threads in args.threads:
        sessions = {name: session(p, threads) for name, p in paths.items()}
        piped = {name: session(p, threads, spinning=False) for name, p in paths.items()} if args.pipeline else {}
        for _ in range(args.rounds):
            for stage, values in swift_block(args, threads).items():
                results.setdefault(("swift", stage, threads), []).extend(values)
            for stage, values in swift_device_block(args, threads).items():
                results.setdefault(("swift", stage, threads), []).extend(values)
            if args.isolated:
                for stage, values in swift_isolated_block(args, threads).items():
                    results.setdefault(("swift", stage, threads), []).extend(values)
            for name, s in sessions.items():
                results.setdefault(("ort", name, threads), []).extend(
                    time_ms(lambda s=s, f=feeds[name]: s.run(None, f), args.runs))
            if args.pipeline:
                for stage, values in ort_pipeline(piped, feeds, args.runs).items():
                    results.setdefault(("ort pipeline", stage, threads), []).extend(values)
            torch.set_num_threads(threads)
            with torch.no_grad():
                results.setdefault(("torch", "entropy encode", threads), []).extend(time_ms(lambda: rt.eb.compress(y), args.runs))
                results.setdefault(("torch", "entropy decode", threads), []).extend(
                    time_ms(lambda: rt.eb.decompress(strings, y.shape[-2:]), args.runs))
            torch.set_num_threads(1)
    probe_after = host_probe()
    load = os.getloadavg()[0]
    print(f"\nimage {os.path.basename(args.image)}: padded {tuple(x.shape[-2:])}, latent {tuple(y.shape[1:])}, "
          f"{len(strings[0])} bytes; load average {load:.1f}; medians of {args.rounds} rounds x {args.runs} runs (ms)")
    print(f"host probe, 1 thread (before / after): matmul {probe_before[0]:.0f} / {probe_after[0]:.0f} GFLOP/s, "
          f"64 MB copy {probe_before[1]:.1f} / {probe_after[1]:.1f} GB/s")
    print(f"Swift GEMM kernel path: {', '.join(sorted(KERNELS)) if KERNELS else 'not named (add --isolated)'}\n")
    stages = ["encoder", "encoder, device loop", "entropy encode", "entropy decode", "server body", "classification",
              "segmentation", "detection"]
    if args.isolated:
        stages += [f"{s}, isolated" for s in ("encoder", "entropy encode", "entropy decode", "server body",
                                                "classification", "segmentation", "detection")]
    pipe = args.pipeline
    print("| stage | threads | Swift ms | ONNX Runtime ms | ORT / Swift |" + (" ORT in pipeline ms | ratio |" if pipe else "")
          + " Swift / ORT |")
    print("|---|---|---|---|---|" + ("---|---|" if pipe else "") + "---|")
    for stage in stages:
        for threads in args.threads:
            sw = results.get(("swift", stage, threads))
            ort_stage = "encoder" if stage == "encoder, device loop" else stage.removesuffix(", isolated")
            other = results.get(("ort", ort_stage, threads)) or results.get(("torch", ort_stage, threads))
            label = "ONNX Runtime" if ("ort", ort_stage, threads) in results else "CompressAI (torch)"
            if not sw:
                continue
            sm = statistics.median(sw)
            if other:
                om = statistics.median(other)
                row = f"| {stage} | {threads} | {sm:.1f} | {om:.1f}{'' if label == 'ONNX Runtime' else ' (CompressAI)'} | {om / sm:.2f} |"
                piped = results.get(("ort pipeline", stage, threads))  # none for the device-loop and isolated rows
                if pipe:
                    row += f" {statistics.median(piped):.1f} | {statistics.median(piped) / sm:.2f} |" if piped else " – | – |"
                print(row + f" {sm / om:.2f} |")
            else:
                print(f"| {stage} | {threads} | {sm:.1f} | – | – |" + (" – | – |" if pipe else "") + " – |")
    # The halves against what the other side runs for them (CompressAI's coder stands in for the entropy stages).
    halves = {"device half": (["encoder", "entropy encode"], "ORT encoder + CompressAI"),
              "device half, device loop": (["encoder", "entropy encode"], "ORT encoder + CompressAI"),
              "server half": (["entropy decode", "server body", "classification", "segmentation", "detection"],
                              "CompressAI + ORT stages")}
    if args.isolated:
        halves["device half, isolated"] = halves["device half"]
        halves["server half, isolated"] = halves["server half"]
    for half, (parts, label) in halves.items():
        for threads in args.threads:
            sm = statistics.median(results[("swift", half, threads)])
            others = [results.get(("ort", p, threads)) or results.get(("torch", p, threads)) for p in parts]
            if all(others):
                om = sum(statistics.median(o) for o in others)
                print(f"| **{half}** | {threads} | {sm:.1f} | {om:.1f} ({label}) | {om / sm:.2f} |"
                      + (" – | – |" if pipe else "") + f" {sm / om:.2f} |")
            else:
                print(f"| **{half}** | {threads} | {sm:.1f} | – | – |" + (" – | – |" if pipe else "") + " – |")


if __name__ == "__main__":
    main()
