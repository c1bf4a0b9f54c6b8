"""Small, hand-checkable statistics for the report: paired tests over seeds, Holm's correction,
and reading a real-only learning curve backwards ("worth how many real images?").

Everything here is a pure function of a few floats, so each can be checked by hand.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

# The exact sign-flip test enumerates 2^n sign patterns; beyond this many seeds that stops being
# cheap, and the t-test (which drives the verdicts anyway) is then well founded.
MAX_EXACT_SIGN_FLIP = 20

# Where a mix's accuracy falls against the real-only learning curve; FLAT: on a stretch where
# the fit does not rise, which every size of that stretch reaches, so it names no one size.
ON, BEYOND, BELOW, FLAT = "on", "beyond", "below", "flat"


def paired_t_pvalue(diffs: Sequence[float]) -> float | None:
    """Two-sided p-value of the one-sample t-test of mean(diffs) = 0 (None below two values).

    Identical differences give p = 0 when they are not zero (the t statistic is infinite) and
    p = 1 when they are all zero, the limits of the test; scipy would return NaN for both.
    """
    from scipy import stats

    d = np.asarray(diffs, dtype=np.float64)
    n = len(d)
    if n < 2:
        return None
    mean, std = float(d.mean()), float(d.std(ddof=1))
    if std == 0.0:
        return 1.0 if mean == 0.0 else 0.0
    t = mean / (std / math.sqrt(n))
    return float(2 * stats.t.sf(abs(t), n - 1))


def sign_flip_pvalue(diffs: Sequence[float]) -> float | None:
    """Exact two-sided paired permutation test: the share of the 2^n sign patterns whose
    |sum of signed differences| is at least the observed one (None below two values, or above
    ``MAX_EXACT_SIGN_FLIP`` values).

    Under "synthetic images change nothing" each seed's difference is as likely to have either
    sign, whatever its distribution; no normality is assumed. The price: with n seeds the p-value
    cannot go below 2 / 2^n (0.25 with 3 seeds), see :func:`smallest_sign_flip_pvalue`.
    """
    d = np.asarray(diffs, dtype=np.float64)
    n = len(d)
    if n < 2 or n > MAX_EXACT_SIGN_FLIP:
        return None
    patterns = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1  # (2^n, n) of +-1
    sums = np.abs(patterns @ d)
    observed = abs(d.sum())
    # A relative tolerance so that a pattern equal to the observed sum up to rounding counts.
    tol = 1e-12 * max(1.0, float(np.abs(d).sum()))
    return float(np.mean(sums >= observed - tol))


def smallest_sign_flip_pvalue(n: int) -> float:
    """The smallest two-sided p-value the exact sign-flip test can give with ``n`` seeds."""
    return min(1.0, 2.0 / 2**n)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input order.

    Sort ascending, multiply the i-th smallest (1-based) by (m - i + 1), carry the running
    maximum so adjusted values keep the order of the raw ones, cap at 1. Rejecting where the
    adjusted value is below alpha controls the family-wise error rate at alpha for any
    dependence between the tests (the comparisons here share a baseline, so they are dependent).
    """
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (m - np.arange(m))
    adjusted = np.minimum(1.0, np.maximum.accumulate(scaled))
    out = np.empty(m)
    out[order] = adjusted
    return out


# --------------------------------------------------------------------------------------------
# The real-only learning curve, read backwards
# --------------------------------------------------------------------------------------------


