"""VGG-style classifiers: a small one sized for 48x48 faces, and VGG16 for ImageNet transfer."""

from __future__ import annotations

import torch
from torch import nn

# VGG16 ("configuration D"): conv widths in units of ``width`` (64 in torchvision), "M" = max-pool.
VGG16_PLAN: tuple[int | str, ...] = (1, 1, "M", 2, 2, "M", 4, 4, 4, "M", 8, 8, 8, "M", 8, 8, 8, "M")


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True)]


def num_pools(image_size: int, most: int = 4) -> int:
    """Halvings that keep the feature map at least 2x2: 8 -> 2, 28 -> 3, 32 and 48 -> 4."""
    pools, size = 0, image_size
    while pools < most and size // 2 >= 2:
        pools, size = pools + 1, size // 2
    return pools


class VGGSmall(nn.Module):
    """Four blocks of two 3x3 conv + BN + ReLU (``width, 2w, 4w, 8w`` channels), each of the first
    blocks followed by a 2x2 max-pool, as many as the input allows (48 -> 24 -> 12 -> 6 -> 3;
    8 -> 4 -> 2); then global average pooling, dropout and a linear head.

    Input ``(N, C, H, W)`` in [-1, 1]; features ``(N, 8 * width)``.
    """

    def __init__(self, in_channels: int, num_classes: int, image_size: int, width: int = 32,
                 dropout: float = 0.3) -> None:
        super().__init__()
        if width < 1 or not 0 <= dropout < 1:
            raise ValueError(f"width must be >= 1 and 0 <= dropout < 1, got {width}, {dropout}")
        pools = num_pools(image_size)
        layers: list[nn.Module] = []
        cin = in_channels
        for i, cout in enumerate((width, 2 * width, 4 * width, 8 * width)):
            layers += _conv_bn_relu(cin, cout) + _conv_bn_relu(cout, cout)
            if i < pools:
                layers.append(nn.MaxPool2d(2))
            cin = cout
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())  # (N, 8w)
        self.feature_dim = 8 * width
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.feature_dim, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))


class VGG16(nn.Module):
    """torchvision's VGG16 (no batch norm) with a width knob and a new last layer.

    ``convs``, ``avgpool`` and ``classifier`` mirror torchvision's ``features``, ``avgpool`` and
    ``classifier[:6]`` (at width 64: key for key, so ImageNet weights load); ``fc`` replaces
    ``classifier[6]``. The five max-pools need inputs of at least 32 px, which ``prep`` (an
    ``InputAdapter``) guarantees by upsampling. Features: the second hidden layer,
    ``(N, 64 * width)`` (4096 at width 64), after ReLU and dropout.
    """

    def __init__(self, num_classes: int, width: int = 64, dropout: float = 0.5,
                 prep: nn.Module | None = None) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"width: must be >= 1, got {width}")
        self.prep = prep if prep is not None else nn.Identity()
        layers: list[nn.Module] = []
        cin = 3
        for item in VGG16_PLAN:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                cout = int(item) * width
                layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]
                cin = cout
        self.convs = nn.Sequential(*layers)  # (N, 8w, H/32, W/32)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        hidden = 64 * width
        self.classifier = nn.Sequential(
            nn.Linear(cin * 7 * 7, hidden), nn.ReLU(True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(True), nn.Dropout(dropout),
        )
        self.feature_dim = hidden
        self.fc = nn.Linear(hidden, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.convs(self.prep(x)))  # (N, 8w, 7, 7)
        return self.classifier(torch.flatten(x, 1))

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))
