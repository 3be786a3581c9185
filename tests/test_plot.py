"""Tests for synthlayers.plot: FreeSurfer colours, legends, orientation, pixels."""

import colorsys
import inspect
import os

import matplotlib.image
import numpy as np
import pytest

from synthlayers import freesurfer
from synthlayers import plot

# The rows of FreeSurfer's distribution/FreeSurferColorLUT.txt (freesurfer/
# freesurfer at commit 62228baedd5c5914333d31211e3e02759faed287) for the
# labels of FREESURFER_NAMES, as they stand in the file.
FREESURFER_LUT_ROWS = """
0   Unknown                                 0   0   0   0
2   Left-Cerebral-White-Matter              245 245 245 0
3   Left-Cerebral-Cortex                    205 62  78  0
4   Left-Lateral-Ventricle                  120 18  134 0
5   Left-Inf-Lat-Vent                       196 58  250 0
7   Left-Cerebellum-White-Matter            220 248 164 0
8   Left-Cerebellum-Cortex                  230 148 34  0
10  Left-Thalamus                           0   118 14  0
11  Left-Caudate                            122 186 220 0
12  Left-Putamen                            236 13  176 0
13  Left-Pallidum                           12  48  255 0
14  3rd-Ventricle                           204 182 142 0
15  4th-Ventricle                           42  204 164 0
16  Brain-Stem                              119 159 176 0
17  Left-Hippocampus                        220 216 20  0
18  Left-Amygdala                           103 255 255 0
24  CSF                                     60  60  60  0
25  Left-Lesion                             255 165 0   0
26  Left-Accumbens-area                     255 165 0   0
28  Left-VentralDC                          165 42  42  0
30  Left-vessel                             160 32  240 0
31  Left-choroid-plexus                     0   200 200 0
41  Right-Cerebral-White-Matter             245 245 245 0
42  Right-Cerebral-Cortex                   205 62  78  0
43  Right-Lateral-Ventricle                 120 18  134 0
44  Right-Inf-Lat-Vent                      196 58  250 0
46  Right-Cerebellum-White-Matter           220 248 164 0
47  Right-Cerebellum-Cortex                 230 148 34  0
49  Right-Thalamus                          0   118 14  0
50  Right-Caudate                           122 186 220 0
51  Right-Putamen                           236 13  176 0
52  Right-Pallidum                          13  48  255 0
53  Right-Hippocampus                       220 216 20  0
54  Right-Amygdala                          103 255 255 0
57  Right-Lesion                            255 165 0   0
58  Right-Accumbens-area                    255 165 0   0
60  Right-VentralDC                         165 42  42  0
62  Right-vessel                            160 32  240 0
63  Right-choroid-plexus                    0   200 221 0
72  5th-Ventricle                           120 190 150 0
77  WM-hypointensities                      200 70  255 0
78  Left-WM-hypointensities                 255 148 10  0
79  Right-WM-hypointensities                255 148 10  0
80  non-WM-hypointensities                  164 108 226 0
81  Left-non-WM-hypointensities             164 108 226 0
82  Right-non-WM-hypointensities            164 108 226 0
85  Optic-Chiasm                            234 169 30  0
251 CC_Posterior                            0   0   64  0
252 CC_Mid_Posterior                        0   0   112 0
253 CC_Central                              0   0   160 0
254 CC_Mid_Anterior                         0   0   208 0
255 CC_Anterior                             0   0   255 0
"""


def _lut():
    rows = {}
    for line in FREESURFER_LUT_ROWS.strip().splitlines():
        value, name, r, g, b, _ = line.split()
        rows[int(value)] = (name, (int(r), int(g), int(b)))
    return rows


def _legend_texts(figure):
    return [t.get_text() for legend in figure.legends for t in legend.get_texts()]


def _blocks_3d(shape=(20, 20, 20)):
    """A label map: left white matter (2) on the left, right (41) on the right."""
    labels = np.zeros(shape, "int32")
    labels[2:10, 4:16, 4:16] = 2
    labels[10:18, 4:16, 4:16] = 41
    labels[8:12, 8:12, 8:12] = 17
    return labels


# --- The colour table ----------------------------------------------------------


def test_freesurfer_colors_are_freesurfer_lut_values():
    lut = _lut()
    assert set(freesurfer.FREESURFER_COLORS) == set(freesurfer.FREESURFER_NAMES)
    assert set(lut) == set(freesurfer.FREESURFER_NAMES)
    for value, (name, rgb) in lut.items():
        assert freesurfer.FREESURFER_NAMES[value] == name
        assert freesurfer.FREESURFER_COLORS[value] == rgb, name


