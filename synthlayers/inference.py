"""Segment real scans with a trained network, and export the network.

Inference runs outside the model graph, on NumPy arrays: the scan is brought
to RAS+ (see `synthlayers.io`), its intensities are rescaled between two
percentiles, it is resampled to the training voxel size, padded to a
multiple of `divisor`, segmented (3D networks on the whole volume, 2D
networks slice by slice), optionally again flipped left/right (test-time
augmentation), optionally smoothed and cleaned (SynthSeg's largest connected
components), and the labels are brought back onto the input's grid and
voxel order. NumPy and nibabel do the work; SciPy labels connected
components.
"""

import numbers
import os

import keras
import numpy as np
from scipy import ndimage

from synthlayers import io
from synthlayers.freesurfer import LEFT_RIGHT_PAIRS
from synthlayers.validation import check_axes

INTERPOLATIONS = ("linear", "nearest")


# --- Argument checks -----------------------------------------------------------


def _positive_sizes(value, ndim, name, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        sizes = (float(value),) * ndim
    else:
        try:
            sizes = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            sizes = ()
    if len(sizes) != ndim or not all(np.isfinite(sizes)) or min(sizes) <= 0:
        raise ValueError(
            f"Expected `{name}` to be a positive number or {ndim} positive "
            f"numbers (mm). Received: {name}={value!r}"
        )
    return sizes


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(
            f"Expected `{name}` to be a positive integer. Received: {name}={value!r}"
        )
    return int(value)


def _non_negative_number(value, name):
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not value >= 0:
        raise ValueError(
            f"Expected `{name}` to be a number >= 0. Received: {name}={value!r}"
        )
    return float(value)


def _check_percentiles(percentiles):
    if percentiles is None:
        return None
    try:
        low, high = (float(p) for p in percentiles)
    except (TypeError, ValueError):
        low, high = np.nan, np.nan
    if not 0 <= low < high <= 100:
        raise ValueError(
            "Expected `percentiles` to be None or (low, high) with "
            f"0 <= low < high <= 100. Received: percentiles={percentiles!r}"
        )
    return low, high


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


def _spatial_rank(model):
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs) != 1:
        raise ValueError(
            "Expected a built Keras model with one input of shape "
            "(batch, *spatial, channels). Received: model with inputs="
            f"{inputs!r}"
        )
    rank = len(inputs[0].shape) - 2
    if rank not in (2, 3):
        raise ValueError(
            "Expected a 2D or 3D network (input (batch, *spatial, channels)). "
            f"Received: model input shape {tuple(inputs[0].shape)}"
        )
    return rank


# --- Intensities and resampling (NumPy) --------------------------------------


def normalize_intensities(image, percentiles=(0.5, 99.5)):
    """Rescale intensities linearly so two percentiles map to 0 and 1, clipped.

    The percentiles are taken over all voxels (background included), as
    SynthSeg's prediction does; a constant image gives zeros.

    Args:
        image: array of any shape.
        percentiles: `(low, high)` percentiles (0-100) mapped to 0 and 1.
            Defaults to `(0.5, 99.5)`.

    Returns:
        A float32 array of the same shape with values in [0, 1].

    Raises:
        ValueError: when `percentiles` is not `(low, high)` with
            `0 <= low < high <= 100`.

    Example:

    >>> import numpy as np
    >>> out = normalize_intensities(np.arange(1000.0))
    >>> float(out.min()), float(out.max())
    (0.0, 1.0)
    """
    low, high = _check_percentiles(percentiles)
    image = np.asarray(image, dtype="float32")
    lo, hi = np.percentile(image, (low, high))
    scale = 1.0 / (hi - lo) if hi > lo else 0.0
    return np.clip((image - lo) * scale, 0, 1).astype("float32")


def _grid_positions(n_in, n_out, step):
    """Positions, in input voxels, of `n_out` centred samples `step` apart."""
    return (np.arange(n_out) - (n_out - 1) / 2) * step + (n_in - 1) / 2


