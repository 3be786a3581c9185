"""RandomAffine: per-sample random affine transforms, 2D and 3D."""

import keras
from keras import ops

from synthlayers.layers.base import batch_size_of
from synthlayers.layers.base import spatial_shape_of
from synthlayers.layers.sampling import DISTRIBUTIONS
from synthlayers.layers.sampling import draw_from_ranges
from synthlayers.layers.sampling import draw_mask
from synthlayers.layers.sampling import where_mask
from synthlayers.layers.spatial_base import BaseSpatialLayer
from synthlayers.ops.affine import affine_matrix
from synthlayers.ops.grid import sampling_coordinates
from synthlayers.validation import check_bool
from synthlayers.validation import check_choice
from synthlayers.validation import check_probability
from synthlayers.validation import parse_axis_ranges

# name -> (kind of range, identity value, number of parameters for ndim)
AFFINE_PARAMETERS = {
    "translation": ("symmetric", 0.0, lambda n: n),
    "rotation": ("symmetric", 0.0, lambda n: 1 if n == 2 else 3),
    "scaling": ("multiplicative", 1.0, lambda n: n),
    "shear": ("symmetric", 0.0, lambda n: n * (n - 1)),
}


class AffineSampler:
    """Draws per-sample affine matrices; shared by RandomAffine and
    RandomSpatialTransform so both read their arguments the same way.

    `names` maps the sampler's argument names (`translation`, ...,
    `probability`) to the caller's, for error messages.
    """

    def __init__(
        self,
        translation,
        rotation,
        scaling,
        shear,
        distribution,
        isotropic_scaling,
        probability,
        names=None,
    ):
        self.names = {
            name: name
            for name in (
                *AFFINE_PARAMETERS,
                "distribution",
                "isotropic_scaling",
                "probability",
            )
        }
        self.names.update(names or {})
        self.values = {
            "translation": translation,
            "rotation": rotation,
            "scaling": scaling,
            "shear": shear,
        }
        for name in self.values:
            self.ranges(name, ndim=None)
        self.distribution = check_choice(
            distribution, self.names["distribution"], DISTRIBUTIONS
        )
        self.isotropic_scaling = check_bool(
            isotropic_scaling, self.names["isotropic_scaling"]
        )
        self.probability = check_probability(probability, self.names["probability"])

    def ranges(self, name, ndim):
        """The `(min, max)` of each parameter; only checks them if `ndim` is None."""
        kind, _, count = AFFINE_PARAMETERS[name]
        return parse_axis_ranges(
            self.values[name],
            self.names[name],
            None if ndim is None else count(ndim),
            kind,
            min_value=0.0 if kind == "multiplicative" else None,
        )

    def is_identity(self, ndim):
        return self.probability == 0 or all(
            all(
                low == high == AFFINE_PARAMETERS[name][1]
                for low, high in self.ranges(name, ndim)
            )
            for name in self.values
        )

    def sample(self, seed_generator, batch_size, spatial_shape):
        """`(batch, ndim + 1, ndim + 1)` matrices about the volume centre."""
        ndim = len(spatial_shape)
        mask = draw_mask(seed_generator, batch_size, self.probability)
        params = {}
        for name in self.values:
            ranges = self.ranges(name, ndim)
            if name == "scaling" and self.isotropic_scaling:
                one = draw_from_ranges(
                    seed_generator, batch_size, ranges[:1], self.distribution
                )
                values = ops.repeat(one, ndim, axis=1)
            else:
                values = draw_from_ranges(
                    seed_generator, batch_size, ranges, self.distribution
                )
            params[name] = where_mask(mask, values, AFFINE_PARAMETERS[name][1])
        center = tuple((n - 1) / 2 for n in spatial_shape)
        return affine_matrix(center=center, **params)

    def get_config(self):
        return dict(
            self.values,
            distribution=self.distribution,
            isotropic_scaling=self.isotropic_scaling,
        )


