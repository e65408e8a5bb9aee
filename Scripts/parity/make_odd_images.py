#!/usr/bin/env python3
"""Writes photos in every unusual encoding and shape the decoders and the resize must match Pillow on.

    /root/.cache/ladon-ref-venv/bin/python Scripts/parity/make_odd_images.py /tmp/ladon-odd-images
    Scripts/parity/run_parity.sh --no-timings --images /tmp/ladon-odd-images --out /tmp/ladon-parity-odd

From the parity photos in Scripts/parity/images: JPEG grayscale, CMYK, progressive, RGB-coded, arithmetic-coded, and
chroma sampling 4:4:0, 4:1:1, 4:1:0, 3:1:1 and mixed per component (the last three are beyond what TurboJPEG 2.1 names;
LadonImage decodes them through libjpeg); PNG RGBA, palette, interlaced with every row filter, 16-bit gray (Pillow
clips it to 255), 16-bit gray and RGB with a tRNS key color, 16-bit gray + alpha and RGBA with every row filter and
Adam7; and shapes: 1x1, 2x3, 41x29, 1700x95, 33x900, 4032x3024. PNGs Pillow cannot write come from
Scripts/pngwriter.py. The reference side reads each file with Pillow's
`Image.open(f).convert("RGB")`, as the PyTorch pipeline does. Needs `cjpeg` (Debian: libjpeg-turbo-progs).
"""
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from pngwriter import chunk, write_png  # noqa: E402  (Scripts/pngwriter.py)
PHOTOS = os.path.join(HERE, "images")


def cjpeg(out, image, *options):
    with tempfile.NamedTemporaryFile(suffix=".ppm" if image.mode == "RGB" else ".pgm") as source:
        image.save(source.name)
        with open(out, "wb") as f:
            f.write(subprocess.run(["cjpeg", *options, source.name], check=True, capture_output=True).stdout)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    path = lambda name: os.path.join(out, name)  # noqa: E731
    rocket = Image.open(os.path.join(PHOTOS, "rocket.jpg")).convert("RGB")
    hopper = Image.open(os.path.join(PHOTOS, "grace_hopper.jpg")).convert("RGB")
    chelsea = Image.open(os.path.join(PHOTOS, "chelsea.png")).convert("RGB")
    dog = Image.open(os.path.join(PHOTOS, "hot_dog.jpg")).convert("RGB")

    # JPEG encodings.
    hopper.convert("L").save(path("jpeg_gray.jpg"), quality=90)
    rocket.convert("CMYK").save(path("jpeg_cmyk.jpg"), quality=90)
    dog.save(path("jpeg_progressive.jpg"), quality=85, progressive=True)
    cjpeg(path("jpeg_rgb_coded.jpg"), chelsea, "-rgb", "-quality", "90")
    cjpeg(path("jpeg_arithmetic_gray_progressive.jpg"), hopper.convert("L"), "-arithmetic", "-progressive")
    for name, sampling in [("440", "1x2"), ("411", "4x1"), ("410", "4x2"), ("311", "3x1"), ("mixed", "1x1,2x2,1x2")]:
        cjpeg(path(f"jpeg_sampling_{name}.jpg"), rocket, "-sample", sampling, "-quality", "90")

    # PNG color types and 16-bit variants.
    rgba = dog.convert("RGBA")
    a = np.array(rgba)
    a[..., 3] = np.linspace(0, 255, a.shape[1]).astype(np.uint8)[None, :]
    Image.fromarray(a).save(path("png_rgba.png"))
    chelsea.convert("P", palette=Image.ADAPTIVE, colors=64).save(path("png_palette.png"))
    write_png(path("png_interlaced_filters.png"), np.asarray(chelsea), 2, depth=8, filters=True, interlaced=True)
    rng = np.random.default_rng(0)
    rgb = np.asarray(rocket, dtype=np.int64)
    wide = rgb * 257 + rng.integers(0, 257, rgb.shape)             # every low byte, so rounding would show
    gray = np.asarray(hopper.convert("L"), dtype=np.int64)[..., None]
    write_png(path("png16_gray_clipped.png"), gray * 2, 0)              # 0..510: Pillow turns half of it white
    write_png(path("png16_gray_trns.png"), gray * 2, 0,
              extra=chunk(b"tRNS", struct.pack(">H", int(gray[5, 5, 0] * 2))))
    write_png(path("png16_rgb_trns.png"), wide, 2, extra=chunk(b"tRNS", struct.pack(">3H", *map(int, wide[7, 9]))))
    alpha = rng.integers(0, 65536, rgb.shape[:2] + (1,))
    write_png(path("png16_rgba_filters.png"), np.concatenate([wide, alpha], 2), 6, filters=True)
    write_png(path("png16_gray_alpha_adam7.png"), np.concatenate([wide[..., :1], alpha], 2), 4, filters=True,
              interlaced=True)

    # Shapes: the resize to 416 from far below and far above, and extreme aspect ratios.
    Image.fromarray(np.array([[[200, 30, 90]]], dtype=np.uint8)).save(path("shape_1x1.png"))
    rocket.resize((2, 3), Image.BILINEAR).save(path("shape_2x3.png"))
    dog.resize((41, 29), Image.BILINEAR).save(path("shape_41x29.png"))
    rocket.resize((1700, 95), Image.BILINEAR).save(path("shape_1700x95.jpg"), quality=92)
    chelsea.resize((33, 900), Image.BILINEAR).save(path("shape_33x900.png"))
    dog.resize((4032, 3024), Image.BICUBIC).save(path("shape_4032x3024.jpg"), quality=88)
    for name in sorted(os.listdir(out)):
        with Image.open(path(name)) as im:
            print(f"{name}: {im.size[0]}x{im.size[1]} {im.mode}")


if __name__ == "__main__":
    main()
