"""Compare settings of the 2D segmentation example at one step budget, over seeds.

One 30-minute CPU run per setting cannot tell settings apart: the mean Dice
of identical runs with different seeds spread by up to 0.07. This script runs
`examples/train_segmentation.py --steps N` for each variant and seed, several
processes at a time (on a GPU, where 4,500 steps take about 3 minutes even
with 8 processes sharing one card), and prints the mean Dice on the real test
scan per variant (mean and minimum over seeds) and per structure. When the
runs also wrote `contrast_cases.json` (the example does, except with
`--quick`), a second table gives per variant the mean and the minimum over
seeds of the mean Dice of each contrast case (t1, inverted, remapped,
spacing_3mm, slices_5mm).

    KERAS_BACKEND=jax python benchmarks/segmentation_variants.py \\
        --steps 4500 --seeds 0 1 2 3 --parallel 8 \\
        --variant default= --variant dice_only="--cross-entropy 0"

A variant is `name=options` (options of the example, shell-quoted). Each run
writes into `--out DIR/NAME_sSEED/` (`dice.json`, `contrast_cases.json`,
`summary.json`, the log), and the tables go to `DIR/table.md`. Without
`--variant`, a named set of variants runs (`--variants`):

- `presets` (the default): the newest preset comparison in
  `benchmarks/RESULTS.md`, the corrected SynthSeg preset against the
  previous one.
- `any_contrast` (issue 20: what makes random-contrast training learn
  faster): `any` (`--contrast any`, SynthSeg's ranges up to 8 mm),
  `any_narrow_spacing` (`--contrast any --max-spacing 4`), `any_batch8`
  (`--contrast any --batch-size 8 --learning-rate 2e-3`) and `t1`
  (`--contrast t1`, the T1-prior network, for its drop on the other
  contrast cases). On a GPU:

      KERAS_BACKEND=jax python benchmarks/segmentation_variants.py \\
          --variants any_contrast --steps 4500 --seeds 0 1 2 3 --parallel 8

`--minutes` caps each run (default 30): on a CPU, where 4,500 steps take
about 35 minutes, raise it so that the step budget is kept. `--report-only`
writes the tables from the runs already in `--out`, without training. Other
example options common to all runs follow `--`, e.g. `-- --quick`.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "train_segmentation.py")
VARIANT_SETS = {
    # The newest preset comparison in benchmarks/RESULTS.md (issue 14).
    "presets": {
        # The SynthSeg preset as it is: random crop placement, SynthSeg's
        # background rule, bias field in 95% of samples, clip to 300 before
        # gamma.
        "corrected_preset": "",
        # The preset before those corrections: centred crop, background drawn
        # as any class, bias field always, no clip.
        "previous_preset": " ".join(
            f"--generator {item}"
            for item in (
                "placement='center'",
                "background_zero_probability=0.0",
                "background_mean_range=None",
                "background_std_range=None",
                "bias_probability=1.0",
                "clip=None",
            )
        ),
    },
    # Issue 20: what makes random-contrast training learn faster.
    "any_contrast": {
        # The method: SynthSeg's contrast-agnostic draws, spacing up to 8 mm.
        "any": "--contrast any",
        # A narrower acquisition range: spacing up to 4 mm.
        "any_narrow_spacing": "--contrast any --max-spacing 4",
        # Twice the batch at twice the learning rate (same steps).
        "any_batch8": "--contrast any --batch-size 8 --learning-rate 2e-3",
        # SynthSeg's T1 priors (spacing up to 2 mm): the reference on t1, and
        # its drop on the other contrast cases.
        "t1": "--contrast t1",
    },
}
DEFAULT_VARIANTS = VARIANT_SETS["presets"]


def run_directory(out, name, seed):
    """The output directory of one run: `OUT/NAME_sSEED`."""
    return os.path.join(out, f"{name}_s{seed}")


def run(name, seed, options, args):
    out = run_directory(args.out, name, seed)
    os.makedirs(out, exist_ok=True)
    for stale in ("dice.json", "contrast_cases.json"):  # from an earlier run
        if os.path.exists(os.path.join(out, stale)):
            os.remove(os.path.join(out, stale))
    command = [sys.executable, EXAMPLE, "--steps", str(args.steps)]
    command += ["--minutes", str(args.minutes), "--seed", str(seed), "--out", out]
    command += shlex.split(options) + args.common
    with open(os.path.join(out, "log.txt"), "w") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
    dice, cases = load_run(out)
    if code != 0 or dice is None:
        print(f"{name} seed {seed}: failed (exit {code}), see {out}/log.txt")
        return name, seed, None, None
    line = f"{name} seed {seed}: mean Dice {dice['mean_dice']:.3f}"
    if cases is not None:
        line += " (" + ", ".join(f"{c} {_fmt(d)}" for c, d in cases.items()) + ")"
    print(line, flush=True)
    return name, seed, dice, cases


def load_run(directory):
    """`dice.json` and the contrast-case summary of one run directory.

    Returns:
        `(dice, cases)`: the content of `dice.json` or None when absent, and
        `contrast_cases.json`'s `"summary"` (`{case: mean Dice}`, None for a
        case without structures) or None when absent.
    """
    dice = cases = None
    path = os.path.join(directory, "dice.json")
    if os.path.exists(path):
        with open(path) as f:
            dice = json.load(f)
    path = os.path.join(directory, "contrast_cases.json")
    if dice is not None and os.path.exists(path):
        with open(path) as f:
            cases = json.load(f)["summary"]
    return dice, cases


def collect(out, variants, seeds):
    """`(name, seed, dice, cases)` of every run of `variants` x `seeds` in `out`."""
    return [
        (name, seed, *load_run(run_directory(out, name, seed)))
        for name in variants
        for seed in seeds
    ]


def _fmt(value):
    return "-" if value is None or np.isnan(value) else f"{value:.3f}"


def table(results):
    """Markdown: per variant, mean and minimum over seeds; per structure."""
    variants = {}
    for name, _, dice, *_ in results:
        if dice is not None:
            variants.setdefault(name, []).append(dice)
    if not variants:
        return "No run finished."
    names = list(variants)
    lines = ["| structure | " + " | ".join(names) + " |"]
    lines.append("|---|" + "---|" * len(names))
    first = next(iter(variants.values()))[0]["structures"]
    for index, structure in enumerate(first):
        scores = [
            np.mean([d["structures"][index]["dice"] for d in variants[n]])
            for n in names
        ]
        lines.append(
            f"| {structure['name']} | " + " | ".join(f"{s:.3f}" for s in scores) + " |"
        )
    for label, reduce in (("**mean**", np.mean), ("min over seeds", np.min)):
        scores = [reduce([d["mean_dice"] for d in variants[n]]) for n in names]
        lines.append(f"| {label} | " + " | ".join(f"{s:.3f}" for s in scores) + " |")
    seeds = [str(len(variants[n])) for n in names]
    lines.append("| seeds | " + " | ".join(seeds) + " |")
    return "\n".join(lines)


def cases_table(results):
    """Markdown: per variant (rows), per contrast case (columns), the mean
    and the minimum over seeds of the case's mean Dice, as `mean (min)`.

    Only runs that wrote `contrast_cases.json` count; a case without
    structures (None) makes its mean and minimum `-`. Returns None when no
    run has contrast cases.
    """
    variants = {}
    for name, _, dice, cases in results:
        if dice is not None and cases is not None:
            variants.setdefault(name, []).append(cases)
    if not variants:
        return None
    columns = []
    for runs in variants.values():
        for cases in runs:
            columns += [case for case in cases if case not in columns]
    lines = ["| variant | " + " | ".join(columns) + " | seeds |"]
    lines.append("|---|" + "---|" * (len(columns) + 1))
    for name, runs in variants.items():
        cells = []
        for case in columns:
            values = [cases.get(case) for cases in runs]
            values = np.array([np.nan if v is None else v for v in values], float)
            cells.append(f"{_fmt(values.mean())} ({_fmt(values.min())})")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {len(runs)} |")
    return "\n".join(lines)


def report(results):
    """Both tables as markdown: the real scan, then the contrast cases."""
    text = table(results)
    cases = cases_table(results)
    if cases is not None:
        text += (
            "\n\nContrast cases of the test scan: mean Dice, mean over seeds "
            "(minimum over seeds).\n\n" + cases
        )
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4500)
    parser.add_argument("--minutes", type=float, default=30.0, help="cap per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--parallel", type=int, default=1, help="runs at a time")
    parser.add_argument(
        "--variants",
        default="presets",
        choices=tuple(VARIANT_SETS),
        help="named set of variants, used without --variant (default: presets)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=None,
        metavar="NAME=OPTIONS",
        help="a variant: its name and example options (repeatable)",
    )
    parser.add_argument("--out", default="segmentation_variants")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="write the tables from the runs already in --out, without training",
    )
    parser.add_argument("common", nargs="*", help="options for every run")
    args = parser.parse_args()
    variants = VARIANT_SETS[args.variants]
    if args.variant:
        variants = dict(v.split("=", 1) for v in args.variant)
    if args.report_only:
        results = collect(args.out, variants, args.seeds)
    else:
        jobs = [(n, s, o) for n, o in variants.items() for s in args.seeds]
        with ThreadPoolExecutor(args.parallel) as pool:
            results = list(pool.map(lambda job: run(*job, args), jobs))
    text = report(results)
    print(text)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(text + "\n")
    return 0 if all(dice is not None for _, _, dice, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
