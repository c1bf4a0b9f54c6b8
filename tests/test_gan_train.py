"""GAN training on tiny random data: resume after a kill to the same bits, divergence stops with
the step named and the last good checkpoint kept, per-class pairs train independently, the EMA
generator is what the checkpoint marks for generation, and the feature-matching warm-up."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import yaml
from gancfg import gan_cfg, gan_section

from ganaug.checkpoints import load_checkpoint, save_checkpoint
from ganaug.config import GanConfig
from ganaug.data import Prepared, save_prepared
from ganaug.errors import TrainingDiverged
from ganaug.gan import load_gan
from ganaug.gan.noise import WGANGP
from ganaug.gan.train import train_gan
from ganaug.stage import run

CPU = torch.device("cpu")
K = 3


pytestmark = pytest.mark.usefixtures("one_thread")  # fixture in conftest.py


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 1, 8, 8), dtype=np.uint8)
    y = np.repeat(np.arange(K), 4)
    return x, y


def tiny(arch: str = "dcgan", **changes) -> GanConfig:
    base = dict(z_dim=4, width=2, steps=8, batch_size=4, checkpoint_every=2, log_every=1)
    return gan_cfg(arch, **{**base, **changes})


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


class Killed(Exception):
    pass


CONFIGS = {
    "dcgan-ema": dict(arch="dcgan"),
    "wgan_gp-per_class-warmup": dict(arch="wgan_gp", n_critic=2, beta1=0.0, beta2=0.9,
                                     per_class=True, warmup_steps=3),
    "dcgan-no-ema": dict(arch="dcgan", ema_decay=None, warmup_steps=5),
}


@pytest.mark.parametrize("changes", CONFIGS.values(), ids=CONFIGS.keys())
def test_a_run_killed_half_way_resumes_to_the_same_weights(data, tmp_path, changes):
    cfg = tiny(**changes)
    whole = train_gan(*data, K, cfg, CPU)

    resume = tmp_path / "resume.pt"

    def kill_at_5(step, rec):
        if step == 5:
            raise Killed

    with pytest.raises(Killed):
        train_gan(*data, K, cfg, CPU, resume, on_log=kill_at_5)
    assert load_checkpoint(resume, kind="resume-gan")["step"] == 4
    seen = []
    resumed = train_gan(*data, K, cfg, CPU, resume, on_log=lambda step, rec: seen.append(step))

    assert seen == list(range(1, cfg.steps + 1))  # replayed history, then the new steps
    assert resumed.history == whole.history
    assert_same(weights(resumed.generator), weights(whole.generator))
    assert_same(weights(resumed.discriminator), weights(whole.discriminator))
    if cfg.ema_decay:
        assert_same(weights(resumed.nets.generator), weights(whole.nets.generator))
    for a, b in zip(resumed.progress, whole.progress, strict=True):
        assert torch.equal(a, b)


def test_a_nan_loss_names_the_step_and_keeps_the_last_good_checkpoint(data, tmp_path, monkeypatch):
    cfg = tiny(arch="wgan_gp", per_class=True, steps=10)
    good = train_gan(*data, K, tiny(arch="wgan_gp", per_class=True, steps=4), CPU)
    original, calls = WGANGP.d_loss, []

    def poisoned(self, *args):
        calls.append(1)
        loss, logs = original(self, *args)
        if len(calls) > 4:  # steps 1-4 call it once; step 5 gets a NaN
            loss = loss * float("nan")
        return loss, logs

    monkeypatch.setattr(WGANGP, "d_loss", poisoned)
    resume = tmp_path / "resume.pt"
    with pytest.raises(TrainingDiverged, match=r"diverged at step 5: .*\(step 4\)"):
        train_gan(*data, K, cfg, CPU, resume)
    kept = load_checkpoint(resume, kind="resume-gan")
    assert kept["step"] == 4
    assert_same(kept["states"]["nets"], weights(good.nets))
    assert_same(kept["states"]["ema"], weights(good.ema))


def test_an_exploding_learning_rate_fails_the_stage_with_the_step(tmp_path, caplog):
    from stages import train_gan as stage

    argv = stage_inputs(tmp_path, {"lr_g": 1e30, "lr_d": 1e30})
    with caplog.at_level(logging.ERROR):
        assert run(stage.main, argv) == 1
    assert "TrainingDiverged" in caplog.text and "diverged at step" in caplog.text
    assert not (tmp_path / "gan.pt").exists()


def test_per_class_pairs_learn_only_from_their_own_class(data):
    x, y = data
    cfg = tiny(per_class=True, steps=3)
    a = train_gan(x, y, K, cfg, CPU)
    x2 = x.copy()
    x2[y == 1] = 255 - x2[y == 1]
    b = train_gan(x2, y, K, cfg, CPU)
    for c, same in ((0, True), (1, False), (2, True)):
        for net in ("generator", "discriminator"):
            wa = weights(getattr(a.nets, net).members[c])
            wb = weights(getattr(b.nets, net).members[c])
            assert all(torch.equal(wa[k], wb[k]) for k in wa) == same, (c, net)


def test_per_class_needs_every_class(data):
    x, y = data
    with pytest.raises(ValueError, match="class 2 has no training images"):
        train_gan(x[y < 2], y[y < 2], K, tiny(per_class=True), CPU)


def test_the_checkpoint_marks_the_ema_generator_for_generation(data, tmp_path):
    result = train_gan(*data, K, tiny(ema_decay=0.9), CPU)
    assert result.ema is not None and result.generator is result.ema
    path = tmp_path / "gan.pt"
    save_checkpoint(path, result.payload(meta={}))
    loaded, raw = load_gan(path), load_gan(path, raw=True)
    assert loaded.payload["generator_kind"] == "ema"
    assert_same(weights(loaded.generator), weights(result.generator))
    assert_same(weights(raw.generator), weights(result.nets.generator))
    assert not torch.equal(loaded.generator.fc[0].weight, raw.generator.fc[0].weight)

    plain = train_gan(*data, K, tiny(ema_decay=0.0), CPU)
    assert plain.ema is None and plain.payload(meta={})["generator_kind"] == "raw"
    assert_same(weights(plain.generator), weights(result.nets.generator))  # EMA changes no training
    assert plain.payload(meta={})["generator_raw"] is None


def test_warmup_trains_the_generator_by_feature_matching_first(data):
    warm = train_gan(*data, K, tiny(warmup_steps=3, ema_decay=None), CPU)
    assert [("loss_fm" in r) for r in warm.history] == [True] * 3 + [False] * 5
    assert all(np.isfinite(r["loss_fm"]) for r in warm.history[:3])
    cold = train_gan(*data, K, tiny(ema_decay=None), CPU)
    assert not torch.equal(warm.generator.fc[0].weight, cold.generator.fc[0].weight)
    assert warm.history[0]["loss_d"] == cold.history[0]["loss_d"]  # D trains as usual


def test_wgan_gp_logs_its_penalty(data):
    result = train_gan(*data, K, tiny(arch="wgan_gp", steps=2), CPU)
    assert all(r["gp"] >= 0 for r in result.history)


def stage_inputs(tmp_path, gan_changes: dict) -> list[str]:
    """A prepared source (3 classes, 3 images each) and params; returns train_gan's argv."""
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (9, 1, 8, 8), dtype=np.uint8)
    y = np.repeat(np.arange(K), 3)
    save_prepared(tmp_path / "src.npz", Prepared(splits={s: (x, y) for s in ("train", "val", "test")},
                                                 classes=["a", "b", "c"], meta={}))
    gan = gan_section(**{"z_dim": 4, "width": 2, "steps": 4, "batch_size": 4,
                         "checkpoint_every": 2, "log_every": 2, **gan_changes})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"device": "cpu", "threads": 1, "gan": gan,
                                                           "study": {"vary": ["gan"]},
                                                           "generate": {"pool_multiplier": 1.0,
                                                                        "max_ratio": 1.0}}))
    return ["--data", str(tmp_path / "src.npz"), "--out", str(tmp_path / "gan.pt"),
            "--plots", str(tmp_path / "plots"), "--resume", str(tmp_path / "resume.pt"),
            "--params", str(tmp_path / "params.yaml")]


def test_the_stages_train_a_per_class_wgan_gp_and_generate_from_its_ema(tmp_path):
    from stages import generate
    from stages import train_gan as stage

    argv = stage_inputs(tmp_path, {"arch": "wgan_gp", "per_class": True, "n_critic": 2,
                                   "warmup_steps": 1})
    assert run(stage.main, argv) == 0
    assert not (tmp_path / "resume.pt").exists()
    for name in ("samples.png", "progress.png", "real.png"):
        assert (tmp_path / "plots" / name).is_file()
    payload = load_gan(tmp_path / "gan.pt").payload
    assert payload["config"]["wgan_gp"]["per_class"] and payload["generator_kind"] == "ema"
    assert payload["meta"]["steps"] == 4
    assert run(generate.main, ["--gan", str(tmp_path / "gan.pt"), "--data",
                               str(tmp_path / "src.npz"), "--out", str(tmp_path / "pool"),
                               "--test-out", str(tmp_path / "synthetic_test.npz"),
                               "--params", str(tmp_path / "params.yaml")]) == 0
    images, labels = np.load(tmp_path / "pool/images.npy"), np.load(tmp_path / "pool/labels.npy")
    assert images.shape == (9, 1, 8, 8) and labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3
