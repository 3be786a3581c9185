"""LabelsToImage: the synthesis chain as a composition of layers, with presets."""

import contextlib
import re
import warnings

import keras
import numpy as np
from keras import ops

from synthlayers.freesurfer import left_right_swap
from synthlayers.layers.base import IMAGES
from synthlayers.layers.base import MASKS
from synthlayers.layers.base import BaseRandomLayer
from synthlayers.layers.labels import OneHot
from synthlayers.layers.labels import RemapLabels
from synthlayers.layers.normalize_intensity import NormalizeIntensity
from synthlayers.layers.random_bias_field import RandomBiasField
from synthlayers.layers.random_flip import RandomFlip
from synthlayers.layers.random_gamma import RandomGamma
from synthlayers.layers.random_gaussian_blur import RandomGaussianBlur
from synthlayers.layers.random_gaussian_mixture import RandomGaussianMixture
from synthlayers.layers.random_gaussian_noise import RandomGaussianNoise
from synthlayers.layers.random_resolution import RandomResolution
from synthlayers.layers.random_spatial_transform import RandomSpatialTransform
from synthlayers.validation import check_choice

# The flat arguments of `LabelsToImage(labels, ...)` and its presets: one table
# from each argument to the component layer it configures and that layer's
# own argument, with the default of the plain constructor (every random
# component off except the mixture). The component layers validate them.
ARGUMENTS = {
    # RandomSpatialTransform
    "output_shape": ("spatial", "output_shape", None),
    "placement": ("spatial", "placement", "center"),
    "translation": ("spatial", "translation", 0.0),
    "rotation": ("spatial", "rotation", 0.0),
    "scaling": ("spatial", "scaling", 0.0),
    "shear": ("spatial", "shear", 0.0),
    "affine_probability": ("spatial", "affine_probability", 1.0),
    "deformation_std": ("spatial", "deformation_std", 0.0),
    "deformation_grid_shape": ("spatial", "deformation_grid_shape", 0.04),
    "integration_steps": ("spatial", "integration_steps", 7),
    "integrate_at_half_resolution": (
        "spatial",
        "integrate_at_half_resolution",
        False,
    ),
    "deformation_probability": ("spatial", "deformation_probability", 1.0),
    "return_transform": ("spatial", "return_transform", False),
    # RandomFlip
    "flip_probability": ("flip", "probability", 0.0),
    "flip_axis": ("flip", "axes", 0),
    "label_swap": ("flip", "label_swap", None),
    # RandomGaussianMixture
    "labels": ("mixture", "labels", None),
    "classes": ("mixture", "classes", None),
    "mean_range": ("mixture", "mean_range", (0.0, 250.0)),
    "std_range": ("mixture", "std_range", (0.0, 30.0)),
    "prior_means": ("mixture", "prior_means", None),
    "prior_stds": ("mixture", "prior_stds", None),
    "num_channels": ("mixture", "num_channels", 1),
    "background_zero_probability": ("mixture", "background_zero_probability", 0.0),
    "background_mean_range": ("mixture", "background_mean_range", None),
    "background_std_range": ("mixture", "background_std_range", None),
    "background_range_probability": (
        "mixture",
        "background_range_probability",
        1.0,
    ),
    # RandomBiasField
    "bias_std": ("bias", "std", 0.0),
    "bias_grid_shape": ("bias", "grid_shape", 0.025),
    "bias_probability": ("bias", "probability", 1.0),
    "return_bias_field": ("bias", "return_field", False),
    # NormalizeIntensity(clip=...) before the gamma
    "clip": ("clip", "clip", None),
    # RandomGamma
    "gamma_std": ("gamma", "std", 0.0),
    "gamma_probability": ("gamma", "probability", 1.0),
    # RandomGaussianBlur
    "blur_sigma": ("blur", "sigma", 0.0),
    "blur_probability": ("blur", "probability", 1.0),
    # RandomResolution
    "max_spacing": ("resolution", "max_spacing", None),
    "isotropic_probability": ("resolution", "isotropic_probability", 0.1),
    "data_spacing": ("resolution", "data_spacing", None),
    "thickness": ("resolution", "thickness", None),
    "resolution_noise_std": ("resolution", "noise_std", 0.0),
    "resolution_probability": ("resolution", "probability", 1.0),
    # RandomGaussianNoise
    "noise_std": ("noise", "std", 0.0),
    "noise_probability": ("noise", "probability", 1.0),
    # NormalizeIntensity at the end
    "normalization": ("normalization", "method", "minmax"),
    # RemapLabels (and OneHot): the targets
    "output_labels": ("targets", "output_labels", None),
    "one_hot": ("targets", "one_hot", False),
    # The order of the intensity components
    "order": ("chain", "order", "synthseg"),
}

