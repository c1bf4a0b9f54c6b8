"""``image_folder``: a labelled folder of images, with or without split folders.

Two layouts (``layout: auto`` tells them apart by the split folder names):

- ``<path>/<split>/<class>/*.png`` with split folders named in ``splits`` (``train``, ``val``,
  ``test`` by default; val is optional). FER2013's image-folder export (``train/<class>/*.jpg``,
  ``test/<class>/*.jpg``) is one.
- ``<path>/<class>/*.png``: no official split; ``data.*`` splits it with a seed.

Class folder names are the source class names; ``class_map`` turns them into canonical names.
With ``label_pattern`` there are no class folders: the images lie directly in ``<path>`` (or in
its split folders) and a regular expression takes each one's class code from its file name
(JAFFE's ``KA.AN1.39.tiff``). ``group_pattern`` takes a group (subject or sequence) from each file
name, so that a seeded split keeps a group in one split (see :mod:`ganaug.data.prepare`).

Files and folders whose names start with a dot (``.DS_Store``, macOS' ``._*``) and ``__MACOSX``
folders are ignored, as are files with other extensions (``Thumbs.db``, ``README.txt``). Names
are compared in Unicode NFC, so a folder named on macOS (NFD) matches a ``class_map`` key typed
in params.yaml.

Decoding the files is :mod:`ganaug.data.decode`'s job.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
from pydantic.dataclasses import dataclass

from ganaug.data.base import RawDataset, register_dataset
from ganaug.data.classes import ClassOptions
from ganaug.data.decode import read_images
from ganaug.io import DataFileError
from ganaug.params import STRICT

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

DEFAULT_EXTENSIONS = [".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"]
RESAMPLE = Literal["nearest", "box", "bilinear", "hamming", "bicubic", "lanczos"]
JUNK_FOLDERS = {"__MACOSX"}  # resource forks that macOS' zip adds next to the real folders


@dataclass(config=STRICT, frozen=True)
class ImageFolderConfig(ClassOptions):
    kind: Literal["image_folder"]
    path: str
    # auto: split layout when any folder named in `splits` exists under path, else flat.
    layout: Literal["auto", "split", "flat"] = "auto"
    # Split folder name -> split. Missing split folders are fine (val is often absent).
    splits: dict[str, Literal["train", "val", "test"]] = field(
        default_factory=lambda: {"train": "train", "val": "val", "test": "test"})
    # Classes to read, in label order: class folder names, or the codes label_pattern captures
    # (default: every class found, sorted by name).
    classes: list[str] | None = None
    # Output size [H, W] and channels (1 grey, 3 RGB); null: those of the first image (cropped).
    size: list[int] | None = None
    channels: Literal[1, 3] | None = None
    resample: RESAMPLE = "bilinear"
    extensions: list[str] = field(default_factory=lambda: list(DEFAULT_EXTENSIONS))
    # Decoding threads (0: one per CPU, at most 8).
    workers: int = 0
    # Labels from file names instead of class folders: a regular expression with a named group
    # `label`, searched in each file name; the captured codes are the source class names (rename
    # them with class_map). JAFFE: '^[A-Z]+\.(?P<label>[A-Z]{2})\d*\.'
    label_pattern: str | None = None
    # Each image's group (subject or sequence), from its file name: a regular expression with a
    # named group `group`. A seeded split keeps a group in one split. CK+: '^(?P<group>S\d+)_'
    group_pattern: str | None = None
    # A file name that label_pattern or group_pattern does not match: "error", or "skip" the file
    # (the count and a few names go into the meta).
    unmatched: Literal["error", "skip"] = "error"
    # Crop box [left, top, right, bottom] in pixels of the upright image (right and bottom
    # exclusive, as PIL's crop), applied before resizing; null: the whole image.
    crop: list[int] | None = None

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
        _check_pattern("label_pattern", self.label_pattern, "label")
        _check_pattern("group_pattern", self.group_pattern, "group")
        if self.crop is not None:
            if len(self.crop) != 4:
                raise ValueError(f"crop: expected [left, top, right, bottom], got {self.crop}")
            left, top, right, bottom = self.crop
            if min(left, top) < 0 or right <= left or bottom <= top:
                raise ValueError(f"crop: expected 0 <= left < right and 0 <= top < bottom, "
                                 f"got {self.crop}")


def _check_pattern(key: str, pattern: str | None, group: str) -> None:
    if pattern is None:
        return
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{key}: not a valid regular expression ({exc}): {pattern!r}") from None
    if group not in rx.groupindex:
        raise ValueError(f"{key}: needs a named group (?P<{group}>...), got {pattern!r}")


class _Entry(NamedTuple):
    split: str | None  # None in the flat layout
    label: str  # source class name: class folder name or captured code (NFC)
    path: Path


@register_dataset("image_folder", ImageFolderConfig)
def load_image_folder(cfg: ImageFolderConfig) -> RawDataset:
    root = Path(cfg.path)
    if not root.is_dir():
        raise DataFileError(
            f"{root}: image folder not found. Put the images at this path (the dataset's `path` in "
            f"params.yaml) as <path>/<split>/<class>/*.png (split folders "
            f"{sorted(cfg.splits)}) or <path>/<class>/*.png"
        )
    if cfg.label_pattern is None:
        entries, info = _entries_from_class_folders(root, cfg)
    else:
        entries, info = _entries_from_file_names(root, cfg)
    if cfg.label_pattern is not None and cfg.classes is not None:
        wanted = {_nfc(c) for c in cfg.classes}
        info["skipped_labels"] = sorted({e.label for e in entries} - wanted)
        entries = [e for e in entries if e.label in wanted]
    groups = None
    if cfg.group_pattern is not None:
        entries, groups, info["group_unmatched"] = _groups(entries, cfg)
        info["group_pattern"] = cfg.group_pattern
        info["groups_found"] = len(set(groups))
    if not entries and cfg.classes is None:  # with `classes`, _class_order names the missing
        raise DataFileError(f"{root}: no images left to read: the patterns matched no file name "
                            f"and unmatched is skip")
    classes = _class_order(root, entries, cfg)  # after skipping: no class without images
    x, conv = read_images([e.path for e in entries], cfg)
    info = {"origin": "image folder", "path": str(root), "files": len(entries), **info, **conv}
    split = np.asarray([e.split for e in entries], dtype=str) if entries[0].split else None
    return RawDataset(x=x, y=np.asarray([classes.index(e.label) for e in entries], dtype=np.int64),
                      classes=classes, split=split, info=info,
                      groups=None if groups is None else np.asarray(groups, dtype=str))


# ------------------------------------------------------------------------------------------
# Finding the files
# ------------------------------------------------------------------------------------------


def _containers(root: Path, cfg: ImageFolderConfig) -> list[tuple[str | None, Path]]:
    """(split, split folder) pairs in the split layout; ``[(None, root)]`` in the flat one."""
    subdirs = _subdirs(root)
    split_dirs = [d for d in subdirs if d.name in cfg.splits]
    layout = cfg.layout if cfg.layout != "auto" else ("split" if split_dirs else "flat")
    if layout == "flat":
        return [(None, root)]
    if not split_dirs:
        raise DataFileError(f"{root}: layout split, but none of the split folders "
                            f"{sorted(cfg.splits)} exists; found {[d.name for d in subdirs]}")
    others = [d.name for d in subdirs if d.name not in cfg.splits]
    if others:
        raise DataFileError(f"{root}: folders {others} are not split folders "
                            f"{sorted(cfg.splits)}; rename them or map them in `splits`")
    return [(cfg.splits[d.name], d) for d in split_dirs]


def _entries_from_class_folders(root: Path, cfg: ImageFolderConfig) -> tuple[list[_Entry], dict]:
    """Every image of every class folder to read; an empty class folder is an error naming it."""
    class_dirs = [(s, d) for s, c in _containers(root, cfg) for d in _subdirs(c)]
    if not class_dirs:
        raise DataFileError(f"{root}: no class folders found, so no images at all")
    info = {}
    if cfg.classes is not None:
        wanted = {_nfc(c) for c in cfg.classes}
        skipped = sorted({_nfc(d.name) for _, d in class_dirs} - wanted)
        class_dirs = [(s, d) for s, d in class_dirs if _nfc(d.name) in wanted]
        if skipped:
            info["skipped_class_folders"] = skipped
    exts = _extensions(cfg)
    entries = []
    for split, d in class_dirs:
        files = _image_files(d, exts)
        if not files:
            raise DataFileError(f"{d}: empty class folder: no {sorted(exts)} images in it"
                                + _nested_hint(d))
        entries += [_Entry(split, _nfc(d.name), f) for f in files]
    return entries, info


def _entries_from_file_names(root: Path, cfg: ImageFolderConfig) -> tuple[list[_Entry], dict]:
    """Images lying directly in ``root`` (or its split folders), labelled by ``label_pattern``."""
    assert cfg.label_pattern is not None
    exts = _extensions(cfg)
    files: list[Path] = []
    splits: list[str | None] = []
    info: dict = {"label_pattern": cfg.label_pattern}
    for split, folder in _containers(root, cfg):
        found = _image_files(folder, exts)
        if not found:
            raise DataFileError(f"{folder}: no {sorted(exts)} images in it; with label_pattern the "
                                f"images lie directly in it" + _nested_hint(folder))
        files += found
        splits += [split] * len(found)
        if split is None and _subdirs(folder):
            info["ignored_folders"] = [d.name for d in _subdirs(folder)]
    labels = _capture(files, cfg.label_pattern, "label", cfg.unmatched)
    info["label_unmatched"] = _unmatched(files, labels)
    entries = [_Entry(s, lab, f) for s, lab, f in zip(splits, labels, files, strict=True) if lab]
    return entries, info


def _groups(entries: list[_Entry], cfg: ImageFolderConfig) -> tuple[list[_Entry], list[str], dict]:
    """Entries whose name ``group_pattern`` matches, their groups, and the unmatched count."""
    assert cfg.group_pattern is not None
    files = [e.path for e in entries]
    groups = _capture(files, cfg.group_pattern, "group", cfg.unmatched)
    kept = [(e, g) for e, g in zip(entries, groups, strict=True) if g]
    return [e for e, _ in kept], [g for _, g in kept], _unmatched(files, groups)


def _capture(files: list[Path], pattern: str, group: str, unmatched: str) -> list[str | None]:
    """Named group ``group`` of ``pattern`` in each file name (NFC); None where it fails and
    ``unmatched`` is ``skip``. A match whose group captured nothing counts as no match."""
    rx = re.compile(pattern)
    out: list[str | None] = []
    for f in files:
        m = rx.search(_nfc(f.name))
        value = m.group(group) if m else None
        if not value and unmatched == "error":
            raise DataFileError(
                f"{f}: file name does not match {group}_pattern '{pattern}' (or its ({group}) group "
                f"captures nothing); fix the pattern, rename the file, or set unmatched: skip")
        out.append(value or None)
    return out


def _unmatched(files: list[Path], values: list[str | None]) -> dict:
    """Meta for files a pattern skipped: how many, and the first few names."""
    missed = [f.name for f, v in zip(files, values, strict=True) if not v]
    if missed:
        log.warning("skipped %d files that the pattern does not match, e.g. %s", len(missed),
                    missed[:3])
    return {"skipped": len(missed), "examples": missed[:5]}


def _extensions(cfg: ImageFolderConfig) -> set[str]:
    return {e.lower() if e.startswith(".") else f".{e.lower()}" for e in cfg.extensions}


def _image_files(folder: Path, exts: set[str]) -> list[Path]:
    """Sorted image files directly in ``folder`` (extension matched case-insensitively)."""
    files = []
    for p in sorted(folder.iterdir(), key=_nfc_name):
        if p.name.startswith(".") or p.suffix.lower() not in exts:
            continue
        if p.is_file():
            files.append(p)
        elif p.is_symlink() and not p.exists():
            raise DataFileError(f"{p}: broken symbolic link (its target is missing, or it points "
                                f"back to itself); fetch the file it stands for or delete the link")
    return files


def _subdirs(folder: Path) -> list[Path]:
    """Sub-folders, sorted; a broken link without an extension (a folder's, presumably) is an
    error: silently skipping it would drop a whole class."""
    out = []
    for p in folder.iterdir():
        if p.name.startswith(".") or p.name in JUNK_FOLDERS:
            continue
        if p.is_dir():
            out.append(p)
        elif not p.suffix and p.is_symlink() and not p.exists():
            raise DataFileError(f"{p}: broken symbolic link (its target is missing, or it points "
                                f"back to itself); mount or fetch the folder, or delete the link")
    return sorted(out, key=_nfc_name)


def _nested_hint(folder: Path) -> str:
    nested = _subdirs(folder)
    if not nested:
        return ""
    return f" (it holds folders {[p.name for p in nested[:5]]}; images must lie directly in it)"


def _nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


def _nfc_name(p: Path) -> str:
    """Sort key: the same order (so the same seeded split) whichever form the disk stores."""
    return _nfc(p.name)


def _class_order(root: Path, entries: list[_Entry], cfg: ImageFolderConfig) -> list[str]:
    found = sorted({e.label for e in entries})
    if cfg.classes is None:
        return found
    wanted = [_nfc(c) for c in cfg.classes]
    missing = [c for c in wanted if c not in found]
    if missing:
        what = "class folder" if cfg.label_pattern is None else "file whose label_pattern captures"
        raise DataFileError(f"{root}: no {what} for classes {missing}; found {found}")
    return wanted
