"""synthlayers: label maps to endless, randomly varied training images, in the graph.

Keras 3 layers for synthesis-driven training (SynthSeg, SynthMorph) that run
under TensorFlow, JAX and PyTorch.
"""

from synthlayers import layers
from synthlayers import losses
from synthlayers import models
from synthlayers import ops
from synthlayers.version import __version__
