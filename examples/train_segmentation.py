"""Train a SynthSeg-style segmentation network on label maps only; test it on a real T1.

Training sees no image: every step, `LabelsToImage.synthseg` synthesises a
new random image and its target from SynthSeg's 20 training label maps,
inside the model (`SegmentationModel`), and the U-Net learns to segment it
(soft Dice plus cross-entropy). Default: 2D, random coronal slices (1 mm),
for a time budget on the CPU; `--ndim 3` trains on whole 3D maps (for a
GPU). Then the network segments voxelmorph's real skull-stripped T1 scan,
never seen in training (2D networks slice by slice, left/right flip
test-time augmentation, then SynthSeg's clean-up: smoothed probabilities,
the largest connected component of each structure), and the result is
compared with its FreeSurfer segmentation: Dice per structure over
SynthSeg's segmentation structures, computed in 3D.

Writes into `--out` (default `segmentation_run/`): `dice.json` and
`dice.csv`, `figure.png` (real slice, prediction, ground truth),
`network.keras` and the exported TensorFlow SavedModel `savedmodel/` (on
the TensorFlow backend).

Data: `--data-dir`, else $SYNTHLAYERS_DATA_DIR, else a `shared/data`
directory next to the checkout, else the download cache (fetched with
SHA-256 checks). If the data cannot be had, the run says so in
one line and trains on label maps made in code (`RandomLabelMap`), with a
synthetic test image in place of the real scan.

    python examples/train_segmentation.py [--minutes 10] [--steps N] [--ndim 2]
        [--out DIR] [--quick] [--data-dir DIR] [--seed 0] [--no-cleanup]
        [--views coronal [axial]] [--skull-stripped 1] [--min-foreground 0.1]
        [--contrast t1] [--max-spacing 2] [--cross-entropy 1]

The defaults train a network for skull-stripped T1 scans of about 1 mm, like
the test scan (SynthSeg's T1 intensity priors, simulated acquisitions up to
2 mm); `--contrast any --max-spacing 8 --skull-stripped 0.5
--cross-entropy 0` is SynthSeg's whole domain and loss, which need far
longer training.

`--steps N` makes runs comparable across machines (the learning rate then
decays over the steps); `benchmarks/segmentation_variants.py` compares
settings that way over several seeds.
"""

import argparse
import ast
import json
import os
import sys
import time

try:
    import resource  # Unix only: peak memory
except ImportError:
    resource = None

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from synthlayers import datasets  # noqa: E402
from synthlayers import evaluation  # noqa: E402
from synthlayers import inference  # noqa: E402
from synthlayers.layers import LabelsToImage  # noqa: E402
from synthlayers.layers import RandomLabelMap  # noqa: E402
from synthlayers.losses import DiceLoss  # noqa: E402
from synthlayers.models import SegmentationModel  # noqa: E402
from synthlayers.models import unet  # noqa: E402
from synthlayers.visualize import colorize  # noqa: E402
from synthlayers.visualize import label_colors  # noqa: E402
from synthlayers.visualize import montage  # noqa: E402
from synthlayers.visualize import to_gray  # noqa: E402
from synthlayers.visualize import write_png  # noqa: E402

CORONAL = 1  # RAS+: axis 1 runs posterior -> anterior
# 2D views: slices along a RAS axis. Not sagittal: a sagittal slice cannot
# tell the left hemisphere from the right one.
VIEWS = {"coronal": CORONAL, "axial": 2}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NEXT_TO_REPO = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))


def settings(args):
    """Sizes of the run: the default (1 mm) or `--quick` (2 mm, tiny net)."""
    if args.quick:
        return dict(
            voxel_mm=2.0,
            maps=4,
            output_2d=(96, 96),
            output_3d=(64, 64, 64),
            levels=3,
            features=8,
            batch_size=4,
            steps_per_epoch=10,
        )
    return dict(
        voxel_mm=1.0,
        maps=20,
        output_2d=(192, 192),
        output_3d=(160, 160, 160),
        levels=5,
        features=args.features,
        batch_size=args.batch_size if args.ndim == 2 else 1,
        steps_per_epoch=50,
    )


