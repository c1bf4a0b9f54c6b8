"""Model registries and checkpoints that rebuild a model from the file alone."""

from ganaug.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ganaug.models.classifiers import CLASSIFIERS

__all__ = ["CLASSIFIERS", "CheckpointError", "load_checkpoint", "save_checkpoint"]
