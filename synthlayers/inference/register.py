"""Register a moving scan to a fixed one: affine pre-alignment, then the network.

Steps of `register` (NumPy outside the network, one interpolation of the
moving image at the end):

1. Orientation: paths are read with `synthlayers.io.load_volume`, arrays
   with an `affine` go through `io.to_ras`; arrays with a voxel size are
   taken as RAS+ already (2D arrays too: slices).
2. The **network grid** `G`: the fixed image's field of view at the model's
   voxel size (1 mm), centred as `synthlayers.resampling` (its voxel-to-world
   matrix is `RegistrationResult.affine`). The fixed image is resampled onto
   it; the moving image keeps its own grid and is read through world
   coordinates (Gaussian pre-blur where it is downsampled).
3. Min-max normalisation of both to [0, 1].
4. **Affine pre-alignment** (`synthlayers.inference.affine`): centres of
   mass and principal axes (`"moments"`), or a mutual-information fit with
   dipy (`"mutual_information"`, the default when dipy is installed),
   giving the world pull-back `W` (fixed world point -> moving world point).
5. The network on the moving image resampled at `W` and the fixed image,
   both padded (zeros) to a multiple of the network's divisor (the network
   is rebuilt for that shape with the same weights when its input shape is
   static), the result cropped back: never an index overflow, whatever the
   field of view.

Convention of the fields (all on the network grid `G`, array axes in RAS+
order): `moved(x) = moving(x + displacement(x))` where `moving` is the
moving image resampled onto `G` through the world (identity
correspondence): a **pull-back from the fixed grid**, in voxels of `G`
(`displacement`) and in RAS millimetres (`displacement_mm`: the world point
`p` of voxel `x` takes the moving image's value at `p + D(p)`). It includes
the affine. `inverse_displacement` is the inverse map on the same grid,
`z -> z + inverse(z)` (a pull-back from the moving image to the fixed one):
`d(x) + inverse(x + d(x)) ~ 0`.
"""

import dataclasses
import os
import time
import weakref

import numpy as np
from scipy import ndimage

from synthlayers import io
from synthlayers.inference import affine as affine_module
from synthlayers.resampling import _positive_sizes
from synthlayers.resampling import resampled_shape
from synthlayers.validation import check_choice

AFFINE_METHODS = ("mutual_information", "moments", "none")
"""The pre-alignments of `register`."""


@dataclasses.dataclass(eq=False)
class RegistrationResult:
    """What `register` returns, on the network grid (see the module docstring).

    Attributes:
        moved: the moving image (its own intensities) warped onto the grid.
        fixed: the fixed image on the grid, normalised to [0, 1].
        moving_affine_only: the moving image after the affine alone,
            normalised to [0, 1] (the network's moving input).
        displacement: `(*grid, ndim)` float32, voxels of the grid, affine
            included: `moved(x) = moving(x + displacement(x))`.
        displacement_mm: the same in RAS mm (world axes).
        network_displacement: the network's part alone, from the affinely
            aligned moving image.
        inverse_displacement: the inverse pull-back, or None.
        moved_segmentation: the moving segmentation warped (integer), or None.
        affine: voxel-to-world matrix of the grid (`(ndim + 1, ndim + 1)`).
        world_matrix: the affine pre-alignment as a world pull-back (fixed
            world point -> moving world point, dipy's `AffineMap.affine`).
        times: seconds per step (`"affine"`, `"network"`, `"total"`).
        paths: files written (name -> path) when `out` was given.
    """

    moved: np.ndarray
    fixed: np.ndarray
    moving_affine_only: np.ndarray
    displacement: np.ndarray
    displacement_mm: np.ndarray
    network_displacement: np.ndarray
    inverse_displacement: object
    moved_segmentation: object
    affine: np.ndarray
    world_matrix: np.ndarray
    times: dict
    paths: dict = dataclasses.field(default_factory=dict)


# --- inputs ----------------------------------------------------------------------


def _is_path(value):
    return isinstance(value, (str, bytes, os.PathLike))


