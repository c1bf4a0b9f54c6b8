"""Classifier registry (``scorer.arch``, ``classifier.arch``) and classifier checkpoints."""

from ganaug.errors import CheckpointError
from ganaug.models.classifiers import CLASSIFIERS, validate_pretrained
from ganaug.models.saved import load_checkpoint, save_checkpoint
from ganaug.models.transfer import PretrainedWeightsUnavailable

__all__ = ["CLASSIFIERS", "CheckpointError", "PretrainedWeightsUnavailable", "load_checkpoint",
           "save_checkpoint", "validate_pretrained"]
