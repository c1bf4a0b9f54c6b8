"""The study's statistics, from the table of runs to ``metrics/summary.json``: means and
t-intervals over seeds; gains as paired differences from the baseline of the same seed, each
given one of four verdicts (helps, hurts, equivalent within the margin, undecided) with
Holm-adjusted p-values over a family of comparisons (see :func:`summarise`); the primary
comparison; the headline. The replicate planner is :mod:`ganaug.report.plan`, the learning curve
and real-image equivalents :mod:`ganaug.report.curve`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ganaug.report.runs import BASELINE, REAL, REFINE, SYNTHETIC, _ratio_text, is_grid_strategy
from ganaug.stats import (
    UNDECIDED,
    VERDICTS,
    decide,
    holm,
    paired_t_pvalue,
    sign_flip_pvalue,
    smallest_sign_flip_pvalue,
    tost_pvalue,
    wilson_interval,
)


def interval(values: np.ndarray, level: float) -> dict[str, Any]:
    """Mean, sample std and a two-sided t-interval (None where fewer than two values)."""
    from scipy import stats

    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    out: dict[str, Any] = {"n": n, "mean": float(values.mean())}
    if n < 2:
        return {**out, "std": None, "ci_low": None, "ci_high": None}
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, n - 1) * std / math.sqrt(n))
    return {**out, "std": std, "ci_low": out["mean"] - half, "ci_high": out["mean"] + half}


def summarise(df: pd.DataFrame, test_sets: list[str], level: float, margin: float = 0.01,
              primary: tuple[str, float, str] | None = None) -> dict[str, Any]:
    """Per (strategy, ratio, test set): accuracy and macro-F1 intervals, and the paired gain in
    accuracy over the baseline with its tests and verdicts (see :func:`paired_gain` and
    :func:`apply_holm`). The learning curve's runs are left out (see :func:`learning_curve`).

    ``margin``: the equivalence margin delta as a fraction (0.01 = one accuracy point).
    ``primary``: (strategy, ratio, test set) of the declared primary comparison, tested alone.
    """
    df = df[df.strategy != REAL]
    base = df[(df.strategy == BASELINE[0])]
    results: dict[str, Any] = {}
    for (strategy, ratio), group in df.groupby(["strategy", "ratio"], sort=False):
        entry = results.setdefault(strategy, {}).setdefault(_ratio_text(ratio), {})
        for test_set in test_sets:
            g = group[group.test_set == test_set].sort_values("seed")
            b = base[base.test_set == test_set].set_index("seed").loc[g.seed]
            entry[test_set] = {
                "accuracy": interval(g.accuracy.to_numpy(), level),
                "macro_f1": interval(g.macro_f1.to_numpy(), level),
                "gain_vs_baseline": paired_gain(g.accuracy.to_numpy() - b.accuracy.to_numpy(),
                                                level, margin),
            }
    apply_holm(results, test_sets, 1 - level, primary)
    return results


def paired_gain(gain: np.ndarray, level: float, margin: float = 0.01) -> dict[str, Any]:
    """The per-seed differences' interval, with the uncorrected tests beside it.

    ``ci_low``/``ci_high`` and ``distinguishable_uncorrected`` (the interval excludes zero) are
    per comparison; ``p_value_t`` is the paired t-test that interval inverts, ``p_value_sign_flip``
    the exact permutation test. The corrected verdict is filled in by :func:`apply_holm`.
    """
    gi = interval(gain, level)
    uncorrected = None if gi["ci_low"] is None else bool(gi["ci_low"] > 0 or gi["ci_high"] < 0)
    return {**gi, "p_value_t": paired_t_pvalue(gain), "p_value_sign_flip": sign_flip_pvalue(gain),
            "p_value_tost": tost_pvalue(gain, margin),
            "distinguishable_uncorrected": uncorrected, "family": None, "family_size": None,
            "p_value_holm": None, "p_value_tost_holm": None,
            "distinguishable_from_zero": uncorrected, "verdict": UNDECIDED, "within_margin": None,
            "wins": int(np.sum(gain > 0)), "ties": int(np.sum(gain == 0))}


PRIMARY = "primary"


def primary_key(primary: tuple[str, float, str]) -> tuple[str, str, str]:
    """(strategy, ratio as the results key it, test set) of the declared primary comparison."""
    strategy, ratio, test_set = primary
    return strategy, _ratio_text(float(ratio)), test_set


def family_of(strategy: str, ratio: str | None = None, test_set: str | None = None,
              primary: tuple[str, float, str] | None = None) -> str | None:
    """The family of comparisons a run's gain belongs to, per test set.

    ``grid``: every (strategy, ratio) mix and every synthetic-only model against the baseline on
    one test set, the question the study asks. ``refine``: the refinement rounds on one test set,
    a separate experiment with its own table. ``primary``: the comparison declared primary, a
    family of one, tested at alpha itself (declaring it before the study is what earns it the
    uncorrected level). The baseline against itself is no comparison.
    """
    if strategy == BASELINE[0]:
        return None
    if primary is not None and (strategy, ratio, test_set) == primary_key(primary):
        return PRIMARY
    return REFINE if strategy == REFINE else "grid"


def apply_holm(results: dict[str, Any], test_sets: list[str], alpha: float,
               primary: tuple[str, float, str] | None = None) -> None:
    """Holm-adjust the t-test and the TOST p-values within each family and test set, and decide.

    ``distinguishable_from_zero``: adjusted t-test p < alpha (None without a p-value: one seed).
    ``verdict`` (see :func:`ganaug.stats.decide`): helps / hurts from the adjusted t-test,
    equivalent from the adjusted TOST p-value, else undecided. The TOST p-values are corrected
    over the same family as the t-tests: each comparison may claim either, so both claims count.
    """
    for test_set in test_sets:
        families: dict[str, list[dict[str, Any]]] = {}
        for strategy, by_ratio in results.items():
            for ratio, entry in by_ratio.items():
                gain = entry[test_set]["gain_vs_baseline"]
                family = family_of(strategy, ratio, test_set, primary)
                if family is None:  # the baseline: zero by construction
                    gain["distinguishable_from_zero"] = gain["distinguishable_uncorrected"] = (
                        None if gain["ci_low"] is None else False)
                    gain["verdict"] = None
                elif gain["p_value_t"] is not None:  # one seed: nothing to test, no family
                    families.setdefault(family, []).append(gain)
        for family, gains in families.items():
            adjusted = holm([g["p_value_t"] for g in gains])
            adjusted_tost = holm([g["p_value_tost"] for g in gains])
            for g, p, q in zip(gains, adjusted, adjusted_tost, strict=True):
                verdict, within = decide(g["mean"], float(p), float(q), alpha)
                g.update(family=family, family_size=len(gains), p_value_holm=float(p),
                         p_value_tost_holm=float(q), distinguishable_from_zero=bool(p < alpha),
                         verdict=verdict, within_margin=within)


def verdict_counts(results: dict[str, Any], test_sets: list[str]) -> dict[str, Any]:
    """Per test set and family: comparisons made, distinguishable gains after and before Holm,
    and how many comparisons got each verdict (helps, hurts, equivalent, undecided)."""
    out: dict[str, Any] = {}
    for test_set in test_sets:
        for by_ratio in results.values():
            for entry in by_ratio.values():
                g = entry[test_set]["gain_vs_baseline"]
                if g["family"] is None or g["family_size"] is None:
                    continue
                c = out.setdefault(test_set, {}).setdefault(
                    g["family"], {"comparisons": g["family_size"], "distinguishable": 0,
                                  "distinguishable_uncorrected": 0, **dict.fromkeys(VERDICTS, 0)})
                c["distinguishable"] += int(g["distinguishable_from_zero"])
                c["distinguishable_uncorrected"] += int(g["distinguishable_uncorrected"])
                c[g["verdict"]] += 1
    return out


def verdict_summary(results: dict[str, Any], df: pd.DataFrame, test_sets: list[str],
                    level: float, margin_points: float = 1.0, power: float = 0.8
                    ) -> dict[str, Any]:
    """What the verdicts mean, for summary.json: the test, the families and their sizes, how many
    gains survive correction, the margin and the planner's settings, and the test-set sampling
    error the intervals leave out."""
    base = df[(df.strategy == BASELINE[0])]
    sampling = {}
    for test_set in test_sets:
        b = base[base.test_set == test_set]
        n, p = b.n_test.iloc[0], float(b.accuracy.mean())
        sampling[test_set] = None if n is None or pd.isna(n) else math.sqrt(p * (1 - p) / n)
    return {
        "test": "paired t-test over seeds; p-values Holm-Bonferroni adjusted within each family "
                "and test set; distinguishable_from_zero: adjusted p < alpha",
        "alpha": round(1 - level, 12),
        "equivalence_margin_points": margin_points,
        "verdict": {"helps": "Holm-adjusted paired t-test p < alpha, mean gain > 0",
                    "hurts": "Holm-adjusted paired t-test p < alpha, mean gain < 0",
                    "equivalent": "not helps or hurts, and the Holm-adjusted TOST p-value (the "
                                  "larger of the two one-sided t-tests against -delta and "
                                  "+delta) < alpha: the gain lies within +-delta",
                    "undecided": "neither",
                    "within_margin": "true where equivalence is shown too: with helps or hurts "
                                     "it marks a real effect smaller than delta"},
        "planning": {"power": power,
                     "level": "alpha / m, the most stringent Holm step, for a family of m "
                              "(alpha for the primary comparison): conservative",
                     "difference": "replicates for the two-sided paired t-test to detect a "
                                   "true gain of delta",
                     "equivalence": "replicates for TOST to show equivalence when the true "
                                    "gain is 0",
                     "sd": "the observed SD of the paired differences (the pilot's, when "
                           "study.pilot is set)"},
        "families": {"grid": "every (strategy, ratio) mix and synthetic-only model vs the "
                             "baseline, on one test set",
                     PRIMARY: "the declared primary comparison, alone at alpha (not in grid)",
                     REFINE: "the refinement rounds vs the baseline, on one test set"},
        "counts": verdict_counts(results, test_sets),
        "interval": "per comparison (uncorrected) t-interval over seeds: seed-to-seed variance "
                    "of training with the test set fixed; test-set sampling is not included",
        "smallest_sign_flip_p_value": smallest_sign_flip_pvalue(int(df.seed.nunique())),
        "test_set_sampling_se": sampling,
    }


def primary_summary(results: dict[str, Any], primary: tuple[str, float, str],
                    equivalents: dict[str, Any], level: float) -> dict[str, Any]:
    """The declared primary comparison: its verdict, gain and interval, its probability of
    improvement and what it is worth in real images.

    Probability of improvement: the share of replicates where the mix beats the baseline
    (ties count as no improvement), with a Wilson score interval at the report's level (see
    :func:`ganaug.stats.wilson_interval`). ``real_equivalent``: None where the test set has no
    learning curve.
    """
    strategy, r, test_set = primary_key(primary)
    entry = results[strategy][r][test_set]
    g = entry["gain_vs_baseline"]
    wilson = wilson_interval(g["wins"], g["n"], level)
    base = results[BASELINE[0]][_ratio_text(BASELINE[1])][test_set]["accuracy"]["mean"]
    return {
        "strategy": strategy, "ratio": float(primary[1]), "test_set": test_set,
        "verdict": g["verdict"], "within_margin": g["within_margin"],
        "gain": g["mean"], "ci_low": g["ci_low"], "ci_high": g["ci_high"],
        "p_value_t": g["p_value_t"], "p_value_tost": g["p_value_tost"],
        "accuracy": entry["accuracy"]["mean"], "baseline_accuracy": base,
        "probability_of_improvement": {
            "wins": g["wins"], "ties": g["ties"], "n": g["n"], "share": g["wins"] / g["n"],
            "ci_low": None if wilson is None else wilson[0],
            "ci_high": None if wilson is None else wilson[1], "interval": "Wilson score"},
        "real_equivalent": equivalents.get(strategy, {}).get(r, {}).get(test_set),
        "planned": g.get("planned"),
    }


def exploratory(results: dict[str, Any], test_sets: list[str]) -> dict[str, Any]:
    """The pilot's verdicts, compact: per (strategy, ratio, test set) the gain, its SD and the
    verdict. They are exploratory: the pilot was looked at to plan the confirmatory seeds."""
    out: dict[str, Any] = {}
    for strategy, by_ratio in results.items():
        if strategy == BASELINE[0]:
            continue
        for ratio, entry in by_ratio.items():
            for test_set in test_sets:
                g = entry[test_set]["gain_vs_baseline"]
                out.setdefault(strategy, {}).setdefault(ratio, {})[test_set] = {
                    "n": g["n"], "mean": g["mean"], "std": g["std"], "verdict": g["verdict"],
                    "p_value_holm": g["p_value_holm"], "p_value_tost_holm": g["p_value_tost_holm"]}
    return out


def headline(summary: dict[str, Any], curve_sets: list[str]) -> dict[str, Any]:
    """The answer at a glance, for ``metrics/headline.json``: a few values that
    ``dvc metrics show`` prints on one line (summary.json flattens to thousands)."""
    results = summary["results"]
    base = results[BASELINE[0]][_ratio_text(BASELINE[1])]
    out: dict[str, Any] = {"baseline": round(base[summary["source"]]["accuracy"]["mean"], 4),
                           "confidence_level": summary["confidence_level"]}
    primary = summary.get("primary")
    if primary is not None:
        out["primary"] = {
            "comparison": f"{primary['strategy']} {_ratio_text(primary['ratio'])}x "
                          f"{primary['test_set']}",
            "verdict": primary["verdict"], "gain": _round(primary["gain"]),
            "ci_low": _round(primary["ci_low"]), "ci_high": _round(primary["ci_high"]),
            "p_improved": _round(primary["probability_of_improvement"]["share"])}
    counts = summary["verdicts"]["counts"]
    for test_set in curve_sets:
        mixes = [(v[test_set]["accuracy"]["mean"], s, r) for s, by_ratio in results.items()
                 if is_grid_strategy(s) for r, v in by_ratio.items() if r != SYNTHETIC]
        acc, strategy, ratio = max(mixes, key=lambda m: (m[0], m[1], -float(m[2])))
        c = counts.get(test_set, {}).get("grid", {})
        out[test_set] = {"best": f"{strategy} {ratio}x",
                         "best_gain": _round(results[strategy][ratio][test_set]
                                             ["gain_vs_baseline"]["mean"]),
                         **{v: c.get(v) for v in VERDICTS}}
    pool = summary.get("pool", {})
    out["pool"] = {"fid": _round(pool.get("fid"), 2), "coverage": _round(pool.get("coverage"))}
    out["replicates"] = len(summary.get("seeds", []))
    return out


POOL_FIGURES = ("fid", "kid", "coverage")


def pool_over_replicates(scores: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The pools' FID, KID and coverage (scorer space) over the replicates: the mean under each
    name (what the headline shows), and per replicate."""
    per: dict[str, dict[str, float | None]] = {}
    for seed, score in scores.items():
        overall = score.get("fid_kid", {}).get("overall", {})
        coverage = (score.get("prdc") or {}).get("mean_over_classes", {}).get("coverage")
        per[str(seed)] = {"fid": overall.get("fid"), "kid": overall.get("kid"),
                          "coverage": coverage}
    first = next(iter(scores.values()), {}).get("fid_kid", {}).get("overall", {})
    out: dict[str, Any] = {k: first.get(k) for k in ("feature_space", "n_real", "n_fake")}
    for k in POOL_FIGURES:
        values = [v[k] for v in per.values() if v[k] is not None]
        out[k] = float(np.mean(values)) if values else None
        out[f"{k}_range"] = [float(min(values)), float(max(values))] if values else None
    out["per_replicate"] = per
    return out


