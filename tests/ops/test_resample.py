"""Tests of `resample` against SciPy's `map_coordinates` (float64)."""

import keras
import numpy as np
import pytest
from scipy import ndimage

from synthlayers.ops.grid import identity_grid
from synthlayers.ops.resample import resample
from tests.helpers import to_numpy

SHAPES = {2: (7, 9), 3: (5, 6, 7)}
OUT_SHAPES = {2: (6, 5), 3: (4, 3, 5)}


def scipy_resample(image, coordinates, order, mode, cval=0.0):
    """Reference: per sample and channel map_coordinates, float64."""
    image = np.asarray(image, "float64")
    coordinates = np.broadcast_to(
        coordinates, (image.shape[0], *coordinates.shape[1:])
    ).astype("float64")
    out = np.empty((*coordinates.shape[:-1], image.shape[-1]))
    for b in range(image.shape[0]):
        grid = np.moveaxis(coordinates[b], -1, 0)
        for c in range(image.shape[-1]):
            out[b, ..., c] = ndimage.map_coordinates(
                image[b, ..., c], grid, order=order, mode=mode, cval=cval
            )
    return out


def random_coordinates(rng, batch, in_shape, out_shape, margin=3.0):
    """Coordinates inside and well outside `[0, n - 1]` on every axis."""
    low = -margin
    high = np.asarray(in_shape) - 1 + margin
    return rng.uniform(low, high, (batch, *out_shape, len(in_shape))).astype("float32")


def away_from_ties(coordinates):
    """Move coordinates whose fraction is close to .5 away from the tie."""
    frac = coordinates - np.floor(coordinates)
    near = np.abs(frac - 0.5) < 0.05
    return np.where(near, coordinates + 0.1, coordinates).astype("float32")


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("fill_value", [0.0, 1.5])
@pytest.mark.parametrize("coordinate_batch", [3, 1])
def test_linear_constant_matches_scipy(rng, ndim, fill_value, coordinate_batch):
    image = rng.normal(size=(3, *SHAPES[ndim], 2)).astype("float32")
    coords = random_coordinates(rng, coordinate_batch, SHAPES[ndim], OUT_SHAPES[ndim])
    out = to_numpy(resample(image, coords, "linear", "constant", fill_value))
    expected = scipy_resample(image, coords, 1, "grid-constant", fill_value)
    assert out.shape == (3, *OUT_SHAPES[ndim], 2)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("coordinate_batch", [2, 1])
