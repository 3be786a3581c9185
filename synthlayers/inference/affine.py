"""Affine pre-alignment: image moments, and a mutual-information fit (dipy).

Convention (the one of `synthlayers.layers.SpatialTransformer` and
`synthlayers.ops.affine`): an affine is a **pull-back in voxel
coordinates**, a `(ndim + 1, ndim + 1)` matrix `M` that takes a voxel
index `x` of the fixed image (origin at voxel 0, array axis order) to the
voxel index `M @ x` of the moving image where its value is read:
`moved(x) = moving(M x)`. With both images' voxel-to-world affines `F`
(fixed) and `G` (moving), the same map in world coordinates (RAS mm) is
`W = G @ M @ inv(F)`, a pull-back from fixed world points to moving world
points: this is what dipy's `AffineMap.affine` holds (`world_affine` and
`voxel_affine` convert between the two).

- `moments_affine`: centres of mass and principal axes of the intensity
  distributions (second moments), no dependency; the sign of each axis is
  the one that keeps the rotation closest to the identity, as brains in
  RAS+ are already roughly aligned.
- `mutual_information_affine`: Mattes mutual information, multi-resolution,
  translation then rigid then affine, through dipy's `AffineRegistration`
  (optional: `pip install dipy`), started from `moments_affine` or a given
  matrix.
- `apply_affine` warps an image (linear) or a label map (nearest neighbour)
  with such a matrix; `affine_to_displacement` gives the same map as a
  displacement field `d(x) = M x - x` on the fixed grid.
"""

import itertools

import numpy as np
from scipy import ndimage

from synthlayers.validation import check_choice

TRANSFORMS = ("translation", "rigid", "affine")
"""The transforms of `moments_affine` and `mutual_information_affine`."""


def _check_image(image, name, ndim=None):
    image = np.asarray(image, dtype="float64")
    if image.ndim not in (2, 3) or (ndim is not None and image.ndim != ndim):
        expected = "2D or 3D" if ndim is None else f"{ndim}D"
        raise ValueError(
            f"Expected `{name}` to be a {expected} array (spatial axes only). "
            f"Received: {name}.shape={image.shape}"
        )
    if not np.all(np.isfinite(image)):
        raise ValueError(
            f"Expected `{name}` to hold finite values. Received: {name} with "
            "NaN or infinite values"
        )
    return image


def _check_matrix(matrix, ndim, name="matrix"):
    matrix = np.asarray(matrix, dtype="float64")
    if matrix.shape == (ndim, ndim + 1):
        matrix = np.vstack([matrix, np.eye(ndim + 1)[-1:]])
    if (
        matrix.shape != (ndim + 1, ndim + 1)
        or not np.all(np.isfinite(matrix))
        or abs(np.linalg.det(matrix[:ndim, :ndim])) < 1e-12
    ):
        raise ValueError(
            f"Expected `{name}` to be a finite, invertible ({ndim + 1}, "
            f"{ndim + 1}) or ({ndim}, {ndim + 1}) matrix. Received: "
            f"{name}={np.asarray(matrix).tolist()}"
        )
    return matrix


def _grid_affine(affine, ndim, name):
    if affine is None:
        return np.eye(ndim + 1)
    return _check_matrix(affine, ndim, name)


def world_affine(matrix, moving_affine, fixed_affine):
    """A voxel pull-back matrix as a world (RAS mm) pull-back: `G M inv(F)`.

    Args:
        matrix: `(ndim + 1, ndim + 1)` voxel pull-back, fixed voxel ->
            moving voxel.
        moving_affine: the moving image's voxel-to-world matrix `G`.
        fixed_affine: the fixed image's voxel-to-world matrix `F`.

    Returns:
        The `(ndim + 1, ndim + 1)` world pull-back (fixed world point ->
        moving world point), as dipy's `AffineMap.affine`.
    """
    matrix = _check_matrix(matrix, np.shape(matrix)[-1] - 1)
    ndim = matrix.shape[0] - 1
    moving = _grid_affine(moving_affine, ndim, "moving_affine")
    fixed = _grid_affine(fixed_affine, ndim, "fixed_affine")
    return moving @ matrix @ np.linalg.inv(fixed)


