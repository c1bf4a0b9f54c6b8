"""The main-workspace side: DVC's own graph and per-stage logic, with the commands run elsewhere.

The coordinator holds the main workspace's repository lock for the whole run, as ``dvc repro``
does, and drives each stage instance through DVC's own ``Stage.reproduce``: DVC decides whether
the instance changed, restores it from its cache or run-cache when it can, hashes and commits the
outputs, saves the run-cache entry and writes ``dvc.lock``. The one step it does not take here is
running the command. While a session is open, DVC's ``cmd_run`` either raises
:class:`CommandDeferred` (the first pass: the coordinator sends the instance to a worker, which
runs the command in a workspace of its own) or, once the worker is done, moves the outputs the
worker made into the main workspace in place of running the command (the second pass).
Everything around that step is DVC's, so a parallel run skips, restores and records exactly what
``dvc repro`` would, and DVC writes every entry of ``dvc.lock``.

What is recorded is what ran: DVC hashes an instance's dependencies when it decides to run it
(dispatch) and again when it records it, and takes the second hashes for the inputs. A file
edited in between (a source file, a dataset) would be recorded as if the instance had read it.
The session keeps the dispatch hashes and refuses to record an instance whose dependencies
hash differently at record time (:class:`DependencyChanged`): nothing of it is recorded or
cached, its outputs are removed, and the next run runs it again.

DVC writes ``dvc.lock`` in place (truncate, then write); a run killed during that write would
leave a broken file. Before each write a copy is kept under ``.dvc/tmp/parallel/lock-backups``,
and the next run puts it back if ``dvc.lock`` no longer loads (:func:`ganaug.lock.backup_lockfile`,
:func:`ganaug.lock.recover_lockfiles`).
"""

from __future__ import annotations

import contextlib
import copy
import enum
import functools
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ganaug.lock import backup_lockfile, recover_lockfiles, reset_broken_rwlock
from ganaug.parallel.dvc_api import params_files_parsed_once

if TYPE_CHECKING:
    from dvc.repo import Repo
    from dvc.stage import Stage

log = logging.getLogger(__name__)

PARALLEL_DIR = "parallel"  # under the repository's .dvc/tmp
BACKUPS = "lock-backups"  # under PARALLEL_DIR: each dvc.lock as it was before DVC's last write
LOCKFILE = "dvc.lock"


class CommandDeferred(Exception):
    """DVC was about to run a stage's command in the main workspace; a worker runs it instead."""


class SessionError(RuntimeError):
    """The main workspace cannot be driven as asked (no git, an unexpected DVC)."""


class DependencyChanged(SessionError):
    """An instance's dependency hashed differently when it was recorded than when it was sent
    to run: the instance may have read either version, so it is not recorded."""


