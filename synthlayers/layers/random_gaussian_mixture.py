"""RandomGaussianMixture: a random image from a label map (SynthSeg's GMM)."""

import keras
import numpy as np
from keras import ops

from synthlayers.layers.base import IMAGES
from synthlayers.layers.base import MASKS
from synthlayers.layers.base import BaseRandomLayer
from synthlayers.layers.base import batch_size_of
from synthlayers.layers.base import is_integer_dtype
from synthlayers.layers.sampling import draw_from_ranges
from synthlayers.layers.sampling import where_mask
from synthlayers.ops.labels import apply_lookup_table
from synthlayers.ops.labels import lookup_table
from synthlayers.ops.random import hashed_normal
from synthlayers.ops.random import materialize
from synthlayers.validation import check_int
from synthlayers.validation import check_int_list
from synthlayers.validation import check_probability
from synthlayers.validation import parse_range

INT32_MAX = 2**31 - 1


def _int_list(value, name, min_value=0):
    """A non-empty list of int32 integers >= `min_value` as Python ints."""
    values = check_int_list(value, name, min_value=min_value, max_value=INT32_MAX)
    if not values:
        raise ValueError(f"`{name}` must not be empty. Received: {name}={value!r}")
    return values


def _prior(value, name, num_classes):
    """A `(2, num_classes)` array of normal priors (row 1, the stds, >= 0)."""
    if value is None:
        return None
    try:
        array = np.asarray(value, dtype="float64")
    except (TypeError, ValueError):
        array = None
    if array is None or array.shape != (2, num_classes):
        raise ValueError(
            f"`{name}` must be an array of shape (2, num_classes) = "
            f"(2, {num_classes}): "
            f"row 0 the means, row 1 the standard deviations of the normal prior "
            f"of each class. Received: {name}={value!r}"
        )
    if not np.all(np.isfinite(array)) or np.any(array[1] < 0):
        raise ValueError(
            f"`{name}` must be finite with non-negative standard deviations (row 1). "
            f"Received: {name}={value!r}"
        )
    return array.astype("float32")


