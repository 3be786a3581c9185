"""Label maps: phantom, SynthSeg's files, preparation; the package layout."""

import os
import pathlib
import re

import keras
import nibabel
import numpy as np
import pytest

from synthlayers import data
from synthlayers import datasets
from synthlayers.freesurfer import LEFT_RIGHT_PAIRS

# Every public name `synthlayers.datasets` had before it became a package.
DATASETS_NAMES = (
    "BASE_URLS CACHE_DIR_ENV DATA_DIR_ENV DATA_FILES DataFile DownloadError "
    "LabelMapFeed PHANTOM_LABELS SYNTHSEG_COMMIT SYNTHSEG_LABEL_FILES "
    "SYNTHSEG_LABEL_MAP_FILES VOXELMORPH_COMMIT VXM_TEST_SCAN_FILE bounding_box "
    "compact_label_arguments compact_labels crop_to_bounding_box fetch_data "
    "fetch_synthseg_label_maps load_label_map load_vxm_test_scan local_cache_dir "
    "local_data_dir phantom_label_map resample_label_map "
    "synthseg_generation_labels synthseg_label_map_paths"
).split()


def _data_dir():
    """The real data directory ($SYNTHLAYERS_DATA_DIR), or skip."""
    data_dir = datasets.local_data_dir()
    if data_dir is None or not os.path.isdir(os.path.join(data_dir, "synthseg_labels")):
        pytest.skip(
            f"SynthSeg data not found: set ${datasets.DATA_DIR_ENV} "
            f"(received: {data_dir!r})"
        )
    return data_dir


def test_every_public_name_is_where_it_was():
    for name in DATASETS_NAMES:
        assert getattr(datasets, name) is getattr(data, name), name
    assert sorted(datasets.__all__) == sorted(DATASETS_NAMES)


def test_package_does_not_look_for_a_shared_data_folder():
    # `shared/data` next to the checkout exists on development machines only;
    # users get the download, $SYNTHLAYERS_DATA_DIR or their own `data_dir`.
    package = pathlib.Path(data.__file__).parent.parent
    pattern = re.compile(r"""shared["']?\s*,\s*["']data|shared/data""")
    hits = [
        str(path.relative_to(package))
        for path in sorted(package.rglob("*.py"))
        if pattern.search(path.read_text())
    ]
    assert hits == []


def test_local_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    assert datasets.local_data_dir() is None
    assert datasets.local_data_dir(tmp_path) == str(tmp_path)
    monkeypatch.setenv(datasets.DATA_DIR_ENV, "/somewhere")
    assert datasets.local_data_dir() == "/somewhere"
    assert datasets.local_data_dir(tmp_path) == str(tmp_path)


def test_load_label_map_reorients_to_ras(tmp_path, rng):
    labels = rng.integers(0, 5, (6, 7, 8)).astype("int16")
    zooms = np.array([1.0, 2.0, 3.0])
    canonical = nibabel.Nifti1Image(labels, np.diag([*zooms, 1.0]))
    nibabel.save(canonical, tmp_path / "ras.nii.gz")
    # The same image stored as (A, L, I) axes: permute and flip the array and
    # give the affine that maps the new voxel indices to the same world points.
    stored = np.flip(np.transpose(labels, (1, 0, 2)), axis=(1, 2))
    # old index (i, j, k) = (n - 1 - new_j, new_i, m - 1 - new_k)
    flip_permute = np.array(
        [
            [0, -1, 0, labels.shape[0] - 1],
            [1, 0, 0, 0],
            [0, 0, -1, labels.shape[2] - 1],
            [0, 0, 0, 1],
        ],
        dtype=float,
    )
    affine = canonical.affine @ flip_permute
    assert nibabel.aff2axcodes(affine) == ("A", "L", "I")
    nibabel.save(nibabel.Nifti1Image(stored, affine), tmp_path / "ali.nii.gz")
    nibabel.save(
        nibabel.Nifti1Image(stored.astype("float32"), affine),
        tmp_path / "ali_float.nii.gz",
    )
    for name in ("ras.nii.gz", "ali.nii.gz", "ali_float.nii.gz"):
        loaded, voxel_sizes = datasets.load_label_map(tmp_path / name)
        assert loaded.dtype == np.int32
        np.testing.assert_array_equal(loaded, labels)
        np.testing.assert_allclose(voxel_sizes, zooms)


