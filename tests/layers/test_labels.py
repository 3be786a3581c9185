import json
import re

import keras
import numpy as np
import pytest

from synthlayers.layers.labels import OneHot
from synthlayers.layers.labels import RemapLabels
from tests.helpers import check_layer
from tests.helpers import make_image
from tests.helpers import make_label_map
from tests.helpers import to_numpy

SHAPES = {2: (8, 10), 3: (6, 8, 10)}


def as_map(values, dtype="int32"):
    """A 1-sample 2D label map `(1, n, 1, 1)` from a flat list."""
    return np.asarray(values, dtype).reshape(1, -1, 1, 1)


def flat(x):
    return to_numpy(x).ravel().tolist()


# RemapLabels ---------------------------------------------------------------


@pytest.mark.parametrize("ndim", [2, 3])
def test_remap_contract(ndim, tmp_path):
    shape = SHAPES[ndim]
    data = {
        "images": make_image(shape, channels=2),
        "segmentation_masks": make_label_map(shape, labels=[0, 3, 17, 42]),
    }
    check_layer(
        RemapLabels,
        {"labels": {0: 0, 3: 1, 17: 2, 42: 1}, "unknown_value": 5},
        data,
        random=False,
        identity_when_not_training=False,
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_remap_contract_bare_label_map(ndim, tmp_path):
    labels = make_label_map(SHAPES[ndim], labels=[0, 3, 17, 42])
    _, out = check_layer(
        RemapLabels,
        {"labels": [42, 17, 3, 0]},
        labels,
        random=False,
        identity_when_not_training=False,
        tmp_path=tmp_path,
    )
    expected = np.searchsorted([0, 3, 17, 42], labels)
    np.testing.assert_array_equal(to_numpy(out), expected)


def test_remap_dict_form():
    layer = RemapLabels({3: 1, 17: 2, 0: 0, 42: 1})
    out = layer(as_map([0, 3, 17, 42, 3]))
    assert flat(out) == [0, 1, 2, 1, 1]
    assert layer.input_labels == [0, 3, 17, 42]
    assert layer.output_labels == [0, 1, 2]


def test_remap_pairwise_form():
    layer = RemapLabels([5, 1, 9], values=[10, 20, 30])
    assert flat(layer(as_map([1, 5, 9, 9]))) == [20, 10, 30, 30]
    assert layer.output_labels == [10, 20, 30]


def test_remap_compact_indices_are_sorted_regardless_of_given_order():
    """Regression: neurite's channel order came from an unordered Python set."""
    label_map = as_map([0, 2, 4, 41, 43, 60, 2])
    expected = [0, 1, 2, 3, 4, 5, 1]
    for labels in ([0, 2, 4, 41, 43, 60], [60, 43, 41, 4, 2, 0], [41, 0, 60, 2, 43, 4]):
        layer = RemapLabels(labels)
        assert flat(layer(label_map)) == expected
        assert layer.input_labels == [0, 2, 4, 41, 43, 60]
        assert layer.output_labels == [0, 1, 2, 3, 4, 5]


def test_remap_compact_form_ignores_repeated_labels():
    assert flat(RemapLabels([7, 3, 7, 3, 1])(as_map([1, 3, 7]))) == [0, 1, 2]


def test_remap_unknown_labels_go_to_unknown_value():
    """Regression: neurite silently mapped missing labels to a real class."""
    layer = RemapLabels({1: 5, 3: 7}, unknown_value=-1)
    out = layer(as_map([0, 1, 2, 3, 4, 100, -3]))
    assert flat(out) == [-1, 5, -1, 7, -1, -1, -1]
    # With the compact form, a missing label must not become one of 0..K-1.
    out = RemapLabels([10, 20], unknown_value=99)(as_map([10, 15, 20, 0, 25]))
    assert flat(out) == [0, 99, 1, 99, 99]


def test_remap_unknown_labels_and_check_labels():
    layer = RemapLabels([0, 2, 41])
    label_map = as_map([0, 2, 41, 5, 77, 5, -1])
    unknown = layer.unknown_labels(label_map)
    assert isinstance(unknown, np.ndarray)
    assert unknown.tolist() == [-1, 5, 77]
    assert layer.unknown_labels({"segmentation_masks": label_map}).tolist() == [
        -1,
        5,
        77,
    ]
    with pytest.raises(ValueError, match=re.escape("[-1, 5, 77]")):
        layer.check_labels(label_map)
    layer.check_labels(as_map([0, 41, 2, 2]))  # No error.
    assert layer.unknown_labels(as_map([0, 41])).size == 0
    with pytest.raises(ValueError, match="integer label map"):
        layer.unknown_labels(as_map([0.0, 2.0], "float32"))


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "int64"])
def test_remap_output_is_int32(dtype):
    out = RemapLabels({3: 1, 200: 2})(as_map([3, 200, 0], dtype))
    assert keras.backend.standardize_dtype(out.dtype) == "int32"
    assert flat(out) == [1, 2, 0]


def test_remap_images_pass_through_untouched():
    shape = SHAPES[2]
    images = make_image(shape)
    labels = make_label_map(shape, labels=[1, 2])
    out = RemapLabels({1: 10, 2: 20})({"images": images, "segmentation_masks": labels})
    np.testing.assert_array_equal(to_numpy(out["images"]), images)
    np.testing.assert_array_equal(to_numpy(out["segmentation_masks"]), labels * 10)


def test_remap_float_label_map_raises():
    layer = RemapLabels([0, 1])
    with pytest.raises(ValueError, match="float32"):
        layer(as_map([0.0, 1.0], "float32"))
    with pytest.raises(ValueError, match="segmentation_masks"):
        layer({"segmentation_masks": as_map([0.0, 1.0], "float32")})


