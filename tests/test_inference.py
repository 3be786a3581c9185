"""Tests for synthlayers.inference: orientation, resampling, flip augmentation."""

import math
import os

import keras
import nibabel
import numpy as np
import pytest
from keras import ops

from synthlayers import io
from synthlayers.inference import _Grid
from synthlayers.inference import left_right_channel_pairs
from synthlayers.inference import normalize_intensities
from synthlayers.inference import predict_probabilities
from synthlayers.inference import segment
from tests.test_io import _data_dir
from tests.test_io import reoriented

# Channel i of the test networks means label OUTPUT_LABELS[i].
OUTPUT_LABELS = [0, 2, 41]  # background, left and right white matter


class SideLabels(keras.layers.Layer):
    """Deterministic "segmentation": bright voxels labelled by grid side.

    Channels: background (intensity <= 0.5), left (bright, in the lower half
    of the first spatial axis, i.e. the left in RAS), right (bright, upper
    half). Exact 0/1 probabilities; equivariant under a left/right flip with
    the left/right channels swapped (for an even-sized first axis).
    """

    def __init__(self, always_left=False, threshold=0.5, **kwargs):
        super().__init__(**kwargs)
        self.always_left = always_left
        self.threshold = threshold

    def call(self, x):
        bright = ops.cast(x > self.threshold, x.dtype)
        if self.always_left:
            left = ops.ones_like(x)
        else:
            index = ops.cumsum(ops.ones_like(x), axis=1)
            left = ops.cast(index < ops.flip(index, axis=1), x.dtype)
        return ops.concatenate(
            [1 - bright, bright * left, bright * (1 - left)], axis=-1
        )

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 3)


def side_model(rank, always_left=False, threshold=0.5):
    inputs = keras.Input((None,) * rank + (1,))
    return keras.Model(inputs, SideLabels(always_left, threshold)(inputs))


def linear_model(rank):
    """Outputs `[1 - x, x]` (pointwise, linear): argmax thresholds at 0.5."""
    inputs = keras.Input((None,) * rank + (1,))
    conv = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[rank](2, 1)
    model = keras.Model(inputs, conv(inputs))
    kernel = np.array([-1.0, 1.0], "float32").reshape((1,) * rank + (1, 2))
    conv.set_weights([kernel, np.array([1.0, 0.0], "float32")])
    return model


def conv_model(rank, channels=3, seed=0):
    """A small random convolutional network (not pointwise)."""
    keras.utils.set_random_seed(seed)
    conv = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}[rank]
    inputs = keras.Input((None,) * rank + (1,))
    x = conv(4, 3, padding="same", activation="relu")(inputs)
    x = conv(channels, 3, padding="same", activation="softmax")(x)
    return keras.Model(inputs, x)


def head(shape, seed=0):
    """A smooth, left/right asymmetric "head" in RAS: bright brain, dark rim,
    and a bright blob in the left hemisphere only."""
    rng = np.random.default_rng(seed)
    grids = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    radius = np.sqrt(sum(g**2 for g in grids))
    image = np.where(radius < 0.8, 150.0, 10.0)
    blob = (grids[0] + 0.5) ** 2 + grids[1] ** 2 + grids[2] ** 2 < 0.35**2
    image[blob] = 200.0
    image[(grids[0] > 0) & (radius < 0.8) & (grids[2] > 0.3)] = 20.0  # dark, right
    return (image + rng.normal(0, 1, shape)).astype("float32")


def test_normalize_intensities():
    image = np.arange(1001, dtype="float64")
    out = normalize_intensities(image, percentiles=(10, 90))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[100:901], (image[100:901] - 100) / 800, atol=1e-6)
    assert out[:100].max() == 0 and out[901:].min() == 1
    np.testing.assert_array_equal(normalize_intensities(np.full((3, 3), 7.0)), 0)


@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("divisor", [1, 8])
def test_predict_probabilities_shapes(rank, divisor):
    shape = (13, 10, 7)[:rank]
    image = np.random.default_rng(0).random(shape).astype("float32")
    out = predict_probabilities(conv_model(rank), image, divisor=divisor)
    assert out.shape == (*shape, 3)
    np.testing.assert_allclose(out.sum(-1), 1, atol=1e-5)


