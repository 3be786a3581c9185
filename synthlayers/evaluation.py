"""Evaluate segmentations: Dice per structure, tables, JSON and CSV files.

Convention (SynthSeg's `evaluate.fast_dice`, made explicit):

- Dice of structure `l` = `2 |P = l and T = l| / (|P = l| + |T = l|)` over the
  whole volume, in FreeSurfer label values.
- Predicted or true label values outside the evaluated set count as
  background (they are never a match for an evaluated structure).
- A structure absent from the ground truth has no Dice: it is reported as NaN
  (None in JSON, an empty cell in CSV) and left out of the mean, whatever
  the prediction holds there.
- The mean Dice is the plain mean over the structures present in the truth.

Ground truths straight from FreeSurfer's `aseg` hold labels SynthSeg does not
segment (white-matter hypointensities, corpus callosum, choroid plexus...):
`convert_freesurfer_segmentation` maps them into the evaluated set first.

The FreeSurfer tables (`FREESURFER_NAMES`, `SYNTHSEG_STRUCTURES`,
`FREESURFER_MERGES`, `MIDLINE_WHITE_MATTER`, `structure_name`) live in
`synthlayers.freesurfer` and are re-exported here.

The contrast test cases of a real scan (`CONTRAST_CASES`,
`make_contrast_case`, `make_contrast_cases`: the scan as it is, inverted,
remapped, at 3 mm, in 5 mm slices) live in `synthlayers.contrast_cases` and
are re-exported here.
"""

import csv
import json
import math
import os

import numpy as np

from synthlayers.freesurfer import FREESURFER_MERGES
from synthlayers.freesurfer import FREESURFER_NAMES
from synthlayers.freesurfer import LEFT_RIGHT_PAIRS
from synthlayers.freesurfer import MIDLINE_WHITE_MATTER
from synthlayers.freesurfer import SYNTHSEG_STRUCTURES
from synthlayers.freesurfer import SYNTHSEG_STRUCTURES_V1  # noqa: F401
from synthlayers.freesurfer import structure_name


def _check_labels(labels, name="labels"):
    labels = np.asarray(labels)
    if (
        labels.ndim != 1
        or labels.size == 0
        or not np.issubdtype(labels.dtype, np.integer)
        or len(np.unique(labels)) != labels.size
        or np.any(labels == 0)
    ):
        raise ValueError(
            f"Expected `{name}` to be distinct non-zero integer label values. "
            f"Received: {name}={labels.tolist() if labels.ndim else labels!r}"
        )
    return [int(v) for v in labels]


def _as_labels(array, name):
    array = np.asarray(array)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or np.any(array != np.rint(array)):
            raise ValueError(
                f"Expected `{name}` to hold integer label values. Received: "
                f"{name} with non-integer values"
            )
        array = array.astype("int64")
    elif not np.issubdtype(array.dtype, np.integer) and array.dtype != bool:
        raise ValueError(
            f"Expected `{name}` to be an integer label map. Received: "
            f"{name}.dtype={array.dtype}"
        )
    return array


