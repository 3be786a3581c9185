import json

import keras
import numpy as np
import pytest

from synthlayers.datasets import phantom_label_map
from synthlayers.freesurfer import left_right_swap
from synthlayers.layers import LabelsToImage
from synthlayers.layers import NormalizeIntensity
from synthlayers.layers import RandomBiasField
from synthlayers.layers import RandomFlip
from synthlayers.layers import RandomGamma
from synthlayers.layers import RandomGaussianMixture
from synthlayers.layers import RandomResolution
from synthlayers.layers import RandomSpatialTransform
from synthlayers.layers import RemapLabels
from tests.helpers import check_layer
from tests.helpers import to_numpy

SHAPES = {2: (40, 36), 3: (24, 20, 22)}
OUT = {2: (32, 28), 3: (16, 18, 14)}


def _labels(ndim, batch=2):
    return phantom_label_map(SHAPES[ndim])[None, ..., None].repeat(batch, 0)


VALUES = [0, 2, 3, 4, 10, 24, 41, 42, 43, 49]


@pytest.mark.slow  # the contract test covers the preset; this is the config path
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
        VALUES, output_labels=[0, 2, 41], one_hot=True, return_transform=True,
        return_bias_field=True, seed=1,
    ).get_config()  # fmt: skip
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
    assert layer.one_hot and layer.target_labels == [0, 2, 41]


def _component(layer, layer_class):
    (found,) = [c for c in layer.components if isinstance(c, layer_class)]
    return found


def test_built_from_components_and_configs():
    """A chain of the library's layers, given as layers or serialised configs."""
    components = [
        RandomSpatialTransform(output_shape=(24, 24), rotation=10, seed=1),
        RandomGaussianMixture(VALUES, seed=2),
        RandomGamma(std=0.3, seed=3),
        RemapLabels({2: 1, 41: 2}),
    ]
    layer = LabelsToImage(components=components)
    assert layer.target_labels == [0, 1, 2] and not layer.one_hot
    config = layer.get_config()
    assert [c["class_name"] for c in config["components"]] == [
        "RandomSpatialTransform", "RandomGaussianMixture", "RandomGamma", "RemapLabels",
    ]  # fmt: skip
    json.dumps(config)  # serialisable as it is
    again = LabelsToImage.from_config(config)
    labels = _labels(2)
    first, second = layer(labels), again(labels)
    np.testing.assert_allclose(to_numpy(first["images"]), to_numpy(second["images"]))
    targets = to_numpy(first["segmentation_masks"])
    assert targets.shape == (2, 24, 24, 1) and set(np.unique(targets)) <= {0, 1, 2}
    with pytest.raises(ValueError, match="RandomGaussianMixture"):
        LabelsToImage(components=[RandomGamma()])
    with pytest.raises(ValueError, match="not both"):
        LabelsToImage(VALUES, components=components)


def test_presets_are_chains_of_the_layers():
    seg = LabelsToImage.synthseg(VALUES, output_shape=(16, 16))
    assert [type(c).__name__ for c in seg.components] == [
        "RandomSpatialTransform", "RandomFlip", "RandomGaussianMixture",
        "RandomBiasField", "NormalizeIntensity", "RandomGamma", "RandomResolution",
        "NormalizeIntensity",
    ]  # fmt: skip
    morph = LabelsToImage.synthmorph(VALUES, output_labels=[0, 2, 41])
    assert [type(c).__name__ for c in morph.components] == [
        "RandomSpatialTransform", "RandomGaussianMixture", "RandomGaussianBlur",
        "RandomBiasField", "NormalizeIntensity", "RandomGamma", "RemapLabels",
    ]  # fmt: skip


def test_seeds_are_fixed_per_component():
    """Switching a component on does not change the others' random streams."""
    labels = _labels(2)
    plain = LabelsToImage(VALUES, seed=5)
    # A flip that (almost surely) never flips: the images must not change.
    flipped = LabelsToImage(VALUES, flip_probability=1e-9, seed=5)
    assert _component(plain, RandomGaussianMixture).seed == 5 + 3
    np.testing.assert_array_equal(
        to_numpy(plain(labels)["images"]), to_numpy(flipped(labels)["images"])
    )


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
        deformation_std=20, deformation_grid_shape=4, bias_std=3.0, gamma_std=2.0,
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