DEPRECATED_ARGUMENTS = {
    "svf_shape": "deformation_grid_shape",
    "bias_shape": "bias_grid_shape",
}

# Component order per chain. SynthSeg (`labels_to_image_model.py`): mixture,
# bias, clip and min-max, gamma, then the acquisition (blur, resolution).
# neurite (`labels_to_image`, SynthMorph): mixture, blur, bias, clip and
# min-max, gamma.
ORDERS = {
    "synthseg": (
        "spatial", "flip", "mixture", "bias", "clip", "gamma", "blur",
        "resolution", "noise", "normalization", "targets",
    ),
    "synthmorph": (
        "spatial", "flip", "mixture", "blur", "bias", "clip", "gamma",
        "resolution", "noise", "normalization", "targets",
    ),
}  # fmt: skip

# A fixed seed offset per random component: switching one component on or
# off does not change the random stream of the others.
SEED_OFFSETS = {
    "spatial": 1,
    "flip": 2,
    "mixture": 3,
    "bias": 4,
    "gamma": 5,
    "blur": 6,
    "resolution": 7,
    "noise": 8,
}

NORMALIZATIONS = (None, "minmax", "percentile")
BASE_LAYER_ARGUMENTS = ("name", "dtype", "trainable", "autocast")


def _disabled(value):
    """0, None or a range of zeros switch a component off."""
    if value is None:
        return True
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value == 0
    return isinstance(value, (tuple, list)) and all(
        isinstance(v, (int, float)) and v == 0 for v in value
    )


def _generation_labels(labels, classes):
    """`labels` as a list (or a `{label: class}` dict) -> (labels, classes)."""
    if labels is None:
        raise ValueError(
            "`labels` (the label values of the input maps) is required. "
            "Received: labels=None"
        )
    if isinstance(labels, dict) or (
        isinstance(labels, list) and labels and isinstance(labels[0], list)
    ):
        pairs = labels.items() if isinstance(labels, dict) else labels
        if classes is not None:
            raise ValueError(
                "`classes` must be None when `labels` maps labels to classes. "
                f"Received: classes={classes!r}"
            )
        labels, classes = [int(k) for k, _ in pairs], [int(v) for _, v in pairs]
    labels = [int(v) for v in np.asarray(labels).ravel()]
    if not labels:
        raise ValueError(f"`labels` must not be empty. Received: labels={labels!r}")
    return labels, None if classes is None else [int(v) for v in np.ravel(classes)]


def _target_mapping(output_labels):
    """`{input label: target label}` from a list, pairs or a dict."""
    if isinstance(output_labels, dict) or (
        isinstance(output_labels, list)
        and output_labels
        and isinstance(output_labels[0], (list, tuple))
    ):
        pairs = (
            output_labels.items() if isinstance(output_labels, dict) else output_labels
        )
        return {int(k): int(v) for k, v in pairs}
    return {int(v): int(v) for v in np.ravel(output_labels)}


@contextlib.contextmanager
def _user_names(names):
    """Re-raise a component's ValueError with the flat argument names."""
    try:
        yield
    except ValueError as error:
        message = str(error)
        for component_name, flat_name in names.items():
            if component_name != flat_name:
                message = re.sub(
                    rf"(?<![\w.]){re.escape(component_name)}(?=[`=\[])",
                    flat_name,
                    message,
                )
        raise ValueError(message) from None


def _build(role, layer_class, arguments, names, **fixed):
    """One component from its flat arguments, errors in the flat names."""
    with _user_names(names):
        return layer_class(**arguments, **fixed)


