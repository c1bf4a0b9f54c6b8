"""The catalogue of bad inputs and faults, as a careless or hostile user would try them.

Each case either gets a clear error that names the key, file or value and what is expected (and
leaves nothing half-written), or is handled correctly. Images of every mode and depth are in
``test_catalogue_images.py``; killed stages in ``test_crash_safety.py``; a server that never
answers in ``test_external.py``; a truncated ``dvc.lock`` in a real study and a corrupted
remote object in ``test_lock_and_remote.py`` (the lock tool's bad inputs, in a project made by
hand, are at the end of this file).
"""

from __future__ import annotations

import copy
import errno
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from e2e import REPO_ROOT, study_env

from ganaug.data import Prepared, save_prepared
from ganaug.errors import EnvironmentProblem, ParamsError
from ganaug.validate import validate_params

TINY = yaml.safe_load((REPO_ROOT / "presets/tiny.yaml").read_text())


def with_changes(**changes) -> dict:
    """The tiny preset with dotted keys set (a value of ``DELETE`` removes the key)."""
    params = copy.deepcopy(TINY)
    for dotted, value in changes.items():
        node = params
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return params


DELETE = object()

# (case, changes to the tiny preset, words the one error message must contain)
PARAMS_CASES = [
    ("misspelt-section", {"scorrer": {"arch": "small_cnn"}},
     ["scorrer: unknown section", "did you mean 'scorer'"]),
    ("misnested-strategy-knob", {"select.min_confidence": 0.8},
     ["select.min_confidence", "select.threshold.min_confidence",
      "select.kcenter.min_confidence"]),
    ("misspelt-strategy", {"select.threshhold": {"min_confidence": 0.8}},
     ["select.threshhold", "did you mean 'threshold'"]),
    ("nan-learning-rate", {"classifier.lr": float("nan")}, ["classifier.lr", "finite", "nan"]),
    ("inf-gan-learning-rate", {"gan.lr_g": float("inf")}, ["gan.lr_g", "finite"]),
    ("nan-pool-multiplier", {"generate.pool_multiplier": float("nan")},
     ["generate.pool_multiplier", "finite"]),
    ("nan-in-a-list", {"study.ratios": [1.0, float("nan")]}, ["study.ratios.1", "finite"]),
    ("nan-threshold", {"select.threshold.min_confidence": float("nan")},
     ["select.threshold.min_confidence", "finite"]),
    ("dataset-name-with-semicolon", {"datasets.x;touch pwned": {"kind": "sklearn_digits"}},
     ["datasets", "'x;touch pwned'", "not a usable name"]),
    ("dataset-name-with-space", {"datasets.my digits": {"kind": "sklearn_digits"}},
     ["'my digits'", "not a usable name"]),
    ("dataset-name-with-dot",
     {"datasets": {**TINY["datasets"], "ck.plus": {"kind": "sklearn_digits"}}},
     ["'ck.plus'", "not a usable name"]),
    ("target-named-synthetic", {"datasets.synthetic": {"kind": "sklearn_digits"}},
     ["datasets.synthetic", "test set the pipeline makes itself"]),
    ("target-is-the-source", {"study.targets": ["digits"]},
     ["study.targets", "'digits' is the source"]),
    ("target-not-a-dataset", {"study.targets": ["ckplus"]},
     ["study.targets", "'ckplus' is not under datasets"]),
    ("source-not-a-dataset", {"data.source": "fer2013"},
     ["data.source", "'fer2013' is not under datasets"]),
    ("strategy-without-its-section", {"study.strategies": ["random", "kcenter"]},
     ["select.kcenter: missing", "study.strategies"]),
    ("unknown-strategy", {"study.strategies": ["random", "best"]},
     ["study.strategies", "unknown selection strategy 'best'"]),
    ("strategy-none", {"study.strategies": ["none"]}, ["'none' is the real-only baseline"]),
    ("ratio-above-the-pool", {"study.ratios": [1, 5], "study.synthetic_only_ratio": 1},
     ["generate.max_ratio", "largest of study.ratios"]),
    ("ratio-zero", {"study.ratios": [0, 1]}, ["study", "ratios", "positive"]),
    ("duplicate-ratio", {"study.ratios": [1, 1.0]}, ["ratios", "duplicate"]),
    ("dataset-file-outside-data-raw",
     {"datasets.fer": {"kind": "npz", "path": "/data/fer2013.npz"}},
     ["datasets.fer.path", "outside data/raw", "dvc status"]),
    ("dataset-file-escaping-data-raw",
     {"datasets.fer": {"kind": "npz", "path": "data/raw/../../secret.npz"}},
     ["datasets.fer.path", "outside data/raw"]),
    ("torchvision-root-outside-data-raw",
     {"datasets.mnist": {"kind": "torchvision", "name": "MNIST", "root": "~/datasets"}},
     ["datasets.mnist.root", "outside data/raw"]),
    ("inception-without-fetch", {"score.features": ["scorer", "inception"]},
     ["fetch.inception is missing"]),
    ("no-classifier-members", {"classifier.members": 0}, ["classifier: members", ">= 1, got 0"]),
    ("classifier-members-as-text", {"classifier.members": "four"}, ["classifier.members"]),
    ("negative-epoch-images", {"classifier.epoch_images": -5},
     ["classifier: epoch_images", ">= 1, got -5"]),
    ("members-on-the-scorer", {"scorer.members": 2}, ["scorer.members", "unknown key"]),
    ("unknown-classifier", {"classifier.arch": "resnet_18"},
     ["classifier.arch", "'resnet_18'", "did you mean 'resnet18'"]),
    ("unknown-gan-family", {"gan.arch": "stylegan2"}, ["gan.arch", "'stylegan2'", "known:"]),
    ("stargan-per-class", {"gan.arch": "stargan", "gan.dcgan": DELETE,
                           "gan.stargan": {"per_class": True}},
     ["gan.stargan.per_class", "unknown key", "dcgan, wgan_gp only"]),
    ("stargan-warmup", {"gan.arch": "stargan", "gan.dcgan": DELETE, "gan.warmup_steps": 5},
     ["gan.warmup_steps"]),
    ("family-knob-among-the-shared", {"gan.z_dim": 8},
     ["gan.z_dim", "unknown key", "put it under gan.dcgan"]),
    ("section-of-another-family", {"gan.arch": "sngan"},
     ["gan.dcgan", "knobs of GAN family 'dcgan'", "gan.arch is 'sngan'", "~gan.dcgan"]),
    ("ada-without-augmentations", {"gan.ada_target": 0.6}, ["gan", "ada_target", "diffaugment"]),
    ("ada-on-a-wgan-critic",
     {"gan.arch": "wgan_gp", "gan.dcgan": DELETE, "gan.diffaugment": ["translation"],
      "gan.ada_target": 0.6},
     ["gan.ada_target", "wgan_gp", "no fixed sign"]),
    ("ada-on-stargan",
     {"gan.arch": "stargan", "gan.dcgan": DELETE, "gan.diffaugment": ["translation"],
      "gan.ada_target": 0.6},
     ["gan.ada_target", "stargan", "no fixed sign"]),
    ("unknown-augmentation", {"gan.diffaugment": ["colour"]}, ["gan.diffaugment.0"]),
    ("device-gpu", {"device": "gpu"}, ["device", "'gpu'", "auto, cpu, cuda"]),
    ("number-written-1e-3", {"report.equivalence_margin": "1e-3"},
     ["report.equivalence_margin", "'1e-3'", "write 1.0e-3"]),
    ("threads-zero", {"threads": 0}, ["threads", "0", "positive integer"]),
    ("threads-as-text", {"threads": "two"}, ["threads", "'two'", "positive integer"]),
    ("threads-bool", {"threads": True}, ["threads", "True", "positive integer"]),
    ("threads-float", {"threads": 1.5}, ["threads", "1.5", "positive integer"]),
    ("refine-from-unknown-round", {"refine.rounds": {"r1": "r0"}},
     ["refine", "r1", "'r0'"]),
    ("refine-round-named-base", {"refine.rounds": {"base": "base"}}, ["refine", "'base'"]),
    ("refine-round-with-slash", {"refine.rounds": {"r/1": "base"}}, ["'r/1'", "not a usable"]),
    ("seeds-as-a-string", {"study.seeds": "0,1,2"}, ["study.seeds", "valid list"]),
    ("bool-for-an-int", {"gan.dcgan.z_dim": True}, ["gan.dcgan.z_dim", "valid integer"]),
    ("threshold-above-one", {"select.threshold.min_confidence": 1.5},
     ["select.threshold", "min_confidence", "[0, 1]"]),
    ("no-datasets", {"datasets": {}}, ["datasets", "expected a mapping"]),
    ("missing-study", {"study": DELETE}, ["missing section", "study"]),
    ("unknown-dataset-kind", {"datasets.typeset.kind": "papyrus"},
     ["datasets.typeset.kind", "'papyrus'", "sklearn_digits"]),
    ("unknown-dataset-key", {"datasets.typeset.colour": "red"},
     ["datasets.typeset.colour: unknown key"]),
    # Verdicts: the margin, the declared primary comparison, replicates and the pilot.
    ("zero-equivalence-margin", {"report.equivalence_margin": 0.0},
     ["equivalence_margin", "positive, finite"]),
    ("negative-equivalence-margin", {"report.equivalence_margin": -1.0},
     ["equivalence_margin", "positive, finite"]),
    ("infinite-equivalence-margin", {"report.equivalence_margin": float("inf")},
     ["report.equivalence_margin", "finite"]),
    ("primary-unknown-strategy", {"study.seeds": [0, 1], "study.primary": {
        "strategy": "realism", "ratio": 1, "test_set": "digits"}},
     ["primary.strategy", "'realism'", "not one of strategies"]),
    ("primary-unknown-ratio", {"study.seeds": [0, 1], "study.primary": {
        "strategy": "random", "ratio": 2, "test_set": "digits"}},
     ["primary.ratio", "2.0", "not one of ratios"]),
    ("primary-unknown-test-set", {"study.seeds": [0, 1], "study.primary": {
        "strategy": "random", "ratio": 1, "test_set": "fer2013"}},
     ["study.primary.test_set", "'fer2013'", "expected one of digits, typeset"]),
    ("primary-missing-key", {"study.seeds": [0, 1], "study.primary": {"strategy": "random"}},
     ["study.primary", "missing ratio, test_set"]),
    ("primary-with-one-seed", {"study.seeds": [0], "study.primary": {
        "strategy": "random", "ratio": 1, "test_set": "digits"}},
     ["seeds", "at least 2", "[0]"]),
    ("one-replicate", {"study.seeds": [5]}, ["seeds", "one replicate", "at least 2", "[5]"]),
    ("vary-unknown-source", {"study.vary": ["subset", "scorer"]},
     ["vary", "'scorer'", "subset, gan, classifier"]),
    ("vary-not-a-list", {"study.vary": "subset"}, ["study.vary"]),
    ("vary-duplicate", {"study.vary": ["gan", "gan"]}, ["vary", "duplicate"]),
    ("negative-pilot", {"study.seeds": [0, 1, 2], "study.pilot": -1}, ["pilot", ">= 0"]),
    ("pilot-leaves-one-seed", {"study.seeds": [0, 1, 2], "study.pilot": 2},
     ["pilot", "leaves 1 confirmatory", "at least 2"]),
    ("pilot-leaves-no-seed", {"study.pilot": 2}, ["pilot", "leaves 0 confirmatory"]),
]


