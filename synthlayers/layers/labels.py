"""Deterministic label layers: RemapLabels (lookup table) and OneHot."""

import keras
import numpy as np
from keras import ops

from synthlayers.layers.base import IMAGES
from synthlayers.layers.base import MASKS
from synthlayers.layers.base import BaseLayer
from synthlayers.layers.base import is_integer_dtype
from synthlayers.ops.labels import apply_lookup_table
from synthlayers.ops.labels import lookup_table
from synthlayers.validation import INT32_MAX
from synthlayers.validation import INT32_MIN
from synthlayers.validation import check_int
from synthlayers.validation import check_int_list


def parse_label_table(labels, values):
    """Parse the `labels`/`values` arguments of `RemapLabels` into two lists.

    Returns `(keys, outputs)`, keys sorted ascending. See `RemapLabels`.
    """
    if isinstance(labels, dict):
        if values is not None:
            raise ValueError(
                "`values` must be None when `labels` is a dict {input: output}. "
                f"Received: values={values!r}"
            )
        if not labels:
            raise ValueError(f"`labels` must not be empty. Received: labels={labels!r}")
        keys = check_int_list(
            list(labels.keys()), "labels", INT32_MIN, INT32_MAX, received=labels
        )
        outputs = check_int_list(
            list(labels.values()), "labels", INT32_MIN, INT32_MAX, received=labels
        )
        if len(set(keys)) != len(keys):  # e.g. {1: 2, np.int64(1): 3}
            raise ValueError(
                f"`labels` has duplicate input labels. Received: labels={labels!r}"
            )
    else:
        keys = check_int_list(labels, "labels", INT32_MIN, INT32_MAX, received=labels)
        if not keys:
            raise ValueError(f"`labels` must not be empty. Received: labels={labels!r}")
        if values is None:
            keys = sorted(set(keys))
            outputs = list(range(len(keys)))
        else:
            outputs = check_int_list(
                values, "values", INT32_MIN, INT32_MAX, received=values
            )
            if len(outputs) != len(keys):
                raise ValueError(
                    "`labels` and `values` must have the same length. Received: "
                    f"labels={labels!r} (length {len(keys)}), values={values!r} "
                    f"(length {len(outputs)})"
                )
            duplicates = sorted({k for k in keys if keys.count(k) > 1})
            if duplicates:
                raise ValueError(
                    f"`labels` has duplicate input labels {duplicates}. "
                    f"Received: labels={labels!r}"
                )
    negative = sorted(k for k in keys if k < 0)
    if negative:
        raise ValueError(
            f"`labels` must hold non-negative input labels; got {negative}. "
            f"Received: labels={labels!r}"
        )
    order = np.argsort(keys, kind="stable")
    return [keys[i] for i in order], [outputs[i] for i in order]


def _label_map_of(data):
    """The label map of a tensor/array or a dict, as a NumPy array."""
    if isinstance(data, dict):
        if MASKS not in data:
            raise ValueError(
                f"Expected a label map or a dict with key '{MASKS}'. "
                f"Received keys: {sorted(data)}"
            )
        data = data[MASKS]
    array = np.asarray(ops.convert_to_numpy(data))
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"Expected an integer label map. Received: label_map.dtype={array.dtype}"
        )
    return array


class _LabelLayer(BaseLayer):
    """A bare tensor is always a label map here (a float one is an error)."""

    def _to_dict(self, data):
        if isinstance(data, dict):
            return super()._to_dict(data)
        if not is_integer_dtype(data.dtype):
            raise ValueError(
                f"{self.__class__.__name__} expects an integer label map (or a dict "
                f"with '{IMAGES}' and/or '{MASKS}'). Received: dtype="
                f"{keras.backend.standardize_dtype(data.dtype)}"
            )
        return {MASKS: data}, False

    def image_output_dtype(self, dtype):
        return dtype  # images pass through untouched


