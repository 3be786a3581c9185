"""Coordinate grids and sampling-coordinate maps (pull-back convention)."""

import numpy as np
from keras import ops


def _static_shape(shape, name="shape"):
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        shape = None
    if not shape or any(s < 1 for s in shape):
        raise ValueError(
            f"Expected `{name}` to be a non-empty tuple of positive ints. "
            f"Received: {name}={shape}"
        )
    return shape


def identity_grid(shape, dtype="float32"):
    """Voxel coordinates of a grid, shape `(*shape, ndim)`, in array axis order.

    `identity_grid(shape)[i, j, k] == (i, j, k)`. Built from static shapes
    with NumPy (a constant in the graph).

    Args:
        shape: tuple of ints, the spatial shape.
        dtype: dtype of the result. Defaults to `"float32"`.

    Returns:
        Tensor of shape `(*shape, len(shape))`.

    Example:

    >>> grid = identity_grid((2, 3))  # grid[1, 2] == [1.0, 2.0]
    """
    return ops.convert_to_tensor(_numpy_grid(_static_shape(shape)).astype(dtype))


def _numpy_grid(shape):
    return np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1)


def centered_offset(input_shape, output_shape):
    """Integer offset placing an output grid at the centre of an input grid.

    Returns a tuple of ints `floor((input_shape - output_shape) / 2)` per axis
    (negative when the output is larger: padding).

    Example:

    >>> centered_offset((10, 9), (6, 12))
    (2, -2)
    """
    input_shape = _static_shape(input_shape, "input_shape")
    output_shape = _static_shape(output_shape, "output_shape")
    if len(input_shape) != len(output_shape):
        raise ValueError(
            "Expected shapes of the same length. Received: "
            f"input_shape={input_shape}, output_shape={output_shape}"
        )
    return tuple((i - o) // 2 for i, o in zip(input_shape, output_shape, strict=True))


def _axis_shape(ndim, axis, size):
    """Shape `(1, .., size, .., 1)` putting `size` on spatial axis `axis`."""
    shape = [1] * ndim
    shape[axis] = size
    return tuple(shape)


def sampling_coordinates(
    output_shape, matrix=None, displacement=None, offset=None, batch_size=None
):
    """Input-space coordinates for every voxel of an output grid.

    For output voxel `x` (an index into `output_shape`) returns
    `c(x) = A @ (x + offset + u(x))` in homogeneous coordinates, where
    `offset` places the output grid inside the input grid (crop when
    positive, pad when negative), `u` is a displacement field defined on the
    output grid, in input voxel units, and `A` an affine matrix acting on
    input voxel coordinates (pull-back: it maps where an output voxel comes
    from). Affine and deformation are therefore composed into one map, and
    the input is resampled once, directly onto the output grid.

    Only what is needed is materialised: without a displacement the affine
    part is a sum of per-axis broadcast terms (no full grid, no matmul);
    with a displacement, one batched matmul of the displacement plus those
    terms.

    With `c = sampling_coordinates(out_shape, matrix=M, offset=o)`,
    `resample(image, c)` equals SciPy's
    `affine_transform(image, M[:n, :n], offset=M[:n, n] + M[:n, :n] @ o,
    output_shape=out_shape)` (per sample and channel).

    Args:
        output_shape: tuple of ints, the spatial output shape (static).
        matrix: optional `(batch, ndim + 1, ndim + 1)` or `(batch, ndim,
            ndim + 1)` float tensor (batch 1 broadcasts). Defaults to `None`
            (identity).
        displacement: optional `(batch, *output_shape, ndim)` float tensor.
            Defaults to `None` (zero).
        offset: optional tuple of `ndim` numbers (shared) or `(batch, ndim)`
            tensor (per sample). Defaults to zeros.
        batch_size: only used when neither `matrix`, `displacement` nor a
            batched `offset` is given; defaults to 1.

    Returns:
        float32 tensor of shape `(batch, *output_shape, ndim)`.

    Example:

    >>> import numpy as np
    >>> matrix = np.eye(3, dtype="float32")[None]
    >>> matrix[0, :2, 2] = (1.0, -2.0)  # translation
    >>> coords = sampling_coordinates((4, 5), matrix=matrix)
    >>> # coords[0, i, j] == (i + 1, j - 2)
    """
    output_shape = _static_shape(output_shape, "output_shape")
    ndim = len(output_shape)

    static_offset, tensor_offset = _parse_offset(offset, ndim)

    if displacement is not None:
        displacement = ops.cast(displacement, "float32")
        if tuple(displacement.shape[1:]) != (*output_shape, ndim):
            raise ValueError(
                "Expected `displacement` of shape (batch, *output_shape, ndim) = "
                f"(batch, *{output_shape}, {ndim}). "
                f"Received: displacement.shape={displacement.shape}"
            )

    if matrix is None:
        grid = _numpy_grid(output_shape) + static_offset
        grid = ops.convert_to_tensor(grid[None].astype("float32"))
        if tensor_offset is not None:
            grid = grid + ops.reshape(tensor_offset, (-1, *[1] * ndim, ndim))
        if displacement is not None:
            return grid + displacement
        if tensor_offset is not None:
            return grid
        if batch_size is None or (isinstance(batch_size, int) and batch_size == 1):
            return grid
        return ops.broadcast_to(grid, (batch_size, *output_shape, ndim))

    linear, translation = _affine_parts(matrix, ndim, static_offset, tensor_offset)
    coordinates = ops.stack(_affine_columns(output_shape, linear, translation), -1)
    if displacement is not None:
        flat = ops.reshape(displacement, (-1, int(np.prod(output_shape)), ndim))
        moved = ops.matmul(flat, ops.transpose(linear, (0, 2, 1)))
        coordinates = coordinates + ops.reshape(moved, (-1, *output_shape, ndim))
    return coordinates


def _parse_offset(offset, ndim):
    """Offset as static numpy `(ndim,)` (zeros if None) or tensor `(b, ndim)`."""
    static_offset = np.zeros(ndim, "float32")
    tensor_offset = None
    if offset is not None:
        if isinstance(offset, (tuple, list, np.ndarray)) and np.ndim(offset) == 1:
            static_offset = np.asarray(offset, "float32")
        else:
            tensor_offset = ops.reshape(ops.cast(offset, "float32"), (-1, ndim))
        if (tensor_offset is None and static_offset.shape != (ndim,)) or (
            tensor_offset is not None and tensor_offset.shape[-1] != ndim
        ):
            raise ValueError(
                f"Expected `offset` with {ndim} entries per sample. "
                f"Received: offset={offset}"
            )
    return static_offset, tensor_offset


def _affine_parts(matrix, ndim, static_offset, tensor_offset):
    """`(linear, translation)` of `matrix` with the offset folded in."""
    matrix = ops.cast(matrix, "float32")
    if tuple(matrix.shape[1:]) not in ((ndim + 1, ndim + 1), (ndim, ndim + 1)):
        raise ValueError(
            f"Expected `matrix` of shape (batch, {ndim + 1}, {ndim + 1}) or "
            f"(batch, {ndim}, {ndim + 1}). Received: matrix.shape={matrix.shape}"
        )
    linear = matrix[:, :ndim, :ndim]
    # Fold the offset into the translation: A (x + o) + t = A x + (A o + t).
    translation = matrix[:, :ndim, ndim]
    if np.any(static_offset):
        translation = translation + ops.sum(
            linear * ops.convert_to_tensor(static_offset), axis=-1
        )
    if tensor_offset is not None:
        translation = translation + ops.sum(
            linear * ops.expand_dims(tensor_offset, 1), axis=-1
        )
    return linear, translation


def _affine_columns(output_shape, linear, translation):
    """Per output axis i, `t_i + sum_j A_ij x_j`, each `(batch, *output_shape)`.

    A sum of per-axis broadcast terms: no full grid, no matmul.
    """
    ndim = len(output_shape)
    axes = [
        ops.convert_to_tensor(
            np.arange(s, dtype="float32").reshape(_axis_shape(ndim, j, s))
        )
        for j, s in enumerate(output_shape)
    ]
    scalar_shape = (-1, *[1] * ndim)
    columns = []
    for i in range(ndim):
        out = ops.reshape(translation[:, i], scalar_shape)
        for j in range(ndim):
            out = out + ops.reshape(linear[:, i, j], scalar_shape) * axes[j]
        columns.append(out)
    return columns


def coordinate_axes(
    output_shape, matrix=None, control_displacement=None, offset=None, batch_size=1
):
    """Per-axis sampling coordinates, with a displacement given on a coarse grid.

    Internal fast path of the spatial layers: returns the list of `ndim`
    tensors `c[..., d]`, each `(batch, *output_shape)`, of
    `c(x) = A @ (x + offset + u(x))` (as `sampling_coordinates`), where the
    displacement `u` is the linear (corners aligned) resize of
    `control_displacement`, a `(batch, *grid, ndim)` field in voxels of the
    output grid (not rescaled: already in output voxels). For `resample_axes`.

    The whole map is linear in `u` and in `x`, and linear resizing
    reproduces affine functions exactly, so `A @ (x + offset + u) + t` is
    evaluated on the small grid and only its `ndim` components are resized
    to the output grid: no full-size grid, matmul, stack or slice. The
    result equals `sampling_coordinates(output_shape, matrix,
    resize(control_displacement, output_shape), offset)` up to float32
    rounding.

    Args:
        output_shape: tuple of ints, the spatial output shape (static).
        matrix: optional `(batch, ndim + 1, ndim + 1)` or
            `(batch, ndim, ndim + 1)` float tensor. Defaults to `None`.
        control_displacement: optional `(batch, *grid, ndim)` float tensor.
            Defaults to `None` (zero).
        offset: as in `sampling_coordinates`. Defaults to zeros.
        batch_size: batch size when nothing else is batched. Defaults to 1.

    Returns:
        List of `ndim` float32 tensors of shape `(batch, *output_shape)`.
    """
    from synthlayers.ops.resize import resize_components

    output_shape = _static_shape(output_shape, "output_shape")
    ndim = len(output_shape)
    static_offset, tensor_offset = _parse_offset(offset, ndim)
    if matrix is not None:
        linear, translation = _affine_parts(matrix, ndim, static_offset, tensor_offset)
    if control_displacement is None:
        if matrix is not None:
            columns = _affine_columns(output_shape, linear, translation)
        else:
            grid = sampling_coordinates(
                output_shape, offset=offset, batch_size=batch_size
            )
            columns = [grid[..., d] for d in range(ndim)]
        full = (ops.shape(columns[0])[0], *output_shape)
        return [
            c if tuple(c.shape[1:]) == output_shape else ops.broadcast_to(c, full)
            for c in columns
        ]

    field = ops.cast(control_displacement, "float32")
    grid_shape = _static_shape(field.shape[1:-1], "control_displacement.shape")
    if len(grid_shape) != ndim or field.shape[-1] != ndim:
        raise ValueError(
            "Expected `control_displacement` of shape (batch, *grid, ndim) with "
            f"ndim={ndim}. Received: control_displacement.shape={field.shape}"
        )
    # Output voxel positions of the grid nodes (corners aligned), + offset.
    positions = [
        np.arange(g) * ((n - 1) / (g - 1) if g > 1 else 0.0)
        for g, n in zip(grid_shape, output_shape, strict=True)
    ]
    nodes = np.stack(np.meshgrid(*positions, indexing="ij"), -1)
    if matrix is None:
        nodes = nodes + static_offset
    field = field + ops.convert_to_tensor(nodes[None].astype("float32"))
    if matrix is None:
        if tensor_offset is not None:
            field = field + ops.reshape(tensor_offset, (-1, *[1] * ndim, ndim))
    else:
        flat = ops.reshape(field, (-1, int(np.prod(grid_shape)), ndim))
        flat = ops.matmul(flat, ops.transpose(linear, (0, 2, 1)))
        flat = flat + ops.expand_dims(translation, 1)
        field = ops.reshape(flat, (-1, *grid_shape, ndim))
    return resize_components(field, output_shape)
