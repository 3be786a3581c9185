import itertools
import json
import re

import keras
import numpy as np
import pytest

from synthlayers.layers.random_flip import RandomFlip
from tests.helpers import check_layer
from tests.helpers import make_image
from tests.helpers import make_label_map
from tests.helpers import to_numpy

SHAPES = {2: (8, 10), 3: (6, 8, 10)}


def unique_values(batch, shape):
    """A float map whose values are all distinct, so any flip is visible."""
    size = int(np.prod(shape))
    return np.arange(batch * size, dtype="float32").reshape(batch, *shape, 1)


def read_flips(inputs, outputs, axes):
    """Per sample, the tuple of flags (one per axis) that turns inputs into outputs."""
    flags = []
    for x, y in zip(inputs, outputs, strict=True):
        found = [
            combo
            for combo in itertools.product([False, True], repeat=len(axes))
            if np.array_equal(
                np.flip(x, [a for a, f in zip(axes, combo, strict=True) if f])
                if any(combo)
                else x,
                y,
            )
        ]
        assert len(found) == 1, "output is not a flip of its input"
        flags.append(found[0])
    return np.asarray(flags)


@pytest.mark.parametrize("ndim", [2, 3])
def test_contract(ndim, tmp_path):
    shape = SHAPES[ndim]
    data = {
        "images": make_image(shape, channels=2),
        "segmentation_masks": make_label_map(shape, labels=[0, 2, 3, 41, 42]),
    }
    check_layer(
        RandomFlip,
        {"axes": tuple(range(ndim)), "label_swap": {2: 41, 3: 42}},
        data,
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_contract_bare_label_map(ndim, tmp_path):
    labels = make_label_map(SHAPES[ndim], labels=[0, 2, 3, 41, 42])
    check_layer(RandomFlip, {"axes": (0, 1)}, labels, tmp_path=tmp_path)


@pytest.mark.parametrize("ndim", [2, 3])
def test_probability_one_flips_every_axis(ndim):
    shape = SHAPES[ndim]
    images = unique_values(3, shape)
    labels = images.astype("int32")
    axes = tuple(range(ndim))
    out = RandomFlip(axes=axes, probability=1.0, seed=0)(
        {"images": images, "segmentation_masks": labels}
    )
    expected = np.flip(images, [a + 1 for a in axes])
    np.testing.assert_array_equal(to_numpy(out["images"]), expected)
    np.testing.assert_array_equal(
        to_numpy(out["segmentation_masks"]), expected.astype("int32")
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_probability_one_flips_only_given_axes(ndim):
    shape = SHAPES[ndim]
    images = unique_values(2, shape)
    out = RandomFlip(axes=(ndim - 1,), probability=1.0, seed=0)(images)
    np.testing.assert_array_equal(to_numpy(out), np.flip(images, ndim))


def test_probability_zero_and_training_false_are_identity():
    shape = SHAPES[3]
    data = {
        "images": unique_values(4, shape),
        "segmentation_masks": make_label_map(shape, batch=4),
    }
    for layer, training in [
        (RandomFlip(axes=(0, 1, 2), probability=0.0, label_swap={0: 1}, seed=1), True),
        (RandomFlip(axes=(0, 1, 2), probability=1.0, label_swap={0: 1}, seed=1), False),
    ]:
        out = layer(data, training=training)
        for key in data:
            np.testing.assert_array_equal(to_numpy(out[key]), data[key])


def test_flip_frequency_and_per_sample_per_axis_draws():
    """About `probability` of the samples flip along each axis, independently."""
    batch, probability, axes = 400, 0.3, (0, 1)
    images = unique_values(batch, (4, 5))
    labels = (images + 7).astype("int32")
    out = RandomFlip(axes=axes, probability=probability, seed=3)(
        {"images": images, "segmentation_masks": labels}
    )
    flips = read_flips(images[..., 0], to_numpy(out["images"])[..., 0], axes)
    # Label maps got exactly the same flips as the images.
    mask_flips = read_flips(
        labels[..., 0], to_numpy(out["segmentation_masks"])[..., 0], axes
    )
    np.testing.assert_array_equal(flips, mask_flips)
    # Binomial(400, 0.3): standard deviation 0.023; 0.08 is about 3.5 of them.
    np.testing.assert_allclose(flips.mean(0), probability, atol=0.08)
    both = np.mean(flips[:, 0] & flips[:, 1])
    assert abs(both - probability**2) < 0.05
    # A second call draws again.
    again = RandomFlip(axes=axes, probability=probability, seed=3)
    again(images)
    second = read_flips(images[..., 0], to_numpy(again(images))[..., 0], axes)
    assert not np.array_equal(second, flips)


def test_same_seed_same_flips():
    images = unique_values(16, (4, 5))
    first = to_numpy(RandomFlip(axes=(0, 1), seed=11)(images))
    second = to_numpy(RandomFlip(axes=(0, 1), seed=11)(images))
    np.testing.assert_array_equal(first, second)


def test_label_swap_on_left_right_flip():
    labels = np.array([[2, 0, 3, 41, 100, 5]], "int32").reshape(1, 6, 1, 1)
    out = RandomFlip(axes=(0,), probability=1.0, label_swap={2: 41, 3: 42}, seed=0)(
        labels
    )
    # Swap 2 <-> 41 and 3 <-> 42 (both ways), keep others, then flip.
    assert to_numpy(out).ravel().tolist() == [5, 100, 2, 42, 0, 41]


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "int64"])
def test_label_swap_keeps_dtype(dtype):
    labels = np.array([2, 41, 7, 255], dtype).reshape(1, 4, 1, 1)
    out = RandomFlip(axes=(0,), probability=1.0, label_swap=[(2, 41)], seed=0)(labels)
    # The backend's own dtype for the input (JAX without x64 has no int64).
    expected = keras.backend.standardize_dtype(
        keras.ops.convert_to_tensor(labels).dtype
    )
    assert keras.backend.standardize_dtype(out.dtype) == expected
    assert to_numpy(out).ravel().tolist() == [255, 7, 2, 41]


