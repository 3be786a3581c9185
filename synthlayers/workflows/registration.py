"""Train a SynthMorph registration model in one call, and evaluate it on cases.

- `train_registration`: shapes (no data) or brains (SynthSeg label maps),
  2D (slices) or 3D, for a number of steps or minutes; returns a
  `RegistrationModelFile` (the network and its settings) that `save`s as a
  model file of kind `"registration"` and that
  `synthlayers.inference.register` takes as its model.
- `PairedSliceFeed`: cross-subject pairs of label maps (3D) or of slices at
  the same level (2D) for `RegistrationModel.fit`.
- `evaluate_cases`: no registration, affine only and the network on
  `synthlayers.data.registration_cases` cases; Dice per structure, folding
  and timings, and a summary.
"""

import math
import time

import keras
import numpy as np

from synthlayers.data.feed import Feed
from synthlayers.evaluation import REGISTRATION_STRUCTURES
from synthlayers.evaluation import evaluate_registration
from synthlayers.inference.register import register
from synthlayers.models.model_file import load_model_file
from synthlayers.models.model_file import make_provenance
from synthlayers.models.model_file import save_model_file

KIND = "registration"
METHODS = ("none", "affine", "network")
"""The methods of `evaluate_cases` (SyN lives in benchmarks/)."""


class RegistrationModelFile:
    """A registration network with its settings: what `register` needs.

    Args:
        network: the network (`registration_network`: inputs `[moving,
            fixed]`, dict outputs).
        metadata: a dict: `voxel_size` (mm), `ndim`, `input_shape`,
            `features`, `integration_steps`, `preset`, `normalization`,
            `provenance`, ... (`kind` is set to `"registration"`).

    Example:

    >>> from synthlayers.models.registration import registration_network
    >>> model = RegistrationModelFile(registration_network((32, 32, 1), 4), {})
    >>> model.metadata["kind"], model.metadata["voxel_size"]
    ('registration', 1.0)
    """

    def __init__(self, network, metadata=None):
        if not isinstance(network, keras.Model):
            raise ValueError(
                "Expected `network` to be a Keras model. Received: "
                f"network={type(network).__name__}"
            )
        self.network = network
        metadata = dict(metadata or {})
        metadata["kind"] = KIND
        metadata.setdefault("voxel_size", 1.0)
        metadata.setdefault("normalization", "min-max")
        metadata.setdefault("ndim", len(network.inputs[0].shape) - 2)
        self.metadata = metadata

    def save(self, path):
        """Write the model file (`.keras`); returns the path."""
        return save_model_file(path, self.network, self.metadata)

    def __repr__(self):
        return (
            f"RegistrationModelFile(ndim={self.metadata.get('ndim')}, "
            f"preset={self.metadata.get('preset')!r}, "
            f"steps={self.metadata.get('provenance', {}).get('steps')})"
        )


def load_registration_model(path):
    """Read a model file of kind `"registration"` as a `RegistrationModelFile`."""
    network, metadata = load_model_file(path, kind=KIND)
    return RegistrationModelFile(network, metadata)


