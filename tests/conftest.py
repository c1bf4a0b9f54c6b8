"""Shared fixtures: the tiny study (presets/tiny.yaml) reproduced once per test session with the
real ``dvc`` CLI in a temporary git repo, and cheap copies of it for tests that change params."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from e2e import REPO_ROOT, THREAD_VARS, clone_study, dvc, git, make_study, stages_run
from filelock import FileLock

# Tests run on the CPU, whatever the machine has.
os.environ.setdefault("GANAUG_DEVICE", "cpu")

TINY = REPO_ROOT / "presets" / "tiny.yaml"


STUDY_FIXTURES = {"tiny_study", "study_copy"}  # fixturenames holds the whole closure


def pytest_collection_modifyitems(session, config, items):
    """Long tests first (those that run the tiny study through dvc), so that two workers do not
    end with one of them alone on a long test; pytest's order within each group is kept."""
    def slow(item) -> bool:
        return bool(STUDY_FIXTURES & set(getattr(item, "fixturenames", ()))) \
            or item.get_closest_marker("e2e") is not None
    items.sort(key=lambda item: not slow(item))


@pytest.fixture
def one_thread():
    """Tiny networks run fastest on one thread, and do not fight parallel tests for the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def tiny_study(tmp_path_factory, worker_id):
    """The tiny study, reproduced once and committed: ``(repo, stages run by the first repro)``.

    Once per test session, not once per xdist worker: the first worker that needs it builds it
    (3 to 4 minutes of a 2-core machine) under a file lock in the session's shared temporary
    folder, and the others wait for it or find it done. Tests treat it as read-only (``dvc``
    commands run in copies: ``study_copy``, ``clone_study``)."""
    if worker_id == "master":  # no xdist: this session's own folder
        return build_tiny_study(tmp_path_factory.mktemp("tiny"))
    shared = tmp_path_factory.getbasetemp().parent  # one per `pytest` run, shared by workers
    with FileLock(shared / "tiny-study.lock"):
        return build_tiny_study(shared / "tiny")


def build_tiny_study(root: Path) -> tuple[Path, set[str]]:
    """The study under ``root/study``, built unless ``root/ran.json`` says it was."""
    done = root / "ran.json"
    if done.is_file():
        return root / "study", set(json.loads(done.read_text()))
    shutil.rmtree(root, ignore_errors=True)  # a build that failed part-way: start again
    repo = make_study(root / "study", TINY)
    # As a user runs it: no thread variables (every core); the stages fix their own threads
    # from params.yaml, and the parallel tests compare their runs with this one byte for byte.
    ran = stages_run(dvc(repo, "repro", unset=THREAD_VARS))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "tiny study results")
    done.write_text(json.dumps(sorted(ran)))
    return repo, ran


@pytest.fixture
def study_copy(tiny_study, tmp_path):
    return clone_study(tiny_study[0], tmp_path / "copy")


