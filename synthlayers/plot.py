"""Figures with matplotlib: slices, label colours and legends, overlays, grids.

Arrays are in synthlayers' RAS+ voxel order (see `synthlayers.io`): the
first axis runs from the subject's left to right, the second from posterior
to anterior, the third from inferior to superior. Slices are drawn in the
neurological convention: left on the left, superior (or anterior, in axial
views) up. A 2D array is drawn with its first axis across and its second
axis up, as an axial slice of a RAS+ volume.

Label values get FreeSurfer's colours (`synthlayers.freesurfer.
FREESURFER_COLORS`, from FreeSurferColorLUT: the left and right labels of a
structure share a colour) and names in a legend; other values get a fixed
colour of their own. Every function returns a `matplotlib.figure.Figure`
built without `pyplot` (no global state, no window); `save_figure` writes it
with the Agg renderer. Figure sizes are set by `panel_size` (inches per
panel), so a saved PNG has `size * dpi` pixels.
"""

import colorsys
import math
import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from synthlayers.freesurfer import FREESURFER_COLORS
from synthlayers.freesurfer import structure_name
from synthlayers.validation import check_choice
from synthlayers.validation import check_number
from synthlayers.validation import check_per_axis
from synthlayers.validation import check_percentiles

VIEWS = ("sagittal", "coronal", "axial")
"""Views of a 3D RAS+ volume: the planes normal to its first, second and third
axis."""

# For each view: the RAS axis held fixed, the axis drawn across (left to
# right on screen) and the axis drawn up.
_VIEW_AXES = {"sagittal": (0, 1, 2), "coronal": (1, 0, 2), "axial": (2, 0, 1)}

_LEGEND_COLUMN_WIDTH = 2.3  # inches per legend column
_TITLE_HEIGHT = 0.35  # inches above the panels for a title
_GOLDEN = 0.6180339887498949


# --- Colours and names ---------------------------------------------------------


def _fallback_color(value):
    """A fixed, saturated colour for a label value FreeSurfer does not name."""
    hue = (int(value) * _GOLDEN) % 1.0
    return colorsys.hsv_to_rgb(hue, 0.7, 0.95)


def label_colors(labels, colors=None):
    """An RGB colour (floats in [0, 1]) per label value.

    FreeSurfer values get FreeSurfer's colours (`FREESURFER_COLORS`); the
    background 0 is black; any other value gets a fixed colour of its own
    (the same in every figure).

    Args:
        labels: label values (any iterable of integers).
        colors: `{label: colour}` overrides, each a matplotlib colour (a
            name, `"#rrggbb"`, or an RGB tuple of floats in [0, 1]), or
            None. Defaults to None.

    Returns:
        A dict `{label: (r, g, b)}` with floats in [0, 1].

    Example:

    >>> colors = label_colors([2, 41, 17])
    >>> [round(c * 255) for c in colors[2]], colors[2] == colors[41]
    ([245, 245, 245], True)
    """
    overrides = {} if colors is None else {int(k): v for k, v in colors.items()}
    out = {}
    for value in sorted({int(v) for v in labels}):
        if value in overrides:
            try:
                out[value] = tuple(float(c) for c in to_rgb(overrides[value]))
            except ValueError:
                raise ValueError(
                    "`colors` must map label values to matplotlib colours. "
                    f"Received: colors[{value}]={overrides[value]!r}"
                ) from None
        elif value in FREESURFER_COLORS:
            out[value] = tuple(c / 255.0 for c in FREESURFER_COLORS[value])
        else:
            out[value] = tuple(float(c) for c in _fallback_color(value))
    return out


def label_names(labels, names=None):
    """A name per label value: FreeSurfer's, or `"label <value>"`.

    Args:
        labels: label values (any iterable of integers).
        names: `{label: name}` overrides, or None. Defaults to None.

    Returns:
        A dict `{label: name}`.

    Example:

    >>> label_names([17, 999], names={999: "lesion"})
    {17: 'Left-Hippocampus', 999: 'lesion'}
    """
    names = {} if names is None else {int(k): str(v) for k, v in names.items()}
    return {
        v: names.get(v, structure_name(v)) for v in sorted({int(v) for v in labels})
    }


