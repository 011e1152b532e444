"""A tiny PNG reader for the screenshot test: enough to tell a rendered page from a blank one.

Why not Pillow: it is not a dependency. Chromium writes 8-bit RGB(A), non-interlaced PNGs with adaptive filters;
None/Sub/Up rows are undone with numpy, Average/Paeth rows (sequential by definition) in plain Python.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np


def decode_png(data: bytes) -> np.ndarray:
    """8-bit RGB/RGBA non-interlaced PNG → (h, w, channels) uint8 array."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    pos, idat = 8, []
    w = h = depth = colour = interlace = 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    if depth != 8 or colour not in (2, 6) or interlace:
        raise ValueError("only 8-bit RGB/RGBA, non-interlaced")
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = w * bpp
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int64)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=y * (stride + 1) + 1).astype(np.int64)
        if f == 0:
            cur = line
        elif f == 1:
            cur = np.cumsum(line.reshape(w, bpp), axis=0).reshape(-1) % 256
        elif f == 2:
            cur = (line + prev) % 256
        else:
            cur_b = bytearray(stride)
            p = prev.tolist()
            ln = line.tolist()
            for i in range(stride):
                a = cur_b[i - bpp] if i >= bpp else 0
                b = p[i]
                if f == 3:
                    cur_b[i] = (ln[i] + ((a + b) >> 1)) & 255
                else:
                    c = p[i - bpp] if i >= bpp else 0
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    pr = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    cur_b[i] = (ln[i] + pr) & 255
            cur = np.frombuffer(bytes(cur_b), dtype=np.uint8).astype(np.int64)
        out[y] = cur
        prev = cur
    return out.reshape(h, w, bpp)
