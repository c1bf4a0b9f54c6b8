"""GAN architectures by name: what to build and which losses train it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganaug.gan.losses import d_loss_bce, g_loss_bce
from ganaug.gan.models import Discriminator, Generator
from ganaug.models.checkpoint import CheckpointError, load_checkpoint, load_state
from ganaug.registry import Registry


@dataclass(frozen=True)
class GanSpec:
    """How one GAN family is built and trained.

    ``disc_norm`` is the discriminator's normalisation; ``gradient_penalty`` is the weight of a
    penalty term (0: none), added by the training loop.
    """

    d_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g_loss: Callable[[torch.Tensor], torch.Tensor]
    disc_norm: str = "batch"
    gradient_penalty: float = 0.0


GANS: Registry[Callable[[], GanSpec]] = Registry("GAN")


@GANS.register("dcgan")
def dcgan() -> GanSpec:
    return GanSpec(d_loss=d_loss_bce, g_loss=g_loss_bce, disc_norm="batch")


def dcgan_init(m: nn.Module) -> None:
    """Weights from N(0, 0.02), batch-norm scales from N(1, 0.02), as in the DCGAN paper."""
    if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def build_gan(arch: str, z_dim: int, width: int, num_classes: int,
              image_shape: tuple[int, int, int]) -> tuple[nn.Module, nn.Module, dict, dict]:
    """Return ``(generator, discriminator, gen_kwargs, disc_kwargs)`` for ``arch``."""
    spec = GANS.get(arch)()
    c, h, _ = image_shape
    gen_kwargs = {"z_dim": z_dim, "num_classes": num_classes, "out_channels": c,
                  "image_size": h, "width": width}
    disc_kwargs = {"num_classes": num_classes, "in_channels": c, "image_size": h,
                   "width": width, "norm": spec.disc_norm}
    gen, disc = Generator(**gen_kwargs), Discriminator(**disc_kwargs)
    gen.apply(dcgan_init)
    disc.apply(dcgan_init)
    return gen, disc, gen_kwargs, disc_kwargs


def load_gan(path: str | Path, device: torch.device | str = "cpu"
             ) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """Rebuild ``(generator, discriminator, payload)`` from a GAN checkpoint, in eval mode."""
    payload = load_checkpoint(path, kind="gan")
    try:
        gen = Generator(**payload["gen_kwargs"])
        disc = Discriminator(**payload["disc_kwargs"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild the GAN ({exc})") from exc
    load_state(gen, payload["generator"], path, "generator")
    load_state(disc, payload["discriminator"], path, "discriminator")
    return gen.to(device).eval(), disc.to(device).eval(), payload
