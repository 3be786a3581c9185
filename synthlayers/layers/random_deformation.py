"""RandomDeformation: smooth diffeomorphic deformations from random SVFs."""

import math

import keras
import numpy as np
from keras import ops

from synthlayers.layers.base import batch_size_of
from synthlayers.layers.base import spatial_shape_of
from synthlayers.layers.sampling import draw_from_ranges
from synthlayers.layers.sampling import draw_mask
from synthlayers.layers.sampling import where_mask
from synthlayers.layers.spatial_base import BaseSpatialLayer
from synthlayers.ops.grid import sampling_coordinates
from synthlayers.ops.integrate import integrate_velocity
from synthlayers.ops.resize import resize
from synthlayers.ops.resize import resize_displacement
from synthlayers.validation import check_bool
from synthlayers.validation import check_grid_shape
from synthlayers.validation import check_int
from synthlayers.validation import check_probability
from synthlayers.validation import parse_range
from synthlayers.validation import renamed_argument
from synthlayers.validation import resolve_grid_shape

# SynthSeg's `BrainGenerator` defaults: `nonlin_std=4`, `nonlin_scale=0.04`.
SYNTHSEG_DEFORMATION_STD = 4.0
SYNTHSEG_GRID_SHAPE = 0.04


class DeformationSampler:
    """Draws per-sample displacement fields; shared by RandomDeformation,
    RandomSpatialTransform and RandomLabelMap.

    `names` maps the sampler's argument names (`std`, `grid_shape`,
    `integration_steps`, `integrate_at_half_resolution`, `probability`) to
    the caller's, for error messages.
    """

    def __init__(
        self,
        std,
        grid_shape,
        integration_steps,
        integrate_at_half_resolution,
        probability,
        names=None,
    ):
        self.names = {
            name: name
            for name in (
                "std",
                "grid_shape",
                "integration_steps",
                "integrate_at_half_resolution",
                "probability",
            )
        }
        self.names.update(names or {})
        self.std = std
        self.std_range = parse_range(
            std, self.names["std"], "nonnegative", min_value=0.0
        )
        self.grid_shape = check_grid_shape(grid_shape, self.names["grid_shape"])
        self.integration_steps = check_int(
            integration_steps, self.names["integration_steps"], min_value=0
        )
        self.integrate_at_half_resolution = check_bool(
            integrate_at_half_resolution, self.names["integrate_at_half_resolution"]
        )
        self.probability = check_probability(probability, self.names["probability"])

    def is_identity(self):
        return self.probability == 0 or self.std_range[1] == 0

    def control_shape(self, shape):
        """Static shape of the SVF's control grid for an output `shape`.

        At least 2 points per axis and at most the axis length.
        """
        control = resolve_grid_shape(self.grid_shape, shape, self.names["grid_shape"])
        return tuple(min(c, n) for c, n in zip(control, shape))

    def sample(self, seed_generator, batch_size, shape):
        """`(batch, *shape, ndim)` displacement in voxels of the `shape` grid.

        The SVF is drawn on the control grid, i.i.d. normal with a standard
        deviation drawn per sample from `std` (in voxels of `shape`),
        integrated by scaling and squaring on the control grid (or at half
        of `shape`), then resized linearly to `shape` with its vectors
        rescaled, so `std` keeps its meaning whatever the grid.
        """
        return resize(self.sample_coarse(seed_generator, batch_size, shape), shape)

    def sample_coarse(self, seed_generator, batch_size, shape):
        """The displacement of `sample` before its final resize.

        `(batch, *grid, ndim)` on the integration grid (the control grid, or
        half of `shape`), its vectors already in voxels of `shape`: resizing
        it linearly (corners aligned, no rescaling) to `shape` gives `sample`.
        Same random draws as `sample`.
        """
        ndim = len(shape)
        control = self.control_shape(shape)
        mask = draw_mask(seed_generator, batch_size, self.probability)
        std = draw_from_ranges(seed_generator, batch_size, [self.std_range])
        std = where_mask(mask, std, 0.0)
        # Drawn in voxels of `shape`, converted to voxels of the control grid.
        zoom = ops.convert_to_tensor(
            np.array([(c - 1) / (n - 1) for c, n in zip(control, shape)], "float32")
        )
        noise = keras.random.normal((batch_size, *control, ndim), seed=seed_generator)
        velocity = noise * ops.reshape(std, (-1,) + (1,) * (ndim + 1)) * zoom
        if self.integrate_at_half_resolution:
            half = tuple(max(c, math.ceil(n / 2)) for c, n in zip(control, shape))
            velocity = resize_displacement(velocity, half)
        displacement = integrate_velocity(velocity, self.integration_steps)
        grid = tuple(displacement.shape[1:-1])
        # Vectors from voxels of the integration grid to voxels of `shape`.
        scale = np.array(
            [
                (n - 1) / (g - 1) if g > 1 and n > 1 else 1.0
                for g, n in zip(grid, shape, strict=True)
            ],
            "float32",
        )
        if np.any(scale != 1):
            displacement = displacement * ops.convert_to_tensor(scale)
        return displacement

    def get_config(self):
        grid_shape = self.grid_shape
        return {
            "std": self.std,
            "grid_shape": list(grid_shape)
            if isinstance(grid_shape, tuple)
            else grid_shape,
            "integration_steps": self.integration_steps,
            "integrate_at_half_resolution": self.integrate_at_half_resolution,
        }


