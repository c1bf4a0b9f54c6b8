"""A run that several stage instances share is done once (ganaug.shared)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import numpy as np
import pytest

from ganaug.shared import run_key, shared_run, stage_code


def _produce(out: Path, plots: Path, calls: Path, value: str = "weights"):
    def produce() -> None:
        with calls.open("a") as f:
            f.write("x")
        out.write_text(value)
        plots.mkdir(parents=True, exist_ok=True)
        (plots / "curve.tsv").write_text("step\tloss\n1\t0.5\n")
        (plots / "sub").mkdir(exist_ok=True)
        (plots / "sub" / "grid.png").write_bytes(b"\x89PNG")
    return produce


def test_the_first_instance_trains_and_the_others_copy(tmp_path):
    root, calls = tmp_path / "shared", tmp_path / "calls"
    outs = []
    for replicate in range(3):
        out, plots = tmp_path / f"gan-{replicate}.pt", tmp_path / f"plots-{replicate}"
        copied = shared_run("k1", {"gan.pt": out, "plots": plots},
                            _produce(out, plots, calls), root=root)
        assert copied == (replicate > 0)
        outs.append((out.read_text(), (plots / "curve.tsv").read_text(),
                     (plots / "sub" / "grid.png").read_bytes()))
    assert calls.read_text() == "x"  # trained once
    assert outs[0] == outs[1] == outs[2]
    assert [p.name for p in root.iterdir() if p.is_dir()] == ["k1"]


def test_another_key_trains_again(tmp_path):
    root, calls = tmp_path / "shared", tmp_path / "calls"
    for key in ("a", "b"):
        out, plots = tmp_path / f"{key}.pt", tmp_path / f"plots-{key}"
        assert not shared_run(key, {"o": out, "p": plots}, _produce(out, plots, calls), root=root)
    assert calls.read_text() == "xx"


def test_a_changed_entry_is_ignored_and_replaced(tmp_path, caplog):
    root, calls = tmp_path / "shared", tmp_path / "calls"
    out, plots = tmp_path / "a.pt", tmp_path / "plots"
    shared_run("k", {"o": out, "p": plots}, _produce(out, plots, calls), root=root)
    (root / "k" / "o").write_text("tampered")
    out2, plots2 = tmp_path / "b.pt", tmp_path / "plots2"
    assert not shared_run("k", {"o": out2, "p": plots2}, _produce(out2, plots2, calls), root=root)
    assert out2.read_text() == "weights" and calls.read_text() == "xx"
    assert "files changed" in caplog.text
    # An extra file in a stored folder is a change too; the replaced entry is whole again.
    (root / "k" / "p" / "extra").write_text("?")
    out3, plots3 = tmp_path / "c.pt", tmp_path / "plots3"
    assert not shared_run("k", {"o": out3, "p": plots3}, _produce(out3, plots3, calls), root=root)
    assert shared_run("k", {"o": out3, "p": plots3}, _produce(out3, plots3, calls), root=root)
    assert not (plots3 / "extra").exists()


def test_a_run_that_fails_stores_nothing(tmp_path):
    root = tmp_path / "shared"

    def boom() -> None:
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        shared_run("k", {"o": tmp_path / "o"}, boom, root=root)
    assert not (root / "k").exists()
    with pytest.raises(RuntimeError, match="did not write"):
        shared_run("k", {"o": tmp_path / "o"}, lambda: None, root=root, what="train_gan")
    assert not (root / "k").exists()


def _worker(args) -> bool:
    tmp, replicate = args
    tmp = Path(tmp)
    out, plots = tmp / f"o{replicate}", tmp / f"p{replicate}"
    produce = _produce(out, plots, tmp / "calls")

    def slow() -> None:
        time.sleep(1.0)
        produce()
    return shared_run("k", {"o": out, "p": plots}, slow, root=tmp / "shared")


def test_concurrent_instances_train_once(tmp_path):
    """Two instances that start together: one trains, the other waits for it and copies."""
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        copied = pool.map(_worker, [(str(tmp_path), 0), (str(tmp_path), 1)])
    assert sorted(copied) == [False, True]
    assert (tmp_path / "calls").read_text() == "x"
    assert (tmp_path / "o0").read_text() == (tmp_path / "o1").read_text() == "weights"


def test_the_key_follows_data_config_and_code():
    x = np.zeros((4, 1, 8, 8), np.uint8)
    base = run_key("train_gan", {"steps": 2}, x, "code")
    assert base == run_key("train_gan", {"steps": 2}, x.copy(), "code")
    assert base != run_key("train_gan", {"steps": 3}, x, "code")
    assert base != run_key("train_gan", {"steps": 2}, x + 1, "code")
    assert base != run_key("train_gan", {"steps": 2}, x, "other code")
    assert base != run_key("train_scorer", {"steps": 2}, x, "code")


def test_stage_code_covers_the_stage_and_what_it_imports(tmp_path):
    stages = tmp_path / "stages"
    stages.mkdir()
    (stages / "__init__.py").write_text("")
    (stages / "helper.py").write_text("VALUE = 1\n")
    (stages / "mine.py").write_text("from stages.helper import VALUE\n")
    first = stage_code(stages / "mine.py")
    assert first == stage_code(stages / "mine.py")
    (stages / "helper.py").write_text("VALUE = 2\n")
    assert stage_code(stages / "mine.py") != first


def test_the_store_is_where_the_variable_points(tmp_path, monkeypatch):
    """The parallel runner sets GANAUG_SHARED_RUNS to the main workspace's store."""
    from ganaug.parallel.workspace import SHARED_RUNS_VAR
    from ganaug.shared import ROOT_VAR

    assert SHARED_RUNS_VAR == ROOT_VAR
    monkeypatch.setenv(ROOT_VAR, str(tmp_path / "main" / "store"))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "o"
    shared_run("k", {"o": out}, lambda: out.write_text("w"))
    assert (tmp_path / "main" / "store" / "k" / "o").read_text() == "w"
    assert not (tmp_path / ".checkpoints").exists()


def test_a_store_that_cannot_be_written_is_skipped(tmp_path, caplog):
    """A store under a file (or on a read-only disk): the run trains, as without one."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    out = tmp_path / "o"
    assert not shared_run("k", {"o": out}, lambda: out.write_text("w"), root=blocker / "store",
                          what="train_gan (replicate 1)")
    assert out.read_text() == "w"
    assert "train_gan (replicate 1): cannot use the store" in caplog.text
