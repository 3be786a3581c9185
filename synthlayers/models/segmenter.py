"""A trained segmentation network with the settings inference needs.

`Segmenter` pairs a network with what `synthlayers.inference.segment` must
know to use it: the label value of each output channel (and its name), the
training voxel size, the 2D views, the left/right channel pairs of flip
augmentation, the intensity normalisation, the padding divisor and the
clean-up defaults, plus where it comes from (provenance). `save` writes it
as one model file (`synthlayers.models.model_file`, kind
`"segmentation"`); `load_segmenter` reads it back, and
`segment(load_segmenter(path), image)`, or `segment(path, image)`, needs
no other argument.
"""

import keras
import numpy as np

from synthlayers.freesurfer import LEFT_RIGHT_PAIRS
from synthlayers.freesurfer import structure_name
from synthlayers.models.export import _image_input_rank
from synthlayers.models.model_file import complete_metadata
from synthlayers.models.model_file import load_model_file
from synthlayers.models.model_file import make_provenance
from synthlayers.models.model_file import save_model_file
from synthlayers.models.unet import SpatialShapeCheck
from synthlayers.validation import INTERPOLATIONS
from synthlayers.validation import check_axes
from synthlayers.validation import check_bool
from synthlayers.validation import check_choice
from synthlayers.validation import check_int
from synthlayers.validation import check_number
from synthlayers.validation import check_per_axis
from synthlayers.validation import check_percentiles

KIND = "segmentation"

SETTINGS = (
    "output_labels",
    "label_names",
    "voxel_size",
    "slice_axes",
    "flip",
    "flip_axis",
    "flip_pairs",
    "percentiles",
    "divisor",
    "smoothing_sigma",
    "keep_largest_component",
    "topology_classes",
    "interpolation",
    "empty_background",
)
"""The settings a `Segmenter` carries (its constructor's arguments and the
metadata entries of its model file, with `kind`, `format_version`, `ndim`
and `provenance`)."""


def _check_output_labels(output_labels):
    labels = np.asarray(output_labels) if output_labels is not None else None
    if (
        labels is None
        or labels.ndim != 1
        or labels.size == 0
        or not np.issubdtype(labels.dtype, np.integer)
        or len(np.unique(labels)) != labels.size
    ):
        raise ValueError(
            "Expected `output_labels` to be a sequence of distinct integers (one "
            "label value per output channel). Received: "
            f"output_labels={output_labels!r}"
        )
    return [int(v) for v in labels]


def _default_flip_pairs(output_labels):
    """FreeSurfer's left/right pairs as `(left_channel, right_channel)`."""
    index = {v: i for i, v in enumerate(output_labels)}
    return [
        [index[left], index[right]]
        for left, right in sorted(LEFT_RIGHT_PAIRS.items())
        if left in index and right in index
    ]


def _check_flip_pairs(flip_pairs, channels):
    pairs = []
    try:
        for pair in flip_pairs:
            left, right = pair
            pairs.append([check_int(left, "left"), check_int(right, "right")])
    except (TypeError, ValueError):
        pairs = None
    flat = [c for pair in pairs or () for c in pair]
    if (
        pairs is None
        or any(not 0 <= c < channels for c in flat)
        or (len(set(flat)) != len(flat))
    ):
        raise ValueError(
            f"Expected `flip_pairs` to be `(left_channel, right_channel)` pairs of "
            f"distinct channel indices in [0, {channels}). Received: "
            f"flip_pairs={flip_pairs!r}"
        )
    return pairs


def _network_divisor(network):
    """The largest `SpatialShapeCheck` divisor of a network, else None."""
    divisors, layers = [], list(network.layers)
    while layers:
        layer = layers.pop()
        if isinstance(layer, SpatialShapeCheck):
            divisors.append(layer.divisor)
        layers.extend(getattr(layer, "layers", ()))
    return max(divisors) if divisors else None


def _channels(network):
    shape = getattr(network, "output_shape", None)
    if not isinstance(shape, tuple) or not shape or not isinstance(shape[-1], int):
        raise ValueError(
            "Expected `network` to have one output `(batch, *spatial, channels)` "
            f"with a known number of channels. Received: output shape {shape!r}"
        )
    return shape[-1]


