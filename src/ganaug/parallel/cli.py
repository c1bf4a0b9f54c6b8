"""``python -m ganaug.parallel``: the command, its options, and its exit status."""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from ganaug.errors import ParamsError
from ganaug.parallel import dvc_api
from ganaug.parallel.coordinator import Coordinator, Summary
from ganaug.parallel.dvc_api import UnsupportedDvc
from ganaug.parallel.engine import EngineOptions, parse_gpus, start_engine
from ganaug.parallel.session import SessionError, open_session
from ganaug.parallel.workspace import terminate_running
from ganaug.params import load_params
from ganaug.runtime import setup_logging
from ganaug.validate import validate_params

log = logging.getLogger("ganaug.parallel")

EPILOG = """examples:
  python -m ganaug.parallel -j 4                  a laptop: 4 local workers
  python -m ganaug.parallel --gpus 0,1,2,3        a workstation: one worker per GPU
  python -m ganaug.parallel --gpus all --per-gpu 2
  python -m ganaug.parallel --scheduler tcp://head:8786   workers started with `dask worker`
  python -m ganaug.parallel -j 2 train_gan score  like `dvc repro train_gan score`
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ganaug.parallel", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Reproduce the pipeline like `dvc repro [targets]`, running independent "
                    "stage instances at once on Dask workers; DVC records every result.")
    p.add_argument("targets", nargs="*", help="stages to reproduce with everything upstream of "
                   "them, as for `dvc repro` (default: the whole pipeline)")
    p.add_argument("-j", "--jobs", type=int, help="local workers (default: one per core, or one "
                   "per GPU with --gpus)")
    p.add_argument("--gpus", help="GPU ids for local workers, one worker per GPU, e.g. 0,1,2,3; "
                   "'all': every GPU torch sees. Each instance sees only its worker's GPU "
                   "(CUDA_VISIBLE_DEVICES)")
    p.add_argument("--per-gpu", type=int, default=1, help="workers per GPU (default 1)")
    p.add_argument("--threads", type=int, help="threads per instance (OMP_NUM_THREADS, "
                   "MKL_NUM_THREADS, ...; default: cores // workers on the machine)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. "
                   "tcp://head:8786, instead of local workers")
    p.add_argument("-f", "--force", action="store_true", help="run every instance even if it "
                   "is up to date (as `dvc repro --force`)")
    p.add_argument("--params", default="params.yaml", help="params file checked before any "
                   "worker starts: the repository's params.yaml, which the stages read (another "
                   "file is refused)")
    p.add_argument("-v", "--verbose", action="store_true", help="also show DVC's and Dask's "
                   "messages")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        dvc_api.check()
    except UnsupportedDvc as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        return 1
    quiet_libraries(args.verbose)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        options = EngineOptions(workers=args.jobs, gpus=parse_gpus(args.gpus),
                                per_gpu=args.per_gpu, threads=args.threads,
                                scheduler=args.scheduler)
        summary = run_parallel(args.targets, options, force=args.force, params=args.params)
    except ValidationError as exc:
        log.error("%s", "; ".join(_message(e) for e in exc.errors()))
        return 2
    except (ParamsError, SessionError, UnsupportedDvc, ValueError, OSError) as exc:
        # OSError: no scheduler
        log.error("%s: %s", type(exc).__name__, exc)
        return 1
    except KeyboardInterrupt:
        log.error("interrupted; a rerun picks up where this run stopped")
        return 130
    except Exception as exc:
        from dvc.exceptions import DvcException

        if not isinstance(exc, DvcException):
            raise
        hint = ("; `python -m ganaug.lock check` says what is wrong with it, and `python -m "
                "ganaug.lock recover` puts the committed one back (finished stages are then "
                "restored from DVC's run-cache)") if "dvc.lock" in str(exc) else ""
        log.error("DVC: %s%s", exc, hint)
        return 1
    return 0 if summary.ok else 1


def run_parallel(targets: Sequence[str], options: EngineOptions, force: bool = False,
                 params: str = "params.yaml", root: str | None = None) -> Summary:
    """Reproduce ``targets`` (everything when empty) in the repository at ``root`` (or around
    the current directory); see the module docstring of :mod:`ganaug.parallel`."""
    dvc_api.check()  # before importing DVC: an unsupported one may not even import
    from dvc.repo import Repo

    start = time.monotonic()
    repo_root = Path(Repo.find_root(root))
    preflight(repo_root / params, repo_root)
    with open_session(targets, root) as session:
        log.info("%d stage instances in DVC's plan", len(session.plan.order))
        with start_engine(options, session.root) as engine:
            log.info("%d workers", engine.capacity())
            try:
                summary = Coordinator(session, engine, force=force).run()
            except BaseException:
                terminate_running()
                raise
        if summary.ok:
            shutil.rmtree(session.work_dir / "ws", ignore_errors=True)
    if summary.ok and not targets:
        # The whole pipeline is up to date: entries of stage instances the grid no longer has
        # are stale (DVC keeps them); drop them so they do not accumulate.
        from ganaug.lock import prune

        prune(repo_root)
    log.log(logging.INFO if summary.ok else logging.ERROR, "%s",
            summary.line(time.monotonic() - start))
    return summary


def quiet_libraries(verbose: bool) -> None:
    """One line per instance, not DVC's and Dask's own chatter (``-v`` shows it). Both set up
    their loggers when imported, so this runs after importing them."""
    import distributed  # noqa: F401
    import dvc  # noqa: F401

    level = logging.INFO if verbose else logging.WARNING
    logging.getLogger("distributed").setLevel(level)
    logging.getLogger("dvc").setLevel(level)
    logging.getLogger("dvc").propagate = False  # DVC prints through its own handlers
    # What `dvc repro` says at the end: which files to `git add`.
    logging.getLogger("dvc.repo.scm_context").setLevel(logging.INFO)


def preflight(params_file: Path, root: Path) -> None:
    """Validate the whole params file once, before any worker starts: a bad value would
    otherwise fail every instance that reads it, one after another. It must be the file the
    stages read: their commands read ``params.yaml`` in the repository (their ``--params``
    default), so checking another file would pass params that no stage uses."""
    if params_file.resolve() != (root / "params.yaml").resolve():
        raise ParamsError(f"--params {params_file}: the stages read {root / 'params.yaml'} (their "
                          f"commands in dvc.yaml do not name another file), so checking "
                          f"{params_file.name} would check params no stage uses; edit "
                          f"params.yaml, or try a change with `dvc exp run -S key=value`")
    validate_params(load_params(params_file), str(params_file.name))


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _message(error: dict) -> str:
    return str(error.get("ctx", {}).get("error", error["msg"]))
