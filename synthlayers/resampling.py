"""Resample arrays between voxel grids that share the centre of their field of view.

Two grids of the same field of view: the input, `voxel_sizes` (mm) per
axis, and the output, `target_voxel_sizes`, with `resampled_shape` voxels
along each axis (or a given `output_shape`) centred on the same point. In
input voxel coordinates (voxel `i` spans `[i, i + 1)`), output voxel `j`
along an axis of `n` input and `m` output voxels has its centre at

    n / 2 + (j - (m - 1) / 2) * target / size

so when `n * size / target` is a whole number the two grids share their
edges: halving the resolution keeps voxels 1, 3, 5, ... and doubling it
repeats each voxel twice.

- `resample_labels`: nearest neighbour, the one convention for label maps in
  synthlayers (datasets and inference): each output voxel takes the label
  of the input voxel that contains its centre; a centre exactly on a
  boundary goes to the upper voxel, as `scipy.ndimage.zoom(..., order=0,
  grid_mode=True)` does. The indices are computed per axis in float64 and
  rounded to 1e-6 voxels before the floor, so ties do not depend on
  floating-point noise (scipy's own order-0 rounding of its float
  coordinates would).
- `resample_image`: linear interpolation (`scipy.ndimage.affine_transform`,
  `order=1`, edges clamped), after a Gaussian blur of sigma
  `(step - 1) / 2` input voxels along each axis that is downsampled by
  `step` (`scipy.ndimage.gaussian_filter1d`, edges repeated, radius
  `ceil(3 sigma)`, skipped below sigma 0.25) against aliasing.

NumPy and SciPy only; the affine is not handled (these work on arrays, see
`synthlayers.io` for orientation).
"""

import math
import numbers

import numpy as np
from scipy import ndimage

from synthlayers.validation import check_shape

# Voxel sizes within this relative tolerance, with the same voxel count,
# leave an axis of `resample_image` untouched.
_SAME_SIZE_RTOL = 1e-3
# Blurs narrower than this are skipped (neighbours' weights under 0.04 %).
_MIN_SIGMA = 0.25


