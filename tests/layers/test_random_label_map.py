import json

import keras
import numpy as np
import pytest
from scipy import ndimage

from synthlayers.layers.random_label_map import RandomLabelMap
from tests.helpers import to_numpy

MASKS = "segmentation_masks"
SHAPES = {2: (32, 32), 3: (24, 24, 24)}


def generate(layer, batch=4):
    return to_numpy(layer(np.zeros((batch, 1), "float32"))[MASKS])


def neighbour_agreement(labels):
    """Fraction of interior voxels whose 2 * ndim neighbours share their label."""
    labels = labels[..., 0]
    ndim = labels.ndim - 1
    inner = (slice(None),) + (slice(1, -1),) * ndim
    agree = np.ones(labels[inner].shape, bool)
    for axis in range(1, ndim + 1):
        for step in (1, -1):
            agree &= labels[inner] == np.roll(labels, step, axis=axis)[inner]
    return agree.mean()


@pytest.mark.parametrize("ndim", [2, 3])
def test_output_dtype_shape_and_values(ndim):
    shape = SHAPES[ndim]
    layer = RandomLabelMap(shape, num_labels=5, seed=0)
    out = layer(np.zeros((3, 1), "float32"))
    assert set(out) == {MASKS}
    assert keras.backend.standardize_dtype(out[MASKS].dtype) == "int32"
    labels = to_numpy(out[MASKS])
    assert labels.shape == (3, *shape, 1)
    assert labels.min() >= 0 and labels.max() < 5


@pytest.mark.parametrize("ndim", [2, 3])
def test_matches_scipy_argmax_of_warped_noise(ndim):
    """Reference: per sample and label, the noise sampled (SciPy, order 1) at
    `scale * (x + u(x)) + margin`, then the argmax over the labels."""
    from synthlayers.layers.random_label_map import MARGIN
    from synthlayers.ops.resize import resize

    shape = SHAPES[ndim]
    layer = RandomLabelMap(shape, num_labels=5, warp_std=3.0, seed=7)
    batch = 2
    transformation = layer.get_random_transformation(np.zeros((batch, 1)))
    got = to_numpy(layer.generate(transformation))[..., 0]

    noise = to_numpy(transformation["noise"])[..., 0]
    warps = to_numpy(resize(transformation["displacement"], shape))
    scale = to_numpy(transformation["scale"]).reshape(-1)
    grid = np.stack(np.meshgrid(*map(np.arange, shape), indexing="ij"), -1)
    values = np.empty((batch * 5, *shape))
    for i in range(batch * 5):
        points = scale[i] * (grid + warps[i]) + MARGIN
        values[i] = ndimage.map_coordinates(
            noise[i].astype("float64"),
            np.moveaxis(points, -1, 0),
            order=1,
            mode="nearest",
        )
    expected = values.reshape(batch, 5, *shape).argmax(axis=1)
    assert (got == expected).mean() > 0.999


def test_input_only_gives_the_batch_size():
    layer = RandomLabelMap((16, 12), seed=0)
    labels = np.zeros((2, 7, 9, 1), "int32")
    assert generate(layer, batch=5).shape == (5, 16, 12, 1)
    assert to_numpy(layer(labels)[MASKS]).shape == (2, 16, 12, 1)
    assert to_numpy(layer({MASKS: labels})[MASKS]).shape == (2, 16, 12, 1)


@pytest.mark.parametrize("ndim", [2, 3])
def test_symbolic_output_spec(ndim):
    shape = SHAPES[ndim]
    out = RandomLabelMap(shape)(keras.Input((1,)))
    assert tuple(out[MASKS].shape) == (None, *shape, 1)
    assert out[MASKS].dtype == "int32"


