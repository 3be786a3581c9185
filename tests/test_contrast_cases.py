"""Contrast test cases of a real scan (`synthlayers.contrast_cases`)."""

import json
import os

import numpy as np
import pytest

from synthlayers import contrast_cases
from synthlayers import evaluation
from synthlayers.contrast_cases import CONTRAST_CASES
from synthlayers.contrast_cases import make_contrast_case
from synthlayers.contrast_cases import make_contrast_cases

# Tissue intensities of the phantom, T1-like: CSF < GM < WM.
INTENSITIES = {"csf": 0.1, "gm": 0.45, "wm": 0.7}
TISSUES = contrast_cases.TISSUE_LABELS


def phantom(size=32, noise=0.02, seed=0):
    """A brain-like sphere: ventricles, white matter, a cortex; two hemispheres.

    Intensities quantised to 1/255 like the test scan (equal intensities
    occur in different tissues); FreeSurfer labels (left: x < size / 2).
    """
    grid = np.indices((size,) * 3) - (size - 1) / 2
    radius = np.sqrt(np.sum(grid**2, axis=0))
    left = grid[0] < 0
    image = np.zeros((size,) * 3)
    segmentation = np.zeros((size,) * 3, "int32")
    shells = (("csf", 0, 3.5), ("wm", 3.5, 8.5), ("gm", 8.5, 12.5))
    for tissue, inner, outer in shells:
        inside = (radius >= inner) & (radius < outer)
        image[inside] = INTENSITIES[tissue]
        segmentation[inside] = np.where(left, *TISSUES[tissue])[inside]
    brain = segmentation > 0
    rng = np.random.default_rng(seed)
    image[brain] += noise * rng.standard_normal(int(brain.sum()))
    image = np.where(brain, np.clip(np.round(image * 255) / 255, 1 / 255, 1), 0)
    return image.astype("float32"), segmentation


def tissue_medians(image, segmentation):
    return {
        tissue: float(np.median(image[np.isin(segmentation, labels)]))
        for tissue, labels in TISSUES.items()
    }


def neighbour_energy(image, axis):
    """Mean squared difference between neighbours along `axis`."""
    return float(np.mean(np.diff(image.astype("float64"), axis=axis) ** 2))


@pytest.fixture(scope="module")
def scan():
    return phantom()


@pytest.fixture(scope="module")
def cases(scan):
    return make_contrast_cases(*scan)


def test_every_case_float32_in_unit_range_of_the_input_shape(scan, cases):
    image, _ = scan
    assert tuple(cases) == CONTRAST_CASES
    for name, case in cases.items():
        assert case.dtype == np.float32 and case.shape == image.shape, name
        assert case.min() == 0 and case.max() == 1, name  # min-max


def test_deterministic(scan, cases):
    again = make_contrast_cases(*scan)
    for name in CONTRAST_CASES:
        assert np.array_equal(cases[name], again[name]), name
        single = make_contrast_case(*scan, name)
        assert np.array_equal(cases[name], single), name


def test_t1_is_the_scan_min_max(scan, cases):
    image, _ = scan
    expected = (image - image.min()) / (image.max() - image.min())
    np.testing.assert_allclose(cases["t1"], expected, atol=1e-7)


def test_inverted_orders_fluid_bright_white_matter_dark(scan, cases):
    image, segmentation = scan
    medians = tissue_medians(cases["inverted"], segmentation)
    assert medians["wm"] < medians["gm"] < medians["csf"]
    # The linear inversion between the brain's 0.5/99.5th percentiles.
    brain = image > 0
    low, high = np.percentile(image[brain] / image.max(), (0.5, 99.5))
    expected = np.clip((high - image / image.max()) / (high - low), 0, 1)
    np.testing.assert_allclose(cases["inverted"][brain], expected[brain], atol=1e-6)
    assert np.all(cases["inverted"][~brain] == 0)


def test_remapped_grey_matter_brightest_and_non_monotonic(scan, cases):
    image, segmentation = scan
    remapped = cases["remapped"]
    medians = tissue_medians(remapped, segmentation)
    assert medians["gm"] > medians["wm"] > medians["csf"]
    # The input's order is CSF < GM < WM: the mapping rises then falls.
    original = tissue_medians(image, segmentation)
    assert original["csf"] < original["gm"] < original["wm"]
    brain = image > 0
    values, outputs = image[brain], remapped[brain]
    order = np.argsort(values, kind="stable")
    steps = np.diff(outputs[order])
    assert steps.max() > 0 and steps.min() < 0
    # Pointwise: equal intensities give equal outputs whatever their label.
    for value in np.unique(values):
        assert np.ptp(outputs[values == value]) == 0
    assert np.all(remapped[~brain] == 0)


