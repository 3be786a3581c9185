import re

import numpy as np
import pytest

from synthlayers.layers.normalize_intensity import NormalizeIntensity
from tests.helpers import check_layer
from tests.helpers import make_image
from tests.helpers import make_label_map
from tests.helpers import to_numpy

SHAPES = {2: (12, 14), 3: (8, 10, 12)}


@pytest.mark.parametrize("method", ["minmax", "percentile"])
@pytest.mark.parametrize("ndim", [2, 3])
def test_contract(ndim, method, tmp_path):
    shape = SHAPES[ndim]
    data = {
        "images": make_image(shape, channels=2),
        "segmentation_masks": make_label_map(shape),
    }
    check_layer(
        NormalizeIntensity,
        {"method": method},
        data,
        random=False,
        identity_when_not_training=False,
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_minmax_matches_numpy_per_sample_and_channel(ndim, rng):
    images = rng.normal(size=(3, *SHAPES[ndim], 2)).astype("float32")
    images[1, ..., 1] *= 50
    images[2, ..., 0] += 7
    out = to_numpy(NormalizeIntensity()(images))
    axes = tuple(range(1, ndim + 1))
    low = images.min(axis=axes, keepdims=True)
    high = images.max(axis=axes, keepdims=True)
    np.testing.assert_allclose(out, (images - low) / (high - low), atol=1e-6)
    np.testing.assert_allclose(out.min(axis=axes), 0, atol=1e-7)
    np.testing.assert_allclose(out.max(axis=axes), 1, atol=1e-6)


@pytest.mark.parametrize("ndim", [2, 3])
def test_percentile_matches_numpy(ndim, rng):
    images = rng.standard_cauchy(size=(3, *SHAPES[ndim], 2)).astype("float32")
    percentiles = (2.0, 97.0)
    out = to_numpy(NormalizeIntensity("percentile", percentiles)(images))
    axes = tuple(range(1, ndim + 1))
    low, high = np.percentile(
        images.astype("float64"), percentiles, axis=axes, keepdims=True
    )
    expected = np.clip((images - low) / (high - low), 0, 1)
    np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("method", ["minmax", "percentile"])
def test_constant_image_maps_to_zero(method):
    images = np.full((2, 8, 8, 8, 2), 3.5, "float32")
    images[1, ..., 1] = -2.0
    images[0, ..., 1] = np.arange(512).reshape(8, 8, 8)  # one non-constant channel
    out = to_numpy(NormalizeIntensity(method)(images))
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[1], 0)
    np.testing.assert_array_equal(out[0, ..., 0], 0)
    assert out[0, ..., 1].max() == pytest.approx(1.0)


def test_labels_untouched():
    labels = make_label_map((8, 8, 8))
    out = NormalizeIntensity()({"segmentation_masks": labels})
    np.testing.assert_array_equal(to_numpy(out["segmentation_masks"]), labels)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"method": "zscore"}, "method"),
        ({"percentiles": (50, 10)}, "percentiles"),
        ({"percentiles": (-1, 99)}, "percentiles"),
        ({"percentiles": 99}, "percentiles"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=re.escape(name) + ".*Received"):
        NormalizeIntensity(**kwargs)


@pytest.mark.parametrize("ndim", [2, 3])
def test_clip_before_minmax_matches_numpy(ndim, rng):
    """SynthSeg clips to [0, 300] before min-max: bright outliers saturate."""
    images = rng.uniform(0, 250, size=(2, *SHAPES[ndim], 1)).astype("float32")
    images[0].flat[:5] = 5000.0  # a few very bright voxels
    images[1].flat[:5] = -40.0
    out = to_numpy(NormalizeIntensity(clip=(0, 300))(images))
    clipped = np.clip(images.astype("float64"), 0, 300)
    axes = tuple(range(1, ndim + 1))
    low = clipped.min(axis=axes, keepdims=True)
    high = clipped.max(axis=axes, keepdims=True)
    np.testing.assert_allclose(out, (clipped - low) / (high - low), atol=1e-6)
    # Without the clip the outliers compress the rest of the image.
    unclipped = to_numpy(NormalizeIntensity()(images))
    assert np.median(unclipped[0]) < 0.06 < 0.3 < np.median(out[0])


@pytest.mark.parametrize("clip", [5, (300, 0), (0, float("nan")), "300", (0, 1, 2)])
def test_clip_errors_name_the_argument(clip):
    with pytest.raises(ValueError, match="clip"):
        NormalizeIntensity(clip=clip)


def test_clip_in_config():
    layer = NormalizeIntensity(clip=(0, 255))
    assert layer.get_config()["clip"] == [0.0, 255.0]
    assert NormalizeIntensity.from_config(layer.get_config()).clip == (0.0, 255.0)
