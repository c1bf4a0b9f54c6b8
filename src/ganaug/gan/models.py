"""Class-conditional generator and discriminator for small images.

Generator: ``(z (N, z_dim), y (N,)) -> images (N, C, H, W) in [-1, 1]`` (tanh).
Discriminator: ``(images (N, C, H, W) in [-1, 1], y (N,)) -> realism logits (N,)``, with the label
entering by projection (Miyato & Koyama 2018): ``out = w.h + embed(y).h``.

The per-class variants hold one independent (unconditional in effect) network per class and
dispatch each row to the network of its label, with the same call signatures and constructor
arguments as the conditional ones, so consumers cannot tell them apart.
"""

from __future__ import annotations

import torch
from torch import nn


def plan_upsampling(image_size: int) -> tuple[int, int]:
    """``(n, base)`` with ``base * 2**n == image_size``, the most doublings (at most 4) that keep
    ``base >= 3``: 8 -> (1, 4), 28 -> (2, 7), 32 -> (3, 4), 48 -> (4, 3), 64 -> (4, 4)."""
    for n in range(4, 0, -1):
        if image_size % (2**n) == 0 and image_size // (2**n) >= 3:
            return n, image_size // (2**n)
    raise ValueError(f"image size {image_size} cannot be reached by doubling from >= 3 pixels")


class Generator(nn.Module):
    def __init__(self, z_dim: int, num_classes: int, out_channels: int, image_size: int,
                 width: int = 64) -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        n_up, base = plan_upsampling(image_size)
        ch = width * 2**n_up
        self.base, self.ch0 = base, ch
        self.embed = nn.Embedding(num_classes, z_dim)
        self.fc = nn.Sequential(
            nn.Linear(2 * z_dim, ch * base * base, bias=False),
            nn.BatchNorm1d(ch * base * base), nn.ReLU(True),
        )
        ups = []
        for _ in range(n_up):  # state size: ch x s x s -> ch/2 x 2s x 2s
            ups += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        self.ups = nn.Sequential(*ups)
        # state size: width x image_size x image_size
        self.out = nn.Sequential(nn.Conv2d(ch, out_channels, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([z, self.embed(y)], dim=1))  # (N, ch0 * base * base)
        h = h.view(-1, self.ch0, self.base, self.base)     # (N, ch0, base, base)
        return self.out(self.ups(h))                       # (N, C, H, W) in [-1, 1]


class Discriminator(nn.Module):
    """``norm``: "batch" (DCGAN), "layer" or "none" (a WGAN-GP critic must not use batch norm)."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int, width: int = 64,
                 norm: str = "batch") -> None:
        super().__init__()
        n_down, base = plan_upsampling(image_size)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1),
                                   nn.LeakyReLU(0.2, True)]
        ch, size = width, image_size
        for _ in range(n_down):  # state size: ch x s x s -> 2ch x s/2 x s/2
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=norm == "none"),
                       _norm(norm, ch * 2, size // 2), nn.LeakyReLU(0.2, True)]
            ch, size = ch * 2, size // 2
        self.body = nn.Sequential(*layers, nn.Flatten())  # (N, ch * base * base)
        self.feature_dim = ch * base * base
        self.linear = nn.Linear(self.feature_dim, 1)
        self.embed = nn.Embedding(num_classes, self.feature_dim)
        nn.init.normal_(self.embed.weight, std=0.02)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(N, F)`` of images ``(N, C, H, W)`` in [-1, 1] (label-free)."""
        return self.body(x)

    def head(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Realism ``(N,)`` of features ``h (N, F)`` for labels ``y (N,)``."""
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x), y)  # (N,)


class PerClassGenerator(nn.Module):
    """``num_classes`` independent generators; row i of the output comes from ``members[y[i]]``.

    Each member is a :class:`Generator` with a single class (its label embedding is a learned
    constant), trained only on its class's images.
    """

    def __init__(self, z_dim: int, num_classes: int, out_channels: int, image_size: int,
                 width: int = 64) -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        self.members = nn.ModuleList(
            Generator(z_dim, 1, out_channels, image_size, width) for _ in range(num_classes))

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _dispatch(self.members, z, y)  # (N, C, H, W) in [-1, 1]


class PerClassDiscriminator(nn.Module):
    """``num_classes`` independent discriminators; ``out[i]`` is ``members[y[i]]``'s realism."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int, width: int = 64,
                 norm: str = "batch") -> None:
        super().__init__()
        self.num_classes = num_classes
        self.members = nn.ModuleList(
            Discriminator(1, in_channels, image_size, width, norm) for _ in range(num_classes))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return _dispatch(self.members, x, y)  # (N,)


def _dispatch(members: nn.ModuleList, inputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Run each member on the rows labelled with its index (as label 0 of a one-class network)."""
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= len(members)):
        raise IndexError(f"labels must be in [0, {len(members)}), got {y.min()}..{y.max()}")
    out: torch.Tensor | None = None
    for c in y.unique().tolist():
        rows = (y == c).nonzero().squeeze(1)                        # (N_c,)
        part = members[c](inputs[rows], torch.zeros_like(rows))     # (N_c, ...)
        if out is None:
            out = part.new_empty((len(y), *part.shape[1:]))
        out[rows] = part
    if out is None:  # no rows: ask member 0 for the output shape
        return members[0](inputs, y)
    return out


def _norm(kind: str, ch: int, size: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "layer":
        return nn.GroupNorm(1, ch)  # layer norm over (C, H, W)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"discriminator norm must be batch, layer or none, got {kind!r}")
