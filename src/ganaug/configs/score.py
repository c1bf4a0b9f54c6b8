"""The ``score`` section: FID/KID, precision/recall and the sample grids."""

from __future__ import annotations

from dataclasses import field
from typing import Literal

from pydantic.dataclasses import dataclass

from ganaug.params import (
    STRICT,
    positive,
)


@dataclass(config=STRICT, frozen=True)
class ScoreConfig:
    # Feature spaces for FID/KID: "scorer" (the real-data classifier's penultimate layer, offline;
    # always computed, it also scores selections) and "inception" (the standard FID Inception
    # network; needs fetch.inception so that fetch@inception provides its weights).
    features: list[Literal["scorer", "inception"]] = field(default_factory=lambda: ["scorer"])
    # Pool images per class that FID/KID compare (null: all); Inception on a CPU is ~0.3 s/image.
    fid_per_class: int | None = None
    batch_size: int = 512
    kid_subset_size: int = 100
    kid_subsets: int = 50
    # Images per class in the best/worst-scored sample grids (and closest-to-training pairs).
    grid_per_class: int = 8
    # Neighbours of the precision/recall/density/coverage manifolds (a class needs more real
    # images than this, or its figures are null), and the synthetic images per class they use
    # (a seeded subset: the synthetic k-NN radii need all pairwise distances, O(n^2) memory).
    prdc_k: int = 5
    prdc_per_class: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if "scorer" not in self.features or len(set(self.features)) != len(self.features):
            raise ValueError(f"features: list scorer (always computed) and each space once, "
                             f"got {self.features}")
        if self.fid_per_class is not None and self.fid_per_class < 2:
            raise ValueError(f"fid_per_class: must be >= 2 or null, got {self.fid_per_class}")
        if self.kid_subset_size < 2:  # the unbiased MMD estimate needs two samples per set
            raise ValueError(f"kid_subset_size: must be >= 2, got {self.kid_subset_size}")
        positive(batch_size=self.batch_size, kid_subset_size=self.kid_subset_size,
                  kid_subsets=self.kid_subsets, grid_per_class=self.grid_per_class,
                  prdc_k=self.prdc_k, prdc_per_class=self.prdc_per_class)