def load_real_data(args, config):
    """SynthSeg's maps (compacted, at the run's voxel size) and label tables."""
    data_dir = args.data_dir
    if data_dir is None and datasets.local_data_dir() is None:
        if os.path.isdir(os.path.join(NEXT_TO_REPO, "synthseg_label_maps")):
            data_dir = NEXT_TO_REPO
    directory = datasets.fetch_data(data_dir=data_dir)
    paths = datasets.synthseg_label_map_paths(directory)[: config["maps"]]
    generation_labels, classes = datasets.synthseg_generation_labels(
        directory, contrast_specific=args.contrast == "t1"
    )
    step = int(config["voxel_mm"])
    maps = []
    # Extra-cerebral labels (skull, scalp, eyes, ...: SynthSeg's 500s).
    extra_cerebral = np.flatnonzero(generation_labels >= 500)
    for path in paths:
        labels_map, _ = datasets.load_label_map(path)
        labels_map = labels_map[step // 2 :: step, step // 2 :: step, step // 2 :: step]
        maps.append(datasets.compact_labels(labels_map, generation_labels))
    # Many scans, the test scan among them, are skull-stripped: a share of the
    # maps loses its extra-cerebral labels (set to background) up front.
    stripped = round(args.skull_stripped * len(maps))
    for labels_map in maps[:stripped]:
        maps.append(np.where(np.isin(labels_map, extra_cerebral), 0, labels_map))
    maps = maps[stripped:] if args.skull_stripped == 1 else maps
    segmentation_labels = np.load(
        os.path.join(directory, "synthseg_labels", "synthseg_segmentation_labels.npy")
    ).astype("int64")
    # SynthSeg's targets: one per generation label (extra-cerebral -> 0).
    targets = dict(zip(generation_labels.tolist(), segmentation_labels.tolist()))
    priors = {}
    if args.contrast == "t1":  # SynthSeg's T1 priors, per contrast-specific class
        for name in ("prior_means", "prior_stds"):
            path = os.path.join(directory, "synthseg_labels", f"{name}_t1.npy")
            priors[name] = np.load(path).tolist()
    return directory, maps, generation_labels, classes, targets, priors


def slice_axes(args):
    """The RAS axes of the 2D views: slices drawn in training, averaged after."""
    return tuple(VIEWS[view] for view in args.views)


def target_arguments(generation_labels, targets):
    """`LabelsToImage` label arguments for compact maps, targets as 0..K-1."""
    arguments = datasets.compact_label_arguments(generation_labels, targets)
    values = sorted(set(arguments["output_labels"].values()))
    index = {v: i for i, v in enumerate(values)}
    arguments["output_labels"] = {
        k: index[v] for k, v in arguments["output_labels"].items()
    }
    return arguments, values


def random_data(config, seed):
    """Fallback: label maps made in code (RandomLabelMap, 16 labels)."""
    shape = config["output_3d"]
    generator = RandomLabelMap(shape, num_labels=16, seed=seed)
    maps = [
        np.asarray(generator(np.zeros((1, 1)))["segmentation_masks"])[0, ..., 0]
        for _ in range(4)
    ]
    return [m.astype("uint8") for m in maps]


class TrainingBudget(keras.callbacks.Callback):
    """Stop training after `seconds`, or after `steps` batches if sooner.

    The learning rate decays linearly with the share of the budget spent
    (of `steps` if given, else of `seconds`), from its initial value to 5%
    of it at the end, so that the network the run ends with has settled,
    whatever the number of steps the time allows. A step budget makes runs
    on different machines comparable.
    """

    def __init__(self, seconds, steps=None):
        super().__init__()
        self.seconds = seconds
        self.max_steps = steps
        self.start = None
        self.steps = 0
        self.initial_rate = None

    def spent(self):
        if self.max_steps is not None:
            return self.steps / self.max_steps
        return (time.perf_counter() - self.start) / self.seconds

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()
        self.initial_rate = float(
            keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
        )

    def on_train_batch_begin(self, batch, logs=None):
        rate = self.initial_rate * max(0.05, 1 - self.spent())
        self.model.optimizer.learning_rate = rate

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        elapsed = time.perf_counter() - self.start
        if self.spent() >= 1 or elapsed > self.seconds:
            self.model.stop_training = True


def generator_overrides(items):
    """`--generator NAME=VALUE` options as a dict of Python literals."""
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            overrides[name.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            overrides[name.strip()] = value.strip()  # a bare word: a string
        if not sep or not name.strip():
            raise SystemExit(
                f"--generator expects NAME=VALUE, e.g. clip=None. Received: {item!r}"
            )
    return overrides


def build(args, config, labels_arguments, classes, priors, num_classes):
    """The end-to-end model: SynthSeg generator + U-Net, compiled."""
    ndim = args.ndim
    output_shape = config["output_2d"] if ndim == 2 else config["output_3d"]
    voxel_mm = config["voxel_mm"]
    generator = LabelsToImage.synthseg(
        classes=classes,
        output_shape=output_shape,
        seed=args.seed,
        # SynthSeg's values are in mm at 1 mm: convert to the run's voxels.
        max_spacing=args.max_spacing / voxel_mm,
        deformation_std=4.0 / voxel_mm,
        flip_axis=0,
        **labels_arguments,
        **priors,
        **generator_overrides(args.generator),
    )
    network = unet(
        (*[None] * ndim, 1),
        num_classes=num_classes,
        levels=config["levels"],
        features=config["features"],
        # Statistics per image: the same in training and inference (batch
        # statistics of small batches of random contrasts do not carry over).
        normalization="instance",
    )
    model = SegmentationModel(generator, network)
    model.compile(
        optimizer=keras.optimizers.Adam(args.learning_rate),
        loss=DiceLoss(
            ignore_absent_labels=args.ignore_absent_labels,
            cross_entropy_weight=args.cross_entropy,
        ),
    )
    return model


def evaluate_real(args, config, model, directory, values, out):
    """Segment the real test scan; Dice per structure; figure."""
    image, truth = datasets.load_vxm_test_scan(data_dir=directory)
    prediction = inference.segment(
        model.network,
        image,
        voxel_size=1.0,
        target_voxel_size=config["voxel_mm"],
        divisor=2 ** (config["levels"] - 1),
        slice_axis=slice_axes(args),  # used by 2D networks only
        flip=True,
        flip_axis=0,
        output_labels=values,
        # SynthSeg's clean-up: smoothed probabilities, one piece per structure.
        smoothing_sigma=0.0 if args.no_cleanup else 0.5,
        keep_largest_component=not args.no_cleanup,
    )
    # SynthSeg's 31 structures (its v1 targets: no CSF).
    structures = evaluation.SYNTHSEG_STRUCTURES_V1
    truth = evaluation.convert_freesurfer_segmentation(truth, labels=structures)
    scores = evaluation.evaluate_segmentation(
        prediction,
        truth,
        labels=structures,
        json_path=os.path.join(out, "dice.json"),
        csv_path=os.path.join(out, "dice.csv"),
        verbose=True,
    )
    figure(image, prediction, truth, os.path.join(out, "figure.png"))
    return scores["mean_dice"]


def figure(image, prediction, truth, path):
    """Middle coronal slice: real image, prediction, ground truth."""
    index = image.shape[CORONAL] // 2

    def coronal(volume):
        return np.take(volume, index, axis=CORONAL).T[::-1]

    colors = label_colors(sorted(set(np.unique(truth)) | set(np.unique(prediction))))
    tiles = [
        to_gray(coronal(image)),
        colorize(coronal(prediction), colors),
        colorize(coronal(truth), colors),
    ]
    write_png(path, montage(tiles, columns=3))


def peak_rss_gb():
    """Peak resident memory of this process so far, in GB (None off Unix)."""
    if resource is None:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024**3 if sys.platform == "darwin" else peak / 1024**2


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training time")
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="train for this many steps (--minutes still caps the time)",
    )
    parser.add_argument("--ndim", type=int, default=2, choices=(2, 3))
    parser.add_argument(
        "--views",
        nargs="+",
        default=["coronal"],
        choices=sorted(VIEWS),
        help="2D: slice orientations drawn in training; several are averaged "
        "in inference",
    )
    parser.add_argument(
        "--min-foreground",
        type=float,
        default=0.1,
        help="2D: smallest share of labelled voxels of a training slice",
    )
    parser.add_argument("--out", default="segmentation_run", help="output directory")
    parser.add_argument("--quick", action="store_true", help="tiny run, for tests")
    parser.add_argument("--data-dir", default=None, help="local data directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--contrast",
        default="t1",
        choices=("t1", "any"),
        help="t1: SynthSeg's T1 priors (a T1 model within a CPU budget); "
        "any: SynthSeg's contrast-agnostic draws (needs far longer training)",
    )
    parser.add_argument(
        "--skull-stripped",
        type=float,
        default=1.0,
        help="share of label maps without extra-cerebral labels (0..1): 1, a "
        "network for skull-stripped scans such as the test scan; 0.5, for both",
    )
    parser.add_argument(
        "--max-spacing",
        type=float,
        default=2.0,
        help="largest simulated acquisition spacing in mm: 2, a network for "
        "scans of about 1 mm such as the test scan; 8, SynthSeg's range",
    )
    parser.add_argument(
        "--cross-entropy",
        type=float,
        default=1.0,
        help="weight of the cross-entropy added to the Dice loss (0: SynthSeg's "
        "Dice only)",
    )
    parser.add_argument("--features", type=int, default=16, help="first level")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument(
        "--ignore-absent-labels",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Dice over the labels present in each training sample only "
        "(--no-ignore-absent-labels: over all labels, as SynthSeg in 3D)",
    )
    parser.add_argument(
        "--generator",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override an argument of LabelsToImage.synthseg (a Python literal, "
        "or a bare word as a string), e.g. --generator placement=center "
        "--generator clip=None; repeatable",
    )
    parser.add_argument(
        "--no-cleanup",
        action="store_true",
        help="evaluate the plain argmax, without SynthSeg's clean-up of the "
        "probabilities (smoothing, largest connected component per structure)",
    )
    args = parser.parse_args()
    if args.quick:
        args.minutes = min(args.minutes, 0.5)
    config = settings(args)
    os.makedirs(args.out, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    try:
        directory, maps, generation_labels, classes, targets, priors = load_real_data(
            args, config
        )
        labels_arguments, values = target_arguments(generation_labels, targets)
        print(
            f"Data: {len(maps)} SynthSeg label maps from {directory} "
            f"({'x'.join(map(str, maps[0].shape))} at {config['voxel_mm']:g} mm, "
            f"{len(generation_labels)} generation labels, {len(values)} targets)"
        )
    except (OSError, ValueError) as error:
        print(f"No SynthSeg data ({error}); training on RandomLabelMap label maps.")
        directory, maps, classes = None, random_data(config, args.seed), None
        labels_arguments, priors = {"labels": list(range(16))}, {}
        values = list(range(16))
    num_classes = len(values)

    model = build(args, config, labels_arguments, classes, priors, num_classes)
    feed = datasets.LabelMapFeed(
        maps,
        batch_size=config["batch_size"],
        steps_per_epoch=config["steps_per_epoch"],
        slice_axis=slice_axes(args) if args.ndim == 2 else None,
        min_foreground=args.min_foreground if args.ndim == 2 else 0.0,
        seed=args.seed,
    )
    budget = TrainingBudget(60 * args.minutes, steps=args.steps)
    length = f"{args.steps} steps" if args.steps else f"{args.minutes:g} min"
    views = f" on {'+'.join(args.views)} slices" if args.ndim == 2 else ""
    print(
        f"Training a {args.ndim}D U-Net ({model.network.count_params():,} "
        f"parameters){views} for {length}, batch {config['batch_size']}..."
    )
    history = model.fit(feed, epochs=10**6, callbacks=[budget], verbose=2)
    seconds = time.perf_counter() - budget.start
    losses = history.history["loss"]
    print(
        f"Trained {budget.steps} steps in {seconds:.0f} s "
        f"({seconds / max(budget.steps, 1):.2f} s/step), loss {losses[0]:.3f} -> "
        f"{losses[-1]:.3f}"
    )

    model.network.save(os.path.join(args.out, "network.keras"))
    result = {
        "steps": budget.steps,
        "seconds": seconds,
        "loss_first_epoch": losses[0],
        "loss_last_epoch": losses[-1],
        # Peak resident memory (GB) up to the end of training; the final
        # peak, after evaluation and export, is `peak_rss_gb`.
        "peak_rss_gb_training": peak_rss_gb(),
    }
    if directory is not None:
        result["mean_dice"] = evaluate_real(
            args, config, model, directory, values, args.out
        )
        print(f"Mean Dice on the real test scan: {result['mean_dice']:.3f}")
    if keras.backend.backend() == "tensorflow":
        inference.export_network(model.network, os.path.join(args.out, "savedmodel"))
        print(f"Exported the SavedModel to {os.path.join(args.out, 'savedmodel')}")
    else:
        print("SavedModel export skipped: it needs the TensorFlow backend.")
    result["peak_rss_gb"] = peak_rss_gb()
    if result["peak_rss_gb"] is not None:
        print(f"Peak memory: {result['peak_rss_gb']:.1f} GB")
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(f"Wrote {os.path.abspath(args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
