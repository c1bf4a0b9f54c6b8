"""A warm start for plain ``dvc repro``: stage commands handed to a start server over a socket.

This module is the stage command's side (standard library only: it runs before anything else is
imported); the server is :mod:`ganaug.parallel.daemon`.

``dvc repro`` starts one process per stage instance, and each pays the same fixed cost before it
does any work: starting Python, importing torch, the first optimizer step importing
``torch._dynamo`` (2 to 5 s; ``benchmarks/stage_overhead.py``). The parallel runner avoids it
with a start server that forks instances (:mod:`ganaug.parallel.launcher`); this module gives
the same to the README's first command, with nothing to start or stop by hand:

- A stage command ``python -m stages.<name> ...`` first imports ``stages/__init__.py``, which
  calls :func:`handoff` while the interpreter is still starting the module. It connects to the
  start server for this interpreter, its import path and its thread settings (a Unix socket in
  a folder only this user can open), sends its arguments, working directory, environment and
  umask, and passes its own standard input, output and error. The server forks; the child
  becomes ``python -m stages.<name> ...`` exactly as the parallel runner's children do (working
  directory, environment, ``sys.argv``, ``sys.path[0]``, reseeded random generators, the exit
  status and traceback a fresh interpreter gives); the command waits for it, passes Ctrl-C and
  termination on to it, and ends with its exit status. DVC sees one process doing the work.
- No server yet (the first instance of a run): the command starts one in the background and
  runs its own instance cold, as if this module did not exist. The server imports what
  :data:`ganaug.parallel.forkserver.PRELOAD` lists, then serves until it has had nothing to do
  for :data:`IDLE_S` seconds.
- Provenance, as in the parallel runner (:mod:`ganaug.parallel.forkserver`): before each fork
  the server checks every file it imported (inode, size, modification time); if one changed,
  it forks nothing more, the command runs cold, and the next command starts a new server that
  imports the files as they are now. An instance therefore runs the code a fresh ``python -m``
  would run at that moment; the stage itself then checks that code against the fingerprint DVC
  hashes for it (``--code``, :func:`ganaug.codedeps.check_code`). Packages installed or removed change
  the import folders' modification times, which are part of the server's name: a new server.
- What a library reads from the environment when it loads (thread pools: ``OMP_*`` and the
  like, ``PYTHON*``, ``LD_*``, ``TORCH*``) is part of the server's name too, so an instance
  never inherits another's settings.
- Any doubt starts the instance cold: not Linux, ``GANAUG_WARM_START=0``, interpreter options
  on the command line (``python -X dev -m ...``), a relative ``PYTHONPATH`` entry, a socket
  folder that is not this user's alone, a server that does not answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import stat
import sys

IDLE_S = 30  # a server with no instance running and no request for this long ends
ENV_PREFIXES = ("PYTHON", "OMP_", "MKL_", "OPENBLAS_", "NUMEXPR_", "KMP_", "GOMP_", "TORCH",
                "PYTORCH", "LD_", "MALLOC", "GANAUG_WARM_PRELOAD")
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
START_TIMEOUT_S = 60  # a server that has not forked a request by then is stuck (seconds;
# GANAUG_WARM_TIMEOUT overrides it)
# Messages are JSON lines; a request (environment included) is far below this.
MAX_MESSAGE = 1 << 20




def socket_dir() -> str | None:
    """This user's folder for the servers' sockets, created if need be; None unless it is a real
    folder owned by this user that no one else can open."""
    base = os.environ.get("XDG_RUNTIME_DIR") or "/tmp"
    path = os.path.join(base, f"ganaug-warm-{os.getuid()}")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
        return None
    return path


def server_key(path: list[str], env: dict[str, str]) -> str:
    """The server that may start an instance with this import path (minus its first entry, the
    working directory) and environment: same interpreter, same import folders as they are now
    (a package installed changes its folder's modification time), same settings that libraries
    read when they load."""
    dirs = []
    for entry in path:
        try:
            dirs.append([entry, os.stat(entry).st_mtime_ns])
        except OSError:
            dirs.append([entry, None])
    what = {"python": sys.executable, "version": sys.version, "path": dirs,
            "env": sorted((k, v) for k, v in env.items() if k.startswith(ENV_PREFIXES))}
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:24]


def module_call() -> tuple[str, list[str]] | None:
    """``(module, args)`` when this interpreter was started as exactly ``python -m module args``
    and is importing the module's package now (``runpy`` has not run the module yet)."""
    orig = getattr(sys, "orig_argv", None)
    if sys.argv[:1] != ["-m"] or not orig or len(orig) < 3 or orig[1] != "-m":
        return None
    return orig[2], list(orig[3:])


def enabled(env) -> bool:
    return (sys.platform.startswith("linux")
            and env.get("GANAUG_WARM_START", "1").lower() not in ("0", "false", "no")
            and all(os.path.isabs(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p))


def handoff() -> None:
    """Run this ``python -m`` command's module in a forked child of the start server and end
    with its exit status; return (run cold here) if that cannot be done."""
    call = module_call()
    if call is None or not enabled(os.environ):
        return
    folder = socket_dir()
    if folder is None:
        return
    env = dict(os.environ)
    key = server_key(sys.path[1:], env)
    address = os.path.join(folder, key + ".sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(address)
    except OSError:
        sock.close()
        _start_server(folder, key, env)
        return
    umask = os.umask(0)
    os.umask(umask)
    request = {"module": call[0], "args": call[1], "cwd": os.getcwd(), "env": env,
               "umask": umask}
    # A server that does not fork within START_TIMEOUT_S is taken for stuck: the command runs
    # cold. The descriptors go only once the server asks for them, so that a stuck server never
    # holds the command's output open (a caller reading it to its end would wait for the server).
    sock.settimeout(float(os.environ.get("GANAUG_WARM_TIMEOUT", START_TIMEOUT_S)))
    lines = _Lines(sock)
    try:
        sock.sendall(json.dumps(request).encode() + b"\n")
        reply = lines.next()
        if reply is not None and reply.get("send"):
            socket.send_fds(sock, [b"\0"], [0, 1, 2])
            reply = lines.next()
    except OSError:  # socket.timeout included
        reply = None
    if reply is None or "pid" not in reply:
        sock.close()  # stale, refused, stuck or gone: this instance runs here
        return
    sock.settimeout(None)
    _follow(lines, reply["pid"])


class _Lines:
    """The server's replies, one JSON line at a time (two may arrive in one read)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.data = sock, b""

    def next(self) -> dict | None:
        while b"\n" not in self.data:
            chunk = self.sock.recv(4096)
            if not chunk or len(self.data) > MAX_MESSAGE:
                return None
            self.data += chunk
        line, self.data = self.data.split(b"\n", 1)
        return json.loads(line)


def _follow(lines: _Lines, pid: int) -> None:
    """Wait for the forked instance, passing signals on to it, and end as it ended."""
    def forward(signum, frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    for sig in FORWARDED:
        signal.signal(sig, forward)
    try:
        reply = lines.next()
    except OSError:
        reply = None
    if reply is None or "returncode" not in reply:
        # The server died under it: nobody can say how the instance ended.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        sys.stderr.write(f"ganaug: the warm start server ended before the instance it started "
                         f"(pid {pid}) did; rerun with GANAUG_WARM_START=0 to start it cold\n")
        os._exit(1)
    code = reply["returncode"]
    sys.stdout.flush()
    sys.stderr.flush()
    if code < 0:  # ended by a signal: end by the same one, as the instance did
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code & 0xFF)


def _start_server(folder: str, key: str, env: dict[str, str]) -> None:
    """Start the server in the background (it gives up at once if another is starting), with
    no descriptor of this process's: a test that reads a command's output to its end, or a
    shell waiting on a pipe, must not wait for the server."""
    import subprocess

    with contextlib.suppress(OSError):
        subprocess.Popen([sys.executable, "-m", "ganaug.parallel.daemon", folder, key],
                         cwd="/", env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
