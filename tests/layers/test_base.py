"""The base-class contract: pass-through keys, the `seed` argument, the dtype rule."""

import keras
import numpy as np
import pytest

from synthlayers.layers import OneHot
from synthlayers.layers import RandomAffine
from synthlayers.layers import RandomBiasField
from synthlayers.layers import RandomDeformation
from synthlayers.layers import RandomFlip
from synthlayers.layers import RandomGamma
from synthlayers.layers import RandomGaussianBlur
from synthlayers.layers import RandomGaussianNoise
from synthlayers.layers import RandomLabelMap
from synthlayers.layers import RandomResolution
from synthlayers.layers import RandomSpatialTransform
from synthlayers.layers import RemapLabels
from tests.helpers import make_image
from tests.helpers import make_label_map
from tests.helpers import to_numpy

IMAGES = "images"
MASKS = "segmentation_masks"


def _data(shape=(16, 14), batch=2):
    return {IMAGES: make_image(shape, batch=batch), MASKS: make_label_map(shape)}


def test_transform_outputs_survive_a_pipeline():
    """`return_transform` outputs of a first layer pass a second one unchanged."""
    data = _data()
    pipeline = keras.layers.Pipeline(
        [
            RandomSpatialTransform(return_transform=True, seed=0),
            RandomGamma(seed=1),
        ]
    )
    out = pipeline(data)
    assert set(out) == {IMAGES, MASKS, "displacement", "affine"}
    # The same two layers, called one after the other.
    first = RandomSpatialTransform(return_transform=True, seed=0)(data)
    second = RandomGamma(seed=1)(first)
    for key in ("displacement", "affine"):
        np.testing.assert_array_equal(to_numpy(out[key]), to_numpy(first[key]))
        np.testing.assert_array_equal(to_numpy(second[key]), to_numpy(first[key]))
    np.testing.assert_allclose(to_numpy(out[IMAGES]), to_numpy(second[IMAGES]))
    np.testing.assert_array_equal(to_numpy(out[MASKS]), to_numpy(first[MASKS]))


def test_pipeline_in_a_functional_model_keeps_the_extra_outputs():
    inputs = {
        IMAGES: keras.Input((16, 16, 1), name=IMAGES),
        MASKS: keras.Input((16, 16, 1), dtype="int32", name=MASKS),
    }
    pipeline = keras.layers.Pipeline(
        [RandomBiasField(return_field=True, seed=0), RandomFlip(seed=1)]
    )
    outputs = pipeline(inputs)
    assert set(outputs) == {IMAGES, MASKS, "bias_field"}
    assert tuple(outputs["bias_field"].shape) == (None, 16, 16, 1)


def test_output_spec_passes_unknown_keys_through():
    spec = RandomGamma().compute_output_spec(
        {
            IMAGES: keras.KerasTensor((2, None, 8, 1), "float32"),
            "displacement": keras.KerasTensor((2, None, 8, 2), "float32"),
        }
    )
    assert set(spec) == {IMAGES, "displacement"}
    assert tuple(spec["displacement"].shape) == (2, None, 8, 2)


def test_a_layer_own_extra_output_replaces_a_passed_one():
    data = {**_data(), "bias_field": np.zeros((2, 16, 14, 1), "float32")}
    out = RandomBiasField(return_field=True, seed=0)(data)
    assert np.all(to_numpy(out["bias_field"]) > 0)
    kept = RandomAffine(seed=0)(data)
    np.testing.assert_array_equal(to_numpy(kept["bias_field"]), 0.0)


def test_label_layers_pass_unknown_keys_through():
    data = {MASKS: make_label_map((8, 8)), "affine": np.eye(3)[None]}
    out = OneHot(4)(RemapLabels([0, 1, 2, 3])(data))
    np.testing.assert_array_equal(to_numpy(out["affine"]), np.eye(3)[None])


def test_dict_without_images_or_masks_is_an_error():
    with pytest.raises(ValueError, match="Received keys: \\['displacement'\\]"):
        RandomGamma()({"displacement": np.zeros((1, 8, 8, 2), "float32")})


# get_random_transformation(data, training=True, seed=None) -------------------

