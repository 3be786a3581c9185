"""Train a SynthSeg-style segmenter on label maps, in one call.

`train_segmentation` does what SynthSeg's training does, on the user's own
label maps or SynthSeg's: the maps are read (files, a directory or arrays),
brought to the training voxel size and compacted to label indices; each
step `LabelsToImage.synthseg` synthesises a random image and its target
from a batch of maps inside the model (`SegmentationModel`), and a U-Net
(`synthlayers.models.unet`) learns to segment it (soft Dice plus
cross-entropy, `DiceLoss`). Training lasts a number of steps or minutes,
with a learning rate decaying linearly over the budget (`TrainingBudget`);
checkpoints (model files with the optimizer state) are written during
long runs, and a run resumes from one. The result is a
`synthlayers.models.Segmenter`: `segmenter.save("model.keras")`, then
`synthlayers.inference.segment("model.keras", scan)` anywhere.

`evaluate_on_test_scan` segments voxelmorph's real T1 scan (never seen in
training) and scores it against its FreeSurfer segmentation;
`evaluate_contrast_cases` does the same on contrasts made from it
(`synthlayers.contrast_cases`: inverted, remapped, 3 mm, 5 mm slices).
"""

import glob
import io as _io
import json
import math
import os
import time

import keras
import numpy as np

from synthlayers import data
from synthlayers import evaluation
from synthlayers.contrast_cases import CONTRAST_CASES
from synthlayers.inference.segment import segment
from synthlayers.layers import LabelsToImage
from synthlayers.losses import DiceLoss
from synthlayers.models.model_file import atomic_write
from synthlayers.models.model_file import read_metadata
from synthlayers.models.model_file import read_model_file_entry
from synthlayers.models.model_file import save_model_file
from synthlayers.models.segmentation import SegmentationModel
from synthlayers.models.segmenter import Segmenter
from synthlayers.models.segmenter import load_segmenter
from synthlayers.models.unet import unet
from synthlayers.validation import check_bool
from synthlayers.validation import check_choice
from synthlayers.validation import check_int
from synthlayers.validation import check_number
from synthlayers.validation import check_probability

VIEWS = {"sagittal": 0, "coronal": 1, "axial": 2}
"""2D views: the RAS axis that slices run along. A sagittal slice alone
cannot tell the left hemisphere from the right one."""

CONTRASTS = ("t1", "any")
MAX_SPACING = {"t1": 2.0, "any": 8.0}
"""`train_segmentation`'s largest simulated acquisition spacing (mm) per contrast."""

# The structures scored on the test scan: SynthSeg's v1 targets (no CSF).
_TEST_SCAN_STRUCTURES = evaluation.SYNTHSEG_STRUCTURES_V1

TRAINING_STATE_ENTRY = "training_state.npz"
"""Zip entry of a checkpoint holding the optimizer's and the generator's
variables (see `train_segmentation(checkpoint=...)`)."""

LABEL_MAP_SUFFIXES = (".nii", ".nii.gz", ".mgz", ".mgh")

# Crop sizes in mm: SynthSeg's 160^3 in 3D; 192 x 192 slices in 2D.
_FIELD_OF_VIEW_MM = {2: 192.0, 3: 160.0}


class TrainingBudget(keras.callbacks.Callback):
    """Stop training after `seconds`, or after `steps` batches if sooner.

    The learning rate decays linearly with the share of the budget spent
    (of `steps` if given, else of `seconds`), from its initial value to 5%
    of it at the end, so that the network the run ends with has settled,
    whatever the number of steps the time allows. A step budget makes runs
    on different machines comparable. A resumed run counts the steps and
    seconds of the run it resumes (`start_steps`, `start_seconds`).

    Args:
        seconds: the time budget (seconds), or None for none. Defaults to
            None.
        steps: the step budget, or None for none. Defaults to None.
        start_steps: steps already taken (a resumed run). Defaults to 0.
        start_seconds: seconds already spent (a resumed run). Defaults to
            0.0.
        initial_rate: the learning rate at the start of the budget, or None
            for the optimizer's when training begins. Defaults to None.
    """

    def __init__(
        self,
        seconds=None,
        steps=None,
        start_steps=0,
        start_seconds=0.0,
        initial_rate=None,
    ):
        super().__init__()
        if seconds is None and steps is None:
            raise ValueError(
                "Expected a time budget `seconds` or a step budget `steps`. "
                "Received: seconds=None, steps=None"
            )
        self.seconds = seconds
        self.max_steps = steps
        self.steps = int(start_steps)
        self.start_seconds = float(start_seconds)
        self.initial_rate = initial_rate
        self.start = None

    def elapsed(self):
        """Seconds spent on the budget (this run and the resumed ones)."""
        if self.start is None:
            return self.start_seconds
        return self.start_seconds + time.perf_counter() - self.start

    def spent(self):
        """Share of the budget spent, in [0, 1] (or more)."""
        shares = []
        if self.max_steps is not None:
            shares.append(self.steps / self.max_steps)
        if self.seconds is not None and self.max_steps is None:
            shares.append(self.elapsed() / self.seconds)
        return max(shares)

    def done(self):
        """True when the steps or the time are spent."""
        if self.max_steps is not None and self.steps >= self.max_steps:
            return True
        return self.seconds is not None and self.elapsed() >= self.seconds

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        if self.initial_rate is None:
            self.initial_rate = float(
                keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
            )
        if self.done():
            self.model.stop_training = True

    def on_train_batch_begin(self, batch, logs=None):
        rate = self.initial_rate * max(0.05, 1 - self.spent())
        self.model.optimizer.learning_rate = rate

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.done():
            self.model.stop_training = True


