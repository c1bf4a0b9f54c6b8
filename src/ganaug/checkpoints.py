"""Checkpoint files: a dict with a ``kind`` (``classifier``, ``gan``, ``resume-...``), written
atomically, loaded with ``torch.load(..., weights_only=True)`` (no code runs on load), and errors
that name the file. Each kind's payload holds what rebuilds its model from the file alone (the
architecture's name and arguments next to the weights).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganaug.io import CheckpointError, atomic_path


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """``torch.save`` atomically. Written through a file object: given a path, torch names the
    archive inside after the (random) temporary file, and the same weights would hash differently."""
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        torch.save(payload, f)


def load_checkpoint(path: str | Path, kind: str | None = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError,
            UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or "kind" not in payload:
        raise CheckpointError(f"{path}: not a checkpoint written by this project")
    if kind is not None and payload["kind"] != kind:
        raise CheckpointError(f"{path}: holds a {payload['kind']!r} checkpoint, expected {kind!r}")
    return payload


def load_state(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path, what: str) -> None:
    """``model.load_state_dict`` with an error that names the file when the shapes disagree."""
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:3]
        raise CheckpointError(
            f"{path}: the {what} weights do not fit the architecture recorded with them: "
            + " ".join(first)
        ) from exc
