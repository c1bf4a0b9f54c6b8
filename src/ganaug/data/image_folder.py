"""``image_folder``: a labelled folder of images, with or without split folders.

Two layouts (``layout: auto`` tells them apart by the split folder names):

- ``<path>/<split>/<class>/*.png`` with split folders named in ``splits`` (``train``, ``val``,
  ``test`` by default; val is optional). FER2013's image-folder export (``train/<class>/*.jpg``,
  ``test/<class>/*.jpg``) is one.
- ``<path>/<class>/*.png``: no official split; ``data.*`` splits it with a seed.

Class folder names are the source class names; ``class_map`` turns them into canonical names.
Images are decoded with PIL (several threads; decoding releases the GIL), converted to grey or RGB
and resized to one size; what was converted is recorded in the prepared file's meta.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic.dataclasses import dataclass

from ganaug.config import STRICT
from ganaug.data.base import RawDataset, register_dataset
from ganaug.data.classes import ClassOptions
from ganaug.io import DataFileError

log = logging.getLogger(__name__)

DEFAULT_EXTENSIONS = [".png", ".jpg", ".jpeg", ".bmp"]
RESAMPLE = Literal["nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"]


@dataclass(config=STRICT, frozen=True)
class ImageFolderConfig(ClassOptions):
    kind: Literal["image_folder"]
    path: str
    # auto: split layout when any folder named in `splits` exists under path, else flat.
    layout: Literal["auto", "split", "flat"] = "auto"
    # Split folder name -> split. Missing split folders are fine (val is often absent).
    splits: dict[str, Literal["train", "val", "test"]] = field(
        default_factory=lambda: {"train": "train", "val": "val", "test": "test"})
    # Class folders to read, in label order (default: every class folder, sorted by name).
    classes: list[str] | None = None
    # Output size [H, W] and channels (1 grey, 3 RGB); null: those of the first image.
    size: list[int] | None = None
    channels: Literal[1, 3] | None = None
    resample: RESAMPLE = "bilinear"
    extensions: list[str] = field(default_factory=lambda: list(DEFAULT_EXTENSIONS))
    # Decoding threads (0: one per CPU, at most 8).
    workers: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 1):
            raise ValueError(f"size: expected [H, W] with H, W >= 1, got {self.size}")
        if not self.extensions:
            raise ValueError("extensions: list at least one file extension")
        if not self.splits or self.workers < 0:
            raise ValueError("splits must not be empty and workers must be >= 0")
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes: duplicate names in {self.classes}")


@register_dataset("image_folder", ImageFolderConfig)
def load_image_folder(cfg: ImageFolderConfig) -> RawDataset:
    root = Path(cfg.path)
    if not root.is_dir():
        raise DataFileError(
            f"{root}: image folder not found. Put the images at this path (the dataset's `path` in "
            f"params.yaml) as <path>/<split>/<class>/*.png (split folders "
            f"{sorted(cfg.splits)}) or <path>/<class>/*.png"
        )
    class_dirs, skipped = _class_dirs(root, cfg)
    groups = _list_images(class_dirs, cfg.extensions)  # (split or None, class folder) -> files
    classes = _class_order(root, groups, cfg.classes)
    files = [f for fs in groups.values() for f in fs]
    labels = [classes.index(c) for (_, c), fs in groups.items() for _ in fs]
    splits = [s for (s, _), fs in groups.items() for _ in fs]
    x, conv = read_images(files, cfg)
    info = {"origin": "image folder", "path": str(root), "files": len(files), **conv}
    if skipped:
        info["skipped_class_folders"] = skipped
    split = np.asarray(splits, dtype=str) if splits[0] is not None else None
    return RawDataset(x=x, y=np.asarray(labels, dtype=np.int64), classes=classes, split=split,
                      info=info)


# ------------------------------------------------------------------------------------------
# Finding the files
# ------------------------------------------------------------------------------------------


def _class_dirs(root: Path, cfg: ImageFolderConfig
                ) -> tuple[list[tuple[str | None, Path]], list[str]]:
    """(split or None for the flat layout, class folder) pairs to read; names of skipped ones."""
    subdirs = _subdirs(root)
    split_dirs = [d for d in subdirs if d.name in cfg.splits]
    layout = cfg.layout if cfg.layout != "auto" else ("split" if split_dirs else "flat")
    if layout == "flat":
        class_dirs: list[tuple[str | None, Path]] = [(None, d) for d in subdirs]
    else:
        if not split_dirs:
            raise DataFileError(f"{root}: layout split, but none of the split folders "
                                f"{sorted(cfg.splits)} exists; found {[d.name for d in subdirs]}")
        others = [d.name for d in subdirs if d.name not in cfg.splits]
        if others:
            raise DataFileError(f"{root}: folders {others} are not split folders "
                                f"{sorted(cfg.splits)}; rename them or map them in `splits`")
        class_dirs = [(cfg.splits[s.name], d) for s in split_dirs for d in _subdirs(s)]
    if not class_dirs:
        raise DataFileError(f"{root}: no class folders found, so no images at all")
    if cfg.classes is None:
        return class_dirs, []
    skipped = sorted({d.name for _, d in class_dirs} - set(cfg.classes))
    return [(s, d) for s, d in class_dirs if d.name in cfg.classes], skipped


def _list_images(class_dirs: list[tuple[str | None, Path]], extensions: list[str]
                 ) -> dict[tuple[str | None, str], list[Path]]:
    """Sorted image files of each class folder; an empty class folder is an error naming it."""
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    groups: dict[tuple[str | None, str], list[Path]] = {}
    for split, d in class_dirs:
        files = sorted(p for p in d.iterdir() if p.suffix.lower() in exts and p.is_file()
                       and not p.name.startswith("."))
        if not files:
            raise DataFileError(f"{d}: empty class folder: no {sorted(exts)} images in it"
                                + _nested_hint(d))
        groups[(split, d.name)] = files
    return groups


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _nested_hint(folder: Path) -> str:
    nested = _subdirs(folder)
    if not nested:
        return ""
    return f" (it holds folders {[p.name for p in nested[:5]]}; images must lie directly in it)"


def _class_order(root: Path, groups: dict, wanted: list[str] | None) -> list[str]:
    found = sorted({c for _, c in groups})
    if wanted is None:
        return found
    missing = [c for c in wanted if c not in found]
    if missing:
        raise DataFileError(f"{root}: no class folder for classes {missing}; found {found}")
    return list(wanted)


# ------------------------------------------------------------------------------------------
# Decoding
# ------------------------------------------------------------------------------------------


def read_images(files: list[Path], cfg: ImageFolderConfig) -> tuple[np.ndarray, dict]:
    """Decode ``files`` into uint8 ``(N, C, H, W)``; also return what was converted.

    The target size and channels come from ``cfg`` or, when unset, from the first file.
    """
    from PIL import Image

    first_mode, first_size = _probe(files[0])
    channels = cfg.channels or (1 if first_mode in ("1", "L", "LA", "I", "I;16", "F") else 3)
    h, w = cfg.size if cfg.size is not None else (first_size[1], first_size[0])
    mode = "L" if channels == 1 else "RGB"
    resample = getattr(Image.Resampling, cfg.resample.upper())
    out = np.empty((len(files), channels, h, w), dtype=np.uint8)

    def load(i: int) -> tuple[str, bool]:
        img, src_mode, resized = _decode(files[i], mode, (w, h), resample)
        out[i] = img.reshape(h, w, channels).transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
        return src_mode, resized

    pool = ThreadPoolExecutor(cfg.workers or min(8, os.cpu_count() or 1))
    try:
        results = list(pool.map(load, range(len(files))))  # in order: the first error is raised
    finally:
        pool.shutdown(cancel_futures=True)  # after an error, do not decode the rest
    modes = Counter(m for m, _ in results)
    info = {
        "image_size": [h, w], "channels": channels,
        "size_from": "config" if cfg.size is not None else "first image",
        "channels_from": "config" if cfg.channels is not None else "first image",
        "source_modes": dict(sorted(modes.items())),
        "converted_mode": int(sum(n for m, n in modes.items() if m != mode)),
        "resized": int(sum(r for _, r in results)), "resample": cfg.resample,
    }
    return out, info


def _probe(path: Path) -> tuple[str, tuple[int, int]]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.mode, img.size
    except (UnidentifiedImageError, OSError) as exc:
        raise DataFileError(f"{path}: unreadable image ({exc})") from None


def _decode(path: Path, mode: str, size: tuple[int, int], resample) -> tuple[np.ndarray, str, bool]:
    """One image as uint8 ``(H, W)`` or ``(H, W, 3)``; its source mode; whether it was resized."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            src_mode, resized = img.mode, img.size != size
            if resized:
                img.draft(mode, size)  # JPEG: decode at a reduced scale when that is enough
            img = img.convert(mode)
            if img.size != size:
                img = img.resize(size, resample)
            return np.asarray(img, dtype=np.uint8), src_mode, resized
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataFileError(f"{path}: unreadable image ({exc})") from None
