"""GAN losses on hand-computable discriminator outputs."""

from __future__ import annotations

import math

import pytest
import torch

from ganaug.gan.losses import (
    d_loss_bce,
    d_loss_wasserstein,
    feature_matching_loss,
    g_loss_bce,
    g_loss_wasserstein,
    gradient_penalty,
)

LOG2 = math.log(2.0)


def test_bce_losses_at_zero_logits_are_log_2():
    zeros = torch.zeros(5)
    # D = sigmoid(0) = 1/2: -log(1/2) for the real term and -log(1 - 1/2) for the fake term.
    assert d_loss_bce(zeros, zeros).item() == pytest.approx(2 * LOG2)
    assert g_loss_bce(zeros).item() == pytest.approx(LOG2)


def test_d_loss_bce_matches_binary_cross_entropy_by_hand():
    real = torch.tensor([2.0, -1.0, 0.5])
    fake = torch.tensor([-3.0, 1.5])
    sig = torch.sigmoid
    expected = (-torch.log(sig(real))).mean() + (-torch.log(1 - sig(fake))).mean()
    assert d_loss_bce(real, fake).item() == pytest.approx(expected.item(), rel=1e-6)


def test_g_loss_bce_is_non_saturating_minus_log_d():
    fake = torch.tensor([-2.0, 0.0, 3.0])
    expected = (-torch.log(torch.sigmoid(fake))).mean()
    assert g_loss_bce(fake).item() == pytest.approx(expected.item(), rel=1e-6)
    # Non-saturating: a confident "fake" verdict still gives the generator a large gradient.
    x = torch.tensor([-20.0], requires_grad=True)
    g_loss_bce(x).backward()
    assert x.grad.item() == pytest.approx(-1.0, abs=1e-6)


def test_bce_losses_are_finite_for_extreme_logits():
    big = torch.tensor([1e4, -1e4])
    assert torch.isfinite(d_loss_bce(big, big))
    assert torch.isfinite(g_loss_bce(big))
    # A perfect discriminator: real -> +inf, fake -> -inf gives a loss near zero.
    assert d_loss_bce(torch.tensor([50.0]), torch.tensor([-50.0])).item() == pytest.approx(0, abs=1e-12)


def test_bce_losses_average_over_batches_of_different_sizes():
    # Each term is a mean over its own batch, so the two batch sizes need not match.
    real = torch.tensor([0.0, 0.0, 0.0, 0.0])
    fake = torch.tensor([100.0])  # D fooled completely: -log(1 - sigmoid(100)) ~= 100
    assert d_loss_bce(real, fake).item() == pytest.approx(LOG2 + 100.0, rel=1e-6)


def test_wasserstein_losses_by_hand():
    real = torch.tensor([1.0, 2.0, 3.0])  # mean 2
    fake = torch.tensor([-1.0, 0.5])  # mean -0.25
    assert d_loss_wasserstein(real, fake).item() == pytest.approx(-0.25 - 2.0)
    assert g_loss_wasserstein(fake).item() == pytest.approx(0.25)
    zero = torch.zeros(4)
    assert d_loss_wasserstein(zero, zero).item() == 0.0


def test_wasserstein_gradients_push_real_up_and_fake_down():
    real = torch.tensor([1.0, 2.0], requires_grad=True)
    fake = torch.tensor([0.0, 0.0, 0.0, 0.0], requires_grad=True)
    d_loss_wasserstein(real, fake).backward()
    assert torch.allclose(real.grad, torch.full((2,), -0.5))
    assert torch.allclose(fake.grad, torch.full((4,), 0.25))
    fake2 = torch.tensor([0.0, 1.0], requires_grad=True)
    g_loss_wasserstein(fake2).backward()
    assert torch.allclose(fake2.grad, torch.full((2,), -0.5))


@pytest.mark.parametrize("fn", [g_loss_bce, g_loss_wasserstein])
def test_generator_losses_return_scalars(fn):
    assert fn(torch.randn(7)).shape == ()


@pytest.mark.parametrize("fn", [d_loss_bce, d_loss_wasserstein])
def test_discriminator_losses_return_scalars(fn):
    assert fn(torch.randn(7), torch.randn(3)).shape == ()


