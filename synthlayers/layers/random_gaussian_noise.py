"""RandomGaussianNoise: additive Gaussian or Rician noise, per-sample std."""

import keras
from keras import ops

from synthlayers.layers.base import IMAGES
from synthlayers.layers.base import BaseRandomLayer
from synthlayers.layers.base import batch_size_of
from synthlayers.layers.sampling import draw_from_ranges
from synthlayers.layers.sampling import draw_mask
from synthlayers.validation import check_bool
from synthlayers.validation import check_probability
from synthlayers.validation import is_number
from synthlayers.validation import parse_range


@keras.saving.register_keras_serializable(package="synthlayers")
class RandomGaussianNoise(BaseRandomLayer):
    """Add Gaussian (or Rician) noise with a random standard deviation per sample.

    Every sample of the batch draws its own standard deviation `s` uniformly
    from `std`, then gets independent noise at every voxel and channel:
    `y = x + s * n` with `n ~ N(0, 1)`, or, with `rician=True`, the magnitude
    of a complex signal with Gaussian noise on both parts (the noise of MRI
    magnitude images), `y = sqrt((x + s * n1) ** 2 + (s * n2) ** 2)`. The
    result is then clipped to `clip` when given. Label maps pass through
    unchanged. Samples left out by `probability` are returned unchanged (not
    clipped either).

    Reference:
        Billot et al., "SynthSeg: Segmentation of brain MRI scans of any
        contrast and resolution without retraining", Medical Image Analysis
        86, 2023.

    Args:
        std: range of the noise standard deviation, in image intensity units;
            a number `x` means `(0, x)`. Defaults to `(0.0, 0.1)`.
        rician: Rician instead of additive Gaussian noise. Defaults to `False`.
        clip: `None`, or a `(min, max)` pair the noisy images are clipped to.
            Defaults to `None`.
        probability: chance that a sample gets noise at all. Defaults to
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
    >>> layer = RandomGaussianNoise(std=(0.0, 0.05), rician=True, seed=0)
    >>> images = np.ones((2, 16, 16, 16, 1), "float32")
    >>> tuple(layer(images).shape)
    (2, 16, 16, 16, 1)
    """

    def __init__(
        self,
        std=(0.0, 0.1),
        rician=False,
        clip=None,
        probability=1.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        self.std = parse_range(std, "std", kind="nonnegative", min_value=0.0)
        self.rician = check_bool(rician, "rician")
        self.clip = None
        if clip is not None:
            if not (
                isinstance(clip, (tuple, list))
                and len(clip) == 2
                and all(is_number(v) for v in clip)
                and clip[0] <= clip[1]
            ):
                raise ValueError(
                    "`clip` must be None or a (min, max) pair with min <= max "
                    f"(infinite bounds allowed). Received: clip={clip!r}"
                )
            self.clip = (float(clip[0]), float(clip[1]))
        self.probability = check_probability(probability)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training or IMAGES not in data:
            return None
        seed = self.seed_generator_for(seed)
        batch_size = batch_size_of(data)
        shape = ops.shape(data[IMAGES])
        std = draw_from_ranges(seed, batch_size, [self.std])
        transformation = {
            "std": ops.reshape(std, (-1,)),
            "noise": keras.random.normal(shape, seed=seed),
        }
        if self.rician:
            transformation["noise_imaginary"] = keras.random.normal(shape, seed=seed)
        mask = draw_mask(seed, batch_size, self.probability)
        if mask is not None:
            transformation["mask"] = mask
        return transformation

    def transform_images(self, images, transformation, training=True):
        if transformation is None:
            return images
        x = ops.cast(images, "float32")
        std = ops.reshape(transformation["std"], (-1,) + (1,) * (len(x.shape) - 1))
        y = x + std * transformation["noise"]
        if self.rician:
            y = ops.sqrt(
                ops.square(y) + ops.square(std * transformation["noise_imaginary"])
            )
        if self.clip is not None:
            y = ops.clip(y, self.clip[0], self.clip[1])
        if "mask" in transformation:
            mask = ops.reshape(
                transformation["mask"], (-1,) + (1,) * (len(x.shape) - 1)
            )
            y = ops.where(mask, y, x)
        return y

    def get_config(self):
        config = super().get_config()
        config.update(
            std=list(self.std),
            rician=self.rician,
            clip=None if self.clip is None else list(self.clip),
            probability=self.probability,
        )
        return config
