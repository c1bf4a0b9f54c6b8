"""The stage entry points: dvc.yaml and the code agree on params and paths, and bad input gets a
clear error, a non-zero exit and no output."""

from __future__ import annotations

import importlib
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from e2e import REPO_ROOT, study_env

from ganaug.data import Prepared, save_prepared


@pytest.fixture(scope="module")
def dvc_stages():
    """Every stage instance of the repo's dvc.yaml, as DVC resolves it with params.yaml, but the
    code stage (``ganaug.codedeps``, no params; tests/test_code_deps.py checks it)."""
    from dvc.repo import Repo

    with Repo(str(REPO_ROOT)) as repo:
        return [(st.addressing, st.cmd, [k for p in st.params for k in p.params],
                 [str(Path(d.def_path)) for d in st.deps], [str(Path(o.def_path)) for o in st.outs])
                for st in repo.index.stages if st.addressing != "code"]


def parse_cmd(cmd: str):
    argv = shlex.split(cmd)
    assert argv[:2] == ["python", "-m"] and argv[2].startswith("stages."), cmd
    module = importlib.import_module(argv[2])
    return module, module.build_parser().parse_args(argv[3:])


def test_every_stage_declares_exactly_the_params_it_reads(dvc_stages):
    for name, cmd, params, _, _ in dvc_stages:
        module, args = parse_cmd(cmd)
        assert sorted(module.declared_params(args)) == sorted(params), name


def test_dvc_yaml_owns_every_path(dvc_stages):
    """Each path a stage is given is one of its deps or outs (or inside one); resume files are
    deliberately untracked scratch space."""
    for name, cmd, _, deps, outs in dvc_stages:
        argv = shlex.split(cmd)
        declared = deps + outs
        for flag, value in zip(argv, argv[1:], strict=False):
            if not flag.startswith("--") or flag in ("--resume", "--params"):
                continue
            if "/" not in value:
                continue  # a name or a number, not a path
            assert any(value == d or value.startswith(d.rstrip("/") + "/") for d in declared), (
                f"{name}: {flag} {value} is not a declared dep or out")


def test_every_stage_instance_has_a_file_dependency(dvc_stages):
    for name, _, _, deps, _ in dvc_stages:
        assert any(not d.startswith(("stages/", "src/")) for d in deps), name


# ------------------------------------------------------------------------------------------
# Bad input through the real entry points
# ------------------------------------------------------------------------------------------


def run_stage(tmp_path: Path, module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"stages.{module}", *args], cwd=REPO_ROOT,
                          env=study_env(REPO_ROOT), capture_output=True, text=True, timeout=300)


@pytest.fixture
def params_file(tmp_path):
    """A copy of the tiny preset that a test may break."""
    params = yaml.safe_load((REPO_ROOT / "presets/tiny.yaml").read_text())

    def write(**changes) -> Path:
        for dotted, value in changes.items():
            node = params
            *parents, last = dotted.split(".")
            for part in parents:
                node = node[part]
            node[last] = value
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(params))
        return path

    return write