def test_remapped_control_points_through_the_curve():
    # A scan with exact tissue intensities: the curve's values at them.
    image, segmentation = phantom(noise=0.0)
    remapped = make_contrast_case(image, segmentation, "remapped")
    for tissue, labels in TISSUES.items():
        inside = np.isin(segmentation, labels)
        expected = contrast_cases.REMAPPED_VALUES[tissue]
        np.testing.assert_allclose(remapped[inside], expected, atol=1e-6)


def test_segmentation_only_places_the_control_points(scan):
    # Other labels with the same tissue medians (hemispheres swapped) change
    # nothing: the image is a function of the intensities, not of the labels;
    # the other cases do not read the segmentation at all.
    image, segmentation = scan
    swapped = {2: 41, 41: 2, 3: 42, 42: 3, 4: 43, 43: 4}
    other = np.vectorize(lambda v: swapped.get(v, v))(segmentation)
    assert not np.array_equal(other, segmentation)
    assert np.array_equal(
        make_contrast_case(image, segmentation, "remapped"),
        make_contrast_case(image, other, "remapped"),
    )
    for name in ("t1", "inverted", "spacing_3mm", "slices_5mm"):
        assert np.array_equal(
            make_contrast_case(image, segmentation, name),
            make_contrast_case(image, None, name),
        )


def test_background_stays_zero_in_the_intensity_cases(scan, cases):
    image, _ = scan
    for name in ("t1", "inverted", "remapped"):
        assert np.all(cases[name][image == 0] == 0), name


def test_spacing_3mm_removes_high_frequencies_keeps_low_ones(scan, cases):
    from scipy import ndimage

    t1, low_res = cases["t1"], cases["spacing_3mm"]
    for axis in range(3):
        assert neighbour_energy(low_res, axis) < 0.35 * neighbour_energy(t1, axis)
    # Low frequencies: the smoothed images agree (up to the min-max scale).
    smooth = [ndimage.gaussian_filter(a.astype("float64"), 4.0) for a in (t1, low_res)]
    assert np.corrcoef(smooth[0].ravel(), smooth[1].ravel())[0, 1] > 0.98


def test_slices_5mm_blur_the_slice_axis_of_the_phantom(scan, cases):
    t1, slices = cases["t1"], cases["slices_5mm"]
    ratios = [neighbour_energy(slices, a) / neighbour_energy(t1, a) for a in range(3)]
    assert ratios[2] < 0.15
    # In-plane edges stay sharp: the noise, averaged across slices, goes.
    assert ratios[0] > 2 * ratios[2] and ratios[1] > 2 * ratios[2]


@pytest.mark.parametrize("slice_axis", [0, 1, 2])
def test_slices_5mm_blur_along_slice_axis_only(slice_axis):
    # Stripes across the slices vanish; stripes within them stay exactly.
    size = 36
    stripes = (np.arange(size) % 2).astype("float32") + 0.5
    for axis in range(3):
        shape = [1, 1, 1]
        shape[axis] = size
        image = np.broadcast_to(stripes.reshape(shape), (size,) * 3).copy()
        result = make_contrast_case(image, None, "slices_5mm", slice_axis=slice_axis)
        if axis == slice_axis:
            interior = np.take(result, np.arange(10, 26), axis=axis)
            assert np.ptp(interior) < 0.02  # 1-voxel stripes averaged out
        else:
            expected = (image - image.min()) / np.ptp(image)
            np.testing.assert_allclose(result, expected, atol=1e-6)


@pytest.mark.parametrize("spacing", [3.0, 3.75, 5.0])
def test_acquisition_reproduces_constants_and_ramps(spacing):
    # Blur then sampling then linear interpolation: exact on a linear ramp
    # away from the edges (the blur's window and the constant tail).
    size = 60
    constant = np.full((size, 6, 5), 0.7)
    result = contrast_cases._simulate_acquisition(constant, (spacing, 1.0, 1.0))
    np.testing.assert_allclose(result, 0.7, rtol=1e-12)
    ramp = np.broadcast_to(
        np.arange(size, dtype="float64")[:, None, None], (size, 6, 5)
    )
    result = contrast_cases._simulate_acquisition(ramp, (spacing, 1.0, 1.0))
    margin = int(np.ceil(4 * 0.75 * spacing)) + 1
    last = np.floor((size - 1) / spacing) * spacing
    interior = slice(margin, int(last) - margin)
    np.testing.assert_allclose(result[interior], ramp[interior], atol=1e-9)
    # Beyond the last sample: constant, that sample's value.
    tail = np.arange(size) > last
    if tail.any():
        assert np.ptp(result[tail]) < 1e-12


