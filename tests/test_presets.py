"""Every params preset validates, and runs end to end on a tiny setting.

"Tiny" keeps each preset's structure (its strategies, datasets kinds, GAN family, refinement
rounds, feature spaces) and shrinks sizes: a few images per class in small files written here in
the preset's formats, one ratio and one seed, a couple of steps. The stage graph is the one DVC
resolves from the preset; its stages run in-process, in DVC's order, so each preset costs seconds
rather than the start-up time of dozens of processes (the real CLI is exercised by
test_pipeline.py). The FID Inception network is replaced by a tiny stand-in, and its weights file
is fetched from a local file:// URL.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib
import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from e2e import REPO_ROOT, make_study
from PIL import Image

from ganaug.gan import FAMILIES
from ganaug.validate import validate_params

PRESETS = sorted(p for p in (REPO_ROOT / "presets").glob("*.yaml"))
BENCHMARK_PARAMS = sorted(p for p in (REPO_ROOT / "benchmarks").glob("*.yaml"))
FER_CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]


@pytest.mark.parametrize("preset", PRESETS + BENCHMARK_PARAMS, ids=lambda p: p.stem)
def test_preset_validates(preset):
    """Every key of every preset, as the check_params stage validates it."""
    validate_params(yaml.safe_load(preset.read_text()), str(preset))


# ------------------------------------------------------------------------------------------
# Tiny data in each preset's formats
# ------------------------------------------------------------------------------------------


def write_fer_csv(path: Path, rng: np.random.Generator) -> None:
    rows = ["emotion,pixels,Usage"]
    for label in range(7):
        for usage, n in (("Training", 8), ("PublicTest", 3), ("PrivateTest", 3)):
            for _ in range(n):
                pixels = rng.integers(0, 256, 48 * 48)
                pixels[label * 6: label * 6 + 6] = 255  # something to learn
                rows.append(f"{label},{' '.join(map(str, pixels))},{usage}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")


# The folders of the common CK+48 export, and its file names (subject_sequence_frame).
CK48_FOLDERS = ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]


def write_image_folder(root: Path, classes: list[str], rng: np.random.Generator) -> None:
    for k, c in enumerate(classes):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(
                root / c / f"S{10 * k + i:03d}_001_{i:08d}.png")


def tiny_dataset(entry: dict, study: Path, rng: np.random.Generator) -> dict:
    """Write small files for a dataset entry; returns the entry to use (same kind where the kind
    reads local files; torchvision, which would download, becomes an npz of its shape)."""
    kind = entry["kind"]
    if kind == "fer2013_csv":
        write_fer_csv(study / entry["path"], rng)
        return entry
    if kind == "image_folder":
        write_image_folder(study / entry["path"], CK48_FOLDERS, rng)
        return entry
    if kind == "torchvision":
        assert entry["name"] == "CIFAR10", entry
        x = rng.integers(0, 256, (10 * 14, 32, 32, 3), dtype=np.uint8)
        y = np.repeat(np.arange(10), 14)
        split = np.tile(np.array(["train"] * 8 + ["test"] * 6), 10)
        path = study / "data/raw/cifar10.npz"
        np.savez(path, x=x, y=y, split=split, classes=np.array(CIFAR_CLASSES))
        return {"kind": "npz", "path": "data/raw/cifar10.npz",
                "parts": [{"x": "x", "y": "y", "split_by": "split",
                           "split_map": {"train": "train", "test": "test"}}]}
    return entry  # bundled kinds ship their data


def shrink(params: dict) -> dict:
    p = copy.deepcopy(params)
    p["device"] = "cpu"
    st = p["study"]
    # The tiny files hold 7 or 8 training images per class: a learning curve at 2 and 4 of them.
    st.update(ratios=st["ratios"][:1], seeds=[0, 1], synthetic_only_ratio=st["ratios"][0],
              real_sizes=[2, 4])
    p["data"].update(real_per_class=4, real_fraction=None, val_per_class=3)
    for section in ("scorer", "classifier"):
        p[section].update(width=4, epochs=1, batch_size=8, patience=1, checkpoint_every=1,
                          pretrained=None, min_epochs=min(p[section].get("min_epochs", 0), 1))
    g = p["gan"]
    g.update(width=4, steps=2, batch_size=8, checkpoint_every=1, log_every=1,
             warmup_steps=min(g["warmup_steps"], 1))
    knobs = {f.name for f in dataclasses.fields(FAMILIES.get(g["arch"]).config)}
    g[g["arch"]] = {**(g.get(g["arch"]) or {}), **({"z_dim": 8} if "z_dim" in knobs else {})}
    p["generate"].update(pool_multiplier=1.0, test_per_class=min(p["generate"]["test_per_class"], 2),
                         batch_size=64)
    p["score"].update(batch_size=64, kid_subset_size=2, kid_subsets=2, grid_per_class=1,
                      fid_per_class=None)
    p["refine"]["steps"] = 1
    p["select"]["threshold"]["min_confidence"] = 0.0  # an untrained scorer is never confident
    if "kcenter" in p["select"]:
        p["select"]["kcenter"]["min_confidence"] = 0.0
    if "rl" in p["select"]:
        p["select"]["rl"].update(episodes=2, candidates_per_episode=4, child_steps=1, batch_size=8,
                                 child_width=2, policy_width=2)
    return p


class StandInInception(torch.nn.Module):
    """What the score stage gets instead of the 95 MB FID network: (N, 3, H, W) in [0, 1] ->
    (N, 8) features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3)

    def forward(self, x):
        return [self.conv(x).mean(dim=(2, 3))]


