"""Tests of the counter-based random fields (synthlayers/ops/random.py)."""

import keras
import numpy as np
import pytest
from keras import ops
from scipy import stats

from synthlayers.ops.random import hashed_normal
from synthlayers.ops.random import materialize
from synthlayers.ops.random import mix32


def _mix32_reference(x):
    """lowbias32 on uint32 in NumPy (the published reference arithmetic)."""
    x = np.asarray(x).astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return x


def test_mix32_matches_the_uint32_reference_bit_for_bit():
    values = np.array(
        [0, 1, 2, 12345, 2**31 - 1, -(2**31), -1, -12345, 0x7FEB352D], "int64"
    )
    values = np.concatenate(
        [values, np.random.default_rng(0).integers(-(2**31), 2**31, 1000)]
    )
    got = ops.convert_to_numpy(mix32(ops.convert_to_tensor(values.astype("int32"))))
    expected = _mix32_reference(values.astype("int32").view("uint32")).view("int32")
    np.testing.assert_array_equal(got, expected)
    assert mix32(ops.convert_to_tensor(np.int32(1))) is not None
    assert int(expected[1]) != 0


def test_hashed_normal_is_standard_normal():
    x = ops.convert_to_numpy(
        hashed_normal((4, 101, 250), keras.random.SeedGenerator(3))
    )
    assert x.shape == (4, 101, 250) and x.dtype == np.float32
    z = x.ravel().astype("float64")
    # 101000 values: mean within 4 standard errors, variance and tails normal.
    assert abs(z.mean()) < 4 / np.sqrt(z.size)
    assert abs(z.std() - 1) < 0.01
    assert abs(stats.kurtosis(z)) < 0.05
    assert abs(stats.skew(z)) < 0.03
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert np.abs(z).max() < 6.0
    # No repeats between samples, nor lag-1 correlation along the field.
    assert np.unique(z).size > 0.99 * z.size
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 0.02


def test_hashed_normal_pairs_are_independent():
    """The two values of a Box-Muller pair (the cosine and sine halves).

    Their uniforms come from one hash chain (the second hashes the first's
    bits): the pair must still look like two independent normals, in
    themselves and in their squares (the shared radius), and the pairs of
    the two samples must not repeat each other.
    """
    x = ops.convert_to_numpy(hashed_normal((2, 200_000), keras.random.SeedGenerator(5)))
    x = x.astype("float64")
    cosines, sines = x[:, :100_000].ravel(), x[:, 100_000:].ravel()
    bound = 4 / np.sqrt(cosines.size)  # 4 standard errors of a correlation
    assert abs(np.corrcoef(cosines, sines)[0, 1]) < bound
    assert abs(np.corrcoef(cosines**2, sines**2)[0, 1]) < 2 * bound
    # Independent normals: x^2 + y^2 is chi-square with 2 degrees of freedom.
    assert stats.kstest(cosines**2 + sines**2, "chi2", args=(2,)).pvalue > 1e-3
    assert abs(np.corrcoef(x[0], x[1])[0, 1]) < 4 / np.sqrt(x.shape[1])


def test_hashed_normal_seeds():
    a = ops.convert_to_numpy(hashed_normal((2, 7, 5), keras.random.SeedGenerator(1)))
    b = ops.convert_to_numpy(hashed_normal((2, 7, 5), keras.random.SeedGenerator(1)))
    c = ops.convert_to_numpy(hashed_normal((2, 7, 5), keras.random.SeedGenerator(2)))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert not np.allclose(a[0], a[1])  # samples differ
    generator = keras.random.SeedGenerator(1)
    first = ops.convert_to_numpy(hashed_normal((1, 9), generator))
    second = ops.convert_to_numpy(hashed_normal((1, 9), generator))
    assert not np.allclose(first, second)  # the generator advances


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_hashed_normal_odd_size_and_dtype(dtype):
    x = hashed_normal((3, 5, 3), keras.random.SeedGenerator(0), dtype=dtype)
    assert tuple(x.shape) == (3, 5, 3)
    assert keras.backend.standardize_dtype(x.dtype) == dtype
    assert np.isfinite(ops.convert_to_numpy(x)).all()


@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_materialize_is_the_identity(dtype):
    values = np.random.default_rng(0).normal(size=(3, 4, 2)) * 1000
    x = values.astype(dtype)
    got = ops.convert_to_numpy(materialize(ops.convert_to_tensor(x)))
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, x)
