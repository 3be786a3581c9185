"""RandomFlip: per-sample, per-axis random flips, with left/right label swaps."""

import keras
import numpy as np
from keras import ops

from synthlayers.layers.base import BaseRandomLayer
from synthlayers.layers.base import batch_size_of
from synthlayers.ops.labels import apply_lookup_table
from synthlayers.ops.labels import lookup_table
from synthlayers.ops.random import materialize
from synthlayers.validation import check_int
from synthlayers.validation import check_probability
from synthlayers.validation import is_integer


def parse_axes(axes):
    """A non-empty tuple of distinct non-negative spatial axis indices."""
    if is_integer(axes):
        axes = (axes,)
    if (
        not isinstance(axes, (tuple, list))
        or not axes
        or not all(is_integer(a) and a >= 0 for a in axes)
        or len(set(axes)) != len(axes)
    ):
        raise ValueError(
            "`axes` must be a non-empty list of distinct spatial axis indices "
            f"(0-based, batch and channel axes excluded). Received: axes={axes!r}"
        )
    return tuple(int(a) for a in axes)


def parse_label_swap(label_swap):
    """Label pairs `[(a, b), ...]` from a dict `{a: b}` or a list of pairs.

    Each label appears in at most one pair; labels are non-negative integers.
    """
    if label_swap is None or (
        isinstance(label_swap, (dict, list, tuple)) and not label_swap
    ):
        return None
    if isinstance(label_swap, dict):
        pairs = list(label_swap.items())
    elif isinstance(label_swap, (list, tuple)):
        pairs = list(label_swap)
    else:
        pairs = None
    valid = (
        pairs
        and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs)
        and all(is_integer(v) and v >= 0 for p in pairs for v in p)
    )
    if not valid:
        raise ValueError(
            "`label_swap` must be a dict {left_label: right_label} (or a list of "
            "(left, right) pairs) of non-negative integer labels. Received: "
            f"label_swap={label_swap!r}"
        )
    flat = [int(v) for p in pairs for v in p]
    repeated = sorted({v for v in flat if flat.count(v) > 1})
    if repeated:
        raise ValueError(
            f"`label_swap` must name each label at most once; {repeated} appear "
            f"more than once. Received: label_swap={label_swap!r}"
        )
    return [(int(a), int(b)) for a, b in pairs]


