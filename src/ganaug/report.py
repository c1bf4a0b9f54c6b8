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
# Refinement rounds are runs of strategy "refine" whose "ratio" is the round's name.
REFINE = "refine"
# Test sets the evaluate stage adds when the synthetic test set is not empty.
SYNTHETIC_TEST, MIXED_TEST = "synthetic", "mixed"


def is_grid_strategy(strategy: str) -> bool:
    """A selection strategy of the ratio grid (not the baseline, not refinement)."""
    return strategy not in (BASELINE[0], REFINE)


def _ratio_text(ratio: float | str) -> str:
    if isinstance(ratio, str):
        return ratio
    return str(int(ratio)) if float(ratio).is_integer() else str(ratio)


def run_key(strategy: str, ratio: float | str, seed: int) -> tuple[str, str, int]:
    """A hashable run identity that does not care whether params wrote ``1`` or ``1.0``."""
    return strategy, _ratio_text(ratio if isinstance(ratio, str) else float(ratio)), int(seed)


def expected_runs(strategies: list[str], ratios: list[float], seeds: list[int],
                  rounds: list[str] = ()) -> list[tuple[str, float | str, int]]:
    runs: list[tuple[str, float | str, int]] = [(*BASELINE, s) for s in seeds]
    runs += [(st, r, s) for st in strategies for r in ratios for s in seeds]
    runs += [(st, SYNTHETIC, s) for st in strategies for s in seeds]
    runs += [(REFINE, r, s) for r in rounds for s in seeds]
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


def load_json_dir(path: str | Path) -> dict[str, dict]:
    """Every ``*.json`` in ``path`` by file stem (an absent directory is empty)."""
    return {p.stem: load_json(p) for p in sorted(Path(path).glob("*.json"))}


def _intro(summary: dict[str, Any], study: Any, source: str, figures: dict[str, str]) -> list[str]:
    level = int(round(summary["confidence_level"] * 100))
    return [
        "# How far do GAN-generated images help the classifier?",
        "",
        f"Source dataset **{source}**; cross-dataset targets: "
        f"{', '.join(study.targets) or 'none'}. Seeds: {list(study.seeds)}. Accuracy in %, "
        f"mean ± standard deviation over seeds; in brackets, the gain over the real-only baseline "
        f"(paired by seed) with its {level}% t-interval, **bold** where the interval excludes "
        f"zero (a gain distinguishable from seed noise).",
        "",
        f"![accuracy vs ratio]({figures['accuracy']})",
        "",
    ]


def _accuracy_sections(summary: dict[str, Any], source: str, ratios: list[str],
                       curve_sets: list[str]) -> list[str]:
    out = []
    for test_set in curve_sets:
        role = "source test split" if test_set == source else "cross-dataset target"
        out += [f"## Accuracy on {test_set} ({role})", "",
                accuracy_table(summary["results"], test_set, ratios), ""]
        peaks_here = {s: p[test_set] for s, p in summary["peak_ratio"].items()}
        out += ["Peak ratio per strategy: " + ", ".join(
            f"{s} at {_ratio_text(p['ratio'])}x ({p['accuracy'] * 100:.1f}%"
            + (", gain distinguishable from zero" if p["distinguishable_from_zero"] else "") + ")"
            for s, p in peaks_here.items()) + ".", ""]
    return out


