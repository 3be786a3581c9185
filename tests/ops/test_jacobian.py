"""Tests of `jacobian_determinant` against `np.gradient` + `np.linalg.det`."""

import keras
import numpy as np
import pytest

from synthlayers.ops.jacobian import folding_fraction
from synthlayers.ops.jacobian import jacobian_determinant
from tests.helpers import to_numpy


def numpy_determinant(displacement):
    """float64 reference: Jacobian of id + u by np.gradient, then det."""
    u = np.asarray(displacement, "float64")
    ndim = u.ndim - 2
    spatial = tuple(range(1, ndim + 1))
    # jac[..., i, k] = d u_i / d x_k.
    jac = np.stack(
        [np.stack(np.gradient(u[..., i], axis=spatial), -1) for i in range(ndim)], -2
    )
    return np.linalg.det(jac + np.eye(ndim))


@pytest.mark.parametrize("shape", [(6, 7), (5, 6, 4), (2, 3), (4, 5, 3, 3)])
def test_matches_numpy(rng, shape):
    displacement = rng.normal(scale=0.5, size=(2, *shape, len(shape)))
    out = to_numpy(jacobian_determinant(displacement.astype("float32")))
    assert out.shape == (2, *shape)
    np.testing.assert_allclose(
        out, numpy_determinant(displacement), atol=1e-4, rtol=1e-4
    )


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_identity_is_one(ndim):
    out = to_numpy(
        jacobian_determinant(np.zeros((2, *(5, 4, 3)[:ndim], ndim), "float32"))
    )
    np.testing.assert_array_equal(out, np.ones((2, *(5, 4, 3)[:ndim])))


@pytest.mark.parametrize("ndim", [2, 3])
def test_affine_displacement_gives_matrix_determinant(rng, ndim):
    shape = (6, 5, 4)[:ndim]
    matrix = np.eye(ndim) + rng.normal(scale=0.3, size=(ndim, ndim))
    grid = np.stack(np.meshgrid(*map(np.arange, shape), indexing="ij"), -1)
    displacement = grid @ (matrix - np.eye(ndim)).T + rng.normal(size=ndim)
    out = to_numpy(jacobian_determinant(displacement[None].astype("float32")))
    np.testing.assert_allclose(out, np.linalg.det(matrix), rtol=1e-4)


def test_folding_is_negative():
    # x -> -x along axis 0: a reflection, determinant -1 everywhere.
    grid = np.stack(np.meshgrid(np.arange(5), np.arange(4), indexing="ij"), -1)
    displacement = np.zeros((1, 5, 4, 2), "float32")
    displacement[..., 0] = -2 * grid[..., 0]
    np.testing.assert_allclose(to_numpy(jacobian_determinant(displacement)), -1.0)


def test_folding_fraction_per_sample(rng):
    displacement = np.zeros((3, 6, 5, 2), "float32")
    displacement[1, ..., 0] = -2 * np.arange(6)[:, None]  # reflection: all folded
    displacement[2] = rng.normal(0, 3, (6, 5, 2))
    expected = [
        np.mean(numpy_determinant(displacement[b : b + 1]) <= 0) for b in range(3)
    ]
    np.testing.assert_allclose(to_numpy(folding_fraction(displacement)), expected)
    assert expected[0] == 0 and expected[1] == 1 and 0 < expected[2] < 1


def test_half_precision_keeps_dtype(rng):
    displacement = rng.normal(scale=0.2, size=(1, 5, 6, 2)).astype("float32")
    out = jacobian_determinant(keras.ops.cast(displacement, "float16"))
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    np.testing.assert_allclose(
        to_numpy(keras.ops.cast(out, "float32")),
        numpy_determinant(displacement),
        atol=2e-2,
    )


def test_invalid_shape():
    with pytest.raises(ValueError, match="displacement"):
        jacobian_determinant(np.zeros((1, 4, 4, 3), "float32"))
