"""The ``rl`` strategy's config and its entry in the strategy registry; the policy network and
its training live in :mod:`ganaug.selection.rl_policy` (imported only when rl runs: torch)."""

from __future__ import annotations

import math

import numpy as np
from pydantic.dataclasses import dataclass

from ganaug.params import STRICT
from ganaug.selection import Candidates, register_strategy


@dataclass(config=STRICT, frozen=True)
class RlConfig:
    """Knobs of the ``rl`` strategy (section ``select.rl``)."""

    # Policy updates (one child classifier trained per episode).
    episodes: int = 300
    # Pool images drawn (uniformly, without replacement) for each episode's keep/drop decisions.
    candidates_per_episode: int = 64
    # The child classifier: small_cnn of this width, trained for this many batches (of batch_size
    # images, drawn with replacement from real + kept) with Adam at this learning rate.
    child_steps: int = 50
    child_width: int = 8
    child_lr: float = 1e-2
    # At most this many real train / validation images per class for the child (null: all); bounds
    # the per-episode cost on large datasets. Drawn once, before the first episode.
    child_real_per_class: int | None = None
    child_val_per_class: int | None = None
    # The policy network: channels of its first conv layer; Adam's learning rate.
    policy_width: int = 16
    policy_lr: float = 3e-3
    # Weight of the entropy bonus (keeps the policy exploring) and of the critic's squared error.
    entropy_weight: float = 0.01
    value_weight: float = 0.5
    # The reward compares an episode's accuracy with the mean of this many previous episodes'.
    history: int = 5
    # Images per batch for the child classifier and for scoring the pool.
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        for key in ("episodes", "child_steps", "child_width", "policy_width", "history",
                    "batch_size"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: must be >= 1, got {getattr(self, key)}")
        if self.candidates_per_episode < 2:  # the policy's batch norm needs two images
            raise ValueError(
                f"candidates_per_episode: must be >= 2, got {self.candidates_per_episode}")
        for key in ("child_real_per_class", "child_val_per_class"):
            v = getattr(self, key)
            if v is not None and v < 1:
                raise ValueError(f"{key}: must be >= 1 or null, got {v}")
        for key in ("child_lr", "policy_lr"):
            v = getattr(self, key)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{key}: must be a finite number > 0, got {v}")
        for key in ("entropy_weight", "value_weight"):
            v = getattr(self, key)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{key}: must be a finite number >= 0, got {v}")
        if self.seed < 0:
            raise ValueError(f"seed: must be >= 0, got {self.seed}")


@register_strategy("rl", RlConfig)
def select_rl(candidates: Candidates, k: np.ndarray, cfg: RlConfig):
    """Top-K per class by the keep probability of a policy trained by actor-critic (RL)."""
    from ganaug.runtime import resolve_device, set_determinism
    from ganaug.selection.rl_policy import select_rl as train_and_select

    if candidates.images is None or candidates.real is None:
        raise ValueError("rl needs the pool's images and the real data")
    device = resolve_device(candidates.device) if isinstance(candidates.device, str) \
        else candidates.device
    set_determinism(cfg.seed)
    scores = candidates.scores.sort_values("index")
    rows = scores["index"].to_numpy()
    # The pipeline's table has a row per pool image (index 0..N-1): the memmap is used as it is.
    whole = np.array_equal(rows, np.arange(len(candidates.images)))
    images = candidates.images if whole else np.asarray(candidates.images[rows])
    chosen, info = train_and_select(images, scores["label"].to_numpy(), k,
                                    *candidates.real.split("train"), *candidates.real.split("val"),
                                    candidates.real.num_classes, cfg, device)
    return rows[chosen], {"rl": info}
