"""Label maps for synthesis (kept for compatibility: the code is in `synthlayers.data`).

Every name this module had is re-exported from the modules of
`synthlayers.data` (phantom, registry, synthseg, voxelmorph, prepare, feed),
so `from synthlayers.datasets import X` keeps working.
"""

from synthlayers.data import BASE_URLS
from synthlayers.data import CACHE_DIR_ENV
from synthlayers.data import DATA_DIR_ENV
from synthlayers.data import DATA_FILES
from synthlayers.data import PHANTOM_LABELS
from synthlayers.data import SYNTHSEG_COMMIT
from synthlayers.data import SYNTHSEG_LABEL_FILES
from synthlayers.data import SYNTHSEG_LABEL_MAP_FILES
from synthlayers.data import VOXELMORPH_COMMIT
from synthlayers.data import VXM_TEST_SCAN_FILE
from synthlayers.data import DataFile
from synthlayers.data import DownloadError
from synthlayers.data import LabelMapFeed
from synthlayers.data import bounding_box
from synthlayers.data import compact_label_arguments
from synthlayers.data import compact_labels
from synthlayers.data import crop_to_bounding_box
from synthlayers.data import fetch_data
from synthlayers.data import fetch_synthseg_label_maps
from synthlayers.data import load_label_map
from synthlayers.data import load_vxm_test_scan
from synthlayers.data import local_cache_dir
from synthlayers.data import local_data_dir
from synthlayers.data import phantom_label_map
from synthlayers.data import resample_label_map
from synthlayers.data import synthseg_generation_labels
from synthlayers.data import synthseg_label_map_paths

__all__ = [
    "BASE_URLS",
    "CACHE_DIR_ENV",
    "DATA_DIR_ENV",
    "DATA_FILES",
    "PHANTOM_LABELS",
    "SYNTHSEG_COMMIT",
    "SYNTHSEG_LABEL_FILES",
    "SYNTHSEG_LABEL_MAP_FILES",
    "VOXELMORPH_COMMIT",
    "VXM_TEST_SCAN_FILE",
    "DataFile",
    "DownloadError",
    "LabelMapFeed",
    "bounding_box",
    "compact_label_arguments",
    "compact_labels",
    "crop_to_bounding_box",
    "fetch_data",
    "fetch_synthseg_label_maps",
    "load_label_map",
    "load_vxm_test_scan",
    "local_cache_dir",
    "local_data_dir",
    "phantom_label_map",
    "resample_label_map",
    "synthseg_generation_labels",
    "synthseg_label_map_paths",
]
