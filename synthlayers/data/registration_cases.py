"""Registration test cases: the real scan and SynthSeg's held-out label maps.

No second real scan with a segmentation is available, so the cases are
built from what there is (deterministic given a seed):

- `"scan_to_synthetic"` (cross-subject, cross-contrast, real moving image):
  voxelmorph's T1-weighted test scan (`load_vxm_test_scan`) registered to
  an image rendered with a random contrast (`LabelsToImage.synthmorph`,
  no deformation, background set to 0 as the skull-stripped scan's) from
  a SynthSeg label map held out of training; the
  fixed labels are exact (the map itself), the moving labels are the
  scan's FreeSurfer segmentation mapped onto the same structures
  (`convert_freesurfer_segmentation`).
- `"synthetic_cross_contrast"`: two held-out maps (consecutive subjects),
  each rendered with its own random contrast.
- `"synthetic_same_contrast"`: the same two maps rendered with one
  contrast (one random mean per label for both images, Gaussian noise,
  blur).

Label maps are reduced to the brain (`brain_label_map`: the evaluated
SynthSeg structures, extra-cerebral labels to 0), as the scan is skull
stripped. In 2D each case is the axial (or `slice_axis`) slice through the
centre of the thalami (labels 10 and 49) of each volume, plus optional
offsets (mm).

Train registration models on `TRAINING_SUBJECTS` only.
"""

import dataclasses
import os

import numpy as np

from synthlayers.evaluation import convert_freesurfer_segmentation
from synthlayers.validation import check_choice

HELD_OUT_SUBJECTS = (17, 18, 19, 20)
"""SynthSeg training maps held out of registration training (test cases)."""

TRAINING_SUBJECTS = tuple(range(1, 17))
"""SynthSeg training maps a registration model may train on."""

CASE_KINDS = (
    "scan_to_synthetic",
    "synthetic_cross_contrast",
    "synthetic_same_contrast",
)
"""The kinds of case of `registration_cases`."""

SLICE_LABELS = (10, 49)
"""Labels whose centre picks the 2D slice (left and right thalamus)."""

BRAIN_SHAPE = (160, 192, 160)
"""Shape of `prepare_brain_maps`' maps (RAS, 1 mm): the brains fit in it."""

BRAIN_CENTRE_OFFSET = (0, 0, -5)
"""Where `prepare_brain_maps` puts the centre of its maps, from the thalami (mm).

In SynthSeg's 20 maps the cortex and the cerebellum span -81..71 mm along
the inferior-superior axis around the centre of the thalami: a 160-voxel
box centred 5 mm below the thalami holds them all."""


@dataclasses.dataclass(eq=False)
class RegistrationCase:
    """One registration test case: images and labels in RAS+ order, 1 mm voxels.

    Attributes:
        name: e.g. `"scan_to_synthetic/17"`.
        kind: one of `CASE_KINDS`.
        moving: float32 image.
        fixed: float32 image.
        moving_labels: int32 labels on the moving image's grid.
        fixed_labels: int32 labels on the fixed image's grid.
    """

    name: str
    kind: str
    moving: np.ndarray
    fixed: np.ndarray
    moving_labels: np.ndarray
    fixed_labels: np.ndarray


def brain_label_map(label_map):
    """The brain of a FreeSurfer/SynthSeg label map: evaluated structures only.

    `convert_freesurfer_segmentation` with its defaults: lesions and
    hypointensities into white matter, choroid plexus into the ventricles,
    the corpus callosum split into left/right white matter, every value
    that is not one of `SYNTHSEG_STRUCTURES` (extra-cerebral labels,
    vessels, optic chiasm) to 0.

    Args:
        label_map: integer array (RAS+, first axis left to right).

    Returns:
        An int32 array of the same shape.
    """
    return convert_freesurfer_segmentation(label_map)


def _centre_crop(array, shape, centre):
    """`array` cropped/padded (zeros) to `shape` around the voxel `centre`."""
    out = np.zeros(shape, dtype=array.dtype)
    source, target = [], []
    for n, m, c in zip(array.shape, shape, centre):
        start = int(round(c)) - m // 2
        lo, hi = max(start, 0), min(start + m, n)
        source.append(slice(lo, hi))
        target.append(slice(lo - start, hi - start))
    out[tuple(target)] = array[tuple(source)]
    return out


def _brain_centre(label_map, labels=SLICE_LABELS):
    """The centre of the thalami (`labels`), else of the brain's bounding box.

    Centring every map on one landmark aligns them anatomically (up to
    size and rotation): the centre of the bounding box does not, as the
    brainstem's extent differs between maps by tens of millimetres (in
    SynthSeg's maps the thalami sit 81 to 125 voxels up a 160-voxel box
    centred on the bounding box).
    """
    mask = np.isin(label_map, list(labels))
    if mask.any():
        return [i.mean() for i in np.nonzero(mask)]
    return [(i.min() + i.max()) / 2 for i in np.nonzero(label_map)]


