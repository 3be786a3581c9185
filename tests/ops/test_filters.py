"""Separable Gaussian filtering against float64 SciPy references."""

import keras
import numpy as np
import pytest
from scipy import ndimage

from synthlayers.ops import gaussian_blur
from synthlayers.ops import gaussian_kernel_matrix
from tests.helpers import to_numpy


def _scipy_blur(x, sigma, truncate, mode):
    """float64 `gaussian_filter` per sample and channel."""
    x = x.astype("float64")
    out = np.empty_like(x)
    for b in range(x.shape[0]):
        for c in range(x.shape[-1]):
            out[b, ..., c] = ndimage.gaussian_filter(
                x[b, ..., c], sigma[b], truncate=truncate, mode=mode, cval=0.0
            )
    return out


def _sigmas(rng, batch, ndim):
    """Different sigma per sample and per axis, with a zero among them."""
    sigma = rng.uniform(0.4, 2.5, (batch, ndim))
    sigma[0, -1] = 0.0
    return sigma.astype("float32")


@pytest.mark.parametrize("mode", ["nearest", "constant"])
@pytest.mark.parametrize("truncate", [4.0, 2.0])
@pytest.mark.parametrize("shape", [(13, 16), (9, 10, 12)])
def test_blur_matches_scipy(rng, shape, mode, truncate):
    x = rng.normal(size=(3, *shape, 2)).astype("float32")
    sigma = _sigmas(rng, 3, len(shape))
    out = to_numpy(gaussian_blur(x, sigma, truncate=truncate, mode=mode))
    assert out.shape == x.shape
    np.testing.assert_allclose(
        out, _scipy_blur(x, sigma, truncate, mode), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("mode", ["nearest", "constant"])
def test_per_sample_normalisation(rng, mode):
    """Regression (SynthSeg): each sample's kernel is normalised on its own."""
    x = rng.normal(size=(4, 10, 11, 1)).astype("float32")
    sigma = np.array([[0.5, 3.0], [2.0, 0.7], [1.0, 1.0], [4.0, 0.0]], "float32")
    batched = to_numpy(gaussian_blur(x, sigma, mode=mode))
    for b in range(4):
        alone = to_numpy(gaussian_blur(x[b : b + 1], sigma[b : b + 1], mode=mode))
        np.testing.assert_allclose(batched[b : b + 1], alone, rtol=1e-6, atol=1e-6)
    matrices = to_numpy(gaussian_kernel_matrix(sigma[:, 0], 10, mode="nearest"))
    np.testing.assert_allclose(matrices.sum(axis=-1), 1, atol=1e-6)


@pytest.mark.parametrize("mode", ["nearest", "constant"])
def test_radius_larger_than_axis(rng, mode):
    """Kernels wider than the axis: taps fold onto the edge (or are dropped)."""
    x = rng.normal(size=(2, 6, 8, 1)).astype("float32")
    sigma = np.array([[5.0, 9.0], [3.0, 0.8]], "float32")
    out = to_numpy(gaussian_blur(x, sigma, mode=mode))
    np.testing.assert_allclose(
        out, _scipy_blur(x, sigma, 4.0, mode), rtol=1e-5, atol=1e-5
    )


def test_zero_sigma_is_exact_identity(rng):
    x = rng.normal(size=(2, 7, 8, 9, 3)).astype("float32")
    out = to_numpy(gaussian_blur(x, np.zeros((2, 3), "float32")))
    np.testing.assert_array_equal(out, x)
    matrix = to_numpy(
        gaussian_kernel_matrix(np.zeros(2, "float32"), 7, mode="constant")
    )
    np.testing.assert_array_equal(matrix, np.broadcast_to(np.eye(7), (2, 7, 7)))


def test_constant_image_stays_constant():
    x = np.full((3, 9, 10, 11, 2), 3.25, "float32")
    sigma = np.array([[0.5, 2.0, 6.0], [1.0, 0.0, 3.0], [20.0, 20.0, 20.0]], "float32")
    out = to_numpy(gaussian_blur(x, sigma, mode="nearest"))
    np.testing.assert_allclose(out, x, rtol=1e-5)


def test_shared_sigma_column_and_float16(rng):
    x = rng.normal(size=(2, 9, 10, 1)).astype("float16")
    sigma = np.array([[1.0], [2.0]], "float32")
    out = gaussian_blur(x, sigma)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    expected = _scipy_blur(
        x.astype("float32"), np.repeat(sigma, 2, axis=1), 4.0, "nearest"
    )
    np.testing.assert_allclose(to_numpy(out), expected, atol=1e-2)


def test_validation():
    with pytest.raises(ValueError, match="mode"):
        gaussian_kernel_matrix(np.ones(2, "float32"), 5, mode="reflect")
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(np.zeros((1, 4, 5, 1), "float32"), np.ones((1, 3), "float32"))


class _Blur(keras.layers.Layer):
    def call(self, x, sigma):
        return gaussian_blur(x, sigma)


def test_blur_in_compiled_model_with_dynamic_batch(rng):
    x = rng.normal(size=(3, 8, 9, 2)).astype("float32")
    sigma = _sigmas(rng, 3, 2)
    image, sigma_input = keras.Input((8, 9, 2)), keras.Input((2,))
    model = keras.Model([image, sigma_input], _Blur()(image, sigma_input))
    model.compile(jit_compile=keras.backend.backend() in ("tensorflow", "jax"))
    out = model.predict([x, sigma], verbose=0, batch_size=2)
    np.testing.assert_allclose(
        out, _scipy_blur(x, sigma, 4.0, "nearest"), rtol=1e-5, atol=1e-5
    )