def test_acquisition_samples_every_spacing_voxels():
    # Without blur the samples are the voxels 0, 3, 6...: a signal linear
    # between them is reproduced wherever samples surround it.
    values = np.sin(np.arange(31) / 4.0)
    down = contrast_cases._interpolate_axis(values[:, None], np.arange(11) * 3, 0)
    np.testing.assert_array_equal(down[:, 0], values[::3])
    up = contrast_cases._interpolate_axis(down, np.arange(31) / 3, 0)[:, 0]
    np.testing.assert_allclose(up[::3], values[::3])
    np.testing.assert_allclose(up[1::3], (2 * values[0:-1:3] + values[3::3]) / 3)


def test_voxel_size_sets_the_spacing_in_voxels(scan):
    image, segmentation = scan
    # A 3 mm scan is already at 3 mm: unchanged; a 5 mm slice axis too.
    t1 = make_contrast_case(image, segmentation, "t1")
    same = make_contrast_case(image, segmentation, "spacing_3mm", voxel_size=3.0)
    np.testing.assert_allclose(same, t1, atol=1e-7)
    slices = make_contrast_case(
        image, segmentation, "slices_5mm", voxel_size=(1.0, 1.0, 5.0)
    )
    np.testing.assert_allclose(slices, t1, atol=1e-7)
    # At 0.5 mm the 3 mm acquisition blurs more (6 voxels).
    finer = make_contrast_case(image, segmentation, "spacing_3mm", voxel_size=0.5)
    coarse = make_contrast_case(image, segmentation, "spacing_3mm")
    assert neighbour_energy(finer, 0) < neighbour_energy(coarse, 0)


def test_intensity_range_of_the_input_does_not_matter(scan):
    image, segmentation = scan
    for name in CONTRAST_CASES:
        np.testing.assert_allclose(
            make_contrast_case(image * 800 - 5, segmentation, name),
            make_contrast_case(image, segmentation, name),
            atol=2e-6,
            err_msg=name,
        )


@pytest.mark.parametrize(
    "arguments, match",
    [
        (dict(case="t2"), r"`case`.*Received: case='t2'"),
        (dict(case=None), r"`case`"),
        (dict(image=np.zeros((4, 4))), r"`image` to be a 3D.*Received: image with"),
        (dict(image=np.zeros((4, 4, 4, 1))), r"`image` to be a 3D"),
        (dict(image=np.full((4, 4, 4), np.nan)), r"finite.*Received"),
        (dict(image=np.zeros((4, 4, 4))), r"empty brain mask"),
        (dict(image=np.ones((4, 4, 4), bool)), r"real numbers.*Received"),
        (dict(segmentation=np.ones((4, 4, 5), int)), r"shape of `image`.*Received"),
        (dict(segmentation=np.zeros((4, 4, 4), int)), r"`segmentation` to label"),
        (dict(segmentation=np.full((4, 4, 4), 0.5)), r"integer label values"),
        (dict(voxel_size=0), r"`voxel_size`.*Received: voxel_size=0"),
        (dict(voxel_size=-1.0), r"`voxel_size`"),
        (dict(voxel_size=float("nan")), r"`voxel_size`"),
        (dict(voxel_size=(1, 1)), r"`voxel_size`"),
        (dict(voxel_size=True), r"`voxel_size`"),
        (dict(voxel_size="1"), r"`voxel_size`"),
        (dict(slice_axis=3), r"`slice_axis`.*Received: slice_axis=3"),
        (dict(slice_axis=-1), r"`slice_axis`"),
        (dict(slice_axis=True), r"`slice_axis`"),
        (dict(slice_axis=1.0), r"`slice_axis`"),
    ],
)
def test_value_errors(arguments, match):
    image = np.zeros((4, 4, 4))
    image[1:3, 1:3, 1:3] = 1.0
    kwargs = dict(image=image, segmentation=None, case="t1")
    kwargs.update(arguments)
    with pytest.raises(ValueError, match=match):
        make_contrast_case(**kwargs)


def test_remapped_value_errors(scan):
    image, segmentation = scan
    with pytest.raises(
        ValueError, match=r"`segmentation`.*Received: segmentation=None"
    ):
        make_contrast_case(image, None, "remapped")
    no_ventricles = np.where(np.isin(segmentation, (4, 43)), 24, segmentation)
    with pytest.raises(ValueError, match=r"CSF labels \(4, 43\)"):
        make_contrast_case(image, no_ventricles, "remapped")
    # A T2-like ordering cannot place the T1 control points.
    inverted = make_contrast_case(image, segmentation, "inverted")
    with pytest.raises(ValueError, match=r"CSF < grey matter < white matter"):
        make_contrast_case(inverted, segmentation, "remapped")


