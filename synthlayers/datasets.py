"""Label maps for synthesis: made in code, or SynthSeg's, read from disk."""

import glob
import os

import numpy as np

# Labels of `phantom_label_map`, FreeSurfer-like values so that the same
# remapping tables can serve real and phantom maps.
PHANTOM_LABELS = {
    0: "background",
    24: "CSF",
    3: "left cerebral cortex",
    2: "left cerebral white matter",
    4: "left lateral ventricle",
    42: "right cerebral cortex",
    41: "right cerebral white matter",
    43: "right lateral ventricle",
    10: "left thalamus",
    49: "right thalamus",
}


def phantom_label_map(shape):
    """A deterministic brain-like label map of `shape` (2D or 3D), int32.

    Nested ellipsoids: CSF around a cortex ribbon around white matter, split
    into left and right hemispheres along the first axis, with lateral
    ventricles and thalami. Labels as in `PHANTOM_LABELS`.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"`shape` must have 2 or 3 entries. Received: shape={shape}")
    # Open (broadcasting) grids keep memory at one label map, even at 256^3.
    axes = np.meshgrid(
        *[np.linspace(-1, 1, n, dtype="float32") for n in shape],
        indexing="ij",
        sparse=True,
    )
    radii = (0.62, 0.8, 0.7)[: len(shape)]

    def ellipsoid(scale, center=(0.0, 0.0, 0.0)):
        return (
            sum(((a - c) / (r * scale)) ** 2 for a, c, r in zip(axes, center, radii))
            <= 1
        )

    left = np.broadcast_to(axes[0] < 0, shape)
    out = np.zeros(shape, "int32")
    out[ellipsoid(1.2)] = 24
    inside = ellipsoid(1.0)
    out[inside] = np.where(left[inside], 3, 42)
    inside = ellipsoid(0.82)
    out[inside] = np.where(left[inside], 2, 41)
    for sign, ventricle, thalamus in ((-1, 4, 10), (1, 43, 49)):
        out[ellipsoid(0.22, (0.22 * sign, -0.15, 0.1))] = ventricle
        out[ellipsoid(0.16, (0.14 * sign, 0.25, -0.05))] = thalamus
    return out


# --- Real label maps on disk -------------------------------------------------

DATA_DIR_ENV = "SYNTHLAYERS_DATA_DIR"
"""Environment variable naming a local data directory (see `local_data_dir`)."""


def local_data_dir(path=None):
    """The local data directory: `path`, else `$SYNTHLAYERS_DATA_DIR`, else None.

    The directory is expected to hold `synthseg_label_maps/training_seg_*.nii.gz`
    and `synthseg_labels/*.npy` (SynthSeg's training label maps and label
    tables). Nothing is downloaded: fetching the files with checksums comes in
    a later release; until then point `path` or `$SYNTHLAYERS_DATA_DIR` at a
    copy.

    Args:
        path: a directory, or None. Defaults to None.

    Returns:
        The directory as a string, or None when neither is given.
    """
    if path is None:
        path = os.environ.get(DATA_DIR_ENV) or None
    return None if path is None else os.fspath(path)


def load_label_map(path):
    """Load a NIfTI/MGH label map as int32 in RAS+ orientation.

    The array is reoriented with `nibabel.as_closest_canonical` (axes permuted
    and flipped so that the first, second and third axes run to the right,
    anterior and superior), so maps stored in different orientations line up.
    Values are rounded before the cast, since label maps are often stored as
    floats.

    Args:
        path: the file (`.nii`, `.nii.gz`, `.mgz`, anything nibabel reads).

    Returns:
        `(labels, voxel_sizes)`: an int32 array of the image's shape and a
        tuple of floats (mm per voxel along each axis of `labels`).
    """
    import nibabel

    image = nibabel.as_closest_canonical(nibabel.load(os.fspath(path)))
    data = np.asarray(image.dataobj)
    if not np.issubdtype(data.dtype, np.integer):
        data = np.rint(data)
    labels = np.ascontiguousarray(data, dtype="int32")
    voxel_sizes = tuple(float(z) for z in image.header.get_zooms()[: labels.ndim])
    return labels, voxel_sizes


def synthseg_label_map_paths(data_dir):
    """Sorted paths of SynthSeg's training label maps under `data_dir`.

    Args:
        data_dir: the data directory (see `local_data_dir`); the maps are
            `data_dir/synthseg_label_maps/training_seg_*.nii.gz`.

    Returns:
        A sorted list of paths (strings).

    Raises:
        ValueError: when no map is found.
    """
    directory = os.path.join(os.fspath(data_dir), "synthseg_label_maps")
    paths = sorted(glob.glob(os.path.join(directory, "training_seg_*.nii.gz")))
    if not paths:
        raise ValueError(
            "No SynthSeg label maps found. Expected files "
            f"training_seg_*.nii.gz in {directory!r} (set `data_dir` or "
            f"${DATA_DIR_ENV}). Received: data_dir={data_dir!r}"
        )
    return paths


def synthseg_generation_labels(data_dir, contrast_specific=False):
    """SynthSeg's generation labels and generation classes.

    Read from `data_dir/synthseg_labels/generation_labels.npy` and
    `generation_classes.npy` (SynthSeg's `data/labels_classes_priors`). The
    54 labels come in SynthSeg's order: 18 labels without a side (background
    first), then 18 left labels, then the 18 matching right labels in the same
    order. Labels of one class share one Gaussian of the intensity mixture:
    with the default classes, similar tissues of one side are grouped (e.g.
    lateral and inferior lateral ventricle, hippocampus and amygdala), left
    and right stay separate classes with the same grouping; with
    `contrast_specific=True` (`generation_classes_contrast_specific.npy`, the
    classes of SynthSeg's T1 priors) left and right share classes too.

    Args:
        data_dir: the data directory (see `local_data_dir`).
        contrast_specific: use the contrast-specific classes. Defaults to
            False.

    Returns:
        `(labels, classes)`: two int32 arrays of equal length, classes in
        `0..K-1`.
    """
    directory = os.path.join(os.fspath(data_dir), "synthseg_labels")
    names = (
        "generation_labels.npy",
        "generation_classes_contrast_specific.npy"
        if contrast_specific
        else "generation_classes.npy",
    )
    paths = [os.path.join(directory, name) for name in names]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ValueError(
            f"SynthSeg label tables not found: {missing}. Expected them in "
            f"{directory!r} (set `data_dir` or ${DATA_DIR_ENV}). "
            f"Received: data_dir={data_dir!r}"
        )
    labels, classes = (np.load(p).astype("int32").ravel() for p in paths)
    if labels.shape != classes.shape:
        raise ValueError(
            "Generation labels and classes must have the same length. "
            f"Received: {labels.shape[0]} labels, {classes.shape[0]} classes"
        )
    return labels, classes
