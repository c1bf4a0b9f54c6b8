"""The ``report`` section: intervals, verdicts and the planner."""

from __future__ import annotations

import math

from pydantic.dataclasses import dataclass

from ganaug.params import (
    STRICT,
)


@dataclass(config=STRICT, frozen=True)
class ReportConfig:
    # Confidence level of the intervals over seeds.
    confidence_level: float = 0.95
    # delta: the smallest gain in accuracy points (1.0 = one percentage point) that matters;
    # within +-delta a mix is "equivalent" to the baseline (see README.md, "Verdicts").
    equivalence_margin: float = 1.0
    # Power the replicate planner aims for.
    power: float = 0.8

    def __post_init__(self) -> None:
        if not 0 < self.confidence_level < 1:
            raise ValueError(f"confidence_level: must be in (0, 1), got {self.confidence_level}")
        if not (math.isfinite(self.equivalence_margin) and self.equivalence_margin > 0):
            raise ValueError(f"equivalence_margin: must be a positive, finite number of accuracy "
                             f"points, got {self.equivalence_margin}")
        if not 0 < self.power < 1:
            raise ValueError(f"power: must be in (0, 1), got {self.power}")
