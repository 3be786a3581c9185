"""Cross-checks of our spatial ops against voxelmorph 0.3.x (PyTorch).

The reference side runs in torch float64 on the float32 values given to our
side, so the tolerances below measure our float32 arithmetic. Conventions
and where they differ: docs/conventions.md.
"""

import functools

import numpy as np
import pytest
from scipy import ndimage

from synthlayers.layers.spatial_transformer import IntegrateVelocity
from synthlayers.layers.spatial_transformer import SpatialTransformer
from synthlayers.ops.affine import affine_matrix
from synthlayers.ops.affine import invert_affine
from synthlayers.ops.grid import sampling_coordinates
from synthlayers.ops.integrate import integrate_velocity
from synthlayers.ops.resample import resample
from synthlayers.ops.resize import resize
from synthlayers.ops.resize import resize_displacement
from tests.crosscheck.convert import centred_to_corner
from tests.crosscheck.convert import field_to_channels_first
from tests.crosscheck.convert import field_to_channels_last
from tests.crosscheck.convert import from_torch
from tests.crosscheck.convert import identity_grid_numpy
from tests.crosscheck.convert import image_to_channels_first
from tests.crosscheck.convert import image_to_channels_last
from tests.crosscheck.convert import our_shear_from_voxelmorph
from tests.crosscheck.convert import to_torch
from tests.crosscheck.convert import voxel_to_normalized
from tests.crosscheck.convert import voxelmorph_rotation
from tests.helpers import make_image
from tests.helpers import to_numpy

vxm = pytest.importorskip("voxelmorph")
torch = pytest.importorskip("torch")
vxf = vxm.nn.functional

SHAPES = {2: (13, 11), 3: (9, 8, 7)}
# Tolerances (absolute), ours in float32 against torch float64.
WARP_ATOL = 1e-5  # resampling at the same coordinates
AFFINE_ATOL = 1e-5  # coordinates from float32 matrices (|x| ~ 10 voxels)
INTEGRATE_ATOL = 1e-5  # float32 rounding accumulated over the squarings


# --- reference side: voxelmorph, channels first, float64 --------------------


def vxm_warp_module(image, field, interpolation="linear"):
    """voxelmorph's `SpatialTransformer` module (padding fixed to zeros).

    `image (batch, *spatial, channels)` and `field (batch, *spatial, ndim)`,
    ours; converted to channels first for torch and back. Float images run
    in float64; integer images keep their dtype (vxm casts them to float32
    for grid_sample, whose grid must then be float32 too).
    """
    floating = np.issubdtype(image.dtype, np.floating)
    module = vxm.nn.modules.SpatialTransformer(interpolation_mode=interpolation)
    out = module(
        to_torch(image_to_channels_first(image), "float64" if floating else None),
        to_torch(field_to_channels_first(field), "float64" if floating else "float32"),
    )
    return image_to_channels_last(from_torch(out))


def vxm_warp_functional(image, field, interpolation="linear", padding_mode="zeros"):
    """voxelmorph's functional `spatial_transform`, padding mode of our choice."""
    out = vxm.spatial_transform(
        to_torch(image_to_channels_first(image)),
        to_torch(field_to_channels_first(field)),
        mode=interpolation,
        non_spatial_dims=(0, 1),
        align_corners=True,
        padding_mode=padding_mode,
    )
    return image_to_channels_last(from_torch(out))


# --- inputs ------------------------------------------------------------------


def random_image(rng, ndim, batch=2, channels=2):
    return rng.normal(size=(batch, *SHAPES[ndim], channels)).astype("float32")


def displacement_to(rng, shape, low, high, batch=2):
    """float32 displacement whose targets `x + u` are uniform in [low, high]."""
    ndim = len(shape)
    targets = rng.uniform(low, high, (batch, *shape, ndim))
    return (targets - identity_grid_numpy(shape)).astype("float32")