# --------------------------------------------------------------------------------------------
# Gradient penalty and feature matching
# --------------------------------------------------------------------------------------------


def test_gradient_penalty_of_a_linear_critic_is_norm_minus_one_squared():
    # C(x) = <w, x> has gradient w at every point: penalty (||w|| - 1)^2 whatever eps is.
    w = torch.zeros(1, 2, 2)
    w[0, 0, 0], w[0, 1, 1] = 3.0, 4.0  # ||w|| = 5

    def critic(x, y):
        return (x * w).flatten(1).sum(1)

    real, fake = torch.rand(6, 1, 2, 2), torch.rand(6, 1, 2, 2)
    y = torch.zeros(6, dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    assert gradient_penalty(critic, real, fake, y, g).item() == pytest.approx((5 - 1) ** 2)
    unit = w / 5

    def unit_critic(x, y):
        return (x * unit).flatten(1).sum(1)

    assert gradient_penalty(unit_critic, real, fake, y, g).item() == pytest.approx(0.0, abs=1e-12)


def test_gradient_penalty_interpolates_with_one_eps_per_image_from_the_generator():
    # C(x) = ||x||^2 / 2 has gradient x: the penalty is mean (||x_hat|| - 1)^2 at the mix points.
    def critic(x, y):
        return 0.5 * x.flatten(1).pow(2).sum(1)

    real, fake = torch.randn(5, 2, 3, 3), torch.randn(5, 2, 3, 3)
    y = torch.zeros(5, dtype=torch.long)
    eps = torch.rand(5, 1, 1, 1, generator=torch.Generator().manual_seed(7))
    x_hat = eps * real + (1 - eps) * fake
    expected = ((x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean()
    got = gradient_penalty(critic, real, fake, y, torch.Generator().manual_seed(7))
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_gradient_penalty_uses_the_labels_and_trains_the_critic():
    # A class-conditional linear critic: image i's gradient is w[y_i].
    w = torch.tensor([[3.0, 4.0], [0.6, 0.8]], requires_grad=True)  # norms 5 and 1

    def critic(x, y):
        return (x.flatten(1) * w[y]).sum(1)

    real, fake = torch.rand(4, 1, 1, 2), torch.rand(4, 1, 1, 2)
    y = torch.tensor([0, 1, 1, 1])
    gp = gradient_penalty(critic, real, fake, y, torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx((16 + 0 + 0 + 0) / 4)
    gp.backward()  # create_graph: the penalty has a graph back to the critic's weights
    # d/dw0 of (||w0|| - 1)^2 / 4 = 2 (||w0|| - 1) w0 / ||w0|| / 4 * (1 image of class 0)
    assert torch.allclose(w.grad[0], 2 * 4 * torch.tensor([0.6, 0.8]) / 4, atol=1e-5)
    assert torch.allclose(w.grad[1], torch.zeros(2), atol=1e-5)


def test_feature_matching_loss_by_hand():
    real = torch.tensor([[1.0, 0.0], [3.0, 2.0]])  # mean (2, 1)
    fake = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 2.0]])  # mean (0, 1)
    assert feature_matching_loss(real, fake).item() == pytest.approx(4.0)
    assert feature_matching_loss(real, real).item() == 0.0


def test_feature_matching_loss_per_class_by_hand():
    real = torch.tensor([[2.0], [4.0], [10.0]])
    fake = torch.tensor([[0.0], [0.0], [10.0]])
    labels = torch.tensor([0, 0, 1])
    # class 0: mean diff 3 -> 9, weight 2/3; class 1: diff 0, weight 1/3.
    assert feature_matching_loss(real, fake, labels).item() == pytest.approx(6.0)
    # Overall means would hide a per-class mismatch that the conditional version sees.
    swapped = torch.tensor([[10.0], [4.0], [2.0]])
    assert feature_matching_loss(real, swapped).item() == pytest.approx(0.0)
    assert feature_matching_loss(real, swapped, labels).item() > 1
    with pytest.raises(ValueError, match="labels"):
        feature_matching_loss(real, fake[:2], labels)
