"""Explicit conversions between our conventions and those of voxelmorph/neurite.

Ours (synthlayers): channels last, `image (batch, *spatial, channels)`,
displacement `(batch, *spatial, ndim)` in voxels, component `d` along array
axis `d` ("ij"), pull-back `output(x) = image(x + u(x))`; affine matrices act
on absolute voxel indices (origin at voxel 0); centring is explicit through
the `center` argument of `affine_matrix`.

Theirs (voxelmorph / neurite 0.3.x, PyTorch): channels first,
`image (batch, channels, *spatial)`, displacement `(batch, ndim, *spatial)` in
voxels, also "ij" (voxelmorph flips to "xy" only inside `spatial_transform`,
just before `torch.nn.functional.grid_sample`; callers never flip), pull-back;
grid normalisation with `align_corners=True` (voxel 0 <-> -1, voxel n-1 <-> +1);
affine matrices with the origin at the volume centre `(n - 1) / 2`.

Only NumPy here; torch is imported lazily by `to_torch` so that importing
this module never requires torch.
"""

import numpy as np


def image_to_channels_first(image):
    """`(batch, *spatial, channels)` -> `(batch, channels, *spatial)`."""
    return np.moveaxis(np.asarray(image), -1, 1)


def image_to_channels_last(image):
    """`(batch, channels, *spatial)` -> `(batch, *spatial, channels)`."""
    return np.moveaxis(np.asarray(image), 1, -1)


# A displacement field converts exactly like an image whose channels are the
# components: the component order stays "ij" on both sides (no flip).
field_to_channels_first = image_to_channels_first
field_to_channels_last = image_to_channels_last


def to_torch(x, dtype="float64"):
    """NumPy -> contiguous CPU torch tensor of `dtype` (`None` keeps it)."""
    import torch

    return torch.from_numpy(np.ascontiguousarray(np.asarray(x, dtype=dtype)))


def from_torch(tensor):
    """torch tensor -> NumPy array."""
    return tensor.detach().cpu().numpy()


def voxel_to_normalized(coordinates, shape):
    """Voxel coordinates `(..., ndim)` -> grid_sample's `[-1, 1]`, corners aligned.

    `align_corners=True`: voxel 0 maps to -1 and voxel `n - 1` to +1, so a
    voxel index `i` becomes `2 i / (n - 1) - 1` (voxelmorph's
    `disp_to_coords`). With `align_corners=False` the same index would be
    `(2 i + 1) / n - 1` (half a voxel and a factor `n / (n - 1)` apart): a
    different convention that we never use.
    """
    shape = np.asarray(shape, "float64")
    return np.asarray(coordinates, "float64") * (2.0 / (shape - 1)) - 1.0


def identity_grid_numpy(shape):
    """`(*shape, ndim)` float64 voxel indices, "ij" order."""
    return np.stack(np.meshgrid(*map(np.arange, shape), indexing="ij"), -1).astype(
        "float64"
    )


def centre_translation(shape):
    """Homogeneous `(ndim + 1, ndim + 1)` translation by the centre `(n - 1) / 2`."""
    ndim = len(shape)
    matrix = np.eye(ndim + 1)
    matrix[:ndim, ndim] = (np.asarray(shape, "float64") - 1) / 2
    return matrix


def centred_to_corner(matrix, shape):
    """A matrix about the volume centre -> the same map on absolute voxel indices.

    voxelmorph's `affine_to_disp(origin_at_center=True)` maps a voxel `x` to
    `A (x - c) + c` with `c = (n - 1) / 2`; in our convention (origin at voxel
    0) that is `C A C^-1` with `C` the translation by `c`.
    """
    matrix = np.asarray(matrix, "float64")
    ndim = matrix.shape[-1] - 1
    if matrix.shape[-2] == ndim:  # compact (ndim, ndim + 1) -> square
        bottom = np.zeros((*matrix.shape[:-2], 1, ndim + 1))
        bottom[..., 0, ndim] = 1
        matrix = np.concatenate([matrix, bottom], -2)
    centre = centre_translation(shape)
    return centre @ matrix @ np.linalg.inv(centre)


def voxelmorph_rotation(angles):
    """Our rotation angles (degrees) -> voxelmorph's `params_to_affine` angles.

    2D: the same angle (both `[[cos, -sin], [sin, cos]]`). 3D: voxelmorph's
    `rx` and `rz` are the transposes of our axis-0 and axis-2 rotations (its
    `ry` equals ours), so our `(a0, a1, a2)` is voxelmorph's `(-a0, a1, -a2)`;
    both compose the axis-2 rotation first (`R0 @ R1 @ R2`).
    """
    angles = np.asarray(angles, "float64")
    if angles.shape[-1] == 1:
        return angles
    return angles * np.array([-1.0, 1.0, -1.0])


def our_shear_from_voxelmorph(shear, scaling):
    """voxelmorph's shear parameters -> ours, for the same scaling.

    voxelmorph builds `R @ Z @ S` (`Z = diag(scale)`, `S` upper triangular
    with `S[0, 1]` in 2D and `S[0, 1], S[0, 2], S[1, 2]` in 3D); we build
    `R @ H @ diag(scale)` with all off-diagonal shear terms. They agree when
    `H = Z S Z^-1`: `H[i, j] = scale[i] / scale[j] * S[i, j]` above the
    diagonal, zeros below. Returned in our row-major off-diagonal order.
    """
    shear = np.atleast_1d(np.asarray(shear, "float64"))
    scaling = np.asarray(scaling, "float64")
    ndim = len(scaling)
    upper = [(0, 1)] if ndim == 2 else [(0, 1), (0, 2), (1, 2)]
    full = np.zeros((ndim, ndim))
    for (i, j), value in zip(upper, shear):
        full[i, j] = scaling[i] / scaling[j] * value
    return np.array([full[i, j] for i in range(ndim) for j in range(ndim) if i != j])
