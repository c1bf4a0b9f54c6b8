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

Decoding (PIL, several threads; decoding releases the GIL) brings every image to 8 bits, L or
RGB, as a viewer shows it, then crops, converts to the output channels and resizes:

- EXIF orientation is applied (a phone photo comes out upright); a crop box is in those upright
  pixels. Corrupt EXIF is counted in the meta and the image read as stored.
- Alpha (LA, RGBA, PA, and palette or colour-key transparency) is composited on black,
  ``value * alpha / 255`` rounded: the bundled datasets draw bright strokes on a black ground, and
  a transparent pixel's hidden colour is arbitrary.
- 16-bit grey (PNG, TIFF) keeps its high byte, ``v >> 8`` (65535 -> 255): scaled by the 16-bit
  range, never clipped; PIL reduces 16-bit colour PNGs the same way.
- 32-bit integer images (mode I) are read when their values lie in [0, 255], float images
  (mode F) when they lie in [0, 1] (scaled by 255, rounded), as the ``npz`` kind reads arrays;
  others are an error: there is no scale to assume.
- CMYK and YCbCr are converted to RGB by PIL (no colour profile is applied); grey to RGB repeats
  the grey level, RGB to grey is ITU-R 601 luma.
- A multi-frame file (TIFF pages, animated GIF or PNG) gives its first frame; the count is in the
  meta and logged.
- A truncated, empty or non-image file, an image larger than PIL's decompression-bomb limit
  (``Image.MAX_IMAGE_PIXELS``; PIL's warning counts as an error here), a broken symbolic link and
  an unsupported mode are errors naming the file.

What was converted is counted in the prepared file's meta (``source_modes``, ``decoding``).
"""

from __future__ import annotations

import logging
import os
import re
import struct
import unicodedata
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
from pydantic.dataclasses import dataclass

from ganaug.data.base import RawDataset, register_dataset
from ganaug.data.classes import ClassOptions
from ganaug.io import DataFileError
from ganaug.params import STRICT

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

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


# ------------------------------------------------------------------------------------------
# Decoding
# ------------------------------------------------------------------------------------------

GREY_16 = ("I;16", "I;16B", "I;16L", "I;16N")
READABLE_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "I", "F",
                  *GREY_16)
NOTES = ("alpha_on_black", "scaled_16bit", "scaled_float", "first_frame_only", "exif_rotated",
         "exif_unreadable")


class _Decoded(NamedTuple):
    """What was done to one image, for the meta."""

    source_mode: str
    resized: bool
    notes: frozenset[str]  # of NOTES


def read_images(files: list[Path], cfg: ImageFolderConfig) -> tuple[np.ndarray, dict]:
    """Decode ``files`` into uint8 ``(N, C, H, W)``; also return what was converted.

    The target size and channels come from ``cfg`` or, when unset, from the first file (after
    orientation and crop; grey sources give 1 channel, colour and palette ones 3).
    """
    from PIL import Image

    with warnings.catch_warnings():
        # Between MAX_IMAGE_PIXELS and twice that PIL only warns; a dataset image that large is a
        # bomb or a mistake either way. Filters are process-wide, so the pool's threads see it.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return _read_all(files, cfg)


def _read_all(files: list[Path], cfg: ImageFolderConfig) -> tuple[np.ndarray, dict]:
    from PIL import Image

    first = None
    if cfg.size is None or cfg.channels is None:
        first, _, _ = _upright_8bit(files[0], cfg.crop)
    channels = cfg.channels or (1 if first.mode == "L" else 3)
    h, w = cfg.size if cfg.size is not None else (first.height, first.width)
    mode = "L" if channels == 1 else "RGB"
    resample = getattr(Image.Resampling, cfg.resample.upper())
    out = np.empty((len(files), channels, h, w), dtype=np.uint8)

    def load(i: int) -> _Decoded:
        array, done = _decode(files[i], mode, (w, h), resample, cfg.crop)
        out[i] = array.reshape(h, w, channels).transpose(2, 0, 1)  # (H, W, C) -> (C, H, W)
        return done

    pool = ThreadPoolExecutor(cfg.workers or min(8, os.cpu_count() or 1))
    try:
        results = list(pool.map(load, range(len(files))))  # in order: the first error is raised
    finally:
        pool.shutdown(cancel_futures=True)  # after an error, do not decode the rest
    modes = Counter(r.source_mode for r in results)
    notes = Counter(n for r in results for n in r.notes)
    if notes["first_frame_only"]:
        log.warning("%d multi-frame files: read their first frame only", notes["first_frame_only"])
    info = {
        "image_size": [h, w], "channels": channels,
        "size_from": "config" if cfg.size is not None else "first image",
        "channels_from": "config" if cfg.channels is not None else "first image",
        "source_modes": dict(sorted(modes.items())),
        "converted_mode": int(sum(n for m, n in modes.items() if m != mode)),
        "resized": int(sum(r.resized for r in results)), "resample": cfg.resample,
        "decoding": {n: notes[n] for n in NOTES},
    }
    if cfg.crop is not None:
        info["crop"] = list(cfg.crop)
    return out, info


def _decode(path: Path, mode: str, size: tuple[int, int], resample, crop: list[int] | None
            ) -> tuple[np.ndarray, _Decoded]:
    """One image in ``mode`` (L or RGB) at ``size`` (W, H): uint8 ``(H, W)`` or ``(H, W, 3)``."""
    img, source_mode, notes = _upright_8bit(path, crop, draft=(mode, size))
    resized = img.size != size or "drafted" in notes
    img = img.convert(mode)
    if img.size != size:
        img = img.resize(size, resample)
    return np.asarray(img, dtype=np.uint8), _Decoded(source_mode, resized,
                                                     frozenset(notes & set(NOTES)))


def _upright_8bit(path: Path, crop: list[int] | None,
                  draft: tuple[str, tuple[int, int]] | None = None
                  ) -> tuple[PILImage, str, set[str]]:
    """The image as a viewer shows it, in 8-bit L or RGB, alpha on black, cropped; its source
    mode; notes on what was done. Every failure is a DataFileError naming ``path``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return _normalise(img, path, crop, draft)
    except DataFileError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataFileError(f"{path}: refused as a possible decompression bomb "
                            f"({str(exc).rstrip('.')}; PIL's Image.MAX_IMAGE_PIXELS)") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, struct.error
            ) as exc:
        raise DataFileError(f"{path}: unreadable image ({exc})") from None


