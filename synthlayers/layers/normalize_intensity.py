"""NormalizeIntensity: per-sample, per-channel rescaling of images to [0, 1]."""

import numbers

import keras
import numpy as np
from keras import ops

from synthlayers.layers.base import BaseLayer
from synthlayers.validation import check_choice
from synthlayers.validation import parse_range

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


def rescale(x, low, high):
    """`(x - low) / (high - low)`, 0 where `high == low` (a constant image).

    The scale is computed on the shape of `low` (per sample and channel), so
    the volume is read by one subtraction and one multiply.
    """
    width = high - low
    valid = width > 0
    return (x - low) * ops.where(valid, 1 / ops.where(valid, width, 1.0), 0.0)


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

    With `clip=(low, high)` the intensities are first clipped to that range
    (in the input's units), so that a few very bright voxels do not compress
    the rest of the image: SynthSeg clips its synthetic images to [0, 300]
    before min-max normalisation (`IntensityAugmentation(clip=300)`), neurite
    to [0, 255].

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
        clip: `(low, high)` range the intensities are clipped to before they
            are rescaled, or `None`. Defaults to `None`.
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
    >>> out = keras.ops.convert_to_numpy(out)
    >>> float(out.min()), float(out.max())
    (0.0, 1.0)
    """

    def __init__(self, method="minmax", percentiles=(0.5, 99.5), clip=None, **kwargs):
        super().__init__(**kwargs)
        self.method = check_choice(method, "method", METHODS)
        self.percentiles = _check_percentiles(percentiles)
        self.clip = None if clip is None else parse_range(clip, "clip")
        if self.clip is not None and not isinstance(clip, (tuple, list)):
            raise ValueError(
                f"`clip` must be a (low, high) pair or None. Received: clip={clip!r}"
            )

    def transform_images(self, images, transformation, training=True):
        x = ops.cast(images, "float32")
        if self.clip is not None:
            x = ops.clip(x, *self.clip)
        axes = tuple(range(1, len(x.shape) - 1))
        if self.method == "minmax":
            low = ops.min(x, axis=axes, keepdims=True)
            high = ops.max(x, axis=axes, keepdims=True)
        else:
            q = np.array(self.percentiles, "float32") / 100
            bounds = ops.quantile(x, q, axis=axes, keepdims=True)
            low, high = bounds[0], bounds[1]
        y = rescale(x, low, high)
        if self.method == "percentile":
            y = ops.clip(y, 0.0, 1.0)
        return ops.cast(y, self.compute_dtype)

    def image_output_dtype(self, dtype):
        return self.compute_dtype

    def get_config(self):
        config = super().get_config()
        config.update(
            method=self.method,
            percentiles=list(self.percentiles),
            clip=None if self.clip is None else list(self.clip),
        )
        return config
