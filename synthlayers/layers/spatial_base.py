"""Shared machinery of the spatial layers: one coordinate map, one resampling."""

from keras import ops

from synthlayers.layers.base import BaseRandomLayer
from synthlayers.ops.resample import resample
from synthlayers.ops.resample import resample_axes
from synthlayers.validation import FILL_MODES
from synthlayers.validation import check_choice
from synthlayers.validation import check_number


def _resample(image, transformation, **kwargs):
    if "coordinate_axes" in transformation:
        return resample_axes(image, transformation["coordinate_axes"], **kwargs)
    return resample(image, transformation["coordinates"], **kwargs)


class BaseSpatialLayer(BaseRandomLayer):
    """Base of layers that resample images and label maps at coordinates.

    `get_random_transformation` returns a dict holding at least
    `"coordinates"`, `(batch, *output_shape, ndim)` input voxel coordinates of
    every output voxel, or `"coordinate_axes"`, the same as a list of `ndim`
    `(batch, *output_shape)` tensors (cheaper: never stacked), or `None` for
    "return the input unchanged". Images are
    resampled linearly (in float32, returned in the layer's compute dtype),
    label maps by nearest neighbour (dtype kept, only input labels or 0).
    `get_random_transformation` draws from `self.seed_generator_for(seed)`.

    Args:
        fill_mode: `"constant"` (images filled with `fill_value`, label maps
            with 0 outside the input) or `"nearest"` (edge repeated).
        fill_value: float, image value outside the input for
            `fill_mode="constant"`.
    """

    def __init__(self, fill_mode="constant", fill_value=0.0, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.fill_mode = check_choice(fill_mode, "fill_mode", FILL_MODES)
        self.fill_value = check_number(fill_value, "fill_value")

    def transform_images(self, images, transformation, training=True):
        if transformation is None:
            return images
        return _resample(
            ops.cast(images, "float32"),
            transformation,
            interpolation="linear",
            fill_mode=self.fill_mode,
            fill_value=self.fill_value,
        )

    def transform_segmentation_masks(self, masks, transformation, training=True):
        if transformation is None:
            return masks
        return _resample(
            masks,
            transformation,
            interpolation="nearest",
            fill_mode=self.fill_mode,
            fill_value=0,
        )

    def get_config(self):
        config = super().get_config()
        config.update(fill_mode=self.fill_mode, fill_value=self.fill_value)
        return config
