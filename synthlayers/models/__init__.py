"""Models: U-Net builders, end-to-end segmentation, always-drawing synthesis, export."""

from synthlayers.models.export import export_network
from synthlayers.models.segmentation import SegmentationModel
from synthlayers.models.synthesis import SynthesisModel
from synthlayers.models.unet import SpatialShapeCheck
from synthlayers.models.unet import unet
