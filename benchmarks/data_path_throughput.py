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

from ganaug.config import TrainConfig
from ganaug.models import CLASSIFIERS
from ganaug.runtime import generator
from ganaug.tensors import to_model_range
from ganaug.training import augment


def write_folder(root: Path, n: int, size: int, classes: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(
            root / f"class{i % classes}" / f"{i:06d}.png")


def model_and_opt(classes: int, size: int, width: int | None
                  ) -> tuple[torch.nn.Module | None, torch.optim.Optimizer | None]:
    """small_cnn of ``width`` and its optimiser; ``(None, None)`` for no model (--data-only)."""
    if width is None:
        return None, None
    torch.manual_seed(0)
    model = CLASSIFIERS.get("small_cnn")(in_channels=1, num_classes=classes, image_size=size,
                                         width=width)
    return model.train(), torch.optim.AdamW(model.parameters(), lr=1e-3)


def step(model, opt, x, y) -> None:
    if model is None:  # --data-only: the data path alone
        return
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def project_path(root: Path, epochs: int, size: int, classes: int, width: int | None) -> float:
    """Images/s: decode once into uint8, then index, augment and train from memory."""
    from ganaug.data.image_folder import ImageFolderConfig, load_image_folder

    raw = load_image_folder(ImageFolderConfig(kind="image_folder", path=str(root),
                                              layout="flat", channels=1))
    xt, yt = torch.from_numpy(raw.x), torch.from_numpy(raw.y)  # uint8 (N, 1, H, W)
    cfg = TrainConfig(max_shift=3, hflip=True)
    model, opt = model_and_opt(classes, size, width)
    timed, images = 0.0, 0
    for epoch in range(epochs + 1):  # epoch 0: warm-up
        start = time.perf_counter()
        g = generator(epoch)
        order = torch.randperm(len(yt), generator=g)
        for s in range(0, len(order), 64):
            idx = order[s:s + 64]
            step(model, opt, augment(to_model_range(xt[idx]), cfg, g), yt[idx])
        if epoch:
            timed += time.perf_counter() - start
            images += len(yt)
    return images / timed


def reference_path(root: Path, epochs: int, size: int, classes: int, workers: int,
                   width: int | None) -> float:
    """Images/s: ImageFolder + DataLoader, PIL decoding and torchvision transforms per epoch."""
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.Grayscale(1), transforms.RandomCrop(size, padding=3),
                             transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                             transforms.Normalize([0.5], [0.5])])
    loader = torch.utils.data.DataLoader(datasets.ImageFolder(str(root), tf), batch_size=64,
                                         shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0)
    model, opt = model_and_opt(classes, size, width)
    timed, images = 0.0, 0
    for epoch in range(epochs + 1):
        start = time.perf_counter()
        for x, y in loader:
            step(model, opt, x, y)
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
        print(f"project (uint8 in memory, augment on the device): {ours:.0f} images/s")  # noqa: T201
        for workers in args.workers:
            ref = reference_path(root, args.epochs, args.size, args.classes, workers, width)
            print(f"ImageFolder + DataLoader ({workers} workers): {ref:.0f} images/s; "  # noqa: T201
                  f"project / reference = {ours / ref:.2f}x")


if __name__ == "__main__":
    main()
