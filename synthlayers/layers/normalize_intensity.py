"""NormalizeIntensity: per-sample, per-channel rescaling of images to [0, 1]."""

import numbers

import keras
import numpy as np
from keras import ops

from synthlayers.layers.base import BaseLayer
from synthlayers.validation import check_choice

METHODS = ("minmax", "percentile")


def _check_percentiles(value):
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value
        )
        or not 0 <= value[0] < value[1] <= 100
    ):
        raise ValueError(
            "`percentiles` must be a pair (low, high) with 0 <= low < high <= 100. "
            f"Received: percentiles={value!r}"
        )
    return (float(value[0]), float(value[1]))


@keras.saving.register_keras_serializable(package="synthlayers")
class NormalizeIntensity(BaseLayer):
    """Rescale the intensities of each image and channel to [0, 1].

    Deterministic. Every sample and channel is rescaled on its own:
    `y = (x - low) / (high - low)`, where `low` and `high` are the minimum and
    maximum of that sample and channel (`method="minmax"`), or its
    `percentiles` (`method="percentile"`, linear interpolation between order
    statistics as `numpy.percentile`, then clipped to [0, 1] so that the
    outliers beyond the percentiles saturate). A constant image (`high ==
    low`) maps to 0, never to NaN. Label maps pass through unchanged.

    SynthSeg rescales every synthetic image with min-max normalisation after
    its acquisition model; the percentile variant is the usual choice for
    real scans with bright outliers.

    Reference:
        Billot et al., "SynthSeg: Segmentation of brain MRI scans of any
        contrast and resolution without retraining", Medical Image Analysis
        86, 2023.

    Args:
        method: `"minmax"` or `"percentile"`. Defaults to `"minmax"`.
        percentiles: `(low, high)` percentiles in [0, 100] for
            `method="percentile"`. Defaults to `(0.5, 99.5)`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        data: images, an integer label map, or a dict with `"images"` and/or
            `"segmentation_masks"`.
        training: ignored (the layer is deterministic). Defaults to `True`.

    Input shape:
        `(batch, *spatial, channels)` with 2 or 3 spatial axes.

    Output shape:
        Same as the input. Images in the layer's compute dtype (computed in
        float32), label maps unchanged.

    Example:

    >>> import numpy as np
    >>> images = np.random.default_rng(0).normal(size=(2, 16, 16, 1))
    >>> out = NormalizeIntensity()(images.astype("float32"))
    >>> float(out.numpy().min()), float(out.numpy().max())
    (0.0, 1.0)
    """

    def __init__(self, method="minmax", percentiles=(0.5, 99.5), **kwargs):
        super().__init__(**kwargs)
        self.method = check_choice(method, "method", METHODS)
        self.percentiles = _check_percentiles(percentiles)

    def transform_images(self, images, transformation, training=True):
        x = ops.cast(images, "float32")
        axes = tuple(range(1, len(x.shape) - 1))
        if self.method == "minmax":
            low = ops.min(x, axis=axes, keepdims=True)
            high = ops.max(x, axis=axes, keepdims=True)
        else:
            q = np.array(self.percentiles, "float32") / 100
            bounds = ops.quantile(x, q, axis=axes, keepdims=True)
            low, high = bounds[0], bounds[1]
        width = high - low
        valid = width > 0
        scale = ops.where(valid, 1 / ops.where(valid, width, 1.0), 0.0)
        y = (x - low) * scale
        if self.method == "percentile":
            y = ops.clip(y, 0.0, 1.0)
        return ops.cast(y, self.compute_dtype)

    def image_output_dtype(self, dtype):
        return self.compute_dtype

    def get_config(self):
        config = super().get_config()
        config.update(method=self.method, percentiles=list(self.percentiles))
        return config