@pytest.mark.parametrize("ndim", [2, 3])
def test_most_labels_present_at_default_settings(ndim):
    layer = RandomLabelMap(SHAPES[ndim], num_labels=16, seed=1)
    labels = generate(layer, batch=32)
    present = np.array([len(np.unique(sample)) for sample in labels])
    assert present.max() == 16
    # 2D at 32^2 is the harder case: the coarsest noise has only 1 interval
    # per axis there, so a few labels never win. Measured: mean ~12/16 (2D),
    # ~14.5/16 (3D).
    assert present.mean() >= (0.65 if ndim == 2 else 0.8) * 16
    if ndim == 3:
        assert np.mean(present >= 0.8 * 16) >= 0.6


@pytest.mark.parametrize("ndim", [2, 3])
def test_regions_are_smooth_blobs(ndim):
    shape = (64, 64) if ndim == 2 else (32, 32, 32)
    coarse = generate(RandomLabelMap(shape, num_labels=4, scale=1 / 32, seed=2), 8)
    fine = generate(RandomLabelMap(shape, num_labels=4, scale=1 / 8, seed=2), 8)
    # White-noise labels would give (1/4)^(2 ndim); ours are large regions.
    assert neighbour_agreement(coarse) > 0.8
    assert neighbour_agreement(coarse) > neighbour_agreement(fine)
    # Few connected pieces per present label.
    pieces = [
        ndimage.label(sample[..., 0] == k)[1]
        for sample in coarse
        for k in np.unique(sample)
    ]
    assert np.mean(pieces) < 4


def test_warps_move_the_boundaries():
    """Same noise and scale, with and without warps: different maps."""
    shape = (48, 48)
    still = generate(RandomLabelMap(shape, num_labels=4, warp_std=0.0, seed=3))
    warped = generate(RandomLabelMap(shape, num_labels=4, warp_std=8.0, seed=3))
    assert 0.05 < np.mean(still != warped) < 0.9


def test_different_per_sample_and_per_call():
    layer = RandomLabelMap(SHAPES[2], num_labels=8, seed=4)
    first, second = generate(layer), generate(layer)
    assert not np.array_equal(first, second)
    for i in range(1, len(first)):
        assert not np.array_equal(first[0], first[i])


def test_same_seed_same_output():
    one = generate(RandomLabelMap(SHAPES[3], seed=5))
    two = generate(RandomLabelMap(SHAPES[3], seed=5))
    np.testing.assert_array_equal(one, two)
    other = generate(RandomLabelMap(SHAPES[3], seed=6))
    assert not np.array_equal(one, other)


def test_training_is_ignored():
    layer = RandomLabelMap(SHAPES[2], seed=7)
    x = np.zeros((2, 1), "float32")
    out = to_numpy(layer(x, training=False)[MASKS])
    assert out.shape == (2, *SHAPES[2], 1)
    assert not np.array_equal(out, to_numpy(layer(x, training=False)[MASKS]))


def test_config_round_trip():
    layer = RandomLabelMap(
        (20, 16, 12),
        num_labels=6,
        scale=(0.1, 0.2),
        warp_std=(1, 3),
        warp_grid_shape=(3, 4, 2),
        seed=8,
        name="labels",
    )
    config = layer.get_config()
    json.dumps(config)
    assert config["output_shape"] == [20, 16, 12]
    assert config["scale"] == [0.1, 0.2]
    assert config["warp_std"] == [1.0, 3.0]
    assert config["warp_grid_shape"] == [3, 4, 2]
    assert "shape" not in config and "warp_shape" not in config
    clone = RandomLabelMap.from_config(config)
    assert clone.get_config() == config
    np.testing.assert_array_equal(generate(clone), generate(layer))
    restored = RandomLabelMap.from_config(json.loads(json.dumps(config)))
    assert restored.get_config() == config


def test_single_scale_is_fixed():
    assert RandomLabelMap((8, 8), scale=0.25).get_config()["scale"] == [0.25, 0.25]