def _as_volume(image, voxel_size, affine, name, dtype="float32"):
    """`(RAS+ array, its voxel-to-world matrix)` for a path, image or array."""
    if _is_path(image):
        if voxel_size is not None or affine is not None:
            raise ValueError(
                f"Expected no voxel size or affine with a path for `{name}` (the "
                f"header gives them). Received: voxel_size={voxel_size!r}, "
                f"affine={affine!r}"
            )
        volume = io.load_volume(image, dtype=dtype)
        data = volume.data
        if data.ndim > 3 and all(n == 1 for n in data.shape[3:]):
            data = data.reshape(data.shape[:3])
        if data.ndim != 3:
            raise ValueError(
                f"Expected `{name}` to be a 3D volume. Received: "
                f"{os.fspath(image)!r} with shape {volume.original_shape}"
            )
        return data, volume.affine
    if hasattr(image, "dataobj") and hasattr(image, "affine"):  # nibabel image
        if affine is not None:
            raise ValueError(
                f"Expected no affine with a nibabel image for `{name}`. "
                f"Received: affine={affine!r}"
            )
        image, affine = np.asanyarray(image.dataobj), image.affine
    array = np.asarray(image)
    if array.ndim not in (2, 3):
        raise ValueError(
            f"Expected `{name}` to be a 2D or 3D array (spatial axes only) or a "
            f"path. Received: {name}.shape={array.shape}"
        )
    array = array.astype(dtype, copy=False)
    if affine is not None:
        if voxel_size is not None:
            raise ValueError(
                f"Expected one of the voxel size and the affine of `{name}`. "
                f"Received both: voxel_size={voxel_size!r}, affine=<matrix>"
            )
        if array.ndim != 3:
            raise ValueError(
                f"Expected a 3D `{name}` with an affine. Received: "
                f"{name}.shape={array.shape}"
            )
        ras, ras_affine = io.to_ras(array, affine)
        return np.ascontiguousarray(ras), ras_affine
    sizes = _positive_sizes(
        1.0 if voxel_size is None else voxel_size, array.ndim, f"{name}_voxel_size"
    )
    return array, np.diag([*sizes, 1.0])


def _grid(shape, affine, target):
    """Shape and voxel-to-world matrix of the centred grid at `target` mm."""
    ndim = len(shape)
    sizes = np.linalg.norm(affine[:ndim, :ndim], axis=0)
    targets = np.asarray(_positive_sizes(target, ndim, "voxel_size"))
    out_shape = resampled_shape(shape, tuple(sizes), tuple(targets))
    ratio = targets / sizes
    # Output voxel j has its centre at input index (n - 1) / 2 + (j - (m - 1) / 2) r.
    index = np.eye(ndim + 1)
    index[:ndim, :ndim] = np.diag(ratio)
    index[:ndim, ndim] = (np.array(shape) - 1) / 2 - (
        np.array(out_shape) - 1
    ) / 2 * ratio
    return out_shape, affine @ index


def _blurred(image, voxel_matrix):
    """`image` blurred against aliasing where `voxel_matrix` steps over > 1 voxel."""
    ndim = image.ndim
    steps = np.linalg.norm(voxel_matrix[:ndim, :ndim], axis=1)
    sigma = np.maximum((steps - 1) / 2, 0)
    sigma[sigma < 0.25] = 0
    if not sigma.any():
        return image
    return ndimage.gaussian_filter(image, sigma, mode="nearest", truncate=3.0)


def _points(shape):
    grids = np.meshgrid(*[np.arange(n, dtype="float64") for n in shape], indexing="ij")
    return np.stack(grids, axis=-1)


def _sample(image, coordinates, order):
    """`image` at `(*grid, ndim)` voxel coordinates; linear or nearest, 0 outside."""
    ndim = image.ndim
    coordinates = np.moveaxis(coordinates, -1, 0)
    if order == 0:
        index = np.floor(coordinates + 0.5).astype("int64")
        shape = np.array(image.shape).reshape((ndim,) + (1,) * ndim)
        inside = np.all((index >= 0) & (index < shape), axis=0)
        clipped = np.clip(index, 0, shape - 1)
        values = image[tuple(clipped)]
        return np.where(inside, values, np.zeros((), image.dtype))
    return ndimage.map_coordinates(
        image.astype("float32"), coordinates, order=1, mode="constant", cval=0.0
    )


def _normalize(image):
    image = np.asarray(image, dtype="float32")
    low, high = float(image.min()), float(image.max())
    if high <= low:
        return np.zeros_like(image)
    return ((image - low) / (high - low)).astype("float32")


# --- the network -------------------------------------------------------------------


