"""Model registries and checkpoints that rebuild a model from the file alone."""

from ganaug.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ganaug.models.classifiers import CLASSIFIERS, validate_pretrained
from ganaug.models.transfer import PretrainedWeightsUnavailable

__all__ = ["CLASSIFIERS", "CheckpointError", "PretrainedWeightsUnavailable", "load_checkpoint",
           "save_checkpoint", "validate_pretrained"]
