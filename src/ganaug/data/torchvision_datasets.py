"""``torchvision``: MNIST, FashionMNIST, CIFAR10, SVHN and USPS through ``torchvision.datasets``.

Both official splits are read (train -> train, test -> test; the pipeline carves val from train).
Arrays are taken from the dataset objects whole (``.data`` and ``.targets``/``.labels``), not image
by image. Class names are fixed here so that datasets of one domain share them: the digit datasets
all use "0".."9", the names ``sklearn_digits`` and ``typeset_digits`` use too, so MNIST, USPS, SVHN
and the bundled digits can be each other's cross-dataset targets.
"""

from __future__ import annotations

from dataclasses import dataclass as plain_dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic.dataclasses import dataclass

from ganaug.data.arrays import Layout, to_labels, to_nchw_uint8
from ganaug.data.base import RawDataset, register_dataset
from ganaug.data.classes import ClassOptions
from ganaug.io import DataFileError
from ganaug.params import STRICT

DIGITS = [str(d) for d in range(10)]


@plain_dataclass(frozen=True)
class TorchvisionSpec:
    classes: list[str]
    layout: Layout  # of the dataset object's .data array
    labels_attr: str  # "targets" or "labels"
    split_arg: str  # "train" (a bool) or "split" (a str)


SPECS: dict[str, TorchvisionSpec] = {
    "MNIST": TorchvisionSpec(DIGITS, "NHW", "targets", "train"),
    "FashionMNIST": TorchvisionSpec(
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"], "NHW", "targets", "train"),
    "CIFAR10": TorchvisionSpec(
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
         "truck"], "NHWC", "targets", "train"),
    "SVHN": TorchvisionSpec(DIGITS, "NCHW", "labels", "split"),
    "USPS": TorchvisionSpec(DIGITS, "NHW", "targets", "train"),
}


@dataclass(config=STRICT, frozen=True)
class TorchvisionConfig(ClassOptions):
    kind: Literal["torchvision"]
    name: Literal["MNIST", "FashionMNIST", "CIFAR10", "SVHN", "USPS"]
    # torchvision's root folder (it keeps each dataset in its own layout under it).
    root: str
    # true: fetch missing files (needs network). false: the files must be under root.
    download: bool = False


@register_dataset("torchvision", TorchvisionConfig)
def load_torchvision(cfg: TorchvisionConfig) -> RawDataset:
    spec = SPECS[cfg.name]
    xs, ys, splits, layouts = [], [], [], {}
    for split in ("train", "test"):
        ds = _open(cfg, spec, split)
        where = f"torchvision {cfg.name} ({split}) under {cfg.root}"
        x, layouts[split] = to_nchw_uint8(np.asarray(ds.data), spec.layout, where)
        y = to_labels(np.asarray(getattr(ds, spec.labels_attr)), len(spec.classes), where)
        if len(x) != len(y):
            raise DataFileError(f"{where}: {len(x)} images but {len(y)} labels")
        xs.append(x)
        ys.append(y)
        splits.append(np.full(len(y), split))
    info = {"origin": f"torchvision.datasets.{cfg.name}", "path": str(cfg.root)}
    return RawDataset(x=np.concatenate(xs), y=np.concatenate(ys), classes=list(spec.classes),
                      split=np.concatenate(splits), info=info)


def _open(cfg: TorchvisionConfig, spec: TorchvisionSpec, split: str) -> Any:
    """The torchvision dataset object; a missing file or failed download is a DataFileError."""
    import torchvision.datasets

    cls = getattr(torchvision.datasets, cfg.name)
    arg = {"train": split == "train"} if spec.split_arg == "train" else {"split": split}
    try:
        return cls(root=str(Path(cfg.root)), download=cfg.download, **arg)
    except (RuntimeError, OSError) as exc:  # torchvision: "Dataset not found", URLError, ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if cfg.download:
            raise DataFileError(
                f"torchvision {cfg.name} ({split}): download into {cfg.root} failed ({reason}); "
                f"download: true needs network access, or put torchvision's {cfg.name} files "
                f"under {cfg.root} and set download: false"
            ) from None
        raise DataFileError(
            f"torchvision {cfg.name} ({split}) not found under root {cfg.root} ({reason}); put "
            f"torchvision's {cfg.name} files there, or set download: true (needs network access) "
            f"to fetch them"
        ) from None
