"""The study's report (``report.md``) rendered from its summary: its sections, in markdown (the
tables: :mod:`ganaug.report.tables`; the verdict sections: :mod:`ganaug.report.reading`), and
the whole report. Computes nothing new: every number comes from the summary.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ganaug.report.reading import planner_section, primary_section, reading_the_verdicts
from ganaug.report.runs import (
    BASELINE,
    SYNTHETIC,
    SYNTHETIC_TEST,
    _ratio_text,
    coverage_note,
)
from ganaug.report.summary import per_class_table
from ganaug.report.tables import (
    _equivalent_point,
    _num,
    _size,
    accuracy_table,
    comparisons_table,
    equivalents_table,
    learning_curve_table,
    refine_table,
    selection_table,
    table_markdown,
    train_test_table,
)
from ganaug.stats import (
    BELOW,
    BEYOND,
    FLAT,
)

# Where the parallel runner keeps each instance's log (ganaug.parallel.coordinator).
LOGS = "`.dvc/tmp/parallel/logs/<stage>.log`"


def _intro(summary: dict[str, Any], study: Any, source: str, figures: dict[str, str]) -> list[str]:
    level = int(round(summary["confidence_level"] * 100))
    pilot = f", the first {study.pilot} a pilot" if study.pilot else ""
    return [
        "# How far do GAN-generated images help the classifier?",
        "",
        *missing_note(summary.get("replicates_left_out") or {}, LOGS),
        *primary_section(summary),
        f"Source dataset **{source}**; cross-dataset targets: "
        f"{', '.join(study.targets) or 'none'}. Seeds (replicates): {list(study.seeds)}{pilot}. "
        f"Accuracy in %, mean ± standard deviation over seeds; in brackets, the gain over the "
        f"real-only baseline (paired by seed) with its {level}% t-interval, per comparison "
        f"(uncorrected). **Bold**: the gain is distinguishable from seed noise after the "
        f"Holm-Bonferroni correction over its family of comparisons (see \"Reading the "
        f"verdicts\").",
        "",
        f"![accuracy vs ratio]({figures['accuracy']})",
        "",
        *reading_the_verdicts(summary, study, source),
        *planner_section(summary, study),
    ]


def missing_note(left_out: dict[str, list[list[Any]]], logs: str) -> list[str]:
    """Markdown: the replicates the report left out, each with the runs it lacks, and where
    their logs are."""
    if not left_out:
        return []
    lines = [f"**{len(left_out)} replicate(s) left out: their evaluations are incomplete** (a "
             f"stage of theirs failed or has not run). Every verdict, interval and count below "
             f"comes from the other replicates only; a replicate counts whole or not at all, "
             f"so that gains stay paired.", ""]
    for seed, runs in left_out.items():
        shown = ", ".join(f"{s} {_ratio_text(r)}" for s, r, _ in runs[:6])
        more = f" and {len(runs) - 6} more" if len(runs) > 6 else ""
        lines.append(f"- seed {seed}: no evaluation for {shown}{more}")
    lines += ["", f"The parallel runner names each failed instance with its log ({logs}); under "
              f"plain `dvc repro`, `dvc repro <stage>` shows its error. Once they run, `dvc "
              f"repro` remakes this report from every replicate.", ""]
    return lines


def _accuracy_sections(summary: dict[str, Any], source: str, ratios: list[str],
                       curve_sets: list[str]) -> list[str]:
    out = []
    counts = summary["verdicts"]["counts"]
    for test_set in curve_sets:
        role = "source test split" if test_set == source else "cross-dataset target"
        out += [f"## Accuracy on {test_set} ({role})", "",
                *coverage_note(summary.get("test_set_coverage") or {}, test_set),
                accuracy_table(summary["results"], test_set, ratios), ""]
        peaks_here = {s: p[test_set] for s, p in summary["peak_ratio"].items()}
        out += ["Peak ratio per strategy: " + ", ".join(
            f"{s} at {_ratio_text(p['ratio'])}x ({p['accuracy'] * 100:.1f}%"
            + (", gain distinguishable from zero" if p["distinguishable_from_zero"] else "") + ")"
            for s, p in peaks_here.items()) + ".", ""]
        grid = counts.get(test_set, {}).get("grid")
        if grid is not None:
            out += [f"Comparisons with the baseline on {test_set}: {grid['comparisons']}; "
                    f"distinguishable after Holm: {grid['distinguishable']} (before correction: "
                    f"{grid['distinguishable_uncorrected']}). Verdicts: {grid['helps']} helps, "
                    f"{grid['hurts']} hurts, {grid['equivalent']} equivalent, "
                    f"{grid['undecided']} undecided.", "",
                    comparisons_table(summary["results"], test_set,
                                      (summary.get("pilot") or {}).get("exploratory")), ""]
    return out


def _headline(equivalents: dict[str, Any], test_set: str, real_per_class: int | None,
              top: int) -> str:
    """The best mix on a test set in the reader's terms: worth how many real images."""
    mixes = [(e[test_set]["accuracy"], s, r, e[test_set]) for s, by_ratio in equivalents.items()
             if s != BASELINE[0] for r, e in by_ratio.items() if r != SYNTHETIC]
    if not mixes:
        return ""
    acc, strategy, ratio, eq = max(mixes, key=lambda m: (m[0], m[1], -float(m[2])))
    made_of = ("" if real_per_class is None else
               f" ({real_per_class} real + {_size(float(ratio) * real_per_class)} synthetic "
               f"images per class)")
    text = f"On {test_set} the best mix, {strategy} at {ratio}x{made_of}, reaches {acc * 100:.1f}%"
    point = eq["mean"]
    if point["where"] == BEYOND:
        return text + (f", more than the curve's top ({top} real images per class) reaches; "
                       f"add larger sizes to `study.real_sizes` to measure how much more.")
    if point["where"] == BELOW:
        return text + ", less than the curve's smallest size reaches."
    if point["where"] == FLAT:
        lo, hi = (_size(v) for v in point["flat_between"])
        return text + (f", the level of a flat stretch of the learning curve: from {lo} to {hi} "
                       f"real images per class the real-only models reach the same accuracy, so "
                       f"the curve cannot say how many real images this is worth.")
    text += f", as much as {_size(point['real_per_class'])} real images per class"
    if eq["ci_low"]["where"] is not None:
        text += f" [{_equivalent_point(eq['ci_low'])}, {_equivalent_point(eq['ci_high'])}]"
    worth = eq["synthetic_worth"]["mean"]
    if worth is not None:
        text += (f": its {_size(float(ratio) * real_per_class)} synthetic images per class are "
                 f"worth about {worth:.0f} real {'image' if round(worth) in (-1, 1) else 'images'}")
    return text + "."