# --- Argument checks -----------------------------------------------------------


def _spatial_array(value, name, allow_none=True):
    """A 2D or 3D array; a 3D volume with a trailing channel of 1 is squeezed."""
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"`{name}` must be a 2D or 3D array. Received: {name}=None")
    array = np.asarray(value)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or min(array.shape) < 1:
        raise ValueError(
            f"`{name}` must be a 2D or 3D array (spatial axes in RAS+ order; a "
            f"3D one may carry a trailing channel of size 1). Received: "
            f"{name}.shape={array.shape}"
        )
    return array


def _label_array(value, name):
    array = _spatial_array(value, name)
    if array is None:
        return None
    if array.dtype == bool:
        return array.astype("int32")
    if not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or not np.all(
            np.isfinite(array) & (array == np.round(array))
        ):
            raise ValueError(
                f"`{name}` must hold integer label values. Received: {name} of "
                f"dtype {array.dtype} with non-integer values"
            )
        array = array.astype("int64")
    return array


def _image_array(value, name):
    array = _spatial_array(value, name)
    if array is None:
        return None
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(
            f"`{name}` must hold numbers. Received: {name} of dtype {array.dtype}"
        )
    return array.astype("float32")


def _voxel_sizes(voxel_sizes, ndim):
    if voxel_sizes is None:
        return (1.0,) * ndim
    sizes = check_per_axis(voxel_sizes, "voxel_sizes", ndim, min_value=0)
    if min(sizes) <= 0:
        raise ValueError(
            "`voxel_sizes` must be positive numbers (mm). "
            f"Received: voxel_sizes={voxel_sizes!r}"
        )
    return sizes


def _views(views, ndim):
    if ndim == 2:
        if views is not None:
            raise ValueError(
                "`views` applies to 3D arrays only (a 2D array is one view). "
                f"Received: views={views!r}"
            )
        return (None,)
    if views is None:
        return VIEWS
    views = (views,) if isinstance(views, str) else tuple(views)
    if not views:
        raise ValueError(f"`views` must name at least one view. Received: {views!r}")
    for view in views:
        check_choice(view, "views", VIEWS)
    return views


