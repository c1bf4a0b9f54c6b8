"""Noise-to-image families on the DCGAN-style networks of :mod:`ganaug.gan.models`: ``dcgan`` and
``wgan_gp``, each as one conditional GAN or (``gan.<arch>.per_class``) one independent GAN per
class. Their own knobs: :class:`NoiseConfig` (``gan.dcgan``), :class:`WganGpConfig`
(``gan.wgan_gp``).

A training step works on a list of *pairs* (generator, discriminator, the rows of the real images
they learn from): one pair holding all classes for a conditional GAN, one pair per class with
``per_class``. Pairs share no weights, so summing their losses before one backward pass and one
Adam step trains each exactly as if it were trained alone (Adam is element-wise); every pair gets
``gan.steps`` generator updates with batches of ``gan.batch_size`` of its own images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic.dataclasses import dataclass as strict_dataclass
from torch import nn

from ganaug.errors import ParamsError
from ganaug.gan.family import FAMILIES, GanFamily, Nets, NoiseSampler, Sampler
from ganaug.gan.losses import (
    d_loss_bce,
    d_loss_wasserstein,
    feature_matching_loss,
    g_loss_bce,
    g_loss_wasserstein,
    gradient_penalty,
)
from ganaug.gan.models import (
    Discriminator,
    Generator,
    PerClassDiscriminator,
    PerClassGenerator,
    plan_upsampling,
)
from ganaug.params import STRICT, positive


@strict_dataclass(config=STRICT, frozen=True)
class NoiseConfig:
    """``gan.dcgan``: the noise and whether there is one GAN per class."""

    # Dimension of the noise z the generator maps to an image.
    z_dim: int = 64
    # One independent generator/discriminator pair per class, each trained only on its class's
    # images (the published per-class DCGAN setup), instead of one conditional GAN. Each pair
    # gets gan.steps generator updates (K x the compute).
    per_class: bool = False

    def __post_init__(self) -> None:
        positive(z_dim=self.z_dim)


@strict_dataclass(config=STRICT, frozen=True)
class WganGpConfig(NoiseConfig):
    """``gan.wgan_gp``: :class:`NoiseConfig`'s knobs and the gradient penalty's weight."""

    # Weight of the gradient penalty in the critic loss.
    gp_weight: float = 10.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.gp_weight >= 0:
            raise ValueError(f"gp_weight: must be a finite number >= 0, got {self.gp_weight}")


@dataclass
class _Pair:
    gen: nn.Module         # (z (B, z_dim), y (B,)) -> (B, C, H, W) in [-1, 1]
    disc: nn.Module        # (x (B, C, H, W) in [-1, 1], y (B,)) -> (B,); has features()/head()
    rows: torch.Tensor | None  # indices of the real images it learns from (None: all)
    member: bool           # a per-class member: conditioned on label 0


def dcgan_init(m: nn.Module) -> None:
    """Weights from N(0, 0.02), batch-norm scales from N(1, 0.02), as in the DCGAN paper."""
    if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class NoiseFamily(GanFamily):
    """``G(z, y)`` with a projection discriminator ``D(x, y)``; subclasses give the losses.

    The discriminator exposes ``features(x)`` and ``head(h, y)`` so the feature-matching warm-up
    can match penultimate features.
    """

    d_loss_fn: ClassVar[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]
    g_loss_fn: ClassVar[Callable[[torch.Tensor], torch.Tensor]]
    config = NoiseConfig
    disc_norm: ClassVar[str] = "batch"
    uses_gradient_penalty: ClassVar[bool] = False

    @property
    def per_class(self) -> bool:
        """One GAN per class (``gan.<arch>.per_class``; a family without that knob: never)."""
        return bool(getattr(self.knobs, "per_class", False))

    def check(self) -> None:
        super().check()
        try:
            plan_upsampling(self.image_shape[1])
        except ValueError as exc:
            raise ValueError(f"arch: {self.name}: {exc}") from None

    def build(self) -> Nets:
        cfg, knobs, (c, h, _) = self.cfg, self.knobs, self.image_shape
        gen_cls, disc_cls = ((PerClassGenerator, PerClassDiscriminator) if self.per_class
                             else (Generator, Discriminator))
        gen = gen_cls(knobs.z_dim, self.num_classes, c, h, cfg.width)
        disc = disc_cls(self.num_classes, c, h, cfg.width, self.disc_norm)
        gen.apply(dcgan_init)
        disc.apply(dcgan_init)
        return Nets(gen, disc)

    def _pairs(self, nets: Nets, data: Any) -> list[_Pair]:
        if not self.per_class:
            return [_Pair(nets.generator, nets.discriminator, None, False)]
        pairs = []
        for c in range(self.num_classes):
            rows = (data.y == c).nonzero().squeeze(1)
            if len(rows) == 0:
                raise ParamsError(f"gan.{self.name}.per_class: class {c} has no training images "
                                  f"to train its GAN on; turn per_class off or give every class "
                                  f"images")
            pairs.append(_Pair(nets.generator.members[c], nets.discriminator.members[c], rows,
                               True))
        return pairs

    def _batch(self, p: _Pair, data: Any, ctx: Any) -> tuple[torch.Tensor, torch.Tensor]:
        b = data.batch(self.cfg.batch_size, ctx.g, p.rows)
        return b.x, (torch.zeros_like(b.y) if p.member else b.y)

    def _noise(self, ctx: Any) -> torch.Tensor:
        return torch.randn(self.cfg.batch_size, self.knobs.z_dim, generator=ctx.g,
                           device=ctx.g.device).to(ctx.device)

    def d_loss(self, nets: Nets, data: Any, ctx: Any) -> tuple[torch.Tensor, dict]:
        total, logs = 0.0, []
        for p in self._pairs(nets, data):
            real, y = self._batch(p, data, ctx)                     # (B, C, H, W), (B,)
            z = self._noise(ctx)
            with torch.no_grad():
                fake = p.gen(z, y)                                  # (B, C, H, W) in [-1, 1]
            real_a, fake_a = ctx.augment(real), ctx.augment(fake)
            d_real, d_fake = p.disc(real_a, y), p.disc(fake_a, y)   # (B,), (B,)
            loss = type(self).d_loss_fn(d_real, d_fake) + ctx.regularize(d_real, d_fake)
            rec = {"d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}
            if self.uses_gradient_penalty:
                # On the augmented images, which are all the critic ever sees.
                gp = gradient_penalty(p.disc, real_a, fake_a, y, ctx.g)
                loss = loss + self.knobs.gp_weight * gp
                rec["gp"] = gp.detach()
            total = total + loss  # pairs share no weights: one sum, K gradients
            logs.append(rec)
        return total, _mean(logs)

    def g_loss(self, nets: Nets, data: Any, ctx: Any, warmup: bool) -> tuple[torch.Tensor, dict]:
        total, logs = 0.0, []
        for p in self._pairs(nets, data):
            real, y = self._batch(p, data, ctx)       # labels drawn like the real ones
            z = self._noise(ctx)
            h_fake = p.disc.features(ctx.augment(p.gen(z, y)))                  # (B, F)
            loss_g = type(self).g_loss_fn(p.disc.head(h_fake, y))
            if not warmup:
                total, rec = total + loss_g, {"loss_g": loss_g.detach()}
            else:  # match D's features of real images of the same labels
                with torch.no_grad():
                    h_real = p.disc.features(ctx.augment(real))                 # (B, F)
                loss_fm = feature_matching_loss(h_real, h_fake, y)
                total = total + loss_fm
                rec = {"loss_g": loss_g.detach(), "loss_fm": loss_fm.detach()}
            logs.append(rec)
        return total, _mean(logs)

    def sampler(self, generator: nn.Module, real_x: np.ndarray, real_y: np.ndarray,
                device: torch.device) -> Sampler:
        return NoiseSampler(generator, self.knobs.z_dim, device)

    def disc_scores(self, discriminator: nn.Module, x: torch.Tensor, y: torch.Tensor
                    ) -> dict[str, torch.Tensor]:
        return {"realism": discriminator(x, y)}


def _mean(recs: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([r[k] for r in recs]).mean() for k in recs[0]}


@FAMILIES.register("dcgan")
class DCGAN(NoiseFamily):
    """DCGAN (Radford et al. 2016): BCE losses, batch norm in both networks, a projection
    discriminator. Usual params: ``lr_g = lr_d = 2e-4``, ``beta1 = 0.5``, ``beta2 = 0.999``,
    ``n_critic = 1``."""

    name = "dcgan"
    sign_calibrated = True  # BCE logits: D(x) > 0 means p(real) > 1/2
    d_loss_fn = staticmethod(d_loss_bce)
    g_loss_fn = staticmethod(g_loss_bce)


@FAMILIES.register("wgan_gp")
class WGANGP(NoiseFamily):
    """WGAN-GP (Gulrajani et al. 2017): Wasserstein losses with a gradient penalty on the critic.

    The critic has layer norm, not batch norm (the penalty is per image, and batch norm makes
    each output depend on the rest of the batch). Usual params: ``lr_g = lr_d = 1e-4``,
    ``beta1 = 0.0``, ``beta2 = 0.9``, ``n_critic = 5``, ``gp_weight = 10``.
    """

    name = "wgan_gp"
    config = WganGpConfig
    sign_calibrated = False  # a critic: only differences of its outputs mean anything
    d_loss_fn = staticmethod(d_loss_wasserstein)
    g_loss_fn = staticmethod(g_loss_wasserstein)
    disc_norm = "layer"
    uses_gradient_penalty = True
