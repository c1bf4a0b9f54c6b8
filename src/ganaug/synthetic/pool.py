"""The synthetic pool: a directory of a few large files, written batch by batch.

- ``images.npy``: uint8 ``(N, C, H, W)`` in [0, 255] (generator output mapped from [-1, 1])
- ``labels.npy``: int64 ``(N,)``, the label each image was generated for (its intended label)
- ``sources.npy``: int64 ``(N, 2)``: the index (in the real training split) and the class of the
  image each synthetic image was translated from; -1 for images made from noise
- ``meta.json``: how it was made

Memory stays bounded by one batch whatever N: images go straight into a memory-mapped npy, whose
blocks are allocated before the first write (a full disk is an error with a message, not a
SIGBUS). The generate stage and iterative refinement both make pools with :func:`make_pool`.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ganaug.io import DataFileError, atomic_path, load_npy, reserve_space

log = logging.getLogger(__name__)

# The held-out synthetic test set uses other noise (another seed) than the pool.
TEST_SEED_OFFSET = 1_000_003


def produce_uint8(sampler: Any, labels: np.ndarray, plan: np.ndarray, g: Any) -> np.ndarray:
    """One batch from a :class:`~ganaug.gan.family.Sampler`: uint8 ``(B, C, H, W)`` on the CPU."""
    import torch

    from ganaug.inference import to_uint8

    with torch.no_grad():
        return to_uint8(sampler.produce(torch.from_numpy(labels), plan, g)).cpu().numpy()


def pool_size_per_class(real_counts: np.ndarray, pool_multiplier: float, max_ratio: float) -> int:
    """Images per class: room for ``max_ratio`` x the largest real class, ``pool_multiplier`` times."""
    return int(math.ceil(pool_multiplier * max_ratio * int(real_counts.max())))


def write_pool(sampler: Any, labels: np.ndarray, image_shape: tuple[int, ...], batch_size: int,
               seed: int, out_dir: str | Path, meta: dict[str, Any]) -> None:
    """Make one image per entry of ``labels`` with ``sampler`` into ``out_dir`` (atomically)."""
    from ganaug.inference import RELEASE_EVERY, release_pages
    from ganaug.runtime import generator

    plan = sampler.plan(labels, seed)
    g = generator(seed)
    shape = (len(labels), *image_shape)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8,
                                           shape=shape)
        reserve_space(tmp / "images.npy")
        for i, start in enumerate(tqdm(range(0, len(labels), batch_size), desc="generate",
                                       unit="batch", leave=False, disable=None)):
            stop = start + batch_size
            images[start:stop] = produce_uint8(sampler, labels[start:stop], plan[start:stop], g)
            if i % RELEASE_EVERY == RELEASE_EVERY - 1:  # written pages stay in the page cache
                release_pages(images)
        images.flush()
        del images
        np.save(tmp / "labels.npy", labels)
        np.save(tmp / "sources.npy", np.stack([plan, sampler.source_labels(plan)], 1))
        (tmp / "meta.json").write_text(json.dumps(
            {**meta, "n": len(labels), "image_shape": list(image_shape),
             "range": "uint8 [0, 255] from generator output [-1, 1]"}, indent=2) + "\n")
    log.info("wrote %d images to %s", len(labels), out_dir)


def make_images(sampler: Any, labels: np.ndarray, batch_size: int, seed: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """In memory: uint8 images ``(N, C, H, W)`` for ``labels`` and their ``(N, 2)`` sources."""
    from ganaug.runtime import generator

    if len(labels) == 0:
        raise ValueError("make_images: no labels")
    plan = sampler.plan(labels, seed)
    g = generator(seed)
    parts = [produce_uint8(sampler, labels[s:s + batch_size], plan[s:s + batch_size], g)
             for s in range(0, len(labels), batch_size)]
    return np.concatenate(parts), np.stack([plan, sampler.source_labels(plan)], 1)


def pool_labels(num_classes: int, per_class: int) -> np.ndarray:
    return np.repeat(np.arange(num_classes, dtype=np.int64), per_class)  # class blocks


def planned_per_class(sampler: Any, num_classes: int, wanted: int) -> int:
    """``wanted`` images per class, or fewer where the sampler cannot make that many distinct
    ones (a translation family: one image per source of another class)."""
    cap = sampler.capacity(num_classes)
    if cap is not None and cap < wanted:
        log.warning("the generator makes at most %d distinct images per class (one per real "
                    "image of the other classes); the pool holds %d per class instead of %d "
                    "(generate.max_ratio and generate.pool_multiplier cannot raise it)",
                    cap, cap, wanted)
        return cap
    return wanted


def make_pool(gan: Any, data: Any, per_class: int, batch_size: int, seed: int, device: Any,
              out_dir: str | Path, meta: dict[str, Any]) -> None:
    """The pool of ``per_class`` images per class from a loaded GAN (sources: the real training
    split), with its provenance."""
    x, y = data.split("train")
    sampler = gan.sampler(x, y, device)
    per_class = planned_per_class(sampler, data.num_classes, per_class)
    write_pool(sampler, pool_labels(data.num_classes, per_class), data.image_shape, batch_size,
               seed, out_dir, {**meta, "per_class": per_class,
                               "translated_from": "real train split" if gan.family.translates
                               else None})


def make_test_set(gan: Any, data: Any, per_class: int, batch_size: int, seed: int, device: Any
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The held-out synthetic test set: other noise than the pool's; a translation family
    translates the real *test* images instead (translating training images again would repeat
    pool images, since one source and label always give the same image)."""
    x, y = data.split("test" if gan.family.translates else "train")
    sampler = gan.sampler(x, y, device)
    labels = pool_labels(data.num_classes, per_class)
    if per_class == 0:
        return np.zeros((0, *data.image_shape), np.uint8), labels
    images, _ = make_images(sampler, labels, batch_size, seed + TEST_SEED_OFFSET)
    return images, labels