def _index(index, shape):
    """The voxel where the planes of the three views cross (default: centre)."""
    if index is None:
        return tuple(n // 2 for n in shape)
    try:
        index = tuple(int(i) for i in index)
        valid = len(index) == len(shape) and all(
            0 <= i < n for i, n in zip(index, shape)
        )
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValueError(
            f"`index` must be a voxel of the volume: {len(shape)} integers in "
            f"[0, shape) with shape={tuple(shape)}. Received: index={index!r}"
        )
    return index


def _percentiles(percentiles):
    """`(low, high)` display percentiles (`validation.check_percentiles`, no None)."""
    if percentiles is None:
        raise ValueError(
            "Expected `percentiles` to be (low, high) with 0 <= low < high <= 100. "
            "Received: percentiles=None"
        )
    return check_percentiles(percentiles)


def _same_shape(first, second, first_name, second_name):
    if first is not None and second is not None and first.shape != second.shape:
        raise ValueError(
            f"`{first_name}` and `{second_name}` must have the same shape. "
            f"Received: {first_name}.shape={first.shape}, "
            f"{second_name}.shape={second.shape}"
        )


# --- Drawing -------------------------------------------------------------------


def slice_view(volume, view=None, index=None):
    """The 2D slice of a volume for a view, in screen order.

    Args:
        volume: a 2D or 3D array in RAS+ order (more trailing axes, such as
            vector components, are carried along).
        view: one of `VIEWS` for a 3D volume, None for a 2D array. Defaults
            to None.
        index: the voxel where the views' planes cross (one integer per
            spatial axis), or None for the centre. Defaults to None.

    Returns:
        `(slice, (across, up))`: the slice with its first axis drawn across
        and its second up, and the RAS axes they are.

    Example:

    >>> import numpy as np
    >>> plane, axes = slice_view(np.zeros((4, 5, 6)), "coronal")
    >>> plane.shape, axes
    ((4, 6), (0, 2))
    """
    volume = np.asarray(volume)
    if view is None:
        return volume, (0, 1)
    fixed, across, up = _VIEW_AXES[check_choice(view, "view", VIEWS)]
    index = _index(index, volume.shape[:3])
    return np.take(volume, index[fixed], axis=fixed), (across, up)


def _intensity_range(image, percentiles):
    finite = image[np.isfinite(image)]
    if not finite.size:
        return 0.0, 1.0
    low, high = np.percentile(finite, percentiles)
    return float(low), float(high) if high > low else float(low) + 1.0


def _label_rgba(labels, colors, alpha, background_alpha):
    """`(n, m)` integer labels -> `(n, m, 4)` float RGBA through `colors`."""
    values = np.array(sorted(colors), dtype="int64")
    table = np.array(
        [(*colors[v], alpha if v != 0 else background_alpha) for v in values.tolist()],
        dtype="float32",
    )
    return table[np.searchsorted(values, labels)]


def _draw(ax, image, labels, aspect, intensity, colors, alpha):
    """One panel: a grey image, labels, or labels over an image."""
    ax.set_axis_off()
    common = dict(origin="lower", interpolation="nearest", aspect=aspect)
    if image is not None:
        ax.imshow(image.T, cmap="gray", vmin=intensity[0], vmax=intensity[1], **common)
    if labels is not None:
        if image is None:
            rgba = _label_rgba(labels, colors, 1.0, 1.0)
        else:
            rgba = _label_rgba(labels, colors, alpha, 0.0)
        ax.imshow(np.transpose(rgba, (1, 0, 2)), **common)


def _legend(figure, present, colors, names, left, fontsize=8):
    """A legend of the labels `present` (background left out), right of `left`."""
    shown = [v for v in sorted(present) if v != 0]
    if not shown:
        return None
    handles = [
        Patch(facecolor=colors[v], edgecolor="0.3", linewidth=0.5, label=names[v])
        for v in shown
    ]
    return figure.legend(
        handles=handles,
        loc="center left",
        bbox_to_anchor=(left, 0.5),
        frameon=False,
        fontsize=fontsize,
        labelcolor="white",
        ncol=_legend_columns(len(shown), figure.get_size_inches()[1], fontsize),
    )


def _legend_columns(count, height, fontsize=8):
    rows = max(1, int(height * 72 / (fontsize * 1.75)))
    return max(1, math.ceil(count / rows))


def _grid_figure(rows, columns, panel_size, legend_columns, title):
    """A figure of `rows x columns` square panels, room for a legend and title."""
    panel_size = check_number(panel_size, "panel_size", min_value=0.2)
    legend_width = legend_columns * _LEGEND_COLUMN_WIDTH
    title_height = _TITLE_HEIGHT if title else 0.0
    width = columns * panel_size + legend_width
    height = rows * panel_size + title_height
    figure = Figure(figsize=(width, height), facecolor="black")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False)
    figure.subplots_adjust(
        left=0.0,
        right=columns * panel_size / width,
        bottom=0.0,
        top=rows * panel_size / height,
        wspace=0.02,
        hspace=0.02,
    )
    if title:
        figure.suptitle(title, color="white", y=1 - 0.1 * title_height / height)
    return figure, axes


def _present_labels(slices):
    present = set()
    for labels in slices:
        present.update(np.unique(labels).tolist())
    return present


def _count_legend_labels(slices, legend, panel_height):
    present = _present_labels(slices) - {0}
    if not legend or not present:
        return 0
    return _legend_columns(len(present), panel_height)


