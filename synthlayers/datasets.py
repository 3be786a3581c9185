"""Label maps for synthesis: made in code or SynthSeg's, fetched, prepared, fed.

- `phantom_label_map`: a brain-like label map made in code.
- `fetch_data` and friends: SynthSeg's training label maps and label tables
  and voxelmorph's test scan, from a local directory or downloaded once at
  pinned commits into a cache, SHA-256 checked.
- `resample_label_map`, `compact_labels`, `crop_to_bounding_box`: NumPy
  preparation of label maps, run once before training.
- `LabelMapFeed`: random batches (or 2D slices) of label maps for
  `model.fit`; the synthesis itself runs in the model graph.
"""

import glob
import hashlib
import http.client
import numbers
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from typing import NamedTuple

import keras
import numpy as np

from synthlayers.validation import check_axes

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
    tables), laid out as in `DATA_FILES`. This function only names it:
    `fetch_data` uses it when it is set and downloads the files into a cache
    otherwise.

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


# --- Pinned files, checksums and download ------------------------------------

CACHE_DIR_ENV = "SYNTHLAYERS_CACHE_DIR"
"""Environment variable naming the download cache (see `local_cache_dir`)."""

SYNTHSEG_COMMIT = "66342c1f05e5"
"""Commit of github.com/BBillot/SynthSeg the SynthSeg files are pinned to."""

VOXELMORPH_COMMIT = "ca28315d0ba2"
"""Commit of github.com/voxelmorph/voxelmorph the test scan is pinned to."""

_GITHUB_RAW = "https://raw.githubusercontent.com"

BASE_URLS = {
    "synthseg": f"{_GITHUB_RAW}/BBillot/SynthSeg/{SYNTHSEG_COMMIT}",
    "voxelmorph": f"{_GITHUB_RAW}/voxelmorph/voxelmorph/{VOXELMORPH_COMMIT}",
}
"""Base URL of each source repository at its pinned commit."""


class DataFile(NamedTuple):
    """One downloadable file: its source, upstream path and SHA-256."""

    source: str
    path: str
    sha256: str


# SHA-256 of SynthSeg's `data/labels_classes_priors/*.npy` and
# `data/labels table.txt` (saved as `labels_table.txt`).
_SYNTHSEG_LABEL_SHA256 = {
    "generation_classes.npy": (
        "cbbda0ac245b0bd6bedf2b2871963c5d2b9e2859febcf2366a3bde8d1c40d9fe"
    ),
    "generation_classes_contrast_specific.npy": (
        "c3a9226733a1a70e8cb55259800032177ccfdf8da27221e559defb0c777b865c"
    ),
    "generation_labels.npy": (
        "16f140384f8fa9fde1fb19ba0e924ef7016a1d4a8d06c8763fc92e1e64686baf"
    ),
    "labels_table.txt": (
        "c10ccfad46b8934ef340e1e9dfe58a6e86483c21c5b6b5192ab61c4f44a3496f"
    ),
    "prior_means_t1.npy": (
        "69b3f3cfd51f07de7309569ceacbd51f7b99d20a571f33cdf4f7d60214dc7677"
    ),
    "prior_stds_t1.npy": (
        "61e67f8edde93fd3e42dd1fb8f872d1950887f2a28e24ab3aa3d5f23344ec37c"
    ),
    "synthseg_denoiser_labels_2.0.npy": (
        "71f9a408057419ffdec3e71d6dd66d3b29d5391fa59a3ecd2700b629084f02b9"
    ),
    "synthseg_parcellation_labels.npy": (
        "85aeb75d0d10d7c5968269a9b1bc0a1b87739a3de6d3fcaa8b294ea4dd2af46a"
    ),
    "synthseg_parcellation_names.npy": (
        "ea78f9b7e4899608e1ac2318ebf649a1d5efcd806a6342e52ae5b5178926903d"
    ),
    "synthseg_qc_labels.npy": (
        "ffc233cd75758027aaa1f6785d00a14a2817a8a160fc090e35dcc9a02fa30a8f"
    ),
    "synthseg_qc_labels_2.0.npy": (
        "a0c62354beac265ef31e0c97056f16d6b2058cddc2dfdc1d602d515248967bd4"
    ),
    "synthseg_qc_names.npy": (
        "a09b909a645157c960f31747ee30507a510a6c16e172f7d1d45be44284923277"
    ),
    "synthseg_qc_names_2.0.npy": (
        "08d123a2b0ad6b630cd36d915ae71c486844f4124d1d82bb7d3dd983e4eaf852"
    ),
    "synthseg_segmentation_labels.npy": (
        "2791fea5ecb0016ea8d76c5d59591aa7d8f3cfa1fc005f30169e894d3dbacff9"
    ),
    "synthseg_segmentation_labels_2.0.npy": (
        "5ef25ec33fe917ac99f30b8f2185b2d77121136ee411b9c4970c0b59be615ed8"
    ),
    "synthseg_segmentation_names.npy": (
        "858462272f51dbcfb292439c31f5729b16fe0549644872f12eca3f06b0e30c5f"
    ),
    "synthseg_segmentation_names_2.0.npy": (
        "234eb6d514e10d6ebd748a8b30a1d12d9426fd874c607e37852406fae8f290fc"
    ),
    "synthseg_topological_classes.npy": (
        "44bbe2ab640e193003dbc9c13e6b4c1e04bbf42d79322eab9680d3c75feb0b39"
    ),
    "synthseg_topological_classes_2.0.npy": (
        "650b4b96834485c1e6d7421de4af74da80d861e6b2a39ef1164389bde3a5e14a"
    ),
}

