"""Separable resizing against float64 SciPy references."""

import keras
import numpy as np
import pytest
from keras import ops
from scipy import ndimage

from synthlayers.ops import apply_along_axis
from synthlayers.ops import linear_resize_matrix
from synthlayers.ops import resize
from synthlayers.ops import resize_displacement
from tests.helpers import to_numpy


def _scipy_resize(x, output_shape):
    """float64 reference: zoom with the factors that give `output_shape`."""
    zoom = (
        [1.0]
        + [o / i for o, i in zip(output_shape, x.shape[1:-1], strict=True)]
        + [1.0]
    )
    out = ndimage.zoom(
        x.astype("float64"), zoom, order=1, grid_mode=False, mode="nearest"
    )
    assert out.shape[1:-1] == tuple(output_shape)
    return out


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_apply_along_axis_matches_numpy(rng, axis, shared):
    x = rng.normal(size=(2, 5, 6, 7, 3)).astype("float32")
    n_in = x.shape[axis + 1]
    shape = (4, n_in) if shared else (2, 4, n_in)
    matrix = rng.normal(size=shape).astype("float32")
    out = to_numpy(apply_along_axis(x, matrix, axis))
    moved = np.moveaxis(x.astype("float64"), axis + 1, -1)
    if shared:
        expected = moved @ matrix.T.astype("float64")
    else:
        expected = np.einsum("b...i,boi->b...o", moved, matrix.astype("float64"))
    expected = np.moveaxis(expected, -1, axis + 1)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_apply_along_axis_float16_round_trip(rng):
    x = rng.normal(size=(1, 4, 5, 1)).astype("float16")
    out = apply_along_axis(x, np.eye(5, dtype="float32"), 1)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    np.testing.assert_array_equal(to_numpy(out), x)


def test_apply_along_axis_rejects_wrong_size():
    with pytest.raises(ValueError, match="columns"):
        apply_along_axis(
            np.zeros((1, 4, 5, 1), "float32"), np.eye(3, dtype="float32"), 0
        )
    with pytest.raises(ValueError, match="axis"):
        apply_along_axis(
            np.zeros((1, 4, 5, 1), "float32"), np.eye(4, dtype="float32"), 2
        )


@pytest.mark.parametrize(
    "n_in, n_out", [(5, 9), (9, 5), (7, 7), (4, 13), (13, 4), (1, 4), (6, 1)]
)
def test_linear_resize_matrix(n_in, n_out):
    m = linear_resize_matrix(n_in, n_out)
    assert m.shape == (n_out, n_in) and m.dtype == np.float32
    np.testing.assert_allclose(m.sum(axis=1), 1, atol=1e-6)
    # Linear functions are reproduced: position o * (n_in - 1) / (n_out - 1).
    positions = m @ np.arange(n_in)
    if n_out == 1:
        expected = [(n_in - 1) / 2]
    else:
        expected = np.arange(n_out) * (n_in - 1) / (n_out - 1)
    np.testing.assert_allclose(positions, expected, atol=1e-5)
    if n_in == n_out:
        np.testing.assert_array_equal(m, np.eye(n_in))


@pytest.mark.parametrize(
    "shape, output_shape",
    [
        ((8, 11), (15, 21)),
        ((15, 21), (8, 11)),
        ((12, 9), (5, 16)),
        ((6, 7, 9), (11, 13, 5)),
        ((10, 8, 5), (4, 8, 9)),
    ],
)
@pytest.mark.parametrize("channels", [1, 3])
def test_resize_matches_scipy_zoom(rng, shape, output_shape, channels):
    x = rng.normal(size=(2, *shape, channels)).astype("float32")
    out = to_numpy(resize(x, output_shape))
    assert out.shape == (2, *output_shape, channels)
    np.testing.assert_allclose(
        out, _scipy_resize(x, output_shape), rtol=1e-5, atol=1e-5
    )


def test_resize_same_shape_is_identity(rng):
    x = rng.normal(size=(2, 6, 7, 2)).astype("float32")
    np.testing.assert_array_equal(to_numpy(resize(x, (6, 7))), x)


def test_resize_keeps_float16(rng):
    x = rng.normal(size=(1, 6, 7, 1)).astype("float16")
    out = resize(x, (11, 4))
    assert keras.backend.standardize_dtype(out.dtype) == "float16"
    np.testing.assert_allclose(to_numpy(out), _scipy_resize(x, (11, 4)), atol=1e-2)


