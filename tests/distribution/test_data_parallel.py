"""Data-parallel training on two virtual CPU devices, per engine.

`keras.distribution.DataParallel` under JAX and `tf.distribute.
MirroredStrategy` under TensorFlow. Each engine's device count must be set
before it starts, so `tests/distribution/worker.py` runs in a fresh process
(once per engine and model) and reports numbers; the tests check them:

- within a step the replicas' halves of a global batch differ (identical
  label maps in both halves: images, deformed label maps, contrasts);
- a new model with the same seeds draws the same samples;
- one `fit` step on a `LabelMapFeed` batch gives the loss and gradients of
  one device on the same global batch where the draws are the same (JAX:
  always, the draws are the global batch's; TensorFlow: without
  randomness). This also shows the engines split each global batch across
  the replicas, every sample once.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ENGINES = ["jax", "tensorflow"]
# Float32 sums over replicas vs over one batch: relative to the gradient's
# largest entry (measured: ~5e-6 TensorFlow, ~1e-6 JAX).
GRADIENT_TOLERANCE = 1e-4

pytestmark = pytest.mark.slow  # a fresh TensorFlow/JAX, XLA compiles: minutes


def run_worker(engine, model, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"{engine}_{model}") / "results.json"
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS",)}
    env["KERAS_BACKEND"] = engine
    completed = subprocess.run(
        [sys.executable, "-m", "tests.distribution.worker", engine, model, str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    if completed.returncode:
        pytest.fail(f"worker failed:\n{completed.stderr[-4000:]}")
    return json.loads(out.read_text())


@pytest.fixture(scope="module", params=ENGINES)
def segmentation(request, tmp_path_factory):
    return request.param, run_worker(request.param, "segmentation", tmp_path_factory)


def test_two_replicas(segmentation):
    _, results = segmentation
    assert results["replicas"] == 2


def test_replica_halves_differ(segmentation):
    _, results = segmentation
    # Same label maps in both halves: different images and deformations...
    assert results["halves"]["images"] > 0.1
    assert results["halves"]["segmentation_masks"] > 0
    # ...and contrasts (no spatial augmentation: same label maps out).
    assert results["contrast_halves"]["images"] > 0.05
    assert results["contrast_halves"]["segmentation_masks"] == 0
    # Within a half the samples differ as on one device, and steps differ.
    assert results["within_half"] > 0.1
    assert results["next_step"] > 0.1


def test_engine_seed_behaviour(segmentation):
    """What the engines do with one SeedGenerator state across replicas."""
    engine, results = segmentation
    if engine == "tensorflow":
        # Each replica holds a copy of the state, all equal: the generator
        # alone draws the same numbers on both (SegmentationModel offsets
        # them). If this fails, Keras or TensorFlow changed: revisit
        # `replica_seeds` and docs/data_parallel.md.
        assert results["generator_alone_halves"]["images"] == 0
    else:
        # One program on the global batch: the sharding splits the draws.
        assert results["generator_alone_halves"]["images"] > 0.1
    # The replicas' state copies stay equal after the offsets come off.
    assert results["state_copies_agree"]


def test_repeatable_with_a_seed(segmentation):
    _, results = segmentation
    assert results["repeat"] == 0


def test_fit_step_matches_one_device(segmentation):
    engine, results = segmentation
    # Where the draws are the same: JAX always, TensorFlow without randomness.
    step = results["fit_fixed" if engine == "tensorflow" else "fit_random"]
    assert step["initial_weights"] == 0
    assert step["gradient_scale"] > 1e-3  # a real gradient
    assert step["gradient"] <= GRADIENT_TOLERANCE * step["gradient_scale"]
    assert step["loss_distributed"] == pytest.approx(step["loss_single"], rel=1e-5)
    if engine == "tensorflow":
        # Random draws: each replica its own, so not one device's draws.
        random = results["fit_random"]
        assert random["gradient"] > 100 * GRADIENT_TOLERANCE * random["gradient_scale"]


# RegistrationModel ----------------------------------------------------------

# RegistrationModel does what SegmentationModel does under TensorFlow: its
# `call(training=True)` inside `replica_seeds(self)`, float label maps rounded
# (Keras builds the model on the replicas' batches averaged into floats), and
# the gradient penalty as a Keras loss (scaled per replica).


@pytest.fixture(scope="module", params=ENGINES)
def registration(request, tmp_path_factory):
    return request.param, run_worker(request.param, "registration", tmp_path_factory)


def test_registration_replica_halves_differ(registration):
    engine, results = registration
    assert results["replicas"] == 2
    for key in results["keys"]:  # moving and fixed images, moving label maps
        assert results["halves"][key] > 0, key


def test_registration_repeatable_with_a_seed(registration):
    _, results = registration
    assert results["repeat"] == 0


def test_registration_fit_step(registration):
    engine, results = registration
    assert "fit_error" not in results, results.get("fit_error")
    step = results["fit"]
    assert step["gradient_scale"] > 1e-3
    if engine == "jax":  # the same draws as one device
        assert step["gradient"] <= GRADIENT_TOLERANCE * step["gradient_scale"]
        assert step["loss_distributed"] == pytest.approx(step["loss_single"], rel=1e-5)
