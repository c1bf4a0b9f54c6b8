"""Stage report: metrics/summary.json (every figure: the verdicts per comparison, the replicate
planner, the primary comparison, the real-only learning curve and each model's real-image
equivalent), metrics/headline.json (the answer at a glance), plot data and PNGs, and a markdown
report with the tables and figures."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from ganaug.configs.refine import RefineConfig
from ganaug.configs.report import ReportConfig
from ganaug.configs.study import StudyConfig
from ganaug.io import DataFileError, atomic_path, load_json, save_json
from ganaug.replicates import held_fixed
from ganaug.report.curve import learning_curve, learning_curve_frame, real_equivalents
from ganaug.report.figures import (
    accuracy_vs_ratio_figure,
    confusion_figure,
    gan_losses_figure,
    real_equivalent_figure,
    reliability_figure,
    training_curves_figure,
)
from ganaug.report.markdown import render_markdown
from ganaug.report.plan import plan_replicates, study_plan
from ganaug.report.runs import (
    BASELINE,
    MIXED_TEST,
    SYNTHETIC,
    SYNTHETIC_TEST,
    collect,
    coverage_of_test_sets,
    expected_runs,
    incomplete_replicates,
    load_evaluations,
    load_json_dir,
    load_select_stats,
    run_key,
    training_protocol,
)
from ganaug.report.summary import (
    curves,
    exploratory,
    headline,
    peaks,
    pool_over_replicates,
    primary_summary,
    summarise,
    verdict_counts,
    verdict_summary,
)
from ganaug.stage import exit_with, load_section, parser, read_params

logger = logging.getLogger("ganaug.report")


def build_parser():
    p = parser(__doc__)
    p.add_argument("--eval", required=True, help="directory of evaluation JSON files")
    p.add_argument("--select", required=True, help="directory of selection stats JSON files")
    p.add_argument("--refine", required=True, help="directory of refinement round stats")
    p.add_argument("--score", required=True,
                   help="directory of the replicates' pool score metrics (<seed>.json)")
    p.add_argument("--gan-plots", required=True,
                   help="directory of the replicates' GAN plots (<seed>/: loss curves, grids)")
    p.add_argument("--scorer-metrics", required=True,
                   help="directory of the replicates' scorer metrics (<seed>.json: validation "
                        "accuracy, calibration)")
    p.add_argument("--train-curves", required=True,
                   help="directory of the classifiers' training curves (dvclive, one per run)")
    p.add_argument("--score-plots", required=True,
                   help="directory of the replicates' score figures (<seed>/)")
    p.add_argument("--summary", required=True, help="summary metrics JSON to write")
    p.add_argument("--headline", required=True, help="headline metrics JSON to write")
    p.add_argument("--plots", required=True, help="directory for plot data, the PNGs and the report")
    return p


def declared_params(args) -> list[str]:
    return ["study", "report", "refine", "data.source", "data.real_per_class"]


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    params = read_params(declared_params(args), args.params)
    study = load_section(params, "study", StudyConfig)
    cfg = load_section(params, "report", ReportConfig)
    refine = load_section(params, "refine", RefineConfig)
    source = params["data"]["source"]
    real_per_class = params["data"]["real_per_class"]

    declared = list(study.seeds)
    runs = expected_runs(study.strategies, study.ratios, study.seeds, list(refine.rounds),
                         study.real_sizes)
    # A replicate with a failed (or not yet run) stage is left out whole, and named.
    evaluations = load_evaluations(args.eval)  # read once: the tables and figures use it
    missing = incomplete_replicates(evaluations, runs)
    if missing:
        study = complete_replicates(study, missing, args.eval)
        runs = expected_runs(study.strategies, study.ratios, study.seeds, list(refine.rounds),
                             study.real_sizes)
    df = collect(args.eval, runs, evaluations)
    found = set(df.test_set)
    test_sets = [source, *study.targets] + [t for t in (SYNTHETIC_TEST, MIXED_TEST) if t in found]
    curve_sets = [source, *study.targets]
    summary = decide_study(df, study, cfg, source, test_sets, curve_sets, real_per_class,
                           declared)
    summary["replicates_left_out"] = {str(seed): [list(r) for r in rs]
                                      for seed, rs in sorted(missing.items())}
    # Pool and scorer details: the first replicate's, and the pool's figures over all of them.
    first = study.seeds[0]
    scores = {seed: load_json(Path(args.score) / f"{seed}.json") for seed in study.seeds}
    score = scores[first]
    scorer = load_json(Path(args.scorer_metrics) / f"{first}.json")
    summary["pool"] = pool_over_replicates(scores)
    summary["vary"] = {"varied": list(study.vary), "held_fixed": held_fixed(study.vary)}
    summary["training"] = training_protocol(evaluations)
    summary["test_set_coverage"] = coverage_of_test_sets(args.eval, (*BASELINE, first),
                                                         evaluations)

    plots = Path(args.plots)
    figures = write_figures(args, plots, summary, curve_sets, study, source, scorer,
                            evaluations)
    md = render_markdown(summary=summary, df=df, select_stats=load_select_stats(args.select),
                         score=score, study=study, source=source, figures=figures,
                         refine=refine, refine_stats=load_json_dir(args.refine),
                         real_per_class=real_per_class, scorer=scorer)
    with atomic_path(plots / "README.md") as tmp:
        tmp.write_text(md + "\n")
    save_json(args.summary, summary)
    save_json(args.headline, headline(summary, curve_sets))


def complete_replicates(study, missing: dict[int, list], eval_dir: str):
    """``study`` with only the seeds whose every run was evaluated, the pilot's count cut to
    the pilot seeds that remain (so no confirmatory seed becomes a pilot one); a one-line error
    when too few replicates remain to decide anything."""
    kept = [s for s in study.seeds if s not in missing]
    pilot = len([s for s in study.pilot_seeds if s in kept]) if study.pilot else study.pilot
    logger.warning("%s: replicate(s) %s left out of the report, their evaluations are "
                   "incomplete (first missing: %s)", eval_dir, sorted(missing),
                   "; ".join(f"seed {s}: {rs[0][0]} {rs[0][1]}" for s, rs in missing.items()))
    try:
        return dataclasses.replace(study, seeds=kept, pilot=pilot)
    except ValueError as exc:
        raise DataFileError(
            f"{eval_dir}: only seeds {kept} of {list(study.seeds)} have every evaluation "
            f"(missing, e.g.: {[rs[0] for rs in missing.values()][:4]}), which leaves too few "
            f"replicates to decide anything ({exc}); run the missing stages first") from exc


def decide_study(df, study, cfg, source: str, test_sets: list[str], curve_sets: list[str],
                 real_per_class: int | None, declared: list[int] | None = None) -> dict:
    """The statistics of summary.json: verdicts from the confirmatory seeds (all seeds without a
    pilot), the pilot's exploratory verdicts, the replicate plan and the primary comparison.
    ``declared``: the seeds params.yaml lists (default: the study's), from which the planner
    numbers new seeds; more than the study's when a replicate was left out."""
    level, margin = cfg.confidence_level, cfg.equivalence_margin / 100  # points -> fraction
    p = study.primary_comparison
    primary = None if p is None else (p.strategy, p.ratio, p.test_set)
    confirmatory = df[df.seed.isin(study.confirmatory_seeds)]
    results = summarise(confirmatory, test_sets, level, margin, primary)
    pilot = (summarise(df[df.seed.isin(study.pilot_seeds)], test_sets, level, margin, primary)
             if study.pilot_seeds else None)
    plan_replicates(results, pilot or results, test_sets, 1 - level, margin, cfg.power)
    curve = learning_curve(df, curve_sets, level)
    equivalents = real_equivalents(results, curve, real_per_class)
    return {"source": source, "test_sets": test_sets, "seeds": list(study.seeds),
            "confidence_level": level, "results": results,
            "verdicts": verdict_summary(results, confirmatory, test_sets, level,
                                        cfg.equivalence_margin, cfg.power),
            "pilot": {"seeds": study.pilot_seeds, "confirmatory_seeds": study.confirmatory_seeds,
                      "exploratory": None if pilot is None else exploratory(pilot, test_sets),
                      "exploratory_counts": None if pilot is None else verdict_counts(
                          pilot, test_sets)},
            "primary": None if primary is None else primary_summary(results, primary,
                                                                    equivalents, level),
            "plan": study_plan(results, test_sets, list(declared or study.seeds), primary),
            "peak_ratio": peaks(results, curve_sets),
            "learning_curve": curve,
            "real_equivalent": equivalents}


def write_figures(args, plots: Path, summary: dict, curve_sets: list[str], study,
                  source: str, scorer: dict, evaluations: dict) -> dict[str, str]:
    """The report's own figures; returns name -> path relative to the report."""
    results = summary["results"]
    curve = curves(results, curve_sets)
    with atomic_path(plots / "accuracy_vs_ratio.csv") as tmp:
        curve.to_csv(tmp, index=False)
    accuracy_vs_ratio_figure(curve, curve_sets, plots / "accuracy_vs_ratio.png")
    figures = {"accuracy": "accuracy_vs_ratio.png"}
    if summary["learning_curve"]:
        with atomic_path(plots / "learning_curve.csv") as tmp:
            learning_curve_frame(summary["learning_curve"]).to_csv(tmp, index=False)
        real_equivalent_figure(summary["learning_curve"], summary["real_equivalent"],
                               plots / "real_equivalent.png")
        figures["real_equivalent"] = "real_equivalent.png"
    first = Path(args.gan_plots) / str(study.seeds[0])
    if gan_losses_figure(first / "plots" / "metrics", plots / "gan_losses.png"):
        figures["gan_losses"] = "gan_losses.png"
    if "calibration" in scorer:
        reliability_figure(scorer["calibration"], plots / "reliability.png")
        figures["reliability"] = "reliability.png"
    if training_curves_figure(args.train_curves, plots / "training_curves.png"):
        figures["training_curves"] = "training_curves.png"
    matrices, classes = confusion_matrices(evaluations, results, study, source)
    confusion_figure(matrices, classes, plots / "confusion.png")
    figures["confusion"] = "confusion.png"
    shown = [first / "samples.png", first / "real.png",
             *(Path(args.score_plots) / str(study.seeds[0]) / f"{name}.png" for name in (
                 "confidence_hist", "realism_hist", "confidence_best_worst",
                 "realism_best_worst", "closest_to_train"))]
    figures.update({f.stem: os.path.relpath(f, plots) for f in shown if f.is_file()})
    return figures


def confusion_matrices(by_key: dict, results: dict, study, source: str):
    """Source-test confusion matrices of the first seed: the baseline, each strategy at its peak
    ratio, and each synthetic-only model; ``by_key`` is :func:`load_evaluations`'s."""
    seed = study.seeds[0]
    wanted = {"real only": (*BASELINE, seed)}
    for s in study.strategies:
        by_ratio = {r: v for r, v in results[s].items() if r != SYNTHETIC}
        best = max(by_ratio, key=lambda r: by_ratio[r][source]["accuracy"]["mean"])
        wanted[f"{s} {best}x"] = (s, best, seed)
        wanted[f"{s} synthetic only"] = (s, SYNTHETIC, seed)
    matrices, classes = {}, None
    for title, run in wanted.items():
        m = by_key[run_key(*run)]
        matrices[title] = m["test"][source]["confusion"]
        classes = m["classes"]
    return matrices, classes


if __name__ == "__main__":
    exit_with(main)
