"""Volumes in and out: NIfTI/MGH files, orientation, the RAS+ convention.

Convention: every array handed to the rest of synthlayers is in **RAS+**
voxel order: the first array axis runs from the subject's left to right
(x), the second from posterior to anterior (y), the third from inferior to
superior (z), so that the affine of the array has a (nearly) positive
diagonal. Files come in any voxel order (FreeSurfer's conformed space is
LIA, many scanners write LPS or oblique grids); `load_volume` permutes and
flips the voxel axes (never resamples) to the closest RAS+ order, and keeps
what is needed (`Volume.orientation`, `Volume.original_affine`) to put an
array computed in RAS back into the file's voxel order with `from_ras`, so
results can be written with the input's own affine.

Orientations are nibabel orientation arrays (`(ndim, 2)`: for each array
axis, the world axis it runs along and +1/-1 for its direction), obtained
with `nibabel.orientations.io_orientation` from an affine.
"""

import dataclasses
import os

import numpy as np

RAS_CODES = ("R", "A", "S")
"""Axis codes of the RAS+ convention."""


def _nibabel():
    import nibabel

    return nibabel


def _check_affine(affine, name="affine"):
    affine = np.asarray(affine, dtype="float64")
    if affine.shape != (4, 4):
        raise ValueError(
            f"Expected `{name}` to be a 4 x 4 matrix. Received: "
            f"{name} with shape {affine.shape}"
        )
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise ValueError(
            f"Expected `{name}` to be a finite, invertible 4 x 4 affine. "
            f"Received: {name}={affine.tolist()}"
        )
    return affine


def _check_array(array, name="array"):
    array = np.asarray(array)
    if array.ndim < 3:
        raise ValueError(
            f"Expected `{name}` with at least 3 (spatial) dimensions. "
            f"Received: {name}.shape={array.shape}"
        )
    return array


def orientation(affine):
    """The nibabel orientation of the voxel axes of `affine`.

    Args:
        affine: 4 x 4 voxel-to-world (RAS mm) matrix.

    Returns:
        A `(3, 2)` float array: row `i` holds the world axis (0 = x/R,
        1 = y/A, 2 = z/S) that voxel axis `i` runs along most closely, and
        +1 or -1 for its direction.

    Raises:
        ValueError: when `affine` is not an invertible 4 x 4 matrix.
    """
    orientations = _nibabel().orientations
    return orientations.io_orientation(_check_affine(affine))


def axis_codes(affine):
    """The voxel axes of `affine` as axis codes, e.g. `("L", "I", "A")`.

    Args:
        affine: 4 x 4 voxel-to-world matrix.

    Returns:
        A tuple of three one-letter codes (the direction each voxel axis
        points to).

    Raises:
        ValueError: when `affine` is not an invertible 4 x 4 matrix.
    """
    orientations = _nibabel().orientations
    return tuple(orientations.ornt2axcodes(orientation(affine)))


def _transform_to_ras(affine):
    orientations = _nibabel().orientations
    return orientations.ornt_transform(
        orientation(affine), orientations.axcodes2ornt(RAS_CODES)
    )


def to_ras(array, affine):
    """Permute and flip the first three axes of `array` into RAS+ order.

    No interpolation: voxels are only reordered, so `from_ras` undoes it
    exactly. Axes after the third (channels, time) are carried along.

    Args:
        array: array whose first three axes are the voxel axes of `affine`.
        affine: 4 x 4 voxel-to-world (RAS mm) matrix of `array`.

    Returns:
        `(ras_array, ras_affine)`: the reordered array (a view where
        possible) and the affine of its voxel grid (same world positions,
        diagonal-dominant with positive direction).

    Raises:
        ValueError: when `array` has fewer than 3 dimensions or `affine` is
            not an invertible 4 x 4 matrix.

    Example:

    >>> import numpy as np
    >>> lia = np.array([[-1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]])
    >>> ras, ras_affine = to_ras(np.zeros((4, 5, 6)), lia)
    >>> ras.shape
    (4, 6, 5)
    """
    nibabel = _nibabel()
    array = _check_array(array)
    affine = _check_affine(affine)
    transform = _transform_to_ras(affine)
    ras = nibabel.orientations.apply_orientation(array, transform)
    ras_affine = affine @ nibabel.orientations.inv_ornt_aff(transform, array.shape[:3])
    return ras, ras_affine


