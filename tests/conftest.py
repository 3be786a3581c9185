"""Shared pytest configuration."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The real data of our development machines and CI lie in `../shared/data`
# next to the checkout; the package never looks there itself. Point
# $SYNTHLAYERS_DATA_DIR at it (unless already set) for every test file.
_SHARED_DATA = os.path.normpath(
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
)
if os.path.isdir(_SHARED_DATA) and not os.environ.get("SYNTHLAYERS_DATA_DIR"):
    os.environ["SYNTHLAYERS_DATA_DIR"] = _SHARED_DATA

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed, for reference inputs."""
    return np.random.default_rng(0)
