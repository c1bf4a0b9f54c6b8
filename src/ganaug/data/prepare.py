"""Turn a raw dataset into the prepared format: class options, seeded splits, scarcity.

Order of work: load -> ``class_map`` and ``class_subset`` (see :mod:`ganaug.data.classes`) ->
split (official, or stratified with a seed; an official split without val gets a stratified val
carved from its train) -> ``drop_test_duplicates`` -> scarcity (source only). Duplicates are
dropped before scarcity so the test set does not change with ``data.real_per_class``.

When the loader names a group per image (a subject or a sequence, ``RawDataset.groups``), every
seeded split is group-aware: whole groups go to one split (:func:`group_split`), and scarcity draws
its images from as many groups as it can (:func:`scarce_subset`). An official split is kept as is;
groups it puts in several splits are counted in the meta (``groups.straddling``) and logged.

Scarcity keeps what it leaves out: the source's other training images go into a reserve, and all
its training images get a seeded order per class (train split first), so the real-only learning
curve trains on nested subsets of real images (see :mod:`ganaug.data.base`).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import numpy as np

from ganaug.configs.data import DataConfig

# Importing a kind's module registers it in DATASET_KINDS.
from ganaug.data import bundled as _bundled  # noqa: F401
from ganaug.data import fer2013_csv as _fer2013_csv  # noqa: F401
from ganaug.data import image_folder as _image_folder  # noqa: F401
from ganaug.data import npz as _npz  # noqa: F401
from ganaug.data import torchvision_datasets as _torchvision_datasets  # noqa: F401
from ganaug.data.base import DATASET_KINDS, SPLITS, Prepared, RawDataset, Reserve
from ganaug.data.classes import apply_class_options, drop_duplicate_indices
from ganaug.data.scarcity import ORDER_STREAM, nested_order, scarce_subset
from ganaug.errors import ParamsError
from ganaug.params import parse

__all__ = ["DATASET_KINDS", "parse_dataset_config", "prepare", "scarce_subset",
           "stratified_split"]

log = logging.getLogger(__name__)


def parse_dataset_config(name: str, value: Any) -> Any:
    """Validate ``datasets.<name>`` into the config class its ``kind`` names."""
    key = f"datasets.{name}"
    if not isinstance(value, dict) or "kind" not in value:
        raise ParamsError(f"params.yaml: {key}: expected a mapping with a 'kind' key")
    kind = value["kind"]
    if kind not in DATASET_KINDS:
        raise ParamsError(
            f"params.yaml: {key}.kind: unknown dataset kind {kind!r}; "
            f"known: {', '.join(sorted(DATASET_KINDS))}"
        )
    return parse(DATASET_KINDS[kind].config_cls, value, key)


def prepare(name: str, dataset_cfg: Any, data_cfg: DataConfig) -> Prepared:
    """Load dataset ``name`` and split it; the source also gets its scarcity applied.

    A target (any dataset that is not ``data.source``) keeps only its test split: its official
    test split when it has one, otherwise every image.
    """
    raw = DATASET_KINDS[dataset_cfg.kind].load(dataset_cfg)
    raw = apply_class_options(raw, dataset_cfg, f"datasets.{name}")
    dedup = bool(getattr(dataset_cfg, "drop_test_duplicates", False))
    role = "source" if name == data_cfg.source else "target"
    reserve = None
    if role == "source":
        idx, split_info, reserve = _source_splits(raw, data_cfg, dedup)
    else:
        idx, split_info = _target_splits(raw, dedup)
    splits = {s: (raw.x[idx[s]], raw.y[idx[s]]) for s in SPLITS}
    meta = {
        "name": name,
        "role": role,
        "kind": dataset_cfg.kind,
        "image_shape": list(raw.x.shape[1:]),
        **raw.info,
        **split_info,
        **_group_info(raw.groups, idx),
        "counts": {s: np.bincount(splits[s][1], minlength=len(raw.classes)).tolist() for s in SPLITS},
    }
    log.info("%s (%s): %s", name, role, {s: len(splits[s][1]) for s in SPLITS})
    return Prepared(splits=splits, classes=list(raw.classes), meta=meta, reserve=reserve)


def _target_splits(raw: RawDataset, dedup: bool = False) -> tuple[dict, dict]:
    """A target keeps its official test split (all images when it has none), nothing else.

    Returns indices into ``raw`` per split, and what was done.
    """
    if raw.split is None:
        test, info = np.arange(len(raw.y)), {"split": "all images as test"}
    else:
        test, info = np.flatnonzero(raw.split == "test"), {"split": "official test split"}
        if dedup:
            idx, dropped = drop_duplicate_indices(
                raw.x, {"train": np.flatnonzero(raw.split == "train"), "val": test[:0], "test": test})
            test, info["test_duplicates_dropped"] = idx["test"], dropped
    return {"train": test[:0], "val": test[:0], "test": test}, info


def _source_splits(raw: RawDataset, cfg: DataConfig,
                   dedup: bool = False) -> tuple[dict, dict, Reserve]:
    """Seeded (or official) train/val/test, then scarcity: indices into ``raw`` per split, what
    was done, and the reserve of training images scarcity left out."""
    rng = np.random.default_rng(cfg.seed)
    info: dict[str, Any] = {}
    groups = raw.groups
    by = "stratified" if groups is None else "stratified by class, whole groups"
    if raw.split is not None:
        idx = {s: np.flatnonzero(raw.split == s) for s in SPLITS}
        how = "official"
        if len(idx["val"]) == 0 and len(idx["train"]):
            idx = _carve_val(raw.y, idx, cfg.val_fraction, rng, groups)
            how = f"official; val carved from train ({by}, val_fraction, seed {cfg.seed})"
    elif groups is None:
        idx = stratified_split(raw.y, cfg.val_fraction, cfg.test_fraction, rng)
        how = f"stratified, seed {cfg.seed}"
    else:
        idx = group_split(raw.y, groups, cfg.val_fraction, cfg.test_fraction, rng)
        how = f"{by}, seed {cfg.seed}"
    for s in ("train", "test"):
        if len(idx[s]) == 0:
            hint = "" if groups is None else (
                f" ({len(np.unique(groups))} groups, and a group never straddles two splits)")
            raise ParamsError(f"data.source: dataset {cfg.source!r} has an empty {s} split{hint}")
    if dedup:
        idx, info["test_duplicates_dropped"] = drop_duplicate_indices(raw.x, idx)
        log.info("dropped val/test images duplicating a train image: %s",
                 info["test_duplicates_dropped"])
    available = np.bincount(raw.y[idx["train"]], minlength=len(raw.classes))
    every_train = idx["train"]
    idx["train"] = scarce_subset(raw.y, every_train, cfg.real_per_class, cfg.real_fraction, rng,
                                 groups)
    idx["val"] = scarce_subset(raw.y, idx["val"], cfg.val_per_class, None, rng, groups)
    # Its own stream, so the train and val draws above stay what they were before the reserve.
    order_rng = np.random.default_rng((cfg.seed, ORDER_STREAM))
    reserve_idx, reserve_rank, train_rank = nested_order(raw.y, every_train, idx["train"],
                                                         order_rng)
    info = {
        **info,
        "split": how,
        "scarcity": {"real_per_class": cfg.real_per_class, "real_fraction": cfg.real_fraction,
                     "val_per_class": cfg.val_per_class,
                     "train_available": available.tolist(),
                     "reserve": np.bincount(raw.y[reserve_idx],
                                            minlength=len(raw.classes)).tolist(),
                     "order": f"seeded per class ((data.seed, {ORDER_STREAM}) = "
                              f"({cfg.seed}, {ORDER_STREAM})): train split, then reserve"},
    }
    reserve = Reserve(x=raw.x[reserve_idx], y=raw.y[reserve_idx], rank=reserve_rank,
                      train_rank=train_rank)
    return idx, info, reserve


def _group_info(groups: np.ndarray | None, idx: dict[str, np.ndarray]) -> dict[str, Any]:
    """Meta ``groups``: distinct groups per final split, and how many lie in more than one."""
    if groups is None:
        return {}
    per_split = {s: set(groups[idx[s]].tolist()) for s in SPLITS}
    seen = Counter(g for members in per_split.values() for g in members)
    straddling = sum(n > 1 for n in seen.values())
    if straddling:
        log.warning("%d groups have images in more than one split (an official split keeps them)",
                    straddling)
    return {"groups": {**{s: len(per_split[s]) for s in SPLITS}, "straddling": straddling}}


def _carve_val(y: np.ndarray, idx: dict[str, np.ndarray], val_fraction: float,
               rng: np.random.Generator, groups: np.ndarray | None = None
               ) -> dict[str, np.ndarray]:
    """Move a stratified ``val_fraction`` of the official train split into val (whole groups)."""
    train = idx["train"]
    if groups is None:
        parts = stratified_split(y[train], val_fraction, 0.0, rng)
    else:
        parts = group_split(y[train], groups[train], val_fraction, 0.0, rng)
    return {**idx, "train": train[parts["train"]], "val": train[parts["val"]]}


def stratified_split(y: np.ndarray, val_fraction: float, test_fraction: float,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Split indices per class so each split keeps the class proportions (each sorted)."""
    out: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        n_test = int(round(len(members) * test_fraction))
        n_val = int(round(len(members) * val_fraction))
        out["test"].append(members[:n_test])
        out["val"].append(members[n_test: n_test + n_val])
        out["train"].append(members[n_test + n_val:])
    return {s: np.sort(np.concatenate(parts)) for s, parts in out.items()}


