"""U-Net builder for 2D and 3D segmentation (SynthSeg's architecture)."""

import numbers

import keras

from synthlayers.validation import check_choice
from synthlayers.validation import check_int

NORMALIZATIONS = (None, "batch", "instance", "layer")


@keras.saving.register_keras_serializable(package="synthlayers")
class SpatialShapeCheck(keras.layers.Layer):
    """Identity that checks each spatial dimension is a multiple of `divisor`.

    A U-Net with `levels` levels halves its grid `levels - 1` times and
    doubles it back, so inputs whose spatial dimensions are not multiples of
    `2 ** (levels - 1)` cannot be concatenated with their skip connections.
    This layer raises a clear `ValueError` when it sees such a shape (at
    model construction for known dimensions, at call time for dimensions
    that were `None` then; under TensorFlow a graph traced with unknown
    dimensions cannot check them).

    Args:
        divisor: the required divisor of every spatial dimension (>= 1).
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: a tensor `(batch, *spatial, channels)`.

    Input shape:
        `(batch, *spatial, channels)`.

    Output shape:
        The input shape (the input is returned unchanged).
    """

    def __init__(self, divisor, **kwargs):
        super().__init__(**kwargs)
        self.divisor = check_int(divisor, "divisor", min_value=1)
        self.built = True

    def _check(self, shape):
        spatial = tuple(shape)[1:-1]
        bad = [s for s in spatial if s is not None and s % self.divisor]
        if bad:
            raise ValueError(
                f"The U-Net input's spatial dimensions must be multiples of "
                f"{self.divisor} (2 ** (levels - 1)); pad or crop the image first. "
                f"Received: input shape={tuple(shape)}"
            )

    def call(self, inputs):
        self._check(inputs.shape)
        return inputs

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config["divisor"] = self.divisor
        return config


def _level_features(features, levels, feature_multiplier):
    """Features per level as a list of positive ints."""
    if isinstance(features, numbers.Integral) and not isinstance(features, bool):
        if features < 1:
            raise ValueError(
                f"`features` must be a positive integer or a list of {levels} "
                f"positive integers (one per level). Received: features={features!r}"
            )
        if (
            not isinstance(feature_multiplier, numbers.Real)
            or isinstance(feature_multiplier, bool)
            or feature_multiplier <= 0
        ):
            raise ValueError(
                "`feature_multiplier` must be a positive number. Received: "
                f"feature_multiplier={feature_multiplier!r}"
            )
        counts = [int(round(features * feature_multiplier**i)) for i in range(levels)]
        if min(counts) < 1:
            raise ValueError(
                "`features * feature_multiplier ** level` must round to at least 1 "
                f"at every level. Received: features={features!r}, "
                f"feature_multiplier={feature_multiplier!r} (features per level: "
                f"{counts})"
            )
        return counts
    if (
        isinstance(features, (list, tuple))
        and len(features) == levels
        and all(
            isinstance(f, numbers.Integral) and not isinstance(f, bool) and f >= 1
            for f in features
        )
    ):
        return [int(f) for f in features]
    raise ValueError(
        f"`features` must be a positive integer or a list of {levels} positive "
        f"integers (one per level). Received: features={features!r}"
    )


def _activation(value, name, allow_none=False):
    if value is None and allow_none:
        return None
    try:
        keras.activations.get(value)
    except (ValueError, TypeError):
        value = None
    if not isinstance(value, str):
        raise ValueError(
            f"`{name}` must be the name of a Keras activation such as 'elu', "
            f"'relu' or 'softmax'{' or None' if allow_none else ''}. "
            f"Received: {name}={value!r}"
        )
    return value


def _normalization_layer(normalization, name):
    if normalization == "batch":
        return keras.layers.BatchNormalization(axis=-1, name=name)
    if normalization == "instance":
        return keras.layers.GroupNormalization(groups=-1, name=name)
    return keras.layers.GroupNormalization(groups=1, name=name)


