"""Train a SynthMorph registration network on synthetic pairs; register real scans.

Training sees no acquired image: every step a pair of images with random
contrasts and their label maps is synthesised in the model
(`LabelsToImagePair`), the network registers one image to the other, and
the loss is the soft Dice of the warped labels plus a smoothness penalty
(`RegistrationModel`). Default: SynthMorph's "shapes" (random label maps,
no data); `--brains`: SynthSeg's label maps 1-16, cross-subject pairs
(maps 17-20 are held out for the test cases). 2D (axial slices, 1 mm) on
the CPU by default; `--ndim 3` for a GPU.

Then the cases of `synthlayers.data.registration_cases` (the real
voxelmorph T1 scan registered to images rendered from held-out maps with
random contrasts; pairs of held-out maps with two contrasts or one) are
registered with: no registration, the affine pre-alignment alone (dipy's
mutual information), the network after that affine, and with `--syn` dipy's
SyN-CC (benchmarks/registration_baselines.py) after the same affine. Dice
over the large structures (`REGISTRATION_STRUCTURES`), folding (% of
voxels with a non-positive Jacobian determinant), SD of log Jacobian and
seconds per pair.

Writes into `--out` (default `registration_run/`): `results.json`,
`figure.png` (moving after the affine, fixed, moved, with label overlays),
`deformation.png` (the deformation grid over the moved image) and
`model.keras` (a model file of kind "registration": `register(path, ...)`
uses it).

    python examples/train_registration.py [--brains] [--ndim 2] [--minutes N]
        [--steps N] [--quick] [--syn] [--out DIR] [--features F]
        [--segmenter F] [--learning-rate LR] [--seed 0] [--data-dir DIR]

`--segmenter F` (brains): a segmentation U-Net with F first-level filters
turns both images into label probabilities before the registration U-Net,
trained with an auxiliary Dice (`registration_network`'s
`segmenter_classes`); the 2D CPU result in docs/results.md is

    python examples/train_registration.py --brains --segmenter 16 \
        --learning-rate 5e-4 --minutes 28 --syn

`--quick` trains a tiny network for a few steps on 3 maps and evaluates 4
cases with a short affine fit: a smoke test (under 3 minutes), not a result.
Adam's learning rate defaults to SynthMorph's 1e-4 (without the segmenter,
1e-3 collapsed to the identity in a 20-minute 2D brains run); the loss
counts the large structures only.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
QUICK_AFFINE = {"level_iters": (50, 20), "sigmas": (2.0, 1.0), "factors": (4, 2)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brains", action="store_true", help="train on SynthSeg maps")
    parser.add_argument("--ndim", type=int, default=2, choices=(2, 3))
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--syn", action="store_true", help="also run dipy's SyN")
    parser.add_argument("--out", default="registration_run")
    parser.add_argument("--features", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument(
        "--segmenter",
        type=int,
        default=None,
        metavar="F",
        help="brains: a segmenter front end with F first-level filters",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--model", default=None, help="evaluate this model file (no training)"
    )
    args = parser.parse_args(argv)
    if args.steps is None and args.minutes is None:
        args.minutes = 10.0
    if args.segmenter is not None and not args.brains:
        parser.error("--segmenter needs --brains (anatomical labels to segment)")
    if args.quick:
        args.steps, args.minutes = 20, None
        args.features = args.features or 8
    return args


def data_dir(path):
    from synthlayers.data.registration_cases import data_available

    for candidate in (path, os.environ.get("SYNTHLAYERS_DATA_DIR")):
        if candidate and data_available(candidate):
            return os.path.abspath(candidate)
    return None


def save_figures(case, runs, out):
    from synthlayers.plot import plot_deformation
    from synthlayers.plot import plot_montage
    from synthlayers.plot import save_figure

    affine, network = runs["affine"], runs["network"]
    figure = plot_montage(
        images=[network.moving_affine_only, network.fixed, network.moved],
        label_maps=[
            affine.moved_segmentation,
            case.fixed_labels,
            network.moved_segmentation,
        ],
        overlay=True,
        titles=["moving (affine)", "fixed", "moved (network)"],
        title=case.name,
    )
    paths = [save_figure(figure, os.path.join(out, "figure.png"))]
    figure = plot_deformation(
        network.displacement - affine.displacement,
        image=network.moved,
        title=f"{case.name}: the network's deformation (affine removed)",
    )
    paths.append(save_figure(figure, os.path.join(out, "deformation.png")))
    return paths


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    from synthlayers.data.registration_cases import HELD_OUT_SUBJECTS
    from synthlayers.data.registration_cases import TRAINING_SUBJECTS
    from synthlayers.data.registration_cases import prepare_brain_maps
    from synthlayers.data.registration_cases import registration_cases
    from synthlayers.workflows.registration import evaluate_cases
    from synthlayers.workflows.registration import format_summary
    from synthlayers.workflows.registration import summarize
    from synthlayers.workflows.registration import train_registration

    directory = data_dir(args.data_dir)
    if directory is None:
        print(
            "No data (vxm_test_scan.npz, synthseg_label_maps/): shapes only, no cases."
        )
        if args.brains:
            sys.exit("--brains needs SynthSeg's label maps (--data-dir).")
    maps = None
    if args.brains and args.model is None:
        subjects = TRAINING_SUBJECTS[:3] if args.quick else TRAINING_SUBJECTS
        maps = prepare_brain_maps(subjects, data_dir=directory)
        print(f"{len(maps)} training maps ({time.perf_counter() - start:.0f} s)")
    if args.model is not None:
        from synthlayers.workflows.registration import load_registration_model

        model = load_registration_model(args.model)
    else:
        model = train_registration(
            maps,
            shapes=not args.brains,
            ndim=args.ndim,
            steps=args.steps,
            minutes=args.minutes,
            features=args.features,
            learning_rate=args.learning_rate,
            segmenter_features=args.segmenter,
            seed=args.seed,
            input_shape=(64, 64) if args.quick and not args.brains else None,
            steps_per_epoch=10 if args.quick else 50,
        )
    provenance = model.metadata["provenance"]
    print(
        f"trained {model.metadata['preset']} {args.ndim}D: "
        f"{provenance['steps']} steps, {provenance['seconds_per_step']:.3f} s/step, "
        f"loss {provenance['final_loss']:.4f}"
    )
    model_path = model.save(os.path.join(args.out, "model.keras"))

    results = {
        "arguments": vars(args),
        "model": {k: v for k, v in model.metadata.items() if k != "provenance"},
        "training": {k: v for k, v in provenance.items() if k != "generator_config"},
        "model_file": model_path,
    }
    if directory is not None:
        subjects = HELD_OUT_SUBJECTS[:2] if args.quick else HELD_OUT_SUBJECTS
        kinds = (
            ("scan_to_synthetic", "synthetic_cross_contrast") if args.quick else None
        )
        cases = registration_cases(
            ndim=args.ndim,
            subjects=subjects,
            seed=args.seed,
            data_dir=directory,
            **({"kinds": kinds} if kinds else {}),
        )
        evaluation = evaluate_cases(
            model,
            cases,
            affine_options=QUICK_AFFINE if args.quick else None,
            keep=True,
        )
        kept = evaluation.pop("results")
        records = evaluation["cases"]
        if args.syn:
            sys.path.insert(0, os.path.join(HERE, "..", "benchmarks"))
            from registration_baselines import evaluate_syn

            affines = [runs["affine"].world_matrix for runs in kept]
            for record, syn in zip(records, evaluate_syn(cases, affines)):
                record["methods"].update(syn["methods"])
            evaluation["summary"] = summarize(records)
        results.update(evaluation)
        print(format_summary(evaluation["summary"]))
        results["figures"] = save_figures(cases[0], kept[0], args.out)
    results["seconds"] = time.perf_counter() - start
    path = os.path.join(args.out, "results.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=2, default=str)
    print(f"wrote {path} ({results['seconds']:.0f} s)")
    return results


if __name__ == "__main__":
    main()
