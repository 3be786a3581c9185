"""RandomGaussianBlur: N-D Gaussian blur with per-sample, per-axis sigma."""

import keras
from keras import ops

from synthlayers.layers.base import IMAGES
from synthlayers.layers.base import BaseRandomLayer
from synthlayers.layers.base import batch_size_of
from synthlayers.layers.sampling import draw_from_ranges
from synthlayers.layers.sampling import draw_mask
from synthlayers.layers.sampling import where_mask
from synthlayers.ops.filters import gaussian_blur
from synthlayers.validation import check_probability
from synthlayers.validation import parse_axis_ranges


@keras.saving.register_keras_serializable(package="synthlayers")
class RandomGaussianBlur(BaseRandomLayer):
    """Blur images with a random Gaussian kernel per sample and per axis.

    Every sample of the batch draws its own standard deviation along every
    spatial axis, uniformly from `sigma`, and is filtered with the separable
    Gaussian of those standard deviations (kernel truncated at 4 sigma,
    normalised per sample, edges repeated: `scipy.ndimage.gaussian_filter`
    with `mode="nearest"` for each sample); see
    `synthlayers.ops.gaussian_blur`. Unlike `keras.layers.RandomGaussianBlur`,
    sigma is not shared across the batch and the layer works in 2D and 3D.
    A sigma of 0 leaves that axis unchanged. Label maps pass through
    unchanged.

    Reference:
        Billot et al., "SynthSeg: Segmentation of brain MRI scans of any
        contrast and resolution without retraining", Medical Image Analysis
        86, 2023.

    Args:
        sigma: range of the standard deviation in voxels; a number `x` means
            `(0, x)`. One range for all axes, or a list of ranges, one per
            spatial axis. Defaults to `(0.0, 1.0)`.
        probability: chance that a sample is blurred at all. Defaults to
            `1.0`.
        seed: integer seed of the layer's `SeedGenerator`. Defaults to `None`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        data: images, an integer label map, or a dict with `"images"` and/or
            `"segmentation_masks"`.
        training: if `False`, return the input unchanged. Defaults to `True`.

    Input shape:
        `(batch, *spatial, channels)` with 2 or 3 spatial axes.

    Output shape:
        Same as the input. Images in the layer's compute dtype (computed in
        float32), label maps unchanged.

    Example:

    >>> import numpy as np
    >>> layer = RandomGaussianBlur(sigma=[(0, 2), (0, 2), (0, 0.5)], seed=0)
    >>> images = np.random.default_rng(0).normal(size=(2, 16, 16, 16, 1))
    >>> tuple(layer(images.astype("float32")).shape)
    (2, 16, 16, 16, 1)
    """

    def __init__(self, sigma=(0.0, 1.0), probability=1.0, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        parse_axis_ranges(sigma, "sigma", None, "nonnegative", min_value=0.0)
        self.sigma = sigma
        self.probability = check_probability(probability)

    def sigma_ranges(self, ndim):
        return parse_axis_ranges(
            self.sigma, "sigma", ndim, "nonnegative", min_value=0.0
        )

    def get_random_transformation(self, data, training=True, seed=None):
        if not training or IMAGES not in data:
            return None
        seed = self.seed_generator_for(seed)
        ndim = len(data[IMAGES].shape) - 2
        batch_size = batch_size_of(data)
        sigma = draw_from_ranges(seed, batch_size, self.sigma_ranges(ndim))
        mask = draw_mask(seed, batch_size, self.probability)
        return {"sigma": where_mask(mask, sigma, 0.0)}

    def transform_images(self, images, transformation, training=True):
        if transformation is None:
            return images
        return gaussian_blur(ops.cast(images, "float32"), transformation["sigma"])

    def get_config(self):
        config = super().get_config()
        sigma = self.sigma
        if isinstance(sigma, (tuple, list)):
            sigma = [list(s) if isinstance(s, (tuple, list)) else s for s in sigma]
        config.update(sigma=sigma, probability=self.probability)
        return config
