"""Downloads with checksums, for real, from a local HTTP server on 127.0.0.1.

The server serves files of the data directory ($SYNTHLAYERS_DATA_DIR, set by
conftest.py on development machines) laid out like the upstream repositories
at their pinned commits; only a few small files are published per test.
"""

import contextlib
import hashlib
import http.server
import os
import re
import socket
import threading
import urllib.parse

import numpy as np
import pooch
import pytest

from synthlayers import datasets
from synthlayers.data import registry

DATA_DIR = datasets.local_data_dir()

needs_data = pytest.mark.skipif(
    DATA_DIR is None or not os.path.isdir(os.path.join(DATA_DIR, "synthseg_labels")),
    reason=f"no data directory with the pinned files: set ${datasets.DATA_DIR_ENV} "
    f"(received: {DATA_DIR!r})",
)

# Small files only; `labels_table.txt` comes from `data/labels table.txt`
# upstream (a space to quote in the URL), the test scan from the other source.
TABLES = (
    "synthseg_labels/generation_labels.npy",
    "synthseg_labels/generation_classes.npy",
    "synthseg_labels/labels_table.txt",
)
FILES = (*TABLES, datasets.VXM_TEST_SCAN_FILE)


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _read(name):
    """The bytes of data file `name` in the data directory."""
    with open(os.path.join(DATA_DIR, name), "rb") as file:
        return file.read()


def _files_under(directory):
    """Every file (hidden ones included) under `directory`, relative, `/`."""
    found = set()
    for parent, _, names in os.walk(directory):
        for name in names:
            path = os.path.relpath(os.path.join(parent, name), directory)
            found.add(path.replace(os.sep, "/"))
    return found


def _upstream_path(name):
    """The URL path of data file `name` under its source's first base URL."""
    entry = datasets.DATA_FILES[name]
    base = urllib.parse.urlsplit(datasets.BASE_URLS[entry.source][0]).path
    return f"{base}/{urllib.parse.quote(entry.path)}"