@keras.saving.register_keras_serializable(package="synthlayers")
class RandomFlip(BaseRandomLayer):
    """Randomly flip images and label maps along spatial axes.

    Each sample of the batch is flipped along each axis of `axes`
    independently, with chance `probability`; images and label maps of a
    sample get the same flips. Image values are never changed, only moved.

    Flipping a brain along its left/right axis turns left structures into
    right ones, so with `label_swap` (e.g. `{2: 41, 3: 42}`, FreeSurfer left
    and right white matter and cortex) the label maps of the samples flipped
    along `left_right_axis` have each pair exchanged, both ways (2 <-> 41,
    3 <-> 42); other labels are kept.

    Args:
        axes: spatial axes that may be flipped, 0-based (0 is the first axis
            after the batch axis). An integer means one axis. Checked against
            the input rank when the layer is called. Defaults to `(0,)`.
        probability: chance of a flip, per sample and per axis.
            Defaults to `0.5`.
        label_swap: dict `{left_label: right_label}` (or a list of pairs) of
            labels to exchange in flipped label maps, or None. Each label
            appears at most once; an empty one means None. Defaults to `None`.
        left_right_axis: the spatial axis along which a flip swaps the
            `label_swap` labels; must be in `axes` when `label_swap` is given.
            Defaults to `0`.
        seed: integer seed of the layer's `SeedGenerator`. Defaults to `None`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        data: images, an integer label map, or a dict with `"images"` and/or
            `"segmentation_masks"` (the same flips for both).
        training: if `False`, return the input unchanged. Defaults to `True`.

    Input shape:
        `(batch, *spatial, channels)` with 2 or 3 spatial axes.

    Output shape:
        Same as the input. Images in the layer's compute dtype, label maps in
        their input dtype.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> layer = RandomFlip(axes=(0,), probability=1.0, label_swap={2: 41})
    >>> label_map = np.array([2, 0, 3, 0], "int32").reshape(1, 4, 1, 1)
    >>> keras.ops.convert_to_numpy(layer(label_map)).ravel().tolist()
    [0, 3, 0, 41]
    """

    def __init__(
        self,
        axes=(0,),
        probability=0.5,
        label_swap=None,
        left_right_axis=0,
        seed=None,
        **kwargs,
    ):
        super().__init__(seed=seed, **kwargs)
        self.axes = parse_axes(axes)
        self.probability = check_probability(probability)
        self.left_right_axis = check_int(
            left_right_axis, "left_right_axis", min_value=0
        )
        self.label_swap = parse_label_swap(label_swap)
        if self.label_swap is not None and self.left_right_axis not in self.axes:
            raise ValueError(
                "`left_right_axis` must be one of `axes` when `label_swap` is given. "
                f"Received: left_right_axis={left_right_axis!r}, axes={axes!r}"
            )
        if self.label_swap:
            keys = [a for a, b in self.label_swap] + [b for a, b in self.label_swap]
            values = [b for a, b in self.label_swap] + [a for a, b in self.label_swap]
            # Identity everywhere else in the table; beyond it, `_swap` keeps labels.
            table = lookup_table(keys, values, 0)
            unset = np.ones(len(table), bool)
            unset[keys] = False
            table[unset] = np.arange(len(table))[unset]
            self._swap_table = table
        else:
            self._swap_table = None

    def check_inputs(self, data):
        ndim = super().check_inputs(data)
        if max(self.axes) >= ndim:
            shape = tuple(next(iter(data.values())).shape)
            raise ValueError(
                f"`axes` must be spatial axes in [0, {ndim - 1}] for inputs with "
                f"{ndim} spatial axes (shape {shape}). Received: axes={self.axes}"
            )
        return ndim

    def get_random_transformation(self, data, training=True, seed=None):
        if not training:
            return None
        shape = (batch_size_of(data), len(self.axes))
        draws = keras.random.uniform(shape, seed=self.seed_generator_for(seed))
        draws = materialize(draws)  # not recomputed per voxel under XLA
        flips = draws < self.probability
        return {"flips": flips}

    def _flip(self, x, flips):
        rank = len(x.shape)
        for i, axis in enumerate(self.axes):
            mask = ops.reshape(flips[:, i], (-1,) + (1,) * (rank - 1))
            x = ops.where(mask, ops.flip(x, axis=axis + 1), x)
        return x

    def _swap(self, masks, flips):
        size = len(self._swap_table)
        swapped = apply_lookup_table(masks, self._swap_table, 0)
        swapped = ops.cast(swapped, masks.dtype)
        inside = ops.logical_and(ops.greater_equal(masks, 0), ops.less(masks, size))
        swapped = ops.where(inside, swapped, masks)
        flipped = flips[:, self.axes.index(self.left_right_axis)]
        mask = ops.reshape(flipped, (-1,) + (1,) * (len(masks.shape) - 1))
        return ops.where(mask, swapped, masks)

    def transform_images(self, images, transformation, training=True):
        images = self.cast_images(images)
        if transformation is None:
            return images
        return self._flip(images, transformation["flips"])

    def transform_segmentation_masks(self, masks, transformation, training=True):
        if transformation is None:
            return masks
        if self._swap_table is not None:
            masks = self._swap(masks, transformation["flips"])
        return self._flip(masks, transformation["flips"])

    def get_config(self):
        config = super().get_config()
        config.update(
            axes=list(self.axes),
            probability=self.probability,
            # A list of [left, right] pairs: JSON would turn int dict keys into str.
            label_swap=None
            if self.label_swap is None
            else [[a, b] for a, b in self.label_swap],
            left_right_axis=self.left_right_axis,
        )
        return config
