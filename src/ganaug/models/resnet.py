"""ResNets in torchvision's module layout, with a width knob.

One class serves two uses:
- ``stem="cifar"``: a 3x3 stride-1 stem and no max-pool, as CIFAR ResNets do, for 8..48 px inputs
  fed as they are (``resnet18_small``);
- ``stem="imagenet"``: torchvision's 7x7 stride-2 stem and max-pool behind an ``InputAdapter``;
  at width 64 the state dict matches torchvision's key for key, so ImageNet weights load into it.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, conv1x1

Block = type[BasicBlock] | type[Bottleneck]


class ResNet(nn.Module):
    """Input ``(N, C, H, W)`` in [-1, 1] -> logits ``(N, num_classes)``.

    Stages have ``width, 2*width, 4*width, 8*width`` planes (64..512 in torchvision); the
    feature dimension is ``8 * width * block.expansion``.
    """

    def __init__(self, block: Block, layers: tuple[int, int, int, int], in_channels: int,
                 num_classes: int, width: int, stem: str, prep: nn.Module | None = None) -> None:
        super().__init__()
        if width < 1:
            raise ValueError(f"width: must be >= 1, got {width}")
        self.prep = prep if prep is not None else nn.Identity()
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
            self.maxpool: nn.Module = nn.MaxPool2d(3, stride=2, padding=1)
        elif stem == "cifar":
            self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        else:
            raise ValueError(f"stem: 'imagenet' or 'cifar', got {stem!r}")
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self._inplanes = width
        self.layer1 = self._make_layer(block, width, layers[0], stride=1)
        self.layer2 = self._make_layer(block, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = 8 * width * block.expansion
        self.fc = nn.Linear(self.feature_dim, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self._inplanes != planes * block.expansion:
            downsample = nn.Sequential(conv1x1(self._inplanes, planes * block.expansion, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        layers = [block(self._inplanes, planes, stride, downsample)]
        self._inplanes = planes * block.expansion
        layers += [block(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` in [-1, 1] -> pooled penultimate features ``(N, feature_dim)``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(self.prep(x)))))  # stem: /4 or /1
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (N, feature_dim, H/32 or H/8, ..)
        return torch.flatten(self.avgpool(x), 1)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))