def prepare_brain_maps(subjects, shape=BRAIN_SHAPE, data_dir=None):
    """SynthSeg maps reduced to the brain, centred in a common shape (RAS, 1 mm).

    Each map is cropped (or padded) to `shape` around the centre of its
    thalami (`SLICE_LABELS`) moved by `BRAIN_CENTRE_OFFSET`, so that one
    index is about one anatomical position in every map: a slice at one
    index is at one level, as in SynthMorph's training pairs (which are
    affinely aligned). `BRAIN_SHAPE` keeps the cerebrum and the cerebellum
    of SynthSeg's maps whole (the brainstem's lower end may be cut).

    Args:
        subjects: numbers of SynthSeg's maps (1 to 20).
        shape: the output shape, centred on each brain's thalami (moved by
            `BRAIN_CENTRE_OFFSET`).
            Defaults to `BRAIN_SHAPE`.
        data_dir: data directory, as `fetch_synthseg_label_maps`. Defaults
            to None.

    Returns:
        A list of int32 arrays of `shape`.
    """
    from synthlayers.data.prepare import load_label_map
    from synthlayers.data.synthseg import fetch_synthseg_label_maps

    paths = fetch_synthseg_label_maps(list(subjects), data_dir=data_dir)
    maps = []
    for path in paths:
        label_map, _ = load_label_map(path)
        brain = brain_label_map(label_map)
        centre = np.add(_brain_centre(brain), BRAIN_CENTRE_OFFSET)
        maps.append(_centre_crop(brain, tuple(shape), centre))
    return maps


def render_label_map(label_map, seed, skull_stripped=True):
    """An image of `label_map` with a random SynthMorph contrast (no deformation).

    `LabelsToImage.synthmorph(labels, deformation_std=0, seed=seed)` on the
    map's own label values (background 0 included), one draw; with
    `skull_stripped`, the background (label 0) is set to 0 afterwards, as
    in a skull-stripped scan (SynthMorph's inputs at test time).

    Args:
        label_map: 2D or 3D integer array.
        seed: integer seed (the same seed gives the same image).
        skull_stripped: zero background. Defaults to True.

    Returns:
        A float32 image of the map's shape.
    """
    from keras import ops

    from synthlayers.layers import LabelsToImage

    labels = sorted({0, *np.unique(label_map).tolist()})
    generator = LabelsToImage.synthmorph(labels, deformation_std=0.0, seed=int(seed))
    out = generator(label_map[None, ..., None].astype("int32"), training=True)
    image = ops.convert_to_numpy(out["images"])[0, ..., 0].astype("float32")
    if skull_stripped:
        image = np.where(label_map == 0, 0, image).astype("float32")
    return image


def render_same_contrast(label_maps, seed, noise_std=5.0, blur_sigma=1.0):
    """Render several label maps with one contrast: one random mean per label.

    Means U(25, 225) per label value (background 0 stays 0), Gaussian noise
    of `noise_std`, Gaussian blur of `blur_sigma` voxels, divided by 255.

    Args:
        label_maps: a list of integer arrays.
        seed: integer seed.
        noise_std: noise standard deviation (intensity units of 0-255).
            Defaults to `5.0`.
        blur_sigma: blur (voxels). Defaults to `1.0`.

    Returns:
        A list of float32 images.
    """
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    values = sorted(set().union(*[np.unique(m).tolist() for m in label_maps]))
    means = dict(zip(values, rng.uniform(25, 225, len(values))))
    means[0] = 0.0
    images = []
    for label_map in label_maps:
        lookup = np.vectorize(means.get, otypes=["float64"])
        image = lookup(label_map) + rng.normal(0, noise_std, label_map.shape)
        image = ndimage.gaussian_filter(np.clip(image, 0, None), blur_sigma)
        images.append((image / 255.0).astype("float32"))
    return images


def slice_index(label_map, axis=2, labels=SLICE_LABELS, offset=0):
    """The index of the slice through the centre of `labels` along `axis`.

    Args:
        label_map: 3D integer array.
        axis: the slicing axis. Defaults to `2` (axial in RAS).
        labels: the labels whose centre of mass is taken. Defaults to
            `SLICE_LABELS` (the thalami).
        offset: voxels added to the index. Defaults to `0`.

    Returns:
        An int, clipped to the array.
    """
    mask = np.isin(label_map, list(labels))
    if not mask.any():
        mask = label_map != 0
    position = np.nonzero(mask)[axis].mean()
    return int(np.clip(round(position) + offset, 0, label_map.shape[axis] - 1))


def _slice(volume, axis, index):
    return np.ascontiguousarray(np.take(volume, index, axis=axis))