class Upstream:
    """A local stand-in for raw.githubusercontent.com, counting requests.

    Files are served under the paths of the first base URLs of
    `datasets.BASE_URLS`, optionally below a `mirror` prefix; `failures`
    maps a request path to HTTP statuses answered (one per request) before
    the file is served.
    """

    def __init__(self, root, url, requests, failures):
        self.root = root
        self.url = url
        self.requests = requests
        self.failures = failures
        self.base_urls = {
            source: self.base_url(source) for source in datasets.BASE_URLS
        }

    def base_url(self, source, mirror=""):
        """The base URL of `source` on this server, below prefix `mirror`."""
        path = urllib.parse.urlsplit(datasets.BASE_URLS[source][0]).path
        return self.url + (f"/{mirror}" if mirror else "") + path

    def publish(self, name, content=None, mirror=""):
        """Serve data file `name` at its upstream path (a link, or `content`)."""
        path = urllib.parse.unquote(_upstream_path(name))
        path = os.path.join(self.root, mirror, *path.strip("/").split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if content is None:
            os.symlink(os.path.join(DATA_DIR, name), path)
        else:
            with open(path, "wb") as file:
                file.write(content)


@pytest.fixture
def upstream(tmp_path, monkeypatch):
    # The cache is only used when no data directory is set.
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    monkeypatch.delenv(datasets.CACHE_DIR_ENV, raising=False)
    root = tmp_path / "upstream"
    root.mkdir()
    requests = []
    failures = {}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            if failures.get(self.path):
                self.send_error(failures[self.path].pop(0))
                return
            super().do_GET()

        def log_message(self, format, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield Upstream(str(root), f"http://{host}:{port}", requests, failures)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _fetch(upstream, cache, files=FILES, **kwargs):
    kwargs.setdefault("verbose", False)
    kwargs.setdefault("retries", 0)
    kwargs.setdefault("base_urls", upstream.base_urls)
    return datasets.fetch_data(files, cache_dir=cache, **kwargs)


@needs_data
def test_fetch_downloads_verifies_and_caches(upstream, tmp_path):
    for name in FILES:
        upstream.publish(name)
    cache = tmp_path / "cache"
    directory = _fetch(upstream, cache)
    assert directory == str(cache)
    assert _files_under(cache) == set(FILES)  # no temporary file left
    for name in FILES:
        with open(os.path.join(directory, name), "rb") as file:
            data = file.read()
        assert data == _read(name)
        assert _sha256(data) == datasets.DATA_FILES[name].sha256
    assert len(upstream.requests) == len(FILES)
    assert any(r.endswith("/data/labels%20table.txt") for r in upstream.requests)
    assert any(
        r.endswith(f"/voxelmorph/{datasets.VOXELMORPH_COMMIT}/data/test_scan.npz")
        for r in upstream.requests
    )
    # The cache is a data directory: the readers work on it.
    labels, classes = datasets.synthseg_generation_labels(directory)
    assert labels.shape == classes.shape == (54,)

    # A second fetch, and the helpers, find everything in the cache.
    assert _fetch(upstream, cache) == str(cache)
    image, segmentation = datasets.load_vxm_test_scan(
        cache_dir=cache, base_urls=upstream.base_urls, verbose=False
    )
    assert image.shape == segmentation.shape
    assert len(upstream.requests) == len(FILES)


@needs_data
def test_fetch_prints_one_line_per_download(upstream, tmp_path, capsys):
    upstream.publish(TABLES[0])
    _fetch(upstream, tmp_path / "cache", files=TABLES[0], verbose=True)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "generation_labels.npy" in err


@needs_data
def test_fetch_cache_from_environment(upstream, tmp_path, monkeypatch):
    upstream.publish(TABLES[0])
    monkeypatch.setenv(datasets.CACHE_DIR_ENV, str(tmp_path / "env_cache"))
    directory = datasets.fetch_data(
        TABLES[0], base_urls=upstream.base_urls, verbose=False
    )
    assert directory == str(tmp_path / "env_cache")
    assert _files_under(directory) == {TABLES[0]}


@needs_data
def test_fetch_replaces_a_wrong_file_in_the_cache(upstream, tmp_path):
    name = TABLES[0]
    upstream.publish(name)
    cache = tmp_path / "cache"
    stale = cache / name
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"an interrupted or outdated copy")
    _fetch(upstream, cache, files=[name])
    assert stale.read_bytes() == _read(name)
    assert len(upstream.requests) == 1


def test_fetch_checksum_mismatch_keeps_nothing(upstream, tmp_path):
    name = TABLES[0]
    corrupted = b"not the file the hash was pinned for"
    upstream.publish(name, corrupted)
    cache = tmp_path / "cache"
    with pytest.raises(datasets.DownloadError) as info:
        _fetch(upstream, cache, files=[name])
    message = str(info.value)
    assert name in message
    assert datasets.DATA_FILES[name].sha256 in message
    assert _sha256(corrupted) in message
    assert "\n" not in message
    assert _files_under(cache) == set()


def test_fetch_missing_file_says_what_and_where(upstream, tmp_path):
    name = TABLES[2]
    cache = tmp_path / "cache"
    with pytest.raises(datasets.DownloadError) as info:
        _fetch(upstream, cache, files=[name])
    message = str(info.value)
    assert "404" in message
    assert name in message
    assert upstream.base_urls["synthseg"] + "/data/labels%20table.txt" in message
    assert datasets.DATA_DIR_ENV in message
    assert "\n" not in message
    assert _files_under(cache) == set()


def test_fetch_unreachable_host(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    # A port that nothing listens on: bound, then released.
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}/mirror"
    with pytest.raises(datasets.DownloadError) as info:
        datasets.fetch_data(
            TABLES[0],
            cache_dir=tmp_path / "cache",
            base_urls={"synthseg": base},
            timeout=5,
            verbose=False,
            retries=0,
        )
    message = str(info.value)
    assert f"{base}/data/labels_classes_priors/generation_labels.npy" in message
    assert datasets.DATA_DIR_ENV in message and "\n" not in message
    assert _files_under(tmp_path / "cache") == set()


@needs_data
def test_data_dir_takes_precedence(upstream, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    assert _fetch(upstream, cache, data_dir=DATA_DIR) == DATA_DIR
    monkeypatch.setenv(datasets.DATA_DIR_ENV, DATA_DIR)
    assert _fetch(upstream, cache) == DATA_DIR
    paths = datasets.fetch_synthseg_label_maps((3, 1), cache_dir=cache)
    assert [os.path.basename(p) for p in paths] == [
        "training_seg_03.nii.gz",
        "training_seg_01.nii.gz",
    ]
    assert all(os.path.isfile(p) for p in paths)
    assert upstream.requests == [] and not cache.exists()
    with pytest.raises(FileNotFoundError, match="generation_labels.npy"):
        datasets.fetch_data(TABLES[0], data_dir=tmp_path)
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=datasets.DATA_DIR_ENV):
        datasets.fetch_data(TABLES[0])


@needs_data
def test_fetch_label_maps_into_cache(upstream, tmp_path):
    name = datasets.SYNTHSEG_LABEL_MAP_FILES[1]
    upstream.publish(name)
    paths = datasets.fetch_synthseg_label_maps(
        2, cache_dir=tmp_path / "cache", base_urls=upstream.base_urls, verbose=False
    )
    assert paths == [str(tmp_path / "cache" / name)]
    assert upstream.requests[0].endswith(
        f"/SynthSeg/{datasets.SYNTHSEG_COMMIT}/data/training_label_maps/"
        "training_seg_02.nii.gz"
    )


def test_local_cache_dir(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.CACHE_DIR_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = os.path.join(str(tmp_path), ".cache", "synthlayers")
    assert datasets.local_cache_dir() == expected
    monkeypatch.setenv(datasets.CACHE_DIR_ENV, "/somewhere")
    assert datasets.local_cache_dir() == "/somewhere"
    assert datasets.local_cache_dir(tmp_path / "x") == str(tmp_path / "x")


@needs_data
def test_pinned_table_matches_the_data_directory():
    # The table lists exactly the files of the data directory, with their hashes.
    assert set(datasets.DATA_FILES) == _files_under(DATA_DIR) - {"README.md"}
    for name, entry in datasets.DATA_FILES.items():
        assert _sha256(_read(name)) == entry.sha256, name
    assert len(datasets.SYNTHSEG_LABEL_MAP_FILES) == 20
    assert registry._file_urls(
        "synthseg_labels/labels_table.txt", datasets.BASE_URLS
    ) == [
        "https://raw.githubusercontent.com/BBillot/SynthSeg/"
        f"{datasets.SYNTHSEG_COMMIT}/data/labels%20table.txt",
        "https://cdn.jsdelivr.net/gh/BBillot/SynthSeg@"
        f"{datasets.SYNTHSEG_COMMIT}/data/labels%20table.txt",
    ]
    assert registry._file_urls(datasets.VXM_TEST_SCAN_FILE, datasets.BASE_URLS)[0] == (
        "https://raw.githubusercontent.com/voxelmorph/voxelmorph/"
        f"{datasets.VOXELMORPH_COMMIT}/data/test_scan.npz"
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"files": ["nope.npy"]}, "files"),
        ({"files": 3}, "files"),
        ({"base_urls": {"github": "http://x"}}, "base_urls"),
        ({"base_urls": "http://x"}, "base_urls"),
        ({"base_urls": {"synthseg": []}}, "base_urls"),
        ({"base_urls": {"synthseg": ["http://x", 3]}}, "base_urls"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"retries": -1}, "retries"),
        ({"retries": 1.0}, "retries"),
    ],
)
def test_fetch_bad_arguments(kwargs, name, tmp_path):
    with pytest.raises(ValueError, match=f"Received: {name}="):
        datasets.fetch_data(cache_dir=tmp_path, **kwargs)


