"""Verdicts (helps / hurts / equivalent / undecided), TOST, the replicate planner and the
probability-of-improvement interval: pure functions checked by hand or against textbook values."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ganaug.config import ReportConfig, StudyConfig, parse
from ganaug.report.summary import headline
from ganaug.stats import (
    EQUIVALENT,
    HELPS,
    HURTS,
    UNDECIDED,
    replicates_for_difference,
    replicates_for_equivalence,
    t_test_power,
    tost_power,
    tost_pvalue,
    wilson_interval,
)


def test_tost_pvalue_by_hand():
    d = [0.1, -0.2, 0.3, 0.0]  # mean 0.05, sd 0.2082, se 0.1041
    mean, se = 0.05, np.std(d, ddof=1) / 2
    p_lower = stats.t.sf((mean + 0.5) / se, 3)
    p_upper = stats.t.cdf((mean - 0.5) / se, 3)
    assert tost_pvalue(d, 0.5) == pytest.approx(max(p_lower, p_upper))
    assert max(p_lower, p_upper) == p_upper  # the mean is nearer the upper margin


def test_tost_pvalue_is_the_interval_inside_the_margin():
    """TOST at alpha rejects exactly when the (1 - 2 alpha) t-interval lies inside the margin."""
    d = np.array([0.2, -0.1, 0.4, 0.1, 0.0])
    se = d.std(ddof=1) / math.sqrt(5)
    upper = d.mean() + stats.t.ppf(0.95, 4) * se  # the 90% interval's upper end
    assert tost_pvalue(d, upper + 1e-9) < 0.05 < tost_pvalue(d, upper - 1e-9)


def test_tost_pvalue_limits():
    assert tost_pvalue([0.3, 0.3, 0.3], 0.5) == 0.0  # no spread, inside the margin
    assert tost_pvalue([0.5, 0.5], 0.5) == 1.0  # on the margin: not equivalent
    assert tost_pvalue([0.7, 0.7], 0.5) == 1.0
    assert tost_pvalue([0.1], 0.5) is None
    with pytest.raises(ValueError, match="finite"):
        tost_pvalue([0.1, float("nan")], 0.5)
    with pytest.raises(ValueError, match="margin"):
        tost_pvalue([0.1, 0.2], 0.0)


@pytest.mark.parametrize(("mean", "p_diff", "p_eq", "expected"), [
    (0.02, 0.01, 0.50, (HELPS, None)),
    (-0.02, 0.01, 0.50, (HURTS, None)),
    (0.002, 0.01, 0.01, (HELPS, True)),  # real but smaller than the margin: keeps direction
    (-0.002, 0.01, 0.01, (HURTS, True)),
    (0.001, 0.50, 0.01, (EQUIVALENT, True)),
    (0.02, 0.50, 0.50, (UNDECIDED, None)),
    (0.02, None, None, (UNDECIDED, None)),  # one replicate: no test
    (0.0, 0.0, 1.0, (UNDECIDED, None)),  # a zero mean never "helps"
])
def test_decide(mean, p_diff, p_eq, expected):
    from ganaug.stats import decide as decide_verdict

    assert decide_verdict(mean, p_diff, p_eq, 0.05) == expected


def test_difference_planner_matches_the_textbook():
    """One-sample two-sided t-test, d = 0.5, alpha 0.05, power 0.8: n = 34 (G*Power; the
    normal approximation gives 31.4, the t-test needs more)."""
    assert replicates_for_difference(0.5, 1.0, 0.05) == 34
    assert replicates_for_difference(-0.5, 1.0, 0.05) == 34  # the sign does not matter
    assert t_test_power(34, 0.5, 1.0, 0.05) >= 0.8 > t_test_power(33, 0.5, 1.0, 0.05)
    # d = 0.8: 15; d = 0.2: 199 (G*Power's one-sample t-test figures)
    assert replicates_for_difference(0.8, 1.0, 0.05) == 15
    assert replicates_for_difference(0.2, 1.0, 0.05) == 199


def test_planner_limits():
    assert replicates_for_difference(0.01, 0.0, 0.05) == 2  # no spread: two replicates decide
    assert replicates_for_difference(0.0, 1.0, 0.05) is None  # nothing to detect
    assert replicates_for_difference(1e-4, 1.0, 0.05) is None  # beyond the cap
    assert replicates_for_equivalence(1.0, 0.0, 0.05) == 2
    assert replicates_for_equivalence(1.0, 1.0, 0.05, true_gain=1.0) is None
    with pytest.raises(ValueError, match="SD"):
        replicates_for_difference(0.5, float("nan"), 0.05)
    with pytest.raises(ValueError, match="alpha"):
        replicates_for_difference(0.5, 1.0, 0.0)


def test_tost_power_against_simulation():
    """The exact one-integral power agrees with simulated TOST decisions."""
    rng = np.random.default_rng(0)
    n, sd, margin, alpha = 8, 1.0, 1.2, 0.05
    x = rng.normal(0.2, sd, (100_000, n))
    m, se = x.mean(1), x.std(1, ddof=1) / math.sqrt(n)
    crit = stats.t.ppf(1 - alpha, n - 1)
    simulated = np.mean(((m + margin) / se > crit) & ((m - margin) / se < -crit))
    assert tost_power(n, 0.2, sd, margin, alpha) == pytest.approx(simulated, abs=0.005)


def test_equivalence_planner_is_the_smallest_n_with_the_power():
    n = replicates_for_equivalence(1.0, 1.0, 0.05)
    assert tost_power(n, 0.0, 1.0, 1.0, 0.05) >= 0.8 > tost_power(n - 1, 0.0, 1.0, 1.0, 0.05)
    assert n == 11  # sd = margin at alpha 0.05, true gain 0
    # a stricter level needs more
    assert replicates_for_equivalence(1.0, 1.0, 0.05 / 20) > n


def test_wilson_interval_by_hand():
    z = stats.norm.ppf(0.975)
    lo, hi = wilson_interval(3, 3, 0.95)
    assert hi == 1.0
    assert lo == pytest.approx(3 / (3 + z * z))  # p = 1: the lower end is n / (n + z^2)
    lo, hi = wilson_interval(5, 10, 0.95)
    assert lo == pytest.approx(1 - hi) and lo == pytest.approx(0.2366, abs=1e-4)
    assert wilson_interval(0, 0, 0.95) is None


# --------------------------------------------------------------------------------------------
# The report: verdicts per comparison, the primary comparison, the pilot and the planner
# --------------------------------------------------------------------------------------------

STUDY = {"strategies": ["random", "confidence"], "ratios": [1, 2], "targets": [],
         "synthetic_only_ratio": 1}
# Per seed: the baseline's accuracy and each mix's paired gain on "src".
BASE = [0.80, 0.85, 0.90, 0.82, 0.88, 0.86]
GAINS = {
    ("random", 1.0): [0.05, 0.06, 0.04, 0.05, 0.06, 0.04],  # clearly helps
    ("random", 2.0): [-0.05, -0.06, -0.04, -0.05, -0.06, -0.04],  # clearly hurts
    ("random", "synthetic"): [0.001, -0.001, 0.0, 0.001, -0.001, 0.0],  # well inside 1 point
    ("confidence", 1.0): [0.02, -0.01, 0.03, -0.02, 0.01, 0.0],  # the primary: undecided
    ("confidence", 2.0): [0.03, 0.03, 0.03, 0.03, 0.03, 0.03],  # zero variance: t infinite
    ("confidence", "synthetic"): [-0.3, -0.2, -0.25, -0.3, -0.2, -0.25],
}


def study_df(seeds: int = 6) -> pd.DataFrame:
    rows = [{"strategy": "none", "ratio": 0.0, "seed": s, "test_set": "src", "accuracy": BASE[s],
             "macro_f1": BASE[s], "n_test": 400} for s in range(seeds)]
    for (strategy, ratio), gains in GAINS.items():
        rows += [{"strategy": strategy, "ratio": ratio, "seed": s, "test_set": "src",
                  "accuracy": BASE[s] + gains[s], "macro_f1": BASE[s], "n_test": 400}
                 for s in range(seeds)]
    return pd.DataFrame(rows)


def decide(study: dict | None = None, report: dict | None = None) -> dict:
    from stages.report import decide_study

    study_cfg = parse(StudyConfig, {**STUDY, "seeds": list(range(6)), **(study or {})}, "study")
    report_cfg = parse(ReportConfig, report or {}, "report")
    df = study_df().query("seed in @study_cfg.seeds")
    return decide_study(df, study_cfg, report_cfg, "src", ["src"], ["src"], None)


def gain(summary: dict, strategy: str, ratio: str) -> dict:
    return summary["results"][strategy][ratio]["src"]["gain_vs_baseline"]


def test_the_four_verdicts_on_a_hand_made_study():
    s = decide()
    assert gain(s, "random", "1")["verdict"] == "helps"
    assert gain(s, "random", "2")["verdict"] == "hurts"
    assert gain(s, "random", "synthetic")["verdict"] == "equivalent"
    assert gain(s, "random", "synthetic")["within_margin"] is True
    assert gain(s, "confidence", "1")["verdict"] == "undecided"
    # Identical gains of 3 points: the t statistic is infinite, p = 0; outside the margin.
    g = gain(s, "confidence", "2")
    assert g["p_value_t"] == 0.0 and g["verdict"] == "helps" and g["within_margin"] is None
    assert gain(s, "none", "0")["verdict"] is None  # the baseline is no comparison
    counts = s["verdicts"]["counts"]["src"]["grid"]
    assert (counts["helps"], counts["hurts"], counts["equivalent"], counts["undecided"]) == \
        (2, 2, 1, 1)


def test_a_margin_larger_than_every_gain():
    """With delta = 10 points a clear gain of 5 is both real and within the margin: helps,
    flagged within_margin; the noisy primary-to-be becomes equivalent."""
    s = decide(report={"equivalence_margin": 1.0})
    g = gain(s, "random", "synthetic")
    assert g["verdict"] == "equivalent"  # +-0.1: no difference shown
    s = decide(report={"equivalence_margin": 10.0})  # delta above every gain of the mixes
    assert gain(s, "random", "1")["verdict"] == "helps"
    assert gain(s, "random", "1")["within_margin"] is True
    assert gain(s, "confidence", "1")["verdict"] == "equivalent"


def test_the_primary_is_tested_alone_and_leaves_the_family():
    primary = {"strategy": "confidence", "ratio": 1, "test_set": "src"}
    s = decide(study={"primary": primary})
    g = gain(s, "confidence", "1")
    assert g["family"] == "primary" and g["family_size"] == 1
    assert g["p_value_holm"] == g["p_value_t"]  # no correction
    assert gain(s, "random", "1")["family_size"] == 5  # the grid family lost one member
    p = s["primary"]
    assert p["verdict"] == "undecided"
    # wins: 0.02, 0.03, 0.01 > 0; one tie (0.0); Wilson interval of 3 / 6
    assert p["probability_of_improvement"]["wins"] == 3
    assert p["probability_of_improvement"]["ties"] == 1
    lo, hi = wilson_interval(3, 6, 0.95)
    assert p["probability_of_improvement"]["ci_low"] == pytest.approx(lo)
    assert p["probability_of_improvement"]["ci_high"] == pytest.approx(hi)
    assert p["gain"] == pytest.approx(np.mean(GAINS["confidence", 1.0]))


def test_the_planner_for_an_undecided_comparison():
    s = decide(study={"primary": {"strategy": "confidence", "ratio": 1, "test_set": "src"}})
    g = gain(s, "confidence", "1")
    sd = float(np.std(GAINS["confidence", 1.0], ddof=1))
    plan = g["planned"]
    assert plan["sd"] == pytest.approx(sd)
    assert plan["planning_alpha"] == pytest.approx(0.05)  # the primary: alpha itself
    assert plan["difference"] == replicates_for_difference(0.01, sd, 0.05)
    assert plan["equivalence"] == replicates_for_equivalence(0.01, sd, 0.05)
    assert plan["replicates"] == max(plan["difference"], plan["equivalence"])
    assert s["plan"]["primary"]["params_change"] == (
        f"set study.pilot: 6 and add {plan['replicates']} new seeds to study.seeds "
        f"(6 to {5 + plan['replicates']})")
    assert "planned" not in gain(s, "random", "1")  # decided: nothing to plan


def test_the_pilot_decides_nothing_and_gives_the_planner_its_sd():
    s = decide(study={"pilot": 3})
    assert s["pilot"]["seeds"] == [0, 1, 2] and s["pilot"]["confirmatory_seeds"] == [3, 4, 5]
    g = gain(s, "confidence", "1")
    assert g["n"] == 3  # the confirmatory seeds only
    assert g["mean"] == pytest.approx(np.mean(GAINS["confidence", 1.0][3:]))
    pilot_sd = float(np.std(GAINS["confidence", 1.0][:3], ddof=1))
    assert g["planned"]["sd"] == pytest.approx(pilot_sd)
    assert g["planned"]["planning_alpha"] == pytest.approx(0.05 / 6)  # Holm's first step
    explored = s["pilot"]["exploratory"]["confidence"]["1"]["src"]
    assert explored["n"] == 3
    assert s["pilot"]["exploratory_counts"]["src"]["grid"]["comparisons"] == 6


def test_one_seed_gives_no_verdict_and_no_plan():
    """A study needs 2 replicates (params refuse 1); where only one replicate's runs came back
    (the others failed), no interval, no verdict and no plan."""
    from stages.report import decide_study

    study_cfg = parse(StudyConfig, {**STUDY, "seeds": [0, 1]}, "study")
    df = study_df().query("seed == 0")
    s = decide_study(df, study_cfg, parse(ReportConfig, {}, "report"), "src", ["src"], ["src"],
                     None)
    g = gain(s, "confidence", "1")
    assert g["verdict"] == "undecided" and g["planned"]["replicates"] is None
    assert s["verdicts"]["counts"] == {}
    assert s["plan"]["all_undecided"]["unreachable"] == 6


def test_a_nan_accuracy_is_an_error_naming_the_run(tmp_path):
    from ganaug.io import DataFileError
    from ganaug.report.runs import collect

    for strategy, ratio, acc in (("none", 0, 0.9), ("random", 1, float("nan"))):
        (tmp_path / f"{strategy}.json").write_text(json.dumps({
            "run": {"strategy": strategy, "ratio": ratio, "seed": 0},
            "test": {"src": {"accuracy": acc, "macro_f1": 0.5, "per_class_accuracy": {}}}}))
    with pytest.raises(DataFileError, match=r"'random', '1', 0.*accuracy must be a finite"):
        collect(tmp_path, [("none", 0.0, 0), ("random", 1.0, 0)])


def test_the_headline_is_small_and_leads_with_the_primary():
    s = decide(study={"primary": {"strategy": "confidence", "ratio": 1, "test_set": "src"}})
    from ganaug.report.summary import pool_over_replicates

    score = {"fid_kid": {"overall": {"fid": 12.345}}, "prdc": {"mean_over_classes":
                                                                {"coverage": 0.61}}}
    other = {"fid_kid": {"overall": {"fid": 14.345}}, "prdc": {"mean_over_classes":
                                                                {"coverage": 0.41}}}
    s["pool"] = pool_over_replicates({0: score, 1: other})
    assert s["pool"]["fid_range"] == [12.345, 14.345]
    assert s["pool"]["per_replicate"]["1"]["coverage"] == 0.41
    h = headline(s, ["src"])
    assert h["primary"]["verdict"] == "undecided"
    assert h["primary"]["comparison"] == "confidence 1x src"
    assert h["src"]["best"] == "random 1x"  # the highest mean accuracy among the mixes
    assert (h["src"]["helps"], h["src"]["undecided"]) == (2, 0)
    assert h["pool"] == {"fid": 13.35, "coverage": 0.51}  # means over the replicates
    assert h["replicates"] == 6

    def flat(x):
        return sum(flat(v) for v in x.values()) if isinstance(x, dict) else 1
    assert flat(h) <= 30


def test_the_report_text_names_the_verdicts_the_margin_and_the_plan():
    from ganaug.report.reading import planner_section, primary_section

    s = decide(study={"primary": {"strategy": "confidence", "ratio": 1, "test_set": "src"}})
    study = parse(StudyConfig, {**STUDY, "seeds": list(range(6))}, "study")
    text = "\n".join(primary_section(s))
    assert "**Verdict: undecided.**" in text and "delta = 1 accuracy point." in text
    assert "Wilson" in text and "3 of 6 replicates (1 ties)" in text
    plan = "\n".join(planner_section(s, study))
    assert "set study.pilot: 6 and add" in plan
    assert "alpha / m" in plan


def test_the_comparisons_table_shows_the_pilot_as_exploratory():
    from ganaug.report.tables import comparisons_table

    s = decide(study={"pilot": 3})
    table = comparisons_table(s["results"], "src", s["pilot"]["exploratory"]).splitlines()
    assert table[0].endswith("| pilot (exploratory) |")
    assert len(table) == 2 + 6 and all(line.count("|") == 12 for line in table)
    row = next(line for line in table if line.startswith("| random | 1x |"))
    pilot = s["pilot"]["exploratory"]["random"]["1"]["src"]
    assert row.endswith(f"| {pilot['verdict']} ({pilot['mean'] * 100:+.1f}) |")


def test_a_replicate_with_a_missing_evaluation_is_left_out_whole():
    from ganaug.errors import UserError
    from ganaug.report.markdown import missing_note
    from ganaug.report.runs import expected_runs, incomplete_replicates, run_key
    from stages.report import complete_replicates

    runs = expected_runs(["random"], [1.0], [0, 1, 2, 3], [], [])
    found = {run_key(*r): {} for r in runs if r != ("random", 1.0, 1)}
    missing = incomplete_replicates(found, runs)
    assert missing == {1: [("random", 1.0, 1)]}
    study = parse(StudyConfig, {**STUDY, "seeds": [0, 1, 2, 3], "pilot": 2}, "study")
    kept = complete_replicates(study, missing, "metrics/eval")
    # The pilot keeps its remaining seed; no confirmatory seed turns into a pilot one.
    assert kept.seeds == [0, 2, 3] and kept.pilot_seeds == [0]
    assert kept.confirmatory_seeds == [2, 3]
    note = "\n".join(missing_note({"1": [["random", 1.0, 1]]}, "the logs"))
    assert "1 replicate(s) left out" in note and "seed 1: no evaluation for random 1" in note
    # Too few left to decide: one line naming the seeds kept and what is missing.
    with pytest.raises(UserError, match=r"only seeds \[0, 1, 3\] of \[0, 1, 2, 3\]"):
        complete_replicates(study, {2: [("random", 1.0, 2)]}, "metrics/eval")


@pytest.mark.e2e
def test_the_report_of_a_study_with_a_failed_replicate_names_it(tiny_study, tmp_path,
                                                                monkeypatch):
    """The tiny study's results with a third replicate (a copy of the second's files), then one
    evaluation of the second removed, as a failed stage leaves it: the report stage uses
    replicates 0 and 2, and its report and summary name replicate 1."""
    import json
    import shutil

    import yaml

    from stages.report import main

    src = tiny_study[0]
    for part in ("metrics", "plots"):
        shutil.copytree(src / part, tmp_path / part)
    for path in list((tmp_path / "metrics" / "eval").glob("*.json")):
        data = json.loads(path.read_text())
        if data["run"]["seed"] == 1:
            data["run"]["seed"] = 2
            (path.parent / f"copy2-{path.name}").write_text(json.dumps(data))
    for folder in ("score", "scorer"):
        shutil.copy(tmp_path / "metrics" / folder / "1.json", tmp_path / "metrics" / folder / "2.json")
    for folder in ("gan", "score"):
        shutil.copytree(tmp_path / "plots" / folder / "1", tmp_path / "plots" / folder / "2")
    params = yaml.safe_load((src / "params.yaml").read_text())
    params["study"]["seeds"] = [0, 1, 2]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    (tmp_path / "metrics" / "eval" / "random-1-1.json").unlink()
    (tmp_path / "metrics" / "summary.json").unlink()
    monkeypatch.chdir(tmp_path)
    main(["--eval", "metrics/eval", "--select", "metrics/select", "--refine", "metrics/refine",
          "--score", "metrics/score", "--gan-plots", "plots/gan", "--scorer-metrics",
          "metrics/scorer", "--train-curves", "plots/train", "--score-plots", "plots/score",
          "--summary", "metrics/summary.json", "--headline", "metrics/headline.json",
          "--plots", "plots/report"])
    summary = json.loads((tmp_path / "metrics" / "summary.json").read_text())
    assert summary["seeds"] == [0, 2]
    assert summary["replicates_left_out"] == {"1": [["random", 1.0, 1]]}
    report = (tmp_path / "plots" / "report" / "README.md").read_text()
    assert "1 replicate(s) left out" in report and "seed 1: no evaluation for random 1" in report
    assert "Seeds (replicates): [0, 2]" in report
