"""Workflows: train a model from label maps in one call; the result is a model file.

- `segmentation`: `train_segmentation` (SynthSeg's training on the user's
  label maps or SynthSeg's, with a step or time budget, checkpoints and
  resuming) returns a `synthlayers.models.Segmenter`;
  `evaluate_on_test_scan` scores one on voxelmorph's real T1 scan,
  `evaluate_contrast_cases` on contrasts made from it.
- `registration`: `train_registration` (SynthMorph's training on shapes or
  brain label maps) returns a `RegistrationModelFile`
  (`load_registration_model` reads it back); `evaluate_cases` scores it on
  the registration cases of `synthlayers.data.registration_cases`.
"""

from synthlayers.workflows.registration import RegistrationModelFile
from synthlayers.workflows.registration import evaluate_cases
from synthlayers.workflows.registration import load_registration_model
from synthlayers.workflows.registration import train_registration
from synthlayers.workflows.segmentation import TrainingBudget
from synthlayers.workflows.segmentation import evaluate_contrast_cases
from synthlayers.workflows.segmentation import evaluate_on_test_scan
from synthlayers.workflows.segmentation import train_segmentation
