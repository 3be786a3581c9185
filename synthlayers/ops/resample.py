"""N-D resampling of batched images at arbitrary voxel coordinates.

Our own gather-based sampler (not `keras.ops.image.map_coordinates`, which is
2D-only in spirit and misbehaves on the TensorFlow backend out of bounds).

The batch and spatial axes of the image are flattened to `(batch * voxels,
channels)` and whole rows (all channels at once) are gathered with
`ops.take` at a global index `b * voxels + linear_index`, once per corner of
the interpolation cell (once for nearest, 2^N times for linear).
"""

import keras
import numpy as np
from keras import ops

from synthlayers.validation import FILL_MODES
from synthlayers.validation import INTERPOLATIONS
from synthlayers.validation import check_choice


def _is_zero(value):
    return isinstance(value, (int, float)) and value == 0


def _is_float(dtype):
    return "float" in dtype


def resample(
    image, coordinates, interpolation="linear", fill_mode="constant", fill_value=0
):
    """Sample a batch of images at voxel coordinates.

    Coordinates are in voxel units of `image` along its spatial axes, in array
    axis order: `coordinates[b, ..., d]` is the (fractional) index along
    spatial axis `d` of sample `b`. This is the pull-back convention of
    `scipy.ndimage.map_coordinates`.

    - `interpolation="linear"`: N-linear interpolation over the 2^N
      neighbours. Differentiable in `image` and in `coordinates`. Output is
      floating point (the image's dtype if floating, else float32); the
      arithmetic is done in float32 (float64 for a float64 image), and
      float16/bfloat16 results are cast back at the end.
      With `fill_mode="constant"` the image is extended with `fill_value`
      beyond its edges and interpolation happens there too, exactly like
      SciPy's `mode="grid-constant"`; `fill_mode="nearest"` repeats the edge
      voxel (SciPy's `mode="nearest"`).
    - `interpolation="nearest"`: the value of the closest voxel, index
      `floor(coordinate + 0.5)` (exact .5 ties go up; do not rely on it);
      the output keeps the image's dtype, so integer label maps stay integer
      and never contain a value not in the input (or `fill_value`). With
      `fill_mode="constant"`, `fill_value` is returned wherever the rounded
      index lies outside `[0, size - 1]` along some axis.

    The spatial shapes must be static; the batch size may be dynamic.
    Indices are int32: `batch * prod(input_shape)` must stay below 2^31.

    Args:
        image: tensor of shape `(batch, *input_shape, channels)`.
        coordinates: tensor of shape `(batch, *output_shape, ndim)` or
            `(1, *output_shape, ndim)` (shared by the batch), float.
            `output_shape` may differ from `input_shape`. (An image with
            batch 1 and coordinates with batch `B` also broadcast.)
        interpolation: `"linear"` or `"nearest"`. Defaults to `"linear"`.
        fill_mode: `"constant"` or `"nearest"`. Defaults to `"constant"`.
        fill_value: value outside the image for `fill_mode="constant"`.
            Defaults to `0`.

    Returns:
        Tensor of shape `(batch, *output_shape, channels)`.

    Example:

    >>> import numpy as np
    >>> image = np.arange(4, dtype="float32").reshape(1, 4, 1)
    >>> coords = np.array([[[0.5], [2.25], [-1.0]]], dtype="float32")
    >>> out = resample(image, coords)  # [[[0.5], [2.25], [0.0]]]
    """
    check_choice(interpolation, "interpolation", INTERPOLATIONS)
    check_choice(fill_mode, "fill_mode", FILL_MODES)
    image = ops.convert_to_tensor(image)
    coordinates = ops.convert_to_tensor(coordinates)
    ndim = len(image.shape) - 2
    in_shape = tuple(image.shape[1:-1])
    channels = image.shape[-1]
    out_shape = tuple(coordinates.shape[1:-1])
    if ndim < 1 or coordinates.shape[-1] != ndim:
        raise ValueError(
            "Expected image `(batch, *spatial, channels)` and coordinates "
            "`(batch, *output_shape, ndim)` with ndim = number of spatial axes. "
            f"Received: image.shape={image.shape}, "
            f"coordinates.shape={coordinates.shape}"
        )
    if any(s is None for s in (*in_shape, channels, *out_shape)):
        raise ValueError(
            "Spatial and channel dimensions must be static. "
            f"Received: image.shape={image.shape}, "
            f"coordinates.shape={coordinates.shape}"
        )

    return resample_axes(
        image,
        [coordinates[..., d] for d in range(ndim)],
        interpolation=interpolation,
        fill_mode=fill_mode,
        fill_value=fill_value,
    )