def local_fetch(p: dict, tmp: Path) -> None:
    """Point every fetch entry at a small local file with its real digest."""
    for name in p.get("fetch", {}):
        f = tmp / f"{name}-weights.bin"
        f.write_bytes(b"stand-in weights for " + name.encode())
        p["fetch"][name] = {"url": f.as_uri(), "sha256": hashlib.sha256(f.read_bytes()).hexdigest()}


def run_in_process(study: Path, monkeypatch) -> list[str]:
    """Run every stage DVC resolves for ``study``, dependencies first, in this process."""
    import networkx as nx
    from dvc.repo import Repo

    monkeypatch.chdir(study)
    with Repo(str(study)) as repo:
        graph = repo.index.graph
        order = [s for s in reversed(list(nx.topological_sort(graph)))]
        commands = [(s.addressing, s.cmd) for s in order]
    for _, cmd in commands:
        argv = shlex.split(cmd)
        importlib.import_module(argv[2]).main(argv[3:])
    return [name for name, _ in commands]


@pytest.mark.parametrize("preset", [p for p in PRESETS if p.stem != "tiny"], ids=lambda p: p.stem)
def test_preset_runs_end_to_end_on_a_tiny_setting(preset, tmp_path, monkeypatch, one_thread):
    import ganaug.metrics.inception

    rng = np.random.default_rng(0)
    params = shrink(yaml.safe_load(preset.read_text()))
    local_fetch(params, tmp_path)
    study = make_study(tmp_path / "study", params)
    params["datasets"] = {name: tiny_dataset(entry, study, rng)
                          for name, entry in params["datasets"].items()}
    (study / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.setattr(ganaug.metrics.inception, "load_fid_inception",
                        lambda path, device: StandInInception().to(device).eval())

    ran = run_in_process(study, monkeypatch)

    assert ran[-1] == "report"
    summary = json.loads((study / "metrics/summary.json").read_text())
    source = params["data"]["source"]
    for strategy in params["study"]["strategies"]:
        ratio = f"{params['study']['ratios'][0]:g}"
        assert summary["results"][strategy][ratio][source]["accuracy"]["n"] == 2
    for name in params["refine"]["rounds"]:
        assert f"refine@{name}" in ran and name in summary["results"]["refine"]
    assert {"train_real@2-0", "train_real@4-0", "evaluate_real@4-0"} <= set(ran)
    assert list(summary["learning_curve"][source]) == ["2", "4"]
    score = json.loads((study / "metrics/score/0.json").read_text())
    if "inception" in params["score"]["features"]:
        assert "fetch@inception" in ran
        inception = score["other_feature_spaces"]["inception"]["overall"]
        assert inception["resize"].startswith("bilinear") and inception["fid"] is not None
    classes = json.loads((study / "metrics/eval/none-0-0.json").read_text())["classes"]
    subset = params["datasets"][source].get("class_subset")
    assert classes == (subset or (FER_CLASSES if "fer" in source else CIFAR_CLASSES))
