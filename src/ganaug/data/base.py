"""The prepared-dataset format every stage reads, and the registry of dataset kinds.

A prepared dataset is one compressed npz:

- ``x_train``, ``x_val``, ``x_test``: uint8 images ``(N, C, H, W)`` in [0, 255]
- ``y_train``, ``y_val``, ``y_test``: int64 labels in ``[0, len(classes))``
- ``classes``: str ``(K,)``
- ``meta``: a JSON string (where it came from, how it was split, counts)

A target dataset (used only for cross-dataset evaluation) has empty train and val splits.

A source also keeps the training images that scarcity (``data.real_per_class``) left out, so the
real-only learning curve can train on more real images than the study does:

- ``x_reserve``, ``y_reserve``: those images and labels
- ``rank_train``, ``rank_reserve``: int64, each image's position in its class's seeded order

Ranks run over the train split first (0 .. n_c - 1 for a class with n_c training images), then
the reserve, so the first ``n`` of a class (:meth:`Prepared.nested_subset`) are nested in ``n``
(10 is inside 20 is inside 40) and ``n = real_per_class`` is exactly the train split.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganaug.io import DataFileError, load_npz, save_npz
from ganaug.registry import Registry

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class RawDataset:
    """What a loader returns before splitting: all images, labels, and optional official splits.

    ``split`` is None (the pipeline splits with a seed) or a str array of "train"/"val"/"test"
    per image (an official split, kept as is).

    ``groups`` is None or a str array naming each image's group (a subject or a sequence): images
    of one group are near-copies of each other, so a seeded split never puts one group in two
    splits, or the test set would hold frames of sequences the classifier trained on.
    """

    x: np.ndarray  # (N, C, H, W) uint8
    y: np.ndarray  # (N,) int64
    classes: list[str]
    split: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    groups: np.ndarray | None = None  # (N,) str

    def __post_init__(self) -> None:
        check_images(self.x, self.y, len(self.classes), "loaded dataset")
        for name in ("split", "groups"):
            a = getattr(self, name)
            if a is not None and a.shape != self.y.shape:
                raise DataFileError(f"loaded dataset: {len(self.y)} images but {name} of shape "
                                    f"{a.shape}")


@dataclass(frozen=True)
class Reserve:
    """A source's training images beyond the scarce train split, and the seeded per-class order
    of all its training images (see the module docstring)."""

    x: np.ndarray  # (R, C, H, W) uint8
    y: np.ndarray  # (R,) int64
    rank: np.ndarray  # (R,) int64, rank of each reserve image within its class
    train_rank: np.ndarray  # (N_train,) int64, aligned with the train split


@dataclass(frozen=True)
class Prepared:
    """A prepared dataset in memory (see the module docstring for the file format)."""

    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    classes: list[str]
    meta: dict[str, Any]
    # None for a target, and for a source prepared before the reserve existed.
    reserve: Reserve | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        for x, _ in self.splits.values():
            if len(x):
                return tuple(x.shape[1:])  # type: ignore[return-value]
        raise ValueError("prepared dataset has no images")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return self.splits[name]

    def class_counts(self, name: str) -> np.ndarray:
        return np.bincount(self.splits[name][1], minlength=self.num_classes)

    def nested_subset(self, per_class: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``per_class`` real training images of every class in the seeded order:
        train images first (in the train split's order), then reserve ones.

        A class with fewer training images than ``per_class`` (train + reserve) is an error:
        capping it would put a smaller class at a size it does not have on the learning curve.
        """
        if self.reserve is None:
            raise DataFileError("this prepared dataset has no reserve of training images (a "
                                "target, or prepared by an older version: run prepare again)")
        available = self.class_counts("train") + np.bincount(self.reserve.y,
                                                             minlength=self.num_classes)
        short = [f"{self.classes[c]!r} has {available[c]}" for c in range(self.num_classes)
                 if available[c] < per_class]
        if short:
            raise ValueError(f"{per_class} real images per class asked, but "
                             f"{', '.join(short)} training images")
        x_train, y_train = self.split("train")
        keep, keep_r = self.reserve.train_rank < per_class, self.reserve.rank < per_class
        return (np.concatenate([x_train[keep], self.reserve.x[keep_r]]),
                np.concatenate([y_train[keep], self.reserve.y[keep_r]]))


