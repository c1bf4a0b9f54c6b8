"""The ``study`` section: the grid ``dvc.yaml`` expands, the replicates (seeds) and the sources of
variation they vary, the pilot and the declared primary comparison."""

from __future__ import annotations

import math
from dataclasses import field
from typing import Any

from pydantic import ValidationError, field_validator
from pydantic.dataclasses import dataclass

from ganaug.params import (
    STRICT,
    check_name,
    no_duplicates,
)
from ganaug.replicates import SOURCES


@dataclass(config=STRICT, frozen=True)
class PrimaryConfig:
    """The comparison declared primary before the study runs: this mix against the baseline on
    this test set, tested on its own at the report's alpha (outside the Holm family)."""

    strategy: str
    ratio: float
    # A test-set name as the report uses it: data.source (its test split), a study target, or
    # synthetic / mixed (the held-out synthetic test set, when generate.test_per_class > 0).
    test_set: str


@dataclass(config=STRICT, frozen=True)
class StudyConfig:
    """The grid that ``dvc.yaml`` expands with ``matrix:``."""

    strategies: list[str]
    ratios: list[float]
    seeds: list[int]
    targets: list[str]
    # The Classification Accuracy Score model trains on the selection made at this ratio alone.
    synthetic_only_ratio: float
    # The real-only learning curve: real images per class of each point (empty: no curve).
    real_sizes: list[int] = field(default_factory=list)
    # The first `pilot` seeds are a pilot (exploratory verdicts, the planner's SD); verdicts come
    # from the rest, the confirmatory seeds. null or 0: no pilot, every seed decides.
    pilot: int | None = None
    # The declared primary comparison {strategy, ratio, test_set} (null: none); read it as
    # `primary_comparison`. A mapping here because strict pydantic takes no dict for a nested
    # dataclass; __post_init__ parses it as strictly as any section.
    primary: dict[str, Any] | None = None
    # The sources of variation each replicate draws anew (ganaug.replicates.SOURCES): its real
    # subset, its synthetic side (GAN run, pool, scorer, selection draws), its classifiers'
    # seeds. A source left out is held fixed: every replicate shares it, and the report says
    # every verdict is conditional on it.
    vary: list[str] = field(default_factory=lambda: list(SOURCES))

    @field_validator("primary")
    @classmethod
    def _primary_shape(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            _parse_primary(value)  # its errors then name study.primary.<key>
        return value

    def __post_init__(self) -> None:
        no_duplicates("strategies", self.strategies)
        no_duplicates("real_sizes", self.real_sizes)
        if any(n < 1 for n in self.real_sizes):
            raise ValueError(f"real_sizes: every size must be a number of real images per class "
                             f">= 1, got {self.real_sizes}")
        no_duplicates("ratios", self.ratios)
        no_duplicates("seeds", self.seeds)
        no_duplicates("targets", self.targets)
        for name in self.strategies:  # registered? ganaug.validate checks against the registry
            check_name("strategies", name)
            if name == "none":
                raise ValueError("strategies: 'none' is the real-only baseline, which is always "
                                 "trained; do not list it")
        for name in self.targets:
            check_name("targets", name)
        if not self.strategies or not self.ratios or not self.seeds:
            raise ValueError("strategies, ratios and seeds must not be empty")
        for r in self.ratios:
            if not math.isfinite(r) or r <= 0:
                raise ValueError(
                    f"ratios: every ratio must be a positive number of synthetic images per "
                    f"real image, got {r!r} (the real-only baseline is always trained; do not list 0)"
                )
        if self.synthetic_only_ratio not in self.ratios:
            raise ValueError(
                f"synthetic_only_ratio: {self.synthetic_only_ratio!r} must be one of "
                f"ratios {self.ratios}"
            )
        if any(s < 0 for s in self.seeds):
            raise ValueError(f"seeds: seeds must be >= 0, got {self.seeds}")
        if len(self.seeds) < 2:
            raise ValueError(
                f"seeds: each seed is one replicate of the whole study, and a comparison needs at "
                f"least 2 to estimate its spread; got {self.seeds} (for example [0, 1])")
        no_duplicates("vary", self.vary)
        unknown = [v for v in self.vary if v not in SOURCES]
        if unknown:
            raise ValueError(f"vary: {unknown[0]!r} is not a source of variation; expected a list "
                             f"of {', '.join(SOURCES)} (all by default)")
        self._check_replicates()

    @property
    def primary_comparison(self) -> PrimaryConfig | None:
        return None if self.primary is None else _parse_primary(self.primary)

    @property
    def pilot_seeds(self) -> list[int]:
        return list(self.seeds[: self.pilot or 0])

    @property
    def confirmatory_seeds(self) -> list[int]:
        return list(self.seeds[self.pilot or 0:])

    def _check_replicates(self) -> None:
        if self.pilot is not None:
            if self.pilot < 0:
                raise ValueError(f"pilot: must be a number of seeds >= 0 (or null), got {self.pilot}")
            if self.pilot and len(self.seeds) - self.pilot < 2:
                raise ValueError(
                    f"pilot: {self.pilot} of the {len(self.seeds)} seeds leaves "
                    f"{len(self.seeds) - self.pilot} confirmatory seed(s); verdicts need at "
                    f"least 2: add seeds after the pilot's or lower pilot")
        p = self.primary_comparison
        if p is None:
            return
        if p.strategy not in self.strategies:
            raise ValueError(f"primary.strategy: {p.strategy!r} is not one of strategies "
                             f"{self.strategies}")
        if p.ratio not in self.ratios:
            raise ValueError(f"primary.ratio: {p.ratio!r} is not one of ratios {self.ratios}")
        if len(self.confirmatory_seeds) < 2:
            raise ValueError(
                f"seeds: the primary comparison needs at least 2 (confirmatory) seeds, each one "
                f"replicate, to be tested; got {self.confirmatory_seeds}: add seeds, or set "
                f"primary: null for a smoke run")


def _parse_primary(value: dict[str, Any]) -> PrimaryConfig:
    try:
        return PrimaryConfig(**value)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        what = "unknown key" if err["type"] == "unexpected_keyword_argument" else err["msg"]
        missing = sorted({"strategy", "ratio", "test_set"} - set(value))
        if missing:
            raise ValueError(f"missing {', '.join(missing)} (expected a mapping of strategy, "
                             f"ratio and test_set), got {value!r}") from None
        raise ValueError(f"{where}: {what}, got {err.get('input')!r}") from None
