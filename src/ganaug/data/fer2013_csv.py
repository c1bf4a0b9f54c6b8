"""``fer2013_csv``: Kaggle's ``fer2013.csv`` (columns ``emotion,pixels,Usage``), 48x48 grey faces.

``emotion`` is the label 0..6 (angry, disgust, fear, happy, sad, surprise, neutral), ``pixels``
2,304 space-separated grey levels 0..255 in row-major order, ``Usage`` one of ``Training``,
``PublicTest``, ``PrivateTest`` (the official splits: train, val, test by default).

Parsing is vectorised: pandas reads the three columns as text, then numpy parses the pixel column
a few thousand rows at a time in C; only a chunk that fails is re-read row by row, to name the
first bad line. The 35,887-row file loads in a few seconds.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic.dataclasses import dataclass

from ganaug.data.base import RawDataset, register_dataset
from ganaug.data.classes import ClassOptions
from ganaug.data.download import download_competition_file
from ganaug.io import DataFileError
from ganaug.params import STRICT

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

FER2013_CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
KAGGLE_COMPETITION = "challenges-in-representation-learning-facial-expression-recognition-challenge"
OFFICIAL_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SplitName = Literal["train", "val", "test", "drop"]
CHUNK_ROWS = 4096


@dataclass(config=STRICT, frozen=True)
class Fer2013CsvConfig(ClassOptions):
    kind: Literal["fer2013_csv"]
    # Where the CSV is (relative paths are relative to where the stage runs: the repo root).
    path: str
    # Usage value -> split ("drop" leaves those rows out). null: ignore Usage, split with data.seed.
    splits: dict[str, SplitName] | None = field(default_factory=lambda: dict(OFFICIAL_SPLITS))
    # Images are size x size.
    size: int = 48
    # false: the file must exist. kaggle: fetch it with the kaggle package when it is missing.
    download: Literal[False, "kaggle"] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.size < 1:
            raise ValueError(f"size: must be >= 1, got {self.size}")
        if self.splits is not None and not any(s != "drop" for s in self.splits.values()):
            raise ValueError(f"splits: maps no Usage value to train, val or test: {self.splits}")


@register_dataset("fer2013_csv", Fer2013CsvConfig)
def load_fer2013_csv(cfg: Fer2013CsvConfig) -> RawDataset:
    path = Path(cfg.path)
    if not path.is_file():
        if cfg.download != "kaggle":
            raise DataFileError(missing_file_message(path))
        download_competition_file(KAGGLE_COMPETITION, "fer2013.tar.gz", "fer2013.csv", path)
    return read_fer2013_csv(path, cfg.splits, cfg.size)


def missing_file_message(path: Path) -> str:
    return (
        f"{path}: FER2013 CSV not found. Put Kaggle's fer2013.csv at this path (the dataset's "
        f"`path` in params.yaml): download fer2013.tar.gz from the Kaggle competition "
        f"'{KAGGLE_COMPETITION}' (https://www.kaggle.com/c/{KAGGLE_COMPETITION}/data) and extract "
        f"fer2013/fer2013.csv; or set `download: kaggle` on the dataset to fetch it with the "
        f"kaggle package and your Kaggle API credentials."
    )


def read_fer2013_csv(path: Path, splits: dict[str, str] | None, size: int = 48) -> RawDataset:
    """Read a fer2013.csv into uint8 ``(N, 1, size, size)`` images, int64 labels and splits.

    Errors are :class:`DataFileError` naming the file and the 1-based line (the header is line 1).
    """
    df = _read_table(path, need_usage=splits is not None)
    lines = df.index.to_numpy() + 2  # file line of each row: the header is line 1
    y = _parse_labels(df["emotion"], path, lines)
    split = _parse_usage(df["Usage"], splits, path, lines) if splits is not None else None
    x = parse_pixels(df["pixels"].tolist(), size * size, path, lines)
    x = x.reshape(len(x), 1, size, size)  # (N, 1, 48, 48), row-major as in the file
    info = {"origin": "fer2013.csv", "path": str(path), "rows": len(y),
            "usage_splits": dict(splits) if splits is not None else None}
    if split is not None and (split == "drop").any():
        keep = split != "drop"
        info["dropped_rows"] = int((~keep).sum())
        x, y, split = x[keep], y[keep], split[keep]
    return RawDataset(x=x, y=y, classes=list(FER2013_CLASSES), split=split, info=info)


def _read_table(path: Path, need_usage: bool) -> pd.DataFrame:
    """All columns as text; blank lines dropped but kept in the index so line numbers stay true."""
    import pandas as pd  # imported here: every stage imports ganaug.data, few read CSVs

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path}: not a readable CSV ({exc})") from None
    # Kaggle's icml_face_data.csv spells its header "emotion, Usage, pixels".
    df.columns = [str(c).strip() for c in df.columns]
    wanted = ["emotion", "pixels"] + (["Usage"] if need_usage else [])
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise DataFileError(
            f"{path}: missing column(s) {missing} in the header (line 1), which has "
            f"{list(df.columns)}; expected Kaggle's header 'emotion,pixels,Usage'"
        )
    blank = (df[wanted] == "").all(axis=1).to_numpy()
    return df[~blank]


def _parse_labels(col: pd.Series, path: Path, lines: np.ndarray) -> np.ndarray:
    import pandas as pd

    values = pd.to_numeric(col.str.strip(), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
    if len(bad):
        i = bad[0]
        raise DataFileError(f"{path}, line {lines[i]}: emotion {col.iloc[i]!r} is not an integer")
    bad = np.flatnonzero((values < 0) | (values >= len(FER2013_CLASSES)))
    if len(bad):
        i = bad[0]
        raise DataFileError(
            f"{path}, line {lines[i]}: emotion {int(values[i])} is outside 0..6 "
            f"({', '.join(f'{k}={c}' for k, c in enumerate(FER2013_CLASSES))})"
        )
    return values.astype(np.int64)


def _parse_usage(col: pd.Series, splits: dict[str, str], path: Path,
                 lines: np.ndarray) -> np.ndarray:
    usage = col.str.strip()
    mapped = usage.map(splits)
    bad = np.flatnonzero(mapped.isna().to_numpy())
    if len(bad):
        i = bad[0]
        raise DataFileError(
            f"{path}, line {lines[i]}: unknown Usage {usage.iloc[i]!r}; known: {list(splits)} "
            f"(the dataset's `splits` maps Usage values to train/val/test/drop)"
        )
    return mapped.to_numpy(dtype=str)


# ------------------------------------------------------------------------------------------
# Pixels: fast path in C, row-by-row diagnosis only for a chunk that fails
# ------------------------------------------------------------------------------------------


def parse_pixels(rows: list[str], n: int, path: Path, lines: np.ndarray) -> np.ndarray:
    """Space-separated grey levels, ``n`` per row, -> uint8 ``(len(rows), n)``.

    Errors name ``path`` and ``lines[i]`` of the first bad row (wrong count, non-integer, or a
    value outside 0..255).
    """
    out = np.empty((len(rows), n), dtype=np.uint8)
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = rows[start: start + CHUNK_ROWS]
        parsed = _parse_chunk(chunk, n)
        if parsed is None:
            _diagnose(chunk, n, path, lines[start: start + CHUNK_ROWS])
        out[start: start + len(chunk)] = parsed
    return out


def _parse_chunk(chunk: list[str], n: int) -> np.ndarray | None:
    """Parse rows joined by a -1 sentinel, so row lengths are checked exactly; None on any flaw."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # numpy's "could not be read to its end"
        try:
            values = np.fromstring(" -1 ".join(chunk) + " -1", dtype=np.int64, sep=" ")
        except (ValueError, DeprecationWarning):
            return None
    if len(values) != len(chunk) * (n + 1) or (values == -1).sum() != len(chunk):
        return None
    table = values.reshape(len(chunk), n + 1)  # (rows, n pixels + sentinel)
    if (table[:, n] != -1).any():
        return None
    px = table[:, :n]
    if (px < 0).any() or (px > 255).any():
        return None
    return px.astype(np.uint8)


def _diagnose(chunk: list[str], n: int, path: Path, lines: np.ndarray) -> None:
    """Raise the error for the first bad row of a chunk that the fast path refused."""
    for row, line in zip(chunk, lines, strict=True):
        tokens = row.split()
        if len(tokens) != n:
            raise DataFileError(f"{path}, line {line}: {len(tokens)} pixel values, expected {n}")
        for j, tok in enumerate(tokens):
            digits = tok[1:] if tok.startswith("+") else tok
            if not (digits.isascii() and digits.isdigit()):
                raise DataFileError(
                    f"{path}, line {line}: pixel {j + 1} is {tok!r}, not an integer in 0..255")
            if int(digits) > 255:
                raise DataFileError(
                    f"{path}, line {line}: pixel {j + 1} is {tok}, outside 0..255")
    raise DataFileError(f"{path}, lines {lines[0]}-{lines[-1]}: could not parse the pixel column")
