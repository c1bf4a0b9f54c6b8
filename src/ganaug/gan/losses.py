"""GAN losses as pure functions of discriminator outputs (logits or critic values, shape (N,))."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def d_loss_bce(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Discriminator loss of the original GAN: -log D(x) - log(1 - D(G(z)))."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_loss_bce(fake: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: -log D(G(z))."""
    return F.softplus(-fake).mean()


def d_loss_wasserstein(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Critic loss of WGAN: E[C(G(z))] - E[C(x)] (minimised)."""
    return fake.mean() - real.mean()


def g_loss_wasserstein(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()
