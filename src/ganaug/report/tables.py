"""The report's markdown tables and the formatting of their cells (a mean ± SD, a gain with
its interval and verdict, a p-value, a real-image equivalent), from the study's summary."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ganaug.report.runs import (
    BASELINE,
    MIXED_TEST,
    REFINE,
    SYNTHETIC,
    SYNTHETIC_TEST,
    _ratio_text,
    is_grid_strategy,
    run_key,
)
from ganaug.stats import (
    FLAT,
)


def _fmt(stat: dict[str, Any], pct: bool = True) -> str:
    scale = 100 if pct else 1
    if stat["std"] is None:
        return f"{stat['mean'] * scale:.1f}"
    return f"{stat['mean'] * scale:.1f} ± {stat['std'] * scale:.1f}"


def _gain(stat: dict[str, Any]) -> str:
    g = stat["gain_vs_baseline"]
    text = f"{g['mean'] * 100:+.1f}"
    if g["ci_low"] is not None:
        text += f" [{g['ci_low'] * 100:+.1f}, {g['ci_high'] * 100:+.1f}]"
        if g["distinguishable_from_zero"]:
            text = f"**{text}**"
    return text


def accuracy_table(results: dict[str, Any], test_set: str, ratios: list[str]) -> str:
    """Markdown: strategies x ratios, accuracy mean ± std (%) and, below, gains with intervals."""
    base = results[BASELINE[0]][_ratio_text(BASELINE[1])][test_set]["accuracy"]
    header = "| strategy | " + " | ".join(f"{r}x" for r in ratios) + " | synthetic only |"
    lines = [header, "|" + "---|" * (len(ratios) + 2)]
    lines.append(f"| none (real only) | {_fmt(base)} |" + " |" * len(ratios))
    for strategy, by_ratio in results.items():
        if not is_grid_strategy(strategy):
            continue
        cells = [_fmt(by_ratio[r][test_set]["accuracy"]) + " (" + _gain(by_ratio[r][test_set])
                 + ")" for r in ratios]
        cells.append(_fmt(by_ratio[SYNTHETIC][test_set]["accuracy"]))
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_markdown(df: pd.DataFrame, floatfmt: str = ".1f", scale: float = 100.0) -> str:
    """A small DataFrame as a markdown table (no extra dependency)."""
    cols = list(df.columns)
    idx_names = [n or "" for n in (df.index.names or [""])]
    lines = ["| " + " | ".join(idx_names + [str(c) for c in cols]) + " |",
             "|" + "---|" * (len(idx_names) + len(cols))]
    for key, row in df.iterrows():
        keys = key if isinstance(key, tuple) else (key,)
        vals = ["" if pd.isna(v) else format(v * scale, floatfmt) for v in row.to_numpy()]
        lines.append("| " + " | ".join([str(k) for k in keys] + vals) + " |")
    return "\n".join(lines)


def selection_table(select_stats: dict[str, dict], strategies: list[str],
                    ratios: list[float]) -> str:
    lines = ["| strategy | ratio | chosen / K | shortfall | mean confidence | mean realism | "
             "agreement | spread vs random | FID | KID |", "|" + "---|" * 10]
    for s in strategies:
        for r in ratios:
            st = select_stats.get(run_key(s, r, 0)[:2])
            if st is None:
                continue
            fk = st["fid_kid_vs_real"]
            lines.append(
                f"| {s} | {_ratio_text(r)} | {st['chosen_total']} / {st['k_total']} | "
                f"{st['shortfall_total']} | {_num(st['mean_confidence'], '.3f')} | "
                f"{_num(st['mean_realism'], '.2f')} | {_num(st['agreement'], '.2f')} | "
                f"{_num(st.get('spread_vs_random'), '.2f')} | "
                f"{_num(fk.get('fid'), '.2f')} | {_num(fk.get('kid'), '.4f')} |")
    return "\n".join(lines)


def _num(v: Any, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def train_test_table(results: dict[str, Any], source: str, strategies: list[str],
                     mixed_ratio: float) -> str:
    """Markdown: what a classifier trained on real, synthetic or mixed images scores on real,
    synthetic and mixed test images (accuracy %, mean ± std over seeds)."""
    tests = [(source, "real test"), (SYNTHETIC_TEST, "synthetic test"), (MIXED_TEST, "mixed test")]
    lines = ["| trained on | " + " | ".join(t for _, t in tests) + " |", "|---|---|---|---|"]
    rows = [("real only", results[BASELINE[0]][_ratio_text(BASELINE[1])])]
    for s in strategies:
        rows.append((f"{s}: synthetic only", results[s][SYNTHETIC]))
        rows.append((f"{s}: real + {_ratio_text(mixed_ratio)}x synthetic",
                     results[s][_ratio_text(mixed_ratio)]))
    for name, by_test in rows:
        lines.append(f"| {name} | " + " | ".join(
            _fmt(by_test[t]["accuracy"]) if t in by_test else "–" for t, _ in tests) + " |")
    return "\n".join(lines)


def refine_table(results: dict[str, Any], test_sets: list[str], refine: Any,
                 refine_stats: dict[str, dict]) -> str:
    """Markdown: accuracy after each refinement round (chain order), from the main pipeline's
    selection (`base`) on; with the FID/KID of each round's pool."""
    base_ratio = _ratio_text(float(refine.ratio))
    lines = ["| round | starts from | " + " | ".join(test_sets) + " | pool FID | pool KID |",
             "|" + "---|" * (len(test_sets) + 4)]
    base = results.get(refine.strategy, {}).get(base_ratio)
    if base is not None:
        lines.append(f"| base ({refine.strategy} {base_ratio}x) | – | "
                     + " | ".join(_fmt(base[t]["accuracy"]) + " (" + _gain(base[t]) + ")"
                                  for t in test_sets) + " | | |")
    for name in sorted(refine.rounds, key=refine.depth):
        by_test = results[REFINE][name]
        fk = refine_stats.get(name, {}).get("fid_kid_pool", {})
        lines.append(f"| {name} | {refine.rounds[name]} | "
                     + " | ".join(_fmt(by_test[t]["accuracy"]) + " (" + _gain(by_test[t]) + ")"
                                  for t in test_sets)
                     + f" | {_num(fk.get('fid'), '.2f')} | {_num(fk.get('kid'), '.4f')} |")
    return "\n".join(lines)


