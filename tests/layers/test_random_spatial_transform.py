import numpy as np
import pytest

from synthlayers.layers import RandomSpatialTransform
from synthlayers.layers import SpatialTransformer
from tests.helpers import check_layer
from tests.helpers import make_image
from tests.helpers import make_label_map
from tests.helpers import to_numpy

SHAPES = {2: (24, 20), 3: (14, 12, 16)}
SMALLER = {2: (16, 15), 3: (10, 9, 8)}
LARGER = {2: (30, 26), 3: (18, 15, 20)}
FULL = dict(
    translation=2,
    rotation=15,
    scaling=0.1,
    shear=0.02,
    deformation_std=2.0,
    deformation_grid_shape=4,
)
IDENTITY = dict(rotation=0, scaling=0, shear=0, deformation_std=0)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("sizes", [SMALLER, LARGER])
def test_contract(ndim, sizes, tmp_path):
    shape = SHAPES[ndim]
    data = {"images": make_image(shape), "segmentation_masks": make_label_map(shape)}
    check_layer(
        RandomSpatialTransform,
        dict(FULL, output_shape=sizes[ndim], placement="random"),
        data,
        identity_when_not_training=False,
        expected_spatial_shape=sizes[ndim],
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_contract_same_shape_with_transform_outputs(ndim, tmp_path):
    shape = SHAPES[ndim]
    data = {"images": make_image(shape), "segmentation_masks": make_label_map(shape)}
    check_layer(
        RandomSpatialTransform,
        dict(FULL, return_transform=True),
        data,
        identity_when_not_training=False,
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_not_training_is_a_centred_crop_or_pad(ndim):
    shape = SHAPES[ndim]
    labels = make_label_map(shape, labels=[0, 4, 7])
    for out_shape in (SMALLER[ndim], LARGER[ndim]):
        layer = RandomSpatialTransform(output_shape=out_shape, **FULL)
        out = to_numpy(layer(labels, training=False))
        expected = np.zeros((2, *out_shape, 1), "int32")
        src, dst = [], []
        for n_in, n_out in zip(shape, out_shape):
            offset = (n_in - n_out) // 2
            if offset >= 0:
                src.append(slice(offset, offset + n_out))
                dst.append(slice(None))
            else:
                src.append(slice(None))
                dst.append(slice(-offset, -offset + n_in))
        expected[(slice(None), *dst)] = labels[(slice(None), *src)]
        np.testing.assert_array_equal(out, expected)


def test_random_placement_gives_integer_crops_covering_all_offsets():
    image = np.arange(20 * 18, dtype="float32").reshape(1, 20, 18, 1)
    images = np.repeat(image, 300, axis=0)
    out = to_numpy(
        RandomSpatialTransform(
            output_shape=(16, 16), placement="random", seed=0, **IDENTITY
        )(images)
    )
    offsets = set()
    for sample in out[..., 0]:
        i, j = divmod(int(sample[0, 0]), 18)
        np.testing.assert_array_equal(sample, image[0, i : i + 16, j : j + 16, 0])
        offsets.add((i, j))
    assert offsets == {(i, j) for i in range(5) for j in range(3)}


@pytest.mark.parametrize("ndim", [2, 3])
def test_displacement_output_reproduces_the_warp(ndim):
    shape = SHAPES[ndim]
    data = {"images": make_image(shape), "segmentation_masks": make_label_map(shape)}
    layer = RandomSpatialTransform(
        output_shape=SMALLER[ndim], return_transform=True, seed=5, **FULL
    )
    out = layer(data)
    again = SpatialTransformer()([data["images"], out["displacement"]])
    np.testing.assert_allclose(to_numpy(again), to_numpy(out["images"]), atol=1e-5)
    labels = SpatialTransformer(interpolation="nearest")(
        [data["segmentation_masks"], out["displacement"]]
    )
    np.testing.assert_array_equal(to_numpy(labels), to_numpy(out["segmentation_masks"]))


def test_bad_output_shape():
    with pytest.raises(
        ValueError, match=r"output_shape.*Received: output_shape=\(8, 8, 8\)"
    ):
        RandomSpatialTransform(output_shape=(8, 8, 8))(
            np.zeros((1, 8, 8, 1), "float32")
        )
    with pytest.raises(
        ValueError, match=r"output_shape.*Received: output_shape=\(8, -1\)"
    ):
        RandomSpatialTransform(output_shape=(8, -1))
    with pytest.raises(ValueError, match="placement.*Received: placement='corner'"):
        RandomSpatialTransform(placement="corner")


def test_identity_ranges_return_input_exactly():
    image = make_image((12, 10))
    out = to_numpy(RandomSpatialTransform(seed=0, **IDENTITY)(image))
    np.testing.assert_array_equal(out, image)


def test_defaults_are_synthseg_and_change_the_input():
    layer = RandomSpatialTransform(return_transform=True, seed=0)
    config = layer.get_config()
    expected = {
        "translation": 0.0,
        "rotation": 15.0,
        "scaling": 0.2,
        "shear": 0.012,
        "deformation_std": 4.0,
        "deformation_grid_shape": 0.04,
        "integration_steps": 7,
    }
    assert {k: config[k] for k in expected} == expected
    image = make_image((48, 48), batch=4)
    out = layer(image)
    assert np.all(np.abs(to_numpy(out["images"]) - image).max(axis=(1, 2, 3)) > 0.05)
    # Both parts act: the affine is not the identity and the displacement is
    # not affine (at 48 voxels the grid has 2 points per axis, so the field is
    # bilinear: its mixed second differences do not vanish).
    affine = to_numpy(out["affine"])
    assert np.all(np.abs(affine - np.eye(3)).max(axis=(1, 2)) > 1e-3)
    displacement = to_numpy(out["displacement"])
    mixed = np.diff(np.diff(displacement, axis=1), axis=2)
    assert np.all(np.abs(mixed).max(axis=(1, 2, 3)) > 1e-4)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"deformation_std": -1}, "deformation_std"),
        ({"deformation_std": (2, 1)}, "deformation_std"),
        ({"affine_probability": 2}, "affine_probability"),
        ({"deformation_probability": -1}, "deformation_probability"),
        ({"deformation_grid_shape": 1}, "deformation_grid_shape"),
        ({"deformation_grid_shape": (4, 0)}, "deformation_grid_shape"),
        ({"integration_steps": -1}, "integration_steps"),
        ({"rotation": "big"}, "rotation"),
        ({"scaling": (-1, 1)}, "scaling"),
        ({"distribution": "cauchy"}, "distribution"),
        ({"return_transform": "yes"}, "return_transform"),
        ({"fill_value": "zero"}, "fill_value"),
    ],
)
def test_errors_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=rf"`{name}`.*Received: {name}="):
        RandomSpatialTransform(**kwargs)


def test_deprecated_svf_shape_alias():
    image = make_image((16, 16), batch=2)
    with pytest.warns(DeprecationWarning, match="`svf_shape`.*`deformation_grid_"):
        old = RandomSpatialTransform(svf_shape=4, seed=5, name="spatial")
    new = RandomSpatialTransform(deformation_grid_shape=4, seed=5, name="spatial")
    assert old.get_config() == new.get_config()
    assert "svf_shape" not in new.get_config()
    np.testing.assert_array_equal(to_numpy(old(image)), to_numpy(new(image)))
    with pytest.raises(ValueError, match="`svf_shape`.*`deformation_grid_shape`"):
        RandomSpatialTransform(deformation_grid_shape=4, svf_shape=4)


def test_old_config_still_loads():
    config = RandomSpatialTransform(deformation_grid_shape=6, seed=1).get_config()
    config["svf_shape"] = config.pop("deformation_grid_shape")
    layer = RandomSpatialTransform.from_config(config)
    assert layer.deformation.grid_shape == 6
    assert layer.get_config()["deformation_grid_shape"] == 6
