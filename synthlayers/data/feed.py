"""Random batches of label maps for `model.fit`, by epochs or as one stream.

- `Feed`: numbered random batches (`draw(number)`), read by epochs
  (`feed[i]`) or as one endless stream (`feed.stream()`);
- `LabelMapFeed`: a `Feed` of label maps, or of their 2D slices.
"""

import keras
import numpy as np

from synthlayers.data.prepare import _check_integer_map
from synthlayers.validation import check_axes
from synthlayers.validation import check_choice
from synthlayers.validation import check_int
from synthlayers.validation import check_probability

INTEGER_DTYPES = ("uint8", "int8", "uint16", "int16", "int32", "int64")
"""The dtypes a `LabelMapFeed` can give its batches."""


class Feed(keras.utils.PyDataset):
    """Numbered random batches for `fit`, read by epochs or as one stream.

    Batch `number` of a feed is a function of the feed's seed and `number`
    only (`draw(number)`, written by each subclass). `fit(feed, epochs=E)`
    reads it by epochs: `feed[i]` in epoch `e` (epochs are counted by
    `on_epoch_end`) is `draw(e * steps_per_epoch + i)`.
    `fit(feed.stream(), steps_per_epoch=feed.steps_per_epoch, epochs=E,
    shuffle=False)`
    reads the same batches in the same order through one data iterator for
    the whole training. Prefer the stream for long runs: under TensorFlow,
    `fit` makes a new `tf.data` iterator for every epoch of a finite
    `PyDataset`, which stalled 2-8 s at many epoch starts in the 2D
    segmentation example (epochs of 50 steps of 0.25-0.3 s; see
    `benchmarks/RESULTS.md`, "Training input").

    Args:
        steps_per_epoch: batches per epoch, the feed's length.
        **kwargs: `keras.utils.PyDataset` arguments (`workers`,
            `use_multiprocessing`, `max_queue_size`).
    """

    def __init__(self, steps_per_epoch, **kwargs):
        super().__init__(**kwargs)
        self.steps_per_epoch = check_int(
            steps_per_epoch, "steps_per_epoch", min_value=1
        )
        self._epoch = 0

    def draw(self, number):
        """Batch `number` (>= 0) of the feed's sequence."""
        raise NotImplementedError

    def __len__(self):
        return self.steps_per_epoch

    def __getitem__(self, index):
        if not 0 <= index < self.steps_per_epoch:
            raise IndexError(
                f"Batch index {index} out of range for a feed of length "
                f"{self.steps_per_epoch}."
            )
        return self.draw(self._epoch * self.steps_per_epoch + int(index))

    def on_epoch_end(self):
        """Count the epoch: the next one draws new batches."""
        self._epoch += 1

    def stream(self, start=0):
        """The feed's batches from number `start` on, as an endless `PyDataset`.

        For `fit(feed.stream(), steps_per_epoch=..., shuffle=False)` (an
        endless dataset needs `steps_per_epoch`, and Keras warns that it
        cannot shuffle one); a resumed run passes the number of batches
        it has trained on as `start`. Item `i` of the stream is
        `feed.draw(start + i)`, whatever the epochs; the stream has the
        feed's `workers`, `use_multiprocessing` and `max_queue_size`.

        Args:
            start: the number of the stream's first batch. Defaults to 0.

        Returns:
            A `keras.utils.PyDataset` whose `num_batches` is None.
        """
        return _Stream(self, check_int(start, "start", min_value=0))


class _Stream(keras.utils.PyDataset):
    """`Feed.stream`: a feed's batches from a start on, endless."""

    def __init__(self, feed, start):
        super().__init__(
            workers=feed.workers,
            use_multiprocessing=feed.use_multiprocessing,
            max_queue_size=feed.max_queue_size,
        )
        self.feed = feed
        self.start = start

    @property
    def num_batches(self):
        return None

    def __getitem__(self, index):
        return self.feed.draw(self.start + int(index))


