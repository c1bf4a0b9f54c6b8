"""Verdicts (helps / hurts / equivalent / undecided), TOST, the replicate planner and the
probability-of-improvement interval: pure functions checked by hand or against textbook values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ganaug.stats import (
    EQUIVALENT,
    HELPS,
    HURTS,
    UNDECIDED,
    decide,
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
    assert decide(mean, p_diff, p_eq, 0.05) == expected


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
