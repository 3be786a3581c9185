"""Train a SynthSeg-style segmentation network on label maps only; test it on a real T1.

A thin caller of `synthlayers.workflows.train_segmentation`: training sees
no image; every step, `LabelsToImage.synthseg` synthesises a new random
image and its target from SynthSeg's 20 training label maps, inside the
model (`SegmentationModel`), and the U-Net learns to segment it (soft Dice
plus cross-entropy). Default: 2D, random coronal slices (1 mm), for a time
budget on the CPU; `--ndim 3` trains on whole 3D maps (for a GPU). Then
the trained `Segmenter` segments voxelmorph's real skull-stripped T1 scan,
never seen in training, with its own settings (2D networks slice by slice,
left/right flip test-time augmentation, then SynthSeg's clean-up: smoothed
probabilities, the largest connected component of each structure), and the
result is compared with its FreeSurfer segmentation: Dice per structure
over SynthSeg's segmentation structures, computed in 3D
(`synthlayers.workflows.evaluate_on_test_scan`).

Writes into `--out` (default `segmentation_run/`): `model.keras`, the model
file (network, label values and names, voxel size, views, normalisation,
clean-up, provenance: `synthlayers.inference.segment("model.keras", scan)`
needs nothing else), `checkpoint.keras` (the same plus the optimizer state,
every `--checkpoint-minutes`; `--resume` continues from it), `summary.json`,
`dice.json` and `dice.csv`, `contrast_cases.json`, `figure.png` (real
slice, prediction, ground truth), and the exported TensorFlow SavedModel
`savedmodel/` with the same metadata in `savedmodel/synthlayers.json` (on
the TensorFlow backend).

Data: `--data-dir`, else $SYNTHLAYERS_DATA_DIR, else the download cache
(fetched with SHA-256 checks). If the data cannot be had, the run says so in one line
and trains on label maps made in code (`RandomLabelMap`), without the
evaluation on the real scan.

    python examples/train_segmentation.py [--minutes 10] [--steps N] [--ndim 2]
        [--out DIR] [--quick] [--data-dir DIR] [--seed 0] [--no-cleanup]
        [--views coronal [axial]] [--skull-stripped 1] [--min-foreground 0.1]
        [--contrast t1|any] [--max-spacing MM] [--cross-entropy 1]
        [--generator NAME=VALUE ...] [--checkpoint-minutes 10] [--resume FILE]

Two networks:

- `--contrast any` is the method: random contrasts (SynthSeg's
  contrast-agnostic intensity draws) and acquisitions up to 8 mm
  (`--max-spacing`), a network for skull-stripped scans of any contrast
  and resolution. It needs longer training than a T1 network (60 minutes
  here, see docs/results.md).
- `--contrast t1` (the default) uses SynthSeg's T1 intensity priors and
  acquisitions up to 2 mm: a network for 1 mm T1 scans like the test scan,
  learnt within 30 minutes on a CPU.

Both are then tested on the real scan and on the same scan with contrasts
and resolutions never trained on (`evaluate_contrast_cases`: inverted,
non-monotonically remapped, 3 mm, 1 x 1 x 5 mm slices), written to
`contrast_cases.json` (not with `--quick`). `--skull-stripped 0.5
--cross-entropy 0` gives SynthSeg's whole domain and loss.

`--steps N` makes runs comparable across machines (the learning rate then
decays over the steps); `benchmarks/segmentation_variants.py` compares
settings that way over several seeds.
"""

import argparse
import ast
import json
import os
import sys

try:
    import resource  # Unix only: peak memory
except ImportError:
    resource = None

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from synthlayers import datasets  # noqa: E402
from synthlayers.layers import RandomLabelMap  # noqa: E402
from synthlayers.models import export_network  # noqa: E402
from synthlayers.plot import plot_montage  # noqa: E402
from synthlayers.plot import save_figure  # noqa: E402
from synthlayers.workflows import evaluate_contrast_cases  # noqa: E402
from synthlayers.workflows import evaluate_on_test_scan  # noqa: E402
from synthlayers.workflows import train_segmentation  # noqa: E402


def settings(args):
    """Sizes of the run: the default (1 mm) or `--quick` (2 mm, tiny net)."""
    if args.quick:
        return dict(
            voxel_size=2.0,
            max_label_maps=4,
            output_shape=(96, 96) if args.ndim == 2 else (64, 64, 64),
            levels=3,
            features=8,
            batch_size=4,
            steps_per_epoch=10,
        )
    return dict(
        voxel_size=1.0,
        max_label_maps=None,
        output_shape=(192, 192) if args.ndim == 2 else (160, 160, 160),
        levels=5,
        features=args.features,
        batch_size=args.batch_size if args.ndim == 2 else 1,
        steps_per_epoch=50,
    )


def find_data(args):
    """SynthSeg's files: `--data-dir`, $SYNTHLAYERS_DATA_DIR, next to the repo,
    or the download cache (fetched with SHA-256 checks)."""
    directory = datasets.fetch_data(data_dir=args.data_dir)
    datasets.synthseg_label_map_paths(directory)  # raises when there are none
    datasets.synthseg_generation_labels(directory)
    return directory


def random_label_maps(shape, seed):
    """Fallback: label maps made in code (RandomLabelMap, 16 labels)."""
    generator = RandomLabelMap(output_shape=shape, num_labels=16, seed=seed)
    maps = [
        np.asarray(generator(np.zeros((1, 1)))["segmentation_masks"])[0, ..., 0]
        for _ in range(4)
    ]
    return [m.astype("uint8") for m in maps]