@keras.saving.register_keras_serializable(package="synthlayers")
class RandomGaussianMixture(BaseRandomLayer):
    """Generate a random image from a label map with a Gaussian mixture model.

    Each label is assigned a class (several labels may share one), and every
    sample of the batch draws, for every class and channel, a mean and a
    standard deviation. Each voxel then gets
    `mean[b, class(x)] + std[b, class(x)] * N(0, 1)` with independent noise per
    voxel and channel, so a standard deviation of 0 gives an exactly
    piecewise-constant image. Channels are independent draws (multi-modal
    images).

    Means and standard deviations are drawn uniformly from `mean_range` and
    `std_range`, or, per class, from normal priors: `prior_means[0, k]` and
    `prior_means[1, k]` are the mean and the standard deviation of the normal
    distribution of class `k`'s mean (likewise `prior_stds` for its standard
    deviation), as SynthSeg's `prior_means` / `prior_stds` with
    `prior_distribution="normal"`. A prior, when given, replaces the
    corresponding range; negative draws are clipped to 0.

    Labels are mapped to classes in the graph with a lookup table, and the
    per-sample class parameters are read with one flat gather (no one-hot of
    the labels, no loop over samples or classes). Labels of the map that are
    not in `labels` (including negative ones) get intensity 0 (mean 0,
    standard deviation 0): they are treated as background.

    Background: the classes in `background_classes` get mean 0 and standard
    deviation 0 (in all channels) in a sample with probability
    `background_zero_probability`, otherwise they are drawn as any class.

    This layer is a generator, not an augmentation: with `training=False` it
    still returns an image, but a deterministic one: every class gets the
    central value of its distribution (the centre of `mean_range`, or the prior
    mean) and standard deviation 0, and the background classes are zeroed when
    `background_zero_probability >= 0.5`. With the uniform default range this
    image is constant outside the zeroed background; give priors for a
    meaningful deterministic contrast.

    Reference:
        - [Billot et al., SynthSeg: Segmentation of brain MRI scans of any
          contrast and resolution without retraining, Medical Image Analysis
          2023](https://doi.org/10.1016/j.media.2023.102789)

    Args:
        labels: list of the label values of the maps (non-negative integers,
            e.g. SynthSeg's generation labels), unique.
        classes: list of class indices (non-negative integers), one per entry
            of `labels`, so that several labels share intensity parameters
            (SynthSeg's generation classes). The number of classes is
            `max(classes) + 1`. Defaults to `None`: each label its own class,
            in the given order.
        mean_range: range of the uniform distribution of the class means; a
            number `x` means `(0, x)`. Defaults to `(0.0, 250.0)`.
        std_range: range of the uniform distribution of the class standard
            deviations (non-negative); a number `x` means `(0, x)`.
            Defaults to `(0.0, 30.0)`.
        prior_means: `(2, num_classes)` array, row 0 the mean and row 1 the
            standard deviation of the normal prior of each class mean; it
            replaces `mean_range`. Defaults to `None`.
        prior_stds: `(2, num_classes)` array, likewise for the class standard
            deviations; it replaces `std_range`. Defaults to `None`.
        num_channels: number of image channels, each with independent draws.
            Defaults to `1`.
        background_classes: list of class indices zeroed with
            `background_zero_probability`. Defaults to `None`: the class of
            label 0 if 0 is in `labels`, else none.
        background_zero_probability: chance per sample that the background
            classes get mean and standard deviation 0 (SynthSeg: 0.05,
            neurite: 0.2). Defaults to `0.0`.
        background_mean_range: uniform range of the background classes' mean
            when the background rule below applies, or `None` (drawn as any
            class). SynthSeg's dark background: `(0, 15)`; neurite draws the
            background from `(0, 225)`. Defaults to `None`.
        background_std_range: likewise for the background classes' standard
            deviation (SynthSeg: `(0, 5)`, neurite: `(0, 25)`). Defaults to
            `None`.
        background_range_probability: chance per sample, among the samples
            whose background is not zeroed, that the background classes draw
            from `background_mean_range`/`background_std_range`. One uniform
            draw per sample decides: zero with `background_zero_probability`,
            else the background ranges with this probability, else the
            class's usual draw. SynthSeg's rule (zero in 5% of samples, dark
            in 25%) is `0.25 / 0.95`; neurite's (always) is `1.0`. Defaults
            to `1.0`.
        seed: integer seed of the layer's `SeedGenerator`. Defaults to `None`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        data: an integer label map, or a dict with `"segmentation_masks"` (a
            dict holding `"images"` is an error: this layer makes them; other
            keys pass through unchanged).
        training: if `False`, the deterministic image described above.
            Defaults to `True`.

    Input shape:
        `(batch, *spatial, 1)` integer label map with 2 or 3 spatial axes.

    Output shape:
        A dict: `"images"` of shape `(batch, *spatial, num_channels)` in the
        layer's compute dtype, and `"segmentation_masks"`, the input label
        map unchanged.

    Example:

    >>> import numpy as np
    >>> layer = RandomGaussianMixture(
    ...     labels=[0, 2, 3, 41, 42], classes=[0, 1, 2, 1, 2], seed=0
    ... )
    >>> label_map = np.zeros((2, 16, 16, 16, 1), "int32")
    >>> label_map[:, 4:12, 4:8] = 2
    >>> label_map[:, 4:12, 8:12] = 41
    >>> out = layer(label_map)
    >>> tuple(out["images"].shape)
    (2, 16, 16, 16, 1)
    """

    def __init__(
        self,
        labels,
        classes=None,
        mean_range=(0.0, 250.0),
        std_range=(0.0, 30.0),
        prior_means=None,
        prior_stds=None,
        num_channels=1,
        background_classes=None,
        background_zero_probability=0.0,
        background_mean_range=None,
        background_std_range=None,
        background_range_probability=1.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        self.labels = _int_list(labels, "labels")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"`labels` must be unique. Received: labels={labels!r}")
        if classes is None:
            self.classes = None
            class_list = list(range(len(self.labels)))
        else:
            self.classes = _int_list(classes, "classes")
            if len(self.classes) != len(self.labels):
                raise ValueError(
                    "`classes` must have one entry per label. Received: "
                    f"classes={classes!r} (length {len(self.classes)}) for "
                    f"labels={labels!r} (length {len(self.labels)})"
                )
            class_list = self.classes
        self.num_classes = max(class_list) + 1
        self._class_of_label = class_list
        self.mean_range = parse_range(mean_range, "mean_range", kind="nonnegative")
        self.std_range = parse_range(
            std_range, "std_range", kind="nonnegative", min_value=0.0
        )
        self.prior_means = _prior(prior_means, "prior_means", self.num_classes)
        self.prior_stds = _prior(prior_stds, "prior_stds", self.num_classes)
        self.num_channels = check_int(num_channels, "num_channels", min_value=1)
        if background_classes is None:
            self.background_classes = None
            background = [class_list[self.labels.index(0)]] if 0 in self.labels else []
        else:
            if isinstance(background_classes, np.ndarray):
                background_classes = background_classes.tolist()
            self.background_classes = check_int_list(
                background_classes,
                "background_classes",
                min_value=0,
                max_value=self.num_classes - 1,
            )
            background = self.background_classes
        self._background = sorted(set(background))
        self.background_zero_probability = check_probability(
            background_zero_probability, "background_zero_probability"
        )
        self.background_mean_range = (
            None
            if background_mean_range is None
            else parse_range(
                background_mean_range, "background_mean_range", kind="nonnegative"
            )
        )
        self.background_std_range = (
            None
            if background_std_range is None
            else parse_range(
                background_std_range,
                "background_std_range",
                kind="nonnegative",
                min_value=0.0,
            )
        )
        self.background_range_probability = check_probability(
            background_range_probability, "background_range_probability"
        )
        # Label -> class table; unknown labels go to the extra class K (zero).
        self._table = lookup_table(self.labels, class_list, self.num_classes)

    # Structure ------------------------------------------------------------

    def _to_dict(self, data):
        name = self.__class__.__name__
        if isinstance(data, dict):
            if IMAGES in data:
                raise ValueError(
                    f"{name} generates images from a label map; its input must not "
                    f"hold '{IMAGES}'. Received keys: {sorted(data)}"
                )
            if MASKS not in data:
                raise ValueError(
                    f"{name} takes a label map or a dict with key '{MASKS}'. "
                    f"Received keys: {sorted(data)}"
                )
            return dict(data), True
        if not is_integer_dtype(data.dtype):
            raise ValueError(
                f"{name} expects an integer label map. Received: dtype="
                f"{keras.backend.standardize_dtype(data.dtype)}"
            )
        return {MASKS: data}, False

    def _check(self, data):
        """`(label map dict, other keys)`: other keys pass through unchanged."""
        data, _ = self._to_dict(data)
        extra = {key: value for key, value in data.items() if key != MASKS}
        data = {MASKS: data[MASKS]}
        self.check_inputs(data)
        masks = data[MASKS]
        if masks.shape[-1] not in (None, 1):
            raise ValueError(
                f"{self.__class__.__name__} expects a label map with one channel. "
                f"Received: {MASKS}.shape={tuple(masks.shape)}"
            )
        return data, extra

    def call(self, data, training=True):
        data, extra = self._check(data)
        transformation = self.get_random_transformation(data, training=training)
        images = self.generate_images(data[MASKS], transformation)
        return {IMAGES: images, MASKS: data[MASKS], **extra}

    def compute_output_spec(self, data, training=True):
        data, extra = self._check(data)
        shape = tuple(data[MASKS].shape)
        images = keras.KerasTensor((*shape[:-1], self.num_channels), self.compute_dtype)
        masks = keras.KerasTensor(shape, data[MASKS].dtype)
        return {IMAGES: images, MASKS: masks, **extra}

    # Draws and generation --------------------------------------------------

    def _central_parameters(self):
        """`(K, C)` deterministic means and stds used with `training=False`."""
        shape = (self.num_classes, self.num_channels)
        if self.prior_means is None:
            means = np.full(shape, sum(self.mean_range) / 2, "float32")
        else:
            means = np.repeat(np.maximum(self.prior_means[0], 0)[:, None], shape[1], 1)
        return means.astype("float32"), np.zeros(shape, "float32")

    def _draw(self, batch_size, uniform_range, prior, seed):
        """`(batch, K, C)` draws from a uniform range or per-class normal priors."""
        k, c = self.num_classes, self.num_channels
        if prior is None:
            values = draw_from_ranges(seed, batch_size, [uniform_range] * (k * c))
            return ops.reshape(values, (-1, k, c))
        z = keras.random.normal((batch_size, k, c), seed=seed)
        center = ops.convert_to_tensor(prior[0][:, None])
        scale = ops.convert_to_tensor(prior[1][:, None])
        values = center + scale * z
        return ops.maximum(values, 0.0)

    def _has_background_ranges(self):
        return bool(self._background) and (
            self.background_mean_range is not None
            or self.background_std_range is not None
        )

    def _background_rule_probabilities(self):
        """`(zero, ranges)`: per-sample chances of the two background rules."""
        if not self._background:
            return 0.0, 0.0
        zero = self.background_zero_probability
        ranges = 0.0
        if self._has_background_ranges():
            ranges = (1 - zero) * self.background_range_probability
        return zero, ranges

    def get_random_transformation(self, data, training=True, seed=None):
        seed = self.seed_generator if seed is None else seed
        masks = data[MASKS]
        batch_size = batch_size_of(data)
        k = self.num_classes
        is_background = np.zeros((1, k, 1), "bool")
        is_background[0, self._background] = True
        p_zero, p_ranges = self._background_rule_probabilities()
        if not training:
            means, stds = self._central_parameters()
            if p_zero >= 0.5:
                means = np.where(is_background[0], 0.0, means).astype("float32")
            elif p_ranges >= 0.5 and self.background_mean_range is not None:
                centre = sum(self.background_mean_range) / 2
                means = np.where(is_background[0], centre, means).astype("float32")
            means = ops.broadcast_to(means[None], (batch_size, k, self.num_channels))
            stds = ops.broadcast_to(stds[None], (batch_size, k, self.num_channels))
            return {"means": means, "stds": stds, "noise": None}
        means = self._draw(batch_size, self.mean_range, self.prior_means, seed)
        stds = self._draw(batch_size, self.std_range, self.prior_stds, seed)
        if p_zero > 0 or p_ranges > 0:
            # One uniform per sample picks the rule, so the rules exclude each
            # other: [0, p_zero) zero, [p_zero, p_zero + p_ranges) the ranges.
            u = keras.random.uniform((batch_size,), seed=seed)
            zero = u < p_zero
            use_ranges = ops.logical_and(u >= p_zero, u < p_zero + p_ranges)
            for name, values in (("mean", means), ("std", stds)):
                value_range = getattr(self, f"background_{name}_range")
                if value_range is not None and p_ranges > 0:
                    drawn = self._draw(batch_size, value_range, None, seed)
                    values = where_mask(
                        use_ranges, ops.where(is_background, drawn, values), values
                    )
                values = where_mask(zero, ops.where(is_background, 0.0, values), values)
                if name == "mean":
                    means = values
                else:
                    stds = values
        noise = None
        if (
            self.prior_stds is not None
            or self.std_range[1] > 0
            or (
                self.background_std_range is not None
                and self.background_std_range[1] > 0
            )
        ):
            spatial = tuple(masks.shape[1:-1])
            shape = (batch_size, *spatial, self.num_channels)
            if None in spatial:
                noise = keras.random.normal(
                    (batch_size, *ops.shape(masks)[1:-1], self.num_channels),
                    seed=seed,
                )
            else:
                # Hashed from a few drawn keys: `keras.random.normal` of a
                # whole volume is ~100x slower under TensorFlow XLA on CPU.
                noise = hashed_normal(shape, seed)
        return {"means": means, "stds": stds, "noise": noise}

    def generate_images(self, masks, transformation):
        """The image of a label map for drawn `(batch, K, C)` parameters."""
        k, c = self.num_classes, self.num_channels
        classes = apply_lookup_table(masks[..., 0], self._table, k)
        batch = ops.shape(classes)[0]
        offsets = ops.arange(batch, dtype="int32") * (k + 1)
        index = classes + ops.reshape(offsets, (-1,) + (1,) * (len(masks.shape) - 2))
        # Per-sample parameters with an extra zero class for unknown labels.
        zero = ops.zeros((batch, 1, c), "float32")
        means = ops.concatenate([ops.cast(transformation["means"], "float32"), zero], 1)
        # Materialised: XLA would otherwise recompute the draws per voxel.
        means = ops.take(materialize(ops.reshape(means, (-1, c))), index, axis=0)
        if transformation["noise"] is None:
            return ops.cast(means, self.compute_dtype)
        stds = ops.concatenate([ops.cast(transformation["stds"], "float32"), zero], 1)
        stds = ops.take(materialize(ops.reshape(stds, (-1, c))), index, axis=0)
        return ops.cast(means + stds * transformation["noise"], self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            labels=list(self.labels),
            classes=None if self.classes is None else list(self.classes),
            mean_range=list(self.mean_range),
            std_range=list(self.std_range),
            prior_means=None if self.prior_means is None else self.prior_means.tolist(),
            prior_stds=None if self.prior_stds is None else self.prior_stds.tolist(),
            num_channels=self.num_channels,
            background_classes=(
                None
                if self.background_classes is None
                else list(self.background_classes)
            ),
            background_zero_probability=self.background_zero_probability,
            background_mean_range=(
                None
                if self.background_mean_range is None
                else list(self.background_mean_range)
            ),
            background_std_range=(
                None
                if self.background_std_range is None
                else list(self.background_std_range)
            ),
            background_range_probability=self.background_range_probability,
        )
        return config
