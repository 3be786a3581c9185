"""Tests for synthlayers.workflows.registration and data.registration_cases."""

import math
import os

import numpy as np
import pytest

from synthlayers.data import registration_cases as cases_module
from synthlayers.data.registration_cases import RegistrationCase
from synthlayers.inference.register import register
from synthlayers.workflows import registration as workflow


def blocks(shape, offset=0):
    labels = np.zeros(shape, "int32")
    labels[4 + offset : 14 + offset, 5:15] = 2
    labels[8 + offset : 12 + offset, 8:12] = 4
    labels[16:20, 6 + offset : 18 + offset] = 41
    return labels


def test_paired_slice_feed_draws_two_maps_at_one_level():
    maps = [np.full((6, 5, 10), k + 1, "int32") for k in range(3)]
    for m in maps:
        m[..., :2] = 0  # levels 0 and 1 have no foreground
    feed = workflow.PairedSliceFeed(maps, batch_size=4, steps_per_epoch=3, jitter=0)
    ((moving, fixed),) = feed[0]
    assert moving.shape == fixed.shape == (4, 6, 5, 1)
    assert moving.dtype == np.int32
    assert np.all(moving[:, 0, 0, 0] != fixed[:, 0, 0, 0])  # two different maps
    assert np.all(moving > 0) and np.all(fixed > 0)  # foreground levels only
    again = workflow.PairedSliceFeed(maps, batch_size=4, steps_per_epoch=3, jitter=0)
    np.testing.assert_array_equal(again[0][0][0], moving)
    assert len(feed) == 3
    volumes = workflow.PairedSliceFeed(maps, batch_size=2, ndim=3)
    assert volumes[0][0][0].shape == (2, 6, 5, 10, 1)
    with pytest.raises(ValueError, match="label_maps"):
        workflow.PairedSliceFeed(maps[:1])


@pytest.mark.slow
def test_train_save_load_and_register(tmp_path):
    model = workflow.train_registration(
        shapes=True, ndim=2, steps=2, input_shape=(32, 32), features=4,
        steps_per_epoch=1,
    )  # fmt: skip
    assert model.metadata["kind"] == "registration"
    assert model.metadata["provenance"]["steps"] == 2
    assert model.metadata["input_shape"] == [32, 32]
    assert math.isfinite(model.metadata["provenance"]["final_loss"])
    path = model.save(tmp_path / "model.keras")
    loaded = workflow.load_registration_model(path)
    assert loaded.metadata["preset"] == "shapes"
    fixed = blocks((24, 21)).astype("float32")
    moving = blocks((24, 21), offset=1).astype("float32")
    from_file = register(path, moving, fixed, affine_method="none")
    in_memory = register(model, moving, fixed, affine_method="none")
    np.testing.assert_allclose(
        from_file.displacement, in_memory.displacement, atol=1e-5
    )
    assert from_file.displacement.shape == (24, 21, 2)
    with pytest.raises(ValueError, match="label_maps"):
        workflow.train_registration(shapes=False)
    with pytest.raises(ValueError, match="steps"):
        workflow.train_registration(steps=0)


@pytest.mark.slow  # trains (the example's smoke test trains it too)
def test_brains_with_a_segmenter_train_save_and_register(tmp_path):
    maps = [np.repeat(blocks((32, 32), k)[..., None], 3, axis=-1) for k in range(3)]
    model = workflow.train_registration(
        maps, shapes=False, steps=2, features=4, segmenter_features=2,
        steps_per_epoch=1,
    )  # fmt: skip
    assert model.metadata["segmenter_features"] == 2
    assert model.metadata["provenance"]["segmentation_weight"] == 1.0
    # Background and the loss labels present in the maps (2, 4, 41).
    assert model.network.output["moving_probabilities"].shape[-1] == 4
    path = model.save(tmp_path / "model.keras")
    fixed = blocks((24, 21)).astype("float32")
    moving = blocks((24, 21), offset=1).astype("float32")
    from_file = register(path, moving, fixed, affine_method="none")
    in_memory = register(model, moving, fixed, affine_method="none")
    assert from_file.displacement.shape == (24, 21, 2)
    np.testing.assert_allclose(
        from_file.displacement, in_memory.displacement, atol=1e-5
    )
    with pytest.raises(ValueError, match="segmenter_features"):
        workflow.train_registration(segmenter_features=8)


