"""Label lookup tables in the graph."""

import keras
import numpy as np
from keras import ops

_INT32 = np.iinfo("int32")


def _int_array(x, name):
    """`x` as a 1-D int64 NumPy array of int32 values, or `ValueError`."""
    array = np.asarray(x)
    if array.ndim == 0:
        array = array[None]
    if array.ndim != 1 or not (
        array.size == 0 or np.issubdtype(array.dtype, np.integer)
    ):
        raise ValueError(
            f"Expected `{name}` to be a list of integers. Received: {name}={x!r}"
        )
    array = array.astype("int64")
    if array.size and (array.min() < _INT32.min or array.max() > _INT32.max):
        raise ValueError(
            f"Expected `{name}` to hold int32 values. Received: {name}={x!r}"
        )
    return array


def lookup_table(keys, values, default):
    """Dense NumPy int32 table `t` with `t[k] = v` for each key/value pair.

    Size `max(keys) + 1`; other entries hold `default`. Keys must be
    non-negative integers (a `ValueError` names the received value
    otherwise); a key given twice must map to the same value.

    Args:
        keys: sequence of non-negative ints.
        values: sequence of ints, one per key.
        default: int, the value of the entries that no key fills.

    Returns:
        NumPy int32 array of shape `(max(keys) + 1,)`.
    """
    keys_array = _int_array(keys, "keys")
    values_array = _int_array(values, "values")
    if keys_array.size == 0:
        raise ValueError(f"Expected at least one key. Received: keys={keys!r}")
    if keys_array.min() < 0:
        raise ValueError(f"Expected non-negative integer keys. Received: keys={keys!r}")
    if keys_array.shape != values_array.shape:
        raise ValueError(
            f"Expected one value per key. Received: keys={keys!r}, values={values!r}"
        )
    if isinstance(default, bool) or not isinstance(default, (int, np.integer)):
        raise ValueError(
            f"Expected an integer `default`. Received: default={default!r}"
        )
    if not _INT32.min <= default <= _INT32.max:
        raise ValueError(f"Expected an int32 `default`. Received: default={default!r}")
    table = np.full(int(keys_array.max()) + 1, default, "int32")
    table[keys_array] = values_array
    if np.any(table[keys_array] != values_array):
        raise ValueError(
            "Expected each key to map to a single value. Received: "
            f"keys={keys!r}, values={values!r}"
        )
    return table


def apply_lookup_table(labels, table, default):
    """Map integer `labels` through a dense `table`, in the graph.

    Values outside `[0, len(table))` become `default` (clip, `ops.take`, then
    `ops.where` on the in-range mask), so labels absent from the table are
    never mapped to a real class by accident.

    Args:
        labels: integer tensor of any shape (floats are cast to int32).
        table: 1-D int NumPy array or tensor, e.g. from `lookup_table`.
        default: int, the value of out-of-range labels.

    Returns:
        int32 tensor of the shape of `labels`.
    """
    labels = ops.convert_to_tensor(labels)
    dtype = keras.backend.standardize_dtype(labels.dtype)
    if dtype not in ("int32", "int64", "uint32", "uint64"):
        # Small integer types widen losslessly; floats are truncated.
        labels = ops.cast(labels, "int32")
    table = ops.convert_to_tensor(table)
    if keras.backend.standardize_dtype(table.dtype) != "int32":
        table = ops.cast(table, "int32")
    size = table.shape[0]
    # Range test in the input dtype (before any narrowing cast).
    inside = ops.logical_and(ops.greater_equal(labels, 0), ops.less(labels, size))
    index = ops.cast(ops.clip(labels, 0, size - 1), "int32")
    mapped = ops.take(table, index, axis=0)
    return ops.where(inside, mapped, ops.full_like(mapped, default))
