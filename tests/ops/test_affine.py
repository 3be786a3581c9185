"""Affine matrices against float64 NumPy / SciPy references."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from synthlayers.ops import affine_matrix
from synthlayers.ops import compose_affine
from synthlayers.ops import invert_affine
from synthlayers.ops import rotation_matrix
from tests.helpers import to_numpy


def _plane(angle, ndim, first, second):
    """Float64 rotation turning axis `first` towards axis `second`."""
    c, s = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    m = np.eye(ndim)
    m[first, first] = m[second, second] = c
    m[second, first], m[first, second] = s, -s
    return m


def _reference_rotation(angles):
    if len(angles) == 1:
        return _plane(angles[0], 2, 0, 1)
    r0 = _plane(angles[0], 3, 1, 2)
    r1 = _plane(angles[1], 3, 2, 0)
    r2 = _plane(angles[2], 3, 0, 1)
    return r0 @ r1 @ r2


def _reference_affine(t, r, s, h, c):
    ndim = len(t)
    shear = np.eye(ndim)
    shear[~np.eye(ndim, dtype=bool)] = h  # row-major off-diagonal
    a = _reference_rotation(r) @ shear @ np.diag(s)
    out = np.eye(ndim + 1)
    out[:ndim, :ndim] = a
    out[:ndim, ndim] = np.asarray(c) + t - a @ np.asarray(c)
    return out


def _random_params(rng, batch, ndim):
    return dict(
        translation=rng.uniform(-10, 10, (batch, ndim)),
        rotation=rng.uniform(-180, 180, (batch, 1 if ndim == 2 else 3)),
        scaling=rng.uniform(0.7, 1.4, (batch, ndim)),
        shear=rng.uniform(-0.2, 0.2, (batch, ndim * (ndim - 1))),
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_rotation_orthogonal_with_unit_determinant(rng, ndim):
    angles = rng.uniform(-180, 180, (5, 1 if ndim == 2 else 3)).astype("float32")
    r = to_numpy(rotation_matrix(angles)).astype("float64")
    assert r.shape == (5, ndim, ndim)
    eye = np.broadcast_to(np.eye(ndim), r.shape)
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), eye, atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-6)


def test_rotation_2d_quarter_turn_maps_axis_0_onto_axis_1():
    r = to_numpy(rotation_matrix(np.array([[90.0]], "float32")))[0]
    np.testing.assert_allclose(r @ [1.0, 0.0], [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(r @ [0.0, 1.0], [-1.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_rotation_3d_single_angle_rotates_the_other_plane(axis):
    angles = np.zeros((1, 3), "float32")
    angles[0, axis] = 90.0
    r = to_numpy(rotation_matrix(angles))[0]
    first, second = (axis + 1) % 3, (axis + 2) % 3
    np.testing.assert_allclose(r[:, axis], np.eye(3)[axis], atol=1e-6)
    np.testing.assert_allclose(r[:, first], np.eye(3)[second], atol=1e-6)


def test_rotation_3d_composition_order(rng):
    angles = rng.uniform(-180, 180, (6, 3))
    r = to_numpy(rotation_matrix(angles.astype("float32")))
    expected = Rotation.from_euler("XYZ", angles, degrees=True).as_matrix()
    np.testing.assert_allclose(r, expected, atol=1e-5)
    explicit = np.stack([_reference_rotation(a) for a in angles])
    np.testing.assert_allclose(r, explicit, atol=1e-5)
    # R0 @ R1 @ R2 differs from the reverse order for generic angles.
    reverse = Rotation.from_euler("ZYX", angles[:, ::-1], degrees=True).as_matrix()
    assert not np.allclose(r, reverse, atol=1e-3)


@pytest.mark.parametrize("ndim", [2, 3])
def test_affine_matrix_matches_numpy_reference(rng, ndim):
    params = _random_params(rng, 4, ndim)
    center = tuple(rng.uniform(5, 20, ndim))
    out = to_numpy(
        affine_matrix(
            **{k: v.astype("float32") for k, v in params.items()}, center=center
        )
    )
    assert out.shape == (4, ndim + 1, ndim + 1)
    expected = np.stack(
        [
            _reference_affine(
                *(
                    params[k][b]
                    for k in ("translation", "rotation", "scaling", "shear")
                ),
                center,
            )
            for b in range(4)
        ]
    )
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(out[:, ndim, :ndim], 0)
    np.testing.assert_array_equal(out[:, ndim, ndim], 1)


@pytest.mark.parametrize("ndim", [2, 3])
def test_affine_matrix_batched_center_and_fixed_point(rng, ndim):
    params = _random_params(rng, 3, ndim)
    params["translation"] = np.zeros_like(params["translation"])
    center = rng.uniform(0, 30, (3, ndim)).astype("float32")
    out = to_numpy(
        affine_matrix(
            **{k: v.astype("float32") for k, v in params.items()}, center=center
        )
    )
    homogeneous = np.concatenate([center, np.ones((3, 1), "float32")], axis=1)
    moved = np.einsum("bij,bj->bi", out, homogeneous)
    np.testing.assert_allclose(moved[:, :ndim], center, atol=1e-4)


@pytest.mark.parametrize("ndim", [2, 3])
def test_affine_identity_parameters(ndim):
    out = to_numpy(
        affine_matrix(
            translation=np.zeros((2, ndim), "float32"),
            rotation=np.zeros((2, 1 if ndim == 2 else 3), "float32"),
            scaling=np.ones((2, ndim), "float32"),
            shear=np.zeros((2, ndim * (ndim - 1)), "float32"),
            center=(7.5,) * ndim,
        )
    )
    np.testing.assert_allclose(
        out, np.broadcast_to(np.eye(ndim + 1), out.shape), atol=1e-6
    )


def test_shear_order_row_major():
    out = to_numpy(
        affine_matrix(
            translation=np.zeros((1, 3), "float32"),
            rotation=np.zeros((1, 3), "float32"),
            scaling=np.ones((1, 3), "float32"),
            shear=np.array([[1, 2, 3, 4, 5, 6]], "float32"),
            center=(0, 0, 0),
        )
    )[0]
    np.testing.assert_allclose(out[:3, :3], [[1, 1, 2], [3, 1, 4], [5, 6, 1]])


@pytest.mark.parametrize("ndim", [2, 3])
def test_compose_and_invert_round_trip(rng, ndim):
    def matrices():
        params = _random_params(rng, 4, ndim)
        return affine_matrix(
            **{k: v.astype("float32") for k, v in params.items()}, center=(10.0,) * ndim
        )

    first, second = matrices(), matrices()
    eye = np.broadcast_to(np.eye(ndim + 1), (4, ndim + 1, ndim + 1))
    for m in (first, second):
        np.testing.assert_allclose(
            to_numpy(compose_affine(m, invert_affine(m))), eye, atol=1e-5
        )
        np.testing.assert_allclose(
            to_numpy(compose_affine(invert_affine(m), m)), eye, atol=1e-5
        )
        np.testing.assert_allclose(
            to_numpy(invert_affine(m)),
            np.linalg.inv(to_numpy(m).astype("float64")),
            rtol=1e-4,
            atol=1e-4,
        )
    composed = to_numpy(compose_affine(first, second))
    np.testing.assert_allclose(
        composed, to_numpy(first) @ to_numpy(second), rtol=1e-5, atol=1e-4
    )
    # (AB)^-1 = B^-1 A^-1.
    np.testing.assert_allclose(
        to_numpy(invert_affine(compose_affine(first, second))),
        to_numpy(compose_affine(invert_affine(second), invert_affine(first))),
        rtol=1e-4,
        atol=1e-4,
    )
