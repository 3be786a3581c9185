"""Tests for synthlayers.inference.preprocess: non-finite voxels never pass silently."""

import warnings

import keras
import numpy as np
import pytest

from synthlayers import io
from synthlayers.inference import segment
from synthlayers.inference.preprocess import _prepare
from synthlayers.inference.preprocess import check_finite_voxels


def _scan_with(values, shape=(6, 7, 8)):
    scan = np.random.default_rng(0).random(shape).astype("float32") + 1
    flat = scan.reshape(-1)
    flat[: len(values)] = values
    return scan


def test_non_finite_voxels_raise_with_their_count():
    scan = _scan_with([np.nan, np.inf, -np.inf])
    with pytest.raises(ValueError, match=r"`image`.*3 non-finite voxels .* of 336"):
        check_finite_voxels(scan)
    with pytest.raises(ValueError, match=r"nan_policy='zero'"):
        check_finite_voxels(scan, nan_policy="raise")


def test_zero_policy_sets_them_to_zero_and_warns():
    scan = _scan_with([np.nan, np.inf])
    with pytest.warns(UserWarning, match=r"image: 2 non-finite voxels .* set to 0"):
        repaired = check_finite_voxels(scan, nan_policy="zero")
    assert repaired.dtype == np.float32
    expected = scan.copy()
    expected.reshape(-1)[:2] = 0
    np.testing.assert_array_equal(repaired, expected)
    assert np.isnan(scan.reshape(-1)[0])  # the input is left alone


def test_finite_and_integer_images_pass_untouched_without_warning():
    scan = _scan_with([])
    labels = np.arange(24).reshape(2, 3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_finite_voxels(scan, "zero") is scan
        assert check_finite_voxels(labels) is labels


def test_invalid_nan_policy():
    with pytest.raises(ValueError, match=r"nan_policy.*Received: nan_policy='drop'"):
        check_finite_voxels(np.zeros(3), nan_policy="drop")
    with pytest.raises(ValueError, match="nan_policy"):
        _prepare(np.zeros((4, 4)), None, None, nan_policy=None)


def test_prepare_checks_files_and_names_them(tmp_path):
    path = tmp_path / "scan.nii.gz"
    io.save_volume(path, _scan_with([np.nan]), np.eye(4))
    with pytest.raises(ValueError, match=r"1 non-finite voxel .* in .*scan.nii.gz"):
        _prepare(str(path), None, None)
    with pytest.warns(UserWarning, match=r"scan.nii.gz: 1 non-finite voxel"):
        data, *_ = _prepare(str(path), None, None, nan_policy="zero")
    assert np.all(np.isfinite(data))


def test_segment_refuses_a_scan_with_one_nan_voxel():
    # Before: one NaN voxel made every output voxel background, silently.
    inputs = keras.Input((None, None, None, 1))
    outputs = keras.layers.Conv3D(2, 1, activation="softmax")(inputs)
    network = keras.Model(inputs, outputs)
    scan = _scan_with([np.nan], shape=(8, 8, 8))
    with pytest.raises(ValueError, match="1 non-finite voxel"):
        segment(network, scan, divisor=1)