def plot_slices(
    image=None,
    label_map=None,
    voxel_sizes=None,
    index=None,
    views=None,
    alpha=0.5,
    colors=None,
    names=None,
    legend=True,
    percentiles=(0.5, 99.5),
    title=None,
    panel_size=3.0,
):
    """Orthogonal slices of an image, a label map, or labels over an image.

    A 3D volume gives one panel per view (sagittal, coronal, axial through
    the voxel `index`); a 2D array gives one panel. Images are drawn in grey
    between two percentiles of their finite voxels (the same range in every
    panel); label maps in `label_colors` (opaque, black background) or, with
    an image, over it with opacity `alpha` (background transparent). The
    legend lists the names of the labels present in the panels (background
    left out).

    Args:
        image: a 2D or 3D array (RAS+ order), or None. Defaults to None.
        label_map: an integer array of the same shape, or None. Give an
            image, a label map, or both. Defaults to None.
        voxel_sizes: voxel size in mm (a number or one per axis) for the
            aspect ratio of the panels, or None for 1 mm. Defaults to None.
        index: the voxel where the views' planes cross, or None for the
            centre. Defaults to None.
        views: the views of a 3D volume to draw (names in `VIEWS`), or None
            for all three. Must be None for a 2D array. Defaults to None.
        alpha: opacity of labels over an image, in [0, 1]. Defaults to 0.5.
        colors: `{label: colour}` overrides of `label_colors`. Defaults to
            None.
        names: `{label: name}` overrides of `label_names`. Defaults to None.
        legend: draw the legend of the labels present. Defaults to True.
        percentiles: `(low, high)` percentiles of the image drawn black and
            white. Defaults to `(0.5, 99.5)`.
        title: a title above the panels, or None. Defaults to None.
        panel_size: width and height of a panel in inches. Defaults to 3.0.

    Returns:
        A `matplotlib.figure.Figure` (save it with `save_figure`).

    Raises:
        ValueError: on invalid arguments (each names the argument, what was
            expected and what was received).

    Example:

    >>> import numpy as np
    >>> labels = np.zeros((20, 20, 20), "int32")
    >>> labels[2:10, 5:15, 5:15], labels[10:18, 5:15, 5:15] = 2, 41
    >>> figure = plot_slices(np.random.rand(20, 20, 20), labels, panel_size=2)
    >>> [text.get_text() for text in figure.legends[0].get_texts()]
    ['Left-Cerebral-White-Matter', 'Right-Cerebral-White-Matter']
    """
    image = _image_array(image, "image")
    label_map = _label_array(label_map, "label_map")
    if image is None and label_map is None:
        raise ValueError(
            "Give `image`, `label_map` or both. Received: image=None, label_map=None"
        )
    _same_shape(image, label_map, "image", "label_map")
    volume = image if image is not None else label_map
    views = _views(views, volume.ndim)
    sizes = _voxel_sizes(voxel_sizes, volume.ndim)
    index = None if volume.ndim == 2 else _index(index, volume.shape)
    alpha = check_number(alpha, "alpha", min_value=0, max_value=1)
    intensity = None
    if image is not None:
        intensity = _intensity_range(image, _percentiles(percentiles))
    panels = []
    for view in views:
        image_slice = label_slice = None
        if image is not None:
            image_slice, axes = slice_view(image, view, index)
        if label_map is not None:
            label_slice, axes = slice_view(label_map, view, index)
        panels.append((image_slice, label_slice, sizes[axes[1]] / sizes[axes[0]]))
    label_slices = [p[1] for p in panels if p[1] is not None]
    present = _present_labels(label_slices)
    colors = label_colors(present, colors)
    names = label_names(present, names)
    panel_size = check_number(panel_size, "panel_size", min_value=0.2)
    columns = _count_legend_labels(label_slices, legend, panel_size)
    figure, axes = _grid_figure(1, len(panels), panel_size, columns, title)
    for ax, (image_slice, label_slice, aspect) in zip(axes[0], panels):
        _draw(ax, image_slice, label_slice, aspect, intensity, colors, alpha)
    if columns:
        _legend(
            figure, present, colors, names, len(panels) * panel_size / _width(figure)
        )
    return figure


def _width(figure):
    return figure.get_size_inches()[0]


