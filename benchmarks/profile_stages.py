"""Per-stage time and peak memory of LabelsToImage.synthseg.

Each stage of the chain is compiled on its own and timed on realistic inputs
(the previous stage's output, recorded once), under TensorFlow graph
(`tf.function`), TensorFlow XLA (`tf.function(jit_compile=True)`) and JAX
(`jax.jit`), on whatever device the backend uses. Input: one SynthSeg
training label map (256^3) with SynthSeg's generation labels and classes and
its segmentation labels as targets; output grids 96^3 and 160^3 (or 256^2 in
2D), batch 1 and 4 (the map repeated).

Stages (the components of `generator.components`, the spatial one split
into the ops it runs):

- `svf+integration`: `RandomSpatialTransform`'s SVF draw on the control
  grid and its scaling and squaring (`ops/integrate.py`);
- `coordinate map`: the affine draw and `coordinate_axes` (the control-grid
  map resized to the output grid, `ops/grid.py`, `ops/resize.py`);
- `gather`: `resample_axes` of the 256^3 map at those coordinates, nearest
  (`ops/resample.py`);
- `flip`: `RandomFlip` (with the left/right label swap);
- `label lookup`: the label -> class lookup of the mixture
  (`ops/labels.py`);
- `mixture`: `RandomGaussianMixture` as a whole (parameters, lookup, gather
  of per-sample class parameters, noise);
- `bias`: `RandomBiasField`; `clip`: `NormalizeIntensity(clip=(0, 300))`;
  `gamma`: `RandomGamma`;
- `resolution`: `RandomResolution` (SynthSeg's blur and down/up-sampling,
  fused into one per-sample matrix per axis: there is no separate blur
  stage in this preset);
- `normalisation`: the final `NormalizeIntensity` (min-max);
- `target remap`: `RemapLabels` to SynthSeg's segmentation labels.

Within one process the modes of a stage run interleaved (graph, xla, graph,
xla, ...) so that load on a shared machine affects them alike; reported is
the median over `--repeats` calls after a first (compiling) call, and the
peak resident memory above the level before the calls (sampled every
millisecond by a thread: the working memory of the stage, not counting the
recorded inputs). Backends run in their own processes.

    python benchmarks/profile_stages.py [--backends tensorflow jax]
        [--cases W3D-96 W3D-160] [--batches 1 4] [--repeats 5]
        [--stages gather resolution] [--data-dir DIR] [--write]
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time

from common import find_data_dir
from common import write_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "RESULTS.md")
CASES = {"W2D-256": None, "W3D-96": (96, 96, 96), "W3D-160": (160, 160, 160)}
STAGES = (
    "svf+integration", "coordinate map", "gather", "flip", "label lookup",
    "mixture", "bias", "clip", "gamma", "resolution", "normalisation",
    "target remap",
)  # fmt: skip
BACKEND_MODES = {"tensorflow": ("graph", "xla"), "jax": ("xla",), "torch": ("eager",)}


class PeakRSS:
    """Peak resident memory (MB) above the level at entry, sampled by a thread."""

    def __enter__(self):
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.start = self.peak = self._rss()
        self.running = True
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def _rss(self):
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def _poll(self):
        while self.running:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.001)

    def __exit__(self, *args):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def mb(self):
        return (self.peak - self.start) / 2**20


def stage_functions(generator, labels_map, output_shape):
    """`[(name, function, inputs)]`: each stage with its recorded inputs.

    The functions take and return dicts (or tuples) of tensors; the inputs
    of each stage are the eager outputs of the previous stage.
    """
    from keras import ops

    from synthlayers.layers import NormalizeIntensity
    from synthlayers.layers import RandomBiasField
    from synthlayers.layers import RandomFlip
    from synthlayers.layers import RandomGamma
    from synthlayers.layers import RandomGaussianMixture
    from synthlayers.layers import RandomResolution
    from synthlayers.layers import RandomSpatialTransform
    from synthlayers.layers import RemapLabels
    from synthlayers.ops.grid import coordinate_axes
    from synthlayers.ops.labels import apply_lookup_table
    from synthlayers.ops.resample import resample_axes

    def find(kind, index=0):
        return [c for c in generator.components if isinstance(c, kind)][index]

    spatial = find(RandomSpatialTransform)
    mixture = find(RandomGaussianMixture)
    batch = labels_map.shape[0]
    input_shape = tuple(labels_map.shape[1:-1])
    seed = spatial.seed_generator

    def svf(x):
        return spatial.deformation.sample_coarse(seed, batch, output_shape)

    def coordinates(x):
        offset = spatial._offset(seed, batch, input_shape, output_shape, True)
        matrix = spatial.affine.sample(seed, batch, input_shape)
        return tuple(
            coordinate_axes(
                output_shape,
                matrix=matrix,
                control_displacement=x,
                offset=offset,
                batch_size=batch,
            )
        )

    def gather(x):
        axes, masks = x
        return resample_axes(masks, list(axes), "nearest", "constant", 0)

    def component(layer):
        return lambda x: layer(x, training=True)

    def lookup(x):
        return apply_lookup_table(x["segmentation_masks"][..., 0], mixture._table, 0)

    stages = [
        ("svf+integration", svf, None),
        ("coordinate map", coordinates, "previous"),
        ("gather", gather, "axes+labels"),
        ("flip", component(find(RandomFlip)), "masks"),
        ("label lookup", lookup, "previous"),
        ("mixture", component(mixture), "previous"),
        ("bias", component(find(RandomBiasField)), "previous"),
        ("clip", component(find(NormalizeIntensity, 0)), "previous"),
        ("gamma", component(find(RandomGamma)), "previous"),
        ("resolution", component(find(RandomResolution)), "previous"),
        ("normalisation", component(find(NormalizeIntensity, 1)), "previous"),
        ("target remap", component(find(RemapLabels)), "previous"),
    ]
    labels_tensor = ops.convert_to_tensor(labels_map)
    out, flipped, recorded = None, None, []
    for name, function, source in stages:
        if source is None:
            inputs = ops.zeros((1,))
        elif source == "axes+labels":
            inputs = (out, labels_tensor)
        elif source == "masks":
            inputs = {"segmentation_masks": out}
        else:
            inputs = out
        if name == "mixture":  # the mixture takes the flipped map, not the lookup
            inputs = flipped
        result = function(inputs)
        if name == "flip":
            flipped = result
        if name == "label lookup":
            recorded.append((name, function, inputs))
            continue
        if name == "target remap":
            inputs = {"segmentation_masks": flipped["segmentation_masks"]}
            result = function(inputs)
        recorded.append((name, function, inputs))
        out = result
    return recorded


def compile_stage(function, mode, generator):
    """`call(inputs)`: the stage compiled for `mode`, blocking until done."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        compiled = tf.function(function, jit_compile=mode == "xla")
        return compiled
    if backend == "jax":
        import jax

        variables = list(generator.non_trainable_variables)
        values = [v.value for v in variables]

        def pure(values, inputs):
            mapping = list(zip(variables, values, strict=True))
            with keras.StatelessScope(state_mapping=mapping):
                return function(inputs)

        jitted = jax.jit(pure)
        return lambda inputs: jax.block_until_ready(jitted(values, inputs))
    return function