def test_synthseg_label_map_paths(tmp_path):
    data_dir = _data_dir()
    paths = datasets.synthseg_label_map_paths(data_dir)
    assert len(paths) == 20
    assert paths == sorted(paths)
    assert all(os.path.basename(p).startswith("training_seg_") for p in paths)
    with pytest.raises(ValueError, match="synthseg_label_maps"):
        datasets.synthseg_label_map_paths(tmp_path)


def test_synthseg_label_map_loads():
    data_dir = _data_dir()
    labels, voxel_sizes = datasets.load_label_map(
        datasets.synthseg_label_map_paths(data_dir)[0]
    )
    assert labels.shape == (256, 256, 256) and labels.dtype == np.int32
    assert voxel_sizes == (1.0, 1.0, 1.0)
    generation_labels, _ = datasets.synthseg_generation_labels(data_dir)
    assert set(np.unique(labels)) <= set(generation_labels.tolist())
    # RAS+: left labels (2, 3: left white matter, cortex) on the low side of
    # the first axis, right labels (41, 42) on the high side.
    assert np.mean(np.nonzero(np.isin(labels, (41, 42)))[0]) > 128
    assert np.mean(np.nonzero(np.isin(labels, (2, 3)))[0]) < 128


def test_synthseg_generation_labels(tmp_path):
    data_dir = _data_dir()
    labels, classes = datasets.synthseg_generation_labels(data_dir)
    assert labels.shape == classes.shape == (54,)
    assert labels.dtype == classes.dtype == np.int32
    assert labels[0] == 0 and classes[0] == 0
    assert len(set(labels.tolist())) == 54
    assert set(classes.tolist()) == set(range(classes.max() + 1))
    # SynthSeg's order: 18 labels without a side, 18 left, the 18 matching right.
    neutral, left, right = labels[:18], labels[18:36], labels[36:]
    for a, b in zip(left, right):
        if int(a) in LEFT_RIGHT_PAIRS:
            assert LEFT_RIGHT_PAIRS[int(a)] == b
    assert not set(neutral.tolist()) & set(LEFT_RIGHT_PAIRS)
    # Similar tissues of one side share a class; left and right do the same
    # grouping in separate classes.
    class_of = dict(zip(labels.tolist(), classes.tolist()))
    assert class_of[4] == class_of[5]  # lateral, inferior lateral ventricle
    assert class_of[43] == class_of[44]
    assert class_of[2] != class_of[41]
    left_classes, right_classes = classes[18:36], classes[36:]
    assert not set(left_classes.tolist()) & set(right_classes.tolist())
    same_left = left_classes[:, None] == left_classes[None, :]
    same_right = right_classes[:, None] == right_classes[None, :]
    np.testing.assert_array_equal(same_left, same_right)
    # Contrast-specific classes: left and right share them.
    labels_cs, classes_cs = datasets.synthseg_generation_labels(
        data_dir, contrast_specific=True
    )
    np.testing.assert_array_equal(labels_cs, labels)
    np.testing.assert_array_equal(classes_cs[18:36], classes_cs[36:])
    with pytest.raises(ValueError, match="synthseg_labels"):
        datasets.synthseg_generation_labels(tmp_path)


def test_phantom_is_symmetric_and_labelled():
    labels = datasets.phantom_label_map((40, 36, 32))
    assert set(np.unique(labels)) == {0, 2, 3, 4, 10, 24, 41, 42, 43, 49}
    flipped = labels[::-1]
    swap = {2: 41, 41: 2, 3: 42, 42: 3, 4: 43, 43: 4, 10: 49, 49: 10}
    np.testing.assert_array_equal(
        np.vectorize(lambda v: swap.get(v, v))(flipped), labels
    )


# --- Preparation: resampling, compact labels, bounding box -------------------


def test_resample_halving_keeps_odd_voxels(rng):
    labels = rng.integers(0, 50, (8, 6, 4)).astype("int16")
    out = datasets.resample_label_map(labels, (1.0, 1.0, 1.0), 2.0)
    assert out.dtype == labels.dtype
    np.testing.assert_array_equal(out, labels[1::2, 1::2, 1::2])
    # Per-axis: halve the first axis only (input 0.5 mm -> 1 mm).
    out = datasets.resample_label_map(labels, (0.5, 1.0, 1.0), 1.0)
    np.testing.assert_array_equal(out, labels[1::2])


