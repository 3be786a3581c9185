"""Small, dependency-free figure helpers: montages and PNG files."""

import struct
import zlib

import numpy as np


def label_colors(labels, seed=0):
    """A fixed RGB colour (uint8) per label value; label 0 is black."""
    rng = np.random.default_rng(seed)
    colors = {int(v): rng.integers(60, 256, 3).astype("uint8") for v in sorted(labels)}
    colors[0] = np.zeros(3, "uint8")
    return colors


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