def test_padding_crops_back_exactly():
    image = np.random.default_rng(0).random((12, 10, 6)).astype("float32")
    model = linear_model(3)
    for divisor in (1, 4, 16):
        out = predict_probabilities(model, image, divisor=divisor)
        np.testing.assert_allclose(out[..., 1], image, atol=1e-6)


@pytest.mark.parametrize("slice_axis", [0, 1, 2])
def test_2d_network_slice_by_slice(slice_axis):
    image = np.random.default_rng(1).random((9, 10, 7)).astype("float32")
    model = conv_model(2)
    out = predict_probabilities(
        model, image, slice_axis=slice_axis, batch_size=4, divisor=1
    )
    assert out.shape == (*image.shape, 3)
    # Reference: each slice on its own.
    for i in (0, image.shape[slice_axis] - 1):
        slice_ = np.take(image, i, axis=slice_axis)
        expected = keras.ops.convert_to_numpy(model(slice_[None, ..., None]))[0]
        np.testing.assert_allclose(
            np.take(out, i, axis=slice_axis), expected, atol=1e-5
        )
    # The batch size does not change the result.
    other = predict_probabilities(
        model, image, slice_axis=slice_axis, batch_size=100, divisor=1
    )
    np.testing.assert_allclose(other, out, atol=1e-6)


def test_2d_network_views_are_averaged():
    image = np.random.default_rng(2).random((9, 10, 7)).astype("float32")
    model = conv_model(2)
    views = [
        predict_probabilities(model, image, slice_axis=a, divisor=4) for a in (1, 2)
    ]
    both = predict_probabilities(model, image, slice_axis=(1, 2), divisor=4)
    np.testing.assert_allclose(both, (views[0] + views[1]) / 2, atol=1e-6)
    # With the flip: the mean of the flipped views too, channels 1 and 2
    # swapped.
    flipped = predict_probabilities(
        model, image, slice_axis=(1, 2), divisor=4, flip=True, flip_pairs=[(1, 2)]
    )
    mirrored = predict_probabilities(model, image[::-1], slice_axis=(1, 2), divisor=4)[
        ::-1
    ][..., [0, 2, 1]]
    np.testing.assert_allclose(flipped, (both + mirrored) / 2, atol=1e-6)


@pytest.mark.parametrize("rank", [2, 3])
def test_flip_augmentation_swaps_channels(rank):
    # A network that calls every bright voxel "left": with the flip, the
    # flipped image's "left" is the true right, so after flipping back and
    # swapping channels 1 <-> 2 half of each bright voxel's mass is right.
    image = normalize_intensities(head((12, 14, 10)))
    model = side_model(rank, always_left=True)
    plain = predict_probabilities(model, image, divisor=1)
    bright = (image > 0.5).astype("float32")
    np.testing.assert_array_equal(plain[..., 1], bright)
    flipped = predict_probabilities(
        model, image, divisor=1, flip=True, output_labels=OUTPUT_LABELS
    )
    np.testing.assert_allclose(flipped[..., 0], 1 - bright)
    np.testing.assert_allclose(flipped[..., 1], 0.5 * bright)
    np.testing.assert_allclose(flipped[..., 2], 0.5 * bright)


@pytest.mark.parametrize("rank", [2, 3])
def test_flip_augmentation_keeps_an_equivariant_answer(rank):
    # The side network is right about left and right: flip augmentation must
    # give back the same probabilities (flip back + channel swap), while
    # skipping the swap or the flip back would not.
    image = normalize_intensities(head((12, 14, 10)))
    model = side_model(rank)
    plain = predict_probabilities(model, image, divisor=4)
    assert plain[..., 1].sum() > 0 and plain[..., 2].sum() > 0
    with_flip = predict_probabilities(
        model, image, divisor=4, flip=True, flip_pairs=[(1, 2)]
    )
    np.testing.assert_array_equal(with_flip, plain)
    no_swap = predict_probabilities(model, image, divisor=4, flip=True, flip_pairs=())
    assert not np.allclose(no_swap, plain)


def test_flip_pairs_from_output_labels():
    assert left_right_channel_pairs([0, 2, 3, 41, 42]) == [(1, 3), (2, 4)]
    assert left_right_channel_pairs([0, 41, 2, 16]) == [(2, 1)]
    assert left_right_channel_pairs([0, 2, 41], pairs={41: 2}) == [(2, 1)]
    assert left_right_channel_pairs([0, 16]) == []


