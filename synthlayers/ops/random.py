"""Large random fields from a counter-based hash, fast under every compiler.

`keras.random.normal` lowers, under TensorFlow with XLA (`jit_compile=True`)
on the CPU, to a random bit generator that costs about 1.4 microseconds per
value (measured on a 2-core machine: 1.2-1.4 s for a 96^3 field, against
15-50 ms in the plain graph), which made a whole SynthSeg draw 7-13x slower
under XLA than in the graph. Here only a few keys are drawn with
`keras.random`; every value is then a hash of its index and those keys
(plain int32 arithmetic, which every backend and XLA vectorise), turned into
normals by the Box-Muller transform.
"""

import math

import keras
import numpy as np
from keras import ops

# "lowbias32" (C. Wellons, hash-prospector): a 32-bit integer mixer with a
# near-ideal avalanche. Multipliers as int32 (two's complement wraps alike
# on every backend).
_M1 = np.int32(0x7FEB352D)
_M2 = np.int32(0x846CA68B - 2**32)


def _shift_right(x, bits):
    """Logical right shift of int32 `x` (the sign bit not repeated)."""
    return ops.bitwise_and(ops.right_shift(x, bits), (1 << (32 - bits)) - 1)


def mix32(x):
    """The `lowbias32` integer hash of int32 `x`, elementwise, as int32.

    Bit-exact with the same arithmetic on `uint32` (its bits reinterpreted).
    """
    x = ops.bitwise_xor(x, _shift_right(x, 16))
    x = ops.multiply(x, ops.convert_to_tensor(_M1))
    x = ops.bitwise_xor(x, _shift_right(x, 15))
    x = ops.multiply(x, ops.convert_to_tensor(_M2))
    return ops.bitwise_xor(x, _shift_right(x, 16))


def materialize(x):
    """`x` unchanged, computed once by compilers rather than fused into consumers.

    XLA fuses a small tensor's producers into each full-size consumer and
    recomputes them per element: a per-sample draw of `keras.random`
    (ThreeFry/Philox rounds) feeding a whole-volume `where` or gather cost
    ~130 ms per 96^3 volume under TensorFlow XLA on the CPU, against ~3 ms
    once materialised. A sort is never fused, so `x` goes through a sort
    of `[x, x]` (exact; meant for small tensors such as per-sample
    parameters).

    Args:
        x: a numeric tensor (no NaN).

    Returns:
        `x`, the same values and dtype.
    """
    x = ops.convert_to_tensor(x)
    return ops.sort(ops.stack([x, x], axis=-1), axis=-1)[..., 0]


def _uniform(bits):
    """Uniforms in (0, 1) from the top 24 bits of int32 `bits`."""
    top = ops.cast(_shift_right(bits, 8), "float32")  # 24 bits, exact in float32
    return top * (2.0**-24) + 2.0**-25


def hashed_normal(shape, seed, dtype="float32"):
    """Standard normal values of static `shape` from a counter-based hash.

    Three int32 keys are drawn with `keras.random.randint` from `seed`; each
    pair of values of the (flattened) result is the Box-Muller transform of
    two 24-bit uniforms: the first from the hash `h = mix32(mix32(i + k0) ^
    k1)` of the pair's index `i`, the second from `mix32(h ^ k2)` (three
    `mix32` per pair, 11 elementwise int32 operations each). The
    same seed state gives the same field on every backend (up to the
    rounding of `log`, `cos` and `sin`); values lie within about +-5.9.

    Args:
        shape: `(batch, *rest)`: static ints, the batch size may be a
            scalar tensor. Values of different samples never repeat (while
            `batch * prod(rest) < 2^32`).
        seed: a `keras.random.SeedGenerator`, or a seed as accepted by
            `keras.random`.
        dtype: float dtype of the result. Defaults to `"float32"`.

    Returns:
        Tensor of `shape` and `dtype`.

    Example:

    >>> import keras
    >>> x = hashed_normal((2, 8, 8), keras.random.SeedGenerator(0))
    >>> tuple(x.shape)
    (2, 8, 8)
    """
    rest = [int(s) for s in shape[1:]]
    half = (math.prod(rest) + 1) // 2  # Box-Muller pairs per sample
    keys = keras.random.randint((3,), 0, 2**31 - 1, dtype="int32", seed=seed)
    keys = materialize(keys)
    batch = ops.arange(shape[0], dtype="int32") * half
    counter = ops.expand_dims(batch, 1) + ops.arange(half, dtype="int32")[None]
    # Twice mixed with two keys, so that the streams of different keys are
    # not shifted copies of each other; the second uniform hashes the first's
    # 32 bits once more.
    bits = mix32(ops.bitwise_xor(mix32(ops.add(counter, keys[0])), keys[1]))
    u1 = _uniform(bits)
    u2 = _uniform(mix32(ops.bitwise_xor(bits, keys[2])))
    radius = ops.sqrt(-2.0 * ops.log(u1))
    angle = (2.0 * math.pi) * u2
    values = ops.concatenate([radius * ops.cos(angle), radius * ops.sin(angle)], 1)
    if 2 * half != math.prod(rest):
        values = values[:, : math.prod(rest)]
    values = ops.reshape(values, (-1, *rest))
    if dtype != "float32":
        values = ops.cast(values, dtype)
    return values
