"""``python -m ganaug.parallel``: the same results as ``dvc repro``, several instances at a time.

Most tests drive the real command on a small probe pipeline (a few stages that sleep, record the
environment they saw and write a small output; no torch), so they take seconds. Two end-to-end
tests run the tiny study: once to compare with the session's sequential ``dvc repro`` (the
``tiny_study`` fixture), once killed with SIGKILL part-way and rerun.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from e2e import REPO_ROOT, dvc, git, make_study, read_yaml, stages_run, study_env

from ganaug.config import ParamsError, load_params
from ganaug.parallel import launcher
from ganaug.parallel.engine import EngineOptions, parse_gpus, usable_cores
from ganaug.parallel.workspace import InstanceSpec, prepare_workspace
from ganaug.validate import validate_params

TINY = REPO_ROOT / "presets" / "tiny.yaml"

PROBE = '''\
"""A stand-in stage: sleeps, records what it saw, writes an output that depends on the input's
length only (so an input edited to the same length gives the same output)."""
import json, os, sys, time
from pathlib import Path

kind, src, out = sys.argv[1:4]
name = sys.argv[4] if len(sys.argv) > 4 else kind
start = time.time()
if name in os.environ.get("PROBE_FAIL", "").split(","):
    print(f"probe {name}: failing on purpose")
    sys.exit(3)
time.sleep(float(os.environ.get("PROBE_SLEEP", "0")))
src = Path(src)
text = src.read_text() if src.is_file() else "".join(
    p.read_text() for p in sorted(src.glob("probe-*.txt")))
Path(out).parent.mkdir(parents=True, exist_ok=True)
Path(out).write_text(f"{name}: {len(text)}\\n")
if os.environ.get("PROBE_DIR"):
    record = Path(os.environ["PROBE_DIR"]) / f"{name}-{os.getpid()}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({
        "name": name, "start": start, "end": time.time(), "cwd": os.getcwd(),
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "omp": os.environ.get("OMP_NUM_THREADS")}))
'''

PROBE_ITEMS = ["a", "b", "c", "d"]


def probe_dvc_yaml(python: str) -> dict:
    probe_outs = [f"out/probe-{i}.txt" for i in PROBE_ITEMS]
    return {"stages": {
        "gen": {"cmd": f"{python} probe.py gen src.txt out/gen.txt",
                "deps": ["probe.py", "src.txt"], "outs": ["out/gen.txt"]},
        "probe": {"foreach": PROBE_ITEMS, "do": {
            "cmd": f"{python} probe.py probe out/gen.txt out/probe-${{item}}.txt ${{item}}",
            "deps": ["probe.py", "out/gen.txt"], "params": ["study.seeds"],
            "outs": ["out/probe-${item}.txt"]}},
        "collect": {"cmd": f"{python} probe.py collect out metrics/all.txt",
                    "deps": ["probe.py", *probe_outs],
                    "metrics": [{"metrics/all.txt": {"cache": False}}]},
    }}


@pytest.fixture
def probe_repo(tmp_path) -> Path:
    """A git + DVC repo with the probe pipeline and the tiny preset as params.yaml."""
    repo = tmp_path / "probe"
    repo.mkdir()
    (repo / "probe.py").write_text(PROBE)
    (repo / "src.txt").write_text("hello\n")
    (repo / "dvc.yaml").write_text(yaml.safe_dump(probe_dvc_yaml(sys.executable),
                                                  sort_keys=False))
    shutil.copy(TINY, repo / "params.yaml")
    git(repo, "init", "-q", "-b", "main")
    dvc(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "probe pipeline")
    return repo


def parallel(repo: Path, *args: str, check: bool = True, **env: str
             ) -> subprocess.CompletedProcess:
    """``python -m ganaug.parallel ARGS`` in ``repo`` with this checkout's package."""
    full_env = {**study_env(repo), **env}
    full_env["PYTHONPATH"] = os.pathsep.join([str(repo / "src"), str(REPO_ROOT / "src"),
                                              full_env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-m", "ganaug.parallel", *args], cwd=repo,
                          env=full_env, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"ganaug.parallel exited {proc.returncode}\n{proc.stderr[-6000:]}")
    return proc


def summary_line(proc: subprocess.CompletedProcess) -> str:
    return [line for line in proc.stderr.splitlines() if " ran on workers, " in line][-1]


def lock(repo: Path) -> dict:
    return yaml.safe_load((repo / "dvc.lock").read_text())


def files(repo: Path, *folders: str) -> dict[str, bytes]:
    return {str(p.relative_to(repo)): p.read_bytes()
            for folder in folders for p in sorted((repo / folder).rglob("*")) if p.is_file()}


def records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def status_clean(repo: Path, *targets: str) -> bool:
    return "Data and pipelines are up to date." in dvc(repo, "status", *targets).stdout


# ------------------------------------------------------------------------------------------
# The probe pipeline
# ------------------------------------------------------------------------------------------


def test_instances_on_different_workers_never_share_a_gpu(probe_repo, tmp_path):
    seen = tmp_path / "seen"
    sequential = shutil.copytree(probe_repo, tmp_path / "sequential", symlinks=True)
    parallel(probe_repo, "--gpus", "0,1", PROBE_DIR=str(seen), PROBE_SLEEP="1")

    runs = records(seen)
    assert sorted(r["name"] for r in runs) == sorted(["gen", *PROBE_ITEMS, "collect"])
    threads = str(max(1, usable_cores() // 2))
    for r in runs:
        assert r["cuda"] in ("0", "1") and r["omp"] == threads, r
        assert "/.dvc/tmp/parallel/ws/" in r["cwd"]  # each in its own workspace
    overlapping = [(a, b) for a in runs for b in runs
                   if a["name"] < b["name"] and a["start"] < b["end"] and b["start"] < a["end"]]
    assert overlapping, "the probes should have run two at a time"
    for a, b in overlapping:
        assert a["cuda"] != b["cuda"], (a, b)

    # Same bookkeeping and outputs as `dvc repro`, and nothing left to do.
    dvc(sequential, "repro")
    assert (probe_repo / "dvc.lock").read_bytes() == (sequential / "dvc.lock").read_bytes()
    assert files(probe_repo, "out", "metrics") == files(sequential, "out", "metrics")
    assert status_clean(probe_repo)
    assert stages_run(dvc(probe_repo, "repro")) == set()
    assert not (probe_repo / ".dvc/tmp/parallel/ws").exists()  # workspaces removed


@pytest.fixture
def dask_cluster(tmp_path):
    """A Dask scheduler and two workers on 127.0.0.1, each worker with its own fake GPU id and
    the probes' settings in its environment (instances inherit their worker's environment)."""
    from distributed import Client

    file = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"),
                                                        os.environ.get("PYTHONPATH", "")]),
           "PROBE_DIR": str(tmp_path / "seen"), "PROBE_SLEEP": "1"}
    common = ["--no-dashboard", "--scheduler-file", str(file)]
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
                               "--port", "0", *common], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for gpu in ("0", "1"):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "dask", "worker", "--nthreads", "1", "--host",
                 "127.0.0.1", *common], env={**env, "CUDA_VISIBLE_DEVICES": gpu},
                start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(scheduler_file=str(file), timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            yield client.scheduler.address, tmp_path / "seen"
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=30)