def test_linear_nearest_fill_matches_scipy(rng, ndim, coordinate_batch):
    image = rng.normal(size=(2, *SHAPES[ndim], 3)).astype("float32")
    coords = random_coordinates(rng, coordinate_batch, SHAPES[ndim], OUT_SHAPES[ndim])
    out = to_numpy(resample(image, coords, "linear", "nearest"))
    expected = scipy_resample(image, coords, 1, "nearest")
    np.testing.assert_allclose(out, expected, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("fill_mode", ["constant", "nearest"])
def test_nearest_matches_scipy(rng, ndim, fill_mode):
    image = rng.normal(size=(2, *SHAPES[ndim], 2)).astype("float32")
    coords = away_from_ties(random_coordinates(rng, 2, SHAPES[ndim], OUT_SHAPES[ndim]))
    out = to_numpy(resample(image, coords, "nearest", fill_mode, -7.0))
    mode = "grid-constant" if fill_mode == "constant" else "nearest"
    expected = scipy_resample(image, coords, 0, mode, -7.0)
    np.testing.assert_array_equal(out, expected.astype("float32"))


@pytest.mark.parametrize("ndim", [2, 3])
def test_nearest_labels_stay_integer(rng, ndim):
    labels = rng.choice([0, 3, 17, 42], size=(2, *SHAPES[ndim], 1)).astype("int32")
    coords = away_from_ties(random_coordinates(rng, 1, SHAPES[ndim], OUT_SHAPES[ndim]))
    out = resample(labels, coords, "nearest", "constant", 99)
    assert keras.backend.standardize_dtype(out.dtype) == "int32"
    out = to_numpy(out)
    assert set(np.unique(out)) <= {0, 3, 17, 42, 99}
    assert 99 in out  # some coordinates are outside
    expected = scipy_resample(labels, coords, 0, "grid-constant", 99)
    np.testing.assert_array_equal(out, expected.astype("int32"))


def test_nearest_uint8_labels(rng):
    labels = rng.integers(0, 255, size=(1, 6, 7, 1)).astype("uint8")
    coords = random_coordinates(rng, 1, (6, 7), (4, 4))
    out = resample(labels, coords, "nearest", "nearest")
    assert keras.backend.standardize_dtype(out.dtype) == "uint8"
    assert set(np.unique(to_numpy(out))) <= set(np.unique(labels))


@pytest.mark.parametrize("interpolation", ["linear", "nearest"])
@pytest.mark.parametrize("ndim", [2, 3])
def test_identity_coordinates_return_input(rng, interpolation, ndim):
    image = rng.normal(size=(2, *SHAPES[ndim], 3)).astype("float32")
    coords = to_numpy(identity_grid(SHAPES[ndim]))[None]
    out = to_numpy(resample(image, coords, interpolation))
    np.testing.assert_array_equal(out, image)


def test_linear_integer_image_gives_float32(rng):
    image = rng.integers(0, 5, size=(1, 5, 5, 1)).astype("int32")
    coords = random_coordinates(rng, 1, (5, 5), (3, 3))
    out = resample(image, coords)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    expected = scipy_resample(image, coords, 1, "grid-constant")
    np.testing.assert_allclose(to_numpy(out), expected, atol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_image(rng, dtype):
    image = rng.normal(size=(2, 6, 7, 1)).astype("float32")
    coords = random_coordinates(rng, 2, (6, 7), (5, 5))
    out = resample(keras.ops.cast(image, dtype), coords, fill_value=0.5)
    assert keras.backend.standardize_dtype(out.dtype) == dtype
    rounded = to_numpy(keras.ops.cast(keras.ops.cast(image, dtype), "float32"))
    expected = scipy_resample(rounded, coords, 1, "grid-constant", 0.5)
    tol = 1e-2 if dtype == "float16" else 5e-2
    np.testing.assert_allclose(
        to_numpy(keras.ops.cast(out, "float32")), expected, atol=tol
    )


def test_batch_one_image_broadcasts_over_coordinates(rng):
    image = rng.normal(size=(1, 6, 7, 2)).astype("float32")
    coords = random_coordinates(rng, 3, (6, 7), (4, 5))
    out = to_numpy(resample(image, coords))
    assert out.shape == (3, 4, 5, 2)
    np.testing.assert_allclose(
        out,
        scipy_resample(np.repeat(image, 3, 0), coords, 1, "grid-constant"),
        atol=2e-5,
    )


def test_one_dimensional(rng):
    image = rng.normal(size=(2, 9, 1)).astype("float32")
    coords = random_coordinates(rng, 2, (9,), (11,))
    out = to_numpy(resample(image, coords, fill_value=2.0))
    np.testing.assert_allclose(
        out, scipy_resample(image, coords, 1, "grid-constant", 2.0), atol=2e-5
    )


def test_invalid_arguments():
    image = np.zeros((1, 4, 4, 1), "float32")
    coords = np.zeros((1, 4, 4, 2), "float32")
    with pytest.raises(ValueError, match="interpolation"):
        resample(image, coords, interpolation="cubic")
    with pytest.raises(ValueError, match="fill_mode"):
        resample(image, coords, fill_mode="reflect")
    with pytest.raises(ValueError, match="coordinates"):
        resample(image, np.zeros((1, 4, 4, 3), "float32"))


def test_compiled_with_dynamic_batch(rng):
    """Inside a compiled model (XLA where available), batch unknown."""
    image = rng.normal(size=(3, 6, 7, 2)).astype("float32")
    coords = random_coordinates(rng, 3, (6, 7), (4, 5))
    inputs = [keras.Input((6, 7, 2)), keras.Input((4, 5, 2))]

    class Resample(keras.layers.Layer):
        def call(self, image, coordinates):
            return resample(image, coordinates, "linear", "constant", 0.5)

    model = keras.Model(inputs, Resample()(*inputs))
    model.compile(jit_compile=keras.backend.backend() in ("tensorflow", "jax"))
    out = model.predict([image, coords], verbose=0, batch_size=3)
    expected = scipy_resample(image, coords, 1, "grid-constant", 0.5)
    np.testing.assert_allclose(out, expected, atol=2e-5)


def gradients(function, *args):
    """Gradients of a scalar `function(*args)` w.r.t. every argument, as NumPy."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        args = [tf.constant(a) for a in args]
        with tf.GradientTape() as tape:
            tape.watch(args)
            value = function(*args)
        return [g.numpy() for g in tape.gradient(value, args)]
    if backend == "jax":
        import jax

        grads = jax.grad(function, argnums=tuple(range(len(args))))(*args)
        return [np.asarray(g) for g in grads]
    if backend == "torch":
        import torch

        args = [torch.tensor(a, requires_grad=True) for a in args]
        function(*args).backward()
        return [a.grad.numpy() for a in args]
    pytest.skip(f"no gradient helper for backend {backend}")


@pytest.mark.parametrize("fill_mode", ["constant", "nearest"])
def test_gradients_finite_and_nonzero(rng, fill_mode):
    image = rng.normal(size=(2, 5, 6, 4, 2)).astype("float32")
    coords = random_coordinates(rng, 2, (5, 6, 4), (3, 4, 3), margin=0.5)
    coords[0, 1, 2, 1] = (2.3, 3.6, 1.7)  # away from the kinks at integers

    def loss(image, coords):
        out = resample(image, coords, fill_mode=fill_mode, fill_value=0.5)
        return keras.ops.sum(out**2)

    grad_image, grad_coords = gradients(loss, image, coords)
    for grad in (grad_image, grad_coords):
        assert np.all(np.isfinite(grad))
        assert np.any(grad != 0)

    # The coordinate gradient matches a finite difference of the interpolant.
    step = np.zeros(coords.shape, "float32")
    step[0, 1, 2, 1, 0] = 1e-2  # along axis 0
    numeric = (
        float(to_numpy(loss(image, coords + step)))
        - float(to_numpy(loss(image, coords - step)))
    ) / 2e-2
    np.testing.assert_allclose(grad_coords[0, 1, 2, 1, 0], numeric, rtol=2e-2)