@pytest.mark.parametrize(("changes", "words"), [c[1:] for c in PARAMS_CASES],
                         ids=[c[0] for c in PARAMS_CASES])
def test_params_catalogue(changes, words):
    with pytest.raises(ParamsError) as info:
        validate_params(with_changes(**changes))
    msg = str(info.value)
    assert "\n" not in msg.strip() or msg.startswith("params.yaml"), msg
    for word in words:
        assert word in msg, msg


def test_the_tiny_preset_itself_is_valid():
    validate_params(TINY)


# --------------------------------------------------------------------------------------------
# Through the real entry points: one clean line, no traceback, nothing half-written
# --------------------------------------------------------------------------------------------


def run_module(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**study_env(REPO_ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, env=full,
                          capture_output=True, text=True, timeout=300)


def write_params(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(with_changes(**changes)))
    return path


def tiny_source(tmp_path: Path, val: bool = True) -> Path:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 1, 8, 8), dtype=np.uint8)
    y = np.repeat(np.arange(3), 4)
    empty = (x[:0], y[:0])
    save_prepared(tmp_path / "src.npz", Prepared(
        splits={"train": (x, y), "val": (x, y) if val else empty, "test": (x, y)},
        classes=["a", "b", "c"], meta={}))
    return tmp_path / "src.npz"


