"""Classical deformable baseline: dipy's SyN with cross-correlation, on the same pairs.

Not a dependency of synthlayers (`pip install dipy`). `syn_register`
starts from the same affine pre-alignment as the network (`register` with
no network, or a given world matrix), then runs dipy's
`SymmetricDiffeomorphicRegistration` with `CCMetric` (window radius 4,
sigma_diff 2: dipy's defaults), and returns the warped labels and the
displacement in synthlayers' convention (pull-back from the fixed grid, in
voxels of that grid, affine included), with its wall time.

As a script: evaluate SyN on the registration cases and print the table.

    python benchmarks/registration_baselines.py [--ndim 2] [--seed 0]
        [--level-iters 100 50 25] [--out results_syn.json]
"""

import argparse
import json
import time

import numpy as np


def syn_register(
    moving,
    fixed,
    moving_labels=None,
    world_matrix=None,
    level_iters=(100, 50, 25),
    radius=4,
    sigma_diff=2.0,
):
    """Affine (given or fitted) then dipy's SyN-CC; synthlayers' conventions.

    Args:
        moving: 2D/3D array (RAS+, 1 mm).
        fixed: array of the same rank (RAS+, 1 mm).
        moving_labels: integer labels on the moving grid, or None.
        world_matrix: the affine pre-alignment (world pull-back, as
            `RegistrationResult.world_matrix`), or None to fit it with
            `register(None, ...)` (dipy MI).
        level_iters: SyN iterations per level, coarse to fine.
        radius: CC window radius (voxels).
        sigma_diff: smoothing of the update field (voxels).

    Returns:
        A dict: `moved_segmentation`, `displacement` (voxels, pull-back
        from the fixed grid), `moved`, `seconds` (SyN alone) and
        `affine_seconds`.
    """
    from dipy.align.imwarp import SymmetricDiffeomorphicRegistration
    from dipy.align.metrics import CCMetric

    from synthlayers.inference.register import _points
    from synthlayers.inference.register import _sample
    from synthlayers.inference.register import register

    affine_seconds = 0.0
    if world_matrix is None:
        start = time.perf_counter()
        world_matrix = register(None, moving, fixed, inverse=False).world_matrix
        affine_seconds = time.perf_counter() - start
    aligned = register(None, moving, fixed, affine_method=world_matrix, inverse=False)
    ndim = aligned.fixed.ndim
    start = time.perf_counter()
    metric = CCMetric(ndim, sigma_diff=sigma_diff, radius=radius)
    syn = SymmetricDiffeomorphicRegistration(metric, level_iters=list(level_iters))
    mapping = syn.optimize(
        aligned.fixed.astype("float64"), aligned.moving_affine_only.astype("float64")
    )
    seconds = time.perf_counter() - start
    # dipy (identity grid-to-world): warped(x) = moving(x + forward(x)).
    forward = np.asarray(mapping.get_forward_field(), dtype="float64")
    grid = _points(aligned.fixed.shape)
    q = np.linalg.inv(aligned.affine) @ aligned.world_matrix @ aligned.affine
    total = (grid + forward) @ q[:ndim, :ndim].T + q[:ndim, ndim] - grid
    moved = np.asarray(mapping.transform(aligned.moving_affine_only), dtype="float32")
    labels = None
    if moving_labels is not None:
        # The original labels warped once along the composed map (arrays in
        # RAS+ at 1 mm: `register` gives them the identity voxel-to-world).
        to_moving = world_matrix @ aligned.affine
        coordinates = (grid + forward) @ to_moving[:ndim, :ndim].T
        coordinates = coordinates + to_moving[:ndim, ndim]
        labels = _sample(np.asarray(moving_labels), coordinates, order=0)
    return {
        "moved": moved,
        "moved_segmentation": labels,
        "displacement": total.astype("float32"),
        "seconds": seconds,
        "affine_seconds": affine_seconds,
    }


def evaluate_syn(cases, affines=None, **options):
    """SyN on each case: records in the format of `evaluate_cases`."""
    from synthlayers.evaluation import evaluate_registration

    records = []
    for i, case in enumerate(cases):
        world = None if affines is None else affines[i]
        out = syn_register(
            case.moving, case.fixed, case.moving_labels, world_matrix=world, **options
        )
        scores = evaluate_registration(
            out["moved_segmentation"], case.fixed_labels, out["displacement"]
        )
        records.append(
            {
                "name": case.name,
                "kind": case.kind,
                "methods": {
                    "syn": {
                        "mean_dice": scores["mean_dice"],
                        "dice": {str(k): v for k, v in scores["dice"].items()},
                        "num_structures": scores["num_structures"],
                        "folding_percent": scores["folding_percent"],
                        "log_jacobian_sd": scores["log_jacobian_sd"],
                        "seconds": out["seconds"] + out["affine_seconds"],
                        "syn_seconds": out["seconds"],
                    }
                },
            }
        )
    return records


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ndim", type=int, default=2, choices=(2, 3))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--level-iters", type=int, nargs="+", default=[100, 50, 25])
    parser.add_argument("--out", default=None, help="write the records as JSON")
    args = parser.parse_args(argv)

    from synthlayers.data.registration_cases import registration_cases
    from synthlayers.workflows.registration import format_summary
    from synthlayers.workflows.registration import summarize

    cases = registration_cases(ndim=args.ndim, seed=args.seed)
    records = evaluate_syn(cases, level_iters=args.level_iters)
    print(format_summary(summarize(records)))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"cases": records, "summary": summarize(records)}, f, indent=2)


if __name__ == "__main__":
    main()
