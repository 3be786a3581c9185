"""LabelMapFeed: random batches of label maps, or of their 2D slices."""

import re

import keras
import numpy as np
import pytest
from keras import ops

from synthlayers.datasets import LabelMapFeed


def _maps(shape=(6, 7, 8), count=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 5, shape).astype("uint8") + 10 * i for i in range(count)]


@pytest.mark.parametrize("shape", [(9, 10), (6, 7, 8)])
def test_batches_of_whole_maps(shape):
    maps = _maps(shape)
    feed = LabelMapFeed(maps, batch_size=4, steps_per_epoch=3, seed=0)
    assert len(feed) == 3 and feed.spatial_shape == shape
    for batch in feed:
        assert batch.shape == (4, *shape, 1) and batch.dtype == np.int32
        # Every sample is one of the maps, unchanged.
        for sample in batch[..., 0]:
            assert any(np.array_equal(sample, m) for m in maps)
    assert LabelMapFeed(maps, 2, dtype="uint8", seed=0)[0].dtype == np.uint8
    # A NumPy dtype is taken as its name.
    assert LabelMapFeed(maps, 2, dtype=np.dtype("int16"), seed=0).dtype == "int16"
    # One array holding the maps along its first axis works too.
    stacked = LabelMapFeed(np.stack(maps), 2, seed=0)
    np.testing.assert_array_equal(stacked[1], LabelMapFeed(maps, 2, seed=0)[1])
    with pytest.raises(IndexError):
        feed[3]


