"""Start a stage's ``python -m <module>`` command from a warm interpreter.

A stage instance's fixed cost is mostly starting Python and importing torch (about 2 s of a
small model stage's 3 to 7 s; ``benchmarks/stage_overhead.py``), which DVC pays again for every
instance because it starts one process per command. A worker that starts many instances can pay
it once: a start server (``python -m ganaug.parallel.launcher``, one per coordinator) imports
torch and the project's heavy modules a single time, and each instance is a fresh ``fork()`` of
it that runs the stage's module as ``python -m`` would: its own process, working directory,
environment, ``sys.argv``, ``sys.path[0]``, log and exit status. It is how the standard
library's ``forkserver`` start method works; that one is not used as is because its children
also re-run the parent's ``__main__`` (a user's script, say).

What keeps it equal to a cold start:
- Only a command line that is exactly ``python -m <module> [args]`` is started this way, with no
  shell syntax (quotes are fine) and with ``python`` the coordinator's own interpreter on the
  instance's ``PATH``; anything else runs through the shell as DVC would run it.
- The server starts with the first instance's environment, so thread pools that read
  ``OMP_NUM_THREADS`` (...) when a library loads are sized as in a fresh process; an instance
  asking for other thread settings starts cold.
- Nothing in the server touches a GPU or runs a parallel kernel before forking (importing torch
  does neither), so each instance initialises CUDA (with its own ``CUDA_VISIBLE_DEVICES``) and
  OpenMP itself; the project reads its environment variables when called, not when imported.
  Python's and numpy's global random generators are reseeded from the OS in each instance, as a
  fresh interpreter's are.
- Only code that is still on disk runs. The server notes every file it imported (with its
  inode, size and modification time) and, before each fork, checks them again: if one changed
  since (a source file edited during the run), it forks nothing more; it finishes the instances
  it started, and a new server, which imports the files as they are now, starts this instance
  and the ones after it. An instance therefore runs the code a fresh ``python -m`` would run at
  that moment, which is what DVC hashes for it (and the coordinator checks that the hashes did
  not change between dispatch and record: :mod:`ganaug.parallel.session`).
- Linux only (fork after loading Apple's frameworks is unsafe); ``GANAUG_WARM_START=0`` turns
  it off. The parallel tests check that the tiny study gives the same bytes either way.
  ``GANAUG_WARM_PRELOAD`` (comma-separated module names) adds modules to the server's imports
  (a plugin package's, say).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import logging
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ganaug import warmstart
from ganaug.parallel.forkserver import (
    POLL_S,
    changed_files,
    preload,
    run_module,
)

# Shell syntax that a plain argv split would not honour: such a line runs through the shell.
SHELL_SYNTAX = re.compile(r"[;&|<>()$`*?\[\]{}~!#\\\n]")
THREAD_PREFIXES = ("OMP_", "MKL_", "OPENBLAS_", "NUMEXPR_")
WARM_NOTE = "started from the warm interpreter (GANAUG_WARM_START=0: a fresh one)"
COLD_NOTE = ("the warm interpreter could not start it (its imports kept changing on disk, "
             "or it did not start): started in a fresh one")
# Servers started for one instance before it starts cold instead: each replaces one that found
# a file it had imported changed on disk (a file still being edited can change again).
MAX_RESTARTS = 3

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_server: _Server | None = None


def enabled(env: Mapping[str, str]) -> bool:
    """Linux, not switched off, and no relative ``PYTHONPATH`` entry (which a fresh process
    would resolve from the instance's working directory): the same rule as plain ``dvc
    repro``'s warm start."""
    return warmstart.enabled(env)


def python_module_call(argv: Sequence[str], env: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """``(module, args)`` when DVC's ``[shell, ..., "-c", line]`` runs ``python -m module args``
    with this interpreter, else None."""
    if len(argv) < 2 or argv[-2] != "-c":
        return None
    line = argv[-1]
    if SHELL_SYNTAX.search(line):
        return None
    try:
        words = shlex.split(line)
    except ValueError:
        return None
    if len(words) < 3 or words[1] != "-m" or "=" in words[0] or words[2].startswith("-"):
        return None
    if not _is_this_python(words[0], env.get("PATH", os.defpath)):
        return None
    return words[2], words[3:]


def _is_this_python(name: str, path: str) -> bool:
    found = shutil.which(name, path=path)
    if found is None:
        return False
    here = Path(sys.executable)
    # A virtual environment's python is a link to the base interpreter: the same file is not
    # enough, it must be the same environment's (same folder).
    return Path(found).absolute().parent == here.absolute().parent and os.path.samefile(found, here)


def thread_settings(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(THREAD_PREFIXES)}


# --------------------------------------------------------------------------------------------
# The coordinator's side
# --------------------------------------------------------------------------------------------


class WarmProcess:
    """A started instance, with the part of :class:`subprocess.Popen` the workers use."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.returncode: int | None = None
        # The files the server had imported that changed on disk: it forked nothing.
        self.stale: list[str] | None = None
        self._started = threading.Event()
        self._done = threading.Event()

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(f"python -m (pid {self.pid})", timeout or 0)
        return self.returncode

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.pid is not None and not self._done.is_set():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)


class _Server:
    """The start server, seen from the coordinator: requests go down its stdin as JSON lines,
    ``{"id", "pid"}`` and ``{"id", "returncode"}`` come back on its stdout."""

    def __init__(self, env: Mapping[str, str]):
        # The first instance's environment: what libraries read when they load (thread pools)
        # is then what a fresh instance process would have read. Instances replace it whole.
        self.threads = thread_settings(env)
        # In "/": the server's first sys.path entry (its working directory, which each instance
        # replaces with its own) holds no package of the project's or its dependencies'.
        self.proc = subprocess.Popen([sys.executable, "-m", "ganaug.parallel.launcher"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=dict(env),
                                     cwd="/")
        self._ids = itertools.count()
        self._pending: dict[int, WarmProcess] = {}
        self._write = threading.Lock()
        self.stale = False  # it found an imported file changed: it starts nothing more
        ready = self.proc.stdout.readline()
        if json.loads(ready or b"{}").get("ready") is not True:
            self.proc.kill()
            raise OSError("the warm interpreter did not start")
        self._reader = threading.Thread(target=self._read, name="ganaug warm start", daemon=True)
        self._reader.start()

    @property
    def alive(self) -> bool:
        # A server whose replies have ended is gone, even in the moment before the kernel makes
        # it a zombie that poll() can see (its pipes close first).
        return self._reader.is_alive() and self.proc.poll() is None

    def start(self, request: dict) -> WarmProcess:
        proc = WarmProcess()
        with self._write:
            ident = next(self._ids)
            self._pending[ident] = proc
            try:
                self.proc.stdin.write(json.dumps({"id": ident, **request}).encode() + b"\n")
                self.proc.stdin.flush()
            except OSError:  # the server is gone: the instance fails, as one it had started
                self._fail(ident)
        # Never wait forever: if the replies end without this request's, it has failed.
        while not proc._started.wait(0.5):
            if not self._reader.is_alive():
                self._fail(ident)
        return proc

    def _fail(self, ident: int) -> None:
        proc = self._pending.pop(ident, None)
        if proc is not None and not proc._done.is_set():
            proc.returncode = -1
            proc._started.set()
            proc._done.set()

    def _read(self) -> None:
        try:
            for line in self.proc.stdout:
                msg = json.loads(line)
                proc = self._pending.get(msg["id"])
                if proc is None:
                    continue
                if "stale" in msg:
                    self.stale = True
                    proc.stale = msg["stale"]
                    del self._pending[msg["id"]]
                    proc._started.set()
                    proc._done.set()
                elif "pid" in msg:
                    proc.pid = msg["pid"]
                    proc._started.set()
                else:
                    proc.returncode = msg["returncode"]
                    del self._pending[msg["id"]]
                    proc._done.set()
        finally:
            # The server is gone (killed), or its replies made no sense: what it started cannot
            # be followed any more.
            for ident in list(self._pending):
                self._fail(ident)

    def retire(self) -> None:
        """Send nothing more: the server ends once the instances it started have ended, and
        their exit statuses still come back."""
        with self._write, contextlib.suppress(OSError):
            self.proc.stdin.close()

    def close(self) -> None:
        if self.alive:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def _current(env: Mapping[str, str]) -> _Server | None:
    """The start server, a new one in place of one that died or found its files changed (call
    with ``_lock`` held); None if none starts."""
    global _server
    if _server is None or not _server.alive or _server.stale:
        if _server is not None:
            _server.retire()
        try:
            _server = _Server(env)
        except OSError:
            _server = None
    return _server


def serves(env: Mapping[str, str]) -> bool:
    """Whether the start server (started now if need be) can start an instance with ``env``'s
    thread settings: the first instance's settings are the server's."""
    with _lock:
        server = _current(env)
        return server is not None and thread_settings(env) == server.threads


def start(module: str, args: Sequence[str], cwd: str, env: Mapping[str, str],
          log: str) -> WarmProcess | None:
    """Start ``python -m module args`` in ``cwd`` with exactly ``env``, its output appended to
    ``log`` (after :func:`serves` said yes). None: start it cold instead (no server would start
    it with the code now on disk, see :data:`MAX_RESTARTS`)."""
    request = {"module": module, "args": list(args), "cwd": cwd, "env": dict(env), "log": log}
    for _ in range(MAX_RESTARTS + 1):
        with _lock:
            server = _current(env)
        if server is None or thread_settings(env) != server.threads:
            return None
        proc = server.start(request)
        if proc.stale is None:
            return proc
        logger.info("the warm interpreter's imports changed on disk (%s): a new one imports "
                 "them again", ", ".join(proc.stale))
    return None


@atexit.register
def shutdown() -> None:
    """Stop the start server (instances it started keep running to their end)."""
    global _server
    with _lock:
        if _server is not None:
            _server.close()
            _server = None


# --------------------------------------------------------------------------------------------
# The server's side
# --------------------------------------------------------------------------------------------


def serve(requests: int = 0, replies: int = 1) -> None:
    """Import :data:`.forkserver.PRELOAD`, then fork one instance per request until the
    requests end.

    Single-threaded, so a fork never copies a lock another thread holds; ended children are
    collected every :data:`.forkserver.POLL_S` seconds. Replies are written with ``os.write``
    (no Python buffer for a child to inherit half-written). A child never returns here: it runs its module
    and ends as the interpreter ends a ``python -m`` run (exit status, traceback, atexit)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the coordinator ends the instances
    imported, early = preload()

    def reply(msg: dict) -> None:
        os.write(replies, json.dumps(msg).encode() + b"\n")

    reply({"ready": True})
    children: dict[int, int] = {}
    try:
        _serve_requests(requests, reply, children, imported, early)
    except BrokenPipeError:
        # The coordinator is gone (killed): nobody will record what the instances make. End them
        # as its own kill would have, quietly: a rerun starts them again.
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)


def _serve_requests(requests: int, reply, children: dict[int, int],
                    imported: dict[str, tuple[int, int, int]], early: list[str]) -> None:
    """The server's loop: fork one instance per request, report each start and end."""
    pending = b""
    open_ = True
    while open_ or children:
        if not open_:
            time.sleep(POLL_S)
        elif select.select([requests], [], [], POLL_S)[0]:
            chunk = os.read(requests, 1 << 16)
            open_ = bool(chunk)
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                changed = early or changed_files(imported)
                if changed:  # this code is no longer what a fresh interpreter would run
                    reply({"id": request["id"], "stale": changed[:5]})
                    continue
                pid = os.fork()
                if pid == 0:
                    run_module(request)  # never returns: ends the process
                children[pid] = request["id"]
                reply({"id": request["id"], "pid": pid})
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            reply({"id": children.pop(pid), "returncode": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    # Started by _Server in "/"; each instance puts its own working directory first on sys.path.
    serve()
