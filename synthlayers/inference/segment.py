"""Segment a scan end to end: labels in the input's space, optionally a file.

The steps of `segment` are each a module of this package: orientation,
normalisation and the network grid (`preprocess`), the network with
padding, slices and flip augmentation (`predict`), SynthSeg's clean-up
(`postprocess`); then the probabilities (or labels) go back onto the
input's grid (`synthlayers.resampling`) and voxel order (`synthlayers.io`).
"""

import os

import keras
import numpy as np

from synthlayers import io
from synthlayers.inference.postprocess import _keep_largest_components
from synthlayers.inference.postprocess import smooth_probabilities
from synthlayers.inference.predict import _check_output_labels
from synthlayers.inference.predict import predict_probabilities
from synthlayers.inference.preprocess import _Grid
from synthlayers.inference.preprocess import _prepare
from synthlayers.inference.preprocess import normalize_intensities
from synthlayers.models.segmenter import Segmenter
from synthlayers.models.segmenter import load_segmenter
from synthlayers.resampling import _positive_sizes
from synthlayers.validation import INTERPOLATIONS
from synthlayers.validation import check_bool
from synthlayers.validation import check_choice
from synthlayers.validation import check_number
from synthlayers.validation import check_percentiles


class _FromModel:
    """Marks a `segment` argument left to the model's settings."""

    def __repr__(self):
        return "FROM_MODEL"


FROM_MODEL = _FromModel()
"""Default of the `segment` arguments a `Segmenter` (model file) sets."""

_PLAIN_NETWORK_DEFAULTS = {
    "target_voxel_size": 1.0,
    "percentiles": (0.5, 99.5),
    "divisor": 16,
    "slice_axis": 2,
    "flip": False,
    "flip_axis": 0,
    "flip_pairs": None,
    "output_labels": None,
    "empty_background": True,
    "smoothing_sigma": 0.0,
    "keep_largest_component": False,
    "topology_classes": None,
    "interpolation": "linear",
}
"""The defaults of the settings for a plain Keras network."""


def _network_and_settings(model):
    """The Keras network and the default settings of `model`."""
    if isinstance(model, (str, os.PathLike)):
        model = load_segmenter(model)
    if isinstance(model, Segmenter):
        return model.network, {**_PLAIN_NETWORK_DEFAULTS, **model.segment_arguments()}
    if not isinstance(model, keras.Model):
        raise ValueError(
            "Expected `model` to be a `Segmenter`, the path of its model file "
            "(`.keras`), or a Keras model. Received: "
            f"model={type(model).__name__}"
        )
    return model, dict(_PLAIN_NETWORK_DEFAULTS)


