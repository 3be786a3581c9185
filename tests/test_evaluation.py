"""Tests for synthlayers.evaluation: Dice convention, files, label conversion."""

import csv
import json
import math
import os

import numpy as np
import pytest

from synthlayers import evaluation
from synthlayers import io
from tests.test_io import _data_dir


def test_dice_by_hand():
    truth = np.array([[0, 2, 2, 2], [41, 41, 3, 3], [17, 0, 0, 0]])
    prediction = np.array([[2, 2, 2, 0], [41, 3, 3, 3], [0, 0, 77, 41]])
    scores = evaluation.dice_scores(prediction, truth, labels=[2, 41, 3, 17, 4])
    assert list(scores) == [2, 41, 3, 17, 4]
    # 2: truth 3, prediction 3, overlap 2 -> 4/6.
    assert scores[2] == pytest.approx(4 / 6)
    # 41: truth 2, prediction 2 (one wrong place), overlap 1 -> 2/4.
    assert scores[41] == pytest.approx(0.5)
    # 3: truth 2, prediction 3, overlap 2 -> 4/5.
    assert scores[3] == pytest.approx(0.8)
    # 17: truth 1, prediction 0 -> 0.
    assert scores[17] == 0
    # 4: absent from the truth -> NaN, excluded from the mean.
    assert math.isnan(scores[4])
    assert evaluation.mean_dice(scores) == pytest.approx((4 / 6 + 0.5 + 0.8 + 0) / 4)


def test_absent_structure_predicted_is_nan_and_other_labels_are_background():
    truth = np.array([2, 2, 0, 0, 0])
    prediction = np.array([2, 77, 4, 4, 99])  # 77, 99 not evaluated
    scores = evaluation.dice_scores(prediction, truth, labels=[2, 4])
    assert scores[2] == pytest.approx(2 / 3)
    assert math.isnan(scores[4])
    # Same as if the unevaluated values were background.
    cleaned = evaluation.dice_scores(np.array([2, 0, 4, 4, 0]), truth, labels=[2, 4])
    assert cleaned[2] == scores[2]


def test_dice_matches_masks_on_random_maps(rng):
    labels = list(evaluation.SYNTHSEG_STRUCTURES)
    values = np.array([0, 77, *labels])
    truth = rng.choice(values, size=(20, 18, 16))
    prediction = np.where(
        rng.random(truth.shape) < 0.7, truth, rng.choice(values, truth.shape)
    )
    scores = evaluation.dice_scores(prediction, truth.astype("float64"))
    assert list(scores) == labels
    for label in labels:
        p, t = prediction == label, truth == label
        assert scores[label] == pytest.approx(2 * (p & t).sum() / (p.sum() + t.sum()))
    perfect = evaluation.dice_scores(truth, truth)
    assert all(v == 1 for v in perfect.values())


def test_synthseg_structures():
    assert len(evaluation.SYNTHSEG_STRUCTURES) == 32
    assert len(evaluation.SYNTHSEG_STRUCTURES_V1) == 31
    assert 24 not in evaluation.SYNTHSEG_STRUCTURES_V1
    assert all(v in evaluation.FREESURFER_NAMES for v in evaluation.SYNTHSEG_STRUCTURES)
    assert evaluation.structure_name(17) == "Left-Hippocampus"
    assert evaluation.structure_name(9999) == "label 9999"