def _network_and_metadata(model):
    """A Keras network and the metadata dict from a path, tuple, model or None."""
    if model is None:
        return None, {}
    if _is_path(model):
        from synthlayers.models.model_file import load_model_file

        return load_model_file(model, kind="registration")
    if isinstance(model, tuple) and len(model) == 2:
        return model[0], dict(model[1] or {})
    network = getattr(model, "network", None)  # RegistrationModel, model files
    metadata = dict(getattr(model, "metadata", None) or {})
    if network is not None:
        return network, metadata
    import keras

    if isinstance(model, keras.Model):
        return model, {}
    raise ValueError(
        "Expected `model` to be a registration network (inputs [moving, fixed]), "
        "a RegistrationModel, a model file path or object, or None (affine "
        f"only). Received: model={type(model).__name__}"
    )


def _layers_of(network, class_name):
    return [layer for layer in network.layers if type(layer).__name__ == class_name]


def _divisor(network):
    checks = _layers_of(network, "SpatialShapeCheck")
    return int(checks[0].divisor) if checks else 16


_REBUILT = weakref.WeakKeyDictionary()  # network -> {shape: (weights id, copy)}


def _network_for_shape(network, spatial):
    """`network` (static spatial input shape) rebuilt for `spatial`, same weights.

    Rebuilt networks are cached per network and shape while the weights are
    the same objects (`set_weights` copies their current values).
    """
    current = tuple(network.inputs[0].shape[1:-1])
    if current == tuple(spatial):
        return network
    cache = _REBUILT.setdefault(network, {})
    key = tuple(spatial)
    if key in cache:
        rebuilt = cache[key]
        rebuilt.set_weights(network.get_weights())
        return rebuilt
    cache[key] = _rebuild(network, spatial)
    return cache[key]


def _rebuild(network, spatial):
    config = network.get_config()
    for layer in config["layers"]:
        if layer["class_name"] == "InputLayer":
            shape = layer["config"]["batch_shape"]
            layer["config"]["batch_shape"] = (shape[0], *spatial, shape[-1])
        elif layer["class_name"] == "ResizeDisplacement":
            layer["config"]["output_shape"] = list(spatial)
    rebuilt = network.__class__.from_config(config)
    rebuilt.set_weights(network.get_weights())
    return rebuilt


def _pad_to(array, shape):
    """Zero-pad `array` (spatial axes first) at the end to `shape`."""
    pad = [(0, s - n) for n, s in zip(array.shape, shape)]
    pad += [(0, 0)] * (array.ndim - len(shape))
    return np.pad(array, pad)


