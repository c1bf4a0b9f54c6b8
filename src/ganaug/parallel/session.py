"""The main-workspace side: DVC's own graph and per-stage logic, with the commands run elsewhere.

The coordinator holds the main workspace's repository lock for the whole run, as ``dvc repro``
does, and drives each stage instance through DVC's own ``Stage.reproduce``: DVC decides whether
the instance changed, restores it from the run-cache when it can, hashes and commits its outputs
and writes ``dvc.lock``. The one step it does not take here is running the command: while a
session is open, DVC's ``cmd_run`` raises :class:`CommandDeferred` instead, the coordinator runs
the command on a worker (``dvc repro --single-item`` in an isolated workspace, whose result lands
in the shared run-cache), and calls ``Stage.reproduce`` again, which now restores it. So DVC makes
every decision and is the only writer of ``dvc.lock``, and a parallel run skips, restores and
records exactly what ``dvc repro`` would.

DVC writes ``dvc.lock`` in place (truncate, then write); a run killed during that write would
leave a broken file. Before each write a copy is kept under ``.dvc/tmp/parallel/``, and the next
run puts it back if ``dvc.lock`` no longer loads (:func:`recover_lockfiles`).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dvc.repo import Repo
    from dvc.stage import Stage

log = logging.getLogger(__name__)

PARALLEL_DIR = "parallel"  # under the repository's .dvc/tmp
LOCKFILE = "dvc.lock"


class CommandDeferred(Exception):
    """DVC was about to run a stage's command in the main workspace; a worker runs it instead."""


class SessionError(RuntimeError):
    """The main workspace cannot be driven as asked (no git, an unexpected DVC)."""


class Outcome(enum.Enum):
    UP_TO_DATE = "up to date"  # DVC: "didn't change, skipping"
    RESTORED = "restored"  # checked out from DVC's cache or run-cache; dvc.lock to update
    RAN_HERE = "ran here"  # a command DVC's run-cache cannot carry, run in the main workspace
    NEEDS_WORKER = "needs a worker"


@dataclass(frozen=True)
class Plan:
    """The stage instances ``dvc repro [targets]`` would evaluate, in DVC's order."""

    order: list[Stage]
    upstream: dict[Stage, list[Stage]]  # the instances whose outputs each one reads
    dependents: dict[Stage, set[Stage]]  # every instance downstream of each one