@keras.saving.register_keras_serializable(package="synthlayers")
class RandomDeformation(BaseSpatialLayer):
    """Randomly deform images and label maps with smooth diffeomorphisms.

    Per sample, a stationary velocity field (SVF) is drawn at low resolution
    (a control grid), i.i.d. normal with a standard deviation itself drawn
    uniformly from `std`; it is integrated by scaling and squaring
    (`integration_steps` squarings) into a diffeomorphic displacement, which
    is resized linearly to the input grid with its vectors rescaled. Images
    are resampled linearly and label maps by nearest neighbour, once.

    The defaults are SynthSeg's deformation (`nonlin_std=4`,
    `nonlin_scale=0.04`, 7 squarings), so a layer built without arguments
    deforms as SynthSeg does; `std=0` switches it off.

    Reference:
        Billot et al., "SynthSeg: Segmentation of brain MRI scans of any
        contrast and resolution without retraining", Medical Image Analysis
        2023; Arsigny et al., "A Log-Euclidean framework for statistics on
        diffeomorphisms", MICCAI 2006 (scaling and squaring).

    Args:
        std: range of the SVF's standard deviation, in voxels of the input
            grid; a number `x` means `(0, x)`. Defaults to `4.0` (SynthSeg's
            `nonlin_std`).
        grid_shape: control grid of the SVF: a float in `(0, 1]` is a
            fraction of the input shape (`ceil(fraction * size)` points, at
            least 2 per axis), an integer the number of control points per
            axis (at least 2), or a list of those, one per spatial axis.
            Defaults to `0.04` (SynthSeg's `nonlin_scale`). Formerly
            `svf_shape` (deprecated alias, removed in the next release).
        integration_steps: number of squarings; `0` uses the SVF as the
            displacement. Defaults to `7`.
        integrate_at_half_resolution: integrate at half the input shape (as
            SynthSeg does) instead of on the control grid. Both give smooth
            diffeomorphisms from the same SVF, about 15-20% apart (RMS); the
            control grid is much cheaper. Defaults to `False`.
        probability: chance that a sample is deformed at all. Defaults to
            `1.0`.
        fill_mode: `"constant"` or `"nearest"`. Defaults to `"constant"`.
        fill_value: image value outside the input in constant mode (label
            maps get 0). Defaults to `0.0`.
        seed: integer seed of the layer's `SeedGenerator`. Defaults to `None`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        data: images, an integer label map, or a dict with `"images"` and/or
            `"segmentation_masks"` (the same deformation for both).
        training: if `False`, return the input unchanged. Defaults to `True`.

    Input shape:
        `(batch, *spatial, channels)` with 2 or 3 spatial axes.

    Output shape:
        Same as the input.

    Example:

    >>> import numpy as np
    >>> layer = RandomDeformation(std=3.0, grid_shape=8, seed=0)
    >>> labels = np.zeros((2, 64, 64, 1), "int32")
    >>> labels[:, 16:48, 16:48] = 1
    >>> tuple(layer(labels).shape)
    (2, 64, 64, 1)
    """

    renamed_arguments = {"svf_shape": "grid_shape"}

    def __init__(
        self,
        std=SYNTHSEG_DEFORMATION_STD,
        grid_shape=SYNTHSEG_GRID_SHAPE,
        integration_steps=7,
        integrate_at_half_resolution=False,
        probability=1.0,
        fill_mode="constant",
        fill_value=0.0,
        seed=None,
        **kwargs,
    ):
        grid_shape = renamed_argument(
            kwargs, "svf_shape", "grid_shape", grid_shape, SYNTHSEG_GRID_SHAPE
        )
        super().__init__(
            fill_mode=fill_mode, fill_value=fill_value, seed=seed, **kwargs
        )
        self.sampler = DeformationSampler(
            std,
            grid_shape,
            integration_steps,
            integrate_at_half_resolution,
            probability,
        )

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        shape = spatial_shape_of(data, self.__class__.__name__)
        displacement = self.sampler.sample(
            self.seed_generator_for(seed), batch_size_of(data), shape
        )
        return {
            "displacement": displacement,
            "coordinates": sampling_coordinates(shape, displacement=displacement),
        }

    def get_config(self):
        config = super().get_config()
        config.update(self.sampler.get_config(), probability=self.sampler.probability)
        return config
