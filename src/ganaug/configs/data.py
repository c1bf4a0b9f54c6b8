"""The ``data`` section: the source dataset, its splits and its scarcity."""

from __future__ import annotations

from pydantic.dataclasses import dataclass

from ganaug.params import (
    STRICT,
    check_name,
)


@dataclass(config=STRICT, frozen=True)
class DataConfig:
    """Which dataset is the source, how it is split, and how scarce its real training data is."""

    source: str
    # Scarcity: keep at most this many real training images per class (null: all of them) ...
    real_per_class: int | None = None
    # ... or this fraction of each class (null: all). At most one of the two may be set.
    real_fraction: float | None = None
    # Validation images kept per class (null: all). Early stopping reads the whole validation split
    # every epoch, so on a big official split (FER2013's 3,589 PublicTest images) this bounds its cost.
    val_per_class: int | None = None
    val_fraction: float = 0.15
    test_fraction: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        check_name("source", self.source)
        if self.real_per_class is not None and self.real_fraction is not None:
            raise ValueError("real_per_class and real_fraction: set at most one of them")
        for key in ("real_per_class", "val_per_class"):
            v = getattr(self, key)
            if v is not None and v < 1:
                raise ValueError(f"{key}: must be >= 1 or null, got {v}")
        if self.real_fraction is not None and not 0 < self.real_fraction <= 1:
            raise ValueError(f"real_fraction: must be in (0, 1], got {self.real_fraction}")
        for key in ("val_fraction", "test_fraction"):
            v = getattr(self, key)
            if not 0 < v < 1:
                raise ValueError(f"{key}: must be in (0, 1), got {v}")
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must be < 1")
