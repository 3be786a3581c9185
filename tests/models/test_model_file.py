"""Model files: a `.keras` zip with the network and a `synthlayers.json` entry."""

import json
import os
import zipfile

import keras
import numpy as np
import pytest

from synthlayers.models import model_file
from synthlayers.models.model_file import FORMAT_VERSION
from synthlayers.models.model_file import METADATA_ENTRY
from synthlayers.models.model_file import load_model_file
from synthlayers.models.model_file import read_metadata
from synthlayers.models.model_file import save_model_file
from synthlayers.version import __version__


def tiny_network(channels=3, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 1))
    outputs = keras.layers.Conv2D(channels, 1, activation="softmax")(inputs)
    return keras.Model(inputs, outputs)


def _outputs(network, x):
    return keras.ops.convert_to_numpy(network(x))


@pytest.fixture
def saved(tmp_path):
    network = tiny_network()
    path = tmp_path / "model.keras"
    metadata = {
        "kind": "segmentation",
        "output_labels": np.array([0, 2, 41]),
        "voxel_size": np.float32(1.5),
        "provenance": {"steps": 7, "seed": 3},
    }
    save_model_file(path, network, metadata)
    return network, path


def test_round_trip_network_and_metadata(saved):
    network, path = saved
    loaded, metadata = load_model_file(path, kind="segmentation")
    x = np.random.default_rng(0).random((2, 5, 7, 1)).astype("float32")
    np.testing.assert_allclose(_outputs(loaded, x), _outputs(network, x), atol=1e-6)
    assert metadata["kind"] == "segmentation"
    assert metadata["format_version"] == FORMAT_VERSION == 1
    # NumPy values become JSON numbers and lists.
    assert metadata["output_labels"] == [0, 2, 41]
    assert metadata["voxel_size"] == 1.5
    provenance = metadata["provenance"]
    assert provenance["steps"] == 7 and provenance["seed"] == 3  # given: kept
    assert provenance["package"] == "synthlayers"
    assert provenance["package_version"] == __version__
    assert provenance["backend"] == keras.backend.backend()
    assert provenance["keras_version"] == keras.__version__
    assert provenance["date"].endswith("+00:00")  # UTC, ISO 8601
    assert read_metadata(path) == metadata


def test_file_is_a_plain_keras_file_with_one_more_entry(saved):
    network, path = saved
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        entry = json.loads(zf.read(METADATA_ENTRY))
    assert METADATA_ENTRY in names and "config.json" in names
    assert names.count(METADATA_ENTRY) == 1
    assert entry["kind"] == "segmentation"
    # Keras itself still reads it.
    plain = keras.saving.load_model(path)
    x = np.ones((1, 4, 4, 1), "float32")
    np.testing.assert_allclose(_outputs(plain, x), _outputs(network, x), atol=1e-6)
    # Nothing else was left in the directory (no temporary file).
    assert os.listdir(path.parent) == ["model.keras"]


def test_overwrite_replaces_the_file(saved):
    _, path = saved
    save_model_file(path, tiny_network(channels=2), {"kind": "registration"})
    network, metadata = load_model_file(path)
    assert metadata["kind"] == "registration"
    assert network.output_shape[-1] == 2
    assert os.listdir(path.parent) == ["model.keras"]


def test_failed_write_leaves_the_old_file_and_no_partial_file(saved, monkeypatch):
    _, path = saved
    before = path.read_bytes()

    def fail(network, filepath, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"PK\x03\x04 half written")
        raise OSError("disk full")

    monkeypatch.setattr(keras.saving, "save_model", fail)
    with pytest.raises(OSError, match="disk full"):
        save_model_file(path, tiny_network(), {"kind": "segmentation"})
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == ["model.keras"]
    new = path.parent / "new.keras"
    with pytest.raises(OSError, match="disk full"):
        save_model_file(new, tiny_network(), {"kind": "segmentation"})
    assert os.listdir(path.parent) == ["model.keras"]


def test_older_layout_or_plain_keras_file(tmp_path):
    path = tmp_path / "network.keras"
    tiny_network().save(path)
    with pytest.raises(ValueError, match="older layout or not a synthlayers model"):
        load_model_file(path)


def _damage(path, how):
    data = bytearray(path.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "garbage":
        data = bytearray(b"not a zip file at all" * 10)
    elif how == "empty":
        data = bytearray()
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "garbage", "empty"])
def test_damaged_file(saved, how):
    _, path = saved
    _damage(path, how)
    with pytest.raises(ValueError, match="cannot be read as a zip.*damaged"):
        load_model_file(path)


