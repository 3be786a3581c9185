"""Label lookup tables."""

import keras
import numpy as np
import pytest

from synthlayers.ops import apply_lookup_table
from synthlayers.ops import lookup_table
from tests.helpers import to_numpy


def test_lookup_table_dense():
    table = lookup_table([0, 3, 5], [10, 30, 50], default=-1)
    assert table.dtype == np.int32
    np.testing.assert_array_equal(table, [10, -1, -1, 30, -1, 50])


def test_round_trip(rng):
    keys = np.array([0, 2, 4, 7, 41, 42])
    values = np.arange(len(keys))
    labels = rng.choice(keys, size=(2, 6, 5, 4, 1)).astype("int32")
    forward = lookup_table(keys, values, default=-1)
    backward = lookup_table(values, keys, default=-1)
    mapped = apply_lookup_table(labels, forward, -1)
    assert mapped.shape == labels.shape
    assert keras.backend.standardize_dtype(mapped.dtype) == "int32"
    np.testing.assert_array_equal(to_numpy(mapped), np.searchsorted(keys, labels))
    np.testing.assert_array_equal(
        to_numpy(apply_lookup_table(mapped, backward, -1)), labels
    )


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "int16"])
def test_unknown_and_out_of_range_get_default(dtype):
    table = lookup_table([1, 3], [5, 7], default=-9)
    labels = np.array([0, 1, 2, 3, 4, 100], dtype)
    expected = [-9, 5, -9, 7, -9, -9]
    if dtype not in ("uint8",):
        labels = np.concatenate([labels, np.array([-1, -300], dtype)])
        expected += [-9, -9]
    out = apply_lookup_table(labels, table, -9)
    assert keras.backend.standardize_dtype(out.dtype) == "int32"
    np.testing.assert_array_equal(to_numpy(out), expected)


@pytest.mark.skipif(
    keras.backend.backend() == "jax", reason="JAX narrows int64 to int32 by default"
)
def test_int64_beyond_int32_range_gets_default():
    table = lookup_table([1], [5], default=0)
    labels = np.array([1, 2**33 + 1, -(2**33) + 1], "int64")
    np.testing.assert_array_equal(
        to_numpy(apply_lookup_table(labels, table, 0)), [5, 0, 0]
    )


@pytest.mark.parametrize(
    "keys, values, match",
    [
        ([0, -1], [1, 2], "-1"),
        ([0.5, 1], [1, 2], "0.5"),
        ([1.0, 2.0], [1, 2], "1.0"),
        ([1, 2], [1], "one value per key"),
        ([1, 1], [1, 2], "single value"),
        ([], [], "at least one"),
        ([1], [1.5], "1.5"),
    ],
)
def test_lookup_table_validation(keys, values, match):
    with pytest.raises(ValueError, match=match):
        lookup_table(keys, values, default=0)


def test_lookup_table_duplicate_consistent_keys_allowed():
    np.testing.assert_array_equal(lookup_table([2, 2], [4, 4], default=0), [0, 0, 4])


def test_lookup_table_rejects_bad_default():
    with pytest.raises(ValueError, match="default"):
        lookup_table([1], [1], default=0.5)