def test_resize_rejects_wrong_rank():
    with pytest.raises(ValueError, match="output_shape"):
        resize(np.zeros((1, 4, 5, 1), "float32"), (3, 3, 3))


def _affine_field(matrix, offset, shape):
    """`u(x) = matrix @ x + offset` on the voxel grid of `shape`."""
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    return grid @ matrix.T + offset


@pytest.mark.parametrize(
    "shape, output_shape",
    [
        ((5, 6), (13, 9)),
        ((13, 9), (5, 6)),
        ((4, 5, 6), (7, 13, 11)),
        ((9, 7, 8), (5, 4, 8)),
    ],
)
def test_resize_displacement_affine_field(rng, shape, output_shape):
    ndim = len(shape)
    zoom = np.array(
        [(o - 1) / (i - 1) for o, i in zip(output_shape, shape, strict=True)]
    )
    fields, expected = [], []
    for _ in range(2):
        matrix, offset = rng.normal(size=(ndim, ndim)), rng.normal(size=ndim)
        fields.append(_affine_field(matrix, offset, shape))
        # The same deformation in fine voxels: y -> zoom * u(y / zoom), affine in y.
        expected.append(
            _affine_field(
                zoom[:, None] * matrix / zoom[None, :], zoom * offset, output_shape
            )
        )
    out = to_numpy(
        resize_displacement(np.stack(fields).astype("float32"), output_shape)
    )
    assert out.shape == (2, *output_shape, ndim)
    np.testing.assert_allclose(out, np.stack(expected), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "shape, output_shape", [((5, 6), (9, 16)), ((7, 5, 9), (4, 9, 9))]
)
def test_resize_displacement_constant_field_scales_with_zoom(shape, output_shape):
    constant = np.arange(1, len(shape) + 1, dtype="float32") * 1.5
    field = np.broadcast_to(constant, (2, *shape, len(shape))).astype("float32")
    out = to_numpy(resize_displacement(field, output_shape))
    zoom = np.array(
        [(o - 1) / (i - 1) for o, i in zip(output_shape, shape, strict=True)]
    )
    np.testing.assert_allclose(
        out, np.broadcast_to(constant * zoom, out.shape), rtol=1e-5
    )


def test_resize_displacement_rejects_wrong_components():
    with pytest.raises(ValueError, match="components"):
        resize_displacement(np.zeros((1, 4, 5, 3), "float32"), (8, 8))


class _Resize(keras.layers.Layer):
    def call(self, x):
        field = resize_displacement(ops.concatenate([x, x], axis=-1), (9, 6))
        return resize(x, (9, 6)), field


def test_resize_in_compiled_model_with_dynamic_batch(rng):
    x = rng.normal(size=(3, 5, 7, 1)).astype("float32")
    inputs = keras.Input((5, 7, 1))
    model = keras.Model(inputs, _Resize()(inputs))
    model.compile(jit_compile=keras.backend.backend() in ("tensorflow", "jax"))
    image, field = model.predict(x, verbose=0, batch_size=2)
    np.testing.assert_allclose(image, _scipy_resize(x, (9, 6)), rtol=1e-5, atol=1e-5)
    assert field.shape == (3, 9, 6, 2)


class _AlongAxis(keras.layers.Layer):
    def __init__(self, matrix, **kwargs):
        super().__init__(**kwargs)
        self.matrix = matrix

    def call(self, x):
        return apply_along_axis(x, self.matrix, 1)


def test_apply_along_axis_with_unknown_spatial_dims(rng):
    matrix = rng.normal(size=(4, 7)).astype("float32")
    inputs = keras.Input((None, 7, 2))
    outputs = _AlongAxis(matrix)(inputs)
    assert tuple(outputs.shape) == (None, None, 4, 2)
    model = keras.Model(inputs, outputs)
    x = rng.normal(size=(2, 5, 7, 2)).astype("float32")
    expected = np.einsum("oi,bjic->bjoc", matrix.astype("float64"), x)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), expected, rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    "shape, output_shape",
    [((5, 7), (20, 17)), ((3, 4, 5), (9, 8, 11)), ((4, 4, 4), (4, 9, 4))],
)
def test_resize_components_equal_resize(rng, shape, output_shape):
    from synthlayers.ops.resize import resize_components

    field = rng.normal(size=(2, *shape, len(shape))).astype("float32")
    expected = to_numpy(resize(field, output_shape))
    got = resize_components(field, output_shape)
    assert len(got) == len(shape)
    for d, component in enumerate(got):
        np.testing.assert_allclose(to_numpy(component), expected[..., d], atol=1e-5)