def test_label_swap_only_for_samples_flipped_along_left_right_axis():
    """Samples flipped only along the other axis keep their labels; images are
    never value-remapped."""
    batch, shape, axes = 64, (4, 6), (0, 1)
    rng = np.random.default_rng(0)
    labels = rng.choice([0, 2, 3, 41, 42, 9], size=(batch, *shape, 1)).astype("int32")
    positions = unique_values(batch, shape)
    layer = RandomFlip(
        axes=axes, probability=0.5, label_swap={2: 41, 3: 42}, left_right_axis=1, seed=5
    )
    out = layer({"images": positions, "segmentation_masks": labels})
    flips = read_flips(positions[..., 0], to_numpy(out["images"])[..., 0], axes)
    assert len({tuple(f) for f in flips}) == 4  # Every combination occurs.
    swap = np.arange(43)
    swap[[2, 41, 3, 42]] = [41, 2, 42, 3]
    for b in range(batch):
        expected = swap[labels[b]] if flips[b, 1] else labels[b]
        flip_axes = [a for a, f in zip(axes, flips[b], strict=True) if f]
        expected = np.flip(expected, flip_axes) if flip_axes else expected
        np.testing.assert_array_equal(to_numpy(out["segmentation_masks"])[b], expected)
    # Images keep their values, only moved.
    np.testing.assert_array_equal(
        np.sort(to_numpy(out["images"]).ravel()), positions.ravel()
    )


def test_images_in_compute_dtype():
    images = unique_values(2, (4, 5))
    out = RandomFlip(probability=1.0, dtype="mixed_float16", seed=0)(images)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    out = RandomFlip(probability=1.0, seed=0)(images.astype("float16"))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


