"""Collect every evaluation into one table, then the study's statistics and its report.

Runs are keyed by (strategy, ratio, seed): the real-only baseline is ``("none", 0)``; the
synthetic-only model of a strategy has ratio ``"synthetic"``. Statistics over seeds: mean,
standard deviation, a t-interval; gains are paired differences from the baseline of the same seed.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ganaug.io import DataFileError, load_json

BASELINE = ("none", 0.0)
SYNTHETIC = "synthetic"


def _ratio_text(ratio: float | str) -> str:
    if isinstance(ratio, str):
        return ratio
    return str(int(ratio)) if float(ratio).is_integer() else str(ratio)


def run_key(strategy: str, ratio: float | str, seed: int) -> tuple[str, str, int]:
    """A hashable run identity that does not care whether params wrote ``1`` or ``1.0``."""
    return strategy, _ratio_text(ratio if isinstance(ratio, str) else float(ratio)), int(seed)


def expected_runs(strategies: list[str], ratios: list[float], seeds: list[int]
                  ) -> list[tuple[str, float | str, int]]:
    runs: list[tuple[str, float | str, int]] = [(*BASELINE, s) for s in seeds]
    runs += [(st, r, s) for st in strategies for r in ratios for s in seeds]
    runs += [(st, SYNTHETIC, s) for st in strategies for s in seeds]
    return runs


def collect(eval_dir: str | Path, runs: list[tuple[str, float | str, int]]) -> pd.DataFrame:
    """One row per (run, test set): accuracy, macro_f1 and per-class accuracy columns ``acc/<c>``.

    Each evaluation file names its run inside; only the runs of the current grid are kept, so
    files left by an earlier, larger grid are ignored. A missing run is an error.
    """
    wanted = {run_key(*r): r for r in runs}
    found: dict[tuple, dict] = {}
    for path in sorted(Path(eval_dir).glob("*.json")):
        metrics = load_json(path)
        run = metrics.get("run")
        if not run:
            raise DataFileError(f"{path}: no 'run' entry; not written by the evaluate stage")
        key = run_key(run["strategy"], run["ratio"], run["seed"])
        if key in wanted:
            found[key] = metrics
    missing = [wanted[k] for k in wanted if k not in found]
    if missing:
        raise DataFileError(f"{eval_dir}: no evaluation for runs {missing}")
    rows = []
    for key, (strategy, ratio, seed) in wanted.items():
        for test_set, m in found[key]["test"].items():
            row = {"strategy": strategy, "ratio": ratio, "seed": seed, "test_set": test_set,
                   "accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}
            row.update({f"acc/{c}": v for c, v in m["per_class_accuracy"].items()})
            rows.append(row)
    return pd.DataFrame(rows)


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


def summarise(df: pd.DataFrame, test_sets: list[str], level: float) -> dict[str, Any]:
    """Per (strategy, ratio, test set): accuracy and macro-F1 intervals, and the paired gain in
    accuracy over the baseline with a verdict (its interval excludes zero)."""
    base = df[(df.strategy == BASELINE[0])]
    results: dict[str, Any] = {}
    for (strategy, ratio), group in df.groupby(["strategy", "ratio"], sort=False):
        entry = results.setdefault(strategy, {}).setdefault(_ratio_text(ratio), {})
        for test_set in test_sets:
            g = group[group.test_set == test_set].sort_values("seed")
            b = base[base.test_set == test_set].set_index("seed").loc[g.seed]
            gain = g.accuracy.to_numpy() - b.accuracy.to_numpy()
            gi = interval(gain, level)
            verdict = None if gi["ci_low"] is None else bool(gi["ci_low"] > 0 or gi["ci_high"] < 0)
            entry[test_set] = {
                "accuracy": interval(g.accuracy.to_numpy(), level),
                "macro_f1": interval(g.macro_f1.to_numpy(), level),
                "gain_vs_baseline": {**gi, "distinguishable_from_zero": verdict},
            }
    return results


def peaks(results: dict[str, Any], test_sets: list[str]) -> dict[str, Any]:
    """Per strategy and test set: the mixed-training ratio with the highest mean accuracy."""
    out: dict[str, Any] = {}
    for strategy, by_ratio in results.items():
        if strategy == BASELINE[0]:
            continue
        for test_set in test_sets:
            candidates = {r: v[test_set]["accuracy"]["mean"] for r, v in by_ratio.items()
                          if r != SYNTHETIC}
            best = max(candidates, key=lambda r: (candidates[r], -float(r)))
            out.setdefault(strategy, {})[test_set] = {
                "ratio": float(best), "accuracy": candidates[best],
                "gain_vs_baseline": by_ratio[best][test_set]["gain_vs_baseline"]["mean"],
            }
    return out


def curves(results: dict[str, Any], test_sets: list[str]) -> pd.DataFrame:
    """Accuracy vs ratio per strategy (each curve starts at the baseline, ratio 0)."""
    rows = []
    base = results[BASELINE[0]][_ratio_text(BASELINE[1])]
    for strategy, by_ratio in results.items():
        if strategy == BASELINE[0]:
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


# ------------------------------------------------------------------------------------------
# The markdown report
# ------------------------------------------------------------------------------------------


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
        if strategy == BASELINE[0]:
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
             "agreement | FID | KID |", "|" + "---|" * 9]
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
                f"{_num(fk.get('fid'), '.2f')} | {_num(fk.get('kid'), '.4f')} |")
    return "\n".join(lines)


def _num(v: Any, fmt: str) -> str:
    return "–" if v is None else format(v, fmt)


def load_select_stats(select_dir: str | Path) -> dict[tuple[str, str], dict]:
    out = {}
    for path in sorted(Path(select_dir).glob("*.json")):
        st = load_json(path)
        out[run_key(st["strategy"], st["ratio"], 0)[:2]] = st
    return out


def render_markdown(*, summary: dict[str, Any], df: pd.DataFrame, select_stats: dict,
                    score: dict[str, Any], study: Any, source: str, figures: dict[str, str]) -> str:
    """The human-readable report. ``figures`` maps a name to an image path relative to it."""
    ratios = [_ratio_text(r) for r in study.ratios]
    test_sets = summary["test_sets"]
    level = int(round(summary["confidence_level"] * 100))
    out = [
        "# How far do GAN-generated images help the classifier?",
        "",
        f"Source dataset **{source}**; cross-dataset targets: "
        f"{', '.join(study.targets) or 'none'}. Seeds: {list(study.seeds)}. Accuracy in %, "
        f"mean ± standard deviation over seeds; in brackets, the gain over the real-only baseline "
        f"(paired by seed) with its {level}% t-interval, **bold** where the interval excludes zero.",
        "",
        f"![accuracy vs ratio]({figures['accuracy']})",
        "",
    ]
    for test_set in test_sets:
        role = "source test split" if test_set == source else "cross-dataset target"
        out += [f"## Accuracy on {test_set} ({role})", "",
                accuracy_table(summary["results"], test_set, ratios), ""]
        peaks_here = {s: p[test_set] for s, p in summary["peak_ratio"].items()}
        out += ["Peak ratio per strategy: " + ", ".join(
            f"{s} at {_ratio_text(p['ratio'])}x ({p['accuracy'] * 100:.1f}%)"
            for s, p in peaks_here.items()) + ".", ""]
    out += [f"## Per-class accuracy on {source} (mean over seeds, %)", "",
            table_markdown(per_class_table(df, source)), ""]
    overall = score["fid_kid"]["overall"]
    out += [
        "## The synthetic pool", "",
        f"FID {_num(overall['fid'], '.2f')} and KID {_num(overall['kid'], '.4f')} "
        f"(± {_num(overall.get('kid_std'), '.4f')}) against the real training images, in the "
        f"{overall['feature_space']} feature space ({overall['feature_dim']}-d; "
        f"{overall['n_real']} real vs {overall['n_fake']} synthetic images). Figures from "
        f"different feature spaces or sample counts are not comparable.", "",
        "| class | FID | KID | real | synthetic | scorer agreement |", "|---|---|---|---|---|---|",
    ]
    for name, fk in score["fid_kid"]["per_class"].items():
        agree = score["scores"]["per_class"][name]["agreement"]
        out.append(f"| {name} | {_num(fk['fid'], '.2f')} | {_num(fk['kid'], '.4f')} | "
                   f"{fk['n_real']} | {fk['n_fake']} | {agree:.2f} |")
    out += ["", "### Selections", "", selection_table(select_stats, study.strategies, study.ratios),
            "", "Agreement: the share of chosen images that the real-data scorer assigns to their "
            "intended class. A strategy that cannot fill K reports a shortfall; it is never padded.",
            ""]
    for title, key in (("GAN samples (fixed noise, one row per class)", "samples"),
                       ("Real training images", "real"),
                       ("Scorer confidence per class", "confidence_hist"),
                       ("Discriminator realism per class", "realism_hist"),
                       ("Best (left) and worst (right) by confidence", "confidence_best_worst"),
                       ("Best (left) and worst (right) by realism", "realism_best_worst")):
        if key in figures:
            out += [f"### {title}", "", f"![{key}]({figures[key]})", ""]
    return "\n".join(out)
