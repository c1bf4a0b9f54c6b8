"""Resume checkpoints shared by every long stage (classifier training, GAN training, refinement).

A resume file holds the state of a run that was interrupted (weights, optimisers, random
generators, counters) and the *fingerprint* of what made it: the inputs, the params and the code
(:func:`ganaug.codedeps.code_fingerprint`). It is used only when the fingerprint matches; a file
made by other inputs, params or code, or one that cannot be read or does not fit the model, is
ignored with a warning and the run starts from scratch. It lives outside DVC's outputs
(``.checkpoints/``) and is removed once the stage's outputs are written.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganaug.checkpoints import load_checkpoint, save_checkpoint
from ganaug.errors import CheckpointError

log = logging.getLogger(__name__)


def fingerprint(*parts: Any) -> str:
    """A hash of arrays (shape and bytes) and other values (their repr)."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray | torch.Tensor):
            arr = p.detach().cpu().numpy() if isinstance(p, torch.Tensor) else p
            h.update(str((arr.dtype, arr.shape)).encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        else:
            h.update(repr(p).encode())
    return h.hexdigest()


class ResumeFile:
    """The resume checkpoint of one run: ``path`` (None: no checkpoints), its ``kind`` and the
    run's ``fingerprint``."""

    def __init__(self, path: str | Path | None, kind: str, fingerprint: str) -> None:
        self.path = None if path is None else Path(path)
        self.kind, self.fingerprint = kind, fingerprint

    def save(self, objects: dict[str, Any], **extra: Any) -> None:
        """Write every object's ``state_dict()`` (None stays None) and ``extra`` atomically."""
        if self.path is None:
            return
        states = {k: None if v is None else v.state_dict() for k, v in objects.items()}
        save_checkpoint(self.path, {"kind": self.kind, "fingerprint": self.fingerprint,
                                    "states": states, **extra})

    def load(self, objects: dict[str, Any]) -> dict[str, Any] | None:
        """Load the saved states into ``objects`` and return the payload; None, with ``objects``
        as they were, when there is no usable file."""
        if self.path is None or not self.path.is_file():
            return None
        try:
            payload = load_checkpoint(self.path, kind=self.kind)
        except CheckpointError as exc:
            log.warning("ignoring resume checkpoint: %s", exc)
            return None
        if payload.get("fingerprint") != self.fingerprint:
            log.warning("ignoring resume checkpoint %s: made from other inputs, params or code",
                        self.path)
            return None
        states = payload.get("states") or {}
        live = {k: v for k, v in objects.items() if v is not None}
        backup = {k: copy.deepcopy(v.state_dict()) for k, v in live.items()}
        try:
            for name, obj in live.items():
                obj.load_state_dict(states[name])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            for name, obj in live.items():  # a half-loaded model must not leak into the run
                obj.load_state_dict(backup[name])
            log.warning("ignoring resume checkpoint %s: it does not fit the model (%s: %s)",
                        self.path, type(exc).__name__, str(exc).splitlines()[0])
            return None
        log.info("resuming from %s", self.path)
        return payload

    def discard(self) -> None:
        """Remove the file once the stage's outputs are written."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def discard_resume(path: str | Path | None) -> None:
    if path is not None:
        Path(path).unlink(missing_ok=True)
