"""Every registered GAN family (iterated at collection time, so a new family is tested here for
free): build, one training step forward and backward, sampling shapes and range, discriminator
scores, checkpoints; and the data-efficient pieces (DiffAugment, ADA, LeCam), the hinge and
projection terms and StarGAN's cycle loss on hand-computable cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gancfg import SMALL, gan_cfg

from ganaug.checkpoints import save_checkpoint
from ganaug.config import GanConfig
from ganaug.errors import ParamsError
from ganaug.gan import FAMILIES, family_for, gan_config, load_gan
from ganaug.gan.augment import (
    ada_update,
    adjust_color,
    cutout,
    diff_augment,
    lecam_reg,
    translate,
)
from ganaug.gan.losses import d_loss_hinge, g_loss_hinge
from ganaug.gan.stargan import cycle_loss
from ganaug.gan.train import RealData, StepContext, train_gan
from ganaug.synthetic.pool import make_images, pool_labels

pytestmark = pytest.mark.usefixtures("one_thread")  # fixture in conftest.py

CPU = torch.device("cpu")
SHAPES = [(1, 8), (1, 48), (3, 32)]
K = 3


def tiny(name: str, **changes) -> GanConfig:
    return gan_cfg(name, SMALL, **{"width": 4, "steps": 2, "batch_size": 4,
                                   "checkpoint_every": 1, "log_every": 1, **changes})


def real_data(channels: int, size: int, n: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, channels, size, size), dtype=np.uint8)
    return x, np.arange(n) % K


# --------------------------------------------------------------------------------------------
# Every family
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("channels", "size"), SHAPES)
@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_step_forward_backward_sampling_and_scores(name, channels, size):
    cfg = tiny(name, diffaugment=["color", "translation", "cutout"], lecam_weight=0.1)
    family = family_for(cfg, K, (channels, size, size))
    torch.manual_seed(0)
    nets = family.build().train()
    x, y = real_data(channels, size)
    data, g = RealData(x, y, CPU), torch.Generator().manual_seed(0)
    ctx = StepContext(cfg, g, CPU)
    loss_d, logs_d = family.d_loss(nets, data, ctx)
    assert loss_d.shape == () and torch.isfinite(loss_d)
    loss_d.backward()
    assert _grads_finite(nets.discriminator)
    nets.zero_grad()
    loss_g, logs_g = family.g_loss(nets, data, ctx, warmup=False)
    assert torch.isfinite(loss_g) and "loss_g" in logs_g
    loss_g.backward()
    assert _grads_finite(nets.generator)
    assert all(torch.isfinite(v) for v in {**logs_d, **logs_g}.values())

    nets.eval()
    sampler = family.sampler(nets.generator, x, y, CPU)
    labels = pool_labels(K, 2)
    images, sources = make_images(sampler, labels, batch_size=4, seed=1)
    assert images.shape == (len(labels), channels, size, size) and images.dtype == np.uint8
    assert sources.shape == (len(labels), 2)
    if family.translates:  # every image translates a real image of another class
        assert (sources[:, 0] >= 0).all() and (sources[:, 1] != labels).all()
        assert (y[sources[:, 0]] == sources[:, 1]).all()
    else:
        assert (sources == -1).all()
    out = sampler.produce(torch.from_numpy(labels), sampler.plan(labels, 1),
                          torch.Generator().manual_seed(1))
    assert out.min() >= -1 and out.max() <= 1 and torch.isfinite(out).all()  # (N, C, H, W)
    scores = family.disc_scores(nets.discriminator, out, torch.from_numpy(labels))
    assert list(scores) == list(family.score_names) and scores["realism"].shape == (len(labels),)
    if "d_confidence" in scores:
        assert ((scores["d_confidence"] >= 0) & (scores["d_confidence"] <= 1)).all()


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_trains_under_bf16_autocast_and_hands_back_float32_weights(name, monkeypatch):
    """gan.amp's code path (bf16 autocast of the forward passes, CUDA only in a real run) on the
    CPU: losses finite, the gradient penalty's double backward included, weights float32 in the
    default layout."""
    from ganaug.runtime import Accel

    autocasts = []

    class CpuBf16(Accel):
        def autocast(self):
            autocasts.append(1)
            return torch.autocast(device_type="cpu", dtype=torch.bfloat16)

    monkeypatch.setattr("ganaug.gan.train.Accel.for_device", classmethod(
        lambda cls, device, cfg: CpuBf16(device, True, True, False)))
    x, y = real_data(1, 8)
    result = train_gan(x, y, K, tiny(name, steps=3, n_critic=2), CPU)
    assert len(autocasts) == 3 * 3  # every forward pass: two critic updates and G's, per step
    assert all(math.isfinite(v) for r in result.history for v in r.values())
    for k, v in result.nets.state_dict().items():
        assert not v.is_floating_point() or v.dtype == torch.float32, k
        assert v.is_contiguous(), k


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_trains_resumes_and_round_trips_a_checkpoint(name, tmp_path):
    x, y = real_data(1, 8)
    ada = {"ada_target": 0.6, "ada_interval": 1} if FAMILIES.get(name).sign_calibrated else {}
    cfg = tiny(name, steps=3, diffaugment=["translation"], **ada)
    whole = train_gan(x, y, K, cfg, CPU)
    assert len(whole.history) == 3 and all(math.isfinite(v) for r in whole.history
                                           for v in r.values())

    class Killed(Exception):
        pass

    def kill(step, rec):
        if step == 2:
            raise Killed

    resume = tmp_path / "resume.pt"
    with pytest.raises(Killed):
        train_gan(x, y, K, cfg, CPU, resume, on_log=kill)
    resumed = train_gan(x, y, K, cfg, CPU, resume)
    assert resumed.history == whole.history
    for (k, a), b in zip(resumed.nets.state_dict().items(), whole.nets.state_dict().values(),
                         strict=True):
        assert torch.equal(a, b), k

    path = tmp_path / "gan.pt"
    save_checkpoint(path, whole.payload(meta={"steps": 3}))
    loaded = load_gan(path)
    assert loaded.family.name == name and loaded.payload["meta"] == {"steps": 3}
    labels = pool_labels(K, 2)
    a, _ = make_images(whole.family.sampler(whole.generator.eval(), x, y, CPU), labels, 4, 0)
    b, _ = make_images(loaded.sampler(x, y, CPU), labels, 4, 0)
    assert np.array_equal(a, b)


def test_an_unknown_family_lists_the_known_ones():
    with pytest.raises(ParamsError) as info:
        family_for(GanConfig(arch="nope"), K, (1, 8, 8))
    with pytest.raises(ParamsError, match="gan.arch: unknown GAN family 'stargn' .did you mean"):
        gan_config({"arch": "stargn"})
    for name in FAMILIES:
        assert name in str(info.value)


def test_a_family_refuses_knobs_it_cannot_take():
    with pytest.raises(ValueError, match="^warmup_steps: "):
        FAMILIES.get("stargan").check_config(tiny("stargan", warmup_steps=1))


@pytest.mark.parametrize(("name", "key"), [("stargan", "per_class"), ("sngan", "per_class"),
                                           ("stargan", "z_dim"), ("dcgan", "res_blocks")])
def test_a_family_has_no_knob_it_cannot_take(name, key):
    # One GAN per class: not for a translation family, nor for sngan (its batch norm and its
    # projection are per class already). Its section refuses the key, naming who takes it.
    with pytest.raises(ParamsError, match=f"^params.yaml: gan.{name}.{key}: unknown key; "
                                          f"{key} is a knob of .* only, not of {name}$"):
        gan_config({"arch": name, name: {key: 1}})


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_declares_its_config_and_reads_its_section(name):
    cls = FAMILIES.get(name)
    cfg = gan_config({"arch": name})
    assert isinstance(cfg.knobs, cls.config)  # an absent section: the defaults
    assert gan_config(cfg.section()) == cfg  # the checkpoint's form reads back the same


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_declares_whether_its_discriminator_is_sign_calibrated(name):
    assert isinstance(FAMILIES.get(name).sign_calibrated, bool)


@pytest.mark.parametrize("name", ["wgan_gp", "stargan"])
def test_ada_is_refused_for_a_critic_whose_output_has_no_fixed_sign(name):
    cfg = tiny(name, diffaugment=["translation"], ada_target=0.6)
    with pytest.raises(ValueError, match=f"^ada_target: {name}'s discriminator is a critic") as info:
        FAMILIES.get(name).check_params(cfg)
    assert "dcgan, sngan" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ParamsError, match=f"^params.yaml: gan.ada_target: {name}'s"):
        family_for(cfg, K, (1, 8, 8))  # the stages refuse it too, not only validation
    FAMILIES.get(name).check_params(tiny(name, diffaugment=["translation"]))  # fixed p is fine


def test_ada_is_refused_for_a_family_that_does_not_say():
    class Undeclared(FAMILIES.get("dcgan")):
        name = "undeclared"
        sign_calibrated = None

    with pytest.raises(ValueError, match="^ada_target: undeclared's discriminator does not "):
        Undeclared.check_params(tiny("dcgan", diffaugment=["translation"], ada_target=0.6))


def test_stargan_needs_two_classes_and_a_translation_pool_has_capacity():
    with pytest.raises(ValueError, match="at least two"):
        family_for(tiny("stargan"), 1, (1, 8, 8))
    family = family_for(tiny("stargan"), K, (1, 8, 8))
    x, y = real_data(1, 8)  # 4 images per class: 8 of other classes
    sampler = family.sampler(family.build().generator, x, y, CPU)
    assert sampler.capacity(K) == 8
    plan = sampler.plan(np.repeat(np.arange(K), 8), seed=0)
    for c in range(K):  # each source of another class used exactly once per class
        rows = plan[c * 8:(c + 1) * 8]
        assert sorted(rows.tolist()) == np.flatnonzero(y != c).tolist()


# --------------------------------------------------------------------------------------------
# DiffAugment, ADA, LeCam
# --------------------------------------------------------------------------------------------


def test_translate_moves_a_known_image_by_a_known_amount():
    x = torch.zeros(2, 1, 4, 4)
    x[:, 0, 1, 1] = 1.0                         # one bright pixel at (1, 1)
    out = translate(x, torch.tensor([2, -1]), torch.tensor([1, 0]))
    assert out[0, 0, 3, 2] == 1 and out[0].sum() == 1  # down 2, right 1
    assert out[1, 0, 0, 1] == 1 and out[1].sum() == 1  # up 1
    gone = translate(x, torch.tensor([3]), torch.tensor([0]))[:1]
    assert gone.sum() == 0                      # shifted out; zeros (mid-grey) shifted in


def test_diff_augment_is_the_same_op_for_real_and_fake_batches():
    real, fake = torch.rand(6, 1, 8, 8) * 2 - 1, torch.rand(6, 1, 8, 8) * 2 - 1
    both = torch.cat([real, fake])
    # Same draws -> the same transform, whichever batch it is applied to.
    a = diff_augment(real, ["translation", "cutout", "color"], torch.Generator().manual_seed(3))
    b = diff_augment(fake, ["translation", "cutout", "color"], torch.Generator().manual_seed(3))
    shifted_real = diff_augment(both, ["translation"], torch.Generator().manual_seed(4))
    assert a.shape == real.shape and b.shape == fake.shape and not torch.equal(a, real)
    # translation of a batch is the per-image op: applying it to the pair moves both alike
    assert shifted_real.shape == both.shape
    # p = 0 is the identity; an empty policy too
    assert torch.equal(diff_augment(real, ["color"], torch.Generator(), p=0.0), real)
    assert torch.equal(diff_augment(real, [], torch.Generator()), real)


def test_diff_augment_is_differentiable_and_reproducible():
    x = (torch.rand(4, 1, 8, 8) * 2 - 1).requires_grad_()
    out = diff_augment(x, ["color", "translation", "cutout"], torch.Generator().manual_seed(0))
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    again = diff_augment(x.detach(), ["color", "translation", "cutout"],
                         torch.Generator().manual_seed(0))
    assert torch.equal(out.detach(), again)


def test_cutout_and_color_by_hand():
    x = torch.ones(1, 1, 4, 4)
    out = cutout(x, torch.tensor([1]), torch.tensor([2]), (2, 2))  # rows 0-1, cols 1-2
    assert out[0, 0].tolist() == [[1, 0, 0, 1], [1, 0, 0, 1], [1, 1, 1, 1], [1, 1, 1, 1]]
    img = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])  # mean 1.5
    out = adjust_color(img, torch.tensor([0.5]), torch.tensor([1.0]), torch.tensor([2.0]))
    # +0.5 -> mean 2.0; contrast 2 about the mean: 2 + 2 * (v + 0.5 - 2)
    assert out[0, 0].tolist() == [[-1.0, 1.0], [3.0, 5.0]]


def test_ada_raises_p_while_the_discriminator_overfits():
    assert ada_update(0.2, 0.9, 0.6, images=500, kimg=1) == pytest.approx(0.7)
    assert ada_update(0.2, 0.1, 0.6, images=500, kimg=1) == 0.0  # clipped at 0
    assert ada_update(0.95, 1.0, 0.6, images=500, kimg=1) == 1.0  # clipped at 1
    assert ada_update(0.3, 0.6, 0.6, images=500, kimg=1) == 0.3


def test_lecam_by_hand():
    d_real, d_fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    # relu(d_real - 0.5)^2 = [2.25, 0]; relu(1.0 - d_fake)^2 = [4, 0]
    assert lecam_reg(d_real, d_fake, ema_real=1.0, ema_fake=0.5).item() == pytest.approx(
        (2.25 + 0) / 2 + (4 + 0) / 2)
    assert lecam_reg(d_real, d_fake, ema_real=-5.0, ema_fake=5.0).item() == 0.0


def test_the_context_augments_every_discriminator_input(monkeypatch):
    """With DiffAugment on, every batch a family shows its discriminator (real and fake in the
    discriminator's step, fake in the generator's) goes through the context's augmentation."""
    for name in FAMILIES:
        cfg = tiny(name, diffaugment=["translation"])
        family = family_for(cfg, K, (1, 8, 8))
        nets = family.build().train()
        ctx = StepContext(cfg, torch.Generator().manual_seed(0), CPU)
        augmented: list[torch.Tensor] = []
        original = ctx.augment

        def spy(x, original=original, augmented=augmented):
            out = original(x)
            augmented.append(out)
            return out

        monkeypatch.setattr(ctx, "augment", spy)
        data = RealData(*real_data(1, 8), CPU)
        family.d_loss(nets, data, ctx)
        assert len(augmented) == 2, name  # the real and the fake batch
        family.g_loss(nets, data, ctx, warmup=False)
        assert len(augmented) == 3, name  # and the fake batch of the generator's step