ORIENTATION_TAG = 0x0112


def _normalise(img: PILImage, path: Path, crop: list[int] | None,
               draft: tuple[str, tuple[int, int]] | None) -> tuple[PILImage, str, set[str]]:
    source_mode, notes = img.mode, set()
    if getattr(img, "is_animated", False):
        notes.add("first_frame_only")
    orientation = _orientation(img, notes)  # JPEG, TIFF: from the header, before load
    if orientation in range(2, 9):
        notes.add("exif_rotated")
    if draft is not None and crop is None:
        before = img.size
        mode, (w, h) = draft
        img.draft(mode, (h, w) if orientation in range(5, 9) else (w, h))  # JPEG: decode smaller
        if img.size != before:
            notes.add("drafted")
    announced = img.size
    img.load()
    if img.size != announced:
        raise DataFileError(
            f"{path}: decoded at {img.size[0]}x{img.size[1]} pixels but announced as "
            f"{announced[0]}x{announced[1]} (PIL does this with uncompressed TIFFs carrying EXIF "
            f"orientation 5-8); save the image again upright, without the orientation tag")
    # TIFF: PIL has applied the orientation while loading and removed the tag.
    pending = _orientation(img, notes)
    img = _upright(_to_8bit(img, path, notes), pending)
    if crop is not None:
        left, top, right, bottom = crop
        if right > img.width or bottom > img.height:
            raise DataFileError(
                f"{path}: crop box {list(crop)} ([left, top, right, bottom]) does not fit in the "
                f"image, which is {img.width}x{img.height} pixels (width x height) upright")
        img = img.crop((left, top, right, bottom))
    return img, source_mode, notes