def plot_montage(
    images=None,
    label_maps=None,
    view=None,
    index=None,
    voxel_sizes=None,
    overlay=False,
    alpha=0.5,
    colors=None,
    names=None,
    legend=True,
    percentiles=(0.5, 99.5),
    titles=None,
    title=None,
    columns=None,
    panel_size=2.0,
):
    """One slice of several samples side by side: images, label maps, or both.

    One column per sample; rows: the images, then the label maps (or, with
    `overlay=True`, one row of labels over images). With `columns`, samples
    wrap onto further rows of panels. Each image is scaled between its own
    percentiles (synthetic contrasts differ from sample to sample).

    Args:
        images: a sequence of 2D or 3D arrays (RAS+ order, one shape), or
            None. Defaults to None.
        label_maps: a sequence of integer arrays of that shape, as many as
            `images`, or None. Give images, label maps, or both. Defaults to
            None.
        view: the view of 3D samples (one of `VIEWS`), or None for coronal.
            Must be None for 2D samples. Defaults to None.
        index: the voxel the slice goes through, or None for the centre.
            Defaults to None.
        voxel_sizes: voxel size in mm (a number or one per axis), or None for
            1 mm. Defaults to None.
        overlay: draw labels over images in one row instead of two rows.
            Defaults to False.
        alpha: opacity of overlaid labels, in [0, 1]. Defaults to 0.5.
        colors: `{label: colour}` overrides of `label_colors`. Defaults to
            None.
        names: `{label: name}` overrides of `label_names`. Defaults to None.
        legend: draw the legend of the labels present. Defaults to True.
        percentiles: `(low, high)` percentiles of each image drawn black and
            white. Defaults to `(0.5, 99.5)`.
        titles: one title per sample (at the top of its first panel), or
            None.
            Defaults to None.
        title: a title above the figure, or None. Defaults to None.
        columns: samples per row of panels, or None for all in one row.
            Defaults to None.
        panel_size: width and height of a panel in inches. Defaults to 2.0.

    Returns:
        A `matplotlib.figure.Figure`.

    Raises:
        ValueError: on invalid arguments.

    Example:

    >>> import numpy as np
    >>> images = [np.random.rand(16, 16, 16) for _ in range(3)]
    >>> figure = plot_montage(images, panel_size=1)
    >>> [float(s) for s in figure.get_size_inches()]
    [3.0, 1.0]
    """
    images = _samples(images, "images", _image_array)
    label_maps = _samples(label_maps, "label_maps", _label_array)
    if images is None and label_maps is None:
        raise ValueError(
            "Give `images`, `label_maps` or both. Received: images=None, "
            "label_maps=None"
        )
    count = len(images if images is not None else label_maps)
    if images is not None and label_maps is not None and len(label_maps) != count:
        raise ValueError(
            "`images` and `label_maps` must hold as many samples. Received: "
            f"{count} images, {len(label_maps)} label_maps"
        )
    shapes = {a.shape for a in (images or []) + (label_maps or [])}
    if len(shapes) != 1:
        raise ValueError(
            f"Every sample must have the same shape. Received: shapes {sorted(shapes)}"
        )
    shape = shapes.pop()
    if len(shape) == 3:
        view = "coronal" if view is None else check_choice(view, "view", VIEWS)
        index = _index(index, shape)
        across, up = _VIEW_AXES[view][1:]
    elif view is not None:
        raise ValueError(
            f"`view` applies to 3D samples only. Received: view={view!r} with "
            f"samples of shape {shape}"
        )
    else:
        index, (across, up) = None, (0, 1)
    sizes = _voxel_sizes(voxel_sizes, len(shape))
    aspect = sizes[up] / sizes[across]
    alpha = check_number(alpha, "alpha", min_value=0, max_value=1)
    low_high = _percentiles(percentiles)
    overlay = bool(overlay) and images is not None and label_maps is not None
    if titles is not None:
        titles = [str(t) for t in titles]
        if len(titles) != count:
            raise ValueError(
                f"`titles` must hold one title per sample ({count}). Received: "
                f"{len(titles)} titles"
            )
    columns = count if columns is None else columns
    if not isinstance(columns, int) or isinstance(columns, bool) or columns < 1:
        raise ValueError(
            "`columns` must be a positive integer or None. "
            f"Received: columns={columns!r}"
        )
    columns = min(columns, count)
    image_slices = [slice_view(x, view, index)[0] for x in images or []]
    label_slices = [slice_view(x, view, index)[0] for x in label_maps or []]
    kinds = []  # one entry per row of a group: (image slices, label slices)
    if overlay:
        kinds.append((image_slices, label_slices))
    else:
        if images is not None:
            kinds.append((image_slices, None))
        if label_maps is not None:
            kinds.append((None, label_slices))
    groups = math.ceil(count / columns)
    rows = groups * len(kinds)
    present = _present_labels(label_slices)
    colors = label_colors(present, colors)
    names = label_names(present, names)
    panel_size = check_number(panel_size, "panel_size", min_value=0.2)
    legend_columns = _count_legend_labels(label_slices, legend, rows * panel_size)
    figure, axes = _grid_figure(rows, columns, panel_size, legend_columns, title)
    for ax in axes.flat:
        ax.set_axis_off()
    for sample in range(count):
        group, column = divmod(sample, columns)
        for k, (image_kind, label_kind) in enumerate(kinds):
            ax = axes[group * len(kinds) + k, column]
            image = None if image_kind is None else image_kind[sample]
            labels = None if label_kind is None else label_kind[sample]
            intensity = None if image is None else _intensity_range(image, low_high)
            _draw(ax, image, labels, aspect, intensity, colors, alpha)
            if titles is not None and k == 0:
                ax.text(
                    0.5,
                    0.98,
                    titles[sample],
                    color="white",
                    fontsize=8,
                    ha="center",
                    va="top",
                    transform=ax.transAxes,
                )
    if legend_columns:
        _legend(figure, present, colors, names, columns * panel_size / _width(figure))
    return figure