LAYERS = [
    (RandomAffine, {}),
    (RandomDeformation, {"grid_shape": 4}),
    (RandomSpatialTransform, {"placement": "random", "output_shape": (12, 12)}),
    (RandomBiasField, {}),
    (RandomFlip, {}),
    (RandomGamma, {}),
    (RandomGaussianBlur, {}),
    (RandomGaussianNoise, {}),
    (RandomResolution, {"noise_std": 0.1}),
]


def _flat(transformation):
    return [
        to_numpy(v)
        for _, v in sorted(transformation.items())
        if v is not None and not isinstance(v, list)
    ] + [to_numpy(a) for a in transformation.get("coordinate_axes", [])]


@pytest.mark.parametrize("layer_class, kwargs", LAYERS)
def test_seed_argument_replaces_the_layer_generator(layer_class, kwargs):
    data = _data(batch=8)
    layer = layer_class(seed=1, **kwargs)
    state = to_numpy(layer.seed_generator.state)
    first = layer.get_random_transformation(data, seed=keras.random.SeedGenerator(7))
    again = layer.get_random_transformation(data, seed=keras.random.SeedGenerator(7))
    # Drawn from the given generator only: same draws, the layer's untouched.
    np.testing.assert_array_equal(to_numpy(layer.seed_generator.state), state)
    for a, b in zip(_flat(first), _flat(again), strict=True):
        np.testing.assert_array_equal(a, b)
    other = layer.get_random_transformation(data, seed=keras.random.SeedGenerator(8))
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(_flat(first), _flat(other), strict=True)
    )
    own = layer.get_random_transformation(data)
    assert not np.array_equal(to_numpy(layer.seed_generator.state), state)
    assert own is not None
    assert layer.get_random_transformation(data, training=False) is None or (
        layer_class is RandomSpatialTransform
    )


def test_seed_argument_of_random_label_map():
    layer = RandomLabelMap((12, 12), num_labels=4, seed=1)
    batch = np.zeros((2, 1))
    first = layer.get_random_transformation(batch, seed=keras.random.SeedGenerator(3))
    again = layer.get_random_transformation(batch, seed=keras.random.SeedGenerator(3))
    np.testing.assert_array_equal(to_numpy(first["noise"]), to_numpy(again["noise"]))
    np.testing.assert_array_equal(
        to_numpy(layer.generate(first)), to_numpy(layer.generate(again))
    )


# The dtype rule ---------------------------------------------------------------


@pytest.mark.parametrize(
    "layer",
    [
        RandomAffine(seed=0),
        RandomFlip(seed=0),
        RandomGamma(seed=0),
        RandomBiasField(seed=0),
        RandomGaussianBlur(seed=0),
        RandomGaussianNoise(seed=0),
        RandomResolution(seed=0),
    ],
    ids=lambda layer: type(layer).__name__,
)
@pytest.mark.parametrize("training", [True, False])
def test_integer_images_come_out_in_the_compute_dtype(layer, training):
    images = np.arange(2 * 8 * 8).reshape(2, 8, 8, 1).astype("uint8")
    out = layer({IMAGES: images}, training=training)[IMAGES]
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    if not training:
        np.testing.assert_array_equal(to_numpy(out), images.astype("float32"))
    spec = layer.compute_output_spec({IMAGES: keras.KerasTensor((2, 8, 8, 1), "uint8")})
    assert spec[IMAGES].dtype == "float32"


@pytest.mark.parametrize("dtype", ["float16", "mixed_float16"])
def test_images_follow_the_layer_dtype_policy(dtype):
    images = make_image((12, 12))
    layer = RandomSpatialTransform(seed=0, dtype=dtype)
    expected = layer.compute_dtype
    for training in (True, False):
        out = layer(images, training=training)
        assert keras.backend.standardize_dtype(out.dtype) == expected
        assert np.all(np.isfinite(to_numpy(out)))


def test_no_op_cast_returns_the_same_tensor():
    layer = RandomGamma()
    images = keras.ops.convert_to_tensor(make_image((8, 8)))
    assert layer.cast_images(images) is images
    assert (
        keras.backend.standardize_dtype(
            layer.cast_images(keras.ops.cast(images, "int32")).dtype
        )
        == "float32"
    )


def test_label_layers_keep_images_untouched():
    images = np.arange(16, dtype="int16").reshape(1, 4, 4, 1)
    out = RemapLabels([0, 1])({IMAGES: images, MASKS: np.zeros_like(images)})
    assert keras.backend.standardize_dtype(out[IMAGES].dtype) == "int16"
