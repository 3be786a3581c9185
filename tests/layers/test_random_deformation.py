import numpy as np
import pytest

from synthlayers.layers import RandomDeformation
from synthlayers.layers import RandomSpatialTransform
from synthlayers.ops import jacobian_determinant
from tests.helpers import check_layer
from tests.helpers import make_image
from tests.helpers import make_label_map
from tests.helpers import to_numpy

SHAPES = {2: (24, 20), 3: (12, 14, 16)}
# RandomSpatialTransform with its deformation only (no SynthSeg affine).
NO_AFFINE = {"rotation": 0, "scaling": 0, "shear": 0}


@pytest.mark.parametrize("ndim", [2, 3])
def test_contract(ndim, tmp_path):
    shape = SHAPES[ndim]
    data = {"images": make_image(shape), "segmentation_masks": make_label_map(shape)}
    check_layer(
        RandomDeformation, {"std": 2.0, "grid_shape": 4}, data, tmp_path=tmp_path
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_zero_std_returns_input_exactly(ndim):
    shape = SHAPES[ndim]
    data = {"images": make_image(shape), "segmentation_masks": make_label_map(shape)}
    out = RandomDeformation(std=0.0, seed=0)(data)
    np.testing.assert_array_equal(to_numpy(out["images"]), data["images"])
    np.testing.assert_array_equal(
        to_numpy(out["segmentation_masks"]), data["segmentation_masks"]
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_deformation_is_diffeomorphic(ndim):
    shape = (48, 40) if ndim == 2 else (24, 20, 22)
    # SVF std over control-point spacing as in SynthSeg's defaults (4 / 26).
    layer = RandomSpatialTransform(
        deformation_std=(1.5, 1.5),
        deformation_grid_shape=4,
        return_transform=True,
        seed=2,
        **NO_AFFINE,
    )
    out = layer(make_image(shape, batch=4))
    displacement = out["displacement"]
    assert np.abs(to_numpy(displacement)).max() > 1.0  # it really deforms
    assert to_numpy(jacobian_determinant(displacement)).min() > 0


def test_svf_vectors_are_rescaled_with_the_grid():
    """Regression (SynthSeg): upsampling the SVF must rescale its vectors.

    Without integration the displacement at the corner control points is the
    SVF itself, whose standard deviation is `std` in output voxels whatever
    the control grid and output sizes.
    """
    for size in (17, 65):
        layer = RandomSpatialTransform(
            deformation_std=(2.0, 2.0),
            deformation_grid_shape=3,
            integration_steps=0,
            return_transform=True,
            seed=0,
            **NO_AFFINE,
        )
        out = layer(make_image((size, size), batch=256))
        corners = to_numpy(out["displacement"])[:, :: size - 1, :: size - 1]
        assert abs(corners.std() - 2.0) < 0.15, (size, corners.std())


@pytest.mark.parametrize("half", [False, True])
def test_spatial_transform_fast_path_equals_deformation_layer(half):
    """RandomSpatialTransform resizes the coarse field inside the coordinate
    map (`coordinate_axes`); RandomDeformation resizes it first. Same seed,
    same draws: same warped images."""
    image = make_image((24, 20, 16), batch=2)
    kwargs = dict(integrate_at_half_resolution=half, seed=3)
    direct = RandomDeformation(std=(2.0, 2.0), grid_shape=4, **kwargs)(image)
    fused = RandomSpatialTransform(
        deformation_std=(2.0, 2.0), deformation_grid_shape=4, **NO_AFFINE, **kwargs
    )(image)
    np.testing.assert_allclose(to_numpy(fused), to_numpy(direct), atol=1e-4)


def test_half_resolution_integration_is_close_to_control_grid_integration():
    """Same SVF, two integration grids: close, both diffeomorphic."""
    image = make_image((64, 64), batch=8)
    kwargs = dict(
        deformation_std=(3.0, 3.0),
        deformation_grid_shape=5,
        return_transform=True,
        seed=4,
        **NO_AFFINE,
    )
    coarse = to_numpy(RandomSpatialTransform(**kwargs)(image)["displacement"])
    half = to_numpy(
        RandomSpatialTransform(integrate_at_half_resolution=True, **kwargs)(image)[
            "displacement"
        ]
    )
    relative_rms = np.sqrt(np.mean((coarse - half) ** 2) / np.mean(half**2))
    assert relative_rms < 0.3  # measured about 0.17
    assert to_numpy(jacobian_determinant(coarse)).min() > 0
    assert to_numpy(jacobian_determinant(half)).min() > 0


@pytest.mark.parametrize("ndim", [2, 3])
def test_extreme_std_stays_finite_with_valid_labels(ndim):
    shape = SHAPES[ndim]
    labels = make_label_map(shape, labels=[0, 5, 9])
    out = RandomDeformation(std=(200.0, 200.0), grid_shape=3, seed=0)(
        {"images": make_image(shape), "segmentation_masks": labels}
    )
    assert np.all(np.isfinite(to_numpy(out["images"])))
    assert set(np.unique(to_numpy(out["segmentation_masks"]))) <= {0, 5, 9}


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"std": -1.0}, "std"),
        ({"std": (3.0, 1.0)}, "std"),
        ({"grid_shape": 1}, "grid_shape"),
        ({"grid_shape": 1.5}, "grid_shape"),
        ({"grid_shape": (4, 1)}, "grid_shape"),
        ({"integrate_at_half_resolution": "yes"}, "integrate_at_half_resolution"),
        ({"integration_steps": -1}, "integration_steps"),
        ({"probability": -0.1}, "probability"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"{name}.*Received"):
        RandomDeformation(**kwargs)


def test_grid_shape_of_wrong_length():
    with pytest.raises(
        ValueError, match=r"grid_shape.*Received: grid_shape=\(4, 4, 4\)"
    ):
        RandomDeformation(grid_shape=(4, 4, 4))(np.zeros((1, 8, 8, 1), "float32"))


def test_grid_shape_mixes_counts_and_fractions():
    layer = RandomDeformation(grid_shape=(3, 0.25), seed=0)
    assert layer.sampler.control_shape((40, 40)) == (3, 10)
    assert layer.get_config()["grid_shape"] == [3, 0.25]


def test_defaults_are_synthseg_and_change_the_input():
    layer = RandomDeformation(seed=0)
    config = layer.get_config()
    assert config["std"] == 4.0
    assert config["grid_shape"] == 0.04
    assert config["integration_steps"] == 7
    image = make_image((48, 48), batch=2)
    out = to_numpy(layer(image))
    assert np.all(np.abs(out - image).max(axis=(1, 2, 3)) > 0.05)


def test_deprecated_svf_shape_alias():
    image = make_image((16, 16), batch=2)
    with pytest.warns(DeprecationWarning, match="`svf_shape`.*`grid_shape`"):
        old = RandomDeformation(svf_shape=4, seed=5, name="deformation")
    new = RandomDeformation(grid_shape=4, seed=5, name="deformation")
    assert old.get_config() == new.get_config()
    assert "svf_shape" not in new.get_config()
    np.testing.assert_array_equal(to_numpy(old(image)), to_numpy(new(image)))
    with pytest.raises(ValueError, match="`svf_shape`.*`grid_shape`"):
        RandomDeformation(grid_shape=4, svf_shape=4)


def test_old_config_still_loads():
    config = RandomDeformation(grid_shape=5, seed=1).get_config()
    config["svf_shape"] = config.pop("grid_shape")
    layer = RandomDeformation.from_config(config)
    assert layer.sampler.grid_shape == 5
    assert "svf_shape" not in layer.get_config()