def one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, proc.stderr
    for word in words:
        assert word in errors[0], errors[0]


def test_check_params_stage_fails_on_a_misnested_key(tmp_path):
    params = write_params(tmp_path, **{"select.min_confidence": 0.8})
    proc = run_module(tmp_path, "stages.check_params", "--out", str(tmp_path / "ok.json"),
                      "--params", str(params))
    one_line_error(proc, "ParamsError", "select.min_confidence")
    assert not (tmp_path / "ok.json").exists()


@pytest.mark.parametrize(("device", "words"), [
    ("cuda", ["EnvironmentProblem", "CUDA is not available"]),
    ("cuda:3", ["EnvironmentProblem", "'cuda:3'"]),
    ("mps", ["EnvironmentProblem", "MPS is not available"]),
    ("tpu", ["ParamsError", "GANAUG_DEVICE", "'tpu'"]),
], ids=["cuda-missing", "cuda-index-missing", "mps-missing", "tpu-unknown"])
def test_a_device_this_machine_lacks_is_one_clear_line(tmp_path, device, words):
    if device.startswith("cuda") and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    params = write_params(tmp_path)
    proc = run_module(tmp_path, "stages.train", "--real", str(tiny_source(tmp_path)), "--replicate",
                      "0", "--out", str(tmp_path / "out/m.pt"), "--params", str(params),
                      env={"GANAUG_DEVICE": device})
    one_line_error(proc, *words)
    assert not (tmp_path / "out").exists()


