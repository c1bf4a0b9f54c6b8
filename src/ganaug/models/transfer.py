"""What the ImageNet transfer models share: an input adapter and the pretrained weights.

Pretrained weights come from torchvision's weights API, read from the torch hub cache
(``torch.hub.get_dir()/checkpoints``). Building a model never downloads: a DVC stage that quietly
reaches the network is neither offline nor reproducible. Fetch the weights once with
``python -m ganaug.models.fetch_weights resnet18`` (or copy the file into the cache by hand).
"""

from __future__ import annotations

import contextlib
import math
import pickle
import zipfile
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import torch
from torch import nn
from torch.nn import functional as F

# The mean and std every torchvision ImageNet weight set was trained with (RGB, on [0, 1]).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Every transfer model keeps torchvision's channel counts at this width; only it fits the weights.
IMAGENET_WIDTH = 64

# arch -> {pretrained value -> torchvision weights enum member, as "Enum.MEMBER"}
PRETRAINED_WEIGHTS: dict[str, dict[str, str]] = {
    "resnet18": {"imagenet": "ResNet18_Weights.IMAGENET1K_V1"},
    "resnet50": {"imagenet": "ResNet50_Weights.IMAGENET1K_V1"},
    "vgg16": {"imagenet": "VGG16_Weights.IMAGENET1K_V1"},
}

if TYPE_CHECKING:  # importing torchvision costs ~1.5 s (it loads every model family): only on use
    import torchvision

_load_pretrained: ContextVar[bool] = ContextVar("ganaug_load_pretrained", default=True)


class PretrainedWeightsUnavailable(ValueError):
    """The pretrained weights a classifier asks for are not in the local torch hub cache."""


@contextlib.contextmanager
def without_pretrained_weights() -> Iterator[None]:
    """Build classifiers without reading pretrained weights (the caller loads its own state).

    A checkpoint of a fine-tuned model holds every weight, so rebuilding it needs neither the
    ImageNet file nor the network.
    """
    token = _load_pretrained.set(False)
    try:
        yield
    finally:
        _load_pretrained.reset(token)


def check_pretrained(arch: str, pretrained: str | None, width: int) -> None:
    """Raise ``ValueError`` (naming the param) if ``pretrained`` does not apply to ``arch``."""
    if pretrained is None:
        return
    choices = PRETRAINED_WEIGHTS.get(arch, {})
    if not choices:
        known = ", ".join(sorted(PRETRAINED_WEIGHTS))
        raise ValueError(f"pretrained: classifier {arch!r} has no pretrained weights "
                         f"(those with some: {known}); set pretrained to null")
    if pretrained not in choices:
        raise ValueError(f"pretrained: {pretrained!r} is not a weight set of {arch!r}; "
                         f"choose one of {', '.join(sorted(choices))} or null")
    if width != IMAGENET_WIDTH:
        raise ValueError(f"width: {arch!r} with pretrained={pretrained!r} needs width "
                         f"{IMAGENET_WIDTH} (the ImageNet architecture), got {width}")


def weights_enum(arch: str, pretrained: str) -> torchvision.models.WeightsEnum:
    enum_name, member = PRETRAINED_WEIGHTS[arch][pretrained].split(".")
    import torchvision.models

    return getattr(getattr(torchvision.models, enum_name), member)


def cached_weights_path(arch: str, pretrained: str) -> Path:
    """Where ``torch.hub`` (and so torchvision) keeps the weight file, under ``$TORCH_HOME``."""
    url = weights_enum(arch, pretrained).url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


def load_pretrained_state(arch: str, pretrained: str) -> dict[str, torch.Tensor] | None:
    """torchvision's state dict for ``arch``, read from the hub cache; never downloads.

    Returns None inside ``without_pretrained_weights()``.
    """
    if not _load_pretrained.get():
        return None
    weights = weights_enum(arch, pretrained)
    path = cached_weights_path(arch, pretrained)
    if not path.is_file():
        raise PretrainedWeightsUnavailable(
            f"classifier {arch!r}: pretrained={pretrained!r} needs torchvision's "
            f"{PRETRAINED_WEIGHTS[arch][pretrained]} weights, which are not in the torch hub cache "
            f"{path.parent} (torch.hub.get_dir() = {torch.hub.get_dir()}; set TORCH_HOME to use "
            f"another). Models never download while being built: fetch the file once with "
            f"`python -m ganaug.models.fetch_weights {arch}` on a machine with network, or download "
            f"{weights.url} and place it at {path}; or set pretrained to null to train from a "
            f"random initialisation."
        )
    try:  # the weights API reads the cached file when it is there
        return weights.get_state_dict(progress=False, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as exc:
        raise PretrainedWeightsUnavailable(
            f"classifier {arch!r}: the cached weight file {path} is not readable ({exc}); "
            f"delete it and fetch it again, or set pretrained to null"
        ) from exc


# How torchvision's state dict maps onto ours: (renamed key prefixes, prefix of the dropped
# ImageNet classifier layer; our replacement is always ``fc``).
TORCHVISION_LAYOUT: dict[str, tuple[dict[str, str], str]] = {
    "resnet18": ({}, "fc."),
    "resnet50": ({}, "fc."),
    "vgg16": ({"features.": "convs."}, "classifier.6."),
}


def load_backbone(model: nn.Module, state: dict[str, torch.Tensor], arch: str) -> None:
    """Copy torchvision's weights for ``arch`` into ``model``, all but the ImageNet classifier
    layer: the model's own ``fc`` keeps its fresh initialisation.
    """
    rename, drop = TORCHVISION_LAYOUT[arch]
    mapped = {}
    for key, value in state.items():
        if key.startswith(drop):
            continue
        for old, new in rename.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        mapped[key] = value
    try:
        missing, unexpected = model.load_state_dict(mapped, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise PretrainedWeightsUnavailable(
            f"classifier {arch!r}: the pretrained weights do not fit the model: "
            + " ".join(str(exc).splitlines()[:3])
        ) from exc
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise PretrainedWeightsUnavailable(
            f"classifier {arch!r}: the pretrained weights do not fit the model "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )


class InputAdapter(nn.Module):
    """Turns the project's images into what an ImageNet network expects.

    Input ``(N, in_channels, H, W)`` in [-1, 1]; output ``(N, 3, H', W')``: greyscale repeated to
    three channels, upsampled (bilinear, aspect kept) so the short side is at least ``min_size``,
    and, when ``imagenet_norm``, mapped to [0, 1] and normalised with the ImageNet mean and std.
    Holds no state-dict entries, so the weights stay in torchvision's layout.
    """

    def __init__(self, in_channels: int, min_size: int, imagenet_norm: bool) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels: ImageNet models take 1 (repeated) or 3 channels, "
                             f"got {in_channels}")
        if min_size < 1:
            raise ValueError(f"min_size: must be >= 1, got {min_size}")
        self.in_channels, self.min_size, self.imagenet_norm = in_channels, min_size, imagenet_norm
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {x.shape[1]}")
        h, w = x.shape[-2:]
        if min(h, w) < self.min_size:
            scale = self.min_size / min(h, w)
            size = (math.ceil(h * scale), math.ceil(w * scale))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        if self.in_channels == 1:
            x = x.expand(-1, 3, -1, -1)  # (N, 3, H', W')
        if self.imagenet_norm:
            x = ((x + 1) / 2 - self.mean) / self.std
        return x

    def extra_repr(self) -> str:
        return (f"in_channels={self.in_channels}, min_size={self.min_size}, "
                f"imagenet_norm={self.imagenet_norm}")
