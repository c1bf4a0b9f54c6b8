"""A saved GAN back in memory: the family and networks a ``kind: gan`` checkpoint describes.

Here rather than in :mod:`.family` because it reads the family's knobs with
:func:`ganaug.gan.knobs.gan_config`, which itself needs the registry of families
(:data:`.family.FAMILIES`): no import cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ganaug.checkpoints import load_checkpoint, load_state
from ganaug.errors import CheckpointError
from ganaug.gan.family import FAMILIES, GanFamily, LoadedGan, Nets, family_for
from ganaug.gan.knobs import gan_config
from ganaug.runtime import inference_layout


def rebuild(payload: dict[str, Any], path: str | Path = "checkpoint") -> tuple[GanFamily, Nets]:
    """The family and freshly built networks a ``kind: gan`` payload describes (no weights)."""
    arch = payload.get("arch")
    if isinstance(arch, str) and arch not in FAMILIES:
        raise CheckpointError(f"{path}: made by GAN family {arch!r}, which is neither built in nor "
                              f"installed as a plugin (known: {', '.join(FAMILIES)}); install "
                              f"the package that provides it")
    try:
        cfg = gan_config(payload["config"], "gan", f"{path} (config)")
        family = family_for(cfg, payload["num_classes"], tuple(payload["image_shape"]))
        torch.manual_seed(0)  # the weights are overwritten; the draw need only be repeatable
        return family, family.build()
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild the GAN ({type(exc).__name__}: {exc}); "
                              f"it was written by another version of this project") from exc


def load_gan(path: str | Path, device: torch.device | str = "cpu", raw: bool = False
             ) -> LoadedGan:
    """Rebuild a GAN from its checkpoint, in eval mode and laid out for inference on ``device``
    (:func:`ganaug.runtime.inference_layout`); ``raw=True`` asks for the trained weights instead
    of their moving average."""
    payload = load_checkpoint(path, kind="gan")
    family, nets = rebuild(payload, path)
    key = "generator_raw" if raw and payload.get("generator_raw") is not None else "generator"
    load_state(nets.generator, payload[key], path, key.replace("_", " "))
    load_state(nets.discriminator, payload["discriminator"], path, "discriminator")
    nets = inference_layout(nets.to(device), device).eval()
    return LoadedGan(family, nets.generator, nets.discriminator, payload)
