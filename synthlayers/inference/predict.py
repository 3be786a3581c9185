"""Run a trained network on a prepared image: padding, slices, flip augmentation.

The image is already what the network expects (normalised intensities, RAS
voxel order, training voxel size; see `synthlayers.inference.preprocess`).
It is zero-padded to a multiple of the network's divisor, run whole (3D
networks) or slice by slice (2D networks, possibly along several axes whose
views are averaged), cropped back, and optionally segmented again flipped
left/right with the channels of each left/right pair swapped (SynthSeg's
test-time augmentation).
"""

import keras
import numpy as np

from synthlayers.freesurfer import LEFT_RIGHT_PAIRS
from synthlayers.models.export import _image_input_rank
from synthlayers.validation import check_axes
from synthlayers.validation import check_bool
from synthlayers.validation import check_int


def _check_output_labels(output_labels):
    if output_labels is None:
        return None
    labels = np.asarray(output_labels)
    if (
        labels.ndim != 1
        or labels.size == 0
        or not np.issubdtype(labels.dtype, np.integer)
        or len(np.unique(labels)) != labels.size
    ):
        raise ValueError(
            "Expected `output_labels` to be a sequence of distinct integers "
            f"(one label value per output channel). Received: "
            f"output_labels={output_labels!r}"
        )
    return labels.astype("int32")


def left_right_channel_pairs(output_labels, pairs=None):
    """Channel index pairs swapped by a left/right flip, from label values.

    Args:
        output_labels: the label value of each output channel, in channel
            order.
        pairs: `{left_label: right_label}` pairs, or None for FreeSurfer's
            `synthlayers.freesurfer.LEFT_RIGHT_PAIRS`. Defaults to None.

    Returns:
        A list of `(left_index, right_index)` tuples, for the pairs whose two
        labels are both in `output_labels`.

    Raises:
        ValueError: when `output_labels` is not a sequence of distinct
            integers.

    Example:

    >>> left_right_channel_pairs([0, 2, 3, 41, 42])
    [(1, 3), (2, 4)]
    """
    labels = _check_output_labels(output_labels)
    if labels is None:
        raise ValueError(
            "Expected `output_labels` to be a sequence of distinct integers. "
            "Received: output_labels=None"
        )
    pairs = LEFT_RIGHT_PAIRS if pairs is None else dict(pairs)
    index = {int(v): i for i, v in enumerate(labels)}
    return [
        (index[left], index[right])
        for left, right in sorted(pairs.items())
        if left in index and right in index
    ]


def _channel_permutation(pairs, channels):
    permutation = np.arange(channels)
    seen = set()
    for pair in pairs:
        try:
            a, b = (int(i) for i in pair)
        except (TypeError, ValueError):
            a = b = -1
        if not (0 <= a < channels and 0 <= b < channels) or {a, b} & seen or a == b:
            raise ValueError(
                "Expected `flip_pairs` to be disjoint pairs of distinct channel "
                f"indices in [0, {channels}). Received: flip_pairs={pairs!r}"
            )
        seen.update((a, b))
        permutation[a], permutation[b] = b, a
    return permutation


