"""Segmenter: a network with its inference settings, saved as one model file."""

import json
import os
import subprocess
import sys
import warnings
import zipfile

import keras
import numpy as np
import pytest
import scipy.ndimage

from synthlayers.inference import segment
from synthlayers.models import Segmenter
from synthlayers.models import load_segmenter
from synthlayers.models import save_model_file
from synthlayers.models import unet
from synthlayers.models.model_file import METADATA_ENTRY

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LABELS = [0, 2, 17, 41, 53]  # background, L/R white matter, L/R hippocampus


def network(ndim=2, seed=0):
    keras.utils.set_random_seed(seed)
    return unet(
        (*[None] * ndim, 1),
        num_classes=len(LABELS),
        levels=3,
        features=4,
        normalization="instance",
    )


def scan(shape=(23, 19, 17), seed=0):
    rng = np.random.default_rng(seed)
    image = scipy.ndimage.gaussian_filter(rng.random(shape), 2.0)
    return (100 * image).astype("float32")


def make_segmenter(ndim=2, **kwargs):
    settings = dict(voxel_size=1.5, flip=True, smoothing_sigma=0.5)
    if ndim == 2:
        settings["slice_axes"] = (1, 2)
    settings.update(kwargs)
    return Segmenter(network(ndim), LABELS, provenance={"steps": 3}, **settings)


# The settings of `make_segmenter(2)` as explicit `segment` arguments.
EXPLICIT_2D = dict(
    target_voxel_size=1.5,
    percentiles=(0.5, 99.5),
    divisor=4,
    slice_axis=(1, 2),
    flip=True,
    flip_axis=0,
    flip_pairs=[(1, 3), (2, 4)],
    output_labels=LABELS,
    empty_background=True,
    smoothing_sigma=0.5,
    keep_largest_component=True,
    topology_classes=None,
    interpolation="linear",
)


def test_defaults_from_labels_and_network():
    segmenter = make_segmenter()
    assert segmenter.ndim == 2 and segmenter.num_classes == 5
    assert segmenter.label_names == [
        "Unknown",
        "Left-Cerebral-White-Matter",
        "Left-Hippocampus",
        "Right-Cerebral-White-Matter",
        "Right-Hippocampus",
    ]
    # FreeSurfer's pairs 2<->41, 17<->53 as channel indices.
    assert segmenter.flip_pairs == [[1, 3], [2, 4]]
    # levels=3: the U-Net's SpatialShapeCheck needs multiples of 4.
    assert segmenter.divisor == 4
    assert segmenter.slice_axes == [1, 2]
    assert segmenter.percentiles == [0.5, 99.5]
    assert segmenter.keep_largest_component is True
    arguments = segmenter.segment_arguments()
    assert arguments == EXPLICIT_2D
    assert "2D, 5 labels" in repr(segmenter)


def test_metadata_is_json_with_every_setting():
    metadata = make_segmenter().metadata
    assert json.loads(json.dumps(metadata)) == metadata
    assert metadata["kind"] == "segmentation"
    assert metadata["format_version"] == 1
    assert metadata["ndim"] == 2
    assert metadata["output_labels"] == LABELS
    assert metadata["voxel_size"] == 1.5
    assert metadata["flip_pairs"] == [[1, 3], [2, 4]]
    assert metadata["provenance"]["steps"] == 3
    assert metadata["provenance"]["package"] == "synthlayers"
    for name in ("label_names", "slice_axes", "percentiles", "divisor"):
        assert name in metadata


def test_segment_with_a_segmenter_needs_no_other_argument():
    segmenter = make_segmenter()
    image = scan()
    labels = segment(segmenter, image)
    expected = segment(segmenter.network, image, **EXPLICIT_2D)
    np.testing.assert_array_equal(labels, expected)
    assert labels.shape == image.shape and labels.dtype == np.int32
    assert set(np.unique(labels)) <= set(LABELS)
    # Explicit arguments still override the model's settings.
    overrides = dict(flip=False, smoothing_sigma=0.0, keep_largest_component=False)
    np.testing.assert_array_equal(
        segment(segmenter, image, **overrides),
        segment(segmenter.network, image, **{**EXPLICIT_2D, **overrides}),
    )
    raw = segment(segmenter, image, output_labels=None)
    assert set(np.unique(raw)) <= set(range(5))


