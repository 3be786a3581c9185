"""Speed and peak memory of LabelsToImage.synthseg (the whole synthesis chain).

Each case runs in a fresh process so that peak resident memory is its own.
Input: one SynthSeg training label map (256^3, 1 mm) with SynthSeg's
generation labels and classes, the `LabelsToImage.synthseg` preset
(SynthSeg's BrainGenerator defaults: affine + SVF, flip, Gaussian mixture,
bias field, gamma, resolution model, min-max normalisation). Cases:
W2D-256 (the middle coronal 256x256 slice, 2D synthesis), W3D-96 and W3D-160
(3D, output_shape 96^3 / 160^3). Modes: eager call, compiled
`Model.predict_on_batch` (graph), and the same with `jit_compile=True` (XLA).
Backends run in their own processes (KERAS_BACKEND): TensorFlow all modes,
JAX eager and xla (jit), PyTorch eager.

    python benchmarks/synthesis.py [--backends tensorflow jax torch]
        [--cases W2D-256 W3D-96] [--modes eager graph] [--batch 4]
        [--repeats 10] [--data-dir DIR | --label-map FILE] [--write]
"""

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {
    "W2D-256": None,  # the input slice's own shape
    "W3D-96": (96, 96, 96),
    "W3D-160": (160, 160, 160),
}
MODES = ("eager", "graph", "xla")
BACKEND_MODES = {
    "tensorflow": ("eager", "graph", "xla"),
    "jax": ("eager", "xla"),
    "torch": ("eager",),
}
RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")
BEGIN, END = "<!-- synthesis.py: begin -->", "<!-- synthesis.py: end -->"


def find_data_dir(path):
    """--data-dir, else $SYNTHLAYERS_DATA_DIR, else ../shared/data next to the repo."""
    for candidate in (
        path,
        os.environ.get("SYNTHLAYERS_DATA_DIR"),
        os.path.join(ROOT, "..", "shared", "data"),
    ):
        if candidate and os.path.isdir(os.path.join(candidate, "synthseg_labels")):
            return os.path.normpath(candidate)
    raise SystemExit(
        "No SynthSeg data found: pass --data-dir (a directory with "
        "synthseg_label_maps/ and synthseg_labels/) or set SYNTHLAYERS_DATA_DIR."
    )


