"""Make docs/images/gallery.png, the README's figure: `python docs/images/gallery.py`.

Images (top) and label maps (bottom) that `LabelsToImage.synthseg` (four)
and `LabelsToImage.synthmorph` (two) synthesise from one real label map
(SynthSeg's first training map, a 1 mm coronal slice), drawn by
`synthlayers.plot`. The data come from
`$SYNTHLAYERS_DATA_DIR` or are downloaded (`synthlayers.datasets`).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from synthlayers import datasets  # noqa: E402
from synthlayers.layers import LabelsToImage  # noqa: E402
from synthlayers.plot import plot_montage  # noqa: E402
from synthlayers.plot import save_figure  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
GALLERY = os.path.join(HERE, "gallery.png")


def main(path=GALLERY, samples=4):
    label_map, _ = datasets.load_label_map(datasets.fetch_synthseg_label_maps([1])[0])
    data_dir = datasets.fetch_data(datasets.SYNTHSEG_LABEL_FILES)
    labels, classes = datasets.synthseg_generation_labels(data_dir)
    coronal = label_map[40:216, 120, 48:224]  # RAS: left-right across, up
    batch = np.repeat(coronal[None, ..., None], samples, axis=0)
    shape = (160, 160)
    synthseg = LabelsToImage.synthseg(labels, classes, output_shape=shape, seed=1)
    synthmorph = LabelsToImage.synthmorph(labels, output_shape=shape, seed=1)
    seg = synthseg(batch)
    morph = synthmorph(batch)
    images = list(np.asarray(seg["images"])[..., 0])[:4]
    images += list(np.asarray(morph["images"])[..., 0])[:2]
    maps = list(np.asarray(seg["segmentation_masks"])[..., 0])[:4]
    maps += list(np.asarray(morph["segmentation_masks"])[..., 0])[:2]
    figure = plot_montage(
        images=images,
        label_maps=maps,
        legend=False,
        titles=["LabelsToImage.synthseg"] + [""] * 3 + ["synthmorph", ""],
        panel_size=1.6,
    )
    return save_figure(figure, path)


if __name__ == "__main__":
    print(main())