def _components(arguments, seed, dtype):
    """The component layers, in chain order, for a full set of flat arguments."""
    by_role = {}
    names = {}
    for flat, (role, argument, _) in ARGUMENTS.items():
        by_role.setdefault(role, {})[argument] = arguments[flat]
        names.setdefault(role, {})[argument] = flat

    def seeded(role):
        return {"seed": None if seed is None else seed + SEED_OFFSETS[role]}

    a = arguments
    order = check_choice(a["order"], "order", tuple(ORDERS))
    layers = {}
    spatial = by_role["spatial"]
    if (
        a["output_shape"] is not None
        or a["return_transform"]
        or not all(
            _disabled(a[k])
            for k in ("translation", "rotation", "scaling", "shear", "deformation_std")
        )
    ):
        layers["spatial"] = _build(
            "spatial", RandomSpatialTransform, spatial, names["spatial"],
            dtype=dtype, **seeded("spatial"),
        )  # fmt: skip
    if not _disabled(a["flip_probability"]):
        flip = dict(by_role["flip"], axes=(a["flip_axis"],))
        layers["flip"] = _build(
            "flip", RandomFlip, flip, dict(names["flip"], axes="flip_axis"),
            left_right_axis=a["flip_axis"], dtype=dtype, **seeded("flip"),
        )  # fmt: skip
    mixture = dict(by_role["mixture"])
    mixture["labels"], mixture["classes"] = _generation_labels(
        mixture["labels"], mixture["classes"]
    )
    layers["mixture"] = _build(
        "mixture", RandomGaussianMixture, mixture, names["mixture"],
        dtype=dtype, **seeded("mixture"),
    )  # fmt: skip
    if not _disabled(a["bias_std"]):
        layers["bias"] = _build(
            "bias", RandomBiasField, by_role["bias"], names["bias"],
            dtype=dtype, **seeded("bias"),
        )  # fmt: skip
    elif a["return_bias_field"]:
        raise ValueError(
            "`return_bias_field=True` needs a bias field (`bias_std` > 0). "
            f"Received: bias_std={a['bias_std']!r}"
        )
    if a["clip"] is not None:
        layers["clip"] = _build(
            "clip", NormalizeIntensity, by_role["clip"], names["clip"],
            method="minmax", dtype=dtype,
        )  # fmt: skip
    if not _disabled(a["gamma_std"]):
        layers["gamma"] = _build(
            "gamma", RandomGamma, by_role["gamma"], names["gamma"],
            dtype=dtype, **seeded("gamma"),
        )  # fmt: skip
    if not _disabled(a["blur_sigma"]):
        layers["blur"] = _build(
            "blur", RandomGaussianBlur, by_role["blur"], names["blur"],
            dtype=dtype, **seeded("blur"),
        )  # fmt: skip
    if not (_disabled(a["max_spacing"]) and a["data_spacing"] is None):
        resolution = dict(by_role["resolution"])
        if _disabled(resolution["max_spacing"]):
            resolution["max_spacing"] = 9.0  # unused with `data_spacing`
        layers["resolution"] = _build(
            "resolution", RandomResolution, resolution, names["resolution"],
            dtype=dtype, **seeded("resolution"),
        )  # fmt: skip
    if not _disabled(a["noise_std"]):
        layers["noise"] = _build(
            "noise", RandomGaussianNoise, by_role["noise"], names["noise"],
            dtype=dtype, **seeded("noise"),
        )  # fmt: skip
    check_choice(a["normalization"], "normalization", NORMALIZATIONS)
    if a["normalization"] is not None:
        layers["normalization"] = NormalizeIntensity(
            method=a["normalization"], dtype=dtype
        )
    targets = _targets(a["output_labels"], a["one_hot"], dtype)
    return [layers[role] for role in ORDERS[order] if role in layers] + targets


def _targets(output_labels, one_hot, dtype):
    """RemapLabels (and OneHot) turning generation labels into targets."""
    if output_labels is None:
        if one_hot:
            raise ValueError(
                "`one_hot=True` needs `output_labels` (the target labels, whose "
                "sorted order gives the channels). Received: output_labels=None"
            )
        return []
    mapping = _target_mapping(output_labels)
    if not one_hot:
        return [RemapLabels(mapping, unknown_value=0, dtype=dtype)]
    targets = sorted(set(mapping.values()))
    index = {v: i for i, v in enumerate(targets)}
    # Unlisted labels go to background's channel, or to no channel at all.
    unknown = index.get(0, len(targets))
    remap = RemapLabels(
        {k: index[v] for k, v in mapping.items()}, unknown_value=unknown
    )
    return [remap, OneHot(len(targets), dtype=dtype)]