class Outcome(enum.Enum):
    UP_TO_DATE = "up to date"  # DVC: "didn't change, skipping"
    RESTORED = "restored"  # checked out from DVC's cache or run-cache; dvc.lock to update
    RAN_HERE = "ran here"  # a command no worker can run (see workers_can_run), run in main
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
        self.backups = self.work_dir / BACKUPS
        self._to_dump: list[Stage] = []  # recorded, lock entry not written yet
        self._in_lock = stages_in_lockfiles(self.plan.order)  # have an entry in dvc.lock
        self._given_up: set[Stage] = set()
        self._dispatched: dict[Stage, list] = {}  # dependency hashes when sent to run
        self._flushed = time.monotonic()

    def ignore_outputs(self) -> None:
        """Add every output of the plan to its ``.gitignore`` now, in DVC's order.

        DVC adds an output to ``.gitignore`` when it records the output, and a folder's hash
        covers the ``.gitignore`` inside it (``data/prepared``, which ``evaluate`` depends on,
        holds one). Recording in the order workers finish would order the lines, and so hash the
        folder, unlike ``dvc repro``; adding them up front in its order gives its bytes.
        """
        for stage in self.plan.order:
            for out in stage.outs:
                if out.use_scm_ignore:  # cached outputs in a git repository
                    Path(out.fs_path).parent.mkdir(parents=True, exist_ok=True)
                    out.ignore()

    # ---- one instance --------------------------------------------------------------------

    def advance(self, stage: Stage, force: bool = False) -> Outcome:
        """Take one instance as far as DVC can without running its command (first pass)."""
        try:
            with self._cmd_run.use(_deferring_cmd_run):
                ret = stage.reproduce(upstream=self.plan.upstream[stage], force=force)
        except CommandDeferred:
            self._dispatched[stage] = dependency_hashes(stage)
            if workers_can_run(stage):
                return Outcome.NEEDS_WORKER
            log.warning("%s runs in the main workspace: it has a persistent output or one "
                        "outside the repository, which a worker's workspace cannot hold",
                        stage.addressing)
            self._run(stage, self._cmd_run.original)
            return Outcome.RAN_HERE
        if ret is None:
            return Outcome.UP_TO_DATE
        self._to_dump.append(stage)
        return Outcome.RESTORED

    def finish(self, stage: Stage, workspace: Path) -> None:
        """Record an instance a worker ran (second pass): DVC runs the stage with the worker's
        outputs moved in where the command would run, then hashes, caches and records them."""
        self._run(stage, functools.partial(_adopting_cmd_run, workspace=workspace,
                                           root=self.root))

    def _run(self, stage: Stage, cmd_run) -> None:
        """The rest of ``Stage.reproduce`` once DVC has decided to run the command and found
        nothing in its run-cache: ``Stage.run``, with ``force`` so that it does not look there
        again. (Looking again would be wrong, not just slow: the dependencies are hashed by now,
        and DVC would take the outputs in ``dvc.lock`` for this run's.)"""
        dispatched = self._dispatched.pop(stage)
        with self._cmd_run.use(cmd_run), _dependencies_unchanged(stage, dispatched):
            stage.run(force=True)
        self._to_dump.append(stage)

    # ---- dvc.lock ------------------------------------------------------------------------

    def give_up(self, stage: Stage) -> None:
        """The instance will not be recorded in this run (it failed, or one upstream did)."""
        self._given_up.add(stage)

    def flush(self, every: float = 0.0, final: bool = False) -> None:
        """Write the lock entries recorded since the last write, if ``every`` seconds have
        passed since then: one write per dvc.lock. ``final``: the run is over, write them all.

        DVC rewrites the whole file each time (1 to 2 s for the default study's ~150 entries);
        ``dvc repro`` does that after every stage. An instance recorded but not yet written is
        restored from the run-cache, or run again, by the next run if this one is killed.

        Entries new to the file are appended in DVC's order, as ``dvc repro`` appends them: one
        waits while an instance before it in that order is still to be recorded. So a fresh
        run's ``dvc.lock`` has ``dvc repro``'s bytes, not just its content.
        """
        if not self._to_dump or time.monotonic() - self._flushed < every:
            return
        recorded = set(self._to_dump)
        updates = [s for s in self._to_dump if s in self._in_lock]
        new: list[Stage] = []
        for stage in self.plan.order:
            if stage in self._in_lock or stage in self._given_up:
                continue
            if stage not in recorded and not final:
                break  # an earlier new entry is still to come
            if stage in recorded:
                new.append(stage)
        self._write(updates + new)
        self._to_dump = [s for s in self._to_dump if s not in self._in_lock]

    def _write(self, stages: list[Stage]) -> None:
        self._flushed = time.monotonic()
        by_file: dict[str, list[Stage]] = {}
        for stage in stages:
            by_file.setdefault(stage.dvcfile.path, []).append(stage)
        for path, group in by_file.items():
            if _in_pipeline(group[0]):  # a dvc.yaml's lock entries are beside it, in dvc.lock
                backup_lockfile(Path(path).with_suffix(".lock"), self.root, self.backups)
            group[0].dvcfile.dump_stages(group, update_pipeline=False)
        self._in_lock.update(stages)

    # ---- what a worker needs -------------------------------------------------------------

    def command(self, stage: Stage) -> tuple[tuple[str, ...], ...]:
        """The argv DVC would run for each line of the stage's ``cmd``: DVC's own shell choice
        and options (``$SHELL --noprofile --norc -c LINE`` for bash)."""
        from dvc.stage.run import _enforce_cmd_list, _make_cmd, get_executable

        executable = get_executable()
        return tuple(tuple(_make_cmd(executable, line) if executable else [line])
                     for line in _enforce_cmd_list(stage.cmd))

    def wdir(self, stage: Stage) -> str:
        return os.path.relpath(stage.wdir, self.root)

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
    reported at the end."""
    from dvc.repo import Repo, lock_repo

    with Repo(root) as repo:
        cmd_run = _CmdRun()
        with lock_repo(repo), repo.scm_context(), params_files_parsed_once():
            # With the lock held: no other DVC process is writing them.
            recover_lockfiles(Path(repo.root_dir), Path(repo.tmp_dir) / PARALLEL_DIR / BACKUPS)
            reset_broken_rwlock(repo)
            session = Session(repo, targets, cmd_run)
            session.ignore_outputs()
            yield session


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


def stages_in_lockfiles(stages: Sequence[Stage]) -> set[Stage]:
    """The stages whose entry exists already: those with one in their dvc.lock, and the ``.dvc``
    files' (read with libyaml: DVC's ruamel.yaml takes ~1 s for the default study's lock)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    names: dict[str, set[str]] = {}
    for path in {s.dvcfile.path for s in stages if _in_pipeline(s)}:
        lockfile = Path(path).with_suffix(".lock")
        data = yaml.load(lockfile.read_text(), Loader=loader) if lockfile.is_file() else None
        names[path] = set((data or {}).get("stages") or {})
    return {s for s in stages if not _in_pipeline(s) or s.name in names[s.dvcfile.path]}


def _in_pipeline(stage: Stage) -> bool:
    from dvc.stage import PipelineStage

    return isinstance(stage, PipelineStage)