def test_plain_network_defaults_unchanged():
    # A plain Keras network keeps segment's previous defaults (1 mm, no
    # flip, no clean-up, channel indices, axial slices, divisor 16).
    net = network()
    image = scan(shape=(20, 18, 12))
    np.testing.assert_array_equal(
        segment(net, image),
        segment(
            net,
            image,
            target_voxel_size=1.0,
            percentiles=(0.5, 99.5),
            divisor=16,
            slice_axis=2,
            flip=False,
            output_labels=None,
            smoothing_sigma=0.0,
            keep_largest_component=False,
        ),
    )


@pytest.mark.slow  # 2D views x flips through a freshly loaded network
def test_save_load_round_trip(tmp_path):
    segmenter = make_segmenter()
    path = segmenter.save(tmp_path / "segmenter.keras")
    loaded = load_segmenter(path)
    assert loaded.get_config() == segmenter.get_config()
    assert loaded.provenance["steps"] == 3
    assert loaded.provenance["backend"] == keras.backend.backend()
    image = scan(shape=(16, 14, 12))
    expected = segment(segmenter, image)
    np.testing.assert_array_equal(segment(loaded, image), expected)
    np.testing.assert_array_equal(segment(str(path), image), expected)


def test_3d_segmenter_round_trip(tmp_path):
    segmenter = make_segmenter(ndim=3, voxel_size=[1.0, 1.5, 2.0], flip=False)
    assert segmenter.slice_axes is None
    assert "slice_axis" not in segmenter.segment_arguments()
    loaded = load_segmenter(segmenter.save(tmp_path / "segmenter3d.keras"))
    assert loaded.voxel_size == [1.0, 1.5, 2.0] and loaded.ndim == 3
    image = scan(shape=(16, 14, 12))
    expected = segment(segmenter, image)
    np.testing.assert_array_equal(segment(loaded, image), expected)
    # A path (str or os.PathLike) is loaded with `load_segmenter`.
    np.testing.assert_array_equal(
        segment(tmp_path / "segmenter3d.keras", image), expected
    )


def test_registration_file_is_refused(tmp_path):
    path = tmp_path / "registration.keras"
    save_model_file(path, network(), {"kind": "registration"})
    with pytest.raises(
        ValueError,
        match="Expected a segmentation model file, received a registration one",
    ):
        load_segmenter(path)
    with pytest.raises(ValueError, match="received a registration one"):
        segment(path, scan())


def test_metadata_that_does_not_fit_the_network(tmp_path):
    path = tmp_path / "bad.keras"
    metadata = make_segmenter().metadata
    save_model_file(path, network(), {**metadata, "output_labels": [0, 1, 2]})
    with pytest.raises(ValueError, match="one value per output channel"):
        load_segmenter(path)
    save_model_file(path, network(), {**metadata, "ndim": 3})
    with pytest.raises(ValueError, match="Expected a 3D network"):
        load_segmenter(path)
    save_model_file(path, network(), {"kind": "segmentation"})
    with pytest.raises(ValueError, match="output_labels"):
        load_segmenter(path)


def test_missing_model_file_and_bad_model(tmp_path):
    with pytest.raises(FileNotFoundError):
        segment(tmp_path / "absent.keras", scan())
    with pytest.raises(ValueError, match="`model` to be a `Segmenter`.*Received"):
        segment(42, scan())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(output_labels=[0, 1]), "one value per output channel"),
        (dict(output_labels=[0, 2, 2, 41, 53]), "distinct integers"),
        (dict(label_names=["a", "b"]), "`label_names` to be 5 strings"),
        (dict(slice_axes=None), "`slice_axes`.*for a 2D network"),
        (dict(slice_axes=3), "slice_axes"),
        (dict(flip_pairs=[(1, 9)]), "flip_pairs"),
        (dict(flip_pairs=[(1, 3), (3, 4)]), "flip_pairs"),
        (dict(percentiles=(99, 1)), "percentiles"),
        (dict(voxel_size=0), "voxel_size"),
        (dict(divisor=0), "divisor"),
        (dict(smoothing_sigma=-1), "smoothing_sigma"),
        (dict(interpolation="cubic"), "interpolation"),
        (dict(topology_classes=[1, 2]), "topology_classes"),
        (dict(provenance=[1]), "provenance"),
    ],
)
def test_invalid_settings(kwargs, match):
    settings = dict(output_labels=LABELS, slice_axes=1)
    settings.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Segmenter(network(), **settings)


