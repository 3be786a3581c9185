"""Affine matrices in voxel coordinates, batched, 2D and 3D.

All matrices are built from `keras.ops` (`cos`, `sin`, `stack`, `matmul`) with
a leading batch axis that may be dynamic, and are float32.
"""

import math

import keras
from keras import ops


def _float32(x):
    x = ops.convert_to_tensor(x)
    if keras.backend.standardize_dtype(x.dtype) != "float32":
        x = ops.cast(x, "float32")
    return x


def _matrix(rows):
    """Stack a nested list of `(batch,)` tensors into `(batch, n, m)`."""
    return ops.stack([ops.stack(row, axis=-1) for row in rows], axis=-2)


def _plane_rotation(cos, sin, ndim, first, second):
    """Rotation by `(cos, sin)` in the plane of axes `first` and `second`.

    Rotates axis `first` towards axis `second`: the unit vector along `first`
    maps onto `cos * e_first + sin * e_second`.
    """
    one = ops.ones_like(cos)
    zero = ops.zeros_like(cos)
    rows = [[one if i == j else zero for j in range(ndim)] for i in range(ndim)]
    rows[first][first] = cos
    rows[second][second] = cos
    rows[second][first] = sin
    rows[first][second] = -sin
    return _matrix(rows)


def rotation_matrix(angles):
    """Rotation matrices from angles in degrees.

    Rotations are right-handed (counter-clockwise when the rotation axis points
    at the viewer). In 2D the rotation turns axis 0 towards axis 1. In 3D,
    `angles[:, a]` rotates in the plane of the two axes other than `a`, in
    cyclic order: `angles[:, 0]` turns axis 1 towards axis 2, `angles[:, 1]`
    axis 2 towards axis 0 and `angles[:, 2]` axis 0 towards axis 1. The 3D
    matrix is `R0 @ R1 @ R2` (the axis-2 rotation is applied first), which is
    `scipy.spatial.transform.Rotation.from_euler("XYZ", angles, degrees=True)`.

    Args:
        angles: `(batch, 1)` in 2D or `(batch, 3)` in 3D, in degrees.

    Returns:
        `(batch, ndim, ndim)` float32 orthogonal matrices with determinant 1.
    """
    angles = _float32(angles)
    num_angles = angles.shape[-1]
    if num_angles not in (1, 3):
        raise ValueError(
            "Expected `angles` of shape (batch, 1) (2D) or (batch, 3) (3D). "
            f"Received: angles.shape={tuple(angles.shape)}"
        )
    radians = angles * (math.pi / 180.0)
    cos, sin = ops.cos(radians), ops.sin(radians)
    if num_angles == 1:
        return _plane_rotation(cos[:, 0], sin[:, 0], 2, 0, 1)
    # Rotation "about" axis a, in the plane (a + 1, a + 2) mod 3.
    matrices = [
        _plane_rotation(cos[:, a], sin[:, a], 3, (a + 1) % 3, (a + 2) % 3)
        for a in range(3)
    ]
    return ops.matmul(matrices[0], ops.matmul(matrices[1], matrices[2]))


def _shear_matrix(shear, ndim):
    """`(batch, ndim, ndim)` identity plus `shear` in row-major off-diagonal."""
    one = ops.ones_like(shear[:, 0])
    rows = []
    index = 0
    for i in range(ndim):
        row = []
        for j in range(ndim):
            if i == j:
                row.append(one)
            else:
                row.append(shear[:, index])
                index += 1
        rows.append(row)
    return _matrix(rows)