def from_ras(ras_array, affine):
    """Put an array computed in RAS+ order back into the voxel order of `affine`.

    The inverse of `to_ras(array, affine)`: `from_ras(to_ras(a, affine)[0],
    affine)` equals `a` exactly.

    Args:
        ras_array: array in RAS+ voxel order (first three axes); more axes
            are carried along.
        affine: 4 x 4 voxel-to-world matrix of the *original* voxel order
            (e.g. `Volume.original_affine`).

    Returns:
        The array with its first three axes in the voxel order of `affine`.

    Raises:
        ValueError: when `ras_array` has fewer than 3 dimensions or `affine`
            is not an invertible 4 x 4 matrix.
    """
    orientations = _nibabel().orientations
    ras_array = _check_array(ras_array, "ras_array")
    affine = _check_affine(affine)
    transform = orientations.ornt_transform(
        orientations.axcodes2ornt(RAS_CODES), orientation(affine)
    )
    return orientations.apply_orientation(ras_array, transform)


def voxel_sizes(affine):
    """Voxel sizes (mm) along the three voxel axes of `affine`.

    Args:
        affine: 4 x 4 voxel-to-world matrix.

    Returns:
        A tuple of three floats: the norms of the first three columns.

    Raises:
        ValueError: when `affine` is not an invertible 4 x 4 matrix.
    """
    affine = _check_affine(affine)
    return tuple(float(v) for v in np.linalg.norm(affine[:3, :3], axis=0))


@dataclasses.dataclass(frozen=True, eq=False)
class Volume:
    """A volume read by `load_volume`: RAS+ data and its original geometry.

    Attributes:
        data: the array in RAS+ voxel order (first three axes).
        affine: 4 x 4 affine of `data` (voxel to RAS mm).
        voxel_sizes: mm per voxel along the axes of `data`.
        original_affine: the file's affine (voxel order as stored).
        original_shape: the file's array shape.
        orientation: nibabel orientation of the file's voxel axes.
    """

    data: np.ndarray
    affine: np.ndarray
    voxel_sizes: tuple
    original_affine: np.ndarray
    original_shape: tuple
    orientation: np.ndarray

    @property
    def original_axis_codes(self):
        """Axis codes of the file's voxel order, e.g. `("L", "I", "A")`."""
        return tuple(_nibabel().orientations.ornt2axcodes(self.orientation))

    def to_original(self, ras_array):
        """`ras_array` (on the grid of `data`) in the file's voxel order."""
        return from_ras(ras_array, self.original_affine)


def load_volume(path, dtype=None):
    """Load a NIfTI/MGH volume and bring it to RAS+ voxel order.

    Any file nibabel reads (`.nii`, `.nii.gz`, `.mgz`, `.mgh`). The voxel
    axes are permuted and flipped to the closest RAS+ order (see the module
    docstring); nothing is resampled, so oblique acquisitions keep their
    (rotated) affine. Data beyond three dimensions keep their trailing axes.

    Args:
        path: the file.
        dtype: NumPy dtype of `Volume.data`, or None for the stored dtype
            after scaling (float for scaled data). Defaults to None.

    Returns:
        A `Volume` (data and affine in RAS+, voxel sizes, and the file's
        affine, shape and orientation to write results back).

    Raises:
        ValueError: when the file holds fewer than three dimensions.

    Example:

    >>> volume = load_volume("scan.nii.gz")  # doctest: +SKIP
    >>> volume.data.shape, volume.original_axis_codes  # doctest: +SKIP
    """
    nibabel = _nibabel()
    image = nibabel.load(os.fspath(path))
    data = np.asanyarray(image.dataobj)
    if data.ndim < 3:
        raise ValueError(
            "Expected a volume with at least 3 dimensions. Received: "
            f"path={os.fspath(path)!r} with shape {data.shape}"
        )
    if dtype is not None:
        data = data.astype(dtype, copy=False)
    original_affine = np.asarray(image.affine, dtype="float64")
    ras, ras_affine = to_ras(data, original_affine)
    return Volume(
        data=np.ascontiguousarray(ras),
        affine=ras_affine,
        voxel_sizes=voxel_sizes(ras_affine),
        original_affine=original_affine,
        original_shape=tuple(data.shape),
        orientation=orientation(original_affine),
    )