class PairedSliceFeed(Feed):
    """Cross-subject pairs of label maps for `RegistrationModel.fit`.

    Each sample draws two different maps; in 3D the whole maps, in 2D their
    slices along `slice_axis` at one index (one anatomical level when the
    maps are centred on one landmark, as `prepare_brain_maps` centres them
    on the thalami; centred on their bounding boxes, one index is up to
    44 mm apart between SynthSeg's maps and the pairs cannot be
    registered) plus a jitter of
    up to `jitter` slices for the fixed one; levels where either slice has
    less than `min_foreground` non-zero voxels are not drawn. Batches are
    `((moving, fixed),)`, each `(batch, *spatial, 1)` int32. Randomness
    depends on `(seed, batch number)` only; read by epochs or as one stream
    (`feed.stream()`), as any `synthlayers.data.feed.Feed`.

    Args:
        label_maps: a list of at least two 3D integer arrays of one shape.
        batch_size: pairs per batch. Defaults to `1`.
        steps_per_epoch: batches per epoch. Defaults to `100`.
        ndim: 2 (slices) or 3. Defaults to `2`.
        slice_axis: the slicing axis in 2D. Defaults to `2`.
        jitter: largest level difference in 2D (slices). Defaults to `2`.
        min_foreground: smallest foreground fraction of a slice. Defaults
            to `0.1`.
        seed: integer seed. Defaults to `0`.
        **kwargs: `keras.utils.PyDataset` arguments.
    """

    def __init__(
        self,
        label_maps,
        batch_size=1,
        steps_per_epoch=100,
        ndim=2,
        slice_axis=2,
        jitter=2,
        min_foreground=0.1,
        seed=0,
        **kwargs,
    ):
        super().__init__(steps_per_epoch, **kwargs)
        maps = [np.asarray(m) for m in label_maps]
        if len(maps) < 2 or any(m.ndim != 3 or m.shape != maps[0].shape for m in maps):
            raise ValueError(
                "Expected `label_maps` to be at least two 3D arrays of one shape. "
                f"Received: {len(maps)} maps of shapes {[m.shape for m in maps]}"
            )
        if ndim not in (2, 3):
            raise ValueError(f"Expected `ndim` to be 2 or 3. Received: ndim={ndim!r}")
        self.maps = maps
        self.batch_size = int(batch_size)
        self.ndim = ndim
        self.slice_axis = int(slice_axis)
        self.jitter = int(jitter)
        self.seed = int(seed)
        if ndim == 2:
            other = tuple(a for a in range(3) if a != self.slice_axis)
            fractions = np.stack([np.mean(m != 0, axis=other) for m in maps])
            self.levels = np.nonzero((fractions >= min_foreground).all(axis=0))[0]
            if self.levels.size == 0:
                raise ValueError(
                    "No slice level has enough foreground in every map. Received: "
                    f"min_foreground={min_foreground}"
                )
            self.spatial_shape = tuple(
                n for a, n in enumerate(maps[0].shape) if a != self.slice_axis
            )
        else:
            self.spatial_shape = maps[0].shape

    def draw(self, number):
        """Batch `number` (>= 0) of the feed's sequence."""
        rng = np.random.default_rng([self.seed, int(number)])
        moving, fixed = [], []
        for _ in range(self.batch_size):
            a, b = rng.choice(len(self.maps), size=2, replace=False)
            if self.ndim == 3:
                moving.append(self.maps[a])
                fixed.append(self.maps[b])
                continue
            level = int(rng.choice(self.levels))
            other = level + int(rng.integers(-self.jitter, self.jitter + 1))
            other = int(np.clip(other, 0, self.maps[b].shape[self.slice_axis] - 1))
            moving.append(np.take(self.maps[a], level, axis=self.slice_axis))
            fixed.append(np.take(self.maps[b], other, axis=self.slice_axis))
        stack = tuple(np.stack(x)[..., None].astype("int32") for x in (moving, fixed))
        return (stack,)