# SHA-256 of SynthSeg's `data/training_label_maps/training_seg_XX.nii.gz`.
_SYNTHSEG_LABEL_MAP_SHA256 = {
    1: "edbf1229a0552f8ce37438d02f59e810583b71b0a1b4d31dc38e5e2b2517acb1",
    2: "65e64c6b9415f389dfda5182ec3a269836925b04166ea82f47b230e54980d0a4",
    3: "f746e2f90e4dccd7bbbdc18bdd6374e455ddb7fc044504a0a42edc8507cf1aa0",
    4: "fbcf9d5d3b946dc53cff2e9954abb8c8172960ac35b1bf80c3ca240b4feda140",
    5: "a53baa7b0faea832d45f8a5b9a234b2b6d4ca92bf5c98baeada4a935cc2f1183",
    6: "57d8c612469359da78b7c16647cc6979be461eb03b59805e7ebded51554f9ead",
    7: "feaa1e8f320e037709a51e30881fe8076a45fc06611a09bbd87e76f8f3f89826",
    8: "f4a9d39c5c64bc5457de84b10a4c4b47f3bb6257e9f396ffa61d290015f178d2",
    9: "6f41f2b755c97185167d887d95180ca4c754578f81cd30fe8119df1e20bb27d5",
    10: "4a0147bf1d52c6853176777554165d79a01656ddb8f8474da48b65d6218b664e",
    11: "02e468bbb652ff0da18eeb73932f09813150ef95155ba7669831849da8517196",
    12: "5d0a47dd3ff4d821cc758e388a49da5744bf86dee423ed93bf727472a8454d8d",
    13: "d11cf676fbd5b9316fe30acbca98c854cf88dbcee74a5fe22092ac91ccd8d3a1",
    14: "7b8d1783c1b5b71b454644169d848b28fa57a33ca4a9b49ff88ad897b8aea570",
    15: "a896e39351622c2e138195780ba267811d7d162df0da0091126550f5de3b74ff",
    16: "f48c442569883055440a930ad098b4e747d72deb6369f529e4486c36b0cbfe81",
    17: "b3497de68fe813494b619d71513bafc872b7e367ee442decd8fabc094f4402fc",
    18: "dbf3b2297907c88481594a2441a47aa13c75452cd7323fec0313b785b04c9671",
    19: "719d714096fdd3c0964ad9dae6115cef9de8d93a25105504879b0dfa844da0f8",
    20: "4c2ab7e6a7711a6e00b7e6c6b40d5fd8c318d0aea3c472248b97d9d4c8cea555",
}

_VXM_TEST_SCAN_SHA256 = (
    "32b14f2d7027518d9b3689ca0bdb908a1ed402db1a61ff2eb4c8184a475b12e0"
)

SYNTHSEG_LABEL_MAP_FILES = tuple(
    f"synthseg_label_maps/training_seg_{i:02d}.nii.gz"
    for i in sorted(_SYNTHSEG_LABEL_MAP_SHA256)
)
"""Local paths of SynthSeg's 20 training label maps (256^3, 1 mm, ~1.6 MB)."""

SYNTHSEG_LABEL_FILES = tuple(
    f"synthseg_labels/{name}" for name in sorted(_SYNTHSEG_LABEL_SHA256)
)
"""Local paths of SynthSeg's label tables, priors and `labels_table.txt`."""

VXM_TEST_SCAN_FILE = "vxm_test_scan.npz"
"""Local path of voxelmorph's test scan (a T1w MRI and its segmentation)."""

DATA_FILES = {
    **{
        local: DataFile(
            "synthseg",
            f"data/training_label_maps/{os.path.basename(local)}",
            _SYNTHSEG_LABEL_MAP_SHA256[number],
        )
        for number, local in zip(
            sorted(_SYNTHSEG_LABEL_MAP_SHA256), SYNTHSEG_LABEL_MAP_FILES
        )
    },
    **{
        f"synthseg_labels/{name}": DataFile(
            "synthseg",
            "data/labels table.txt"
            if name == "labels_table.txt"
            else f"data/labels_classes_priors/{name}",
            sha256,
        )
        for name, sha256 in sorted(_SYNTHSEG_LABEL_SHA256.items())
    },
    VXM_TEST_SCAN_FILE: DataFile(
        "voxelmorph", "data/test_scan.npz", _VXM_TEST_SCAN_SHA256
    ),
}
"""Every file `fetch_data` knows: `{local path: DataFile(source, path, sha256)}`.

The local path is relative to the data directory (`/` separated); `source`
is a key of `BASE_URLS` and `path` the file's path in that repository.
"""


