"""RandomBiasField: a smooth random multiplicative intensity field."""

import keras
from keras import ops

from synthlayers.layers.base import BaseRandomLayer
from synthlayers.layers.base import batch_size_of
from synthlayers.layers.base import spatial_shape_of
from synthlayers.layers.sampling import draw_from_ranges
from synthlayers.layers.sampling import draw_mask
from synthlayers.layers.sampling import where_mask
from synthlayers.ops.resize import resize
from synthlayers.validation import check_bool
from synthlayers.validation import check_grid_shape
from synthlayers.validation import check_probability
from synthlayers.validation import parse_range
from synthlayers.validation import renamed_argument
from synthlayers.validation import resolve_grid_shape

FIELD = "bias_field"


# SynthSeg's `BrainGenerator` default `bias_scale`.
SYNTHSEG_GRID_SHAPE = 0.025


@keras.saving.register_keras_serializable(package="synthlayers")
class RandomBiasField(BaseRandomLayer):
    """Multiply images by a smooth random bias field (MRI intensity inhomogeneity).

    For every sample a standard deviation `s` is drawn uniformly from `std`,
    then a low-resolution field of independent normal values with standard
    deviation `s` on a grid of control points, which is resized linearly
    (corners aligned) to the image shape and exponentiated. The image is
    multiplied by this positive field, the same for all channels; label maps
    pass through untouched. So the logarithm of the field is piecewise
    (bi/tri)linear between control points, where it takes values of standard
    deviation `s`.

    Reference:
        - [Billot et al., SynthSeg: Segmentation of brain MRI scans of any
          contrast and resolution without retraining, Medical Image Analysis
          2023](https://doi.org/10.1016/j.media.2023.102789)
          (`bias_field_std=0.7`, `bias_scale=0.025` there).

    Args:
        std: range of the per-sample standard deviation of the log field; a
            number `x` means `(0, x)`. Defaults to `0.5`.
        grid_shape: control grid of the log field: a float in `(0, 1]` is a
            fraction of the image shape (`ceil(fraction * size)` points, at
            least 2 per axis), an integer the number of points per axis (at
            least 2), or a list of those, one per spatial axis. Defaults to
            `0.025` (SynthSeg's `bias_scale`). Formerly `shape` (deprecated
            alias, removed in the next release).
        probability: chance that a sample gets a field at all (otherwise the
            field is 1). Defaults to `1.0`.
        return_field: also output the multiplicative field, as key
            `"bias_field"` of a dict `(batch, *spatial, 1)` (then the output is
            always a dict). Defaults to `False`.
        seed: integer seed of the layer's `SeedGenerator`. Defaults to `None`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        data: images, an integer label map, or a dict with `"images"` and/or
            `"segmentation_masks"`.
        training: if `False`, return the input unchanged (and a field of ones).
            Defaults to `True`.

    Input shape:
        `(batch, *spatial, channels)` with 2 or 3 static spatial axes.

    Output shape:
        Same as the input; images in the layer's compute dtype. With
        `return_field=True`, a dict with `"bias_field"` added.

    Example:

    >>> import numpy as np
    >>> layer = RandomBiasField(std=0.7, grid_shape=4, seed=0)
    >>> images = np.ones((2, 16, 16, 16, 1), "float32")
    >>> tuple(layer(images).shape)
    (2, 16, 16, 16, 1)
    """

    renamed_arguments = {"shape": "grid_shape"}

    def __init__(
        self,
        std=0.5,
        grid_shape=SYNTHSEG_GRID_SHAPE,
        probability=1.0,
        return_field=False,
        seed=None,
        **kwargs,
    ):
        grid_shape = renamed_argument(
            kwargs, "shape", "grid_shape", grid_shape, SYNTHSEG_GRID_SHAPE
        )
        super().__init__(seed=seed, **kwargs)
        self.std = parse_range(std, "std", kind="nonnegative", min_value=0.0)
        self.grid_shape = check_grid_shape(grid_shape, "grid_shape")
        self.probability = check_probability(probability)
        self.return_field = check_bool(return_field, "return_field")

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        seed = self.seed_generator_for(seed)
        spatial = spatial_shape_of(data, self.__class__.__name__)
        control = resolve_grid_shape(self.grid_shape, spatial, "grid_shape")
        batch_size = batch_size_of(data)
        std = draw_from_ranges(seed, batch_size, [self.std])
        mask = draw_mask(seed, batch_size, self.probability)
        std = where_mask(mask, std, 0.0)
        noise = keras.random.normal((batch_size, *control, 1), seed=seed)
        log_field = noise * ops.reshape(std, (-1,) + (1,) * (len(control) + 1))
        return {"field": ops.exp(resize(log_field, spatial))}

    def transform_images(self, images, transformation, training=True):
        if transformation is None:
            return images
        return ops.cast(images, "float32") * transformation["field"]

    def extra_outputs(self, data, transformation):
        if not self.return_field:
            return {}
        if transformation is None:
            x = next(iter(data.values()))
            field = ops.ones_like(ops.cast(x[..., :1], "float32"))
        else:
            field = transformation["field"]
        return {FIELD: ops.cast(field, self.compute_dtype)}

    def extra_output_spec(self, data):
        if not self.return_field:
            return {}
        shape = tuple(next(iter(data.values())).shape)
        return {FIELD: keras.KerasTensor((*shape[:-1], 1), self.compute_dtype)}

    def get_config(self):
        config = super().get_config()
        config.update(
            std=list(self.std),
            grid_shape=list(self.grid_shape)
            if isinstance(self.grid_shape, tuple)
            else self.grid_shape,
            probability=self.probability,
            return_field=self.return_field,
        )
        return config
