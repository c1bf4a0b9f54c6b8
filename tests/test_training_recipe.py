"""The classifier recipe: learning-rate schedules, early stopping on a noisy validation set,
rotations and random erasing, temperature scaling; by hand where possible."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gancfg import gan_cfg

import ganaug.training as training
from ganaug.config import GanConfig, TrainConfig
from ganaug.metrics.calibration import calibration_report, fit_temperature, nll, reliability
from ganaug.training import Accel, learning_rate, random_erasing, rotate, train_classifier

CPU = torch.device("cpu")


# --------------------------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------------------------


def test_constant_schedule_with_warmup():
    cfg = TrainConfig(lr=0.1, epochs=10, warmup_epochs=2)
    assert learning_rate(cfg, 0) == pytest.approx(0.1 / 25)
    assert learning_rate(cfg, 1) == pytest.approx(0.1 * (1 / 25 + (24 / 25) / 2))
    assert learning_rate(cfg, 2) == learning_rate(cfg, 9.5) == 0.1


def test_cosine_schedule_decays_to_zero():
    cfg = TrainConfig(lr=0.1, epochs=10, schedule="cosine")
    assert learning_rate(cfg, 0) == pytest.approx(0.1)
    assert learning_rate(cfg, 5) == pytest.approx(0.05)
    assert learning_rate(cfg, 10) == pytest.approx(0.0, abs=1e-12)


def test_onecycle_warms_up_for_30_percent_then_decays():
    cfg = TrainConfig(lr=0.1, epochs=10, schedule="onecycle")
    assert learning_rate(cfg, 0) == pytest.approx(0.004)
    assert learning_rate(cfg, 3) == pytest.approx(0.1)
    assert learning_rate(cfg, 6.5) == pytest.approx(0.05)
    assert learning_rate(cfg, 10) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("changes", "key"), [
    ({"warmup_epochs": 10}, "warmup_epochs"), ({"min_epochs": 11}, "min_epochs"),
    ({"val_smoothing": 1.0}, "val_smoothing"), ({"erasing_p": 1.5}, "erasing_p"),
    ({"max_rotation": 200}, "max_rotation"), ({"label_smoothing": -0.1}, "label_smoothing"),
])
def test_recipe_knobs_are_checked(changes, key):
    with pytest.raises(ValueError, match=key):
        TrainConfig(epochs=10, **changes)


# --------------------------------------------------------------------------------------------
# Early stopping on a scripted validation curve
# --------------------------------------------------------------------------------------------


def scripted(monkeypatch, accuracies: list[float]) -> None:
    """Make every epoch cost nothing and report the given validation accuracies in turn."""
    it = iter(accuracies)
    monkeypatch.setattr(training, "_run_epoch", lambda *a, **k: (1.0, 1))
    monkeypatch.setattr(training, "accuracy", lambda *a, **k: next(it))


def tiny_data():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (8, 1, 8, 8), dtype=np.uint8), np.arange(8) % 2


def test_min_epochs_keeps_training_through_an_early_plateau(monkeypatch):
    scripted(monkeypatch, [0.5, 0.4, 0.4, 0.4, 0.6, 0.4, 0.4, 0.4, 0.4, 0.4])
    x, y = tiny_data()
    plain = TrainConfig(width=2, epochs=10, patience=2)
    result = train_classifier(x, y, x, y, 2, plain, 0, CPU)
    assert result.state.epoch == 3 and result.state.best_epoch == 1  # stopped at the plateau
    scripted(monkeypatch, [0.5, 0.4, 0.4, 0.4, 0.6, 0.4, 0.4, 0.4, 0.4, 0.4])
    patient = TrainConfig(width=2, epochs=10, patience=2, min_epochs=5)
    result = train_classifier(x, y, x, y, 2, patient, 0, CPU)
    assert result.state.best_epoch == 5 and result.state.epoch == 7


def test_smoothing_ignores_a_lucky_spike(monkeypatch):
    # Raw accuracy spikes at epoch 2; the smoothed curve (weight 0.5) peaks at epoch 5.
    curve = [0.30, 0.90, 0.30, 0.60, 0.70, 0.50, 0.40, 0.40]
    scripted(monkeypatch, curve)
    x, y = tiny_data()
    cfg = TrainConfig(width=2, epochs=8, patience=8, val_smoothing=0.5)
    result = train_classifier(x, y, x, y, 2, cfg, 0, CPU)
    smoothed = [r["val_smoothed"] for r in result.state.history]
    expected = [0.30]
    for a in curve[1:]:
        expected.append(0.5 * expected[-1] + 0.5 * a)
    assert smoothed == pytest.approx(expected)
    assert result.state.best_epoch == int(np.argmax(expected)) + 1 == 5


def test_every_epoch_is_reported_once(monkeypatch):
    scripted(monkeypatch, [0.1, 0.2, 0.3])
    x, y = tiny_data()
    seen = []
    train_classifier(x, y, x, y, 2, TrainConfig(width=2, epochs=3, patience=3), 0, CPU,
                     on_epoch=seen.append)
    assert [r["epoch"] for r in seen] == [1, 2, 3]
    assert set(seen[0]) == {"epoch", "train_loss", "val_accuracy", "val_smoothed", "lr"}


# --------------------------------------------------------------------------------------------
# Augmentations
# --------------------------------------------------------------------------------------------


def test_rotation_by_90_degrees_is_a_quarter_turn():
    x = torch.arange(16.0).view(1, 1, 4, 4) / 8 - 1  # values in [-1, 1)
    out = rotate(x, torch.tensor([90.0]))
    # counter-clockwise as displayed (the top-right corner goes to the top left): torch.rot90
    assert torch.allclose(out, torch.rot90(x, k=1, dims=(2, 3)), atol=1e-5)
    assert torch.allclose(rotate(x, torch.tensor([0.0])), x, atol=1e-6)


def test_rotation_pads_with_black():
    x = torch.ones(1, 1, 9, 9)
    out = rotate(x, torch.tensor([45.0]))
    assert out[0, 0, 0, 0] == pytest.approx(-1.0) and out[0, 0, 4, 4] == pytest.approx(1.0)


def test_random_erasing_zeroes_one_rectangle_per_image():
    x = torch.ones(64, 1, 20, 20)
    out = random_erasing(x, 1.0, torch.Generator().manual_seed(0))
    for img in out[:, 0]:
        zero = (img == 0).nonzero()
        assert len(zero) > 0
        rows, cols = zero[:, 0], zero[:, 1]
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert len(zero) == h * w  # one rectangle
        assert 0.01 <= len(zero) / 400 <= 0.40
    assert torch.equal(random_erasing(x, 0.0, torch.Generator().manual_seed(0)), x)


def test_device_habits_by_device(monkeypatch):
    cfg = TrainConfig(amp=True, channels_last=True, compile=False)
    cpu = Accel.for_device(CPU, cfg)  # channels_last yes (faster, deterministic), bf16 never
    assert not cpu.amp and cpu.channels_last and not cpu.compile_model
    assert cpu.images(torch.rand(2, 1, 8, 8)).is_contiguous(memory_format=torch.channels_last)
    assert not Accel.for_device(CPU, TrainConfig(channels_last=False)).channels_last
    mps = Accel.for_device(torch.device("mps"), cfg)  # constructing touches no device
    assert not mps.amp and not mps.channels_last
    x = torch.rand(2, 1, 8, 8)
    assert mps.images(x) is x
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    cuda = Accel.for_device(torch.device("cuda"), cfg)
    assert cuda.amp and cuda.channels_last
    assert not Accel.for_device(torch.device("cuda"), TrainConfig(amp=False)).amp
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert not Accel.for_device(torch.device("cuda"), cfg).amp
    # The GAN's bf16 is opt-in (gan.amp, off by default); its layout follows channels_last.
    gan = Accel.for_device(torch.device("cuda"), GanConfig())
    assert not gan.amp and gan.channels_last and not gan.compile_model


def test_a_trained_model_is_handed_back_in_the_default_layout(one_thread):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (24, 1, 8, 8), dtype=np.uint8), np.arange(24) % 3
    result = train_classifier(x, y, x, y, 3, TrainConfig(width=4, epochs=2, batch_size=8), 1, CPU)
    weights = [v for v in result.model.state_dict().values() if v.dim() == 4]
    assert weights and all(v.is_contiguous() for v in weights)


ONEDNN_CHECK = """
import sys, numpy as np, torch
from ganaug.config import TrainConfig
from ganaug.training import train_classifier
torch.set_num_threads(int(sys.argv[1]))
rng = np.random.default_rng(0)
x, y = rng.integers(0, 256, (32, 3, 16, 16), dtype=np.uint8), np.arange(32) % 4
weights = []
for layout in (False, True):
    cfg = TrainConfig(arch="resnet18_small", width=4, epochs=2, batch_size=16, channels_last=layout)
    weights.append(train_classifier(x, y, x, y, 4, cfg, 0, torch.device("cpu")).model.state_dict())