@pytest.fixture
def scored(tmp_path):
    """A prepared source (3 classes, 4 train images each) and a score directory for 12 images."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 1, 8, 8), dtype=np.uint8)
    y = np.repeat(np.arange(3), 4)
    prepared = Prepared(splits={"train": (x, y), "val": (x, y), "test": (x, y)},
                        classes=["a", "b", "c"], meta={})
    save_prepared(tmp_path / "src.npz", prepared)
    scores = tmp_path / "scores"
    scores.mkdir()
    pd.DataFrame({"index": np.arange(12), "label": y, "confidence": rng.random(12),
                  "predicted": y, "predicted_prob": rng.random(12),
                  "realism": rng.normal(size=12)}).to_csv(scores / "scores.csv", index=False)
    np.savez(scores / "features.npz", pool=rng.normal(size=(12, 4)),
             real=rng.normal(size=(12, 4)), real_labels=y)
    pool = tmp_path / "pool"
    pool.mkdir()
    np.save(pool / "images.npy", rng.integers(0, 256, (12, 1, 8, 8), dtype=np.uint8))
    np.save(pool / "labels.npy", y.astype(np.int64))
    (pool / "meta.json").write_text("{}")
    return tmp_path


def select_args(dirs: Path, strategy: str, ratio: str, params: Path) -> list[str]:
    return ["--strategy", strategy, "--ratio", ratio, "--scores", str(dirs / "scores"),
            "--pool", str(dirs / "pool"), "--data", str(dirs / "src.npz"),
            "--out", str(dirs / "out/sel.npy"),
            "--stats", str(dirs / "out/stats.json"), "--params", str(params)]


def assert_clean_failure(proc, *needles: str, absent: Path) -> None:
    assert proc.returncode != 0
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert not absent.exists() or not any(absent.iterdir()), list(absent.iterdir())


def test_select_rejects_an_unknown_strategy(scored, params_file):
    proc = run_stage(scored, "select", *select_args(scored, "bogus", "1", params_file()))
    assert_clean_failure(proc, "'bogus'", "random", absent=scored / "out")


def test_select_rejects_a_negative_ratio(scored, params_file):
    proc = run_stage(scored, "select", *select_args(scored, "random", "-1", params_file()))
    assert_clean_failure(proc, "ratio", "-1", absent=scored / "out")


def test_select_rejects_a_k_larger_than_the_pool(scored, params_file):
    # 4 real images per class at ratio 2 want K=8 per class; the pool holds 4 per class.
    proc = run_stage(scored, "select", *select_args(scored, "random", "2", params_file()))
    assert_clean_failure(proc, "K=8", "holds 4", "generate.max_ratio", absent=scored / "out")


def test_select_refuses_an_empty_selection(scored, params_file):
    params = params_file(**{"select.threshold.min_confidence": 1.0})
    proc = run_stage(scored, "select", *select_args(scored, "threshold", "0.5", params))
    assert_clean_failure(proc, "no pool image passed", "select.threshold",
                         absent=scored / "out")


@pytest.mark.parametrize(("key", "value", "needle"), [
    ("gan.colour", "blue", "gan.colour: unknown key"),
    ("gan.lr_g", "fast", "gan.lr_g: Input should be a valid number"),
    ("gan.arch", "stylegan9", "unknown GAN family 'stylegan9'"),
])
def test_train_gan_rejects_bad_params(scored, params_file, key, value, needle):
    out = scored / "out"
    proc = run_stage(scored, "train_gan", "--data", str(scored / "src.npz"),
                     "--out", str(out / "gan.pt"), "--plots", str(out / "plots"),
                     "--params", str(params_file(**{key: value})))
    assert_clean_failure(proc, needle, absent=out)


def test_a_missing_dataset_file_is_named(scored, params_file):
    out = scored / "out"
    proc = run_stage(scored, "train", "--real", str(scored / "nowhere.npz"), "--replicate", "0",
                     "--out", str(out / "model.pt"), "--params", str(params_file()))
    assert_clean_failure(proc, "nowhere.npz: file not found", absent=out)


def test_an_unknown_dataset_kind_is_named(scored, params_file):
    out = scored / "out"
    params = params_file(**{"datasets.typeset": {"kind": "papyrus"}})
    proc = run_stage(scored, "prepare", "--name", "typeset", "--out", str(out / "t.npz"),
                     "--params", str(params))
    assert_clean_failure(proc, "datasets.typeset.kind", "'papyrus'", "sklearn_digits",
                         absent=out)


def test_no_output_dvc_caches_is_tracked_by_git():
    """A cached output committed to git makes `dvc repro` of a fresh clone stop at once ("output
    is already tracked by SCM"): every file git tracks lies outside every cached output."""
    spec = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    patterns = []
    for stage in spec["stages"].values():
        for out in stage.get("outs", []):
            path, opts = next(iter(out.items())) if isinstance(out, dict) else (out, None)
            if (opts or {}).get("cache", True):  # a matrix stage's ${item.x} matches one name
                parts = re.split(r"\$\{[^}]+\}", path.rstrip("/"))
                patterns.append(re.compile("[^/]+".join(map(re.escape, parts)) + "(/.*)?"))
    clashes = [t for t in tracked if any(p.fullmatch(t) for p in patterns)]
    assert patterns and clashes == [], f"tracked by git but cached by DVC: {clashes}"