def _blur_axis(x, axis, sigma):
    """Gaussian blur (`sigma` voxels) along one axis, edges repeated.

    Below `sigma = 0.25` the neighbours' weights are under 0.04 % and the
    blur is skipped.
    """
    if sigma < 0.25:
        return x
    radius = int(np.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights = (weights / weights.sum()).astype(x.dtype)
    n = x.shape[axis]
    out = np.zeros_like(x)
    for offset, weight in zip(offsets, weights):
        index = np.clip(np.arange(n) + offset, 0, n - 1)
        out += weight * np.take(x, index, axis=axis)
    return out


def _resample_axis(x, axis, positions, step):
    """Linear interpolation of `x` along `axis` at `positions` (edges clamped).

    `step` is the output spacing in input voxels; above 1 (downsampling) the
    axis is first blurred with a Gaussian of sigma `(step - 1) / 2` voxels
    against aliasing.
    """
    if step > 1 + 1e-6:
        x = _blur_axis(x, axis, (step - 1) / 2)
    n = x.shape[axis]
    positions = np.clip(positions, 0, n - 1)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, n - 1)
    shape = [1] * x.ndim
    shape[axis] = len(positions)
    weight = (positions - low).astype(x.dtype).reshape(shape)
    out = np.take(x, low, axis=axis)
    out += weight * (np.take(x, high, axis=axis) - out)
    return out


class _Grid:
    """The network grid at `target` voxel size over an input grid."""

    def __init__(self, shape, voxel_sizes, target):
        self.input_shape = tuple(shape)
        self.voxel_sizes = tuple(voxel_sizes)
        if target is None:
            target = self.voxel_sizes
        self.target = tuple(target)
        self.shape = tuple(
            max(1, int(round(n * v / t)))
            for n, v, t in zip(self.input_shape, self.voxel_sizes, self.target)
        )
        # Axes whose grid changes (a voxel size within 0.1% counts as equal).
        self.axes = [
            a
            for a in range(len(self.shape))
            if self.shape[a] != self.input_shape[a]
            or abs(self.target[a] - self.voxel_sizes[a]) > 1e-3 * self.target[a]
        ]

    def to_network(self, x):
        """Linear resampling of `x` (spatial axes first) onto the network grid."""
        for a in self.axes:
            step = self.target[a] / self.voxel_sizes[a]
            positions = _grid_positions(self.input_shape[a], self.shape[a], step)
            x = _resample_axis(x, a, positions, step)
        return x

    def to_input(self, x):
        """Linear resampling of `x` from the network grid back onto the input."""
        for a in self.axes:
            step = self.voxel_sizes[a] / self.target[a]
            positions = _grid_positions(self.shape[a], self.input_shape[a], step)
            x = _resample_axis(x, a, positions, step)
        return x

    def nearest_to_input(self, labels):
        """Nearest-neighbour resampling of integer `labels` onto the input."""
        index = []
        for a in range(len(self.shape)):
            if a in self.axes:
                step = self.voxel_sizes[a] / self.target[a]
                positions = _grid_positions(self.shape[a], self.input_shape[a], step)
                index.append(
                    np.clip(np.floor(positions + 0.5).astype(int), 0, self.shape[a] - 1)
                )
            else:
                index.append(np.arange(self.shape[a]))
        return labels[np.ix_(*index)]


