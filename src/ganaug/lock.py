"""Keeping ``dvc.lock`` healthy: recover it after a crash, drop entries of stages that left the grid.

DVC rewrites ``dvc.lock`` in place after every stage; a SIGKILL during that write (a window of
about half a second) can leave it truncated, and then every ``dvc`` command fails to parse it.
Nothing is lost: every stage that finished is in DVC's run-cache. The recovery is

    python -m ganaug.lock recover     # the last committed dvc.lock back (a copy of the broken one
                                      # is kept as dvc.lock.broken)
    dvc repro                         # stages that finished since are restored from the
                                      # run-cache ("... is cached - skipping run"), not rerun

and ``python -m ganaug.lock check`` says whether the file parses. ``dvc.lock`` also keeps the
entries of stage instances that an older, larger grid had (a ratio, seed or strategy since
removed): ``python -m ganaug.lock prune`` drops them (the parallel runner does after each run).
Both commands take DVC's repository lock and replace the file atomically, so they never race
with a running ``dvc repro``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ganaug.errors import DataFileError, EnvironmentProblem
from ganaug.io import atomic_path

log = logging.getLogger("ganaug.lock")

LOCK = "dvc.lock"


def parses(path: Path) -> str | None:
    """None when ``path`` is valid YAML holding a mapping, else what is wrong with it."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        return f"not valid YAML ({str(exc).splitlines()[0]})"
    if data is not None and not isinstance(data, dict):
        return "not a mapping of stages"
    return None


def check(root: Path) -> None:
    path = root / LOCK
    if not path.exists():
        log.info("%s: none yet (nothing has run)", path)
        return
    problem = parses(path)
    if problem:
        raise DataFileError(f"{path}: {problem}; run `python -m ganaug.lock recover`, then "
                            f"`dvc repro` (finished stages are restored from the run-cache)")
    log.info("%s: ok", path)


def recover(root: Path) -> None:
    """Put the committed ``dvc.lock`` back when the file in the workspace does not parse; and
    remove DVC's path-lock table (``.dvc/tmp/rwlock``) when a kill left it unreadable too."""
    path = root / LOCK
    with _dvc_lock(root) as repo:
        reset_broken_rwlock(repo)
    problem = parses(path) if path.exists() else "missing"
    if problem is None:
        log.info("%s parses; nothing to recover", path)
        return
    committed = subprocess.run(["git", "show", f"HEAD:{LOCK}"], cwd=root, capture_output=True)
    if committed.returncode != 0:
        raise EnvironmentProblem(f"{path}: {problem}, and git has no committed {LOCK} to restore "
                                 f"({committed.stderr.decode().strip()}); delete it and run "
                                 f"`dvc repro`: finished stages are restored from the run-cache")
    with _dvc_lock(root):
        if path.exists():
            shutil.copyfile(path, root / f"{LOCK}.broken")
        with atomic_path(path) as tmp:
            tmp.write_bytes(committed.stdout)
    log.info("%s: %s; restored the committed version (the broken one is %s.broken). Now run "
             "`dvc repro`: stages that finished since the commit are restored from the run-cache",
             path, problem, LOCK)


def prune(root: Path) -> list[str]:
    """Drop the entries of stages that ``dvc.yaml`` no longer defines; returns their names."""
    from dvc.repo import Repo
    from dvc.utils.serialize import dumps_yaml, parse_yaml_for_update

    path = root / LOCK
    if not path.exists():
        return []
    check(root)
    with Repo(str(root)) as repo, repo.lock:
        names = {stage.addressing for stage in repo.index.stages}
        data = parse_yaml_for_update(path.read_text(encoding="utf-8"), str(path))
        stale = [name for name in data.get("stages", {}) if name not in names]
        if stale:
            for name in stale:
                del data["stages"][name]
            with atomic_path(path) as tmp:
                tmp.write_text(dumps_yaml(data), encoding="utf-8")
    if stale:
        log.info("removed %d stale entries from %s: %s", len(stale), path, ", ".join(stale))
    return stale


def reset_broken_rwlock(repo: Any) -> bool:
    """Remove DVC's path-lock table (``.dvc/tmp/rwlock``) when a killed run left it unreadable.

    DVC rewrites that JSON file in place around every stage it runs; a SIGKILL in the middle
    leaves it truncated, and DVC then refuses every run ("remove '.dvc/tmp/rwlock' and try
    again"). Called with the repository lock held, so no other DVC process in this repository is
    running and every entry in the file is stale. Returns whether it was removed.
    """
    path = Path(repo.tmp_dir) / "rwlock"
    try:
        json.loads(path.read_text(encoding="utf-8"))
        return False
    except FileNotFoundError:
        return False
    except (json.JSONDecodeError, UnicodeDecodeError):
        log.warning("%s: unreadable (a run was killed while DVC wrote it); removed, as no other "
                    "DVC process holds this repository", path)
        path.unlink()
        return True


class _dvc_lock:
    """DVC's repository lock (``.dvc/tmp/rwlock``), so no ``dvc`` command writes meanwhile."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __enter__(self):
        from dvc.repo import Repo

        self.repo = Repo(str(self.root), uninitialized=True)
        self.repo.lock.lock()
        return self.repo

    def __exit__(self, *exc: object) -> None:
        self.repo.lock.unlock()
        self.repo.close()


def main(argv: list[str] | None = None) -> int:
    from ganaug.stage import run

    p = argparse.ArgumentParser(prog="python -m ganaug.lock", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["check", "recover", "prune"])
    p.add_argument("--root", default=os.getcwd(), help="the project (default: here)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    actions = {"check": check, "recover": recover, "prune": prune}
    return run(lambda _argv: actions[args.command](Path(args.root)), [])


if __name__ == "__main__":
    sys.exit(main())
