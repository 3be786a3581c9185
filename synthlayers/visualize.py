"""Deprecated: use `synthlayers.plot` (matplotlib figures with legends).

The array helpers below stay importable for code written against them
(the examples until they move to `synthlayers.plot`); they will be removed
in a later release. `label_colors` now gives FreeSurfer's colours
(`synthlayers.plot.label_colors`), so left and right structures share one.
`write_png` stays a minimal writer (8-bit RGB, filter 0) until its last
callers move to `synthlayers.plot.save_figure`.
"""

import struct
import zlib

import numpy as np

from synthlayers import plot


def label_colors(labels, seed=0):
    """A fixed RGB colour (uint8) per label value; label 0 is black.

    Deprecated: use `synthlayers.plot.label_colors`. FreeSurfer values get
    FreeSurfer's colours, other values a fixed colour of their own; `seed`
    is ignored (kept for compatibility).
    """
    del seed
    colors = plot.label_colors(set(int(v) for v in labels) | {0})
    return {
        v: np.round(np.multiply(rgb, 255)).astype("uint8") for v, rgb in colors.items()
    }


def colorize(label_slice, colors):
    """`(h, w)` integer labels -> `(h, w, 3)` uint8 using `colors`."""
    out = np.zeros((*label_slice.shape, 3), "uint8")
    for value, color in colors.items():
        out[label_slice == value] = color
    return out


def to_gray(image_slice):
    """`(h, w)` float image -> `(h, w, 3)` uint8, min-max scaled."""
    low, high = np.percentile(image_slice, (0.5, 99.5))
    scaled = np.clip((image_slice - low) / max(high - low, 1e-6), 0, 1)
    return np.repeat((scaled * 255).astype("uint8")[..., None], 3, axis=-1)


def montage(tiles, columns, pad=2):
    """Arrange equal-sized `(h, w, 3)` uint8 tiles in a grid."""
    rows = -(-len(tiles) // columns)
    height = max(t.shape[0] for t in tiles)
    width = max(t.shape[1] for t in tiles)
    out = np.full(
        (rows * (height + pad) + pad, columns * (width + pad) + pad, 3), 32, "uint8"
    )
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        y, x = pad + r * (height + pad), pad + c * (width + pad)
        out[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    return out


def write_png(path, rgb):
    """Write an `(h, w, 3)` uint8 array as a PNG file."""
    rgb = np.ascontiguousarray(rgb, dtype="uint8")
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(height))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(
            chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b"")
        )
