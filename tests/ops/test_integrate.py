"""Tests of scaling and squaring against NumPy/SciPy references."""

import keras
import numpy as np
import pytest
from scipy import ndimage

from synthlayers.ops.grid import identity_grid
from synthlayers.ops.integrate import integrate_velocity
from synthlayers.ops.jacobian import jacobian_determinant
from synthlayers.ops.resample import resample
from tests.helpers import to_numpy


def smooth_field(rng, batch, shape, max_norm, sigma=3.0):
    """A smooth random `(batch, *shape, ndim)` field, max |component| = max_norm."""
    ndim = len(shape)
    noise = rng.normal(size=(batch, *shape, ndim))
    field = ndimage.gaussian_filter(noise, sigma=(0, *[sigma] * ndim, 0))
    return (field * max_norm / np.abs(field).max()).astype("float32")


def numpy_integrate(velocity, steps):
    """float64 scaling and squaring with `map_coordinates(mode="nearest")`."""
    shape = velocity.shape[1:-1]
    ndim = len(shape)
    grid = np.stack(np.meshgrid(*map(np.arange, shape), indexing="ij"))
    u = np.asarray(velocity, "float64") / 2**steps
    for _ in range(steps):
        new = np.empty_like(u)
        for b in range(len(u)):
            points = grid + np.moveaxis(u[b], -1, 0)
            for d in range(ndim):
                new[b, ..., d] = u[b, ..., d] + ndimage.map_coordinates(
                    u[b, ..., d], points, order=1, mode="nearest"
                )
        u = new
    return u


def interior(x, margin):
    ndim = x.ndim - 2
    return x[(slice(None), *[slice(margin, -margin)] * ndim)]


@pytest.mark.parametrize("ndim", [2, 3])
def test_constant_field_is_translation(ndim):
    shape = (6, 7, 5)[:ndim]
    shift = np.array([1.5, -2.25, 0.75][:ndim], "float32")
    velocity = np.broadcast_to(shift, (2, *shape, ndim)).astype("float32")
    out = to_numpy(integrate_velocity(velocity, steps=5))
    np.testing.assert_allclose(out, velocity, atol=1e-5)


@pytest.mark.parametrize("ndim", [2, 3])
def test_matches_numpy_reference(rng, ndim):
    shape = (12, 11, 10)[:ndim]
    velocity = smooth_field(rng, 2, shape, max_norm=3.0, sigma=2.0)
    out = to_numpy(integrate_velocity(velocity, steps=4))
    np.testing.assert_allclose(out, numpy_integrate(velocity, 4), atol=1e-4)


def test_steps_zero_returns_input(rng):
    velocity = rng.normal(size=(2, 5, 6, 2)).astype("float32")
    np.testing.assert_array_equal(
        to_numpy(integrate_velocity(velocity, steps=0)), velocity
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_inverse_and_positive_jacobian(rng, ndim):
    shape = (40, 40) if ndim == 2 else (20, 20, 20)
    velocity = smooth_field(rng, 2, shape, max_norm=2.0, sigma=4.0)
    forward = integrate_velocity(velocity)
    backward = integrate_velocity(-velocity)
    # (id + u) o (id + w) - id = w + u o (id + w).
    grid = identity_grid(shape)[None]
    residual = to_numpy(
        backward + resample(forward, grid + backward, "linear", "nearest")
    )
    assert np.abs(interior(residual, 4)).max() < 0.05
    assert np.abs(to_numpy(forward)).max() > 1.0  # not trivially small
    assert to_numpy(jacobian_determinant(forward)).min() > 0


def test_half_precision_keeps_dtype(rng):
    velocity = smooth_field(rng, 1, (10, 10), max_norm=2.0)
    out = integrate_velocity(keras.ops.cast(velocity, "float16"))
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    np.testing.assert_allclose(
        to_numpy(keras.ops.cast(out, "float32")),
        numpy_integrate(velocity, 7),
        atol=2e-2,
    )


def test_invalid_steps():
    velocity = np.zeros((1, 4, 4, 2), "float32")
    for steps in (-1, 1.5, True):
        with pytest.raises(ValueError, match="steps"):
            integrate_velocity(velocity, steps=steps)
    with pytest.raises(ValueError, match="velocity"):
        integrate_velocity(np.zeros((1, 4, 4, 3), "float32"))
