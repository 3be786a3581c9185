"""Jacobian determinant of displacement fields (folding statistics)."""

import keras
from keras import ops


def _gradient(field, axis):
    """`numpy.gradient` of `field` along array axis `axis` (unit spacing)."""
    size = field.shape[axis]

    def part(start, stop):
        index = [slice(None)] * len(field.shape)
        index[axis] = slice(start, stop)
        return field[tuple(index)]

    if size < 2:
        return ops.zeros_like(field)
    first = part(1, 2) - part(0, 1)
    last = part(size - 1, size) - part(size - 2, size - 1)
    if size == 2:
        return ops.concatenate([first, last], axis=axis)
    interior = (part(2, size) - part(0, size - 2)) * 0.5
    return ops.concatenate([first, interior, last], axis=axis)


def jacobian_determinant(displacement):
    """Determinant of the Jacobian of `x -> x + u(x)` at every voxel.

    Derivatives by central differences inside and one-sided differences at the
    edges, like `numpy.gradient` (an axis of size 1 has zero derivative).
    Values <= 0 mark folding. Computed in float32 (float64 for float64
    input); float16/bfloat16 results are cast back to the input dtype.

    Args:
        displacement: `(batch, *shape, ndim)` float tensor, voxel units.

    Returns:
        `(batch, *shape)` float tensor.

    Example:

    >>> import numpy as np
    >>> det = jacobian_determinant(np.zeros((1, 4, 4, 2), "float32"))  # ones
    """
    displacement = ops.convert_to_tensor(displacement)
    dtype = keras.backend.standardize_dtype(displacement.dtype)
    compute_dtype = "float64" if dtype == "float64" else "float32"
    u = ops.cast(displacement, compute_dtype)
    ndim = len(u.shape) - 2
    if ndim < 1 or u.shape[-1] != ndim:
        raise ValueError(
            "Expected `displacement` of shape (batch, *shape, ndim) with ndim = "
            f"len(shape). Received: displacement.shape={displacement.shape}"
        )
    # j[i][k] = d(x_i + u_i) / dx_k.
    gradients = [_gradient(u, axis=k + 1) for k in range(ndim)]
    j = [
        [gradients[k][..., i] + (1.0 if i == k else 0.0) for k in range(ndim)]
        for i in range(ndim)
    ]
    if ndim == 1:
        det = j[0][0]
    elif ndim == 2:
        det = j[0][0] * j[1][1] - j[0][1] * j[1][0]
    elif ndim == 3:
        det = (
            j[0][0] * (j[1][1] * j[2][2] - j[1][2] * j[2][1])
            - j[0][1] * (j[1][0] * j[2][2] - j[1][2] * j[2][0])
            + j[0][2] * (j[1][0] * j[2][1] - j[1][1] * j[2][0])
        )
    else:
        matrix = ops.stack([ops.stack(row, axis=-1) for row in j], axis=-2)
        det = ops.det(matrix)
    if dtype in ("float16", "bfloat16"):
        det = ops.cast(det, dtype)
    return det


def folding_fraction(displacement):
    """Fraction of voxels with a non-positive Jacobian determinant, per sample.

    Args:
        displacement: `(batch, *shape, ndim)` float tensor, voxel units.

    Returns:
        `(batch,)` float32 tensor in `[0, 1]`: 0 for a diffeomorphism.
    """
    det = ops.cast(jacobian_determinant(displacement), "float32")
    folded = ops.cast(det <= 0, "float32")
    return ops.mean(ops.reshape(folded, (ops.shape(folded)[0], -1)), axis=1)