def workers_can_run(stage: Stage) -> bool:
    """A worker's workspace holds the outputs it makes, not ones a command updates in place
    (``persist``) nor ones outside the repository."""
    return all(out.protocol == "local" and out.is_in_repo and not out.persist
               for out in stage.outs)


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


def worker_files(root: Path, outs: Iterable[str]) -> tuple[str, ...]:
    """:func:`project_files` less the files inside ``outs`` (every output of the planned
    stages, relative to ``root``): an instance's workspace links its own dependencies anyway,
    and another instance's outputs (committed metrics and plots) can vanish for a moment while
    the coordinator replaces them in the main workspace, which would fail a workspace that is
    being linked at that moment."""
    out_parts = {Path(o).parts for o in outs}
    kept = []
    for name in project_files(root):
        parts = Path(name).parts
        if not any(parts[:i] in out_parts for i in range(1, len(parts) + 1)):
            kept.append(name)
    return tuple(kept)


# --------------------------------------------------------------------------------------------
# What ran is what is recorded
# --------------------------------------------------------------------------------------------


def dependency_hashes(stage: Stage) -> list:
    """Hash the stage's dependencies now (DVC's state database makes an unchanged file cheap)
    and return their hashes, in ``stage.deps`` order. With ``-f`` DVC has not hashed them yet
    on the way to the command; otherwise this is the same hash again."""
    stage.save_deps(allow_missing=True)  # a missing one fails when it is recorded
    return [copy.deepcopy(dep.hash_info) for dep in stage.deps]


@contextlib.contextmanager
def _dependencies_unchanged(stage: Stage, dispatched: list) -> Iterator[None]:
    """While DVC records ``stage``: right after it hashes the dependencies again, and before it
    hashes, caches or records any output, raise :class:`DependencyChanged` if a hash differs
    from the dispatch hash; the outputs are then removed."""
    save_deps = stage.save_deps

    def checked_save_deps(*args, **kwargs):
        save_deps(*args, **kwargs)
        changed = [str(dep) for dep, before in zip(stage.deps, dispatched, strict=True)
                   if dep.hash_info != before]
        if changed:
            raise DependencyChanged(
                f"{stage.addressing}: {', '.join(changed)} changed while it ran (its hash when "
                f"the instance was sent to run differs from its hash now); nothing of it is "
                f"recorded: rerun to run it on the files as they are now")

    stage.save_deps = checked_save_deps  # Stage.save looks it up on the instance
    try:
        yield
    except DependencyChanged:
        with contextlib.suppress(Exception):
            stage.remove_outs(ignore_remove=False, force=True)
        raise
    finally:
        del stage.save_deps


# --------------------------------------------------------------------------------------------
# Deferring commands
# --------------------------------------------------------------------------------------------


def _deferring_cmd_run(stage: Stage, dry: bool = False, run_env: dict | None = None) -> None:
    raise CommandDeferred(stage.addressing)


def _adopting_cmd_run(stage: Stage, dry: bool = False, run_env: dict | None = None, *,
                      workspace: Path, root: Path) -> None:
    """In place of running the command: move the outputs a worker made into the main workspace
    (DVC has just removed the old ones, as before running a command)."""
    for out in stage.outs:
        rel = os.path.relpath(out.fs_path, root)
        made = workspace / rel
        if not (made.exists() or made.is_symlink()):
            raise SessionError(f"{stage.addressing}: the worker did not leave {rel} in {workspace}")
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_dir() and not dest.is_symlink():
            shutil.rmtree(dest)
        elif dest.exists() or dest.is_symlink():
            dest.unlink()
        shutil.move(made, dest)  # a rename: the workspace lies inside the repository


class _CmdRun:
    """Switches DVC's ``dvc.stage.run.cmd_run``, which ``run_stage`` looks up at call time, after
    it has tried the run-cache, between DVC's own and one that raises :class:`CommandDeferred`."""

    def __init__(self) -> None:
        import dvc.stage.run as dvc_run  # what it needs of it: ganaug.parallel.dvc_api

        self.module = dvc_run
        self.original = dvc_run.cmd_run

    @contextlib.contextmanager
    def use(self, fn) -> Iterator[None]:
        before = self.module.cmd_run, self.module.unlocked_repo
        # DVC lets the repository lock go while a command runs (``unlocked_repo``) and takes it
        # again after; a `dvc` command started in that moment would make the re-lock fail with
        # LockError mid-run. Here no command runs in this process (it is deferred, or its
        # outputs adopted), so the lock stays held: another `dvc` command gets DVC's own "Unable
        # to acquire lock" at once, and the run goes on.
        self.module.cmd_run, self.module.unlocked_repo = fn, _keep_lock
        try:
            yield
        finally:
            self.module.cmd_run, self.module.unlocked_repo = before


def _keep_lock(fn):
    """DVC's ``unlocked_repo`` less the unlocking: the repository's state is reset before the
    call, as there, and the lock stays held."""
    @functools.wraps(fn)
    def wrapper(stage, *args, **kwargs):
        stage.repo._reset()
        return fn(stage, *args, **kwargs)
    return wrapper
