"""Inference inputs: orientation to RAS+, intensity normalisation, network grid.

A scan given as a path is read with `synthlayers.io.load_volume` (the one
orientation path of synthlayers: voxel axes permuted and flipped to RAS+,
never resampled); an array with an affine goes through `io.to_ras`. The
network grid is the input's field of view at the training voxel size
(`synthlayers.resampling`: centred grids, linear resampling with a Gaussian
pre-blur where it downsamples, nearest neighbour for labels).

Non-finite voxels (NaN, infinity) are refused by default: one of them makes
the percentiles of the normalisation NaN and the whole output background.
`nan_policy="zero"` sets them to 0 instead and says so in a warning.
"""

import os
import warnings

import numpy as np

from synthlayers import io
from synthlayers.resampling import _positive_sizes
from synthlayers.resampling import _same_size
from synthlayers.resampling import resample_image
from synthlayers.resampling import resample_labels
from synthlayers.resampling import resampled_shape
from synthlayers.validation import check_percentiles


def normalize_intensities(image, percentiles=(0.5, 99.5)):
    """Rescale intensities linearly so two percentiles map to 0 and 1, clipped.

    The percentiles are taken over all voxels (background included), as
    SynthSeg's prediction does; a constant image gives zeros.

    Args:
        image: array of any shape.
        percentiles: `(low, high)` percentiles (0-100) mapped to 0 and 1.
            Defaults to `(0.5, 99.5)`.

    Returns:
        A float32 array of the same shape with values in [0, 1].

    Raises:
        ValueError: when `percentiles` is not `(low, high)` with
            `0 <= low < high <= 100`.

    Example:

    >>> import numpy as np
    >>> out = normalize_intensities(np.arange(1000.0))
    >>> float(out.min()), float(out.max())
    (0.0, 1.0)
    """
    low, high = check_percentiles(percentiles)
    image = np.asarray(image, dtype="float32")
    lo, hi = np.percentile(image, (low, high))
    scale = 1.0 / (hi - lo) if hi > lo else 0.0
    return np.clip((image - lo) * scale, 0, 1).astype("float32")


NAN_POLICIES = ("raise", "zero")
"""What to do with non-finite voxels: refuse the scan, or set them to 0."""


def check_finite_voxels(image, nan_policy="raise", name="image", source=None):
    """Refuse, or repair with a warning, the non-finite voxels of a scan.

    One NaN voxel makes the percentiles of `normalize_intensities` NaN and a
    network's output background everywhere, so non-finite voxels (NaN, +inf,
    -inf) are never passed on silently. With `nan_policy="raise"` they are
    an error; with `"zero"` they are set to 0 (the value scanners and
    resampling tools give voxels outside the field of view) before the
    intensities are normalised, and a `UserWarning` gives their count.

    Args:
        image: array of any shape.
        nan_policy: `"raise"` or `"zero"`. Defaults to `"raise"`.
        name: the argument name errors give. Defaults to `"image"`.
        source: where the image comes from (e.g. its file), named in the
            messages, or None. Defaults to None.

    Returns:
        `image` as it is when all its voxels are finite, else a float32 copy
        with the non-finite voxels set to 0 (`"zero"`).

    Raises:
        ValueError: when `nan_policy` is not one of `NAN_POLICIES`, or when
            the image has non-finite voxels and `nan_policy="raise"` (the
            message gives their count).

    Example:

    >>> import numpy as np, warnings
    >>> scan = np.ones((4, 4, 4), "float32")
    >>> scan[0, 0, 0] = np.nan
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     repaired = check_finite_voxels(scan, nan_policy="zero")
    >>> float(repaired[0, 0, 0]), str(caught[0].message)[:38]
    (0.0, 'image: 1 non-finite voxel (NaN or inf)')
    """
    if nan_policy not in NAN_POLICIES:
        raise ValueError(
            f"Expected `nan_policy` to be one of {NAN_POLICIES}. "
            f"Received: nan_policy={nan_policy!r}"
        )
    image = np.asarray(image)
    if not np.issubdtype(image.dtype, np.floating):
        return image  # integers are finite
    finite = np.isfinite(image)
    count = int(finite.size - np.count_nonzero(finite))
    if not count:
        return image
    voxels = f"{count} non-finite voxel{'s' if count > 1 else ''} (NaN or inf)"
    if nan_policy == "raise":
        where = f" in {source}" if source is not None else ""
        raise ValueError(
            f"Expected `{name}` with finite voxels only. Received: {voxels} out "
            f"of {image.size}{where}. Pass nan_policy='zero' to set them to 0."
        )
    warnings.warn(
        f"{name if source is None else source}: {voxels} out of {image.size} "
        "set to 0 (nan_policy='zero').",
        UserWarning,
        stacklevel=2,
    )
    return np.where(finite, image, 0).astype("float32")


