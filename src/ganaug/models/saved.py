"""A saved classifier: its checkpoint holds the architecture name and its constructor arguments
next to the weights, so a consumer rebuilds the model from the file alone (the file format
itself, shared with the GAN and resume checkpoints, is :mod:`ganaug.checkpoints`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganaug.checkpoints import load_checkpoint, load_state, save_checkpoint
from ganaug.errors import CheckpointError
from ganaug.runtime import inference_layout

__all__ = ["classifier_payload", "load_checkpoint", "load_classifier", "load_state",
           "save_checkpoint"]


def classifier_payload(model: nn.Module, arch: str, kwargs: dict[str, Any],
                       meta: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "classifier", "arch": arch, "kwargs": dict(kwargs),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "meta": meta}


def load_classifier(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a classifier from its checkpoint; returns ``(model in eval mode, payload)``, the
    model laid out for inference on ``device`` (:func:`ganaug.runtime.inference_layout`)."""
    from ganaug.models.classifiers import CLASSIFIERS
    from ganaug.models.transfer import without_pretrained_weights

    payload = load_checkpoint(path, kind="classifier")
    try:
        factory = CLASSIFIERS.get(payload["arch"])
        # The file holds every weight: a fine-tuned ImageNet model rebuilds offline, no cache.
        with without_pretrained_weights():
            model = factory(**payload["kwargs"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild the classifier ({exc})") from exc
    load_state(model, payload["state_dict"], path, f"classifier {payload['arch']!r}")
    return inference_layout(model.to(device), device).eval(), payload
