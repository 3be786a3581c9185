import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

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


SHARED_DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))


@pytest.mark.parametrize("source", ["synthseg", "random"])
def test_synthesize_example_quick(tmp_path, source):
    if source == "synthseg":
        if not os.path.isdir(os.path.join(SHARED_DATA, "synthseg_label_maps")):
            pytest.skip(f"SynthSeg data not found in {SHARED_DATA}")
        options = ["--data-dir", SHARED_DATA]
        expected = "Label map: training_seg_01.nii.gz"
    else:
        options = ["--random-labels"]
        expected = "RandomLabelMap"
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
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert expected in result.stdout
    assert "Wrote montage to" in result.stdout
    image = _read_png(out)
    # 4 rows (SynthSeg images, targets, SynthMorph images, labels) x 3 samples
    # of 48x48 tiles, 2-pixel gaps.
    assert image.shape == (4 * 50 + 2, 3 * 50 + 2, 3)
    assert image.std() > 20  # not blank
    rows = [image[2 + 50 * r : 50 * (r + 1), 2:-2] for r in range(4)]
    for row in rows:
        assert row.std() > 10  # every row has content
