"""The real-only side of the study. The learning curve's data: the prepared source keeps the
training images scarcity left out (a reserve) and a seeded per-class order, so that the curve's
subsets are nested and its size ``data.real_per_class`` is exactly the study's train split. And
the evaluate stage, which scores a real-only model without any synthetic test set (no GAN) or on
the synthetic test sets alone."""

from __future__ import annotations

from argparse import Namespace
from collections import Counter

import numpy as np
import pytest
import torch
import yaml

from ganaug.config import DataConfig, ParamsError, StudyConfig, parse
from ganaug.data import Prepared, load_prepared, save_prepared
from ganaug.data.prepare import (
    nested_order,
    parse_dataset_config,
    prepare,
    scarce_subset,
    stratified_split,
)
from ganaug.io import DataFileError, load_json, load_npz, save_npz
from ganaug.models import CLASSIFIERS
from ganaug.models.saved import classifier_payload, save_checkpoint

DIGITS = parse_dataset_config("digits", {"kind": "sklearn_digits"})


def prepared(real_per_class: int | None = 20, seed: int = 0) -> Prepared:
    return prepare("digits", DIGITS, DataConfig(source="digits", real_per_class=real_per_class,
                                                seed=seed))


@pytest.fixture(scope="module")
def digits() -> Prepared:
    return prepared()


def multiset(x: np.ndarray, y: np.ndarray) -> Counter:
    return Counter(img.tobytes() + bytes([label]) for img, label in zip(x, y, strict=True))


def test_the_reserve_holds_every_training_image_scarcity_left_out(digits):
    available = np.array(digits.meta["scarcity"]["train_available"])
    assert digits.class_counts("train").tolist() == [20] * 10
    assert np.bincount(digits.reserve.y, minlength=10).tolist() == (available - 20).tolist()
    assert digits.meta["scarcity"]["reserve"] == (available - 20).tolist()
    # Train + reserve is the whole training split before scarcity: the same images as with
    # real_per_class null.
    every = prepared(real_per_class=None)
    assert len(every.reserve.y) == 0
    x, y = digits.split("train")
    assert multiset(np.concatenate([x, digits.reserve.x]),
                    np.concatenate([y, digits.reserve.y])) == multiset(*every.split("train"))


