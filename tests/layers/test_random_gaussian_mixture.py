import keras
import numpy as np
import pytest

from synthlayers.layers.random_gaussian_mixture import RandomGaussianMixture
from tests.helpers import check_layer
from tests.helpers import make_label_map
from tests.helpers import to_numpy

SHAPES = {2: (12, 10), 3: (8, 9, 10)}
LABELS = [0, 2, 3, 41, 42]


def _all_labels_map(batch, shape=(10, 10), labels=LABELS):
    """Every sample holds every label in a fixed stripe pattern."""
    stripes = np.arange(shape[0]) * len(labels) // shape[0]
    x = np.asarray(labels)[stripes][:, None] * np.ones(shape[1:], "int32")
    return np.broadcast_to(x[None, ..., None], (batch, *shape, 1)).astype("int32")


def _per_label_values(images, label_map, label):
    """`(batch, channels, voxels)` image values at `label`."""
    where = label_map[0, ..., 0] == label
    return np.moveaxis(images[:, where], -1, 1)


@pytest.mark.parametrize("ndim", [2, 3])
def test_contract(ndim, tmp_path):
    data = make_label_map(SHAPES[ndim], num_labels=4)
    layer, out = check_layer(
        RandomGaussianMixture,
        {"labels": [0, 1, 2, 3], "classes": [0, 1, 1, 2], "num_channels": 2},
        data,
        identity_when_not_training=False,
        tmp_path=tmp_path,
    )
    assert set(out) == {"images", "segmentation_masks"}
    assert out["images"].shape == (*data.shape[:-1], 2)
    np.testing.assert_array_equal(to_numpy(out["segmentation_masks"]), data)


def test_contract_dict_input_and_priors(tmp_path):
    data = {"segmentation_masks": make_label_map(SHAPES[2], num_labels=3)}
    prior = [[10.0, 50.0, 90.0], [5.0, 5.0, 5.0]]
    check_layer(
        RandomGaussianMixture,
        {
            "labels": [0, 1, 2],
            "prior_means": prior,
            "prior_stds": [[2.0, 3.0, 4.0], [1.0, 1.0, 1.0]],
            "background_zero_probability": 0.5,
        },
        data,
        identity_when_not_training=False,
        tmp_path=tmp_path,
    )


def test_training_false_is_central_and_deterministic():
    data = _all_labels_map(2)
    prior = np.array([[10.0, 20.0, 30.0, 40.0, 50.0], [5.0] * 5])
    layer = RandomGaussianMixture(
        LABELS, prior_means=prior, background_zero_probability=0.9, seed=0
    )
    images = to_numpy(layer(data, training=False)["images"])
    for k, label in enumerate(LABELS):
        expected = 0.0 if label == 0 else prior[0, k]
        np.testing.assert_array_equal(_per_label_values(images, data, label), expected)
    flat = RandomGaussianMixture(LABELS, mean_range=(20, 40), seed=0)
    np.testing.assert_array_equal(to_numpy(flat(data, training=False)["images"]), 30.0)


def test_mixed_precision():
    layer = RandomGaussianMixture(LABELS, dtype="mixed_float16", seed=0)
    images = layer(_all_labels_map(2))["images"]
    assert keras.backend.standardize_dtype(images.dtype) == "float16"
    assert np.all(np.isfinite(to_numpy(images)))


def test_means_fill_the_range():
    data = _all_labels_map(256)
    layer = RandomGaussianMixture(LABELS, mean_range=(20, 80), std_range=0, seed=1)
    images = to_numpy(layer(data)["images"])
    for label in LABELS:
        values = _per_label_values(images, data, label)[:, 0, 0]
        assert values.min() >= 20 and values.max() < 80
        assert values.min() < 22 and values.max() > 78
        assert abs(values.mean() - 50) < 5


def test_std_zero_is_piecewise_constant_and_classes_share_parameters():
    data = _all_labels_map(256)
    layer = RandomGaussianMixture(
        LABELS, classes=[0, 1, 2, 1, 2], std_range=(0, 0), num_channels=2, seed=2
    )
    images = to_numpy(layer(data)["images"])
    for b in range(16):
        for c in range(2):
            per_label = {}
            for label in LABELS:
                values = np.unique(_per_label_values(images, data, label)[b, c])
                assert len(values) == 1, values
                per_label[label] = values[0]
            assert per_label[2] == per_label[41]
            assert per_label[3] == per_label[42]
            assert len({per_label[0], per_label[2], per_label[3]}) == 3