@pytest.mark.parametrize(
    "kwargs, name, received",
    [
        ({"labels": [1.5, 2]}, "labels", "[1.5, 2]"),
        ({"labels": "abc"}, "labels", "'abc'"),
        ({"labels": [True, 2]}, "labels", "[True, 2]"),
        ({"labels": []}, "labels", "[]"),
        ({"labels": {1: 2.5}}, "labels", "{1: 2.5}"),
        ({"labels": {"1": 2}}, "labels", "{'1': 2}"),
        ({"labels": {1: 2}, "values": [3]}, "values", "[3]"),
        ({"labels": [1, 2, 1], "values": [3, 4, 5]}, "labels", "[1, 2, 1]"),
        ({"labels": [1, 2], "values": [3]}, "values", "[3]"),
        ({"labels": [1, 2], "values": [3, 4.0]}, "values", "[3, 4.0]"),
        ({"labels": [1, -2]}, "labels", "[1, -2]"),
        ({"labels": [1, 2**40]}, "labels", f"[1, {2**40}]"),
        ({"labels": [1], "unknown_value": 0.5}, "unknown_value", "0.5"),
    ],
)
def test_remap_bad_arguments(kwargs, name, received):
    with pytest.raises(ValueError) as info:
        RemapLabels(**kwargs)
    message = str(info.value)
    assert f"`{name}`" in message and f"{name}={received}" in message, message


def test_remap_mismatched_lengths_message_names_both():
    with pytest.raises(ValueError, match=re.escape("labels=[1, 2] (length 2)")):
        RemapLabels([1, 2], values=[3])


def test_remap_numpy_arguments():
    layer = RemapLabels(np.array([4, 2]), values=np.array([1, 0]))
    assert flat(layer(as_map([2, 4]))) == [0, 1]
    assert layer.get_config()["labels"] == [2, 4]


def test_remap_config_is_json_and_round_trips():
    layer = RemapLabels({42: 3, 3: 1, 0: 0}, unknown_value=7)
    config = json.loads(json.dumps(layer.get_config()))
    restored = RemapLabels.from_config(config)
    assert restored.get_config() == layer.get_config()
    label_map = as_map([0, 3, 42, 5])
    assert flat(restored(label_map)) == flat(layer(label_map)) == [0, 1, 3, 7]


# OneHot ----------------------------------------------------------------------


@pytest.mark.parametrize("ndim", [2, 3])
def test_one_hot_contract(ndim, tmp_path):
    shape = SHAPES[ndim]
    data = {"images": make_image(shape), "segmentation_masks": make_label_map(shape)}
    check_layer(
        OneHot,
        {"num_classes": 4},
        data,
        random=False,
        identity_when_not_training=False,
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_one_hot_contract_bare_label_map(ndim, tmp_path):
    labels = make_label_map(SHAPES[ndim], num_labels=3)
    _, out = check_layer(
        OneHot,
        {"num_classes": 3},
        labels,
        random=False,
        identity_when_not_training=False,
        tmp_path=tmp_path,
    )
    np.testing.assert_array_equal(to_numpy(out), np.eye(3)[labels[..., 0]])


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "int64"])
def test_one_hot_values_and_out_of_range(dtype):
    labels = [0, 2, 1, 3, 200] + ([] if dtype == "uint8" else [-1])
    out = OneHot(3)(as_map(labels, dtype))
    assert tuple(out.shape) == (1, len(labels), 1, 3)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    expected = [[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 0], [0, 0, 0], [0, 0, 0]]
    np.testing.assert_array_equal(
        to_numpy(out).reshape(-1, 3), np.asarray(expected[: len(labels)], "float32")
    )


def test_one_hot_after_remap():
    label_map = as_map([41, 2, 0, 17, 99])
    remap = RemapLabels([41, 17, 2, 0], unknown_value=-1)
    out = to_numpy(OneHot(4)(remap(label_map))).reshape(-1, 4)
    np.testing.assert_array_equal(out.argmax(-1)[:4], [3, 1, 0, 2])
    np.testing.assert_array_equal(out[4], [0, 0, 0, 0])


def test_one_hot_dict_and_dtype():
    shape = SHAPES[2]
    images = make_image(shape)
    labels = make_label_map(shape, num_labels=3)
    out = OneHot(3, dtype="mixed_float16")(
        {"images": images, "segmentation_masks": labels}
    )
    assert keras.backend.standardize_dtype(out["segmentation_masks"].dtype) == "float16"
    assert tuple(out["segmentation_masks"].shape) == (*labels.shape[:-1], 3)
    np.testing.assert_allclose(to_numpy(out["images"]), images, atol=1e-2)


def test_one_hot_requires_one_channel_and_integers():
    layer = OneHot(3)
    labels = np.zeros((1, 4, 4, 2), "int32")
    with pytest.raises(
        ValueError, match=re.escape("segmentation_masks.shape=(1, 4, 4, 2)")
    ):
        layer(labels)
    with pytest.raises(ValueError, match="1 channel"):
        layer(keras.KerasTensor((None, 4, 4, 2), "int32"))
    with pytest.raises(ValueError, match="float32"):
        layer(np.zeros((1, 4, 4, 1), "float32"))


@pytest.mark.parametrize("value", [0, -2, 2.0, "3", None, True])
def test_one_hot_bad_num_classes(value):
    with pytest.raises(ValueError, match=re.escape(f"num_classes={value!r}")):
        OneHot(value)


def test_one_hot_config_round_trip():
    layer = OneHot(5, name="hot")
    config = json.loads(json.dumps(layer.get_config()))
    assert OneHot.from_config(config).get_config() == layer.get_config()
