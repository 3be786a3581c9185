import os
import subprocess
import sys
import zlib

import numpy as np

from synthlayers.datasets import phantom_label_map
from synthlayers.visualize import write_png

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read_png(path):
    """Minimal reader for the PNGs we write (8-bit RGB, filter 0)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = np.frombuffer(data[16:24], ">u4")
    idat, pos = b"", 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        if data[pos + 4 : pos + 8] == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), "uint8").reshape(height, 1 + 3 * width)
    assert np.all(raw[:, 0] == 0)
    return raw[:, 1:].reshape(height, width, 3)


def test_write_png_round_trip(tmp_path, rng):
    rgb = rng.integers(0, 256, (7, 5, 3)).astype("uint8")
    write_png(tmp_path / "x.png", rgb)
    np.testing.assert_array_equal(_read_png(tmp_path / "x.png"), rgb)


def test_phantom_is_symmetric_and_labelled():
    labels = phantom_label_map((40, 36, 32))
    assert set(np.unique(labels)) == {0, 2, 3, 4, 10, 24, 41, 42, 43, 49}
    flipped = labels[::-1]
    swap = {2: 41, 41: 2, 3: 42, 42: 3, 4: 43, 43: 4, 10: 49, 49: 10}
    np.testing.assert_array_equal(
        np.vectorize(lambda v: swap.get(v, v))(flipped), labels
    )


def test_synthesize_example_quick(tmp_path):
    out = tmp_path / "montage.png"
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "examples", "synthesize.py"),
            "--quick",
            "--samples",
            "3",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Wrote montage to" in result.stdout
    image = _read_png(out)
    assert image.shape == (4 * 50 + 2, 3 * 50 + 2, 3)
    assert image.std() > 20  # not blank
