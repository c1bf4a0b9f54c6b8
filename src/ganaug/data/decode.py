"""Image files decoded into one uint8 array: the ``image_folder`` dataset kind's decoding.

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

``cfg`` is the kind's :class:`ganaug.data.image_folder.ImageFolderConfig` (its ``size``,
``channels``, ``crop``, ``resample`` and ``workers``), which imports this module; this one does
not import it back.
"""

from __future__ import annotations

import logging
import os
import struct
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ganaug.io import DataFileError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

log = logging.getLogger(__name__)

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


def read_images(files: list[Path], cfg: Any) -> tuple[np.ndarray, dict]:
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


def _read_all(files: list[Path], cfg: Any) -> tuple[np.ndarray, dict]:
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
