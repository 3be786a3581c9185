"""Compare settings of the 2D segmentation example at one step budget, over seeds.

One 30-minute CPU run per setting cannot tell settings apart: the mean Dice
of identical runs with different seeds spread by up to 0.07. This script runs
`examples/train_segmentation.py --steps N` for each variant and seed, several
processes at a time (on a GPU, where 4,500 steps take about 3 minutes even
with 8 processes sharing one card), and prints the mean Dice on the real test
scan per variant (mean and minimum over seeds) and per structure.

    KERAS_BACKEND=jax python benchmarks/segmentation_variants.py \\
        --steps 4500 --seeds 0 1 2 3 --parallel 8 \\
        --variant default= --variant dice_only="--cross-entropy 0"

A variant is `name=options` (options of the example, shell-quoted). Each run
writes into `--out DIR/NAME_sSEED/` (`dice.json`, `summary.json`, the log).
Without `--variant`, the variants of the newest comparison in
`benchmarks/RESULTS.md` run. Other example options common to all runs
follow `--`, e.g. `-- --quick`.
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
DEFAULT_VARIANTS = {  # the newest comparison in benchmarks/RESULTS.md
    # The SynthSeg preset as it is: random crop placement, SynthSeg's
    # background rule, bias field in 95% of samples, clip to 300 before gamma.
    "corrected_preset": "",
    # The preset before those corrections: centred crop, background drawn as
    # any class, bias field always, no clip.
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
}


def run(name, seed, options, args):
    out = os.path.join(args.out, f"{name}_s{seed}")
    os.makedirs(out, exist_ok=True)
    command = [sys.executable, EXAMPLE, "--steps", str(args.steps)]
    command += ["--minutes", str(args.minutes), "--seed", str(seed), "--out", out]
    command += shlex.split(options) + args.common
    with open(os.path.join(out, "log.txt"), "w") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
    path = os.path.join(out, "dice.json")
    if code != 0 or not os.path.exists(path):
        print(f"{name} seed {seed}: failed (exit {code}), see {out}/log.txt")
        return name, seed, None
    with open(path) as f:
        dice = json.load(f)
    print(f"{name} seed {seed}: mean Dice {dice['mean_dice']:.3f}", flush=True)
    return name, seed, dice


def table(results):
    """Markdown: per variant, mean and minimum over seeds; per structure."""
    variants = {}
    for name, _, dice in results:
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4500)
    parser.add_argument("--minutes", type=float, default=30.0, help="cap per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--parallel", type=int, default=1, help="runs at a time")
    parser.add_argument("--variant", action="append", default=None)
    parser.add_argument("--out", default="segmentation_variants")
    parser.add_argument("common", nargs="*", help="options for every run")
    args = parser.parse_args()
    variants = DEFAULT_VARIANTS
    if args.variant:
        variants = dict(v.split("=", 1) for v in args.variant)
    jobs = [(n, s, o) for n, o in variants.items() for s in args.seeds]
    with ThreadPoolExecutor(args.parallel) as pool:
        results = list(pool.map(lambda job: run(*job, args), jobs))
    text = table(results)
    print(text)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(text + "\n")
    return 0 if all(dice is not None for *_, dice in results) else 1


if __name__ == "__main__":
    sys.exit(main())