@keras.saving.register_keras_serializable(package="synthlayers")
class RemapLabels(_LabelLayer):
    """Map integer labels to other integer labels with an in-graph lookup table.

    Three ways to give the table:

    - `labels` a dict `{input_label: output_label}` (`values` must be None);
    - `labels` and `values` two lists of the same length, paired up:
      `labels[i] -> values[i]`;
    - `labels` a list alone: compact indices. The unique input labels are
      SORTED and mapped to `0, 1, ..., K - 1` in that order, whatever the
      order they were given in (neurite built this order from a Python set,
      so channel `k` was not predictably label `k`).

    Any label that is not in the table, including negative ones, becomes
    `unknown_value`; nothing is mapped silently to a real class (neurite
    sent missing labels to whatever class sat at their table position). Use
    `unknown_labels(label_map)` or `check_labels(label_map)` (eager) to find
    such labels in your data before training.

    Input labels must be non-negative integers; the table is dense, of size
    `max(labels) + 1` (fine for brain atlases, whose labels stay below a few
    thousands). Images in a dict pass through untouched.

    Args:
        labels: a dict `{input: output}`, a list of input labels paired with
            `values`, or a list of input labels alone (compact indices in
            sorted order). Input labels are unique non-negative integers.
        values: list of output labels, one per entry of `labels`, or None.
            Defaults to `None`.
        unknown_value: integer output for labels absent from the table.
            Defaults to `0`.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        data: an integer label map, or a dict with `"segmentation_masks"`
            and/or `"images"` (images are returned unchanged). A bare float
            tensor raises a ValueError.
        training: unused; the layer is deterministic. Defaults to `True`.

    Input shape:
        `(batch, *spatial, 1)` integer label map, 2 or 3 spatial axes.

    Output shape:
        Same as the input, int32.

    Attributes:
        input_labels: sorted list of the input labels of the table.
        output_labels: sorted list of the distinct output labels of the table
            (`unknown_value` only if some input label maps to it).

    Example:

    >>> import keras
    >>> import numpy as np
    >>> layer = RemapLabels([41, 2, 17])  # 2 -> 0, 17 -> 1, 41 -> 2
    >>> label_map = np.array([2, 17, 41, 5], "int32").reshape(1, 2, 2, 1)
    >>> keras.ops.convert_to_numpy(layer(label_map))[0, ..., 0].tolist()
    [[0, 1], [2, 0]]
    >>> layer.unknown_labels(label_map).tolist()
    [5]
    """

    def __init__(self, labels, values=None, unknown_value=0, **kwargs):
        super().__init__(**kwargs)
        self.keys, self.values = parse_label_table(labels, values)
        self.unknown_value = check_int(unknown_value, "unknown_value")
        if not INT32_MIN <= self.unknown_value <= INT32_MAX:
            raise ValueError(
                f"`unknown_value` must be an int32 value. Received: "
                f"unknown_value={unknown_value!r}"
            )
        self.table = lookup_table(self.keys, self.values, self.unknown_value)

    @property
    def input_labels(self):
        return list(self.keys)

    @property
    def output_labels(self):
        return sorted(set(self.values))

    def transform_segmentation_masks(self, masks, transformation, training=True):
        return apply_lookup_table(masks, self.table, self.unknown_value)

    def mask_output_dtype(self, dtype):
        return "int32"

    def unknown_labels(self, label_map):
        """Sorted NumPy array of the values of `label_map` absent from the table.

        `label_map` is an integer array/tensor or a dict with
        `"segmentation_masks"`; runs eagerly.
        """
        present = np.unique(_label_map_of(label_map))
        return np.setdiff1d(present, np.asarray(self.keys))

    def check_labels(self, label_map):
        """Raise a ValueError naming the labels of `label_map` not in the table."""
        unknown = self.unknown_labels(label_map)
        if unknown.size:
            raise ValueError(
                f"The label map holds labels that are not in the table of "
                f"{self.name}: {unknown.tolist()}. They would become "
                f"unknown_value={self.unknown_value}. Table input labels: "
                f"{self.keys}"
            )

    def get_config(self):
        config = super().get_config()
        # Always the pairwise form: JSON-safe lists, identical table on reload.
        config.update(
            labels=list(self.keys),
            values=list(self.values),
            unknown_value=self.unknown_value,
        )
        return config


@keras.saving.register_keras_serializable(package="synthlayers")
class OneHot(_LabelLayer):
    """Encode integer labels `0..num_classes - 1` as one-hot channels.

    Label `k` becomes a vector with a 1 in channel `k`; labels outside
    `[0, num_classes)` (negative ones included) become all zeros, without
    error. Map arbitrary label values to compact indices first with
    `RemapLabels(labels)`. Images in a dict pass through untouched.

    Args:
        num_classes: positive integer, the number of output channels.
        **kwargs: base layer arguments such as `name` and `dtype`.

    Call arguments:
        data: an integer label map with one channel, or a dict with
            `"segmentation_masks"` and/or `"images"` (images are returned
            unchanged). A bare float tensor raises a ValueError.
        training: unused; the layer is deterministic. Defaults to `True`.

    Input shape:
        `(batch, *spatial, 1)` integer label map, 2 or 3 spatial axes.

    Output shape:
        `(batch, *spatial, num_classes)` in the layer's compute dtype.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> label_map = np.array([0, 2, 1, 7], "int32").reshape(1, 2, 2, 1)
    >>> keras.ops.convert_to_numpy(OneHot(3)(label_map))[0].reshape(4, 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]]
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = check_int(num_classes, "num_classes", min_value=1)

    def check_inputs(self, data):
        ndim = super().check_inputs(data)
        if MASKS in data and data[MASKS].shape[-1] != 1:
            raise ValueError(
                f"{self.__class__.__name__} expects a label map with 1 channel. "
                f"Received: {MASKS}.shape={tuple(data[MASKS].shape)}"
            )
        return ndim

    def transform_segmentation_masks(self, masks, transformation, training=True):
        classes = ops.arange(self.num_classes, dtype="int32")
        hits = ops.equal(ops.cast(masks, "int32"), classes)
        return ops.cast(hits, self.compute_dtype)

    def compute_channels(self, key, channels):
        return self.num_classes if key == MASKS else channels

    def mask_output_dtype(self, dtype):
        return self.compute_dtype

    def get_config(self):
        config = super().get_config()
        config["num_classes"] = self.num_classes
        return config
