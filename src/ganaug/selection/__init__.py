"""Selection strategies: which pool images join the real training set.

One extension point: a strategy is a :class:`Strategy` in :data:`STRATEGIES`, registered with
:func:`register_strategy` next to its config dataclass (the section ``select.<name>`` of
``params.yaml``). Its ``pick(candidates, k, cfg)`` returns pool indices (at most ``k[c]`` per
class ``c``, never more) and a dict of extra stats; the shortfall is reported by
:func:`selection_stats`, never padded. The select stage and iterative refinement both call
:func:`choose`, so a new strategy works in both without touching either.

Adding a strategy: a module in this package with its config dataclass and a function decorated
with ``@register_strategy("name", Config)``, imported at the bottom of this file; or, from another
package, a function decorated with ``@strategy(Config)`` named by an entry point of the group
``ganaug.strategies`` (the entry point's name is the strategy's; README "Extending").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ganaug.errors import SelectionError
from ganaug.params import check_name
from ganaug.registry import Registry


@dataclass
class Candidates:
    """Everything a strategy may look at; the pool images stay memory-mapped.

    ``scores``: one row per pool image (``index``, ``label``, ``confidence``, ``predicted``,
    ``predicted_prob``, ``realism``, and any score the GAN family's discriminator adds);
    ``features``: the scorer's penultimate features ``(N, D)`` float32, row i = pool image i;
    ``images``: uint8 ``(N, C, H, W)`` (a memmap; only strategies that look at pixels read it);
    ``real``: the prepared source (train and val splits); ``device``: where networks run.
    """

    scores: pd.DataFrame
    features: np.ndarray | None = None
    images: np.ndarray | None = None
    real: Any = None
    device: Any = "cpu"
    classes: list[str] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        return self.scores["label"].to_numpy()


Picked = tuple[np.ndarray, dict[str, Any]]


@dataclass(frozen=True)
class Strategy:
    name: str
    config: type
    pick: Callable[[Candidates, np.ndarray, Any], Picked]

    @property
    def doc(self) -> str:
        return (self.pick.__doc__ or "").strip().splitlines()[0]


def check_strategy(name: str, obj: Any) -> Strategy:
    """What a registered strategy must be (built-in or plugin): a :class:`Strategy` (what
    :func:`strategy` makes) whose config is a dataclass; it is stored under ``name``."""
    check_name("the strategy name", name)
    if not isinstance(obj, Strategy):
        raise ValueError(f"is {obj!r}, not a ganaug.selection.Strategy: decorate its pick "
                         f"function with @ganaug.selection.strategy(ConfigClass)")
    if not (isinstance(obj.config, type) and dataclasses.is_dataclass(obj.config)):
        raise ValueError(f"its config must be a dataclass (select.{name}'s knobs), got "
                         f"{obj.config!r}")
    if not callable(obj.pick):
        raise ValueError(f"its pick is not callable: {obj.pick!r}")
    return dataclasses.replace(obj, name=name)


STRATEGIES: Registry[Strategy] = Registry("selection strategy", group="ganaug.strategies",
                                          builtins="ganaug.selection", check=check_strategy)


def strategy(config: type) -> Callable[[Callable], Strategy]:
    """``@strategy(MyConfig)`` on ``pick(candidates, k, cfg)`` (which may return the indices
    alone or ``(indices, extra stats)``): the :class:`Strategy`, not registered; a plugin's
    entry point names it, and the entry point's name becomes its name."""
    def deco(fn: Callable) -> Strategy:
        def pick(candidates: Candidates, k: np.ndarray, cfg: Any) -> Picked:
            out = fn(candidates, k, cfg)
            chosen, extra = out if isinstance(out, tuple) else (out, {})
            return np.asarray(chosen, dtype=np.int64), extra

        pick.__doc__ = fn.__doc__
        return Strategy("", config, pick)

    return deco


def register_strategy(name: str, config: type) -> Callable:
    """``@register_strategy("random", RandomConfig)`` on ``pick(candidates, k, cfg)``: a built-in
    strategy (:func:`strategy`, registered under ``name``)."""
    def deco(fn: Callable) -> Callable:
        STRATEGIES.register(name)(strategy(config)(fn))
        return fn

    return deco


def k_per_class(real_counts: np.ndarray, ratio: float) -> np.ndarray:
    """K_c = ratio x (real images of class c), rounded half up."""
    if ratio < 0:
        raise ValueError(f"ratio must be >= 0, got {ratio}")
    # Rounded to 9 decimals first so that decimal halves (0.7 x 45 = 31.499999999999996 in binary)
    # round up as written.
    product = np.round(ratio * np.asarray(real_counts, np.float64), 9)
    return np.floor(product + 0.5).astype(np.int64)


def check_pool_capacity(scores: pd.DataFrame, k: np.ndarray, ratio: float,
                        classes: list[str], real_counts: np.ndarray | None = None) -> None:
    """A K larger than the pool holds for a class is an error that says what to change.

    ``real_counts``: the real training images per class the pool was made from; with them, the
    advice for a translation pool says what caps it and the largest ratio it can serve."""
    available = np.bincount(scores["label"].to_numpy(), minlength=len(k))
    for c, (want, have) in enumerate(zip(k, available, strict=True)):
        if want > have:
            raise SelectionError(
                f"ratio {ratio}: class {classes[c]!r} needs K={want} synthetic images but the pool "
                f"holds {have}; {_pool_advice(scores, c, int(have), ratio, real_counts)}"
            )


def _pool_advice(scores: pd.DataFrame, c: int, have: int, ratio: float,
                 real_counts: np.ndarray | None) -> str:
    """What to change so that class ``c``'s pool covers ``ratio``."""
    raise_it = (f"raise generate.max_ratio (or generate.pool_multiplier) to at least cover "
                f"ratio {ratio}")
    rows = scores["label"].to_numpy() == c
    translated = ("source_index" in scores.columns
                  and bool((scores["source_index"].to_numpy()[rows] >= 0).any()))
    if not translated:
        return raise_it
    # A translation family makes one image per (source, label) pair: a class's pool holds at most
    # the real training images of the other classes (the smallest such count, for every class).
    if real_counts is not None:
        counts = np.asarray(real_counts, np.int64)
        cap = int((counts.sum() - counts).min())
        if have < cap:  # the pool was sized below the cap: max_ratio still helps, up to it
            return f"{raise_it} (a translation pool holds at most {cap} per class here)"
        most = f"{cap} per class here, ratio {cap / counts[c]:.3g} for this class"
    else:
        most = "that many"
    # Family names are not looked up in ganaug.gan: select's code deps would grow by the whole
    # GAN package (and every select instance rerun on a GAN edit) for one error message.
    return (f"the GAN translates real images (an image-to-image family such as stargan), one "
            f"image per real training image of another class, so the pool holds at most "
            f"{most}; generate.max_ratio and generate.pool_multiplier cannot raise that. Lower "
            f"study.ratios to at most that ratio (with balanced classes it is the number of "
            f"classes - 1, whatever data.real_per_class is), or use a noise-to-image family "
            f"(gan.arch such as dcgan or sngan)")


def per_class(scores: pd.DataFrame, k: np.ndarray,
              pick: Callable[[pd.DataFrame, int, int], np.ndarray]) -> np.ndarray:
    """Apply ``pick(rows of class c, k[c], c)`` to every class with ``k[c] > 0``; sorted indices."""
    chosen = [pick(scores[scores["label"] == c], int(kc), c) for c, kc in enumerate(k) if kc > 0]
    return np.sort(np.concatenate(chosen)).astype(np.int64) if chosen else np.zeros(0, np.int64)


def top(rows: pd.DataFrame, column: str | np.ndarray, n: int) -> np.ndarray:
    """The ``n`` rows with the highest ``column`` (a column name or values aligned with rows).

    A stable sort on ``(-score, index)``: ties go to the lower pool index, so results are
    reproducible.
    """
    values = rows[column].to_numpy() if isinstance(column, str) else np.asarray(column)
    order = np.lexsort((rows["index"].to_numpy(), -values))
    return rows["index"].to_numpy()[order[:n]]


def selection_stats(scores: pd.DataFrame, chosen: np.ndarray, k: np.ndarray,
                    classes: list[str], features: np.ndarray | None = None) -> dict[str, Any]:
    """Counts against K per class, mean scores of the chosen images, and (with the scorer's
    ``features``) how spread out the chosen images are: per class, the mean distance from each
    chosen image to its nearest other chosen image, next to the same for as many pool images of
    the class drawn at random (``spread_vs_random`` < 1: the strategy picks near-duplicates)."""
    sel = scores.set_index("index").loc[chosen]
    per_class_stats = {}
    for c, name in enumerate(classes):
        rows = sel[sel["label"] == c]
        per_class_stats[name] = {
            "k": int(k[c]), "chosen": int(len(rows)), "shortfall": int(k[c] - len(rows)),
            "mean_confidence": _mean(rows["confidence"]), "mean_realism": _mean(rows["realism"]),
            "agreement": _mean(rows["predicted"] == rows["label"]),
        }
        if features is not None:
            per_class_stats[name].update(_spread(features, scores, rows.index.to_numpy(), c))
    shortfall = int(sum(v["shortfall"] for v in per_class_stats.values()))
    out = {
        "k_total": int(k.sum()), "chosen_total": int(len(chosen)), "shortfall_total": shortfall,
        "filled": shortfall == 0,
        "mean_confidence": _mean(sel["confidence"]), "mean_realism": _mean(sel["realism"]),
        "agreement": _mean(sel["predicted"] == sel["label"]),
        "per_class": per_class_stats,
    }
    if features is not None:
        ratios = [v["spread_vs_random"] for v in per_class_stats.values()
                  if v.get("spread_vs_random") is not None]
        out["spread_vs_random"] = float(np.mean(ratios)) if ratios else None
    return out


def nn_distance(x: np.ndarray) -> float | None:
    """Mean Euclidean distance from each row of ``x (N, D)`` to its nearest other row."""
    if len(x) < 2:
        return None
    x = np.asarray(x, np.float64)
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0.0)
    np.fill_diagonal(d2, np.inf)
    return float(np.sqrt(d2.min(1)).mean())


