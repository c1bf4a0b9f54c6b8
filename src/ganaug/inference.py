"""Conversions between stored uint8 images and model inputs, and batched inference."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch


def to_model_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` in [0, 255] -> float32 in [-1, 1] (what every model takes)."""
    return x.float().div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] (generator output) -> uint8 in [0, 255], rounded, clipped."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round_().to(torch.uint8)


# Pages of a memory-mapped file that a pass has read or written stay in the process's resident set
# (RSS) until unmapped, so a pass over a 1M-image pool would hold the whole 2.3 GB file. Every
# RELEASE_EVERY batches the mapping's pages are given back (MADV_DONTNEED): the data stays in the
# file and the page cache, so nothing is lost or re-read from disk unless memory is short.
RELEASE_EVERY = 64


def release_pages(x: Any) -> None:
    """Drop the resident pages of a numpy memmap (or a view of one); anything else: nothing."""
    import mmap

    m = getattr(x, "_mmap", None)
    if m is None or not hasattr(m, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return
    with contextlib.suppress(ValueError, OSError):  # closed map, or a platform without it
        m.madvise(mmap.MADV_DONTNEED)


# On the CPU a forward pass gains nothing from big batches, but its activations grow with them: a
# 1024-image batch of 48x48 images holds about 0.6 GB of small_cnn activations. So on the CPU,
# inference runs at most CPU_BATCH_PIXELS pixels per image plane at a time (64 images at 48x48;
# the whole 1024 at 8x8); an accelerator gets the configured batch size. 64 rather than 256:
# buffers under glibc's 32 MB mmap ceiling are reused from the heap instead of being mapped,
# zero-filled and unmapped every batch (scoring 50k images: 30 s of system time instead of 57,
# 60 s wall instead of 75; benchmarks/README.md). Every model here maps each image independently
# in eval mode, so the chunking changes no result (tests/test_scoring.py compares it with one
# whole-batch pass).
CPU_BATCH_PIXELS = 64 * 48 * 48


def inference_batch(batch_size: int, device: Any, image_shape: tuple[int, ...]) -> int:
    """The images per forward pass for ``batch_size`` on ``device`` and images of shape
    ``(C, H, W)``: ``batch_size`` on an accelerator, at most ``CPU_BATCH_PIXELS / (H * W)`` (at
    least 1) on the CPU."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if torch.device(device).type != "cpu" or len(image_shape) < 2:
        return batch_size
    pixels = int(np.prod(image_shape[-2:]))
    return max(1, min(batch_size, CPU_BATCH_PIXELS // max(pixels, 1)))


@torch.no_grad()
def batched(fn: Callable[..., Any], x: np.ndarray | torch.Tensor, batch_size: int,
            device: torch.device, *per_image: np.ndarray | torch.Tensor) -> Any:
    """Apply ``fn`` to uint8 images in batches on ``device``; returns the concatenated CPU output
    (float32), or a tuple of them when ``fn`` returns a tuple of tensors (several results of one
    pass, e.g. a classifier's features and probabilities).

    ``per_image``: arrays with one row per image (labels, say); ``fn`` gets each one's rows of
    the batch, on ``device``, after the images. ``x`` may be a numpy memmap: only one batch at a
    time is read into memory. On the CPU the batches are at most :func:`inference_batch` images.
    The outputs are allocated once, before the loop, and nothing else outlives a batch: small
    per-batch results kept between the big short-lived activation buffers fragment glibc's heap
    (scoring a 1M pool batch by batch kept 2.7 GB that way; benchmarks/README.md).
    """
    batch_size = inference_batch(batch_size, device, tuple(x.shape[1:]))
    per_image_t = [torch.as_tensor(a) for a in per_image]
    for a in per_image_t:
        if len(a) != len(x):
            raise ValueError(f"batched: {len(a)} per-image rows for {len(x)} images")
    outs: tuple[torch.Tensor, ...] | None = None  # filled in place: no list of batches to
    # concatenate, which would hold the output twice (0.5 GB more for a 1M-image pool's features)
    single = True
    for i, start in enumerate(range(0, len(x), batch_size)):
        chunk = x[start: start + batch_size]
        chunk = torch.from_numpy(np.array(chunk)) if isinstance(chunk, np.ndarray) else chunk  # copy
        y = fn(to_model_range(chunk.to(device)),
               *(a[start: start + batch_size].to(device) for a in per_image_t))
        single = not isinstance(y, tuple)
        ys = tuple(t.float().cpu() for t in ((y,) if single else y))
        if outs is None:
            outs = tuple(torch.empty((len(x), *t.shape[1:]), dtype=t.dtype) for t in ys)
        for out, t in zip(outs, ys, strict=True):
            out[start: start + len(t)] = t
        del y, ys
        if i % RELEASE_EVERY == RELEASE_EVERY - 1:
            release_pages(x)
    release_pages(x)
    if outs is None:
        raise ValueError("batched: no images to process")
    return outs[0] if single else outs


def random_shift(x: torch.Tensor, max_shift: int, g: torch.Generator) -> torch.Tensor:
    """Shift each image by up to ``max_shift`` pixels (zero padding = background), per image."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (max_shift,) * 4, value=-1.0)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=g, device=g.device).to(x.device)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=g, device=g.device).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None])  # (N, H)
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None])  # (N, W)
    idx_n = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()
