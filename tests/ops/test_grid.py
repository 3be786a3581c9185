"""Tests of the coordinate grids against NumPy/SciPy references."""

import keras
import numpy as np
import pytest
from scipy import ndimage

from synthlayers.ops.grid import centered_offset
from synthlayers.ops.grid import identity_grid
from synthlayers.ops.grid import sampling_coordinates
from synthlayers.ops.resample import resample
from tests.helpers import to_numpy


def random_affine(rng, batch, ndim, square=True):
    """Random `(batch, ndim + 1, ndim + 1)` matrices near the identity."""
    matrix = np.tile(np.eye(ndim + 1), (batch, 1, 1))
    matrix[:, :ndim, :ndim] += rng.normal(scale=0.2, size=(batch, ndim, ndim))
    matrix[:, :ndim, ndim] = rng.normal(scale=2.0, size=(batch, ndim))
    return (matrix if square else matrix[:, :ndim]).astype("float32")


def numpy_coordinates(output_shape, matrix=None, displacement=None, offset=None):
    """Direct float64 formula `A @ (x + offset + u(x))`, per sample."""
    ndim = len(output_shape)
    grid = np.stack(np.meshgrid(*map(np.arange, output_shape), indexing="ij"), -1)
    batch = max(
        1 if matrix is None else len(matrix),
        1 if displacement is None else len(displacement),
        1 if offset is None or np.ndim(offset) == 1 else len(offset),
    )
    points = np.broadcast_to(grid, (batch, *grid.shape)).astype("float64")
    if offset is not None:
        offset = np.asarray(offset, "float64").reshape(-1, ndim)
        points = points + offset.reshape(-1, *[1] * ndim, ndim)
    if displacement is not None:
        points = points + displacement
    if matrix is None:
        return points
    matrix = np.broadcast_to(np.asarray(matrix, "float64"), (batch, *matrix.shape[1:]))
    linear, translation = matrix[:, :ndim, :ndim], matrix[:, :ndim, ndim]
    return np.einsum("bij,b...j->b...i", linear, points) + translation.reshape(
        -1, *[1] * ndim, ndim
    )


@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 3, 4)])
def test_identity_grid(shape):
    grid = to_numpy(identity_grid(shape))
    assert grid.shape == (*shape, len(shape))
    assert grid.dtype == np.float32
    for index in np.ndindex(*shape):
        np.testing.assert_array_equal(grid[index], index)
    assert to_numpy(identity_grid(shape, dtype="int32")).dtype == np.int32


def test_centered_offset():
    assert centered_offset((10, 9), (6, 12)) == (2, -2)
    assert centered_offset((7, 8, 9), (4, 8, 10)) == (1, 0, -1)
    assert all(isinstance(o, int) for o in centered_offset((5, 5), (2, 3)))
    with pytest.raises(ValueError):
        centered_offset((4, 4), (4, 4, 4))


def test_identity_and_batch_size():
    coords = to_numpy(sampling_coordinates((3, 4)))
    assert coords.shape == (1, 3, 4, 2)
    np.testing.assert_array_equal(coords[0], to_numpy(identity_grid((3, 4))))
    coords = to_numpy(sampling_coordinates((3, 4), offset=(1, -2), batch_size=2))
    assert coords.shape == (2, 3, 4, 2)
    np.testing.assert_array_equal(
        coords, numpy_coordinates((3, 4), offset=(1, -2))[[0, 0]]
    )


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("square", [True, False])
def test_affine_matches_scipy_affine_transform(rng, ndim, square):
    in_shape = {2: (9, 8), 3: (7, 8, 6)}[ndim]
    out_shape = {2: (6, 11), 3: (5, 9, 4)}[ndim]
    offset = centered_offset(in_shape, out_shape)
    image = rng.normal(size=(2, *in_shape, 2)).astype("float32")
    matrix = random_affine(rng, 2, ndim, square)
    coords = sampling_coordinates(out_shape, matrix=matrix, offset=offset)
    assert tuple(coords.shape) == (2, *out_shape, ndim)
    out = to_numpy(resample(image, coords, fill_value=0.25))
    for b in range(2):
        linear = matrix[b, :ndim, :ndim].astype("float64")
        shift = matrix[b, :ndim, ndim] + linear @ np.asarray(offset, "float64")
        for c in range(2):
            expected = ndimage.affine_transform(
                image[b, ..., c].astype("float64"),
                linear,
                offset=shift,
                output_shape=out_shape,
                order=1,
                mode="grid-constant",
                cval=0.25,
            )
            np.testing.assert_allclose(out[b, ..., c], expected, atol=1e-4)


