"""Separable N-D Gaussian filtering with per-sample, per-axis sigma.

Each 1-D filter is a dense `(batch, length, length)` matrix built in the graph
from the sigma tensor and applied with `apply_along_axis`; this keeps sigma a
per-sample tensor (no static kernel size) and costs one matrix product per
axis, whatever the kernel radius.
"""

import keras
import numpy as np
from keras import ops

from synthlayers.ops.resize import apply_along_axis

_MODES = ("nearest", "constant")


def _half_width(length):
    """Static largest kernel offset represented: `8 * length` voxels."""
    return 8 * length


def gaussian_kernel_matrix(sigma, length, truncate=4.0, mode="nearest"):
    """Per-sample `(batch, length, length)` matrices of 1-D Gaussian filtering.

    Row `o` holds the weights of output `o` over the inputs. The kernel of
    each sample is `exp(-d^2 / (2 sigma^2))` over offsets `|d| <= radius`,
    `radius = floor(truncate * sigma + 0.5)` (SciPy's rule), normalised on its
    own to sum to one (not over the batch, as SynthSeg did). The boundary is
    handled as `mode`: `"nearest"` (edge repeated: every tap beyond an edge
    lands on the edge voxel) or `"constant"` (zeros: taps beyond the edges
    are dropped, rows near the edges sum to less than one). This equals
    `scipy.ndimage.gaussian_filter1d(..., mode=mode)` (up to float32
    rounding) for radii up to `8 * length`; beyond, the kernel is truncated
    at `8 * length` voxels instead (and still sums to one). `sigma == 0`
    gives the identity exactly.

    Implementation: the normalised 1-D kernel is evaluated on the static
    offset range `[-8 * length, 8 * length]`; interior columns are gathered
    from it with a static index `i - o`, and in `"nearest"` mode the edge
    columns hold its cumulative sums (the whole tail beyond each edge, folded
    onto the edge voxel), so the cost is linear in the offset range.

    Args:
        sigma: `(batch,)` float tensor in voxels, >= 0 (negative values act
            as 0).
        length: int, the axis length (static).
        truncate: float, the kernel radius in standard deviations. Defaults
            to `4.0`.
        mode: `"nearest"` or `"constant"`. Defaults to `"nearest"`.

    Returns:
        `(batch, length, length)` float32 tensor.
    """
    if mode not in _MODES:
        raise ValueError(f"Expected `mode` in {_MODES}. Received: mode={mode!r}")
    length = int(length)
    if length < 1:
        raise ValueError(f"Expected a positive `length`. Received: length={length}")
    sigma = ops.convert_to_tensor(sigma)
    if keras.backend.standardize_dtype(sigma.dtype) != "float32":
        sigma = ops.cast(sigma, "float32")
    # Negative sigma would empty the kernel; treat it as zero.
    sigma = ops.maximum(ops.reshape(sigma, (-1, 1)), 0.0)
    radius = ops.floor(truncate * sigma + 0.5)
    # Guard the division; sigma == 0 has radius 0, so only d == 0 survives.
    safe = ops.where(ops.greater(sigma, 0.0), sigma, ops.ones_like(sigma))
    half = _half_width(length)
    offsets = np.arange(-half, half + 1).astype("float32")[None, :]
    kernel = ops.exp(ops.multiply(-0.5 / ops.square(safe), np.square(offsets)))
    inside = ops.less_equal(ops.convert_to_tensor(np.abs(offsets)), radius)
    kernel = ops.where(inside, kernel, ops.zeros_like(kernel))
    kernel = kernel / ops.sum(kernel, axis=-1, keepdims=True)  # (batch, 2h + 1)

    rows = np.arange(length)[:, None]
    columns = np.arange(length)[None, :]
    matrix = ops.take(kernel, (columns - rows + half).astype("int32"), axis=1)
    if mode == "nearest":
        if length == 1:
            return ops.ones_like(matrix)
        cumulative = ops.cumsum(kernel, axis=-1)
        # Weight of input 0 for output o: all offsets <= -o; of the last
        # input: all offsets >= length - 1 - o, by symmetry <= o - length + 1.
        first = ops.take(cumulative, (half - rows).astype("int32"), axis=1)
        last = ops.take(cumulative, (half + rows - length + 1).astype("int32"), axis=1)
        matrix = ops.where(columns == 0, first, matrix)
        matrix = ops.where(columns == length - 1, last, matrix)
    return matrix


def gaussian_blur(image, sigma, truncate=4.0, mode="nearest"):
    """Blur `(batch, *spatial, channels)` with Gaussians of `(batch, ndim)` sigma.

    Matches `scipy.ndimage.gaussian_filter(image[b, ..., c], sigma[b],
    truncate=truncate, mode=mode)` for every sample and channel: one
    `gaussian_kernel_matrix` per axis, applied per sample with
    `apply_along_axis`. Computes in float32 and returns the float dtype of
    `image`.

    Args:
        image: `(batch, *spatial, channels)` tensor, static spatial shape.
        sigma: `(batch, ndim)` (or `(batch, 1)`, shared by the axes) float
            tensor in voxels, >= 0.
        truncate: float, the kernel radius in standard deviations. Defaults
            to `4.0`.
        mode: `"nearest"` or `"constant"`. Defaults to `"nearest"`.

    Returns:
        Tensor of the shape of `image`.
    """
    x = ops.convert_to_tensor(image)
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype != "float32":
        x = ops.cast(x, "float32")
    spatial = tuple(x.shape[1:-1])
    if None in spatial:
        raise ValueError(
            "Expected an `image` with static spatial shape. "
            f"Received: image.shape={tuple(x.shape)}"
        )
    sigma = ops.convert_to_tensor(sigma)
    if sigma.shape[-1] not in (1, len(spatial)) or len(sigma.shape) != 2:
        raise ValueError(
            f"Expected `sigma` of shape (batch, {len(spatial)}) or (batch, 1). "
            f"Received: sigma.shape={tuple(sigma.shape)}"
        )
    for axis, length in enumerate(spatial):
        column = sigma[:, axis if sigma.shape[-1] > 1 else 0]
        matrix = gaussian_kernel_matrix(column, length, truncate, mode)
        x = apply_along_axis(x, matrix, axis)
    if dtype != "float32":
        x = ops.cast(x, dtype if "float" in dtype else "float32")
    return x
