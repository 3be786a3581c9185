"""train_segmentation: label maps in, a Segmenter out; checkpoints and resuming."""

import os
import subprocess
import sys

import keras
import nibabel
import numpy as np
import pytest

from synthlayers.inference import segment
from synthlayers.models import load_segmenter
from synthlayers.models import read_metadata
from synthlayers.workflows import TrainingBudget
from synthlayers.workflows import train_segmentation
from synthlayers.workflows.segmentation import TRAINING_STATE_ENTRY

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED_DATA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data"))
LABELS = [0, 2, 17, 41, 53]

# A tiny network and crop: each training step takes well under a second.
TINY = dict(levels=2, features=2, output_shape=(16, 16), min_foreground=0.0, verbose=0)


def brain_like_map(shape=(20, 18, 16), shift=0):
    """Left (x < half) and right halves of white matter, a hippocampus each."""
    label_map = np.zeros(shape, "int32")
    half = shape[0] // 2
    label_map[2 : half - 1, 2:-2, 2:-2] = 2
    label_map[half + 1 : -2, 2:-2, 2:-2] = 41
    label_map[4 : half - 3, 6 + shift : 10 + shift, 6:10] = 17
    label_map[half + 3 : -4, 6 + shift : 10 + shift, 6:10] = 53
    return label_map


def maps(count=2):
    return [brain_like_map(shift=i) for i in range(count)]


def test_prepare_only_from_arrays():
    # minutes=0: the data, the model and the segmenter, no training step.
    segmenter = train_segmentation(maps(), minutes=0, **TINY)
    assert segmenter.output_labels == LABELS
    assert segmenter.ndim == 2 and segmenter.slice_axes == [1]
    assert segmenter.voxel_size == 1.0 and segmenter.divisor == 2
    assert segmenter.flip_pairs == [[1, 3], [2, 4]]  # 2<->41, 17<->53
    assert segmenter.smoothing_sigma == 0.5 and segmenter.keep_largest_component
    provenance = segmenter.provenance
    assert provenance["steps"] == 0 and provenance["losses"] == []
    assert provenance["label_maps"] == "2 label maps (arrays)"
    assert provenance["training"]["contrast"] == "any"
    assert provenance["training"]["max_spacing"] == 8.0  # SynthSeg's range
    assert provenance["training"]["output_shape"] == [16, 16]
    assert isinstance(provenance["generator_config"], dict)
    assert segmenter.network.output_shape[-1] == 5


def test_targets_from_output_labels():
    # A list keeps those values and sends the others to background (0).
    segmenter = train_segmentation(maps(), output_labels=[2, 41], minutes=0, **TINY)
    assert segmenter.output_labels == [0, 2, 41]
    # A dict merges: both hippocampi become white matter of their side.
    merge = {0: 0, 2: 2, 41: 41, 17: 2, 53: 41}
    segmenter = train_segmentation(maps(), output_labels=merge, minutes=0, **TINY)
    assert segmenter.output_labels == [0, 2, 41]
    assert segmenter.flip_pairs == [[1, 2]]