def _samples(values, name, check):
    if values is None:
        return None
    if isinstance(values, np.ndarray) or not hasattr(values, "__len__"):
        raise ValueError(
            f"`{name}` must be a sequence of arrays (one per sample). Received: "
            f"{type(values).__name__}"
        )
    if not len(values):
        raise ValueError(f"`{name}` must hold at least one sample. Received: []")
    return [check(v, f"{name}[{i}]") for i, v in enumerate(values)]


def plot_deformation(
    displacement,
    image=None,
    voxel_sizes=None,
    index=None,
    views=None,
    spacing=4,
    color="orange",
    percentiles=(0.5, 99.5),
    title=None,
    panel_size=3.0,
):
    """A deformation grid: how a regular grid looks after a displacement field.

    `displacement` follows synthlayers' convention (`RandomSpatialTransform(
    return_transform=True)`, `SpatialTransformer`): `output(x) = input(x +
    d(x))`, in voxels. The lines drawn are those of a grid on the input,
    one every `spacing` voxels, where they land in the output: the level
    lines of the in-plane components of `x + d(x)`. Drawn over the output
    (deformed) image, they move with its anatomy. For 3D fields, each view
    shows the in-plane components on its slice (out-of-plane motion is not
    drawn).

    Args:
        displacement: a `(*spatial, ndim)` array with 2 or 3 spatial axes
            (RAS+ order) and `ndim` equal to their number, in voxels.
        image: a grey image of the same spatial shape drawn underneath, or
            None. Defaults to None.
        voxel_sizes: voxel size in mm (a number or one per axis), or None for
            1 mm. Defaults to None.
        index: the voxel where the views' planes cross, or None for the
            centre. Defaults to None.
        views: the views of a 3D field (names in `VIEWS`), or None for all
            three. Must be None for a 2D field. Defaults to None.
        spacing: grid spacing in input voxels (> 0). Defaults to 4.
        color: the colour of the lines (a matplotlib colour). Defaults to
            `"orange"`.
        percentiles: `(low, high)` percentiles of `image` drawn black and
            white. Defaults to `(0.5, 99.5)`.
        title: a title above the panels, or None. Defaults to None.
        panel_size: width and height of a panel in inches. Defaults to 3.0.

    Returns:
        A `matplotlib.figure.Figure`.

    Raises:
        ValueError: on invalid arguments.

    Example:

    >>> import numpy as np
    >>> field = np.zeros((32, 32, 2))
    >>> field[..., 0] = 2 * np.sin(np.arange(32) / 5)[None, :]
    >>> figure = plot_deformation(field, spacing=4)
    >>> len(figure.axes)
    1
    """
    field = np.asarray(displacement, dtype="float64")
    spatial = field.shape[:-1]
    if field.ndim not in (3, 4) or field.shape[-1] != len(spatial):
        raise ValueError(
            "`displacement` must be a (*spatial, ndim) array with 2 or 3 spatial "
            "axes and one component per axis. Received: "
            f"displacement.shape={field.shape}"
        )
    if not np.all(np.isfinite(field)):
        raise ValueError(
            "`displacement` must be finite. Received: "
            f"{int(np.sum(~np.isfinite(field)))} non-finite values"
        )
    image = _image_array(image, "image")
    if image is not None and image.shape != spatial:
        raise ValueError(
            "`image` must have the spatial shape of `displacement`. Received: "
            f"image.shape={image.shape}, displacement.shape={field.shape}"
        )
    spacing = check_number(spacing, "spacing", min_value=0)
    if spacing <= 0:
        raise ValueError(f"`spacing` must be > 0. Received: spacing={spacing!r}")
    try:
        color = to_rgb(color)
    except ValueError:
        raise ValueError(
            f"`color` must be a matplotlib colour. Received: color={color!r}"
        ) from None
    ndim = len(spatial)
    views = _views(views, ndim)
    sizes = _voxel_sizes(voxel_sizes, ndim)
    index = None if ndim == 2 else _index(index, spatial)
    intensity = None
    if image is not None:
        intensity = _intensity_range(image, _percentiles(percentiles))
    # Input coordinates each output voxel samples: x + d(x).
    coordinates = field + np.stack(
        np.meshgrid(*(np.arange(n) for n in spatial), indexing="ij"), axis=-1
    )
    panel_size = check_number(panel_size, "panel_size", min_value=0.2)
    figure, axes = _grid_figure(1, len(views), panel_size, 0, title)
    for ax, view in zip(axes[0], views):
        plane, (across, up) = slice_view(coordinates, view, index)
        aspect = sizes[up] / sizes[across]
        ax.set_axis_off()
        ax.set_facecolor("black")
        if image is not None:
            image_slice = slice_view(image, view, index)[0]
            _draw(ax, image_slice, None, aspect, intensity, None, 1.0)
        grid_across, grid_up = np.arange(plane.shape[0]), np.arange(plane.shape[1])
        for component in (across, up):
            values = plane[..., component]
            first = math.ceil(values.min() / spacing)
            last = math.floor(values.max() / spacing)
            levels = np.arange(first, last + 1) * spacing
            if levels.size:
                ax.contour(
                    grid_across,
                    grid_up,
                    values.T,
                    levels=levels,
                    colors=[color],
                    linewidths=0.8,
                )
        ax.set_xlim(-0.5, plane.shape[0] - 0.5)
        ax.set_ylim(-0.5, plane.shape[1] - 0.5)
        ax.set_aspect(aspect)
    return figure


