"""The ``refine`` section: iterative refinement rounds."""

from __future__ import annotations

import math
from dataclasses import field

from pydantic.dataclasses import dataclass

from ganaug.params import (
    STRICT,
    check_name,
    positive,
)

REFINE_BASE = "base"


@dataclass(config=STRICT, frozen=True)
class RefineConfig:
    """Iterative refinement (section ``refine``): each round fine-tunes the GAN it starts from on
    the real images plus the images selected from that GAN, then generates, scores and selects
    again."""

    # Round name -> the round it starts from; "base" is each replicate's main pipeline
    # (models/gan/<seed>.pt and its pool's selection by `strategy` at `ratio`). {} = none.
    rounds: dict[str, str] = field(default_factory=dict)
    # How every round selects (its knobs: select.<strategy>).
    strategy: str = "threshold"
    ratio: float = 1.0
    # GAN fine-tuning steps per round (the gan section gives everything else).
    steps: int = 500

    def __post_init__(self) -> None:
        # Whether `strategy` can drive refinement (a score-based one): ganaug.validate.
        check_name("strategy", self.strategy)
        if not math.isfinite(self.ratio) or self.ratio <= 0:
            raise ValueError(f"ratio: must be a positive number, got {self.ratio}")
        positive(steps=self.steps)
        for name, start in self.rounds.items():
            check_name("rounds", name)
            if name == REFINE_BASE:
                raise ValueError(f"rounds: {REFINE_BASE!r} is the main pipeline, not a round name")
            if start != REFINE_BASE and start not in self.rounds:
                raise ValueError(f"rounds: {name!r} starts from {start!r}, which is neither "
                                 f"{REFINE_BASE!r} nor a round")
        for name in self.rounds:  # every chain must end at base
            seen, node = {name}, self.rounds[name]
            while node != REFINE_BASE:
                if node in seen:
                    raise ValueError(f"rounds: {name!r} is part of a cycle")
                seen.add(node)
                node = self.rounds[node]

    def depth(self, name: str) -> int:
        """1 for a round that starts from base, 2 for one that starts from such a round, ..."""
        return 1 if self.rounds[name] == REFINE_BASE else 1 + self.depth(self.rounds[name])
