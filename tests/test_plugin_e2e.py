"""A third-party plugin package, installed as a lab would install it, through the real ``dvc
repro``: tests/plugin_example (the README's "Extending" example: a GAN family, a strategy and a
dataset kind in one module, with its own pyproject.toml) is pip-installed, editable and offline,
into a temporary venv that sees this environment's packages, inside a tiny study's repository;
the tiny preset then runs on it, and an edit of the plugin's code makes `dvc status` list exactly
the stages that run its registries."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import torch
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
    p["study"].update(strategies=["every_nth"], targets=["mirrored"])
    p["select"]["every_nth"] = {"step": 2}
    p["datasets"] = {"digits": p["datasets"]["digits"], "mirrored": {"kind": "mirrored_digits"}}
    p["refine"]["rounds"] = {}
    return p


def changed(proc: subprocess.CompletedProcess) -> set[str]:
    return {m.split("@")[0] for m in re.findall(r"^(\S+):$", proc.stdout, flags=re.MULTILINE)}


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
    # The code-deps tool lists the plugin's module for the stages that run its registries.
    run("-m", "ganaug.codedeps", "--update", "dvc.yaml")
    dvc_yaml = (repo / "dvc.yaml").read_text()
    assert dvc_yaml.count("- plugins/ganaug-tiny/tinygan.py  # plugin") >= 5

    ran = stages_run(run("-m", "dvc", "repro", "select", "prepare@mirrored"))
    assert {"check_params", "prepare@digits", "prepare@mirrored", "train_scorer", "train_gan",
            "generate", "score", "select@every_nth-1"} == ran
    gan = torch.load(repo / "models/gan.pt", map_location="cpu", weights_only=False)
    assert gan["arch"] == "tiny" and gan["config"]["tiny"] == {"z_dim": 8, "hidden": 32}
    assert (repo / "data/selections/every_nth-1.npy").is_file()
    assert (repo / "data/prepared/mirrored.npz").is_file()
    status = ("-m", "dvc", "status", "--with-deps", "select", "prepare@mirrored")
    assert changed(run(*status)) == set()

    # An edit of the plugin's code: the stages that run any of its three registries (all in one
    # module here), not the scorer's.
    module = plugin / "tinygan.py"
    module.write_text(module.read_text() + "\n# an edit\n")
    assert changed(run(*status)) == {"check_params", "prepare", "train_gan", "generate", "score",
                                     "select"}
