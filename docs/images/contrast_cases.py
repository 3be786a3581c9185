"""Make docs/images/contrast_cases.png: `python docs/images/contrast_cases.py [T1 ANY]`.

The contrast cases of the real test scan (`synthlayers.contrast_cases`:
the T1 as it is, inverted, remapped, 3 mm, 5 mm axial slices; a coronal
slice) with the segmentations of two model files over them: top, a network
trained with SynthSeg's T1 priors (`--contrast t1`); bottom, one trained
with random contrasts (`--contrast any`). Each case is segmented by
`synthlayers.inference.segment` with the model file's own settings, as
`synthlayers.workflows.evaluate_contrast_cases` does. Without model files,
the cases alone. The scan comes from
`$SYNTHLAYERS_DATA_DIR` or is downloaded (`synthlayers.datasets`).
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from synthlayers import datasets  # noqa: E402
from synthlayers.contrast_cases import CONTRAST_CASES  # noqa: E402
from synthlayers.contrast_cases import make_contrast_cases  # noqa: E402
from synthlayers.inference import segment  # noqa: E402
from synthlayers.models.segmenter import load_segmenter  # noqa: E402
from synthlayers.plot import plot_montage  # noqa: E402
from synthlayers.plot import save_figure  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIGURE = os.path.join(HERE, "contrast_cases.png")


def main(models, names, path=FIGURE):
    image, segmentation = datasets.load_vxm_test_scan()
    cases = make_contrast_cases(image, segmentation)
    if not models:  # the cases alone
        images = [cases[case] for case in CONTRAST_CASES]
        figure = plot_montage(images, view="coronal", titles=list(CONTRAST_CASES))
        save_figure(figure, path)
        return path
    images, label_maps, titles = [], [], []
    for model, name in zip(models, names):
        segmenter = load_segmenter(model)
        for case in CONTRAST_CASES:
            images.append(cases[case])
            label_maps.append(segment(segmenter, cases[case], voxel_size=1.0))
            titles.append(f"{case} ({name})")
    figure = plot_montage(
        images,
        label_maps,
        view="coronal",
        overlay=True,
        titles=titles,
        columns=len(CONTRAST_CASES),
        legend=False,
        panel_size=2.2,
    )
    save_figure(figure, path)
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "models", nargs="*", help="model files (.keras); none: the cases alone"
    )
    parser.add_argument("--names", nargs="+", default=["T1 priors", "any contrast"])
    parser.add_argument("--out", default=FIGURE)
    args = parser.parse_args()
    print(main(args.models, args.names[: len(args.models)], args.out))
