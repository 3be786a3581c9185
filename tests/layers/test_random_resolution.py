import re

import numpy as np
import pytest

from synthlayers.layers.random_resolution import RandomResolution
from synthlayers.layers.random_resolution import blurring_sigma
from synthlayers.layers.random_resolution import resolution_matrices
from tests.helpers import check_layer
from tests.helpers import make_image
from tests.helpers import make_label_map
from tests.helpers import to_numpy

SHAPES = {2: (16, 20), 3: (12, 14, 16)}


@pytest.mark.parametrize("ndim", [2, 3])
def test_contract(ndim, tmp_path):
    shape = SHAPES[ndim]
    data = {
        "images": make_image(shape, channels=2),
        "segmentation_masks": make_label_map(shape),
    }
    check_layer(
        RandomResolution,
        {"max_spacing": 5.0, "isotropic_probability": 0.5, "noise_std": 0.05},
        data,
        expected_spatial_shape=shape,
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_contract_fixed_spacing(ndim, tmp_path):
    shape = SHAPES[ndim]
    data = {"images": make_image(shape), "segmentation_masks": make_label_map(shape)}
    check_layer(
        RandomResolution,
        {
            "data_spacing": [3.0] + [1.0] * (ndim - 1),
            "thickness": 2.0 if ndim == 2 else [2, 1, 1],
        },
        data,
        random=False,
        tmp_path=tmp_path,
    )


def _band_power(images, axis, cutoff):
    """Mean power along `axis` (1-based) above and below `cutoff` cycles/voxel."""
    power = np.abs(np.fft.rfft(images, axis=axis)) ** 2
    power = power.mean(axis=tuple(a for a in range(images.ndim) if a != axis))
    frequency = np.fft.rfftfreq(images.shape[axis])
    return power[frequency > cutoff].mean(), power[frequency <= cutoff].mean()


@pytest.mark.parametrize("spacing, thickness", [(4.0, None), (2.5, None), (3.0, 2.0)])
def test_low_resolution_axis_loses_frequencies_beyond_nyquist(spacing, thickness):
    images = np.random.default_rng(0).normal(size=(4, 64, 32, 32, 1)).astype("float32")
    layer = RandomResolution(
        data_spacing=(spacing, 1, 1),
        thickness=None if thickness is None else (thickness, 1, 1),
    )
    out = to_numpy(layer(images))[..., 0]
    nyquist = 1 / (2 * spacing)
    high_in, _ = _band_power(images[..., 0], 1, nyquist)
    high_out, low_out = _band_power(out, 1, nyquist)
    assert high_out < 0.03 * high_in
    assert high_out < 0.1 * low_out
    for axis in (2, 3):  # the full-resolution axes keep a flat (white) spectrum
        high, low = _band_power(out, axis, 0.25)
        assert 0.85 < high / low < 1.15
    # and the operator along them is the identity: a single column gives the same.
    column = to_numpy(layer(images[:, :, :1, :1]))[..., 0]
    np.testing.assert_allclose(out[:, :, :1, :1], column, atol=1e-5)


@pytest.mark.parametrize("ndim", [2, 3])
def test_spacing_one_is_identity(ndim):
    images = make_image(SHAPES[ndim], channels=2, batch=3)
    out = to_numpy(RandomResolution(data_spacing=1.0)(images))
    np.testing.assert_array_equal(out, images)
    out = to_numpy(RandomResolution(max_spacing=1.0, seed=0)(images))
    np.testing.assert_array_equal(out, images)


def test_isotropic_draws_are_really_isotropic():
    """SynthSeg drew its 'isotropic' resolution per axis; one value here."""
    layer = RandomResolution(isotropic_probability=1.0, seed=0)
    images = np.zeros((200, 8, 8, 8, 1), "float32")
    transformation = layer.get_random_transformation({"images": images})
    spacing = to_numpy(transformation["spacing"])
    thickness = to_numpy(transformation["thickness"])
    assert np.all(spacing == spacing[:, :1])
    assert spacing.min() >= 1 and spacing.max() <= 9 and spacing.std() > 1
    assert np.all(thickness >= 1) and np.all(thickness <= spacing + 1e-6)


def test_anisotropic_draws_change_one_axis():
    layer = RandomResolution(isotropic_probability=0.0, max_spacing=6.0, seed=0)
    images = np.zeros((300, 8, 8, 8, 1), "float32")
    transformation = layer.get_random_transformation({"images": images})
    spacing = to_numpy(transformation["spacing"])
    thickness = to_numpy(transformation["thickness"])
    assert np.all(np.sum(spacing != 1, axis=1) <= 1)
    assert np.all(spacing <= 6)
    assert set(np.argmax(spacing, axis=1)) == {0, 1, 2}
    np.testing.assert_array_equal(thickness[spacing == 1], 1)


def test_isotropic_probability_mixes():
    layer = RandomResolution(isotropic_probability=0.3, seed=1)
    images = np.zeros((1000, 4, 4, 1), "float32")
    spacing = to_numpy(layer.get_random_transformation({"images": images})["spacing"])
    isotropic = np.mean(np.all(spacing > 1, axis=1))
    assert 0.25 < isotropic < 0.35


def test_matrices_against_numpy_reference():
    """down = sample-at-lattice @ Gaussian blur; up = linear from the lattice."""
    length, spacing, sigma = (
        11,
        np.array([3.0, 2.5], "float32"),
        np.array([2.25, 0.0], "float32"),
    )
    down, up = (to_numpy(m) for m in resolution_matrices(spacing, sigma, length))
    for b in range(2):
        s = float(spacing[b])
        last = int(np.floor((length - 1) / s))
        signal = np.random.default_rng(b).normal(size=length)
        if sigma[b] > 0:
            from scipy import ndimage

            blurred = ndimage.gaussian_filter1d(signal, float(sigma[b]), mode="nearest")
        else:
            blurred = signal
        lattice = np.interp(np.arange(last + 1) * s, np.arange(length), blurred)
        np.testing.assert_allclose((down[b] @ signal)[: last + 1], lattice, atol=1e-5)
        expected = np.interp(np.arange(length) / s, np.arange(last + 1), lattice)
        np.testing.assert_allclose(up[b] @ down[b] @ signal, expected, atol=1e-5)
        np.testing.assert_array_equal(up[b][:, last + 1 :], 0)


def test_blurring_sigma_formula():
    spacing = np.array([[1.0, 4.0, 4.0, 6.0]], "float32")
    thickness = np.array([[1.0, 4.0, 2.0, 8.0]], "float32")
    sigma = to_numpy(blurring_sigma(spacing, thickness))
    np.testing.assert_allclose(sigma, [[0.0, 3.0, 1.5, 4.5]])


def test_constant_image_stays_constant_and_no_nan_at_extremes():
    """Thousands of random draws on tiny images, spacings up to far beyond the size."""
    images = np.full((1000, 16, 16, 1), 3.0, "float32")
    for max_spacing in (1.0 + 1e-6, 9.0, 40.0):
        layer = RandomResolution(
            max_spacing=max_spacing, isotropic_probability=0.5, seed=0
        )
        out = to_numpy(layer(images))
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out, 3.0, rtol=1e-5)
    noise = np.random.default_rng(0).normal(size=(1000, 16, 16, 1)).astype("float32")
    out = to_numpy(RandomResolution(max_spacing=40.0, noise_std=1.0, seed=0)(noise))
    assert np.all(np.isfinite(out))
    assert np.abs(out).max() < 10