def test_table_json_csv(tmp_path, capsys):
    truth = np.array([2, 2, 41, 41, 3])
    prediction = np.array([2, 41, 41, 41, 0])
    result = evaluation.evaluate_segmentation(
        prediction,
        truth,
        labels=[2, 41, 3, 4],
        json_path=tmp_path / "dice.json",
        csv_path=tmp_path / "dice.csv",
        verbose=True,
    )
    assert result["num_structures"] == 3
    assert result["dice"][2] == pytest.approx(2 / 3)
    assert result["dice"][41] == pytest.approx(0.8)
    assert result["mean_dice"] == pytest.approx((2 / 3 + 0.8 + 0) / 3)
    printed = capsys.readouterr().out
    assert "Left-Cerebral-White-Matter" in printed
    assert "0.6667" in printed and "0.8000" in printed
    assert "mean (3 structures)" in printed
    assert printed.splitlines()[4].split()[-1] == "-"  # label 4 absent

    content = json.loads((tmp_path / "dice.json").read_text())
    assert content["num_structures"] == 3
    assert content["mean_dice"] == pytest.approx(result["mean_dice"])
    by_label = {s["label"]: s for s in content["structures"]}
    assert by_label[4]["dice"] is None
    assert by_label[41]["name"] == "Right-Cerebral-White-Matter"
    assert by_label[2]["dice"] == pytest.approx(2 / 3)

    with open(tmp_path / "dice.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["label", "name", "dice"]
    assert rows[1][:2] == ["2", "Left-Cerebral-White-Matter"]
    assert float(rows[1][2]) == pytest.approx(2 / 3)
    assert rows[4] == ["4", "Left-Lateral-Ventricle", ""]
    assert rows[5][:2] == ["mean", "3 structures"]
    assert float(rows[5][2]) == pytest.approx(result["mean_dice"])


def test_nothing_present():
    scores = evaluation.dice_scores(np.zeros(4, "int32"), np.zeros(4, "int32"), [2])
    assert math.isnan(evaluation.mean_dice(scores))
    assert evaluation.format_dice_table(scores).splitlines()[-1].split()[-1] == "-"


def test_convert_freesurfer_segmentation():
    # RAS: x (axis 0) runs left -> right. Left hemisphere at x < 3.
    seg = np.zeros((6, 2), "int32")
    seg[0] = 3
    seg[1] = 2
    seg[4] = 41
    seg[5] = 42
    seg[2] = 251  # corpus callosum, left of the midline (x = 2 < 2.5)
    seg[3] = [77, 31]  # WM hypointensity (right side), choroid plexus
    seg[0, 1] = 25  # left lesion
    seg[5, 1] = 85  # optic chiasm: not evaluated
    out = evaluation.convert_freesurfer_segmentation(seg)
    expected = np.array([[3, 2], [2, 2], [2, 2], [41, 4], [41, 41], [42, 0]])
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.int32
    # The side is read from the data: an LIA-like axis (left at high x).
    flipped = evaluation.convert_freesurfer_segmentation(seg[::-1])
    np.testing.assert_array_equal(flipped, expected[::-1])
    # Own merges and labels.
    out = evaluation.convert_freesurfer_segmentation(
        seg, labels=[2, 41], merges={}, midline_labels=()
    )
    assert set(np.unique(out)) == {0, 2, 41}
    assert out[2, 0] == 0  # corpus callosum left as is, then not evaluated


@pytest.mark.skipif(_data_dir() is None, reason="vxm_test_scan.npz not found")
def test_vxm_ground_truth_conversion():
    scan = np.load(os.path.join(_data_dir(), "vxm_test_scan.npz"))
    seg = io.vxm_test_scan_to_ras(scan["seg"]).astype("int32")
    out = evaluation.convert_freesurfer_segmentation(seg)
    assert set(np.unique(out)) <= {0, *evaluation.SYNTHSEG_STRUCTURES}
    # Corpus callosum and hypointensities became white matter, split at the
    # midline: the left part of the callosum has lower x than the right.
    callosum = np.isin(seg, [251, 252, 253, 254, 255])
    x = np.nonzero(callosum)[0]
    assert set(np.unique(out[callosum])) == {2, 41}
    assert x[out[callosum] == 2].max() <= x[out[callosum] == 41].min()
    assert np.all(out[seg == 77] > 0)
    # Dice of the converted truth with itself, and after a left/right flip
    # (hemispheres swapped in place: low overlap for lateral structures).
    result = evaluation.evaluate_segmentation(out, out)
    assert result["mean_dice"] == 1 and result["num_structures"] == 32
    flipped = evaluation.dice_scores(out[::-1], out)
    assert flipped[2] < 0.2 and flipped[16] > 0.5


def test_bad_arguments():
    a = np.zeros((3, 3), "int32")
    with pytest.raises(ValueError, match="same shape.*prediction.shape=\\(3, 3\\)"):
        evaluation.dice_scores(a, np.zeros((3, 4), "int32"))
    with pytest.raises(ValueError, match="Expected `labels`.*labels=\\[2, 2\\]"):
        evaluation.dice_scores(a, a, labels=[2, 2])
    with pytest.raises(ValueError, match="non-zero.*labels=\\[0, 2\\]"):
        evaluation.dice_scores(a, a, labels=[0, 2])
    with pytest.raises(ValueError, match="labels=\\[\\]"):
        evaluation.dice_scores(a, a, labels=[])
    with pytest.raises(ValueError, match="integer label values. Received: truth"):
        evaluation.dice_scores(a, a + 0.5)
    with pytest.raises(ValueError, match="integer label map. Received: prediction"):
        evaluation.dice_scores(a.astype(str), a)
    with pytest.raises(ValueError, match="left_right_axis.*left_right_axis=2"):
        evaluation.convert_freesurfer_segmentation(a, left_right_axis=2)


# --- Registration ------------------------------------------------------------


def numpy_jacobian_determinant(displacement):
    """float64 reference: det(I + grad d) with numpy.gradient."""
    ndim = displacement.shape[-1]
    jacobian = np.empty(displacement.shape[:-1] + (ndim, ndim))
    for i in range(ndim):
        gradients = np.gradient(displacement[..., i], axis=tuple(range(ndim)))
        for k in range(ndim):
            jacobian[..., i, k] = gradients[k] + (i == k)
    return np.linalg.det(jacobian)


@pytest.mark.parametrize("shape", [(9, 8), (7, 6, 5)])
def test_jacobian_statistics_match_numpy(rng, shape):
    displacement = rng.normal(scale=0.6, size=shape + (len(shape),))
    det = numpy_jacobian_determinant(displacement)
    assert (det <= 0).any() and (det > 0).any()  # the reference sees folding
    stats = evaluation.jacobian_statistics(displacement)
    assert stats["folding_percent"] == pytest.approx(100 * np.mean(det <= 0))
    log_det = np.log(np.maximum(det, 1e-9))
    # float64 where the backend allows it (JAX computes in float32 by default).
    assert stats["log_jacobian_sd"] == pytest.approx(np.std(log_det), rel=1e-5)
    assert stats["jacobian_min"] == pytest.approx(det.min(), rel=1e-5)
    assert stats["jacobian_max"] == pytest.approx(det.max(), rel=1e-5)
    mask = np.zeros(shape, bool)
    mask[1:-1, 1:-1] = True
    masked = evaluation.jacobian_statistics(displacement.astype("float32"), mask)
    assert masked["folding_percent"] == pytest.approx(100 * np.mean(det[mask] <= 0))
    assert masked["log_jacobian_sd"] == pytest.approx(
        np.std(np.log(np.maximum(det[mask], 1e-9))), rel=1e-4
    )


def test_jacobian_statistics_of_an_affine_field():
    # d(x) = (A - I) x: det = det(A) everywhere, no folding, SD 0.
    a = np.array([[1.2, 0.1], [0.0, 0.9]])
    grid = np.stack(np.meshgrid(np.arange(6.0), np.arange(7.0), indexing="ij"), -1)
    stats = evaluation.jacobian_statistics(grid @ (a - np.eye(2)).T)
    assert stats["folding_percent"] == 0.0
    assert stats["log_jacobian_sd"] == pytest.approx(0.0, abs=1e-6)
    assert stats["jacobian_min"] == pytest.approx(np.linalg.det(a), rel=1e-6)


def test_jacobian_statistics_reject_bad_fields():
    with pytest.raises(ValueError, match="displacement"):
        evaluation.jacobian_statistics(np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="mask"):
        evaluation.jacobian_statistics(np.zeros((4, 4, 2)), np.zeros((4, 4), bool))


def test_evaluate_registration_dice_and_field(rng):
    fixed = rng.choice([0, 2, 3, 41, 99], size=(12, 10))
    moved = np.where(rng.random((12, 10)) < 0.3, 0, fixed)
    result = evaluation.evaluate_registration(
        moved, fixed, np.zeros((12, 10, 2)), labels=[2, 3, 41, 4]
    )
    for label in (2, 3, 41):
        a, b = moved == label, fixed == label
        assert result["dice"][label] == pytest.approx(
            2 * np.sum(a & b) / (a.sum() + b.sum())
        )
    assert math.isnan(result["dice"][4])
    assert result["num_structures"] == 3
    assert result["mean_dice"] == pytest.approx(
        np.mean([result["dice"][k] for k in (2, 3, 41)])
    )
    assert result["folding_percent"] == 0.0
    # labels=None: every non-zero value of the fixed map, 99 included.
    every = evaluation.evaluate_registration(moved, fixed, labels=None)
    assert set(every["dice"]) == {2, 3, 41, 99}
    assert "folding_percent" not in every
    with pytest.raises(ValueError, match="displacement"):
        evaluation.evaluate_registration(moved, fixed, np.zeros((5, 5, 2)))
    assert 2 in evaluation.REGISTRATION_STRUCTURES and 0 not in (
        evaluation.REGISTRATION_STRUCTURES
    )
