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


def calibration_report(logits: np.ndarray, labels: np.ndarray, fit: bool) -> dict[str, Any]:
    """ECE, NLL and reliability bins of the validation split before and after temperature
    scaling (``fit=False``: ``T = 1``, the 'after' equals the 'before')."""
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.int64)
    temperature = fit_temperature(logits, labels) if fit else 1.0
    before = reliability(softmax(logits, axis=1), labels)
    after = reliability(softmax(logits / temperature, axis=1), labels)
    return {
        "temperature": temperature,
        "fitted_on": "validation split",
        "n": int(len(labels)),
        "accuracy": float((logits.argmax(1) == labels).mean()),
        "before": {"nll": nll(logits, labels), **before},
        "after": {"nll": nll(logits, labels, temperature), **after},
    }