def _run_network(network, moving, fixed):
    """Displacement (and inverse) of `network` on the grid of `fixed`.

    Both images are padded with zeros at the end of each axis to a multiple
    of the network's divisor, the network rebuilt for that shape, and the
    fields cropped back.
    """
    from keras import ops

    shape = fixed.shape
    divisor = _divisor(network)
    padded = tuple(-(-n // divisor) * divisor for n in shape)
    runner = _network_for_shape(network, padded)
    batch = [
        _pad_to(x, padded)[None, ..., None].astype("float32") for x in (moving, fixed)
    ]
    outputs = runner(batch, training=False)
    if not isinstance(outputs, dict) or "displacement" not in outputs:
        raise ValueError(
            "Expected the network to return a dict with a 'displacement' entry "
            "(registration_network). Received: outputs of type "
            f"{type(outputs).__name__}"
        )
    crop = tuple(slice(0, n) for n in shape)
    displacement = ops.convert_to_numpy(outputs["displacement"])[0][crop]
    inverse = None
    velocity = outputs.get("velocity")
    integrators = _layers_of(runner, "IntegrateVelocity")
    if velocity is not None and integrators:
        field = integrators[0](-velocity)
        resizers = _layers_of(runner, "ResizeDisplacement")
        if resizers:
            field = resizers[0](field)
        inverse = ops.convert_to_numpy(field)[0][crop]
    return displacement.astype("float64"), inverse


def invert_displacement(displacement, iterations=50, tolerance=1e-4):
    """Invert a pull-back displacement by fixed-point iteration.

    Finds `v` with `v(y) = -d(y + v(y))` (so `y -> y + v(y)` undoes
    `x -> x + d(x)`), starting from `-d`, `d` interpolated linearly (edges
    repeated). Converges where the map is a diffeomorphism with moderate
    Jacobians.

    Args:
        displacement: `(*shape, ndim)` float array, voxels.
        iterations: maximum iterations. Defaults to `50`.
        tolerance: stop when the largest update is below this (voxels).
            Defaults to `1e-4`.

    Returns:
        The inverse displacement, float64, same shape.

    Example:

    >>> import numpy as np
    >>> d = np.full((6, 6, 2), 0.5)
    >>> float(invert_displacement(d)[2, 2, 0])
    -0.5
    """
    displacement = np.asarray(displacement, dtype="float64")
    ndim = displacement.ndim - 1
    if ndim not in (2, 3) or displacement.shape[-1] != ndim:
        raise ValueError(
            "Expected `displacement` of shape (*shape, ndim) with 2 or 3 spatial "
            f"axes. Received: displacement.shape={displacement.shape}"
        )
    grid = _points(displacement.shape[:-1])
    inverse = -displacement
    for _ in range(int(iterations)):
        coordinates = np.moveaxis(grid + inverse, -1, 0)
        pulled = np.stack(
            [
                ndimage.map_coordinates(
                    displacement[..., i], coordinates, order=1, mode="nearest"
                )
                for i in range(ndim)
            ],
            axis=-1,
        )
        update = -pulled - inverse
        inverse = inverse + update
        if np.abs(update).max() < tolerance:
            break
    return inverse


def _compose_inverse(network_inverse, matrix):
    """Inverse of `x -> Q (x + d(x))` given the inverse `v` of `x -> x + d(x)`.

    `T^-1(z) = Q^-1 z + v(Q^-1 z)`: returns `T^-1(z) - z` on the grid.
    """
    shape = network_inverse.shape[:-1]
    ndim = len(shape)
    grid = _points(shape)
    inverse_matrix = np.linalg.inv(matrix)
    source = grid @ inverse_matrix[:ndim, :ndim].T + inverse_matrix[:ndim, ndim]
    coordinates = np.moveaxis(source, -1, 0)
    pulled = np.stack(
        [
            ndimage.map_coordinates(
                network_inverse[..., i], coordinates, order=1, mode="nearest"
            )
            for i in range(ndim)
        ],
        axis=-1,
    )
    return source + pulled - grid


def _check_matrix_argument(value, ndim):
    matrix = np.asarray(value, dtype="float64")
    if matrix.shape == (ndim, ndim + 1):
        matrix = np.vstack([matrix, np.eye(ndim + 1)[-1:]])
    if matrix.shape != (ndim + 1, ndim + 1) or not np.all(np.isfinite(matrix)):
        raise ValueError(
            f"Expected `affine_method` to be one of {AFFINE_METHODS} or a "
            f"({ndim + 1}, {ndim + 1}) world pull-back matrix. Received: "
            f"affine_method with shape {matrix.shape}"
        )
    return matrix


def register(
    model,
    moving,
    fixed,
    moving_segmentation=None,
    moving_voxel_size=None,
    moving_affine=None,
    fixed_voxel_size=None,
    fixed_affine=None,
    voxel_size=None,
    affine_method=None,
    affine_transform="affine",
    affine_options=None,
    segmentation_interpolation="nearest",
    inverse=True,
    out=None,
):
    """Register `moving` to `fixed`: affine pre-alignment, then the network.

    See the module docstring for the steps and the convention of the fields.

    Args:
        model: a registration network (inputs `[moving, fixed]`, a dict
            output with `"displacement"` and optionally `"velocity"`, as
            `registration_network`), a `RegistrationModel`, a model file
            (path, or `(network, metadata)`), or None for the affine alone.
        moving: a path to a NIfTI/MGH file, a nibabel image, or a 2D/3D array.
        fixed: the same kinds.
        moving_segmentation: integer labels on the moving image's grid (an
            array, or a path), or None. Defaults to None.
        moving_voxel_size: voxel size of a moving array (mm), taken as RAS+
            then. Defaults to None (1 mm).
        moving_affine: voxel-to-world matrix of a 3D moving array in any
            voxel order. Defaults to None.
        fixed_voxel_size: as `moving_voxel_size`, for `fixed`. Defaults to
            None.
        fixed_affine: as `moving_affine`, for `fixed`. Defaults to None.
        voxel_size: the network grid's voxel size (mm), or None for the
            model file's `voxel_size` entry, else 1 mm. Defaults to None.
        affine_method: `"mutual_information"` (dipy), `"moments"`, `"none"`,
            or a world pull-back matrix; None for `"mutual_information"`
            when dipy is installed, else `"moments"`. Defaults to None.
        affine_transform: the pre-alignment's last stage, `"translation"`,
            `"rigid"` or `"affine"`. Defaults to `"affine"`.
        affine_options: more arguments of `mutual_information_affine`.
            Defaults to None.
        segmentation_interpolation: `"nearest"` (nearest neighbour of the
            labels) or `"linear"` (each label's one-hot map linearly, then
            the argmax). Defaults to `"nearest"`.
        inverse: compute `inverse_displacement` (from the network's velocity
            when it returns one, else by fixed-point iteration). Defaults to
            True.
        out: a directory to write `moved.nii.gz`, `displacement.nii.gz`
            (`io.save_displacement_field`: RAS mm, pull-back from the fixed
            grid), `inverse_displacement.nii.gz`,
            `moved_segmentation.nii.gz`, `fixed.nii.gz` and
            `affine.txt` (the world pull-back), or None (3D only). Defaults
            to None.

    Returns:
        A `RegistrationResult`.

    Raises:
        ValueError: for bad images, voxel sizes, affines or methods, images
            of different dimensionality, or `out` with 2D images.
        ImportError: for `"mutual_information"` without dipy.

    Example:

    >>> import numpy as np
    >>> fixed = np.zeros((24, 20)); fixed[6:16, 5:12] = 1
    >>> moving = np.roll(fixed, 2, axis=0)
    >>> result = register(None, moving, fixed, affine_method="moments",
    ...                   affine_transform="translation")
    >>> float(np.abs(result.moved - fixed).max()), result.displacement.shape
    (0.0, (24, 20, 2))
    """
    start = time.perf_counter()
    network, metadata = _network_and_metadata(model)
    moving_data, moving_world = _as_volume(
        moving, moving_voxel_size, moving_affine, "moving"
    )
    fixed_data, fixed_world = _as_volume(fixed, fixed_voxel_size, fixed_affine, "fixed")
    ndim = fixed_data.ndim
    if moving_data.ndim != ndim:
        raise ValueError(
            "Expected `moving` and `fixed` with the same number of dimensions. "
            f"Received: moving.shape={moving_data.shape}, "
            f"fixed.shape={fixed_data.shape}"
        )
    if out is not None and ndim != 3:
        raise ValueError(
            f"Expected 3D images to write files with `out`. Received: {ndim}D "
            f"images, out={out!r}"
        )
    segmentation = None
    if moving_segmentation is not None:
        segmentation, segmentation_world = _as_volume(
            moving_segmentation,
            moving_voxel_size if not _is_path(moving_segmentation) else None,
            moving_affine if not _is_path(moving_segmentation) else None,
            "moving_segmentation",
            dtype=None,
        )
        if segmentation.shape != moving_data.shape or not np.allclose(
            segmentation_world, moving_world, atol=1e-4
        ):
            raise ValueError(
                "Expected `moving_segmentation` on the grid of `moving`. Received: "
                f"shape {segmentation.shape} for a moving image of shape "
                f"{moving_data.shape}"
            )
        if not np.issubdtype(segmentation.dtype, np.integer):
            rounded = np.rint(segmentation)
            if not np.array_equal(rounded, segmentation):
                raise ValueError(
                    "Expected integer labels in `moving_segmentation`. Received: "
                    "non-integer values"
                )
            segmentation = rounded.astype("int32")
    segmentation_interpolation = check_choice(
        segmentation_interpolation, "segmentation_interpolation", ("nearest", "linear")
    )
    if voxel_size is None:
        voxel_size = metadata.get("voxel_size", 1.0)
    grid_shape, grid_world = _grid(fixed_data.shape, fixed_world, voxel_size)
    fixed_voxels = np.linalg.inv(fixed_world) @ grid_world
    fixed_grid = _sample(
        _blurred(fixed_data, fixed_voxels),
        _points(grid_shape) @ fixed_voxels[:ndim, :ndim].T + fixed_voxels[:ndim, ndim],
        order=1,
    )
    fixed_grid = _normalize(fixed_grid)
    moving_norm = _normalize(moving_data)

    # Affine pre-alignment: a world pull-back W.
    if affine_method is None:
        try:
            import dipy  # noqa: F401

            affine_method = "mutual_information"
        except ImportError:
            affine_method = "moments"
    affine_start = time.perf_counter()
    if isinstance(affine_method, str):
        affine_method = check_choice(affine_method, "affine_method", AFFINE_METHODS)
        if affine_method == "none":
            world = np.eye(ndim + 1)
        else:
            if affine_method == "moments":
                voxel = affine_module.moments_affine(
                    moving_norm,
                    fixed_grid,
                    affine_transform,
                    moving_affine=moving_world,
                    fixed_affine=grid_world,
                )
            else:
                voxel = affine_module.mutual_information_affine(
                    moving_norm,
                    fixed_grid,
                    moving_affine=moving_world,
                    fixed_affine=grid_world,
                    transform=affine_transform,
                    **(affine_options or {}),
                )
            world = affine_module.world_affine(voxel, moving_world, grid_world)
    else:
        world = _check_matrix_argument(affine_method, ndim)
    affine_time = time.perf_counter() - affine_start

    # Grid voxel -> moving voxel (P), and grid voxel -> grid voxel (Q).
    to_moving = np.linalg.inv(moving_world) @ world @ grid_world
    q = np.linalg.inv(grid_world) @ world @ grid_world
    moving_source = _blurred(moving_data, to_moving)
    points = _points(grid_shape)

    def at(matrix, field=None):
        x = points if field is None else points + field
        return x @ matrix[:ndim, :ndim].T + matrix[:ndim, ndim]

    moving_aligned = _normalize(_sample(moving_source, at(to_moving), order=1))
    network_start = time.perf_counter()
    network_inverse = None
    if network is None:
        network_displacement = np.zeros(grid_shape + (ndim,))
    else:
        network_displacement, network_inverse = _run_network(
            network, moving_aligned, fixed_grid
        )
    network_time = time.perf_counter() - network_start

    coordinates = at(to_moving, network_displacement)
    moved = _sample(moving_source, coordinates, order=1)
    displacement = at(q, network_displacement) - points
    displacement_mm = displacement @ grid_world[:ndim, :ndim].T
    moved_segmentation = None
    if segmentation is not None:
        moved_segmentation = _warp_labels(
            segmentation, coordinates, segmentation_interpolation
        )
    inverse_displacement = None
    if inverse:
        if network is None:
            network_inverse = np.zeros_like(network_displacement)
        elif network_inverse is None:
            network_inverse = invert_displacement(network_displacement)
        inverse_displacement = _compose_inverse(
            np.asarray(network_inverse, "float64"), q
        ).astype("float32")
    result = RegistrationResult(
        moved=moved.astype("float32"),
        fixed=fixed_grid,
        moving_affine_only=moving_aligned,
        displacement=displacement.astype("float32"),
        displacement_mm=displacement_mm.astype("float32"),
        network_displacement=network_displacement.astype("float32"),
        inverse_displacement=inverse_displacement,
        moved_segmentation=moved_segmentation,
        affine=grid_world,
        world_matrix=world,
        times={
            "affine": affine_time,
            "network": network_time,
            "total": time.perf_counter() - start,
        },
    )
    if out is not None:
        result.paths = _write(result, out)
    return result


def _warp_labels(segmentation, coordinates, interpolation):
    if interpolation == "nearest":
        return _sample(segmentation, coordinates, order=0)
    values = np.unique(segmentation)
    best = np.full(coordinates.shape[:-1], -1.0, dtype="float32")
    labels = np.zeros(coordinates.shape[:-1], dtype=segmentation.dtype)
    for value in values:
        probability = _sample((segmentation == value).astype("float32"), coordinates, 1)
        better = probability > best
        labels[better] = value
        best = np.maximum(best, probability)
    return labels


def _write(result, out):
    os.makedirs(out, exist_ok=True)
    paths = {
        "moved": io.save_volume(
            os.path.join(out, "moved.nii.gz"), result.moved, result.affine
        ),
        "fixed": io.save_volume(
            os.path.join(out, "fixed.nii.gz"), result.fixed, result.affine
        ),
        "displacement": io.save_displacement_field(
            os.path.join(out, "displacement.nii.gz"),
            result.displacement_mm,
            result.affine,
            units="mm",
        ),
    }
    if result.inverse_displacement is not None:
        paths["inverse_displacement"] = io.save_displacement_field(
            os.path.join(out, "inverse_displacement.nii.gz"),
            result.inverse_displacement,
            result.affine,
        )
    if result.moved_segmentation is not None:
        paths["moved_segmentation"] = io.save_volume(
            os.path.join(out, "moved_segmentation.nii.gz"),
            result.moved_segmentation.astype("int32"),
            result.affine,
        )
    path = os.path.join(out, "affine.txt")
    np.savetxt(
        path,
        result.world_matrix,
        header="world (RAS mm) pull-back: fixed point -> moving point",
    )
    paths["affine"] = path
    return paths
