"""Device choice, determinism and logging: the few things every stage sets up the same way."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported inside the functions: stages without models skip its import
    import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; anything else is passed to ``torch.device``.

    The ``GANAUG_DEVICE`` environment variable overrides the params value (handy for forcing the
    CPU on a GPU machine without changing params, which would rerun stages).
    """
    import torch

    name = os.environ.get("GANAUG_DEVICE", name)
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"device: {name!r} is not a device name (auto, cpu, cuda, cuda:N, mps)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r} asked for, but CUDA is not available here")
    return device


def set_determinism(seed: int) -> None:
    """Seed torch's global generator and ask for deterministic kernels where they exist.

    Bit-identical results are promised on the CPU; CUDA kernels without a deterministic version
    only warn.
    """
    import torch

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def setup_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("GANAUG_LOG", "INFO"),
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