def test_views_voxel_size_and_files(tmp_path):
    # Files carry their voxel size (2 mm here): resampled to the 1 mm run.
    for i, label_map in enumerate(maps()):
        affine = np.diag([2.0, 2.0, 2.0, 1.0])
        nibabel.save(
            nibabel.Nifti1Image(label_map.astype("int16"), affine),
            tmp_path / f"seg_{i}.nii.gz",
        )
    (tmp_path / "notes.txt").write_text("not a label map")
    segmenter = train_segmentation(
        str(tmp_path), views=("coronal", "axial"), minutes=0, **TINY
    )
    assert segmenter.slice_axes == [1, 2]
    assert segmenter.provenance["label_maps"] == "2 label maps from files"
    assert segmenter.output_labels == LABELS


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(views=("oblique",)), "`views`"),
        (dict(views=(1, 1)), "`views`"),
        (dict(ndim=4), "ndim"),
        (dict(contrast="t2"), "contrast"),
        (dict(contrast="t1", generation_labels=LABELS), "contrast='any'"),
        (dict(steps=0), "steps"),
        (dict(voxel_size=-1), "voxel_size"),
        (dict(checkpoint="run.h5"), "`checkpoint` to be a `.keras` path"),
        (dict(generation_labels=[0, 2, 41]), "missing from `generation_labels`"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_segmentation(maps(), **{**TINY, "minutes": 0, **kwargs})


def test_invalid_label_maps(tmp_path):
    with pytest.raises(ValueError, match=r"`label_maps\[0\]` to be a 3D integer"):
        train_segmentation([np.zeros((8, 8, 8))], minutes=0, **TINY)
    with pytest.raises(ValueError, match="`label_maps` to be None"):
        train_segmentation(42, minutes=0, **TINY)
    with pytest.raises(ValueError, match="directory `label_maps`"):
        train_segmentation(str(tmp_path), minutes=0, **TINY)
    with pytest.raises(FileNotFoundError, match="absent.nii.gz"):
        train_segmentation([str(tmp_path / "absent.nii.gz")], minutes=0, **TINY)


def test_training_budget_learning_rate():
    budget = TrainingBudget(seconds=None, steps=10, start_steps=4, initial_rate=1.0)
    assert budget.spent() == 0.4 and not budget.done()
    budget.steps = 10
    assert budget.done()
    with pytest.raises(ValueError, match="budget"):
        TrainingBudget()


@pytest.mark.slow  # XLA-free but compiled training steps: ~30 s on 2 busy cores
def test_train_a_few_steps_then_segment():
    segmenter = train_segmentation(maps(), steps=2, steps_per_epoch=1, **TINY)
    assert segmenter.provenance["steps"] == 2
    losses = segmenter.provenance["losses"]
    assert len(losses) == 2 and all(np.isfinite(losses))
    labels = segment(segmenter, brain_like_map().astype("float32"))
    assert labels.shape == (20, 18, 16)
    assert set(np.unique(labels)) <= set(LABELS)


def _weights(network):
    return [np.asarray(w) for w in network.get_weights()]


class _StopAfterFirstEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


@pytest.mark.slow  # three short training runs
def test_checkpoint_and_resume_continue_the_same_run(tmp_path):
    settings = dict(steps=4, steps_per_epoch=2, **TINY)
    whole = train_segmentation(maps(), **settings)
    checkpoint = tmp_path / "checkpoint.keras"
    # Interrupted after the first epoch (2 of 4 steps); the final checkpoint
    # holds the state at that point.
    first = train_segmentation(
        maps(),
        checkpoint=checkpoint,
        callbacks=[_StopAfterFirstEpoch()],
        **settings,
    )
    assert first.provenance["steps"] == 2
    metadata = read_metadata(checkpoint, kind="segmentation")
    state = metadata["provenance"]["training_state"]
    assert state["steps"] == 2 and state["epoch"] == 1 and len(state["losses"]) == 1
    assert os.listdir(tmp_path) == ["checkpoint.keras"]  # atomic: nothing else
    # The checkpoint is a usable segmenter too.
    assert load_segmenter(checkpoint).output_labels == LABELS
    resumed = train_segmentation(maps(), resume=checkpoint, **settings)
    assert resumed.provenance["steps"] == 4
    assert len(resumed.provenance["losses"]) == 2
    np.testing.assert_allclose(
        resumed.provenance["losses"], whole.provenance["losses"], rtol=1e-4
    )
    for a, b in zip(_weights(resumed.network), _weights(whole.network)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


@pytest.mark.slow
def test_checkpoints_every_steps_and_resume_errors(tmp_path):
    checkpoint = tmp_path / "run.keras"
    segmenter = train_segmentation(
        maps(),
        steps=2,
        steps_per_epoch=1,
        checkpoint=checkpoint,
        checkpoint_steps=1,
        checkpoint_minutes=None,
        **TINY,
    )
    from synthlayers.models.model_file import read_model_file_entry

    assert read_model_file_entry(checkpoint, TRAINING_STATE_ENTRY) is not None
    plain = segmenter.save(tmp_path / "plain.keras")
    with pytest.raises(ValueError, match="without training state"):
        train_segmentation(maps(), resume=plain, steps=3, **TINY)
    with pytest.raises(ValueError, match="this run's settings"):
        train_segmentation(
            maps(), output_labels=[2, 41], resume=checkpoint, steps=3, **TINY
        )
    # A finished budget resumes to no further step.
    done = train_segmentation(maps(), resume=checkpoint, steps=2, **TINY)
    assert done.provenance["steps"] == 2


FRESH_PROCESS = """
import sys
import numpy as np
from synthlayers.inference import segment
np.save(sys.argv[3], segment(sys.argv[1], np.load(sys.argv[2])))
"""


@pytest.mark.slow  # training, then a fresh Python process
def test_trained_model_file_in_a_fresh_process(tmp_path):
    segmenter = train_segmentation(maps(), steps=2, steps_per_epoch=1, **TINY)
    path = segmenter.save(tmp_path / "model.keras")
    image = brain_like_map(shape=(22, 20, 18)).astype("float32") * 3 + 5
    expected = segment(segmenter, image)
    np.save(tmp_path / "image.npy", image)
    result = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, path, str(tmp_path / "image.npy")]
        + [str(tmp_path / "labels.npy")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), expected)


@pytest.mark.slow
def test_synthseg_maps_by_default():
    if not os.path.isdir(os.path.join(SHARED_DATA, "synthseg_label_maps")):
        pytest.skip(f"SynthSeg data not found in {SHARED_DATA}")
    segmenter = train_segmentation(
        data_dir=SHARED_DATA,
        max_label_maps=2,
        voxel_size=2.0,
        minutes=0,
        levels=3,
        features=4,
        verbose=0,
    )
    # SynthSeg's 32 targets (v1 segmentation labels with background).
    assert len(segmenter.output_labels) == 32
    assert segmenter.output_labels[:3] == [0, 2, 3]
    assert segmenter.provenance["training"]["contrast"] == "t1"
    assert segmenter.provenance["training"]["max_spacing"] == 2.0
    assert "SynthSeg label maps from" in segmenter.provenance["label_maps"]
    assert segmenter.label_names[1] == "Left-Cerebral-White-Matter"
    assert segmenter.provenance["training"]["output_shape"] == [96, 96]