def test_voxel_noise_has_the_drawn_std():
    data = _all_labels_map(256)
    layer = RandomGaussianMixture(LABELS, std_range=(7, 7), seed=3)
    images = to_numpy(layer(data)["images"])
    for label in LABELS:
        values = _per_label_values(images, data, label)[:, 0]
        np.testing.assert_allclose(values.std(axis=1).mean(), 7, rtol=0.1)


def test_priors_give_the_class_mean_distribution():
    data = _all_labels_map(256)
    prior_means = np.array([[10.0, 60.0, 120.0, 160.0, 200.0], [2.0, 5, 10, 3, 20]])
    prior_stds = np.array([[0.0] * 5, [0.0] * 5])
    layer = RandomGaussianMixture(
        LABELS, prior_means=prior_means, prior_stds=prior_stds, seed=4
    )
    images = to_numpy(layer(data)["images"])
    for k, label in enumerate(LABELS):
        values = _per_label_values(images, data, label)[:, 0]
        assert np.all(values == values[:, :1])  # std prior (0, 0): constant
        means = values[:, 0]
        np.testing.assert_allclose(means.mean(), prior_means[0, k], atol=4.0)
        np.testing.assert_allclose(means.std(), prior_means[1, k], rtol=0.15)


def test_std_prior_and_clipping():
    data = _all_labels_map(256)
    prior_means = np.array([[-50.0, 100, 100, 100, 100], [1.0, 0, 0, 0, 0]])
    prior_stds = np.array([[0.0, 5, 5, 5, 5], [0.0, 0, 0, 0, 0]])
    layer = RandomGaussianMixture(
        LABELS, prior_means=prior_means, prior_stds=prior_stds, seed=5
    )
    images = to_numpy(layer(data)["images"])
    np.testing.assert_array_equal(_per_label_values(images, data, 0), 0.0)  # clipped
    values = _per_label_values(images, data, 2)[:, 0]
    np.testing.assert_allclose(values.std(axis=1).mean(), 5, rtol=0.1)


def test_channels_are_independent():
    data = _all_labels_map(256)
    layer = RandomGaussianMixture(LABELS, std_range=0, num_channels=3, seed=6)
    images = to_numpy(layer(data)["images"])
    means = _per_label_values(images, data, 3)[:, :, 0]  # (batch, channels)
    assert not np.allclose(means[:, 0], means[:, 1])
    assert abs(np.corrcoef(means.T)[0, 1]) < 0.25


def test_background_zeroed_with_its_probability():
    data = _all_labels_map(256)
    layer = RandomGaussianMixture(
        LABELS,
        classes=[0, 1, 2, 0, 3],
        mean_range=(10, 100),
        background_zero_probability=0.3,
        seed=7,
    )
    images = to_numpy(layer(data)["images"])
    zero_0 = np.all(_per_label_values(images, data, 0) == 0, axis=(1, 2))
    zero_41 = np.all(_per_label_values(images, data, 41) == 0, axis=(1, 2))
    np.testing.assert_array_equal(zero_0, zero_41)  # same class, label 0's
    assert 0.2 < zero_0.mean() < 0.4
    assert not np.any(_per_label_values(images, data, 2) == 0)
    never = RandomGaussianMixture(LABELS, mean_range=(10, 100), seed=7)
    assert not np.any(to_numpy(never(data)["images"]) == 0)
    always = RandomGaussianMixture(
        LABELS,
        mean_range=(10, 100),
        background_classes=[1, 2],
        background_zero_probability=1.0,
        seed=7,
    )
    images = to_numpy(always(data)["images"])
    assert np.all(_per_label_values(images, data, 2) == 0)
    assert np.all(_per_label_values(images, data, 3) == 0)
    assert not np.any(_per_label_values(images, data, 0) == 0)