def verdict_counts_table(counts: dict[str, Any]) -> str:
    """Markdown: per test set and family, the comparisons and their verdicts."""
    lines = ["| test set | family | comparisons | helps | hurts | equivalent | undecided | "
             "distinguishable after Holm | before correction |", "|" + "---|" * 9]
    for test_set, families in counts.items():
        for family, c in families.items():
            lines.append(f"| {test_set} | {family} | {c['comparisons']} | {c['helps']} | "
                         f"{c['hurts']} | {c['equivalent']} | {c['undecided']} | "
                         f"{c['distinguishable']} | {c['distinguishable_uncorrected']} |")
    return "\n".join(lines)


def comparisons_table(results: dict[str, Any], test_set: str,
                      pilot: dict[str, Any] | None = None) -> str:
    """Markdown: the grid family on one test set, smallest adjusted p-value first; with the
    pilot's exploratory verdicts (``summary["pilot"]["exploratory"]``) in a last column."""
    rows = []
    for strategy, by_ratio in results.items():
        for ratio, entry in by_ratio.items():
            g = entry[test_set]["gain_vs_baseline"]
            if g["family"] == "grid":
                rows.append((g["p_value_holm"], strategy, ratio, g))
    lines = ["| strategy | ratio | gain [interval] | p (t) | p (Holm) | p (sign-flip) | "
             "distinguishable | p (TOST, Holm) | verdict | replicates to decide |"
             + (" pilot (exploratory) |" if pilot else ""),
             "|" + "---|" * (11 if pilot else 10)]
    for _, strategy, raw_ratio, g in sorted(rows, key=lambda r: (r[0], r[1], r[2])):
        distinguishable = ("**distinguishable**" if g["distinguishable_from_zero"] else
                           "only uncorrected" if g["distinguishable_uncorrected"] else "–")
        verdict = g["verdict"] + (" (within margin)" if g["within_margin"]
                                  and g["verdict"] != "equivalent" else "")
        ratio = "synthetic only" if raw_ratio == SYNTHETIC else f"{raw_ratio}x"
        lines.append(f"| {strategy} | {ratio} | {g['mean'] * 100:+.1f} "
                     f"[{g['ci_low'] * 100:+.1f}, {g['ci_high'] * 100:+.1f}] | "
                     f"{_pvalue(g['p_value_t'])} | {_pvalue(g['p_value_holm'])} | "
                     f"{_pvalue(g['p_value_sign_flip'])} | {distinguishable} | "
                     f"{_pvalue(g['p_value_tost_holm'])} | {verdict} | {_planned(g)} |"
                     + (f" {_explored(pilot, strategy, raw_ratio, test_set)} |" if pilot else ""))
    return "\n".join(lines)


