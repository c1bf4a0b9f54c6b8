"""Every registered classifier: shapes, ranges, gradients; checkpoints that round-trip (the GAN
families: tests/test_gan_families.py).

The registries are iterated at collection time, so a new architecture is tested here for free.
"""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from gancfg import gan_cfg

from ganaug.gan import family_for, gan_payload, load_gan
from ganaug.models import CLASSIFIERS, CheckpointError
from ganaug.models.saved import (
    classifier_payload,
    load_checkpoint,
    load_classifier,
    load_state,
    save_checkpoint,
)
from ganaug.runtime import inference_layout

# (channels, size): the 8x8 digits, MNIST-like and CIFAR-like images for every architecture.
CLASSIFIER_SHAPES = [(1, 8), (1, 28), (3, 32)]
NUM_CLASSES = 5


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def make_classifier(name: str, channels: int = 1, size: int = 8, width: int = 4):
    kwargs = {"in_channels": channels, "num_classes": NUM_CLASSES, "image_size": size,
              "width": width}
    return CLASSIFIERS.get(name)(**kwargs), kwargs


def images(n: int, channels: int, size: int) -> torch.Tensor:
    return torch.rand(n, channels, size, size) * 2 - 1  # [-1, 1], what every model takes


def assert_grads_finite(module: torch.nn.Module) -> None:
    for name, p in module.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"{name} got no gradient"
            assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"
    assert any(p.grad.abs().sum() > 0 for p in module.parameters() if p.grad is not None)


# --------------------------------------------------------------------------------------------
# Classifiers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("channels", "size"), CLASSIFIER_SHAPES)
@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_classifier_forward_backward_and_shapes(name, channels, size):
    model, _ = make_classifier(name, channels, size)
    x, y = images(3, channels, size), torch.arange(3) % NUM_CLASSES
    model.train()
    logits = model(x)
    assert logits.shape == (3, NUM_CLASSES)
    loss = F.cross_entropy(logits, y)
    assert torch.isfinite(loss)
    loss.backward()
    assert_grads_finite(model)
    model.eval()
    with torch.no_grad():
        logits = model(x)
        feats = model.features(x)
    assert logits.shape == (3, NUM_CLASSES) and torch.isfinite(logits).all()
    assert feats.shape == (3, model.feature_dim) and torch.isfinite(feats).all()


@pytest.mark.parametrize("name", list(CLASSIFIERS))
def test_classifier_checkpoint_round_trip_gives_identical_outputs(name, tmp_path):
    model, kwargs = make_classifier(name)
    model.train()
    model(images(6, 1, 8))  # move batch-norm running statistics off their defaults
    model.eval()
    path = tmp_path / "clf.pt"
    save_checkpoint(path, classifier_payload(model, name, kwargs, {"note": "x"}))
    loaded, payload = load_classifier(path)
    assert payload["arch"] == name and payload["kwargs"] == kwargs
    assert payload["meta"] == {"note": "x"}
    assert not loaded.training
    state = loaded.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    model = inference_layout(model, "cpu")  # the layout the loader gives: outputs bit-identical
    x = images(3, 1, 8)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
        assert torch.equal(model.features(x), loaded.features(x))


# --------------------------------------------------------------------------------------------
# Unknown names
# --------------------------------------------------------------------------------------------


def test_unknown_classifier_name_lists_the_known_ones():
    with pytest.raises(KeyError) as info:
        CLASSIFIERS.get("no_such_net")
    msg = str(info.value)
    assert "no_such_net" in msg
    for name in CLASSIFIERS:
        assert name in msg


# --------------------------------------------------------------------------------------------
# Bad checkpoints
# --------------------------------------------------------------------------------------------


@pytest.fixture
def classifier_file(tmp_path):
    name = next(iter(CLASSIFIERS))
    model, kwargs = make_classifier(name)
    path = tmp_path / "good.pt"
    save_checkpoint(path, classifier_payload(model, name, kwargs, {}))
    return path


@pytest.mark.parametrize("damage", ["truncated_half", "truncated_head", "garbage", "empty"])
def test_damaged_checkpoint_is_a_checkpoint_error_naming_the_file(classifier_file, damage):
    data = classifier_file.read_bytes()
    bad = classifier_file.with_name(f"{damage}.pt")
    if damage == "truncated_half":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "truncated_head":
        bad.write_bytes(data[:100])
    elif damage == "garbage":
        bad.write_bytes(b"not a checkpoint " * 20)
    else:
        bad.write_bytes(b"")
    with pytest.raises(CheckpointError, match=re.escape(str(bad))):
        load_classifier(bad)


def test_checkpoint_with_a_corrupt_zip_directory_is_a_checkpoint_error(classifier_file):
    data = bytearray(classifier_file.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the first central-directory entry
    name_len = int.from_bytes(data[entry + 28: entry + 30], "little")
    data[entry + 46 + name_len - 1] = 0xFF  # last byte of its file name: no longer UTF-8
    bad = classifier_file.with_name("corrupt_dir.pt")
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=re.escape(str(bad))):
        load_classifier(bad)


def test_missing_checkpoint_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_classifier(tmp_path / "absent.pt")


def test_checkpoint_of_another_kind_is_refused(classifier_file, tmp_path):
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(classifier_file))}.*'classifier'.*'gan'"):
        load_gan(classifier_file)
    family = family_for(gan_cfg("dcgan", z_dim=8, width=4), 2, (1, 8, 8))
    gan_file = tmp_path / "gan.pt"
    save_checkpoint(gan_file, gan_payload(family, family.build(), None))
    with pytest.raises(CheckpointError, match=re.escape(str(gan_file))):
        load_classifier(gan_file)
    # A dict without a kind, and a non-dict, are not this project's checkpoints.
    for payload, name in (({"state_dict": {}}, "nokind.pt"), ([1, 2, 3], "list.pt")):
        torch.save(payload, tmp_path / name)
        with pytest.raises(CheckpointError, match="not a checkpoint written by this project"):
            load_checkpoint(tmp_path / name)


def test_classifier_checkpoint_with_mismatched_kwargs_is_refused(tmp_path):
    name = next(iter(CLASSIFIERS))
    model, kwargs = make_classifier(name, width=4)
    payload = classifier_payload(model, name, {**kwargs, "width": 8}, {})
    path = tmp_path / "mismatch.pt"
    save_checkpoint(path, payload)
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load_classifier(path)
    payload = classifier_payload(model, name, {**kwargs, "no_such_arg": 1}, {})
    save_checkpoint(path, payload)
    with pytest.raises(CheckpointError, match="cannot rebuild"):
        load_classifier(path)


def test_load_state_with_another_architectures_weights(tmp_path):
    name = next(iter(CLASSIFIERS))
    model, _ = make_classifier(name)
    gen = family_for(gan_cfg("dcgan", z_dim=8, width=4), NUM_CLASSES, (1, 8, 8)).build().generator
    path = tmp_path / "foreign.pt"
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(path))}.*the generator weights"):
        load_state(gen, model.state_dict(), path, "generator")
    wider, _ = make_classifier(name, width=8)
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load_state(model, wider.state_dict(), path, "classifier")
