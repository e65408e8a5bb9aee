#!/usr/bin/env python3
"""Where ONNX Runtime spends the server body's (or the detection head's) time, node by node, to set beside
`BodyBatchPerfTests/bodyLayerTimings` (Swift's per-layer figures on the same weights).

    /root/.cache/ladon-ref-venv/bin/python Scripts/bench/ort_layer_profile.py \\
        --classification /tmp/ladon-parity/classification.pt --detection /tmp/ladon-parity/detection.pt \\
        --segmentation /tmp/ladon-parity/segmentation.pt [--stage encoder|body|detection] [--threads 2] [--runs 10]

Runs the exported stage (the same export as compare_ort.py) with ORT's profiler on, and prints each node's median
kernel time over the runs (after one warm-up), in graph order, with the op type and output shape, then the total.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import compare_ort as co  # noqa: E402
import onnxruntime as ort  # noqa: E402
import torch  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    co.add_checkpoint_arguments(p)
    p.add_argument("--backbone", default="resnet50")
    p.add_argument("--stage", choices=("encoder", "body", "detection"), default="body")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=10)
    args = p.parse_args()
    co.pc.set_backbone(args.backbone)
    rt, images, x = co.load_reference(args)
    tmp = tempfile.mkdtemp(prefix="ladon-ort-profile-")
    path = os.path.join(tmp, args.stage + ".onnx")
    with torch.no_grad():
        y_hat = rt.eb.decompress(rt.eb.compress(rt.bottleneck.encoder(x)), rt.bottleneck.encoder(x).shape[-2:])
        z = co.ServerBody(rt)(y_hat)
        if args.stage == "encoder":
            co.export(co.Encoder(rt), (x,), path, ["x"])
            feeds = {"x": x.numpy()}
        elif args.stage == "body":
            co.export(co.ServerBody(rt), (y_hat,), path, ["y_hat"])
            feeds = {"y_hat": y_hat.numpy()}
        else:
            co.export(co.DetectionHead(rt, images), tuple(z), path, ["z0", "z1", "z2", "z3"])
            feeds = {f"z{i}": z[i].numpy() for i in range(4)}
    o = ort.SessionOptions()
    o.intra_op_num_threads = args.threads
    o.inter_op_num_threads = 1
    o.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    o.enable_profiling = True
    o.profile_file_prefix = os.path.join(tmp, "profile")
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    for _ in range(args.runs + 1):
        s.run(None, feeds)
    events = json.load(open(s.end_profiling()))
    nodes, order = {}, []
    runs = [e for e in events if e.get("name") == "model_run"]
    first_run_end = runs[0]["ts"] + runs[0]["dur"] if runs else 0
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < first_run_end:
            continue
        name = e["name"][: -len("_kernel_time")]
        if name not in nodes:
            order.append(name)
            nodes[name] = {"op": e["args"].get("op_name", "?"),
                           "shape": e["args"].get("output_type_shape", ""), "us": []}
        nodes[name]["us"].append(e["dur"])
    total = 0.0
    print(f"ORT {ort.__version__}, {args.stage}, {args.threads} threads, median of {args.runs} runs")
    print("| node | op | output | ms |")
    print("|---|---|---|---|")
    for name in order:
        ms = statistics.median(nodes[name]["us"]) / 1000
        total += ms
        shape = json.dumps(nodes[name]["shape"])[:60]
        print(f"| {name} | {nodes[name]['op']} | {shape} | {ms:.2f} |")
    print(f"| total (sum of node medians) | | | {total:.1f} |")
    if runs:
        print(f"model_run median {statistics.median(r['dur'] for r in runs[1:]) / 1000:.1f} ms")


if __name__ == "__main__":
    main()