class DownloadError(OSError):
    """A data file could not be downloaded, or failed its SHA-256 check."""


def local_cache_dir(path=None):
    """The download cache: `path`, else `$SYNTHLAYERS_CACHE_DIR`, else default.

    The default is `~/.cache/synthlayers`. `fetch_data` lays the cache out
    like a data directory (see `DATA_FILES`), so it can also serve as
    `$SYNTHLAYERS_DATA_DIR`.

    Args:
        path: a directory, or None. Defaults to None.

    Returns:
        The directory as a string (not created here).
    """
    if path is None:
        path = os.environ.get(CACHE_DIR_ENV) or os.path.join(
            "~", ".cache", "synthlayers"
        )
    return os.path.expanduser(os.fspath(path))


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_files(files):
    if files is None:
        return list(DATA_FILES)
    if isinstance(files, (str, os.PathLike)):
        files = [files]
    try:
        files = [os.fspath(f).replace(os.sep, "/") for f in files]
    except TypeError:
        raise ValueError(
            "`files` must be None or a list of local paths (keys of "
            f"`DATA_FILES`). Received: files={files!r}"
        ) from None
    unknown = [f for f in files if f not in DATA_FILES]
    if unknown:
        raise ValueError(
            f"Unknown data files {unknown}. Expected keys of `DATA_FILES`, e.g. "
            f"{VXM_TEST_SCAN_FILE!r} or {SYNTHSEG_LABEL_MAP_FILES[0]!r}. "
            f"Received: files={files!r}"
        )
    return list(dict.fromkeys(files))


def _check_base_urls(base_urls):
    if base_urls is None:
        return dict(BASE_URLS)
    if not isinstance(base_urls, dict) or not set(base_urls) <= set(BASE_URLS):
        raise ValueError(
            "`base_urls` must be None or a dict whose keys are among "
            f"{sorted(BASE_URLS)}. Received: base_urls={base_urls!r}"
        )
    return {**BASE_URLS, **base_urls}


def _file_url(name, base_urls):
    """The URL of data file `name`: its source's base URL and quoted path."""
    entry = DATA_FILES[name]
    return f"{base_urls[entry.source].rstrip('/')}/{urllib.parse.quote(entry.path)}"


def _download(name, url, target, sha256, timeout, verbose):
    """Download `url` to a temporary file, check it, rename it to `target`."""
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    if verbose:
        print(f"synthlayers: downloading {url} -> {target}", file=sys.stderr)
    handle, partial = tempfile.mkstemp(
        dir=directory, prefix=f".{os.path.basename(target)}.", suffix=".part"
    )
    advice = (
        "To work without downloads, get the files yourself and point "
        f"${DATA_DIR_ENV} (or `data_dir`) at a directory laid out as in "
        "`DATA_FILES`; or give a mirror with `base_urls`."
    )
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    for chunk in iter(lambda: response.read(1 << 20), b""):
                        digest.update(chunk)
                        out.write(chunk)
            except urllib.error.HTTPError as error:
                error.close()
                raise DownloadError(
                    f"Could not download {name!r} from {url}: HTTP {error.code} "
                    f"{error.reason}. {advice}"
                ) from None
            except (
                urllib.error.URLError,
                http.client.HTTPException,
                ConnectionError,
                TimeoutError,
            ) as error:
                reason = getattr(error, "reason", error)
                raise DownloadError(
                    f"Could not download {name!r} from {url}: {reason}. {advice}"
                ) from None
        received = digest.hexdigest()
        if received != sha256:
            raise DownloadError(
                f"Checksum mismatch for {name!r} downloaded from {url}: expected "
                f"SHA-256 {sha256}, received {received}. The file was not kept. "
                f"{advice}"
            )
        os.replace(partial, target)
        partial = None
    finally:
        if partial is not None and os.path.exists(partial):
            os.remove(partial)


