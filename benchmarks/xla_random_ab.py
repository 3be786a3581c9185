"""Issue 18 A/B in one process: the synthesis chain before/after the XLA fix.

"Before" patches `hashed_normal` back to `keras.random.normal` and `materialize`
to the identity in the mixture, flip and resolution layers; both variants are
compiled (TF graph and XLA, or JAX jit) and timed interleaved. Prints JSON lines.

    python benchmarks/xla_random_ab.py W2D-256:1 W3D-96:1 W3D-160:4
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras
import numpy as np
from keras import ops

import synthlayers.layers.random_flip as flip_mod
import synthlayers.layers.random_gaussian_mixture as mix_mod
import synthlayers.layers.random_resolution as res_mod
from synthlayers import datasets
from synthlayers.layers import LabelsToImage

backend = keras.backend.backend()
data = os.environ.get("SYNTHLAYERS_DATA_DIR", "../shared/data")
full, _ = datasets.load_label_map(datasets.synthseg_label_map_paths(data)[0])
labels, classes = datasets.synthseg_generation_labels(data)
NEW = (
    mix_mod.hashed_normal,
    mix_mod.materialize,
    flip_mod.materialize,
    res_mod.materialize,
)


def set_old(old):
    if old:
        mix_mod.hashed_normal = lambda shape, seed, dtype="float32": (
            keras.random.normal(shape, seed=seed, dtype=dtype)
        )
        mix_mod.materialize = flip_mod.materialize = res_mod.materialize = lambda x: x
    else:
        (
            mix_mod.hashed_normal,
            mix_mod.materialize,
            flip_mod.materialize,
            res_mod.materialize,
        ) = NEW


def compile_(gen, mode):
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(
            lambda x: gen(x, training=True)["images"], jit_compile=mode == "xla"
        )
    import jax

    variables = list(gen.non_trainable_variables)

    def pure(values, x):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
            out = gen(x, training=True)["images"]
            new = [scope.get_current_value(v) for v in variables]
        return out, new

    j = jax.jit(pure)
    state = {"v": [v.value for v in variables]}

    def call(x):
        out, new = j(state["v"], x)
        state["v"] = [n if n is not None else o for n, o in zip(new, state["v"])]
        return jax.block_until_ready(out)

    return call


modes = ["graph", "xla"] if backend == "tensorflow" else ["xla"]
cases = [c.split(":") for c in sys.argv[1:]]  # CASE:BATCH
for case, batch in cases:
    batch = int(batch)
    lm = full
    shape = {"W3D-96": (96,) * 3, "W3D-160": (160,) * 3}.get(case)
    if shape is None:
        lm = np.ascontiguousarray(full[:, full.shape[1] // 2])
        shape = lm.shape
    x = np.repeat(lm[None, ..., None], batch, 0)
    x = ops.convert_to_tensor(x)
    calls = {}
    for variant in ("old", "new"):
        for mode in modes:
            gen = LabelsToImage.synthseg(
                labels, classes=classes, output_shape=shape, seed=0
            )
            set_old(variant == "old")
            calls[(variant, mode)] = compile_(gen, mode)
            t = time.perf_counter()
            calls[(variant, mode)](x)
            first = time.perf_counter() - t
            set_old(False)
    times = {k: [] for k in calls}
    reps = 3 if case == "W3D-160" else 5
    for _ in range(reps):
        for k, c in calls.items():
            t = time.perf_counter()
            c(x)
            times[k].append(time.perf_counter() - t)
    for (variant, mode), ts in times.items():
        print(
            json.dumps(
                {
                    "case": case,
                    "batch": batch,
                    "backend": backend,
                    "mode": mode,
                    "variant": variant,
                    "s_per_sample": float(np.median(ts)) / batch,
                }
            ),
            flush=True,
        )
