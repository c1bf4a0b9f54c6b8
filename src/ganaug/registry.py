"""A small name -> factory registry (in the manner of timm's ``register_model``), extended by
plugins: Python entry points of other installed packages.

A registry with an entry-point ``group`` (``ganaug.gan_families``, ``ganaug.strategies``,
``ganaug.dataset_kinds``) loads every entry point of that group the first time it is looked up
(never at import): the entry point's name is the registered name, its object (``module:attr``)
the entry, checked by the registry's ``check`` exactly as a built-in entry is. A plugin that
fails to import, takes a name already registered, or lacks what the registry needs is a
:class:`~ganaug.errors.PluginError` in one line naming the plugin, its distribution and what is
wrong; ``check_params`` looks every registry up before any stage runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, Generic, TypeVar

from ganaug.errors import ParamsError, PluginError

F = TypeVar("F")

# The entry-point groups of the three registries that plugins extend.
PLUGIN_GROUPS = ("ganaug.gan_families", "ganaug.strategies", "ganaug.dataset_kinds")


class UnknownName(ParamsError, KeyError):
    """A name that is not in a registry (usually from params.yaml); the message lists the known
    ones. A :class:`KeyError` too, for callers that look names up."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Registry(Generic[F]):
    """``what`` names the entries in messages. ``group``: the entry-point group its plugins come
    from (None: built-ins only); ``builtins``: the module whose import registers the built-in
    entries (imported before any plugin, so a plugin cannot take a built-in's name unnoticed);
    ``check(name, obj)``: the entry to store for ``obj``, or a ValueError saying what is wrong,
    for built-ins and plugins alike."""

    def __init__(self, what: str, group: str | None = None, builtins: str | None = None,
                 check: Callable[[str, Any], F] | None = None) -> None:
        self.what, self.group, self.builtins = what, group, builtins
        self.check = check
        self._items: dict[str, F] = {}
        self._origins: dict[str, str] = {}  # name -> who registered it, for "name taken"
        self._plugins_loaded = group is None

    def register(self, name: str) -> Callable[[Any], Any]:
        def deco(fn: Any) -> Any:
            if name in self._items:
                raise ValueError(f"{self.what} {name!r} registered twice")
            self._items[name] = fn if self.check is None else self.check(name, fn)
            self._origins[name] = f"ganaug's built-in {self.what} {name!r}"
            return fn

        return deco

    def get(self, name: str) -> F:
        self._load_plugins()
        if name not in self._items:
            raise UnknownName(f"unknown {self.what} {name!r}; known: {', '.join(sorted(self._items))}")
        return self._items[name]

    def origin(self, name: str) -> str:
        """Who registered ``name``: a built-in's qualified name or the plugin's description."""
        self._load_plugins()
        return self._origins[name]

    def __getitem__(self, name: str) -> F:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        self._load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        self._load_plugins()
        return iter(sorted(self._items))

    def __len__(self) -> int:
        self._load_plugins()
        return len(self._items)

    # -- plugins ------------------------------------------------------------------------------
    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True  # first: a plugin's import may look this registry up
        if self.builtins is not None:
            importlib.import_module(self.builtins)
        for ep in plugin_entry_points(self.group):
            self._add_plugin(ep)

    def _add_plugin(self, ep: metadata.EntryPoint) -> None:
        who = describe(ep)
        if ep.name in self._items:
            raise PluginError(f"{who}: the name {ep.name!r} is taken by {self._origins[ep.name]}; "
                              f"rename the entry point")
        try:
            obj = ep.load()
        except Exception as exc:  # any failure of third-party code to import is the plugin's
            raise PluginError(f"{who}: fails to import: {type(exc).__name__}: "
                              f"{_first_line(exc)}") from exc
        try:
            self._items[ep.name] = obj if self.check is None else self.check(ep.name, obj)
        except ValueError as exc:
            raise PluginError(f"{who}: {_first_line(exc)}") from None
        self._origins[ep.name] = who


def plugin_entry_points(group: str) -> list[metadata.EntryPoint]:
    """The installed entry points of ``group``, by name (one per distribution and name, even when
    a distribution is found twice on the path)."""
    seen, out = set(), []
    for ep in sorted(metadata.entry_points(group=group), key=lambda e: (e.name, e.value)):
        key = (ep.name, ep.value, _dist_name(ep))
        if key not in seen:
            seen.add(key)
            out.append(ep)
    return out


def describe(ep: metadata.EntryPoint) -> str:
    """``plugin 'tiny' (ganaug.gan_families = tinygan:TinyGAN, distribution ganaug-tiny 0.1)``."""
    dist = ep.dist
    where = f"distribution {dist.name} {dist.version}" if dist is not None else "no distribution"
    return f"plugin {ep.name!r} ({ep.group} = {ep.value}, {where})"


def _dist_name(ep: metadata.EntryPoint) -> str:
    return "" if ep.dist is None else str(ep.dist.name)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else "(no message)"