def test_more_threads_than_the_machine_has_is_one_clear_line(tmp_path):
    from ganaug.runtime import usable_cores

    too_many = usable_cores() + 1
    params = write_params(tmp_path, threads=too_many)
    proc = run_module(tmp_path, "stages.train", "--real", str(tiny_source(tmp_path)), "--replicate",
                      "0", "--out", str(tmp_path / "out/m.pt"), "--params", str(params))
    one_line_error(proc, "ParamsError", "threads", str(too_many), "usable core")
    assert not (tmp_path / "out").exists()


def test_an_invalid_log_level_is_one_clear_line(tmp_path):
    proc = run_module(tmp_path, "stages.check_params", "--out", str(tmp_path / "ok.json"),
                      "--params", str(write_params(tmp_path)), env={"GANAUG_LOG": "LOUD"})
    one_line_error(proc, "GANAUG_LOG", "'LOUD'", "DEBUG, INFO")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_a_read_only_output_folder_is_one_clear_line(tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        proc = run_module(tmp_path, "stages.check_params", "--out", str(out / "ok.json"),
                          "--params", str(write_params(tmp_path)))
    finally:
        out.chmod(0o755)
    one_line_error(proc, "EnvironmentProblem", str(out), "writable")


def test_a_read_only_output_folder_names_the_folder(tmp_path, monkeypatch):
    """(As root, chmod does not stop writes: the error is simulated where the file is made.)"""
    import tempfile

    from ganaug.io import save_json

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(EnvironmentProblem, match=rf"{tmp_path}: cannot write here.*writable"):
        save_json(tmp_path / "out.json", {"a": 1})


def test_a_full_disk_while_the_pool_is_allocated_is_a_clear_error(tmp_path, monkeypatch):
    from ganaug.io import reserve_space

    path = tmp_path / "big.npy"
    path.write_bytes(b"x" * 4096)

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(EnvironmentProblem, match=rf"{path}: no space left"):
        reserve_space(path)


def test_a_full_disk_while_generating_leaves_no_temporary_pool(tmp_path, monkeypatch):
    from ganaug.gan import family_for, gan_config
    from ganaug.gan.family import LoadedGan
    from ganaug.synthetic.pool import make_pool

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    family = family_for(gan_config({"width": 2, "dcgan": {"z_dim": 4}}), 3, (1, 8, 8))
    nets = family.build().eval()
    gan = LoadedGan(family, nets.generator, nets.discriminator, {})
    data = Prepared(splits={s: (np.zeros((6, 1, 8, 8), np.uint8), np.arange(6) % 3)
                            for s in ("train", "val", "test")}, classes=["a", "b", "c"], meta={})
    with pytest.raises(EnvironmentProblem, match="no space left"):
        make_pool(gan, data, 4, 8, 0, torch.device("cpu"), tmp_path / "pool", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_temporary_file_left_by_a_killed_run_is_removed_by_the_next(tmp_path):
    from ganaug.io import save_json

    stale = tmp_path / ".out.json.ab12cd34.tmp"
    stale.write_text("half written")
    other = tmp_path / ".other.json.ab12cd34.tmp"  # another output's: left alone
    other.write_text("x")
    save_json(tmp_path / "out.json", {"a": 1})
    assert not stale.exists() and other.exists()
    assert json.loads((tmp_path / "out.json").read_text()) == {"a": 1}


def test_a_source_without_validation_images_is_refused(tmp_path):
    """It used to train nothing: NaN validation accuracy never beat the best, the initial
    weights were kept, and the study reported untrained models with exit 0."""
    params = write_params(tmp_path)
    proc = run_module(tmp_path, "stages.train", "--real", str(tiny_source(tmp_path, val=False)),
                      "--replicate", "0", "--out", str(tmp_path / "out/m.pt"), "--params", str(params))
    one_line_error(proc, "DataFileError", "validation split is empty")
    assert not (tmp_path / "out").exists()


def test_a_programming_error_keeps_its_traceback(tmp_path, monkeypatch, caplog):
    """A ValueError from numpy or torch is a bug, not bad input: it must not be dressed up."""
    from ganaug.stage import run

    def buggy(argv):
        np.zeros(3).reshape(2, 2)  # ValueError from numpy

    with pytest.raises(ValueError, match="reshape"):
        run(buggy, [])


def test_a_user_error_is_one_line_and_exit_1(caplog):
    from ganaug.stage import run

    def bad(argv):
        raise ParamsError("params.yaml: gan.lr_g: must be > 0")

    with caplog.at_level(logging.ERROR):
        assert run(bad, []) == 1
    assert "ParamsError: params.yaml: gan.lr_g" in caplog.text


# --------------------------------------------------------------------------------------------
# Files on disk that are not what they should be
# --------------------------------------------------------------------------------------------


def test_a_score_table_with_a_scrambled_index_is_refused(tmp_path):
    from ganaug.errors import DataFileError
    from ganaug.synthetic.scoring import load_scores

    d = tmp_path / "scores"
    d.mkdir()
    pd.DataFrame({"index": [1, 0], "label": [0, 0], "confidence": [.5, .5], "predicted": [0, 0],
                  "predicted_prob": [.5, .5], "realism": [0., 0.]}).to_csv(d / "scores.csv",
                                                                         index=False)
    np.savez(d / "features.npz", pool=np.zeros((2, 3)), real=np.zeros((2, 3)),
             real_labels=np.zeros(2))
    with pytest.raises(DataFileError, match="index column must be 0..N-1"):
        load_scores(d)


def test_a_score_table_missing_a_column_is_refused(tmp_path):
    from ganaug.errors import DataFileError
    from ganaug.synthetic.scoring import load_scores

    d = tmp_path / "scores"
    d.mkdir()
    pd.DataFrame({"index": [0], "label": [0]}).to_csv(d / "scores.csv", index=False)
    with pytest.raises(DataFileError, match="missing columns"):
        load_scores(d)


def test_pool_labels_that_are_not_integers_are_refused(tmp_path):
    from ganaug.errors import DataFileError
    from ganaug.synthetic.pool import load_pool

    np.save(tmp_path / "images.npy", np.zeros((2, 1, 8, 8), np.uint8))
    np.save(tmp_path / "labels.npy", np.array([0.5, 1.5]))
    (tmp_path / "meta.json").write_text("{}")
    with pytest.raises(DataFileError, match="labels must be integers"):
        load_pool(tmp_path)


def test_a_pool_meta_that_is_not_json_is_refused(tmp_path):
    from ganaug.errors import DataFileError
    from ganaug.synthetic.pool import load_pool

    np.save(tmp_path / "images.npy", np.zeros((2, 1, 8, 8), np.uint8))
    np.save(tmp_path / "labels.npy", np.array([0, 1]))
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(DataFileError, match="meta.json: not valid JSON"):
        load_pool(tmp_path)


def test_a_gan_checkpoint_from_another_version_is_a_checkpoint_error(tmp_path):
    from ganaug.checkpoints import save_checkpoint
    from ganaug.errors import CheckpointError
    from ganaug.gan import load_gan

    path = tmp_path / "gan.pt"
    save_checkpoint(path, {"kind": "gan", "arch": "dcgan", "gen_kwargs": {}, "generator": {}})
    with pytest.raises(CheckpointError, match=rf"{path}: cannot rebuild the GAN"):
        load_gan(path)
    # Made before the families' knobs moved to gan.<arch>: the flat config is refused alike.
    save_checkpoint(path, {"kind": "gan", "arch": "dcgan", "generator": {},
                           "config": {"arch": "dcgan", "z_dim": 8}})
    with pytest.raises(CheckpointError, match=rf"{path}: cannot rebuild the GAN .*gan.z_dim"):
        load_gan(path)


def test_a_gan_checkpoint_of_a_family_that_is_not_installed_names_it(tmp_path):
    from ganaug.checkpoints import save_checkpoint
    from ganaug.errors import CheckpointError
    from ganaug.gan import load_gan

    path = tmp_path / "gan.pt"
    save_checkpoint(path, {"kind": "gan", "arch": "tiny", "config": {"arch": "tiny"},
                           "generator": {}})
    with pytest.raises(CheckpointError, match=rf"^{path}: made by GAN family 'tiny', which is "
                                              rf"neither built in nor installed as a plugin"):
        load_gan(path)


# --------------------------------------------------------------------------------------------
# Class handling and targets
# --------------------------------------------------------------------------------------------


def prepared(classes: list[str], channels: int = 1) -> Prepared:
    x = np.zeros((len(classes) * 2, channels, 8, 8), np.uint8)
    y = np.repeat(np.arange(len(classes)), 2)
    empty = (x[:0], y[:0])
    return Prepared(splits={"train": empty, "val": empty, "test": (x, y)}, classes=classes,
                    meta={})


def test_target_classes_differing_only_in_case_are_an_error_not_dropped():
    from ganaug.errors import DataFileError
    from ganaug.metrics.evaluation import align_to_source

    with pytest.raises(DataFileError, match=r'jaffe: classes \[\'Angry\'\].*class_map.*"Angry": "angry"'):
        align_to_source(prepared(["Angry", "happy"]), prepared(["angry", "happy"]), "jaffe")


@pytest.mark.parametrize("name", [" 3", "3 ", "a  b"], ids=["leading-space", "trailing-space",
                                                             "double-space"])
def test_the_class_map_a_near_miss_suggests_pastes_into_params_as_is(name):
    """The suggested mapping is quoted YAML ({" 3": "3"}), which params.yaml takes as it is;
    unquoted ({ 3: 3}) it was read as numbers and refused. Runs of spaces inside a name count as
    a near miss too."""
    import re

    from ganaug.configs.data import DataConfig  # noqa: F401 - the params schema is importable
    from ganaug.errors import DataFileError
    from ganaug.metrics.evaluation import align_to_source

    source = " ".join(name.split())
    with pytest.raises(DataFileError) as err:
        align_to_source(prepared([name, "happy"]), prepared([source, "happy"]), "t")
    mapping = yaml.safe_load(re.search(r"class_map: (\{.*\})", str(err.value)).group(1))
    assert mapping == {name: source}


def test_a_target_sharing_no_class_with_the_source_is_an_error():
    from ganaug.errors import DataFileError
    from ganaug.metrics.evaluation import align_to_source

    with pytest.raises(DataFileError, match="none of its classes"):
        align_to_source(prepared(["cat", "dog"]), prepared(["angry", "happy"]), "pets")


def test_a_target_with_two_channel_images_is_a_clear_error():
    from ganaug.errors import DataFileError
    from ganaug.metrics.evaluation import align_to_source

    with pytest.raises(DataFileError, match="2-channel"):
        align_to_source(prepared(["angry"], channels=2), prepared(["angry", "happy"]), "odd")


def test_target_images_of_classes_the_source_lacks_are_dropped_and_logged(caplog):
    from ganaug.metrics.evaluation import align_to_source

    with caplog.at_level(logging.WARNING):
        x, y, info = align_to_source(prepared(["angry", "contempt"]), prepared(["angry", "happy"]),
                                     "ckplus")
    assert len(y) == 2 and info["dropped_images"] == 2
    assert "contempt" in caplog.text


# --------------------------------------------------------------------------------------------
# Resume checkpoints
# --------------------------------------------------------------------------------------------


def test_a_resume_checkpoint_made_by_other_code_is_ignored(tmp_path, monkeypatch, caplog,
                                                           one_thread):
    """Kill after the first checkpoint, change the model code, rerun: start from scratch."""
    import ganaug.training as training
    from ganaug.config import TrainConfig

    cfg = TrainConfig(width=4, epochs=2, batch_size=8, checkpoint_every=1)
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 256, (12, 1, 8, 8), dtype=np.uint8), np.arange(12) % 3
    resume = tmp_path / "resume.pt"
    training.train_classifier(x, y, x, y, 3, cfg, 0, torch.device("cpu"), resume)
    assert resume.exists()
    monkeypatch.setattr(training, "code_fingerprint", lambda *m: "other code")
    with caplog.at_level(logging.WARNING):
        training.train_classifier(x, y, x, y, 3, cfg, 0, torch.device("cpu"), resume)
    assert "made from other inputs, params or code" in caplog.text


def test_a_resume_checkpoint_that_does_not_fit_the_model_is_ignored(tmp_path, caplog):
    from ganaug.resume import ResumeFile

    model = torch.nn.Linear(3, 2)
    ResumeFile(tmp_path / "r.pt", "resume-x", "fp").save({"model": torch.nn.Linear(4, 2)})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with caplog.at_level(logging.WARNING):
        assert ResumeFile(tmp_path / "r.pt", "resume-x", "fp").load({"model": model}) is None
    assert "does not fit the model" in caplog.text
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_corrupt_resume_checkpoint_is_ignored(tmp_path, caplog):
    from ganaug.resume import ResumeFile

    (tmp_path / "r.pt").write_bytes(b"\x00garbage")
    with caplog.at_level(logging.WARNING):
        assert ResumeFile(tmp_path / "r.pt", "resume-x", "fp").load({}) is None
    assert "ignoring resume checkpoint" in caplog.text


# --------------------------------------------------------------------------------------------
# The lock tool (python -m ganaug.lock): a project made by hand, no study needed
# --------------------------------------------------------------------------------------------

LOCK_DVC_YAML = "stages:\n  hello:\n    cmd: echo hi > out.txt\n    outs:\n      - out.txt\n"
# A dvc.lock as DVC writes it, with the entry of a stage dvc.yaml no longer has ("gone").
GOOD_LOCK = """schema: '2.0'
stages:
  hello:
    cmd: echo hi > out.txt
    outs:
    - path: out.txt
      hash: md5
      md5: 764efa883dda1e11db47671c4a3bbd9e
      size: 3
  gone:
    cmd: echo gone
"""


def lock_project(root: Path, git: bool = True, lock: str | None = GOOD_LOCK,
                 commit: bool = False) -> Path:
    """A DVC project with one stage: ``git init`` (or DVC without git), dvc.yaml, dvc.lock."""
    root.mkdir(parents=True, exist_ok=True)
    env = study_env(REPO_ROOT)
    if git:
        subprocess.run(["git", "init", "-q", "."], cwd=root, check=True, env=env)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q", *([] if git else ["--no-scm"])],
                   cwd=root, check=True, env=env)
    (root / "dvc.yaml").write_text(LOCK_DVC_YAML)
    if lock is not None:
        (root / "dvc.lock").write_text(lock)
    if commit:
        subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=env)
        subprocess.run(["git", "commit", "-qm", "lock"], cwd=root, check=True, env=env)
    return root


