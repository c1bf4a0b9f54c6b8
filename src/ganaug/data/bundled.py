"""Datasets that a dependency ships, so the default study runs offline.

- ``sklearn_digits``: scikit-learn's 1,797 handwritten digits, 8x8, 17 grey levels (0..16).
- ``typeset_digits``: the same ten digits typeset from the fonts matplotlib bundles, pushed through
  the digits' own preprocessing (a binary 32x32 bitmap of the glyph, scaled to fill the frame, then
  counts of set pixels in 4x4 blocks), so the shift from handwriting is in the shapes, not in the
  format. A cross-dataset target.
"""

from __future__ import annotations

import math
from dataclasses import field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic.dataclasses import dataclass

from ganaug.data.base import RawDataset, register_dataset
from ganaug.data.classes import ClassOptions
from ganaug.params import STRICT

DIGIT_CLASSES = [str(d) for d in range(10)]


@dataclass(config=STRICT, frozen=True)
class SklearnDigitsConfig(ClassOptions):
    kind: Literal["sklearn_digits"]


@register_dataset("sklearn_digits", SklearnDigitsConfig)
def load_sklearn_digits(cfg: SklearnDigitsConfig) -> RawDataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 0..16 counts of set pixels per 4x4 block -> 0..255, the range every prepared image uses.
    x = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # (N, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    return RawDataset(x=x, y=y, classes=DIGIT_CLASSES,
                      info={"origin": "sklearn.datasets.load_digits", "levels": 17})


DEFAULT_FONTS = [
    "DejaVuSans", "DejaVuSans-Bold", "DejaVuSans-Oblique", "DejaVuSans-BoldOblique",
    "DejaVuSansMono", "DejaVuSansMono-Bold", "DejaVuSerif", "DejaVuSerif-Bold",
    "DejaVuSerif-Italic", "STIXGeneral", "STIXGeneralBol", "STIXGeneralItalic",
    "cmr10", "cmss10", "cmtt10", "cmb10",
]


@dataclass(config=STRICT, frozen=True)
class TypesetDigitsConfig(ClassOptions):
    kind: Literal["typeset_digits"]
    # Font files (names without .ttf) from matplotlib's bundled fonts.
    fonts: list[str] = field(default_factory=lambda: list(DEFAULT_FONTS))
    # Jittered renderings of each digit in each font.
    variants: int = 8
    size: int = 8
    # Each output pixel counts set pixels in a block of this many bitmap pixels per side.
    block: int = 4
    max_rotation: float = 8.0  # degrees
    max_shear: float = 0.15
    # The glyph's longer side fills this fraction of the frame (the digits fill it almost fully).
    fill: float = 1.0
    # Bitmap threshold on the antialiased glyph (fraction of full ink).
    threshold: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.fonts:
            raise ValueError("fonts: list at least one font")
        for name, v in (("variants", self.variants), ("size", self.size), ("block", self.block)):
            if v < 1:
                raise ValueError(f"{name}: must be >= 1, got {v}")
        if not 0 < self.fill <= 1 or not 0 < self.threshold < 1:
            raise ValueError("fill must be in (0, 1] and threshold in (0, 1)")
        super().__post_init__()


def font_dir() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@register_dataset("typeset_digits", TypesetDigitsConfig)
def load_typeset_digits(cfg: TypesetDigitsConfig) -> RawDataset:
    from PIL import ImageFont

    rng = np.random.default_rng(cfg.seed)
    xs, ys = [], []
    for font_name in cfg.fonts:
        path = font_dir() / f"{font_name}.ttf"
        if not path.is_file():
            raise FileNotFoundError(
                f"datasets: font {font_name!r} not found at {path}; matplotlib ships "
                f"{sorted(p.stem for p in font_dir().glob('*.ttf'))}"
            )
        font = ImageFont.truetype(str(path), size=96)
        for digit in range(10):
            glyph = _glyph(font, str(digit))
            for _ in range(cfg.variants):
                xs.append(_render(glyph, cfg, rng))
                ys.append(digit)
    x = np.stack(xs)[:, None]  # (N, 1, size, size)
    return RawDataset(
        x=x, y=np.asarray(ys, dtype=np.int64), classes=DIGIT_CLASSES,
        info={"origin": "matplotlib bundled fonts", "fonts": list(cfg.fonts),
              "levels": cfg.block * cfg.block + 1},
    )


def _glyph(font, char: str) -> np.ndarray:
    """Antialiased glyph as float [0, 1] ink, cropped to its bounding box."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (160, 160), 0)
    ImageDraw.Draw(img).text((30, 10), char, fill=255, font=font)
    ink = np.asarray(img, dtype=np.float32) / 255.0
    rows, cols = np.nonzero(ink > 0.05)
    return ink[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]


def _render(glyph: np.ndarray, cfg: TypesetDigitsConfig, rng: np.random.Generator) -> np.ndarray:
    """Jitter, re-crop, fit to the frame, binarize, then block-count into ``size`` x ``size``."""
    from PIL import Image

    angle = math.radians(rng.uniform(-cfg.max_rotation, cfg.max_rotation))
    shear = rng.uniform(-cfg.max_shear, cfg.max_shear)
    h, w = glyph.shape
    pad = max(h, w)
    canvas = np.zeros((h + 2 * pad, w + 2 * pad), np.float32)
    canvas[pad: pad + h, pad: pad + w] = glyph
    # Inverse affine (output -> input) about the canvas centre: rotation then shear.
    c, s = math.cos(angle), math.sin(angle)
    a, b, d, e = c, -s + shear * c, s, c + shear * s
    cy, cx = (canvas.shape[0] - 1) / 2, (canvas.shape[1] - 1) / 2
    coeffs = (a, b, cx - a * cx - b * cy, d, e, cy - d * cx - e * cy)
    img = Image.fromarray((canvas * 255).astype(np.uint8))
    img = img.transform(img.size, Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR)
    ink = np.asarray(img, dtype=np.float32) / 255.0
    rows, cols = np.nonzero(ink > 0.05)
    ink = ink[rows.min(): rows.max() + 1, cols.min(): cols.max() + 1]

    # Scale the longer side to `fill` of the bitmap frame, keep the aspect ratio, centre it.
    side = cfg.size * cfg.block
    scale = cfg.fill * side / max(ink.shape)
    nh, nw = max(1, round(ink.shape[0] * scale)), max(1, round(ink.shape[1] * scale))
    small = Image.fromarray((ink * 255).astype(np.uint8)).resize((nw, nh), Image.Resampling.BOX)
    bitmap = np.zeros((side, side), np.uint8)
    top, left = (side - nh) // 2, (side - nw) // 2
    bitmap[top: top + nh, left: left + nw] = np.asarray(small) >= cfg.threshold * 255
    counts = bitmap.reshape(cfg.size, cfg.block, cfg.size, cfg.block).sum(axis=(1, 3))
    return np.rint(counts * (255.0 / (cfg.block * cfg.block))).astype(np.uint8)