def test_resample_doubling_repeats_voxels(rng):
    labels = rng.integers(0, 50, (3, 4, 5)).astype("int32")
    out = datasets.resample_label_map(labels, (2.0, 2.0, 1.0), (1.0, 1.0, 1.0))
    np.testing.assert_array_equal(out, np.repeat(np.repeat(labels, 2, 0), 2, 1))


def test_resample_centred_field_of_view():
    # 5 voxels of 1 mm -> 3 voxels of 2 mm centred on the same point: output
    # centres at 0.5, 2.5, 4.5 mm fall in input voxels 0, 2, 4.
    out = datasets.resample_label_map(np.arange(5), (1.0,), 2.0)
    np.testing.assert_array_equal(out, [0, 2, 4])
    # A matching voxel size returns the input itself.
    labels = np.arange(5)
    assert datasets.resample_label_map(labels, [1.0], 1.0) is labels
    # NumPy voxel sizes, as from a header, work too.
    out = datasets.resample_label_map(labels, np.array([1.0]), np.float64(2.0))
    np.testing.assert_array_equal(out, [0, 2, 4])


@pytest.mark.parametrize(
    "shape, sizes, target",
    [
        ((12, 8, 6), (1.0, 1.0, 1.0), (1.5, 2.0, 0.5)),
        ((9, 12), (1.0, 2.0), (3.0, 1.5)),
        ((8, 6, 4), (1.0, 1.0, 1.0), (2 / 3, 0.75, 4.0)),
    ],
)
def test_resample_matches_scipy_zoom(rng, shape, sizes, target):
    from scipy import ndimage

    # Sizes chosen so that the output grids span the input's field of view
    # exactly, where scipy's grid_mode zoom uses the same convention.
    labels = rng.integers(0, 100, shape).astype("int32")
    out = datasets.resample_label_map(labels, sizes, target)
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
    assert set(np.unique(out)) <= set(np.unique(labels))


def test_resample_is_the_package_convention(rng):
    from synthlayers.resampling import resample_labels

    labels = rng.integers(0, 9, (7, 10, 5)).astype("uint8")
    for sizes, target in (((1.0, 1.0, 1.0), 1.7), ((0.8, 1.2, 3.0), (2.0, 0.5, 1.0))):
        np.testing.assert_array_equal(
            datasets.resample_label_map(labels, sizes, target),
            resample_labels(labels, sizes, target),
        )


@pytest.mark.parametrize(
    "voxel_sizes, target, name",
    [
        ((1.0, 1.0), 1.0, "voxel_sizes"),
        ((1.0, 0.0, 1.0), 1.0, "voxel_sizes"),
        ((1.0, 1.0, 1.0), -2.0, "target_voxel_size"),
        ((1.0, 1.0, 1.0), (1.0, 2.0), "target_voxel_size"),
        ((1.0, 1.0, 1.0), "2", "target_voxel_size"),
    ],
)
def test_resample_bad_arguments(voxel_sizes, target, name):
    with pytest.raises(ValueError, match=f"Received: {name}="):
        datasets.resample_label_map(np.zeros((2, 2, 2), "int32"), voxel_sizes, target)


def test_compact_labels_by_position():
    generation_labels = [0, 24, 41, 2, -1]
    labels = np.array([[0, 41, 2], [24, 2, -1]], "int32")
    out = datasets.compact_labels(labels, generation_labels)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, [[0, 2, 3], [1, 3, 4]])
    np.testing.assert_array_equal(np.asarray(generation_labels)[out], labels)
    # Many labels need a wider type; large label values take another path.
    many = np.arange(300) * 7
    out = datasets.compact_labels(many[::-1].reshape(15, 20), many)
    assert out.dtype == np.int16
    np.testing.assert_array_equal(out.ravel(), np.arange(300)[::-1])
    huge = np.array([0, 2**30, 5], "int64")
    np.testing.assert_array_equal(
        datasets.compact_labels(huge, [5, 2**30, 0]), [2, 1, 0]
    )


