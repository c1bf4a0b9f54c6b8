"""Atomic writes and checked reads of the pipeline's files.

Every output is written to a temporary sibling and renamed into place, so a stage killed half-way
leaves either the old file or nothing, never a truncated file that DVC could cache as good.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np


class DataFileError(ValueError):
    """A data file is missing, unreadable or does not hold what it should."""


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or not the kind of model that was expected.

    Defined here rather than next to the checkpoint code so that stages which never touch torch
    (select, report) can name it without importing torch.
    """


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    On an exception the temporary file (or directory) is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # callers create it (a file or a directory) themselves
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def save_json(path: str | Path, data: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n")


def load_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path}: not valid JSON: {exc}") from exc


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Write a compressed npz atomically (np.savez would append ``.npz`` to a temp name)."""
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.savez_compressed(f, **arrays)


def load_npz(path: str | Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Load every array of an npz into memory, checking that ``required`` keys are present."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise DataFileError(f"{path}: not a readable npz file ({exc})") from exc
    missing = [k for k in required if k not in arrays]
    if missing:
        raise DataFileError(
            f"{path}: missing arrays {missing}; it holds {sorted(arrays)}"
        )
    return arrays


def save_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        np.save(f, array)


def load_npy(path: str | Path, mmap: bool = False) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path}: file not found")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataFileError(f"{path}: not a readable npy file ({exc})") from exc
