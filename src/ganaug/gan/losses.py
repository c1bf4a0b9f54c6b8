"""GAN losses as pure functions of discriminator outputs (logits or critic values, shape (N,)),
of discriminator features, or of a critic and the points it is evaluated at."""

from __future__ import annotations

from collections.abc import Callable

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
    """Generator loss of WGAN: -E[C(G(z))]."""
    return -fake.mean()


def d_loss_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the discriminator (Lim & Ye 2017; SNGAN, BigGAN):
    ``E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``."""
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def g_loss_hinge(fake: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the generator: ``-E[D(G(z))]``."""
    return -fake.mean()


def gradient_penalty(critic: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                     real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor,
                     generator: torch.Generator) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017): ``E[(||grad_x C(x_hat, y)||_2 - 1)^2]``.

    ``x_hat = eps * real + (1 - eps) * fake`` with one ``eps ~ U[0, 1)`` per image, drawn from
    ``generator`` (on its own device, then moved to the images'). ``real`` and ``fake`` are
    ``(N, C, H, W)`` in [-1, 1], ``y`` the labels ``(N,)`` the critic is conditioned on. The result
    is a scalar with a graph back to the critic's parameters (``create_graph``), so it trains it.
    """
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=generator, device=generator.device)
    eps = eps.to(real.device, real.dtype)                           # (N, 1, 1, 1)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat, y).sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1) ** 2).mean()      # (N,) -> ()


def feature_matching_loss(real: torch.Tensor, fake: torch.Tensor,
                          labels: torch.Tensor | None = None) -> torch.Tensor:
    """Feature matching (Salimans et al. 2016): ``||mean f(x) - mean f(G(z))||_2^2``.

    ``real`` and ``fake`` are discriminator features ``(N, F)`` and ``(M, F)``. With ``labels``
    (one per row of both, so N == M and the batches share their labels), the means are taken per
    class and the squared distances averaged with the classes' frequencies in the batch, so a
    conditional generator is pulled towards each class's features and not only the overall mean.
    """
    if labels is None:
        return (real.mean(0) - fake.mean(0)).pow(2).sum()
    if real.shape[0] != fake.shape[0] or labels.shape[0] != real.shape[0]:
        raise ValueError(f"feature_matching_loss: labels {tuple(labels.shape)} must have one "
                         f"entry per row of real {tuple(real.shape)} and fake {tuple(fake.shape)}")
    classes, inverse, counts = labels.unique(return_inverse=True, return_counts=True)
    k = len(classes)
    # Per-class sums by scatter: (K, F); then means
    diff = torch.zeros(k, real.shape[1], dtype=real.dtype, device=real.device)
    diff = diff.index_add(0, inverse, real - fake) / counts[:, None].to(real.dtype)
    weights = counts.to(real.dtype) / labels.shape[0]               # (K,)
    return (weights * diff.pow(2).sum(1)).sum()