def dice_scores(prediction, truth, labels=SYNTHSEG_STRUCTURES):
    """Dice score per structure between two label maps.

    See the module docstring for the convention: values outside `labels`
    count as background; a structure absent from `truth` scores NaN.

    Args:
        prediction: integer label map (FreeSurfer values).
        truth: integer label map of the same shape.
        labels: the structures to evaluate (non-zero values). Defaults to
            `SYNTHSEG_STRUCTURES`.

    Returns:
        A dict `{label: dice}` (floats, NaN where the structure is absent
        from `truth`), in the order of `labels`.

    Raises:
        ValueError: when the shapes differ, a map is not integer-valued, or
            `labels` is not a set of distinct non-zero integers.

    Example:

    >>> import numpy as np
    >>> truth = np.array([0, 2, 2, 41, 41, 41])
    >>> prediction = np.array([2, 2, 2, 41, 41, 0])
    >>> dice_scores(prediction, truth, labels=[2, 41, 3])
    {2: 0.8, 41: 0.8, 3: nan}
    """
    labels = _check_labels(labels)
    prediction = _as_labels(prediction, "prediction")
    truth = _as_labels(truth, "truth")
    if prediction.shape != truth.shape:
        raise ValueError(
            "Expected `prediction` and `truth` of the same shape. Received: "
            f"prediction.shape={prediction.shape}, truth.shape={truth.shape}"
        )
    # Index 0 is background (and everything not evaluated), k + 1 is labels[k].
    order = np.argsort(labels)
    sorted_labels = np.asarray(labels)[order]
    k = len(labels)

    def index(array):
        flat = array.ravel()
        position = np.clip(np.searchsorted(sorted_labels, flat), 0, k - 1)
        found = sorted_labels[position] == flat
        return np.where(found, order[position] + 1, 0)

    counts = np.bincount(
        index(truth) * (k + 1) + index(prediction), minlength=(k + 1) ** 2
    ).reshape(k + 1, k + 1)
    scores = {}
    for i, label in enumerate(labels, start=1):
        true_size = counts[i, :].sum()
        predicted_size = counts[:, i].sum()
        if true_size == 0:
            scores[label] = math.nan
        else:
            scores[label] = float(2 * counts[i, i] / (true_size + predicted_size))
    return scores


def mean_dice(scores):
    """Mean of the Dice scores that are not NaN (NaN if there is none).

    Args:
        scores: a dict `{label: dice}` as returned by `dice_scores`.

    Returns:
        A float.
    """
    values = [v for v in scores.values() if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def format_dice_table(scores, names=None):
    """A text table of Dice scores: label, structure name, Dice; then the mean.

    Args:
        scores: a dict `{label: dice}` as returned by `dice_scores`.
        names: a dict `{label: name}`, or None for `FREESURFER_NAMES`.
            Defaults to None.

    Returns:
        The table as a string (absent structures show `-`).
    """
    names = FREESURFER_NAMES if names is None else names
    rows = [
        (str(label), names.get(label, structure_name(label)), dice)
        for label, dice in scores.items()
    ]
    width = max([len("structure")] + [len(r[1]) for r in rows])
    lines = [f"{'label':>5}  {'structure':<{width}}  {'dice':>6}"]
    for label, name, dice in rows:
        value = "-" if math.isnan(dice) else f"{dice:.4f}"
        lines.append(f"{label:>5}  {name:<{width}}  {value:>6}")
    present = sum(not math.isnan(v) for v in scores.values())
    mean = mean_dice(scores)
    value = "-" if math.isnan(mean) else f"{mean:.4f}"
    lines.append(f"{'':>5}  {f'mean ({present} structures)':<{width}}  {value:>6}")
    return "\n".join(lines)


def _records(scores, names):
    names = FREESURFER_NAMES if names is None else names
    return [
        {
            "label": int(label),
            "name": names.get(label, structure_name(label)),
            "dice": None if math.isnan(dice) else float(dice),
        }
        for label, dice in scores.items()
    ]


def save_dice_json(scores, path, names=None):
    """Write Dice scores as JSON: structures (label, name, dice) and the mean.

    Absent structures have `"dice": null`; `"mean_dice"` is the mean over the
    present ones (`null` if none), `"num_structures"` their number.

    Args:
        scores: a dict `{label: dice}` as returned by `dice_scores`.
        path: the output file.
        names: a dict `{label: name}`, or None for `FREESURFER_NAMES`.
            Defaults to None.

    Returns:
        The path, as a string.
    """
    mean = mean_dice(scores)
    content = {
        "structures": _records(scores, names),
        "mean_dice": None if math.isnan(mean) else mean,
        "num_structures": sum(not math.isnan(v) for v in scores.values()),
    }
    path = os.fspath(path)
    with open(path, "w") as f:
        json.dump(content, f, indent=2)
    return path


def save_dice_csv(scores, path, names=None):
    """Write Dice scores as CSV: `label,name,dice` rows, then a `mean` row.

    Absent structures have an empty `dice` cell; the last row has label
    `mean`, the number of present structures as its name, and the mean Dice.

    Args:
        scores: a dict `{label: dice}` as returned by `dice_scores`.
        path: the output file.
        names: a dict `{label: name}`, or None for `FREESURFER_NAMES`.
            Defaults to None.

    Returns:
        The path, as a string.
    """
    path = os.fspath(path)
    mean = mean_dice(scores)
    present = sum(not math.isnan(v) for v in scores.values())
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "name", "dice"])
        for record in _records(scores, names):
            dice = record["dice"]
            writer.writerow(
                [record["label"], record["name"], "" if dice is None else repr(dice)]
            )
        writer.writerow(
            ["mean", f"{present} structures", "" if math.isnan(mean) else repr(mean)]
        )
    return path


