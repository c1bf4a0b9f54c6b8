"""Generator diagnostics a reviewer asks for, in a feature space (the scorer's by default).

- Precision, recall, density and coverage (Kynkaanniemi et al. 2019; Naeem et al. 2020):
  k-nearest-neighbour manifolds of the real and the synthetic features. Precision: the share of
  synthetic points inside the real manifold (fidelity); recall: the share of real points inside
  the synthetic manifold (diversity); density and coverage are their outlier-robust variants.
- A nearest-neighbour copy heuristic (:func:`nn_copy_heuristic`; the ``memorisation`` entry of
  the score metrics). For every synthetic image, the distance to its nearest real training image
  and to its nearest real test image of its class. A generator that copies its training images
  puts its samples closer to them than to unseen test images; the share of synthetic images
  closer to a test image than to any training image is compared with the same share for real
  held-out (validation) images, which copy nothing. Test images are subsampled per class to the
  training images' count so both sides have the same chance of being nearest. It is inspired by,
  but is not, the data-copying test of Meehan et al. 2020 (a Mann-Whitney U statistic on
  distances to the training set, per cell of a partition, with a significance level): it has
  no p-value, only a fixed cut-off (:data:`COPY_FLAG_RATIO`).

Features are ``(N, D)`` float arrays; distances are Euclidean.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# The copy flag: a pool's share of images closer to a test image than to any training image is
# under this fraction of the real held-out images' share. What the number means: if a fraction c
# of the pool are copies of training images (always nearer a training image) and the rest sit
# like held-out images, the pool's share is (1 - c) x reference, so the flag says "more than half
# of the pool behaves like copies" (c > 1 - COPY_FLAG_RATIO; `copy_share_estimate` reports c).
# Deliberately lenient: the reference comes from a few hundred held-out images (its standard
# error about 0.5 / sqrt(n), 0.03 at n = 300), so a clean generator is never flagged by noise,
# while a generator that copies a minority of its images is not flagged either (read
# copy_share_estimate and the closest-pairs grid for that).
COPY_FLAG_RATIO = 0.5


def pairwise_distances(a: np.ndarray, b: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Euclidean distances ``(len(a), len(b))`` float64, computed in row chunks."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    bb = (b * b).sum(1)
    out = np.empty((len(a), len(b)))
    for s in range(0, len(a), chunk):
        x = a[s:s + chunk]
        d2 = (x * x).sum(1)[:, None] + bb[None, :] - 2 * x @ b.T
        out[s:s + chunk] = np.sqrt(np.maximum(d2, 0.0))
    return out


def nearest(a: np.ndarray, b: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``a``: the distance to its nearest row of ``b`` and that row's index."""
    dist, idx = np.empty(len(a)), np.empty(len(a), np.int64)
    for s in range(0, len(a), chunk):
        d = pairwise_distances(a[s:s + chunk], b)
        idx[s:s + chunk] = d.argmin(1)
        dist[s:s + chunk] = d[np.arange(len(d)), idx[s:s + chunk]]
    return dist, idx


