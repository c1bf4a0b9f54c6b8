"""``stargan``: image-to-image expression translation in the shape of StarGAN v1 (Choi et al. 2018).

- Generator ``G(x, y)``: the source image with the target label tiled as one-hot planes and
  concatenated to it; a 7x7 conv, down-sampling convs, ``res_blocks`` residual blocks,
  up-sampling (nearest, then a 3x3 conv: no checkerboard), a 7x7 conv and tanh; instance norm
  throughout. ``(N, C, H, W)`` in [-1, 1]
  in and out.
- Discriminator: a PatchGAN (strided 4x4 convs, LeakyReLU 0.01) with two heads: a realism map
  ``(N, 1, h, w)`` and class logits ``(N, K)``.
- Losses: WGAN-GP on the realism head; domain classification (cross-entropy of the class head:
  the real image's own label in the discriminator's step, the target label in the generator's);
  cycle reconstruction ``|x - G(G(x, y_target), y_source)|_1``. Target labels are the batch's
  labels shuffled, as in the paper.

Generation translates real training images: every pool image is a real image of another class
turned into its intended class; the pool records which (``sources.npy``), and since one
(source, target) pair always gives the same image, a class gets at most as many distinct
images as there are real images of the other classes.

Sizes: 48x48 faces go down twice (to 12x12, ``4 x width`` channels) and the PatchGAN to 3x3;
the bundled 8x8 digits go down once (to 4x4) and the PatchGAN to 2x2, so the same code runs on
both. Its own knobs (``gan.stargan``, :class:`StarganConfig`): ``gp_weight``, ``lambda_cls``,
``lambda_rec``, ``res_blocks``. Usual params: ``lr_g = lr_d = 1e-4``, ``beta1 = 0.5``,
``beta2 = 0.999``, ``n_critic = 5``, ``gp_weight = 10``, ``lambda_cls = 1``, ``lambda_rec = 10``,
``width = 64`` (``res_blocks = 6``) in the paper; on a CPU ``width`` 16-32 and ``res_blocks`` 2-3.
Scores: ``realism`` (the mean of the realism map) and ``d_confidence`` (the class head's
probability of the intended label).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic.dataclasses import dataclass as strict_dataclass
from torch import nn

from ganaug.gan.family import FAMILIES, GanFamily, Nets, Sampler, TranslationSampler
from ganaug.gan.losses import gradient_penalty
from ganaug.params import STRICT, positive


@strict_dataclass(config=STRICT, frozen=True)
class StarganConfig:
    """``gan.stargan``: the loss weights and the generator's depth."""

    # Weight of the gradient penalty on the realism head (a WGAN-GP critic).
    gp_weight: float = 10.0
    # Weights of the domain-classification and the cycle-reconstruction losses.
    lambda_cls: float = 1.0
    lambda_rec: float = 10.0
    # Residual blocks of the generator, between its down- and up-sampling.
    res_blocks: int = 3

    def __post_init__(self) -> None:
        positive(res_blocks=self.res_blocks)
        for key in ("gp_weight", "lambda_cls", "lambda_rec"):
            v = getattr(self, key)
            if not v >= 0:
                raise ValueError(f"{key}: must be a finite number >= 0, got {v}")


def _norm(ch: int) -> nn.Module:
    return nn.InstanceNorm2d(ch, affine=True, track_running_stats=False)


def generator_downs(image_size: int) -> int:
    """Down-samplings of the generator: 2 from 16 pixels up (the paper's), else 1."""
    return 2 if image_size >= 16 and image_size % 4 == 0 else 1


def patch_downs(image_size: int) -> tuple[int, int]:
    """``(n, s)``: the PatchGAN halves the size ``n`` times while it stays even and >= 4, ending
    at ``s`` (48 -> 4 halvings, 3x3; 8 -> 2, 2x2)."""
    n, s = 0, image_size
    while s % 2 == 0 and s >= 4 and n < 6:
        n, s = n + 1, s // 2
    return n, s


class ResidualBlock(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1, bias=False), _norm(ch), nn.ReLU(inplace=True),
            nn.Conv2d(ch, ch, 3, padding=1, bias=False), _norm(ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class StarGenerator(nn.Module):
    def __init__(self, num_classes: int, channels: int, image_size: int, width: int = 32,
                 res_blocks: int = 3) -> None:
        super().__init__()
        if image_size % 2 ** generator_downs(image_size):
            raise ValueError(f"image size {image_size} cannot be halved "
                             f"{generator_downs(image_size)} times")
        self.num_classes = num_classes
        layers: list[nn.Module] = [nn.Conv2d(channels + num_classes, width, 7, padding=3,
                                             bias=False), _norm(width), nn.ReLU(inplace=True)]
        ch = width
        for _ in range(generator_downs(image_size)):  # state size: ch x s -> 2ch x s/2
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), _norm(ch * 2),
                       nn.ReLU(inplace=True)]
            ch *= 2
        layers += [ResidualBlock(ch) for _ in range(res_blocks)]
        for _ in range(generator_downs(image_size)):  # state size: ch x s -> ch/2 x 2s
            # Nearest up-sampling then a 3x3 conv, not a 4x4 stride-2 transposed conv: the
            # transposed conv's uneven overlap prints a checkerboard (Odena et al. 2016), which
            # on 48x48 faces trained for a few thousand steps stays plainly visible.
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv2d(ch, ch // 2, 3, padding=1, bias=False), _norm(ch // 2),
                       nn.ReLU(inplace=True)]
            ch //= 2
        layers += [nn.Conv2d(ch, channels, 7, padding=3, bias=False), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(y, self.num_classes).to(x.dtype)                    # (N, K)
        planes = onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])         # (N, K, H, W)
        return self.body(torch.cat([x, planes], dim=1))                        # (N, C, H, W)