def fetch_data(
    files=None,
    data_dir=None,
    cache_dir=None,
    base_urls=None,
    timeout=60.0,
    verbose=True,
):
    """A local data directory holding `files`, downloading them if needed.

    Resolution order:

    1. `data_dir`, else `$SYNTHLAYERS_DATA_DIR` (see `local_data_dir`): a
       directory you provide; it is used as it is (the files must be there;
       nothing is downloaded or checked).
    2. Otherwise the cache (`cache_dir`, else `$SYNTHLAYERS_CACHE_DIR`, else
       `~/.cache/synthlayers`, see `local_cache_dir`). Every requested file
       missing from the cache, or whose SHA-256 differs from `DATA_FILES`,
       is downloaded from its repository at the pinned commit (`BASE_URLS`:
       SynthSeg at `SYNTHSEG_COMMIT`, voxelmorph at `VOXELMORPH_COMMIT`) to a
       temporary file, checked against its SHA-256 and only then renamed into
       place, so a fetch never leaves a partial or wrong file in the cache.
       Files already in the cache with the right hash are not downloaded
       again.

    Both layouts are the same (`DATA_FILES`):
    `synthseg_label_maps/training_seg_01..20.nii.gz` (SynthSeg's training
    label maps), `synthseg_labels/*.npy` and `synthseg_labels/labels_table.txt`
    (SynthSeg's label tables and priors), `vxm_test_scan.npz` (voxelmorph's
    test scan). The files are distributed under the Apache License 2.0 of the
    projects they come from.

    Args:
        files: local paths of the files wanted (keys of `DATA_FILES`, e.g.
            `SYNTHSEG_LABEL_FILES` or `[VXM_TEST_SCAN_FILE]`); `None` for all
            (about 37 MB). Defaults to `None`.
        data_dir: a local data directory that takes precedence over the
            environment and the cache. Defaults to `None`.
        cache_dir: the download cache. Defaults to `None`
            (`$SYNTHLAYERS_CACHE_DIR`, else `~/.cache/synthlayers`).
        base_urls: `{source: base URL}` replacing entries of `BASE_URLS`
            (a mirror); a file's URL is the base URL, `/`, and its quoted
            upstream path. Defaults to `None`.
        timeout: seconds to wait for the server, per connection. Defaults to
            `60.0`.
        verbose: print one line per download to stderr. Defaults to `True`.

    Returns:
        The data directory (a string).

    Raises:
        ValueError: for an unknown file or a bad argument.
        FileNotFoundError: when a requested file is missing from the given
            data directory.
        DownloadError: when a download fails (HTTP error, unreachable host)
            or its SHA-256 differs from the pinned one; the message names the
            file, the URL and, for a mismatch, both hashes.

    Example:

    >>> data_dir = fetch_data(SYNTHSEG_LABEL_FILES)  # doctest: +SKIP
    >>> labels, classes = synthseg_generation_labels(data_dir)  # doctest: +SKIP
    """
    files = _check_files(files)
    urls = _check_base_urls(base_urls)
    if (
        not isinstance(timeout, numbers.Real)
        or isinstance(timeout, bool)
        or not (timeout > 0)
    ):
        raise ValueError(
            f"`timeout` must be a positive number of seconds. Received: "
            f"timeout={timeout!r}"
        )
    local = local_data_dir(data_dir)
    if local is not None:
        missing = [f for f in files if not os.path.isfile(os.path.join(local, f))]
        if missing:
            where = "`data_dir`" if data_dir is not None else f"${DATA_DIR_ENV}"
            raise FileNotFoundError(
                f"Data files {missing} not found in {local!r} (given by {where}). "
                f"Copy them there, or unset {where} to download them into the "
                "cache."
            )
        return local
    cache = local_cache_dir(cache_dir)
    for name in files:
        entry = DATA_FILES[name]
        target = os.path.join(cache, *name.split("/"))
        if os.path.isfile(target) and _sha256(target) == entry.sha256:
            continue
        _download(name, _file_url(name, urls), target, entry.sha256, timeout, verbose)
    return cache


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
            `verbose`).

    Returns:
        A list of paths (strings), in the order of `subjects`.

    Raises:
        ValueError: for a subject outside 1..20.
        FileNotFoundError, DownloadError: as `fetch_data`.
    """
    if subjects is None:
        subjects = sorted(_SYNTHSEG_LABEL_MAP_SHA256)
    if isinstance(subjects, numbers.Integral):
        subjects = [subjects]
    subjects = list(subjects)
    if not subjects or not all(
        isinstance(s, numbers.Integral)
        and not isinstance(s, bool)
        and s in _SYNTHSEG_LABEL_MAP_SHA256
        for s in subjects
    ):
        raise ValueError(
            "`subjects` must be None or a non-empty list of integers in 1..20. "
            f"Received: subjects={subjects!r}"
        )
    files = [SYNTHSEG_LABEL_MAP_FILES[int(s) - 1] for s in subjects]
    directory = fetch_data(files, data_dir=data_dir, cache_dir=cache_dir, **kwargs)
    return [os.path.join(directory, *f.split("/")) for f in files]


def load_vxm_test_scan(data_dir=None, cache_dir=None, canonical=True, **kwargs):
    """voxelmorph's test scan: a real T1-weighted MRI and its segmentation.

    A skull-stripped scan, intensities in [0, 1], with its FreeSurfer
    segmentation (label values such as 2/41 cerebral white matter, 24 CSF,
    77 white-matter hypointensities, 251-255 corpus callosum). The file
    stores no header: its arrays (160, 192, 224) look like a crop of
    FreeSurfer's conformed space (1 mm voxels, LIA orientation: axes run to
    the left, inferior and anterior), as the positions of left and right,
    cerebellum, brainstem and caudate labels show.
    With `canonical=True` both arrays are reoriented to RAS+ like
    `load_label_map` (axes transposed and flipped, no interpolation), giving
    shape (160, 224, 192).

    Args:
        data_dir: a local data directory, as in `fetch_data`. Defaults to
            `None`.
        cache_dir: the download cache, as in `fetch_data`. Defaults to
            `None`.
        canonical: reorient to RAS+. Defaults to `True`.
        **kwargs: further arguments of `fetch_data` (`base_urls`, `timeout`,
            `verbose`).

    Returns:
        `(image, segmentation)`: a float32 and an int32 array of equal shape.

    Raises:
        FileNotFoundError, DownloadError: as `fetch_data`.
    """
    directory = fetch_data(
        [VXM_TEST_SCAN_FILE], data_dir=data_dir, cache_dir=cache_dir, **kwargs
    )
    with np.load(os.path.join(directory, VXM_TEST_SCAN_FILE)) as scan:
        image = scan["vol"].astype("float32")
        segmentation = np.rint(scan["seg"]).astype("int32")
    if canonical:
        from synthlayers.io import vxm_test_scan_to_ras

        image, segmentation = (
            np.ascontiguousarray(vxm_test_scan_to_ras(a)) for a in (image, segmentation)
        )
    return image, segmentation


# --- Label-map preparation (NumPy, once, before training) --------------------


def _check_integer_map(labels_map, name="labels_map"):
    labels_map = np.asarray(labels_map)
    if not np.issubdtype(labels_map.dtype, np.integer) or labels_map.ndim < 1:
        raise ValueError(
            f"`{name}` must be an integer array. Received: {name} with dtype "
            f"{labels_map.dtype} and shape {labels_map.shape}"
        )
    return labels_map


def _per_axis(value, name, ndim, positive=True, integer=False):
    """A number or one number per axis -> a tuple of `ndim` numbers."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, np.ndarray):
        values = list(value.ravel())
    elif isinstance(value, (tuple, list)):
        values = list(value)
    else:
        values = [value] * ndim
    ok = len(values) == ndim and all(
        isinstance(v, kind)
        and not isinstance(v, bool)
        and np.isfinite(v)
        and (v > 0 if positive else v >= 0)
        for v in values
    )
    if not ok:
        what = "integer" if integer else "number"
        sign = "positive" if positive else "non-negative"
        raise ValueError(
            f"`{name}` must be a {sign} {what} or a list of {ndim}, one per axis. "
            f"Received: {name}={value!r}"
        )
    return tuple(int(v) if integer else float(v) for v in values)