def save_volume(path, array, affine):
    """Write an array as NIfTI (or MGH for `.mgz`/`.mgh`) with `affine`.

    The array is written in the voxel order given (use `from_ras` or
    `Volume.to_original` first to write in the input's order). Booleans are
    stored as uint8, int64 as int32 (with a check that the values fit),
    float64 as float32. The NIfTI sform and qform are both set to `affine`
    (code 1, scanner), units mm.

    Args:
        path: the output file; the extension picks the format.
        array: the data, at least 3 dimensions.
        affine: 4 x 4 voxel-to-world matrix.

    Returns:
        The path, as a string.

    Raises:
        ValueError: when `array` has fewer than 3 dimensions, `affine` is not
            an invertible 4 x 4 matrix, or int64 values do not fit in int32.
    """
    nibabel = _nibabel()
    array = _check_array(array)
    affine = _check_affine(affine)
    if array.dtype == bool:
        array = array.astype("uint8")
    elif array.dtype == np.int64 or array.dtype == np.uint64:
        info = np.iinfo("int32")
        if array.size and (array.min() < info.min or array.max() > info.max):
            raise ValueError(
                "Expected integer values that fit in int32. Received: array "
                f"with values in [{array.min()}, {array.max()}]"
            )
        array = array.astype("int32")
    elif array.dtype == np.float64:
        array = array.astype("float32")
    path = os.fspath(path)
    if path.endswith((".mgz", ".mgh")):
        image = nibabel.MGHImage(array, affine)
    else:
        image = nibabel.Nifti1Image(array, affine)
        image.set_sform(affine, code=1)
        image.set_qform(affine, code=1)
        image.header.set_xyzt_units("mm")
    nibabel.save(image, path)
    return path


# --- The voxelmorph test scan --------------------------------------------------

VXM_TEST_SCAN_AXIS_CODES = ("L", "I", "A")
"""Voxel order of voxelmorph's `test_scan.npz` (`vol`, `seg`, 160x192x224).

Worked out from the anatomy (the file has no affine): along the first axis
the left-hemisphere labels (2, 3) lie at higher indices than the right ones
(41, 42), so it runs right -> left; along the second the brainstem (16) and
cerebellum (8, 47) lie 38-42 voxels past the thalamus (10, 49), and a
sagittal slice shows the cortex at index 0 and the brainstem at the end, so
it runs superior -> inferior; along the third the cerebellum lies 44 voxels
before the thalamus and the frontal lobe at the end, so it runs posterior ->
anterior. This is FreeSurfer's conformed (LIA) orientation, cropped; the
brain's extent (147 x 153 x 183 voxels) fits 1 mm voxels.
"""