def voxel_affine(world, moving_affine, fixed_affine):
    """A world pull-back (dipy's `AffineMap.affine`) in voxels: `inv(G) W F`.

    Args:
        world: `(ndim + 1, ndim + 1)` world pull-back, fixed world point ->
            moving world point.
        moving_affine: the moving image's voxel-to-world matrix `G`.
        fixed_affine: the fixed image's voxel-to-world matrix `F`.

    Returns:
        The `(ndim + 1, ndim + 1)` voxel pull-back (fixed voxel -> moving
        voxel).
    """
    world = _check_matrix(world, np.shape(world)[-1] - 1, "world")
    ndim = world.shape[0] - 1
    moving = _grid_affine(moving_affine, ndim, "moving_affine")
    fixed = _grid_affine(fixed_affine, ndim, "fixed_affine")
    return np.linalg.inv(moving) @ world @ fixed


def _moments(image):
    """Centre of mass (voxels) and covariance of the intensity distribution."""
    weights = np.clip(image, 0, None)
    total = weights.sum()
    if total <= 0:
        raise ValueError(
            "Expected an image with positive intensities to compute its "
            "moments. Received: an image with no positive value"
        )
    grids = np.meshgrid(
        *[np.arange(n, dtype="float64") for n in image.shape], indexing="ij"
    )
    points = np.stack([g.ravel() for g in grids], axis=1)
    w = weights.ravel() / total
    centre = w @ points
    centred = points - centre
    covariance = (centred * w[:, None]).T @ centred
    return centre, covariance


def _world_moments(image, affine):
    """`_moments` in the world coordinates of `affine`."""
    ndim = image.ndim
    centre, covariance = _moments(image)
    linear = affine[:ndim, :ndim]
    return linear @ centre + affine[:ndim, ndim], linear @ covariance @ linear.T


def _principal_axes(covariance):
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1]
    return np.clip(values[order], 1e-12, None), vectors[:, order]


def moments_affine(
    moving, fixed, transform="affine", moving_affine=None, fixed_affine=None
):
    """Align centres of mass and principal axes; a voxel pull-back matrix.

    The intensities (negative values clipped to 0) are taken as mass
    distributions. `"translation"` moves the fixed centre of mass onto the
    moving one; `"rigid"` also turns the fixed principal axes onto the
    moving ones; `"affine"` also scales each axis by the ratio of the
    standard deviations, so the second moments match exactly
    (`M C_f M^T = C_m` for the linear part). Principal axes have no sign:
    among the proper rotations (determinant +1) the one closest to the
    identity is taken. Axes with (nearly) equal moments have no defined
    direction either: use `"translation"` then, or refine with
    `mutual_information_affine`. The moments are taken in world
    coordinates (`moving_affine`, `fixed_affine`), so grids of different
    orientations and voxel sizes are matched correctly.

    Args:
        moving: 2D or 3D array.
        fixed: array with the same number of dimensions (any shape).
        transform: `"translation"`, `"rigid"` or `"affine"`. Defaults to
            `"affine"`.
        moving_affine: voxel-to-world matrix of `moving`, or None (voxels
            are the world units). Defaults to None.
        fixed_affine: voxel-to-world matrix of `fixed`, or None. Defaults to
            None.

    Returns:
        `(ndim + 1, ndim + 1)` float64 matrix `M`: `moved(x) = moving(M x)`
        in voxel indices (see the module docstring).

    Raises:
        ValueError: for arrays that are not 2D/3D with the same rank, an
            image without positive values, or an unknown `transform`.

    Example:

    >>> import numpy as np
    >>> fixed = np.zeros((20, 20)); fixed[5:10, 4:12] = 1
    >>> moving = np.roll(fixed, (3, -2), axis=(0, 1))
    >>> np.round(moments_affine(moving, fixed, "translation")[:2, 2], 6)
    array([ 3., -2.])
    """
    moving = _check_image(moving, "moving")
    fixed = _check_image(fixed, "fixed", moving.ndim)
    transform = check_choice(transform, "transform", TRANSFORMS)
    ndim = moving.ndim
    moving_affine = _grid_affine(moving_affine, ndim, "moving_affine")
    fixed_affine = _grid_affine(fixed_affine, ndim, "fixed_affine")
    centre_moving, covariance_moving = _world_moments(moving, moving_affine)
    centre_fixed, covariance_fixed = _world_moments(fixed, fixed_affine)
    linear = np.eye(ndim)
    if transform != "translation":
        values_moving, axes_moving = _principal_axes(covariance_moving)
        values_fixed, axes_fixed = _principal_axes(covariance_fixed)
        best = None
        for signs in itertools.product((1.0, -1.0), repeat=ndim):
            rotation = axes_moving @ np.diag(signs) @ axes_fixed.T
            if np.linalg.det(rotation) < 0:
                continue
            score = np.trace(rotation)
            if best is None or score > best[0]:
                best = (score, signs)
        signs = np.diag(best[1])
        if transform == "rigid":
            linear = axes_moving @ signs @ axes_fixed.T
        else:
            scales = np.diag(np.sqrt(values_moving / values_fixed))
            linear = axes_moving @ signs @ scales @ axes_fixed.T
    world = np.eye(ndim + 1)
    world[:ndim, :ndim] = linear
    world[:ndim, ndim] = centre_moving - linear @ centre_fixed
    return voxel_affine(world, moving_affine, fixed_affine)


