import keras
import numpy as np
import pytest

from synthlayers.layers import LabelsToImage
from synthlayers.layers import LabelsToImagePair
from synthlayers.layers import RandomLabelMap
from synthlayers.layers.labels_to_image_pair import FIXED_IMAGES
from synthlayers.layers.labels_to_image_pair import FIXED_MASKS
from synthlayers.layers.labels_to_image_pair import MOVING_IMAGES
from synthlayers.layers.labels_to_image_pair import MOVING_MASKS
from tests.helpers import to_numpy

SHAPES = {2: (32, 32), 3: (16, 16, 16)}
KEYS = (MOVING_IMAGES, MOVING_MASKS, FIXED_IMAGES, FIXED_MASKS)


def nested_squares(ndim, batch=2, values=(0, 2, 41)):
    shape = SHAPES[ndim]
    labels = np.full((batch, *shape, 1), values[0], "int32")
    n = shape[0]
    outer = (slice(None), *[slice(n // 4, 3 * n // 4)] * ndim)
    inner = (slice(None), *[slice(3 * n // 8, 5 * n // 8)] * ndim)
    labels[outer] = values[1]
    labels[inner] = values[2]
    return labels


def outputs(pair, data, **kwargs):
    return {k: to_numpy(v) for k, v in pair(data, **kwargs).items()}


@pytest.mark.parametrize("ndim", [2, 3])
def test_one_label_map_shapes_dtypes_and_independent_draws(ndim):
    labels = nested_squares(ndim)
    pair = LabelsToImagePair.brains([0, 2, 41], deformation_std=3.0, seed=1)
    out = outputs(pair, labels)
    assert set(out) == set(KEYS)
    for key in KEYS:
        assert out[key].shape == (2, *SHAPES[ndim], 1)
    assert out[MOVING_IMAGES].dtype == np.float32
    assert out[MOVING_MASKS].dtype == np.int32
    moving, fixed = out[MOVING_MASKS], out[FIXED_MASKS]
    # Two independent deformations of one map: different maps, same labels.
    assert 0.005 < np.mean(moving != fixed) < 0.5
    for b in range(2):
        assert set(np.unique(moving[b])) == set(np.unique(fixed[b])) == {0, 2, 41}
    # Independent contrasts too, min-max normalised by the chain.
    assert not np.allclose(out[MOVING_IMAGES], out[FIXED_IMAGES])
    assert out[MOVING_IMAGES].min() >= 0 and out[MOVING_IMAGES].max() <= 1


@pytest.mark.parametrize("ndim", [2, 3])
def test_two_label_maps_keep_their_roles(ndim):
    moving_maps = nested_squares(ndim)
    fixed_maps = np.zeros_like(moving_maps)
    fixed_maps[..., :1] = 0
    fixed_maps[:, : SHAPES[ndim][0] // 2] = 2
    pair = LabelsToImagePair.brains([0, 2, 41], deformation_std=0.0, seed=0)
    out = outputs(pair, [moving_maps, fixed_maps])
    np.testing.assert_array_equal(out[MOVING_MASKS], moving_maps)
    np.testing.assert_array_equal(out[FIXED_MASKS], fixed_maps)


@pytest.mark.parametrize("ndim", [2, 3])
def test_shapes_from_nothing(ndim):
    shape = SHAPES[ndim]
    pair = LabelsToImagePair.shapes(shape, num_labels=5, seed=3)
    out = outputs(pair, np.zeros((2, 1), "float32"))
    for key in KEYS:
        assert out[key].shape == (2, *shape, 1)
    moving, fixed = out[MOVING_MASKS], out[FIXED_MASKS]
    assert moving.min() >= 0 and moving.max() < 5
    assert np.mean(moving != fixed) > 0.01  # two deformations of one map
    # One random map per pair: the two pairs of the batch differ.
    assert np.mean(moving[0] != moving[1]) > 0.2
    assert pair.target_labels == [0, 1, 2, 3, 4]


def test_one_hot_targets_and_output_labels():
    labels = nested_squares(2)
    pair = LabelsToImagePair.brains(
        [0, 2, 41], output_labels=[0, 41], one_hot=True, seed=0
    )
    out = outputs(pair, labels)
    assert out[MOVING_MASKS].shape == (2, 32, 32, 2)
    np.testing.assert_allclose(out[MOVING_MASKS].sum(-1), 1)
    assert pair.one_hot and pair.target_labels == [0, 41]


@pytest.mark.parametrize("ndim", [2, 3])
def test_seeded_pairs_are_reproducible_and_calls_differ(ndim):
    labels = nested_squares(ndim)

    def run(seed):
        pair = LabelsToImagePair.brains([0, 2, 41], deformation_std=3.0, seed=seed)
        return outputs(pair, labels), outputs(pair, labels)

    (first, second), (again, _) = run(7), run(7)
    for key in KEYS:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first[MOVING_MASKS], second[MOVING_MASKS])
    other, _ = run(8)
    assert not np.array_equal(first[MOVING_IMAGES], other[MOVING_IMAGES])


def test_seed_offsets_per_component():
    pair = LabelsToImagePair.shapes((16, 16), num_labels=4, seed=10)
    assert pair.seed == 10
    assert pair.generator.seed == 11
    assert pair.label_map_generator.seed == 12


def test_not_training_is_deterministic_and_identical_for_one_map():
    labels = nested_squares(2)
    pair = LabelsToImagePair.brains([0, 2, 41], seed=0)
    out = outputs(pair, labels, training=False)
    np.testing.assert_array_equal(out[MOVING_MASKS], labels)
    np.testing.assert_array_equal(out[MOVING_MASKS], out[FIXED_MASKS])
    np.testing.assert_allclose(out[MOVING_IMAGES], out[FIXED_IMAGES])


def test_zero_deformation_keeps_the_maps_and_output_shape_crops():
    labels = nested_squares(2)
    pair = LabelsToImagePair.brains(
        [0, 2, 41], deformation_std=0, output_shape=(24, 20), seed=0
    )
    out = outputs(pair, labels)
    np.testing.assert_array_equal(out[MOVING_MASKS], labels[:, 4:28, 6:26])
    np.testing.assert_array_equal(out[FIXED_MASKS], labels[:, 4:28, 6:26])


def test_sampled_displacement_statistics():
    # The SVF's standard deviation is in output voxels whatever the grid:
    # with one step and no integration effect, a constant std gives a
    # displacement of that std (the noise is only interpolated).
    pair = LabelsToImagePair.brains(
        [0, 1],
        deformation_std=(2.0, 2.0),
        deformation_grid_shapes=(5,),
        integration_steps=0,
        seed=0,
    )
    field = to_numpy(pair.sample_displacement(64, (33, 33)))
    assert field.shape == (64, 17, 17, 2)
    corners = field[:, [0, -1]][:, :, [0, -1]]  # control points (exact noise)
    assert abs(corners.std() - 2.0) < 0.2
    # Several grids add up: variances add.
    pair = LabelsToImagePair.brains(
        [0, 1],
        deformation_std=(2.0, 2.0),
        deformation_grid_shapes=(5, 3),
        integration_steps=0,
        seed=0,
    )
    corners = to_numpy(pair.sample_displacement(64, (33, 33)))[:, [0, -1]][
        :, :, [0, -1]
    ]
    assert abs(corners.std() - 2.0 * np.sqrt(2)) < 0.3


@pytest.mark.parametrize("ndim", [2, 3])
def test_symbolic_call_and_compiled_predict(ndim):
    shape = SHAPES[ndim]
    pair = LabelsToImagePair.brains([0, 2, 41], seed=0)
    inputs = keras.Input((*shape, 1), dtype="int32")
    spec = pair(inputs)
    assert tuple(spec[MOVING_IMAGES].shape) == (None, *shape, 1)
    assert keras.backend.standardize_dtype(spec[FIXED_MASKS].dtype) == "int32"
    model = keras.Model(inputs, spec)
    out = model.predict(nested_squares(ndim), verbose=0)
    assert out[FIXED_IMAGES].shape == (2, *shape, 1)


def test_config_round_trip_gives_the_same_draws():
    pair = LabelsToImagePair.shapes((16, 16), num_labels=4, seed=5)
    config = keras.saving.serialize_keras_object(pair)
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored.label_map_generator, RandomLabelMap)
    assert restored.deformation_grid_shapes == pair.deformation_grid_shapes
    x = np.zeros((2, 1), "float32")
    a, b = outputs(pair, x), outputs(restored, x)
    for key in KEYS:
        np.testing.assert_array_equal(a[key], b[key])


def test_presets_table_values():
    shapes = LabelsToImagePair.shapes((16, 16), seed=0)
    assert shapes.label_map_generator.num_labels == 26
    assert shapes.std_range == (0.0, 6.0)
    assert shapes.deformation_grid_shapes == (1 / 8, 1 / 16, 1 / 32)
    assert shapes.integration_steps == 5
    brains = LabelsToImagePair.brains([0, 2, 41])
    assert brains.std_range == (0.0, 1.0)
    assert brains.deformation_grid_shapes == (1 / 16,)
    assert brains.integration_steps == 5
    # The generator renders only (its own deformation is off).
    names = [type(c).__name__ for c in brains.generator.components]
    assert "RandomSpatialTransform" not in names
    assert names[:2] == ["RandomGaussianMixture", "RandomGaussianBlur"]
    # Overrides reach this layer or the generator, by name.
    pair = LabelsToImagePair.brains(
        [0, 2, 41], deformation_std=2.0, gamma_std=0.0, noise_std=0.1
    )
    assert pair.std_range == (0.0, 2.0)
    names = [type(c).__name__ for c in pair.generator.components]
    assert "RandomGamma" not in names and "RandomGaussianNoise" in names


def test_invalid_arguments():
    generator = LabelsToImage([0, 1])
    with pytest.raises(ValueError, match="generator"):
        LabelsToImagePair("not a layer")
    with pytest.raises(ValueError, match="label_map_generator"):
        LabelsToImagePair(generator, label_map_generator=3)
    with pytest.raises(ValueError, match="deformation_std"):
        LabelsToImagePair(generator, deformation_std=-1)
    for bad in ((), 0.5, [0.0]):
        with pytest.raises(ValueError, match="deformation_grid_shapes"):
            LabelsToImagePair(generator, deformation_grid_shapes=bad)
    with pytest.raises(ValueError, match="integration_steps"):
        LabelsToImagePair(generator, integration_steps=-1)
    with pytest.raises(ValueError, match="unknown_argument"):
        LabelsToImagePair.brains([0, 1], unknown_argument=1)
    pair = LabelsToImagePair(generator)
    labels = np.zeros((1, 8, 8, 1), "int32")
    with pytest.raises(ValueError, match="label_map"):
        pair(labels.astype("float32"))
    with pytest.raises(ValueError, match="list of 3"):
        pair([labels, labels, labels])
    with pytest.raises(ValueError, match="same shape"):
        pair([labels, np.zeros((1, 8, 6, 1), "int32")])
    with pytest.raises(ValueError, match="output_shape"):
        LabelsToImagePair(generator, output_shape=(8, 8, 8))(labels)
