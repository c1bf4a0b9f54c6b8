"""What every ``stages/<name>.py`` entry point shares: argv parsing, params, clean failures."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ganaug.codedeps import check_code
from ganaug.errors import EnvironmentProblem, UserError
from ganaug.params import parse, read_params
from ganaug.runtime import setup_logging

log = logging.getLogger("ganaug.stage")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    p.add_argument("--code", default=None,
                   help="the code fingerprint this stage's code must match, checked before and "
                        "after it runs (dvc.yaml's code stage writes it; none: no check)")
    return p


def run(main: Callable[[Sequence[str] | None], Any], argv: Sequence[str] | None = None) -> int:
    """Call ``main(argv)``; a :class:`~ganaug.errors.UserError` is reported in one line naming
    what to change, with exit status 1. Any other exception is a bug: it keeps its traceback.

    Given ``--code FILE``, the code this stage runs must be the code of that fingerprint, before
    ``main`` starts and after it returns (:func:`ganaug.codedeps.check_code`): a file edited
    since the code stage ran, or while this stage ran (a module imported late reads the new
    version), fails the stage, so DVC records no output against code that did not make it."""
    try:
        setup_logging()
        code = _code_arg(sys.argv[1:] if argv is None else argv)
        if code is not None:
            module = _entry_module(main)
            check_code(module, code)
        main(argv)
        if code is not None:
            check_code(module, code)
    except UserError as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        return 1
    except MemoryError:
        log.error("%s: out of memory; lower the batch sizes in params.yaml or use a machine with "
                  "more memory", EnvironmentProblem.__name__)
        return 1
    return 0


def _code_arg(argv: Sequence[str]) -> str | None:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--code", default=None)
    return p.parse_known_args(list(argv))[0].code


def _entry_module(main: Callable) -> str:
    """The stage module ``main`` belongs to: ``stages.train`` also when run as ``python -m``."""
    if main.__module__ != "__main__":
        return main.__module__
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    if spec is None:
        raise UserError("--code needs the stage started as python -m stages.<name>")
    return spec.name


def load_section(params: dict, dotted: str, cls: type) -> Any:
    """Validate the declared section ``dotted`` of ``params`` (as returned by read_params)."""
    node = params
    for part in dotted.split("."):
        node = node[part]
    return parse(cls, node, dotted)


def exit_with(main: Callable[[Sequence[str] | None], Any]) -> None:
    sys.exit(run(main))


__all__ = ["exit_with", "load_section", "parser", "read_params", "run"]