def test_low_resolution_noise():
    images = np.zeros((8, 32, 32, 1), "float32")
    layer = RandomResolution(data_spacing=(4.0, 1.0), noise_std=(1.0, 1.0), seed=0)
    out = to_numpy(layer(images))[..., 0]
    # noise lives on the lattice: rows at multiples of 4 hold it at full strength,
    # and it is smooth (linear) between them along the low-resolution axis.
    np.testing.assert_allclose(out[:, ::4].std(), 1.0, rtol=0.1)
    high, low = _band_power(out, 1, 1 / 8)
    assert high < 0.2 * low
    high, low = _band_power(out, 2, 0.25)
    assert 0.8 < high / low < 1.25


def test_probability_and_labels():
    data = {
        "images": make_image((12, 12, 12), batch=2),
        "segmentation_masks": make_label_map((12, 12, 12)),
    }
    out = RandomResolution(probability=0.0, noise_std=1.0, seed=0)(data)
    np.testing.assert_array_equal(to_numpy(out["images"]), data["images"])
    out = RandomResolution(seed=0)(data)
    np.testing.assert_array_equal(
        to_numpy(out["segmentation_masks"]), data["segmentation_masks"]
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"max_spacing": 0.5}, "max_spacing"),
        ({"max_spacing": "9"}, "max_spacing"),
        ({"isotropic_probability": 2}, "isotropic_probability"),
        ({"data_spacing": 0.5}, "data_spacing"),
        ({"data_spacing": [2, "a", 1]}, "data_spacing"),
        ({"thickness": 2.0}, "thickness"),
        ({"data_spacing": (2, 2, 2), "thickness": (1, 1)}, "thickness"),
        ({"data_spacing": (2, 2, 2), "thickness": 0.5}, "thickness"),
        ({"noise_std": -1}, "noise_std"),
        ({"probability": -1}, "probability"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=re.escape(name) + ".*Received"):
        RandomResolution(**kwargs)


def test_data_spacing_of_wrong_length():
    layer = RandomResolution(data_spacing=(2.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="data_spacing.*Received"):
        layer(np.zeros((1, 8, 8, 1), "float32"))
