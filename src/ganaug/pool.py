"""The synthetic pool: a directory of a few large files, written batch by batch.

- ``images.npy``: uint8 ``(N, C, H, W)`` in [0, 255] (generator output mapped from [-1, 1])
- ``labels.npy``: int64 ``(N,)``, the label each image was generated for (its intended label)
- ``meta.json``: how it was made

Memory stays bounded by one batch whatever N: images go straight into a memory-mapped npy.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from ganaug.io import DataFileError, atomic_path, load_npy
from ganaug.runtime import generator
from ganaug.tensors import to_uint8

log = logging.getLogger(__name__)


def pool_size_per_class(real_counts: np.ndarray, pool_multiplier: float, max_ratio: float) -> int:
    """Images per class: room for ``max_ratio`` x the largest real class, ``pool_multiplier`` times."""
    return int(math.ceil(pool_multiplier * max_ratio * int(real_counts.max())))


@torch.no_grad()
def generate_pool(gen: nn.Module, num_classes: int, per_class: int, z_dim: int,
                  batch_size: int, seed: int, device: torch.device, out_dir: str | Path,
                  meta: dict[str, Any]) -> None:
    """Write ``per_class`` images of every class into ``out_dir`` (atomically, as a directory)."""
    labels = np.repeat(np.arange(num_classes, dtype=np.int64), per_class)  # class blocks
    g = generator(seed)
    gen.eval()
    probe = gen(torch.zeros(1, z_dim, device=device), torch.zeros(1, dtype=torch.long, device=device))
    shape = (len(labels), *probe.shape[1:])
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=shape)
        for start in tqdm(range(0, len(labels), batch_size), desc="generate", unit="batch", leave=False, disable=None):
            y = torch.from_numpy(labels[start: start + batch_size])
            z = torch.randn(len(y), z_dim, generator=g)
            images[start: start + len(y)] = to_uint8(gen(z.to(device), y.to(device))).cpu().numpy()
        images.flush()
        del images
        np.save(tmp / "labels.npy", labels)
        (tmp / "meta.json").write_text(json.dumps(
            {**meta, "n": len(labels), "per_class": per_class, "image_shape": list(shape[1:]),
             "range": "uint8 [0, 255] from generator output [-1, 1]"}, indent=2) + "\n")
    log.info("wrote %d images (%d per class) to %s", len(labels), per_class, out_dir)


def load_pool(pool_dir: str | Path, mmap: bool = True) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(images (N, C, H, W) uint8, memory-mapped by default; labels (N,); meta)``."""
    pool_dir = Path(pool_dir)
    images = load_npy(pool_dir / "images.npy", mmap=mmap)
    labels = load_npy(pool_dir / "labels.npy")
    meta_path = pool_dir / "meta.json"
    if not meta_path.is_file():
        raise DataFileError(f"{meta_path}: file not found")
    meta = json.loads(meta_path.read_text())
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) != len(labels):
        raise DataFileError(
            f"{pool_dir}: images {images.dtype} {images.shape} do not match labels {labels.shape}"
        )
    return images, labels, meta


@torch.no_grad()
def generate_images(gen: nn.Module, num_classes: int, per_class: int, z_dim: int,
                    batch_size: int, seed: int, device: torch.device
                    ) -> tuple[np.ndarray, np.ndarray]:
    """``per_class`` images of every class in memory: uint8 ``(K * per_class, C, H, W)``, labels."""
    labels = np.repeat(np.arange(num_classes, dtype=np.int64), per_class)
    g = generator(seed)
    gen.eval()
    probe = gen(torch.zeros(1, z_dim, device=device), torch.zeros(1, dtype=torch.long, device=device))
    out = [np.zeros((0, *probe.shape[1:]), np.uint8)]  # the right shape when per_class is 0
    for start in range(0, len(labels), batch_size):
        y = torch.from_numpy(labels[start: start + batch_size])
        z = torch.randn(len(y), z_dim, generator=g)
        out.append(to_uint8(gen(z.to(device), y.to(device))).cpu().numpy())
    return np.concatenate(out), labels


def load_selected(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(x uint8 (N, C, H, W), y int64 (N,))`` of a ``selected.npz`` (a refinement round's)."""
    from ganaug.io import load_npz

    arrays = load_npz(path, ("x", "y"))
    x, y = arrays["x"], arrays["y"].astype(np.int64)
    if x.dtype != np.uint8 or x.ndim != 4 or len(x) != len(y):
        raise DataFileError(f"{path}: expected uint8 (N, C, H, W) images x and N labels y, "
                            f"got {x.dtype} {x.shape} and {y.shape}")
    return x, y
