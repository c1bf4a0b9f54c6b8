"""Selection strategies: which pool images join the real training set.

Each strategy is a pure function ``(scores, k, cfg) -> pool indices`` over the score table (one row
per pool image: ``index``, ``label``, ``confidence``, ``predicted``, ``realism``) and ``k``, the
number of images wanted per class. It may return fewer than ``k[c]`` for a class (never more);
the shortfall is reported by :func:`selection_stats`, never padded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ganaug.registry import Registry

Strategy = Callable[[pd.DataFrame, np.ndarray, Any], np.ndarray]
STRATEGIES: Registry[Strategy] = Registry("selection strategy")


def k_per_class(real_counts: np.ndarray, ratio: float) -> np.ndarray:
    """K_c = ratio x (real images of class c), rounded half up."""
    if ratio < 0:
        raise ValueError(f"ratio must be >= 0, got {ratio}")
    # Rounded to 9 decimals first so that decimal halves (0.7 x 45 = 31.499999999999996 in binary)
    # round up as written.
    product = np.round(ratio * np.asarray(real_counts, np.float64), 9)
    return np.floor(product + 0.5).astype(np.int64)


def check_pool_capacity(scores: pd.DataFrame, k: np.ndarray, ratio: float,
                        classes: list[str]) -> None:
    """A K larger than the pool holds for a class is an error that says what to change."""
    available = np.bincount(scores["label"].to_numpy(), minlength=len(k))
    for c, (want, have) in enumerate(zip(k, available, strict=True)):
        if want > have:
            raise ValueError(
                f"ratio {ratio}: class {classes[c]!r} needs K={want} synthetic images but the pool "
                f"holds {have}; raise generate.max_ratio (or generate.pool_multiplier) to at least "
                f"cover ratio {ratio}"
            )


def _per_class(scores: pd.DataFrame, k: np.ndarray,
               pick: Callable[[pd.DataFrame, int, int], np.ndarray]) -> np.ndarray:
    chosen = [pick(scores[scores["label"] == c], int(kc), c) for c, kc in enumerate(k) if kc > 0]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)


def _top(rows: pd.DataFrame, column: str, n: int) -> np.ndarray:
    # Stable sort on (-score, index): ties go to the lower pool index, so results are reproducible.
    order = np.lexsort((rows["index"].to_numpy(), -rows[column].to_numpy()))
    return rows["index"].to_numpy()[order[:n]]


@STRATEGIES.register("random")
def select_random(scores: pd.DataFrame, k: np.ndarray, cfg: Any) -> np.ndarray:
    """K images per class uniformly at random (the unscored control)."""
    rng = np.random.default_rng(cfg.seed)
    return _per_class(scores, k, lambda rows, n, c: rng.choice(rows["index"].to_numpy(), n,
                                                                replace=False))


@STRATEGIES.register("confidence")
def select_confidence(scores: pd.DataFrame, k: np.ndarray, cfg: Any) -> np.ndarray:
    """Top-K per class by the scorer's probability of the intended label (cl-sam)."""
    def pick(rows: pd.DataFrame, n: int, c: int) -> np.ndarray:
        if cfg.require_correct:
            rows = rows[rows["predicted"] == c]
        return _top(rows, "confidence", n)

    return _per_class(scores, k, pick)


@STRATEGIES.register("realism")
def select_realism(scores: pd.DataFrame, k: np.ndarray, cfg: Any) -> np.ndarray:
    """Top-K per class by the discriminator's realism score (cr-sam)."""
    def pick(rows: pd.DataFrame, n: int, c: int) -> np.ndarray:
        if cfg.require_correct:
            rows = rows[rows["predicted"] == c]
        return _top(rows, "realism", n)

    return _per_class(scores, k, pick)


@STRATEGIES.register("threshold")
def select_threshold(scores: pd.DataFrame, k: np.ndarray, cfg: Any) -> np.ndarray:
    """Images with confidence >= t, at most K per class, chosen at random among those passing."""
    rng = np.random.default_rng(cfg.seed)

    def pick(rows: pd.DataFrame, n: int, c: int) -> np.ndarray:
        passing = rows["index"].to_numpy()[rows["confidence"].to_numpy() >= cfg.min_confidence]
        return rng.choice(passing, min(n, len(passing)), replace=False)

    return _per_class(scores, k, pick)


def selection_stats(scores: pd.DataFrame, chosen: np.ndarray, k: np.ndarray,
                    classes: list[str]) -> dict[str, Any]:
    """Counts against K per class, and mean scores of the chosen images."""
    sel = scores.set_index("index").loc[chosen]
    per_class = {}
    for c, name in enumerate(classes):
        rows = sel[sel["label"] == c]
        per_class[name] = {
            "k": int(k[c]), "chosen": int(len(rows)), "shortfall": int(k[c] - len(rows)),
            "mean_confidence": _mean(rows["confidence"]), "mean_realism": _mean(rows["realism"]),
            "agreement": _mean(rows["predicted"] == rows["label"]),
        }
    shortfall = int(sum(v["shortfall"] for v in per_class.values()))
    return {
        "k_total": int(k.sum()), "chosen_total": int(len(chosen)), "shortfall_total": shortfall,
        "filled": shortfall == 0,
        "mean_confidence": _mean(sel["confidence"]), "mean_realism": _mean(sel["realism"]),
        "agreement": _mean(sel["predicted"] == sel["label"]),
        "per_class": per_class,
    }


def _mean(series: pd.Series) -> float | None:
    return float(series.mean()) if len(series) else None


def choose(scores: pd.DataFrame, real_counts: np.ndarray, ratio: float, strategy: str, cfg: Any,
           classes: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Pool indices chosen by ``strategy`` at ``ratio`` and the stats of the chosen set.

    K per class is ``ratio`` x the real count; a K the pool cannot hold and a selection that
    chose nothing are errors that say which param to change.
    """
    k = k_per_class(real_counts, ratio)
    check_pool_capacity(scores, k, ratio, classes)
    chosen = np.asarray(STRATEGIES.get(strategy)(scores, k, cfg), dtype=np.int64)
    if len(chosen) == 0:
        raise ValueError(
            f"{strategy} at ratio {ratio}: no pool image passed the strategy "
            f"(see select.{strategy} in params.yaml); nothing to train on"
        )
    return chosen, selection_stats(scores, chosen, k, classes)
