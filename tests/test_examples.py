"""Smoke runs of the examples, as a user types them (subprocesses)."""

import os
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.image import imread

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Set by tests/conftest.py beside our checkouts; users download the data.
DATA_DIR = os.environ.get("SYNTHLAYERS_DATA_DIR", "")


def _read_png(path):
    """A PNG as 8-bit RGB (matplotlib reads floats in [0, 1], maybe RGBA)."""
    image = imread(path)
    return np.round(image[..., :3] * 255).astype("uint8")


@pytest.mark.parametrize("source", ["synthseg", "random"])
def test_synthesize_example_quick(tmp_path, source):
    if source == "synthseg":
        if not os.path.isdir(os.path.join(DATA_DIR, "synthseg_label_maps")):
            pytest.skip(f"SynthSeg data not found in {DATA_DIR}")
        options = ["--data-dir", DATA_DIR]
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
    # 4 rows (SynthSeg images, targets, SynthMorph images, labels) x 3 samples.
    assert image.shape[0] > 300 and image.shape[1] > 300
    assert image.std() > 20  # not blank
    quarters = np.array_split(image, 4, axis=0)
    for row in quarters:
        assert row.std() > 10  # every row of panels has content


def _run_training(tmp_path, *options):
    return subprocess.run(
        [
            sys.executable,
            os.path.join(ROOT, "examples", "train_segmentation.py"),
            "--quick",
            "--minutes",
            "0.2",
            "--out",
            str(tmp_path / "run"),
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": ROOT},
    )


# The examples are smoke-run once, under the default backend: each run costs
# about a minute, and the layers they use are tested on every backend.
default_backend_only = pytest.mark.skipif(
    __import__("keras").backend.backend() != "tensorflow",
    reason="example smoke runs use the default (TensorFlow) backend only",
)


@pytest.mark.slow  # a training run as a subprocess, about a minute
@default_backend_only
def test_train_segmentation_quick_on_real_data(tmp_path):
    import json

    if not os.path.isdir(os.path.join(DATA_DIR, "synthseg_label_maps")):
        pytest.skip(f"SynthSeg data not found in {DATA_DIR}")
    result = _run_training(tmp_path, "--data-dir", DATA_DIR)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SynthSeg label maps from" in result.stdout
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] > 0
    assert np.isfinite(summary["loss_last_epoch"])
    assert 0 <= summary["mean_dice"] <= 1
    # Peak memory in GB: more than the runtime alone, far less than 8 GB.
    assert 0.3 < summary["peak_rss_gb_training"] <= summary["peak_rss_gb"] < 8
    dice = json.loads((run / "dice.json").read_text())
    assert dice["num_structures"] == 31  # SynthSeg's structures, all present
    assert len(dice["structures"]) == 31
    assert abs(dice["mean_dice"] - summary["mean_dice"]) < 1e-9
    assert (run / "dice.csv").read_text().count("\n") == 33  # header, 31, mean
    figure = _read_png(run / "figure.png")
    assert figure.shape[0] > 50 and figure.std() > 10
    assert (run / "savedmodel" / "saved_model.pb").is_file()
    # The model file, loaded in this (another) process, segments the real
    # scan with no other argument and gives the training run's labels: the
    # same Dice to the last digit.
    from synthlayers.models import load_segmenter
    from synthlayers.models import read_metadata
    from synthlayers.workflows import evaluate_on_test_scan

    segmenter = load_segmenter(run / "model.keras")
    assert len(segmenter.output_labels) == 32 and segmenter.voxel_size == 2.0
    assert segmenter.slice_axes == [1] and segmenter.flip
    assert segmenter.provenance["steps"] == summary["steps"]
    again = evaluate_on_test_scan(run / "model.keras", data_dir=DATA_DIR)
    assert again["scores"]["mean_dice"] == summary["mean_dice"]
    # The SavedModel carries the same metadata.
    exported = read_metadata(run / "savedmodel", kind="segmentation")
    assert exported["output_labels"] == segmenter.output_labels
    # The final checkpoint: the same network, with the optimizer state.
    checkpoint = read_metadata(run / "checkpoint.keras", kind="segmentation")
    assert checkpoint["provenance"]["training_state"]["steps"] == summary["steps"]


@pytest.mark.slow  # a training run as a subprocess
@default_backend_only
def test_train_segmentation_falls_back_to_label_maps_made_in_code(tmp_path):
    import json

    empty = tmp_path / "empty"
    empty.mkdir()
    # Also: a step budget, and coronal and axial training slices.
    options = ["--minutes", "5", "--steps", "2", "--views", "coronal", "axial"]
    result = _run_training(tmp_path, "--data-dir", str(empty), *options)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if "No SynthSeg data" in line]
    assert len(lines) == 1 and "RandomLabelMap" in lines[0]
    assert "on coronal+axial slices for 2 steps" in result.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["steps"] == 2
    from synthlayers.models import load_segmenter

    segmenter = load_segmenter(tmp_path / "run" / "model.keras")
    assert segmenter.output_labels == list(range(16))
    assert segmenter.slice_axes == [1, 2]
    assert not (tmp_path / "run" / "dice.json").exists()  # no real scan


@pytest.mark.slow  # a subprocess importing Keras
@default_backend_only
def test_train_segmentation_bad_generator_override(tmp_path):
    result = _run_training(tmp_path, "--generator", "clip")
    assert result.returncode != 0
    assert "--generator expects NAME=VALUE" in result.stderr