def lock_tool(root: Path, command: str) -> subprocess.CompletedProcess:
    return run_module(root, "ganaug.lock", command, "--root", str(root))


@pytest.mark.parametrize("command", ["check", "recover", "prune"])
def test_lock_tool_outside_a_dvc_project_is_one_line(tmp_path, command):
    (tmp_path / "dvc.lock").write_text(GOOD_LOCK)  # a lock file, but no project around it
    one_line_error(lock_tool(tmp_path, command), "EnvironmentProblem", str(tmp_path),
                   "not a DVC project", "--root")
    assert (tmp_path / "dvc.lock").read_text() == GOOD_LOCK


@pytest.mark.parametrize(("text", "words"), [
    ("schema: '2.0'\nstages:\n  hello:\n    cmd: [unclosed\n", ["not valid YAML", "line 5"]),
    ("", ["empty"]),
    ("- hello\n", ["not a mapping"]),
    # Valid YAML, but not a lockfile DVC loads: only its own schema tells.
    ("schema: '3.0'\nstages: {}\n", ["DVC's lockfile schema", "schema version"]),
    ("schema: '2.0'\nstages:\n  hello:\n    outs: []\n",
     ["DVC's lockfile schema", "required key", "cmd"]),
    ("schema: '2.0'\nstages:\n  hello:\n    cmd: x\n    outs:\n    - md5: abc\n",
     ["DVC's lockfile schema", "path"]),
], ids=["truncated-yaml", "empty", "a-list", "schema-version", "stage-without-cmd",
        "out-without-path"])