def test_compact_labels_lists_unknown_labels():
    labels = np.array([0, 2, 77, 41, 80, 2**30], "int64")
    with pytest.raises(ValueError, match=r"3 label value\(s\).*: 77, 80, 1073741824"):
        datasets.compact_labels(labels, [0, 2, 41])
    with pytest.raises(ValueError, match="label value.*: 77, 80"):
        datasets.compact_labels(labels[:5].astype("uint8"), [0, 2, 41])
    with pytest.raises(ValueError, match="Received: generation_labels="):
        datasets.compact_labels(labels, [0, 2, 2])
    with pytest.raises(ValueError, match="Received: generation_labels="):
        datasets.compact_labels(labels, [0.0, 2.0])
    with pytest.raises(ValueError, match="Received: label_map"):
        datasets.compact_labels(labels.astype("float32"), [0, 2, 41])


def test_compact_label_arguments_give_the_same_targets():
    from synthlayers.layers import LabelsToImage

    generation_labels = [0, 24, 2, 3, 41, 42, 17]  # 17 has no right partner
    classes = [0, 1, 2, 3, 2, 3, 4]
    output_labels = [0, 2, 3, 41, 42]
    arguments = datasets.compact_label_arguments(generation_labels, output_labels)
    assert arguments["labels"] == list(range(7))
    assert arguments["output_labels"] == {0: 0, 2: 2, 3: 3, 4: 41, 5: 42}
    assert arguments["label_swap"] == {2: 4, 3: 5}
    everything = datasets.compact_label_arguments(generation_labels)
    assert everything["output_labels"] == {
        i: v for i, v in enumerate(generation_labels)
    }
    mapped = datasets.compact_label_arguments(generation_labels, {41: 2, 2: 2})
    assert mapped["output_labels"] == {4: 2, 2: 2}
    assert datasets.compact_label_arguments([0, 24])["label_swap"] is None
    with pytest.raises(ValueError, match=r"missing from `generation_labels`: \[77\]"):
        datasets.compact_label_arguments(generation_labels, [0, 77])

    # Synthesis from the FreeSurfer map and from its compacted copy, with the
    # same seed and flips switched on: the same targets come out.
    values = np.asarray(generation_labels)
    label_map = values[np.random.default_rng(0).integers(0, 7, (2, 24, 20))]
    compacted = datasets.compact_labels(label_map, generation_labels)
    common = dict(output_shape=(16, 16), seed=7, flip_probability=1.0)
    original = LabelsToImage.synthseg(
        generation_labels, classes, output_labels=output_labels, **common
    )(label_map[..., None])
    from_indices = LabelsToImage.synthseg(classes=classes, **arguments, **common)(
        compacted[..., None].astype("int32")
    )
    for key in ("segmentation_masks", "images"):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(from_indices[key]),
            keras.ops.convert_to_numpy(original[key]),
            rtol=1e-5,
            atol=1e-5,
        )


def test_crop_to_bounding_box():
    labels = np.zeros((8, 9, 10), "uint8")
    labels[2, 3:5, 4] = 3
    labels[4, 4, 7] = 1
    np.testing.assert_array_equal(
        datasets.crop_to_bounding_box(labels), labels[2:5, 3:5, 4:8]
    )
    box = datasets.bounding_box(labels, margin=(1, 0, 3))
    assert box == (slice(1, 6), slice(3, 5), slice(1, 10))  # clipped at 10
    cropped = datasets.crop_to_bounding_box(labels, margin=2)
    assert cropped.shape == (7, 6, 8) and cropped.flags["C_CONTIGUOUS"]
    assert cropped.dtype == np.uint8 and np.sum(cropped) == np.sum(labels)
    other = np.full((4, 5), 7, "int32")
    other[1:3, 2] = 0
    assert datasets.bounding_box(other, background=7) == (slice(1, 3), slice(2, 3))
    with pytest.raises(ValueError, match="no voxel other than background"):
        datasets.crop_to_bounding_box(np.zeros((3, 3), "int32"))
    with pytest.raises(ValueError, match="Received: margin="):
        datasets.crop_to_bounding_box(labels, margin=-1)
    with pytest.raises(ValueError, match="Received: margin="):
        datasets.crop_to_bounding_box(labels, margin=(1, 2))
    with pytest.raises(ValueError, match=r"Received: margin=\(1, -1, 0\)"):
        datasets.crop_to_bounding_box(labels, margin=(1, -1, 0))


