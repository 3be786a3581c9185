"""The layer contract (`tests.helpers.check_layer`) over every public layer.

One small table: for each public layer of `synthlayers.layers`, how to build
it and what to feed it, in 2D and 3D. The fast checks run by default; the
slow ones (XLA compile, `.keras` round trip, mixed precision) carry
`@pytest.mark.slow`. A meta-test fails when a public layer has no entry.
"""

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest

import synthlayers.layers
from synthlayers.layers import IntegrateVelocity
from synthlayers.layers import LabelsToImage
from synthlayers.layers import LabelsToImagePair
from synthlayers.layers import NormalizeIntensity
from synthlayers.layers import OneHot
from synthlayers.layers import RandomAffine
from synthlayers.layers import RandomBiasField
from synthlayers.layers import RandomDeformation
from synthlayers.layers import RandomFlip
from synthlayers.layers import RandomGamma
from synthlayers.layers import RandomGaussianBlur
from synthlayers.layers import RandomGaussianMixture
from synthlayers.layers import RandomGaussianNoise
from synthlayers.layers import RandomLabelMap
from synthlayers.layers import RandomResolution
from synthlayers.layers import RandomSpatialTransform
from synthlayers.layers import RemapLabels
from synthlayers.layers import SpatialTransformer
from tests.helpers import check_layer
from tests.helpers import check_layer_slow
from tests.helpers import make_image
from tests.helpers import make_label_map

SHAPES = {2: (16, 14), 3: (10, 9, 8)}
# Four samples: the per-sample variety check of `check_layer` repeats the
# first to a batch of 4, and JAX compiles every eager op anew for each shape.
BATCH = 4
CROPPED = {2: (12, 11), 3: (8, 7, 6)}
# FreeSurfer-like values with left/right pairs (2/41, 3/42, ...).
VALUES = [0, 2, 3, 4, 10, 24, 41, 42, 43, 49]


@dataclasses.dataclass
class Case:
    """How to build a layer (`build(**kwargs)`) and what to feed it."""

    build: Callable[..., keras.layers.Layer]
    kwargs: dict
    data: Any
    random: bool = True
    identity_when_not_training: bool = True
    deterministic_when_not_training: bool = True
    expected_spatial_shape: tuple = None


def images_and_labels(ndim, channels=2, labels=None):
    shape = SHAPES[ndim]
    return {
        "images": make_image(shape, channels=channels, batch=BATCH),
        "segmentation_masks": make_label_map(shape, labels=labels, batch=BATCH),
    }


def _one_hot(ndim):
    return Case(
        OneHot,
        {"num_classes": 4},
        images_and_labels(ndim),
        random=False,
        identity_when_not_training=False,
    )


def _remap_labels(ndim):
    return Case(
        RemapLabels,
        {"labels": {0: 0, 3: 1, 17: 2, 42: 1}, "unknown_value": 5},
        images_and_labels(ndim, labels=[0, 3, 17, 42]),
        random=False,
        identity_when_not_training=False,
    )


def _labels_to_image(ndim):
    # Built through the preset, as users build it.
    return Case(
        LabelsToImage.synthseg,
        {"labels": VALUES, "output_shape": CROPPED[ndim], "seed": 3},
        make_label_map(SHAPES[ndim], labels=VALUES, batch=BATCH),
        identity_when_not_training=False,
        expected_spatial_shape=CROPPED[ndim],
    )


def _labels_to_image_pair(ndim):
    # SynthMorph's brains pairs from one label map, built through the preset.
    return Case(
        LabelsToImagePair.brains,
        {"labels": VALUES, "output_shape": CROPPED[ndim], "seed": 5},
        make_label_map(SHAPES[ndim], labels=VALUES, batch=BATCH),
        identity_when_not_training=False,
        expected_spatial_shape=CROPPED[ndim],
    )


def _normalize_intensity(ndim):
    return Case(
        NormalizeIntensity,
        {"method": "percentile"},
        images_and_labels(ndim),
        random=False,
        identity_when_not_training=False,
    )


def _random_affine(ndim):
    return Case(
        RandomAffine,
        {"translation": 2, "rotation": 20, "scaling": 0.2, "shear": 0.05},
        images_and_labels(ndim),
    )


def _random_bias_field(ndim):
    return Case(RandomBiasField, {"std": 0.5, "grid_shape": 3}, images_and_labels(ndim))


def _random_deformation(ndim):
    return Case(
        RandomDeformation, {"std": 2.0, "grid_shape": 4}, images_and_labels(ndim)
    )


def _random_flip(ndim):
    return Case(
        RandomFlip,
        {"axes": tuple(range(ndim)), "label_swap": {2: 41, 3: 42}},
        images_and_labels(ndim, labels=[0, 2, 3, 41, 42]),
    )


def _random_gamma(ndim):
    return Case(RandomGamma, {"std": 0.5}, images_and_labels(ndim))


