"""Classifier training throughput: the project's data path against torchvision's ImageFolder +
DataLoader (PIL decoding), on the same model, the same images and the same augmentations.

    python benchmarks/data_path_throughput.py [--images 7000] [--epochs 2] [--workers 0 2]

The project's path: the images decoded once into a uint8 tensor ``(N, C, H, W)`` (what
``prepare`` writes), every epoch's batches indexed from it and augmented as float tensors on the
device (shifts, flips; ``ganaug.training.augment``). The reference: a folder of PNG files,
``torchvision.datasets.ImageFolder`` decoding each image with PIL every epoch, torchvision's
transforms (RandomCrop with padding, RandomHorizontalFlip, ToTensor, Normalize), and a
``DataLoader`` with 0 or more worker processes. Both train ``small_cnn`` (width 32) with AdamW
on 48x48 grey images, batches of 64; the measured figure is training images per second over the
epochs after a warm-up epoch.

The project's path is its real training epoch (``ganaug.training._run_epoch``) with the device
habits ``train_classifier`` uses (on the CPU: channels-last tensors). The reference runs twice:
as a user would write it (default memory layout), and with the same channels-last model and
batches, so the data path's own share of the gain shows apart from the layout's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ganaug.configs.train import TrainConfig
from ganaug.models import CLASSIFIERS
from ganaug.runtime import Accel, generator
from ganaug.training import _run_epoch

CPU = torch.device("cpu")


def write_folder(root: Path, n: int, size: int, classes: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(
            root / f"class{i % classes}" / f"{i:06d}.png")


class NoModel(torch.nn.Module):
    """--data-only: a model whose step costs next to nothing, so the data paths are timed."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(len(x), -1)


def config(width: int) -> TrainConfig:
    """The classifier params both paths train with (the project's defaults otherwise)."""
    return TrainConfig(arch="small_cnn", width=width, batch_size=64, lr=1e-3, max_shift=3,
                       hflip=True)


def model_and_opt(classes: int, size: int, width: int | None, accel: Accel
                  ) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """small_cnn of ``width`` in ``accel``'s layout and its optimiser (NoModel: --data-only)."""
    torch.manual_seed(0)
    model = NoModel(classes) if width is None else CLASSIFIERS.get("small_cnn")(
        in_channels=1, num_classes=classes, image_size=size, width=width)
    model = accel.prepare(model)
    return model.train(), torch.optim.AdamW(model.parameters(), lr=1e-3)


def project_path(root: Path, epochs: int, size: int, classes: int, width: int | None) -> float:
    """Images/s: decode once into uint8, then the project's training epoch from memory."""
    from ganaug.data.image_folder import ImageFolderConfig, load_image_folder

    raw = load_image_folder(ImageFolderConfig(kind="image_folder", path=str(root),
                                              layout="flat", channels=1))
    xt, yt = torch.from_numpy(raw.x), torch.from_numpy(raw.y).long()  # uint8 (N, 1, H, W)
    cfg = config(width or 1)
    accel = Accel.for_device(CPU, cfg)  # what train_classifier uses on this device
    model, opt = model_and_opt(classes, size, width, accel)
    loss_fn = torch.nn.CrossEntropyLoss()
    timed, images = 0.0, 0
    for epoch in range(epochs + 1):  # epoch 0: warm-up
        start = time.perf_counter()
        _, seen = _run_epoch(model, opt, loss_fn, xt, yt, cfg, generator(epoch), epoch, accel)
        if epoch:
            timed += time.perf_counter() - start
            images += seen
    return images / timed


def reference_path(root: Path, epochs: int, size: int, classes: int, workers: int,
                   width: int | None, channels_last: bool) -> float:
    """Images/s: ImageFolder + DataLoader, PIL decoding and torchvision transforms per epoch;
    the model and batches in the default layout, or channels-last as the project's."""
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.Grayscale(1), transforms.RandomCrop(size, padding=3),
                             transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                             transforms.Normalize([0.5], [0.5])])
    loader = torch.utils.data.DataLoader(datasets.ImageFolder(str(root), tf), batch_size=64,
                                         shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0)
    accel = Accel(CPU, amp=False, channels_last=channels_last, compile_model=False)
    model, opt = model_and_opt(classes, size, width, accel)
    timed, images = 0.0, 0
    for epoch in range(epochs + 1):
        start = time.perf_counter()
        for x, y in loader:
            loss = F.cross_entropy(model(accel.images(x)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if epoch:
            timed += time.perf_counter() - start
            images += len(loader.dataset)
    return images / timed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=7000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--size", type=int, default=48)
    p.add_argument("--classes", type=int, default=7)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--width", type=int, default=32, help="small_cnn's width")
    p.add_argument("--data-only", action="store_true", help="no model: the data paths alone")
    args = p.parse_args()
    width = None if args.data_only else args.width
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        write_folder(root, args.images, args.size, args.classes)
        ours = project_path(root, args.epochs, args.size, args.classes, width)
        print(f"# {args.images} {args.size}x{args.size} grey PNGs, {args.classes} classes, "  # noqa: T201
              + ("no model (data only)" if args.data_only else f"small_cnn width {args.width}")
              + f", batch 64, {args.epochs} timed epochs, "
              f"{torch.get_num_threads()} torch threads")
        print(f"project (uint8 in memory, augment on the device, its training epoch): "  # noqa: T201
              f"{ours:.0f} images/s")
        for workers in args.workers:
            for channels_last in (False,) if args.data_only else (False, True):
                ref = reference_path(root, args.epochs, args.size, args.classes, workers, width,
                                     channels_last)
                layout = "channels-last like the project's" if channels_last else "default layout"
                print(f"ImageFolder + DataLoader ({workers} workers, {layout}): "  # noqa: T201
                      f"{ref:.0f} images/s; project / reference = {ours / ref:.2f}x")


if __name__ == "__main__":
    main()
