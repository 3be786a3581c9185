"""Tests for synthlayers.io: RAS+ orientation, NIfTI/MGH round trips."""

import itertools
import os

import nibabel
import numpy as np
import pytest

from synthlayers import io
from synthlayers.datasets import local_data_dir

SHARED_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")


def _data_dir():
    for candidate in (local_data_dir(), SHARED_DATA):
        if candidate and os.path.isfile(os.path.join(candidate, "vxm_test_scan.npz")):
            return candidate
    return None


def reoriented(ras, ras_affine, permutation, flips):
    """`ras` stored in another voxel order, and the affine of that order."""
    data = ras
    for axis, flip in enumerate(flips):
        if flip:
            data = np.flip(data, axis)
    data = np.transpose(data, permutation)
    # Voxel index j of the new array -> RAS index i of the old one.
    index_map = np.zeros((4, 4))
    index_map[3, 3] = 1
    for new_axis, old_axis in enumerate(permutation):
        if flips[old_axis]:
            index_map[old_axis, new_axis] = -1
            index_map[old_axis, 3] = ras.shape[old_axis] - 1
        else:
            index_map[old_axis, new_axis] = 1
    return np.ascontiguousarray(data), ras_affine @ index_map


@pytest.fixture
def ras_volume(rng):
    data = rng.normal(size=(5, 6, 7)).astype("float32")
    affine = np.diag([1.5, 2.0, 2.5, 1.0])
    affine[:3, 3] = (-10, 20, 5)
    return data, affine


ORIENTATIONS = [
    (p, f)
    for p in itertools.permutations(range(3))
    for f in itertools.product((False, True), repeat=3)
    if p in ((0, 1, 2), (1, 2, 0), (0, 2, 1)) or f in ((False,) * 3, (True,) * 3)
]


@pytest.mark.parametrize("permutation, flips", ORIENTATIONS)
def test_to_ras_undoes_permutation_and_flip(ras_volume, permutation, flips):
    ras, affine = ras_volume
    data, file_affine = reoriented(ras, affine, permutation, flips)
    back, back_affine = io.to_ras(data, file_affine)
    np.testing.assert_array_equal(back, ras)
    np.testing.assert_allclose(back_affine, affine, atol=1e-12)
    np.testing.assert_array_equal(io.from_ras(back, file_affine), data)


def test_to_ras_carries_trailing_axes(ras_volume):
    ras, affine = ras_volume
    data, file_affine = reoriented(ras, affine, (2, 0, 1), (True, False, True))
    channels = np.stack([data, 2 * data], axis=-1)
    back, _ = io.to_ras(channels, file_affine)
    np.testing.assert_array_equal(back, np.stack([ras, 2 * ras], axis=-1))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mgz"])
@pytest.mark.parametrize(
    "permutation, flips",
    [((0, 1, 2), (False, False, False)), ((0, 2, 1), (True, False, True))],
)
def test_load_volume_same_ras_array(tmp_path, ras_volume, suffix, permutation, flips):
    ras, affine = ras_volume
    data, file_affine = reoriented(ras, affine, permutation, flips)
    path = io.save_volume(tmp_path / f"scan{suffix}", data, file_affine)
    volume = io.load_volume(path)
    np.testing.assert_array_equal(volume.data, ras)
    np.testing.assert_allclose(volume.affine, affine, atol=1e-4)
    np.testing.assert_allclose(volume.voxel_sizes, (1.5, 2.0, 2.5), atol=1e-5)
    np.testing.assert_allclose(volume.original_affine, file_affine, atol=1e-4)
    assert volume.original_shape == data.shape
    # Back to the file's voxel order, exactly.
    np.testing.assert_array_equal(volume.to_original(volume.data), data)


def test_load_volume_reports_orientation(tmp_path, ras_volume):
    ras, affine = ras_volume
    data, file_affine = reoriented(ras, affine, (0, 2, 1), (True, False, True))
    volume = io.load_volume(io.save_volume(tmp_path / "lia.nii.gz", data, file_affine))
    assert volume.original_axis_codes == ("L", "I", "A")
    assert io.axis_codes(volume.affine) == ("R", "A", "S")


def test_load_volume_matches_nibabel_canonical(tmp_path, ras_volume):
    ras, affine = ras_volume
    data, file_affine = reoriented(ras, affine, (1, 2, 0), (False, True, True))
    path = io.save_volume(tmp_path / "scan.nii.gz", data, file_affine)
    canonical = nibabel.as_closest_canonical(nibabel.load(path))
    volume = io.load_volume(path)
    np.testing.assert_array_equal(volume.data, np.asarray(canonical.dataobj))
    np.testing.assert_allclose(volume.affine, canonical.affine, atol=1e-5)