def kth_neighbour_radius(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row of ``x`` to its k-th nearest other row."""
    d = pairwise_distances(x, x)
    np.fill_diagonal(d, np.inf)
    return np.partition(d, k - 1, axis=1)[:, k - 1]


def prdc(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, Any]:
    """Precision, recall, density and coverage of ``fake`` against ``real`` with k neighbours.

    ``r_k(x)`` is the distance from ``x`` to its k-th nearest other point of its own set, and a
    point is inside a ball when its distance is at most the radius (closed balls, as the papers
    define the manifolds: Kynkaanniemi et al. 2019 eq. 1, Naeem et al. 2020 eqs. 1-2):

    - precision = mean over fake f of [some real r: d(f, r) <= r_k(r)],
    - recall = mean over real r of [some fake f: d(r, f) <= r_k(f)],
    - density = (1/k) mean over fake f of #{real r: d(f, r) <= r_k(r)},
    - coverage = mean over real r of [min over fake f of d(r, f) <= r_k(r)].

    clovaai/generative-evaluation-prdc compares with a strict ``<``; the two differ only on
    exact ties, which continuous features almost never have but copies do (a real image that
    occurs twice has ``r_1 = 0``, and a strict ball of radius 0 holds not even an exact copy).

    None for all four when either set has no more than ``k`` points (a k-th neighbour needs
    ``k + 1`` points).
    """
    out: dict[str, Any] = {"k": k, "n_real": int(len(real)), "n_fake": int(len(fake))}
    if len(real) <= k or len(fake) <= k:
        return {**out, "precision": None, "recall": None, "density": None, "coverage": None}
    r_real = kth_neighbour_radius(real, k)                      # (R,)
    r_fake = kth_neighbour_radius(fake, k)                      # (F,)
    d = pairwise_distances(real, fake)                          # (R, F)
    inside_real = d <= r_real[:, None]                          # fake j in ball of real i
    return {**out,
            "precision": float(inside_real.any(axis=0).mean()),
            "recall": float((d <= r_fake[None, :]).any(axis=1).mean()),
            "density": float(inside_real.sum(axis=0).mean() / k),
            "coverage": float((d.min(axis=1) <= r_real).mean())}


def prdc_report(real: np.ndarray, real_labels: np.ndarray, fake: np.ndarray,
                fake_labels: np.ndarray, classes: list[str], k: int) -> dict[str, Any]:
    """:func:`prdc` per class (each class against the real images of that class) and their means."""
    per_class = {name: prdc(real[real_labels == c], fake[fake_labels == c], k)
                 for c, name in enumerate(classes)}
    means = {}
    for key in ("precision", "recall", "density", "coverage"):
        vals = [v[key] for v in per_class.values() if v[key] is not None]
        means[key] = float(np.mean(vals)) if vals else None
    return {"k": k, "feature_space": "scorer", "mean_over_classes": means, "per_class": per_class}


def size_matched(labels: np.ndarray, counts: np.ndarray, seed: int) -> np.ndarray:
    """Sorted indices of at most ``counts[c]`` rows of each class ``c`` of ``labels``, seeded."""
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == c))[: int(n)] for c, n in enumerate(counts)]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def closer_to_test(query: np.ndarray, query_labels: np.ndarray, train: np.ndarray,
                   train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query row, within its class: distance to the nearest train row, to the nearest test
    row, and the index (into ``train``) of that nearest train row. Rows of a class absent from
    train or test get ``inf``."""
    d_train = np.full(len(query), np.inf)
    d_test = np.full(len(query), np.inf)
    nn_train = np.full(len(query), -1, np.int64)
    for c in np.unique(query_labels):
        q = np.flatnonzero(query_labels == c)
        tr, te = np.flatnonzero(train_labels == c), np.flatnonzero(test_labels == c)
        if len(tr):
            d, i = nearest(query[q], train[tr])
            d_train[q], nn_train[q] = d, tr[i]
        if len(te):
            d_test[q] = nearest(query[q], test[te])[0]
    return d_train, d_test, nn_train


def copy_share_estimate(fraction: float | None, reference: float | None) -> float | None:
    """The share c of copies that explains ``fraction = (1 - c) x reference`` (see
    :data:`COPY_FLAG_RATIO`), clipped to [0, 1]; None when either is unknown or the reference
    is 0 (then nothing can be told apart)."""
    if fraction is None or reference is None or reference <= 0:
        return None
    return float(min(max(1.0 - fraction / reference, 0.0), 1.0))


def nn_copy_heuristic(fake: np.ndarray, fake_labels: np.ndarray, train: np.ndarray,
                      train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray,
                      held_out: np.ndarray, held_out_labels: np.ndarray, seed: int = 0
                      ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The nearest-neighbour copy heuristic (see the module docstring; not a statistical test).

    Returns the summary (``fraction_closer_to_test`` for the synthetic images, the same for the
    real ``held_out`` images as ``reference_fraction``, ``copy_share_estimate``, and ``copying``:
    the first under ``COPY_FLAG_RATIO`` x the second) and per synthetic image ``nn_train_dist``,
    ``nn_test_dist`` and ``nn_train_index``. The summary's keys are those the report reads
    (the score metrics keep the name ``memorisation`` for it).
    """
    counts = np.bincount(train_labels, minlength=int(max(fake_labels.max(initial=0),
                                                         train_labels.max(initial=0))) + 1)
    matched = size_matched(test_labels, counts, seed)
    test, test_labels = test[matched], test_labels[matched]
    d_train, d_test, nn_idx = closer_to_test(fake, fake_labels, train, train_labels, test,
                                             test_labels)
    r_train, r_test, _ = closer_to_test(held_out, held_out_labels, train, train_labels, test,
                                        test_labels)
    both = np.isfinite(d_train) & np.isfinite(d_test)
    ref_both = np.isfinite(r_train) & np.isfinite(r_test)
    frac = float((d_test[both] < d_train[both]).mean()) if both.any() else None
    ref = float((r_test[ref_both] < r_train[ref_both]).mean()) if ref_both.any() else None
    copying = None if frac is None or ref is None else bool(frac < COPY_FLAG_RATIO * ref)
    summary = {
        "method": "nearest-neighbour heuristic: share closer to test than to train vs held-out",
        "feature_space": "scorer",
        "fraction_closer_to_test": frac,
        "reference_fraction": ref,
        "copying": copying,
        "copy_share_estimate": copy_share_estimate(frac, ref),
        "flag_ratio": COPY_FLAG_RATIO,
        "n_fake": int(both.sum()), "n_reference": int(ref_both.sum()),
        "n_train": int(len(train_labels)), "n_test_matched": int(len(test_labels)),
        "median_nn_train_dist": float(np.median(d_train[both])) if both.any() else None,
        "median_nn_train_dist_reference": (float(np.median(r_train[ref_both]))
                                           if ref_both.any() else None),
    }
    return summary, {"nn_train_dist": d_train, "nn_test_dist": d_test, "nn_train_index": nn_idx}