def affine_matrix(translation, rotation, scaling, shear, center):
    """Homogeneous affine matrices `y = R @ H @ S @ (x - c) + c + t`.

    `S = diag(scaling)`, `H` identity plus the shear terms in its off-diagonal
    entries (row-major order of the off-diagonal entries: in 2D `H[0, 1],
    H[1, 0]`; in 3D `H[0, 1], H[0, 2], H[1, 0], H[1, 2], H[2, 0], H[2, 1]`),
    `R` from `rotation_matrix`. The transform acts on voxel coordinates; `c` is
    usually the volume centre `(shape - 1) / 2`, so rotation, shear and scaling
    are about the centre, and `c` is a fixed point when `t == 0`.

    Args:
        translation: `(batch, ndim)` in voxels.
        rotation: `(batch, 1)` (2D) or `(batch, 3)` (3D) in degrees.
        scaling: `(batch, ndim)` factors (1 is identity).
        shear: `(batch, ndim * (ndim - 1))` (0 is identity).
        center: tuple of `ndim` numbers or `(batch, ndim)` tensor.

    Returns:
        `(batch, ndim + 1, ndim + 1)` float32 tensors; last row `(0, ..., 1)`.
    """
    translation = _float32(translation)
    scaling = _float32(scaling)
    shear = _float32(shear)
    ndim = translation.shape[-1]
    if scaling.shape[-1] != ndim or shear.shape[-1] != ndim * (ndim - 1):
        raise ValueError(
            "Expected `translation` and `scaling` of shape (batch, ndim) and "
            "`shear` of shape (batch, ndim * (ndim - 1)). Received: "
            f"translation.shape={tuple(translation.shape)}, "
            f"scaling.shape={tuple(scaling.shape)}, shear.shape={tuple(shear.shape)}"
        )
    rotation = rotation_matrix(rotation)
    if rotation.shape[-1] != ndim:
        raise ValueError(
            f"Expected `rotation` of shape (batch, {1 if ndim == 2 else 3}) for "
            f"{ndim}D. Received: rotation.shape={tuple(rotation.shape)}"
        )
    # H @ diag(S) scales the columns of H.
    linear = _shear_matrix(shear, ndim) * scaling[:, None, :]
    linear = ops.matmul(rotation, linear)
    center = _float32(center)
    # A @ c, with c of shape (ndim,) or (batch, ndim).
    moved_center = ops.sum(linear * center[..., None, :], axis=-1)
    offset = center + translation - moved_center
    top = ops.concatenate([linear, offset[:, :, None]], axis=2)
    bottom = ops.concatenate(
        [ops.zeros_like(translation), ops.ones_like(translation[:, :1])], axis=1
    )
    return ops.concatenate([top, bottom[:, None, :]], axis=1)


def compose_affine(first, second):
    """Matrix of `x -> first(second(x))`: `first @ second`, homogeneous.

    Args:
        first: `(batch, ndim + 1, ndim + 1)` homogeneous matrices.
        second: `(batch, ndim + 1, ndim + 1)` homogeneous matrices.

    Returns:
        `(batch, ndim + 1, ndim + 1)` float32 tensors.
    """
    return ops.matmul(_float32(first), _float32(second))


def _inverse_small(a):
    """Inverse of `(batch, n, n)` matrices; adjugate formula for n = 2, 3."""
    n = a.shape[-1]
    e = [[a[:, i, j] for j in range(n)] for i in range(n)]
    if n == 2:
        det = e[0][0] * e[1][1] - e[0][1] * e[1][0]
        adjugate = [[e[1][1], -e[0][1]], [-e[1][0], e[0][0]]]
    elif n == 3:
        # cofactor[i][j] of the transposed matrix: the adjugate, row-major.
        def cofactor(i, j):
            r = [k for k in range(3) if k != i]
            c = [k for k in range(3) if k != j]
            minor = e[r[0]][c[0]] * e[r[1]][c[1]] - e[r[0]][c[1]] * e[r[1]][c[0]]
            return minor if (i + j) % 2 == 0 else -minor

        adjugate = [[cofactor(j, i) for j in range(3)] for i in range(3)]
        det = e[0][0] * adjugate[0][0] + e[0][1] * adjugate[1][0]
        det = det + e[0][2] * adjugate[2][0]
    else:
        return ops.inv(a)
    return _matrix(adjugate) / det[:, None, None]


def invert_affine(matrix):
    """Inverse of homogeneous `(batch, ndim + 1, ndim + 1)` matrices.

    Uses the block inverse `[A, b; 0, 1]^-1 = [A^-1, -A^-1 b; 0, 1]`, with the
    closed-form adjugate inverse of `A` in 2D and 3D (`ops.inv` otherwise), so
    the last row stays exactly `(0, ..., 0, 1)`.
    """
    matrix = _float32(matrix)
    ndim = matrix.shape[-1] - 1
    linear = matrix[:, :ndim, :ndim]
    offset = matrix[:, :ndim, ndim]
    inverse = _inverse_small(linear)
    new_offset = -ops.sum(inverse * offset[:, None, :], axis=-1)
    top = ops.concatenate([inverse, new_offset[:, :, None]], axis=2)
    bottom = ops.concatenate(
        [ops.zeros_like(offset), ops.ones_like(offset[:, :1])], axis=1
    )
    return ops.concatenate([top, bottom[:, None, :]], axis=1)