def quantized_displacement(rng, shape, batch=2):
    """Displacement to targets in `k + {0, 1/8, .., 7/8} \\ {1/2}`, k in [-2, n].

    Exact in float32 and never at a rounding tie, so nearest-neighbour
    sampling is unambiguous on both sides; about a third of the targets
    round outside the image.
    """
    ndim = len(shape)
    high = np.asarray(shape) + 1
    integer = rng.integers(-2, high, (batch, *shape, ndim))
    eighths = rng.choice([0, 1, 2, 3, 5, 6, 7], (batch, *shape, ndim)) / 8
    targets = integer + eighths
    return (targets - identity_grid_numpy(shape)).astype("float32")


def smooth_field(rng, shape, max_norm, batch=2, sigma=2.0):
    noise = rng.normal(size=(batch, *shape, len(shape)))
    field = ndimage.gaussian_filter(noise, sigma=(0, *[sigma] * len(shape), 0))
    return field * (max_norm / np.abs(field).max())


def compactly_supported(field, margin):
    """`field` times a smooth window that vanishes within `margin` of the edges."""
    shape = field.shape[1:-1]
    window = np.ones(shape)
    for axis, n in enumerate(shape):
        x = np.arange(n, dtype="float64")
        w = np.where(
            (x >= margin) & (x <= n - 1 - margin),
            np.sin(np.pi * (x - margin) / (n - 1 - 2 * margin)) ** 2,
            0.0,
        )
        window = window * w.reshape([-1 if a == axis else 1 for a in range(len(shape))])
    return (field * window[None, ..., None]).astype("float32")


# --- spatial transformer -----------------------------------------------------


@pytest.mark.parametrize("ndim", [2, 3])
def test_disp_to_coords_is_align_corners_normalisation(rng, ndim):
    # vxm normalises x + u(x) with align_corners=True: voxel 0 -> -1,
    # voxel n - 1 -> +1; grid_sample(align_corners=True) undoes exactly that,
    # so voxel units mean the same thing on both sides.
    shape = SHAPES[ndim]
    field = displacement_to(rng, shape, -3.0, max(shape) + 2.0)
    theirs = from_torch(
        vxf.disp_to_coords(to_torch(field_to_channels_first(field)), None, (0,))
    )
    ours = voxel_to_normalized(identity_grid_numpy(shape) + field, shape)
    np.testing.assert_allclose(field_to_channels_last(theirs), ours, atol=1e-12)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("targets", ["inside", "near_and_beyond_borders"])