def _ras_case():
    ras = head((16, 14, 12))
    affine = np.diag([1.5, 2.0, 1.0, 1.0])
    affine[:3, 3] = (-12, 8, 30)
    return ras, affine


@pytest.mark.parametrize(
    "permutation, flips",
    [
        ((0, 1, 2), (False, False, False)),
        ((0, 2, 1), (True, False, True)),  # LIA (FreeSurfer)
        ((2, 0, 1), (False, True, True)),
        ((1, 2, 0), (True, False, True)),
    ],
)
def test_segment_is_anatomy_aligned_whatever_the_header(tmp_path, permutation, flips):
    ras, affine = _ras_case()
    model = side_model(3)
    kwargs = dict(output_labels=OUTPUT_LABELS, divisor=4, target_voxel_size=1.0)
    expected = segment(model, ras, voxel_size=(1.5, 2.0, 1.0), **kwargs)
    assert expected.shape == ras.shape
    # Anatomy: left white matter (2) only on the left (low RAS x), 41 on the
    # right, and the left-only blob labelled left.
    x = np.arange(ras.shape[0])[:, None, None] * np.ones(ras.shape)
    assert x[expected == 2].max() < x[expected == 41].min()
    assert np.all(expected[ras > 175] == 2)

    data, file_affine = reoriented(ras, affine, permutation, flips)
    path = io.save_volume(tmp_path / "scan.nii.gz", data, file_affine)
    out_path = tmp_path / "seg.nii.gz"
    labels = segment(model, path, out_path=out_path, **kwargs)
    # Same shape and voxel order as the file, same anatomy as in RAS.
    assert labels.shape == data.shape and labels.dtype == np.int32
    np.testing.assert_array_equal(io.to_ras(labels, file_affine)[0], expected)
    written = nibabel.load(out_path)
    np.testing.assert_allclose(written.affine, file_affine, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(written.dataobj), labels)
    # An array with its affine, and a nibabel image, give the same answer.
    np.testing.assert_array_equal(
        segment(model, data, affine=file_affine, **kwargs), labels
    )
    np.testing.assert_array_equal(segment(model, nibabel.load(path), **kwargs), labels)


def test_segment_with_flip_and_2d_network_stays_aligned(tmp_path):
    ras, affine = _ras_case()
    data, file_affine = reoriented(ras, affine, (0, 2, 1), (True, False, True))
    path = io.save_volume(tmp_path / "scan.nii.gz", data, file_affine)
    kwargs = dict(output_labels=OUTPUT_LABELS, divisor=4, target_voxel_size=1.0)
    reference = segment(side_model(3), path, **kwargs)
    for model, extra in [
        (side_model(3), dict(flip=True)),
        (side_model(2), dict(slice_axis=2)),
        (side_model(2), dict(slice_axis=1, flip=True, batch_size=3)),
    ]:
        np.testing.assert_array_equal(
            segment(model, path, **kwargs, **extra), reference
        )


@pytest.mark.parametrize("voxel_size", [2.0, (2.0, 1.0, 0.5), (0.7, 1.3, 1.0)])
def test_segment_resamples_there_and_back(voxel_size):
    # Linear network [1 - x, x]: its outputs resampled back onto the input
    # grid give x again up to the anti-aliasing blur where a grid is
    # coarsened, so the labels are (nearly) x > 0.5.
    image = head((10, 12, 14))
    expected = (normalize_intensities(image) > 0.5).astype("int32")
    for interpolation in ("linear", "nearest"):
        labels = segment(
            linear_model(3),
            image,
            voxel_size=voxel_size,
            divisor=8,
            interpolation=interpolation,
        )
        assert labels.shape == image.shape and labels.dtype == np.int32
        assert np.mean(labels == expected) > 0.93


