"""LabelsToImagePair: moving and fixed images with their labels (SynthMorph)."""

import math

import keras
import numpy as np
from keras import ops

from synthlayers.layers.base import IMAGES
from synthlayers.layers.base import MASKS
from synthlayers.layers.base import BaseRandomLayer
from synthlayers.layers.base import is_integer_dtype
from synthlayers.layers.labels_to_image import ARGUMENTS as GENERATOR_ARGUMENTS
from synthlayers.layers.labels_to_image import LabelsToImage
from synthlayers.layers.random_label_map import RandomLabelMap
from synthlayers.layers.sampling import draw_from_ranges
from synthlayers.ops.grid import centered_offset
from synthlayers.ops.grid import coordinate_axes
from synthlayers.ops.integrate import integrate_velocity
from synthlayers.ops.resample import resample_axes
from synthlayers.ops.resize import resize
from synthlayers.validation import check_grid_shape
from synthlayers.validation import check_int
from synthlayers.validation import check_shape
from synthlayers.validation import parse_range
from synthlayers.validation import resolve_grid_shape

MOVING_IMAGES = "moving_images"
MOVING_MASKS = "moving_segmentation_masks"
FIXED_IMAGES = "fixed_images"
FIXED_MASKS = "fixed_segmentation_masks"

# A fixed seed offset per component of the presets: the deformation draws
# from the layer's own generator (`seed`), the others from their own.
SEED_OFFSETS = {"generator": 1, "label_maps": 2}

# SynthMorph's SVF settings (neurite `labels_to_image`, voxelmorph's
# `train_synthmorph.py` and its shapes tutorial), in our units: standard
# deviations in voxels of the output grid (neurite's half-resolution voxels
# times 2), control grids as fractions of the output shape.
SHAPES_DEFORMATION = dict(
    deformation_std=6.0, deformation_grid_shapes=(1 / 8, 1 / 16, 1 / 32)
)
BRAINS_DEFORMATION = dict(deformation_std=1.0, deformation_grid_shapes=(1 / 16,))
SHAPES_NUM_LABELS = 26
PAIR_ARGUMENTS = (
    "output_shape",
    "deformation_std",
    "deformation_grid_shapes",
    "integration_steps",
)


def _check_grid_shapes(value):
    name = "deformation_grid_shapes"
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(
            f"`{name}` must be a non-empty list of control grids, each as "
            "`deformation_grid_shape` of LabelsToImage (a fraction of the shape, "
            f"a number of points, or one per axis). Received: {name}={value!r}"
        )
    return tuple(check_grid_shape(v, name) for v in value)


def _split_overrides(overrides):
    """Preset keywords -> (this layer's arguments, the generator's)."""
    pair = {k: v for k, v in overrides.items() if k in PAIR_ARGUMENTS}
    generator = {k: v for k, v in overrides.items() if k not in PAIR_ARGUMENTS}
    unknown = sorted(set(generator) - set(GENERATOR_ARGUMENTS) - {"name", "dtype"})
    if unknown:
        raise ValueError(
            f"Unknown argument(s) {unknown}: expected those of LabelsToImagePair "
            f"({', '.join(PAIR_ARGUMENTS)}) or flat arguments of LabelsToImage. "
            f"Received: {', '.join(unknown)}"
        )
    return pair, generator


def _offset_seed(seed, role):
    return None if seed is None else seed + SEED_OFFSETS[role]


