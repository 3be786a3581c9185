"""Segment real scans with a trained network, and export the network.

Inference runs outside the model graph, on NumPy arrays, one concern per
module:

- `preprocess`: the scan to RAS+ (`synthlayers.io`), intensities rescaled
  between two percentiles (`normalize_intensities`), the network grid at
  the training voxel size (`synthlayers.resampling`);
- `predict`: `predict_probabilities`, padding to a multiple of `divisor`,
  3D networks on the whole volume or 2D networks slice by slice, left/right
  flip test-time augmentation with channel pairs
  (`left_right_channel_pairs`);
- `postprocess`: SynthSeg's clean-up, `smooth_probabilities` and
  `keep_largest_components`;
- `segment`: the whole pipeline, labels back on the input's grid and voxel
  order, optionally written as NIfTI; with a `Segmenter` (or the path of
  its model file) every setting comes from the model.

`export_network`, `Segmenter` and `load_segmenter` live in
`synthlayers.models` and are re-exported here.
"""

from synthlayers.inference.affine import moments_affine
from synthlayers.inference.affine import mutual_information_affine
from synthlayers.inference.postprocess import keep_largest_components
from synthlayers.inference.postprocess import smooth_probabilities
from synthlayers.inference.predict import left_right_channel_pairs
from synthlayers.inference.predict import predict_probabilities
from synthlayers.inference.preprocess import _Grid  # noqa: F401  (tests)
from synthlayers.inference.preprocess import normalize_intensities
from synthlayers.inference.register import RegistrationResult
from synthlayers.inference.register import invert_displacement
from synthlayers.inference.register import register
from synthlayers.inference.segment import segment
from synthlayers.models.export import export_network
from synthlayers.models.segmenter import Segmenter
from synthlayers.models.segmenter import load_segmenter
from synthlayers.validation import INTERPOLATIONS
