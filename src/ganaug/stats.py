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

# Where a mix's accuracy falls against the real-only learning curve.
ON, BEYOND, BELOW = "on", "beyond", "below"


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
    extrapolating a learning curve is guesswork.
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
    j = int(np.argmax(f >= accuracy))  # the first size whose fit reaches the accuracy
    if j == 0 or f[j] == accuracy:
        return float(s[j]), ON
    lo, hi = math.log(s[j - 1]), math.log(s[j])
    frac = (accuracy - f[j - 1]) / (f[j] - f[j - 1])
    return float(math.exp(lo + frac * (hi - lo))), ON


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
    return out