def resample_label_map(labels_map, voxel_sizes, target_voxel_size):
    """Resample a label map to another voxel size, nearest neighbour.

    Each output voxel takes the label of the input voxel that contains its
    centre (ties, a centre on a boundary, go to the upper voxel, as with
    `scipy.ndimage.zoom(..., order=0, grid_mode=True)`). Along each axis the
    output has `round(n * voxel_size / target)` voxels (halves rounded up)
    spanning the same field of view, centred on the same point; when
    `n * voxel_size / target` is a whole number the grids share their edges,
    so halving the resolution keeps voxels 1, 3, 5, ... and doubling it
    repeats each voxel twice. No label
    that is not in the input appears. Nothing is done (the input is returned)
    when the voxel sizes already match. The affine is not handled: this works
    on arrays.

    Args:
        labels_map: a label map (any array, 1 to 3 axes; usually integer).
        voxel_sizes: its voxel size along each axis (mm), e.g. the
            `voxel_sizes` returned by `load_label_map`.
        target_voxel_size: the training voxel size (mm): a number, or one per
            axis.

    Returns:
        The resampled label map, same dtype.

    Raises:
        ValueError: for non-positive or mismatched voxel sizes.

    Example:

    >>> import numpy as np
    >>> resample_label_map(np.arange(8), (1.0,), 2.0)
    array([1, 3, 5, 7])
    """
    labels_map = np.asarray(labels_map)
    ndim = labels_map.ndim
    if ndim < 1:
        raise ValueError(
            f"`labels_map` must have at least one axis. Received: labels_map "
            f"with shape {labels_map.shape}"
        )
    sizes = _per_axis(voxel_sizes, "voxel_sizes", ndim)
    targets = _per_axis(target_voxel_size, "target_voxel_size", ndim)
    if np.allclose(sizes, targets, rtol=1e-6, atol=0):
        return labels_map
    indices = []
    for n, size, target in zip(labels_map.shape, sizes, targets):
        ratio = target / size
        count = max(1, int(np.floor(n / ratio + 0.5)))
        centres = n / 2 + (np.arange(count) - (count - 1) / 2) * ratio
        # Round away float noise so that exact ties go up consistently.
        index = np.floor(np.round(centres, 6)).astype("int64")
        indices.append(np.clip(index, 0, n - 1))
    return labels_map[np.ix_(*indices)]


def _check_generation_labels(generation_labels):
    values = np.asarray(generation_labels)
    if (
        values.size == 0
        or not np.issubdtype(values.dtype, np.integer)
        or len(np.unique(values)) != values.size
    ):
        raise ValueError(
            "`generation_labels` must be a non-empty list of unique integers. "
            f"Received: generation_labels={generation_labels!r}"
        )
    return values.ravel().astype("int64")