def _random_gaussian_blur(ndim):
    return Case(RandomGaussianBlur, {"sigma": (0.3, 1.5)}, images_and_labels(ndim))


def _random_gaussian_mixture(ndim):
    return Case(
        RandomGaussianMixture,
        {"labels": [0, 1, 2, 3], "classes": [0, 1, 1, 2], "num_channels": 2},
        make_label_map(SHAPES[ndim], batch=BATCH),
        identity_when_not_training=False,
    )


def _random_gaussian_noise(ndim):
    return Case(
        RandomGaussianNoise,
        {"std": (0.05, 0.2), "probability": 0.9},
        images_and_labels(ndim),
    )


def _random_label_map(ndim):
    # A generator: the input gives the batch size; it draws at every call,
    # also with training=False (documented).
    return Case(
        RandomLabelMap,
        {"output_shape": SHAPES[ndim], "num_labels": 5, "warp_grid_shape": 3},
        np.zeros((BATCH, 1), "float32"),
        identity_when_not_training=False,
        deterministic_when_not_training=False,
    )


def _random_resolution(ndim):
    return Case(
        RandomResolution,
        {"max_spacing": 4.0, "isotropic_probability": 0.5, "noise_std": 0.05},
        images_and_labels(ndim),
        expected_spatial_shape=SHAPES[ndim],
    )


def _random_spatial_transform(ndim):
    return Case(
        RandomSpatialTransform,
        {
            "output_shape": CROPPED[ndim],
            "placement": "random",
            "translation": 2,
            "rotation": 15,
            "scaling": 0.1,
            "shear": 0.02,
            "deformation_std": 2.0,
            "deformation_grid_shape": 4,
            "return_transform": True,
        },
        images_and_labels(ndim),
        identity_when_not_training=False,
        expected_spatial_shape=CROPPED[ndim],
    )


def _integrate_velocity(ndim):
    velocity = np.random.default_rng(0).normal(0, 1, (BATCH, *SHAPES[ndim], ndim))
    return Case(
        IntegrateVelocity,
        {"steps": 5},
        velocity.astype("float32"),
        random=False,
        identity_when_not_training=False,
    )


def _spatial_transformer(ndim):
    shape = SHAPES[ndim]
    displacement = np.random.default_rng(0).normal(0, 2, (BATCH, *shape, ndim))
    return Case(
        SpatialTransformer,
        {},
        [make_image(shape, channels=2, batch=BATCH), displacement.astype("float32")],
        random=False,
        identity_when_not_training=False,
    )


CASES = {
    "OneHot": _one_hot,
    "RemapLabels": _remap_labels,
    "LabelsToImage": _labels_to_image,
    "LabelsToImagePair": _labels_to_image_pair,
    "NormalizeIntensity": _normalize_intensity,
    "RandomAffine": _random_affine,
    "RandomBiasField": _random_bias_field,
    "RandomDeformation": _random_deformation,
    "RandomFlip": _random_flip,
    "RandomGamma": _random_gamma,
    "RandomGaussianBlur": _random_gaussian_blur,
    "RandomGaussianMixture": _random_gaussian_mixture,
    "RandomGaussianNoise": _random_gaussian_noise,
    "RandomLabelMap": _random_label_map,
    "RandomResolution": _random_resolution,
    "RandomSpatialTransform": _random_spatial_transform,
    "IntegrateVelocity": _integrate_velocity,
    "SpatialTransformer": _spatial_transformer,
}


def public_layers():
    """Names of the `keras.layers.Layer` subclasses `synthlayers.layers` exports."""
    names = getattr(synthlayers.layers, "__all__", None) or [
        name for name in vars(synthlayers.layers) if not name.startswith("_")
    ]
    return sorted(
        name
        for name in names
        if inspect.isclass(getattr(synthlayers.layers, name))
        and issubclass(getattr(synthlayers.layers, name), keras.layers.Layer)
    )


def test_every_public_layer_has_a_contract_case():
    missing = sorted(set(public_layers()) - set(CASES))
    assert not missing, f"public layers without an entry in CASES: {missing}"
    stale = sorted(set(CASES) - set(public_layers()))
    assert not stale, f"entries in CASES that are not public layers: {stale}"


def _arguments(case):
    return dict(
        random=case.random,
        deterministic_when_not_training=case.deterministic_when_not_training,
    )


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("name", sorted(CASES))
def test_contract(name, ndim):
    case = CASES[name](ndim)
    check_layer(
        case.build,
        case.kwargs,
        case.data,
        identity_when_not_training=case.identity_when_not_training,
        expected_spatial_shape=case.expected_spatial_shape,
        **_arguments(case),
    )


@pytest.mark.slow
@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("name", sorted(CASES))
def test_contract_slow(name, ndim, tmp_path):
    case = CASES[name](ndim)
    check_layer_slow(
        case.build, case.kwargs, case.data, tmp_path=tmp_path, **_arguments(case)
    )
