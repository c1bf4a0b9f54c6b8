"""Class options every dataset kind accepts (class_map, class_subset, drop_test_duplicates), and
how prepare splits an official split without val. Datasets are small npz files in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ganaug.config import DataConfig, ParamsError
from ganaug.data import SPLITS
from ganaug.data.classes import duplicates_of, row_keys
from ganaug.data.prepare import parse_dataset_config, prepare


def images(n: int, seed: int) -> np.ndarray:
    """``n`` distinct random uint8 images (N, 4, 4)."""
    return np.random.default_rng(seed).integers(0, 256, (n, 4, 4), dtype=np.uint8)


def npz_value(tmp_path: Path, classes: list[str], official: bool = True, **arrays) -> dict:
    """Write ``arrays`` to an npz; the params entry that reads it (train/test parts if official)."""
    path = tmp_path / "d.npz"
    np.savez(path, classes=np.array(classes), **arrays)
    parts = ([{"x": "x_train", "y": "y_train", "split": "train"},
              {"x": "x_test", "y": "y_test", "split": "test"}] if official
             else [{"x": "x", "y": "y"}])
    return {"kind": "npz", "path": str(path), "parts": parts}


def run(name: str, value: dict, source: str | None = None, **data):
    return prepare(name, parse_dataset_config(name, value), DataConfig(source=source or name, **data))


def test_row_keys_and_duplicates_of_are_exact():
    a = np.array([[1, 2], [3, 4], [5, 6]], np.uint8).reshape(3, 1, 1, 2)
    q = np.array([[3, 4], [4, 3], [5, 6], [9, 9]], np.uint8).reshape(4, 1, 1, 2)
    assert duplicates_of(a, q).tolist() == [True, False, True, False]
    assert duplicates_of(a[:0], q).tolist() == [False] * 4
    keys = row_keys(np.concatenate([a, a[:1]]))
    assert keys[0] == keys[3] and keys[0] != keys[1]


def test_class_subset_keeps_and_reindexes_in_the_listed_order(tmp_path):
    value = npz_value(tmp_path, ["a", "b", "c", "d"], x_train=images(8, 0),
                      y_train=np.arange(8) % 4, x_test=images(4, 1), y_test=np.arange(4))
    p = run("d", {**value, "class_subset": ["c", "a"]}, val_fraction=0.5)
    assert p.classes == ["c", "a"]
    x_tr = images(8, 0)
    # Class "c" (old label 2) is now label 0: its images are old rows 2 and 6.
    train_and_val = np.concatenate([p.split("train")[0], p.split("val")[0]])
    assert sorted(map(bytes, train_and_val[np.concatenate([p.split("train")[1],
                                                           p.split("val")[1]]) == 0])) == \
        sorted(map(bytes, x_tr[[2, 6]][:, None]))
    assert p.class_counts("test").tolist() == [1, 1]
    assert p.meta["dropped_by_class_subset"] == 6


def test_class_subset_unknown_names_list_the_available_classes(tmp_path):
    value = npz_value(tmp_path, ["angry", "happy"], x_train=images(2, 0), y_train=np.arange(2),
                      x_test=images(2, 1), y_test=np.arange(2))
    with pytest.raises(ParamsError) as exc:
        run("d", {**value, "class_subset": ["happy", "sadness"]})
    msg = str(exc.value)
    assert "datasets.d.class_subset: unknown class(es) ['sadness']" in msg
    assert "available: angry, happy" in msg and str(tmp_path / "d.npz") in msg
    with pytest.raises(ParamsError, match="duplicate class names"):
        parse_dataset_config("d", {**value, "class_subset": ["happy", "happy"]})


def test_class_map_renames_and_merges_before_the_subset(tmp_path):
    value = npz_value(tmp_path, ["anger", "happiness", "joy", "contempt"], official=False,
                      x=images(16, 0), y=np.arange(16) % 4)
    p = run("d", {**value, "class_map": {"anger": "angry", "happiness": "happy", "joy": "happy"},
                  "class_subset": ["happy", "angry"]}, val_fraction=0.25, test_fraction=0.25)
    assert p.classes == ["happy", "angry"]
    assert sum(p.class_counts(s).tolist()[0] for s in SPLITS) == 8  # happiness + joy
    assert p.meta["merged_classes"] == {"happy": ["happiness", "joy"]}
    assert p.meta["source_classes"] == ["anger", "happiness", "joy", "contempt"]


def test_class_options_apply_to_the_bundled_kinds_too():
    cfg = parse_dataset_config("digits", {"kind": "sklearn_digits", "class_subset": ["3", "1"],
                                          "class_map": {"7": "seven"}})
    p = prepare("digits", cfg, DataConfig(source="digits"))
    assert p.classes == ["3", "1"] and set(np.concatenate([p.split(s)[1] for s in SPLITS])) == {0, 1}


def test_drop_test_duplicates_official_split_before_scarcity(tmp_path):
    x_tr = images(10, 0)
    x_te = np.concatenate([images(4, 1), x_tr[[2, 7]]])  # two test images copy train images
    value = npz_value(tmp_path, ["a", "b"], x_train=x_tr, y_train=np.arange(10) % 2,
                      x_test=x_te, y_test=np.arange(6) % 2)
    kept = run("d", value, val_fraction=0.2)
    assert len(kept.split("test")[1]) == 6 and "test_duplicates_dropped" not in kept.meta
    p = run("d", {**value, "drop_test_duplicates": True}, val_fraction=0.2, real_per_class=1)
    # Dropped against the whole train split (val was carved from it first), not the scarce one.
    assert len(p.split("test")[1]) == 4 and len(p.split("train")[1]) == 2
    dropped = p.meta["test_duplicates_dropped"]
    assert dropped["test"] + dropped["val"] == 2
    assert not duplicates_of(x_tr[:, None], p.split("test")[0]).any()


def test_drop_test_duplicates_with_a_seeded_split(tmp_path):
    base = images(20, 0)
    x = np.concatenate([base, base[:10]])  # 10 images appear twice
    value = npz_value(tmp_path, ["a", "b"], official=False, x=x, y=np.arange(30) % 2)
    p = run("d", {**value, "drop_test_duplicates": True}, val_fraction=0.2, test_fraction=0.3)
    train = p.split("train")[0]
    for s in ("val", "test"):
        assert not duplicates_of(train, p.split(s)[0]).any()
    total = sum(p.meta["test_duplicates_dropped"].values())
    assert sum(len(p.split(s)[1]) for s in SPLITS) == 30 - total and total > 0


def test_drop_test_duplicates_on_a_target(tmp_path):
    x_tr = images(4, 0)
    value = npz_value(tmp_path, ["a", "b"], x_train=x_tr, y_train=np.arange(4) % 2,
                      x_test=np.concatenate([x_tr[:1], images(3, 1)]), y_test=np.arange(4) % 2)
    p = run("t", {**value, "drop_test_duplicates": True}, source="other")
    assert p.meta["role"] == "target" and len(p.split("test")[1]) == 3
    assert p.meta["test_duplicates_dropped"] == {"val": 0, "test": 1}


def test_official_split_without_val_gets_a_stratified_val_from_train(tmp_path):
    value = npz_value(tmp_path, ["a", "b"], x_train=images(20, 0),
                      y_train=np.array([0] * 10 + [1] * 10), x_test=images(4, 1),
                      y_test=np.arange(4) % 2)
    p = run("d", value, val_fraction=0.2, seed=3)
    assert p.class_counts("val").tolist() == [2, 2] and p.class_counts("train").tolist() == [8, 8]
    together = np.concatenate([p.split("train")[0], p.split("val")[0]])
    assert sorted(map(bytes, together)) == sorted(map(bytes, images(20, 0)[:, None]))
    again = run("d", value, val_fraction=0.2, seed=3)
    assert np.array_equal(again.split("val")[0], p.split("val")[0])  # seeded