def check_images(x: np.ndarray, y: np.ndarray, num_classes: int, where: str) -> None:
    if x.dtype != np.uint8 or x.ndim != 4:
        raise DataFileError(f"{where}: images must be uint8 (N, C, H, W), got {x.dtype} {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise DataFileError(f"{where}: {len(x)} images but labels of shape {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise DataFileError(
            f"{where}: labels must lie in [0, {num_classes}), got [{y.min()}, {y.max()}]"
        )


def save_prepared(path: str | Path, prepared: Prepared) -> None:
    arrays: dict[str, np.ndarray] = {}
    for name in SPLITS:
        x, y = prepared.splits[name]
        arrays[f"x_{name}"] = np.ascontiguousarray(x, dtype=np.uint8)
        arrays[f"y_{name}"] = np.asarray(y, dtype=np.int64)
    arrays["classes"] = np.asarray(prepared.classes, dtype=str)
    arrays["meta"] = np.asarray(json.dumps(prepared.meta, sort_keys=True))
    if prepared.reserve is not None:
        r = prepared.reserve
        arrays.update(x_reserve=np.ascontiguousarray(r.x, dtype=np.uint8),
                      y_reserve=np.asarray(r.y, dtype=np.int64),
                      rank_reserve=np.asarray(r.rank, dtype=np.int64),
                      rank_train=np.asarray(r.train_rank, dtype=np.int64))
    save_npz(path, **arrays)


def load_prepared(path: str | Path) -> Prepared:
    """Read a prepared npz, checking shapes, dtypes and label range; errors name the file."""
    required = tuple(f"{p}_{s}" for s in SPLITS for p in ("x", "y")) + ("classes", "meta")
    arrays = load_npz(path, required)
    classes = [str(c) for c in arrays["classes"]]
    splits = {}
    for name in SPLITS:
        x, y = arrays[f"x_{name}"], arrays[f"y_{name}"].astype(np.int64)
        check_images(x, y, len(classes), f"{path} ({name} split)")
        splits[name] = (x, y)
    try:
        meta = json.loads(str(arrays["meta"]))
    except json.JSONDecodeError as exc:
        raise DataFileError(f"{path}: meta is not valid JSON ({exc})") from exc
    reserve = _load_reserve(path, arrays, splits["train"][1], len(classes))
    return Prepared(splits=splits, classes=classes, meta=meta, reserve=reserve)


RESERVE_ARRAYS = ("x_reserve", "y_reserve", "rank_reserve", "rank_train")


def _load_reserve(path: str | Path, arrays: dict[str, np.ndarray], y_train: np.ndarray,
                  num_classes: int) -> Reserve | None:
    """The reserve arrays, checked: within each class, train and reserve ranks together must be
    0, 1, ..., n - 1 (otherwise nested subsets would overlap or skip images)."""
    present = [k for k in RESERVE_ARRAYS if k in arrays]
    if not present:
        return None
    if len(present) != len(RESERVE_ARRAYS):
        raise DataFileError(f"{path}: has {present} but not all of {list(RESERVE_ARRAYS)}")
    x, y = arrays["x_reserve"], arrays["y_reserve"].astype(np.int64)
    check_images(x, y, num_classes, f"{path} (reserve)")
    rank, train_rank = arrays["rank_reserve"].astype(np.int64), arrays["rank_train"].astype(np.int64)
    if rank.shape != y.shape or train_rank.shape != y_train.shape:
        raise DataFileError(f"{path}: rank arrays {rank.shape}, {train_rank.shape} do not match "
                            f"the reserve {y.shape} and train {y_train.shape} labels")
    labels, ranks = np.concatenate([y_train, y]), np.concatenate([train_rank, rank])
    for c in np.unique(labels):
        if not np.array_equal(np.sort(ranks[labels == c]), np.arange((labels == c).sum())):
            raise DataFileError(f"{path}: the ranks of class {c} are not 0..n-1")
    return Reserve(x=x, y=y, rank=rank, train_rank=train_rank)


# ------------------------------------------------------------------------------------------
# Registry of dataset kinds: params `datasets.<name>.kind` picks one. Built in: the modules that
# ganaug.data.prepare imports; from another package: an entry point of the group
# ganaug.dataset_kinds naming a loader decorated with @dataset_kind(Config).
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetKind:
    config_cls: type
    load: Callable[[Any], RawDataset]


def check_dataset_kind(kind: str, obj: Any) -> DatasetKind:
    """What a registered dataset kind must be (built-in or plugin): a :class:`DatasetKind` (what
    :func:`dataset_kind` makes) whose config is a dataclass with a ``kind`` field."""
    from ganaug.params import check_name

    check_name("the dataset kind", kind)
    if not isinstance(obj, DatasetKind):
        raise ValueError(f"is {obj!r}, not a ganaug.data.base.DatasetKind: decorate its loader "
                         f"with @ganaug.data.base.dataset_kind(ConfigClass)")
    cls = obj.config_cls
    if not (isinstance(cls, type) and is_dataclass(cls)
            and "kind" in {f.name for f in fields(cls)}):
        raise ValueError(f"its config must be a dataclass with a `kind` field (datasets.<name>."
                         f"kind), got {cls!r}")
    if not callable(obj.load):
        raise ValueError(f"its loader is not callable: {obj.load!r}")
    return obj


DATASET_KINDS: Registry[DatasetKind] = Registry(
    "dataset kind", group="ganaug.dataset_kinds", builtins="ganaug.data.prepare",
    check=check_dataset_kind)


def dataset_kind(config_cls: type) -> Callable[[Callable[[Any], RawDataset]], DatasetKind]:
    """``@dataset_kind(MyConfig)`` on ``load(cfg) -> RawDataset``: the kind, not registered (a
    plugin's entry point names it; the entry point's name is the kind)."""
    def deco(fn: Callable[[Any], RawDataset]) -> DatasetKind:
        return DatasetKind(config_cls, fn)

    return deco


def register_dataset(kind: str, config_cls: type) -> Callable:
    """``@register_dataset("npz", NpzConfig)`` on a built-in kind's loader."""
    def deco(fn: Callable[[Any], RawDataset]) -> Callable[[Any], RawDataset]:
        DATASET_KINDS.register(kind)(dataset_kind(config_cls)(fn))
        return fn

    return deco
