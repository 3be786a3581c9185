"""Deterministic contrast test cases made from one real scan.

A network trained on images of random contrast should segment real scans of
any contrast. These cases test that claim with one real T1 scan (e.g.
voxelmorph's test scan, `synthlayers.data.load_vxm_test_scan`): each case is
a deterministic function of the scan's own intensities, so it keeps the real
anatomy, noise, bias and partial volume; none is rendered from the labels,
and none involves randomness. Each is a float32 array of the scan's shape,
min-max normalised to [0, 1].

The cases (`CONTRAST_CASES`):

- `"t1"`: the scan as it is.
- `"inverted"`: the contrast inverted inside the brain, a T2-like ordering
  (CSF and ventricles bright, grey matter middle, white matter dark):
  `clip((p99.5 - x) / (p99.5 - p0.5), 0, 1)` with the 0.5th and 99.5th
  percentiles of the brain's intensities; the background stays 0.
- `"remapped"`: a non-monotonic pointwise remapping with grey matter
  brightest: a piecewise-linear curve through `(p0.5, 0.15)`, `(CSF, 0.3)`,
  `(GM, 1.0)`, `(WM, 0.55)`, `(p99.5, 0.35)`, constant beyond its ends, where
  CSF, GM and WM are the median intensities of the lateral ventricles
  (FreeSurfer labels 4, 43), cerebral cortex (3, 42) and cerebral white matter
  (2, 41); the background stays 0.
- `"spacing_3mm"`: an isotropic 3 mm acquisition, brought back to the scan's
  grid.
- `"slices_5mm"`: 5 mm thick slices along `slice_axis` (1 x 1 x 5 mm for a
  1 mm scan; by default axial slices in RAS+), brought back to the scan's
  grid.

The brain is where the (min-max normalised) scan is above 0: the scan's own
skull-stripping, not the labels. The segmentation is used for one thing
only: placing the control points of `"remapped"` at tissue medians. The
remapped image is still a pointwise function of the real intensities: a
voxel's value depends on its intensity, never on its label.

The resolution cases follow SynthSeg's acquisition model (lab2im
`blurring_sigma_for_downsampling`, the rule of
`synthlayers.layers.RandomResolution`): along each axis whose spacing `s`
(voxels: spacing in mm / voxel size) is above 1, a Gaussian blur of
`sigma = 0.75 * s` voxels (untruncated: scipy's 4 sigma window, "nearest"
edges), sampling at voxels `0, s, 2s, ...` (linear interpolation where `s` is
not an integer), then linear interpolation back to every voxel, constant
beyond the last sample. Axes at the scan's resolution are left as they are
(SynthSeg blurs them with sigma 0.5, meant for images drawn from labels; the
real scan already has its acquisition's blur).
"""

import numbers

import numpy as np
from scipy import ndimage

CONTRAST_CASES = ("t1", "inverted", "remapped", "spacing_3mm", "slices_5mm")
"""Names of the contrast cases, in the order of `make_contrast_cases`."""

PERCENTILES = (0.5, 99.5)
"""Robust intensity range of the brain: the ends of `"inverted"`."""

TISSUE_LABELS = {"csf": (4, 43), "gm": (3, 42), "wm": (2, 41)}
"""FreeSurfer labels of the tissues placing `"remapped"`'s control points:
lateral ventricles, cerebral cortex, cerebral white matter."""

REMAPPED_VALUES = {"low": 0.15, "csf": 0.3, "gm": 1.0, "wm": 0.55, "high": 0.35}
"""Output of `"remapped"` at the 0.5th percentile, the tissue medians and the
99.5th percentile of the brain's intensities."""

SIGMA_COEFFICIENT = 0.75
"""SynthSeg's blur before downsampling: sigma = 0.75 * spacing (voxels)."""

# case: (spacing in mm, axes) with None for all three axes.
_RESOLUTION_CASES = {"spacing_3mm": (3.0, None), "slices_5mm": (5.0, "slice")}


def _check_image(image):
    array = np.asarray(image)
    if array.ndim != 3:
        raise ValueError(
            "Expected `image` to be a 3D array (one channel). Received: "
            f"image with shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(
            "Expected `image` to hold real numbers. Received: image with dtype "
            f"{array.dtype}"
        )
    array = array.astype("float64")
    if not np.all(np.isfinite(array)):
        raise ValueError(
            "Expected `image` to hold finite values. Received: image with "
            f"{int(np.sum(~np.isfinite(array)))} NaN or infinite voxels"
        )
    low, high = array.min(), array.max()
    if high <= low:
        raise ValueError(
            "Expected `image` to vary: a brain brighter than its background, "
            f"where the brain mask is `image > min(image)`. Received: image "
            f"constant at {low:g}, an empty brain mask"
        )
    return (array - low) / (high - low)


