"""Model files: one `.keras` file holding a network and the settings it needs.

A model file is the unit users pass around: the network as Keras writes it
(`keras.saving.save_model`: `config.json`, `metadata.json`,
`model.weights.h5` in a zip) plus one more zip entry, `synthlayers.json`,
with what the network needs to be used: its `kind` (`"segmentation"` or
`"registration"`), the layout's `format_version`, `provenance` (package
version, date, Keras backend, the generator's configuration, training
steps) and the kind's own settings (for segmentation, see
`synthlayers.models.Segmenter`). `keras.saving.load_model` still reads the
file as a plain Keras model; `load_model_file` reads both parts and checks
them.

Files are written atomically: to a temporary file in the same directory,
renamed into place when complete, so that a failed or interrupted write
never leaves a file that looks complete.
"""

import datetime
import json
import os
import shutil
import tempfile
import zipfile

import keras
import numpy as np

from synthlayers.version import __version__

METADATA_ENTRY = "synthlayers.json"
"""Name of the JSON entry in the model file's zip (and in a SavedModel
directory exported with `export_network`)."""

FORMAT_VERSION = 1
"""Version of the metadata layout written by this package."""

SUPPORTED_FORMAT_VERSIONS = (1,)
"""Metadata layouts this package reads."""

KINDS = ("segmentation", "registration")
"""The kinds of model file."""


def make_provenance(generator_config=None, steps=None, **details):
    """Where a network comes from: package version, date, backend, training.

    Args:
        generator_config: the synthesis generator's configuration (e.g.
            `LabelsToImage.get_config()`; JSON-serialisable values), or None.
            Defaults to None.
        steps: training steps taken, or None. Defaults to None.
        **details: further JSON-serialisable entries (e.g. `seconds`,
            `seed`, `label_maps`).

    Returns:
        A dict with `package` (`"synthlayers"`), `package_version`, `date`
        (UTC, ISO 8601), `backend` (Keras backend), `keras_version`,
        `generator_config`, `steps` and the `details` given.

    Example:

    >>> provenance = make_provenance(steps=10)
    >>> provenance["package"], provenance["steps"]
    ('synthlayers', 10)
    """
    provenance = {
        "package": "synthlayers",
        "package_version": __version__,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "generator_config": generator_config,
        "steps": None if steps is None else int(steps),
    }
    provenance.update(details)
    return provenance