class PatchDiscriminator(nn.Module):
    """``x -> (realism map (N, 1, s, s), class logits (N, K))``."""

    def __init__(self, num_classes: int, channels: int, image_size: int, width: int = 32) -> None:
        super().__init__()
        n, s = patch_downs(image_size)
        layers: list[nn.Module] = []
        ch_in, ch = channels, width
        for _ in range(n):  # state size: ch_in x s -> ch x s/2
            layers += [nn.Conv2d(ch_in, ch, 4, 2, 1), nn.LeakyReLU(0.01)]
            ch_in, ch = ch, ch * 2
        self.body = nn.Sequential(*layers)
        self.src = nn.Conv2d(ch_in, 1, 3, padding=1, bias=False)
        self.cls = nn.Conv2d(ch_in, num_classes, s, bias=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.src(h), self.cls(h).flatten(1)


@FAMILIES.register("stargan")
class StarGAN(GanFamily):
    """StarGAN v1: translation by target label, PatchGAN with a class head, WGAN-GP + domain
    classification + cycle reconstruction losses."""

    name = "stargan"
    config = StarganConfig
    translates = True
    sign_calibrated = False  # its realism head is a WGAN-GP critic
    score_names = ("realism", "d_confidence")

    @classmethod
    def check_config(cls, cfg) -> None:
        if cfg.warmup_steps:
            raise ValueError("warmup_steps: the feature-matching warm-up is for noise-to-image "
                             "families; set it to 0 for stargan")

    def check(self) -> None:
        super().check()
        if self.num_classes < 2:
            raise ValueError("arch: stargan translates between classes; it needs at least two")
        size = self.image_shape[1]
        if size % 2 ** generator_downs(size) or patch_downs(size)[0] == 0:
            raise ValueError(f"arch: stargan cannot take {size}x{size} images (the generator "
                             f"halves them {generator_downs(size)} times, the PatchGAN at "
                             f"least once)")

    def build(self) -> Nets:
        c, h, _ = self.image_shape
        return Nets(StarGenerator(self.num_classes, c, h, self.cfg.width, self.knobs.res_blocks),
                    PatchDiscriminator(self.num_classes, c, h, self.cfg.width))

    def _targets(self, y: torch.Tensor, ctx: Any) -> torch.Tensor:
        perm = torch.randperm(len(y), generator=ctx.g, device=ctx.g.device).to(y.device)
        return y[perm]

    def d_loss(self, nets: Nets, data: Any, ctx: Any) -> tuple[torch.Tensor, dict]:
        cfg, knobs = self.cfg, self.knobs
        real = data.batch(cfg.batch_size, ctx.g)
        target = self._targets(real.y, ctx)
        with torch.no_grad():
            fake = nets.generator(real.x, target)                     # (B, C, H, W)
        real_a, fake_a = ctx.augment(real.x), ctx.augment(fake)
        src_real, cls_real = nets.discriminator(real_a)              # (B, 1, s, s), (B, K)
        src_fake, _ = nets.discriminator(fake_a)
        d_real, d_fake = src_real.flatten(1).mean(1), src_fake.flatten(1).mean(1)  # (B,)
        loss_cls = F.cross_entropy(cls_real, real.y)
        gp = gradient_penalty(lambda x, y: nets.discriminator(x)[0].flatten(1).sum(1),
                              real_a, fake_a, real.y, ctx.g)
        loss = (d_fake.mean() - d_real.mean() + knobs.lambda_cls * loss_cls + knobs.gp_weight * gp
                + ctx.regularize(d_real, d_fake))
        return loss, {"d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean(),
                      "d_cls": loss_cls.detach(), "gp": gp.detach()}

    def g_loss(self, nets: Nets, data: Any, ctx: Any, warmup: bool) -> tuple[torch.Tensor, dict]:
        cfg, knobs = self.cfg, self.knobs
        real = data.batch(cfg.batch_size, ctx.g)
        target = self._targets(real.y, ctx)
        fake = nets.generator(real.x, target)
        src_fake, cls_fake = nets.discriminator(ctx.augment(fake))
        loss_adv = -src_fake.mean()
        loss_cls = F.cross_entropy(cls_fake, target)
        loss_rec = cycle_loss(real.x, nets.generator(fake, real.y))  # translate back
        loss = loss_adv + knobs.lambda_cls * loss_cls + knobs.lambda_rec * loss_rec
        return loss, {"loss_g": loss_adv.detach(), "g_cls": loss_cls.detach(),
                      "g_rec": loss_rec.detach()}

    def sampler(self, generator: nn.Module, real_x: np.ndarray, real_y: np.ndarray,
                device: torch.device) -> Sampler:
        return TranslationSampler(generator, real_x, real_y, device)

    def disc_scores(self, discriminator: nn.Module, x: torch.Tensor, y: torch.Tensor
                    ) -> dict[str, torch.Tensor]:
        src, cls = discriminator(x)
        conf = torch.softmax(cls.float(), dim=1).gather(1, y[:, None]).squeeze(1)
        return {"realism": src.flatten(1).mean(1), "d_confidence": conf}


def cycle_loss(x: torch.Tensor, reconstructed: torch.Tensor) -> torch.Tensor:
    """StarGAN's reconstruction loss ``mean |x - G(G(x, y_target), y_source)|`` given the
    reconstruction; 0 for a generator that returns its input."""
    return (x - reconstructed).abs().mean()
