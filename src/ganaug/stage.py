"""What every ``stages/<name>.py`` entry point shares: argv parsing, params, clean failures."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ganaug.errors import EnvironmentProblem, UserError
from ganaug.params import parse, read_params
from ganaug.runtime import setup_logging

log = logging.getLogger("ganaug.stage")


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return p


def run(main: Callable[[Sequence[str] | None], Any], argv: Sequence[str] | None = None) -> int:
    """Call ``main(argv)``; a :class:`~ganaug.errors.UserError` is reported in one line naming
    what to change, with exit status 1. Any other exception is a bug: it keeps its traceback."""
    try:
        setup_logging()
        main(argv)
    except UserError as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        return 1
    except MemoryError:
        log.error("%s: out of memory; lower the batch sizes in params.yaml or use a machine with "
                  "more memory", EnvironmentProblem.__name__)
        return 1
    return 0


def load_section(params: dict, dotted: str, cls: type) -> Any:
    """Validate the declared section ``dotted`` of ``params`` (as returned by read_params)."""
    node = params
    for part in dotted.split("."):
        node = node[part]
    return parse(cls, node, dotted)


def exit_with(main: Callable[[Sequence[str] | None], Any]) -> None:
    sys.exit(run(main))


__all__ = ["exit_with", "load_section", "parser", "read_params", "run"]
