"""The real-only learning curve and what each model is worth in real images on it
(``learning_curve`` and ``real_equivalent`` in summary.json)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ganaug.report.runs import BASELINE, REAL, SYNTHETIC, _ratio_text, is_grid_strategy
from ganaug.report.summary import interval
from ganaug.stats import isotonic, real_equivalent


def learning_curve(df: pd.DataFrame, test_sets: list[str], level: float) -> dict[str, Any]:
    """The real-only learning curve per test set: for each size (real images per class, as a
    string key) the accuracy interval over seeds and the isotonic fit of the means, each size
    weighted by its number of runs (the seeds that evaluated it)."""
    real = df[df.strategy == REAL]
    out: dict[str, Any] = {}
    for test_set in test_sets:
        sub = real[real.test_set == test_set]
        if sub.empty:
            continue
        sizes = sorted({float(r) for r in sub.ratio})
        accs = [interval(sub[sub.ratio.astype(float) == n].accuracy.to_numpy(), level)
                for n in sizes]
        # A mean over more seeds is surer: weighting by the runs behind each size makes the
        # pooled value of a dip the mean over all those runs, not over the sizes.
        fitted = isotonic([a["mean"] for a in accs], weights=[a["n"] for a in accs])
        out[test_set] = {_ratio_text(n): {"real_per_class": int(n), "accuracy": a,
                                          "fitted": float(f)}
                         for n, a, f in zip(sizes, accs, fitted, strict=True)}
    return out


def learning_curve_frame(curve: dict[str, Any]) -> pd.DataFrame:
    """The learning curve as plot data: one row per (test set, real images per class)."""
    rows = [{"test_set": t, "real_per_class": p["real_per_class"], "mean": p["accuracy"]["mean"],
             "std": p["accuracy"]["std"] or 0.0, "fitted": p["fitted"], "seeds": p["accuracy"]["n"]}
            for t, by_size in curve.items() for p in by_size.values()]
    return pd.DataFrame(rows).sort_values(["test_set", "real_per_class"], kind="stable")


def real_equivalents(results: dict[str, Any], curve: dict[str, Any],
                     real_per_class: int | None) -> dict[str, Any]:
    """Per (strategy, ratio) and test set: how many real images per class reach the same mean
    accuracy on the learning curve, and the same for the ends of its interval over seeds.

    The curve is the isotonic fit of the real-only means, linear in log(size) between sizes
    (:func:`ganaug.stats.invert_curve`). ``synthetic_worth``: the equivalent minus the real
    images the model trained on (``real_per_class`` for a mix, 0 for synthetic only), i.e. what
    its synthetic images are worth in real images per class; None off the curve, for the
    baseline, or when scarcity is not a fixed count per class.
    """
    out: dict[str, Any] = {}
    for strategy, by_ratio in results.items():
        if not (is_grid_strategy(strategy) or strategy == BASELINE[0]):
            continue
        for ratio, by_test in by_ratio.items():
            for test_set, by_size in curve.items():
                points = sorted(by_size.values(), key=lambda p: p["real_per_class"])
                sizes = [p["real_per_class"] for p in points]
                fitted = [p["fitted"] for p in points]
                acc = by_test[test_set]["accuracy"]
                eq = real_equivalent(sizes, fitted, acc["mean"], acc["ci_low"], acc["ci_high"])
                own = 0 if ratio == SYNTHETIC else real_per_class
                if strategy == BASELINE[0]:
                    own = None
                worth = {k: (None if own is None or v["real_per_class"] is None
                             else v["real_per_class"] - own) for k, v in eq.items()}
                out.setdefault(strategy, {}).setdefault(ratio, {})[test_set] = {
                    "accuracy": acc["mean"], **eq, "synthetic_worth": worth}
    return out