def _flat_arguments(labels, overrides):
    """Every flat argument: the plain defaults, then `overrides`."""
    overrides = dict(overrides)
    for old, new in DEPRECATED_ARGUMENTS.items():
        if old in overrides:
            if new in overrides:
                raise ValueError(
                    f"Give `{new}` only (`{old}` is its deprecated name). "
                    f"Received: {old}={overrides[old]!r}, {new}={overrides[new]!r}"
                )
            warnings.warn(
                f"`{old}` is deprecated: use `{new}`.", DeprecationWarning, stacklevel=4
            )
            overrides[new] = overrides.pop(old)
    unknown = sorted(set(overrides) - set(ARGUMENTS))
    if unknown:
        raise ValueError(
            f"Unknown LabelsToImage argument(s) {unknown}. Expected names from "
            f"LabelsToImage.ARGUMENTS. Received: {', '.join(unknown)}"
        )
    arguments = {name: default for name, (_, _, default) in ARGUMENTS.items()}
    arguments.update(overrides)
    arguments["labels"] = labels
    return arguments


@keras.saving.register_keras_serializable(package="synthlayers")
class LabelsToImage(BaseRandomLayer):
    """Synthesise random images and their targets from label maps, in graph.

    A chain of the library's layers applied in order to
    `{"segmentation_masks": label_map}`: each component sees the images and
    label maps so far, and what it adds (the images, a displacement field, a
    bias field) stays in the output. All draws are per sample and
    vectorised. Build it in one of three ways:

    - `LabelsToImage.synthseg(labels, ...)` or `.synthmorph(labels, ...)`:
      the anchors' settings (see those docstrings for the tables), any flat
      argument overridden by keyword;
    - `LabelsToImage(labels, **flat_arguments)`: the same chain with every
      random component off except the mixture, so that a custom chain says
      what it uses;
    - `LabelsToImage(components=[...])`: any list of layers (or their
      serialised configs), e.g. your own chain of `RandomSpatialTransform`,
      `RandomGaussianMixture`, ... and `RemapLabels`.

    The flat arguments, each forwarded to one component (`ARGUMENTS` holds
    the table; a `0`/`None` value of the first argument of a line switches
    its component off):

    | component | flat arguments |
    |---|---|
    | `RandomSpatialTransform` | `output_shape`, `placement`, `translation`, `rotation`, `scaling`, `shear`, `affine_probability`, `deformation_std`, `deformation_grid_shape`, `integration_steps`, `integrate_at_half_resolution`, `deformation_probability`, `return_transform` |
    | `RandomFlip` | `flip_probability`, `flip_axis`, `label_swap` |
    | `RandomGaussianMixture` | `labels`, `classes`, `mean_range`, `std_range`, `prior_means`, `prior_stds`, `num_channels`, `background_zero_probability`, `background_mean_range`, `background_std_range`, `background_range_probability` |
    | `RandomBiasField` | `bias_std`, `bias_grid_shape`, `bias_probability`, `return_bias_field` |
    | `NormalizeIntensity(clip=...)` | `clip`: clip to `(low, high)` and min-max before the gamma |
    | `RandomGamma` | `gamma_std`, `gamma_probability` |
    | `RandomGaussianBlur` | `blur_sigma`, `blur_probability` |
    | `RandomResolution` | `max_spacing`, `isotropic_probability`, `data_spacing`, `thickness`, `resolution_noise_std`, `resolution_probability` |
    | `RandomGaussianNoise` | `noise_std`, `noise_probability` |
    | `NormalizeIntensity` | `normalization`: `"minmax"`, `"percentile"` or `None` |
    | `RemapLabels` (+ `OneHot`) | `output_labels`, `one_hot` |

    `order` (`"synthseg"` or `"synthmorph"`) sets the order of the intensity
    components: SynthSeg's mixture, bias, clip, gamma, blur, resolution,
    noise; neurite's mixture, blur, bias, clip, gamma, resolution, noise.
    Defaults to `"synthseg"`. Errors name the flat argument.

    Reference:
        Billot et al., "SynthSeg: Segmentation of brain MRI scans of any
        contrast and resolution without retraining", Medical Image Analysis
        2023. Hoffmann et al., "SynthMorph: learning contrast-invariant
        registration without acquired images", IEEE TMI 2022.

    Args:
        labels: generation labels (the label values of the input maps) as a
            list, or a `{label: class}` dict. Labels absent from it get
            intensity 0. Give it, or `components`.
        components: the chain as a list of layers or their serialised
            configs; then give no flat argument. Defaults to `None`.
        target_labels: the label value of each channel of one-hot targets.
            Only with `components` (the flat arguments derive it). Defaults
            to `None`: the channel indices.
        seed: integer seed; each random component gets `seed` plus a fixed
            offset of its own (`SEED_OFFSETS`). Defaults to `None`.
        **kwargs: the flat arguments above, and base layer arguments such as
            `name` and `dtype`.

    Call arguments:
        data: an integer label map or a dict with `"segmentation_masks"`.
        training: if `False`, deterministic: centred crop/pad, the mixture's
            central contrast, no augmentation. Defaults to `True`.

    Input shape:
        `(batch, *spatial, 1)` integers, 2 or 3 spatial axes.

    Output shape:
        A dict: `"images"` `(batch, *output_shape, num_channels)` floats,
        `"segmentation_masks"` `(batch, *output_shape, 1)` int32 (or
        `(batch, *output_shape, num_targets)` floats with `one_hot=True`),
        and the requested extras.

    Example:

    >>> import numpy as np
    >>> labels = np.zeros((2, 64, 64, 1), "int32")
    >>> labels[:, 16:48, 16:48] = 2
    >>> labels[:, 24:40, 24:40] = 41
    >>> generator = LabelsToImage.synthseg([0, 2, 41], output_shape=(48, 48), seed=0)
    >>> out = generator(labels)
    >>> tuple(out["images"].shape), tuple(out["segmentation_masks"].shape)
    ((2, 48, 48, 1), (2, 48, 48, 1))
    >>> generator.target_labels
    [0, 2, 41]
    """

    ARGUMENTS = ARGUMENTS

    def __init__(
        self, labels=None, components=None, target_labels=None, seed=None, **kwargs
    ):
        base = {k: kwargs.pop(k) for k in BASE_LAYER_ARGUMENTS if k in kwargs}
        super().__init__(seed=seed, **base)
        if components is None:
            if target_labels is not None:
                raise ValueError(
                    "`target_labels` goes with `components`; the flat arguments "
                    f"derive it. Received: target_labels={target_labels!r}"
                )
            arguments = _flat_arguments(labels, kwargs)
            components = _components(arguments, seed, self.dtype_policy)
            if arguments["output_labels"] is not None and arguments["one_hot"]:
                mapping = _target_mapping(arguments["output_labels"])
                target_labels = sorted(set(mapping.values()))
        elif labels is not None or kwargs:
            raise ValueError(
                "Give either `components` or `labels` with flat arguments, not "
                f"both. Received: labels={labels!r}, arguments={sorted(kwargs)}"
            )
        self.components = [
            c if isinstance(c, keras.layers.Layer) else keras.saving.deserialize_keras_object(c)
            for c in components
        ]  # fmt: skip
        mixtures = [c for c in self.components if isinstance(c, RandomGaussianMixture)]
        if len(mixtures) != 1:
            raise ValueError(
                "`components` must hold exactly one RandomGaussianMixture (it "
                f"makes the images). Received: components={self.components!r}"
            )
        self.mixture = mixtures[0]
        self.one_hot = any(isinstance(c, OneHot) for c in self.components)
        self.target_labels = self._target_labels(target_labels)

    def _target_labels(self, target_labels):
        if target_labels is not None:
            return [int(v) for v in target_labels]
        remaps = [c for c in self.components if isinstance(c, RemapLabels)]
        if not remaps:
            return sorted(self.mixture.labels)
        values = set(int(v) for v in remaps[-1].values)
        if self.one_hot:
            encode = [c for c in self.components if isinstance(c, OneHot)][-1]
            return list(range(encode.num_classes))
        return sorted(values | {int(remaps[-1].unknown_value)})

    @property
    def num_targets(self):
        """One-hot channels, or the largest integer target plus one."""
        if self.one_hot:
            return len(self.target_labels)
        return max(self.target_labels) + 1

    def _labels(self, data):
        if isinstance(data, dict):
            if set(data) != {MASKS}:
                raise ValueError(
                    f"LabelsToImage takes a label map or a dict with only "
                    f"'{MASKS}'. Received keys: {sorted(data)}"
                )
            data = data[MASKS]
        self.check_inputs({MASKS: data})
        if data.shape[-1] != 1:
            raise ValueError(
                "LabelsToImage expects a label map with 1 channel. "
                f"Received: {MASKS}.shape={tuple(data.shape)}"
            )
        return data

    def _run(self, labels, apply):
        """Chain `apply(component, images-and-masks)`; extras accumulate."""
        data = {MASKS: labels}
        for component in self.components:
            inputs = {k: data[k] for k in (IMAGES, MASKS) if k in data}
            data.update(apply(component, inputs))
        return data

    def call(self, data, training=True):
        labels = self._labels(data)
        outputs = self._run(labels, lambda c, x: c(x, training=training))
        if not self.one_hot:
            outputs[MASKS] = ops.cast(outputs[MASKS], "int32")
        return outputs

    def compute_output_spec(self, data, training=True):
        labels = self._labels(data)
        outputs = self._run(labels, lambda c, x: c.compute_output_spec(x))
        if not self.one_hot:
            outputs[MASKS] = keras.KerasTensor(outputs[MASKS].shape, "int32")
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            components=[
                keras.saving.serialize_keras_object(c) for c in self.components
            ],
            target_labels=list(self.target_labels),
        )
        return config

    @classmethod
    def synthseg(
        cls, labels, classes=None, output_labels=None, one_hot=False,
        output_shape=None, seed=None, **overrides,
    ):  # fmt: skip
        """SynthSeg's BrainGenerator (Billot et al. 2023), as a LabelsToImage.

        | SynthSeg (`BrainGenerator`, `labels_to_image_model`) | default | here |
        |---|---|---|
        | `generation_labels`, `generation_classes` | - | `labels`, `classes` |
        | `output_labels` (`segmentation_labels`) | - | `output_labels` |
        | `output_shape`: a random crop of the deformed volume | - | `output_shape`, `placement="random"` (the output grid at a random position inside the input: SynthSeg's translation) |
        | `translation_bounds` | False (the crop translates) | `translation=0` |
        | `flipping` | True | `flip_probability=0.5`, `flip_axis=0`, `label_swap` = FreeSurfer's sided pairs among `labels` |
        | `rotation_bounds` | 15 | `rotation=15` (degrees) |
        | `scaling_bounds` | 0.2 | `scaling=0.2` |
        | `shearing_bounds` | 0.012 | `shear=0.012` |
        | `nonlin_std` | 4 | `deformation_std=4.0` (output voxels, vectors rescaled when the field is resized) |
        | `nonlin_scale` | 0.04 | `deformation_grid_shape=0.04` |
        | `VecInt` steps | 7, at half resolution | `integration_steps=7`, on the control grid (`integrate_at_half_resolution=True` for SynthSeg's) |
        | `prior_distributions`, `prior_means`, `prior_stds` | uniform, U(0, 250), U(0, 30) | `mean_range=(0, 250)`, `std_range=(0, 30)` (or `prior_means`/`prior_stds`) |
        | background (`model_inputs.py`) | mean = std = 0 in 5% of samples, mean U(0, 15) and std U(0, 5) in 25% | `background_zero_probability=0.05`, `background_mean_range=(0, 15)`, `background_std_range=(0, 5)`, `background_range_probability=0.25/0.95` |
        | `bias_field_std`, `bias_scale` | 0.7, 0.025, in 95% of samples | `bias_std=0.7`, `bias_grid_shape=0.025`, `bias_probability=0.95` |
        | `IntensityAugmentation(clip=300, normalise=True, gamma_std=0.5)` | clip [0, 300], min-max, gamma | `clip=(0, 300)`, `gamma_std=0.5` |
        | `randomise_res`, `max_res_iso`, `max_res_aniso` | True, 4, 8 | `max_spacing=8.0` for both (one maximum), `isotropic_probability=0.1`, `resolution_probability=0.95` |
        | resolution blur | sigma `0.75 * spacing`, a window truncated to 15 taps | the same sigma, untruncated (SynthSeg's effective sigma saturates at coarse spacing: nominal 3.0/4.5/6.0 behave as about 2.9/3.6/3.9 voxels) |
        | `data_res`, `thickness` | None | `data_spacing`, `thickness` |
        | final normalisation | none after the acquisition | `normalization="minmax"` |
        | chain order | mixture, bias, clip, min-max, gamma, acquisition | `order="synthseg"` |

        Differences that stay: the affine is composed as rotation, shear,
        scaling (R H S; SynthSeg: S H R); the mixture's standard deviations
        are drawn per sample like the means; the deformation's control grid
        is sized by the output grid, not the input.

        Any flat argument of `LabelsToImage` can be overridden by keyword.
        """
        label_values, _ = _generation_labels(labels, classes)
        arguments = dict(
            placement="random", rotation=15.0, scaling=0.2, shear=0.012,
            translation=0.0, deformation_std=4.0, deformation_grid_shape=0.04,
            integration_steps=7, flip_probability=0.5, flip_axis=0,
            label_swap=left_right_swap(label_values) or None,
            mean_range=(0.0, 250.0), std_range=(0.0, 30.0),
            background_zero_probability=0.05, background_mean_range=(0.0, 15.0),
            background_std_range=(0.0, 5.0), background_range_probability=0.25 / 0.95,
            bias_std=0.7, bias_grid_shape=0.025, bias_probability=0.95,
            clip=(0.0, 300.0), gamma_std=0.5,
            max_spacing=8.0, isotropic_probability=0.1, resolution_probability=0.95,
            normalization="minmax", order="synthseg",
        )  # fmt: skip
        arguments.update(overrides)
        return cls(
            labels, classes=classes, output_labels=output_labels, one_hot=one_hot,
            output_shape=output_shape, seed=seed, **arguments,
        )  # fmt: skip

    @classmethod
    def synthmorph(
        cls, labels, output_labels=None, one_hot=False, output_shape=None,
        seed=None, **overrides,
    ):  # fmt: skip
        """neurite's `labels_to_image`, as SynthMorph uses it.

        | neurite `labels_to_image` | default | here |
        |---|---|---|
        | `in_label_list` | - | `labels` (each its own class) |
        | `out_label_list` | - | `output_labels` |
        | `warp_res`, `warp_std` | 16, 0.5 | `deformation_grid_shape=1/16`, `deformation_std=1.0`: neurite draws the SVF at half resolution with std up to 0.5 of its voxels and rescales by 2 |
        | integration | 5 steps at half resolution | `integration_steps=5`, `integrate_at_half_resolution=True` |
        | `mean_min`, `mean_max` | 25 (background 0), 225 | `mean_range=(25, 225)`, `background_mean_range=(0, 225)` |
        | `std_min`, `std_max` | 5 (background 0), 25 | `std_range=(5, 25)`, `background_std_range=(0, 25)` |
        | `zero_background` | 0.2 | `background_zero_probability=0.2` |
        | `blur_std` | 1 | `blur_sigma=1.0` (U(0, 1) voxels per axis) |
        | `bias_res`, `bias_std` | 40, 0.3 | `bias_grid_shape=1/40`, `bias_std=0.3` |
        | clip | [0, 255] | `clip=(0, 255)` |
        | `normalize` | True (min-max) | in the clip step |
        | `gamma_std` | 0.25 | `gamma_std=0.25` |
        | chain order | mixture, zero background, blur, bias, clip, min-max, gamma | `order="synthmorph"` |
        | affine, resolution model | none | off |

        Any flat argument of `LabelsToImage` can be overridden by keyword.
        """
        arguments = dict(
            deformation_std=1.0, deformation_grid_shape=1 / 16, integration_steps=5,
            integrate_at_half_resolution=True,
            mean_range=(25.0, 225.0), std_range=(5.0, 25.0),
            background_zero_probability=0.2, background_mean_range=(0.0, 225.0),
            background_std_range=(0.0, 25.0), background_range_probability=1.0,
            blur_sigma=1.0, bias_std=0.3, bias_grid_shape=1 / 40, clip=(0.0, 255.0),
            gamma_std=0.25, normalization=None, order="synthmorph",
        )  # fmt: skip
        arguments.update(overrides)
        return cls(
            labels, output_labels=output_labels, one_hot=one_hot,
            output_shape=output_shape, seed=seed, **arguments,
        )  # fmt: skip