def _check_segmentation(segmentation, shape):
    if segmentation is None:
        return None
    array = np.asarray(segmentation)
    if array.shape != shape:
        raise ValueError(
            "Expected `segmentation` to have the shape of `image`. Received: "
            f"segmentation.shape={array.shape}, image.shape={shape}"
        )
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or np.any(array != np.rint(array)):
            raise ValueError(
                "Expected `segmentation` to hold integer label values. Received: "
                "non-integer values"
            )
    elif not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            "Expected `segmentation` to be an integer label map. Received: "
            f"segmentation with dtype {array.dtype}"
        )
    if not np.any(array != 0):
        raise ValueError(
            "Expected `segmentation` to label the brain (non-zero labels). "
            "Received: segmentation with only zeros, an empty brain mask"
        )
    return array.astype("int64")


def _check_voxel_size(voxel_size):
    values = (
        (voxel_size,) * 3
        if isinstance(voxel_size, numbers.Real) and not isinstance(voxel_size, bool)
        else voxel_size
    )
    if (
        not isinstance(values, (tuple, list, np.ndarray))
        or len(values) != 3
        or not all(
            isinstance(v, numbers.Real)
            and not isinstance(v, bool)
            and np.isfinite(v)
            and v > 0
            for v in values
        )
    ):
        raise ValueError(
            "Expected `voxel_size` to be a positive number (mm) or 3 of them, "
            f"one per axis. Received: voxel_size={voxel_size!r}"
        )
    return tuple(float(v) for v in values)


def _check_slice_axis(slice_axis):
    if (
        not isinstance(slice_axis, numbers.Integral)
        or isinstance(slice_axis, bool)
        or not 0 <= slice_axis < 3
    ):
        raise ValueError(
            "Expected `slice_axis` to be an axis 0, 1 or 2 (2: axial slices in "
            f"RAS+). Received: slice_axis={slice_axis!r}"
        )
    return int(slice_axis)


def _check_case(case):
    if not isinstance(case, str) or case not in CONTRAST_CASES:
        raise ValueError(
            f"Expected `case` to be one of {CONTRAST_CASES}. Received: case={case!r}"
        )
    return case


def _minmax(array):
    low, high = array.min(), array.max()
    if high <= low:
        return np.zeros(array.shape, "float32")
    return ((array - low) / (high - low)).astype("float32")


def _interpolate_axis(array, positions, axis):
    """Linear interpolation of `array` at `positions` along `axis`.

    Positions outside `[0, n - 1]` take the nearest end's value.
    """
    length = array.shape[axis]
    positions = np.clip(np.asarray(positions, "float64"), 0, length - 1)
    if length == 1:
        return np.take(array, np.zeros(positions.shape, "int64"), axis=axis)
    low = np.minimum(np.floor(positions).astype("int64"), length - 2)
    weight = positions - low
    shape = [1] * array.ndim
    shape[axis] = positions.size
    weight = weight.reshape(shape)
    below = np.take(array, low, axis=axis)
    above = np.take(array, low + 1, axis=axis)
    return below * (1 - weight) + above * weight


def _simulate_acquisition(image, spacing):
    """Blur, sample every `spacing[axis]` voxels, interpolate back.

    Args:
        image: a float array.
        spacing: the acquisition's spacing per axis, in voxels of `image`;
            axes with a spacing <= 1 are left as they are.

    Returns:
        A float64 array of the shape of `image` (not normalised).
    """
    result = np.asarray(image, "float64")
    for axis, step in enumerate(spacing):
        if step <= 1:
            continue
        length = result.shape[axis]
        result = ndimage.gaussian_filter1d(
            result, SIGMA_COEFFICIENT * step, axis=axis, mode="nearest", truncate=4.0
        )
        count = int(np.floor((length - 1) / step + 1e-9)) + 1
        low = _interpolate_axis(result, np.arange(count) * step, axis)
        result = _interpolate_axis(low, np.arange(length) / step, axis)
    return result


def _tissue_medians(image, segmentation):
    medians = {}
    for tissue, labels in TISSUE_LABELS.items():
        values = image[np.isin(segmentation, labels)]
        if values.size == 0:
            raise ValueError(
                f"Expected `segmentation` to hold the {tissue.upper()} labels "
                f"{labels} (FreeSurfer) for case='remapped'. Received: "
                "segmentation without them"
            )
        medians[tissue] = float(np.median(values))
    if not medians["csf"] < medians["gm"] < medians["wm"]:
        raise ValueError(
            "Expected a T1-weighted `image` for case='remapped': median "
            "intensities CSF < grey matter < white matter. Received: medians "
            + ", ".join(f"{k}={v:.4g}" for k, v in medians.items())
        )
    return medians