def test_evaluate_cases_records_and_summary():
    fixed_labels = blocks((24, 22))
    moving_labels = blocks((24, 22), offset=2)
    case = RegistrationCase(
        name="blocks", kind="synthetic_same_contrast",
        moving=moving_labels.astype("float32"), fixed=fixed_labels.astype("float32"),
        moving_labels=moving_labels, fixed_labels=fixed_labels,
    )  # fmt: skip
    out = workflow.evaluate_cases(
        None, [case, case], methods=("none", "affine"), affine_method="moments",
        labels=[2, 4, 41],
    )  # fmt: skip
    record = out["cases"][0]["methods"]
    # No registration: the plain Dice of the two maps.
    a, b = moving_labels == 2, fixed_labels == 2
    assert record["none"]["dice"]["2"] == pytest.approx(
        2 * np.sum(a & b) / (a.sum() + b.sum())
    )
    assert record["none"]["folding_percent"] == 0.0
    summary = out["summary"]
    assert list(summary) == ["none", "affine"]
    assert summary["affine"]["all"]["num_cases"] == 2
    assert summary["none"]["all"]["mean_dice"] == pytest.approx(
        record["none"]["mean_dice"]
    )
    text = workflow.format_summary(summary)
    assert "synthetic_same_contrast" in text and "affine" in text


@pytest.mark.slow
@pytest.mark.skipif(
    not cases_module.data_available(os.environ.get("SYNTHLAYERS_DATA_DIR")),
    reason="needs the vxm test scan and SynthSeg's label maps",
)
def test_registration_cases_are_deterministic_with_exact_fixed_labels():
    kinds = ("scan_to_synthetic", "synthetic_same_contrast")
    first = cases_module.registration_cases(ndim=2, subjects=(17, 18), kinds=kinds)
    second = cases_module.registration_cases(ndim=2, subjects=(17, 18), kinds=kinds)
    assert [c.name for c in first] == [
        "scan_to_synthetic/17", "scan_to_synthetic/18",
        "synthetic_same_contrast/17-18", "synthetic_same_contrast/18-17",
    ]  # fmt: skip
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.fixed, b.fixed)
        assert a.fixed.shape == a.fixed_labels.shape
        assert a.moving.shape == a.moving_labels.shape
    maps = cases_module.prepare_brain_maps([17])
    index = cases_module.slice_index(maps[0])
    np.testing.assert_array_equal(first[0].fixed_labels, maps[0][:, :, index])
    assert set(np.unique(first[0].fixed_labels)) <= {
        0,
        *cases_module.brain_label_map(maps[0]).ravel().tolist(),
    }
    # Different contrasts for different subjects; the scan is the same image.
    assert not np.allclose(first[0].fixed, first[1].fixed)
    np.testing.assert_array_equal(first[0].moving, first[1].moving)


@pytest.mark.slow
@pytest.mark.skipif(
    not cases_module.data_available(os.environ.get("SYNTHLAYERS_DATA_DIR")),
    reason="needs SynthSeg's label maps",
)
def test_prepared_brain_maps_put_one_anatomical_level_at_one_index():
    # Centred on their bounding boxes, SynthSeg's maps 1-4 put the thalami
    # at axial indices 117, 115, 82 and 84: slices at one index were up to
    # 44 mm apart and 2D training pairs could not be registered.
    maps = cases_module.prepare_brain_maps([1, 2, 3, 4])
    for label_map in maps:
        assert label_map.shape == cases_module.BRAIN_SHAPE
        for axis, size in enumerate(label_map.shape):
            offset = cases_module.BRAIN_CENTRE_OFFSET[axis]
            index = cases_module.slice_index(label_map, axis)
            assert abs(index - (size // 2 - offset)) <= 1
        # The cerebrum and the cerebellum stay whole (only the brainstem's
        # lower end may be cut).
        index = np.nonzero(np.isin(label_map, [3, 42, 8, 47]))
        assert all(
            i.min() > 0 and i.max() < n - 1 for i, n in zip(index, label_map.shape)
        )