@pytest.mark.parametrize("ndim", [2, 3])
def test_keras_save_and_load(ndim, tmp_path):
    shape = (16, 12) if ndim == 2 else (12, 10, 8)
    inputs = keras.Input((1,))
    model = keras.Model(inputs, RandomLabelMap(shape, num_labels=5, seed=9)(inputs))
    path = str(tmp_path / "label_map.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.layers[-1].get_config() == model.layers[-1].get_config()
    out = to_numpy(loaded(np.zeros((3, 1), "float32"))[MASKS])
    assert out.shape == (3, *shape, 1)
    assert out.min() >= 0 and out.max() < 5


@pytest.mark.slow
@pytest.mark.parametrize("ndim", [2, 3])
def test_compiled_predict(ndim):
    shape = (16, 12) if ndim == 2 else (12, 10, 8)
    inputs = keras.Input((1,))
    model = keras.Model(inputs, RandomLabelMap(shape, num_labels=5, seed=10)(inputs))
    model.compile(jit_compile=keras.backend.backend() in ("tensorflow", "jax"))
    x = np.zeros((6, 1), "float32")
    first = model.predict(x, batch_size=3, verbose=0)[MASKS]
    second = model.predict(x, batch_size=3, verbose=0)[MASKS]
    assert first.shape == (6, *shape, 1)
    assert first.dtype == np.int32
    assert first.min() >= 0 and first.max() < 5
    assert not np.array_equal(first[:3], first[3:])  # batches differ
    assert not np.array_equal(first, second)  # calls differ


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"output_shape": None}, "output_shape"),
        ({"output_shape": (8,)}, "output_shape"),
        ({"output_shape": (8, 8, 8, 8)}, "output_shape"),
        ({"output_shape": (8, 1)}, "output_shape"),
        ({"output_shape": (8, 8.0)}, "output_shape"),
        ({"output_shape": 8}, "output_shape"),
        ({"num_labels": 1}, "num_labels"),
        ({"num_labels": 2.0}, "num_labels"),
        ({"scale": 0}, "scale"),
        ({"scale": 1.5}, "scale"),
        ({"scale": (0.2, 0.1)}, "scale"),
        ({"scale": (0.0, 0.1)}, "scale"),
        ({"scale": "big"}, "scale"),
        ({"warp_std": -1}, "warp_std"),
        ({"warp_std": (3, 1)}, "warp_std"),
        ({"warp_grid_shape": 1}, "warp_grid_shape"),
        ({"warp_grid_shape": (4, 4, 4)}, "warp_grid_shape"),
        ({"seed": 1.5}, "seed"),
    ],
)
def test_bad_arguments(kwargs, name):
    kwargs = {"output_shape": (8, 8), **kwargs}
    with pytest.raises(ValueError, match=f"`{name}`.*Received: {name}="):
        RandomLabelMap(**kwargs)


def test_deprecated_shape_and_warp_shape_aliases():
    with pytest.warns(DeprecationWarning) as record:
        old = RandomLabelMap(shape=(12, 10), warp_shape=4, seed=3, name="maps")
    messages = sorted(str(w.message) for w in record)
    assert len(messages) == 2
    assert "`output_shape`" in messages[0] and "`shape`" in messages[0]
    assert "`warp_grid_shape`" in messages[1] and "`warp_shape`" in messages[1]
    new = RandomLabelMap(output_shape=(12, 10), warp_grid_shape=4, seed=3, name="maps")
    assert old.get_config() == new.get_config()
    np.testing.assert_array_equal(generate(old), generate(new))
    with pytest.raises(ValueError, match="`shape`.*`output_shape`"):
        RandomLabelMap((8, 8), shape=(8, 8))
    with pytest.raises(ValueError, match="`warp_shape`.*`warp_grid_shape`"):
        RandomLabelMap((8, 8), warp_grid_shape=4, warp_shape=4)


def test_old_config_still_loads():
    config = RandomLabelMap((12, 10), warp_grid_shape=4, seed=3).get_config()
    config["shape"] = config.pop("output_shape")
    config["warp_shape"] = config.pop("warp_grid_shape")
    layer = RandomLabelMap.from_config(config)
    assert layer.output_shape == (12, 10)
    assert layer.sampler.grid_shape == 4
