"""LabelsToImage: the whole synthesis chain from flat arguments, with presets."""

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
from synthlayers.validation import check_shape

NORMALIZATIONS = (None, "minmax", "percentile")


def _disabled(value):
    """0, None or a (0, 0) range switch a component off."""
    if value is None:
        return True
    if isinstance(value, (int, float)):
        return value == 0
    return isinstance(value, (tuple, list)) and all(
        isinstance(v, (int, float)) and v == 0 for v in value
    )


def _json(value):
    """Arguments as JSON-friendly values (arrays -> lists, dict keys kept)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return [[_json(k), _json(v)] for k, v in value.items()]
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return value


def _generation_labels(labels, classes):
    """`labels` as a list (or a `{label: class}` dict) -> (labels, classes)."""
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


def _output_remap(output_labels, one_hot, dtype):
    """RemapLabels (and OneHot) turning generation labels into targets."""
    if output_labels is None:
        if one_hot:
            raise ValueError(
                "`one_hot=True` needs `output_labels` (the target labels, whose "
                "sorted order gives the channels). Received: output_labels=None"
            )
        return None, None
    if isinstance(output_labels, dict) or (
        isinstance(output_labels, list)
        and output_labels
        and isinstance(output_labels[0], list)
    ):
        pairs = (
            output_labels.items() if isinstance(output_labels, dict) else output_labels
        )
        mapping = {int(k): int(v) for k, v in pairs}
    else:
        mapping = {int(v): int(v) for v in np.ravel(output_labels)}
    if not one_hot:
        return RemapLabels(mapping, unknown_value=0, dtype=dtype), None
    targets = sorted(set(mapping.values()))
    index = {v: i for i, v in enumerate(targets)}
    # Unlisted labels go to background's channel, or to no channel at all.
    unknown = index.get(0, len(targets))
    remap = RemapLabels(
        {k: index[v] for k, v in mapping.items()}, unknown_value=unknown
    )
    return remap, OneHot(len(targets), dtype=dtype)


@keras.saving.register_keras_serializable(package="synthlayers")
class LabelsToImage(BaseRandomLayer):
    """Synthesise random images and their targets from label maps, in graph.

    The chain of SynthSeg/SynthMorph, each component switchable (a 0 or
    `None` argument switches it off) and with its own probability, all draws
    per sample and vectorised:

    1. `RandomSpatialTransform`: affine + diffeomorphic deformation, composed
       and resampled once, nearest neighbour, onto `output_shape`;
    2. `RandomFlip` along `flip_axis` with a left/right `label_swap`;
    3. `RandomGaussianMixture`: per-sample, per-class means and stds;
    4. `RandomBiasField`; 5. `RandomGamma` (after min-max normalisation);
    6. `RandomGaussianBlur`; 7. `RandomResolution` (acquisition model);
    8. `RandomGaussianNoise`; 9. `NormalizeIntensity`;
    10. targets: `output_labels` remap (labels not listed go to 0), integer
        or one-hot in sorted label order.

    Presets: `LabelsToImage.synthseg(...)` and `LabelsToImage.synthmorph(...)`
    (see their docstrings for the mapping of the anchors' parameters). The
    constructor's own defaults switch every random component off except the
    Gaussian mixture, so that a custom chain says what it uses.

    Reference:
        Billot et al., "SynthSeg: Segmentation of brain MRI scans of any
        contrast and resolution without retraining", Medical Image Analysis
        2023. Hoffmann et al., "SynthMorph: learning contrast-invariant
        registration without acquired images", IEEE TMI 2022.

    Args:
        labels: generation labels (the label values of the input maps) as a
            list, or a `{label: class}` dict. Labels absent from it get
            intensity 0.
        classes: generation class of each label (labels of one class share
            intensity parameters); `None` gives each label its own class.
            Defaults to `None`.
        output_labels: target labels: `None` (keep the input labels), a list
            (labels not in it become 0) or a `{input: target}` dict. Defaults
            to `None`.
        one_hot: return one-hot targets, channels in sorted target order
            (unlisted labels go to the channel of label 0, or to no channel
            if 0 is not a target). Defaults to `False`.
        output_shape: spatial output shape; `None` keeps the input's.
            Defaults to `None`.
        placement: `"center"` or `"random"` placement of the output grid.
            Defaults to `"center"`.
        translation, rotation, scaling, shear, affine_probability: the affine
            part, as in `RandomAffine`. Default to no affine transform.
        deformation_std, svf_shape, integration_steps,
        integrate_at_half_resolution, deformation_probability: the
            deformation, as in `RandomDeformation` (`deformation_std=0` off).
            Default to no deformation.
        flip_probability, flip_axis, label_swap: left/right flips, as in
            `RandomFlip`. Default to no flip.
        mean_range, std_range, prior_means, prior_stds, num_channels,
        background_zero_probability: the Gaussian mixture, as in
            `RandomGaussianMixture`. Default to means U(0, 250), stds
            U(0, 30), one channel.
        bias_std, bias_shape, bias_probability: the bias field, as `std`,
            `shape` and `probability` of `RandomBiasField`. Default to off.
        gamma_std, gamma_probability: as in `RandomGamma`. Default to off.
        blur_sigma, blur_probability: as in `RandomGaussianBlur`. Default to
            off.
        max_spacing, isotropic_probability, data_spacing, thickness,
        resolution_noise_std, resolution_probability: the acquisition model,
            as in `RandomResolution` (`max_spacing=None` and
            `data_spacing=None` switch it off). Default to off.
        noise_std, noise_probability: as in `RandomGaussianNoise`. Default to
            off.
        normalization: `"minmax"`, `"percentile"` or `None`. Defaults to
            `"minmax"`.
        return_transform: also return `"displacement"` and `"affine"` (see
            `RandomSpatialTransform`). Defaults to `False`.
        return_bias_field: also return `"bias_field"`. Defaults to `False`.
        seed: integer seed; component `i` gets seed `seed + i`. Defaults to
            `None`.
        **kwargs: base layer arguments such as `name` and `dtype`.

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
    >>> out["images"].shape, out["segmentation_masks"].shape
    (TensorShape([2, 48, 48, 1]), TensorShape([2, 48, 48, 1]))
    """

    def __init__(
        self,
        labels,
        classes=None,
        output_labels=None,
        one_hot=False,
        output_shape=None,
        placement="center",
        translation=0.0,
        rotation=0.0,
        scaling=0.0,
        shear=0.0,
        affine_probability=1.0,
        deformation_std=0.0,
        svf_shape=0.04,
        integration_steps=7,
        integrate_at_half_resolution=False,
        deformation_probability=1.0,
        flip_probability=0.0,
        flip_axis=0,
        label_swap=None,
        mean_range=(0.0, 250.0),
        std_range=(0.0, 30.0),
        prior_means=None,
        prior_stds=None,
        num_channels=1,
        background_zero_probability=0.0,
        bias_std=0.0,
        bias_shape=0.025,
        bias_probability=1.0,
        gamma_std=0.0,
        gamma_probability=1.0,
        blur_sigma=0.0,
        blur_probability=1.0,
        max_spacing=None,
        isotropic_probability=0.1,
        data_spacing=None,
        thickness=None,
        resolution_noise_std=0.0,
        resolution_probability=1.0,
        noise_std=0.0,
        noise_probability=1.0,
        normalization="minmax",
        return_transform=False,
        return_bias_field=False,
        seed=None,
        **kwargs,
    ):
        arguments = {
            k: v
            for k, v in locals().items()
            if k not in ("self", "kwargs", "__class__")
        }
        super().__init__(seed=seed, **kwargs)
        self.arguments = {k: _json(v) for k, v in arguments.items() if k != "seed"}
        gen_labels, gen_classes = _generation_labels(labels, classes)
        self.output_shape = check_shape(output_shape, "output_shape", allow_none=True)
        check_choice(normalization, "normalization", NORMALIZATIONS)
        self.one_hot = bool(one_hot)
        self.num_channels = num_channels
        self.return_transform = bool(return_transform)
        self.return_bias_field = bool(return_bias_field)
        dtype = self.dtype_policy
        seeds = iter(range(1, 100))

        def child_seed():
            index = next(seeds)
            return None if seed is None else seed + index

        self.spatial = RandomSpatialTransform(
            output_shape=output_shape, placement=placement,
            translation=translation, rotation=rotation, scaling=scaling, shear=shear,
            affine_probability=affine_probability, deformation_std=deformation_std,
            svf_shape=svf_shape, integration_steps=integration_steps,
            integrate_at_half_resolution=integrate_at_half_resolution,
            deformation_probability=deformation_probability,
            return_transform=return_transform, seed=child_seed(), dtype=dtype,
        )  # fmt: skip
        self.flip = None
        if not _disabled(flip_probability):
            self.flip = RandomFlip(
                axes=(flip_axis,), probability=flip_probability, label_swap=label_swap,
                left_right_axis=flip_axis, seed=child_seed(), dtype=dtype,
            )  # fmt: skip
        self.mixture = RandomGaussianMixture(
            gen_labels, classes=gen_classes, mean_range=mean_range, std_range=std_range,
            prior_means=prior_means, prior_stds=prior_stds, num_channels=num_channels,
            background_zero_probability=background_zero_probability,
            seed=child_seed(), dtype=dtype,
        )  # fmt: skip
        self.bias = None
        if not _disabled(bias_std):
            self.bias = RandomBiasField(
                std=bias_std, shape=bias_shape, probability=bias_probability,
                return_field=return_bias_field, seed=child_seed(), dtype=dtype,
            )  # fmt: skip
        elif return_bias_field:
            raise ValueError(
                "`return_bias_field=True` needs a bias field (`bias_std` > 0). "
                f"Received: bias_std={bias_std!r}"
            )
        self.intensity_layers = []
        if not _disabled(gamma_std):
            self.intensity_layers.append(
                RandomGamma(std=gamma_std, probability=gamma_probability,
                            seed=child_seed(), dtype=dtype)
            )  # fmt: skip
        if not _disabled(blur_sigma):
            self.intensity_layers.append(
                RandomGaussianBlur(sigma=blur_sigma, probability=blur_probability,
                                   seed=child_seed(), dtype=dtype)
            )  # fmt: skip
        if not (_disabled(max_spacing) and data_spacing is None):
            self.intensity_layers.append(
                RandomResolution(
                    max_spacing=9.0 if _disabled(max_spacing) else max_spacing,
                    isotropic_probability=isotropic_probability,
                    data_spacing=data_spacing, thickness=thickness,
                    noise_std=resolution_noise_std, probability=resolution_probability,
                    seed=child_seed(), dtype=dtype,
                )
            )  # fmt: skip
        if not _disabled(noise_std):
            self.intensity_layers.append(
                RandomGaussianNoise(std=noise_std, probability=noise_probability,
                                    seed=child_seed(), dtype=dtype)
            )  # fmt: skip
        if normalization is not None:
            self.intensity_layers.append(
                NormalizeIntensity(method=normalization, dtype=dtype)
            )
        self.remap, self.encode = _output_remap(output_labels, self.one_hot, dtype)

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

    def call(self, data, training=True):
        labels = self._labels(data)
        outputs = {}
        spatial = self.spatial({MASKS: labels}, training=training)
        labels = spatial.pop(MASKS)
        outputs.update(spatial)  # displacement and affine when asked for
        if self.flip is not None:
            labels = self.flip(labels, training=training)
        images = self.mixture({MASKS: labels}, training=training)[IMAGES]
        if self.bias is not None:
            images = self.bias(images, training=training)
            if self.return_bias_field:
                outputs["bias_field"] = images["bias_field"]
                images = images[IMAGES]
        for layer in self.intensity_layers:
            images = layer(images, training=training)
        if self.remap is not None:
            labels = self.remap(labels)
        if self.encode is not None:
            labels = self.encode(labels)
        else:
            labels = ops.cast(labels, "int32")
        return {IMAGES: images, MASKS: labels, **outputs}

    def compute_output_spec(self, data, training=True):
        labels = self._labels(data)
        shape = tuple(labels.shape)
        batch, ndim = shape[0], len(shape) - 2
        spatial = self.output_shape or shape[1:-1]
        if self.output_shape is not None and len(self.output_shape) != ndim:
            raise ValueError(
                f"`output_shape` must have one entry per spatial axis ({ndim}). "
                f"Received: output_shape={self.output_shape}"
            )
        images = keras.KerasTensor(
            (batch, *spatial, self.num_channels), self.compute_dtype
        )
        if self.encode is not None:
            masks = keras.KerasTensor(
                (batch, *spatial, self.encode.num_classes), self.compute_dtype
            )
        else:
            masks = keras.KerasTensor((batch, *spatial, 1), "int32")
        outputs = {IMAGES: images, MASKS: masks}
        if self.return_transform:
            outputs["displacement"] = keras.KerasTensor(
                (batch, *spatial, ndim), "float32"
            )
            outputs["affine"] = keras.KerasTensor(
                (batch, ndim + 1, ndim + 1), "float32"
            )
        if self.return_bias_field:
            outputs["bias_field"] = keras.KerasTensor(
                (batch, *spatial, 1), self.compute_dtype
            )
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update({k: _json(v) for k, v in self.arguments.items()})
        return config

    @classmethod
    def synthseg(
        cls, labels, classes=None, output_labels=None, one_hot=False,
        output_shape=None, seed=None, **overrides,
    ):  # fmt: skip
        """SynthSeg's BrainGenerator defaults (Billot et al. 2023).

        | SynthSeg (`BrainGenerator`) | default | here |
        |---|---|---|
        | `generation_labels`, `generation_classes` | - | `labels`, `classes` |
        | `output_labels` (`segmentation_labels`) | - | `output_labels` |
        | `output_shape` | - | `output_shape` |
        | `flipping` | True | `flip_probability=0.5`, `flip_axis=0`, `label_swap` = FreeSurfer pairs in `labels` |
        | `rotation_bounds` | 15 | `rotation=15` (degrees) |
        | `scaling_bounds` | 0.2 | `scaling=0.2` |
        | `shearing_bounds` | 0.012 | `shear=0.012` |
        | `translation_bounds` | False | `translation=0` |
        | `nonlin_std` | 4 | `deformation_std=4.0` (output voxels, vectors rescaled) |
        | `nonlin_scale` | 0.04 | `svf_shape=0.04` |
        | `VecInt` steps | 7 | `integration_steps=7`, on the control grid (SynthSeg: half resolution; `integrate_at_half_resolution=True` for that) |
        | `prior_distributions`, `prior_means`, `prior_stds` | uniform, U(0, 250), U(0, 30) | `mean_range=(0, 250)`, `std_range=(0, 30)` (or `prior_means`/`prior_stds`) |
        | `bias_field_std`, `bias_scale` | 0.7, 0.025 | `bias_std=0.7`, `bias_shape=0.025` |
        | gamma (`IntensityAugmentation`) | std 0.5 | `gamma_std=0.5` |
        | `randomise_res`, `max_res_iso`, `max_res_aniso` | True, 4, 8 | `max_spacing=8.0` for both (one maximum), `isotropic_probability=0.1`, `resolution_probability=0.95` |
        | `data_res`, `thickness` | None | `data_spacing`, `thickness` |
        | normalisation | min-max | `normalization="minmax"` |

        Any constructor argument can be overridden by keyword.
        """
        label_values, _ = _generation_labels(labels, classes)
        arguments = dict(
            rotation=15.0, scaling=0.2, shear=0.012, translation=0.0,
            deformation_std=4.0, svf_shape=0.04, integration_steps=7,
            flip_probability=0.5, flip_axis=0, label_swap=left_right_swap(label_values) or None,
            mean_range=(0.0, 250.0), std_range=(0.0, 30.0),
            bias_std=0.7, bias_shape=0.025, gamma_std=0.5,
            max_spacing=8.0, isotropic_probability=0.1, resolution_probability=0.95,
            normalization="minmax",
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
        """neurite's `labels_to_image` defaults, as SynthMorph uses them.

        | neurite `labels_to_image` | default | here |
        |---|---|---|
        | `in_label_list` | - | `labels` (each its own class) |
        | `out_label_list` | - | `output_labels` |
        | `warp_res`, `warp_std` | 16, 0.5 | `svf_shape=1/16`, `deformation_std=1.0`: neurite draws the SVF at half resolution with std up to 0.5 of its voxels and rescales by 2 |
        | velocity integration steps | 5 | `integration_steps=5` |
        | `bias_res`, `bias_std` | 40, 0.3 | `bias_shape=1/40`, `bias_std=0.3` |
        | `blur_std` | 1 | `blur_sigma=1.0` (U(0, 1) voxels per axis) |
        | `gamma_std` | 0.25 | `gamma_std=0.25` |
        | `mean_min`, `mean_max` | 25, 225 | `mean_range=(25, 225)` |
        | `std_min`, `std_max` | 5, 25 | `std_range=(5, 25)` |
        | `zero_background` | 0.2 | `background_zero_probability=0.2` |
        | `normalize` | True | `normalization="minmax"` |
        | affine, resolution model | none | off |

        Any constructor argument can be overridden by keyword.
        """
        arguments = dict(
            deformation_std=1.0, svf_shape=1 / 16, integration_steps=5,
            mean_range=(25.0, 225.0), std_range=(5.0, 25.0),
            background_zero_probability=0.2, bias_std=0.3, bias_shape=1 / 40,
            blur_sigma=1.0, gamma_std=0.25, normalization="minmax",
        )  # fmt: skip
        arguments.update(overrides)
        return cls(
            labels, output_labels=output_labels, one_hot=one_hot,
            output_shape=output_shape, seed=seed, **arguments,
        )  # fmt: skip
