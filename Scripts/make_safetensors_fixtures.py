#!/usr/bin/env python3
"""Makes Tests/LadonCoreTests/Fixtures/python_dtypes.safetensors with the real `safetensors` library.

Run from the repository root with the reference venv:

    /root/.cache/ladon-ref-venv/bin/python Scripts/make_safetensors_fixtures.py

Each floating tensor `x` (F16, BF16, F64) comes with `x.as_f32`, torch's own `.float()` conversion, so the
Swift reader's conversions are checked against PyTorch; integer tensors hold values the tests spell out.
"""
import os

import torch
from safetensors.torch import save_file

OUT = os.path.join("Tests", "LadonCoreTests", "Fixtures", "python_dtypes.safetensors")

SPECIAL = [0.0, -0.0, 1.0, -2.5, 0.1, 1e-3, 65504.0, 6.1e-5, 5.96e-8, 3.0e-6, float("inf"), float("-inf"),
           float("nan"), 1e30, -7.25, 1234.5678]


def main():
    f16 = torch.tensor(SPECIAL, dtype=torch.float16)          # 65504 = max, 6.1e-5 ~ min normal, subnormals
    bf16 = torch.tensor(SPECIAL, dtype=torch.bfloat16)
    f64 = torch.tensor(SPECIAL, dtype=torch.float64)
    f32 = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) / 8 - 1
    tensors = {
        "float32": f32,
        "float16": f16.reshape(4, 4),
        "float16.as_f32": f16.float().reshape(4, 4),
        "bfloat16": bf16.reshape(2, 8),
        "bfloat16.as_f32": bf16.float().reshape(2, 8),
        "float64": f64,
        "float64.as_f32": f64.float(),
        "int32": torch.tensor([[0, 1, -1], [2147483647, -2147483648, 42]], dtype=torch.int32),
        "int64": torch.tensor([0, -1, 2**40 + 3, -(2**53), 7], dtype=torch.int64),
        "uint8": torch.tensor([0, 1, 128, 255], dtype=torch.uint8),
        "int8": torch.tensor([-128, -1, 0, 127], dtype=torch.int8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.5),
        "empty": torch.zeros(0, 3),
        "nested.module.weight": torch.ones(2, 2),
    }
    save_file(tensors, OUT, metadata={"format": "pt", "generator": "Scripts/make_safetensors_fixtures.py"})
    print(OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
