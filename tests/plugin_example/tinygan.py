"""A GAN family, a selection strategy and a dataset kind for ganaug, from outside it."""

from typing import Literal

import numpy as np
import torch
from pydantic.dataclasses import dataclass
from torch import nn

from ganaug.data.base import RawDataset, dataset_kind
from ganaug.gan import GanFamily, Nets, NoiseSampler
from ganaug.gan.losses import d_loss_bce, g_loss_bce
from ganaug.params import STRICT
from ganaug.selection import per_class, strategy


@dataclass(config=STRICT, frozen=True)
class TinyConfig:  # gan.tiny: the family's own knobs, validated as strictly as ganaug's
    z_dim: int = 16
    hidden: int = 64


class Generator(nn.Module):  # (z (B, z_dim), y (B,)) -> (B, C, H, W) in [-1, 1]
    def __init__(self, z_dim: int, num_classes: int, shape: tuple, hidden: int) -> None:
        super().__init__()
        self.shape, self.embed = shape, nn.Embedding(num_classes, z_dim)
        self.net = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, int(np.prod(shape))), nn.Tanh())

    def forward(self, z, y):
        return self.net(z * self.embed(y)).view(-1, *self.shape)


class Discriminator(nn.Module):  # (x (B, C, H, W) in [-1, 1], y (B,)) -> realism logits (B,)
    def __init__(self, num_classes: int, shape: tuple, hidden: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(shape)), hidden),
                                  nn.LeakyReLU(0.2))
        self.out, self.embed = nn.Linear(hidden, 1), nn.Embedding(num_classes, hidden)

    def forward(self, x, y):
        h = self.body(x)
        return self.out(h).squeeze(1) + (self.embed(y) * h).sum(1)  # projection


class TinyGAN(GanFamily):
    """An MLP conditional GAN with BCE losses; the shared loop does the rest."""

    config = TinyConfig
    sign_calibrated = True  # BCE logits: > 0 means "real", so ADA may read its sign

    @classmethod
    def check_config(cls, cfg):
        if cfg.warmup_steps:
            raise ValueError("warmup_steps: tiny has no feature-matching warm-up; set it to 0")

    def build(self):
        k = self.knobs
        return Nets(Generator(k.z_dim, self.num_classes, self.image_shape, k.hidden),
                    Discriminator(self.num_classes, self.image_shape, k.hidden))

    def _fake(self, nets, y, ctx):
        z = torch.randn(len(y), self.knobs.z_dim, generator=ctx.g, device=ctx.g.device)
        return nets.generator(z.to(y.device), y)

    def d_loss(self, nets, data, ctx):
        real = data.batch(self.cfg.batch_size, ctx.g)
        with torch.no_grad():
            fake = self._fake(nets, real.y, ctx)
        # Every discriminator call through ctx.disc (DiffAugment/ADA), LeCam through regularize.
        d_real = ctx.disc(nets.discriminator, real.x, real.y)
        d_fake = ctx.disc(nets.discriminator, fake, real.y)
        loss = d_loss_bce(d_real, d_fake) + ctx.regularize(d_real, d_fake)
        return loss, {"d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}

    def g_loss(self, nets, data, ctx, warmup):
        y = data.batch(self.cfg.batch_size, ctx.g).y
        loss = g_loss_bce(ctx.disc(nets.discriminator, self._fake(nets, y, ctx), y))
        return loss, {"loss_g": loss.detach()}

    def sampler(self, generator, real_x, real_y, device):
        return NoiseSampler(generator, self.knobs.z_dim, device)

    def disc_scores(self, discriminator, x, y):
        return {"realism": discriminator(x, y)}


@dataclass(config=STRICT, frozen=True)
class EveryNthConfig:  # select.every_nth
    step: int = 2


@strategy(EveryNthConfig)
def every_nth(candidates, k, cfg):
    """Every step-th pool image of each class, in pool order: a deterministic control."""
    return per_class(candidates.scores, k,
                     lambda rows, n, c: rows["index"].to_numpy()[::cfg.step][:n])


@dataclass(config=STRICT, frozen=True)
class MirroredConfig:  # datasets.<name>: {kind: mirrored_digits}
    kind: Literal["mirrored_digits"]


@dataset_kind(MirroredConfig)
def mirrored_digits(cfg):
    """scikit-learn's digits mirrored left to right: a cross-dataset target."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = np.rint(d.images[:, None, :, ::-1] * (255 / 16)).astype(np.uint8)  # (N, 1, 8, 8)
    return RawDataset(x=x, y=d.target.astype(np.int64), classes=[str(i) for i in range(10)])
