"""What every ``stages/<name>.py`` entry point shares: argv parsing, params, clean failures."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ganaug.config import ParamsError, parse, read_params
from ganaug.io import CheckpointError, DataFileError
from ganaug.runtime import setup_logging

log = logging.getLogger("ganaug.stage")

# Errors that mean "bad input": reported in one line, exit status 1, no traceback.
EXPECTED_ERRORS = (ParamsError, DataFileError, CheckpointError, FileNotFoundError, ValueError,
                   FloatingPointError)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    return p


def run(main: Callable[[Sequence[str] | None], Any], argv: Sequence[str] | None = None) -> int:
    """Call ``main(argv)``; turn an expected error into a message naming it and exit status 1."""
    setup_logging()
    try:
        main(argv)
    except EXPECTED_ERRORS as exc:
        log.error("%s: %s", type(exc).__name__, exc)
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


__all__ = ["EXPECTED_ERRORS", "exit_with", "load_section", "parser", "read_params", "run"]
