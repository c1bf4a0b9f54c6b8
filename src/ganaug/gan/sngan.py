"""``sngan``: an SNGAN-style conditional GAN (Miyato et al. 2018; Miyato & Koyama 2018).

- Generator: residual up-sampling blocks with class-conditional batch norm (a per-class scale
  and shift after a parameter-free batch norm), ``G(z, y) -> (N, C, H, W)`` in [-1, 1].
- Discriminator: residual down-sampling blocks with spectral norm on every weight, global sum
  pooling, and a projection head ``D(x, y) = w.h + embed(y).h`` (embedding spectrally
  normalised too).
- Hinge loss for both; no gradient penalty (spectral norm bounds the discriminator).

Its own knobs (``gan.sngan``, :class:`SnganConfig`): ``z_dim``; one conditional GAN only (no
``per_class``: its generator's batch norm and its discriminator's projection are per class
already). Usual params: ``lr_g = lr_d = 2e-4``, ``beta1 = 0.0``, ``beta2 = 0.9``, ``n_critic = 5`` (as in
the paper; with 1 or 2 the discriminator stalled on low-data FER2013, its real and fake scores
never separating: benchmarks/README.md), ``ema_decay = 0.999``; for scarce data add
``diffaugment: [color, translation, cutout]`` and ``lecam_weight: 0.1`` (DiffAugment and LeCam
papers' settings for small datasets). ``width`` is the discriminator's first block's channels and
the generator's last's; each block doubles (halves) it.

Sizes: ``plan_upsampling`` picks the blocks: 48x48 -> 4 blocks from 3x3, 8x8 -> 1 block from 4x4.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic.dataclasses import dataclass as strict_dataclass
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganaug.gan.family import FAMILIES, Nets, NoiseSampler, Sampler
from ganaug.gan.losses import d_loss_hinge, g_loss_hinge
from ganaug.gan.models import plan_upsampling
from ganaug.gan.noise import NoiseFamily
from ganaug.params import STRICT, positive


@strict_dataclass(config=STRICT, frozen=True)
class SnganConfig:
    """``gan.sngan``."""

    # Dimension of the noise z the generator maps to an image.
    z_dim: int = 64

    def __post_init__(self) -> None:
        positive(z_dim=self.z_dim)


class ConditionalBatchNorm(nn.Module):
    """``BN(x) * (1 + gamma[y]) + beta[y]`` with a parameter-free batch norm; gamma, beta start
    at 0 (plain batch norm)."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Embedding(num_classes, channels)
        self.beta = nn.Embedding(num_classes, channels)
        nn.init.zeros_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        g, b = self.gamma(y)[:, :, None, None], self.beta(y)[:, :, None, None]  # (N, C, 1, 1)
        return self.bn(x) * (1 + g) + b


class GBlock(nn.Module):
    """CBN-ReLU-up-conv-CBN-ReLU-conv, plus an up-sampled 1x1 shortcut: ch_in x s -> ch_out x 2s."""

    def __init__(self, ch_in: int, ch_out: int, num_classes: int) -> None:
        super().__init__()
        self.bn1 = ConditionalBatchNorm(ch_in, num_classes)
        self.conv1 = nn.Conv2d(ch_in, ch_out, 3, padding=1)
        self.bn2 = ConditionalBatchNorm(ch_out, num_classes)
        self.conv2 = nn.Conv2d(ch_out, ch_out, 3, padding=1)
        self.skip = nn.Conv2d(ch_in, ch_out, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, y)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), y)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class SNGenerator(nn.Module):
    def __init__(self, z_dim: int, num_classes: int, out_channels: int, image_size: int,
                 width: int = 32) -> None:
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        n_up, self.base = plan_upsampling(image_size)
        chans = [width * 2 ** (n_up - i) for i in range(n_up + 1)]  # 48x48: 16w, 8w, 4w, 2w, w
        self.ch0 = chans[0]
        self.fc = nn.Linear(z_dim, self.ch0 * self.base * self.base)
        self.blocks = nn.ModuleList(GBlock(chans[i], chans[i + 1], num_classes)
                                    for i in range(n_up))
        self.out_bn = nn.BatchNorm2d(chans[-1])
        self.out = nn.Conv2d(chans[-1], out_channels, 3, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, self.ch0, self.base, self.base)   # (N, 2^n w, base, base)
        for block in self.blocks:                                  # each: channels / 2, size x 2
            h = block(h, y)
        return torch.tanh(self.out(F.relu(self.out_bn(h))))       # (N, C, H, W) in [-1, 1]


class DBlock(nn.Module):
    """(ReLU)-SNconv-ReLU-SNconv-avgpool plus an SN 1x1 shortcut: ch_in x s -> ch_out x s/2."""

    def __init__(self, ch_in: int, ch_out: int, first: bool = False) -> None:
        super().__init__()
        self.first = first
        self.conv1 = spectral_norm(nn.Conv2d(ch_in, ch_out, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(ch_out, ch_out, 3, padding=1))
        self.skip = spectral_norm(nn.Conv2d(ch_in, ch_out, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(h))), 2)
        skip = self.skip(F.avg_pool2d(x, 2)) if self.first else F.avg_pool2d(self.skip(x), 2)
        return h + skip


class SNDiscriminator(nn.Module):
    """Spectrally normalised residual discriminator with a projection head."""

    def __init__(self, num_classes: int, in_channels: int, image_size: int, width: int = 32) -> None:
        super().__init__()
        n_down, _ = plan_upsampling(image_size)
        chans = [in_channels] + [width * 2**i for i in range(n_down)]
        self.blocks = nn.Sequential(*(DBlock(chans[i], chans[i + 1], first=i == 0)
                                      for i in range(n_down)))
        self.feature_dim = chans[-1]
        self.linear = spectral_norm(nn.Linear(self.feature_dim, 1))
        self.embed = spectral_norm(nn.Embedding(num_classes, self.feature_dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, F)``: ReLU then global sum pooling of the last block's maps."""
        return F.relu(self.blocks(x)).sum(dim=(2, 3))

    def head(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(1)  # (N,)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x), y)


@FAMILIES.register("sngan")
class SNGAN(NoiseFamily):
    """SNGAN-style: spectral norm, hinge loss, projection discriminator, conditional batch norm."""

    name = "sngan"
    config = SnganConfig
    sign_calibrated = True  # hinge: trained towards D(real) >= 1, D(fake) <= -1
    d_loss_fn = staticmethod(d_loss_hinge)
    g_loss_fn = staticmethod(g_loss_hinge)

    def build(self) -> Nets:
        c, h, _ = self.image_shape
        gen = SNGenerator(self.knobs.z_dim, self.num_classes, c, h, self.cfg.width)
        disc = SNDiscriminator(self.num_classes, c, h, self.cfg.width)
        return Nets(gen, disc)

    def sampler(self, generator: nn.Module, real_x: np.ndarray, real_y: np.ndarray,
                device: torch.device) -> Sampler:
        return NoiseSampler(generator, self.knobs.z_dim, device)

    def disc_scores(self, discriminator: nn.Module, x: torch.Tensor, y: torch.Tensor
                    ) -> dict[str, Any]:
        return {"realism": discriminator(x, y)}