def _remap(image, brain, segmentation):
    medians = _tissue_medians(image, segmentation)
    low, high = np.percentile(image[brain], PERCENTILES)
    points = [
        (low, REMAPPED_VALUES["low"]),
        (medians["csf"], REMAPPED_VALUES["csf"]),
        (medians["gm"], REMAPPED_VALUES["gm"]),
        (medians["wm"], REMAPPED_VALUES["wm"]),
        (high, REMAPPED_VALUES["high"]),
    ]
    # The ends only where they extend the tissue points (xp increasing).
    if not low < medians["csf"]:
        points.pop(0)
    if not high > medians["wm"]:
        points.pop()
    xp, fp = zip(*points)
    return np.where(brain, np.interp(image, xp, fp), 0.0)


def make_contrast_case(image, segmentation, case, voxel_size=1.0, slice_axis=2):
    """One deterministic contrast case of a real scan (see the module).

    Args:
        image: a 3D scan, skull-stripped (zero background), T1-weighted for
            `"inverted"` and `"remapped"` to have their intended orderings.
        segmentation: its FreeSurfer segmentation (same shape), used only to
            place `"remapped"`'s control points; None is allowed for the
            other cases.
        case: one of `CONTRAST_CASES`.
        voxel_size: the scan's voxel size in mm, one number or one per
            axis. Defaults to 1.0.
        slice_axis: the axis of the thick slices of `"slices_5mm"` (2: axial
            in RAS+). Defaults to 2.

    Returns:
        A float32 array of the shape of `image`, min-max normalised to
        [0, 1].

    Raises:
        ValueError: for an unknown case, a non-3D, non-finite or constant
            image, a segmentation of another shape or without labels,
            `"remapped"` without the tissue labels or on a non-T1 ordering,
            a bad `voxel_size` or `slice_axis`.

    Example:

    >>> import numpy as np
    >>> image = np.zeros((4, 4, 4)); image[1:3, 1:3, 1:3] = [[1, 2], [3, 4]]
    >>> inverted = make_contrast_case(image, None, "inverted")
    >>> [round(float(v), 2) for v in inverted[1, 1:3, 1:3].ravel()]
    [1.0, 0.67, 0.33, 0.0]
    >>> float(inverted[0, 0, 0])
    0.0
    """
    case = _check_case(case)
    normalised = _check_image(image)
    segmentation = _check_segmentation(segmentation, normalised.shape)
    voxel_size = _check_voxel_size(voxel_size)
    slice_axis = _check_slice_axis(slice_axis)
    brain = normalised > 0
    if case == "t1":
        result = normalised
    elif case == "inverted":
        low, high = np.percentile(normalised[brain], PERCENTILES)
        if high <= low:
            high, low = normalised[brain].max(), normalised[brain].min()
        scale = high - low if high > low else 1.0
        result = np.where(brain, np.clip((high - normalised) / scale, 0, 1), 0.0)
    elif case == "remapped":
        if segmentation is None:
            raise ValueError(
                "Expected a `segmentation` (FreeSurfer labels) for "
                "case='remapped': it places the control points at tissue "
                "medians. Received: segmentation=None"
            )
        result = _remap(normalised, brain, segmentation)
    else:
        millimetres, axes = _RESOLUTION_CASES[case]
        axes = range(3) if axes is None else (slice_axis,)
        spacing = [millimetres / voxel_size[a] if a in axes else 1.0 for a in range(3)]
        result = _simulate_acquisition(normalised, spacing)
    return _minmax(result)


def make_contrast_cases(
    image, segmentation, cases=CONTRAST_CASES, voxel_size=1.0, slice_axis=2
):
    """Several contrast cases of a real scan (see `make_contrast_case`).

    Args:
        image: a 3D scan, skull-stripped, T1-weighted.
        segmentation: its FreeSurfer segmentation, or None (then without
            `"remapped"`).
        cases: names among `CONTRAST_CASES`. Defaults to all of them.
        voxel_size: the scan's voxel size in mm. Defaults to 1.0.
        slice_axis: the thick slices' axis of `"slices_5mm"`. Defaults to 2.

    Returns:
        A dict `{name: float32 array in [0, 1]}`, in the order of `cases`.

    Raises:
        ValueError: as `make_contrast_case`, or for an empty or repeated
            `cases`.

    Example:

    >>> import numpy as np
    >>> image = np.zeros((6, 6, 6)); image[1:5, 1:5, 1:5] = 1.0
    >>> cases = make_contrast_cases(image, None, cases=("t1", "spacing_3mm"))
    >>> sorted(cases), cases["t1"].dtype, cases["spacing_3mm"].shape
    (['spacing_3mm', 't1'], dtype('float32'), (6, 6, 6))
    """
    names = (cases,) if isinstance(cases, str) else cases
    if (
        not isinstance(names, (tuple, list))
        or not names
        or len(set(names)) != len(names)
    ):
        raise ValueError(
            f"Expected `cases` to be distinct names among {CONTRAST_CASES}. "
            f"Received: cases={cases!r}"
        )
    for name in names:
        _check_case(name)
    return {
        name: make_contrast_case(
            image, segmentation, name, voxel_size=voxel_size, slice_axis=slice_axis
        )
        for name in names
    }
