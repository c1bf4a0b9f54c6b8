"""Keeping ``dvc.lock`` healthy: recover it after a crash, drop entries of stages that left the grid.

DVC rewrites ``dvc.lock`` in place after every stage; a SIGKILL during that write (a window of
about half a second) can leave it truncated, and then every ``dvc`` command fails to parse it.
Nothing is lost: every stage that finished is in DVC's run-cache. The recovery is

    python -m ganaug.lock recover     # the last committed dvc.lock back (a copy of the broken one
                                      # is kept as dvc.lock.broken)
    dvc repro                         # stages that finished since are restored from the
                                      # run-cache ("... is cached - skipping run"), not rerun

and ``python -m ganaug.lock check`` says whether DVC can load the file (its YAML and DVC's own
lockfile schema). ``dvc.lock`` also keeps the entries of stage instances that an older, larger
grid had (a ratio, seed or strategy since removed): ``python -m ganaug.lock prune`` drops them
(the parallel runner does after each run). Both commands take DVC's repository lock and replace
the file atomically, so they never race with a running ``dvc repro``; while another DVC process
holds that lock they stop with a one-line error instead of waiting.

The parallel runner needs no command for it: before DVC rewrites a ``dvc.lock`` the runner keeps
a copy (:func:`backup_lockfile`), and its next run puts the copy back when the file does not load
(:func:`recover_lockfiles`, with the same check as ``check``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ganaug.errors import DataFileError, EnvironmentProblem
from ganaug.io import atomic_path

log = logging.getLogger("ganaug.lock")

LOCK = "dvc.lock"


def lock_problem(path: Path) -> str | None:
    """None when DVC can load ``path`` as a ``dvc.lock``, else what is wrong, in one line.

    The file is read as DVC reads it (ruamel's YAML) and validated against DVC's own lockfile
    schema (:attr:`dvc.dvcfile.Lockfile.SCHEMA`): a file that is valid YAML but not a lockfile
    (a wrong schema version, a stage without ``cmd``, a cut-off entry) fails every ``dvc``
    command all the same.
    """
    if not path.is_file():
        return "not a file"
    return lock_text_problem(path.read_bytes(), str(path))


def lock_text_problem(raw: bytes, where: str = LOCK) -> str | None:
    """:func:`lock_problem` for the bytes of a ``dvc.lock``."""
    from dvc.dvcfile import Lockfile
    from dvc.utils.serialize import YAMLFileCorruptedError, parse_yaml
    from voluptuous import MultipleInvalid

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8 text"
    if not text.strip():
        return "empty"
    try:
        data = parse_yaml(text, where)
    except YAMLFileCorruptedError as exc:
        cause = exc.__cause__  # ruamel's error: what and where, over several lines
        what = getattr(cause, "problem", None) or (str(cause or exc).strip().splitlines()
                                                   or ["unparsable"])[0]
        mark = getattr(cause, "problem_mark", None)
        return f"not valid YAML ({what}{f' at line {mark.line + 1}' if mark else ''})"
    if not isinstance(data, dict):
        return f"not a mapping (a {type(data).__name__})"
    try:
        Lockfile.SCHEMA(data)
    except MultipleInvalid as exc:
        return f"does not match DVC's lockfile schema ({exc.errors[0]})"
    return None


def _project(root: Path) -> Path:
    """``root`` when it is a DVC project's root, else a one-line error saying what to do."""
    if not root.is_dir():
        raise EnvironmentProblem(f"{root}: no such folder; pass --root the project's folder")
    if not (root / ".dvc").is_dir():
        raise EnvironmentProblem(f"{root}: not a DVC project's root (no .dvc folder); run "
                                 f"`python -m ganaug.lock` there or pass --root")
    return root


def check(root: Path) -> None:
    path = _project(root) / LOCK
    if not path.exists():
        log.info("%s: none yet: no stage is recorded in it (stages that finished in a run killed "
                 "before its first write are in DVC's run-cache, and `dvc repro` restores them)",
                 path)
        return
    problem = lock_problem(path)
    if problem:
        raise DataFileError(f"{path}: {problem}; run `python -m ganaug.lock recover`, then "
                            f"`dvc repro` (finished stages are restored from the run-cache)")
    log.info("%s: ok", path)


def committed_lock(root: Path) -> bytes | str:
    """The committed ``dvc.lock`` beside ``dvc.yaml`` (its bytes), or why there is none."""
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=root,
                            capture_output=True, text=True)
    if inside.returncode != 0:
        return "the project is not in a git repository"
    # "./" resolves against cwd, so a project in a subfolder of its repository works too.
    shown = subprocess.run(["git", "show", f"HEAD:./{LOCK}"], cwd=root, capture_output=True)
    if shown.returncode != 0:
        lines = shown.stderr.decode(errors="replace").strip().splitlines()
        return f"git has none committed ({lines[0] if lines else 'git show failed'})"
    return shown.stdout


