import re

import numpy as np
import pytest
from scipy import ndimage

from synthlayers.datasets import phantom_label_map
from synthlayers.layers import RandomAffine
from synthlayers.layers import RandomSpatialTransform
from tests.helpers import check_layer
from tests.helpers import make_image
from tests.helpers import make_label_map
from tests.helpers import to_numpy

SHAPES = {2: (20, 24), 3: (12, 14, 16)}


@pytest.mark.parametrize("ndim", [2, 3])
def test_contract(ndim, tmp_path):
    shape = SHAPES[ndim]
    data = {
        "images": make_image(shape, channels=2),
        "segmentation_masks": make_label_map(shape),
    }
    check_layer(
        RandomAffine,
        {"translation": 2, "rotation": 20, "scaling": 0.2, "shear": 0.05},
        data,
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_identity_parameters_return_input_exactly(ndim):
    shape = SHAPES[ndim]
    data = {"images": make_image(shape), "segmentation_masks": make_label_map(shape)}
    out = RandomAffine(rotation=0, scaling=0, shear=0, seed=0)(data)
    np.testing.assert_array_equal(to_numpy(out["images"]), data["images"])
    np.testing.assert_array_equal(
        to_numpy(out["segmentation_masks"]), data["segmentation_masks"]
    )


def test_defaults_are_synthseg_ranges_and_change_the_input():
    layer = RandomAffine(seed=0)
    config = layer.get_config()
    assert config["rotation"] == 15.0
    assert config["scaling"] == 0.2
    assert config["shear"] == 0.012
    assert config["translation"] == 0.0
    image = make_image((24, 24), batch=4)
    out = to_numpy(layer(image))
    changed = np.abs(out - image).max(axis=(1, 2, 3))
    assert np.all(changed > 0.05)


@pytest.mark.parametrize("ndim", [2, 3])
def test_matches_scipy_affine_transform(ndim):
    """The drawn transform, read back, applied by SciPy gives the same image."""
    shape = SHAPES[ndim]
    image = make_image(shape, batch=3)
    layer = RandomSpatialTransform(
        translation=3,
        rotation=30,
        scaling=0.2,
        shear=0.1,
        deformation_std=0,
        return_transform=True,
        seed=3,
    )
    out = layer(image)
    matrices = to_numpy(out["affine"]).astype("float64")
    for b in range(3):
        expected = ndimage.affine_transform(
            image[b, ..., 0].astype("float64"),
            matrices[b, :ndim, :ndim],
            offset=matrices[b, :ndim, ndim],
            order=1,
            mode="grid-constant",
            cval=0.0,
        )
        np.testing.assert_allclose(
            to_numpy(out["images"])[b, ..., 0], expected, atol=2e-4
        )


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("dtype", ["int32", "int16", "uint8"])
def test_labels_keep_dtype_and_values(ndim, dtype):
    labels = make_label_map(SHAPES[ndim], labels=[0, 3, 17, 42]).astype(dtype)
    out = to_numpy(
        RandomAffine(rotation=45, scaling=0.3, translation=4, seed=1)(labels)
    )
    assert out.dtype == np.dtype(dtype)
    assert set(np.unique(out)) <= {0, 3, 17, 42}


@pytest.mark.parametrize("ndim", [2, 3])
def test_alignment_of_linear_one_hot_and_nearest_labels(ndim):
    """Linearly warped one-hot agrees with nearest-warped labels off boundaries."""
    shape = (64, 60) if ndim == 2 else (40, 36, 32)
    labels = phantom_label_map(shape)
    values, compact = np.unique(labels, return_inverse=True)
    compact = compact.reshape(shape)[None, ..., None].repeat(2, axis=0).astype("int32")
    one_hot = np.eye(len(values), dtype="float32")[compact[..., 0]]
    layer = RandomAffine(rotation=25, scaling=0.15, translation=3, shear=0.05, seed=7)
    out = layer({"images": one_hot, "segmentation_masks": compact})
    argmax = np.argmax(to_numpy(out["images"]), axis=-1)
    nearest = to_numpy(out["segmentation_masks"])[..., 0]
    agree = argmax == nearest
    assert agree.mean() >= 0.98
    # Away from label boundaries (a 3^N neighbourhood of one label) they agree.
    size = (1,) + (3,) * ndim
    interior = ndimage.maximum_filter(nearest, size) == ndimage.minimum_filter(
        nearest, size
    )
    assert interior.mean() > 0.5 and agree[interior].all()


def test_isotropic_scaling_and_normal_distribution_stay_in_range():
    layer = RandomSpatialTransform(
        rotation=0,
        scaling=(0.8, 1.25),
        shear=0,
        deformation_std=0,
        isotropic_scaling=True,
        distribution="normal",
        return_transform=True,
        seed=0,
    )
    out = layer(make_image((16, 16, 16), batch=64))
    diagonals = np.diagonal(to_numpy(out["affine"])[:, :3, :3], axis1=1, axis2=2)
    np.testing.assert_allclose(diagonals, diagonals[:, :1].repeat(3, 1), rtol=1e-6)
    assert diagonals.min() >= 0.8 - 1e-6 and diagonals.max() <= 1.25 + 1e-6
    assert diagonals.std() > 0.02


def test_probability_zero_and_half():
    image = make_image((16, 16), batch=200)
    same = to_numpy(RandomAffine(rotation=30, probability=0.0, seed=0)(image))
    np.testing.assert_array_equal(same, image)
    half = to_numpy(RandomAffine(rotation=30, probability=0.5, seed=0)(image))
    untouched = np.all(half == image, axis=(1, 2, 3))
    assert 0.35 < untouched.mean() < 0.65


@pytest.mark.parametrize("ndim", [2, 3])
def test_extreme_parameters_stay_finite(ndim):
    shape = SHAPES[ndim]
    data = {"images": make_image(shape), "segmentation_masks": make_label_map(shape)}
    layer = RandomAffine(
        translation=1000, rotation=180, scaling=(0.01, 50), shear=5, seed=0
    )
    out = layer(data)
    assert np.all(np.isfinite(to_numpy(out["images"])))
    assert set(np.unique(to_numpy(out["segmentation_masks"]))) <= set(
        np.unique(data["segmentation_masks"])
    ) | {0}


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"rotation": (10, -10)}, "rotation"),
        ({"translation": "big"}, "translation"),
        ({"scaling": (-0.5, 1.0)}, "scaling"),
        ({"shear": [1, 2, (3,)]}, "shear[2]"),
        ({"distribution": "cauchy"}, "distribution"),
        ({"probability": 1.5}, "probability"),
        ({"fill_mode": "wrap"}, "fill_mode"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=re.escape(name) + ".*Received"):
        RandomAffine(**kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"rank 4.*Received: images.shape=\(2, 8, 1\)"):
        RandomAffine(rotation=1)(np.zeros((2, 8, 1), "float32"))
    with pytest.raises(ValueError, match="same batch and spatial shape"):
        RandomAffine(rotation=1)(
            {
                "images": np.zeros((1, 8, 8, 1), "float32"),
                "segmentation_masks": np.zeros((1, 8, 9, 1), "int32"),
            }
        )
    with pytest.raises(ValueError, match="integer label map.*float32"):
        RandomAffine(rotation=1)(
            {"segmentation_masks": np.zeros((1, 8, 8, 1), "float32")}
        )
    with pytest.raises(ValueError, match=r"rotation.*3 ranges"):
        RandomAffine(rotation=[5, 5, 5, 5])(np.zeros((1, 8, 8, 8, 1), "float32"))
