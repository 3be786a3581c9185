"""Pinned data files: their sources, SHA-256 hashes, the cache and the download.

Every file synthlayers can download is listed in `DATA_FILES` with the
repository it comes from (`"synthseg"` or `"voxelmorph"`, pinned to a full
commit hash), its path there and its SHA-256. `fetch_data` downloads the
files with `pooch` (temporary file, hash check, then an atomic rename;
retries; several base URLs tried in order) into a cache laid out like a
data directory, or uses a data directory you give (`data_dir`,
`$SYNTHLAYERS_DATA_DIR`) as it is.
"""

import contextlib
import logging
import os
import sys
import urllib.parse
from typing import NamedTuple

from synthlayers.validation import check_int
from synthlayers.validation import is_number

DATA_DIR_ENV = "SYNTHLAYERS_DATA_DIR"
"""Environment variable naming a local data directory (see `local_data_dir`)."""

CACHE_DIR_ENV = "SYNTHLAYERS_CACHE_DIR"
"""Environment variable naming the download cache (see `local_cache_dir`)."""

SYNTHSEG_COMMIT = "66342c1f05e520f3729a6d7ca1042eb7f01b6266"
"""Commit of github.com/BBillot/SynthSeg the SynthSeg files are pinned to."""

VOXELMORPH_COMMIT = "ca28315d0ba24cd8946ac4f6ed081e049e5264fe"
"""Commit of github.com/voxelmorph/voxelmorph the test scan is pinned to."""

_REPOSITORIES = {
    "synthseg": ("BBillot/SynthSeg", SYNTHSEG_COMMIT),
    "voxelmorph": ("voxelmorph/voxelmorph", VOXELMORPH_COMMIT),
}

BASE_URLS = {
    source: (
        f"https://raw.githubusercontent.com/{repository}/{commit}",
        f"https://cdn.jsdelivr.net/gh/{repository}@{commit}",
    )
    for source, (repository, commit) in _REPOSITORIES.items()
}
"""Base URLs of each source repository at its pinned commit, tried in order.

GitHub's raw-file host first, then the jsDelivr CDN's copy of the same
commit. A file's URL is a base URL, `/`, and its quoted upstream path; every
download is checked against the pinned SHA-256, whichever host serves it.
`fetch_data(base_urls=...)` replaces them per source (a mirror of your own).
"""


class DataFile(NamedTuple):
    """One downloadable file: its source, upstream path and SHA-256."""

    source: str
    path: str
    sha256: str


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

SYNTHSEG_LABEL_MAP_NUMBERS = tuple(sorted(_SYNTHSEG_LABEL_MAP_SHA256))
"""Numbers of SynthSeg's training label maps, 1 to 20 (`training_seg_01`...)."""

SYNTHSEG_LABEL_MAP_FILES = tuple(
    f"synthseg_label_maps/training_seg_{number:02d}.nii.gz"
    for number in SYNTHSEG_LABEL_MAP_NUMBERS
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
            f"data/training_label_maps/{local.rsplit('/', 1)[-1]}",
            _SYNTHSEG_LABEL_MAP_SHA256[number],
        )
        for number, local in zip(SYNTHSEG_LABEL_MAP_NUMBERS, SYNTHSEG_LABEL_MAP_FILES)
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
    """`BASE_URLS` with the entries of `base_urls` (a URL or a list) replaced."""
    if base_urls is None:
        return dict(BASE_URLS)
    if not isinstance(base_urls, dict) or not set(base_urls) <= set(BASE_URLS):
        raise ValueError(
            "`base_urls` must be None or a dict whose keys are among "
            f"{sorted(BASE_URLS)}. Received: base_urls={base_urls!r}"
        )
    merged = dict(BASE_URLS)
    for source, urls in base_urls.items():
        urls = (urls,) if isinstance(urls, str) else urls
        if (
            not isinstance(urls, (tuple, list))
            or not urls
            or not all(isinstance(url, str) and url for url in urls)
        ):
            raise ValueError(
                "`base_urls` must map each source to a base URL or a non-empty "
                f"list of base URLs. Received: base_urls={base_urls!r}"
            )
        merged[source] = tuple(urls)
    return merged


def _check_timeout(timeout):
    if not (is_number(timeout) and 0 < timeout < float("inf")):
        raise ValueError(
            f"`timeout` must be a positive number of seconds. Received: "
            f"timeout={timeout!r}"
        )
    return float(timeout)


def _file_urls(name, base_urls):
    """The URLs of data file `name`: each base URL of its source, quoted path."""
    entry = DATA_FILES[name]
    path = urllib.parse.quote(entry.path)
    return [f"{base.rstrip('/')}/{path}" for base in base_urls[entry.source]]


class _PermanentHTTPError(Exception):
    """An HTTP status that retrying will not change (404 and the like)."""


