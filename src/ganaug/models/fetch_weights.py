"""Fetch ImageNet weights for the transfer classifiers into the torch hub cache (needs network).

    python -m ganaug.models.fetch_weights resnet18 vgg16

Models never download while being built (see ``ganaug.models.transfer``); this is the one place
that does, on purpose.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ganaug.models.transfer import (
    IMAGENET_WIDTH,
    PRETRAINED_WEIGHTS,
    cached_weights_path,
    check_pretrained,
    weights_enum,
)


def fetch(arch: str, pretrained: str = "imagenet") -> Path:
    """Download ``arch``'s weights into the torch hub cache (needs network); returns the path.

    torchvision checks the file's hash on download.
    """
    check_pretrained(arch, pretrained, IMAGENET_WIDTH)
    weights_enum(arch, pretrained).get_state_dict(progress=True, check_hash=True)
    return cached_weights_path(arch, pretrained)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("arch", nargs="+", choices=sorted(PRETRAINED_WEIGHTS))
    p.add_argument("--pretrained", default="imagenet")
    args = p.parse_args(argv)
    for arch in args.arch:
        print(fetch(arch, args.pretrained))


if __name__ == "__main__":
    main()
