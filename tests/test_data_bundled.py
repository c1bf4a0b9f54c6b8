"""Splits, scarcity, the two bundled datasets, and the prepared-file format."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ganaug.config import DataConfig
from ganaug.data import SPLITS, Prepared, load_prepared, save_prepared
from ganaug.data.prepare import parse_dataset_config, prepare, scarce_subset, stratified_split
from ganaug.io import DataFileError, load_npz, save_npz

DATA_CFG = DataConfig(source="digits", real_per_class=20, val_fraction=0.15, test_fraction=0.25,
                      seed=0)


@pytest.fixture(scope="module")
def digits() -> Prepared:
    return prepare("digits", parse_dataset_config("digits", {"kind": "sklearn_digits"}), DATA_CFG)


@pytest.fixture(scope="module")
def typeset() -> Prepared:
    cfg = parse_dataset_config("typeset", {"kind": "typeset_digits"})  # params.yaml's knobs
    return prepare("typeset", cfg, DATA_CFG)


# --------------------------------------------------------------------------------------------
# Splits and scarcity
# --------------------------------------------------------------------------------------------


def labels(counts: list[int], seed: int = 0) -> np.ndarray:
    y = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(seed).permutation(y)


def test_stratified_split_keeps_class_proportions_and_covers_everything():
    y = labels([20, 40, 8])
    split = stratified_split(y, 0.15, 0.25, np.random.default_rng(0))
    counts = {s: np.bincount(y[idx], minlength=3).tolist() for s, idx in split.items()}
    # Per class: test = round(n x 0.25), val = round(n x 0.15), train = the rest.
    assert counts == {"test": [5, 10, 2], "val": [3, 6, 1], "train": [12, 24, 5]}
    all_idx = np.concatenate([split[s] for s in SPLITS])
    assert np.array_equal(np.sort(all_idx), np.arange(len(y)))  # disjoint and complete
    for idx in split.values():
        assert np.all(np.diff(idx) > 0)  # sorted


def test_stratified_split_is_reproducible_per_seed():
    y = labels([30, 30])
    a = stratified_split(y, 0.2, 0.2, np.random.default_rng(1))
    b = stratified_split(y, 0.2, 0.2, np.random.default_rng(1))
    c = stratified_split(y, 0.2, 0.2, np.random.default_rng(2))
    assert all(np.array_equal(a[s], b[s]) for s in SPLITS)
    assert not np.array_equal(a["test"], c["test"])


def test_scarce_subset_per_class():
    y = labels([10, 2, 7])
    idx = np.arange(len(y))[::-1].copy()  # any order of indices
    kept = scarce_subset(y, idx, 3, None, np.random.default_rng(0))
    assert np.bincount(y[kept], minlength=3).tolist() == [3, 2, 3]  # a small class keeps all
    assert np.all(np.diff(kept) > 0) and set(kept) <= set(idx)
    again = scarce_subset(y, idx, 3, None, np.random.default_rng(0))
    assert np.array_equal(kept, again)


def test_scarce_subset_only_draws_from_the_given_indices():
    y = labels([20, 20])
    idx = np.flatnonzero(np.arange(len(y)) % 2 == 0)  # e.g. the train split
    kept = scarce_subset(y, idx, 4, None, np.random.default_rng(3))
    assert set(kept) <= set(idx)
    assert np.bincount(y[kept], minlength=2).tolist() == [4, 4]


def test_scarce_subset_fraction_rounds_and_keeps_at_least_one():
    y = labels([10, 20, 3])
    kept = scarce_subset(y, np.arange(len(y)), None, 0.3, np.random.default_rng(0))
    assert np.bincount(y[kept], minlength=3).tolist() == [3, 6, 1]  # 0.9 rounds to 1
    tiny = scarce_subset(y, np.arange(len(y)), None, 0.1, np.random.default_rng(0))
    assert np.bincount(y[tiny], minlength=3).tolist() == [1, 2, 1]  # 0.3 -> at least 1


def test_scarce_subset_without_limits_is_identity():
    y = labels([5, 5])
    idx = np.array([7, 1, 3])
    assert scarce_subset(y, idx, None, None, np.random.default_rng(0)) is idx


# --------------------------------------------------------------------------------------------
# The bundled datasets
# --------------------------------------------------------------------------------------------


def test_sklearn_digits_as_source(digits):
    assert digits.classes == [str(d) for d in range(10)]
    assert digits.image_shape == (1, 8, 8)
    for s in SPLITS:
        x, y = digits.split(s)
        assert x.dtype == np.uint8 and x.ndim == 4 and x.shape[1:] == (1, 8, 8)
        assert len(x) == len(y) and y.dtype == np.int64
    assert digits.class_counts("train").tolist() == [20] * 10
    assert digits.split("train")[0].max() == 255  # 16 ink levels scaled to 0..255
    assert digits.meta["role"] == "source"
    assert digits.meta["scarcity"]["real_per_class"] == 20
    available = sum(digits.meta["scarcity"]["train_available"])
    assert available + len(digits.split("val")[1]) + len(digits.split("test")[1]) == 1797
    test_counts = digits.class_counts("test")
    assert test_counts.min() >= 43 and test_counts.max() <= 46  # ~25% of ~180 per class


def test_sklearn_digits_splits_partition_the_dataset():
    from sklearn.datasets import load_digits

    cfg = DataConfig(source="digits", real_per_class=None, seed=3)
    full = prepare("digits", parse_dataset_config("digits", {"kind": "sklearn_digits"}), cfg)
    d = load_digits()
    raw = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)

    def multiset(x: np.ndarray, y: np.ndarray) -> list[bytes]:
        return sorted(img.tobytes() + bytes([label]) for img, label in zip(x, y, strict=True))

    xs, ys = zip(*(full.split(s) for s in SPLITS), strict=True)
    # Every image lands in exactly one split, with its own label.
    assert multiset(np.concatenate(xs)[:, 0], np.concatenate(ys)) == multiset(raw, d.target)
    assert sum(full.meta["scarcity"]["train_available"]) == len(ys[0])


def test_typeset_digits_as_target(typeset):
    assert typeset.meta["role"] == "target"
    assert len(typeset.split("train")[1]) == 0 and len(typeset.split("val")[1]) == 0
    x, y = typeset.split("test")
    assert x.dtype == np.uint8 and x.shape[1:] == (1, 8, 8)
    # Counts of set pixels in 4x4 blocks, scaled like the handwritten digits: 17 levels in 0..255.
    levels = set(np.rint(np.arange(17) * (255.0 / 16.0)).astype(int).tolist())
    assert set(np.unique(x).tolist()) <= levels
    assert x.min() == 0 and x.max() == 255
    assert typeset.classes == [str(d) for d in range(10)]
    counts = np.bincount(y, minlength=10)
    assert (counts == counts[0]).all() and counts[0] > 0  # every digit in every font


def test_typeset_digits_are_readable_but_shifted_from_handwriting(typeset):
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    d = load_digits()
    with threadpool_limits(1):  # BLAS threads fighting over 2 cores make this 100x slower
        clf = LogisticRegression(max_iter=300).fit(d.data / 16.0, d.target)
    x, y = typeset.split("test")
    acc = clf.score(x.reshape(len(x), -1) / 255.0, y)
    # A cross-dataset target: far above chance (10%), well below in-domain accuracy (~97%).
    assert 0.50 <= acc <= 0.85, acc


# --------------------------------------------------------------------------------------------
# The prepared file
# --------------------------------------------------------------------------------------------


def test_save_and_load_prepared_round_trip(digits, tmp_path):
    path = tmp_path / "digits.npz"
    save_prepared(path, digits)
    loaded = load_prepared(path)
    assert loaded.classes == digits.classes
    assert loaded.meta == json.loads(json.dumps(digits.meta))
    for s in SPLITS:
        for a, b in zip(loaded.split(s), digits.split(s), strict=True):
            assert np.array_equal(a, b) and a.dtype == b.dtype
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits.npz"]


@pytest.fixture
def prepared_file(digits, tmp_path):
    path = tmp_path / "prep.npz"
    save_prepared(path, digits)
    return path


def rewrite(path, **changes):
    arrays = load_npz(path)
    arrays.update(changes)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    save_npz(path, **arrays)


@pytest.mark.parametrize(("split", "bad"), [("test", 10), ("train", -1), ("val", 99)])
def test_load_prepared_names_the_file_for_labels_out_of_range(prepared_file, split, bad):
    y = load_npz(prepared_file)[f"y_{split}"].copy()
    y[0] = bad
    rewrite(prepared_file, **{f"y_{split}": y})
    with pytest.raises(DataFileError) as info:
        load_prepared(prepared_file)
    msg = str(info.value)
    assert msg.startswith(f"{prepared_file} ({split} split)")
    assert "[0, 10)" in msg


def test_load_prepared_names_the_file_for_mismatched_labels(prepared_file):
    y = load_npz(prepared_file)["y_test"]
    rewrite(prepared_file, y_test=y[:-1])
    with pytest.raises(DataFileError, match=re.escape(f"{prepared_file} (test split)")):
        load_prepared(prepared_file)


def test_load_prepared_refuses_float_images(prepared_file):
    x = load_npz(prepared_file)["x_train"].astype(np.float32)
    rewrite(prepared_file, x_train=x)
    with pytest.raises(DataFileError, match=r"train split\): images must be uint8"):
        load_prepared(prepared_file)


def test_load_prepared_names_missing_arrays(prepared_file):
    rewrite(prepared_file, classes=None)
    with pytest.raises(DataFileError, match=rf"{re.escape(str(prepared_file))}: missing arrays "
                                            r"\['classes'\]"):
        load_prepared(prepared_file)


def test_load_prepared_names_the_file_for_bad_meta(prepared_file):
    rewrite(prepared_file, meta=np.asarray("{not json"))
    with pytest.raises(DataFileError, match=rf"{re.escape(str(prepared_file))}: meta"):
        load_prepared(prepared_file)
