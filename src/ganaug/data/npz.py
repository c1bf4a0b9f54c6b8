"""``npz``: images and labels from any ``.npz`` file, one or more (images, labels) array pairs.

Each entry of ``parts`` names an images array and a labels array, and says which split its images
belong to: a fixed ``split``, a per-image ``split_by`` string array mapped through ``split_map``,
or neither (then no part may have one, and ``data.*`` splits with a seed). Images may be
``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)``, uint8 or float in [0, 1]. Class names come
from a string array in the file (``classes_array``) or from ``classes`` in params.

The benchmark file ``fer2013.npz`` (x_train, y_train, x_test, y_test, test_split, classes) with
PublicTest as val and PrivateTest as test::

    kind: npz
    path: ../shared/data/fer2013.npz
    parts:
      - {x: x_train, y: y_train, split: train}
      - {x: x_test, y: y_test, split_by: test_split,
         split_map: {PublicTest: val, PrivateTest: test}}
"""

from __future__ import annotations

from dataclasses import field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.dataclasses import dataclass

from ganaug.data.arrays import Layout, to_labels, to_nchw_uint8
from ganaug.data.base import RawDataset, register_dataset
from ganaug.data.classes import ClassOptions
from ganaug.io import DataFileError, load_npz
from ganaug.params import STRICT

SplitName = Literal["train", "val", "test", "drop"]


class NpzPart(BaseModel):
    """One (images, labels) pair of arrays in the file, and the split its images belong to."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    x: str
    y: str
    split: SplitName | None = None
    # Name of a str array (N,) in the file, one value per image, mapped to splits by split_map.
    split_by: str | None = None
    split_map: dict[str, SplitName] | None = None

    @model_validator(mode="after")
    def _one_way_to_split(self) -> NpzPart:
        if self.split is not None and self.split_by is not None:
            raise ValueError("set split or split_by, not both")
        if (self.split_by is None) != (self.split_map is None):
            raise ValueError("split_by and split_map go together")
        return self


@dataclass(config=STRICT, frozen=True)
class NpzConfig(ClassOptions):
    kind: Literal["npz"]
    path: str
    parts: list[NpzPart] = field(default_factory=lambda: [NpzPart(x="x", y="y")])
    # Class names: this str array of the file, else `classes` below (both: they must agree).
    classes_array: str = "classes"
    classes: list[str] | None = None
    layout: Layout = "auto"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.parts:
            raise ValueError("parts: list at least one {x: ..., y: ...} pair")
        with_split = [p.split is not None or p.split_by is not None for p in self.parts]
        if any(with_split) and not all(with_split):
            raise ValueError("parts: give every part a split (split or split_by), or none of them")


@register_dataset("npz", NpzConfig)
def load_npz_dataset(cfg: NpzConfig) -> RawDataset:
    path = Path(cfg.path)
    if not path.is_file():
        raise DataFileError(f"{path}: npz file not found; put it at this path (the dataset's "
                            f"`path` in params.yaml)")
    needed = tuple(dict.fromkeys(n for p in cfg.parts for n in (p.x, p.y, p.split_by) if n))
    arrays = load_npz(path, needed)
    classes = _classes(arrays, cfg, path)
    xs, ys, splits, info = [], [], [], {}
    for part in cfg.parts:
        x, part_info = to_nchw_uint8(arrays[part.x], cfg.layout, f"{path}: {part.x}")
        y = to_labels(arrays[part.y], len(classes), f"{path}: {part.y}")
        if len(x) != len(y):
            raise DataFileError(f"{path}: {part.x} holds {len(x)} images but {part.y} "
                                f"{len(y)} labels")
        xs.append(x)
        ys.append(y)
        splits.append(_part_split(arrays, part, len(y), path))
        info[part.x] = part_info
    _same_image_shape(xs, cfg, path)
    x, y = np.concatenate(xs), np.concatenate(ys)
    split = np.concatenate(splits) if splits[0] is not None else None
    meta = {"origin": "npz", "path": str(path), "arrays": info}
    if split is not None and (split == "drop").any():
        keep = split != "drop"
        meta["dropped_images"] = int((~keep).sum())
        x, y, split = x[keep], y[keep], split[keep]
    return RawDataset(x=x, y=y, classes=classes, split=split, info=meta)


def _classes(arrays: dict[str, np.ndarray], cfg: NpzConfig, path: Path) -> list[str]:
    in_file = arrays.get(cfg.classes_array)
    from_file = [str(c) for c in in_file.ravel()] if in_file is not None else None
    if from_file is not None and cfg.classes is not None and from_file != cfg.classes:
        raise DataFileError(f"{path}: its {cfg.classes_array!r} array {from_file} differs from "
                            f"`classes` {cfg.classes} in params (rename classes with class_map)")
    classes = from_file if from_file is not None else cfg.classes
    if classes is None:
        raise DataFileError(f"{path}: no class names: the file has no {cfg.classes_array!r} array "
                            f"(it holds {sorted(arrays)}); set `classes` in params")
    return classes


def _part_split(arrays: dict[str, np.ndarray], part: NpzPart, n: int,
                path: Path) -> np.ndarray | None:
    if part.split is not None:
        return np.full(n, part.split)
    if part.split_by is None:
        return None
    values = arrays[part.split_by].astype(str).ravel()
    if len(values) != n:
        raise DataFileError(f"{path}: {part.split_by} has {len(values)} entries for {n} images")
    assert part.split_map is not None  # the config checks that they come together
    unknown = sorted(set(np.unique(values).tolist()) - set(part.split_map))
    if unknown:
        i = int(np.flatnonzero(values == unknown[0])[0])
        raise DataFileError(f"{path}: {part.split_by}[{i}] is {unknown[0]!r}, not in split_map "
                            f"{sorted(part.split_map)}; unmapped values: {unknown}")
    lookup = np.asarray(sorted(part.split_map))
    targets = np.asarray([part.split_map[k] for k in lookup])
    return targets[np.searchsorted(lookup, values)]


def _same_image_shape(xs: list[np.ndarray], cfg: NpzConfig, path: Path) -> None:
    shapes = {p.x: x.shape[1:] for p, x in zip(cfg.parts, xs, strict=True)}
    if len(set(shapes.values())) > 1:
        raise DataFileError(f"{path}: parts hold images of different shapes {shapes}")
