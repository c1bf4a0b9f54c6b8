"""The ``kcenter`` strategy: a diverse selection, by greedy k-center per class in the scorer's
feature space (Sener & Savarese 2018's core-set selection).

Top-K by confidence favours easy, near-duplicate images (they all sit where the scorer is surest);
k-center instead spreads the chosen images over the class: after a first image, it repeatedly
adds the image farthest from every image chosen so far. ``min_confidence`` first drops images the
scorer finds implausible for their intended class, so diversity does not buy garbage.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from pydantic.dataclasses import dataclass

from ganaug.config import STRICT
from ganaug.errors import DataFileError
from ganaug.selection import Candidates, per_class, register_strategy


@dataclass(config=STRICT, frozen=True)
class KCenterConfig:
    # Only images with at least this confidence in their intended label are candidates (0: all).
    min_confidence: float = 0.0
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
