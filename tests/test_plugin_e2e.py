"""A third-party plugin package, installed as a lab would install it, through the real ``dvc
repro``: tests/plugin_example (the README's "Extending" example: a GAN family, a strategy and a
dataset kind in one module, with its own pyproject.toml) is pip-installed, editable and offline,
into a temporary venv that sees this environment's packages, inside a tiny study's repository;
the tiny preset then runs on it, and an edit of the plugin's code makes `dvc status` list exactly
the stages that run its registries."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch
import yaml
from e2e import REPO_ROOT, make_study, read_yaml, stages_run, study_env

EXAMPLE = REPO_ROOT / "tests" / "plugin_example"

pytestmark = pytest.mark.e2e


def plugin_venv(root: Path) -> Path:
    """A venv whose site-packages also holds this environment's (torch, dvc, ...); its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True).stdout
    ours = sysconfig.get_paths()["purelib"]
    # addsitedir, not a bare path: this environment's own .pth files (editable installs) apply.
    (Path(site.strip()) / "parent-env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return python


def study_params() -> dict:
    """The tiny preset with the plugin's family, strategy and dataset kind."""
    p = copy.deepcopy(read_yaml(REPO_ROOT / "presets" / "tiny.yaml"))
    gan = {k: v for k, v in p["gan"].items() if k != p["gan"]["arch"]}
    p["gan"] = {**gan, "arch": "tiny", "tiny": {"z_dim": 8, "hidden": 32}}
    p["study"].update(strategies=["every_nth"], targets=["mirrored"])  # the other keys as preset
    p["select"]["every_nth"] = {"step": 2}
    p["datasets"] = {"digits": p["datasets"]["digits"], "mirrored": {"kind": "mirrored_digits"}}
    p["refine"]["rounds"] = {}
    p["scorer"]["epochs"] = 2  # the scorer is not what is tested
    return p


def kinds(stages: set[str]) -> set[str]:
    """Stage names without their matrix or foreach instance (``select@random-1`` -> ``select``)."""
    return {s.split("@")[0] for s in stages}


def changed(proc: subprocess.CompletedProcess) -> set[str]:
    """The kinds of the stages `dvc status` lists as changed."""
    return kinds(set(re.findall(r"^(\S+):$", proc.stdout, flags=re.MULTILINE)))


def test_a_plugin_package_runs_through_dvc_repro(tmp_path):
    repo = make_study(tmp_path / "study", study_params())
    plugin = repo / "plugins" / "ganaug-tiny"  # the lab's package, kept in the study's repo
    shutil.copytree(EXAMPLE, plugin, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    python = plugin_venv(tmp_path / "venv")
    env = {**study_env(repo), "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}"}

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(python), *args], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0, f"{args}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        return proc

    run("-m", "pip", "install", "--quiet", "--no-deps",
        "--no-build-isolation", "--no-index", "-e", str(plugin))
    # The code-deps tool lists the plugin's module among the code stage's deps.
    run("-m", "ganaug.codestage", "--update", "dvc.yaml")
    line = "plugins/ganaug-tiny/tinygan.py  # plugin"
    assert (repo / "dvc.yaml").read_text().count(line) == 1
    assert "plugins/ganaug-tiny/tinygan.py" in str(
        yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]["code"]["deps"])

    ran = stages_run(run("-m", "dvc", "repro", "select", "prepare@mirrored"))
    assert {"check_params", "prepare", "train_scorer", "train_gan", "generate", "score",
            "select"} <= kinds(ran)
    assert "prepare@mirrored" in ran and any(s.startswith("select@every_nth-") for s in ran)
    (checkpoint,) = [*repo.glob("models/gan.pt"), *repo.glob("models/gan/*.pt")][:1]
    gan = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert gan["arch"] == "tiny" and gan["config"]["tiny"] == {"z_dim": 8, "hidden": 32}
    assert list(repo.glob("data/selections/every_nth-*.npy"))
    assert (repo / "data/prepared/mirrored.npz").is_file()
    # The stages whose code fingerprint holds the plugin's module: those that look up one of
    # its three registries (all in one module here), not the scorer's or the report's.
    modules = {json.loads(f.read_text())["module"] for f in (repo / "data/code").glob("*.json")
               if "tinygan.py" in json.loads(f.read_text())["files"]}
    runs_it = {name for name, stage in yaml.safe_load((repo / "dvc.yaml").read_text())[
        "stages"].items() if any(f"python -m {m} " in str(stage) for m in modules)}
    assert {"check_params", "prepare", "train_gan", "generate", "score", "select"} <= runs_it
    assert "train_scorer" not in runs_it and "report" not in runs_it
    status = ("-m", "dvc", "status", "--with-deps", "select", "prepare@mirrored")
    assert changed(run(*status)) == set()

    # An edit of the plugin's code: the code stage sees it, and then the stages that run it.
    module = plugin / "tinygan.py"
    module.write_text(module.read_text() + "\n# an edit\n")
    assert changed(run(*status)) == {"code"}
    run("-m", "dvc", "repro", "code")
    now = changed(run(*status))
    assert {"check_params", "prepare", "train_gan", "generate", "score", "select"} <= now
    assert now <= runs_it
