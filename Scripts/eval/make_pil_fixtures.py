#!/usr/bin/env python3
"""Makes the fixtures of LadonImage's Pillow/torchvision preprocessing tests (Tests/LadonImageTests/Fixtures/pil).

Run from the repository root with the reference venv (Pillow 13, torchvision, numpy, safetensors):

    /root/.cache/ladon-ref-venv/bin/python Scripts/eval/make_pil_fixtures.py

Every expected value comes from the real packages:
  * `Image.resize((w, h), Image.BILINEAR)` on RGB images: photo crops of Scripts/data and Scripts/parity/images
    (public-domain or CC0 photographs) and seeded random noise at odd sizes, up and down on each axis.
    Where the order of Pillow's two passes matters (Pillow 13 runs the vertical pass first when the height
    shrinks by more than twice as many pixels as the width), the older horizontal-first result is also stored,
    made with the same Pillow as two single-axis resizes (width, then height), which is what that order computes.
  * `transforms.CenterCrop((h, w))(transforms.Resize(s)(img))` from torchvision, crops larger than the image
    included (torchvision pads with zeros).
  * `Image.resize((w, h), Image.NEAREST)` on mode "P" and "L" masks, and on one-row ramps (value = x % 256) of
    many lengths, which give Pillow's source index for each output pixel along an axis.
  * `np.array(Image.open(mask))` for the mask PNGs in masks/, some written by Pillow, some by hand (bit depths
    and chunks Pillow does not write: 1/2/4-bit palette and gray, Adam7 interlacing, tRNS, gAMA, a palette
    shorter than the indices), plus PNGs a mask reader must refuse (RGB, RGBA, LA, 1-bit and 16-bit gray).

Output:
  resize.safetensors  inputs `input/<name>` (uint8 [H, W, 3]); per case `<group>/<case>/output` (uint8
                      [h, w, 3]) or, for outputs over 400 pixels, `<group>/<case>/rowcrc` (int32 [h], the
                      CRC-32 of each output row, as a signed 32-bit integer); metadata "cases" = JSON list of
                      {group, case, input, width, height[, size, cropWidth, cropHeight][, hfirst]}.
                      Groups: "bilinear" (resize to width x height), "shortside" (Resize(size) + CenterCrop).
  nearest.safetensors `ramp/<n>/<m>` (uint8 [m], the 1 x n ramp resized to m x 1) and `column/<n>/<m>` (the
                      n x 1 ramp resized to 1 x m); `mask/<case>/output` or `/rowcrc` for the 2-D cases;
                      `decode/<file>` (uint8 [H, W], what Pillow reads from masks/<file>); metadata "cases"
                      (2-D cases: {case, file, width, height}), "refused" (file names), "ramps" (n list),
                      "rampTargets" (m list), "columns" (n list).
"""
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image
from safetensors.numpy import save_file
from torchvision import transforms as T

OUT = os.path.join("Tests", "LadonImageTests", "Fixtures", "pil")
MASKS = os.path.join(OUT, "masks")
CRC_ABOVE = 400  # output pixels above which only row CRCs are stored

rng = np.random.default_rng(20240610)


