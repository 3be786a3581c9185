"""Synthesise randomly deformed 2D and 3D examples and write a PNG montage.

The label map is made in code (`synthlayers.datasets.phantom_label_map`); an
image is rendered from it with one intensity per label, and both go through
`RandomSpatialTransform` (random affine + diffeomorphic deformation, resampled
once onto a smaller output grid) so the montage shows images and labels that
stay aligned. Rows: 2D images, 2D labels, 3D images (middle slice), 3D labels.

    python examples/synthesize.py [--out montage.png] [--samples 6] [--quick]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from synthlayers.datasets import phantom_label_map  # noqa: E402
from synthlayers.layers import RandomSpatialTransform  # noqa: E402
from synthlayers.visualize import colorize  # noqa: E402
from synthlayers.visualize import label_colors  # noqa: E402
from synthlayers.visualize import montage  # noqa: E402
from synthlayers.visualize import to_gray  # noqa: E402
from synthlayers.visualize import write_png  # noqa: E402


def render(labels, seed=0):
    """One intensity per label (a fixed contrast), float32 image."""
    rng = np.random.default_rng(seed)
    values = np.unique(labels)
    table = dict(zip(values, rng.uniform(0.2, 1.0, len(values))))
    table[0] = 0.0
    return np.vectorize(table.get)(labels).astype("float32")


def synthesize(shape, output_shape, samples, seed):
    labels = phantom_label_map(shape)[None, ..., None].repeat(samples, axis=0)
    layer = RandomSpatialTransform(
        output_shape=output_shape,
        rotation=15,
        scaling=0.2,
        shear=0.012,
        translation=0.05 * min(shape),
        deformation_std=4.0,
        svf_shape=0.04 if len(shape) == 3 else 0.05,
        seed=seed,
    )
    start = time.perf_counter()
    out = layer({"images": render(labels), "segmentation_masks": labels})
    seconds = time.perf_counter() - start
    return (
        np.asarray(out["images"])[..., 0],
        np.asarray(out["segmentation_masks"])[..., 0],
        seconds,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default="synthlayers_montage.png", help="PNG path to write"
    )
    parser.add_argument("--samples", type=int, default=6, help="samples per row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, for smoke tests"
    )
    args = parser.parse_args()

    size2, out2 = (64, 48) if args.quick else (256, 192)
    size3, out3 = (40, 32) if args.quick else (128, 96)
    images2, labels2, t2 = synthesize(
        (size2, size2), (out2, out2), args.samples, args.seed
    )
    images3, labels3, t3 = synthesize(
        (size3,) * 3, (out3,) * 3, args.samples, args.seed
    )
    colors = label_colors(np.unique(np.concatenate([labels2.ravel(), labels3.ravel()])))
    middle = out3 // 2
    rows = [
        [to_gray(x) for x in images2],
        [colorize(x, colors) for x in labels2],
        [to_gray(np.pad(x[:, middle], (out2 - out3) // 2)) for x in images3],
        [colorize(np.pad(x[:, middle], (out2 - out3) // 2), colors) for x in labels3],
    ]
    write_png(args.out, montage([t for row in rows for t in row], columns=args.samples))
    print(f"2D: {args.samples} samples {size2}^2 -> {out2}^2 in {t2:.2f} s")
    print(f"3D: {args.samples} samples {size3}^3 -> {out3}^3 in {t3:.2f} s")
    print(f"Wrote montage to {os.path.abspath(args.out)}")


if __name__ == "__main__":
    main()