def test_load_volume_dtype(tmp_path, ras_volume):
    ras, affine = ras_volume
    labels = (ras > 0).astype("int64") * 41
    path = io.save_volume(tmp_path / "labels.nii.gz", labels, affine)
    assert nibabel.load(path).get_data_dtype() == np.int32
    volume = io.load_volume(path, dtype="int32")
    assert volume.data.dtype == np.int32
    np.testing.assert_array_equal(volume.data, labels)


def test_oblique_affine_keeps_world_positions(tmp_path):
    angle = np.deg2rad(20)
    rotation = np.array(
        [
            [np.cos(angle), 0, np.sin(angle)],
            [0, 1, 0],
            [-np.sin(angle), 0, np.cos(angle)],
        ]
    )
    affine = np.eye(4)
    affine[:3, :3] = rotation @ np.diag([1.0, 1.0, 2.0])
    affine = affine @ np.diag([-1, 1, -1, 1])  # a flipped, oblique grid
    data = np.arange(60, dtype="float32").reshape(3, 4, 5)
    ras, ras_affine = io.to_ras(data, affine)
    # Each value keeps its world position.
    for index in [(0, 0, 0), (2, 3, 4), (1, 2, 3)]:
        world = affine @ np.array([*index, 1.0])
        ras_index = np.linalg.solve(ras_affine, world)[:3]
        assert ras[tuple(np.round(ras_index).astype(int))] == data[index]


def test_vxm_affine_and_to_ras():
    array = np.zeros((4, 5, 6))
    array[3, 0, 5] = 1  # left, superior, anterior corner
    ras = io.vxm_test_scan_to_ras(array)
    assert ras.shape == (4, 6, 5)
    assert ras[0, 5, 4] == 1  # x = 0 is left, y = 5 anterior, z = 4 superior
    assert io.axis_codes(io.vxm_test_scan_affine()) == io.VXM_TEST_SCAN_AXIS_CODES


def _centroid(seg, labels):
    return np.argwhere(np.isin(seg, labels)).mean(axis=0)


@pytest.mark.skipif(_data_dir() is None, reason="vxm_test_scan.npz not found")
def test_vxm_test_scan_anatomy_in_ras():
    scan = np.load(os.path.join(_data_dir(), "vxm_test_scan.npz"))
    seg = io.vxm_test_scan_to_ras(scan["seg"]).astype("int32")
    vol = io.vxm_test_scan_to_ras(scan["vol"])
    assert seg.shape == vol.shape == (160, 224, 192)
    x, y, z = 0, 1, 2
    # Left hemisphere at lower x than the right one.
    for left, right in [(2, 41), (3, 42), (4, 43), (10, 49), (8, 47), (17, 53)]:
        assert _centroid(seg, left)[x] + 10 < _centroid(seg, right)[x]
    thalamus = _centroid(seg, [10, 49])
    cerebellum = _centroid(seg, [8, 47])
    brainstem = _centroid(seg, 16)
    cortex = _centroid(seg, [3, 42])
    # Cerebellum posterior and inferior to the thalamus; brainstem inferior.
    assert cerebellum[y] < thalamus[y] - 20 and cerebellum[z] < thalamus[z] - 20
    assert brainstem[z] < thalamus[z] - 20
    # The cortex lies mostly above the thalamus.
    assert cortex[z] > thalamus[z]
    # Intensities follow: white matter brighter than cortex (T1-weighted).
    assert vol[np.isin(seg, [2, 41])].mean() > vol[np.isin(seg, [3, 42])].mean()


@pytest.mark.skipif(_data_dir() is None, reason="vxm_test_scan.npz not found")
def test_vxm_test_scan_through_nifti(tmp_path):
    scan = np.load(os.path.join(_data_dir(), "vxm_test_scan.npz"))
    seg = scan["seg"].astype("int32")
    path = io.save_volume(tmp_path / "seg.nii.gz", seg, io.vxm_test_scan_affine())
    volume = io.load_volume(path)
    np.testing.assert_array_equal(volume.data, io.vxm_test_scan_to_ras(seg))
    assert volume.voxel_sizes == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    "affine, match",
    [
        (np.eye(3), "4 x 4"),
        (np.zeros((4, 4)), "invertible"),
        (np.full((4, 4), np.nan), "invertible"),
    ],
)
def test_bad_affine(affine, match):
    with pytest.raises(ValueError, match=match):
        io.to_ras(np.zeros((2, 2, 2)), affine)
    with pytest.raises(ValueError, match="Received: affine"):
        io.from_ras(np.zeros((2, 2, 2)), affine)