def _orientation(img: PILImage, notes: set[str]) -> int | None:
    """The EXIF orientation tag, or None. Corrupt EXIF is noted, not fatal: the pixels are fine,
    viewers show them as stored, and so did this loader before it read EXIF."""
    try:
        return img.getexif().get(ORIENTATION_TAG)
    except (SyntaxError, ValueError, KeyError, TypeError, IndexError, struct.error):
        notes.add("exif_unreadable")
        return None


def _upright(img: PILImage, orientation: int | None) -> PILImage:
    """Apply an EXIF orientation (2-8) as a viewer does; other values leave the image as is."""
    from PIL import Image

    t = Image.Transpose
    method = {2: t.FLIP_LEFT_RIGHT, 3: t.ROTATE_180, 4: t.FLIP_TOP_BOTTOM, 5: t.TRANSPOSE,
              6: t.ROTATE_270, 7: t.TRANSVERSE, 8: t.ROTATE_90}.get(orientation or 1)
    return img if method is None else img.transpose(method)


def _to_8bit(img: PILImage, path: Path, notes: set[str]) -> PILImage:
    """Any readable mode -> 8-bit L (grey sources) or RGB (colour and palette ones)."""
    from PIL import Image

    mode = img.mode
    if mode not in READABLE_MODES:
        raise DataFileError(f"{path}: unsupported image mode {mode!r}; readable modes: "
                            f"{', '.join(READABLE_MODES)}")
    if "transparency" in img.info:  # a palette entry or a colour that stands for transparent
        if mode not in ("1", "L", "P", "RGB"):
            raise DataFileError(f"{path}: a transparent colour key on a {mode} image is not "
                                f"supported; save it with an alpha channel instead")
        img = img.convert("LA" if mode in ("1", "L") else "RGBA")
    elif mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("LA", "RGBA"):
        notes.add("alpha_on_black")
        return _on_black(np.asarray(img))
    if mode in GREY_16 or (mode == "I" and img.format == "PNG"):  # older PIL: 16-bit PNG as I
        notes.add("scaled_16bit")
        return Image.fromarray((np.asarray(img).astype(np.uint32) >> 8).astype(np.uint8))
    if mode in ("I", "F"):
        return _scaled_32bit(np.asarray(img), mode, path, notes)
    return img.convert("L" if mode in ("1", "L") else "RGB")


def _on_black(a: np.ndarray) -> PILImage:
    """uint8 ``(H, W, 2)`` LA or ``(H, W, 4)`` RGBA -> L or RGB: ``round(value * alpha / 255)``."""
    from PIL import Image

    a = a.astype(np.uint32)
    out = ((a[..., :-1] * a[..., -1:] + 127) // 255).astype(np.uint8)  # never exactly .5: 255 odd
    return Image.fromarray(out[..., 0] if out.shape[-1] == 1 else out)


def _scaled_32bit(a: np.ndarray, mode: str, path: Path, notes: set[str]) -> PILImage:
    """Mode I: values in [0, 255] kept; mode F: values in [0, 1] times 255; else an error."""
    from PIL import Image

    top = 255 if mode == "I" else 1
    finite = bool(np.isfinite(a).all())
    lo, hi = (a.min(), a.max()) if finite else (np.nan, np.nan)
    if not finite or lo < 0 or hi > top:
        what = "32-bit integer (PIL mode I)" if mode == "I" else "float (PIL mode F)"
        found = f"values in [{lo:g}, {hi:g}]" if finite else "non-finite values"
        raise DataFileError(f"{path}: {what} image with {found}; such images are read only "
                            f"in [0, {top}] (no scale is assumed): save it as 8- or 16-bit")
    if mode == "F":
        notes.add("scaled_float")
        a = np.rint(a * 255.0)
    return Image.fromarray(a.astype(np.uint8))
