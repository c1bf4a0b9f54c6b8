"""A saved classifier: its checkpoint holds the architecture name and its constructor arguments
next to the weights, so a consumer rebuilds the model from the file alone (the file format
itself, shared with the GAN and resume checkpoints, is :mod:`ganaug.checkpoints`).

A run of ``classifier.members`` > 1 saves its members in one file: member 0's weights under
``state_dict`` (what :func:`load_classifier` rebuilds) and the others' under ``members``
(:func:`load_members` rebuilds all of them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganaug.checkpoints import load_checkpoint, load_state, save_checkpoint
from ganaug.errors import CheckpointError
from ganaug.runtime import inference_layout

__all__ = ["classifier_payload", "load_checkpoint", "load_classifier", "load_members",
           "load_state", "member_seeds", "save_checkpoint"]


def classifier_payload(model: nn.Module, arch: str, kwargs: dict[str, Any],
                       meta: dict[str, Any], more: list[nn.Module] = ()) -> dict[str, Any]:
    """The checkpoint of ``model`` (and of the run's ``more`` members, same architecture)."""
    payload = {"kind": "classifier", "arch": arch, "kwargs": dict(kwargs),
               "state_dict": _weights(model), "meta": meta}
    if more:
        payload["members"] = [_weights(m) for m in more]
    return payload


def member_seeds(seed: int, members: int) -> list[int]:
    """The seed of each member of a run: member 0 the run's own (one member trains as a run
    always did), member m one drawn from ``(seed, m)``, so no two runs' members share one."""
    import numpy as np

    return [seed] + [int(np.random.SeedSequence([seed, m]).generate_state(1)[0])
                     for m in range(1, members)]


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def load_classifier(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a classifier from its checkpoint; returns ``(model in eval mode, payload)``, the
    model laid out for inference on ``device`` (:func:`ganaug.runtime.inference_layout`)."""
    payload = load_checkpoint(path, kind="classifier")
    return _rebuild(payload, payload["state_dict"], path, device), payload


def load_members(path: str | Path, device: torch.device | str = "cpu"
                 ) -> tuple[list[nn.Module], dict]:
    """Every member of a saved run (one for a run of one member), as :func:`load_classifier`."""
    payload = load_checkpoint(path, kind="classifier")
    more = payload.get("members", [])
    if not isinstance(more, list):
        raise CheckpointError(f"{path}: 'members' must be a list of weights, got "
                              f"{type(more).__name__}")
    return [_rebuild(payload, state, path, device)
            for state in [payload["state_dict"], *more]], payload


def _rebuild(payload: dict, state: dict, path: str | Path, device: torch.device | str
             ) -> nn.Module:
    from ganaug.models.classifiers import CLASSIFIERS
    from ganaug.models.transfer import without_pretrained_weights

    try:
        factory = CLASSIFIERS.get(payload["arch"])
        # The file holds every weight: a fine-tuned ImageNet model rebuilds offline, no cache.
        with without_pretrained_weights():
            model = factory(**payload["kwargs"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild the classifier ({exc})") from exc
    load_state(model, state, path, f"classifier {payload['arch']!r}")
    return inference_layout(model.to(device), device).eval()
