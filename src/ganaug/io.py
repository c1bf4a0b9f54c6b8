"""Atomic writes and checked reads of the pipeline's files.

Every output is written to a temporary sibling and renamed into place, so a stage killed half-way
leaves either the old file or nothing, never a truncated file that DVC could cache as good.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.errors import CheckpointError, DataFileError, EnvironmentProblem

__all__ = ["CheckpointError", "DataFileError", "atomic_path", "load_json", "load_npy", "load_npz",
           "remove_stale_temps", "reserve_space", "save_json", "save_npy", "save_npz"]


# errno values that mean "the disk (or the quota) is full".
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it over ``path``.

    On an exception the temporary file (or directory) is removed and ``path`` is left untouched.
    Temporary siblings that an earlier, killed run left behind for the same ``path`` are removed
    first. A folder that cannot be written and a full disk are :class:`EnvironmentProblem` errors
    that name the path.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _environment_problem(exc, path) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # callers create it (a file or a directory) themselves
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (*_NO_SPACE, errno.EACCES, errno.EROFS):
            raise _environment_problem(exc, path) from exc
        raise


def _environment_problem(exc: OSError, path: Path) -> Exception:
    if exc.errno in _NO_SPACE:
        return EnvironmentProblem(f"{path}: no space left on the device while writing it; free "
                                  f"some space and rerun (nothing half-written was kept)")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return EnvironmentProblem(f"{path.parent}: cannot write here ({exc.strerror}); make the "
                                  f"folder writable or run from a writable copy of the project")
    return exc


def remove_stale_temps(path: Path) -> None:
    """Remove ``.<name>.XXXXXXXX.tmp`` siblings of ``path`` (what :func:`atomic_path` writes
    before its rename): only a run killed before the rename leaves one."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[A-Za-z0-9_]{{8}}\.tmp")
    if not path.parent.is_dir():
        return
    for sibling in path.parent.iterdir():
        if pattern.fullmatch(sibling.name):
            if sibling.is_dir() and not sibling.is_symlink():
                shutil.rmtree(sibling, ignore_errors=True)
            else:
                sibling.unlink(missing_ok=True)


def reserve_space(path: str | Path) -> None:
    """Allocate every block of the file at ``path`` now (``posix_fallocate``), so that a full disk
    is an error here, with a message, and not a SIGBUS later while a memory map writes into a
    sparse file. Where the file system cannot allocate ahead (EOPNOTSUPP), nothing happens."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0 or not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        if exc.errno in _NO_SPACE:
            raise EnvironmentProblem(
                f"{path}: no space left on the device for its {size / 2**20:.1f} MiB; free some "
                f"space and rerun (nothing half-written was kept)") from exc
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
    finally:
        os.close(fd)


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
