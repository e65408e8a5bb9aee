#!/usr/bin/env python3
"""Times CompressAI's entropy coder on the latent that EntropyPerfTests uses, for a side-by-side comparison.

Run from the repository root with a venv that has torch + compressai (tested: compressai 1.2.8):

    python3 Scripts/compressai_vectors/bench_compressai.py [--runs 41]

It loads the vector model's state (Tests/LadonCoreTests/Fixtures/compressai/eb_state.safetensors), rebuilds the
1x24x103x103 latent exactly as Tests/LadonCoreTests/EntropyPerfTests.swift does (SplitMix64 + Box-Muller in
double, then float32 `z * sigma + median`), checks that CompressAI's bytes have the same size and FNV-1a hash as
the Swift output, and prints medians for:
  * compress / decompress: EntropyBottleneck.compress / .decompress (what sc2bench calls), and
  * raw C++ encode / decode: only RansEncoder.encode_with_indexes / RansDecoder.decode_with_indexes on prepared
    Python lists (pybind11 list<->vector conversion included).
"""

import argparse
import math
import os
import statistics
import time

import numpy as np
import torch
from safetensors.torch import load_file

from compressai import ans
from compressai.entropy_models import EntropyBottleneck

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STATE = os.path.join(ROOT, "Tests", "LadonCoreTests", "Fixtures", "compressai", "eb_state.safetensors")
M64 = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & M64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)


def latent(quantiles, height, width, seed):
    rng = SplitMix64(seed)
    C = quantiles.shape[0]
    x = np.zeros((1, C, height, width), np.float32)
    for c in range(C):
        low, median, high = (np.float32(v) for v in quantiles[c, 0])
        sigma = np.float32((median - low) + (high - median)) / np.float32(40)
        z = np.empty(height * width, np.float64)
        for i in range(height * width):
            u1 = (rng.next() >> 11) * 2.0**-53
            u2 = (rng.next() >> 11) * 2.0**-53
            z[i] = math.sqrt(-2 * math.log(1 - u1)) * math.cos(2 * math.pi * u2)
        x[0, c] = (z.astype(np.float32) * sigma + median).astype(np.float32).reshape(height, width)
    return torch.from_numpy(x)


def fnv1a(data):
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & M64
    return h


def median_time(fn, runs, warmup=3):
    """Median wall time and median thread CPU time (the latter ignores preemption on a busy host)."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=41)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)

    sd = load_file(STATE)
    eb = EntropyBottleneck(sd["quantiles"].shape[0])
    for k in ("_offset", "_quantized_cdf", "_cdf_length"):
        getattr(eb, k).resize_(sd[k].shape)
    eb.load_state_dict(sd)
    eb.eval()

    h = w = 103
    x = latent(sd["quantiles"].numpy(), h, w, 20240601)
    n = x.numel()
    strings = eb.compress(x)
    nbytes = len(strings[0])
    print(f"compressai, latent 1x24x{h}x{w}: {n} symbols -> {nbytes} bytes, "
          f"{8 * nbytes / n:.3f} bits/symbol, fnv1a {fnv1a(strings[0]):016x}")

    sym = torch.round(x - sd["quantiles"][:, 0, 1].view(1, -1, 1, 1)).int()[0].reshape(-1).tolist()
    idx = eb._build_indexes(x.size())[0].reshape(-1).int().tolist()
    cdfs = eb._quantized_cdf.tolist()
    lens = eb._cdf_length.reshape(-1).int().tolist()
    offs = eb._offset.reshape(-1).int().tolist()
    enc, dec = ans.RansEncoder(), ans.RansDecoder()
    assert enc.encode_with_indexes(sym, idx, cdfs, lens, offs) == strings[0]

    def line(label, times):
        seconds, cpu = times
        print(f"{label:<30} {seconds * 1e3:8.3f} ms  {n / seconds / 1e6:7.1f} Msym/s  {nbytes / seconds / 1e6:6.1f} MB/s"
              f"   (CPU time {cpu * 1e3:7.3f} ms, {n / cpu / 1e6:6.1f} Msym/s)")

    line("compress (EntropyBottleneck)", median_time(lambda: eb.compress(x), args.runs))
    line("decompress (EntropyBottleneck)", median_time(lambda: eb.decompress(strings, (h, w)), args.runs))
    line("raw C++ encode", median_time(lambda: enc.encode_with_indexes(sym, idx, cdfs, lens, offs), args.runs))
    line("raw C++ decode", median_time(lambda: dec.decode_with_indexes(strings[0], idx, cdfs, lens, offs), args.runs))
    print(f"(medians of {args.runs} runs, torch threads {args.threads}; MB = 1e6 compressed bytes)")


if __name__ == "__main__":
    main()
