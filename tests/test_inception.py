"""The FID Inception feature space: batching and input ranges with a tiny stand-in network (checked
against pytorch-fid's own image-file pipeline), and loading pytorch-fid's FID InceptionV3 from a
local file of random weights (the real 95 MB file is never downloaded in tests)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.hub
import torchvision
from PIL import Image
from pytorch_fid import inception as pf
from pytorch_fid.fid_score import calculate_frechet_distance, get_activations
from torch import nn

from ganaug.external import url_file_name
from ganaug.io import CheckpointError
from ganaug.metrics.fid import feature_stats, frechet_distance
from ganaug.metrics.inception import (
    FEATURE_DIM,
    FID_INCEPTION_SHA256,
    FID_INCEPTION_URL,
    RESIZE,
    inception_features,
    load_fid_inception,
)

pytestmark = pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated")


class Tiny(nn.Module):
    """Stands in for InceptionV3: float (B, 3, H, W) in [0, 1] -> [(B, 6, 1, 1)]; records inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():  # every Tiny() is the same network
            for p in self.conv.parameters():
                p.copy_(torch.randn(p.shape, generator=g))
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        self.seen.append(x.clone())
        return [nn.functional.adaptive_avg_pool2d(torch.tanh(self.conv(x)), 1)]


def random_images(n: int, c: int, seed: int = 0, size: int = 12) -> np.ndarray:
    x = np.random.default_rng(seed).integers(0, 256, size=(n, c, size, size), dtype=np.uint8)
    x[0, :, 0, 0], x[0, :, 0, 1] = 0, 255  # both ends of the range
    return x


def test_constants_are_pytorch_fids():
    assert FID_INCEPTION_URL == pf.FID_WEIGHTS_URL
    name = url_file_name(FID_INCEPTION_URL)
    assert name == "pt_inception-2015-12-05-6726825d.pth"
    assert FID_INCEPTION_SHA256.startswith(name.rsplit("-", 1)[1].split(".")[0])  # hub convention
    assert len(FID_INCEPTION_SHA256) == 64
    assert "299" in RESIZE and "bilinear" in RESIZE


def test_the_network_gets_3_channels_in_0_1_and_grey_is_repeated():
    grey = random_images(5, 1)
    net = Tiny()
    feats = inception_features(grey, net, batch_size=5, device="cpu")
    x = net.seen[0]
    assert x.shape == (5, 3, 12, 12) and x.dtype == torch.float32
    assert x.min() == 0.0 and x.max() == 1.0
    assert torch.equal(x[:, 0], x[:, 1]) and torch.equal(x[:, 0], x[:, 2])
    rgb = np.repeat(grey, 3, axis=1)
    assert np.array_equal(feats, inception_features(rgb, Tiny(), 5, "cpu"))


def test_batches_are_concatenated_in_order(tmp_path):
    images = random_images(10, 3)
    net = Tiny()
    feats = inception_features(images, net, batch_size=3, device="cpu")
    assert feats.shape == (10, 6) and feats.dtype == np.float32
    assert [len(x) for x in net.seen] == [3, 3, 3, 1]
    one_by_one = np.concatenate([inception_features(images[i: i + 1], net, 1, "cpu")
                                 for i in range(10)])
    assert np.allclose(feats, one_by_one, atol=1e-6)
    np.save(tmp_path / "images.npy", images)
    memmap = np.load(tmp_path / "images.npy", mmap_mode="r")
    assert np.array_equal(inception_features(memmap, Tiny(), 3, "cpu"), feats)
    assert np.array_equal(inception_features(torch.from_numpy(images), Tiny(), 3, "cpu"), feats)


def test_plain_matrix_outputs_are_accepted_and_bad_shapes_rejected():
    images = random_images(4, 3)
    flat = inception_features(images, nn.Sequential(nn.Flatten(), nn.Linear(3 * 144, 5)), 2, "cpu")
    assert flat.shape == (4, 5)
    with pytest.raises(ValueError, match="returned shape"):
        inception_features(images, nn.Identity(), 2, "cpu")  # (B, 3, 12, 12) is no feature matrix
    for bad in (images.astype(np.float32), images[:, :2], images[0], images[:0]):
        with pytest.raises(ValueError, match="uint8"):
            inception_features(bad, Tiny(), 2, "cpu")


