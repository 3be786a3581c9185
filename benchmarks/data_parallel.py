"""Data-parallel training: samples per second at 1 and N (virtual) devices.

For each engine and device count, in a fresh process (the device count
must be fixed before the engine starts): a `SegmentationModel` (a
`LabelsToImage` with SynthSeg-like augmentation on 2D label maps, a small
U-Net, soft Dice) trains with `fit` on a `LabelMapFeed`, with
`--batch` maps per replica (global batch = batch x devices). One device:
plain `fit`. Several: `keras.distribution.DataParallel` (JAX) or
`tf.distribute.MirroredStrategy` (TensorFlow) over CPU devices made
virtually (`XLA_FLAGS=--xla_force_host_platform_device_count=N`,
`tf.config.set_logical_device_configuration`), or over the GPUs with
`--gpu`. Reported: samples per second of the timed `fit` (after a warm-up
`fit` that compiles), the median over `--repeats`.

On a CPU the virtual devices share its cores: this is a correctness check
(same code path as on several GPUs) more than a speed-up.

    python benchmarks/data_parallel.py [--engines jax tensorflow]
        [--devices 1 2] [--shape 64 64] [--batch 4] [--steps 8]
        [--repeats 3] [--gpu]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABELS = list(range(8))


def start(engine, devices, gpu):
    """Set up `devices` devices for `engine` before it starts."""
    os.environ["KERAS_BACKEND"] = engine
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if engine == "jax":
        if not gpu:
            os.environ["XLA_FLAGS"] = (
                f"{os.environ.get('XLA_FLAGS', '')} "
                f"--xla_force_host_platform_device_count={devices}"
            )
        return
    import tensorflow as tf

    if not gpu:
        tf.config.set_visible_devices([], "GPU")
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * devices
        )


def distribution_scope(engine, devices, gpu):
    """The scope to build and train in: nothing for one device."""
    import contextlib

    import keras

    if devices == 1:
        return contextlib.nullcontext()
    kind = "gpu" if gpu else "cpu"
    if engine == "jax":
        found = keras.distribution.list_devices(kind)[:devices]
        return keras.distribution.DataParallel(devices=found).scope()
    import tensorflow as tf

    names = [f"{kind.upper()}:{i}" for i in range(devices)]
    return tf.distribute.MirroredStrategy(names).scope()


def label_maps(shape, count=16, seed=0):
    """Blocky random 2D maps with LABELS, `count` of them."""
    import numpy as np

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, len(LABELS), (count, shape[0] // 8, shape[1] // 8))
    return list(coarse.repeat(8, 1).repeat(8, 2).astype("uint8"))


def run(engine, devices, shape, batch, steps, repeats, gpu):
    """Samples per second in this process, as a dict."""
    start(engine, devices, gpu)
    import keras
    import numpy as np

    from synthlayers.data.feed import LabelMapFeed
    from synthlayers.layers import LabelsToImage
    from synthlayers.models import SegmentationModel
    from synthlayers.models import unet

    global_batch = batch * devices
    maps = label_maps(shape)
    keras.utils.set_random_seed(0)
    with distribution_scope(engine, devices, gpu):
        generator = LabelsToImage(
            LABELS, output_labels={v: i for i, v in enumerate(LABELS)},
            rotation=15.0, scaling=0.15, deformation_std=3.0, bias_std=0.5,
            gamma_std=0.2, blur_sigma=1.0, noise_std=5.0, seed=0,
        )  # fmt: skip
        network = unet((*shape, 1), len(LABELS), levels=3, features=8)
        model = SegmentationModel(generator, network)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        warm = LabelMapFeed(maps, global_batch, steps_per_epoch=2, seed=1)
        model.fit(warm, epochs=1, verbose=0)
        rates = []
        for repeat in range(repeats):
            feed = LabelMapFeed(maps, global_batch, steps, seed=2 + repeat)
            began = time.perf_counter()
            history = model.fit(feed, epochs=1, verbose=0)
            rates.append(steps * global_batch / (time.perf_counter() - began))
        loss = float(history.history["loss"][-1])
    return {
        "engine": engine,
        "devices": devices,
        "device_kind": "gpu" if gpu else "virtual cpu",
        "global_batch": global_batch,
        "samples_per_second": float(np.median(rates)),
        "rates": rates,
        "final_loss": loss,
        "finite": bool(np.isfinite(loss)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engines", nargs="+", default=["jax", "tensorflow"])
    parser.add_argument("--devices", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--shape", nargs=2, type=int, default=[64, 64])
    parser.add_argument("--batch", type=int, default=4, help="per replica")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, devices = args.child.split(":")
        result = run(
            engine, int(devices), tuple(args.shape), args.batch, args.steps,
            args.repeats, args.gpu,
        )  # fmt: skip
        print("RESULT " + json.dumps(result))
        return
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"shape {tuple(args.shape)}, {args.batch} per replica, {args.steps} steps"
    )
    print(
        "| engine | devices | global batch | samples/s (median) | per repeat | loss |"
    )
    print("|---|---|---|---|---|---|")
    for engine in args.engines:
        for devices in args.devices:
            command = [
                sys.executable, os.path.abspath(__file__),
                "--child", f"{engine}:{devices}",
                "--shape", *map(str, args.shape), "--batch", str(args.batch),
                "--steps", str(args.steps), "--repeats", str(args.repeats),
            ] + (["--gpu"] if args.gpu else [])  # fmt: skip
            env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
            done = subprocess.run(
                command, cwd=ROOT, env=env, capture_output=True, text=True
            )
            lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
            if done.returncode or not lines:
                print(f"| {engine} | {devices} | failed: {done.stderr[-500:]} |")
                continue
            r = json.loads(lines[-1][len("RESULT ") :])
            repeats = ", ".join(f"{x:.1f}" for x in r["rates"])
            print(
                f"| {engine} | {devices} {r['device_kind']} | {r['global_batch']} | "
                f"{r['samples_per_second']:.1f} | "
                f"{repeats} | {r['final_loss']:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
