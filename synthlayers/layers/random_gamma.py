"""RandomGamma: min-max normalisation and a random gamma (power) per channel."""

import keras
from keras import ops

from synthlayers.layers.base import IMAGES
from synthlayers.layers.base import BaseRandomLayer
from synthlayers.layers.base import batch_size_of
from synthlayers.layers.normalize_intensity import rescale
from synthlayers.layers.sampling import draw_from_ranges
from synthlayers.layers.sampling import draw_mask
from synthlayers.layers.sampling import where_mask
from synthlayers.validation import check_number
from synthlayers.validation import check_probability
from synthlayers.validation import is_number
from synthlayers.validation import parse_range

DEFAULT_STD = 0.5


@keras.saving.register_keras_serializable(package="synthlayers")
class RandomGamma(BaseRandomLayer):
    """Normalise images to [0, 1] and raise them to a random power (gamma).

    Every sample and channel is min-max normalised to [0, 1] (a constant
    channel becomes 0, never NaN), then raised to a power `gamma` drawn per
    sample and channel: log-normal, `gamma = exp(N(0, std))` (SynthSeg's
    `gamma_std`), or uniform in `gamma_range`. `gamma > 1` darkens the
    mid-tones, `gamma < 1` brightens them; 0 and 1 stay where they are, so
    the output lies in [0, 1]. Samples not selected by `probability` get
    `gamma = 1` (they are still normalised). Label maps pass through
    untouched.

    Reference:
        - [Billot et al., SynthSeg: Segmentation of brain MRI scans of any
          contrast and resolution without retraining, Medical Image Analysis
          2023](https://doi.org/10.1016/j.media.2023.102789)

    Args:
        std: standard deviation of `log(gamma)` (non-negative). Give either
            `std` or `gamma_range`, not both. Defaults to `None`, meaning 0.5
            when `gamma_range` is None.
        gamma_range: `(min, max)` range, `min > 0`, of a uniform `gamma`
            instead of the log-normal one. Defaults to `None`.
        probability: chance that a sample gets a random gamma (otherwise 1).
            Defaults to `1.0`.
        seed: integer seed of the layer's `SeedGenerator`. Defaults to `None`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        data: images, an integer label map, or a dict with `"images"` and/or
            `"segmentation_masks"`.
        training: if `False`, return the input unchanged (no normalisation
            either). Defaults to `True`.

    Input shape:
        `(batch, *spatial, channels)` with 2 or 3 spatial axes.

    Output shape:
        Same as the input; images in the layer's compute dtype, in [0, 1].

    Example:

    >>> import keras
    >>> import numpy as np
    >>> layer = RandomGamma(std=0.4, seed=0)
    >>> images = np.random.default_rng(0).uniform(0, 100, (2, 16, 16, 1))
    >>> out = keras.ops.convert_to_numpy(layer(images.astype("float32")))
    >>> bool(out.min() >= 0 and out.max() <= 1)
    True
    """

    def __init__(
        self, std=None, gamma_range=None, probability=1.0, seed=None, **kwargs
    ):
        super().__init__(seed=seed, **kwargs)
        if std is not None and gamma_range is not None:
            raise ValueError(
                "Give either `std` (log-normal gamma) or `gamma_range` (uniform "
                f"gamma), not both. Received: std={std!r}, gamma_range={gamma_range!r}"
            )
        self.std = check_number(std, "std", min_value=0.0, allow_none=True)
        self.gamma_range = None
        if gamma_range is not None:
            if is_number(gamma_range):
                raise ValueError(
                    "`gamma_range` must be a (min, max) pair of positive numbers. "
                    f"Received: gamma_range={gamma_range!r}"
                )
            low, high = parse_range(gamma_range, "gamma_range")
            if low <= 0:
                raise ValueError(
                    "`gamma_range` must hold positive numbers. "
                    f"Received: gamma_range={gamma_range!r}"
                )
            self.gamma_range = (low, high)
        self.probability = check_probability(probability)

    def get_random_transformation(self, data, training=True, seed=None):
        if not training or IMAGES not in data:
            return None
        seed = self.seed_generator_for(seed)
        images = data[IMAGES]
        batch_size = batch_size_of(data)
        channels = images.shape[-1]
        if channels is None:
            raise ValueError(
                f"{self.__class__.__name__} needs a static number of channels. "
                f"Received: images.shape={tuple(images.shape)}"
            )
        if self.gamma_range is not None:
            gamma = draw_from_ranges(seed, batch_size, [self.gamma_range] * channels)
        else:
            std = DEFAULT_STD if self.std is None else self.std
            z = keras.random.normal((batch_size, channels), seed=seed)
            gamma = ops.exp(std * z)
        mask = draw_mask(seed, batch_size, self.probability)
        return {"gamma": where_mask(mask, gamma, 1.0)}

    def transform_images(self, images, transformation, training=True):
        if transformation is None:
            return images
        images = ops.cast(images, "float32")
        axes = tuple(range(1, len(images.shape) - 1))
        low = ops.min(images, axis=axes, keepdims=True)
        high = ops.max(images, axis=axes, keepdims=True)
        normalised = ops.clip(rescale(images, low, high), 0.0, 1.0)
        gamma = transformation["gamma"]
        for _ in axes:
            gamma = ops.expand_dims(gamma, 1)
        return ops.power(normalised, gamma)

    def get_config(self):
        config = super().get_config()
        config.update(
            std=self.std,
            gamma_range=None if self.gamma_range is None else list(self.gamma_range),
            probability=self.probability,
        )
        return config
