"""Class handling shared by every dataset kind: renaming, subsetting, and test/train duplicates.

A kind's config inherits :class:`ClassOptions`, so every ``datasets.<name>`` entry accepts:

- ``class_map``: source class name -> canonical name (``{anger: angry, happiness: happy}``);
  applied first, so everything after it (``class_subset``, evaluation's ``align_to_source``, which
  matches target classes to source classes by name) sees canonical names. Two source classes mapped
  to one name are merged.
- ``class_subset``: canonical names to keep, in this order; labels are re-indexed ``0..k-1``.
- ``drop_test_duplicates``: remove val/test images that are exact pixel copies of a train image.
"""

from __future__ import annotations

import logging
from dataclasses import field, replace
from typing import Any

import numpy as np
from pydantic.dataclasses import dataclass

from ganaug.data.base import RawDataset
from ganaug.errors import ParamsError
from ganaug.io import DataFileError
from ganaug.params import STRICT

log = logging.getLogger(__name__)


@dataclass(config=STRICT, frozen=True, kw_only=True)
class ClassOptions:
    """Fields every dataset kind accepts (keyword-only, so kinds may add required fields)."""

    class_map: dict[str, str] = field(default_factory=dict)
    class_subset: list[str] | None = None
    drop_test_duplicates: bool = False

    def __post_init__(self) -> None:
        if self.class_subset is not None:
            if not self.class_subset:
                raise ValueError("class_subset: list at least one class, or null for all")
            if len(set(self.class_subset)) != len(self.class_subset):
                raise ValueError(f"class_subset: duplicate class names in {self.class_subset}")


def apply_class_options(raw: RawDataset, cfg: Any, where: str) -> RawDataset:
    """Apply ``cfg.class_map`` then ``cfg.class_subset`` (either may be absent on ``cfg``).

    ``where`` names the params entry (``datasets.fer``) in errors; the dataset's path, when the
    loader recorded one in ``raw.info["path"]``, is named too.
    """
    class_map = getattr(cfg, "class_map", None) or {}
    subset = getattr(cfg, "class_subset", None)
    if class_map:
        raw = map_classes(raw, class_map, where)
    if subset is not None:
        raw = subset_classes(raw, subset, where)
    return raw


def map_classes(raw: RawDataset, class_map: dict[str, str], where: str) -> RawDataset:
    """Rename classes; classes mapped onto one name are merged (first appearance sets the order)."""
    unknown = [k for k in class_map if k not in raw.classes]
    if unknown:
        raise ParamsError(
            f"params.yaml: {where}.class_map: unknown source class(es) {unknown}{_in(raw)}; "
            f"available: {', '.join(raw.classes)}"
        )
    mapped = [class_map.get(c, c) for c in raw.classes]
    classes = list(dict.fromkeys(mapped))  # unique, first-appearance order
    remap = np.array([classes.index(m) for m in mapped], dtype=np.int64)
    merged = {c: [s for s, m in zip(raw.classes, mapped, strict=True) if m == c]
              for c in classes if mapped.count(c) > 1}
    if merged:
        log.warning("%s: class_map merges classes %s", where, merged)
    info = {**raw.info, "class_map": dict(class_map), "source_classes": list(raw.classes)}
    if merged:
        info["merged_classes"] = merged
    return replace(raw, y=remap[raw.y], classes=classes, info=info)


def subset_classes(raw: RawDataset, subset: list[str], where: str) -> RawDataset:
    """Keep images of the listed classes; labels become indices into ``subset``."""
    unknown = [c for c in subset if c not in raw.classes]
    if unknown:
        raise ParamsError(
            f"params.yaml: {where}.class_subset: unknown class(es) {unknown}{_in(raw)}; "
            f"available: {', '.join(raw.classes)}"
        )
    remap = np.full(len(raw.classes), -1, dtype=np.int64)
    for new, name in enumerate(subset):
        remap[raw.classes.index(name)] = new
    y = remap[raw.y]
    keep = y >= 0
    split = raw.split[keep] if raw.split is not None else None
    groups = raw.groups[keep] if raw.groups is not None else None
    info = {**raw.info, "class_subset": list(subset),
            "dropped_by_class_subset": int((~keep).sum())}
    return RawDataset(x=raw.x[keep], y=y[keep], classes=list(subset), split=split, info=info,
                      groups=groups)


def _in(raw: RawDataset) -> str:
    return f" in {raw.info['path']}" if "path" in raw.info else ""


# ------------------------------------------------------------------------------------------
# Exact duplicates between splits
# ------------------------------------------------------------------------------------------


def row_keys(x: np.ndarray) -> np.ndarray:
    """One opaque key per image: the image's bytes as a numpy void scalar, ``(N,)``.

    Equal keys <=> bit-identical images (no hashing, so no collisions); comparing keys with
    ``np.isin`` is a vectorised sort, not a Python loop.
    """
    flat = np.ascontiguousarray(x).reshape(len(x), -1)
    return flat.view(np.dtype((np.void, flat.shape[1] * flat.itemsize))).ravel()


def duplicates_of(x_ref: np.ndarray, x_query: np.ndarray) -> np.ndarray:
    """Bool ``(len(x_query),)``: True where a query image equals some reference image bit for bit.

    Both are uint8 ``(N, C, H, W)`` of the same image shape.
    """
    if len(x_ref) == 0 or len(x_query) == 0:
        return np.zeros(len(x_query), dtype=bool)
    if x_ref.shape[1:] != x_query.shape[1:]:
        raise DataFileError(f"cannot compare images of shapes {x_ref.shape[1:]} and {x_query.shape[1:]}")
    ref = np.unique(row_keys(x_ref))
    query = row_keys(x_query)
    pos = np.searchsorted(ref, query).clip(max=len(ref) - 1)
    return ref[pos] == query


def drop_duplicate_indices(x: np.ndarray, idx: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """Remove from ``idx["val"]``/``idx["test"]`` the images that duplicate an ``idx["train"]`` image.

    ``idx`` maps split -> indices into ``x``. Returns the new indices and the count dropped per split.
    """
    out, dropped = dict(idx), {}
    for s in ("val", "test"):
        dup = duplicates_of(x[idx["train"]], x[idx[s]])
        out[s] = idx[s][~dup]
        dropped[s] = int(dup.sum())
    return out, dropped