def _as_view_axes(views):
    views = (views,) if isinstance(views, (str, int)) else tuple(views)
    axes = []
    for view in views:
        if isinstance(view, str) and view in VIEWS:
            axes.append(VIEWS[view])
        elif isinstance(view, int) and not isinstance(view, bool) and 0 <= view < 3:
            axes.append(view)
        else:
            axes = None
            break
    if not axes or len(set(axes)) != len(axes):
        raise ValueError(
            f"Expected `views` to be distinct names among {tuple(VIEWS)} or RAS "
            f"axes 0, 1, 2. Received: views={views!r}"
        )
    return tuple(axes)


def _label_map_files(label_maps):
    """The files of `label_maps` (a directory, a path, or a list of paths)."""
    if isinstance(label_maps, (str, os.PathLike)):
        path = os.fspath(label_maps)
        if os.path.isdir(path):
            files = sorted(
                f
                for f in glob.glob(os.path.join(path, "*"))
                if f.endswith(LABEL_MAP_SUFFIXES)
            )
            if not files:
                raise ValueError(
                    f"Expected label maps ({', '.join(LABEL_MAP_SUFFIXES)}) in the "
                    f"directory `label_maps`. Received: label_maps={path!r}, with "
                    "none"
                )
            return files
        return [path]
    if isinstance(label_maps, (list, tuple)) and all(
        isinstance(m, (str, os.PathLike)) for m in label_maps
    ):
        return [os.fspath(m) for m in label_maps]
    return None


def _read_label_maps(label_maps, label_voxel_size):
    """`(maps, voxel sizes, description)` from files or arrays."""
    files = _label_map_files(label_maps)
    if files is not None:
        if not files:
            raise ValueError("Expected at least one label map. Received: label_maps=[]")
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise FileNotFoundError(f"Label map(s) not found: {missing}")
        maps, sizes = [], []
        for path in files:
            label_map, voxel_sizes = data.load_label_map(path)
            maps.append(label_map)
            sizes.append(voxel_sizes)
        return maps, sizes, f"{len(files)} label maps from files"
    if isinstance(label_maps, np.ndarray) and label_maps.ndim == 4:
        label_maps = list(label_maps)
    elif isinstance(label_maps, np.ndarray):
        label_maps = [label_maps]
    if not isinstance(label_maps, (list, tuple)) or not label_maps:
        raise ValueError(
            "Expected `label_maps` to be None (SynthSeg's maps), a directory, "
            "label map files, or integer arrays (3D). Received: "
            f"label_maps of type {type(label_maps).__name__}"
        )
    maps = []
    for i, label_map in enumerate(label_maps):
        label_map = np.asarray(label_map)
        if label_map.ndim != 3 or not np.issubdtype(label_map.dtype, np.integer):
            raise ValueError(
                f"Expected `label_maps[{i}]` to be a 3D integer array. Received: "
                f"shape {label_map.shape}, dtype {label_map.dtype}"
            )
        maps.append(label_map)
    size = check_number(label_voxel_size, "label_voxel_size", min_value=1e-6)
    return maps, [(size,) * 3] * len(maps), f"{len(maps)} label maps (arrays)"


