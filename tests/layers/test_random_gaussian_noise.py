import re

import numpy as np
import pytest

from synthlayers.layers.random_gaussian_noise import RandomGaussianNoise
from tests.helpers import check_layer
from tests.helpers import make_image
from tests.helpers import make_label_map
from tests.helpers import to_numpy

SHAPES = {2: (12, 14), 3: (8, 10, 12)}


@pytest.mark.parametrize("rician", [False, True])
@pytest.mark.parametrize("ndim", [2, 3])
def test_contract(ndim, rician, tmp_path):
    shape = SHAPES[ndim]
    data = {
        "images": make_image(shape, channels=2),
        "segmentation_masks": make_label_map(shape),
    }
    check_layer(
        RandomGaussianNoise,
        {"std": (0.05, 0.2), "rician": rician, "probability": 0.9},
        data,
        tmp_path=tmp_path,
    )


def test_std_matches_drawn_std():
    """The noise of each sample has the standard deviation drawn for it."""
    images = np.zeros((6, 64, 64, 1), "float32") + 2.0
    layer = RandomGaussianNoise(std=(0.0, 1.0), seed=3)
    data = {"images": images}
    transformation = layer.get_random_transformation(data)
    std = to_numpy(transformation["std"])
    out = to_numpy(layer.transform_images(images, transformation))
    measured = (out - images).reshape(6, -1).std(axis=1)
    # 4096 values per sample: relative standard error of the std ~ 1.1 %.
    np.testing.assert_allclose(measured, std, rtol=0.05)
    assert std.std() > 0.05  # per-sample draws
    # A second call draws again and matches its own std too.
    out = to_numpy(layer(images))
    assert not np.allclose(out.reshape(6, -1).std(axis=1), measured)


def test_std_distribution_uniform_over_range():
    layer = RandomGaussianNoise(std=(0.2, 0.4), seed=0)
    images = np.zeros((2000, 4, 4, 1), "float32")
    std = to_numpy(layer.get_random_transformation({"images": images})["std"])
    assert std.min() >= 0.2 and std.max() <= 0.4
    assert abs(std.mean() - 0.3) < 0.005


def test_rician_magnitude():
    """Rician noise of a constant signal A has the Rice mean and is nonnegative."""
    amplitude, sigma = 3.0, 1.0
    images = np.full((2, 128, 128, 1), amplitude, "float32")
    out = to_numpy(RandomGaussianNoise(std=(sigma, sigma), rician=True, seed=0)(images))
    assert out.min() >= 0
    # E[|A + s z|^2] = A^2 + 2 s^2 for the complex magnitude.
    np.testing.assert_allclose(np.mean(out**2), amplitude**2 + 2 * sigma**2, rtol=0.02)
    zero = to_numpy(
        RandomGaussianNoise(std=(sigma, sigma), rician=True, seed=0)(0 * images)
    )
    # Rayleigh: mean s * sqrt(pi / 2).
    np.testing.assert_allclose(zero.mean(), sigma * np.sqrt(np.pi / 2), rtol=0.02)


def test_clip_and_zero_std():
    images = make_image((16, 16), batch=3)
    out = to_numpy(RandomGaussianNoise(std=5.0, clip=(-1, 1), seed=0)(images))
    assert out.min() >= -1 and out.max() <= 1
    same = to_numpy(RandomGaussianNoise(std=0.0, seed=0)(images))
    np.testing.assert_array_equal(same, images)


def test_probability_zero_is_identity_and_labels_untouched():
    data = {
        "images": make_image((8, 8, 8)),
        "segmentation_masks": make_label_map((8, 8, 8)),
    }
    out = RandomGaussianNoise(
        std=1.0, probability=0.0, rician=True, clip=(0, 1), seed=0
    )(data)
    np.testing.assert_array_equal(to_numpy(out["images"]), data["images"])
    np.testing.assert_array_equal(
        to_numpy(out["segmentation_masks"]), data["segmentation_masks"]
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"std": -0.1}, "std"),
        ({"std": (0.2, 0.1)}, "std"),
        ({"std": (-0.1, 0.1)}, "std"),
        ({"clip": (1, 0)}, "clip"),
        ({"clip": 1.0}, "clip"),
        ({"rician": "yes"}, "rician"),
        ({"probability": 1.5}, "probability"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=re.escape(name) + ".*Received"):
        RandomGaussianNoise(**kwargs)