def _equivalents_section(summary: dict[str, Any], study: Any, ratios: list[str],
                         figures: dict[str, str], real_per_class: int | None) -> list[str]:
    curve, equivalents = summary["learning_curve"], summary["real_equivalent"]
    if not curve:
        return ["## Worth how many real images?", "",
                "`study.real_sizes` is empty: no real-only learning curve was trained, so the "
                "models cannot be placed on one.", ""]
    sizes = sorted(study.real_sizes)
    level = int(round(summary["confidence_level"] * 100))
    own = ("every smaller one" if real_per_class is None else
           f"every smaller one; the size-{real_per_class} subset is the study's own training split")
    out = ["## Worth how many real images?", "",
           f"The real-only learning curve: the baseline's classifier trained on {sizes} real "
           f"images per class, with the same seeds. The subsets are nested and seeded (each size "
           f"holds {own}), so the curve's steps are added images, not different ones.", "",
           learning_curve_table(curve), "",
           f"Each model is placed on the curve: the number of real images per class whose "
           f"accuracy equals its mean accuracy, then the same for the two ends of its {level}% "
           f"interval (in brackets). The curve is read through an isotonic (non-decreasing) fit "
           f"of its means, linear in log(real images per class) between sizes (\"fit\" above "
           f"where seed noise made the measured curve dip); \"beyond\": above the curve's top "
           f"({sizes[-1]} per class), \"below\": under its bottom ({sizes[0]} per class); the "
           f"curve is not extrapolated. In parentheses: what the synthetic images are worth, the "
           f"equivalent minus the real images per class the model trained on. The interval "
           f"carries the model's seed-to-seed spread only, not the curve's own noise.", ""]
    if "real_equivalent" in figures:
        out += [f"![real-image equivalents]({figures['real_equivalent']})", ""]
    for test_set in curve:
        out += [f"### {test_set}", "", _headline(equivalents, test_set, real_per_class, sizes[-1]),
                "", equivalents_table(equivalents, test_set, ratios), ""]
    return out


def _diagnostics(score: dict[str, Any]) -> list[str]:
    """Precision/recall/density/coverage per class and the data-copying check."""
    out: list[str] = []
    prdc = score.get("prdc")
    if prdc:
        m = prdc["mean_over_classes"]
        out += ["", f"Precision, recall, density and coverage (k = {prdc['k']} nearest neighbours "
                f"in the scorer's space, each class against its real training images; mean over "
                f"classes: precision {_num(m['precision'], '.2f')}, recall "
                f"{_num(m['recall'], '.2f')}, density {_num(m['density'], '.2f')}, coverage "
                f"{_num(m['coverage'], '.2f')}). Precision: the share of synthetic images that "
                f"look like some real ones (fidelity); recall and coverage: the share of real "
                f"images the synthetic ones reach (diversity).", "",
                "| class | precision | recall | density | coverage |", "|---|---|---|---|---|"]
        for name, v in prdc["per_class"].items():
            out.append(f"| {name} | {_num(v['precision'], '.2f')} | {_num(v['recall'], '.2f')} "
                       f"| {_num(v['density'], '.2f')} | {_num(v['coverage'], '.2f')} |")
    mem = score.get("memorisation") or {}
    if mem.get("fraction_closer_to_test") is not None:
        line = (f"Memorisation check: {mem['fraction_closer_to_test']:.1%} of the synthetic images "
                f"are closer (scorer space) to a real test image than to any real training image "
                f"of their class; for real held-out images, which copy nothing, "
                f"{_num(mem['reference_fraction'], '.1%')}. A generator that copies its training "
                f"images scores far below the reference.")
        if mem.get("copying"):
            line = ("**Warning: the generator seems to copy its training images.** " + line)
        out += ["", line]
    return out