@pytest.mark.parametrize("ndim", [2, 3])
def test_affine_with_batched_offset(rng, ndim):
    out_shape = (4, 5, 3)[:ndim]
    matrix = random_affine(rng, 3, ndim)
    offset = rng.normal(size=(3, ndim)).astype("float32")
    coords = to_numpy(sampling_coordinates(out_shape, matrix=matrix, offset=offset))
    expected = numpy_coordinates(out_shape, matrix, offset=offset)
    np.testing.assert_allclose(coords, expected, atol=1e-4)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("with_matrix", [True, False])
def test_displacement_matches_numpy(rng, ndim, with_matrix):
    out_shape = (4, 5, 3)[:ndim]
    displacement = rng.normal(size=(2, *out_shape, ndim)).astype("float32")
    matrix = random_affine(rng, 2, ndim, square=False) if with_matrix else None
    offset = (2, -1, 3)[:ndim]
    coords = sampling_coordinates(
        out_shape, matrix=matrix, displacement=displacement, offset=offset
    )
    assert keras.backend.standardize_dtype(coords.dtype) == "float32"
    expected = numpy_coordinates(out_shape, matrix, displacement, offset)
    np.testing.assert_allclose(to_numpy(coords), expected, atol=1e-4)


def test_shared_matrix_with_batched_displacement(rng):
    displacement = rng.normal(size=(3, 4, 5, 2)).astype("float32")
    matrix = random_affine(rng, 1, 2)
    coords = to_numpy(
        sampling_coordinates((4, 5), matrix=matrix, displacement=displacement)
    )
    assert coords.shape == (3, 4, 5, 2)
    expected = numpy_coordinates((4, 5), matrix, displacement)
    np.testing.assert_allclose(coords, expected, atol=1e-4)


def test_invalid_arguments():
    with pytest.raises(ValueError, match="matrix"):
        sampling_coordinates((4, 4), matrix=np.zeros((1, 4, 4), "float32"))
    with pytest.raises(ValueError, match="displacement"):
        sampling_coordinates((4, 4), displacement=np.zeros((1, 4, 5, 2), "float32"))
    with pytest.raises(ValueError, match="offset"):
        sampling_coordinates((4, 4), offset=(1, 2, 3))
    with pytest.raises(ValueError, match="output_shape"):
        sampling_coordinates((4, 0))


@pytest.mark.parametrize(
    "grid_shape, output_shape", [((5, 7), (20, 17)), ((3, 4, 5), (9, 8, 11))]
)
@pytest.mark.parametrize("with_matrix", [False, True])
@pytest.mark.parametrize("offset", [None, "static", "tensor"])
def test_coordinate_axes_equal_sampling_coordinates_of_resized_field(
    rng, grid_shape, output_shape, with_matrix, offset
):
    from synthlayers.ops.grid import coordinate_axes
    from synthlayers.ops.resize import resize

    ndim = len(output_shape)
    batch = 2
    control = rng.normal(scale=3.0, size=(batch, *grid_shape, ndim)).astype("float32")
    matrix = random_affine(rng, batch, ndim) if with_matrix else None
    if offset == "static":
        offset = tuple(rng.uniform(-3, 3, ndim))
    elif offset == "tensor":
        offset = rng.uniform(-3, 3, (batch, ndim)).astype("float32")
    axes = coordinate_axes(
        output_shape, matrix=matrix, control_displacement=control, offset=offset
    )
    assert len(axes) == ndim
    assert all(tuple(a.shape) == (batch, *output_shape) for a in axes)
    full = to_numpy(resize(control, output_shape))
    expected = numpy_coordinates(output_shape, matrix, full, offset)
    got = np.stack([to_numpy(a) for a in axes], -1)
    np.testing.assert_allclose(got, expected, atol=2e-4)


@pytest.mark.parametrize("with_matrix", [False, True])
def test_coordinate_axes_without_displacement(rng, with_matrix):
    from synthlayers.ops.grid import coordinate_axes

    output_shape = (6, 5, 4)
    matrix = random_affine(rng, 3, 3) if with_matrix else None
    axes = coordinate_axes(output_shape, matrix=matrix, offset=(1, 2, 3), batch_size=3)
    expected = numpy_coordinates(output_shape, matrix, None, (1, 2, 3))
    got = np.stack([to_numpy(a) for a in axes], -1)
    np.testing.assert_allclose(got, np.broadcast_to(expected, got.shape), atol=1e-4)


def test_coordinate_axes_rejects_wrong_field():
    from synthlayers.ops.grid import coordinate_axes

    with pytest.raises(ValueError, match="control_displacement"):
        coordinate_axes((8, 8), control_displacement=np.zeros((1, 3, 3, 3), "float32"))
