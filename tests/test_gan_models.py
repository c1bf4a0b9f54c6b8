"""The GAN family's pieces on hand-computable cases: the gradient penalty, the EMA update, the
per-class networks' dispatch, and the wgan_gp critic's lack of batch norm."""

from __future__ import annotations

import pytest
import torch
from gancfg import gan_cfg
from torch import nn

from ganaug.gan import FAMILIES, family_for
from ganaug.gan.losses import gradient_penalty
from ganaug.gan.models import Discriminator, Generator, PerClassDiscriminator, PerClassGenerator
from ganaug.gan.train import ema_update

pytestmark = pytest.mark.usefixtures("one_thread")  # fixture in conftest.py


def linear_critic(w: torch.Tensor):
    """C(x, y) = <w, x>: its gradient is w everywhere, whatever the label."""
    return lambda x, y: (x * w).flatten(1).sum(1)


@pytest.mark.parametrize(("norm", "expected"), [(5.0, 16.0), (1.0, 0.0), (0.5, 0.25)])
def test_gradient_penalty_of_a_linear_critic_is_exact(norm, expected):
    w = torch.randn(1, 3, 3, generator=torch.Generator().manual_seed(1))
    w = w / w.norm() * norm
    real, fake = torch.rand(8, 1, 3, 3) * 2 - 1, torch.rand(8, 1, 3, 3) * 2 - 1
    y = torch.zeros(8, dtype=torch.long)
    gp = gradient_penalty(linear_critic(w), real, fake, y, torch.Generator().manual_seed(0))
    assert gp.shape == ()
    assert gp.item() == pytest.approx(expected, rel=1e-5, abs=1e-10)


def test_gradient_penalty_is_seeded_by_its_generator_alone():
    def critic(x, y):  # not linear: the interpolation points matter
        return x.flatten(1).pow(3).sum(1)

    real, fake = torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2)
    y = torch.zeros(4, dtype=torch.long)
    a = gradient_penalty(critic, real, fake, y, torch.Generator().manual_seed(3))
    torch.manual_seed(123)  # the global generator plays no part
    b = gradient_penalty(critic, real, fake, y, torch.Generator().manual_seed(3))
    c = gradient_penalty(critic, real, fake, y, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_ema_update_by_hand():
    ema, model = nn.BatchNorm1d(2), nn.BatchNorm1d(2)
    with torch.no_grad():
        ema.weight.zero_()
        model.weight.fill_(1.0)
    model.num_batches_tracked.fill_(7)
    ema_update(ema, model, decay=0.999, step=0)  # ramp: d = min(0.999, 1/10) = 0.1
    assert torch.allclose(ema.weight, torch.full((2,), 0.9))
    assert ema.num_batches_tracked.item() == 7  # integer buffers are copied
    ema_update(ema, model, decay=0.5, step=10_000)  # d = decay once the ramp is past it
    assert torch.allclose(ema.weight, torch.full((2,), 0.95))
    assert torch.equal(model.weight, torch.ones(2))  # the trained model is untouched


@pytest.mark.parametrize("size", [8, 28, 48])
def test_per_class_networks_dispatch_rows_to_their_labels_member(size):
    torch.manual_seed(0)
    gen = PerClassGenerator(z_dim=4, num_classes=3, out_channels=1, image_size=size, width=2).eval()
    disc = PerClassDiscriminator(num_classes=3, in_channels=1, image_size=size, width=2).eval()
    assert all(isinstance(m, Generator) and m.num_classes == 1 for m in gen.members)
    assert all(isinstance(m, Discriminator) for m in disc.members)
    z, y = torch.randn(5, 4), torch.tensor([2, 0, 2, 1, 0])
    with torch.no_grad():
        x = gen(z, y)
        realism = disc(x, y)
        for i in range(5):
            zero = torch.zeros(1, dtype=torch.long)
            assert torch.allclose(x[i], gen.members[int(y[i])](z[i:i + 1], zero)[0], atol=1e-6)
            assert torch.allclose(realism[i], disc.members[int(y[i])](x[i:i + 1], zero)[0])
    assert x.shape == (5, 1, size, size) and realism.shape == (5,)
    with pytest.raises(IndexError, match=r"\[0, 3\)"):
        gen(z[:1], torch.tensor([3]))


@pytest.mark.parametrize("per_class", [False, True])
def test_wgan_gp_critic_has_no_batch_norm(per_class):
    cfg = gan_cfg("wgan_gp", z_dim=4, width=2, per_class=per_class)
    disc = family_for(cfg, 2, (1, 8, 8)).build().discriminator
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in disc.modules())
    # and so each image's critic value does not depend on the rest of the batch
    disc.train()
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 0, 1])
    assert torch.allclose(disc(x, y)[:2], disc(x[:2], y[:2]), atol=1e-6)


def test_every_noise_gan_builds_per_class_at_fer_size():
    for name in ("dcgan", "wgan_gp"):
        nets = family_for(gan_cfg(name, z_dim=4, width=2, per_class=True), 2,
                          (1, 48, 48)).build()
        z, y = torch.randn(4, 4), torch.tensor([0, 1, 1, 0])
        out = nets.generator(z, y)
        assert out.shape == (4, 1, 48, 48) and nets.discriminator(out, y).shape == (4,)
        assert len(nets.generator.members) == 2
    assert "dcgan" in FAMILIES
