"""voxelmorph's test scan: a real T1-weighted MRI and its segmentation."""

import os

import numpy as np

from synthlayers.data.registry import VXM_TEST_SCAN_FILE
from synthlayers.data.registry import fetch_data
from synthlayers.io import vxm_test_scan_to_ras


def load_vxm_test_scan(data_dir=None, cache_dir=None, canonical=True, **kwargs):
    """voxelmorph's test scan: a real T1-weighted MRI and its segmentation.

    A skull-stripped scan, intensities in [0, 1], with its FreeSurfer
    segmentation (label values such as 2/41 cerebral white matter, 24 CSF,
    77 white-matter hypointensities, 251-255 corpus callosum). The file
    stores no header: its arrays (160, 192, 224) look like a crop of
    FreeSurfer's conformed space (1 mm voxels, LIA orientation: axes run to
    the left, inferior and anterior), as the positions of left and right,
    cerebellum, brainstem and caudate labels show.
    With `canonical=True` both arrays are reoriented to RAS+ like
    `load_label_map` (axes transposed and flipped, no interpolation), giving
    shape (160, 224, 192).

    Args:
        data_dir: a local data directory, as in `fetch_data`. Defaults to
            `None`.
        cache_dir: the download cache, as in `fetch_data`. Defaults to
            `None`.
        canonical: reorient to RAS+. Defaults to `True`.
        **kwargs: further arguments of `fetch_data` (`base_urls`, `timeout`,
            `verbose`, `retries`).

    Returns:
        `(image, segmentation)`: a float32 and an int32 array of equal shape.

    Raises:
        FileNotFoundError, DownloadError: as `fetch_data`.
    """
    directory = fetch_data(
        [VXM_TEST_SCAN_FILE], data_dir=data_dir, cache_dir=cache_dir, **kwargs
    )
    with np.load(os.path.join(directory, VXM_TEST_SCAN_FILE)) as scan:
        image = scan["vol"].astype("float32")
        segmentation = np.rint(scan["seg"]).astype("int32")
    if canonical:
        image, segmentation = (
            np.ascontiguousarray(vxm_test_scan_to_ras(a)) for a in (image, segmentation)
        )
    return image, segmentation