class LabelMapFeed(Feed):
    """Random batches of label maps, or of their 2D slices, for `model.fit`.

    Only label maps come out: every batch is drawn at random (with
    replacement) from `label_maps` held in memory, and the synthesis of
    images and targets happens in the model graph (e.g. a `LabelsToImage`
    layer at the model's input). Batches are `x` only, no `y`: the model
    computes its loss from the targets it synthesises.

    With `slice_axis`, 3D maps give random 2D slices along that axis, for 2D
    training; `min_foreground` skips slices with almost no foreground.
    Draws are uniform over maps, then over the map's eligible slices. With a
    tuple of axes (e.g. `(1, 2)`: coronal and axial slices of RAS maps, for a
    network that segments either view), each sample first draws its axis,
    uniformly.

    Randomness depends on `(seed, batch number)` only (see `Feed`), so a
    seeded feed repeats exactly whatever the order in which batches are
    asked for (e.g. with `workers > 1`), each epoch (counted by
    `on_epoch_end`) draws new batches, and `feed.stream()` gives the same
    batches as the epochs, in the same order.

    Keep maps compact in memory: crop them (`crop_to_bounding_box`) and store
    label indices (`compact_labels`, uint8) rather than int32 FreeSurfer
    values; the arrays are kept as given, not copied. Batches are cast to
    `dtype`.

    Args:
        label_maps: a list of integer arrays, all of one shape (or, with
            `slice_axis`, 3D arrays whose slices share one shape), spatial
            axes only (no channel axis); or one array with the maps along
            its first axis.
        batch_size: maps (or slices) per batch.
        steps_per_epoch: batches per epoch, the feed's length. Defaults to
            `100`.
        slice_axis: `None` for whole maps, the axis (0, 1 or 2) of the 3D
            maps along which 2D slices are drawn, or a tuple of such axes
            (the slices of all must share one shape). Defaults to `None`.
        min_foreground: with `slice_axis`, the smallest fraction of
            non-zero voxels a slice needs to be drawn, in [0, 1). Defaults to
            `0.0` (every slice).
        dtype: integer dtype of the batches. Defaults to `"int32"`.
        seed: integer seed; `None` draws one. Defaults to `None`.
        **kwargs: `keras.utils.PyDataset` arguments (`workers`,
            `use_multiprocessing`, `max_queue_size`).

    Attributes:
        spatial_shape: the spatial shape of one sample, e.g. for
            `keras.Input((*feed.spatial_shape, 1), dtype=feed.dtype)`.

    Output shape:
        `feed[i]`: an array `(batch_size, *spatial_shape, 1)` of `dtype`.

    Example:

    >>> import numpy as np
    >>> maps = [np.random.randint(0, 4, (20, 24, 16)).astype("uint8")] * 2
    >>> feed = LabelMapFeed(maps, batch_size=3, steps_per_epoch=5, seed=0)
    >>> len(feed), feed[0].shape, feed[0].dtype
    (5, (3, 20, 24, 16, 1), dtype('int32'))
    >>> slices = LabelMapFeed(maps, batch_size=3, slice_axis=1, seed=0)
    >>> slices[0].shape
    (3, 20, 16, 1)
    >>> cubes = [np.random.randint(0, 4, (16, 16, 16)).astype("uint8")]
    >>> LabelMapFeed(cubes, batch_size=2, slice_axis=(1, 2), seed=0)[0].shape
    (2, 16, 16, 1)
    """

    def __init__(
        self,
        label_maps,
        batch_size,
        steps_per_epoch=100,
        slice_axis=None,
        min_foreground=0.0,
        dtype="int32",
        seed=None,
        **kwargs,
    ):
        super().__init__(steps_per_epoch, **kwargs)
        if isinstance(label_maps, np.ndarray):
            label_maps = list(label_maps)
        if not isinstance(label_maps, (list, tuple)) or not label_maps:
            raise ValueError(
                "`label_maps` must be a non-empty list of integer arrays. "
                f"Received: label_maps of type {type(label_maps).__name__}"
            )
        maps = [
            _check_integer_map(m, f"label_maps[{i}]") for i, m in enumerate(label_maps)
        ]
        self.batch_size = check_int(batch_size, "batch_size", min_value=1)
        self.dtype = str(np.dtype(check_choice(dtype, "dtype", INTEGER_DTYPES)))
        self.min_foreground = check_probability(min_foreground, "min_foreground")
        if self.min_foreground == 1:
            raise ValueError(
                "`min_foreground` must be < 1 (a slice can hold at most 100% "
                f"foreground). Received: min_foreground={min_foreground!r}"
            )
        self.seed = None if seed is None else check_int(seed, "seed", min_value=0)
        self._entropy = (
            int(np.random.SeedSequence().entropy) if seed is None else int(seed)
        )
        shapes = {m.shape for m in maps}
        if slice_axis is None:
            if len(shapes) != 1:
                raise ValueError(
                    "`label_maps` must all have one shape (crop or pad them, or "
                    f"draw slices with `slice_axis`). Received shapes: {sorted(shapes)}"
                )
            self.spatial_shape = maps[0].shape
            self._maps = maps
            self._slices = None
        else:
            axes = check_axes(slice_axis, "slice_axis", 3)
            if any(m.ndim != 3 for m in maps):
                raise ValueError(
                    "`slice_axis` needs 3D label maps. Received shapes: "
                    f"{sorted(shapes)}"
                )
            slice_shapes = {
                tuple(s for a, s in enumerate(shape) if a != axis)
                for shape in shapes
                for axis in axes
            }
            if len(slice_shapes) != 1:
                raise ValueError(
                    f"The slices along `slice_axis={slice_axis}` must all have one "
                    f"shape. Received map shapes: {sorted(shapes)}"
                )
            self.spatial_shape = slice_shapes.pop()
            # Per axis: the maps with eligible slices, and those slices.
            self._maps, self._slices = [], []
            for axis in axes:
                others = tuple(a for a in range(3) if a != axis)
                axis_maps, axis_slices = [], []
                for m in maps:
                    fraction = np.count_nonzero(m, axis=others) / np.prod(
                        self.spatial_shape
                    )
                    eligible = np.nonzero(fraction >= self.min_foreground)[0]
                    if eligible.size:
                        axis_maps.append(m)
                        axis_slices.append(eligible)
                if not axis_maps:
                    raise ValueError(
                        "No slice has enough foreground. Expected at least one "
                        f"slice along axis {axis} with a fraction >= "
                        "min_foreground of non-zero voxels. Received: "
                        f"min_foreground={min_foreground!r}"
                    )
                self._maps.append(axis_maps)
                self._slices.append(axis_slices)
            self._axes = axes
            self._map_counts = np.array([len(m) for m in self._maps])
        self.slice_axis = slice_axis

    def draw(self, number):
        """Batch `number` (>= 0) of the feed's sequence; see `Feed`."""
        rng = np.random.default_rng([self._entropy, int(number)])
        batch = np.empty((self.batch_size, *self.spatial_shape, 1), self.dtype)
        if self._slices is None:
            picks = rng.integers(0, len(self._maps), self.batch_size)
            for b, pick in enumerate(picks):
                batch[b, ..., 0] = self._maps[pick]
            return batch
        # One axis per sample (drawn only when there are several), then a
        # map, then one of its eligible slices.
        views = (
            rng.integers(0, len(self._axes), self.batch_size)
            if len(self._axes) > 1
            else np.zeros(self.batch_size, "int64")
        )
        picks = rng.integers(0, self._map_counts[views])
        for b, (view, pick) in enumerate(zip(views, picks)):
            slices = self._slices[view][pick]
            position = slices[rng.integers(len(slices))]
            label_map = self._maps[view][pick]
            batch[b, ..., 0] = np.take(label_map, position, axis=self._axes[view])
        return batch
