"""Class-conditional generator and discriminator for small images.

Generator: ``(z (N, z_dim), y (N,)) -> images (N, C, H, W) in [-1, 1]`` (tanh).
Discriminator: ``(images (N, C, H, W) in [-1, 1], y (N,)) -> realism logits (N,)``, with the label
entering by projection (Miyato & Koyama 2018): ``out = w.h + embed(y).h``.
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

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.body(x)  # (N, F)
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(1)  # (N,)


def _norm(kind: str, ch: int, size: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "layer":
        return nn.GroupNorm(1, ch)  # layer norm over (C, H, W)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"discriminator norm must be batch, layer or none, got {kind!r}")
