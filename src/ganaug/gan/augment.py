"""Data-efficient GAN training: DiffAugment, ADA-style adaptive strength, LeCam regularisation.

All are pure functions of tensors (and explicit random draws), usable by every GAN family; the
training loop's :class:`~ganaug.gan.train.StepContext` applies them around every discriminator
call.

- DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"):
  the same differentiable augmentations transform real and generated images before every
  discriminator call, in the discriminator's and the generator's steps, so the discriminator
  cannot memorise the few real images and the generator still gets gradients through them.
  Ops, as in the paper's reference code: ``color`` (brightness, saturation, contrast),
  ``translation`` (shift by up to 1/8 of the image, zero padding), ``cutout`` (a zeroed square
  of half the image size).
- ADA-style strength (Karras et al. 2020): each image is augmented with probability ``p``; ``p``
  rises while ``E[sign(D(real))]`` is above a target (the discriminator overfits) and falls below.
- LeCam (Tseng et al. 2021): ``||D(x) - mu_fake||^2 + ||D(G(z)) - mu_real||^2`` with moving
  averages ``mu`` of the discriminator's outputs, which keeps its predictions from drifting apart.

Images are ``(N, C, H, W)`` in [-1, 1] (value 0 is mid-grey: the padding and the cutout fill).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

OPS = ("color", "translation", "cutout")
TRANSLATION_RATIO = 1 / 8
CUTOUT_RATIO = 1 / 2


# --------------------------------------------------------------------------------------------
# The ops, with their random parameters given explicitly (hand-checkable)
# --------------------------------------------------------------------------------------------


def adjust_color(x: torch.Tensor, brightness: torch.Tensor, saturation: torch.Tensor,
                 contrast: torch.Tensor) -> torch.Tensor:
    """``x + brightness``, then saturation and contrast scaling about the per-image means.

    ``brightness``: ``(N,)`` added to every pixel; ``saturation``: ``(N,)`` factor on the
    deviation from the per-pixel channel mean (no effect on grey images); ``contrast``: ``(N,)``
    factor on the deviation from the image's mean.
    """
    b, s, c = (t.to(x.dtype).view(-1, 1, 1, 1) for t in (brightness, saturation, contrast))
    x = x + b
    mean_c = x.mean(dim=1, keepdim=True)
    x = (x - mean_c) * s + mean_c
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * c + mean


def translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Shift image i down by ``dy[i]`` and right by ``dx[i]`` pixels (int, may be negative);
    pixels shifted in are 0. ``out[i, :, r, c] = x[i, :, r - dy[i], c - dx[i]]``."""
    n, _, h, w = x.shape
    dy, dx = dy.to(x.device).long(), dx.to(x.device).long()
    rows = torch.arange(h, device=x.device)[None] - dy[:, None]         # (N, H) source rows
    cols = torch.arange(w, device=x.device)[None] - dx[:, None]         # (N, W) source cols
    valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    idx_n = torch.arange(n, device=x.device)[:, None, None]
    out = x.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2) * valid[:, None].to(x.dtype)


def cutout(x: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor, size: tuple[int, int]
           ) -> torch.Tensor:
    """Zero a ``size = (sh, sw)`` rectangle of image i whose top-left corner is
    ``(cy[i] - sh // 2, cx[i] - sw // 2)`` (clipped to the image)."""
    n, _, h, w = x.shape
    sh, sw = size
    cy, cx = cy.to(x.device).long()[:, None], cx.to(x.device).long()[:, None]
    r = torch.arange(h, device=x.device)[None]  # (1, H)
    c = torch.arange(w, device=x.device)[None]
    in_r = (r >= cy - sh // 2) & (r < cy - sh // 2 + sh)                # (N, H)
    in_c = (c >= cx - sw // 2) & (c < cx - sw // 2 + sw)                # (N, W)
    mask = ~(in_r[:, :, None] & in_c[:, None, :])                       # (N, H, W) True = keep
    return x * mask[:, None].to(x.dtype)


# --------------------------------------------------------------------------------------------
# DiffAugment with random draws from one generator
# --------------------------------------------------------------------------------------------


def _rand(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g, device=g.device)


def diff_augment(x: torch.Tensor, policy: Sequence[str], g: torch.Generator,
                 p: float | torch.Tensor = 1.0) -> torch.Tensor:
    """Apply each op of ``policy`` (in the order of :data:`OPS`) to a random subset of the images,
    each image independently with probability ``p`` (a number, or a 0-d tensor on the device so
    an adaptive ``p`` costs no host synchronisation); random parameters come from ``g`` (on its
    own device). Differentiable in ``x``. ``policy`` empty or ``p == 0``: ``x`` unchanged."""
    if not policy or (isinstance(p, int | float) and p <= 0):
        return x
    unknown = set(policy) - set(OPS)
    if unknown:
        raise ValueError(f"diff_augment: unknown ops {sorted(unknown)}; known: {OPS}")
    n, _, h, w = x.shape
    for op in OPS:
        if op not in policy:
            continue
        apply = (_rand(n, g) < p).to(x.device)                          # (N,) which images
        if op == "color":
            y = adjust_color(x, _rand(n, g) - 0.5, _rand(n, g) * 2, _rand(n, g) + 0.5)
        elif op == "translation":
            sy, sx = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
            dy = torch.randint(-sy, sy + 1, (n,), generator=g, device=g.device)
            dx = torch.randint(-sx, sx + 1, (n,), generator=g, device=g.device)
            y = translate(x, dy, dx)
        else:
            size = (int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5))
            cy = torch.randint(0, h + (1 - size[0] % 2), (n,), generator=g, device=g.device)
            cx = torch.randint(0, w + (1 - size[1] % 2), (n,), generator=g, device=g.device)
            y = cutout(x, cy, cx, size)
        x = torch.where(apply[:, None, None, None], y, x)
    return x


# --------------------------------------------------------------------------------------------
# ADA-style strength and LeCam
# --------------------------------------------------------------------------------------------


def ada_update(p: float, sign_mean: float, target: float, images: int, kimg: float) -> float:
    """One ADA adjustment: ``p + sign(sign_mean - target) * images / (kimg * 1000)``, in [0, 1].

    ``sign_mean``: ``E[sign(D(real))]`` since the last adjustment (the overfitting heuristic
    ``r_t``); ``images``: real images shown since then; ``kimg``: thousands of images for ``p`` to
    go from 0 to 1.
    """
    step = images / (kimg * 1000.0)
    if sign_mean > target:
        p += step
    elif sign_mean < target:
        p -= step
    return min(max(p, 0.0), 1.0)


def lecam_reg(d_real: torch.Tensor, d_fake: torch.Tensor, ema_real: float,
              ema_fake: float) -> torch.Tensor:
    """LeCam regulariser: ``mean(relu(D(x) - mu_fake)^2) + mean(relu(mu_real - D(G(z)))^2)``.

    ``d_real``, ``d_fake``: discriminator outputs (any shape); ``ema_*``: moving averages of their
    means. Zero while real outputs sit below the fake average and fake outputs above the real one.
    """
    return (F.relu(d_real - ema_fake).pow(2).mean() + F.relu(ema_real - d_fake).pow(2).mean())


def ema(value: float | None, new: float, decay: float) -> float:
    """``decay * value + (1 - decay) * new``; the first value is taken as is."""
    return new if value is None else decay * value + (1.0 - decay) * new