def evaluate_segmentation(
    prediction,
    truth,
    labels=SYNTHSEG_STRUCTURES,
    names=None,
    json_path=None,
    csv_path=None,
    verbose=False,
):
    """Dice per structure and mean Dice; optionally print and save them.

    Args:
        prediction: integer label map (FreeSurfer values).
        truth: integer label map of the same shape, already in the evaluated
            label set (see `convert_freesurfer_segmentation`).
        labels: the structures to evaluate. Defaults to
            `SYNTHSEG_STRUCTURES`.
        names: a dict `{label: name}`, or None for `FREESURFER_NAMES`.
            Defaults to None.
        json_path: write the scores there as JSON, or None. Defaults to None.
        csv_path: write the scores there as CSV, or None. Defaults to None.
        verbose: print the table. Defaults to False.

    Returns:
        A dict with `"dice"` (`{label: dice}`, NaN for absent structures),
        `"mean_dice"` and `"num_structures"` (present in the truth).

    Raises:
        ValueError: as `dice_scores`.
    """
    scores = dice_scores(prediction, truth, labels)
    if verbose:
        print(format_dice_table(scores, names))
    if json_path is not None:
        save_dice_json(scores, json_path, names)
    if csv_path is not None:
        save_dice_csv(scores, csv_path, names)
    return {
        "dice": scores,
        "mean_dice": mean_dice(scores),
        "num_structures": sum(not math.isnan(v) for v in scores.values()),
    }


def convert_freesurfer_segmentation(
    segmentation,
    labels=SYNTHSEG_STRUCTURES,
    merges=None,
    midline_labels=MIDLINE_WHITE_MATTER,
    left_right_axis=0,
):
    """Map a FreeSurfer `aseg`-style ground truth onto the evaluated labels.

    SynthSeg's own evaluation (`SynthSeg/evaluate.py`) compares label values
    as they are; its training label maps hold no white-matter hypointensity,
    corpus callosum or choroid plexus labels, and its segmentation table
    maps lesions into white matter and vessels to background. To compare a
    SynthSeg-style prediction with a FreeSurfer `aseg` fairly, this:

    1. applies `merges` (default `FREESURFER_MERGES`: lesions 25/57 and
       lateralised WM hypointensities 78/79 -> cerebral white matter 2/41,
       choroid plexus 31/63 -> lateral ventricle 4/43);
    2. splits `midline_labels` (default: WM hypointensities 77, corpus
       callosum 251-255) into left (2) or right (41) cerebral white matter by
       the side of the mid-sagittal plane they lie on: the plane halfway
       between the centroids of the left and the right labels of
       `LEFT_RIGHT_PAIRS` along `left_right_axis`; which side is left is
       read from the data, so the axis may run either way;
    3. sets every value not in `labels` to 0 (e.g. vessels 30/62, 5th
       ventricle 72, non-WM hypointensities 80, optic chiasm 85).

    Args:
        segmentation: integer label map (FreeSurfer values), at least 1D.
        labels: the evaluated structures. Defaults to
            `SYNTHSEG_STRUCTURES`.
        merges: `{from: to}` merges, or None for `FREESURFER_MERGES`.
            Defaults to None.
        midline_labels: labels split into left/right white matter. Defaults
            to `MIDLINE_WHITE_MATTER`.
        left_right_axis: the array axis running left/right (0 in RAS).
            Defaults to 0.

    Returns:
        An int32 label map of the same shape with values in `labels` or 0.

    Raises:
        ValueError: on a non-integer map, invalid `labels`, or
            `left_right_axis` out of range.
    """
    labels = _check_labels(labels)
    segmentation = _as_labels(segmentation, "segmentation")
    if (
        isinstance(left_right_axis, bool)
        or not isinstance(left_right_axis, int)
        or not 0 <= left_right_axis < segmentation.ndim
    ):
        raise ValueError(
            f"Expected `left_right_axis` in [0, {segmentation.ndim}). "
            f"Received: left_right_axis={left_right_axis!r}"
        )
    merges = FREESURFER_MERGES if merges is None else dict(merges)
    out = segmentation.astype("int32", copy=True)
    for source, target in merges.items():
        out[segmentation == source] = target
    midline = np.isin(segmentation, list(midline_labels))
    if midline.any():
        position = np.arange(segmentation.shape[left_right_axis])
        shape = [1] * segmentation.ndim
        shape[left_right_axis] = -1
        position = np.broadcast_to(position.reshape(shape), segmentation.shape)
        left = np.isin(segmentation, list(LEFT_RIGHT_PAIRS))
        right = np.isin(segmentation, list(LEFT_RIGHT_PAIRS.values()))
        if left.any() and right.any():
            left_centre = position[left].mean()
            right_centre = position[right].mean()
        else:  # One hemisphere only: the array's centre, RAS direction.
            left_centre, right_centre = 0.0, segmentation.shape[left_right_axis] - 1.0
        plane = 0.5 * (left_centre + right_centre)
        on_left = (position < plane) == (left_centre < plane)
        out[midline & on_left] = 2
        out[midline & ~on_left] = 41
    out[~np.isin(out, labels)] = 0
    return out