def compact_labels(labels_map, generation_labels):
    """Replace label values by their index in `generation_labels`, once.

    Label `generation_labels[i]` becomes `i`, so a map with K generation
    labels fits in uint8 (K <= 256) or int16 (K <= 32768) and needs no
    lookup in the graph. Note the order: the position in `generation_labels`
    (so that `classes[i]` of `synthseg_generation_labels` is the class of
    index `i`), not the sorted order of `RemapLabels`' compact mode.

    A compacted map is no longer in FreeSurfer values: give `LabelsToImage`
    `labels=range(K)` with the same `classes`, targets as
    `{index: target}`, and the left/right swap of flips as index pairs
    (`LabelsToImage.synthseg` would otherwise look up FreeSurfer pairs among
    the indices). `compact_label_arguments(generation_labels, ...)` builds
    exactly these arguments.

    Args:
        labels_map: an integer label map (any shape).
        generation_labels: the label values, unique; every value of
            `labels_map` must be among them.

    Returns:
        The index map: uint8 for up to 256 labels, int16 up to 32768, else
        int32; same shape.

    Raises:
        ValueError: listing the labels of `labels_map` missing from
            `generation_labels`.

    Example:

    >>> import numpy as np
    >>> compact_labels(np.array([[0, 41], [2, 2]]), [0, 2, 41])
    array([[0, 2],
           [1, 1]], dtype=uint8)
    """
    labels_map = _check_integer_map(labels_map)
    values = _check_generation_labels(generation_labels)
    count = values.size
    dtype = "uint8" if count <= 256 else "int16" if count <= 32768 else "int32"
    if labels_map.size == 0:
        return np.zeros(labels_map.shape, dtype)
    low, high = min(int(labels_map.min()), 0), int(labels_map.max())
    if high - low < 1 << 24:
        # A dense table over the map's range: one gather, fast at 256^3.
        table = np.full(high - low + 1, -1, "int16" if count < 32768 else "int32")
        inside = (values >= low) & (values <= high)
        table[values[inside] - low] = np.nonzero(inside)[0]
        index = table[labels_map if low == 0 else labels_map.astype("int64") - low]
    else:
        order = np.argsort(values)
        position = np.clip(np.searchsorted(values[order], labels_map), 0, count - 1)
        index = np.where(values[order][position] == labels_map, order[position], -1)
    unknown = index < 0
    if np.any(unknown):
        missing = np.unique(labels_map[unknown])
        shown = ", ".join(str(v) for v in missing[:20])
        more = f" and {missing.size - 20} more" if missing.size > 20 else ""
        raise ValueError(
            f"`labels_map` has {missing.size} label value(s) missing from "
            f"`generation_labels`: {shown}{more}. Add them to "
            "`generation_labels` (or remap them first). Received: "
            f"generation_labels={values.tolist()}"
        )
    return index.astype(dtype)


def compact_label_arguments(generation_labels, output_labels=None):
    """`LabelsToImage` arguments for maps compacted with `compact_labels`.

    Returns `labels=[0, ..., K-1]`, the targets `output_labels` as an
    `{index: target label}` dict (the targets keep their label values) and
    the left/right `label_swap` of the FreeSurfer pairs in
    `generation_labels` as index pairs. Pass them with the generation
    classes, e.g.
    `LabelsToImage.synthseg(classes=classes, **compact_label_arguments(...))`;
    on the compacted maps it then gives the same targets as on the original
    maps.

    Args:
        generation_labels: the label values given to `compact_labels`.
        output_labels: target labels: `None` (all generation labels), a list
            (the others become 0) or a `{label: target}` dict, in label
            values. Defaults to `None`.

    Returns:
        A dict with keys `"labels"`, `"output_labels"` and `"label_swap"`
        (`None` when no FreeSurfer left/right pair is present).

    Raises:
        ValueError: when `output_labels` names a label missing from
            `generation_labels`.
    """
    from synthlayers.freesurfer import left_right_swap

    values = _check_generation_labels(generation_labels).tolist()
    index = {v: i for i, v in enumerate(values)}
    if output_labels is None:
        mapping = {v: v for v in values}
    elif isinstance(output_labels, dict):
        mapping = {int(k): int(v) for k, v in output_labels.items()}
    else:
        mapping = {int(v): int(v) for v in np.ravel(output_labels)}
    missing = sorted(set(mapping) - set(index))
    if missing:
        raise ValueError(
            f"`output_labels` names labels missing from `generation_labels`: "
            f"{missing}. Received: output_labels={output_labels!r}"
        )
    swap = {index[a]: index[b] for a, b in left_right_swap(values).items()}
    return {
        "labels": list(range(len(values))),
        "output_labels": {index[k]: v for k, v in mapping.items()},
        "label_swap": swap or None,
    }


def bounding_box(labels_map, margin=0, background=0):
    """The slices of the smallest box holding every non-background voxel.

    Args:
        labels_map: a label map (any number of axes).
        margin: voxels added on each side, clipped at the array's edges: a
            number, or one per axis. Defaults to `0`.
        background: the label outside the box. Defaults to `0`.

    Returns:
        A tuple of slices, one per axis (index any array of the same shape
        with it, e.g. an image to crop alike).

    Raises:
        ValueError: for a bad margin, or when the map is all background.
    """
    labels_map = np.asarray(labels_map)
    margins = _per_axis(margin, "margin", labels_map.ndim, positive=False, integer=True)
    foreground = labels_map != background
    box = []
    for axis, extra in enumerate(margins):
        others = tuple(a for a in range(labels_map.ndim) if a != axis)
        present = np.nonzero(np.any(foreground, axis=others))[0]
        if present.size == 0:
            raise ValueError(
                f"`labels_map` has no voxel other than background={background!r}; "
                f"there is no box to crop to. Received: labels_map with shape "
                f"{labels_map.shape}"
            )
        start = max(0, int(present[0]) - extra)
        stop = min(labels_map.shape[axis], int(present[-1]) + 1 + extra)
        box.append(slice(start, stop))
    return tuple(box)


