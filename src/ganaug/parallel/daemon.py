"""The warm start server of plain ``dvc repro`` (see :mod:`ganaug.warmstart`): started by the first
stage command that finds none, ``python -m ganaug.parallel.daemon FOLDER KEY``."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field

from ganaug.parallel import forkserver
from ganaug.warmstart import IDLE_S, MAX_MESSAGE

MAX_ADDRESS = 108  # bytes in a Unix socket's path, its terminating NUL included (Linux)


def serve(folder: str, key: str) -> None:
    """Import :data:`.forkserver.PRELOAD`, listen on ``folder/key.sock`` and fork one instance per
    request, until idle for :data:`IDLE_S` seconds or an imported file changes."""
    address = os.path.join(folder, key + ".sock")
    if len(os.fsencode(address)) >= MAX_ADDRESS:
        return  # a socket cannot have this path: every command runs cold, at no cost here
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    lock = os.open(os.path.join(folder, key + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # another server for this key is starting or serving
    imported, early = forkserver.preload()
    if "stages" in sys.modules:  # a working directory's package: never the server's
        return
    if early:
        return  # being edited: the next command starts a server when the files are still
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    temp = f"{address}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temp)
    listener.bind(temp)
    os.chmod(temp, 0o600)
    listener.listen(64)
    os.replace(temp, address)  # only a server ready to fork is ever found
    try:
        _serve(listener, address, imported, keep={lock})
    finally:
        with contextlib.suppress(OSError):
            if os.stat(address).st_ino == os.fstat(listener.fileno()).st_ino:
                os.unlink(address)
        listener.close()


@dataclass
class _Command:
    """One command's connection: its request as read so far, then parsed (once the server has
    asked for the descriptors), and the descriptors received."""

    data: bytes = b""
    request: dict | None = None
    fds: list[int] = field(default_factory=list)


def _serve(listener: socket.socket, address: str, imported: dict, keep: set[int]) -> None:
    bound = os.stat(address).st_ino
    conns: dict[socket.socket, _Command] = {}
    running: dict[int, socket.socket] = {}  # pid -> its command's connection
    accepting = True
    idle_since = time.monotonic()
    while accepting or running:
        watched = [*conns] + ([listener] if accepting else [])
        ready = select.select(watched, [], [], forkserver.POLL_S if running else 1.0)[0]
        for sock in ready:
            if sock is listener:
                conn, _ = listener.accept()
                if _peer_uid(conn) != os.getuid():
                    conn.close()
                    continue
                conns[conn] = _Command()
                continue
            cmd = conns[sock]
            try:
                data, got, _, _ = socket.recv_fds(sock, 65536, 3)
            except OSError:
                data, got = b"", []
            cmd.fds.extend(got)
            if not data or len(cmd.data) > MAX_MESSAGE:
                _drop(sock, conns, running)
                continue
            if cmd.request is None:
                # First the request (a JSON line, no descriptors), checked before asking for
                # the command's descriptors: a server that cannot start it never holds them.
                cmd.data += data
                if b"\n" not in cmd.data:
                    continue
                changed = forkserver.changed_files(imported)
                if changed or cmd.fds:
                    _send(sock, {"stale": changed[:5]})
                    _drop(sock, conns, running)
                    if changed:
                        accepting = False  # the next command starts a server with today's files
                    continue
                cmd.request = json.loads(cmd.data.split(b"\n", 1)[0])
                _send(sock, {"send": True})
                continue
            # Then one byte with its standard input, output and error: fork.
            if len(cmd.fds) != 3 or _closed(sock):
                _drop(sock, conns, running)
                continue
            pid = os.fork()
            if pid == 0:
                for other in (*conns, listener):
                    other.close()
                for fd in keep:
                    os.close(fd)
                forkserver.run_module(cmd.request, cmd.fds)  # never returns
            for fd in cmd.fds:
                os.close(fd)
            cmd.fds = []
            running[pid] = sock
            _send(sock, {"pid": pid})
        while running:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            sock = running.pop(pid)
            if sock in conns:
                _send(sock, {"returncode": os.waitstatus_to_exitcode(status)})
                _drop(sock, conns, running)
        if running or conns:
            idle_since = time.monotonic()
        elif accepting and time.monotonic() - idle_since > IDLE_S:
            accepting = False
        if accepting:
            try:
                replaced = os.stat(address).st_ino != bound
            except OSError:
                replaced = True
            if replaced:  # removed, or taken by another server: stop serving
                accepting = False


def _closed(sock: socket.socket) -> bool:
    """Whether the command gave up on this connection (it timed out and runs cold): then its
    instance must not start here too."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def _peer_uid(conn: socket.socket) -> int | None:
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return None
    return struct.unpack("3i", creds)[1]


def _send(sock: socket.socket, msg: dict) -> None:
    with contextlib.suppress(OSError):
        sock.sendall(json.dumps(msg).encode() + b"\n")


def _drop(sock: socket.socket, conns: dict[socket.socket, _Command],
          running: dict[int, socket.socket]) -> None:
    """Close a command's connection; an instance still running for it is killed. Its command
    was: a command passes on the signals it can catch, so one that vanished got SIGKILL (a
    killed process group, say), which a cold instance in that group would have got too."""
    for pid, owner in list(running.items()):
        if owner is sock:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    cmd = conns.pop(sock, None)
    for fd in cmd.fds if cmd is not None else []:
        os.close(fd)
    sock.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