def group_split(y: np.ndarray, groups: np.ndarray, val_fraction: float, test_fraction: float,
                rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Split indices so that each group lies in exactly one split, class proportions kept as far
    as whole groups allow (each split's indices sorted).

    Greedy, largest group first (equal sizes in seeded random order): a group goes to the split
    whose per-class counts it brings closest to their targets (``fraction * class total``), the
    distance being the sum over classes of squared relative shortfall or excess, so a rare class
    weighs as much as a common one. Splits with fraction 0 get nothing. A group holding several
    classes (a subject photographed in each expression) counts toward each of them.
    """
    keys, inv = np.unique(groups, return_inverse=True)
    counts = np.zeros((len(keys), int(y.max()) + 1 if len(y) else 0))  # (G, K)
    np.add.at(counts, (inv, y), 1)
    fractions = np.array([1.0 - val_fraction - test_fraction, val_fraction, test_fraction])
    open_splits = np.flatnonzero(fractions > 0)
    target = fractions[:, None] * counts.sum(0)[None, :]  # (3, K)
    weight = 1.0 / np.maximum(counts.sum(0), 1) ** 2  # (K,)
    have = np.zeros_like(target)
    order = rng.permutation(len(keys))
    order = order[np.argsort(-counts.sum(1)[order], kind="stable")]
    assign = np.empty(len(keys), dtype=np.int64)
    for g in order:
        v = counts[g]
        # Change of sum_c w_c (have_sc - target_sc)^2 when v is added to split s.
        delta = ((2.0 * (have[open_splits] - target[open_splits]) + v) * v * weight).sum(1)
        s = open_splits[int(np.argmin(delta))]
        have[s] += v
        assign[g] = s
    split_of = assign[inv]  # (N,)
    return {name: np.flatnonzero(split_of == k) for k, name in enumerate(SPLITS)}