def load_pool(pool_dir: str | Path, mmap: bool = True) -> tuple[np.ndarray, np.ndarray, dict]:
    """``(images (N, C, H, W) uint8, memory-mapped by default; labels (N,); meta)``."""
    pool_dir = Path(pool_dir)
    images = load_npy(pool_dir / "images.npy", mmap=mmap)
    labels = load_npy(pool_dir / "labels.npy")
    meta_path = pool_dir / "meta.json"
    if not meta_path.is_file():
        raise DataFileError(f"{meta_path}: file not found")
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{meta_path}: not valid JSON ({exc})") from exc
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) != len(labels):
        raise DataFileError(
            f"{pool_dir}: images {images.dtype} {images.shape} do not match labels {labels.shape}"
        )
    if labels.dtype.kind not in "iu":
        raise DataFileError(f"{pool_dir}/labels.npy: labels must be integers, got {labels.dtype}")
    return images, labels.astype(np.int64), meta


def load_sources(pool_dir: str | Path, n: int) -> np.ndarray:
    """``(N, 2)`` source index and class of every pool image (-1 where made from noise)."""
    path = Path(pool_dir) / "sources.npy"
    sources = load_npy(path)
    if sources.shape != (n, 2):
        raise DataFileError(f"{path}: expected shape ({n}, 2), got {sources.shape}")
    return sources.astype(np.int64)


def load_selected(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(x uint8 (N, C, H, W), y int64 (N,))`` of a ``selected.npz`` (a refinement round's)."""
    from ganaug.io import load_npz

    arrays = load_npz(path, ("x", "y"))
    x, y = arrays["x"], arrays["y"].astype(np.int64)
    if x.dtype != np.uint8 or x.ndim != 4 or len(x) != len(y):
        raise DataFileError(f"{path}: expected uint8 (N, C, H, W) images x and N labels y, "
                            f"got {x.dtype} {x.shape} and {y.shape}")
    return x, y