def test_linear_warp_matches_spatial_transformer(rng, ndim, targets):
    # vxm's SpatialTransformer pads with zeros: out-of-image neighbours weigh
    # 0, which is our fill_mode="constant", fill_value=0 (SciPy
    # "grid-constant"), so the two agree everywhere, also across the edges.
    shape = SHAPES[ndim]
    image = random_image(rng, ndim)
    if targets == "inside":
        field = displacement_to(rng, shape, 0.0, np.asarray(shape) - 1.0)
    else:
        field = displacement_to(rng, shape, -2.5, np.asarray(shape) + 1.5)
    expected = vxm_warp_module(image, field)
    layer = SpatialTransformer(interpolation="linear", fill_mode="constant")
    np.testing.assert_allclose(
        to_numpy(layer([image, field])), expected, rtol=0, atol=WARP_ATOL
    )
    coordinates = sampling_coordinates(shape, displacement=field)
    np.testing.assert_allclose(
        to_numpy(resample(image, coordinates)), expected, rtol=0, atol=WARP_ATOL
    )
    if targets != "inside":  # the border case really samples outside
        assert np.mean(expected == 0) > 0.05


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("interpolation", ["linear", "nearest"])
def test_border_padding_matches_fill_mode_nearest(rng, ndim, interpolation):
    # grid_sample(padding_mode="border") clamps coordinates to [0, n - 1]:
    # for linear and nearest sampling this equals repeating the edge voxel,
    # our fill_mode="nearest" (only the functional API exposes it in vxm).
    shape = SHAPES[ndim]
    image = random_image(rng, ndim)
    if interpolation == "linear":
        field = displacement_to(rng, shape, -2.5, np.asarray(shape) + 1.5)
    else:
        field = quantized_displacement(rng, shape)
    expected = vxm_warp_functional(image, field, interpolation, padding_mode="border")
    layer = SpatialTransformer(interpolation=interpolation, fill_mode="nearest")
    np.testing.assert_allclose(
        to_numpy(layer([image, field])), expected, rtol=0, atol=WARP_ATOL
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_nearest_warp_matches_spatial_transformer(rng, ndim):
    # Nearest with zero padding: a voxel whose rounded target lies outside
    # the image gets 0 on both sides (our fill_value=0). Targets avoid .5
    # ties, where the two round differently (see the test below).
    shape = SHAPES[ndim]
    image = random_image(rng, ndim)
    field = quantized_displacement(rng, shape)
    expected = vxm_warp_module(image, field, "nearest")
    layer = SpatialTransformer(interpolation="nearest")
    np.testing.assert_array_equal(to_numpy(layer([image, field])), expected)
    assert np.mean(expected == 0) > 0.1  # many targets round outside

    # Integer label maps: vxm casts to float32 and back (its field must then
    # be float32 too); ours stays integer throughout.
    labels = rng.integers(1, 9, (2, *shape, 1)).astype("int32")
    expected = vxm_warp_module(labels, field, "nearest")
    assert expected.dtype == np.int32
    out = to_numpy(layer([labels, field]))
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, expected)


def test_nearest_rounding_ties_differ():
    # Documented difference, ties only: at exactly k + 1/2 we take
    # floor(c + 1/2) = k + 1, grid_sample rounds half to even. Both sides are
    # exact here (n - 1 = 8 makes the [-1, 1] normalisation exact).
    image = np.repeat(np.arange(9, dtype="float32").reshape(1, 9, 1, 1), 3, axis=2)
    targets = np.array([0.5, 1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.0])
    field = np.zeros((1, 9, 3, 2), "float32")
    field[..., 0] = (targets - np.arange(9))[None, :, None]
    ours = to_numpy(SpatialTransformer(interpolation="nearest")([image, field]))
    theirs = vxm_warp_module(image, field, "nearest")
    np.testing.assert_array_equal(ours[0, :, 0, 0], np.floor(targets + 0.5))
    np.testing.assert_array_equal(theirs[0, :, 0, 0], np.round(targets))


