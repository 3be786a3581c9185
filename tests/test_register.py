"""Tests for synthlayers.inference.register: conventions, grids, inverse, files."""

import nibabel
import numpy as np
import pytest
from scipy import ndimage

from synthlayers import io
from synthlayers.inference.register import _points
from synthlayers.inference.register import _sample
from synthlayers.inference.register import invert_displacement
from synthlayers.inference.register import register
from synthlayers.models.registration import registration_network


def phantom(shape, seed=0):
    rng = np.random.default_rng(seed)
    image = ndimage.gaussian_filter(rng.random(shape), 2.0)
    image = np.digitize(image, np.quantile(image, [0.3, 0.5, 0.7, 0.85]))
    image = image.astype("float64")
    border = tuple(slice(3, n - 3) for n in shape)
    out = np.zeros(shape)
    out[border] = image[border]
    return out


def shifted_network(shape, shift, features=4):
    """A network whose displacement is a constant `shift` (voxels) inside."""
    network = registration_network(
        (*shape, 1), features=features, velocity_initializer="zeros"
    )
    layer = network.get_layer("registration_network_velocity")
    kernel, bias = layer.get_weights()
    # Velocity on the half grid: half the shift in half-grid voxels.
    layer.set_weights([kernel, np.asarray(shift, "float32") / 2])
    return network


def moving_on_grid(result, moving, moving_world):
    """The moving image read at the grid's world points (identity correspondence)."""
    ndim = moving.ndim
    matrix = np.linalg.inv(moving_world) @ result.affine
    return lambda field: _sample(
        moving.astype("float32"),
        (_points(field.shape[:-1]) + field) @ matrix[:ndim, :ndim].T
        + matrix[:ndim, ndim],
        order=1,
    )


def test_affine_only_recovers_a_translation_in_2d():
    fixed = phantom((40, 36))
    moving = ndimage.shift(fixed, (3.0, -2.0), order=0)
    result = register(
        None, moving, fixed, affine_method="moments", affine_transform="translation"
    )
    np.testing.assert_allclose(result.displacement[..., 0], 3.0, atol=0.05)
    np.testing.assert_allclose(result.displacement[..., 1], -2.0, atol=0.05)
    inside = (slice(6, -6), slice(6, -6))
    np.testing.assert_allclose(result.moved[inside], fixed[inside], atol=0.05)
    # The inverse of a translation.
    np.testing.assert_allclose(
        result.inverse_displacement, -result.displacement, atol=0.05
    )


