"""Cross-checks of the registration network and losses against voxelmorph 0.3.4.

voxelmorph's PyTorch `VxmPairwise` predicts a velocity field with its own
U-Net (`neurite.nn.models.BasicUNet`), integrates it (`integrate_vec`) and
warps the source (`SpatialTransformer`). The U-Nets differ (ours is the
TensorFlow `VxmDense` layout SynthMorph trains), so we compare what follows
the velocity: given the same velocity field, our network's own layers
(`IntegrateVelocity`, `ResizeDisplacement`, `SpatialTransformer`) give the
same displacement and moved image. The losses: our `gradient_penalty` is
neurite's `spatial_gradient` (voxelmorph 0.3.4's `Grad` is deprecated in its
favour), our `local_ncc` is neurite's `ncc` (voxelmorph's `NCC`). Reference
side in torch float64 on our float32 inputs. Conventions:
docs/conventions.md.
"""

import numpy as np
import pytest

from synthlayers.losses import gradient_penalty
from synthlayers.losses import local_ncc
from synthlayers.models import registration_network
from tests.crosscheck.convert import field_to_channels_first
from tests.crosscheck.convert import field_to_channels_last
from tests.crosscheck.convert import from_torch
from tests.crosscheck.convert import image_to_channels_first
from tests.crosscheck.convert import image_to_channels_last
from tests.crosscheck.convert import to_torch
from tests.helpers import to_numpy

vxm = pytest.importorskip("voxelmorph")
torch = pytest.importorskip("torch")
nef = pytest.importorskip("neurite.nn.functional")

SHAPES = {2: (32, 32), 3: (16, 16, 16)}
ATOL = 1e-5


def head(network, velocity, moving):
    """Our network's layers after the velocity convolution."""
    name = network.name
    displacement = network.get_layer(f"{name}_integrate")(velocity)
    names = [layer.name for layer in network.layers]
    if f"{name}_resize" in names:
        displacement = network.get_layer(f"{name}_resize")(displacement)
    moved = network.get_layer(f"{name}_transformer")([moving, displacement])
    return to_numpy(displacement), to_numpy(moved)


def vxm_pairwise(ndim, steps=5):
    torch.manual_seed(0)
    model = vxm.nn.models.VxmPairwise(
        ndim, 1, 1, nb_features=(4, 4, 4), integration_steps=steps
    )
    # A visible deformation: the default flow weights (std 1e-5) give ~0.
    with torch.no_grad():
        model.flow_layer.conv0.weight.normal_(0.0, {2: 0.4, 3: 0.2}[ndim])
    return model.double().eval()


def network(ndim, resolution):
    features = 4 if ndim == 2 else ([4] * 3, [4] * 5)
    return registration_network(
        (*SHAPES[ndim], 1),
        features=features,
        velocity_resolution=resolution,
        integration_steps=5,
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_same_velocity_same_displacement_and_moved_image(ndim, rng):
    # VxmPairwise's own velocity, integration and warp against our
    # network's layers on that velocity. The integrations pad differently
    # (vxm zeros, ours the edge) where id + u leaves the grid: compared
    # away from the edges, with the displacement kept below 1.5 voxels.
    shape = SHAPES[ndim]
    model = vxm_pairwise(ndim)
    source = rng.random((1, *shape, 1)).astype("float32")
    target = rng.random((1, *shape, 1)).astype("float32")
    with torch.no_grad():
        s = to_torch(image_to_channels_first(source))
        t = to_torch(image_to_channels_first(target))
        velocity = model(s, t, return_field_type="velocity")
        displacement, warped = model(s, t, return_warped_source=True)
    velocity = field_to_channels_last(from_torch(velocity))
    theirs = field_to_channels_last(from_torch(displacement))
    warped = image_to_channels_last(from_torch(warped))
    assert 0.3 < np.abs(theirs).max() < 1.5  # a real, moderate deformation
    ours, moved = head(network(ndim, "full"), velocity.astype("float32"), source)
    inside = (slice(None), *[slice(4, -4)] * ndim)
    np.testing.assert_allclose(ours[inside], theirs[inside], rtol=0, atol=ATOL)
    np.testing.assert_allclose(moved[inside], warped[inside], rtol=0, atol=ATOL)
    # The moved image from their displacement through our transformer
    # agrees everywhere (the same zero padding of the image).
    net = network(ndim, "full")
    moved = net.get_layer(f"{net.name}_transformer")([source, theirs.astype("float32")])
    np.testing.assert_allclose(to_numpy(moved), warped, rtol=0, atol=ATOL)


@pytest.mark.parametrize("ndim", [2, 3])
def test_half_resolution_upsampling_differs_only_in_vector_scale(ndim, rng):
    # vxm's ResizeDisplacementField(2) and our ResizeDisplacement interpolate
    # alike (corners aligned); vxm multiplies the vectors by 2, we by
    # (n - 1) / (h - 1), the zoom of the corner-aligned grid.
    shape = SHAPES[ndim]
    half = tuple(n // 2 for n in shape)
    field = rng.normal(size=(1, *half, ndim)).astype("float32")
    resize = vxm.nn.modules.ResizeDisplacementField(scale_factor=2.0)
    theirs = field_to_channels_last(
        from_torch(resize(to_torch(field_to_channels_first(field))))
    )
    net = network(ndim, "half")
    ours = to_numpy(net.get_layer(f"{net.name}_resize")(field))
    ratio = 2.0 * (np.asarray(half) - 1) / (np.asarray(shape) - 1)
    np.testing.assert_allclose(ours * ratio, theirs, rtol=0, atol=ATOL)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("penalty", ["l2", "l1"])
def test_gradient_penalty_matches_spatial_gradient(ndim, penalty, rng):
    shape = {2: (12, 9), 3: (7, 6, 5)}[ndim]
    field = rng.normal(size=(3, *shape, ndim)).astype("float32")
    theirs = float(
        nef.spatial_gradient(to_torch(field_to_channels_first(field)), penalty=penalty)
    )
    ours = to_numpy(gradient_penalty(field, penalty=penalty))
    np.testing.assert_allclose(ours.mean(), theirs, rtol=1e-5)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("window", [9, 5])
def test_local_ncc_matches_neurite_ncc(ndim, window, rng):
    # Odd windows: neurite's box filter pads window // 2 on both sides, our
    # "same" sums too (even windows make neurite's output one voxel longer).
    shape = {2: (20, 17), 3: (12, 11, 10)}[ndim]
    fixed = rng.random((2, *shape, 1)).astype("float32")
    moved = (0.6 * fixed + 0.4 * rng.random((2, *shape, 1))).astype("float32")
    theirs = from_torch(
        nef.ncc(
            to_torch(image_to_channels_first(fixed)),
            to_torch(image_to_channels_first(moved)),
            window_size=window,
            reduction=None,
        )
    )[:, 0]
    ours = to_numpy(local_ncc(fixed, moved, window=window))
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)