# --------------------------------------------------------------------------------------------
# Hinge, projection, cycle
# --------------------------------------------------------------------------------------------


def test_hinge_losses_on_known_logits():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.0])
    # relu(1 - real) = [0, .5, 2]; relu(1 + fake) = [0, 1, 2]
    assert d_loss_hinge(real, fake).item() == pytest.approx(2.5 / 3 + 3 / 3)
    assert g_loss_hinge(fake).item() == pytest.approx(1 / 3)


@pytest.mark.parametrize("name", ["dcgan", "sngan"])
def test_projection_term_is_the_label_embedding_dot_the_features(name):
    disc = family_for(tiny(name), K, (1, 8, 8)).build().discriminator.eval()
    x, y = torch.rand(4, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 1])
    h = disc.features(x)                                             # (N, F)
    unconditional = disc.linear(h).squeeze(1)
    embed = disc.embed.weight if name == "dcgan" else disc.embed(torch.arange(K))  # (K, F)
    assert torch.allclose(disc(x, y), unconditional + (embed[y] * h).sum(1), atol=1e-5)


def test_cycle_loss_of_an_identity_generator_is_zero():
    x = torch.rand(3, 1, 8, 8) * 2 - 1

    def identity(images, labels):
        return images

    y_src, y_trg = torch.tensor([0, 1, 2]), torch.tensor([1, 2, 0])
    assert cycle_loss(x, identity(identity(x, y_trg), y_src)).item() == 0.0
    assert cycle_loss(x, -x).item() == pytest.approx((2 * x.abs()).mean().item())


def _grads_finite(module: torch.nn.Module) -> bool:
    grads = [p.grad for p in module.parameters() if p.requires_grad]
    return (all(g is not None and torch.isfinite(g).all() for g in grads)
            and any(g.abs().sum() > 0 for g in grads))
