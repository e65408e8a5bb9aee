#!/usr/bin/env python3
"""Makes the LadonImage test fixtures: small JPEG/PNG files and their expected decoded pixels.

Run from the repository root with the reference venv (Pillow, numpy, safetensors, torch, torchvision):

    /root/.cache/ladon-ref-venv/bin/python Scripts/make_image_fixtures.py /path/to/test/photographs

The photographs (rocket.jpg, chelsea.png, grace_hopper.jpg, coffee.png, astronaut.png; licences in
Tests/LadonImageTests/Fixtures/ATTRIBUTION.md) are downscaled with Pillow and re-encoded. Expected pixels:
  * PNG: Pillow's `Image.open(f).convert("RGB")` (the reference pipeline), 16-bit grayscale included (Pillow
    clips it to 255, and so does LadonImage).
  * JPEG: both Pillow's decode (it bundles libjpeg-turbo 3.x) and `djpeg -dct int -ppm` from the system
    libjpeg-turbo (the library LadonImage links); the script prints whether they agree. `cjpeg` and `djpeg` come
    with Debian's libjpeg-turbo-progs.
Everything goes to Tests/LadonImageTests/Fixtures/; expected pixels are uint8 [H, W, 3] tensors in
expected.safetensors under the fixture's file name, JPEG djpeg results under "djpeg/<name>".
"""
import io
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image
from safetensors.numpy import save_file
from torchvision.transforms.functional import to_tensor

from pngwriter import chunk, filtered_rows, raw_png

OUT = os.path.join("Tests", "LadonImageTests", "Fixtures")


def rows16(array: np.ndarray) -> bytes:
    """Filter-type-0 scanlines of a big-endian 16-bit [H, W, C] array."""
    return filtered_rows(array, depth=16, filters=False)


def filtered_rows16(array: np.ndarray, interlaced=False) -> bytes:
    """Every row filter in turn (`pngwriter.filtered_rows`), 16-bit."""
    return filtered_rows(array, depth=16, filters=True, interlaced=interlaced)


