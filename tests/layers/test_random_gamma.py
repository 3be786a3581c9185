import numpy as np
import pytest

from synthlayers.layers.random_gamma import RandomGamma
from tests.helpers import check_layer
from tests.helpers import make_image
from tests.helpers import make_label_map
from tests.helpers import to_numpy

SHAPES = {2: (12, 10), 3: (8, 9, 10)}


@pytest.mark.parametrize("ndim", [2, 3])
def test_contract(ndim, tmp_path):
    shape = SHAPES[ndim]
    data = {
        "images": make_image(shape, channels=2),
        "segmentation_masks": make_label_map(shape),
    }
    layer, out = check_layer(RandomGamma, {"std": 0.5}, data, tmp_path=tmp_path)
    np.testing.assert_array_equal(
        to_numpy(out["segmentation_masks"]), data["segmentation_masks"]
    )


def test_contract_gamma_range(tmp_path):
    check_layer(
        RandomGamma,
        {"gamma_range": (0.5, 2.0), "probability": 0.7},
        make_image(SHAPES[3]),
        tmp_path=tmp_path,
    )


def _uniform_image(batch=8, channels=1, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-3, 7, (batch, 16, 16, channels)).astype("float32")


def test_gamma_above_one_darkens_below_one_brightens():
    image = _uniform_image()
    normalised = (image - image.min(axis=(1, 2), keepdims=True)) / np.ptp(
        image, axis=(1, 2), keepdims=True
    )
    dark = to_numpy(RandomGamma(gamma_range=(2, 2), seed=0)(image))
    bright = to_numpy(RandomGamma(gamma_range=(0.5, 0.5), seed=0)(image))
    for b in range(len(image)):
        median = np.median(normalised[b])
        assert np.median(dark[b]) < median - 0.15
        assert np.median(bright[b]) > median + 0.15
    np.testing.assert_allclose(dark, normalised**2, atol=1e-5)
    np.testing.assert_allclose(bright, np.sqrt(normalised), atol=1e-5)


def test_output_in_unit_interval_and_min_max_per_channel():
    image = _uniform_image(batch=16, channels=3) * np.array([1, 100, 0.01], "float32")
    out = to_numpy(RandomGamma(std=1.0, seed=1)(image))
    assert out.min() >= 0 and out.max() <= 1
    np.testing.assert_allclose(out.min(axis=(1, 2)), 0, atol=1e-6)
    np.testing.assert_allclose(out.max(axis=(1, 2)), 1, atol=1e-6)


def test_constant_images_give_zero_not_nan():
    image = np.full((3, 8, 8, 8, 2), 5.0, "float32")
    image[1, ..., 1] = 0.0
    out = to_numpy(RandomGamma(seed=2)(image))
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out, 0.0)


def test_log_gamma_has_the_given_std():
    """With a linear ramp, the output at x = e^-1 is exp(-gamma): recover gamma."""
    ramp = np.linspace(0, 1, 101, dtype="float32")
    ramp[37] = np.exp(-1.0)
    image = np.broadcast_to(ramp[None, :, None, None], (512, 101, 1, 2)).copy()
    out = to_numpy(RandomGamma(std=0.3, seed=3)(image)).astype("float64")
    gamma = -np.log(out[:, 37, 0, :])  # (batch, channels)
    np.testing.assert_allclose(np.log(gamma).std(), 0.3, rtol=0.1)
    assert abs(np.log(gamma).mean()) < 0.03
    assert abs(np.corrcoef(gamma.T)[0, 1]) < 0.2  # channels independent


def test_probability_leaves_some_samples_at_gamma_one():
    image = _uniform_image(batch=200)
    normalised = (image - image.min(axis=(1, 2), keepdims=True)) / np.ptp(
        image, axis=(1, 2), keepdims=True
    )
    out = to_numpy(RandomGamma(gamma_range=(2, 3), probability=0.4, seed=4)(image))
    unchanged = np.all(np.abs(out - normalised) < 1e-5, axis=(1, 2, 3))
    assert 0.5 < unchanged.mean() < 0.7


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"std": -0.1}, "std"),
        ({"std": "x"}, "std"),
        ({"std": 0.5, "gamma_range": (0.5, 2)}, "gamma_range"),
        ({"gamma_range": (0.0, 2)}, "gamma_range"),
        ({"gamma_range": (2, 1)}, "gamma_range"),
        ({"gamma_range": 2.0}, "gamma_range"),
        ({"probability": -0.5}, "probability"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match="Received") as info:
        RandomGamma(**kwargs)
    assert name in str(info.value)
