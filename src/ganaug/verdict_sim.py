"""Simulated studies that check the verdict procedure holds its error rates.

Not used by any stage: the verdict unit test and ``benchmarks/verdict_error_rate.py`` run it.
A simulated study is a family of ``m`` comparisons, each a set of ``n`` paired differences
(mix minus baseline, one per replicate) with a chosen true gain, decided exactly as the report
decides (paired t-test and TOST, Holm over the family, :func:`ganaug.stats.decide`'s rule),
vectorised over many studies.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from ganaug.stats import replicates_for_difference, replicates_for_equivalence


def draw(rng: np.random.Generator, shape: tuple[int, ...], true_gain: float, sd: float,
         tails: str = "normal") -> np.ndarray:
    """Paired differences with mean ``true_gain`` and SD ``sd``: normal, or ``"t3"``: Student
    t with 3 degrees of freedom scaled to the same SD (heavy tails, kurtosis infinite)."""
    if tails == "normal":
        return true_gain + sd * rng.standard_normal(shape)
    if tails == "t3":
        return true_gain + sd * rng.standard_t(3, shape) / math.sqrt(3.0)  # var of t3 is 3
    raise ValueError(f"tails: 'normal' or 't3', got {tails!r}")


def holm_rows(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values along the last axis (each row one family)."""
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, -1) * (m - np.arange(m))
    adjusted = np.minimum(1.0, np.maximum.accumulate(ranked, axis=-1))
    out = np.empty_like(adjusted)
    np.put_along_axis(out, order, adjusted, -1)
    return out


def verdicts(d: np.ndarray, margin: float, alpha: float) -> dict[str, np.ndarray]:
    """Boolean arrays (studies, m): helps, hurts, equivalent, for differences ``d`` of shape
    (studies, m, n), decided as the report does."""
    n = d.shape[-1]
    mean, sd = d.mean(-1), d.std(-1, ddof=1)
    se = sd / math.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_t = 2 * stats.t.sf(np.abs(mean / se), n - 1)
        p_tost = np.maximum(stats.t.sf((mean + margin) / se, n - 1),
                            stats.t.cdf((mean - margin) / se, n - 1))
    diff = holm_rows(p_t) < alpha
    equivalent = holm_rows(p_tost) < alpha
    return {"helps": diff & (mean > 0), "hurts": diff & (mean < 0),
            "difference": diff & (mean != 0), "equivalent": equivalent & ~diff}


def fixed_n(rng: np.random.Generator, studies: int, m: int, n: int, true_gain: float,
            sd: float, margin: float, alpha: float, tails: str = "normal") -> dict[str, float]:
    """The share of studies with at least one helps / hurts / equivalent verdict (family-wise
    rates) when every comparison's true gain is ``true_gain``."""
    v = verdicts(draw(rng, (studies, m, n), true_gain, sd, tails), margin, alpha)
    return {k: float(x.any(-1).mean()) for k, x in v.items()}


def plan_table(sds: np.ndarray, margin: float, level: float, power: float,
               cap: int) -> np.ndarray:
    """The planner's replicates (difference and equivalence, the larger; capped) on a grid of
    SDs, so that thousands of simulated pilots can look their plan up."""
    out = []
    for sd in sds:
        a = replicates_for_difference(margin, float(sd), level, power)
        b = replicates_for_equivalence(margin, float(sd), level, power)
        out.append(cap if a is None or b is None else min(cap, max(a, b)))
    return np.array(out)


def two_stage(rng: np.random.Generator, studies: int, m: int, n0: int, true_gain: float,
              sd: float, margin: float, alpha: float, power: float = 0.8, cap: int = 40,
              tails: str = "normal") -> dict[str, Any]:
    """Pilot of ``n0`` replicates, the planner picks ``n1`` from the pilot's largest SD over
    the family at level alpha / m (rounded up on a grid: conservative), and the verdicts come
    from ``n1`` fresh replicates. Returns the family-wise rates and the n1 used (median)."""
    pilot = draw(rng, (studies, m, n0), true_gain, sd, tails)
    pilot_sd = pilot.std(-1, ddof=1).max(-1)
    grid = np.geomspace(max(pilot_sd.min(), 1e-6), pilot_sd.max(), 40)
    table = plan_table(grid, margin, alpha / m, power, cap)
    n1 = table[np.minimum(np.searchsorted(grid, pilot_sd), len(grid) - 1)]
    rates = {"helps": 0.0, "hurts": 0.0, "difference": 0.0, "equivalent": 0.0}
    for n in np.unique(n1):
        rows = n1 == n
        v = verdicts(draw(rng, (int(rows.sum()), m, int(n)), true_gain, sd, tails), margin,
                     alpha)
        for k in rates:
            rates[k] += float(v[k].any(-1).sum())
    return {**{k: v / studies for k, v in rates.items()}, "median_n1": float(np.median(n1))}


def optional_stopping(rng: np.random.Generator, studies: int, m: int, n_start: int, n_max: int,
                      true_gain: float, sd: float, margin: float, alpha: float) -> float:
    """What the pilot/confirmatory split prevents: start with ``n_start`` replicates and add
    one at a time, looking after each, until some comparison gets helps or hurts or ``n_max``
    is reached. Returns the family-wise rate of a false helps-or-hurts verdict."""
    d = draw(rng, (studies, m, n_max), true_gain, sd)
    decided = np.zeros(studies, bool)
    for n in range(n_start, n_max + 1):
        v = verdicts(d[..., :n], margin, alpha)
        decided |= (v["helps"] | v["hurts"]).any(-1)
    return float(decided.mean())


def mc_interval(rate: float, studies: int) -> tuple[float, float]:
    """95% Wilson interval of a simulated rate."""
    from ganaug.stats import wilson_interval

    return wilson_interval(round(rate * studies), studies, 0.95)
