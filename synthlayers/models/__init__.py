"""Models: U-Net builders, end-to-end segmentation, synthesis, model files, export."""

from synthlayers.models.export import export_network
from synthlayers.models.model_file import load_model_file
from synthlayers.models.model_file import read_metadata
from synthlayers.models.model_file import save_model_file
from synthlayers.models.registration import RegistrationModel
from synthlayers.models.registration import ResizeDisplacement
from synthlayers.models.registration import registration_network
from synthlayers.models.segmentation import SegmentationModel
from synthlayers.models.segmenter import Segmenter
from synthlayers.models.segmenter import load_segmenter
from synthlayers.models.synthesis import SynthesisModel
from synthlayers.models.unet import SpatialShapeCheck
from synthlayers.models.unet import unet