@keras.saving.register_keras_serializable(package="synthlayers")
class LabelsToImagePair(BaseRandomLayer):
    """Synthesise moving and fixed images with their label maps, in graph.

    SynthMorph's training pairs. Each of the two images of a pair gets its
    own deformation and its own contrast: its label map is warped by a
    random diffeomorphism (drawn here), then `generator` (a `LabelsToImage`,
    e.g. `LabelsToImage.synthmorph(...)`) renders it with a random contrast.
    The moving and fixed label maps (and images) therefore differ but share
    their label set. The pairs come from

    - one label map per pair (call with a label map): two independent
      draws from the same map, as SynthMorph's "shapes" training;
    - two label maps per pair (call with `[moving_map, fixed_map]`), as its
      "brains" training (two subjects);
    - no data (`label_map_generator`, e.g. a `RandomLabelMap`; call with
      any tensor with a batch axis): one random label map per pair, then
      two draws.

    The deformation is neurite's: a stationary velocity field on half the
    output grid, the sum of i.i.d. normal noise drawn on each control grid of
    `deformation_grid_shapes` (each with its own standard deviation, drawn
    uniformly per sample from `deformation_std`) and resized linearly,
    integrated by `integration_steps` squarings, upsampled to the output grid
    with its vectors rescaled; labels are resampled once, by nearest
    neighbour, from the input grid (centred crop or pad to `output_shape`).
    Moving and fixed maps go through the deformation and the generator as
    one batch of `2 * batch` samples, so every draw is per sample and
    vectorised.

    Use `LabelsToImagePair.shapes(...)` and `LabelsToImagePair.brains(...)`
    for SynthMorph's settings (see their tables).

    Reference:
        - [Hoffmann et al., SynthMorph: learning contrast-invariant
          registration without acquired images, IEEE Transactions on Medical
          Imaging 2022](https://doi.org/10.1109/TMI.2021.3116879)

    Args:
        generator: a `LabelsToImage` (or its serialised config) rendering
            a label map as an image; its targets (integer labels or one-hot)
            are the pair's label maps.
        label_map_generator: a layer making label maps from nothing (e.g.
            `RandomLabelMap`, or its config), or `None` to take label maps
            as input. Defaults to `None`.
        output_shape: spatial shape of the pair, or `None` for the input's
            (for `label_map_generator`, its shape). Defaults to `None`.
        deformation_std: range of the standard deviation of each noise
            field of the SVF, in voxels of the output grid; a number `x`
            means `(0, x)`; `0` switches the deformation off. Defaults to
            `1.0` (SynthMorph's brains).
        deformation_grid_shapes: the control grids of the noise fields,
            summed; each as `deformation_grid_shape` of `LabelsToImage` (a
            fraction of the output shape, a number of points, or one per
            axis). Defaults to `(1 / 16,)`.
        integration_steps: squarings of the SVF integration. Defaults to
            `5` (SynthMorph).
        seed: integer seed of the deformation draws (the generators keep
            their own seeds; the presets give them `seed` plus a fixed
            offset, `SEED_OFFSETS`). Defaults to `None`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        data: an integer label map `(batch, *spatial, 1)`, a list
            `[moving_map, fixed_map]` of two such maps, or (with
            `label_map_generator`) any tensor with a batch axis.
        training: if `False`, no deformation and the generator's
            deterministic contrast (so one label map gives identical moving
            and fixed images). Defaults to `True`.

    Output shape:
        A dict: `"moving_images"` and `"fixed_images"`
        `(batch, *output_shape, channels)` floats, and
        `"moving_segmentation_masks"` and `"fixed_segmentation_masks"`, the
        generator's targets: `(batch, *output_shape, 1)` int32 labels or
        `(batch, *output_shape, K)` one-hot floats.

    Example:

    >>> import numpy as np
    >>> labels = np.zeros((2, 32, 32, 1), "int32")
    >>> labels[:, 8:24, 8:24] = 1
    >>> labels[:, 12:20, 12:20] = 2
    >>> pair = LabelsToImagePair.brains([0, 1, 2], seed=0)
    >>> out = pair(labels)
    >>> tuple(out["moving_images"].shape), tuple(out["fixed_segmentation_masks"].shape)
    ((2, 32, 32, 1), (2, 32, 32, 1))
    >>> shapes = LabelsToImagePair.shapes((32, 32), num_labels=4, seed=0)
    >>> tuple(shapes(np.zeros((2, 1)))["moving_images"].shape)
    (2, 32, 32, 1)
    """

    def __init__(
        self,
        generator,
        label_map_generator=None,
        output_shape=None,
        deformation_std=BRAINS_DEFORMATION["deformation_std"],
        deformation_grid_shapes=BRAINS_DEFORMATION["deformation_grid_shapes"],
        integration_steps=5,
        seed=None,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        if isinstance(generator, dict):
            generator = keras.saving.deserialize_keras_object(generator)
        if not isinstance(generator, LabelsToImage):
            raise ValueError(
                "`generator` must be a LabelsToImage (e.g. from "
                "LabelsToImage.synthmorph(labels)). "
                f"Received: generator={generator!r}"
            )
        if isinstance(label_map_generator, dict):
            label_map_generator = keras.saving.deserialize_keras_object(
                label_map_generator
            )
        if label_map_generator is not None and not isinstance(
            label_map_generator, keras.layers.Layer
        ):
            raise ValueError(
                "`label_map_generator` must be a Keras layer returning label maps "
                "(a RandomLabelMap) or None. "
                f"Received: label_map_generator={label_map_generator!r}"
            )
        self.generator = generator
        self.label_map_generator = label_map_generator
        self.output_shape = check_shape(output_shape, "output_shape", allow_none=True)
        self.deformation_std = deformation_std
        self.std_range = parse_range(
            deformation_std, "deformation_std", "nonnegative", min_value=0.0
        )
        self.deformation_grid_shapes = _check_grid_shapes(deformation_grid_shapes)
        self.integration_steps = check_int(
            integration_steps, "integration_steps", min_value=0
        )

    # --- properties of the targets ------------------------------------------

    @property
    def target_labels(self):
        """The generator's target labels (one-hot channel order, or values)."""
        return self.generator.target_labels

    @property
    def one_hot(self):
        """Whether the label maps are one-hot."""
        return self.generator.one_hot

    # --- inputs -------------------------------------------------------------

    def _label_maps(self, data, training):
        """The `(2 * batch, *spatial, 1)` label maps: moving first, then fixed."""
        if self.label_map_generator is not None:
            maps = self.label_map_generator(data, training=training)
            maps = maps[MASKS] if isinstance(maps, dict) else maps
            return ops.concatenate([maps, maps], axis=0)
        if isinstance(data, (list, tuple)):
            if len(data) != 2:
                raise ValueError(
                    "LabelsToImagePair takes one label map or a list of two "
                    f"[moving, fixed]. Received: a list of {len(data)}"
                )
            moving, fixed = data
            self._check_map(moving, "moving")
            self._check_map(fixed, "fixed")
            if tuple(moving.shape[1:]) != tuple(fixed.shape[1:]):
                raise ValueError(
                    "The moving and fixed label maps must have the same shape. "
                    f"Received: moving.shape={tuple(moving.shape)}, "
                    f"fixed.shape={tuple(fixed.shape)}"
                )
            return ops.concatenate([moving, fixed], axis=0)
        self._check_map(data, "label_map")
        return ops.concatenate([data, data], axis=0)

    @staticmethod
    def _check_map(x, name):
        if (
            len(x.shape) not in (4, 5)
            or x.shape[-1] != 1
            or not is_integer_dtype(x.dtype)
        ):
            raise ValueError(
                f"LabelsToImagePair expects `{name}` as an integer label map of "
                "shape (batch, *spatial, 1) with 2 or 3 spatial axes. Received: "
                f"{name}.shape={tuple(x.shape)}, "
                f"{name}.dtype={keras.backend.standardize_dtype(x.dtype)}"
            )

    def _output_shape(self, input_shape):
        if self.output_shape is None:
            return tuple(input_shape)
        if len(self.output_shape) != len(input_shape):
            raise ValueError(
                f"`output_shape` must have one entry per spatial axis of the label "
                f"maps ({len(input_shape)}). Received: output_shape={self.output_shape}"
            )
        return self.output_shape

    # --- the deformation ------------------------------------------------------

    def _half_shape(self, output_shape):
        return tuple(max(2, math.ceil(n / 2)) for n in output_shape)

    def sample_displacement(self, count, output_shape, seed=None):
        """`count` displacements on half the output grid, in output voxels.

        The `(count, *half_shape, ndim)` field `u` whose linear resize
        (corners aligned, no rescaling) to `output_shape` is the deformation:
        label map `i` is resampled at `x + u(x)`.
        """
        seed = self.seed_generator_for(seed)
        ndim = len(output_shape)
        half = self._half_shape(output_shape)
        num = len(self.deformation_grid_shapes)
        stds = draw_from_ranges(seed, count, [self.std_range] * num)
        velocity = None
        for i, grid_shape in enumerate(self.deformation_grid_shapes):
            control = resolve_grid_shape(
                grid_shape, output_shape, "deformation_grid_shapes"
            )
            control = tuple(min(c, h) for c, h in zip(control, half, strict=True))
            noise = keras.random.normal((count, *control, ndim), seed=seed)
            std = ops.reshape(stds[:, i], (-1,) + (1,) * (ndim + 1))
            field = resize(noise * std, half)  # values (noise), in output voxels
            velocity = field if velocity is None else velocity + field
        # Output voxels -> voxels of the half grid, integrate, and back.
        zoom = np.array(
            [(h - 1) / (n - 1) for h, n in zip(half, output_shape, strict=True)],
            "float32",
        )
        velocity = velocity * ops.convert_to_tensor(zoom)
        displacement = integrate_velocity(velocity, self.integration_steps)
        return displacement * ops.convert_to_tensor(1.0 / zoom)

    def _deform(self, maps, training):
        input_shape = tuple(maps.shape[1:-1])
        output_shape = self._output_shape(input_shape)
        deform = training and self.std_range[1] > 0
        if not deform and output_shape == input_shape:
            return maps
        count = ops.shape(maps)[0]
        displacement = self.sample_displacement(count, output_shape) if deform else None
        axes = coordinate_axes(
            output_shape,
            control_displacement=displacement,
            offset=centered_offset(input_shape, output_shape),
            batch_size=count,
        )
        return resample_axes(maps, axes, "nearest", fill_mode="constant", fill_value=0)

    # --- call ---------------------------------------------------------------

    def call(self, data, training=True):
        training = bool(training)
        maps = self._label_maps(data, training)
        maps = self._deform(maps, training)
        out = self.generator(maps, training=training)
        images, masks = out[IMAGES], out[MASKS]
        batch = ops.shape(images)[0] // 2
        return {
            MOVING_IMAGES: images[:batch],
            MOVING_MASKS: masks[:batch],
            FIXED_IMAGES: images[batch:],
            FIXED_MASKS: masks[batch:],
        }

    def compute_output_spec(self, data, training=True):
        if self.label_map_generator is not None:
            spec = self.label_map_generator.compute_output_spec(data)
            spec = spec[MASKS] if isinstance(spec, dict) else spec
        elif isinstance(data, (list, tuple)):
            spec = data[0]
        else:
            spec = data
        batch = spec.shape[0]
        output_shape = self._output_shape(tuple(spec.shape[1:-1]))
        out = self.generator.compute_output_spec(
            keras.KerasTensor((batch, *output_shape, 1), "int32")
        )
        images, masks = out[IMAGES], out[MASKS]
        return {
            MOVING_IMAGES: images,
            MOVING_MASKS: masks,
            FIXED_IMAGES: images,
            FIXED_MASKS: masks,
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            generator=keras.saving.serialize_keras_object(self.generator),
            label_map_generator=None
            if self.label_map_generator is None
            else keras.saving.serialize_keras_object(self.label_map_generator),
            output_shape=None if self.output_shape is None else list(self.output_shape),
            deformation_std=self.deformation_std,
            deformation_grid_shapes=[
                list(g) if isinstance(g, tuple) else g
                for g in self.deformation_grid_shapes
            ],
            integration_steps=self.integration_steps,
        )
        return config

    # --- presets ----------------------------------------------------------------

    @classmethod
    def shapes(
        cls,
        output_shape,
        num_labels=SHAPES_NUM_LABELS,
        one_hot=False,
        seed=None,
        **overrides,
    ):
        """SynthMorph's "shapes" training pairs: random label maps, no data.

        One `RandomLabelMap` per pair (`num_labels` labels of warped smooth
        noise), two independent deformations and contrasts.

        | SynthMorph (TMI 2022; neurite `labels_to_image`, voxelmorph shapes tutorial) | source | here |
        |---|---|---|
        | label maps | argmax of J smooth noise images, each warped by its own field; J = 26 in the paper, 16 in the tutorial | `RandomLabelMap(output_shape, num_labels=26)` with its defaults |
        | pairs | one label map, two deformations | one `RandomLabelMap` draw per pair, two draws of deformation and contrast |
        | `warp_std` | 3 (half-resolution voxels), drawn U(0, 3) per scale | `deformation_std=6.0` (output voxels) |
        | `warp_res` | 8, 16, 32: noise at 1/8, 1/16, 1/32 of the shape, summed | `deformation_grid_shapes=(1/8, 1/16, 1/32)` |
        | integration | 5 steps at half resolution, x2, upsampled | `integration_steps=5` on half the output grid, upsampled with vectors rescaled |
        | intensities | `labels_to_image` defaults (J labels, label 0 the background) | `LabelsToImage.synthmorph(range(num_labels), deformation_std=0)` (see its table) |
        | targets | one-hot of all labels | integer labels `0..num_labels-1` (`one_hot=True` for one-hot); `RegistrationModel` one-hots them |

        Any argument of this layer (`deformation_std`,
        `deformation_grid_shapes`, `integration_steps`) or flat argument of
        `LabelsToImage` can be overridden by keyword.

        Args:
            output_shape: spatial shape of the pairs (2 or 3 integers).
            num_labels: labels per random map. Defaults to `26`.
            one_hot: one-hot targets. Defaults to `False`.
            seed: integer seed. Defaults to `None`.
            **overrides: see above.

        Returns:
            A `LabelsToImagePair` to call with any tensor with a batch axis.
        """  # noqa: E501
        pair, generator = _split_overrides(overrides)
        if "output_shape" in pair:
            raise ValueError(
                "`output_shape` is the first argument of `shapes`. Received it "
                f"twice: output_shape={pair['output_shape']!r}"
            )
        labels = list(range(check_int(num_labels, "num_labels", min_value=2)))
        generator = LabelsToImage.synthmorph(
            labels,
            output_labels=labels,
            one_hot=one_hot,
            seed=_offset_seed(seed, "generator"),
            **{"deformation_std": 0.0, **generator},
        )
        label_maps = RandomLabelMap(
            output_shape, num_labels=len(labels), seed=_offset_seed(seed, "label_maps")
        )
        arguments = {**SHAPES_DEFORMATION, "integration_steps": 5, **pair}
        return cls(generator, label_map_generator=label_maps, seed=seed, **arguments)

    @classmethod
    def brains(
        cls,
        labels,
        output_labels=None,
        one_hot=False,
        output_shape=None,
        seed=None,
        **overrides,
    ):
        """SynthMorph's "brains" training pairs, from label maps.

        | SynthMorph (voxelmorph `train_synthmorph.py`, neurite `labels_to_image`) | source | here |
        |---|---|---|
        | pairs | two subjects' label maps (`--same-subj`: one) | call with `[moving_map, fixed_map]` (or one map) |
        | `--vel-std` (`warp_std`) | 0.5 (half-resolution voxels), drawn U(0, 0.5) | `deformation_std=1.0` (output voxels) |
        | `--vel-scales` (`warp_res`) | 16 | `deformation_grid_shapes=(1/16,)` |
        | `--int-steps` | 5, at half resolution, x2, upsampled | `integration_steps=5` on half the output grid |
        | intensities (`--blur-std` 1, `--bias-std` 0.3, `--bias-scales` 40, `--gamma` 0.25, means 25-225, stds 5-25, zero background 0.2, clip 255, min-max) | neurite's chain | `LabelsToImage.synthmorph(labels, deformation_std=0)` (see its table) |
        | `--out-labels` | the labels whose overlap is optimised | `output_labels` (others become 0) |

        Any argument of this layer or flat argument of `LabelsToImage` can be
        overridden by keyword.

        Args:
            labels: the label values of the input maps.
            output_labels: the target labels (others become 0), or `None`
                for `labels`. Defaults to `None`.
            one_hot: one-hot targets. Defaults to `False`.
            output_shape: spatial shape of the pairs (centred crop or pad),
                or `None` for the input's. Defaults to `None`.
            seed: integer seed. Defaults to `None`.
            **overrides: see above.

        Returns:
            A `LabelsToImagePair` to call with one label map or two.
        """  # noqa: E501
        pair, generator = _split_overrides(overrides)
        generator = LabelsToImage.synthmorph(
            labels,
            output_labels=labels if output_labels is None else output_labels,
            one_hot=one_hot,
            seed=_offset_seed(seed, "generator"),
            **{"deformation_std": 0.0, **generator},
        )
        arguments = {**BRAINS_DEFORMATION, "integration_steps": 5, **pair}
        return cls(generator, output_shape=output_shape, seed=seed, **arguments)