class _TimeLimit(keras.callbacks.Callback):
    """Stop training after `seconds` (checked after every batch)."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds
        self.start = None
        self.steps = 0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.seconds is not None and time.perf_counter() - self.start > self.seconds:
            self.model.stop_training = True


def train_registration(
    label_maps=None,
    shapes=True,
    ndim=2,
    steps=None,
    minutes=None,
    input_shape=None,
    features=None,
    learning_rate=1e-4,
    regularization_weight=1.0,
    batch_size=1,
    integration_steps=5,
    steps_per_epoch=50,
    loss_labels=REGISTRATION_STRUCTURES,
    segmenter_features=None,
    segmentation_weight=1.0,
    seed=0,
    verbose=0,
):
    """Train a SynthMorph registration network; returns a `RegistrationModelFile`.

    `shapes=True` (default): `LabelsToImagePair.shapes` pairs from random
    label maps, no data. `shapes=False`: `LabelsToImagePair.brains` pairs
    of two different label maps (`label_maps`, e.g. from
    `prepare_brain_maps(TRAINING_SUBJECTS)`), whole maps in 3D or slices at
    one level in 2D (`PairedSliceFeed`). The network is
    `registration_network` (SVF at half resolution, `integration_steps`),
    trained by `RegistrationModel` (soft Dice of linearly warped one-hot
    labels + `regularization_weight` times the L2 gradient), Adam.

    Args:
        label_maps: a list of 3D integer maps (RAS+, 1 mm, one shape) for
            brains; None for shapes. Defaults to None.
        shapes: train on random shapes. Defaults to True.
        ndim: 2 or 3. Defaults to `2`.
        steps: training steps, or None. Defaults to None.
        minutes: wall-time limit of the training, or None. With neither
            `steps` nor `minutes`, 1000 steps. Defaults to None.
        input_shape: the spatial training shape, or None for the maps'
            (slices') shape, or `(160, 192)` / `(160, 192, 160)` for shapes.
            Defaults to None.
        features: filters per convolution, or None: 32 in 2D, 64 in 3D.
            Defaults to None.
        learning_rate: Adam's learning rate. Defaults to `1e-4`
            (SynthMorph).
        regularization_weight: weight of the gradient penalty. Defaults to
            `1.0`.
        batch_size: pairs per step. Defaults to `1`.
        integration_steps: squarings. Defaults to `5`.
        steps_per_epoch: steps per Keras epoch (the time limit is checked
            every step). Defaults to `50`.
        loss_labels: brains only: the labels whose overlap the loss
            optimises (SynthMorph's `--out-labels`; the others become
            background), or None for every label of the maps. Defaults to
            `REGISTRATION_STRUCTURES`.
        segmenter_features: brains only: None (VoxelMorph's network on the
            images), or the first-level filters of a segmenter front end
            that turns both images into probabilities of the loss labels
            before the registration U-Net (`registration_network`'s
            `segmenter_classes`), trained with an auxiliary Dice. Defaults
            to None.
        segmentation_weight: weight of that auxiliary Dice. Defaults to
            `1.0`.
        seed: integer seed. Defaults to `0`.
        verbose: Keras `fit` verbosity. Defaults to `0`.

    Returns:
        A `RegistrationModelFile`; its metadata records the steps run, the
        training time and the last loss.

    Raises:
        ValueError: for bad arguments (e.g. brains without label maps).
    """
    from synthlayers.layers import LabelsToImagePair
    from synthlayers.models.registration import RegistrationModel
    from synthlayers.models.registration import registration_network

    if ndim not in (2, 3):
        raise ValueError(f"Expected `ndim` to be 2 or 3. Received: ndim={ndim!r}")
    if not shapes and not label_maps:
        raise ValueError(
            "Expected `label_maps` (a list of 3D label maps) to train on brains. "
            f"Received: label_maps={label_maps!r}"
        )
    if steps is None and minutes is None:
        steps = 1000
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ValueError(
            f"Expected `steps` to be a positive int. Received: steps={steps!r}"
        )
    if minutes is not None and not minutes > 0:
        raise ValueError(
            f"Expected `minutes` to be a positive number. Received: minutes={minutes!r}"
        )
    features = features or (32 if ndim == 2 else 64)
    if shapes and segmenter_features is not None:
        raise ValueError(
            "A segmenter front end needs brains (its classes are anatomical "
            "labels; random shapes' labels mean nothing from one pair to the "
            f"next). Received: shapes=True, segmenter_features={segmenter_features!r}"
        )
    keras.utils.set_random_seed(seed)
    if shapes:
        spatial = tuple(input_shape or ((160, 192) if ndim == 2 else (160, 192, 160)))
        generator = LabelsToImagePair.shapes(spatial, seed=seed)
        feed = None
        preset = "shapes"
    else:
        feed = PairedSliceFeed(
            label_maps,
            batch_size=batch_size,
            steps_per_epoch=steps_per_epoch,
            ndim=ndim,
            seed=seed,
        )
        spatial = tuple(input_shape or feed.spatial_shape)
        labels = sorted(set().union(*[np.unique(m).tolist() for m in label_maps]) | {0})
        targets = None
        if loss_labels is not None:
            targets = [0, *[v for v in loss_labels if v in labels and v != 0]]
        generator = LabelsToImagePair.brains(
            labels,
            output_labels=targets,
            output_shape=spatial if input_shape else None,
            seed=seed,
        )
        preset = "brains"
    segmenter = {}
    if segmenter_features is not None:
        segmenter = {
            "segmenter_classes": len(targets if targets is not None else labels),
            "segmenter_features": segmenter_features,
        }
    network = registration_network(
        (*spatial, 1),
        features=features,
        integration_steps=integration_steps,
        **segmenter,
    )
    model = RegistrationModel(
        generator,
        network,
        regularization_weight=regularization_weight,
        segmentation_weight=segmentation_weight,
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    limit = _TimeLimit(None if minutes is None else 60.0 * minutes)
    epochs = math.ceil(steps / steps_per_epoch) if steps is not None else 10**6
    start = time.perf_counter()
    per_epoch = steps_per_epoch if steps is None else min(steps, steps_per_epoch)
    # Shapes: pairs from nothing; brains: one data iterator for the whole
    # run (see `Feed`).
    data = (
        {"batch_size": batch_size}
        if feed is None
        else {"x": feed.stream(), "shuffle": False}
    )
    history = model.fit(
        steps_per_epoch=per_epoch,
        epochs=epochs,
        callbacks=[limit],
        verbose=verbose,
        **data,
    )
    seconds = time.perf_counter() - start
    losses = history.history.get("loss", [])
    metadata = {
        "ndim": ndim,
        "voxel_size": 1.0,
        "input_shape": list(spatial),
        "features": features,
        "integration_steps": integration_steps,
        "velocity_resolution": "half",
        "segmenter_features": segmenter_features,
        "preset": preset,
        "normalization": "min-max",
        "provenance": make_provenance(
            generator_config=keras.saving.serialize_keras_object(generator),
            steps=limit.steps,
            training_seconds=round(seconds, 1),
            seconds_per_step=round(seconds / max(limit.steps, 1), 4),
            learning_rate=learning_rate,
            regularization_weight=regularization_weight,
            segmentation_weight=segmentation_weight if segmenter else None,
            batch_size=batch_size,
            final_loss=float(losses[-1]) if losses else None,
            seed=seed,
        ),
    }
    return RegistrationModelFile(network, metadata)


def _mean(values):
    values = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(values)) if values else None


def evaluate_cases(
    model,
    cases,
    methods=METHODS,
    labels=REGISTRATION_STRUCTURES,
    affine_method="mutual_information",
    affine_options=None,
    keep=False,
):
    """Evaluate registration methods on cases: Dice, folding, time.

    For each case the affine pre-alignment is computed once (`register`
    with no network) and reused by the network, so "affine" and "network"
    share it. "none" is the identity on the fixed grid (arrays in RAS+,
    1 mm, voxel 0 at the origin).

    Args:
        model: a `RegistrationModelFile`, network or model file path (or
            None when `"network"` is not in `methods`).
        cases: `RegistrationCase` objects.
        methods: a subset of `METHODS`. Defaults to all.
        labels: evaluated structures. Defaults to `REGISTRATION_STRUCTURES`.
        affine_method: `register`'s pre-alignment. Defaults to
            `"mutual_information"`.
        affine_options: `mutual_information_affine` arguments. Defaults to
            None.
        keep: also return the `RegistrationResult` objects (under
            `"results"`, not JSON). Defaults to False.

    Returns:
        A dict: `"cases"` (per case and method: `mean_dice`, `dice` by
        label, `folding_percent`, `log_jacobian_sd`, `seconds`), and
        `"summary"` (per method and case kind, and over all cases: mean of
        the mean Dice, mean Dice per structure, mean folding %, mean time).
    """
    records = []
    kept = []
    for case in cases:
        record = {"name": case.name, "kind": case.kind, "methods": {}}
        runs = {}
        if "none" in methods:
            start = time.perf_counter()
            runs["none"] = register(
                None,
                case.moving,
                case.fixed,
                moving_segmentation=case.moving_labels,
                affine_method="none",
                inverse=False,
            )
            runs["none"].times["total"] = time.perf_counter() - start
        affine = None
        if "affine" in methods or "network" in methods:
            affine = register(
                None,
                case.moving,
                case.fixed,
                moving_segmentation=case.moving_labels,
                affine_method=affine_method,
                affine_options=affine_options,
                inverse=False,
            )
            if "affine" in methods:
                runs["affine"] = affine
        if "network" in methods:
            runs["network"] = register(
                model,
                case.moving,
                case.fixed,
                moving_segmentation=case.moving_labels,
                affine_method=affine.world_matrix,
                inverse=False,
            )
            runs["network"].times["affine"] = affine.times["affine"]
            runs["network"].times["total"] += affine.times["affine"]
        for method, result in runs.items():
            scores = evaluate_registration(
                result.moved_segmentation,
                case.fixed_labels,
                result.displacement,
                labels=labels,
            )
            record["methods"][method] = {
                "mean_dice": scores["mean_dice"],
                "dice": {str(k): v for k, v in scores["dice"].items()},
                "num_structures": scores["num_structures"],
                "folding_percent": scores["folding_percent"],
                "log_jacobian_sd": scores["log_jacobian_sd"],
                "seconds": result.times["total"],
            }
        records.append(record)
        kept.append(runs)
    output = {"cases": records, "summary": summarize(records)}
    if keep:
        output["results"] = kept
    return output


def summarize(records):
    """Per method: means over all cases and per kind (see `evaluate_cases`)."""
    summary = {}
    methods = sorted({m for r in records for m in r["methods"]}, key=_method_order)
    kinds = sorted({r["kind"] for r in records})
    for method in methods:
        entry = {}
        for kind in [None, *kinds]:
            chosen = [
                r["methods"][method]
                for r in records
                if method in r["methods"] and (kind is None or r["kind"] == kind)
            ]
            if not chosen:
                continue
            structures = sorted({k for c in chosen for k in c["dice"]}, key=int)
            entry[kind or "all"] = {
                "num_cases": len(chosen),
                "mean_dice": _mean([c["mean_dice"] for c in chosen]),
                "dice": {
                    k: _mean([c["dice"].get(k) for c in chosen]) for k in structures
                },
                "folding_percent": _mean([c["folding_percent"] for c in chosen]),
                "log_jacobian_sd": _mean([c["log_jacobian_sd"] for c in chosen]),
                "seconds": _mean([c["seconds"] for c in chosen]),
            }
        summary[method] = entry
    return summary


def _method_order(method):
    order = [*METHODS, "syn"]
    return order.index(method) if method in order else len(order)


def format_summary(summary, names=None):
    """A text table: one row per method and case kind (mean Dice, folding, time)."""
    header = ("method", "cases", "n", "Dice", "fold %", "SDlogJ", "s/pair")
    lines = ["{:<9} {:<26} {:>3} {:>6} {:>7} {:>7} {:>7}".format(*header)]
    for method, entry in summary.items():
        for kind, values in entry.items():
            dice = values["mean_dice"]
            lines.append(
                f"{method:<9} {kind:<26} {values['num_cases']:>3} "
                f"{'-' if dice is None else f'{dice:.3f}':>6} "
                f"{values['folding_percent']:>7.3f} {values['log_jacobian_sd']:>7.3f} "
                f"{values['seconds']:>7.2f}"
            )
    return "\n".join(lines)