def _pad_amounts(shape, divisor, axes):
    pads = []
    for a, n in enumerate(shape):
        total = (-n) % divisor if a in axes else 0
        pads.append((total // 2, total - total // 2))
    return pads


def _predict(model, x, batch_size):
    """Model outputs for a `(batch, *spatial, 1)` array, in batches."""
    out = None
    for start in range(0, x.shape[0], batch_size):
        y = model.predict_on_batch(x[start : start + batch_size])
        if isinstance(y, (list, tuple, dict)):
            raise ValueError(
                "Expected a model with one output (batch, *spatial, channels). "
                f"Received: a model returning {type(y).__name__}"
            )
        y = np.asarray(keras.ops.convert_to_numpy(y), dtype="float32")
        if y.shape[1:-1] != x.shape[1:-1]:
            raise ValueError(
                "Expected a network whose output has its input's spatial shape. "
                f"Received: input shape {x[:1].shape}, output shape {y[:1].shape}"
            )
        if len(y) == len(x):
            return y if y.flags.writeable else y.copy()
        if out is None:
            out = np.empty((len(x), *y.shape[1:]), "float32")
        out[start : start + len(y)] = y
    return out


def _run_network(model, image, rank, divisor, slice_axis, batch_size, empty_background):
    ndim = image.ndim
    if rank == ndim:
        pads = _pad_amounts(image.shape, divisor, range(ndim))
        x = np.pad(image, pads)[None, ..., None]
        y = _predict(model, x, 1)[0]
        constant = np.array([image.max() == image.min()])
    else:
        moved = np.moveaxis(image, slice_axis, 0)
        pads = _pad_amounts(moved.shape, divisor, (1, 2))
        x = np.pad(moved, pads)[..., None]
        y = _predict(model, x, batch_size)
        flat = moved.reshape(len(moved), -1)
        constant = flat.max(axis=1) == flat.min(axis=1)
    crop = tuple(
        slice(before, y.shape[a] - after) for a, (before, after) in enumerate(pads)
    )
    y = y[crop]
    if empty_background and constant.any():
        whole = y[None] if rank == ndim else y
        whole[constant] = 0.0
        whole[constant, ..., 0] = 1.0
    if rank != ndim:
        y = np.moveaxis(y, 0, slice_axis)
    return y


def predict_probabilities(
    model,
    image,
    divisor=16,
    slice_axis=2,
    batch_size=8,
    flip=False,
    flip_axis=0,
    flip_pairs=None,
    output_labels=None,
    empty_background=True,
):
    """Network outputs on a prepared image, with optional flip augmentation.

    `image` is already what the network expects: normalised intensities, RAS
    voxel order, training voxel size. It is zero-padded (evenly on both sides)
    to a multiple of `divisor` along the axes the network sees, run at batch
    size 1 (3D networks, or 2D networks on a 2D image) or slice by slice along
    `slice_axis` in batches of `batch_size` slices (2D networks on a 3D
    image), and cropped back. With `flip=True` the image is also flipped
    along `flip_axis` (left/right in RAS), segmented, the outputs flipped back
    and the channels of each left/right pair swapped; the two outputs are
    averaged (SynthSeg's test-time augmentation). The network should output
    probabilities (softmax); they are averaged as they come. With
    `empty_background=True`, a slice (2D network on a 3D image) or an image
    of constant intensity gets probability 1 in channel 0 (the background):
    normalised per image it is all zeros, on which a network trained on
    anatomy answers arbitrarily (e.g. the empty slices before and after the
    brain of a skull-stripped scan).

    Args:
        model: a Keras model with one input `(batch, *spatial, 1)` (spatial
            rank 2 or 3, `None` spatial sizes) and one output
            `(batch, *spatial, channels)`.
        image: float array, 2D or 3D (spatial axes only).
        divisor: pad to a multiple of this (`2 ** levels` of a U-Net).
            Defaults to 16.
        slice_axis: the image axis a 2D network slides along for a 3D image
            (in RAS: 0 sagittal, 1 coronal, 2 axial slices), or a tuple of
            axes: the network segments the slices along each, and the
            probabilities of these views are averaged (for a network
            trained on slices of all of them). Defaults to 2.
        batch_size: slices per network call for 2D networks. Defaults to 8.
        flip: add left/right flip test-time augmentation. Defaults to False.
        flip_axis: the image axis of the flip (0 is left/right in RAS).
            Defaults to 0.
        flip_pairs: `(left_index, right_index)` channel pairs swapped by the
            flip, or None to derive them from `output_labels` with
            FreeSurfer's left/right pairs (`left_right_channel_pairs`); `()`
            swaps nothing. Defaults to None.
        output_labels: label value of each channel (only used to derive
            `flip_pairs`). Defaults to None.
        empty_background: constant slices or images get the background
            (channel 0). Defaults to True.

    Returns:
        A float32 array `(*image.shape, channels)`.

    Raises:
        ValueError: on invalid arguments, e.g. `flip=True` without
            `flip_pairs` or `output_labels`, or a flip along the slice axis
            of a 2D network (no slice would be mirrored).

    Example:

    >>> import keras
    >>> import numpy as np
    >>> inputs = keras.Input((None, None, None, 1))
    >>> outputs = keras.layers.Conv3D(3, 1, activation="softmax")(inputs)
    >>> model = keras.Model(inputs, outputs)
    >>> probabilities = predict_probabilities(model, np.zeros((20, 24, 28)))
    >>> tuple(probabilities.shape)
    (20, 24, 28, 3)
    """
    rank = _image_input_rank(model)
    image = np.asarray(image, dtype="float32")
    ndim = image.ndim
    if ndim not in (2, 3) or ndim < rank:
        expected = "a 3D image" if rank == 3 else "a 2D or 3D image"
        raise ValueError(
            f"Expected {expected} (spatial axes only) for a {rank}D network. "
            f"Received: image.shape={image.shape}"
        )
    divisor = check_int(divisor, "divisor", min_value=1)
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    axes = check_axes(slice_axis, "slice_axis", 3)
    output_labels = _check_output_labels(output_labels)
    if flip:
        if isinstance(flip_axis, bool) or flip_axis not in range(ndim):
            raise ValueError(
                f"Expected `flip_axis` in [0, {ndim}). Received: "
                f"flip_axis={flip_axis!r}"
            )
        if rank < ndim and flip_axis in axes:
            raise ValueError(
                "Expected `flip_axis` different from `slice_axis` for a 2D "
                "network on a 3D image (flipping along the slice axis mirrors "
                f"no slice). Received: flip_axis={flip_axis}, "
                f"slice_axis={slice_axis}"
            )
        if flip_pairs is None:
            if output_labels is None:
                raise ValueError(
                    "Expected `flip_pairs` or `output_labels` with `flip=True`, "
                    "to know which channels a left/right flip swaps. Received: "
                    "flip_pairs=None, output_labels=None"
                )
            flip_pairs = left_right_channel_pairs(output_labels)
    empty_background = check_bool(empty_background, "empty_background")

    def run(image):
        if rank == ndim:
            return _run_network(model, image, rank, divisor, None, 1, empty_background)
        total = None
        for axis in axes:  # views of a 2D network, averaged
            y = _run_network(
                model, image, rank, divisor, axis, batch_size, empty_background
            )
            if total is None:
                total = y
            else:
                total += y
        if len(axes) > 1:
            total /= len(axes)
        return total

    probabilities = run(image)
    channels = probabilities.shape[-1]
    if output_labels is not None and len(output_labels) != channels:
        raise ValueError(
            f"Expected `output_labels` with one value per output channel "
            f"({channels}). Received: {len(output_labels)} output_labels"
        )
    if flip:
        permutation = _channel_permutation(flip_pairs, channels)
        flipped = np.flip(run(np.flip(image, flip_axis)), flip_axis)
        for start in range(0, len(flipped), 16):  # bounded temporaries
            chunk = slice(start, start + 16)
            probabilities[chunk] += flipped[chunk][..., permutation]
        probabilities *= 0.5
    return probabilities