def test_bounding_box_of_chosen_labels():
    """The box of some labels only (the brain in a whole-head map)."""
    labels = np.zeros((8, 9, 10), "int32")
    labels[1:7, 1:8, 1:9] = 258  # "head"
    labels[3:5, 4:6, 2:7] = 2  # "brain"
    labels[4, 6, 5] = 41
    box = datasets.bounding_box(labels, labels=[2, 41])
    assert box == (slice(3, 5), slice(4, 7), slice(2, 7))
    cropped = datasets.crop_to_bounding_box(labels, margin=1, labels=[2, 41])
    np.testing.assert_array_equal(cropped, labels[2:6, 3:8, 1:8])
    with pytest.raises(ValueError, match=r"among labels=\[17\]"):
        datasets.bounding_box(labels, labels=[17])
    with pytest.raises(ValueError, match="Received: labels="):
        datasets.bounding_box(labels, labels=[2.5])


def test_real_map_prepared():
    data_dir = _data_dir()
    path = datasets.fetch_synthseg_label_maps(1, data_dir=data_dir)[0]
    assert path == datasets.synthseg_label_map_paths(data_dir)[0]
    labels, voxel_sizes = datasets.load_label_map(path)
    generation_labels, _ = datasets.synthseg_generation_labels(data_dir)
    cropped = datasets.crop_to_bounding_box(labels, margin=2)
    assert all(c < s for c, s in zip(cropped.shape, labels.shape))
    compacted = datasets.compact_labels(cropped, generation_labels)
    assert compacted.dtype == np.uint8
    np.testing.assert_array_equal(generation_labels[compacted], cropped)
    assert np.sum(cropped != 0) == np.sum(labels != 0)
    half = datasets.resample_label_map(compacted, voxel_sizes, 2.0)
    assert half.shape == tuple((s + 1) // 2 for s in compacted.shape)


def test_vxm_test_scan():
    data_dir = _data_dir()
    image, segmentation = datasets.load_vxm_test_scan(data_dir=data_dir)
    assert image.shape == segmentation.shape == (160, 224, 192)
    assert image.dtype == np.float32 and segmentation.dtype == np.int32
    assert 0 <= image.min() and image.max() <= 1
    assert {0, 2, 24, 41, 77, 251} <= set(np.unique(segmentation).tolist())

    def centre(labels):
        return np.array([a.mean() for a in np.nonzero(np.isin(segmentation, labels))])

    # RAS+: left hemisphere (2, 3) low on the first axis, caudate (11, 50)
    # anterior of the cerebellum (8, 47), thalamus (10, 49) above the
    # brainstem (16).
    assert centre((2, 3))[0] < 80 < centre((41, 42))[0]
    assert centre((11, 50))[1] > centre((8, 47))[1] + 40
    assert centre((10, 49))[2] > centre((16,))[2] + 20
    raw_image, raw_segmentation = datasets.load_vxm_test_scan(
        data_dir=data_dir, canonical=False
    )
    assert raw_segmentation.shape == (160, 192, 224)
    np.testing.assert_array_equal(
        raw_segmentation, np.transpose(segmentation[::-1, :, ::-1], (0, 2, 1))
    )
    np.testing.assert_array_equal(
        raw_image, np.transpose(image[::-1, :, ::-1], (0, 2, 1))
    )


def test_load_label_map_needs_three_axes(tmp_path):
    nibabel.save(
        nibabel.Nifti1Image(np.zeros((4, 5), "int16"), np.eye(4)), tmp_path / "flat.nii"
    )
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        datasets.load_label_map(tmp_path / "flat.nii")


@pytest.mark.parametrize(
    "function, arguments",
    [
        (
            datasets.resample_label_map,
            {"voxel_sizes": (1.0,), "target_voxel_size": 2.0},
        ),
        (datasets.compact_labels, {"generation_labels": [0, 1, 2, 3, 4, 5, 6, 7]}),
        (datasets.bounding_box, {"margin": 1}),
        (datasets.crop_to_bounding_box, {"margin": 1}),
    ],
)
def test_labels_map_is_a_deprecated_alias(function, arguments):
    label_map = np.array([0, 0, 3, 4, 5, 0, 0, 7])
    expected = function(label_map, **arguments)
    with pytest.warns(
        DeprecationWarning, match="`labels_map` is deprecated.*`label_map`"
    ):
        aliased = function(labels_map=label_map, **arguments)
    np.testing.assert_array_equal(np.asarray(aliased), np.asarray(expected))
    with pytest.raises(ValueError, match="pass only `label_map`"):
        function(label_map=label_map, labels_map=label_map, **arguments)
    with pytest.raises(ValueError, match="pass only `label_map`"):
        function(label_map, labels_map=label_map, **arguments)
