"""Speed and peak memory of RandomSpatialTransform (affine + SVF, one resampling).

Each case runs in a fresh process so that peak resident memory is its own.
Cases: W3D-160 (256^3 label map -> 160^3), W3D-96 (256^3 -> 96^3) and
W2D-256 (256^2 -> 256^2), batch 1, SynthSeg's spatial defaults (rotation 15,
scaling 0.2, shear 0.012, SVF std 4 at 0.04 of the shape, 7 steps).
Modes: eager call, compiled `Model.predict_on_batch` (graph), and the same
with `jit_compile=True` (XLA) where the backend has it.

    python benchmarks/spatial.py [--repeats 10] [--label-map file.nii.gz]
"""

import argparse
import json
import os
import subprocess
import sys
import time

from common import synthesis_step

CASES = {
    "W2D-256": ((256, 256), (256, 256)),
    "W3D-96": ((256, 256, 256), (96, 96, 96)),
    "W3D-160": ((256, 256, 256), (160, 160, 160)),
}
MODES = ("eager", "graph", "xla")


def run_case(case, mode, repeats, label_map_path):
    """Time one case in this process; return a dict of results."""
    import resource

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    from synthlayers.datasets import phantom_label_map
    from synthlayers.layers import RandomSpatialTransform

    input_shape, output_shape = CASES[case]
    if label_map_path and len(input_shape) == 3:
        import nibabel

        labels = np.asarray(nibabel.load(label_map_path).dataobj, dtype="int32")
    else:
        labels = phantom_label_map(input_shape)
    labels = labels[None, ..., None]
    layer = RandomSpatialTransform(
        output_shape=output_shape,
        rotation=15,
        scaling=0.2,
        shear=0.012,
        translation=0,
        deformation_std=4.0,
        deformation_grid_shape=0.04,
        seed=0,
    )
    step = synthesis_step(layer, mode)
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    keras.ops.convert_to_numpy(step(labels))
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = keras.ops.convert_to_numpy(step(labels))
        times.append(time.perf_counter() - start)
    assert out.shape == (1, *output_shape, 1)
    assert not np.array_equal(out, keras.ops.convert_to_numpy(step(labels)))  # random
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "case": case,
        "mode": mode,
        "backend": keras.backend.backend(),
        "first_call_s": first,
        "median_s": float(np.median(times)),
        "samples_per_s": 1 / float(np.median(times)),
        "peak_rss_mb": peak_mb,
        "baseline_rss_mb": baseline_mb,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--label-map", default=None, help="a 256^3 NIfTI label map")
    parser.add_argument(
        "--one", nargs=2, metavar=("CASE", "MODE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()

    if args.one:
        print(json.dumps(run_case(*args.one, args.repeats, args.label_map)))
        return
    rows = []
    for case in args.cases:
        for mode in args.modes:
            command = [
                sys.executable,
                __file__,
                "--one",
                case,
                mode,
                "--repeats",
                str(args.repeats),
            ]
            if args.label_map:
                command += ["--label-map", args.label_map]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                print(
                    f"{case} {mode}: failed\n{result.stderr[-2000:]}", file=sys.stderr
                )
                continue
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    print(
        "| case | backend | mode | s/sample (median) | samples/s | first call s "
        "| peak RSS MB | RSS before first call MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['backend']} | {r['mode']} | {r['median_s']:.3f} "
            f"| {r['samples_per_s']:.1f} | {r['first_call_s']:.2f} "
            f"| {r['peak_rss_mb']:.0f} | {r['baseline_rss_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