def _pad_to_common_shape(maps, cube=False):
    """Zero-pad maps (centred) to one shape; a cube for several 2D views."""
    shape = tuple(max(m.shape[a] for m in maps) for a in range(3))
    if cube:  # slices along several axes must share one shape
        shape = (max(shape),) * 3
    padded = []
    for m in maps:
        pads = [((n - s) // 2, n - s - (n - s) // 2) for s, n in zip(m.shape, shape)]
        padded.append(np.pad(m, pads) if any(p != (0, 0) for p in pads) else m)
    return padded


def _synthseg_tables(data_dir, contrast):
    """SynthSeg's generation labels and classes, targets and T1 priors."""
    labels, classes = data.synthseg_generation_labels(
        data_dir, contrast_specific=contrast == "t1"
    )
    directory = os.path.join(os.fspath(data_dir), "synthseg_labels")
    segmentation = np.load(
        os.path.join(directory, "synthseg_segmentation_labels.npy")
    ).astype("int64")
    # SynthSeg's targets: one per generation label (extra-cerebral -> 0).
    targets = dict(zip(labels.tolist(), segmentation.ravel().tolist()))
    priors = {}
    if contrast == "t1":  # SynthSeg's T1 priors, per contrast-specific class
        for name in ("prior_means", "prior_stds"):
            priors[name] = np.load(os.path.join(directory, f"{name}_t1.npy")).tolist()
    return labels, classes, targets, priors


def _target_mapping(generation_labels, output_labels):
    """`{generation label: target value}` and the sorted target values."""
    if output_labels is None:
        mapping = {v: v for v in generation_labels}
    elif isinstance(output_labels, dict):
        mapping = {int(k): int(v) for k, v in output_labels.items()}
    else:
        mapping = {int(v): int(v) for v in np.ravel(output_labels)}
    values = set(mapping.values())
    if set(generation_labels) - set(mapping):
        values.add(0)  # the labels without a target become background
    return mapping, sorted(values)


def _compact_arguments(generation_labels, mapping, values):
    """`LabelsToImage` label arguments for compact maps, targets as 0..K-1."""
    arguments = data.compact_label_arguments(generation_labels, mapping)
    index = {v: i for i, v in enumerate(values)}
    targets = {k: index[v] for k, v in arguments["output_labels"].items()}
    for i in range(len(generation_labels)):
        targets.setdefault(i, index[0])
    arguments["output_labels"] = targets
    return arguments


def _save_checkpoint(path, segmenter, model, state):
    """A model file with the optimizer's and generator's variables."""
    arrays = {}
    for i, v in enumerate(model.optimizer.variables):
        arrays[f"optimizer_{i}"] = keras.ops.convert_to_numpy(v)
    for i, v in enumerate(model.generator.variables):
        arrays[f"generator_{i}"] = keras.ops.convert_to_numpy(v)
    buffer = _io.BytesIO()
    np.savez(buffer, **arrays)
    metadata = segmenter.metadata
    metadata["provenance"]["training_state"] = state
    save_model_file(
        path,
        segmenter.network,
        metadata,
        entries={TRAINING_STATE_ENTRY: buffer.getvalue()},
    )


def _restore_training_state(path, model):
    content = read_model_file_entry(path, TRAINING_STATE_ENTRY)
    if content is None:
        return False
    arrays = np.load(_io.BytesIO(content))
    model.optimizer.build(model.trainable_variables)
    for prefix, variables in (
        ("optimizer", model.optimizer.variables),
        ("generator", model.generator.variables),
    ):
        names = sorted(
            (n for n in arrays.files if n.startswith(prefix + "_")),
            key=lambda n: int(n.rsplit("_", 1)[1]),
        )
        if len(names) != len(variables) or any(
            arrays[n].shape != tuple(v.shape) for n, v in zip(names, variables)
        ):
            raise ValueError(
                f"Expected the checkpoint's {prefix} state to fit this run "
                f"({len(variables)} variables). Received {len(names)} arrays in "
                f"{path!r}; was it written with other settings?"
            )
        for name, variable in zip(names, variables):
            variable.assign(arrays[name])
    return True


class _Checkpoints(keras.callbacks.Callback):
    """Writes a checkpoint at epoch ends, every `minutes` or `steps`."""

    def __init__(self, path, make_segmenter, budget, losses, minutes, steps):
        super().__init__()
        self.path = path
        self.make_segmenter = make_segmenter
        self.budget = budget
        self.losses = losses
        self.minutes = minutes
        self.every_steps = steps
        self.last_time = time.perf_counter()
        self.last_steps = budget.steps
        self.epoch = 0
        self.written = 0

    def state(self):
        return {
            "steps": self.budget.steps,
            "seconds": self.budget.elapsed(),
            "epoch": self.epoch,
            "losses": list(self.losses),
            "initial_learning_rate": self.budget.initial_rate,
        }

    def write(self):
        _save_checkpoint(
            self.path, self.make_segmenter(self.state()), self.model, self.state()
        )
        self.written += 1
        self.last_time = time.perf_counter()
        self.last_steps = self.budget.steps

    def on_epoch_end(self, epoch, logs=None):
        self.epoch += 1
        due_time = (
            self.minutes is not None
            and time.perf_counter() - self.last_time >= 60 * self.minutes
        )
        due_steps = (
            self.every_steps is not None
            and self.budget.steps - self.last_steps >= self.every_steps
        )
        if due_time or due_steps:
            self.write()


class _EpochLosses(keras.callbacks.Callback):
    def __init__(self, losses):
        super().__init__()
        self.losses = losses

    def on_epoch_end(self, epoch, logs=None):
        if logs and "loss" in logs:
            self.losses.append(float(logs["loss"]))


def train_segmentation(
    label_maps=None,
    *,
    output_labels=None,
    generation_labels=None,
    generation_classes=None,
    label_voxel_size=1.0,
    ndim=2,
    views=("coronal",),
    voxel_size=1.0,
    output_shape=None,
    steps=None,
    minutes=None,
    batch_size=None,
    steps_per_epoch=50,
    contrast=None,
    max_spacing=None,
    skull_stripped=1.0,
    min_foreground=0.1,
    max_label_maps=None,
    levels=5,
    features=16,
    learning_rate=1e-3,
    cross_entropy=1.0,
    ignore_absent_labels=True,
    generator_overrides=None,
    flip=True,
    cleanup=True,
    data_dir=None,
    checkpoint=None,
    checkpoint_minutes=10.0,
    checkpoint_steps=None,
    resume=None,
    callbacks=None,
    seed=0,
    verbose=1,
):
    """Train a segmentation network on label maps alone (SynthSeg); a `Segmenter`.

    Steps: (1) the label maps are read (NIfTI/MGH files in RAS+ order, see
    `synthlayers.data.load_label_map`, or arrays), resampled to `voxel_size`
    (nearest neighbour, `resample_label_map`), padded to one shape (a cube
    for several 2D views) and
    compacted to label indices (`compact_labels`); with `skull_stripped`, a
    share of them loses its extra-cerebral labels (SynthSeg's values >= 500);
    (2) `LabelsToImage.synthseg` (with SynthSeg's T1 intensity priors for
    `contrast="t1"`) synthesises an image and its target from each map (2D:
    random slices along `views`) inside a `SegmentationModel`, whose U-Net
    (`unet`, instance normalisation) is trained with `DiceLoss` (plus
    `cross_entropy` times the cross-entropy) and Adam; (3) training stops
    after `steps` steps or `minutes` minutes, whichever comes first; the
    learning rate decays linearly over the budget to 5% of
    `learning_rate` (`TrainingBudget`); (4) the trained network and every
    setting inference needs come back as a `Segmenter`.

    With `checkpoint`, a model file (a usable segmenter, plus the
    optimizer's and the generator's state) is written atomically every
    `checkpoint_minutes` minutes or `checkpoint_steps` steps (at the end of
    an epoch of `steps_per_epoch` steps) and at the end. With `resume` (such
    a file), training continues from it: network weights, optimizer state,
    step counter, elapsed time, the feed's position; `steps` and `minutes`
    count the whole training, resumed part included.

    Args:
        label_maps: None for SynthSeg's 20 training maps (downloaded or
            found in `data_dir`, `$SYNTHLAYERS_DATA_DIR`; see
            `synthlayers.data.fetch_data`), a directory of label maps, a
            list of files, or a list of 3D integer arrays (or one 4D array).
            Defaults to None.
        output_labels: the targets: None (SynthSeg's segmentation labels
            for SynthSeg's tables, else every generation label), a list of
            label values (the others become background, 0) or a
            `{generation label: target}` dict. Defaults to None.
        generation_labels: every label value of the maps, or None (SynthSeg's
            54 for SynthSeg's maps or `contrast="t1"`, else the values found
            in the maps). Defaults to None.
        generation_classes: the intensity class of each generation label
            (labels of a class share one Gaussian), or None (SynthSeg's, or
            one class per label). Defaults to None.
        label_voxel_size: voxel size (mm) of array label maps (files carry
            theirs). Defaults to 1.0.
        ndim: 2 (random slices, slice-by-slice inference) or 3 (whole
            volumes, for a GPU). Defaults to 2.
        views: 2D: the views of the training slices (`"coronal"`,
            `"axial"`, `"sagittal"` or RAS axes); several are averaged in
            inference. Defaults to `("coronal",)`.
        voxel_size: the training voxel size (mm). Defaults to 1.0.
        output_shape: the synthesised crop, or None for 192 mm squares (2D)
            or 160 mm cubes (3D) at `voxel_size`, rounded to the U-Net's
            divisor. Defaults to None.
        steps: the step budget, or None. Defaults to None.
        minutes: the time budget, or None (10 minutes without `steps`).
            Defaults to None.
        batch_size: maps (or slices) per step, or None for 4 (2D) or 1
            (3D). Defaults to None.
        steps_per_epoch: steps between epoch ends (loss report,
            checkpoints). Defaults to 50.
        contrast: `"t1"` (SynthSeg's T1 priors and contrast-specific
            classes: a T1 network within a CPU budget; needs SynthSeg's
            generation labels), `"any"` (SynthSeg's contrast-agnostic draws),
            or None for `"t1"` with SynthSeg's maps and `"any"` with the
            user's. Defaults to None.
        max_spacing: the largest simulated acquisition spacing (mm), or
            None for `MAX_SPACING[contrast]`: 2 with `"t1"` (a network for
            scans of about 1 mm), 8 with `"any"` (SynthSeg's range: thick
            slices, low resolution). Defaults to None.
        skull_stripped: share of the maps without extra-cerebral labels
            (0..1); 1 keeps only stripped maps. Defaults to 1.0.
        min_foreground: 2D: the smallest share of labelled voxels of a
            training slice. Defaults to 0.1.
        max_label_maps: use only the first maps, or None for all. Defaults
            to None.
        levels: U-Net levels. Defaults to 5.
        features: U-Net features at the first level. Defaults to 16.
        learning_rate: Adam's initial learning rate. Defaults to 1e-3.
        cross_entropy: weight of the cross-entropy added to the Dice loss
            (0: SynthSeg's Dice alone). Defaults to 1.0.
        ignore_absent_labels: Dice over the labels present in each sample.
            Defaults to True.
        generator_overrides: `{name: value}` arguments of
            `LabelsToImage.synthseg` overriding the workflow's. Defaults to
            None.
        flip: the segmenter's default left/right flip augmentation in
            inference. Defaults to True.
        cleanup: the segmenter's default SynthSeg clean-up (smoothing 0.5,
            largest component per structure). Defaults to True.
        data_dir: the data directory for SynthSeg's files, or None (see
            `synthlayers.data.fetch_data`). Defaults to None.
        checkpoint: a `.keras` path for checkpoints, or None. Defaults to
            None.
        checkpoint_minutes: minutes between checkpoints, or None. Defaults
            to 10.0.
        checkpoint_steps: steps between checkpoints, or None. Defaults to
            None.
        resume: a checkpoint to continue from, or None. Defaults to None.
        callbacks: further Keras callbacks for `fit` (e.g. a progress bar).
            Defaults to None.
        seed: the seed of the network's initialisation, the feed and the
            generator. Defaults to 0.
        verbose: 0 silent, 1 a line per stage and per epoch, 2 Keras's
            progress bar. Defaults to 1.

    Returns:
        A `Segmenter`; its `provenance` holds the generator's configuration,
        `steps`, `seconds`, `losses` (per epoch) and the training arguments.

    Raises:
        ValueError: on invalid arguments, label maps with values missing
            from `generation_labels`, or a `resume` file of other settings.
        FileNotFoundError: for missing label map files or `resume`.

    Example:

    >>> segmenter = train_segmentation(minutes=10)  # doctest: +SKIP
    >>> segmenter.save("model.keras")  # doctest: +SKIP

    A tiny run on label maps made in code (`minutes=0` only prepares):

    >>> import numpy as np
    >>> maps = np.random.default_rng(0).integers(0, 3, (2, 16, 16, 16))
    >>> segmenter = train_segmentation(
    ...     maps, minutes=0, levels=2, features=2, output_shape=(16, 16),
    ...     verbose=0)
    >>> segmenter.output_labels, segmenter.ndim, segmenter.provenance["steps"]
    ([0, 1, 2], 2, 0)
    """
    ndim = check_choice(ndim, "ndim", (2, 3))
    slice_axes = _as_view_axes(views) if ndim == 2 else None
    voxel_size = check_number(voxel_size, "voxel_size", min_value=1e-6)
    if steps is not None:
        steps = check_int(steps, "steps", min_value=1)
    if minutes is not None:
        minutes = check_number(minutes, "minutes", min_value=0)
    if steps is None and minutes is None:
        minutes = 10.0
    batch_size = (4 if ndim == 2 else 1) if batch_size is None else batch_size
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    steps_per_epoch = check_int(steps_per_epoch, "steps_per_epoch", min_value=1)
    if contrast is None:
        contrast = "t1" if label_maps is None else "any"
    check_choice(contrast, "contrast", CONTRASTS)
    if max_spacing is None:
        max_spacing = MAX_SPACING[contrast]
    skull_stripped = check_probability(skull_stripped, "skull_stripped")
    levels = check_int(levels, "levels", min_value=1)
    cross_entropy = check_number(cross_entropy, "cross_entropy", min_value=0)
    learning_rate = check_number(learning_rate, "learning_rate", min_value=0)
    flip = check_bool(flip, "flip")
    cleanup = check_bool(cleanup, "cleanup")
    seed = check_int(seed, "seed", min_value=0)
    for name, value in (("checkpoint", checkpoint), ("resume", resume)):
        if value is not None and not os.fspath(value).endswith(".keras"):
            raise ValueError(
                f"Expected `{name}` to be a `.keras` path. Received: {name}={value!r}"
            )
    resume_state = None
    if resume is not None:
        resume_metadata = read_metadata(resume, kind="segmentation")
        resume_state = resume_metadata["provenance"].get("training_state")
        if resume_state is None:
            raise ValueError(
                f"Expected a checkpoint written by train_segmentation(checkpoint=...) "
                f"as `resume`. Received: {os.fspath(resume)!r}, a model file "
                "without training state"
            )
    log = print if verbose else (lambda *args, **kwargs: None)
    keras.utils.set_random_seed(seed)

    # (1) Label maps and label tables.
    use_synthseg = generation_labels is None and (
        label_maps is None or contrast == "t1"
    )
    priors = {}
    if use_synthseg:
        directory = data.fetch_data(data_dir=data_dir)
        labels, classes, targets, priors = _synthseg_tables(directory, contrast)
        if generation_classes is not None:
            classes = np.asarray(generation_classes)
        if output_labels is None:
            output_labels = targets
    elif contrast == "t1":
        raise ValueError(
            "Expected `contrast='any'` with your own `generation_labels`: "
            "contrast='t1' uses SynthSeg's T1 priors, defined for SynthSeg's "
            "generation labels and classes. Received: contrast='t1', "
            f"generation_labels={generation_labels!r}"
        )
    if label_maps is None:
        paths = data.synthseg_label_map_paths(directory)
        maps, sizes, _ = _read_label_maps(paths[:max_label_maps], 1.0)
        source = f"{len(maps)} SynthSeg label maps from {directory}"
    else:
        maps, sizes, source = _read_label_maps(label_maps, label_voxel_size)
        maps, sizes = maps[:max_label_maps], sizes[:max_label_maps]
    if not use_synthseg:
        if generation_labels is None:
            labels = np.unique(np.concatenate([np.unique(m) for m in maps]))
        else:
            labels = np.asarray(generation_labels)
        classes = None if generation_classes is None else np.asarray(generation_classes)
    labels = np.asarray(labels).astype("int64")
    maps = [
        data.compact_labels(data.resample_label_map(m, s, voxel_size), labels)
        for m, s in zip(maps, sizes)
    ]
    extra_cerebral = np.flatnonzero(labels >= 500)
    if extra_cerebral.size and skull_stripped > 0:
        stripped = round(skull_stripped * len(maps))
        for label_map in maps[:stripped]:
            maps.append(np.where(np.isin(label_map, extra_cerebral), 0, label_map))
        maps = maps[stripped:] if skull_stripped == 1 else maps
        maps = [m.astype(np.min_scalar_type(len(labels) - 1)) for m in maps]
    maps = _pad_to_common_shape(maps, cube=ndim == 2 and len(slice_axes) > 1)
    mapping, values = _target_mapping(labels.tolist(), output_labels)
    label_arguments = _compact_arguments(labels.tolist(), mapping, values)
    log(
        f"Data: {source} ({'x'.join(map(str, maps[0].shape))} at {voxel_size:g} mm, "
        f"{len(labels)} generation labels, {len(values)} targets)"
    )

    # (2) The model: generator + U-Net, compiled.
    divisor = 2 ** (levels - 1)
    if output_shape is None:
        side = _FIELD_OF_VIEW_MM[ndim] / voxel_size
        output_shape = (max(divisor, int(round(side / divisor)) * divisor),) * ndim
    generator = LabelsToImage.synthseg(
        classes=None if classes is None else np.asarray(classes).tolist(),
        output_shape=tuple(output_shape),
        seed=seed,
        # SynthSeg's values are in mm at 1 mm: convert to the run's voxels.
        max_spacing=max_spacing / voxel_size,
        deformation_std=4.0 / voxel_size,
        flip_axis=0,
        **label_arguments,
        **priors,
        **(generator_overrides or {}),
    )
    if resume is not None:
        previous = load_segmenter(resume)
        if previous.output_labels != values or previous.ndim != ndim:
            raise ValueError(
                f"Expected a checkpoint of this run's settings as `resume` ({ndim}D, "
                f"output labels {values}). Received: {os.fspath(resume)!r}, "
                f"{previous.ndim}D with output labels {previous.output_labels}"
            )
        network = previous.network
    else:
        network = unet(
            (*[None] * ndim, 1),
            num_classes=len(values),
            levels=levels,
            features=features,
            # Statistics per image: the same in training and inference.
            normalization="instance",
        )
    model = SegmentationModel(generator, network)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=DiceLoss(
            ignore_absent_labels=ignore_absent_labels,
            cross_entropy_weight=cross_entropy,
        ),
    )
    feed = data.LabelMapFeed(
        maps,
        batch_size=batch_size,
        steps_per_epoch=steps_per_epoch,
        slice_axis=slice_axes if ndim == 2 else None,
        min_foreground=min_foreground if ndim == 2 else 0.0,
        seed=seed,
    )
    losses = []
    start = {"steps": 0, "seconds": 0.0, "epoch": 0, "initial_learning_rate": None}
    if resume is not None:
        # Build the model's variables (one batch), then restore the states.
        model(keras.ops.convert_to_tensor(feed[0][:1]))
        _restore_training_state(resume, model)
        start.update(resume_state)
        losses.extend(resume_state.get("losses", []))
        log(f"Resuming from {os.fspath(resume)} at step {start['steps']}")
    budget = TrainingBudget(
        None if minutes is None else 60 * minutes,
        steps=steps,
        start_steps=start["steps"],
        start_seconds=start["seconds"],
        initial_rate=start["initial_learning_rate"],
    )
    arguments = {
        "ndim": ndim,
        "views": None if slice_axes is None else list(slice_axes),
        "voxel_size": voxel_size,
        "output_shape": list(output_shape),
        "steps": steps,
        "minutes": minutes,
        "batch_size": batch_size,
        "steps_per_epoch": steps_per_epoch,
        "contrast": contrast,
        "max_spacing": max_spacing,
        "skull_stripped": skull_stripped,
        "min_foreground": min_foreground,
        "levels": levels,
        "features": features,
        "learning_rate": learning_rate,
        "cross_entropy": cross_entropy,
        "ignore_absent_labels": ignore_absent_labels,
        "generator_overrides": generator_overrides,
        "seed": seed,
    }

    def make_segmenter(state):
        return Segmenter(
            network,
            values,
            voxel_size=voxel_size,
            slice_axes=slice_axes,
            flip=flip,
            divisor=divisor,
            smoothing_sigma=0.5 if cleanup else 0.0,
            keep_largest_component=cleanup,
            provenance={
                "generator_config": generator.get_config(),
                "steps": state["steps"],
                "seconds": state["seconds"],
                "losses": state["losses"],
                "label_maps": source,
                "training": arguments,
            },
        )

    all_callbacks = [budget, _EpochLosses(losses)]
    saver = None
    if checkpoint is not None:
        saver = _Checkpoints(
            os.fspath(checkpoint),
            make_segmenter,
            budget,
            losses,
            checkpoint_minutes,
            checkpoint_steps,
        )
        saver.epoch = int(start["epoch"])
        all_callbacks.append(saver)
    all_callbacks.extend(callbacks or [])

    # (3) Training within the budget.
    length = " and ".join(
        text
        for text in (
            None if steps is None else f"{steps} steps",
            None if minutes is None or steps is not None else f"{minutes:g} min",
        )
        if text
    )
    names = {axis: name for name, axis in VIEWS.items()}
    on_views = (
        f" on {'+'.join(names[a] for a in slice_axes)} slices" if ndim == 2 else ""
    )
    log(
        f"Training a {ndim}D U-Net ({network.count_params():,} parameters)"
        f"{on_views} for {length}, batch {batch_size}..."
    )
    epochs = 10**6
    if steps is not None:
        epochs = int(start["epoch"]) + math.ceil(
            max(steps - start["steps"], 1) / steps_per_epoch
        )
    if not budget.done():
        # One data iterator for the whole run (see `Feed`), continuing the
        # batches of a resumed run.
        model.fit(
            feed.stream(start["steps"]),
            steps_per_epoch=steps_per_epoch,
            shuffle=False,
            epochs=epochs,
            initial_epoch=int(start["epoch"]),
            callbacks=all_callbacks,
            verbose={0: 0, 1: 2}.get(verbose, 1),
        )
    state = {
        "steps": budget.steps,
        "seconds": budget.elapsed(),
        "epoch": saver.epoch if saver is not None else None,
        "losses": list(losses),
        "initial_learning_rate": budget.initial_rate,
    }
    if saver is not None:
        saver.write()
    if losses:
        log(
            f"Trained {budget.steps} steps in {state['seconds']:.0f} s "
            f"({state['seconds'] / max(budget.steps, 1):.2f} s/step), loss "
            f"{losses[0]:.3f} -> {losses[-1]:.3f}"
        )
    return make_segmenter(state)


def evaluate_on_test_scan(
    segmenter, data_dir=None, json_path=None, csv_path=None, verbose=False, **kwargs
):
    """Segment voxelmorph's real T1 test scan; Dice per SynthSeg structure.

    The scan (`synthlayers.data.load_vxm_test_scan`: skull-stripped, 1 mm,
    never seen in training) is segmented with the segmenter's settings
    (`synthlayers.inference.segment`), and compared, in 3D, with its
    FreeSurfer segmentation converted to SynthSeg's 31 structures
    (`evaluation.convert_freesurfer_segmentation`,
    `SYNTHSEG_STRUCTURES_V1`).

    Args:
        segmenter: a `Segmenter` or the path of its model file.
        data_dir: the data directory, or None (see `fetch_data`). Defaults
            to None.
        json_path: write the scores as JSON there, or None. Defaults to
            None.
        csv_path: write the scores as CSV there, or None. Defaults to None.
        verbose: print the table. Defaults to False.
        **kwargs: `segment` arguments overriding the segmenter's settings.

    Returns:
        A dict: `"scores"` (as `evaluation.evaluate_segmentation`:
        `"dice"`, `"mean_dice"`, `"num_structures"`), `"image"`,
        `"prediction"` and `"truth"` (arrays, RAS+).
    """
    image, _, truth = _load_test_scan(data_dir)
    prediction = segment(segmenter, image, voxel_size=1.0, **kwargs)
    scores = _score_test_scan(
        prediction, truth, json_path=json_path, csv_path=csv_path, verbose=verbose
    )
    return {"scores": scores, "image": image, "prediction": prediction, "truth": truth}


def evaluate_contrast_cases(
    segmenter,
    data_dir=None,
    cases=CONTRAST_CASES,
    json_path=None,
    verbose=False,
    **kwargs,
):
    """Segment the contrast cases of the real test scan; Dice per case.

    The cases (`synthlayers.evaluation.make_contrast_cases`: the T1 scan as
    it is, inverted, remapped, at 3 mm, in 5 mm axial slices) are made from
    voxelmorph's test scan, loaded once; each is segmented and scored as
    `evaluate_on_test_scan` scores the scan (1 mm, SynthSeg's 31
    structures against the converted FreeSurfer segmentation).

    Args:
        segmenter: a `Segmenter` or the path of its model file (read once).
        data_dir: the data directory, or None (see `fetch_data`). Defaults
            to None.
        cases: names among `evaluation.CONTRAST_CASES`. Defaults to all.
        json_path: write the results as JSON there, or None. Defaults to
            None.
        verbose: print one line per case (mean Dice, structures, seconds).
            Defaults to False.
        **kwargs: `segment` arguments overriding the segmenter's settings.

    Returns:
        A dict: `"cases"` (`{name: scores}`, scores as
        `evaluation.evaluate_segmentation` plus `"seconds"`, the time to
        segment) and `"summary"` (`{name: mean Dice}`).
    """
    if isinstance(segmenter, (str, os.PathLike)):
        segmenter = load_segmenter(segmenter)
    image, freesurfer, truth = _load_test_scan(data_dir)
    images = evaluation.make_contrast_cases(image, freesurfer, cases=cases)
    results = {}
    for name, case_image in images.items():
        start = time.perf_counter()
        prediction = segment(segmenter, case_image, voxel_size=1.0, **kwargs)
        seconds = time.perf_counter() - start
        results[name] = {**_score_test_scan(prediction, truth), "seconds": seconds}
    summary = {name: scores["mean_dice"] for name, scores in results.items()}
    if verbose:
        width = max(len("case"), *(len(name) for name in results))
        print(f"{'case':<{width}}  {'dice':>6}  {'structures':>10}  {'seconds':>7}")
        for name, scores in results.items():
            dice = scores["mean_dice"]
            value = "-" if math.isnan(dice) else f"{dice:.4f}"
            print(
                f"{name:<{width}}  {value:>6}  {scores['num_structures']:>10}  "
                f"{scores['seconds']:>7.1f}"
            )
    if json_path is not None:
        content = _contrast_cases_json(results, summary)
        atomic_write(json_path, lambda path: _write_json(path, content))
    return {"cases": results, "summary": summary}


def _load_test_scan(data_dir):
    """The test scan, its FreeSurfer segmentation and the converted truth."""
    image, freesurfer = data.load_vxm_test_scan(data_dir=data_dir)
    truth = evaluation.convert_freesurfer_segmentation(
        freesurfer, labels=_TEST_SCAN_STRUCTURES
    )
    return image, freesurfer, truth


def _score_test_scan(prediction, truth, **kwargs):
    """Dice of `prediction` against the test scan's converted truth."""
    return evaluation.evaluate_segmentation(
        prediction, truth, labels=_TEST_SCAN_STRUCTURES, **kwargs
    )


def _finite_or_none(value):
    return None if math.isnan(value) else float(value)


def _contrast_cases_json(results, summary):
    names = evaluation.FREESURFER_NAMES
    return {
        "cases": {
            name: {
                "mean_dice": _finite_or_none(scores["mean_dice"]),
                "num_structures": scores["num_structures"],
                "seconds": scores["seconds"],
                "structures": [
                    {
                        "label": int(label),
                        "name": names.get(label, evaluation.structure_name(label)),
                        "dice": _finite_or_none(dice),
                    }
                    for label, dice in scores["dice"].items()
                ],
            }
            for name, scores in results.items()
        },
        "summary": {name: _finite_or_none(dice) for name, dice in summary.items()},
    }


def _write_json(path, content):
    with open(path, "w") as f:
        json.dump(content, f, indent=2)