class Segmenter:
    """A trained segmentation network and the settings that make it usable.

    `synthlayers.inference.segment(segmenter, image)` segments a scan with
    these settings and no other argument (explicit arguments of `segment`
    still override them). `save(path)` writes one model file (a `.keras`
    file with a `synthlayers.json` entry; see
    `synthlayers.models.model_file`), `load_segmenter(path)` reads it back.

    Args:
        network: a Keras model, input `(batch, *spatial, 1)` with `None`
            spatial sizes (2D or 3D), output `(batch, *spatial, channels)`
            probabilities.
        output_labels: the label value of each output channel, in channel
            order (e.g. sorted FreeSurfer values).
        label_names: one name per channel, or None for FreeSurfer's names
            (`synthlayers.freesurfer.structure_name`; `"label <value>"` for
            values it does not know). Defaults to None.
        voxel_size: the training voxel size in mm (a number, or one per
            axis of the scan); scans are resampled to it. Defaults to 1.0.
        slice_axes: for a 2D network, the RAS axes of the views it was
            trained on (0 sagittal, 1 coronal, 2 axial; several views are
            averaged); None for a 3D network. Defaults to None.
        flip: left/right flip test-time augmentation. Defaults to True.
        flip_axis: RAS axis of the flip. Defaults to 0.
        flip_pairs: `(left_channel, right_channel)` pairs swapped by the
            flip, or None for FreeSurfer's pairs among `output_labels`.
            Defaults to None.
        percentiles: `(low, high)` intensity percentiles mapped to 0 and 1,
            or None for none. Defaults to `(0.5, 99.5)`.
        divisor: pad the network's spatial axes to a multiple of this, or
            None for the network's (its `SpatialShapeCheck` divisor, as
            `unet` builds), else 16. Defaults to None.
        smoothing_sigma: Gaussian smoothing of the probabilities in network
            voxels (SynthSeg's clean-up: 0.5). Defaults to 0.5.
        keep_largest_component: keep the largest connected component of
            each structure (SynthSeg's clean-up). Defaults to True.
        topology_classes: one integer per channel grouping the channels
            cleaned together, or None. Defaults to None.
        interpolation: `"linear"` or `"nearest"` (see `segment`). Defaults
            to `"linear"`.
        empty_background: constant slices or images get the background.
            Defaults to True.
        provenance: a dict: where the network comes from; the entries of
            `synthlayers.models.model_file.make_provenance()` it lacks
            (package version, date, backend) are added. Defaults to None.

    Example:

    >>> network = keras.Sequential(
    ...     [keras.Input((None, None, 1)), keras.layers.Conv2D(3, 1)])
    >>> segmenter = Segmenter(network, [0, 17, 53], slice_axes=1)
    >>> segmenter.ndim, segmenter.label_names, segmenter.flip_pairs
    (2, ['Unknown', 'Left-Hippocampus', 'Right-Hippocampus'], [[1, 2]])
    """

    def __init__(
        self,
        network,
        output_labels,
        label_names=None,
        voxel_size=1.0,
        slice_axes=None,
        flip=True,
        flip_axis=0,
        flip_pairs=None,
        percentiles=(0.5, 99.5),
        divisor=None,
        smoothing_sigma=0.5,
        keep_largest_component=True,
        topology_classes=None,
        interpolation="linear",
        empty_background=True,
        provenance=None,
    ):
        if not isinstance(network, keras.Model):
            raise ValueError(
                "Expected `network` to be a Keras model. Received: "
                f"network={type(network).__name__}"
            )
        self.network = network
        self.ndim = _image_input_rank(network)
        channels = _channels(network)
        self.output_labels = _check_output_labels(output_labels)
        if len(self.output_labels) != channels:
            raise ValueError(
                f"Expected `output_labels` with one value per output channel "
                f"({channels}). Received: {len(self.output_labels)} "
                f"output_labels={self.output_labels!r}"
            )
        if label_names is None:
            label_names = [structure_name(v) for v in self.output_labels]
        if (
            isinstance(label_names, str)
            or not all(isinstance(n, str) for n in label_names)
            or len(label_names) != channels
        ):
            raise ValueError(
                f"Expected `label_names` to be {channels} strings, one per output "
                f"channel, or None. Received: label_names={label_names!r}"
            )
        self.label_names = list(label_names)
        sizes = check_per_axis(voxel_size, "voxel_size", min_value=1e-6)
        self.voxel_size = sizes[0] if len(sizes) == 1 else list(sizes)
        if self.ndim == 2:
            if slice_axes is None:
                raise ValueError(
                    "Expected `slice_axes` (the RAS axes of the views a 2D network "
                    "was trained on: 0, 1, 2 or a tuple of them) for a 2D network. "
                    "Received: slice_axes=None"
                )
            self.slice_axes = list(check_axes(slice_axes, "slice_axes", 3))
        elif slice_axes is not None:
            raise ValueError(
                "Expected `slice_axes=None` for a 3D network (it sees the whole "
                f"volume). Received: slice_axes={slice_axes!r}"
            )
        else:
            self.slice_axes = None
        self.flip = check_bool(flip, "flip")
        self.flip_axis = check_axes(flip_axis, "flip_axis", 3)[0]
        if flip_pairs is None:
            flip_pairs = _default_flip_pairs(self.output_labels)
        self.flip_pairs = _check_flip_pairs(flip_pairs, channels)
        checked = check_percentiles(percentiles)
        self.percentiles = None if checked is None else list(checked)
        if divisor is None:
            divisor = _network_divisor(network) or 16
        self.divisor = check_int(divisor, "divisor", min_value=1)
        self.smoothing_sigma = check_number(
            smoothing_sigma, "smoothing_sigma", min_value=0
        )
        self.keep_largest_component = check_bool(
            keep_largest_component, "keep_largest_component"
        )
        if topology_classes is not None:
            topology_classes = np.asarray(topology_classes)
            if topology_classes.shape != (channels,) or not np.issubdtype(
                topology_classes.dtype, np.integer
            ):
                raise ValueError(
                    f"Expected `topology_classes` to be {channels} integers (one per "
                    f"channel) or None. Received: topology_classes={topology_classes!r}"
                )
            topology_classes = [int(c) for c in topology_classes]
        self.topology_classes = topology_classes
        self.interpolation = check_choice(
            interpolation, "interpolation", INTERPOLATIONS
        )
        self.empty_background = check_bool(empty_background, "empty_background")
        if provenance is not None and not isinstance(provenance, dict):
            raise ValueError(
                "Expected `provenance` to be a dict or None. Received: "
                f"provenance={provenance!r}"
            )
        # Completed now: the same date and versions in every file written.
        self.provenance = {**make_provenance(), **(provenance or {})}

    @property
    def num_classes(self):
        """The number of output channels."""
        return len(self.output_labels)

    def get_config(self):
        """The settings (`SETTINGS`) as a JSON-serialisable dict."""
        return {name: getattr(self, name) for name in SETTINGS}

    @property
    def metadata(self):
        """The model file's metadata: kind, ndim, settings, provenance."""
        return complete_metadata(
            {
                "kind": KIND,
                "ndim": self.ndim,
                **self.get_config(),
                "provenance": self.provenance,
            }
        )

    def segment_arguments(self):
        """The keyword arguments of `synthlayers.inference.segment` it sets.

        Returns:
            A dict: `target_voxel_size`, `percentiles`, `divisor`,
            `slice_axis` (2D networks), `flip`, `flip_axis`, `flip_pairs`,
            `output_labels`, `empty_background`, `smoothing_sigma`,
            `keep_largest_component`, `topology_classes`, `interpolation`.
        """
        arguments = {
            "target_voxel_size": self.voxel_size,
            "percentiles": None
            if self.percentiles is None
            else tuple(self.percentiles),
            "divisor": self.divisor,
            "flip": self.flip,
            "flip_axis": self.flip_axis,
            "flip_pairs": [tuple(pair) for pair in self.flip_pairs],
            "output_labels": list(self.output_labels),
            "empty_background": self.empty_background,
            "smoothing_sigma": self.smoothing_sigma,
            "keep_largest_component": self.keep_largest_component,
            "topology_classes": self.topology_classes,
            "interpolation": self.interpolation,
        }
        if self.slice_axes is not None:
            axes = tuple(self.slice_axes)
            arguments["slice_axis"] = axes[0] if len(axes) == 1 else axes
        return arguments

    def save(self, path):
        """Write the model file (`.keras`, atomically); returns the path."""
        return save_model_file(path, self.network, self.metadata)

    @classmethod
    def from_metadata(cls, network, metadata):
        """A `Segmenter` from a network and its model file's metadata.

        Raises:
            ValueError: when the metadata is not a segmentation model's, or
                its `ndim` or settings do not fit the network.
        """
        if metadata.get("kind") != KIND:
            raise ValueError(
                f"Expected a {KIND} model file, received a {metadata.get('kind')} one"
            )
        missing = [name for name in ("output_labels",) if name not in metadata]
        if missing:
            raise ValueError(
                f"Expected the segmentation model file's metadata to have "
                f"{missing}. Received the entries {sorted(metadata)}"
            )
        arguments = {name: metadata[name] for name in SETTINGS if name in metadata}
        segmenter = cls(network, provenance=metadata.get("provenance"), **arguments)
        ndim = metadata.get("ndim", segmenter.ndim)
        if ndim != segmenter.ndim:
            raise ValueError(
                f"Expected a {ndim}D network, as the model file's metadata says. "
                f"Received a {segmenter.ndim}D network"
            )
        return segmenter

    def __repr__(self):
        views = "" if self.slice_axes is None else f", slice_axes={self.slice_axes}"
        return (
            f"Segmenter({self.ndim}D, {self.num_classes} labels, "
            f"voxel_size={self.voxel_size}{views})"
        )


def load_segmenter(path):
    """Load a segmentation model file written by `Segmenter.save`.

    Args:
        path: a `.keras` model file.

    Returns:
        A `Segmenter`.

    Raises:
        FileNotFoundError: when `path` does not exist.
        ValueError: when the file is damaged, not a synthlayers model file
            (or written by an older layout), of an unknown `format_version`,
            or a registration model file ("expected a segmentation model
            file, received a registration one").

    Example:

    >>> segmenter = load_segmenter("model.keras")  # doctest: +SKIP
    >>> labels = segment(segmenter, "scan.nii.gz")  # doctest: +SKIP
    """
    network, metadata = load_model_file(path, kind=KIND)
    return Segmenter.from_metadata(network, metadata)