def test_workers_attached_to_a_scheduler_run_the_instances(probe_repo, dask_cluster, tmp_path):
    address, seen = dask_cluster
    sequential = shutil.copytree(probe_repo, tmp_path / "sequential", symlinks=True)
    proc = parallel(probe_repo, "--scheduler", address)
    assert "6 ran on workers" in summary_line(proc)

    runs = records(seen)
    assert sorted(r["name"] for r in runs) == sorted(["gen", *PROBE_ITEMS, "collect"])
    assert {r["cuda"] for r in runs} == {"0", "1"}  # both workers took instances
    assert all(r["omp"] == str(max(1, usable_cores() // 2)) for r in runs)  # 2 on this host
    overlapping = [(a, b) for a in runs for b in runs
                   if a["name"] < b["name"] and a["start"] < b["end"] and b["start"] < a["end"]]
    assert overlapping and all(a["cuda"] != b["cuda"] for a, b in overlapping)
    dvc(sequential, "repro")
    assert lock(probe_repo) == lock(sequential)
    assert status_clean(probe_repo)


def test_a_failed_instance_is_reported_and_the_rerun_finishes(probe_repo):
    proc = parallel(probe_repo, "-j", "2", check=False, PROBE_FAIL="b")
    assert proc.returncode == 1
    log = probe_repo / ".dvc/tmp/parallel/logs/probe@b.log"
    assert "FAILED     probe@b" in proc.stderr and str(log) in proc.stderr
    assert "probe b: failing on purpose" in proc.stderr  # the tail of its log
    assert "not run  collect (needs probe@b)" in proc.stderr
    # gen, probe@a, probe@c and probe@d
    assert "4 ran on workers" in summary_line(proc) and "1 failed" in summary_line(proc)
    status = dvc(probe_repo, "status").stdout
    assert "probe@b:" in status and "collect:" in status
    assert "probe@a:" not in status and "gen:" not in status  # the independent ones finished

    again = parallel(probe_repo, "-j", "2")
    assert "2 ran on workers" in summary_line(again)  # probe@b and collect
    assert "4 up to date" in summary_line(again)
    assert status_clean(probe_repo)


def test_reruns_skip_and_restore_what_dvc_repro_would(probe_repo):
    parallel(probe_repo, "-j", "2")
    assert "6 up to date" in summary_line(parallel(probe_repo, "-j", "2"))

    # A new input: everything downstream runs on the new bytes.
    (probe_repo / "src.txt").write_text("hello, world\n")
    assert "6 ran on workers" in summary_line(parallel(probe_repo, "-j", "2"))
    assert (probe_repo / "out/gen.txt").read_text() == "gen: 13\n"
    assert (probe_repo / "out/probe-a.txt").read_text() == "a: 8\n"

    # gen runs again but writes the same bytes: the probes stay up to date, as in `dvc repro`.
    (probe_repo / "src.txt").write_text("jello, world\n")
    assert "1 ran on workers" in summary_line(p := parallel(probe_repo, "-j", "2"))
    assert "5 up to date" in summary_line(p)

    # A param the probes declare: they run; collect's inputs are unchanged.
    edit = yaml.safe_load((probe_repo / "params.yaml").read_text())
    edit["study"]["seeds"] = [0, 7]
    (probe_repo / "params.yaml").write_text(yaml.safe_dump(edit))
    assert "4 ran on workers" in summary_line(p := parallel(probe_repo, "-j", "2"))
    # Back again: DVC's run-cache has those runs, so nothing goes to a worker.
    shutil.copy(TINY, probe_repo / "params.yaml")
    line = summary_line(parallel(probe_repo, "-j", "2"))
    assert "0 ran on workers" in line and "4 restored from DVC's cache" in line
    assert status_clean(probe_repo)


def test_a_stage_with_a_persistent_output_runs_in_the_main_workspace(probe_repo):
    pipeline = yaml.safe_load((probe_repo / "dvc.yaml").read_text())
    pipeline["stages"]["tally"] = {
        "cmd": f"{sys.executable} probe.py tally src.txt out/tally.txt",
        "deps": ["probe.py", "src.txt"], "outs": [{"out/tally.txt": {"persist": True}}]}
    (probe_repo / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    line = summary_line(parallel(probe_repo, "-j", "2", "tally"))
    assert "0 ran on workers" in line and "1 ran in the main workspace" in line
    assert (probe_repo / "out/tally.txt").read_text() == "tally: 6\n"
    (probe_repo / "src.txt").write_text("hello, world\n")
    assert "1 ran in the main workspace" in summary_line(parallel(probe_repo, "tally"))
    assert (probe_repo / "out/tally.txt").read_text() == "tally: 13\n"  # not the old output
    assert status_clean(probe_repo, "tally")


def test_targets_reproduce_only_what_they_need(probe_repo):
    proc = parallel(probe_repo, "-j", "2", "probe@a")
    assert "2 ran on workers" in summary_line(proc)
    assert sorted(lock(probe_repo)["stages"]) == ["gen", "probe@a"]
    assert status_clean(probe_repo, "probe@a") and not status_clean(probe_repo)


def test_a_bad_params_file_fails_once_before_any_worker_starts(probe_repo):
    edit = yaml.safe_load((probe_repo / "params.yaml").read_text())
    edit["gan"]["lr_g"] = "fast"
    (probe_repo / "params.yaml").write_text(yaml.safe_dump(edit))
    proc = parallel(probe_repo, "-j", "2", check=False)
    assert proc.returncode == 1
    assert proc.stderr.count("gan.lr_g") == 1
    assert "workers" not in proc.stderr and "start " not in proc.stderr
    assert not (probe_repo / ".dvc/tmp/parallel").exists()
    assert not (probe_repo / "dvc.lock").exists()


# ------------------------------------------------------------------------------------------
# Pieces
# ------------------------------------------------------------------------------------------


def test_every_preset_passes_the_preflight_and_a_bad_value_is_named():
    for preset in sorted((REPO_ROOT / "presets").glob("*.yaml")):
        validate_params(load_params(preset), preset.name)
    params = load_params(TINY)
    params["select"]["threshold"]["min_confidence"] = "high"
    with pytest.raises(ParamsError, match=r"params.yaml: select.threshold.min_confidence"):
        validate_params(params)


def test_workspace_links_project_and_deps_but_not_outputs(tmp_path):
    root = tmp_path / "repo"
    for rel, text in {"code.py": "x", "data/in.bin": "in", "data/sub/more.bin": "more",
                      "out/old.txt": "stale", "data/.gitignore": "/in.bin\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    ws = root / ".dvc/tmp/parallel/ws/stage"
    spec = InstanceSpec(name="stage", root=str(root), workspace=str(ws), log=str(tmp_path / "l"),
                        commands=(), wdir=".", files=("code.py", "data/.gitignore"),
                        deps=("data",), outs=("out/old.txt",))
    prepare_workspace(spec)

    assert os.path.samefile(ws / "code.py", root / "code.py")  # a link, not a copy
    assert os.path.samefile(ws / "data/sub/more.bin", root / "data/sub/more.bin")
    assert not os.path.samefile(ws / "data/.gitignore", root / "data/.gitignore")  # copied
    assert not (ws / "out/old.txt").exists()

    # A rerun rebuilds the workspace but keeps a resume checkpoint left there.
    (ws / ".checkpoints").mkdir()
    (ws / ".checkpoints/stage.pt").write_text("resume")
    (ws / "code.py").unlink()
    prepare_workspace(spec)
    assert (ws / ".checkpoints/stage.pt").read_text() == "resume"
    assert os.path.samefile(ws / "code.py", root / "code.py")

    outside = InstanceSpec(**{**spec.__dict__, "workspace": str(root / "data")})
    with pytest.raises(OSError, match="must lie inside"):
        prepare_workspace(outside)
    assert (root / "data/in.bin").read_text() == "in"


def test_workspaces_link_no_output_of_a_planned_stage(tmp_path):
    """Committed outputs (metrics, plots) of other instances are not linked into a workspace:
    the coordinator replaces them in the main workspace while other workspaces are prepared,
    and a file vanishing mid-link failed an instance (a default-study run lost
    select@threshold-1 that way)."""
    from ganaug.parallel.session import worker_files

    root = tmp_path / "repo"
    for rel in ("code.py", "plots/train/a-0/metrics.json", "plots/train/a-0/plots/lr.tsv",
                "plots/train/b-0/metrics.json", "plots/trainer.txt", "metrics/x.json"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    outs = ["plots/train/a-0", "plots/train/b-0/metrics.json", "metrics/x.json"]
    assert worker_files(root, outs) == ("code.py", "plots/trainer.txt")
    assert "plots/train/a-0/plots/lr.tsv" in worker_files(root, [])


def test_local_workers_get_one_gpu_each_and_a_share_of_the_cores():
    slots = EngineOptions(gpus=("0", "1"), per_gpu=2, threads=3).local_slots()
    assert [s["CUDA_VISIBLE_DEVICES"] for s in slots] == ["0", "0", "1", "1"]
    assert all(s["OMP_NUM_THREADS"] == s["MKL_NUM_THREADS"] == "3" for s in slots)
    slots = EngineOptions(workers=2).local_slots()
    assert len(slots) == 2 and "CUDA_VISIBLE_DEVICES" not in slots[0]
    assert slots[0]["OMP_NUM_THREADS"] == str(max(1, usable_cores() // 2))
    assert parse_gpus("0, 2") == ("0", "2")
    for bad in ({"workers": 3, "gpus": ("0", "1")}, {"scheduler": "tcp://h:8786", "gpus": ("0",)},
                {"workers": 0}):
        with pytest.raises(ValueError):
            EngineOptions(**bad)
    with pytest.raises(ValueError, match="distinct"):
        parse_gpus("0,0")


def test_a_lockfile_left_broken_by_a_kill_is_put_back(tmp_path):
    from dvc.repo import Repo

    from ganaug.lock import backup_lockfile, recover_lockfiles

    root = tmp_path / "repo"
    root.mkdir()
    repo = Repo.init(str(root), no_scm=True)
    backups = Path(repo.tmp_dir) / "parallel" / "lock-backups"
    good = "schema: '2.0'\nstages:\n  a:\n    cmd: echo a\n"
    (root / "dvc.lock").write_text(good)
    backup_lockfile(root / "dvc.lock", root, backups)
    assert recover_lockfiles(root, backups) == []  # a good lockfile stays as it is

    (root / "dvc.lock").write_text(good + "    deps:\n    - path: [")  # cut mid-write
    assert recover_lockfiles(root, backups) == [root / "dvc.lock"]
    assert (root / "dvc.lock").read_text() == good
    # A file that is YAML but not a lockfile (a stage without cmd) is put back too.
    (root / "dvc.lock").write_text("schema: '2.0'\nstages:\n  a:\n    deps: []\n")
    assert recover_lockfiles(root, backups) == [root / "dvc.lock"]


# ------------------------------------------------------------------------------------------
# The tiny study, end to end
# ------------------------------------------------------------------------------------------


def same_results(repo: Path, reference: Path) -> None:
    # Every output's hash and every dependency's, entries in dvc repro's order; and the files DVC
    # does not cache (metrics, plots, training curves) byte for byte. Each instance runs from
    # scratch in its own workspace, so this is also the test that the same params give the same
    # bits on the CPU.
    assert (repo / "dvc.lock").read_bytes() == (reference / "dvc.lock").read_bytes()
    assert files(repo, "metrics") == files(reference, "metrics")
    assert files(repo, "plots") == files(reference, "plots")
    assert status_clean(repo)
    assert stages_run(dvc(repo, "repro")) == set()


@pytest.mark.e2e
def test_tiny_study_in_parallel_equals_dvc_repro(tiny_study, tmp_path):
    repo = make_study(tmp_path / "study", TINY)
    # Fake GPU ids: each instance sees one (GANAUG_DEVICE=cpu from study_env keeps it on the CPU).
    # Two threads each by the environment, where the reference ran with none set: the stages
    # fix their threads from params.yaml, so the bits are the same.
    # And 16 workers on this small machine: any -j runs (Dask's per-worker memory limit once
    # paused them all at -j 40).
    proc = parallel(repo, "--gpus", "0,1", "--per-gpu", "8", "--threads", "2")
    assert "16 workers" in proc.stderr
    assert f"{len(lock(repo)['stages'])} ran on workers" in summary_line(proc)
    assert "CUDA_VISIBLE_DEVICES=0" in proc.stderr and "CUDA_VISIBLE_DEVICES=1" in proc.stderr
    # The stages' `python -m` commands started from the warm interpreter (ganaug.parallel.launcher)
    logs = repo / ".dvc" / "tmp" / "parallel" / "logs"
    assert launcher.WARM_NOTE in (logs / "train_gan@0.log").read_text()
    same_results(repo, tiny_study[0])


@pytest.mark.e2e
def test_tiny_study_killed_part_way_and_rerun_equals_dvc_repro(tiny_study, tmp_path):
    repo = make_study(tmp_path / "study", TINY)
    env = {**study_env(repo)}
    env["PYTHONPATH"] = os.pathsep.join([str(repo / "src"), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, "-m", "ganaug.parallel", "-j", "2"], cwd=repo,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    done = 0
    deadline = time.monotonic() + 600
    # Kill two thirds of the way (20 of the tiny study's 30 instances done, two running): the
    # GAN, the pool and most classifiers were made warm; the rest, and what the kill left out of
    # dvc.lock, are left to the cold rerun below (cold instances cost the most time here).
    for line in proc.stderr:
        done += " done " in line
        if done >= 20 or time.monotonic() > deadline:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert done >= 20
    recorded = len(lock(repo)["stages"]) if (repo / "dvc.lock").exists() else 0
    assert recorded < len(lock(tiny_study[0])["stages"])  # really part-way

    # The rerun starts every command cold, so both ways are held to dvc repro's results.
    parallel(repo, "-j", "2", GANAUG_WARM_START="0")
    logs = repo / ".dvc" / "tmp" / "parallel" / "logs"
    assert launcher.WARM_NOTE not in (logs / "report.log").read_text()
    same_results(repo, tiny_study[0])


def test_a_path_lock_table_a_kill_left_unreadable_is_removed(tmp_path):
    """DVC rewrites .dvc/tmp/rwlock in place around every stage; a SIGKILL mid-write leaves
    broken JSON and DVC then refuses every run. With the repository lock held it is stale."""
    from dvc.repo import Repo

    from ganaug.parallel.session import reset_broken_rwlock

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=tmp_path, check=True)
    rwlock = tmp_path / ".dvc/tmp/rwlock"
    rwlock.parent.mkdir(parents=True, exist_ok=True)
    with Repo(str(tmp_path)) as repo:
        rwlock.write_text('{"read": {}, "write": {}}')
        assert not reset_broken_rwlock(repo) and rwlock.exists()
        rwlock.write_text('{"read": {"data/x": [{"pid": 1')
        assert reset_broken_rwlock(repo) and not rwlock.exists()
        assert not reset_broken_rwlock(repo)  # nothing there: nothing to do


# ------------------------------------------------------------------------------------------
# What ran is what is recorded (warm start and dependency hashes)
# ------------------------------------------------------------------------------------------

LIB_STAGE = '''\
"""Writes the value its library module holds; ``mut`` also changes its data file while it runs,
``edit`` rewrites the library (as a user editing the code during a run would)."""
import os, sys
from pathlib import Path

import probe_lib

name, out = sys.argv[1:3]
if name == "edit":
    lib = Path(os.environ["PROBE_LIB"])
    lib.write_text(lib.read_text().replace("VALUE = 1", "VALUE = 22"))  # in place, as editors may
if name == "mut":
    with open(os.environ["PROBE_DATA"], "a") as f:
        f.write("touched while it ran\\n")
Path(out).parent.mkdir(parents=True, exist_ok=True)
Path(out).write_text(f"{name}: {probe_lib.VALUE}\\n")
'''


@pytest.fixture
def lib_repo(tmp_path) -> Path:
    """A git + DVC repo whose stages are ``python -m`` commands (so they start warm) importing a
    library module that the start server preloads (GANAUG_WARM_PRELOAD)."""
    repo = tmp_path / "lib repo"
    (repo / "lib").mkdir(parents=True)
    (repo / "lib" / "probe_lib.py").write_text("VALUE = 1\n")
    (repo / "probe_stage.py").write_text(LIB_STAGE)
    (repo / "data.txt").write_text("data\n")
    shutil.copy(TINY, repo / "params.yaml")  # the runner checks the project's params first
    code = ["probe_stage.py", "lib/probe_lib.py"]

    def stage(name: str, *deps: str) -> dict:
        return {"cmd": f"python -m probe_stage {name} out/{name}.txt",
                "deps": [*code, *deps], "outs": [f"out/{name}.txt"]}
    stages = {"first": stage("first"), "edit": stage("edit", "out/first.txt"),
              "after": stage("after", "out/edit.txt"), "mut": stage("mut", "data.txt"),
              "other": stage("other")}
    # The editing stage must not declare the library: it changes it while it runs (which the
    # coordinator would rightly refuse to record).
    stages["edit"]["deps"] = ["probe_stage.py", "out/first.txt"]
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    git(repo, "init", "-q", "-b", "main")
    dvc(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "lib pipeline")
    return repo


def lib_env(repo: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(repo / "lib"), "GANAUG_WARM_PRELOAD": "probe_lib",
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
            "PROBE_LIB": str(repo / "lib" / "probe_lib.py"),
            "PROBE_DATA": str(repo / "data.txt")}


def dep_md5(entry: dict, path: str) -> str:
    return next(d["md5"] for d in entry["deps"] if d["path"] == path)


def test_code_edited_during_a_run_is_the_code_that_runs_and_is_recorded(lib_repo):
    """The start server imported probe_lib (VALUE = 1) before ``edit`` changed it on disk: the
    instance after the edit must run VALUE = 22, the code DVC hashes and records for it."""
    import hashlib

    repo = lib_repo
    parallel(repo, "-j", "1", "after", **lib_env(repo))
    assert (repo / "out" / "first.txt").read_text() == "first: 1\n"
    assert (repo / "out" / "after.txt").read_text() == "after: 22\n"
    logs = repo / ".dvc" / "tmp" / "parallel" / "logs"
    assert launcher.WARM_NOTE in (logs / "after.log").read_text()  # warm, from a new server
    edited = hashlib.md5((repo / "lib" / "probe_lib.py").read_bytes()).hexdigest()
    stages = lock(repo)["stages"]
    assert dep_md5(stages["after"], "lib/probe_lib.py") == edited
    assert dep_md5(stages["first"], "lib/probe_lib.py") != edited  # it ran the old code
    # A cold run of the edited code (everything again, as a fresh interpreter runs it) makes
    # the same output and records the same code.
    reference = lock(repo)["stages"]["after"]
    parallel(repo, "-j", "1", "-f", "after", GANAUG_WARM_START="0", **lib_env(repo))
    assert (repo / "out" / "after.txt").read_text() == "after: 22\n"
    assert lock(repo)["stages"]["after"]["outs"] == reference["outs"]
    assert dep_md5(lock(repo)["stages"]["after"], "lib/probe_lib.py") == edited


def test_a_dependency_changed_while_its_instance_ran_is_not_recorded(lib_repo):
    repo = lib_repo
    proc = parallel(repo, "-j", "2", "mut", "other", check=False, **lib_env(repo))
    assert proc.returncode != 0
    assert "mut" in proc.stderr and "data.txt changed while it ran" in proc.stderr
    assert "Traceback" not in proc.stderr
    stages = lock(repo)["stages"]
    assert "mut" not in stages and not (repo / "out" / "mut.txt").exists()
    assert "other" in stages  # an independent instance goes on
    # Nothing changes any more: the rerun records it.
    (repo / "probe_stage.py").write_text(LIB_STAGE.replace('if name == "mut":',
                                                           'if name == "never":'))
    parallel(repo, "-j", "2", "mut", "other", **lib_env(repo))
    assert "mut" in lock(repo)["stages"]
    assert status_clean(repo, "mut", "other")


def test_local_workers_carry_no_memory_limit(probe_repo):
    """Dask's default limit is the machine's memory over the workers, measured against the whole
    coordinator process: with many workers every one paused and the run hung."""
    from ganaug.parallel.engine import start_engine

    with start_engine(EngineOptions(workers=40), probe_repo) as engine:
        workers = engine.client.scheduler_info()["workers"].values()
        assert len(workers) == 40 and all(not w["memory_limit"] for w in workers)
    line = summary_line(parallel(probe_repo, "-j", "40"))
    assert "6 ran on workers" in line


def test_an_unsupported_dvc_is_refused_in_one_line_before_any_work(monkeypatch, probe_repo):
    from ganaug.parallel import dvc_api

    dvc_api.check()  # the installed one is supported
    monkeypatch.setattr(dvc_api.metadata, "version", lambda name: "3.62.0")
    with pytest.raises(dvc_api.UnsupportedDvc, match=r"DVC 3\.62\.0 is installed.*>=3\.66"):
        dvc_api.check()
    monkeypatch.undo()
    # A supported version whose internals moved: named, with what the runner needs it for.
    monkeypatch.setattr("dvc.stage.run.run_stage", lambda stage, **kw: None)
    with pytest.raises(dvc_api.UnsupportedDvc, match="run_stage does not behave as used"):
        dvc_api.check()
    monkeypatch.undo()
    monkeypatch.delattr("dvc.dvcfile.ProjectFile.dump_stages")
    monkeypatch.delattr("dvc.dvcfile.FileMixin.dump_stages")
    with pytest.raises(dvc_api.UnsupportedDvc, match="ProjectFile.dump_stages is missing"):
        dvc_api.check()
    # From the command line: one line, exit 1, nothing started (a fake newer DVC on the path).
    fake = probe_repo.parent / "fake"
    (fake / "dvc-9.0.0.dist-info").mkdir(parents=True)
    (fake / "dvc-9.0.0.dist-info" / "METADATA").write_text("Name: dvc\nVersion: 9.0.0\n")
    proc = parallel(probe_repo, "-j", "2", check=False, PYTHONPATH=str(fake))
    assert proc.returncode == 1 and "UnsupportedDvc: DVC 9.0.0 is installed" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (probe_repo / "dvc.lock").exists()


def test_a_dvc_command_started_during_a_run_is_refused_and_the_run_goes_on(probe_repo):
    """The coordinator keeps DVC's repository lock for the whole run, also around each
    instance (DVC's own unlocked_repo would let it go there, and a `dvc` command taking it in
    that moment broke the run's re-lock)."""
    env = {**study_env(probe_repo), "PROBE_SLEEP": "2"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT / "src"), env.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, "-m", "ganaug.parallel", "-j", "2"], cwd=probe_repo,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if " done " in line:  # an instance recorded, others running or waiting
            break
    other = dvc(probe_repo, "status", check=False)
    assert other.returncode != 0 and "Unable to acquire lock" in other.stderr + other.stdout
    lines += proc.stderr.readlines()
    assert proc.wait(timeout=300) == 0, "".join(lines)
    assert "6 ran on workers" in "".join(lines)
    assert status_clean(probe_repo)


def test_params_other_than_the_ones_the_stages_read_are_refused(probe_repo, tmp_path):
    """The stages read the repository's params.yaml: checking another file would pass params
    that no stage uses (and run with the unchecked ones)."""
    other = tmp_path / "good.yaml"
    shutil.copy(probe_repo / "params.yaml", other)
    proc = parallel(probe_repo, "-j", "2", "--params", str(other), check=False)
    assert proc.returncode == 1 and "the stages read" in proc.stderr and "good.yaml" in proc.stderr
    assert not (probe_repo / "dvc.lock").exists()
    assert "6 ran on workers" in summary_line(parallel(probe_repo, "-j", "2", "--params",
                                                       "params.yaml"))


@pytest.mark.e2e
def test_a_gan_held_fixed_is_trained_once_across_workspaces(tmp_path):
    """Each instance runs in a workspace of its own, so the shared run's store must be the main
    workspace's: with the GAN held fixed, one train_gan and one train_scorer train, the other
    replicate's copy theirs, and the store outlives the workspaces."""
    params = read_yaml(TINY)
    params["study"]["vary"] = ["subset", "classifier"]
    repo = make_study(tmp_path / "study", params)
    parallel(repo, "-j", "2", "train_gan", "train_scorer")
    logs = repo / ".dvc" / "tmp" / "parallel" / "logs"
    for stage in ("train_gan", "train_scorer"):
        copied = ["the same run another replicate made" in (logs / f"{stage}@{s}.log").read_text()
                  for s in (0, 1)]
        assert sorted(copied) == [False, True], stage
    model = "models/gan/{}.pt"
    assert (repo / model.format(0)).read_bytes() == (repo / model.format(1)).read_bytes()
    assert len([p for p in (repo / ".checkpoints/shared").iterdir() if p.is_dir()]) == 2
    assert not (repo / ".dvc/tmp/parallel/ws").exists()
    assert status_clean(repo, "train_gan", "train_scorer")


def test_the_instance_most_others_wait_for_starts_first():
    """A GAN (its pool, scores, selections and mixes wait for it) before the real-only runs
    queued ahead of it; DVC's order among instances as many wait for."""
    from ganaug.parallel.coordinator import Coordinator
    from ganaug.parallel.session import Plan

    order = ["train_baseline@0", "train_baseline@1", "train_gan@0", "train_gan@1", "generate@0"]
    dependents = {"train_baseline@0": {"report"}, "train_baseline@1": {"report"},
                  "train_gan@0": {"generate@0", "score@0", "report"},
                  "train_gan@1": {"generate@1", "score@1", "report"},
                  "generate@0": {"score@0", "report"}}
    coordinator = object.__new__(Coordinator)
    coordinator.plan = Plan(order, {}, dependents)
    coordinator.queue = list(order)
    started = [coordinator._next() for _ in order]
    assert started == ["train_gan@0", "train_gan@1", "generate@0", "train_baseline@0",
                       "train_baseline@1"]
