"""Hand-written PNG files for fixtures and parity inputs: what Pillow cannot write (16-bit RGB, RGBA and gray +
alpha, Adam7 interlacing, a chosen row filter per line, extra chunks such as tRNS or gAMA).

Used by Scripts/make_image_fixtures.py and Scripts/parity/make_odd_images.py.
"""
import struct
import zlib

import numpy as np

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def raw_png(width, height, colour_type, bit_depth, rows: bytes, extra=b"", interlace=0) -> bytes:
    """A minimal PNG: signature, IHDR, the `extra` chunks, one IDAT of the filtered `rows`, IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def filtered_rows(array: np.ndarray, depth=16, filters=True, interlaced=False) -> bytes:
    """The scanlines of an [H, W, C] array of 8- or 16-bit (big-endian) samples: with `filters` the row filters
    0..4 in turn (Sub, Up, Average, Paeth all exercised), else filter 0; as one stream or as Adam7's seven passes
    (each pass starts with no row above)."""
    sample = ">u2" if depth == 16 else "u1"

    def paeth(a, b, c):
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))

    def encode(image, first_filter):
        out = []
        bpp = image.shape[2] * depth // 8
        previous = np.zeros(image.shape[1] * bpp, dtype=np.int64)
        for y in range(image.shape[0]):
            row = np.frombuffer(image[y].astype(sample).tobytes(), dtype=np.uint8).astype(np.int64)
            left = np.concatenate([np.zeros(bpp, np.int64), row[:-bpp]])
            upleft = np.concatenate([np.zeros(bpp, np.int64), previous[:-bpp]])
            kind = (first_filter + y) % 5 if filters else 0
            predictors = [np.zeros_like(row), left, previous, (left + previous) // 2, paeth(left, previous, upleft)]
            predictor = predictors[kind]
            out.append(bytes([kind]) + ((row - predictor) % 256).astype(np.uint8).tobytes())
            previous = row
        return b"".join(out)

    if not interlaced:
        return encode(array, 0)
    return b"".join(encode(array[y0::dy, x0::dx], i) for i, (x0, y0, dx, dy) in enumerate(ADAM7)
                    if array[y0::dy, x0::dx].size)


def write_png(path, array, colour_type, depth=16, extra=b"", filters=False, interlaced=False):
    """`raw_png` of an [H, W, C] array, written to `path`."""
    rows = filtered_rows(array, depth=depth, filters=filters, interlaced=interlaced)
    with open(path, "wb") as f:
        f.write(raw_png(array.shape[1], array.shape[0], colour_type, depth, rows, extra=extra,
                        interlace=1 if interlaced else 0))
