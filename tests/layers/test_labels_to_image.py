import keras
import numpy as np
import pytest

from synthlayers.datasets import phantom_label_map
from synthlayers.freesurfer import left_right_swap
from synthlayers.layers import LabelsToImage
from tests.helpers import check_layer
from tests.helpers import to_numpy

SHAPES = {2: (40, 36), 3: (24, 20, 22)}
OUT = {2: (32, 28), 3: (16, 18, 14)}


def _labels(ndim, batch=2):
    return phantom_label_map(SHAPES[ndim])[None, ..., None].repeat(batch, 0)


VALUES = [0, 2, 3, 4, 10, 24, 41, 42, 43, 49]


@pytest.mark.parametrize("ndim", [2, 3])
def test_contract_synthseg(ndim, tmp_path):
    check_layer(
        LabelsToImage,
        LabelsToImage.synthseg(VALUES, output_shape=OUT[ndim], seed=3).get_config(),
        _labels(ndim),
        identity_when_not_training=False,
        expected_spatial_shape=OUT[ndim],
        tmp_path=tmp_path,
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_contract_synthmorph_one_hot_with_extras(ndim, tmp_path):
    config = LabelsToImage.synthmorph(
        VALUES, output_labels=[0, 2, 41], one_hot=True, return_transform=True, seed=1
    ).get_config()
    config["return_bias_field"] = True
    layer, out = check_layer(
        LabelsToImage, config, _labels(ndim), identity_when_not_training=False,
        tmp_path=tmp_path,
    )  # fmt: skip
    one_hot = to_numpy(out["segmentation_masks"])
    assert one_hot.shape[-1] == 3
    np.testing.assert_array_equal(one_hot.sum(-1), 1.0)  # unlisted -> background
    assert set(out) == {
        "images",
        "segmentation_masks",
        "displacement",
        "affine",
        "bias_field",
    }


def test_output_labels_list_and_dict():
    labels = _labels(2)
    kept = to_numpy(
        LabelsToImage(VALUES, output_labels=[0, 2, 41], seed=0)(labels)[
            "segmentation_masks"
        ]
    )
    expected = np.where(np.isin(labels, [2, 41]), labels, 0)
    np.testing.assert_array_equal(kept, expected)
    merged = LabelsToImage(VALUES, output_labels={2: 1, 41: 1, 3: 2, 42: 2}, seed=0)(
        labels
    )
    expected = np.select(
        [np.isin(labels, [2, 41]), np.isin(labels, [3, 42])], [1, 2], 0
    )
    np.testing.assert_array_equal(to_numpy(merged["segmentation_masks"]), expected)
    # One-hot without label 0 among the targets: unlisted labels get no channel.
    one_hot = LabelsToImage(VALUES, output_labels=[41, 2], one_hot=True, seed=0)(labels)
    one_hot = to_numpy(one_hot["segmentation_masks"])
    np.testing.assert_array_equal(one_hot[..., 0], labels[..., 0] == 2)  # sorted order
    np.testing.assert_array_equal(one_hot[..., 1], labels[..., 0] == 41)


def test_defaults_switch_everything_but_the_mixture_off():
    labels = _labels(2)
    out = LabelsToImage(VALUES, std_range=(0, 0), normalization=None, seed=0)(labels)
    image = to_numpy(out["images"])[..., 0]
    np.testing.assert_array_equal(to_numpy(out["segmentation_masks"]), labels)
    for b in range(2):
        for value in VALUES:
            assert np.unique(image[b][labels[b, ..., 0] == value]).size == 1


def test_flip_swaps_left_and_right_labels():
    labels = _labels(3)
    layer = LabelsToImage.synthseg(
        VALUES, flip_probability=1.0, rotation=0, scaling=0, shear=0,
        deformation_std=0, bias_std=0, gamma_std=0, max_spacing=None, seed=0,
    )  # fmt: skip
    out = to_numpy(layer(labels)["segmentation_masks"])
    swap = {
        **left_right_swap(VALUES),
        **{v: k for k, v in left_right_swap(VALUES).items()},
    }
    expected = np.vectorize(lambda v: swap.get(v, v))(labels[:, ::-1])
    np.testing.assert_array_equal(out, expected)


def test_thousands_of_extreme_draws_are_finite_and_normalised():
    labels = phantom_label_map((16, 16))[None, ..., None].repeat(1000, 0)
    layer = LabelsToImage.synthseg(
        VALUES, rotation=180, scaling=(0.3, 3.0), shear=0.5, translation=8,
        deformation_std=20, svf_shape=4, bias_std=3.0, gamma_std=2.0,
        max_spacing=12.0, std_range=(0, 500), noise_std=(0, 5.0), seed=0,
    )  # fmt: skip
    out = layer(labels)
    images = to_numpy(out["images"])
    assert np.all(np.isfinite(images))
    assert images.min() >= 0 and images.max() <= 1
    maxima = images.max(axis=(1, 2, 3))  # min-max: 1, or 0 for a constant image
    assert np.all(np.isclose(maxima, 1) | (maxima == 0)) and np.mean(maxima == 0) < 0.01
    assert set(np.unique(to_numpy(out["segmentation_masks"]))) <= set(VALUES)


def test_mixed_precision():
    out = LabelsToImage.synthseg(VALUES, dtype="mixed_float16", seed=0)(_labels(2))
    assert keras.backend.standardize_dtype(out["images"].dtype) == "float16"
    assert np.all(np.isfinite(to_numpy(out["images"])))


def test_presets_match_their_tables():
    seg = LabelsToImage.synthseg(VALUES).get_config()
    assert (seg["rotation"], seg["scaling"], seg["shear"]) == (15.0, 0.2, 0.012)
    assert (seg["deformation_std"], seg["svf_shape"], seg["integration_steps"]) == (
        4.0,
        0.04,
        7,
    )
    assert (seg["mean_range"], seg["std_range"]) == ([0.0, 250.0], [0.0, 30.0])
    assert (seg["bias_std"], seg["bias_shape"], seg["gamma_std"]) == (0.7, 0.025, 0.5)
    assert [2, 41] in seg["label_swap"] and seg["flip_probability"] == 0.5
    morph = LabelsToImage.synthmorph(VALUES).get_config()
    assert (morph["deformation_std"], morph["svf_shape"]) == (1.0, 1 / 16)
    assert (morph["bias_std"], morph["bias_shape"], morph["blur_sigma"]) == (
        0.3,
        1 / 40,
        1.0,
    )
    assert (morph["gamma_std"], morph["mean_range"], morph["std_range"]) == (
        0.25, [25.0, 225.0], [5.0, 25.0],
    )  # fmt: skip
    assert morph["background_zero_probability"] == 0.2 and morph["rotation"] == 0.0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"one_hot": True}, "output_labels"),
        ({"return_bias_field": True}, "bias_std"),
        ({"normalization": "zscore"}, "normalization"),
        ({"output_shape": (8, 0)}, "output_shape"),
        ({"rotation": (5, -5)}, "rotation"),
        ({"deformation_std": -1}, "std"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"{name}.*Received"):
        LabelsToImage(VALUES, **kwargs)


def test_bad_inputs():
    with pytest.raises(ValueError, match="labels.*Received"):
        LabelsToImage([])
    with pytest.raises(ValueError, match="integer label map"):
        LabelsToImage(VALUES)(np.zeros((1, 8, 8, 1), "float32"))
    with pytest.raises(
        ValueError, match=r"output_shape.*Received: output_shape=\(8, 8, 8\)"
    ):
        LabelsToImage(VALUES, output_shape=(8, 8, 8))(np.zeros((1, 8, 8, 1), "int32"))