def registration_cases(
    ndim=2,
    kinds=CASE_KINDS,
    subjects=HELD_OUT_SUBJECTS,
    seed=0,
    slice_axis=2,
    slice_offsets=(0,),
    data_dir=None,
):
    """The registration test cases (see the module docstring), deterministic.

    Args:
        ndim: 2 (slices) or 3 (volumes). Defaults to `2`.
        kinds: the kinds of case, a subset of `CASE_KINDS`. Defaults to all.
        subjects: the held-out SynthSeg maps. Defaults to
            `HELD_OUT_SUBJECTS`.
        seed: integer seed of the contrasts. Defaults to `0`.
        slice_axis: the slicing axis in 2D. Defaults to `2` (axial).
        slice_offsets: offsets (voxels = mm) of the 2D slices from the
            centre of the thalami; one case per offset. Defaults to `(0,)`.
        data_dir: data directory (`$SYNTHLAYERS_DATA_DIR` when None).
            Defaults to None.

    Returns:
        A list of `RegistrationCase`: for each subject, a scan case; for
        each pair of consecutive subjects (cyclic), a cross-contrast and a
        same-contrast pair; times the number of offsets in 2D.

    Raises:
        ValueError: for a bad `ndim`, `kinds` or `subjects`.
    """
    if ndim not in (2, 3):
        raise ValueError(f"Expected `ndim` to be 2 or 3. Received: ndim={ndim!r}")
    kinds = [check_choice(k, "kinds", CASE_KINDS) for k in kinds]
    subjects = [int(s) for s in subjects]
    if not subjects:
        raise ValueError(
            f"Expected at least one subject. Received: subjects={subjects}"
        )
    from synthlayers.data.voxelmorph import load_vxm_test_scan

    maps = dict(zip(subjects, prepare_brain_maps(subjects, data_dir=data_dir)))
    cases = []
    offsets = list(slice_offsets) if ndim == 2 else [None]
    scan = labels = None
    if "scan_to_synthetic" in kinds:
        scan, scan_labels = load_vxm_test_scan(data_dir=data_dir)
        labels = brain_label_map(scan_labels)
        scan = np.where(labels > 0, scan, 0).astype("float32")

    def view(volume, label_volume, offset):
        if ndim == 3:
            return volume
        return _slice(
            volume, slice_axis, slice_index(label_volume, slice_axis, offset=offset)
        )

    pairs = [
        (subjects[i], subjects[(i + 1) % len(subjects)]) for i in range(len(subjects))
    ]
    if len(subjects) == 1:
        pairs = []
    for offset in offsets:
        suffix = "" if offset in (None, 0) else f"@{offset:+d}"
        for k, subject in enumerate(subjects):
            if "scan_to_synthetic" not in kinds:
                break
            fixed_labels = view(maps[subject], maps[subject], offset)
            fixed = render_label_map(fixed_labels, seed * 1000 + k)
            cases.append(
                RegistrationCase(
                    name=f"scan_to_synthetic/{subject}{suffix}",
                    kind="scan_to_synthetic",
                    moving=view(scan, labels, offset),
                    fixed=fixed,
                    moving_labels=view(labels, labels, offset),
                    fixed_labels=fixed_labels,
                )
            )
        for k, (first, second) in enumerate(pairs):
            moving_labels = view(maps[first], maps[first], offset)
            fixed_labels = view(maps[second], maps[second], offset)
            if "synthetic_cross_contrast" in kinds:
                cases.append(
                    RegistrationCase(
                        name=f"synthetic_cross_contrast/{first}-{second}{suffix}",
                        kind="synthetic_cross_contrast",
                        moving=render_label_map(
                            moving_labels, seed * 1000 + 100 + 2 * k
                        ),
                        fixed=render_label_map(fixed_labels, seed * 1000 + 101 + 2 * k),
                        moving_labels=moving_labels,
                        fixed_labels=fixed_labels,
                    )
                )
            if "synthetic_same_contrast" in kinds:
                moving, fixed = render_same_contrast(
                    [moving_labels, fixed_labels], seed * 1000 + 200 + k
                )
                cases.append(
                    RegistrationCase(
                        name=f"synthetic_same_contrast/{first}-{second}{suffix}",
                        kind="synthetic_same_contrast",
                        moving=moving,
                        fixed=fixed,
                        moving_labels=moving_labels,
                        fixed_labels=fixed_labels,
                    )
                )
    return cases


def data_available(data_dir=None):
    """Whether the local data directory holds the scan and SynthSeg's maps."""
    from synthlayers.data.registry import local_data_dir

    directory = data_dir or local_data_dir()
    return (
        bool(directory)
        and os.path.isfile(os.path.join(directory, "vxm_test_scan.npz"))
        and os.path.isdir(os.path.join(directory, "synthseg_label_maps"))
    )
