"""The worker side: run one stage instance's command in a workspace of its own.

Why a workspace per instance: outputs of instances that run at once must not meet, and a killed
instance must leave nothing in the main workspace that DVC could take for a result. Each
instance gets a directory of hard links to the main workspace's project files and to the
instance's dependencies (no copies of the data), and runs its command there, exactly as DVC
would run it (the argv and environment variables come from DVC's own functions, see
:meth:`ganaug.parallel.session.Session.command`). The coordinator then moves the outputs into
the main workspace, where DVC hashes, caches and records them.

This module runs on Dask workers; it needs neither torch nor a DVC repository (only one DVC
helper), and everything it needs travels in an :class:`InstanceSpec` (paths absolute on a
filesystem that every worker shares).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ganaug.parallel import launcher

log = logging.getLogger(__name__)

# Variables that size the thread pools of PyTorch (OpenMP, MKL), numpy's BLAS and numexpr: set to
# cores // workers, so N instances at once do not oversubscribe the cores.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
# Environment variables that say which instance a process belongs to; recorded in its log.
SEEN_VARS = ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")
# ganaug.shared.ROOT_VAR, named here to keep the worker's imports light.
SHARED_RUNS_VAR = "GANAUG_SHARED_RUNS"
TAIL_LINES = 25
# Files the coordinator's DVC appends to while instances run: copied, never linked.
APPENDED_IN_PLACE = (".gitignore",)

# Instance processes started by this process's worker threads, so that an interrupted run can end
# them (an in-process local cluster runs its tasks in the coordinator's own process).
_running: set[subprocess.Popen | launcher.WarmProcess] = set()
_running_lock = threading.Lock()


@dataclass(frozen=True)
class InstanceSpec:
    """What a worker needs to run one stage instance; picklable, built by the coordinator."""

    name: str  # DVC's address of the instance, e.g. "train@random-0.5-0"
    root: str  # the main workspace (absolute)
    workspace: str  # this instance's workspace (absolute, inside <root>/.dvc/tmp/parallel/ws)
    log: str  # this instance's log file (absolute)
    commands: tuple[tuple[str, ...], ...]  # argv of each line of the stage's cmd, as DVC runs it
    wdir: str  # where the commands run, relative to root ("." for most stages)
    files: tuple[str, ...]  # project files to link, relative to root (no dvc.lock, no .dvc/)
    deps: tuple[str, ...]  # the instance's dependencies, relative to root (files or folders)
    outs: tuple[str, ...]  # its outputs, relative to root: never linked
    # Environment per worker address (CUDA_VISIBLE_DEVICES, thread counts); a worker that is not
    # listed (one that joined a cluster later) keeps its own environment.
    slot_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class InstanceResult:
    name: str
    returncode: int  # of the first command that failed, else 0; -1: no workspace
    seconds: float
    worker: str
    env: dict[str, str]  # the SEEN_VARS the instance ran with
    log: str
    tail: str  # the last lines of the log (for the failure report)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_instance(spec: InstanceSpec) -> InstanceResult:
    """Prepare the instance's workspace and run its command there (a Dask task).

    The outputs stay in the workspace for the coordinator to take (it then removes the
    workspace). After a failure the workspace stays: a rerun reuses it, and a resume checkpoint
    the stage left there.
    """
    start = time.monotonic()
    worker = _worker_address()
    env = instance_env(os.environ, spec.slot_env.get(worker, {}))
    seen = {k: env[k] for k in SEEN_VARS if k in env}
    log_path = Path(spec.log)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_bytes(b"")
    # Appending: a warm-started command appends to the same file through its own descriptor.
    with log_path.open("a") as out:
        out.write(f"# ganaug.parallel: {spec.name} on worker {worker} in {spec.workspace}; "
                  + " ".join(f"{k}={v}" for k, v in seen.items()) + "\n")
        try:
            prepare_workspace(spec)
        except OSError as exc:
            out.write(f"could not prepare the workspace: {exc}\n")
            returncode = -1
        else:
            returncode = _run_commands(spec, env, out)
    return InstanceResult(spec.name, returncode, time.monotonic() - start, worker, seen,
                          spec.log, "" if returncode == 0 else tail_of(log_path))


def _run_commands(spec: InstanceSpec, env: dict[str, str], out) -> int:
    """Run each line of the stage's command like DVC does (stop at the first failure)."""
    out.write(f"Running stage '{spec.name}':\n")
    cwd = str(Path(spec.workspace) / spec.wdir)
    env = {**env, "DVC_ROOT": spec.workspace, "DVC_STAGE": spec.name}  # as DVC sets them
    # A run several instances share is stored in the main workspace, not in this one.
    env.setdefault(SHARED_RUNS_VAR, str(Path(spec.root) / ".checkpoints" / "shared"))
    for argv in spec.commands:
        out.write(f"> {argv[-1]}\n")  # DVC runs [shell, options..., "-c", line]
        out.flush()
        returncode = _run(list(argv), cwd, env, out, spec.log)
        if returncode != 0:
            out.write(f"ERROR: failed to run: {argv[-1]}, exited with {returncode}\n")
            return returncode
    return 0


