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
JAX eager and xla (jit), PyTorch eager. Peers, in the same run when
installed (`--peers`), on the same label map and output shapes: TorchIO
(RandomLabelsToImage + RandomAffine + RandomElasticDeformation +
RandomBiasField + RandomGamma + RandomBlur, after a centred CropOrPad to the
output shape, since TorchIO keeps shapes) and cornucopia
(`SynthFromLabelTransform(patch=output_shape)`, its SynthSeg-style chain
with the crop after the geometric transform, as ours). Peers draw one sample
per call; at `--batch N` a step is N calls.

    python benchmarks/synthesis.py [--backends tensorflow jax torch]
        [--peers torchio cornucopia] [--cases W2D-256 W3D-96]
        [--modes eager graph] [--batch 4] [--repeats 10]
        [--data-dir DIR | --label-map FILE] [--write]
"""

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time

from common import find_data_dir
from common import synthesis_step
from common import write_section

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
PEERS = ("torchio", "cornucopia")
RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")


def run_case(case, mode, batch, repeats, data_dir, label_map_path):
    """Time one case in this process; return a dict of results."""
    import resource

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    from synthlayers import datasets

    label_map_path = label_map_path or datasets.synthseg_label_map_paths(data_dir)[0]
    labels_map, _ = datasets.load_label_map(label_map_path)
    labels, classes = datasets.synthseg_generation_labels(data_dir)
    output_shape = CASES[case]
    if output_shape is None:  # 2D: the middle coronal slice of the RAS map
        labels_map = np.ascontiguousarray(labels_map[:, labels_map.shape[1] // 2])
        output_shape = labels_map.shape
    inputs = np.repeat(labels_map[None, ..., None], batch, axis=0)
    del labels_map
    if mode in PEERS:
        # Peers get the map with compact labels 0..53 (what they handle best:
        # both one-hot or loop over label values up to the largest one).
        compact = np.searchsorted(labels, inputs).astype("int64")
        step, backend = peer_step(mode, compact, output_shape)
    else:
        step, backend = synthlayers_step(mode, labels, classes, output_shape)

    def images():
        return np.asarray(step(inputs))

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
    assert np.isfinite(out).all()
    assert not np.array_equal(out, images())  # consecutive calls differ
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    median = float(np.median(times))
    return {
        "case": case,
        "mode": "eager" if mode in PEERS else mode,
        "backend": backend,
        "batch": batch,
        "first_call_s": first,
        "median_s": median,
        "s_per_sample": median / batch,
        "samples_per_s": batch / median,
        "peak_rss_mb": peak_mb,
        "baseline_rss_mb": baseline_mb,
        "label_map": os.path.basename(label_map_path),
    }


def synthlayers_step(mode, labels, classes, output_shape):
    """`(step, backend)`: our SynthSeg preset as a function of label maps."""
    import keras

    from synthlayers.layers import LabelsToImage

    layer = LabelsToImage.synthseg(
        labels, classes=classes, output_shape=output_shape, seed=0
    )
    step = synthesis_step(layer, mode)

    def images(inputs):
        out = keras.ops.convert_to_numpy(step(inputs)["images"])
        assert 0 <= out.min() and out.max() <= 1
        return out

    return images, keras.backend.backend()


def peer_step(peer, inputs, output_shape):
    """`(step, backend)`: a peer's chain, one call per sample of `inputs`.

    Label maps go in as the peers expect them (channels first, no batch);
    images come back as `(batch, *output_shape, 1)` NumPy arrays.
    """
    import importlib

    import numpy as np
    import torch

    module = importlib.import_module(peer)
    backend = f"{peer} {module.__version__} (torch {torch.__version__})"
    ndim = len(output_shape)
    if peer == "torchio":
        import torchio as tio

        # TorchIO works on 3D tensors: a 2D map is (1, H, W, 1).
        shape3d = (*output_shape, 1) if ndim == 2 else output_shape
        transform = tio.Compose(
            [
                tio.CropOrPad(shape3d),
                tio.RandomLabelsToImage(label_key="label"),
                tio.RandomAffine(scales=0.2, degrees=15),
                tio.RandomElasticDeformation(),
                tio.RandomBiasField(),
                tio.RandomGamma(),
                tio.RandomBlur(),
            ]
        )

        def one(label_map):
            tensor = torch.from_numpy(label_map.reshape(1, *label_map.shape[:ndim]))
            if ndim == 2:
                tensor = tensor[..., None]
            subject = tio.Subject(label=tio.LabelMap(tensor=tensor))
            image = transform(subject)["image_from_labels"].data.numpy()
            return image.reshape(*output_shape, 1)

    else:
        import cornucopia as cc

        synth = cc.SynthFromLabelTransform(patch=list(output_shape))

        def one(label_map):
            tensor = torch.from_numpy(label_map.reshape(1, *label_map.shape[:ndim]))
            image, _ = synth(tensor)
            return image.numpy().reshape(*output_shape, 1)

    def images(inputs):
        return np.stack([one(x) for x in inputs])

    return images, backend


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
    gpus = ""
    try:  # NVIDIA GPUs, when there are any
        query = ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"]
        names = subprocess.run(query, capture_output=True, text=True, timeout=30)
        if names.returncode == 0 and names.stdout.strip():
            gpus = f", GPU {'; '.join(names.stdout.strip().splitlines())}"
    except (OSError, subprocess.SubprocessError):
        pass
    versions = [f"Python {platform.python_version()}"]
    for package in ("synthlayers", "keras", "tensorflow", "jax", "torch", "numpy"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return (
        f"{os.cpu_count()} logical CPUs ({usable} usable), {cpu}, {memory} memory, "
        f"{platform.system()} {platform.release()}{gpus}; " + ", ".join(versions)
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


def ratio_table(rows):
    """Per case: how many times faster each of our rows is than each peer."""
    peers = [r for r in rows if r["backend"].split()[0] in PEERS]
    ours = [r for r in rows if r["backend"].split()[0] not in PEERS]
    if not peers or not ours:
        return ""
    names = sorted({p["backend"].split()[0] for p in peers})
    lines = [
        "| case | backend | mode | " + " | ".join(f"x vs {n}" for n in names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for r in ours:
        cells = []
        for name in names:
            match = [
                p
                for p in peers
                if p["case"] == r["case"] and p["backend"].split()[0] == name
            ]
            ratio = match[0]["s_per_sample"] / r["s_per_sample"] if match else None
            cells.append(f"{ratio:.1f}" if ratio else "-")
        head = f"| {r['case']} | {r['backend']} | {r['mode']} | "
        lines.append(head + " | ".join(cells) + " |")
    return "Speed-up (peer seconds per sample / ours):\n\n" + "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--peer-repeats", type=int, default=2, help="timed calls per peer case"
    )
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument(
        "--backends", nargs="*", default=["tensorflow"], choices=list(BACKEND_MODES)
    )
    parser.add_argument(
        "--peers", nargs="*", default=[], choices=PEERS, help="peers to run too"
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
    runs = [
        (backend, mode)
        for backend in args.backends
        for mode in args.modes
        if mode in BACKEND_MODES[backend]
    ]
    # Peers run under the torch backend (they need torch anyway; no TensorFlow).
    runs += [("torch", peer) for peer in args.peers]
    rows = []
    for backend, mode in runs:
        for case in args.cases:
            repeats = args.peer_repeats if mode in PEERS else args.repeats
            command = [
                sys.executable, __file__, "--one", case, mode,
                "--batch", str(args.batch), "--repeats", str(repeats),
                "--data-dir", data_dir,
            ]  # fmt: skip
            if args.label_map:
                command += ["--label-map", args.label_map]
            env = {**os.environ, "KERAS_BACKEND": backend}
            env["PYTHONPATH"] = os.pathsep.join(
                p for p in (ROOT, env.get("PYTHONPATH")) if p
            )
            print(f"{backend} {case} {mode} ...", file=sys.stderr, flush=True)
            result = subprocess.run(command, capture_output=True, text=True, env=env)
            if result.returncode != 0:
                print(
                    f"{backend} {case} {mode}: failed\n{result.stderr[-2000:]}",
                    file=sys.stderr,
                )
                continue
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    rows.sort(key=lambda r: list(CASES).index(r["case"]))
    if not rows:
        raise SystemExit("No case ran.")
    title = f"## LabelsToImage.synthseg, batch {args.batch} (`benchmarks/synthesis.py`)"
    blocks = [
        title,
        f"Machine: {machine()}.",
        f"Input: `{rows[0]['label_map']}` (256^3) with SynthSeg's generation "
        f"labels and classes; batch {args.batch}, median of {args.repeats} "
        f"calls ({args.peer_repeats} for peers) after a first (compiling) one; "
        "peak RSS of a fresh process per case. Peers get the map with compact "
        "labels 0..53 and their own default parameters.",
        table(rows),
        ratio_table(rows),
    ]
    text = "\n\n".join(block for block in blocks if block)
    print(text)
    if args.write:
        write_section(RESULTS, f"synthesis.py batch {args.batch}", text)
        print(f"\nWrote {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