def test_features_and_fid_agree_with_pytorch_fids_image_file_pipeline(tmp_path):
    """pytorch-fid reads PNGs (PIL -> RGB -> ToTensor, [0, 1]); the same images as uint8 arrays
    must give the same features, and the same FID through ganaug.metrics.fid."""
    real, fake = random_images(20, 1, seed=1), random_images(16, 3, seed=2)
    files = {}
    for tag, images in (("real", real), ("fake", fake)):
        files[tag] = []
        for i, img in enumerate(images):
            path = tmp_path / f"{tag}_{i:02d}.png"
            Image.fromarray(img[0] if img.shape[0] == 1 else img.transpose(1, 2, 0)).save(path)
            files[tag].append(str(path))
    net = Tiny()
    ours = {tag: inception_features(x, net, 7, "cpu") for tag, x in (("real", real), ("fake", fake))}
    theirs = {tag: get_activations(f, net, batch_size=7, dims=6, device="cpu", num_workers=0)
              for tag, f in files.items()}
    for tag in ours:
        assert np.allclose(ours[tag], theirs[tag], atol=1e-6), tag
    expected = calculate_frechet_distance(theirs["real"].mean(0), np.cov(theirs["real"], rowvar=False),
                                          theirs["fake"].mean(0), np.cov(theirs["fake"], rowvar=False))
    got = frechet_distance(*feature_stats(ours["real"]), *feature_stats(ours["fake"]))
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-8)


# ------------------------------------------------------------------------------------------
# The real architecture, with random weights from a local file
# ------------------------------------------------------------------------------------------


GREY = random_images(1, 1, size=32)  # one image: the full Inception is slow on the CPU


@pytest.fixture(scope="module")
def random_fid_inception(tmp_path_factory):
    """A weights file for pytorch-fid's FID InceptionV3 with seeded random weights, that
    network's state dict, and its features ``(1, 2048)`` of ``GREY`` repeated to RGB in [0, 1].

    pytorch-fid would download its weights while building the network; here its loader returns
    nothing and the load is skipped, capturing the torchvision-style Inception3 whose state dict
    has the layout of the real file.
    """
    captured = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pf, "load_state_dict_from_url", lambda *a, **k: {})
        mp.setattr(torchvision.models.Inception3, "load_state_dict",
                   lambda self, *a, **k: captured.setdefault("inception", self))
        net = pf.InceptionV3([3]).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in net.modules():  # He init keeps activations O(1) (no denormals: fast on CPU)
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2 / m.weight[0].numel()) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        expected = net(torch.from_numpy(np.repeat(GREY, 3, axis=1)).float() / 255)[0].flatten(1)
    path = tmp_path_factory.mktemp("weights") / "random_fid_inception.pth"
    # The released file predates torch's zip format: save in the legacy format it has.
    torch.save(captured["inception"].state_dict(), path, _use_new_zipfile_serialization=False)
    return path, net.state_dict(), expected.numpy()


def test_load_fid_inception_reads_the_local_file_and_never_downloads(random_fid_inception,
                                                                     monkeypatch):
    path, saved, expected = random_fid_inception

    def refuse(*args, **kwargs):
        raise AssertionError("download attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    loader = pf.load_state_dict_from_url
    net = load_fid_inception(path, "cpu")
    assert pf.load_state_dict_from_url is loader  # pytorch-fid's loader is put back
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    assert net.resize_input and net.normalize_input
    loaded = net.state_dict()
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)

    feats = inception_features(GREY, net, batch_size=1, device="cpu")
    assert feats.shape == (1, FEATURE_DIM) and feats.dtype == np.float32
    assert np.allclose(feats, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(expected).mean() > 1e-3  # a meaningful comparison, not two vectors of zeros


def test_a_wrong_or_corrupt_weights_file_is_a_checkpoint_error(tmp_path):
    loader = pf.load_state_dict_from_url
    missing = tmp_path / "missing.pth"
    with pytest.raises(CheckpointError, match="missing.pth: FID Inception weights not found"):
        load_fid_inception(missing, "cpu")
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(CheckpointError, match="corrupt.pth: not a readable PyTorch weights file"):
        load_fid_inception(corrupt, "cpu")
    not_a_dict = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], not_a_dict)
    with pytest.raises(CheckpointError, match="list.pth: expected a state dict"):
        load_fid_inception(not_a_dict, "cpu")
    other = tmp_path / "other.pth"
    torch.save(nn.Linear(2, 2).state_dict(), other)
    with pytest.raises(CheckpointError, match="other.pth: not the weights of pytorch-fid's FID"):
        load_fid_inception(other, "cpu")
    assert pf.load_state_dict_from_url is loader
