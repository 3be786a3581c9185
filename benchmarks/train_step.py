"""Synthesis versus learning: generator time against one U-Net training step.

For each case, in a fresh process and one backend: the median time of one
`LabelsToImage.synthseg` draw (compiled `predict_on_batch`, training mode,
from SynthSeg's first 256^3 label map) and of one `train_on_batch` of
SynthSeg's U-Net (5 levels, 24 features doubling per level, 2 convolutions
per level, batch normalisation, soft Dice) on an image and target of the
same output size, batch 1. The ratio is the share of a training step that
synthesis in the graph adds.

    python benchmarks/train_step.py [--cases W3D-96 W3D-160]
        [--backends tensorflow jax torch] [--repeats 3] [--write]
"""

import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import find_data_dir  # noqa: E402
from common import synthesis_step  # noqa: E402
from common import write_section  # noqa: E402
from synthesis import CASES  # noqa: E402
from synthesis import ROOT  # noqa: E402
from synthesis import machine  # noqa: E402

RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")


def run_case(case, repeats, data_dir):
    """Time synthesis and a training step in this process."""
    import resource

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    from synthlayers import datasets
    from synthlayers.layers import LabelsToImage
    from synthlayers.losses import DiceLoss
    from synthlayers.models import unet

    labels_map, _ = datasets.load_label_map(
        datasets.synthseg_label_map_paths(data_dir)[0]
    )
    labels, classes = datasets.synthseg_generation_labels(data_dir)
    output_shape = CASES[case]
    if output_shape is None:
        labels_map = np.ascontiguousarray(labels_map[:, labels_map.shape[1] // 2])
        output_shape = labels_map.shape
    inputs = labels_map[None, ..., None]
    # Targets: the 32 labels of SynthSeg's segmentation, as indices 0..31.
    targets = np.load(
        os.path.join(data_dir, "synthseg_labels", "synthseg_segmentation_labels.npy")
    )
    values = sorted(set(targets.tolist()))
    output_labels = {
        int(g): values.index(int(t)) for g, t in zip(labels.tolist(), targets)
    }
    layer = LabelsToImage.synthseg(
        labels,
        classes=classes,
        output_labels=output_labels,
        output_shape=output_shape,
        seed=0,
    )

    synthesize = synthesis_step(layer, "graph")
    network = unet((*output_shape, 1), num_classes=len(values))
    network.compile(optimizer="adam", loss=DiceLoss())

    def median_time(step):
        step()  # compile
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    sample = synthesize(inputs)
    image = keras.ops.convert_to_numpy(sample["images"])
    target = keras.ops.convert_to_numpy(sample["segmentation_masks"])
    synthesis_s = median_time(lambda: synthesize(inputs))
    train_s = median_time(lambda: network.train_on_batch(image, target))
    return {
        "case": case,
        "backend": keras.backend.backend(),
        "synthesis_s": synthesis_s,
        "train_step_s": train_s,
        "ratio": synthesis_s / train_s,
        "parameters": network.count_params(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["W3D-96", "W3D-160"])
    parser.add_argument("--backends", nargs="+", default=["tensorflow"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--one", default=None, help="internal")
    args = parser.parse_args()
    data_dir = find_data_dir(args.data_dir)
    if args.one:
        print(json.dumps(run_case(args.one, args.repeats, data_dir)))
        return
    rows = []
    for backend in args.backends:
        for case in args.cases:
            print(f"{backend} {case} ...", file=sys.stderr, flush=True)
            env = {**os.environ, "KERAS_BACKEND": backend}
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (ROOT, env.get("PYTHONPATH")) if p
            )
            command = [sys.executable, __file__, "--one", case]
            command += ["--repeats", str(args.repeats), "--data-dir", data_dir]
            result = subprocess.run(command, capture_output=True, text=True, env=env)
            if result.returncode != 0:
                print(f"{backend} {case}: failed\n{result.stderr[-2000:]}")
                continue
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    lines = [
        "## Synthesis versus a U-Net training step (`benchmarks/train_step.py`)",
        "",
        f"Machine: {machine()}.",
        "",
        "SynthSeg preset from a 256^3 label map; SynthSeg's U-Net, batch 1; "
        f"median of {args.repeats} after a first (compiling) call.",
        "",
        "| case | backend | synthesis s | U-Net training step s | synthesis / step "
        "| U-Net parameters | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['backend']} | {r['synthesis_s']:.3f} "
            f"| {r['train_step_s']:.2f} | {100 * r['ratio']:.1f}% "
            f"| {r['parameters']:,} | {r['peak_rss_mb']:.0f} |"
        )
    text = "\n".join(lines)
    print(text)
    if args.write:
        write_section(RESULTS, "train_step.py", text)


if __name__ == "__main__":
    main()