def _dipy_transform(name, ndim):
    from dipy.align import transforms

    classes = {
        "translation": "TranslationTransform",
        "rigid": "RigidTransform",
        "affine": "AffineTransform",
    }
    return getattr(transforms, f"{classes[name]}{ndim}D")()


def mutual_information_affine(
    moving,
    fixed,
    moving_affine=None,
    fixed_affine=None,
    transform="affine",
    initial="moments",
    num_bins=32,
    level_iters=(200, 100, 50),
    sigmas=(2.0, 1.0, 0.0),
    factors=(4, 2, 1),
    sampling_proportion=None,
    seed=None,
):
    """Fit an affine by maximising Mattes mutual information (dipy).

    dipy's `AffineRegistration` (Mattes MI, L-BFGS-B, Gaussian pyramid),
    run in stages: translation, then rigid, then affine (up to
    `transform`), each started from the previous result. dipy works in
    world coordinates (`moving_affine`, `fixed_affine`: voxel-to-world
    matrices, identity when None); the result is converted back to the
    voxel pull-back convention of this module with `voxel_affine`.
    Requires `pip install dipy`.

    Args:
        moving: 2D or 3D array.
        fixed: array with the same number of dimensions.
        moving_affine: voxel-to-world matrix of `moving`, or None (voxels
            are the world units). Defaults to None.
        fixed_affine: voxel-to-world matrix of `fixed`, or None. Defaults to
            None.
        transform: the last stage: `"translation"`, `"rigid"` or
            `"affine"`. Defaults to `"affine"`.
        initial: `"moments"` (`moments_affine(..., "translation")`: world
            centres of mass), `"identity"`, or a voxel pull-back matrix. Defaults to
            `"moments"`.
        num_bins: histogram bins of the MI metric. Defaults to `32`.
        level_iters: iterations per pyramid level, coarse to fine. Defaults
            to `(200, 100, 50)`.
        sigmas: Gaussian smoothing per level (voxels). Defaults to
            `(2.0, 1.0, 0.0)`.
        factors: downsampling factor per level. Defaults to `(4, 2, 1)`.
        sampling_proportion: fraction of voxels sampled by the metric, or
            None for all (deterministic). Defaults to None.
        seed: NumPy seed set before dipy samples (only with
            `sampling_proportion`). Defaults to None.

    Returns:
        `(ndim + 1, ndim + 1)` float64 voxel pull-back matrix (fixed voxel
        -> moving voxel).

    Raises:
        ValueError: for bad arrays, matrices or `transform`/`initial`.
        ImportError: when dipy is not installed.
    """
    moving = _check_image(moving, "moving")
    fixed = _check_image(fixed, "fixed", moving.ndim)
    ndim = moving.ndim
    transform = check_choice(transform, "transform", TRANSFORMS)
    moving_affine = _grid_affine(moving_affine, ndim, "moving_affine")
    fixed_affine = _grid_affine(fixed_affine, ndim, "fixed_affine")
    if isinstance(initial, str):
        initial = check_choice(initial, "initial", ("moments", "identity"))
        if initial == "moments":
            start = moments_affine(
                moving, fixed, "translation", moving_affine, fixed_affine
            )
        else:
            start = np.eye(ndim + 1)
    else:
        start = _check_matrix(initial, ndim, "initial")
    if not (len(level_iters) == len(sigmas) == len(factors)):
        raise ValueError(
            "Expected `level_iters`, `sigmas` and `factors` of the same length. "
            f"Received: level_iters={level_iters!r}, sigmas={sigmas!r}, "
            f"factors={factors!r}"
        )
    try:
        from dipy.align.imaffine import AffineRegistration
        from dipy.align.imaffine import MutualInformationMetric
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "mutual_information_affine needs dipy: `pip install dipy` (or "
            "`pip install synthlayers[registration]`)."
        ) from error
    if seed is not None:
        np.random.seed(seed)
    metric = MutualInformationMetric(
        nbins=int(num_bins), sampling_proportion=sampling_proportion
    )
    registration = AffineRegistration(
        metric=metric,
        level_iters=[int(i) for i in level_iters],
        sigmas=[float(s) for s in sigmas],
        factors=[int(f) for f in factors],
        verbosity=0,
    )
    world = world_affine(start, moving_affine, fixed_affine)
    for stage in TRANSFORMS[: TRANSFORMS.index(transform) + 1]:
        dipy_transform = _dipy_transform(stage, ndim)
        result = registration.optimize(
            fixed,
            moving,
            dipy_transform,
            None,
            static_grid2world=fixed_affine,
            moving_grid2world=moving_affine,
            starting_affine=world,
        )
        world = np.asarray(result.affine, dtype="float64")
    return voxel_affine(world, moving_affine, fixed_affine)


