"""Calibration of the scorer's probabilities: temperature scaling (Guo et al. 2017), expected
calibration error, negative log-likelihood, reliability bins.

A small CNN trained on scarce data is over-confident: its softmax probability of 0.9 may be
right far less than 90% of the time, and a confidence threshold means different things for
different scorers and seeds. Temperature scaling divides the logits by one scalar ``T`` fitted on
the validation split to minimise the negative log-likelihood; it changes no prediction (argmax),
only how sure the probabilities are. Pure numpy/scipy over logits ``(N, K)`` and labels ``(N,)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax

BINS = 15


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under ``softmax(logits / T)``."""
    logp = log_softmax(np.asarray(logits, np.float64) / temperature, axis=1)
    return float(-logp[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray, bounds: tuple[float, float] = (0.05, 20.0)
                    ) -> float:
    """The ``T`` in ``bounds`` that minimises :func:`nll` (a bounded 1-D search over log T;
    deterministic)."""
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.int64)
    res = minimize_scalar(lambda log_t: nll(logits, labels, float(np.exp(log_t))),
                          bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded",
                          options={"xatol": 1e-6})
    return float(np.exp(res.x))


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> dict[str, Any]:
    """Equal-width bins of the top-class confidence: per bin the count, mean confidence and
    accuracy; and the expected calibration error ``sum_b n_b/N |acc_b - conf_b|``."""
    probs = np.asarray(probs, np.float64)
    conf = probs.max(1)
    correct = probs.argmax(1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        member = which == b
        n = int(member.sum())
        if n:
            c, a = float(conf[member].mean()), float(correct[member].mean())
            ece += n / len(conf) * abs(a - c)
        else:
            c = a = None
        rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": n,
                     "confidence": c, "accuracy": a})
    return {"ece": float(ece), "bins": rows}


def stratified_halves(labels: np.ndarray, seed: int) -> np.ndarray:
    """Fold 0 or 1 for each image: within each class a seeded shuffle, then alternate, so each
    half holds half of every class (the odd one out goes to fold 0)."""
    labels = np.asarray(labels, np.int64)
    rng = np.random.default_rng(seed)
    folds = np.empty(len(labels), np.int64)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        folds[idx] = np.arange(len(idx)) % 2
    return folds


def calibration_report(logits: np.ndarray, labels: np.ndarray, fit: bool, seed: int = 0
                       ) -> dict[str, Any]:
    """ECE, NLL and reliability bins of the validation split before and after temperature
    scaling (``fit=False``: ``T = 1``, the 'after' equals the 'before').

    Measured honestly by 2-fold cross-fitting: the validation split is halved (seeded,
    class-stratified, :func:`stratified_halves`), a temperature is fitted on each half and
    applied to the other, and 'after' is measured on these out-of-fold probabilities, pooled
    over the whole split. Fitting and measuring on the same images would flatter the 'after'.
    The temperature the scorer uses is fitted on the whole split (more images, a steadier
    fit); the cross-fitted figures estimate how well such a fit does on images it has not seen.
    'before' is measured on the same split, which also chose the early-stopping epoch (by
    accuracy, not calibration): it is, if anything, slightly flattered.
    """
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.int64)
    temperature = fit_temperature(logits, labels) if fit else 1.0
    folds = stratified_halves(labels, seed)
    crossfit = fit and min(np.bincount(folds, minlength=2)) > 0
    per_image_t = np.full(len(labels), temperature)
    fold_t = []
    if crossfit:
        for k in (0, 1):
            t_k = fit_temperature(logits[folds == k], labels[folds == k])
            per_image_t[folds == 1 - k] = t_k  # fitted on fold k, applied to the other
            fold_t.append(t_k)
    scaled = logits / per_image_t[:, None]
    before = reliability(softmax(logits, axis=1), labels)
    after = reliability(softmax(scaled, axis=1), labels)
    return {
        "temperature": temperature,
        "fitted_on": "validation split" if fit else None,
        "measured_on": ("out-of-fold: 2-fold cross-fit over the validation split" if crossfit
                        else "validation split (in-sample: too small to halve)" if fit
                        else "validation split"),
        "fold_temperatures": fold_t,
        "seed": seed,
        "n": int(len(labels)),
        "accuracy": float((logits.argmax(1) == labels).mean()),
        "before": {"nll": nll(logits, labels), **before},
        "after": {"nll": nll(scaled, labels), **after},
    }