err = max(float((weights[1][k].double() - v.double()).abs().max() / v.double().abs().max().clamp_min(1e-12))
          for k, v in weights[0].items() if v.is_floating_point())
print(err)
"""


@pytest.mark.parametrize("threads", [1, 2])
def test_channels_last_training_matches_the_default_layout_where_onednn_is_wrong(threads):
    """resnet18_small at width 4 has 1x1 stride-2 shortcuts with 4 and 8 input channels, whose
    channels-last weight gradients oneDNN gets wrong on AVX2 CPUs (a crash with one thread,
    wrong values with two: uxlfoundation/oneDNN#6035). Trained with channels_last on, it must
    end with the default layout's weights. In a child process: a crash or hang fails this test
    instead of the run."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", ONEDNN_CHECK, str(threads)], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout.strip().splitlines()[-1]) < 1e-4


def test_the_convolutions_onednn_gets_wrong_stay_in_the_default_layout_on_the_cpu():
    from ganaug.models import CLASSIFIERS
    from ganaug.runtime import channels_last_unsafe, guard_cpu_convolutions, inference_layout

    assert channels_last_unsafe("conv", 1, 2, 4, 64) and channels_last_unsafe("conv", 1, 2, 15, 8)
    assert not channels_last_unsafe("conv", 1, 2, 16, 3)
    assert not channels_last_unsafe("conv", 1, 1, 4, 4) and not channels_last_unsafe("conv", 3, 2, 4, 4)
    assert channels_last_unsafe("convT", 1, 2, 64, 3) and not channels_last_unsafe("convT", 1, 2, 3, 16)
    assert not channels_last_unsafe("convT", 4, 2, 3, 3)
    model = CLASSIFIERS.get("resnet18_small")(in_channels=1, num_classes=3, image_size=16, width=4)
    model = Accel.for_device(CPU, TrainConfig()).prepare(model)
    convs = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)}
    guarded = [n for n, m in convs.items() if m.kernel_size == (1, 1) and m.stride == (2, 2)
               and m.in_channels < 16]
    assert guarded == ["layer2.0.downsample.0", "layer3.0.downsample.0"]
    assert guard_cpu_convolutions(model) == guarded  # idempotent
    for n, m in convs.items():
        if n in guarded:
            assert m.weight.is_contiguous() and len(m._forward_pre_hooks) == 1
            x = torch.rand(2, m.in_channels, 4, 4).contiguous(memory_format=torch.channels_last)
            (seen,) = m._forward_pre_hooks[next(iter(m._forward_pre_hooks))](m, (x,))
            assert seen.is_contiguous() and torch.equal(seen, x)
        elif m.in_channels > 1 and m.kernel_size != (1, 1):  # 1x1 weights fit both layouts
            assert m.weight.is_contiguous(memory_format=torch.channels_last)
            assert not m.weight.is_contiguous()
    # The default layout gets the guard too (an input can arrive channels-last), CUDA and MPS not.
    plain = Accel.for_device(CPU, TrainConfig(channels_last=False)).prepare(
        CLASSIFIERS.get("resnet18_small")(in_channels=1, num_classes=3, image_size=16, width=4))
    assert len(plain.layer2[0].downsample[0]._forward_pre_hooks) == 1
    loaded = inference_layout(
        CLASSIFIERS.get("resnet18_small")(in_channels=1, num_classes=3, image_size=16, width=4), "cpu")
    assert loaded.layer2[0].downsample[0].weight.is_contiguous()
    mps = Accel(torch.device("mps"), False, False, False).prepare(
        CLASSIFIERS.get("resnet18_small")(in_channels=1, num_classes=3, image_size=16, width=4))
    assert not mps.layer2[0].downsample[0]._forward_pre_hooks