def resample_axes(
    image, axes, interpolation="linear", fill_mode="constant", fill_value=0
):
    """`resample` with the coordinates given per axis (internal fast path).

    `axes[d]` is the `(batch or 1, *output_shape)` float tensor of
    coordinates along spatial axis `d`; the result equals
    `resample(image, ops.stack(axes, -1), ...)` without materialising the
    stacked `(..., ndim)` tensor (nor slicing it back apart). Shapes are not
    validated beyond what the computation needs.
    """
    check_choice(interpolation, "interpolation", INTERPOLATIONS)
    check_choice(fill_mode, "fill_mode", FILL_MODES)
    image = ops.convert_to_tensor(image)
    ndim = len(image.shape) - 2
    in_shape = tuple(image.shape[1:-1])
    channels = image.shape[-1]
    out_shape = tuple(axes[0].shape[1:])
    dtype = keras.backend.standardize_dtype(image.dtype)
    compute_dtype = "float64" if dtype == "float64" else "float32"

    num_in = int(np.prod(in_shape))
    num_out = int(np.prod(out_shape))
    strides = [int(np.prod(in_shape[d + 1 :])) for d in range(ndim)]
    flat = ops.reshape(image, (-1, channels))

    def axis_coordinates(d):
        c = ops.convert_to_tensor(axes[d])
        if keras.backend.standardize_dtype(c.dtype) != compute_dtype:
            c = ops.cast(c, compute_dtype)
        return ops.reshape(c, (-1, num_out))

    # Offset of each sample's rows in `flat`: (batch, 1), or 0 for batch 1.
    if image.shape[0] == 1:
        base = None
    else:
        batch = ops.shape(image)[0]
        base = ops.expand_dims(ops.arange(batch, dtype="int32") * num_in, 1)

    def gather(index):
        if base is not None:
            index = index + base
        return ops.take(flat, index, axis=0)  # (batch, num_out, channels)

    def finish(out):
        return ops.reshape(out, (-1, *out_shape, channels))

    constant = fill_mode == "constant"
    if interpolation == "nearest":
        # Per axis: h = c + 1/2 and the index is floor(h). With
        # fill_mode="constant", a voxel is valid iff 0 <= h < n on every axis;
        # there the truncation cast(h) is floor(h) and in range, and invalid
        # voxels get index 0 by one `where` at the end (their value is
        # replaced by the fill value anyway), so no per-axis clip is needed.
        # Otherwise the index is the truncation of clip(h, 0, n - 1), which
        # is non-negative. The flat int32 index is accumulated axis by axis,
        # so only one axis's temporaries are alive at a time.
        index = None
        valid = None
        for d in range(ndim):
            h = axis_coordinates(d) + 0.5
            if constant:
                ok = ops.logical_and(h >= 0, h < in_shape[d])
                valid = ok if valid is None else ops.logical_and(valid, ok)
                i = ops.cast(h, "int32")
            else:
                i = ops.cast(ops.clip(h, 0, in_shape[d] - 1), "int32")
            del h
            if strides[d] != 1:
                i = i * strides[d]
            index = i if index is None else index + i
            del i
        if constant:
            index = ops.where(valid, index, 0)
        out = gather(index)
        del index
        if constant:
            fill = ops.cast(ops.convert_to_tensor(fill_value), dtype)
            out = ops.where(ops.expand_dims(valid, -1), out, fill)
        return finish(out)

    # Linear: per axis, the two neighbours (index * stride, weight).
    flat = ops.cast(flat, compute_dtype)
    corners = []
    for d in range(ndim):
        c = axis_coordinates(d)
        lower = ops.floor(c)
        upper_weight = c - lower
        weights = [1 - upper_weight, upper_weight]
        indices = [lower, lower + 1]
        axis = []
        for i, w in zip(indices, weights, strict=True):
            if constant:
                ok = ops.logical_and(i >= 0, i <= in_shape[d] - 1)
                w = ops.where(ok, w, ops.zeros_like(w))
            i = ops.cast(ops.clip(i, 0, in_shape[d] - 1), "int32")
            if strides[d] != 1:
                i = i * strides[d]
            axis.append((i, w))
        corners.append(axis)

    # Combine axis by axis (4 + 8 products in 3D rather than 8 * 2).
    combined = corners[0]
    for axis in corners[1:]:
        combined = [(i + j, w * v) for i, w in combined for j, v in axis]

    out = None
    total_weight = None
    for index, weight in combined:
        term = gather(index) * ops.expand_dims(weight, -1)
        out = term if out is None else out + term
        if constant and not _is_zero(fill_value):
            total_weight = weight if total_weight is None else total_weight + weight
    if total_weight is not None:
        fill = ops.cast(ops.convert_to_tensor(fill_value), compute_dtype)
        out = out + fill * ops.expand_dims(1 - total_weight, -1)
    if _is_float(dtype) and dtype != compute_dtype:
        out = ops.cast(out, dtype)
    return finish(out)