@pytest.mark.parametrize("cases", [(), ("t1", "t1"), "t2", ("t1", "t2"), 3])
def test_cases_value_errors(scan, cases):
    with pytest.raises(ValueError, match=r"`case"):
        make_contrast_cases(*scan, cases=cases)


def test_cases_subset_and_re_exports(scan):
    result = make_contrast_cases(*scan, cases=("slices_5mm", "t1"))
    assert list(result) == ["slices_5mm", "t1"]
    assert list(make_contrast_cases(*scan, cases="inverted")) == ["inverted"]
    assert evaluation.make_contrast_cases is make_contrast_cases
    assert evaluation.make_contrast_case is make_contrast_case
    assert evaluation.CONTRAST_CASES == CONTRAST_CASES


def _real_data_dir():
    directory = os.environ.get("SYNTHLAYERS_DATA_DIR")
    if directory and os.path.isfile(os.path.join(directory, "vxm_test_scan.npz")):
        return directory
    return None


# Tissue medians (CSF = lateral ventricles, GM = cortex, WM = cerebral white
# matter) of each case of voxelmorph's test scan.
REAL_MEDIANS = {
    "t1": (0.072, 0.253, 0.414),
    "inverted": (0.853, 0.466, 0.121),
    "remapped": (0.300, 0.891, 0.550),
    "spacing_3mm": (0.320, 0.462, 0.675),
    "slices_5mm": (0.226, 0.330, 0.491),
}


@pytest.mark.slow
@pytest.mark.skipif(_real_data_dir() is None, reason="vxm_test_scan.npz not found")
def test_real_scan_tissue_ordering():
    from synthlayers import data

    image, segmentation = data.load_vxm_test_scan(data_dir=_real_data_dir())
    result = make_contrast_cases(image, segmentation)
    for name, case in result.items():
        assert case.shape == image.shape and case.dtype == np.float32
        medians = tissue_medians(case, segmentation)
        csf, gm, wm = medians["csf"], medians["gm"], medians["wm"]
        if name == "inverted":
            assert wm < gm < csf
        elif name == "remapped":
            assert csf < wm < gm
        else:
            assert csf < gm < wm, name
        np.testing.assert_allclose((csf, gm, wm), REAL_MEDIANS[name], atol=2e-3)
        if name in ("t1", "inverted", "remapped"):
            assert np.all(case[image == 0] == 0)


def test_evaluate_contrast_cases_with_a_stub_segment(monkeypatch, tmp_path, scan):
    # The workflow on the phantom: the scan is loaded once, each case is
    # segmented at 1 mm with the given arguments and scored on the truth.
    from synthlayers.workflows import evaluate_contrast_cases
    from synthlayers.workflows import segmentation as workflow

    image, labels = scan
    loads, calls = [], []

    def load_vxm_test_scan(data_dir=None):
        loads.append(data_dir)
        return image, labels

    def segment(model, case_image, voxel_size=None, **kwargs):
        calls.append((model, case_image, voxel_size, kwargs))
        # Perfect on the T1, hemispheres swapped on the others.
        if np.array_equal(case_image, make_contrast_case(image, labels, "t1")):
            return labels
        swapped = {2: 41, 41: 2, 3: 42, 42: 3, 4: 43, 43: 4}
        return np.vectorize(lambda v: swapped.get(v, v))(labels)

    monkeypatch.setattr(workflow.data, "load_vxm_test_scan", load_vxm_test_scan)
    monkeypatch.setattr(workflow, "segment", segment)
    monkeypatch.setattr(workflow, "load_segmenter", lambda path: ("loaded", path))
    path = tmp_path / "scores.json"
    result = evaluate_contrast_cases(
        "model.keras", data_dir="here", json_path=path, flip=False
    )
    assert loads == ["here"] and len(calls) == len(CONTRAST_CASES)
    for (model, case_image, voxel_size, kwargs), name in zip(calls, CONTRAST_CASES):
        assert model == ("loaded", "model.keras")  # read once
        assert voxel_size == 1.0 and kwargs == {"flip": False}
        assert np.array_equal(case_image, make_contrast_case(image, labels, name))
    assert list(result["cases"]) == list(CONTRAST_CASES)
    assert result["summary"]["t1"] == 1.0
    assert result["cases"]["t1"]["num_structures"] == 6
    for name in CONTRAST_CASES[1:]:
        assert result["summary"][name] == 0.0
    written = json.loads(path.read_text())
    assert written["summary"] == result["summary"]
    structures = written["cases"]["t1"]["structures"]
    assert len(structures) == len(evaluation.SYNTHSEG_STRUCTURES_V1)
    assert {s["label"]: s["dice"] for s in structures}[2] == 1.0
    assert {s["label"]: s["dice"] for s in structures}[17] is None  # absent
    assert not list(tmp_path.glob("*.partial-*"))
