import re

import numpy as np
import pytest
from scipy import ndimage

from synthlayers.layers.random_gaussian_blur import RandomGaussianBlur
from tests.helpers import check_layer
from tests.helpers import make_image
from tests.helpers import make_label_map
from tests.helpers import to_numpy

SHAPES = {2: (12, 14), 3: (8, 10, 12)}


@pytest.mark.parametrize("ndim", [2, 3])
def test_contract(ndim, tmp_path):
    shape = SHAPES[ndim]
    data = {
        "images": make_image(shape, channels=2),
        "segmentation_masks": make_label_map(shape),
    }
    check_layer(RandomGaussianBlur, {"sigma": (0.3, 1.5)}, data, tmp_path=tmp_path)


@pytest.mark.parametrize("ndim", [2, 3])
def test_each_sample_matches_scipy_with_its_own_sigma(ndim, rng):
    """Per-sample kernels, each normalised on its own (not over the batch)."""
    shape = SHAPES[ndim]
    images = rng.normal(size=(4, *shape, 2)).astype("float32")
    sigma_ranges = [(0.0, 3.0)] * (ndim - 1) + [(0.5, 1.0)]
    layer = RandomGaussianBlur(sigma=sigma_ranges, seed=5)
    transformation = layer.get_random_transformation({"images": images})
    sigma = to_numpy(transformation["sigma"])
    assert sigma.shape == (4, ndim)
    assert np.all(sigma[:, -1] >= 0.5) and np.all(sigma[:, -1] <= 1.0)
    assert len(np.unique(np.round(sigma[:, 0], 4))) == 4  # per-sample draws
    out = to_numpy(layer.transform_images(images, transformation))
    for b in range(4):
        for c in range(2):
            expected = ndimage.gaussian_filter(
                images[b, ..., c].astype("float64"),
                sigma[b],
                mode="nearest",
                truncate=4.0,
            )
            np.testing.assert_allclose(out[b, ..., c], expected, atol=1e-5)


def test_constant_image_stays_constant():
    images = np.full((5, 10, 12, 9, 1), 2.5, "float32")
    out = to_numpy(RandomGaussianBlur(sigma=4.0, seed=0)(images))
    np.testing.assert_allclose(out, 2.5, rtol=1e-6)


def test_zero_sigma_and_labels_untouched():
    data = {
        "images": make_image((8, 8, 8)),
        "segmentation_masks": make_label_map((8, 8, 8)),
    }
    out = RandomGaussianBlur(sigma=0.0, seed=0)(data)
    np.testing.assert_array_equal(to_numpy(out["images"]), data["images"])
    out = RandomGaussianBlur(sigma=2.0, seed=0)(data)
    np.testing.assert_array_equal(
        to_numpy(out["segmentation_masks"]), data["segmentation_masks"]
    )


def test_probability_gates_per_sample():
    images = make_image((12, 12), batch=64)
    layer = RandomGaussianBlur(sigma=(1.0, 2.0), probability=0.5, seed=0)
    transformation = layer.get_random_transformation({"images": images})
    sigma = to_numpy(transformation["sigma"])
    kept = np.all(sigma == 0, axis=1)
    assert 10 < kept.sum() < 54
    out = to_numpy(layer.transform_images(images, transformation))
    np.testing.assert_array_equal(out[kept], images[kept])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"sigma": -1.0}, "sigma"),
        ({"sigma": (2.0, 1.0)}, "sigma"),
        ({"sigma": [(0, 1), (-1, 1)]}, "sigma[1]"),
        ({"sigma": "big"}, "sigma"),
        ({"probability": -0.1}, "probability"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=re.escape(name) + ".*Received"):
        RandomGaussianBlur(**kwargs)


def test_wrong_number_of_axis_ranges():
    layer = RandomGaussianBlur(sigma=[(0, 1), (0, 1)])
    with pytest.raises(ValueError, match="sigma.*Received"):
        layer(np.zeros((1, 4, 4, 4, 1), "float32"))