def crop_to_bounding_box(labels_map, margin=0, background=0):
    """Crop a label map to the box around its non-background voxels.

    Whole-head maps (SynthSeg's are 256^3) often hold much background; a
    crop with a margin of a few voxels keeps every label and shrinks the
    map, before `LabelsToImage` crops or pads to its `output_shape`.

    Args:
        labels_map: a label map (any number of axes).
        margin: voxels kept around the box on each side (clipped at the
            edges): a number, or one per axis. Defaults to `0`.
        background: the label outside the box. Defaults to `0`.

    Returns:
        The cropped label map: a contiguous copy, same dtype.

    Raises:
        ValueError: for a bad margin, or when the map is all background.

    Example:

    >>> import numpy as np
    >>> labels = np.zeros((6, 6), "uint8")
    >>> labels[2:4, 3] = 1
    >>> crop_to_bounding_box(labels, margin=1).shape
    (4, 3)
    """
    labels_map = np.asarray(labels_map)
    return np.ascontiguousarray(
        labels_map[bounding_box(labels_map, margin, background)]
    )


# --- A feed of label maps for model.fit --------------------------------------


class LabelMapFeed(keras.utils.PyDataset):
    """Random batches of label maps, or of their 2D slices, for `model.fit`.

    Only label maps come out: every batch is drawn at random (with
    replacement) from `label_maps` held in memory, and the synthesis of
    images and targets happens in the model graph (e.g. a `LabelsToImage`
    layer at the model's input). Batches are `x` only, no `y`: the model
    computes its loss from the targets it synthesises.

    With `slice_axis`, 3D maps give random 2D slices along that axis, for 2D
    training; `min_foreground` skips slices with almost no foreground.
    Draws are uniform over maps, then over the map's eligible slices. With a
    tuple of axes (e.g. `(1, 2)`: coronal and axial slices of RAS maps, for a
    network that segments either view), each sample first draws its axis,
    uniformly.

    Randomness depends on `(seed, epoch, batch index)` only, so a seeded
    feed repeats exactly whatever the order in which batches are asked for
    (e.g. with `workers > 1`), and each epoch (counted by `on_epoch_end`)
    draws new batches.

    Keep maps compact in memory: crop them (`crop_to_bounding_box`) and store
    label indices (`compact_labels`, uint8) rather than int32 FreeSurfer
    values; the arrays are kept as given, not copied. Batches are cast to
    `dtype`.

    Args:
        label_maps: a list of integer arrays, all of one shape (or, with
            `slice_axis`, 3D arrays whose slices share one shape), spatial
            axes only (no channel axis); or one array with the maps along
            its first axis.
        batch_size: maps (or slices) per batch.
        steps_per_epoch: batches per epoch, the feed's length. Defaults to
            `100`.
        slice_axis: `None` for whole maps, the axis (0, 1 or 2) of the 3D
            maps along which 2D slices are drawn, or a tuple of such axes
            (the slices of all must share one shape). Defaults to `None`.
        min_foreground: with `slice_axis`, the smallest fraction of
            non-zero voxels a slice needs to be drawn, in [0, 1). Defaults to
            `0.0` (every slice).
        dtype: integer dtype of the batches. Defaults to `"int32"`.
        seed: integer seed; `None` draws one. Defaults to `None`.
        **kwargs: `keras.utils.PyDataset` arguments (`workers`,
            `use_multiprocessing`, `max_queue_size`).

    Attributes:
        spatial_shape: the spatial shape of one sample, e.g. for
            `keras.Input((*feed.spatial_shape, 1), dtype=feed.dtype)`.

    Output shape:
        `feed[i]`: an array `(batch_size, *spatial_shape, 1)` of `dtype`.

    Example:

    >>> import numpy as np
    >>> maps = [np.random.randint(0, 4, (20, 24, 16)).astype("uint8")] * 2
    >>> feed = LabelMapFeed(maps, batch_size=3, steps_per_epoch=5, seed=0)
    >>> len(feed), feed[0].shape, feed[0].dtype
    (5, (3, 20, 24, 16, 1), dtype('int32'))
    >>> slices = LabelMapFeed(maps, batch_size=3, slice_axis=1, seed=0)
    >>> slices[0].shape
    (3, 20, 16, 1)
    >>> cubes = [np.random.randint(0, 4, (16, 16, 16)).astype("uint8")]
    >>> LabelMapFeed(cubes, batch_size=2, slice_axis=(1, 2), seed=0)[0].shape
    (2, 16, 16, 1)
    """

    def __init__(
        self,
        label_maps,
        batch_size,
        steps_per_epoch=100,
        slice_axis=None,
        min_foreground=0.0,
        dtype="int32",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(label_maps, np.ndarray):
            label_maps = list(label_maps)
        if not isinstance(label_maps, (list, tuple)) or not label_maps:
            raise ValueError(
                "`label_maps` must be a non-empty list of integer arrays. "
                f"Received: label_maps of type {type(label_maps).__name__}"
            )
        maps = [
            _check_integer_map(m, f"label_maps[{i}]") for i, m in enumerate(label_maps)
        ]
        self.batch_size = _check_positive_int(batch_size, "batch_size")
        self.steps_per_epoch = _check_positive_int(steps_per_epoch, "steps_per_epoch")
        if not (
            isinstance(dtype, str)
            and dtype in ("uint8", "int8", "uint16", "int16", "int32", "int64")
        ):
            raise ValueError(
                "`dtype` must be an integer dtype name such as 'int32'. "
                f"Received: dtype={dtype!r}"
            )
        self.dtype = dtype
        if not (
            isinstance(min_foreground, numbers.Real)
            and not isinstance(min_foreground, bool)
            and 0 <= min_foreground < 1
        ):
            raise ValueError(
                "`min_foreground` must be a number in [0, 1). "
                f"Received: min_foreground={min_foreground!r}"
            )
        self.min_foreground = float(min_foreground)
        if seed is not None and (
            not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0
        ):
            raise ValueError(
                "`seed` must be None or a non-negative integer. "
                f"Received: seed={seed!r}"
            )
        self.seed = seed
        self._entropy = (
            int(np.random.SeedSequence().entropy) if seed is None else int(seed)
        )
        self._epoch = 0
        shapes = {m.shape for m in maps}
        if slice_axis is None:
            if len(shapes) != 1:
                raise ValueError(
                    "`label_maps` must all have one shape (crop or pad them, or "
                    f"draw slices with `slice_axis`). Received shapes: {sorted(shapes)}"
                )
            self.spatial_shape = maps[0].shape
            self._maps = maps
            self._slices = None
        else:
            axes = check_axes(slice_axis, "slice_axis", 3)
            if any(m.ndim != 3 for m in maps):
                raise ValueError(
                    "`slice_axis` needs 3D label maps. Received shapes: "
                    f"{sorted(shapes)}"
                )
            slice_shapes = {
                tuple(s for a, s in enumerate(shape) if a != axis)
                for shape in shapes
                for axis in axes
            }
            if len(slice_shapes) != 1:
                raise ValueError(
                    f"The slices along `slice_axis={slice_axis}` must all have one "
                    f"shape. Received map shapes: {sorted(shapes)}"
                )
            self.spatial_shape = slice_shapes.pop()
            # Per axis: the maps with eligible slices, and those slices.
            self._maps, self._slices = [], []
            for axis in axes:
                others = tuple(a for a in range(3) if a != axis)
                axis_maps, axis_slices = [], []
                for m in maps:
                    fraction = np.count_nonzero(m, axis=others) / np.prod(
                        self.spatial_shape
                    )
                    eligible = np.nonzero(fraction >= self.min_foreground)[0]
                    if eligible.size:
                        axis_maps.append(m)
                        axis_slices.append(eligible)
                if not axis_maps:
                    raise ValueError(
                        "No slice has enough foreground. Expected at least one "
                        f"slice along axis {axis} with a fraction >= "
                        "min_foreground of non-zero voxels. Received: "
                        f"min_foreground={min_foreground!r}"
                    )
                self._maps.append(axis_maps)
                self._slices.append(axis_slices)
            self._axes = axes
            self._map_counts = np.array([len(m) for m in self._maps])
        self.slice_axis = slice_axis

    def __len__(self):
        return self.steps_per_epoch

    def __getitem__(self, index):
        if not 0 <= index < self.steps_per_epoch:
            raise IndexError(
                f"Batch index {index} out of range for a feed of length "
                f"{self.steps_per_epoch}."
            )
        rng = np.random.default_rng([self._entropy, self._epoch, int(index)])
        batch = np.empty((self.batch_size, *self.spatial_shape, 1), self.dtype)
        if self._slices is None:
            picks = rng.integers(0, len(self._maps), self.batch_size)
            for b, pick in enumerate(picks):
                batch[b, ..., 0] = self._maps[pick]
            return batch
        # One axis per sample (drawn only when there are several), then a
        # map, then one of its eligible slices.
        views = (
            rng.integers(0, len(self._axes), self.batch_size)
            if len(self._axes) > 1
            else np.zeros(self.batch_size, "int64")
        )
        picks = rng.integers(0, self._map_counts[views])
        for b, (view, pick) in enumerate(zip(views, picks)):
            slices = self._slices[view][pick]
            position = slices[rng.integers(len(slices))]
            label_map = self._maps[view][pick]
            batch[b, ..., 0] = np.take(label_map, position, axis=self._axes[view])
        return batch

    def on_epoch_end(self):
        """Count the epoch: the next one draws new batches."""
        self._epoch += 1


def _check_positive_int(value, name):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )
    return int(value)