def _json_value(value):
    """NumPy scalars and arrays as plain Python values (for `json.dumps`)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _encode_metadata(metadata):
    try:
        return json.dumps(metadata, indent=2, default=_json_value, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(
            "Expected `metadata` to be JSON-serialisable (numbers, strings, "
            f"lists, dicts, NumPy values; finite numbers): {error}. Received: "
            f"metadata={metadata!r}"
        ) from None


def _check_kind(kind, name="kind"):
    if kind not in KINDS:
        raise ValueError(
            f"Expected `{name}` to be one of {KINDS}. Received: {name}={kind!r}"
        )
    return kind


def complete_metadata(metadata):
    """`metadata` with `format_version` set and `provenance` filled in.

    Checks `kind`, sets `format_version` to `FORMAT_VERSION` and adds the
    entries of `make_provenance()` that `metadata["provenance"]` lacks.

    Args:
        metadata: a dict with at least `kind` (one of `KINDS`).

    Returns:
        A new dict, JSON-serialisable.

    Raises:
        ValueError: when `metadata` is not a dict with a known `kind`, or not
            JSON-serialisable.

    Example:

    >>> metadata = complete_metadata({"kind": "registration"})
    >>> metadata["format_version"], metadata["provenance"]["package"]
    (1, 'synthlayers')
    """
    if not isinstance(metadata, dict):
        raise ValueError(
            "Expected `metadata` to be a dict with a `kind` entry. Received: "
            f"metadata={metadata!r}"
        )
    _check_kind(metadata.get("kind"), "metadata['kind']")
    provenance = metadata.get("provenance") or {}
    if not isinstance(provenance, dict):
        raise ValueError(
            "Expected `metadata['provenance']` to be a dict. Received: "
            f"provenance={provenance!r}"
        )
    completed = dict(metadata)
    completed["format_version"] = FORMAT_VERSION
    completed["provenance"] = {**make_provenance(), **provenance}
    # Round trip through JSON: the dict returned is the one a reader gets.
    return json.loads(_encode_metadata(completed))


def _check_keras_path(path, name="path"):
    try:
        path = os.fspath(path)
    except TypeError:
        raise ValueError(
            f"Expected `{name}` to be a file path ending in `.keras`. Received: "
            f"{name}={path!r}"
        ) from None
    if not path.endswith(".keras"):
        raise ValueError(
            f"Expected `{name}` to be a file path ending in `.keras`. Received: "
            f"{name}={path!r}"
        )
    return path


def atomic_write(path, write, suffix=""):
    """Write a file or directory through a temporary path, then rename it.

    `write(temporary_path)` creates the temporary file (or directory) next to
    `path`; when it returns, the result replaces `path` (a file with
    `os.replace`; a directory after the old one, if any, is removed). When
    `write` raises, the temporary path is removed and the error propagates:
    `path` is either the old content or the new complete one.

    Args:
        path: the final path.
        write: a function of the temporary path.
        suffix: ending of the temporary name (e.g. `".keras"`, which
            `keras.saving.save_model` requires). Defaults to `""`.

    Returns:
        `path`, as a string.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=f".partial{suffix}", dir=directory
    )
    os.close(handle)
    os.remove(temporary)
    try:
        write(temporary)
        if os.path.isdir(temporary):
            if os.path.isdir(path):
                old = temporary + ".old"
                os.replace(path, old)
                os.replace(temporary, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(temporary, path)
        else:
            os.replace(temporary, path)
    except BaseException:
        if os.path.isdir(temporary):
            shutil.rmtree(temporary, ignore_errors=True)
        elif os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def save_model_file(path, network, metadata, entries=None):
    """Save a network and its metadata as one `.keras` model file, atomically.

    Writes the network with `keras.saving.save_model` to a temporary file
    next to `path`, adds the JSON entry `synthlayers.json` (the metadata,
    completed by `complete_metadata`: `format_version`, `provenance`) to
    its zip, and renames it to `path`. The file stays a valid Keras file
    (`keras.saving.load_model` reads the network).

    Args:
        path: the output file; must end in `.keras`. An existing file is
            replaced.
        network: a Keras model (its custom layers registered with
            `keras.saving.register_keras_serializable`, as synthlayers'
            are).
        metadata: a dict with `kind` (`"segmentation"` or
            `"registration"`) and the kind's settings; JSON-serialisable
            (NumPy values are converted).
        entries: further zip entries `{name: bytes}` (e.g. a training
            checkpoint's optimizer state; read back with
            `read_model_file_entry`), or None. Names must not be Keras's
            own or `synthlayers.json`. Defaults to None.

    Returns:
        The path, as a string.

    Raises:
        ValueError: on a path not ending in `.keras`, a `network` that is not
            a Keras model, or invalid `metadata`.

    Example:

    >>> inputs = keras.Input((None, None, 1))
    >>> network = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "net.keras")
    >>> _ = save_model_file(path, network, {"kind": "segmentation"})
    >>> network, metadata = load_model_file(path, kind="segmentation")
    >>> metadata["kind"], metadata["format_version"]
    ('segmentation', 1)
    """
    path = _check_keras_path(path)
    if not isinstance(network, keras.Model):
        raise ValueError(
            "Expected `network` to be a Keras model. Received: "
            f"network={type(network).__name__}"
        )
    text = _encode_metadata(complete_metadata(metadata))
    entries = dict(entries or {})
    reserved = {METADATA_ENTRY, "config.json", "metadata.json", "model.weights.h5"}
    bad = [
        name
        for name, data in entries.items()
        if not isinstance(name, str)
        or name in reserved
        or name.startswith("assets")
        or not isinstance(data, bytes)
    ]
    if bad:
        raise ValueError(
            "Expected `entries` to map new entry names (not Keras's own or "
            f"{METADATA_ENTRY!r}) to bytes. Received: entries with names {bad!r}"
        )

    def write(temporary):
        keras.saving.save_model(network, temporary)
        with zipfile.ZipFile(temporary, "a", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(METADATA_ENTRY, text)
            for name, data in entries.items():
                zf.writestr(name, data)

    return atomic_write(path, write, suffix=".keras")


def _not_ours(path):
    return ValueError(
        f"Expected a synthlayers model file (a `.keras` file with a "
        f"`{METADATA_ENTRY}` entry). Received: {path!r}, a Keras file without "
        f"it: written by an older layout or not a synthlayers model file"
    )


def _check_metadata(metadata, path, kind):
    if not isinstance(metadata, dict):
        raise ValueError(
            f"Expected the `{METADATA_ENTRY}` entry of {path!r} to be a JSON "
            f"object. Received: {type(metadata).__name__}"
        )
    version = metadata.get("format_version")
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise ValueError(
            f"Expected a model file of format_version in "
            f"{SUPPORTED_FORMAT_VERSIONS} (synthlayers {__version__}). Received: "
            f"format_version={version!r} in {path!r}; a newer synthlayers may "
            f"read it"
        )
    found = metadata.get("kind")
    if found not in KINDS:
        raise ValueError(
            f"Expected the model file's kind to be one of {KINDS}. Received: "
            f"kind={found!r} in {path!r}"
        )
    if kind is not None and found != kind:
        raise ValueError(
            f"Expected a {kind} model file, received a {found} one: {path!r}"
        )
    return metadata


def read_metadata(path, kind=None):
    """The metadata of a model file (or exported SavedModel), without the network.

    Args:
        path: a `.keras` model file written by `save_model_file`, or a
            SavedModel directory written by `export_network` with metadata.
        kind: the expected kind (`"segmentation"`, `"registration"`), or
            None to accept any. Defaults to None.

    Returns:
        The metadata dict.

    Raises:
        FileNotFoundError: when `path` does not exist.
        ValueError: when the file is not a zip (damaged or not a model
            file), has no `synthlayers.json` entry (an older layout or not a
            synthlayers model file), has an unknown `format_version`, or is
            of another `kind`.
    """
    if kind is not None:
        _check_kind(kind)
    try:
        path = os.fspath(path)
    except TypeError:
        raise ValueError(
            f"Expected `path` to be a model file path. Received: path={path!r}"
        ) from None
    if not os.path.exists(path):
        raise FileNotFoundError(f"Model file not found: {path!r}")
    if os.path.isdir(path):
        entry = os.path.join(path, METADATA_ENTRY)
        if not os.path.isfile(entry):
            raise ValueError(
                f"Expected a model file (`.keras`) or an exported SavedModel "
                f"directory with a `{METADATA_ENTRY}` file. Received: {path!r}, "
                f"a directory without it"
            )
        with open(entry, "rb") as f:
            text = f.read()
    else:
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
                if METADATA_ENTRY not in names:
                    if "config.json" in names:
                        raise _not_ours(path)
                    raise ValueError(
                        f"Expected a synthlayers model file (a `.keras` zip). "
                        f"Received: {path!r}, a zip without a Keras model"
                    )
                damaged = zf.testzip()
                if damaged is not None:
                    raise zipfile.BadZipFile(f"bad CRC in entry {damaged!r}")
                text = zf.read(METADATA_ENTRY)
        except (zipfile.BadZipFile, EOFError, OSError) as error:
            if isinstance(error, FileNotFoundError):
                raise
            raise ValueError(
                f"Expected a synthlayers model file (a `.keras` zip). Received: "
                f"{path!r}, which cannot be read as a zip (damaged, truncated, or "
                f"not a model file): {error}"
            ) from None
    try:
        metadata = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(
            f"Expected valid JSON in the `{METADATA_ENTRY}` entry of {path!r} "
            f"(damaged file?). Received: {error}"
        ) from None
    return _check_metadata(metadata, path, kind)


def read_model_file_entry(path, name):
    """The bytes of one extra entry of a model file, or None when absent.

    Args:
        path: a `.keras` model file (checked as by `read_metadata`).
        name: the entry's name, as given to `save_model_file(entries=...)`.

    Returns:
        The entry's bytes, or None when the file has no such entry.

    Raises:
        FileNotFoundError, ValueError: as `read_metadata`.
    """
    read_metadata(path)
    with zipfile.ZipFile(os.fspath(path)) as zf:
        if name not in zf.namelist():
            return None
        return zf.read(name)


def load_model_file(path, kind=None):
    """Load a model file: the network and its metadata.

    The metadata is read and checked first (see `read_metadata`), then the
    network with `keras.saving.load_model` (not compiled: it is for
    inference, or for training with a new `compile`).

    Args:
        path: a `.keras` file written by `save_model_file`.
        kind: the expected kind (`"segmentation"`, `"registration"`), or
            None to accept any. Defaults to None.

    Returns:
        A tuple `(network, metadata)`: the Keras model and the metadata dict.

    Raises:
        FileNotFoundError: when `path` does not exist.
        ValueError: when the file is damaged, is not a synthlayers model file
            (or one written by an older layout), has an unknown
            `format_version`, is of another `kind`, or its network cannot be
            loaded.

    Example:

    >>> network, metadata = load_model_file("model.keras")  # doctest: +SKIP
    """
    metadata = read_metadata(path, kind=kind)
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(
            f"Expected a `.keras` model file. Received: {path!r}, a directory "
            f"(an exported SavedModel is loaded with TensorFlow)"
        )
    try:
        network = keras.saving.load_model(path, compile=False)
    except (ValueError, TypeError, KeyError, OSError) as error:
        raise ValueError(
            f"Expected a loadable Keras network in the model file {path!r}. "
            f"Received an error from keras.saving.load_model: {error}"
        ) from error
    return network, metadata
