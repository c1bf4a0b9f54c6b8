"""A stage killed with SIGKILL mid-run resumes from its checkpoint on the next ``dvc repro`` and
reaches the same final weights as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from e2e import clone_study, dvc, edit_params, stages_run, study_env

pytestmark = pytest.mark.e2e


def kill_when(repo: Path, stage: str, ready: Path, timeout: float = 300) -> None:
    """Start ``dvc repro -s <stage>`` and SIGKILL it (DVC and the stage) once ``ready`` exists."""
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "-s", stage], cwd=repo,
                            env=study_env(repo), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + timeout
    try:
        while not ready.exists():
            assert proc.poll() is None, f"{stage} finished before it could be killed"
            assert time.monotonic() < deadline, f"{ready} never appeared"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def weights(path: Path, key: str) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)[key]


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.fixture
def two_copies(tiny_study, tmp_path):
    return (clone_study(tiny_study[0], tmp_path / "straight"),
            clone_study(tiny_study[0], tmp_path / "killed"))


def test_train_gan_killed_resumes_to_the_same_weights(two_copies):
    changes = {"gan.steps": 200, "gan.checkpoint_every": 10, "gan.log_every": 10}
    for repo in two_copies:
        edit_params(repo, **changes)
    straight, killed = two_copies
    dvc(straight, "repro", "-s", "train_gan@0")

    kill_when(killed, "train_gan@0", killed / ".checkpoints/train_gan-0.pt")
    assert not (killed / "models/gan/0.pt").exists()  # nothing DVC could cache as finished
    proc = dvc(killed, "repro", "-s", "train_gan@0")
    assert "resumed GAN training" in proc.stderr
    assert not (killed / ".checkpoints/train_gan-0.pt").exists()  # cleaned up once done
    for key in ("generator", "discriminator"):
        assert_same_weights(weights(straight / "models/gan/0.pt", key),
                            weights(killed / "models/gan/0.pt", key))


def test_train_killed_resumes_to_the_same_weights(two_copies):
    changes = {"classifier.epochs": 30, "classifier.patience": 30,
               "classifier.checkpoint_every": 2}
    for repo in two_copies:
        edit_params(repo, **changes)
    straight, killed = two_copies
    stage, out = "train@random-1-0", "models/classifiers/random-1-0.pt"
    dvc(straight, "repro", "-s", stage)

    kill_when(killed, stage, killed / ".checkpoints/train-random-1-0.pt")
    assert not (killed / out).exists()
    proc = dvc(killed, "repro", "-s", stage)
    assert "resuming from" in proc.stderr
    assert_same_weights(weights(straight / out, "state_dict"), weights(killed / out, "state_dict"))
    # And the rest of the study picks the resumed model up like any other.
    # (check_params too: the params changed, and every stage depends on it)
    assert stages_run(dvc(killed, "repro", "evaluate@random-1-0")) == {"check_params",
                                                                         "evaluate@random-1-0"}
