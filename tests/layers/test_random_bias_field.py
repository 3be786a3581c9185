import numpy as np
import pytest
from scipy import ndimage

from synthlayers.layers.random_bias_field import RandomBiasField
from tests.helpers import check_layer
from tests.helpers import make_image
from tests.helpers import make_label_map
from tests.helpers import to_numpy

SHAPES = {2: (17, 13), 3: (9, 13, 7)}


@pytest.mark.parametrize("ndim", [2, 3])
def test_contract(ndim, tmp_path):
    shape = SHAPES[ndim]
    data = {
        "images": make_image(shape, channels=2),
        "segmentation_masks": make_label_map(shape),
    }
    layer, out = check_layer(
        RandomBiasField, {"std": 0.5, "grid_shape": 0.3}, data, tmp_path=tmp_path
    )
    np.testing.assert_array_equal(
        to_numpy(out["segmentation_masks"]), data["segmentation_masks"]
    )


def test_contract_return_field(tmp_path):
    image = make_image(SHAPES[3])
    layer, out = check_layer(
        RandomBiasField,
        {"std": (0.2, 0.6), "grid_shape": 3, "return_field": True},
        image,
        identity_when_not_training=False,
        tmp_path=tmp_path,
    )
    assert set(out) == {"images", "bias_field"}
    evaluated = layer(image, training=False)
    np.testing.assert_array_equal(to_numpy(evaluated["images"]), image)
    np.testing.assert_array_equal(to_numpy(evaluated["bias_field"]), 1.0)


@pytest.mark.parametrize("ndim", [2, 3])
def test_field_multiplies_all_channels(ndim):
    image = make_image(SHAPES[ndim], channels=3, batch=4) + 5.0
    out = RandomBiasField(std=0.5, grid_shape=4, return_field=True, seed=0)(image)
    field = to_numpy(out["bias_field"])
    assert field.shape == (*image.shape[:-1], 1)
    assert np.all(field > 0)
    np.testing.assert_allclose(to_numpy(out["images"]), image * field, rtol=1e-5)


def test_log_field_std_and_smoothness():
    """Control values (on the grid, corners aligned) have the drawn std, and
    the log field is their linear interpolation."""
    shape, control = (17, 13), (5, 4)
    image = np.ones((256, *shape, 1), "float32")
    layer = RandomBiasField(
        std=(0.3, 0.3), grid_shape=control, return_field=True, seed=1
    )
    log_field = np.log(to_numpy(layer(image)["bias_field"])[..., 0]).astype("float64")
    values = log_field[:, ::4, ::4]  # control points at 0, 4, 8, ... on both axes
    assert values.shape == (256, *control)
    np.testing.assert_allclose(values.std(), 0.3, rtol=0.05)
    assert abs(values.mean()) < 0.02
    for b in range(4):
        expected = ndimage.zoom(
            values[b], np.divide(shape, control), order=1, grid_mode=False
        )
        np.testing.assert_allclose(log_field[b], expected, atol=1e-5)
    # Smooth: neighbouring voxels differ ~4x less than independent values
    # of the same std would (mean |difference| 2 * 0.3 / sqrt(pi)).
    step = np.abs(np.diff(log_field, axis=1)).mean()
    assert step < 0.35 * 2 * 0.3 / np.sqrt(np.pi)


def test_per_sample_std_spans_the_range():
    image = np.ones((128, 9, 9, 1), "float32")
    layer = RandomBiasField(std=0.8, grid_shape=9, return_field=True, seed=2)
    stds = np.log(to_numpy(layer(image)["bias_field"])).std(axis=(1, 2, 3))
    assert stds.min() < 0.1 and stds.max() > 0.65
    assert np.all(stds <= 0.8 * 2.5)


def test_fraction_shape_and_probability():
    image = np.ones((200, 40, 8, 1), "float32")
    layer = RandomBiasField(
        std=0.5, grid_shape=0.1, probability=0.25, return_field=True, seed=3
    )
    field = to_numpy(layer(image)["bias_field"])
    changed = np.any(field != 1.0, axis=(1, 2, 3))
    assert 0.15 < changed.mean() < 0.35
    # grid_shape 0.1 -> ceil(4) x max(2, ceil(0.8)) = 4 x 2 control points: the log
    # field is linear along the second axis (2 points).
    log_field = np.log(field[changed, ..., 0]).astype("float64")
    np.testing.assert_allclose(np.diff(log_field, 2, axis=2), 0, atol=1e-5)
    assert np.abs(np.diff(log_field, 2, axis=1)).max() > 1e-3


def test_label_map_alone_is_untouched():
    labels = make_label_map((8, 8))
    out = RandomBiasField(seed=0)(labels)
    np.testing.assert_array_equal(to_numpy(out), labels)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"std": -1.0}, "std"),
        ({"std": (0.5, 0.1)}, "std"),
        ({"std": "big"}, "std"),
        ({"grid_shape": 1}, "grid_shape"),
        ({"grid_shape": 0.0}, "grid_shape"),
        ({"grid_shape": 1.5}, "grid_shape"),
        ({"grid_shape": (4, -2)}, "grid_shape"),
        ({"probability": 2.0}, "probability"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match="Received") as info:
        RandomBiasField(**kwargs)
    assert name in str(info.value)


def test_grid_shape_length_must_match_rank():
    with pytest.raises(ValueError, match="`grid_shape`.*Received: grid_shape="):
        RandomBiasField(grid_shape=(3, 3, 3), seed=0)(make_image((8, 8)))


def test_deprecated_shape_alias():
    image = make_image((12, 12), batch=2)
    with pytest.warns(DeprecationWarning, match="`shape`.*`grid_shape`"):
        old = RandomBiasField(shape=4, seed=5, name="bias")
    new = RandomBiasField(grid_shape=4, seed=5, name="bias")
    assert old.get_config() == new.get_config()
    assert "shape" not in new.get_config()
    np.testing.assert_array_equal(to_numpy(old(image)), to_numpy(new(image)))
    with pytest.raises(ValueError, match="`shape`.*`grid_shape`"):
        RandomBiasField(grid_shape=4, shape=4)


def test_old_config_still_loads():
    config = RandomBiasField(grid_shape=[3, 5], seed=1).get_config()
    config["shape"] = config.pop("grid_shape")
    layer = RandomBiasField.from_config(config)
    assert layer.grid_shape == (3, 5)
    assert layer.get_config()["grid_shape"] == [3, 5]