def test_seeded_and_varied():
    maps = _maps(count=8)
    first = LabelMapFeed(maps, batch_size=6, steps_per_epoch=4, seed=3)
    second = LabelMapFeed(maps, batch_size=6, steps_per_epoch=4, seed=3)
    # Same seed: the same batches, whatever the order they are asked for in.
    backwards = [second[i] for i in reversed(range(4))][::-1]
    for a, b in zip(first, backwards):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])
    assert not np.array_equal(first[0], LabelMapFeed(maps, 6, seed=4)[0])
    # A new epoch draws new batches.
    before = first[0]
    first.on_epoch_end()
    assert not np.array_equal(before, first[0])
    # Without a seed, two feeds differ.
    assert not np.array_equal(LabelMapFeed(maps, 6)[0], LabelMapFeed(maps, 6)[0])


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_slices_come_from_the_axis(axis):
    shape = (5, 6, 7)
    # Each map is constant on its slices along `axis`: value = 100 * map
    # number + slice position + 1, so a sample tells where it came from.
    maps = []
    for number in range(2):
        values = 100 * number + np.arange(shape[axis]) + 1
        maps.append(
            np.broadcast_to(
                np.expand_dims(values, [a for a in range(3) if a != axis]), shape
            ).astype("int16")
        )
    feed = LabelMapFeed(maps, batch_size=16, slice_axis=axis, seed=0)
    expected_shape = tuple(s for a, s in enumerate(shape) if a != axis)
    assert feed.spatial_shape == expected_shape
    seen = set()
    for index in range(3):
        batch = feed[index]
        assert batch.shape == (16, *expected_shape, 1)
        for sample in batch[..., 0]:
            value = int(sample.flat[0])
            assert np.all(sample == value)
            number, position = divmod(value - 1, 100)
            np.testing.assert_array_equal(
                sample, np.take(maps[number], position, axis=axis)
            )
            seen.add(value)
    # Draws cover both maps and many slices.
    assert {v // 100 for v in seen} == {0, 1} and len(seen) > shape[axis]


def test_slices_from_several_axes():
    # Value = 100 * axis + position + 1 on the slices along `axis`, in the
    # map of that axis; a cube's slices along axes 1 and 2 share one shape.
    shape = (6, 6, 6)
    axes = (1, 2)
    positions = np.arange(6)[:, None, None]
    maps = [
        np.moveaxis(np.broadcast_to(100 * a + positions + 1, shape), 0, a).astype(
            "int16"
        )
        for a in axes
    ]
    feed = LabelMapFeed(maps, batch_size=64, slice_axis=axes, seed=0)
    assert feed.spatial_shape == (6, 6)
    samples = feed[0][..., 0]
    # Each map gives slices along both axes: constant slices come from the
    # map's own axis, the others cut across its positions.
    constant = [s for s in samples if np.all(s == s.flat[0])]
    across = [s for s in samples if not np.all(s == s.flat[0])]
    assert 10 < len(constant) < 54 and 10 < len(across) < 54
    for s in samples:
        values = np.unique(s)
        assert len(values) in (1, 6) and len({v // 100 for v in values}) == 1
    # Every axis needs eligible slices, and one slice shape for all.
    with pytest.raises(ValueError, match="axis 2"):
        tall = np.zeros((6, 6, 6), "uint8")
        tall[:, :3] = 1  # full coronal slices 0-2; half of every axial slice
        LabelMapFeed([tall], 2, slice_axis=(1, 2), min_foreground=0.6)
    with pytest.raises(ValueError, match=r"slice_axis=\(0, 1\)"):
        LabelMapFeed([np.zeros((4, 5, 6), "uint8")], 2, slice_axis=(0, 1))


def test_slices_skip_empty_ones():
    label_map = np.zeros((4, 5, 10), "uint8")
    label_map[:, :, 3] = 1  # full slice
    label_map[:2, :, 6] = 2  # 40% foreground
    label_map[0, 0, 8] = 3  # one voxel: 5%
    feed = LabelMapFeed([label_map], 32, slice_axis=2, min_foreground=0.1, seed=0)
    values = {int(np.max(s)) for s in feed[0][..., 0]}
    assert values == {1, 2}
    everything = LabelMapFeed([label_map], 64, slice_axis=2, seed=0)
    assert 0 in {int(np.max(s)) for s in everything[0][..., 0]}
    # A map without any eligible slice is left out; none at all is an error.
    empty = np.zeros_like(label_map)
    feed = LabelMapFeed([empty, label_map], 32, slice_axis=2, min_foreground=0.6)
    assert all(np.max(s) == 1 for s in feed[0][..., 0])
    with pytest.raises(ValueError, match="min_foreground"):
        LabelMapFeed([empty], 2, slice_axis=2, min_foreground=0.5)


class LabelStatistics(keras.Model):
    """A tiny model trained on label maps alone: its loss ignores `y`."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)

    def call(self, label_maps):
        x = ops.cast(label_maps, "float32")
        return self.dense(ops.mean(x, axis=tuple(range(1, len(x.shape) - 1))))

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        return ops.mean(ops.square(y_pred - 1.0))


def test_model_fit_on_the_feed():
    feed = LabelMapFeed(_maps(), batch_size=2, steps_per_epoch=3, slice_axis=0, seed=0)
    model = LabelStatistics()
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    history = model.fit(feed, epochs=2, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 2 and np.all(np.isfinite(losses))
    # The epochs counted by `on_epoch_end` moved the draws on.
    fresh = LabelMapFeed(_maps(), batch_size=2, steps_per_epoch=3, slice_axis=0, seed=0)
    assert not all(np.array_equal(feed[i], fresh[i]) for i in range(3))


def test_the_stream_gives_the_epochs_batches_in_order():
    feed = LabelMapFeed(_maps(), batch_size=2, steps_per_epoch=3, slice_axis=0, seed=4)
    stream = feed.stream()
    assert stream.num_batches is None
    by_epochs = []
    for _ in range(3):
        by_epochs.extend(feed[i] for i in range(3))
        feed.on_epoch_end()
    for number, batch in enumerate(by_epochs):
        np.testing.assert_array_equal(stream[number], batch)
        np.testing.assert_array_equal(feed.draw(number), batch)
    # A resumed run's stream continues where the first one stopped, and
    # the epochs counted on the feed do not move it.
    np.testing.assert_array_equal(feed.stream(start=4)[3], by_epochs[7])
    assert len({by_epochs[i].tobytes() for i in range(9)}) == 9


def test_model_fit_on_the_stream_reads_the_feed_once_in_order():
    feed = LabelMapFeed(_maps(), batch_size=2, steps_per_epoch=3, slice_axis=0, seed=0)
    asked = []
    draw = feed.draw
    feed.draw = lambda number: asked.append(number) or draw(number)
    model = LabelStatistics()
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    history = model.fit(
        feed.stream(), steps_per_epoch=3, epochs=2, shuffle=False, verbose=0
    )
    assert len(history.history["loss"]) == 2
    # One iterator for both epochs: batches 0, 1, 2, ... (prefetching may
    # draw a few more), never batch 0 again after the start. (TensorFlow
    # first reads batches 0 and 1 for the dataset's signature.)
    start = max(i for i, number in enumerate(asked) if number == 0)
    read = asked[start:]
    assert read[:6] == list(range(6)) and read == sorted(set(read))


def test_stream_start_is_checked():
    feed = LabelMapFeed(_maps(), batch_size=2, steps_per_epoch=3, slice_axis=0, seed=0)
    with pytest.raises(ValueError, match="start"):
        feed.stream(start=-1)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"label_maps": []}, "label_maps"),
        ({"label_maps": [np.zeros((4, 4), "float32")]}, "label_maps[0]"),
        ({"label_maps": [np.zeros((4, 4), "int32"), np.zeros((4, 5), "int32")]}, ""),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 2.0}, "batch_size"),
        ({"steps_per_epoch": -1}, "steps_per_epoch"),
        ({"slice_axis": 3}, "slice_axis"),
        ({"slice_axis": True}, "slice_axis"),
        ({"slice_axis": (1, 1)}, "slice_axis"),
        ({"slice_axis": ()}, "slice_axis"),
        ({"min_foreground": 1.0}, "min_foreground"),
        ({"dtype": "float32"}, "dtype"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments(kwargs, name):
    arguments = {"label_maps": _maps(), "batch_size": 2, **kwargs}
    match = re.escape(f"Received: {name}") if name else "shape"
    with pytest.raises(ValueError, match=match):
        LabelMapFeed(**arguments)


def test_slice_axis_needs_3d_maps_of_one_slice_shape():
    with pytest.raises(ValueError, match="3D"):
        LabelMapFeed([np.zeros((4, 4), "int32")], 2, slice_axis=0)
    maps = [np.ones((3, 4, 5), "int32"), np.ones((6, 4, 5), "int32")]
    assert LabelMapFeed(maps, 2, slice_axis=0)[0].shape == (2, 4, 5, 1)
    with pytest.raises(ValueError, match="slice_axis=1"):
        LabelMapFeed(maps, 2, slice_axis=1)
