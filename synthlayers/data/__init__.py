"""Label maps for synthesis: made in code or SynthSeg's, fetched, prepared, fed.

- `phantom`: `phantom_label_map`, a brain-like label map made in code.
- `registry`: the pinned data files (`DATA_FILES`: full commit hashes,
  SHA-256), the data directory and cache, and `fetch_data`, which downloads
  them with `pooch` (atomic, retried, mirrors).
- `synthseg`: SynthSeg's training label maps and label tables.
- `voxelmorph`: voxelmorph's test scan, a real T1w MRI and its segmentation.
- `prepare`: NumPy preparation of label maps, run once before training
  (load in RAS+, resample, compact label values, crop to the foreground).
- `feed`: `LabelMapFeed`, random batches (or 2D slices) of label maps for
  `model.fit`, read by epochs or as one stream (`Feed.stream`, one data
  iterator for a whole run); the synthesis itself runs in the model graph.
"""

from synthlayers.data.feed import INTEGER_DTYPES
from synthlayers.data.feed import Feed
from synthlayers.data.feed import LabelMapFeed
from synthlayers.data.phantom import PHANTOM_LABELS
from synthlayers.data.phantom import phantom_label_map
from synthlayers.data.prepare import bounding_box
from synthlayers.data.prepare import compact_label_arguments
from synthlayers.data.prepare import compact_labels
from synthlayers.data.prepare import crop_to_bounding_box
from synthlayers.data.prepare import load_label_map
from synthlayers.data.prepare import resample_label_map
from synthlayers.data.registry import BASE_URLS
from synthlayers.data.registry import CACHE_DIR_ENV
from synthlayers.data.registry import DATA_DIR_ENV
from synthlayers.data.registry import DATA_FILES
from synthlayers.data.registry import SYNTHSEG_COMMIT
from synthlayers.data.registry import SYNTHSEG_LABEL_FILES
from synthlayers.data.registry import SYNTHSEG_LABEL_MAP_FILES
from synthlayers.data.registry import SYNTHSEG_LABEL_MAP_NUMBERS
from synthlayers.data.registry import VOXELMORPH_COMMIT
from synthlayers.data.registry import VXM_TEST_SCAN_FILE
from synthlayers.data.registry import DataFile
from synthlayers.data.registry import DownloadError
from synthlayers.data.registry import fetch_data
from synthlayers.data.registry import local_cache_dir
from synthlayers.data.registry import local_data_dir
from synthlayers.data.synthseg import fetch_synthseg_label_maps
from synthlayers.data.synthseg import synthseg_generation_labels
from synthlayers.data.synthseg import synthseg_label_map_paths
from synthlayers.data.voxelmorph import load_vxm_test_scan