def unet(
    input_shape,
    num_classes,
    levels=5,
    features=24,
    feature_multiplier=2,
    convolutions_per_level=2,
    kernel_size=3,
    normalization="batch",
    activation="elu",
    final_activation="softmax",
    name="unet",
):
    """Build a 2D or 3D U-Net that maps images to per-voxel class scores.

    The architecture of SynthSeg (the `unet` of neurite/neuron, as SynthSeg
    calls it): `levels` levels, each of `convolutions_per_level`
    convolutions (`kernel_size`, "same" padding, `activation`) followed by
    the optional normalisation; max pooling by 2 between the levels of the
    encoder; in the decoder, nearest-neighbour upsampling by 2, concatenation
    with the encoder's output of the same level (taken from its last
    convolution, before the normalisation, as neuron does) and the same
    convolutions. A final 1x1 convolution gives `num_classes` scores (layer
    `f"{name}_likelihood"`, before any activation) and `final_activation`
    turns them into probabilities (layer `f"{name}_prediction"`). Layer names
    follow neuron's (`f"{name}_conv_downarm_{level}_{i}"`, ...).

    The number of features is `features * feature_multiplier ** level` (as
    neuron, rounded), or a list with one entry per level; the decoder uses
    the count of the level it works at. Spatial dimensions may be `None`;
    each must be a multiple of `2 ** (levels - 1)` (a clear `ValueError`
    otherwise: when the model is built for known dimensions, at call time
    for dimensions left `None`).

    For SynthSeg's weighted-L2 warm-up (see `synthlayers.losses`), the
    scores before the softmax are
    `keras.Model(net.input, net.get_layer(f"{name}_likelihood").output)`,
    which shares its weights with `net`.

    Reference:
        - [Billot et al., SynthSeg: Segmentation of brain MRI scans of any
          contrast and resolution without retraining, Medical Image Analysis
          2023](https://doi.org/10.1016/j.media.2023.102789)
        - Ronneberger et al., U-Net: Convolutional networks for biomedical
          image segmentation, MICCAI 2015.

    Args:
        input_shape: `(*spatial, channels)`, 2 or 3 spatial dimensions, each
            a positive integer or `None`; `channels` must be known.
        num_classes: number of output channels (segmentation labels).
        levels: number of resolution levels (`levels - 1` poolings).
            Defaults to `5` (SynthSeg).
        features: features of the first level, or a list of features per
            level. Defaults to `24` (SynthSeg).
        feature_multiplier: factor on the features from one level to the
            next; ignored when `features` is a list. Defaults to `2`
            (SynthSeg).
        convolutions_per_level: convolutions at each level, in the encoder
            and in the decoder. Defaults to `2` (SynthSeg).
        kernel_size: size of the convolution kernels. Defaults to `3`
            (SynthSeg).
        normalization: normalisation after the convolutions of each level:
            `"batch"` (`BatchNormalization`, SynthSeg), `"instance"` (per
            sample and channel over space, `GroupNormalization(groups=-1)`),
            `"layer"` (per sample over space and channels,
            `GroupNormalization(groups=1)`) or `None`. Defaults to `"batch"`.
        activation: activation of the convolutions, a Keras activation name.
            Defaults to `"elu"` (SynthSeg).
        final_activation: activation of the output, a Keras activation name,
            or `None` for the raw scores. Defaults to `"softmax"`.
        name: name of the model and prefix of its layer names. Defaults to
            `"unet"`.

    Returns:
        A functional `keras.Model`.

    Input shape:
        `(batch, *spatial, channels)` floats.

    Output shape:
        `(batch, *spatial, num_classes)`: probabilities summing to 1 over the
        last axis with the default softmax.

    Example:

    >>> import numpy as np
    >>> net = unet((None, None, 1), num_classes=3, levels=3, features=8)
    >>> net.predict(np.zeros((2, 32, 32, 1), "float32"), verbose=0).shape
    (2, 32, 32, 3)
    """
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) not in (3, 4):
        raise ValueError(
            "`input_shape` must be (*spatial, channels) with 2 or 3 spatial "
            f"dimensions. Received: input_shape={input_shape!r}"
        )
    input_shape = tuple(input_shape)
    for i, s in enumerate(input_shape):
        valid = isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
        if not valid and not (s is None and i < len(input_shape) - 1):
            raise ValueError(
                "`input_shape` must hold positive integers (spatial dimensions "
                "may be None, the channels must be known). Received: "
                f"input_shape={input_shape!r}"
            )
    num_classes = check_int(num_classes, "num_classes", min_value=1)
    levels = check_int(levels, "levels", min_value=1)
    convolutions_per_level = check_int(
        convolutions_per_level, "convolutions_per_level", min_value=1
    )
    kernel_size = check_int(kernel_size, "kernel_size", min_value=1)
    check_choice(normalization, "normalization", NORMALIZATIONS)
    activation = _activation(activation, "activation")
    final_activation = _activation(final_activation, "final_activation", True)
    counts = _level_features(features, levels, feature_multiplier)
    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a non-empty string. Received: name={name!r}")

    ndim = len(input_shape) - 1
    conv = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[ndim]
    pool = {2: keras.layers.MaxPooling2D, 3: keras.layers.MaxPooling3D}[ndim]
    upsample = {2: keras.layers.UpSampling2D, 3: keras.layers.UpSampling3D}[ndim]
    divisor = 2 ** (levels - 1)

    inputs = keras.Input(input_shape, name=f"{name}_input")
    x = SpatialShapeCheck(divisor, name=f"{name}_shape_check")(inputs)
    skips = []
    for level in range(levels):
        for i in range(convolutions_per_level):
            x = conv(
                counts[level], kernel_size, padding="same", activation=activation,
                name=f"{name}_conv_downarm_{level}_{i}",
            )(x)  # fmt: skip
        skips.append(x)
        if normalization is not None:
            x = _normalization_layer(normalization, f"{name}_bn_down_{level}")(x)
        if level < levels - 1:
            x = pool(2, padding="same", name=f"{name}_maxpool_{level}")(x)
    for step, level in enumerate(range(levels - 2, -1, -1)):
        index = levels + step
        x = upsample(2, name=f"{name}_up_{index}")(x)
        x = keras.layers.Concatenate(axis=-1, name=f"{name}_merge_{index}")(
            [skips[level], x]
        )
        for i in range(convolutions_per_level):
            x = conv(
                counts[level], kernel_size, padding="same", activation=activation,
                name=f"{name}_conv_uparm_{index}_{i}",
            )(x)  # fmt: skip
        if normalization is not None:
            x = _normalization_layer(normalization, f"{name}_bn_up_{step}")(x)
    x = conv(num_classes, 1, name=f"{name}_likelihood")(x)
    outputs = keras.layers.Activation(
        final_activation or "linear", name=f"{name}_prediction"
    )(x)
    return keras.Model(inputs, outputs, name=name)