def test_axes_checked_against_rank_at_call():
    layer = RandomFlip(axes=(0, 2))
    layer(np.zeros((1, 2, 3, 4, 1), "float32"))  # 3D: fine.
    with pytest.raises(ValueError, match=re.escape("axes=(0, 2)")) as info:
        layer(np.zeros((1, 2, 3, 1), "float32"))
    assert "`axes`" in str(info.value)
    with pytest.raises(ValueError, match=re.escape("axes=(0, 2)")):
        layer(keras.KerasTensor((None, None, None, 1), "float32"))


def test_float_label_map_raises():
    with pytest.raises(ValueError, match="segmentation_masks"):
        RandomFlip()({"segmentation_masks": np.zeros((1, 4, 4, 1), "float32")})


@pytest.mark.parametrize(
    "kwargs, name, received",
    [
        ({"axes": ()}, "axes", "()"),
        ({"axes": (0, 0)}, "axes", "(0, 0)"),
        ({"axes": (-1,)}, "axes", "(-1,)"),
        ({"axes": (0.0,)}, "axes", "(0.0,)"),
        ({"axes": "0"}, "axes", "'0'"),
        ({"probability": 1.5}, "probability", "1.5"),
        ({"probability": "0.5"}, "probability", "'0.5'"),
        ({"label_swap": {"2": 41}}, "label_swap", "{'2': 41}"),
        ({"label_swap": {2: 41.0}}, "label_swap", "{2: 41.0}"),
        ({"label_swap": {2: -41}}, "label_swap", "{2: -41}"),
        ({"label_swap": {2: 41, 41: 2}}, "label_swap", "{2: 41, 41: 2}"),
        ({"label_swap": {2: 2}}, "label_swap", "{2: 2}"),
        ({"label_swap": [(2, 41, 3)]}, "label_swap", "[(2, 41, 3)]"),
        ({"label_swap": 3}, "label_swap", "3"),
        ({"left_right_axis": -1}, "left_right_axis", "-1"),
        ({"left_right_axis": 1.0}, "left_right_axis", "1.0"),
        (
            {"axes": (0, 2), "left_right_axis": 1, "label_swap": {2: 41}},
            "left_right_axis",
            "1",
        ),
        ({"seed": 1.5}, "seed", "1.5"),
    ],
)
def test_bad_arguments(kwargs, name, received):
    with pytest.raises(ValueError) as info:
        RandomFlip(**kwargs)
    message = str(info.value)
    assert f"`{name}`" in message and f"{name}={received}" in message, message


def test_left_right_axis_only_checked_with_label_swap():
    RandomFlip(axes=(1,), left_right_axis=0)  # No label_swap: no error.


def test_config_is_json_and_round_trips():
    layer = RandomFlip(
        axes=(1, 0),
        probability=0.25,
        label_swap={2: 41, 3: 42},
        left_right_axis=1,
        seed=4,
    )
    config = json.loads(json.dumps(layer.get_config()))
    restored = RandomFlip.from_config(config)
    assert restored.get_config() == layer.get_config()
    assert restored.label_swap == [(2, 41), (3, 42)]
    assert config["label_swap"] == [[2, 41], [3, 42]]
    assert RandomFlip.from_config(RandomFlip().get_config()).label_swap is None


def test_label_swap_in_model_with_unknown_spatial_shape():
    """The swap works in a functional model built with `None` spatial dims.

    (`Model.predict` runs with `training=False`, which overrides the
    `training=True` given when the model was built, hence the direct call.)
    """
    labels = np.array([2, 0, 41, 7], "int32").reshape(1, 4, 1, 1)
    inputs = keras.Input((None, None, 1), dtype="int32")
    layer = RandomFlip(axes=(0, 1), probability=1.0, label_swap={2: 41}, seed=0)
    model = keras.Model(inputs, layer(inputs, training=True))
    out = to_numpy(model(labels, training=True))
    assert out.ravel().tolist() == [7, 2, 0, 41]
    assert model.predict(labels, verbose=0).ravel().tolist() == [2, 0, 41, 7]
    image = make_image((4, 4), batch=1)
    np.testing.assert_array_equal(
        to_numpy(RandomFlip(axes=(0, 1), probability=1.0, seed=0)(image)),
        image[:, ::-1, ::-1],
    )
