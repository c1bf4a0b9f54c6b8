"""Helpers for end-to-end tests: a copy of the project in a temporary git repo, driven by the real
``dvc`` CLI, as a researcher would drive it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]

# What a fresh clone of the project holds that the pipeline needs (outputs are not copied).
PROJECT_FILES = ("dvc.yaml", "stages", "src", "data/raw", "data/refine/base",
                 "metrics/refine/.gitkeep", "models/external/.gitkeep", ".dvcignore",
                 ".gitignore", ".dvc/config", ".dvc/.gitignore", ".dvc/plots")

RUNNING = re.compile(r"^Running stage '([^']+)'", re.MULTILINE)


def study_env(repo: Path) -> dict[str, str]:
    """Environment for commands in ``repo``: its own ``src`` first on the path, CPU, no telemetry."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(repo / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env["GANAUG_DEVICE"] = "cpu"
    # The tiny study's networks run faster on one thread, and tests may run two at a time.
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"
    env["DVC_NO_ANALYTICS"] = "1"
    env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = "ganaug tests"
    env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = "tests@example.invalid"
    return env


def run(repo: Path, *args: str, check: bool = True, timeout: float = 900,
        unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run a command in ``repo`` (with the variables in ``unset`` left out of its environment);
    on an unexpected exit status, fail with its output."""
    env = {k: v for k, v in study_env(repo).items() if k not in unset}
    proc = subprocess.run(list(args), cwd=repo, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}"
            f"\n--- stderr\n{proc.stderr[-6000:]}"
        )
    return proc


def dvc(repo: Path, *args: str, check: bool = True, unset: tuple[str, ...] = ()
        ) -> subprocess.CompletedProcess:
    return run(repo, sys.executable, "-m", "dvc", *args, check=check, unset=unset)


# The variables that size thread pools: a stage fixes its own from params.yaml (threads).
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return run(repo, "git", *args)


def stages_run(proc: subprocess.CompletedProcess) -> set[str]:
    """Names of the stages a ``dvc repro`` ran (from its 'Running stage' lines)."""
    return set(RUNNING.findall(proc.stdout + proc.stderr))


def make_study(dest: Path, params: Path | dict[str, Any]) -> Path:
    """A git + DVC repo at ``dest`` holding the project's pipeline and the given params."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        src = REPO_ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    write_params(dest, params if isinstance(params, dict) else read_yaml(params))
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "study")
    return dest


def read_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text())


def write_params(repo: Path, params: dict[str, Any]) -> None:
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def edit_params(repo: Path, **changes: Any) -> None:
    """``edit_params(repo, **{"study.ratios": [1, 2]})`` sets dotted keys in params.yaml."""
    params = read_yaml(repo / "params.yaml")
    for dotted, value in changes.items():
        node = params
        *parents, last = dotted.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    write_params(repo, params)


def clone_study(src: Path, dest: Path) -> Path:
    """A copy of a study repo, outputs, git history and DVC cache included."""
    shutil.copytree(src, dest, symlinks=True)
    shutil.rmtree(dest / ".dvc" / "tmp", ignore_errors=True)  # locks and state of the original
    return dest
