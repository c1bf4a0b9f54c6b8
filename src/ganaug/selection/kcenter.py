"""The ``kcenter`` strategy: a diverse selection, by greedy k-center per class in the scorer's
feature space (Sener & Savarese 2018's core-set selection).

Top-K by confidence favours easy, near-duplicate images (they all sit where the scorer is surest);
k-center instead spreads the chosen images over the class: after a first image, it repeatedly
adds the image farthest from every image chosen so far. Farthest-first is outlier-first: the
second center is the pool's most remote image of the class, which is most often a failed sample.
``min_confidence`` therefore first drops images the scorer finds implausible for their intended
class, so diversity does not buy garbage. Its default, 0.5, keeps exactly the images the scorer
would classify as their intended class whatever the number of classes (probabilities sum to 1,
so p >= 0.5 is the argmax, barring a tie at 0.5), with no per-dataset tuning; 0 turns the filter
off.

Why not seed the centers with the real images instead, as the core-set method does (Sener &
Savarese 2018: the labelled set is the initial centers)? Then the first synthetic pick is the
image farthest from all real data, the very outlier the filter is there to drop; seeding changes
where the spread starts, not what farthest-first seeks out.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic.dataclasses import dataclass

from ganaug.errors import DataFileError
from ganaug.params import STRICT
from ganaug.selection import Candidates, per_class, register_strategy


@dataclass(config=STRICT, frozen=True)
class KCenterConfig:
    # Only images with at least this confidence in their intended label are candidates (0: all).
    # 0.5: the scorer's argmax is the intended label; without a floor, farthest-first picks the
    # pool's outliers (failed samples) right after the first center.
    min_confidence: float = 0.5
    # The first center: the most confident image ("confidence") or the image nearest the class's
    # mean feature ("mean").
    start: Literal["confidence", "mean"] = "confidence"

    def __post_init__(self) -> None:
        if not 0 <= self.min_confidence <= 1:
            raise ValueError(f"min_confidence: must be in [0, 1], got {self.min_confidence}")


def greedy_k_center(x: np.ndarray, n: int, first: int) -> np.ndarray:
    """Row indices of ``n`` centers of ``x (N, D)``, in the order chosen: ``first``, then each
    time the row farthest (Euclidean) from its nearest chosen row; ties go to the lower index.

    O(N x n x D) time, O(N) memory beyond ``x``.
    """
    x = np.asarray(x, np.float64)
    n = min(n, len(x))
    if n == 0:
        return np.zeros(0, np.int64)
    chosen = [first]
    nearest = np.linalg.norm(x - x[first], axis=1)  # (N,) distance to the nearest center
    for _ in range(n - 1):
        nearest[chosen[-1]] = -1.0  # a chosen row is never picked again
        i = int(np.argmax(nearest))  # argmax returns the first maximum: the lower index
        chosen.append(i)
        nearest = np.minimum(nearest, np.linalg.norm(x - x[i], axis=1))
        nearest[chosen] = -1.0
    return np.asarray(chosen, np.int64)


@register_strategy("kcenter", KCenterConfig)
def select_kcenter(candidates: Candidates, k: np.ndarray, cfg: KCenterConfig) -> np.ndarray:
    """K images per class spread out in the scorer's feature space (greedy k-center)."""
    if candidates.features is None:
        raise DataFileError("kcenter needs the scorer's features of the pool "
                            "(data/scores/features.npz, written by the score stage)")
    feats = candidates.features

    def pick(rows: pd.DataFrame, n: int, c: int) -> np.ndarray:
        rows = rows[rows["confidence"].to_numpy() >= cfg.min_confidence]
        if len(rows) == 0:
            return np.zeros(0, np.int64)
        idx = rows["index"].to_numpy()
        x = feats[idx]  # (M, D)
        if cfg.start == "confidence":
            conf = rows["confidence"].to_numpy()
            first = int(np.lexsort((idx, -conf))[0])
        else:
            first = int(np.argmin(np.linalg.norm(x - x.mean(0), axis=1)))
        return idx[greedy_k_center(x, n, first)]

    return per_class(candidates.scores, k, pick)