def photo(path, box, size=None):
    """An RGB crop (left, top, right, bottom) of a repository photo, optionally downscaled first."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        if size is not None:
            im = im.resize(size, Image.LANCZOS)
        return np.asarray(im.crop(box), dtype=np.uint8)


def image(array, mode):
    """A Pillow image of mode `mode` holding `array` ([H, W] or [H, W, 3] uint8) as it is."""
    return Image.frombytes(mode, (array.shape[1], array.shape[0]), np.ascontiguousarray(array).tobytes())


def noise(width, height):
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def row_crcs(array):
    return np.array([zlib.crc32(array[y].tobytes()) for y in range(array.shape[0])], dtype=np.uint32).view(np.int32)


def store(tensors, key, array):
    """The array itself, or its row CRCs when large."""
    if array.shape[0] * array.shape[1] > CRC_ABOVE:
        tensors[f"{key}/rowcrc"] = row_crcs(array)
    else:
        tensors[f"{key}/output"] = np.ascontiguousarray(array)


# ---------------------------------------------------------------------------------------------------------------
# Bilinear resize and Resize + CenterCrop

def make_resize():
    inputs = {
        "noise_1x1": noise(1, 1),
        "noise_1x7": noise(1, 7),
        "noise_7x1": noise(7, 1),
        "noise_13x5": noise(13, 5),
        "noise_37x29": noise(37, 29),
        "noise_9x200": noise(9, 200),
        "noise_200x3": noise(200, 3),
        "noise_6x6": noise(6, 6),
        "chelsea_60x45": photo("Scripts/data/chelsea_small.png", (50, 30, 110, 75)),
        "coffee_45x60": photo("Scripts/data/coffee_small.png", (60, 20, 105, 80)),
        "astronaut_64x48": photo("Scripts/parity/images/astronaut.jpg", (30, 16, 94, 64), (128, 128)),
        "rocket_48x64": photo("Scripts/parity/images/rocket.jpg", (60, 10, 108, 74), (160, 107)),
    }
    bilinear = [  # (input, width, height)
        ("noise_1x1", 5, 3), ("noise_1x1", 1, 4), ("noise_1x1", 3, 1),
        ("noise_1x7", 3, 2), ("noise_1x7", 1, 20), ("noise_1x7", 2, 7), ("noise_1x7", 1, 3),
        ("noise_7x1", 2, 5), ("noise_7x1", 20, 1),
        ("noise_13x5", 7, 3), ("noise_13x5", 26, 11), ("noise_13x5", 13, 9), ("noise_13x5", 4, 5),
        ("noise_13x5", 1, 1), ("noise_13x5", 5, 13), ("noise_13x5", 13, 2),
        ("noise_37x29", 16, 16), ("noise_37x29", 50, 41), ("noise_37x29", 36, 30), ("noise_37x29", 18, 58),
        ("noise_37x29", 5, 2), ("noise_37x29", 37, 28), ("noise_37x29", 12, 29), ("noise_37x29", 36, 20),
        ("noise_9x200", 8, 20), ("noise_9x200", 12, 50), ("noise_9x200", 3, 199), ("noise_9x200", 9, 7),
        ("noise_200x3", 1, 1), ("noise_200x3", 17, 2), ("noise_200x3", 416, 416),
        ("chelsea_60x45", 416, 416), ("chelsea_60x45", 24, 18), ("chelsea_60x45", 45, 60),
        ("chelsea_60x45", 52, 52), ("coffee_45x60", 52, 52), ("coffee_45x60", 416, 416), ("coffee_45x60", 30, 30),
        ("astronaut_64x48", 19, 14), ("astronaut_64x48", 7, 5), ("astronaut_64x48", 61, 39),
        ("astronaut_64x48", 63, 20), ("rocket_48x64", 40, 27), ("rocket_48x64", 13, 20), ("rocket_48x64", 3, 3),
    ]
    shortside = [  # (input, size, crop width, crop height)
        ("chelsea_60x45", 24, 20, 20), ("coffee_45x60", 24, 20, 20), ("noise_37x29", 17, 16, 16),
        ("noise_37x29", 29, 20, 31), ("noise_13x5", 8, 25, 12), ("noise_1x7", 3, 5, 5),
        ("noise_6x6", 9, 9, 9), ("chelsea_60x45", 24, 19, 21), ("noise_200x3", 4, 30, 4),
        ("astronaut_64x48", 448, 416, 416), ("rocket_48x64", 448, 416, 416), ("noise_9x200", 6, 7, 9),
    ]
    tensors = {f"input/{name}": array for name, array in inputs.items()}
    cases = []
    for name, w, h in bilinear:
        im = image(inputs[name], "RGB")
        key = f"bilinear/{name}_to_{w}x{h}"
        store(tensors, key, np.asarray(im.resize((w, h), Image.BILINEAR)))
        case = {"group": "bilinear", "case": key, "input": name, "width": w, "height": h}
        legacy = np.asarray(im.resize((w, im.height), Image.BILINEAR).resize((w, h), Image.BILINEAR))
        if not np.array_equal(legacy, np.asarray(im.resize((w, h), Image.BILINEAR))):
            store(tensors, f"{key}/hfirst", legacy)
            case["hfirst"] = True
        cases.append(case)
    for name, size, cw, ch in shortside:
        im = image(inputs[name], "RGB")
        resized = T.Resize(size)(im)
        out = np.asarray(T.CenterCrop((ch, cw))(resized))
        key = f"shortside/{name}_resize{size}_crop{cw}x{ch}"
        store(tensors, key, out)
        cases.append({"group": "shortside", "case": key, "input": name, "size": size,
                      "cropWidth": cw, "cropHeight": ch, "width": resized.width, "height": resized.height})
    save_file(tensors, os.path.join(OUT, "resize.safetensors"), metadata={"cases": json.dumps(cases)})
    return len(cases)


# ---------------------------------------------------------------------------------------------------------------
# Masks: PNG files and nearest resizing

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_rows(values, depth):
    """Scanlines (filter 0) of an [H, W] array of `depth`-bit samples (depth <= 8) or 16-bit samples."""
    rows = []
    for row in values:
        if depth == 16:
            data = row.astype(">u2").tobytes()
        elif depth == 8:
            data = row.astype(np.uint8).tobytes()
        else:
            per = 8 // depth
            padded = np.zeros(-(-len(row) // per) * per, dtype=np.int64)
            padded[:len(row)] = row
            data = bytes(int(sum(int(v) << (8 - depth * (i + 1)) for i, v in enumerate(group)))
                         for group in padded.reshape(-1, per))
        rows.append(b"\x00" + data)
    return b"".join(rows)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def raw_png(values, colour_type, depth, extra=b"", interlaced=False, channels=1):
    """A PNG written by hand: `values` is [H, W] (or [H, W, C] for RGB/RGBA/LA, 8-bit)."""
    h, w = values.shape[:2]
    if interlaced:
        data = b""
        for x0, y0, dx, dy in ADAM7:
            sub = values[y0::dy, x0::dx]
            if sub.size:
                data += pack_rows(sub.reshape(sub.shape[0], -1), depth)
    else:
        data = pack_rows(values.reshape(h, -1), depth)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour_type, 0, 0, 1 if interlaced else 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(data, 9))
            + chunk(b"IEND", b""))


def voc_palette():
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return bytes(palette)


def voc_mask(width, height, classes):
    """Background 0, a few shapes with class ids 1...20, each outlined with the 255 'ignore' border."""
    mask = np.zeros((height, width), dtype=np.uint8)
    yy, xx = np.mgrid[0:height, 0:width]
    for k in range(classes):
        cls = int(rng.integers(1, 21))
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        rx, ry = rng.uniform(2, width / 2.5), rng.uniform(2, height / 2.5)
        inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
        border = (((xx - cx) / (rx + 1.2)) ** 2 + ((yy - cy) / (ry + 1.2)) ** 2 <= 1) & ~inside
        mask[border] = 255
        mask[inside] = cls
    return mask


def make_masks():
    os.makedirs(MASKS, exist_ok=True)
    files = {}

    def pillow_p(name, values):
        im = image(values, "P")
        im.putpalette(voc_palette())
        im.save(os.path.join(MASKS, name))
        files[name] = True

    def hand(name, data):
        with open(os.path.join(MASKS, name), "wb") as f:
            f.write(data)
        files[name] = True

    plte = chunk(b"PLTE", voc_palette())
    voc = voc_mask(37, 29, 4)
    pillow_p("voc_p8.png", voc)
    pillow_p("voc_p8_1x1.png", np.array([[255]], dtype=np.uint8))
    hand("voc_p8_interlaced.png", raw_png(voc, 3, 8, plte, interlaced=True))
    hand("p8_trns.png", raw_png(voc_mask(11, 9, 2), 3, 8, plte + chunk(b"tRNS", bytes([0, 128] + [255] * 20))))
    short = rng.integers(0, 256, size=(6, 9), dtype=np.uint8)
    short[0, :] = 255
    hand("p8_short_palette.png", raw_png(short, 3, 8, chunk(b"PLTE", voc_palette()[:30])))
    for depth in (1, 2, 4):
        values = rng.integers(0, 1 << depth, size=(7, 11), dtype=np.uint8)
        hand(f"p{depth}.png", raw_png(values, 3, depth, chunk(b"PLTE", voc_palette()[:3 << depth])))
    hand("p4_interlaced.png",
         raw_png(rng.integers(0, 16, size=(10, 13), dtype=np.uint8), 3, 4, chunk(b"PLTE", voc_palette()[:48]),
                 interlaced=True))
    gray = voc_mask(20, 41, 3)
    image(gray, "L").save(os.path.join(MASKS, "l8.png"))
    files["l8.png"] = True
    hand("l8_gamma.png", raw_png(gray, 0, 8, chunk(b"gAMA", struct.pack(">I", 100000))
                                 + chunk(b"sRGB", b"\x00")))
    hand("l8_trns.png", raw_png(gray, 0, 8, chunk(b"tRNS", struct.pack(">H", 255))))
    for depth in (2, 4):
        hand(f"l{depth}.png", raw_png(rng.integers(0, 1 << depth, size=(5, 9), dtype=np.uint8), 0, depth))
    hand("l4_trns_interlaced.png", raw_png(rng.integers(0, 16, size=(9, 6), dtype=np.uint8), 0, 4,
                                           chunk(b"tRNS", struct.pack(">H", 3)), interlaced=True))
    refused = {
        "refuse_rgb.png": raw_png(rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8), 2, 8),
        "refuse_rgba.png": raw_png(rng.integers(0, 256, size=(4, 5, 4), dtype=np.uint8), 6, 8),
        "refuse_la.png": raw_png(rng.integers(0, 256, size=(4, 5, 2), dtype=np.uint8), 4, 8),
        "refuse_l1.png": raw_png(rng.integers(0, 2, size=(4, 5), dtype=np.uint8), 0, 1),
        "refuse_l16.png": raw_png(rng.integers(0, 65536, size=(4, 5), dtype=np.uint16), 0, 16),
    }
    for name, data in refused.items():
        with open(os.path.join(MASKS, name), "wb") as f:
            f.write(data)

    tensors = {}
    for name in files:
        with Image.open(os.path.join(MASKS, name)) as im:
            assert im.mode in ("P", "L"), (name, im.mode)
            tensors[f"decode/{name}"] = np.ascontiguousarray(np.asarray(im, dtype=np.uint8))
    for name in refused:
        with Image.open(os.path.join(MASKS, name)) as im:
            assert im.mode not in ("P", "L"), (name, im.mode)

    cases = []
    for name, w, h in [("voc_p8.png", 416, 416), ("voc_p8.png", 13, 7), ("voc_p8.png", 100, 3),
                       ("voc_p8.png", 37, 29), ("voc_p8.png", 74, 58), ("voc_p8.png", 36, 30),
                       ("voc_p8_1x1.png", 7, 5), ("l8.png", 20, 41), ("l8.png", 41, 20), ("l8.png", 7, 64),
                       ("p4.png", 9, 6), ("p8_short_palette.png", 18, 12)]:
        with Image.open(os.path.join(MASKS, name)) as im:
            out = np.asarray(im.resize((w, h), Image.NEAREST), dtype=np.uint8)
        key = f"mask/{name}_to_{w}x{h}"
        store(tensors, key, out.reshape(h, w))
        cases.append({"case": key, "file": name, "width": w, "height": h})

    ramps = list(range(1, 33)) + [128, 192, 256, 281, 320, 333, 375, 384, 448, 500]
    targets = [1, 2, 3, 5, 7, 13, 31, 100, 416]
    for n in ramps:
        row = image((np.arange(n) % 256).astype(np.uint8).reshape(1, n), "L")
        tensors[f"ramp/{n}"] = np.concatenate(
            [np.asarray(row.resize((m, 1), Image.NEAREST), dtype=np.uint8).reshape(m) for m in targets])
    columns = [1, 2, 7, 256, 375]
    for n in columns:
        col = image((np.arange(n) % 256).astype(np.uint8).reshape(n, 1), "P")
        tensors[f"column/{n}"] = np.concatenate(
            [np.asarray(col.resize((1, m), Image.NEAREST), dtype=np.uint8).reshape(m) for m in targets])
    metadata = {"cases": json.dumps(cases), "refused": json.dumps(sorted(refused)), "ramps": json.dumps(ramps),
                "rampTargets": json.dumps(targets), "columns": json.dumps(columns)}
    save_file(tensors, os.path.join(OUT, "nearest.safetensors"), metadata=metadata)
    return len(files), len(refused), len(cases)


def main():
    if len(sys.argv) != 1:
        sys.exit(__doc__)
    os.makedirs(OUT, exist_ok=True)
    resize_cases = make_resize()
    decoded, refused, mask_cases = make_masks()
    total = sum(os.path.getsize(os.path.join(root, f)) for root, _, names in os.walk(OUT) for f in names)
    print(f"{resize_cases} resize cases, {decoded} mask PNGs (+{refused} refused), {mask_cases} 2-D nearest cases; "
          f"{OUT}: {total} bytes (Pillow {Image.__version__})")


if __name__ == "__main__":
    main()
