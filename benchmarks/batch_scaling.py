"""Batch 1 against batch 4 (or any batches), interleaved in one process.

Seconds per sample of `LabelsToImage.synthseg` (the whole chain, compiled as
`synthesis.py` does it: `synthesis_step`) at several batch sizes, the calls of
every (mode, batch) alternating in ONE process, so that a shared machine's
load affects them alike: read the batch-N / batch-1 ratio per mode. Backend
from `KERAS_BACKEND`; modes: TensorFlow graph and xla, JAX xla, PyTorch
eager (or `--modes`). Prints one JSON line per (case, mode, batch) and a
table, with the minor page faults per sample (`ru_minflt`): fresh pages the
allocator maps for large intermediates.

    KERAS_BACKEND=torch python benchmarks/batch_scaling.py --cases W3D-160 \
        --batches 1 4 --repeats 3
"""

import argparse
import json
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from common import find_data_dir
from common import synthesis_step
from synthesis import CASES

DEFAULT_MODES = {"tensorflow": ["graph", "xla"], "jax": ["xla"], "torch": ["eager"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["W3D-160"], choices=CASES)
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--modes", nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()

    import keras
    import numpy as np

    from synthlayers import datasets
    from synthlayers.layers import LabelsToImage

    backend = keras.backend.backend()
    modes = args.modes or DEFAULT_MODES[backend]
    data_dir = find_data_dir(args.data_dir)
    full, _ = datasets.load_label_map(datasets.synthseg_label_map_paths(data_dir)[0])
    labels, classes = datasets.synthseg_generation_labels(data_dir)
    rows = []
    for case in args.cases:
        label_map, shape = full, CASES[case]
        if shape is None:
            label_map = np.ascontiguousarray(full[:, full.shape[1] // 2])
            shape = label_map.shape
        inputs = {
            batch: np.repeat(label_map[None, ..., None], batch, axis=0)
            for batch in args.batches
        }
        calls = {}
        for mode in modes:
            for batch in args.batches:
                layer = LabelsToImage.synthseg(
                    labels, classes=classes, output_shape=shape, seed=0
                )
                step = synthesis_step(layer, mode)
                calls[(mode, batch)] = lambda x, step=step: keras.ops.convert_to_numpy(
                    step(x)["images"]
                )
                calls[(mode, batch)](inputs[batch])  # compile / warm up
        times = {key: [] for key in calls}
        faults = {key: [] for key in calls}
        for _ in range(args.repeats):
            for (mode, batch), call in calls.items():  # interleaved
                before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                start = time.perf_counter()
                call(inputs[batch])
                times[(mode, batch)].append(time.perf_counter() - start)
                after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                faults[(mode, batch)].append((after - before) / batch)
        for (mode, batch), ts in times.items():
            row = {
                "case": case,
                "backend": backend,
                "mode": mode,
                "batch": batch,
                "s_per_sample": float(np.median(ts)) / batch,
                "times_s": [round(t, 3) for t in ts],
                "page_faults_per_sample": float(np.median(faults[(mode, batch)])),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| case | backend | mode | batch | s/sample | / batch 1 | faults/sample |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        one = [
            q
            for q in rows
            if (q["case"], q["mode"], q["batch"]) == (r["case"], r["mode"], 1)
        ]
        ratio = f"{r['s_per_sample'] / one[0]['s_per_sample']:.2f}" if one else "-"
        print(
            f"| {r['case']} | {backend} | {r['mode']} | {r['batch']} "
            f"| {r['s_per_sample']:.3f} | {ratio} | {r['page_faults_per_sample']:.0f} |"
        )


if __name__ == "__main__":
    main()
