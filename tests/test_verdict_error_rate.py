"""The verdict procedure holds its error rates, by simulation (a small, fast version of
``benchmarks/verdict_error_rate.py``): under a true gain of 0 the share of simulated studies
with any false helps / hurts verdict stays at or below alpha, for a fixed number of replicates
and for the pilot -> planned confirmatory flow, with normal and heavy-tailed differences; at a
true gain exactly on the margin, false "equivalent" verdicts stay at or below alpha too."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ganaug.verdict_sim import fixed_n, optional_stopping, two_stage

ALPHA, SD, MARGIN = 0.05, 0.012, 0.01  # the default study's scale: SD 1.2 points, delta 1
STUDIES = 3000


def ceiling(rate: float = ALPHA) -> float:
    """The nominal rate plus three Monte-Carlo standard errors."""
    return rate + 3 * math.sqrt(rate * (1 - rate) / STUDIES)


@pytest.mark.parametrize("tails", ["normal", "t3"])
def test_no_more_false_differences_than_alpha_at_a_fixed_n(tails):
    rates = fixed_n(np.random.default_rng(1), STUDIES, m=20, n=5, true_gain=0.0, sd=SD,
                    margin=MARGIN, alpha=ALPHA, tails=tails)
    assert rates["difference"] <= ceiling(), rates
    assert rates["helps"] <= ceiling(ALPHA / 2), rates  # one direction: half of alpha


@pytest.mark.parametrize("gain", [MARGIN, -MARGIN])
def test_no_more_false_equivalence_than_alpha_on_the_margin(gain):
    rates = fixed_n(np.random.default_rng(2), STUDIES, m=1, n=10, true_gain=gain, sd=SD,
                    margin=MARGIN, alpha=ALPHA)
    assert rates["equivalent"] <= ceiling(), rates


def test_the_pilot_then_confirmatory_flow_holds_alpha():
    rates = two_stage(np.random.default_rng(3), STUDIES, m=1, n0=3, true_gain=0.0, sd=SD,
                      margin=MARGIN, alpha=ALPHA, cap=30)
    assert rates["difference"] <= ceiling(), rates
    assert rates["median_n1"] > 3  # the planner did ask for more replicates


def test_optional_stopping_is_what_the_pilot_prevents():
    """Adding a replicate at a time and looking each time inflates false verdicts well past
    alpha: the reason verdicts come from a fresh confirmatory set."""
    rate = optional_stopping(np.random.default_rng(4), 1000, m=1, n_start=3, n_max=15,
                             true_gain=0.0, sd=SD, margin=MARGIN, alpha=ALPHA)
    assert rate > 2 * ALPHA


def test_the_simulation_decides_as_the_report_does():
    """The vectorised verdicts equal the report's own functions, study by study."""
    from ganaug.stats import decide, holm, paired_t_pvalue, tost_pvalue
    from ganaug.verdict_sim import draw, verdicts

    rng = np.random.default_rng(5)
    d = draw(rng, (200, 4, 5), 0.008, SD)
    v = verdicts(d, MARGIN, ALPHA)
    for s in range(200):
        p = holm([paired_t_pvalue(x) for x in d[s]])
        q = holm([tost_pvalue(x, MARGIN) for x in d[s]])
        for j in range(4):
            verdict, _ = decide(float(d[s, j].mean()), p[j], q[j], ALPHA)
            assert v["helps"][s, j] == (verdict == "helps")
            assert v["hurts"][s, j] == (verdict == "hurts")
            assert v["equivalent"][s, j] == (verdict == "equivalent")
