"""Image grids for humans (PNG), written atomically. Numpy only: the report stage makes grids
without importing torch (about 1.5 s of every report's start-up)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ganaug.io import atomic_path


def grid(images: Any, nrow: int, pad: int = 1, scale: int = 1) -> np.ndarray:
    """uint8 ``(N, C, H, W)`` (an array or a CPU tensor) -> one uint8 picture ``(H', W')`` (grey)
    or ``(H', W', 3)``: ``nrow`` images per row, ``pad`` grey (128) pixels around each, every
    pixel repeated ``scale`` times in both directions. The layout of torchvision's
    ``make_grid(padding=pad, pad_value=128)``."""
    x = np.asarray(images)
    if len(x) == 0:
        raise ValueError("grid: no images")
    n, c, h, w = x.shape
    if c not in (1, 3):
        raise ValueError(f"grid: expected 1 or 3 channels, got {c}")
    cols = min(nrow, n)
    rows = -(-n // cols)
    out = np.full((c, rows * (h + pad) + pad, cols * (w + pad) + pad), 128, np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        top, left = r * (h + pad) + pad, k * (w + pad) + pad
        out[:, top:top + h, left:left + w] = x[i]
    if scale > 1:
        out = out.repeat(scale, 1).repeat(scale, 2)
    return out[0] if c == 1 else out.transpose(1, 2, 0)


def save_png(path: str | Path, picture: np.ndarray) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(picture).save(tmp, format="PNG")


def upscale_for(image_size: int) -> int:
    """Enlarge tiny images so a grid is legible (8x8 digits -> x4)."""
    return max(1, 32 // image_size)