# --- Registration ----------------------------------------------------------------

REGISTRATION_STRUCTURES = (
    2,
    3,
    4,
    7,
    8,
    10,
    11,
    12,
    16,
    41,
    42,
    43,
    46,
    47,
    49,
    50,
    51,
)
"""The large structures of the registration evaluation (FreeSurfer values).

Left and right cerebral white matter (2, 41) and cortex (3, 42), lateral
ventricles (4, 43), cerebellum white matter (7, 46) and cortex (8, 47),
thalamus (10, 49), caudate (11, 50), putamen (12, 51), brainstem (16).
"""


def _check_displacement(displacement):
    displacement = np.asarray(displacement)
    if (
        displacement.ndim < 2
        or displacement.shape[-1] != displacement.ndim - 1
        or not np.issubdtype(displacement.dtype, np.floating)
    ):
        raise ValueError(
            "Expected `displacement` to be a float array of shape (*spatial, "
            f"ndim) with ndim = len(spatial). Received: displacement with "
            f"shape {displacement.shape} and dtype {displacement.dtype}"
        )
    return displacement


def jacobian_statistics(displacement, mask=None, epsilon=1e-9):
    """Folding and smoothness of a displacement field from its Jacobian.

    The Jacobian determinant of `x -> x + d(x)` comes from
    `synthlayers.ops.jacobian.jacobian_determinant` (central differences
    inside, one-sided at the edges, as `numpy.gradient`), in float64 where
    the backend allows it (float32 under JAX without x64).

    - `folding_percent`: percentage of voxels with a determinant <= 0.
    - `log_jacobian_sd`: standard deviation (population, `ddof=0`) of
      `log(max(det, epsilon))` over the voxels (Learn2Reg's "SDlogJ";
      folded voxels count with `log(epsilon)`).
    - `jacobian_min`, `jacobian_max`: the extremes of the determinant.

    Args:
        displacement: float array `(*spatial, ndim)` in voxels (2D or 3D).
        mask: boolean array of the spatial shape restricting the
            statistics (e.g. the fixed brain), or None for all voxels.
            Defaults to None.
        epsilon: floor of the determinant before the logarithm. Defaults to
            `1e-9`.

    Returns:
        A dict of floats: `folding_percent`, `log_jacobian_sd`,
        `jacobian_min`, `jacobian_max`.

    Raises:
        ValueError: for a field that is not `(*spatial, ndim)` float, or a
            mask of another shape or without any voxel.

    Example:

    >>> import numpy as np
    >>> stats = jacobian_statistics(np.zeros((4, 5, 2)))
    >>> stats["folding_percent"], stats["log_jacobian_sd"]
    (0.0, 0.0)
    """
    from keras import ops

    from synthlayers.ops.jacobian import jacobian_determinant

    displacement = _check_displacement(displacement)
    det = ops.convert_to_numpy(
        jacobian_determinant(displacement[None].astype("float64"))
    )[0]
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != det.shape or not mask.any():
            raise ValueError(
                "Expected `mask` to be a non-empty boolean array of the field's "
                f"spatial shape {det.shape}. Received: mask with shape "
                f"{mask.shape} and {int(mask.sum())} voxels"
            )
        det = det[mask]
    det = det.ravel()
    log_det = np.log(np.maximum(det, epsilon))
    return {
        "folding_percent": float(100.0 * np.mean(det <= 0)),
        "log_jacobian_sd": float(np.std(log_det)),
        "jacobian_min": float(det.min()),
        "jacobian_max": float(det.max()),
    }


