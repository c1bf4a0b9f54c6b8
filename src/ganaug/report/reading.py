"""The report's verdict sections, in markdown: the primary comparison, how to read the
verdicts (the family, the test, what the interval and a verdict cover, how each run was
trained, the margin) and the replicate planner. Computes nothing: the numbers come from
:mod:`ganaug.report.summary` and :mod:`ganaug.report.plan`.
"""

from __future__ import annotations

from typing import Any

from ganaug.report.runs import _ratio_text
from ganaug.report.tables import _equivalent_cell, _num, verdict_counts_table


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



def reading_the_verdicts(summary: dict[str, Any], study: Any, source: str) -> list[str]:
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



def _points(delta: float) -> str:
    return f"{delta:g} accuracy point" + ("" if delta == 1 else "s")
