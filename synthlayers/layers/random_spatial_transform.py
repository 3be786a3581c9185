"""RandomSpatialTransform: affine and deformation, one resampling, any output grid."""

import keras
import numpy as np
from keras import ops

from synthlayers.layers.base import batch_size_of
from synthlayers.layers.base import spatial_shape_of
from synthlayers.layers.random_affine import AffineSampler
from synthlayers.layers.random_deformation import SYNTHSEG_DEFORMATION_STD
from synthlayers.layers.random_deformation import SYNTHSEG_GRID_SHAPE
from synthlayers.layers.random_deformation import DeformationSampler
from synthlayers.layers.spatial_base import BaseSpatialLayer
from synthlayers.ops.grid import centered_offset
from synthlayers.ops.grid import coordinate_axes
from synthlayers.ops.grid import identity_grid
from synthlayers.validation import check_bool
from synthlayers.validation import check_choice
from synthlayers.validation import check_shape
from synthlayers.validation import renamed_argument

PLACEMENTS = ("center", "random")


@keras.saving.register_keras_serializable(package="synthlayers")
class RandomSpatialTransform(BaseSpatialLayer):
    """Random affine and deformation composed into one map, resampled once.

    The spatial half of SynthSeg/SynthMorph synthesis. Per sample: an affine
    transform (as `RandomAffine`) and a diffeomorphic deformation (as
    `RandomDeformation`, drawn on the output grid) are composed into one
    coordinate map on the output grid, `x_in = A @ (x_out + offset + u(x_out))`,
    and the input is resampled once, directly onto the output grid: images
    linearly, label maps by nearest neighbour. Only the output grid is
    computed, so a 256^3 label map to a 160^3 output costs the work of 160^3.

    The output grid may be smaller (crop), equal or larger (pad) than the
    input, placed at the centre or at a random integer offset per sample
    (the whole output grid inside the input for a crop, the whole input
    inside the output for a pad).

    The defaults are SynthSeg's spatial augmentation (rotation 15 degrees,
    scaling 0.2, shear 0.012, no translation; deformation std 4 voxels on a
    control grid of 0.04 of the shape, 7 squarings), so a layer built
    without arguments augments as SynthSeg does; give `0` to switch a part
    off (`deformation_std=0` for an affine transform only).

    Args:
        output_shape: spatial output shape, or `None` for the input's.
            Defaults to `None`.
        placement: `"center"` or `"random"` placement of the output grid.
            Defaults to `"center"`.
        translation, rotation, scaling, shear, distribution,
        isotropic_scaling: the affine ranges, as in `RandomAffine`.
            Default to SynthSeg's: `0.0`, `15.0` degrees, `0.2`, `0.012`,
            `"uniform"` and `False`.
        affine_probability: chance that a sample gets an affine transform.
            Defaults to `1.0`.
        deformation_std: range of the SVF standard deviation in voxels, as
            `std` in `RandomDeformation`; `0` disables the deformation.
            Defaults to `4.0` (SynthSeg's `nonlin_std`).
        deformation_grid_shape: control grid of the SVF, as `grid_shape` in
            `RandomDeformation`, relative to the output shape. Defaults to
            `0.04` (SynthSeg's `nonlin_scale`). Formerly `svf_shape`
            (deprecated alias, removed in the next release).
        integration_steps, integrate_at_half_resolution: as in
            `RandomDeformation`. Default to `7` and `False`.
        deformation_probability: chance that a sample is deformed. Defaults
            to `1.0`.
        fill_mode: `"constant"` or `"nearest"`. Defaults to `"constant"`.
        fill_value: image value outside the input in constant mode (label
            maps get 0). Defaults to `0.0`.
        return_transform: also return `"displacement"`, the
            `(batch, *output_shape, ndim)` field `d` with
            `output(x) = input(x + d(x))` (voxels; use it with
            `SpatialTransformer`), and `"affine"`, the
            `(batch, ndim + 1, ndim + 1)` matrix `A`. The output is then
            always a dict. Defaults to `False`.
        seed: integer seed of the layer's `SeedGenerator`, from which the
            placement, the affine and the deformation are drawn in turn.
            Defaults to `None`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        data: images, an integer label map, or a dict with `"images"` and/or
            `"segmentation_masks"` (the same transform for both).
        training: if `False`, no random transform: only the centred crop or
            pad to `output_shape` (the input itself when shapes agree).
            Defaults to `True`.

    Input shape:
        `(batch, *spatial, channels)` with 2 or 3 spatial axes.

    Output shape:
        `(batch, *output_shape, channels)`.

    Example:

    >>> import numpy as np
    >>> layer = RandomSpatialTransform(
    ...     output_shape=(48, 48), rotation=15, scaling=0.2,
    ...     deformation_std=3.0, seed=0)
    >>> labels = np.zeros((2, 64, 64, 1), "int32")
    >>> labels[:, 16:48, 16:48] = 2
    >>> tuple(layer(labels).shape)
    (2, 48, 48, 1)
    """

    renamed_arguments = {"svf_shape": "deformation_grid_shape"}

    def __init__(
        self,
        output_shape=None,
        placement="center",
        translation=0.0,
        rotation=15.0,
        scaling=0.2,
        shear=0.012,
        distribution="uniform",
        isotropic_scaling=False,
        affine_probability=1.0,
        deformation_std=SYNTHSEG_DEFORMATION_STD,
        deformation_grid_shape=SYNTHSEG_GRID_SHAPE,
        integration_steps=7,
        integrate_at_half_resolution=False,
        deformation_probability=1.0,
        fill_mode="constant",
        fill_value=0.0,
        return_transform=False,
        seed=None,
        **kwargs,
    ):
        deformation_grid_shape = renamed_argument(
            kwargs,
            "svf_shape",
            "deformation_grid_shape",
            deformation_grid_shape,
            SYNTHSEG_GRID_SHAPE,
        )
        super().__init__(
            fill_mode=fill_mode, fill_value=fill_value, seed=seed, **kwargs
        )
        self.output_shape = check_shape(output_shape, "output_shape", allow_none=True)
        self.placement = check_choice(placement, "placement", PLACEMENTS)
        self.affine = AffineSampler(
            translation,
            rotation,
            scaling,
            shear,
            distribution,
            isotropic_scaling,
            affine_probability,
            names={"probability": "affine_probability"},
        )
        self.deformation = DeformationSampler(
            deformation_std,
            deformation_grid_shape,
            integration_steps,
            integrate_at_half_resolution,
            deformation_probability,
            names={
                "std": "deformation_std",
                "grid_shape": "deformation_grid_shape",
                "probability": "deformation_probability",
            },
        )
        self.return_transform = check_bool(return_transform, "return_transform")

    def _output_shape(self, input_shape):
        if self.output_shape is None:
            return tuple(input_shape)
        if len(self.output_shape) != len(input_shape):
            raise ValueError(
                f"`output_shape` must have one entry per spatial axis of the input "
                f"({len(input_shape)}). Received: output_shape={self.output_shape}"
            )
        return self.output_shape

    def compute_spatial_output_shape(self, spatial_shape):
        return self._output_shape(spatial_shape)

    def _offset(self, seed, batch_size, input_shape, output_shape, training):
        center = centered_offset(input_shape, output_shape)
        if self.placement == "center" or not training:
            return center
        # Integer offsets, uniform over all placements that keep the smaller
        # grid inside the larger one.
        difference = np.subtract(input_shape, output_shape).astype("float32")
        low = ops.convert_to_tensor(np.minimum(0, difference))
        width = ops.convert_to_tensor(np.abs(difference) + 1)
        u = keras.random.uniform((batch_size, len(input_shape)), seed=seed)
        return ops.floor(low + u * width)

    def get_random_transformation(self, data, training=True, seed=None):
        seed = self.seed_generator_for(seed)
        input_shape = spatial_shape_of(data, self.__class__.__name__)
        output_shape = self._output_shape(input_shape)
        ndim = len(input_shape)
        batch_size = batch_size_of(data)
        offset = self._offset(seed, batch_size, input_shape, output_shape, training)
        matrix = displacement = None
        if training and not self.affine.is_identity(ndim):
            matrix = self.affine.sample(seed, batch_size, input_shape)
        if training and not self.deformation.is_identity():
            # On the small integration grid; `coordinate_axes` resizes it.
            displacement = self.deformation.sample_coarse(
                seed, batch_size, output_shape
            )
        if (
            matrix is None
            and displacement is None
            and output_shape == input_shape
            and not self.return_transform
        ):
            return None
        # One float32 (batch, *output_shape) tensor per axis, never stacked.
        axes = coordinate_axes(
            output_shape,
            matrix=matrix,
            control_displacement=displacement,
            offset=offset,
            batch_size=batch_size,
        )
        return {"coordinate_axes": axes, "matrix": matrix}

    def extra_outputs(self, data, transformation):
        if not self.return_transform:
            return {}
        coordinates = ops.stack(transformation["coordinate_axes"], axis=-1)
        ndim = coordinates.shape[-1]
        displacement = coordinates - identity_grid(coordinates.shape[1:-1])
        matrix = transformation["matrix"]
        if matrix is None:
            batch = ops.shape(coordinates)[0]
            matrix = ops.broadcast_to(ops.eye(ndim + 1), (batch, ndim + 1, ndim + 1))
        return {"displacement": displacement, "affine": matrix}

    def extra_output_spec(self, data):
        if not self.return_transform:
            return {}
        x = next(iter(data.values()))
        ndim = len(x.shape) - 2
        spatial = self._output_shape(tuple(x.shape[1:-1]))
        return {
            "displacement": keras.KerasTensor((x.shape[0], *spatial, ndim), "float32"),
            "affine": keras.KerasTensor((x.shape[0], ndim + 1, ndim + 1), "float32"),
        }

    def get_config(self):
        config = super().get_config()
        affine = self.affine.get_config()
        deformation = self.deformation.get_config()
        config.update(
            output_shape=self.output_shape,
            placement=self.placement,
            affine_probability=self.affine.probability,
            deformation_std=deformation.pop("std"),
            deformation_grid_shape=deformation.pop("grid_shape"),
            deformation_probability=self.deformation.probability,
            return_transform=self.return_transform,
            **affine,
            **deformation,
        )
        return config
