"""Turn a raw dataset into the prepared format: seeded stratified splits and scarcity."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ganaug.config import DataConfig, ParamsError, parse
from ganaug.data.base import DATASET_KINDS, SPLITS, Prepared, RawDataset

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
    role = "source" if name == data_cfg.source else "target"
    if role == "source":
        splits, split_info = _source_splits(raw, data_cfg)
    else:
        splits, split_info = _target_splits(raw)
    meta = {
        "name": name,
        "role": role,
        "kind": dataset_cfg.kind,
        "image_shape": list(raw.x.shape[1:]),
        **raw.info,
        **split_info,
        "counts": {s: np.bincount(splits[s][1], minlength=len(raw.classes)).tolist() for s in SPLITS},
    }
    log.info("%s (%s): %s", name, role, {s: len(splits[s][1]) for s in SPLITS})
    return Prepared(splits=splits, classes=list(raw.classes), meta=meta)


def _target_splits(raw: RawDataset) -> tuple[dict, dict]:
    empty = (raw.x[:0], raw.y[:0])
    test = raw.split == "test" if raw.split is not None else np.ones(len(raw.y), bool)
    return ({"train": empty, "val": empty, "test": (raw.x[test], raw.y[test])},
            {"split": "official test split" if raw.split is not None else "all images as test"})


def _source_splits(raw: RawDataset, cfg: DataConfig) -> tuple[dict, dict]:
    rng = np.random.default_rng(cfg.seed)
    if raw.split is not None:
        idx = {s: np.flatnonzero(raw.split == s) for s in SPLITS}
        how = "official"
    else:
        idx = stratified_split(raw.y, cfg.val_fraction, cfg.test_fraction, rng)
        how = f"stratified, seed {cfg.seed}"
    for s in ("train", "test"):
        if len(idx[s]) == 0:
            raise ParamsError(f"data.source: dataset {cfg.source!r} has an empty {s} split")
    available = np.bincount(raw.y[idx["train"]], minlength=len(raw.classes))
    idx["train"] = scarce_subset(raw.y, idx["train"], cfg.real_per_class, cfg.real_fraction, rng)
    info = {
        "split": how,
        "scarcity": {"real_per_class": cfg.real_per_class, "real_fraction": cfg.real_fraction,
                     "train_available": available.tolist()},
    }
    return {s: (raw.x[idx[s]], raw.y[idx[s]]) for s in SPLITS}, info


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


def scarce_subset(y: np.ndarray, idx: np.ndarray, per_class: int | None,
                  fraction: float | None, rng: np.random.Generator) -> np.ndarray:
    """Keep at most ``per_class`` (or ``fraction`` of each class) of ``idx``, chosen at random."""
    if per_class is None and fraction is None:
        return idx
    keep = []
    for c in np.unique(y[idx]):
        members = idx[y[idx] == c]
        n = per_class if per_class is not None else max(1, int(round(len(members) * fraction)))
        if n < len(members):
            members = rng.choice(members, size=n, replace=False)
        keep.append(members)
    return np.sort(np.concatenate(keep))