@pytest.mark.parametrize(
    "size, voxel_size, target", [(10, 2.0, 1.0), (9, 0.5, 1.0), (12, 1.3, 0.7)]
)
def test_resampling_grid_is_centred(size, voxel_size, target):
    # A linear ramp in world mm (origin at the centre of the field of view)
    # must be reproduced at the network's voxel centres and back again: no
    # half-voxel shift. (Away from the edges, where values are clamped.)
    grid = _Grid((size,), (voxel_size,), (target,))
    # Halves round up (9 x 0.5 mm -> 5 voxels of 1 mm), as for label maps.
    assert grid.shape == (math.floor(size * voxel_size / target + 0.5),)
    world_in = (np.arange(size) - (size - 1) / 2) * voxel_size
    world_net = (np.arange(grid.shape[0]) - (grid.shape[0] - 1) / 2) * target
    on_network = grid.to_network(world_in)
    interior = np.abs(world_net) < world_in.max() - 3 * max(voxel_size, target)
    np.testing.assert_allclose(on_network[interior], world_net[interior], atol=1e-9)
    back = grid.to_input(world_net)
    interior = np.abs(world_in) < world_net.max() - 3 * max(voxel_size, target)
    np.testing.assert_allclose(back[interior], world_in[interior], atol=1e-9)
    nearest = grid.nearest_to_input(np.arange(grid.shape[0]))
    np.testing.assert_array_less(
        np.abs(world_net[nearest] - world_in), target / 2 + 1e-9
    )


def test_segment_without_resampling_or_normalisation():
    image = np.random.default_rng(0).random((8, 6, 10)).astype("float32")
    labels = segment(
        linear_model(3), image, target_voxel_size=None, percentiles=None, divisor=1
    )
    np.testing.assert_array_equal(labels, (image > 0.5).astype("int32"))


def test_segment_2d_image():
    image = head((20, 16, 3))[..., 1]
    labels = segment(
        side_model(2), image, voxel_size=(1.0, 2.0), output_labels=OUTPUT_LABELS
    )
    assert labels.shape == image.shape
    assert set(np.unique(labels)) <= {0, 2, 41}


# --- Errors ---------------------------------------------------------------


