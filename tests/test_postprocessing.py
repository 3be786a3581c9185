"""Tests for SynthSeg's clean-up of probabilities in synthlayers.inference."""

import numpy as np
import pytest
from scipy import ndimage

from synthlayers.inference import keep_largest_components
from synthlayers.inference import predict_probabilities
from synthlayers.inference import segment
from synthlayers.inference import smooth_probabilities
from tests.test_inference import linear_model
from tests.test_inference import side_model


def one_hot(labels, channels):
    return np.eye(channels, dtype="float32")[labels]


# Label 3 is a bar that joins everything into one foreground component.
# Label 1 has two pieces: 2 voxels on the left, 1 on the right; label 2
# touches the right piece of label 1.
LAYOUT = np.array(
    [
        [3, 3, 3, 3, 3, 3],
        [1, 1, 3, 2, 2, 1],
        [0, 0, 0, 0, 0, 0],
    ]
)


def test_keeps_the_largest_piece_of_each_label():
    cleaned = keep_largest_components(one_hot(LAYOUT, 4))
    expected = LAYOUT.copy()
    expected[1, 5] = 0  # the small piece of label 1 becomes background
    np.testing.assert_array_equal(cleaned.argmax(-1), expected)
    np.testing.assert_allclose(cleaned.sum(-1), 1.0)


def test_topology_classes_clean_labels_together():
    # Labels 1 and 2 as one structure: its pieces are {(1,0), (1,1)} and
    # {(1,3), (1,4), (1,5)}: the left piece of label 1 goes.
    cleaned = keep_largest_components(one_hot(LAYOUT, 4), topology_classes=[0, 1, 1, 2])
    expected = LAYOUT.copy()
    expected[1, :2] = 0
    np.testing.assert_array_equal(cleaned.argmax(-1), expected)


def test_foreground_outside_the_largest_component_becomes_background():
    labels = np.zeros((9, 9, 9), int)
    labels[1:6, 1:6, 1:6] = 1
    labels[2:4, 2:4, 2:4] = 2
    labels[7:9, 7:9, 7:9] = 2  # detached: bigger than label 2's inner cube
    cleaned = keep_largest_components(one_hot(labels, 3))
    expected = labels.copy()
    expected[7:9, 7:9, 7:9] = 0
    np.testing.assert_array_equal(cleaned.argmax(-1), expected)


def test_matches_synthseg_postprocess_on_soft_probabilities():
    """Against SynthSeg's `postprocess` steps written out with SciPy."""
    rng = np.random.default_rng(0)
    logits = ndimage.gaussian_filter(rng.normal(size=(12, 14, 10, 4)), (2, 2, 2, 0))
    p = np.exp(4 * logits)
    p = (p / p.sum(-1, keepdims=True)).astype("float32")

    def largest(mask):
        components, n = ndimage.label(mask)
        if n == 0:
            return mask
        return components == np.argmax(np.bincount(components.flat)[1:]) + 1

    q = p.astype("float64")
    q[..., 1:] *= largest(q[..., 1:].sum(-1) > 0.25)[..., None]
    high = q > 0.25
    for c in range(1, 4):
        q[..., c] *= largest(high[..., c])
    q /= q.sum(-1, keepdims=True)
    np.testing.assert_allclose(keep_largest_components(p), q, atol=1e-6)


def test_smoothing_keeps_sums_and_matches_a_gaussian_filter():
    rng = np.random.default_rng(1)
    p = rng.random((10, 12, 3)).astype("float32")
    p /= p.sum(-1, keepdims=True)
    smoothed = smooth_probabilities(p, 1.0)
    np.testing.assert_allclose(smoothed.sum(-1), 1.0, atol=1e-6)
    reference = ndimage.gaussian_filter(
        p.astype("float64"), (1, 1, 0), mode="nearest", truncate=3.0
    )
    np.testing.assert_allclose(smoothed, reference, atol=1e-6)
    np.testing.assert_array_equal(smooth_probabilities(p, 0.0), p)


