"""The errors a user can cause or fix, by kind; anything else is a bug and keeps its traceback.

A stage reports a :class:`UserError` in one line that names the file, key or value and what is
expected, and exits with status 1 (see :func:`ganaug.stage.run`). Every other exception, a
``ValueError`` from numpy or torch included, propagates with its traceback: it is a programming
error, and dressing it up as bad input would hide it.

The user errors still derive from the builtin exception a caller would naturally catch
(``ValueError``, ``RuntimeError``, ``FloatingPointError``), so code that catches those keeps
working. This module imports nothing from the project, so every other module can use it.
"""

from __future__ import annotations


class UserError(Exception):
    """An expected failure with a message that says what to change; printed in one line."""


class ParamsError(UserError, ValueError):
    """A params file or value is missing, malformed, out of range or inconsistent."""


class DataFileError(UserError, ValueError):
    """A data file is missing, unreadable or does not hold what it should."""


class PluginError(UserError, RuntimeError):
    """An installed plugin (an entry point of another package) fails to import, takes a name
    already registered, or lacks what its registry needs."""


class CheckpointError(UserError, ValueError):
    """A checkpoint is missing, unreadable, or not the kind of model that was expected."""


class EnvironmentProblem(UserError, RuntimeError):
    """The machine cannot do what was asked: a device it lacks, a full disk, a folder it may not
    write, a server that does not answer."""


class TrainingDiverged(UserError, FloatingPointError):
    """A loss or weight became NaN or infinite; the message says which params to change."""


class SelectionError(UserError, ValueError):
    """A selection cannot be made as asked (the pool is too small, nothing passes a threshold)."""