def save_figure(figure, path, dpi=100):
    """Write a figure to a file with the Agg renderer (PNG, PDF, SVG, ...).

    The file is written under a temporary name next to `path` and renamed
    when complete, so an interrupted write leaves no partial figure. The
    format follows the extension of `path`.

    Args:
        figure: a `matplotlib.figure.Figure`.
        path: the file to write.
        dpi: pixels per inch: a figure of `w x h` inches gives a PNG of
            `round(w * dpi) x round(h * dpi)` pixels. Defaults to 100.

    Returns:
        The path, as a string.

    Raises:
        ValueError: when `figure` is not a Figure or `dpi` is not positive.

    Example:

    >>> import numpy as np, os, tempfile
    >>> figure = plot_slices(np.random.rand(8, 8), panel_size=1)
    >>> path = save_figure(figure, os.path.join(tempfile.mkdtemp(), "a.png"))
    >>> import matplotlib.image
    >>> matplotlib.image.imread(path).shape
    (100, 100, 4)
    """
    if not isinstance(figure, Figure):
        raise ValueError(
            "`figure` must be a matplotlib Figure. Received: "
            f"figure of type {type(figure).__name__}"
        )
    dpi = check_number(dpi, "dpi", min_value=1)
    path = os.fspath(path)
    extension = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    directory, name = os.path.split(os.path.abspath(path))
    partial = os.path.join(directory, f".{name}.partial")
    if not isinstance(figure.canvas, FigureCanvasAgg):
        FigureCanvasAgg(figure)
    try:
        figure.savefig(
            partial, dpi=dpi, format=extension, facecolor=figure.get_facecolor()
        )
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)
    return path