def test_the_train_split_is_the_one_drawn_before_the_reserve_existed():
    """The reserve's order has its own random stream: train and val are what scarce_subset
    draws after the seeded split, as they always were, so earlier results keep their data."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x_raw = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    rng = np.random.default_rng(0)
    idx = stratified_split(d.target, 0.15, 0.25, rng)
    kept = scarce_subset(d.target, idx["train"], 20, None, rng)
    val = scarce_subset(d.target, idx["val"], 10, None, rng)
    data = prepare("digits", DIGITS, DataConfig(source="digits", real_per_class=20,
                                                val_per_class=10, seed=0))
    assert np.array_equal(data.split("train")[0], x_raw[kept])
    assert np.array_equal(data.split("val")[0], x_raw[val])


def test_subsets_are_nested_and_size_real_per_class_is_the_train_split(digits):
    x20, y20 = digits.nested_subset(20)
    x_train, y_train = digits.split("train")
    assert np.array_equal(x20, x_train) and np.array_equal(y20, y_train)  # same order too
    previous = Counter()
    for size in (1, 5, 10, 20, 40, 80, 104):
        x, y = digits.nested_subset(size)
        assert np.bincount(y, minlength=10).tolist() == [size] * 10
        current = multiset(x, y)
        assert not previous - current  # every smaller subset lies inside this one
        previous = current
    assert not multiset(*digits.nested_subset(10)) - multiset(x_train, y_train)


def test_the_order_is_seeded(digits):
    again = prepared()
    assert np.array_equal(again.reserve.rank, digits.reserve.rank)
    assert np.array_equal(again.nested_subset(40)[0], digits.nested_subset(40)[0])
    other = prepared(seed=1)
    assert multiset(*other.nested_subset(10)) != multiset(*digits.nested_subset(10))


def test_a_size_larger_than_a_class_is_an_error_naming_the_class(digits):
    smallest = int(np.argmin(digits.meta["scarcity"]["train_available"]))
    n = min(digits.meta["scarcity"]["train_available"])  # 104 images of digit 8
    assert len(digits.nested_subset(n)[1]) == 10 * n
    with pytest.raises(ValueError, match=rf"{n + 1} real images per class asked, but "
                                         rf"'{smallest}' has {n} training images"):
        digits.nested_subset(n + 1)


def test_nested_order_by_hand():
    """Class 0 has images 0..4, scarcity kept 1 and 3; class 1 has 5..7 and kept 6."""
    y = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    reserve, rank, train_rank = nested_order(y, np.arange(8), np.array([1, 3, 6]),
                                             np.random.default_rng(0))
    assert sorted(train_rank[:2]) == [0, 1] and train_rank[2] == 0
    assert sorted(reserve[:3]) == [0, 2, 4] and sorted(reserve[3:]) == [5, 7]
    assert rank.tolist() == [2, 3, 4, 1, 2]


def test_the_reserve_survives_the_file(digits, tmp_path):
    path = tmp_path / "digits.npz"
    save_prepared(path, digits)
    back = load_prepared(path)
    for name in ("x", "y", "rank", "train_rank"):
        assert np.array_equal(getattr(back.reserve, name), getattr(digits.reserve, name))
    assert np.array_equal(back.nested_subset(40)[0], digits.nested_subset(40)[0])


def test_a_broken_order_in_the_file_is_named(digits, tmp_path):
    path = tmp_path / "digits.npz"
    save_prepared(path, digits)
    arrays = load_npz(path)
    arrays["rank_train"] = np.zeros_like(arrays["rank_train"])  # every image first: overlap
    save_npz(path, **arrays)
    with pytest.raises(DataFileError, match=r"digits.npz: the ranks of class 0 are not 0..n-1"):
        load_prepared(path)
    del arrays["rank_train"]
    save_npz(path, **arrays)
    with pytest.raises(DataFileError, match="but not all of"):
        load_prepared(path)


def test_a_file_without_a_reserve_loads_but_has_no_curve(digits, tmp_path):
    path = tmp_path / "old.npz"
    save_prepared(path, Prepared(splits=digits.splits, classes=digits.classes, meta={}))
    old = load_prepared(path)
    assert old.reserve is None
    with pytest.raises(DataFileError, match="run prepare again"):
        old.nested_subset(5)


def test_a_target_has_no_reserve():
    typeset = prepare("typeset", parse_dataset_config("typeset", {"kind": "typeset_digits"}),
                      DataConfig(source="digits", real_per_class=20))
    assert typeset.reserve is None


def test_the_train_stage_names_the_param_the_class_and_the_file(digits, tmp_path):
    from stages.train import real_images

    path = tmp_path / "digits.npz"
    save_prepared(path, digits)
    args = Namespace(real=str(path), real_per_class=500)
    with pytest.raises(ParamsError, match=r"study.real_sizes: 500 real images per class asked, "
                                          r"but '0' has 107, .* training images in .*digits.npz"):
        real_images(args, load_prepared(path))
    x, y = real_images(Namespace(real=str(path), real_per_class=None), digits)
    assert np.array_equal(x, digits.split("train")[0])


@pytest.mark.parametrize(("sizes", "needle"), [
    ([5, 5], "real_sizes: duplicate value 5"),
    ([0, 5], "real_sizes: every size must be a number of real images per class >= 1"),
    (["5"], "real_sizes"),
])
def test_study_real_sizes_are_checked(sizes, needle):
    grid = {"strategies": ["random"], "ratios": [1], "seeds": [0, 1], "targets": [],
            "synthetic_only_ratio": 1}
    assert parse(StudyConfig, grid, "study").real_sizes == []  # no curve unless asked
    assert parse(StudyConfig, {**grid, "real_sizes": [10, 5]}, "study").real_sizes == [10, 5]
    with pytest.raises(ParamsError, match=needle):
        parse(StudyConfig, {**grid, "real_sizes": sizes}, "study")


# --------------------------------------------------------------------------------------------
# The evaluate stage with and without a synthetic test set
# --------------------------------------------------------------------------------------------


@pytest.fixture
def evaluation(digits, tmp_path):
    """A prepared digits source, an untrained small classifier for it, params, and a runner."""
    (tmp_path / "prepared").mkdir()
    save_prepared(tmp_path / "prepared/digits.npz", digits)
    torch.manual_seed(0)
    kwargs = {"in_channels": 1, "num_classes": 10, "image_size": 8, "width": 4}
    model = CLASSIFIERS.get("small_cnn")(**kwargs)
    save_checkpoint(tmp_path / "clf.pt", classifier_payload(model, "small_cnn", kwargs, {}))
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"device": "cpu", "threads": 1, "data": {"source": "digits"},
                                      "study": {"targets": []}}))

    def run(*extra: str) -> dict:
        from stages.evaluate import main

        main(["--model", str(tmp_path / "clf.pt"), "--data-dir", str(tmp_path / "prepared"),
              "--strategy", "none", "--ratio", "0", "--seed", "0", "--params", str(params),
              "--out", str(tmp_path / "eval.json"), "--plots", str(tmp_path / "plots"), *extra])
        return load_json(tmp_path / "eval.json")

    return tmp_path, run


def synthetic_test(path, n: int) -> str:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8)
    y = np.arange(n) % 10
    empty = (x[:0], y[:0])
    save_prepared(path, Prepared(splits={"train": empty, "val": empty, "test": (x, y)},
                                 classes=[str(d) for d in range(10)], meta={}))
    return str(path)


def test_the_baseline_is_evaluated_without_a_synthetic_test_set(evaluation):
    tmp, run = evaluation
    m = run()
    assert list(m["test"]) == ["digits"]
    assert m["test"]["digits"]["n"] == len(load_prepared(tmp / "prepared/digits.npz").split(
        "test")[1])


def test_only_the_synthetic_test_sets(evaluation):
    tmp, run = evaluation
    # It reads no study.targets (evaluate_baseline_synthetic declares none).
    (tmp / "params.yaml").write_text(yaml.safe_dump({"device": "cpu", "threads": 1,
                                                     "data": {"source": "digits"}}))
    m = run("--synthetic-test", synthetic_test(tmp / "syn.npz", 20), "--only-synthetic-test")
    assert list(m["test"]) == ["synthetic", "mixed"]
    assert m["test"]["synthetic"]["n"] == 20
    assert m["test"]["mixed"]["n"] == 20 + len(load_prepared(tmp / "prepared/digits.npz").split(
        "test")[1])
    assert sorted(p.name for p in (tmp / "plots").iterdir()) == ["mixed.json", "synthetic.json"]


def test_an_empty_synthetic_test_set_writes_an_empty_evaluation(evaluation):
    """generate.test_per_class: 0. The plots directory is a DVC output, so it exists, empty."""
    tmp, run = evaluation
    m = run("--synthetic-test", synthetic_test(tmp / "syn.npz", 0), "--only-synthetic-test")
    assert m["test"] == {} and m["run"] == {"strategy": "none", "ratio": 0.0, "seed": 0}
    assert (tmp / "plots").is_dir() and not any((tmp / "plots").iterdir())


def test_only_synthetic_needs_the_synthetic_test_set(evaluation):
    _, run = evaluation
    with pytest.raises(ValueError, match="--only-synthetic-test needs --synthetic-test"):
        run("--only-synthetic-test")
