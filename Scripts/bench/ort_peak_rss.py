#!/usr/bin/env python3
"""Peak resident memory of ONNX Runtime running the model's stages once, beside `ladon infer`'s.

    python Scripts/bench/ort_peak_rss.py --model /tmp/ladon-parity/model.safetensors \\
        --classification /tmp/ladon-parity/classification.pt --detection /tmp/ladon-parity/detection.pt \\
        --segmentation /tmp/ladon-parity/segmentation.pt [--image Scripts/parity/images/astronaut.jpg] \\
        [--threads 2] [--ladon .build/release/ladon]

Exports the stages as `compare_ort.py` does (encoder, server body, classification, segmentation, detection), saves
their inputs, then runs them once, in `ladon infer`'s order, in a fresh Python process that imports only numpy and
onnxruntime (no PyTorch, no CompressAI: the entropy coder is left out, which favours ORT), and reports that
process's peak RSS (`ru_maxrss`). `ladon infer` on the same photo is measured with `/usr/bin/time -f %M`.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_ort as co  # noqa: E402

CHILD = r"""
import resource, sys, numpy as np, onnxruntime as ort
tmp, threads = sys.argv[1], int(sys.argv[2])
o = ort.SessionOptions()
o.intra_op_num_threads = threads
o.inter_op_num_threads = 1
o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
for name in ["encoder", "server body", "classification", "segmentation", "detection"]:
    path = f"{tmp}/{name}.onnx"
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    feeds = {i.name: np.load(f"{tmp}/{name}.{i.name}.npy") for i in s.get_inputs()}
    s.run(None, feeds)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    co.add_checkpoint_arguments(p)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--ladon", default=os.path.join(co.ROOT, ".build", "release", "ladon"))
    args = p.parse_args()
    rt, images, x = co.load_reference(args)
    tmp = tempfile.mkdtemp(prefix="ladon-ort-rss-")
    with torch.no_grad():
        y = rt.bottleneck.encoder(x)
        y_hat = rt.eb.decompress(rt.eb.compress(y), y.shape[-2:])
        z = co.ServerBody(rt)(y_hat)
        stages = {"encoder": (co.Encoder(rt), (x,), ["x"]),
                  "server body": (co.ServerBody(rt), (y_hat,), ["y_hat"]),
                  "classification": (co.ClassificationHead(rt), (z[3],), ["z3"]),
                  "segmentation": (co.SegmentationHead(rt, tuple(x.shape[-2:])), (z[3],), ["z3"]),
                  "detection": (co.DetectionHead(rt, images), tuple(z), ["z0", "z1", "z2", "z3"])}
        for name, (module, inputs, names) in stages.items():
            co.export(module, inputs, os.path.join(tmp, name + ".onnx"), names)
            for n, t in zip(names, inputs):
                np.save(os.path.join(tmp, f"{name}.{n}.npy"), t.numpy())
    ort_kb = int(subprocess.run([sys.executable, "-c", CHILD, tmp, str(args.threads)], check=True,
                                capture_output=True, text=True).stdout.strip().splitlines()[-1])
    timed = subprocess.run(["/usr/bin/time", "-f", "%M", args.ladon, "infer", "--model", args.model, "--threads",
                            str(args.threads), args.image], check=True, capture_output=True, text=True)
    ladon_kb = int(timed.stderr.strip().splitlines()[-1])
    print(f"peak RSS, one photo ({os.path.basename(args.image)}), {args.threads} threads:")
    print(f"  ONNX Runtime, 5 stages once (no entropy coder): {ort_kb / 1024:.0f} MB")
    print(f"  ladon infer:                                    {ladon_kb / 1024:.0f} MB "
          f"({ladon_kb / ort_kb:.2f}x ORT's)")


if __name__ == "__main__":
    main()