def _pool_section(score: dict[str, Any], select_stats: dict, study: Any) -> list[str]:
    overall = score["fid_kid"]["overall"]
    out = [
        "## The synthetic pool", "",
        f"FID {_num(overall['fid'], '.2f')} and KID {_num(overall['kid'], '.4f')} "
        f"(± {_num(overall.get('kid_std'), '.4f')}) against the real training images, in the "
        f"{overall['feature_space']} feature space ({overall['feature_dim']}-d, resize "
        f"{overall.get('resize', 'none')}; {overall['n_real']} real vs {overall['n_fake']} "
        f"synthetic images). Figures from different feature spaces, resize modes or sample counts "
        f"are not comparable; where a class has no more images than feature dimensions its FID "
        f"covariance is singular and biased, so read KID beside it.", "",
        "| class | FID | KID | real | synthetic | scorer agreement | spread vs real |",
        "|---|---|---|---|---|---|---|",
    ]
    spread = score.get("diversity", {}).get("per_class", {})
    for name, fk in score["fid_kid"]["per_class"].items():
        agree = score["scores"]["per_class"][name]["agreement"]
        ratio = spread.get(name, {}).get("ratio")
        out.append(f"| {name} | {_num(fk['fid'], '.2f')} | {_num(fk['kid'], '.4f')} | "
                   f"{fk['n_real']} | {fk['n_fake']} | {agree:.2f} | {_num(ratio, '.2f')} |")
    if spread:
        out += ["", "Spread vs real: how much the synthetic images of a class vary (mean per-pixel "
                "standard deviation) as a share of how much its real images vary; near 1 for a GAN "
                "that covers the class, near 0 for one that makes the same image whatever the "
                "noise."]
        collapsed = score["diversity"].get("collapsed", [])
        if collapsed:
            out += ["", f"**Warning:** in {', '.join(collapsed)} the synthetic images vary less "
                    f"than {score['diversity']['collapse_threshold']:.0%} as much as the real ones: "
                    "the GAN has probably collapsed onto a few images per class, and selecting "
                    "among them can add little. Look at the sample grid below; more GAN steps, a "
                    "wider network or `gan.arch: wgan_gp` may help."]
    for space, fk_all in score.get("other_feature_spaces", {}).items():
        o = fk_all["overall"]
        out += ["", f"In the {space} feature space ({o['feature_dim']}-d, resize "
                f"{o.get('resize')}): FID {_num(o['fid'], '.2f')}, KID {_num(o['kid'], '.4f')} "
                f"({o['n_real']} real vs {o['n_fake']} synthetic)."]
    out += ["", "### Selections", "", selection_table(select_stats, study.strategies, study.ratios),
            "", "Agreement: the share of chosen images that the real-data scorer assigns to their "
            "intended class. A strategy that cannot fill K reports a shortfall; it is never padded.",
            ""]
    return out


FIGURE_TITLES = (
    ("GAN samples (fixed noise, one row per class)", "samples"),
    ("Real training images", "real"),
    ("GAN losses", "gan_losses"),
    ("Scorer confidence per class", "confidence_hist"),
    ("Discriminator realism per class", "realism_hist"),
    ("Best (left) and worst (right) by confidence", "confidence_best_worst"),
    ("Best (left) and worst (right) by realism", "realism_best_worst"),
    ("Confusion matrices on the source test split (seed of the first run, counts)", "confusion"),
)


def render_markdown(*, summary: dict[str, Any], df: pd.DataFrame, select_stats: dict,
                    score: dict[str, Any], study: Any, source: str, figures: dict[str, str],
                    refine: Any = None, refine_stats: dict | None = None) -> str:
    """The human-readable report. ``figures`` maps a name to an image path relative to it."""
    ratios = [_ratio_text(r) for r in study.ratios]
    test_sets = summary["test_sets"]
    curve_sets = [source, *study.targets]
    out = _intro(summary, study, source, figures)
    out += _accuracy_sections(summary, source, ratios, curve_sets)
    if SYNTHETIC_TEST in test_sets:
        out += ["## Real, synthetic and mixed training and test sets", "",
                "Train on real and test on synthetic images, train on synthetic and test on real "
                "(the Classification Accuracy Score), and train and test on the mix.", "",
                train_test_table(summary["results"], source, study.strategies,
                                 study.synthetic_only_ratio), ""]
    if refine is not None and refine.rounds:
        out += ["## Iterative refinement", "",
                f"Each round fine-tunes the GAN it starts from for {refine.steps} steps on the real "
                f"images plus its {refine.strategy} selection at {_ratio_text(refine.ratio)}x, "
                f"then generates, scores and selects again; its classifiers train on real + the "
                f"new selection.", "", refine_table(summary["results"], curve_sets, refine,
                                                    refine_stats or {}), ""]
    for test_set in test_sets:
        out += [f"## Per-class accuracy on {test_set} (mean over seeds, %)", "",
                table_markdown(per_class_table(df, test_set)), ""]
    out += _pool_section(score, select_stats, study)
    for title, key in FIGURE_TITLES:
        if key in figures:
            out += [f"### {title}", "", f"![{key}]({figures[key]})", ""]
    return "\n".join(out)
