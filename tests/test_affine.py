"""Tests for synthlayers.inference.affine: moments, MI fit (dipy), conventions."""

import numpy as np
import pytest
from scipy import ndimage

from synthlayers.inference import affine


def blobs(shape, seed=0):
    """An asymmetric image: a few anisotropic Gaussian blobs, zero at the edges."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.arange(n, dtype="float64") for n in shape], indexing="ij")
    image = np.zeros(shape)
    centre = (np.array(shape) - 1) / 2
    for k in range(4):
        position = centre + rng.uniform(-0.2, 0.2, len(shape)) * np.array(shape)
        width = rng.uniform(0.06, 0.16, len(shape)) * np.array(shape)
        r2 = sum(((g - p) / w) ** 2 for g, p, w in zip(grids, position, width))
        image += (1 + k) * np.exp(-0.5 * r2)
    return image


def phantom(shape, seed=0):
    """Piecewise constant tissues (quantiles of `blobs`), slightly blurred."""
    image = blobs(shape, seed)
    levels = np.quantile(image, [0.4, 0.6, 0.75, 0.9])
    return ndimage.gaussian_filter(np.digitize(image, levels).astype("float64"), 0.7)


def rotation_2d(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def about_centre(linear, shape, translation=0.0):
    """A pull-back matrix applying `linear` about the grid centre, then shifting."""
    ndim = len(shape)
    centre = (np.array(shape) - 1) / 2
    matrix = np.eye(ndim + 1)
    matrix[:ndim, :ndim] = linear
    matrix[:ndim, ndim] = centre - linear @ centre + translation
    return matrix


def reference_warp(image, matrix, order=1):
    ndim = image.ndim
    return ndimage.affine_transform(
        image, matrix[:ndim, :ndim], offset=matrix[:ndim, ndim], order=order
    )


def test_apply_affine_is_a_pull_back_like_scipy(rng):
    image = rng.normal(size=(9, 11, 7))
    matrix = about_centre(np.diag([1.1, 0.9, 1.0]), image.shape, (0.5, -1.2, 2.0))
    np.testing.assert_allclose(
        affine.apply_affine(image, matrix), reference_warp(image, matrix), atol=1e-5
    )
    # Nearest neighbour keeps values and dtype: out(x) = image(round(M x)).
    labels = rng.integers(0, 5, size=(9, 11, 7)).astype("int32")
    shift = np.eye(4)
    shift[:3, 3] = (2, -1, 0)
    out = affine.apply_affine(labels, shift, interpolation="nearest")
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out[:7, 1:], labels[2:, :-1])
    np.testing.assert_array_equal(out[7:], 0)


def test_affine_to_displacement_gives_the_same_coordinates():
    matrix = about_centre(rotation_2d(0.3) * 1.2, (6, 8), (1.0, -2.0))
    d = affine.affine_to_displacement(matrix, (6, 8))
    x = np.stack(np.meshgrid(np.arange(6), np.arange(8), indexing="ij"), -1)
    np.testing.assert_allclose(x + d, x @ matrix[:2, :2].T + matrix[:2, 2], atol=1e-5)


def test_world_and_voxel_affines_are_inverse_conversions(rng):
    matrix = about_centre(np.diag([1.1, 0.9, 1.2]), (5, 6, 7), (1, 2, 3))
    moving_affine = np.diag([2.0, 1.5, 1.0, 1.0])
    moving_affine[:3, 3] = (-3, 4, 5)
    fixed_affine = np.array(
        [[0, -1.0, 0, 10], [1.0, 0, 0, -2], [0, 0, 1.5, 0], [0, 0, 0, 1]]
    )
    world = affine.world_affine(matrix, moving_affine, fixed_affine)
    # A fixed voxel's world point goes to the moving voxel's world point.
    x = np.array([1.0, 2.0, 3.0, 1.0])
    np.testing.assert_allclose(world @ fixed_affine @ x, moving_affine @ matrix @ x)
    np.testing.assert_allclose(
        affine.voxel_affine(world, moving_affine, fixed_affine), matrix, atol=1e-12
    )


def test_moments_translation_is_the_shift_of_the_centre_of_mass():
    fixed = np.pad(blobs((30, 26)), 6)  # the shift keeps all the mass
    moving = ndimage.shift(fixed, (3.5, -2.0), order=1)
    matrix = affine.moments_affine(moving, fixed, "translation")
    np.testing.assert_allclose(matrix[:2, :2], np.eye(2))
    np.testing.assert_allclose(matrix[:2, 2], (3.5, -2.0), atol=1e-9)


@pytest.mark.parametrize("transform", ["rigid", "affine"])
def test_moments_match_the_second_moments(transform):
    fixed = blobs((48, 44), seed=1)
    true = about_centre(rotation_2d(0.25) @ np.diag([1.1, 0.95]), fixed.shape, (2, -1))
    moving = reference_warp(fixed, np.linalg.inv(true))  # moving(M x) = fixed(x)
    matrix = affine.moments_affine(moving, fixed, transform)
    _, covariance_fixed = affine._moments(fixed)
    _, covariance_moving = affine._moments(moving)
    linear = matrix[:2, :2]
    if transform == "affine":
        np.testing.assert_allclose(
            linear @ covariance_fixed @ linear.T, covariance_moving, rtol=1e-8
        )
    else:
        np.testing.assert_allclose(linear @ linear.T, np.eye(2), atol=1e-12)
        assert np.linalg.det(linear) > 0


def test_moments_recover_a_known_affine_of_an_asymmetric_image():
    fixed = blobs((48, 44), seed=2)
    true = about_centre(rotation_2d(-0.2) @ np.diag([1.1, 0.95]), fixed.shape, (2, -1))
    moving = reference_warp(fixed, np.linalg.inv(true))
    matrix = affine.moments_affine(moving, fixed)
    moved = affine.apply_affine(moving, matrix)
    baseline = np.abs(moving - fixed).mean()
    assert np.abs(moved - fixed).mean() < 0.5 * baseline


def test_moments_reject_bad_input():
    with pytest.raises(ValueError, match="transform"):
        affine.moments_affine(np.ones((4, 4)), np.ones((4, 4)), "similarity")
    with pytest.raises(ValueError, match="fixed"):
        affine.moments_affine(np.ones((4, 4)), np.ones((4, 4, 4)))
    with pytest.raises(ValueError, match="positive"):
        affine.moments_affine(np.zeros((4, 4)), np.ones((4, 4)))


def test_mutual_information_recovers_a_known_2d_affine():
    pytest.importorskip("dipy")
    fixed = phantom((64, 60), seed=3)
    true = about_centre(rotation_2d(0.15) @ np.diag([1.08, 0.93]), fixed.shape, (3, -2))
    moving = reference_warp(fixed, np.linalg.inv(true))
    matrix = affine.mutual_information_affine(moving, fixed)
    np.testing.assert_allclose(matrix[:2, :2], true[:2, :2], atol=0.02)
    np.testing.assert_allclose(matrix[:2, 2], true[:2, 2], atol=0.6)


def test_mutual_information_converts_world_affines_in_3d():
    """Different grids and voxel sizes: dipy's world map is converted to voxels."""
    pytest.importorskip("dipy")
    fixed = phantom((28, 26, 24), seed=4)
    fixed_affine = np.diag([1.0, 1.0, 1.0, 1.0])
    fixed_affine[:3, 3] = (-14, -13, -12)
    # The moving image: the fixed one on a grid of 2 mm voxels along axis 0,
    # axis 1 flipped, shifted and slightly rotated in the world.
    moving_affine = np.array(
        [[2.0, 0, 0, -13], [0, -1.0, 0, 12], [0, 0, 1.0, -11], [0, 0, 0, 1]]
    )
    angle = 0.1
    rotation = np.eye(4)
    rotation[:2, :2] = rotation_2d(angle)
    world_true = rotation  # pull-back: fixed world point -> moving world point
    true = affine.voxel_affine(world_true, moving_affine, fixed_affine)
    moving_shape = (14, 26, 24)
    # moving(y) = fixed(inv(true) y) on the moving grid.
    moving = ndimage.affine_transform(
        fixed,
        np.linalg.inv(true)[:3, :3],
        offset=np.linalg.inv(true)[:3, 3],
        output_shape=moving_shape,
        order=1,
    )
    matrix = affine.mutual_information_affine(
        moving,
        fixed,
        moving_affine=moving_affine,
        fixed_affine=fixed_affine,
        transform="rigid",
        level_iters=(100, 50),
        sigmas=(1.0, 0.0),
        factors=(2, 1),
    )
    world = affine.world_affine(matrix, moving_affine, fixed_affine)
    np.testing.assert_allclose(world[:3, :3], world_true[:3, :3], atol=0.03)
    np.testing.assert_allclose(world[:3, 3], world_true[:3, 3], atol=1.0)


def test_moments_are_taken_in_world_coordinates():
    """The same image stored flipped on another grid: identity in the world."""
    fixed = np.pad(blobs((20, 18)), 4)
    moving = fixed[::-1]  # axis 0 flipped
    fixed_affine = np.eye(3)
    moving_affine = np.array([[-1.0, 0, fixed.shape[0] - 1], [0, 1, 0], [0, 0, 1]])
    matrix = affine.moments_affine(
        moving, fixed, "translation", moving_affine, fixed_affine
    )
    world = affine.world_affine(matrix, moving_affine, fixed_affine)
    np.testing.assert_allclose(world, np.eye(3), atol=1e-9)
    np.testing.assert_allclose(affine.apply_affine(moving, matrix), fixed, atol=1e-6)
