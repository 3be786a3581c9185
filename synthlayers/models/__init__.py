"""Models: U-Net builders and end-to-end segmentation training."""

from synthlayers.models.segmentation import SegmentationModel
from synthlayers.models.unet import SpatialShapeCheck
from synthlayers.models.unet import unet
