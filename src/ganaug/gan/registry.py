"""GAN architectures by name: what to build and which losses train it; and GAN checkpoints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganaug.gan.losses import d_loss_bce, d_loss_wasserstein, g_loss_bce, g_loss_wasserstein
from ganaug.gan.models import Discriminator, Generator, PerClassDiscriminator, PerClassGenerator
from ganaug.models.checkpoint import CheckpointError, load_checkpoint, load_state
from ganaug.registry import Registry


@dataclass(frozen=True)
class GanSpec:
    """How one GAN family is built and trained.

    ``disc_norm`` is the discriminator's normalisation; ``gradient_penalty`` says whether the
    training loop adds ``gan.gp_weight`` x :func:`~ganaug.gan.losses.gradient_penalty` to the
    discriminator (critic) loss.
    """

    d_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g_loss: Callable[[torch.Tensor], torch.Tensor]
    disc_norm: str = "batch"
    gradient_penalty: bool = False


GANS: Registry[Callable[[], GanSpec]] = Registry("GAN")


@GANS.register("dcgan")
def dcgan() -> GanSpec:
    """DCGAN (Radford et al. 2016): BCE losses, batch norm in both networks.

    Usual params: ``lr_g = lr_d = 2e-4``, ``beta1 = 0.5``, ``beta2 = 0.999``, ``n_critic = 1``.
    """
    return GanSpec(d_loss=d_loss_bce, g_loss=g_loss_bce, disc_norm="batch")


@GANS.register("wgan_gp")
def wgan_gp() -> GanSpec:
    """WGAN-GP (Gulrajani et al. 2017): Wasserstein losses with a gradient penalty on the critic.

    The critic has layer norm, not batch norm (the penalty is per image, and batch norm makes
    each output depend on the rest of the batch). Usual params: ``lr_g = lr_d = 1e-4``,
    ``beta1 = 0.0``, ``beta2 = 0.9``, ``n_critic = 5``, ``gp_weight = 10``.
    """
    return GanSpec(d_loss=d_loss_wasserstein, g_loss=g_loss_wasserstein, disc_norm="layer",
                   gradient_penalty=True)


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
              image_shape: tuple[int, int, int], per_class: bool = False
              ) -> tuple[nn.Module, nn.Module, dict, dict]:
    """Return ``(generator, discriminator, gen_kwargs, disc_kwargs)`` for ``arch``.

    ``image_shape`` is ``(C, H, W)`` with ``H == W``. With ``per_class``, the networks are
    :class:`PerClassGenerator` / :class:`PerClassDiscriminator` (one independent pair per class),
    built from the same keyword arguments.
    """
    spec = GANS.get(arch)()
    c, h, w = image_shape
    if h != w:
        raise ValueError(f"GAN images must be square, got {h}x{w}")
    gen_kwargs = {"z_dim": z_dim, "num_classes": num_classes, "out_channels": c,
                  "image_size": h, "width": width}
    disc_kwargs = {"num_classes": num_classes, "in_channels": c, "image_size": h,
                   "width": width, "norm": spec.disc_norm}
    gen_cls, disc_cls = _classes(per_class)
    gen, disc = gen_cls(**gen_kwargs), disc_cls(**disc_kwargs)
    gen.apply(dcgan_init)
    disc.apply(dcgan_init)
    return gen, disc, gen_kwargs, disc_kwargs


def _classes(per_class: bool) -> tuple[type[nn.Module], type[nn.Module]]:
    return (PerClassGenerator, PerClassDiscriminator) if per_class else (Generator, Discriminator)


def gan_payload(arch: str, generator: nn.Module, discriminator: nn.Module, gen_kwargs: dict,
                disc_kwargs: dict, *, per_class: bool = False, generator_kind: str = "raw",
                raw_generator: nn.Module | None = None, meta: dict | None = None
                ) -> dict[str, Any]:
    """The ``kind: gan`` checkpoint that :func:`load_gan` reads.

    ``generator`` is the one ``generate`` uses; ``generator_kind`` says which it is (``"ema"``:
    an exponential moving average of the trained weights, ``"raw"``: the trained weights). With
    an EMA generator, ``raw_generator`` may be kept next to it under ``generator_raw``.
    """
    def cpu(m: nn.Module) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu() for k, v in m.state_dict().items()}

    return {
        "kind": "gan", "arch": arch, "per_class": per_class, "generator_kind": generator_kind,
        "gen_kwargs": dict(gen_kwargs), "disc_kwargs": dict(disc_kwargs),
        "generator": cpu(generator), "discriminator": cpu(discriminator),
        "generator_raw": None if raw_generator is None else cpu(raw_generator),
        "meta": dict(meta or {}),
    }


def load_gan(path: str | Path, device: torch.device | str = "cpu", raw: bool = False
             ) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """Rebuild ``(generator, discriminator, payload)`` from a GAN checkpoint, in eval mode.

    The generator is the one the checkpoint marks for use (``payload["generator_kind"]``: the EMA
    one when training kept an average); ``raw=True`` asks for the raw trained weights instead.
    """
    payload = load_checkpoint(path, kind="gan")
    gen_cls, disc_cls = _classes(bool(payload.get("per_class", False)))
    try:
        gen = gen_cls(**payload["gen_kwargs"])
        disc = disc_cls(**payload["disc_kwargs"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot rebuild the GAN ({exc})") from exc
    key = "generator"
    if raw and payload.get("generator_raw") is not None:
        key = "generator_raw"
    load_state(gen, payload[key], path, key.replace("_", " "))
    load_state(disc, payload["discriminator"], path, "discriminator")
    return gen.to(device).eval(), disc.to(device).eval(), payload
