"""How much SynthSeg's clip to [0, 300] keeps of the contrast after min-max.

SynthSeg's mixture (uniform means U(0, 250), stds U(0, 30), its generation
classes) and a bias field of std 0.7 on the middle coronal slice of the first
SynthSeg label map, 64 draws: how many images exceed 300, and the median
95th percentile of the images after min-max normalisation with and without
the clip (a few bright voxels compress the rest of an unclipped image).

    python benchmarks/clip_effect.py   # needs $SYNTHLAYERS_DATA_DIR or a download
"""

import keras
import numpy as np

from synthlayers import datasets
from synthlayers.layers import NormalizeIntensity
from synthlayers.layers import RandomBiasField
from synthlayers.layers import RandomGaussianMixture


def main(count=64):
    data_dir = datasets.fetch_data()  # $SYNTHLAYERS_DATA_DIR, or the download
    path = datasets.synthseg_label_map_paths(data_dir)[0]
    labels, classes = datasets.synthseg_generation_labels(data_dir)
    label_map, _ = datasets.load_label_map(path)
    middle = label_map.shape[1] // 2
    batch = np.repeat(label_map[None, :, middle, :, None], count, 0)
    mixture = RandomGaussianMixture(labels, classes=classes, seed=0)
    images = RandomBiasField(std=0.7, grid_shape=0.025, seed=1)(
        mixture(batch)["images"]
    )
    maxima = keras.ops.convert_to_numpy(images).reshape(count, -1).max(1)
    print(f"images with a voxel above 300: {int((maxima > 300).sum())} of {count}")
    for clip in (None, (0, 300)):
        normalized = keras.ops.convert_to_numpy(NormalizeIntensity(clip=clip)(images))
        p95 = np.percentile(normalized.reshape(count, -1), 95, axis=1)
        print(f"clip={clip}: median 95th percentile after min-max {np.median(p95):.3f}")


if __name__ == "__main__":
    main()
