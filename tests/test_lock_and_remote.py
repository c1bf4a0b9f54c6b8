"""``dvc.lock`` after a crash, stale lock entries, and a corrupted object in a remote, with the
real CLI on copies of the tiny study."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from e2e import dvc, edit_params, git, read_yaml, run, stages_run

pytestmark = pytest.mark.e2e


def lock_tool(repo: Path, *args: str, check: bool = True):
    return run(repo, sys.executable, "-m", "ganaug.lock", *args, check=check)


def test_a_truncated_lock_is_recovered_without_retraining(study_copy):
    # Some stages run after the last commit; then a kill truncates dvc.lock mid-write.
    edit_params(study_copy, **{"select.random.seed": 7})
    ran = stages_run(dvc(study_copy, "repro"))
    assert "train@random-1-0" in ran
    after = {p: (study_copy / p).read_bytes() for p in (
        "models/classifiers/random-1-0.pt", "metrics/eval/random-1-0.json",
        "data/selections/random-1-0.npy")}
    lock = study_copy / "dvc.lock"
    text = lock.read_text()
    lock.write_text(text[: len(text) // 2] + "\n  bad: [unclosed\n")  # cut mid-entry

    broken = dvc(study_copy, "status", check=False)
    assert broken.returncode != 0
    checked = lock_tool(study_copy, "check", check=False)
    assert checked.returncode == 1 and "ganaug.lock recover" in checked.stderr

    lock_tool(study_copy, "recover")
    assert (study_copy / "dvc.lock.broken").exists()
    proc = dvc(study_copy, "repro")
    # Training is restored from the run-cache; quick stages whose outputs are plain git-tracked
    # files (select, evaluate, report: no run-cache entry) run again, to the same bytes.
    assert not any(name.startswith("train") for name in stages_run(proc)), proc.stdout
    assert "Stage 'train@random-1-0' is cached - skipping run" in proc.stdout + proc.stderr
    assert "up to date" in dvc(study_copy, "status").stdout
    for path, content in after.items():
        assert (study_copy / path).read_bytes() == content, path


def test_stale_entries_of_a_smaller_grid_are_pruned(study_copy):
    params = read_yaml(study_copy / "params.yaml")
    keep = params["refine"]["strategy"]  # so the refinement rounds need not run again
    gone = next(s for s in params["study"]["strategies"] if s != keep)
    edit_params(study_copy, **{"study.strategies": [keep]})
    assert stages_run(dvc(study_copy, "repro")) == {"check_params", "report"}
    stages = yaml.safe_load((study_copy / "dvc.lock").read_text())["stages"]
    assert any(gone in name for name in stages)  # DVC keeps them
    lock_tool(study_copy, "prune")
    stages = yaml.safe_load((study_copy / "dvc.lock").read_text())["stages"]
    assert not any(f"@{gone}-" in name for name in stages), sorted(stages)
    assert "up to date" in dvc(study_copy, "status").stdout
    assert stages_run(dvc(study_copy, "repro")) == set()


def test_a_corrupted_remote_object_is_detected_with_verify(study_copy, tmp_path):
    remote = tmp_path / "remote"
    dvc(study_copy, "remote", "add", "--default", "lab", str(remote))
    dvc(study_copy, "remote", "modify", "lab", "verify", "true")
    git(study_copy, "commit", "-q", "-am", "share with verify")
    dvc(study_copy, "push")
    # Flip one byte of the selection's object in the remote: same size, other content.
    md5 = yaml.safe_load((study_copy / "dvc.lock").read_text())["stages"]["select@random-1-0"][
        "outs"][0]["md5"]
    obj = remote / "files" / "md5" / md5[:2] / md5[2:]
    data = bytearray(obj.read_bytes())
    data[-1] ^= 0xFF
    obj.chmod(0o644)
    obj.write_bytes(bytes(data))

    clone = tmp_path / "colleague"
    git(study_copy.parent, "clone", "-q", str(study_copy), str(clone))
    proc = dvc(clone, "pull", check=False)
    assert proc.returncode != 0
    assert "data/selections/random-1-0.npy" in proc.stdout + proc.stderr
    assert not (clone / "data/selections/random-1-0.npy").exists()  # never the wrong selection
