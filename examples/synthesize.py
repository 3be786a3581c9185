"""Synthesise SynthSeg- and SynthMorph-style images and write a PNG montage.

Source label map: a real SynthSeg training label map (256^3, 1 mm) when a
data directory is given (`--data-dir`, else $SYNTHLAYERS_DATA_DIR), with
SynthSeg's generation labels and classes; otherwise a random label map from
`RandomLabelMap`.
Each sample is a 3D synthesis (`LabelsToImage.synthseg` and
`LabelsToImage.synthmorph` presets, a new draw per call) shown by its middle
coronal slice. Rows: SynthSeg images, their segmentation targets, SynthMorph
images, their label maps; one column per sample.

    python examples/synthesize.py [--out montage.png] [--samples 6] [--quick]
                                  [--data-dir DIR] [--random-labels]
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from synthlayers import datasets  # noqa: E402
from synthlayers.layers import LabelsToImage  # noqa: E402
from synthlayers.plot import plot_montage  # noqa: E402
from synthlayers.plot import save_figure  # noqa: E402


def find_data_dir(path):
    """`path`, else $SYNTHLAYERS_DATA_DIR, or None; with its origin."""
    for origin, candidate in (
        ("--data-dir", path),
        (f"${datasets.DATA_DIR_ENV}", datasets.local_data_dir()),
    ):
        if candidate and os.path.isdir(os.path.join(candidate, "synthseg_label_maps")):
            return candidate, origin
        if candidate and origin == "--data-dir":
            raise SystemExit(f"--data-dir {path}: no synthseg_label_maps in it")
    return None, None


def real_label_map(data_dir, quick):
    """SynthSeg's first training map and its label tables."""
    path = datasets.synthseg_label_map_paths(data_dir)[0]
    label_map, _ = datasets.load_label_map(path)
    if quick:  # 256^3 at 1 mm -> 64^3 at 4 mm (nearest neighbour)
        label_map = label_map[2::4, 2::4, 2::4]
    labels, classes = datasets.synthseg_generation_labels(data_dir)
    # SynthSeg's targets: extra-cerebral labels -> 0, lesions and vessels into
    # their neighbours (SynthSeg's segmentation_labels, one per label).
    targets_path = os.path.join(
        data_dir, "synthseg_labels", "synthseg_segmentation_labels.npy"
    )
    output_labels = None
    if os.path.isfile(targets_path):
        output_labels = dict(zip(labels.tolist(), np.load(targets_path).tolist()))
    return label_map, labels, classes, output_labels, os.path.basename(path)


def random_label_map(shape, seed):
    """A random label map (16 labels, 0..15) from `RandomLabelMap`."""
    from synthlayers.layers.random_label_map import RandomLabelMap

    generator = RandomLabelMap(output_shape=shape, num_labels=16, seed=seed)
    label_map = generator(np.zeros((1, 1), "float32"))["segmentation_masks"]
    label_map = np.asarray(label_map)[0, ..., 0]
    labels = np.unique(label_map)
    return label_map, labels, None, None


def synthesize(generator, label_map, samples):
    """`samples` consecutive draws (batch 1 each): images, labels, seconds."""
    batch = label_map[None, ..., None]
    images, masks, seconds = [], [], []
    for _ in range(samples):
        start = time.perf_counter()
        out = generator(batch)
        image = np.asarray(out["images"])[0, ..., 0]
        mask = np.asarray(out["segmentation_masks"])[0, ..., 0]
        seconds.append(time.perf_counter() - start)
        images.append(image)
        masks.append(mask)
    return images, masks, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default="synthlayers_montage.png", help="PNG path to write"
    )
    parser.add_argument("--samples", type=int, default=6, help="samples per row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes (48^3 outputs), for tests"
    )
    parser.add_argument("--data-dir", default=None, help="the data directory")
    parser.add_argument(
        "--random-labels",
        action="store_true",
        help="use RandomLabelMap even when real label maps are available",
    )
    args = parser.parse_args()

    data_dir, origin = (None, None)
    if not args.random_labels:
        data_dir, origin = find_data_dir(args.data_dir)
    if data_dir is not None:
        label_map, labels, classes, output_labels, name = real_label_map(
            data_dir, args.quick
        )
        output_shape = (48,) * 3 if args.quick else (160,) * 3
        print(
            f"Label map: {name} from {os.path.abspath(data_dir)} (found via "
            f"{origin}), {'x'.join(map(str, label_map.shape))}, "
            f"{len(labels)} SynthSeg generation labels"
        )
    else:
        shape = (64,) * 3 if args.quick else (128,) * 3
        label_map, labels, classes, output_labels = random_label_map(shape, args.seed)
        output_shape = (48,) * 3 if args.quick else (96,) * 3
        reason = "--random-labels" if args.random_labels else "no SynthSeg data found"
        print(
            f"Label map: {reason}, using a random "
            f"{'x'.join(map(str, shape))} label map from RandomLabelMap"
        )

    # Spacings and deformations are in voxels: scale SynthSeg's 1 mm values
    # to the 4 mm voxels of the quick, downsampled map.
    voxel_mm = 4.0 if args.quick and data_dir is not None else 1.0
    synthseg = LabelsToImage.synthseg(
        labels,
        classes=classes,
        output_labels=output_labels,
        output_shape=output_shape,
        seed=args.seed,
        max_spacing=8.0 / voxel_mm,
        deformation_std=4.0 / voxel_mm,
    )
    synthmorph = LabelsToImage.synthmorph(
        labels, output_shape=output_shape, seed=args.seed + 1000
    )
    seg_images, seg_masks, seg_times = synthesize(synthseg, label_map, args.samples)
    morph_images, morph_masks, morph_times = synthesize(
        synthmorph, label_map, args.samples
    )

    # Rows: SynthSeg images, their targets, SynthMorph images, their labels.
    figure = plot_montage(
        seg_images + morph_images,
        seg_masks + morph_masks,
        view="coronal",
        columns=args.samples,
        titles=[f"SynthSeg {i + 1}" for i in range(args.samples)]
        + [f"SynthMorph {i + 1}" for i in range(args.samples)],
        legend=data_dir is not None,
    )
    save_figure(figure, args.out)
    size = "x".join(map(str, output_shape))
    for name, times in (("SynthSeg", seg_times), ("SynthMorph", morph_times)):
        print(
            f"{name}: {args.samples} samples {size}, first {times[0]:.2f} s, "
            f"then {np.median(times[1:] or times):.2f} s per sample (median)"
        )
    print(f"Wrote montage to {os.path.abspath(args.out)}")


if __name__ == "__main__":
    main()