def test_synthseg_preset_matches_its_table():
    seg = LabelsToImage.synthseg(VALUES, output_shape=(16, 16))
    spatial = _component(seg, RandomSpatialTransform).get_config()
    assert spatial["placement"] == "random"  # SynthSeg's random crop
    assert (spatial["rotation"], spatial["scaling"], spatial["shear"]) == (
        15.0, 0.2, 0.012,
    )  # fmt: skip
    assert (spatial["deformation_std"], spatial["deformation_grid_shape"]) == (
        4.0, 0.04,
    )  # fmt: skip
    assert spatial["integration_steps"] == 7
    flip = _component(seg, RandomFlip).get_config()
    assert [2, 41] in flip["label_swap"] and flip["probability"] == 0.5
    mixture = _component(seg, RandomGaussianMixture)
    assert (mixture.mean_range, mixture.std_range) == ((0.0, 250.0), (0.0, 30.0))
    assert mixture.background_zero_probability == 0.05
    assert mixture.background_mean_range == (0.0, 15.0)
    assert mixture.background_std_range == (0.0, 5.0)
    assert np.isclose(mixture.background_range_probability * 0.95, 0.25)
    bias = _component(seg, RandomBiasField).get_config()
    assert (bias["std"], bias["grid_shape"], bias["probability"]) == (
        [0.0, 0.7], 0.025, 0.95,
    )  # fmt: skip
    clip, final = [c for c in seg.components if isinstance(c, NormalizeIntensity)]
    assert clip.clip == (0.0, 300.0) and final.clip is None
    assert _component(seg, RandomGamma).get_config()["std"] == 0.5
    resolution = _component(seg, RandomResolution).get_config()
    assert resolution["max_spacing"] == 8.0 and resolution["probability"] == 0.95


def test_synthmorph_preset_matches_its_table():
    morph = LabelsToImage.synthmorph(VALUES)
    spatial = _component(morph, RandomSpatialTransform).get_config()
    assert (spatial["deformation_std"], spatial["deformation_grid_shape"]) == (
        1.0, 1 / 16,
    )  # fmt: skip
    assert spatial["integration_steps"] == 5
    assert spatial["integrate_at_half_resolution"] is True
    assert spatial["rotation"] == 0.0
    mixture = _component(morph, RandomGaussianMixture)
    assert (mixture.mean_range, mixture.std_range) == ((25.0, 225.0), (5.0, 25.0))
    assert mixture.background_mean_range == (0.0, 225.0)
    assert mixture.background_std_range == (0.0, 25.0)
    assert mixture.background_zero_probability == 0.2
    bias = _component(morph, RandomBiasField).get_config()
    assert (bias["std"], bias["grid_shape"]) == ([0.0, 0.3], 1 / 40)
    assert _component(morph, NormalizeIntensity).clip == (0.0, 255.0)
    assert _component(morph, RandomGamma).get_config()["std"] == 0.25


def test_synthseg_clip_keeps_the_contrast():
    """Clipped at 300 before min-max, bright voxels no longer compress the
    image: the median 95th percentile of the images stays high."""
    labels = phantom_label_map((24, 24))[None, ..., None].repeat(256, 0)
    common = dict(
        rotation=0, scaling=0, shear=0, deformation_std=0, max_spacing=None,
        gamma_std=0, flip_probability=0, seed=0,
    )  # fmt: skip
    clipped = LabelsToImage.synthseg(VALUES, **common)(labels)["images"]
    unclipped = LabelsToImage.synthseg(VALUES, clip=None, **common)(labels)["images"]
    p95 = [np.median(np.percentile(to_numpy(x), 95, axis=(1, 2, 3)))
           for x in (clipped, unclipped)]  # fmt: skip
    assert p95[0] > p95[1] + 0.015


def test_random_placement_keeps_the_anatomy_in_view():
    """SynthSeg's random crop: the anatomy moves, and stays in the output."""
    shape, out_shape = (64, 64), (48, 48)
    labels = np.zeros((256, *shape, 1), "int32")
    labels[:, 12:52, 14:50] = 2  # "brain" in the middle of a larger field
    labels[:, 24:40, 26:38] = 41
    layer = LabelsToImage.synthseg(
        VALUES, output_shape=out_shape, flip_probability=0, seed=0
    )
    targets = to_numpy(layer(labels)["segmentation_masks"])[..., 0]
    brain = targets > 0
    kept = brain.sum(axis=(1, 2)) / (labels[0] > 0).sum()
    assert kept.min() > 0.5  # never out of view
    centres = np.array([np.argwhere(b).mean(0) for b in brain])
    assert centres.std(0).min() > 2.0  # translated, not always centred
    centred = LabelsToImage.synthseg(
        VALUES, output_shape=out_shape, placement="center", rotation=0,
        scaling=0, shear=0, deformation_std=0, flip_probability=0, seed=0,
    )(labels)["segmentation_masks"]  # fmt: skip
    centres = np.array([np.argwhere(b[..., 0] > 0).mean(0) for b in to_numpy(centred)])
    assert centres.std(0).max() < 1e-6


