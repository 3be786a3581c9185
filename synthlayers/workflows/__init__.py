"""Workflows: train a model from label maps in one call; the result is a model file.

- `segmentation`: `train_segmentation` (SynthSeg's training on the user's
  label maps or SynthSeg's, with a step or time budget, checkpoints and
  resuming) returns a `synthlayers.models.Segmenter`;
  `evaluate_on_test_scan` scores one on voxelmorph's real T1 scan.
"""

from synthlayers.workflows.segmentation import TrainingBudget
from synthlayers.workflows.segmentation import evaluate_on_test_scan
from synthlayers.workflows.segmentation import train_segmentation
