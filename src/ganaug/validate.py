"""The whole ``params.yaml`` validated at once, before any stage does work.

Each stage parses the sections it declares; this module checks everything else a stage alone
cannot: keys no stage reads (a misspelt ``scorrer``, a misnested ``select.min_confidence``),
the installed plugins (every one is loaded and checked, used or not), names that must exist in
a registry (GAN families, classifiers, selection strategies, dataset kinds), names that reach
commands and file names, and the agreement between sections (the source and targets exist,
every strategy has its knobs, the pool is large enough for every ratio, dataset files are where
DVC tracks them). The ``check_params`` stage runs it first in every ``dvc
repro``, and ``python -m ganaug.parallel`` before it starts any worker; ``python -m
ganaug.validate [params.yaml]`` runs it by hand.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any

from ganaug.configs.data import DataConfig
from ganaug.configs.gan import GanConfig
from ganaug.configs.generate import GenerateConfig
from ganaug.configs.refine import REFINE_BASE, RefineConfig
from ganaug.configs.report import ReportConfig
from ganaug.configs.score import ScoreConfig
from ganaug.configs.study import StudyConfig
from ganaug.configs.train import ClassifierConfig, ScorerConfig
from ganaug.errors import ParamsError
from ganaug.params import check_device, check_name, check_threads, load_params, parse

# Where dataset files must live: DVC tracks this folder as every prepare stage's dependency, so a
# file anywhere else could change without `dvc status` noticing.
RAW_DIR = PurePosixPath("data/raw")
# Test-set names the evaluate stage uses itself; a dataset named so would be overwritten.
RESERVED_DATASET_NAMES = ("synthetic", "mixed")


def _sections() -> dict[str, Callable[[Any, str, str], Any]]:
    """Top-level key -> a check of its value; every key of params.yaml must be one of these."""
    def simple(cls: type) -> Callable[[Any, str, str], Any]:
        return lambda value, key, where: parse(cls, value, key, where)

    return {
        "device": _device,
        "threads": _threads,
        "study": simple(StudyConfig),
        "data": simple(DataConfig),
        "datasets": _datasets,
        "scorer": _classifier(ScorerConfig),
        "classifier": _classifier(ClassifierConfig),
        "gan": _gan,
        "generate": simple(GenerateConfig),
        "fetch": _fetch,
        "score": simple(ScoreConfig),
        "select": _select,
        "refine": simple(RefineConfig),
        "report": simple(ReportConfig),
    }


def validate_params(params: Mapping[str, Any], where: str = "params.yaml") -> dict[str, Any]:
    """Validate every key of a params mapping; returns the parsed sections by name.

    Raises :class:`ParamsError` naming the first problem (``params.yaml: <key>: <what is
    expected>``).
    """
    load_plugins()
    sections = _sections()
    if not isinstance(params, Mapping):
        raise ParamsError(f"{where}: expected a mapping of sections at the top level")
    for key in params:
        if key not in sections:
            raise ParamsError(f"{where}: {key}: unknown section{_did_you_mean(key, sections)}; "
                              f"known: {', '.join(sections)}")
    missing = [k for k in ("study", "data", "datasets") if k not in params]
    if missing:
        raise ParamsError(f"{where}: missing section(s) {', '.join(missing)}")
    parsed = {key: check(params.get(key), key, where) for key, check in sections.items()
              if key in params}
    _cross_checks(params, parsed, where)
    return parsed


def validate_params_file(path: str = "params.yaml") -> dict[str, Any]:
    return validate_params(load_params(path), str(path))


def load_plugins() -> None:
    """Load every installed plugin of every registry: a broken one is a
    :class:`~ganaug.errors.PluginError` naming it, whether the params use it or not."""
    from ganaug.data.base import DATASET_KINDS
    from ganaug.gan import FAMILIES
    from ganaug.selection import STRATEGIES

    for registry in (FAMILIES, STRATEGIES, DATASET_KINDS):
        len(registry)  # a lookup loads the registry's plugins


# --------------------------------------------------------------------------------------------
# Sections that need more than their dataclass
# --------------------------------------------------------------------------------------------


def _device(value: Any, key: str, where: str) -> str:
    try:
        return check_device(value)
    except ValueError as exc:
        raise ParamsError(f"{where}: {exc}") from None


def _threads(value: Any, key: str, where: str) -> int | None:
    try:
        return check_threads(value)
    except ValueError as exc:
        raise ParamsError(f"{where}: {exc}") from None


def _classifier(cls: type) -> Callable[[Any, str, str], Any]:
    def check(value: Any, key: str, where: str) -> Any:
        from ganaug.models import CLASSIFIERS, validate_pretrained

        cfg = parse(cls, value, key, where)
        if cfg.arch not in CLASSIFIERS:
            raise ParamsError(f"{where}: {key}.arch: unknown classifier {cfg.arch!r}"
                              f"{_did_you_mean(cfg.arch, CLASSIFIERS)}; known: "
                              f"{', '.join(CLASSIFIERS)}")
        try:
            validate_pretrained(cfg.arch, cfg.pretrained, cfg.width)
        except ValueError as exc:
            raise ParamsError(f"{where}: {key}.{exc}") from None
        return cfg

    return check


def _gan(value: Any, key: str, where: str) -> GanConfig:
    from ganaug.gan import FAMILIES, gan_config

    cfg = gan_config(value, key, where)
    try:
        FAMILIES.get(cfg.arch).check_params(cfg)
    except ValueError as exc:
        raise ParamsError(f"{where}: {key}.{exc}") from None
    return cfg


def _datasets(value: Any, key: str, where: str) -> dict[str, Any]:
    from ganaug.data.prepare import parse_dataset_config

    if not isinstance(value, Mapping) or not value:
        raise ParamsError(f"{where}: {key}: expected a mapping of dataset names to their entries")
    out = {}
    for name, entry in value.items():
        _safe(f"{key}", name, where)
        if name in RESERVED_DATASET_NAMES:
            raise ParamsError(f"{where}: {key}.{name}: {name!r} is the name of a test set the "
                              f"pipeline makes itself ({', '.join(RESERVED_DATASET_NAMES)}); "
                              f"rename the dataset")
        cfg = parse_dataset_config(name, entry)
        for attr in ("path", "root"):
            if isinstance(getattr(cfg, attr, None), str):
                _under_raw(getattr(cfg, attr), f"{key}.{name}.{attr}", where)
        out[name] = cfg
    return out


def _fetch(value: Any, key: str, where: str) -> dict[str, Any]:
    from ganaug.external import FetchConfig

    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ParamsError(f"{where}: {key}: expected a mapping of names to {{url, sha256}}")
    out = {}
    for name, entry in value.items():
        _safe(key, name, where)
        out[name] = parse(FetchConfig, entry, f"{key}.{name}", where)
    return out


def _select(value: Any, key: str, where: str) -> dict[str, Any]:
    from ganaug.selection import STRATEGIES

    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ParamsError(f"{where}: {key}: expected a mapping of strategy names to their knobs")
    out = {}
    for name, entry in value.items():
        if name not in STRATEGIES:
            owners = [f"select.{s}.{name}" for s in STRATEGIES
                      if name in getattr(STRATEGIES.get(s).config, "__dataclass_fields__", {})]
            hint = (f"; strategy knobs go under select.<strategy>: {' or '.join(owners)}"
                    if owners else "")
            raise ParamsError(f"{where}: {key}.{name}: unknown selection strategy"
                              f"{_did_you_mean(name, STRATEGIES)}{hint}; known: "
                              f"{', '.join(STRATEGIES)}")
        out[name] = parse(STRATEGIES.get(name).config, entry, f"{key}.{name}", where)
    return out


# --------------------------------------------------------------------------------------------
# Between sections
# --------------------------------------------------------------------------------------------


def _cross_checks(params: Mapping[str, Any], parsed: dict[str, Any], where: str) -> None:
    from ganaug.selection import STRATEGIES

    study: StudyConfig = parsed["study"]
    data: DataConfig = parsed["data"]
    datasets: dict[str, Any] = parsed["datasets"]
    if data.source not in datasets:
        raise ParamsError(f"{where}: data.source: {data.source!r} is not under datasets "
                          f"(known: {', '.join(datasets)})")
    for target in study.targets:
        if target not in datasets:
            raise ParamsError(f"{where}: study.targets: {target!r} is not under datasets "
                              f"(known: {', '.join(datasets)})")
        if target == data.source:
            raise ParamsError(f"{where}: study.targets: {target!r} is the source (data.source); "
                              f"its test split is evaluated already")
    _check_primary(study, data, parsed.get("generate"), where)
    select = parsed.get("select", {})
    needed = [(s, "study.strategies") for s in study.strategies]
    refine: RefineConfig | None = parsed.get("refine")
    if refine is not None and refine.rounds:
        needed.append((refine.strategy, "refine.strategy"))
    for name, origin in needed:
        if name not in STRATEGIES:
            raise ParamsError(f"{where}: {origin}: unknown selection strategy {name!r}"
                              f"{_did_you_mean(name, STRATEGIES)}; known: {', '.join(STRATEGIES)}")
        if name not in select:
            raise ParamsError(f"{where}: select.{name}: missing; {origin} lists {name!r}, so "
                              f"its knobs must be under select.{name} ({{}} takes the defaults)")
    generate: GenerateConfig | None = parsed.get("generate")
    if generate is not None and max(study.ratios) > generate.max_ratio:
        raise ParamsError(f"{where}: generate.max_ratio: {generate.max_ratio} is below the "
                          f"largest of study.ratios ({max(study.ratios)}); the pool would be too "
                          f"small to choose from")
    score: ScoreConfig | None = parsed.get("score")
    if score is not None and "inception" in score.features and "inception" not in parsed.get(
            "fetch", {}):
        raise ParamsError(f"{where}: score.features lists inception, but fetch.inception is "
                          f"missing (the url and sha256 of the FID Inception weights; see "
                          f"README.md)")
    if refine is not None:
        for name, start in refine.rounds.items():
            if start != REFINE_BASE and start not in refine.rounds:
                raise ParamsError(f"{where}: refine.rounds.{name}: starts from unknown round "
                                  f"{start!r}")


def _check_primary(study: StudyConfig, data: DataConfig, generate: GenerateConfig | None,
                   where: str) -> None:
    """The primary comparison's test set must be one the report will have (its strategy and
    ratio are checked by StudyConfig itself)."""
    primary = study.primary_comparison
    if primary is None:
        return
    test_sets = [data.source, *study.targets]
    # The evaluate stage adds these two when the pool has a held-out synthetic test set.
    if generate is None or generate.test_per_class > 0:
        test_sets += list(RESERVED_DATASET_NAMES)
    if primary.test_set not in test_sets:
        raise ParamsError(f"{where}: study.primary.test_set: {primary.test_set!r} is not a test "
                          f"set of this study; expected one of {', '.join(test_sets)} (the "
                          f"source's test split is named after data.source)")


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def _safe(key: str, name: Any, where: str) -> None:
    try:
        check_name(key, name)
    except ValueError as exc:
        raise ParamsError(f"{where}: {exc}") from None


def _under_raw(path: str, key: str, where: str) -> None:
    """``path`` (relative to the project) must lie inside ``data/raw``; a symlink placed there may
    point anywhere."""
    norm = PurePosixPath(os.path.normpath(path.replace(os.sep, "/")))
    if norm.is_absolute() or norm.parts[:2] != RAW_DIR.parts or norm == RAW_DIR:
        raise ParamsError(
            f"{where}: {key}: {path!r} is outside {RAW_DIR}/, so DVC would not notice when the "
            f"file changes and `dvc status` would say up to date; put the file (or a symlink to "
            f"it) under {RAW_DIR}/ and give that path")


def _did_you_mean(name: Any, known: Any) -> str:
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


def main(argv: list[str] | None = None) -> int:
    """``python -m ganaug.validate [params.yaml]``: exit 0 and print "ok", or the problem."""
    from ganaug.stage import run

    args = sys.argv[1:] if argv is None else argv
    path = args[0] if args else "params.yaml"

    def check(_argv: Any) -> None:
        validate_params_file(path)
        print(f"{path}: ok")  # noqa: T201 - the command's answer

    return run(check, [])


if __name__ == "__main__":
    sys.exit(main())