def segment(
    model,
    image,
    voxel_size=None,
    affine=None,
    target_voxel_size=FROM_MODEL,
    percentiles=FROM_MODEL,
    divisor=FROM_MODEL,
    slice_axis=FROM_MODEL,
    batch_size=8,
    flip=FROM_MODEL,
    flip_axis=FROM_MODEL,
    flip_pairs=FROM_MODEL,
    output_labels=FROM_MODEL,
    empty_background=FROM_MODEL,
    smoothing_sigma=FROM_MODEL,
    keep_largest_component=FROM_MODEL,
    topology_classes=FROM_MODEL,
    interpolation=FROM_MODEL,
    out_path=None,
    nan_policy="raise",
    return_probabilities=False,
):
    """Segment a scan with a trained network; labels in the input's space.

    `model` is best a `synthlayers.models.Segmenter` or the path of its model
    file: its settings (training voxel size, views, normalisation, divisor,
    flip pairs, label values, clean-up) are then the defaults of every
    argument marked "from the model" below, and `segment(model, image)`
    needs nothing else; an argument given explicitly overrides the model's
    setting. For a plain Keras network those arguments default to the
    values stated.

    Steps: (1) bring the scan to RAS+ voxel order (a path: from its header,
    see `synthlayers.io.load_volume`; an array with `affine`: from that
    affine; an array with `voxel_size` or nothing: assumed to be RAS+
    already); (2) rescale intensities between two percentiles to [0, 1]
    (`normalize_intensities`); (3) resample linearly to `target_voxel_size`
    (the training voxel size; a centred grid of `round(n * size / target)`
    voxels, Gaussian pre-blur where it downsamples); (4) `predict_probabilities`
    (padding to `divisor`, 2D networks slice by slice along `slice_axis`,
    optional left/right flip augmentation along `flip_axis`); (4b) optionally,
    SynthSeg's clean-up on the network grid: Gaussian smoothing of the
    probabilities (`smooth_probabilities`) and the largest connected
    component of each structure (`keep_largest_components`); (5) back to the
    input grid: with `interpolation="linear"` each channel's probability map
    is resampled linearly and the argmax taken there (smooth boundaries, as
    SynthSeg; one channel at a time to bound memory), with `"nearest"` the
    argmax is taken on the network grid and the labels are resampled by
    nearest neighbour (cheaper); (6) channel indices become `output_labels`
    values; (7) the voxel order is put back to the input's.

    Args:
        model: a `Segmenter`, the path of its model file (`.keras`, see
            `synthlayers.models.load_segmenter`), or a Keras model, input
            `(batch, *spatial, 1)` with `None` spatial sizes (2D or 3D),
            output `(batch, *spatial, channels)` probabilities.
        image: a path to a NIfTI/MGH file, a nibabel image, or a 2D/3D
            array.
        voxel_size: voxel size of an array (mm; a number or one per axis),
            or None for 1 mm. The array is then assumed to be in RAS+ order.
            Must be None for a path or with `affine`. Defaults to None.
        affine: 4 x 4 voxel-to-RAS matrix of a 3D array, which may be in any
            voxel order. Defaults to None.
        target_voxel_size: the network's voxel size (mm; number or one per
            axis), or None to keep the input's. Defaults to the model's
            training voxel size, else 1.0.
        percentiles: `(low, high)` percentiles mapped to 0 and 1, or None to
            feed intensities as they are. Defaults to the model's, else
            `(0.5, 99.5)`.
        divisor: pad the network's spatial axes to a multiple of this
            (`2 ** levels`). Defaults to the model's, else 16.
        slice_axis: RAS axis a 2D network slides along (0 sagittal,
            1 coronal, 2 axial), or a tuple of axes whose views are
            averaged (see `predict_probabilities`). Defaults to the model's
            training views, else 2.
        batch_size: slices per call for a 2D network. Defaults to 8.
        flip: left/right flip test-time augmentation. Defaults to the
            model's, else False.
        flip_axis: RAS axis of the flip (0: left/right). Defaults to the
            model's, else 0.
        flip_pairs: `(left_index, right_index)` channel pairs, or None to
            derive them from `output_labels` and FreeSurfer's left/right
            pairs. Defaults to the model's, else None.
        output_labels: label value of each channel in channel order (e.g.
            sorted FreeSurfer values, the order synthlayers' targets use), or
            None to return channel indices. Defaults to the model's, else
            None.
        empty_background: slices (2D networks) or images of constant
            intensity get the background, channel 0 (see
            `predict_probabilities`). Defaults to the model's, else True.
        smoothing_sigma: Gaussian smoothing of the probabilities, in
            network voxels (SynthSeg uses 0.5); 0 smooths nothing. Defaults
            to the model's, else 0.
        keep_largest_component: keep only the largest connected component
            of the foreground and of each structure
            (`keep_largest_components`, SynthSeg's clean-up). Defaults to
            the model's, else False.
        topology_classes: one integer per channel grouping the channels
            cleaned together (0: left alone), or None for one class per
            foreground channel; used with `keep_largest_component`.
            Defaults to the model's, else None.
        interpolation: `"linear"` (resample probabilities, then argmax) or
            `"nearest"` (argmax, then resample labels). Defaults to the
            model's, else `"linear"`.
        out_path: write the labels there as NIfTI (int32) with the input's
            affine (the file's, `affine`, or `diag(voxel_size)`), or None.
            Defaults to None.
        nan_policy: non-finite voxels of the scan: `"raise"` (a
            `ValueError` with their count) or `"zero"` (set to 0 before
            normalisation, with a `UserWarning`; see
            `preprocess.check_finite_voxels`). Defaults to `"raise"`.
        return_probabilities: also return the probabilities the labels are
            the argmax of, on the input's grid and voxel order (after the
            clean-up, linearly resampled; not renormalised: voxels the
            clean-up removed sum to less than 1). They take
            `input voxels x channels x 4` bytes. Defaults to False.

    Returns:
        An int32 array of the input's shape and voxel order: label values
        (or channel indices). With `return_probabilities`, a tuple
        `(labels, probabilities)`, the probabilities float32 of shape
        `(*input_shape, channels)`, channel `k` for label
        `output_labels[k]`.

    Raises:
        FileNotFoundError: when `model` is a path that does not exist.
        ValueError: on invalid arguments (each names the argument, what was
            expected and what was received), or a model file that is damaged,
            of an older layout or of another kind.

    Example:

    >>> labels = segment("model.keras", "scan.nii.gz")  # doctest: +SKIP
    >>> labels = segment(network, "scan.nii.gz", flip=True,  # doctest: +SKIP
    ...                  output_labels=labels, out_path="scan_seg.nii.gz")
    """
    model, settings = _network_and_settings(model)
    given = {
        "target_voxel_size": target_voxel_size,
        "percentiles": percentiles,
        "divisor": divisor,
        "slice_axis": slice_axis,
        "flip": flip,
        "flip_axis": flip_axis,
        "flip_pairs": flip_pairs,
        "output_labels": output_labels,
        "empty_background": empty_background,
        "smoothing_sigma": smoothing_sigma,
        "keep_largest_component": keep_largest_component,
        "topology_classes": topology_classes,
        "interpolation": interpolation,
    }
    settings.update({k: v for k, v in given.items() if v is not FROM_MODEL})
    target_voxel_size = settings["target_voxel_size"]
    percentiles = settings["percentiles"]
    divisor = settings["divisor"]
    slice_axis = settings["slice_axis"]
    flip = settings["flip"]
    flip_axis = settings["flip_axis"]
    flip_pairs = settings["flip_pairs"]
    output_labels = settings["output_labels"]
    empty_background = settings["empty_background"]
    smoothing_sigma = settings["smoothing_sigma"]
    keep_largest_component = settings["keep_largest_component"]
    topology_classes = settings["topology_classes"]
    interpolation = settings["interpolation"]
    check_choice(interpolation, "interpolation", INTERPOLATIONS)
    percentiles = check_percentiles(percentiles)
    output_labels = _check_output_labels(output_labels)
    smoothing_sigma = check_number(smoothing_sigma, "smoothing_sigma", min_value=0)
    keep_largest_component = check_bool(
        keep_largest_component, "keep_largest_component"
    )
    if topology_classes is not None and not keep_largest_component:
        raise ValueError(
            "Expected `topology_classes=None` without "
            "`keep_largest_component=True` (they group the channels it "
            f"cleans). Received: topology_classes={topology_classes!r}"
        )
    return_probabilities = check_bool(return_probabilities, "return_probabilities")
    data, sizes, to_input_order, save_affine = _prepare(
        image, voxel_size, affine, nan_policy=nan_policy
    )
    if out_path is not None and save_affine is None:
        raise ValueError(
            "Expected a 3D image to write `out_path` (NIfTI). Received: "
            f"image.shape={data.shape}, out_path={out_path!r}"
        )
    target = None
    if target_voxel_size is not None:
        target = _positive_sizes(target_voxel_size, data.ndim, "target_voxel_size")
    if percentiles is not None:
        data = normalize_intensities(data, percentiles)
    grid = _Grid(data.shape, sizes, target)
    probabilities = predict_probabilities(
        model,
        grid.to_network(data),
        divisor=divisor,
        slice_axis=slice_axis,
        batch_size=batch_size,
        flip=flip,
        flip_axis=flip_axis,
        flip_pairs=flip_pairs,
        output_labels=output_labels,
        empty_background=empty_background,
    )
    channels = probabilities.shape[-1]
    if output_labels is not None and len(output_labels) != channels:
        raise ValueError(
            f"Expected `output_labels` with one value per output channel "
            f"({channels}). Received: {len(output_labels)} output_labels"
        )
    if smoothing_sigma > 0:
        probabilities = smooth_probabilities(probabilities, smoothing_sigma)
    if keep_largest_component:
        _keep_largest_components(probabilities, 0.25, topology_classes)
    on_input = None
    if not grid.axes:
        labels = np.argmax(probabilities, axis=-1)
        on_input = probabilities if return_probabilities else None
    elif interpolation == "nearest":
        labels = grid.nearest_to_input(np.argmax(probabilities, axis=-1))
    else:
        best = grid.to_input(probabilities[..., 0])
        labels = np.zeros(best.shape, "int32")
        if return_probabilities:
            on_input = np.empty((*best.shape, channels), "float32")
            on_input[..., 0] = best
        for c in range(1, channels):
            p = grid.to_input(probabilities[..., c])
            better = p > best
            best = np.where(better, p, best)
            labels[better] = c
            if return_probabilities:
                on_input[..., c] = p
    if return_probabilities and on_input is None:  # "nearest" with resampling
        on_input = np.stack(
            [grid.to_input(probabilities[..., c]) for c in range(channels)], axis=-1
        )
    labels = labels.astype("int32")
    if output_labels is not None:
        labels = output_labels[labels]
    labels = np.ascontiguousarray(to_input_order(labels))
    if out_path is not None:
        io.save_volume(out_path, labels, save_affine)
    if return_probabilities:
        on_input = np.ascontiguousarray(to_input_order(on_input), dtype="float32")
        return labels, on_input
    return labels
