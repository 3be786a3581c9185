"""SynthSeg's training label maps and label tables: where they are, how to read them."""

import glob
import numbers
import os

import numpy as np

from synthlayers.data.registry import DATA_DIR_ENV
from synthlayers.data.registry import SYNTHSEG_LABEL_MAP_FILES
from synthlayers.data.registry import SYNTHSEG_LABEL_MAP_NUMBERS
from synthlayers.data.registry import fetch_data


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


def fetch_synthseg_label_maps(subjects=None, data_dir=None, cache_dir=None, **kwargs):
    """Paths of SynthSeg's training label maps, downloaded if needed.

    The maps are 256^3 whole-head label maps at 1 mm (FreeSurfer label
    values, extra-cerebral labels included); load one with `load_label_map`
    and prepare it with `crop_to_bounding_box` and `compact_labels`.

    Args:
        subjects: numbers of the maps (1 to 20, as in `training_seg_01`);
            `None` for all 20. Defaults to `None`.
        data_dir: a local data directory, as in `fetch_data`. Defaults to
            `None`.
        cache_dir: the download cache, as in `fetch_data`. Defaults to
            `None`.
        **kwargs: further arguments of `fetch_data` (`base_urls`, `timeout`,
            `verbose`, `retries`).

    Returns:
        A list of paths (strings), in the order of `subjects`.

    Raises:
        ValueError: for a subject outside 1..20.
        FileNotFoundError, DownloadError: as `fetch_data`.
    """
    if subjects is None:
        subjects = SYNTHSEG_LABEL_MAP_NUMBERS
    if isinstance(subjects, numbers.Integral):
        subjects = [subjects]
    subjects = list(subjects)
    if not subjects or not all(
        isinstance(s, numbers.Integral)
        and not isinstance(s, bool)
        and s in SYNTHSEG_LABEL_MAP_NUMBERS
        for s in subjects
    ):
        raise ValueError(
            "`subjects` must be None or a non-empty list of integers in 1..20. "
            f"Received: subjects={subjects!r}"
        )
    files = [SYNTHSEG_LABEL_MAP_FILES[int(s) - 1] for s in subjects]
    directory = fetch_data(files, data_dir=data_dir, cache_dir=cache_dir, **kwargs)
    return [os.path.join(directory, *f.split("/")) for f in files]