def isotonic(values: Sequence[float], weights: Sequence[float] | None = None) -> np.ndarray:
    """The non-decreasing least-squares fit to ``values`` (pool adjacent violators).

    More real images should not hurt; where seed noise makes the measured curve dip, adjacent
    points are pooled into their (weighted) mean, so the fit is monotone and as close to the
    measurements as a monotone curve can be. A running maximum would instead carry one lucky
    point forward and bias the curve up.
    """
    y = np.asarray(values, dtype=np.float64)
    w = np.ones_like(y) if weights is None else np.asarray(weights, dtype=np.float64)
    blocks: list[list[float]] = []  # [weighted mean, weight, length]
    for yi, wi in zip(y, w, strict=True):
        blocks.append([yi, wi, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, w2, n2), (m1, w1, n1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return np.concatenate([np.full(int(n), m) for m, _, n in blocks]) if blocks else y.copy()


def invert_curve(sizes: Sequence[float], fitted: Sequence[float],
                 accuracy: float) -> tuple[float | None, str]:
    """The smallest size at which a non-decreasing curve reaches ``accuracy``.

    ``sizes`` ascending (real images per class), ``fitted`` non-decreasing (e.g. from
    :func:`isotonic`); between two sizes the curve is linear in log(size). Returns
    ``(size, "on")``, or ``(None, "beyond")`` when the accuracy is above the curve's top, or
    ``(None, "below")`` when it is below the curve's bottom: the curve says nothing there, and
    extrapolating a learning curve is guesswork; or ``(None, "flat")`` when the accuracy is the
    level of a flat stretch of the fit (see :func:`flat_stretch`): no one size is its equivalent.
    """
    s = np.asarray(sizes, dtype=np.float64)
    f = np.asarray(fitted, dtype=np.float64)
    if len(s) == 0 or len(s) != len(f) or np.any(np.diff(s) <= 0) or np.any(np.diff(f) < 0):
        raise ValueError(f"invert_curve: needs ascending sizes and a non-decreasing curve of the "
                         f"same length, got sizes {s.tolist()} and curve {f.tolist()}")
    if accuracy < f[0]:
        return None, BELOW
    if accuracy > f[-1]:
        return None, BEYOND
    if len(flat_stretch(s, f, accuracy)) > 1:
        return None, FLAT
    j = int(np.argmax(f >= accuracy))  # the first size whose fit reaches the accuracy
    if j == 0 or f[j] == accuracy:
        return float(s[j]), ON
    lo, hi = math.log(s[j - 1]), math.log(s[j])
    frac = (accuracy - f[j - 1]) / (f[j] - f[j - 1])
    return float(math.exp(lo + frac * (hi - lo))), ON


def flat_stretch(sizes: Sequence[float], fitted: Sequence[float], accuracy: float) -> list[float]:
    """The sizes at which the fitted curve equals ``accuracy`` (up to rounding): more than one
    means the accuracy lies on a flat stretch, which the curve reaches at each of those sizes.
    Reading off the smallest of them would call a model trained on the stretch's largest size
    "worth" its smallest (a baseline of 6 images "worth 3"), and a mix equal to it worth a
    negative number of real images."""
    f = np.asarray(fitted, dtype=np.float64)
    return [float(x) for x, y in zip(sizes, f, strict=True)
            if abs(y - accuracy) <= 1e-12 * max(1.0, abs(accuracy))]


def real_equivalent(sizes: Sequence[float], fitted: Sequence[float], mean: float,
                    ci_low: float | None, ci_high: float | None) -> dict[str, Any]:
    """A mix's mean accuracy and its interval's ends, each read off the curve as a number of
    real images per class, or flagged beyond / below the curve."""
    out: dict[str, Any] = {}
    for name, acc in (("mean", mean), ("ci_low", ci_low), ("ci_high", ci_high)):
        if acc is None:
            out[name] = {"real_per_class": None, "where": None}
            continue
        size, where = invert_curve(sizes, fitted, acc)
        out[name] = {"real_per_class": size, "where": where}
        if where == FLAT:
            stretch = flat_stretch(sizes, fitted, acc)
            out[name]["flat_between"] = [stretch[0], stretch[-1]]
    return out


# --------------------------------------------------------------------------------------------
# Verdicts: difference (paired t), equivalence (TOST), and how many replicates would decide
# --------------------------------------------------------------------------------------------

HELPS, HURTS, EQUIVALENT, UNDECIDED = "helps", "hurts", "equivalent", "undecided"
VERDICTS = (HELPS, HURTS, EQUIVALENT, UNDECIDED)
# The planner stops here: a comparison that needs more replicates than this is, for a study of
# trained classifiers, out of reach; it reports None rather than an absurd number.
MAX_PLANNED_REPLICATES = 10_000


def _finite_diffs(diffs: Sequence[float], what: str) -> np.ndarray:
    d = np.asarray(diffs, dtype=np.float64)
    if not np.all(np.isfinite(d)):
        raise ValueError(f"{what}: the per-replicate differences must be finite, got {d.tolist()}")
    return d


def tost_pvalue(diffs: Sequence[float], margin: float) -> float | None:
    """Two one-sided t-tests (TOST) of ``-margin < mean(diffs) < margin``: the larger of the
    p-values of H0 "mean <= -margin" and H0 "mean >= margin" (None below two values).

    Rejecting both one-sided nulls at alpha shows equivalence at alpha (Schuirmann 1987): the
    (1 - 2 alpha) interval lies inside (-margin, margin). Identical differences give the limits
    of the test: 0 strictly inside the margin, 1 on or outside it.
    """
    from scipy import stats

    if not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"tost_pvalue: margin must be a positive finite number, got {margin}")
    d = _finite_diffs(diffs, "tost_pvalue")
    n = len(d)
    if n < 2:
        return None
    mean, std = float(d.mean()), float(d.std(ddof=1))
    if std == 0.0:
        return 0.0 if -margin < mean < margin else 1.0
    se = std / math.sqrt(n)
    p_lower = stats.t.sf((mean + margin) / se, n - 1)  # H0: mean <= -margin
    p_upper = stats.t.cdf((mean - margin) / se, n - 1)  # H0: mean >= margin
    return float(max(p_lower, p_upper))


def decide(mean: float, p_difference: float | None, p_equivalence: float | None,
           alpha: float) -> tuple[str, bool | None]:
    """``(verdict, within_margin)`` from a comparison's (already corrected) p-values.

    ``helps``/``hurts``: the difference test rejects "no change", by the sign of the mean gain.
    ``equivalent``: only the equivalence test rejects "the gain is at least the margin".
    Both rejecting means a real but small effect: the verdict keeps the direction (it is the
    stronger, falsifiable claim, and "equivalent" would hide a consistent loss) and
    ``within_margin`` is True, so a reader can still call it negligible. ``within_margin`` is
    None where the equivalence test did not reject. No p-value (one replicate): ``undecided``.
    """
    within = None if p_equivalence is None or not p_equivalence < alpha else True
    if p_difference is not None and p_difference < alpha and mean != 0.0:
        return (HELPS if mean > 0 else HURTS), within
    if within:
        return EQUIVALENT, True
    return UNDECIDED, None


def t_test_power(n: int, effect: float, sd: float, alpha: float) -> float:
    """Power of the two-sided one-sample (paired) t-test at level ``alpha`` with ``n`` values
    when the true mean is ``effect`` and the SD ``sd`` (noncentral t, exact)."""
    from scipy import stats

    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = effect * math.sqrt(n) / sd
    return float(stats.nct.sf(crit, df, nc) + stats.nct.cdf(-crit, df, nc))


def tost_power(n: int, true_gain: float, sd: float, margin: float, alpha: float) -> float:
    """Power of TOST (each one-sided test at ``alpha``) with ``n`` values, exact.

    Given the sample SD ``s``, TOST rejects when ``|mean| < margin - t_crit s / sqrt(n)``; the
    mean is normal and ``(n-1) s^2 / sd^2`` chi-square with n-1 degrees of freedom, independent,
    so the power is one integral over ``s`` (no bivariate noncentral t needed).
    """
    from scipy import integrate, stats

    df = n - 1
    crit = stats.t.ppf(1 - alpha, df)
    se_true = sd / math.sqrt(n)
    # Rejection needs margin - crit * s / sqrt(n) > 0, i.e. s below this.
    s_max = margin * math.sqrt(n) / crit

    def given_s(s: float) -> float:
        half = margin - crit * s / math.sqrt(n)
        p = (stats.norm.cdf((half - true_gain) / se_true)
             - stats.norm.cdf((-half - true_gain) / se_true))
        # density of s: (n-1) s^2 / sd^2 ~ chi2(df)
        q = df * s * s / (sd * sd)
        return p * stats.chi2.pdf(q, df) * 2 * df * s / (sd * sd)

    value, _ = integrate.quad(given_s, 0.0, s_max, limit=200)
    return float(min(1.0, max(0.0, value)))


def _smallest_n(power_at: Any, power: float) -> int | None:
    """The smallest n >= 2 with ``power_at(n) >= power`` (power rises with n), or None above
    :data:`MAX_PLANNED_REPLICATES`."""
    hi = 2
    while power_at(hi) < power:
        if hi >= MAX_PLANNED_REPLICATES:
            return None
        hi = min(2 * hi, MAX_PLANNED_REPLICATES)
    lo = max(2, hi // 2)
    if power_at(lo) >= power:
        return lo
    while hi - lo > 1:  # power_at(lo) < power <= power_at(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if power_at(mid) < power else (lo, mid)
    return hi


def replicates_for_difference(effect: float, sd: float, alpha: float,
                              power: float = 0.8) -> int | None:
    """Replicates the two-sided paired t-test at ``alpha`` needs to detect a true gain
    ``effect`` with probability ``power`` when the per-replicate differences have SD ``sd``.

    Textbook check: effect / sd = 0.5, alpha 0.05, power 0.8 gives 34 (G*Power: 33.4 rounded
    up). SD 0 needs the minimum, 2; an effect of 0 cannot be detected (None).
    """
    _planning_inputs(sd, alpha, power)
    if effect == 0.0:
        return None
    if sd == 0.0:
        return 2
    return _smallest_n(lambda n: t_test_power(n, abs(effect), sd, alpha), power)


def replicates_for_equivalence(margin: float, sd: float, alpha: float, power: float = 0.8,
                               true_gain: float = 0.0) -> int | None:
    """Replicates TOST at ``alpha`` needs to show ``|gain| < margin`` with probability
    ``power`` when the true gain is ``true_gain`` and the differences have SD ``sd`` (None: not
    reachable, e.g. a true gain on or outside the margin)."""
    _planning_inputs(sd, alpha, power)
    if not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"margin must be a positive finite number, got {margin}")
    if abs(true_gain) >= margin:
        return None
    if sd == 0.0:
        return 2
    return _smallest_n(lambda n: tost_power(n, true_gain, sd, margin, alpha), power)


def _planning_inputs(sd: float, alpha: float, power: float) -> None:
    if not (math.isfinite(sd) and sd >= 0):
        raise ValueError(f"the SD of the differences must be finite and >= 0, got {sd}")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must be in (0, 1), got {alpha} and {power}")


def wilson_interval(successes: int, n: int, level: float) -> tuple[float, float] | None:
    """Wilson score interval of a proportion ``successes / n`` (None for n = 0).

    Chosen over Clopper-Pearson, whose guaranteed coverage makes it much wider than the level
    at the handful of replicates a study has; Wilson's coverage is close to the level on average
    and it never leaves [0, 1].
    """
    from scipy import stats

    if n == 0:
        return None
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)