class _Grid:
    """The network grid at `target` voxel size over an input grid.

    Axes whose voxel count and size (within 0.1 %) do not change are left
    alone; when none changes the arrays pass through untouched.
    """

    def __init__(self, shape, voxel_sizes, target):
        self.input_shape = tuple(shape)
        self.voxel_sizes = tuple(voxel_sizes)
        self.target = self.voxel_sizes if target is None else tuple(target)
        self.shape = resampled_shape(self.input_shape, self.voxel_sizes, self.target)
        self.axes = [
            a
            for a in range(len(self.shape))
            if self.shape[a] != self.input_shape[a]
            or not _same_size(self.voxel_sizes[a], self.target[a])
        ]

    def to_network(self, x):
        """Linear resampling of `x` (spatial axes first) onto the network grid."""
        if not self.axes:
            return x
        return resample_image(x, self.voxel_sizes, self.target, self.shape)

    def to_input(self, x):
        """Linear resampling of `x` from the network grid back onto the input."""
        if not self.axes:
            return x
        return resample_image(x, self.target, self.voxel_sizes, self.input_shape)

    def nearest_to_input(self, labels):
        """Nearest-neighbour resampling of integer `labels` onto the input."""
        if not self.axes:
            return labels
        return resample_labels(labels, self.target, self.voxel_sizes, self.input_shape)


def _is_path(image):
    return isinstance(image, (str, bytes, os.PathLike))


def _load_path(path, voxel_size, affine):
    if voxel_size is not None or affine is not None:
        raise ValueError(
            "Expected `voxel_size` and `affine` to be None for a file (the "
            f"header gives them). Received: voxel_size={voxel_size!r}, "
            f"affine={affine!r}"
        )
    volume = io.load_volume(path, dtype="float32")
    data = volume.data
    if data.ndim > 3 and all(n == 1 for n in data.shape[3:]):
        data = data.reshape(data.shape[:3])  # e.g. (x, y, z, 1) files
    if data.ndim != 3:
        raise ValueError(
            "Expected a 3D volume. Received: "
            f"{os.fspath(path)!r} with shape {volume.original_shape}"
        )
    return data, volume.voxel_sizes, volume.to_original, volume.original_affine


def _prepare(image, voxel_size, affine, nan_policy="raise"):
    """RAS data, RAS voxel sizes, a function back to the input order, its affine.

    A path loads with `io.load_volume`; a nibabel image or an array with
    `affine` is brought to RAS+ with `io.to_ras`; an array with `voxel_size`
    (or nothing: 1 mm) is taken as RAS+ already. The affine returned is the
    one to write results with in the input's voxel order (None for a 2D
    array). Non-finite voxels follow `nan_policy` (`check_finite_voxels`).
    """
    if nan_policy not in NAN_POLICIES:
        raise ValueError(
            f"Expected `nan_policy` to be one of {NAN_POLICIES}. "
            f"Received: nan_policy={nan_policy!r}"
        )
    data, sizes, to_input_order, save_affine = _prepare_finite(
        image, voxel_size, affine
    )
    source = os.fspath(image) if _is_path(image) else None
    data = check_finite_voxels(data, nan_policy, source=source)
    return data, sizes, to_input_order, save_affine


def _prepare_finite(image, voxel_size, affine):
    if _is_path(image):
        return _load_path(image, voxel_size, affine)
    if hasattr(image, "dataobj") and hasattr(image, "affine"):  # nibabel image
        if affine is not None:
            raise ValueError(
                "Expected `affine=None` for a nibabel image (it has its own). "
                f"Received: affine={affine!r}"
            )
        image, affine = np.asanyarray(image.dataobj), image.affine
    image = np.asarray(image, dtype="float32")
    if image.ndim not in (2, 3):
        raise ValueError(
            "Expected a 2D or 3D image (spatial axes only), or a path. "
            f"Received: image.shape={image.shape}"
        )
    if affine is not None:
        if voxel_size is not None:
            raise ValueError(
                "Expected only one of `voxel_size` and `affine`. Received: "
                f"voxel_size={voxel_size!r}, affine=<4 x 4 matrix>"
            )
        if image.ndim != 3:
            raise ValueError(
                "Expected a 3D image with `affine`. Received: "
                f"image.shape={image.shape}"
            )
        ras, ras_affine = io.to_ras(image, affine)
        affine = np.asarray(affine, dtype="float64")
        return (
            np.ascontiguousarray(ras),
            io.voxel_sizes(ras_affine),
            lambda x: io.from_ras(x, affine),
            affine,
        )
    sizes = _positive_sizes(
        1.0 if voxel_size is None else voxel_size, image.ndim, "voxel_size"
    )
    save_affine = np.diag([*sizes, 1.0]) if image.ndim == 3 else None
    return image, sizes, lambda x: x, save_affine