def _round(v: float | None, digits: int = 4) -> float | None:
    return None if v is None else round(float(v), digits)


def peaks(results: dict[str, Any], test_sets: list[str]) -> dict[str, Any]:
    """Per strategy and test set: the mixed-training ratio with the highest mean accuracy."""
    out: dict[str, Any] = {}
    for strategy, by_ratio in results.items():
        if not is_grid_strategy(strategy):
            continue
        for test_set in test_sets:
            candidates = {r: v[test_set]["accuracy"]["mean"] for r, v in by_ratio.items()
                          if r != SYNTHETIC}
            best = max(candidates, key=lambda r: (candidates[r], -float(r)))
            gain = by_ratio[best][test_set]["gain_vs_baseline"]
            out.setdefault(strategy, {})[test_set] = {
                "ratio": float(best), "accuracy": candidates[best], "gain_vs_baseline": gain["mean"],
                "distinguishable_from_zero": gain["distinguishable_from_zero"],
            }
    return out


def curves(results: dict[str, Any], test_sets: list[str]) -> pd.DataFrame:
    """Accuracy vs ratio per strategy (each curve starts at the baseline, ratio 0)."""
    rows = []
    base = results[BASELINE[0]][_ratio_text(BASELINE[1])]
    for strategy, by_ratio in results.items():
        if not is_grid_strategy(strategy):
            continue
        for test_set in test_sets:
            points = [(0.0, base[test_set]["accuracy"])]
            points += [(float(r), v[test_set]["accuracy"]) for r, v in by_ratio.items()
                       if r != SYNTHETIC]
            for ratio, acc in sorted(points):
                rows.append({"test_set": test_set, "strategy": strategy, "ratio": ratio,
                             "mean": acc["mean"], "std": acc["std"] or 0.0,
                             "ci_low": acc["ci_low"] if acc["ci_low"] is not None else acc["mean"],
                             "ci_high": acc["ci_high"] if acc["ci_high"] is not None else acc["mean"],
                             "seeds": acc["n"]})
    return pd.DataFrame(rows)


def per_class_table(df: pd.DataFrame, test_set: str) -> pd.DataFrame:
    """Mean per-class accuracy over seeds, one row per (strategy, ratio)."""
    sub = df[df.test_set == test_set]
    cols = [c for c in sub.columns if c.startswith("acc/") and sub[c].notna().any()]
    table = sub.groupby(["strategy", "ratio"], sort=False)[cols].mean()
    table.columns = [c.removeprefix("acc/") for c in cols]
    return table