def generator_overrides(items):
    """`--generator NAME=VALUE` options as a dict of Python literals."""
    overrides = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            overrides[name.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            sep = ""
        if not sep or not name.strip():
            raise SystemExit(
                f"--generator expects NAME=VALUE with a Python literal value, e.g. "
                f"clip=None. Received: {item!r}"
            )
    return overrides


def figure(image, prediction, truth, path):
    """Middle coronal slice: the real image, the prediction, the ground truth."""
    figure = plot_montage(
        [image, image],
        [prediction, truth],
        view="coronal",
        overlay=True,
        titles=["prediction", "ground truth (FreeSurfer)"],
        panel_size=3.0,
    )
    save_figure(figure, path)


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
        choices=("coronal", "axial"),
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
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny run, for tests (at most 0.5 minutes without --steps)",
    )
    parser.add_argument("--data-dir", default=None, help="local data directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--contrast",
        default="t1",
        choices=("t1", "any"),
        help="any: SynthSeg's contrast-agnostic draws, the method (a network "
        "for scans of any contrast); t1: SynthSeg's T1 priors (a network for "
        "T1 scans, learnt faster)",
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
        default=None,
        help="largest simulated acquisition spacing in mm; default 8 "
        "(SynthSeg's range) with --contrast any, 2 (scans of about 1 mm such "
        "as the test scan) with --contrast t1",
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
        "--checkpoint-minutes",
        type=float,
        default=10.0,
        help="write OUT/checkpoint.keras (model file + optimizer state) this often",
    )
    parser.add_argument(
        "--resume",
        default=None,
        metavar="CHECKPOINT",
        help="continue from a checkpoint.keras (same options; --steps and "
        "--minutes count the whole training)",
    )
    parser.add_argument(
        "--no-cleanup",
        action="store_true",
        help="evaluate the plain argmax, without SynthSeg's clean-up of the "
        "probabilities (smoothing, largest connected component per structure)",
    )
    args = parser.parse_args()
    if args.quick and args.steps is None:  # a step budget is kept whole
        args.minutes = min(args.minutes, 0.5)
    config = settings(args)
    os.makedirs(args.out, exist_ok=True)
    overrides = generator_overrides(args.generator)

    try:
        directory = find_data(args)
        data = dict(label_maps=None, data_dir=directory, contrast=args.contrast)
    except (OSError, ValueError) as error:
        print(f"No SynthSeg data ({error}); training on RandomLabelMap label maps.")
        shape = (64,) * 3 if args.quick else (160,) * 3
        directory = None
        data = dict(
            label_maps=random_label_maps(shape, args.seed),
            label_voxel_size=config["voxel_size"],
            generation_labels=list(range(16)),
            contrast="any",
        )

    segmenter = train_segmentation(
        **data,
        ndim=args.ndim,
        views=args.views,
        steps=args.steps,
        minutes=args.minutes,
        max_spacing=args.max_spacing,
        skull_stripped=args.skull_stripped,
        min_foreground=args.min_foreground,
        learning_rate=args.learning_rate,
        cross_entropy=args.cross_entropy,
        ignore_absent_labels=args.ignore_absent_labels,
        generator_overrides=overrides,
        cleanup=not args.no_cleanup,
        checkpoint=os.path.join(args.out, "checkpoint.keras"),
        checkpoint_minutes=args.checkpoint_minutes,
        resume=args.resume,
        seed=args.seed,
        verbose=1,
        **config,
    )
    provenance = segmenter.provenance
    losses = provenance["losses"] or [float("nan")]
    model_path = segmenter.save(os.path.join(args.out, "model.keras"))
    print(f"Wrote the model file {model_path}")
    result = {
        "steps": provenance["steps"],
        "seconds": provenance["seconds"],
        "loss_first_epoch": losses[0],
        "loss_last_epoch": losses[-1],
        # Peak resident memory (GB) up to the end of training; the final
        # peak, after evaluation and export, is `peak_rss_gb`.
        "peak_rss_gb_training": peak_rss_gb(),
    }
    if directory is not None:
        # The real test scan, never seen in training: Dice per structure over
        # SynthSeg's 31 structures, in 3D; the segmenter's own settings
        # (views, flip, clean-up) and nothing else.
        evaluated = evaluate_on_test_scan(
            segmenter,
            data_dir=directory,
            json_path=os.path.join(args.out, "dice.json"),
            csv_path=os.path.join(args.out, "dice.csv"),
            verbose=True,
        )
        result["mean_dice"] = evaluated["scores"]["mean_dice"]
        figure(
            evaluated["image"],
            evaluated["prediction"],
            evaluated["truth"],
            os.path.join(args.out, "figure.png"),
        )
        print(f"Mean Dice on the real test scan: {result['mean_dice']:.3f}")
        if not args.quick:
            # The same scan with contrasts and resolutions never trained on:
            # inverted, non-monotonically remapped, 3 mm, 5 mm slices.
            cases = evaluate_contrast_cases(
                segmenter,
                data_dir=directory,
                json_path=os.path.join(args.out, "contrast_cases.json"),
                verbose=True,
            )
            result["contrast_cases"] = cases["summary"]
    if keras.backend.backend() == "tensorflow":
        export_network(segmenter, os.path.join(args.out, "savedmodel"))
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