def test_corrupted_entry_content(saved):
    # A flipped byte inside the weights: the zip opens, its CRC check fails.
    _, path = saved
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("model.weights.h5")
    data = bytearray(path.read_bytes())
    offset = info.header_offset + 30 + len(info.filename) + len(info.extra) + 100
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged"):
        load_model_file(path)


def _rewrite_metadata(path, change):
    with zipfile.ZipFile(path) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    metadata = json.loads(entries[METADATA_ENTRY])
    change(metadata)
    entries[METADATA_ENTRY] = json.dumps(metadata).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)


@pytest.mark.parametrize("version", [2, 0, None, "1"])
def test_unknown_format_version(saved, version):
    _, path = saved
    _rewrite_metadata(path, lambda m: m.update(format_version=version))
    with pytest.raises(ValueError, match=f"format_version={version!r}"):
        load_model_file(path)


def test_wrong_kind(saved):
    _, path = saved
    with pytest.raises(
        ValueError,
        match="Expected a registration model file, received a segmentation one",
    ):
        load_model_file(path, kind="registration")
    _rewrite_metadata(path, lambda m: m.update(kind="classification"))
    with pytest.raises(ValueError, match="kind='classification'"):
        read_metadata(path)


def test_invalid_json_entry(saved):
    _, path = saved
    with zipfile.ZipFile(path) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    entries[METADATA_ENTRY] = b"{not json"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    with pytest.raises(ValueError, match="valid JSON"):
        read_metadata(path)


def test_missing_file_and_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_model_file(tmp_path / "absent.keras")
    network = tiny_network()
    with pytest.raises(ValueError, match=r"ending in `\.keras`.*model\.h5"):
        save_model_file(tmp_path / "model.h5", network, {"kind": "segmentation"})
    with pytest.raises(ValueError, match="`network` to be a Keras model"):
        save_model_file(tmp_path / "m.keras", "net", {"kind": "segmentation"})
    with pytest.raises(ValueError, match=r"metadata\['kind'\].*Received"):
        save_model_file(tmp_path / "m.keras", network, {"labels": [1]})
    with pytest.raises(ValueError, match="`metadata` to be a dict"):
        save_model_file(tmp_path / "m.keras", network, [("kind", "segmentation")])
    with pytest.raises(ValueError, match="JSON-serialisable"):
        save_model_file(
            tmp_path / "m.keras", network, {"kind": "segmentation", "x": np.nan}
        )
    with pytest.raises(ValueError, match="JSON-serialisable"):
        save_model_file(
            tmp_path / "m.keras", network, {"kind": "segmentation", "x": object()}
        )
    with pytest.raises(ValueError, match="`kind` to be one of"):
        read_metadata(tmp_path / "m.keras", kind="segment")
    assert os.listdir(tmp_path) == []  # nothing written by the failed calls


def test_zip_without_a_keras_model(tmp_path):
    path = tmp_path / "other.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="zip without a Keras model"):
        load_model_file(path)


def test_metadata_of_a_directory(tmp_path):
    with pytest.raises(ValueError, match="directory without it"):
        read_metadata(tmp_path)
    metadata = model_file.complete_metadata({"kind": "registration"})
    (tmp_path / METADATA_ENTRY).write_text(json.dumps(metadata))
    assert read_metadata(tmp_path, kind="registration") == metadata
    with pytest.raises(ValueError, match="a directory"):
        load_model_file(tmp_path)


def test_atomic_write_of_a_directory(tmp_path):
    target = tmp_path / "out"

    def write(path, content):
        os.makedirs(path)
        with open(os.path.join(path, "file.txt"), "w") as f:
            f.write(content)

    model_file.atomic_write(target, lambda p: write(p, "one"))
    model_file.atomic_write(target, lambda p: write(p, "two"))
    assert (target / "file.txt").read_text() == "two"

    def fail(path):
        write(path, "three")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        model_file.atomic_write(target, fail)
    assert (target / "file.txt").read_text() == "two"
    assert os.listdir(tmp_path) == ["out"]


def test_extra_entries(tmp_path):
    path = tmp_path / "checkpoint.keras"
    network = tiny_network()
    save_model_file(
        path, network, {"kind": "segmentation"}, entries={"state.npz": b"\x00\x01"}
    )
    assert model_file.read_model_file_entry(path, "state.npz") == b"\x00\x01"
    assert model_file.read_model_file_entry(path, "absent") is None
    assert keras.saving.load_model(path).output_shape == network.output_shape
    for entries in ({METADATA_ENTRY: b"{}"}, {"config.json": b""}, {"x": "text"}):
        with pytest.raises(ValueError, match="`entries`"):
            save_model_file(
                tmp_path / "bad.keras",
                network,
                {"kind": "segmentation"},
                entries=entries,
            )
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.keras"]