def vxm_test_scan_affine(shape=(160, 192, 224)):
    """A 1 mm voxel-to-RAS affine for voxelmorph's test scan (LIA order).

    Columns: first axis -> -x (left), second -> -z (inferior), third -> +y
    (anterior); the volume's centre is placed at the world origin (the true
    position is unknown and irrelevant here).

    Args:
        shape: the scan's array shape. Defaults to `(160, 192, 224)`.

    Returns:
        A 4 x 4 float64 affine (see `VXM_TEST_SCAN_AXIS_CODES`).

    Raises:
        ValueError: when `shape` does not have three positive entries.
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(
            f"Expected `shape` with three positive entries. Received: shape={shape}"
        )
    linear = np.array([[-1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
    centre = (np.array(shape) - 1) / 2
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = -linear @ centre
    return affine


def vxm_test_scan_to_ras(array):
    """Bring an array of voxelmorph's test scan (`vol` or `seg`) to RAS+, 1 mm.

    The scan is stored in LIA order (`VXM_TEST_SCAN_AXIS_CODES`); this flips
    the first two axes and swaps the last two: `(160, 192, 224)` becomes
    `(160, 224, 192)` with axes left -> right, posterior -> anterior,
    inferior -> superior. Voxels are 1 mm.

    Args:
        array: `vol` or `seg` from `test_scan.npz`, shape `(160, 192, 224)`
            (more trailing axes are carried along).

    Returns:
        The array in RAS+ order (a view).

    Raises:
        ValueError: when `array` has fewer than 3 dimensions.

    Example:

    >>> import numpy as np
    >>> scan = np.load("vxm_test_scan.npz")  # doctest: +SKIP
    >>> vol = vxm_test_scan_to_ras(scan["vol"])  # doctest: +SKIP
    >>> vol.shape  # doctest: +SKIP
    (160, 224, 192)
    """
    array = _check_array(array)
    return to_ras(array, vxm_test_scan_affine(array.shape[:3]))[0]


# --- Displacement fields -------------------------------------------------------

DISPLACEMENT_INTENT = "NIFTI_INTENT_DISPVECT"
"""NIfTI intent of written displacement fields (`NIFTI_INTENT_DISPVECT`, 1006)."""


def _check_field(field, name):
    field = np.asarray(field)
    if field.ndim != 4 or field.shape[-1] != 3:
        raise ValueError(
            f"Expected `{name}` of shape (X, Y, Z, 3). Received: "
            f"{name}.shape={field.shape}"
        )
    return field


def displacement_to_world(displacement, affine):
    """A displacement in voxels of a grid as a displacement in world mm.

    Component `i` of `displacement` runs along array axis `i` of the grid
    of `affine`; the world displacement is `affine[:3, :3] @ d` (RAS mm):
    the voxel `x + d(x)` lies at the world point `p + D(p)`, `p` the world
    point of `x`.

    Args:
        displacement: `(X, Y, Z, 3)` array, voxels.
        affine: 4 x 4 voxel-to-world matrix of the grid.

    Returns:
        A float64 `(X, Y, Z, 3)` array in mm, world (RAS) axes.

    Raises:
        ValueError: for a field that is not `(X, Y, Z, 3)` or a bad affine.

    Example:

    >>> import numpy as np
    >>> d = np.zeros((2, 2, 2, 3)); d[..., 0] = 1
    >>> displacement_to_world(d, np.diag([-2.0, 1, 1, 1]))[0, 0, 0].tolist()
    [-2.0, 0.0, 0.0]
    """
    displacement = _check_field(displacement, "displacement")
    affine = _check_affine(affine)
    return displacement.astype("float64") @ affine[:3, :3].T


def displacement_to_voxels(displacement, affine):
    """A world (RAS mm) displacement in voxels of a grid.

    The inverse of `displacement_to_world`: `inv(affine[:3, :3]) @ D`.

    Args:
        displacement: `(X, Y, Z, 3)` array, mm along the world axes.
        affine: 4 x 4 voxel-to-world matrix of the grid.

    Returns:
        A float64 `(X, Y, Z, 3)` array in voxels along the grid's array axes.

    Raises:
        ValueError: for a field that is not `(X, Y, Z, 3)` or a bad affine.
    """
    displacement = _check_field(displacement, "displacement")
    affine = _check_affine(affine)
    return displacement.astype("float64") @ np.linalg.inv(affine[:3, :3]).T


def save_displacement_field(path, displacement, affine, units="voxels"):
    """Write a displacement field as a NIfTI vector image (ITK, Slicer, FreeSurfer).

    Convention: a pull-back from the grid of `affine` (the fixed image):
    the image at world point `p` of the output takes the moving image's
    value at `p + D(p)`. The file holds `D` in **RAS millimetres** (world
    axes, not voxel axes), shape `(X, Y, Z, 1, 3)`, float32, intent
    `NIFTI_INTENT_DISPVECT` (1006), sform and qform = `affine`, units mm:
    ITK (5.3 and later) reads it as a displacement field and converts the
    vectors to its LPS world (and 3D Slicer as a grid transform); nibabel
    and FreeSurfer's `surfa` read the RAS vectors as they are. (ANTs writes
    LPS vectors with intent `NIFTI_INTENT_VECTOR`; convert with
    `D_lps = D_ras * (-1, -1, 1)`.)

    Args:
        path: the output `.nii` / `.nii.gz` file.
        displacement: `(X, Y, Z, 3)` array: voxels of the grid (component
            `i` along array axis `i`) with `units="voxels"`, or RAS mm with
            `units="mm"`.
        affine: 4 x 4 voxel-to-world matrix of the grid (the array's voxel
            order, e.g. RAS+ for arrays from `load_volume`).
        units: `"voxels"` or `"mm"`. Defaults to `"voxels"`.

    Returns:
        The path, as a string.

    Raises:
        ValueError: for a bad field, affine, units or file extension.
    """
    nibabel = _nibabel()
    displacement = _check_field(displacement, "displacement")
    affine = _check_affine(affine)
    if units not in ("voxels", "mm"):
        raise ValueError(
            f"Expected `units` to be 'voxels' or 'mm'. Received: units={units!r}"
        )
    path = os.fspath(path)
    if not path.endswith((".nii", ".nii.gz")):
        raise ValueError(
            "Expected a NIfTI path (.nii or .nii.gz) for a displacement field. "
            f"Received: path={path!r}"
        )
    if units == "voxels":
        displacement = displacement_to_world(displacement, affine)
    data = np.asarray(displacement, dtype="float32")[:, :, :, None, :]
    image = nibabel.Nifti1Image(data, affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    image.header.set_xyzt_units("mm")
    image.header.set_intent(DISPLACEMENT_INTENT, (), name="displacement")
    nibabel.save(image, path)
    return path


def load_displacement_field(path, units="voxels"):
    """Read a displacement field written by `save_displacement_field`, in RAS+.

    The grid is brought to RAS+ voxel order as `load_volume` does (vectors
    are world vectors and need no change); with `units="voxels"` they are
    converted to voxels along the RAS+ array axes.

    Args:
        path: a NIfTI file of shape `(X, Y, Z, 1, 3)` or `(X, Y, Z, 3)`
            holding RAS mm vectors.
        units: `"voxels"` or `"mm"`. Defaults to `"voxels"`.

    Returns:
        `(displacement, affine)`: float32 `(X, Y, Z, 3)` in RAS+ order and
        the 4 x 4 affine of that grid.

    Raises:
        ValueError: for a file that is not such a field, or bad `units`.
    """
    nibabel = _nibabel()
    if units not in ("voxels", "mm"):
        raise ValueError(
            f"Expected `units` to be 'voxels' or 'mm'. Received: units={units!r}"
        )
    image = nibabel.load(os.fspath(path))
    data = np.asarray(image.dataobj, dtype="float32")
    if data.ndim == 5 and data.shape[3] == 1:
        data = data[:, :, :, 0]
    if data.ndim != 4 or data.shape[-1] != 3:
        raise ValueError(
            "Expected a displacement field of shape (X, Y, Z, 1, 3). Received: "
            f"path={os.fspath(path)!r} with shape {image.shape}"
        )
    ras, ras_affine = to_ras(data, image.affine)
    if units == "voxels":
        ras = displacement_to_voxels(ras, ras_affine)
    return np.ascontiguousarray(ras, dtype="float32"), ras_affine