def test_3d_network_with_slice_axes_and_bad_network():
    with pytest.raises(ValueError, match="`slice_axes=None` for a 3D network"):
        Segmenter(network(3), LABELS, slice_axes=1)
    with pytest.raises(ValueError, match="`network` to be a Keras model"):
        Segmenter("unet", LABELS, slice_axes=1)


FRESH_PROCESS = """
import sys
import numpy as np
from synthlayers.inference import segment
labels = segment(sys.argv[1], np.load(sys.argv[2]))
np.save(sys.argv[3], labels)
"""


@pytest.mark.slow  # a fresh Python process imports Keras and its backend
def test_fresh_process_gives_the_same_labels(tmp_path):
    segmenter = make_segmenter()
    path = segmenter.save(tmp_path / "segmenter.keras")
    image = scan()
    np.save(tmp_path / "image.npy", image)
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            FRESH_PROCESS,
            path,
            str(tmp_path / "image.npy"),
            str(tmp_path / "labels.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    labels = np.load(tmp_path / "labels.npy")
    np.testing.assert_array_equal(labels, segment(segmenter, image))
    assert len(np.unique(labels)) > 1
    with zipfile.ZipFile(path) as zf:
        assert METADATA_ENTRY in zf.namelist()


@pytest.mark.parametrize("target", [1.5, None])
def test_probabilities_on_the_input_grid(target):
    segmenter = make_segmenter()
    image = scan()
    # A voxel order other than RAS+: the probabilities follow the labels.
    affine = np.array([[0, -1.0, 0, 5], [1.0, 0, 0, -3], [0, 0, 1.0, 2], [0, 0, 0, 1]])
    labels, probabilities = segment(
        segmenter,
        image,
        affine=affine,
        target_voxel_size=target,
        return_probabilities=True,
    )
    assert probabilities.shape == (*image.shape, 5)
    assert probabilities.dtype == np.float32
    assert probabilities.min() >= 0 and probabilities.max() <= 1 + 1e-5
    np.testing.assert_array_equal(
        labels, np.asarray(LABELS)[np.argmax(probabilities, axis=-1)]
    )
    np.testing.assert_array_equal(
        labels, segment(segmenter, image, affine=affine, target_voxel_size=target)
    )


def test_probabilities_with_nearest_interpolation():
    segmenter = make_segmenter(interpolation="nearest")
    labels, probabilities = segment(segmenter, scan(), return_probabilities=True)
    assert probabilities.shape == (*labels.shape, 5)
    # Without clean-up and flip the channels sum to 1 (linear resampling
    # keeps sums).
    _, plain = segment(
        segmenter,
        scan(),
        smoothing_sigma=0.0,
        keep_largest_component=False,
        return_probabilities=True,
    )
    np.testing.assert_allclose(plain.sum(axis=-1), 1.0, atol=1e-4)


def test_non_finite_voxels():
    segmenter = make_segmenter()
    image = scan()
    image[3, 4, 5] = np.nan
    with pytest.raises(ValueError, match="1 non-finite voxel"):
        segment(segmenter, image)
    # Recorded, not pytest.warns: that re-emits the other warnings it sees,
    # e.g. NumPy's about torch tensors inside Keras's torch backend.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = segment(segmenter, image, nan_policy="zero")
    assert any(
        issubclass(w.category, UserWarning) and "set to 0" in str(w.message)
        for w in caught
    )
    assert labels.shape == image.shape
    with pytest.raises(ValueError, match="return_probabilities"):
        segment(segmenter, scan(), return_probabilities="yes")
