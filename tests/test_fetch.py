"""Downloads with checksums, for real, from a local HTTP server on 127.0.0.1.

The server serves files of the shared data directory laid out like the
upstream repositories at their pinned commits; only a few small files are
published per test.
"""

import contextlib
import hashlib
import http.server
import os
import socket
import threading
import urllib.parse

import numpy as np
import pytest

from synthlayers import datasets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))

pytestmark = pytest.mark.skipif(
    not os.path.isdir(os.path.join(SHARED_DATA, "synthseg_labels")),
    reason=f"shared data directory not found: {SHARED_DATA} (../shared/data "
    "relative to the repository root)",
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
    with open(os.path.join(SHARED_DATA, name), "rb") as file:
        return file.read()


def _files_under(directory):
    """Every file (hidden ones included) under `directory`, relative, `/`."""
    found = set()
    for parent, _, names in os.walk(directory):
        for name in names:
            path = os.path.relpath(os.path.join(parent, name), directory)
            found.add(path.replace(os.sep, "/"))
    return found


class Upstream:
    """A local stand-in for raw.githubusercontent.com, counting requests."""

    def __init__(self, root, url, requests):
        self.root = root
        self.url = url
        self.requests = requests
        self.base_urls = {
            source: url + urllib.parse.urlsplit(base).path
            for source, base in datasets.BASE_URLS.items()
        }

    def publish(self, name, content=None):
        """Serve data file `name` at its upstream path (a link, or `content`)."""
        entry = datasets.DATA_FILES[name]
        base = urllib.parse.urlsplit(datasets.BASE_URLS[entry.source]).path
        path = os.path.join(self.root, *base.strip("/").split("/"), entry.path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if content is None:
            os.symlink(os.path.join(SHARED_DATA, name), path)
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

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            requests.append(self.path)
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
        yield Upstream(str(root), f"http://{host}:{port}", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _fetch(upstream, cache, files=FILES, **kwargs):
    kwargs.setdefault("verbose", False)
    return datasets.fetch_data(
        files, cache_dir=cache, base_urls=upstream.base_urls, **kwargs
    )


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


def test_fetch_prints_one_line_per_download(upstream, tmp_path, capsys):
    upstream.publish(TABLES[0])
    _fetch(upstream, tmp_path / "cache", files=TABLES[0], verbose=True)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "generation_labels.npy" in err


def test_fetch_cache_from_environment(upstream, tmp_path, monkeypatch):
    upstream.publish(TABLES[0])
    monkeypatch.setenv(datasets.CACHE_DIR_ENV, str(tmp_path / "env_cache"))
    directory = datasets.fetch_data(
        TABLES[0], base_urls=upstream.base_urls, verbose=False
    )
    assert directory == str(tmp_path / "env_cache")
    assert _files_under(directory) == {TABLES[0]}


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
    corrupted = _read(name) + b"\0"
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
        )
    message = str(info.value)
    assert f"{base}/data/labels_classes_priors/generation_labels.npy" in message
    assert datasets.DATA_DIR_ENV in message and "\n" not in message
    assert _files_under(tmp_path / "cache") == set()


def test_data_dir_takes_precedence(upstream, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    assert _fetch(upstream, cache, data_dir=SHARED_DATA) == SHARED_DATA
    monkeypatch.setenv(datasets.DATA_DIR_ENV, SHARED_DATA)
    assert _fetch(upstream, cache) == SHARED_DATA
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


def test_pinned_table_matches_the_shared_files():
    # The table lists exactly the shared files, with their hashes.
    assert set(datasets.DATA_FILES) == _files_under(SHARED_DATA) - {"README.md"}
    for name, entry in datasets.DATA_FILES.items():
        assert _sha256(_read(name)) == entry.sha256, name
    assert len(datasets.SYNTHSEG_LABEL_MAP_FILES) == 20
    assert datasets._file_url(
        "synthseg_labels/labels_table.txt", datasets.BASE_URLS
    ) == (
        "https://raw.githubusercontent.com/BBillot/SynthSeg/"
        f"{datasets.SYNTHSEG_COMMIT}/data/labels%20table.txt"
    )
    assert datasets._file_url(datasets.VXM_TEST_SCAN_FILE, datasets.BASE_URLS) == (
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
        ({"timeout": 0}, "timeout"),
    ],
)
def test_fetch_bad_arguments(kwargs, name, tmp_path):
    with pytest.raises(ValueError, match=f"Received: {name}="):
        datasets.fetch_data(cache_dir=tmp_path, **kwargs)


@pytest.mark.parametrize("subjects", [0, 21, [], [1.0], [True]])
def test_fetch_label_maps_bad_subjects(subjects, tmp_path):
    with pytest.raises(ValueError, match="Received: subjects="):
        datasets.fetch_synthseg_label_maps(subjects, cache_dir=tmp_path)


def test_downloaded_scan_loads_like_the_shared_one(upstream, tmp_path):
    upstream.publish(datasets.VXM_TEST_SCAN_FILE)
    image, segmentation = datasets.load_vxm_test_scan(
        cache_dir=tmp_path, base_urls=upstream.base_urls, verbose=False
    )
    shared = datasets.load_vxm_test_scan(data_dir=SHARED_DATA)
    np.testing.assert_array_equal(image, shared[0])
    np.testing.assert_array_equal(segmentation, shared[1])
