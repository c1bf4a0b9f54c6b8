"""The study's statistics over seeds: intervals, paired gains, family-wise (Holm) verdicts, peaks,
curves, the real-only learning curve read backwards, and collecting runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ganaug.io import DataFileError
from ganaug.report import markdown as report_markdown
from ganaug.report import runs as report_runs
from ganaug.report.curve import learning_curve, learning_curve_frame, real_equivalents
from ganaug.report.runs import collect, expected_runs, run_key
from ganaug.report.summary import (
    curves,
    interval,
    peaks,
    summarise,
    verdict_counts,
    verdict_summary,
)
from ganaug.report.tables import comparisons_table, equivalents_table
from ganaug.stats import (
    holm,
    invert_curve,
    isotonic,
    paired_t_pvalue,
    real_equivalent,
    sign_flip_pvalue,
    smallest_sign_flip_pvalue,
)

LEVEL = 0.95


def test_interval_by_hand_on_three_values():
    out = interval(np.array([1.0, 2.0, 4.0]), LEVEL)
    mean = 7 / 3
    std = math.sqrt(((1 - mean) ** 2 + (2 - mean) ** 2 + (4 - mean) ** 2) / 2)
    half = stats.t.ppf(0.975, df=2) * std / math.sqrt(3)  # t_{0.975, 2} = 4.303
    assert out["n"] == 3
    assert out["mean"] == pytest.approx(mean)
    assert out["std"] == pytest.approx(std)
    assert out["ci_low"] == pytest.approx(mean - half)
    assert out["ci_high"] == pytest.approx(mean + half)
    assert half == pytest.approx(4.302653 * std / math.sqrt(3), rel=1e-6)


def test_interval_at_another_level_and_with_one_value():
    narrow = interval(np.array([1.0, 2.0, 4.0]), 0.5)
    wide = interval(np.array([1.0, 2.0, 4.0]), 0.99)
    assert narrow["ci_high"] - narrow["ci_low"] < wide["ci_high"] - wide["ci_low"]
    half = stats.t.ppf(0.75, df=2) * narrow["std"] / math.sqrt(3)
    assert narrow["ci_high"] == pytest.approx(narrow["mean"] + half)
    one = interval(np.array([0.7]), LEVEL)
    assert one == {"n": 1, "mean": 0.7, "std": None, "ci_low": None, "ci_high": None}


# --------------------------------------------------------------------------------------------
# A hand-made study: baseline, two strategies at ratios 1 and 2, synthetic only; two test sets.
# --------------------------------------------------------------------------------------------

BASE = {"src": [0.60, 0.80, 0.90], "tgt": [0.30, 0.40, 0.50]}
# Per (strategy, ratio, test set): paired gains over the baseline of the same seed.
GAINS = {
    ("random", 1.0, "src"): [0.05, 0.06, 0.04],  # clearly above zero
    ("random", 2.0, "src"): [0.08, 0.09, 0.07],  # the peak
    ("random", "synthetic", "src"): [-0.3, -0.3, -0.3],
    ("confidence", 1.0, "src"): [0.03, -0.02, 0.00],  # indistinguishable from zero
    ("confidence", 2.0, "src"): [0.03, -0.02, 0.00],  # exactly the accuracies of ratio 1
    ("confidence", "synthetic", "src"): [-0.2, -0.2, -0.2],
    ("random", 1.0, "tgt"): [-0.05, -0.06, -0.04],  # clearly below zero: also distinguishable
    ("random", 2.0, "tgt"): [0.01, 0.0, -0.01],
    ("random", "synthetic", "tgt"): [0.5, 0.5, 0.5],  # the best, but not a mixing ratio
    ("confidence", 1.0, "tgt"): [0.0, 0.1, -0.1],
    ("confidence", 2.0, "tgt"): [0.1, 0.1, 0.1],
    ("confidence", "synthetic", "tgt"): [0.0, 0.0, 0.0],
}


@pytest.fixture
def df() -> pd.DataFrame:
    rows = []
    for test_set, accs in BASE.items():
        for seed, acc in enumerate(accs):
            rows.append({"strategy": "none", "ratio": 0.0, "seed": seed, "test_set": test_set,
                         "accuracy": acc, "macro_f1": acc - 0.1})
    for (strategy, ratio, test_set), gains in GAINS.items():
        for seed, g in enumerate(gains):
            acc = BASE[test_set][seed] + g
            rows.append({"strategy": strategy, "ratio": ratio, "seed": seed,
                         "test_set": test_set, "accuracy": acc, "macro_f1": acc - 0.1})
    # Shuffle the rows: pairing must go by seed, not by position.
    order = np.random.default_rng(0).permutation(len(rows))
    return pd.DataFrame([rows[i] for i in order])


@pytest.fixture
def results(df) -> dict:
    return summarise(df, ["src", "tgt"], LEVEL)


def test_summarise_keys(results):
    assert set(results) == {"none", "random", "confidence"}
    assert set(results["none"]) == {"0"}
    assert set(results["random"]) == {"1", "2", "synthetic"}
    assert set(results["random"]["1"]) == {"src", "tgt"}


def test_summarise_paired_gain_by_hand(results):
    g = results["random"]["1"]["src"]["gain_vs_baseline"]
    assert g["n"] == 3
    assert g["mean"] == pytest.approx(0.05)
    assert g["std"] == pytest.approx(0.01)
    half = stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)
    assert g["ci_low"] == pytest.approx(0.05 - half) and g["ci_high"] == pytest.approx(0.05 + half)
    assert g["distinguishable_from_zero"] is True
    # Unpaired, the same accuracies would not separate: the baseline's spread is 0.15.
    acc = results["random"]["1"]["src"]["accuracy"]
    assert acc["mean"] == pytest.approx(np.mean(BASE["src"]) + 0.05)
    assert acc["std"] > 0.1
    assert results["random"]["1"]["src"]["macro_f1"]["mean"] == pytest.approx(acc["mean"] - 0.1)


def two_sided_p_df2(t: float) -> float:
    """The t distribution with 2 degrees of freedom has the CDF 1/2 + t / (2 sqrt(t^2 + 2)), so a
    two-sided p-value is 1 - |t| / sqrt(t^2 + 2): checkable with a pocket calculator."""
    return 1 - abs(t) / math.sqrt(t * t + 2)


def test_summarise_verdicts(results):
    def verdict(strategy, ratio, test_set, key="distinguishable_from_zero"):
        return results[strategy][ratio][test_set]["gain_vs_baseline"][key]

    assert verdict("random", "1", "src") is True
    assert verdict("confidence", "1", "src") is False
    assert results["confidence"]["1"]["src"]["gain_vs_baseline"]["mean"] == pytest.approx(0.01 / 3)
    # A clear loss is a real effect too, before correction; Holm over the 6 comparisons on tgt
    # takes it back (see test_holm_on_the_hand_made_study).
    assert verdict("random", "1", "tgt", "distinguishable_uncorrected") is True
    assert verdict("random", "1", "tgt") is False
    assert verdict("random", "2", "tgt") is False
    assert verdict("none", "0", "src") is False  # the baseline against itself
    assert verdict("none", "0", "src", "family") is None
    assert results["none"]["0"]["src"]["gain_vs_baseline"]["mean"] == 0


def test_holm_on_the_hand_made_study(results):
    """The family on each test set: 2 strategies x (2 ratios + synthetic only) = 6 comparisons.

    src: constant gains (random and confidence synthetic-only) have p ~ 0; random 2x has gains
    .08 .09 .07 (t = .08 / (.01 / sqrt 3) = 8 sqrt 3), random 1x .05 .06 .04 (t = 5 sqrt 3),
    confidence 1x and 2x .03 -.02 0 (t = 0.01/3 / (0.0252 / sqrt 3)). Holm multiplies the sorted
    p-values by 6, 5, 4, 3, 2, 1 and carries the running maximum.
    """
    p_r2, p_r1 = two_sided_p_df2(8 * math.sqrt(3)), two_sided_p_df2(5 * math.sqrt(3))
    assert p_r1 == pytest.approx(0.013072, abs=1e-6)
    src = {(s, r): results[s][r]["src"]["gain_vs_baseline"]
           for s in ("random", "confidence") for r in ("1", "2", "synthetic")}
    assert src["random", "1"]["p_value_t"] == pytest.approx(p_r1)
    assert src["random", "2"]["p_value_t"] == pytest.approx(p_r2)
    assert src["random", "synthetic"]["p_value_t"] < 1e-12  # -0.3 on every seed, up to rounding
    assert src["random", "2"]["p_value_holm"] == pytest.approx(4 * p_r2)
    assert src["random", "1"]["p_value_holm"] == pytest.approx(3 * p_r1)  # 0.039 < 0.05
    assert src["random", "1"]["distinguishable_from_zero"] is True
    p_c = src["confidence", "1"]["p_value_t"]
    assert src["confidence", "1"]["p_value_holm"] == pytest.approx(min(1, 2 * p_c))
    assert src["confidence", "2"]["p_value_holm"] == pytest.approx(min(1, 2 * p_c))
    assert all(g["family"] == "grid" and g["family_size"] == 6 for g in src.values())
    # tgt: random 1x (losses .05 .06 .04) has the same p as random 1x on src, but ranks third
    # behind two constant changes (random synthetic +.5, confidence 2x +.1): 4 x 0.0131 > 0.05.
    tgt = results["random"]["1"]["tgt"]["gain_vs_baseline"]
    assert tgt["p_value_t"] == pytest.approx(p_r1)
    assert tgt["p_value_holm"] == pytest.approx(4 * p_r1)
    assert tgt["distinguishable_from_zero"] is False
    # Constant zero gains: p = 1, never distinguishable.
    zero = results["confidence"]["synthetic"]["tgt"]["gain_vs_baseline"]
    assert zero["p_value_t"] == 1.0 and zero["distinguishable_from_zero"] is False


def test_holm_verdicts_follow_the_confidence_level(df):
    """At level 0.99 (alpha 0.01) the 0.039 of random 1x on src no longer passes."""
    strict = summarise(df, ["src", "tgt"], 0.99)
    g = strict["random"]["1"]["src"]["gain_vs_baseline"]
    assert g["p_value_holm"] == pytest.approx(3 * two_sided_p_df2(5 * math.sqrt(3)))
    assert g["distinguishable_from_zero"] is False


def test_sign_flip_beside_the_t_test(results):
    """Three seeds of one sign: the exact sign-flip p is 2/8 whatever the size of the gains."""
    for s, r in (("random", "1"), ("random", "2"), ("random", "synthetic")):
        assert results[s][r]["src"]["gain_vs_baseline"]["p_value_sign_flip"] == 0.25


def test_verdict_counts_and_summary(results, df):
    counts = verdict_counts(results, ["src", "tgt"])
    # src: random 1x, 2x and both synthetic-only models after Holm (and before); the random
    # mixes help, the synthetic-only models hurt, confidence's mixes are undecided (their gain's
    # 90% interval, +0.3 +- 4.2 points, is far wider than the default margin of 1 point).
    assert counts["src"] == {"grid": {"comparisons": 6, "distinguishable": 4,
                                      "distinguishable_uncorrected": 4, "helps": 2, "hurts": 2,
                                      "equivalent": 0, "undecided": 2}}
    # tgt: random synthetic and confidence 2x (constant) help; random 1x only before
    # correction; confidence synthetic-only (gains exactly 0 on every seed) is equivalent.
    assert counts["tgt"]["grid"] == {"comparisons": 6, "distinguishable": 2,
                                     "distinguishable_uncorrected": 3, "helps": 2, "hurts": 0,
                                     "equivalent": 1, "undecided": 3}
    df = df.assign(n_test=100)
    summary = verdict_summary(results, df, ["src", "tgt"], LEVEL)
    assert summary["alpha"] == pytest.approx(0.05)
    assert summary["counts"] == counts
    assert summary["smallest_sign_flip_p_value"] == 0.25
    p = np.mean(BASE["src"])  # binomial standard error of the baseline's accuracy on 100 images
    assert summary["test_set_sampling_se"]["src"] == pytest.approx(math.sqrt(p * (1 - p) / 100))


def test_comparisons_table_lists_the_family_smallest_p_first(results):
    table = comparisons_table(results, "tgt").splitlines()
    assert len(table) == 2 + 6
    assert "only uncorrected" in table[4]  # third smallest p: random 1x
    assert table[4].startswith("| random | 1x |")
    assert sum("**distinguishable**" in line for line in table) == 2


def test_refinement_rounds_are_a_family_of_their_own(df):
    random_1 = df[(df.strategy == "random") & (df.ratio == 1.0)]
    rounds = pd.DataFrame([{**row, "strategy": "refine", "ratio": "r1"}
                           for row in random_1.to_dict("records")])
    results = summarise(pd.concat([df, rounds]), ["src", "tgt"], LEVEL)
    g = results["refine"]["r1"]["src"]["gain_vs_baseline"]
    assert g["family"] == "refine" and g["family_size"] == 1
    assert g["p_value_holm"] == pytest.approx(g["p_value_t"])  # alone: no correction
    assert results["random"]["1"]["src"]["gain_vs_baseline"]["family_size"] == 6  # unchanged


# --------------------------------------------------------------------------------------------
# The tests themselves, by hand
# --------------------------------------------------------------------------------------------


def test_paired_t_pvalue_by_hand():
    assert paired_t_pvalue([0.05, 0.06, 0.04]) == pytest.approx(two_sided_p_df2(5 * math.sqrt(3)))
    assert paired_t_pvalue([-0.05, -0.06, -0.04]) == paired_t_pvalue([0.05, 0.06, 0.04])
    assert paired_t_pvalue([0.2, 0.2]) == 0.0 and paired_t_pvalue([0.0, 0.0, 0.0]) == 1.0
    assert paired_t_pvalue([0.3]) is None
    d = np.array([0.1, -0.02, 0.05, 0.07, 0.0])
    assert paired_t_pvalue(d) == pytest.approx(stats.ttest_1samp(d, 0.0).pvalue)


def test_sign_flip_pvalue_by_hand():
    # +-1 +-2 +-0.5: |sums| 3.5, 2.5, 1.5, 0.5 twice each; the observed 2.5 is matched or
    # beaten by 4 of the 8 patterns.
    assert sign_flip_pvalue([1.0, 2.0, -0.5]) == 0.5
    assert sign_flip_pvalue([0.1, 0.2, 0.3]) == 0.25 == smallest_sign_flip_pvalue(3)
    assert sign_flip_pvalue([0.1, 0.2, 0.3, 0.4]) == 0.125 == smallest_sign_flip_pvalue(4)
    assert sign_flip_pvalue([0.0, 0.0, 0.0]) == 1.0
    assert sign_flip_pvalue([0.4]) is None
    assert sign_flip_pvalue(np.ones(21)) is None  # past the exact enumeration


def test_sign_flip_pvalue_agrees_with_scipy_exact_permutation_test():
    d = np.array([0.3, -0.1, 0.25, 0.4, 0.05, -0.02])
    ref = stats.permutation_test((d,), lambda x, axis: np.mean(x, axis=axis),
                                 permutation_type="samples", alternative="two-sided")
    assert sign_flip_pvalue(d) == pytest.approx(ref.pvalue)


def test_holm_by_hand():
    # Sorted: .005 x4 = .02, .01 x3 = .03, .03 x2 = .06, .04 x1 = .04 -> max(.06, .04) = .06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1, order kept
    assert holm([0.02]) == pytest.approx([0.02])  # one comparison: nothing to correct
    assert len(holm([])) == 0
    # Rejects what Bonferroni rejects and more: of .02 and .04, Holm passes both at .05
    # (.02 x 2, then .04 x 1), Bonferroni only the first (.04 and .08).
    assert (holm([0.02, 0.04]) < 0.05).all() and not (np.array([0.02, 0.04]) * 2 < 0.05).all()


def test_summarise_with_one_seed_has_no_verdict(df):
    one = summarise(df[df.seed == 1], ["src"], LEVEL)
    g = one["random"]["1"]["src"]["gain_vs_baseline"]
    assert g["mean"] == pytest.approx(0.06) and g["distinguishable_from_zero"] is None


def test_peaks_pick_the_best_mixing_ratio_ties_to_the_lower(results):
    p = peaks(results, ["src", "tgt"])
    assert set(p) == {"random", "confidence"}
    assert p["random"]["src"]["ratio"] == 2.0
    assert p["random"]["src"]["accuracy"] == pytest.approx(np.mean(BASE["src"]) + 0.08)
    assert p["random"]["src"]["gain_vs_baseline"] == pytest.approx(0.08)
    assert p["confidence"]["src"]["ratio"] == 1.0  # ratios 1 and 2 tie exactly
    assert p["random"]["tgt"]["ratio"] == 2.0  # synthetic only is higher but not a candidate
    assert p["confidence"]["tgt"]["ratio"] == 2.0


def test_curves_start_at_the_baseline_at_ratio_zero(results):
    c = curves(results, ["src", "tgt"])
    assert set(c.strategy) == {"random", "confidence"}
    for (strategy, test_set), g in c.groupby(["strategy", "test_set"]):
        assert g.ratio.tolist() == [0.0, 1.0, 2.0]  # sorted, no synthetic-only point
        first = g.iloc[0]
        assert first["mean"] == pytest.approx(np.mean(BASE[test_set]))
        assert first["seeds"] == 3
        assert first["ci_low"] < first["mean"] < first["ci_high"]
        peak = g[g.ratio == 2.0].iloc[0]
        assert peak["mean"] == pytest.approx(
            np.mean(BASE[test_set]) + np.mean(GAINS[(strategy, 2.0, test_set)]))


def test_curves_with_one_seed_have_degenerate_intervals(df):
    c = curves(summarise(df[df.seed == 0], ["src"], LEVEL), ["src"])
    assert (c["std"] == 0).all()
    assert (c["ci_low"] == c["mean"]).all() and (c["ci_high"] == c["mean"]).all()


# --------------------------------------------------------------------------------------------
# collect
# --------------------------------------------------------------------------------------------


def write_eval(directory, name, strategy, ratio, seed, acc):
    per_class = {"0": acc, "1": acc / 2}
    (directory / name).write_text(json.dumps({
        "run": {"strategy": strategy, "ratio": ratio, "seed": seed},
        "test": {"src": {"accuracy": acc, "macro_f1": acc - 0.1, "per_class_accuracy": per_class},
                 "tgt": {"accuracy": acc / 2, "macro_f1": acc / 3,
                         "per_class_accuracy": {"0": 0.1}}},
    }))


def test_expected_runs_lists_baseline_mixes_and_synthetic_only():
    runs = expected_runs(["random"], [1, 2], [0, 1])
    assert runs[:2] == [("none", 0.0, 0), ("none", 0.0, 1)]
    assert ("random", 2, 1) in runs and ("random", "synthetic", 0) in runs
    assert len(runs) == 2 + 4 + 2
    assert run_key("random", 1, 0) == run_key("random", 1.0, 0) == ("random", "1", 0)
    assert run_key("random", 0.5, 0) == ("random", "0.5", 0)


def test_collect_keeps_only_the_grid_runs(tmp_path):
    runs = expected_runs(["random"], [1], [0])
    write_eval(tmp_path, "a.json", "none", 0.0, 0, 0.8)
    write_eval(tmp_path, "b.json", "random", 1.0, 0, 0.9)  # 1.0 in the file, 1 in the grid
    write_eval(tmp_path, "c.json", "random", "synthetic", 0, 0.5)
    write_eval(tmp_path, "old1.json", "random", 5.0, 0, 0.1)  # an earlier, larger grid
    write_eval(tmp_path, "old2.json", "random", 1.0, 7, 0.1)
    write_eval(tmp_path, "old3.json", "threshold", 1.0, 0, 0.1)
    df = collect(tmp_path, runs)
    assert len(df) == 3 * 2  # three runs x two test sets
    assert set(zip(df.strategy, df.ratio.astype(str), df.seed, strict=True)) == {
        ("none", "0.0", 0), ("random", "1", 0), ("random", "synthetic", 0)}
    row = df[(df.strategy == "random") & (df.ratio == 1) & (df.test_set == "src")].iloc[0]
    assert row.accuracy == 0.9 and row.macro_f1 == pytest.approx(0.8)
    assert row["acc/0"] == 0.9 and row["acc/1"] == 0.45
    assert 0.1 not in df.accuracy.tolist()
    tgt = df[(df.strategy == "none") & (df.test_set == "tgt")].iloc[0]
    assert tgt["acc/0"] == 0.1 and pd.isna(tgt["acc/1"])


def test_collect_names_the_missing_runs(tmp_path):
    runs = expected_runs(["random"], [1, 2], [0])
    write_eval(tmp_path, "a.json", "none", 0.0, 0, 0.8)
    write_eval(tmp_path, "b.json", "random", 1.0, 0, 0.9)
    with pytest.raises(DataFileError) as info:
        collect(tmp_path, runs)
    msg = str(info.value)
    assert str(tmp_path) in msg
    assert "('random', 2, 0)" in msg and "('random', 'synthetic', 0)" in msg
    assert "('random', 1, 0)" not in msg and "'none'" not in msg


def test_collect_merges_the_test_sets_of_one_run_from_several_files(tmp_path):
    """evaluate_baseline writes the real test sets, evaluate_baseline_synthetic the synthetic
    ones, for the same run."""
    write_eval(tmp_path, "none-0-0.json", "none", 0.0, 0, 0.8)
    (tmp_path / "none-0-0-synthetic-test.json").write_text(json.dumps({
        "run": {"strategy": "none", "ratio": 0.0, "seed": 0},
        "test": {"synthetic": {"accuracy": 0.3, "macro_f1": 0.2, "n": 30,
                               "per_class_accuracy": {"0": 0.3}}}}))
    df = collect(tmp_path, expected_runs([], [], [0]))
    assert sorted(df.test_set) == ["src", "synthetic", "tgt"]
    assert df[df.test_set == "synthetic"].iloc[0].accuracy == 0.3
    assert df[df.test_set == "synthetic"].iloc[0].n_test == 30


def test_collect_refuses_a_test_set_evaluated_twice_for_one_run(tmp_path):
    write_eval(tmp_path, "a.json", "none", 0.0, 0, 0.8)
    write_eval(tmp_path, "b.json", "none", 0.0, 0, 0.7)
    with pytest.raises(DataFileError, match=r"b.json: run \('none', '0', 0\) on 'src' is also "
                                            r"evaluated in .*a.json"):
        collect(tmp_path, expected_runs([], [], [0]))


def test_expected_runs_include_the_learning_curve():
    runs = expected_runs(["random"], [1], [0, 1], real_sizes=[5, 10])
    assert ("real", 5.0, 0) in runs and ("real", 10.0, 1) in runs
    assert len(runs) == 2 + 2 + 2 + 4


def test_collect_refuses_a_file_without_a_run_entry(tmp_path):
    write_eval(tmp_path, "a.json", "none", 0.0, 0, 0.8)
    (tmp_path / "stray.json").write_text(json.dumps({"accuracy": 0.5}))
    with pytest.raises(DataFileError, match="stray.json: no 'run' entry"):
        collect(tmp_path, expected_runs([], [], [0]))


# --------------------------------------------------------------------------------------------
# The real-only learning curve, read backwards
# --------------------------------------------------------------------------------------------

SIZES = [10, 20, 40]
CURVE = [0.5, 0.6, 0.8]


def test_invert_curve_on_a_known_monotone_curve():
    assert invert_curve(SIZES, CURVE, 0.6) == (20.0, "on")  # a measured point
    assert invert_curve(SIZES, CURVE, 0.5) == (10.0, "on")  # the bottom itself
    assert invert_curve(SIZES, CURVE, 0.8) == (40.0, "on")  # the top itself
    # Halfway from 0.6 to 0.8 is halfway from log 20 to log 40: 20 * sqrt(2).
    size, where = invert_curve(SIZES, CURVE, 0.7)
    assert where == "on" and size == pytest.approx(20 * math.sqrt(2))
    size, _ = invert_curve(SIZES, CURVE, 0.55)
    assert size == pytest.approx(10 * math.sqrt(2))
    assert invert_curve(SIZES, CURVE, 0.81) == (None, "beyond")
    assert invert_curve(SIZES, CURVE, 0.49) == (None, "below")


def test_invert_curve_on_a_flat_stretch_names_no_single_size():
    """A flat stretch is reached at each of its sizes: reading off its smallest would call a
    baseline trained on 6 images "worth 3", and a mix equal to it "worth -3" real images."""
    assert invert_curve([3, 6, 12], [0.7, 0.7, 0.8], 0.7) == (None, "flat")
    assert invert_curve([10, 20, 40], [0.5, 0.7, 0.7], 0.7) == (None, "flat")  # at the top
    # Just off the stretch the curve is read as before: from its end, or up to its start.
    size, where = invert_curve([3, 6, 12], [0.7, 0.7, 0.8], 0.75)
    assert where == "on" and size == pytest.approx(6 * math.sqrt(2))
    assert invert_curve([3, 6, 12], [0.6, 0.7, 0.7], 0.65)[1] == "on"
    eq = real_equivalent([3, 6, 12], [0.7, 0.7, 0.8], 0.7, 0.65, 0.75)
    assert eq["mean"] == {"real_per_class": None, "where": "flat", "flat_between": [3.0, 6.0]}
    assert eq["ci_high"]["where"] == "on" and eq["ci_low"]["where"] == "below"


def test_a_mix_on_a_flat_stretch_is_not_given_a_worth_in_real_images():
    curve = {"digits": {str(n): {"real_per_class": n, "fitted": f}
                        for n, f in ((3, 0.7), (6, 0.7), (12, 0.8))}}
    acc = {"mean": 0.7, "ci_low": 0.69, "ci_high": 0.71}
    results = {"none": {"0": {"digits": {"accuracy": acc}}},
               "random": {"1": {"digits": {"accuracy": acc}}}}
    eq = real_equivalents(results, curve, real_per_class=6)
    assert eq["random"]["1"]["digits"]["synthetic_worth"]["mean"] is None
    text = report_markdown._headline(eq, "digits", 6, 12)
    assert "flat stretch" in text and "from 3 to 6 real images" in text
    assert "worth about" not in text and "-3" not in text


def test_invert_curve_refuses_a_curve_it_cannot_read():
    with pytest.raises(ValueError, match="non-decreasing"):
        invert_curve([10, 20], [0.7, 0.6], 0.65)
    with pytest.raises(ValueError, match="ascending"):
        invert_curve([20, 10], [0.6, 0.7], 0.65)


def test_isotonic_pools_adjacent_violators():
    assert isotonic([0.5, 0.6, 0.8]) == pytest.approx([0.5, 0.6, 0.8])  # already monotone
    assert isotonic([0.5, 0.7, 0.6, 0.8]) == pytest.approx([0.5, 0.65, 0.65, 0.8])
    assert isotonic([0.3, 0.2, 0.1]) == pytest.approx([0.2, 0.2, 0.2])
    # A dip that spans two earlier points: 0.6, 0.7 then 0.4 pool into their mean 0.5667.
    assert isotonic([0.6, 0.7, 0.4, 0.9]) == pytest.approx([1.7 / 3] * 3 + [0.9])
    assert isotonic([0.6, 0.4], weights=[3, 1]) == pytest.approx([0.55, 0.55])


def test_a_noisy_curve_is_read_through_its_isotonic_fit():
    """Measured 0.5, 0.7, 0.6, 0.8 at 10, 20, 40, 80: read raw, 0.7 would be worth 20 real images
    although 40 scored less; the fit (0.5, 0.65, 0.65, 0.8) puts 0.7 a third of the way from 40
    to 80 in log size; 0.65 is the level of the pooled stretch from 20 to 40, which no one size
    stands for."""
    sizes = [10, 20, 40, 80]
    fitted = isotonic([0.5, 0.7, 0.6, 0.8])
    size, _ = invert_curve(sizes, fitted, 0.7)
    assert size == pytest.approx(40 * 2 ** (1 / 3))
    assert invert_curve(sizes, fitted, fitted[1]) == (None, "flat")


@pytest.fixture
def curve_df(df) -> pd.DataFrame:
    """The hand-made study plus a real-only curve: 0.5, 0.6, 0.8 at 10, 20, 40 real images per
    class on src (seed spread +-0.02), and a dip on tgt (0.3, 0.5, 0.4)."""
    rows = []
    for size, src, tgt in zip(SIZES, CURVE, [0.3, 0.5, 0.4], strict=True):
        for seed, noise in enumerate([-0.02, 0.0, 0.02]):
            for test_set, acc in (("src", src), ("tgt", tgt)):
                rows.append({"strategy": "real", "ratio": float(size), "seed": seed,
                             "test_set": test_set, "accuracy": acc + noise,
                             "macro_f1": acc, "n_test": 100})
    return pd.concat([df, pd.DataFrame(rows)], ignore_index=True)


def test_learning_curve_per_test_set(curve_df):
    curve = learning_curve(curve_df, ["src", "tgt"], LEVEL)
    assert list(curve["src"]) == ["10", "20", "40"]
    p = curve["src"]["20"]
    assert p["real_per_class"] == 20 and p["accuracy"]["n"] == 3
    assert p["accuracy"]["mean"] == pytest.approx(0.6) and p["fitted"] == pytest.approx(0.6)
    assert p["accuracy"]["std"] == pytest.approx(0.02)
    assert [curve["tgt"][k]["fitted"] for k in ("10", "20", "40")] == pytest.approx(
        [0.3, 0.45, 0.45])
    frame = learning_curve_frame(curve)
    assert frame.real_per_class.tolist() == [10, 20, 40, 10, 20, 40]
    # The curve's runs are not comparisons with the baseline.
    assert "real" not in summarise(curve_df, ["src", "tgt"], LEVEL)


def test_real_equivalents_of_the_hand_made_study(curve_df):
    results = summarise(curve_df, ["src", "tgt"], LEVEL)
    curve = learning_curve(curve_df, ["src", "tgt"], LEVEL)
    eq = real_equivalents(results, curve, real_per_class=20)
    base_src = np.mean(BASE["src"])  # 0.7667: between 0.6 (20) and 0.8 (40)
    b = eq["none"]["0"]["src"]
    frac = (base_src - 0.6) / 0.2
    assert b["mean"]["real_per_class"] == pytest.approx(20 * 2**frac)
    assert b["synthetic_worth"]["mean"] is None  # the baseline trains on no synthetic images
    # random 1x on src: 0.8167, above the curve's top (0.8 at 40): beyond, a flag, not a number.
    r1 = eq["random"]["1"]["src"]
    assert r1["accuracy"] == pytest.approx(base_src + 0.05)
    assert r1["mean"] == {"real_per_class": None, "where": "beyond"}
    assert r1["synthetic_worth"]["mean"] is None
    # Its interval (accuracies 0.65, 0.86, 0.94: 0.8167 +- 4.303 x 0.1498 / sqrt 3 = +- 0.372)
    # runs from 0.445, under the curve's bottom, to 1.19, over its top.
    assert results["random"]["1"]["src"]["accuracy"]["ci_low"] == pytest.approx(0.4446, abs=1e-4)
    assert r1["ci_low"] == {"real_per_class": None, "where": "below"}
    assert r1["ci_high"] == {"real_per_class": None, "where": "beyond"}
    # random synthetic-only on src: 0.4667, below the curve's bottom (0.5 at 10).
    assert eq["random"]["synthetic"]["src"]["mean"] == {"real_per_class": None, "where": "below"}
    # confidence 1x on tgt: 0.4 + 0 = 0.4, on the fitted tgt curve 0.3 -> 0.45 from 10 to 20.
    c1 = eq["confidence"]["1"]["tgt"]
    assert c1["accuracy"] == pytest.approx(0.4)
    size = 10 * 2 ** ((0.4 - 0.3) / 0.15)
    assert c1["mean"] == {"real_per_class": pytest.approx(size), "where": "on"}
    assert c1["synthetic_worth"]["mean"] == pytest.approx(size - 20)  # worth less than nothing
    # confidence synthetic-only on tgt: 0.4 with 0 real images: worth all of its equivalent.
    cs = eq["confidence"]["synthetic"]["tgt"]
    assert cs["synthetic_worth"]["mean"] == pytest.approx(cs["mean"]["real_per_class"])
    # Without a fixed count of real images per class the worth is unknown.
    assert real_equivalents(results, curve, None)["confidence"]["1"]["tgt"][
        "synthetic_worth"]["mean"] is None


def test_equivalents_table_flags_off_curve_models(curve_df):
    results = summarise(curve_df, ["src", "tgt"], LEVEL)
    eq = real_equivalents(results, learning_curve(curve_df, ["src", "tgt"], LEVEL), 20)
    lines = equivalents_table(eq, "src", ["1", "2"]).splitlines()
    assert lines[0] == "| strategy | 1x | 2x | synthetic only |"
    assert lines[2].startswith("| none (real only) | 3")  # 20 * 2^0.83 = 35.6
    # random's accuracies follow the baseline's wide spread (0.6, 0.8, 0.9 + gains): every
    # interval runs from under the curve's bottom (0.5) to over its top (0.8); the means of the
    # mixes (0.82, 0.85) are beyond the top, synthetic-only's (0.47) below the bottom.
    random_row = next(line for line in lines if line.startswith("| random |"))
    assert random_row == ("| random | beyond [below, beyond] | beyond [below, beyond] | "
                          "below [below, beyond] |")


def test_isotonic_weights_by_hand():
    # A dip: 0.8 (weight 1) then 0.6 (weight 3) pool to (0.8 + 3 * 0.6) / 4 = 0.65.
    assert isotonic([0.8, 0.6], weights=[1, 3]) == pytest.approx([0.65, 0.65])
    assert isotonic([0.8, 0.6]) == pytest.approx([0.7, 0.7])  # unweighted: the plain mean


def test_the_learning_curve_weights_each_size_by_its_runs():
    """Size 10 evaluated by one seed at 0.9, size 20 by three seeds at 0.7: the isotonic fit
    pools them to (0.9 + 3 * 0.7) / 4 = 0.75, the mean over the four runs."""
    rows = [{"strategy": "real", "ratio": 10.0, "seed": 0, "test_set": "src", "accuracy": 0.9}]
    rows += [{"strategy": "real", "ratio": 20.0, "seed": s, "test_set": "src", "accuracy": 0.7}
             for s in range(3)]
    curve = learning_curve(pd.DataFrame(rows), ["src"], LEVEL)["src"]
    assert curve["10"]["fitted"] == pytest.approx(0.75)
    assert curve["20"]["fitted"] == pytest.approx(0.75)


def test_a_target_scored_on_part_of_its_images_says_so(tmp_path):
    """Images of classes the source lacks are not evaluated: the report must say how many, and
    which classes, beside the target's accuracy (it once showed the accuracy alone)."""
    evaluation = {"run": {"strategy": "none", "ratio": 0, "seed": 0}, "classes": ["3", "7"],
                  "test": {"digits": {"n": 40, "accuracy": 0.9},
                           "weird": {"n": 6, "accuracy": 0.5, "dropped_images": 30,
                                     "classes_not_in_source": ["with space", "semi;colon",
                                                               "new\nline"],
                                     "classes_missing_from_target": ["7"]}}}
    (tmp_path / "none-0-0.json").write_text(json.dumps(evaluation))
    coverage = report_runs.coverage_of_test_sets(tmp_path, ("none", 0.0, 0))
    assert list(coverage) == ["weird"] and coverage["weird"]["dropped_images"] == 30
    assert report_runs.coverage_note(coverage, "digits") == []
    text = report_runs.coverage_note(coverage, "weird")[0]
    assert "on 6 images" in text and "30 of its 36 test images were not evaluated" in text
    assert '"new\\nline"' in text and "\n" not in text  # one line, names quoted
    assert 'classes "7" have no test image' in text


def test_the_training_protocol_is_read_from_the_evaluations_and_said_in_the_report():
    from ganaug.report.reading import training_bullet
    from ganaug.report.runs import training_protocol

    four = {("none", "0", 0): {"train": {"member_count": 4, "epoch_images": 1200}},
            ("random", "1", 0): {"train": {"member_count": 4, "epoch_images": 1200}}}
    assert training_protocol(four) == {"members": 4, "epoch_images": 1200}
    text = training_bullet(training_protocol(four))
    assert "4 classifiers per run" in text and "1200 images" in text
    old = {("none", "0", 0): {"train": {}}}  # written before these keys: one member, one pass
    assert training_protocol(old) == {"members": 1, "epoch_images": None}
    assert "mixes the two" in training_bullet(training_protocol(old))
    mixed = {**four, ("none", "0", 1): {"train": {"member_count": 2, "epoch_images": 1200}}}
    assert training_protocol(mixed)["members"] == [2, 4]
    assert "differ" in training_bullet(training_protocol(mixed))
