"""synthlayers: label maps to endless, randomly varied training images, in the graph.

Keras 3 layers for synthesis-driven training (SynthSeg, SynthMorph) that run
under TensorFlow, JAX and PyTorch.

Subpackages load on first use (`synthlayers.layers`, `synthlayers.models`,
...), so that `import synthlayers` and the `synthlayers` command start without
importing Keras and its backend until they are needed.
"""

import importlib

from synthlayers.version import __version__

SUBMODULES = (
    "cli",
    "data",
    "datasets",
    "evaluation",
    "freesurfer",
    "inference",
    "io",
    "layers",
    "losses",
    "models",
    "ops",
    "plot",
    "resampling",
    "workflows",
)

__all__ = ["__version__", *SUBMODULES]


def __getattr__(name):
    if name in SUBMODULES:
        module = importlib.import_module(f"synthlayers.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'synthlayers' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
