"""Label maps prepared once, in NumPy, before training.

Load (`load_label_map`, RAS+ through `synthlayers.io.load_volume`), resample
to the training voxel size (`resample_label_map`, nearest neighbour), store
label indices instead of label values (`compact_labels`, with the matching
`LabelsToImage` arguments from `compact_label_arguments`) and crop to the
foreground (`bounding_box`, `crop_to_bounding_box`).
"""

import functools
import warnings

import numpy as np

from synthlayers.io import load_volume
from synthlayers.resampling import resample_labels
from synthlayers.validation import broadcast_per_axis
from synthlayers.validation import check_int_list
from synthlayers.validation import check_per_axis
from synthlayers.validation import is_integer


def _renamed_argument(old, new):
    """Accept keyword `old` as a deprecated alias of argument `new`.

    `new` must be the function's first parameter: an `old` keyword together
    with `new` (by keyword or position) is a `ValueError`.
    """

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if old in kwargs:
                if new in kwargs or args:
                    raise ValueError(
                        f"`{old}` is a deprecated name of `{new}`: pass only "
                        f"`{new}`. Received: {new} and {old}"
                    )
                warnings.warn(
                    f"{function.__name__}(): the argument `{old}` is deprecated and "
                    f"will be removed in the next release; use `{new}` instead.",
                    DeprecationWarning,
                    stacklevel=2,
                )
                kwargs[new] = kwargs.pop(old)
            return function(*args, **kwargs)

        return wrapper

    return decorate


def _check_integer_map(label_map, name="label_map"):
    """An integer array with at least one axis."""
    label_map = np.asarray(label_map)
    if not np.issubdtype(label_map.dtype, np.integer) or label_map.ndim < 1:
        raise ValueError(
            f"`{name}` must be an integer array. Received: {name} with dtype "
            f"{label_map.dtype} and shape {label_map.shape}"
        )
    return label_map


def _positive_per_axis(value, name, ndim):
    """A positive number, or one per axis (mm), as a tuple of `ndim` floats."""
    values = value.tolist() if isinstance(value, np.ndarray) else value
    values = check_per_axis(values, name, ndim, min_value=0)
    if min(values) <= 0:
        raise ValueError(
            f"`{name}` must be a positive number or a list of {ndim}, one per "
            f"axis. Received: {name}={value!r}"
        )
    return values


def _margins(margin, ndim):
    """A non-negative integer, or one per axis, as a tuple of `ndim` ints."""
    margins = check_int_list(
        [margin] if is_integer(margin) else margin, "margin", 0, received=margin
    )
    return broadcast_per_axis(margins, ndim, "margin")


def load_label_map(path):
    """Load a NIfTI/MGH label map as int32 in RAS+ orientation.

    The file is read with `synthlayers.io.load_volume`, which permutes and
    flips the voxel axes (no resampling) so that the first, second and third
    axes run to the right, anterior and superior: maps stored in different
    orientations line up. Values are rounded before the cast, since label
    maps are often stored as floats.

    Args:
        path: the file (`.nii`, `.nii.gz`, `.mgz`, anything nibabel reads),
            with 3 spatial axes.

    Returns:
        `(labels, voxel_sizes)`: an int32 array of the image's shape (in
        RAS+ order) and a tuple of floats (mm per voxel along each spatial
        axis of `labels`).

    Raises:
        ValueError: when the file holds fewer than three axes.
    """
    volume = load_volume(path)
    data = volume.data
    if not np.issubdtype(data.dtype, np.integer):
        data = np.rint(data)
    labels = np.ascontiguousarray(data, dtype="int32")
    return labels, tuple(float(size) for size in volume.voxel_sizes)


@_renamed_argument("labels_map", "label_map")
def resample_label_map(label_map, voxel_sizes, target_voxel_size):
    """Resample a label map to another voxel size, nearest neighbour.

    The one nearest-neighbour convention of synthlayers
    (`synthlayers.resampling.resample_labels`, which this calls): each
    output voxel takes the label of the input voxel that contains its
    centre (ties, a centre on a boundary, go to the upper voxel, as with
    `scipy.ndimage.zoom(..., order=0, grid_mode=True)`). Along each axis the
    output has `round(n * voxel_size / target)` voxels (halves rounded up)
    spanning the same field of view, centred on the same point; when
    `n * voxel_size / target` is a whole number the grids share their edges,
    so halving the resolution keeps voxels 1, 3, 5, ... and doubling it
    repeats each voxel twice. No label that is not in the input appears.
    Nothing is done (the input is returned) when the voxel sizes already
    match. The affine is not handled: this works on arrays.

    Args:
        label_map: a label map (any array, 1 to 3 axes; usually integer).
        voxel_sizes: its voxel size along each axis (mm), e.g. the
            `voxel_sizes` returned by `load_label_map`.
        target_voxel_size: the training voxel size (mm): a number, or one per
            axis.

    Returns:
        The resampled label map, same dtype.

    Raises:
        ValueError: for non-positive or mismatched voxel sizes.

    Example:

    >>> import numpy as np
    >>> resample_label_map(np.arange(8), (1.0,), 2.0)
    array([1, 3, 5, 7])
    """
    label_map = np.asarray(label_map)
    ndim = label_map.ndim
    if ndim < 1:
        raise ValueError(
            f"`label_map` must have at least one axis. Received: label_map "
            f"with shape {label_map.shape}"
        )
    # The target is checked here so that errors name this function's argument.
    _positive_per_axis(target_voxel_size, "target_voxel_size", ndim)
    return resample_labels(label_map, voxel_sizes, target_voxel_size)