def test_synthseg_background_rule():
    """SynthSeg's model_inputs: background mean and std 0 in 5% of samples,
    mean U(0, 15) and std U(0, 5) in 25%, as any class in the other 70%."""
    batch = 4000
    data = _all_labels_map(batch, shape=(10, 4))
    layer = RandomGaussianMixture(
        LABELS,
        mean_range=(20, 250),
        std_range=(6, 30),
        background_zero_probability=0.05,
        background_mean_range=(0, 15),
        background_std_range=(0, 5),
        background_range_probability=0.25 / 0.95,
        seed=3,
    )
    parameters = layer.get_random_transformation(
        {"segmentation_masks": keras.ops.convert_to_tensor(data)}
    )
    means = to_numpy(parameters["means"])[:, 0, 0]  # class of label 0
    stds = to_numpy(parameters["stds"])[:, 0, 0]
    zero = (means == 0) & (stds == 0)
    dark = ~zero & (means < 15) & (stds < 5)
    usual = (means >= 20) & (stds >= 6)
    assert np.all(zero | dark | usual)  # the three rules cover every sample
    for share, expected in ((zero, 0.05), (dark, 0.25), (usual, 0.70)):
        assert abs(share.mean() - expected) < 3 * np.sqrt(expected / batch)
    assert 6.5 < means[dark].mean() < 8.5 and 2.2 < stds[dark].mean() < 2.8
    others = to_numpy(parameters["means"])[:, 1:, 0]
    assert others.min() >= 20  # only the background follows the rule


def test_neurite_background_rule():
    """neurite: label 0 from mean U(0, 225), std U(0, 25), zeroed in 20%."""
    batch = 2000
    data = _all_labels_map(batch, shape=(10, 4))
    layer = RandomGaussianMixture(
        LABELS,
        mean_range=(25, 225),
        std_range=(5, 25),
        background_zero_probability=0.2,
        background_mean_range=(0, 225),
        background_std_range=(0, 25),
        seed=4,
    )
    parameters = layer.get_random_transformation(
        {"segmentation_masks": keras.ops.convert_to_tensor(data)}
    )
    means = to_numpy(parameters["means"])[:, 0, 0]
    zero = means == 0
    assert abs(zero.mean() - 0.2) < 0.03
    assert np.mean(means[~zero] < 25) > 0.08  # below the others' minimum
    images = to_numpy(layer(data)["images"])
    zero_images = np.all(_per_label_values(images, data, 0) == 0, axis=(1, 2))
    assert abs(zero_images.mean() - 0.2) < 0.03


def test_extra_keys_pass_through():
    labels = make_label_map((8, 8), num_labels=2)
    extra = np.ones((2, 8, 8, 2), "float32")
    out = RandomGaussianMixture([0, 1], seed=0)(
        {"segmentation_masks": labels, "displacement": extra}
    )
    assert set(out) == {"images", "segmentation_masks", "displacement"}
    np.testing.assert_array_equal(to_numpy(out["displacement"]), extra)


def test_unknown_labels_are_zero():
    data = _all_labels_map(4, labels=[0, 5, 7, -1, 99])
    layer = RandomGaussianMixture([0, 5, 7], mean_range=(10, 20), seed=8)
    images = to_numpy(layer(data)["images"])
    for label in (-1, 99):
        np.testing.assert_array_equal(_per_label_values(images, data, label), 0)
    assert not np.any(_per_label_values(images, data, 5) == 0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"labels": []}, "labels"),
        ({"labels": [0, 1, 1]}, "labels"),
        ({"labels": [0, -2]}, "labels"),
        ({"labels": [0, 1], "classes": [0]}, "classes"),
        ({"labels": [0, 1], "mean_range": (5, 1)}, "mean_range"),
        ({"labels": [0, 1], "std_range": (-1, 1)}, "std_range"),
        ({"labels": [0, 1], "prior_means": [[1, 2, 3], [1, 1, 1]]}, "prior_means"),
        ({"labels": [0, 1], "prior_stds": [[1, 2], [1, -1]]}, "prior_stds"),
        ({"labels": [0, 1], "num_channels": 0}, "num_channels"),
        ({"labels": [0, 1], "background_classes": [2]}, "background_classes"),
        (
            {"labels": [0, 1], "background_zero_probability": 1.5},
            "background_zero_probability",
        ),
        ({"labels": [0, 1], "background_mean_range": (9, 1)}, "background_mean_range"),
        ({"labels": [0, 1], "background_std_range": (-1, 1)}, "background_std_range"),
        (
            {"labels": [0, 1], "background_range_probability": -0.1},
            "background_range_probability",
        ),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match="Received") as info:
        RandomGaussianMixture(**kwargs)
    assert name in str(info.value)


def test_bad_inputs():
    layer = RandomGaussianMixture([0, 1])
    labels = make_label_map((8, 8), num_labels=2)
    with pytest.raises(ValueError, match="images"):
        layer({"images": labels.astype("float32"), "segmentation_masks": labels})
    with pytest.raises(ValueError, match="integer label map"):
        layer(labels.astype("float32"))
