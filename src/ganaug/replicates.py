"""Replicates: each study seed is one independent draw of the whole pipeline.

A replicate draws anew every source of variation listed in ``study.vary``:

- ``subset``: its real training images, ``data.real_per_class`` (or ``real_fraction``) per class
  drawn from all of the source's training images (the prepared train split and its reserve) with
  the seed sequence ``(data.seed, SUBSET_STREAM, replicate)``; validation and test splits never
  change. Held fixed, every replicate trains on the prepared train split.
- ``gan``: the synthetic side: the GAN's training run, its pool and synthetic test set, the
  scorer, the scores' and the selections' random draws (each stage's seed + the replicate).
- ``classifier``: the seed of every classifier the replicate trains (the replicate itself; held
  fixed, 0).

The baseline and every mix of one replicate share its real subset and its classifier seed, so
the gain stays a paired difference. A source held fixed is shared by all replicates: a verdict
is then conditional on it (the report says so beside every verdict).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

SOURCES = ("subset", "gan", "classifier")
# The seed-sequence key of a replicate's subset draw, beside data.seed (prepare uses 1 for the
# learning curve's order).
SUBSET_STREAM = 2

__all__ = ["SOURCES", "SUBSET_STREAM", "draw_subset", "held_fixed", "seed_for", "vary_of",
           "with_seed"]


def vary_of(params: dict) -> list[str]:
    """``study.vary`` from a stage's declared params, checked (check_params validates the whole
    section before any stage runs; this guards a stage run by hand)."""
    vary = params["study"]["vary"]
    if not isinstance(vary, list) or any(v not in SOURCES for v in vary):
        from ganaug.errors import ParamsError

        raise ParamsError(f"params.yaml: study.vary: expected a list of {', '.join(SOURCES)}, "
                          f"got {vary!r}")
    return vary


def seed_for(base: int, replicate: int, source: str, vary: Sequence[str]) -> int:
    """The seed a replicate uses where ``base`` is the configured one: ``base + replicate`` when
    ``source`` varies, else ``base``."""
    if source not in SOURCES:
        raise ValueError(f"unknown source of variation {source!r}; expected one of {SOURCES}")
    if replicate < 0:
        raise ValueError(f"replicate must be >= 0, got {replicate}")
    return base + replicate if source in vary else base


def with_seed(cfg: Any, replicate: int, source: str, vary: Sequence[str]) -> Any:
    """``cfg`` (a frozen config with a ``seed``) with the replicate's seed for ``source``."""
    return replace(cfg, seed=seed_for(cfg.seed, replicate, source, vary))


def held_fixed(vary: Sequence[str]) -> list[str]:
    """The sources every replicate shares."""
    return [s for s in SOURCES if s not in vary]


def draw_subset(prepared: Any, data_cfg: Any, replicate: int, vary: Sequence[str]) -> Any:
    """The replicate's copy of a prepared source: its own real train split and the learning
    curve's nested order over the rest (the reserve); val and test as prepared.

    With ``subset`` held fixed (or no scarcity: nothing to draw), the prepared file's train split
    and order are kept as they are.
    """
    from ganaug.data.base import Prepared, Reserve
    from ganaug.data.scarcity import ORDER_STREAM, nested_order, scarce_subset

    fixed = "subset" not in vary or (data_cfg.real_per_class is None
                                     and data_cfg.real_fraction is None)
    info = {"replicate": replicate, "subset": "prepared train split" if fixed else
            f"drawn per class from train + reserve, seed sequence (data.seed, {SUBSET_STREAM}, "
            f"replicate) = ({data_cfg.seed}, {SUBSET_STREAM}, {replicate})"}
    if fixed:
        return replace(prepared, meta={**prepared.meta, "replicate": info})
    if prepared.reserve is None:
        from ganaug.io import DataFileError

        raise DataFileError("the prepared source has no reserve of training images to draw a "
                            "replicate's subset from (prepared by an older version: run prepare "
                            "again)")
    x_train, y_train = prepared.split("train")
    r = prepared.reserve
    x_all, y_all = np.concatenate([x_train, r.x]), np.concatenate([y_train, r.y])
    every = np.arange(len(y_all))
    rng = np.random.default_rng((data_cfg.seed, SUBSET_STREAM, replicate))
    kept = scarce_subset(y_all, every, data_cfg.real_per_class, data_cfg.real_fraction, rng)
    order_rng = np.random.default_rng((data_cfg.seed, ORDER_STREAM, replicate))
    reserve_idx, reserve_rank, train_rank = nested_order(y_all, every, kept, order_rng)
    if prepared.meta.get("groups"):
        info["groups"] = ("ignored: the prepared file keeps no groups, so a replicate's subset "
                          "is drawn image by image, not spread over subjects")
    splits = {**prepared.splits, "train": (x_all[kept], y_all[kept])}
    reserve = Reserve(x=x_all[reserve_idx], y=y_all[reserve_idx], rank=reserve_rank,
                      train_rank=train_rank)
    return Prepared(splits=splits, classes=prepared.classes,
                    meta={**prepared.meta, "replicate": info}, reserve=reserve)