class Session:
    """The main workspace during a parallel run: DVC's repository, locked, with its graph."""

    def __init__(self, repo: Repo, targets: Sequence[str], cmd_run: _CmdRun) -> None:
        self.repo = repo
        self._cmd_run = cmd_run
        self.root = Path(repo.root_dir)
        self.plan = make_plan(repo, targets)
        self.work_dir = Path(repo.tmp_dir) / PARALLEL_DIR
        self._to_dump: list[Stage] = []

    # ---- one instance --------------------------------------------------------------------

    def advance(self, stage: Stage, force: bool = False) -> Outcome:
        """Take one instance as far as DVC can without running its command here."""
        try:
            ret = self._reproduce(stage, force=force)
        except CommandDeferred:
            _forget_outputs(stage)
            if carried_by_run_cache(stage):
                return Outcome.NEEDS_WORKER
            log.warning("%s runs in the main workspace: DVC's run-cache cannot carry its result "
                        "back from a worker (no dependencies, a persistent output, or "
                        "always_changed)", stage.addressing)
            return self._run_here(stage, force)
        if ret is None:
            return Outcome.UP_TO_DATE
        self._to_dump.append(stage)
        return Outcome.RESTORED

    def finish(self, stage: Stage) -> None:
        """Record an instance a worker ran: DVC restores it from the run-cache it filled."""
        try:
            ret = self._reproduce(stage, force=False)
        except CommandDeferred:
            raise SessionError(
                f"{stage.addressing}: the worker finished, but DVC's run-cache has no entry for "
                f"its result, so it cannot be restored here") from None
        if ret is not None:
            self._to_dump.append(stage)

    def _reproduce(self, stage: Stage, force: bool) -> Stage | None:
        return stage.reproduce(upstream=self.plan.upstream[stage], force=force)

    def _run_here(self, stage: Stage, force: bool) -> Outcome:
        with self._cmd_run.use(self._cmd_run.original):
            ret = self._reproduce(stage, force)
        if ret is None:
            return Outcome.UP_TO_DATE
        self._to_dump.append(stage)
        return Outcome.RAN_HERE

    # ---- dvc.lock ------------------------------------------------------------------------

    def flush(self) -> None:
        """Write the lock entries of the instances recorded since the last flush, one write per
        dvc.lock (DVC rewrites the whole file each time, so batching saves seconds per stage)."""
        by_file: dict[str, list[Stage]] = {}
        for stage in self._to_dump:
            by_file.setdefault(stage.dvcfile.path, []).append(stage)
        self._to_dump = []
        for stages in by_file.values():
            dvcfile = stages[0].dvcfile
            backup_lockfile(Path(dvcfile._lockfile.path), self.root, self.work_dir)
            dvcfile.dump_stages(stages, update_pipeline=False)

    # ---- what a worker needs -------------------------------------------------------------

    def cache_dir(self) -> str:
        return str(self.repo.cache.legacy.path)

    def dvc_config_files(self) -> tuple[str, ...]:
        names = ("config", "config.local")
        return tuple(str(p) for n in names if (p := Path(self.repo.dvc_dir) / n).is_file())

    def paths(self, stage: Stage) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The instance's dependencies and outputs inside the workspace, relative to its root."""
        return (tuple(self._relative(d) for d in stage.deps if self._in_root(d)),
                tuple(self._relative(o) for o in stage.outs if self._in_root(o)))

    def _in_root(self, item) -> bool:
        return item.protocol == "local" and Path(item.fs_path).is_relative_to(self.root)

    def _relative(self, item) -> str:
        return os.path.relpath(item.fs_path, self.root)


@contextlib.contextmanager
def open_session(targets: Sequence[str], root: str | None = None) -> Iterator[Session]:
    """Open the DVC repository (at ``root`` or around the current directory) the way
    ``dvc repro`` does: its lock held throughout, git bookkeeping (``.gitignore``) collected and
    reported at the end; and stage commands deferred to workers."""
    from dvc.repo import Repo, lock_repo

    with Repo(root) as repo:
        recover_lockfiles(repo)
        cmd_run = _CmdRun()
        with lock_repo(repo), repo.scm_context(), cmd_run.use(_deferring_cmd_run):
            yield Session(repo, targets, cmd_run)


def make_plan(repo: Repo, targets: Sequence[str]) -> Plan:
    """DVC's own plan for ``dvc repro [targets]``: the targets and everything upstream of them,
    from DVC's graph (frozen stages cut off from their dependencies, as DVC does)."""
    import networkx as nx
    from dvc.dvcfile import PROJECT_FILE
    from dvc.repo.reproduce import collect_stages, get_active_graph, plan_repro

    graph = get_active_graph(repo.index.graph)
    order = plan_repro(graph, collect_stages(repo, list(targets) or [PROJECT_FILE]))
    members = set(order)
    # DVC's edges point from a stage to the stages it depends on.
    upstream = {s: [u for u in graph.successors(s) if u in members] for s in order}
    dependents = {s: nx.ancestors(graph, s) & members for s in order}
    return Plan(order, upstream, dependents)


def _forget_outputs(stage: Stage) -> None:
    """DVC decided the command must run, so the outputs in ``dvc.lock`` are out of date.

    ``dvc repro`` would overwrite their hashes right after running the command. Here the stage
    waits for a worker with its dependencies already hashed (DVC does that before deciding), and
    DVC's run-cache restore would take "dependencies hashed, outputs known" for "only the
    outputs are missing" and check out the old outputs from ``dvc.lock``.
    """
    from dvc_data.hashfile.hash_info import HashInfo

    for out in stage.outs:
        out.hash_info = HashInfo()