def test_checkpoints_load_laid_out_for_inference_with_the_same_outputs(tmp_path, one_thread):
    """Loaded classifiers and GANs run channels-last on the CPU (and CUDA; not MPS), with the
    outputs of the default layout up to float rounding, and run to run identical."""
    from ganaug.checkpoints import save_checkpoint
    from ganaug.gan import family_for, load_gan
    from ganaug.gan.family import gan_payload
    from ganaug.models import CLASSIFIERS
    from ganaug.models.saved import classifier_payload, load_classifier
    from ganaug.runtime import inference_layout

    def channels_last(model):
        weights = [p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1]
        assert weights
        return all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                   for p in weights)

    torch.manual_seed(0)
    x = torch.rand(6, 1, 16, 16) * 2 - 1
    y = torch.arange(6) % 3
    model = CLASSIFIERS.get("small_cnn")(in_channels=1, num_classes=3, image_size=16, width=8).eval()
    save_checkpoint(tmp_path / "c.pt", classifier_payload(model, "small_cnn", {
        "in_channels": 1, "num_classes": 3, "image_size": 16, "width": 8}, {}))
    loaded, _ = load_classifier(tmp_path / "c.pt", "cpu")
    assert channels_last(loaded) and not channels_last(model) and not loaded.training
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-5)
        assert torch.equal(loaded(x), load_classifier(tmp_path / "c.pt", "cpu")[0](x))

    family = family_for(gan_cfg("dcgan", z_dim=8, width=8), 3, (1, 16, 16))
    nets = family.build().eval()
    save_checkpoint(tmp_path / "g.pt", gan_payload(family, nets, None, {}))
    gan = load_gan(tmp_path / "g.pt", "cpu")
    assert channels_last(gan.generator) and channels_last(gan.discriminator)
    z = torch.randn(6, 8)
    with torch.no_grad():
        assert torch.allclose(gan.generator(z, y), nets.generator(z, y), atol=1e-5)
        assert torch.allclose(gan.discriminator(x, y), nets.discriminator(x, y), atol=1e-5)

    other = CLASSIFIERS.get("small_cnn")(in_channels=1, num_classes=3, image_size=16, width=8)
    assert not channels_last(inference_layout(other, torch.device("mps")))  # touches no device
    assert channels_last(inference_layout(other, "cpu"))