def _check_generation_labels(generation_labels):
    values = np.asarray(generation_labels)
    if (
        values.size == 0
        or not np.issubdtype(values.dtype, np.integer)
        or len(np.unique(values)) != values.size
    ):
        raise ValueError(
            "`generation_labels` must be a non-empty list of unique integers. "
            f"Received: generation_labels={generation_labels!r}"
        )
    return values.ravel().astype("int64")


@_renamed_argument("labels_map", "label_map")
def compact_labels(label_map, generation_labels):
    """Replace label values by their index in `generation_labels`, once.

    Label `generation_labels[i]` becomes `i`, so a map with K generation
    labels fits in uint8 (K <= 256) or int16 (K <= 32768) and needs no
    lookup in the graph. Note the order: the position in `generation_labels`
    (so that `classes[i]` of `synthseg_generation_labels` is the class of
    index `i`), not the sorted order of `RemapLabels`' compact mode.

    A compacted map is no longer in FreeSurfer values: give `LabelsToImage`
    `labels=range(K)` with the same `classes`, targets as
    `{index: target}`, and the left/right swap of flips as index pairs
    (`LabelsToImage.synthseg` would otherwise look up FreeSurfer pairs among
    the indices). `compact_label_arguments(generation_labels, ...)` builds
    exactly these arguments.

    Args:
        label_map: an integer label map (any shape).
        generation_labels: the label values, unique; every value of
            `label_map` must be among them.

    Returns:
        The index map: uint8 for up to 256 labels, int16 up to 32768, else
        int32; same shape.

    Raises:
        ValueError: listing the labels of `label_map` missing from
            `generation_labels`.

    Example:

    >>> import numpy as np
    >>> compact_labels(np.array([[0, 41], [2, 2]]), [0, 2, 41])
    array([[0, 2],
           [1, 1]], dtype=uint8)
    """
    label_map = _check_integer_map(label_map)
    values = _check_generation_labels(generation_labels)
    count = values.size
    dtype = "uint8" if count <= 256 else "int16" if count <= 32768 else "int32"
    if label_map.size == 0:
        return np.zeros(label_map.shape, dtype)
    low, high = min(int(label_map.min()), 0), int(label_map.max())
    if high - low < 1 << 24:
        # A dense table over the map's range: one gather, fast at 256^3.
        table = np.full(high - low + 1, -1, "int16" if count < 32768 else "int32")
        inside = (values >= low) & (values <= high)
        table[values[inside] - low] = np.nonzero(inside)[0]
        index = table[label_map if low == 0 else label_map.astype("int64") - low]
    else:
        order = np.argsort(values)
        position = np.clip(np.searchsorted(values[order], label_map), 0, count - 1)
        index = np.where(values[order][position] == label_map, order[position], -1)
    unknown = index < 0
    if np.any(unknown):
        missing = np.unique(label_map[unknown])
        shown = ", ".join(str(v) for v in missing[:20])
        more = f" and {missing.size - 20} more" if missing.size > 20 else ""
        raise ValueError(
            f"`label_map` has {missing.size} label value(s) missing from "
            f"`generation_labels`: {shown}{more}. Add them to "
            "`generation_labels` (or remap them first). Received: "
            f"generation_labels={values.tolist()}"
        )
    return index.astype(dtype)


