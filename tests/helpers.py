"""Helpers shared by the tests, above all `check_layer`, run for every layer."""

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


def _allclose(a, b, **kw):
    a, b = as_numpy_tree(a), as_numpy_tree(b)
    if isinstance(a, dict):
        return set(a) == set(b) and all(np.allclose(a[k], b[k], **kw) for k in a)
    return np.allclose(a, b, **kw)


def _values(x):
    return list(x.values()) if isinstance(x, dict) else [x]


def _symbolic_inputs(data, spatial_none=True):
    def one(key, x):
        shape = tuple(x.shape[1:-1])
        spatial = (None,) * len(shape) if spatial_none else shape
        return keras.Input((*spatial, x.shape[-1]), dtype=str(x.dtype), name=key)

    if isinstance(data, dict):
        return {k: one(k, v) for k, v in data.items()}
    return one(IMAGES if np.issubdtype(data.dtype, np.floating) else MASKS, data)


def check_layer(
    layer_class,
    init_kwargs,
    data,
    random=True,
    identity_when_not_training=True,
    expected_spatial_shape=None,
    tmp_path=None,
):
    """The common contract of every synthlayers layer.

    Checks: eager call (finite outputs with the shapes and dtypes announced by
    the symbolic call); symbolic call with `None` spatial dimensions; a
    compiled `Model.predict` (XLA with `jit_compile=True` where the backend has
    it); config round trip and `.keras` save/load giving the same outputs;
    `training=False` deterministic (and the identity when
    `identity_when_not_training`); and, for random layers, seeded
    reproducibility, consecutive calls that differ and per-sample variety in
    a batch of identical samples; mixed precision.
    """
    init_kwargs = dict(init_kwargs)
    if random:
        init_kwargs.setdefault("seed", 1234)
    layer = layer_class(**init_kwargs)

    # Eager call, and agreement with the announced output spec.
    out = layer(data)
    spec = layer.compute_output_spec(
        {k: keras.KerasTensor(v.shape, str(v.dtype)) for k, v in data.items()}
        if isinstance(data, dict)
        else keras.KerasTensor(data.shape, str(data.dtype))
    )
    assert isinstance(out, dict) == isinstance(spec, dict)
    if isinstance(out, dict):
        assert set(out) == set(spec), (set(out), set(spec))
        pairs = [(out[k], spec[k]) for k in out]
    else:
        pairs = [(out, spec)]
    for tensor, expected in pairs:
        assert tuple(tensor.shape) == tuple(expected.shape), (
            tensor.shape,
            expected.shape,
        )
        assert keras.backend.standardize_dtype(tensor.dtype) == expected.dtype
        values = to_numpy(tensor)
        if np.issubdtype(values.dtype, np.floating):
            assert np.all(np.isfinite(values)), "non-finite output"
    if expected_spatial_shape is not None:
        for tensor in _values(out):
            if len(tensor.shape) == len(data_shape(data)):
                assert tuple(tensor.shape[1:-1]) == tuple(expected_spatial_shape)

    # Symbolic call with None spatial dims.
    symbolic = _symbolic_inputs(data)
    symbolic_out = layer_class.from_config(layer.get_config())(symbolic)
    assert isinstance(symbolic_out, dict) == isinstance(out, dict)

    # training=False: deterministic, identity for augmentations.
    eval_1 = layer(data, training=False)
    eval_2 = layer(data, training=False)
    assert _allclose(eval_1, eval_2, rtol=0, atol=0)
    if identity_when_not_training:
        assert _allclose(eval_1, data, rtol=0, atol=0)

    if random:
        # Seeded reproducibility: a fresh layer with the same seed.
        again = layer_class(**init_kwargs)(data)
        assert _allclose(again, out, rtol=1e-6, atol=1e-6), (
            "same seed, different output"
        )
        # Consecutive calls differ.
        assert not _allclose(layer(data), out), "consecutive calls gave the same output"
        # Per-sample variety: a batch of identical samples gets different draws.
        same = _repeat_first(data, 3)
        varied = _values(layer_class(**init_kwargs)(same))
        first = to_numpy(varied[0])
        assert not np.allclose(first[0], first[1]) or not np.allclose(
            first[1], first[2]
        ), "identical samples in a batch got identical draws"

    # Compiled Model.predict on None spatial dims. `predict` passes
    # training=False to every layer of a functional model, so a small model
    # that always calls the layer in training mode exercises the random path.
    model = SynthesisModel(layer_class.from_config(layer.get_config()))
    model.compile(jit_compile=keras.backend.backend() in ("tensorflow", "jax"))
    predicted = model.predict(data, verbose=0)
    assert isinstance(predicted, dict) == isinstance(out, dict)
    if isinstance(out, dict):
        assert set(predicted) == set(out)
        pairs = [(predicted[k], out[k]) for k in out]
    else:
        pairs = [(predicted, out)]
    for tensor, expected in pairs:
        assert tuple(tensor.shape) == tuple(expected.shape)
        if np.issubdtype(tensor.dtype, np.floating):
            assert np.all(np.isfinite(tensor))
    inputs = _symbolic_inputs(data)
    model = keras.Model(inputs, layer_class.from_config(layer.get_config())(inputs))
    model.compile(jit_compile=keras.backend.backend() in ("tensorflow", "jax"))
    assert _allclose(model.predict(data, verbose=0), eval_1, rtol=1e-6, atol=1e-6)

    # Config round trip, and .keras save/load giving the same draws.
    config = layer.get_config()
    assert layer_class.from_config(config).get_config() == config
    if tmp_path is not None:
        inputs = _symbolic_inputs(data, spatial_none=False)
        model = keras.Model(inputs, layer_class(**init_kwargs)(inputs))
        path = str(tmp_path / f"{layer_class.__name__}.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        assert loaded.layers[-1].get_config() == model.layers[-1].get_config()
        assert _allclose(
            loaded(data, training=True),
            model(data, training=True),
            rtol=1e-5,
            atol=1e-5,
        )

    # Mixed precision: float images come out float16 and finite.
    if (
        isinstance(data, dict)
        and IMAGES in data
        or not isinstance(data, dict)
        and np.issubdtype(data.dtype, np.floating)
    ):
        mixed = layer_class(**{**init_kwargs, "dtype": "mixed_float16"})(data)
        images = mixed[IMAGES] if isinstance(mixed, dict) else mixed
        assert keras.backend.standardize_dtype(images.dtype) == "float16"
        assert np.all(np.isfinite(to_numpy(images)))
    return layer, out


def data_shape(data):
    return next(iter(data.values())).shape if isinstance(data, dict) else data.shape


def _repeat_first(data, n):
    if isinstance(data, dict):
        return {k: np.repeat(v[:1], n, axis=0) for k, v in data.items()}
    return np.repeat(data[:1], n, axis=0)
