"""The warm start of plain ``dvc repro`` (ganaug.warmstart, ganaug.parallel.daemon): a stage
command ``python -m stages.<name>`` handed to the start server must behave as the same command
run cold, seen from the module and from DVC (output, exit status, signals), and never run code
other than what is on disk. The tiny study's ``dvc repro`` (tests/conftest.py) runs warm, and the
parallel tests compare its bytes with cold runs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from e2e import REPO_ROOT

from ganaug import warmstart

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

PROBE = '''\
import json, os, sys, time
import probe_lib
print(json.dumps({"pid": os.getpid(), "argv": sys.argv[1:], "cwd": os.getcwd(),
                  "path0": sys.path[0], "name": __name__, "file": __file__,
                  "env": os.environ.get("PROBE"), "lib": probe_lib.VALUE,
                  "stdin": sys.stdin.read() if os.environ.get("PROBE_STDIN") else None,
                  "umask": os.umask(0o022)}), flush=True)
time.sleep(float(os.environ.get("PROBE_SLEEP", "0")))
if os.environ.get("PROBE_RAISE"):
    raise RuntimeError("boom")
sys.exit(int(os.environ.get("PROBE_EXIT", "0")))
'''


@pytest.fixture(scope="module")
def project():
    """A project folder with the real ``stages/__init__.py`` and a probe stage, a preloaded
    library (to edit), and a socket folder of its own (short: a socket path has a length limit),
    so the servers are this module's alone."""
    root = Path(tempfile.mkdtemp(prefix="gw", dir="/tmp"))
    (root / "stages").mkdir()
    shutil.copy(REPO_ROOT / "stages" / "__init__.py", root / "stages")
    (root / "stages" / "probe.py").write_text(PROBE)
    (root / "lib").mkdir()
    (root / "lib" / "probe_lib.py").write_text("VALUE = 1\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANAUG_WARM")}
    env.update(XDG_RUNTIME_DIR=str(root / "run"), GANAUG_WARM_PRELOAD="probe_lib",
               PYTHONPATH=os.pathsep.join([str(root / "lib"), str(REPO_ROOT / "src")]))
    (root / "run").mkdir()
    yield root, env
    stop_servers(root / "run")
    shutil.rmtree(root, ignore_errors=True)


def sockets(run: Path) -> list[Path]:
    return sorted(run.glob("ganaug-warm-*/*.sock"))


def stop_servers(run: Path) -> None:
    for sock in sockets(run):
        sock.unlink()  # a server whose socket is gone stops serving and ends