def compact_label_arguments(generation_labels, output_labels=None):
    """`LabelsToImage` arguments for maps compacted with `compact_labels`.

    Returns `labels=[0, ..., K-1]`, the targets `output_labels` as an
    `{index: target label}` dict (the targets keep their label values) and
    the left/right `label_swap` of the FreeSurfer pairs in
    `generation_labels` as index pairs. Pass them with the generation
    classes, e.g.
    `LabelsToImage.synthseg(classes=classes, **compact_label_arguments(...))`;
    on the compacted maps it then gives the same targets as on the original
    maps.

    Args:
        generation_labels: the label values given to `compact_labels`.
        output_labels: target labels: `None` (all generation labels), a list
            (the others become 0) or a `{label: target}` dict, in label
            values. Defaults to `None`.

    Returns:
        A dict with keys `"labels"`, `"output_labels"` and `"label_swap"`
        (`None` when no FreeSurfer left/right pair is present).

    Raises:
        ValueError: when `output_labels` names a label missing from
            `generation_labels`.
    """
    from synthlayers.freesurfer import left_right_swap

    values = _check_generation_labels(generation_labels).tolist()
    index = {v: i for i, v in enumerate(values)}
    if output_labels is None:
        mapping = {v: v for v in values}
    elif isinstance(output_labels, dict):
        mapping = {int(k): int(v) for k, v in output_labels.items()}
    else:
        mapping = {int(v): int(v) for v in np.ravel(output_labels)}
    missing = sorted(set(mapping) - set(index))
    if missing:
        raise ValueError(
            f"`output_labels` names labels missing from `generation_labels`: "
            f"{missing}. Received: output_labels={output_labels!r}"
        )
    swap = {index[a]: index[b] for a, b in left_right_swap(values).items()}
    return {
        "labels": list(range(len(values))),
        "output_labels": {index[k]: v for k, v in mapping.items()},
        "label_swap": swap or None,
    }


@_renamed_argument("labels_map", "label_map")
def bounding_box(label_map, margin=0, background=0, labels=None):
    """The slices of the smallest box holding every non-background voxel.

    Args:
        label_map: a label map (any number of axes).
        margin: voxels added on each side, clipped at the array's edges: a
            number, or one per axis. Defaults to `0`.
        background: the label outside the box. Defaults to `0`.
        labels: the labels the box must hold (e.g. the brain's structures,
            `synthlayers.freesurfer.SYNTHSEG_STRUCTURES`, to leave the rest
            of the head out), or `None` for every label but `background`.
            Defaults to `None`.

    Returns:
        A tuple of slices, one per axis (index any array of the same shape
        with it, e.g. an image to crop alike).

    Raises:
        ValueError: for a bad margin, or when the map is all background.
    """
    label_map = np.asarray(label_map)
    margins = _margins(margin, label_map.ndim)
    if labels is None:
        foreground = label_map != background
    else:
        labels = check_int_list(labels, "labels")
        foreground = np.isin(label_map, labels)
    box = []
    for axis, extra in enumerate(margins):
        others = tuple(a for a in range(label_map.ndim) if a != axis)
        present = np.nonzero(np.any(foreground, axis=others))[0]
        if present.size == 0:
            raise ValueError(
                f"`label_map` has no voxel other than background={background!r}"
                f"{'' if labels is None else f' among labels={labels!r}'}; there "
                f"is no box to crop to. Received: label_map with shape "
                f"{label_map.shape}"
            )
        start = max(0, int(present[0]) - extra)
        stop = min(label_map.shape[axis], int(present[-1]) + 1 + extra)
        box.append(slice(start, stop))
    return tuple(box)


@_renamed_argument("labels_map", "label_map")
def crop_to_bounding_box(label_map, margin=0, background=0, labels=None):
    """Crop a label map to the box around its non-background voxels.

    Whole-head maps (SynthSeg's are 256^3) often hold much background; a
    crop with a margin of a few voxels keeps every label and shrinks the
    map, before `LabelsToImage` crops or pads to its `output_shape`. With
    `labels` the box is the one of those labels (e.g. the brain): the random
    crop of `LabelsToImage.synthseg` (`placement="random"`) then moves the
    output grid over the brain, never off it.

    Args:
        label_map: a label map (any number of axes).
        margin: voxels kept around the box on each side (clipped at the
            edges): a number, or one per axis. Defaults to `0`.
        background: the label outside the box. Defaults to `0`.
        labels: the labels the box must hold, or `None` for every label but
            `background`. Defaults to `None`.

    Returns:
        The cropped label map: a contiguous copy, same dtype.

    Raises:
        ValueError: for a bad margin, or when the map is all background.

    Example:

    >>> import numpy as np
    >>> labels = np.zeros((6, 6), "uint8")
    >>> labels[2:4, 3] = 1
    >>> crop_to_bounding_box(labels, margin=1).shape
    (4, 3)
    """
    label_map = np.asarray(label_map)
    box = bounding_box(label_map, margin, background, labels)
    return np.ascontiguousarray(label_map[box])