def _reference_blur_axis(x, axis, sigma):
    """The NumPy blur smooth_probabilities used before SciPy (float64 here)."""
    if sigma < 0.25:
        return x
    radius = int(np.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    n = x.shape[axis]
    out = np.zeros_like(x)
    for offset, weight in zip(offsets, weights):
        out += weight * np.take(x, np.clip(np.arange(n) + offset, 0, n - 1), axis)
    return out


@pytest.mark.parametrize("sigma", [0.2, 0.5, 0.7, 1.3])
@pytest.mark.parametrize("shape", [(9, 11, 2), (7, 8, 6, 3)])
def test_smoothing_kernel_is_cut_at_ceil_three_sigma(sigma, shape):
    # Radius ceil(3 sigma) (scipy's default truncate would give 2 taps for
    # sigma 0.7, not 3); below sigma 0.25 nothing changes.
    p = np.random.default_rng(2).random(shape).astype("float32")
    expected = p.astype("float64")
    for axis in range(p.ndim - 1):
        expected = _reference_blur_axis(expected, axis, sigma)
    smoothed = smooth_probabilities(p, sigma)
    assert smoothed.dtype == np.float32 and smoothed.shape == p.shape
    np.testing.assert_allclose(smoothed, expected, rtol=1e-6, atol=1e-6)


def test_segment_removes_a_detached_speck():
    image = np.zeros((12, 12, 12), "float32")
    image[2:8, 2:8, 2:8] = 1.0
    image[10, 10, 10] = 1.0  # a one-voxel speck
    kwargs = dict(target_voxel_size=None, percentiles=None, divisor=1)
    raw = segment(linear_model(3), image, **kwargs)
    assert raw[10, 10, 10] == 1
    cleaned = segment(linear_model(3), image, keep_largest_component=True, **kwargs)
    expected = raw.copy()
    expected[10, 10, 10] = 0
    np.testing.assert_array_equal(cleaned, expected)
    # Smoothing alone (sigma 0.5: the centre keeps 0.787 ** 3 = 0.49 of the
    # speck) takes the speck away too, and leaves the cube's inside.
    smoothed = segment(linear_model(3), image, smoothing_sigma=0.5, **kwargs)
    assert smoothed[10, 10, 10] == 0
    np.testing.assert_array_equal(smoothed[3:7, 3:7, 3:7], 1)


@pytest.mark.parametrize("slice_axis", [0, 1, 2])
def test_constant_slices_get_the_background(slice_axis):
    # This network calls every voxel foreground, empty ones too.
    model = side_model(2, threshold=-1.0)
    image = np.random.default_rng(0).random((6, 8, 10)).astype("float32")
    empty = np.moveaxis(image, slice_axis, 0)
    empty[[0, 3]] = 0.0  # two slices without signal
    empty[4] = 0.7  # constant, but not zero
    p = predict_probabilities(model, image, divisor=1, slice_axis=slice_axis)
    kept = predict_probabilities(
        model, image, divisor=1, slice_axis=slice_axis, empty_background=False
    )
    p, kept = np.moveaxis(p, slice_axis, 0), np.moveaxis(kept, slice_axis, 0)
    np.testing.assert_array_equal(
        p[[0, 3, 4]], one_hot(np.zeros((3, *p.shape[1:3]), int), 3)
    )
    assert not np.any(kept[[0, 3, 4], ..., 0])  # what the network says
    np.testing.assert_array_equal(p[[1, 2, 5]], kept[[1, 2, 5]])


def test_constant_image_gets_the_background():
    model = side_model(3, threshold=-1.0)
    labels = segment(model, np.full((8, 8, 8), 3.0, "float32"), divisor=1)
    np.testing.assert_array_equal(labels, 0)
    image = np.random.default_rng(0).random((8, 8, 8)).astype("float32")
    assert np.all(segment(model, image, divisor=1) > 0)


def test_bad_arguments():
    p = one_hot(LAYOUT, 4)
    with pytest.raises(ValueError, match="`threshold`.*threshold=1.5"):
        keep_largest_components(p, threshold=1.5)
    with pytest.raises(ValueError, match="`topology_classes` to be 4.*\\[0, 1\\]"):
        keep_largest_components(p, topology_classes=[0, 1])
    with pytest.raises(ValueError, match="at least 2 channels.*shape=\\(3, 6, 1\\)"):
        keep_largest_components(p[..., :1])
    with pytest.raises(ValueError, match="`sigma`.*sigma=-1"):
        smooth_probabilities(p, -1)
    image = np.zeros((4, 4, 4), "float32")
    model = linear_model(3)
    with pytest.raises(ValueError, match="`smoothing_sigma`.*smoothing_sigma=-0.5"):
        segment(model, image, smoothing_sigma=-0.5)
    with pytest.raises(ValueError, match="`keep_largest_component`.*=1"):
        segment(model, image, keep_largest_component=1)
    with pytest.raises(ValueError, match="`topology_classes=None` without"):
        segment(model, image, topology_classes=[0, 1])
    with pytest.raises(ValueError, match="`empty_background`.*=None"):
        segment(model, image, empty_background=None)
    with pytest.raises(ValueError, match="`topology_classes` to be 2"):
        segment(model, image, keep_largest_component=True, topology_classes=[0])