# --- Running the network ----------------------------------------------------


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
    >>> probabilities.shape
    (20, 24, 28, 3)
    """
    rank = _spatial_rank(model)
    image = np.asarray(image, dtype="float32")
    ndim = image.ndim
    if ndim not in (2, 3) or ndim < rank:
        expected = "a 3D image" if rank == 3 else "a 2D or 3D image"
        raise ValueError(
            f"Expected {expected} (spatial axes only) for a {rank}D network. "
            f"Received: image.shape={image.shape}"
        )
    divisor = _positive_int(divisor, "divisor")
    batch_size = _positive_int(batch_size, "batch_size")
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
    if not isinstance(empty_background, bool):
        raise ValueError(
            "Expected `empty_background` to be True or False. Received: "
            f"empty_background={empty_background!r}"
        )

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


# --- Post-processing (SynthSeg's) -------------------------------------------


def smooth_probabilities(probabilities, sigma):
    """Gaussian smoothing of each channel's probability map (SynthSeg's).

    SynthSeg smooths the network's posteriors (`sigma_smoothing`, 0.5
    voxels at inference) before the argmax. Each channel is blurred along
    every spatial axis with a Gaussian of `sigma` voxels (edges repeated,
    kernel cut at 3 sigma; sigmas below 0.25 leave an axis as it is). The
    channels still sum to 1 where they did.

    Args:
        probabilities: float array `(*spatial, channels)`.
        sigma: standard deviation in voxels (>= 0).

    Returns:
        A float32 array of the same shape.

    Example:

    >>> import numpy as np
    >>> p = np.zeros((5, 5, 2), "float32"); p[..., 0] = 1; p[2, 2] = (0, 1)
    >>> q = smooth_probabilities(p, 1.0)
    >>> bool(np.allclose(q.sum(-1), 1)), bool(q[2, 2, 1] < 1)
    (True, True)
    """
    sigma = _non_negative_number(sigma, "sigma")
    probabilities = np.array(probabilities, dtype="float32")
    for c in range(probabilities.shape[-1]):
        channel = probabilities[..., c]
        for axis in range(channel.ndim):
            channel = _blur_axis(channel, axis, sigma)
        probabilities[..., c] = channel
    return probabilities


def _largest_component(mask):
    """The largest face-connected component of a boolean mask (or the mask)."""
    components, count = ndimage.label(mask)
    if count <= 1:
        return mask
    sizes = np.bincount(components.ravel())[1:]
    return components == 1 + int(np.argmax(sizes))


def _check_topology_classes(topology_classes, channels):
    if topology_classes is None:
        return [0] + list(range(1, channels))
    classes = np.asarray(topology_classes)
    if (
        classes.shape != (channels,)
        or not np.issubdtype(classes.dtype, np.integer)
        or classes.min() < 0
    ):
        raise ValueError(
            f"Expected `topology_classes` to be {channels} non-negative "
            "integers, one per output channel. Received: "
            f"topology_classes={topology_classes!r}"
        )
    return classes.tolist()


def keep_largest_components(probabilities, threshold=0.25, topology_classes=None):
    """Zero the probabilities outside each structure's largest piece (SynthSeg).

    SynthSeg's clean-up of its posteriors (`predict.postprocess`):

    1. The foreground is where the probabilities of channels `1..` sum to
       more than `threshold`; outside its largest connected component the
       foreground channels are set to 0.
    2. For each topology class (the channels sharing a class value), the
       mask is where any of its channels exceeds `threshold`; outside the
       mask's largest connected component the class's channels are set to
       0. Class 0 is left alone (channel 0 is the background).
    3. The channels are renormalised to sum to 1; a voxel where all of them
       vanished becomes background.

    Components are face-connected (6 neighbours in 3D, 4 in 2D), as
    SynthSeg's `get_largest_connected_component`. SynthSeg's topology classes
    group the labels of a cerebral hemisphere (white matter, cortex,
    ventricles) and of a cerebellar hemisphere; by default here every
    channel is its own class, which keeps one piece per structure (on the
    2D example's network this scored a higher Dice on the real test scan,
    0.729 against 0.715).

    Args:
        probabilities: float array `(*spatial, channels)`, summing to 1
            over the channels, channel 0 the background.
        threshold: probability above which a voxel belongs to a mask, in
            `(0, 1)`. Defaults to `0.25` (SynthSeg).
        topology_classes: one non-negative integer per channel, or None for
            one class per foreground channel. Defaults to None.

    Returns:
        A float32 array of the same shape.

    Example:

    >>> import numpy as np
    >>> p = np.zeros((1, 7, 2), "float32"); p[..., 0] = 1
    >>> p[0, [1, 2, 5]] = (0, 1)  # two pieces of label 1: 2 voxels and 1
    >>> keep_largest_components(p)[0, :, 1].tolist()
    [0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    """
    probabilities = np.array(probabilities, dtype="float32")
    _keep_largest_components(probabilities, threshold, topology_classes)
    return probabilities


def _keep_largest_components(probabilities, threshold, topology_classes):
    """`keep_largest_components`, in place."""
    if (
        not isinstance(threshold, numbers.Real)
        or isinstance(threshold, bool)
        or not 0 < threshold < 1
    ):
        raise ValueError(
            "Expected `threshold` to be a number in (0, 1). Received: "
            f"threshold={threshold!r}"
        )
    if probabilities.ndim < 2 or probabilities.shape[-1] < 2:
        raise ValueError(
            "Expected probabilities of shape (*spatial, channels) with at "
            f"least 2 channels. Received: shape={probabilities.shape}"
        )
    channels = probabilities.shape[-1]
    classes = _check_topology_classes(topology_classes, channels)
    foreground = _largest_component(probabilities[..., 1:].sum(-1) > threshold)
    probabilities[..., 1:] *= foreground[..., None]
    for value in sorted(set(classes) - {0}):
        members = [c for c in range(channels) if classes[c] == value]
        mask = _largest_component(
            np.any(probabilities[..., members] > threshold, axis=-1)
        )
        for c in members:
            probabilities[..., c] *= mask
    total = probabilities.sum(-1)
    empty = total == 0
    probabilities[..., 0][empty] = 1.0
    total[empty] = 1.0
    probabilities /= total[..., None]


# --- The whole pipeline -------------------------------------------------------


def _is_path(image):
    return isinstance(image, (str, bytes, os.PathLike))


def _prepare(image, voxel_size, affine):
    """RAS data, RAS voxel sizes, a function back to the input, its affine."""
    if _is_path(image):
        if voxel_size is not None or affine is not None:
            raise ValueError(
                "Expected `voxel_size` and `affine` to be None for a file (the "
                f"header gives them). Received: voxel_size={voxel_size!r}, "
                f"affine={affine!r}"
            )
        volume = io.load_volume(image, dtype="float32")
        data = volume.data
        if data.ndim > 3 and all(n == 1 for n in data.shape[3:]):
            data = data.reshape(data.shape[:3])  # e.g. (x, y, z, 1) files
        if data.ndim != 3:
            raise ValueError(
                "Expected a 3D volume. Received: "
                f"{os.fspath(image)!r} with shape {volume.original_shape}"
            )
        return (
            data,
            volume.voxel_sizes,
            volume.to_original,
            volume.original_affine,
        )
    if hasattr(image, "dataobj") and hasattr(image, "affine"):  # nibabel image
        if affine is not None:
            raise ValueError(
                "Expected `affine=None` for a nibabel image (it has its own). "
                f"Received: affine={affine!r}"
            )
        image, affine = np.asanyarray(image.dataobj), image.affine
    image = np.asarray(image, dtype="float32")
    if image.ndim not in (2, 3):
        raise ValueError(
            "Expected a 2D or 3D image (spatial axes only), or a path. "
            f"Received: image.shape={image.shape}"
        )
    if affine is not None:
        if voxel_size is not None:
            raise ValueError(
                "Expected only one of `voxel_size` and `affine`. Received: "
                f"voxel_size={voxel_size!r}, affine=<4 x 4 matrix>"
            )
        if image.ndim != 3:
            raise ValueError(
                "Expected a 3D image with `affine`. Received: "
                f"image.shape={image.shape}"
            )
        ras, ras_affine = io.to_ras(image, affine)
        affine = np.asarray(affine, dtype="float64")
        return (
            np.ascontiguousarray(ras),
            io.voxel_sizes(ras_affine),
            lambda x: io.from_ras(x, affine),
            affine,
        )
    sizes = _positive_sizes(
        1.0 if voxel_size is None else voxel_size, image.ndim, "voxel_size"
    )
    save_affine = np.diag([*sizes, 1.0]) if image.ndim == 3 else None
    return image, sizes, lambda x: x, save_affine


def segment(
    model,
    image,
    voxel_size=None,
    affine=None,
    target_voxel_size=1.0,
    percentiles=(0.5, 99.5),
    divisor=16,
    slice_axis=2,
    batch_size=8,
    flip=False,
    flip_axis=0,
    flip_pairs=None,
    output_labels=None,
    empty_background=True,
    smoothing_sigma=0.0,
    keep_largest_component=False,
    topology_classes=None,
    interpolation="linear",
    out_path=None,
):
    """Segment a scan with a trained network; labels in the input's space.

    Steps: (1) bring the scan to RAS+ voxel order (a path: from its header,
    see `synthlayers.io.load_volume`; an array with `affine`: from that
    affine; an array with `voxel_size` or nothing: assumed to be RAS+
    already); (2) rescale intensities between two percentiles to [0, 1]
    (`normalize_intensities`); (3) resample linearly to `target_voxel_size`
    (the training voxel size; a centred grid of `round(n * size / target)`
    voxels, Gaussian pre-blur where it downsamples); (4) `predict_probabilities`
    (padding to `divisor`, 2D networks slice by slice along `slice_axis`,
    optional left/right flip augmentation along `flip_axis`); (4b) optionally,
    SynthSeg's clean-up on the network grid: Gaussian smoothing of the
    probabilities (`smooth_probabilities`) and the largest connected
    component of each structure (`keep_largest_components`); (5) back to the
    input grid: with `interpolation="linear"` each channel's probability map
    is resampled linearly and the argmax taken there (smooth boundaries, as
    SynthSeg; one channel at a time to bound memory), with `"nearest"` the
    argmax is taken on the network grid and the labels are resampled by
    nearest neighbour (cheaper); (6) channel indices become `output_labels`
    values; (7) the voxel order is put back to the input's.

    Args:
        model: a Keras model, input `(batch, *spatial, 1)` with `None`
            spatial sizes (2D or 3D), output `(batch, *spatial, channels)`
            probabilities.
        image: a path to a NIfTI/MGH file, a nibabel image, or a 2D/3D
            array.
        voxel_size: voxel size of an array (mm; a number or one per axis),
            or None for 1 mm. The array is then assumed to be in RAS+ order.
            Must be None for a path or with `affine`. Defaults to None.
        affine: 4 x 4 voxel-to-RAS matrix of a 3D array, which may be in any
            voxel order. Defaults to None.
        target_voxel_size: the network's voxel size (mm; number or one per
            axis), or None to keep the input's. Defaults to 1.0.
        percentiles: `(low, high)` percentiles mapped to 0 and 1, or None to
            feed intensities as they are. Defaults to `(0.5, 99.5)`.
        divisor: pad the network's spatial axes to a multiple of this
            (`2 ** levels`). Defaults to 16.
        slice_axis: RAS axis a 2D network slides along (0 sagittal,
            1 coronal, 2 axial), or a tuple of axes whose views are
            averaged (see `predict_probabilities`). Defaults to 2.
        batch_size: slices per call for a 2D network. Defaults to 8.
        flip: left/right flip test-time augmentation. Defaults to False.
        flip_axis: RAS axis of the flip (0: left/right). Defaults to 0.
        flip_pairs: `(left_index, right_index)` channel pairs, or None to
            derive them from `output_labels` and FreeSurfer's left/right
            pairs. Defaults to None.
        output_labels: label value of each channel in channel order (e.g.
            sorted FreeSurfer values, the order synthlayers' targets use), or
            None to return channel indices. Defaults to None.
        empty_background: slices (2D networks) or images of constant
            intensity get the background, channel 0 (see
            `predict_probabilities`). Defaults to True.
        smoothing_sigma: Gaussian smoothing of the probabilities, in
            network voxels (SynthSeg uses 0.5); 0 smooths nothing. Defaults
            to 0.
        keep_largest_component: keep only the largest connected component
            of the foreground and of each structure
            (`keep_largest_components`, SynthSeg's clean-up). Defaults to
            False.
        topology_classes: one integer per channel grouping the channels
            cleaned together (0: left alone), or None for one class per
            foreground channel; used with `keep_largest_component`.
            Defaults to None.
        interpolation: `"linear"` (resample probabilities, then argmax) or
            `"nearest"` (argmax, then resample labels). Defaults to
            `"linear"`.
        out_path: write the labels there as NIfTI (int32) with the input's
            affine (the file's, `affine`, or `diag(voxel_size)`), or None.
            Defaults to None.

    Returns:
        An int32 array of the input's shape and voxel order: label values
        (or channel indices).

    Raises:
        ValueError: on invalid arguments (each names the argument, what was
            expected and what was received).

    Example:

    >>> labels = segment(model, "scan.nii.gz", flip=True,  # doctest: +SKIP
    ...                  output_labels=labels, out_path="scan_seg.nii.gz")
    """
    if interpolation not in INTERPOLATIONS:
        raise ValueError(
            f"Expected `interpolation` in {INTERPOLATIONS}. Received: "
            f"interpolation={interpolation!r}"
        )
    percentiles = _check_percentiles(percentiles)
    output_labels = _check_output_labels(output_labels)
    smoothing_sigma = _non_negative_number(smoothing_sigma, "smoothing_sigma")
    if not isinstance(keep_largest_component, bool):
        raise ValueError(
            "Expected `keep_largest_component` to be True or False. Received: "
            f"keep_largest_component={keep_largest_component!r}"
        )
    if topology_classes is not None and not keep_largest_component:
        raise ValueError(
            "Expected `topology_classes=None` without "
            "`keep_largest_component=True` (they group the channels it "
            f"cleans). Received: topology_classes={topology_classes!r}"
        )
    data, sizes, to_input_order, save_affine = _prepare(image, voxel_size, affine)
    if out_path is not None and save_affine is None:
        raise ValueError(
            "Expected a 3D image to write `out_path` (NIfTI). Received: "
            f"image.shape={data.shape}, out_path={out_path!r}"
        )
    target = _positive_sizes(
        target_voxel_size, data.ndim, "target_voxel_size", allow_none=True
    )
    if percentiles is not None:
        data = normalize_intensities(data, percentiles)
    grid = _Grid(data.shape, sizes, target)
    probabilities = predict_probabilities(
        model,
        grid.to_network(data),
        divisor=divisor,
        slice_axis=slice_axis,
        batch_size=batch_size,
        flip=flip,
        flip_axis=flip_axis,
        flip_pairs=flip_pairs,
        output_labels=output_labels,
        empty_background=empty_background,
    )
    channels = probabilities.shape[-1]
    if output_labels is not None and len(output_labels) != channels:
        raise ValueError(
            f"Expected `output_labels` with one value per output channel "
            f"({channels}). Received: {len(output_labels)} output_labels"
        )
    if smoothing_sigma > 0:
        probabilities = smooth_probabilities(probabilities, smoothing_sigma)
    if keep_largest_component:
        _keep_largest_components(probabilities, 0.25, topology_classes)
    if not grid.axes:
        labels = np.argmax(probabilities, axis=-1)
    elif interpolation == "nearest":
        labels = grid.nearest_to_input(np.argmax(probabilities, axis=-1))
    else:
        best = grid.to_input(probabilities[..., 0])
        labels = np.zeros(best.shape, "int32")
        for c in range(1, channels):
            p = grid.to_input(probabilities[..., c])
            better = p > best
            best = np.where(better, p, best)
            labels[better] = c
    labels = labels.astype("int32")
    if output_labels is not None:
        labels = output_labels[labels]
    labels = np.ascontiguousarray(to_input_order(labels))
    if out_path is not None:
        io.save_volume(out_path, labels, save_affine)
    return labels


# --- Export --------------------------------------------------------------------


def export_network(model, path, verbose=False):
    """Export the inference network as a TensorFlow SavedModel, any spatial size.

    Calls the public `model.export(path, format="tf_saved_model")` with an
    input signature whose batch and spatial sizes are all `None`, so the
    reloaded artifact (`tf.saved_model.load(path).serve(x)`) accepts any
    batch and any spatial size the network supports. Export the network
    alone (no synthesis layers). Needs TensorFlow installed; Keras supports
    this export from the TensorFlow and JAX backends.

    Args:
        model: a Keras model with one input `(batch, *spatial, channels)`.
        path: the output directory.
        verbose: print Keras's export summary. Defaults to False.

    Returns:
        The path, as a string.

    Raises:
        ValueError: when the model does not have one 2D/3D image input.

    Example:

    >>> export_network(model, "synthseg_savedmodel")  # doctest: +SKIP
    >>> import tensorflow as tf
    >>> reloaded = tf.saved_model.load("synthseg_savedmodel")  # doctest: +SKIP
    >>> probabilities = reloaded.serve(x)  # doctest: +SKIP
    """
    rank = _spatial_rank(model)
    spec = model.inputs[0]
    signature = [
        keras.InputSpec(
            shape=(None,) * (rank + 1) + (spec.shape[-1],),
            dtype=keras.backend.standardize_dtype(spec.dtype),
        )
    ]
    path = os.fspath(path)
    model.export(
        path, format="tf_saved_model", verbose=verbose, input_signature=signature
    )
    return path
