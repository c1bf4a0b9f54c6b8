"""The strategies that rank the score table: random (the control), confidence (cl-sam), realism
(cr-sam), threshold, and combined (realism plus a weighted log of the confidence)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic.dataclasses import dataclass

from ganaug.params import STRICT
from ganaug.selection import Candidates, per_class, register_strategy, top


@dataclass(config=STRICT, frozen=True)
class RandomConfig:
    seed: int = 0


@dataclass(config=STRICT, frozen=True)
class ConfidenceConfig:
    # Drop images the scorer assigns to another class before ranking (classifier-guided filtering).
    require_correct: bool = False


@dataclass(config=STRICT, frozen=True)
class RealismConfig:
    require_correct: bool = False


@dataclass(config=STRICT, frozen=True)
class ThresholdConfig:
    # Keep images whose intended-label probability is at least this, chosen at random among those
    # that pass, capped at K. A class with fewer passing images than K is reported short, not padded.
    min_confidence: float = 0.9
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.min_confidence <= 1:
            raise ValueError(f"min_confidence: must be in [0, 1], got {self.min_confidence}")


@dataclass(config=STRICT, frozen=True)
class CombinedConfig:
    # score = realism' + weight x log(confidence), where realism' is the discriminator's realism,
    # standardised within each class when `standardize` (its scale differs between GAN families,
    # a log-probability's does not). weight 0: realism alone; large: confidence alone.
    weight: float = 1.0
    standardize: bool = True
    require_correct: bool = False

    def __post_init__(self) -> None:
        if not self.weight >= 0:
            raise ValueError(f"weight: must be a finite number >= 0, got {self.weight}")


def _correct_only(rows: pd.DataFrame, c: int, require: bool) -> pd.DataFrame:
    return rows[rows["predicted"] == c] if require else rows


@register_strategy("random", RandomConfig)
def select_random(candidates: Candidates, k: np.ndarray, cfg: RandomConfig) -> np.ndarray:
    """K images per class uniformly at random (the unscored control)."""
    rng = np.random.default_rng(cfg.seed)
    return per_class(candidates.scores, k,
                     lambda rows, n, c: rng.choice(rows["index"].to_numpy(), n, replace=False))


@register_strategy("confidence", ConfidenceConfig)
def select_confidence(candidates: Candidates, k: np.ndarray, cfg: ConfidenceConfig) -> np.ndarray:
    """Top-K per class by the scorer's probability of the intended label (cl-sam)."""
    return per_class(candidates.scores, k, lambda rows, n, c: top(
        _correct_only(rows, c, cfg.require_correct), "confidence", n))


@register_strategy("realism", RealismConfig)
def select_realism(candidates: Candidates, k: np.ndarray, cfg: RealismConfig) -> np.ndarray:
    """Top-K per class by the discriminator's realism score (cr-sam)."""
    return per_class(candidates.scores, k, lambda rows, n, c: top(
        _correct_only(rows, c, cfg.require_correct), "realism", n))


@register_strategy("threshold", ThresholdConfig)
def select_threshold(candidates: Candidates, k: np.ndarray, cfg: ThresholdConfig) -> np.ndarray:
    """Images with confidence >= t, at most K per class, chosen at random among those passing."""
    rng = np.random.default_rng(cfg.seed)

    def pick(rows: pd.DataFrame, n: int, c: int) -> np.ndarray:
        passing = rows["index"].to_numpy()[rows["confidence"].to_numpy() >= cfg.min_confidence]
        return rng.choice(passing, min(n, len(passing)), replace=False)

    return per_class(candidates.scores, k, pick)


def combined_score(realism: np.ndarray, confidence: np.ndarray, weight: float,
                   standardize: bool) -> np.ndarray:
    """``realism' + weight * log(confidence)`` for the images of one class.

    As in discriminator rejection sampling, the discriminator's logit estimates
    ``log p_data(x) / p_g(x)``; adding ``weight * log p(y | x)`` of the classifier favours images
    that are both realistic and clearly of their intended class. ``realism'`` is ``realism``
    standardised to mean 0 and standard deviation 1 (a constant column stays 0) when
    ``standardize``. A confidence of 0 counts as the smallest positive float (no ``-inf``).
    """
    realism = np.asarray(realism, np.float64)
    if standardize:
        std = realism.std()
        realism = (realism - realism.mean()) / std if std > 0 else np.zeros_like(realism)
    conf = np.maximum(np.asarray(confidence, np.float64), np.finfo(np.float64).tiny)
    return realism + weight * np.log(conf)


@register_strategy("combined", CombinedConfig)
def select_combined(candidates: Candidates, k: np.ndarray, cfg: CombinedConfig) -> np.ndarray:
    """Top-K per class by realism plus a weighted log of the confidence (rejection-sampling style)."""
    def pick(rows: pd.DataFrame, n: int, c: int) -> np.ndarray:
        rows = _correct_only(rows, c, cfg.require_correct)
        score = combined_score(rows["realism"].to_numpy(), rows["confidence"].to_numpy(),
                               cfg.weight, cfg.standardize)
        return top(rows, score, n)

    return per_class(candidates.scores, k, pick)


__all__: list[Any] = ["CombinedConfig", "ConfidenceConfig", "RandomConfig", "RealismConfig",
                      "ThresholdConfig", "combined_score"]
