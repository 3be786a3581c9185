"""Packaging for synthlayers. The version lives in synthlayers/version.py."""

import pathlib
import re

from setuptools import find_packages
from setuptools import setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"', (HERE / "synthlayers" / "version.py").read_text()
).group(1)

setup(
    name="synthlayers",
    version=VERSION,
    description=(
        "Keras 3 layers that synthesise randomly varied training images from "
        "anatomical label maps inside the model graph (SynthSeg, SynthMorph)."
    ),
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(include=["synthlayers", "synthlayers.*"]),
    python_requires=">=3.10",
    install_requires=[
        "keras>=3.6",
        "matplotlib>=3.8",  # synthlayers.plot: figures, the CLI's montage
        "nibabel>=5",
        "numpy>=1.26",
        "pooch>=1.8",  # data downloads: hashes, mirrors, cache, retries
        "scipy>=1.11",  # resampling, smoothing, connected components in inference
        "tensorflow>=2.16",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "ruff>=0.6",
            "dipy>=1.9",  # the registration tests' affine pre-alignment
            "nbclient>=0.10",  # the notebooks run as tests
            "nbformat>=5.10",
            "ipykernel>=6.29",
        ],
        "jax": ["jax>=0.4.30"],
        "torch": ["torch>=2.2"],
        # Mutual-information affine pre-alignment for `register` (the moments
        # initialiser needs nothing).
        "registration": ["dipy>=1.9"],
        # What .ci/run adds to run the suite under JAX and PyTorch (CPU) and
        # the cross-checks against the anchors' PyTorch releases.
        "ci": [
            "jax>=0.4.30",
            "torch==2.13.0",
            "voxelmorph==0.3.4",
            "neurite==0.3.4",
            "pytest-xdist>=3.5",  # two test processes: compiles are single-threaded
        ],
    },
    entry_points={"console_scripts": ["synthlayers = synthlayers.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: Apache Software License",
        "Topic :: Scientific/Engineering :: Medical Science Apps.",
    ],
)
