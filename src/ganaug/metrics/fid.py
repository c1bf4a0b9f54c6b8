"""Frechet and kernel distances between two sets of features.

Layered like pytorch-fid: features -> statistics -> a pure distance. ``frechet_distance`` follows
pytorch-fid's ``calculate_frechet_distance`` numerically (a test checks they agree) but needs only
numpy/scipy, so stages that compare saved features do not import torch.

Caveats recorded beside every figure: FID is biased upwards at small N and its covariance is
singular when N <= feature dimension; KID is unbiased and is reported next to it, with both counts.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
from scipy import linalg

log = logging.getLogger(__name__)


# Float64 elements of the features converted at a time by feature_stats (64 MiB): a pool of 1M
# images with 128 features would otherwise be copied twice in float64 (2 GB) for its covariance.
STATS_CHUNK = 1 << 23


def feature_stats(features: np.ndarray, chunk: int = STATS_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` of features ``(N, D)`` (N >= 2), in float64.

    Up to ``chunk`` elements this is ``np.cov``; beyond, the same two passes (the mean, then the
    sum of the centred outer products) over row blocks of ``chunk`` elements, so the memory used
    does not grow with N. The two agree to rounding (a test checks).
    """
    shape = np.shape(features)
    if len(shape) != 2 or shape[0] < 2:
        raise ValueError(f"feature_stats needs (N >= 2, D) features, got shape {shape}")
    n, d = shape
    rows = max(2, chunk // max(d, 1))
    if n <= rows:
        f = np.asarray(features, dtype=np.float64)
        return f.mean(axis=0), np.cov(f, rowvar=False)
    blocks = range(0, n, rows)
    total = np.zeros(d)
    for s in blocks:
        total += np.asarray(features[s:s + rows], dtype=np.float64).sum(axis=0)
    mean = total / n
    cov = np.zeros((d, d))
    for s in blocks:
        centred = np.asarray(features[s:s + rows], dtype=np.float64) - mean
        cov += centred.T @ centred
    return mean, cov / (n - 1)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between two Gaussians."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError("frechet_distance: the two statistics have different dimensions")
    diff = mu1 - mu2
    with warnings.catch_warnings():  # a singular product is handled just below
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        # Singular product (e.g. fewer samples than dimensions): regularise the diagonal.
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"frechet_distance: imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the kernel k(a, b) = (a.b / D + 1)^3 (the KID kernel)."""
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2 * kxy.mean())


def kernel_distance(x: np.ndarray, y: np.ndarray, subset_size: int, subsets: int,
                    rng: np.random.Generator) -> tuple[float, float]:
    """KID: mean and std of unbiased MMD^2 over random subsets (Binkowski et al. 2018)."""
    size = min(subset_size, len(x), len(y))
    if size < 2:
        raise ValueError(f"kernel_distance needs at least 2 samples per set, got {len(x)}, {len(y)}")
    values = [  # each subset taken first, then converted: never the whole set in float64
        polynomial_mmd2(np.asarray(x[rng.choice(len(x), size, replace=False)], np.float64),
                        np.asarray(y[rng.choice(len(y), size, replace=False)], np.float64))
        for _ in range(subsets)
    ]
    return float(np.mean(values)), float(np.std(values))


def compare(real: np.ndarray, fake: np.ndarray, *, feature_space: str, subset_size: int,
            subsets: int, seed: int, resize: str = "none") -> dict[str, Any]:
    """FID and KID of ``fake`` against ``real`` features, with the settings that produced them."""
    out: dict[str, Any] = {"feature_space": feature_space, "feature_dim": int(real.shape[1]),
                           "resize": resize, "n_real": int(len(real)), "n_fake": int(len(fake))}
    if len(real) < 2 or len(fake) < 2:
        return {**out, "fid": None, "kid": None, "kid_std": None, "note": "fewer than 2 samples"}
    rng = np.random.default_rng(seed)
    out["fid"] = frechet_distance(*feature_stats(real), *feature_stats(fake))
    out["kid"], out["kid_std"] = kernel_distance(real, fake, subset_size, subsets, rng)
    out["kid_subset_size"] = min(subset_size, len(real), len(fake))
    if min(len(real), len(fake)) <= real.shape[1]:
        out["note"] = "N <= feature dimension: covariance singular, FID biased; compare KID"
    return out
