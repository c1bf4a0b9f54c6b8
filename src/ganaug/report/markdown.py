"""The study's report (``report.md``) rendered from its summary: its sections, in markdown (the
tables: :mod:`ganaug.report.tables`). Computes nothing new: every number comes from
:mod:`ganaug.report.summary`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ganaug.report.runs import (
    BASELINE,
    SYNTHETIC,
    SYNTHETIC_TEST,
    _ratio_text,
    coverage_note,
)
from ganaug.report.summary import per_class_table
from ganaug.report.tables import (
    _equivalent_cell,
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
    verdict_counts_table,
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
        *_reading_the_verdicts(summary, study, source),
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


def primary_section(summary: dict[str, Any]) -> list[str]:
    """The declared primary comparison, first in the report (nothing when none is declared)."""
    p = summary.get("primary")
    if p is None:
        return []
    level = int(round(summary["confidence_level"] * 100))
    alpha = summary["verdicts"]["alpha"]
    delta = summary["verdicts"]["equivalence_margin_points"]
    name = f"{p['strategy']} at {_ratio_text(p['ratio'])}x on {p['test_set']}"
    verdict = p["verdict"] + (" (a real effect, but within the margin)"
                              if p["within_margin"] and p["verdict"] != "equivalent" else "")
    poi = p["probability_of_improvement"]
    interval_text = ("" if p["ci_low"] is None else
                     f" [{p['ci_low'] * 100:+.1f}, {p['ci_high'] * 100:+.1f}]")
    share = ("" if poi["ci_low"] is None else
             f", {poi['share']:.0%} [{poi['ci_low']:.0%}, {poi['ci_high']:.0%}] ({level}% "
             f"Wilson interval)")
    out = ["## The primary comparison", "",
           f"Declared before the study: **{name}** against the real-only baseline, tested on its "
           f"own at alpha {alpha:.3g} (outside the Holm family).", "",
           f"- **Verdict: {verdict}.** Equivalence margin delta = {_points(delta)}.",
           f"- Gain {p['gain'] * 100:+.2f} points{interval_text} ({level}% t-interval over "
           f"{poi['n']} replicates); accuracy {p['accuracy'] * 100:.1f}% against the baseline's "
           f"{p['baseline_accuracy'] * 100:.1f}%.",
           f"- Probability of improvement: the mix beat the baseline in {poi['wins']} of "
           f"{poi['n']} replicates ({poi['ties']} ties){share}."]
    vary = (summary.get("vary") or {}).get("varied")
    if vary is not None:
        out.append(f"- Scope: {conditional_note(vary)}")
    eq = p.get("real_equivalent")
    if eq is not None:
        out.append(f"- Worth in real images: {_equivalent_cell(eq)} real images per class (see "
                   f"\"Worth how many real images?\").")
    plan = p.get("planned")
    if plan and plan.get("replicates") is not None:
        out.append(f"- To decide it: {plan['replicates']} confirmatory replicates "
                   f"({summary['plan']['primary']['params_change']}); see \"How many "
                   f"replicates would decide it\".")
    return out + [""]


def _reading_the_verdicts(summary: dict[str, Any], study: Any, source: str) -> list[str]:
    v = summary["verdicts"]
    alpha, n_seeds = v["alpha"], len(study.seeds)
    if n_seeds < 2:
        return ["## Reading the verdicts", "",
                "With one seed there is no spread over seeds: no interval, no test and no "
                "verdict. Add seeds to `study.seeds` (only the new training and evaluation "
                "instances run).", ""]
    m = len(study.strategies) * (len(study.ratios) + 1)
    n_seeds = len(study.confirmatory_seeds)
    p_min = v["smallest_sign_flip_p_value"]
    sign_flip = (f"with {n_seeds} seeds its smallest possible two-sided p-value is {p_min:.3g}, "
                 + ("so no permutation verdict can be significant at this level"
                    if p_min >= alpha else f"below {alpha:.3g}"))
    out = [
        "## Reading the verdicts", "",
        f"- **Family.** On each test set, every strategy at every ratio and every synthetic-only "
        f"model is compared with the baseline: {m} comparisons ({len(study.strategies)} "
        f"strategies x ({len(study.ratios)} ratios + synthetic only)), less the primary "
        f"comparison on its test set, which is tested alone; refinement rounds form a "
        f"family of their own. With {m} comparisons at {alpha:.3g} about {m * alpha:.1f} "
        f"uncorrected \"distinguishable\" gains per test set are expected by chance alone, even "
        f"if synthetic images changed nothing.",
        f"- **Test.** The paired t-test over seeds (the test the interval inverts); its p-values "
        f"are Holm-Bonferroni adjusted within the family, and a gain is distinguishable where the "
        f"adjusted p-value is below {alpha:.3g}. Beside it, the exact sign-flip permutation test "
        f"(all 2^n sign patterns of the per-seed differences; no normality assumed): "
        f"{sign_flip}. The t-test drives the verdicts because with this few seeds it is the only "
        f"one of the two that can reach significance; its normality assumption cannot be checked "
        f"on {n_seeds} values.",
        "- **What the interval covers.** The replicate-to-replicate variance of every source "
        "`study.vary` draws anew, with the test set fixed: every replicate is scored on the same "
        "test images. Test-set sampling is not in it: another test set of the same size would "
        "move every accuracy, the baseline's and the mixes' alike, by about "
        + ", ".join(f"±{se * 100:.1f} points on {t}" for t, se in v["test_set_sampling_se"].items()
                    if se is not None and t in (source, *study.targets))
        + " (binomial standard error of the baseline's accuracy).",
        training_bullet(summary.get("training") or {}),
        *_verdict_bullets(v, study),
        "",
        f"{conditional_note(study.vary)} Each verdict uses {n_seeds} replicates "
        f"(`n` per comparison in metrics/summary.json; fewer where a replicate's run is missing).",
        "",
        verdict_counts_table(v["counts"]),
    ]
    pilot = summary.get("pilot") or {}
    if pilot.get("exploratory_counts"):
        out += ["", f"**Exploratory** (the pilot, seeds {pilot['seeds']}: looked at to plan "
                f"the confirmatory seeds, so these verdicts decide nothing):", "",
                verdict_counts_table(pilot["exploratory_counts"])]
    return out + [""]


def training_bullet(training: dict[str, Any]) -> str:
    """How each run was trained: its members and its images per epoch."""
    members, per_epoch = training.get("members", 1), training.get("epoch_images")
    text = "- **Each run.** "
    if isinstance(members, list):
        text += f"Runs differ in their classifiers per run (`classifier.members`: {members})."
    elif members == 1:
        text += "One classifier per run (`classifier.members`: 1)."
    else:
        text += (f"{members} classifiers per run (`classifier.members`), each from its own seed; "
                 f"a run's accuracy is their mean, which shrinks the classifier's own "
                 f"seed-to-seed noise in every paired gain.")
    if per_epoch is None:
        return text + (" An epoch is one pass over the run's training set, so a run with more "
                       "images also takes more optimiser steps: a gain mixes the two "
                       "(`classifier.epoch_images` makes the steps equal).")
    return text + (f" Every run takes the same optimiser steps: an epoch is {per_epoch} images "
                   f"(`classifier.epoch_images`) whatever the training set's size, so a gain is "
                   f"what the images add, not a longer training.")


def _verdict_bullets(v: dict[str, Any], study: Any) -> list[str]:
    alpha, delta = v["alpha"], v["equivalence_margin_points"]
    if study.pilot:
        pilot = (f"- **Pilot.** The first {study.pilot} seeds {study.pilot_seeds} are a pilot: "
                 f"their verdicts are exploratory and the planner takes its SD from them; the "
                 f"verdicts here come from the {len(study.confirmatory_seeds)} confirmatory "
                 f"seeds {study.confirmatory_seeds}.")
    else:
        pilot = ("- **Adding seeds.** Seeds added after looking at these results must go in a "
                 "fresh confirmatory set: set `study.pilot` to the current number of seeds, then "
                 "add the new ones. Adding seeds until a verdict appears (optional stopping) "
                 "makes a false verdict far likelier than alpha.")
    return [
        f"- **Verdicts.** *helps* / *hurts*: the Holm-adjusted t-test rejects \"no change\" "
        f"(adjusted p < {alpha:.3g}), by the sign of the mean gain. *equivalent*: the gain lies "
        f"within ±delta = ±{_points(delta)}, shown by two one-sided t-tests (TOST; "
        f"its p-value, the larger of the two, Holm-adjusted over the same family). Where both "
        f"reject, the verdict keeps the direction and is marked \"within margin\": a real "
        f"effect smaller than delta. *undecided*: neither; the data cannot tell yet.",
        "- **What a verdict covers.** " + covers(study.vary),
        f"- **The margin delta** (`report.equivalence_margin`, {_points(delta)}) is the "
        f"smallest change in accuracy the study treats as mattering; params.yaml and README.md "
        f"(\"Replicates and verdicts\") say why this value.",
        pilot,
    ]


SOURCE_WORDS = {"subset": "the real training subset",
                "gan": "the GAN training run, its pool, the scorer and the selection draws",
                "classifier": "the classifiers' initialisation, batch order and augmentation"}


# The same sources, short, for the line beside each verdict table.
SOURCE_NAMES = {"subset": "real subset", "gan": "GAN training run",
                "classifier": "classifier seed"}


def covers(vary: list[str]) -> str:
    """What one replicate draws anew, and what every verdict is conditional on."""
    from ganaug.replicates import SOURCES, held_fixed

    varied = [SOURCE_WORDS[v] for v in SOURCES if v in vary]
    fixed = [SOURCE_WORDS[v] for v in held_fixed(vary)]
    text = ("A replicate is one seed of `study.seeds`, an independent draw of the whole "
            "pipeline; each draws anew " + "; ".join(varied) + " (`study.vary`).")
    if fixed:
        text += (" Held fixed, shared by every replicate: " + "; ".join(fixed) + ". **Every "
                 "verdict is conditional on that one draw**, not a statement about another one.")
    else:
        text += " No source is held fixed, so a verdict speaks for the method, not one draw."
    return text


def conditional_note(vary: list[str]) -> str:
    """The short line beside each verdict table: what the verdicts are conditional on."""
    from ganaug.replicates import held_fixed

    fixed = held_fixed(vary)
    if not fixed:
        return "Replicates vary the real subset, the GAN run and the classifier seed."
    return ("Conditional on one " + " and one ".join(SOURCE_NAMES[f] for f in fixed)
            + " (held fixed by `study.vary`).")


def planner_section(summary: dict[str, Any], study: Any) -> list[str]:
    """How many replicates would decide the undecided comparisons, and the params change."""
    plan = summary.get("plan") or {}
    if not plan.get("undecided"):
        return []
    v = summary["verdicts"]
    power, delta = v["planning"]["power"], v["equivalence_margin_points"]
    sd_from = (f"the pilot's {len(study.pilot_seeds)} seeds" if study.pilot
               else f"all {len(study.seeds)} seeds")
    out = ["## How many replicates would decide it", "",
           f"{plan['undecided']} comparisons are undecided. For each, from the observed SD of "
           f"its per-replicate gains ({sd_from}): the replicates the paired t-test needs to "
           f"detect a true gain of delta = {_points(delta)} with power {power:g}, and the "
           f"replicates TOST needs to show equivalence with power {power:g} when the true gain "
           f"is 0; the larger decides the comparison either way. The level is alpha / m, the "
           f"most stringent of Holm's steps for a family of m (alpha for the primary): "
           f"conservative. An SD from a few replicates is itself noisy: read the numbers as "
           f"an order of magnitude.", ""]
    primary = plan.get("primary") or {}
    if primary.get("replicates") is not None:
        out.append(f"- The primary comparison: {primary['replicates']} confirmatory "
                   f"replicates: {primary['params_change']}.")
    every = plan.get("all_undecided")
    if every and every["replicates"] is not None:
        out.append(f"- Every undecided comparison: {every['replicates']} (median "
                   f"{every['median']:g}): {every['params_change']}.")
    elif every:
        out.append(f"- {every['unreachable']} undecided comparisons cannot be planned (no SD "
                   f"from a single replicate, or beyond the planner's cap); the median of the "
                   f"others is {_num(every['median'], 'g')}.")
    return out + ["", "Per comparison: the \"replicates to decide\" column of each test set's "
                  "comparison table.", ""]


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


def _points(delta: float) -> str:
    return f"{delta:g} accuracy point" + ("" if delta == 1 else "s")


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