def carried_by_run_cache(stage: Stage) -> bool:
    """Whether DVC's run-cache can hold this stage's result (DVC's own test for saving one)."""
    from dvc.stage.cache import _can_hash

    return bool(_can_hash(stage))


def project_files(root: Path) -> tuple[str, ...]:
    """Files a fresh clone would have, plus untracked files git does not ignore (``git
    ls-files``): what a stage may read besides its declared dependencies (its package's
    ``__init__.py``, say). ``dvc.lock`` and ``.dvc/`` stay out: a workspace gets its own."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], cwd=root, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SessionError(
            f"{root}: `git ls-files` failed ({exc}); ganaug.parallel needs the project in a git "
            f"repository: it links its git files into each instance's workspace") from exc
    names = sorted({n for n in out.stdout.decode().split("\0") if n})
    return tuple(n for n in names if Path(n).name != LOCKFILE and Path(n).parts[0] != ".dvc"
                 and (root / n).exists())


# --------------------------------------------------------------------------------------------
# Deferring commands
# --------------------------------------------------------------------------------------------


def _deferring_cmd_run(stage: Stage, dry: bool = False, run_env: dict | None = None) -> None:
    raise CommandDeferred(stage.addressing)


class _CmdRun:
    """Switches DVC's ``dvc.stage.run.cmd_run``, which ``run_stage`` looks up at call time, after
    it has tried the run-cache, between DVC's own and one that raises :class:`CommandDeferred`."""

    def __init__(self) -> None:
        import dvc
        import dvc.stage.run as dvc_run

        if not callable(getattr(dvc_run, "cmd_run", None)):
            raise SessionError(f"DVC {dvc.__version__} has no dvc.stage.run.cmd_run; "
                               f"ganaug.parallel was written against DVC 3 (requirements.txt)")
        self.module = dvc_run
        self.original = dvc_run.cmd_run

    @contextlib.contextmanager
    def use(self, fn) -> Iterator[None]:
        before = self.module.cmd_run
        self.module.cmd_run = fn
        try:
            yield
        finally:
            self.module.cmd_run = before


# --------------------------------------------------------------------------------------------
# dvc.lock backups
# --------------------------------------------------------------------------------------------


def _backup_path(lockfile: Path, root: Path, work_dir: Path) -> Path:
    rel = os.path.relpath(lockfile, root).replace(os.sep, "__")
    return work_dir / "lock-backups" / rel


def backup_lockfile(lockfile: Path, root: Path, work_dir: Path) -> None:
    """Keep a copy of ``lockfile`` as it is before DVC rewrites it (an empty copy: none yet)."""
    dest = _backup_path(lockfile, root, work_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    if lockfile.exists():
        shutil.copyfile(lockfile, tmp)
    else:
        tmp.write_bytes(b"")
    os.replace(tmp, dest)


def recover_lockfiles(repo: Repo) -> list[Path]:
    """Put back the copy of each ``dvc.lock`` that a killed run left unreadable; return them."""
    from dvc.dvcfile import Lockfile
    from dvc.exceptions import DvcException

    root = Path(repo.root_dir)
    work_dir = Path(repo.tmp_dir) / PARALLEL_DIR
    backups = work_dir / "lock-backups"
    recovered = []
    for backup in sorted(backups.glob("*")) if backups.is_dir() else []:
        if backup.suffix == ".tmp":
            continue
        lockfile = root / backup.name.replace("__", os.sep)
        if not lockfile.exists():
            continue
        try:
            Lockfile(repo, str(lockfile)).load()
            continue
        except DvcException as exc:
            log.warning("%s does not load (%s): an interrupted run was writing it; putting back "
                        "the copy from before that write", lockfile, exc)
        if backup.stat().st_size:
            shutil.copyfile(backup, lockfile)
        else:
            lockfile.unlink()
        recovered.append(lockfile)
    return recovered