def wait_for_server(run: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not sockets(run):
        assert time.monotonic() < deadline, "no warm start server came up"
        time.sleep(0.2)


def stage(root: Path, env: dict[str, str], *args: str, stdin: str = "", timeout: float = 60,
          **extra: str) -> tuple[int, dict, str, int]:
    """Run ``python -m stages.probe args``: (exit status, what the probe printed, stderr, the
    command's pid)."""
    proc = subprocess.Popen([sys.executable, "-m", "stages.probe", *args], cwd=root,
                            env={**env, **extra}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(stdin, timeout=timeout)
    first = next((line for line in out.splitlines() if line.startswith("{")), "{}")
    return proc.returncode, json.loads(first), err, proc.pid


def warm_server(root: Path, env: dict[str, str]) -> None:
    """Make sure a server for ``env`` is up: a first command starts it."""
    stage(root, env)
    wait_for_server(root / "run")


def test_a_stage_command_runs_in_a_fork_of_the_server_as_it_runs_cold(project):
    root, env = project
    cold_code, cold, _, cold_pid = stage(root, env, "a b", "--flag", stdin="piped",
                                         PROBE="x y", PROBE_STDIN="1", GANAUG_WARM_START="0")
    assert cold["pid"] == cold_pid  # ran in the command's own process
    warm_server(root, env)
    code, warm, _, pid = stage(root, env, "a b", "--flag", stdin="piped", PROBE="x y",
                               PROBE_STDIN="1")
    assert warm["pid"] != pid  # ran in a child of the server
    assert code == cold_code == 0
    for key in ("argv", "cwd", "path0", "name", "file", "env", "lib", "stdin", "umask"):
        assert warm[key] == cold[key], key
    assert warm["argv"] == ["a b", "--flag"] and warm["stdin"] == "piped"


@pytest.mark.parametrize("extra, expected", [({"PROBE_EXIT": "3"}, 3), ({"PROBE_RAISE": "1"}, 1)])
def test_a_warm_instance_ends_with_its_exit_status_and_traceback(project, extra, expected):
    root, env = project
    warm_server(root, env)
    code, warm, err, pid = stage(root, env, **extra)
    assert warm["pid"] != pid and code == expected
    if "PROBE_RAISE" in extra:
        assert "Traceback" in err and "RuntimeError: boom" in err


def gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_a_signal_to_the_command_reaches_the_instance(project, sig):
    """Ctrl-C and termination are passed on, and the command ends by the same signal; a command
    killed outright (SIGKILL cannot be caught) takes its instance with it."""
    root, env = project
    warm_server(root, env)
    proc = subprocess.Popen([sys.executable, "-m", "stages.probe"], cwd=root,
                            env={**env, "PROBE_SLEEP": "60"}, stdout=subprocess.PIPE, text=True)
    child = json.loads(proc.stdout.readline())["pid"]
    assert child != proc.pid
    proc.send_signal(sig)
    code = proc.wait(timeout=30)
    assert code == -sig
    assert gone(child)


def test_an_edited_preloaded_module_is_never_run_from_the_server(project):
    """The server imported probe_lib; once it is edited, the next command runs cold with the new
    code, and a new server (the old one stops) serves the edited code warm."""
    root, env = project
    warm_server(root, env)
    lib = root / "lib" / "probe_lib.py"
    before = lib.read_text()
    try:
        lib.write_text("VALUE = 2\n")
        _, out, _, pid = stage(root, env)
        assert out["lib"] == 2 and out["pid"] == pid  # cold, new code
        deadline = time.monotonic() + 120
        while True:  # a new server comes up (started by a later command) and serves VALUE 2
            _, out, _, pid = stage(root, env)
            assert out["lib"] == 2
            if out["pid"] != pid:
                break
            assert time.monotonic() < deadline, "no new server after the edit"
            time.sleep(0.5)
    finally:
        lib.write_text(before)


def test_the_first_command_does_not_wait_for_the_server_it_starts(project):
    """The server holds none of the command's descriptors: reading the command's output to its
    end (what DVC's caller or a shell pipe does) ends when the command does."""
    root, env = project
    stop_servers(root / "run")
    fresh = {**env, "PROBE": "another key"}  # same server key: PROBE is not a library setting
    alone = {**fresh, "OMP_NUM_THREADS": "7"}  # a thread setting: a server of its own
    proc = subprocess.run([sys.executable, "-m", "stages.probe"], cwd=root, env=alone,
                          capture_output=True, text=True, timeout=25)
    assert proc.returncode == 0


def test_cold_when_switched_off_or_unsure(project):
    root, env = project
    warm_server(root, env)
    for extra in ({"GANAUG_WARM_START": "0"}, {"PYTHONPATH": env["PYTHONPATH"] + os.pathsep + "src"}):
        _, out, _, pid = stage(root, env, **extra)
        assert out["pid"] == pid, extra
    # Interpreter options a forked server could not honour.
    proc = subprocess.Popen([sys.executable, "-X", "dev", "-m", "stages.probe"], cwd=root,
                            env=env, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=60)
    assert json.loads(out)["pid"] == proc.pid


def test_a_socket_folder_others_can_open_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    folder = tmp_path / f"ganaug-warm-{os.getuid()}"
    assert warmstart.socket_dir() == str(folder)
    folder.chmod(0o777)
    assert warmstart.socket_dir() is None
    folder.chmod(0o700)
    folder.rmdir()
    folder.symlink_to(tmp_path)
    assert warmstart.socket_dir() is None


def test_the_server_key_follows_library_settings_and_installed_packages(tmp_path):
    path = [str(tmp_path)]
    base = warmstart.server_key(path, {"HOME": "/a"})
    assert warmstart.server_key(path, {"HOME": "/b", "DVC_STAGE": "x"}) == base
    assert warmstart.server_key(path, {"OMP_NUM_THREADS": "1"}) != base
    assert warmstart.server_key(path, {"PYTHONHASHSEED": "0"}) != base
    time.sleep(0.01)
    (tmp_path / "new_package").mkdir()  # an install changes the folder's modification time
    assert warmstart.server_key(path, {"HOME": "/a"}) != base


@pytest.mark.e2e
def test_stages_rerun_cold_give_the_bytes_the_warm_dvc_repro_gave(study_copy, monkeypatch):
    """The tiny study was reproduced by plain ``dvc repro``, warm (conftest.py). Forced again
    cold, a GAN, a classifier and an evaluation leave ``dvc.lock`` (their outputs' hashes) as it
    was."""
    from e2e import dvc, git, stages_run

    stages = ("train_gan@0", "train@random-1-0", "evaluate@random-1-0")
    monkeypatch.setenv("GANAUG_WARM_START", "0")
    assert stages_run(dvc(study_copy, "repro", "-f", "-s", *stages)) == set(stages)
    assert git(study_copy, "status", "--porcelain").stdout == ""


def test_a_stuck_server_is_given_up_and_the_command_runs_cold(project, tmp_path):
    """Something listening on the server's socket that never answers (a stopped server): the
    command waits GANAUG_WARM_TIMEOUT seconds, then runs its instance itself."""
    import socket

    root, env = project
    stop_servers(root / "run")
    env = {**env, "GANAUG_WARM_TIMEOUT": "1", "OMP_NUM_THREADS": "5"}  # a key of its own
    folder = root / "run" / f"ganaug-warm-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = json.loads(subprocess.run(
        [sys.executable, "-c", "import json, sys; print(json.dumps(sys.path[1:]))"], cwd=root,
        env=env, capture_output=True, text=True, check=True).stdout)
    key = warmstart.server_key(path, env)
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.bind(str(folder / f"{key}.sock"))
    stuck.listen(4)
    try:
        code, out, _, pid = stage(root, env, timeout=60)
        assert code == 0 and out["pid"] == pid  # cold, after the wait
    finally:
        stuck.close()
        (folder / f"{key}.sock").unlink()