def test_deprecated_argument_names():
    with pytest.warns(DeprecationWarning, match="deformation_grid_shape"):
        layer = LabelsToImage(VALUES, deformation_std=2.0, svf_shape=4)
    spatial = _component(layer, RandomSpatialTransform).get_config()
    assert spatial["deformation_grid_shape"] == 4
    with pytest.warns(DeprecationWarning, match="bias_grid_shape"):
        LabelsToImage(VALUES, bias_std=0.3, bias_shape=0.1)
    with pytest.raises(ValueError, match="deformation_grid_shape"):
        LabelsToImage(VALUES, svf_shape=4, deformation_grid_shape=4)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"one_hot": True}, "output_labels"),
        ({"return_bias_field": True}, "bias_std"),
        ({"normalization": "zscore"}, "normalization"),
        ({"output_shape": (8, 0)}, "output_shape"),
        ({"rotation": (5, -5)}, "rotation"),
        ({"deformation_std": -1}, "deformation_std"),
        ({"rotation": 5, "affine_probability": 2}, "affine_probability"),
        ({"gamma_std": -1}, "gamma_std"),
        ({"bias_std": 0.5, "bias_grid_shape": 1}, "bias_grid_shape"),
        ({"flip_probability": 0.5, "flip_axis": -1}, "flip_axis"),
        ({"noise_std": -1}, "noise_std"),
        ({"clip": (300, 0)}, "clip"),
        ({"background_range_probability": 2}, "background_range_probability"),
        ({"order": "torchio"}, "order"),
        ({"rotations": 5}, "rotations"),
    ],
)
def test_bad_arguments(kwargs, name):
    """Errors name the flat argument the user gave, not the component's."""
    with pytest.raises(ValueError, match=f"`?{name}`?.*Received") as info:
        LabelsToImage(VALUES, **kwargs)
    assert f"{name}=" in str(info.value) or f"Received: {name}" in str(info.value)


def test_bad_inputs():
    with pytest.raises(ValueError, match="labels.*Received"):
        LabelsToImage([])
    with pytest.raises(ValueError, match="integer label map"):
        LabelsToImage(VALUES)(np.zeros((1, 8, 8, 1), "float32"))
    with pytest.raises(
        ValueError, match=r"output_shape.*Received: output_shape=\(8, 8, 8\)"
    ):
        LabelsToImage(VALUES, output_shape=(8, 8, 8))(np.zeros((1, 8, 8, 1), "int32"))


@pytest.mark.slow
def test_random_crop_keeps_the_brain_in_view_on_real_maps():
    """SynthSeg's 160^3 random crop of real 256^3 maps, cropped to the brain's
    box first: the output grid moves over the brain and never off it."""
    from synthlayers import datasets
    from synthlayers.freesurfer import SYNTHSEG_STRUCTURES

    data_dir = datasets.local_data_dir()
    if data_dir is None:
        pytest.skip("needs SYNTHLAYERS_DATA_DIR (the SynthSeg label maps)")
    labels, classes = datasets.synthseg_generation_labels(data_dir)
    generator = LabelsToImage.synthseg(
        labels, classes=classes, output_shape=(160, 160, 160), seed=0
    )
    kept = []
    for path in datasets.synthseg_label_map_paths(data_dir)[:2]:
        label_map, _ = datasets.load_label_map(path)
        brain = np.isin(label_map, SYNTHSEG_STRUCTURES).sum()
        cropped = datasets.crop_to_bounding_box(
            label_map, margin=8, labels=SYNTHSEG_STRUCTURES
        )
        batch = np.repeat(cropped[None, ..., None], 4, 0)
        out = to_numpy(generator(batch)["segmentation_masks"])[..., 0]
        for sample in out:
            inside = np.isin(sample, SYNTHSEG_STRUCTURES)
            kept.append(inside.sum() / brain)
            centre = np.argwhere(inside).mean(0)
            assert np.all(np.abs(centre - 80) < 56)  # never at the edge
    assert min(kept) > 0.5, kept