def test_lock_check_uses_dvc_s_lockfile_schema(tmp_path, text, words):
    root = lock_project(tmp_path / "p", lock=text)
    proc = lock_tool(root, "check")
    one_line_error(proc, "DataFileError", str(root / "dvc.lock"), "ganaug.lock recover", *words)
    # DVC itself refuses the same file: the check says what dvc would.
    status = subprocess.run([sys.executable, "-m", "dvc", "status"], cwd=root,
                            env=study_env(REPO_ROOT), capture_output=True, text=True)
    assert status.returncode != 0


def test_lock_check_passes_a_file_dvc_wrote(tmp_path):
    proc = lock_tool(lock_project(tmp_path / "p"), "check")
    assert proc.returncode == 0 and "ok" in proc.stderr, proc.stderr


def test_recover_with_no_dvc_lock_restores_the_committed_one_and_claims_no_broken_copy(tmp_path):
    root = lock_project(tmp_path / "p", commit=True)
    (root / "dvc.lock").unlink()
    proc = lock_tool(root, "recover")
    assert proc.returncode == 0, proc.stderr
    assert (root / "dvc.lock").read_text() == GOOD_LOCK
    assert not (root / "dvc.lock.broken").exists()
    assert "restored the committed version" in proc.stderr and ".broken" not in proc.stderr