class _Downloader:
    """pooch's HTTP downloader, reporting each try and the hash it received.

    A client error (4xx other than 408 and 429) is raised as
    `_PermanentHTTPError`, which pooch does not retry; the next base URL is
    tried at once.
    """

    def __init__(self, target, timeout, verbose):
        import pooch

        self.target = target
        self.verbose = verbose
        self.tries = 0
        self.received = None
        self._http = pooch.HTTPDownloader(timeout=timeout, chunk_size=1 << 20)

    def __call__(self, url, output_file, fetcher):
        import pooch
        import requests

        self.tries += 1
        if self.verbose:
            verb = "downloading" if self.tries == 1 else f"retry {self.tries - 1}:"
            print(f"synthlayers: {verb} {url} -> {self.target}", file=sys.stderr)
        try:
            self._http(url, output_file, fetcher)
        except requests.exceptions.HTTPError as error:
            status = error.response.status_code
            if 400 <= status < 500 and status not in (408, 429):
                reason = f"HTTP {status} {error.response.reason}"
                raise _PermanentHTTPError(reason) from None
            raise
        self.received = pooch.file_hash(output_file, alg="sha256")


@contextlib.contextmanager
def _quiet_pooch():
    """Silence pooch's own log lines (`fetch_data` prints its own)."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _reason(error):
    """One line saying why a download failed."""
    import requests

    if isinstance(error, requests.exceptions.HTTPError):
        response = error.response
        return f"HTTP {response.status_code} {response.reason}"
    # requests wraps urllib3's error, which holds the cause in `reason`.
    cause = error.args[0] if error.args else error
    cause = getattr(cause, "reason", cause)
    return " ".join(f"{type(error).__name__}: {cause}".split())


def _download(name, urls, cache, timeout, retries, verbose):
    """Download data file `name` into `cache`, trying `urls` in order."""
    import pooch
    import requests

    entry = DATA_FILES[name]
    target = os.path.join(cache, *name.split("/"))
    failures = []
    for url in urls:
        downloader = _Downloader(target, timeout, verbose)
        fetcher = pooch.create(
            path=cache,
            base_url=url,
            registry={name: f"sha256:{entry.sha256}"},
            urls={name: url},
            retry_if_failed=retries,
        )
        try:
            fetcher.fetch(name, downloader=downloader)
            return
        except _PermanentHTTPError as error:
            failures.append(f"{url}: {error}")
        except requests.exceptions.RequestException as error:
            failures.append(f"{url}: {_reason(error)}")
        except ValueError:
            if downloader.received in (None, entry.sha256):
                raise  # not a checksum mismatch
            failures.append(
                f"{url}: checksum mismatch, expected SHA-256 {entry.sha256}, "
                f"received {downloader.received}"
            )
    raise DownloadError(
        f"Could not download {name!r} (nothing was kept): "
        + "; ".join(failures)
        + ". To work without downloads, get the files yourself and point "
        f"${DATA_DIR_ENV} (or `data_dir`) at a directory laid out as in "
        "`DATA_FILES`; or give a mirror with `base_urls`."
    )


def fetch_data(
    files=None,
    data_dir=None,
    cache_dir=None,
    base_urls=None,
    timeout=60.0,
    verbose=True,
    retries=2,
):
    """A local data directory holding `files`, downloading them if needed.

    Resolution order:

    1. `data_dir`, else `$SYNTHLAYERS_DATA_DIR` (see `local_data_dir`): a
       directory you provide; it is used as it is (the files must be there;
       nothing is downloaded or checked).
    2. Otherwise the cache (`cache_dir`, else `$SYNTHLAYERS_CACHE_DIR`, else
       `~/.cache/synthlayers`, see `local_cache_dir`). Every requested file
       missing from the cache, or whose SHA-256 differs from `DATA_FILES`,
       is downloaded with `pooch` from its repository at the pinned commit
       (`BASE_URLS`: SynthSeg at `SYNTHSEG_COMMIT`, voxelmorph at
       `VOXELMORPH_COMMIT`) to a temporary file, checked against its
       SHA-256 and only then renamed into place, so a fetch never leaves a
       partial or wrong file in the cache. A failed try (a connection
       error, a server error, a wrong hash) is repeated `retries` times,
       then the source's next base URL is tried; a client error such as
       HTTP 404 goes to the next base URL at once. Files already in the
       cache with the right hash are not downloaded again.

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
        base_urls: `{source: base URL or list of base URLs}` replacing
            entries of `BASE_URLS` (mirrors, tried in order); a file's URL
            is a base URL, `/`, and its quoted upstream path. Defaults to
            `None`.
        timeout: seconds to wait for the server, per connection. Defaults to
            `60.0`.
        verbose: print one line per download try to stderr. Defaults to
            `True`.
        retries: how many times a failed try is repeated (after 1 s, 2 s,
            ...) before the next base URL. Defaults to `2`.

    Returns:
        The data directory (a string).

    Raises:
        ValueError: for an unknown file or a bad argument.
        FileNotFoundError: when a requested file is missing from the given
            data directory.
        DownloadError: when a file could not be downloaded with the right
            SHA-256 from any base URL; the message names the file and, for
            each URL, why (HTTP status, connection error, or both hashes).

    Example:

    >>> data_dir = fetch_data(SYNTHSEG_LABEL_FILES)  # doctest: +SKIP
    >>> labels, classes = synthseg_generation_labels(data_dir)  # doctest: +SKIP
    """
    files = _check_files(files)
    urls = _check_base_urls(base_urls)
    timeout = _check_timeout(timeout)
    retries = check_int(retries, "retries", min_value=0)
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
    with _quiet_pooch():
        for name in files:
            _download(name, _file_urls(name, urls), cache, timeout, retries, verbose)
    return cache
