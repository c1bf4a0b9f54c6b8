"""GAN configs for tests, written flat: the shared keys go to the ``gan`` section, a family's own
knobs (``z_dim``, ``per_class``, ``res_blocks``, ...) to its section ``gan.<arch>``."""

from __future__ import annotations

import dataclasses
from typing import Any

from ganaug.configs.gan import SHARED_KEYS, GanConfig
from ganaug.gan import FAMILIES, gan_config

# Small sizes for registry-wide tests, set for whichever family takes them.
SMALL = {"z_dim": 4, "res_blocks": 1}


def gan_section(arch: str = "dcgan", small: dict[str, Any] | None = None, **keys: Any
                ) -> dict[str, Any]:
    """The params form of ``keys``; ``small``: family knobs kept only where the family has them."""
    own_fields = {f.name for f in dataclasses.fields(FAMILIES.get(arch).config)}
    own = {k: v for k, v in (small or {}).items() if k in own_fields}
    section: dict[str, Any] = {"arch": arch}
    for k, v in keys.items():
        if k in SHARED_KEYS:
            section[k] = v
        else:
            own[k] = v
    section[arch] = own
    return section


def gan_cfg(arch: str = "dcgan", small: dict[str, Any] | None = None, **keys: Any) -> GanConfig:
    return gan_config(gan_section(arch, small, **keys))
