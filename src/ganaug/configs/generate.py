"""The ``generate`` section: the synthetic pool's size and the held-out synthetic test set."""

from __future__ import annotations

from pydantic.dataclasses import dataclass

from ganaug.params import (
    STRICT,
    positive,
)


@dataclass(config=STRICT, frozen=True)
class GenerateConfig:
    # The pool holds pool_multiplier x max_ratio x (largest real class count) images per class, so
    # every ratio up to max_ratio can choose K = ratio x real count from several times as many.
    pool_multiplier: float = 4.0
    max_ratio: float = 5.0
    # A held-out synthetic test set of this many images per class (0: none), generated with other
    # noise than the pool: for train-on-real/test-on-synthetic and the mixed test set.
    test_per_class: int = 0
    batch_size: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        if self.test_per_class < 0:
            raise ValueError(f"test_per_class: must be >= 0, got {self.test_per_class}")
        if self.pool_multiplier < 1:
            raise ValueError(f"pool_multiplier: must be >= 1, got {self.pool_multiplier}")
        if self.max_ratio <= 0:
            raise ValueError(f"max_ratio: must be > 0, got {self.max_ratio}")
        positive(batch_size=self.batch_size)
