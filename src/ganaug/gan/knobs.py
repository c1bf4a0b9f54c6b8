"""The ``gan`` params section read whole: the shared knobs (:class:`~ganaug.configs.gan.GanConfig`,
what the training loop reads) and the chosen family's own, under its name (``gan.<arch>``),
parsed by that family's config dataclass (:attr:`ganaug.gan.family.GanFamily.config`)."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any

from ganaug.configs.gan import SHARED_KEYS, GanConfig
from ganaug.errors import ParamsError
from ganaug.gan.family import FAMILIES
from ganaug.params import parse


def gan_config(section: Any, key: str = "gan", where: str = "params.yaml") -> GanConfig:
    """The ``gan`` section parsed: its shared keys into :class:`GanConfig`, the chosen family's
    section ``gan.<arch>`` into that family's :attr:`GanFamily.config` (``cfg.knobs``).

    Strict as every section: an unknown key or a wrong type is a :class:`ParamsError` naming it
    (a knob in the wrong place says where it belongs), and so is a section of a family other
    than ``arch`` (its knobs would be ignored, and still rerun ``train_gan`` when edited). Whether
    the family can take these knobs together is its :meth:`GanFamily.check_params`
    (``ganaug.validate`` calls it).
    """
    if section is None:
        section = {}
    if not isinstance(section, Mapping):
        raise ParamsError(f"{where}: {key}: expected a mapping, got {type(section).__name__}")
    sections = {k: v for k, v in section.items() if k != "knobs" and k in FAMILIES}
    shared = {k: v for k, v in section.items() if k not in sections}
    for name in shared:
        if name not in SHARED_KEYS:
            arch = shared.get("arch", GanConfig.arch)
            raise ParamsError(f"{where}: {key}.{name}: unknown key{_knob_hint(name, key, arch)}")
    cfg = parse(GanConfig, shared, key, where)
    if cfg.arch not in FAMILIES:
        close = difflib.get_close_matches(cfg.arch, list(FAMILIES), n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ParamsError(f"{where}: {key}.arch: unknown GAN family {cfg.arch!r}{hint}; known: "
                          f"{', '.join(FAMILIES)}")
    for name in sections:
        if name != cfg.arch:
            raise ParamsError(
                f"{where}: {key}.{name}: knobs of GAN family {name!r}, but {key}.arch is "
                f"{cfg.arch!r}: they would be ignored; remove the section (dvc exp run: -S "
                f"'~{key}.{name}') or set {key}.arch: {name}")
    family = FAMILIES.get(cfg.arch)
    own = sections.get(cfg.arch)
    for name in own if isinstance(own, Mapping) else ():
        if name not in _fields(family.config):
            raise ParamsError(f"{where}: {key}.{cfg.arch}.{name}: unknown key"
                              f"{_knob_hint(name, key, cfg.arch)}")
    knobs = parse(family.config, own, f"{key}.{cfg.arch}", where)
    return dataclasses.replace(cfg, knobs=knobs)


def _fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


def _knob_hint(name: str, key: str, arch: Any) -> str:
    """Where a misplaced knob belongs: the shared section, the chosen family's section, or which
    other families take it."""
    if name in SHARED_KEYS:
        return f"; {name} is a shared knob of every family: put it directly under {key}"
    owners = [f for f in FAMILIES if name in _fields(FAMILIES.get(f).config)]
    if arch in owners:
        return f"; {name} is a knob of {arch}: put it under {key}.{arch}"
    if owners:
        return f"; {name} is a knob of {', '.join(owners)} only, not of {arch}"
    return ""
