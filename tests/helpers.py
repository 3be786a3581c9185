"""Helpers shared by the tests, above all `check_layer`, run for every layer.

`check_layer` is the common contract of every synthlayers layer, in two
parts: the fast checks (run by default, by every layer's tests) and the slow
ones (`check_layer_slow`: XLA compile, `.keras` round trip, mixed precision),
run by `tests/layers/test_contract.py` under `@pytest.mark.slow`.
"""

import tempfile
from pathlib import Path

import keras
import numpy as np

from synthlayers.models import SynthesisModel

IMAGES = "images"
MASKS = "segmentation_masks"


def to_numpy(x):
    """Any backend tensor as a NumPy array."""
    return np.asarray(keras.ops.convert_to_numpy(x))


def as_numpy_tree(x):
    if isinstance(x, dict):
        return {k: to_numpy(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_numpy(v) for v in x]
    return to_numpy(x)


def make_label_map(spatial_shape, num_labels=4, batch=2, seed=0, labels=None):
    """A blocky int32 label map `(batch, *spatial, 1)`, different per sample."""
    rng = np.random.default_rng(seed)
    labels = np.arange(num_labels) if labels is None else np.asarray(labels)
    coarse = rng.integers(
        0, len(labels), (batch, *[max(2, s // 4) for s in spatial_shape])
    )
    index = np.ix_(
        *[np.arange(s) * c // s for s, c in zip(spatial_shape, coarse.shape[1:])]
    )
    out = coarse[(slice(None), *index)]
    return labels[out][..., None].astype("int32")


def make_image(spatial_shape, channels=1, batch=2, seed=0):
    """A smooth float32 image `(batch, *spatial, channels)` with structure."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(0, 1, s) for s in spatial_shape], indexing="ij")
    base = sum(np.sin((i + 2) * 3.1 * g) for i, g in enumerate(grids))
    out = base[None, ..., None] + 0.1 * rng.normal(
        size=(batch, *spatial_shape, channels)
    )
    return out.astype("float32")


# Structures: a tensor, a dict of tensors, or a list of tensors ---------------


def _items(x):
    """`[(key, tensor), ...]` of a tensor, dict or list, in a fixed order."""
    if isinstance(x, dict):
        return sorted(x.items())
    if isinstance(x, (list, tuple)):
        return list(enumerate(x))
    return [(None, x)]


def _values(x):
    return [v for _, v in _items(x)]


def _same_structure(a, b):
    return (
        isinstance(a, dict) == isinstance(b, dict)
        and isinstance(a, (list, tuple)) == isinstance(b, (list, tuple))
        and [k for k, _ in _items(a)] == [k for k, _ in _items(b)]
    )


def _allclose(a, b, **kw):
    if not _same_structure(a, b):
        return False
    return all(
        np.allclose(to_numpy(x), to_numpy(y), **kw)
        for x, y in zip(_values(a), _values(b))
    )


def _dtype(x):
    return keras.backend.standardize_dtype(x.dtype)


def _is_float(x):
    return "float" in _dtype(x)


def _map(fn, data):
    if isinstance(data, dict):
        return {k: fn(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [fn(v) for v in data]
    return fn(data)


def data_shape(data):
    return _values(data)[0].shape


def _repeat_first(data, n):
    return _map(lambda v: np.repeat(v[:1], n, axis=0), data)


def _symbolic_inputs(data, spatial_none=True):
    """`keras.Input`s for `data`; spatial sizes `None` for rank 4 and 5."""

    def one(name, x):
        shape = tuple(x.shape[1:])
        if spatial_none and len(x.shape) in (4, 5):
            shape = (None,) * (len(shape) - 1) + shape[-1:]
        return keras.Input(shape, dtype=str(x.dtype), name=name)

    if isinstance(data, dict):
        return {k: one(k, v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [one(f"input_{i}", v) for i, v in enumerate(data)]
    return one(IMAGES if np.issubdtype(data.dtype, np.floating) else MASKS, data)


def _output_images(out):
    """The float images of an output: `"images"`, `"*_images"` or a float tensor."""
    if isinstance(out, dict):
        return [v for k, v in _items(out) if k == IMAGES or k.endswith("_" + IMAGES)]
    return [v for v in _values(out) if _is_float(v)]


# The contract -----------------------------------------------------------------


def _builder(layer_class, init_kwargs, random):
    """`(kwargs, make)`: `make(**overrides)` builds a fresh layer."""
    init_kwargs = dict(init_kwargs)
    if random:
        init_kwargs.setdefault("seed", 1234)

    def make(**overrides):
        return layer_class(**{**init_kwargs, **overrides})

    return init_kwargs, make


def check_layer(
    layer_class,
    init_kwargs,
    data,
    random=True,
    identity_when_not_training=True,
    expected_spatial_shape=None,
    tmp_path=None,
    deterministic_when_not_training=True,
    slow=False,
):
    """The fast part of the common contract of every synthlayers layer.

    Checks: eager call (finite outputs with the shapes and dtypes announced
    by `compute_output_spec`); symbolic call with `None` spatial sizes whose
    announced shapes and dtypes agree with the eager outputs; config round
    trip (`from_config(get_config())` gives the same config and, with the
    same seed, the same outputs); `training=False` deterministic (and the
    identity when `identity_when_not_training`); and, for random layers,
    seeded reproducibility, consecutive calls that differ and per-sample
    variety in a batch of identical samples.

    Args:
        layer_class: a layer class, or any callable that builds the layer
            from `init_kwargs` (e.g. a preset such as `LabelsToImage.synthseg`).
        init_kwargs: keyword arguments of `layer_class`; random layers get
            `seed=1234` unless given.
        data: a tensor, a dict of tensors, or a list of tensors (layers that
            take `[image, transform]`), batch axis first.
        random: whether the layer draws random values.
        identity_when_not_training: the layer returns its input with
            `training=False`.
        expected_spatial_shape: spatial shape of the outputs of the data's
            rank, if it differs from the input's.
        tmp_path: a folder for the `.keras` file of the slow checks.
        deterministic_when_not_training: the layer is deterministic with
            `training=False` (`False` for generators that always draw).
        slow: also run `check_layer_slow` (XLA, `.keras`, mixed precision).

    Returns:
        `(layer, out)`: the layer and the output of its first call.
    """
    init_kwargs, make = _builder(layer_class, init_kwargs, random)
    layer = make()

    # Eager call, and agreement with the announced output spec.
    out = layer(data)
    spec = layer.compute_output_spec(
        _map(lambda v: keras.KerasTensor(v.shape, str(v.dtype)), data)
    )
    assert _same_structure(out, spec), (out, spec)
    for (key, tensor), expected in zip(_items(out), _values(spec)):
        assert tuple(tensor.shape) == tuple(expected.shape), (
            key,
            tensor.shape,
            expected.shape,
        )
        assert _dtype(tensor) == _dtype(expected), (key, tensor.dtype, expected.dtype)
        values = to_numpy(tensor)
        if np.issubdtype(values.dtype, np.floating):
            assert np.all(np.isfinite(values)), f"non-finite output {key}"
    if expected_spatial_shape is not None:
        for tensor in _values(out):
            if len(tensor.shape) == len(data_shape(data)):
                assert tuple(tensor.shape[1:-1]) == tuple(expected_spatial_shape)

    # Config round trip: the same config, and the same draws with the seed.
    config = layer.get_config()
    restored = type(layer).from_config(config)
    assert restored.get_config() == config
    assert _allclose(restored(data), out, rtol=1e-6, atol=1e-6), (
        "from_config(get_config()) gives different outputs"
    )

    # Symbolic call with None spatial sizes: the announced shapes and dtypes
    # agree with the eager outputs (None only where the input had None).
    symbolic = type(layer).from_config(config)(_symbolic_inputs(data))
    assert _same_structure(symbolic, out), (symbolic, out)
    for (key, announced), tensor in zip(_items(symbolic), _values(out)):
        assert len(announced.shape) == len(tensor.shape), (key, announced.shape)
        assert announced.shape[0] is None, (key, announced.shape)
        assert announced.shape[-1] == tensor.shape[-1], (key, announced.shape)
        for got, eager in zip(announced.shape[1:-1], tensor.shape[1:-1]):
            assert got is None or got == eager, (key, announced.shape, tensor.shape)
        assert _dtype(announced) == _dtype(tensor), (key, announced.dtype)

    # training=False: deterministic, identity for augmentations.
    if deterministic_when_not_training:
        eval_1 = layer(data, training=False)
        eval_2 = layer(data, training=False)
        assert _allclose(eval_1, eval_2, rtol=0, atol=0)
        if identity_when_not_training:
            assert _allclose(eval_1, data, rtol=0, atol=0)

    if random:
        # Seeded reproducibility: a fresh layer with the same seed.
        assert _allclose(make()(data), out, rtol=1e-6, atol=1e-6), (
            "same seed, different output"
        )
        # Consecutive calls differ.
        assert not _allclose(layer(data), out), "consecutive calls gave the same output"
        # Per-sample variety: a batch of identical samples gets different
        # draws. At least 4 samples (a flip of 2 axes repeats with chance
        # 1/4); the data's batch size when larger, as JAX compiles every
        # eager op anew for each shape (the contract test feeds 4 samples).
        same = _repeat_first(data, max(4, data_shape(data)[0]))
        varied = [to_numpy(v) for v in _values(make()(same))]
        assert any(
            not np.allclose(v[0], v[i]) for v in varied for i in range(1, len(v))
        ), "identical samples in a batch got identical draws"

    if slow:
        check_layer_slow(
            layer_class,
            init_kwargs,
            data,
            random=random,
            tmp_path=tmp_path,
            deterministic_when_not_training=deterministic_when_not_training,
        )
    return layer, out


def check_layer_slow(
    layer_class,
    init_kwargs,
    data,
    random=True,
    tmp_path=None,
    deterministic_when_not_training=True,
):
    """The slow part of the contract: compiled `predict`, `.keras`, mixed precision.

    Checks: `Model.predict` compiled (XLA with `jit_compile=True` where the
    backend has it) on `None` spatial sizes, drawing (through
    `SynthesisModel`) and, for a functional model, equal to the eager
    `training=False` call; a `.keras` save/load round trip giving the same
    config and the same draws; mixed precision (`dtype="mixed_float16"`):
    the float images of the output (`"images"`, `"*_images"`, or a float
    tensor output) come out float16 and finite. Arguments as `check_layer`.
    """
    init_kwargs, make = _builder(layer_class, init_kwargs, random)
    layer = make()
    out = layer(data)
    jit = keras.backend.backend() in ("tensorflow", "jax")

    # Compiled predict through a model that always draws.
    model = SynthesisModel(type(layer).from_config(layer.get_config()))
    model.compile(jit_compile=jit)
    predicted = model.predict(data, verbose=0)
    assert _same_structure(predicted, out), (predicted, out)
    for (key, tensor), expected in zip(_items(predicted), _values(out)):
        assert tuple(tensor.shape) == tuple(expected.shape), (key, tensor.shape)
        if np.issubdtype(np.asarray(tensor).dtype, np.floating):
            assert np.all(np.isfinite(tensor)), f"non-finite output {key}"
    if deterministic_when_not_training:
        inputs = _symbolic_inputs(data)
        functional = keras.Model(
            inputs, type(layer).from_config(layer.get_config())(inputs)
        )
        functional.compile(jit_compile=jit)
        assert _allclose(
            functional.predict(data, verbose=0),
            layer(data, training=False),
            rtol=1e-6,
            atol=1e-6,
        )

    # .keras save/load: the same config and the same draws.
    with tempfile.TemporaryDirectory() as folder:
        inputs = _symbolic_inputs(data, spatial_none=False)
        model = keras.Model(inputs, make()(inputs))
        path = str(Path(tmp_path or folder) / f"{type(layer).__name__}.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    assert loaded.layers[-1].get_config() == model.layers[-1].get_config()
    assert _allclose(
        loaded(data, training=True), model(data, training=True), rtol=1e-5, atol=1e-5
    )

    # Mixed precision: float images come out float16 and finite.
    if _output_images(out):
        for images in _output_images(make(dtype="mixed_float16")(data)):
            assert _dtype(images) == "float16", images.dtype
            assert np.all(np.isfinite(to_numpy(images))), "non-finite float16 images"
