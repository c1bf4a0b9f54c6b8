"""One training run that several stage instances share, done once.

When ``study.vary`` holds the GAN fixed, every replicate's ``train_gan@<seed>`` and
``train_scorer@<seed>`` trains the same model: the same config and seed, on the same images (the
prepared train split), with the same code, threads and libraries. DVC cannot make a stage's
existence depend on a param, so the instances stay; this module makes all but the first cheap.
The first instance to finish stores its outputs (files or folders) under ``.checkpoints/shared/``
in an entry named by the hash of everything that decides them (:func:`run_key`); the others,
finding the entry, copy it instead of training. Training is deterministic for a fixed thread
count (``threads`` in params.yaml), so the copy has the bits a fresh run would write: DVC's
lock is the same either way, and a run without the store (another machine, the store removed)
trains and gets the same files.

Safe against the usual faults: an instance that finds another one training the same run waits
for it (a file lock) instead of training twice; an entry is renamed into place only once it is
complete, so a killed run leaves none; each file's SHA-256 is checked before it is copied, and an
entry that fails the check is ignored with a warning (and replaced). ``rm -rf
.checkpoints/shared`` frees the space; nothing else reads it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ganaug.errors import EnvironmentProblem
from ganaug.io import atomic_path

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path(".checkpoints/shared")
# The store's folder when set: the parallel runner points it at the main workspace's, since each
# instance runs in a workspace of its own (ganaug.parallel.workspace).
ROOT_VAR = "GANAUG_SHARED_RUNS"
MANIFEST = "manifest.json"

__all__ = ["DEFAULT_ROOT", "ROOT_VAR", "run_key", "shared_run", "stage_code"]


def stage_code(stage_file: str | Path, *modules: str) -> str:
    """A hash of a stage's file and every file it runs (:func:`ganaug.codedeps.fingerprint`:
    the project's, and the installed plugins of the registries it looks up), and ``modules`` (a
    plugin's module, say) with what they import (:func:`ganaug.codedeps.code_fingerprint`)."""
    from ganaug.codedeps import code_fingerprint, fingerprint, project_roots

    path = Path(stage_file).resolve()
    top = path.parent.name
    files = fingerprint(f"{top}.{path.stem}", {**project_roots(), top: path.parent})
    h = hashlib.sha256(json.dumps(files, sort_keys=True).encode())
    h.update(code_fingerprint(*modules).encode() if modules else b"")
    return h.hexdigest()


def run_key(stage: str, *parts: Any) -> str:
    """The hash that names a shared run: the stage, then everything that decides its outputs
    (arrays by shape and bytes, other values by repr; :func:`ganaug.resume.fingerprint`), and
    the libraries whose arithmetic or file format the outputs depend on."""
    import numpy as np
    import torch

    from ganaug.resume import fingerprint

    return fingerprint(stage, torch.__version__, np.__version__, torch.get_num_threads(), *parts)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(path: Path) -> list[Path]:
    """A file, or every file under a folder, relative to ``path`` ('.' for the file itself)."""
    if path.is_dir():
        return sorted(p.relative_to(path) for p in path.rglob("*") if p.is_file())
    return [Path(".")]


def _manifest(outputs: dict[str, Path]) -> dict[str, dict[str, str]]:
    return {name: {str(rel): _sha256(path / rel) for rel in _files(path)}
            for name, path in outputs.items()}


def _intact(entry: Path, names: list[str]) -> bool:
    """Whether ``entry`` holds every named output with the hashes its manifest recorded."""
    try:
        manifest = json.loads((entry / MANIFEST).read_text())
        for name in names:
            stored = entry / name
            if set(manifest[name]) != {str(rel) for rel in _files(stored)}:
                return False
            if any(_sha256(stored / rel) != digest for rel, digest in manifest[name].items()):
                return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def _copy(src: Path, dest: Path) -> None:
    """Copy a file or folder over ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        if src.is_dir():
            shutil.copytree(src, tmp)
        else:
            shutil.copy2(src, tmp)


def _lock(path: Path):
    """An open handle holding an exclusive lock on ``path`` (closing it releases the lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
    except BaseException:
        handle.close()
        raise
    return handle


def shared_run(key: str, outputs: dict[str, str | Path], produce: Callable[[], None],
               root: str | Path | None = None, what: str = "run") -> bool:
    """Write ``outputs`` (name -> path) by copying the stored entry ``key``, or by ``produce()``
    and then storing them. True when they were copied. The store is ``root``, else
    ``$GANAUG_SHARED_RUNS``, else ``.checkpoints/shared`` in the current folder; one that
    cannot be written is skipped with a warning (the run trains, as without a store).

    ``produce`` must write every output; one it leaves missing is an error, not a partial entry.
    """
    root = Path(root or os.environ.get(ROOT_VAR) or DEFAULT_ROOT)
    outputs = {name: Path(p) for name, p in outputs.items()}
    try:
        handle = _lock(root / f"{key}.lock")
    except OSError as exc:
        log.warning("%s: cannot use the store %s (%s); training without it", what, root, exc)
        _produce_all(produce, outputs, what)
        return False
    with handle:  # closing releases the lock
        return _copy_or_produce(root / key, outputs, produce, what)


def _produce_all(produce: Callable[[], None], outputs: dict[str, Path], what: str) -> None:
    produce()
    missing = [str(p) for p in outputs.values() if not p.exists()]
    if missing:
        raise RuntimeError(f"{what}: the run did not write {', '.join(missing)}")


def _copy_or_produce(entry: Path, outputs: dict[str, Path], produce: Callable[[], None],
                     what: str) -> bool:
    """Under the entry's lock: copy it when it is intact, else produce and store."""
    if entry.is_dir():
        if _intact(entry, list(outputs)):
            for name, dest in outputs.items():
                _copy(entry / name, dest)
            log.info("%s: copied from %s, the same run another replicate made (study.vary "
                     "holds it fixed)", what, entry)
            return True
        log.warning("ignoring %s: it is incomplete or its files changed since they were "
                    "stored; training again", entry)
    _produce_all(produce, outputs, what)
    try:
        with atomic_path(entry) as tmp:
            tmp.mkdir()
            for name, path in outputs.items():
                (shutil.copytree if path.is_dir() else shutil.copy2)(path, tmp / name)
            (tmp / MANIFEST).write_text(json.dumps(_manifest(outputs), indent=1) + "\n")
    except (OSError, EnvironmentProblem) as exc:  # the outputs are written; storing failed
        log.warning("%s: could not store the run in %s for the other replicates (%s); each "
                    "will train it again", what, entry, exc)
    return False
