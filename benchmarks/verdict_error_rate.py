"""The verdict procedure's error rates over many simulated studies, with Monte-Carlo intervals.

    PYTHONPATH=src python benchmarks/verdict_error_rate.py [--studies 20000] [--seed 0]

A simulated study is a family of m comparisons with n paired differences each (normal, or
Student t3 scaled to the same SD: heavy tails), decided as the report decides (paired t-test and
TOST, Holm over the family). Printed: the share of studies with at least one false helps, false
hurts, or false helps-or-hurts verdict when every true gain is 0, and of false "equivalent" when
every true gain is exactly +delta or -delta (the margin's edge, the hardest case), each with a
95% Wilson interval; for fixed n, for the pilot -> planned confirmatory flow, and, for contrast,
for optional stopping (add a replicate, look, repeat). Last, the width of an anytime-valid
confidence sequence at n = 10, which is why the project uses a pilot and not a sequence.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from ganaug.verdict_sim import fixed_n, mc_interval, optional_stopping, two_stage

ALPHA, SD, MARGIN = 0.05, 0.012, 0.01  # the default study: gain SD ~1.2 points, delta 1 point


def row(name: str, rates: dict, studies: int, keys: list[str]) -> str:
    cells = []
    for k in keys:
        lo, hi = mc_interval(rates[k], studies)
        cells.append(f"{k} {rates[k]:.4f} [{lo:.4f}, {hi:.4f}]")
    extra = f"  (median n1 {rates['median_n1']:g})" if "median_n1" in rates else ""
    return f"{name:<44} " + "  ".join(cells) + extra


def betting_cs_halfwidth(x: np.ndarray, alpha: float) -> float:
    """Half-width of the hedged betting confidence sequence (Waudby-Smith & Ramdas 2023,
    predictable plug-in bets) for the mean of [0, 1]-valued ``x`` after all of them, found on a
    grid of candidate means: the anytime-valid interval a sequential design would use."""
    grid = np.linspace(0.0, 1.0, 20001)
    t = np.arange(1, len(x) + 1)
    mu = (0.5 + np.cumsum(x)) / (t + 1)
    var = (0.25 + np.cumsum((x - mu) ** 2)) / (t + 1)
    # The bet at step t uses the estimates up to t - 1 (predictable).
    var_prev = np.concatenate([[0.25], var[:-1]])
    lam = np.sqrt(2 * math.log(2 / alpha) / (var_prev * t * np.log1p(t)))
    up = np.ones_like(grid)
    down = np.ones_like(grid)
    alive = np.ones_like(grid, bool)
    for xi, li in zip(x, lam, strict=True):
        up *= 1 + np.minimum(li, 0.5 / np.maximum(grid, 1e-12)) * (xi - grid)
        down *= 1 - np.minimum(li, 0.5 / np.maximum(1 - grid, 1e-12)) * (xi - grid)
        alive &= np.maximum(up, down) / 2 < 1 / alpha
    kept = grid[alive]
    return float((kept.max() - kept.min()) / 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    s = args.studies
    print(f"alpha {ALPHA}, SD of the paired differences {SD * 100:g} points, delta "
          f"{MARGIN * 100:g} point, {s} simulated studies per line; family-wise rates with "
          f"95% Wilson intervals. Nominal: helps or hurts <= {ALPHA}, each direction about "
          f"{ALPHA / 2}; equivalent at the margin's edge <= {ALPHA}.\n")
    null = ["helps", "hurts", "difference"]
    print("true gain 0: false helps / hurts / either")
    for m, n, tails in [(1, 3, "normal"), (1, 10, "normal"), (20, 3, "normal"),
                        (20, 10, "normal"), (1, 10, "t3"), (20, 10, "t3")]:
        rates = fixed_n(rng, s, m, n, 0.0, SD, MARGIN, ALPHA, tails)
        print(row(f"fixed n={n}, m={m}, {tails}", rates, s, null))
    for m, tails in [(1, "normal"), (20, "normal"), (1, "t3")]:
        rates = two_stage(rng, s, m, 3, 0.0, SD, MARGIN, ALPHA, tails=tails)
        print(row(f"pilot n0=3 -> planned n1, m={m}, {tails}", rates, s, null))
    stopping = optional_stopping(rng, s // 4, 1, 3, 20, 0.0, SD, MARGIN, ALPHA)
    lo, hi = mc_interval(stopping, s // 4)
    print(f"{'optional stopping 3..20, m=1, normal':<44} difference {stopping:.4f} "
          f"[{lo:.4f}, {hi:.4f}]  <- what the pilot/confirmatory split prevents")
    print("\ntrue gain exactly +-delta: false equivalent")
    for m, n, gain, tails in [(1, 10, MARGIN, "normal"), (1, 10, -MARGIN, "normal"),
                              (20, 10, MARGIN, "normal"), (1, 30, MARGIN, "t3")]:
        rates = fixed_n(rng, s, m, n, gain, SD, MARGIN, ALPHA, tails)
        print(row(f"fixed n={n}, m={m}, gain {gain * 100:+g}, {tails}", rates, s,
                  ["equivalent"]))
    rates = two_stage(rng, s, 1, 3, MARGIN, SD, MARGIN, ALPHA)
    print(row("pilot n0=3 -> planned n1, m=1, gain +1", rates, s, ["equivalent"]))

    print("\nAnytime-valid confidence sequence vs the t-interval, n = 10 replicates")
    widths, t_widths = [], []
    from scipy import stats
    for _ in range(200):
        d = SD * rng.standard_normal(10)
        # accuracy differences lie in [-1, 1]; the sequence needs [0, 1]
        widths.append(2 * betting_cs_halfwidth((d + 1) / 2, ALPHA))
        t_widths.append(stats.t.ppf(1 - ALPHA / 2, 9) * d.std(ddof=1) / math.sqrt(10))
    print(f"  betting CS (hedged, predictable plug-in), median half-width "
          f"{np.median(widths) * 100:.1f} points; t-interval median half-width "
          f"{np.median(t_widths) * 100:.2f} points; delta = {MARGIN * 100:g} point")


if __name__ == "__main__":
    main()