@pytest.mark.parametrize("subjects", [0, 21, [], [1.0], [True]])
def test_fetch_label_maps_bad_subjects(subjects, tmp_path):
    with pytest.raises(ValueError, match="Received: subjects="):
        datasets.fetch_synthseg_label_maps(subjects, cache_dir=tmp_path)


@needs_data
def test_downloaded_scan_loads_like_the_local_one(upstream, tmp_path):
    upstream.publish(datasets.VXM_TEST_SCAN_FILE)
    image, segmentation = datasets.load_vxm_test_scan(
        cache_dir=tmp_path, base_urls=upstream.base_urls, verbose=False
    )
    local = datasets.load_vxm_test_scan(data_dir=DATA_DIR)
    np.testing.assert_array_equal(image, local[0])
    np.testing.assert_array_equal(segmentation, local[1])


# --- Pins, mirrors and retries -------------------------------------------------


def test_commits_are_pinned_in_full():
    # Raw-file hosts do not reliably resolve abbreviated commit hashes.
    for commit in (datasets.SYNTHSEG_COMMIT, datasets.VOXELMORPH_COMMIT):
        assert re.fullmatch("[0-9a-f]{40}", commit), commit
    assert datasets.SYNTHSEG_COMMIT == "66342c1f05e520f3729a6d7ca1042eb7f01b6266"
    assert datasets.VOXELMORPH_COMMIT == "ca28315d0ba24cd8946ac4f6ed081e049e5264fe"
    for source, commit in (
        ("synthseg", datasets.SYNTHSEG_COMMIT),
        ("voxelmorph", datasets.VOXELMORPH_COMMIT),
    ):
        assert len(datasets.BASE_URLS[source]) >= 2
        for base in datasets.BASE_URLS[source]:
            assert base.startswith("https://") and base.endswith(commit)
    for entry in datasets.DATA_FILES.values():
        assert re.fullmatch("[0-9a-f]{64}", entry.sha256)