def apply_affine(
    image, matrix, output_shape=None, interpolation="linear", fill_value=0.0
):
    """Warp an array with a voxel pull-back matrix: `out(x) = image(M x)`.

    SciPy's `ndimage.affine_transform` (order 1, or 0 for nearest neighbour:
    labels keep their values and dtype), constant `fill_value` outside.

    Args:
        image: 2D or 3D array.
        matrix: `(ndim + 1, ndim + 1)` or `(ndim, ndim + 1)` pull-back.
        output_shape: the output grid's shape, or None for the image's.
            Defaults to None.
        interpolation: `"linear"` or `"nearest"`. Defaults to `"linear"`.
        fill_value: value outside the image. Defaults to `0.0`.

    Returns:
        The warped array (float32 for linear, the input dtype for nearest).

    Example:

    >>> import numpy as np
    >>> shift = np.array([[1.0, 0, 2], [0, 1, 0], [0, 0, 1]])
    >>> apply_affine(np.arange(16.0).reshape(4, 4), shift)[0].tolist()
    [8.0, 9.0, 10.0, 11.0]
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(
            "Expected `image` to be a 2D or 3D array. Received: "
            f"image.shape={image.shape}"
        )
    ndim = image.ndim
    matrix = _check_matrix(matrix, ndim)
    interpolation = check_choice(interpolation, "interpolation", ("linear", "nearest"))
    output_shape = (
        image.shape if output_shape is None else tuple(int(n) for n in output_shape)
    )
    if interpolation == "nearest":
        # Round the coordinates ourselves (ties up), as the library's sampler.
        grids = np.meshgrid(
            *[np.arange(n, dtype="float64") for n in output_shape], indexing="ij"
        )
        points = np.stack(grids, axis=0).reshape(ndim, -1)
        coordinates = matrix[:ndim, :ndim] @ points + matrix[:ndim, ndim : ndim + 1]
        index = np.floor(coordinates + 0.5).astype("int64")
        inside = np.all((index >= 0) & (index < np.array(image.shape)[:, None]), axis=0)
        out = np.full(index.shape[1], fill_value, dtype=image.dtype)
        out[inside] = image[tuple(index[:, inside])]
        return out.reshape(output_shape)
    return ndimage.affine_transform(
        image.astype("float32"),
        matrix[:ndim, :ndim],
        offset=matrix[:ndim, ndim],
        output_shape=output_shape,
        order=1,
        mode="constant",
        cval=float(fill_value),
    ).astype("float32")


def affine_to_displacement(matrix, shape):
    """The displacement `d(x) = M x - x` of a voxel pull-back on a grid.

    Args:
        matrix: `(ndim + 1, ndim + 1)` or `(ndim, ndim + 1)` pull-back.
        shape: the fixed grid's spatial shape (`ndim` entries).

    Returns:
        A float32 array `(*shape, ndim)` in voxels:
        `moving(x + d(x)) = moving(M x)`.

    Example:

    >>> import numpy as np
    >>> d = affine_to_displacement(np.eye(3), (4, 5))
    >>> d.shape, float(abs(d).max())
    ((4, 5, 2), 0.0)
    """
    shape = tuple(int(n) for n in shape)
    ndim = len(shape)
    matrix = _check_matrix(matrix, ndim)
    grids = np.meshgrid(*[np.arange(n, dtype="float64") for n in shape], indexing="ij")
    points = np.stack(grids, axis=-1)
    moved = points @ matrix[:ndim, :ndim].T + matrix[:ndim, ndim]
    return (moved - points).astype("float32")