def test_segment_bad_arguments(tmp_path):
    model = side_model(3)
    image = np.zeros((8, 8, 8), "float32")
    cases = [
        (
            dict(interpolation="cubic"),
            "`interpolation` must be one of.*interpolation='cubic'",
        ),
        (dict(percentiles=(99, 1)), "Expected `percentiles`.*percentiles=\\(99, 1\\)"),
        (dict(percentiles=(0, 101)), "percentiles=\\(0, 101\\)"),
        (dict(divisor=0), "`divisor` must be >= 1.*divisor=0"),
        (dict(batch_size=1.5), "`batch_size` must be an integer.*batch_size=1.5"),
        (dict(slice_axis=3), "Expected `slice_axis`.*slice_axis=3"),
        (dict(slice_axis=(1, 1)), "distinct.*slice_axis=\\(1, 1\\)"),
        (dict(slice_axis=1.0), "slice_axis=1.0"),
        (dict(slice_axis=()), "slice_axis=\\(\\)"),
        (dict(voxel_size=(1, 2)), "Expected `voxel_size`.*voxel_size=\\(1, 2\\)"),
        (dict(voxel_size=-1), "voxel_size=-1"),
        (dict(target_voxel_size=0), "Expected `target_voxel_size`.*=0"),
        (dict(target_voxel_size="1mm"), "target_voxel_size='1mm'"),
        (dict(output_labels=[0, 2, 2]), "Expected `output_labels`.*output_labels"),
        (dict(output_labels=[0, 2]), "one value per output channel.*Received: 2"),
        (dict(output_labels=[0.5, 2, 41]), "distinct integers"),
        (dict(flip=True), "Expected `flip_pairs` or `output_labels`"),
        (dict(flip=True, flip_axis=3, flip_pairs=[]), "Expected `flip_axis`.*=3"),
        (dict(flip=True, flip_pairs=[(1, 3)]), "Expected `flip_pairs`.*\\(1, 3\\)"),
        (dict(flip=True, flip_pairs=[(1, 2), (2, 0)]), "disjoint pairs"),
        (dict(voxel_size=1.0, affine=np.eye(4)), "only one of `voxel_size`"),
        (dict(affine=np.eye(3)), "4 x 4"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            segment(model, image, **kwargs)
    with pytest.raises(
        ValueError, match="2D or 3D image.*image.shape=\\(2, 2, 2, 2\\)"
    ):
        segment(model, np.zeros((2, 2, 2, 2)))
    with pytest.raises(ValueError, match="3D image to write `out_path`"):
        segment(side_model(2), np.zeros((8, 8)), out_path=tmp_path / "x.nii.gz")
    with pytest.raises(ValueError, match="a 3D image .* for a 3D network"):
        segment(model, np.zeros((8, 8)))
    with pytest.raises(ValueError, match="3D image with `affine`"):
        segment(side_model(2), np.zeros((8, 8)), affine=np.eye(4))
    path = io.save_volume(tmp_path / "scan.nii.gz", image, np.eye(4))
    with pytest.raises(ValueError, match="None for a file.*voxel_size=2"):
        segment(model, path, voxel_size=2)
    with pytest.raises(ValueError, match="affine=None` for a nibabel image"):
        segment(model, nibabel.load(path), affine=np.eye(4))


def test_predict_probabilities_bad_arguments():
    image = np.zeros((8, 8, 8), "float32")
    with pytest.raises(ValueError, match="flip_axis` different from `slice_axis"):
        predict_probabilities(
            side_model(2), image, slice_axis=0, flip=True, flip_axis=0, flip_pairs=()
        )
    with pytest.raises(ValueError, match="flip_axis` different from `slice_axis"):
        predict_probabilities(
            side_model(2), image, slice_axis=(2, 0), flip=True, flip_pairs=()
        )
    with pytest.raises(ValueError, match="one input.*Received: model"):
        predict_probabilities(keras.Sequential([keras.layers.Dense(2)]), image)
    inputs = keras.Input((None, 1))
    with pytest.raises(ValueError, match="2D or 3D network"):
        predict_probabilities(keras.Model(inputs, inputs), image)
    inputs = keras.Input((None, None, None, 1))
    two_outputs = keras.Model(inputs, [inputs, inputs])
    with pytest.raises(ValueError, match="one output.*Received"):
        predict_probabilities(two_outputs, image)
    valid = keras.Model(inputs, keras.layers.Conv3D(2, 3)(inputs))
    with pytest.raises(ValueError, match="its input's spatial shape. Received"):
        predict_probabilities(valid, image)
    with pytest.raises(ValueError, match="Received: output_labels=None"):
        left_right_channel_pairs(None)


@pytest.mark.skipif(_data_dir() is None, reason="vxm_test_scan.npz not found")
def test_vxm_test_scan_left_is_left(tmp_path):
    # The real scan through a NIfTI file with its LIA header: the side
    # network's "left" must cover the left hemisphere's labels.
    scan = np.load(os.path.join(_data_dir(), "vxm_test_scan.npz"))
    vol, seg = scan["vol"][::2, ::2, ::2], scan["seg"][::2, ::2, ::2]
    affine = io.vxm_test_scan_affine(scan["vol"].shape) @ np.diag([2, 2, 2, 1])
    path = io.save_volume(tmp_path / "vol.nii.gz", vol.astype("float32"), affine)
    labels = segment(
        side_model(3, threshold=0.05),
        path,
        output_labels=OUTPUT_LABELS,
        target_voxel_size=2.0,
        divisor=16,
    )
    assert labels.shape == vol.shape
    left_hemisphere = np.isin(seg, [2, 3])
    right_hemisphere = np.isin(seg, [41, 42])
    assert np.mean(labels[left_hemisphere] == 2) > 0.9
    assert np.mean(labels[right_hemisphere] == 41) > 0.9


def test_segment_file_with_trailing_singleton_axis(tmp_path):
    ras, affine = _ras_case()
    path = io.save_volume(tmp_path / "scan.nii.gz", ras[..., None], affine)
    kwargs = dict(output_labels=OUTPUT_LABELS, divisor=4)
    labels = segment(side_model(3), path, **kwargs)
    assert labels.shape == ras.shape
    expected = segment(side_model(3), ras, voxel_size=(1.5, 2.0, 1.0), **kwargs)
    np.testing.assert_array_equal(labels, expected)


def test_public_names_stay_importable():
    # inference.py became a package: every public name it had is re-exported,
    # export_network from synthlayers.models (where it lives now).
    from synthlayers import inference
    from synthlayers import models

    for name in (
        "INTERPOLATIONS",
        "export_network",
        "keep_largest_components",
        "left_right_channel_pairs",
        "normalize_intensities",
        "predict_probabilities",
        "segment",
        "smooth_probabilities",
    ):
        assert callable(getattr(inference, name)) or name == "INTERPOLATIONS"
    assert inference.export_network is models.export_network
    assert inference.INTERPOLATIONS == ("linear", "nearest")
