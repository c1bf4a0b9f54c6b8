"""Reading ``params.yaml``: the file, a stage's declared keys, and a section parsed strictly.

Unknown keys, wrong types and non-finite numbers are errors that name the key
(``ParamsError: params.yaml: gan.lr_g: Input should be a valid number, got 'fast'``). Stages read
params only through :func:`read_params`, which exposes exactly the keys a stage declares, so a
stage cannot silently depend on a key that ``dvc.yaml`` does not list for it.

The section dataclasses live in :mod:`ganaug.configs`, one module per section, so that a stage
depends (in ``dvc.yaml``) only on the sections it reads: editing the GAN's config reruns the GAN,
not the classifiers. This module imports nothing else from the project but ``ganaug.errors``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ConfigDict, ValidationError

from ganaug.errors import ParamsError

STRICT = ConfigDict(extra="forbid", strict=True)
T = TypeVar("T")

# Names that reach stage commands, instance names and file names (datasets, strategies, refinement
# rounds): letters, digits, "_" and "-", starting with a letter or digit. No spaces, no shell
# metacharacters, no "." (it would split a dotted params key), no "@" or "/".
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
DEVICE_NAME = re.compile(r"auto|cpu|mps|cuda(:[0-9]+)?")


def check_name(what: str, name: Any) -> str:
    """``name`` if it is a safe name (see ``SAFE_NAME``), else a ValueError naming ``what``."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise ValueError(
            f"{what}: {name!r} is not a usable name: use 1 to 64 letters, digits, '_' or '-', "
            f"starting with a letter or digit (it becomes part of stage commands and file names)")
    return name


def check_threads(value: Any) -> int | None:
    """``threads``: a positive number of threads, or ``auto`` (None: the environment decides)."""
    if value == "auto":
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"threads: {value!r} is not a thread count; use a positive integer (1 "
                         f"suits small models) or auto (every usable core; the results then "
                         f"depend on the machine's core count)")
    return value


def check_device(name: Any) -> str:
    if not isinstance(name, str) or not DEVICE_NAME.fullmatch(name):
        raise ValueError(f"device: {name!r} is not a device name; use auto, cpu, cuda, cuda:N "
                         f"or mps")
    return name


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read a params file; a missing or malformed file is a :class:`ParamsError` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found")
    try:
        with path.open() as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return data


def get_key(params: Mapping[str, Any], dotted: str, where: str = "params.yaml") -> Any:
    """``get_key(p, "select.threshold")`` -> ``p["select"]["threshold"]``, with a clear error."""
    node: Any = params
    for i, part in enumerate(dotted.split(".")):
        if not isinstance(node, Mapping) or part not in node:
            missing = ".".join(dotted.split(".")[: i + 1])
            raise ParamsError(f"{where}: missing key {missing!r}")
        node = node[part]
    return node


def parse(cls: type[T], value: Any, key: str, where: str = "params.yaml") -> T:
    """Validate ``value`` (the section at ``key``) into ``cls``; errors name ``where: key.field``."""
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ParamsError(f"{where}: {key}: expected a mapping, got {type(value).__name__}")
    for path, bad in _non_finite(value, key):
        raise ParamsError(f"{where}: {path}: must be a finite number, got {bad}")
    try:
        return cls(**value)
    except ValidationError as exc:
        raise ParamsError(_format_validation(exc, key, where)) from None
    except (ValueError, TypeError) as exc:
        raise ParamsError(f"{where}: {key}: {exc}") from None


def read_params(declared: Iterable[str], path: str | Path = "params.yaml") -> dict[str, Any]:
    """Return only the declared (dotted) keys of the params file, nested as in the file.

    A stage that reads a key it did not declare gets a KeyError, so ``dvc.yaml`` and the code
    cannot drift apart silently.
    """
    params = load_params(path)
    out: dict[str, Any] = {}
    for dotted in declared:
        value = get_key(params, dotted, str(path))
        node = out
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def _format_validation(exc: ValidationError, key: str, where: str) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (key, *err["loc"]))
        msg = err["msg"]
        if err["type"] == "unexpected_keyword_argument":
            msg = "unknown key"
        elif err["type"] == "value_error":  # raised by a __post_init__ check; says what it wants
            msg = str(err.get("ctx", {}).get("error", msg))
        elif "input" in err:
            msg = f"{msg}, got {err['input']!r}{_yaml_number_hint(err['input'])}"
        lines.append(f"{where}: {loc}: {msg}")
    return "\n".join(lines)


def _non_finite(value: Any, path: str) -> Iterable[tuple[str, float]]:
    """``(dotted path, value)`` of every NaN or infinite float inside ``value``: YAML's ``.nan``
    and ``.inf`` pass comparisons such as ``lr <= 0`` unnoticed (NaN compares false)."""
    if isinstance(value, float) and not math.isfinite(value):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _non_finite(v, f"{path}.{k}")
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _non_finite(v, f"{path}.{i}")


def no_duplicates(key: str, values: list) -> None:
    seen = set()
    for v in values:
        if v in seen:
            raise ValueError(f"{key}: duplicate value {v!r}")
        seen.add(v)


def positive(**values: int) -> None:
    for name, v in values.items():
        if v < 1:
            raise ValueError(f"{name}: must be >= 1, got {v}")


def _yaml_number_hint(value: Any) -> str:
    """YAML 1.1 (PyYAML) reads ``1e-3`` as text (a float needs a dot: ``1.0e-3``); say so where
    a number was expected and such text came."""
    if isinstance(value, str) and re.fullmatch(r"[-+]?[0-9]+[eE][-+]?[0-9]+", value.strip()):
        return f" (YAML reads {value} as text: write {value.replace('e', '.0e', 1).replace('E', '.0E', 1)})"
    return ""