def run_case(case, mode, batch, repeats, data_dir, label_map_path):
    """Time one case in this process; return a dict of results."""
    import resource

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    from synthlayers import datasets
    from synthlayers.layers import LabelsToImage

    label_map_path = label_map_path or datasets.synthseg_label_map_paths(data_dir)[0]
    labels_map, _ = datasets.load_label_map(label_map_path)
    labels, classes = datasets.synthseg_generation_labels(data_dir)
    output_shape = CASES[case]
    if output_shape is None:  # 2D: the middle coronal slice of the RAS map
        labels_map = np.ascontiguousarray(labels_map[:, labels_map.shape[1] // 2])
        output_shape = labels_map.shape
    inputs = np.repeat(labels_map[None, ..., None], batch, axis=0)
    del labels_map
    layer = LabelsToImage.synthseg(
        labels, classes=classes, output_shape=output_shape, seed=0
    )
    if mode == "eager":
        step = layer
    else:
        # `predict` passes training=False to the layers of a functional model;
        # this model calls the layer in training mode, so it really draws.
        class Synthesis(keras.Model):
            def __init__(self, layer):
                super().__init__()
                self.synthesis = layer

            def call(self, labels):
                return self.synthesis(labels, training=True)

        model = Synthesis(layer)
        model.compile(jit_compile=mode == "xla")
        step = model.predict_on_batch

    def images():
        return keras.ops.convert_to_numpy(step(inputs)["images"])

    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    images()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = images()
        times.append(time.perf_counter() - start)
    assert out.shape == (batch, *output_shape, 1), out.shape
    assert np.isfinite(out).all() and 0 <= out.min() and out.max() <= 1
    assert not np.array_equal(out, images())  # consecutive calls differ
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    median = float(np.median(times))
    return {
        "case": case,
        "mode": mode,
        "backend": keras.backend.backend(),
        "batch": batch,
        "first_call_s": first,
        "median_s": median,
        "s_per_sample": median / batch,
        "samples_per_s": batch / median,
        "peak_rss_mb": peak_mb,
        "baseline_rss_mb": baseline_mb,
        "label_map": os.path.basename(label_map_path),
    }


def machine():
    """A short description of this machine and the package versions."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            names = [
                line.split(":", 1)[1].strip() for line in f if "model name" in line
            ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    memory = "unknown"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    memory = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    versions = [f"Python {platform.python_version()}"]
    for package in ("synthlayers", "keras", "tensorflow", "jax", "torch", "numpy"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return (
        f"{os.cpu_count()} logical CPUs ({usable} usable), {cpu}, {memory} memory, "
        f"{platform.system()} {platform.release()}; " + ", ".join(versions)
    )


def table(rows):
    lines = [
        "| case | backend | mode | batch | s/sample (median) | samples/s "
        "| first call s | peak RSS MB | RSS before first call MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['backend']} | {r['mode']} | {r['batch']} "
            f"| {r['s_per_sample']:.3f} | {r['samples_per_s']:.2f} "
            f"| {r['first_call_s']:.2f} | {r['peak_rss_mb']:.0f} "
            f"| {r['baseline_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def write_results(text):
    """Replace this script's section of RESULTS.md (other sections are kept)."""
    old = ""
    if os.path.exists(RESULTS):
        with open(RESULTS) as f:
            old = f.read()
    section = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in old and END in old:
        head, rest = old.split(BEGIN, 1)
        new = head + section + rest.split(END, 1)[1]
    else:
        new = old.rstrip() + "\n\n" if old.strip() else "# Benchmark results\n\n"
        new += section + "\n"
    with open(RESULTS, "w") as f:
        f.write(new)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument(
        "--backends", nargs="+", default=["tensorflow"], choices=list(BACKEND_MODES)
    )
    parser.add_argument("--data-dir", default=None, help="the SynthSeg data directory")
    parser.add_argument(
        "--label-map", default=None, help="a 256^3 label map (default: the first)"
    )
    parser.add_argument(
        "--write", action="store_true", help=f"also write the table to {RESULTS}"
    )
    parser.add_argument("--one", nargs=2, metavar=("CASE", "MODE"), help="internal")
    args = parser.parse_args()

    data_dir = find_data_dir(args.data_dir)
    if args.one:
        result = run_case(*args.one, args.batch, args.repeats, data_dir, args.label_map)
        print(json.dumps(result))
        return
    rows = []
    for backend in args.backends:
        for case in args.cases:
            for mode in args.modes:
                if mode not in BACKEND_MODES[backend]:
                    continue
                command = [
                    sys.executable, __file__, "--one", case, mode,
                    "--batch", str(args.batch), "--repeats", str(args.repeats),
                    "--data-dir", data_dir,
                ]  # fmt: skip
                if args.label_map:
                    command += ["--label-map", args.label_map]
                env = {**os.environ, "KERAS_BACKEND": backend}
                env["PYTHONPATH"] = os.pathsep.join(
                    p for p in (ROOT, env.get("PYTHONPATH")) if p
                )
                print(f"{backend} {case} {mode} ...", file=sys.stderr, flush=True)
                result = subprocess.run(
                    command, capture_output=True, text=True, env=env
                )
                if result.returncode != 0:
                    print(
                        f"{backend} {case} {mode}: failed\n{result.stderr[-2000:]}",
                        file=sys.stderr,
                    )
                    continue
                rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    if not rows:
        raise SystemExit("No case ran.")
    text = "\n\n".join(
        [
            "## LabelsToImage.synthseg (`benchmarks/synthesis.py`)",
            f"Machine: {machine()}.",
            f"Input: `{rows[0]['label_map']}` (256^3) with SynthSeg's generation "
            f"labels and classes; batch {args.batch}, median of {args.repeats} "
            "calls after a first (compiling) one; peak RSS of a fresh process "
            "per case.",
            table(rows),
        ]
    )
    print(text)
    if args.write:
        write_results(text)
        print(f"\nWrote {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