def evaluate_registration(
    moved_labels,
    fixed_labels,
    displacement=None,
    labels=REGISTRATION_STRUCTURES,
    mask=None,
):
    """Dice of warped labels against the fixed labels, and field statistics.

    Dice per structure by `dice_scores` (hard labels, background and
    values outside `labels` excluded; a structure absent from the fixed
    labels is NaN and left out of the mean).

    Args:
        moved_labels: the moving label map warped onto the fixed grid
            (integer, FreeSurfer values).
        fixed_labels: the fixed label map, same shape.
        displacement: the field `(*spatial, ndim)` in voxels, or None (no
            field statistics; e.g. no registration). Defaults to None.
        labels: the evaluated structures, or None for every non-zero value
            of `fixed_labels`. Defaults to `REGISTRATION_STRUCTURES`.
        mask: restricts the field statistics, as in `jacobian_statistics`.
            Defaults to None.

    Returns:
        A dict: `dice` (`{label: dice}`), `mean_dice`, `num_structures`,
        and with a `displacement` the entries of `jacobian_statistics`.

    Raises:
        ValueError: as `dice_scores` and `jacobian_statistics`.

    Example:

    >>> import numpy as np
    >>> fixed = np.array([[0, 2, 2], [0, 41, 41]])
    >>> result = evaluate_registration(fixed, fixed, np.zeros((2, 3, 2)))
    >>> result["mean_dice"], result["folding_percent"]
    (1.0, 0.0)
    """
    fixed_labels = _as_labels(fixed_labels, "fixed_labels")
    if labels is None:
        labels = [int(v) for v in np.unique(fixed_labels) if v != 0]
        if not labels:
            raise ValueError(
                "Expected `fixed_labels` with a non-zero label when "
                "`labels=None`. Received: fixed_labels with only zeros"
            )
    scores = dice_scores(moved_labels, fixed_labels, labels)
    result = {
        "dice": scores,
        "mean_dice": mean_dice(scores),
        "num_structures": sum(not math.isnan(v) for v in scores.values()),
    }
    if displacement is not None:
        displacement = _check_displacement(displacement)
        if displacement.shape[:-1] != fixed_labels.shape:
            raise ValueError(
                "Expected `displacement` on the grid of `fixed_labels`. "
                f"Received: displacement.shape={displacement.shape}, "
                f"fixed_labels.shape={fixed_labels.shape}"
            )
        result.update(jacobian_statistics(displacement, mask=mask))
    return result


# Contrast test cases of a real scan (NumPy/SciPy), re-exported.
from synthlayers.contrast_cases import CONTRAST_CASES  # noqa: E402, F401
from synthlayers.contrast_cases import make_contrast_case  # noqa: E402, F401
from synthlayers.contrast_cases import make_contrast_cases  # noqa: E402, F401
