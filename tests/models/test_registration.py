import keras
import numpy as np
import pytest
from scipy import ndimage

from synthlayers.layers import LabelsToImagePair
from synthlayers.layers import SpatialTransformer
from synthlayers.losses import DiceLoss
from synthlayers.losses import MeanSquaredErrorLoss
from synthlayers.losses import dice_loss
from synthlayers.losses import gradient_penalty
from synthlayers.models import RegistrationModel
from synthlayers.models import ResizeDisplacement
from synthlayers.models import registration_network
from tests.helpers import to_numpy

SHAPES = {2: (32, 32), 3: (16, 16, 16)}


def tiny_network(ndim, **kwargs):
    shape = SHAPES[ndim]
    kwargs.setdefault("features", 4)
    if ndim == 3:  # 16^3: 3 levels
        kwargs["features"] = ([4] * 3, [4] * 5)
    return registration_network((*shape, 1), **kwargs)


def squares(ndim, batch=2):
    shape = SHAPES[ndim]
    labels = np.zeros((batch, *shape, 1), "int32")
    n = shape[0]
    labels[(slice(None), *[slice(n // 4, 3 * n // 4)] * ndim)] = 1
    labels[(slice(None), *[slice(3 * n // 8, 5 * n // 8)] * ndim)] = 2
    return labels


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("resolution", ["half", "full"])
def test_network_shapes_and_dtypes(ndim, resolution):
    shape = SHAPES[ndim]
    net = tiny_network(ndim, velocity_resolution=resolution)
    images = np.random.default_rng(0).random((2, *shape, 1)).astype("float32")
    out = net([images, images])
    assert set(out) == {"moved_images", "displacement", "velocity"}
    assert tuple(out["moved_images"].shape) == (2, *shape, 1)
    assert tuple(out["displacement"].shape) == (2, *shape, ndim)
    grid = tuple(n // 2 for n in shape) if resolution == "half" else shape
    assert tuple(out["velocity"].shape) == (2, *grid, ndim)
    for value in out.values():
        assert keras.backend.standardize_dtype(value.dtype) == "float32"
    # VoxelMorph's initialisation: a tiny field.
    assert np.abs(to_numpy(out["displacement"])).max() < 1e-2


@pytest.mark.parametrize("ndim", [2, 3])
def test_zero_initialised_velocity_gives_the_identity_exactly(ndim):
    shape = SHAPES[ndim]
    net = tiny_network(ndim, velocity_initializer="zeros")
    rng = np.random.default_rng(1)
    moving = rng.random((2, *shape, 1)).astype("float32")
    fixed = rng.random((2, *shape, 1)).astype("float32")
    out = net([moving, fixed])
    np.testing.assert_array_equal(to_numpy(out["displacement"]), 0.0)
    np.testing.assert_array_equal(to_numpy(out["moved_images"]), moving)


def test_constant_velocity_is_a_translation_in_voxels_of_the_image():
    # Velocity v (voxels of the half grid) -> displacement v (n - 1) / (h - 1)
    # everywhere; moved(x) = moving(x + d), linear, zeros outside: SciPy's
    # map_coordinates(order=1, mode="grid-constant") in float64.
    shape = (32, 32)
    net = registration_network((*shape, 1), features=4, velocity_initializer="zeros")
    velocity = np.array([0.75, -0.5], "float32")
    layer = net.get_layer("registration_network_velocity")
    kernel, _ = layer.get_weights()
    layer.set_weights([kernel, velocity])
    moving = np.random.default_rng(2).random((1, *shape, 1)).astype("float32")
    out = net([moving, moving])
    expected_shift = velocity * (31 / 15)
    np.testing.assert_allclose(
        to_numpy(out["displacement"]),
        np.broadcast_to(expected_shift, (1, *shape, 2)),
        atol=1e-5,
    )
    grid = np.stack(np.meshgrid(*map(np.arange, shape), indexing="ij"))
    coordinates = grid + expected_shift.astype("float64")[:, None, None]
    expected = ndimage.map_coordinates(
        moving[0, ..., 0].astype("float64"), coordinates, order=1, mode="grid-constant"
    )
    np.testing.assert_allclose(
        to_numpy(out["moved_images"])[0, ..., 0], expected, atol=1e-5
    )


def test_resize_displacement_rescales_vectors():
    field = np.zeros((1, 5, 9, 2), "float32")
    field[..., 0] = 1.0
    field[..., 1] = -2.0
    out = to_numpy(ResizeDisplacement((9, 17))(field))
    np.testing.assert_allclose(out[..., 0], 2.0, rtol=1e-6)
    np.testing.assert_allclose(out[..., 1], -4.0, rtol=1e-6)
    restored = ResizeDisplacement.from_config(ResizeDisplacement((9, 17)).get_config())
    assert restored.output_shape == (9, 17)
    with pytest.raises(ValueError, match="field"):
        ResizeDisplacement((9, 17, 3))(field)


def test_network_argument_errors():
    for bad in (0, [4, 4], ([4, 4], [4]), ([4, 0], [4, 4]), True):
        with pytest.raises(ValueError, match="features"):
            registration_network((32, 32, 1), features=bad)
    with pytest.raises(ValueError, match="multiples of 16"):
        registration_network((24, 32, 1))
    with pytest.raises(ValueError, match="input_shape"):
        registration_network((32, 1))
    with pytest.raises(ValueError, match="velocity_resolution"):
        registration_network((32, 32, 1), velocity_resolution="quarter")
    with pytest.raises(ValueError, match="integration_steps"):
        registration_network((32, 32, 1), integration_steps=-1)


def test_features_layout_follows_voxelmorph():
    net = registration_network((32, 32, 1), features=8)
    convs = [
        layer
        for layer in net.layers
        if isinstance(layer, keras.layers.Conv2D) and "velocity" not in layer.name
    ]
    assert len(convs) == 4 + 6 and {c.filters for c in convs} == {8}
    custom = registration_network((32, 32, 1), features=([4, 8, 8, 8], [8] * 8))
    convs = [
        layer
        for layer in custom.layers
        if isinstance(layer, keras.layers.Conv2D) and "velocity" not in layer.name
    ]
    assert [c.filters for c in convs] == [4, 8, 8, 8] + [8] * 8


@pytest.mark.parametrize("ndim", [2, 3])
def test_model_outputs_and_loss_on_label_maps(ndim):
    shape = SHAPES[ndim]
    generator = LabelsToImagePair.brains([0, 1, 2], deformation_std=2.0, seed=0)
    model = RegistrationModel(generator, tiny_network(ndim))
    out = model(squares(ndim), training=True)
    assert tuple(out["moved_segmentation_masks"].shape) == (2, *shape, 3)
    assert tuple(out["fixed_segmentation_masks"].shape) == (2, *shape, 3)
    moved = to_numpy(out["moved_segmentation_masks"])
    np.testing.assert_allclose(moved.sum(-1)[:, 2:-2, 2:-2], 1, atol=1e-4)
    model.compile(optimizer="adam")
    loss = float(to_numpy(model.compute_loss(y_pred=out)))
    expected = np.mean(
        to_numpy(dice_loss(out["fixed_segmentation_masks"], moved, squared=False))
    ) + np.mean(to_numpy(gradient_penalty(out["displacement"])))
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_short_fit_learns_a_translation():
    # A fixed problem (no random deformation, two label maps): the fixed
    # squares are the moving ones shifted by (3, -2) voxels, so the pull-back
    # displacement must approach (-3, 2) inside, and the loss drop.
    keras.utils.set_random_seed(0)
    moving = squares(2, batch=1)
    fixed = np.roll(moving, (3, -2), axis=(1, 2))
    x = [np.repeat(moving, 24, 0), np.repeat(fixed, 24, 0)]
    generator = LabelsToImagePair.brains([0, 1, 2], deformation_std=0, seed=0)
    network = registration_network((32, 32, 1), features=8)
    model = RegistrationModel(generator, network)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    before = float(
        to_numpy(model.compute_loss(y_pred=model([moving, fixed], training=True)))
    )
    history = model.fit(x, batch_size=2, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.6 * before, (before, losses)
    out = model([moving, fixed])
    # Inside the squares the labels are flat: only the direction and the
    # rough size of the shift are determined.
    shift = to_numpy(out["displacement"])[0, 12:20, 12:20].mean((0, 1))
    assert -4.5 < shift[0] < -2 and 1 < shift[1] < 3.5, shift
    # The moved labels (nearest neighbour) overlap the fixed ones.
    moved = to_numpy(SpatialTransformer("nearest")([moving, out["displacement"]]))
    assert np.mean(moved != fixed) < 0.5 * np.mean(moving != fixed)


@pytest.mark.slow  # the RegistrationModel docstring example fits on shapes too
def test_short_fit_on_shapes_runs():
    generator = LabelsToImagePair.shapes((32, 32), num_labels=4, seed=0)
    model = RegistrationModel(generator, tiny_network(2))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(steps_per_epoch=3, batch_size=2, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2
    assert np.all(np.isfinite(history.history["loss"]))


@pytest.mark.slow
def test_fit_on_label_maps_and_image_similarity():
    generator = LabelsToImagePair.brains([0, 1, 2], seed=0)
    model = RegistrationModel(
        generator, tiny_network(2), similarity="images", regularization_weight=0.5
    )
    model.compile(optimizer="adam", loss=MeanSquaredErrorLoss())
    history = model.fit(squares(2, batch=4), batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    model = RegistrationModel(generator, tiny_network(2), similarity="images")
    model.compile()
    assert type(model.loss).__name__ == "LocalNCCLoss"


def test_fit_errors():
    generator = LabelsToImagePair.shapes((32, 32), num_labels=3, seed=0)
    model = RegistrationModel(generator, tiny_network(2))
    model.compile()
    with pytest.raises(ValueError, match="steps_per_epoch"):
        model.fit()
    with pytest.raises(ValueError, match="no y"):
        model.fit(np.zeros((2, 1)), np.zeros((2, 1)), verbose=0)
    with pytest.raises(ValueError, match="similarity"):
        RegistrationModel(generator, tiny_network(2), similarity="mutual")
    with pytest.raises(ValueError, match="regularization_weight"):
        RegistrationModel(generator, tiny_network(2), regularization_weight=-1)
    with pytest.raises(ValueError, match="generator"):
        RegistrationModel("shapes", tiny_network(2))
    with pytest.raises(ValueError, match="network"):
        RegistrationModel(generator, "vxm")


def test_dice_label_subset_through_compile():
    generator = LabelsToImagePair.brains([0, 1, 2], deformation_std=2.0, seed=0)
    model = RegistrationModel(generator, tiny_network(2), regularization_weight=0)
    model.compile(loss=DiceLoss(squared=False, labels=[2]))
    out = model(squares(2), training=True)
    expected = dice_loss(
        out["fixed_segmentation_masks"],
        out["moved_segmentation_masks"],
        squared=False,
        labels=[2],
    )
    np.testing.assert_allclose(
        float(to_numpy(model.compute_loss(y_pred=out))),
        np.mean(to_numpy(expected)),
        rtol=1e-5,
    )


@pytest.mark.slow
@pytest.mark.parametrize("ndim", [2, 3])
def test_config_and_keras_round_trip(ndim, tmp_path):
    shape = SHAPES[ndim]
    generator = LabelsToImagePair.shapes(shape, num_labels=3, seed=0)
    model = RegistrationModel(generator, tiny_network(ndim), regularization_weight=0.5)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.fit(steps_per_epoch=2, verbose=0)
    restored = RegistrationModel.from_config(model.get_config())
    assert restored.similarity == "labels" and restored.regularization_weight == 0.5
    path = tmp_path / "registration.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, RegistrationModel)
    images = np.random.default_rng(0).random((1, *shape, 1)).astype("float32")
    a = model.network([images, images[:, ::-1]])
    b = loaded.network([images, images[:, ::-1]])
    for key in a:
        np.testing.assert_allclose(to_numpy(a[key]), to_numpy(b[key]), atol=1e-6)
    loaded.fit(steps_per_epoch=1, verbose=0)  # the optimizer state came back
    network_path = tmp_path / "network.keras"
    model.network.save(network_path)
    network = keras.saving.load_model(network_path)
    c = network([images, images[:, ::-1]])
    np.testing.assert_allclose(
        to_numpy(c["displacement"]), to_numpy(a["displacement"]), atol=1e-6
    )


# 3D: slow (a second U-Net to compile, 18 s under JAX).
@pytest.mark.parametrize("ndim", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_segmenter_front_end_outputs(ndim):
    shape = SHAPES[ndim]
    net = tiny_network(ndim, segmenter_classes=3, segmenter_features=2)
    rng = np.random.default_rng(0)
    moving, fixed = rng.random((2, 2, *shape, 1)).astype("float32")
    out = net([moving, fixed])
    assert set(out) == {
        "moved_images",
        "displacement",
        "velocity",
        "moving_probabilities",
        "fixed_probabilities",
    }
    for key in ("moving_probabilities", "fixed_probabilities"):
        probabilities = to_numpy(out[key])
        assert probabilities.shape == (2, *shape, 3)
        np.testing.assert_allclose(probabilities.sum(-1), 1, atol=1e-5)
    # One segmenter, shared: the same image gives the same probabilities.
    swapped = net([fixed, moving])
    np.testing.assert_allclose(
        to_numpy(swapped["moving_probabilities"]),
        to_numpy(out["fixed_probabilities"]),
        atol=1e-6,
    )
    # The moved image is the raw moving image warped, not its probabilities.
    moved = SpatialTransformer()([moving, out["displacement"]])
    np.testing.assert_allclose(
        to_numpy(out["moved_images"]), to_numpy(moved), atol=1e-6
    )
    with pytest.raises(ValueError, match="segmenter_classes"):
        tiny_network(ndim, segmenter_classes=1)


def test_segmenter_loss_adds_the_weighted_segmentation_dice():
    generator = LabelsToImagePair.brains([0, 1, 2], deformation_std=2.0, seed=0)
    network = tiny_network(2, segmenter_classes=3, segmenter_features=2)
    model = RegistrationModel(generator, network, segmentation_weight=0.4)
    model.compile(optimizer="adam")
    out = model(squares(2), training=True)
    loss = float(to_numpy(model.compute_loss(y_pred=out)))
    fixed = out["fixed_segmentation_masks"]
    moving = (np.arange(3) == to_numpy(out["moving_segmentation_masks"])).astype(
        "float32"
    )

    def dice(truth, prediction):
        return np.mean(to_numpy(dice_loss(truth, prediction, squared=False)))

    expected = (
        dice(fixed, out["moved_segmentation_masks"])
        + np.mean(to_numpy(gradient_penalty(out["displacement"])))
        + 0.2 * dice(moving, out["moving_probabilities"])
        + 0.2 * dice(fixed, out["fixed_probabilities"])
    )
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    model.segmentation_weight = 0.0
    without = float(to_numpy(model.compute_loss(y_pred=out)))
    assert without < loss


def test_segmenter_classes_must_match_the_target_labels():
    generator = LabelsToImagePair.brains([0, 1, 2], seed=0)
    network = tiny_network(2, segmenter_classes=4, segmenter_features=2)
    model = RegistrationModel(generator, network)
    with pytest.raises(ValueError, match="segmenter_classes=4"):
        model(squares(2), training=True)
    with pytest.raises(ValueError, match="segmentation_weight"):
        RegistrationModel(generator, network, segmentation_weight=-0.1)


def test_segmenter_network_saves_and_loads(tmp_path):
    network = tiny_network(2, segmenter_classes=3, segmenter_features=2)
    path = tmp_path / "network.keras"
    network.save(path)
    loaded = keras.saving.load_model(path)
    images = np.random.default_rng(0).random((1, 32, 32, 1)).astype("float32")
    a = network([images, images[:, ::-1]])
    b = loaded([images, images[:, ::-1]])
    for key in a:
        np.testing.assert_allclose(to_numpy(a[key]), to_numpy(b[key]), atol=1e-6)
