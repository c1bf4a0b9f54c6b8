"""The warm start of ``python -m`` commands (ganaug.parallel.launcher): an instance forked from
the start server must behave as a fresh ``python -m`` process would, seen from the module it
runs and from the worker that waits on it. The end-to-end equality with ``dvc repro`` is in
tests/test_parallel.py (the tiny study runs warm there, and cold once)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganaug.parallel import forkserver, launcher

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

PROBE = '''\
import atexit, json, os, random, sys, time
what = {"argv": sys.argv[1:], "cwd": os.getcwd(), "path0": sys.path[0], "name": __name__,
        "file": __file__, "env": {k: os.environ.get(k) for k in ("PROBE", "NOT_PASSED")},
        "threads": __import__("torch").get_num_threads(), "random": random.random(),
        "np_random": __import__("numpy").random.random(), "stdin": sys.stdin.read()}
print(json.dumps(what), flush=True)
atexit.register(lambda: print("atexit ran"))
kept = open("unclosed.txt", "w")  # never closed: the interpreter's exit flushes it
kept.write("flushed at exit")
time.sleep(float(os.environ.get("PROBE_SLEEP", "0")))
if os.environ.get("PROBE_RAISE"):
    raise RuntimeError("boom")
sys.exit(os.environ.get("PROBE_EXIT") and (int(os.environ["PROBE_EXIT"])
         if os.environ["PROBE_EXIT"].isdigit() else os.environ["PROBE_EXIT"]))
'''
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture
def probe_dir(tmp_path):
    (tmp_path / "probe_mod.py").write_text(PROBE)
    yield tmp_path
    launcher.shutdown()


def instance_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(launcher.THREAD_PREFIXES)}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.pop("NOT_PASSED", None)
    return {**env, **THREADS, "PROBE": "x y", **extra}


def shell_argv(line: str) -> list[str]:
    return ["/bin/sh", "-c", line]


def run_warm(cwd: Path, line: str, env: dict[str, str]) -> tuple[int, str]:
    call = launcher.python_module_call(shell_argv(line), env)
    assert call is not None
    assert launcher.serves(env)
    log = cwd / "warm.log"
    log.write_text("")
    proc = launcher.start(*call, cwd=str(cwd), env=env, log=str(log))
    return proc.wait(timeout=120), log.read_text()


def run_cold(cwd: Path, line: str, env: dict[str, str]) -> tuple[int, str]:
    proc = subprocess.run(shell_argv(line), cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                          timeout=120)
    return proc.returncode, proc.stdout


def what(output: str) -> dict:
    return json.loads(next(line for line in output.splitlines() if line.startswith("{")))


def test_only_a_plain_python_dash_m_line_with_this_interpreter_starts_warm(tmp_path):
    env = instance_env()
    assert launcher.python_module_call(shell_argv("python -m stages.train --seed 1 --out 'a b.pt'"),
                                       env) == ("stages.train", ["--seed", "1", "--out", "a b.pt"])
    for line in ["python -m stages.train; rm -rf x", "python -m m > out.txt", "python -m m | cat",
                 "python -m m $HOME", "python -m m `id`", "FOO=1 python -m m",
                 "python -u -m m", "python m.py", "python -m", "python -m -c 1", "echo hi",
                 "python -m m 'unclosed", "python -m m && python -m n", "python -m m *.txt"]:
        assert launcher.python_module_call(shell_argv(line), env) is None, line
    assert launcher.python_module_call(["python", "-m", "m"], env) is None  # not DVC's shell form
    # Another interpreter (another environment's python) starts cold.
    other = tmp_path / "bin"
    other.mkdir()
    (other / "python").symlink_to(os.path.realpath(sys.executable))
    assert launcher.python_module_call(shell_argv("python -m m"),
                                       {**env, "PATH": str(other)}) is None
    assert launcher.python_module_call(shell_argv("python -m m"), {**env, "PATH": ""}) is None


def test_switched_off_by_the_variable_or_a_relative_pythonpath():
    assert launcher.enabled(instance_env())
    assert not launcher.enabled(instance_env(GANAUG_WARM_START="0"))
    assert not launcher.enabled(instance_env(PYTHONPATH="src"))
    assert launcher.enabled(instance_env(PYTHONPATH=f"{os.sep}abs{os.pathsep}"))


@pytest.mark.parametrize("case, expected_code", [
    ({}, 0), ({"PROBE_EXIT": "3"}, 3), ({"PROBE_EXIT": "300"}, 300 & 0xFF),
    ({"PROBE_EXIT": "a message"}, 1), ({"PROBE_RAISE": "1"}, 1)])
def test_a_warm_start_runs_the_module_as_python_dash_m_does(probe_dir, case, expected_code):
    line = "python -m probe_mod 'first arg' --flag"
    env = instance_env(**case)
    os.environ["NOT_PASSED"] = "the coordinator's own"  # must not reach the instance
    try:
        warm_code, warm_out = run_warm(probe_dir, line, env)
    finally:
        del os.environ["NOT_PASSED"]
    (probe_dir / "unclosed.txt").unlink()
    cold_code, cold_out = run_cold(probe_dir, line, env)
    assert warm_code == cold_code == expected_code
    warm, cold = what(warm_out), what(cold_out)
    for key in ("argv", "cwd", "path0", "name", "file", "env", "threads", "stdin"):
        assert warm[key] == cold[key], key
    assert warm["argv"] == ["first arg", "--flag"] and warm["env"] == {"PROBE": "x y",
                                                                      "NOT_PASSED": None}
    assert warm["path0"] == str(probe_dir) and warm["threads"] == 1
    assert "atexit ran" in warm_out and "atexit ran" in cold_out
    assert (probe_dir / "unclosed.txt").read_text() == "flushed at exit"
    if "PROBE_RAISE" in case:
        assert "RuntimeError: boom" in warm_out and "Traceback" in warm_out
    if case.get("PROBE_EXIT") == "a message":
        assert "a message" in warm_out


def test_each_warm_start_gets_fresh_random_state(probe_dir):
    env = instance_env()
    first, second = (what(run_warm(probe_dir, "python -m probe_mod", env)[1]) for _ in range(2))
    assert first["random"] != second["random"] and first["np_random"] != second["np_random"]


def test_other_thread_settings_start_cold(probe_dir):
    assert launcher.serves(instance_env())
    assert not launcher.serves({**instance_env(), "OMP_NUM_THREADS": "2"})
    assert launcher.serves(instance_env())


def test_a_warm_instance_can_be_terminated_and_reports_the_signal(probe_dir):
    env = instance_env(PROBE_SLEEP="60")
    call = launcher.python_module_call(shell_argv("python -m probe_mod"), env)
    assert launcher.serves(env)
    log = probe_dir / "warm.log"
    proc = launcher.start(*call, cwd=str(probe_dir), env=env, log=str(log))
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(timeout=0.2)
    deadline = time.monotonic() + 60
    while "argv" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.terminate()
    assert proc.wait(timeout=30) == -signal.SIGTERM


def test_instances_still_running_when_the_server_dies_are_reported_failed(probe_dir):
    env = instance_env(PROBE_SLEEP="60")
    call = launcher.python_module_call(shell_argv("python -m probe_mod"), env)
    assert launcher.serves(env)
    proc = launcher.start(*call, cwd=str(probe_dir), env=env, log=str(probe_dir / "warm.log"))
    launcher._server.proc.kill()
    assert proc.wait(timeout=30) == -1
    assert not launcher._server.alive  # even before the killed server is reaped
    os.kill(proc.pid, signal.SIGKILL)  # the orphan
    assert launcher.serves(env)  # a new server takes over
    assert run_warm(probe_dir, "python -m probe_mod", instance_env())[0] == 0


def test_a_missing_module_or_folder_fails_the_instance_with_the_reason_in_its_log(probe_dir):
    code, out = run_warm(probe_dir, "python -m no_such_module_here", instance_env())
    assert code == 1 and "No module named no_such_module_here" in out
    env = instance_env()
    call = launcher.python_module_call(shell_argv("python -m probe_mod"), env)
    log = probe_dir / "missing.log"
    proc = launcher.start(*call, cwd=str(probe_dir / "gone"), env=env, log=str(log))
    assert proc.wait(timeout=60) == 1
    assert "FileNotFoundError" in log.read_text() and "gone" in log.read_text()


def test_a_preloaded_module_edited_on_disk_is_imported_again(probe_dir):
    """The server imported helper_mod; once the file changes, no instance runs the old code: a
    new server imports it as it is now (the instances of the old one still report back)."""
    (probe_dir / "helper_mod.py").write_text("VALUE = 1\n")
    (probe_dir / "use_helper.py").write_text("import helper_mod\nprint('value', helper_mod.VALUE)\n")
    env = instance_env(PYTHONPATH=str(probe_dir), GANAUG_WARM_PRELOAD="helper_mod")
    time.sleep(0.1)  # written before the server starts (it distrusts files changed meanwhile)
    assert run_warm(probe_dir, "python -m use_helper", env) == (0, "value 1\n")
    slow = launcher.start("probe_mod", [], cwd=str(probe_dir), env={**env, "PROBE_SLEEP": "3"},
                          log=str(probe_dir / "slow.log"))
    first = launcher._server
    (probe_dir / "helper_mod.py").write_text("VALUE = 2\n")
    assert run_warm(probe_dir, "python -m use_helper", env) == (0, "value 2\n")
    assert launcher._server is not first and first.stale
    assert slow.wait(timeout=60) == 0  # started by the retired server, still followed
    # Replaced by another file (a new inode), as editors that save atomically do.
    (probe_dir / "helper_new.py").write_text("VALUE = 3\n")
    os.replace(probe_dir / "helper_new.py", probe_dir / "helper_mod.py")
    assert run_warm(probe_dir, "python -m use_helper", env) == (0, "value 3\n")


def test_files_changed_since_the_imports_are_found(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("x = 1\n")
    files = {str(path): forkserver._file_key(str(path))}
    assert forkserver.changed_files(files) == []
    assert forkserver.edited_since(files, time.time_ns() + 10**9) == []
    assert forkserver.edited_since(files, time.time_ns()) == [str(path)]  # within the clock's slack
    future = time.time_ns() + 3600 * 10**9  # a clock skew, not an edit during the imports
    os.utime(path, ns=(future, future))
    skewed = {str(path): forkserver._file_key(str(path))}
    assert forkserver.edited_since(skewed, time.time_ns() - 10**9, time.time_ns()) == []
    path.write_text("x = 22\n")
    assert forkserver.changed_files(files) == [str(path)]
    path.unlink()
    assert forkserver.changed_files(files) == [str(path)]