def instance_env(base: Mapping[str, str], slot: Mapping[str, str]) -> dict[str, str]:
    """The worker's environment with its slot's variables (GPU, threads) on top, as DVC hands
    it to a command (``fix_env`` undoes what pyenv and PyInstaller change)."""
    from dvc.utils import fix_env

    env = fix_env(dict(base))
    env.update(slot)
    return env


def thread_env(threads: int) -> dict[str, str]:
    return dict.fromkeys(THREAD_VARS, str(threads))


def terminate_running() -> None:
    """End the instance processes this process started (on an interrupted run)."""
    with _running_lock:
        procs = list(_running)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _run(cmd: list[str], cwd: str, env: dict[str, str], out, log: str) -> int:
    """Run one command line, its output to ``out`` (the file at ``log``): a ``python -m``
    line from the warm interpreter (:mod:`.launcher`), anything else through the shell."""
    call = launcher.python_module_call(cmd, env) if launcher.enabled(env) else None
    proc = None
    if call is not None and launcher.serves(env):
        out.write(f"# {launcher.WARM_NOTE}\n")
        out.flush()
        proc = launcher.start(*call, cwd=cwd, env=env, log=log)
        if proc is None:
            out.write(f"# {launcher.COLD_NOTE}\n")
            out.flush()
    if proc is None:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    with _running_lock:
        _running.add(proc)
    try:
        return proc.wait()
    finally:
        with _running_lock:
            _running.discard(proc)


def _worker_address() -> str:
    from distributed import get_worker

    try:
        return get_worker().address
    except ValueError:  # called outside a Dask worker (tests, a debugger)
        return "local"


# --------------------------------------------------------------------------------------------
# The workspace
# --------------------------------------------------------------------------------------------


def prepare_workspace(spec: InstanceSpec) -> None:
    """(Re)build the instance's workspace: links to the project files and dependencies, no
    outputs.

    A workspace left by an earlier, interrupted attempt keeps what is not rebuilt here (a resume
    checkpoint under ``.checkpoints/``); everything else is replaced, so it mirrors the main
    workspace as it is now.
    """
    root, ws = Path(spec.root), Path(spec.workspace)
    _check_inside(ws, root / ".dvc" / "tmp" / "parallel")
    rebuilt = {Path(p).parts[0] for p in (*spec.files, *spec.deps, *spec.outs)}
    if ws.exists():
        for name in rebuilt:
            _remove(ws / name)
    ws.mkdir(parents=True, exist_ok=True)
    for rel in spec.files:
        if not _inside_any(rel, spec.outs):
            link_path(root, ws, rel)
    for rel in spec.deps:
        link_path(root, ws, rel, skip=spec.outs)
    (ws / spec.wdir).mkdir(parents=True, exist_ok=True)


def link_path(root: Path, ws: Path, rel: str, skip: Iterable[str] = ()) -> None:
    """Hard-link ``root/rel`` (a file, or every file under a folder) to ``ws/rel``.

    Hard links cost no space and no copying; stages write outputs atomically (a new file renamed
    into place), so they never write through a link into the main workspace. A symlink is
    recreated as an absolute symlink; across filesystems a file is copied, and so is a file that
    DVC in the main workspace appends to in place (``.gitignore``).
    """
    src = root / rel
    if src.is_dir() and not src.is_symlink():
        for dirpath, _, names in os.walk(src):
            for name in names:
                sub = os.path.relpath(os.path.join(dirpath, name), root)
                if not _inside_any(sub, skip):
                    _link_file(root / sub, ws / sub)
    elif src.exists() or src.is_symlink():
        _link_file(src, ws / rel)


def _link_file(src: Path, dst: Path) -> None:
    if dst.exists() or dst.is_symlink():
        return  # already placed (a project file that is also a dependency)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():
        os.symlink(os.path.realpath(src), dst)
        return
    if src.name not in APPENDED_IN_PLACE:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass  # another filesystem: copy
    shutil.copy2(src, dst)


def _check_inside(path: Path, parent: Path) -> None:
    """Workspaces are deleted wholesale: refuse any path outside the folder made for them."""
    if not path.resolve().is_relative_to(parent.resolve()) or path.resolve() == parent.resolve():
        raise OSError(f"{path}: an instance workspace must lie inside {parent}")


def _inside_any(rel: str, paths: Iterable[str]) -> bool:
    parts = Path(rel).parts
    return any(parts[: len(Path(p).parts)] == Path(p).parts for p in paths)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def tail_of(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])