def _positive_sizes(value, ndim, name):
    """A number or `ndim` positive finite numbers (mm) as a tuple of floats."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        sizes = (float(value),) * ndim
    else:
        try:
            if isinstance(value, (str, bytes)):
                raise TypeError
            sizes = tuple(
                float(v)
                if isinstance(v, numbers.Real) and not isinstance(v, bool)
                else math.nan
                for v in value
            )
        except TypeError:
            sizes = ()
    if len(sizes) != ndim or not all(np.isfinite(sizes)) or min(sizes) <= 0:
        raise ValueError(
            f"Expected `{name}` to be a positive number or {ndim} positive "
            f"numbers (mm). Received: {name}={value!r}"
        )
    return sizes


def _same_size(size, target):
    """Whether two voxel sizes are equal within `_SAME_SIZE_RTOL`."""
    return abs(target - size) <= _SAME_SIZE_RTOL * max(size, target)


def resampled_shape(shape, voxel_sizes, target_voxel_sizes):
    """The voxel counts covering the same field of view at another voxel size.

    Along each axis `round(n * voxel_size / target)`, halves rounded up, and
    at least 1.

    Args:
        shape: the input's spatial shape (positive integers).
        voxel_sizes: the input's voxel size (mm): a number, or one per axis.
        target_voxel_sizes: the output's voxel size (mm): a number, or one
            per axis.

    Returns:
        A tuple of ints.

    Raises:
        ValueError: for a shape that is not positive integers, or voxel sizes
            that are not positive numbers (one per axis).

    Example:

    >>> resampled_shape((8, 5, 3), 1.0, (2.0, 2.0, 0.5))
    (4, 3, 6)
    """
    shape = check_shape(shape, "shape")
    sizes = _positive_sizes(voxel_sizes, len(shape), "voxel_sizes")
    targets = _positive_sizes(target_voxel_sizes, len(shape), "target_voxel_sizes")
    return tuple(
        max(1, int(math.floor(n * v / t + 0.5)))
        for n, v, t in zip(shape, sizes, targets)
    )


def _check_grids(array, spatial_ndim, voxel_sizes, target_voxel_sizes, output_shape):
    sizes = _positive_sizes(voxel_sizes, spatial_ndim, "voxel_sizes")
    targets = _positive_sizes(target_voxel_sizes, spatial_ndim, "target_voxel_sizes")
    in_shape = array.shape[:spatial_ndim]
    if output_shape is None:
        out_shape = resampled_shape(in_shape, sizes, targets)
    else:
        out_shape = check_shape(output_shape, "output_shape", spatial_ndim)
    return sizes, targets, in_shape, out_shape


def _centres(n, count, ratio):
    """Output voxel centres in input coordinates (voxel `i` spans [i, i + 1))."""
    return n / 2 + (np.arange(count) - (count - 1) / 2) * ratio


def _nearest_indices(n, count, ratio):
    """Input voxel containing each output centre; ties go up, 1e-6 guard."""
    index = np.floor(np.round(_centres(n, count, ratio), 6)).astype("int64")
    return np.clip(index, 0, n - 1)


def resample_labels(labels, voxel_sizes, target_voxel_sizes, output_shape=None):
    """Resample a label map to another voxel size, nearest neighbour.

    Each output voxel takes the label of the input voxel that contains its
    centre (see the module docstring for the grids); a centre exactly on a
    boundary goes to the upper voxel. No value that is not in the input
    appears and the dtype is kept. When the voxel sizes match (relative
    tolerance 1e-6) and the output shape is the input's, the input itself
    is returned.

    Args:
        labels: a label map (any array with 1 or more axes, usually
            integer).
        voxel_sizes: its voxel size (mm): a number, or one per axis.
        target_voxel_sizes: the output voxel size (mm): a number, or one
            per axis.
        output_shape: the output shape, or None for `resampled_shape`.
            Defaults to None.

    Returns:
        The resampled label map, same dtype.

    Raises:
        ValueError: for an array without axes, voxel sizes that are not
            positive numbers (one per axis), or a bad `output_shape`.

    Example:

    >>> import numpy as np
    >>> resample_labels(np.arange(8), 1.0, 2.0)
    array([1, 3, 5, 7])
    >>> resample_labels(np.arange(3), 2.0, 1.0)
    array([0, 0, 1, 1, 2, 2])
    """
    labels = np.asarray(labels)
    if labels.ndim < 1:
        raise ValueError(
            "Expected `labels` with at least one axis. Received: labels with "
            f"shape {labels.shape}"
        )
    sizes, targets, in_shape, out_shape = _check_grids(
        labels, labels.ndim, voxel_sizes, target_voxel_sizes, output_shape
    )
    if out_shape == in_shape and np.allclose(sizes, targets, rtol=1e-6, atol=0):
        return labels
    indices = [
        _nearest_indices(n, m, t / v)
        for n, m, v, t in zip(in_shape, out_shape, sizes, targets)
    ]
    return labels[np.ix_(*indices)]


def resample_image(image, voxel_sizes, target_voxel_sizes, output_shape=None):
    """Resample an image to another voxel size, linear, blurred to downsample.

    Along each axis downsampled by `step = target / voxel_size` the image is
    first blurred with a Gaussian of sigma `(step - 1) / 2` input voxels
    (edges repeated, radius `ceil(3 sigma)`, skipped below 0.25) against
    aliasing; then it is interpolated linearly at the output voxel centres
    (see the module docstring), edges clamped. An axis whose voxel size is
    within 0.1 % of the target and whose voxel count is kept is left as it
    is. A last channel axis is allowed: `image.ndim == len(voxel_sizes) +
    1` (then `voxel_sizes` must list every spatial axis).

    Args:
        image: a float array `(*spatial)` or `(*spatial, channels)`;
            integers are converted to float32.
        voxel_sizes: its voxel size (mm): a number (no channel axis), or one
            per spatial axis.
        target_voxel_sizes: the output voxel size (mm): a number, or one
            per spatial axis.
        output_shape: the output's spatial shape, or None for
            `resampled_shape`. Defaults to None.

    Returns:
        A float array (the input's float dtype, else float32) of shape
        `(*output_shape[, channels])`.

    Raises:
        ValueError: for an array without axes, voxel sizes that are not
            positive numbers (one per spatial axis), or a bad
            `output_shape`.

    Example:

    >>> import numpy as np
    >>> resample_image(np.arange(4.0), 1.0, 0.5).tolist()
    [0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0]
    >>> tuple(resample_image(np.zeros((8, 6, 2)), (1.0, 1.0), 2.0).shape)
    (4, 3, 2)
    """
    image = np.asarray(image)
    if not np.issubdtype(image.dtype, np.floating):
        image = image.astype("float32")
    if image.ndim < 1:
        raise ValueError(
            "Expected `image` with at least one axis. Received: image with "
            f"shape {image.shape}"
        )
    spatial_ndim = image.ndim
    if isinstance(voxel_sizes, (tuple, list, np.ndarray)) and (
        len(voxel_sizes) == image.ndim - 1
    ):
        spatial_ndim = image.ndim - 1  # a channel axis last
    sizes, targets, in_shape, out_shape = _check_grids(
        image, spatial_ndim, voxel_sizes, target_voxel_sizes, output_shape
    )
    matrix = np.ones(image.ndim)
    offset = np.zeros(image.ndim)
    changed = False
    for axis, (n, m, v, t) in enumerate(zip(in_shape, out_shape, sizes, targets)):
        if m == n and _same_size(v, t):
            continue
        changed = True
        step = t / v
        sigma = (step - 1) / 2
        if step > 1 + 1e-6 and sigma >= _MIN_SIGMA:
            radius = int(math.ceil(3 * sigma))
            image = ndimage.gaussian_filter1d(
                image, sigma, axis=axis, mode="nearest", radius=radius
            )
        # Output centre j at (j - (m - 1) / 2) * step + (n - 1) / 2 in
        # voxel-centre coordinates.
        matrix[axis] = step
        offset[axis] = (n - 1) / 2 - (m - 1) / 2 * step
    if not changed:
        return image.copy()
    return ndimage.affine_transform(
        image,
        matrix,
        offset=offset,
        output_shape=(*out_shape, *image.shape[spatial_ndim:]),
        order=1,
        mode="nearest",
        prefilter=False,
    )