def test_recover_keeps_the_broken_lock_and_says_so(tmp_path):
    root = lock_project(tmp_path / "p", commit=True)
    (root / "dvc.lock").write_text("schema: '2.0'\nstages:\n  hel")
    proc = lock_tool(root, "recover")
    assert proc.returncode == 0, proc.stderr
    assert (root / "dvc.lock").read_text() == GOOD_LOCK
    assert (root / "dvc.lock.broken").read_text() == "schema: '2.0'\nstages:\n  hel"
    assert "dvc.lock.broken" in proc.stderr


def test_recover_with_nothing_committed_is_one_line(tmp_path):
    root = lock_project(tmp_path / "p", lock="stages: [\n")
    one_line_error(lock_tool(root, "recover"), "EnvironmentProblem", str(root / "dvc.lock"),
                   "git has none committed", "dvc repro")
    # Missing and nothing committed: a fresh project, nothing to recover.
    (root / "dvc.lock").unlink()
    proc = lock_tool(root, "recover")
    assert proc.returncode == 0 and "nothing to recover" in proc.stderr, proc.stderr


def test_recover_does_not_put_back_a_committed_lock_dvc_cannot_load_either(tmp_path):
    root = lock_project(tmp_path / "p", lock="schema: '1.0'\nstages: {}\n", commit=True)
    (root / "dvc.lock").write_text("stages: [\n")
    one_line_error(lock_tool(root, "recover"), "DataFileError", str(root / "dvc.lock"),
                   "committed version DVC cannot load either", "schema version")
    assert (root / "dvc.lock").read_text() == "stages: [\n"  # left as it was
    assert not (root / "dvc.lock.broken").exists()