def test_bad_arrays(tmp_path):
    with pytest.raises(ValueError, match="at least 3 .* Received: array.shape"):
        io.to_ras(np.zeros((2, 2)), np.eye(4))
    with pytest.raises(ValueError, match="Received: ras_array.shape"):
        io.from_ras(np.zeros((2, 2)), np.eye(4))
    with pytest.raises(ValueError, match="fit in int32"):
        io.save_volume(tmp_path / "x.nii.gz", np.full((2, 2, 2), 2**40), np.eye(4))
    with pytest.raises(ValueError, match="three positive entries. Received: shape"):
        io.vxm_test_scan_affine((3, 4))
    path = tmp_path / "flat.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.zeros((3, 4), "float32"), np.eye(4)), path)
    with pytest.raises(ValueError, match="at least 3 dimensions. Received"):
        io.load_volume(path)


# --- Displacement fields ---------------------------------------------------------


def test_displacement_field_nifti_is_a_ras_mm_vector_image(tmp_path, rng):
    # An LIA grid with 2 mm voxels along its first axis.
    affine = np.array(
        [[-2.0, 0, 0, 10], [0, 0, 1.0, -5], [0, -1.0, 0, 7], [0, 0, 0, 1]]
    )
    displacement = rng.normal(size=(4, 5, 6, 3)).astype("float32")
    path = io.save_displacement_field(tmp_path / "warp.nii.gz", displacement, affine)
    image = nibabel.load(path)
    assert image.shape == (4, 5, 6, 1, 3)
    assert image.get_data_dtype() == np.float32
    assert image.header.get_intent()[0] == "displacement vector"
    assert int(image.header["intent_code"]) == 1006
    np.testing.assert_allclose(image.affine, affine)
    assert image.header.get_xyzt_units()[0] == "mm"
    stored = np.asarray(image.dataobj)[:, :, :, 0]
    # World vectors: voxel step along axis 0 is -2 mm in x, axis 1 is -1 mm
    # in z, axis 2 is +1 mm in y.
    expected = np.stack(
        [
            -2 * displacement[..., 0],
            displacement[..., 2],
            -displacement[..., 1],
        ],
        -1,
    )
    np.testing.assert_allclose(stored, expected, rtol=1e-6)
    # The voxel x + d(x) is at the world point p + D(p).
    x = np.array([1, 2, 3])
    p = affine[:3, :3] @ x + affine[:3, 3]
    target = affine[:3, :3] @ (x + displacement[1, 2, 3]) + affine[:3, 3]
    np.testing.assert_allclose(p + stored[1, 2, 3], target, rtol=1e-5)


def test_displacement_field_round_trip_in_ras(tmp_path, rng):
    affine = np.array(
        [[-2.0, 0, 0, 10], [0, 0, 1.0, -5], [0, -1.0, 0, 7], [0, 0, 0, 1]]
    )
    displacement = rng.normal(size=(4, 5, 6, 3)).astype("float32")
    path = io.save_displacement_field(tmp_path / "warp.nii", displacement, affine)
    ras_voxels, ras_affine = io.load_displacement_field(path)
    ras_mm, _ = io.load_displacement_field(path, units="mm")
    # The same field on the RAS+ grid: reorder the voxels, re-express the
    # vectors along the RAS+ axes.
    data_ras, expected_affine = io.to_ras(displacement, affine)
    np.testing.assert_allclose(ras_affine, expected_affine)
    world = io.displacement_to_world(np.ascontiguousarray(data_ras), affine)
    np.testing.assert_allclose(ras_mm, world, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        ras_voxels, io.displacement_to_voxels(world, ras_affine), rtol=1e-5, atol=1e-6
    )
    assert ras_voxels.shape == (4, 6, 5, 3)
    # Writing in mm gives the same file content.
    again = io.save_displacement_field(
        tmp_path / "again.nii", ras_mm, ras_affine, units="mm"
    )
    np.testing.assert_allclose(io.load_displacement_field(again)[0], ras_voxels)


def test_displacement_field_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError, match="displacement"):
        io.save_displacement_field(tmp_path / "w.nii", np.zeros((4, 4, 2)), np.eye(4))
    with pytest.raises(ValueError, match="units"):
        io.save_displacement_field(
            tmp_path / "w.nii", np.zeros((2, 2, 2, 3)), np.eye(4), units="cm"
        )
    with pytest.raises(ValueError, match="path"):
        io.save_displacement_field(
            tmp_path / "w.mgz", np.zeros((2, 2, 2, 3)), np.eye(4)
        )