def test_left_and_right_of_a_structure_share_a_colour_family():
    colors = freesurfer.FREESURFER_COLORS
    pairs = [(a, b) for a, b in freesurfer.LEFT_RIGHT_PAIRS.items() if a in colors]
    assert (2, 41) in pairs and len(pairs) >= 15
    for left, right in pairs:
        # Same colour up to one channel by at most 21/255 (FreeSurfer's
        # pallidum and choroid plexus), hence the same hue family.
        difference = np.abs(np.subtract(colors[left], colors[right]))
        assert difference.max() <= 21, (left, right)
        h_left, _, v_left = colorsys.rgb_to_hsv(*np.divide(colors[left], 255))
        h_right, _, v_right = colorsys.rgb_to_hsv(*np.divide(colors[right], 255))
        hue_gap = min(abs(h_left - h_right), 1 - abs(h_left - h_right))
        assert hue_gap < 0.03 and abs(v_left - v_right) < 0.1, (left, right)
    plotted = plot.label_colors([2, 41])
    assert plotted[2] == plotted[41] == pytest.approx((245 / 255,) * 3)


def test_label_colors_freesurfer_values_fallbacks_and_overrides():
    colors = plot.label_colors([0, 17, 999, 1000])
    assert colors[0] == (0.0, 0.0, 0.0)
    assert np.round(np.multiply(colors[17], 255)).tolist() == [220, 216, 20]
    # Unknown values: a fixed colour each, distinct, not black, stable.
    assert colors[999] != colors[1000]
    assert max(colors[999]) > 0.5
    assert plot.label_colors([999])[999] == colors[999]
    overridden = plot.label_colors([17], colors={17: "#ff0000"})
    assert overridden[17] == (1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"colors\[17\]"):
        plot.label_colors([17], colors={17: "not a colour"})


def test_label_names():
    names = plot.label_names([0, 2, 41, 999], names={999: "lesion"})
    assert names == {
        0: "Unknown",
        2: "Left-Cerebral-White-Matter",
        41: "Right-Cerebral-White-Matter",
        999: "lesion",
    }
    assert plot.label_names([5000]) == {5000: "label 5000"}


# --- Figures -------------------------------------------------------------------


def test_plot_slices_3d_size_views_and_legend():
    labels = _blocks_3d()
    figure = plot.plot_slices(label_map=labels, panel_size=2.0)
    # Three views of 2 inches, one legend column.
    assert tuple(figure.get_size_inches()) == pytest.approx((3 * 2.0 + 2.3, 2.0))
    assert len(figure.axes) == 3
    assert _legend_texts(figure) == [
        "Left-Cerebral-White-Matter",
        "Left-Hippocampus",
        "Right-Cerebral-White-Matter",
    ]
    one_view = plot.plot_slices(label_map=labels, views="axial", legend=False)
    assert tuple(one_view.get_size_inches()) == pytest.approx((3.0, 3.0))
    assert not one_view.legends


def test_legend_lists_only_labels_present_in_the_panels():
    labels = _blocks_3d()
    labels[0, 0, 0] = 53  # in no slice through the centre
    figure = plot.plot_slices(label_map=labels, names={17: "my hippocampus"})
    texts = _legend_texts(figure)
    assert "my hippocampus" in texts
    assert "Right-Hippocampus" not in texts
    assert "Unknown" not in texts  # background left out


def test_views_are_ras_slices_in_neurological_order():
    volume = np.arange(4 * 5 * 6, dtype="float32").reshape(4, 5, 6)
    figure = plot.plot_slices(volume, index=(1, 2, 3))
    expected = [volume[1, :, :], volume[:, 2, :], volume[:, :, 3]]
    for ax, plane in zip(figure.axes, expected):
        shown = ax.images[0]
        assert shown.origin == "lower"  # second axis up
        np.testing.assert_array_equal(shown.get_array(), plane.T)  # first across


def test_saved_png_pixels_are_freesurfer_colours_left_on_left_superior_up(tmp_path):
    # A 2D map drawn across (first axis) and up (second axis): label 2 in the
    # left-upper quadrant, 17 in the right-lower one.
    labels = np.zeros((40, 40), "int32")
    labels[:20, 20:] = 2
    labels[20:, :20] = 17
    figure = plot.plot_slices(label_map=labels, legend=False, panel_size=2.0)
    path = plot.save_figure(figure, tmp_path / "labels.png", dpi=50)
    assert path == os.fspath(tmp_path / "labels.png")
    pixels = matplotlib.image.imread(path)
    assert pixels.shape == (100, 100, 4)
    np.testing.assert_array_equal(pixels[25, 25, :3] * 255, [245, 245, 245])
    np.testing.assert_array_equal(pixels[75, 75, :3] * 255, [220, 216, 20])
    np.testing.assert_array_equal(pixels[25, 75, :3], [0, 0, 0])
    np.testing.assert_array_equal(pixels[75, 25, :3], [0, 0, 0])
    assert not [p for p in os.listdir(tmp_path) if p != "labels.png"]