def test_recover_and_prune_outside_git(tmp_path):
    root = lock_project(tmp_path / "p", git=False, lock="stages: [\n")
    one_line_error(lock_tool(root, "recover"), "EnvironmentProblem", str(root / "dvc.lock"),
                   "not in a git repository")
    (root / "dvc.lock").write_text(GOOD_LOCK)
    proc = lock_tool(root, "prune")  # DVC without git: pruning needs no git
    assert proc.returncode == 0, proc.stderr
    assert "gone" not in (root / "dvc.lock").read_text()


def test_prune_drops_the_stages_dvc_yaml_no_longer_has(tmp_path):
    # Run from another directory (--root): DVC's stage addresses are relative to the working
    # directory, and prune once took every entry for stale from there.
    root = lock_project(tmp_path / "p")
    proc = lock_tool(root, "prune")
    assert proc.returncode == 0 and "gone" in proc.stderr, proc.stderr
    stages = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    assert list(stages) == ["hello"]


def test_prune_with_a_broken_dvc_yaml_is_one_line(tmp_path):
    root = lock_project(tmp_path / "p")
    (root / "dvc.yaml").write_text("stages: [\n")
    one_line_error(lock_tool(root, "prune"), "EnvironmentProblem", str(root / "dvc.yaml"),
                   "DVC cannot load the pipeline")
    assert "`dvc status` shows the details" in lock_tool(root, "prune").stderr
    assert (root / "dvc.lock").read_text() == GOOD_LOCK


def test_recover_and_prune_while_another_process_holds_dvc_s_lock(tmp_path):
    from dvc.lock import make_lock

    root = lock_project(tmp_path / "p", commit=True)
    (root / "dvc.lock").write_text("stages: [\n")
    # The lock `dvc repro` (and the parallel runner) hold: DVC's own, taken as Repo does.
    tmp = root / ".dvc" / "tmp"
    tmp.mkdir(exist_ok=True)
    held = make_lock(str(tmp / "lock"), tmp_dir=str(tmp))
    held.lock()
    try:
        for command in ("recover", "prune"):
            one_line_error(lock_tool(root, command), str(tmp / "lock"),
                           "holds the repository lock")
        assert (root / "dvc.lock").read_text() == "stages: [\n"  # untouched
        assert not (root / "dvc.lock.broken").exists()
    finally:
        held.unlock()
    assert lock_tool(root, "recover").returncode == 0
