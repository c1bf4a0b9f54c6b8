"""Every registered classifier: shapes, gradients, checkpoint round trips; pretrained weights
from the torch hub cache without the network."""

from __future__ import annotations

import inspect
import json

import pytest
import torch
import torchvision

from ganaug.models import CLASSIFIERS, PretrainedWeightsUnavailable, validate_pretrained
from ganaug.models.saved import classifier_payload, load_classifier, save_checkpoint
from ganaug.models.transfer import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    PRETRAINED_WEIGHTS,
    InputAdapter,
    cached_weights_path,
    load_backbone,
)
from ganaug.models.vgg import num_pools
from ganaug.runtime import inference_layout

NAMES = list(CLASSIFIERS)
SHAPES = [(1, 8), (1, 48), (3, 32)]  # (channels, side)
TINY = 4  # width: keeps resnet50 and vgg16 cheap on a CPU
NUM_CLASSES = 7


def build(name: str, channels: int, size: int, **extra) -> tuple[torch.nn.Module, dict]:
    kwargs = {"in_channels": channels, "num_classes": NUM_CLASSES, "image_size": size,
              "width": TINY, **extra}
    return CLASSIFIERS.get(name)(**kwargs), kwargs


def images(n: int, channels: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, size, size, generator=g) * 2 - 1  # (N, C, H, W) in [-1, 1]


@pytest.fixture(autouse=True)
def _no_download(monkeypatch):
    """A test that reaches for the network fails instead of downloading."""
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


@pytest.mark.parametrize("channels,size", SHAPES)
@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_shapes_and_finite(name, channels, size):
    torch.manual_seed(0)
    model, _ = build(name, channels, size)
    x = images(2, channels, size)
    logits = model.train()(x)
    assert logits.shape == (2, NUM_CLASSES)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 3])).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    with torch.no_grad():
        model.eval()
        feats = model.features(x)
        logits = model(x)
    assert feats.shape == (2, model.feature_dim)
    assert torch.isfinite(feats).all() and torch.isfinite(logits).all()
    # the score stage takes logits from the features of the same pass: they must be forward's
    assert torch.equal(model.classify(feats), logits)


@pytest.mark.parametrize("name", NAMES)
def test_every_constructor_default_is_plain_json(name):
    params = inspect.signature(CLASSIFIERS.get(name)).parameters
    assert {"in_channels", "num_classes", "image_size", "width"} <= set(params)
    defaults = {k: p.default for k, p in params.items() if p.default is not inspect.Parameter.empty}
    assert json.loads(json.dumps(defaults)) == defaults


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_round_trip_gives_identical_outputs(name, tmp_path):
    torch.manual_seed(1)
    model, kwargs = build(name, 1, 8)
    # One optimiser step so batch-norm statistics and weights differ from a fresh build.
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss = torch.nn.functional.cross_entropy(model.train()(images(4, 1, 8)), torch.arange(4))
    loss.backward()
    opt.step()
    path = tmp_path / "clf.pt"
    kwargs = json.loads(json.dumps(kwargs))  # what a checkpoint may hold
    save_checkpoint(path, classifier_payload(model, name, kwargs, {"note": "test"}))
    loaded, payload = load_classifier(path)
    assert payload["arch"] == name and payload["kwargs"] == kwargs
    state = loaded.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    model = inference_layout(model, "cpu")  # the layout the loader gives: outputs bit-identical
    x = images(3, 1, 8, seed=5)
    with torch.no_grad():
        out = model.eval()(x)
        assert torch.isfinite(out).all()
        assert torch.equal(out, loaded(x))
        assert torch.equal(model.features(x), loaded.features(x))


def test_vgg_small_pools_fewer_times_on_small_inputs():
    assert [num_pools(s) for s in (8, 28, 32, 48)] == [2, 3, 4, 4]


