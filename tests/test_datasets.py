import os

import nibabel
import numpy as np
import pytest

from synthlayers import datasets
from synthlayers.freesurfer import LEFT_RIGHT_PAIRS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))


def _data_dir():
    """The real data directory; sets $SYNTHLAYERS_DATA_DIR if unset, or skips."""
    os.environ.setdefault(datasets.DATA_DIR_ENV, SHARED_DATA)
    data_dir = datasets.local_data_dir()
    if not os.path.isdir(os.path.join(data_dir, "synthseg_labels")):
        pytest.skip(f"SynthSeg data not found in {data_dir}")
    return data_dir


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