@needs_data
def test_next_base_url_when_the_first_fails(upstream, tmp_path):
    # A mirror that is down, one without the file, one serving a corrupted
    # copy, then one that has it: the file comes from the last.
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}/down"
    name = TABLES[2]
    upstream.publish(name, _read(name) + b"!", mirror="corrupt")
    upstream.publish(name, mirror="good")
    mirrors = [
        dead,
        upstream.base_url("synthseg", "empty"),
        upstream.base_url("synthseg", "corrupt"),
        upstream.base_url("synthseg", "good"),
    ]
    cache = tmp_path / "cache"
    _fetch(upstream, cache, files=[name], base_urls={"synthseg": mirrors})
    assert (cache / name).read_bytes() == _read(name)
    assert _files_under(cache) == {name}
    path = _upstream_path(name)
    assert upstream.requests == [f"/empty{path}", f"/corrupt{path}", f"/good{path}"]

    # When every mirror fails, the error says why for each one.
    with pytest.raises(datasets.DownloadError) as info:
        _fetch(
            upstream,
            tmp_path / "other",
            files=[name],
            base_urls={"synthseg": mirrors[:3]},
        )
    message = str(info.value)
    assert message.count(f"{name!r}") == 1 and "\n" not in message
    for reason in ("ConnectionError", "HTTP 404", "checksum mismatch"):
        assert reason in message
    for mirror in mirrors[:3]:
        assert mirror in message
    assert _files_under(tmp_path / "other") == set()


@needs_data
def test_server_errors_are_retried_client_errors_are_not(upstream, tmp_path):
    name = TABLES[0]
    upstream.publish(name)
    path = _upstream_path(name)
    upstream.failures[path] = [503]
    cache = tmp_path / "cache"
    _fetch(upstream, cache, files=[name], retries=1)
    assert (cache / name).read_bytes() == _read(name)
    assert upstream.requests == [path, path]
    # Without retries the 503 is the answer; a 404 is not asked again.
    upstream.failures[path] = [503]
    with pytest.raises(datasets.DownloadError, match="HTTP 503"):
        _fetch(upstream, tmp_path / "again", files=[name])
    missing = _upstream_path(TABLES[1])
    with pytest.raises(datasets.DownloadError, match="HTTP 404"):
        _fetch(upstream, tmp_path / "again", files=[TABLES[1]], retries=3)
    assert upstream.requests.count(missing) == 1
    assert _files_under(tmp_path / "again") == set()


@needs_data
def test_pooch_logger_left_as_it_was(upstream, tmp_path, capsys):
    upstream.publish(TABLES[0])
    logger = pooch.get_logger()
    level = logger.level
    _fetch(upstream, tmp_path / "cache", files=TABLES[0], verbose=True)
    assert logger.level == level
    assert "Downloading" not in capsys.readouterr().err  # pooch's own line
