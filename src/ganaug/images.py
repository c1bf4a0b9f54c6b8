"""Image grids for humans (PNG), written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganaug.io import atomic_path


def grid(images: np.ndarray | torch.Tensor, nrow: int, pad: int = 1, scale: int = 1) -> np.ndarray:
    """uint8 ``(N, C, H, W)`` -> one uint8 picture ``(H', W')`` or ``(H', W', 3)``, ``nrow`` per row."""
    from torchvision.utils import make_grid

    t = torch.as_tensor(np.asarray(images))
    if len(t) == 0:
        raise ValueError("grid: no images")
    g = make_grid(t, nrow=nrow, padding=pad, pad_value=128)  # (3, H', W') uint8
    if scale > 1:
        g = g.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    arr = g.permute(1, 2, 0).numpy()
    return arr[..., 0] if t.shape[1] == 1 else arr


def save_png(path: str | Path, picture: np.ndarray) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(picture).save(tmp, format="PNG")


def upscale_for(image_size: int) -> int:
    """Enlarge tiny images so a grid is legible (8x8 digits -> x4)."""
    return max(1, 32 // image_size)