@pytest.mark.parametrize("shape", [(23, 19), (13, 17, 11)])
def test_network_field_convention_inverse_and_odd_sizes(shape):
    """moved(x) = moving(x + d(x)) on the grid; d(x) + d_inv(x + d(x)) ~ 0."""
    ndim = len(shape)
    fixed = phantom(shape, seed=1)
    moving = phantom(shape, seed=2)
    shift = (1.5, -1.0, 0.5)[:ndim]
    network = shifted_network((16,) * ndim, shift)  # static shape: rebuilt
    segmentation = (moving > 2).astype("int32") * 7
    result = register(
        network,
        moving,
        fixed,
        moving_segmentation=segmentation,
        affine_method="none",
    )
    assert result.displacement.shape == shape + (ndim,)
    # Padded to multiples of 16; the half-grid velocity is resized with its
    # vectors scaled by (n - 1) / (n / 2 - 1) (corner-aligned grids).
    padded = np.ceil(np.array(shape) / 16) * 16
    expected = np.array(shift) / 2 * (padded - 1) / (padded / 2 - 1)
    centre = tuple(slice(n // 2 - 1, n // 2 + 2) for n in shape)
    np.testing.assert_allclose(
        result.displacement[centre].reshape(-1, ndim).mean(0), expected, atol=0.02
    )
    sample = moving_on_grid(result, moving, np.eye(ndim + 1))
    np.testing.assert_allclose(
        result.moved, sample(result.displacement.astype("float64")), atol=1e-4
    )
    # Labels: nearest neighbour at the same points, values kept.
    assert set(np.unique(result.moved_segmentation)) <= {0, 7}
    points = _points(shape) + result.displacement
    expected = _sample(segmentation, points, order=0)
    np.testing.assert_array_equal(result.moved_segmentation, expected)
    # Inverse (from the network's velocity): composition is the identity inside.
    inverse = result.inverse_displacement.astype("float64")
    composed = result.displacement + np.stack(
        [
            ndimage.map_coordinates(
                inverse[..., i], np.moveaxis(points, -1, 0), order=1, mode="nearest"
            )
            for i in range(ndim)
        ],
        -1,
    )
    inner = tuple(slice(3, n - 3) for n in shape)
    assert np.abs(composed[inner]).max() < 0.05


def test_fixed_point_inversion_of_a_smooth_field(rng):
    shape = (24, 22)
    grid = _points(shape)
    d = np.stack(
        [
            1.5 * np.sin(grid[..., 1] / 4.0),
            1.0 * np.cos(grid[..., 0] / 5.0),
        ],
        -1,
    )
    inverse = invert_displacement(d)
    points = np.moveaxis(grid + d, -1, 0)
    composed = d + np.stack(
        [ndimage.map_coordinates(inverse[..., i], points, order=1) for i in range(2)],
        -1,
    )
    assert np.abs(composed[3:-3, 3:-3]).max() < 0.05  # linear interpolation


def test_affine_composed_with_the_network():
    """The total field is Q (x + d(x)) - x: affine and network in one field."""
    shape = (32, 32)
    fixed = phantom(shape, seed=3)
    world = np.array([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0], [0, 0, 1]])
    network = shifted_network(shape, (1.0, 0.0))
    result = register(network, fixed, fixed, affine_method=world, inverse=False)
    centre = (slice(14, 18), slice(14, 18))
    np.testing.assert_allclose(
        result.displacement[centre].reshape(-1, 2).mean(0), (3.0, -1.0), atol=0.05
    )
    np.testing.assert_allclose(result.world_matrix, world)


def test_orientation_voxel_sizes_and_files(tmp_path):
    """A 3D moving scan stored LIA at 2 mm: read through the world, files written."""
    fixed = phantom((20, 22, 18), seed=4)
    fixed_affine = np.diag([1.0, 1.0, 1.0, 1.0])
    fixed_affine[:3, 3] = (-10, -11, -9)
    # The same content on an LIA grid: axis 0 -> -x, axis 1 -> -z, axis 2 -> +y.
    lia = np.array([[-1.0, 0, 0, 9], [0, 0, 1.0, -11], [0, -1.0, 0, 8], [0, 0, 0, 1]])
    moving = io.from_ras(fixed, lia)
    assert moving.shape == (20, 18, 22)
    path = tmp_path / "moving.nii.gz"
    io.save_volume(path, moving.astype("float32"), lia)
    result = register(
        None,
        str(path),
        fixed,
        fixed_affine=fixed_affine,
        affine_method="none",
        out=tmp_path / "out",
    )
    np.testing.assert_allclose(result.moved, fixed, atol=1e-5)
    np.testing.assert_allclose(result.affine, fixed_affine)
    field = nibabel.load(result.paths["displacement"])
    assert field.shape == (20, 22, 18, 1, 3)
    assert int(field.header["intent_code"]) == 1006
    loaded, _ = io.load_displacement_field(result.paths["displacement"])
    np.testing.assert_allclose(loaded, result.displacement, atol=1e-5)
    assert io.load_volume(result.paths["moved"]).data.shape == (20, 22, 18)
    np.testing.assert_allclose(np.loadtxt(result.paths["affine"]), np.eye(4))


def test_grid_at_the_model_voxel_size():
    """A fixed image at 0.5 mm: the network grid has half as many voxels, centred."""
    fixed = np.zeros((40, 36))
    fixed[10:30, 8:28] = 1
    result = register(
        None,
        fixed,
        fixed,
        fixed_voxel_size=0.5,
        moving_voxel_size=0.5,
        affine_method="none",
        inverse=False,
    )
    assert result.moved.shape == (20, 18)
    np.testing.assert_allclose(result.affine, [[1, 0, 0.25], [0, 1, 0.25], [0, 0, 1]])


def test_linear_label_warping_and_bad_arguments():
    fixed = phantom((20, 20), seed=5)
    labels = (fixed > 1).astype("int32") + 2 * (fixed > 3)
    result = register(
        None,
        fixed,
        fixed,
        moving_segmentation=labels,
        affine_method="none",
        segmentation_interpolation="linear",
    )
    np.testing.assert_array_equal(result.moved_segmentation, labels)
    with pytest.raises(ValueError, match="affine_method"):
        register(None, fixed, fixed, affine_method="spline")
    with pytest.raises(ValueError, match="same number of dimensions"):
        register(None, fixed, fixed[..., None] * np.ones(3))
    with pytest.raises(ValueError, match="out"):
        register(None, fixed, fixed, affine_method="none", out="somewhere")
    with pytest.raises(ValueError, match="moving_segmentation"):
        register(None, fixed, fixed, moving_segmentation=labels[:10])
