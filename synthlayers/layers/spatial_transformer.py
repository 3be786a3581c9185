"""Deterministic spatial layers for registration networks."""

import keras
from keras import ops

from synthlayers.layers.base import is_integer_dtype
from synthlayers.ops.grid import sampling_coordinates
from synthlayers.ops.integrate import integrate_velocity
from synthlayers.ops.resample import resample
from synthlayers.validation import FILL_MODES
from synthlayers.validation import INTERPOLATIONS
from synthlayers.validation import check_choice
from synthlayers.validation import check_int
from synthlayers.validation import check_number
from synthlayers.validation import check_shape


@keras.saving.register_keras_serializable(package="synthlayers")
class SpatialTransformer(keras.layers.Layer):
    """Warp images with a given displacement field or affine matrix.

    `output(x) = image(x + displacement(x))` (voxel units, array axis order,
    pull-back, as VoxelMorph's `SpatialTransformer` with `indexing="ij"`), or
    `output(x) = image(A @ x)` for a matrix `A` in voxel coordinates. The
    output grid is the displacement's grid (which may differ from the
    image's), or `output_shape` (default: the image's) for a matrix.

    Args:
        interpolation: `"linear"` (differentiable in image and transform) or
            `"nearest"` (keeps the dtype: use it for label maps).
            Defaults to `"linear"`.
        fill_mode: `"constant"` or `"nearest"`. Defaults to `"constant"`.
        fill_value: value outside the image in constant mode.
            Defaults to `0.0`.
        output_shape: spatial output shape for affine transforms, `None` for
            the image's. Defaults to `None`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        inputs: a list `[image, transform]`: `image` of shape
            `(batch, *spatial, channels)`; `transform` a displacement field
            `(batch, *out_spatial, ndim)` or a matrix `(batch, ndim + 1,
            ndim + 1)` or `(batch, ndim, ndim + 1)`.

    Input shape:
        See call arguments.

    Output shape:
        `(batch, *out_spatial, channels)`.

    Example:

    >>> import numpy as np
    >>> image = np.random.rand(1, 32, 32, 1).astype("float32")
    >>> shift = np.full((1, 32, 32, 2), 1.5, "float32")
    >>> tuple(SpatialTransformer()([image, shift]).shape)
    (1, 32, 32, 1)
    """

    def __init__(
        self,
        interpolation="linear",
        fill_mode="constant",
        fill_value=0.0,
        output_shape=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.interpolation = check_choice(
            interpolation, "interpolation", INTERPOLATIONS
        )
        self.fill_mode = check_choice(fill_mode, "fill_mode", FILL_MODES)
        self.fill_value = check_number(fill_value, "fill_value")
        self.output_shape = check_shape(output_shape, "output_shape", allow_none=True)
        self.built = True

    def _check(self, image_shape, transform_shape, image_dtype):
        ndim = len(image_shape) - 2
        if ndim not in (2, 3):
            raise ValueError(
                "SpatialTransformer expects `image` of rank 4 or 5. "
                f"Received: image.shape={tuple(image_shape)}"
            )
        is_matrix = len(transform_shape) == 3
        if is_matrix:
            ok = tuple(transform_shape[1:]) in ((ndim + 1, ndim + 1), (ndim, ndim + 1))
        else:
            ok = len(transform_shape) == ndim + 2 and transform_shape[-1] == ndim
        if not ok:
            raise ValueError(
                f"SpatialTransformer expects `transform` as a displacement of shape "
                f"(batch, *spatial, {ndim}) or a matrix of shape (batch, {ndim + 1}, "
                f"{ndim + 1}) for a {ndim}D image. Received: "
                f"transform.shape={tuple(transform_shape)}"
            )
        if self.interpolation == "linear" and is_integer_dtype(image_dtype):
            raise ValueError(
                "SpatialTransformer with interpolation='linear' expects a float "
                f"image; use interpolation='nearest' for label maps. Received: "
                f"image.dtype={keras.backend.standardize_dtype(image_dtype)}"
            )
        if is_matrix:
            spatial = self.output_shape or tuple(image_shape[1:-1])
            if len(spatial) != ndim:
                raise ValueError(
                    f"`output_shape` must have {ndim} entries. "
                    f"Received: output_shape={self.output_shape}"
                )
        else:
            spatial = tuple(transform_shape[1:-1])
        return is_matrix, spatial

    def call(self, inputs):
        image, transform = inputs
        is_matrix, spatial = self._check(image.shape, transform.shape, image.dtype)
        transform = ops.cast(transform, "float32")
        if is_matrix:
            coordinates = sampling_coordinates(spatial, matrix=transform)
        else:
            coordinates = sampling_coordinates(spatial, displacement=transform)
        if self.interpolation == "nearest":
            return resample(
                image, coordinates, "nearest", self.fill_mode, self.fill_value
            )
        out = resample(
            ops.cast(image, "float32"),
            coordinates,
            "linear",
            self.fill_mode,
            self.fill_value,
        )
        return ops.cast(out, self.compute_dtype)

    def compute_output_spec(self, inputs):
        image, transform = inputs
        _, spatial = self._check(image.shape, transform.shape, image.dtype)
        dtype = image.dtype if self.interpolation == "nearest" else self.compute_dtype
        return keras.KerasTensor((image.shape[0], *spatial, image.shape[-1]), dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            interpolation=self.interpolation,
            fill_mode=self.fill_mode,
            fill_value=self.fill_value,
            output_shape=self.output_shape,
        )
        return config


@keras.saving.register_keras_serializable(package="synthlayers")
class IntegrateVelocity(keras.layers.Layer):
    """Integrate a stationary velocity field into a diffeomorphic displacement.

    Scaling and squaring: `u = v / 2**steps`, then `steps` times
    `u = u + u o (id + u)` with linear interpolation (edge values repeated
    outside), in voxels of the field's grid (VoxelMorph's TensorFlow
    `VecInt`; its PyTorch `integrate_vec` pads with zeros instead, which
    differs only where `id + u` leaves the grid: see docs/conventions.md).

    Args:
        steps: number of squarings, >= 0. Defaults to `7`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        velocity: `(batch, *spatial, ndim)` float tensor.

    Input shape:
        `(batch, *spatial, ndim)` with `ndim` 2 or 3.

    Output shape:
        Same as the input.

    Example:

    >>> import numpy as np
    >>> velocity = np.full((1, 16, 16, 2), 0.5, "float32")
    >>> tuple(IntegrateVelocity(steps=5)(velocity).shape)
    (1, 16, 16, 2)
    """

    def __init__(self, steps=7, **kwargs):
        super().__init__(**kwargs)
        self.steps = check_int(steps, "steps", min_value=0)
        self.built = True

    def _check(self, shape):
        ndim = len(shape) - 2
        if ndim not in (2, 3) or shape[-1] != ndim:
            raise ValueError(
                "IntegrateVelocity expects a velocity field of shape "
                "(batch, *spatial, ndim) with 2 or 3 spatial axes and ndim "
                f"channels. Received: velocity.shape={tuple(shape)}"
            )

    def call(self, velocity):
        self._check(velocity.shape)
        out = integrate_velocity(ops.cast(velocity, "float32"), self.steps)
        return ops.cast(out, self.compute_dtype)

    def compute_output_spec(self, velocity):
        self._check(velocity.shape)
        return keras.KerasTensor(velocity.shape, self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config["steps"] = self.steps
        return config
