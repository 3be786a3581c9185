"""Vectorised random draws shared by the layers (always from a SeedGenerator)."""

import keras
import numpy as np
from keras import ops

from synthlayers.ops.random import materialize

DISTRIBUTIONS = ("uniform", "normal")


def draw_from_ranges(seed_generator, batch_size, ranges, distribution="uniform"):
    """Draw a `(batch, len(ranges))` float32 tensor, column `j` in `ranges[j]`.

    `"uniform"`: uniform on `[min, max)`. `"normal"`: mean at the centre of
    the range, standard deviation a quarter of its width, clipped to the
    range (so the range spans +-2 standard deviations).
    """
    low = ops.convert_to_tensor(np.array([r[0] for r in ranges], "float32"))
    high = ops.convert_to_tensor(np.array([r[1] for r in ranges], "float32"))
    shape = (batch_size, len(ranges))
    # Materialised: under XLA a draw fused into a whole-volume consumer is
    # recomputed per voxel (synthlayers.ops.random.materialize).
    if distribution == "uniform":
        u = materialize(keras.random.uniform(shape, seed=seed_generator))
        return low + (high - low) * u
    z = materialize(keras.random.normal(shape, seed=seed_generator))
    values = (low + high) / 2 + (high - low) / 4 * z
    return ops.minimum(ops.maximum(values, low), high)


def draw_mask(seed_generator, batch_size, probability):
    """`(batch,)` booleans, True with `probability`; None when it is 1."""
    if probability >= 1:
        return None
    u = materialize(keras.random.uniform((batch_size,), seed=seed_generator))
    return u < probability


def where_mask(mask, values, default):
    """`values` where the per-sample `mask` is True, else `default`."""
    if mask is None:
        return values
    mask = ops.reshape(mask, (-1,) + (1,) * (len(values.shape) - 1))
    return ops.where(mask, values, ops.cast(default, values.dtype))