@keras.saving.register_keras_serializable(package="synthlayers")
class RandomAffine(BaseSpatialLayer):
    """Randomly translate, rotate, scale and shear images and label maps.

    Every sample of the batch gets its own affine transform about the centre
    of the volume, drawn from the ranges below; images are resampled linearly
    and label maps by nearest neighbour with the same transform, once, so
    labels stay integers and hold only input labels (or 0 outside).

    A range argument is one number `x`, meaning `(-x, x)` (`(1 - x, 1 + x)`
    for `scaling`), a `(min, max)` pair, or a list of such ranges, one per
    parameter: per spatial axis for `translation` and `scaling`, one angle in
    2D or three in 3D for `rotation` (`rotation[a]` turns in the plane of the
    two axes other than `a`), and `ndim * (ndim - 1)` off-diagonal terms for
    `shear`. Two plain numbers always mean `(min, max)`.

    The transform maps output voxel coordinates to input ones (pull-back):
    `x_in = R @ H @ S @ (x_out - c) + c + t` with `c` the volume centre,
    `S` the scaling, `H` the shear, `R` the rotation and `t` the translation;
    see `synthlayers.ops.affine_matrix`.

    The defaults are SynthSeg's ranges (`rotation_bounds=15`,
    `scaling_bounds=0.2`, `shearing_bounds=0.012`, no translation), so a
    layer built without arguments augments as SynthSeg does; give `0` to
    switch a parameter off.

    Args:
        translation: range in voxels. Defaults to `0.0`.
        rotation: range in degrees. Defaults to `15.0` (SynthSeg's
            `rotation_bounds`).
        scaling: range of factors; a number `x` means `(1 - x, 1 + x)`.
            Defaults to `0.2` (SynthSeg's `scaling_bounds`).
        shear: range of shear terms. Defaults to `0.012` (SynthSeg's
            `shearing_bounds`).
        distribution: `"uniform"` on each range, or `"normal"` centred on the
            range with a standard deviation of a quarter of its width,
            clipped to it. Defaults to `"uniform"`.
        isotropic_scaling: one scaling factor for all axes (drawn from the
            first axis' range). Defaults to `False`.
        probability: chance that a sample is transformed at all.
            Defaults to `1.0`.
        fill_mode: `"constant"` or `"nearest"`. Defaults to `"constant"`.
        fill_value: image value outside the input in constant mode (label
            maps get 0). Defaults to `0.0`.
        seed: integer seed of the layer's `SeedGenerator`. Defaults to `None`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        data: images, an integer label map, or a dict with `"images"` and/or
            `"segmentation_masks"` (the same transform for both).
        training: if `False`, return the input unchanged. Defaults to `True`.

    Input shape:
        `(batch, *spatial, channels)` with 2 or 3 spatial axes.

    Output shape:
        Same as the input. Images in the layer's compute dtype, label maps in
        their input dtype.

    Example:

    >>> import numpy as np
    >>> layer = RandomAffine(rotation=15, scaling=0.1, seed=0)
    >>> labels = np.zeros((2, 32, 32, 32, 1), "int32")
    >>> labels[:, 8:24, 8:24, 8:24] = 3
    >>> tuple(layer(labels).shape)
    (2, 32, 32, 32, 1)
    """

    def __init__(
        self,
        translation=0.0,
        rotation=15.0,
        scaling=0.2,
        shear=0.012,
        distribution="uniform",
        isotropic_scaling=False,
        probability=1.0,
        fill_mode="constant",
        fill_value=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            fill_mode=fill_mode, fill_value=fill_value, seed=seed, **kwargs
        )
        self.sampler = AffineSampler(
            translation,
            rotation,
            scaling,
            shear,
            distribution,
            isotropic_scaling,
            probability,
        )

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        shape = spatial_shape_of(data, self.__class__.__name__)
        matrix = self.sampler.sample(
            self.seed_generator_for(seed), batch_size_of(data), shape
        )
        return {
            "matrix": matrix,
            "coordinates": sampling_coordinates(shape, matrix=matrix),
        }

    def get_config(self):
        config = super().get_config()
        config.update(self.sampler.get_config(), probability=self.sampler.probability)
        return config