def _scorer_section(scorer: dict[str, Any]) -> list[str]:
    cal = scorer.get("calibration")
    if not cal:
        return []
    b, a = cal["before"], cal["after"]
    return ["## The scorer", "",
            f"Validation accuracy {scorer.get('best_val_accuracy', 0):.1%} (best epoch "
            f"{scorer.get('best_epoch')} of {scorer.get('epochs_run')}). Temperature scaling on "
            f"the validation split ({cal['n']} images): T = {cal['temperature']:.2f}; expected "
            f"calibration error {b['ece']:.3f} -> {a['ece']:.3f}, negative log-likelihood "
            f"{b['nll']:.3f} -> {a['nll']:.3f}, {_calibration_measured(cal)}. The confidence that the confidence, threshold "
            f"and combined strategies rank and threshold is the calibrated probability. In the "
            f"reliability diagram below, bars on the diagonal mean a confidence of p is right a "
            f"fraction p of the time; bars below it, an over-confident scorer.", ""]


def _calibration_measured(cal: dict[str, Any]) -> str:
    """Where the scorer's 'after' figures were measured (older metrics files lack the key)."""
    if str(cal.get("measured_on", "")).startswith("out-of-fold"):
        return ("the 'after' measured out-of-fold (the validation split halved, seeded and "
                "class-stratified; each half's images scaled by the temperature fitted on the "
                "other half, so no image is scored by a fit that saw it)")
    return ("the 'after' measured in sample, on the images the temperature was fitted on "
            "(flattering)")


def _pool_section(score: dict[str, Any], select_stats: dict, study: Any,
                  pool: dict[str, Any] | None = None) -> list[str]:
    overall = score["fid_kid"]["overall"]
    out = ["## The synthetic pool", ""]
    if pool and len(pool.get("per_replicate", {})) > 1:
        n, rng = len(pool["per_replicate"]), pool.get("fid_range") or [None, None]
        cov = pool.get("coverage_range") or [None, None]
        out += [f"Each of the {n} replicates has its own pool. Over them: FID mean "
                f"{_num(pool.get('fid'), '.2f')} (range {_num(rng[0], '.2f')} to "
                f"{_num(rng[1], '.2f')}), coverage mean {_num(pool.get('coverage'), '.2f')} "
                f"(range {_num(cov[0], '.2f')} to {_num(cov[1], '.2f')}). The details below, "
                f"the grids and the selection figures are replicate {study.seeds[0]}'s; the "
                f"selection table averages over the replicates.", ""]
    out += [
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
    out += _diagnostics(score)
    for space, fk_all in score.get("other_feature_spaces", {}).items():
        o = fk_all["overall"]
        out += ["", f"In the {space} feature space ({o['feature_dim']}-d, resize "
                f"{o.get('resize')}): FID {_num(o['fid'], '.2f')}, KID {_num(o['kid'], '.4f')} "
                f"({o['n_real']} real vs {o['n_fake']} synthetic)."]
    out += ["", "### Selections", "", selection_table(select_stats, study.strategies, study.ratios),
            "", "Agreement: the share of chosen images that the real-data scorer assigns to their "
            "intended class. Spread vs random: the mean distance (scorer space) from each chosen "
            "image to its nearest other chosen image of the class, as a share of the same for as "
            "many images drawn at random; under 1, the strategy favours near-duplicates. A "
            "strategy that cannot fill K reports a shortfall; it is never padded.",
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
    ("Confusion matrices on the source test split (first replicate; counts over its members)",
     "confusion"),
    ("Synthetic images closest to a training image (top), and that image (below)",
     "closest_to_train"),
    ("The scorer's reliability on the validation split", "reliability"),
    ("Validation accuracy by epoch of every classifier", "training_curves"),
)


def render_markdown(*, summary: dict[str, Any], df: pd.DataFrame, select_stats: dict,
                    score: dict[str, Any], study: Any, source: str, figures: dict[str, str],
                    refine: Any = None, refine_stats: dict | None = None,
                    real_per_class: int | None = None, scorer: dict | None = None) -> str:
    """The human-readable report. ``figures`` maps a name to an image path relative to it."""
    ratios = [_ratio_text(r) for r in study.ratios]
    test_sets = summary["test_sets"]
    curve_sets = [source, *study.targets]
    out = _intro(summary, study, source, figures)
    out += _accuracy_sections(summary, source, ratios, curve_sets)
    out += _equivalents_section(summary, study, ratios, figures, real_per_class)
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
    out += _pool_section(score, select_stats, study, summary.get("pool"))
    out += _scorer_section(scorer or {})
    for title, key in FIGURE_TITLES:
        if key in figures:
            out += [f"### {title}", "", f"![{key}]({figures[key]})", ""]
    return "\n".join(out)
