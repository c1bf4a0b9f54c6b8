"""The study's statistics over seeds: intervals, paired gains, peaks, curves, and collecting runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ganaug.io import DataFileError
from ganaug.report import collect, curves, expected_runs, interval, peaks, run_key, summarise

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


def test_summarise_verdicts(results):
    def verdict(strategy, ratio, test_set):
        return results[strategy][ratio][test_set]["gain_vs_baseline"]["distinguishable_from_zero"]

    assert verdict("random", "1", "src") is True
    assert verdict("confidence", "1", "src") is False
    assert results["confidence"]["1"]["src"]["gain_vs_baseline"]["mean"] == pytest.approx(0.01 / 3)
    assert verdict("random", "1", "tgt") is True  # a clear loss is a real effect too
    assert verdict("random", "2", "tgt") is False
    assert verdict("none", "0", "src") is False  # the baseline against itself
    assert results["none"]["0"]["src"]["gain_vs_baseline"]["mean"] == 0


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


def test_collect_refuses_a_file_without_a_run_entry(tmp_path):
    write_eval(tmp_path, "a.json", "none", 0.0, 0, 0.8)
    (tmp_path / "stray.json").write_text(json.dumps({"accuracy": 0.5}))
    with pytest.raises(DataFileError, match="stray.json: no 'run' entry"):
        collect(tmp_path, expected_runs([], [], [0]))