# --- velocity integration ----------------------------------------------------


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("steps", [1, 5, 7])
def test_integration_matches_vecint_inside(rng, ndim, steps):
    # vxm's scaling and squaring resamples with zero padding, ours repeats
    # the edge. For a velocity that vanishes near the edges (every sample
    # point stays inside the image) the two are the same algorithm:
    # u = v / 2**steps, then steps times u = u + u o (id + u).
    shape = {2: (24, 22), 3: (14, 13, 12)}[ndim]
    margin = 4 if ndim == 2 else 3
    velocity = compactly_supported(smooth_field(rng, shape, 2.0), margin)
    v = to_torch(field_to_channels_first(velocity))
    expected = field_to_channels_last(
        from_torch(vxm.integrate_vec(v, steps, non_spatial_dims=(0,)))
    )
    module = vxm.nn.modules.IntegrateVelocityField(steps=steps)
    np.testing.assert_allclose(
        field_to_channels_last(from_torch(module(v))), expected, atol=1e-12
    )
    assert np.abs(expected).max() < margin  # sample points stay inside
    ours = to_numpy(integrate_velocity(velocity, steps))
    np.testing.assert_allclose(ours, expected, rtol=0, atol=INTEGRATE_ATOL)
    layer = IntegrateVelocity(steps=steps)
    np.testing.assert_allclose(
        to_numpy(layer(velocity)), expected, rtol=0, atol=INTEGRATE_ATOL
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_integration_matches_vecint_with_border_padding(rng, ndim):
    # Any velocity, up to the edges: ours equals vxm's integrate_vec when its
    # transformer pads with "border" (edge repeated), our convention.
    shape = SHAPES[ndim]
    velocity = smooth_field(rng, shape, 3.0, sigma=1.5).astype("float32")
    transformer = functools.partial(
        vxf.spatial_transform, non_spatial_dims=(0, 1), padding_mode="border"
    )
    v = to_torch(field_to_channels_first(velocity))
    expected = field_to_channels_last(
        from_torch(
            vxm.integrate_vec(v, 7, non_spatial_dims=(0,), transformer=transformer)
        )
    )
    ours = to_numpy(integrate_velocity(velocity, 7))
    np.testing.assert_allclose(ours, expected, rtol=0, atol=INTEGRATE_ATOL)


def test_integration_padding_differs_at_the_edges():
    # Documented difference: a constant velocity is a translation. Ours gives
    # it everywhere (edge values repeated); vxm's default zero padding pulls
    # the displacement towards 0 where id + u leaves the grid.
    shape = (16, 12)
    velocity = np.zeros((1, *shape, 2), "float32")
    velocity[..., 0] = 2.0
    ours = to_numpy(integrate_velocity(velocity, 7))
    v = to_torch(field_to_channels_first(velocity))
    theirs = field_to_channels_last(
        from_torch(vxm.integrate_vec(v, 7, non_spatial_dims=(0,)))
    )
    np.testing.assert_allclose(ours, velocity, atol=1e-5)
    np.testing.assert_allclose(theirs[:, :8], velocity[:, :8], atol=1e-6)
    assert np.all(theirs[:, -1, :, 0] < 1.5)


# --- affine conventions ------------------------------------------------------

AFFINE_PARAMETERS = {
    # ours: translation (voxels), rotation (degrees), scaling; vxm's shear
    2: dict(translation=[1.5, -2.0], rotation=[17.0], scaling=[1.1, 0.85], shear=[0.1]),
    3: dict(
        translation=[1.0, -1.5, 0.5],
        rotation=[12.0, -20.0, 25.0],
        scaling=[1.1, 0.9, 1.05],
        shear=[0.1, -0.05, 0.08],
    ),
}


def both_matrices(ndim):
    """The same affine map in vxm's convention and in ours (absolute voxels).

    vxm: `params_to_affine` about the centre (its `affine_to_disp` uses
    `origin_at_center=True`). Ours: `affine_matrix(..., center=(n - 1) / 2)`
    with the rotation and shear parameters converted (see convert.py).
    """
    p = AFFINE_PARAMETERS[ndim]
    shape = SHAPES[ndim]
    theirs = vxm.params_to_affine(
        ndim,
        translation=np.asarray(p["translation"]),
        rotation=voxelmorph_rotation(p["rotation"]),
        scale=np.asarray(p["scaling"]),
        shear=np.asarray(p["shear"]),
    )
    ours = affine_matrix(
        translation=np.asarray([p["translation"]], "float32"),
        rotation=np.asarray([p["rotation"]], "float32"),
        scaling=np.asarray([p["scaling"]], "float32"),
        shear=our_shear_from_voxelmorph(p["shear"], p["scaling"])[None].astype(
            "float32"
        ),
        center=tuple((n - 1) / 2 for n in shape),
    )
    return from_torch(theirs).astype("float64"), to_numpy(ours)


@pytest.mark.parametrize("ndim", [2, 3])
def test_affine_matrix_matches_params_to_affine(ndim):
    # Same map: ours == C @ A_vxm @ C^-1 (C: translation by the centre).
    theirs, ours = both_matrices(ndim)
    expected = centred_to_corner(theirs, SHAPES[ndim])
    np.testing.assert_allclose(ours[0], expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("ndim", [2, 3])
def test_affine_to_disp_is_our_pull_back(ndim):
    # affine_to_disp(A) is a pull-back displacement, no inversion: voxel x
    # samples from C A C^-1 x, exactly our sampling_coordinates(matrix=M).
    theirs, ours = both_matrices(ndim)
    shape = SHAPES[ndim]
    disp = vxm.affine_to_disp(to_torch(theirs), shape=shape)
    expected = identity_grid_numpy(shape) + field_to_channels_last(
        from_torch(disp)[None]
    )
    coordinates = to_numpy(sampling_coordinates(shape, matrix=ours))
    np.testing.assert_allclose(coordinates, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("ndim", [2, 3])
def test_affine_warps_match(ndim):
    theirs, ours = both_matrices(ndim)
    shape = SHAPES[ndim]
    image = make_image(shape, channels=2, batch=2)
    image_first = to_torch(image_to_channels_first(image))

    # 1. vxm.spatial_transform(image, A) INVERTS A (a forward, moving-to-
    # fixed matrix) before pulling back: our SpatialTransformer needs M^-1.
    # (An unbatched A does not broadcast over a batch of images there, and a
    # compact (ndim, ndim + 1) A cannot be inverted: pass (batch, n+1, n+1).)
    batched = to_torch(np.broadcast_to(theirs, (2, ndim + 1, ndim + 1)))
    expected = image_to_channels_last(
        from_torch(
            vxm.spatial_transform(
                image_first, batched, "linear", non_spatial_dims=(0, 1)
            )
        )
    )
    out = SpatialTransformer()([image, invert_affine(ours)])
    np.testing.assert_allclose(to_numpy(out), expected, rtol=0, atol=AFFINE_ATOL)
    assert np.mean(expected == 0) > 0.01  # corners rotated out: zeros on both

    # 2. The pull-back displacement affine_to_disp(A) through vxm's module
    # equals our SpatialTransformer with M itself.
    disp = from_torch(vxm.affine_to_disp(to_torch(theirs), shape=shape))
    field = np.broadcast_to(field_to_channels_last(disp[None]), (2, *shape, ndim))
    expected = vxm_warp_module(image, field)
    out = SpatialTransformer()([image, np.broadcast_to(ours, (2, ndim + 1, ndim + 1))])
    np.testing.assert_allclose(to_numpy(out), expected, rtol=0, atol=AFFINE_ATOL)


# --- resizing displacement fields ----------------------------------------------


@pytest.mark.parametrize("ndim", [2, 3])
def test_resize_disp_interpolation_matches_but_vector_scale_differs(rng, ndim):
    # Both resize with corners aligned (align_corners=True; our
    # linear_resize_matrix). The vectors are then rescaled: vxm by
    # n_out / n_in, ours by (n_out - 1) / (n_in - 1), the zoom of the
    # corner-aligned grid (documented difference: vxm's factor does not match
    # its own align_corners=True grid).
    shape = {2: (6, 5), 3: (4, 5, 3)}[ndim]
    new_shape = {2: (11, 13), 3: (7, 9, 6)}[ndim]
    field = rng.normal(size=(2, *shape, ndim)).astype("float32")
    theirs = field_to_channels_last(
        from_torch(
            vxm.resize_disp(
                to_torch(field_to_channels_first(field)),
                shape=new_shape,
                non_spatial_dims=(0,),
            )
        )
    )
    their_scale = np.asarray(new_shape) / np.asarray(shape)
    our_scale = (np.asarray(new_shape) - 1) / (np.asarray(shape) - 1)
    resized = to_numpy(resize(field, new_shape))
    np.testing.assert_allclose(resized * their_scale, theirs, rtol=0, atol=1e-5)
    ours = to_numpy(resize_displacement(field, new_shape))
    np.testing.assert_allclose(ours, resized * our_scale, rtol=0, atol=1e-5)
    assert not np.allclose(ours, theirs, atol=1e-3)