def pil_rgb(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def djpeg_rgb(path):
    ppm = subprocess.run(["djpeg", "-dct", "int", "-pnm", path], check=True, capture_output=True).stdout
    im = Image.open(io.BytesIO(ppm))
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    src = sys.argv[1]
    os.makedirs(OUT, exist_ok=True)
    expected = {}
    written = []

    def save(name, im, **kw):
        path = os.path.join(OUT, name)
        im.save(path, **kw)
        written.append(name)
        return path

    # JPEGs: baseline 4:2:0 at an odd size, progressive, grayscale, 4:4:4, CMYK (Adobe, inverted).
    rocket = Image.open(os.path.join(src, "rocket.jpg")).convert("RGB").resize((63, 41), Image.LANCZOS)
    save("rocket_420.jpg", rocket, quality=90)
    chelsea = Image.open(os.path.join(src, "chelsea.png")).convert("RGB").resize((60, 40), Image.LANCZOS)
    save("chelsea_progressive.jpg", chelsea, quality=85, progressive=True)
    save("chelsea_444.jpg", chelsea, quality=95, subsampling=0)
    hopper = Image.open(os.path.join(src, "grace_hopper.jpg")).convert("L").resize((40, 47), Image.LANCZOS)
    save("hopper_gray.jpg", hopper, quality=90)
    coffee = Image.open(os.path.join(src, "coffee.png")).convert("RGB").resize((48, 32), Image.LANCZOS)
    save("coffee_cmyk.jpg", coffee.convert("CMYK"), quality=92)
    # 4:1:0 chroma (luma sampled 4x2), which TurboJPEG 2.1 cannot name: written by the system's cjpeg.
    with tempfile.NamedTemporaryFile(suffix=".ppm") as ppm:
        rocket.save(ppm.name)
        with open(os.path.join(OUT, "rocket_410.jpg"), "wb") as f:
            f.write(subprocess.run(["cjpeg", "-sample", "4x2", "-quality", "90", ppm.name], check=True,
                                   capture_output=True).stdout)
    written.append("rocket_410.jpg")

    # PNGs in every colour type Pillow writes, plus hand-written 16-bit ones and one with a gAMA chunk.
    astro = Image.open(os.path.join(src, "astronaut.png")).convert("RGB").resize((32, 32), Image.LANCZOS)
    a = np.asarray(astro)
    save("astronaut_rgb.png", astro)
    save("astronaut_gray.png", astro.convert("L"))
    save("astronaut_bilevel.png", astro.convert("1"))
    alpha = Image.fromarray((np.add.outer(np.arange(32), np.arange(32)) * 4).clip(0, 255).astype(np.uint8))
    rgba = astro.copy()
    rgba.putalpha(alpha)                       # alpha 0..248, including fully transparent pixels
    save("astronaut_rgba.png", rgba)
    la = astro.convert("L")
    la.putalpha(alpha)
    save("astronaut_gray_alpha.png", la)
    save("astronaut_palette.png", astro.quantize(colors=16))
    pal = astro.quantize(colors=16)
    pal.info["transparency"] = 3               # tRNS: palette entry 3 transparent (Pillow drops it in RGB)
    save("astronaut_palette_trns.png", pal, transparency=3)
    gamma = raw_png(32, 32, 2, 8, b"".join(b"\x00" + a[y].tobytes() for y in range(32)),
                    extra=chunk(b"gAMA", struct.pack(">I", 100000)))   # gamma 1.0: libpng would re-encode
    with open(os.path.join(OUT, "astronaut_gamma.png"), "wb") as f:
        f.write(gamma)
    written.append("astronaut_gamma.png")

    wide = (a.astype(np.uint32) * 257 + np.arange(32 * 32 * 3).reshape(32, 32, 3) % 251).clip(0, 65535)
    with open(os.path.join(OUT, "astronaut_rgb16.png"), "wb") as f:
        f.write(raw_png(32, 32, 2, 16, rows16(wide)))
    rgba16 = np.concatenate([wide, np.asarray(alpha, dtype=np.uint32)[..., None] * 257], axis=2)
    with open(os.path.join(OUT, "astronaut_rgba16.png"), "wb") as f:
        f.write(raw_png(32, 32, 6, 16, rows16(rgba16)))
    # Pillow clips 16-bit gray to 255: half the pixels (a checkerboard) get values below 256, the rest stay wide.
    checker = (np.add.outer(np.arange(32), np.arange(32)) % 2 == 0)[..., None]
    gray16 = np.where(checker, wide[..., 1:2], wide[..., 1:2] >> 8)
    # 16-bit with an alpha channel (Pillow keeps the high bytes; libpng alone would round): every row filter, and
    # Adam7 interlacing at an odd size so that some passes are short or empty.
    alpha16 = (np.asarray(alpha, dtype=np.uint32)[..., None] * 257 + 128).clip(0, 65535)
    with open(os.path.join(OUT, "astronaut_rgba16_filters.png"), "wb") as f:
        f.write(raw_png(32, 32, 6, 16, filtered_rows16(rgba16)))
    with open(os.path.join(OUT, "astronaut_gray_alpha16_adam7.png"), "wb") as f:
        la16 = np.concatenate([wide[:13, :11, 1:2], alpha16[:13, :11]], axis=2)
        f.write(raw_png(11, 13, 4, 16, filtered_rows16(la16, interlaced=True), interlace=1))
    with open(os.path.join(OUT, "astronaut_rgba16_adam7.png"), "wb") as f:
        f.write(raw_png(32, 32, 6, 16, filtered_rows16(rgba16, interlaced=True), interlace=1))
    written += ["astronaut_rgba16_filters.png", "astronaut_gray_alpha16_adam7.png", "astronaut_rgba16_adam7.png"]
    with open(os.path.join(OUT, "astronaut_gray16.png"), "wb") as f:
        f.write(raw_png(32, 32, 0, 16, rows16(gray16)))
    # tRNS key colors that occur in the image: those pixels count as transparent (libpng reports alpha).
    with open(os.path.join(OUT, "astronaut_gray16_trns.png"), "wb") as f:
        f.write(raw_png(32, 32, 0, 16, rows16(gray16), extra=chunk(b"tRNS", struct.pack(">H", int(gray16[5, 7, 0])))))
    with open(os.path.join(OUT, "astronaut_rgb16_trns.png"), "wb") as f:
        f.write(raw_png(32, 32, 2, 16, rows16(wide), extra=chunk(b"tRNS", struct.pack(">3H", *map(int, wide[9, 4])))))
    written += ["astronaut_rgb16.png", "astronaut_rgba16.png", "astronaut_gray16.png", "astronaut_gray16_trns.png",
                "astronaut_rgb16_trns.png"]

    # Unsupported formats and a PNG whose header declares 50000 x 50000 pixels (the data is one row).
    save("tiny.gif", rocket.resize((8, 6)))
    save("tiny.bmp", rocket.resize((8, 6)))
    with open(os.path.join(OUT, "huge_dimensions.png"), "wb") as f:
        f.write(raw_png(50000, 50000, 0, 8, b"\x00" * 50001))
    written += ["huge_dimensions.png"]

    for name in written:
        path = os.path.join(OUT, name)
        if name.endswith(".jpg"):
            pil = pil_rgb(path)
            dj = djpeg_rgb(path)
            diff = int(np.abs(pil.astype(int) - dj.astype(int)).max())
            print(f"{name}: Pillow vs djpeg max |diff| = {diff}")
            expected[name] = pil
            expected["djpeg/" + name] = dj
        elif name.endswith(".png") and name != "huge_dimensions.png":
            expected[name] = pil_rgb(path)

    # torchvision's to_tensor of one decoded image, for RGBImage.toTensor().
    tensors = {k: np.ascontiguousarray(v) for k, v in expected.items()}
    tensors["to_tensor/astronaut_rgb.png"] = to_tensor(Image.open(os.path.join(OUT, "astronaut_rgb.png")).convert("RGB")).unsqueeze(0).numpy()
    save_file(tensors, os.path.join(OUT, "expected.safetensors"),
              metadata={"generator": "Scripts/make_image_fixtures.py", "pillow": Image.__version__,
                        "torch": torch.__version__})
    for name in sorted(written):
        print(name, os.path.getsize(os.path.join(OUT, name)))


if __name__ == "__main__":
    main()
