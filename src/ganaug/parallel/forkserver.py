"""What the start servers share (the parallel runner's, :mod:`.launcher`, and plain ``dvc
repro``'s, :mod:`.daemon`): the imports they make once, the check that none of the files behind
them changed before a fork, and a forked child becoming ``python -m module args`` and ending as
that process would."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence

# Imported once by the server: what the stages' entry points import (torch through the project's
# model modules), and what their first calls import: torch.optim's step imports torch._dynamo
# (and with it inductor's config) every time it is called, as does use_deterministic_algorithms;
# in a cold start that is 1.3-2.7 s of a training instance (benchmarks/stage_overhead.py).
# One that fails to import is left to the instances (they report it).
PRELOAD = (
    "numpy", "scipy.linalg", "pandas", "pydantic", "torch", "torch._dynamo", "dvclive",
    "ganaug.config", "ganaug.stage", "ganaug.models.saved", "ganaug.training",
    "ganaug.metrics.evaluation", "ganaug.gan", "ganaug.synthetic.scoring", "ganaug.selection",
    "ganaug.report.markdown", "ganaug.report.figures",
)
# Modules the user adds to PRELOAD (comma-separated): a plugin package's, say.
PRELOAD_VAR = "GANAUG_WARM_PRELOAD"
POLL_S = 0.05  # how often a server looks for children that ended


def preload() -> tuple[dict[str, tuple[int, int, int]], list[str]]:
    """Import :data:`PRELOAD` and the user's :data:`PRELOAD_VAR` modules (one that fails is left
    to the instance that needs it, which reports the error), then freeze what they made: the
    files imported, with their keys, and those edited while the imports ran."""
    import gc
    import importlib

    began = time.time_ns()
    extra = [m.strip() for m in os.environ.get(PRELOAD_VAR, "").split(",") if m.strip()]
    for name in (*PRELOAD, *extra):
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    imported = imported_files()
    # A file changed while the imports ran may have been read before or after the change: it
    # counts as changed already, so the first request finds it and a new server reads it again.
    early = edited_since(imported, began, time.time_ns())
    # What the preloaded modules made stays put: children's collections skip it, and their
    # pages stay shared with the server (the use Python's docs give for gc.freeze before fork).
    gc.freeze()
    return imported, early


def _file_key(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def imported_files() -> dict[str, tuple[int, int, int]]:
    """Every file behind a module in ``sys.modules`` (sources and extensions), with its inode,
    size and modification time: an edit in place or a file replaced changes one of them."""
    files: dict[str, tuple[int, int, int]] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and path not in files and (key := _file_key(path)):
            files[path] = key
    return files


def changed_files(files: Mapping[str, tuple[int, int, int]]) -> list[str]:
    """The files of :func:`imported_files` that changed (or went away) since."""
    return [path for path, key in files.items() if _file_key(path) != key]


def edited_since(files: Mapping[str, tuple[int, int, int]], began_ns: int,
                 ended_ns: int | None = None) -> list[str]:
    """The files modified from ``began_ns`` to ``ended_ns`` (no end: any time after), allowing
    for the clock's coarseness: a filesystem that keeps whole seconds (every nanosecond part
    zero) gets a second, others 50 ms (the kernel stamps files with a clock that lags by up to
    a tick). A time after the end is a clock skew (a network filesystem, an archive's future
    dates), not an edit during the imports: counting it would retire every new server."""
    out = []
    for path, (_, _, mtime) in files.items():
        slack = 1_000_000_000 if mtime % 1_000_000_000 == 0 else 50_000_000
        if mtime >= began_ns - slack and (ended_ns is None or mtime <= ended_ns + slack):
            out.append(path)
    return out


def run_module(request: dict, stdio: Sequence[int] | None = None) -> None:
    """In the forked process: become ``python -m module args`` and end as it would. Its
    standard streams are ``stdio`` (three descriptors, closed here once copied) if given, else
    ``/dev/null`` and the request's log."""
    import random
    import runpy

    signal.signal(signal.SIGINT, signal.default_int_handler)
    code = 0
    try:
        if stdio is None:
            # The log first, so that anything failing after it (a missing folder) is written
            # there.
            out = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            null = os.open(os.devnull, os.O_RDONLY)
            stdio = (null, out, out)
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        for fd in set(stdio) - {0, 1, 2}:
            os.close(fd)
        if "umask" in request:
            os.umask(request["umask"])
        # Fresh streams on the new descriptors, buffered as a fresh interpreter's would be.
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", buffering=1, errors="backslashreplace",  # noqa: SIM115
                          closefd=False)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[0] = os.getcwd()  # `python -m` puts the working directory first
        sys.argv = [request["module"], *request["args"]]
        random.seed()
        if "numpy" in sys.modules:
            sys.modules["numpy"].random.seed()
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = _exit_code(exc)
    except KeyboardInterrupt:
        traceback.print_exc()
        code = -signal.SIGINT  # a fresh interpreter ends itself with the signal
    except BaseException:  # noqa: BLE001 - what the interpreter does with an uncaught error
        traceback.print_exc()
        code = 1
    _end(code)


def _end(code: int) -> None:
    """End as the interpreter ends: wait for the threads the module started, run the atexit
    handlers, flush the streams and collect garbage (closing files still open); but skip tearing
    down every module torch loaded (a second per instance), as multiprocessing's children do."""
    import gc

    with contextlib.suppress(Exception):
        threading._shutdown()  # waits for non-daemon threads, as interpreter exit does
    atexit._run_exitfuncs()
    gc.collect()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code & 0xFF)


def _exit_code(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1
