"""Image classifiers, by name.

Every classifier is built as ``CLASSIFIERS.get(name)(in_channels=, num_classes=, image_size=,
width=)``, takes float images ``(N, C, H, W)`` in [-1, 1], returns logits ``(N, num_classes)``, and
exposes ``features(x) -> (N, feature_dim)``, the penultimate layer (the offline FID feature space).
"""

from __future__ import annotations

import torch
from torch import nn

from ganaug.registry import Registry

CLASSIFIERS: Registry = Registry("classifier")


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class SmallCNN(nn.Module):
    """Three conv blocks, global average pooling, a linear head. Fits 8x8 digits and 48x48 faces."""

    def __init__(self, in_channels: int, num_classes: int, image_size: int, width: int = 32,
                 dropout: float = 0.3) -> None:
        super().__init__()
        self.feature_dim = width * 4
        pools = 2 if image_size >= 8 else 0  # 8x8 -> 4x4 -> 2x2; 48x48 -> 24 -> 12
        self.body = nn.Sequential(
            _block(in_channels, width),
            nn.MaxPool2d(2) if pools > 0 else nn.Identity(),
            _block(width, width * 2),
            nn.MaxPool2d(2) if pools > 1 else nn.Identity(),
            _block(width * 2, width * 4),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),  # (N, 4*width)
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.feature_dim, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@CLASSIFIERS.register("small_cnn")
def small_cnn(in_channels: int, num_classes: int, image_size: int, width: int = 32) -> nn.Module:
    return SmallCNN(in_channels, num_classes, image_size, width)
