"""Run the study's independent stage instances in parallel on Dask, with DVC the source of truth.

``python -m ganaug.parallel -j 4 [targets]`` does what ``dvc repro [targets]`` does, several
instances at a time: DVC's graph gives the instances and their order, DVC decides which are up to
date, each command runs as ``dvc repro --single-item`` in its own workspace on a Dask worker, and
DVC restores every result in the main workspace from its run-cache and writes ``dvc.lock``.
See README.md, "Running in parallel".

- :mod:`.session`: the main workspace (DVC's plan, decisions, ``dvc.lock``)
- :mod:`.workspace`: one instance on a worker
- :mod:`.engine`: Dask (local workers, one per GPU, or a cluster's scheduler)
- :mod:`.coordinator`: the loop between them
- :mod:`.launcher`: ``python -m`` commands started from a warm interpreter
- :mod:`.cli`: the command
"""

__all__ = ["main", "run_parallel"]


def __getattr__(name: str):
    # Lazily: an instance started from the warm interpreter imports this package (for
    # :mod:`.launcher`) and needs neither Dask nor DVC.
    if name in __all__:
        from ganaug.parallel import cli

        return getattr(cli, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