def test_the_recipe_trains_deterministically_on_the_cpu(one_thread):
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (24, 1, 8, 8), dtype=np.uint8), np.arange(24) % 3
    cfg = TrainConfig(width=4, epochs=3, batch_size=8, schedule="onecycle", max_shift=1,
                      hflip=True, max_rotation=10, erasing_p=0.5, label_smoothing=0.1,
                      val_smoothing=0.3)
    a = train_classifier(x, y, x, y, 3, cfg, 1, CPU)
    b = train_classifier(x, y, x, y, 3, cfg, 1, CPU)
    for k, v in a.model.state_dict().items():
        assert torch.equal(v, b.model.state_dict()[k]), k


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


def over_confident(n: int = 2000, k: int = 4, seed: int = 0):
    """Logits of a 70%-accurate model, multiplied by 6: right most of the time, and far too
    sure of itself."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.7, labels, rng.integers(0, k, n))
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), pred] += 1.5
    return logits * 6.0, labels


def test_temperature_scaling_lowers_the_nll_of_an_over_confident_model():
    logits, labels = over_confident()
    t = fit_temperature(logits, labels)
    assert t > 2  # it was sharpened 6-fold
    assert nll(logits, labels, t) < nll(logits, labels) - 0.5
    report = calibration_report(logits, labels, fit=True)
    assert report["after"]["ece"] < report["before"]["ece"]
    assert report["accuracy"] == pytest.approx(((logits / t).argmax(1) == labels).mean())


def test_calibration_off_is_the_identity():
    logits, labels = over_confident(200)
    report = calibration_report(logits, labels, fit=False)
    assert report["temperature"] == 1.0 and report["before"] == report["after"]


def test_ece_by_hand():
    # Two images at confidence 0.9 (one right, one wrong), two at 0.6 (both right).
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    labels = np.array([0, 1, 1, 1])
    rel = reliability(probs, labels, bins=10)
    # |0.5 - 0.9| * 2/4 + |1.0 - 0.6| * 2/4
    assert rel["ece"] == pytest.approx(0.4)
    assert sum(b["n"] for b in rel["bins"]) == 4
    assert math.isclose(rel["bins"][8]["accuracy"], 0.5)


def test_stratified_halves_split_every_class_in_two():
    from ganaug.metrics.calibration import stratified_halves

    labels = np.array([0] * 5 + [1] * 4 + [2])
    folds = stratified_halves(labels, seed=3)
    for c, (n0, n1) in {0: (3, 2), 1: (2, 2), 2: (1, 0)}.items():
        assert (np.sum(folds[labels == c] == 0), np.sum(folds[labels == c] == 1)) == (n0, n1)
    assert np.array_equal(folds, stratified_halves(labels, seed=3))  # seeded
    assert not np.array_equal(folds, stratified_halves(labels, seed=4))


def test_calibration_is_measured_on_the_half_the_temperature_did_not_see():
    """By hand: 'after' equals the metrics of the logits scaled image by image by the other
    half's temperature; the temperature used is the whole split's."""
    from ganaug.metrics.calibration import stratified_halves

    logits, labels = over_confident(400)
    report = calibration_report(logits, labels, fit=True, seed=5)
    folds = stratified_halves(labels, 5)
    t0 = fit_temperature(logits[folds == 0], labels[folds == 0])
    t1 = fit_temperature(logits[folds == 1], labels[folds == 1])
    assert report["fold_temperatures"] == pytest.approx([t0, t1])
    t = np.where(folds == 0, t1, t0)[:, None]
    assert report["after"]["nll"] == pytest.approx(nll(logits / t, labels))
    assert report["after"]["ece"] == pytest.approx(
        reliability(np.exp(logits / t) / np.exp(logits / t).sum(1, keepdims=True), labels)["ece"])
    assert report["temperature"] == pytest.approx(fit_temperature(logits, labels))
    assert report["measured_on"].startswith("out-of-fold")
    # Out of sample the fit can only look worse than in sample, where it is optimal by
    # construction (the whole-split temperature minimises the in-sample NLL).
    assert report["after"]["nll"] >= nll(logits, labels, report["temperature"])


def test_calibration_of_a_split_too_small_to_halve_is_in_sample_and_says_so():
    report = calibration_report(np.array([[2.0, 0.0]]), np.array([0]), fit=True)
    assert report["measured_on"].startswith("validation split (in-sample")
