"""Stage report: metrics/summary.json (the headline figures), accuracy-vs-ratio plot data and PNG,
and a markdown report with the tables and figures."""

from __future__ import annotations

import os
from pathlib import Path

from ganaug.config import ReportConfig, StudyConfig
from ganaug.io import atomic_path, load_json, save_json
from ganaug.report import (
    collect,
    curves,
    expected_runs,
    load_select_stats,
    peaks,
    render_markdown,
    summarise,
)
from ganaug.report_figures import accuracy_vs_ratio_figure
from ganaug.stage import exit_with, load_section, parser, read_params


def build_parser():
    p = parser(__doc__)
    p.add_argument("--eval", required=True, help="directory of evaluation JSON files")
    p.add_argument("--select", required=True, help="directory of selection stats JSON files")
    p.add_argument("--score", required=True, help="score metrics JSON")
    p.add_argument("--figures", nargs="*", default=[], help="extra images to show in the report")
    p.add_argument("--summary", required=True, help="summary metrics JSON to write")
    p.add_argument("--plots", required=True, help="directory for plot data, the PNG and the report")
    return p


def declared_params(args) -> list[str]:
    return ["study", "report", "data.source"]


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    params = read_params(declared_params(args), args.params)
    study = load_section(params, "study", StudyConfig)
    cfg = load_section(params, "report", ReportConfig)
    source = params["data"]["source"]
    test_sets = [source, *study.targets]

    df = collect(args.eval, expected_runs(study.strategies, study.ratios, study.seeds))
    results = summarise(df, test_sets, cfg.confidence_level)
    summary = {"source": source, "test_sets": test_sets, "seeds": list(study.seeds),
               "confidence_level": cfg.confidence_level, "results": results,
               "peak_ratio": peaks(results, test_sets)}
    score = load_json(args.score)
    summary["pool"] = {k: score["fid_kid"]["overall"][k]
                       for k in ("feature_space", "fid", "kid", "n_real", "n_fake")}

    plots = Path(args.plots)
    curve = curves(results, test_sets)
    with atomic_path(plots / "accuracy_vs_ratio.csv") as tmp:
        curve.to_csv(tmp, index=False)
    accuracy_vs_ratio_figure(curve, test_sets, plots / "accuracy_vs_ratio.png")
    figures = {"accuracy": "accuracy_vs_ratio.png"}
    figures.update({Path(f).stem: os.path.relpath(f, plots) for f in args.figures})
    md = render_markdown(summary=summary, df=df, select_stats=load_select_stats(args.select),
                         score=score, study=study, source=source, figures=figures)
    with atomic_path(plots / "README.md") as tmp:
        tmp.write_text(md + "\n")
    save_json(args.summary, summary)


if __name__ == "__main__":
    exit_with(main)