def test_input_adapter_repeats_upsamples_and_normalises():
    adapter = InputAdapter(in_channels=1, min_size=32, imagenet_norm=True)
    out = adapter(torch.full((2, 1, 8, 8), -1.0))  # black: 0 on [0, 1]
    assert out.shape == (2, 3, 32, 32)
    expected = -torch.tensor(IMAGENET_MEAN) / torch.tensor(IMAGENET_STD)
    torch.testing.assert_close(out[0, :, 5, 7], expected)
    plain = InputAdapter(in_channels=3, min_size=32, imagenet_norm=False)
    x = images(1, 3, 48)
    assert torch.equal(plain(x), x)  # large enough, RGB, no normalisation: untouched
    with pytest.raises(ValueError, match="in_channels"):
        InputAdapter(in_channels=2, min_size=32, imagenet_norm=False)


@pytest.mark.parametrize("arch,reference", [
    ("resnet18", torchvision.models.resnet18),
    ("resnet50", torchvision.models.resnet50),
    ("vgg16", torchvision.models.vgg16),
])
def test_width_64_matches_torchvision_layout(arch, reference):
    assert set(PRETRAINED_WEIGHTS) == {"resnet18", "resnet50", "vgg16"}
    with torch.device("meta"):  # shapes only: no memory, no time
        ours = CLASSIFIERS.get(arch)(in_channels=1, num_classes=NUM_CLASSES, image_size=48)
        theirs = reference().state_dict()
    load_backbone(ours, theirs, arch)  # raises unless every key but the last layer fits
    assert ours.fc.out_features == NUM_CLASSES


@pytest.mark.parametrize("arch", sorted(PRETRAINED_WEIGHTS))
def test_pretrained_without_cache_names_model_weights_and_cache(arch, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(PretrainedWeightsUnavailable) as info:
        CLASSIFIERS.get(arch)(in_channels=1, num_classes=NUM_CLASSES, image_size=48,
                              width=64, pretrained="imagenet")
    msg = str(info.value)
    assert isinstance(info.value, ValueError)
    assert repr(arch) in msg and PRETRAINED_WEIGHTS[arch]["imagenet"] in msg
    assert str(tmp_path / "hub") in msg and "null" in msg
    assert str(cached_weights_path(arch, "imagenet")) in msg


def test_pretrained_loads_from_cache_and_checkpoint_rebuilds_without_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(3)
    imagenet = torchvision.models.resnet18().state_dict()  # stands in for the real weights
    path = cached_weights_path("resnet18", "imagenet")
    assert path.name == "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    torch.save(imagenet, path)

    model, kwargs = build("resnet18", 1, 48, width=64, pretrained="imagenet")
    assert torch.equal(model.conv1.weight, imagenet["conv1.weight"])
    assert torch.equal(model.layer4[1].bn2.running_var, imagenet["layer4.1.bn2.running_var"])
    assert model.fc.weight.shape == (NUM_CLASSES, 512)
    x = images(2, 1, 48)
    with torch.no_grad():
        out = model.eval()(x)
    assert out.shape == (2, NUM_CLASSES) and torch.isfinite(out).all()

    ckpt = tmp_path / "clf.pt"
    save_checkpoint(ckpt, classifier_payload(model, "resnet18", kwargs, {}))
    path.unlink()  # the checkpoint alone must do
    loaded, _ = load_classifier(ckpt)
    with torch.no_grad():
        assert torch.equal(loaded(x), inference_layout(model, "cpu")(x))  # the loader's layout
        assert torch.allclose(loaded(x), out, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch,pretrained,width,match", [
    ("small_cnn", "imagenet", 32, "no pretrained weights"),
    ("resnet18", "imagenet21k", 64, "not a weight set"),
    ("vgg16", "imagenet", 32, "width"),
    ("nope", None, 32, "unknown classifier"),
])
def test_validate_pretrained_names_the_param(arch, pretrained, width, match):
    with pytest.raises(ValueError, match=match):
        validate_pretrained(arch, pretrained, width)


def test_random_init_transfer_models_need_no_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    validate_pretrained("resnet50", None, TINY)
    model, _ = build("resnet50", 1, 8, pretrained=None)
    assert model.feature_dim == 32 * TINY
    assert not (tmp_path / "hub").exists()