_SPREAD_MAX = 2000  # images per class the spread compares (pairwise distances are O(n^2))


def _spread(features: np.ndarray, scores: pd.DataFrame, chosen: np.ndarray,
            c: int) -> dict[str, Any]:
    rng = np.random.default_rng(c)  # the random reference is fixed per class, not per strategy
    members = scores["index"].to_numpy()[scores["label"].to_numpy() == c]
    n = min(len(chosen), _SPREAD_MAX)
    mine = nn_distance(features[np.sort(rng.permutation(chosen)[:n])]) if n else None
    ref = nn_distance(features[np.sort(rng.choice(members, n, replace=False))]) if n else None
    return {"nn_distance": mine, "nn_distance_random": ref,
            "spread_vs_random": mine / ref if mine is not None and ref else None}


def _mean(series: pd.Series) -> float | None:
    return float(series.mean()) if len(series) else None


def choose(candidates: Candidates, real_counts: np.ndarray, ratio: float, strategy: str,
           cfg: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """Pool indices chosen by ``strategy`` at ``ratio`` and the stats of the chosen set.

    K per class is ``ratio`` x the real count; a K the pool cannot hold and a selection that
    chose nothing are errors that say which param to change.
    """
    scores, classes = candidates.scores, candidates.classes
    k = k_per_class(real_counts, ratio)
    check_pool_capacity(scores, k, ratio, classes, real_counts)
    chosen, extra = STRATEGIES.get(strategy).pick(candidates, k, cfg)
    if len(chosen) == 0:
        raise SelectionError(
            f"{strategy} at ratio {ratio}: no pool image passed the strategy "
            f"(see select.{strategy} in params.yaml); nothing to train on"
        )
    counts = np.bincount(scores.set_index("index").loc[chosen, "label"], minlength=len(k))
    assert len(np.unique(chosen)) == len(chosen) and (counts <= k).all(), (
        f"{strategy} returned duplicates or more than K images of a class")
    stats = selection_stats(scores, chosen, k, classes, candidates.features)
    stats.update(extra)
    return np.sort(chosen), stats


# Importing a strategy's module registers it (keep these at the bottom: they use the above).
from ganaug.selection import kcenter as _kcenter  # noqa: E402,F401
from ganaug.selection import rl as _rl  # noqa: E402,F401
from ganaug.selection import strategies as _strategies  # noqa: E402,F401

__all__ = ["STRATEGIES", "Candidates", "Strategy", "check_pool_capacity", "choose", "k_per_class",
           "nn_distance", "per_class", "register_strategy", "selection_stats", "strategy", "top"]
