"""Tests for synthlayers.freesurfer: the tables and SynthSeg's left/right pairs."""

import os

import numpy as np
import pytest

from synthlayers import evaluation
from synthlayers import freesurfer
from tests.test_io import SHARED_DATA

# SynthSeg's generation labels (data/labels_classes_priors/
# generation_labels.npy at commit 66342c1f), with its tutorials'
# n_neutral_labels = 18: background and non-sided labels, then the left
# labels, then the right labels in the same order.
SYNTHSEG_GENERATION_LABELS = [
    0, 14, 15, 16, 24, 72, 85, 502, 506, 507, 508, 509, 511, 512, 514, 515, 516, 530,
    2, 3, 4, 5, 7, 8, 10, 11, 12, 13, 17, 18, 25, 26, 28, 30, 136, 137,
    41, 42, 43, 44, 46, 47, 49, 50, 51, 52, 53, 54, 57, 58, 60, 62, 163, 164,
]  # fmt: skip
SYNTHSEG_NEUTRAL_LABELS = 18


def synthseg_swap(label_list, n_neutral_labels):
    """`{label: swapped label}` as SynthSeg's `RandomFlip.build` computes it.

    lab2im splits the list into neutral, first-side and second-side labels
    and maps `label_list` onto `concatenate(neutral, second, first)`.
    """
    label_list = np.asarray(label_list)
    n_labels = len(label_list)
    half = n_neutral_labels + (n_labels - n_neutral_labels) // 2
    neutral, first, second = np.split(label_list, [n_neutral_labels, half])
    swapped = np.concatenate((neutral, second, first))
    return {int(a): int(b) for a, b in zip(label_list, swapped)}


def _generation_labels_file():
    for directory in (os.environ.get("SYNTHLAYERS_DATA_DIR"), SHARED_DATA):
        if directory:
            path = os.path.join(directory, "synthseg_labels", "generation_labels.npy")
            if os.path.isfile(path):
                return path
    return None


def _check_pairs_cover(swap):
    pairs = freesurfer.LEFT_RIGHT_PAIRS
    both_ways = {**pairs, **{right: left for left, right in pairs.items()}}
    for label, swapped in swap.items():
        if label == swapped:
            assert label not in both_ways, label  # neutral labels are not paired
        else:
            assert both_ways.get(label) == swapped, (label, swapped)


def test_every_synthseg_swap_is_a_pair():
    swap = synthseg_swap(SYNTHSEG_GENERATION_LABELS, SYNTHSEG_NEUTRAL_LABELS)
    assert sum(a != b for a, b in swap.items()) == 36  # 18 pairs, both ways
    _check_pairs_cover(swap)
    for left, right in [(25, 57), (136, 163), (137, 164)]:
        assert freesurfer.LEFT_RIGHT_PAIRS[left] == right
    # And for the 54 labels, left_right_swap finds exactly SynthSeg's pairs.
    lefts = SYNTHSEG_GENERATION_LABELS[SYNTHSEG_NEUTRAL_LABELS:36]
    found = freesurfer.left_right_swap(SYNTHSEG_GENERATION_LABELS)
    assert found == {left: swap[left] for left in lefts}


@pytest.mark.skipif(
    _generation_labels_file() is None, reason="generation_labels.npy not found"
)
def test_every_swap_of_the_shipped_generation_labels_is_a_pair():
    labels = np.load(_generation_labels_file())
    assert labels.tolist() == SYNTHSEG_GENERATION_LABELS
    _check_pairs_cover(synthseg_swap(labels, SYNTHSEG_NEUTRAL_LABELS))


def test_pairs_are_a_consistent_table():
    pairs = freesurfer.LEFT_RIGHT_PAIRS
    assert len(set(pairs.values())) == len(pairs)
    assert not set(pairs) & set(pairs.values())  # no label on both sides
    for left, right in pairs.items():
        for side, label in (("Left-", left), ("Right-", right)):
            name = freesurfer.FREESURFER_NAMES.get(label)
            assert name is None or name.startswith(side), (label, name)


def test_tables():
    assert len(freesurfer.SYNTHSEG_STRUCTURES) == 32
    assert 24 in freesurfer.SYNTHSEG_STRUCTURES
    assert freesurfer.SYNTHSEG_STRUCTURES_V1 == tuple(
        v for v in freesurfer.SYNTHSEG_STRUCTURES if v != 24
    )
    assert set(freesurfer.SYNTHSEG_STRUCTURES) <= set(freesurfer.FREESURFER_NAMES)
    # Merges keep the side: left labels go to left structures.
    for source, target in freesurfer.FREESURFER_MERGES.items():
        assert (
            freesurfer.FREESURFER_NAMES[source][:4]
            == (freesurfer.FREESURFER_NAMES[target][:4])
        )
    assert freesurfer.structure_name(17) == "Left-Hippocampus"
    assert freesurfer.structure_name(np.int64(999)) == "label 999"


def test_evaluation_re_exports_the_tables():
    for name in (
        "FREESURFER_NAMES",
        "SYNTHSEG_STRUCTURES",
        "SYNTHSEG_STRUCTURES_V1",
        "FREESURFER_MERGES",
        "MIDLINE_WHITE_MATTER",
        "structure_name",
    ):
        assert getattr(evaluation, name) is getattr(freesurfer, name)