def test_a_socket_path_too_long_runs_cold_and_leaves_no_server(tmp_path):
    root = Path(tempfile.mkdtemp(prefix="gw", dir="/tmp"))
    try:
        (root / "stages").mkdir()
        shutil.copy(REPO_ROOT / "stages" / "__init__.py", root / "stages")
        (root / "stages" / "probe.py").write_text(PROBE)
        (root / "lib").mkdir()
        (root / "lib" / "probe_lib.py").write_text("VALUE = 1\n")
        deep = root / ("x" * 60) / ("y" * 60)
        deep.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("GANAUG_WARM")}
        env.update(XDG_RUNTIME_DIR=str(deep),
                   PYTHONPATH=os.pathsep.join([str(root / "lib"), str(REPO_ROOT / "src")]))
        for _ in range(2):
            code, out, _, pid = stage(root, env)
            assert code == 0 and out["pid"] == pid
        time.sleep(2)
        assert not list(deep.glob("ganaug-warm-*/*.sock"))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_two_replies_in_one_read_are_both_kept():
    """A quick instance's start and end can reach the command in one read: the exit status
    must not be lost with the rest of the first read."""
    import socket

    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(b'{"pid": 7}\n{"returncode": 3}\n')
        lines = warmstart._Lines(ours)
        assert lines.next() == {"pid": 7} and lines.next() == {"returncode": 3}
        theirs.close()
        assert lines.next() is None