def _explored(pilot: dict[str, Any], strategy: str, ratio: str, test_set: str) -> str:
    e = pilot.get(strategy, {}).get(ratio, {}).get(test_set)
    return "–" if e is None else f"{e['verdict']} ({e['mean'] * 100:+.1f})"


def _planned(g: dict[str, Any]) -> str:
    plan = g.get("planned")
    if plan is None:
        return "–"
    if plan["replicates"] is None:
        return "beyond reach" if plan["sd"] is not None else "–"
    return f"{plan['replicates']} ({plan['difference']} / {plan['equivalence']})"


def _pvalue(p: float | None) -> str:
    if p is None:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _size(v: float) -> str:
    """A number of images per class: whole where it is whole, else 0 or 1 decimal."""
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.0f}" if v >= 10 else f"{v:.1f}"


def _equivalent_point(point: dict[str, Any]) -> str:
    """One end of a real-image equivalent: a number of real images per class, or a flag."""
    if point["where"] is None:
        return "–"
    if point["where"] == FLAT:
        lo, hi = point["flat_between"]
        return f"{_size(lo)}–{_size(hi)} (flat)"
    return _size(point["real_per_class"]) if point["real_per_class"] is not None else point["where"]


def _equivalent_cell(eq: dict[str, Any]) -> str:
    text = _equivalent_point(eq["mean"])
    if eq["ci_low"]["where"] is not None:
        text += f" [{_equivalent_point(eq['ci_low'])}, {_equivalent_point(eq['ci_high'])}]"
    worth = eq["synthetic_worth"]["mean"]
    return text if worth is None else f"{text} ({worth:+.0f})"


def learning_curve_table(curve: dict[str, Any]) -> str:
    """Markdown: real images per class x test set, accuracy mean ± std (%) and the fit."""
    test_sets = list(curve)
    sizes = sorted({p["real_per_class"] for by_size in curve.values() for p in by_size.values()})
    lines = ["| real images per class | " + " | ".join(test_sets) + " |",
             "|" + "---|" * (len(test_sets) + 1)]
    for n in sizes:
        cells = []
        for t in test_sets:
            p = curve[t].get(_ratio_text(float(n)))
            if p is None:
                cells.append("–")
                continue
            fit = "" if math.isclose(p["fitted"], p["accuracy"]["mean"]) else \
                f" (fit {p['fitted'] * 100:.1f})"
            cells.append(_fmt(p["accuracy"]) + fit)
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def equivalents_table(equivalents: dict[str, Any], test_set: str, ratios: list[str]) -> str:
    """Markdown: strategies x ratios, the real images per class each model is worth."""
    lines = ["| strategy | " + " | ".join(f"{r}x" for r in ratios) + " | synthetic only |",
             "|" + "---|" * (len(ratios) + 2)]
    base = equivalents.get(BASELINE[0], {}).get(_ratio_text(BASELINE[1]), {}).get(test_set)
    if base is not None:
        lines.append(f"| none (real only) | {_equivalent_cell(base)} |" + " |" * len(ratios))
    for strategy, by_ratio in equivalents.items():
        if strategy == BASELINE[0]:
            continue
        cells = [_equivalent_cell(by_ratio[r][test_set]) for r in [*ratios, SYNTHETIC]]
        lines.append(f"| {strategy} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