def test_overlay_blends_labels_over_the_image(tmp_path):
    image = np.zeros((40, 40), "float32")
    image[20:] = 1.0  # right half white
    labels = np.zeros((40, 40), "int32")
    labels[20:, 20:] = 17
    figure = plot.plot_slices(
        image, labels, alpha=0.5, percentiles=(0, 100), panel_size=1, legend=False
    )
    pixels = matplotlib.image.imread(plot.save_figure(figure, tmp_path / "o.png"))
    assert pixels.shape == (100, 100, 4)
    hippocampus = np.array([220, 216, 20]) / 255
    np.testing.assert_allclose(
        pixels[25, 75, :3], 0.5 * hippocampus + 0.5, atol=1.5 / 255
    )
    np.testing.assert_allclose(pixels[75, 75, :3], [1, 1, 1], atol=1 / 255)
    np.testing.assert_allclose(pixels[75, 25, :3], [0, 0, 0], atol=1 / 255)


def test_voxel_sizes_set_the_aspect_ratio():
    figure = plot.plot_slices(np.ones((8, 8, 8)), voxel_sizes=(1.0, 1.0, 3.0))
    aspects = [ax.get_aspect() for ax in figure.axes]
    # sagittal: A across, S up; coronal: R across, S up; axial: R, A.
    assert aspects == [3.0, 3.0, 1.0]


def test_plot_montage_layout():
    images = [np.random.default_rng(i).random((16, 16, 16)) for i in range(5)]
    labels = [_blocks_3d((16, 16, 16)) for _ in range(5)]
    figure = plot.plot_montage(images, labels, panel_size=1.0, legend=False)
    assert tuple(figure.get_size_inches()) == pytest.approx((5.0, 2.0))
    overlay = plot.plot_montage(images, labels, overlay=True, columns=2)
    # 3 groups of 2 samples, one row each, a legend column.
    assert tuple(overlay.get_size_inches()) == pytest.approx((2 * 2.0 + 2.3, 6.0))
    assert _legend_texts(overlay) == [
        "Left-Cerebral-White-Matter",
        "Left-Hippocampus",
        "Right-Cerebral-White-Matter",
    ]
    coronal = plot.plot_montage(images[:1], view="coronal", index=(0, 3, 0))
    np.testing.assert_array_equal(
        coronal.axes[0].images[0].get_array(), images[0][:, 3, :].T.astype("float32")
    )


def test_plot_deformation_lines_follow_the_convention():
    # output(x) = input(x + d(x)) with d = +2 voxels along the first axis: the
    # input's grid line x = 8 lands at output x = 6.
    field = np.zeros((32, 32, 2))
    field[..., 0] = 2.0
    figure = plot.plot_deformation(field, spacing=8)
    contours = figure.axes[0].collections
    first_axis = contours[0]  # level lines of x + d(x): vertical lines
    assert list(first_axis.levels) == [8.0, 16.0, 24.0, 32.0]
    vertices = first_axis.allsegs[0][0]
    np.testing.assert_allclose(vertices[:, 0], 6.0)
    second_axis = contours[1]
    assert list(second_axis.levels) == [0.0, 8.0, 16.0, 24.0]
    three_d = plot.plot_deformation(np.zeros((8, 9, 10, 3)), np.ones((8, 9, 10)))
    assert len(three_d.axes) == 3


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: plot.plot_slices(), "image"),
        (lambda: plot.plot_slices(label_map=np.full((4, 4), 0.5)), "label_map"),
        (lambda: plot.plot_slices(np.ones((4, 4, 4, 2))), r"image.shape"),
        (lambda: plot.plot_slices(np.ones((4, 4)), np.ones((4, 5), "int32")), "shape"),
        (lambda: plot.plot_slices(np.ones((4, 4)), views="axial"), "views"),
        (lambda: plot.plot_slices(np.ones((4, 4, 4)), views="top"), "views"),
        (lambda: plot.plot_slices(np.ones((4, 4, 4)), index=(0, 0, 4)), "index"),
        (lambda: plot.plot_slices(np.ones((4, 4)), alpha=2), "alpha"),
        (lambda: plot.plot_slices(np.ones((4, 4)), voxel_sizes=0), "voxel_sizes"),
        (lambda: plot.plot_slices(np.ones((4, 4)), percentiles=(9, 1)), "percentiles"),
        (lambda: plot.plot_montage(np.ones((2, 4, 4))), "images"),
        (lambda: plot.plot_montage([np.ones((4, 4)), np.ones((5, 4))]), "shape"),
        (lambda: plot.plot_montage([np.ones((4, 4))], view="axial"), "view"),
        (lambda: plot.plot_deformation(np.zeros((8, 8, 3))), "displacement"),
        (
            lambda: plot.plot_deformation(np.full((8, 8, 2), np.nan)),
            "128 non-finite",
        ),
        (lambda: plot.plot_deformation(np.zeros((8, 8, 2)), spacing=0), "spacing"),
        (lambda: plot.save_figure("figure", "x.png"), "figure"),
    ],
)
def test_invalid_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_library_code_never_uses_pyplot():
    source = inspect.getsource(plot)
    assert "pyplot" not in source.replace("without `pyplot`", "")
    assert ".show(" not in source
