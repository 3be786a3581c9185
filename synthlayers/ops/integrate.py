"""Integration of stationary velocity fields (scaling and squaring)."""

from keras import ops

from synthlayers.ops.grid import identity_grid
from synthlayers.ops.resample import resample
from synthlayers.validation import check_int


def integrate_velocity(velocity, steps=7):
    """Integrate a stationary velocity field by scaling and squaring.

    `u <- velocity / 2**steps`, then `steps` times `u <- u + u o (id + u)`
    (linear resampling, edge values repeated outside the grid). Voxel units
    of the field's own grid; `steps=0` returns `velocity` unchanged.

    Reference:
        Arsigny et al., A Log-Euclidean Framework for Statistics on
        Diffeomorphisms, MICCAI 2006.

    Args:
        velocity: `(batch, *shape, ndim)` float tensor.
        steps: non-negative int. Defaults to `7`.

    Returns:
        The displacement field `exp(v) - id`, same shape (and dtype) as
        `velocity`.

    Example:

    >>> import numpy as np
    >>> velocity = np.full((1, 8, 8, 2), 0.5, dtype="float32")
    >>> displacement = integrate_velocity(velocity)  # 0.5 everywhere
    """
    steps = check_int(steps, "steps", min_value=0)
    if steps == 0:
        return velocity
    velocity = ops.convert_to_tensor(velocity)
    shape = tuple(velocity.shape[1:-1])
    if velocity.shape[-1] != len(shape):
        raise ValueError(
            "Expected `velocity` of shape (batch, *shape, ndim) with ndim = "
            f"len(shape). Received: velocity.shape={velocity.shape}"
        )
    grid = ops.expand_dims(identity_grid(shape), 0)
    u = velocity / (2.0**steps)
    for _ in range(steps):
        u = u + resample(u, grid + ops.cast(u, "float32"), "linear", "nearest")
    return u