def run_backend(cases, batches, repeats, stage_names, data_dir):
    """All stages of all cases under this process's backend; a list of dicts."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import numpy as np

    from synthlayers import datasets
    from synthlayers.layers import LabelsToImage

    backend = keras.backend.backend()
    modes = BACKEND_MODES[backend]
    path = datasets.synthseg_label_map_paths(data_dir)[0]
    full_map, _ = datasets.load_label_map(path)
    labels, classes = datasets.synthseg_generation_labels(data_dir)
    targets = np.load(
        os.path.join(data_dir, "synthseg_labels", "synthseg_segmentation_labels.npy")
    )
    rows = []
    for case in cases:
        label_map = full_map
        output_shape = CASES[case]
        if output_shape is None:
            label_map = np.ascontiguousarray(full_map[:, full_map.shape[1] // 2])
            output_shape = label_map.shape
        for batch in batches:
            generator = LabelsToImage.synthseg(
                labels,
                classes=classes,
                output_labels=[int(t) for t in targets],
                output_shape=output_shape,
                seed=0,
            )
            inputs = np.repeat(label_map[None, ..., None], batch, axis=0)
            stages = stage_functions(generator, inputs, output_shape)
            for name, function, stage_inputs in stages:
                if stage_names and name not in stage_names:
                    continue
                calls = {m: compile_stage(function, m, generator) for m in modes}
                first, times, peaks = {}, {m: [] for m in modes}, {}
                for m in modes:
                    start = time.perf_counter()
                    with PeakRSS() as peak:
                        calls[m](stage_inputs)
                    first[m] = time.perf_counter() - start
                    peaks[m] = peak.mb
                for _ in range(repeats):
                    for m in modes:  # interleaved
                        with PeakRSS() as peak:
                            start = time.perf_counter()
                            calls[m](stage_inputs)
                            times[m].append(time.perf_counter() - start)
                        peaks[m] = max(peaks[m], peak.mb)
                for m in modes:
                    row = {
                        "case": case,
                        "batch": batch,
                        "stage": name,
                        "backend": backend,
                        "mode": m,
                        "median_s": float(np.median(times[m])),
                        "first_s": first[m],
                        "peak_mb": peaks[m],
                    }
                    print(json.dumps(row), flush=True)
                    rows.append(row)
    return rows


def table(rows, cases, batches):
    """Markdown: one row per case, batch and stage; ms per sample per column."""
    columns = sorted(
        {(r["backend"], r["mode"]) for r in rows},
        key=lambda c: (list(BACKEND_MODES).index(c[0]), c[1]),
    )
    names = {("tensorflow", "graph"): "TF graph", ("tensorflow", "xla"): "TF XLA"}
    names[("jax", "xla")] = "JAX jit"
    heads = [names.get(c, f"{c[0]} {c[1]}") for c in columns]
    index = {
        (r["case"], r["batch"], r["stage"], r["backend"], r["mode"]): r for r in rows
    }
    lines = [
        "| case | batch | stage | "
        + " | ".join(f"{h} ms/sample" for h in heads)
        + (" | XLA / graph" if ("tensorflow", "xla") in columns else "")
        + " | "
        + " | ".join(f"{h} peak MB" for h in heads)
        + " |",
        "|---|---|---|"
        + "---|" * (2 * len(heads) + (("tensorflow", "xla") in columns)),
    ]
    for case in cases:
        for batch in batches:
            totals = {c: 0.0 for c in columns}
            for stage in STAGES:
                cells = [index.get((case, batch, stage, *c)) for c in columns]
                if not any(cells):
                    continue
                times = [
                    f"{1000 * r['median_s'] / batch:.1f}" if r else "-" for r in cells
                ]
                for c, r in zip(columns, cells, strict=True):
                    if r:
                        totals[c] += r["median_s"] / batch
                ratio = ""
                if ("tensorflow", "xla") in columns:
                    g = index.get((case, batch, stage, "tensorflow", "graph"))
                    x = index.get((case, batch, stage, "tensorflow", "xla"))
                    ratio = (
                        f" | {x['median_s'] / g['median_s']:.2f}" if g and x else " | -"
                    )
                peaks = [f"{r['peak_mb']:.0f}" if r else "-" for r in cells]
                lines.append(
                    f"| {case} | {batch} | {stage} | " + " | ".join(times) + ratio
                    + " | " + " | ".join(peaks) + " |"
                )  # fmt: skip
            total = [f"**{1000 * totals[c]:.1f}**" for c in columns]
            ratio = ""
            if ("tensorflow", "xla") in columns and totals[("tensorflow", "graph")]:
                r = totals[("tensorflow", "xla")] / totals[("tensorflow", "graph")]
                ratio = f" | **{r:.2f}**"
            lines.append(
                f"| {case} | {batch} | sum of stages | " + " | ".join(total) + ratio
                + " | " + " | ".join("" for _ in columns) + " |"
            )  # fmt: skip
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument("--cases", nargs="+", default=["W3D-96", "W3D-160"])
    parser.add_argument("--batches", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stages", nargs="*", default=[], choices=STAGES)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--one", action="store_true", help="internal")
    args = parser.parse_args()
    data_dir = find_data_dir(args.data_dir)
    if args.one:
        run_backend(args.cases, args.batches, args.repeats, args.stages, data_dir)
        return
    rows = []
    for backend in args.backends:
        command = [
            sys.executable, __file__, "--one", "--cases", *args.cases,
            "--batches", *map(str, args.batches), "--repeats", str(args.repeats),
            "--data-dir", data_dir,
        ]  # fmt: skip
        if args.stages:
            command += ["--stages", *args.stages]
        env = {**os.environ, "KERAS_BACKEND": backend}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (ROOT, env.get("PYTHONPATH")) if p
        )
        print(f"{backend} ...", file=sys.stderr, flush=True)
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        rows += [json.loads(line) for line in lines]
        if result.returncode != 0:
            print(f"{backend}: failed\n{result.stderr[-3000:]}", file=sys.stderr)
    text = "\n\n".join(
        [
            "## Per-stage profile of LabelsToImage.synthseg "
            "(`benchmarks/profile_stages.py`)",
            f"Command: `python benchmarks/profile_stages.py --backends "
            f"{' '.join(args.backends)} --cases {' '.join(args.cases)} --batches "
            f"{' '.join(map(str, args.batches))} --repeats {args.repeats}`. "
            "Milliseconds per sample (median call / batch), each stage compiled "
            "on its own on the previous stage's output; modes of a stage "
            "interleaved in one process; peak MB: resident memory above the "
            "level before the call.",
            table(rows, args.cases, args.batches),
        ]
    )
    print(text)
    if args.write:
        write_section(RESULTS, "profile_stages.py", text)


if __name__ == "__main__":
    main()
