"""Training input: `fit` on a feed's epochs against `fit` on its stream.

Under TensorFlow, `fit` on a finite `PyDataset` makes a new `tf.data`
iterator at every epoch; the training workflows now fit on `feed.stream()`
(one iterator for the whole run, see `synthlayers.data.feed.Feed`). This
script times both on one model, alternately in one process: the 2D
segmentation example's settings (a 5-level U-Net with 16 features, batch 4 of
192x192 coronal slices, `LabelsToImage.synthseg`, epochs of 50 steps), on
label maps made in code (`phantom_label_map`), so it needs no data. Seconds
per step after the first `--skip` steps of each fit; the mean counts the
epoch starts, the median does not.

    python benchmarks/training_input.py --steps 350 --repeats 2
"""

import argparse
import os
import time

import numpy as np
from common import write_section

HERE = os.path.dirname(os.path.abspath(__file__))


def build(seed):
    import keras

    from synthlayers.data import LabelMapFeed
    from synthlayers.data import phantom_label_map
    from synthlayers.layers import LabelsToImage
    from synthlayers.losses import DiceLoss
    from synthlayers.models import SegmentationModel
    from synthlayers.models import unet

    maps = [np.roll(phantom_label_map((192, 192, 192)), s, axis=1) for s in (0, 3, 6)]
    labels = sorted(set(np.unique(maps[0]).tolist()))
    generator = LabelsToImage.synthseg(
        labels,
        output_labels={label: i for i, label in enumerate(labels)},
        output_shape=(192, 192),
        seed=seed,
    )
    network = unet(
        (None, None, 1), num_classes=len(labels), levels=5, features=16,
        normalization="instance",
    )  # fmt: skip
    model = SegmentationModel(generator, network)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=DiceLoss())
    feed = LabelMapFeed(maps, 4, steps_per_epoch=50, slice_axis=1, seed=seed)
    return model, feed


def timed_fit(mode, steps, skip, seed):
    import keras

    model, feed = build(seed)
    times = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter())

    epochs = -(-steps // feed.steps_per_epoch)
    if mode == "epochs":
        model.fit(feed, epochs=epochs, callbacks=[Clock()], verbose=0)
    else:
        model.fit(
            feed.stream(),
            steps_per_epoch=feed.steps_per_epoch,
            shuffle=False,
            epochs=epochs,
            callbacks=[Clock()],
            verbose=0,
        )
    return np.diff(times[skip - 1 :])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=350)
    parser.add_argument("--skip", type=int, default=50, help="steps left out")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    import keras

    rows = []
    for repeat in range(args.repeats):
        for mode in ("epochs", "stream"):
            d = timed_fit(mode, args.steps, args.skip, seed=repeat)
            rows.append((mode, repeat, len(d), np.median(d), np.mean(d), d.max()))
            print(
                f"{mode} repeat {repeat}: {len(d)} steps, median {np.median(d):.3f}, "
                f"mean {np.mean(d):.3f}, max {d.max():.2f} s/step",
                flush=True,
            )
    lines = [
        f"Backend {keras.backend.backend()}, {os.cpu_count()} CPUs; "
        f"`python benchmarks/training_input.py --steps {args.steps} "
        f"--repeats {args.repeats}`; steps {args.skip + 1}-{args.steps} of each fit.",
        "",
        "| input | repeat | steps | median s/step | mean s/step | slowest step s |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| `{'fit(feed, epochs=...)' if m == 'epochs' else 'fit(feed.stream(), ...)'}`"
        f" | {r} | {n} | {med:.3f} | {mean:.3f} | {worst:.2f} |"
        for m, r, n, med, mean, worst in rows
    ]
    for mode in ("epochs", "stream"):
        means = [mean for m, _, _, _, mean, _ in rows if m == mode]
        lines.append(f"\nMean over repeats, {mode}: {np.mean(means):.3f} s/step.")
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(
            args.results,
            "training input",
            "## Training input: a feed's epochs or its stream "
            "(`benchmarks/training_input.py`)\n\n" + text,
        )


if __name__ == "__main__":
    main()