def recover(root: Path) -> None:
    """Put the committed ``dvc.lock`` back when the file in the workspace is missing or DVC
    cannot load it; and remove DVC's path-lock table (``.dvc/tmp/rwlock``) when a kill left it
    unreadable too. Holds DVC's repository lock throughout."""
    path = _project(root) / LOCK
    with dvc_lock(root) as repo:
        reset_broken_rwlock(repo)
        problem = lock_problem(path) if path.exists() else "missing"
        if problem is None:
            log.info("%s: ok; nothing to recover", path)
            return
        committed = committed_lock(root)
        if isinstance(committed, str):
            if not path.exists():
                log.info("%s: none, and %s: nothing to recover (`dvc repro` writes it)", path,
                         committed)
                return
            raise EnvironmentProblem(f"{path}: {problem}, and {committed}; delete {path} and "
                                     f"run `dvc repro`: finished stages are restored from the "
                                     f"run-cache")
        also = lock_text_problem(committed, f"HEAD:{LOCK}")
        if also:
            raise DataFileError(f"{path}: {problem}, and the committed version DVC cannot load "
                                f"either ({also}); delete {path} and run `dvc repro`: finished "
                                f"stages are restored from the run-cache")
        kept = path.exists()
        if kept:
            shutil.copyfile(path, root / f"{LOCK}.broken")
        with atomic_path(path) as tmp:
            tmp.write_bytes(committed)
    broken = f" (the broken one is kept as {LOCK}.broken)" if kept else ""
    log.info("%s: %s; restored the committed version%s. Now run `dvc repro`: stages that "
             "finished since the commit are restored from the run-cache", path, problem, broken)


def prune(root: Path) -> list[str]:
    """Drop the entries of stages that ``dvc.yaml`` no longer defines; returns their names."""
    from dvc.exceptions import DvcException
    from dvc.utils.serialize import dumps_yaml, parse_yaml_for_update

    path = _project(root) / LOCK
    if not path.exists():
        return []
    pipeline = (root / "dvc.yaml").resolve()
    with dvc_lock(root, initialized=True) as repo:
        check(root)  # with the lock held: no dvc command is halfway through writing it
        try:
            # Names as dvc.lock keys them: the stage's name in dvc.yaml beside it (`addressing`
            # is relative to the working directory, so from elsewhere, --root, it never matches).
            names = {stage.name for stage in repo.index.stages
                     if Path(stage.dvcfile.path).resolve() == pipeline}
        except DvcException as exc:  # a broken dvc.yaml (its YAML, schema, params)
            raise _dvc_problem(root / "dvc.yaml", "DVC cannot load the pipeline", exc,
                               "; `dvc status` shows the details") from exc
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


def _dvc_problem(path: Path, what: str, exc: Exception, hint: str = "") -> EnvironmentProblem:
    """DVC refusing a file as a one-line user error naming ``path`` (DVC's own text, first
    line; ``-v`` tracebacks are DVC's business, not a user's)."""
    lines = str(exc).strip().splitlines()
    reason = lines[0] if lines else type(exc).__name__
    return EnvironmentProblem(f"{path}: {what} ({reason}){hint}")


@contextmanager
def dvc_lock(root: Path, initialized: bool = False) -> Iterator[Any]:
    """An open DVC ``Repo`` of ``root`` with its repository lock (``.dvc/tmp/lock``) held, the
    lock DVC itself takes (:func:`dvc.repo.lock_repo`), so no ``dvc`` command writes meanwhile.
    ``initialized=False`` opens it the way ``dvc`` does for a repository whose pipeline it need
    not load. Another process holding the lock is a one-line error, after DVC's few retries."""
    from dvc.exceptions import DvcException
    from dvc.lock import LockError
    from dvc.repo import Repo

    try:
        repo = Repo(str(root), uninitialized=not initialized)
    except DvcException as exc:
        raise _dvc_problem(root, "DVC cannot open the project", exc) from exc
    try:
        try:
            repo.lock.lock()
        except LockError:
            raise EnvironmentProblem(
                f"{root / '.dvc' / 'tmp' / 'lock'}: another DVC process (dvc repro, dvc exp, or "
                f"the parallel runner) holds the repository lock; let it finish, then run this "
                f"again") from None
        try:
            yield repo
        finally:
            repo.lock.unlock()
    finally:
        repo.close()


def main(argv: list[str] | None = None) -> int:
    from ganaug.stage import run

    p = argparse.ArgumentParser(prog="python -m ganaug.lock", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["check", "recover", "prune"])
    p.add_argument("--root", default=os.getcwd(), help="the project (default: here)")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    actions = {"check": check, "recover": recover, "prune": prune}
    return run(lambda _argv: actions[args.command](Path(args.root)), [])



# --------------------------------------------------------------------------------------------
# The parallel runner's copy from before each write
# --------------------------------------------------------------------------------------------


def _backup_path(lockfile: Path, root: Path, backups: Path) -> Path:
    return backups / os.path.relpath(lockfile, root).replace(os.sep, "__")


def backup_lockfile(lockfile: Path, root: Path, backups: Path) -> None:
    """Keep a copy of ``lockfile`` in ``backups`` as it is before DVC rewrites it (an empty
    copy: none yet)."""
    dest = _backup_path(lockfile, root, backups)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    if lockfile.exists():
        shutil.copyfile(lockfile, tmp)
    else:
        tmp.write_bytes(b"")
    os.replace(tmp, dest)


def recover_lockfiles(root: Path, backups: Path) -> list[Path]:
    """Put back the copy of each ``dvc.lock`` under ``root`` that a killed run left unreadable
    (:func:`lock_problem`); return them. Call it with DVC's repository lock held."""
    recovered = []
    for backup in sorted(backups.glob("*")) if backups.is_dir() else []:
        if backup.suffix == ".tmp":
            continue
        lockfile = root / backup.name.replace("__", os.sep)
        if not lockfile.exists():
            continue
        problem = lock_problem(lockfile)
        if problem is None:
            continue
        log.warning("%s does not load (%s): an interrupted run was writing it; putting back "
                    "the copy from before that write", lockfile, problem)
        if backup.stat().st_size:
            shutil.copyfile(backup, lockfile)
        else:
            lockfile.unlink()
        recovered.append(lockfile)
    return recovered


if __name__ == "__main__":
    sys.exit(main())
