"""Tests for synthlayers.resampling: the one nearest-neighbour convention.

The references below are copies of the NumPy code this module replaced
(`synthlayers.datasets.resample_label_map` and `synthlayers.inference._Grid`
as of commit 780434a), so the new SciPy-based functions are pinned to what
datasets and inference computed before.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import ndimage

from synthlayers.resampling import resample_image
from synthlayers.resampling import resample_labels
from synthlayers.resampling import resampled_shape

# --- References: the replaced NumPy code, verbatim in substance --------------


def reference_label_map(labels_map, sizes, targets):
    """`datasets.resample_label_map` before this module."""
    labels_map = np.asarray(labels_map)
    if np.allclose(sizes, targets, rtol=1e-6, atol=0):
        return labels_map
    indices = []
    for n, size, target in zip(labels_map.shape, sizes, targets):
        ratio = target / size
        count = max(1, int(np.floor(n / ratio + 0.5)))
        centres = n / 2 + (np.arange(count) - (count - 1) / 2) * ratio
        index = np.floor(np.round(centres, 6)).astype("int64")
        indices.append(np.clip(index, 0, n - 1))
    return labels_map[np.ix_(*indices)]


def _grid_positions(n_in, n_out, step):
    return (np.arange(n_out) - (n_out - 1) / 2) * step + (n_in - 1) / 2


def _blur_axis(x, axis, sigma):
    if sigma < 0.25:
        return x
    radius = int(np.ceil(3 * sigma))
    offsets = np.arange(-radius, radius + 1)
    weights = np.exp(-0.5 * (offsets / sigma) ** 2)
    weights = (weights / weights.sum()).astype(x.dtype)
    n = x.shape[axis]
    out = np.zeros_like(x)
    for offset, weight in zip(offsets, weights):
        index = np.clip(np.arange(n) + offset, 0, n - 1)
        out += weight * np.take(x, index, axis=axis)
    return out


def _resample_axis(x, axis, positions, step):
    if step > 1 + 1e-6:
        x = _blur_axis(x, axis, (step - 1) / 2)
    n = x.shape[axis]
    positions = np.clip(positions, 0, n - 1)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, n - 1)
    shape = [1] * x.ndim
    shape[axis] = len(positions)
    weight = (positions - low).astype(x.dtype).reshape(shape)
    out = np.take(x, low, axis=axis)
    out += weight * (np.take(x, high, axis=axis) - out)
    return out


class ReferenceGrid:
    """`inference._Grid` before this module."""

    def __init__(self, shape, voxel_sizes, target):
        self.input_shape = tuple(shape)
        self.voxel_sizes = tuple(voxel_sizes)
        self.target = tuple(target)
        self.shape = tuple(
            max(1, int(round(n * v / t)))
            for n, v, t in zip(self.input_shape, self.voxel_sizes, self.target)
        )
        self.axes = [
            a
            for a in range(len(self.shape))
            if self.shape[a] != self.input_shape[a]
            or abs(self.target[a] - self.voxel_sizes[a]) > 1e-3 * self.target[a]
        ]

    def to_network(self, x):
        for a in self.axes:
            step = self.target[a] / self.voxel_sizes[a]
            positions = _grid_positions(self.input_shape[a], self.shape[a], step)
            x = _resample_axis(x, a, positions, step)
        return x

    def to_input(self, x):
        for a in self.axes:
            step = self.voxel_sizes[a] / self.target[a]
            positions = _grid_positions(self.shape[a], self.input_shape[a], step)
            x = _resample_axis(x, a, positions, step)
        return x

    def nearest_to_input(self, labels):
        index = []
        for a in range(len(self.shape)):
            if a in self.axes:
                step = self.voxel_sizes[a] / self.target[a]
                positions = _grid_positions(self.shape[a], self.input_shape[a], step)
                index.append(
                    np.clip(np.floor(positions + 0.5).astype(int), 0, self.shape[a] - 1)
                )
            else:
                index.append(np.arange(self.shape[a]))
        return labels[np.ix_(*index)]


# --- resampled_shape ------------------------------------------------------------


def test_resampled_shape_rounds_halves_up():
    assert resampled_shape((8, 5, 3), 1.0, (2.0, 2.0, 0.5)) == (4, 3, 6)
    assert resampled_shape((5,), 1.0, 2.0) == (3,)  # 2.5 -> 3
    assert resampled_shape((7,), 1.0, 2.0) == (4,)  # 3.5 -> 4
    assert resampled_shape((3,), 1.0, 4.0) == (1,)  # 0.75 -> 1
    assert resampled_shape((1,), 1.0, 10.0) == (1,)  # at least 1
    assert resampled_shape((9, 12), (1.0, 2.0), (3.0, 1.5)) == (3, 16)


def test_resampled_shape_matches_the_grid():
    # The replaced inference grid rounded with Python's `round` (halves to
    # even: 4.5 -> 4), the replaced label-map code halves up (4.5 -> 5); the
    # one convention now is halves up. Away from exact halves they agree.
    assert ReferenceGrid((9,), (0.5,), (1.0,)).shape == (4,)
    assert (
        resampled_shape((9,), 0.5, 1.0)
        == (5,)
        == reference_label_map(np.arange(9), (0.5,), (1.0,)).shape
    )
    rng = np.random.default_rng(1)
    for _ in range(200):
        shape = tuple(int(n) for n in rng.integers(1, 300, 3))
        sizes = tuple(rng.uniform(0.3, 3.0, 3))
        targets = tuple(rng.choice([0.5, 0.7, 1.0, 1.5, 2.0, 3.0], 3))
        assert (
            resampled_shape(shape, sizes, targets)
            == ReferenceGrid(shape, sizes, targets).shape
        )


@pytest.mark.parametrize(
    "args, name",
    [
        (((4, 0), 1.0, 1.0), "shape"),
        (((4, 2.0), 1.0, 1.0), "shape"),
        (((4, 4), (1.0,), 1.0), "voxel_sizes"),
        (((4, 4), (1.0, -1.0), 1.0), "voxel_sizes"),
        (((4, 4), 1.0, "2"), "target_voxel_sizes"),
        (((4, 4), 1.0, (1.0, np.inf)), "target_voxel_sizes"),
        (((4, 4), 1.0, (1.0, True)), "target_voxel_sizes"),
    ],
)
def test_resampled_shape_bad_arguments(args, name):
    with pytest.raises(ValueError, match=f"Received: {name}="):
        resampled_shape(*args)


# --- resample_labels -------------------------------------------------------------


def test_halving_keeps_odd_voxels():
    np.testing.assert_array_equal(resample_labels(np.arange(8), 1.0, 2.0), [1, 3, 5, 7])
    labels = np.random.default_rng(0).integers(0, 50, (8, 6, 4)).astype("int16")
    out = resample_labels(labels, 1.0, 2.0)
    assert out.dtype == np.int16
    np.testing.assert_array_equal(out, labels[1::2, 1::2, 1::2])
    np.testing.assert_array_equal(
        resample_labels(labels, (0.5, 1.0, 1.0), 1.0), labels[1::2]
    )


def test_doubling_repeats_each_voxel_twice():
    labels = np.random.default_rng(0).integers(0, 50, (3, 4, 5)).astype("uint8")
    out = resample_labels(labels, (2.0, 2.0, 1.0), 1.0)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.repeat(np.repeat(labels, 2, 0), 2, 1))


def test_odd_ratios():
    # 1 mm -> 3 mm: the centre voxel of each triple.
    np.testing.assert_array_equal(resample_labels(np.arange(9), 1.0, 3.0), [1, 4, 7])
    # 3 mm -> 1 mm: each voxel three times.
    np.testing.assert_array_equal(
        resample_labels(np.arange(3), 3.0, 1.0), np.repeat(np.arange(3), 3)
    )
    # 5 voxels of 1 mm -> 3 voxels of 2 mm centred on the same point: centres
    # at 0.5, 2.5, 4.5 fall in input voxels 0, 2, 4.
    np.testing.assert_array_equal(resample_labels(np.arange(5), 1.0, 2.0), [0, 2, 4])
    # 2 mm -> 3 mm, 6 voxels -> 4: centres at 0.5, 2, 3.5, 5 (ties go up).
    np.testing.assert_array_equal(resample_labels(np.arange(6), 2.0, 3.0), [0, 2, 3, 5])


def test_exact_ties_go_up_despite_float_noise():
    # Ratios that are not exact binary fractions put centres a rounding error
    # either side of a boundary; both must go up. 0.1 mm -> 0.3 mm over 10
    # voxels: 10 * 0.1 / 0.3 = 3.33 -> 3 voxels, centres 5 + (j - 1) * 3.
    np.testing.assert_array_equal(resample_labels(np.arange(10), 0.1, 0.3), [2, 5, 8])
    # 0.3 -> 0.2 (ratio 2/3): 4 voxels -> 6, centres at 2 + (j - 2.5) * 2/3,
    # i.e. 1/3, 1, 5/3, 7/3, 3, 11/3: exact ties at 1 and 3 go up.
    np.testing.assert_array_equal(
        resample_labels(np.arange(4), 0.3, 0.2), [0, 1, 1, 2, 3, 3]
    )
    # Voxel sizes `size` and `k * size`: the float ratio is k plus or minus
    # noise; the exact answer, in rational arithmetic, puts ties up.
    for size in (0.1, 0.2, 0.3, 0.35, 0.6, 0.7, 1.1, 1.3):
        for k in (3, 5):
            for n in (7, 10, 11, 13, 14, 30):
                out = resample_labels(np.arange(n), size, k * size)
                np.testing.assert_array_equal(out, _exact_indices(n, len(out), k))
                back = resample_labels(np.arange(n), k * size, size)
                expected = _exact_indices(n, n * k, Fraction(1, k))
                np.testing.assert_array_equal(back, expected)
                np.testing.assert_array_equal(back, np.repeat(np.arange(n), k))


def _exact_indices(n, count, ratio):
    """The input voxel holding each output centre, in exact arithmetic."""
    centres = [
        Fraction(n, 2) + (j - Fraction(count - 1, 2)) * ratio for j in range(count)
    ]
    return [min(max(math.floor(c), 0), n - 1) for c in centres]


@pytest.mark.parametrize(
    "shape, sizes, target",
    [
        ((11,), (1.0,), (1.7,)),
        ((9, 12), (1.0, 2.0), (3.0, 1.5)),
        ((7, 10), (0.8, 1.2), (1.0, 1.0)),
        ((12, 8, 6), (1.0, 1.0, 1.0), (1.5, 2.0, 0.5)),
        ((8, 6, 4), (1.0, 1.0, 1.0), (2 / 3, 0.75, 4.0)),
        ((13, 9, 7), (0.7, 1.3, 2.5), (1.0, 1.0, 1.0)),
        ((10, 10, 10), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0)),
    ],
)
def test_labels_match_the_replaced_code(shape, sizes, target):
    labels = np.random.default_rng(0).integers(0, 100, shape).astype("int32")
    out = resample_labels(labels, sizes, target)
    expected = reference_label_map(labels, sizes, target)
    assert out.dtype == labels.dtype
    np.testing.assert_array_equal(out, expected)
    assert set(np.unique(out)) <= set(np.unique(labels))
    # The inference grid: labels on the network grid back onto the input.
    grid = ReferenceGrid(shape, sizes, target)
    network = np.random.default_rng(1).integers(0, 100, grid.shape).astype("int32")
    np.testing.assert_array_equal(
        resample_labels(network, target, sizes, output_shape=shape),
        grid.nearest_to_input(network),
    )


def test_labels_match_the_replaced_code_at_random():
    rng = np.random.default_rng(2)
    for _ in range(300):
        ndim = int(rng.integers(1, 4))
        shape = tuple(int(n) for n in rng.integers(1, 40, ndim))
        sizes = tuple(rng.choice([0.5, 0.7, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0], ndim))
        target = tuple(rng.choice([0.5, 1.0, 1.5, 2.0, 3.0], ndim))
        labels = rng.integers(0, 1000, shape)
        np.testing.assert_array_equal(
            resample_labels(labels, sizes, target),
            reference_label_map(labels, sizes, target),
        )
        grid = ReferenceGrid(shape, sizes, target)
        network = rng.integers(0, 1000, grid.shape)
        np.testing.assert_array_equal(
            resample_labels(network, target, sizes, output_shape=shape),
            grid.nearest_to_input(network),
        )


@pytest.mark.parametrize(
    "shape, sizes, target",
    [
        ((12, 8, 6), (1.0, 1.0, 1.0), (1.5, 2.0, 0.5)),
        ((9, 12), (1.0, 2.0), (3.0, 1.5)),
        ((8, 6, 4), (1.0, 1.0, 1.0), (2 / 3, 0.75, 4.0)),
        ((16,), (1.0,), (0.25,)),
    ],
)
def test_labels_match_scipy_zoom_where_grids_share_edges(shape, sizes, target):
    # Where the output spans the input's field of view exactly, scipy's
    # grid_mode zoom uses the same convention (ties up).
    labels = np.random.default_rng(0).integers(0, 100, shape).astype("int32")
    out = resample_labels(labels, sizes, target)
    expected_shape = tuple(round(n * s / t) for n, s, t in zip(shape, sizes, target))
    assert out.shape == expected_shape
    expected = ndimage.zoom(
        labels,
        [o / n for o, n in zip(expected_shape, shape)],
        order=0,
        grid_mode=True,
        mode="nearest",
    )
    np.testing.assert_array_equal(out, expected)


def test_labels_identity_and_output_shape():
    labels = np.arange(5)
    assert resample_labels(labels, 1.0, 1.0) is labels
    assert resample_labels(labels, 1.0, 1.0 + 1e-9) is labels
    # A given output shape at the same voxel size pads by repeating edges
    # or crops, centred.
    np.testing.assert_array_equal(
        resample_labels(labels, 1.0, 1.0, output_shape=(7,)), [0, 0, 1, 2, 3, 4, 4]
    )
    np.testing.assert_array_equal(
        resample_labels(labels, 1.0, 1.0, output_shape=(3,)), [1, 2, 3]
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"voxel_sizes": (1.0,)}, "voxel_sizes"),
        ({"voxel_sizes": (1.0, 0.0)}, "voxel_sizes"),
        ({"target_voxel_sizes": -2.0}, "target_voxel_sizes"),
        ({"target_voxel_sizes": (1.0, 2.0, 3.0)}, "target_voxel_sizes"),
        ({"output_shape": (2,)}, "output_shape"),
        ({"output_shape": (2, 0)}, "output_shape"),
    ],
)
def test_labels_bad_arguments(kwargs, name):
    arguments = {"voxel_sizes": 1.0, "target_voxel_sizes": 2.0, **kwargs}
    with pytest.raises(ValueError, match=f"Received: {name}="):
        resample_labels(np.zeros((2, 2), "int32"), **arguments)
    with pytest.raises(ValueError, match="at least one axis"):
        resample_labels(np.int32(3), (), ())


# --- resample_image ---------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, sizes, target",
    [
        ((11,), (1.0,), (1.7,)),
        ((9, 12), (1.0, 2.0), (3.0, 1.5)),
        ((20, 16, 12), (1.0, 1.0, 1.0), (2.0, 3.0, 0.5)),
        ((13, 9, 7), (0.7, 1.3, 2.5), (1.0, 1.0, 1.0)),
        ((17, 15, 9), (0.8, 1.0, 1.0), (1.0, 1.0005, 1.0)),  # 2nd axis kept
        ((12, 12, 12), (1.0, 1.0, 1.0), (1.0, 1.0, 1.0)),
        ((30, 8), (0.3, 1.0), (2.1, 1.0)),  # sigma 3, radius 9
    ],
)
def test_image_matches_the_replaced_code(shape, sizes, target):
    image = np.random.default_rng(0).normal(size=shape).astype("float32")
    grid = ReferenceGrid(shape, sizes, target)
    out = resample_image(image, sizes, target)
    assert out.dtype == np.float32 and out.shape == grid.shape
    np.testing.assert_allclose(out, grid.to_network(image), rtol=1e-5, atol=1e-5)
    # And back onto the input grid, with a channel axis last.
    network = np.random.default_rng(1).random((*grid.shape, 3)).astype("float32")
    back = resample_image(network, target, sizes, output_shape=shape)
    assert back.shape == (*shape, 3)
    expected = np.stack([grid.to_input(network[..., c]) for c in range(3)], -1)
    np.testing.assert_allclose(back, expected, rtol=1e-5, atol=1e-5)


def test_image_linear_values():
    # 1 mm -> 0.5 mm: centres at -0.25, 0.25, 0.75, ... (voxel-centre
    # coordinates), clamped at the edges.
    np.testing.assert_allclose(
        resample_image(np.arange(4.0), 1.0, 0.5),
        [0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0],
    )
    # A linear ramp stays linear inside (the blur is symmetric).
    ramp = np.arange(40.0)
    out = resample_image(ramp, 1.0, 4.0)
    np.testing.assert_allclose(out[2:-2], 4 * np.arange(2, 8) + 1.5, atol=1e-9)
    # Integers become float32; float64 stays float64.
    assert resample_image(np.arange(4), 1.0, 0.5).dtype == np.float32
    assert resample_image(np.arange(4.0), 1.0, 0.5).dtype == np.float64


def test_image_blur_is_gaussian_of_the_step():
    # A spike downsampled by 3 (sigma 1 voxel, radius 3): the value at the
    # output centre on the spike is the Gaussian's normalised central weight.
    image = np.zeros(33)
    image[16] = 1.0
    out = resample_image(image, 1.0, 3.0)
    weights = np.exp(-0.5 * np.arange(-3, 4) ** 2)
    assert out.shape == (11,)
    np.testing.assert_allclose(out[5], weights[3] / weights.sum(), rtol=1e-12)
    # The neighbouring outputs, 3 voxels away, sit on the kernel's last tap.
    np.testing.assert_allclose(out[[4, 6]], weights[0] / weights.sum(), rtol=1e-12)
    assert np.count_nonzero(out) == 3
    # Below sigma 0.25 (step < 1.5) nothing is blurred: pure interpolation.
    step = 1.4
    image = np.random.default_rng(0).random(14)
    out = resample_image(image, 1.0, step)
    centres = (np.arange(10) - 4.5) * step + 6.5
    np.testing.assert_allclose(out, np.interp(centres, np.arange(14), image))
    assert math.isclose(out.mean(), np.interp(centres, np.arange(14), image).mean())


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"voxel_sizes": (1.0, 1.0, 1.0, 1.0)}, "voxel_sizes"),
        ({"voxel_sizes": "1"}, "voxel_sizes"),
        ({"target_voxel_sizes": 0.0}, "target_voxel_sizes"),
        ({"output_shape": (2, 2)}, "output_shape"),
    ],
)
def test_image_bad_arguments(kwargs, name):
    arguments = {"voxel_sizes": 1.0, "target_voxel_sizes": 2.0, **kwargs}
    with pytest.raises(ValueError, match=f"Received: {name}="):
        resample_image(np.zeros((2, 2, 2)), **arguments)
