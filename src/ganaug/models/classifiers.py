"""Image classifiers, by name.

Every classifier is built as ``CLASSIFIERS.get(name)(in_channels=, num_classes=, image_size=,
width=, **extra)``, takes float images ``(N, C, H, W)`` in [-1, 1], returns logits
``(N, num_classes)``, and exposes ``features(x) -> (N, feature_dim)``, the penultimate layer (the
offline FID feature space), ``classify(features) -> logits`` (so ``forward(x)`` is
``classify(features(x))`` and the score stage gets both from one pass), and ``feature_dim``.
Every argument is a plain JSON value: checkpoints
store them and rebuild the model from the file alone.

| name             | for                          | extra kwargs                            |
|------------------|------------------------------|-----------------------------------------|
| `small_cnn`      | 8x8 digits (the default)     |                                         |
| `vgg_small`      | 48x48 faces, 8..48 px        | `dropout`                               |
| `resnet18_small` | CIFAR-style ResNet-18, 8..48 | (width 64 in the paper)                 |
| `resnet18`, `resnet50`, `vgg16` | ImageNet transfer | `pretrained` ("imagenet" or None), `min_size`, (`dropout` for vgg16) |

The transfer models repeat greyscale to RGB, upsample inputs whose short side is under
``min_size`` (default 32: VGG16's five max-pools need 32 px; 8x8 digits become 32x32), and map
[-1, 1] to ImageNet normalisation when pretrained. At ``width=64`` they are torchvision's
architectures; ImageNet weights need that width. A smaller width is a scaled-down model for
random-init runs and tests. ImageNet weights are read from the torch hub cache and never
downloaded while a model is built: ``python -m ganaug.models.fetch_weights resnet18`` fetches them.
"""

from __future__ import annotations

import torch
from torch import nn

from ganaug.models.transfer import (
    InputAdapter,
    check_pretrained,
    load_backbone,
    load_pretrained_state,
)
from ganaug.models.vgg import VGG16, VGGSmall
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

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))


@CLASSIFIERS.register("small_cnn")
def small_cnn(in_channels: int, num_classes: int, image_size: int, width: int = 32) -> nn.Module:
    return SmallCNN(in_channels, num_classes, image_size, width)


@CLASSIFIERS.register("vgg_small")
def vgg_small(in_channels: int, num_classes: int, image_size: int, width: int = 32,
              dropout: float = 0.3) -> nn.Module:
    return VGGSmall(in_channels, num_classes, image_size, width, dropout)


@CLASSIFIERS.register("resnet18_small")
def resnet18_small(in_channels: int, num_classes: int, image_size: int,
                   width: int = 64) -> nn.Module:
    """ResNet-18 with a 3x3 stride-1 stem and no max-pool; any input size (global pooling)."""
    from torchvision.models.resnet import BasicBlock  # torchvision loads slowly: only on use

    from ganaug.models.resnet import ResNet

    return ResNet(BasicBlock, (2, 2, 2, 2), in_channels, num_classes, width, stem="cifar")


def _transfer_resnet(arch: str, block: str, layers: tuple[int, int, int, int], in_channels: int,
                     num_classes: int, width: int, pretrained: str | None,
                     min_size: int) -> nn.Module:
    """``block``: "basic" or "bottleneck" (torchvision's BasicBlock / Bottleneck)."""
    from torchvision.models.resnet import BasicBlock, Bottleneck

    from ganaug.models.resnet import ResNet

    check_pretrained(arch, pretrained, width)
    state = None if pretrained is None else load_pretrained_state(arch, pretrained)
    prep = InputAdapter(in_channels, min_size, imagenet_norm=pretrained is not None)
    block_cls = BasicBlock if block == "basic" else Bottleneck
    model = ResNet(block_cls, layers, 3, num_classes, width, stem="imagenet", prep=prep)
    if state is not None:
        load_backbone(model, state, arch)
    return model


@CLASSIFIERS.register("resnet18")
def resnet18(in_channels: int, num_classes: int, image_size: int, width: int = 64,
             pretrained: str | None = None, min_size: int = 32) -> nn.Module:
    """torchvision's ResNet-18 (7x7 stride-2 stem, max-pool) with a new last layer."""
    return _transfer_resnet("resnet18", "basic", (2, 2, 2, 2), in_channels, num_classes,
                            width, pretrained, min_size)


@CLASSIFIERS.register("resnet50")
def resnet50(in_channels: int, num_classes: int, image_size: int, width: int = 64,
             pretrained: str | None = None, min_size: int = 32) -> nn.Module:
    """torchvision's ResNet-50 with a new last layer; features are ``32 * width`` (2048)."""
    return _transfer_resnet("resnet50", "bottleneck", (3, 4, 6, 3), in_channels, num_classes,
                            width, pretrained, min_size)


@CLASSIFIERS.register("vgg16")
def vgg16(in_channels: int, num_classes: int, image_size: int, width: int = 64,
          pretrained: str | None = None, min_size: int = 32, dropout: float = 0.5) -> nn.Module:
    """torchvision's VGG16 (no batch norm) with a new last layer; ``min_size`` must be >= 32."""
    check_pretrained("vgg16", pretrained, width)
    if min_size < 32:
        raise ValueError(f"min_size: VGG16's five max-pools need inputs of >= 32 px, got {min_size}")
    state = None if pretrained is None else load_pretrained_state("vgg16", pretrained)
    prep = InputAdapter(in_channels, min_size, imagenet_norm=pretrained is not None)
    model = VGG16(num_classes, width, dropout, prep=prep)
    if state is not None:
        load_backbone(model, state, "vgg16")
    return model


def validate_pretrained(arch: str, pretrained: str | None, width: int) -> None:
    """For config validation: ``ValueError`` naming the param if ``pretrained`` cannot apply."""
    if arch not in CLASSIFIERS:
        raise ValueError(f"arch: unknown classifier {arch!r}; known: {', '.join(CLASSIFIERS)}")
    check_pretrained(arch, pretrained, width)
